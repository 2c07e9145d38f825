/* bl-cuda-format-private.h: one format kernel call (its description and device scratch)
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include "bl-cuda-backend-private.h"
#include "bl-cuda-format-desc.h"
#include "bl-cuda-format.h"
#include "bl-cuda-kernels-private.h"

G_BEGIN_DECLS

typedef struct
{
  BlCudaContext *ctx;
  BlFormatSpec spec;
  BlPackedHeader header;      /* layout, geometry and section offsets (tensor_scale 1) */
  BlCudaFormat format;        /* the host copy of what the kernels read */
  BlCudaFormatScratch scratch;
  void *block;                /* the one device allocation behind @scratch */
  int64_t n4;                 /* int2+int4: groups kept at 4 bits */
} BlCudaFormatCall;

gboolean bl_cuda_format_call_init   (BlCudaFormatCall   *call,
                                     BlCudaContext      *ctx,
                                     const BlFormatSpec *spec,
                                     gint64              n_rows,
                                     gint64              n_cols,
                                     GError            **error);
gboolean bl_cuda_format_call_params (BlCudaFormatCall   *call,
                                     const float        *x,
                                     GError            **error);
void     bl_cuda_format_call_clear  (BlCudaFormatCall   *call);

G_END_DECLS
