/* bl-smoothquant.c: SmoothQuant's per-channel difficulty migration
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * Xiao et al., "SmoothQuant: Accurate and Efficient Post-Training Quantization for Large
 * Language Models", ICML 2023, arXiv 2211.10438, Eq. 4, as mit-han-lab/smoothquant
 * smooth.py computes it: s_j = max|X_j|^α / max|W_j|^(1−α), the weight maximum clamped at
 * 1e-5 and s clamped at 1e-5; then W·diag(s) and X·diag(s)⁻¹, so (X/s)·(W·diag(s))ᵀ = X·Wᵀ.
 *
 * The paper folds 1/s into the preceding LayerNorm, which is exact only when every layer
 * reading that norm's output (q/k/v, gate/up) uses the same s, computed from the maximum of
 * their weights. This step works on one layer, so s comes from this layer's weight alone and
 * the division of the input is returned as BlInputTransform.scale, applied online by the
 * forward pass (per layer, since each layer gets its own copy of the input). The products
 * are the same either way; only where the division happens differs.
 */
#include "bl-quant-algo-private.h"

#include <math.h>

#include "bl-error.h"

/**
 * bl_quant_smoothquant:
 * @state: the layer; needs the per-channel absmax of its input
 * @error: return location for a #GError
 *
 * Option "alpha" (0.5), the migration strength in [0, 1].
 *
 * Returns: %TRUE on success
 */
gboolean
bl_quant_smoothquant (BlQuantState *state,
                      GError      **error)
{
  double alpha = 0.5;
  int64_t rows = state->rows, cols = state->cols;
  g_autofree double *s = NULL;

  if (!bl_quant_option_double (state->options, "alpha", 0.0, 1.0, &alpha, error))
    return FALSE;
  if (state->absmax == NULL)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT,
                   "SmoothQuant needs the per-channel max |x| of the input, which a preceding "
                   "rotation does not carry over");
      return FALSE;
    }
  s = g_new (double, cols);
  for (int64_t j = 0; j < cols; j++)
    {
      double wmax = 0.0;

      for (int64_t r = 0; r < rows; r++)
        wmax = MAX (wmax, fabs ((double) state->w[r * cols + j]));
      s[j] = MAX (pow (state->absmax[j], alpha) / pow (MAX (wmax, 1e-5), 1.0 - alpha), 1e-5);
    }
  return bl_quant_state_scale_inputs (state, s, error);
}
