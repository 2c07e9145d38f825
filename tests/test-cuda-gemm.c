/* test-cuda-gemm.c: the packed GEMM kernels against CPU references
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * Integer kernels must be exact: the int8 activation quantizer equals bl_format_quantize's
 * "int8:token:scale=fp32" codes and scales, the IMMA product equals a plain integer GEMM,
 * its fp32 epilogue equals the same two rounded products on the CPU, and the bit-plane
 * packing and WpAq product equal gpu/bl-bitplane.c for every 1 ≤ p, q ≤ 8. Floating-point
 * kernels are held to a bound relative to Σ|x·w| of each output: 1e-5 for the 4-bit GEMV and
 * the bf16 cuBLAS product (fp32 accumulation), 4e-3 for the 4-bit tensor-core GEMM (weights
 * rounded to bf16) and 1e-2 for FP8 (bf16 output). Skips without a CUDA device; the FP8 case
 * skips below compute capability 8.9.
 */
#include <math.h>
#include <string.h>

#include "bl-bitplane.h"
#include "bl-cuda-backend.h"
#include "bl-cuda-gemm.h"
#include "bl-cuda-packed.h"
#include "bl-error.h"
#include "bl-format-codecs.h"

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

  f->rand = g_rand_new_with_seed (99);
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
upload_bytes (Fixture       *f,
              gconstpointer  host,
              gsize          n_bytes)
{
  g_autoptr(GError) error = NULL;
  BlBuffer *b = bl_cuda_buffer_new_bytes (f->backend, n_bytes, &error);

  g_assert_no_error (error);
  g_assert_true (bl_cuda_buffer_upload_bytes (f->backend, b, 0, host, n_bytes, &error));
  g_assert_no_error (error);
  return b;
}

static BlBuffer *
new_bytes (Fixture *f,
           gsize    n_bytes)
{
  g_autoptr(GError) error = NULL;
  BlBuffer *b = bl_cuda_buffer_new_bytes (f->backend, n_bytes, &error);

  g_assert_no_error (error);
  return b;
}

static void
download_bytes (Fixture  *f,
                BlBuffer *b,
                gpointer  host,
                gsize     n_bytes)
{
  g_autoptr(GError) error = NULL;

  g_assert_true (bl_cuda_buffer_download_bytes (f->backend, b, 0, host, n_bytes, &error));
  g_assert_no_error (error);
}

static float
random_weight (GRand *rand)
{
  double u = g_rand_double_range (rand, 1e-4, 1.0);

  return (float) (0.05 * g_rand_double_range (rand, -1.0, 1.0) / sqrt (u));
}

/* y[m, n] against Σ x·w in double, each output within @tol · Σ|x·w| */
static void
check_products (const char   *what,
                const float  *y,
                const float  *x,
                const float  *w,
                int           m,
                int           n,
                int           k,
                double        tol)
{
  double worst = 0.0;

  for (int r = 0; r < m; r++)
    for (int c = 0; c < n; c++)
      {
        double sum = 0.0, l1 = 0.0, err;

        for (int i = 0; i < k; i++)
          {
            double p = (double) x[(size_t) r * k + i] * (double) w[(size_t) c * k + i];

            sum += p;
            l1 += fabs (p);
          }
        err = fabs (y[(size_t) r * n + c] - sum) / MAX (l1, 1e-30);
        worst = MAX (worst, err);
        if (!(err <= tol))
          g_error ("%s: y[%d, %d] = %.9g, reference %.9g (error %.3g of Σ|x·w|, allowed %.3g)", what, r, c,
                   y[(size_t) r * n + c], sum, err, tol);
      }
  g_test_message ("%s: worst error %.3g of Σ|x·w|", what, worst);
}

