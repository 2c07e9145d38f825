/* bl-bias-correction.c: removing the expected output shift that weight rounding causes
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * Nagel et al., "Data-Free Quantization Through Weight Equalization and Bias Correction",
 * ICCV 2019, §4.2, with the expectation taken over calibration inputs (the empirical bias
 * correction; AdaQuant's bias tuning b ← b − E[y_q − y], methods.md §7): rounding changes the
 * layer's output by (W_q − W)·x, whose mean over calibration tokens is (W_q − W)·E[x], so
 *
 *   b ← b − (W_q − W)·E[x]
 *
 * After transforms the layer computes W_q·T(x), so the shift is measured end to end as
 * W_q·E[T(x)] − W·E[x], with E[T(x)] carried through the transforms exactly (they are
 * linear). Llama-family linear layers have no bias: then the
 * correction is returned as BlInputTransform.bias, an output bias the forward pass adds
 * after the matmul.
 */
#include "bl-quant-algo-private.h"

#include "bl-error.h"

/**
 * bl_quant_bias_correction:
 * @state: the layer after its quantizing step; needs the input mean per channel
 * @error: return location for a #GError
 *
 * Returns: %TRUE on success
 */
gboolean
bl_quant_bias_correction (BlQuantState *state,
                          GError      **error)
{
  int64_t rows = state->rows, cols = state->cols;
  float *out;

  if (state->mean == NULL || state->mean_orig == NULL)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT,
                   "bias correction needs the input mean per channel from calibration");
      return FALSE;
    }
  if (state->bias != NULL)
    out = state->bias;
  else
    {
      if (state->transform->bias == NULL)
        state->transform->bias = g_new0 (float, rows);
      out = state->transform->bias;
    }
  for (int64_t r = 0; r < rows; r++)
    {
      const float *wq = state->w + r * cols, *w = state->w_orig + r * cols;
      double shift = 0.0;

      for (int64_t j = 0; j < cols; j++)
        shift += (double) wq[j] * state->mean[j] - (double) w[j] * state->mean_orig[j];
      out[r] = (float) ((double) out[r] - shift);
    }
  return TRUE;
}
