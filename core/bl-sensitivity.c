/* bl-sensitivity.c: how much each linear layer matters to the model's output
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * A BlSensitivity holds a measurement budget: a few windows of a text (bl_calib_make_windows()),
 * the calibration statistics of the full-precision model over them (core/bl-calib.h), and the
 * full-precision log-probabilities of every position, kept in memory as the KL baseline.
 * For a weight format it then ranks the linear layers by five measures:
 *
 *   - weight QSNR (bl-metrics-error.h) and its linear form rel_err = ‖ΔW‖²/‖W‖²;
 *   - one-at-a-time KL: a fresh engine with only this layer fake-quantized (all others in
 *     full precision) runs the budget, and KL(p_fp ‖ p_q) is averaged over its positions,
 *     exactly over the whole vocabulary, with the change of NLL and the top-1 agreement;
 *   - a Hessian-trace proxy: HAWQ's Ω = Tr(H)/n · ‖ΔW‖² (methods.md §5). HAWQ takes H as the
 *     loss Hessian by Hutchinson's estimator, which needs second-order backprop; here H is
 *     the layer-wise Gauss–Newton Hessian of the output error, E[x xᵀ] ⊗ I (the H of GPTQ and
 *     OBQ), whose trace per weight is mean_j E[x_j²] from the calibration statistics. The
 *     diagonal of the same H weights the error per input column: out_err =
 *     Σ_j E[x_j²]·‖ΔW_:j‖² / Σ_j E[x_j²]·‖W_:j‖², the relative output error under the
 *     calibration inputs;
 *   - LIM (Dumitru et al., methods.md §11) of the layer's block, from bl-calib's block
 *     input/output cosine;
 *   - ZD (the same paper): the fraction of weights more than one standard deviation above
 *     their mean, per layer and pooled over the block's linear weights (data-free).
 *
 * Caching: with a store, the budget (model, text, tokenizer, ctx, windows, seed, baseline
 * NLL) is a row of sensitivity_budgets, each layer's numbers for a format a row of
 * sensitivity, and plans measured on the budget rows of estimator_samples; a format whose
 * rows are all there is read back instead of measured again.
 */
#include "bl-sensitivity.h"

#include <json-glib/json-glib.h>
#include <math.h>
#include <string.h>

#include "bl-engine.h"
#include "bl-error.h"
#include "bl-metrics-error.h"
#include "bl-protocol.h"
#include "bl-store-rows-private.h"

#define DEFAULT_WINDOWS 8
#define DEFAULT_CTX 256

G_DEFINE_BOXED_TYPE (BlLayerSensitivity, bl_layer_sensitivity, bl_layer_sensitivity_copy,
                     bl_layer_sensitivity_free)

BlLayerSensitivity *
bl_layer_sensitivity_copy (const BlLayerSensitivity *s)
{
  BlLayerSensitivity *copy;

  g_return_val_if_fail (s != NULL, NULL);

  copy = g_new (BlLayerSensitivity, 1);
  *copy = *s;
  copy->name = g_strdup (s->name);
  copy->weight_spec = g_strdup (s->weight_spec);
  return copy;
}

void
bl_layer_sensitivity_free (BlLayerSensitivity *s)
{
  if (s == NULL)
    return;
  g_free (s->name);
  g_free (s->weight_spec);
  g_free (s);
}

/* What the budget knows about one linear layer. */
typedef struct
{
  char *name;
  BlLayerKind kind;
  int block;
  int64_t rows;
  int64_t cols;
  double *mean_sq;     /* [cols] E[x_j²] over the budget */
  double trace;        /* mean_j E[x_j²] */
  double lim;
  double zd;
  double zd_block;
} LayerInfo;

static void
layer_info_free (gpointer data)
{
  LayerInfo *l = data;

  g_free (l->name);
  g_free (l->mean_sq);
  g_free (l);
}

struct _BlSensitivity
{
  GObject parent_instance;

  BlModel *model;
  BlBackend *backend;
  int32_t *ids;
  gint64 n_ids;
  BlSensitivityOptions options;
  char *dataset_name;
  char *dataset_sha256;
  GArray *windows;                 /* BlWindow */
  BlStore *store;
  BlSensitivityProgressFunc progress;
  gpointer progress_data;

  /* Set by bl_sensitivity_prepare() */
  gboolean prepared;
  GPtrArray *layers;               /* LayerInfo, in the engine's order */
  GHashTable *by_name;             /* name → LayerInfo */
  gsize vocab;
  gint64 n_rows;                   /* scored positions of the budget */
  float *base_logp;                /* [n_rows × vocab] full-precision log-probabilities */
  int32_t *targets;                /* [n_rows] the next ids */
  int32_t *base_top1;              /* [n_rows] the full-precision argmax */
  double base_nll;
  gint64 budget_id;

  BlEngine *engine;                /* the full-precision engine the measurements swap into */

  GHashTable *tables;              /* canonical spec → GPtrArray of BlLayerSensitivity */
};

G_DEFINE_FINAL_TYPE (BlSensitivity, bl_sensitivity, G_TYPE_OBJECT)

static void
bl_sensitivity_finalize (GObject *object)
{
  BlSensitivity *self = BL_SENSITIVITY (object);

  g_clear_pointer (&self->engine, bl_engine_free);
  g_clear_object (&self->model);
  g_clear_pointer (&self->ids, g_free);
  g_clear_pointer (&self->dataset_name, g_free);
  g_clear_pointer (&self->dataset_sha256, g_free);
  g_clear_pointer (&self->windows, g_array_unref);
  g_clear_object (&self->store);
  g_clear_pointer (&self->layers, g_ptr_array_unref);
  g_clear_pointer (&self->by_name, g_hash_table_unref);
  g_clear_pointer (&self->base_logp, g_free);
  g_clear_pointer (&self->targets, g_free);
  g_clear_pointer (&self->base_top1, g_free);
  g_clear_pointer (&self->tables, g_hash_table_unref);

  G_OBJECT_CLASS (bl_sensitivity_parent_class)->finalize (object);
}

static void
bl_sensitivity_class_init (BlSensitivityClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = bl_sensitivity_finalize;
}

static void
bl_sensitivity_init (BlSensitivity *self)
{
  self->tables = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                        (GDestroyNotify) g_ptr_array_unref);
}

/**
 * bl_sensitivity_new:
 * @model: the model
 * @backend: the backend to run it on; borrowed, must outlive the object
 * @ids: (array length=n_ids): the budget's text as token ids
 * @n_ids: how many
 * @options: (nullable): the budget; %NULL takes the defaults
 * @error: return location for a #GError
 *
 * Draws the budget's windows. Nothing runs until bl_sensitivity_prepare().
 *
 * Returns: (transfer full): a new object, or %NULL with %BL_ERROR_INVALID_ARGUMENT when the
 *   text is shorter than one window
 */
