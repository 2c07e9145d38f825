/* test-cuda-emulated.c: the GPU kernels, run on the CPU, against the CPU references
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * tests/test-cuda-emulated-{format,ops,gemm}.cpp compile the kernels of gpu/ for the host
 * (tests/cuda-emu/). This test drives them through their launchers as the host files of gpu/ do,
 * with host memory standing in for device memory:
 * - the format kernels over the cases of tests/test-cuda-format-cases.h: fake-quant, the
 *   packed bytes, and decoding both the emulated and the reference packed bytes must equal
 *   the reference bit for bit;
 * - the forward-pass ops against the CPU backend (exact where the formula is the same,
 *   within 1e-6 where e^x or the order of a double sum differs);
 * - the W4A16 GEMV against the reference dequantization within 1e-5 of Σ|x·w|, the int8
 *   activation quantizer, the int32 epilogue, the bf16 conversion and the bit-plane packing
 *   and WpAq product exactly.
 * It needs no GPU and no CUDA toolkit, so every CI run checks the kernels' arithmetic and
 * their thread, lane and tile logic; the tensor-core GEMM and cuBLAS are left to the GPU.
 */
#include <stddef.h>

#include "bl-backend.h"
#include "bl-bitplane.h"
#include "bl-cuda-format-desc.h"
#include "bl-cuda-kernels-private.h"
#include "bl-format-codecs.h"
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

/* ------------------------------------------------------------------------------------------ */
/* forward-pass ops */

static float *
random_floats (GRand *rand,
               size_t n,
               double scale)
{
  float *v = g_new (float, n);

  for (size_t i = 0; i < n; i++)
    v[i] = (float) (scale * g_rand_double_range (rand, -1.0, 1.0));
  return v;
}

/* @n values of @x on the CPU backend, in a buffer it maps */
static float *
cpu_copy (BlBackend   *cpu,
          BlBuffer   **buffer,
          const float *x,
          size_t       n)
{
  g_autoptr(GError) error = NULL;

  *buffer = bl_backend_buffer_new (cpu, n, &error);
  g_assert_no_error (error);
  memcpy (bl_backend_buffer_map (cpu, *buffer), x, n * sizeof (float));
  return bl_backend_buffer_map (cpu, *buffer);
}

static void
assert_close (const char  *what,
              const float *a,
              const float *b,
              size_t       n,
              double       tol)
{
  for (size_t i = 0; i < n; i++)
    if (!(fabs ((double) a[i] - b[i]) <= tol * MAX (1.0, fabs ((double) b[i]))))
      g_error ("%s: element %" G_GSIZE_FORMAT ": emulated %.9g, reference %.9g", what, i, a[i], b[i]);
}

