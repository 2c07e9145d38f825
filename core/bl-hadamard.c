/* bl-hadamard.c: fast Walsh–Hadamard transforms and seeded random-sign rotations
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * The rotation experiments of the INT-vs-FP paper (methods.md §2) and of QuaRot/SpinQuant:
 * a block-diagonal random Hadamard R = H·D/√b, applied along the reduction dimension of both
 * activations and weights, leaves X·Wᵀ unchanged while spreading outliers across a block.
 */
#include "bl-hadamard.h"

#include <math.h>

#include "bl-error.h"
#include "bl-format-blocks.h"

gboolean
bl_hadamard_is_power_of_two (gint64 n)
{
  return n > 0 && (n & (n - 1)) == 0;
}

/**
 * bl_hadamard_block_size:
 * @n: a dimension
 *
 * The block of the block-diagonal transform for a dimension that is not a power of two: the
 * largest power of two dividing @n (576 → 64, 1536 → 512).
 *
 * Returns: the block size, @n itself when @n is a power of two
 */
gint64
bl_hadamard_block_size (gint64 n)
{
  g_return_val_if_fail (n > 0, 0);
  return n & -n;
}

/**
 * bl_hadamard_fwht:
 * @x: (array): @n values, transformed in place
 * @n: a power of two
 *
 * The unnormalised fast Walsh–Hadamard transform in Sylvester (natural) order: x ← H·x with
 * H_n = [[H, H], [H, −H]], so H·H = n·I. O(n log n) butterflies.
 */
void
bl_hadamard_fwht (float  *x,
                  gint64  n)
{
  g_return_if_fail (x != NULL);
  g_return_if_fail (bl_hadamard_is_power_of_two (n));

  for (gint64 h = 1; h < n; h *= 2)
    for (gint64 i = 0; i < n; i += 2 * h)
      for (gint64 j = i; j < i + h; j++)
        {
          float a = x[j], b = x[j + h];

          x[j] = a + b;
          x[j + h] = a - b;
        }
}

/**
 * bl_hadamard_random_signs:
 * @seed: the seed
 * @signs: (out caller-allocates) (array): @n values in {−1, +1}
 * @n: how many
 *
 * The diagonal D of a random Hadamard rotation, reproducible from @seed (sign i is the low bit
 * of the counter-based bl_random_u64(@seed, i), the same stream as stochastic rounding).
 */
void
bl_hadamard_random_signs (guint64  seed,
                          float   *signs,
                          gint64   n)
{
  g_return_if_fail (signs != NULL || n == 0);

  for (gint64 i = 0; i < n; i++)
    signs[i] = (bl_random_u64 (seed, (guint64) i) >> 63) ? -1.0f : 1.0f;
}

/**
 * bl_hadamard_rotate_rows:
 * @x: (array): an @n_rows × @n_cols matrix, row-major, rotated in place
 * @n_rows: rows
 * @n_cols: columns (the dimension rotated)
 * @block: a power of two dividing @n_cols; 0 picks bl_hadamard_block_size(@n_cols)
 * @signs: (array) (nullable): @n_cols signs for D, or %NULL for D = I
 * @inverse: apply R⁻¹ instead of R
 * @error: return location for a #GError
 *
 * Rotates every row v of @x by the orthonormal block-diagonal R: each block becomes
 * H·(d ⊙ v)/√b, and the inverse d ⊙ (H·v)/√b. Rotating the rows of both X and W by the same R
 * keeps X·Wᵀ.
 *
 * Returns: %FALSE with %BL_ERROR_INVALID_ARGUMENT when @block does not fit @n_cols
 */
gboolean
bl_hadamard_rotate_rows (float        *x,
                         gint64        n_rows,
                         gint64        n_cols,
                         gint64        block,
                         const float  *signs,
                         gboolean      inverse,
                         GError      **error)
{
  float norm;

  g_return_val_if_fail (x != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (n_rows < 0 || n_cols <= 0)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT,
                   "invalid shape %" G_GINT64_FORMAT " × %" G_GINT64_FORMAT " for a Hadamard rotation",
                   n_rows, n_cols);
      return FALSE;
    }
  if (block == 0)
    block = bl_hadamard_block_size (n_cols);
  if (!bl_hadamard_is_power_of_two (block) || n_cols % block != 0)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT,
                   "Hadamard block %" G_GINT64_FORMAT " must be a power of two dividing %" G_GINT64_FORMAT,
                   block, n_cols);
      return FALSE;
    }
  norm = (float) (1.0 / sqrt ((double) block));
  for (gint64 r = 0; r < n_rows; r++)
    for (gint64 c = 0; c < n_cols; c += block)
      {
        float *v = x + r * n_cols + c;

        if (!inverse && signs != NULL)
          for (gint64 i = 0; i < block; i++)
            v[i] *= signs[c + i];
        bl_hadamard_fwht (v, block);
        for (gint64 i = 0; i < block; i++)
          v[i] *= norm;
        if (inverse && signs != NULL)
          for (gint64 i = 0; i < block; i++)
            v[i] *= signs[c + i];
      }
  return TRUE;
}
