/* bl-scaling.h: quality against model bits, the FP-quantization training law, INT/FP crossover
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 *   - a small Levenberg–Marquardt least-squares fitter with the parameter covariance and
 *     Student-t confidence bands (bl_lm_fit(), bl_fit_band_half_width());
 *   - the k-bit inference scaling view (methods.md §4): quality against total model bits per
 *     precision, fitted as a line, a power law or a logistic in log10 of the bits, with the
 *     bits at which two precisions' curves cross;
 *   - the "Capybara" law of Sun et al. for FP-quantized training (methods.md §3) with the
 *     paper's constants, its critical data size and optimal exponent/mantissa split, and a
 *     re-fit of the constants to a user's own runs;
 *   - the per-layer INT/FP crossover map from the weights' block crest factors and the
 *     theoretical QSNR of the INT-vs-FP paper (methods.md §2, core/bl-metrics-error.h).
 */
#pragma once

#include <gio/gio.h>

#include "bl-metrics-error.h"
#include "bl-model.h"

G_BEGIN_DECLS

#define BL_FIT_MAX_PARAMS 8

/**
 * BlFitFunc:
 * @i: the data point
 * @params: (array): the parameters
 * @out_y: (out): the model's value at point @i
 * @out_grad: (out caller-allocates) (array): ∂y/∂params at point @i
 * @user_data: user data
 *
 * A model evaluated at data point @i (the caller's data live in @user_data).
 */
typedef void (*BlFitFunc) (guint         i,
                           const double *params,
                           double       *out_y,
                           double       *out_grad,
                           gpointer      user_data);

/**
 * BlFitResult:
 * @n_params: parameters
 * @params: their fitted values
 * @covariance: the n_params × n_params parameter covariance s²·(JᵀWJ)⁻¹ at the optimum,
 *   s² = RSS/(n − n_params); NaN when there are no degrees of freedom
 * @rss: the weighted residual sum of squares
 * @r2: 1 − RSS/TSS
 * @n_points: data points
 * @dof: n_points − n_params
 * @iterations: LM iterations
 * @converged: whether the relative change of RSS fell below 1e−12 (or RSS reached 0)
 * @x_center: the centre of log10(bits) the scaling models are written around
 *
 * A fitted model.
 */
typedef struct
{
  guint n_params;
  double params[BL_FIT_MAX_PARAMS];
  double covariance[BL_FIT_MAX_PARAMS * BL_FIT_MAX_PARAMS];
  double rss;
  double r2;
  guint n_points;
  guint dof;
  guint iterations;
  gboolean converged;
  double x_center;
} BlFitResult;

gboolean  bl_lm_fit                (BlFitFunc          func,
                                    gpointer           user_data,
                                    const double      *y,
                                    const double      *weights,
                                    guint              n_points,
                                    guint              n_params,
                                    const double      *init,
                                    BlFitResult       *out,
                                    GError           **error);
double    bl_fit_band_half_width   (const BlFitResult *fit,
                                    const double      *grad,
                                    double             level);

/**
 * BlScalingModel:
 * @BL_SCALING_LOG_LINEAR: q = p0 + p1·u
 * @BL_SCALING_POWER_LAW: q = p0 + p1·10^(−p2·u), a power law in the bits with an
 *   irreducible floor p0
 * @BL_SCALING_LOGISTIC: q = p0 + p1 / (1 + exp(−p3·(u − p2)))
 *
 * Quality q against u = log10(total bits) − x_center (methods.md §4, "Fitting").
 */
typedef enum
{
  BL_SCALING_LOG_LINEAR,
  BL_SCALING_POWER_LAW,
  BL_SCALING_LOGISTIC,
} BlScalingModel;

gboolean    bl_scaling_model_from_string (const char          *name,
                                          BlScalingModel      *out);
const char *bl_scaling_model_to_string   (BlScalingModel       model);
gboolean    bl_scaling_fit           (BlScalingModel     model,
                                      const double      *total_bits,
                                      const double      *quality,
                                      guint              n,
                                      BlFitResult       *out,
                                      GError           **error);
double      bl_scaling_predict       (BlScalingModel     model,
                                      const BlFitResult *fit,
                                      double             total_bits,
                                      double             level,
                                      double            *out_half_width);
