/* test-export.c: plan JSON, compressed-tensors, ModelOpt, llama.cpp, packed and GGUF exports
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * Each writer is read back: the plan by the plan loader, the JSON configs by json-glib and
 * checked member by member against the compressed-tensors / ModelOpt schemas
 * (docs/exports.md), the llama.cpp script line by line, and the packed checkpoint by
 * decoding every layer and comparing it with the format library's fake quantization. The
 * table of targets and bl_export_to() (bl-export-targets.c) are checked by writing every
 * target from one plan and reading each file back with its reader.
 */
#include <glib/gstdio.h>
#include <math.h>
#include <string.h>

#include "bl-error.h"
#include "bl-export.h"
#include "bl-format.h"
#include "bl-gguf.h"
#include "bl-model.h"
#include "bl-quant-plan.h"

typedef struct
{
  const char *layer;
  const char *weight;
  const char *activation;
  const char *algorithm;
} Assign;

typedef struct
{
  BlExportLayer *layers;
  BlFormatSpec *w;
  BlFormatSpec *a;
  guint n;
} Assignment;

static void
assignment_clear (Assignment *x)
{
  g_free (x->layers);
  g_free (x->w);
  g_free (x->a);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Assignment, assignment_clear)

static void
make (const Assign *plan,
      guint         n,
      Assignment   *out)
{
  out->layers = g_new0 (BlExportLayer, n);
  out->w = g_new0 (BlFormatSpec, n);
  out->a = g_new0 (BlFormatSpec, n);
  out->n = n;
  for (guint i = 0; i < n; i++)
    {
      out->layers[i].layer = plan[i].layer;
      out->layers[i].algorithm = plan[i].algorithm;
      if (plan[i].weight != NULL)
        {
          g_assert_true (bl_format_spec_parse (plan[i].weight, &out->w[i], NULL));
          out->layers[i].weight = &out->w[i];
        }
      if (plan[i].activation != NULL)
        {
          g_assert_true (bl_format_spec_parse (plan[i].activation, &out->a[i], NULL));
          out->layers[i].activation = &out->a[i];
        }
    }
}

static BlModel *
load_fixture (const char *name)
{
  g_autoptr (GError) error = NULL;
  BlModel *model = bl_model_load (g_test_get_filename (G_TEST_DIST, "fixtures", "tiny-llama", name, NULL),
                                  NULL, &error);

  g_assert_no_error (error);
  return model;
}

static JsonObject *
parse_object (const char *text,
              JsonParser *parser)
{
  g_autoptr (GError) error = NULL;

  g_assert_true (json_parser_load_from_data (parser, text, -1, &error));
  g_assert_no_error (error);
  return json_node_get_object (json_parser_get_root (parser));
}

static JsonObject *
parse_file (JsonParser *parser,
            const char *path)
{
  g_autoptr (GError) error = NULL;

  g_assert_true (json_parser_load_from_file (parser, path, &error));
  g_assert_no_error (error);
  return json_node_get_object (json_parser_get_root (parser));
}

/* The member @name of @obj as an object, or %NULL when absent. */
static JsonObject *
object_member (JsonObject *obj,
                                  const char *name)
{
  JsonNode *node = json_object_get_member (obj, name);

  return node != NULL && JSON_NODE_HOLDS_OBJECT (node) ? json_node_get_object (node) : NULL;
}

static gboolean
array_has (JsonArray  *a,
           const char *s)
{
  for (guint i = 0; i < json_array_get_length (a); i++)
    if (g_str_equal (json_array_get_string_element (a, i), s))
      return TRUE;
  return FALSE;
}

/* a mixed plan over llama-tied-bf16: W4A16 int4 groups, W8A8 int8, an FP8 layer and NVFP4 */
static const Assign mixed_plan[] = {
  { "model.layers.0.self_attn.q_proj.weight", "int4:g32:sym", NULL, "gptq" },
  { "model.layers.0.self_attn.k_proj.weight", "int4:g32:sym", NULL, "gptq" },
  { "model.layers.0.mlp.up_proj.weight", "int8:channel", "int8:token", "smoothquant" },
  { "model.layers.1.mlp.down_proj.weight", "fp8-e4m3:tensor", "fp8-e4m3:tensor", NULL },
  { "model.layers.1.self_attn.o_proj.weight", "nvfp4", "nvfp4", NULL },
  { "model.layers.1.mlp.gate_proj.weight", "int4:g32:asym", NULL, "awq" },
};

/* ------------------------------------------------------------------------------------------ */

