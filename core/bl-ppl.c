/* bl-ppl.c: perplexity with a confidence interval, accumulated window by window
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * The estimate. Window i contributes y_i = Σ NLL over its scored tokens and x_i = its
 * number of scored tokens. Perplexity is exp(r) with the ratio estimator r = Σy / Σx, i.e.
 * the mean NLL per scored token over all windows (what GPTQ, HF and llama.cpp report).
 *
 * Its uncertainty. Tokens inside a window share context, so they are not independent;
 * the windows (disjoint stretches of text scored with their own context) are taken as the
 * independent units, sampled from the text's population of windows. The standard error of
 * a ratio estimator from k units (Cochran, "Sampling Techniques", 3rd ed. 1977, §6.3–6.4,
 * eq. 6.9 without the finite population correction; equally the delta method) is
 *
 *   se(r) = sqrt( Σ (y_i − r·x_i)² / (k − 1) / k ) / x̄,   x̄ = Σx / k.
 *
 * When all windows score the same number of tokens (gptq, llamacpp) this is the ordinary
 * standard error of the mean of the per-window mean NLLs. The 95% interval on the mean NLL
 * is r ± t_{0.975, k−1}·se with Student's t, and the perplexity interval is exp() of its
 * ends (exp is monotone). It needs k ≥ 2 windows; with one window there is no interval.
 *
 * Order. Σy is a Neumaier-compensated sum and Σx an integer, so the reported mean does not
 * depend on the order the windows came in beyond the last bit of a double.
 */
#include "bl-ppl.h"

#include <math.h>

typedef struct
{
  double sum_nll;
  gint64 n_tokens;
} WindowSum;

struct _BlPplStats
{
  GArray *windows;          /* WindowSum, in the order they were added */
  double sum;               /* Neumaier sum of sum_nll: running total ... */
  double compensation;      /* ... and the low-order bits it lost */
  gint64 n_tokens;
};

G_DEFINE_BOXED_TYPE (BlPplStats, bl_ppl_stats, bl_ppl_stats_copy, bl_ppl_stats_free)

/**
 * bl_ppl_stats_new:
 *
 * Returns: (transfer full): empty statistics
 */
BlPplStats *
bl_ppl_stats_new (void)
{
  BlPplStats *stats = g_new0 (BlPplStats, 1);

  stats->windows = g_array_new (FALSE, FALSE, sizeof (WindowSum));
  return stats;
}

/**
 * bl_ppl_stats_copy:
 * @stats: statistics
 *
 * Returns: (transfer full): an independent copy of @stats
 */
BlPplStats *
bl_ppl_stats_copy (const BlPplStats *stats)
{
  BlPplStats *copy;

  g_return_val_if_fail (stats != NULL, NULL);

  copy = g_new0 (BlPplStats, 1);
  *copy = *stats;
  copy->windows = g_array_copy (stats->windows);
  return copy;
}

/**
 * bl_ppl_stats_free:
 * @stats: (nullable): statistics
 */
void
bl_ppl_stats_free (BlPplStats *stats)
{
  if (stats == NULL)
    return;
  g_array_unref (stats->windows);
  g_free (stats);
}

/* Neumaier's improved Kahan summation (Neumaier 1974, ZAMM 54:39–51): the compensation
 * catches the low-order bits of whichever operand is smaller. */
static void
neumaier_add (double *sum,
              double *compensation,
              double  value)
{
  double t = *sum + value;

  if (fabs (*sum) >= fabs (value))
    *compensation += (*sum - t) + value;
  else
    *compensation += (value - t) + *sum;
  *sum = t;
}

/**
 * bl_ppl_stats_add_window:
 * @stats: statistics
 * @sum_nll: Σ NLL (nats) over the window's scored tokens
 * @n_tokens: number of scored tokens in the window (> 0)
 *
 * Adds one evaluated window.
 */
