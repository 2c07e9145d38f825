/* cuda_bf16.h: the bfloat16 conversions the GEMM kernels use, for their CPU emulation
 * (tests/test-cuda-emulated-threads.cpp); not the CUDA toolkit's header
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <cstdint>
#include <cstring>

#include "cuda_fp16.h"

struct __nv_bfloat16
{
  unsigned short x;
};

/* round to nearest even; NaN becomes CUDA's canonical 0x7FFF */
static inline __nv_bfloat16
__float2bfloat16_rn (float f)
{
  uint32_t u;

  memcpy (&u, &f, sizeof u);
  if ((u & 0x7fffffffu) > 0x7f800000u)
    return __nv_bfloat16 { 0x7fff };
  return __nv_bfloat16 { (unsigned short) ((u + 0x7fffu + ((u >> 16) & 1u)) >> 16) };
}

static inline unsigned short
__bfloat16_as_ushort (__nv_bfloat16 b)
{
  return b.x;
}
