/* bench-cuda-gemm.c: the packed GEMM kernels against cuBLAS bf16 and the measured HBM bandwidth
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 *   bench-cuda-gemm [--batches 1,8,64] [--reps 50]
 *
 * For the linear layers of Llama-7B (4096 → 4096: q/k/v/o; 4096 → 11008: gate/up; 11008 →
 * 4096: down) and each batch (tokens), times y = x·wᵀ with: cuBLAS bf16 (the baseline, fp32
 * accumulation), W4A16 (int4 g128 sym, fp16 scales), NVFP4 and MXFP4 weight-only, W8A8 through
 * cuBLASLt IMMA (the product alone, and with the per-token activation quantizer and the fp32
 * epilogue), FP8 E4M3 through cuBLASLt (compute capability 8.9+), and the ABQ-LLM bit-plane
 * W2A8 and W4A4 products (planes packed beforehand; the activation packing is timed apart).
 * Each line gives the time per product, the speed-up over cuBLAS bf16 measured in the same
 * run, the bytes the product must move (weights, activations, output) over its time, and that
 * as a fraction of the device's measured bandwidth (a device-to-device copy, read plus write).
 * The weights are cycled through enough copies to exceed the L2 cache, so they come from HBM;
 * the products are replayed from a CUDA graph, so launch overhead is not counted (a plain loop
 * is used, and said, where capture fails). Random weights: the numbers say nothing about
 * accuracy (tests/test-cuda-gemm.c does).
 */
#include <stdio.h>
#include <stdlib.h>

#include <cuda_runtime_api.h>

#include "bl-bitplane.h"
#include "bl-cuda-backend.h"
#include "bl-cuda-gemm.h"
#include "bl-cuda-packed.h"
#include "bl-format-codecs.h"

#define MAX_COPIES 64
#define L2_DEFEAT_BYTES ((gsize) 256 << 20)

typedef struct
{
  BlBackend *be;
  cudaStream_t stream;
  int reps;
  double hbm_gbs;
} Bench;

typedef gboolean (*ProductFunc) (Bench *b, int copy, gpointer data, GError **error);

static void
die (const char *what,
     GError     *error)
{
  g_printerr ("bench-cuda-gemm: %s: %s\n", what, error != NULL ? error->message : "failed");
  exit (1);
}

static void
check (cudaError_t status,
       const char *what)
{
  if (status != cudaSuccess)
    {
      g_printerr ("bench-cuda-gemm: %s: %s\n", what, cudaGetErrorString (status));
      exit (1);
    }
}

/* seconds per call of @fn, cycling the weight copies; from a CUDA graph when capture works */
static double
time_product (Bench       *b,
              ProductFunc  fn,
              gpointer     data,
              int          copies,
              gboolean    *graphed)
{
  g_autoptr(GError) error = NULL;
  cudaEvent_t start, stop;
  cudaGraph_t graph = NULL;
  cudaGraphExec_t exec = NULL;
  float ms = 0.0f;
  gboolean ok = TRUE;

  /* warm-up: cuBLASLt plans, first-touch, clocks */
  for (int i = 0; i < 3 * copies && i < 3 * b->reps; i++)
    if (!fn (b, i % copies, data, &error))
      die ("warm-up", error);
  if (!bl_backend_synchronize (b->be, &error))
    die ("warm-up", error);

  check (cudaEventCreate (&start), "cudaEventCreate");
  check (cudaEventCreate (&stop), "cudaEventCreate");
  *graphed = FALSE;
  if (cudaStreamBeginCapture (b->stream, cudaStreamCaptureModeThreadLocal) == cudaSuccess)
    {
      for (int i = 0; i < b->reps && ok; i++)
        ok = fn (b, i % copies, data, NULL);
      if (cudaStreamEndCapture (b->stream, &graph) == cudaSuccess && ok &&
          cudaGraphInstantiate (&exec, graph, 0) == cudaSuccess)
        *graphed = TRUE;
      cudaGetLastError ();
    }
  if (*graphed)
    {
      check (cudaGraphLaunch (exec, b->stream), "cudaGraphLaunch");
      check (cudaEventRecord (start, b->stream), "cudaEventRecord");
      check (cudaGraphLaunch (exec, b->stream), "cudaGraphLaunch");
      check (cudaEventRecord (stop, b->stream), "cudaEventRecord");
    }
  else
    {
      /* a failed capture may leave an error behind in the backend; take it and go on */
      bl_backend_synchronize (b->be, NULL);
      check (cudaEventRecord (start, b->stream), "cudaEventRecord");
      for (int i = 0; i < b->reps; i++)
        if (!fn (b, i % copies, data, &error))
          die ("timing", error);
      check (cudaEventRecord (stop, b->stream), "cudaEventRecord");
    }
  check (cudaEventSynchronize (stop), "cudaEventSynchronize");
  check (cudaEventElapsedTime (&ms, start, stop), "cudaEventElapsedTime");
  if (!bl_backend_synchronize (b->be, &error))
    die ("timing", error);
  if (exec != NULL)
    cudaGraphExecDestroy (exec);
  if (graph != NULL)
    cudaGraphDestroy (graph);
  cudaEventDestroy (start);
  cudaEventDestroy (stop);
  return ms / 1e3 / b->reps;
}