/* 4-bit weights: int4 in every convention and scale type, NVFP4, MXFP4; GEMV and GEMM sizes */
static void
test_weight4 (Fixture       *f,
              gconstpointer  data)
{
  const char *const specs[] = { "int4:g128:sym", "int4:g128:asym", "int4:g32:q4_0", "int4:channel", "int4:g128:gptq",
                                "int4:g128:scale=bf16", "int4:g64:scale=fp32", "nvfp4", "mxfp4" };
  const int ms[] = { 1, 3, 8, 9, 64, 70 };
  enum { N = 300, K = 512 };

  if (f->backend == NULL)
    return;
  for (guint s = 0; s < G_N_ELEMENTS (specs); s++)
    {
      g_autoptr(GError) error = NULL;
      g_autofree float *w = g_new (float, N * K);
      g_autofree float *wq = g_new (float, N * K);
      g_autofree guint8 *bytes = NULL;
      g_autoptr(BlCudaPacked) packed = NULL;
      BlFormatSpec spec;
      gsize size;

      g_assert_true (bl_format_spec_parse (specs[s], &spec, &error));
      for (int i = 0; i < N * K; i++)
        w[i] = random_weight (f->rand);
      size = bl_format_packed_size (&spec, N, K);
      bytes = g_malloc (size);
      g_assert_true (bl_format_quantize (&spec, w, N, K, bytes, size, &error));
      g_assert_true (bl_format_dequantize (bytes, size, wq, N * K, &error));
      g_assert_no_error (error);
      packed = bl_cuda_packed_upload (f->backend, bytes, size, &error);
      g_assert_no_error (error);

      for (guint mi = 0; mi < G_N_ELEMENTS (ms); mi++)
        {
          int m = ms[mi];
          g_autofree float *x = g_new (float, (size_t) m * K);
          g_autofree guint16 *xb = g_new (guint16, (size_t) m * K);
          g_autofree float *y = g_new (float, (size_t) m * N);
          g_autofree float *wr = NULL;
          g_autofree char *what = g_strdup_printf ("W4A16 %s, m = %d", specs[s], m);
          BlBuffer *bx, *by;

          for (int i = 0; i < m * K; i++)
            {
              xb[i] = bl_bf16_encode ((float) g_rand_double_range (f->rand, -2.0, 2.0));
              x[i] = bl_bf16_decode (xb[i]);
            }
          bx = upload_bytes (f, xb, (gsize) m * K * 2);
          by = new_bytes (f, (gsize) m * N * 4);
          g_assert_true (bl_cuda_gemm_weight4 (f->backend, packed, bx, by, m, &error));
          g_assert_no_error (error);
          download_bytes (f, by, y, (gsize) m * N * 4);
          if (m <= 8)
            check_products (what, y, x, wq, m, N, K, 1e-5);
          else
            {
              /* the tensor-core path rounds each dequantized weight to bf16 */
              wr = g_new (float, N * K);
              for (int i = 0; i < N * K; i++)
                wr[i] = bl_bf16_decode (bl_bf16_encode (wq[i]));
              check_products (what, y, x, wr, m, N, K, 1e-5);
              check_products (what, y, x, wq, m, N, K, 4e-3);
            }
          bl_backend_buffer_free (f->backend, by);
          bl_backend_buffer_free (f->backend, bx);
        }
    }
}

