/* bl-format-simd.h: vectorised fake-quant loops (internal to the format library)
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <glib.h>

#include "bl-format-codecs.h"

G_BEGIN_DECLS

/* RNE onto an ExMy grid in float arithmetic */
typedef struct
{
  int emin;
  int mbits;
  float max_finite;
  float big;                  /* 2^(emax+2): anything this large overflows */
  float overflow;             /* what an overflow becomes: max, Inf or NaN */
  gboolean nan_to_max;        /* formats without NaN map NaN to +max (cuda_fp4.h rule) */
} BlSimdFp;

typedef enum
{
  BL_SIMD_ROW_INT_ABSMAX,
  BL_SIMD_ROW_INT_GPTQ,
  BL_SIMD_ROW_INT_ASYM,
  BL_SIMD_ROW_INT_Q4_0,
  BL_SIMD_ROW_FP,
  BL_SIMD_ROW_MXFP,
  BL_SIMD_ROW_MXINT,
  BL_SIMD_ROW_NVFP4,
  BL_SIMD_ROW_NVINT4,
  BL_SIMD_ROW_NF4,
  BL_SIMD_ROW_BITMOD,
  BL_SIMD_ROW_DUAL,
  BL_SIMD_ROW_COMPLEX,
  BL_SIMD_ROW_MIXED,
} BlSimdRowKind;

/* the largest group the BitMoD row keeps its four candidate rows for (on the stack) */
#define BL_SIMD_BITMOD_MAX_GROUP 512

/* everything a fused row needs; filled by the family's row_setup in bl-format-traits.c */
typedef struct
{
  BlSimdRowKind kind;
  float shrink;               /* (float) clip ratio, 1 without clipping */
  BlScaleType scale_type;
  float half;                 /* integer grids: 2^(b−1) */
  float maxq;                 /* integer grids: 2^b − 1 */
  BlSimdFp fp;                /* float elements */
  BlScaleRule mx_rule;
  int mx_emax;
  int mx_mbits;
  float mx_max_pos;
  float mx_up;                /* MXINT: 2^(b−2) and its inverse */
  float mx_down;
  float tensor_scale;         /* NVFP4/NVINT4 */
  const float *nf4_mids;
  const float *nf4_table;
  /* BitMoD: each grid is a symmetric base (magnitudes spaced 1 below bm_l1, 2 below bm_l2,
   * then 4, up to bm_cap) plus one extra value bm_extra, which takes (bm_lo, bm_hi] */
  const float *bm_grids[4];
  int bm_n_values;
  float bm_gmax[4];
  float bm_l1;
  float bm_l2;
  float bm_cap;
  float bm_extra[4];
  float bm_lo[4];
  float bm_hi[4];
} BlSimdRow;

void  bl_simd_fake_row (const BlSimdRow  *r,
                        const float      *x,
                        gint64            n,
                        gint64            group_size,
                        const guint8     *selectors,
                        float            *y);
double bl_simd_sum_abs (const float    *x,
                        gint64          n);
void   bl_simd_touch   (const float    *x,
                        gint64          n);
void  bl_simd_count_below (const float   *x,
                           gint64         n,
                           const guint32 *pivots,
                           gint64        *counts);
gint64 bl_simd_collect_range (const float *x,
                              gint64       n,
                              guint32      lo,
                              guint32      hi,
                              guint32     *out);
void  bl_simd_fp_init  (BlSimdFp         *f,
                        const BlFpFormat *fmt,
                        gboolean          saturate);
float bl_simd_amax     (const float      *x,
                        gint64            n);
void  bl_simd_minmax   (const float      *x,
                        gint64            n,
                        float            *out_lo,
                        float            *out_hi);
void  bl_simd_minmax0  (const float      *x,
                        gint64            n,
                        float            *out_lo,
                        float            *out_hi);
void  bl_simd_int_rne  (const float      *x,
                        gint64            n,
                        float             s,
                        float             pre,
                        float             post,
                        float             lo,
                        float             hi,
                        float            *y);
void  bl_simd_int_rne2 (const float      *x,
                        gint64            n,
                        float             d,
                        float             m,
                        float             lo,
                        float             hi,
                        float            *y);
void  bl_simd_dual     (const float      *x,
                        gint64            n,
                        float             a1,
                        float             a2,
                        float            *y);
void  bl_simd_sign     (const float      *x,
                        gint64            n,
                        float             s,
                        float            *y);
void  bl_simd_q4_0     (const float      *x,
                        gint64            n,
                        float             id,
                        float             bias,
                        float             maxq,
                        float             z,
                        float             s,
                        float            *y);
void  bl_simd_fp       (const BlSimdFp   *f,
                        const float      *x,
                        gint64            n,
                        float             s,
                        float             lo,
                        float             hi,
                        float            *y);
void  bl_simd_nf4      (const float      *x,
                        gint64            n,
                        float             s,
                        const float      *mids,
                        const float      *table,
                        float            *y);
void  bl_simd_bf16     (const float      *x,
                        gint64            n,
                        gboolean          saturate,
                        float            *y);

G_END_DECLS
