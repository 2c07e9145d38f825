/* bl-cuda-gemm-kernels.cu: packed low-bit GEMV/GEMM kernels on the CUDA cores
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * - 4-bit weight-only (W4A16) GEMV: int4 with group scales (and zero points), NVFP4 and
 *   MXFP4, read straight from the format library's packed layout (core/bl-format-blocks.h)
 *   and dequantized in registers. For up to 8 tokens a warp streams 4 weight rows and reuses
 *   every activation it loads for all of them (more tokens: bl-cuda-wmma-kernels.cu).
 * - the W8A8 activation quantizer (per-token absmax int8, bit for bit bl_format_quantize's
 *   "int8:token:scale=fp32") and the int32 → fp32 epilogue around cuBLASLt's IMMA GEMM.
 * - the ABQ-LLM bit-plane WpAq GEMM (methods.md §1, gpu/bl-bitplane.h): p·q AND-popcount
 *   products recombined with signed powers of two, in wrapping 32-bit arithmetic, so that the
 *   result equals bl_bitplane_gemm_ref() exactly whatever the order of the sums.
 */
#include "bl-cuda-kernels-private.h"

#include <cuda_bf16.h>

#include "bl-cuda-w4-private.cuh"

static unsigned int
blocks_for (size_t n,
            int    threads)
{
  size_t b = (n + (size_t) threads - 1) / (size_t) threads;

  return (unsigned int) (b < 1 ? 1 : (b > (1u << 20) ? (1u << 20) : b));
}

static __device__ __forceinline__ float
bf16_lo (uint32_t pair)
{
  return __uint_as_float (pair << 16);
}

static __device__ __forceinline__ float
bf16_hi (uint32_t pair)
{
  return __uint_as_float (pair & 0xffff0000u);
}

/* ------------------------------------------------------------------------------------------ */
/* 4-bit weight-only */

#define W4_GEMV_WARPS 4
#define W4_GEMV_ROWS 4      /* weight rows per warp: every activation load serves all of them */

/* y[m, r] = Σ_k x[m, k] · w[r, k] for M ≤ 8 tokens. Lane l of a warp takes the 32-column
 * chunks l, l + 32, …; each chunk is one 16-byte load per weight row. */
template <int M>
static __global__ void __launch_bounds__ (W4_GEMV_WARPS * 32)
w4_gemv_kernel (BlCudaW4                       w,
                const uint16_t *__restrict__   x,
                float *__restrict__            y)
{
  int lane = threadIdx.x % 32;
  int64_t row0 = ((int64_t) blockIdx.x * W4_GEMV_WARPS + threadIdx.x / 32) * W4_GEMV_ROWS;
  int chunks = w.k / 32;
  size_t row_bytes = (size_t) w.k / 2;
  float acc[M][W4_GEMV_ROWS];

  if (row0 >= w.n)
    return;
#pragma unroll
  for (int m = 0; m < M; m++)
#pragma unroll
    for (int r = 0; r < W4_GEMV_ROWS; r++)
      acc[m][r] = 0.0f;

  for (int c = lane; c < chunks; c += 32)
    {
      uint4 q[W4_GEMV_ROWS];

#pragma unroll
      for (int r = 0; r < W4_GEMV_ROWS; r++)
        q[r] = row0 + r < w.n ? __ldg ((const uint4 *) (w.codes + (size_t) (row0 + r) * row_bytes) + c)
                              : make_uint4 (0, 0, 0, 0);
#pragma unroll
      for (int wi = 0; wi < 4; wi++)
        {
          int col = c * 32 + wi * 8;
          uint4 xv[M];

#pragma unroll
          for (int m = 0; m < M; m++)
            xv[m] = __ldg ((const uint4 *) (x + (size_t) m * w.k + col));
#pragma unroll
          for (int r = 0; r < W4_GEMV_ROWS; r++)
            {
              uint32_t word = wi == 0 ? q[r].x : (wi == 1 ? q[r].y : (wi == 2 ? q[r].z : q[r].w));
              float wv[8];

              if (row0 + r >= w.n)
                continue;
              w4_dequant_word (w, row0 + r, col, word, wv);
#pragma unroll
              for (int m = 0; m < M; m++)
                {
                  float a = acc[m][r];

                  a = fmaf (wv[0], bf16_lo (xv[m].x), a);
                  a = fmaf (wv[1], bf16_hi (xv[m].x), a);
                  a = fmaf (wv[2], bf16_lo (xv[m].y), a);
                  a = fmaf (wv[3], bf16_hi (xv[m].y), a);
                  a = fmaf (wv[4], bf16_lo (xv[m].z), a);
                  a = fmaf (wv[5], bf16_hi (xv[m].z), a);
                  a = fmaf (wv[6], bf16_lo (xv[m].w), a);
                  a = fmaf (wv[7], bf16_hi (xv[m].w), a);
                  acc[m][r] = a;
                }
            }
        }
    }

#pragma unroll
  for (int m = 0; m < M; m++)
#pragma unroll
    for (int r = 0; r < W4_GEMV_ROWS; r++)
      {
        float v = acc[m][r];

        for (int o = 16; o > 0; o /= 2)
          v += __shfl_xor_sync (0xffffffffu, v, o);
        if (lane == 0 && row0 + r < w.n)
          y[(size_t) m * w.n + row0 + r] = v;
      }
}

