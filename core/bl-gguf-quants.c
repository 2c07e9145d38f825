/* bl-gguf-quants.c: ggml's reference block encoders and decoders (Q8_0, Q4_0, MXFP4), and
 * its decoders of the other legacy types and the K-quants
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * Each function reproduces the operation order of its ggml-quants.c counterpart in fp32,
 * because the point is bit equality with llama-quantize, not accuracy: for example Q8_0
 * multiplies by 1/d computed from the unrounded d and rounds half away from zero (roundf),
 * while the stored d is rounded to fp16. The decoders likewise form the sub-block scale
 * first (d·sc, one fp32 rounding) and then scale the quant, as dequantize_row_q4_K does;
 * tools/reference-ggml-dequant computes the same products in numpy for the tests.
 */
#include "bl-gguf-quants.h"

#include <math.h>
#include <string.h>

#include "bl-format-codecs.h"

/* ggml-common.h kvalues_mxfp4: the E2M1 values times two */
static const int8_t kvalues_mxfp4[16] = { 0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12 };

/**
 * bl_ggml_e8m0_to_f32_half:
 * @e: an E8M0 code
 *
 * Returns: 2^(@e − 128), half the scale the code stands for (ggml's
 *   GGML_E8M0_TO_FP32_HALF, exact down to the subnormals of codes 0 and 1)
 */
float
bl_ggml_e8m0_to_f32_half (guint8 e)
{
  guint32 bits = e < 2 ? 0x00200000u << e : (guint32) (e - 1) << 23;
  float f;

  memcpy (&f, &bits, sizeof f);
  return f;
}

/**
 * bl_ggml_type_can_encode:
 * @type: a ggml type
 *
 * Returns: whether bl_ggml_quantize_row() writes @type (F32, F16, BF16, Q8_0, Q4_0, MXFP4)
 */
gboolean
bl_ggml_type_can_encode (BlGgmlType type)
{
  switch (type)
    {
    case BL_GGML_TYPE_F32:
    case BL_GGML_TYPE_F16:
    case BL_GGML_TYPE_BF16:
    case BL_GGML_TYPE_Q8_0:
    case BL_GGML_TYPE_Q4_0:
    case BL_GGML_TYPE_MXFP4:
      return TRUE;
    default:
      return FALSE;
    }
}

static void
quantize_q8_0 (const float *x,
               BlBlockQ8_0 *y,
               gint64       nb)
{
  for (gint64 i = 0; i < nb; i++)
    {
      const float *xb = x + i * BL_GGML_QK;
      float amax = 0.0f, d, id;

      for (int j = 0; j < BL_GGML_QK; j++)
        amax = MAX (amax, fabsf (xb[j]));
      d = amax / ((1 << 7) - 1);
      id = d != 0.0f ? 1.0f / d : 0.0f;
      y[i].d = bl_f16_encode (d);
      for (int j = 0; j < BL_GGML_QK; j++)
        y[i].qs[j] = (int8_t) roundf (xb[j] * id);
    }
}

static void
quantize_q4_0 (const float *x,
               BlBlockQ4_0 *y,
               gint64       nb)
{
  for (gint64 i = 0; i < nb; i++)
    {
      const float *xb = x + i * BL_GGML_QK;
      float amax = 0.0f, max = 0.0f, d, id;

      /* the signed value of largest magnitude, the first one on a tie */
      for (int j = 0; j < BL_GGML_QK; j++)
        if (amax < fabsf (xb[j]))
          {
            amax = fabsf (xb[j]);
            max = xb[j];
          }
      d = max / -8;
      id = d != 0.0f ? 1.0f / d : 0.0f;
      y[i].d = bl_f16_encode (d);
      for (int j = 0; j < BL_GGML_QK / 2; j++)
        {
          /* (int8_t)(v + 8.5f) truncates toward zero, v + 8.5 ≥ 0 up to rounding */
          float v0 = xb[j] * id + 8.5f, v1 = xb[j + BL_GGML_QK / 2] * id + 8.5f;
          int q0 = MIN (15, (int) (int8_t) v0), q1 = MIN (15, (int) (int8_t) v1);

          y[i].qs[j] = (uint8_t) ((q0 & 0x0F) | ((q1 & 0x0F) << 4));
        }
    }
}

static int
best_index_mxfp4 (float x,
                  float e)
{
  int best = 0;
  float best_err = fabsf (kvalues_mxfp4[0] * e - x);

  for (int i = 1; i < 16; i++)
    {
      float err = fabsf (kvalues_mxfp4[i] * e - x);

      if (err < best_err)
        {
          best = i;
          best_err = err;
        }
    }
  return best;
}

