/* test-quant-algo.c: the weight quantization algorithms against hand checks and references
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include <math.h>
#include <string.h>

#include "bl-error.h"
#include "bl-quant-algo.h"

static float *
random_matrix (guint32 seed,
               int64_t rows,
               int64_t cols,
               double  sigma)
{
  g_autoptr (GRand) rand = g_rand_new_with_seed (seed);
  float *m = g_new (float, rows * cols);

  for (int64_t i = 0; i < rows * cols; i++)
    {
      /* Box–Muller: Gaussian weights, like a trained layer's bulk */
      double u1 = g_rand_double_range (rand, 1e-12, 1.0), u2 = g_rand_double (rand);

      m[i] = (float) (sigma * sqrt (-2.0 * log (u1)) * cos (2.0 * G_PI * u2));
    }
  return m;
}

static void
parse_spec (const char   *str,
            BlFormatSpec *spec)
{
  g_autoptr (GError) error = NULL;

  bl_format_spec_parse (str, spec, &error);
  g_assert_no_error (error);
}

/* "rtn" is exactly the format's own fake-quant, needs no calibration, and leaves the input alone */
static void
test_rtn (void)
{
  g_autoptr (GError) error = NULL;
  g_autofree float *w = random_matrix (1, 16, 64, 0.02);
  g_autofree float *expect = g_new (float, 16 * 64);
  BlInputTransform t;
  BlFormatSpec spec;

  parse_spec ("int4:g32", &spec);
  g_assert_true (bl_format_fake_quant_reference (&spec, w, expect, 16, 64, &error));
  g_assert_no_error (error);
  g_assert_cmpint (bl_quant_algo_needs ("rtn", &error), ==, 0);
  g_assert_no_error (error);
  g_assert_true (bl_quant_algo_apply ("rtn", NULL, &spec, NULL, NULL, w, 16, 64, NULL, &t, &error));
  g_assert_no_error (error);
  g_assert_true (bl_input_transform_is_identity (&t));
  g_assert_cmpmem (w, 16 * 64 * sizeof (float), expect, 16 * 64 * sizeof (float));
  bl_input_transform_clear (&t);
}

static void
test_bad_names (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonObject) options = json_object_new ();

  g_assert_false (bl_quant_algo_validate ("rtn+frobnicate", NULL, &error));
  g_assert_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, "frobnicate"));
  g_clear_error (&error);
  g_assert_false (bl_quant_algo_validate ("rtn+rtn", NULL, &error));
  g_assert_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_assert_false (bl_quant_algo_validate ("", NULL, &error));
  g_assert_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  json_object_set_double_member (options, "no_such_option", 1.0);
  g_assert_false (bl_quant_algo_validate ("rtn", options, &error));
  g_assert_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, "no_such_option"));
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/bitlens/quant-algo/rtn", test_rtn);
  g_test_add_func ("/bitlens/quant-algo/bad-names", test_bad_names);
  return g_test_run ();
}
