/* bl-clip-mse.c: MSE-optimal range clipping per group
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * The grid search of IST-DASLab/gptq quant.py (Quantizer.find_params with mse=True): for
 * every group, shrink the range statistic by p = 1 − i/grid for i < max_shrink·grid and keep
 * the p with the least Σ|Q_p(w) − w|^norm (strictly smaller wins, so ties keep the wider
 * range). The defaults are the repository's: grid 100, max_shrink 0.8, norm 2.4. The format
 * spec's own "clip=mse" is the same search with norm 2 (bl-format.c); this step is the
 * repository's exact loss, and it replaces any clip option of the spec.
 */
#include "bl-quant-algo-private.h"

#include <math.h>

/**
 * bl_quant_clip_mse:
 * @state: the layer
 * @error: return location for a #GError
 *
 * Options "clip_grid" (100), "clip_max_shrink" (0.8), "clip_norm" (2.4).
 *
 * Returns: %TRUE on success
 */
gboolean
bl_quant_clip_mse (BlQuantState *state,
                   GError      **error)
{
  gint64 grid = 100;
  double max_shrink = 0.8, norm = 2.4;
  BlFormatSpec spec = *state->weight_spec;
  BlGroupQuant gq;
  int64_t rows = state->rows, cols = state->cols, gcols, steps;
  g_autofree float *src = NULL;
  g_autofree float *y = NULL;

  if (!bl_quant_option_int (state->options, "clip_grid", 1, 10000, &grid, error)
      || !bl_quant_option_double (state->options, "clip_max_shrink", 0.0, 1.0, &max_shrink, error)
      || !bl_quant_option_double (state->options, "clip_norm", 0.1, 16.0, &norm, error))
    return FALSE;
  spec.clip = BL_CLIP_NONE;
  if (!bl_group_quant_init (&gq, &spec, state->w, rows, cols, error))
    return FALSE;

  steps = MAX (1, (int64_t) (max_shrink * (double) grid));
  src = g_memdup2 (state->w, sizeof (float) * (gsize) (rows * cols));
  if (spec.granularity == BL_GRANULARITY_TENSOR)
    {
      /* one group: the whole tensor */
      rows = 1;
      cols = state->rows * state->cols;
    }
  gcols = spec.granularity == BL_GRANULARITY_GROUP ? spec.group_size : cols;
  y = g_new (float, gcols);

  for (int64_t r = 0; r < rows; r++)
    for (int64_t c0 = 0; c0 < cols; c0 += gcols)
      {
        int64_t len = MIN (gcols, cols - c0);
        const float *x = src + r * cols + c0;
        BlGroupParams best_p = { 0 };
        double best = INFINITY;

        for (int64_t i = 0; i < steps; i++)
          {
            BlGroupParams p;
            double err = 0.0;

            bl_group_quant_params (&gq, x, len, r, c0, 1.0 - (double) i / (double) grid, &p);
            bl_group_quant_fake (&gq, &p, x, len, r, c0, y);
            for (int64_t j = 0; j < len; j++)
              err += pow (fabs ((double) y[j] - (double) x[j]), norm);
            if (err < best)
              {
                best = err;
                best_p = p;
              }
          }
        bl_group_quant_fake (&gq, &best_p, x, len, r, c0, state->w + r * cols + c0);
      }
  bl_group_quant_clear (&gq);
  return TRUE;
}