static void
test_ops (void)
{
  g_autoptr(GRand) rand = g_rand_new_with_seed (8);
  g_autoptr(GError) error = NULL;
  g_autoptr(BlBackend) cpu = bl_backend_new ("cpu", 1, &error);
  enum { N = 21, DIM = 300, HEADS = 3, HD = 8, ROWS = 5, KEYS = 40, VOCAB = 700 };
  g_autofree float *x = random_floats (rand, N * DIM, 2.0);
  g_autofree float *w = random_floats (rand, DIM, 1.0);
  g_autofree float *y = g_new (float, N * DIM);
  g_autofree float *cs = random_floats (rand, N * HD / 2, 1.0);
  g_autofree float *sn = random_floats (rand, N * HD / 2, 1.0);
  g_autofree float *scores = random_floats (rand, 2 * ROWS * KEYS, 5.0);
  g_autofree float *logits = random_floats (rand, ROWS * VOCAB, 8.0);
  g_autofree double *nll = g_new (double, ROWS);
  int32_t ids[N], targets[ROWS];
  BlBuffer *bx, *bw, *by, *bc, *bs;
  float *rw, *ry;

  g_assert_no_error (error);
  for (int i = 0; i < N; i++)
    ids[i] = (int32_t) ((i * 5) % N);
  for (int i = 0; i < ROWS; i++)
    targets[i] = (int32_t) ((i * 131) % VOCAB);
  cpu_copy (cpu, &bx, x, N * DIM);
  rw = cpu_copy (cpu, &bw, w, DIM);
  ry = cpu_copy (cpu, &by, x, N * DIM);
  cpu_copy (cpu, &bc, cs, N * HD / 2);
  cpu_copy (cpu, &bs, sn, N * HD / 2);

  /* rmsnorm: the sum of squares is split differently, e^x is not involved */
  g_assert_cmpint (bl_cuda_launch_rmsnorm (y, x, w, N, DIM, 1e-5f, NULL), ==, cudaSuccess);
  bl_backend_rmsnorm (cpu, by, bx, bw, N, DIM, 1e-5f);
  assert_close ("rmsnorm", y, ry, N * DIM, 1e-6);

  /* rope on [N, HEADS·HD]: the same rounded products as the CPU */
  memcpy (y, x, N * HEADS * HD * sizeof (float));
  memcpy (ry, x, N * HEADS * HD * sizeof (float));
  g_assert_cmpint (bl_cuda_launch_rope (y, cs, sn, N, HEADS, HD, NULL), ==, cudaSuccess);
  bl_backend_rope (cpu, by, bc, bs, N, HEADS, HD);
  g_assert_cmpmem (y, N * HEADS * HD * sizeof (float), ry, N * HEADS * HD * sizeof (float));

  /* get_rows, bias and add are exact */
  g_assert_cmpint (bl_cuda_launch_get_rows (y, x, ids, N, DIM, NULL), ==, cudaSuccess);
  for (int i = 0; i < N; i++)
    g_assert_cmpmem (y + i * DIM, DIM * sizeof (float), x + ids[i] * DIM, DIM * sizeof (float));
  memcpy (y, x, N * DIM * sizeof (float));
  g_assert_cmpint (bl_cuda_launch_bias_rows (y, w, N, DIM, TRUE, NULL), ==, cudaSuccess);
  g_assert_cmpint (bl_cuda_launch_add (y, x, N * DIM, NULL), ==, cudaSuccess);
  for (int i = 0; i < N * DIM; i++)
    {
      float expect = x[i] + w[i % DIM];

      expect += x[i];
      g_assert_cmpmem (&y[i], 4, &expect, 4);
    }

  /* swiglu: e^x from libm here, Cephes on the CPU backend */
  memcpy (ry, x, N * DIM * sizeof (float));
  g_assert_cmpint (bl_cuda_launch_swiglu (y, x, rw, DIM, NULL), ==, cudaSuccess);
  bl_backend_swiglu (cpu, by, by, bw, DIM);
  assert_close ("swiglu", y, ry, DIM, 1e-6);

  /* the causal softmax of two heads' [ROWS, KEYS] scores for query rows 30…34, with all
   * earlier keys visible and under sliding windows of 1 and 7 keys */
  for (int window = 0; window <= 7; window += window == 0 ? 1 : 6)
    {
      memcpy (y, scores, 2 * ROWS * KEYS * sizeof (float));
      g_assert_cmpint (bl_cuda_launch_causal_softmax (y, 2, ROWS, KEYS, 30, window, NULL), ==, cudaSuccess);
      for (int b = 0; b < 2 * ROWS; b++)
        {
          const float *s = scores + b * KEYS;
          int end = MIN (30 + b % ROWS + 1, KEYS);
          int first = window > 0 ? MAX (0, end - window) : 0;
          double max = -INFINITY, sum = 0.0;

          for (int j = first; j < end; j++)
            max = MAX (max, s[j]);
          for (int j = first; j < end; j++)
            sum += exp (s[j] - max);
          for (int j = 0; j < KEYS; j++)
            {
              double p = j >= first && j < end ? exp (s[j] - max) / sum : 0.0;

              if (!(fabs (y[b * KEYS + j] - p) <= 1e-6))
                g_error ("softmax (window %d) row %d key %d: emulated %.9g, reference %.9g", window, b,
                         j, y[b * KEYS + j], p);
            }
        }
    }

  /* −log softmax at the targets */
  g_assert_cmpint (bl_cuda_launch_nll_rows (logits, ROWS, VOCAB, targets, nll, NULL), ==, cudaSuccess);
  for (int r = 0; r < ROWS; r++)
    {
      const float *l = logits + r * VOCAB;
      double max = -INFINITY, sum = 0.0;

      for (int j = 0; j < VOCAB; j++)
        max = MAX (max, l[j]);
      for (int j = 0; j < VOCAB; j++)
        sum += exp (l[j] - max);
      g_assert_cmpfloat_with_epsilon (nll[r], max + log (sum) - l[targets[r]], 1e-5);
    }

  for (BlBuffer **b = (BlBuffer *[]) { bx, bw, by, bc, bs, NULL }; *b != NULL; b++)
    bl_backend_buffer_free (cpu, *b);
}

