/* bl-format-codecs.c: scalar reference element codecs
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "bl-format-codecs.h"

#include <math.h>
#include <string.h>

static inline guint32
f32_bits (float x)
{
  guint32 u;

  memcpy (&u, &x, sizeof u);
  return u;
}

/**
 * bl_fp_format_init:
 * @fmt: (out caller-allocates): the format
 * @ebits: exponent bits, 1..8
 * @mbits: mantissa bits, 0..10
 *
 * Describes a sign + ExMy element. The special-value rule follows peers.md §3.1: E4M3 is the
 * OCP "E4M3FN" (no Inf, NaN only at S.1111.111, max 448); E5M2, E5M10 (fp16) and E8M7 (bf16)
 * are IEEE-like; every other width (FP6 E3M2/E2M3, FP4 E2M1, …) has no specials and uses
 * the top exponent for normal numbers, as the OCP MX elements do.
 */
void
bl_fp_format_init (BlFpFormat *fmt,
                   int         ebits,
                   int         mbits)
{
  guint32 top_exp;
  int max_exp_field;

  g_return_if_fail (fmt != NULL);
  g_return_if_fail (ebits >= 1 && ebits <= 8);
  g_return_if_fail (mbits >= 0 && mbits <= 10);

  memset (fmt, 0, sizeof *fmt);
  fmt->ebits = ebits;
  fmt->mbits = mbits;
  fmt->bias = (1 << (ebits - 1)) - 1;
  if (ebits == 4 && mbits == 3)
    fmt->specials = BL_FP_SPECIALS_FN;
  else if ((ebits == 5 && mbits == 2) || (ebits == 5 && mbits == 10) || (ebits == 8 && mbits == 7))
    fmt->specials = BL_FP_SPECIALS_IEEE;
  else
    fmt->specials = BL_FP_SPECIALS_NONE;

  top_exp = (1u << ebits) - 1;
  switch (fmt->specials)
    {
    case BL_FP_SPECIALS_IEEE:
      max_exp_field = (int) top_exp - 1;
      fmt->max_code = ((guint32) max_exp_field << mbits) | ((1u << mbits) - 1);
      break;
    case BL_FP_SPECIALS_FN:
      max_exp_field = (int) top_exp;
      fmt->max_code = (top_exp << mbits) | ((1u << mbits) - 2);
      break;
    case BL_FP_SPECIALS_NONE:
    default:
      max_exp_field = (int) top_exp;
      fmt->max_code = (top_exp << mbits) | ((1u << mbits) - 1);
      break;
    }
  fmt->emax = max_exp_field - fmt->bias;
  fmt->emin = 1 - fmt->bias;
  fmt->max_finite = bl_fp_decode (fmt, fmt->max_code);

  if (1 + ebits + mbits <= 8)
    {
      for (guint32 code = 0; code < (1u << (1 + ebits + mbits)); code++)
        fmt->table[code] = bl_fp_decode (fmt, code);
    }
}

/**
 * bl_fp_code_is_nan:
 * @fmt: the format
 * @code: a code
 *
 * Returns: whether @code is a NaN of @fmt
 */
gboolean
bl_fp_code_is_nan (const BlFpFormat *fmt,
                   guint32           code)
{
  guint32 emask = (1u << fmt->ebits) - 1;
  guint32 mmask = (1u << fmt->mbits) - 1;
  guint32 e = (code >> fmt->mbits) & emask;
  guint32 m = code & mmask;

  switch (fmt->specials)
    {
    case BL_FP_SPECIALS_IEEE:
      return e == emask && m != 0;
    case BL_FP_SPECIALS_FN:
      return e == emask && m == mmask;
    case BL_FP_SPECIALS_NONE:
    default:
      return FALSE;
    }
}

/**
 * bl_fp_decode:
 * @fmt: the format
 * @code: sign|exponent|mantissa bits
 *
 * Returns: the exact value of @code (every ExMy value up to E8M10 is an fp32 value)
 */