cudaError_t
bl_cuda_launch_w4_gemv (const BlCudaW4 *w,
                        const uint16_t *x_bf16,
                        float          *y,
                        int             m,
                        cudaStream_t    stream)
{
  int rows_per_block = W4_GEMV_WARPS * W4_GEMV_ROWS;
  unsigned int blocks = (unsigned int) ((w->n + rows_per_block - 1) / rows_per_block);

  switch (m)
    {
    case 1: BL_CUDA_LAUNCH (w4_gemv_kernel<1>, blocks, W4_GEMV_WARPS * 32, stream) (*w, x_bf16, y); break;
    case 2: BL_CUDA_LAUNCH (w4_gemv_kernel<2>, blocks, W4_GEMV_WARPS * 32, stream) (*w, x_bf16, y); break;
    case 3: BL_CUDA_LAUNCH (w4_gemv_kernel<3>, blocks, W4_GEMV_WARPS * 32, stream) (*w, x_bf16, y); break;
    case 4: BL_CUDA_LAUNCH (w4_gemv_kernel<4>, blocks, W4_GEMV_WARPS * 32, stream) (*w, x_bf16, y); break;
    case 5: BL_CUDA_LAUNCH (w4_gemv_kernel<5>, blocks, W4_GEMV_WARPS * 32, stream) (*w, x_bf16, y); break;
    case 6: BL_CUDA_LAUNCH (w4_gemv_kernel<6>, blocks, W4_GEMV_WARPS * 32, stream) (*w, x_bf16, y); break;
    case 7: BL_CUDA_LAUNCH (w4_gemv_kernel<7>, blocks, W4_GEMV_WARPS * 32, stream) (*w, x_bf16, y); break;
    case 8: BL_CUDA_LAUNCH (w4_gemv_kernel<8>, blocks, W4_GEMV_WARPS * 32, stream) (*w, x_bf16, y); break;
    default:
      return cudaErrorInvalidValue;
    }
  return cudaGetLastError ();
}

/* ------------------------------------------------------------------------------------------ */
/* W8A8 around cuBLASLt */

#define QUANT_THREADS 256

/* int_params (absmax) and int_encode (RNE) of bl-format-traits.c for "int8:token" with fp32
 * scales: s = amax/127, q = RNE(clamp(nan→0(x/s), −127, 127)); one block per row. */
static __global__ void
quantize_rows_i8_kernel (const float *x,
                         int8_t      *q,
                         float       *scale,
                         int          k)
{
  __shared__ unsigned int amax_bits;
  const float *xr = x + (size_t) blockIdx.x * k;
  int8_t *qr = q + (size_t) blockIdx.x * k;
  unsigned int m = 0;
  float s;

  if (threadIdx.x == 0)
    amax_bits = 0;
  __syncthreads ();
  for (int j = threadIdx.x; j < k; j += blockDim.x)
    {
      unsigned int b = __float_as_uint (xr[j]) & 0x7fffffffu;

      m = b > m ? b : m;
    }
  m = __reduce_max_sync (0xffffffffu, m);
  if (threadIdx.x % 32 == 0)
    atomicMax (&amax_bits, m);
  __syncthreads ();
  s = __fdiv_rn (__uint_as_float (amax_bits), 127.0f);
  for (int j = threadIdx.x; j < k; j += blockDim.x)
    {
      float v = __fdiv_rn (xr[j], s);

      v = v == v ? v : 0.0f;
      v = v < -127.0f ? -127.0f : (v > 127.0f ? 127.0f : v);
      qr[j] = (int8_t) (int) __fsub_rn (__fadd_rn (v, 12582912.0f), 12582912.0f);
    }
  if (threadIdx.x == 0)
    scale[blockIdx.x] = s;
}

