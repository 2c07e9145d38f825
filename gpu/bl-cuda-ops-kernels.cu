/* bl-cuda-ops.cu: the element-wise and row-wise ops of the forward pass
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * The matrix products (linear layers, attention scores) are cuBLAS calls made by
 * bl-cuda-backend.c; these kernels are the rest of #BlBackendClass. Each follows the CPU
 * backend's formula (core/bl-backend-cpu.c): the RMSNorm sum of squares in double, the rotary
 * products rounded before their sum, softmax and log-sum-exp sums of exponentials in double.
 * They are not bit-exact with the CPU (e^x differs, and so does the order of the sums); the
 * parity tests allow a stated tolerance.
 */
#include "bl-cuda-kernels-private.h"

#include <math.h>

#define ROW_THREADS 256

static unsigned int
blocks_for (size_t n,
            int    threads)
{
  size_t b = (n + (size_t) threads - 1) / (size_t) threads;

  return (unsigned int) (b < 1 ? 1 : (b > (1u << 20) ? (1u << 20) : b));
}

/* the sum of one double per thread of the block, returned to every thread */
static __device__ double
block_sum (double v)
{
  __shared__ double partial[ROW_THREADS / 32];
  int lane = threadIdx.x % 32, warp = threadIdx.x / 32;

  for (int o = 16; o > 0; o /= 2)
    v += __shfl_xor_sync (0xffffffffu, v, o);
  __syncthreads ();
  if (lane == 0)
    partial[warp] = v;
  __syncthreads ();
  v = 0.0;
  for (int w = 0; w < (int) (blockDim.x / 32); w++)
    v += partial[w];
  return v;
}

static __device__ float
block_max (float v)
{
  __shared__ float partial[ROW_THREADS / 32];
  int lane = threadIdx.x % 32, warp = threadIdx.x / 32;

  for (int o = 16; o > 0; o /= 2)
    v = fmaxf (v, __shfl_xor_sync (0xffffffffu, v, o));
  __syncthreads ();
  if (lane == 0)
    partial[warp] = v;
  __syncthreads ();
  v = -INFINITY;
  for (int w = 0; w < (int) (blockDim.x / 32); w++)
    v = fmaxf (v, partial[w]);
  return v;
}

/* ------------------------------------------------------------------------------------------ */

static __global__ void
get_rows_kernel (float         *dst,
                 const float   *table,
                 const int32_t *ids,
                 int            n,
                 int            dim)
{
  size_t total = (size_t) n * (size_t) dim;

  for (size_t i = blockIdx.x * (size_t) blockDim.x + threadIdx.x; i < total; i += (size_t) gridDim.x * blockDim.x)
    {
      size_t row = i / (size_t) dim;
      size_t col = i - row * (size_t) dim;

      dst[i] = table[(size_t) ids[row] * (size_t) dim + col];
    }
}

cudaError_t
bl_cuda_launch_get_rows (float         *dst,
                         const float   *table,
                         const int32_t *ids,
                         int            n,
                         int            dim,
                         cudaStream_t   stream)
{
  BL_CUDA_LAUNCH (get_rows_kernel, blocks_for ((size_t) n * dim, 256), 256, stream) (dst, table, ids, n, dim);
  return cudaGetLastError ();
}

/* As torch.addmm does for nn.Linear: the bias is broadcast into the output first and the
 * product is accumulated onto it (cpu_matmul). */
static __global__ void
bias_rows_kernel (float       *y,
                  const float *bias,
                  int          n,
                  int          out,
                  int          accumulate)
{
  size_t total = (size_t) n * (size_t) out;

  for (size_t i = blockIdx.x * (size_t) blockDim.x + threadIdx.x; i < total; i += (size_t) gridDim.x * blockDim.x)
    {
      float b = bias[i % (size_t) out];

      y[i] = accumulate ? y[i] + b : b;
    }
}

