/* test-ppl.c: tests of core/bl-ppl.c
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * Reference values come from mpmath at 40 digits (Debian python3-mpmath): t quantiles by
 * root-finding on 1 − I_{ν/(ν+t²)}(ν/2, 1/2)/2, and the ratio-estimator example in exact
 * fractions.
 */
#include <math.h>

#include "bl-ppl.h"

static void
assert_rel (double actual,
            double expected,
            double tolerance)
{
  if (!(fabs (actual - expected) <= tolerance * fabs (expected)))
    g_error ("%.17g differs from %.17g by more than %g relative", actual, expected, tolerance);
}

static void
test_empty (void)
{
  g_autoptr(BlPplStats) stats = bl_ppl_stats_new ();
  double lo = 0, hi = 0;

  g_assert_cmpuint (bl_ppl_stats_get_n_windows (stats), ==, 0);
  g_assert_cmpint (bl_ppl_stats_get_n_tokens (stats), ==, 0);
  g_assert_true (isnan (bl_ppl_stats_get_mean_nll (stats)));
  g_assert_true (isnan (bl_ppl_stats_get_ppl (stats)));
  g_assert_true (isnan (bl_ppl_stats_get_std_error (stats)));
  g_assert_false (bl_ppl_stats_get_ppl_ci (stats, &lo, &hi));
  g_assert_true (isnan (lo) && isnan (hi));
}

static void
test_one_window (void)
{
  g_autoptr(BlPplStats) stats = bl_ppl_stats_new ();
  double lo = 0, hi = 0;

  /* the stories260k golden: 256 scored tokens, mean NLL 4.507416 */
  bl_ppl_stats_add_window (stats, 4.507416 * 256, 256);
  g_assert_cmpuint (bl_ppl_stats_get_n_windows (stats), ==, 1);
  g_assert_cmpint (bl_ppl_stats_get_n_tokens (stats), ==, 256);
  assert_rel (bl_ppl_stats_get_mean_nll (stats), 4.507416, 1e-15);
  assert_rel (bl_ppl_stats_get_ppl (stats), exp (4.507416), 1e-15);
  g_assert_cmpfloat_with_epsilon (bl_ppl_stats_get_ppl (stats), 90.687, 1e-3);
  g_assert_true (isnan (bl_ppl_stats_get_std_error (stats)));
  g_assert_false (bl_ppl_stats_get_nll_ci (stats, &lo, &hi));
  g_assert_true (isnan (lo) && isnan (hi));
  g_assert_false (bl_ppl_stats_get_ppl_ci (stats, &lo, &hi));
  g_assert_true (isnan (lo) && isnan (hi));
}

static void
test_ratio_estimator (void)
{
  g_autoptr(BlPplStats) stats = bl_ppl_stats_new ();
  g_autoptr(BlPplStats) copy = NULL;
  double lo, hi;

  /* windows (Σnll, n) = (10, 5), (12, 4), (9, 6): r = 31/15 */
  bl_ppl_stats_add_window (stats, 10, 5);
  bl_ppl_stats_add_window (stats, 12, 4);
  bl_ppl_stats_add_window (stats, 9, 6);
  assert_rel (bl_ppl_stats_get_mean_nll (stats), 2.0666666666666667, 1e-15);
  assert_rel (bl_ppl_stats_get_std_error (stats), 0.41318993928449653, 1e-14);
  g_assert_true (bl_ppl_stats_get_nll_ci (stats, &lo, &hi));
  assert_rel (lo, 0.28885384649921246, 1e-12);
  assert_rel (hi, 3.8444794868341209, 1e-12);
  assert_rel (bl_ppl_stats_get_ppl (stats), 7.8984510187071656, 1e-14);
  g_assert_true (bl_ppl_stats_get_ppl_ci (stats, &lo, &hi));
  assert_rel (lo, 1.3348966144571611, 1e-12);
  assert_rel (hi, 46.73435217324713, 1e-12);

  /* a copy is independent */
  copy = bl_ppl_stats_copy (stats);
  bl_ppl_stats_add_window (copy, 1, 1);
  g_assert_cmpuint (bl_ppl_stats_get_n_windows (stats), ==, 3);
  g_assert_cmpuint (bl_ppl_stats_get_n_windows (copy), ==, 4);
  g_assert_cmpint (bl_ppl_stats_get_n_tokens (copy), ==, 16);
}

/* With equal window sizes the ratio estimator's se is the standard error of the mean of
 * the per-window mean NLLs. */
static void
test_equal_windows (void)
{
  g_autoptr(BlPplStats) stats = bl_ppl_stats_new ();
  g_autoptr(GRand) rand = g_rand_new_with_seed (7);
  double means[50], avg = 0, ss = 0, se;
  const int k = 50, n = 255;

  for (int i = 0; i < k; i++)
    {
      means[i] = g_rand_double_range (rand, 1.5, 2.5);
      bl_ppl_stats_add_window (stats, means[i] * n, n);
      avg += means[i] / k;
    }
  for (int i = 0; i < k; i++)
    ss += (means[i] - avg) * (means[i] - avg);
  se = sqrt (ss / (k - 1) / k);
  assert_rel (bl_ppl_stats_get_mean_nll (stats), avg, 1e-13);
  assert_rel (bl_ppl_stats_get_std_error (stats), se, 1e-10);
}

/* The estimate must not depend on the order windows arrive in (the GUI evaluates them in
 * a random order) beyond floating-point summation. */
