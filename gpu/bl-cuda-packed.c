/* bl-cuda-packed.c: a packed quantized tensor in GPU memory
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "bl-cuda-packed.h"
#include "bl-cuda-format-private.h"

#include <stddef.h>
#include <string.h>

#include "bl-error.h"

/**
 * SECTION:bl-cuda-packed
 * @title: BlCudaPacked
 *
 * The bytes bl_format_quantize() writes (core/bl-format-blocks.h), held in the memory of a
 * CUDA backend: made on the GPU from a buffer (bl_cuda_packed_quantize(), byte for byte the
 * reference's output) or uploaded from the host, decoded on the GPU, and read in place by
 * the packed GEMM kernels (bl-cuda-gemm.h). The backend must outlive it.
 */

struct _BlCudaPacked
{
  BlBackend *backend;
  BlFormatSpec spec;
  BlPackedHeader header;      /* the host copy, tensor_scale included */
  guint8 *data;               /* device: header.total_bytes bytes */
};

static BlCudaPacked *
packed_new (BlBackend            *backend,
            BlCudaContext        *ctx,
            const BlFormatSpec   *spec,
            const BlPackedHeader *h,
            GError              **error)
{
  BlCudaPacked *self = g_new0 (BlCudaPacked, 1);

  self->backend = backend;
  self->spec = *spec;
  self->header = *h;
  self->data = bl_cuda_alloc (ctx, (size_t) h->total_bytes, "a packed tensor", error);
  if (self->data == NULL)
    {
      g_free (self);
      return NULL;
    }
  return self;
}

/**
 * bl_cuda_packed_free:
 * @self: (nullable): a packed tensor
 */
void
bl_cuda_packed_free (BlCudaPacked *self)
{
  BlCudaContext *ctx;

  if (self == NULL)
    return;
  ctx = bl_cuda_context_from_backend (self->backend, NULL);
  if (ctx != NULL)
    bl_cuda_free (ctx, self->data);
  g_free (self);
}

/**
 * bl_cuda_packed_quantize:
 * @backend: a CUDA backend
 * @spec: the format
 * @src: n_rows × n_cols fp32 values on @backend
 * @n_rows: rows
 * @n_cols: columns
 * @error: return location for a #GError
 *
 * Quantizes on the GPU into the packed layout; bl_cuda_packed_download() gives the same
 * bytes as bl_format_quantize() on the host (NaN payloads aside). Waits for the GPU only
 * for NVFP4/NVINT4, whose tensor scale the host header carries.
 *
 * Returns: (transfer full) (nullable): the packed tensor
 */