cudaError_t
bl_cuda_launch_bias_rows (float       *y,
                          const float *bias,
                          int          n,
                          int          out,
                          int          accumulate,
                          cudaStream_t stream)
{
  BL_CUDA_LAUNCH (bias_rows_kernel, blocks_for ((size_t) n * out, 256), 256, stream) (y, bias, n, out, accumulate);
  return cudaGetLastError ();
}

/* HF LlamaRMSNorm: x · rsqrt(mean(x²) + eps) in fp32, then weight · that; one block per row.
 * Every thread reads and writes only its own columns after the reduction, so @y may be @x. */
static __global__ void
rmsnorm_kernel (float       *y,
                const float *x,
                const float *w,
                int          dim,
                float        eps)
{
  const float *xr = x + (size_t) blockIdx.x * dim;
  float *yr = y + (size_t) blockIdx.x * dim;
  double ss = 0.0;
  float r;

  for (int j = threadIdx.x; j < dim; j += blockDim.x)
    ss += (double) xr[j] * (double) xr[j];
  ss = block_sum (ss);
  r = __fdiv_rn (1.0f, __fsqrt_rn (__fadd_rn (__double2float_rn (ss / dim), eps)));
  for (int j = threadIdx.x; j < dim; j += blockDim.x)
    yr[j] = __fmul_rn (w[j], __fmul_rn (xr[j], r));
}

cudaError_t
bl_cuda_launch_rmsnorm (float       *y,
                        const float *x,
                        const float *w,
                        int          n,
                        int          dim,
                        float        eps,
                        cudaStream_t stream)
{
  BL_CUDA_LAUNCH (rmsnorm_kernel, n, ROW_THREADS, stream) (y, x, w, dim, eps);
  return cudaGetLastError ();
}

/* rotate-half RoPE, in place; each product rounded before the sum, as HF and the CPU do */
static __global__ void
rope_kernel (float       *x,
             const float *cos,
             const float *sin,
             int          n,
             int          n_heads,
             int          head_dim)
{
  int half = head_dim / 2;
  size_t total = (size_t) n * (size_t) n_heads * (size_t) half;

  for (size_t t = blockIdx.x * (size_t) blockDim.x + threadIdx.x; t < total; t += (size_t) gridDim.x * blockDim.x)
    {
      size_t j = t % (size_t) half;
      size_t h = (t / (size_t) half) % (size_t) n_heads;
      size_t i = t / ((size_t) half * (size_t) n_heads);
      float *lo = x + i * (size_t) n_heads * (size_t) head_dim + h * (size_t) head_dim;
      float c = cos[i * (size_t) half + j];
      float s = sin[i * (size_t) half + j];
      float a = lo[j];
      float b = lo[j + (size_t) half];

      lo[j] = __fsub_rn (__fmul_rn (a, c), __fmul_rn (b, s));
      lo[j + (size_t) half] = __fadd_rn (__fmul_rn (b, c), __fmul_rn (a, s));
    }
}

cudaError_t
bl_cuda_launch_rope (float       *x,
                     const float *cos,
                     const float *sin,
                     int          n,
                     int          n_heads,
                     int          head_dim,
                     cudaStream_t stream)
{
  size_t items = (size_t) n * n_heads * (head_dim / 2);

  BL_CUDA_LAUNCH (rope_kernel, blocks_for (items, 256), 256, stream) (x, cos, sin, n, n_heads, head_dim);
  return cudaGetLastError ();
}

/* Softmax of each row of @scores ([batch][rows][keys]); row r attends to the keys in columns
 * first…row0 + r, where first is 0, or under a sliding window of @window keys
 * max(0, row0 + r − window + 1); the masked keys get probability 0, as exp(−inf) gives in
 * HF's masked softmax. One block per row. */