static void
quantize_mxfp4 (const float  *x,
                BlBlockMxfp4 *y,
                gint64        nb)
{
  for (gint64 i = 0; i < nb; i++)
    {
      const float *xb = x + i * BL_GGML_QK;
      float amax = 0.0f, d, ef;
      guint8 e = 0;

      for (int j = 0; j < BL_GGML_QK; j++)
        if (amax < fabsf (xb[j]))
          amax = fabsf (xb[j]);
      if (amax > 0.0f)
        {
          /* ggml converts the float straight to uint8_t; clamp so that amax outside
           * [2^−125, 2^130) stays defined instead of wrapping */
          ef = floorf (log2f (amax)) - 2 + 127;
          e = (guint8) CLAMP (ef, 0.0f, 255.0f);
        }
      d = bl_ggml_e8m0_to_f32_half (e);
      y[i].e = e;
      for (int j = 0; j < BL_GGML_QK / 2; j++)
        {
          int q0 = best_index_mxfp4 (xb[j], d);
          int q1 = best_index_mxfp4 (xb[j + BL_GGML_QK / 2], d);

          y[i].qs[j] = (uint8_t) (q0 | (q1 << 4));
        }
    }
}

/**
 * bl_ggml_quantize_row:
 * @type: a type for which bl_ggml_type_can_encode() holds
 * @x: (array length=n): the values
 * @dst: bl_ggml_row_size (@type, @n) bytes
 * @n: elements, a multiple of the type's block size
 *
 * Encodes @n values as ggml's reference quantizer of @type does.
 */
void
bl_ggml_quantize_row (BlGgmlType   type,
                      const float *x,
                      guint8      *dst,
                      gint64       n)
{
  g_return_if_fail (bl_ggml_type_can_encode (type));
  g_return_if_fail (n % bl_ggml_type_get_traits (type)->block_size == 0);

  switch (type)
    {
    case BL_GGML_TYPE_F32:
      memcpy (dst, x, (size_t) n * sizeof (float));
      break;
    case BL_GGML_TYPE_F16:
      for (gint64 i = 0; i < n; i++)
        {
          guint16 h = bl_f16_encode (x[i]);

          memcpy (dst + 2 * i, &h, 2);
        }
      break;
    case BL_GGML_TYPE_BF16:
      for (gint64 i = 0; i < n; i++)
        {
          guint16 h = bl_bf16_encode (x[i]);

          memcpy (dst + 2 * i, &h, 2);
        }
      break;
    case BL_GGML_TYPE_Q8_0:
      quantize_q8_0 (x, (BlBlockQ8_0 *) dst, n / BL_GGML_QK);
      break;
    case BL_GGML_TYPE_Q4_0:
      quantize_q4_0 (x, (BlBlockQ4_0 *) dst, n / BL_GGML_QK);
      break;
    case BL_GGML_TYPE_MXFP4:
      quantize_mxfp4 (x, (BlBlockMxfp4 *) dst, n / BL_GGML_QK);
      break;
    default:
      g_assert_not_reached ();
    }
}

/* ggml-quants.c dequantize_row_q4_1 and dequantize_row_q5_1: "type-1" blocks of 32, the
 * min added after scaling. Q5_1's fifth bit of element j is bit j of qh. */
static void
dequantize_q4_1 (const guint8 *src,
                 float        *y,
                 gint64        nb)
{
  for (gint64 i = 0; i < nb; i++, y += BL_GGML_QK)
    {
      BlBlockQ4_1 b;
      float d, m;

      memcpy (&b, src + i * sizeof b, sizeof b);
      d = bl_f16_decode (b.d);
      m = bl_f16_decode (b.m);
      for (int j = 0; j < BL_GGML_QK / 2; j++)
        {
          y[j] = (b.qs[j] & 0x0F) * d + m;
          y[j + BL_GGML_QK / 2] = (b.qs[j] >> 4) * d + m;
        }
    }
}

/* the fifth bits of a Q5_0/Q5_1 block, element j at bit j (ggml stores the uint32 as it
 * lies in memory, little-endian on every platform llama.cpp writes files on) */
static guint32
q5_high_bits (const uint8_t qh[4])
{
  return (guint32) qh[0] | (guint32) qh[1] << 8 | (guint32) qh[2] << 16 | (guint32) qh[3] << 24;
}

