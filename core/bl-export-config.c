/* bl-export-config.c: the assignment as the configuration files of the deployment tools
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * Mapping rules and their limits are documented in docs/exports.md. Each target accepts
 * only the formats it has a name for; any other format is a %BL_ERROR_UNSUPPORTED_FORMAT
 * error that names the layer, rather than a silent approximation.
 */
#include "bl-export.h"

#include <string.h>

#include "bl-error.h"
#include "bl-quant-plan.h"

static const char *const projections[] = {
  "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
  "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj",
};

/**
 * bl_export_module_name:
 * @layer: a weight name ("model.layers.0.mlp.up_proj.weight")
 *
 * Returns: (transfer full): the module that owns it ("model.layers.0.mlp.up_proj"), the
 *   name compressed-tensors and ModelOpt use
 */
char *
bl_export_module_name (const char *layer)
{
  if (g_str_has_suffix (layer, ".weight"))
    return g_strndup (layer, strlen (layer) - strlen (".weight"));
  return g_strdup (layer);
}

/**
 * bl_export_linear_layers:
 * @model: a model
 *
 * Returns: (transfer full) (element-type utf8): the engine names of every linear layer, block
 *   by block, then "lm_head.weight"
 */
GPtrArray *
bl_export_linear_layers (BlModel *model)
{
  GPtrArray *names = g_ptr_array_new_with_free_func (g_free);
  const BlModelConfig *cfg = bl_model_get_config (model);

  for (int b = 0; b < cfg->n_layers; b++)
    for (guint p = 0; p < G_N_ELEMENTS (projections); p++)
      g_ptr_array_add (names, g_strdup_printf ("model.layers.%d.%s.weight", b, projections[p]));
  g_ptr_array_add (names, g_strdup ("lm_head.weight"));
  return names;
}

static const BlExportLayer *
find_layer (const BlExportLayer *layers,
            guint                n_layers,
            const char          *name)
{
  for (guint i = 0; i < n_layers; i++)
    if (g_str_equal (layers[i].layer, name))
      return &layers[i];
  return NULL;
}

static gboolean
quantized (const BlExportLayer *l)
{
  return l != NULL && (l->weight != NULL || l->activation != NULL);
}

static char *
spec_string (const BlFormatSpec *spec)
{
  return spec != NULL ? bl_format_spec_to_string (spec) : g_strdup (BL_QUANT_PLAN_NONE);
}

static gboolean
unsupported (GError            **error,
             const char         *target,
             const char         *layer,
             const char         *what,
             const BlFormatSpec *spec,
             const char         *supported)
{
  g_autofree char *s = spec_string (spec);

  g_set_error (error, BL_ERROR, BL_ERROR_UNSUPPORTED_FORMAT,
               "%s export: layer %s has %s format %s, which %s has no name for (it takes %s)",
               target, layer, what, s, target, supported);
  return FALSE;
}

/**
 * bl_export_plan_json:
 * @layers: (array length=n_layers): the assignment
 * @n_layers: its length
 * @kv_cache: (nullable): the KV-cache spec
 * @error: return location for an error
 *
 * Writes the assignment as an explicit plan (docs/plan-schema.md): one rule per listed layer
 * whose pattern is the layer's own name, no defaults, so that every other layer stays in full
 * precision. Loading and resolving it gives back exactly @layers.
 *
 * Returns: (transfer full) (nullable): the plan JSON
 */
char *
bl_export_plan_json (const BlExportLayer *layers,
                     guint                n_layers,
                     const char          *kv_cache,
                     GError             **error)
{
  g_autoptr(BlQuantPlan) plan = bl_quant_plan_new ();

  for (guint i = 0; i < n_layers; i++)
    {
      g_autofree char *w = spec_string (layers[i].weight);
      g_autofree char *a = spec_string (layers[i].activation);

      if (!bl_quant_plan_insert_rule (plan, -1, layers[i].layer, w, a,
                                      layers[i].algorithm != NULL ? layers[i].algorithm : "rtn",
                                      layers[i].options, error))
        return NULL;
    }
  if (kv_cache != NULL && !bl_quant_plan_set_kv_cache (plan, kv_cache, error))
    return NULL;
  return bl_quant_plan_to_json (plan);
}

