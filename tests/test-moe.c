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

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/bitlens/moe/names/parse", test_parse_names);
  g_test_add_func ("/bitlens/moe/names/reference-index", test_reference_index);
  g_test_add_func ("/bitlens/moe/names/layout", test_layout_mixed);
  g_test_add_data_func ("/bitlens/moe/forward/mixtral", "mixtral", test_forward);
  g_test_add_data_func ("/bitlens/moe/forward/qwen2", "qwen2", test_forward);

  return g_test_run ();
}