BlSensitivity *
bl_sensitivity_new (BlModel                    *model,
                    BlBackend                  *backend,
                    const int32_t              *ids,
                    gint64                      n_ids,
                    const BlSensitivityOptions *options,
                    GError                    **error)
{
  g_autoptr(BlSensitivity) self = NULL;
  BlSensitivityOptions opts = { 0 };
  int max_ctx;

  g_return_val_if_fail (BL_IS_MODEL (model), NULL);
  g_return_val_if_fail (backend != NULL, NULL);
  g_return_val_if_fail (ids != NULL || n_ids == 0, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (options != NULL)
    opts = *options;
  max_ctx = bl_model_get_config (model)->max_position_embeddings;
  if (max_ctx <= 0)
    max_ctx = DEFAULT_CTX;
  if (opts.n_windows <= 0)
    opts.n_windows = DEFAULT_WINDOWS;
  if (opts.ctx <= 0)
    opts.ctx = MIN (DEFAULT_CTX, max_ctx);
  if (opts.n_threads <= 0)
    opts.n_threads = 1;
  if (opts.ctx < 2 || opts.ctx > max_ctx)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT,
                   "a window of %d ids is outside what the model supports (2 to %d)", opts.ctx,
                   max_ctx);
      return NULL;
    }

  self = g_object_new (BL_TYPE_SENSITIVITY, NULL);
  self->windows = bl_calib_make_windows (n_ids, opts.ctx, opts.n_windows, opts.seed, error);
  if (self->windows == NULL)
    return NULL;
  self->model = g_object_ref (model);
  self->backend = backend;
  self->ids = g_memdup2 (ids, (gsize) n_ids * sizeof (int32_t));
  self->n_ids = n_ids;
  self->dataset_name = g_strdup (opts.dataset_name);
  self->dataset_sha256 = g_strdup (opts.dataset_sha256);
  opts.dataset_name = self->dataset_name;
  opts.dataset_sha256 = self->dataset_sha256;
  self->options = opts;
  return g_steal_pointer (&self);
}

/**
 * bl_sensitivity_set_store:
 * @self: a sensitivity object
 * @store: (nullable): where to cache the budget, the per-layer numbers and measured plans;
 *   referenced
 *
 * A budget is cached only when its options name the text's sha256. Set the store before
 * bl_sensitivity_prepare(). The store's connection is used directly: do not share @store
 * with another thread while this object works.
 */
void
bl_sensitivity_set_store (BlSensitivity *self,
                          BlStore       *store)
{
  g_return_if_fail (BL_IS_SENSITIVITY (self));
  g_return_if_fail (store == NULL || BL_IS_STORE (store));

  g_set_object (&self->store, store);
}

/**
 * bl_sensitivity_set_progress:
 * @self: a sensitivity object
 * @progress: (nullable) (scope notified): called in the working thread as steps finish
 * @user_data: its user data
 */
void
bl_sensitivity_set_progress (BlSensitivity             *self,
                             BlSensitivityProgressFunc  progress,
                             gpointer                   user_data)
{
  g_return_if_fail (BL_IS_SENSITIVITY (self));

  self->progress = progress;
  self->progress_data = user_data;
}

static void
report (BlSensitivity *self,
        const char    *stage,
        int            done,
        int            total)
{
  if (self->progress != NULL)
    self->progress (stage, done, total, self->progress_data);
}

static void
calib_progress (int      done,
                int      total,
                gpointer user_data)
{
  report (user_data, "calibration", done, total);
}

/* The layer's weight as fp32 [rows × cols], as the engine widens it. */
static float *
load_weight (BlSensitivity   *self,
             const LayerInfo *l,
             GError         **error)
{
  const BlTensor *t = bl_model_get_tensor (self->model, l->name);
  float *w;

  if (t == NULL || t->n_dims != 2 || t->shape[0] != l->rows || t->shape[1] != l->cols)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_NOT_FOUND,
                   "%s: no %" G_GINT64_FORMAT "×%" G_GINT64_FORMAT " weight \"%s\"",
                   bl_model_get_path (self->model), l->rows, l->cols, l->name);
      return NULL;
    }
  w = g_try_new (float, t->n_elements);
  if (w == NULL)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_OUT_OF_MEMORY, "no memory to widen \"%s\"",
                   l->name);
      return NULL;
    }
  bl_tensor_to_f32 (t, w);
  return w;
}

/**
 * bl_weight_zd:
 * @w: (array length=n): weights
 * @n: how many
 *
 * The ZD score of Dumitru et al. (arXiv 2406.17415, methods.md §11): with μ and σ the mean
 * and (population) standard deviation of @w, the fraction of weights whose z-score
 * (w − μ)/σ exceeds 1.
 *
 * Returns: ZD in [0, 1]; 0 when σ is 0; NaN when @n is 0
 */
double
bl_weight_zd (const float *w,
              gint64       n)
{
  double sum = 0.0, sum_sq = 0.0, mean, sd;
  gint64 above = 0;

  g_return_val_if_fail (w != NULL || n == 0, NAN);

  if (n <= 0)
    return NAN;
  for (gint64 i = 0; i < n; i++)
    sum += w[i];
  mean = sum / n;
  for (gint64 i = 0; i < n; i++)
    sum_sq += (w[i] - mean) * (w[i] - mean);
  sd = sqrt (sum_sq / n);
  if (sd == 0.0)
    return 0.0;
  for (gint64 i = 0; i < n; i++)
    above += (w[i] - mean) / sd > 1.0;
  return (double) above / n;
}

/* ZD per layer, and pooled per block: the block's mean and deviation first, then the count. */
static gboolean
compute_zd (BlSensitivity  *self,
            GError        **error)
{
  int n_blocks = bl_model_get_config (self->model)->n_layers;
  g_autofree double *sum = g_new0 (double, n_blocks);
  g_autofree double *sum_sq = g_new0 (double, n_blocks);
  g_autofree gint64 *count = g_new0 (gint64, n_blocks);
  g_autofree gint64 *above = g_new0 (gint64, n_blocks);

  for (int pass = 0; pass < 2; pass++)
    for (guint i = 0; i < self->layers->len; i++)
      {
        LayerInfo *l = g_ptr_array_index (self->layers, i);
        g_autofree float *w = NULL;
        gint64 n = l->rows * l->cols;
        int b = l->block;

        if ((w = load_weight (self, l, error)) == NULL)
          return FALSE;
        if (pass == 0)
          {
            l->zd = bl_weight_zd (w, n);
            l->zd_block = NAN;
            if (b < 0 || b >= n_blocks)
              continue;
            for (gint64 k = 0; k < n; k++)
              {
                sum[b] += w[k];
                sum_sq[b] += (double) w[k] * w[k];
              }
            count[b] += n;
          }
        else if (b >= 0 && b < n_blocks)
          {
            double mean = sum[b] / count[b];
            double sd = sqrt (MAX (0.0, sum_sq[b] / count[b] - mean * mean));

            if (sd > 0.0)
              for (gint64 k = 0; k < n; k++)
                above[b] += (w[k] - mean) / sd > 1.0;
          }
      }
  for (guint i = 0; i < self->layers->len; i++)
    {
      LayerInfo *l = g_ptr_array_index (self->layers, i);

      if (l->block >= 0 && l->block < n_blocks && count[l->block] > 0)
        l->zd_block = (double) above[l->block] / count[l->block];
    }
  return TRUE;
}

