/* bl-zeroshot.h: zero-shot task scoring by summed log-likelihood, with calibration metrics
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <gio/gio.h>
#include <stdint.h>

#include "bl-engine.h"
#include "bl-mc-item.h"
#include "bl-store.h"
#include "bl-tokenizer.h"

G_BEGIN_DECLS

/**
 * BL_ZEROSHOT_DEFAULT_ECE_BINS:
 *
 * The number of equal-width confidence bins of the expected calibration error when none is
 * asked for (15, the common choice; methods.md §13i).
 */
#define BL_ZEROSHOT_DEFAULT_ECE_BINS 15

/**
 * BlZeroshotOptions:
 * @add_bos: put the tokenizer's BOS in front of every request. lm-evaluation-harness
 *   encodes without special tokens unless `add_bos_token=True`; Llama tokenizers and
 *   llama.cpp add BOS, and a model trained with BOS at every start (stories260k) is only
 *   meaningful with it. bitlens-cli follows the tokenizer's add_bos_token.
 * @limit: score only the first @limit items in file order (0: all)
 * @ece_bins: confidence bins of the ECE (0: %BL_ZEROSHOT_DEFAULT_ECE_BINS)
 * @seed: seed of the fixed pseudo-random evaluation order, so that the progressive
 *   numbers are not biased towards the start of the file
 */
typedef struct
{
  gboolean add_bos;
  guint limit;
  guint ece_bins;
  guint64 seed;
} BlZeroshotOptions;

/**
 * BlZeroshotMetrics:
 * @n_items: items scored so far
 * @n_choice_items: of those, multiple-choice items (the calibration metrics' population)
 * @acc: accuracy: the highest-likelihood choice is the gold one (greedy items: every
 *   target token is the argmax)
 * @acc_stderr: the binomial standard error sqrt(acc (1 − acc) / (n − 1)), as
 *   lm-evaluation-harness reports it
 * @acc_ci_low: lower end of the 95% Wilson score interval of @acc
 * @acc_ci_high: upper end of that interval
 * @acc_norm: accuracy with each choice's log-likelihood divided by its length in characters
 * @acc_norm_stderr: binomial standard error of @acc_norm
 * @chance: the accuracy of uniform guessing, mean over items of 1 / choices
 * @ece: expected calibration error over @ece_bins equal-width bins of the confidence
 * @ece_bins: the bins used
 * @brier: multi-class Brier score, mean over items of Σ_c (p_c − [c = gold])²
 * @balance: Balance score, accuracy − mean confidence (methods.md §13i): 0 calibrated,
 *   negative over-confident, positive under-confident
 * @mean_confidence: mean over items of the predicted choice's probability
 * @mean_loglik: mean summed log-likelihood of the gold continuation, nats
 * @ppl: exp (−@mean_loglik), the perplexity LAMBADA reports
 *
 * The numbers of a zero-shot evaluation. The option probabilities behind the calibration
 * metrics are the softmax over an item's choice log-likelihoods (lm-evaluation-harness's
 * `prob_norm`). A number without a population (acc_norm or the calibration metrics of a
 * greedy task, a standard error of one item) is NaN.
 */
typedef struct
{
  guint n_items;
  guint n_choice_items;
  double acc;
  double acc_stderr;
  double acc_ci_low;
  double acc_ci_high;
  double acc_norm;
  double acc_norm_stderr;
  double chance;
  double ece;
  guint ece_bins;
  double brier;
  double balance;
  double mean_confidence;
  double mean_loglik;
  double ppl;
} BlZeroshotMetrics;

/**
 * BlZeroshotProvenance:
 * @task: the task name, e.g. "piqa" (required)
 * @dataset_name: e.g. "piqa/valid.jsonl" (required)
 * @dataset_path: where the file was read from, or %NULL
 * @dataset_sha256: sha256 hex of the task's bytes (required)
 * @dataset_kind: how the file was read, e.g. "mc-icl" (required)
 * @backend: backend name, or %NULL
 * @threads: worker threads, or 0
 * @plan_json: the quantization plan as JSON, or %NULL for the unquantized model
 *
 * What bl_zeroshot_store() records beside the numbers. Strings are borrowed.
 */
typedef struct
{
  const char *task;
  const char *dataset_name;
  const char *dataset_path;
  const char *dataset_sha256;
  const char *dataset_kind;
  const char *backend;
  int threads;
  const char *plan_json;
} BlZeroshotProvenance;

gboolean  bl_zeroshot_encode_pair   (BlTokenizer    *tokenizer,
                                     const char     *context,
                                     const char     *continuation,
                                     gboolean        add_bos,
                                     GArray        **out_context,
                                     GArray        **out_continuation,
                                     GError        **error);
gboolean  bl_zeroshot_score_ids     (BlEngine       *engine,
                                     const int32_t  *context,
                                     gsize           n_context,
                                     const int32_t  *continuation,
                                     gsize           n_continuation,
                                     double         *loglik,
                                     gboolean       *is_greedy,
                                     GCancellable   *cancellable,
                                     GError        **error);

double    bl_zeroshot_brier         (const double   *probs,
                                     const guint    *offsets,
                                     const int      *gold,
                                     guint           n_items);
double    bl_zeroshot_ece           (const double   *probs,
                                     const guint    *offsets,
                                     const int      *gold,
                                     guint           n_items,
                                     guint           n_bins);
double    bl_zeroshot_balance       (const double   *probs,
                                     const guint    *offsets,
                                     const int      *gold,
                                     guint           n_items);
void      bl_zeroshot_wilson_interval (guint         k,
                                       guint         n,
                                       double       *low,
                                       double       *high);

#define BL_TYPE_ZEROSHOT (bl_zeroshot_get_type ())
G_DECLARE_FINAL_TYPE (BlZeroshot, bl_zeroshot, BL, ZEROSHOT, GObject)

BlZeroshot *bl_zeroshot_new            (BlEngine                 *engine,
                                        BlTokenizer              *tokenizer,
                                        GPtrArray                *items,
                                        const BlZeroshotOptions  *options,
                                        GError                  **error);
gboolean    bl_zeroshot_execute        (BlZeroshot               *self,
                                        GCancellable             *cancellable,
                                        GError                  **error);
void        bl_zeroshot_execute_async  (BlZeroshot               *self,
                                        GCancellable             *cancellable,
                                        GAsyncReadyCallback       callback,
                                        gpointer                  user_data);
gboolean    bl_zeroshot_execute_finish (BlZeroshot               *self,
                                        GAsyncResult             *result,
                                        GError                  **error);

guint       bl_zeroshot_get_n_items    (BlZeroshot               *self);
guint       bl_zeroshot_get_n_done     (BlZeroshot               *self);
double      bl_zeroshot_get_wall_seconds (BlZeroshot             *self);
void        bl_zeroshot_get_metrics    (BlZeroshot               *self,
                                        BlZeroshotMetrics        *out);
gboolean    bl_zeroshot_get_item_result (BlZeroshot              *self,
                                         guint                    index,
                                         const double           **loglik,
                                         guint                   *n_choices,
                                         int                     *pred,
                                         int                     *pred_norm);
gint64      bl_zeroshot_store          (BlZeroshot               *self,
                                        BlStore                  *store,
                                        const BlZeroshotProvenance *provenance,
                                        const char               *status,
                                        const char               *message,
                                        GError                  **error);

G_END_DECLS