cudaError_t
bl_cuda_launch_quantize_rows_i8 (const float *x,
                                 int8_t      *q,
                                 float       *scale,
                                 int          m,
                                 int          k,
                                 cudaStream_t stream)
{
  BL_CUDA_LAUNCH (quantize_rows_i8_kernel, m, QUANT_THREADS, stream) (x, q, scale, k);
  return cudaGetLastError ();
}

/* y[m, n] = (acc · s_x[m]) · s_w[n] */
static __global__ void
dequant_i32_kernel (const int32_t *acc,
                    const float   *sx,
                    const float   *sw,
                    float         *y,
                    int            m,
                    int            n)
{
  size_t total = (size_t) m * (size_t) n;

  for (size_t i = blockIdx.x * (size_t) blockDim.x + threadIdx.x; i < total; i += (size_t) gridDim.x * blockDim.x)
    y[i] = __fmul_rn (__fmul_rn ((float) acc[i], sx[i / (size_t) n]), sw[i % (size_t) n]);
}

cudaError_t
bl_cuda_launch_dequant_i32 (const int32_t *acc,
                            const float   *sx,
                            const float   *sw,
                            float         *y,
                            int            m,
                            int            n,
                            cudaStream_t   stream)
{
  BL_CUDA_LAUNCH (dequant_i32_kernel, blocks_for ((size_t) m * n, 256), 256, stream) (acc, sx, sw, y, m, n);
  return cudaGetLastError ();
}

static __global__ void
f32_to_bf16_kernel (const float *x,
                    uint16_t    *y,
                    size_t       n)
{
  for (size_t i = blockIdx.x * (size_t) blockDim.x + threadIdx.x; i < n; i += (size_t) gridDim.x * blockDim.x)
    y[i] = __bfloat16_as_ushort (__float2bfloat16_rn (x[i]));
}

cudaError_t
bl_cuda_launch_f32_to_bf16 (const float *x,
                            uint16_t    *y,
                            size_t       n,
                            cudaStream_t stream)
{
  BL_CUDA_LAUNCH (f32_to_bf16_kernel, blocks_for (n, 256), 256, stream) (x, y, n);
  return cudaGetLastError ();
}

/* ------------------------------------------------------------------------------------------ */
/* bit planes */

/* one output word per thread: bit 31 − t of word w of plane b of row r is bit b of code
 * w·32 + t (bl_bitplane_pack) */
static __global__ void
bitplane_pack_kernel (const uint8_t *codes,
                      int64_t        rows,
                      int64_t        k,
                      int            bits,
                      int64_t        words,
                      uint32_t      *planes)
{
  int64_t total = (int64_t) bits * rows * words;

  for (int64_t i = blockIdx.x * (int64_t) blockDim.x + threadIdx.x; i < total; i += (int64_t) gridDim.x * blockDim.x)
    {
      int64_t w = i % words;
      int64_t r = (i / words) % rows;
      int b = (int) (i / (words * rows));
      const uint8_t *c = codes + r * k;
      uint32_t v = 0;

      for (int t = 0; t < 32; t++)
        {
          int64_t col = w * 32 + t;

          if (col < k)
            v |= (uint32_t) ((c[col] >> b) & 1u) << (31 - t);
        }
      planes[i] = v;
    }
}

cudaError_t
bl_cuda_launch_bitplane_pack (const uint8_t *codes,
                              int64_t        rows,
                              int64_t        k,
                              int            bits,
                              uint32_t      *planes,
                              cudaStream_t   stream)
{
  int64_t words = (k + 127) / 128 * 4;

  size_t items = (size_t) bits * (size_t) rows * (size_t) words;

  BL_CUDA_LAUNCH (bitplane_pack_kernel, blocks_for (items, 256), 256, stream) (codes, rows, k, bits, words, planes);
  return cudaGetLastError ();
}

#define BP_WARPS 4
#define BP_ROWS 2           /* weight rows per warp */
#define BP_MT 8             /* activation rows per pass */

