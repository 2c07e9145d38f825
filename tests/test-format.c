/* test-format.c: spec grammar, element codecs, family kernels and the packed layout
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * Golden values come from ../shared/reference/peers.md §3 and methods.md; hand-computed
 * examples use dyadic numbers so every step is exact in fp32 and fp16.
 */
#include <math.h>
#include <string.h>

#include "bl-error.h"
#include "bl-format.h"
#include "bl-format-blocks.h"
#include "bl-format-codecs.h"
#include "bl-format-scale.h"

/* ------------------------------------------------------------------------------------------ */
/* helpers */

static void
parse_ok (const char   *str,
          BlFormatSpec *spec)
{
  g_autoptr (GError) error = NULL;

  if (!bl_format_spec_parse (str, spec, &error))
    g_error ("parsing '%s': %s", str, error->message);
}

/* a heavy-tailed sample: a Gaussian times a log-normal spread, plus a few outliers */
static float *
heavy_tailed (guint32 seed,
              gint64  n)
{
  g_autoptr (GRand) rand = g_rand_new_with_seed (seed);
  float *x = g_new (float, n);

  for (gint64 i = 0; i < n; i++)
    {
      double u1 = g_rand_double_range (rand, 1e-12, 1.0), u2 = g_rand_double (rand);
      double g = sqrt (-2.0 * log (u1)) * cos (2.0 * G_PI * u2);
      double spread = exp (0.5 * g_rand_double_range (rand, -2.0, 2.0));

      x[i] = (float) (0.02 * g * spread);
      if (g_rand_int_range (rand, 0, 1000) == 0)
        x[i] *= 30.0f;
    }
  return x;
}

static float *
gaussian (guint32 seed,
          gint64  n)
{
  g_autoptr (GRand) rand = g_rand_new_with_seed (seed);
  float *x = g_new (float, n);

  for (gint64 i = 0; i < n; i++)
    {
      double u1 = g_rand_double_range (rand, 1e-12, 1.0), u2 = g_rand_double (rand);

      x[i] = (float) (sqrt (-2.0 * log (u1)) * cos (2.0 * G_PI * u2));
    }
  return x;
}

static void
assert_same_bits (const float *a,
                  const float *b,
                  gint64       n,
                  const char  *what)
{
  for (gint64 i = 0; i < n; i++)
    if (memcmp (&a[i], &b[i], sizeof (float)) != 0)
      g_error ("%s: element %" G_GINT64_FORMAT " differs: %.9g vs %.9g", what, i, a[i], b[i]);
}

static void
fake (const char  *str,
      const float *x,
      float       *y,
      gint64       rows,
      gint64       cols)
{
  BlFormatSpec spec;
  g_autoptr (GError) error = NULL;

  parse_ok (str, &spec);
  g_assert_true (bl_format_fake_quant (&spec, x, y, rows, cols, 1, &error));
  g_assert_no_error (error);
}

/* every spec string of issue 3, in canonical order */
static const char *const issue_specs[] = {
  "int4:g128:sym", "int4:g128:asym", "int8:channel", "int8:token", "fp8-e4m3:tensor", "fp8-e5m2",
  "fp6-e3m2", "fp6-e2m3", "fp4-e2m1:g32", "mxfp8-e4m3", "mxfp6-e2m3", "mxfp4", "mxint8", "mxint4",
  "nvfp4", "nvint4", "nf4:g64", "binary:channel", "ternary:absmean", "ternary:median", "dual-binary",
  "complex-2bit", "bitmod4:g128", "int2+int4:g128:range10%", "bf16", "fp16",
};

/* a wider list that exercises every option class */
static const char *const option_specs[] = {
  "int4:g128:gptq", "int4:g32:q4_0", "int3:g64:asym", "int2:g16:sym", "int8:tensor",
  "int4:g128:sym:clip=mse", "int4:g128:asym:clip=0.9", "int4:g128:sym:away", "int4:g128:sym:zero",
  "int4:g128:sym:up", "int4:g128:sym:stochastic:42", "int4:g32:q4_0:rne", "int4:g64:sym:scale=fp32",
  "int4:g64:asym:scale=bf16", "fp8-e4m3:g64", "fp8-e4m3:channel:nosat", "fp8-e5m2:tensor:nosat",
  "fp8-e4m3:tensor:stochastic:7", "fp6-e3m2:g32:away", "fp4-e2m1:g16:zero", "fp4-e2m1:g32:clip=mse",
  "fp3-e2m0:g128:scale=fp32", "mxfp8-e5m2", "mxfp6-e3m2", "mxfp4:ceil", "mxfp4:rceil", "mxfp4:even",
  "mxfp4:g16", "mxfp4:away", "mxfp4:stochastic:3", "mxfp8-e4m3:nosat", "mxint8:rceil", "mxint6",
  "mxint4:ceil", "mxint4:clip=mse", "nvfp4:clip=mse", "nvfp4:stochastic:5", "nvint4:away", "nvfp4:g32",
  "nf4:g128", "nf4:channel", "nf4:g64:clip=0.95", "nf4:g64:scale=fp16", "binary", "binary:g64",
  "ternary", "ternary:channel", "ternary:g64:median", "ternary:stochastic:11", "dual-binary:g64",
  "complex-2bit:g32", "complex-2bit:tensor", "bitmod3:g128", "bitmod4:g64:clip=mse",
  "int2+int4:g64:range25%", "int2+int4:g128:range0%", "bf16:nosat", "bf16:sat", "fp16:sat",
  "fp16:stochastic:9", "bf16:zero",
};

/* ------------------------------------------------------------------------------------------ */
/* spec grammar */

static void
test_spec_roundtrip (void)
{
  for (gsize list = 0; list < 2; list++)
    {
      const char *const *specs = list == 0 ? issue_specs : option_specs;
      gsize n = list == 0 ? G_N_ELEMENTS (issue_specs) : G_N_ELEMENTS (option_specs);

      for (gsize i = 0; i < n; i++)
        {
          BlFormatSpec spec, again;
          g_autofree char *printed = NULL;

          parse_ok (specs[i], &spec);
          printed = bl_format_spec_to_string (&spec);
          g_assert_cmpstr (printed, ==, specs[i]);
          parse_ok (printed, &again);
          g_assert_true (bl_format_spec_equal (&spec, &again));
        }
    }

  /* every family's own examples print back as themselves */
  for (int f = 0; f < BL_FORMAT_N_FAMILIES; f++)
    for (const char *const *ex = bl_format_family_get_examples (f); *ex != NULL; ex++)
      {
        BlFormatSpec spec;
        g_autofree char *printed = NULL;

        parse_ok (*ex, &spec);
        g_assert_cmpint (spec.family, ==, f);
        printed = bl_format_spec_to_string (&spec);
        g_assert_cmpstr (printed, ==, *ex);
      }
}

static void
test_spec_canonical (void)
{
  static const struct { const char *in, *out; } cases[] = {
    { "int4:sym:g128", "int4:g128:sym" },
    { "int4:stochastic:g128", "int4:g128:stochastic" },
    { "int4:clip=0.90:g64", "int4:g64:clip=0.9" },
    { "int2+int4:range10.0%", "int2+int4:range10%" },
    { "mxfp4:g32", "mxfp4:g32" },
    { "nvfp4:rne:g16", "nvfp4:g16:rne" },
    { "mxfp4-e2m1", "mxfp4" },
  };
  BlFormatSpec a, b, c;

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      BlFormatSpec spec;
      g_autofree char *printed = NULL;

      parse_ok (cases[i].in, &spec);
      printed = bl_format_spec_to_string (&spec);
      g_assert_cmpstr (printed, ==, cases[i].out);
    }

  /* equality is about meaning, not spelling */
  parse_ok ("int4", &a);
  parse_ok ("int4:channel:sym", &b);
  parse_ok ("int4:channel:absmax", &c);
  g_assert_true (bl_format_spec_equal (&a, &b));
  g_assert_true (bl_format_spec_equal (&b, &c));
  parse_ok ("int4:g64", &b);
  g_assert_false (bl_format_spec_equal (&a, &b));
  parse_ok ("fp8-e4m3", &a);
  parse_ok ("fp8-e4m3:tensor", &b);
  g_assert_true (bl_format_spec_equal (&a, &b));
  parse_ok ("mxfp4", &a);
  parse_ok ("mxfp4:g32:floor:rne:sat", &b);
  g_assert_true (bl_format_spec_equal (&a, &b));
  parse_ok ("int4:g32:q4_0", &a);
  g_assert_cmpint (a.rounding, ==, BL_ROUND_UP);
  parse_ok ("mxfp6-e2m3", &a);
  g_assert_cmpint (a.ebits, ==, 2);
  g_assert_cmpint (a.mbits, ==, 3);
}