/* ------------------------------------------------------------------------------------------ */
/* compressed-tensors */

#define CT_SUPPORTED "int2–int8 (group, channel, tensor, token), fp8-e4m3, nvfp4 and mxfp4"

static const char *
ct_strategy (const BlFormatSpec *s)
{
  switch (s->granularity)
    {
    case BL_GRANULARITY_TENSOR: return "tensor";
    case BL_GRANULARITY_CHANNEL: return "channel";
    case BL_GRANULARITY_TOKEN: return "token";
    default: return "group";
    }
}

/* compressed-tensors QuantizationArgs (quant_args.py) for one weight or activation format */
static gboolean
ct_args (JsonBuilder        *b,
         const BlFormatSpec *s,
         gboolean            activation,
         const char         *layer,
         GError            **error)
{
  const char *type, *strategy = ct_strategy (s);
  int bits = s->bits, group = s->granularity == BL_GRANULARITY_GROUP ? s->group_size : 0;
  gboolean symmetric = TRUE, dynamic = FALSE, local = FALSE;

  switch (s->family)
    {
    case BL_FORMAT_INT:
      type = "int";
      symmetric = s->int_convention != BL_INT_ASYM;
      break;
    case BL_FORMAT_FP:
      if (s->ebits != 4 || s->mbits != 3)
        return unsupported (error, "compressed-tensors", layer, activation ? "activation" : "weight",
                            s, CT_SUPPORTED);
      type = "float";
      break;
    case BL_FORMAT_NVFP4:
      /* NVFP4: an E4M3 scale per 16 elements under an fp32 tensor scale */
      type = "float";
      strategy = "tensor_group";
      group = 16;
      local = activation;
      break;
    case BL_FORMAT_MXFP:
      if (s->ebits != 2 || s->mbits != 1)
        return unsupported (error, "compressed-tensors", layer, activation ? "activation" : "weight",
                            s, CT_SUPPORTED);
      type = "float";
      group = 32;
      strategy = "group";
      break;
    default:
      return unsupported (error, "compressed-tensors", layer, activation ? "activation" : "weight",
                          s, CT_SUPPORTED);
    }
  if (activation)
    {
      /* a per-channel static input scale has no compressed-tensors strategy */
      if (s->granularity == BL_GRANULARITY_CHANNEL)
        return unsupported (error, "compressed-tensors", layer, "activation", s,
                            "token, group and tensor activations");
      dynamic = s->granularity != BL_GRANULARITY_TENSOR;
    }

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "num_bits");
  json_builder_add_int_value (b, bits);
  json_builder_set_member_name (b, "type");
  json_builder_add_string_value (b, type);
  json_builder_set_member_name (b, "symmetric");
  json_builder_add_boolean_value (b, symmetric);
  json_builder_set_member_name (b, "strategy");
  json_builder_add_string_value (b, strategy);
  json_builder_set_member_name (b, "group_size");
  if (group > 0)
    json_builder_add_int_value (b, group);
  else
    json_builder_add_null_value (b);
  json_builder_set_member_name (b, "block_structure");
  json_builder_add_null_value (b);
  json_builder_set_member_name (b, "dynamic");
  if (local)
    json_builder_add_string_value (b, "local");
  else
    json_builder_add_boolean_value (b, dynamic);
  json_builder_set_member_name (b, "actorder");
  json_builder_add_null_value (b);
  json_builder_set_member_name (b, "observer");
  if (dynamic && !local)
    json_builder_add_null_value (b);
  else
    json_builder_add_string_value (b, s->clip == BL_CLIP_MSE ? "mse" : "minmax");
  json_builder_set_member_name (b, "observer_kwargs");
  json_builder_begin_object (b);
  json_builder_end_object (b);
  json_builder_end_object (b);
  return TRUE;
}

