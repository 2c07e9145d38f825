/* bl-kl.h: KL divergence, top-1 agreement and Δp against a cached full-precision baseline
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * For every scored position of a window the full-precision model's distribution p is kept as
 * its top-k log-probabilities (fp32, with the token ids, largest first, ties to the lower id)
 * plus one "other" bucket holding the log of the remaining mass, log Σ_{v ∉ top-k} p_v, and
 * the log-probability of the correct token. A quantized model's distribution q is reduced to
 * the same k + 1 buckets (its log-probabilities at the baseline's top-k ids, and the log of its
 * mass outside them), and
 *
 *   KL_k(p ‖ q) = Σ_{i ≤ k} p_i · (log p_i − log q_i) + p_other · (log p_other − log q_other)
 *
 * is the KL divergence of the two distributions coarse-grained onto those buckets. Merging
 * outcomes never increases a KL divergence (the log-sum inequality; Cover & Thomas, "Elements
 * of Information Theory", 2nd ed., Theorem 2.7.1 / the data-processing inequality, §2.8), so
 * KL_k ≤ KL(p ‖ q) exactly: a true lower bound of the full-vocabulary KL, and equal to it
 * when the vocabulary has at most k + 1 tokens. The same k + 1 buckets are used whether the
 * baseline comes from the store or was just computed in this process, so a number never
 * depends on the state of the cache.
 *
 * Top-1 agreement compares q's arg-max over the whole vocabulary with p's (the first of the
 * stored top-k). Δp is the mean over positions of q(correct) − p(correct).
 *
 * The two sides go through the same code (bl_kl_window_compare() re-derives p's buckets from
 * logits exactly as bl_kl_window_new() stored them), so a model that reproduces the
 * baseline's logits bit for bit has KL exactly 0, Δp exactly 0 and top-1 agreement 1.
 */
#pragma once

#include <gio/gio.h>
#include <stdint.h>

#include "bl-protocol.h"
#include "bl-store.h"

G_BEGIN_DECLS

/**
 * BL_KL_DEFAULT_TOP_K:
 *
 * Baseline log-probabilities kept per position when the caller says 0.
 */
#define BL_KL_DEFAULT_TOP_K 32

/**
 * BlKlWindow:
 * @window_index: the window's index in file order
 * @start: index of its first id in the id stream
 * @length: ids in the window
 * @first_target: first scored position
 * @n_positions: scored positions, @length − @first_target
 * @top_k: log-probabilities kept per position
 * @sum_nll: Σ −log p(correct) over the positions (nats), for the baseline perplexity
 * @top_ids: (array): [@n_positions × @top_k] token ids, largest probability first
 * @top_logp: (array): [@n_positions × @top_k] their log-probabilities
 * @other_logp: (array): [@n_positions] log of the mass outside the top-k (−∞ when none)
 * @target_logp: (array): [@n_positions] log-probability of the correct token
 *
 * The full-precision baseline of one evaluation window.
 */
typedef struct
{
  int window_index;
  gint64 start;
  int length;
  int first_target;
  int n_positions;
  int top_k;
  double sum_nll;
  int32_t *top_ids;
  float *top_logp;
  float *other_logp;
  float *target_logp;
} BlKlWindow;

/**
 * BlKlWindowResult:
 * @n_positions: positions compared
 * @sum_kl: Σ KL_k(p ‖ q), nats
 * @n_top1: positions where q's arg-max is p's
 * @sum_dp: Σ (q(correct) − p(correct))
 * @sum_nll: Σ −log q(correct), nats (the compared model's NLL)
 * @base_sum_nll: Σ −log p(correct), nats
 *
 * One window of a comparison.
 */
typedef struct
{
  int n_positions;
  double sum_kl;
  int n_top1;
  double sum_dp;
  double sum_nll;
  double base_sum_nll;
} BlKlWindowResult;

/**
 * BlKlKey:
 * @model_fingerprint: bl_model_get_fingerprint()
 * @tokenizer_hash: bl_tokenizer_get_hash(), "" when the model has no tokenizer
 * @dataset_sha256: the text's sha256
 * @dataset_kind: how the text was read ("wikitext2-raw", "plain", …)
 * @protocol: the protocol name
 * @ctx: window length
 * @stride: the hf-stride step, 0 for the other protocols
 * @top_k: log-probabilities per position
 *
 * What identifies a cached baseline window, beside its index. Strings are borrowed.
 */
