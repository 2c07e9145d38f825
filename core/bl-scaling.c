/* bl-scaling.c: least-squares fits with confidence bands, the scaling laws, INT/FP crossover
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "bl-scaling.h"

#include <math.h>
#include <string.h>

#include "bl-error.h"
#include "bl-format.h"
#include "bl-ppl.h"

/* ------------------------------------------------------------------------------------------ */
/* linear algebra for a handful of parameters */

/* Solves A·x = b for a p×p system by Gaussian elimination with partial pivoting; A and b are
 * overwritten. Returns FALSE for a singular matrix. */
static gboolean
solve_small (double *a,
             double *b,
             guint   p)
{
  for (guint col = 0; col < p; col++)
    {
      guint piv = col;

      for (guint r = col + 1; r < p; r++)
        if (fabs (a[r * p + col]) > fabs (a[piv * p + col]))
          piv = r;
      if (a[piv * p + col] == 0.0 || !isfinite (a[piv * p + col]))
        return FALSE;
      if (piv != col)
        {
          for (guint k = 0; k < p; k++)
            {
              double t = a[col * p + k];

              a[col * p + k] = a[piv * p + k];
              a[piv * p + k] = t;
            }
          {
            double t = b[col];

            b[col] = b[piv];
            b[piv] = t;
          }
        }
      for (guint r = col + 1; r < p; r++)
        {
          double f = a[r * p + col] / a[col * p + col];

          for (guint k = col; k < p; k++)
            a[r * p + k] -= f * a[col * p + k];
          b[r] -= f * b[col];
        }
    }
  for (guint col = p; col-- > 0;)
    {
      double s = b[col];

      for (guint k = col + 1; k < p; k++)
        s -= a[col * p + k] * b[k];
      b[col] = s / a[col * p + col];
    }
  return TRUE;
}

static gboolean
invert_small (const double *a,
              double       *inv,
              guint         p)
{
  for (guint c = 0; c < p; c++)
    {
      double m[BL_FIT_MAX_PARAMS * BL_FIT_MAX_PARAMS], e[BL_FIT_MAX_PARAMS] = { 0 };

      memcpy (m, a, (gsize) p * p * sizeof (double));
      e[c] = 1.0;
      if (!solve_small (m, e, p))
        return FALSE;
      for (guint r = 0; r < p; r++)
        inv[r * p + c] = e[r];
    }
  return TRUE;
}

/* ------------------------------------------------------------------------------------------ */
/* Levenberg–Marquardt */

typedef struct
{
  BlFitFunc func;
  gpointer user_data;
  const double *y;
  const double *w;
  guint n;
  guint p;
} Problem;

/* RSS at @params, and when @jtj is not NULL the normal equations JᵀWJ and JᵀW·r */
static double
evaluate (const Problem *pr,
          const double  *params,
          double        *jtj,
          double        *jtr)
{
  double rss = 0;

  if (jtj != NULL)
    {
      memset (jtj, 0, (gsize) pr->p * pr->p * sizeof (double));
      memset (jtr, 0, pr->p * sizeof (double));
    }
  for (guint i = 0; i < pr->n; i++)
    {
      double f, g[BL_FIT_MAX_PARAMS], w = pr->w != NULL ? pr->w[i] : 1.0, r;

      pr->func (i, params, &f, g, pr->user_data);
      r = pr->y[i] - f;
      rss += w * r * r;
      if (jtj == NULL)
        continue;
      for (guint a = 0; a < pr->p; a++)
        {
          jtr[a] += w * g[a] * r;
          for (guint b = 0; b < pr->p; b++)
            jtj[a * pr->p + b] += w * g[a] * g[b];
        }
    }
  return rss;
}

/**
 * bl_lm_fit:
 * @func: the model
 * @user_data: its data
 * @y: (array length=n_points): the observations
 * @weights: (array length=n_points) (nullable): weights 1/σ², or %NULL for equal weights
 * @n_points: observations
 * @n_params: parameters (1–%BL_FIT_MAX_PARAMS)
 * @init: (array length=n_params): the starting point
 * @out: (out caller-allocates): the fit
 * @error: return location for an error
 *
 * Minimises Σ w_i (y_i − f_i(θ))² by Levenberg–Marquardt with Marquardt's scaling: each step
 * solves (JᵀWJ + λ·diag(JᵀWJ))·δ = JᵀW·r, accepting it and dividing λ by 10 when the RSS
 * drops, else multiplying λ by 10 (Marquardt 1963; Press et al., Numerical Recipes §15.5).
 *
 * Returns: %FALSE with @error set when the data cannot determine the parameters or the RSS
 *   is not finite
 */
