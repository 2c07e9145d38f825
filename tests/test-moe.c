/* test-moe.c: MoE naming, the sparse forward pass, per-expert statistics, routing frequency
 * and MC-MoE's PMQ allocation
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include <json-glib/json-glib.h>
#include <math.h>
#include <string.h>

#include "bl-engine.h"
#include "bl-error.h"
#include "bl-model-config.h"
#include "bl-moe.h"
#include "bl-protocol.h"

#define N_THREADS 1

/* Helpers */

typedef struct
{
  JsonParser *parser;
  JsonObject *expected;
  BlModel *model;
  int32_t *ids;
  int n;
  int vocab;
} Fixture;

static void
fixture_clear (Fixture *f)
{
  g_clear_object (&f->parser);
  g_clear_object (&f->model);
  g_clear_pointer (&f->ids, g_free);
}

/* Loads tests/fixtures/tiny-moe-@variant (tools/make-tiny-moe) and its expected.json. */
static void
fixture_load (Fixture    *f,
              const char *variant)
{
  g_autofree char *name = g_strdup_printf ("tiny-moe-%s", variant);
  g_autofree char *dir = g_test_build_filename (G_TEST_DIST, "fixtures", name, NULL);
  g_autofree char *path = g_build_filename (dir, "expected.json", NULL);
  g_autoptr(GError) error = NULL;
  JsonArray *ids;

  f->parser = json_parser_new ();
  g_assert_true (json_parser_load_from_file (f->parser, path, &error));
  g_assert_no_error (error);
  f->expected = json_node_get_object (json_parser_get_root (f->parser));
  ids = json_object_get_array_member (f->expected, "ids");
  f->n = (int) json_array_get_length (ids);
  f->vocab = (int) json_object_get_int_member (f->expected, "vocab_size");
  f->ids = g_new (int32_t, f->n);
  for (int i = 0; i < f->n; i++)
    f->ids[i] = (int32_t) json_array_get_int_element (ids, i);
  f->model = bl_model_load (dir, NULL, &error);
  g_assert_no_error (error);
}

static BlBackend *
cpu_backend_new (void)
{
  g_autoptr(GError) error = NULL;
  BlBackend *backend = bl_backend_new ("cpu", N_THREADS, &error);

  g_assert_no_error (error);
  return backend;
}

/* The whole id sequence as one window; the array is freed at the end of the test. */
static GArray *
one_window (int n)
{
  GArray *windows = g_array_new (FALSE, TRUE, sizeof (BlWindow));
  BlWindow w = { 0, n, 1, FALSE };

  g_array_append_val (windows, w);
  g_test_queue_destroy ((GDestroyNotify) g_array_unref, windows);
  return windows;
}

/* Naming */

static void
test_parse_names (void)
{
  BlMoeName n;
  struct { const char *name; BlMoeStyle style; int block; int expert; BlMoeRole role; } ok[] = {
    { "model.layers.0.block_sparse_moe.gate.weight", BL_MOE_STYLE_MIXTRAL, 0, -1,
      BL_MOE_ROLE_ROUTER },
    { "model.layers.55.block_sparse_moe.experts.7.w1.weight", BL_MOE_STYLE_MIXTRAL, 55, 7,
      BL_MOE_ROLE_GATE },
    { "model.layers.3.block_sparse_moe.experts.12.w2.weight", BL_MOE_STYLE_MIXTRAL, 3, 12,
      BL_MOE_ROLE_DOWN },
    { "model.layers.3.block_sparse_moe.experts.0.w3.weight", BL_MOE_STYLE_MIXTRAL, 3, 0,
      BL_MOE_ROLE_UP },
    { "model.layers.2.mlp.gate.weight", BL_MOE_STYLE_QWEN2_MOE, 2, -1, BL_MOE_ROLE_ROUTER },
    { "model.layers.2.mlp.experts.59.up_proj.weight", BL_MOE_STYLE_QWEN2_MOE, 2, 59,
      BL_MOE_ROLE_UP },
    { "model.layers.2.mlp.shared_expert.down_proj.weight", BL_MOE_STYLE_QWEN2_MOE, 2,
      BL_MOE_SHARED_EXPERT, BL_MOE_ROLE_DOWN },
    { "model.layers.2.mlp.shared_expert_gate.weight", BL_MOE_STYLE_QWEN2_MOE, 2, -1,
      BL_MOE_ROLE_SHARED_GATE },
  };
  const char *not_moe[] = {
    "model.layers.0.mlp.gate_proj.weight", "model.layers.0.self_attn.q_proj.weight",
    "lm_head.weight", "model.layers.0.block_sparse_moe.experts.1.w4.weight",
    "model.layers.x.block_sparse_moe.gate.weight", "model.layers.0.mlp.experts.1.gate_proj.bias",
  };

  for (guint i = 0; i < G_N_ELEMENTS (ok); i++)
    {
      g_autofree char *back = NULL;

      g_assert_true (bl_moe_parse_name (ok[i].name, &n));
      g_assert_cmpint (n.style, ==, ok[i].style);
      g_assert_cmpint (n.block, ==, ok[i].block);
      g_assert_cmpint (n.expert, ==, ok[i].expert);
      g_assert_cmpint (n.role, ==, ok[i].role);
      back = bl_moe_tensor_name (n.style, n.block, n.expert, n.role);
      g_assert_cmpstr (back, ==, ok[i].name);
    }
  for (guint i = 0; i < G_N_ELEMENTS (not_moe); i++)
    g_assert_false (bl_moe_parse_name (not_moe[i], &n));
}

