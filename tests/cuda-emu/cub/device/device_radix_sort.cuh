/* device_radix_sort.cuh: cub::DeviceRadixSort::SortKeys for the CPU emulation of the format
 * kernels (tests/test-cuda-emulated.c); not CUB's header
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <algorithm>
#include <cstdint>

#include <cuda_runtime_api.h>

namespace cub
{
struct DeviceRadixSort
{
  /* the ascending order of 32-bit keys, as CUB's radix sort gives it */
  static cudaError_t
  SortKeys (void            *temp,
            size_t          &temp_bytes,
            const uint32_t  *in,
            uint32_t        *out,
            int              n,
            int              begin_bit = 0,
            int              end_bit = 32,
            cudaStream_t     stream = NULL)
  {
    if (temp == NULL)
      {
        temp_bytes = 1;
        return cudaSuccess;
      }
    std::copy (in, in + n, out);
    std::sort (out, out + n);
    return cudaSuccess;
  }
};
}
