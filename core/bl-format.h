/* bl-format.h: number formats, the spec grammar and the traits table
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * A spec string names one format with its options, as colon-separated tokens:
 *
 *   spec        := family (":" option)*
 *   family      := "int"B (B = 2..8) | "fp"N"-e"X"m"Y (N = 1+X+Y ≤ 8) | "mxfp8-e4m3" | "mxfp8-e5m2"
 *                | "mxfp6-e3m2" | "mxfp6-e2m3" | "mxfp4" | "mxint"B | "nvfp4" | "nvint4" | "nf4"
 *                | "binary" | "ternary" | "dual-binary" | "complex-2bit" | "bitmod3" | "bitmod4"
 *                | "int2+int4" | "bf16" | "fp16"
 *   option      := "g"N | "channel" | "token" | "tensor"              granularity
 *                | "sym" | "asym" | "absmax" | "gptq" | "q4_0"       integer convention (peers.md §3.6)
 *                | "scale=fp32" | "scale=fp16" | "scale=bf16"        stored scale type
 *                | "floor" | "ceil" | "rceil" | "even"               E8M0 scale rule (peers.md §3.2)
 *                | "rne" | "away" | "zero" | "up" | "stochastic" [":"SEED]   rounding (peers.md §3.5)
 *                | "sat" | "nosat"                                   saturation (peers.md §3.4)
 *                | "clip=mse" | "clip="R (0 < R ≤ 1)                 range clipping (GPTQ mse grid)
 *                | "absmean" | "median"                              ternary scale statistic
 *                | "range"P"%"                                       int2+int4: share of 4-bit groups
 *
 * bl_format_spec_to_string() prints the family, then the options in the order above. It
 * prints every option that differs from the family default and every option the parsed string
 * spelled out, so print(parse(s)) == s for any s written in that order (e.g. "int4:g128:sym",
 * "fp8-e4m3:tensor", "int2+int4:g128:range10%"). bl_format_spec_equal() compares meaning and
 * ignores spelling.
 */
#pragma once

#include <glib.h>
#include <stdint.h>

#include "bl-format-blocks.h"

G_BEGIN_DECLS

/**
 * BlFormatFamily:
 * @BL_FORMAT_INT: integer grid with a scale per group/channel/tensor (RTN)
 * @BL_FORMAT_FP: FP ExMy elements with a scale per group/channel/tensor
 * @BL_FORMAT_MXFP: OCP MX float elements, block 32, E8M0 scale (peers.md §3.2)
 * @BL_FORMAT_MXINT: OCP MX integer elements, block 32, E8M0 scale
 * @BL_FORMAT_NVFP4: NVIDIA NVFP4, E2M1 block 16, UE4M3 scale + fp32 tensor scale (peers.md §3.3)
 * @BL_FORMAT_NVINT4: the NVFP4 recipe with INT4 elements (peers.md §3.8)
 * @BL_FORMAT_NF4: QLoRA NormalFloat4 with an absmax scale per block
 * @BL_FORMAT_BINARY: sign(w)·mean|w|
 * @BL_FORMAT_TERNARY: BitNet b1.58 absmean ternary, or the median variant (methods.md §13c)
 * @BL_FORMAT_DUAL_BINARY: DB-LLM flexible dual binarization (methods.md §13b)
 * @BL_FORMAT_COMPLEX_2BIT: iFairy PhaseQuant {±1, ±i} on pairs of weights (methods.md §13d)
 * @BL_FORMAT_BITMOD: BitMoD per-group choice among extended FP grids (methods.md §12)
 * @BL_FORMAT_INT2_INT4: 2-bit groups with the widest-range groups kept at 4 bits (methods.md §13e)
 * @BL_FORMAT_BF16: bfloat16 cast
 * @BL_FORMAT_FP16: IEEE half cast
 */
typedef enum
{
  BL_FORMAT_INT,
  BL_FORMAT_FP,
  BL_FORMAT_MXFP,
  BL_FORMAT_MXINT,
  BL_FORMAT_NVFP4,
  BL_FORMAT_NVINT4,
  BL_FORMAT_NF4,
  BL_FORMAT_BINARY,
  BL_FORMAT_TERNARY,
  BL_FORMAT_DUAL_BINARY,
  BL_FORMAT_COMPLEX_2BIT,
  BL_FORMAT_BITMOD,
  BL_FORMAT_INT2_INT4,
  BL_FORMAT_BF16,
  BL_FORMAT_FP16,
  BL_FORMAT_N_FAMILIES
} BlFormatFamily;