/* The explicit plan resolves back to exactly the assignment. */
static void
test_plan_json (void)
{
  g_autoptr (BlModel) model = load_fixture ("llama-tied-bf16");
  g_auto (Assignment) x = { 0 };
  g_autoptr (GError) error = NULL;
  g_autofree char *json = NULL;
  g_autoptr (BlQuantPlan) plan = NULL;
  g_autoptr (GPtrArray) resolved = NULL;
  guint n_quantized = 0;

  make (mixed_plan, G_N_ELEMENTS (mixed_plan), &x);
  json = bl_export_plan_json (x.layers, x.n, "int8:token", &error);
  g_assert_no_error (error);
  plan = bl_quant_plan_new_from_json (json, -1, "export", &error);
  g_assert_no_error (error);
  g_assert_cmpstr (bl_quant_plan_get_kv_cache (plan), ==, "int8:token");
  resolved = bl_quant_plan_resolve (plan, model, &error);
  g_assert_no_error (error);
  for (guint i = 0; i < resolved->len; i++)
    {
      const BlLayerAssignment *a = g_ptr_array_index (resolved, i);
      const BlExportLayer *want = NULL;

      for (guint k = 0; k < x.n; k++)
        if (g_str_equal (x.layers[k].layer, a->layer))
          want = &x.layers[k];
      if (want == NULL)
        {
          g_assert_false (a->has_weight);
          g_assert_false (a->has_activation);
          continue;
        }
      n_quantized++;
      g_assert_true (a->has_weight);
      g_assert_true (bl_format_spec_equal (&a->weight, want->weight));
      g_assert_cmpint (a->has_activation, ==, want->activation != NULL);
      if (want->activation != NULL)
        g_assert_true (bl_format_spec_equal (&a->activation, want->activation));
      g_assert_cmpstr (a->algorithm, ==, want->algorithm != NULL ? want->algorithm : "rtn");
    }
  g_assert_cmpuint (n_quantized, ==, x.n);
}

static void
test_compressed_tensors (void)
{
  g_autoptr (BlModel) model = load_fixture ("llama-tied-bf16");
  g_auto (Assignment) x = { 0 };
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonNode) qc = NULL;
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autofree char *config = NULL;
  JsonObject *root, *groups, *g0, *w, *g1, *a;
  JsonArray *ignore;

  make (mixed_plan, G_N_ELEMENTS (mixed_plan), &x);
  qc = bl_export_compressed_tensors (x.layers, x.n, model, NULL, &error);
  g_assert_no_error (error);
  config = bl_export_hf_config (model, qc, &error);
  g_assert_no_error (error);
  root = parse_object (config, parser);
  /* the model's own config survives */
  g_assert_cmpint (json_object_get_int_member (root, "hidden_size"), ==, 32);
  root = json_object_get_object_member (root, "quantization_config");
  g_assert_cmpstr (json_object_get_string_member (root, "quant_method"), ==, "compressed-tensors");
  g_assert_cmpstr (json_object_get_string_member (root, "format"), ==, "mixed-precision");
  g_assert_cmpstr (json_object_get_string_member (root, "quantization_status"), ==, "compressed");
  g_assert_true (json_object_get_null_member (root, "kv_cache_scheme"));
  groups = json_object_get_object_member (root, "config_groups");
  /* five schemes: int4 sym g32 (two layers), int8 W8A8, fp8, nvfp4, int4 asym */
  g_assert_cmpuint (json_object_get_size (groups), ==, 5);
  g0 = json_object_get_object_member (groups, "group_0");
  g_assert_cmpuint (json_array_get_length (json_object_get_array_member (g0, "targets")), ==, 2);
  g_assert_true (array_has (json_object_get_array_member (g0, "targets"),
                            "model.layers.0.self_attn.q_proj"));
  g_assert_cmpstr (json_object_get_string_member (g0, "format"), ==, "pack-quantized");
  w = json_object_get_object_member (g0, "weights");
  g_assert_cmpint (json_object_get_int_member (w, "num_bits"), ==, 4);
  g_assert_cmpstr (json_object_get_string_member (w, "type"), ==, "int");
  g_assert_true (json_object_get_boolean_member (w, "symmetric"));
  g_assert_cmpstr (json_object_get_string_member (w, "strategy"), ==, "group");
  g_assert_cmpint (json_object_get_int_member (w, "group_size"), ==, 32);
  g_assert_false (json_object_get_boolean_member (w, "dynamic"));
  g_assert_true (json_object_get_null_member (g0, "input_activations"));

  g1 = json_object_get_object_member (groups, "group_1");
  g_assert_cmpstr (json_object_get_string_member (g1, "format"), ==, "int-quantized");
  a = json_object_get_object_member (g1, "input_activations");
  g_assert_cmpstr (json_object_get_string_member (a, "strategy"), ==, "token");
  g_assert_true (json_object_get_boolean_member (a, "dynamic"));
  g_assert_cmpstr (json_object_get_string_member (json_object_get_object_member (g1, "weights"), "strategy"),
                   ==, "channel");
  g_assert_cmpstr (json_object_get_string_member (json_object_get_object_member (groups, "group_2"), "format"),
                   ==, "float-quantized");
  {
    JsonObject *g3 = json_object_get_object_member (groups, "group_3");
    JsonObject *w3 = json_object_get_object_member (g3, "weights");

    g_assert_cmpstr (json_object_get_string_member (g3, "format"), ==, "nvfp4-pack-quantized");
    g_assert_cmpstr (json_object_get_string_member (w3, "strategy"), ==, "tensor_group");
    g_assert_cmpint (json_object_get_int_member (w3, "group_size"), ==, 16);
    g_assert_cmpstr (json_object_get_string_member (json_object_get_object_member (g3, "input_activations"),
                                                    "dynamic"), ==, "local");
  }
  g_assert_false (json_object_get_boolean_member (
    json_object_get_object_member (json_object_get_object_member (groups, "group_4"), "weights"), "symmetric"));

  ignore = json_object_get_array_member (root, "ignore");
  /* 14 projections + lm_head, 6 quantized */
  g_assert_cmpuint (json_array_get_length (ignore), ==, 15 - 6);
  g_assert_true (array_has (ignore, "lm_head"));
  g_assert_true (array_has (ignore, "model.layers.0.self_attn.v_proj"));
  g_assert_false (array_has (ignore, "model.layers.0.self_attn.q_proj"));
}