/* Log-softmax of one row of logits, in double, written as float; returns the argmax. */
static gsize
log_softmax_row (const float *z,
                 gsize        vocab,
                 double      *out)
{
  double m = z[0], s = 0.0, lse;
  gsize argmax = 0;

  for (gsize v = 1; v < vocab; v++)
    if (z[v] > m)
      {
        m = z[v];
        argmax = v;
      }
  for (gsize v = 0; v < vocab; v++)
    s += exp ((double) z[v] - m);
  lse = m + log (s);
  for (gsize v = 0; v < vocab; v++)
    out[v] = (double) z[v] - lse;
  return argmax;
}

typedef struct
{
  double sum_nll;
  double sum_kl;
  gint64 agree;
  gint64 n;
} BudgetScores;

/* Runs @engine over the budget's windows. With @baseline, fills the full-precision
 * log-probabilities; otherwise compares with them. */
static gboolean
run_budget (BlSensitivity *self,
            BlEngine      *engine,
            gboolean       baseline,
            BudgetScores  *out,
            GCancellable  *cancellable,
            GError       **error)
{
  int ctx = self->options.ctx;
  gsize vocab = self->vocab;
  g_autofree float *logits = g_try_new (float, (gsize) (ctx - 1) * vocab);
  g_autofree double *row = g_new (double, vocab);
  gint64 r = 0;

  if (logits == NULL)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_OUT_OF_MEMORY, "no memory for %d × %" G_GSIZE_FORMAT
                   " logits", ctx - 1, vocab);
      return FALSE;
    }
  memset (out, 0, sizeof *out);
  for (guint k = 0; k < self->windows->len; k++)
    {
      const BlWindow *w = &g_array_index (self->windows, BlWindow, k);
      const int32_t *ids = self->ids + w->start;

      /* the last id is only a target */
      if (!bl_engine_forward (engine, ids, ctx - 1, logits, cancellable, error))
        return FALSE;
      for (int j = 0; j < ctx - 1; j++, r++)
        {
          gsize top = log_softmax_row (logits + (gsize) j * vocab, vocab, row);
          int32_t target = ids[j + 1];

          out->sum_nll -= row[target];
          out->n++;
          if (baseline)
            {
              float *dst = self->base_logp + (gsize) r * vocab;

              for (gsize v = 0; v < vocab; v++)
                dst[v] = (float) row[v];
              self->targets[r] = target;
              self->base_top1[r] = (int32_t) top;
              out->agree++;
            }
          else
            {
              const float *p = self->base_logp + (gsize) r * vocab;
              double kl = 0.0;

              /* KL(p ‖ q) = Σ_v p_v (log p_v − log q_v), exactly over the vocabulary. log q
               * is rounded to float as the baseline was, so that an unchanged model gives
               * exactly 0. */
              for (gsize v = 0; v < vocab; v++)
                kl += exp ((double) p[v]) * ((double) p[v] - (double) (float) row[v]);
              out->sum_kl += kl;
              out->agree += (int32_t) top == self->base_top1[r];
            }
        }
    }
  return TRUE;
}

static gboolean
store_budget (BlSensitivity  *self,
              GError        **error)
{
  g_autoptr(sqlite3_stmt) insert = NULL;
  g_autoptr(sqlite3_stmt) select = NULL;
  BlTokenizer *tok = bl_model_get_tokenizer (self->model);
  const char *step = "sensitivity: record the budget";

  if (!bl_store_rows_exec (self->store, "BEGIN IMMEDIATE", step, error))
    return FALSE;
  insert = bl_store_rows_prepare (self->store,
                                  "INSERT INTO sensitivity_budgets (model_fingerprint, "
                                  "  dataset_sha256, dataset_name, tokenizer_hash, ctx, "
                                  "  n_windows, seed, n_tokens, base_nll, created_at) "
                                  "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, "
                                  BL_STORE_NOW_SQL ") "
                                  "ON CONFLICT DO UPDATE SET n_tokens = excluded.n_tokens, "
                                  "  base_nll = excluded.base_nll",
                                  step, error);
  select = bl_store_rows_prepare (self->store,
                                  "SELECT id FROM sensitivity_budgets WHERE "
                                  "model_fingerprint = ?1 AND dataset_sha256 = ?2 AND "
                                  "tokenizer_hash = ?3 AND ctx = ?4 AND n_windows = ?5 AND "
                                  "seed = ?6", step, error);
  if (insert == NULL || select == NULL || !bl_store_rows_upsert_model (self->store, self->model,
                                                                       error))
    {
      bl_store_rows_rollback (self->store);
      return FALSE;
    }
  bl_store_rows_bind_text (insert, 1, bl_model_get_fingerprint (self->model));
  bl_store_rows_bind_text (insert, 2, self->dataset_sha256);
  bl_store_rows_bind_text (insert, 3, self->dataset_name);
  bl_store_rows_bind_text (insert, 4, tok != NULL ? bl_tokenizer_get_hash (tok) : "");
  sqlite3_bind_int (insert, 5, self->options.ctx);
  sqlite3_bind_int (insert, 6, self->options.n_windows);
  sqlite3_bind_int64 (insert, 7, (gint64) self->options.seed);
  sqlite3_bind_int64 (insert, 8, self->n_rows);
  bl_store_rows_bind_real (insert, 9, self->base_nll);
  if (!bl_store_rows_step_done (self->store, insert, step, error))
    {
      bl_store_rows_rollback (self->store);
      return FALSE;
    }
  bl_store_rows_bind_text (select, 1, bl_model_get_fingerprint (self->model));
  bl_store_rows_bind_text (select, 2, self->dataset_sha256);
  bl_store_rows_bind_text (select, 3, tok != NULL ? bl_tokenizer_get_hash (tok) : "");
  sqlite3_bind_int (select, 4, self->options.ctx);
  sqlite3_bind_int (select, 5, self->options.n_windows);
  sqlite3_bind_int64 (select, 6, (gint64) self->options.seed);
  if (sqlite3_step (select) != SQLITE_ROW)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_STORE, "%s: %s: the row is missing after the insert",
                   bl_store_get_path (self->store), step);
      bl_store_rows_rollback (self->store);
      return FALSE;
    }
  self->budget_id = sqlite3_column_int64 (select, 0);
  if (!bl_store_rows_exec (self->store, "COMMIT", step, error))
    {
      bl_store_rows_rollback (self->store);
      self->budget_id = 0;
      return FALSE;
    }
  return TRUE;
}

