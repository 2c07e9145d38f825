/* bl-gguf-quants.h: ggml's block layouts for the types Bitlens writes into GGUF files, and
 * for the ones it reads from them
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
 *
 * Bitlens only decodes the other legacy types and the K-quants (ggml-common.h block_q4_1 …
 * block_q8_K; ggml-quants.c dequantize_row_q4_1 … dequantize_row_q8_K; the K-quants were
 * introduced in llama.cpp PR #1684). Fields are in file order:
 *
 *   Q4_1   fp16 d, fp16 m, 16 bytes of nibbles as Q4_0;    x = q·d + m
 *   Q5_0   fp16 d, 32 high bits qh, nibbles as Q4_0;        x = (q − 16)·d, bit j of qh is
 *          the fifth bit of element j
 *   Q5_1   fp16 d, fp16 m, qh and nibbles as Q5_0;          x = q·d + m
 *
 * A K-quant super-block covers 256 elements (QK_K) in sub-blocks of 16 or 32 that share a
 * small integer scale (and a min for the "type-1" ones), itself scaled by the fp16 d (dmin):
 *
 *   Q2_K   16 bytes of 4-bit scale | 4-bit min << 4, 64 bytes of 2-bit q, fp16 d, dmin;
 *          sub-blocks of 16, x = d·sc·q − dmin·m
 *   Q3_K   32 bytes hmask, 64 bytes of 2-bit q, 12 bytes of sixteen 6-bit scales, fp16 d;
 *          sub-blocks of 16, x = d·(sc − 32)·(q − (high bit ? 0 : 4))
 *   Q4_K   fp16 d, dmin, 12 bytes of eight 6-bit scales and mins (get_scale_min_k4), 128
 *          bytes of nibbles; sub-blocks of 32, x = d·sc·q − dmin·m
 *   Q5_K   as Q4_K with 32 bytes of high bits qh before the nibbles
 *   Q6_K   128 bytes of low nibbles ql, 64 bytes of 2-bit highs qh, 16 int8 scales, fp16 d;
 *          sub-blocks of 16, x = d·sc·(q − 32)
 *   Q8_K   f32 d, 256 int8 q, 16 int16 sums (only for dot products); x = d·q
 *
 * Which element of a super-block each bit field holds is spelled out beside the decoders in
 * bl-gguf-quants.c.
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

typedef struct
{
  uint16_t d;
  uint16_t m;
  uint8_t qs[BL_GGML_QK / 2];
} BlBlockQ4_1;

typedef struct
{
  uint16_t d;
  uint8_t qh[4];
  uint8_t qs[BL_GGML_QK / 2];
} BlBlockQ5_0;

typedef struct
{
  uint16_t d;
  uint16_t m;
  uint8_t qh[4];
  uint8_t qs[BL_GGML_QK / 2];
} BlBlockQ5_1;

/* ggml-common.h QK_K and K_SCALE_SIZE */
#define BL_GGML_QK_K 256
#define BL_GGML_K_SCALE_SIZE 12

typedef struct
{
  uint8_t scales[BL_GGML_QK_K / 16];
  uint8_t qs[BL_GGML_QK_K / 4];
  uint16_t d;
  uint16_t dmin;
} BlBlockQ2_K;

typedef struct
{
  uint8_t hmask[BL_GGML_QK_K / 8];
  uint8_t qs[BL_GGML_QK_K / 4];
  uint8_t scales[12];
  uint16_t d;
} BlBlockQ3_K;

typedef struct
{
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[BL_GGML_K_SCALE_SIZE];
  uint8_t qs[BL_GGML_QK_K / 2];
} BlBlockQ4_K;

typedef struct
{
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[BL_GGML_K_SCALE_SIZE];
  uint8_t qh[BL_GGML_QK_K / 8];
  uint8_t qs[BL_GGML_QK_K / 2];
} BlBlockQ5_K;

typedef struct
{
  uint8_t ql[BL_GGML_QK_K / 2];
  uint8_t qh[BL_GGML_QK_K / 4];
  int8_t scales[BL_GGML_QK_K / 16];
  uint16_t d;
} BlBlockQ6_K;

typedef struct
{
  float d;
  int8_t qs[BL_GGML_QK_K];
  int16_t bsums[BL_GGML_QK_K / 16];
} BlBlockQ8_K;

/* the type_size column of ggml.c type_traits (and of bl-gguf.c's copy) */
G_STATIC_ASSERT (sizeof (BlBlockQ8_0) == 34);
G_STATIC_ASSERT (sizeof (BlBlockQ4_0) == 18);
G_STATIC_ASSERT (sizeof (BlBlockMxfp4) == 17);
G_STATIC_ASSERT (sizeof (BlBlockQ4_1) == 20);
G_STATIC_ASSERT (sizeof (BlBlockQ5_0) == 22);
G_STATIC_ASSERT (sizeof (BlBlockQ5_1) == 24);
G_STATIC_ASSERT (sizeof (BlBlockQ2_K) == 84);
G_STATIC_ASSERT (sizeof (BlBlockQ3_K) == 110);
G_STATIC_ASSERT (sizeof (BlBlockQ4_K) == 144);
G_STATIC_ASSERT (sizeof (BlBlockQ5_K) == 176);
G_STATIC_ASSERT (sizeof (BlBlockQ6_K) == 210);
G_STATIC_ASSERT (sizeof (BlBlockQ8_K) == 292);

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