/* the device's bandwidth: a 1 GiB device-to-device copy, bytes read plus written */
static double
measure_hbm (Bench *b)
{
  g_autoptr(GError) error = NULL;
  gsize bytes = (gsize) 1 << 30;
  BlBuffer *src = bl_cuda_buffer_new_bytes (b->be, bytes, &error);
  BlBuffer *dst = src != NULL ? bl_cuda_buffer_new_bytes (b->be, bytes, &error) : NULL;
  cudaEvent_t start, stop;
  float ms;

  if (dst == NULL)
    die ("allocating the bandwidth buffers", error);
  check (cudaMemsetAsync (bl_cuda_buffer_get_data (src), 1, bytes, b->stream), "cudaMemsetAsync");
  check (cudaEventCreate (&start), "cudaEventCreate");
  check (cudaEventCreate (&stop), "cudaEventCreate");
  check (cudaMemcpyAsync (bl_cuda_buffer_get_data (dst), bl_cuda_buffer_get_data (src), bytes,
                          cudaMemcpyDeviceToDevice, b->stream), "cudaMemcpyAsync");
  check (cudaEventRecord (start, b->stream), "cudaEventRecord");
  for (int i = 0; i < 10; i++)
    check (cudaMemcpyAsync (bl_cuda_buffer_get_data (dst), bl_cuda_buffer_get_data (src), bytes,
                            cudaMemcpyDeviceToDevice, b->stream), "cudaMemcpyAsync");
  check (cudaEventRecord (stop, b->stream), "cudaEventRecord");
  check (cudaEventSynchronize (stop), "cudaEventSynchronize");
  check (cudaEventElapsedTime (&ms, start, stop), "cudaEventElapsedTime");
  bl_backend_buffer_free (b->be, dst);
  bl_backend_buffer_free (b->be, src);
  cudaEventDestroy (start);
  cudaEventDestroy (stop);
  return 10.0 * 2.0 * (double) bytes / (ms / 1e3) / 1e9;
}

/* ------------------------------------------------------------------------------------------ */
/* the products */

typedef struct
{
  int m, n, k;
  BlBuffer *x_f32;            /* [m, k] */
  BlBuffer *x_bf16;
  BlBuffer *y;                /* [m, n] fp32 */
  BlBuffer *y_bf16;
  BlBuffer *w_bf16[MAX_COPIES];
  BlCudaPacked *w_packed[MAX_COPIES];
  BlBuffer *w_i8[MAX_COPIES];
  BlBuffer *w_scales;         /* [n] */
  BlBuffer *x_i8;
  BlBuffer *x_scales;         /* [m] */
  BlBuffer *acc;              /* [m, n] int32 */
  BlBuffer *fp8_scale;        /* one fp32 */
  BlBuffer *x_planes;
  BlBuffer *x_codes;
  BlBuffer *w_planes[MAX_COPIES];
  int p, q;                   /* bit-plane widths (activations, weights) */
} Shape;

static gboolean
run_bf16 (Bench *b, int c, gpointer data, GError **error)
{
  Shape *s = data;

  return bl_cuda_gemm_bf16 (b->be, s->x_bf16, s->w_bf16[c], s->y, s->m, s->n, s->k, error);
}

static gboolean
run_weight4 (Bench *b, int c, gpointer data, GError **error)
{
  Shape *s = data;

  return bl_cuda_gemm_weight4 (b->be, s->w_packed[c], s->x_bf16, s->y, s->m, error);
}

static gboolean
run_int8 (Bench *b, int c, gpointer data, GError **error)
{
  Shape *s = data;

  return bl_cuda_gemm_int8 (b->be, s->x_i8, s->w_i8[c], s->acc, s->m, s->n, s->k, error);
}

