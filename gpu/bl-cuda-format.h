/* bl-cuda-format.h: fake-quant on the GPU, bit for bit as the format library's reference
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <glib.h>

#include "bl-backend.h"
#include "bl-format.h"

G_BEGIN_DECLS

gboolean bl_cuda_format_fake_quant (BlBackend          *backend,
                                    const BlFormatSpec *spec,
                                    BlBuffer           *src,
                                    BlBuffer           *dst,
                                    gint64              n_rows,
                                    gint64              n_cols,
                                    GError            **error);

G_END_DECLS
