/* test-cuda-emulated-format.cpp: gpu/bl-cuda-format-kernels.cu compiled for the CPU
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * The same source the GPU runs, with CUDA's qualifiers, built-in variables and intrinsics
 * replaced by their host meaning: the _rn arithmetic is IEEE arithmetic in the host's SSE
 * units (this file is built with -ffp-contract=off, so nothing is fused), warp collectives
 * act on one lane, and a launch runs the kernel on one thread, whose grid-stride loops then
 * cover every element (or on each of a block's threads in turn when a kernel is written for
 * at most 8 of them). This checks the kernels' arithmetic and logic against the reference on
 * any machine; races, launch shapes and memory faults remain for the GPU run
 * (tests/test-cuda-format.c under compute-sanitizer).
 */
#include <cmath>
#include <cstdint>
#include <cstring>

#include <cuda_runtime_api.h>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline

struct BlEmuDim3
{
  unsigned int x, y, z;
};

static BlEmuDim3 threadIdx, blockIdx, blockDim, gridDim;

static inline uint32_t
__float_as_uint (float x)
{
  uint32_t u;

  memcpy (&u, &x, sizeof u);
  return u;
}

static inline float
__uint_as_float (uint32_t u)
{
  float x;

  memcpy (&x, &u, sizeof x);
  return x;
}

static inline float __fadd_rn (float a, float b) { return a + b; }
static inline float __fsub_rn (float a, float b) { return a - b; }
static inline float __fmul_rn (float a, float b) { return a * b; }
static inline float __fdiv_rn (float a, float b) { return a / b; }
static inline double __dadd_rn (double a, double b) { return a + b; }
static inline double __dsub_rn (double a, double b) { return a - b; }
static inline double __dmul_rn (double a, double b) { return a * b; }
static inline double __ddiv_rn (double a, double b) { return a / b; }
static inline float __double2float_rn (double d) { return (float) d; }

static inline int
__clz (int x)
{
  return x == 0 ? 32 : __builtin_clz ((unsigned int) x);
}

static inline unsigned int __reduce_max_sync (unsigned int mask, unsigned int v) { return v; }
static inline unsigned int __reduce_min_sync (unsigned int mask, unsigned int v) { return v; }

template <typename T>
static inline T
__shfl_down_sync (unsigned int mask,
                  T            v,
                  int          delta)
{
  return v;
}

template <typename T>
static inline T
atomicMax (T *p,
           T  v)
{
  T old = *p;

  *p = v > old ? v : old;
  return old;
}

template <typename T>
static inline T
atomicMin (T *p,
           T  v)
{
  T old = *p;

  *p = v < old ? v : old;
  return old;
}

template <typename K>
struct BlEmuLaunch
{
  K kernel;
  unsigned int threads;

  template <typename... A>
  void
  operator() (A... args) const
  {
    gridDim = { 1, 1, 1 };
    blockIdx = { 0, 0, 0 };
    blockDim = { threads, 1, 1 };
    for (unsigned int t = 0; t < threads; t++)
      {
        threadIdx = { t, 0, 0 };
        kernel (args...);
      }
  }
};

template <typename K>
static BlEmuLaunch<K>
bl_emu_launch (unsigned int grid,
               unsigned int block,
               K            kernel)
{
  return BlEmuLaunch<K> { kernel, block <= 8 ? block : 1 };
}

#define BL_CUDA_LAUNCH(kernel, grid, block, stream) bl_emu_launch ((grid), (block), kernel)

extern "C" cudaError_t
cudaGetLastError (void)
{
  return cudaSuccess;
}

extern "C" cudaError_t
cudaMemsetAsync (void         *data,
                 int           value,
                 size_t        n_bytes,
                 cudaStream_t  stream)
{
  memset (data, value, n_bytes);
  return cudaSuccess;
}

#include "bl-cuda-format-kernels.cu"
