/* bl-estimator.c: instant predicted ΔKL and Δppl of a quantization plan
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * The model. For a small perturbation ΔW of one layer, the KL of the output distribution
 * is, to second order, a quadratic form in ΔW (the Fisher information; Kullback 1959), so it
 * scales with the layer's output error e_l — here the relative output error under the
 * calibration inputs, out_err of bl-sensitivity.h, a diagonal-Hessian-weighted ‖ΔW‖². The
 * one-at-a-time KL of each layer at one or more reference formats gives its sensitivity
 *
 *     s_l = Σ_k KL_lk·e_lk / Σ_k e_lk²     (least squares over the formats k measured),
 *
 * and a plan that quantizes several layers is predicted by adding them up, as HAWQ and
 * the mixed-precision allocators of methods.md (§5–§8) do:
 *
 *     x(plan) = Σ_l s_l·e_l(spec_l),   ΔKL ≈ a_kl·x,   ΔNLL ≈ a_nll·x,
 *     ppl ≈ ppl_fp·exp(ΔNLL).
 *
 * Cross-layer interactions make the sum an approximation. bl_estimator_fit() calibrates
 * a_kl and a_nll by least squares through the origin (a full-precision plan has x = 0 and
 * changes nothing) on plans measured over the same budget (bl_sensitivity_measure_plan(),
 * stored as estimator samples), and reports the estimator's own error on them, in-sample
 * and leave-one-out, with the rank correlation.
 *
 * Speed. e_l(spec) needs the layer fake-quantized once; it is cached per (layer, spec), so
 * a prediction is a sum over the plan's layers with hash lookups (microseconds for
 * hundreds of layers; bench/bench-estimator.c measures it).
 */
#include "bl-estimator.h"

#include <math.h>
#include <string.h>

#include "bl-error.h"
#include "bl-store-rows-private.h"

typedef struct
{
  double x;             /* the additive sum of the plan */
  double nll;           /* measured mean NLL */
  double kl;            /* measured mean KL */
} Sample;

struct _BlEstimator
{
  GObject parent_instance;

  BlSensitivity *sensitivity;
  GHashTable *s;        /* layer name → double *, KL per unit of out_err */
  GHashTable *errors;   /* "layer\x1fspec" → double *, out_err */
  double base_nll;
  double a_kl;
  double a_nll;
  double raw_a_nll;
  GArray *samples;      /* Sample */
};

G_DEFINE_FINAL_TYPE (BlEstimator, bl_estimator, G_TYPE_OBJECT)

static void
bl_estimator_finalize (GObject *object)
{
  BlEstimator *self = BL_ESTIMATOR (object);

  g_clear_object (&self->sensitivity);
  g_clear_pointer (&self->s, g_hash_table_unref);
  g_clear_pointer (&self->errors, g_hash_table_unref);
  g_clear_pointer (&self->samples, g_array_unref);

  G_OBJECT_CLASS (bl_estimator_parent_class)->finalize (object);
}

static void
bl_estimator_class_init (BlEstimatorClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = bl_estimator_finalize;
}

static void
bl_estimator_init (BlEstimator *self)
{
  self->s = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  self->errors = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  self->samples = g_array_new (FALSE, FALSE, sizeof (Sample));
}

static void
cache_error (BlEstimator *self,
             const char  *layer,
             const char  *spec,
             double       e)
{
  g_hash_table_replace (self->errors, g_strconcat (layer, "\x1f", spec, NULL),
                        g_memdup2 (&e, sizeof e));
}

/**
 * bl_estimator_new:
 * @sensitivity: a prepared sensitivity object with the one-at-a-time KL of at least one
 *   weight format (bl_sensitivity_compute() with @with_kl, in this object or in its store);
 *   referenced
 * @error: return location for a #GError
 *
 * Builds each layer's sensitivity s_l from every format with one-at-a-time KL the budget
 * has (see the top of bl-estimator.c), and seeds the error cache with their out_err.
 *
 * Returns: (transfer full): the estimator, or %NULL with %BL_ERROR_INVALID_ARGUMENT when
 *   no one-at-a-time KL has been measured
 */