static void
test_spec_errors (void)
{
  static const struct { const char *spec, *token, *lists; } cases[] = {
    { "int9:g128", "'int9'", "int2..int8" },
    { "", "empty", "nvfp4" },
    { "fp8-e4m4", "'fp8-e4m4'", "fp8-e4m3" },
    { "int4:rceil", "'rceil'", "sym, asym, absmax, gptq, q4_0" },
    { "mxfp4:channel", "'channel'", "floor, ceil, rceil, even" },
    { "int4:g0", "'g0'", "g<N>" },
    { "int4:g128:g64", "'g64'", "g<N>" },
    { "int4:sym:asym", "'asym'", "sym, asym" },
    { "fp6-e3m2:nosat", "'nosat'", "sat" },
    { "fp4-e2m1:up", "'up'", "rne, away, zero, stochastic" },
    { "int4:clip=1.5", "'clip=1.5'", "clip=mse" },
    { "nf4:stochastic", "'stochastic'", "clip=mse" },
    { "ternary:gptq", "'gptq'", "absmean, median" },
    { "complex-2bit:g33", "'g33'", "g<N>" },
    { "int2+int4:range150%", "'range150%'", "range<P>%" },
    { "int4:scale=e8m0", "'scale=e8m0'", "scale=fp32|fp16|bf16" },
    { "binary:frobnicate", "'frobnicate'", "channel, token" },
    { "bf16:g32", "'g32'", "sat, nosat" },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr (GError) error = NULL;
      BlFormatSpec spec;

      g_assert_false (bl_format_spec_parse (cases[i].spec, &spec, &error));
      g_assert_error (error, BL_ERROR, BL_ERROR_UNSUPPORTED_FORMAT);
      if (strstr (error->message, cases[i].token) == NULL || strstr (error->message, cases[i].lists) == NULL)
        g_error ("'%s': message \"%s\" should name %s and list %s", cases[i].spec, error->message,
                 cases[i].token, cases[i].lists);
    }
}

static void
test_bits_per_weight (void)
{
  static const struct { const char *spec; double bpw; } cases[] = {
    /* peers.md §3.2/§3.3 and methods.md cross-cutting note 3 */
    { "mxfp4", 4.25 }, { "mxfp6-e2m3", 6.25 }, { "mxfp8-e4m3", 8.25 }, { "mxint8", 8.25 },
    { "nvfp4", 4.5 }, { "nvint4", 4.5 }, { "int4:g128:sym", 4.125 }, { "int4:g128:asym", 4.15625 },
    { "nf4:g64", 4.5 }, { "bitmod4:g128", 4.140625 }, { "bitmod3:g128", 3.140625 },
    { "fp4-e2m1:g32", 4.5 }, { "int2+int4:g128:range10%", 2.2 + 21.0 / 128 }, { "bf16", 16 },
    { "dual-binary:g64", 2.5 }, { "complex-2bit:g32", 2.0 }, { "int8:channel", 8 },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      BlFormatSpec spec;

      parse_ok (cases[i].spec, &spec);
      g_assert_cmpfloat_with_epsilon (bl_format_spec_bits_per_weight (&spec), cases[i].bpw, 1e-12);
    }

  {
    BlFormatSpec spec;

    /* exact figures for a shape: a short last group still pays for its scale */
    parse_ok ("int4:g128:sym", &spec);
    g_assert_cmpfloat_with_epsilon (bl_format_spec_bits_for_shape (&spec, 576, 576),
                                    4.0 + 5.0 * 16 / 576, 1e-12);
    parse_ok ("nvfp4", &spec);
    g_assert_cmpfloat_with_epsilon (bl_format_spec_bits_for_shape (&spec, 16, 64),
                                    4.5 + 32.0 / 1024, 1e-12);
    parse_ok ("int8:channel", &spec);
    g_assert_cmpfloat_with_epsilon (bl_format_spec_bits_for_shape (&spec, 10, 100), 8.0 + 0.16, 1e-12);
    parse_ok ("fp8-e4m3:tensor", &spec);
    g_assert_cmpfloat_with_epsilon (bl_format_spec_bits_for_shape (&spec, 2, 16), 8.0 + 1.0, 1e-12);
  }
}

/* ------------------------------------------------------------------------------------------ */
/* element codecs: golden vectors (peers.md §3.1) */

static guint32
enc (const BlFpFormat *f,
     float             x,
     gboolean          sat)
{
  return bl_fp_encode (f, x, BL_ROUND_RNE, sat, 0);
}

static void
test_e4m3_golden (void)
{
  BlFpFormat f;

  bl_fp_format_init (&f, 4, 3);
  g_assert_cmpint (f.bias, ==, 7);
  g_assert_cmpint (f.specials, ==, BL_FP_SPECIALS_FN);
  g_assert_cmpfloat (f.max_finite, ==, 448.0f);
  g_assert_cmpint (f.emax, ==, 8);
  g_assert_cmpfloat (bl_fp_decode (&f, 0x38), ==, 1.0f);
  g_assert_cmpfloat (bl_fp_decode (&f, 0xB8), ==, -1.0f);
  g_assert_cmpfloat (bl_fp_decode (&f, 0x3C), ==, 1.5f);
  g_assert_cmpfloat (bl_fp_decode (&f, 0x40), ==, 2.0f);
  g_assert_cmpfloat (bl_fp_decode (&f, 0x48), ==, 4.0f);
  g_assert_cmpfloat (bl_fp_decode (&f, 0x7E), ==, 448.0f);
  g_assert_cmpfloat (bl_fp_decode (&f, 0x08), ==, ldexpf (1, -6));
  g_assert_cmpfloat (bl_fp_decode (&f, 0x01), ==, ldexpf (1, -9));
  g_assert_true (isnan (bl_fp_decode (&f, 0x7F)));
  g_assert_true (isnan (bl_fp_decode (&f, 0xFF)));
  g_assert_false (isinf (bl_fp_decode (&f, 0x78)));   /* S.1111.000 is 256, not Inf */
  g_assert_cmpfloat (bl_fp_decode (&f, 0x78), ==, 256.0f);

  g_assert_cmphex (enc (&f, 1.0f, TRUE), ==, 0x38);
  g_assert_cmphex (enc (&f, -1.0f, TRUE), ==, 0xB8);
  g_assert_cmphex (enc (&f, 448.0f, TRUE), ==, 0x7E);
  /* 464 = 448 + ½ulp is a tie that RNE resolves to 448 (even mantissa); just above overflows */
  g_assert_cmphex (enc (&f, 464.0f, FALSE), ==, 0x7E);
  g_assert_cmphex (enc (&f, 464.5f, TRUE), ==, 0x7E);
  g_assert_cmphex (enc (&f, 464.5f, FALSE), ==, 0x7F);
  g_assert_cmphex (enc (&f, -1000.0f, FALSE), ==, 0xFF);
  g_assert_cmphex (enc (&f, INFINITY, TRUE), ==, 0x7E);
  g_assert_cmphex (enc (&f, -INFINITY, TRUE), ==, 0xFE);
  g_assert_cmphex (enc (&f, INFINITY, FALSE), ==, 0x7F);
  g_assert_cmphex (enc (&f, NAN, TRUE), ==, 0x7F);
  /* underflow: half the smallest subnormal ties to 0, just above rounds up */
  g_assert_cmphex (enc (&f, ldexpf (1, -10), TRUE), ==, 0x00);
  g_assert_cmphex (enc (&f, ldexpf (1.0f + ldexpf (1, -20), -10), TRUE), ==, 0x01);
  g_assert_cmphex (enc (&f, -ldexpf (1, -12), TRUE), ==, 0x80);
}

static void
test_e5m2_golden (void)
{
  BlFpFormat f;

  bl_fp_format_init (&f, 5, 2);
  g_assert_cmpint (f.bias, ==, 15);
  g_assert_cmpint (f.specials, ==, BL_FP_SPECIALS_IEEE);
  g_assert_cmpfloat (f.max_finite, ==, 57344.0f);
  g_assert_cmpint (f.emax, ==, 15);
  g_assert_cmpfloat (bl_fp_decode (&f, 0x7B), ==, 57344.0f);
  g_assert_cmpfloat (bl_fp_decode (&f, 0x7C), ==, INFINITY);
  g_assert_cmpfloat (bl_fp_decode (&f, 0xFC), ==, -INFINITY);
  g_assert_true (isnan (bl_fp_decode (&f, 0x7D)));
  g_assert_true (isnan (bl_fp_decode (&f, 0x7E)));
  g_assert_true (isnan (bl_fp_decode (&f, 0x7F)));
  g_assert_cmpfloat (bl_fp_decode (&f, 0x04), ==, ldexpf (1, -14));
  g_assert_cmpfloat (bl_fp_decode (&f, 0x01), ==, ldexpf (1, -16));
  g_assert_cmpfloat (bl_fp_decode (&f, 0x3C), ==, 1.0f);

  /* 61440 = max + ½ulp ties up (odd mantissa) and overflows */
  g_assert_cmphex (enc (&f, 61440.0f, TRUE), ==, 0x7B);
  g_assert_cmphex (enc (&f, 61440.0f, FALSE), ==, 0x7C);
  g_assert_cmphex (enc (&f, 61439.0f, FALSE), ==, 0x7B);
  g_assert_cmphex (enc (&f, -INFINITY, FALSE), ==, 0xFC);
  g_assert_cmphex (enc (&f, INFINITY, TRUE), ==, 0x7B);
  g_assert_cmphex (enc (&f, NAN, FALSE), ==, 0x7F);
}

