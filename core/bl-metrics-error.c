/* bl-metrics-error.c: quantization error metrics and the INT-vs-FP crest-factor theory
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "bl-metrics-error.h"

#include <math.h>
#include <stdlib.h>

void
bl_error_stats_init (BlErrorStats *stats)
{
  g_return_if_fail (stats != NULL);

  *stats = (BlErrorStats) { 0 };
}

/**
 * bl_error_stats_add:
 * @stats: running sums
 * @reference: (array): the original values x
 * @approx: (array): their quantized values q
 * @n: number of elements
 *
 * Accumulates the sums of @reference against @approx.
 */
void
bl_error_stats_add (BlErrorStats *stats,
                    const float  *reference,
                    const float  *approx,
                    gint64        n)
{
  double ref = 0, err = 0, app = 0, dot = 0, mx = stats->max_abs_err;

  g_return_if_fail (stats != NULL);
  g_return_if_fail (n == 0 || (reference != NULL && approx != NULL));

  for (gint64 i = 0; i < n; i++)
    {
      double x = reference[i], q = approx[i], d = x - q;

      ref += x * x;
      err += d * d;
      app += q * q;
      dot += x * q;
      if (fabs (d) > mx || d != d)
        mx = fabs (d);
    }
  stats->n += n;
  stats->sum_sq_ref += ref;
  stats->sum_sq_err += err;
  stats->sum_sq_approx += app;
  stats->sum_dot += dot;
  stats->max_abs_err = mx;
}

void
bl_error_stats_merge (BlErrorStats       *into,
                      const BlErrorStats *from)
{
  g_return_if_fail (into != NULL && from != NULL);

  into->n += from->n;
  into->sum_sq_ref += from->sum_sq_ref;
  into->sum_sq_err += from->sum_sq_err;
  into->sum_sq_approx += from->sum_sq_approx;
  into->sum_dot += from->sum_dot;
  if (from->max_abs_err > into->max_abs_err || from->max_abs_err != from->max_abs_err)
    into->max_abs_err = from->max_abs_err;
}

/* mean squared error */
double
bl_error_stats_mse (const BlErrorStats *stats)
{
  g_return_val_if_fail (stats != NULL, NAN);
  return stats->n > 0 ? stats->sum_sq_err / (double) stats->n : 0.0;
}

/**
 * bl_error_stats_qsnr_db:
 * @stats: running sums
 *
 * QSNR = −10·log10(‖X − X_q‖² / ‖X‖²) in dB, per tensor (INT-vs-FP paper, methods.md §2).
 *
 * Returns: the QSNR; +Inf for an exact reconstruction, NaN for an all-zero reference
 */
double
bl_error_stats_qsnr_db (const BlErrorStats *stats)
{
  g_return_val_if_fail (stats != NULL, NAN);

  if (stats->sum_sq_ref == 0.0)
    return stats->sum_sq_err == 0.0 ? NAN : -INFINITY;
  if (stats->sum_sq_err == 0.0)
    return INFINITY;
  return -10.0 * log10 (stats->sum_sq_err / stats->sum_sq_ref);
}

/* cos(x, q) = x·q / (‖x‖‖q‖); 1 when both are zero */
double
bl_error_stats_cosine (const BlErrorStats *stats)
{
  g_return_val_if_fail (stats != NULL, NAN);

  if (stats->sum_sq_ref == 0.0 && stats->sum_sq_approx == 0.0)
    return 1.0;
  if (stats->sum_sq_ref == 0.0 || stats->sum_sq_approx == 0.0)
    return 0.0;
  return stats->sum_dot / sqrt (stats->sum_sq_ref * stats->sum_sq_approx);
}

/**
 * bl_metrics_crest_factor:
 * @x: (array): values
 * @n: number of values
 *
 * κ = max|x| / RMS(x) (methods.md §2).
 *
 * Returns: κ, or 0 for an all-zero input
 */