static void
dequantize_q5_0 (const guint8 *src,
                 float        *y,
                 gint64        nb)
{
  for (gint64 i = 0; i < nb; i++, y += BL_GGML_QK)
    {
      BlBlockQ5_0 b;
      guint32 qh;
      float d;

      memcpy (&b, src + i * sizeof b, sizeof b);
      d = bl_f16_decode (b.d);
      qh = q5_high_bits (b.qh);
      for (int j = 0; j < BL_GGML_QK / 2; j++)
        {
          int lo = (b.qs[j] & 0x0F) | ((qh >> j) & 1) << 4;
          int hi = (b.qs[j] >> 4) | ((qh >> (j + BL_GGML_QK / 2)) & 1) << 4;

          y[j] = (lo - 16) * d;
          y[j + BL_GGML_QK / 2] = (hi - 16) * d;
        }
    }
}

static void
dequantize_q5_1 (const guint8 *src,
                 float        *y,
                 gint64        nb)
{
  for (gint64 i = 0; i < nb; i++, y += BL_GGML_QK)
    {
      BlBlockQ5_1 b;
      guint32 qh;
      float d, m;

      memcpy (&b, src + i * sizeof b, sizeof b);
      d = bl_f16_decode (b.d);
      m = bl_f16_decode (b.m);
      qh = q5_high_bits (b.qh);
      for (int j = 0; j < BL_GGML_QK / 2; j++)
        {
          int lo = (b.qs[j] & 0x0F) | ((qh >> j) & 1) << 4;
          int hi = (b.qs[j] >> 4) | ((qh >> (j + BL_GGML_QK / 2)) & 1) << 4;

          y[j] = lo * d + m;
          y[j + BL_GGML_QK / 2] = hi * d + m;
        }
    }
}

/* ggml-quants.c dequantize_row_q2_K. Each half of the super-block (128 elements) draws on
 * 32 bytes of qs: bit pair p (bits 2p, 2p + 1) of byte l is element 32p + l of the half.
 * Sub-block s (16 elements, in order) has scale byte s: scale in the low nibble, min in the
 * high one. */
static void
dequantize_q2_k (const guint8 *src,
                 float        *y,
                 gint64        nb)
{
  for (gint64 i = 0; i < nb; i++, y += BL_GGML_QK_K)
    {
      BlBlockQ2_K b;
      float d, dmin;

      memcpy (&b, src + i * sizeof b, sizeof b);
      d = bl_f16_decode (b.d);
      dmin = bl_f16_decode (b.dmin);
      for (int s = 0; s < BL_GGML_QK_K / 16; s++)
        {
          float dl = d * (b.scales[s] & 0x0F), ml = dmin * (b.scales[s] >> 4);

          for (int e = 16 * s; e < 16 * s + 16; e++)
            {
              int half = e / 128, p = (e % 128) / 32, l = e % 32;
              int q = (b.qs[32 * half + l] >> (2 * p)) & 3;

              y[e] = dl * q - ml;
            }
        }
    }
}

/* Q3_K's sixteen 6-bit scales in 12 bytes (the packing quantize_row_q3_K_ref writes): the
 * low nibble of scale s is the low (s < 8) or high (s ≥ 8) nibble of byte s mod 8, its
 * two high bits are bit pair s / 4 of byte 8 + s mod 4. */
static int
q3_k_scale (const uint8_t scales[12],
            int           s)
{
  int lo = s < 8 ? scales[s] & 0x0F : scales[s - 8] >> 4;
  int hi = (scales[8 + s % 4] >> (2 * (s / 4))) & 3;

  return (lo | hi << 4) - 32;
}

/* ggml-quants.c dequantize_row_q3_K. The two low bits sit in qs as in Q2_K; the third bit
 * of element e (counted over the whole super-block) is bit e / 32 of hmask[e mod 32], and a
 * clear bit subtracts 4 (q ∈ [−4, 3]). */
static void
dequantize_q3_k (const guint8 *src,
                 float        *y,
                 gint64        nb)
{
  for (gint64 i = 0; i < nb; i++, y += BL_GGML_QK_K)
    {
      BlBlockQ3_K b;
      float d;

      memcpy (&b, src + i * sizeof b, sizeof b);
      d = bl_f16_decode (b.d);
      for (int s = 0; s < BL_GGML_QK_K / 16; s++)
        {
          float dl = d * q3_k_scale (b.scales, s);

          for (int e = 16 * s; e < 16 * s + 16; e++)
            {
              int half = e / 128, p = (e % 128) / 32, l = e % 32;
              int q = (b.qs[32 * half + l] >> (2 * p)) & 3;

              if ((b.hmask[l] & (1u << (e / 32))) == 0)
                q -= 4;
              y[e] = dl * q;
            }
        }
    }
}