/* ------------------------------------------------------------------------------------------ */
/* GEMM kernels */

/* the BlCudaW4 of a packed int4/nvfp4/mxfp4 weight in host memory, as bl_cuda_gemm_weight4 ()
 * builds it */
static BlCudaW4
w4_describe (const guint8 *packed)
{
  BlPackedHeader h;
  BlCudaW4 w = { 0 };

  memcpy (&h, packed, sizeof h);
  w.kind = h.family == BL_FORMAT_INT ? BL_CUDA_W4_INT : BL_CUDA_W4_FP4;
  w.n = (int32_t) h.n_rows;
  w.k = (int32_t) h.n_cols;
  w.group_size = (int32_t) h.group_size;
  w.groups_per_row = (int32_t) h.groups_per_row;
  w.scale_kind = h.scale_kind;
  w.implicit_zero = 8;
  w.tensor_scale = h.family == BL_FORMAT_NVFP4 ? h.tensor_scale : 1.0f;
  w.codes = packed + h.codes_offset;
  w.scales = packed + h.scales_offset;
  w.zeros = h.zero_bits == 4 ? packed + h.zeros_offset : NULL;
  return w;
}

static void
test_weight4 (void)
{
  const char *const specs[] = { "int4:g128:sym", "int4:g128:asym", "int4:g32:q4_0", "int4:channel",
                                "int4:g64:scale=fp32", "int4:g128:scale=bf16", "nvfp4", "mxfp4" };
  g_autoptr(GRand) rand = g_rand_new_with_seed (21);
  enum { N = 37, K = 256 };

  for (guint s = 0; s < G_N_ELEMENTS (specs); s++)
    for (int m = 1; m <= 8; m += (m < 3 ? 1 : 5))
      {
        g_autoptr(GError) error = NULL;
        g_autofree float *w = random_floats (rand, N * K, 0.1);
        g_autofree float *wq = g_new (float, N * K);
        g_autofree guint16 *xb = g_new (guint16, m * K);
        g_autofree float *y = g_new (float, m * N);
        g_autofree guint8 *packed = NULL;
        BlFormatSpec spec;
        BlCudaW4 desc;
        gsize size;

        g_assert_true (bl_format_spec_parse (specs[s], &spec, &error));
        size = bl_format_packed_size (&spec, N, K);
        packed = g_malloc (size);
        g_assert_true (bl_format_quantize (&spec, w, N, K, packed, size, &error));
        g_assert_true (bl_format_dequantize (packed, size, wq, N * K, &error));
        g_assert_no_error (error);
        for (int i = 0; i < m * K; i++)
          xb[i] = bl_bf16_encode ((float) g_rand_double_range (rand, -2.0, 2.0));
        desc = w4_describe (packed);
        g_assert_cmpint (bl_cuda_launch_w4_gemv (&desc, xb, y, m, NULL), ==, cudaSuccess);
        for (int r = 0; r < m; r++)
          for (int c = 0; c < N; c++)
            {
              double sum = 0.0, l1 = 0.0;

              for (int i = 0; i < K; i++)
                {
                  double p = (double) bl_bf16_decode (xb[r * K + i]) * wq[c * K + i];

                  sum += p;
                  l1 += fabs (p);
                }
              if (!(fabs (y[r * N + c] - sum) <= 1e-5 * l1))
                g_error ("W4A16 %s m = %d: y[%d, %d] = %.9g, reference %.9g", specs[s], m, r, c, y[r * N + c], sum);
            }
      }
}