double
bl_metrics_crest_factor (const float *x,
                         gint64       n)
{
  double sq = 0, mx = 0;

  g_return_val_if_fail (n == 0 || x != NULL, NAN);

  for (gint64 i = 0; i < n; i++)
    {
      double v = fabs ((double) x[i]);

      sq += v * v;
      mx = v > mx ? v : mx;
    }
  if (sq == 0.0)
    return 0.0;
  return mx / sqrt (sq / (double) n);
}

static int
cmp_double (const void *a,
            const void *b)
{
  double da = *(const double *) a, db = *(const double *) b;

  return (da > db) - (da < db);
}

/**
 * bl_metrics_block_crest:
 * @x: (array): an @n_rows × @n_cols tensor, row-major
 * @n_rows: rows
 * @n_cols: columns
 * @block: elements per block along a row (a short last block counts as it is)
 * @out_mean: (out) (optional): mean κ over the blocks
 * @out_q3: (out) (optional): the 75th percentile of κ (linear interpolation), the paper's
 *   "typical worst case"
 *
 * Crest factor per block, averaged over the tensor (methods.md §2). All-zero blocks have no
 * crest factor and are skipped.
 */
void
bl_metrics_block_crest (const float *x,
                        gint64       n_rows,
                        gint64       n_cols,
                        gint64       block,
                        double      *out_mean,
                        double      *out_q3)
{
  gint64 per_row, m = 0;
  g_autofree double *kappa = NULL;
  double sum = 0;

  g_return_if_fail (x != NULL);
  g_return_if_fail (n_rows > 0 && n_cols > 0 && block > 0);

  per_row = (n_cols + block - 1) / block;
  kappa = g_new (double, n_rows * per_row);
  for (gint64 r = 0; r < n_rows; r++)
    for (gint64 c = 0; c < n_cols; c += block)
      {
        double k = bl_metrics_crest_factor (x + r * n_cols + c, MIN (block, n_cols - c));

        if (k > 0.0)
          {
            kappa[m++] = k;
            sum += k;
          }
      }
  if (out_mean != NULL)
    *out_mean = m > 0 ? sum / (double) m : 0.0;
  if (out_q3 != NULL)
    {
      if (m == 0)
        *out_q3 = 0.0;
      else
        {
          double pos = 0.75 * (double) (m - 1);
          gint64 lo = (gint64) floor (pos);
          gint64 hi = MIN (lo + 1, m - 1);

          qsort (kappa, (size_t) m, sizeof *kappa, cmp_double);
          *out_q3 = kappa[lo] + (pos - (double) lo) * (kappa[hi] - kappa[lo]);
        }
    }
}

/**
 * bl_metrics_kurtosis:
 * @x: (array): values
 * @n: number of values
 *
 * Pearson kurtosis E[(x − μ)⁴] / σ⁴ (3 for a Gaussian; heavy tails push it up), with the
 * population variance.
 *
 * Returns: the kurtosis, or 0 for a constant input
 */
double
bl_metrics_kurtosis (const float *x,
                     gint64       n)
{
  double mean = 0, m2 = 0, m4 = 0;

  g_return_val_if_fail (n == 0 || x != NULL, NAN);
  if (n == 0)
    return 0.0;

  for (gint64 i = 0; i < n; i++)
    mean += x[i];
  mean /= (double) n;
  for (gint64 i = 0; i < n; i++)
    {
      double d = x[i] - mean, d2 = d * d;

      m2 += d2;
      m4 += d2 * d2;
    }
  m2 /= (double) n;
  m4 /= (double) n;
  return m2 > 0.0 ? m4 / (m2 * m2) : 0.0;
}

/* ------------------------------------------------------------------------------------------ */
/* INT v.s. FP (Chen et al., arXiv 2510.25602), theoretical_comparisons.py as transcribed in
 * methods.md §2: QSNR of a Gaussian block whose maximum is κ standard deviations. */

#define NV_GROUP 16.0

