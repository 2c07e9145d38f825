/* bl-zeroshot.c: zero-shot task scoring by summed log-likelihood, with calibration metrics
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * A request (context, continuation) is scored as lm-evaluation-harness scores a
 * `loglikelihood` request (lm_eval/api/model.py TemplateLM._encode_pair and
 * lm_eval/models/huggingface.py HFLM._loglikelihood_tokens):
 *
 * 1. White space at the end of the context moves to the front of the continuation.
 * 2. The whole text context + continuation is encoded, and the context alone; the
 *    continuation's tokens are the whole encoding after the context's token count. (The
 *    context's own tokens are kept even where the whole encoding merged across the
 *    boundary, as the harness does.) An empty context becomes the one token BOS (or EOS
 *    when there is no BOS), the harness's prefix token.
 * 3. The model reads (context + continuation)[−(max + 1):][:−1], left-truncated to its
 *    maximum length; the log-likelihood is Σ log p(cont_j | everything before it), and the
 *    request is "greedy" when every continuation token is the argmax of its row. A
 *    continuation longer than the model (the harness asserts it is not) is scored in
 *    several passes from its end backwards, each pass reading the max ids before its last
 *    target, so that no item stops an evaluation (a few PIQA solutions are longer than
 *    512 tokens under stories260k's 512-piece vocabulary).
 *
 * The log-softmax is computed here in double from the engine's fp32 logits:
 * log p(t) = (z_t − m) − log Σ_j exp(z_j − m), m = max_j z_j.
 */
#include "bl-zeroshot.h"

#include <math.h>
#include <string.h>

#include "bl-error.h"
#include "bl-protocol.h"
#include "bl-store-rows-private.h"

/* z for a two-sided 95% interval, Φ⁻¹(0.975) */
#define Z_95 1.959963984540054

/**
 * bl_zeroshot_encode_pair:
 * @tokenizer: the model's tokenizer
 * @context: the text before the continuation
 * @continuation: the scored text
 * @add_bos: put BOS in front of the context (when the tokenizer has one)
 * @out_context: (out) (transfer full): the context's ids, int32
 * @out_continuation: (out) (transfer full): the continuation's ids, int32
 * @error: return location for a #GError
 *
 * Splits a request into token ids the way lm-evaluation-harness does (steps 1 and 2 at
 * the top of this file). The continuation may come out empty when the tokenizer merges it
 * entirely into the context's last token; its log-likelihood is then 0, as in the harness.
 *
 * Returns: %TRUE on success; %FALSE with %BL_ERROR_INVALID_ARGUMENT when the context is
 *   empty and the tokenizer has neither BOS nor EOS
 */
gboolean
bl_zeroshot_encode_pair (BlTokenizer  *tokenizer,
                         const char   *context,
                         const char   *continuation,
                         gboolean      add_bos,
                         GArray      **out_context,
                         GArray      **out_continuation,
                         GError      **error)
{
  g_autoptr(GArray) ctx_ids = NULL;
  g_autoptr(GArray) whole_ids = NULL;
  g_autoptr(GArray) cont_ids = NULL;
  g_autofree char *whole = NULL;
  gsize ctx_len, kept;

  g_return_val_if_fail (BL_IS_TOKENIZER (tokenizer), FALSE);
  g_return_val_if_fail (context != NULL && continuation != NULL, FALSE);
  g_return_val_if_fail (out_context != NULL && out_continuation != NULL, FALSE);

  ctx_len = strlen (context);
  kept = ctx_len;
  while (kept > 0 && g_ascii_isspace (context[kept - 1]))
    kept--;
  whole = g_strconcat (context, continuation, NULL);

  if (kept == 0)
    {
      int32_t prefix = bl_tokenizer_get_bos_id (tokenizer);

      if (prefix < 0)
        prefix = bl_tokenizer_get_eos_id (tokenizer);
      if (prefix < 0)
        {
          g_set_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT,
                       "an empty context needs a BOS or EOS token to start from, and the "
                       "tokenizer has neither");
          return FALSE;
        }
      ctx_ids = g_array_new (FALSE, FALSE, sizeof (int32_t));
      g_array_append_val (ctx_ids, prefix);
      cont_ids = bl_tokenizer_encode (tokenizer, whole, -1, FALSE);
    }
  else
    {
      gsize n_ctx;

      ctx_ids = bl_tokenizer_encode (tokenizer, context, kept, add_bos);
      whole_ids = bl_tokenizer_encode (tokenizer, whole, -1, add_bos);
      n_ctx = MIN (ctx_ids->len, whole_ids->len);
      cont_ids = g_array_sized_new (FALSE, FALSE, sizeof (int32_t), whole_ids->len - n_ctx);
      g_array_append_vals (cont_ids, &g_array_index (whole_ids, int32_t, n_ctx),
                           whole_ids->len - n_ctx);
    }

  *out_context = g_steal_pointer (&ctx_ids);
  *out_continuation = g_steal_pointer (&cont_ids);
  return TRUE;
}

