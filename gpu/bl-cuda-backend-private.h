/* bl-cuda-backend-private.h: the CUDA backend's context, shared by the gpu/ host files
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include "bl-cuda-backend.h"

G_BEGIN_DECLS

/* the two registered precisions: fp32 products, or bf16 tensor-core products with fp32
 * accumulation and fp32 activations (cuBLAS's CUBLAS_COMPUTE_32F_FAST_16BF) */
typedef enum
{
  BL_CUDA_PRECISION_FP32,
  BL_CUDA_PRECISION_BF16,
} BlCudaPrecision;

/* a grow-only device scratch area of one kind */
typedef struct
{
  void *data;
  size_t bytes;
} BlCudaScratch;

typedef struct
{
  int device;
  int cc_major;               /* compute capability */
  int cc_minor;
  BlCudaPrecision precision;
  char *description;
  char *device_name;

  cudaStream_t stream;        /* every op of the backend runs on this one stream, in order */
  cublasHandle_t blas;
  void *blas_workspace;       /* cuBLAS's own, so that it never allocates (CUDA graph capture) */
  cublasLtHandle_t lt;
  void *lt_workspace;
  size_t lt_workspace_bytes;
  gboolean use_pool;          /* stream-ordered allocations from the device's memory pool */
  GHashTable *lt_plans;       /* cuBLASLt descriptors and algorithm by "kind:m:n:k" */

  GError *error;              /* the first failure of a compute op since the last report */

  BlCudaScratch ids;          /* get_rows: token ids */
  BlCudaScratch scores;       /* attention: [group][rows][keys] */
  BlCudaScratch logits;       /* nll: [rows][vocab] */
  BlCudaScratch targets;      /* nll: target ids */
  BlCudaScratch nll;          /* nll: per-row results */
} BlCudaContext;

/* a backend buffer: @n fp32 values of device memory */
typedef struct
{
  float *data;
  size_t n;
} BlCudaBuffer;

BlCudaContext *bl_cuda_context_from_backend (BlBackend      *backend,
                                             GError        **error);
gboolean       bl_cuda_synchronize        (BlCudaContext  *ctx,
                                           GError        **error);
gboolean       bl_cuda_check              (BlCudaContext  *ctx,
                                           cudaError_t     status,
                                           const char     *what,
                                           GError        **error);
gboolean       bl_cuda_check_blas         (BlCudaContext  *ctx,
                                           cublasStatus_t  status,
                                           const char     *what,
                                           GError        **error);
void          *bl_cuda_alloc              (BlCudaContext  *ctx,
                                           size_t          bytes,
                                           const char     *what,
                                           GError        **error);
void           bl_cuda_free               (BlCudaContext  *ctx,
                                           void           *data);
gboolean       bl_cuda_scratch_reserve    (BlCudaContext  *ctx,
                                           BlCudaScratch  *scratch,
                                           size_t          bytes,
                                           const char     *what,
                                           GError        **error);
gboolean       bl_cuda_buffer_check       (BlBuffer       *buffer,
                                           size_t          bytes,
                                           const char     *what,
                                           GError        **error);

G_END_DECLS