/**
 * bl_sensitivity_prepare:
 * @self: a sensitivity object
 * @cancellable: (nullable): checked between windows and layers
 * @error: return location for a #GError
 *
 * Runs the calibration pass (activation statistics and block input/output for LIM) and the
 * full-precision baseline over the budget, computes ZD, and records the budget in the
 * store. Does nothing the second time.
 *
 * Returns: %TRUE on success
 */
gboolean
bl_sensitivity_prepare (BlSensitivity  *self,
                        GCancellable   *cancellable,
                        GError        **error)
{
  BlCalibOptions copts = { 0 };
  g_autoptr(BlCalib) calib = NULL;
  g_autoptr(BlEngine) engine = NULL;
  g_autoptr(GPtrArray) layers = NULL;
  g_autoptr(GHashTable) by_name = NULL;
  BudgetScores scores;

  g_return_val_if_fail (BL_IS_SENSITIVITY (self), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (self->prepared)
    return TRUE;

  copts.flags = BL_CALIB_ACT_STATS | BL_CALIB_BLOCK_IO;
  copts.dataset = self->dataset_name;
  copts.seed = self->options.seed;
  calib = bl_calib_collect (self->model, self->backend, self->ids, self->n_ids, self->windows,
                            &copts, cancellable, calib_progress, self, error);
  if (calib == NULL)
    return FALSE;

  layers = g_ptr_array_new_with_free_func (layer_info_free);
  by_name = g_hash_table_new (g_str_hash, g_str_equal);
  for (guint i = 0; i < bl_calib_get_n_layers (calib); i++)
    {
      const BlCalibLayer *cl = bl_calib_get_layer_at (calib, i);
      LayerInfo *l = g_new0 (LayerInfo, 1);
      double sum = 0.0;

      l->name = g_strdup (cl->name);
      l->kind = cl->kind;
      l->block = cl->block;
      l->rows = cl->rows;
      l->cols = cl->cols;
      l->mean_sq = g_memdup2 (cl->act_mean_sq, (gsize) cl->cols * sizeof (double));
      for (int64_t j = 0; j < cl->cols; j++)
        sum += cl->act_mean_sq[j];
      l->trace = cl->cols > 0 ? sum / cl->cols : NAN;
      l->lim = NAN;
      if (cl->block >= 0 && (guint) cl->block < bl_calib_get_n_blocks (calib))
        l->lim = bl_calib_get_block (calib, cl->block)->lim;
      g_ptr_array_add (layers, l);
      g_hash_table_insert (by_name, l->name, l);
    }
  self->layers = g_steal_pointer (&layers);
  self->by_name = g_steal_pointer (&by_name);
  if (!compute_zd (self, error))
    return FALSE;

  engine = bl_engine_new (self->model, self->backend, NULL, error);
  if (engine == NULL)
    return FALSE;
  self->vocab = (gsize) bl_engine_get_vocab_size (engine);
  self->n_rows = (gint64) self->windows->len * (self->options.ctx - 1);
  self->base_logp = g_try_new (float, (gsize) self->n_rows * self->vocab);
  if (self->base_logp == NULL)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_OUT_OF_MEMORY,
                   "no memory for the baseline of %" G_GINT64_FORMAT " positions × %"
                   G_GSIZE_FORMAT " log-probabilities (use fewer windows)", self->n_rows,
                   self->vocab);
      return FALSE;
    }
  self->targets = g_new (int32_t, self->n_rows);
  self->base_top1 = g_new (int32_t, self->n_rows);
  report (self, "baseline", 0, 1);
  if (!run_budget (self, engine, TRUE, &scores, cancellable, error))
    return FALSE;
  self->base_nll = scores.sum_nll / scores.n;
  report (self, "baseline", 1, 1);
  self->engine = g_steal_pointer (&engine);

  if (self->store != NULL && self->dataset_sha256 != NULL && !store_budget (self, error))
    return FALSE;
  self->prepared = TRUE;
  return TRUE;
}

/* Scores the budget with the layers of @weights (name → fp32 weight) swapped into the
 * full-precision engine (bl_engine_set_weight()), then puts the original weights back, also
 * after a failure or cancellation, so that the engine stays the baseline. One engine serves
 * every measurement: nothing but the swapped layers is uploaded again. */
static gboolean
run_replaced (BlSensitivity *self,
              GHashTable    *weights,
              BudgetScores  *out,
              GCancellable  *cancellable,
              GError       **error)
{
  GHashTableIter iter;
  gpointer key, value;
  gboolean ok = TRUE;

  g_hash_table_iter_init (&iter, weights);
  while (ok && g_hash_table_iter_next (&iter, &key, &value))
    ok = bl_engine_set_weight (self->engine, key, value, error);
  ok = ok && run_budget (self, self->engine, FALSE, out, cancellable, error);

  g_hash_table_iter_init (&iter, weights);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    {
      const LayerInfo *l = g_hash_table_lookup (self->by_name, key);
      g_autoptr(GError) restore_error = NULL;
      g_autofree float *w = load_weight (self, l, &restore_error);

      if (w == NULL || !bl_engine_set_weight (self->engine, key, w, &restore_error))
        {
          /* the engine no longer is the baseline: refuse further measurements */
          self->prepared = FALSE;
          if (ok)
            g_propagate_error (error, g_steal_pointer (&restore_error));
          return FALSE;
        }
    }
  return ok;
}

/* Error metrics of @q against @w for layer @l. */
static void
weight_errors (const LayerInfo *l,
               const float     *w,
               const float     *q,
               double          *rel_err,
               double          *out_err,
               double          *sum_sq_err)
{
  double ref = 0.0, err = 0.0, out_ref = 0.0, out_e = 0.0;

  for (int64_t r = 0; r < l->rows; r++)
    {
      const float *wr = w + r * l->cols, *qr = q + r * l->cols;

      for (int64_t j = 0; j < l->cols; j++)
        {
          double d = (double) wr[j] - qr[j], x = wr[j];

          ref += x * x;
          err += d * d;
          out_ref += l->mean_sq[j] * x * x;
          out_e += l->mean_sq[j] * d * d;
        }
    }
  *rel_err = ref > 0.0 ? err / ref : NAN;
  *out_err = out_ref > 0.0 ? out_e / out_ref : NAN;
  *sum_sq_err = err;
}