static void
test_int8_and_bf16 (void)
{
  g_autoptr(GRand) rand = g_rand_new_with_seed (4);
  g_autoptr(GError) error = NULL;
  enum { M = 6, K = 333, N = 5 };
  g_autofree float *x = random_floats (rand, M * K, 3.0);
  g_autofree gint8 *q = g_new (gint8, M * K);
  g_autofree float *sx = g_new (float, M);
  g_autofree float *sw = random_floats (rand, N, 0.01);
  g_autofree gint32 *acc = g_new (gint32, M * N);
  g_autofree float *y = g_new (float, M * N);
  g_autofree guint16 *b = g_new (guint16, M * K);
  g_autofree guint8 *ref = NULL;
  BlFormatSpec spec;
  BlPackedHeader h;
  gsize size;

  x[7] = 0.0f;
  x[K + 1] = -0.0f;
  for (int i = 0; i < K; i++)
    x[3 * K + i] = 0.0f;    /* an all-zero row: scale 0, codes 0 */
  g_assert_true (bl_format_spec_parse ("int8:token:scale=fp32", &spec, &error));
  size = bl_format_packed_size (&spec, M, K);
  ref = g_malloc (size);
  g_assert_true (bl_format_quantize (&spec, x, M, K, ref, size, &error));
  g_assert_no_error (error);
  memcpy (&h, ref, sizeof h);
  g_assert_cmpint (bl_cuda_launch_quantize_rows_i8 (x, q, sx, M, K, NULL), ==, cudaSuccess);
  for (int i = 0; i < M * K; i++)
    g_assert_cmpint (q[i], ==, (int) ref[h.codes_offset + i] - 128);
  g_assert_cmpmem (sx, M * 4, ref + h.scales_offset, M * 4);

  for (int i = 0; i < M * N; i++)
    acc[i] = g_rand_int_range (rand, -1000000, 1000000);
  g_assert_cmpint (bl_cuda_launch_dequant_i32 (acc, sx, sw, y, M, N, NULL), ==, cudaSuccess);
  for (int i = 0; i < M * N; i++)
    {
      float expect = (float) acc[i] * sx[i / N];

      expect = expect * sw[i % N];
      g_assert_cmpmem (&y[i], 4, &expect, 4);
    }

  g_assert_cmpint (bl_cuda_launch_f32_to_bf16 (x, b, M * K, NULL), ==, cudaSuccess);
  for (int i = 0; i < M * K; i++)
    g_assert_cmpuint (b[i], ==, bl_bf16_encode (x[i]));
}