/* CompressionFormat (compressed_tensors/config/base.py) of one scheme */
static const char *
ct_format (const BlFormatSpec *w,
           const BlFormatSpec *a)
{
  if (w == NULL)
    return "dense";
  if (w->family == BL_FORMAT_NVFP4)
    return "nvfp4-pack-quantized";
  if (w->family == BL_FORMAT_MXFP)
    return "mxfp4-pack-quantized";
  if (w->family == BL_FORMAT_FP)
    return "float-quantized";
  if (a == NULL)
    return "pack-quantized";
  if (a->family == BL_FORMAT_INT)
    return "int-quantized";
  return "naive-quantized";
}

/* Whether two layers belong to the same scheme: equal weight and activation meaning. */
static gboolean
same_scheme (const BlExportLayer *x,
             const BlExportLayer *y)
{
  if ((x->weight == NULL) != (y->weight == NULL) || (x->activation == NULL) != (y->activation == NULL))
    return FALSE;
  return (x->weight == NULL || bl_format_spec_equal (x->weight, y->weight))
         && (x->activation == NULL || bl_format_spec_equal (x->activation, y->activation));
}

/**
 * bl_export_compressed_tensors:
 * @layers: (array length=n_layers): the assignment
 * @n_layers: its length
 * @model: the model, for the layers to ignore
 * @kv_cache: (nullable): the KV-cache format
 * @error: return location for an error
 *
 * Builds the `quantization_config` member of a compressed-tensors config.json: one config
 * group per distinct (weight, activation) scheme whose `targets` are the module names of its
 * layers, `ignore` listing every linear module left in full precision, the group formats
 * (`pack-quantized`, `int-quantized`, `float-quantized`, `nvfp4-pack-quantized`,
 * `mxfp4-pack-quantized`) and `mixed-precision` at the top when they differ.
 *
 * Returns: (transfer full) (nullable): the object
 */
