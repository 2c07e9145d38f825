/* bl-bitplane.c: the ABQ-LLM bit-plane layout and its scalar reference GEMM
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "bl-bitplane.h"

#include <string.h>

/**
 * bl_bitplane_words_per_row:
 * @k: elements per row
 *
 * Returns: uint32 words per row of one plane: @k rounded up to %BL_BITPLANE_K_ALIGN, over 32
 */
int64_t
bl_bitplane_words_per_row (int64_t k)
{
  g_return_val_if_fail (k > 0, 0);
  return (k + BL_BITPLANE_K_ALIGN - 1) / BL_BITPLANE_K_ALIGN * (BL_BITPLANE_K_ALIGN / 32);
}

/**
 * bl_bitplane_packed_words:
 * @rows: rows
 * @k: elements per row
 * @bits: planes, 1…8
 *
 * Returns: the uint32 words bl_bitplane_pack() writes
 */
gsize
bl_bitplane_packed_words (int64_t rows,
                          int64_t k,
                          int     bits)
{
  g_return_val_if_fail (rows > 0 && bits >= 1 && bits <= 8, 0);
  return (gsize) bits * (gsize) rows * (gsize) bl_bitplane_words_per_row (k);
}

/**
 * bl_bitplane_pack:
 * @codes: (array): @rows × @k codes, row-major; the low @bits bits of each byte are the
 *   code (two's complement for signed data, so an int8_t array in range can be passed as is)
 * @rows: rows
 * @k: elements per row
 * @bits: code width, 1…8
 * @planes: (out caller-allocates): bl_bitplane_packed_words() words
 *
 * Splits codes into bit planes, [bit][row][word], most significant element bit first, with
 * zero padding up to the row's word count (ABQ-LLM engine/common/pack.cu).
 */
void
bl_bitplane_pack (const uint8_t *codes,
                  int64_t        rows,
                  int64_t        k,
                  int            bits,
                  uint32_t      *planes)
{
  int64_t words = bl_bitplane_words_per_row (k);

  g_return_if_fail (codes != NULL && planes != NULL);
  g_return_if_fail (bits >= 1 && bits <= 8);

  memset (planes, 0, bl_bitplane_packed_words (rows, k, bits) * sizeof (uint32_t));
  for (int b = 0; b < bits; b++)
    for (int64_t r = 0; r < rows; r++)
      {
        uint32_t *row = planes + ((size_t) b * (size_t) rows + (size_t) r) * (size_t) words;
        const uint8_t *c = codes + (size_t) r * (size_t) k;

        for (int64_t i = 0; i < k; i++)
          row[i / 32] |= (uint32_t) ((c[i] >> b) & 1u) << (31 - i % 32);
      }
}

/**
 * bl_bitplane_plane_weight:
 * @plane: plane index, 0…@bits − 1
 * @bits: code width
 * @is_signed: whether the codes are two's complement
 *
 * Returns: the weight 2^@plane of a plane, negated for the top plane of signed codes
 */
int32_t
bl_bitplane_plane_weight (int      plane,
                          int      bits,
                          gboolean is_signed)
{
  int32_t w = (int32_t) 1 << plane;

  return is_signed && plane == bits - 1 ? -w : w;
}

/**
 * bl_bitplane_gemm_ref:
 * @x_planes: (array): [@x_bits][@m][words] planes of the activations
 * @x_bits: activation code width p, 1…8
 * @x_signed: whether the activation codes are two's complement
 * @w_planes: (array): [@w_bits][@n][words] planes of the weights
 * @w_bits: weight code width q, 1…8
 * @w_signed: whether the weight codes are two's complement
 * @m: activation rows (tokens)
 * @n: weight rows (output features)
 * @k: elements per row (input features)
 * @y: (out caller-allocates): [@m, @n] row-major products
 *
 * Y[m, n] = Σ_i Σ_j c_i d_j 2^(i+j) · popcount (X⁽ⁱ⁾[m] AND W⁽ʲ⁾[n]) (methods.md §1), summed
 * in wrapping 32-bit arithmetic as the GPU's int32 accumulators do; for codes of at most 8
 * bits the sum cannot wrap below k = 33 025.
 */
void
bl_bitplane_gemm_ref (const uint32_t *x_planes,
                      int             x_bits,
                      gboolean        x_signed,
                      const uint32_t *w_planes,
                      int             w_bits,
                      gboolean        w_signed,
                      int64_t         m,
                      int64_t         n,
                      int64_t         k,
                      int32_t        *y)
{
  int64_t words = bl_bitplane_words_per_row (k);

  g_return_if_fail (x_planes != NULL && w_planes != NULL && y != NULL);
  g_return_if_fail (x_bits >= 1 && x_bits <= 8 && w_bits >= 1 && w_bits <= 8);

  for (int64_t r = 0; r < m; r++)
    for (int64_t c = 0; c < n; c++)
      {
        uint32_t acc = 0;

        for (int i = 0; i < x_bits; i++)
          for (int j = 0; j < w_bits; j++)
            {
              const uint32_t *xr = x_planes + ((size_t) i * (size_t) m + (size_t) r) * (size_t) words;
              const uint32_t *wr = w_planes + ((size_t) j * (size_t) n + (size_t) c) * (size_t) words;
              uint32_t weight = (uint32_t) (bl_bitplane_plane_weight (i, x_bits, x_signed) *
                                            bl_bitplane_plane_weight (j, w_bits, w_signed));
              uint32_t ones = 0;

              for (int64_t w = 0; w < words; w++)
                ones += (uint32_t) __builtin_popcount (xr[w] & wr[w]);
              acc += weight * ones;
            }
        y[r * n + c] = (int32_t) acc;
      }
}
