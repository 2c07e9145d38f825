/* test-cuda-backend.c: the CUDA backend against the CPU backend, golden values and fixtures
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * Every test that needs a device skips with the reason when bl_backend_cuda_probe() finds
 * none (no driver, no GPU, compute capability below 8.0). Stated tolerances: the "cuda"
 * backend (fp32 products) must match the CPU backend's ops within 2e-5 of the largest
 * magnitude, the golden logits of stories260k within 1e-4, the tiny-llama fixtures' logits
 * within 1e-4 relative and their NLL within 1e-4 nats; "cuda-bf16" (bf16 products, fp32
 * accumulation) must keep the golden argmax and stay within 3e-2 relative.
 */
#include <json-glib/json-glib.h>
#include <math.h>
#include <string.h>

#include "bl-cuda-backend.h"
#include "bl-engine.h"
#include "bl-error.h"

#define FP32_OP_TOL 2e-5
#define BF16_TOL 3e-2

static gboolean
require_device (void)
{
  g_autoptr(GError) error = NULL;

  if (bl_backend_cuda_probe (&error))
    return TRUE;
  g_test_skip_printf ("%s", error->message);
  return FALSE;
}

static BlBackend *
backend_new (const char *name)
{
  g_autoptr(GError) error = NULL;
  BlBackend *backend = bl_backend_new (name, 2, &error);

  g_assert_no_error (error);
  g_assert_nonnull (backend);
  return backend;
}

static BlModel *
load_shared_model (const char *name)
{
  const char *shared = g_getenv ("BITLENS_SHARED_DIR");
  g_autofree char *path = NULL;
  g_autoptr(GError) error = NULL;
  BlModel *model;

  if (shared == NULL)
    {
      g_test_skip ("BITLENS_SHARED_DIR is not set; the shared models are needed");
      return NULL;
    }
  path = g_build_filename (shared, "models", name, NULL);
  if (!g_file_test (path, G_FILE_TEST_IS_DIR))
    {
      g_test_skip_printf ("%s is missing", path);
      return NULL;
    }
  model = bl_model_load (path, NULL, &error);
  g_assert_no_error (error);
  return model;
}

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

/* a buffer of @backend holding @n values of @host */
static BlBuffer *
upload (BlBackend   *backend,
        const float *host,
        size_t       n)
{
  g_autoptr(GError) error = NULL;
  BlBuffer *b = bl_backend_buffer_new (backend, n, &error);

  g_assert_no_error (error);
  g_assert_true (bl_backend_upload (backend, b, 0, host, n, &error));
  g_assert_no_error (error);
  return b;
}

static float *
download (BlBackend *backend,
          BlBuffer  *b,
          size_t     n)
{
  g_autoptr(GError) error = NULL;
  float *host = g_new (float, n);

  g_assert_true (bl_backend_download (backend, b, 0, host, n, &error));
  g_assert_no_error (error);
  return host;
}

/* max |a − b| / max |b| */
static double
relative_diff (const float *a,
               const float *b,
               size_t       n)
{
  double diff = 0.0, ref = 0.0;

  for (size_t i = 0; i < n; i++)
    {
      diff = MAX (diff, fabs ((double) a[i] - b[i]));
      ref = MAX (ref, fabs ((double) b[i]));
    }
  return ref > 0.0 ? diff / ref : diff;
}

/* Registry */

