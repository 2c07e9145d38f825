/* test-scaling.c: the LM fitter, the scaling curves, Sun et al.'s law and the INT/FP map
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * The Sun et al. numbers are those of methods.md §3 (the paper's D_crit of 1730T, 27T and 0.4T
 * and the digest's recomputed losses and layouts); the crossover κ are methods.md §2's.
 */
#include <math.h>
#include <string.h>

#include "bl-error.h"
#include "bl-model.h"
#include "bl-ppl.h"
#include "bl-scaling.h"

/* A straight line: LM lands on ordinary least squares, whose covariance is known in closed
 * form: Var(slope) = s²/Σ(u − ū)². */
static void
test_line_matches_ols (void)
{
  double bits[6], q[6];
  BlFitResult fit;
  g_autoptr (GError) error = NULL;
  double su = 0, suu = 0, u[6], s2, var_slope, hw, y;

  for (int i = 0; i < 6; i++)
    {
      bits[i] = pow (10.0, 6 + 0.5 * i);
      q[i] = 3.0 - 0.4 * log10 (bits[i]) + (i % 2 ? 0.01 : -0.01);
    }
  g_assert_true (bl_scaling_fit (BL_SCALING_LOG_LINEAR, bits, q, 6, &fit, &error));
  g_assert_no_error (error);
  for (int i = 0; i < 6; i++)
    {
      u[i] = log10 (bits[i]) - fit.x_center;
      su += u[i];
    }
  for (int i = 0; i < 6; i++)
    suu += (u[i] - su / 6) * (u[i] - su / 6);
  g_assert_cmpfloat_with_epsilon (fit.params[1], -0.4 + 0.0, 0.02);
  s2 = fit.rss / 4;
  var_slope = s2 / suu;
  g_assert_cmpfloat_with_epsilon (fit.covariance[3], var_slope, 1e-9 * var_slope + 1e-15);
  g_assert_cmpuint (fit.dof, ==, 4);
  g_assert_true (fit.converged);
  /* at the centre the band is t·s/√n */
  y = bl_scaling_predict (BL_SCALING_LOG_LINEAR, &fit, pow (10.0, fit.x_center), 0.95, &hw);
  g_assert_cmpfloat_with_epsilon (hw, bl_student_t_quantile (0.975, 4) * sqrt (s2 / 6), 1e-9);
  g_assert_cmpfloat_with_epsilon (y, fit.params[0], 1e-12);
}

/* A power law with a floor and a logistic, recovered from noiseless data. */
static void
test_nonlinear_recovery (void)
{
  double bits[12], q[12], ql[12];
  BlFitResult fit;
  g_autoptr (GError) error = NULL;
  double c = 0;

  for (int i = 0; i < 12; i++)
    {
      bits[i] = pow (10.0, 6 + 0.3 * i);
      c += log10 (bits[i]) / 12;
    }
  for (int i = 0; i < 12; i++)
    {
      double u = log10 (bits[i]) - c;

      q[i] = 0.05 + 0.8 * pow (10.0, -1.3 * u);
      ql[i] = 0.2 + 0.6 / (1 + exp (-2.5 * (u - 0.3)));
    }
  g_assert_true (bl_scaling_fit (BL_SCALING_POWER_LAW, bits, q, 12, &fit, &error));
  g_assert_cmpfloat_with_epsilon (fit.params[0], 0.05, 1e-6);
  g_assert_cmpfloat_with_epsilon (fit.params[1], 0.8, 1e-6);
  g_assert_cmpfloat_with_epsilon (fit.params[2], 1.3, 1e-6);
  g_assert_cmpfloat (fit.r2, >, 1 - 1e-12);
  g_assert_true (bl_scaling_fit (BL_SCALING_LOGISTIC, bits, ql, 12, &fit, &error));
  g_assert_cmpfloat_with_epsilon (fit.params[0], 0.2, 1e-5);
  g_assert_cmpfloat_with_epsilon (fit.params[1], 0.6, 1e-5);
  g_assert_cmpfloat_with_epsilon (fit.params[2], 0.3, 1e-5);
  g_assert_cmpfloat_with_epsilon (fit.params[3], 2.5, 1e-4);
}