gboolean
bl_lm_fit (BlFitFunc     func,
           gpointer      user_data,
           const double *y,
           const double *weights,
           guint         n_points,
           guint         n_params,
           const double *init,
           BlFitResult  *out,
           GError      **error)
{
  Problem pr = { func, user_data, y, weights, n_points, n_params };
  double params[BL_FIT_MAX_PARAMS], jtj[BL_FIT_MAX_PARAMS * BL_FIT_MAX_PARAMS], jtr[BL_FIT_MAX_PARAMS];
  double rss, lambda = 1e-3, mean = 0, tss = 0;
  guint it;

  g_return_val_if_fail (func != NULL && y != NULL && out != NULL, FALSE);
  g_return_val_if_fail (n_params >= 1 && n_params <= BL_FIT_MAX_PARAMS, FALSE);

  if (n_points < n_params)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT,
                   "fit: %u points cannot determine %u parameters", n_points, n_params);
      return FALSE;
    }
  memset (out, 0, sizeof *out);
  memcpy (params, init, n_params * sizeof (double));
  rss = evaluate (&pr, params, jtj, jtr);
  if (!isfinite (rss))
    {
      g_set_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT, "fit: the model is not finite at the start");
      return FALSE;
    }
  for (it = 0; it < 500 && rss > 0; it++)
    {
      double a[BL_FIT_MAX_PARAMS * BL_FIT_MAX_PARAMS], step[BL_FIT_MAX_PARAMS], trial[BL_FIT_MAX_PARAMS];
      double new_rss;
      gboolean accepted = FALSE;

      while (!accepted && lambda < 1e16)
        {
          memcpy (a, jtj, (gsize) n_params * n_params * sizeof (double));
          memcpy (step, jtr, n_params * sizeof (double));
          for (guint k = 0; k < n_params; k++)
            a[k * n_params + k] += lambda * (jtj[k * n_params + k] > 0 ? jtj[k * n_params + k] : 1.0);
          if (solve_small (a, step, n_params))
            {
              for (guint k = 0; k < n_params; k++)
                trial[k] = params[k] + step[k];
              new_rss = evaluate (&pr, trial, NULL, NULL);
              if (isfinite (new_rss) && new_rss <= rss)
                {
                  accepted = TRUE;
                  break;
                }
            }
          lambda *= 10;
        }
      if (!accepted)
        {
          out->converged = TRUE;     /* no direction lowers the RSS: a (local) minimum */
          break;
        }
      memcpy (params, trial, n_params * sizeof (double));
      lambda = MAX (lambda / 100, 1e-12);
      if (rss - new_rss <= 1e-12 * rss)
        {
          rss = evaluate (&pr, params, jtj, jtr);
          out->converged = TRUE;
          break;
        }
      rss = evaluate (&pr, params, jtj, jtr);
    }
  if (rss == 0)
    out->converged = TRUE;

  out->n_params = n_params;
  memcpy (out->params, params, n_params * sizeof (double));
  out->rss = rss;
  out->n_points = n_points;
  out->dof = n_points - n_params;
  out->iterations = it;
  for (guint i = 0; i < n_points; i++)
    mean += y[i] / n_points;
  for (guint i = 0; i < n_points; i++)
    tss += (weights != NULL ? weights[i] : 1.0) * (y[i] - mean) * (y[i] - mean);
  out->r2 = tss > 0 ? 1.0 - rss / tss : NAN;
  if (out->dof == 0 || !invert_small (jtj, out->covariance, n_params))
    for (guint k = 0; k < n_params * n_params; k++)
      out->covariance[k] = NAN;
  else
    for (guint k = 0; k < n_params * n_params; k++)
      out->covariance[k] *= rss / out->dof;
  return TRUE;
}

