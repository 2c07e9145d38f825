/* cuda_runtime_api.h: the few CUDA runtime names the format kernels use, for their CPU
 * emulation (tests/test-cuda-emulated.c); not the CUDA toolkit's header
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <stddef.h>

typedef int cudaError_t;
typedef struct _BlEmuStream *cudaStream_t;

enum { cudaSuccess = 0, cudaErrorInvalidValue = 1 };

#ifdef __cplusplus
extern "C" {
#endif

cudaError_t cudaGetLastError (void);
cudaError_t cudaMemsetAsync  (void         *data,
                              int           value,
                              size_t        n_bytes,
                              cudaStream_t  stream);

#ifdef __cplusplus
}
#endif