/* Scores one request with a caller-owned logits buffer that grows as needed. */
static gboolean
score_ids (BlEngine      *engine,
           const int32_t *context,
           gsize          n_context,
           const int32_t *continuation,
           gsize          n_continuation,
           float        **scratch,
           gsize         *scratch_len,
           int32_t      **id_buf,
           gsize         *id_buf_len,
           double        *loglik,
           gboolean      *is_greedy,
           GCancellable  *cancellable,
           GError       **error)
{
  gsize max_tokens = (gsize) bl_engine_get_max_tokens (engine);
  gsize vocab = (gsize) bl_engine_get_vocab_size (engine);
  gsize total = n_context + n_continuation;
  gsize b, n_rows = MIN (total - 1, max_tokens);
  double sum = 0.0;
  gboolean greedy = TRUE;

  if (n_context == 0)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT,
                   "a request needs at least one context token");
      return FALSE;
    }
  if (n_continuation == 0)
    {
      *loglik = 0.0;
      *is_greedy = TRUE;
      return TRUE;
    }

  if (*id_buf_len < total)
    {
      g_free (*id_buf);
      *id_buf = g_new (int32_t, total);
      *id_buf_len = total;
    }
  memcpy (*id_buf, context, n_context * sizeof (int32_t));
  memcpy (*id_buf + n_context, continuation, n_continuation * sizeof (int32_t));

  if (*scratch_len < n_rows * vocab)
    {
      g_free (*scratch);
      *scratch = g_try_new (float, n_rows * vocab);
      *scratch_len = *scratch ? n_rows * vocab : 0;
      if (*scratch == NULL)
        {
          g_set_error (error, BL_ERROR, BL_ERROR_OUT_OF_MEMORY,
                       "no memory for %" G_GSIZE_FORMAT " × %" G_GSIZE_FORMAT " logits",
                       n_rows, vocab);
          return FALSE;
        }
    }

  /* Targets ids[a..b) are scored from one forward pass over ids[s..b−1), s = max (0,
   * b − 1 − max_tokens): the last token is only a target, and the input keeps the last
   * max_tokens ids before it (left truncation). A continuation that fits the model takes
   * one pass, as in the harness. A longer one (which the harness refuses) is scored in
   * passes from its end backwards, each target still seeing max_tokens ids of context. */
  for (b = total; b > n_context;)
    {
      gsize s = b - 1 > max_tokens ? b - 1 - max_tokens : 0;
      gsize a = MAX (n_context, s + 1);
      gsize n_in = b - 1 - s;

      if (!bl_engine_forward (engine, *id_buf + s, (int) n_in, *scratch, cancellable, error))
        return FALSE;

      /* target t is predicted by the logits row of the input position before it */
      for (gsize t = a; t < b; t++)
        {
          const float *z = *scratch + (t - 1 - s) * vocab;
          int32_t target = (*id_buf)[t];
          double m = z[0], e = 0.0;
          gsize argmax = 0;

          for (gsize v = 1; v < vocab; v++)
            if (z[v] > m)
              {
                m = z[v];
                argmax = v;
              }
          for (gsize v = 0; v < vocab; v++)
            e += exp ((double) z[v] - m);
          sum += ((double) z[target] - m) - log (e);
          greedy = greedy && argmax == (gsize) target;
        }
      b = a;
    }

  *loglik = sum;
  *is_greedy = greedy;
  return TRUE;
}

/**
 * bl_zeroshot_score_ids:
 * @engine: the engine to score with (its hooks, e.g. a quantization plan, apply)
 * @context: the context's ids, BOS included where wanted; at least one
 * @n_context: their count
 * @continuation: the continuation's ids
 * @n_continuation: their count
 * @loglik: (out): Σ log p(continuation_j | ids before it), nats, from a double-precision
 *   log-softmax of the logits
 * @is_greedy: (out): whether every continuation token is its row's argmax (the first one
 *   on ties)
 * @cancellable: (nullable): checked between layers
 * @error: return location for a #GError
 *
 * Scores one request (step 3 at the top of this file). The input is left-truncated to the
 * model's maximum length; a continuation longer than that takes several forward passes.
 *
 * Returns: %TRUE on success
 */