/**
 * bl_fit_band_half_width:
 * @fit: a fit with degrees of freedom
 * @grad: (array): ∂f/∂θ at the point of interest
 * @level: the confidence level, e.g. 0.95
 *
 * The half width of the pointwise confidence band of the fitted curve (the delta method):
 * t_{(1+level)/2, dof}·sqrt(gᵀ·C·g).
 *
 * Returns: the half width, NaN without degrees of freedom
 */
double
bl_fit_band_half_width (const BlFitResult *fit,
                        const double      *grad,
                        double             level)
{
  double v = 0;

  if (fit->dof == 0)
    return NAN;
  for (guint a = 0; a < fit->n_params; a++)
    for (guint b = 0; b < fit->n_params; b++)
      v += grad[a] * fit->covariance[a * fit->n_params + b] * grad[b];
  return bl_student_t_quantile (0.5 * (1 + level), fit->dof) * sqrt (MAX (v, 0.0));
}

/* ------------------------------------------------------------------------------------------ */
/* quality against total bits */

static const char *const model_names[] = { "log-linear", "power-law", "logistic" };

gboolean
bl_scaling_model_from_string (const char     *name,
                              BlScalingModel *out)
{
  for (guint i = 0; i < G_N_ELEMENTS (model_names); i++)
    if (g_str_equal (name, model_names[i]))
      {
        *out = (BlScalingModel) i;
        return TRUE;
      }
  return FALSE;
}

const char *
bl_scaling_model_to_string (BlScalingModel model)
{
  g_return_val_if_fail ((guint) model < G_N_ELEMENTS (model_names), NULL);

  return model_names[model];
}

static guint
model_n_params (BlScalingModel model)
{
  return model == BL_SCALING_LOG_LINEAR ? 2 : model == BL_SCALING_POWER_LAW ? 3 : 4;
}

/* value and gradient of @model at u = log10(bits) − x_center */
static double
model_eval (BlScalingModel  model,
            const double   *p,
            double          u,
            double         *grad)
{
  switch (model)
    {
    case BL_SCALING_LOG_LINEAR:
      grad[0] = 1;
      grad[1] = u;
      return p[0] + p[1] * u;
    case BL_SCALING_POWER_LAW:
      {
        double e = pow (10.0, -p[2] * u);

        grad[0] = 1;
        grad[1] = e;
        grad[2] = -p[1] * e * u * G_LN10;
        return p[0] + p[1] * e;
      }
    case BL_SCALING_LOGISTIC:
    default:
      {
        double s = 1.0 / (1.0 + exp (-p[3] * (u - p[2])));

        grad[0] = 1;
        grad[1] = s;
        grad[2] = -p[1] * s * (1 - s) * p[3];
        grad[3] = p[1] * s * (1 - s) * (u - p[2]);
        return p[0] + p[1] * s;
      }
    }
}

typedef struct
{
  BlScalingModel model;
  const double *u;
} ScalingData;

static void
scaling_func (guint         i,
              const double *params,
              double       *out_y,
              double       *out_grad,
              gpointer      user_data)
{
  const ScalingData *d = user_data;

  *out_y = model_eval (d->model, params, d->u[i], out_grad);
}

/**
 * bl_scaling_fit:
 * @model: the curve
 * @total_bits: (array length=n): Σ_layers params × bits/weight of each run, scales included
 * @quality: (array length=n): its quality (KL, Δppl, NLL or accuracy)
 * @n: runs
 * @out: (out caller-allocates): the fit; @out->x_center is the mean of log10(@total_bits)
 * @error: return location for an error
 *
 * Fits one precision's curve (methods.md §4). The start is the least-squares line for the
 * line, and for the others a floor below (or ceiling above) the data with the line's slope.
 *
 * Returns: whether the fit succeeded
 */
