/* bl-cuda-w4-private.cuh: reading a 4-bit weight (BlCudaW4) in device code
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * Shared by the GEMV (bl-cuda-gemm-kernels.cu) and the tensor-core GEMM
 * (bl-cuda-wmma-kernels.cu): each weight is decoded as bl_format_dequantize() decodes it.
 */
#pragma once

#include <cuda_fp16.h>

#include "bl-cuda-kernels-private.h"

/* E2M1 (OCP MX FP4) values by code, peers.md §3.1 */
static __constant__ float e2m1_values[16] = {
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

