/* bl-kl.c: KL divergence, top-1 agreement and Δp against a cached full-precision baseline
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "bl-kl.h"

#include <math.h>
#include <string.h>

#include "bl-error.h"
#include "bl-ppl.h"
#include "bl-store-private.h"
#include "bl-store-rows-private.h"

/**
 * SECTION:bl-kl
 * @title: KL against a baseline
 *
 * See bl-kl.h for the quantities. The baseline of a window is stored in the kl_baselines
 * table (store migration 4), one row per (model, tokenizer, dataset, protocol, ctx, stride,
 * top-k, window), written in its own transaction as soon as it is computed, so an interrupted
 * evaluation keeps the windows it finished and a rerun computes only the rest. The arrays
 * are stored as little-endian fp32 / int32 blobs.
 */

/* ------------------------------------------------------------------------------------------ */
/* one row of logits */

/* Log-softmax pieces of one row, in the order both sides compute them: the row maximum in
 * fp32, Σ exp(x − max) in double. */
typedef struct
{
  float max;
  double log_sum;
} RowNorm;

static void
row_norm (const float *restrict x,
          int                   vocab,
          RowNorm              *out)
{
  float max = x[0];
  double sum = 0.0;

  for (int v = 1; v < vocab; v++)
    max = x[v] > max ? x[v] : max;
  for (int v = 0; v < vocab; v++)
    sum += exp ((double) (x[v] - max));
  out->max = max;
  out->log_sum = log (sum);
}

static float
row_logp (const float   *x,
          const RowNorm *n,
          int32_t        v)
{
  return (float) ((double) (x[v] - n->max) - n->log_sum);
}

/* The k + 1 buckets of one row at the token ids @ids: log-probabilities, and the log of the
 * mass outside them, summed directly over the other tokens (1 − Σ top would cancel when the
 * top-k hold nearly all the mass). @mask is a zeroed scratch of @vocab bytes, left zeroed. */
static void
row_buckets (const float   *x,
             int            vocab,
             const RowNorm *n,
             const int32_t *ids,
             int            k,
             guint8        *mask,
             float         *logp,
             float         *other)
{
  double tail = 0.0;

  for (int i = 0; i < k; i++)
    {
      logp[i] = row_logp (x, n, ids[i]);
      mask[ids[i]] = 1;
    }
  for (int v = 0; v < vocab; v++)
    if (!mask[v])
      tail += exp ((double) (x[v] - n->max));
  for (int i = 0; i < k; i++)
    mask[ids[i]] = 0;
  *other = tail > 0.0 ? (float) (log (tail) - n->log_sum) : -INFINITY;
}

/* The @k largest entries of @x, largest first; among equal values the lower id comes first
 * (the scan is in id order and only a strictly larger value moves an entry). */
static void
row_top_k (const float *restrict x,
           int                   vocab,
           int                   k,
           int32_t              *ids,
           float                *vals)
{
  int n = 0;

  for (int v = 0; v < vocab; v++)
    {
      int pos;

      if (n == k && !(x[v] > vals[k - 1]))
        continue;
      pos = n < k ? n++ : k - 1;
      while (pos > 0 && x[v] > vals[pos - 1])
        {
          vals[pos] = vals[pos - 1];
          ids[pos] = ids[pos - 1];
          pos--;
        }
      vals[pos] = x[v];
      ids[pos] = v;
    }
}

static int
row_argmax (const float *x,
            int          vocab)
{
  int best = 0;

  for (int v = 1; v < vocab; v++)
    if (x[v] > x[best])
      best = v;
  return best;
}

static BlKlWindow *
window_alloc (int n_positions,
              int top_k)
{
  BlKlWindow *w = g_new0 (BlKlWindow, 1);

  w->n_positions = n_positions;
  w->top_k = top_k;
  w->top_ids = g_new (int32_t, (gsize) n_positions * top_k);
  w->top_logp = g_new (float, (gsize) n_positions * top_k);
  w->other_logp = g_new (float, n_positions);
  w->target_logp = g_new (float, n_positions);
  return w;
}