gboolean
bl_scaling_fit (BlScalingModel  model,
                const double   *total_bits,
                const double   *quality,
                guint           n,
                BlFitResult    *out,
                GError        **error)
{
  g_autofree double *u = g_new (double, MAX (n, 1));
  double center = 0, su = 0, sy = 0, suu = 0, suy = 0, slope, icept, init[4], qmin = INFINITY, qmax = -INFINITY;
  ScalingData d = { model, u };

  for (guint i = 0; i < n; i++)
    {
      if (!(total_bits[i] > 0) || !isfinite (quality[i]))
        {
          g_set_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT,
                       "scaling fit: point %u has bits %g and quality %g", i, total_bits[i], quality[i]);
          return FALSE;
        }
      center += log10 (total_bits[i]) / n;
    }
  for (guint i = 0; i < n; i++)
    {
      u[i] = log10 (total_bits[i]) - center;
      su += u[i];
      sy += quality[i];
      suu += u[i] * u[i];
      suy += u[i] * quality[i];
      qmin = MIN (qmin, quality[i]);
      qmax = MAX (qmax, quality[i]);
    }
  if (n < model_n_params (model) || suu <= 0)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT,
                   "scaling fit: %u runs at %s model sizes cannot fit a %s curve", n,
                   suu <= 0 ? "equal" : "different", model_names[model]);
      return FALSE;
    }
  slope = (suy - su * sy / n) / (suu - su * su / n);
  icept = sy / n - slope * su / n;
  switch (model)
    {
    case BL_SCALING_LOG_LINEAR:
      init[0] = icept;
      init[1] = slope;
      break;
    case BL_SCALING_POWER_LAW:
      {
        /* falling quality (a loss): a floor under the data; rising (accuracy): a ceiling */
        double range = MAX (qmax - qmin, 1e-12);

        init[0] = slope < 0 ? qmin - 0.1 * range : qmax + 0.1 * range;
        init[1] = icept - init[0];
        init[2] = 1.0;
      }
      break;
    case BL_SCALING_LOGISTIC:
    default:
      init[0] = qmin;
      init[1] = MAX (qmax - qmin, 1e-12);
      init[2] = su / n;
      init[3] = slope >= 0 ? 4.0 : -4.0;
      break;
    }
  if (!bl_lm_fit (scaling_func, &d, quality, NULL, n, model_n_params (model), init, out, error))
    return FALSE;
  out->x_center = center;
  return TRUE;
}

/**
 * bl_scaling_predict:
 * @model: the curve
 * @fit: its fit
 * @total_bits: a model size in bits
 * @level: the band's confidence level (e.g. 0.95)
 * @out_half_width: (out) (optional): the band's half width at @total_bits
 *
 * Returns: the fitted quality at @total_bits
 */
double
bl_scaling_predict (BlScalingModel     model,
                    const BlFitResult *fit,
                    double             total_bits,
                    double             level,
                    double            *out_half_width)
{
  double grad[BL_FIT_MAX_PARAMS];
  double y = model_eval (model, fit->params, log10 (total_bits) - fit->x_center, grad);

  if (out_half_width != NULL)
    *out_half_width = bl_fit_band_half_width (fit, grad, level);
  return y;
}

/**
 * bl_scaling_crossover:
 * @model: the curve both fits use
 * @a: one precision's fit
 * @b: another's
 * @bits_lo: the search interval's lower end
 * @bits_hi: its upper end
 * @out_bits: (out): where the curves cross
 *
 * Finds the model size at which curve @a overtakes curve @b, the first sign change of their
 * difference on a logarithmic grid of 256 points, refined by bisection.
 *
 * Returns: whether the curves cross inside the interval
 */
gboolean
bl_scaling_crossover (BlScalingModel     model,
                      const BlFitResult *a,
                      const BlFitResult *b,
                      double             bits_lo,
                      double             bits_hi,
                      double            *out_bits)
{
  const int n = 256;
  double l0 = log10 (bits_lo), l1 = log10 (bits_hi), prev_x = l0, prev;

  prev = bl_scaling_predict (model, a, bits_lo, 0.95, NULL) - bl_scaling_predict (model, b, bits_lo, 0.95, NULL);
  for (int i = 1; i <= n; i++)
    {
      double x = l0 + (l1 - l0) * i / n;
      double d = bl_scaling_predict (model, a, pow (10.0, x), 0.95, NULL)
                 - bl_scaling_predict (model, b, pow (10.0, x), 0.95, NULL);

      if ((prev < 0) != (d < 0))
        {
          double lo = prev_x, hi = x, dlo = prev;

          for (int k = 0; k < 100; k++)
            {
              double mid = 0.5 * (lo + hi);
              double dm = bl_scaling_predict (model, a, pow (10.0, mid), 0.95, NULL)
                          - bl_scaling_predict (model, b, pow (10.0, mid), 0.95, NULL);

              if ((dm < 0) == (dlo < 0))
                {
                  lo = mid;
                  dlo = dm;
                }
              else
                hi = mid;
            }
          *out_bits = pow (10.0, 0.5 * (lo + hi));
          return TRUE;
        }
      prev = d;
      prev_x = x;
    }
  return FALSE;
}

