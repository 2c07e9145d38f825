/* bl-cuda-kernels-private.h: the kernel launchers of gpu/, shared by the host C and the .cu files
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * Plain C types only (no GLib), so that nvcc compiles the .cu files without the GLib headers.
 * Every launcher queues its work on @stream and returns the launch status (cudaGetLastError);
 * failures inside a kernel surface at the next synchronisation.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <cuda_runtime_api.h>

#include "bl-cuda-format-types.h"
#include "bl-format-blocks.h"

#ifdef __cplusplus
extern "C" {
#endif

#ifdef __cplusplus
/* A kernel launch. tests/test-cuda-emulated.c defines its own before including a .cu file,
 * to run the format kernels on the CPU. */
#ifndef BL_CUDA_LAUNCH
#define BL_CUDA_LAUNCH(kernel, grid, block, stream) kernel<<<(grid), (block), 0, (stream)>>>
#endif
#endif

/* ---------------------------------------------------------------------------------------- */
/* forward-pass ops (bl-cuda-ops-kernels.cu) */

cudaError_t bl_cuda_launch_get_rows       (float          *dst,
                                           const float    *table,
                                           const int32_t  *ids,
                                           int             n,
                                           int             dim,
                                           cudaStream_t    stream);
cudaError_t bl_cuda_launch_bias_rows      (float          *y,
                                           const float    *bias,
                                           int             n,
                                           int             out,
                                           int             accumulate,
                                           cudaStream_t    stream);
cudaError_t bl_cuda_launch_rmsnorm        (float          *y,
                                           const float    *x,
                                           const float    *w,
                                           int             n,
                                           int             dim,
                                           float           eps,
                                           cudaStream_t    stream);
cudaError_t bl_cuda_launch_rope           (float          *x,
                                           const float    *cos,
                                           const float    *sin,
                                           int             n,
                                           int             n_heads,
                                           int             head_dim,
                                           cudaStream_t    stream);
cudaError_t bl_cuda_launch_causal_softmax (float          *scores,
                                           int             batch,
                                           int             rows,
                                           int             keys,
                                           int             row0,
                                           int             window,
                                           cudaStream_t    stream);
cudaError_t bl_cuda_launch_swiglu         (float          *out,
                                           const float    *gate,
                                           const float    *up,
                                           size_t          n,
                                           cudaStream_t    stream);
cudaError_t bl_cuda_launch_add            (float          *x,
                                           const float    *y,
                                           size_t          n,
                                           cudaStream_t    stream);
cudaError_t bl_cuda_launch_nll_rows       (const float    *logits,
                                           int             rows,
                                           int             vocab,
                                           const int32_t  *targets,
                                           double         *nll,
                                           cudaStream_t    stream);

/* ---------------------------------------------------------------------------------------- */
/* format kernels (bl-cuda-format-kernels.cu) */

size_t      bl_cuda_format_stats_size        (void);
size_t      bl_cuda_format_sort_temp_size    (int64_t                    n);
cudaError_t bl_cuda_launch_format_prepare    (const BlCudaFormat        *f,
                                              const float               *x,
                                              int64_t                    n4,
                                              const BlCudaFormatScratch *s,
                                              cudaStream_t               stream);
cudaError_t bl_cuda_launch_format_params     (const BlCudaFormat        *f,
                                              const float               *x,
                                              const BlCudaFormatScratch *s,
                                              cudaStream_t               stream);
cudaError_t bl_cuda_launch_format_fake       (const BlCudaFormat        *f,
                                              const float               *x,
                                              float                     *y,
                                              const BlCudaFormatScratch *s,
                                              cudaStream_t               stream);
cudaError_t bl_cuda_launch_format_pack       (const BlCudaFormat        *f,
                                              const BlPackedHeader      *h,
                                              const float               *x,
                                              int64_t                    n4,
                                              uint8_t                   *packed,
                                              const BlCudaFormatScratch *s,
                                              cudaStream_t               stream);
cudaError_t bl_cuda_launch_format_unpack     (const BlCudaFormat        *f,
                                              const BlPackedHeader      *h,
                                              const uint8_t             *packed,
                                              int64_t                    n4,
                                              float                     *y,
                                              const BlCudaFormatScratch *s,
                                              cudaStream_t               stream);

/* ---------------------------------------------------------------------------------------- */
/* packed GEMM kernels (bl-cuda-gemm-kernels.cu) */

/* A 4-bit weight-only matrix [n, k] in the format library's packed layout: codes LSB-first
 * (even column in the low nibble), groups of @group_size along a row. */
enum { BL_CUDA_W4_INT, BL_CUDA_W4_FP4 };

typedef struct
{
  int32_t kind;               /* BL_CUDA_W4_INT: (u − zero)·s; BL_CUDA_W4_FP4: e2m1(u)·s */
  int32_t n;                  /* rows (output features) */
  int32_t k;                  /* columns (input features) */
  int32_t group_size;
  int32_t groups_per_row;
  int32_t scale_kind;         /* BlPackedScaleKind */
  int32_t implicit_zero;      /* INT without a zeros section: 2^(bits−1) */
  float tensor_scale;         /* NVFP4: s_T; 1 otherwise */
  const uint8_t *codes;
  const uint8_t *scales;
  const uint8_t *zeros;       /* INT asym: 4-bit zero points, or NULL */
} BlCudaW4;

/* up to 8 tokens */
cudaError_t bl_cuda_launch_w4_gemv         (const BlCudaW4  *w,
                                            const uint16_t  *x_bf16,
                                            float           *y,
                                            int              m,
                                            cudaStream_t     stream);
/* any number of tokens, on the tensor cores (bl-cuda-wmma-kernels.cu) */
cudaError_t bl_cuda_launch_w4_tiles        (const BlCudaW4  *w,
                                            const uint16_t  *x_bf16,
                                            float           *y,
                                            int              m,
                                            cudaStream_t     stream);
cudaError_t bl_cuda_launch_quantize_rows_i8 (const float    *x,
                                             int8_t         *q,
                                             float          *scale,
                                             int             m,
                                             int             k,
                                             cudaStream_t    stream);
cudaError_t bl_cuda_launch_dequant_i32     (const int32_t   *acc,
                                            const float     *sx,
                                            const float     *sw,
                                            float           *y,
                                            int              m,
                                            int              n,
                                            cudaStream_t     stream);
cudaError_t bl_cuda_launch_bitplane_pack   (const uint8_t   *codes,
                                            int64_t          rows,
                                            int64_t          k,
                                            int              bits,
                                            uint32_t        *planes,
                                            cudaStream_t     stream);
cudaError_t bl_cuda_launch_bitplane_gemm   (const uint32_t  *x_planes,
                                            int              x_bits,
                                            int              x_signed,
                                            const uint32_t  *w_planes,
                                            int              w_bits,
                                            int              w_signed,
                                            int              m,
                                            int              n,
                                            int64_t          k,
                                            int32_t         *y,
                                            cudaStream_t     stream);
cudaError_t bl_cuda_launch_f32_to_bf16     (const float     *x,
                                            uint16_t        *y,
                                            size_t           n,
                                            cudaStream_t     stream);

#ifdef __cplusplus
}
#endif