typedef enum
{
  BL_GRANULARITY_TENSOR,
  BL_GRANULARITY_CHANNEL,   /* one group per row of a [out, in] weight */
  BL_GRANULARITY_TOKEN,     /* one group per row of a [tokens, hidden] activation */
  BL_GRANULARITY_GROUP,     /* group_size consecutive elements of a row */
} BlGranularity;

/**
 * BlIntConvention:
 * @BL_INT_ABSMAX: s = absmax/(2^(b−1)−1), codes in [−(2^(b−1)−1), 2^(b−1)−1] (the "sym" default;
 *   symmetric clipping as in the INT-vs-FP paper, methods.md §2)
 * @BL_INT_GPTQ: s = 2·absmax/(2^b−1), zero 2^(b−1), codes [0, 2^b−1] (IST-DASLab gptq quant.py)
 * @BL_INT_Q4_0: ggml: d = (signed value of largest magnitude)/−2^(b−1), q = min(2^b−1, trunc(x/d + 2^(b−1) + 0.5))
 * @BL_INT_ASYM: s = (max−min)/(2^b−1), z = round(−min/s), range forced to include 0
 *
 * The conventions of peers.md §3.6.
 */
typedef enum
{
  BL_INT_ABSMAX,
  BL_INT_GPTQ,
  BL_INT_Q4_0,
  BL_INT_ASYM,
} BlIntConvention;

/* How an E8M0 block scale is chosen (peers.md §3.2, torchao ScaleCalculationMode). */
typedef enum
{
  BL_SCALE_RULE_FLOOR,      /* OCP MX v1.0: 2^(floor(log2 amax) − emax) */
  BL_SCALE_RULE_CEIL,       /* 2^(ceil(log2 amax) − emax) */
  BL_SCALE_RULE_RCEIL,      /* 2^ceil(log2(amax / max_pos)), cuBLAS and the INT-vs-FP scripts */
  BL_SCALE_RULE_EVEN,       /* amax rounded at the element's mantissa width first, then FLOOR */
} BlScaleRule;

typedef enum
{
  BL_ROUND_RNE,             /* ties to even (IEEE default) */
  BL_ROUND_AWAY,            /* ties away from zero (microxcaling "nearest") */
  BL_ROUND_ZERO,            /* toward zero (microxcaling "floor") */
  BL_ROUND_UP,              /* ties toward +∞ (ggml Q4_0's trunc(x + 8.5)); integer grids only */
  BL_ROUND_STOCHASTIC,      /* up with probability equal to the remainder, seeded per element */
} BlRounding;

typedef enum
{
  BL_CLIP_NONE,
  BL_CLIP_RATIO,            /* the range statistic is multiplied by clip_ratio */
  BL_CLIP_MSE,              /* per group, the shrink p ∈ {1, 0.99, …, 0.21} of least squared error */
} BlClipMode;

typedef enum
{
  BL_TERNARY_ABSMEAN,       /* γ = mean|W| (BitNet b1.58) */
  BL_TERNARY_MEDIAN,        /* γ = median|W| (BitNet b1.58 Reloaded) */
} BlTernaryStat;

typedef enum
{
  BL_SCALE_TYPE_F32,
  BL_SCALE_TYPE_F16,
  BL_SCALE_TYPE_BF16,
  BL_SCALE_TYPE_E8M0,
  BL_SCALE_TYPE_UE4M3,
} BlScaleType;

/* Bits of BlFormatSpec.explicit_mask: which options the parsed string spelled out. */
typedef enum
{
  BL_SPEC_FIELD_GRANULARITY = 1 << 0,
  BL_SPEC_FIELD_CONVENTION  = 1 << 1,
  BL_SPEC_FIELD_SYM_WORD    = 1 << 2,   /* the convention was written as "sym" */
  BL_SPEC_FIELD_SCALE_TYPE  = 1 << 3,
  BL_SPEC_FIELD_SCALE_RULE  = 1 << 4,
  BL_SPEC_FIELD_ROUNDING    = 1 << 5,
  BL_SPEC_FIELD_SATURATE    = 1 << 6,
  BL_SPEC_FIELD_CLIP        = 1 << 7,
  BL_SPEC_FIELD_TERNARY     = 1 << 8,
  BL_SPEC_FIELD_RANGE       = 1 << 9,
} BlSpecField;