static void
test_compressed_tensors_refuses (void)
{
  static const Assign plan[] = { { "model.layers.0.mlp.up_proj.weight", "nf4:g64", NULL, NULL } };
  g_autoptr (BlModel) model = load_fixture ("llama-tied-bf16");
  g_auto (Assignment) x = { 0 };
  g_autoptr (GError) error = NULL;
  JsonNode *qc;

  make (plan, 1, &x);
  qc = bl_export_compressed_tensors (x.layers, x.n, model, NULL, &error);
  g_assert_null (qc);
  g_assert_error (error, BL_ERROR, BL_ERROR_UNSUPPORTED_FORMAT);
  g_assert_nonnull (strstr (error->message, "model.layers.0.mlp.up_proj.weight"));
  g_assert_nonnull (strstr (error->message, "nf4:g64"));
}

static void
test_modelopt (void)
{
  static const Assign single[] = {
    { "model.layers.0.self_attn.q_proj.weight", "nvfp4", "nvfp4", NULL },
    { "model.layers.1.mlp.up_proj.weight", "nvfp4", "nvfp4", NULL },
  };
  static const Assign mixed[] = {
    { "model.layers.0.self_attn.q_proj.weight", "nvfp4", "nvfp4", NULL },
    { "model.layers.0.mlp.up_proj.weight", "int4:g32", NULL, "awq" },
    { "model.layers.1.mlp.up_proj.weight", "fp8-e4m3:channel", "fp8-e4m3:token", NULL },
  };
  g_autoptr (BlModel) model = load_fixture ("llama-tied-bf16");
  g_auto (Assignment) x = { 0 };
  g_auto (Assignment) y = { 0 };
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonParser) p1 = json_parser_new ();
  g_autoptr (JsonParser) p2 = json_parser_new ();
  g_autofree char *t1 = NULL, *t2 = NULL;
  BlFormatSpec kv;
  JsonObject *q, *layers, *l;

  make (single, G_N_ELEMENTS (single), &x);
  g_assert_true (bl_format_spec_parse ("fp8-e4m3:tensor", &kv, NULL));
  t1 = bl_export_modelopt (x.layers, x.n, model, &kv, &error);
  g_assert_no_error (error);
  q = json_object_get_object_member (parse_object (t1, p1), "quantization");
  g_assert_cmpstr (json_object_get_string_member (q, "quant_algo"), ==, "NVFP4");
  g_assert_cmpint (json_object_get_int_member (q, "group_size"), ==, 16);
  g_assert_cmpstr (json_object_get_string_member (q, "kv_cache_quant_algo"), ==, "FP8");
  g_assert_cmpuint (json_array_get_length (json_object_get_array_member (q, "exclude_modules")), ==, 13);
  g_assert_true (array_has (json_object_get_array_member (q, "exclude_modules"), "lm_head"));
  g_assert_false (json_object_has_member (q, "quantized_layers"));

  make (mixed, G_N_ELEMENTS (mixed), &y);
  t2 = bl_export_modelopt (y.layers, y.n, model, NULL, &error);
  g_assert_no_error (error);
  q = json_object_get_object_member (parse_object (t2, p2), "quantization");
  g_assert_cmpstr (json_object_get_string_member (q, "quant_algo"), ==, "MIXED_PRECISION");
  g_assert_true (json_object_get_null_member (q, "kv_cache_quant_algo"));
  layers = json_object_get_object_member (q, "quantized_layers");
  g_assert_cmpuint (json_object_get_size (layers), ==, 3);
  l = json_object_get_object_member (layers, "model.layers.0.mlp.up_proj");
  g_assert_cmpstr (json_object_get_string_member (l, "quant_algo"), ==, "W4A16_AWQ");
  g_assert_cmpint (json_object_get_int_member (l, "group_size"), ==, 32);
  g_assert_true (json_object_get_boolean_member (l, "pre_quant_scale"));
  g_assert_false (json_object_get_boolean_member (l, "has_zero_point"));
  l = json_object_get_object_member (layers, "model.layers.1.mlp.up_proj");
  g_assert_cmpstr (json_object_get_string_member (l, "quant_algo"), ==, "FP8_PER_CHANNEL_PER_TOKEN");

  {
    static const Assign bad[] = { { "model.layers.0.mlp.up_proj.weight", "int3:g128", NULL, NULL } };
    g_auto (Assignment) z = { 0 };
    g_autoptr (GError) e2 = NULL;

    make (bad, 1, &z);
    g_assert_null (bl_export_modelopt (z.layers, z.n, model, NULL, &e2));
    g_assert_error (e2, BL_ERROR, BL_ERROR_UNSUPPORTED_FORMAT);
  }
}

