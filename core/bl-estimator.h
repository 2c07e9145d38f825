/* bl-estimator.h: instant predicted ΔKL and Δppl of a quantization plan
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <glib-object.h>

#include "bl-quant-plan.h"
#include "bl-sensitivity.h"

G_BEGIN_DECLS

/**
 * BlEstimate:
 * @additive_kl: Σ_l s_l·e_l(spec_l), the plan's per-layer errors times the layers'
 *   sensitivities (KL per unit of relative output error, from one-at-a-time KL)
 * @dkl: the predicted mean KL against full precision, a_kl·@additive_kl (nats/token)
 * @dnll: the predicted change of mean NLL, a_nll·@additive_kl (nats/token)
 * @base_ppl: the full-precision perplexity over the sensitivity budget
 * @ppl: the predicted perplexity, @base_ppl·exp(@dnll)
 * @dppl: @ppl − @base_ppl
 * @n_layers: the layers the plan quantizes
 * @approximate: the plan does more than the estimate models (activation or KV-cache
 *   quantizers, a weight algorithm other than RTN); only its weight formats are predicted,
 *   as RTN (bl_estimator_predict_plan())
 *
 * A prediction for one plan. The coefficients a_kl and a_nll are 1 and the one-at-a-time
 * ΣΔNLL/ΣKL ratio until bl_estimator_fit() calibrates them on measured plans.
 */
typedef struct
{
  double additive_kl;
  double dkl;
  double dnll;
  double base_ppl;
  double ppl;
  double dppl;
  guint n_layers;
  gboolean approximate;
} BlEstimate;

/**
 * BlEstimatorFit:
 * @n_samples: measured plans the fit used
 * @a_kl: fitted scale of the additive sum for ΔKL
 * @a_nll: fitted scale of the additive sum for ΔNLL
 * @rmse_dppl: root mean square error of the predicted Δppl over the samples
 * @mae_dppl: mean absolute error of the predicted Δppl
 * @mean_rel_err_dppl: mean of |predicted − measured| / |measured| Δppl over the samples whose
 *   measured Δppl is not 0 (NaN when there are none)
 * @loo_rmse_dppl: leave-one-out RMSE of Δppl: each sample predicted from a fit on the others,
 *   the honest out-of-sample error
 * @raw_rmse_dppl: the RMSE of Δppl before the fit (a_nll from the one-at-a-time ratio)
 * @spearman_dppl: Spearman rank correlation of predicted and measured Δppl
 * @rmse_kl: RMSE of the predicted ΔKL
 * @spearman_kl: Spearman rank correlation of predicted and measured KL
 *
 * How well the estimator reproduces the plans it was calibrated on. A least-squares scale
 * through the origin does not change the ranking, so the rank correlations are those of
 * the additive sum itself.
 */
typedef struct
{
  guint n_samples;
  double a_kl;
  double a_nll;
  double rmse_dppl;
  double mae_dppl;
  double mean_rel_err_dppl;
  double loo_rmse_dppl;
  double raw_rmse_dppl;
  double spearman_dppl;
  double rmse_kl;
  double spearman_kl;
} BlEstimatorFit;

#define BL_TYPE_ESTIMATOR (bl_estimator_get_type ())
G_DECLARE_FINAL_TYPE (BlEstimator, bl_estimator, BL, ESTIMATOR, GObject)

BlEstimator *bl_estimator_new          (BlSensitivity   *sensitivity,
                                        GError         **error);
gboolean     bl_estimator_predict      (BlEstimator     *self,
                                        GHashTable      *layer_specs,
                                        BlEstimate      *out,
                                        GError         **error);
gboolean     bl_estimator_predict_plan (BlEstimator     *self,
                                        BlQuantPlan     *plan,
                                        BlEstimate      *out,
                                        GError         **error);
gboolean     bl_estimator_add_sample   (BlEstimator     *self,
                                        GHashTable      *layer_specs,
                                        double           measured_nll,
                                        double           measured_kl,
                                        GError         **error);
guint        bl_estimator_load_samples (BlEstimator     *self,
                                        BlStore         *store,
                                        GError         **error);
guint        bl_estimator_get_n_samples (BlEstimator    *self);
gboolean     bl_estimator_fit          (BlEstimator     *self,
                                        BlEstimatorFit  *out,
                                        GError         **error);
gboolean     bl_estimator_get_sample   (BlEstimator     *self,
                                        guint            index,
                                        double          *predicted_dppl,
                                        double          *measured_dppl,
                                        double          *predicted_kl,
                                        double          *measured_kl);
double       bl_estimator_get_layer_sensitivity (BlEstimator *self,
                                                 const char  *layer);

G_END_DECLS