/* ggml-quants.c get_scale_min_k4: Q4_K's and Q5_K's eight 6-bit scales and mins in 12
 * bytes. Sub-blocks 0–3 keep theirs in the low six bits of bytes s and s + 4; sub-blocks
 * 4–7 in the nibbles of byte s + 4, topped by the two high bits of bytes s − 4 and s. */
static void
k4_scale_min (const uint8_t  scales[BL_GGML_K_SCALE_SIZE],
              int            s,
              int           *sc,
              int           *m)
{
  if (s < 4)
    {
      *sc = scales[s] & 63;
      *m = scales[s + 4] & 63;
    }
  else
    {
      *sc = (scales[s + 4] & 0x0F) | (scales[s - 4] >> 6) << 4;
      *m = (scales[s + 4] >> 4) | (scales[s] >> 6) << 4;
    }
}

/* ggml-quants.c dequantize_row_q4_K and dequantize_row_q5_K. The super-block is four
 * chunks of 64 elements over 32 bytes of qs each: the low nibbles are sub-block 2c, the
 * high nibbles sub-block 2c + 1. Q5_K's fifth bit of element e is bit e / 32 of
 * qh[e mod 32]. */
static void
dequantize_q45_k (gboolean      five,
                  const guint8 *src,
                  float        *y,
                  gint64        nb)
{
  for (gint64 i = 0; i < nb; i++, y += BL_GGML_QK_K)
    {
      BlBlockQ4_K b4;
      BlBlockQ5_K b5;
      const uint8_t *scales, *qs;
      float d, dmin;

      if (five)
        {
          memcpy (&b5, src + i * sizeof b5, sizeof b5);
          d = bl_f16_decode (b5.d);
          dmin = bl_f16_decode (b5.dmin);
          scales = b5.scales;
          qs = b5.qs;
        }
      else
        {
          memcpy (&b4, src + i * sizeof b4, sizeof b4);
          d = bl_f16_decode (b4.d);
          dmin = bl_f16_decode (b4.dmin);
          scales = b4.scales;
          qs = b4.qs;
        }
      for (int s = 0; s < BL_GGML_QK_K / 32; s++)
        {
          int sc, m, shift = 4 * (s % 2);
          float ds, ms;

          k4_scale_min (scales, s, &sc, &m);
          ds = d * sc;
          ms = dmin * m;
          for (int l = 0; l < 32; l++)
            {
              int q = (qs[32 * (s / 2) + l] >> shift) & 0x0F;

              if (five && (b5.qh[l] >> s) & 1)
                q += 16;
              y[32 * s + l] = ds * q - ms;
            }
        }
    }
}

/* ggml-quants.c dequantize_row_q6_K. Each half (128 elements) draws on 64 bytes of ql and
 * 32 of qh: element 32p + l of the half (p = 0…3, l = 0…31) takes its low nibble from
 * ql[l + 32 (p mod 2)] (the high nibble for p ≥ 2) and its two high bits from bit pair p of
 * qh[l]; sub-block s (16 elements, in order) has the int8 scale s. */
static void
dequantize_q6_k (const guint8 *src,
                 float        *y,
                 gint64        nb)
{
  for (gint64 i = 0; i < nb; i++, y += BL_GGML_QK_K)
    {
      BlBlockQ6_K b;
      float d;

      memcpy (&b, src + i * sizeof b, sizeof b);
      d = bl_f16_decode (b.d);
      for (int s = 0; s < BL_GGML_QK_K / 16; s++)
        {
          float ds = d * b.scales[s];

          for (int e = 16 * s; e < 16 * s + 16; e++)
            {
              int half = e / 128, p = (e % 128) / 32, l = e % 32;
              int lo = (b.ql[64 * half + l + 32 * (p % 2)] >> (4 * (p / 2))) & 0x0F;
              int hi = (b.qh[32 * half + l] >> (2 * p)) & 3;

              y[e] = ds * ((lo | hi << 4) - 32);
            }
        }
    }
}

/* ggml-quants.c dequantize_row_q8_K; the sums are redundant */
static void
dequantize_q8_k (const guint8 *src,
                 float        *y,
                 gint64        nb)
{
  for (gint64 i = 0; i < nb; i++, y += BL_GGML_QK_K)
    {
      BlBlockQ8_K b;

      memcpy (&b, src + i * sizeof b, sizeof b);
      for (int j = 0; j < BL_GGML_QK_K; j++)
        y[j] = b.d * b.qs[j];
    }
}