static void
test_registry (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(BlBackend) cuda = NULL;
  g_autoptr(BlBackend) any = NULL;
  g_auto(GStrv) names = NULL;

  bl_backend_cuda_register ();
  names = bl_backend_list_names ();
  g_assert_cmpstr (names[0], ==, "cpu");
  g_assert_true (g_strv_contains ((const char * const *) names, "cuda"));
  g_assert_true (g_strv_contains ((const char * const *) names, "cuda-bf16"));

  cuda = bl_backend_new ("cuda", 1, &error);
  if (!bl_backend_cuda_probe (NULL))
    {
      /* asked for by name, a missing device is an error that says so; "auto" falls back */
      g_assert_null (cuda);
      g_assert_error (error, BL_ERROR, BL_ERROR_GPU);
      g_assert_nonnull (strstr (error->message, "no CUDA device"));
      g_test_message ("without a device: %s", error->message);
      g_clear_error (&error);
      any = bl_backend_new ("auto", 1, &error);
      g_assert_no_error (error);
      g_assert_cmpstr (bl_backend_get_name (any), ==, "cpu");
      return;
    }
  g_assert_no_error (error);
  g_assert_true (bl_backend_is_cuda (cuda));
  g_assert_true (g_str_has_prefix (bl_backend_get_description (cuda), "CUDA device"));
  g_test_message ("%s", bl_backend_get_description (cuda));
  any = bl_backend_new ("auto", 1, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (bl_backend_get_name (any), ==, "cuda");
}

/* Buffers and errors */

static void
test_buffer_errors (void)
{
  g_autoptr(BlBackend) cuda = NULL;
  g_autoptr(GError) error = NULL;
  BlBuffer *b;
  float host[8] = { 1, 2, 3, 4, 5, 6, 7, 8 }, back[8];

  if (!require_device ())
    return;
  cuda = backend_new ("cuda");

  /* far more than any GPU has: a clear out-of-memory error, and the backend stays usable */
  b = bl_backend_buffer_new (cuda, (size_t) 1 << 42, &error);
  g_assert_null (b);
  g_assert_error (error, BL_ERROR, BL_ERROR_OUT_OF_MEMORY);
  g_assert_nonnull (strstr (error->message, "cannot allocate"));
  g_test_message ("%s", error->message);
  g_clear_error (&error);

  b = bl_backend_buffer_new (cuda, 8, &error);
  g_assert_no_error (error);
  g_assert_false (bl_backend_upload (cuda, b, 4, host, 8, &error));
  g_assert_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_assert_true (bl_backend_upload (cuda, b, 0, host, 8, &error));
  g_assert_true (bl_backend_download (cuda, b, 0, back, 8, &error));
  g_assert_no_error (error);
  g_assert_cmpmem (host, sizeof host, back, sizeof back);
  g_assert_null (bl_backend_buffer_map (cuda, b));
  bl_backend_buffer_free (cuda, b);
  g_assert_true (bl_backend_synchronize (cuda, &error));
  g_assert_no_error (error);
}

/* Ops against the CPU backend */

typedef struct
{
  BlBackend *be[2];           /* cpu, cuda */
} Pair;

static void
pair_clear (Pair *p)
{
  g_clear_pointer (&p->be[0], bl_backend_free);
  g_clear_pointer (&p->be[1], bl_backend_free);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Pair, pair_clear)

static void
check_close (const char  *what,
             const float *gpu,
             const float *cpu,
             size_t       n,
             double       tol)
{
  double rel = relative_diff (gpu, cpu, n);

  g_test_message ("%s: max |Δ| / max |cpu| = %.3g", what, rel);
  if (!(rel <= tol))
    g_error ("%s: the CUDA result differs from the CPU by %.3g of the largest value (allowed %.3g)", what, rel,
             tol);
}

static void
test_ops (gconstpointer data)
{
  const char *name = data;
  double tol = strcmp (name, "cuda") == 0 ? FP32_OP_TOL : BF16_TOL;
  g_auto(Pair) p = { { NULL, NULL } };
  g_autoptr(GRand) rand = g_rand_new_with_seed (42);
  g_autoptr(GError) error = NULL;
  /* a grouped-query shape whose token count is not a multiple of anything */
  enum { N = 77, IN = 96, OUT = 136, HEADS = 6, KV = 2, HD = 16, VOCAB = 300 };
  g_autofree float *x = random_floats (rand, (size_t) N * IN, 1.0);
  g_autofree float *w = random_floats (rand, (size_t) OUT * IN, 0.2);
  g_autofree float *bias = random_floats (rand, OUT, 0.5);
  g_autofree float *y0 = random_floats (rand, (size_t) N * OUT, 1.0);
  g_autofree float *norm_w = random_floats (rand, IN, 1.0);
  g_autofree float *q = random_floats (rand, (size_t) N * HEADS * HD, 2.0);
  g_autofree float *k = random_floats (rand, (size_t) N * KV * HD, 2.0);
  g_autofree float *v = random_floats (rand, (size_t) N * KV * HD, 1.0);
  g_autofree float *cs = g_new (float, (size_t) N * HD / 2);
  g_autofree float *sn = g_new (float, (size_t) N * HD / 2);
  g_autofree float *head = random_floats (rand, (size_t) VOCAB * IN, 0.3);
  float *results[2][8] = { { NULL } };
  double nll[2][N - 3];
  int32_t ids[N], targets[N - 3];

  if (!require_device ())
    return;
  bl_backend_cuda_register ();
  p.be[0] = backend_new ("cpu");
  p.be[1] = backend_new (name);

  for (int i = 0; i < N * HD / 2; i++)
    {
      cs[i] = cosf (0.1f * (float) i);
      sn[i] = sinf (0.1f * (float) i);
    }
  for (int i = 0; i < N; i++)
    ids[i] = (int32_t) ((i * 37) % OUT);
  for (int i = 0; i < N - 3; i++)
    targets[i] = (int32_t) ((i * 101 + 7) % VOCAB);

  for (int b = 0; b < 2; b++)
    {
      BlBackend *be = p.be[b];
      BlBuffer *bx = upload (be, x, (size_t) N * IN);
      BlBuffer *bw = upload (be, w, (size_t) OUT * IN);
      BlBuffer *bb = upload (be, bias, OUT);
      BlBuffer *by = upload (be, y0, (size_t) N * OUT);
      BlBuffer *bn = upload (be, norm_w, IN);
      BlBuffer *bq = upload (be, q, (size_t) N * HEADS * HD);
      BlBuffer *bk = upload (be, k, (size_t) N * KV * HD);
      BlBuffer *bv = upload (be, v, (size_t) N * KV * HD);
      BlBuffer *bc = upload (be, cs, (size_t) N * HD / 2);
      BlBuffer *bs = upload (be, sn, (size_t) N * HD / 2);
      BlBuffer *bh = upload (be, head, (size_t) VOCAB * IN);
      BlBuffer *tmp = bl_backend_buffer_new (be, (size_t) N * OUT, &error);
      BlBuffer *att = bl_backend_buffer_new (be, (size_t) N * HEADS * HD, &error);

      g_assert_no_error (error);
      /* matmul with bias, accumulating onto y */
      bl_backend_matmul (be, by, bx, bw, bb, N, IN, OUT, TRUE);
      results[b][0] = download (be, by, (size_t) N * OUT);
      /* plain matmul */
      bl_backend_matmul (be, tmp, bx, bw, NULL, N, IN, OUT, FALSE);
      results[b][1] = download (be, tmp, (size_t) N * OUT);
      /* rmsnorm in place */
      bl_backend_rmsnorm (be, bx, bx, bn, N, IN, 1e-5f);
      results[b][2] = download (be, bx, (size_t) N * IN);
      /* rope on q and k, then attention */
      bl_backend_rope (be, bq, bc, bs, N, HEADS, HD);
      bl_backend_rope (be, bk, bc, bs, N, KV, HD);
      results[b][3] = download (be, bq, (size_t) N * HEADS * HD);
      bl_backend_attention (be, att, bq, bk, bv, N, HEADS, KV, HD, 0);
      results[b][4] = download (be, att, (size_t) N * HEADS * HD);
      /* swiglu in place, add, copy, get_rows */
      bl_backend_swiglu (be, tmp, tmp, by, (size_t) N * OUT);
      bl_backend_add (be, tmp, by, (size_t) N * OUT);
      results[b][5] = download (be, tmp, (size_t) N * OUT);
      bl_backend_get_rows (be, tmp, bw, ids, N, IN);
      results[b][6] = download (be, tmp, (size_t) N * IN);
      bl_backend_copy (be, tmp, bq, (size_t) N * HEADS * HD);
      results[b][7] = download (be, tmp, (size_t) N * HEADS * HD);
      /* the fused output projection + log-softmax from row 3 of the normed x */
      g_assert_true (bl_backend_nll (be, bx, bh, 3, N - 3, IN, VOCAB, targets, nll[b], &error));
      g_assert_no_error (error);
      g_assert_true (bl_backend_synchronize (be, &error));
      g_assert_no_error (error);

      bl_backend_buffer_free (be, att);
      bl_backend_buffer_free (be, tmp);
      bl_backend_buffer_free (be, bh);
      bl_backend_buffer_free (be, bs);
      bl_backend_buffer_free (be, bc);
      bl_backend_buffer_free (be, bv);
      bl_backend_buffer_free (be, bk);
      bl_backend_buffer_free (be, bq);
      bl_backend_buffer_free (be, bn);
      bl_backend_buffer_free (be, by);
      bl_backend_buffer_free (be, bb);
      bl_backend_buffer_free (be, bw);
      bl_backend_buffer_free (be, bx);
    }

  check_close ("matmul + bias, accumulating", results[1][0], results[0][0], (size_t) N * OUT, tol);
  check_close ("matmul", results[1][1], results[0][1], (size_t) N * OUT, tol);
  check_close ("rmsnorm in place", results[1][2], results[0][2], (size_t) N * IN, FP32_OP_TOL);
  check_close ("rope", results[1][3], results[0][3], (size_t) N * HEADS * HD, FP32_OP_TOL);
  check_close ("attention", results[1][4], results[0][4], (size_t) N * HEADS * HD, tol);
  check_close ("swiglu + add", results[1][5], results[0][5], (size_t) N * OUT, tol);
  g_assert_cmpmem (results[1][6], (size_t) N * IN * sizeof (float), results[0][6], (size_t) N * IN * sizeof (float));
  g_assert_cmpmem (results[1][7], (size_t) N * HEADS * HD * sizeof (float), results[1][3],
                   (size_t) N * HEADS * HD * sizeof (float));
  for (int i = 0; i < N - 3; i++)
    if (!(fabs (nll[1][i] - nll[0][i]) <= (strcmp (name, "cuda") == 0 ? 1e-4 : 0.1)))
      g_error ("nll[%d]: CUDA %.6f, CPU %.6f", i, nll[1][i], nll[0][i]);
  for (int b = 0; b < 2; b++)
    for (int i = 0; i < 8; i++)
      g_clear_pointer (&results[b][i], g_free);
}

/* Long windows: the attention scores and the vocabulary logits go in several slices. */
static void
test_slices (void)
{
  g_auto(Pair) p = { { NULL, NULL } };
  g_autoptr(GRand) rand = g_rand_new_with_seed (5);
  g_autoptr(GError) error = NULL;
  /* 2 query heads per key/value head over 6000 tokens: 48 kB of scores per query row, so
   * three slices of at most 128 MiB; 40000 logits per row: two slices of 900 rows */
  enum { N = 6000, HEADS = 2, KV = 1, HD = 8, DIM = 32, VOCAB = 40000, ROWS = 900 };
  g_autofree float *q = random_floats (rand, (size_t) N * HEADS * HD, 2.0);
  g_autofree float *k = random_floats (rand, (size_t) N * KV * HD, 2.0);
  g_autofree float *v = random_floats (rand, (size_t) N * KV * HD, 1.0);
  g_autofree float *h = random_floats (rand, (size_t) ROWS * DIM, 1.0);
  g_autofree float *head = random_floats (rand, (size_t) VOCAB * DIM, 0.5);
  g_autofree int32_t *targets = g_new (int32_t, ROWS);
  float *att[2];
  float *swa[2];
  double *nll[2];

  if (!require_device ())
    return;
  bl_backend_cuda_register ();
  p.be[0] = backend_new ("cpu");
  p.be[1] = backend_new ("cuda");
  for (int i = 0; i < ROWS; i++)
    targets[i] = (int32_t) ((i * 7919 + 3) % VOCAB);

  for (int b = 0; b < 2; b++)
    {
      BlBackend *be = p.be[b];
      BlBuffer *bq = upload (be, q, (size_t) N * HEADS * HD);
      BlBuffer *bk = upload (be, k, (size_t) N * KV * HD);
      BlBuffer *bv = upload (be, v, (size_t) N * KV * HD);
      BlBuffer *bh = upload (be, h, (size_t) ROWS * DIM);
      BlBuffer *bw = upload (be, head, (size_t) VOCAB * DIM);
      BlBuffer *out = bl_backend_buffer_new (be, (size_t) N * HEADS * HD, &error);

      g_assert_no_error (error);
      bl_backend_attention (be, out, bq, bk, bv, N, HEADS, KV, HD, 0);
      att[b] = download (be, out, (size_t) N * HEADS * HD);
      /* Mistral's 4096-key sliding window: later slices start past the first keys */
      bl_backend_attention (be, out, bq, bk, bv, N, HEADS, KV, HD, 4096);
      swa[b] = download (be, out, (size_t) N * HEADS * HD);
      nll[b] = g_new (double, ROWS);
      g_assert_true (bl_backend_nll (be, bh, bw, 0, ROWS, DIM, VOCAB, targets, nll[b], &error));
      g_assert_no_error (error);
      bl_backend_buffer_free (be, out);
      bl_backend_buffer_free (be, bw);
      bl_backend_buffer_free (be, bh);
      bl_backend_buffer_free (be, bv);
      bl_backend_buffer_free (be, bk);
      bl_backend_buffer_free (be, bq);
    }
  check_close ("attention over 6000 tokens", att[1], att[0], (size_t) N * HEADS * HD, FP32_OP_TOL);
  check_close ("sliding-window attention over 6000 tokens", swa[1], swa[0], (size_t) N * HEADS * HD,
               FP32_OP_TOL);
  for (int i = 0; i < ROWS; i++)
    if (!(fabs (nll[1][i] - nll[0][i]) <= 1e-4))
      g_error ("nll[%d] over 40000 logits: CUDA %.6f, CPU %.6f", i, nll[1][i], nll[0][i]);
  for (int b = 0; b < 2; b++)
    {
      g_free (att[b]);
      g_free (swa[b]);
      g_free (nll[b]);
    }
}

/* The engine */

static float *
engine_logits (BlModel       *model,
               BlBackend     *backend,
               const int32_t *ids,
               int            n)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(BlEngine) engine = bl_engine_new (model, backend, NULL, &error);
  float *logits;

  g_assert_no_error (error);
  logits = g_new (float, (size_t) n * bl_engine_get_vocab_size (engine));
  g_assert_true (bl_engine_forward (engine, ids, n, logits, NULL, &error));
  g_assert_no_error (error);
  return logits;
}

