/* bl-rotate.c: QuaRot-style randomized Hadamard rotation of a layer's input dimension
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * Ashkboos et al., "QuaRot: Outlier-Free 4-Bit Inference in Rotated LLMs", NeurIPS 2024,
 * arXiv 2404.00456, §3–4: with an orthogonal R, W·x = (W·Rᵀ)·(R·x), and for R = H·D/√b
 * (block-diagonal Walsh–Hadamard H of block b, random signs D) the rotated input and weight
 * spread outlier channels over a whole block, which flattens both for quantization.
 * core/bl-hadamard.c gives R; the seed picks D.
 *
 * Folding. The weight side W·Rᵀ is always folded into the weight here (each row w ← R·w). The
 * input side R·x is returned as BlInputTransform (hadamard, seed, block) for the forward pass
 * to apply online. QuaRot removes most online rotations by rewriting the model: (a) the
 * residual stream is rotated once (embedding rows, and the output rows of every o_proj and
 * down_proj), which reaches q/k/v, gate/up and lm_head unchanged through RMSNorm once the norm
 * gains are folded into those weights, since RMSNorm commutes with an orthogonal map; (b)
 * o_proj's input is rotated head by head by rotating v_proj's output rows, exact because
 * attention mixes tokens linearly within a head. down_proj's input follows SwiGLU, a
 * non-linearity, so it always needs the online rotation. Those rewrites span several layers
 * and the embedding, which a per-layer algorithm cannot reach, so none is done here; the
 * online rotation computes the same products (up to fp32 rounding), so the quantization
 * error measured is the one the folded model would have.
 *
 * The input statistics are carried over exactly where that is possible: H' = R·H·Rᵀ,
 * E[x'] = R·E[x], E[x'_j²] = H'_jj / n; per-channel |x| and max |x| are not determined by
 * them and become unknown (a later SmoothQuant or AWQ step then refuses).
 */
#include "bl-quant-algo-private.h"

#include <math.h>

#include "bl-error.h"
#include "bl-hadamard.h"

/* v ← R·v for a double vector: the same R as bl_hadamard_rotate_rows (signs, then the
 * unnormalised Sylvester FWHT per block, then 1/√b) */
static void
rotate_double (double      *v,
               int64_t      n,
               int64_t      block,
               const float *signs)
{
  double norm = 1.0 / sqrt ((double) block);

  for (int64_t i = 0; i < n; i++)
    v[i] *= signs[i];
  for (int64_t c = 0; c < n; c += block)
    {
      double *x = v + c;

      for (int64_t h = 1; h < block; h *= 2)
        for (int64_t i = 0; i < block; i += 2 * h)
          for (int64_t j = i; j < i + h; j++)
            {
              double a = x[j], b = x[j + h];

              x[j] = a + b;
              x[j + h] = a - b;
            }
    }
  for (int64_t i = 0; i < n; i++)
    v[i] *= norm;
}

/**
 * bl_quant_hadamard:
 * @state: the layer
 * @error: return location for a #GError
 *
 * Options "hadamard_seed" (0) and "hadamard_block" (0: the largest power of two dividing
 * the input features).
 *
 * Returns: %FALSE with %BL_ERROR_INVALID_ARGUMENT for a block that does not divide the input
 */
gboolean
bl_quant_hadamard (BlQuantState *state,
                   GError      **error)
{
  gint64 seed = 0, block = 0;
  int64_t rows = state->rows, cols = state->cols;
  BlInputTransform *t = state->transform;
  g_autofree float *signs = NULL;

  if (!bl_quant_option_int (state->options, "hadamard_seed", 0, G_MAXINT64, &seed, error)
      || !bl_quant_option_int (state->options, "hadamard_block", 0, cols, &block, error))
    return FALSE;
  if (block == 0)
    block = bl_hadamard_block_size (cols);
  if (!bl_hadamard_is_power_of_two (block) || cols % block != 0)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT,
                   "Hadamard block %" G_GINT64_FORMAT " must be a power of two dividing %" G_GINT64_FORMAT,
                   block, cols);
      return FALSE;
    }
  signs = g_new (float, cols);
  bl_hadamard_random_signs ((guint64) seed, signs, cols);
  if (!bl_hadamard_rotate_rows (state->w, rows, cols, block, signs, FALSE, error))
    return FALSE;

  if (state->hessian != NULL)
    {
      double *h = state->hessian;

      /* rows: H·Rᵀ; then the columns of that, by symmetry of the result: R·H·Rᵀ */
      for (int64_t i = 0; i < cols; i++)
        rotate_double (h + i * cols, cols, block, signs);
      for (int64_t i = 0; i < cols; i++)
        for (int64_t j = i + 1; j < cols; j++)
          {
            double tmp = h[i * cols + j];

            h[i * cols + j] = h[j * cols + i];
            h[j * cols + i] = tmp;
          }
      for (int64_t i = 0; i < cols; i++)
        rotate_double (h + i * cols, cols, block, signs);
      if (state->mean_sq != NULL && state->n_tokens > 0)
        for (int64_t j = 0; j < cols; j++)
          state->mean_sq[j] = h[j * cols + j] / (double) state->n_tokens;
    }
  else
    g_clear_pointer (&state->mean_sq, g_free);
  if (state->mean != NULL)
    rotate_double (state->mean, cols, block, signs);
  g_clear_pointer (&state->mean_abs, g_free);
  g_clear_pointer (&state->absmax, g_free);

  t->hadamard = TRUE;
  t->hadamard_seed = (guint64) seed;
  t->hadamard_block = block;
  t->rotate_first = FALSE;
  return TRUE;
}