static void
test_small_float_golden (void)
{
  static const float fp4_values[8] = { 0, 0.5f, 1, 1.5f, 2, 3, 4, 6 };
  BlFpFormat f;

  bl_fp_format_init (&f, 3, 2);
  g_assert_cmpint (f.bias, ==, 3);
  g_assert_cmpfloat (f.max_finite, ==, 28.0f);
  g_assert_cmpint (f.emax, ==, 4);
  g_assert_cmpfloat (bl_fp_decode (&f, 0x04), ==, 0.25f);
  g_assert_cmpfloat (bl_fp_decode (&f, 0x01), ==, 0.0625f);
  g_assert_cmphex (enc (&f, 1000.0f, TRUE), ==, 0x1F);
  g_assert_cmphex (enc (&f, 1000.0f, FALSE), ==, 0x1F);   /* no Inf: always saturates */

  bl_fp_format_init (&f, 2, 3);
  g_assert_cmpint (f.bias, ==, 1);
  g_assert_cmpfloat (f.max_finite, ==, 7.5f);
  g_assert_cmpint (f.emax, ==, 2);
  g_assert_cmpfloat (bl_fp_decode (&f, 0x08), ==, 1.0f);
  g_assert_cmpfloat (bl_fp_decode (&f, 0x01), ==, 0.125f);

  bl_fp_format_init (&f, 2, 1);
  g_assert_cmpfloat (f.max_finite, ==, 6.0f);
  g_assert_cmpint (f.emax, ==, 2);
  for (guint32 c = 0; c < 8; c++)
    {
      g_assert_cmpfloat (bl_fp_decode (&f, c), ==, fp4_values[c]);
      g_assert_cmpfloat (bl_fp_decode (&f, c | 8), ==, -fp4_values[c]);
    }
  /* NaN becomes positive MAXNORM (cuda_fp4.h) */
  g_assert_cmphex (enc (&f, NAN, TRUE), ==, 0x7);
  g_assert_cmphex (enc (&f, -7.0f, TRUE), ==, 0xF);

  /* E8M0 */
  g_assert_cmpfloat (bl_e8m0_decode (127), ==, 1.0f);
  g_assert_cmpfloat (bl_e8m0_decode (0), ==, ldexpf (1, -127));
  g_assert_cmpfloat (bl_e8m0_decode (254), ==, ldexpf (1, 127));
  g_assert_true (isnan (bl_e8m0_decode (255)));

  /* UE4M3: the E4M3 grid without sign, saturating at 448 */
  g_assert_cmpint (bl_ue4m3_encode (448.0f), ==, 0x7E);
  g_assert_cmpint (bl_ue4m3_encode (1e6f), ==, 0x7E);
  g_assert_cmpfloat (bl_ue4m3_decode (0x38), ==, 1.0f);

  /* fp16 / bf16 */
  g_assert_cmphex (bl_f16_encode (1.0f), ==, 0x3C00);
  g_assert_cmphex (bl_f16_encode (65504.0f), ==, 0x7BFF);
  g_assert_cmphex (bl_f16_encode (65520.0f), ==, 0x7C00);
  g_assert_cmphex (bl_f16_encode (ldexpf (1, -24)), ==, 0x0001);
  g_assert_cmphex (bl_bf16_encode (1.0f), ==, 0x3F80);
  g_assert_cmphex (bl_bf16_encode (1.00390625f), ==, 0x3F80);   /* tie to even */
  g_assert_cmphex (bl_bf16_encode (1.01171875f), ==, 0x3F82);   /* tie to even, upward */
  g_assert_cmphex (bl_bf16_encode (NAN), ==, 0x7FC0);
  g_assert_cmpfloat (bl_bf16_decode (0x3F80), ==, 1.0f);
}

/* decode every code of every ≤ 8-bit float format and re-encode it to the same code */
static void
test_codec_exhaustive (void)
{
  guint n_formats = 0;

  for (int bits = 2; bits <= 8; bits++)
    for (int e = 1; e <= bits - 1; e++)
      {
        int m = bits - 1 - e;
        BlFpFormat f;

        bl_fp_format_init (&f, e, m);
        n_formats++;
        for (guint32 code = 0; code < (1u << bits); code++)
          {
            float v = bl_fp_decode (&f, code);

            g_assert_true (memcmp (&f.table[code], &v, sizeof v) == 0);
            if (bl_fp_code_is_nan (&f, code))
              {
                g_assert_true (isnan (v));
                g_assert_true (bl_fp_code_is_nan (&f, bl_fp_encode (&f, v, BL_ROUND_RNE, TRUE, 0)));
                continue;
              }
            for (int sat = 0; sat < 2; sat++)
              for (int r = BL_ROUND_RNE; r <= BL_ROUND_STOCHASTIC; r++)
                {
                  guint32 back = bl_fp_encode (&f, v, r, sat, 0x5555555555555555ull);
                  /* saturation turns ±Inf into ±max */
                  guint32 expect = isinf (v) && sat ? (code & ~f.max_code & ~((1u << (e + m)) - 1)) | f.max_code
                                                    : code;

                  if (back != expect)
                    g_error ("fp%d-e%dm%d code 0x%02x (%g) re-encodes to 0x%02x (rounding %d, sat %d)",
                             bits, e, m, code, v, back, r, sat);
                }
          }
      }
  g_assert_cmpuint (n_formats, ==, 28);

  /* the 16-bit casts, every code */
  for (guint32 code = 0; code < 65536; code++)
    {
      float v = bl_f16_decode ((guint16) code);

      if (isnan (v))
        continue;
      g_assert_cmphex (bl_f16_encode (v), ==, code);
      v = bl_bf16_decode ((guint16) code);
      if (isnan (v))
        continue;
      g_assert_cmphex (bl_bf16_encode (v), ==, code);
    }

  /* E8M0 scales round-trip through their exponent */
  for (int code = 0; code < 255; code++)
    g_assert_cmpint (bl_floor_log2 (bl_e8m0_decode ((guint8) code)) + 127, ==, code);
}


/* the inline scale helpers shared by the oracle and the fused rows equal the generic codecs */
static gboolean
same_bits (float a,
           float b)
{
  return memcmp (&a, &b, sizeof a) == 0;
}

static float
float_of (guint32 u)
{
  float f;

  memcpy (&f, &u, sizeof f);
  return f;
}

static void
test_scale_helpers (void)
{
  static const guint32 tails13[] = { 0, 1, 0xfff, 0x1000, 0x1001, 0x1fff };
  static const guint32 tails16[] = { 0, 1, 0x7fff, 0x8000, 0x8001, 0xffff };
  static const guint32 tails20[] = { 0, 1, 0x7ffff, 0x80000, 0x80001, 0xfffff };

  for (guint32 c = 0; c < 65536; c++)
    g_assert_true (same_bits (bl_scale_f16_decode ((guint16) c), bl_f16_decode ((guint16) c)));
  /* every sign/exponent/top-10-mantissa pattern with the tails that decide the rounding */
  for (guint32 hi = 0; hi < (1u << 19); hi++)
    for (gsize t = 0; t < G_N_ELEMENTS (tails13); t++)
      {
        float v = float_of ((hi << 13) | tails13[t]);

        if (bl_scale_f16_encode (v) != bl_f16_encode (v))
          g_error ("f16 %.9g: fast 0x%04x, generic 0x%04x", v, bl_scale_f16_encode (v), bl_f16_encode (v));
      }
  for (guint32 hi = 0; hi < (1u << 16); hi++)
    for (gsize t = 0; t < G_N_ELEMENTS (tails16); t++)
      {
        float v = float_of ((hi << 16) | tails16[t]);

        g_assert_cmphex (bl_scale_bf16_encode (v), ==, bl_bf16_encode (v));
      }
  /* UE4M3 over its normal range [2^−6, 448] */
  for (guint32 hi = 0x3c8u; hi <= 0x43eu; hi++)
    for (gsize t = 0; t < G_N_ELEMENTS (tails20); t++)
      {
        float v = float_of ((hi << 20) | tails20[t]);

        if (v < 0.015625f || v > 448.0f)
          continue;
        g_assert_cmphex (bl_scale_e4m3_encode_normal (v), ==, bl_ue4m3_encode (v));
      }
  for (guint32 c = 8; c <= 0x7e; c++)
    g_assert_true (same_bits (bl_scale_e4m3_decode_normal ((guint8) c), bl_ue4m3_decode ((guint8) c)));
  for (guint32 c = 0; c < 256; c++)
    g_assert_true (same_bits (bl_scale_e8m0_decode ((guint8) c), bl_e8m0_decode ((guint8) c)));

  /* RCEIL is ceil(log2(amax/max_pos)), exact also for powers of two and subnormals */
  g_assert_cmpint (bl_scale_mx_code (BL_SCALE_RULE_RCEIL, 2, 1, 6.0f, 6.0f), ==, 127);
  g_assert_cmpint (bl_scale_mx_code (BL_SCALE_RULE_RCEIL, 2, 1, 6.0f, 6.0000005f), ==, 128);
  g_assert_cmpint (bl_scale_mx_code (BL_SCALE_RULE_RCEIL, 2, 1, 6.0f, 3.0f), ==, 126);
  g_assert_cmpint (bl_scale_mx_code (BL_SCALE_RULE_RCEIL, 2, 1, 1.0f, ldexpf (1.0f, -140)), ==, 0);
  g_assert_cmpint (bl_scale_mx_code (BL_SCALE_RULE_FLOOR, 2, 1, 6.0f, 0.0f), ==, 0);
  g_assert_cmpint (bl_scale_mx_code (BL_SCALE_RULE_FLOOR, 2, 1, 6.0f, NAN), ==, 0xff);
  g_assert_cmpint (bl_scale_mx_code (BL_SCALE_RULE_FLOOR, 0, 6, 1.0f, 3e38f), ==, 254);
  g_assert_cmpint (bl_scale_mx_code (BL_SCALE_RULE_FLOOR, 0, 6, 1.0f, INFINITY), ==, 0xff);
}

/* every code of the integer, MX-integer, NV and BitMoD grids is a fixed point: a tensor made
 * of all grid values (with the scale fixed by its maximum) quantizes to itself */
static void
check_fixed_point (const char  *str,
                   const float *x,
                   gint64       n)
{
  g_autofree float *y = g_new (float, n);

  fake (str, x, y, 1, n);
  assert_same_bits (x, y, n, str);
}

