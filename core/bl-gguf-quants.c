/* bl-gguf-quants.c: ggml's reference block encoders and decoders (Q8_0, Q4_0, MXFP4)
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * Each function reproduces the operation order of its ggml-quants.c counterpart in fp32,
 * because the point is bit equality with llama-quantize, not accuracy: for example Q8_0
 * multiplies by 1/d computed from the unrounded d and rounds half away from zero (roundf),
 * while the stored d is rounded to fp16.
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

/**
 * bl_ggml_dequantize_row:
 * @type: a ggml type
 * @src: the encoded row
 * @y: (array length=n): the decoded values
 * @n: elements, a multiple of the type's block size
 *
 * Decodes as ggml's dequantize_row_* does.
 *
 * Returns: %FALSE when @type is not one of F32, F16, BF16, Q8_0, Q4_0 and MXFP4
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
    default:
      return FALSE;
    }
}
