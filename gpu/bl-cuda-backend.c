/* bl-cuda-backend.c: the CUDA backend (cuBLAS products, gpu/ kernels, one stream per context)
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "bl-cuda-backend-private.h"
#include "bl-cuda-kernels-private.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bl-error.h"

/**
 * SECTION:bl-cuda-backend
 * @title: the CUDA backend
 *
 * Two #BlBackendClass vtables over one implementation: "cuda" computes the matrix products
 * in fp32 (cuBLAS CUBLAS_COMPUTE_32F), "cuda-bf16" on the bf16 tensor cores with fp32
 * accumulation (CUBLAS_COMPUTE_32F_FAST_16BF); activations are fp32 in both. A context owns
 * one device (the first, or $BITLENS_CUDA_DEVICE), one non-blocking stream on which every op
 * is queued in order, a cuBLAS and a cuBLASLt handle, and takes its buffers from the
 * device's stream-ordered memory pool, whose release threshold is raised so that freed
 * blocks stay cached for the next window instead of going back to the driver.
 *
 * Compute ops return nothing (#BlBackendClass): a failed launch or cuBLAS call is kept as
 * the first error and reported by the next synchronize, download or nll; an error inside a
 * kernel surfaces there too, from the stream. bl_backend_cuda_register() adds both classes
 * to the core's registry; "auto" picks "cuda" and falls back to the CPU when no usable
 * device is found (bl_backend_new() says so in a message); "cuda-bf16" is used by name.
 */

#define LT_WORKSPACE_BYTES (32u << 20)
/* the attention scores and the vocabulary logits are computed in slices of at most this */
#define SLICE_BYTES ((size_t) 128 << 20)

static const BlBackendClass cuda_class;
static const BlBackendClass cuda_bf16_class;

/* ------------------------------------------------------------------------------------------ */
/* errors and memory */

static void
cuda_set_error (BlCudaContext  *ctx,
                GError        **error,
                int             code,
                const char     *what,
                const char     *detail)
{
  GError *e = g_error_new (BL_ERROR, code, "CUDA device %d (%s): %s failed: %s", ctx->device,
                           ctx->device_name, what, detail);

  if (error != NULL)
    g_propagate_error (error, e);
  else if (ctx->error == NULL)
    ctx->error = e;
  else
    g_error_free (e);
}

/**
 * bl_cuda_check:
 * @ctx: a context
 * @status: what a CUDA runtime call returned
 * @what: the operation, for the message
 * @error: (nullable): where to report; with %NULL the error is kept in @ctx for the next
 *   synchronize
 *
 * Returns: whether @status is cudaSuccess
 */
gboolean
bl_cuda_check (BlCudaContext  *ctx,
               cudaError_t     status,
               const char     *what,
               GError        **error)
{
  g_autofree char *detail = NULL;

  if (status == cudaSuccess)
    return TRUE;
  detail = g_strdup_printf ("%s (%s)", cudaGetErrorString (status), cudaGetErrorName (status));
  cuda_set_error (ctx, error, status == cudaErrorMemoryAllocation ? BL_ERROR_OUT_OF_MEMORY : BL_ERROR_GPU,
                  what, detail);
  return FALSE;
}

/**
 * bl_cuda_check_blas:
 * @ctx: a context
 * @status: what a cuBLAS or cuBLASLt call returned
 * @what: the operation
 * @error: (nullable): as bl_cuda_check()
 *
 * Returns: whether @status is CUBLAS_STATUS_SUCCESS
 */
gboolean
bl_cuda_check_blas (BlCudaContext  *ctx,
                    cublasStatus_t  status,
                    const char     *what,
                    GError        **error)
{
  if (status == CUBLAS_STATUS_SUCCESS)
    return TRUE;
  cuda_set_error (ctx, error, status == CUBLAS_STATUS_ALLOC_FAILED ? BL_ERROR_OUT_OF_MEMORY : BL_ERROR_GPU, what,
                  cublasGetStatusString (status));
  return FALSE;
}

/* hands over the first error a compute op kept since the last report */
static gboolean
take_error (BlCudaContext  *ctx,
            GError        **error)
{
  if (ctx->error == NULL)
    return TRUE;
  g_propagate_error (error, g_steal_pointer (&ctx->error));
  return FALSE;
}

/**
 * bl_cuda_alloc:
 * @ctx: a context
 * @bytes: size
 * @what: what the memory is for, for the message
 * @error: return location for a #GError
 *
 * Stream-ordered device memory from the pool (plain cudaMalloc where the device has no
 * pools). Out of memory is %BL_ERROR_OUT_OF_MEMORY with the device's free and total memory.
 *
 * Returns: (nullable): device memory, or %NULL with @error set
 */