static void
test_grid_fixed_points (void)
{
  float x[512];
  int n;

  /* int8 absmax: q ∈ [−127, 127], s = 2^−7 */
  for (n = 0; n < 255; n++)
    x[n] = (float) (n - 127) / 128.0f;
  check_fixed_point ("int8:tensor", x, n);
  check_fixed_point ("int8:channel", x, n);
  /* int4 absmax and asym (zero 3), s = 0.25 */
  for (n = 0; n < 15; n++)
    x[n] = (float) (n - 7) * 0.25f;
  check_fixed_point ("int4:tensor", x, n);
  check_fixed_point ("int4:g16:sym", x, n);
  for (n = 0; n < 16; n++)
    x[n] = (float) (n - 3) * 0.25f;
  check_fixed_point ("int4:tensor:asym", x, n);
  check_fixed_point ("int4:g16:asym", x, n);
  for (n = 0; n < 8; n++)
    x[n] = (float) (n - 5) * 0.5f;
  check_fixed_point ("int3:channel:asym", x, n);
  /* mxint8: nine blocks of 31 codes, each with 127/64 fixing X = 1 */
  for (int b = 0; b < 9; b++)
    {
      for (int i = 0; i < 31; i++)
        x[b * 32 + i] = (float) MIN (b * 31 + i - 127, 127) / 64.0f;
      x[b * 32 + 31] = 127.0f / 64.0f;
    }
  check_fixed_point ("mxint8", x, 288);
  for (n = 0; n < 32; n++)
    x[n] = (float) (MIN (n, 14) - 7) / 4.0f;
  check_fixed_point ("mxint4", x, 32);
  /* nvint4: amax 49/16 makes s_T = 2^−10 and s_b = 448, so the step is 0.4375 */
  for (n = 0; n < 16; n++)
    x[n] = (float) (MIN (n, 14) - 7) * 0.4375f;
  check_fixed_point ("nvint4", x, 16);
  /* BitMoD: each grid's values with its special value, s = 2^−4 */
  for (int sel = 0; sel < 4; sel++)
    for (int bits = 3; bits <= 4; bits++)
      {
        int nv;
        const float *grid = bl_bitmod_grid (bits, sel, &nv);
        g_autofree char *str = g_strdup_printf ("bitmod%d:g128", bits);

        for (n = 0; n < 128; n++)
          x[n] = grid[n % nv] / 16.0f;
        check_fixed_point (str, x, 128);
      }
}

static void
test_rounding_modes (void)
{
  BlFpFormat f;
  g_autofree float *x = g_new (float, 20000);
  g_autofree float *y = g_new (float, 20000);
  g_autofree float *y2 = g_new (float, 20000);
  double ups = 0;

  bl_fp_format_init (&f, 2, 1);
  /* 2.5 lies halfway between 2 and 3 */
  g_assert_cmphex (bl_fp_encode (&f, 2.5f, BL_ROUND_RNE, TRUE, 0), ==, 0x4);
  g_assert_cmphex (bl_fp_encode (&f, 2.5f, BL_ROUND_AWAY, TRUE, 0), ==, 0x5);
  g_assert_cmphex (bl_fp_encode (&f, 2.9f, BL_ROUND_ZERO, TRUE, 0), ==, 0x4);
  g_assert_cmphex (bl_fp_encode (&f, -2.5f, BL_ROUND_AWAY, TRUE, 0), ==, 0xD);
  g_assert_cmphex (bl_fp_encode (&f, 0.25f, BL_ROUND_RNE, TRUE, 0), ==, 0x0);
  g_assert_cmphex (bl_fp_encode (&f, 0.25f, BL_ROUND_AWAY, TRUE, 0), ==, 0x1);
  /* 3.5 ties between 3 (odd) and 4 (even) */
  g_assert_cmphex (bl_fp_encode (&f, 3.5f, BL_ROUND_RNE, TRUE, 0), ==, 0x6);
  /* stochastic: up iff the random number is below the remainder */
  g_assert_cmphex (bl_fp_encode (&f, 2.25f, BL_ROUND_STOCHASTIC, TRUE, 0), ==, 0x5);
  g_assert_cmphex (bl_fp_encode (&f, 2.25f, BL_ROUND_STOCHASTIC, TRUE, G_MAXUINT64), ==, 0x4);

  /* stochastic rounding on an integer grid: s = 1.75/7 = 0.25 and 0.3125/s = 1.25 goes up
   * to 2 with probability 1/4; the same seed gives the same draws, another seed others */
  for (int i = 0; i < 20000; i++)
    x[i] = i == 0 ? 1.75f : 0.3125f;
  fake ("int4:tensor:stochastic:99", x, y, 1, 20000);
  fake ("int4:tensor:stochastic:99", x, y2, 1, 20000);
  assert_same_bits (y, y2, 20000, "same seed");
  for (int i = 1; i < 20000; i++)
    {
      g_assert_true (y[i] == 0.25f || y[i] == 0.5f);
      ups += y[i] == 0.5f;
    }
  g_assert_cmpfloat (fabs (ups / 19999.0 - 0.25), <, 0.015);
  fake ("int4:tensor:stochastic:100", x, y2, 1, 20000);
  g_assert_true (memcmp (y, y2, sizeof (float) * 20000) != 0);
}

/* ------------------------------------------------------------------------------------------ */
/* MX (peers.md §3.2) */

static void
mx_scale_codes (const char *rule,
                guint8      out[3],
                float       y[96])
{
  /* three blocks with maxima 5, 6.5 and 7 tell the four rules apart:
   * FLOOR (0,0,0), CEIL (1,1,1), RCEIL (0,1,1), EVEN (0,0,1) as exponents */
  static const float maxima[3] = { 5.0f, 6.5f, 7.0f };
  g_autofree char *str = g_strdup_printf ("mxfp4:%s", rule);
  float x[96];
  BlFormatSpec spec;
  gsize size;
  g_autofree guint8 *packed = NULL;
  BlPackedHeader h;
  g_autoptr (GError) error = NULL;

  for (int b = 0; b < 3; b++)
    for (int i = 0; i < 32; i++)
      x[b * 32 + i] = i == 0 ? maxima[b] : (i == 1 ? 0.375f : 0.0f);
  parse_ok (str, &spec);
  size = bl_format_packed_size (&spec, 1, 96);
  packed = g_malloc (size);
  g_assert_true (bl_format_quantize (&spec, x, 1, 96, packed, size, &error));
  g_assert_true (bl_format_dequantize (packed, size, y, 96, &error));
  g_assert_no_error (error);
  memcpy (&h, packed, sizeof h);
  g_assert_cmpuint (h.scale_kind, ==, BL_PACKED_SCALE_E8M0);
  for (int b = 0; b < 3; b++)
    out[b] = packed[h.scales_offset + b];
}

static void
test_mx_floor (void)
{
  guint8 codes[3];
  float y[96];

  mx_scale_codes ("floor", codes, y);
  /* X = 2^(floor(log2 amax) − 2) = 1 for all three blocks */
  g_assert_cmpint (codes[0], ==, 127);
  g_assert_cmpint (codes[1], ==, 127);
  g_assert_cmpint (codes[2], ==, 127);
  /* values in (6, 8)·X clip to 6 (the overflow torchao warns about); 5 rounds to 4 */
  g_assert_cmpfloat (y[0], ==, 4.0f);
  g_assert_cmpfloat (y[32], ==, 6.0f);
  g_assert_cmpfloat (y[64], ==, 6.0f);
  /* and small values keep resolution: 0.375 → 0.5 */
  g_assert_cmpfloat (y[1], ==, 0.5f);
}

static void
test_mx_ceil (void)
{
  guint8 codes[3];
  float y[96];

  mx_scale_codes ("ceil", codes, y);
  /* 2^(ceil(log2 amax) − 2) = 2: no clipping, but small values flush (0.375/2 → 0) */
  g_assert_cmpint (codes[0], ==, 128);
  g_assert_cmpint (codes[1], ==, 128);
  g_assert_cmpint (codes[2], ==, 128);
  g_assert_cmpfloat (y[0], ==, 4.0f);
  g_assert_cmpfloat (y[32], ==, 6.0f);
  g_assert_cmpfloat (y[64], ==, 8.0f);
  g_assert_cmpfloat (y[1], ==, 0.0f);
}

static void
test_mx_rceil (void)
{
  guint8 codes[3];
  float y[96];

  mx_scale_codes ("rceil", codes, y);
  /* 2^ceil(log2(amax/6)): 5/6 < 1 keeps X = 1 like FLOOR; 6.5/6 > 1 goes to 2 like CEIL */
  g_assert_cmpint (codes[0], ==, 127);
  g_assert_cmpint (codes[1], ==, 128);
  g_assert_cmpint (codes[2], ==, 128);
  g_assert_cmpfloat (y[1], ==, 0.5f);
  g_assert_cmpfloat (y[33], ==, 0.0f);
  g_assert_cmpfloat (y[64], ==, 8.0f);
}

static void
test_mx_even (void)
{
  guint8 codes[3];
  float y[96];

  mx_scale_codes ("even", codes, y);
  /* amax rounded to one mantissa bit first: 5 → 5 and 6.5 → 6 keep X = 1, 7 → 8 gives X = 2 */
  g_assert_cmpint (codes[0], ==, 127);
  g_assert_cmpint (codes[1], ==, 127);
  g_assert_cmpint (codes[2], ==, 128);
  g_assert_cmpfloat (y[32], ==, 6.0f);
  g_assert_cmpfloat (y[64], ==, 8.0f);
}