/**
 * bl_ggml_dequantize_row:
 * @type: a ggml type
 * @src: the encoded row
 * @y: (array length=n): the decoded values
 * @n: elements, a multiple of the type's block size
 *
 * Decodes as ggml's dequantize_row_* does.
 *
 * Returns: %FALSE when @type is not one of F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0,
 *   Q5_1, MXFP4, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K and Q8_K
 */
gboolean
bl_ggml_dequantize_row (guint32       type,
                        const guint8 *src,
                        float        *y,
                        gint64        n)
{
  switch (type)
    {
    case BL_GGML_TYPE_F32:
      memcpy (y, src, (size_t) n * sizeof (float));
      return TRUE;
    case BL_GGML_TYPE_F16:
    case BL_GGML_TYPE_BF16:
      for (gint64 i = 0; i < n; i++)
        {
          guint16 h;

          memcpy (&h, src + 2 * i, 2);
          y[i] = type == BL_GGML_TYPE_F16 ? bl_f16_decode (h) : bl_bf16_decode (h);
        }
      return TRUE;
    case BL_GGML_TYPE_Q8_0:
      for (gint64 i = 0; i < n / BL_GGML_QK; i++)
        {
          BlBlockQ8_0 b;
          float d;

          memcpy (&b, src + i * sizeof b, sizeof b);
          d = bl_f16_decode (b.d);
          for (int j = 0; j < BL_GGML_QK; j++)
            y[i * BL_GGML_QK + j] = b.qs[j] * d;
        }
      return TRUE;
    case BL_GGML_TYPE_Q4_0:
    case BL_GGML_TYPE_MXFP4:
      for (gint64 i = 0; i < n / BL_GGML_QK; i++)
        {
          const guint8 *qs;
          float d;

          if (type == BL_GGML_TYPE_Q4_0)
            {
              guint16 h;

              memcpy (&h, src + i * sizeof (BlBlockQ4_0), 2);
              d = bl_f16_decode (h);
              qs = src + i * sizeof (BlBlockQ4_0) + 2;
            }
          else
            {
              d = bl_ggml_e8m0_to_f32_half (src[i * sizeof (BlBlockMxfp4)]);
              qs = src + i * sizeof (BlBlockMxfp4) + 1;
            }
          for (int j = 0; j < BL_GGML_QK / 2; j++)
            {
              int lo = qs[j] & 0x0F, hi = qs[j] >> 4;

              if (type == BL_GGML_TYPE_Q4_0)
                {
                  y[i * BL_GGML_QK + j] = (lo - 8) * d;
                  y[i * BL_GGML_QK + j + BL_GGML_QK / 2] = (hi - 8) * d;
                }
              else
                {
                  y[i * BL_GGML_QK + j] = kvalues_mxfp4[lo] * d;
                  y[i * BL_GGML_QK + j + BL_GGML_QK / 2] = kvalues_mxfp4[hi] * d;
                }
            }
        }
      return TRUE;
    case BL_GGML_TYPE_Q4_1:
      dequantize_q4_1 (src, y, n / BL_GGML_QK);
      return TRUE;
    case BL_GGML_TYPE_Q5_0:
      dequantize_q5_0 (src, y, n / BL_GGML_QK);
      return TRUE;
    case BL_GGML_TYPE_Q5_1:
      dequantize_q5_1 (src, y, n / BL_GGML_QK);
      return TRUE;
    case BL_GGML_TYPE_Q2_K:
      dequantize_q2_k (src, y, n / BL_GGML_QK_K);
      return TRUE;
    case BL_GGML_TYPE_Q3_K:
      dequantize_q3_k (src, y, n / BL_GGML_QK_K);
      return TRUE;
    case BL_GGML_TYPE_Q4_K:
    case BL_GGML_TYPE_Q5_K:
      dequantize_q45_k (type == BL_GGML_TYPE_Q5_K, src, y, n / BL_GGML_QK_K);
      return TRUE;
    case BL_GGML_TYPE_Q6_K:
      dequantize_q6_k (src, y, n / BL_GGML_QK_K);
      return TRUE;
    case BL_GGML_TYPE_Q8_K:
      dequantize_q8_k (src, y, n / BL_GGML_QK_K);
      return TRUE;
    default:
      return FALSE;
    }
}