void *
bl_cuda_alloc (BlCudaContext  *ctx,
               size_t          bytes,
               const char     *what,
               GError        **error)
{
  void *p = NULL;
  cudaError_t status;

  /* every buffer gets an address of its own, even an empty one */
  bytes = MAX (bytes, 256);
  status = ctx->use_pool ? cudaMallocAsync (&p, bytes, ctx->stream) : cudaMalloc (&p, bytes);
  if (status != cudaSuccess)
    {
      size_t free_bytes = 0, total_bytes = 0;

      /* an allocation failure is not sticky; clear it so that later calls are not blamed */
      cudaGetLastError ();
      cudaMemGetInfo (&free_bytes, &total_bytes);
      g_set_error (error, BL_ERROR,
                   status == cudaErrorMemoryAllocation ? BL_ERROR_OUT_OF_MEMORY : BL_ERROR_GPU,
                   "CUDA device %d (%s): cannot allocate %.1f MiB for %s: %s (%.1f MiB free of %.1f MiB)",
                   ctx->device, ctx->device_name, bytes / 1048576.0, what, cudaGetErrorString (status),
                   free_bytes / 1048576.0, total_bytes / 1048576.0);
      return NULL;
    }
  return p;
}

/**
 * bl_cuda_free:
 * @ctx: the context @data came from
 * @data: (nullable): memory from bl_cuda_alloc()
 *
 * Gives @data back after the work queued so far.
 */
void
bl_cuda_free (BlCudaContext *ctx,
              void          *data)
{
  if (data == NULL)
    return;
  if (ctx->use_pool)
    bl_cuda_check (ctx, cudaFreeAsync (data, ctx->stream), "cudaFreeAsync", NULL);
  else
    bl_cuda_check (ctx, cudaFree (data), "cudaFree", NULL);
}

/**
 * bl_cuda_scratch_reserve:
 * @ctx: a context
 * @scratch: a scratch area of @ctx
 * @bytes: the size needed
 * @what: what it is for
 * @error: (nullable): where to report; %NULL keeps the error for the next synchronize
 *
 * Grows @scratch to @bytes. Stream order makes it safe to drop the old area while queued
 * work still reads it.
 *
 * Returns: %TRUE when @scratch holds at least @bytes
 */
gboolean
bl_cuda_scratch_reserve (BlCudaContext  *ctx,
                         BlCudaScratch  *scratch,
                         size_t          bytes,
                         const char     *what,
                         GError        **error)
{
  GError *local = NULL;
  void *p;

  if (bytes <= scratch->bytes)
    return TRUE;
  bl_cuda_free (ctx, scratch->data);
  scratch->data = NULL;
  scratch->bytes = 0;
  p = bl_cuda_alloc (ctx, bytes, what, &local);
  if (p == NULL)
    {
      if (error != NULL)
        g_propagate_error (error, local);
      else if (ctx->error == NULL)
        ctx->error = local;
      else
        g_error_free (local);
      return FALSE;
    }
  scratch->data = p;
  scratch->bytes = bytes;
  return TRUE;
}

/**
 * bl_cuda_buffer_check:
 * @buffer: a CUDA buffer
 * @bytes: the bytes an operation will touch
 * @what: the operand, for the message
 * @error: return location for a #GError
 *
 * Returns: %TRUE when @buffer holds @bytes, else %FALSE with %BL_ERROR_INVALID_ARGUMENT
 */
gboolean
bl_cuda_buffer_check (BlBuffer  *buffer,
                      size_t     bytes,
                      const char *what,
                      GError   **error)
{
  BlCudaBuffer *b = (BlCudaBuffer *) buffer;

  if (b != NULL && b->n * sizeof (float) >= bytes)
    return TRUE;
  g_set_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT,
               "%s needs %" G_GSIZE_FORMAT " bytes, but its CUDA buffer holds %" G_GSIZE_FORMAT, what, bytes,
               b != NULL ? b->n * sizeof (float) : 0);
  return FALSE;
}

/* ------------------------------------------------------------------------------------------ */
/* device discovery */

