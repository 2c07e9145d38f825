/* test-cuda-bitplane.c: the bit-plane layout and reference GEMM of the CUDA kernels, on the CPU
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * gpu/bl-bitplane.c is the oracle of the GPU bit-plane GEMM (tests/test-cuda-gemm.c), so it
 * is itself checked here, without a GPU, against a plain integer GEMM: every width pair
 * 1 ≤ p, q ≤ 8, signed and unsigned codes, and row lengths that are not multiples of 32 or
 * of the 128-element padding.
 */
#include <string.h>

#include <glib.h>

#include "bl-bitplane.h"

/* a random code of @bits bits, as its value and as the byte the packers read */
static int
random_code (GRand   *rand,
             int      bits,
             gboolean is_signed,
             uint8_t *byte)
{
  int v = is_signed ? g_rand_int_range (rand, -(1 << (bits - 1)), 1 << (bits - 1))
                    : g_rand_int_range (rand, 0, 1 << bits);

  *byte = (uint8_t) v;
  return v;
}

static void
test_layout (void)
{
  /* one row of 40 two-bit codes: 0b01, then 0b10, then zeros; element k of a word sits at
   * bit 31 − k */
  uint8_t codes[40] = { 1, 2 };
  g_autofree uint32_t *planes = NULL;

  g_assert_cmpint (bl_bitplane_words_per_row (40), ==, 4);
  g_assert_cmpint (bl_bitplane_words_per_row (128), ==, 4);
  g_assert_cmpint (bl_bitplane_words_per_row (129), ==, 8);
  g_assert_cmpuint (bl_bitplane_packed_words (3, 40, 2), ==, 2 * 3 * 4);

  planes = g_new (uint32_t, bl_bitplane_packed_words (1, 40, 2));
  bl_bitplane_pack (codes, 1, 40, 2, planes);
  g_assert_cmphex (planes[0], ==, 0x80000000u);   /* plane 0: element 0 */
  g_assert_cmphex (planes[1], ==, 0);
  g_assert_cmphex (planes[4], ==, 0x40000000u);   /* plane 1: element 1 */
  for (int w = 5; w < 8; w++)
    g_assert_cmphex (planes[w], ==, 0);

  g_assert_cmpint (bl_bitplane_plane_weight (0, 4, TRUE), ==, 1);
  g_assert_cmpint (bl_bitplane_plane_weight (3, 4, FALSE), ==, 8);
  g_assert_cmpint (bl_bitplane_plane_weight (3, 4, TRUE), ==, -8);
}

static void
check_gemm (GRand   *rand,
            int      x_bits,
            gboolean x_signed,
            int      w_bits,
            gboolean w_signed,
            int      m,
            int      n,
            int      k)
{
  g_autofree int *xv = g_new (int, (gsize) m * k);
  g_autofree int *wv = g_new (int, (gsize) n * k);
  g_autofree uint8_t *xb = g_new (uint8_t, (gsize) m * k);
  g_autofree uint8_t *wb = g_new (uint8_t, (gsize) n * k);
  g_autofree uint32_t *xp = g_new (uint32_t, bl_bitplane_packed_words (m, k, x_bits));
  g_autofree uint32_t *wp = g_new (uint32_t, bl_bitplane_packed_words (n, k, w_bits));
  g_autofree int32_t *y = g_new (int32_t, (gsize) m * n);

  for (int i = 0; i < m * k; i++)
    xv[i] = random_code (rand, x_bits, x_signed, &xb[i]);
  for (int i = 0; i < n * k; i++)
    wv[i] = random_code (rand, w_bits, w_signed, &wb[i]);
  bl_bitplane_pack (xb, m, k, x_bits, xp);
  bl_bitplane_pack (wb, n, k, w_bits, wp);
  bl_bitplane_gemm_ref (xp, x_bits, x_signed, wp, w_bits, w_signed, m, n, k, y);

  for (int r = 0; r < m; r++)
    for (int c = 0; c < n; c++)
      {
        int64_t expect = 0;

        for (int i = 0; i < k; i++)
          expect += (int64_t) xv[r * k + i] * wv[c * k + i];
        if (y[r * n + c] != expect)
          g_error ("W%d%sA%d%s %d×%d×%d: y[%d, %d] = %d, the integer GEMM gives %" G_GINT64_FORMAT, w_bits,
                   w_signed ? "s" : "u", x_bits, x_signed ? "s" : "u", m, n, k, r, c, y[r * n + c], expect);
      }
}

static void
test_gemm_all_widths (void)
{
  g_autoptr(GRand) rand = g_rand_new_with_seed (7);

  for (int p = 1; p <= 8; p++)
    for (int q = 1; q <= 8; q++)
      for (int s = 0; s < 4; s++)
        check_gemm (rand, p, s & 1, q, (s >> 1) & 1, 3, 5, 1 + g_rand_int_range (rand, 0, 300));
}

static void
test_gemm_shapes (void)
{
  g_autoptr(GRand) rand = g_rand_new_with_seed (11);
  const int ks[] = { 1, 31, 32, 33, 127, 128, 129, 4096 };

  for (guint i = 0; i < G_N_ELEMENTS (ks); i++)
    {
      check_gemm (rand, 8, TRUE, 2, TRUE, 4, 7, ks[i]);
      check_gemm (rand, 4, TRUE, 4, TRUE, 1, 9, ks[i]);
      check_gemm (rand, 8, FALSE, 8, FALSE, 2, 3, ks[i]);
    }
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/bitlens/cuda/bitplane/layout", test_layout);
  g_test_add_func ("/bitlens/cuda/bitplane/gemm-all-widths", test_gemm_all_widths);
  g_test_add_func ("/bitlens/cuda/bitplane/gemm-shapes", test_gemm_shapes);

  return g_test_run ();
}