JsonNode *
bl_export_compressed_tensors (const BlExportLayer *layers,
                              guint                n_layers,
                              BlModel             *model,
                              const BlFormatSpec  *kv_cache,
                              GError             **error)
{
  g_autoptr(JsonBuilder) b = json_builder_new ();
  g_autoptr(GPtrArray) reps = g_ptr_array_new ();     /* one layer per scheme */
  g_autoptr(GPtrArray) names = bl_export_linear_layers (model);
  g_autoptr(GHashTable) formats = g_hash_table_new (g_str_hash, g_str_equal);
  const char *top = NULL;

  for (guint i = 0; i < n_layers; i++)
    {
      gboolean found = FALSE;

      if (!quantized (&layers[i]))
        continue;
      for (guint r = 0; r < reps->len && !found; r++)
        found = same_scheme (reps->pdata[r], &layers[i]);
      if (!found)
        g_ptr_array_add (reps, (gpointer) &layers[i]);
    }

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "config_groups");
  json_builder_begin_object (b);
  for (guint r = 0; r < reps->len; r++)
    {
      const BlExportLayer *rep = reps->pdata[r];
      g_autofree char *group = g_strdup_printf ("group_%u", r);
      const char *format = ct_format (rep->weight, rep->activation);

      g_hash_table_add (formats, (gpointer) format);
      top = format;
      json_builder_set_member_name (b, group);
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "targets");
      json_builder_begin_array (b);
      for (guint i = 0; i < n_layers; i++)
        if (quantized (&layers[i]) && same_scheme (rep, &layers[i]))
          {
            g_autofree char *module = bl_export_module_name (layers[i].layer);

            json_builder_add_string_value (b, module);
          }
      json_builder_end_array (b);
      json_builder_set_member_name (b, "weights");
      if (rep->weight == NULL)
        json_builder_add_null_value (b);
      else if (!ct_args (b, rep->weight, FALSE, rep->layer, error))
        return NULL;
      json_builder_set_member_name (b, "input_activations");
      if (rep->activation == NULL)
        json_builder_add_null_value (b);
      else if (!ct_args (b, rep->activation, TRUE, rep->layer, error))
        return NULL;
      json_builder_set_member_name (b, "output_activations");
      json_builder_add_null_value (b);
      json_builder_set_member_name (b, "format");
      json_builder_add_string_value (b, format);
      json_builder_end_object (b);
    }
  json_builder_end_object (b);
  json_builder_set_member_name (b, "format");
  json_builder_add_string_value (b, g_hash_table_size (formats) > 1 ? "mixed-precision"
                                    : top != NULL ? top : "dense");
  json_builder_set_member_name (b, "global_compression_ratio");
  json_builder_add_null_value (b);
  json_builder_set_member_name (b, "ignore");
  json_builder_begin_array (b);
  for (guint i = 0; i < names->len; i++)
    if (!quantized (find_layer (layers, n_layers, names->pdata[i])))
      {
        g_autofree char *module = bl_export_module_name (names->pdata[i]);

        json_builder_add_string_value (b, module);
      }
  json_builder_end_array (b);
  json_builder_set_member_name (b, "kv_cache_scheme");
  if (kv_cache == NULL)
    json_builder_add_null_value (b);
  else if (!ct_args (b, kv_cache, TRUE, "kv_cache", error))
    return NULL;
  json_builder_set_member_name (b, "quant_method");
  json_builder_add_string_value (b, "compressed-tensors");
  json_builder_set_member_name (b, "quantization_status");
  json_builder_add_string_value (b, "compressed");
  json_builder_end_object (b);
  return json_builder_get_root (b);
}

/**
 * bl_export_hf_config:
 * @model: the model
 * @quantization_config: the member to add
 * @error: return location for an error
 *
 * Returns: (transfer full) (nullable): the model's config.json with `quantization_config`
 *   set, pretty-printed
 */
char *
bl_export_hf_config (BlModel   *model,
                     JsonNode  *quantization_config,
                     GError   **error)
{
  g_autofree char *path = g_build_filename (bl_model_get_path (model), "config.json", NULL);
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(JsonGenerator) gen = json_generator_new ();
  JsonNode *root;

  if (!json_parser_load_from_file (parser, path, error))
    return NULL;
  root = json_parser_get_root (parser);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    {
      g_set_error (error, BL_ERROR, BL_ERROR_CORRUPT_FILE, "%s: not a JSON object", path);
      return NULL;
    }
  json_object_set_member (json_node_get_object (root), "quantization_config",
                          json_node_copy (quantization_config));
  json_generator_set_root (gen, root);
  json_generator_set_pretty (gen, TRUE);
  json_generator_set_indent (gen, 2);
  return json_generator_to_data (gen, NULL);
}

/* ------------------------------------------------------------------------------------------ */
/* ModelOpt */

#define MO_SUPPORTED "FP8 (W fp8-e4m3:tensor with A fp8-e4m3:tensor, or W :channel with A :token), " \
                     "NVFP4 (with or without nvfp4 activations), W4A16_AWQ / W4A8_AWQ (int4:gN sym, " \
                     "fp8 activations for W4A8), W8A16 and W8A8_SQ_PER_CHANNEL (int8:channel), " \
                     "W4A16_MXFP4 / W4A8_MXFP4_FP8 (mxfp4), MXFP8 (mxfp8-e4m3 with mxfp8 activations)"

static gboolean
is_fp8 (const BlFormatSpec *s)
{
  return s != NULL && s->family == BL_FORMAT_FP && s->ebits == 4 && s->mbits == 3;
}