/* the device the backend uses: $BITLENS_CUDA_DEVICE or 0, which must exist and be sm_80+ */
static gboolean
pick_device (int                    *out_device,
             struct cudaDeviceProp  *prop,
             GError                **error)
{
  const char *env = g_getenv ("BITLENS_CUDA_DEVICE");
  int count = 0;
  guint64 device = 0;
  cudaError_t status = cudaGetDeviceCount (&count);

  if (status != cudaSuccess || count == 0)
    {
      /* no driver or no device: clear the error so that nothing later trips over it */
      cudaGetLastError ();
      g_set_error (error, BL_ERROR, BL_ERROR_GPU, "no CUDA device (cudaGetDeviceCount: %s)",
                   status != cudaSuccess ? cudaGetErrorString (status) : "no devices found");
      return FALSE;
    }
  if (env != NULL && (!g_ascii_string_to_unsigned (env, 10, 0, (guint64) count - 1, &device, NULL)))
    {
      g_set_error (error, BL_ERROR, BL_ERROR_GPU,
                   "BITLENS_CUDA_DEVICE=%s is not a device index (this machine has %d CUDA device%s)", env,
                   count, count == 1 ? "" : "s");
      return FALSE;
    }
  status = cudaGetDeviceProperties (prop, (int) device);
  if (status != cudaSuccess)
    {
      cudaGetLastError ();
      g_set_error (error, BL_ERROR, BL_ERROR_GPU, "CUDA device %d: cudaGetDeviceProperties failed: %s",
                   (int) device, cudaGetErrorString (status));
      return FALSE;
    }
  /* the kernels are built for sm_80 and sm_90 (plus compute_90 PTX) and use its features */
  if (prop->major < 8)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_GPU,
                   "CUDA device %d (%s) has compute capability %d.%d; Bitlens's kernels need 8.0 or newer",
                   (int) device, prop->name, prop->major, prop->minor);
      return FALSE;
    }
  *out_device = (int) device;
  return TRUE;
}

/**
 * bl_backend_cuda_probe:
 * @error: return location for a #GError
 *
 * Checks for a usable CUDA device without creating a context; the GPU tests skip with
 * @error's message when there is none.
 *
 * Returns: %TRUE when bl_backend_new ("cuda") can find a device
 */
gboolean
bl_backend_cuda_probe (GError **error)
{
  struct cudaDeviceProp prop;
  int device;

  return pick_device (&device, &prop, error);
}

/* ------------------------------------------------------------------------------------------ */
/* context */

static void
cuda_finalize (gpointer data)
{
  BlCudaContext *ctx = data;
  BlCudaScratch *areas[] = { &ctx->ids, &ctx->scores, &ctx->logits, &ctx->targets, &ctx->nll };

  cudaSetDevice (ctx->device);
  for (guint i = 0; i < G_N_ELEMENTS (areas); i++)
    bl_cuda_free (ctx, areas[i]->data);
  bl_cuda_free (ctx, ctx->lt_workspace);
  bl_cuda_free (ctx, ctx->blas_workspace);
  if (ctx->stream != NULL)
    cudaStreamSynchronize (ctx->stream);
  g_clear_pointer (&ctx->lt_plans, g_hash_table_unref);
  if (ctx->lt != NULL)
    cublasLtDestroy (ctx->lt);
  if (ctx->blas != NULL)
    cublasDestroy (ctx->blas);
  if (ctx->stream != NULL)
    cudaStreamDestroy (ctx->stream);
  g_clear_error (&ctx->error);
  g_free (ctx->description);
  g_free (ctx->device_name);
  g_free (ctx);
}

static gpointer
cuda_init (BlCudaPrecision   precision,
           GError          **error)
{
  struct cudaDeviceProp prop;
  BlCudaContext *ctx;
  int device, pools = 0;

  if (!pick_device (&device, &prop, error))
    return NULL;

  ctx = g_new0 (BlCudaContext, 1);
  ctx->device = device;
  ctx->cc_major = prop.major;
  ctx->cc_minor = prop.minor;
  ctx->precision = precision;
  ctx->device_name = g_strdup (prop.name);
  if (!bl_cuda_check (ctx, cudaSetDevice (device), "cudaSetDevice", error) ||
      !bl_cuda_check (ctx, cudaStreamCreateWithFlags (&ctx->stream, cudaStreamNonBlocking), "cudaStreamCreate",
                      error))
    goto fail;

  if (cudaDeviceGetAttribute (&pools, cudaDevAttrMemoryPoolsSupported, device) == cudaSuccess && pools)
    {
      cudaMemPool_t pool;
      uint64_t threshold = UINT64_MAX;

      if (!bl_cuda_check (ctx, cudaDeviceGetDefaultMemPool (&pool, device), "cudaDeviceGetDefaultMemPool", error) ||
          !bl_cuda_check (ctx, cudaMemPoolSetAttribute (pool, cudaMemPoolAttrReleaseThreshold, &threshold),
                          "cudaMemPoolSetAttribute", error))
        goto fail;
      ctx->use_pool = TRUE;
    }

  if (!bl_cuda_check_blas (ctx, cublasCreate (&ctx->blas), "cublasCreate", error) ||
      !bl_cuda_check_blas (ctx, cublasSetStream (ctx->blas, ctx->stream), "cublasSetStream", error) ||
      !bl_cuda_check_blas (ctx, cublasLtCreate (&ctx->lt), "cublasLtCreate", error))
    goto fail;
  ctx->lt_workspace_bytes = LT_WORKSPACE_BYTES;
  ctx->lt_workspace = bl_cuda_alloc (ctx, ctx->lt_workspace_bytes, "the cuBLASLt workspace", error);
  ctx->blas_workspace = ctx->lt_workspace != NULL
                        ? bl_cuda_alloc (ctx, LT_WORKSPACE_BYTES, "the cuBLAS workspace", error) : NULL;
  if (ctx->blas_workspace == NULL ||
      !bl_cuda_check_blas (ctx, cublasSetWorkspace (ctx->blas, ctx->blas_workspace, LT_WORKSPACE_BYTES),
                           "cublasSetWorkspace", error))
    goto fail;

  ctx->description = g_strdup_printf ("CUDA device %d: %s (sm_%d%d, %d SMs, %.1f GiB), %s", device, prop.name,
                                      prop.major, prop.minor, prop.multiProcessorCount,
                                      prop.totalGlobalMem / 1073741824.0,
                                      precision == BL_CUDA_PRECISION_BF16
                                      ? "bf16 tensor-core products, fp32 accumulation"
                                      : "fp32 products");
  return ctx;

fail:
  cuda_finalize (ctx);
  return NULL;
}

