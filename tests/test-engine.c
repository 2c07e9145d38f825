/* test-engine.c: the forward pass against golden values, fixtures and naive references
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include <float.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <math.h>
#include <string.h>

#include "bl-backend-private.h"
#include "bl-cpu-kernels-private.h"
#include "bl-engine.h"
#include "bl-error.h"

#define N_THREADS 2

/* Helpers */

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

static BlEngine *
engine_new (BlModel             *model,
            BlBackend           *backend,
            const BlEngineHooks *hooks)
{
  g_autoptr(GError) error = NULL;
  BlEngine *engine = bl_engine_new (model, backend, hooks, &error);

  g_assert_no_error (error);
  g_assert_nonnull (engine);
  return engine;
}

static BlBackend *
cpu_backend_new (void)
{
  g_autoptr(GError) error = NULL;
  BlBackend *backend = bl_backend_new ("cpu", N_THREADS, &error);

  g_assert_no_error (error);
  return backend;
}

static float *
forward_logits (BlEngine      *engine,
                const int32_t *ids,
                int            n)
{
  g_autoptr(GError) error = NULL;
  float *logits = g_new (float, (size_t) n * bl_engine_get_vocab_size (engine));

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

/* max |a − b| / max |b|, the relative measure the fixture checks use */
static double
relative_error (const float  *a,
                const double *b,
                size_t        n)
{
  double max_diff = 0.0;
  double max_ref = 0.0;

  for (size_t i = 0; i < n; i++)
    {
      max_diff = MAX (max_diff, fabs ((double) a[i] - b[i]));
      max_ref = MAX (max_ref, fabs (b[i]));
    }
  return max_diff / max_ref;
}

static double
rel_scale (const double *v,
           size_t        n)
{
  double max = 0.0;

  for (size_t i = 0; i < n; i++)
    max = MAX (max, fabs (v[i]));
  return max;
}

/* Golden values of the shared models (/work/shared/SOURCES.md) */

typedef struct
{
  const char *model;
  int argmax;
  double max;
  double first[5];
  int32_t greedy[25];
} Golden;

static const Golden stories260k = {
  "stories260k", 403, 17.02352, { -6.22291, 8.40434, -6.22374, -6.22254, -6.22195 },
  { 1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426, 338, 401, 396,
    267, 337, 410, 408, 419, 292 },
};

static const Golden tinystories656k = {
  "tinystories-656k", 147, 14.78167, { 0.02913, -0.20105, -0.44712, 1.91639, -2.57867 },
  { 1, 147, 201, 282, 215, 286, 598, 1662, 356, 499, 826, 1363, 1145, 1652, 615, 242, 1482, 951,
    628, 499, 826, 872, 921, 318, 385 },
};

static void
test_golden_logits (gconstpointer data)
{
  const Golden *golden = data;
  g_autoptr(BlModel) model = load_shared_model (golden->model);
  g_autoptr(BlBackend) backend = NULL;
  g_autoptr(BlEngine) engine = NULL;
  g_autofree float *logits = NULL;
  const int32_t bos = 1;
  int vocab;

  if (model == NULL)
    return;
  backend = cpu_backend_new ();
  engine = engine_new (model, backend, NULL);
  vocab = bl_engine_get_vocab_size (engine);

  logits = forward_logits (engine, &bos, 1);
  g_test_message ("%s: max %.6f (golden %.5f), logits[0..4] %.6f %.6f %.6f %.6f %.6f",
                  golden->model, logits[golden->argmax], golden->max, logits[0], logits[1],
                  logits[2], logits[3], logits[4]);
  g_assert_cmpint (argmax (logits, vocab), ==, golden->argmax);
  g_assert_cmpfloat_with_epsilon (logits[golden->argmax], golden->max, 1e-4);
  for (int i = 0; i < 5; i++)
    g_assert_cmpfloat_with_epsilon (logits[i], golden->first[i], 1e-4);
}

static void
test_golden_greedy (gconstpointer data)
{
  const Golden *golden = data;
  g_autoptr(BlModel) model = load_shared_model (golden->model);
  g_autoptr(BlBackend) backend = NULL;
  g_autoptr(BlEngine) engine = NULL;
  int32_t ids[25] = { 1 };
  int vocab;

  if (model == NULL)
    return;
  backend = cpu_backend_new ();
  engine = engine_new (model, backend, NULL);
  vocab = bl_engine_get_vocab_size (engine);

  /* No KV cache: each step runs the whole prefix again, which also checks every window
   * length from 1 to 24. */
  for (int n = 1; n < 25; n++)
    {
      g_autofree float *logits = forward_logits (engine, ids, n);

      ids[n] = argmax (logits + (size_t) (n - 1) * vocab, vocab);
    }
  for (int i = 0; i < 25; i++)
    g_assert_cmpint (ids[i], ==, golden->greedy[i]);
}

/* bl_engine_nll must equal the log-softmax of bl_engine_forward's logits. */
static void
test_nll_matches_logits (void)
{
  g_autoptr(BlModel) model = load_shared_model ("stories260k");
  g_autoptr(BlBackend) backend = NULL;
  g_autoptr(BlEngine) engine = NULL;
  g_autofree float *logits = NULL;
  g_autoptr(GError) error = NULL;
  enum { N = 200, FIRST = 37 };
  int32_t ids[N];
  double nll[N - FIRST];
  int vocab;

  if (model == NULL)
    return;
  backend = cpu_backend_new ();
  engine = engine_new (model, backend, NULL);
  vocab = bl_engine_get_vocab_size (engine);

  ids[0] = 1;
  for (int i = 1; i < N; i++)
    ids[i] = (int32_t) ((i * 7919u + 13) % (guint) vocab);
  logits = forward_logits (engine, ids, N);
  g_assert_true (bl_engine_nll (engine, ids, N, FIRST, nll, NULL, &error));
  g_assert_no_error (error);

  for (int j = FIRST; j < N; j++)
    {
      const float *row = logits + (size_t) (j - 1) * vocab;
      double max = row[argmax (row, vocab)];
      double sum = 0.0;

      for (int c = 0; c < vocab; c++)
        sum += exp (row[c] - max);
      g_assert_cmpfloat_with_epsilon (nll[j - FIRST], max + log (sum) - row[ids[j]], 1e-5);
    }
}

/* Mean NLL of one window: BOS, then @text's ids (the first @max_ids of them). */
static double
window_mean_nll (BlModel    *model,
                 const char *text,
                 gssize      len,
                 guint       max_ids,
                 guint       expect_ids)
{
  BlTokenizer *tokenizer = bl_model_get_tokenizer (model);
  g_autoptr(BlBackend) backend = cpu_backend_new ();
  g_autoptr(BlEngine) engine = engine_new (model, backend, NULL);
  g_autoptr(GArray) ids = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree double *nll = NULL;
  const int32_t bos = 1;
  double sum = 0.0;
  guint n;

  g_assert_nonnull (tokenizer);
  ids = bl_tokenizer_encode (tokenizer, text, len, FALSE);
  g_assert_cmpuint (ids->len, >=, expect_ids);
  g_array_set_size (ids, MIN (ids->len, max_ids));
  g_assert_cmpuint (ids->len, ==, expect_ids);
  g_array_prepend_val (ids, bos);
  n = ids->len;

  nll = g_new (double, n - 1);
  g_assert_true (bl_engine_nll (engine, (const int32_t *) ids->data, (int) n, 1, nll, NULL,
                                &error));
  g_assert_no_error (error);
  for (guint j = 0; j + 1 < n; j++)
    sum += nll[j];
  return sum / (n - 1);
}

/* SOURCES.md: the first 3,000 characters of wiki.test.raw, the first 256 ids, BOS in front,
 * one 257-token window: mean NLL 4.507416, PPL 90.687. */
static void
test_stories260k_wikitext (void)
{
  g_autoptr(BlModel) model = load_shared_model ("stories260k");
  g_autofree char *path = NULL;
  g_autofree char *text = NULL;
  g_autoptr(GError) error = NULL;
  const char *end;
  double mean;

  if (model == NULL)
    return;
  path = g_build_filename (g_getenv ("BITLENS_SHARED_DIR"), "datasets", "wikitext-2-raw-v1",
                           "wiki.test.raw", NULL);
  g_assert_true (g_file_get_contents (path, &text, NULL, &error));
  g_assert_no_error (error);
  end = g_utf8_offset_to_pointer (text, 3000);

  mean = window_mean_nll (model, text, end - text, 256, 256);
  g_test_message ("stories260k wikitext: mean NLL %.6f (golden 4.507416), PPL %.3f", mean,
                  exp (mean));
  g_assert_cmpfloat_with_epsilon (mean, 4.507416, 1e-5);
  g_assert_cmpfloat_with_epsilon (exp (mean), 90.687, 1e-3);
}

/* SOURCES.md: check_text.txt without its final newline, 83 ids, BOS in front: mean NLL
 * 2.450942, PPL 11.599. */
static void
test_tinystories_check_text (void)
{
  g_autoptr(BlModel) model = load_shared_model ("tinystories-656k");
  g_autofree char *path = NULL;
  g_autofree char *text = NULL;
  g_autoptr(GError) error = NULL;
  double mean;

  if (model == NULL)
    return;
  path = g_build_filename (g_getenv ("BITLENS_SHARED_DIR"), "models", "tinystories-656k",
                           "check_text.txt", NULL);
  g_assert_true (g_file_get_contents (path, &text, NULL, &error));
  g_assert_no_error (error);

  mean = window_mean_nll (model, g_strchomp (text), -1, G_MAXUINT, 83);
  g_test_message ("tinystories-656k check_text: mean NLL %.6f (golden 2.450942), PPL %.3f",
                  mean, exp (mean));
  g_assert_cmpfloat_with_epsilon (mean, 2.450942, 1e-5);
  g_assert_cmpfloat_with_epsilon (exp (mean), 11.599, 1e-3);
}

/* The tiny-llama fixtures (tools/make-tiny-llama) */

static void
test_fixture (gconstpointer data)
{
  const char *variant = data;
  g_autofree char *dir = g_test_build_filename (G_TEST_DIST, "fixtures", "tiny-llama", variant,
                                                NULL);
  g_autofree char *expected_path = g_build_filename (dir, "expected.json", NULL);
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(BlModel) model = NULL;
  g_autoptr(BlBackend) backend = NULL;
  g_autoptr(BlEngine) engine = NULL;
  g_autofree int32_t *ids = NULL;
  g_autofree double *ref_logits = NULL;
  g_autofree double *ref_nll = NULL;
  g_autofree double *nll = NULL;
  g_autofree float *logits = NULL;
  JsonObject *expected;
  JsonArray *ids_array;
  JsonArray *logits_array;
  JsonArray *nll_array;
  int n;
  int vocab;
  double rel;
  double max_nll_diff = 0.0;

  g_assert_true (json_parser_load_from_file (parser, expected_path, &error));
  g_assert_no_error (error);
  expected = json_node_get_object (json_parser_get_root (parser));
  ids_array = json_object_get_array_member (expected, "ids");
  logits_array = json_object_get_array_member (expected, "logits");
  nll_array = json_object_get_array_member (expected, "nll");
  n = (int) json_array_get_length (ids_array);
  vocab = (int) json_object_get_int_member (expected, "vocab_size");
  g_assert_cmpuint (json_array_get_length (logits_array), ==, (guint) n * vocab);
  g_assert_cmpuint (json_array_get_length (nll_array), ==, (guint) n - 1);

  ids = g_new (int32_t, n);
  ref_logits = g_new (double, (size_t) n * vocab);
  ref_nll = g_new (double, n - 1);
  nll = g_new (double, n - 1);
  for (int i = 0; i < n; i++)
    ids[i] = (int32_t) json_array_get_int_element (ids_array, i);
  for (int i = 0; i < n * vocab; i++)
    ref_logits[i] = json_array_get_double_element (logits_array, i);
  for (int i = 0; i < n - 1; i++)
    ref_nll[i] = json_array_get_double_element (nll_array, i);

  model = bl_model_load (dir, NULL, &error);
  g_assert_no_error (error);
  backend = cpu_backend_new ();
  engine = engine_new (model, backend, NULL);
  g_assert_cmpint (bl_engine_get_vocab_size (engine), ==, vocab);

  logits = forward_logits (engine, ids, n);
  rel = relative_error (logits, ref_logits, (size_t) n * vocab);
  g_test_message ("%s: logits max |Δ| / max |ref| = %.3g", variant, rel);
  g_assert_cmpfloat (rel, <, 1e-5);

  g_assert_true (bl_engine_nll (engine, ids, n, 1, nll, NULL, &error));
  g_assert_no_error (error);
  for (int i = 0; i < n - 1; i++)
    max_nll_diff = MAX (max_nll_diff, fabs (nll[i] - ref_nll[i]));
  /* The reference NLL went through fp32 logits, so it inherits their tolerance. */
  g_test_message ("%s: NLL max |Δ| = %.3g nats", variant, max_nll_diff);
  g_assert_cmpfloat (max_nll_diff, <, 1e-5 * MAX (1.0, rel_scale (ref_logits, (size_t) n * vocab)));
}

/* Hooks */

static BlModel *
load_fixture (const char *variant)
{
  g_autofree char *dir = g_test_build_filename (G_TEST_DIST, "fixtures", "tiny-llama", variant,
                                                NULL);
  g_autoptr(GError) error = NULL;
  BlModel *model = bl_model_load (dir, NULL, &error);

  g_assert_no_error (error);
  return model;
}

static const int32_t hook_ids[] = { 1, 5, 9, 33, 70, 2, 64, 11 };

typedef struct
{
  const char *zero_layer;     /* weight to zero, or NULL */
  GPtrArray *seen;            /* "name kind rows×cols" per call */
} WeightHookData;

static void
weight_hook (const char  *layer_name,
             BlLayerKind  kind,
             float       *w,
             int64_t      rows,
             int64_t      cols,
             gpointer     user_data)
{
  WeightHookData *d = user_data;

  g_ptr_array_add (d->seen, g_strdup_printf ("%s %s %" G_GINT64_FORMAT "×%" G_GINT64_FORMAT,
                                             layer_name, bl_layer_kind_to_string (kind),
                                             rows, cols));
  if (d->zero_layer != NULL && strcmp (layer_name, d->zero_layer) == 0)
    memset (w, 0, (size_t) (rows * cols) * sizeof (float));
}

static void
test_hook_weight_transform (void)
{
  g_autoptr(BlModel) model = load_fixture ("qwen2-gqa");
  const BlModelConfig *c = bl_model_get_config (model);
  g_autoptr(BlBackend) backend = cpu_backend_new ();
  g_autoptr(GPtrArray) seen = g_ptr_array_new_with_free_func (g_free);
  WeightHookData d = { NULL, seen };
  BlEngineHooks hooks = { weight_hook, NULL, &d };
  int n = G_N_ELEMENTS (hook_ids);
  size_t count = (size_t) n * c->vocab_size;
  g_autofree float *base = NULL;
  g_autofree float *zeroed = NULL;
  g_autofree char *q_expected = NULL;
  g_autofree char *down_expected = NULL;
  double diff = 0.0;

  {
    g_autoptr(BlEngine) engine = engine_new (model, backend, &hooks);
    base = forward_logits (engine, hook_ids, n);
  }
  /* 7 linear weights per block plus the (untied) output projection */
  g_assert_cmpuint (seen->len, ==, 7 * (guint) c->n_layers + 1);
  q_expected = g_strdup_printf ("model.layers.0.self_attn.q_proj.weight %s %d×%d",
                                bl_layer_kind_to_string (BL_LAYER_ATTN_Q),
                                c->n_heads * c->head_dim, c->hidden_size);
  down_expected = g_strdup_printf ("model.layers.1.mlp.down_proj.weight %s %d×%d",
                                   bl_layer_kind_to_string (BL_LAYER_MLP_DOWN),
                                   c->hidden_size, c->intermediate_size);
  g_assert_cmpstr (g_ptr_array_index (seen, 0), ==, q_expected);
  g_assert_cmpstr (g_ptr_array_index (seen, 13), ==, down_expected);
  g_assert_true (g_str_has_prefix (g_ptr_array_index (seen, 14), "lm_head.weight "));

  /* Zeroing one layer's weight changes the output... */
  d.zero_layer = "model.layers.0.mlp.down_proj.weight";
  {
    g_autoptr(BlEngine) engine = engine_new (model, backend, &hooks);
    zeroed = forward_logits (engine, hook_ids, n);
  }
  for (size_t i = 0; i < count; i++)
    diff = MAX (diff, fabs (zeroed[i] - base[i]));
  g_assert_cmpfloat (diff, >, 1e-3);

  /* ...and zeroing the output projection zeroes every logit. */
  d.zero_layer = "lm_head.weight";
  g_clear_pointer (&zeroed, g_free);
  {
    g_autoptr(BlEngine) engine = engine_new (model, backend, &hooks);
    zeroed = forward_logits (engine, hook_ids, n);
  }
  for (size_t i = 0; i < count; i++)
    g_assert_cmpfloat (zeroed[i], ==, 0.0f);
}

/* A tied model whose output projection a hook changes must keep its embedding exact. */
static void
test_hook_tied_head (void)
{
  g_autoptr(BlModel) model = load_fixture ("llama-tied-bf16");
  g_autoptr(BlBackend) backend = cpu_backend_new ();
  g_autoptr(GPtrArray) seen = g_ptr_array_new_with_free_func (g_free);
  WeightHookData d = { NULL, seen };
  BlEngineHooks hooks = { weight_hook, NULL, &d };
  int n = G_N_ELEMENTS (hook_ids);
  g_autoptr(BlEngine) plain = engine_new (model, backend, NULL);
  g_autoptr(BlEngine) hooked = engine_new (model, backend, &hooks);
  g_autofree float *a = forward_logits (plain, hook_ids, n);
  g_autofree float *b = forward_logits (hooked, hook_ids, n);

  g_assert_true (g_str_has_prefix (g_ptr_array_index (seen, seen->len - 1), "lm_head.weight "));
  g_assert_cmpmem (a, n * bl_engine_get_vocab_size (plain) * sizeof (float),
                   b, n * bl_engine_get_vocab_size (hooked) * sizeof (float));
}

typedef struct
{
  GPtrArray *seen;            /* "name block n×dim" per call */
  gboolean zero_head_input;
} ActivationHookData;

static void
activation_hook (const char  *layer_name,
                 BlLayerKind  kind,
                 int          block,
                 float       *x,
                 int          n_tokens,
                 int          dim,
                 gpointer     user_data)
{
  ActivationHookData *d = user_data;

  g_ptr_array_add (d->seen, g_strdup_printf ("%s %d %d×%d", layer_name, block, n_tokens, dim));
  if (d->zero_head_input && kind == BL_LAYER_LM_HEAD)
    memset (x, 0, (size_t) n_tokens * dim * sizeof (float));
}

static void
test_hook_activation (void)
{
  g_autoptr(BlModel) model = load_fixture ("llama-bias-f16");
  const BlModelConfig *c = bl_model_get_config (model);
  g_autoptr(BlBackend) backend = cpu_backend_new ();
  g_autoptr(GPtrArray) seen = g_ptr_array_new_with_free_func (g_free);
  ActivationHookData d = { seen, FALSE };
  BlEngineHooks hooks = { NULL, activation_hook, &d };
  int n = G_N_ELEMENTS (hook_ids);
  g_autoptr(BlEngine) plain = engine_new (model, backend, NULL);
  g_autoptr(BlEngine) hooked = engine_new (model, backend, &hooks);
  g_autofree float *a = forward_logits (plain, hook_ids, n);
  g_autofree float *b = forward_logits (hooked, hook_ids, n);
  g_autofree float *zero = NULL;
  const char *order[] = { "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                          "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj" };
  int q_dim = c->n_heads * c->head_dim;
  int dims[] = { c->hidden_size, c->hidden_size, c->hidden_size, q_dim, c->hidden_size,
                 c->hidden_size, c->intermediate_size };
  size_t count = (size_t) n * c->vocab_size;
  g_autofree char *last = g_strdup_printf ("lm_head.weight -1 %d×%d", n, c->hidden_size);

  /* A hook that only looks changes nothing. */
  g_assert_cmpmem (a, count * sizeof (float), b, count * sizeof (float));

  g_assert_cmpuint (seen->len, ==, 7 * (guint) c->n_layers + 1);
  for (int l = 0; l < c->n_layers; l++)
    for (int i = 0; i < 7; i++)
      {
        g_autofree char *want = g_strdup_printf ("model.layers.%d.%s.weight %d %d×%d", l,
                                                 order[i], l, n, dims[i]);
        g_assert_cmpstr (g_ptr_array_index (seen, l * 7 + i), ==, want);
      }
  g_assert_cmpstr (g_ptr_array_index (seen, seen->len - 1), ==, last);

  /* A change reaches the layer: zero input to the output projection gives zero logits. */
  d.zero_head_input = TRUE;
  zero = forward_logits (hooked, hook_ids, n);
  for (size_t i = 0; i < count; i++)
    g_assert_cmpfloat (zero[i], ==, 0.0f);
}

/* Errors and cancellation */

static void
test_cancel (void)
{
  g_autoptr(BlModel) model = load_fixture ("qwen2-gqa");
  g_autoptr(BlBackend) backend = cpu_backend_new ();
  g_autoptr(BlEngine) engine = engine_new (model, backend, NULL);
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GError) error = NULL;
  double nll[8];

  g_cancellable_cancel (cancellable);
  g_assert_false (bl_engine_forward (engine, hook_ids, 8, NULL, cancellable, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&error);
  g_assert_false (bl_engine_nll (engine, hook_ids, 8, 1, nll, cancellable, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
}

static void
test_invalid_arguments (void)
{
  g_autoptr(BlModel) model = load_fixture ("qwen2-gqa");
  g_autoptr(BlBackend) backend = cpu_backend_new ();
  g_autoptr(BlEngine) engine = engine_new (model, backend, NULL);
  g_autoptr(GError) error = NULL;
  int max = bl_engine_get_max_tokens (engine);
  g_autofree int32_t *long_ids = g_new0 (int32_t, max + 1);
  int32_t bad[] = { 1, 97 };
  double nll[8];

  g_assert_cmpint (max, ==, 64);
  g_assert_false (bl_engine_forward (engine, long_ids, max + 1, NULL, NULL, &error));
  g_assert_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_assert_false (bl_engine_forward (engine, bad, 2, NULL, NULL, &error));
  g_assert_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_assert_false (bl_engine_nll (engine, hook_ids, 8, 0, nll, NULL, &error));
  g_assert_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  /* A window whose only scored position is past its end scores nothing. */
  g_assert_true (bl_engine_nll (engine, hook_ids, 8, 8, NULL, NULL, &error));
  g_assert_no_error (error);
  /* The full window is still accepted after the rejected calls. */
  g_assert_true (bl_engine_forward (engine, long_ids, max, NULL, NULL, &error));
  g_assert_no_error (error);
}

/* A config that disagrees with a tensor's shape is refused, naming the tensor. */
static void
test_shape_mismatch (void)
{
  g_autofree char *src = g_test_build_filename (G_TEST_DIST, "fixtures", "tiny-llama",
                                                "qwen2-gqa", NULL);
  g_autofree char *dir = g_dir_make_tmp ("bitlens-engine-XXXXXX", NULL);
  g_autofree char *config_src = g_build_filename (src, "config.json", NULL);
  g_autofree char *weights_src = g_build_filename (src, "model.safetensors", NULL);
  g_autofree char *config_dst = g_build_filename (dir, "config.json", NULL);
  g_autofree char *weights_dst = g_build_filename (dir, "model.safetensors", NULL);
  g_autofree char *config = NULL;
  g_autofree char *weights = NULL;
  g_autoptr(GString) edited = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(BlModel) model = NULL;
  g_autoptr(BlBackend) backend = cpu_backend_new ();
  g_autoptr(BlEngine) engine = NULL;
  gsize weights_len;

  g_assert_true (g_file_get_contents (config_src, &config, NULL, NULL));
  g_assert_true (g_file_get_contents (weights_src, &weights, &weights_len, NULL));
  edited = g_string_new (config);
  g_assert_cmpuint (g_string_replace (edited, "\"intermediate_size\": 80",
                                      "\"intermediate_size\": 96", 1), ==, 1);
  g_assert_true (g_file_set_contents (config_dst, edited->str, -1, NULL));
  g_assert_true (g_file_set_contents (weights_dst, weights, weights_len, NULL));

  model = bl_model_load (dir, NULL, &error);
  if (model != NULL)
    {
      engine = bl_engine_new (model, backend, NULL, &error);
      g_assert_null (engine);
      g_assert_error (error, BL_ERROR, BL_ERROR_CORRUPT_FILE);
      g_assert_nonnull (strstr (error->message, "model.layers.0.mlp.gate_proj.weight"));
      g_test_message ("engine refused it: %s", error->message);
    }
  else
    {
      /* the loader may check the shapes itself; then it must say so */
      g_assert_error (error, BL_ERROR, BL_ERROR_CORRUPT_FILE);
      g_test_message ("loader refused it: %s", error->message);
    }

  g_unlink (config_dst);
  g_unlink (weights_dst);
  g_rmdir (dir);
}

/* Backend registry */

static gpointer
failing_init (int      n_threads,
              GError **error)
{
  g_set_error (error, BL_ERROR, BL_ERROR_GPU, "no device in this test");
  return NULL;
}

static void
test_registry (void)
{
  static BlBackendClass failing;
  g_autoptr(GError) error = NULL;
  g_autoptr(BlBackend) cpu = NULL;
  g_autoptr(BlBackend) fallback = NULL;
  g_autoptr(BlBackend) missing = NULL;
  g_auto(GStrv) names = NULL;

  cpu = bl_backend_new ("cpu", 1, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (bl_backend_get_name (cpu), ==, "cpu");
  g_assert_cmpint (bl_backend_get_n_threads (cpu), ==, 1);
  g_assert_true (g_str_has_prefix (bl_backend_get_description (cpu), "CPU, 1 thread"));

  missing = bl_backend_new ("tpu", 1, &error);
  g_assert_null (missing);
  g_assert_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, "cpu"));
  g_clear_error (&error);

  /* A preferred backend that cannot start: "auto" falls back to the CPU, and asking for it
   * by name gives its own error. */
  failing = *bl_backend_cpu_get_class ();
  failing.name = "failing-gpu";
  failing.priority = 100;
  failing.init = failing_init;
  bl_backend_register (&failing);
  names = bl_backend_list_names ();
  g_assert_cmpstr (names[0], ==, "cpu");
  g_assert_true (g_strv_contains ((const char * const *) names, "failing-gpu"));

  fallback = bl_backend_new ("auto", 1, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (bl_backend_get_name (fallback), ==, "cpu");

  missing = bl_backend_new ("failing-gpu", 1, &error);
  g_assert_null (missing);
  g_assert_error (error, BL_ERROR, BL_ERROR_GPU);
  g_assert_nonnull (strstr (error->message, "no device in this test"));
}

/* CPU ops against naive double-precision references, at sizes that cross the attention
 * block and vocabulary slice boundaries. */

static void
fill_random (GRand *rand,
             float *v,
             size_t n,
             double scale)
{
  for (size_t i = 0; i < n; i++)
    v[i] = (float) (g_rand_double_range (rand, -1.0, 1.0) * scale);
}

static BlBuffer *
buffer_from (BlBackend   *backend,
             const float *data,
             size_t       n)
{
  g_autoptr(GError) error = NULL;
  BlBuffer *buffer = bl_backend_buffer_new (backend, n, &error);

  g_assert_no_error (error);
  if (data != NULL)
    g_assert_true (bl_backend_upload (backend, buffer, 0, data, n, &error));
  return buffer;
}

/* @data: the sliding window (0: full causal attention); 300 queries cross two attention
 * blocks, and windows of 1, 77 and 200 keys start inside, at and across block boundaries */
static void
test_cpu_attention (gconstpointer data)
{
  enum { N = 300, HEADS = 6, KV = 2, HD = 16 };
  int window = GPOINTER_TO_INT (data);
  g_autoptr(BlBackend) backend = cpu_backend_new ();
  g_autoptr(GRand) rand = g_rand_new_with_seed (7);
  g_autofree float *q = g_new (float, N * HEADS * HD);
  g_autofree float *k = g_new (float, N * KV * HD);
  g_autofree float *v = g_new (float, N * KV * HD);
  g_autofree float *out = g_new (float, N * HEADS * HD);
  g_autofree double *p = g_new (double, N);
  BlBuffer *bq, *bk, *bv, *bo;
  double max_diff = 0.0;

  fill_random (rand, q, N * HEADS * HD, 2.0);
  fill_random (rand, k, N * KV * HD, 2.0);
  fill_random (rand, v, N * KV * HD, 1.0);
  bq = buffer_from (backend, q, N * HEADS * HD);
  bk = buffer_from (backend, k, N * KV * HD);
  bv = buffer_from (backend, v, N * KV * HD);
  bo = buffer_from (backend, NULL, N * HEADS * HD);
  bl_backend_attention (backend, bo, bq, bk, bv, N, HEADS, KV, HD, window);
  g_assert_true (bl_backend_download (backend, bo, 0, out, N * HEADS * HD, NULL));

  for (int h = 0; h < HEADS; h++)
    for (int i = 0; i < N; i++)
      {
        int kvh = h / (HEADS / KV);
        int first = window > 0 ? MAX (0, i - window + 1) : 0;
        double max = -INFINITY;
        double sum = 0.0;

        for (int j = first; j <= i; j++)
          {
            double s = 0.0;

            for (int d = 0; d < HD; d++)
              s += (double) q[(i * HEADS + h) * HD + d] * k[(j * KV + kvh) * HD + d];
            p[j] = s / sqrt (HD);
            max = MAX (max, p[j]);
          }
        for (int j = first; j <= i; j++)
          sum += (p[j] = exp (p[j] - max));
        for (int d = 0; d < HD; d++)
          {
            double o = 0.0;

            for (int j = first; j <= i; j++)
              o += p[j] / sum * v[(j * KV + kvh) * HD + d];
            max_diff = MAX (max_diff, fabs (o - out[(i * HEADS + h) * HD + d]));
          }
      }
  g_test_message ("attention (window %d) max |Δ| = %.3g", window, max_diff);
  g_assert_cmpfloat (max_diff, <, 1e-5);

  bl_backend_buffer_free (backend, bq);
  bl_backend_buffer_free (backend, bk);
  bl_backend_buffer_free (backend, bv);
  bl_backend_buffer_free (backend, bo);
}

static void
test_cpu_matmul_nll (void)
{
  enum { N = 40, IN = 24, OUT = 5000 };
  g_autoptr(BlBackend) backend = cpu_backend_new ();
  g_autoptr(GRand) rand = g_rand_new_with_seed (11);
  g_autofree float *x = g_new (float, N * IN);
  g_autofree float *w = g_new (float, OUT * IN);
  g_autofree float *bias = g_new (float, OUT);
  g_autofree float *y = g_new (float, N * OUT);
  g_autofree double *ref = g_new (double, N * OUT);
  int32_t targets[N];
  double nll[N - 3];
  BlBuffer *bx, *bw, *bb, *by;
  double max_diff = 0.0;

  fill_random (rand, x, N * IN, 1.0);
  fill_random (rand, w, OUT * IN, 1.0);
  fill_random (rand, bias, OUT, 0.5);
  for (int i = 0; i < N; i++)
    targets[i] = g_rand_int_range (rand, 0, OUT);
  for (int i = 0; i < N; i++)
    for (int o = 0; o < OUT; o++)
      {
        double s = 0.0;

        for (int c = 0; c < IN; c++)
          s += (double) x[i * IN + c] * w[o * IN + c];
        ref[i * OUT + o] = s;
      }

  bx = buffer_from (backend, x, N * IN);
  bw = buffer_from (backend, w, OUT * IN);
  bb = buffer_from (backend, bias, OUT);
  by = buffer_from (backend, NULL, N * OUT);

  /* y = x·wᵀ + b, then y += x·wᵀ + b */
  bl_backend_matmul (backend, by, bx, bw, bb, N, IN, OUT, FALSE);
  bl_backend_matmul (backend, by, bx, bw, bb, N, IN, OUT, TRUE);
  g_assert_true (bl_backend_download (backend, by, 0, y, N * OUT, NULL));
  for (int i = 0; i < N * OUT; i++)
    max_diff = MAX (max_diff, fabs (y[i] - 2.0 * (ref[i] + bias[i % OUT])));
  g_assert_cmpfloat (max_diff, <, 1e-4);

  /* the fused projection + log-softmax over rows 3..N−1, across vocabulary slices */
  g_assert_true (bl_backend_nll (backend, bx, bw, 3, N - 3, IN, OUT, targets + 3, nll, NULL));
  for (int i = 3; i < N; i++)
    {
      const double *row = ref + (size_t) i * OUT;
      double max = -INFINITY;
      double sum = 0.0;

      for (int o = 0; o < OUT; o++)
        max = MAX (max, row[o]);
      for (int o = 0; o < OUT; o++)
        sum += exp (row[o] - max);
      g_assert_cmpfloat_with_epsilon (nll[i - 3], max + log (sum) - row[targets[i]], 1e-4);
    }

  bl_backend_buffer_free (backend, bx);
  bl_backend_buffer_free (backend, bw);
  bl_backend_buffer_free (backend, bb);
  bl_backend_buffer_free (backend, by);
}

/* The polynomial exponential within 2.5 ulp of e^x over the range the kernels use, and the
 * softmax and SwiGLU kernels (vector body and scalar tail) against double references. */
static void
test_cpu_kernels (void)
{
  g_autoptr(GRand) rand = g_rand_new_with_seed (3);
  double worst = 0.0;

  for (int i = 0; i <= 200000; i++)
    {
      double x = -87.0 + 175.0 * i / 200000.0;
      double ref = exp ((double) (float) x);

      worst = MAX (worst, fabs (bl_cpu_expf ((float) x) - ref) / ref);
    }
  g_test_message ("polynomial expf: max relative error %.3g", worst);
  g_assert_cmpfloat (worst, <, 2.5 * FLT_EPSILON);

  for (int n = 1; n < 300; n += 7)
    {
      g_autofree float *p = g_new (float, n);
      g_autofree float *gate = g_new (float, n);
      g_autofree float *up = g_new (float, n);
      g_autofree float *src = g_new (float, n);
      double max = -INFINITY;
      double sum = 0.0;
      float lse_max = -INFINITY;
      double lse_sum = 0.0;

      fill_random (rand, src, n, 30.0);
      fill_random (rand, gate, n, 12.0);
      fill_random (rand, up, n, 2.0);
      memcpy (p, src, n * sizeof (float));
      bl_cpu_softmax_row (p, n);
      for (int j = 0; j < n; j++)
        max = MAX (max, src[j]);
      for (int j = 0; j < n; j++)
        sum += exp (src[j] - max);
      for (int j = 0; j < n; j++)
        g_assert_cmpfloat_with_epsilon (p[j], exp (src[j] - max) / sum, 1e-6);

      /* two halves through the online update equal the whole */
      bl_cpu_logsumexp_update (src, n / 2, &lse_max, &lse_sum);
      bl_cpu_logsumexp_update (src + n / 2, n - n / 2, &lse_max, &lse_sum);
      g_assert_cmpfloat_with_epsilon (lse_max + log (lse_sum), max + log (sum), 1e-6);

      memcpy (p, gate, n * sizeof (float));
      bl_cpu_swiglu (p, p, up, n);
      for (int j = 0; j < n; j++)
        g_assert_cmpfloat_with_epsilon (p[j], gate[j] / (1.0 + exp (-(double) gate[j])) * up[j],
                                        1e-5);
    }
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_data_func ("/bitlens/engine/stories260k/logits", &stories260k, test_golden_logits);
  g_test_add_data_func ("/bitlens/engine/stories260k/greedy", &stories260k, test_golden_greedy);
  g_test_add_data_func ("/bitlens/engine/tinystories-656k/logits", &tinystories656k,
                        test_golden_logits);
  g_test_add_data_func ("/bitlens/engine/tinystories-656k/greedy", &tinystories656k,
                        test_golden_greedy);
  g_test_add_func ("/bitlens/engine/stories260k/nll-matches-logits", test_nll_matches_logits);
  g_test_add_func ("/bitlens/engine/stories260k/wikitext-ppl", test_stories260k_wikitext);
  g_test_add_func ("/bitlens/engine/tinystories-656k/check-text-ppl",
                   test_tinystories_check_text);
  g_test_add_data_func ("/bitlens/engine/fixture/qwen2-gqa", "qwen2-gqa", test_fixture);
  g_test_add_data_func ("/bitlens/engine/fixture/llama-tied-bf16", "llama-tied-bf16",
                        test_fixture);
  g_test_add_data_func ("/bitlens/engine/fixture/mistral-swa", "mistral-swa", test_fixture);
  g_test_add_data_func ("/bitlens/engine/fixture/qwen2-swa", "qwen2-swa", test_fixture);
  g_test_add_data_func ("/bitlens/engine/fixture/llama3-rope", "llama3-rope", test_fixture);
  g_test_add_data_func ("/bitlens/engine/fixture/llama-linear-rope", "llama-linear-rope", test_fixture);
  g_test_add_data_func ("/bitlens/engine/fixture/llama-bias-f16", "llama-bias-f16",
                        test_fixture);
  g_test_add_func ("/bitlens/engine/hooks/weight-transform", test_hook_weight_transform);
  g_test_add_func ("/bitlens/engine/hooks/tied-head", test_hook_tied_head);
  g_test_add_func ("/bitlens/engine/hooks/activation", test_hook_activation);
  g_test_add_func ("/bitlens/engine/cancel", test_cancel);
  g_test_add_func ("/bitlens/engine/invalid-arguments", test_invalid_arguments);
  g_test_add_func ("/bitlens/engine/shape-mismatch", test_shape_mismatch);
  g_test_add_func ("/bitlens/backend/registry", test_registry);
  g_test_add_data_func ("/bitlens/backend/cpu/attention", GINT_TO_POINTER (0), test_cpu_attention);
  g_test_add_data_func ("/bitlens/backend/cpu/attention/window-1", GINT_TO_POINTER (1),
                        test_cpu_attention);
  g_test_add_data_func ("/bitlens/backend/cpu/attention/window-77", GINT_TO_POINTER (77),
                        test_cpu_attention);
  g_test_add_data_func ("/bitlens/backend/cpu/attention/window-200", GINT_TO_POINTER (200),
                        test_cpu_attention);
  g_test_add_func ("/bitlens/backend/cpu/matmul-nll", test_cpu_matmul_nll);
  g_test_add_func ("/bitlens/backend/cpu/kernels", test_cpu_kernels);

  return g_test_run ();
}