BlEstimator *
bl_estimator_new (BlSensitivity  *sensitivity,
                  GError        **error)
{
  g_autoptr(BlEstimator) self = NULL;
  g_autoptr(GPtrArray) specs = NULL;
  /* layer name → { Σ KL·e, Σ e² } */
  g_autoptr(GHashTable) sums = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, g_free);
  guint n_layers = bl_sensitivity_get_n_layers (sensitivity);
  double sum_kl = 0.0, sum_dnll = 0.0;
  guint n_kl = 0;

  g_return_val_if_fail (BL_IS_SENSITIVITY (sensitivity), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (isnan (bl_sensitivity_get_base_nll (sensitivity)))
    {
      g_set_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT,
                   "the sensitivity budget has not been prepared (bl_sensitivity_prepare())");
      return NULL;
    }

  self = g_object_new (BL_TYPE_ESTIMATOR, NULL);
  self->sensitivity = g_object_ref (sensitivity);
  self->base_nll = bl_sensitivity_get_base_nll (sensitivity);

  for (guint i = 0; i < n_layers; i++)
    g_hash_table_insert (sums, (gpointer) bl_sensitivity_get_layer_name (sensitivity, i),
                         g_new0 (double, 2));

  specs = bl_sensitivity_list_specs (sensitivity);
  for (guint k = 0; k < specs->len; k++)
    {
      g_autoptr(GPtrArray) table = bl_sensitivity_lookup (sensitivity, specs->pdata[k], error);

      if (table == NULL)
        {
          if (error != NULL && *error != NULL)
            return NULL;
          continue;
        }
      for (guint i = 0; i < table->len; i++)
        {
          const BlLayerSensitivity *ls = g_ptr_array_index (table, i);
          double *acc = g_hash_table_lookup (sums, ls->name);

          if (isfinite (ls->out_err))
            cache_error (self, ls->name, ls->weight_spec, ls->out_err);
          if (acc == NULL || !isfinite (ls->kl) || !isfinite (ls->out_err))
            continue;
          acc[0] += ls->kl * ls->out_err;
          acc[1] += ls->out_err * ls->out_err;
          sum_kl += ls->kl;
          sum_dnll += isfinite (ls->dnll) ? ls->dnll : 0.0;
          n_kl++;
        }
    }
  if (n_kl == 0)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT,
                   "no one-at-a-time KL has been measured on this budget: the estimator needs "
                   "the per-layer sensitivity of at least one weight format");
      return NULL;
    }

  for (guint l = 0; l < n_layers; l++)
    {
      const char *name = bl_sensitivity_get_layer_name (sensitivity, l);
      const double *acc = g_hash_table_lookup (sums, name);
      double s = acc[1] > 0.0 ? acc[0] / acc[1] : 0.0;

      g_hash_table_insert (self->s, g_strdup (name), g_memdup2 (&s, sizeof s));
    }
  self->a_kl = 1.0;
  /* Until calibrated, ΔNLL follows the one-at-a-time measurements' ratio to KL (for a
   * model whose predictions match the text, E[ΔNLL] equals the KL). */
  self->raw_a_nll = sum_kl > 0.0 && sum_dnll > 0.0 ? sum_dnll / sum_kl : 1.0;
  self->a_nll = self->raw_a_nll;
  return g_steal_pointer (&self);
}

/* x(plan) = Σ_l s_l·e_l(spec_l), computing and caching the errors not seen yet. */
static gboolean
additive_sum (BlEstimator  *self,
              GHashTable   *layer_specs,
              double       *out_x,
              guint        *out_n,
              GError      **error)
{
  GHashTableIter iter;
  gpointer key, value;
  double x = 0.0;
  guint n = 0;
  char buf[512];

  g_hash_table_iter_init (&iter, layer_specs);
  while (g_hash_table_iter_next (&iter, &key, &value))
    {
      const double *s = g_hash_table_lookup (self->s, key);
      const double *e;
      g_autofree char *heap_key = NULL;
      const char *cache_key;
      int len;

      if (s == NULL)
        {
          g_set_error (error, BL_ERROR, BL_ERROR_NOT_FOUND, "%s has no linear layer \"%s\"",
                       bl_model_get_path (bl_sensitivity_get_model (self->sensitivity)),
                       (const char *) key);
          return FALSE;
        }
      /* the key on the stack in the common case: no allocation per layer */
      len = g_snprintf (buf, sizeof buf, "%s\x1f%s", (const char *) key, (const char *) value);
      cache_key = (gsize) len < sizeof buf ? buf
                  : (heap_key = g_strconcat (key, "\x1f", value, NULL));
      if ((e = g_hash_table_lookup (self->errors, cache_key)) == NULL)
        {
          BlFormatSpec spec;
          double out_err;

          if (!bl_format_spec_parse (value, &spec, error)
              || !bl_sensitivity_layer_error (self->sensitivity, key, &spec, &out_err, NULL,
                                              error))
            {
              g_prefix_error (error, "%s: ", (const char *) key);
              return FALSE;
            }
          cache_error (self, key, value, out_err);
          e = g_hash_table_lookup (self->errors, cache_key);
        }
      if (isfinite (*e))
        x += *s * *e;
      n++;
    }
  *out_x = x;
  *out_n = n;
  return TRUE;
}