static __device__ __forceinline__ uint32_t
popc4 (uint4 a,
       uint4 b)
{
  return (uint32_t) (__popc (a.x & b.x) + __popc (a.y & b.y) + __popc (a.z & b.z) + __popc (a.w & b.w));
}

/* Y[m, n] = Σ_i Σ_j c_i d_j 2^(i+j) popcount(X⁽ⁱ⁾[m] AND W⁽ʲ⁾[n]) on the CUDA cores: a warp
 * takes BP_ROWS weight rows and up to BP_MT activation rows, lane l the 4-word (128-element)
 * quads l, l + 32, … of K. Wrapping uint32 sums make the result independent of their order. */
static __global__ void __launch_bounds__ (BP_WARPS * 32)
bitplane_gemm_kernel (const uint32_t *__restrict__ x_planes,
                      int                          x_bits,
                      int                          x_signed,
                      const uint32_t *__restrict__ w_planes,
                      int                          w_bits,
                      int                          w_signed,
                      int                          m,
                      int                          n,
                      int64_t                      words,
                      int32_t *__restrict__        y)
{
  int lane = threadIdx.x % 32;
  int n0 = (blockIdx.x * BP_WARPS + threadIdx.x / 32) * BP_ROWS;
  int m0 = blockIdx.y * BP_MT;
  int mt = m - m0 < BP_MT ? m - m0 : BP_MT;
  int64_t quads = words / 4;
  uint32_t acc[BP_MT][BP_ROWS];

  if (n0 >= n)
    return;
  for (int a = 0; a < BP_MT; a++)
    for (int r = 0; r < BP_ROWS; r++)
      acc[a][r] = 0;

  for (int64_t q = lane; q < quads; q += 32)
    for (int j = 0; j < w_bits; j++)
      {
        uint32_t dj = (w_signed && j == w_bits - 1) ? (uint32_t) -(1 << j) : (uint32_t) (1 << j);
        uint4 wq[BP_ROWS];

#pragma unroll
        for (int r = 0; r < BP_ROWS; r++)
          wq[r] = n0 + r < n ? __ldg ((const uint4 *) (w_planes + ((size_t) j * n + n0 + r) * words) + q)
                             : make_uint4 (0, 0, 0, 0);
        for (int i = 0; i < x_bits; i++)
          {
            uint32_t ci = (x_signed && i == x_bits - 1) ? (uint32_t) -(1 << i) : (uint32_t) (1 << i);
            uint32_t weight = ci * dj;

#pragma unroll
            for (int a = 0; a < BP_MT; a++)
              {
                uint4 xq;

                if (a >= mt)
                  break;
                xq = __ldg ((const uint4 *) (x_planes + ((size_t) i * m + m0 + a) * words) + q);
#pragma unroll
                for (int r = 0; r < BP_ROWS; r++)
                  acc[a][r] += weight * popc4 (xq, wq[r]);
              }
          }
      }

#pragma unroll
  for (int a = 0; a < BP_MT; a++)
#pragma unroll
    for (int r = 0; r < BP_ROWS; r++)
      {
        uint32_t v = acc[a][r];

        for (int o = 16; o > 0; o /= 2)
          v += __shfl_xor_sync (0xffffffffu, v, o);
        if (lane == 0 && a < mt && n0 + r < n)
          y[(size_t) (m0 + a) * n + n0 + r] = (int32_t) v;
      }
}

cudaError_t
bl_cuda_launch_bitplane_gemm (const uint32_t *x_planes,
                              int             x_bits,
                              int             x_signed,
                              const uint32_t *w_planes,
                              int             w_bits,
                              int             w_signed,
                              int             m,
                              int             n,
                              int64_t         k,
                              int32_t        *y,
                              cudaStream_t    stream)
{
  int64_t words = (k + 127) / 128 * 4;
  dim3 grid ((unsigned int) ((n + BP_WARPS * BP_ROWS - 1) / (BP_WARPS * BP_ROWS)),
             (unsigned int) ((m + BP_MT - 1) / BP_MT));

  BL_CUDA_LAUNCH (bitplane_gemm_kernel, grid, BP_WARPS * 32, stream) (x_planes, x_bits, x_signed, w_planes, w_bits,
                                                                       w_signed, m, n, words, y);
  return cudaGetLastError ();
}
