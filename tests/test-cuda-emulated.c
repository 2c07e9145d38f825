/* test-cuda-emulated.c: the GPU format kernels, run on the CPU, against the scalar reference
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * tests/test-cuda-emulated-kernels.cpp compiles gpu/bl-cuda-format-kernels.cu for the host.
 * This test drives those kernels through their launchers exactly as gpu/bl-cuda-format.c and
 * gpu/bl-cuda-packed.c do on a GPU, with host memory standing in for device memory, over the
 * cases of tests/test-cuda-format-cases.h: fake-quant, the packed bytes, and decoding both
 * the emulated and the reference packed bytes must equal the reference. It needs no GPU and
 * no CUDA toolkit, so the kernels' arithmetic is checked by every CI run.
 */
#include <stddef.h>

#include "bl-cuda-format-desc.h"
#include "bl-cuda-kernels-private.h"
#include "test-cuda-format-cases.h"

/* the host memory of one format call, carved as the GPU's scratch is */
typedef struct
{
  BlPackedHeader header;
  BlCudaFormat format;
  BlCudaFormatScratch scratch;
  guint8 *block;
  gint64 n4;
} EmuCall;

static void
emu_call_init (EmuCall            *call,
               const BlFormatSpec *spec,
               gint64              rows,
               gint64              cols)
{
  gsize sort_temp, bytes;

  bl_format_packed_header_init (spec, rows, cols, &call->header);
  bl_cuda_format_describe (spec, &call->header, &call->format);
  call->n4 = bl_cuda_format_n4 (spec, call->format.n_groups);
  sort_temp = bl_cuda_format_sort_temp_size (rows * cols);
  bytes = bl_cuda_format_layout_scratch (&call->format, bl_cuda_format_stats_size (), sort_temp, NULL,
                                         &call->scratch);
  call->block = g_malloc0 (bytes);
  bl_cuda_format_layout_scratch (&call->format, bl_cuda_format_stats_size (), sort_temp, call->block,
                                 &call->scratch);
  memcpy ((void *) call->scratch.format, &call->format, sizeof call->format);
}

static void
emu_check (GRand      *rand,
           const char *spec_str,
           gint64      rows,
           gint64      cols,
           gboolean    specials)
{
  g_autoptr(GError) error = NULL;
  BlFormatSpec spec;
  gint64 n = rows * cols;
  g_autofree float *x = make_data (rand, rows, cols, specials);
  g_autofree float *ref_fake = g_new (float, n);
  g_autofree float *ref_deq = g_new (float, n);
  g_autofree float *y = g_new (float, n);
  g_autofree guint8 *ref_packed = NULL;
  g_autofree guint8 *packed = NULL;
  g_autofree char *label = g_strdup_printf ("%s on %" G_GINT64_FORMAT "×%" G_GINT64_FORMAT "%s (emulated)", spec_str,
                                            rows, cols, specials ? " with specials" : "");
  EmuCall call;
  BlPackedHeader h;
  gsize size;

  g_assert_true (bl_format_spec_parse (spec_str, &spec, &error));
  g_assert_no_error (error);
  g_assert_true (bl_format_fake_quant_reference (&spec, x, ref_fake, rows, cols, &error));
  size = bl_format_packed_size (&spec, rows, cols);
  ref_packed = g_malloc (size);
  g_assert_true (bl_format_quantize (&spec, x, rows, cols, ref_packed, size, &error));
  g_assert_true (bl_format_dequantize (ref_packed, size, ref_deq, n, &error));
  g_assert_no_error (error);

  emu_call_init (&call, &spec, rows, cols);
  g_assert_cmpuint (call.header.total_bytes, ==, size);

  /* fake-quant (bl_cuda_format_fake_quant) */
  g_assert_cmpint (bl_cuda_launch_format_prepare (&call.format, x, call.n4, &call.scratch, NULL), ==, cudaSuccess);
  g_assert_cmpint (bl_cuda_launch_format_params (&call.format, x, &call.scratch, NULL), ==, cudaSuccess);
  g_assert_cmpint (bl_cuda_launch_format_fake (&call.format, x, y, &call.scratch, NULL), ==, cudaSuccess);
  assert_same_floats (label, "fake-quant", y, ref_fake, n);

  /* quantize (bl_cuda_packed_quantize) */
  packed = g_malloc0 (size);
  memcpy (packed, &call.header, sizeof call.header);
  g_assert_cmpint (bl_cuda_launch_format_prepare (&call.format, x, call.n4, &call.scratch, NULL), ==, cudaSuccess);
  g_assert_cmpint (bl_cuda_launch_format_params (&call.format, x, &call.scratch, NULL), ==, cudaSuccess);
  g_assert_cmpint (bl_cuda_launch_format_pack (&call.format, &call.header, x, call.n4, packed, &call.scratch, NULL),
                   ==, cudaSuccess);
  if (spec.family == BL_FORMAT_NVFP4 || spec.family == BL_FORMAT_NVINT4)
    memcpy (packed + offsetof (BlPackedHeader, tensor_scale), call.scratch.tensor_scale, sizeof (float));
  assert_same_packed (label, &spec, packed, ref_packed, size);

  /* dequantize the emulated bytes, then the reference's (bl_cuda_packed_dequantize) */
  memcpy (&h, packed, sizeof h);
  g_assert_cmpint (bl_cuda_launch_format_unpack (&call.format, &h, packed, call.n4, y, &call.scratch, NULL), ==,
                   cudaSuccess);
  g_assert_cmpint (*call.scratch.status, ==, 0);
  assert_same_floats (label, "dequantize (emulated bytes)", y, ref_deq, n);
  memcpy (&h, ref_packed, sizeof h);
  g_assert_cmpint (bl_cuda_launch_format_unpack (&call.format, &h, ref_packed, call.n4, y, &call.scratch, NULL), ==,
                   cudaSuccess);
  g_assert_cmpint (*call.scratch.status, ==, 0);
  assert_same_floats (label, "dequantize (reference bytes)", y, ref_deq, n);

  g_free (call.block);
}

