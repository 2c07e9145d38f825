/* test-cuda-format-cases.h: the format specs and comparisons shared by the GPU format tests
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * tests/test-cuda-format.c runs the cases on a GPU, tests/test-cuda-emulated.c on the CPU
 * emulation of the same kernels. A case covers one family with the options that change its
 * arithmetic: integer conventions, scale types and E8M0 rules, rounding modes (stochastic
 * included), clipping, granularities. Results must equal the scalar reference bit for bit,
 * except that a NaN matches any NaN: x86 passes an operand's NaN payload through arithmetic,
 * CUDA returns its canonical NaN, so a NaN value, or a stored scale that decodes to NaN, may
 * differ in payload.
 */
#pragma once

#include <math.h>
#include <string.h>

#include <glib.h>

#include "bl-format-private.h"

static const char *const format_cases[] = {
  "int8:channel", "int8:token", "int8:tensor", "int4:g128:sym", "int4:g128:asym", "int4:g32:q4_0",
  "int4:g32:q4_0:rne", "int4:g128:gptq", "int3:g128:asym", "int2:g64:asym", "int4:g64:sym:clip=mse",
  "int4:g128:clip=0.9", "int4:g128:stochastic:7", "int4:g128:away", "int4:g128:zero", "int4:g128:scale=bf16",
  "int4:g128:scale=fp32", "int5:g32:asym:clip=mse",
  "fp8-e4m3:tensor", "fp8-e4m3:channel:nosat", "fp8-e5m2", "fp8-e5m2:g32:nosat", "fp6-e3m2:g32",
  "fp6-e2m3:g32", "fp4-e2m1:g32", "fp4-e2m1:g32:stochastic:3", "fp4-e2m1:g32:away", "fp8-e4m3:tensor:clip=0.8",
  "mxfp8-e4m3", "mxfp8-e5m2", "mxfp6-e3m2", "mxfp6-e2m3", "mxfp4", "mxfp4:ceil", "mxfp4:rceil", "mxfp4:even",
  "mxfp4:stochastic:5", "mxint8", "mxint6", "mxint4", "mxint4:clip=mse",
  "nvfp4", "nvint4", "nvfp4:clip=mse", "nvfp4:stochastic:9",
  "nf4:g64", "nf4:g64:clip=mse", "nf4:channel",
  "binary:channel", "binary:tensor", "binary:g64:scale=bf16",
  "ternary:absmean", "ternary:median", "ternary:channel:median", "ternary:g64", "ternary:channel:stochastic:2",
  "dual-binary", "dual-binary:tensor", "dual-binary:g64",
  "complex-2bit", "complex-2bit:tensor", "complex-2bit:g64",
  "bitmod4:g128", "bitmod3:g128", "bitmod4:g64:clip=mse", "bitmod3:channel",
  "int2+int4:g128:range10%", "int2+int4:g64:range25%:clip=mse", "int2+int4:g32:range50%:stochastic:4",
  "bf16", "fp16", "fp16:sat", "bf16:stochastic:1", "fp16:zero",
};

/* heavy-tailed values with outlier rows, exact zeros, negative zeros and exact ties; with
 * @specials also NaN, ±Inf, huge values and subnormals */
static float *
make_data (GRand    *rand,
           gint64    rows,
           gint64    cols,
           gboolean  specials)
{
  gint64 n = rows * cols;
  float *x = g_new (float, n);

  for (gint64 i = 0; i < n; i++)
    {
      double u = g_rand_double_range (rand, 1e-6, 1.0);
      double t = g_rand_double_range (rand, -1.0, 1.0) / sqrt (u);     /* heavy tails */
      int pick = g_rand_int_range (rand, 0, 100);

      x[i] = (float) (t * ((i / cols) % 7 == 3 ? 40.0 : 1.0));
      if (pick == 0)
        x[i] = 0.0f;
      else if (pick == 1)
        x[i] = -0.0f;
      else if (pick == 2)
        x[i] = 0.5f * (float) g_rand_int_range (rand, -8, 9);        /* ties of the grids */
    }
  if (specials)
    {
      const float odd[] = { NAN, INFINITY, -INFINITY, 3e38f, -3e38f, 1e-40f, -1e-44f, 65520.0f, 448.0f, -0.0f };

      for (gint64 i = 0; i < n; i += 1 + g_rand_int_range (rand, 0, 97))
        x[i] = odd[g_rand_int_range (rand, 0, G_N_ELEMENTS (odd))];
    }
  return x;
}