static int
argmax (const float *v,
        int          n)
{
  int best = 0;

  for (int i = 1; i < n; i++)
    if (v[i] > v[best])
      best = i;
  return best;
}

/* test-engine.c's golden values of stories260k after BOS (SOURCES.md) */
static void
test_stories260k_golden (gconstpointer data)
{
  const char *name = data;
  gboolean fp32 = strcmp (name, "cuda") == 0;
  g_autoptr(BlModel) model = NULL;
  g_autoptr(BlBackend) cuda = NULL;
  g_autofree float *logits = NULL;
  const double first[5] = { -6.22291, 8.40434, -6.22374, -6.22254, -6.22195 };
  const int32_t bos = 1;

  if (!require_device () || (model = load_shared_model ("stories260k")) == NULL)
    return;
  bl_backend_cuda_register ();
  cuda = backend_new (name);
  logits = engine_logits (model, cuda, &bos, 1);
  g_test_message ("%s: max %.6f (golden 17.02352), logits[0..4] %.6f %.6f %.6f %.6f %.6f", name, logits[403],
                  logits[0], logits[1], logits[2], logits[3], logits[4]);
  g_assert_cmpint (argmax (logits, 512), ==, 403);
  g_assert_cmpfloat_with_epsilon (logits[403], 17.02352, fp32 ? 1e-4 : BF16_TOL * 17.02352);
  for (int i = 0; i < 5; i++)
    g_assert_cmpfloat_with_epsilon (logits[i], first[i], fp32 ? 1e-4 : BF16_TOL * 17.02352);
}