float
bl_fp_decode (const BlFpFormat *fmt,
              guint32           code)
{
  guint32 emask = (1u << fmt->ebits) - 1;
  guint32 mmask = (1u << fmt->mbits) - 1;
  guint32 sign = (code >> (fmt->ebits + fmt->mbits)) & 1;
  guint32 e = (code >> fmt->mbits) & emask;
  guint32 m = code & mmask;
  float v;

  if (fmt->specials == BL_FP_SPECIALS_IEEE && e == emask)
    {
      if (m != 0)
        return NAN;
      return sign ? -INFINITY : INFINITY;
    }
  if (fmt->specials == BL_FP_SPECIALS_FN && e == emask && m == mmask)
    return NAN;

  if (e == 0)
    v = ldexpf ((float) m, fmt->emin - fmt->mbits);
  else
    v = ldexpf ((float) ((1u << fmt->mbits) + m), (int) e - fmt->bias - fmt->mbits);
  return sign ? -v : v;
}

static guint32
fp_nan_code (const BlFpFormat *fmt,
             guint32           xbits)
{
  guint32 emask = (1u << fmt->ebits) - 1;
  guint32 mmask = (1u << fmt->mbits) - 1;

  switch (fmt->specials)
    {
    case BL_FP_SPECIALS_FN:
      return (emask << fmt->mbits) | mmask;
    case BL_FP_SPECIALS_IEEE:
      if (1 + fmt->ebits + fmt->mbits <= 8)
        {
          /* CUDA canonicalises a NaN input to 0x7FFFFFFF before converting, which lands on
           * the all-ones positive code (cuda_fp8.hpp __nv_cvt_float_to_fp8). */
          return (emask << fmt->mbits) | mmask;
        }
      /* fp16/bf16 keep the sign and the top payload bits and set the quiet bit, as an IEEE
       * narrowing conversion does. */
      return ((xbits >> 31) << (fmt->ebits + fmt->mbits)) | (emask << fmt->mbits)
             | ((xbits & 0x7fffff) >> (23 - fmt->mbits)) | (1u << (fmt->mbits - 1));
    case BL_FP_SPECIALS_NONE:
    default:
      /* Formats without NaN turn a NaN into positive MAXNORM, as cuda_fp4.h/cuda_fp6.h do. */
      return fmt->max_code;
    }
}

static guint32
fp_overflow_code (const BlFpFormat *fmt,
                  guint32           sign_bit,
                  gboolean          saturate)
{
  guint32 emask = (1u << fmt->ebits) - 1;
  guint32 mmask = (1u << fmt->mbits) - 1;

  if (saturate || fmt->specials == BL_FP_SPECIALS_NONE)
    return sign_bit | fmt->max_code;
  if (fmt->specials == BL_FP_SPECIALS_IEEE)
    return sign_bit | (emask << fmt->mbits);
  /* E4M3FN has no Inf: overflow is NaN, and CUDA keeps the sign (0xFF for −∞) */
  return sign_bit | (emask << fmt->mbits) | mmask;
}

/**
 * bl_fp_encode:
 * @fmt: the target format
 * @x: the value
 * @rounding: rounding mode (%BL_ROUND_UP is treated as %BL_ROUND_AWAY on the magnitude)
 * @saturate: clamp overflow and ±Inf to ±max_finite; otherwise overflow gives Inf (IEEE) or
 *   NaN (E4M3FN). Formats without specials always saturate.
 * @random: 64 uniform random bits, used by %BL_ROUND_STOCHASTIC only
 *
 * The exact reference conversion from fp32, done on the integer significand so that every
 * rounding decision is explicit. With %BL_ROUND_RNE it matches CUDA's
 * __nv_cvt_float_to_fp8 (__NV_SATFINITE / __NV_NOSAT) and __nv_cvt_float_to_fp4
 * (cudaRoundNearest) on every input, and the OFP8 rules of peers.md §3.4.
 *
 * Returns: the code (sign bit at position ebits + mbits)
 */
