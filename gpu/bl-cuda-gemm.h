/* bl-cuda-gemm.h: packed low-bit matrix products on a CUDA backend
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * Every product is y[m, n] = x[m, k] · w[n, k]ᵀ with row-major operands (w as Hugging Face
 * stores linear weights), on device buffers of the backend (bl-cuda-backend.h). The work is
 * queued on the backend's stream; a failure inside a kernel is reported by the next
 * synchronisation.
 */
#pragma once

#include <glib.h>

#include "bl-backend.h"
#include "bl-cuda-packed.h"

G_BEGIN_DECLS

gboolean bl_cuda_gemm_weight4        (BlBackend     *backend,
                                      BlCudaPacked  *w,
                                      BlBuffer      *x_bf16,
                                      BlBuffer      *y,
                                      int            m,
                                      GError       **error);
gboolean bl_cuda_quantize_rows_int8  (BlBackend     *backend,
                                      BlBuffer      *x,
                                      BlBuffer      *q,
                                      BlBuffer      *scales,
                                      int            m,
                                      int            k,
                                      GError       **error);
gboolean bl_cuda_gemm_int8           (BlBackend     *backend,
                                      BlBuffer      *x_i8,
                                      BlBuffer      *w_i8,
                                      BlBuffer      *acc,
                                      int            m,
                                      int            n,
                                      int            k,
                                      GError       **error);
gboolean bl_cuda_dequant_int32       (BlBackend     *backend,
                                      BlBuffer      *acc,
                                      BlBuffer      *x_scales,
                                      BlBuffer      *w_scales,
                                      BlBuffer      *y,
                                      int            m,
                                      int            n,
                                      GError       **error);
gboolean bl_cuda_gemm_fp8            (BlBackend     *backend,
                                      BlBuffer      *x_e4m3,
                                      BlBuffer      *x_scale,
                                      BlBuffer      *w_e4m3,
                                      BlBuffer      *w_scale,
                                      BlBuffer      *y_bf16,
                                      int            m,
                                      int            n,
                                      int            k,
                                      GError       **error);
gboolean bl_cuda_gemm_bf16           (BlBackend     *backend,
                                      BlBuffer      *x_bf16,
                                      BlBuffer      *w_bf16,
                                      BlBuffer      *y,
                                      int            m,
                                      int            n,
                                      int            k,
                                      GError       **error);
gboolean bl_cuda_convert_bf16        (BlBackend     *backend,
                                      BlBuffer      *x,
                                      BlBuffer      *y_bf16,
                                      gsize          n,
                                      GError       **error);
gboolean bl_cuda_bitplane_pack       (BlBackend     *backend,
                                      BlBuffer      *codes,
                                      gint64         rows,
                                      gint64         k,
                                      int            bits,
                                      BlBuffer      *planes,
                                      GError       **error);
gboolean bl_cuda_gemm_bitplane       (BlBackend     *backend,
                                      BlBuffer      *x_planes,
                                      int            x_bits,
                                      gboolean       x_signed,
                                      BlBuffer      *w_planes,
                                      int            w_bits,
                                      gboolean       w_signed,
                                      int            m,
                                      int            n,
                                      gint64         k,
                                      BlBuffer      *y,
                                      GError       **error);

G_END_DECLS