static gpointer
cuda_init_fp32 (int      n_threads,
                GError **error)
{
  return cuda_init (BL_CUDA_PRECISION_FP32, error);
}

static gpointer
cuda_init_bf16 (int      n_threads,
                GError **error)
{
  return cuda_init (BL_CUDA_PRECISION_BF16, error);
}

static const char *
cuda_get_description (gpointer data)
{
  return ((BlCudaContext *) data)->description;
}

/**
 * bl_cuda_context_from_backend:
 * @backend: a backend
 * @error: return location for a #GError
 *
 * The context of a CUDA backend, made current on the calling thread (a #BlRun may run the
 * engine on a worker thread).
 *
 * Returns: (nullable): the context, or %NULL with %BL_ERROR_INVALID_ARGUMENT when @backend
 *   is another backend
 */
BlCudaContext *
bl_cuda_context_from_backend (BlBackend  *backend,
                              GError    **error)
{
  BlCudaContext *ctx;

  g_return_val_if_fail (backend != NULL, NULL);

  ctx = bl_backend_get_context (backend, &cuda_class);
  if (ctx == NULL)
    ctx = bl_backend_get_context (backend, &cuda_bf16_class);
  if (ctx == NULL)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT, "Backend “%s” is not a CUDA backend",
                   bl_backend_get_name (backend));
      return NULL;
    }
  if (!bl_cuda_check (ctx, cudaSetDevice (ctx->device), "cudaSetDevice", error))
    return NULL;
  return ctx;
}

/* every vtable entry may be called from another thread than the one that made the context */
static BlCudaContext *
enter (gpointer data)
{
  BlCudaContext *ctx = data;

  cudaSetDevice (ctx->device);
  return ctx;
}

/* ------------------------------------------------------------------------------------------ */
/* buffers */

#define DATA(b) (((BlCudaBuffer *) (b))->data)

static BlBuffer *
cuda_buffer_new (gpointer  data,
                 size_t    n_elements,
                 GError  **error)
{
  BlCudaContext *ctx = enter (data);
  BlCudaBuffer *buffer = g_new0 (BlCudaBuffer, 1);

  buffer->data = bl_cuda_alloc (ctx, n_elements * sizeof (float), "a buffer", error);
  if (buffer->data == NULL)
    {
      g_free (buffer);
      return NULL;
    }
  buffer->n = n_elements;
  return (BlBuffer *) buffer;
}

static void
cuda_buffer_free (gpointer  data,
                  BlBuffer *buffer)
{
  BlCudaContext *ctx = enter (data);

  bl_cuda_free (ctx, DATA (buffer));
  g_free (buffer);
}

static float *
cuda_buffer_map (gpointer  data,
                 BlBuffer *buffer)
{
  return NULL;
}

static gboolean
range_error (BlBuffer *buffer,
             size_t    offset,
             size_t    n,
             GError  **error)
{
  g_set_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT,
               "Elements %" G_GSIZE_FORMAT "…%" G_GSIZE_FORMAT " are outside a CUDA buffer of %" G_GSIZE_FORMAT,
               offset, offset + n, ((BlCudaBuffer *) buffer)->n);
  return FALSE;
}

/* A copy from pageable host memory returns once the data are staged, so @src may be reused
 * at once; it is queued after the work already on the stream. */
static gboolean
cuda_upload (gpointer     data,
             BlBuffer    *dst,
             size_t       offset,
             const float *src,
             size_t       n,
             GError     **error)
{
  BlCudaContext *ctx = enter (data);

  if (offset + n > ((BlCudaBuffer *) dst)->n)
    return range_error (dst, offset, n, error);
  return bl_cuda_check (ctx, cudaMemcpyAsync (DATA (dst) + offset, src, n * sizeof (float), cudaMemcpyHostToDevice,
                                              ctx->stream),
                        "uploading a buffer", error);
}

