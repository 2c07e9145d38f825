/* test-quant-plan.c: plan rules, resolution, JSON, diff and sizes on the tiny-llama fixtures
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * The fixture llama-bias-f16 has 2 blocks, hidden 40, intermediate 72, 4 heads of 10 and 2 KV
 * heads (so k/v are 20×40), vocabulary 97, fp16 weights and an untied lm_head.
 */
#include <glib/gstdio.h>
#include <math.h>
#include <string.h>

#include "bl-error.h"
#include "bl-format.h"
#include "bl-quant-plan.h"

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

static const BlLayerAssignment *
find (GPtrArray  *resolved,
      const char *layer)
{
  for (guint i = 0; i < resolved->len; i++)
    {
      const BlLayerAssignment *a = g_ptr_array_index (resolved, i);

      if (g_str_equal (a->layer, layer))
        return a;
    }
  g_assert_not_reached ();
  return NULL;
}

/* First match wins, fields inherit from the defaults, the lm_head takes no defaults, skip beats
 * every rule. */
static void
test_first_match (void)
{
  g_autoptr(BlModel) model = load_fixture ("llama-bias-f16");
  g_autoptr(BlQuantPlan) plan = bl_quant_plan_new ();
  g_autoptr(GPtrArray) r = NULL;
  g_autoptr(GError) error = NULL;
  const BlLayerAssignment *a;

  g_assert_true (bl_quant_plan_set_defaults (plan, "int4:g16", "int8", NULL, NULL, &error));
  g_assert_true (bl_quant_plan_insert_rule (plan, -1, "model.layers.0.*", "int8:channel", NULL,
                                            NULL, NULL, &error));
  g_assert_true (bl_quant_plan_insert_rule (plan, -1, "*.mlp.*", NULL, "none", NULL, NULL,
                                            &error));
  g_assert_true (bl_quant_plan_add_skip (plan, "model.layers.1.self_attn.?_proj.weight", &error));
  g_assert_no_error (error);

  r = bl_quant_plan_resolve (plan, model, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (r->len, ==, 2 * 7 + 1);

  a = find (r, "model.layers.0.mlp.up_proj.weight");       /* rule 0, not rule 1 */
  g_assert_cmpint (a->rule, ==, 0);
  g_assert_cmpstr (a->weight_spec, ==, "int8:channel");
  g_assert_cmpstr (a->activation_spec, ==, "int8:token");  /* inherited; "int8" is per token */
  g_assert_cmpstr (a->algorithm, ==, "rtn");
  g_assert_cmpint (a->rows, ==, 72);
  g_assert_cmpint (a->cols, ==, 40);

  a = find (r, "model.layers.1.mlp.down_proj.weight");     /* rule 1 */
  g_assert_cmpint (a->rule, ==, 1);
  g_assert_cmpstr (a->weight_spec, ==, "int4:g16");
  g_assert_false (a->has_activation);

  a = find (r, "model.layers.1.self_attn.k_proj.weight");  /* skipped */
  g_assert_cmpint (a->rule, ==, -2);
  g_assert_cmpint (a->skip, ==, 0);
  g_assert_false (a->has_weight);
  g_assert_false (a->has_activation);
  g_assert_cmpfloat (a->bits_per_weight, ==, 16.0);

  a = find (r, "lm_head.weight");                          /* no rule: full precision */
  g_assert_cmpint (a->rule, ==, -2);
  g_assert_cmpint (a->skip, ==, -1);
  g_assert_false (a->has_weight);
  g_assert_cmpint (a->rows, ==, 97);

  /* A rule that names the lm_head quantizes it; here before the general rules. */
  g_clear_pointer (&r, g_ptr_array_unref);
  g_assert_true (bl_quant_plan_insert_rule (plan, 0, "lm_head.weight", "int8:channel", "none",
                                            NULL, NULL, &error));
  r = bl_quant_plan_resolve (plan, model, &error);
  g_assert_no_error (error);
  a = find (r, "lm_head.weight");
  g_assert_cmpint (a->rule, ==, 0);
  g_assert_true (a->has_weight);
  g_assert_false (a->has_activation);
  g_assert_cmpint (find (r, "model.layers.0.mlp.up_proj.weight")->rule, ==, 1);
}

static void
expect_error (BlQuantPlan *plan,
              BlModel     *model,
              int          code,
              const char  *fragment)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) r = bl_quant_plan_resolve (plan, model, &error);

  g_assert_null (r);
  g_assert_error (error, BL_ERROR, code);
  if (strstr (error->message, fragment) == NULL)
    g_error ("“%s” does not contain “%s”", error->message, fragment);
}

