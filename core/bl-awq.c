/* bl-awq.c: AWQ's activation-aware per-channel scale search
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * Lin et al., "AWQ: Activation-aware Weight Quantization for LLM Compression and
 * Acceleration", MLSys 2024, arXiv 2306.00978, §3.2, as mit-han-lab/llm-awq auto_scale.py
 * (_search_module_scale) runs it: with x̄_j = mean |x_j| over the calibration tokens, for
 * α = 0, 1/grid, …, (grid−1)/grid try
 *
 *   s = max(x̄^α, 1e-4),  s ← s / √(max s · min s),  W' = Q(W·diag(s))·diag(s)⁻¹
 *
 * and keep the α with the least output error. Here the error is the layer's own,
 * Σ_t ‖(W' − W)·x_t‖² = Σ_r Δ_r·H·Δ_rᵀ with H = Σ x xᵀ from calibration (exact for the
 * calibration tokens), where llm-awq measures the output of the whole module that shares the
 * scale (q/k/v together through attention, gate/up through the MLP). A per-layer scale
 * cannot be folded into the shared RMSNorm, so the result is W ← Q(W·diag(s)) with the input
 * divided by s online (BlInputTransform.scale); W'·x equals Q(W·diag(s))·(x/s) exactly in
 * real arithmetic. α = 0 gives s = 1, so AWQ is never worse than RTN on the calibration
 * loss. llm-awq's separate clipping search (auto_clip) is not part of this step; "clip-mse"
 * is the related per-group clip search.
 */
#include "bl-quant-algo-private.h"

#include <math.h>
#include <string.h>

#include "bl-error.h"

/**
 * bl_quant_awq:
 * @state: the layer; needs the input's mean |x| per channel and its Hessian
 * @error: return location for a #GError
 *
 * Option "awq_grid" (20), the number of α values tried.
 *
 * Returns: %TRUE on success
 */
gboolean
bl_quant_awq (BlQuantState *state,
              GError      **error)
{
  gint64 grid = 20;
  int64_t rows = state->rows, cols = state->cols, count = rows * cols;
  g_autofree double *s = NULL;
  g_autofree double *best_s = NULL;
  g_autofree float *trial = NULL;
  g_autofree float *deq = NULL;
  int n_threads = (int) MIN (g_get_num_processors (), 8);
  double best = INFINITY;

  if (!bl_quant_option_int (state->options, "awq_grid", 1, 1000, &grid, error))
    return FALSE;
  if (state->mean_abs == NULL || state->hessian == NULL)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT,
                   "AWQ needs the input's mean |x| per channel and its Hessian (calibrate with "
                   "BL_CALIB_HESSIAN; a preceding rotation does not carry mean |x| over)");
      return FALSE;
    }
  s = g_new (double, cols);
  best_s = g_new (double, cols);
  trial = g_new (float, count);
  deq = g_new (float, count);

  for (gint64 g = 0; g < grid; g++)
    {
      double ratio = (double) g / (double) grid, smax = 0.0, smin = INFINITY, norm, err;

      for (int64_t j = 0; j < cols; j++)
        {
          s[j] = MAX (pow (state->mean_abs[j], ratio), 1e-4);
          smax = MAX (smax, s[j]);
          smin = MIN (smin, s[j]);
        }
      norm = sqrt (smax * smin);
      for (int64_t j = 0; j < cols; j++)
        s[j] = (double) (float) (s[j] / norm);
      for (int64_t r = 0; r < rows; r++)
        for (int64_t j = 0; j < cols; j++)
          trial[r * cols + j] = state->w[r * cols + j] * (float) s[j];
      if (!bl_format_fake_quant (state->weight_spec, trial, deq, rows, cols, n_threads, error))
        return FALSE;
      for (int64_t r = 0; r < rows; r++)
        for (int64_t j = 0; j < cols; j++)
          deq[r * cols + j] /= (float) s[j];
      err = bl_quant_output_error (deq, state->w, state->hessian, rows, cols);
      if (err < best)
        {
          best = err;
          memcpy (best_s, s, sizeof (double) * (gsize) cols);
        }
    }

  if (!bl_quant_state_scale_inputs (state, best_s, error))
    return FALSE;
  return bl_format_fake_quant (state->weight_spec, state->w, state->w, rows, cols, n_threads, error);
}