/* The ModelOpt quant_algo (modelopt/torch/export: process_layer_quant_config) of a layer,
 * with its group size (0: none) */
static const char *
modelopt_algo (const BlExportLayer *l,
               int                 *group_size,
               GError             **error)
{
  const BlFormatSpec *w = l->weight, *a = l->activation;

  *group_size = 0;
  if (w == NULL)
    goto fail;
  if (is_fp8 (w) && is_fp8 (a))
    {
      if (w->granularity == BL_GRANULARITY_TENSOR && a->granularity == BL_GRANULARITY_TENSOR)
        return "FP8";
      if (w->granularity == BL_GRANULARITY_CHANNEL && a->granularity == BL_GRANULARITY_TOKEN)
        return "FP8_PER_CHANNEL_PER_TOKEN";
      goto fail;
    }
  if (w->family == BL_FORMAT_NVFP4)
    {
      *group_size = 16;
      if (a == NULL)
        return "W4A16_NVFP4";
      if (a->family == BL_FORMAT_NVFP4)
        return "NVFP4";
      goto fail;
    }
  if (w->family == BL_FORMAT_INT && w->bits == 4 && w->granularity == BL_GRANULARITY_GROUP
      && w->int_convention != BL_INT_ASYM)
    {
      *group_size = w->group_size;
      if (a == NULL)
        return "W4A16_AWQ";
      if (is_fp8 (a))
        return "W4A8_AWQ";
      goto fail;
    }
  if (w->family == BL_FORMAT_INT && w->bits == 8 && w->granularity == BL_GRANULARITY_CHANNEL
      && w->int_convention != BL_INT_ASYM)
    {
      if (a == NULL)
        return "W8A16";
      if (a->family == BL_FORMAT_INT && a->bits == 8)
        return "W8A8_SQ_PER_CHANNEL";
      goto fail;
    }
  if (w->family == BL_FORMAT_MXFP && w->ebits == 2 && w->mbits == 1)
    {
      *group_size = 32;
      if (a == NULL)
        return "W4A16_MXFP4";
      if (is_fp8 (a))
        return "W4A8_MXFP4_FP8";
      goto fail;
    }
  if (w->family == BL_FORMAT_MXFP && w->ebits == 4 && w->mbits == 3 && a != NULL
      && a->family == BL_FORMAT_MXFP && a->ebits == 4 && a->mbits == 3)
    {
      *group_size = 32;
      return "MXFP8";
    }

fail:
  {
    g_autofree char *ws = spec_string (w), *as = spec_string (a);

    g_set_error (error, BL_ERROR, BL_ERROR_UNSUPPORTED_FORMAT,
                 "ModelOpt export: layer %s has weights %s and activations %s, which ModelOpt has "
                 "no quant_algo for (it takes %s)", l->layer, ws, as, MO_SUPPORTED);
    return NULL;
  }
}

static void
modelopt_layer_config (JsonBuilder         *b,
                       const BlExportLayer *l,
                       const char          *algo,
                       int                  group_size)
{
  json_builder_set_member_name (b, "quant_algo");
  json_builder_add_string_value (b, algo);
  if (group_size > 0)
    {
      json_builder_set_member_name (b, "group_size");
      json_builder_add_int_value (b, group_size);
    }
  if (g_str_has_suffix (algo, "_AWQ"))
    {
      /* AWQ checkpoints carry a per-input-channel pre_quant_scale; only an AWQ run has one */
      json_builder_set_member_name (b, "has_zero_point");
      json_builder_add_boolean_value (b, FALSE);
      json_builder_set_member_name (b, "pre_quant_scale");
      json_builder_add_boolean_value (b, l->algorithm != NULL && strstr (l->algorithm, "awq") != NULL);
    }
}