/* two lines cross where their difference changes sign */
static void
test_crossover (void)
{
  double bits[4] = { 1e6, 1e7, 1e8, 1e9 }, qa[4], qb[4], x;
  BlFitResult a, b;

  for (int i = 0; i < 4; i++)
    {
      qa[i] = 10 - log10 (bits[i]);          /* steep */
      qb[i] = 6.5 - 0.5 * log10 (bits[i]);   /* shallow; equal at 10^7 */
    }
  g_assert_true (bl_scaling_fit (BL_SCALING_LOG_LINEAR, bits, qa, 4, &a, NULL));
  g_assert_true (bl_scaling_fit (BL_SCALING_LOG_LINEAR, bits, qb, 4, &b, NULL));
  g_assert_true (bl_scaling_crossover (BL_SCALING_LOG_LINEAR, &a, &b, 1e5, 1e10, &x));
  g_assert_cmpfloat_with_epsilon (log10 (x), 7.0, 1e-9);
  g_assert_false (bl_scaling_crossover (BL_SCALING_LOG_LINEAR, &a, &b, 1e8, 1e10, &x));
}

/* methods.md §3 "Numbers to check" */
static void
test_sun_numbers (void)
{
  static const struct { int e, m; double dcrit_t, l1, l2; } rows[] = {
    { 8, 7, 1730, 2.5626, 3.2640 },
    { 4, 3, 27.3, 2.5631, 3.2642 },
    { 5, 2, 19.4, 2.5633, 3.2642 },
    { 2, 1, 0.393, 2.5979, 3.2772 },
    { 1, 2, 0.349, 2.6024, 3.2789 },
    { 3, 0, 0.0479, 2.8717, 3.3800 },
  };
  static const char *const layouts[] = { "E1M1", "E2M1", "E2M2", "E3M2", "E3M3", "E4M3", "E4M4",
                                         "E5M4", "E5M5", "E6M5", "E6M6", "E7M6", "E7M7", "E8M7" };
  BlSunConstants c;

  bl_sun_constants_init (&c);
  for (guint i = 0; i < G_N_ELEMENTS (rows); i++)
    {
      double dcrit = bl_sun_critical_data (&c, 1e9, rows[i].e, rows[i].m, 128) / 1e12;

      /* three significant digits, as the table gives them */
      g_assert_cmpfloat (fabs (dcrit - rows[i].dcrit_t) / rows[i].dcrit_t, <, 0.5e-2);
      g_assert_cmpfloat_with_epsilon (bl_sun_loss (&c, 1e9, 1e11, rows[i].e, rows[i].m, 128), rows[i].l1, 5e-5);
      g_assert_cmpfloat_with_epsilon (bl_sun_loss (&c, 1e8, 1e10, rows[i].e, rows[i].m, 32), rows[i].l2, 5e-5);
    }
  /* the paper's own statements: 1730T, 27T, 0.4T */
  g_assert_cmpfloat (fabs (bl_sun_critical_data (&c, 1e9, 8, 7, 128) / 1e12 - 1730) / 1730, <, 0.01);
  g_assert_cmpfloat (fabs (bl_sun_critical_data (&c, 1e9, 4, 3, 128) / 1e12 - 27), <, 0.5);
  g_assert_cmpfloat (fabs (bl_sun_critical_data (&c, 1e9, 2, 1, 128) / 1e12 - 0.4), <, 0.01);
  for (int p = 3; p <= 16; p++)
    {
      int e, m;
      g_autofree char *s = NULL;

      bl_sun_optimal_layout (&c, p, &e, &m);
      s = g_strdup_printf ("E%dM%d", e, m);
      g_assert_cmpstr (s, ==, layouts[p - 3]);
    }
  /* past D_crit the loss grows with data */
  {
    double dc = bl_sun_critical_data (&c, 1e9, 2, 1, 128);

    g_assert_cmpfloat (bl_sun_loss (&c, 1e9, 2 * dc, 2, 1, 128), >, bl_sun_loss (&c, 1e9, dc, 2, 1, 128));
    g_assert_cmpfloat (bl_sun_loss (&c, 1e9, 0.5 * dc, 2, 1, 128), >, bl_sun_loss (&c, 1e9, dc, 2, 1, 128));
  }
}

