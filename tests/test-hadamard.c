/* test-hadamard.c: fast Walsh–Hadamard transform and random-sign rotations
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include <math.h>
#include <string.h>

#include "bl-error.h"
#include "bl-hadamard.h"

static void
test_h_squared (void)
{
  enum { N = 16 };
  float h[N][N], hh[N];

  /* column j of H is the transform of the unit vector e_j */
  for (int j = 0; j < N; j++)
    {
      float e[N] = { 0 };

      e[j] = 1.0f;
      bl_hadamard_fwht (e, N);
      for (int i = 0; i < N; i++)
        {
          g_assert_true (e[i] == 1.0f || e[i] == -1.0f);
          h[i][j] = e[i];
        }
    }
  /* H is symmetric with H·H = n·I */
  for (int i = 0; i < N; i++)
    {
      for (int j = 0; j < N; j++)
        g_assert_cmpfloat (h[i][j], ==, h[j][i]);
      memcpy (hh, h[i], sizeof hh);
      bl_hadamard_fwht (hh, N);
      for (int j = 0; j < N; j++)
        g_assert_cmpfloat (hh[j], ==, i == j ? (float) N : 0.0f);
    }
  /* Sylvester order: the first row is all ones, row 1 alternates */
  for (int j = 0; j < N; j++)
    {
      g_assert_cmpfloat (h[0][j], ==, 1.0f);
      g_assert_cmpfloat (h[1][j], ==, (j % 2) ? -1.0f : 1.0f);
    }
}

static float *
random_matrix (guint32 seed,
               gint64  n)
{
  g_autoptr (GRand) rand = g_rand_new_with_seed (seed);
  float *x = g_new (float, n);

  for (gint64 i = 0; i < n; i++)
    x[i] = (float) g_rand_double_range (rand, -1.0, 1.0);
  return x;
}

static void
test_orthonormal (void)
{
  const gint64 rows = 6, cols = 576;
  g_autofree float *x = random_matrix (1, rows * cols);
  g_autofree float *w = random_matrix (2, rows * cols);
  g_autofree float *xr = g_memdup2 (x, sizeof (float) * rows * cols);
  g_autofree float *wr = g_memdup2 (w, sizeof (float) * rows * cols);
  g_autofree float *signs = g_new (float, cols);
  g_autoptr (GError) error = NULL;

  bl_hadamard_random_signs (42, signs, cols);
  g_assert_true (bl_hadamard_rotate_rows (xr, rows, cols, 0, signs, FALSE, &error));
  g_assert_true (bl_hadamard_rotate_rows (wr, rows, cols, 0, signs, FALSE, &error));
  g_assert_no_error (error);
  /* X·Wᵀ (and so every row norm) is preserved */
  for (gint64 i = 0; i < rows; i++)
    for (gint64 j = 0; j < rows; j++)
      {
        double d0 = 0, d1 = 0;

        for (gint64 k = 0; k < cols; k++)
          {
            d0 += (double) x[i * cols + k] * w[j * cols + k];
            d1 += (double) xr[i * cols + k] * wr[j * cols + k];
          }
        g_assert_cmpfloat (fabs (d0 - d1), <, 1e-4);
      }
}

static void
test_inverse (void)
{
  const gint64 rows = 3, cols = 1536;
  g_autofree float *x = random_matrix (3, rows * cols);
  g_autofree float *y = g_memdup2 (x, sizeof (float) * rows * cols);
  g_autofree float *signs = g_new (float, cols);
  g_autoptr (GError) error = NULL;

  bl_hadamard_random_signs (7, signs, cols);
  g_assert_true (bl_hadamard_rotate_rows (y, rows, cols, 512, signs, FALSE, &error));
  g_assert_true (memcmp (x, y, sizeof (float) * rows * cols) != 0);
  g_assert_true (bl_hadamard_rotate_rows (y, rows, cols, 512, signs, TRUE, &error));
  g_assert_no_error (error);
  for (gint64 i = 0; i < rows * cols; i++)
    g_assert_cmpfloat (fabsf (x[i] - y[i]), <, 1e-5f);
}

static void
test_blocks_and_signs (void)
{
  float a[64], b[64], x[24] = { 0 };
  int plus = 0;
  g_autoptr (GError) error = NULL;

  g_assert_cmpint (bl_hadamard_block_size (576), ==, 64);
  g_assert_cmpint (bl_hadamard_block_size (1536), ==, 512);
  g_assert_cmpint (bl_hadamard_block_size (4096), ==, 4096);
  g_assert_cmpint (bl_hadamard_block_size (7), ==, 1);
  g_assert_true (bl_hadamard_is_power_of_two (32));
  g_assert_false (bl_hadamard_is_power_of_two (24));

  g_assert_false (bl_hadamard_rotate_rows (x, 1, 24, 16, NULL, FALSE, &error));
  g_assert_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_assert_false (bl_hadamard_rotate_rows (x, 1, 24, 12, NULL, FALSE, &error));
  g_assert_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);

  bl_hadamard_random_signs (99, a, 64);
  bl_hadamard_random_signs (99, b, 64);
  g_assert_true (memcmp (a, b, sizeof a) == 0);
  for (int i = 0; i < 64; i++)
    {
      g_assert_true (a[i] == 1.0f || a[i] == -1.0f);
      plus += a[i] > 0;
    }
  g_assert_cmpint (plus, >, 16);
  g_assert_cmpint (plus, <, 48);
  bl_hadamard_random_signs (100, b, 64);
  g_assert_true (memcmp (a, b, sizeof a) != 0);

  /* a one-hot outlier is spread evenly over its block */
  memset (a, 0, sizeof a);
  a[5] = 8.0f;
  g_assert_true (bl_hadamard_rotate_rows (a, 1, 64, 64, NULL, FALSE, &error));
  for (int i = 0; i < 64; i++)
    g_assert_cmpfloat (fabsf (a[i]), ==, 1.0f);
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/bitlens/hadamard/h-squared", test_h_squared);
  g_test_add_func ("/bitlens/hadamard/orthonormal", test_orthonormal);
  g_test_add_func ("/bitlens/hadamard/inverse", test_inverse);
  g_test_add_func ("/bitlens/hadamard/blocks-and-signs", test_blocks_and_signs);

  return g_test_run ();
}