/**
 * bl_export_modelopt:
 * @layers: (array length=n_layers): the assignment
 * @n_layers: its length
 * @model: the model, for the modules to exclude
 * @kv_cache: (nullable): the KV-cache format (fp8-e4m3 or nvfp4)
 * @error: return location for an error
 *
 * Writes ModelOpt's hf_quant_config.json: `quantization.quant_algo` with `group_size` and
 * `exclude_modules` when every quantized layer shares one algorithm, else
 * `"MIXED_PRECISION"` with a `quantized_layers` map from module name to its algorithm.
 *
 * Returns: (transfer full) (nullable): the file's text
 */
char *
bl_export_modelopt (const BlExportLayer *layers,
                    guint                n_layers,
                    BlModel             *model,
                    const BlFormatSpec  *kv_cache,
                    GError             **error)
{
  g_autoptr(JsonBuilder) b = json_builder_new ();
  g_autoptr(JsonGenerator) gen = json_generator_new ();
  g_autoptr(JsonNode) root = NULL;
  g_autoptr(GPtrArray) names = bl_export_linear_layers (model);
  g_autofree const char **algos = g_new0 (const char *, n_layers + 1);
  g_autofree int *groups = g_new0 (int, n_layers + 1);
  const char *kv_algo = NULL;
  gboolean mixed = FALSE;
  int first = -1;

  for (guint i = 0; i < n_layers; i++)
    {
      if (!quantized (&layers[i]))
        continue;
      algos[i] = modelopt_algo (&layers[i], &groups[i], error);
      if (algos[i] == NULL)
        return NULL;
      if (first < 0)
        first = (int) i;
      else if (!g_str_equal (algos[i], algos[first]) || groups[i] != groups[first])
        mixed = TRUE;
    }
  if (kv_cache != NULL)
    {
      kv_algo = is_fp8 (kv_cache) ? "FP8" : kv_cache->family == BL_FORMAT_NVFP4 ? "NVFP4" : NULL;
      if (kv_algo == NULL)
        {
          unsupported (error, "ModelOpt", "kv_cache", "KV-cache", kv_cache, "fp8-e4m3 and nvfp4");
          return NULL;
        }
    }

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "producer");
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "name");
  json_builder_add_string_value (b, "bitlens");
  json_builder_set_member_name (b, "version");
  json_builder_add_string_value (b, BITLENS_VERSION);
  json_builder_end_object (b);
  json_builder_set_member_name (b, "quantization");
  json_builder_begin_object (b);
  if (mixed)
    {
      json_builder_set_member_name (b, "quant_algo");
      json_builder_add_string_value (b, "MIXED_PRECISION");
    }
  else if (first >= 0)
    modelopt_layer_config (b, &layers[first], algos[first], groups[first]);
  else
    {
      json_builder_set_member_name (b, "quant_algo");
      json_builder_add_null_value (b);
    }
  json_builder_set_member_name (b, "kv_cache_quant_algo");
  if (kv_algo != NULL)
    json_builder_add_string_value (b, kv_algo);
  else
    json_builder_add_null_value (b);
  json_builder_set_member_name (b, "exclude_modules");
  json_builder_begin_array (b);
  for (guint i = 0; i < names->len; i++)
    if (!quantized (find_layer (layers, n_layers, names->pdata[i])))
      {
        g_autofree char *module = bl_export_module_name (names->pdata[i]);

        json_builder_add_string_value (b, module);
      }
  json_builder_end_array (b);
  if (mixed)
    {
      json_builder_set_member_name (b, "quantized_layers");
      json_builder_begin_object (b);
      for (guint i = 0; i < n_layers; i++)
        if (algos[i] != NULL)
          {
            g_autofree char *module = bl_export_module_name (layers[i].layer);

            json_builder_set_member_name (b, module);
            json_builder_begin_object (b);
            modelopt_layer_config (b, &layers[i], algos[i], groups[i]);
            json_builder_end_object (b);
          }
      json_builder_end_object (b);
    }
  json_builder_end_object (b);
  json_builder_end_object (b);
  root = json_builder_get_root (b);
  json_generator_set_root (gen, root);
  json_generator_set_pretty (gen, TRUE);
  json_generator_set_indent (gen, 2);
  return json_generator_to_data (gen, NULL);
}

