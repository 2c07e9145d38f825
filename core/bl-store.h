/* bl-store.h: the SQLite store of models, datasets, runs and per-window results
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <glib-object.h>

G_BEGIN_DECLS

/**
 * BL_STORE_SCHEMA_VERSION:
 *
 * The schema version this code writes (SQLite `PRAGMA user_version`). A database with a
 * higher version was written by a newer Bitlens and is refused.
 */
#define BL_STORE_SCHEMA_VERSION 4

/**
 * BlRunRecord:
 * @model_fingerprint: the model's fingerprint (required)
 * @model_path: where the model was loaded from, or %NULL
 * @model_name: a display name, or %NULL
 * @model_architecture: e.g. "llama", or %NULL
 * @model_n_params: parameter count, or 0 when unknown
 * @dataset_sha256: sha256 hex of the dataset file bytes (required)
 * @dataset_name: e.g. "wikitext-2-raw-v1/test" (required)
 * @dataset_path: where the dataset was read from, or %NULL
 * @dataset_kind: how the file was read: "plain", "wikitext2-raw" or "ptb" (required)
 * @tokenizer_hash: the tokenizer's hash, or %NULL
 * @protocol: the protocol name, e.g. "gptq" (required)
 * @ctx: window length in tokens (≥ 2)
 * @stride: the hf-stride step, or 0 when the protocol has none
 * @max_windows: the window limit asked for (0 = all)
 * @n_windows: the number of windows the run will evaluate
 * @seed: seed of the evaluation order
 * @backend: backend name, e.g. "cpu", or %NULL
 * @threads: worker threads, or 0 when unknown
 * @plan_json: the quantization plan as JSON, or %NULL for the unquantized model
 *
 * What bl_store_begin_run() records about a run before it starts. Strings are borrowed.
 */
typedef struct
{
  const char *model_fingerprint;
  const char *model_path;
  const char *model_name;
  const char *model_architecture;
  gint64 model_n_params;

  const char *dataset_sha256;
  const char *dataset_name;
  const char *dataset_path;
  const char *dataset_kind;

  const char *tokenizer_hash;
  const char *protocol;
  int ctx;
  int stride;
  int max_windows;
  int n_windows;
  guint64 seed;

  const char *backend;
  int threads;
  const char *plan_json;
} BlRunRecord;

/**
 * BlRunResult:
 * @n_windows_done: windows evaluated
 * @n_tokens: scored tokens
 * @mean_nll: mean NLL in nats per scored token (NaN: none)
 * @ppl: perplexity (NaN: none)
 * @ppl_ci_low: lower end of the 95% interval (NaN: not available, e.g. one window)
 * @ppl_ci_high: upper end of the 95% interval (NaN: not available)
 * @wall_seconds: wall-clock time of the evaluation
 * @tokens_per_second: scored tokens per second of wall-clock time
 * @message: why the run failed or was cancelled, or %NULL
 *
 * What bl_store_finish_run() records when a run ends. NaN values are stored as NULL.
 */
typedef struct
{
  int n_windows_done;
  gint64 n_tokens;
  double mean_nll;
  double ppl;
  double ppl_ci_low;
  double ppl_ci_high;
  double wall_seconds;
  double tokens_per_second;
  const char *message;
} BlRunResult;

/**
 * BlStoredRun:
 *
 * One row of the runs table joined with its model and dataset, as bl_store_list_runs()
 * and bl_store_get_run() return it. Every string is owned by the struct and may be %NULL
 * where the column is NULL; numbers that were never recorded are NaN (doubles) or 0.
 * Timestamps are UTC, ISO 8601 with milliseconds ("2025-01-31T12:00:00.000Z").
 * @status is one of "running", "finished", "failed", "cancelled", "interrupted".
 */
typedef struct
{
  gint64 id;
  char *started_at;
  char *finished_at;
  char *status;

  char *model_fingerprint;
  char *model_path;
  char *model_name;
  char *model_architecture;
  gint64 model_n_params;

  char *dataset_sha256;
  char *dataset_name;
  char *dataset_path;
  char *dataset_kind;

  char *tokenizer_hash;
  char *protocol;
  int ctx;
  int stride;
  int max_windows;
  int n_windows;
  guint64 seed;
  char *backend;
  int threads;
  char *plan_json;

  int n_windows_done;
  gint64 n_tokens;
  double mean_nll;
  double ppl;
  double ppl_ci_low;
  double ppl_ci_high;
  double wall_seconds;
  double tokens_per_second;
  char *message;

  char *bitlens_version;
  char *host;
  gint64 owner_pid;
} BlStoredRun;

/**
 * BlStoredWindow:
 * @window_index: the window's index in file order
 * @start: index of the window's first id in the id stream
 * @n_tokens: scored tokens of the window
 * @sum_nll: Σ NLL over the scored tokens, nats
 *
 * One row of the run_windows table.
 */
typedef struct
{
  int window_index;
  gint64 start;
  gint64 n_tokens;
  double sum_nll;
} BlStoredWindow;

#define BL_TYPE_STORED_RUN (bl_stored_run_get_type ())
GType        bl_stored_run_get_type   (void) G_GNUC_CONST;
BlStoredRun *bl_stored_run_copy       (const BlStoredRun *run);
void         bl_stored_run_free       (BlStoredRun       *run);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BlStoredRun, bl_stored_run_free)

#define BL_TYPE_STORE (bl_store_get_type ())
G_DECLARE_FINAL_TYPE (BlStore, bl_store, BL, STORE, GObject)

char        *bl_store_get_default_path (void);

BlStore     *bl_store_open             (const char        *path,
                                        GError           **error);
const char  *bl_store_get_path         (BlStore           *self);
guint        bl_store_get_n_recovered  (BlStore           *self);

gint64       bl_store_begin_run        (BlStore           *self,
                                        const BlRunRecord *rec,
                                        GError           **error);
gboolean     bl_store_add_window       (BlStore           *self,
                                        gint64             run_id,
                                        int                window_index,
                                        gint64             start,
                                        gint64             n_tokens,
                                        double             sum_nll,
                                        GError           **error);
gboolean     bl_store_finish_run       (BlStore           *self,
                                        gint64             run_id,
                                        const char        *status,
                                        const BlRunResult *res,
                                        GError           **error);

GPtrArray   *bl_store_list_runs        (BlStore           *self,
                                        const char        *model_fingerprint,
                                        GError           **error);
BlStoredRun *bl_store_get_run          (BlStore           *self,
                                        gint64             run_id,
                                        GError           **error);
GArray      *bl_store_list_windows     (BlStore           *self,
                                        gint64             run_id,
                                        GError           **error);

G_END_DECLS