/* A copy to pageable host memory returns when it is complete. */
static gboolean
cuda_download (gpointer  data,
               BlBuffer *src,
               size_t    offset,
               float    *dst,
               size_t    n,
               GError  **error)
{
  BlCudaContext *ctx = enter (data);

  if (offset + n > ((BlCudaBuffer *) src)->n)
    return range_error (src, offset, n, error);
  if (!bl_cuda_check (ctx, cudaMemcpyAsync (dst, DATA (src) + offset, n * sizeof (float), cudaMemcpyDeviceToHost,
                                            ctx->stream),
                      "downloading a buffer", error) ||
      !bl_cuda_check (ctx, cudaStreamSynchronize (ctx->stream), "downloading a buffer", error))
    {
      g_clear_error (&ctx->error);
      return FALSE;
    }
  return take_error (ctx, error);
}

/**
 * bl_cuda_synchronize:
 * @ctx: a context
 * @error: return location for a #GError
 *
 * Waits for the work queued on @ctx's stream.
 *
 * Returns: %FALSE with @error set when it, or an op since the last report, failed
 */
gboolean
bl_cuda_synchronize (BlCudaContext  *ctx,
                     GError        **error)
{
  if (!bl_cuda_check (ctx, cudaStreamSynchronize (ctx->stream), "a queued operation", error))
    {
      g_clear_error (&ctx->error);
      return FALSE;
    }
  return take_error (ctx, error);
}

static gboolean
cuda_synchronize (gpointer  data,
                  GError  **error)
{
  return bl_cuda_synchronize (enter (data), error);
}

/* ------------------------------------------------------------------------------------------ */
/* ops */

static cublasComputeType_t
compute_type (BlCudaContext *ctx)
{
  return ctx->precision == BL_CUDA_PRECISION_BF16 ? CUBLAS_COMPUTE_32F_FAST_16BF : CUBLAS_COMPUTE_32F;
}

static void
cuda_copy (gpointer  data,
           BlBuffer *dst,
           BlBuffer *src,
           size_t    n)
{
  BlCudaContext *ctx = enter (data);

  bl_cuda_check (ctx, cudaMemcpyAsync (DATA (dst), DATA (src), n * sizeof (float), cudaMemcpyDeviceToDevice,
                                       ctx->stream),
                 "copy", NULL);
}

static void
cuda_get_rows (gpointer       data,
               BlBuffer      *dst,
               BlBuffer      *table,
               const int32_t *ids,
               int            n,
               int            dim)
{
  BlCudaContext *ctx = enter (data);

  if (!bl_cuda_scratch_reserve (ctx, &ctx->ids, (size_t) n * sizeof (int32_t), "token ids", NULL) ||
      !bl_cuda_check (ctx, cudaMemcpyAsync (ctx->ids.data, ids, (size_t) n * sizeof (int32_t), cudaMemcpyHostToDevice,
                                            ctx->stream),
                      "uploading token ids", NULL))
    return;
  bl_cuda_check (ctx, bl_cuda_launch_get_rows (DATA (dst), DATA (table), ctx->ids.data, n, dim, ctx->stream),
                 "get_rows", NULL);
}

static void
cuda_matmul (gpointer  data,
             BlBuffer *y,
             BlBuffer *x,
             BlBuffer *w,
             BlBuffer *bias,
             int       n,
             int       in,
             int       out,
             gboolean  accumulate)
{
  BlCudaContext *ctx = enter (data);
  float one = 1.0f, beta = accumulate ? 1.0f : 0.0f;

  if (bias != NULL)
    {
      if (!bl_cuda_check (ctx, bl_cuda_launch_bias_rows (DATA (y), DATA (bias), n, out, accumulate, ctx->stream),
                          "bias", NULL))
        return;
      beta = 1.0f;
    }
  /* row-major y[n, out] = x[n, in] · w[out, in]ᵀ is column-major yᵀ = w · xᵀ, w read
   * transposed ("TN") */
  bl_cuda_check_blas (ctx, cublasGemmEx (ctx->blas, CUBLAS_OP_T, CUBLAS_OP_N, out, n, in, &one,
                                         DATA (w), CUDA_R_32F, in, DATA (x), CUDA_R_32F, in, &beta,
                                         DATA (y), CUDA_R_32F, out, compute_type (ctx), CUBLAS_GEMM_DEFAULT),
                      "cublasGemmEx (matmul)", NULL);
}

static void
cuda_rmsnorm (gpointer  data,
              BlBuffer *y,
              BlBuffer *x,
              BlBuffer *w,
              int       n,
              int       dim,
              float     eps)
{
  BlCudaContext *ctx = enter (data);

  bl_cuda_check (ctx, bl_cuda_launch_rmsnorm (DATA (y), DATA (x), DATA (w), n, dim, eps, ctx->stream), "rmsnorm",
                 NULL);
}

