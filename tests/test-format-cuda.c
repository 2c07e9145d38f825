/* test-format-cuda.c: the reference codecs against CUDA's own host conversion functions
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * cuda_fp8.h and cuda_fp4.h define their conversions as plain C host functions, so this test
 * is compiled by the C compiler where meson found the headers (tests/meson.build) and skips
 * with a message otherwise. It compares 10⁶ floats per format: random bit patterns (NaN, Inf,
 * subnormals), values spread over the format's range and beyond (overflow), and every
 * midpoint between neighbouring codes with its two fp32 neighbours (ties).
 */
#include <math.h>
#include <string.h>

#include <glib.h>

#include "bl-format-codecs.h"

#ifdef BITLENS_HAVE_CUDA_FP8
#include <cuda_fp8.h>
#endif
#ifdef BITLENS_HAVE_CUDA_FP4
#include <cuda_fp4.h>
#endif

#define N_SAMPLES 1000000

#if defined(BITLENS_HAVE_CUDA_FP8) || defined(BITLENS_HAVE_CUDA_FP4)
static float
from_bits (guint32 u)
{
  float f;

  memcpy (&f, &u, sizeof f);
  return f;
}

static guint32
to_bits (float f)
{
  guint32 u;

  memcpy (&u, &f, sizeof u);
  return u;
}

/* the sample set for a format with @fmt's grid */
static float *
samples (const BlFpFormat *fmt,
         guint32           seed)
{
  g_autoptr (GRand) rand = g_rand_new_with_seed (seed);
  float *x = g_new (float, N_SAMPLES);
  guint32 n_codes = 1u << (1 + fmt->ebits + fmt->mbits);
  gint64 i = 0;

  /* ties and their neighbours */
  for (guint32 c = 0; c + 1 < n_codes / 2 && i + 6 <= N_SAMPLES; c++)
    {
      float lo = bl_fp_decode (fmt, c), hi = bl_fp_decode (fmt, c + 1);
      float mid = (float) (((double) lo + (double) hi) / 2.0);

      if (!isfinite (lo) || !isfinite (hi))
        continue;
      x[i++] = mid;
      x[i++] = nextafterf (mid, 0.0f);
      x[i++] = nextafterf (mid, INFINITY);
      x[i++] = -mid;
      x[i++] = -nextafterf (mid, 0.0f);
      x[i++] = -nextafterf (mid, INFINITY);
    }
  /* the overflow boundary */
  x[i++] = fmt->max_finite * 1.0625f;
  x[i++] = fmt->max_finite * (1.0f + ldexpf (1.0f, -fmt->mbits - 1));
  x[i++] = -fmt->max_finite * 1.5f;
  x[i++] = INFINITY;
  x[i++] = -INFINITY;
  x[i++] = NAN;
  /* a third random bit patterns, the rest log-uniform over [2^(emin−mbits−3), 4·max] */
  while (i < N_SAMPLES)
    {
      if (i % 3 == 0)
        x[i++] = from_bits (g_rand_int (rand));
      else
        {
          double lo = fmt->emin - fmt->mbits - 3, hi = log2 (fmt->max_finite) + 2;
          double v = exp2 (g_rand_double_range (rand, lo, hi));

          x[i++] = (float) (g_rand_boolean (rand) ? -v : v);
        }
    }
  return x;
}
#endif

static void
test_cuda_fp8 (void)
{
#ifdef BITLENS_HAVE_CUDA_FP8
  for (int kind = 0; kind < 2; kind++)
    {
      BlFpFormat fmt;
      __nv_fp8_interpretation_t interp = kind == 0 ? __NV_E4M3 : __NV_E5M2;
      g_autofree float *x = NULL;

      bl_fp_format_init (&fmt, kind == 0 ? 4 : 5, kind == 0 ? 3 : 2);
      x = samples (&fmt, 17 + (guint32) kind);
      for (gint64 i = 0; i < N_SAMPLES; i++)
        for (int sat = 0; sat < 2; sat++)
          {
            guint32 ours = bl_fp_encode (&fmt, x[i], BL_ROUND_RNE, sat, 0);
            guint32 theirs = __nv_cvt_float_to_fp8 (x[i], sat ? __NV_SATFINITE : __NV_NOSAT, interp);

            if (ours != theirs)
              g_error ("%s %s: %.9g (0x%08x) encodes to 0x%02x, CUDA gives 0x%02x",
                       kind == 0 ? "e4m3" : "e5m2", sat ? "satfinite" : "nosat", x[i],
                       to_bits (x[i]), ours, theirs);
          }
      for (guint32 c = 0; c < 256; c++)
        {
          __half_raw h = __nv_cvt_fp8_to_halfraw ((__nv_fp8_storage_t) c, interp);
          float theirs = bl_f16_decode (h.x), ours = bl_fp_decode (&fmt, c);

          if (isnan (ours) ? !isnan (theirs) : ours != theirs)
            g_error ("code 0x%02x decodes to %g, CUDA gives %g", c, ours, theirs);
        }
    }
#else
  g_test_skip ("cuda_fp8.h was not found when the build was configured (looked in "
               "/usr/local/cuda/include); install the CUDA toolkit and reconfigure to compare "
               "against CUDA's FP8 host conversions");
#endif
}

static void
test_cuda_fp4 (void)
{
#ifdef BITLENS_HAVE_CUDA_FP4
  BlFpFormat fmt;
  g_autofree float *x = NULL;

  bl_fp_format_init (&fmt, 2, 1);
  x = samples (&fmt, 23);
  for (gint64 i = 0; i < N_SAMPLES; i++)
    {
      guint32 ours = bl_fp_encode (&fmt, x[i], BL_ROUND_RNE, TRUE, 0);
      guint32 theirs = __nv_cvt_float_to_fp4 (x[i], __NV_E2M1, cudaRoundNearest) & 0xfu;

      if (ours != theirs)
        g_error ("e2m1: %.9g encodes to 0x%x, CUDA gives 0x%x", x[i], ours, theirs);
    }
  for (guint32 c = 0; c < 16; c++)
    {
      __half_raw h = __nv_cvt_fp4_to_halfraw ((__nv_fp4_storage_t) c, __NV_E2M1);

      g_assert_cmpfloat (bl_f16_decode (h.x), ==, bl_fp_decode (&fmt, c));
    }
#else
  g_test_skip ("cuda_fp4.h was not found when the build was configured (looked in "
               "/usr/local/cuda/include); install CUDA 12.8 or newer and reconfigure to compare "
               "against CUDA's FP4 host conversions");
#endif
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/bitlens/format/cuda/fp8-host-conversions", test_cuda_fp8);
  g_test_add_func ("/bitlens/format/cuda/fp4-host-conversions", test_cuda_fp4);

  return g_test_run ();
}