static float *
quantized_weight (BlSensitivity      *self,
                  const LayerInfo    *l,
                  const BlFormatSpec *spec,
                  float             **out_w,
                  GError            **error)
{
  g_autofree float *w = load_weight (self, l, error);
  g_autofree float *q = NULL;

  if (w == NULL)
    return NULL;
  q = g_try_new (float, (gsize) l->rows * l->cols);
  if (q == NULL)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_OUT_OF_MEMORY, "no memory to quantize \"%s\"",
                   l->name);
      return NULL;
    }
  if (!bl_format_fake_quant (spec, w, q, l->rows, l->cols, self->options.n_threads, error))
    {
      g_prefix_error (error, "%s: ", l->name);
      return NULL;
    }
  if (out_w != NULL)
    *out_w = g_steal_pointer (&w);
  return g_steal_pointer (&q);
}

static gboolean
check_prepared (BlSensitivity  *self,
                GError        **error)
{
  if (!self->prepared)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT,
                   "the sensitivity budget has not been prepared (bl_sensitivity_prepare())");
      return FALSE;
    }
  return TRUE;
}

static gboolean
parse_spec (const char    *text,
            BlFormatSpec  *spec,
            char         **canonical,
            GError       **error)
{
  if (!bl_format_spec_parse (text, spec, error))
    return FALSE;
  *canonical = bl_format_spec_to_string (spec);
  return TRUE;
}

/* Reads a format's rows for this budget; NULL (no error) when they are not all there. */
static GPtrArray *
load_table (BlSensitivity  *self,
            const char     *spec,
            gboolean        with_kl,
            GError        **error)
{
  g_autoptr(sqlite3_stmt) stmt = NULL;
  g_autoptr(GPtrArray) table = NULL;
  /* the keys are the values' names; a stolen entry leaves the table without being freed */
  g_autoptr(GHashTable) found = g_hash_table_new_full (g_str_hash, g_str_equal, NULL,
                                                       (GDestroyNotify) bl_layer_sensitivity_free);
  int rc;

  stmt = bl_store_rows_prepare (self->store,
                                "SELECT layer, rel_err, out_err, hessian_trace, omega, kl, "
                                "  dnll, top1 FROM sensitivity "
                                "WHERE budget_id = ?1 AND weight_spec = ?2",
                                "sensitivity: read cached layers", error);
  if (stmt == NULL)
    return NULL;
  sqlite3_bind_int64 (stmt, 1, self->budget_id);
  sqlite3_bind_text (stmt, 2, spec, -1, SQLITE_TRANSIENT);
  while ((rc = sqlite3_step (stmt)) == SQLITE_ROW)
    {
      BlLayerSensitivity *s = g_new0 (BlLayerSensitivity, 1);

      s->name = g_strdup ((const char *) sqlite3_column_text (stmt, 0));
      s->rel_err = bl_store_rows_column_real (stmt, 1);
      s->out_err = bl_store_rows_column_real (stmt, 2);
      s->hessian_trace = bl_store_rows_column_real (stmt, 3);
      s->omega = bl_store_rows_column_real (stmt, 4);
      s->kl = bl_store_rows_column_real (stmt, 5);
      s->dnll = bl_store_rows_column_real (stmt, 6);
      s->top1 = bl_store_rows_column_real (stmt, 7);
      g_hash_table_insert (found, s->name, s);
    }
  if (rc != SQLITE_DONE)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_STORE, "%s: sensitivity: read cached layers: %s",
                   bl_store_get_path (self->store), sqlite3_errstr (rc));
      return NULL;
    }

  table = g_ptr_array_new_with_free_func ((GDestroyNotify) bl_layer_sensitivity_free);
  for (guint i = 0; i < self->layers->len; i++)
    {
      const LayerInfo *l = g_ptr_array_index (self->layers, i);
      BlLayerSensitivity *s = g_hash_table_lookup (found, l->name);

      if (s == NULL)
        continue;
      g_hash_table_steal (found, l->name);
      s->kind = l->kind;
      s->block = l->block;
      s->rows = l->rows;
      s->cols = l->cols;
      s->weight_spec = g_strdup (spec);
      s->qsnr_db = s->rel_err > 0.0 ? -10.0 * log10 (s->rel_err) : INFINITY;
      s->lim = l->lim;
      s->zd = l->zd;
      s->zd_block = l->zd_block;
      g_ptr_array_add (table, s);
    }
  /* rows of layers this model does not have are left in @found and freed with it */
  if (table->len != self->layers->len)
    return NULL;
  for (guint i = 0; with_kl && i < table->len; i++)
    if (isnan (((BlLayerSensitivity *) g_ptr_array_index (table, i))->kl))
      return NULL;
  return g_steal_pointer (&table);
}

static gboolean
save_table (BlSensitivity  *self,
            GPtrArray      *table,
            GError        **error)
{
  g_autoptr(sqlite3_stmt) stmt = NULL;
  const char *step = "sensitivity: store layers";

  if (!bl_store_rows_exec (self->store, "BEGIN IMMEDIATE", step, error))
    return FALSE;
  stmt = bl_store_rows_prepare (self->store,
                                "INSERT OR REPLACE INTO sensitivity (budget_id, weight_spec, "
                                "  layer, kind, block, rows, cols, qsnr_db, rel_err, out_err, "
                                "  hessian_trace, omega, kl, dnll, top1, lim, zd, zd_block, "
                                "  created_at) "
                                "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, "
                                "  ?13, ?14, ?15, ?16, ?17, ?18, " BL_STORE_NOW_SQL ")",
                                step, error);
  if (stmt == NULL)
    {
      bl_store_rows_rollback (self->store);
      return FALSE;
    }
  for (guint i = 0; i < table->len; i++)
    {
      const BlLayerSensitivity *s = g_ptr_array_index (table, i);

      sqlite3_reset (stmt);
      sqlite3_bind_int64 (stmt, 1, self->budget_id);
      bl_store_rows_bind_text (stmt, 2, s->weight_spec);
      bl_store_rows_bind_text (stmt, 3, s->name);
      bl_store_rows_bind_text (stmt, 4, bl_layer_kind_to_string (s->kind));
      sqlite3_bind_int (stmt, 5, s->block);
      sqlite3_bind_int64 (stmt, 6, s->rows);
      sqlite3_bind_int64 (stmt, 7, s->cols);
      bl_store_rows_bind_real (stmt, 8, s->qsnr_db);
      bl_store_rows_bind_real (stmt, 9, s->rel_err);
      bl_store_rows_bind_real (stmt, 10, s->out_err);
      bl_store_rows_bind_real (stmt, 11, s->hessian_trace);
      bl_store_rows_bind_real (stmt, 12, s->omega);
      bl_store_rows_bind_real (stmt, 13, s->kl);
      bl_store_rows_bind_real (stmt, 14, s->dnll);
      bl_store_rows_bind_real (stmt, 15, s->top1);
      bl_store_rows_bind_real (stmt, 16, s->lim);
      bl_store_rows_bind_real (stmt, 17, s->zd);
      bl_store_rows_bind_real (stmt, 18, s->zd_block);
      if (!bl_store_rows_step_done (self->store, stmt, step, error))
        {
          bl_store_rows_rollback (self->store);
          return FALSE;
        }
    }
  if (!bl_store_rows_exec (self->store, "COMMIT", step, error))
    {
      bl_store_rows_rollback (self->store);
      return FALSE;
    }
  return TRUE;
}