gboolean    bl_scaling_crossover     (BlScalingModel     model,
                                      const BlFitResult *a,
                                      const BlFitResult *b,
                                      double             bits_lo,
                                      double             bits_hi,
                                      double            *out_bits);

/**
 * BlSunConstants:
 * @n: n   @alpha: α   @d: d   @beta: β   @epsilon: ε   @gamma: γ   @delta: δ   @nu: ν
 *
 * The constants of L(N, D, E, M, B) = n/N^α + d/D^β + ε + (D^β/N^α)·log2(B) /
 * (γ·(E + 0.5)^δ·(M + 0.5)^ν) (Sun et al., ICML 2025, Table 2; methods.md §3).
 */
typedef struct
{
  double n, alpha, d, beta, epsilon, gamma, delta, nu;
} BlSunConstants;

void      bl_sun_constants_init     (BlSunConstants       *c);
double    bl_sun_loss               (const BlSunConstants *c,
                                     double                N,
                                     double                D,
                                     double                E,
                                     double                M,
                                     double                B);
double    bl_sun_critical_data      (const BlSunConstants *c,
                                     double                N,
                                     double                E,
                                     double                M,
                                     double                B);
void      bl_sun_optimal_layout     (const BlSunConstants *c,
                                     int                   total_bits,
                                     int                  *out_E,
                                     int                  *out_M);
gboolean  bl_sun_fit                (const double         *N,
                                     const double         *D,
                                     const double         *E,
                                     const double         *M,
                                     const double         *B,
                                     const double         *loss,
                                     guint                 n,
                                     BlSunConstants       *inout,
                                     BlFitResult          *out,
                                     GError              **error);

/**
 * BlCrossoverPair:
 * @BL_CROSSOVER_MX8: MXINT8 against MXFP8 (E4M3)
 * @BL_CROSSOVER_MX6: MXINT6 against MXFP6 (E2M3)
 * @BL_CROSSOVER_MX4: MXINT4 against MXFP4 (E2M1)
 * @BL_CROSSOVER_NV4: NVINT4 against NVFP4
 *
 * The INT/FP pairs of the INT-vs-FP paper (methods.md §2).
 */
typedef enum
{
  BL_CROSSOVER_MX8,
  BL_CROSSOVER_MX6,
  BL_CROSSOVER_MX4,
  BL_CROSSOVER_NV4,
  BL_CROSSOVER_N_PAIRS,
} BlCrossoverPair;

/**
 * BlCrossoverEntry:
 * @layer: the weight name
 * @pair: the pair
 * @int_spec: its INT format
 * @fp_spec: its FP format
 * @kappa_mean: the mean block crest factor max|x|/RMS over the pair's blocks
 * @kappa_q3: their 75th percentile, the paper's "typical worst case"
 * @crossover: the κ below which INT has the higher theoretical QSNR
 * @qsnr_int_theory: the theoretical INT QSNR at @kappa_q3 (dB)
 * @qsnr_fp_theory: the theoretical FP QSNR at @kappa_q3 (dB)
 * @qsnr_int: the measured QSNR of the weight in @int_spec (dB)
 * @qsnr_fp: the measured QSNR in @fp_spec (dB)
 *
 * One layer's INT-or-FP verdict for one pair, by theory and by measurement.
 */
typedef struct
{
  char *layer;
  BlCrossoverPair pair;
  const char *int_spec;
  const char *fp_spec;
  double kappa_mean;
  double kappa_q3;
  double crossover;
  double qsnr_int_theory;
  double qsnr_fp_theory;
  double qsnr_int;
  double qsnr_fp;
} BlCrossoverEntry;

void        bl_crossover_entry_free  (BlCrossoverEntry *entry);
const char *bl_crossover_pair_name   (BlCrossoverPair   pair);
gboolean    bl_crossover_entry_compute (BlCrossoverPair   pair,
                                        const char       *layer,
                                        const float      *w,
                                        gint64            rows,
                                        gint64            cols,
                                        int               n_threads,
                                        BlCrossoverEntry *out,
                                        GError          **error);
GPtrArray  *bl_crossover_map         (BlModel          *model,
                                      int               n_threads,
                                      GCancellable     *cancellable,
                                      GError          **error);

G_END_DECLS