/**
 * BlFormatSpec:
 * @family: the format family
 * @bits: element bits (int/mxint: 2..8; fp/mxfp: 1+ebits+mbits; bitmod: 3 or 4; fixed otherwise)
 * @ebits: exponent bits of a float element (fp, mxfp, nvfp4, bf16, fp16)
 * @mbits: mantissa bits of a float element
 * @granularity: what one scale covers
 * @group_size: elements per group when @granularity is %BL_GRANULARITY_GROUP
 * @int_convention: integer convention (int, int2+int4)
 * @scale_type: how per-group scales are stored
 * @scale_rule: E8M0 rule (mxfp, mxint)
 * @rounding: element rounding
 * @seed: stochastic rounding seed
 * @saturate: clamp overflow to the largest finite value instead of Inf/NaN
 * @clip: range clipping mode
 * @clip_ratio: ratio when @clip is %BL_CLIP_RATIO
 * @ternary_stat: ternary scale statistic
 * @range_percent: int2+int4: percentage of groups (by max−min) kept at 4 bits
 * @explicit_mask: #BlSpecField bits naming the options the spelling gave
 *
 * A parsed, validated format. Plain data: copy it by assignment.
 */
typedef struct
{
  BlFormatFamily family;
  int bits;
  int ebits;
  int mbits;
  BlGranularity granularity;
  int group_size;
  BlIntConvention int_convention;
  BlScaleType scale_type;
  BlScaleRule scale_rule;
  BlRounding rounding;
  guint64 seed;
  gboolean saturate;
  BlClipMode clip;
  double clip_ratio;
  BlTernaryStat ternary_stat;
  double range_percent;
  guint32 explicit_mask;
} BlFormatSpec;

gboolean     bl_format_spec_parse      (const char         *str,
                                        BlFormatSpec       *out_spec,
                                        GError            **error);
char        *bl_format_spec_to_string  (const BlFormatSpec *spec);
gboolean     bl_format_spec_equal      (const BlFormatSpec *a,
                                        const BlFormatSpec *b);
void         bl_format_spec_init_default (BlFormatSpec     *spec,
                                          BlFormatFamily    family);

double       bl_format_spec_bits_per_weight (const BlFormatSpec *spec);
double       bl_format_spec_bits_for_shape  (const BlFormatSpec *spec,
                                             gint64              n_rows,
                                             gint64              n_cols);

/* The traits table, read-only: one row per family. */
const char  *bl_format_family_get_name        (BlFormatFamily family);
const char  *bl_format_family_get_description (BlFormatFamily family);
const char  *const *bl_format_family_get_examples (BlFormatFamily family);
int          bl_format_family_get_element_bits (BlFormatFamily family);
int          bl_format_family_get_block_size   (BlFormatFamily family);

gsize        bl_format_packed_size     (const BlFormatSpec *spec,
                                        gint64              n_rows,
                                        gint64              n_cols);
void         bl_format_packed_header_init (const BlFormatSpec *spec,
                                           gint64              n_rows,
                                           gint64              n_cols,
                                           BlPackedHeader     *out);
gboolean     bl_format_quantize        (const BlFormatSpec *spec,
                                        const float        *src,
                                        gint64              n_rows,
                                        gint64              n_cols,
                                        guint8             *dst,
                                        gsize               dst_size,
                                        GError            **error);
gboolean     bl_format_dequantize      (const guint8       *packed,
                                        gsize               packed_size,
                                        float              *dst,
                                        gint64              n_elements,
                                        GError            **error);
gboolean     bl_format_fake_quant      (const BlFormatSpec *spec,
                                        const float        *src,
                                        float              *dst,
                                        gint64              n_rows,
                                        gint64              n_cols,
                                        int                 n_threads,
                                        GError            **error);
gboolean     bl_format_fake_quant_reference (const BlFormatSpec *spec,
                                             const float        *src,
                                             float              *dst,
                                             gint64              n_rows,
                                             gint64              n_cols,
                                             GError            **error);

G_END_DECLS