/**
 * bl_sensitivity_compute:
 * @self: a prepared sensitivity object
 * @weight_spec: a weight format spec string, e.g. "int4:g32"
 * @with_kl: also measure the one-at-a-time KL (one engine and one pass over the budget per
 *   layer); without it only the weight, Hessian-proxy, LIM and ZD numbers are computed
 * @cancellable: (nullable): checked between layers and inside every pass
 * @error: return location for a #GError
 *
 * The per-layer sensitivity for @weight_spec, in the engine's layer order. A result already
 * computed in this object, or complete in the store for this budget, is returned without
 * measuring again.
 *
 * Returns: (transfer container) (element-type BlLayerSensitivity): one entry per linear
 *   layer, or %NULL with @error set
 */
GPtrArray *
bl_sensitivity_compute (BlSensitivity  *self,
                        const char     *weight_spec,
                        gboolean        with_kl,
                        GCancellable   *cancellable,
                        GError        **error)
{
  g_autoptr(GPtrArray) table = NULL;
  g_autofree char *canonical = NULL;
  BlFormatSpec spec;
  GPtrArray *known;
  guint n;

  g_return_val_if_fail (BL_IS_SENSITIVITY (self), NULL);
  g_return_val_if_fail (weight_spec != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (!check_prepared (self, error) || !parse_spec (weight_spec, &spec, &canonical, error))
    return NULL;

  known = g_hash_table_lookup (self->tables, canonical);
  if (known != NULL && (!with_kl || !isnan (((BlLayerSensitivity *) known->pdata[0])->kl)))
    return g_ptr_array_ref (known);
  if (self->budget_id > 0)
    {
      table = load_table (self, canonical, with_kl, error);
      if (table == NULL && error != NULL && *error != NULL)
        return NULL;
    }

  if (table == NULL)
    {
      n = self->layers->len;
      table = g_ptr_array_new_with_free_func ((GDestroyNotify) bl_layer_sensitivity_free);
      for (guint i = 0; i < n; i++)
        {
          const LayerInfo *l = g_ptr_array_index (self->layers, i);
          BlLayerSensitivity *s = g_new0 (BlLayerSensitivity, 1);
          g_autofree float *w = NULL;
          g_autofree float *q = NULL;
          double sum_sq_err;

          g_ptr_array_add (table, s);
          s->name = g_strdup (l->name);
          s->kind = l->kind;
          s->block = l->block;
          s->rows = l->rows;
          s->cols = l->cols;
          s->weight_spec = g_strdup (canonical);
          s->hessian_trace = l->trace;
          s->lim = l->lim;
          s->zd = l->zd;
          s->zd_block = l->zd_block;
          s->kl = s->dnll = s->top1 = NAN;

          if (g_cancellable_set_error_if_cancelled (cancellable, error))
            return NULL;
          if ((q = quantized_weight (self, l, &spec, &w, error)) == NULL)
            return NULL;
          weight_errors (l, w, q, &s->rel_err, &s->out_err, &sum_sq_err);
          s->qsnr_db = s->rel_err > 0.0 ? -10.0 * log10 (s->rel_err) : INFINITY;
          s->omega = l->trace * sum_sq_err;

          if (with_kl)
            {
              g_autoptr(GHashTable) one = g_hash_table_new (g_str_hash, g_str_equal);
              BudgetScores sc;

              g_hash_table_insert (one, l->name, q);
              if (!run_replaced (self, one, &sc, cancellable, error))
                return NULL;
              s->kl = sc.sum_kl / sc.n;
              s->dnll = sc.sum_nll / sc.n - self->base_nll;
              s->top1 = (double) sc.agree / sc.n;
            }
          report (self, "layers", (int) i + 1, (int) n);
        }
      if (self->budget_id > 0 && !save_table (self, table, error))
        return NULL;
    }

  g_hash_table_replace (self->tables, g_strdup (canonical), g_ptr_array_ref (table));
  return g_steal_pointer (&table);
}

/**
 * bl_sensitivity_lookup:
 * @self: a prepared sensitivity object
 * @weight_spec: a weight format spec string
 * @error: return location for a #GError
 *
 * The per-layer numbers for @weight_spec when they are at hand, computed in this object or
 * complete in the store for this budget, without measuring anything.
 *
 * Returns: (transfer container) (nullable) (element-type BlLayerSensitivity): the numbers,
 *   or %NULL: with @error set on a failure, without when there are none
 */
GPtrArray *
bl_sensitivity_lookup (BlSensitivity  *self,
                       const char     *weight_spec,
                       GError        **error)
{
  g_autofree char *canonical = NULL;
  BlFormatSpec spec;
  GPtrArray *table;

  g_return_val_if_fail (BL_IS_SENSITIVITY (self), NULL);
  g_return_val_if_fail (weight_spec != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (!check_prepared (self, error) || !parse_spec (weight_spec, &spec, &canonical, error))
    return NULL;
  if ((table = g_hash_table_lookup (self->tables, canonical)) != NULL)
    return g_ptr_array_ref (table);
  if (self->budget_id <= 0 || (table = load_table (self, canonical, FALSE, error)) == NULL)
    return NULL;
  g_hash_table_replace (self->tables, g_strdup (canonical), g_ptr_array_ref (table));
  return table;
}

/**
 * bl_sensitivity_layer_error:
 * @self: a prepared sensitivity object
 * @layer: a layer name
 * @spec: a weight format
 * @out_err: (out) (optional): the relative output error (see #BlLayerSensitivity.out_err)
 * @rel_err: (out) (optional): ‖ΔW‖²/‖W‖²
 * @error: return location for a #GError
 *
 * Fake-quantizes one layer's weight and measures its error, without running the model.
 *
 * Returns: %TRUE on success; %BL_ERROR_NOT_FOUND for an unknown layer
 */
gboolean
bl_sensitivity_layer_error (BlSensitivity      *self,
                            const char         *layer,
                            const BlFormatSpec *spec,
                            double             *out_err,
                            double             *rel_err,
                            GError            **error)
{
  const LayerInfo *l;
  g_autofree float *w = NULL;
  g_autofree float *q = NULL;
  double o, r, e;

  g_return_val_if_fail (BL_IS_SENSITIVITY (self), FALSE);
  g_return_val_if_fail (layer != NULL && spec != NULL, FALSE);

  if (!check_prepared (self, error))
    return FALSE;
  if ((l = g_hash_table_lookup (self->by_name, layer)) == NULL)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_NOT_FOUND, "%s has no linear layer \"%s\"",
                   bl_model_get_path (self->model), layer);
      return FALSE;
    }
  if ((q = quantized_weight (self, l, spec, &w, error)) == NULL)
    return FALSE;
  weight_errors (l, w, q, &r, &o, &e);
  if (out_err != NULL)
    *out_err = o;
  if (rel_err != NULL)
    *rel_err = r;
  return TRUE;
}