static void
test_mx_golden (void)
{
  float x[32], y[32];

  /* MXINT8: implied 2^−6, max 127/64, −128 unused */
  for (int i = 0; i < 32; i++)
    x[i] = (float) (i - 16) / 8.0f;
  x[0] = -1.999f;
  fake ("mxint8", x, y, 1, 32);
  /* amax 1.999: X = 2^0; −1.999·64 = −127.9 clamps to −127 */
  g_assert_cmpfloat (y[0], ==, -127.0f / 64.0f);
  g_assert_cmpfloat (y[1], ==, -15.0f / 8.0f);
  /* MXFP8 E4M3 on a block whose max is exactly 448·2^k keeps every representable value */
  for (int i = 0; i < 32; i++)
    x[i] = ldexpf (1.0f + (float) (i % 8) / 8.0f, i % 9 - 4);
  x[5] = 448.0f / 64.0f;
  fake ("mxfp8-e4m3", x, y, 1, 32);
  assert_same_bits (x, y, 32, "mxfp8-e4m3 representable block");
  /* a NaN makes the whole block NaN */
  x[3] = NAN;
  fake ("mxfp4", x, y, 1, 32);
  for (int i = 0; i < 32; i++)
    g_assert_true (isnan (y[i]));
}

/* ------------------------------------------------------------------------------------------ */
/* NVFP4 (peers.md §3.3), hand-computed */

static void
test_nvfp4_block (void)
{
  /* block A has the tensor max 10.5 = 2688·2^−8, so s_T = 2^−8 exactly and
   * s_b = e4m3((10.5/6)/2^−8) = e4m3(448) = 448, total scale 1.75;
   * block B has amax 0.7: (0.7/6)/2^−8 = 29.87 → e4m3 30 (0x5F), total 30·2^−8 = 0.1171875 */
  static const float a[16] = { 10.5f, 3.5f, 2.625f, 0.875f, 1.3125f, -5.25f, 4.8125f, 6.125f,
                               0.4375f, -10.5f, 0, 0, 0, 0, 0, 0 };
  static const float a_q[16] = { 10.5f, 3.5f, 2.625f, 0.875f, 1.75f, -5.25f, 5.25f, 7.0f,
                                 0, -10.5f, 0, 0, 0, 0, 0, 0 };
  static const guint8 a_codes[16] = { 0x7, 0x4, 0x3, 0x1, 0x2, 0xD, 0x5, 0x6, 0x0, 0xF };
  static const float b[16] = { 0.7f, 0.35f, -0.2f, 0.05f, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 };
  static const float b_q[16] = { 0.703125f, 0.3515625f, -0.17578125f, 0.05859375f,
                                 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 };
  float x[32], y[32], yf[32];
  BlFormatSpec spec;
  gsize size;
  g_autofree guint8 *packed = NULL;
  BlPackedHeader h;
  g_autoptr (GError) error = NULL;

  memcpy (x, a, sizeof a);
  memcpy (x + 16, b, sizeof b);
  parse_ok ("nvfp4", &spec);
  size = bl_format_packed_size (&spec, 1, 32);
  packed = g_malloc (size);
  g_assert_true (bl_format_quantize (&spec, x, 1, 32, packed, size, &error));
  g_assert_no_error (error);
  memcpy (&h, packed, sizeof h);
  g_assert_cmpfloat (h.tensor_scale, ==, ldexpf (1, -8));
  g_assert_cmpuint (h.scale_kind, ==, BL_PACKED_SCALE_UE4M3);
  g_assert_cmphex (packed[h.scales_offset], ==, 0x7E);
  g_assert_cmphex (packed[h.scales_offset + 1], ==, 0x5F);
  for (int i = 0; i < 16; i++)
    g_assert_cmphex (bl_bits_get (packed + h.codes_offset, (guint64) i, 4), ==, a_codes[i]);
  /* two e2m1 values per byte, even column in the low nibble (ModelOpt layout) */
  g_assert_cmphex (packed[h.codes_offset], ==, 0x47);

  g_assert_true (bl_format_dequantize (packed, size, y, 32, &error));
  g_assert_no_error (error);
  for (int i = 0; i < 16; i++)
    {
      g_assert_cmpfloat (y[i], ==, a_q[i]);
      g_assert_cmpfloat (y[16 + i], ==, b_q[i]);
    }
  fake ("nvfp4", x, yf, 1, 32);
  assert_same_bits (y, yf, 32, "nvfp4 fake vs dequantize");
}

/* ------------------------------------------------------------------------------------------ */
/* the symmetric INT conventions (peers.md §3.6), hand-computed with s = 0.25 */

static void
check_int (const char  *str,
           const float *x,
           const float *expect,
           const guint *codes)
{
  BlFormatSpec spec;
  gsize size;
  g_autofree guint8 *packed = NULL;
  BlPackedHeader h;
  float y[8];
  g_autoptr (GError) error = NULL;

  parse_ok (str, &spec);
  size = bl_format_packed_size (&spec, 1, 8);
  packed = g_malloc (size);
  g_assert_true (bl_format_quantize (&spec, x, 1, 8, packed, size, &error));
  g_assert_true (bl_format_dequantize (packed, size, y, 8, &error));
  g_assert_no_error (error);
  memcpy (&h, packed, sizeof h);
  for (int i = 0; i < 8; i++)
    {
      if (y[i] != expect[i] || bl_bits_get (packed + h.codes_offset, (guint64) i, 4) != codes[i])
        g_error ("%s element %d: %g (code %u), expected %g (code %u)", str, i, y[i],
                 bl_bits_get (packed + h.codes_offset, (guint64) i, 4), expect[i], codes[i]);
    }
  fake (str, x, y, 1, 8);
  for (int i = 0; i < 8; i++)
    g_assert_cmpfloat (y[i], ==, expect[i]);
}

static void
test_int_absmax (void)
{
  /* s = absmax/7 = 1.75/7 = 0.25; q = RNE(x/s) in [−7, 7]; stored offset by 8 */
  static const float x[8] = { -1.75f, 0.875f, 0.375f, -0.125f, 0.0625f, 1.3125f, -0.625f, 0.25f };
  static const float q[8] = { -1.75f, 1.0f, 0.5f, 0, 0, 1.25f, -0.5f, 0.25f };
  static const guint c[8] = { 1, 12, 10, 8, 8, 13, 6, 9 };

  check_int ("int4:g8:sym", x, q, c);
}

static void
test_int_gptq (void)
{
  /* s = 2·absmax/15 = 2·1.875/15 = 0.25, zero 8; +absmax 1.875 → 7.5 → 8 → clamps to 15:
   * the range is [−8s, 7s] and +absmax is not representable */
  static const float x[8] = { 1.875f, 0.875f, 0.375f, -0.125f, 0.0625f, 1.3125f, -0.625f, -1.75f };
  static const float q[8] = { 1.75f, 1.0f, 0.5f, 0, 0, 1.25f, -0.5f, -1.75f };
  static const guint c[8] = { 15, 12, 10, 8, 8, 13, 6, 1 };

  check_int ("int4:g8:gptq", x, q, c);
}

static void
test_int_q4_0 (void)
{
  /* ggml Q4_0: the largest magnitude is −2, d = −2/−8 = 0.25, code = min(15, (int)(x/d + 8.5)):
   * ties go up, so −0.625 → −2.5 → −2 and 0.875 → 3.5 → 4 */
  static const float x[8] = { -2.0f, 0.875f, 0.375f, -0.125f, 0.0625f, 1.3125f, -0.625f, 1.75f };
  static const float q[8] = { -2.0f, 1.0f, 0.5f, 0, 0, 1.25f, -0.5f, 1.75f };
  static const guint c[8] = { 0, 12, 10, 8, 8, 13, 6, 15 };
  /* with a positive maximum, d = 2/−8 < 0: the extreme code 0 sits at +2 and ties still go
   * up in x/d, so −0.625 (x/d = 2.5) lands on 3·d = −0.75 */
  static const float x2[8] = { 2.0f, 0.875f, 0.375f, -0.125f, 0.0625f, 1.3125f, -0.625f, 1.75f };
  static const float q2[8] = { 2.0f, 0.75f, 0.25f, -0.25f, -0.0f, 1.25f, -0.75f, 1.75f };
  static const guint c2[8] = { 0, 5, 7, 9, 8, 3, 11, 1 };

  check_int ("int4:g8:q4_0", x, q, c);
  check_int ("int4:g8:q4_0", x2, q2, c2);
}

static void
test_int_asym (void)
{
  /* min −0.75, max 3: s = 3.75/15 = 0.25, zero = round(0.75/0.25) = 3 */
  static const float x[8] = { -0.75f, 3.0f, 0.875f, 0.125f, -0.375f, 1.3125f, 2.0f, 0.0f };
  static const float q[8] = { -0.75f, 3.0f, 1.0f, 0, -0.5f, 1.25f, 2.0f, 0 };
  static const guint c[8] = { 0, 15, 7, 3, 1, 8, 11, 3 };

  check_int ("int4:g8:asym", x, q, c);
}

/* ------------------------------------------------------------------------------------------ */
/* the other families */

static void
test_nf4 (void)
{
  const float *t = bl_nf4_table ();
  float x[64], y[64];

  g_assert_cmpfloat (t[0], ==, -1.0f);
  g_assert_cmpfloat (t[7], ==, 0.0f);
  g_assert_cmpfloat (t[15], ==, 1.0f);
  g_assert_cmpfloat (t[8], ==, 0.07958029955625534f);
  for (int i = 0; i < 64; i++)
    x[i] = t[i % 16] * 2.0f;
  fake ("nf4:g64", x, y, 1, 64);
  assert_same_bits (x, y, 64, "nf4 table values");
  /* a value on the midpoint of two levels takes the lower one */
  x[1] = (float) ((t[14] + (double) t[15]) / 2.0) * 2.0f;
  fake ("nf4:g64", x, y, 1, 64);
  g_assert_cmpfloat (y[1], ==, t[14] * 2.0f);
}