static double
theory_rho (BlTheoryScaling scaling)
{
  /* the mean overshoot of the scale: 1.5 for UE8M0 (the average of [1, 2)), 1.05 in the
   * code for E4M3 (the paper's text says 1) */
  return scaling == BL_THEORY_MX ? 1.5 : 1.05;
}

/**
 * bl_theory_qsnr_int:
 * @kappa: crest factor κ
 * @bits: integer bits b
 * @scaling: MX or NV block scaling
 *
 * QSNR_INT = 10.8 + 6.02(b−1) − 20·log10 ρ − 20·log10 κ for MX, and
 * −10·log10((ρκ)²/(12·4^(b−1)) · (1 − 1/g)) with g = 16 for NV (methods.md §2).
 *
 * Returns: the predicted QSNR in dB
 */
double
bl_theory_qsnr_int (double          kappa,
                    int             bits,
                    BlTheoryScaling scaling)
{
  double rho = theory_rho (scaling);

  g_return_val_if_fail (kappa > 0 && bits >= 2, NAN);

  if (scaling == BL_THEORY_MX)
    return 10.8 + 6.02 * (bits - 1) - 20.0 * log10 (rho) - 20.0 * log10 (kappa);
  return -10.0 * log10 ((rho * kappa) * (rho * kappa) / (12.0 * pow (4.0, bits - 1)) * (1.0 - 1.0 / NV_GROUP));
}

static double
phi_pdf (double t)
{
  return exp (-0.5 * t * t) / sqrt (2.0 * G_PI);
}

static double
phi_cdf (double t)
{
  return 0.5 * (1.0 + erf (t / G_SQRT2));
}

/**
 * bl_theory_qsnr_fp:
 * @kappa: crest factor κ
 * @ebits: exponent bits E
 * @mbits: mantissa bits M
 * @scaling: MX or NV block scaling
 *
 * The FP model of methods.md §2: with bias B, Q_max (448 for E4M3, 57344 for E5M2),
 * α_M = 1/(24·4^M), β = 2^(2(1−B−M))/(12·Q_max²), τ0 = (ρκ/Q_max)·2^(−B−M),
 * τ1 = (ρκ/Q_max)·2^(1−B): QSNR = −10·log10(α_M·w_norm + β(ρκ)²·p_sub + w_zero); the NV
 * variant replaces w_norm by max(0, w_norm − κ²/16).
 *
 * Returns: the predicted QSNR in dB
 */
double
bl_theory_qsnr_fp (double          kappa,
                   int             ebits,
                   int             mbits,
                   BlTheoryScaling scaling)
{
  double rho = theory_rho (scaling), bias, qmax, alpha, beta, t0, t1, p_sub, w_zero, w_norm;

  g_return_val_if_fail (kappa > 0 && ebits >= 1 && mbits >= 0, NAN);

  bias = ebits == 0 ? 1.0 : (double) ((1 << (ebits - 1)) - 1);
  if (ebits == 4 && mbits == 3)
    qmax = 448.0;
  else if (ebits == 5 && mbits == 2)
    qmax = 57344.0;
  else
    qmax = (1.0 + (double) ((1 << mbits) - 1) / (double) (1 << mbits))
           * ldexp (1.0, (1 << ebits) - 1 - (int) bias);

  alpha = 1.0 / (24.0 * ldexp (1.0, 2 * mbits));
  beta = ldexp (1.0, 2 * (1 - (int) bias - mbits)) / (12.0 * qmax * qmax);
  t0 = rho * kappa / qmax * ldexp (1.0, -(int) bias - mbits);
  t1 = rho * kappa / qmax * ldexp (1.0, 1 - (int) bias);
  p_sub = 2.0 * (phi_cdf (t1) - phi_cdf (t0));
  w_zero = 2.0 * phi_cdf (t0) - 1.0 - 2.0 * t0 * phi_pdf (t0);
  w_norm = 2.0 * (t1 * phi_pdf (t1) + 1.0 - phi_cdf (t1));
  if (scaling == BL_THEORY_NV)
    w_norm = MAX (0.0, w_norm - kappa * kappa / NV_GROUP);
  return -10.0 * log10 (alpha * w_norm + beta * (rho * kappa) * (rho * kappa) * p_sub + w_zero);
}