static int
compare_strings (const void *a,
                 const void *b)
{
  return strcmp (*(const char * const *) a, *(const char * const *) b);
}

/**
 * bl_layer_specs_to_json:
 * @layer_specs: (element-type utf8 utf8): layer name → weight spec string; layers not in it
 *   stay in full precision
 *
 * The canonical JSON of a per-layer plan, `{"layers": {NAME: SPEC, …}}`, with the names
 * sorted and each spec as bl_format_spec_to_string() prints it, so that equal plans are
 * equal text (the key of a stored plan measurement).
 *
 * Returns: (transfer full): the JSON, or %NULL with @error set for a spec that does not parse
 */
char *
bl_layer_specs_to_json (GHashTable  *layer_specs,
                        GError     **error)
{
  g_autoptr(JsonBuilder) b = json_builder_new ();
  g_autoptr(JsonGenerator) gen = json_generator_new ();
  g_autoptr(JsonNode) root = NULL;
  g_autofree gpointer *keys = NULL;
  guint n;

  g_return_val_if_fail (layer_specs != NULL, NULL);

  keys = g_hash_table_get_keys_as_array (layer_specs, &n);
  qsort (keys, n, sizeof (gpointer), compare_strings);
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "layers");
  json_builder_begin_object (b);
  for (guint i = 0; i < n; i++)
    {
      BlFormatSpec spec;
      g_autofree char *canonical = NULL;

      if (!parse_spec (g_hash_table_lookup (layer_specs, keys[i]), &spec, &canonical, error))
        {
          g_prefix_error (error, "%s: ", (const char *) keys[i]);
          return NULL;
        }
      json_builder_set_member_name (b, keys[i]);
      json_builder_add_string_value (b, canonical);
    }
  json_builder_end_object (b);
  json_builder_end_object (b);
  root = json_builder_get_root (b);
  json_generator_set_root (gen, root);
  return json_generator_to_data (gen, NULL);
}

/**
 * bl_layer_specs_from_json:
 * @json: a plan as bl_layer_specs_to_json() writes it
 * @error: return location for a #GError
 *
 * Returns: (transfer full) (element-type utf8 utf8): layer name → spec string, or %NULL
 *   with %BL_ERROR_INVALID_ARGUMENT
 */
GHashTable *
bl_layer_specs_from_json (const char  *json,
                          GError     **error)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GHashTable) specs = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  g_autoptr(GError) local_error = NULL;
  JsonNode *root, *layers;
  JsonObjectIter iter;
  const char *name;
  JsonNode *value;

  g_return_val_if_fail (json != NULL, NULL);

  if (!json_parser_load_from_data (parser, json, -1, &local_error))
    {
      g_set_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT, "a per-layer plan: %s",
                   local_error->message);
      return NULL;
    }
  root = json_parser_get_root (parser);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root)
      || (layers = json_object_get_member (json_node_get_object (root), "layers")) == NULL
      || !JSON_NODE_HOLDS_OBJECT (layers))
    {
      g_set_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT,
                   "a per-layer plan is an object with a \"layers\" object");
      return NULL;
    }
  json_object_iter_init (&iter, json_node_get_object (layers));
  while (json_object_iter_next (&iter, &name, &value))
    {
      if (!JSON_NODE_HOLDS_VALUE (value) || json_node_get_value_type (value) != G_TYPE_STRING)
        {
          g_set_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT,
                       "a per-layer plan: the spec of \"%s\" is not a string", name);
          return NULL;
        }
      g_hash_table_insert (specs, g_strdup (name), g_strdup (json_node_get_string (value)));
    }
  return g_steal_pointer (&specs);
}

static gboolean
store_sample (BlSensitivity            *self,
              const char               *json,
              const BlPlanMeasurement  *m,
              GError                  **error)
{
  g_autoptr(sqlite3_stmt) stmt = NULL;
  const char *step = "sensitivity: store the plan measurement";

  stmt = bl_store_rows_prepare (self->store,
                                "INSERT INTO estimator_samples (budget_id, plan_json, nll, kl, "
                                "  top1, n_tokens, created_at) "
                                "VALUES (?1, ?2, ?3, ?4, ?5, ?6, " BL_STORE_NOW_SQL ") "
                                "ON CONFLICT (budget_id, plan_json) DO UPDATE SET "
                                "  nll = excluded.nll, kl = excluded.kl, top1 = excluded.top1, "
                                "  n_tokens = excluded.n_tokens, created_at = excluded.created_at",
                                step, error);
  if (stmt == NULL)
    return FALSE;
  sqlite3_bind_int64 (stmt, 1, self->budget_id);
  bl_store_rows_bind_text (stmt, 2, json);
  bl_store_rows_bind_real (stmt, 3, m->nll);
  bl_store_rows_bind_real (stmt, 4, m->kl);
  bl_store_rows_bind_real (stmt, 5, m->top1);
  sqlite3_bind_int64 (stmt, 6, m->n_tokens);
  return bl_store_rows_step_done (self->store, stmt, step, error);
}

/**
 * bl_sensitivity_measure_plan:
 * @self: a prepared sensitivity object
 * @layer_specs: (element-type utf8 utf8): layer name → weight spec string (RTN fake-quant
 *   with the format's own scale rule); the other layers stay in full precision
 * @out: (out caller-allocates): the measurement
 * @cancellable: (nullable): checked inside the pass
 * @error: return location for a #GError
 *
 * Measures a per-layer plan over the budget: its mean NLL, KL against the full-precision
 * baseline (exactly 0 for an empty plan) and top-1 agreement. With a store the measurement
 * becomes an estimator sample of this budget (table estimator_samples), keyed by the
 * plan's canonical JSON.
 *
 * Returns: %TRUE on success; %BL_ERROR_NOT_FOUND names an unknown layer
 */