/* llama-bias-f16 has 40-element rows: the block types fall back to f16 there */
static void
test_llama_cpp (void)
{
  static const Assign plan[] = {
    { "model.layers.0.mlp.down_proj.weight", "int4:g32:q4_0", NULL, NULL },
    { "model.layers.0.mlp.up_proj.weight", "int8:g32", NULL, NULL },
    { "model.layers.1.mlp.up_proj.weight", "int5:g32:q4_0", NULL, NULL },
    { "lm_head.weight", "int8:g32", NULL, NULL },
  };
  g_autoptr (BlModel) model = load_fixture ("llama-bias-f16");
  g_auto (Assignment) x = { 0 };
  g_autoptr (GError) error = NULL;
  g_autofree char *text = NULL;
  g_auto (GStrv) lines = NULL;
  guint n_overrides = 0;

  make (plan, G_N_ELEMENTS (plan), &x);
  text = bl_export_llama_cpp (x.layers, x.n, model, "in.gguf", "out.gguf", &error);
  g_assert_no_error (error);
  lines = g_strsplit (text, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    if (g_str_has_prefix (lines[i], "  --tensor-type "))
      n_overrides++;
  /* one override per block projection; lm_head goes by --output-tensor-type */
  g_assert_cmpuint (n_overrides, ==, 14);
  /* down_proj has 72-element rows (2·32 + 8): not a whole number of blocks either */
  g_assert_nonnull (strstr (text, "  --tensor-type '^blk\\.0\\.ffn_down\\.weight$=f16' \\\n"));
  g_assert_nonnull (strstr (text, "  --tensor-type '^blk\\.0\\.ffn_up\\.weight$=f16' \\\n"));
  g_assert_nonnull (strstr (text, "  --tensor-type '^blk\\.1\\.attn_q\\.weight$=f16' \\\n"));
  g_assert_nonnull (strstr (text, "# model.layers.0.mlp.up_proj.weight: rows of 40 elements"));
  g_assert_nonnull (strstr (text, "  --output-tensor-type f16 \\\n"));
  g_assert_nonnull (strstr (text, "  --token-embedding-type f16 \\\n"));
  g_assert_nonnull (strstr (text, "  'in.gguf' 'out.gguf' f16\n"));
  g_assert_nonnull (strstr (text, "python3 convert_hf_to_gguf.py "));
}

static void
test_llama_cpp_types (void)
{
  static const Assign plan[] = {
    { "model.layers.0.mlp.down_proj.weight", "int4:g32:q4_0", NULL, NULL },
    { "model.layers.0.mlp.up_proj.weight", "int4:g32:q4_0", NULL, NULL },
    { "model.layers.1.mlp.up_proj.weight", "int5:g32:q4_0", NULL, NULL },
    { "model.layers.1.mlp.gate_proj.weight", "mxfp4", NULL, NULL },
    { "lm_head.weight", "int8:g32", NULL, NULL },
  };
  g_autoptr (BlModel) model = load_fixture ("llama-tied-bf16");
  g_auto (Assignment) x = { 0 };
  g_autoptr (GError) error = NULL;
  g_autofree char *text = NULL;

  make (plan, G_N_ELEMENTS (plan), &x);
  text = bl_export_llama_cpp (x.layers, x.n, model, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (strstr (text, "'^blk\\.0\\.ffn_down\\.weight$=q4_0'"));
  g_assert_nonnull (strstr (text, "'^blk\\.1\\.ffn_up\\.weight$=q5_0'"));
  g_assert_nonnull (strstr (text, "'^blk\\.1\\.ffn_gate\\.weight$=mxfp4'"));
  g_assert_nonnull (strstr (text, "'^blk\\.1\\.attn_v\\.weight$=f16'"));
  /* tied: the output type travels with the embedding */
  g_assert_nonnull (strstr (text, "  --token-embedding-type q8_0 \\\n"));
  g_assert_null (strstr (text, "--output-tensor-type"));
  g_assert_nonnull (strstr (text, "llama-tied-bf16-f16.gguf"));

  {
    static const Assign bad[] = { { "model.layers.0.mlp.up_proj.weight", "nvfp4", NULL, NULL } };
    g_auto (Assignment) z = { 0 };
    g_autoptr (GError) e2 = NULL;

    make (bad, 1, &z);
    g_assert_null (bl_export_llama_cpp (z.layers, z.n, model, NULL, NULL, &e2));
    g_assert_error (e2, BL_ERROR, BL_ERROR_UNSUPPORTED_FORMAT);
  }
}

/* Every layer decodes to the fake quantization of its weight; the rest is copied byte for byte. */
static void
test_packed (void)
{
  static const Assign plan[] = {
    { "model.layers.0.self_attn.q_proj.weight", "int4:g32:q4_0", "int8:token", NULL },
    { "model.layers.0.self_attn.k_proj.weight", "int3:g128:asym", NULL, NULL },
    { "model.layers.0.self_attn.v_proj.weight", "nvfp4", NULL, NULL },
    { "model.layers.0.self_attn.o_proj.weight", "mxfp4", NULL, NULL },
    { "model.layers.0.mlp.gate_proj.weight", "nf4:g64", NULL, "rtn" },
    { "model.layers.0.mlp.up_proj.weight", "int2+int4:g32:range10%", NULL, NULL },
    { "model.layers.0.mlp.down_proj.weight", "bitmod4:g32", NULL, NULL },
    { "model.layers.1.self_attn.q_proj.weight", "fp8-e4m3:tensor", NULL, NULL },
    { "model.layers.1.self_attn.k_proj.weight", "ternary:absmean", NULL, NULL },
    { "model.layers.1.mlp.down_proj.weight", "int8:channel", NULL, NULL },
    { "lm_head.weight", "int4:g32:asym", NULL, NULL },
  };
  g_autoptr (BlModel) model = load_fixture ("llama-tied-bf16");
  g_auto (Assignment) x = { 0 };
  g_autoptr (GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("bitlens-packed-XXXXXX", &error);
  g_autofree char *manifest = NULL;
  g_autoptr (JsonParser) parser = json_parser_new ();
  JsonObject *layers;

  g_assert_no_error (error);
  make (plan, G_N_ELEMENTS (plan), &x);
  g_assert_true (bl_export_packed (model, x.layers, x.n, dir, NULL, &error));
  g_assert_no_error (error);
  for (guint i = 0; i < x.n; i++)
    {
      const BlTensor *t = bl_model_get_tensor (model, plan[i].layer);
      gint64 n = t->n_elements;
      g_autofree float *w = g_new (float, n);
      g_autofree float *want = g_new (float, n);
      g_autofree float *got = g_new (float, n);

      bl_tensor_to_f32 (t, w);
      g_assert_true (bl_format_fake_quant (&x.w[i], w, want, t->shape[0], t->shape[1], 1, &error));
      g_assert_true (bl_export_packed_read_layer (dir, plan[i].layer, got, n, &error));
      g_assert_no_error (error);
      for (gint64 k = 0; k < n; k++)
        if (got[k] != want[k])
          g_error ("%s (%s): element %" G_GINT64_FORMAT " decodes to %g, fake-quant gives %g",
                   plan[i].layer, plan[i].weight, k, got[k], want[k]);
    }
  manifest = g_build_filename (dir, "bitlens-quant.json", NULL);
  g_assert_true (json_parser_load_from_file (parser, manifest, &error));
  layers = json_object_get_object_member (json_node_get_object (json_parser_get_root (parser)), "layers");
  g_assert_cmpuint (json_object_get_size (layers), ==, x.n);
  g_assert_cmpstr (json_object_get_string_member (json_object_get_object_member (
                     layers, "model.layers.0.self_attn.q_proj.weight"), "activation"), ==, "int8:token");
  g_assert_cmpstr (json_object_get_string_member (json_object_get_object_member (
                     layers, "model.layers.0.self_attn.o_proj.weight"), "scale_kind"), ==, "e8m0");
  g_assert_cmpfloat (json_object_get_double_member (json_object_get_object_member (
                       layers, "model.layers.0.self_attn.v_proj.weight"), "tensor_scale"), !=, 1.0);
  {
    g_autofree char *config = g_build_filename (dir, "config.json", NULL);

    g_assert_true (g_file_test (config, G_FILE_TEST_EXISTS));
  }
  /* a layer the checkpoint does not hold, and a wrong size */
  {
    float y[4];
    g_autoptr (GError) e2 = NULL;
    g_autoptr (GError) e3 = NULL;

    g_assert_false (bl_export_packed_read_layer (dir, "model.layers.1.mlp.up_proj.weight", y, 4, &e2));
    g_assert_error (e2, BL_ERROR, BL_ERROR_NOT_FOUND);
    g_assert_false (bl_export_packed_read_layer (dir, "lm_head.weight", y, 4, &e3));
    g_assert_error (e3, BL_ERROR, BL_ERROR_INVALID_ARGUMENT);
  }
  {
    g_autofree char *st = g_build_filename (dir, "model.safetensors", NULL);

    g_unlink (st);
    g_unlink (manifest);
    g_remove (dir);
  }
}

static void
test_packed_refuses_algorithms (void)
{
  static const Assign plan[] = { { "model.layers.0.mlp.up_proj.weight", "int4:g32", NULL, "gptq" } };
  g_autoptr (BlModel) model = load_fixture ("llama-tied-bf16");
  g_auto (Assignment) x = { 0 };
  g_autoptr (GError) error = NULL;
  g_autofree char *dir = g_build_filename (g_get_tmp_dir (), "bitlens-packed-refused", NULL);

  make (plan, 1, &x);
  g_assert_false (bl_export_packed (model, x.layers, x.n, dir, NULL, &error));
  g_assert_error (error, BL_ERROR, BL_ERROR_UNSUPPORTED_FORMAT);
  g_assert_nonnull (strstr (error->message, "gptq"));
}

/* ------------------------------------------------------------------------------------------ */

/* Q4_0 blocks on the MLP with FP8 keys and values: a plan every target can express. */
static const char dispatch_plan[] =
  "{ \"version\": 1,"
  "  \"rules\": [ { \"pattern\": \"model.layers.*.mlp.*\", \"weight\": \"int4:g32:q4_0\" } ],"
  "  \"kv_cache\": \"fp8-e4m3:token\" }";

static void
remove_tree (const char *path)
{
  g_autoptr (GDir) dir = g_dir_open (path, 0, NULL);
  const char *name;

  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *child = g_build_filename (path, name, NULL);

      remove_tree (child);
    }
  g_remove (path);
}

/* Reads back the file @target wrote at @path; 6 layers (2 blocks × gate, up, down) are quantized. */
static void
check_written (BlModel              *model,
               const BlExportTarget *target,
               const char           *path,
               GPtrArray            *notes)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autofree char *text = NULL;

  if (g_str_equal (target->id, "plan-json"))
    {
      g_autoptr (BlQuantPlan) plan = bl_quant_plan_load (path, &error);
      g_autoptr (GPtrArray) resolved = NULL;
      guint n = 0;

      g_assert_no_error (error);
      g_assert_cmpstr (bl_quant_plan_get_kv_cache (plan), ==, "fp8-e4m3:token");
      resolved = bl_quant_plan_resolve (plan, model, &error);
      g_assert_no_error (error);
      for (guint i = 0; i < resolved->len; i++)
        n += ((BlLayerAssignment *) g_ptr_array_index (resolved, i))->has_weight;
      g_assert_cmpuint (n, ==, 6);
    }
  else if (g_str_equal (target->id, "compressed-tensors"))
    {
      JsonObject *qc = object_member (parse_file (parser, path), "quantization_config");

      g_assert_nonnull (qc);
      g_assert_cmpstr (json_object_get_string_member (qc, "quant_method"), ==, "compressed-tensors");
      g_assert_true (json_object_has_member (qc, "kv_cache_scheme"));
    }
  else if (g_str_equal (target->id, "modelopt"))
    {
      JsonObject *q = object_member (parse_file (parser, path), "quantization");

      g_assert_nonnull (q);
      g_assert_cmpstr (json_object_get_string_member (q, "quant_algo"), ==, "W4A16_AWQ");
      g_assert_cmpstr (json_object_get_string_member (q, "kv_cache_quant_algo"), ==, "FP8");
    }
  else if (g_str_equal (target->id, "llama-cpp"))
    {
      g_assert_true (g_file_get_contents (path, &text, NULL, &error));
      g_assert_nonnull (strstr (text, "llama-quantize"));
      g_assert_nonnull (strstr (text, "--tensor-type '^blk\\.1\\.ffn_down\\.weight$=q4_0'"));
      g_assert_true (g_file_test (path, G_FILE_TEST_IS_EXECUTABLE));
    }
  else if (g_str_equal (target->id, "packed"))
    {
      const BlTensor *t = bl_model_get_tensor (model, "model.layers.1.mlp.down_proj.weight");
      g_autofree float *w = g_new (float, t->n_elements);
      g_autofree float *want = g_new (float, t->n_elements);
      g_autofree float *got = g_new (float, t->n_elements);
      BlFormatSpec spec;

      g_assert_true (bl_format_spec_parse ("int4:g32:q4_0", &spec, NULL));
      bl_tensor_to_f32 (t, w);
      g_assert_true (bl_format_fake_quant (&spec, w, want, t->shape[0], t->shape[1], 1, &error));
      g_assert_true (bl_export_packed_read_layer (path, "model.layers.1.mlp.down_proj.weight", got,
                                                  t->n_elements, &error));
      g_assert_no_error (error);
      g_assert_cmpmem (got, t->n_elements * sizeof (float), want, t->n_elements * sizeof (float));
    }
  else if (g_str_equal (target->id, "gguf"))
    {
      g_autoptr (BlGguf) gguf = bl_gguf_open (path, &error);
      const BlGgufTensorInfo *down;

      g_assert_no_error (error);
      down = bl_gguf_find_tensor (gguf, "blk.1.ffn_down.weight");
      g_assert_nonnull (down);
      g_assert_cmpuint (down->type, ==, BL_GGML_TYPE_Q4_0);
      /* the writer's notes reach the caller: the fixture has no tokenizer.json */
      g_assert_cmpuint (notes->len, ==, 1);
      g_assert_nonnull (strstr (g_ptr_array_index (notes, 0), "no tokenizer.json"));
    }
  else
    g_error ("no reader for the export target %s", target->id);
}

/* Every target of the table, written through the one dispatch, reads back. */
static void
test_targets_write (void)
{
  g_autoptr (BlModel) model = load_fixture ("llama-tied-bf16");
  g_autoptr (GError) error = NULL;
  g_autoptr (BlQuantPlan) plan = bl_quant_plan_new_from_json (dispatch_plan, -1, "test", &error);
  g_autofree char *dir = g_dir_make_tmp ("bitlens-export-to-XXXXXX", &error);
  const BlExportTarget *targets;
  guint n;

  g_assert_no_error (error);
  targets = bl_export_targets (&n);
  g_assert_cmpuint (n, ==, 6);
  for (guint i = 0; i < n; i++)
    {
      const BlExportTarget *t = &targets[i];
      g_autofree char *name = bl_export_target_default_name (t, "tiny");
      g_autofree char *path = g_build_filename (dir, name, NULL);
      g_autoptr (GPtrArray) notes = g_ptr_array_new_with_free_func (g_free);
      guint n_layers = 0;

      g_test_message ("%s → %s", t->id, name);
      g_assert_true (bl_export_target_lookup (t->id, NULL) == t);
      g_assert_true ((t->suffix == NULL) == ((t->flags & BL_EXPORT_TARGET_DIRECTORY) != 0));
      if (t->suffix != NULL && strchr (t->default_name, '%') != NULL)
        g_assert_true (g_str_has_suffix (name, t->suffix));
      g_assert_true (bl_export_to (model, plan, t->id, NULL, path, notes, &n_layers, NULL, &error));
      g_assert_no_error (error);
      g_assert_cmpuint (n_layers, ==, 6);
      check_written (model, t, path, notes);

      /* a text target's text is its file's content; the others have no text */
      if (t->flags & BL_EXPORT_TARGET_TEXT)
        {
          g_autofree char *text = bl_export_to_text (model, plan, t->id, NULL, NULL, &error);
          g_autofree char *file = NULL;

          g_assert_no_error (error);
          g_assert_true (g_file_get_contents (path, &file, NULL, NULL));
          g_assert_cmpstr (text, ==, file);
        }
      else
        {
          g_assert_null (bl_export_to_text (model, plan, t->id, NULL, NULL, &error));
          g_assert_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT);
          g_clear_error (&error);
        }
    }
  remove_tree (dir);
}