/* the per-token int8 quantizer, IMMA and the epilogue */
static void
test_w8a8 (Fixture       *f,
           gconstpointer  data)
{
  const int ms[] = { 1, 3, 8, 64 };
  enum { N = 256, K = 520 };

  if (f->backend == NULL)
    return;
  for (guint mi = 0; mi < G_N_ELEMENTS (ms); mi++)
    {
      int m = ms[mi];
      g_autoptr(GError) error = NULL;
      BlFormatSpec spec;
      g_autofree float *x = g_new (float, (size_t) m * K);
      g_autofree guint8 *ref = NULL;
      g_autofree gint8 *q = g_new (gint8, (size_t) m * K);
      g_autofree float *sx = g_new (float, m);
      g_autofree gint8 *w = g_new (gint8, (size_t) N * K);
      g_autofree float *sw = g_new (float, N);
      g_autofree gint32 *acc = g_new (gint32, (size_t) m * N);
      g_autofree float *y = g_new (float, (size_t) m * N);
      BlPackedHeader h;
      BlBuffer *bx, *bq, *bsx, *bw, *bsw, *bacc, *by;
      gsize size;

      for (int i = 0; i < m * K; i++)
        x[i] = (float) (g_rand_double_range (f->rand, -3.0, 3.0) * (i % 97 == 0 ? 30.0 : 1.0));
      x[0] = 0.0f;
      for (int i = 0; i < N * K; i++)
        w[i] = (gint8) g_rand_int_range (f->rand, -127, 128);
      for (int i = 0; i < N; i++)
        sw[i] = (float) g_rand_double_range (f->rand, 1e-4, 1e-2);

      /* the reference codes and scales */
      g_assert_true (bl_format_spec_parse ("int8:token:scale=fp32", &spec, &error));
      size = bl_format_packed_size (&spec, m, K);
      ref = g_malloc (size);
      g_assert_true (bl_format_quantize (&spec, x, m, K, ref, size, &error));
      g_assert_no_error (error);
      memcpy (&h, ref, sizeof h);

      bx = upload_bytes (f, x, (gsize) m * K * 4);
      bq = new_bytes (f, (gsize) m * K);
      bsx = new_bytes (f, (gsize) m * 4);
      g_assert_true (bl_cuda_quantize_rows_int8 (f->backend, bx, bq, bsx, m, K, &error));
      g_assert_no_error (error);
      download_bytes (f, bq, q, (gsize) m * K);
      download_bytes (f, bsx, sx, (gsize) m * 4);
      for (int i = 0; i < m * K; i++)
        g_assert_cmpint (q[i], ==, (int) ref[h.codes_offset + i] - 128);
      for (int r = 0; r < m; r++)
        {
          guint32 code;

          memcpy (&code, ref + h.scales_offset + 4 * r, 4);
          g_assert_cmpmem (&sx[r], 4, &code, 4);
        }

      bw = upload_bytes (f, w, (gsize) N * K);
      bsw = upload_bytes (f, sw, (gsize) N * 4);
      bacc = new_bytes (f, (gsize) m * N * 4);
      by = new_bytes (f, (gsize) m * N * 4);
      g_assert_true (bl_cuda_gemm_int8 (f->backend, bq, bw, bacc, m, N, K, &error));
      g_assert_no_error (error);
      g_assert_true (bl_cuda_dequant_int32 (f->backend, bacc, bsx, bsw, by, m, N, &error));
      g_assert_no_error (error);
      download_bytes (f, bacc, acc, (gsize) m * N * 4);
      download_bytes (f, by, y, (gsize) m * N * 4);
      for (int r = 0; r < m; r++)
        for (int c = 0; c < N; c++)
          {
            gint32 expect = 0;
            float fy;

            for (int i = 0; i < K; i++)
              expect += (gint32) q[r * K + i] * (gint32) w[c * K + i];
            if (acc[r * N + c] != expect)
              g_error ("W8A8 m = %d: acc[%d, %d] = %d, integer GEMM %d", m, r, c, acc[r * N + c], expect);
            fy = (float) expect * sx[r];
            fy = fy * sw[c];
            g_assert_cmpmem (&y[r * N + c], 4, &fy, 4);
          }
      g_test_message ("W8A8 m = %d: %d int32 products exact", m, m * N);
      for (BlBuffer **b = (BlBuffer *[]) { bx, bq, bsx, bw, bsw, bacc, by, NULL }; *b != NULL; b++)
        bl_backend_buffer_free (f->backend, *b);
    }
}