guint32
bl_fp_encode (const BlFpFormat *fmt,
              float             x,
              BlRounding        rounding,
              gboolean          saturate,
              guint64           random)
{
  guint32 xbits = f32_bits (x);
  guint32 sign_bit = (xbits >> 31) << (fmt->ebits + fmt->mbits);
  guint32 absx = xbits & 0x7fffffffu;
  guint32 sig;
  int e, qe, shift, exp_field;
  guint64 n, rem, half;
  gboolean up;
  guint32 mag;

  if (absx > 0x7f800000u)
    return fp_nan_code (fmt, xbits);
  if (absx == 0x7f800000u)
    return fp_overflow_code (fmt, sign_bit, saturate);
  if (absx == 0)
    return sign_bit;

  /* x = sig · 2^(e − 23) with sig normalised into [2^23, 2^24) */
  if (absx >= 0x00800000u)
    {
      e = (int) (absx >> 23) - 127;
      sig = (absx & 0x7fffffu) | 0x800000u;
    }
  else
    {
      e = -126;
      sig = absx;
      while (sig < 0x800000u)
        {
          sig <<= 1;
          e--;
        }
    }

  /* the quantum of the target binade; below the smallest normal it is the subnormal step */
  qe = (e < fmt->emin ? fmt->emin : e) - fmt->mbits;
  shift = qe - (e - 23);   /* ≥ 23 − mbits ≥ 13 */

  if (shift >= 64)
    {
      n = 0;
      rem = 1;              /* nonzero, far below half: only stochastic rounding can go up */
      half = G_MAXUINT64;
    }
  else
    {
      n = (guint64) sig >> shift;
      rem = (guint64) sig & ((G_GUINT64_CONSTANT (1) << shift) - 1);
      half = G_GUINT64_CONSTANT (1) << (shift - 1);
    }

  switch (rounding)
    {
    case BL_ROUND_AWAY:
    case BL_ROUND_UP:
      up = rem >= half;
      break;
    case BL_ROUND_ZERO:
      up = FALSE;
      break;
    case BL_ROUND_STOCHASTIC:
      /* up with probability rem / 2^shift */
      if (shift >= 64)
        up = FALSE;
      else
        up = rem > 0 && (random >> (64 - shift)) < rem;
      break;
    case BL_ROUND_RNE:
    default:
      up = rem > half || (rem == half && (n & 1));
      break;
    }
  n += up;

  if (n == 0)
    return sign_bit;
  if (n >= (G_GUINT64_CONSTANT (1) << (fmt->mbits + 1)))
    {
      /* rounding carried into the next binade: n was exactly 2^(mbits+1) */
      n >>= 1;
      qe++;
    }
  if (n < (G_GUINT64_CONSTANT (1) << fmt->mbits))
    {
      exp_field = 0;   /* subnormal: only reachable with qe == emin − mbits */
      mag = (guint32) n;
    }
  else
    {
      exp_field = qe + fmt->mbits + fmt->bias;
      if (exp_field >= (1 << fmt->ebits))
        return fp_overflow_code (fmt, sign_bit, saturate);
      mag = ((guint32) exp_field << fmt->mbits) | (guint32) (n - (G_GUINT64_CONSTANT (1) << fmt->mbits));
    }
  if (mag > fmt->max_code)
    return fp_overflow_code (fmt, sign_bit, saturate);
  return sign_bit | mag;
}

/**
 * bl_floor_log2:
 * @x: a positive finite value
 *
 * Returns: floor(log2(@x)), exact for normal and subnormal fp32 values
 */
int
bl_floor_log2 (float x)
{
  guint32 absx = f32_bits (x) & 0x7fffffffu;
  int e = -127;

  if (absx >= 0x00800000u)
    return (int) (absx >> 23) - 127;
  while (absx != 0)
    {
      absx >>= 1;
      e++;
    }
  /* absx was m with x = m·2^−149 and e ended at −126 + msb(m) */
  return e - 23;
}

/**
 * bl_e8m0_decode:
 * @code: an E8M0 code
 *
 * Returns: 2^(@code − 127), or NaN for 0xFF (OCP MX v1.0; peers.md §3.1)
 */
float
bl_e8m0_decode (guint8 code)
{
  if (code == 0xff)
    return NAN;
  return ldexpf (1.0f, (int) code - 127);
}

static const BlFpFormat *
format_singleton (int ebits,
                  int mbits)
{
  static BlFpFormat formats[3];
  static gsize initialised = 0;

  if (g_once_init_enter (&initialised))
    {
      bl_fp_format_init (&formats[0], 4, 3);
      bl_fp_format_init (&formats[1], 5, 10);
      bl_fp_format_init (&formats[2], 8, 7);
      g_once_init_leave (&initialised, 1);
    }
  if (ebits == 4)
    return &formats[0];
  if (ebits == 5)
    return &formats[1];
  return &formats[2];
}