/**
 * bl_kl_window_new:
 * @logits: the full-precision logits of the window's first @window->length − 1 positions,
 *   [length − 1, @vocab] (the last id is only ever a target)
 * @vocab: vocabulary size
 * @window_ids: the @window->length ids the model ran (BOS already in place)
 * @window: the window
 * @window_index: its index in file order
 * @top_k: log-probabilities to keep per position (≥ 1; capped at @vocab)
 *
 * Reduces a window's logits to its baseline: for each scored position j (first_target …
 * length − 1), row j − 1 of @logits predicts @window_ids[j].
 *
 * Returns: (transfer full): the baseline window
 */
BlKlWindow *
bl_kl_window_new (const float    *logits,
                  int             vocab,
                  const int32_t  *window_ids,
                  const BlWindow *window,
                  int             window_index,
                  int             top_k)
{
  g_autofree guint8 *mask = NULL;
  g_autofree float *vals = NULL;
  BlKlWindow *w;

  g_return_val_if_fail (logits != NULL && window_ids != NULL && window != NULL, NULL);
  g_return_val_if_fail (vocab > 0 && top_k > 0, NULL);
  g_return_val_if_fail (window->first_target >= 1 && window->first_target < window->length, NULL);

  top_k = MIN (top_k, vocab);
  w = window_alloc (window->length - window->first_target, top_k);
  w->window_index = window_index;
  w->start = window->start;
  w->length = window->length;
  w->first_target = window->first_target;
  mask = g_new0 (guint8, vocab);
  vals = g_new (float, top_k);

  for (int p = 0; p < w->n_positions; p++)
    {
      const float *x = logits + (gsize) (w->first_target + p - 1) * vocab;
      int32_t *ids = w->top_ids + (gsize) p * top_k;
      RowNorm n;

      row_norm (x, vocab, &n);
      row_top_k (x, vocab, top_k, ids, vals);
      row_buckets (x, vocab, &n, ids, top_k, mask, w->top_logp + (gsize) p * top_k,
                   &w->other_logp[p]);
      w->target_logp[p] = row_logp (x, &n, window_ids[w->first_target + p]);
      w->sum_nll -= (double) (x[window_ids[w->first_target + p]] - n.max) - n.log_sum;
    }
  return w;
}

void
bl_kl_window_free (BlKlWindow *window)
{
  if (window == NULL)
    return;
  g_free (window->top_ids);
  g_free (window->top_logp);
  g_free (window->other_logp);
  g_free (window->target_logp);
  g_free (window);
}

static double
bucket_term (float lp,
             float lq)
{
  double p;

  /* a bucket p gives no mass to adds nothing, whatever q gives it */
  if (lp == -INFINITY)
    return 0.0;
  p = exp ((double) lp);
  return p * ((double) lp - (double) lq);
}

/**
 * bl_kl_window_compare:
 * @base: the baseline window
 * @logits: the compared model's logits over the same ids, [length − 1, @vocab]
 * @vocab: vocabulary size
 * @window_ids: the window's ids
 * @out: (out caller-allocates): the window's sums
 *
 * Compares a model with the baseline, position by position (see bl-kl.h).
 */
void
bl_kl_window_compare (const BlKlWindow *base,
                      const float      *logits,
                      int               vocab,
                      const int32_t    *window_ids,
                      BlKlWindowResult *out)
{
  g_autofree guint8 *mask = NULL;
  g_autofree float *lq = NULL;
  int k;

  g_return_if_fail (base != NULL && logits != NULL && window_ids != NULL && out != NULL);

  memset (out, 0, sizeof *out);
  k = base->top_k;
  mask = g_new0 (guint8, vocab);
  lq = g_new (float, k);
  out->n_positions = base->n_positions;
  out->base_sum_nll = base->sum_nll;

  for (int p = 0; p < base->n_positions; p++)
    {
      const float *x = logits + (gsize) (base->first_target + p - 1) * vocab;
      const int32_t *ids = base->top_ids + (gsize) p * k;
      const float *lp = base->top_logp + (gsize) p * k;
      int32_t target = window_ids[base->first_target + p];
      float other, target_q;
      double kl = 0.0;
      RowNorm n;

      row_norm (x, vocab, &n);
      row_buckets (x, vocab, &n, ids, k, mask, lq, &other);
      for (int i = 0; i < k; i++)
        kl += bucket_term (lp[i], lq[i]);
      kl += bucket_term (base->other_logp[p], other);
      out->sum_kl += kl;

      out->n_top1 += row_argmax (x, vocab) == ids[0];
      target_q = row_logp (x, &n, target);
      out->sum_dp += exp ((double) target_q) - exp ((double) base->target_logp[p]);
      out->sum_nll -= (double) (x[target] - n.max) - n.log_sum;
    }
}

