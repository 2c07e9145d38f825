/* bl-cuda-emu-threads.h: CUDA's execution model on host threads, to compile .cu files for the CPU
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * Included by tests/test-cuda-emulated-ops.cpp and tests/test-cuda-emulated-gemm.cpp, which
 * build gpu/bl-cuda-ops-kernels.cu and gpu/bl-cuda-gemm-kernels.cu with CUDA's execution model
 * played by host threads: a launch runs its blocks one after another, each block's threads
 * at once as std::threads; __syncthreads is a barrier of the block, warp shuffles and
 * reductions exchange values through a barrier of the warp, __shared__ variables are shared
 * by the block (static, as blocks do not overlap), atomics are atomic. The kernels therefore
 * run as written, lanes and all: a wrong lane index, a missed reduction step or a bad tile
 * bound shows here, on any machine. The _rn arithmetic is IEEE arithmetic in SSE (built with
 * -ffp-contract=off); e^x and fmaf come from the host's libm, so results that depend on them
 * are compared with a tolerance (tests/test-cuda-emulated.c). The tensor-core GEMM and the
 * cuBLAS calls are not emulated.
 */
#pragma once

#include <pthread.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>

#include <cuda_runtime_api.h>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ static
#define __constant__
#define __launch_bounds__(...)

struct dim3
{
  unsigned int x, y, z;

  dim3 (unsigned int x_ = 1, unsigned int y_ = 1, unsigned int z_ = 1) : x (x_), y (y_), z (z_) {}
};

static dim3 blockIdx, blockDim, gridDim;
static thread_local dim3 threadIdx;

struct uint4
{
  unsigned int x, y, z, w;
};

static inline uint4
make_uint4 (unsigned int x,
            unsigned int y,
            unsigned int z,
            unsigned int w)
{
  return uint4 { x, y, z, w };
}

template <typename T>
static inline T
__ldg (const T *p)
{
  return *p;
}

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
static inline float __fsqrt_rn (float a) { return std::sqrt (a); }
static inline float __double2float_rn (double d) { return (float) d; }
static inline int __popc (unsigned int v) { return __builtin_popcount (v); }

/* the threads of the block running now */
typedef struct
{
  pthread_barrier_t block;
  pthread_barrier_t warps[32];
  unsigned long long slots[1024];
} BlEmuBlock;

static BlEmuBlock *bl_emu_block;

static inline void
__syncthreads (void)
{
  pthread_barrier_wait (&bl_emu_block->block);
}

/* every lane of the warp publishes @v and reads lane @src's */
template <typename T>
static T
bl_emu_exchange (T            v,
                 unsigned int src)
{
  unsigned int t = threadIdx.x, warp = t / 32;
  unsigned long long raw = 0;
  T out;

  memcpy (&raw, &v, sizeof v);
  bl_emu_block->slots[t] = raw;
  pthread_barrier_wait (&bl_emu_block->warps[warp]);
  raw = bl_emu_block->slots[warp * 32 + src];
  pthread_barrier_wait (&bl_emu_block->warps[warp]);
  memcpy (&out, &raw, sizeof out);
  return out;
}

template <typename T>
static inline T
__shfl_xor_sync (unsigned int mask,
                 T            v,
                 int          lane_mask)
{
  return bl_emu_exchange (v, (threadIdx.x % 32) ^ (unsigned int) lane_mask);
}

static inline unsigned int
__reduce_max_sync (unsigned int mask,
                   unsigned int v)
{
  for (int o = 16; o > 0; o /= 2)
    {
      unsigned int other = __shfl_xor_sync (mask, v, o);

      v = other > v ? other : v;
    }
  return v;
}

static inline unsigned int
atomicMax (unsigned int *p,
           unsigned int  v)
{
  unsigned int old = __atomic_load_n (p, __ATOMIC_SEQ_CST);

  while (v > old && !__atomic_compare_exchange_n (p, &old, v, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
    ;
  return old;
}

template <typename K>
struct BlEmuLaunch
{
  K kernel;
  dim3 grid;
  unsigned int threads;

  template <typename... A>
  void
  operator() (A... args) const
  {
    gridDim = grid;
    blockDim = dim3 (threads);
    for (unsigned int by = 0; by < grid.y; by++)
      for (unsigned int bx = 0; bx < grid.x; bx++)
        {
          BlEmuBlock block;
          std::vector<std::thread> workers;

          blockIdx = dim3 (bx, by);
          pthread_barrier_init (&block.block, NULL, threads);
          for (unsigned int w = 0; w * 32 < threads; w++)
            pthread_barrier_init (&block.warps[w], NULL, threads - w * 32 < 32 ? threads - w * 32 : 32);
          bl_emu_block = &block;
          for (unsigned int t = 0; t < threads; t++)
            workers.emplace_back ([=] {
              threadIdx = dim3 (t);
              kernel (args...);
            });
          for (std::thread &worker : workers)
            worker.join ();
          for (unsigned int w = 0; w * 32 < threads; w++)
            pthread_barrier_destroy (&block.warps[w]);
          pthread_barrier_destroy (&block.block);
        }
  }
};

template <typename K>
static BlEmuLaunch<K>
bl_emu_launch (dim3         grid,
               unsigned int block,
               K            kernel)
{
  return BlEmuLaunch<K> { kernel, grid, block };
}

#define BL_CUDA_LAUNCH(kernel, grid, block, stream) bl_emu_launch ((grid), (block), kernel)