static void
test_errors_name_the_rule (void)
{
  g_autoptr(BlModel) model = load_fixture ("llama-bias-f16");
  g_autoptr(BlQuantPlan) plan = bl_quant_plan_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GError) parse_error = NULL;
  BlFormatSpec spec;

  /* malformed pattern */
  g_assert_false (bl_quant_plan_insert_rule (plan, -1, "model.layers.[01].*", "int4", NULL, NULL,
                                             NULL, &error));
  g_assert_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, "rules[0] (“model.layers.[01].*”)"));
  g_assert_nonnull (strstr (error->message, "“[”"));
  g_clear_error (&error);
  g_assert_false (bl_quant_plan_insert_rule (plan, -1, "", "int4", NULL, NULL, NULL, &error));
  g_assert_nonnull (strstr (error->message, "empty"));
  g_clear_error (&error);

  /* bad spec: the format parser's own message, behind the rule's name */
  g_assert_false (bl_format_spec_parse ("int4:g0", &spec, &parse_error));
  g_assert_true (bl_quant_plan_insert_rule (plan, -1, "*.q_proj.*", "int4", NULL, NULL, NULL,
                                            &error));
  g_assert_false (bl_quant_plan_insert_rule (plan, -1, "*.k_proj.*", "int4:g0", NULL, NULL, NULL,
                                             &error));
  g_assert_nonnull (strstr (error->message, "rules[1] (“*.k_proj.*”): weight spec: "));
  g_assert_nonnull (strstr (error->message, parse_error->message));
  g_clear_error (&error);
  g_assert_false (bl_quant_plan_insert_rule (plan, -1, "*.k_proj.*", "int4", "int8:g0:x", NULL,
                                             NULL, &error));
  g_assert_nonnull (strstr (error->message, "rules[1] (“*.k_proj.*”): activation spec: "));
  g_clear_error (&error);
  /* per-token weights, static activations of a block family, a static KV cache */
  g_assert_false (bl_quant_plan_insert_rule (plan, -1, "*.k_proj.*", "int8:token", NULL, NULL,
                                             NULL, &error));
  g_assert_nonnull (strstr (error->message, "per-token"));
  g_clear_error (&error);
  g_assert_false (bl_quant_plan_insert_rule (plan, -1, "*.k_proj.*", NULL, "nf4:tensor", NULL,
                                             NULL, &error));
  g_assert_error (error, BL_ERROR, BL_ERROR_UNSUPPORTED_FORMAT);
  g_clear_error (&error);
  g_assert_false (bl_quant_plan_set_kv_cache (plan, "int8:tensor", &error));
  g_assert_nonnull (strstr (error->message, "kv_cache"));
  g_clear_error (&error);

  /* unknown algorithm, unknown option */
  g_assert_false (bl_quant_plan_insert_rule (plan, -1, "*.k_proj.*", "int4", NULL, "gptqq", NULL,
                                             &error));
  g_assert_nonnull (strstr (error->message, "rules[1] (“*.k_proj.*”): "));
  g_assert_nonnull (strstr (error->message, "gptqq"));
  g_clear_error (&error);
  g_assert_false (bl_quant_plan_set_defaults (plan, "int4", NULL, "magic", NULL, &error));
  g_assert_nonnull (strstr (error->message, "defaults: "));
  g_clear_error (&error);
  g_assert_cmpuint (bl_quant_plan_get_n_rules (plan), ==, 1);

  /* patterns against the model: nothing matched, fully shadowed, an unused skip */
  g_assert_true (bl_quant_plan_insert_rule (plan, -1, "model.layers.7.*", "int4", NULL, NULL,
                                            NULL, &error));
  expect_error (plan, model, BL_ERROR_NOT_FOUND, "rules[1] (“model.layers.7.*”) matches no linear layer");
  bl_quant_plan_remove_rule (plan, 1);
  g_assert_true (bl_quant_plan_insert_rule (plan, -1, "model.layers.0.self_attn.q_proj.weight",
                                            "int8", NULL, NULL, NULL, &error));
  expect_error (plan, model, BL_ERROR_INVALID_ARGUMENT, "rules[1] (“model.layers.0.self_attn.q_proj.weight”) decides no layer");
  bl_quant_plan_remove_rule (plan, 1);
  /* the embedding lookup is not a linear layer */
  g_assert_true (bl_quant_plan_insert_rule (plan, -1, "model.embed_tokens.weight", "int8", NULL,
                                            NULL, NULL, &error));
  expect_error (plan, model, BL_ERROR_NOT_FOUND, "rules[1] (“model.embed_tokens.weight”) matches no linear layer");
  bl_quant_plan_remove_rule (plan, 1);
  g_assert_true (bl_quant_plan_add_skip (plan, "*.o_proj.weight", &error));
  g_assert_true (bl_quant_plan_add_skip (plan, "*.norm*", &error));
  expect_error (plan, model, BL_ERROR_NOT_FOUND, "skip[1] (“*.norm*”) matches no linear layer");
  bl_quant_plan_clear_skip (plan);
  g_assert_true (bl_quant_plan_validate (plan, model, &error));
  g_assert_no_error (error);
}