void
bl_ppl_stats_add_window (BlPplStats *stats,
                         double      sum_nll,
                         gint64      n_tokens)
{
  WindowSum w = { sum_nll, n_tokens };

  g_return_if_fail (stats != NULL);
  g_return_if_fail (n_tokens > 0);

  g_array_append_val (stats->windows, w);
  neumaier_add (&stats->sum, &stats->compensation, sum_nll);
  stats->n_tokens += n_tokens;
}

/**
 * bl_ppl_stats_get_n_windows:
 * @stats: statistics
 *
 * Returns: the number of windows added
 */
guint
bl_ppl_stats_get_n_windows (const BlPplStats *stats)
{
  g_return_val_if_fail (stats != NULL, 0);

  return stats->windows->len;
}

/**
 * bl_ppl_stats_get_n_tokens:
 * @stats: statistics
 *
 * Returns: the number of scored tokens over all windows
 */
gint64
bl_ppl_stats_get_n_tokens (const BlPplStats *stats)
{
  g_return_val_if_fail (stats != NULL, 0);

  return stats->n_tokens;
}

/**
 * bl_ppl_stats_get_sum_nll:
 * @stats: statistics
 *
 * Returns: Σ NLL over all scored tokens, nats (compensated sum)
 */
double
bl_ppl_stats_get_sum_nll (const BlPplStats *stats)
{
  g_return_val_if_fail (stats != NULL, NAN);

  return stats->sum + stats->compensation;
}

/**
 * bl_ppl_stats_get_mean_nll:
 * @stats: statistics
 *
 * Returns: the mean NLL per scored token in nats (Σy / Σx), or NaN before the first window
 */
double
bl_ppl_stats_get_mean_nll (const BlPplStats *stats)
{
  g_return_val_if_fail (stats != NULL, NAN);

  if (stats->n_tokens == 0)
    return NAN;
  return bl_ppl_stats_get_sum_nll (stats) / (double) stats->n_tokens;
}

/**
 * bl_ppl_stats_get_ppl:
 * @stats: statistics
 *
 * Returns: the perplexity exp(mean NLL), or NaN before the first window
 */
double
bl_ppl_stats_get_ppl (const BlPplStats *stats)
{
  return exp (bl_ppl_stats_get_mean_nll (stats));
}

/**
 * bl_ppl_stats_get_std_error:
 * @stats: statistics
 *
 * The standard error of the mean NLL, with windows as the independent units (ratio
 * estimator, Cochran 1977 eq. 6.9; see the top of bl-ppl.c).
 *
 * Returns: the standard error in nats, or NaN with fewer than 2 windows
 */
double
bl_ppl_stats_get_std_error (const BlPplStats *stats)
{
  guint k;
  double r, x_mean;
  double ss = 0.0, ss_c = 0.0;

  g_return_val_if_fail (stats != NULL, NAN);

  k = stats->windows->len;
  if (k < 2)
    return NAN;

  r = bl_ppl_stats_get_mean_nll (stats);
  x_mean = (double) stats->n_tokens / k;
  /* Two passes (r first, then the residuals) rather than Σy² − 2rΣxy + r²Σx², which
   * cancels badly: y_i ≈ r·x_i for every window. */
  for (guint i = 0; i < k; i++)
    {
      const WindowSum *w = &g_array_index (stats->windows, WindowSum, i);
      double d = w->sum_nll - r * (double) w->n_tokens;

      neumaier_add (&ss, &ss_c, d * d);
    }
  return sqrt ((ss + ss_c) / (k - 1) / k) / x_mean;
}

/**
 * bl_ppl_stats_get_nll_ci:
 * @stats: statistics
 * @low: (out) (optional): lower end, nats
 * @high: (out) (optional): upper end, nats
 *
 * The 95% confidence interval of the mean NLL: mean ± t_{0.975, k−1}·se, with k the number
 * of windows and se from bl_ppl_stats_get_std_error(). With fewer than 2 windows there is
 * none, and both ends are NaN.
 *
 * Returns: %TRUE when the interval exists
 */