/* The shared Mixtral 8x22B index: 56 blocks × 8 experts × 3 projections. */
static void
test_reference_index (void)
{
  const char *shared = g_getenv ("BITLENS_SHARED_DIR");
  g_autofree char *dir = NULL;
  g_autofree char *index = NULL;
  g_autofree char *config_path = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(BlMoeLayout) layout = NULL;
  g_autoptr(BlModelConfig) config = NULL;

  if (shared == NULL)
    {
      g_test_skip ("BITLENS_SHARED_DIR is not set; the Mixtral 8x22B reference index is needed");
      return;
    }
  dir = g_build_filename (shared, "models", "moe-reference-mixtral-8x22b", NULL);
  index = g_build_filename (dir, "model.safetensors.index.json", NULL);
  config_path = g_build_filename (dir, "config.json", NULL);
  if (!g_file_test (index, G_FILE_TEST_EXISTS))
    {
      g_test_skip_printf ("%s is missing", index);
      return;
    }

  layout = bl_moe_layout_new_from_index (index, &error);
  g_assert_no_error (error);
  g_assert_cmpint (layout->style, ==, BL_MOE_STYLE_MIXTRAL);
  g_assert_cmpuint (layout->blocks->len, ==, 56);
  g_assert_cmpuint (layout->n_expert_tensors, ==, 56 * 8 * 3);
  for (guint i = 0; i < layout->blocks->len; i++)
    {
      const BlMoeBlockLayout *b = &g_array_index (layout->blocks, BlMoeBlockLayout, i);

      g_assert_cmpint (b->block, ==, (int) i);
      g_assert_cmpint (b->n_experts, ==, 8);
      g_assert_cmpint (b->n_roles, ==, 3);
      g_assert_true (b->has_router);
      g_assert_false (b->has_shared_expert);
      g_assert_true (b->complete);
    }

  config = bl_model_config_new_from_file (config_path, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (config->model_type, ==, "mixtral");
  g_assert_cmpint (config->n_experts, ==, 8);
  g_assert_cmpint (config->n_experts_per_tok, ==, 2);
  g_assert_true (config->norm_topk_prob);
  g_assert_cmpint (config->moe_intermediate_size, ==, 16384);
  g_assert_cmpint (bl_moe_config_style (config), ==, BL_MOE_STYLE_MIXTRAL);
}

static void
test_layout_mixed (void)
{
  const char *names[] = { "model.layers.0.block_sparse_moe.experts.0.w1.weight",
                          "model.layers.0.mlp.experts.0.gate_proj.weight" };
  const char *partial[] = { "model.layers.1.mlp.experts.0.gate_proj.weight",
                            "model.layers.1.mlp.experts.0.up_proj.weight",
                            "model.layers.1.mlp.experts.1.gate_proj.weight",
                            "model.layers.1.mlp.shared_expert.up_proj.weight",
                            "model.norm.weight" };
  g_autoptr(GError) error = NULL;
  g_autoptr(BlMoeLayout) layout = bl_moe_layout_new_from_names (names, 2, &error);
  const BlMoeBlockLayout *b;

  g_assert_error (error, BL_ERROR, BL_ERROR_UNSUPPORTED_ARCHITECTURE);
  g_assert_null (layout);
  g_clear_error (&error);

  layout = bl_moe_layout_new_from_names (partial, G_N_ELEMENTS (partial), &error);
  g_assert_no_error (error);
  g_assert_cmpint (layout->style, ==, BL_MOE_STYLE_QWEN2_MOE);
  g_assert_cmpuint (layout->blocks->len, ==, 1);
  g_assert_cmpuint (layout->n_other_tensors, ==, 1);
  b = &g_array_index (layout->blocks, BlMoeBlockLayout, 0);
  g_assert_cmpint (b->n_experts, ==, 2);
  g_assert_cmpint (b->n_roles, ==, 2);
  g_assert_true (b->has_shared_expert);
  g_assert_false (b->has_router);
  g_assert_false (b->complete);
}

/* config.json of the MoE families: the config classes' defaults, and what is refused */
static void
test_config (void)
{
  const char *qwen = "{\"model_type\": \"qwen2_moe\", \"vocab_size\": 10, \"hidden_size\": 8, "
                     "\"intermediate_size\": 16, \"num_hidden_layers\": 1, "
                     "\"num_attention_heads\": 2";
  struct { const char *extra; int code; } refused[] = {
    { ", \"decoder_sparse_step\": 2", BL_ERROR_UNSUPPORTED_ARCHITECTURE },
    { ", \"mlp_only_layers\": [0]", BL_ERROR_UNSUPPORTED_ARCHITECTURE },
    { ", \"num_experts\": 2, \"num_experts_per_tok\": 3", BL_ERROR_CORRUPT_FILE },
  };
  g_autoptr(GError) error = NULL;
  g_autofree char *text = g_strconcat (qwen, ", \"mlp_only_layers\": []}", NULL);
  g_autoptr(BlModelConfig) c = bl_model_config_new_from_data (text, strlen (text), "config.json",
                                                               &error);

  g_assert_no_error (error);
  g_assert_cmpint (c->n_experts, ==, 60);
  g_assert_cmpint (c->n_experts_per_tok, ==, 4);
  g_assert_cmpint (c->moe_intermediate_size, ==, 1408);
  g_assert_cmpint (c->shared_expert_intermediate_size, ==, 5632);
  g_assert_false (c->norm_topk_prob);
  g_assert_true (c->attention_bias);
  g_assert_cmpint (bl_moe_config_style (c), ==, BL_MOE_STYLE_QWEN2_MOE);

  for (guint i = 0; i < G_N_ELEMENTS (refused); i++)
    {
      g_autofree char *bad = g_strconcat (qwen, refused[i].extra, "}", NULL);
      g_autoptr(BlModelConfig) none = bl_model_config_new_from_data (bad, strlen (bad),
                                                                     "config.json", &error);

      g_assert_error (error, BL_ERROR, refused[i].code);
      g_assert_null (none);
      g_clear_error (&error);
    }
}

/* The forward pass against the PyTorch reference */

static void
test_forward (gconstpointer data)
{
  const char *variant = data;
  Fixture f = { 0 };
  g_autoptr(GError) error = NULL;
  g_autoptr(BlBackend) backend = cpu_backend_new ();
  g_autoptr(BlEngine) engine = NULL;
  g_autofree float *logits = NULL;
  g_autofree double *nll = NULL;
  JsonArray *ref_logits;
  JsonArray *ref_nll;
  double max_diff = 0.0, max_ref = 0.0, max_nll = 0.0;

  fixture_load (&f, variant);
  engine = bl_engine_new (f.model, backend, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (bl_engine_get_vocab_size (engine), ==, f.vocab);

  ref_logits = json_object_get_array_member (f.expected, "logits");
  g_assert_cmpuint (json_array_get_length (ref_logits), ==, (guint) (f.n * f.vocab));
  logits = g_new (float, (size_t) f.n * f.vocab);
  g_assert_true (bl_engine_forward (engine, f.ids, f.n, logits, NULL, &error));
  g_assert_no_error (error);
  for (int i = 0; i < f.n * f.vocab; i++)
    {
      double ref = json_array_get_double_element (ref_logits, i);

      max_diff = MAX (max_diff, fabs (logits[i] - ref));
      max_ref = MAX (max_ref, fabs (ref));
    }
  g_test_message ("%s: logits max |Δ| / max |ref| = %.3g", variant, max_diff / max_ref);
  g_assert_cmpfloat (max_diff / max_ref, <=, 1e-5);

  ref_nll = json_object_get_array_member (f.expected, "nll");
  nll = g_new (double, f.n - 1);
  g_assert_true (bl_engine_nll (engine, f.ids, f.n, 1, nll, NULL, &error));
  g_assert_no_error (error);
  for (int i = 0; i < f.n - 1; i++)
    max_nll = MAX (max_nll, fabs (nll[i] - json_array_get_double_element (ref_nll, i)));
  g_test_message ("%s: NLL max |Δ| = %.3g nats", variant, max_nll);
  g_assert_cmpfloat (max_nll, <, 1e-4);
  fixture_clear (&f);
}

/* Routing against the PyTorch reference */

typedef struct
{
  GArray *experts[8];         /* int, per block */
  GArray *weights[8];         /* float */
} Recorded;

static void
record_routing (int          block,
                const int   *experts,
                const float *weights,
                int          n_tokens,
                int          n_experts,
                int          top_k,
                gpointer     user_data)
{
  Recorded *r = user_data;

  g_assert_cmpint (block, <, 8);
  g_array_append_vals (r->experts[block], experts, n_tokens * top_k);
  g_array_append_vals (r->weights[block], weights, n_tokens * top_k);
}

static void
test_routing (gconstpointer data)
{
  const char *variant = data;
  Fixture f = { 0 };
  g_autoptr(GError) error = NULL;
  g_autoptr(BlBackend) backend = cpu_backend_new ();
  g_autoptr(BlEngine) engine = NULL;
  g_autoptr(BlMoeProfile) profile = NULL;
  BlEngineHooks hooks = { 0 };
  Recorded rec;
  JsonArray *routing;
  const BlModelConfig *c;
  BlFormatSpec bf16;

  g_assert_true (bl_format_spec_parse ("bf16", &bf16, NULL));
  fixture_load (&f, variant);
  c = bl_model_get_config (f.model);
  for (int b = 0; b < 8; b++)
    {
      rec.experts[b] = g_array_new (FALSE, FALSE, sizeof (int));
      rec.weights[b] = g_array_new (FALSE, FALSE, sizeof (float));
    }
  hooks.routing = record_routing;
  hooks.user_data = &rec;
  engine = bl_engine_new (f.model, backend, &hooks, &error);
  g_assert_no_error (error);
  g_assert_true (bl_engine_forward (engine, f.ids, f.n, NULL, NULL, &error));
  g_assert_no_error (error);

  profile = bl_moe_profile_new (f.model, 64, &error);
  g_assert_no_error (error);
  g_assert_true (bl_moe_profile_run (profile, backend, f.ids, f.n, one_window (f.n), NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (bl_moe_profile_get_n_blocks (profile), ==, (guint) c->n_layers);

  routing = json_object_get_array_member (f.expected, "routing");
  g_assert_cmpuint (json_array_get_length (routing), ==, (guint) c->n_layers);
  for (int b = 0; b < c->n_layers; b++)
    {
      JsonObject *ref = json_array_get_object_element (routing, b);
      JsonArray *experts = json_object_get_array_member (ref, "experts");
      JsonArray *weights = json_object_get_array_member (ref, "weights");
      JsonArray *tokens = json_object_get_array_member (ref, "tokens");
      JsonArray *freq = json_object_get_array_member (ref, "frequency");
      JsonArray *mean_w = json_object_get_array_member (ref, "mean_weight");
      const BlMoeBlockRouting *r = bl_moe_profile_get_block (profile, b);
      int k = c->n_experts_per_tok;

      /* every token's choice, in order, and its weight */
      g_assert_cmpuint (rec.experts[b]->len, ==, (guint) (f.n * k));
      for (int t = 0; t < f.n; t++)
        {
          JsonArray *te = json_array_get_array_element (experts, t);
          JsonArray *tw = json_array_get_array_element (weights, t);

          for (int j = 0; j < k; j++)
            {
              g_assert_cmpint (g_array_index (rec.experts[b], int, t * k + j), ==,
                               json_array_get_int_element (te, j));
              g_assert_cmpfloat_with_epsilon (g_array_index (rec.weights[b], float, t * k + j),
                                              json_array_get_double_element (tw, j), 1e-6);
            }
        }

      g_assert_cmpint (r->n_tokens, ==, f.n);
      g_assert_cmpint (r->n_experts, ==, c->n_experts);
      g_assert_cmpint (r->top_k, ==, k);
      for (int e = 0; e < c->n_experts; e++)
        {
          g_assert_cmpint (r->experts[e].tokens, ==, json_array_get_int_element (tokens, e));
          g_assert_cmpfloat_with_epsilon (r->experts[e].frequency,
                                          json_array_get_double_element (freq, e), 1e-12);
          g_assert_cmpfloat_with_epsilon (r->experts[e].mean_weight,
                                          json_array_get_double_element (mean_w, e), 1e-6);
        }
      g_assert_cmpfloat_with_epsilon (r->load_std,
                                      json_object_get_double_member (ref, "load_std"), 1e-12);

      /* ε_e(bf16) through the captured routed inputs against PyTorch's */
      for (int e = 0; e < c->n_experts; e++)
        {
          double want = json_array_get_double_element (
            json_object_get_array_member (ref, "eps_bf16"), e);
          double eps;

          g_assert_true (bl_moe_profile_expert_loss (profile, b, e, &bf16, &eps, &error));
          g_assert_no_error (error);
          if (want == 0.0)
            g_assert_cmpfloat (eps, ==, 0.0);
          else
            g_assert_cmpfloat (fabs (eps / want - 1.0), <, 1e-3);
        }
      g_test_message ("%s block %d: load-balance std %.4f", variant, b, r->load_std);
    }

  for (int b = 0; b < 8; b++)
    {
      g_array_unref (rec.experts[b]);
      g_array_unref (rec.weights[b]);
    }
  fixture_clear (&f);
}

/* Per-expert weight statistics */

static void
test_weight_stats (gconstpointer data)
{
  const char *variant = data;
  Fixture f = { 0 };
  g_autoptr(GError) error = NULL;
  g_autoptr(GArray) stats = NULL;
  g_autoptr(GArray) stats8 = NULL;
  BlFormatSpec int3, int8;
  JsonArray *ref;
  guint n_routed;

  fixture_load (&f, variant);
  g_assert_true (bl_format_spec_parse ("int3:g16:asym", &int3, &error));
  g_assert_true (bl_format_spec_parse ("int8:channel", &int8, &error));
  stats = bl_moe_weight_stats (f.model, &int3, NULL, &error);
  g_assert_no_error (error);
  stats8 = bl_moe_weight_stats (f.model, &int8, NULL, &error);
  g_assert_no_error (error);

  ref = json_object_get_array_member (f.expected, "weights");
  n_routed = json_array_get_length (ref);
  /* the routed experts first, block by block; Qwen2-MoE's shared expert follows each block's */
  for (guint i = 0, j = 0; i < stats->len; i++)
    {
      const BlMoeWeightStats *s = &g_array_index (stats, BlMoeWeightStats, i);
      JsonObject *o;

      g_assert_cmpfloat (g_array_index (stats8, BlMoeWeightStats, i).qsnr_db, >, s->qsnr_db);
      g_assert_cmpfloat (s->qsnr_db, >, 5.0);
      if (s->expert == BL_MOE_SHARED_EXPERT)
        continue;
      g_assert_cmpuint (j, <, n_routed);
      o = json_array_get_object_element (ref, j++);
      g_assert_cmpstr (s->name, ==, json_object_get_string_member (o, "name"));
      g_assert_cmpint (s->block, ==, json_object_get_int_member (o, "block"));
      g_assert_cmpint (s->expert, ==, json_object_get_int_member (o, "expert"));
      g_assert_cmpfloat (fabs (s->rms / json_object_get_double_member (o, "rms") - 1), <, 1e-9);
      g_assert_cmpfloat (fabs (s->absmax / json_object_get_double_member (o, "absmax") - 1), <,
                         1e-9);
      g_assert_cmpfloat (fabs (s->kurtosis / json_object_get_double_member (o, "kurtosis") - 1),
                         <, 1e-9);
      g_assert_cmpfloat (fabs (s->crest / json_object_get_double_member (o, "crest") - 1), <,
                         1e-9);
    }
  g_assert_cmpuint (stats->len, ==, n_routed + (g_str_equal (variant, "qwen2") ? 2 * 3 : 0));
  fixture_clear (&f);
}

static void
test_dense_refused (void)
{
  g_autofree char *dir = g_test_build_filename (G_TEST_DIST, "fixtures", "tiny-llama",
                                                "qwen2-gqa", NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(BlModel) model = bl_model_load (dir, NULL, &error);
  g_autoptr(GArray) stats = NULL;
  g_autoptr(BlMoeProfile) profile = NULL;

  g_assert_no_error (error);
  stats = bl_moe_weight_stats (model, NULL, NULL, &error);
  g_assert_error (error, BL_ERROR, BL_ERROR_UNSUPPORTED_ARCHITECTURE);
  g_assert_null (stats);
  g_clear_error (&error);
  profile = bl_moe_profile_new (model, 0, &error);
  g_assert_error (error, BL_ERROR, BL_ERROR_UNSUPPORTED_ARCHITECTURE);
  g_assert_null (profile);
}

/* Expert weights are linear layers: the weight hook sees them and bl_engine_set_weight()
 * replaces them. */

static void
quantize_one_expert (const char  *layer_name,
                     BlLayerKind  kind,
                     float       *w,
                     int64_t      rows,
                     int64_t      cols,
                     gpointer     user_data)
{
  BlFormatSpec spec;

  if (strstr (layer_name, ".experts.1.") == NULL || strncmp (layer_name, "model.layers.0.", 15))
    return;
  (*(int *) user_data)++;
  g_assert_true (bl_format_spec_parse ("int2:g16:asym", &spec, NULL));
  g_assert_true (bl_format_fake_quant_reference (&spec, w, w, rows, cols, NULL));
}

static void
test_expert_weights (void)
{
  Fixture f = { 0 };
  g_autoptr(GError) error = NULL;
  g_autoptr(BlBackend) backend = cpu_backend_new ();
  g_autoptr(BlEngine) hooked = NULL;
  g_autoptr(BlEngine) swapped = NULL;
  g_autofree float *a = NULL;
  g_autofree float *b = NULL;
  BlEngineHooks hooks = { 0 };
  BlFormatSpec spec;
  int n_hooked = 0;

  fixture_load (&f, "mixtral");
  hooks.weight_transform = quantize_one_expert;
  hooks.user_data = &n_hooked;
  hooked = bl_engine_new (f.model, backend, &hooks, &error);
  g_assert_no_error (error);
  g_assert_cmpint (n_hooked, ==, 3);
  swapped = bl_engine_new (f.model, backend, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (bl_format_spec_parse ("int2:g16:asym", &spec, NULL));
  for (int r = BL_MOE_ROLE_GATE; r <= BL_MOE_ROLE_DOWN; r++)
    {
      g_autofree char *name = bl_moe_tensor_name (BL_MOE_STYLE_MIXTRAL, 0, 1, r);
      const BlTensor *t = bl_model_get_tensor (f.model, name);
      g_autofree float *w = g_new (float, t->n_elements);

      bl_tensor_to_f32 (t, w);
      g_assert_true (bl_format_fake_quant_reference (&spec, w, w, t->shape[0], t->shape[1],
                                                     NULL));
      g_assert_true (bl_engine_set_weight (swapped, name, w, &error));
      g_assert_no_error (error);
    }
  a = g_new (float, (size_t) f.n * f.vocab);
  b = g_new (float, (size_t) f.n * f.vocab);
  g_assert_true (bl_engine_forward (hooked, f.ids, f.n, a, NULL, &error));
  g_assert_true (bl_engine_forward (swapped, f.ids, f.n, b, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpmem (a, sizeof (float) * f.n * f.vocab, b, sizeof (float) * f.n * f.vocab);
  fixture_clear (&f);
}

/* PMQ */

static void
check_choice (const BlMoePmqProblem *p,
              const int             *choice,
              double                 objective)
{
  double cost = 0.0, loss = 0.0;
  int at_top = 0, at_second = 0;

  for (int e = 0; e < p->n_experts; e++)
    {
      g_assert_cmpint (choice[e], >=, 0);
      g_assert_cmpint (choice[e], <, p->n_options);
      cost += p->cost[choice[e]];
      loss += p->importance[e] * p->loss[e * p->n_options + choice[e]] * 1000.0;
      at_top += choice[e] == p->n_options - 1;
      at_second += choice[e] == p->n_options - 2;
    }
  g_assert_cmpfloat (cost, <=, p->budget);
  if (p->n_required >= 1)
    g_assert_cmpint (at_top, >=, 1);
  if (p->n_required >= 2)
    g_assert_cmpint (at_second, >=, 1);
  g_assert_cmpfloat (fabs (loss - objective), <=, 1e-9 * MAX (1.0, fabs (objective)));
}

static void
test_pmq_brute_force (void)
{
  GRand *rand = g_rand_new_with_seed (20241008);
  int n_feasible = 0, n_infeasible = 0;

  for (int iter = 0; iter < 3000; iter++)
    {
      BlMoePmqProblem p = { 0 };
      double importance[7], loss[7 * 4], cost[4];
      int dp[7], bf[7];
      double dp_obj = 0.0, bf_obj = 0.0, min_cost = 0.0, max_cost = 0.0;
      g_autoptr(GError) error = NULL;
      gboolean dp_ok, bf_ok;

      p.n_experts = g_rand_int_range (rand, 1, 8);
      p.n_options = g_rand_int_range (rand, 1, 5);
      p.n_required = MIN (2, MIN (p.n_options, p.n_experts));
      /* ascending costs, with ties now and then (MC-MoE's are integers 1, 2, 3) */
      cost[0] = g_rand_int_range (rand, 1, 3);
      for (int o = 1; o < p.n_options; o++)
        cost[o] = cost[o - 1] + (g_rand_int_range (rand, 0, 4) == 0 ? 0.0
                                 : g_rand_double_range (rand, 0.1, 2.0));
      for (int e = 0; e < p.n_experts; e++)
        {
          /* some experts never routed (importance 0); losses fall with bits but not always */
          importance[e] = g_rand_int_range (rand, 0, 5) == 0 ? 0.0 : g_rand_double (rand);
          for (int o = 0; o < p.n_options; o++)
            loss[e * p.n_options + o] = g_rand_int_range (rand, 0, 6) == 0
                                        ? 0.5 : g_rand_double (rand) / (o + 1);
        }
      min_cost = cost[0] * p.n_experts;
      max_cost = cost[p.n_options - 1] * p.n_experts;
      p.importance = importance;
      p.loss = loss;
      p.cost = cost;
      p.budget = g_rand_double_range (rand, min_cost - 1.0, max_cost + 0.5);

      dp_ok = bl_moe_pmq_solve (&p, dp, &dp_obj, &error);
      bf_ok = bl_moe_pmq_brute_force (&p, bf, &bf_obj);
      g_assert_cmpint (dp_ok, ==, bf_ok);
      if (!dp_ok)
        {
          g_assert_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT);
          n_infeasible++;
          continue;
        }
      g_assert_no_error (error);
      n_feasible++;
      check_choice (&p, dp, dp_obj);
      check_choice (&p, bf, bf_obj);
      g_assert_cmpfloat (fabs (dp_obj - bf_obj), <=, 1e-9 * MAX (1.0, bf_obj));
    }
  g_test_message ("%d feasible and %d infeasible random instances agree", n_feasible,
                  n_infeasible);
  g_assert_cmpint (n_feasible, >, 1000);
  g_assert_cmpint (n_infeasible, >, 50);
  g_rand_free (rand);
}

/* MC-MoE's example: 8 experts, 1/2/3 bits, C = 20 total bits. Without the constraints the
 * losses below would put every expert at 2 or 3 bits by importance; with them, one expert at
 * 3 bits and one at 2 are forced even where another choice was cheaper. */
static void
test_pmq_constraints (void)
{
  double cost[3] = { 1, 2, 3 };
  double importance[8] = { 0.5, 0.2, 0.1, 0.1, 0.05, 0.05, 0.0, 0.0 };
  double loss[8 * 3];
  int choice[8];
  double objective;
  BlMoePmqProblem p = { 8, 3, importance, loss, cost, 20.0, 2 };
  g_autoptr(GError) error = NULL;
  int bits = 0;

  for (int e = 0; e < 8; e++)
    {
      loss[e * 3 + 0] = 1.0;
      loss[e * 3 + 1] = 0.3;
      loss[e * 3 + 2] = 0.1;
    }
  g_assert_true (bl_moe_pmq_solve (&p, choice, &objective, &error));
  g_assert_no_error (error);
  check_choice (&p, choice, objective);
  for (int e = 0; e < 8; e++)
    bits += (int) cost[choice[e]];
  g_assert_cmpint (bits, <=, 20);
  /* the most important experts get the most bits */
  g_assert_cmpint (choice[0], ==, 2);
  g_assert_cmpint (choice[7], <=, choice[1]);

  /* a budget too small for the constraints: 8 experts at 1 bit plus 1 + 2 extra bits = 11 */
  p.budget = 10.0;
  g_assert_false (bl_moe_pmq_solve (&p, choice, &objective, &error));
  g_assert_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  p.budget = 11.0;
  g_assert_true (bl_moe_pmq_solve (&p, choice, &objective, &error));
  g_assert_no_error (error);
  check_choice (&p, choice, objective);

  /* a menu out of order is refused */
  cost[1] = 0.5;
  g_assert_false (bl_moe_pmq_solve (&p, choice, &objective, &error));
  g_assert_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT);
}

/* The allocation on the fixture, its plan, and the plan's round trip */

static void
test_pmq_plan (void)
{
  const char *menu[] = { "binary:g128", "int2:g128:asym", "int3:g128:asym", NULL };
  Fixture f = { 0 };
  g_autoptr(GError) error = NULL;
  g_autoptr(BlBackend) backend = cpu_backend_new ();
  g_autoptr(BlMoeProfile) profile = NULL;
  g_autoptr(GArray) blocks = NULL;
  g_autoptr(BlQuantPlan) plan = NULL;
  g_autoptr(BlQuantPlan) back = NULL;
  g_autoptr(GPtrArray) resolved = NULL;
  g_autofree char *json = NULL;
  g_autofree char *json2 = NULL;
  g_autofree int *choice = NULL;
  const BlModelConfig *c;
  guint n_expert_layers = 0;
  BlFormatSpec int8;

  g_assert_true (bl_format_spec_parse ("int8:channel", &int8, NULL));
  fixture_load (&f, "mixtral");
  c = bl_model_get_config (f.model);
  profile = bl_moe_profile_new (f.model, 256, &error);
  g_assert_no_error (error);
  g_assert_true (bl_moe_profile_run (profile, backend, f.ids, f.n, one_window (f.n), NULL, &error));
  g_assert_no_error (error);
  blocks = bl_moe_pmq_allocate (profile, menu, 2.5, 1.0, 1.5, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (blocks->len, ==, (guint) c->n_layers);

  choice = g_new (int, c->n_layers * c->n_experts);
  for (guint i = 0; i < blocks->len; i++)
    {
      const BlMoePmqBlock *b = &g_array_index (blocks, BlMoePmqBlock, i);
      const BlMoeBlockRouting *r = bl_moe_profile_get_block (profile, i);
      BlMoePmqProblem p = { b->n_experts, b->n_options, b->importance, b->loss, b->cost,
                            2.5 * b->n_experts, 2 };
      int bf[8];
      double bf_obj;
      double f_sum = 0.0;

      g_assert_cmpfloat (b->avg_bits, <=, 2.5);
      g_assert_true (bl_moe_pmq_brute_force (&p, bf, &bf_obj));
      g_assert_cmpfloat (fabs (b->objective - bf_obj), <=, 1e-9 * MAX (1.0, bf_obj));
      for (int e = 0; e < b->n_experts; e++)
        {
          f_sum += b->frequency[e];
          choice[i * c->n_experts + e] = b->choice[e];
          /* ε falls with bits for a routed expert, and is 0 for an idle one */
          /* ε is 0 for an idle expert; for a routed one every menu entry loses more than
           * int8. (More bits need not lose less: on these heavy-tailed experts and their few
           * routed tokens binary:g128 beats int3:g128:asym for some, as PyTorch agrees.) */
          if (r->experts[e].tokens == 0)
            g_assert_cmpfloat (b->loss[e * 3 + 0], ==, 0.0);
          else
            {
              double eps8;

              g_assert_true (bl_moe_profile_expert_loss (profile, i, e, &int8, &eps8, &error));
              g_assert_no_error (error);
              for (int o = 0; o < 3; o++)
                g_assert_cmpfloat (eps8, <, b->loss[e * 3 + o]);
            }
        }
      g_assert_cmpfloat_with_epsilon (f_sum, 1.0, 1e-12);
    }

  plan = bl_moe_plan_new (f.model, menu, choice, NULL, &error);
  g_assert_no_error (error);
  json = bl_quant_plan_to_json (plan);
  back = bl_quant_plan_new_from_json (json, -1, "pmq-plan.json", &error);
  g_assert_no_error (error);
  json2 = bl_quant_plan_to_json (back);
  g_assert_cmpstr (json, ==, json2);

  resolved = bl_quant_plan_resolve (back, f.model, &error);
  g_assert_no_error (error);
  for (guint i = 0; i < resolved->len; i++)
    {
      const BlLayerAssignment *a = g_ptr_array_index (resolved, i);
      BlMoeName n;

      if (!bl_moe_parse_name (a->layer, &n))
        {
          g_assert_false (a->has_weight);
          continue;
        }
      n_expert_layers++;
      g_assert_true (a->has_weight);
      {
        BlFormatSpec want;
        g_autofree char *canon = NULL;

        g_assert_true (bl_format_spec_parse (menu[choice[n.block * c->n_experts + n.expert]],
                                             &want, NULL));
        canon = bl_format_spec_to_string (&want);
        g_assert_cmpstr (a->weight_spec, ==, canon);
      }
    }
  g_assert_cmpuint (n_expert_layers, ==, (guint) (c->n_layers * c->n_experts * 3));
  fixture_clear (&f);
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/bitlens/moe/names/parse", test_parse_names);
  g_test_add_func ("/bitlens/moe/names/reference-index", test_reference_index);
  g_test_add_func ("/bitlens/moe/names/layout", test_layout_mixed);
  g_test_add_func ("/bitlens/moe/config", test_config);
  g_test_add_data_func ("/bitlens/moe/forward/mixtral", "mixtral", test_forward);
  g_test_add_data_func ("/bitlens/moe/forward/qwen2", "qwen2", test_forward);
  g_test_add_func ("/bitlens/moe/forward/expert-weights", test_expert_weights);
  g_test_add_data_func ("/bitlens/moe/routing/mixtral", "mixtral", test_routing);
  g_test_add_data_func ("/bitlens/moe/routing/qwen2", "qwen2", test_routing);
  g_test_add_data_func ("/bitlens/moe/stats/mixtral", "mixtral", test_weight_stats);
  g_test_add_data_func ("/bitlens/moe/stats/qwen2", "qwen2", test_weight_stats);
  g_test_add_func ("/bitlens/moe/stats/dense", test_dense_refused);
  g_test_add_func ("/bitlens/moe/pmq/brute-force", test_pmq_brute_force);
  g_test_add_func ("/bitlens/moe/pmq/constraints", test_pmq_constraints);
  g_test_add_func ("/bitlens/moe/pmq/plan", test_pmq_plan);

  return g_test_run ();
}