/**
 * bl_kl_exact:
 * @p_logits: one row of reference logits
 * @q_logits: one row of compared logits
 * @vocab: their length
 *
 * The full-vocabulary KL(p ‖ q) of two logit rows, in double. The cached comparison cannot
 * compute it (it keeps only the top-k); this is the quantity its k + 1 buckets bound from
 * below, for tests and for callers that hold both rows.
 *
 * Returns: KL in nats
 */
double
bl_kl_exact (const float *p_logits,
             const float *q_logits,
             int          vocab)
{
  RowNorm np, nq;
  double kl = 0.0;

  g_return_val_if_fail (p_logits != NULL && q_logits != NULL && vocab > 0, NAN);

  row_norm (p_logits, vocab, &np);
  row_norm (q_logits, vocab, &nq);
  for (int v = 0; v < vocab; v++)
    {
      double lp = (double) (p_logits[v] - np.max) - np.log_sum;
      double lq = (double) (q_logits[v] - nq.max) - nq.log_sum;

      kl += exp (lp) * (lp - lq);
    }
  return kl;
}

/* ------------------------------------------------------------------------------------------ */
/* the baseline cache */

static gboolean
check_key (const BlKlKey  *key,
           GError        **error)
{
  if (key->model_fingerprint == NULL || key->tokenizer_hash == NULL ||
      key->dataset_sha256 == NULL || key->dataset_kind == NULL || key->protocol == NULL ||
      key->ctx < 2 || key->stride < 0 || key->top_k < 1)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT,
                   "a KL baseline key needs the model, tokenizer, dataset, protocol, a context "
                   "of at least 2 and a top-k of at least 1");
      return FALSE;
    }
  return TRUE;
}

static void
bind_key (sqlite3_stmt  *stmt,
          const BlKlKey *key)
{
  bl_store_rows_bind_text (stmt, 1, key->model_fingerprint);
  bl_store_rows_bind_text (stmt, 2, key->tokenizer_hash);
  bl_store_rows_bind_text (stmt, 3, key->dataset_sha256);
  bl_store_rows_bind_text (stmt, 4, key->dataset_kind);
  bl_store_rows_bind_text (stmt, 5, key->protocol);
  sqlite3_bind_int (stmt, 6, key->ctx);
  sqlite3_bind_int (stmt, 7, key->stride);
  sqlite3_bind_int (stmt, 8, key->top_k);
}

#define KEY_WHERE \
  "model_fingerprint = ?1 AND tokenizer_hash = ?2 AND dataset_sha256 = ?3 AND " \
  "dataset_kind = ?4 AND protocol = ?5 AND ctx = ?6 AND stride = ?7 AND top_k = ?8"

/* 32-bit words to and from their little-endian byte form, in place. */
static void
words_to_le (guint32 *words,
             gsize    n)
{
#if G_BYTE_ORDER == G_BIG_ENDIAN
  for (gsize i = 0; i < n; i++)
    words[i] = GUINT32_TO_LE (words[i]);
#endif
}

static void
bind_words (sqlite3_stmt *stmt,
            int           index,
            const void   *data,
            gsize         n)
{
  guint32 *copy = g_memdup2 (data, n * 4);

  words_to_le (copy, n);
  sqlite3_bind_blob64 (stmt, index, copy, n * 4, g_free);
}

static gboolean
column_words (sqlite3_stmt *stmt,
              int           index,
              void         *out,
              gsize         n)
{
  if (sqlite3_column_type (stmt, index) != SQLITE_BLOB ||
      (gsize) sqlite3_column_bytes (stmt, index) != n * 4)
    return FALSE;
  memcpy (out, sqlite3_column_blob (stmt, index), n * 4);
  words_to_le (out, n);
  return TRUE;
}

