/* bl-cuda-format.c: the host side of the format kernels
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "bl-cuda-format-private.h"

#include <string.h>

#include "bl-error.h"

/**
 * bl_cuda_format_call_init:
 * @call: (out caller-allocates): the call
 * @ctx: the context to run on
 * @spec: the format
 * @n_rows: rows
 * @n_cols: columns
 * @error: return location for a #GError
 *
 * Describes @spec for the kernels, allocates the call's device scratch and copies the
 * description to the device. Clear with bl_cuda_format_call_clear() also after a failure.
 *
 * Returns: %TRUE on success
 */
gboolean
bl_cuda_format_call_init (BlCudaFormatCall   *call,
                          BlCudaContext      *ctx,
                          const BlFormatSpec *spec,
                          gint64              n_rows,
                          gint64              n_cols,
                          GError            **error)
{
  size_t bytes, sort_temp;
  int64_t n;

  memset (call, 0, sizeof *call);
  call->ctx = ctx;
  if (n_rows <= 0 || n_cols <= 0 || n_rows > G_MAXINT64 / n_cols)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT,
                   "invalid tensor shape %" G_GINT64_FORMAT " × %" G_GINT64_FORMAT, n_rows, n_cols);
      return FALSE;
    }
  if (spec->family >= BL_FORMAT_N_FAMILIES)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_UNSUPPORTED_FORMAT, "unknown format family %d", (int) spec->family);
      return FALSE;
    }
  call->spec = *spec;
  bl_format_packed_header_init (spec, n_rows, n_cols, &call->header);
  bl_cuda_format_describe (spec, &call->header, &call->format);
  call->n4 = bl_cuda_format_n4 (spec, call->format.n_groups);
  n = call->format.n_rows * call->format.n_cols;
  sort_temp = call->format.family == BL_CUDA_FAMILY_TERNARY && call->format.ternary_stat == BL_CUDA_TERNARY_MEDIAN
              && call->format.tensor_group ? bl_cuda_format_sort_temp_size (n) : 0;

  bytes = bl_cuda_format_layout_scratch (&call->format, bl_cuda_format_stats_size (), sort_temp, NULL,
                                         &call->scratch);
  call->block = bl_cuda_alloc (ctx, bytes, "format kernel scratch", error);
  if (call->block == NULL)
    return FALSE;
  bl_cuda_format_layout_scratch (&call->format, bl_cuda_format_stats_size (), sort_temp, call->block,
                                 &call->scratch);
  return bl_cuda_check (ctx, cudaMemcpyAsync ((void *) call->scratch.format, &call->format, sizeof call->format,
                                              cudaMemcpyHostToDevice, ctx->stream),
                        "uploading a format description", error);
}

/**
 * bl_cuda_format_call_params:
 * @call: an initialised call
 * @x: device address of the n_rows × n_cols input
 * @error: return location for a #GError
 *
 * Queues the tensor-level pass (NVFP4's s_T, int2+int4's ranking, whole-tensor statistics)
 * and every group's parameters.
 *
 * Returns: %TRUE when the kernels were queued
 */
gboolean
bl_cuda_format_call_params (BlCudaFormatCall  *call,
                            const float       *x,
                            GError           **error)
{
  BlCudaContext *ctx = call->ctx;

  return bl_cuda_check (ctx, bl_cuda_launch_format_prepare (&call->format, x, call->n4, &call->scratch, ctx->stream),
                        "the tensor-level format pass", error) &&
         bl_cuda_check (ctx, bl_cuda_launch_format_params (&call->format, x, &call->scratch, ctx->stream),
                        "the group parameters", error);
}

/**
 * bl_cuda_format_call_clear:
 * @call: a call
 *
 * Gives the scratch back after the queued work.
 */
void
bl_cuda_format_call_clear (BlCudaFormatCall *call)
{
  if (call->ctx != NULL)
    bl_cuda_free (call->ctx, call->block);
  call->block = NULL;
}

/**
 * bl_cuda_format_fake_quant:
 * @backend: a CUDA backend
 * @spec: the format
 * @src: n_rows × n_cols fp32 values on @backend
 * @dst: output of the same size on @backend; may be @src
 * @n_rows: rows (output channels, or tokens)
 * @n_cols: columns (groups run along a row)
 * @error: return location for a #GError
 *
 * Quantizes and dequantizes on the GPU: the result equals bl_format_fake_quant() bit for
 * bit (NaN payloads aside). The work is queued on the backend's stream; a failure inside a
 * kernel is reported by the next bl_backend_synchronize().
 *
 * Returns: %TRUE when the work was queued
 */
gboolean
bl_cuda_format_fake_quant (BlBackend          *backend,
                           const BlFormatSpec *spec,
                           BlBuffer           *src,
                           BlBuffer           *dst,
                           gint64              n_rows,
                           gint64              n_cols,
                           GError            **error)
{
  BlCudaContext *ctx;
  BlCudaFormatCall call;
  const float *x;
  float *copy = NULL;
  gboolean ok;

  g_return_val_if_fail (spec != NULL && src != NULL && dst != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if ((ctx = bl_cuda_context_from_backend (backend, error)) == NULL)
    return FALSE;
  if (!bl_cuda_format_call_init (&call, ctx, spec, n_rows, n_cols, error) ||
      !bl_cuda_buffer_check (src, (size_t) (n_rows * n_cols) * sizeof (float), "the fake-quant input", error) ||
      !bl_cuda_buffer_check (dst, (size_t) (n_rows * n_cols) * sizeof (float), "the fake-quant output", error))
    {
      bl_cuda_format_call_clear (&call);
      return FALSE;
    }

  x = bl_cuda_buffer_get_data (src);
  /* a complex-2bit element reads its pair partner, which in place may already be written */
  if (spec->family == BL_FORMAT_COMPLEX_2BIT && bl_cuda_buffer_get_data (dst) == bl_cuda_buffer_get_data (src))
    {
      size_t bytes = (size_t) (n_rows * n_cols) * sizeof (float);

      copy = bl_cuda_alloc (ctx, bytes, "a copy of the fake-quant input", error);
      if (copy == NULL ||
          !bl_cuda_check (ctx, cudaMemcpyAsync (copy, x, bytes, cudaMemcpyDeviceToDevice, ctx->stream),
                          "copying the fake-quant input", error))
        {
          bl_cuda_free (ctx, copy);
          bl_cuda_format_call_clear (&call);
          return FALSE;
        }
      x = copy;
    }

  ok = bl_cuda_format_call_params (&call, x, error) &&
       bl_cuda_check (ctx, bl_cuda_launch_format_fake (&call.format, x, bl_cuda_buffer_get_data (dst), &call.scratch,
                                                       ctx->stream),
                      "fake-quant", error);
  bl_cuda_free (ctx, copy);
  bl_cuda_format_call_clear (&call);
  return ok;
}
