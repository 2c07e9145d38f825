/* bl-tensor.c: dtypes of stored tensors and their exact widening to fp32
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "bl-tensor.h"

#include <string.h>

static const struct
{
  const char *name;   /* the safetensors spelling */
  size_t size;
} dtypes[] = {
  [BL_DTYPE_F32] = { "F32", 4 },
  [BL_DTYPE_F16] = { "F16", 2 },
  [BL_DTYPE_BF16] = { "BF16", 2 },
};

/**
 * bl_dtype_to_string:
 * @dtype: a dtype
 *
 * Returns: the safetensors name of @dtype ("F32", "F16", "BF16")
 */
const char *
bl_dtype_to_string (BlDType dtype)
{
  g_return_val_if_fail ((guint) dtype < G_N_ELEMENTS (dtypes), NULL);

  return dtypes[dtype].name;
}

/**
 * bl_dtype_from_string:
 * @str: a safetensors dtype name
 * @out_dtype: (out): the dtype
 *
 * Returns: %TRUE when @str names a dtype Bitlens reads
 */
gboolean
bl_dtype_from_string (const char *str,
                      BlDType    *out_dtype)
{
  g_return_val_if_fail (str != NULL, FALSE);

  for (guint i = 0; i < G_N_ELEMENTS (dtypes); i++)
    if (strcmp (str, dtypes[i].name) == 0)
      {
        *out_dtype = (BlDType) i;
        return TRUE;
      }
  return FALSE;
}

/**
 * bl_dtype_size:
 * @dtype: a dtype
 *
 * Returns: the size of one element in bytes
 */
size_t
bl_dtype_size (BlDType dtype)
{
  g_return_val_if_fail ((guint) dtype < G_N_ELEMENTS (dtypes), 0);

  return dtypes[dtype].size;
}

/* IEEE 754-2008 binary16 to binary32. Every binary16 value is exactly representable in
 * binary32: normals rebias the exponent (15 → 127), subnormals (m × 2^-24) are renormalised,
 * and infinities and NaNs keep their sign and payload. */
static inline uint32_t
f16_to_f32_bits (uint16_t h)
{
  uint32_t sign = (uint32_t) (h & 0x8000u) << 16;
  uint32_t exponent = (h >> 10) & 0x1fu;
  uint32_t mantissa = h & 0x3ffu;

  if (exponent == 0x1fu)
    return sign | 0x7f800000u | (mantissa << 13);
  if (exponent != 0)
    return sign | ((exponent + 112u) << 23) | (mantissa << 13);
  if (mantissa == 0)
    return sign;

  /* Subnormal: shift the leading 1 into the implicit bit; each shift halves the scale. */
  exponent = 113u;
  while ((mantissa & 0x400u) == 0)
    {
      mantissa <<= 1;
      exponent--;
    }
  return sign | (exponent << 23) | ((mantissa & 0x3ffu) << 13);
}

static inline float
bits_to_float (uint32_t bits)
{
  float f;

  memcpy (&f, &bits, sizeof f);
  return f;
}

/**
 * bl_tensor_to_f32:
 * @tensor: a tensor
 * @dst: (out caller-allocates): room for @tensor->n_elements floats
 *
 * Widens the stored elements to fp32. The conversion is exact for every supported dtype
 * (bf16 is the upper half of an fp32; every fp16 value, subnormals, infinities and NaN
 * payloads included, has an fp32 twin). The stored data is little-endian (safetensors) and
 * need not be aligned.
 */
void
bl_tensor_to_f32 (const BlTensor *tensor,
                  float          *dst)
{
  const guint8 *src;
  int64_t n;

  g_return_if_fail (tensor != NULL);
  g_return_if_fail (dst != NULL || tensor->n_elements == 0);

  src = tensor->data;
  n = tensor->n_elements;
  switch (tensor->dtype)
    {
    case BL_DTYPE_F32:
      memcpy (dst, src, (size_t) n * sizeof (float));
#if G_BYTE_ORDER == G_BIG_ENDIAN
      for (int64_t i = 0; i < n; i++)
        {
          uint32_t bits;

          memcpy (&bits, &dst[i], 4);
          bits = GUINT32_FROM_LE (bits);
          memcpy (&dst[i], &bits, 4);
        }
#endif
      break;

    case BL_DTYPE_F16:
      for (int64_t i = 0; i < n; i++)
        {
          uint16_t h;

          memcpy (&h, src + 2 * i, 2);
          dst[i] = bits_to_float (f16_to_f32_bits (GUINT16_FROM_LE (h)));
        }
      break;

    case BL_DTYPE_BF16:
      for (int64_t i = 0; i < n; i++)
        {
          uint16_t h;

          memcpy (&h, src + 2 * i, 2);
          dst[i] = bits_to_float ((uint32_t) GUINT16_FROM_LE (h) << 16);
        }
      break;

    default:
      g_return_if_reached ();
    }
}