/**
 * bl_kl_store_load:
 * @store: the store
 * @key: the baseline's identity
 * @window: the window as the protocol makes it now
 * @window_index: its index in file order
 * @error: return location for a #GError
 *
 * Returns: (transfer full) (nullable): the cached baseline of the window; %NULL without
 *   @error when it is not cached; %NULL with %BL_ERROR_STORE when the row does not describe
 *   @window (another start, length or first target) or its arrays have the wrong size
 */
BlKlWindow *
bl_kl_store_load (BlStore         *store,
                  const BlKlKey   *key,
                  const BlWindow  *window,
                  int              window_index,
                  GError         **error)
{
  g_autoptr(sqlite3_stmt) stmt = NULL;
  g_autoptr(BlKlWindow) w = NULL;
  int rc, n_positions;

  g_return_val_if_fail (BL_IS_STORE (store), NULL);
  g_return_val_if_fail (key != NULL && window != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (!check_key (key, error))
    return NULL;
  stmt = bl_store_rows_prepare (store,
                                "SELECT start, length, first_target, sum_nll, top_ids, top_logp, "
                                "  other_logp, target_logp FROM kl_baselines WHERE " KEY_WHERE
                                "  AND window_index = ?9",
                                "reading a KL baseline", error);
  if (stmt == NULL)
    return NULL;
  bind_key (stmt, key);
  sqlite3_bind_int (stmt, 9, window_index);
  rc = sqlite3_step (stmt);
  if (rc == SQLITE_DONE)
    return NULL;
  if (rc != SQLITE_ROW)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_STORE, "%s: reading a KL baseline: %s",
                   bl_store_get_path (store), sqlite3_errmsg (bl_store_get_db (store)));
      return NULL;
    }

  if (sqlite3_column_int64 (stmt, 0) != window->start ||
      sqlite3_column_int (stmt, 1) != window->length ||
      sqlite3_column_int (stmt, 2) != window->first_target)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_STORE,
                   "%s: the cached KL baseline of window %d covers ids %" G_GINT64_FORMAT
                   " + %d from %d, but the protocol now makes it %" G_GINT64_FORMAT
                   " + %d from %d", bl_store_get_path (store), window_index,
                   (gint64) sqlite3_column_int64 (stmt, 0), sqlite3_column_int (stmt, 1),
                   sqlite3_column_int (stmt, 2), window->start, window->length,
                   window->first_target);
      return NULL;
    }
  n_positions = window->length - window->first_target;
  w = window_alloc (n_positions, key->top_k);
  w->window_index = window_index;
  w->start = window->start;
  w->length = window->length;
  w->first_target = window->first_target;
  w->sum_nll = sqlite3_column_double (stmt, 3);
  if (!column_words (stmt, 4, w->top_ids, (gsize) n_positions * key->top_k) ||
      !column_words (stmt, 5, w->top_logp, (gsize) n_positions * key->top_k) ||
      !column_words (stmt, 6, w->other_logp, n_positions) ||
      !column_words (stmt, 7, w->target_logp, n_positions))
    {
      g_set_error (error, BL_ERROR, BL_ERROR_STORE,
                   "%s: the cached KL baseline of window %d has arrays of the wrong size",
                   bl_store_get_path (store), window_index);
      return NULL;
    }
  return g_steal_pointer (&w);
}

/**
 * bl_kl_store_save:
 * @store: the store
 * @key: the baseline's identity (@key->top_k must be @window->top_k)
 * @window: the baseline window
 * @error: return location for a #GError
 *
 * Caches one window, in its own transaction (replacing an older row of the same window).
 *
 * Returns: %TRUE when written
 */