static void
test_json_round_trip (void)
{
  g_autoptr(BlQuantPlan) plan = bl_quant_plan_new ();
  g_autoptr(BlQuantPlan) back = NULL;
  g_autoptr(JsonObject) options = json_object_new ();
  g_autoptr(GError) error = NULL;
  g_autofree char *json = NULL;
  g_autofree char *json2 = NULL;
  g_autofree char *path = NULL;
  BlQuantCalibration calib = { (char *) "brown:train", 8, 128, 5 };
  const BlQuantRule *rule;

  json_object_set_double_member (options, "damp", 0.05);
  json_object_set_boolean_member (options, "act_order", TRUE);
  g_assert_true (bl_quant_plan_set_defaults (plan, "int4:g128:sym", "int8:token", "rtn", NULL,
                                             &error));
  g_assert_true (bl_quant_plan_insert_rule (plan, -1, "model.layers.0.*", "mxfp4", "none",
                                            "gptq", options, &error));
  g_assert_true (bl_quant_plan_insert_rule (plan, -1, "*.down_proj.weight", "nvfp4", NULL, NULL,
                                            NULL, &error));
  g_assert_true (bl_quant_plan_add_skip (plan, "lm_head.weight", &error));
  g_assert_true (bl_quant_plan_set_kv_cache (plan, "int8:g64", &error));
  bl_quant_plan_set_calibration (plan, &calib);
  g_assert_no_error (error);

  json = bl_quant_plan_to_json (plan);
  back = bl_quant_plan_new_from_json (json, -1, "test", &error);
  g_assert_no_error (error);
  json2 = bl_quant_plan_to_json (back);
  g_assert_cmpstr (json, ==, json2);

  g_assert_cmpuint (bl_quant_plan_get_n_rules (back), ==, 2);
  rule = bl_quant_plan_get_rule (back, 0);
  g_assert_cmpstr (rule->pattern, ==, "model.layers.0.*");
  g_assert_cmpstr (rule->weight, ==, "mxfp4");
  g_assert_cmpstr (rule->activation, ==, "none");
  g_assert_cmpstr (rule->algorithm, ==, "gptq");
  g_assert_cmpfloat (json_object_get_double_member (rule->options, "damp"), ==, 0.05);
  rule = bl_quant_plan_get_rule (back, 1);
  g_assert_null (rule->activation);
  g_assert_null (rule->algorithm);
  g_assert_cmpstr (bl_quant_plan_get_defaults (back)->weight, ==, "int4:g128:sym");
  g_assert_cmpstr (bl_quant_plan_get_skip (back)[0], ==, "lm_head.weight");
  g_assert_null (bl_quant_plan_get_skip (back)[1]);
  g_assert_cmpstr (bl_quant_plan_get_kv_cache (back), ==, "int8:g64");
  g_assert_cmpstr (bl_quant_plan_get_calibration (back)->text, ==, "brown:train");
  g_assert_cmpint (bl_quant_plan_get_calibration (back)->ctx, ==, 128);
  g_assert_cmpuint (bl_quant_plan_get_calibration (back)->seed, ==, 5);

  /* through a file */
  path = g_build_filename (g_get_tmp_dir (), "bitlens-test-plan.json", NULL);
  g_assert_true (bl_quant_plan_save (plan, path, &error));
  g_clear_object (&back);
  back = bl_quant_plan_load (path, &error);
  g_assert_no_error (error);
  g_clear_pointer (&json2, g_free);
  json2 = bl_quant_plan_to_json (back);
  g_assert_cmpstr (json, ==, json2);
  g_unlink (path);
}