gboolean
bl_zeroshot_score_ids (BlEngine      *engine,
                       const int32_t *context,
                       gsize          n_context,
                       const int32_t *continuation,
                       gsize          n_continuation,
                       double        *loglik,
                       gboolean      *is_greedy,
                       GCancellable  *cancellable,
                       GError       **error)
{
  g_autofree float *scratch = NULL;
  g_autofree int32_t *ids = NULL;
  gsize scratch_len = 0, ids_len = 0;

  g_return_val_if_fail (engine != NULL, FALSE);
  g_return_val_if_fail (context != NULL || n_context == 0, FALSE);
  g_return_val_if_fail (continuation != NULL || n_continuation == 0, FALSE);
  g_return_val_if_fail (loglik != NULL && is_greedy != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  return score_ids (engine, context, n_context, continuation, n_continuation, &scratch,
                    &scratch_len, &ids, &ids_len, loglik, is_greedy, cancellable, error);
}

/* Index of the largest p[0..n), the first one on ties (numpy.argmax). */
static guint
argmax (const double *p,
        guint         n)
{
  guint best = 0;

  for (guint i = 1; i < n; i++)
    if (p[i] > p[best])
      best = i;
  return best;
}

/**
 * bl_zeroshot_brier:
 * @probs: option probabilities of all items, item i's at @probs[@offsets[i] … @offsets[i+1])
 * @offsets: (array length=n_items+1): where each item's options start
 * @gold: (array length=n_items): the right option of each item
 * @n_items: number of items
 *
 * The multi-class Brier score (1/N) Σᵢ Σ_c (p̂ᵢc − [yᵢ = c])² (methods.md §13i; Brier 1950),
 * the form lm-evaluation-harness's `brier_score` computes. For two options it is twice the
 * binary (1/N) Σ (p̂ − y)².
 *
 * Returns: the score, NaN when @n_items is 0
 */
double
bl_zeroshot_brier (const double *probs,
                   const guint  *offsets,
                   const int    *gold,
                   guint         n_items)
{
  double total = 0.0;

  if (n_items == 0)
    return NAN;
  for (guint i = 0; i < n_items; i++)
    for (guint c = offsets[i]; c < offsets[i + 1]; c++)
      {
        double d = probs[c] - ((int) (c - offsets[i]) == gold[i] ? 1.0 : 0.0);

        total += d * d;
      }
  return total / n_items;
}

/**
 * bl_zeroshot_ece:
 * @probs: option probabilities, laid out as for bl_zeroshot_brier()
 * @offsets: where each item's options start
 * @gold: the right option of each item
 * @n_items: number of items
 * @n_bins: equal-width confidence bins over [0, 1]
 *
 * Expected calibration error, Σ_b (|B_b| / N)·|acc(B_b) − conf(B_b)| (Guo et al. 2017,
 * eq. 3; methods.md §13i). An item's confidence is its largest option probability, its
 * prediction that option (the first on ties), and it falls in bin ⌊conf·M⌋ (the last bin
 * includes 1). The value depends on @n_bins (the binning bias methods.md §13i notes), so
 * report it with the bin count.
 *
 * Returns: the ECE, NaN when @n_items or @n_bins is 0
 */
double
bl_zeroshot_ece (const double *probs,
                 const guint  *offsets,
                 const int    *gold,
                 guint         n_items,
                 guint         n_bins)
{
  g_autofree double *conf_sum = NULL;
  g_autofree double *correct = NULL;
  g_autofree guint *count = NULL;
  double ece = 0.0;

  if (n_items == 0 || n_bins == 0)
    return NAN;

  conf_sum = g_new0 (double, n_bins);
  correct = g_new0 (double, n_bins);
  count = g_new0 (guint, n_bins);
  for (guint i = 0; i < n_items; i++)
    {
      const double *p = probs + offsets[i];
      guint n = offsets[i + 1] - offsets[i];
      guint pred = argmax (p, n);
      double conf = p[pred];
      guint b = (guint) (conf * n_bins);

      if (b >= n_bins)
        b = n_bins - 1;
      conf_sum[b] += conf;
      correct[b] += (int) pred == gold[i] ? 1.0 : 0.0;
      count[b]++;
    }
  for (guint b = 0; b < n_bins; b++)
    if (count[b] > 0)
      ece += fabs (correct[b] - conf_sum[b]) / n_items;
  return ece;
}

/**
 * bl_zeroshot_balance:
 * @probs: option probabilities, laid out as for bl_zeroshot_brier()
 * @offsets: where each item's options start
 * @gold: the right option of each item
 * @n_items: number of items
 *
 * The Balance score of Choi, Kim & Lee (arXiv 2309.06248) in its multi-class form,
 * accuracy − mean confidence of the predicted option (methods.md §13i). On two options
 * this is the paper's (1/N) Σ f(p̂ᵢ, yᵢ). 0 is calibrated, negative over-confident,
 * positive under-confident.
 *
 * Returns: the score, NaN when @n_items is 0
 */
double
bl_zeroshot_balance (const double *probs,
                     const guint  *offsets,
                     const int    *gold,
                     guint         n_items)
{
  double total = 0.0;

  if (n_items == 0)
    return NAN;
  for (guint i = 0; i < n_items; i++)
    {
      const double *p = probs + offsets[i];
      guint pred = argmax (p, offsets[i + 1] - offsets[i]);

      total += ((int) pred == gold[i] ? 1.0 : 0.0) - p[pred];
    }
  return total / n_items;
}

/**
 * bl_zeroshot_wilson_interval:
 * @k: successes
 * @n: trials
 * @low: (out): lower end
 * @high: (out): upper end
 *
 * The 95% Wilson score interval of a binomial proportion (Wilson 1927; Brown, Cai &
 * DasGupta 2001 recommend it over the normal interval, which collapses at 0 and 1 and
 * undercovers at small n). NaN for both ends when @n is 0.
 */
void
bl_zeroshot_wilson_interval (guint   k,
                             guint   n,
                             double *low,
                             double *high)
{
  double p, z2, denom, centre, half;

  g_return_if_fail (low != NULL && high != NULL);

  if (n == 0)
    {
      *low = *high = NAN;
      return;
    }
  p = (double) k / n;
  z2 = Z_95 * Z_95;
  denom = 1.0 + z2 / n;
  centre = (p + z2 / (2.0 * n)) / denom;
  half = Z_95 / denom * sqrt (p * (1.0 - p) / n + z2 / (4.0 * (double) n * n));
  *low = MAX (0.0, centre - half);
  *high = MIN (1.0, centre + half);
}

/**
 * SECTION:bl-zeroshot
 * @title: BlZeroshot
 *
 * A BlZeroshot scores task items (#BlMcItem, from datasets/bl-mc.h) with an engine, in a
 * fixed pseudo-random order, and keeps each item's choice log-likelihoods. The metrics
 * are available at any time over the items done so far, so a front end can show a
 * progressive accuracy; #BlZeroshot::item-done reports progress. bl_zeroshot_store()
 * records the result in one transaction, also for a cancelled evaluation (with the items
 * done), so the store never holds half a result.
 *
 * The engine is used from one thread at a time; do not share it with a concurrent run.
 */
struct _BlZeroshot
{
  GObject parent_instance;

  /* Inputs */
  BlEngine *engine;
  BlTokenizer *tokenizer;
  GPtrArray *items;         /* BlMcItem, the caller's array, referenced */
  guint n_items;            /* the first n_items of @items are scored */
  BlZeroshotOptions options;
  guint *order;
  guint *offsets;           /* [n_items + 1], into loglik */

  /* Results, written by the worker, read by anyone under @lock */
  GMutex lock;
  double *loglik;           /* [offsets[n_items]] summed log-likelihood per choice */
  int *pred;                /* [n_items] argmax choice; greedy items: 0 right, −1 wrong */
  int *pred_norm;           /* [n_items] argmax of loglik / length */
  gboolean *done;           /* [n_items] */
  guint n_done;
  double wall_seconds;
  char *started_at;
  gboolean executed;
};

G_DEFINE_FINAL_TYPE (BlZeroshot, bl_zeroshot, G_TYPE_OBJECT)

enum {
  SIGNAL_ITEM_DONE,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

static void
bl_zeroshot_finalize (GObject *object)
{
  BlZeroshot *self = BL_ZEROSHOT (object);

  g_clear_object (&self->tokenizer);
  g_clear_pointer (&self->items, g_ptr_array_unref);
  g_clear_pointer (&self->order, g_free);
  g_clear_pointer (&self->offsets, g_free);
  g_clear_pointer (&self->loglik, g_free);
  g_clear_pointer (&self->pred, g_free);
  g_clear_pointer (&self->pred_norm, g_free);
  g_clear_pointer (&self->done, g_free);
  g_clear_pointer (&self->started_at, g_free);
  g_mutex_clear (&self->lock);

  G_OBJECT_CLASS (bl_zeroshot_parent_class)->finalize (object);
}

static void
bl_zeroshot_class_init (BlZeroshotClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->finalize = bl_zeroshot_finalize;

  /**
   * BlZeroshot::item-done:
   * @self: the evaluation
   * @n_done: items finished so far
   *
   * Emitted after each item, with the results already updated: in the caller's
   * thread-default main context for bl_zeroshot_execute_async(), in the calling thread
   * for bl_zeroshot_execute().
   */
  signals[SIGNAL_ITEM_DONE] =
    g_signal_new ("item-done", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 1, G_TYPE_UINT);
}

static void
bl_zeroshot_init (BlZeroshot *self)
{
  g_mutex_init (&self->lock);
}

/**
 * bl_zeroshot_new:
 * @engine: the engine to score with; borrowed, must outlive the evaluation
 * @tokenizer: the model's tokenizer
 * @items: (element-type BlMcItem): the task's items; referenced
 * @options: BOS, item limit, ECE bins and order seed
 * @error: return location for a #GError
 *
 * Returns: (transfer full): a new evaluation, or %NULL when there is nothing to score
 */
BlZeroshot *
bl_zeroshot_new (BlEngine                 *engine,
                 BlTokenizer              *tokenizer,
                 GPtrArray                *items,
                 const BlZeroshotOptions  *options,
                 GError                  **error)
{
  g_autoptr(BlZeroshot) self = NULL;
  guint n;

  g_return_val_if_fail (engine != NULL, NULL);
  g_return_val_if_fail (BL_IS_TOKENIZER (tokenizer), NULL);
  g_return_val_if_fail (items != NULL, NULL);
  g_return_val_if_fail (options != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  n = items->len;
  if (options->limit > 0 && options->limit < n)
    n = options->limit;
  if (n == 0)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT, "there are no items to score");
      return NULL;
    }

  self = g_object_new (BL_TYPE_ZEROSHOT, NULL);
  self->engine = engine;
  self->tokenizer = g_object_ref (tokenizer);
  self->items = g_ptr_array_ref (items);
  self->n_items = n;
  self->options = *options;
  if (self->options.ece_bins == 0)
    self->options.ece_bins = BL_ZEROSHOT_DEFAULT_ECE_BINS;
  self->order = bl_windows_eval_order (n, options->seed);

  self->offsets = g_new (guint, n + 1);
  self->offsets[0] = 0;
  for (guint i = 0; i < n; i++)
    {
      const BlMcItem *item = g_ptr_array_index (items, i);

      self->offsets[i + 1] = self->offsets[i] + item->n_choices;
    }
  self->loglik = g_new0 (double, self->offsets[n]);
  self->pred = g_new0 (int, n);
  self->pred_norm = g_new0 (int, n);
  self->done = g_new0 (gboolean, n);

  return g_steal_pointer (&self);
}

typedef struct
{
  BlZeroshot *self;
  guint n_done;
} ItemDone;

static gboolean
emit_item_done_idle (gpointer data)
{
  ItemDone *d = data;

  g_signal_emit (d->self, signals[SIGNAL_ITEM_DONE], 0, d->n_done);
  return G_SOURCE_REMOVE;
}

static void
item_done_free (gpointer data)
{
  ItemDone *d = data;

  g_object_unref (d->self);
  g_free (d);
}

static char *
now_iso8601 (void)
{
  g_autoptr(GDateTime) now = g_date_time_new_now_utc ();
  g_autofree char *base = g_date_time_format (now, "%Y-%m-%dT%H:%M:%S");

  return g_strdup_printf ("%s.%03dZ", base, g_date_time_get_microsecond (now) / 1000);
}

static gboolean
execute (BlZeroshot   *self,
         GMainContext *emit_context,
         GCancellable *cancellable,
         GError      **error)
{
  g_autofree float *scratch = NULL;
  g_autofree int32_t *ids = NULL;
  g_autofree double *ll = NULL;
  gsize scratch_len = 0, ids_len = 0;
  gint64 start_us = g_get_monotonic_time ();
  guint max_choices = 0;

  g_return_val_if_fail (!self->executed, FALSE);
  self->executed = TRUE;
  self->started_at = now_iso8601 ();

  for (guint i = 0; i < self->n_items; i++)
    max_choices = MAX (max_choices, self->offsets[i + 1] - self->offsets[i]);
  ll = g_new (double, max_choices);

  for (guint k = 0; k < self->n_items; k++)
    {
      guint i = self->order[k];
      const BlMcItem *item = g_ptr_array_index (self->items, i);
      gboolean greedy = TRUE;
      int pred, pred_norm;
      double best_norm = -INFINITY;

      for (guint c = 0; c < item->n_choices; c++)
        {
          g_autoptr(GArray) ctx_ids = NULL;
          g_autoptr(GArray) cont_ids = NULL;
          g_autoptr(GError) local_error = NULL;
          gboolean choice_greedy;

          if (!bl_zeroshot_encode_pair (self->tokenizer, item->contexts[c],
                                        item->continuations[c], self->options.add_bos,
                                        &ctx_ids, &cont_ids, &local_error)
              || !score_ids (self->engine, (const int32_t *) ctx_ids->data, ctx_ids->len,
                             (const int32_t *) cont_ids->data, cont_ids->len, &scratch,
                             &scratch_len, &ids, &ids_len, &ll[c], &choice_greedy,
                             cancellable, &local_error))
            {
              self->wall_seconds = (g_get_monotonic_time () - start_us) / 1e6;
              if (item->line > 0 && !g_error_matches (local_error, G_IO_ERROR,
                                                      G_IO_ERROR_CANCELLED))
                g_prefix_error (&local_error, "item %u (line %u), choice %u: ", i, item->line,
                                c);
              g_propagate_error (error, g_steal_pointer (&local_error));
              return FALSE;
            }
          greedy = greedy && choice_greedy;
        }

      if (item->scoring == BL_MC_SCORING_GREEDY)
        pred = pred_norm = greedy ? 0 : -1;
      else
        {
          pred = (int) argmax (ll, item->n_choices);
          pred_norm = 0;
          for (guint c = 0; c < item->n_choices; c++)
            {
              double v = ll[c] / bl_mc_item_get_choice_length (item, c);

              if (v > best_norm)
                {
                  best_norm = v;
                  pred_norm = (int) c;
                }
            }
        }

      g_mutex_lock (&self->lock);
      memcpy (self->loglik + self->offsets[i], ll, item->n_choices * sizeof (double));
      self->pred[i] = pred;
      self->pred_norm[i] = pred_norm;
      self->done[i] = TRUE;
      self->n_done++;
      self->wall_seconds = (g_get_monotonic_time () - start_us) / 1e6;
      g_mutex_unlock (&self->lock);

      if (emit_context != NULL)
        {
          ItemDone *d = g_new (ItemDone, 1);

          d->self = g_object_ref (self);
          d->n_done = k + 1;
          g_main_context_invoke_full (emit_context, G_PRIORITY_DEFAULT, emit_item_done_idle,
                                      d, item_done_free);
        }
      else
        g_signal_emit (self, signals[SIGNAL_ITEM_DONE], 0, k + 1);
    }
  return TRUE;
}

/**
 * bl_zeroshot_execute:
 * @self: an evaluation that has not been executed yet
 * @cancellable: (nullable): checked between layers of every forward pass
 * @error: return location for a #GError
 *
 * Scores every item in the calling thread. After a failure or cancellation the items
 * done so far keep their results.
 *
 * Returns: %TRUE when every item was scored
 */
gboolean
bl_zeroshot_execute (BlZeroshot   *self,
                     GCancellable *cancellable,
                     GError      **error)
{
  g_return_val_if_fail (BL_IS_ZEROSHOT (self), FALSE);

  return execute (self, NULL, cancellable, error);
}

static void
execute_thread (GTask        *task,
                gpointer      source_object,
                gpointer      task_data,
                GCancellable *cancellable)
{
  GError *error = NULL;

  if (execute (source_object, task_data, cancellable, &error))
    g_task_return_boolean (task, TRUE);
  else
    g_task_return_error (task, error);
}

/**
 * bl_zeroshot_execute_async:
 * @self: an evaluation that has not been executed yet
 * @cancellable: (nullable): a #GCancellable
 * @callback: called in the caller's thread-default main context when done
 * @user_data: data for @callback
 *
 * Scores the items in a worker thread; #BlZeroshot::item-done arrives in the caller's
 * thread-default main context.
 */
void
bl_zeroshot_execute_async (BlZeroshot          *self,
                           GCancellable        *cancellable,
                           GAsyncReadyCallback  callback,
                           gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;

  g_return_if_fail (BL_IS_ZEROSHOT (self));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, bl_zeroshot_execute_async);
  g_task_set_task_data (task, g_main_context_ref_thread_default (),
                        (GDestroyNotify) g_main_context_unref);
  g_task_set_return_on_cancel (task, FALSE);
  g_task_run_in_thread (task, execute_thread);
}