static void
test_order_independent (void)
{
  g_autoptr(GRand) rand = g_rand_new_with_seed (2024);
  const guint k = 2000;
  g_autofree double *sums = g_new (double, k);
  g_autofree gint64 *counts = g_new (gint64, k);
  g_autofree guint *perm = g_new (guint, k);
  g_autoptr(BlPplStats) forward = bl_ppl_stats_new ();
  g_autoptr(BlPplStats) backward = bl_ppl_stats_new ();
  g_autoptr(BlPplStats) shuffled = bl_ppl_stats_new ();
  double lo[3], hi[3];

  for (guint i = 0; i < k; i++)
    {
      /* sizes and magnitudes spread widely, so plain summation would depend on order */
      counts[i] = g_rand_int_range (rand, 1, 4096);
      sums[i] = counts[i] * g_rand_double_range (rand, 0.5, 9.0)
                * (i % 7 == 0 ? 10.0 : 1.0);
      perm[i] = i;
    }
  for (guint i = k - 1; i > 0; i--)
    {
      guint j = g_rand_int_range (rand, 0, i + 1);
      guint t = perm[i];

      perm[i] = perm[j];
      perm[j] = t;
    }
  for (guint i = 0; i < k; i++)
    {
      bl_ppl_stats_add_window (forward, sums[i], counts[i]);
      bl_ppl_stats_add_window (backward, sums[k - 1 - i], counts[k - 1 - i]);
      bl_ppl_stats_add_window (shuffled, sums[perm[i]], counts[perm[i]]);
    }

  g_assert_cmpint (bl_ppl_stats_get_n_tokens (forward), ==, bl_ppl_stats_get_n_tokens (shuffled));
  assert_rel (bl_ppl_stats_get_mean_nll (backward), bl_ppl_stats_get_mean_nll (forward), 1e-12);
  assert_rel (bl_ppl_stats_get_mean_nll (shuffled), bl_ppl_stats_get_mean_nll (forward), 1e-12);
  assert_rel (bl_ppl_stats_get_ppl (backward), bl_ppl_stats_get_ppl (forward), 1e-12);
  assert_rel (bl_ppl_stats_get_ppl (shuffled), bl_ppl_stats_get_ppl (forward), 1e-12);
  g_assert_true (bl_ppl_stats_get_ppl_ci (forward, &lo[0], &hi[0]));
  g_assert_true (bl_ppl_stats_get_ppl_ci (backward, &lo[1], &hi[1]));
  g_assert_true (bl_ppl_stats_get_ppl_ci (shuffled, &lo[2], &hi[2]));
  for (int i = 1; i < 3; i++)
    {
      assert_rel (lo[i], lo[0], 1e-12);
      assert_rel (hi[i], hi[0], 1e-12);
    }
}

/* The interval narrows as windows come in and covers the population mean. */
static void
test_progressive (void)
{
  g_autoptr(BlPplStats) stats = bl_ppl_stats_new ();
  g_autoptr(GRand) rand = g_rand_new_with_seed (11);
  double width_10 = 0, lo, hi;

  for (int i = 1; i <= 400; i++)
    {
      bl_ppl_stats_add_window (stats, 255 * (2.0 + g_rand_double_range (rand, -0.3, 0.3)), 255);
      g_assert_true (bl_ppl_stats_get_nll_ci (stats, &lo, &hi) == (i >= 2));
      if (i == 10)
        width_10 = hi - lo;
    }
  g_assert_cmpfloat (hi - lo, <, width_10 / 4);
  g_assert_cmpfloat (lo, <, 2.0);
  g_assert_cmpfloat (hi, >, 2.0);
}

static void
test_t_quantile (void)
{
  static const struct { double p, df, t; } cases[] = {
    { 0.975, 1, 12.706204736174693 },
    { 0.975, 2, 4.3026527297494618 },
    { 0.975, 3, 3.1824463052837084 },
    { 0.975, 5, 2.5705818356363148 },
    { 0.975, 10, 2.2281388519862742 },
    { 0.975, 30, 2.0422724563012379 },
    { 0.975, 100, 1.9839715185235519 },
    { 0.975, 999, 1.9623414611334496 },
    { 0.975, 1000, 1.9623390808264081 },
    { 0.975, 1001, 1.9623367052808795 },
    { 0.975, 5000, 1.9604385517065075 },
    { 0.975, 1e6, 1.9599663568141067 },
    { 0.995, 4, 4.604094871349992 },
    { 0.9, 7, 1.4149239276505086 },
    { 0.975, 2.5, 3.5746548420036818 },
    { 0.6, 50, 0.25469934298858817 },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      assert_rel (bl_student_t_quantile (cases[i].p, cases[i].df), cases[i].t, 1e-12);
      assert_rel (bl_student_t_quantile (1 - cases[i].p, cases[i].df), -cases[i].t, 1e-12);
    }
  /* ν → ∞ is the normal quantile */
  assert_rel (bl_student_t_quantile (0.975, 1e15), 1.9599639845400542, 1e-14);
  g_assert_cmpfloat (bl_student_t_quantile (0.5, 9), ==, 0.0);
  g_assert_true (isnan (bl_student_t_quantile (0.0, 5)));
  g_assert_true (isnan (bl_student_t_quantile (1.0, 5)));
  g_assert_true (isnan (bl_student_t_quantile (0.975, 0)));
  g_assert_true (isnan (bl_student_t_quantile (NAN, 5)));
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/bitlens/ppl/empty", test_empty);
  g_test_add_func ("/bitlens/ppl/one-window", test_one_window);
  g_test_add_func ("/bitlens/ppl/ratio-estimator", test_ratio_estimator);
  g_test_add_func ("/bitlens/ppl/equal-windows", test_equal_windows);
  g_test_add_func ("/bitlens/ppl/order-independent", test_order_independent);
  g_test_add_func ("/bitlens/ppl/progressive", test_progressive);
  g_test_add_func ("/bitlens/ppl/t-quantile", test_t_quantile);

  return g_test_run ();
}