/* ------------------------------------------------------------------------------------------ */
/* llama.cpp */

/**
 * bl_export_spec_to_llama_cpp:
 * @spec: a weight format
 * @out_type_name: (out): llama-quantize's name of the type
 *
 * The GGUF types of bl_export_spec_to_ggml() plus `int5:g32:q4_0`, which is ggml's Q5_0
 * (d = max/−16, q = min(31, trunc(x/d + 16.5))), a type llama-quantize writes and Bitlens
 * evaluates but whose blocks Bitlens does not encode itself.
 *
 * Returns: whether llama.cpp has a type for @spec
 */
gboolean
bl_export_spec_to_llama_cpp (const BlFormatSpec  *spec,
                             const char         **out_type_name)
{
  BlGgmlType type;

  if (bl_export_spec_to_ggml (spec, &type))
    {
      *out_type_name = bl_ggml_type_get_traits (type)->name;
      return TRUE;
    }
  if (spec->family == BL_FORMAT_INT && spec->bits == 5 && spec->int_convention == BL_INT_Q4_0
      && spec->granularity == BL_GRANULARITY_GROUP && spec->group_size == 32
      && spec->scale_type == BL_SCALE_TYPE_F16 && spec->clip == BL_CLIP_NONE
      && spec->rounding == BL_ROUND_UP)
    {
      *out_type_name = "q5_0";
      return TRUE;
    }
  return FALSE;
}

/* llama-quantize's positional type argument (its QUANT_OPTIONS names) for a tensor type */
static const char *
ftype_name (const char *type)
{
  if (g_str_equal (type, "mxfp4"))
    return "MXFP4_MOE";
  return type;
}

static char *
regex_quote (const char *name)
{
  GString *s = g_string_new ("^");

  for (const char *p = name; *p; p++)
    {
      if (*p == '.')
        g_string_append_c (s, '\\');
      g_string_append_c (s, *p);
    }
  g_string_append_c (s, '$');
  return g_string_free (s, FALSE);
}

/**
 * bl_export_llama_cpp:
 * @layers: (array length=n_layers): the assignment
 * @n_layers: its length
 * @model: the model
 * @input_gguf: (nullable): the F16 GGUF file llama-quantize reads ("MODEL-f16.gguf" if %NULL)
 * @output_gguf: (nullable): the file it writes ("MODEL-mixed.gguf" if %NULL)
 * @error: return location for an error
 *
 * Writes the assignment as llama-quantize `--tensor-type` overrides, one per linear tensor
 * with an anchored regex, so that none of llama-quantize's built-in per-tensor choices
 * (llama_tensor_get_type) applies, and the full command: the convert_hf_to_gguf.py step
 * that produces the F16 input, then llama-quantize with the overrides, the embedding and
 * output types, and the most common type as the positional default.
 *
 * Returns: (transfer full) (nullable): the text, a shell script
 */