static gboolean
run_w8a8_pipeline (Bench *b, int c, gpointer data, GError **error)
{
  Shape *s = data;

  return bl_cuda_quantize_rows_int8 (b->be, s->x_f32, s->x_i8, s->x_scales, s->m, s->k, error) &&
         bl_cuda_gemm_int8 (b->be, s->x_i8, s->w_i8[c], s->acc, s->m, s->n, s->k, error) &&
         bl_cuda_dequant_int32 (b->be, s->acc, s->x_scales, s->w_scales, s->y, s->m, s->n, error);
}

static gboolean
run_fp8 (Bench *b, int c, gpointer data, GError **error)
{
  Shape *s = data;

  /* the int8 codes stand in for E4M3 codes: the time does not depend on the values */
  return bl_cuda_gemm_fp8 (b->be, s->x_i8, s->fp8_scale, s->w_i8[c], s->fp8_scale, s->y_bf16, s->m, s->n, s->k,
                           error);
}

static gboolean
run_bitplane (Bench *b, int c, gpointer data, GError **error)
{
  Shape *s = data;

  return bl_cuda_gemm_bitplane (b->be, s->x_planes, s->p, TRUE, s->w_planes[c], s->q, TRUE, s->m, s->n, s->k, s->y,
                                error);
}

static gboolean
run_bitplane_pack (Bench *b, int c, gpointer data, GError **error)
{
  Shape *s = data;

  return bl_cuda_bitplane_pack (b->be, s->x_codes, s->m, s->k, s->p, s->x_planes, error);
}

/* ------------------------------------------------------------------------------------------ */

static BlBuffer *
new_buffer (Bench *b,
            gsize  bytes)
{
  g_autoptr(GError) error = NULL;
  BlBuffer *buf = bl_cuda_buffer_new_bytes (b->be, bytes, &error);

  if (buf == NULL)
    die ("allocating", error);
  return buf;
}

static BlBuffer *
upload (Bench         *b,
        gconstpointer  host,
        gsize          bytes)
{
  g_autoptr(GError) error = NULL;
  BlBuffer *buf = new_buffer (b, bytes);

  if (!bl_cuda_buffer_upload_bytes (b->be, buf, 0, host, bytes, &error))
    die ("uploading", error);
  return buf;
}

static int
copies_for (gsize weight_bytes)
{
  return (int) CLAMP ((L2_DEFEAT_BYTES + weight_bytes - 1) / weight_bytes, 1, MAX_COPIES);
}

static void
report (Bench      *b,
        const char *kernel,
        Shape      *s,
        double      seconds,
        double      baseline,
        gsize       bytes,
        gboolean    graphed)
{
  double gbs = (double) bytes / seconds / 1e9;

  g_print ("  %-24s m=%-3d %5d×%-5d %9.2f µs  %6.2f× cuBLAS bf16  %7.1f GB/s  %5.1f%% of HBM%s\n", kernel, s->m,
           s->n, s->k, seconds * 1e6, baseline / seconds, gbs, 100.0 * gbs / b->hbm_gbs,
           graphed ? "" : "  (plain loop: launch overhead included)");
}