gboolean
bl_ppl_stats_get_nll_ci (const BlPplStats *stats,
                         double           *low,
                         double           *high)
{
  double se, mean, half;
  guint k;

  if (low != NULL)
    *low = NAN;
  if (high != NULL)
    *high = NAN;
  g_return_val_if_fail (stats != NULL, FALSE);

  k = stats->windows->len;
  if (k < 2)
    return FALSE;

  se = bl_ppl_stats_get_std_error (stats);
  mean = bl_ppl_stats_get_mean_nll (stats);
  half = bl_student_t_quantile (0.975, k - 1) * se;
  if (low != NULL)
    *low = mean - half;
  if (high != NULL)
    *high = mean + half;
  return TRUE;
}

/**
 * bl_ppl_stats_get_ppl_ci:
 * @stats: statistics
 * @low: (out) (optional): lower end
 * @high: (out) (optional): upper end
 *
 * The 95% confidence interval of the perplexity: exp() of the ends of
 * bl_ppl_stats_get_nll_ci(). Both ends are NaN ("n/a") with fewer than 2 windows.
 *
 * Returns: %TRUE when the interval exists
 */
gboolean
bl_ppl_stats_get_ppl_ci (const BlPplStats *stats,
                         double           *low,
                         double           *high)
{
  double lo, hi;

  if (!bl_ppl_stats_get_nll_ci (stats, &lo, &hi))
    {
      if (low != NULL)
        *low = NAN;
      if (high != NULL)
        *high = NAN;
      return FALSE;
    }
  if (low != NULL)
    *low = exp (lo);
  if (high != NULL)
    *high = exp (hi);
  return TRUE;
}

/* Standard normal quantile: the rational start of Abramowitz & Stegun 26.2.23
 * (|error| < 4.5e-4), polished by Newton steps on Φ(z) = erfc(−z/√2)/2, which converge
 * quadratically to full double precision. */
static double
normal_quantile (double p)
{
  double q = p < 0.5 ? p : 1.0 - p;
  double t = sqrt (-2.0 * log (q));
  double z = t - (2.515517 + 0.802853 * t + 0.010328 * t * t)
                 / (1.0 + 1.432788 * t + 0.189269 * t * t + 0.001308 * t * t * t);

  if (p < 0.5)
    z = -z;
  for (int i = 0; i < 4; i++)
    {
      double cdf = 0.5 * erfc (-z / G_SQRT2);
      double pdf = exp (-0.5 * z * z) / sqrt (2.0 * G_PI);

      z -= (cdf - p) / pdf;
    }
  return z;
}

/* Regularized incomplete beta I_x(a, b) by its continued fraction (DLMF 8.17.22),
 * evaluated with the modified Lentz method (Numerical Recipes 3rd ed. §6.4, betacf). The
 * fraction converges fast for x < (a+1)/(a+b+2); beyond it, I_x(a,b) = 1 − I_{1−x}(b,a). */
static double
incomplete_beta (double a,
                 double b,
                 double x)
{
  const double tiny = 1e-300;
  double front, c, d, f;

  if (x <= 0.0)
    return 0.0;
  if (x >= 1.0)
    return 1.0;
  if (x > (a + 1.0) / (a + b + 2.0))
    return 1.0 - incomplete_beta (b, a, 1.0 - x);

  front = exp (lgamma (a + b) - lgamma (a) - lgamma (b) + a * log (x) + b * log1p (-x)) / a;
  c = 1.0;
  d = 1.0 - (a + b) * x / (a + 1.0);
  if (fabs (d) < tiny)
    d = tiny;
  d = 1.0 / d;
  f = d;
  for (int m = 1; m <= 1000; m++)
    {
      for (int half = 0; half < 2; half++)
        {
          double num = half == 0
                       ? m * (b - m) * x / ((a + 2.0 * m - 1.0) * (a + 2.0 * m))
                       : -(a + m) * (a + b + m) * x / ((a + 2.0 * m) * (a + 2.0 * m + 1.0));
          double delta;

          d = 1.0 + num * d;
          if (fabs (d) < tiny)
            d = tiny;
          c = 1.0 + num / c;
          if (fabs (c) < tiny)
            c = tiny;
          d = 1.0 / d;
          delta = c * d;
          f *= delta;
          if (half == 1 && fabs (delta - 1.0) < 1e-16)
            return front * f;
        }
    }
  return front * f;
}