static void
estimate_from_sum (BlEstimator *self,
                   double       x,
                   BlEstimate  *out)
{
  out->additive_kl = x;
  out->dkl = self->a_kl * x;
  out->dnll = self->a_nll * x;
  out->base_ppl = exp (self->base_nll);
  out->ppl = exp (self->base_nll + out->dnll);
  out->dppl = out->ppl - out->base_ppl;
}

/**
 * bl_estimator_predict:
 * @self: an estimator
 * @layer_specs: (element-type utf8 utf8): layer name → weight spec string; the other layers
 *   stay in full precision
 * @out: (out caller-allocates): the prediction
 * @error: return location for a #GError
 *
 * Predicts a plan. The first time a (layer, spec) pair is seen its error is measured by
 * fake-quantizing that layer's weight once; after that a prediction is only a sum.
 *
 * Returns: %TRUE on success; %BL_ERROR_NOT_FOUND names an unknown layer
 */
gboolean
bl_estimator_predict (BlEstimator  *self,
                      GHashTable   *layer_specs,
                      BlEstimate   *out,
                      GError      **error)
{
  double x;
  guint n;

  g_return_val_if_fail (BL_IS_ESTIMATOR (self), FALSE);
  g_return_val_if_fail (layer_specs != NULL && out != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (!additive_sum (self, layer_specs, &x, &n, error))
    return FALSE;
  estimate_from_sum (self, x, out);
  out->n_layers = n;
  out->approximate = FALSE;
  return TRUE;
}

/**
 * bl_estimator_predict_plan:
 * @self: an estimator
 * @plan: a quantization plan (bl-quant-plan.h)
 * @out: (out caller-allocates): the prediction
 * @error: return location for a #GError
 *
 * Resolves @plan against the model and predicts its quantized weights, each with its
 * format's RTN error. The sensitivities come from weight-only one-at-a-time measurements,
 * so activation and KV-cache quantizers, and what an algorithm such as GPTQ gains over
 * RTN, are not in the estimate: @out->approximate says when the plan has any of them.
 *
 * Returns: %TRUE on success; the plan's own errors (a bad rule) otherwise
 */
gboolean
bl_estimator_predict_plan (BlEstimator  *self,
                           BlQuantPlan  *plan,
                           BlEstimate   *out,
                           GError      **error)
{
  g_autoptr(GPtrArray) resolved = NULL;
  g_autoptr(GHashTable) specs = g_hash_table_new (g_str_hash, g_str_equal);
  gboolean approximate = bl_quant_plan_get_kv_cache (plan) != NULL;

  g_return_val_if_fail (BL_IS_ESTIMATOR (self), FALSE);
  g_return_val_if_fail (BL_IS_QUANT_PLAN (plan), FALSE);
  g_return_val_if_fail (out != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  resolved = bl_quant_plan_resolve (plan, bl_sensitivity_get_model (self->sensitivity), error);
  if (resolved == NULL)
    return FALSE;
  for (guint i = 0; i < resolved->len; i++)
    {
      const BlLayerAssignment *a = g_ptr_array_index (resolved, i);

      approximate |= a->has_activation;
      if (!a->has_weight)
        continue;
      approximate |= g_strcmp0 (a->algorithm, "rtn") != 0;
      g_hash_table_insert (specs, a->layer, a->weight_spec);
    }
  if (!bl_estimator_predict (self, specs, out, error))
    return FALSE;
  out->approximate = approximate;
  return TRUE;
}

/**
 * bl_estimator_add_sample:
 * @self: an estimator
 * @layer_specs: (element-type utf8 utf8): the plan that was measured
 * @measured_nll: its mean NLL over the sensitivity budget
 * @measured_kl: its mean KL against full precision over the budget
 * @error: return location for a #GError
 *
 * Adds a measured plan for bl_estimator_fit(). The measurement must be over the same
 * budget as the sensitivity (as bl_sensitivity_measure_plan() makes it).
 *
 * Returns: %TRUE on success
 */
gboolean
bl_estimator_add_sample (BlEstimator  *self,
                         GHashTable   *layer_specs,
                         double        measured_nll,
                         double        measured_kl,
                         GError      **error)
{
  Sample s;
  guint n;

  g_return_val_if_fail (BL_IS_ESTIMATOR (self), FALSE);
  g_return_val_if_fail (layer_specs != NULL, FALSE);

  if (!additive_sum (self, layer_specs, &s.x, &n, error))
    return FALSE;
  s.nll = measured_nll;
  s.kl = measured_kl;
  g_array_append_val (self->samples, s);
  return TRUE;
}

/**
 * bl_estimator_load_samples:
 * @self: an estimator
 * @store: the store the sensitivity budget is cached in
 * @error: return location for a #GError
 *
 * Adds every plan measured on this budget that the store holds (table estimator_samples).
 *
 * Returns: the number of samples added (0 with @error set on a failure)
 */
guint
bl_estimator_load_samples (BlEstimator  *self,
                           BlStore      *store,
                           GError      **error)
{
  g_autoptr(sqlite3_stmt) stmt = NULL;
  gint64 budget;
  guint added = 0;
  int rc;

  g_return_val_if_fail (BL_IS_ESTIMATOR (self), 0);
  g_return_val_if_fail (BL_IS_STORE (store), 0);
  g_return_val_if_fail (error == NULL || *error == NULL, 0);

  if ((budget = bl_sensitivity_get_budget_id (self->sensitivity)) <= 0)
    return 0;
  stmt = bl_store_rows_prepare (store,
                                "SELECT plan_json, nll, kl FROM estimator_samples "
                                "WHERE budget_id = ?1 ORDER BY id",
                                "estimator: read measured plans", error);
  if (stmt == NULL)
    return 0;
  sqlite3_bind_int64 (stmt, 1, budget);
  while ((rc = sqlite3_step (stmt)) == SQLITE_ROW)
    {
      g_autoptr(GHashTable) plan = NULL;

      plan = bl_layer_specs_from_json ((const char *) sqlite3_column_text (stmt, 0), error);
      if (plan == NULL
          || !bl_estimator_add_sample (self, plan, sqlite3_column_double (stmt, 1),
                                       sqlite3_column_double (stmt, 2), error))
        {
          g_prefix_error (error, "%s: estimator sample: ", bl_store_get_path (store));
          return 0;
        }
      added++;
    }
  if (rc != SQLITE_DONE)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_STORE, "%s: estimator: read measured plans: %s",
                   bl_store_get_path (store), sqlite3_errstr (rc));
      return 0;
    }
  return added;
}