static void
cuda_rope (gpointer  data,
           BlBuffer *x,
           BlBuffer *cos,
           BlBuffer *sin,
           int       n,
           int       n_heads,
           int       head_dim)
{
  BlCudaContext *ctx = enter (data);

  bl_cuda_check (ctx, bl_cuda_launch_rope (DATA (x), DATA (cos), DATA (sin), n, n_heads, head_dim, ctx->stream),
                 "rope", NULL);
}

/* softmax(Q·Kᵀ/√d)·V (Vaswani et al. 2017, eq. 1) per key/value head: one strided-batched
 * product over the query heads that share it (the key operand repeats, stride 0), a causal
 * softmax over the scores, and one strided-batched product with V. Query rows go in slices
 * so that a slice's scores stay within SLICE_BYTES, and a slice only computes the keys that
 * its last row can see. */
static void
cuda_attention (gpointer  data,
                BlBuffer *out,
                BlBuffer *q,
                BlBuffer *k,
                BlBuffer *v,
                int       n,
                int       n_heads,
                int       n_kv_heads,
                int       head_dim,
                int       window)
{
  BlCudaContext *ctx = enter (data);
  int group = n_heads / n_kv_heads;
  int ldq = n_heads * head_dim, ldk = n_kv_heads * head_dim;
  float scale = 1.0f / sqrtf ((float) head_dim), one = 1.0f, zero = 0.0f;
  size_t per_row = (size_t) group * (size_t) n * sizeof (float);
  int slice = (int) MIN ((size_t) n, MAX ((size_t) 1, SLICE_BYTES / per_row));

  if (!bl_cuda_scratch_reserve (ctx, &ctx->scores, per_row * (size_t) slice, "attention scores", NULL))
    return;
  for (int r0 = 0; r0 < n; r0 += slice)
    {
      int rows = MIN (slice, n - r0);
      /* the slice's queries see keys key0…r0 + rows − 1 (under a sliding window, those its
       * first query still sees) */
      int key0 = window > 0 ? MAX (0, r0 - window + 1) : 0;
      int keys = r0 + rows - key0;
      float *scores = ctx->scores.data;

      for (int g = 0; g < n_kv_heads; g++)
        {
          const float *kg = DATA (k) + (size_t) key0 * ldk + (size_t) g * head_dim;
          const float *vg = DATA (v) + (size_t) key0 * ldk + (size_t) g * head_dim;
          const float *qg = DATA (q) + (size_t) r0 * ldq + (size_t) g * group * head_dim;
          float *og = DATA (out) + (size_t) r0 * ldq + (size_t) g * group * head_dim;

          /* column-major Sᵀ[keys, rows] = K_g[keys, d] · Q_hᵀ[d, rows] for each head h */
          if (!bl_cuda_check_blas (ctx, cublasGemmStridedBatchedEx (ctx->blas, CUBLAS_OP_T, CUBLAS_OP_N, keys, rows,
                                                                    head_dim, &scale, kg, CUDA_R_32F, ldk, 0, qg,
                                                                    CUDA_R_32F, ldq, head_dim, &zero, scores,
                                                                    CUDA_R_32F, keys, (long long) rows * keys,
                                                                    group, compute_type (ctx), CUBLAS_GEMM_DEFAULT),
                                   "cublasGemmStridedBatchedEx (attention scores)", NULL) ||
              !bl_cuda_check (ctx, bl_cuda_launch_causal_softmax (scores, group, rows, keys, r0 - key0, window,
                                                                      ctx->stream),
                              "attention softmax", NULL) ||
              !bl_cuda_check_blas (ctx, cublasGemmStridedBatchedEx (ctx->blas, CUBLAS_OP_N, CUBLAS_OP_N, head_dim,
                                                                    rows, keys, &one, vg, CUDA_R_32F, ldk, 0,
                                                                    scores, CUDA_R_32F, keys,
                                                                    (long long) rows * keys, &zero, og, CUDA_R_32F,
                                                                    ldq, head_dim, group, compute_type (ctx),
                                                                    CUBLAS_GEMM_DEFAULT),
                                   "cublasGemmStridedBatchedEx (attention values)", NULL))
            return;
        }
    }
}

static void
cuda_swiglu (gpointer  data,
             BlBuffer *out,
             BlBuffer *gate,
             BlBuffer *up,
             size_t    n)
{
  BlCudaContext *ctx = enter (data);

  bl_cuda_check (ctx, bl_cuda_launch_swiglu (DATA (out), DATA (gate), DATA (up), n, ctx->stream), "swiglu", NULL);
}