gboolean
bl_kl_store_save (BlStore           *store,
                  const BlKlKey     *key,
                  const BlKlWindow  *window,
                  GError           **error)
{
  g_autoptr(sqlite3_stmt) stmt = NULL;
  gsize n = window->n_positions;

  g_return_val_if_fail (BL_IS_STORE (store), FALSE);
  g_return_val_if_fail (key != NULL && window != NULL, FALSE);
  g_return_val_if_fail (key->top_k == window->top_k, FALSE);

  if (!check_key (key, error))
    return FALSE;
  stmt = bl_store_rows_prepare (store,
                                "INSERT OR REPLACE INTO kl_baselines (model_fingerprint, "
                                "  tokenizer_hash, dataset_sha256, dataset_kind, protocol, ctx, "
                                "  stride, top_k, window_index, start, length, first_target, "
                                "  sum_nll, top_ids, top_logp, other_logp, target_logp, created_at) "
                                "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, "
                                "  ?14, ?15, ?16, ?17, " BL_STORE_NOW_SQL ")",
                                "caching a KL baseline", error);
  if (stmt == NULL)
    return FALSE;
  bind_key (stmt, key);
  sqlite3_bind_int (stmt, 9, window->window_index);
  sqlite3_bind_int64 (stmt, 10, window->start);
  sqlite3_bind_int (stmt, 11, window->length);
  sqlite3_bind_int (stmt, 12, window->first_target);
  sqlite3_bind_double (stmt, 13, window->sum_nll);
  bind_words (stmt, 14, window->top_ids, n * window->top_k);
  bind_words (stmt, 15, window->top_logp, n * window->top_k);
  bind_words (stmt, 16, window->other_logp, n);
  bind_words (stmt, 17, window->target_logp, n);
  return bl_store_rows_step_done (store, stmt, "caching a KL baseline", error);
}

/**
 * bl_kl_store_count:
 * @store: the store
 * @key: a baseline's identity
 * @error: return location for a #GError
 *
 * Returns: how many windows of that baseline are cached, or -1 with @error set
 */
gint64
bl_kl_store_count (BlStore        *store,
                   const BlKlKey  *key,
                   GError        **error)
{
  g_autoptr(sqlite3_stmt) stmt = NULL;

  g_return_val_if_fail (BL_IS_STORE (store), -1);
  g_return_val_if_fail (key != NULL, -1);

  if (!check_key (key, error))
    return -1;
  stmt = bl_store_rows_prepare (store, "SELECT count (*) FROM kl_baselines WHERE " KEY_WHERE,
                                "counting KL baseline windows", error);
  if (stmt == NULL)
    return -1;
  bind_key (stmt, key);
  if (sqlite3_step (stmt) != SQLITE_ROW)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_STORE, "%s: counting KL baseline windows: %s",
                   bl_store_get_path (store), sqlite3_errmsg (bl_store_get_db (store)));
      return -1;
    }
  return sqlite3_column_int64 (stmt, 0);
}

/* ------------------------------------------------------------------------------------------ */
/* quantized runs */

/**
 * bl_kl_store_begin_run:
 * @store: the store
 * @run_id: a run from bl_store_begin_run()
 * @rec: the plan's sizes and the top-k (its @kl members are not read)
 * @error: return location for a #GError
 *
 * Returns: %TRUE when the run_quant row is written
 */
gboolean
bl_kl_store_begin_run (BlStore                 *store,
                       gint64                   run_id,
                       const BlRunQuantRecord  *rec,
                       GError                 **error)
{
  g_autoptr(sqlite3_stmt) stmt = NULL;

  g_return_val_if_fail (BL_IS_STORE (store), FALSE);
  g_return_val_if_fail (rec != NULL, FALSE);

  stmt = bl_store_rows_prepare (store,
                                "INSERT INTO run_quant (run_id, linear_bits_per_weight, "
                                "  model_bits_per_weight, model_bytes, top_k) "
                                "VALUES (?1, ?2, ?3, ?4, ?5)",
                                "recording a quantized run", error);
  if (stmt == NULL)
    return FALSE;
  sqlite3_bind_int64 (stmt, 1, run_id);
  bl_store_rows_bind_real (stmt, 2, rec->linear_bits_per_weight);
  bl_store_rows_bind_real (stmt, 3, rec->model_bits_per_weight);
  bl_store_rows_bind_real (stmt, 4, rec->model_bytes);
  if (rec->top_k > 0)
    sqlite3_bind_int (stmt, 5, rec->top_k);
  else
    sqlite3_bind_null (stmt, 5);
  return bl_store_rows_step_done (store, stmt, "recording a quantized run", error);
}

/**
 * bl_kl_store_add_run_window:
 * @store: the store
 * @run_id: the run
 * @window_index: the window's index in file order
 * @result: its comparison with the baseline
 * @error: return location for a #GError
 *
 * Records one window's KL, top-1 and Δp sums. Written before the window's run_windows row
 * (bl_store_add_window()), so a window the runs table counts always has its KL row.
 *
 * Returns: %TRUE when written
 */