BlCudaPacked *
bl_cuda_packed_quantize (BlBackend          *backend,
                         const BlFormatSpec *spec,
                         BlBuffer           *src,
                         gint64              n_rows,
                         gint64              n_cols,
                         GError            **error)
{
  g_autoptr(BlCudaPacked) self = NULL;
  BlCudaContext *ctx;
  BlCudaFormatCall call;
  const float *x;
  gboolean ok;

  g_return_val_if_fail (spec != NULL && src != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if ((ctx = bl_cuda_context_from_backend (backend, error)) == NULL)
    return NULL;
  if (!bl_cuda_format_call_init (&call, ctx, spec, n_rows, n_cols, error) ||
      !bl_cuda_buffer_check (src, (size_t) (n_rows * n_cols) * sizeof (float), "the input to quantize", error) ||
      (self = packed_new (backend, ctx, spec, &call.header, error)) == NULL)
    {
      bl_cuda_format_call_clear (&call);
      return NULL;
    }

  x = bl_cuda_buffer_get_data (src);
  ok = bl_cuda_check (ctx, cudaMemsetAsync (self->data, 0, (size_t) call.header.total_bytes, ctx->stream),
                      "clearing a packed tensor", error) &&
       bl_cuda_check (ctx, cudaMemcpyAsync (self->data, &call.header, sizeof call.header, cudaMemcpyHostToDevice,
                                            ctx->stream),
                      "writing a packed header", error) &&
       bl_cuda_format_call_params (&call, x, error) &&
       bl_cuda_check (ctx, bl_cuda_launch_format_pack (&call.format, &call.header, x, call.n4, self->data,
                                                       &call.scratch, ctx->stream),
                      "packing", error);
  if (ok && (spec->family == BL_FORMAT_NVFP4 || spec->family == BL_FORMAT_NVINT4))
    {
      /* the header carries s_T, computed on the GPU by the tensor-level pass */
      ok = bl_cuda_check (ctx, cudaMemcpyAsync (self->data + offsetof (BlPackedHeader, tensor_scale),
                                                call.scratch.tensor_scale, sizeof (float), cudaMemcpyDeviceToDevice,
                                                ctx->stream),
                          "storing the tensor scale", error) &&
           bl_cuda_check (ctx, cudaMemcpyAsync (&self->header.tensor_scale, call.scratch.tensor_scale,
                                                sizeof (float), cudaMemcpyDeviceToHost, ctx->stream),
                          "reading the tensor scale", error) &&
           bl_cuda_check (ctx, cudaStreamSynchronize (ctx->stream), "quantizing", error);
    }
  bl_cuda_format_call_clear (&call);
  if (!ok)
    return NULL;
  return g_steal_pointer (&self);
}

static gboolean
corrupt (GError     **error,
         const char  *what,
         guint64      offset)
{
  g_set_error (error, BL_ERROR, BL_ERROR_CORRUPT_FILE,
               "packed tensor is corrupt: %s (header byte offset %" G_GUINT64_FORMAT ")", what, offset);
  return FALSE;
}

/* the checks of bl_format_dequantize (): a header that does not match its own spec string
 * could send the kernels out of bounds */
static gboolean
check_header (const guint8    *packed,
              gsize            packed_size,
              BlPackedHeader  *h,
              BlFormatSpec    *spec,
              GError         **error)
{
  g_autoptr(GError) local_error = NULL;
  BlPackedHeader expect;

  if (packed_size < sizeof *h)
    return corrupt (error, "shorter than its header", 0);
  memcpy (h, packed, sizeof *h);
  if (h->magic != BL_PACKED_MAGIC)
    return corrupt (error, "bad magic", offsetof (BlPackedHeader, magic));
  if (h->version != BL_PACKED_VERSION)
    return corrupt (error, "unknown version", offsetof (BlPackedHeader, version));
  if (memchr (h->spec, '\0', sizeof h->spec) == NULL)
    return corrupt (error, "unterminated spec string", offsetof (BlPackedHeader, spec));
  if (!bl_format_spec_parse (h->spec, spec, &local_error))
    return corrupt (error, local_error->message, offsetof (BlPackedHeader, spec));
  if (h->n_rows <= 0 || h->n_cols <= 0 || h->n_rows > G_MAXINT64 / h->n_cols)
    return corrupt (error, "bad shape", offsetof (BlPackedHeader, n_rows));
  bl_format_packed_header_init (spec, h->n_rows, h->n_cols, &expect);
  expect.tensor_scale = h->tensor_scale;
  if (memcmp (&expect, h, sizeof *h) != 0)
    return corrupt (error, "header does not match its spec string", 0);
  if (packed_size < h->total_bytes)
    return corrupt (error, "shorter than the size its header states", offsetof (BlPackedHeader, total_bytes));
  return TRUE;
}

/**
 * bl_cuda_packed_upload:
 * @backend: a CUDA backend
 * @packed: (array length=packed_size): bytes written by bl_format_quantize()
 * @packed_size: their size
 * @error: return location for a #GError
 *
 * Checks the header as bl_format_dequantize() does (%BL_ERROR_CORRUPT_FILE) and copies the
 * tensor to the GPU.
 *
 * Returns: (transfer full) (nullable): the packed tensor
 */
BlCudaPacked *
bl_cuda_packed_upload (BlBackend     *backend,
                       const guint8  *packed,
                       gsize          packed_size,
                       GError       **error)
{
  g_autoptr(BlCudaPacked) self = NULL;
  BlCudaContext *ctx;
  BlPackedHeader h;
  BlFormatSpec spec;

  g_return_val_if_fail (packed != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if ((ctx = bl_cuda_context_from_backend (backend, error)) == NULL ||
      !check_header (packed, packed_size, &h, &spec, error) ||
      (self = packed_new (backend, ctx, &spec, &h, error)) == NULL ||
      !bl_cuda_check (ctx, cudaMemcpyAsync (self->data, packed, (size_t) h.total_bytes, cudaMemcpyHostToDevice,
                                            ctx->stream),
                      "uploading a packed tensor", error))
    return NULL;
  return g_steal_pointer (&self);
}

/**
 * bl_cuda_packed_download:
 * @self: a packed tensor
 * @dst: (array length=dst_size): room for bl_cuda_packed_get_size() bytes
 * @dst_size: its size
 * @error: return location for a #GError
 *
 * Waits for the queued work and copies the packed bytes to the host.
 *
 * Returns: %TRUE on success
 */
gboolean
bl_cuda_packed_download (BlCudaPacked  *self,
                         guint8        *dst,
                         gsize          dst_size,
                         GError       **error)
{
  BlCudaContext *ctx;

  g_return_val_if_fail (self != NULL && dst != NULL, FALSE);

  if (dst_size < self->header.total_bytes)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT,
                   "a buffer of %" G_GSIZE_FORMAT " bytes cannot hold the %" G_GUINT64_FORMAT " bytes of %s",
                   dst_size, (guint64) self->header.total_bytes, self->header.spec);
      return FALSE;
    }
  if ((ctx = bl_cuda_context_from_backend (self->backend, error)) == NULL)
    return FALSE;
  return bl_cuda_check (ctx, cudaMemcpyAsync (dst, self->data, (size_t) self->header.total_bytes,
                                              cudaMemcpyDeviceToHost, ctx->stream),
                        "downloading a packed tensor", error) &&
         bl_cuda_synchronize (ctx, error);
}