static void
test_binary_ternary (void)
{
  static const float x[8] = { 0.5f, -1.5f, 0.25f, -0.25f, 1.0f, 0.0f, -0.5f, 0.5f };
  float y[8];

  /* binary: mean|x| = 4.5/8 = 0.5625, sign(0) = + */
  fake ("binary:channel", x, y, 1, 8);
  for (int i = 0; i < 8; i++)
    g_assert_cmpfloat (y[i], ==, x[i] < 0 ? -0.5625f : 0.5625f);

  /* ternary absmean: γ = 0.5625; x/γ rounds to {1, −1 (−2.67 clamps), 0, 0, 1 (1.78 → 2 → 1), 0, −1, 1} */
  fake ("ternary:absmean", x, y, 1, 8);
  {
    static const float q[8] = { 0.5625f, -0.5625f, 0, 0, 0.5625f, 0, -0.5625f, 0.5625f };

    for (int i = 0; i < 8; i++)
      g_assert_cmpfloat (y[i], ==, q[i]);
  }
  /* ternary median: |x| sorted 0, .25, .25, .5, .5, .5, 1, 1.5 → lower median 0.5;
   * 0.25/(0.5+ε) < 0.5 → 0 */
  fake ("ternary:median", x, y, 1, 8);
  {
    static const float q[8] = { 0.5f, -0.5f, 0, 0, 0.5f, 0, -0.5f, 0.5f };

    for (int i = 0; i < 8; i++)
      g_assert_cmpfloat (y[i], ==, q[i]);
  }
}

static void
test_dual_binary (void)
{
  /* min −1, max 2: s = 1, z = 1 → α₁ = 2s, α₂ = −s and ŵ ∈ {−s, 0, s, 2s}, the 2-bit grid
   * (methods.md §13b) */
  static const float x[8] = { -1.0f, 2.0f, 0.4f, 0.6f, 1.4f, 1.6f, -0.6f, 0.0f };
  static const float q[8] = { -1.0f, 2.0f, 0.0f, 1.0f, 1.0f, 2.0f, -1.0f, 0.0f };
  float y[8];
  g_autofree float *r = gaussian (3, 4096);
  g_autofree float *ry = g_new (float, 4096);

  fake ("dual-binary", x, y, 1, 8);
  for (int i = 0; i < 8; i++)
    g_assert_cmpfloat (y[i], ==, q[i]);

  /* on random rows every output lies on that row's 4-point grid */
  fake ("dual-binary", r, ry, 16, 256);
  for (int row = 0; row < 16; row++)
    {
      float vals[8];
      int nv = 0;

      for (int i = 0; i < 256; i++)
        {
          gboolean seen = FALSE;

          for (int k = 0; k < nv; k++)
            seen |= vals[k] == ry[row * 256 + i];
          if (!seen)
            {
              g_assert_cmpint (nv, <, 4);
              vals[nv++] = ry[row * 256 + i];
            }
        }
    }
}

static void
test_complex_2bit (void)
{
  /* pairs (a, b): (1, 0.5) → +1; (0.2, 0.9) → +i; (−1, 0.3) → −1; (0.1, −0.7) → −i;
   * boundary phases: (1, 1) = π/4 → +i, (−1, 1) = 3π/4 → −1, (1, −1) = −π/4 → +1,
   * (−1, −1) = −3π/4 → −i */
  static const float x[16] = { 1.0f, 0.5f, 0.2f, 0.9f, -1.0f, 0.3f, 0.1f, -0.7f,
                               1.0f, 1.0f, -1.0f, 1.0f, 1.0f, -1.0f, -1.0f, -1.0f };
  float y[16];
  /* s_re = mean|a| over ±1 pairs = (1 + 1 + 1 + 1)/4 = 1; s_im = mean|b| over ±i pairs
   * = (0.9 + 0.7 + 1 + 1)/4 = 0.9 */
  static const float s_im = 0.89990234375f;   /* 0.9 in fp16 */
  const float q[16] = { 1, 0, 0, s_im, -1, 0, 0, -s_im, 0, s_im, -1, 0, 1, 0, 0, -s_im };

  fake ("complex-2bit", x, y, 1, 16);
  for (int i = 0; i < 16; i++)
    g_assert_cmpfloat (y[i], ==, q[i]);
  /* every weight has a zero real or imaginary part */
  for (int i = 0; i < 16; i += 2)
    g_assert_true (y[i] == 0.0f || y[i + 1] == 0.0f);
}

static void
test_bitmod (void)
{
  /* methods.md §12 [D]: mean per-group MSE on N(0,1), g = 128, 3000 groups (±3%) */
  static const struct { const char *spec; double mse; } cases[] = {
    { "int4:g128:sym:scale=fp32", 0.0138 }, { "fp4-e2m1:g128:scale=fp32", 0.0119 },
    { "bitmod4:g128:scale=fp32", 0.00956 }, { "int3:g128:sym:scale=fp32", 0.0753 },
    { "fp3-e2m0:g128:scale=fp32", 0.0569 }, { "bitmod3:g128:scale=fp32", 0.0382 },
  };
  const gint64 n = 128 * 3000;
  g_autofree float *x = gaussian (12, n);
  g_autofree float *y = g_new (float, n);

  for (gsize c = 0; c < G_N_ELEMENTS (cases); c++)
    {
      double err = 0;

      fake (cases[c].spec, x, y, 3000, 128);
      for (gint64 i = 0; i < n; i++)
        err += ((double) y[i] - x[i]) * ((double) y[i] - x[i]);
      err /= (double) n;
      if (fabs (err / cases[c].mse - 1.0) > 0.03)
        g_error ("%s: MSE %.5f, methods.md says %.5f", cases[c].spec, err, cases[c].mse);
    }
}

static void
test_int2_int4 (void)
{
  const gint64 rows = 8, cols = 256;
  g_autofree float *x = gaussian (5, rows * cols);
  g_autofree float *y = g_new (float, rows * cols);
  BlFormatSpec spec;
  gsize size;
  g_autofree guint8 *packed = NULL;
  BlPackedHeader h;
  g_autoptr (GError) error = NULL;
  int n4 = 0;

  /* widen groups 3 and 10 so that they are the top 12.5% (2 of 16) by range */
  for (int i = 0; i < 128; i++)
    {
      x[3 * 128 + i] *= 4.0f;
      x[10 * 128 + i] *= 3.0f;
    }
  parse_ok ("int2+int4:g128:range12.5%", &spec);
  size = bl_format_packed_size (&spec, rows, cols);
  packed = g_malloc (size);
  g_assert_true (bl_format_quantize (&spec, x, rows, cols, packed, size, &error));
  g_assert_true (bl_format_dequantize (packed, size, y, rows * cols, &error));
  g_assert_no_error (error);
  memcpy (&h, packed, sizeof h);
  for (int g = 0; g < 16; g++)
    {
      guint sel = bl_bits_get (packed + h.selectors_offset, (guint64) g, 1);

      g_assert_cmpuint (sel, ==, (g == 3 || g == 10) ? 1 : 0);
      n4 += (int) sel;
    }
  g_assert_cmpint (n4, ==, 2);
  g_assert_cmpuint (h.extra_bytes, ==, 2 * 128 * 2 / 8);
  g_assert_cmpfloat_with_epsilon (bl_format_spec_bits_for_shape (&spec, rows, cols),
                                  2.0 + 16.0 * (16 + 4 + 1) / 2048 + 2.0 * 2 * 128 / 2048, 1e-12);
  /* many groups with tied ranges: the selection is the first 20% in (range desc, index asc) */
  {
    const gint64 g_rows = 64, g_cols = 64 * 16, n_groups = 64 * 64;
    g_autofree float *v = g_new (float, g_rows * g_cols);
    g_autofree float *out = g_new (float, g_rows * g_cols);
    g_autofree double *key = g_new (double, n_groups);
    g_autoptr (GRand) rand = g_rand_new_with_seed (11);
    BlFormatSpec mixed;
    gsize msize;
    g_autofree guint8 *mpacked = NULL;
    BlPackedHeader mh;
    gint64 n_top = (gint64) floor (0.2 * n_groups + 0.5), selected = 0;

    for (gint64 i = 0; i < g_rows * g_cols; i++)
      v[i] = (float) g_rand_int_range (rand, -3, 4) * 0.125f;
    parse_ok ("int2+int4:g16:range20%", &mixed);
    msize = bl_format_packed_size (&mixed, g_rows, g_cols);
    mpacked = g_malloc (msize);
    g_assert_true (bl_format_quantize (&mixed, v, g_rows, g_cols, mpacked, msize, &error));
    g_assert_true (bl_format_dequantize (mpacked, msize, out, g_rows * g_cols, &error));
    g_assert_no_error (error);
    memcpy (&mh, mpacked, sizeof mh);
    for (gint64 g = 0; g < n_groups; g++)
      {
        float lo = v[g * 16], hi = v[g * 16];

        for (int i = 1; i < 16; i++)
          {
            lo = MIN (lo, v[g * 16 + i]);
            hi = MAX (hi, v[g * 16 + i]);
          }
        key[g] = hi - lo;
      }
    for (gint64 g = 0; g < n_groups; g++)
      {
        /* rank of g: groups with a wider range, or the same range and a lower index */
        gint64 rank = 0;
        gboolean sel = bl_bits_get (mpacked + mh.selectors_offset, (guint64) g, 1);

        for (gint64 o = 0; o < n_groups; o++)
          rank += key[o] > key[g] || (key[o] == key[g] && o < g);
        g_assert_cmpint (sel, ==, rank < n_top);
        selected += sel;
      }
    g_assert_cmpint (selected, ==, n_top);
  }

  /* 4-bit groups take up to 16 levels, 2-bit groups at most 4 */
  for (int g = 0; g < 16; g++)
    {
      float vals[16];
      int nv = 0;

      for (int i = 0; i < 128; i++)
        {
          gboolean seen = FALSE;

          for (int k = 0; k < nv; k++)
            seen |= vals[k] == y[g * 128 + i];
          if (!seen)
            {
              g_assert_cmpint (nv, <, (g == 3 || g == 10) ? 16 : 4);
              vals[nv++] = y[g * 128 + i];
            }
        }
    }
}