static guint32
float_bits (float x)
{
  guint32 u;

  memcpy (&u, &x, sizeof u);
  return u;
}

static gboolean
same_float (float a,
            float b)
{
  if (isnan (a) && isnan (b))
    return TRUE;
  return float_bits (a) == float_bits (b);
}

static void
assert_same_floats (const char  *spec,
                    const char  *what,
                    const float *gpu,
                    const float *ref,
                    gint64       n)
{
  for (gint64 i = 0; i < n; i++)
    if (!same_float (gpu[i], ref[i]))
      g_error ("%s %s: element %" G_GINT64_FORMAT ": GPU %.9g (0x%08x), reference %.9g (0x%08x)", spec, what, i,
               gpu[i], float_bits (gpu[i]), ref[i], float_bits (ref[i]));
}

static guint32
read_scale (const guint8 *section,
            guint64       index,
            int           bits)
{
  if (bits == 32)
    {
      guint32 le;

      memcpy (&le, section + index * 4, 4);
      return GUINT32_FROM_LE (le);
    }
  return bl_bits_get (section, index, (unsigned) bits);
}

/* The packed bytes must be equal except that a scale decoding to NaN on both sides, and a
 * NaN tensor scale, may differ in payload. */
static void
assert_same_packed (const char         *spec_str,
                    const BlFormatSpec *spec,
                    const guint8       *gpu,
                    const guint8       *ref,
                    gsize               size)
{
  BlPackedHeader hg, hr;
  g_autofree guint8 *a = g_memdup2 (gpu, size);
  g_autofree guint8 *b = g_memdup2 (ref, size);
  guint64 n_scales;

  memcpy (&hg, gpu, sizeof hg);
  memcpy (&hr, ref, sizeof hr);
  if (!same_float (hg.tensor_scale, hr.tensor_scale))
    g_error ("%s: tensor scale GPU %.9g, reference %.9g", spec_str, hg.tensor_scale, hr.tensor_scale);
  n_scales = hr.n_groups * hr.scales_per_group;
  for (guint64 i = 0; i < n_scales; i++)
    {
      guint32 cg = read_scale (gpu + hr.scales_offset, i, hr.scale_bits);
      guint32 cr = read_scale (ref + hr.scales_offset, i, hr.scale_bits);

      if (cg != cr && !(isnan (bl_format_load_scale (spec->scale_type, cg)) &&
                        isnan (bl_format_load_scale (spec->scale_type, cr))))
        g_error ("%s: scale %" G_GUINT64_FORMAT ": GPU code 0x%x, reference 0x%x", spec_str, i, cg, cr);
    }
  /* everything else byte for byte */
  memset (a + hr.scales_offset, 0, hr.scales_bytes);
  memset (b + hr.scales_offset, 0, hr.scales_bytes);
  memset (a + G_STRUCT_OFFSET (BlPackedHeader, tensor_scale), 0, sizeof (float));
  memset (b + G_STRUCT_OFFSET (BlPackedHeader, tensor_scale), 0, sizeof (float));
  for (gsize i = 0; i < size; i++)
    if (a[i] != b[i])
      g_error ("%s: packed byte %" G_GSIZE_FORMAT " (codes at %" G_GUINT64_FORMAT ", zeros at %" G_GUINT64_FORMAT
               ", selectors at %" G_GUINT64_FORMAT ", extra at %" G_GUINT64_FORMAT "): GPU 0x%02x, reference 0x%02x",
               spec_str, i, (guint64) hr.codes_offset, (guint64) hr.zeros_offset, (guint64) hr.selectors_offset,
               (guint64) hr.extra_offset, a[i], b[i]);
}