static void
check_bitplane (GRand   *rand,
                int      x_bits,
                gboolean x_signed,
                int      w_bits,
                gboolean w_signed,
                int      m,
                int      n,
                int      k)
{
  gsize xw = bl_bitplane_packed_words (m, k, x_bits), ww = bl_bitplane_packed_words (n, k, w_bits);
  g_autofree guint8 *xc = g_new (guint8, (gsize) m * k);
  g_autofree guint8 *wc = g_new (guint8, (gsize) n * k);
  g_autofree guint32 *xp = g_new (guint32, xw);
  g_autofree guint32 *wp = g_new (guint32, ww);
  g_autofree guint32 *ep = g_new (guint32, MAX (xw, ww));
  g_autofree gint32 *ref = g_new (gint32, (gsize) m * n);
  g_autofree gint32 *y = g_new (gint32, (gsize) m * n);

  for (int i = 0; i < m * k; i++)
    xc[i] = (guint8) (x_signed ? g_rand_int_range (rand, -(1 << (x_bits - 1)), 1 << (x_bits - 1))
                               : g_rand_int_range (rand, 0, 1 << x_bits));
  for (int i = 0; i < n * k; i++)
    wc[i] = (guint8) (w_signed ? g_rand_int_range (rand, -(1 << (w_bits - 1)), 1 << (w_bits - 1))
                               : g_rand_int_range (rand, 0, 1 << w_bits));
  bl_bitplane_pack (xc, m, k, x_bits, xp);
  bl_bitplane_pack (wc, n, k, w_bits, wp);
  bl_bitplane_gemm_ref (xp, x_bits, x_signed, wp, w_bits, w_signed, m, n, k, ref);

  g_assert_cmpint (bl_cuda_launch_bitplane_pack (xc, m, k, x_bits, ep, NULL), ==, cudaSuccess);
  g_assert_cmpmem (ep, xw * 4, xp, xw * 4);
  g_assert_cmpint (bl_cuda_launch_bitplane_pack (wc, n, k, w_bits, ep, NULL), ==, cudaSuccess);
  g_assert_cmpmem (ep, ww * 4, wp, ww * 4);
  g_assert_cmpint (bl_cuda_launch_bitplane_gemm (xp, x_bits, x_signed, wp, w_bits, w_signed, m, n, k, y, NULL), ==,
                   cudaSuccess);
  for (int i = 0; i < m * n; i++)
    if (y[i] != ref[i])
      g_error ("bit-plane W%d%sA%d%s %d×%d×%d: y[%d] = %d, reference %d", w_bits, w_signed ? "s" : "u", x_bits,
               x_signed ? "s" : "u", m, n, k, i, y[i], ref[i]);
}

static void
test_bitplane (void)
{
  g_autoptr(GRand) rand = g_rand_new_with_seed (12);

  const int widths[] = { 1, 2, 3, 8 };

  /* every width runs through the same loops; a few pairs keep the thread emulation quick
   * (tests/test-cuda-gemm.c runs all 64 on a GPU) */
  for (guint i = 0; i < G_N_ELEMENTS (widths); i++)
    for (guint j = 0; j < G_N_ELEMENTS (widths); j++)
      {
        int p = widths[i], q = widths[(j + i) % G_N_ELEMENTS (widths)];

        check_bitplane (rand, p, (i + j) & 1, q, ((i + j) >> 1) & 1, 1 + (p * q) % 10, 19, 131 + 64 * (p % 3));
      }
  /* more lanes than quads, several activation tiles */
  check_bitplane (rand, 8, TRUE, 2, TRUE, 17, 9, 4096 + 40);
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_data_func ("/bitlens/cuda/emulated/format/families", GINT_TO_POINTER (FALSE), test_families);
  g_test_add_data_func ("/bitlens/cuda/emulated/format/families-specials", GINT_TO_POINTER (TRUE), test_families);
  g_test_add_func ("/bitlens/cuda/emulated/format/too-many-wide-groups", test_too_many_wide_groups);
  g_test_add_func ("/bitlens/cuda/emulated/ops", test_ops);
  g_test_add_func ("/bitlens/cuda/emulated/gemm/weight4", test_weight4);
  g_test_add_func ("/bitlens/cuda/emulated/gemm/int8-and-bf16", test_int8_and_bf16);
  g_test_add_func ("/bitlens/cuda/emulated/gemm/bitplane", test_bitplane);

  return g_test_run ();
}
