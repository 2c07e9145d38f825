/* bl-format-scale.h: scale arithmetic shared by the reference kernels and the fused row kernels
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * Static inline so that bl-format-traits.c (the oracle) and bl-format-simd.c (the fast
 * rows) compute every stored scale with the very same operations. The fp16/bf16/E4M3 bit
 * tricks here must equal the generic bl_fp_encode()/bl_fp_decode(); tests/test-format.c
 * checks them on every 16-bit code and on every rounding boundary of the fp32 inputs.
 */
#pragma once

#include <math.h>
#include <string.h>

#include "bl-format.h"

static inline guint32
bl_scale_bits (float x)
{
  guint32 u;

  memcpy (&u, &x, sizeof u);
  return u;
}

static inline float
bl_scale_from_bits (guint32 u)
{
  float x;

  memcpy (&x, &u, sizeof x);
  return x;
}

/* the nearest index of a sorted grid: the count of midpoints strictly below @v, so a value on
 * a midpoint takes the lower one (BitMoD's grids, for the oracle and the fused row alike) */
static inline int
bl_grid_nearest (const float *grid,
                 int          n_values,
                 float        v)
{
  int c = 0;

  for (int k = 0; k + 1 < n_values; k++)
    c += v > 0.5f * (grid[k] + grid[k + 1]);
  return c;
}

static inline float
bl_scale_clamp (float v,
                float lo,
                float hi)
{
  return v < lo ? lo : (v > hi ? hi : v);
}

/* round to nearest even for |v| < 2^22: adding 1.5·2^23 makes the FPU round at 1, and the
 * result is +0 for zero */
static inline float
bl_scale_rne (float v)
{
  return (v + 12582912.0f) - 12582912.0f;
}

/* IEEE binary16 RNE, overflow to ±Inf, NaN keeps sign and top payload with the quiet bit
 * (F. Giesen, "float_to_half_fast3_rtne", 2016, with bl_fp_encode's NaN rule) */
static inline guint16
bl_scale_f16_encode (float x)
{
  guint32 u = bl_scale_bits (x);
  guint32 sign = (u >> 16) & 0x8000u;
  guint32 a = u & 0x7fffffffu;

  if (a > 0x7f800000u)
    return (guint16) (sign | 0x7c00u | ((a & 0x7fffffu) >> 13) | 0x200u);
  if (a >= 0x47800000u)
    return (guint16) (sign | 0x7c00u);
  if (a < 0x38800000u)
    {
      /* subnormal or zero: let the FPU round at the 2^−24 step */
      float f = bl_scale_from_bits (a) + 0.5f;

      return (guint16) (sign | (bl_scale_bits (f) - 0x3f000000u));
    }
  a += 0xc8000fffu + ((a >> 13) & 1u);   /* rebias 127 → 15, add ½ulp − 1 and the odd bit */
  return (guint16) (sign | (a >> 13));
}

static inline float
bl_scale_f16_decode (guint16 h)
{
  guint32 o = ((guint32) h & 0x7fffu) << 13;
  guint32 exp = o & 0x0f800000u;
  float f;

  if (exp == 0x0f800000u)
    {
      if (o & 0x7fffffu)
        return NAN;
      return (h & 0x8000u) ? -INFINITY : INFINITY;
    }
  if (exp == 0)
    {
      /* subnormal: (m · 2^−24) exactly, as 2^−14 · (1 + m/1024) − 2^−14 */
      f = bl_scale_from_bits (o + 0x38800000u) - 6.103515625e-05f;
    }
  else
    f = bl_scale_from_bits (o + 0x38000000u);
  /* the sign as a bit, not a branch: Q4_0 scales are negative half of the time */
  return bl_scale_from_bits (bl_scale_bits (f) | (((guint32) h & 0x8000u) << 16));
}