static void
expect_json_error (const char *json,
                   const char *fragment)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(BlQuantPlan) plan = bl_quant_plan_new_from_json (json, -1, "p.json", &error);

  g_assert_null (plan);
  g_assert_nonnull (error);
  if (strstr (error->message, fragment) == NULL)
    g_error ("“%s” does not contain “%s”", error->message, fragment);
}

static void
test_json_errors (void)
{
  expect_json_error ("{}", "version");
  expect_json_error ("{\"version\": 2}", "newer");
  expect_json_error ("{\"version\": 1, \"rule\": []}", "unknown member “rule”");
  expect_json_error ("{\"version\": 1, \"rules\": [{\"pattern\": \"*\", \"wieght\": \"int4\"}]}",
                     "p.json: rules[0] (“*”): unknown member “wieght”");
  expect_json_error ("{\"version\": 1, \"rules\": [{\"weight\": \"int4\"}]}",
                     "rules[0] has no “pattern”");
  expect_json_error ("{\"version\": 1, \"rules\": [{\"pattern\": \"*\"}, {\"pattern\": \"a\", \"weight\": 4}]}",
                     "rules[1] (“a”): “weight” must be a string");
  expect_json_error ("{\"version\": 1, \"rules\": [{\"pattern\": \"x\", \"weight\": \"int9\"}]}",
                     "p.json: rules[0] (“x”): weight spec: ");
  expect_json_error ("{\"version\": 1, \"defaults\": {\"algorithm\": \"gptq\", \"options\": {\"dampp\": 1}}}",
                     "defaults: ");
  expect_json_error ("{\"version\": 1, \"skip\": [\"a b\"]}", "skip[0] (“a b”)");
  expect_json_error ("{\"version\": 1, \"calibration\": {\"windows\": -1}}", "windows");
  expect_json_error ("{\"version\": 1} {}", "p.json");

  /* null is "none"; an absent member inherits */
  {
    g_autoptr(GError) error = NULL;
    g_autoptr(BlQuantPlan) plan = bl_quant_plan_new_from_json (
      "{\"version\": 1, \"defaults\": {\"weight\": \"int4\", \"activation\": null}, "
      "\"kv_cache\": null}", -1, "p.json", &error);

    g_assert_no_error (error);
    g_assert_cmpstr (bl_quant_plan_get_defaults (plan)->weight, ==, "int4");
    g_assert_cmpstr (bl_quant_plan_get_defaults (plan)->activation, ==, "none");
    g_assert_null (bl_quant_plan_get_kv_cache (plan));
  }
}

static void
test_diff (void)
{
  g_autoptr(BlModel) model = load_fixture ("llama-bias-f16");
  g_autoptr(GError) error = NULL;
  g_autoptr(BlQuantPlan) a = bl_quant_plan_new_from_shorthand ("int4:g32", NULL, NULL, NULL,
                                                               &error);
  g_autoptr(BlQuantPlan) b = bl_quant_plan_copy (a);
  g_autoptr(GPtrArray) ra = NULL;
  g_autoptr(GPtrArray) rb = NULL;
  g_autoptr(GPtrArray) d = NULL;
  g_autoptr(GPtrArray) same = NULL;
  g_autoptr(JsonObject) options = json_object_new ();
  const BlLayerDiff *e;

  json_object_set_double_member (options, "damp", 0.1);
  g_assert_true (bl_quant_plan_insert_rule (b, -1, "model.layers.1.mlp.up_proj.weight",
                                            "int8:channel", NULL, NULL, NULL, &error));
  g_assert_true (bl_quant_plan_insert_rule (b, -1, "model.layers.0.self_attn.v_proj.weight",
                                            NULL, "int8:token", NULL, NULL, &error));
  g_assert_true (bl_quant_plan_insert_rule (b, -1, "model.layers.0.self_attn.o_proj.weight",
                                            NULL, NULL, "gptq", options, &error));
  /* the same assignment spelled differently is no change */
  g_assert_true (bl_quant_plan_insert_rule (b, -1, "model.layers.1.self_attn.q_proj.weight",
                                            "int4:g32:sym", NULL, "rtn", NULL, &error));
  g_assert_no_error (error);

  ra = bl_quant_plan_resolve (a, model, &error);
  rb = bl_quant_plan_resolve (b, model, &error);
  g_assert_no_error (error);
  d = bl_quant_plan_diff (ra, rb);
  g_assert_cmpuint (d->len, ==, 3);
  e = g_ptr_array_index (d, 0);
  g_assert_cmpstr (e->layer, ==, "model.layers.0.self_attn.v_proj.weight");
  g_assert_cmpint (e->changes, ==, BL_LAYER_CHANGE_ACTIVATION);
  e = g_ptr_array_index (d, 1);
  g_assert_cmpstr (e->layer, ==, "model.layers.0.self_attn.o_proj.weight");
  g_assert_cmpint (e->changes, ==, BL_LAYER_CHANGE_WEIGHT);
  g_assert_cmpstr (e->after->algorithm, ==, "gptq");
  e = g_ptr_array_index (d, 2);
  g_assert_cmpstr (e->layer, ==, "model.layers.1.mlp.up_proj.weight");
  g_assert_cmpint (e->changes, ==, BL_LAYER_CHANGE_WEIGHT);
  g_assert_cmpstr (e->before->weight_spec, ==, "int4:g32");
  g_assert_cmpstr (e->after->weight_spec, ==, "int8:channel");

  same = bl_quant_plan_diff (rb, rb);
  g_assert_cmpuint (same->len, ==, 0);
}