/* FP8 E4M3 with per-tensor scales, codes from the format library */
static void
test_fp8 (Fixture       *f,
          gconstpointer  data)
{
  enum { M = 16, N = 128, K = 256 };
  g_autoptr(GError) error = NULL;
  BlFormatSpec spec;
  g_autofree float *x = g_new (float, M * K);
  g_autofree float *w = g_new (float, N * K);
  g_autofree float *xq = g_new (float, M * K);
  g_autofree float *wq = g_new (float, N * K);
  g_autofree guint8 *px = NULL;
  g_autofree guint8 *pw = NULL;
  g_autofree guint16 *yb = g_new (guint16, M * N);
  g_autofree float *y = g_new (float, M * N);
  BlPackedHeader hx, hw;
  BlBuffer *bx, *bw, *bsx, *bsw, *by;
  gsize sx_size, sw_size;

  if (f->backend == NULL)
    return;
  for (int i = 0; i < M * K; i++)
    x[i] = (float) g_rand_double_range (f->rand, -4.0, 4.0);
  for (int i = 0; i < N * K; i++)
    w[i] = random_weight (f->rand);
  g_assert_true (bl_format_spec_parse ("fp8-e4m3:tensor:scale=fp32", &spec, &error));
  sx_size = bl_format_packed_size (&spec, M, K);
  sw_size = bl_format_packed_size (&spec, N, K);
  px = g_malloc (sx_size);
  pw = g_malloc (sw_size);
  g_assert_true (bl_format_quantize (&spec, x, M, K, px, sx_size, &error));
  g_assert_true (bl_format_quantize (&spec, w, N, K, pw, sw_size, &error));
  g_assert_true (bl_format_dequantize (px, sx_size, xq, M * K, &error));
  g_assert_true (bl_format_dequantize (pw, sw_size, wq, N * K, &error));
  g_assert_no_error (error);
  memcpy (&hx, px, sizeof hx);
  memcpy (&hw, pw, sizeof hw);

  bx = upload_bytes (f, px + hx.codes_offset, M * K);
  bw = upload_bytes (f, pw + hw.codes_offset, N * K);
  bsx = upload_bytes (f, px + hx.scales_offset, 4);
  bsw = upload_bytes (f, pw + hw.scales_offset, 4);
  by = new_bytes (f, M * N * 2);
  if (!bl_cuda_gemm_fp8 (f->backend, bx, bsx, bw, bsw, by, M, N, K, &error))
    {
      g_assert_error (error, BL_ERROR, BL_ERROR_GPU);
      g_assert_nonnull (strstr (error->message, "8.9"));
      g_test_skip_printf ("%s", error->message);
    }
  else
    {
      download_bytes (f, by, yb, M * N * 2);
      for (int i = 0; i < M * N; i++)
        y[i] = bl_bf16_decode (yb[i]);
      check_products ("FP8 E4M3", y, xq, wq, M, N, K, 1e-2);
    }
  for (BlBuffer **b = (BlBuffer *[]) { bx, bw, bsx, bsw, by, NULL }; *b != NULL; b++)
    bl_backend_buffer_free (f->backend, *b);
}

/* the cuBLAS bf16 baseline of the benchmarks, and the conversion feeding it */
static void
test_bf16 (Fixture       *f,
           gconstpointer  data)
{
  enum { M = 9, N = 200, K = 300 };
  g_autoptr(GError) error = NULL;
  g_autofree float *x = g_new (float, M * K);
  g_autofree float *w = g_new (float, N * K);
  g_autofree guint16 *xb = g_new (guint16, M * K);
  g_autofree guint16 *wb = g_new (guint16, N * K);
  g_autofree float *y = g_new (float, M * N);
  BlBuffer *bx32, *bx, *bw, *by;

  if (f->backend == NULL)
    return;
  for (int i = 0; i < M * K; i++)
    x[i] = (float) g_rand_double_range (f->rand, -1.0, 1.0);
  for (int i = 0; i < N * K; i++)
    {
      wb[i] = bl_bf16_encode (random_weight (f->rand));
      w[i] = bl_bf16_decode (wb[i]);
    }
  bx32 = upload_bytes (f, x, M * K * 4);
  bx = new_bytes (f, M * K * 2);
  bw = upload_bytes (f, wb, N * K * 2);
  by = new_bytes (f, M * N * 4);
  g_assert_true (bl_cuda_convert_bf16 (f->backend, bx32, bx, M * K, &error));
  download_bytes (f, bx, xb, M * K * 2);
  for (int i = 0; i < M * K; i++)
    {
      g_assert_cmpuint (xb[i], ==, bl_bf16_encode (x[i]));
      x[i] = bl_bf16_decode (xb[i]);
    }
  g_assert_true (bl_cuda_gemm_bf16 (f->backend, bx, bw, by, M, N, K, &error));
  g_assert_no_error (error);
  download_bytes (f, by, y, M * N * 4);
  check_products ("cuBLAS bf16", y, x, w, M, N, K, 1e-5);
  for (BlBuffer **b = (BlBuffer *[]) { bx32, bx, bw, by, NULL }; *b != NULL; b++)
    bl_backend_buffer_free (f->backend, *b);
}