/* ------------------------------------------------------------------------------------------ */
/* Sun et al. */

/**
 * bl_sun_constants_init:
 * @c: (out caller-allocates): the constants
 *
 * Sets the constants Sun et al. fitted to their 366 runs (Table 2; methods.md §3).
 */
void
bl_sun_constants_init (BlSunConstants *c)
{
  c->n = 69.2343;
  c->alpha = 0.2368;
  c->d = 68973.0621;
  c->beta = 0.5162;
  c->epsilon = 1.9061;
  c->gamma = 11334.5197;
  c->delta = 3.1926;
  c->nu = 2.9543;
}

/**
 * bl_sun_loss:
 * @c: the constants
 * @N: non-embedding parameters
 * @D: training tokens
 * @E: exponent bits
 * @M: mantissa bits
 * @B: the block size a scaling factor covers
 *
 * Returns: the predicted training loss L(N, D, E, M, B)
 */
double
bl_sun_loss (const BlSunConstants *c,
             double                N,
             double                D,
             double                E,
             double                M,
             double                B)
{
  return c->n / pow (N, c->alpha) + c->d / pow (D, c->beta) + c->epsilon
         + pow (D, c->beta) / pow (N, c->alpha) * log2 (B)
           / (c->gamma * pow (E + 0.5, c->delta) * pow (M + 0.5, c->nu));
}

/**
 * bl_sun_critical_data:
 * @c: the constants
 * @N: non-embedding parameters
 * @E: exponent bits
 * @M: mantissa bits
 * @B: the block size
 *
 * The data size at which ∂L/∂D = 0: beyond it more tokens raise the loss in this precision.
 * From −β·d·D^(−β−1) + β·D^(β−1)·log2(B)/(N^α·γ·(E+½)^δ·(M+½)^ν) = 0,
 * D_crit = [d·γ·N^α·(E+½)^δ·(M+½)^ν / log2 B]^(1/(2β)) (methods.md §3).
 *
 * Returns: D_crit in tokens
 */
double
bl_sun_critical_data (const BlSunConstants *c,
                      double                N,
                      double                E,
                      double                M,
                      double                B)
{
  return pow (c->d * c->gamma * pow (N, c->alpha) * pow (E + 0.5, c->delta) * pow (M + 0.5, c->nu)
              / log2 (B), 1.0 / (2.0 * c->beta));
}

/**
 * bl_sun_optimal_layout:
 * @c: the constants
 * @total_bits: P = 1 + E + M, at least 2
 * @out_E: (out): exponent bits
 * @out_M: (out): mantissa bits
 *
 * The split of P − 1 bits that minimises the loss at any N, D, B: the maximum of
 * (E + ½)^δ·(M + ½)^ν over integers E + M = P − 1 (methods.md §3).
 */
void
bl_sun_optimal_layout (const BlSunConstants *c,
                       int                   total_bits,
                       int                  *out_E,
                       int                  *out_M)
{
  double best = -INFINITY;

  g_return_if_fail (total_bits >= 2);

  for (int e = 0; e <= total_bits - 1; e++)
    {
      int m = total_bits - 1 - e;
      double v = c->delta * log (e + 0.5) + c->nu * log (m + 0.5);

      if (v > best)
        {
          best = v;
          *out_E = e;
          *out_M = m;
        }
    }
}

typedef struct
{
  const double *N, *D, *E, *M, *B;
} SunData;

static void
sun_func (guint         i,
          const double *p,
          double       *out_y,
          double       *g,
          gpointer      user_data)
{
  const SunData *s = user_data;
  BlSunConstants c = { p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7] };
  double N = s->N[i], D = s->D[i], lnN = log (N), lnD = log (D);
  double t1 = c.n * pow (N, -c.alpha), t2 = c.d * pow (D, -c.beta);
  double le = log (s->E[i] + 0.5), lm = log (s->M[i] + 0.5);
  double t4 = pow (D, c.beta) * pow (N, -c.alpha) * log2 (s->B[i])
              / (c.gamma * exp (c.delta * le + c.nu * lm));

  *out_y = t1 + t2 + c.epsilon + t4;
  g[0] = t1 / c.n;
  g[1] = -lnN * t1 - lnN * t4;
  g[2] = t2 / c.d;
  g[3] = -lnD * t2 + lnD * t4;
  g[4] = 1;
  g[5] = -t4 / c.gamma;
  g[6] = -le * t4;
  g[7] = -lm * t4;
}