static void
test_families (gconstpointer data)
{
  gboolean specials = GPOINTER_TO_INT (data);
  g_autoptr(GRand) rand = g_rand_new_with_seed (specials ? 77 : 1234);

  for (guint i = 0; i < G_N_ELEMENTS (format_cases); i++)
    {
      /* short last groups (300 = 2·128 + 44), and an odd row for complex-2bit's pairs */
      emu_check (rand, format_cases[i], 37, 300, specials);
      emu_check (rand, format_cases[i], 5, 301, specials);
    }
}

/* An int2+int4 tensor whose selectors claim more 4-bit groups than its header allows is
 * corrupt; the kernel that numbers the extra-section slots says so. */
static void
test_too_many_wide_groups (void)
{
  g_autoptr(GRand) rand = g_rand_new_with_seed (3);
  g_autoptr(GError) error = NULL;
  g_autofree float *x = make_data (rand, 4, 256, FALSE);
  g_autofree float *y = g_new (float, 4 * 256);
  g_autofree guint8 *packed = NULL;
  BlFormatSpec spec;
  EmuCall call;
  gsize size;

  g_assert_true (bl_format_spec_parse ("int2+int4:g64:range25%", &spec, &error));
  size = bl_format_packed_size (&spec, 4, 256);
  packed = g_malloc (size);
  g_assert_true (bl_format_quantize (&spec, x, 4, 256, packed, size, &error));
  g_assert_no_error (error);
  emu_call_init (&call, &spec, 4, 256);
  memset (packed + call.header.selectors_offset, 0xff, call.header.selectors_bytes);
  g_assert_cmpint (bl_cuda_launch_format_unpack (&call.format, &call.header, packed, call.n4, y, &call.scratch, NULL),
                   ==, cudaSuccess);
  g_assert_cmpint (*call.scratch.status, ==, 1);
  g_free (call.block);
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_data_func ("/bitlens/cuda/emulated/format/families", GINT_TO_POINTER (FALSE), test_families);
  g_test_add_data_func ("/bitlens/cuda/emulated/format/families-specials", GINT_TO_POINTER (TRUE), test_families);
  g_test_add_func ("/bitlens/cuda/emulated/format/too-many-wide-groups", test_too_many_wide_groups);

  return g_test_run ();
}