gboolean
bl_sensitivity_measure_plan (BlSensitivity      *self,
                             GHashTable         *layer_specs,
                             BlPlanMeasurement  *out,
                             GCancellable       *cancellable,
                             GError            **error)
{
  g_autoptr(GHashTable) weights = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, g_free);
  g_autofree char *json = NULL;
  GHashTableIter iter;
  gpointer key, value;
  BudgetScores sc;

  g_return_val_if_fail (BL_IS_SENSITIVITY (self), FALSE);
  g_return_val_if_fail (layer_specs != NULL && out != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (!check_prepared (self, error) || (json = bl_layer_specs_to_json (layer_specs, error)) == NULL)
    return FALSE;
  g_hash_table_iter_init (&iter, layer_specs);
  while (g_hash_table_iter_next (&iter, &key, &value))
    {
      const LayerInfo *l = g_hash_table_lookup (self->by_name, key);
      BlFormatSpec spec;
      float *q;

      if (l == NULL)
        {
          g_set_error (error, BL_ERROR, BL_ERROR_NOT_FOUND, "%s has no linear layer \"%s\"",
                       bl_model_get_path (self->model), (const char *) key);
          return FALSE;
        }
      if (!bl_format_spec_parse (value, &spec, error)
          || (q = quantized_weight (self, l, &spec, NULL, error)) == NULL)
        return FALSE;
      g_hash_table_insert (weights, l->name, q);
    }

  report (self, "plan", 0, 1);
  if (!run_replaced (self, weights, &sc, cancellable, error))
    return FALSE;
  report (self, "plan", 1, 1);
  out->nll = sc.sum_nll / sc.n;
  out->base_nll = self->base_nll;
  out->kl = sc.sum_kl / sc.n;
  out->top1 = (double) sc.agree / sc.n;
  out->n_tokens = sc.n;
  return self->budget_id <= 0 || store_sample (self, json, out, error);
}

BlModel *
bl_sensitivity_get_model (BlSensitivity *self)
{
  g_return_val_if_fail (BL_IS_SENSITIVITY (self), NULL);
  return self->model;
}

/* The budget with its defaults filled in. */
const BlSensitivityOptions *
bl_sensitivity_get_options (BlSensitivity *self)
{
  g_return_val_if_fail (BL_IS_SENSITIVITY (self), NULL);
  return &self->options;
}

/* The linear layers, once prepared (0 before). */
guint
bl_sensitivity_get_n_layers (BlSensitivity *self)
{
  g_return_val_if_fail (BL_IS_SENSITIVITY (self), 0);
  return self->layers != NULL ? self->layers->len : 0;
}

const char *
bl_sensitivity_get_layer_name (BlSensitivity *self,
                               guint          index)
{
  g_return_val_if_fail (BL_IS_SENSITIVITY (self), NULL);
  g_return_val_if_fail (self->layers != NULL && index < self->layers->len, NULL);
  return ((const LayerInfo *) g_ptr_array_index (self->layers, index))->name;
}

/* The full-precision mean NLL over the budget (NaN before bl_sensitivity_prepare()). */
double
bl_sensitivity_get_base_nll (BlSensitivity *self)
{
  g_return_val_if_fail (BL_IS_SENSITIVITY (self), NAN);
  return self->prepared ? self->base_nll : NAN;
}

gint64
bl_sensitivity_get_n_tokens (BlSensitivity *self)
{
  g_return_val_if_fail (BL_IS_SENSITIVITY (self), 0);
  return self->prepared ? self->n_rows : 0;
}

/* The store's id of the budget, 0 when it is not stored. */
gint64
bl_sensitivity_get_budget_id (BlSensitivity *self)
{
  g_return_val_if_fail (BL_IS_SENSITIVITY (self), 0);
  return self->budget_id;
}

/**
 * bl_sensitivity_list_specs:
 * @self: a sensitivity object
 *
 * The weight formats with per-layer numbers for this budget: computed in this object, or
 * stored for the budget.
 *
 * Returns: (transfer full) (element-type utf8): canonical spec strings, sorted
 */
GPtrArray *
bl_sensitivity_list_specs (BlSensitivity *self)
{
  g_autoptr(GHashTable) seen = g_hash_table_new (g_str_hash, g_str_equal);
  GPtrArray *out = g_ptr_array_new_with_free_func (g_free);
  GHashTableIter iter;
  gpointer key;

  g_return_val_if_fail (BL_IS_SENSITIVITY (self), out);

  g_hash_table_iter_init (&iter, self->tables);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    {
      g_hash_table_add (seen, key);
      g_ptr_array_add (out, g_strdup (key));
    }
  if (self->budget_id > 0)
    {
      g_autoptr(sqlite3_stmt) stmt = bl_store_rows_prepare (self->store,
                                                            "SELECT DISTINCT weight_spec FROM "
                                                            "sensitivity WHERE budget_id = ?1",
                                                            "sensitivity: list formats", NULL);

      if (stmt != NULL)
        {
          sqlite3_bind_int64 (stmt, 1, self->budget_id);
          while (sqlite3_step (stmt) == SQLITE_ROW)
            {
              const char *spec = (const char *) sqlite3_column_text (stmt, 0);

              if (!g_hash_table_contains (seen, spec))
                g_ptr_array_add (out, g_strdup (spec));
            }
        }
    }
  g_ptr_array_sort (out, compare_strings);
  return out;
}

/* Ranks 1…n of @v with ties sharing their mean rank. */
static void
average_ranks (const double *v,
               guint         n,
               double       *rank)
{
  g_autofree guint *order = g_new (guint, n);

  for (guint i = 0; i < n; i++)
    order[i] = i;
  /* insertion sort by value: n is a few hundred layers or plans at most */
  for (guint i = 1; i < n; i++)
    for (guint j = i; j > 0 && v[order[j - 1]] > v[order[j]]; j--)
      {
        guint t = order[j];

        order[j] = order[j - 1];
        order[j - 1] = t;
      }
  for (guint i = 0; i < n;)
    {
      guint j = i + 1;

      while (j < n && v[order[j]] == v[order[i]])
        j++;
      for (guint k = i; k < j; k++)
        rank[order[k]] = (i + j + 1) / 2.0;
      i = j;
    }
}

/**
 * bl_spearman_rho:
 * @x: (array length=n): first variable
 * @y: (array length=n): second variable
 * @n: pairs
 *
 * Spearman's rank correlation: the Pearson correlation of the ranks, ties taking their mean
 * rank (Spearman 1904; the tie rule of scipy.stats.spearmanr).
 *
 * Returns: ρ in [−1, 1]; NaN for fewer than 2 pairs or a constant variable
 */
double
bl_spearman_rho (const double *x,
                 const double *y,
                 guint         n)
{
  g_autofree double *rx = NULL;
  g_autofree double *ry = NULL;
  double mx = 0.0, my = 0.0, sxy = 0.0, sxx = 0.0, syy = 0.0;

  if (n < 2)
    return NAN;
  rx = g_new (double, n);
  ry = g_new (double, n);
  average_ranks (x, n, rx);
  average_ranks (y, n, ry);
  for (guint i = 0; i < n; i++)
    {
      mx += rx[i];
      my += ry[i];
    }
  mx /= n;
  my /= n;
  for (guint i = 0; i < n; i++)
    {
      sxy += (rx[i] - mx) * (ry[i] - my);
      sxx += (rx[i] - mx) * (rx[i] - mx);
      syy += (ry[i] - my) * (ry[i] - my);
    }
  if (sxx == 0.0 || syy == 0.0)
    return NAN;
  return sxy / sqrt (sxx * syy);
}