/**
 * bl_sun_fit:
 * @N: (array length=n): non-embedding parameters of each run
 * @D: (array length=n): its training tokens
 * @E: (array length=n): exponent bits
 * @M: (array length=n): mantissa bits
 * @B: (array length=n): block sizes
 * @loss: (array length=n): final losses
 * @n: runs (at least 8)
 * @inout: the starting constants (bl_sun_constants_init() for the paper's); replaced by the fit
 * @out: (out caller-allocates) (optional): the fit, with the covariance of the constants
 * @error: return location for an error
 *
 * Re-fits the eight constants of the law to a user's runs by Levenberg–Marquardt.
 *
 * Returns: whether the fit succeeded
 */
gboolean
bl_sun_fit (const double   *N,
            const double   *D,
            const double   *E,
            const double   *M,
            const double   *B,
            const double   *loss,
            guint           n,
            BlSunConstants *inout,
            BlFitResult    *out,
            GError        **error)
{
  SunData d = { N, D, E, M, B };
  double init[8] = { inout->n, inout->alpha, inout->d, inout->beta, inout->epsilon, inout->gamma,
                     inout->delta, inout->nu };
  BlFitResult fit;

  if (!bl_lm_fit (sun_func, &d, loss, NULL, n, 8, init, &fit, error))
    return FALSE;
  *inout = (BlSunConstants) { fit.params[0], fit.params[1], fit.params[2], fit.params[3],
                              fit.params[4], fit.params[5], fit.params[6], fit.params[7] };
  if (out != NULL)
    *out = fit;
  return TRUE;
}

/* ------------------------------------------------------------------------------------------ */
/* INT/FP crossover map */

typedef struct
{
  const char *name;
  const char *int_spec;
  const char *fp_spec;
  int int_bits;
  int ebits;
  int mbits;
  BlTheoryScaling scaling;
  int block;
} PairInfo;

static const PairInfo pairs[BL_CROSSOVER_N_PAIRS] = {
  { "MXINT8/MXFP8", "mxint8", "mxfp8-e4m3", 8, 4, 3, BL_THEORY_MX, 32 },
  { "MXINT6/MXFP6", "mxint6", "mxfp6-e2m3", 6, 2, 3, BL_THEORY_MX, 32 },
  { "MXINT4/MXFP4", "mxint4", "mxfp4", 4, 2, 1, BL_THEORY_MX, 32 },
  { "NVINT4/NVFP4", "nvint4", "nvfp4", 4, 2, 1, BL_THEORY_NV, 16 },
};

const char *
bl_crossover_pair_name (BlCrossoverPair pair)
{
  g_return_val_if_fail ((guint) pair < BL_CROSSOVER_N_PAIRS, NULL);

  return pairs[pair].name;
}

void
bl_crossover_entry_free (BlCrossoverEntry *entry)
{
  if (entry == NULL)
    return;
  g_free (entry->layer);
  g_free (entry);
}

static gboolean
measured_qsnr (const char   *spec_str,
               const float  *w,
               gint64        rows,
               gint64        cols,
               int           n_threads,
               double       *out,
               GError      **error)
{
  BlFormatSpec spec;
  g_autofree float *q = g_new (float, rows * cols);
  BlErrorStats st;

  if (!bl_format_spec_parse (spec_str, &spec, error)
      || !bl_format_fake_quant (&spec, w, q, rows, cols, n_threads, error))
    return FALSE;
  bl_error_stats_init (&st);
  bl_error_stats_add (&st, w, q, rows * cols);
  *out = bl_error_stats_qsnr_db (&st);
  return TRUE;
}