/**
 * bl_theory_crossover:
 * @int_bits: integer bits
 * @ebits: FP exponent bits
 * @mbits: FP mantissa bits
 * @scaling: MX or NV
 *
 * The crest factor below which the integer format has the higher predicted QSNR, found by
 * bisection on [1, 100] (methods.md §2: MXINT8/MXFP8 7.55, MXINT6/MXFP6 1.96,
 * MXINT4/MXFP4 2.04, NVINT4/NVFP4 2.39).
 *
 * Returns: κ at the crossing, or NaN when the curves do not cross in [1, 100]
 */
double
bl_theory_crossover (int             int_bits,
                     int             ebits,
                     int             mbits,
                     BlTheoryScaling scaling)
{
  double lo = 1.0, hi = 100.0;
  double f_lo = bl_theory_qsnr_int (lo, int_bits, scaling) - bl_theory_qsnr_fp (lo, ebits, mbits, scaling);
  double f_hi = bl_theory_qsnr_int (hi, int_bits, scaling) - bl_theory_qsnr_fp (hi, ebits, mbits, scaling);

  if ((f_lo > 0) == (f_hi > 0))
    return NAN;
  for (int i = 0; i < 100; i++)
    {
      double mid = 0.5 * (lo + hi);
      double f = bl_theory_qsnr_int (mid, int_bits, scaling) - bl_theory_qsnr_fp (mid, ebits, mbits, scaling);

      if ((f > 0) == (f_lo > 0))
        {
          lo = mid;
          f_lo = f;
        }
      else
        hi = mid;
    }
  return 0.5 * (lo + hi);
}

/**
 * bl_theory_qsnr_for_spec:
 * @spec: a format
 * @kappa: crest factor of its blocks
 * @out_qsnr_db: (out): the predicted QSNR
 *
 * Applies the theory to the block formats it models: mxint, mxfp, nvfp4 and nvint4.
 *
 * Returns: %FALSE for any other family
 */
gboolean
bl_theory_qsnr_for_spec (const BlFormatSpec *spec,
                         double              kappa,
                         double             *out_qsnr_db)
{
  g_return_val_if_fail (spec != NULL && out_qsnr_db != NULL, FALSE);

  if (!(kappa > 0))
    return FALSE;
  switch (spec->family)
    {
    case BL_FORMAT_MXINT:
      *out_qsnr_db = bl_theory_qsnr_int (kappa, spec->bits, BL_THEORY_MX);
      return TRUE;
    case BL_FORMAT_MXFP:
      *out_qsnr_db = bl_theory_qsnr_fp (kappa, spec->ebits, spec->mbits, BL_THEORY_MX);
      return TRUE;
    case BL_FORMAT_NVINT4:
      *out_qsnr_db = bl_theory_qsnr_int (kappa, 4, BL_THEORY_NV);
      return TRUE;
    case BL_FORMAT_NVFP4:
      *out_qsnr_db = bl_theory_qsnr_fp (kappa, 2, 1, BL_THEORY_NV);
      return TRUE;
    case BL_FORMAT_INT:
    case BL_FORMAT_FP:
    case BL_FORMAT_NF4:
    case BL_FORMAT_BINARY:
    case BL_FORMAT_TERNARY:
    case BL_FORMAT_DUAL_BINARY:
    case BL_FORMAT_COMPLEX_2BIT:
    case BL_FORMAT_BITMOD:
    case BL_FORMAT_INT2_INT4:
    case BL_FORMAT_BF16:
    case BL_FORMAT_FP16:
    case BL_FORMAT_N_FAMILIES:
    default:
      return FALSE;
    }
}