/* the CUDA engine against the CPU engine over a long window, logits and NLL */
static void
test_stories260k_window (void)
{
  g_autoptr(BlModel) model = NULL;
  g_autoptr(BlBackend) cpu = NULL;
  g_autoptr(BlBackend) cuda = NULL;
  g_autoptr(BlEngine) e_cpu = NULL;
  g_autoptr(BlEngine) e_cuda = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree float *l_cpu = NULL;
  g_autofree float *l_cuda = NULL;
  enum { N = 300, FIRST = 1 };
  int32_t ids[N];
  double nll_cpu[N - FIRST], nll_cuda[N - FIRST];
  double max_diff = 0.0;

  if (!require_device () || (model = load_shared_model ("stories260k")) == NULL)
    return;
  bl_backend_cuda_register ();
  cpu = backend_new ("cpu");
  cuda = backend_new ("cuda");
  ids[0] = 1;
  for (int i = 1; i < N; i++)
    ids[i] = (int32_t) ((i * 7919u + 13) % 512u);

  l_cpu = engine_logits (model, cpu, ids, N);
  l_cuda = engine_logits (model, cuda, ids, N);
  check_close ("stories260k logits, 300 tokens", l_cuda, l_cpu, (size_t) N * 512, 1e-4);

  e_cpu = bl_engine_new (model, cpu, NULL, &error);
  g_assert_no_error (error);
  e_cuda = bl_engine_new (model, cuda, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (bl_engine_nll (e_cpu, ids, N, FIRST, nll_cpu, NULL, &error));
  g_assert_true (bl_engine_nll (e_cuda, ids, N, FIRST, nll_cuda, NULL, &error));
  g_assert_no_error (error);
  for (int i = 0; i < N - FIRST; i++)
    max_diff = MAX (max_diff, fabs (nll_cpu[i] - nll_cuda[i]));
  g_test_message ("stories260k NLL max |Δ| = %.3g nats", max_diff);
  g_assert_cmpfloat (max_diff, <, 1e-4);
}

/* tools/make-tiny-llama fixtures: biases, fp16/bf16 weights, tied heads, grouped queries */
static void
test_fixture (gconstpointer data)
{
  const char *variant = data;
  g_autofree char *dir = g_test_build_filename (G_TEST_DIST, "fixtures", "tiny-llama", variant, NULL);
  g_autofree char *expected_path = g_build_filename (dir, "expected.json", NULL);
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(BlModel) model = NULL;
  g_autoptr(BlBackend) cuda = NULL;
  g_autoptr(BlEngine) engine = NULL;
  g_autofree int32_t *ids = NULL;
  g_autofree float *ref = NULL;
  g_autofree float *logits = NULL;
  g_autofree double *nll = NULL;
  JsonObject *expected;
  JsonArray *ids_array, *logits_array, *nll_array;
  double max_nll_diff = 0.0, max_ref = 0.0;
  int n, vocab;

  if (!require_device ())
    return;
  bl_backend_cuda_register ();
  g_assert_true (json_parser_load_from_file (parser, expected_path, &error));
  g_assert_no_error (error);
  expected = json_node_get_object (json_parser_get_root (parser));
  ids_array = json_object_get_array_member (expected, "ids");
  logits_array = json_object_get_array_member (expected, "logits");
  nll_array = json_object_get_array_member (expected, "nll");
  n = (int) json_array_get_length (ids_array);
  vocab = (int) json_object_get_int_member (expected, "vocab_size");

  ids = g_new (int32_t, n);
  ref = g_new (float, (size_t) n * vocab);
  nll = g_new (double, n - 1);
  for (int i = 0; i < n; i++)
    ids[i] = (int32_t) json_array_get_int_element (ids_array, i);
  for (int i = 0; i < n * vocab; i++)
    {
      ref[i] = (float) json_array_get_double_element (logits_array, i);
      max_ref = MAX (max_ref, fabs (ref[i]));
    }

  model = bl_model_load (dir, NULL, &error);
  g_assert_no_error (error);
  cuda = backend_new ("cuda");
  logits = engine_logits (model, cuda, ids, n);
  check_close (variant, logits, ref, (size_t) n * vocab, 1e-4);

  engine = bl_engine_new (model, cuda, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (bl_engine_nll (engine, ids, n, 1, nll, NULL, &error));
  g_assert_no_error (error);
  for (int i = 0; i < n - 1; i++)
    max_nll_diff = MAX (max_nll_diff, fabs (nll[i] - json_array_get_double_element (nll_array, i)));
  g_test_message ("%s: NLL max |Δ| = %.3g nats", variant, max_nll_diff);
  g_assert_cmpfloat (max_nll_diff, <, 1e-4 * MAX (1.0, max_ref));
}

/* An activation hook on a backend whose buffers the host cannot map: the engine downloads
 * each linear input, lets the hook change it and uploads it again. */
static void
halve_inputs (const char  *layer_name,
              BlLayerKind  kind,
              int          block,
              float       *x,
              int          n_tokens,
              int          dim,
              gpointer     user_data)
{
  for (size_t i = 0; i < (size_t) n_tokens * dim; i++)
    x[i] *= 0.5f;
  (*(int *) user_data)++;
}

static void
test_activation_hook (void)
{
  g_autofree char *dir = g_test_build_filename (G_TEST_DIST, "fixtures", "tiny-llama", "qwen2-gqa", NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(BlModel) model = NULL;
  g_autoptr(BlBackend) cpu = NULL;
  g_autoptr(BlBackend) cuda = NULL;
  g_autoptr(BlEngine) e_cpu = NULL;
  g_autoptr(BlEngine) e_cuda = NULL;
  g_autofree float *l_cpu = NULL;
  g_autofree float *l_cuda = NULL;
  const int32_t ids[] = { 1, 5, 9, 33, 70, 2, 64, 11 };
  int calls[2] = { 0, 0 };
  BlEngineHooks hooks[2] = { { NULL, halve_inputs, &calls[0] }, { NULL, halve_inputs, &calls[1] } };
  int vocab;

  if (!require_device ())
    return;
  bl_backend_cuda_register ();
  model = bl_model_load (dir, NULL, &error);
  g_assert_no_error (error);
  cpu = backend_new ("cpu");
  cuda = backend_new ("cuda");
  e_cpu = bl_engine_new (model, cpu, &hooks[0], &error);
  g_assert_no_error (error);
  e_cuda = bl_engine_new (model, cuda, &hooks[1], &error);
  g_assert_no_error (error);
  vocab = bl_engine_get_vocab_size (e_cpu);
  l_cpu = g_new (float, G_N_ELEMENTS (ids) * vocab);
  l_cuda = g_new (float, G_N_ELEMENTS (ids) * vocab);
  g_assert_true (bl_engine_forward (e_cpu, ids, G_N_ELEMENTS (ids), l_cpu, NULL, &error));
  g_assert_true (bl_engine_forward (e_cuda, ids, G_N_ELEMENTS (ids), l_cuda, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpint (calls[0], ==, calls[1]);
  g_assert_cmpint (calls[1], >, 0);
  check_close ("qwen2-gqa with a halving activation hook", l_cuda, l_cpu, G_N_ELEMENTS (ids) * vocab, 1e-4);
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/bitlens/cuda/backend/registry", test_registry);
  g_test_add_func ("/bitlens/cuda/backend/buffer-errors", test_buffer_errors);
  g_test_add_data_func ("/bitlens/cuda/backend/ops/fp32", "cuda", test_ops);
  g_test_add_data_func ("/bitlens/cuda/backend/ops/bf16", "cuda-bf16", test_ops);
  g_test_add_func ("/bitlens/cuda/backend/ops/slices", test_slices);
  g_test_add_data_func ("/bitlens/cuda/backend/stories260k/golden/fp32", "cuda", test_stories260k_golden);
  g_test_add_data_func ("/bitlens/cuda/backend/stories260k/golden/bf16", "cuda-bf16", test_stories260k_golden);
  g_test_add_func ("/bitlens/cuda/backend/stories260k/window", test_stories260k_window);
  g_test_add_data_func ("/bitlens/cuda/backend/fixture/llama-bias-f16", "llama-bias-f16", test_fixture);
  g_test_add_data_func ("/bitlens/cuda/backend/fixture/llama-tied-bf16", "llama-tied-bf16", test_fixture);
  g_test_add_data_func ("/bitlens/cuda/backend/fixture/qwen2-gqa", "qwen2-gqa", test_fixture);
  g_test_add_func ("/bitlens/cuda/backend/activation-hook", test_activation_hook);

  return g_test_run ();
}