/* data drawn from the law with the paper's constants; a fit started 3% off finds them again */
static void
test_sun_refit (void)
{
  const int n = 60;
  double N[60], D[60], E[60], M[60], B[60], L[60];
  BlSunConstants truth, c;
  BlFitResult fit;
  g_autoptr (GError) error = NULL;
  g_autoptr (GRand) rand = g_rand_new_with_seed (9);

  bl_sun_constants_init (&truth);
  for (int i = 0; i < n; i++)
    {
      static const int layouts[][2] = { { 8, 7 }, { 4, 3 }, { 5, 2 }, { 2, 1 }, { 1, 2 }, { 3, 0 }, { 3, 2 } };

      N[i] = pow (10.0, g_rand_double_range (rand, 7.5, 9.3));
      D[i] = pow (10.0, g_rand_double_range (rand, 10, 11));
      E[i] = layouts[i % 7][0];
      M[i] = layouts[i % 7][1];
      B[i] = (i % 3 == 0) ? 32 : (i % 3 == 1) ? 128 : 512;
      L[i] = bl_sun_loss (&truth, N[i], D[i], E[i], M[i], B[i]);
    }
  c = truth;
  c.n *= 1.03;
  c.alpha *= 0.97;
  c.d *= 1.03;
  c.beta *= 1.01;
  c.epsilon *= 0.98;
  c.gamma *= 1.03;
  c.delta *= 0.97;
  c.nu *= 1.03;
  g_assert_true (bl_sun_fit (N, D, E, M, B, L, n, &c, &fit, &error));
  g_assert_no_error (error);
  g_assert_cmpfloat (fit.rss, <, 1e-16);
  g_assert_cmpfloat_with_epsilon (c.alpha, truth.alpha, 1e-4);
  g_assert_cmpfloat_with_epsilon (c.beta, truth.beta, 1e-4);
  g_assert_cmpfloat_with_epsilon (c.delta / c.nu, truth.delta / truth.nu, 1e-3);
}

/* The theoretical side reproduces the crossover κ of methods.md §2; on Gaussian weights
 * (κ ≈ 2.3–2.6 at block 32) MXINT8 beats MXFP8 by both theory and measurement. */
static void
test_crossover_entry (void)
{
  const gint64 rows = 128, cols = 256;
  g_autofree float *w = g_new (float, rows * cols);
  g_autoptr (GRand) rand = g_rand_new_with_seed (4);
  static const double want[BL_CROSSOVER_N_PAIRS] = { 7.55, 1.96, 2.04, 2.39 };
  g_autoptr (GError) error = NULL;

  for (gint64 i = 0; i < rows * cols; i++)
    {
      double u1 = g_rand_double_range (rand, 1e-12, 1.0), u2 = g_rand_double (rand);

      w[i] = (float) (0.02 * sqrt (-2 * log (u1)) * cos (2 * G_PI * u2));
    }
  for (guint p = 0; p < BL_CROSSOVER_N_PAIRS; p++)
    {
      BlCrossoverEntry e;

      g_assert_true (bl_crossover_entry_compute ((BlCrossoverPair) p, "w", w, rows, cols, 1, &e, &error));
      g_assert_no_error (error);
      g_assert_cmpfloat_with_epsilon (e.crossover, want[p], 0.01);
      g_assert_cmpfloat (e.kappa_q3, >=, e.kappa_mean * 0.9);
      g_assert_cmpfloat (e.kappa_mean, >, 1.5);
      g_assert_cmpfloat (e.kappa_mean, <, 4.0);
      if (p == BL_CROSSOVER_MX8)
        {
          g_assert_cmpfloat (e.qsnr_int_theory, >, e.qsnr_fp_theory);
          g_assert_cmpfloat (e.qsnr_int, >, e.qsnr_fp);
        }
      g_free (e.layer);
    }
}

static void
test_crossover_map (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (BlModel) model = bl_model_load (g_test_get_filename (G_TEST_DIST, "fixtures", "tiny-llama",
                                                                   "llama-tied-bf16", NULL), NULL, &error);
  g_autoptr (GPtrArray) map = NULL;

  g_assert_no_error (error);
  map = bl_crossover_map (model, 1, NULL, &error);
  g_assert_no_error (error);
  /* 14 projections and the tied lm_head, 4 pairs each */
  g_assert_cmpuint (map->len, ==, 15 * BL_CROSSOVER_N_PAIRS);
  g_assert_cmpstr (((BlCrossoverEntry *) map->pdata[map->len - 1])->layer, ==, "lm_head.weight");
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/bitlens/scaling/fit/line-ols", test_line_matches_ols);
  g_test_add_func ("/bitlens/scaling/fit/nonlinear", test_nonlinear_recovery);
  g_test_add_func ("/bitlens/scaling/crossover-bits", test_crossover);
  g_test_add_func ("/bitlens/scaling/sun/numbers", test_sun_numbers);
  g_test_add_func ("/bitlens/scaling/sun/refit", test_sun_refit);
  g_test_add_func ("/bitlens/scaling/int-fp/entry", test_crossover_entry);
  g_test_add_func ("/bitlens/scaling/int-fp/map", test_crossover_map);
  return g_test_run ();
}
