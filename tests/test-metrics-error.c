/* test-metrics-error.c: error metrics and the INT-vs-FP crest-factor theory
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include <math.h>

#include "bl-format.h"
#include "bl-metrics-error.h"

static void
test_basic (void)
{
  static const float x[4] = { 1, -2, 3, 0 };
  static const float q[4] = { 1, -2, 2.5f, 0.5f };
  BlErrorStats s, a, b;

  bl_error_stats_init (&s);
  bl_error_stats_add (&s, x, q, 4);
  g_assert_cmpint (s.n, ==, 4);
  g_assert_cmpfloat_with_epsilon (bl_error_stats_mse (&s), 0.125, 1e-12);
  g_assert_cmpfloat_with_epsilon (bl_error_stats_qsnr_db (&s), -10 * log10 (0.5 / 14), 1e-9);
  g_assert_cmpfloat_with_epsilon (s.max_abs_err, 0.5, 1e-12);
  g_assert_cmpfloat_with_epsilon (bl_error_stats_cosine (&s), 12.5 / sqrt (14 * 11.5), 1e-12);

  /* totals merge: two halves equal the whole */
  bl_error_stats_init (&a);
  bl_error_stats_init (&b);
  bl_error_stats_add (&a, x, q, 2);
  bl_error_stats_add (&b, x + 2, q + 2, 2);
  bl_error_stats_merge (&a, &b);
  g_assert_cmpint (a.n, ==, s.n);
  g_assert_cmpfloat (a.sum_sq_err, ==, s.sum_sq_err);
  g_assert_cmpfloat (a.max_abs_err, ==, s.max_abs_err);

  /* exact reconstruction */
  bl_error_stats_init (&a);
  bl_error_stats_add (&a, x, x, 4);
  g_assert_true (isinf (bl_error_stats_qsnr_db (&a)));
  g_assert_cmpfloat_with_epsilon (bl_error_stats_cosine (&a), 1.0, 1e-12);
}

static void
test_crest_kurtosis (void)
{
  static const float flat[4] = { 1, -1, 1, -1 };
  static const float spike[4] = { 4, 0, 0, 0 };
  static const float rows[2 * 4] = { 1, -1, 4, 0, 2, 2, 0, 0 };
  const gint64 n = 1000000;
  g_autofree float *g = g_new (float, n);
  g_autoptr (GRand) rand = g_rand_new_with_seed (7);
  double mean, q3;

  g_assert_cmpfloat_with_epsilon (bl_metrics_crest_factor (flat, 4), 1.0, 1e-12);
  g_assert_cmpfloat_with_epsilon (bl_metrics_crest_factor (spike, 4), 2.0, 1e-12);
  g_assert_cmpfloat_with_epsilon (bl_metrics_kurtosis (flat, 4), 1.0, 1e-12);
  /* deviations 3, −1, −1, −1: m2 = 3, m4 = 21 */
  g_assert_cmpfloat_with_epsilon (bl_metrics_kurtosis (spike, 4), 21.0 / 9.0, 1e-12);
  /* blocks of 2: κ = 1, 2 (|4|/√8), 1, and an all-zero block that is skipped */
  bl_metrics_block_crest (rows, 2, 4, 2, &mean, &q3);
  g_assert_cmpfloat_with_epsilon (mean, (1.0 + sqrt (2.0) + 1.0) / 3.0, 1e-12);
  g_assert_cmpfloat_with_epsilon (q3, 1.0 + 0.5 * (sqrt (2.0) - 1.0), 1e-12);

  for (gint64 i = 0; i < n; i++)
    {
      double u1 = g_rand_double_range (rand, 1e-12, 1.0), u2 = g_rand_double (rand);

      g[i] = (float) (sqrt (-2.0 * log (u1)) * cos (2.0 * G_PI * u2));
    }
  g_assert_cmpfloat (fabs (bl_metrics_kurtosis (g, n) - 3.0), <, 0.05);
}