guint
bl_estimator_get_n_samples (BlEstimator *self)
{
  g_return_val_if_fail (BL_IS_ESTIMATOR (self), 0);
  return self->samples->len;
}

static double
dppl_of (double base_nll,
         double dnll)
{
  return exp (base_nll) * (exp (dnll) - 1.0);
}

/* least squares through the origin: argmin_a Σ (y − a·x)², skipping sample @skip */
static double
fit_scale (GArray   *samples,
           gboolean  kl,
           double    base_nll,
           guint     skip)
{
  double sxy = 0.0, sxx = 0.0;

  for (guint i = 0; i < samples->len; i++)
    {
      const Sample *s = &g_array_index (samples, Sample, i);

      if (i == skip)
        continue;
      sxy += s->x * (kl ? s->kl : s->nll - base_nll);
      sxx += s->x * s->x;
    }
  return sxx > 0.0 ? sxy / sxx : NAN;
}

/**
 * bl_estimator_fit:
 * @self: an estimator with at least two samples, one of them quantizing something
 * @out: (out caller-allocates) (optional): how well the fitted estimator reproduces them
 * @error: return location for a #GError
 *
 * Calibrates a_kl and a_nll on the samples (least squares through the origin) and measures
 * the estimator's error on them. Later predictions use the fitted coefficients.
 *
 * Returns: %TRUE on success; %BL_ERROR_INVALID_ARGUMENT with too few samples
 */