/* ------------------------------------------------------------------------------------------ */
/* fast paths, threads and the packed layout agree with the oracle */

static void
check_all_paths (const char *str,
                 const float *x,
                 gint64      rows,
                 gint64      cols)
{
  BlFormatSpec spec;
  gint64 n = rows * cols;
  g_autofree float *ref = g_new (float, n);
  g_autofree float *fast1 = g_new (float, n);
  g_autofree float *fast3 = g_new (float, n);
  g_autofree float *deq = g_new (float, n);
  g_autofree guint8 *packed = NULL;
  gsize size;
  g_autoptr (GError) error = NULL;
  g_autofree char *what = NULL;

  parse_ok (str, &spec);
  g_assert_true (bl_format_fake_quant_reference (&spec, x, ref, rows, cols, &error));
  g_assert_true (bl_format_fake_quant (&spec, x, fast1, rows, cols, 1, &error));
  g_assert_true (bl_format_fake_quant (&spec, x, fast3, rows, cols, 3, &error));
  size = bl_format_packed_size (&spec, rows, cols);
  packed = g_malloc (size);
  g_assert_true (bl_format_quantize (&spec, x, rows, cols, packed, size, &error));
  g_assert_true (bl_format_dequantize (packed, size, deq, n, &error));
  g_assert_no_error (error);

  what = g_strdup_printf ("%s %" G_GINT64_FORMAT "x%" G_GINT64_FORMAT, str, rows, cols);
  assert_same_bits (ref, fast1, n, what);
  assert_same_bits (ref, fast3, n, what);
  assert_same_bits (ref, deq, n, what);

  /* in place */
  memcpy (fast1, x, sizeof (float) * n);
  g_assert_true (bl_format_fake_quant (&spec, fast1, fast1, rows, cols, 2, &error));
  g_assert_no_error (error);
  assert_same_bits (ref, fast1, n, what);
}

static void
test_fast_matches_reference (void)
{
  static const gint64 shapes[][2] = { { 7, 300 }, { 33, 64 }, { 1, 1 }, { 3, 17 } };

  for (gsize s = 0; s < G_N_ELEMENTS (shapes); s++)
    {
      gint64 rows = shapes[s][0], cols = shapes[s][1];
      g_autofree float *x = heavy_tailed ((guint32) s + 1, rows * cols);

      /* exact ties, zeros, subnormals and huge values */
      if (rows * cols >= 16)
        {
          x[0] = 0.0f;
          x[1] = -0.0f;
          x[2] = 1e-42f;
          x[3] = -3e-39f;
          x[4] = 1e30f;
          x[5] = 0.5f;
          x[6] = x[4] / 7.0f;
          x[7] = 2.5e-3f;
        }
      for (gsize i = 0; i < G_N_ELEMENTS (issue_specs); i++)
        check_all_paths (issue_specs[i], x, rows, cols);
      for (gsize i = 0; i < G_N_ELEMENTS (option_specs); i++)
        check_all_paths (option_specs[i], x, rows, cols);
    }

  /* rows that stress the scale rules: all zeros, a NaN, f32 subnormals, one huge value,
   * values at E8M0 and E4M3 boundaries */
  {
    const gint64 rows = 6, cols = 512;
    g_autofree float *x = heavy_tailed (77, rows * cols);

    for (gint64 c = 0; c < cols; c++)
      {
        x[0 * cols + c] = 0.0f;
        x[2 * cols + c] = ldexpf ((float) (c % 17) - 8.0f, -140);
        x[4 * cols + c] = ldexpf (1.0f, (int) (c % 40) - 20) * ((c % 3) ? 1.5f : 1.0f);
      }
    x[1 * cols + 100] = NAN;
    x[3 * cols + 7] = 3e38f;
    x[5 * cols + 33] = INFINITY;
    for (gsize i = 0; i < G_N_ELEMENTS (issue_specs); i++)
      check_all_paths (issue_specs[i], x, rows, cols);
    for (gsize i = 0; i < G_N_ELEMENTS (option_specs); i++)
      check_all_paths (option_specs[i], x, rows, cols);
  }
}

/* BitMoD's fused row against the reference on its decision boundaries: every midpoint of
 * every grid (and its neighbours) as x/s, for an absmax whose fp16 scales are exact; groups
 * whose candidate grids tie in error (identical rows, and different rows with equal sums);
 * all-zero, NaN, Inf, huge and fp16-underflowing groups; a short last group */
static void
test_fast_bitmod_boundaries (void)
{
  static const char *const specs[] = {
    "bitmod4:g128", "bitmod3:g128", "bitmod4:g64", "bitmod3:g32:scale=fp32", "bitmod4:g128:clip=0.9",
  };
  /* amax 0.1875 gives the exact scales 2^−6 and 0.75·2^−6 (4-bit), 1.5·2^−5 and 2^−5 (3-bit) */
  const float amax = 0.1875f;
  const float scales[] = { 0.015625f, 0.01171875f, 0.046875f, 0.03125f };
  const gint64 rows = 12, cols = 300;
  g_autofree float *x = g_new0 (float, rows * cols);
  g_autoptr (GArray) pts = g_array_new (FALSE, FALSE, sizeof (float));

  for (int bits = 3; bits <= 4; bits++)
    for (int sel = 0; sel < 4; sel++)
      {
        int nv;
        const float *grid = bl_bitmod_grid (bits, sel, &nv);

        for (int k = 0; k + 1 < nv; k++)
          for (gsize j = 0; j < G_N_ELEMENTS (scales); j++)
            {
              float v = 0.5f * (grid[k] + grid[k + 1]) * scales[j];
              float around[] = { v, nextafterf (v, INFINITY), nextafterf (v, -INFINITY), grid[k] * scales[j] };

              g_array_append_vals (pts, around, G_N_ELEMENTS (around));
            }
      }
  /* rows 0–5: the boundary points in six orders and signs, each group led by its absmax */
  for (gint64 r = 0; r < 6; r++)
    for (gint64 c = 0; c < cols; c++)
      {
        float v = g_array_index (pts, float, (gsize) (c * 7 + r * 13) % pts->len);

        x[r * cols + c] = c % 64 == 0 ? (r % 2 ? -amax : amax) : (r >= 3 ? -v : v);
      }
  /* row 6: +10s and −10s, so that grids 0 and 1 make different rows with equal errors */
  for (gint64 c = 0; c < cols; c++)
    x[6 * cols + c] = c % 64 == 0 ? amax : (c % 2 ? 10.0f : -10.0f) * scales[0];
  /* row 7: only base values, so that grids 0 and 1 (and 2 and 3) make identical rows */
  for (gint64 c = 0; c < cols; c++)
    x[7 * cols + c] = c % 32 == 0 ? amax : (float) (c % 9 - 4) * scales[0];
  /* row 8 stays zero; rows 9–11: a NaN, an Inf, values whose fp16 scale underflows */
  memcpy (x + 9 * cols, x, sizeof (float) * cols);
  x[9 * cols + 70] = NAN;
  memcpy (x + 10 * cols, x + cols, sizeof (float) * cols);
  x[10 * cols + 200] = -INFINITY;
  x[10 * cols + 3] = 3e38f;
  for (gint64 c = 0; c < cols; c++)
    x[11 * cols + c] = ldexpf ((float) (c % 13) - 6.0f, -30);

  for (gsize s = 0; s < G_N_ELEMENTS (specs); s++)
    check_all_paths (specs[s], x, rows, cols);
  /* whole rows as groups: 300 columns take the fused row, 600 (above its largest group)
   * the per-group path */
  check_all_paths ("bitmod4:channel", x, rows, cols);
  check_all_paths ("bitmod3:channel", x, rows / 2, cols * 2);
}

/* complex-2bit's scales on rows whose double sums round: 1 + 2^−24 then thirty 2^−55 terms
 * over 32 pairs is an exact fp32 tie after the division when summed in the reference's order
 * (each 2^−55 is lost), and not in any other order; the fused row must take the reference's */
static void
test_fast_complex_sum_order (void)
{
  static const char *const specs[] = { "complex-2bit:scale=fp32", "complex-2bit:g64:scale=fp32" };
  const gint64 rows = 2, cols = 64;
  float x[2 * 64] = { 0 };

  for (gint64 p = 0; p < cols / 2; p++)
    {
      float t = p == 0 ? 1.0f : p == 1 ? ldexpf (1.0f, -24) : ldexpf (1.0f, -55);

      x[2 * p] = t;                  /* row 0: real axis */
      x[cols + 2 * p + 1] = -t;      /* row 1: imaginary axis */
    }
  for (gsize s = 0; s < G_N_ELEMENTS (specs); s++)
    check_all_paths (specs[s], x, rows, cols);
}

/* ternary:median's fast lower median (sampled pivots, counting and collecting passes) on
 * tensors large enough to take it: continuous values, a handful of repeated values (the
 * median tied many times), mostly zeros, a NaN, and samples that all land on outliers */