/* methods.md §2, "Crossover κ" table: pure math, tolerance 0.01 */
static void
test_theory_table (void)
{
  static const struct
  {
    int ib, e, m;
    BlTheoryScaling sc;
    double cross, int2, fp2, int4, fp4;
  } rows[] = {
    { 8, 4, 3, BL_THEORY_MX, 7.55, 43.40, 31.86, 37.38, 31.86 },
    { 6, 2, 3, BL_THEORY_MX, 1.96, 31.36, 31.52, 25.34, 29.76 },
    { 4, 2, 1, BL_THEORY_MX, 2.04, 19.32, 19.18, 13.30, 16.47 },
    { 4, 2, 1, BL_THEORY_NV, 2.39, 22.69, 20.76, 16.67, 22.79 },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (rows); i++)
    {
      g_assert_cmpfloat_with_epsilon (bl_theory_qsnr_int (2, rows[i].ib, rows[i].sc), rows[i].int2, 0.01);
      g_assert_cmpfloat_with_epsilon (bl_theory_qsnr_fp (2, rows[i].e, rows[i].m, rows[i].sc), rows[i].fp2, 0.01);
      g_assert_cmpfloat_with_epsilon (bl_theory_qsnr_int (4, rows[i].ib, rows[i].sc), rows[i].int4, 0.01);
      g_assert_cmpfloat_with_epsilon (bl_theory_qsnr_fp (4, rows[i].e, rows[i].m, rows[i].sc), rows[i].fp4, 0.01);
      g_assert_cmpfloat_with_epsilon (bl_theory_crossover (rows[i].ib, rows[i].e, rows[i].m, rows[i].sc),
                                      rows[i].cross, 0.01);
    }
  /* the FP ceiling with enough range: 13.80 + 6.02·M dB */
  g_assert_cmpfloat_with_epsilon (bl_theory_qsnr_fp (2, 4, 3, BL_THEORY_MX), 13.80 + 6.02 * 3, 0.02);
}

/* measured QSNR on Gaussian data follows the theory's ordering at equal bits */
static void
test_theory_agrees_with_measurement (void)
{
  static const char *const pairs[][2] = { { "nvint4", "nvfp4" }, { "mxint8", "mxfp8-e4m3" } };
  const gint64 rows = 256, cols = 1024;
  g_autofree float *x = g_new (float, rows * cols);
  g_autofree float *y = g_new (float, rows * cols);
  g_autoptr (GRand) rand = g_rand_new_with_seed (3);

  for (gint64 i = 0; i < rows * cols; i++)
    {
      double u1 = g_rand_double_range (rand, 1e-12, 1.0), u2 = g_rand_double (rand);

      x[i] = (float) (sqrt (-2.0 * log (u1)) * cos (2.0 * G_PI * u2));
    }
  for (gsize p = 0; p < G_N_ELEMENTS (pairs); p++)
    {
      double measured[2], predicted[2];

      for (int k = 0; k < 2; k++)
        {
          BlFormatSpec spec;
          BlErrorStats s;
          double kappa;

          g_assert_true (bl_format_spec_parse (pairs[p][k], &spec, NULL));
          g_assert_true (bl_format_fake_quant (&spec, x, y, rows, cols, 2, NULL));
          bl_error_stats_init (&s);
          bl_error_stats_add (&s, x, y, rows * cols);
          measured[k] = bl_error_stats_qsnr_db (&s);
          bl_metrics_block_crest (x, rows, cols, spec.group_size, &kappa, NULL);
          g_assert_true (bl_theory_qsnr_for_spec (&spec, kappa, &predicted[k]));
          /* the model is approximate; it lands within 1.5 dB here */
          if (fabs (measured[k] - predicted[k]) > 1.5)
            g_error ("%s: measured %.2f dB, theory %.2f dB at κ %.2f", pairs[p][k], measured[k],
                     predicted[k], kappa);
        }
      /* Gaussian blocks have κ below both crossovers: INT wins, as predicted */
      g_assert_cmpfloat (measured[0], >, measured[1]);
      g_assert_cmpfloat (predicted[0], >, predicted[1]);
    }
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/bitlens/metrics-error/basic", test_basic);
  g_test_add_func ("/bitlens/metrics-error/crest-kurtosis", test_crest_kurtosis);
  g_test_add_func ("/bitlens/metrics-error/theory-table", test_theory_table);
  g_test_add_func ("/bitlens/metrics-error/theory-vs-measured", test_theory_agrees_with_measurement);

  return g_test_run ();
}
