/* bl-gptq.c: GPTQ (Frantar, Ashkboos, Hoefler, Alistarh, "GPTQ: Accurate Post-Training
 * Quantization for Generative Pre-trained Transformers", ICLR 2023, arXiv 2210.17323)
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * Algorithm 1 of the paper as the authors' code runs it (IST-DASLab/gptq, gptq.py
 * fasterquant): columns are rounded left to right (or by decreasing diag(H) with act-order),
 * and each column's rounding error, divided by the diagonal of the upper Cholesky factor U
 * of H⁻¹, is spread over the columns not yet rounded through U's row. Updates are applied
 * lazily: inside a block of block_size columns at once, to the rest of the matrix once per
 * block (one GEMM). Kept from the reference on purpose:
 *
 *   - dead inputs (diag H = 0) get H_jj = 1 and their weight column zeroed;
 *   - damping adds damp·mean(diag H) to the diagonal;
 *   - per-channel and per-tensor parameters come from the weight as given; per-group
 *     parameters are found at each group's first column from the weight as it stood when the
 *     current block began (the reference reads W, not the block's working copy W1);
 *   - "static_groups" finds every group's parameters up front, after dead columns are zeroed.
 *
 * Act-order with groups: the reference without static groups makes groups of consecutive
 * columns in the permuted order, which is not the format's grouping (groups of consecutive
 * input channels) and so cannot be stored in it. Here act-order with a grouped format always
 * uses static groups (the reference's `--static-groups`, also what GPTQModel recommends for
 * act-order kernels), so the result stays exactly representable in the spec.
 *
 * Precision: H, its factor and the weight updates are fp64; each element is rounded in fp32
 * through the format's own encode/decode (bl-group-quant.c), so the grid is the format's.
 * tools/reference-gptq is the independent torch transcription the tests compare against.
 */
#include "bl-quant-algo-private.h"

#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bl-error.h"

typedef struct
{
  double diag;
  int64_t index;
} DiagEntry;

/* decreasing diag(H), ties by index: a stable order (torch.argsort(descending=True, stable=True)) */
static int
cmp_diag_desc (const void *a,
               const void *b)
{
  const DiagEntry *ea = a, *eb = b;

  if (ea->diag != eb->diag)
    return ea->diag < eb->diag ? 1 : -1;
  return (ea->index > eb->index) - (ea->index < eb->index);
}

/* H ← the upper Cholesky factor U of H⁻¹ (torch: cholesky, cholesky_inverse, cholesky upper) */
static gboolean
inverse_cholesky_upper (double   *h,
                        int64_t   n,
                        GError  **error)
{
  lapack_int info;

  info = LAPACKE_dpotrf (LAPACK_ROW_MAJOR, 'L', (lapack_int) n, h, (lapack_int) n);
  if (info == 0)
    info = LAPACKE_dpotri (LAPACK_ROW_MAJOR, 'L', (lapack_int) n, h, (lapack_int) n);
  if (info == 0)
    {
      for (int64_t i = 0; i < n; i++)
        for (int64_t j = i + 1; j < n; j++)
          h[i * n + j] = h[j * n + i];
      info = LAPACKE_dpotrf (LAPACK_ROW_MAJOR, 'U', (lapack_int) n, h, (lapack_int) n);
    }
  if (info != 0)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT,
                   "the damped Hessian is not positive definite (LAPACK info %d); raise “damp”",
                   (int) info);
      return FALSE;
    }
  for (int64_t i = 0; i < n; i++)
    for (int64_t j = 0; j < i; j++)
      h[i * n + j] = 0.0;
  return TRUE;
}

/* the parameters of every row's group starting at column @col0 of @w (doubles, row stride
 * @ld), fitted to its float values */
static void
group_params_rows (const BlGroupQuant *gq,
                   const double       *w,
                   int64_t             ld,
                   int64_t             rows,
                   int64_t             col0,
                   int64_t             len,
                   float              *buf,
                   BlGroupParams      *out)
{
  for (int64_t r = 0; r < rows; r++)
    {
      for (int64_t j = 0; j < len; j++)
        buf[j] = (float) w[r * ld + j];
      bl_group_quant_params (gq, buf, len, r, col0, 1.0, &out[r]);
    }
}

/**
 * bl_quant_gptq:
 * @state: the layer; needs the Hessian of its input
 * @error: return location for a #GError
 *
 * GPTQ with options "damp" (default 0.01), "act_order" (false), "block_size" (128) and
 * "static_groups" (false). See the file comment for the reference it follows.
 *
 * Returns: %TRUE on success
 */