static void
check_bitplane (Fixture  *f,
                int       x_bits,
                gboolean  x_signed,
                int       w_bits,
                gboolean  w_signed,
                int       m,
                int       n,
                int       k)
{
  g_autoptr(GError) error = NULL;
  gsize xw = bl_bitplane_packed_words (m, k, x_bits), ww = bl_bitplane_packed_words (n, k, w_bits);
  g_autofree guint8 *xc = g_new (guint8, (gsize) m * k);
  g_autofree guint8 *wc = g_new (guint8, (gsize) n * k);
  g_autofree guint32 *xp = g_new (guint32, xw);
  g_autofree guint32 *wp = g_new (guint32, ww);
  g_autofree guint32 *gp = g_new (guint32, MAX (xw, ww));
  g_autofree gint32 *ref = g_new (gint32, (gsize) m * n);
  g_autofree gint32 *y = g_new (gint32, (gsize) m * n);
  BlBuffer *bxc, *bwc, *bxp, *bwp, *by;

  for (int i = 0; i < m * k; i++)
    xc[i] = (guint8) (x_signed ? g_rand_int_range (f->rand, -(1 << (x_bits - 1)), 1 << (x_bits - 1))
                               : g_rand_int_range (f->rand, 0, 1 << x_bits));
  for (int i = 0; i < n * k; i++)
    wc[i] = (guint8) (w_signed ? g_rand_int_range (f->rand, -(1 << (w_bits - 1)), 1 << (w_bits - 1))
                               : g_rand_int_range (f->rand, 0, 1 << w_bits));
  bl_bitplane_pack (xc, m, k, x_bits, xp);
  bl_bitplane_pack (wc, n, k, w_bits, wp);
  bl_bitplane_gemm_ref (xp, x_bits, x_signed, wp, w_bits, w_signed, m, n, k, ref);

  bxc = upload_bytes (f, xc, (gsize) m * k);
  bwc = upload_bytes (f, wc, (gsize) n * k);
  bxp = new_bytes (f, xw * 4);
  bwp = new_bytes (f, ww * 4);
  by = new_bytes (f, (gsize) m * n * 4);
  g_assert_true (bl_cuda_bitplane_pack (f->backend, bxc, m, k, x_bits, bxp, &error));
  g_assert_true (bl_cuda_bitplane_pack (f->backend, bwc, n, k, w_bits, bwp, &error));
  g_assert_true (bl_cuda_gemm_bitplane (f->backend, bxp, x_bits, x_signed, bwp, w_bits, w_signed, m, n, k, by,
                                        &error));
  g_assert_no_error (error);
  download_bytes (f, bxp, gp, xw * 4);
  g_assert_cmpmem (gp, xw * 4, xp, xw * 4);
  download_bytes (f, bwp, gp, ww * 4);
  g_assert_cmpmem (gp, ww * 4, wp, ww * 4);
  download_bytes (f, by, y, (gsize) m * n * 4);
  for (int i = 0; i < m * n; i++)
    if (y[i] != ref[i])
      g_error ("bit-plane W%d%sA%d%s %d×%d×%d: y[%d] = %d, reference %d", w_bits, w_signed ? "s" : "u", x_bits,
               x_signed ? "s" : "u", m, n, k, i, y[i], ref[i]);
  for (BlBuffer **b = (BlBuffer *[]) { bxc, bwc, bxp, bwp, by, NULL }; *b != NULL; b++)
    bl_backend_buffer_free (f->backend, *b);
}

static void
test_bitplane (Fixture       *f,
               gconstpointer  data)
{
  const int ms[] = { 1, 5, 9 };

  if (f->backend == NULL)
    return;
  for (int p = 1; p <= 8; p++)
    for (int q = 1; q <= 8; q++)
      for (int s = 0; s < 4; s++)
        check_bitplane (f, p, s & 1, q, (s >> 1) & 1, ms[(p + q + s) % 3], 37, 300);
  /* the shapes the benchmark times: W2A8 and W4A4 */
  check_bitplane (f, 8, TRUE, 2, TRUE, 64, 256, 4096);
  check_bitplane (f, 4, TRUE, 4, TRUE, 1, 4096, 4096);
  g_test_message ("bit-plane products exact for every 1 ≤ p, q ≤ 8");
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add ("/bitlens/cuda/gemm/weight4", Fixture, NULL, fixture_set_up, test_weight4, fixture_tear_down);
  g_test_add ("/bitlens/cuda/gemm/w8a8", Fixture, NULL, fixture_set_up, test_w8a8, fixture_tear_down);
  g_test_add ("/bitlens/cuda/gemm/fp8", Fixture, NULL, fixture_set_up, test_fp8, fixture_tear_down);
  g_test_add ("/bitlens/cuda/gemm/bf16", Fixture, NULL, fixture_set_up, test_bf16, fixture_tear_down);
  g_test_add ("/bitlens/cuda/gemm/bitplane", Fixture, NULL, fixture_set_up, test_bitplane, fixture_tear_down);

  return g_test_run ();
}