static __global__ void
causal_softmax_kernel (float *scores,
                       int    rows,
                       int    keys,
                       int    row0,
                       int    window)
{
  int r = blockIdx.x % rows;
  float *p = scores + (size_t) blockIdx.x * (size_t) keys;
  int end = row0 + r + 1 < keys ? row0 + r + 1 : keys;
  int first = window > 0 && end - window > 0 ? end - window : 0;
  float m = -INFINITY;
  double sum = 0.0;
  float inv;

  for (int j = first + threadIdx.x; j < end; j += blockDim.x)
    m = fmaxf (m, p[j]);
  m = block_max (m);
  for (int j = first + threadIdx.x; j < end; j += blockDim.x)
    {
      float e = expf (p[j] - m);

      p[j] = e;
      sum += e;
    }
  sum = block_sum (sum);
  inv = (float) (1.0 / sum);
  for (int j = threadIdx.x; j < keys; j += blockDim.x)
    p[j] = j >= first && j < end ? p[j] * inv : 0.0f;
}

cudaError_t
bl_cuda_launch_causal_softmax (float       *scores,
                               int          batch,
                               int          rows,
                               int          keys,
                               int          row0,
                               int          window,
                               cudaStream_t stream)
{
  BL_CUDA_LAUNCH (causal_softmax_kernel, batch * rows, ROW_THREADS, stream) (scores, rows, keys, row0,
                                                                             window);
  return cudaGetLastError ();
}

/* silu(gate) · up = gate / (1 + e^−gate) · up (Shazeer 2020) */
static __global__ void
swiglu_kernel (float       *out,
               const float *gate,
               const float *up,
               size_t       n)
{
  for (size_t i = blockIdx.x * (size_t) blockDim.x + threadIdx.x; i < n; i += (size_t) gridDim.x * blockDim.x)
    {
      float g = gate[i];

      out[i] = __fmul_rn (__fdiv_rn (g, __fadd_rn (1.0f, expf (-g))), up[i]);
    }
}

cudaError_t
bl_cuda_launch_swiglu (float       *out,
                       const float *gate,
                       const float *up,
                       size_t       n,
                       cudaStream_t stream)
{
  BL_CUDA_LAUNCH (swiglu_kernel, blocks_for (n, 256), 256, stream) (out, gate, up, n);
  return cudaGetLastError ();
}

static __global__ void
add_kernel (float       *x,
            const float *y,
            size_t       n)
{
  for (size_t i = blockIdx.x * (size_t) blockDim.x + threadIdx.x; i < n; i += (size_t) gridDim.x * blockDim.x)
    x[i] += y[i];
}

cudaError_t
bl_cuda_launch_add (float       *x,
                    const float *y,
                    size_t       n,
                    cudaStream_t stream)
{
  BL_CUDA_LAUNCH (add_kernel, blocks_for (n, 256), 256, stream) (x, y, n);
  return cudaGetLastError ();
}

/* −log softmax(l)_t = M + log Σ e^(l − M) − l_t for each row of @logits, the sum in double;
 * one block per row */
static __global__ void
nll_rows_kernel (const float   *logits,
                 int            vocab,
                 const int32_t *targets,
                 double        *nll)
{
  const float *l = logits + (size_t) blockIdx.x * (size_t) vocab;
  float m = -INFINITY;
  double sum = 0.0;

  for (int j = threadIdx.x; j < vocab; j += blockDim.x)
    m = fmaxf (m, l[j]);
  m = block_max (m);
  for (int j = threadIdx.x; j < vocab; j += blockDim.x)
    sum += (double) expf (l[j] - m);
  sum = block_sum (sum);
  if (threadIdx.x == 0)
    nll[blockIdx.x] = (double) m + log (sum) - (double) l[targets[blockIdx.x]];
}

cudaError_t
bl_cuda_launch_nll_rows (const float   *logits,
                         int            rows,
                         int            vocab,
                         const int32_t *targets,
                         double        *nll,
                         cudaStream_t   stream)
{
  BL_CUDA_LAUNCH (nll_rows_kernel, rows, ROW_THREADS, stream) (logits, vocab, targets, nll);
  return cudaGetLastError ();
}
