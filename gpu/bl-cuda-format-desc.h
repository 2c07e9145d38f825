/* bl-cuda-format-desc.h: a format spec as the format kernels read it, built without CUDA
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <glib.h>

#include "bl-cuda-format-types.h"
#include "bl-format.h"

G_BEGIN_DECLS

void    bl_cuda_format_describe       (const BlFormatSpec    *spec,
                                       const BlPackedHeader  *header,
                                       BlCudaFormat          *out);
gint64  bl_cuda_format_n4             (const BlFormatSpec    *spec,
                                       gint64                 n_groups);
gsize   bl_cuda_format_layout_scratch (const BlCudaFormat    *format,
                                       gsize                  stats_bytes,
                                       gsize                  sort_temp_bytes,
                                       guint8                *block,
                                       BlCudaFormatScratch   *scratch);

G_END_DECLS