gboolean
bl_estimator_fit (BlEstimator     *self,
                  BlEstimatorFit  *out,
                  GError         **error)
{
  guint n;
  double a_kl, a_nll;
  double se = 0.0, ae = 0.0, re = 0.0, loo = 0.0, raw = 0.0, se_kl = 0.0;
  g_autofree double *pred = NULL;
  g_autofree double *meas = NULL;
  g_autofree double *pred_kl = NULL;
  g_autofree double *meas_kl = NULL;
  guint n_rel = 0;

  g_return_val_if_fail (BL_IS_ESTIMATOR (self), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  n = self->samples->len;
  a_kl = fit_scale (self->samples, TRUE, self->base_nll, G_MAXUINT);
  a_nll = fit_scale (self->samples, FALSE, self->base_nll, G_MAXUINT);
  if (n < 2 || isnan (a_kl) || isnan (a_nll))
    {
      g_set_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT,
                   "the estimator needs at least two measured plans, one of them quantizing "
                   "a layer, to calibrate on (it has %u)", n);
      return FALSE;
    }
  self->a_kl = a_kl;
  self->a_nll = a_nll;
  if (out == NULL)
    return TRUE;

  pred = g_new (double, n);
  meas = g_new (double, n);
  pred_kl = g_new (double, n);
  meas_kl = g_new (double, n);
  for (guint i = 0; i < n; i++)
    {
      const Sample *s = &g_array_index (self->samples, Sample, i);
      double a_loo = fit_scale (self->samples, FALSE, self->base_nll, i);
      double d;

      pred[i] = dppl_of (self->base_nll, a_nll * s->x);
      meas[i] = dppl_of (self->base_nll, s->nll - self->base_nll);
      pred_kl[i] = a_kl * s->x;
      meas_kl[i] = s->kl;
      d = pred[i] - meas[i];
      se += d * d;
      ae += fabs (d);
      if (meas[i] != 0.0)
        {
          re += fabs (d) / fabs (meas[i]);
          n_rel++;
        }
      d = (isnan (a_loo) ? 0.0 : dppl_of (self->base_nll, a_loo * s->x)) - meas[i];
      loo += d * d;
      d = dppl_of (self->base_nll, self->raw_a_nll * s->x) - meas[i];
      raw += d * d;
      d = pred_kl[i] - meas_kl[i];
      se_kl += d * d;
    }

  out->n_samples = n;
  out->a_kl = a_kl;
  out->a_nll = a_nll;
  out->rmse_dppl = sqrt (se / n);
  out->mae_dppl = ae / n;
  out->mean_rel_err_dppl = n_rel > 0 ? re / n_rel : NAN;
  out->loo_rmse_dppl = sqrt (loo / n);
  out->raw_rmse_dppl = sqrt (raw / n);
  out->spearman_dppl = bl_spearman_rho (pred, meas, n);
  out->rmse_kl = sqrt (se_kl / n);
  out->spearman_kl = bl_spearman_rho (pred_kl, meas_kl, n);
  return TRUE;
}

/**
 * bl_estimator_get_sample:
 * @self: an estimator
 * @index: a sample index
 * @predicted_dppl: (out) (optional): the current prediction of its Δppl
 * @measured_dppl: (out) (optional): its measured Δppl
 * @predicted_kl: (out) (optional): the current prediction of its KL
 * @measured_kl: (out) (optional): its measured KL
 *
 * Returns: %TRUE when @index is a sample
 */
gboolean
bl_estimator_get_sample (BlEstimator *self,
                         guint        index,
                         double      *predicted_dppl,
                         double      *measured_dppl,
                         double      *predicted_kl,
                         double      *measured_kl)
{
  const Sample *s;

  g_return_val_if_fail (BL_IS_ESTIMATOR (self), FALSE);

  if (index >= self->samples->len)
    return FALSE;
  s = &g_array_index (self->samples, Sample, index);
  if (predicted_dppl != NULL)
    *predicted_dppl = dppl_of (self->base_nll, self->a_nll * s->x);
  if (measured_dppl != NULL)
    *measured_dppl = dppl_of (self->base_nll, s->nll - self->base_nll);
  if (predicted_kl != NULL)
    *predicted_kl = self->a_kl * s->x;
  if (measured_kl != NULL)
    *measured_kl = s->kl;
  return TRUE;
}

/**
 * bl_estimator_get_layer_sensitivity:
 * @self: an estimator
 * @layer: a layer name
 *
 * Returns: s_l, the layer's one-at-a-time KL per unit of relative output error; NaN for an
 *   unknown layer
 */
double
bl_estimator_get_layer_sensitivity (BlEstimator *self,
                                    const char  *layer)
{
  const double *s;

  g_return_val_if_fail (BL_IS_ESTIMATOR (self), NAN);
  g_return_val_if_fail (layer != NULL, NAN);

  s = g_hash_table_lookup (self->s, layer);
  return s != NULL ? *s : NAN;
}