/* IEEE binary16, RNE, overflow to ±Inf */
guint16
bl_f16_encode (float x)
{
  return (guint16) bl_fp_encode (format_singleton (5, 10), x, BL_ROUND_RNE, FALSE, 0);
}

float
bl_f16_decode (guint16 code)
{
  return bl_fp_decode (format_singleton (5, 10), code);
}

/* bfloat16, RNE, overflow to ±Inf */
guint16
bl_bf16_encode (float x)
{
  return (guint16) bl_fp_encode (format_singleton (8, 7), x, BL_ROUND_RNE, FALSE, 0);
}

float
bl_bf16_decode (guint16 code)
{
  guint32 u = (guint32) code << 16;
  float f;

  memcpy (&f, &u, sizeof f);
  return f;
}

/**
 * bl_ue4m3_encode:
 * @x: a non-negative scale
 *
 * The NVFP4 block-scale cast: FP8 E4M3, RNE, saturating at 448, sign bit 0 (peers.md §3.3).
 *
 * Returns: the 7-bit code
 */
guint8
bl_ue4m3_encode (float x)
{
  return (guint8) (bl_fp_encode (format_singleton (4, 3), fabsf (x), BL_ROUND_RNE, TRUE, 0) & 0x7f);
}

float
bl_ue4m3_decode (guint8 code)
{
  return format_singleton (4, 3)->table[code & 0x7f];
}

/* QLoRA NormalFloat4 (Dettmers et al. 2023, bitsandbytes create_normal_map), the 16 values
 * as bitsandbytes stores them. */
static const float nf4_values[16] = {
  -1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f,
  -0.28444138169288635f, -0.18477343022823334f, -0.09105003625154495f, 0.0f,
  0.07958029955625534f, 0.16093020141124725f, 0.24611230194568634f, 0.33791524171829224f,
  0.44070982933044434f, 0.5626170039176941f, 0.7229568362236023f, 1.0f,
};

const float *
bl_nf4_table (void)
{
  return nf4_values;
}

/* BitMoD grids (methods.md §12, bitmod_quant/quant_utils/quant_weight.py), sorted ascending,
 * in units of the group scale. Selector 0..3 = ER_POS, ER_NEG, EA_POS, EA_NEG. */
static const float bitmod4_grids[4][16] = {
  { -12, -8, -6, -4, -3, -2, -1, 0, 1, 2, 3, 4, 6, 8, 10, 12 },
  { -12, -10, -8, -6, -4, -3, -2, -1, 0, 1, 2, 3, 4, 6, 8, 12 },
  { -12, -8, -6, -4, -3, -2, -1, 0, 1, 2, 3, 4, 6, 8, 12, 16 },
  { -16, -12, -8, -6, -4, -3, -2, -1, 0, 1, 2, 3, 4, 6, 8, 12 },
};

static const float bitmod3_grids[4][8] = {
  { -4, -2, -1, 0, 1, 2, 3, 4 },
  { -4, -3, -2, -1, 0, 1, 2, 4 },
  { -4, -2, -1, 0, 1, 2, 4, 6 },
  { -6, -4, -2, -1, 0, 1, 2, 4 },
};

static const char *const bitmod_names[4] = { "er_pos", "er_neg", "ea_pos", "ea_neg" };

/**
 * bl_bitmod_grid:
 * @bits: 3 or 4
 * @selector: 0..3 (ER_POS, ER_NEG, EA_POS, EA_NEG)
 * @out_n_values: (out): 8 or 16
 *
 * Returns: the sorted grid values
 */
const float *
bl_bitmod_grid (int  bits,
                int  selector,
                int *out_n_values)
{
  g_return_val_if_fail (bits == 3 || bits == 4, NULL);
  g_return_val_if_fail (selector >= 0 && selector < 4, NULL);

  *out_n_values = 1 << bits;
  return bits == 4 ? bitmod4_grids[selector] : bitmod3_grids[selector];
}

const char *
bl_bitmod_grid_name (int bits,
                     int selector)
{
  g_return_val_if_fail (selector >= 0 && selector < 4, NULL);
  return bitmod_names[selector];
}