/**
 * bl_crossover_entry_compute:
 * @pair: the INT/FP pair
 * @layer: the layer's name
 * @w: (array): its weight, [@rows, @cols] row-major
 * @rows: rows
 * @cols: columns
 * @n_threads: threads for the fake quantization
 * @out: (out caller-allocates): the entry; free @out->layer with g_free()
 * @error: return location for an error
 *
 * The crest factor of every block of the pair's size along the rows, its mean and 75th
 * percentile, the theoretical QSNR of both formats at that percentile and the crossover κ
 * (bl_theory_*), and the measured QSNR of both formats on this weight.
 *
 * Returns: whether the entry was computed
 */
gboolean
bl_crossover_entry_compute (BlCrossoverPair   pair,
                            const char       *layer,
                            const float      *w,
                            gint64            rows,
                            gint64            cols,
                            int               n_threads,
                            BlCrossoverEntry *out,
                            GError          **error)
{
  const PairInfo *pi = &pairs[pair];

  g_return_val_if_fail ((guint) pair < BL_CROSSOVER_N_PAIRS, FALSE);

  memset (out, 0, sizeof *out);
  out->pair = pair;
  out->int_spec = pi->int_spec;
  out->fp_spec = pi->fp_spec;
  bl_metrics_block_crest (w, rows, cols, pi->block, &out->kappa_mean, &out->kappa_q3);
  out->crossover = bl_theory_crossover (pi->int_bits, pi->ebits, pi->mbits, pi->scaling);
  out->qsnr_int_theory = bl_theory_qsnr_int (out->kappa_q3, pi->int_bits, pi->scaling);
  out->qsnr_fp_theory = bl_theory_qsnr_fp (out->kappa_q3, pi->ebits, pi->mbits, pi->scaling);
  if (!measured_qsnr (pi->int_spec, w, rows, cols, n_threads, &out->qsnr_int, error)
      || !measured_qsnr (pi->fp_spec, w, rows, cols, n_threads, &out->qsnr_fp, error))
    return FALSE;
  out->layer = g_strdup (layer);
  return TRUE;
}

/**
 * bl_crossover_map:
 * @model: a model
 * @n_threads: threads for the fake quantization
 * @cancellable: (nullable): a cancellable
 * @error: return location for an error
 *
 * bl_crossover_entry_compute() for every linear weight and every pair, layer by layer.
 *
 * Returns: (transfer full) (element-type BlCrossoverEntry) (nullable): the entries
 */
GPtrArray *
bl_crossover_map (BlModel       *model,
                  int            n_threads,
                  GCancellable  *cancellable,
                  GError       **error)
{
  g_autoptr(GPtrArray) out = g_ptr_array_new_with_free_func ((GDestroyNotify) bl_crossover_entry_free);
  GListModel *list = G_LIST_MODEL (model);
  const BlModelConfig *cfg = bl_model_get_config (model);

  /* the tied embedding item is also the output projection's weight: it goes last, as the
   * lm_head does in an untied model */
  for (guint i = 0; i <= g_list_model_get_n_items (list); i++)
    {
      guint idx = i < g_list_model_get_n_items (list) ? i : 0;
      g_autoptr(BlLayer) layer = g_list_model_get_item (list, idx);
      gboolean tied_head = cfg->tie_word_embeddings && bl_layer_get_kind (layer) == BL_LAYER_EMBEDDING;
      const BlTensor *t = bl_layer_get_tensor (layer);
      g_autofree float *w = NULL;
      const char *name = tied_head ? "lm_head.weight" : bl_layer_get_name (layer);

      if (i < g_list_model_get_n_items (list) ? !bl_layer_kind_is_linear (bl_layer_get_kind (layer))
                                              : !tied_head)
        continue;
      if (g_cancellable_set_error_if_cancelled (cancellable, error))
        return NULL;
      w = g_new (float, t->n_elements);
      bl_tensor_to_f32 (t, w);
      for (guint p = 0; p < BL_CROSSOVER_N_PAIRS; p++)
        {
          BlCrossoverEntry *e = g_new0 (BlCrossoverEntry, 1);

          if (!bl_crossover_entry_compute ((BlCrossoverPair) p, name, w, t->shape[0], t->shape[1],
                                           n_threads, e, error))
            {
              g_free (e);
              return NULL;
            }
          g_ptr_array_add (out, e);
        }
    }
  return g_steal_pointer (&out);
}
