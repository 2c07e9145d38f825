/* bl-cuda-wmma-kernels.cu: the 4-bit weight GEMM on the bf16 tensor cores
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * For more than 8 tokens (bl_cuda_gemm_weight4() runs the GEMV of bl-cuda-gemm-kernels.cu up
 * to 8): each weight tile is dequantized into shared memory as bf16, then multiplied with
 * WMMA 16×16×16 fragments and fp32 accumulators.
 */
#include "bl-cuda-kernels-private.h"

#include <cuda_bf16.h>
#include <mma.h>

#include "bl-cuda-w4-private.cuh"

/* Tiled GEMM for more tokens: a 64 × 64 output tile per block of 4 warps (each 32 × 32 as
 * 2 × 2 WMMA 16×16×16 bf16 fragments), K in steps of 32: the activation tile is copied to
 * shared memory, the weight tile is dequantized there (to bf16) from one 16-byte load per
 * weight row. */
#define W4_BM 64
#define W4_BN 64
#define W4_BK 32
#define W4_LD (W4_BK + 8)     /* bf16 row pitch in shared memory: 80 bytes, WMMA-aligned */
#define W4_LDC (W4_BN + 4)

static __global__ void __launch_bounds__ (128)
w4_gemm_kernel (BlCudaW4                       w,
                const uint16_t *__restrict__   x,
                float *__restrict__            y,
                int                            m_total)
{
  using namespace nvcuda;
  __shared__ __align__ (32) __nv_bfloat16 xs[W4_BM * W4_LD];
  __shared__ __align__ (32) __nv_bfloat16 ws[W4_BN * W4_LD];
  __shared__ __align__ (32) float cs[W4_BM * W4_LDC];
  int tid = threadIdx.x, warp = tid / 32;
  int m0 = blockIdx.y * W4_BM, n0 = blockIdx.x * W4_BN;
  int wm = (warp / 2) * 32, wn = (warp % 2) * 32;
  wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[2][2];

  for (int i = 0; i < 2; i++)
    for (int j = 0; j < 2; j++)
      wmma::fill_fragment (acc[i][j], 0.0f);

  for (int k0 = 0; k0 < w.k; k0 += W4_BK)
    {
      /* activations: 64 rows × 32 columns = 256 loads of 8 bf16 */
      for (int i = tid; i < W4_BM * (W4_BK / 8); i += blockDim.x)
        {
          int r = i / (W4_BK / 8), c = (i % (W4_BK / 8)) * 8;
          uint4 v = m0 + r < m_total ? __ldg ((const uint4 *) (x + (size_t) (m0 + r) * w.k + k0 + c))
                                     : make_uint4 (0, 0, 0, 0);

          *(uint4 *) (xs + r * W4_LD + c) = v;
        }
      /* weights: one 16-byte load (32 codes) per row of the tile */
      if (tid < W4_BN)
        {
          int64_t row = n0 + tid;
          __nv_bfloat16 *dst = ws + tid * W4_LD;

          if (row < w.n)
            {
              uint4 q = __ldg ((const uint4 *) (w.codes + (size_t) row * (w.k / 2) + k0 / 2));
              uint32_t words[4] = { q.x, q.y, q.z, q.w };

              for (int wi = 0; wi < 4; wi++)
                {
                  float v[8];

                  w4_dequant_word (w, row, k0 + wi * 8, words[wi], v);
                  for (int t = 0; t < 8; t++)
                    dst[wi * 8 + t] = __float2bfloat16_rn (v[t]);
                }
            }
          else
            for (int t = 0; t < W4_BK; t++)
              dst[t] = __float2bfloat16_rn (0.0f);
        }
      __syncthreads ();

      for (int kk = 0; kk < W4_BK; kk += 16)
        {
          wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> a[2];
          wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::col_major> b[2];

          for (int i = 0; i < 2; i++)
            wmma::load_matrix_sync (a[i], xs + (wm + 16 * i) * W4_LD + kk, W4_LD);
          for (int j = 0; j < 2; j++)
            wmma::load_matrix_sync (b[j], ws + (wn + 16 * j) * W4_LD + kk, W4_LD);
          for (int i = 0; i < 2; i++)
            for (int j = 0; j < 2; j++)
              wmma::mma_sync (acc[i][j], a[i], b[j], acc[i][j]);
        }
      __syncthreads ();
    }

  for (int i = 0; i < 2; i++)
    for (int j = 0; j < 2; j++)
      wmma::store_matrix_sync (cs + (wm + 16 * i) * W4_LDC + wn + 16 * j, acc[i][j], W4_LDC, wmma::mem_row_major);
  __syncthreads ();
  for (int i = tid; i < W4_BM * W4_BN; i += blockDim.x)
    {
      int r = i / W4_BN, c = i % W4_BN;

      if (m0 + r < m_total && n0 + c < w.n)
        y[(size_t) (m0 + r) * w.n + n0 + c] = cs[r * W4_LDC + c];
    }
}

cudaError_t
bl_cuda_launch_w4_tiles (const BlCudaW4 *w,
                         const uint16_t *x_bf16,
                         float          *y,
                         int             m,
                         cudaStream_t    stream)
{
  dim3 grid ((unsigned int) ((w->n + W4_BN - 1) / W4_BN), (unsigned int) ((m + W4_BM - 1) / W4_BM));

  BL_CUDA_LAUNCH (w4_gemm_kernel, grid, 128, stream) (*w, x_bf16, y, m);
  return cudaGetLastError ();
}
