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
#include "test-cuda-format-cases.h"

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
  for (guint i = 0; i < G_N_ELEMENTS (format_cases); i++)
    {
      /* short last groups (300 = 2·128 + 44), and an odd row for complex-2bit's pairs */
      check_spec (f, format_cases[i], 37, 300, specials);
      check_spec (f, format_cases[i], 5, 301, specials);
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
