/* bl-cuda-gemm.cu: packed low-bit GEMV/GEMM kernels
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * - 4-bit weight-only (W4A16): int4 with group scales (and zero points), NVFP4 and MXFP4,
 *   read straight from the format library's packed layout (core/bl-format-blocks.h) and
 *   dequantized in registers. Up to 8 tokens a warp streams 4 weight rows and reuses every
 *   activation it loads for all of them; beyond that a tiled bf16 tensor-core (WMMA) GEMM
 *   dequantizes each weight tile into shared memory.
 * - the W8A8 activation quantizer (per-token absmax int8, bit for bit bl_format_quantize's
 *   "int8:token:scale=fp32") and the int32 → fp32 epilogue around cuBLASLt's IMMA GEMM.
 * - the ABQ-LLM bit-plane WpAq GEMM (methods.md §1, gpu/bl-bitplane.h): p·q AND-popcount
 *   products recombined with signed powers of two, in wrapping 32-bit arithmetic, so that the
 *   result equals bl_bitplane_gemm_ref() exactly whatever the order of the sums.
 */
#include "bl-cuda-kernels-private.h"

#include <cuda_bf16.h>
#include <mma.h>

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

/* E2M1 (OCP MX FP4) values by code, peers.md §3.1 */
__constant__ float e2m1_values[16] = {
  0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f,
  -0.0f, -0.5f, -1.0f, -1.5f, -2.0f, -3.0f, -4.0f, -6.0f,
};

/* the decoded scale of group @g, as bl_format_load_scale (times s_T for NVFP4) */
static __device__ __forceinline__ float
w4_scale (const BlCudaW4 &w,
          int64_t         g)
{
  switch (w.scale_kind)
    {
    case BL_PACKED_SCALE_F16:
      return __half2float (__ushort_as_half (((const uint16_t *) w.scales)[g]));
    case BL_PACKED_SCALE_BF16:
      return __uint_as_float ((uint32_t) ((const uint16_t *) w.scales)[g] << 16);
    case BL_PACKED_SCALE_E8M0:
      {
        uint32_t c = w.scales[g];

        return c == 0xff ? __uint_as_float (0x7fc00000u) : (c == 0 ? __uint_as_float (0x00400000u)
                                                                   : __uint_as_float (c << 23));
      }
    case BL_PACKED_SCALE_UE4M3:
      {
        uint32_t c = w.scales[g] & 0x7f, e = c >> 3, m = c & 7;
        float v = e == 15 && m == 7 ? __uint_as_float (0x7fc00000u)
                                    : (e == 0 ? ldexpf ((float) m, -9) : ldexpf ((float) (8 + m), (int) e - 10));

        return w.tensor_scale * v;
      }
    case BL_PACKED_SCALE_F32:
    default:
      return ((const float *) w.scales)[g];
    }
}

static __device__ __forceinline__ int
w4_zero (const BlCudaW4 &w,
         int64_t         g)
{
  if (w.zeros == NULL)
    return w.implicit_zero;
  return (w.zeros[g / 2] >> (4 * (g % 2))) & 0xf;
}

/* the 8 weights of one 32-bit word of codes (columns col…col + 7 of a row) */
static __device__ __forceinline__ void
w4_dequant_word (const BlCudaW4 &w,
                 int64_t         row,
                 int             col,
                 uint32_t        word,
                 float           out[8])
{
  int64_t g = row * w.groups_per_row + col / w.group_size;
  float s = w4_scale (w, g);

  if (w.kind == BL_CUDA_W4_INT)
    {
      int z = w4_zero (w, g);

#pragma unroll
      for (int t = 0; t < 8; t++)
        out[t] = (float) ((int) ((word >> (4 * t)) & 0xf) - z) * s;
    }
  else
    {
#pragma unroll
      for (int t = 0; t < 8; t++)
        out[t] = e2m1_values[(word >> (4 * t)) & 0xf] * s;
    }
}

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
bl_cuda_launch_w4_gemm (const BlCudaW4 *w,
                        const uint16_t *x_bf16,
                        float          *y,
                        int             m,
                        cudaStream_t    stream)
{
  int rows_per_block = W4_GEMV_WARPS * W4_GEMV_ROWS;
  unsigned int gemv_blocks = (unsigned int) ((w->n + rows_per_block - 1) / rows_per_block);

  switch (m)
    {
    case 1: w4_gemv_kernel<1><<<gemv_blocks, W4_GEMV_WARPS * 32, 0, stream>>> (*w, x_bf16, y); break;
    case 2: w4_gemv_kernel<2><<<gemv_blocks, W4_GEMV_WARPS * 32, 0, stream>>> (*w, x_bf16, y); break;
    case 3: w4_gemv_kernel<3><<<gemv_blocks, W4_GEMV_WARPS * 32, 0, stream>>> (*w, x_bf16, y); break;
    case 4: w4_gemv_kernel<4><<<gemv_blocks, W4_GEMV_WARPS * 32, 0, stream>>> (*w, x_bf16, y); break;
    case 5: w4_gemv_kernel<5><<<gemv_blocks, W4_GEMV_WARPS * 32, 0, stream>>> (*w, x_bf16, y); break;
    case 6: w4_gemv_kernel<6><<<gemv_blocks, W4_GEMV_WARPS * 32, 0, stream>>> (*w, x_bf16, y); break;
    case 7: w4_gemv_kernel<7><<<gemv_blocks, W4_GEMV_WARPS * 32, 0, stream>>> (*w, x_bf16, y); break;
    case 8: w4_gemv_kernel<8><<<gemv_blocks, W4_GEMV_WARPS * 32, 0, stream>>> (*w, x_bf16, y); break;
    default:
      {
        dim3 grid ((unsigned int) ((w->n + W4_BN - 1) / W4_BN), (unsigned int) ((m + W4_BM - 1) / W4_BM));

        w4_gemm_kernel<<<grid, 128, 0, stream>>> (*w, x_bf16, y, m);
      }
      break;
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
  quantize_rows_i8_kernel<<<m, QUANT_THREADS, 0, stream>>> (x, q, scale, k);
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
  dequant_i32_kernel<<<blocks_for ((size_t) m * n, 256), 256, 0, stream>>> (acc, sx, sw, y, m, n);
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
  f32_to_bf16_kernel<<<blocks_for (n, 256), 256, 0, stream>>> (x, y, n);
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

  bitplane_pack_kernel<<<blocks_for ((size_t) (bits * rows * words), 256), 256, 0, stream>>> (codes, rows, k, bits,
                                                                                            words, planes);
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

  bitplane_gemm_kernel<<<grid, BP_WARPS * 32, 0, stream>>> (x_planes, x_bits, x_signed, w_planes, w_bits, w_signed,
                                                             m, n, words, y);
  return cudaGetLastError ();
}
