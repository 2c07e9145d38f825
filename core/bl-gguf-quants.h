/* bl-gguf-quants.h: ggml's block layouts for the types Bitlens writes into GGUF files
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * The structs and the reference encoders follow ggml/src/ggml-common.h and ggml-quants.c
 * (quantize_row_q8_0_ref, quantize_row_q4_0_ref, quantize_row_mxfp4_ref and the matching
 * dequantize_row_*), so that llama.cpp reads back exactly what bl_ggml_quantize_row()
 * writes. A block covers 32 consecutive elements of one row (ne[0]).
 *
 *   Q8_0   fp16 d, then 32 int8 q;           x = q·d,        d = amax/127, q = roundf(x/d)
 *   Q4_0   fp16 d, then 16 bytes of nibbles; x = (q − 8)·d,  d = (signed max)/−8,
 *          byte j holds element j in its low nibble and element j + 16 in its high nibble
 *   MXFP4  E8M0 e, then 16 bytes of nibbles as Q4_0; x = kvalues_mxfp4[q]·2^(e − 128),
 *          e = floor(log2 amax) − 2 + 127, q the nearest table entry (the lowest index on
 *          a tie). The table holds the E2M1 values doubled, hence the half scale.
 */
#pragma once

#include <glib.h>
#include <stdint.h>

#include "bl-gguf.h"

G_BEGIN_DECLS

#define BL_GGML_QK 32

typedef struct
{
  uint16_t d;
  int8_t qs[BL_GGML_QK];
} BlBlockQ8_0;

typedef struct
{
  uint16_t d;
  uint8_t qs[BL_GGML_QK / 2];
} BlBlockQ4_0;

typedef struct
{
  uint8_t e;
  uint8_t qs[BL_GGML_QK / 2];
} BlBlockMxfp4;

G_STATIC_ASSERT (sizeof (BlBlockQ8_0) == 34);
G_STATIC_ASSERT (sizeof (BlBlockQ4_0) == 18);
G_STATIC_ASSERT (sizeof (BlBlockMxfp4) == 17);

gboolean bl_ggml_type_can_encode (BlGgmlType   type);
void     bl_ggml_quantize_row    (BlGgmlType   type,
                                  const float *x,
                                  guint8      *dst,
                                  gint64       n);
gboolean bl_ggml_dequantize_row  (guint32      type,
                                  const guint8 *src,
                                  float       *y,
                                  gint64       n);
float    bl_ggml_e8m0_to_f32_half (guint8      e);

G_END_DECLS
