/* bl-cuda-packed.h: a packed quantized tensor in GPU memory
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <glib.h>

#include "bl-backend.h"
#include "bl-format.h"

G_BEGIN_DECLS

typedef struct _BlCudaPacked BlCudaPacked;

BlCudaPacked         *bl_cuda_packed_quantize    (BlBackend          *backend,
                                                  const BlFormatSpec *spec,
                                                  BlBuffer           *src,
                                                  gint64              n_rows,
                                                  gint64              n_cols,
                                                  GError            **error);
BlCudaPacked         *bl_cuda_packed_upload      (BlBackend          *backend,
                                                  const guint8       *packed,
                                                  gsize               packed_size,
                                                  GError            **error);
gboolean              bl_cuda_packed_download    (BlCudaPacked       *self,
                                                  guint8             *dst,
                                                  gsize               dst_size,
                                                  GError            **error);
gboolean              bl_cuda_packed_dequantize  (BlCudaPacked       *self,
                                                  BlBuffer           *dst,
                                                  GError            **error);
const BlPackedHeader *bl_cuda_packed_get_header  (BlCudaPacked       *self);
const BlFormatSpec   *bl_cuda_packed_get_spec    (BlCudaPacked       *self);
gsize                 bl_cuda_packed_get_size    (BlCudaPacked       *self);
gconstpointer         bl_cuda_packed_get_data    (BlCudaPacked       *self);
void                  bl_cuda_packed_free        (BlCudaPacked       *self);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (BlCudaPacked, bl_cuda_packed_free)

G_END_DECLS
