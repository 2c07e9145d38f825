/* cuda_fp16.h: the half conversions the GEMM kernels use, for their CPU emulation
 * (tests/test-cuda-emulated-threads.cpp); not the CUDA toolkit's header
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <cmath>

struct __half
{
  unsigned short x;
};

static inline __half
__ushort_as_half (unsigned short u)
{
  return __half { u };
}

/* IEEE binary16 → binary32, exact */
static inline float
__half2float (__half h)
{
  unsigned int e = (h.x >> 10) & 0x1f, m = h.x & 0x3ff;
  float v;

  if (e == 31)
    v = m != 0 ? NAN : INFINITY;
  else if (e == 0)
    v = std::ldexp ((float) m, -24);
  else
    v = std::ldexp ((float) (1024 + m), (int) e - 25);
  return (h.x & 0x8000) ? -v : v;
}