/* Student's t CDF for t ≥ 0: P(T ≤ t) = 1 − I_{ν/(ν+t²)}(ν/2, 1/2) / 2 (A&S 26.7.1 with
 * 26.5.27). */
static double
student_t_cdf_upper (double t,
                     double df)
{
  return 1.0 - 0.5 * incomplete_beta (0.5 * df, 0.5, df / (df + t * t));
}

static double
student_t_pdf (double t,
               double df)
{
  return exp (lgamma (0.5 * (df + 1.0)) - lgamma (0.5 * df) - 0.5 * log (df * G_PI)
              - 0.5 * (df + 1.0) * log1p (t * t / df));
}

/* Cornish–Fisher expansion of the t quantile in powers of 1/ν (A&S 26.7.5). Its first
 * omitted term is O(ν⁻⁵): below 1e-13 for ν > 1000, where it replaces the exact inversion
 * (whose lgamma differences lose digits as ν grows). */
static double
student_t_quantile_asymptotic (double z,
                               double df)
{
  double z2 = z * z;
  double g1 = (z2 + 1.0) * z / 4.0;
  double g2 = ((5.0 * z2 + 16.0) * z2 + 3.0) * z / 96.0;
  double g3 = (((3.0 * z2 + 19.0) * z2 + 17.0) * z2 - 15.0) * z / 384.0;
  double g4 = ((((79.0 * z2 + 776.0) * z2 + 1482.0) * z2 - 1920.0) * z2 - 945.0) * z / 92160.0;

  return z + g1 / df + g2 / (df * df) + g3 / (df * df * df) + g4 / (df * df * df * df);
}

/**
 * bl_student_t_quantile:
 * @p: probability, 0 < @p < 1
 * @df: degrees of freedom, > 0
 *
 * The quantile t_{p, df} of Student's t distribution: P(T ≤ t) = @p. Closed forms for
 * @df = 1 and 2; Newton's method with a bisection guard on the exact CDF (incomplete beta)
 * for @df ≤ 1000; the Cornish–Fisher expansion (A&S 26.7.5) above. Accurate to about 1e-12
 * relative (t_{0.975, 1} = 12.7062047362, t_{0.975, 10} = 2.2281388520, t_{0.975, ∞} =
 * 1.9599639845).
 *
 * Returns: the quantile, or NaN for arguments out of range
 */
double
bl_student_t_quantile (double p,
                       double df)
{
  double z, t, lo, hi;

  if (!(p > 0.0 && p < 1.0) || !(df > 0.0))
    return NAN;
  if (p < 0.5)
    return -bl_student_t_quantile (1.0 - p, df);
  if (p == 0.5)
    return 0.0;
  if (df == 1.0)
    return tan (G_PI * (p - 0.5));
  if (df == 2.0)
    return (2.0 * p - 1.0) / sqrt (2.0 * p * (1.0 - p));

  z = normal_quantile (p);
  if (df > 1000.0)
    return student_t_quantile_asymptotic (z, df);

  /* Bracket the root in [lo, hi] (the CDF rises with t), then Newton steps that fall
   * outside the bracket are replaced by bisection. */
  lo = 0.0;
  hi = MAX (1.0, student_t_quantile_asymptotic (z, df));
  while (student_t_cdf_upper (hi, df) < p)
    {
      lo = hi;
      hi *= 2.0;
    }
  t = 0.5 * (lo + hi);
  for (int i = 0; i < 200; i++)
    {
      double f = student_t_cdf_upper (t, df) - p;
      double next;

      if (f < 0.0)
        lo = t;
      else
        hi = t;
      next = t - f / student_t_pdf (t, df);
      if (!(next > lo && next < hi))
        next = 0.5 * (lo + hi);
      if (fabs (next - t) <= 1e-15 * fabs (t) || hi - lo <= 1e-15 * hi)
        return next;
      t = next;
    }
  return t;
}