static void
cuda_add (gpointer  data,
          BlBuffer *x,
          BlBuffer *y,
          size_t    n)
{
  BlCudaContext *ctx = enter (data);

  bl_cuda_check (ctx, bl_cuda_launch_add (DATA (x), DATA (y), n, ctx->stream), "add", NULL);
}

/* The output projection and the log-softmax in slices of rows: a slice's logits stay within
 * SLICE_BYTES, one block per row reduces them. */
static gboolean
cuda_nll (gpointer       data,
          BlBuffer      *h,
          BlBuffer      *w,
          int            row0,
          int            n_rows,
          int            dim,
          int            vocab,
          const int32_t *targets,
          double        *nll,
          GError       **error)
{
  BlCudaContext *ctx = enter (data);
  int slice = (int) MIN ((size_t) n_rows, MAX ((size_t) 1, SLICE_BYTES / ((size_t) vocab * sizeof (float))));
  float one = 1.0f, zero = 0.0f;

  if (n_rows <= 0)
    return take_error (ctx, error);
  if (!bl_cuda_scratch_reserve (ctx, &ctx->logits, (size_t) slice * vocab * sizeof (float), "vocabulary logits",
                                error) ||
      !bl_cuda_scratch_reserve (ctx, &ctx->targets, (size_t) n_rows * sizeof (int32_t), "target ids", error) ||
      !bl_cuda_scratch_reserve (ctx, &ctx->nll, (size_t) n_rows * sizeof (double), "per-token NLL", error) ||
      !bl_cuda_check (ctx, cudaMemcpyAsync (ctx->targets.data, targets, (size_t) n_rows * sizeof (int32_t),
                                            cudaMemcpyHostToDevice, ctx->stream),
                      "uploading target ids", error))
    return FALSE;

  for (int r = 0; r < n_rows; r += slice)
    {
      int rows = MIN (slice, n_rows - r);

      if (!bl_cuda_check_blas (ctx, cublasGemmEx (ctx->blas, CUBLAS_OP_T, CUBLAS_OP_N, vocab, rows, dim, &one,
                                                  DATA (w), CUDA_R_32F, dim,
                                                  DATA (h) + (size_t) (row0 + r) * dim, CUDA_R_32F, dim, &zero,
                                                  ctx->logits.data, CUDA_R_32F, vocab, compute_type (ctx),
                                                  CUBLAS_GEMM_DEFAULT),
                               "cublasGemmEx (output projection)", error) ||
          !bl_cuda_check (ctx, bl_cuda_launch_nll_rows (ctx->logits.data, rows, vocab,
                                                        (const int32_t *) ctx->targets.data + r,
                                                        (double *) ctx->nll.data + r, ctx->stream),
                          "log-softmax", error))
        return FALSE;
    }
  if (!bl_cuda_check (ctx, cudaMemcpyAsync (nll, ctx->nll.data, (size_t) n_rows * sizeof (double),
                                            cudaMemcpyDeviceToHost, ctx->stream),
                      "downloading NLL", error) ||
      !bl_cuda_check (ctx, cudaStreamSynchronize (ctx->stream), "log-softmax", error))
    {
      g_clear_error (&ctx->error);
      return FALSE;
    }
  return take_error (ctx, error);
}

static const BlBackendClass cuda_class = {
  .name = "cuda",
  .priority = 10,
  .init = cuda_init_fp32,
  .finalize = cuda_finalize,
  .get_description = cuda_get_description,
  .buffer_new = cuda_buffer_new,
  .buffer_free = cuda_buffer_free,
  .buffer_map = cuda_buffer_map,
  .upload = cuda_upload,
  .download = cuda_download,
  .synchronize = cuda_synchronize,
  .copy = cuda_copy,
  .get_rows = cuda_get_rows,
  .matmul = cuda_matmul,
  .rmsnorm = cuda_rmsnorm,
  .rope = cuda_rope,
  .attention = cuda_attention,
  .swiglu = cuda_swiglu,
  .add = cuda_add,
  .nll = cuda_nll,
};

/* the same backend with bf16 tensor-core products, chosen by name only: below the CPU's
 * priority, "auto" never reaches it */
static const BlBackendClass cuda_bf16_class = {
  .name = "cuda-bf16",
  .priority = -1,
  .init = cuda_init_bf16,
  .finalize = cuda_finalize,
  .get_description = cuda_get_description,
  .buffer_new = cuda_buffer_new,
  .buffer_free = cuda_buffer_free,
  .buffer_map = cuda_buffer_map,
  .upload = cuda_upload,
  .download = cuda_download,
  .synchronize = cuda_synchronize,
  .copy = cuda_copy,
  .get_rows = cuda_get_rows,
  .matmul = cuda_matmul,
  .rmsnorm = cuda_rmsnorm,
  .rope = cuda_rope,
  .attention = cuda_attention,
  .swiglu = cuda_swiglu,
  .add = cuda_add,
  .nll = cuda_nll,
};