typedef struct
{
  const char *model_fingerprint;
  const char *tokenizer_hash;
  const char *dataset_sha256;
  const char *dataset_kind;
  const char *protocol;
  int ctx;
  int stride;
  int top_k;
} BlKlKey;

/**
 * BlKlSummary:
 * @n_windows: windows compared
 * @n_positions: positions compared
 * @kl: mean KL_k per position (nats)
 * @kl_ci_low: lower end of its 95% interval over windows (NaN with fewer than 2 windows)
 * @kl_ci_high: upper end
 * @top1: share of positions whose arg-max agrees
 * @delta_p: mean change of the probability of the correct token
 * @nll: mean NLL of the compared model
 * @base_nll: mean NLL of the baseline
 *
 * A comparison so far (bl_kl_stats_get_summary()).
 */
typedef struct
{
  guint n_windows;
  gint64 n_positions;
  double kl;
  double kl_ci_low;
  double kl_ci_high;
  double top1;
  double delta_p;
  double nll;
  double base_nll;
} BlKlSummary;

BlKlWindow *bl_kl_window_new        (const float          *logits,
                                     int                   vocab,
                                     const int32_t        *window_ids,
                                     const BlWindow       *window,
                                     int                   window_index,
                                     int                   top_k);
void        bl_kl_window_free       (BlKlWindow           *window);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BlKlWindow, bl_kl_window_free)

void        bl_kl_window_compare    (const BlKlWindow     *base,
                                     const float          *logits,
                                     int                   vocab,
                                     const int32_t        *window_ids,
                                     BlKlWindowResult     *out);

double      bl_kl_exact             (const float          *p_logits,
                                     const float          *q_logits,
                                     int                   vocab);

BlKlWindow *bl_kl_store_load        (BlStore              *store,
                                     const BlKlKey        *key,
                                     const BlWindow       *window,
                                     int                   window_index,
                                     GError              **error);
gboolean    bl_kl_store_save        (BlStore              *store,
                                     const BlKlKey        *key,
                                     const BlKlWindow     *window,
                                     GError              **error);
gint64      bl_kl_store_count       (BlStore              *store,
                                     const BlKlKey        *key,
                                     GError              **error);

/**
 * BlRunQuantRecord:
 * @linear_bits_per_weight: the plan's bits per weight over the linear layers
 * @model_bits_per_weight: over every parameter of the model
 * @model_bytes: the model's size under the plan
 * @top_k: baseline log-probabilities per position, 0 when the run measured no KL
 * @kl: the comparison with the baseline (NaN members when not measured)
 *
 * What a quantized run records beside its row in the runs table (whose plan_json holds the
 * plan), in the run_quant table.
 */
typedef struct
{
  double linear_bits_per_weight;
  double model_bits_per_weight;
  double model_bytes;
  int top_k;
  BlKlSummary kl;
} BlRunQuantRecord;

gboolean    bl_kl_store_begin_run   (BlStore              *store,
                                     gint64                run_id,
                                     const BlRunQuantRecord *rec,
                                     GError              **error);
gboolean    bl_kl_store_add_run_window (BlStore           *store,
                                     gint64                run_id,
                                     int                   window_index,
                                     const BlKlWindowResult *result,
                                     GError              **error);
gboolean    bl_kl_store_finish_run  (BlStore              *store,
                                     gint64                run_id,
                                     const BlKlSummary    *summary,
                                     GError              **error);
gboolean    bl_kl_store_get_run     (BlStore              *store,
                                     gint64                run_id,
                                     BlRunQuantRecord     *out,
                                     GError              **error);

typedef struct _BlKlStats BlKlStats;

BlKlStats  *bl_kl_stats_new         (void);
void        bl_kl_stats_free        (BlKlStats            *stats);
void        bl_kl_stats_add_window  (BlKlStats            *stats,
                                     const BlKlWindowResult *result);
void        bl_kl_stats_get_summary (const BlKlStats      *stats,
                                     BlKlSummary          *out);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BlKlStats, bl_kl_stats_free)

G_END_DECLS