gboolean
bl_kl_store_add_run_window (BlStore                 *store,
                            gint64                   run_id,
                            int                      window_index,
                            const BlKlWindowResult  *result,
                            GError                 **error)
{
  g_autoptr(sqlite3_stmt) stmt = NULL;

  g_return_val_if_fail (BL_IS_STORE (store), FALSE);
  g_return_val_if_fail (result != NULL, FALSE);

  stmt = bl_store_rows_prepare (store,
                                "INSERT OR REPLACE INTO run_kl_windows (run_id, window_index, "
                                "  n_positions, sum_kl, n_top1, sum_dp, base_sum_nll) "
                                "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                                "recording a window's KL", error);
  if (stmt == NULL)
    return FALSE;
  sqlite3_bind_int64 (stmt, 1, run_id);
  sqlite3_bind_int (stmt, 2, window_index);
  sqlite3_bind_int (stmt, 3, result->n_positions);
  sqlite3_bind_double (stmt, 4, result->sum_kl);
  sqlite3_bind_int (stmt, 5, result->n_top1);
  sqlite3_bind_double (stmt, 6, result->sum_dp);
  sqlite3_bind_double (stmt, 7, result->base_sum_nll);
  return bl_store_rows_step_done (store, stmt, "recording a window's KL", error);
}

/**
 * bl_kl_store_finish_run:
 * @store: the store
 * @run_id: the run
 * @summary: the comparison over the windows done (also for a cancelled run)
 * @error: return location for a #GError
 *
 * Returns: %TRUE when written
 */
gboolean
bl_kl_store_finish_run (BlStore            *store,
                        gint64              run_id,
                        const BlKlSummary  *summary,
                        GError            **error)
{
  g_autoptr(sqlite3_stmt) stmt = NULL;

  g_return_val_if_fail (BL_IS_STORE (store), FALSE);
  g_return_val_if_fail (summary != NULL, FALSE);

  stmt = bl_store_rows_prepare (store,
                                "UPDATE run_quant SET n_positions = ?2, kl = ?3, kl_ci_low = ?4, "
                                "  kl_ci_high = ?5, top1 = ?6, delta_p = ?7, base_mean_nll = ?8 "
                                "WHERE run_id = ?1",
                                "recording a run's KL", error);
  if (stmt == NULL)
    return FALSE;
  sqlite3_bind_int64 (stmt, 1, run_id);
  sqlite3_bind_int64 (stmt, 2, summary->n_positions);
  bl_store_rows_bind_real (stmt, 3, summary->kl);
  bl_store_rows_bind_real (stmt, 4, summary->kl_ci_low);
  bl_store_rows_bind_real (stmt, 5, summary->kl_ci_high);
  bl_store_rows_bind_real (stmt, 6, summary->top1);
  bl_store_rows_bind_real (stmt, 7, summary->delta_p);
  bl_store_rows_bind_real (stmt, 8, summary->base_nll);
  return bl_store_rows_step_done (store, stmt, "recording a run's KL", error);
}

/**
 * bl_kl_store_get_run:
 * @store: the store
 * @run_id: a run
 * @out: (out caller-allocates): its record
 * @error: return location for a #GError
 *
 * Returns: %TRUE when the run has a run_quant row; %FALSE with %BL_ERROR_NOT_FOUND when it
 *   is not a quantized run, or %BL_ERROR_STORE
 */
gboolean
bl_kl_store_get_run (BlStore           *store,
                     gint64             run_id,
                     BlRunQuantRecord  *out,
                     GError           **error)
{
  g_autoptr(sqlite3_stmt) stmt = NULL;
  int rc;

  g_return_val_if_fail (BL_IS_STORE (store), FALSE);
  g_return_val_if_fail (out != NULL, FALSE);

  stmt = bl_store_rows_prepare (store,
                                "SELECT linear_bits_per_weight, model_bits_per_weight, "
                                "  model_bytes, top_k, n_positions, kl, kl_ci_low, kl_ci_high, "
                                "  top1, delta_p, base_mean_nll, "
                                "  (SELECT count (*) FROM run_kl_windows w WHERE w.run_id = ?1) "
                                "FROM run_quant WHERE run_id = ?1",
                                "reading a quantized run", error);
  if (stmt == NULL)
    return FALSE;
  sqlite3_bind_int64 (stmt, 1, run_id);
  rc = sqlite3_step (stmt);
  if (rc == SQLITE_DONE)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_NOT_FOUND,
                   "%s: run %" G_GINT64_FORMAT " has no quantization record",
                   bl_store_get_path (store), run_id);
      return FALSE;
    }
  if (rc != SQLITE_ROW)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_STORE, "%s: reading a quantized run: %s",
                   bl_store_get_path (store), sqlite3_errmsg (bl_store_get_db (store)));
      return FALSE;
    }
  memset (out, 0, sizeof *out);
  out->linear_bits_per_weight = bl_store_rows_column_real (stmt, 0);
  out->model_bits_per_weight = bl_store_rows_column_real (stmt, 1);
  out->model_bytes = bl_store_rows_column_real (stmt, 2);
  out->top_k = sqlite3_column_int (stmt, 3);
  out->kl.n_positions = sqlite3_column_int64 (stmt, 4);
  out->kl.kl = bl_store_rows_column_real (stmt, 5);
  out->kl.kl_ci_low = bl_store_rows_column_real (stmt, 6);
  out->kl.kl_ci_high = bl_store_rows_column_real (stmt, 7);
  out->kl.top1 = bl_store_rows_column_real (stmt, 8);
  out->kl.delta_p = bl_store_rows_column_real (stmt, 9);
  out->kl.base_nll = bl_store_rows_column_real (stmt, 10);
  out->kl.n_windows = (guint) sqlite3_column_int (stmt, 11);
  out->kl.nll = NAN;
  return TRUE;
}

