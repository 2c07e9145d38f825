/* test-cuda-format.c: the GPU format kernels against the scalar reference, bit for bit
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * For every family, and the options that change the arithmetic (integer conventions, scale
 * types and rules, rounding modes, clipping, granularities), on shapes with short last
 * groups and odd row lengths: the GPU fake-quant equals bl_format_fake_quant_reference(),
 * the GPU's packed bytes equal bl_format_quantize()'s, and the GPU decodes both its own and
 * the CPU's packed bytes as bl_format_dequantize() does. The only freedom allowed is a NaN's
 * payload (x86 passes an operand's NaN through arithmetic, CUDA returns its canonical NaN):
 * a NaN value, or a stored fp32/fp16/bf16 scale that decodes to NaN, matches any other NaN.
 * A second data set puts NaN, ±Inf, subnormals, −0 and huge values in every tensor.
 * Skips when no CUDA device is found.
 */
#include <math.h>
#include <string.h>

#include "bl-cuda-backend.h"
#include "bl-cuda-format.h"
#include "bl-cuda-packed.h"
#include "bl-error.h"
#include "bl-format-private.h"

static const char *const specs[] = {
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

typedef struct
{
  BlBackend *backend;
  GRand *rand;
} Fixture;

static void
fixture_set_up (Fixture       *f,
                gconstpointer  data)
{
  g_autoptr(GError) error = NULL;

  f->rand = g_rand_new_with_seed (1234);
  if (!bl_backend_cuda_probe (&error))
    {
      g_test_skip_printf ("%s", error->message);
      return;
    }
  bl_backend_cuda_register ();
  f->backend = bl_backend_new ("cuda", 1, &error);
  g_assert_no_error (error);
}

static void
fixture_tear_down (Fixture       *f,
                   gconstpointer  data)
{
  g_clear_pointer (&f->backend, bl_backend_free);
  g_clear_pointer (&f->rand, g_rand_free);
}

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

static BlBuffer *
upload (BlBackend   *backend,
        const float *x,
        gint64       n)
{
  g_autoptr(GError) error = NULL;
  BlBuffer *b = bl_backend_buffer_new (backend, (size_t) n, &error);

  g_assert_no_error (error);
  g_assert_true (bl_backend_upload (backend, b, 0, x, (size_t) n, &error));
  g_assert_no_error (error);
  return b;
}

static void
check_spec (Fixture    *f,
            const char *spec_str,
            gint64      rows,
            gint64      cols,
            gboolean    specials)
{
  g_autoptr(GError) error = NULL;
  BlFormatSpec spec;
  gint64 n = rows * cols;
  g_autofree float *x = make_data (f->rand, rows, cols, specials);
  g_autofree float *ref_fake = g_new (float, n);
  g_autofree float *ref_deq = g_new (float, n);
  g_autofree float *gpu = g_new (float, n);
  g_autofree guint8 *ref_packed = NULL;
  g_autofree guint8 *gpu_packed = NULL;
  g_autoptr(BlCudaPacked) packed = NULL;
  g_autoptr(BlCudaPacked) uploaded = NULL;
  g_autofree char *label = g_strdup_printf ("%s on %" G_GINT64_FORMAT "×%" G_GINT64_FORMAT "%s", spec_str, rows, cols,
                                            specials ? " with specials" : "");
  BlBuffer *src, *dst;
  gsize size;

  g_assert_true (bl_format_spec_parse (spec_str, &spec, &error));
  g_assert_no_error (error);

  /* the oracle */
  g_assert_true (bl_format_fake_quant_reference (&spec, x, ref_fake, rows, cols, &error));
  size = bl_format_packed_size (&spec, rows, cols);
  ref_packed = g_malloc (size);
  gpu_packed = g_malloc (size);
  g_assert_true (bl_format_quantize (&spec, x, rows, cols, ref_packed, size, &error));
  g_assert_true (bl_format_dequantize (ref_packed, size, ref_deq, n, &error));
  g_assert_no_error (error);

  src = upload (f->backend, x, n);
  dst = bl_backend_buffer_new (f->backend, (size_t) n, &error);
  g_assert_no_error (error);

  /* fake-quant, out of place and in place */
  g_assert_true (bl_cuda_format_fake_quant (f->backend, &spec, src, dst, rows, cols, &error));
  g_assert_no_error (error);
  g_assert_true (bl_backend_download (f->backend, dst, 0, gpu, (size_t) n, &error));
  g_assert_no_error (error);
  assert_same_floats (label, "fake-quant", gpu, ref_fake, n);

  /* quantize to the packed layout, and decode it */
  packed = bl_cuda_packed_quantize (f->backend, &spec, src, rows, cols, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (bl_cuda_packed_get_size (packed), ==, size);
  g_assert_true (bl_cuda_packed_download (packed, gpu_packed, size, &error));
  g_assert_no_error (error);
  assert_same_packed (label, &spec, gpu_packed, ref_packed, size);
  g_assert_true (bl_cuda_packed_dequantize (packed, dst, &error));
  g_assert_true (bl_backend_download (f->backend, dst, 0, gpu, (size_t) n, &error));
  g_assert_no_error (error);
  assert_same_floats (label, "dequantize (GPU-packed)", gpu, ref_deq, n);

  /* the CPU's bytes, decoded on the GPU */
  uploaded = bl_cuda_packed_upload (f->backend, ref_packed, size, &error);
  g_assert_no_error (error);
  g_assert_true (bl_cuda_packed_dequantize (uploaded, dst, &error));
  g_assert_true (bl_backend_download (f->backend, dst, 0, gpu, (size_t) n, &error));
  g_assert_no_error (error);
  assert_same_floats (label, "dequantize (CPU-packed)", gpu, ref_deq, n);

  g_assert_true (bl_cuda_format_fake_quant (f->backend, &spec, src, src, rows, cols, &error));
  g_assert_true (bl_backend_download (f->backend, src, 0, gpu, (size_t) n, &error));
  g_assert_no_error (error);
  assert_same_floats (label, "fake-quant in place", gpu, ref_fake, n);

  bl_backend_buffer_free (f->backend, dst);
  bl_backend_buffer_free (f->backend, src);
}

static void
test_families (Fixture       *f,
               gconstpointer  data)
{
  gboolean specials = GPOINTER_TO_INT (data);

  if (f->backend == NULL)
    return;
  for (guint i = 0; i < G_N_ELEMENTS (specs); i++)
    {
      /* short last groups (300 = 2·128 + 44), and an odd row for complex-2bit's pairs */
      check_spec (f, specs[i], 37, 300, specials);
      check_spec (f, specs[i], 5, 301, specials);
    }
}

/* whole-tensor statistics large enough for many blocks of the parallel reductions, and the
 * radix-sorted ternary median */
static void
test_large_tensors (Fixture       *f,
                    gconstpointer  data)
{
  const char *const large[] = { "fp8-e4m3:tensor", "int8:tensor", "int4:tensor:asym", "int4:tensor:q4_0",
                                "ternary:absmean", "ternary:median", "binary:tensor", "dual-binary:tensor",
                                "nvfp4", "nvint4", "bf16", "int8:channel", "int4:g128:asym", "mxfp4" };

  if (f->backend == NULL)
    return;
  for (guint i = 0; i < G_N_ELEMENTS (large); i++)
    {
      check_spec (f, large[i], 512, 1024, FALSE);
      check_spec (f, large[i], 256, 1024, TRUE);
    }
}

/* A damaged header is refused before any kernel reads the tensor. */
static void
test_corrupt (Fixture       *f,
              gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(BlCudaPacked) packed = NULL;
  g_autofree float *x = NULL;
  g_autofree guint8 *bytes = NULL;
  BlFormatSpec spec;
  gsize size;

  if (f->backend == NULL)
    return;
  x = make_data (f->rand, 4, 128, FALSE);
  g_assert_true (bl_format_spec_parse ("int4:g32:asym", &spec, &error));
  size = bl_format_packed_size (&spec, 4, 128);
  bytes = g_malloc (size);
  g_assert_true (bl_format_quantize (&spec, x, 4, 128, bytes, size, &error));
  bytes[G_STRUCT_OFFSET (BlPackedHeader, groups_per_row)] ^= 1;
  packed = bl_cuda_packed_upload (f->backend, bytes, size, &error);
  g_assert_null (packed);
  g_assert_error (error, BL_ERROR, BL_ERROR_CORRUPT_FILE);
  g_clear_error (&error);
  packed = bl_cuda_packed_upload (f->backend, bytes, 100, &error);
  g_assert_error (error, BL_ERROR, BL_ERROR_CORRUPT_FILE);
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add ("/bitlens/cuda/format/families", Fixture, GINT_TO_POINTER (FALSE), fixture_set_up, test_families,
              fixture_tear_down);
  g_test_add ("/bitlens/cuda/format/families-specials", Fixture, GINT_TO_POINTER (TRUE), fixture_set_up,
              test_families, fixture_tear_down);
  g_test_add ("/bitlens/cuda/format/large-tensors", Fixture, NULL, fixture_set_up, test_large_tensors,
              fixture_tear_down);
  g_test_add ("/bitlens/cuda/format/corrupt-header", Fixture, NULL, fixture_set_up, test_corrupt, fixture_tear_down);

  return g_test_run ();
}