/**
 * bl_backend_cuda_register:
 *
 * Adds "cuda" (fp32 products) and "cuda-bf16" (bf16 tensor-core products) to the backend
 * registry. Programs call it once at start-up; the core never links to gpu/. Whether a
 * device exists is only asked when a backend is created.
 */
void
bl_backend_cuda_register (void)
{
  bl_backend_register (&cuda_class);
  bl_backend_register (&cuda_bf16_class);
}

/**
 * bl_backend_is_cuda:
 * @backend: a backend
 *
 * Returns: whether @backend is "cuda" or "cuda-bf16"
 */
gboolean
bl_backend_is_cuda (BlBackend *backend)
{
  g_return_val_if_fail (backend != NULL, FALSE);
  return bl_backend_get_context (backend, &cuda_class) != NULL ||
         bl_backend_get_context (backend, &cuda_bf16_class) != NULL;
}

/**
 * bl_cuda_backend_get_stream:
 * @backend: a CUDA backend
 *
 * Returns: (nullable): the backend's cudaStream_t, for timing with CUDA events
 */
gpointer
bl_cuda_backend_get_stream (BlBackend *backend)
{
  BlCudaContext *ctx = bl_cuda_context_from_backend (backend, NULL);

  return ctx != NULL ? (gpointer) ctx->stream : NULL;
}

/**
 * bl_cuda_buffer_new_bytes:
 * @backend: a CUDA backend
 * @n_bytes: bytes
 * @error: return location for a #GError
 *
 * Returns: (transfer full) (nullable): a buffer of at least @n_bytes bytes
 */
BlBuffer *
bl_cuda_buffer_new_bytes (BlBackend  *backend,
                          gsize       n_bytes,
                          GError    **error)
{
  return bl_backend_buffer_new (backend, (n_bytes + sizeof (float) - 1) / sizeof (float), error);
}

/**
 * bl_cuda_buffer_get_data:
 * @buffer: a buffer of a CUDA backend
 *
 * Returns: its device address
 */
gpointer
bl_cuda_buffer_get_data (BlBuffer *buffer)
{
  g_return_val_if_fail (buffer != NULL, NULL);
  return DATA (buffer);
}

/**
 * bl_cuda_buffer_upload_bytes:
 * @backend: a CUDA backend
 * @buffer: a buffer of @backend
 * @offset: first byte to write
 * @src: (array length=n_bytes): host bytes
 * @n_bytes: how many
 * @error: return location for a #GError
 *
 * Queues a copy of host bytes into @buffer; @src may be reused when this returns.
 *
 * Returns: %TRUE on success
 */
gboolean
bl_cuda_buffer_upload_bytes (BlBackend      *backend,
                             BlBuffer       *buffer,
                             gsize           offset,
                             gconstpointer   src,
                             gsize           n_bytes,
                             GError        **error)
{
  BlCudaContext *ctx = bl_cuda_context_from_backend (backend, error);

  if (ctx == NULL || !bl_cuda_buffer_check (buffer, offset + n_bytes, "an upload", error))
    return FALSE;
  return bl_cuda_check (ctx, cudaMemcpyAsync ((guint8 *) DATA (buffer) + offset, src, n_bytes,
                                              cudaMemcpyHostToDevice, ctx->stream),
                        "uploading bytes", error);
}

/**
 * bl_cuda_buffer_download_bytes:
 * @backend: a CUDA backend
 * @buffer: a buffer of @backend
 * @offset: first byte to read
 * @dst: (array length=n_bytes): room for the bytes
 * @n_bytes: how many
 * @error: return location for a #GError
 *
 * Waits for the queued work, then copies bytes of @buffer to the host; reports a failure of
 * that work as bl_backend_synchronize() does.
 *
 * Returns: %TRUE on success
 */
gboolean
bl_cuda_buffer_download_bytes (BlBackend  *backend,
                               BlBuffer   *buffer,
                               gsize       offset,
                               gpointer    dst,
                               gsize       n_bytes,
                               GError    **error)
{
  BlCudaContext *ctx = bl_cuda_context_from_backend (backend, error);

  if (ctx == NULL || !bl_cuda_buffer_check (buffer, offset + n_bytes, "a download", error))
    return FALSE;
  if (!bl_cuda_check (ctx, cudaMemcpyAsync (dst, (const guint8 *) DATA (buffer) + offset, n_bytes,
                                            cudaMemcpyDeviceToHost, ctx->stream),
                      "downloading bytes", error) ||
      !bl_cuda_check (ctx, cudaStreamSynchronize (ctx->stream), "downloading bytes", error))
    {
      g_clear_error (&ctx->error);
      return FALSE;
    }
  return take_error (ctx, error);
}