/* Sizes by hand: int8:channel:scale=fp16 on a [rows, cols] fp16 layer costs 8 bits per weight
 * plus one 16-bit scale per row; the lm_head stays at its stored 16 bits. */
static void
test_size (void)
{
  g_autoptr(BlModel) model = load_fixture ("llama-bias-f16");
  g_autoptr(GError) error = NULL;
  g_autoptr(BlQuantPlan) fp = bl_quant_plan_new ();
  g_autoptr(BlQuantPlan) q = NULL;
  g_autoptr(GPtrArray) rfp = NULL;
  g_autoptr(GPtrArray) rq = NULL;
  BlQuantSize sfp, sq;
  BlFormatSpec spec;
  double scale_bits, linear_bits = 0, head_bits;
  gint64 linear_params = 0;

  rfp = bl_quant_plan_resolve (fp, model, &error);
  g_assert_no_error (error);
  bl_quant_plan_size (rfp, model, &sfp);
  g_assert_cmpfloat (sfp.linear_bits_per_weight, ==, 16.0);
  g_assert_cmpfloat (sfp.model_bits_per_weight, ==, 16.0);
  g_assert_cmpint (sfp.quantized_params, ==, 0);
  g_assert_true (isnan (sfp.quantized_bits_per_weight));
  g_assert_cmpint (sfp.model_params, ==, bl_model_get_n_params (model));

  q = bl_quant_plan_new_from_shorthand ("int8:channel:scale=fp16", NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (bl_format_spec_parse ("int8:channel:scale=fp16", &spec, &error));
  g_assert_cmpint (spec.scale_type, ==, BL_SCALE_TYPE_F16);
  scale_bits = 16;
  rq = bl_quant_plan_resolve (q, model, &error);
  g_assert_no_error (error);
  bl_quant_plan_size (rq, model, &sq);
  /* q: 40×40, k/v: 20×40, o: 40×40, gate/up: 72×40, down: 40×72 — per block */
  {
    const gint64 shapes[7][2] = { { 40, 40 }, { 20, 40 }, { 20, 40 }, { 40, 40 },
                                  { 72, 40 }, { 72, 40 }, { 40, 72 } };

    for (int b = 0; b < 2; b++)
      for (int i = 0; i < 7; i++)
        {
          linear_params += shapes[i][0] * shapes[i][1];
          linear_bits += shapes[i][0] * shapes[i][1] * 8.0 + shapes[i][0] * scale_bits;
        }
  }
  head_bits = 97 * 40 * 16.0;
  g_assert_cmpint (sq.linear_params, ==, linear_params + 97 * 40);
  g_assert_cmpfloat_with_epsilon (sq.linear_bits, linear_bits + head_bits, 1e-6);
  g_assert_cmpfloat_with_epsilon (find (rq, "model.layers.0.mlp.down_proj.weight")->bits_per_weight,
                                  8.0 + 16.0 / 72.0, 1e-12);
  g_assert_cmpfloat_with_epsilon (sq.model_bits,
                                  sfp.model_bits - linear_params * 16.0 + linear_bits, 1e-6);
  g_assert_cmpfloat_with_epsilon (sq.model_bytes, sq.model_bits / 8, 1e-9);
  g_assert_cmpint (sq.quantized_params, ==, linear_params);
  g_assert_cmpfloat_with_epsilon (sq.quantized_bits_per_weight, linear_bits / linear_params, 1e-12);
}

/* A tied model: quantizing lm_head adds a copy beside the exact embedding. */
static void
test_size_tied (void)
{
  g_autoptr(BlModel) model = load_fixture ("llama-tied-bf16");
  g_autoptr(GError) error = NULL;
  g_autoptr(BlQuantPlan) fp = bl_quant_plan_new ();
  g_autoptr(BlQuantPlan) q = bl_quant_plan_new ();
  g_autoptr(GPtrArray) rfp = NULL;
  g_autoptr(GPtrArray) rq = NULL;
  const BlLayerAssignment *head;
  BlQuantSize sfp, sq;

  g_assert_true (bl_quant_plan_insert_rule (q, -1, "lm_head.weight", "int4:g32", NULL, NULL, NULL,
                                            &error));
  rfp = bl_quant_plan_resolve (fp, model, &error);
  rq = bl_quant_plan_resolve (q, model, &error);
  g_assert_no_error (error);
  bl_quant_plan_size (rfp, model, &sfp);
  bl_quant_plan_size (rq, model, &sq);
  head = find (rq, "lm_head.weight");
  g_assert_true (head->has_weight);
  g_assert_cmpfloat_with_epsilon (sq.model_bits - sfp.model_bits,
                                  head->n_params * head->bits_per_weight, 1e-6);
}

static void
test_shorthand (void)
{
  g_autoptr(BlModel) model = load_fixture ("qwen2-gqa");
  g_autoptr(GError) error = NULL;
  const char *skip[] = { "*.down_proj.weight", "model.layers.0.*", NULL };
  g_autoptr(BlQuantPlan) plan = bl_quant_plan_new_from_shorthand ("nvfp4", "int4:token", NULL,
                                                                  skip, &error);
  g_autoptr(GPtrArray) r = NULL;
  guint quantized = 0;

  g_assert_no_error (error);
  r = bl_quant_plan_resolve (plan, model, &error);
  g_assert_no_error (error);
  for (guint i = 0; i < r->len; i++)
    {
      const BlLayerAssignment *a = g_ptr_array_index (r, i);

      if (a->has_weight)
        {
          quantized++;
          g_assert_cmpint (a->block, !=, 0);
          g_assert_cmpint (a->kind, !=, BL_LAYER_MLP_DOWN);
          g_assert_cmpstr (a->weight_spec, ==, "nvfp4");
          g_assert_cmpstr (a->activation_spec, ==, "int4:token");
          g_assert_cmpint (a->rule, ==, -1);
        }
    }
  g_assert_cmpuint (quantized, ==, (bl_model_get_config (model)->n_layers - 1) * 6);

  g_clear_object (&plan);
  plan = bl_quant_plan_new_from_shorthand ("int4", NULL, NULL, (const char *[]) { "a[", NULL },
                                           &error);
  g_assert_null (plan);
  g_assert_nonnull (strstr (error->message, "skip[0] (“a[”)"));
}

static void
on_changed (BlQuantPlan *plan,
            gpointer     user_data)
{
  (*(int *) user_data)++;
}

static void
test_changed_signal (void)
{
  g_autoptr(BlQuantPlan) plan = bl_quant_plan_new ();
  g_autoptr(GError) error = NULL;
  int n = 0;

  g_signal_connect (plan, "changed", G_CALLBACK (on_changed), &n);
  g_assert_true (bl_quant_plan_insert_rule (plan, -1, "*", "int4", NULL, NULL, NULL, &error));
  g_assert_false (bl_quant_plan_insert_rule (plan, -1, "*", "int99", NULL, NULL, NULL, &error));
  g_clear_error (&error);
  bl_quant_plan_remove_rule (plan, 0);
  g_assert_cmpint (n, ==, 2);
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/bitlens/quant-plan/first-match", test_first_match);
  g_test_add_func ("/bitlens/quant-plan/errors-name-the-rule", test_errors_name_the_rule);
  g_test_add_func ("/bitlens/quant-plan/json/round-trip", test_json_round_trip);
  g_test_add_func ("/bitlens/quant-plan/json/errors", test_json_errors);
  g_test_add_func ("/bitlens/quant-plan/diff", test_diff);
  g_test_add_func ("/bitlens/quant-plan/size", test_size);
  g_test_add_func ("/bitlens/quant-plan/size-tied", test_size_tied);
  g_test_add_func ("/bitlens/quant-plan/shorthand", test_shorthand);
  g_test_add_func ("/bitlens/quant-plan/changed-signal", test_changed_signal);

  return g_test_run ();
}