gboolean
bl_quant_gptq (BlQuantState *state,
               GError      **error)
{
  int64_t rows = state->rows, n = state->cols;
  double damp_frac = 0.01, mean_diag = 0.0;
  gint64 block_size = 128;
  gboolean act_order = FALSE, static_groups = FALSE, grouped;
  g_autofree double *h = NULL;
  g_autofree double *w = NULL;
  g_autofree double *w1 = NULL;
  g_autofree double *err1 = NULL;
  g_autofree int64_t *perm = NULL;
  g_autofree BlGroupParams *row_params = NULL;
  g_autofree BlGroupParams *static_params = NULL;
  g_autofree float *buf = NULL;
  g_autofree float *q = NULL;
  BlGroupQuant gq;
  int64_t gcols, n_groups;

  if (!bl_quant_option_double (state->options, "damp", 0.0, 1.0, &damp_frac, error)
      || !bl_quant_option_bool (state->options, "act_order", &act_order, error)
      || !bl_quant_option_int (state->options, "block_size", 1, 1 << 20, &block_size, error)
      || !bl_quant_option_bool (state->options, "static_groups", &static_groups, error))
    return FALSE;
  if (state->hessian == NULL)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT,
                   "GPTQ needs the Hessian of the layer's input (calibrate with BL_CALIB_HESSIAN)");
      return FALSE;
    }
  if (!bl_group_quant_init (&gq, state->weight_spec, state->w, rows, n, error))
    return FALSE;

  grouped = state->weight_spec->granularity == BL_GRANULARITY_GROUP;
  gcols = bl_group_quant_group_cols (&gq);
  n_groups = grouped ? (n + gcols - 1) / gcols : 1;
  if (grouped && act_order)
    static_groups = TRUE;
  static_groups = static_groups && grouped;

  h = g_memdup2 (state->hessian, sizeof (double) * (gsize) (n * n));
  w = g_new (double, rows * n);
  for (int64_t i = 0; i < rows * n; i++)
    w[i] = state->w[i];
  buf = g_new (float, n);
  row_params = g_new0 (BlGroupParams, rows);

  /* per-channel / per-tensor parameters from the weight as given (the reference's
   * find_params(W) before anything else) */
  if (!grouped)
    group_params_rows (&gq, w, n, rows, 0, n, buf, row_params);

  for (int64_t j = 0; j < n; j++)
    if (h[j * n + j] == 0.0)
      {
        h[j * n + j] = 1.0;
        for (int64_t r = 0; r < rows; r++)
          w[r * n + j] = 0.0;
      }

  if (static_groups)
    {
      static_params = g_new0 (BlGroupParams, rows * n_groups);
      for (int64_t g = 0; g < n_groups; g++)
        {
          int64_t col0 = g * gcols, len = MIN (gcols, n - col0);

          for (int64_t r = 0; r < rows; r++)
            {
              for (int64_t j = 0; j < len; j++)
                buf[j] = (float) w[r * n + col0 + j];
              bl_group_quant_params (&gq, buf, len, r, col0, 1.0, &static_params[r * n_groups + g]);
            }
        }
    }

  perm = g_new (int64_t, n);
  for (int64_t j = 0; j < n; j++)
    perm[j] = j;
  if (act_order)
    {
      g_autofree DiagEntry *diag = g_new (DiagEntry, n);
      g_autofree double *hp = g_new (double, n * n);
      g_autofree double *wp = g_new (double, rows * n);

      for (int64_t j = 0; j < n; j++)
        diag[j] = (DiagEntry) { h[j * n + j], j };
      qsort (diag, (size_t) n, sizeof *diag, cmp_diag_desc);
      for (int64_t j = 0; j < n; j++)
        perm[j] = diag[j].index;
      for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++)
          hp[i * n + j] = h[perm[i] * n + perm[j]];
      for (int64_t r = 0; r < rows; r++)
        for (int64_t j = 0; j < n; j++)
          wp[r * n + j] = w[r * n + perm[j]];
      memcpy (h, hp, sizeof (double) * (gsize) (n * n));
      memcpy (w, wp, sizeof (double) * (gsize) (rows * n));
    }

  for (int64_t j = 0; j < n; j++)
    mean_diag += h[j * n + j];
  mean_diag /= (double) n;
  for (int64_t j = 0; j < n; j++)
    h[j * n + j] += damp_frac * mean_diag;
  if (!inverse_cholesky_upper (h, n, error))
    {
      bl_group_quant_clear (&gq);
      return FALSE;
    }

  q = g_new (float, rows * n);
  w1 = g_new (double, rows * block_size);
  err1 = g_new (double, rows * block_size);
  for (int64_t i1 = 0; i1 < n; i1 += block_size)
    {
      int64_t i2 = MIN (i1 + block_size, n), count = i2 - i1;

      for (int64_t r = 0; r < rows; r++)
        memcpy (w1 + r * count, w + r * n + i1, sizeof (double) * (gsize) count);
      for (int64_t i = 0; i < count; i++)
        {
          int64_t col = i1 + i, orig = perm[col];
          const double *u = h + col * n;
          double d = u[col];

          if (grouped && !static_groups && col % gcols == 0)
            group_params_rows (&gq, w + col, n, rows, col, MIN (gcols, n - col), buf, row_params);
          for (int64_t r = 0; r < rows; r++)
            {
              const BlGroupParams *p = static_groups ? &static_params[r * n_groups + orig / gcols]
                                                     : &row_params[r];
              double *wr = w1 + r * count, err;
              float x = (float) wr[i], y;

              bl_group_quant_fake (&gq, p, &x, 1, r, orig, &y);
              q[r * n + col] = y;
              err = (wr[i] - (double) y) / d;
              for (int64_t k = i; k < count; k++)
                wr[k] -= err * u[i1 + k];
              err1[r * count + i] = err;
            }
        }
      /* W[:, i2:] −= Err1 · U[i1:i2, i2:] */
      if (i2 < n)
        cblas_dgemm (CblasRowMajor, CblasNoTrans, CblasNoTrans, (int) rows, (int) (n - i2),
                     (int) count, -1.0, err1, (int) count, h + i1 * n + i2, (int) n, 1.0,
                     w + i2, (int) n);
    }

  for (int64_t r = 0; r < rows; r++)
    for (int64_t j = 0; j < n; j++)
      state->w[r * n + perm[j]] = q[r * n + j];
  bl_group_quant_clear (&gq);
  return TRUE;
}