static void
bench_shape (Bench *b,
             int    m,
             int    n,
             int    k)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GRand) rand = g_rand_new_with_seed ((guint32) (n * 31 + k));
  Shape s = { .m = m, .n = n, .k = k };
  g_autofree float *w = g_new (float, (gsize) n * k);
  g_autofree float *x = g_new (float, (gsize) m * k);
  g_autofree guint16 *wb = g_new (guint16, (gsize) n * k);
  g_autofree gint8 *codes = g_new (gint8, (gsize) MAX (n, m) * k);
  g_autofree float *ones = g_new (float, MAX (n, m));
  const char *const w4_specs[] = { "int4:g128:sym", "nvfp4", "mxfp4" };
  const char *const w4_names[] = { "W4A16 int4 g128", "NVFP4 weight-only", "MXFP4 weight-only" };
  gsize bf16_bytes = (gsize) n * k * 2, out_bytes = (gsize) m * n * 4;
  int copies = copies_for (bf16_bytes);
  BlBuffer *w_f32;
  gboolean graphed;
  double base, t;
  const int bp[2][2] = { { 8, 2 }, { 4, 4 } };

  for (gsize i = 0; i < (gsize) n * k; i++)
    {
      w[i] = (float) (0.02 * g_rand_double_range (rand, -1.0, 1.0));
      wb[i] = bl_bf16_encode (w[i]);
    }
  for (gsize i = 0; i < (gsize) m * k; i++)
    x[i] = (float) g_rand_double_range (rand, -1.0, 1.0);
  for (int i = 0; i < MAX (n, m); i++)
    ones[i] = 1.0f;
  s.x_f32 = upload (b, x, (gsize) m * k * 4);
  s.x_bf16 = new_buffer (b, (gsize) m * k * 2);
  if (!bl_cuda_convert_bf16 (b->be, s.x_f32, s.x_bf16, (gsize) m * k, &error))
    die ("converting activations", error);
  s.y = new_buffer (b, out_bytes);
  s.y_bf16 = new_buffer (b, (gsize) m * n * 2);

  /* the baseline */
  for (int c = 0; c < copies; c++)
    s.w_bf16[c] = upload (b, wb, bf16_bytes);
  base = time_product (b, run_bf16, &s, copies, &graphed);
  report (b, "cuBLAS bf16", &s, base, base, bf16_bytes + (gsize) m * k * 2 + out_bytes, graphed);
  for (int c = 0; c < copies; c++)
    bl_backend_buffer_free (b->be, s.w_bf16[c]);

  /* 4-bit weight-only, quantized on the GPU */
  w_f32 = upload (b, w, (gsize) n * k * 4);
  for (guint f = 0; f < G_N_ELEMENTS (w4_specs); f++)
    {
      BlFormatSpec spec;
      gsize wbytes;
      int cp;

      if (!bl_format_spec_parse (w4_specs[f], &spec, &error))
        die ("parsing a spec", error);
      s.w_packed[0] = bl_cuda_packed_quantize (b->be, &spec, w_f32, n, k, &error);
      if (s.w_packed[0] == NULL)
        die ("quantizing", error);
      wbytes = bl_cuda_packed_get_size (s.w_packed[0]);
      cp = copies_for (wbytes);
      for (int c = 1; c < cp; c++)
        if ((s.w_packed[c] = bl_cuda_packed_quantize (b->be, &spec, w_f32, n, k, &error)) == NULL)
          die ("quantizing", error);
      t = time_product (b, run_weight4, &s, cp, &graphed);
      report (b, w4_names[f], &s, t, base, wbytes + (gsize) m * k * 2 + out_bytes, graphed);
      for (int c = 0; c < cp; c++)
        g_clear_pointer (&s.w_packed[c], bl_cuda_packed_free);
    }
  bl_backend_buffer_free (b->be, w_f32);

  /* W8A8 and FP8 on int8-sized codes */
  for (gsize i = 0; i < (gsize) n * k; i++)
    codes[i] = (gint8) g_rand_int_range (rand, -127, 128);
  copies = copies_for ((gsize) n * k);
  for (int c = 0; c < copies; c++)
    s.w_i8[c] = upload (b, codes, (gsize) n * k);
  s.w_scales = upload (b, ones, (gsize) n * 4);
  s.x_i8 = new_buffer (b, (gsize) m * k);
  s.x_scales = new_buffer (b, (gsize) m * 4);
  s.acc = new_buffer (b, out_bytes);
  s.fp8_scale = upload (b, ones, 4);
  if (!bl_cuda_quantize_rows_int8 (b->be, s.x_f32, s.x_i8, s.x_scales, m, k, &error))
    die ("quantizing activations", error);
  t = time_product (b, run_int8, &s, copies, &graphed);
  report (b, "W8A8 IMMA (product)", &s, t, base, (gsize) n * k + (gsize) m * k + out_bytes, graphed);
  t = time_product (b, run_w8a8_pipeline, &s, copies, &graphed);
  report (b, "W8A8 IMMA (+quant, epi)", &s, t, base, (gsize) n * k + (gsize) m * k * 5 + out_bytes * 2, graphed);
  if (bl_cuda_gemm_fp8 (b->be, s.x_i8, s.fp8_scale, s.w_i8[0], s.fp8_scale, s.y_bf16, m, n, k, &error))
    {
      t = time_product (b, run_fp8, &s, copies, &graphed);
      report (b, "FP8 E4M3 (cuBLASLt)", &s, t, base, (gsize) n * k + (gsize) m * k + (gsize) m * n * 2, graphed);
    }
  else
    {
      g_print ("  %-24s m=%-3d %5d×%-5d skipped: %s\n", "FP8 E4M3 (cuBLASLt)", m, n, k, error->message);
      g_clear_error (&error);
    }
  for (int c = 0; c < copies; c++)
    bl_backend_buffer_free (b->be, s.w_i8[c]);

  /* bit planes: W2A8 and W4A4, signed codes */
  for (int v = 0; v < 2; v++)
    {
      gsize wbytes;

      s.p = bp[v][0];
      s.q = bp[v][1];
      wbytes = bl_bitplane_packed_words (n, k, s.q) * 4;
      copies = copies_for (wbytes);
      for (gsize i = 0; i < (gsize) MAX (n, m) * k; i++)
        codes[i] = (gint8) g_rand_int_range (rand, -(1 << (s.q - 1)), 1 << (s.q - 1));
      s.x_codes = upload (b, codes, (gsize) MAX (n, m) * k);
      s.x_planes = new_buffer (b, bl_bitplane_packed_words (m, k, s.p) * 4);
      for (int c = 0; c < copies; c++)
        {
          s.w_planes[c] = new_buffer (b, wbytes);
          if (!bl_cuda_bitplane_pack (b->be, s.x_codes, n, k, s.q, s.w_planes[c], &error))
            die ("packing weight planes", error);
        }
      if (!bl_cuda_bitplane_pack (b->be, s.x_codes, m, k, s.p, s.x_planes, &error))
        die ("packing activation planes", error);
      t = time_product (b, run_bitplane, &s, copies, &graphed);
      report (b, v == 0 ? "bit-plane W2A8" : "bit-plane W4A4", &s, t, base,
              wbytes + bl_bitplane_packed_words (m, k, s.p) * 4 + out_bytes, graphed);
      t = time_product (b, run_bitplane_pack, &s, 1, &graphed);
      g_print ("  %-24s m=%-3d        %5d %9.2f µs  (activation planes, not in the product's time)\n",
               v == 0 ? "  pack A8 planes" : "  pack A4 planes", m, k, t * 1e6);
      for (int c = 0; c < copies; c++)
        bl_backend_buffer_free (b->be, s.w_planes[c]);
      bl_backend_buffer_free (b->be, s.x_planes);
      bl_backend_buffer_free (b->be, s.x_codes);
    }

  for (BlBuffer **p = (BlBuffer *[]) { s.x_f32, s.x_bf16, s.y, s.y_bf16, s.w_scales, s.x_i8, s.x_scales, s.acc,
                                       s.fp8_scale, NULL }; *p != NULL; p++)
    bl_backend_buffer_free (b->be, *p);
  if (!bl_backend_synchronize (b->be, &error))
    die ("finishing a shape", error);
}