/* ------------------------------------------------------------------------------------------ */
/* accumulated statistics */

struct _BlKlStats
{
  BlPplStats *kl;               /* Σ KL per window: its "NLL" machinery gives the mean and CI */
  gint64 n_top1;
  double sum_dp;
  double sum_nll;
  double base_sum_nll;
};

BlKlStats *
bl_kl_stats_new (void)
{
  BlKlStats *stats = g_new0 (BlKlStats, 1);

  stats->kl = bl_ppl_stats_new ();
  return stats;
}

void
bl_kl_stats_free (BlKlStats *stats)
{
  if (stats == NULL)
    return;
  bl_ppl_stats_free (stats->kl);
  g_free (stats);
}

/**
 * bl_kl_stats_add_window:
 * @stats: statistics
 * @result: one window's comparison
 */
void
bl_kl_stats_add_window (BlKlStats              *stats,
                        const BlKlWindowResult *result)
{
  g_return_if_fail (stats != NULL && result != NULL);

  bl_ppl_stats_add_window (stats->kl, result->sum_kl, result->n_positions);
  stats->n_top1 += result->n_top1;
  stats->sum_dp += result->sum_dp;
  stats->sum_nll += result->sum_nll;
  stats->base_sum_nll += result->base_sum_nll;
}

/**
 * bl_kl_stats_get_summary:
 * @stats: statistics
 * @out: (out caller-allocates): the summary
 *
 * The means over every position so far. The KL interval treats windows as the independent
 * units, as the perplexity interval does (bl_ppl_stats_get_nll_ci(): mean ± t·se over the
 * windows' sums).
 */
void
bl_kl_stats_get_summary (const BlKlStats *stats,
                         BlKlSummary     *out)
{
  gint64 n;

  g_return_if_fail (stats != NULL && out != NULL);

  n = bl_ppl_stats_get_n_tokens (stats->kl);
  out->n_windows = bl_ppl_stats_get_n_windows (stats->kl);
  out->n_positions = n;
  out->kl = n > 0 ? bl_ppl_stats_get_mean_nll (stats->kl) : NAN;
  if (!bl_ppl_stats_get_nll_ci (stats->kl, &out->kl_ci_low, &out->kl_ci_high))
    out->kl_ci_low = out->kl_ci_high = NAN;
  out->top1 = n > 0 ? (double) stats->n_top1 / n : NAN;
  out->delta_p = n > 0 ? stats->sum_dp / n : NAN;
  out->nll = n > 0 ? stats->sum_nll / n : NAN;
  out->base_nll = n > 0 ? stats->base_sum_nll / n : NAN;
}