/**
 * bl_cuda_packed_dequantize:
 * @self: a packed tensor
 * @dst: n_rows × n_cols fp32 values on the same backend
 * @error: return location for a #GError
 *
 * Decodes on the GPU, bit for bit as bl_format_dequantize() (NaN payloads aside). An
 * int2+int4 tensor with more 4-bit groups than its header allows is %BL_ERROR_CORRUPT_FILE,
 * which needs a wait for the GPU; other families only queue the work.
 *
 * Returns: %TRUE on success
 */
gboolean
bl_cuda_packed_dequantize (BlCudaPacked  *self,
                           BlBuffer      *dst,
                           GError       **error)
{
  BlCudaContext *ctx;
  BlCudaFormatCall call;
  gint64 n;
  int32_t status = 0;
  gboolean ok;

  g_return_val_if_fail (self != NULL && dst != NULL, FALSE);

  n = self->header.n_rows * self->header.n_cols;
  if ((ctx = bl_cuda_context_from_backend (self->backend, error)) == NULL ||
      !bl_cuda_buffer_check (dst, (size_t) n * sizeof (float), "the dequantized output", error))
    return FALSE;
  if (!bl_cuda_format_call_init (&call, ctx, &self->spec, self->header.n_rows, self->header.n_cols, error))
    {
      bl_cuda_format_call_clear (&call);
      return FALSE;
    }
  ok = bl_cuda_check (ctx, bl_cuda_launch_format_unpack (&call.format, &self->header, self->data, call.n4,
                                                         bl_cuda_buffer_get_data (dst), &call.scratch, ctx->stream),
                      "dequantizing", error);
  if (ok && self->spec.family == BL_FORMAT_INT2_INT4)
    ok = bl_cuda_check (ctx, cudaMemcpyAsync (&status, call.scratch.status, sizeof status, cudaMemcpyDeviceToHost,
                                              ctx->stream),
                        "dequantizing", error) &&
         bl_cuda_check (ctx, cudaStreamSynchronize (ctx->stream), "dequantizing", error) &&
         (status == 0 || corrupt (error, "more 4-bit groups than the header allows", self->header.selectors_offset));
  bl_cuda_format_call_clear (&call);
  return ok;
}

/**
 * bl_cuda_packed_get_header:
 * @self: a packed tensor
 *
 * Returns: (transfer none): the host copy of its header
 */
const BlPackedHeader *
bl_cuda_packed_get_header (BlCudaPacked *self)
{
  g_return_val_if_fail (self != NULL, NULL);
  return &self->header;
}

/**
 * bl_cuda_packed_get_spec:
 * @self: a packed tensor
 *
 * Returns: (transfer none): its format
 */
const BlFormatSpec *
bl_cuda_packed_get_spec (BlCudaPacked *self)
{
  g_return_val_if_fail (self != NULL, NULL);
  return &self->spec;
}

/**
 * bl_cuda_packed_get_size:
 * @self: a packed tensor
 *
 * Returns: its size in bytes, header and padding included
 */
gsize
bl_cuda_packed_get_size (BlCudaPacked *self)
{
  g_return_val_if_fail (self != NULL, 0);
  return (gsize) self->header.total_bytes;
}

/**
 * bl_cuda_packed_get_data:
 * @self: a packed tensor
 *
 * Returns: the device address of its first byte (the header)
 */
gconstpointer
bl_cuda_packed_get_data (BlCudaPacked *self)
{
  g_return_val_if_fail (self != NULL, NULL);
  return self->data;
}