int
main (int    argc,
      char **argv)
{
  g_autofree char *batches = g_strdup ("1,8,64");
  int reps = 50;
  GOptionEntry entries[] = {
    { "batches", 0, 0, G_OPTION_ARG_STRING, &batches, "Comma-separated token counts", "LIST" },
    { "reps", 0, 0, G_OPTION_ARG_INT, &reps, "Products per timing", "N" },
    { NULL }
  };
  g_autoptr(GOptionContext) options = g_option_context_new ("— packed GEMM kernels against cuBLAS bf16");
  g_autoptr(GError) error = NULL;
  g_auto(GStrv) list = NULL;
  const int shapes[][2] = { { 4096, 4096 }, { 11008, 4096 }, { 4096, 11008 } };
  Bench b = { 0 };

  g_option_context_add_main_entries (options, entries, NULL);
  if (!g_option_context_parse (options, &argc, &argv, &error))
    {
      g_printerr ("bench-cuda-gemm: %s\n", error->message);
      return 2;
    }
  if (!bl_backend_cuda_probe (&error))
    {
      g_print ("bench-cuda-gemm: skipped: %s\n", error->message);
      return 0;
    }
  bl_backend_cuda_register ();
  b.be = bl_backend_new ("cuda", 1, &error);
  if (b.be == NULL)
    die ("creating the CUDA backend", error);
  b.stream = bl_cuda_backend_get_stream (b.be);
  b.reps = MAX (reps, 1);
  b.hbm_gbs = measure_hbm (&b);
  g_print ("%s\nmeasured bandwidth: %.0f GB/s (device-to-device copy, read + write)\n",
           bl_backend_get_description (b.be), b.hbm_gbs);

  list = g_strsplit (batches, ",", -1);
  for (guint s = 0; s < G_N_ELEMENTS (shapes); s++)
    for (guint i = 0; list[i] != NULL; i++)
      {
        int m = atoi (list[i]);

        if (m <= 0)
          continue;
        g_print ("\nLlama-7B %s, %d → %d, batch %d:\n",
                 s == 0 ? "q/k/v/o" : (s == 1 ? "gate/up" : "down"), shapes[s][1], shapes[s][0], m);
        bench_shape (&b, m, shapes[s][0], shapes[s][1]);
      }
  bl_backend_free (b.be);
  return 0;
}
