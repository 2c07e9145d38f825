/* bl-format-codecs.h: element codecs (FP ExMy, E8M0, UE4M3, fp16, bf16) and fixed grids
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * These are the scalar reference encoders and decoders: every other path (the fast
 * fake-quant loops, the CUDA kernels) must agree with them bit for bit.
 */
#pragma once

#include <glib.h>

#include "bl-format.h"

G_BEGIN_DECLS

/**
 * BlFpSpecials:
 * @BL_FP_SPECIALS_NONE: every code is finite (FP6, FP4 and the other MX elements)
 * @BL_FP_SPECIALS_IEEE: the top exponent holds ±Inf and NaNs (E5M2, fp16, bf16)
 * @BL_FP_SPECIALS_FN: no Inf; only S.1111.111 is NaN (OCP E4M3 "E4M3FN")
 *
 * Special-value rules of peers.md §3.1.
 */
typedef enum
{
  BL_FP_SPECIALS_NONE,
  BL_FP_SPECIALS_IEEE,
  BL_FP_SPECIALS_FN,
} BlFpSpecials;

/**
 * BlFpFormat:
 * @ebits: exponent bits
 * @mbits: mantissa bits
 * @bias: exponent bias, 2^(ebits−1) − 1
 * @specials: Inf/NaN rule
 * @max_code: magnitude bits of the largest finite value
 * @max_finite: the largest finite value
 * @emax: exponent of the largest normal (MX "emax_elem")
 * @emin: exponent of the smallest normal, 1 − bias
 * @table: decoded value of every code, for formats of at most 8 bits
 *
 * A sign + ExMy element format. Initialise with bl_fp_format_init().
 */
typedef struct
{
  int ebits;
  int mbits;
  int bias;
  BlFpSpecials specials;
  guint32 max_code;
  float max_finite;
  int emax;
  int emin;
  float table[256];
} BlFpFormat;

void     bl_fp_format_init         (BlFpFormat       *fmt,
                                    int               ebits,
                                    int               mbits);
guint32  bl_fp_encode              (const BlFpFormat *fmt,
                                    float             x,
                                    BlRounding        rounding,
                                    gboolean          saturate,
                                    guint64           random);
float    bl_fp_decode              (const BlFpFormat *fmt,
                                    guint32           code);
gboolean bl_fp_code_is_nan         (const BlFpFormat *fmt,
                                    guint32           code);

float    bl_e8m0_decode            (guint8            code);
guint16  bl_f16_encode             (float             x);
float    bl_f16_decode             (guint16           code);
guint16  bl_bf16_encode            (float             x);
float    bl_bf16_decode            (guint16           code);
guint8   bl_ue4m3_encode           (float             x);
float    bl_ue4m3_decode           (guint8            code);

int      bl_floor_log2             (float             x);

const float *bl_nf4_table          (void);
const float *bl_bitmod_grid        (int               bits,
                                    int               selector,
                                    int              *out_n_values);
const char  *bl_bitmod_grid_name   (int               bits,
                                    int               selector);

G_END_DECLS