/* The options reach their writer: --unquantized-type f32 and llama.cpp's file names. */
static void
test_targets_options (void)
{
  g_autoptr (BlModel) model = load_fixture ("llama-tied-bf16");
  g_autoptr (GError) error = NULL;
  g_autoptr (BlQuantPlan) plan = bl_quant_plan_new_from_json (dispatch_plan, -1, "test", &error);
  g_autofree char *dir = g_dir_make_tmp ("bitlens-export-opts-XXXXXX", &error);
  g_autofree char *path = g_build_filename (dir, "f32.gguf", NULL);
  g_autofree char *script = NULL;
  g_autoptr (BlGguf) gguf = NULL;
  BlExportOptions opts = { 0 };

  g_assert_no_error (error);
  g_assert_true (bl_gguf_export_options_set_unquantized_type (&opts.gguf, "F32", &error));
  g_assert_no_error (error);
  g_assert_true (opts.gguf.unquantized_f32);
  g_assert_false (bl_gguf_export_options_set_unquantized_type (&opts.gguf, "f12", &error));
  g_assert_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, "f12"));
  g_clear_error (&error);
  opts.gguf.name = "tiny-f32";
  opts.input_gguf = "in-f16.gguf";
  opts.output_gguf = "out-mixed.gguf";

  g_assert_true (bl_export_to (model, plan, "gguf", &opts, path, NULL, NULL, NULL, &error));
  g_assert_no_error (error);
  gguf = bl_gguf_open (path, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (bl_gguf_find_tensor (gguf, "blk.0.attn_q.weight")->type, ==, BL_GGML_TYPE_F32);
  g_assert_cmpuint (bl_gguf_find_tensor (gguf, "blk.0.ffn_up.weight")->type, ==, BL_GGML_TYPE_Q4_0);
  {
    g_autofree char *name = bl_gguf_get_string (gguf, "general.name");

    g_assert_cmpstr (name, ==, "tiny-f32");
  }

  script = bl_export_to_text (model, plan, "llama-cpp", &opts, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (strstr (script, "in-f16.gguf"));
  g_assert_nonnull (strstr (script, "out-mixed.gguf"));
  remove_tree (dir);
}

/* An unknown target is refused before anything is written, naming the valid ones. */
static void
test_targets_unknown (void)
{
  g_autoptr (BlModel) model = load_fixture ("llama-tied-bf16");
  g_autoptr (GError) error = NULL;
  g_autoptr (BlQuantPlan) plan = bl_quant_plan_new_from_json (dispatch_plan, -1, "test", &error);
  g_autofree char *path = g_build_filename (g_get_tmp_dir (), "bitlens-export-unknown.onnx", NULL);
  g_autofree char *ids = bl_export_target_list_ids (", ");

  g_assert_no_error (error);
  g_assert_cmpstr (ids, ==, "plan-json, compressed-tensors, modelopt, llama-cpp, packed, gguf");
  g_assert_null (bl_export_target_lookup ("onnx", &error));
  g_assert_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, "“onnx”"));
  g_assert_nonnull (strstr (error->message, ids));
  g_clear_error (&error);
  g_assert_false (bl_export_to (model, plan, "onnx", NULL, path, NULL, NULL, NULL, &error));
  g_assert_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT);
  g_assert_false (g_file_test (path, G_FILE_TEST_EXISTS));
  g_clear_error (&error);
  g_assert_null (bl_export_to_text (model, plan, "onnx", NULL, NULL, &error));
  g_assert_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT);
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/bitlens/export/plan-json", test_plan_json);
  g_test_add_func ("/bitlens/export/compressed-tensors", test_compressed_tensors);
  g_test_add_func ("/bitlens/export/compressed-tensors/refuses", test_compressed_tensors_refuses);
  g_test_add_func ("/bitlens/export/modelopt", test_modelopt);
  g_test_add_func ("/bitlens/export/llama-cpp/fallback", test_llama_cpp);
  g_test_add_func ("/bitlens/export/llama-cpp/types", test_llama_cpp_types);
  g_test_add_func ("/bitlens/export/packed", test_packed);
  g_test_add_func ("/bitlens/export/packed/refuses-algorithms", test_packed_refuses_algorithms);
  g_test_add_func ("/bitlens/export/targets/write", test_targets_write);
  g_test_add_func ("/bitlens/export/targets/options", test_targets_options);
  g_test_add_func ("/bitlens/export/targets/unknown", test_targets_unknown);
  return g_test_run ();
}