/**
 * bl_zeroshot_execute_finish:
 * @self: an evaluation
 * @result: the #GAsyncResult
 * @error: return location for a #GError (%G_IO_ERROR_CANCELLED when cancelled)
 *
 * Returns: %TRUE when every item was scored
 */
gboolean
bl_zeroshot_execute_finish (BlZeroshot    *self,
                            GAsyncResult  *result,
                            GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

/* The number of items scored (the limit applied). */
guint
bl_zeroshot_get_n_items (BlZeroshot *self)
{
  g_return_val_if_fail (BL_IS_ZEROSHOT (self), 0);
  return self->n_items;
}

guint
bl_zeroshot_get_n_done (BlZeroshot *self)
{
  guint n;

  g_return_val_if_fail (BL_IS_ZEROSHOT (self), 0);
  g_mutex_lock (&self->lock);
  n = self->n_done;
  g_mutex_unlock (&self->lock);
  return n;
}

double
bl_zeroshot_get_wall_seconds (BlZeroshot *self)
{
  double s;

  g_return_val_if_fail (BL_IS_ZEROSHOT (self), 0.0);
  g_mutex_lock (&self->lock);
  s = self->wall_seconds;
  g_mutex_unlock (&self->lock);
  return s;
}

static double
stderr_of (guint k,
           guint n)
{
  double p;

  if (n < 2)
    return NAN;
  p = (double) k / n;
  return sqrt (p * (1.0 - p) / (n - 1));
}

/* Metrics over the items done; called with @lock held. */
static void
compute_metrics (BlZeroshot        *self,
                 BlZeroshotMetrics *m)
{
  g_autofree double *probs = NULL;
  g_autofree guint *offsets = NULL;
  g_autofree int *gold = NULL;
  guint n = 0, n_choice = 0, right = 0, right_norm = 0, n_probs = 0;
  double chance = 0.0, gold_ll = 0.0, conf = 0.0;

  probs = g_new (double, self->offsets[self->n_items]);
  offsets = g_new (guint, self->n_items + 1);
  gold = g_new (int, self->n_items);
  offsets[0] = 0;

  for (guint i = 0; i < self->n_items; i++)
    {
      const BlMcItem *item = g_ptr_array_index (self->items, i);
      const double *ll = self->loglik + self->offsets[i];

      if (!self->done[i])
        continue;
      n++;
      right += self->pred[i] == item->gold;
      gold_ll += ll[item->gold];
      if (item->scoring != BL_MC_SCORING_CHOICE)
        continue;

      /* prob_norm of the harness: the softmax over the choices' log-likelihoods */
      {
        double mx = ll[argmax (ll, item->n_choices)], s = 0.0;

        for (guint c = 0; c < item->n_choices; c++)
          s += exp (ll[c] - mx);
        for (guint c = 0; c < item->n_choices; c++)
          probs[n_probs + c] = exp (ll[c] - mx) / s;
        conf += 1.0 / s;
      }
      n_probs += item->n_choices;
      gold[n_choice] = item->gold;
      offsets[++n_choice] = n_probs;
      right_norm += self->pred_norm[i] == item->gold;
      chance += 1.0 / item->n_choices;
    }

  memset (m, 0, sizeof *m);
  m->n_items = n;
  m->n_choice_items = n_choice;
  m->ece_bins = self->options.ece_bins;
  m->acc = n > 0 ? (double) right / n : NAN;
  m->acc_stderr = stderr_of (right, n);
  bl_zeroshot_wilson_interval (right, n, &m->acc_ci_low, &m->acc_ci_high);
  m->acc_norm = n_choice > 0 ? (double) right_norm / n_choice : NAN;
  m->acc_norm_stderr = stderr_of (right_norm, n_choice);
  m->chance = n_choice > 0 ? chance / n_choice : NAN;
  m->ece = bl_zeroshot_ece (probs, offsets, gold, n_choice, m->ece_bins);
  m->brier = bl_zeroshot_brier (probs, offsets, gold, n_choice);
  m->balance = bl_zeroshot_balance (probs, offsets, gold, n_choice);
  m->mean_confidence = n_choice > 0 ? conf / n_choice : NAN;
  m->mean_loglik = n > 0 ? gold_ll / n : NAN;
  m->ppl = n > 0 ? exp (-m->mean_loglik) : NAN;
}

/**
 * bl_zeroshot_get_metrics:
 * @self: an evaluation
 * @out: (out caller-allocates): the metrics over the items done so far
 *
 * May be called at any time, also from another thread while the evaluation runs.
 */
void
bl_zeroshot_get_metrics (BlZeroshot        *self,
                         BlZeroshotMetrics *out)
{
  g_return_if_fail (BL_IS_ZEROSHOT (self));
  g_return_if_fail (out != NULL);

  g_mutex_lock (&self->lock);
  compute_metrics (self, out);
  g_mutex_unlock (&self->lock);
}

/**
 * bl_zeroshot_get_item_result:
 * @self: an evaluation
 * @index: an item index, below bl_zeroshot_get_n_items()
 * @loglik: (out) (optional) (transfer none): the summed log-likelihood of each choice
 * @n_choices: (out) (optional): the number of choices
 * @pred: (out) (optional): the predicted choice (greedy items: 0 when the target is the
 *   greedy continuation, −1 when not)
 * @pred_norm: (out) (optional): the prediction of the length-normalised scores
 *
 * Returns: %TRUE when the item has been scored
 */
gboolean
bl_zeroshot_get_item_result (BlZeroshot     *self,
                             guint           index,
                             const double  **loglik,
                             guint          *n_choices,
                             int            *pred,
                             int            *pred_norm)
{
  gboolean done;

  g_return_val_if_fail (BL_IS_ZEROSHOT (self), FALSE);
  g_return_val_if_fail (index < self->n_items, FALSE);

  g_mutex_lock (&self->lock);
  done = self->done[index];
  if (loglik != NULL)
    *loglik = self->loglik + self->offsets[index];
  if (n_choices != NULL)
    *n_choices = self->offsets[index + 1] - self->offsets[index];
  if (pred != NULL)
    *pred = self->pred[index];
  if (pred_norm != NULL)
    *pred_norm = self->pred_norm[index];
  g_mutex_unlock (&self->lock);
  return done;
}

static gboolean
store_dataset (BlStore                    *store,
               const BlZeroshotProvenance *prov,
               GError                    **error)
{
  g_autoptr(sqlite3_stmt) d = NULL;

  d = bl_store_rows_prepare (store,
                             "INSERT INTO datasets (sha256, kind, name, path, first_seen, "
                             "  last_seen) "
                             "VALUES (?1, ?2, ?3, ?4, " BL_STORE_NOW_SQL ", " BL_STORE_NOW_SQL ") "
                             "ON CONFLICT (sha256, kind) DO UPDATE SET "
                             "  name = excluded.name, "
                             "  path = coalesce (excluded.path, path), "
                             "  last_seen = excluded.last_seen",
                             "store zero-shot result: record dataset", error);
  if (d == NULL)
    return FALSE;
  bl_store_rows_bind_text (d, 1, prov->dataset_sha256);
  bl_store_rows_bind_text (d, 2, prov->dataset_kind);
  bl_store_rows_bind_text (d, 3, prov->dataset_name);
  bl_store_rows_bind_text (d, 4, prov->dataset_path);
  return bl_store_rows_step_done (store, d, "store zero-shot result: record dataset", error);
}

static gint64
store_run_row (BlZeroshot                 *self,
               BlStore                    *store,
               const BlZeroshotProvenance *prov,
               const BlZeroshotMetrics    *m,
               const char                 *status,
               const char                 *message,
               GError                    **error)
{
  g_autoptr(sqlite3_stmt) stmt = NULL;
  BlModel *model = bl_engine_get_model (self->engine);

  stmt = bl_store_rows_prepare (store,
                                "INSERT INTO zeroshot_runs (started_at, finished_at, status, "
                                "  model_fingerprint, task, dataset_sha256, dataset_kind, "
                                "  tokenizer_hash, add_bos, item_limit, n_items, n_done, seed, "
                                "  ece_bins, backend, threads, plan_json, acc, acc_stderr, "
                                "  acc_ci_low, acc_ci_high, acc_norm, acc_norm_stderr, chance, "
                                "  ece, brier, balance, mean_confidence, mean_loglik, ppl, "
                                "  wall_seconds, message, bitlens_version, host) "
                                "VALUES (?1, " BL_STORE_NOW_SQL ", ?2, ?3, ?4, ?5, ?6, ?7, ?8, "
                                "  ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, "
                                "  ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29, ?30, ?31, ?32, "
                                "  ?33)",
                                "store zero-shot result: insert result", error);
  if (stmt == NULL)
    return 0;
  bl_store_rows_bind_text (stmt, 1, self->started_at);
  bl_store_rows_bind_text (stmt, 2, status);
  bl_store_rows_bind_text (stmt, 3, bl_model_get_fingerprint (model));
  bl_store_rows_bind_text (stmt, 4, prov->task);
  bl_store_rows_bind_text (stmt, 5, prov->dataset_sha256);
  bl_store_rows_bind_text (stmt, 6, prov->dataset_kind);
  bl_store_rows_bind_text (stmt, 7, bl_tokenizer_get_hash (self->tokenizer));
  sqlite3_bind_int (stmt, 8, self->options.add_bos ? 1 : 0);
  sqlite3_bind_int64 (stmt, 9, self->options.limit);
  sqlite3_bind_int64 (stmt, 10, self->n_items);
  sqlite3_bind_int64 (stmt, 11, m->n_items);
  sqlite3_bind_int64 (stmt, 12, (gint64) self->options.seed);
  sqlite3_bind_int64 (stmt, 13, m->ece_bins);
  bl_store_rows_bind_text (stmt, 14, prov->backend);
  if (prov->threads > 0)
    sqlite3_bind_int (stmt, 15, prov->threads);
  bl_store_rows_bind_text (stmt, 16, prov->plan_json);
  bl_store_rows_bind_real (stmt, 17, m->acc);
  bl_store_rows_bind_real (stmt, 18, m->acc_stderr);
  bl_store_rows_bind_real (stmt, 19, m->acc_ci_low);
  bl_store_rows_bind_real (stmt, 20, m->acc_ci_high);
  bl_store_rows_bind_real (stmt, 21, m->acc_norm);
  bl_store_rows_bind_real (stmt, 22, m->acc_norm_stderr);
  bl_store_rows_bind_real (stmt, 23, m->chance);
  bl_store_rows_bind_real (stmt, 24, m->ece);
  bl_store_rows_bind_real (stmt, 25, m->brier);
  bl_store_rows_bind_real (stmt, 26, m->balance);
  bl_store_rows_bind_real (stmt, 27, m->mean_confidence);
  bl_store_rows_bind_real (stmt, 28, m->mean_loglik);
  bl_store_rows_bind_real (stmt, 29, m->ppl);
  bl_store_rows_bind_real (stmt, 30, self->wall_seconds);
  bl_store_rows_bind_text (stmt, 31, message);
  bl_store_rows_bind_text (stmt, 32, BITLENS_VERSION);
  bl_store_rows_bind_text (stmt, 33, g_get_host_name ());
  if (!bl_store_rows_step_done (store, stmt, "store zero-shot result: insert result", error))
    return 0;
  return bl_store_rows_last_id (store);
}

static gboolean
store_item_rows (BlZeroshot  *self,
                 BlStore     *store,
                 gint64       run_id,
                 GError     **error)
{
  g_autoptr(sqlite3_stmt) stmt = NULL;
  g_autoptr(GString) json = g_string_new (NULL);

  stmt = bl_store_rows_prepare (store,
                                "INSERT INTO zeroshot_items (run_id, item_index, gold, pred, "
                                "  pred_norm, loglik) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                                "store zero-shot result: insert items", error);
  if (stmt == NULL)
    return FALSE;
  for (guint i = 0; i < self->n_items; i++)
    {
      const BlMcItem *item = g_ptr_array_index (self->items, i);
      char buf[G_ASCII_DTOSTR_BUF_SIZE];

      if (!self->done[i])
        continue;
      g_string_assign (json, "[");
      for (guint c = 0; c < item->n_choices; c++)
        {
          /* %.17g round-trips a double; the locale never changes the decimal point here */
          g_ascii_formatd (buf, sizeof buf, "%.17g", self->loglik[self->offsets[i] + c]);
          g_string_append_printf (json, "%s%s", c > 0 ? ", " : "", buf);
        }
      g_string_append_c (json, ']');

      sqlite3_reset (stmt);
      sqlite3_bind_int64 (stmt, 1, run_id);
      sqlite3_bind_int64 (stmt, 2, i);
      sqlite3_bind_int (stmt, 3, item->gold);
      sqlite3_bind_int (stmt, 4, self->pred[i]);
      sqlite3_bind_int (stmt, 5, self->pred_norm[i]);
      bl_store_rows_bind_text (stmt, 6, json->str);
      if (!bl_store_rows_step_done (store, stmt, "store zero-shot result: insert items", error))
        return FALSE;
    }
  return TRUE;
}

/**
 * bl_zeroshot_store:
 * @self: an evaluation that has been executed (completely or not)
 * @store: the store
 * @provenance: task and dataset identity, backend, plan
 * @status: "finished", "failed" or "cancelled"
 * @message: (nullable): why it failed or was cancelled
 * @error: return location for a #GError
 *
 * Records the result and every scored item's choice log-likelihoods in one transaction
 * (tables zeroshot_runs and zeroshot_items), together with the model and dataset rows.
 * Nothing is written while the evaluation runs, so an interrupted process leaves no
 * partial row. It uses the store's connection directly: do not call it while another
 * thread works on the same #BlStore.
 *
 * Returns: the stored result's id (> 0), or 0 with @error set
 */
gint64
bl_zeroshot_store (BlZeroshot                 *self,
                   BlStore                    *store,
                   const BlZeroshotProvenance *provenance,
                   const char                 *status,
                   const char                 *message,
                   GError                    **error)
{
  BlZeroshotMetrics m;
  gint64 id = 0;
  gboolean ok;

  g_return_val_if_fail (BL_IS_ZEROSHOT (self), 0);
  g_return_val_if_fail (BL_IS_STORE (store), 0);
  g_return_val_if_fail (provenance != NULL, 0);
  g_return_val_if_fail (provenance->task != NULL && provenance->dataset_name != NULL, 0);
  g_return_val_if_fail (provenance->dataset_sha256 != NULL, 0);
  g_return_val_if_fail (provenance->dataset_kind != NULL, 0);
  g_return_val_if_fail (status != NULL, 0);
  g_return_val_if_fail (self->executed, 0);
  g_return_val_if_fail (error == NULL || *error == NULL, 0);

  if (!bl_store_rows_exec (store, "BEGIN IMMEDIATE",
                           "store zero-shot result: begin transaction", error))
    return 0;

  g_mutex_lock (&self->lock);
  compute_metrics (self, &m);
  ok = bl_store_rows_upsert_model (store, bl_engine_get_model (self->engine), error)
       && store_dataset (store, provenance, error)
       && (id = store_run_row (self, store, provenance, &m, status, message, error)) > 0
       && store_item_rows (self, store, id, error);
  g_mutex_unlock (&self->lock);

  if (!ok || !bl_store_rows_exec (store, "COMMIT", "store zero-shot result: commit", error))
    {
      bl_store_rows_rollback (store);
      return 0;
    }
  return id;
}