static void
test_fast_ternary_median (void)
{
  const gint64 rows = 96, cols = 700, n = rows * cols, stride = n / 1024;
  g_autofree float *x = heavy_tailed (31, n);
  g_autofree float *y = g_new (float, n);

  check_all_paths ("ternary:median", x, rows, cols);
  check_all_paths ("ternary:median:scale=fp16", x, rows, cols);
  for (gint64 i = 0; i < n; i++)
    y[i] = (float) ((i * 7919) % 5) * 0.25f - 0.5f;
  check_all_paths ("ternary:median", y, rows, cols);
  for (gint64 i = 0; i < n; i++)
    y[i] = i % 3 == 0 ? x[i] : 0.0f;
  check_all_paths ("ternary:median", y, rows, cols);
  /* every sampled value (32 runs of 32 neighbours) is an outlier: the pivots miss */
  memcpy (y, x, sizeof (float) * n);
  for (gint64 i = 0; i < 1024; i++)
    y[(i / 32) * 32 * stride + 16 * stride - 16 + i % 32] = 100.0f + (float) i;
  check_all_paths ("ternary:median", y, rows, cols);
  /* half of them: the bracket is wide but still holds rank k */
  for (gint64 i = 0; i < 1024; i += 2)
    {
      gint64 at = (i / 32) * 32 * stride + 16 * stride - 16 + i % 32;

      y[at] = x[at];
    }
  check_all_paths ("ternary:median", y, rows, cols);
  y[n / 2] = NAN;
  check_all_paths ("ternary:median", y, rows, cols);
}

static void
test_fast_fp_exhaustive_ties (void)
{
  static const char *const specs[] = {
    "fp8-e4m3:tensor", "fp8-e5m2:tensor", "fp8-e4m3:tensor:nosat", "fp8-e5m2:tensor:nosat",
    "fp6-e3m2:tensor", "fp6-e2m3:tensor", "fp4-e2m1:tensor", "bf16", "bf16:sat", "fp16", "fp16:sat",
  };
  const gint64 n = 65536 * 4 + 8;
  g_autofree float *x = g_new (float, n);

  /* every fp16/bf16-aligned value, its midpoints and their neighbours, so every rounding
   * boundary of every ≤ 16-bit grid is crossed; the last block fixes the tensor scale to 1 */
  for (gint64 i = 0; i < 65536; i++)
    {
      guint32 u = (guint32) i << 16;
      float v;

      memcpy (&v, &u, sizeof v);
      x[4 * i] = v;
      u |= 0x8000u;
      memcpy (&v, &u, sizeof v);
      x[4 * i + 1] = v;
      u += 1;
      memcpy (&v, &u, sizeof v);
      x[4 * i + 2] = v;
      u -= 2;
      memcpy (&v, &u, sizeof v);
      x[4 * i + 3] = v;
    }
  for (gsize s = 0; s < G_N_ELEMENTS (specs); s++)
    {
      BlFormatSpec spec;
      g_autofree float *ref = g_new (float, n);
      g_autofree float *fast = g_new (float, n);
      g_autofree float *scaled = g_new (float, n);
      g_autoptr (GError) error = NULL;
      float amax = 0;

      parse_ok (specs[s], &spec);
      /* make the per-tensor scale exactly 1 by putting the format's max in, and drop
       * values the scale pass would turn into NaN/Inf before they reach the element */
      for (gint64 i = 0; i < n - 8; i++)
        scaled[i] = isfinite (x[i]) || spec.family == BL_FORMAT_BF16 || spec.family == BL_FORMAT_FP16
                    ? x[i] : 0.0f;
      if (spec.family == BL_FORMAT_FP)
        {
          BlFpFormat f;

          bl_fp_format_init (&f, spec.ebits, spec.mbits);
          for (gint64 i = 0; i < n - 8; i++)
            scaled[i] = fabsf (scaled[i]) > f.max_finite * 1.5f ? 0.0f : scaled[i];
          amax = f.max_finite;
        }
      for (gint64 i = n - 8; i < n; i++)
        scaled[i] = amax;
      g_assert_true (bl_format_fake_quant_reference (&spec, scaled, ref, 1, n, &error));
      g_assert_true (bl_format_fake_quant (&spec, scaled, fast, 1, n, 2, &error));
      g_assert_no_error (error);
      assert_same_bits (ref, fast, n, specs[s]);
    }
}

static void
test_packed_corrupt (void)
{
  BlFormatSpec spec;
  g_autofree float *x = heavy_tailed (9, 256);
  float y[256];
  gsize size;
  g_autofree guint8 *packed = NULL;
  g_autoptr (GError) error = NULL;
  BlPackedHeader h;

  parse_ok ("int4:g64:asym", &spec);
  size = bl_format_packed_size (&spec, 4, 64);
  packed = g_malloc (size);
  g_assert_true (bl_format_quantize (&spec, x, 4, 64, packed, size, &error));
  g_assert_no_error (error);
  memcpy (&h, packed, sizeof h);
  g_assert_cmpuint (h.magic, ==, BL_PACKED_MAGIC);
  g_assert_cmpstr (h.spec, ==, "int4:g64:asym");
  g_assert_cmpuint (h.total_bytes, ==, size);
  g_assert_cmpuint (h.codes_offset % BL_PACKED_ALIGN, ==, 0);

  g_assert_false (bl_format_dequantize (packed, size - 1, y, 256, &error));
  g_assert_error (error, BL_ERROR, BL_ERROR_CORRUPT_FILE);
  g_clear_error (&error);
  g_assert_false (bl_format_dequantize (packed, size, y, 255, &error));
  g_assert_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  packed[G_STRUCT_OFFSET (BlPackedHeader, zero_bits)] ^= 1;
  g_assert_false (bl_format_dequantize (packed, size, y, 256, &error));
  g_assert_error (error, BL_ERROR, BL_ERROR_CORRUPT_FILE);
  g_clear_error (&error);
  packed[0] ^= 1;
  g_assert_false (bl_format_dequantize (packed, size, y, 256, &error));
  g_assert_error (error, BL_ERROR, BL_ERROR_CORRUPT_FILE);
  g_assert_nonnull (strstr (error->message, "magic"));
}

static void
test_traits_table (void)
{
  for (int f = 0; f < BL_FORMAT_N_FAMILIES; f++)
    {
      BlFormatSpec spec;
      g_autofree char *name = NULL;

      g_assert_nonnull (bl_format_family_get_name (f));
      g_assert_nonnull (bl_format_family_get_description (f));
      g_assert_nonnull (bl_format_family_get_examples (f)[0]);
      g_assert_cmpint (bl_format_family_get_element_bits (f), >, 0);
      bl_format_spec_init_default (&spec, f);
      g_assert_cmpint (spec.bits, ==, bl_format_family_get_element_bits (f));
      if (spec.granularity == BL_GRANULARITY_GROUP)
        g_assert_cmpint (spec.group_size, ==, bl_format_family_get_block_size (f));
      name = bl_format_spec_to_string (&spec);
      g_assert_true (g_str_has_prefix (name, bl_format_family_get_name (f)));
    }
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/bitlens/format/spec/roundtrip", test_spec_roundtrip);
  g_test_add_func ("/bitlens/format/spec/canonical", test_spec_canonical);
  g_test_add_func ("/bitlens/format/spec/errors", test_spec_errors);
  g_test_add_func ("/bitlens/format/spec/bits-per-weight", test_bits_per_weight);
  g_test_add_func ("/bitlens/format/traits/table", test_traits_table);
  g_test_add_func ("/bitlens/format/e4m3/golden", test_e4m3_golden);
  g_test_add_func ("/bitlens/format/e5m2/golden", test_e5m2_golden);
  g_test_add_func ("/bitlens/format/fp6-fp4-e8m0/golden", test_small_float_golden);
  g_test_add_func ("/bitlens/format/codec/exhaustive", test_codec_exhaustive);
  g_test_add_func ("/bitlens/format/codec/grid-fixed-points", test_grid_fixed_points);
  g_test_add_func ("/bitlens/format/codec/rounding", test_rounding_modes);
  g_test_add_func ("/bitlens/format/codec/scale-helpers", test_scale_helpers);
  g_test_add_func ("/bitlens/format/mx/golden", test_mx_golden);
  g_test_add_func ("/bitlens/format/mx/scale-rule/floor", test_mx_floor);
  g_test_add_func ("/bitlens/format/mx/scale-rule/ceil", test_mx_ceil);
  g_test_add_func ("/bitlens/format/mx/scale-rule/rceil", test_mx_rceil);
  g_test_add_func ("/bitlens/format/mx/scale-rule/even", test_mx_even);
  g_test_add_func ("/bitlens/format/nvfp4/hand-block", test_nvfp4_block);
  g_test_add_func ("/bitlens/format/int/absmax", test_int_absmax);
  g_test_add_func ("/bitlens/format/int/gptq", test_int_gptq);
  g_test_add_func ("/bitlens/format/int/q4_0", test_int_q4_0);
  g_test_add_func ("/bitlens/format/int/asym", test_int_asym);
  g_test_add_func ("/bitlens/format/nf4/table", test_nf4);
  g_test_add_func ("/bitlens/format/binary-ternary/hand", test_binary_ternary);
  g_test_add_func ("/bitlens/format/dual-binary/grid", test_dual_binary);
  g_test_add_func ("/bitlens/format/complex-2bit/phases", test_complex_2bit);
  g_test_add_func ("/bitlens/format/bitmod/mse", test_bitmod);
  g_test_add_func ("/bitlens/format/int2+int4/selection", test_int2_int4);
  g_test_add_func ("/bitlens/format/fast/matches-reference", test_fast_matches_reference);
  g_test_add_func ("/bitlens/format/fast/fp-boundaries", test_fast_fp_exhaustive_ties);
  g_test_add_func ("/bitlens/format/fast/bitmod-boundaries", test_fast_bitmod_boundaries);
  g_test_add_func ("/bitlens/format/fast/complex-sum-order", test_fast_complex_sum_order);
  g_test_add_func ("/bitlens/format/fast/ternary-median", test_fast_ternary_median);
  g_test_add_func ("/bitlens/format/packed/corrupt", test_packed_corrupt);

  return g_test_run ();
}