/* bfloat16 RNE, overflow to ±Inf, NaN as bl_fp_encode */
static inline guint16
bl_scale_bf16_encode (float x)
{
  guint32 u = bl_scale_bits (x);

  if ((u & 0x7fffffffu) > 0x7f800000u)
    return (guint16) ((u >> 16) | 0x40u);
  return (guint16) ((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

/* 2^(code − 127), NaN for 0xFF */
static inline float
bl_scale_e8m0_decode (guint8 code)
{
  if (code == 0xff)
    return NAN;
  if (code == 0)
    return bl_scale_from_bits (0x00400000u);
  return bl_scale_from_bits ((guint32) code << 23);
}

/* FP8 E4M3 RNE of a value in [2^−6, 448] (normal range, no saturation needed); the code */
static inline guint8
bl_scale_e4m3_encode_normal (float v)
{
  guint32 a = bl_scale_bits (v);

  return (guint8) (((a + 0x7ffffu + ((a >> 20) & 1u)) >> 20) - (120u << 3));
}

/* E4M3 normal code → value */
static inline float
bl_scale_e4m3_decode_normal (guint8 code)
{
  return bl_scale_from_bits (((guint32) code + (120u << 3)) << 20);
}

/* Stores @value in @type, saturating at the type's largest finite value (a scale that
 * overflowed to Inf would turn every element of its group into NaN); returns the decoded
 * value and sets *@code to the stored bits. E8M0 and UE4M3 scales are computed by their
 * families' own rules (bl_scale_mx_code, bl_scale_nv_block). */
static inline float
bl_scale_store (BlScaleType  type,
                float        value,
                guint32     *code)
{
  switch (type)
    {
    case BL_SCALE_TYPE_F16:
      *code = bl_scale_f16_encode (bl_scale_clamp (value, -65504.0f, 65504.0f));
      return bl_scale_f16_decode ((guint16) *code);
    case BL_SCALE_TYPE_BF16:
      *code = bl_scale_bf16_encode (bl_scale_clamp (value, -3.3895313892515355e38f, 3.3895313892515355e38f));
      return bl_scale_from_bits (*code << 16);
    case BL_SCALE_TYPE_E8M0:
    case BL_SCALE_TYPE_UE4M3:
    case BL_SCALE_TYPE_F32:
    default:
      *code = bl_scale_bits (value);
      return value;
    }
}

/* the MX E8M0 code of a block with absolute maximum @amax (peers.md §3.2), on the fp32 bit
 * pattern as torchao mx_tensor.py to_mx() does; @emax and @mbits describe the element,
 * @max_pos is its largest value (RCEIL). The exponent is clamped below at −127; above 127,
 * or for a NaN block, the code is 0xFF = NaN (microxcaling mx_ops.py). */
static inline guint8
bl_scale_mx_code (BlScaleRule rule,
                  int         emax,
                  int         mbits,
                  float       max_pos,
                  float       amax)
{
  guint32 b = bl_scale_bits (amax) & 0x7fffffffu;
  int e;

  if (amax != amax)
    return 0xff;
  switch (rule)
    {
    case BL_SCALE_RULE_CEIL:
      e = (int) (b >> 23) - 127 + ((b & 0x7fffffu) != 0) - emax;
      break;
    case BL_SCALE_RULE_EVEN:
      b = (b + (1u << (23 - mbits - 1))) & 0x7f800000u;
      e = (int) (b >> 23) - 127 - emax;
      break;
    case BL_SCALE_RULE_RCEIL:
      {
        float d = amax / max_pos;
        guint32 db = bl_scale_bits (d);

        if (d == 0.0f)
          e = -127;
        else if (db >= 0x00800000u)
          e = (int) (db >> 23) - 127 + ((db & 0x7fffffu) != 0);   /* exact ceil(log2 d) */
        else
          {
            int msb = 31 - __builtin_clz (db);

            e = msb - 149 + ((db & (db - 1)) != 0);
          }
      }
      break;
    case BL_SCALE_RULE_FLOOR:
    default:
      e = (int) (b >> 23) - 127 - emax;
      break;
    }
  if (e < -127)
    e = -127;
  if (e > 127)
    return 0xff;
  return (guint8) (e + 127);
}

/* ggml quantize_row_q4_0_ref's "max": the signed value of largest magnitude, first occurrence
 * (strict '>'), NaNs skipped; @amax is max|x| from the bit-pattern maximum */
static inline float
bl_scale_q4_0_max (const float *x,
                   gint64       n,
                   float        amax)
{
  float best = 0.0f, vmax = 0.0f;

  if (amax == amax)
    {
      if (amax == 0.0f)
        return 0.0f;
      for (gint64 i = 0; i < n; i++)
        if (fabsf (x[i]) == amax)
          return x[i];
    }
  for (gint64 i = 0; i < n; i++)
    if (best < fabsf (x[i]))
      {
        best = fabsf (x[i]);
        vmax = x[i];
      }
  return vmax;
}

/* NVFP4/NVINT4 block scale, torchao nvfp4_quantize (peers.md §3.3 step 2):
 * s_b = e4m3(clamp((amax/qmax)/s_T, E4M3 tiny, 448)); returns s_T·s_b, the fp32 scale the
 * block is divided by and decoded with. An all-zero tensor (s_T = 0) gets code 0, scale 0. */
static inline float
bl_scale_nv_block (float    amax,
                   float    qmax,
                   float    tensor_scale,
                   guint32 *code)
{
  float scaled;

  if (tensor_scale == 0.0f)
    {
      *code = 0;
      return 0.0f;
    }
  scaled = bl_scale_clamp ((amax / qmax) / tensor_scale, 0.015625f, 448.0f);
  if (!(scaled == scaled))
    {
      /* a NaN/Inf tensor: the generic encoder's NaN code, and a NaN scale */
      *code = 0x7f;
      return NAN;
    }
  *code = bl_scale_e4m3_encode_normal (scaled);
  return tensor_scale * bl_scale_e4m3_decode_normal ((guint8) *code);
}
