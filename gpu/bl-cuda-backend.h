/* bl-cuda-backend.h: the CUDA implementation of the BlBackend interface
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * This header names no CUDA type: programs that register the backend (app/, the tests, the
 * benchmarks) build with plain C flags. Device addresses travel as BlBuffer (fp32 element
 * counts; a buffer of n elements holds 4·n bytes, which the packed kernels use for int8,
 * bf16, bit planes and codes).
 */
#pragma once

#include <glib.h>

#include "bl-backend.h"

G_BEGIN_DECLS

void      bl_backend_cuda_register        (void);
gboolean  bl_backend_cuda_probe           (GError        **error);
gboolean  bl_backend_is_cuda              (BlBackend      *backend);
gpointer  bl_cuda_backend_get_stream      (BlBackend      *backend);

BlBuffer *bl_cuda_buffer_new_bytes        (BlBackend      *backend,
                                           gsize           n_bytes,
                                           GError        **error);
gpointer  bl_cuda_buffer_get_data         (BlBuffer       *buffer);
gboolean  bl_cuda_buffer_upload_bytes     (BlBackend      *backend,
                                           BlBuffer       *buffer,
                                           gsize           offset,
                                           gconstpointer   src,
                                           gsize           n_bytes,
                                           GError        **error);
gboolean  bl_cuda_buffer_download_bytes   (BlBackend      *backend,
                                           BlBuffer       *buffer,
                                           gsize           offset,
                                           gpointer        dst,
                                           gsize           n_bytes,
                                           GError        **error);

G_END_DECLS