char *
bl_export_llama_cpp (const BlExportLayer *layers,
                     guint                n_layers,
                     BlModel             *model,
                     const char          *input_gguf,
                     const char          *output_gguf,
                     GError             **error)
{
  const BlModelConfig *cfg = bl_model_get_config (model);
  g_autoptr(GPtrArray) names = bl_export_linear_layers (model);
  g_autoptr(GString) out = g_string_new (NULL);
  g_autoptr(GString) notes = g_string_new (NULL);
  g_autoptr(GHashTable) params = g_hash_table_new (g_str_hash, g_str_equal);
  g_autofree char *base = g_path_get_basename (bl_model_get_path (model));
  g_autofree char *in = input_gguf != NULL ? g_strdup (input_gguf) : g_strdup_printf ("%s-f16.gguf", base);
  g_autofree char *outf = output_gguf != NULL ? g_strdup (output_gguf)
                                              : g_strdup_printf ("%s-mixed.gguf", base);
  g_autofree char *in_q = g_shell_quote (in), *out_q = g_shell_quote (outf);
  g_autofree char *model_q = g_shell_quote (bl_model_get_path (model));
  const char *head_type = "f16", *default_type = "f16";
  gsize best = 0;
  GHashTableIter it;
  gpointer k, v;

  g_string_append_printf (out, "#!/bin/sh\n# llama.cpp per-tensor types for %s, written by Bitlens.\n"
                          "# One --tensor-type per linear tensor (anchored regex), so that "
                          "llama-quantize's own\n# per-tensor heuristics never apply.\nset -e\n",
                          base);
  g_string_append_printf (out, "python3 convert_hf_to_gguf.py %s --outtype f16 --outfile %s\n", model_q,
                          in_q);
  g_string_append (out, "llama-quantize \\\n");
  for (guint i = 0; i < names->len; i++)
    {
      const char *name = names->pdata[i];
      const BlExportLayer *l = find_layer (layers, n_layers, name);
      const char *type = "f16";
      g_autofree char *gguf = bl_export_gguf_tensor_name (name);
      g_autofree char *re = NULL, *arg = NULL, *quoted = NULL;
      const BlTensor *t = bl_model_get_tensor (model, name);

      if (l != NULL && l->weight != NULL && !bl_export_spec_to_llama_cpp (l->weight, &type))
        {
          unsupported (error, "llama.cpp", name, "weight", l->weight,
                       "fp16, bf16, int8:g32 (q8_0), int4:g32:q4_0 (q4_0), int5:g32:q4_0 (q5_0) "
                       "and mxfp4");
          return NULL;
        }
      if (!g_str_equal (type, "f16") && !g_str_equal (type, "bf16") && t != NULL
          && t->shape[1] % 32 != 0)
        {
          g_string_append_printf (notes, "# %s: rows of %" G_GINT64_FORMAT " elements fit no "
                                  "32-element block; kept as f16\n", name, t->shape[1]);
          type = "f16";
        }
      if (g_str_equal (name, "lm_head.weight"))
        {
          head_type = type;
          continue;
        }
      if (t != NULL)
        g_hash_table_insert (params, (gpointer) type,
                             GSIZE_TO_POINTER (GPOINTER_TO_SIZE (g_hash_table_lookup (params, type))
                                               + (gsize) t->n_elements));
      re = regex_quote (gguf);
      arg = g_strdup_printf ("%s=%s", re, type);
      quoted = g_shell_quote (arg);
      g_string_append_printf (out, "  --tensor-type %s \\\n", quoted);
    }
  g_hash_table_iter_init (&it, params);
  while (g_hash_table_iter_next (&it, &k, &v))
    if (GPOINTER_TO_SIZE (v) > best)
      {
        best = GPOINTER_TO_SIZE (v);
        default_type = k;
      }
  if (cfg->tie_word_embeddings)
    {
      /* llama.cpp reads a tied output projection from token_embd.weight */
      g_string_append_printf (out, "  --token-embedding-type %s \\\n", head_type);
      if (!g_str_equal (head_type, "f16"))
        g_string_append (notes, "# the model ties lm_head to the embedding: llama.cpp reads both "
                                "from token_embd.weight, so the embedding takes lm_head's type here; "
                                "`bitlens-cli export --to gguf` writes a separate output.weight "
                                "instead\n");
    }
  else
    g_string_append_printf (out, "  --token-embedding-type f16 \\\n  --output-tensor-type %s \\\n",
                            head_type);
  g_string_append_printf (out, "  %s %s %s\n", in_q, out_q, ftype_name (default_type));
  g_string_append (out, notes->str);
  return g_string_free (g_steal_pointer (&out), FALSE);
}
