/* bl-model-config.c: reading a Hugging Face config.json into a BlModelConfig
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "bl-model-config.h"

#include <math.h>
#include <string.h>

#include "bl-error.h"
#include "bl-json-private.h"

/* What each supported model_type does when config.json leaves a field out, and which bias
 * switches its attention and MLP modules read. The defaults are those of the config classes
 * in transformers (models/llama/configuration_llama.py, models/mistral/configuration_mistral.py,
 * models/qwen2/configuration_qwen2.py); the bias rules come from the matching modeling_*.py:
 * Qwen2Attention always biases q/k/v and never o_proj, MistralAttention never biases, and
 * LlamaAttention/LlamaMLP follow attention_bias (all four projections) and mlp_bias. */
typedef struct
{
  const char *model_type;
  int max_position_embeddings;
  gboolean qkv_bias;
  gboolean reads_attention_bias;
  gboolean reads_mlp_bias;
} Architecture;

static const Architecture architectures[] = {
  { "llama", 2048, FALSE, TRUE, TRUE },
  { "mistral", 4096 * 32, FALSE, FALSE, FALSE },
  { "qwen2", 32768, TRUE, FALSE, FALSE },
  /* models/mixtral/configuration_mixtral.py, models/qwen2_moe/configuration_qwen2_moe.py */
  { "mixtral", 4096 * 32, FALSE, FALSE, FALSE },
  { "qwen2_moe", 32768, TRUE, FALSE, FALSE },
};

static const char * const supported_types[] = { "llama", "mistral", "qwen2", "mixtral",
                                                 "qwen2_moe", NULL };

/* All three config classes default to these. */
#define DEFAULT_RMS_NORM_EPS 1e-6
#define DEFAULT_ROPE_THETA 10000.0

/**
 * bl_model_config_supported_types:
 *
 * Returns: (transfer none): the model_type values Bitlens loads, %NULL-terminated
 */
const char * const *
bl_model_config_supported_types (void)
{
  return supported_types;
}

/**
 * bl_model_config_free:
 * @config: (transfer full) (nullable): a config
 */
void
bl_model_config_free (BlModelConfig *config)
{
  if (config == NULL)
    return;
  g_free (config->model_type);
  g_free (config->architecture);
  g_free (config->torch_dtype);
  g_free (config->rope_freq_factors);
  g_free (config);
}

/* A member that is absent or null takes its default, as in transformers. */
static JsonNode *
get_member (JsonObject *object,
            const char *key)
{
  JsonNode *node = json_object_get_member (object, key);

  return node != NULL && JSON_NODE_HOLDS_NULL (node) ? NULL : node;
}

static gboolean
get_size (JsonObject  *object,
          const char  *key,
          int          default_value,
          int         *out,
          const char  *filename,
          GError     **error)
{
  JsonNode *node = get_member (object, key);
  gint64 value;

  if (node == NULL && default_value > 0)
    {
      *out = default_value;
      return TRUE;
    }
  if (node == NULL)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_CORRUPT_FILE, "%s: “%s” is missing", filename, key);
      return FALSE;
    }
  if (!bl_json_node_get_int (node, &value) || value < 1 || value > G_MAXINT)
    {
      g_autofree char *text = json_to_string (node, FALSE);

      g_set_error (error, BL_ERROR, BL_ERROR_CORRUPT_FILE,
                   "%s: “%s” is %.40s, not a positive integer below 2^31", filename, key, text);
      return FALSE;
    }
  *out = (int) value;
  return TRUE;
}

static gboolean
get_double (JsonObject  *object,
            const char  *key,
            double       default_value,
            double      *out,
            const char  *filename,
            GError     **error)
{
  JsonNode *node = get_member (object, key);
  GType type;

  if (node == NULL)
    {
      *out = default_value;
      return TRUE;
    }
  type = JSON_NODE_HOLDS_VALUE (node) ? json_node_get_value_type (node) : G_TYPE_INVALID;
  if (type != G_TYPE_DOUBLE && type != G_TYPE_INT64)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_CORRUPT_FILE,
                   "%s: “%s” is %s, not a number", filename, key, bl_json_node_describe (node));
      return FALSE;
    }
  *out = json_node_get_double (node);
  return TRUE;
}

static gboolean
get_bool (JsonObject  *object,
          const char  *key,
          gboolean     default_value,
          gboolean    *out,
          const char  *filename,
          GError     **error)
{
  JsonNode *node = get_member (object, key);

  if (node == NULL)
    {
      *out = default_value;
      return TRUE;
    }
  if (!JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_BOOLEAN)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_CORRUPT_FILE,
                   "%s: “%s” is %s, not a boolean", filename, key, bl_json_node_describe (node));
      return FALSE;
    }
  *out = json_node_get_boolean (node);
  return TRUE;
}

/* A string member, or NULL when absent or null. */
static gboolean
get_string (JsonObject   *object,
            const char   *key,
            const char  **out,
            const char   *filename,
            GError      **error)
{
  JsonNode *node = get_member (object, key);

  *out = NULL;
  if (node == NULL)
    return TRUE;
  if (!JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_STRING)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_CORRUPT_FILE,
                   "%s: “%s” is %s, not a string", filename, key, bl_json_node_describe (node));
      return FALSE;
    }
  *out = json_node_get_string (node);
  return TRUE;
}

/* bos_token_id / eos_token_id: an id, null, or (Llama 3 style) a list of ids whose first
 * one is kept. */
static gboolean
get_token_id (JsonObject  *object,
              const char  *key,
              int         *out,
              const char  *filename,
              GError     **error)
{
  JsonNode *node = get_member (object, key);
  gint64 value;

  *out = -1;
  if (node == NULL)
    return TRUE;
  if (JSON_NODE_HOLDS_ARRAY (node))
    {
      JsonArray *array = json_node_get_array (node);

      if (json_array_get_length (array) == 0)
        return TRUE;
      node = json_array_get_element (array, 0);
    }
  if (!bl_json_node_get_int (node, &value) || value < 0 || value > G_MAXINT32)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_CORRUPT_FILE,
                   "%s: “%s” is %s, not a token id", filename, key, bl_json_node_describe (node));
      return FALSE;
    }
  *out = (int) value;
  return TRUE;
}

/* Features the forward pass does not implement are refused rather than ignored, since
 * ignoring them would give plausible but wrong logits. */
static gboolean
check_unsupported (JsonObject  *root,
                   const char  *filename,
                   GError     **error)
{
  const char *act;

  if (!get_string (root, "hidden_act", &act, filename, error))
    return FALSE;
  if (act != NULL && strcmp (act, "silu") != 0)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_UNSUPPORTED_ARCHITECTURE,
                   "%s: hidden_act “%s” is not supported; Bitlens runs silu (SwiGLU) MLPs",
                   filename, act);
      return FALSE;
    }
  return TRUE;
}

/* rope_scaling: null or absent (plain RoPE), or an object whose rope_type (or, before
 * transformers 4.43, type) is default, linear or llama3, with the parameters that
 * transformers' rope_config_validation requires of that type. */
static gboolean
read_rope_scaling (BlModelConfig  *c,
                   JsonObject     *root,
                   const char     *filename,
                   GError        **error)
{
  static const char * const llama3_keys[] = { "factor", "low_freq_factor", "high_freq_factor",
                                               "original_max_position_embeddings" };
  JsonNode *node = get_member (root, "rope_scaling");
  JsonObject *s;
  const char *type = NULL;

  c->rope_scaling = BL_ROPE_DEFAULT;
  if (node == NULL)
    return TRUE;
  if (!JSON_NODE_HOLDS_OBJECT (node))
    {
      g_set_error (error, BL_ERROR, BL_ERROR_CORRUPT_FILE,
                   "%s: “rope_scaling” is %s, not an object or null", filename,
                   bl_json_node_describe (node));
      return FALSE;
    }
  s = json_node_get_object (node);
  if (!get_string (s, "rope_type", &type, filename, error) ||
      (type == NULL && !get_string (s, "type", &type, filename, error)))
    return FALSE;
  if (type == NULL || strcmp (type, "default") == 0)
    return TRUE;
  if (strcmp (type, "linear") != 0 && strcmp (type, "llama3") != 0)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_UNSUPPORTED_ARCHITECTURE,
                   "%s: rope_scaling “%s” is not supported; Bitlens implements default, "
                   "linear and llama3", filename, type);
      return FALSE;
    }
  if (!get_double (s, "factor", 0.0, &c->rope_factor, filename, error))
    return FALSE;
  if (!(c->rope_factor > 0.0 && isfinite (c->rope_factor)))
    {
      g_set_error (error, BL_ERROR, BL_ERROR_CORRUPT_FILE,
                   "%s: rope_scaling (%s) needs a positive “factor”, not %g", filename, type,
                   c->rope_factor);
      return FALSE;
    }
  if (strcmp (type, "linear") == 0)
    {
      c->rope_scaling = BL_ROPE_LINEAR;
      return TRUE;
    }

  c->rope_scaling = BL_ROPE_LLAMA3;
  for (guint i = 0; i < G_N_ELEMENTS (llama3_keys); i++)
    if (get_member (s, llama3_keys[i]) == NULL)
      {
        g_set_error (error, BL_ERROR, BL_ERROR_CORRUPT_FILE,
                     "%s: rope_scaling (llama3): “%s” is missing", filename, llama3_keys[i]);
        return FALSE;
      }
  if (!get_double (s, "low_freq_factor", 0.0, &c->rope_low_freq_factor, filename, error) ||
      !get_double (s, "high_freq_factor", 0.0, &c->rope_high_freq_factor, filename, error) ||
      !get_size (s, "original_max_position_embeddings", 0, &c->rope_original_max_positions,
                 filename, error))
    return FALSE;
  /* the smooth interpolation divides by high − low */
  if (!(c->rope_low_freq_factor > 0.0 && c->rope_high_freq_factor > c->rope_low_freq_factor &&
        isfinite (c->rope_high_freq_factor)))
    {
      g_set_error (error, BL_ERROR, BL_ERROR_CORRUPT_FILE,
                   "%s: rope_scaling (llama3) needs 0 < low_freq_factor < high_freq_factor, "
                   "not %g and %g", filename, c->rope_low_freq_factor, c->rope_high_freq_factor);
      return FALSE;
    }
  return TRUE;
}

/* Sliding-window attention as the transformers config classes set it up: mistral defaults
 * to a 4096-token window (MistralConfig), mixtral to none; qwen2 and qwen2_moe use theirs
 * only with use_sliding_window, and then in the blocks from max_window_layers on (the
 * layer_types their configs derive: "sliding_attention" if sliding_window is not None and
 * i >= max_window_layers). An explicit layer_types list must follow that pattern. llama has
 * no sliding window. */
static gboolean
read_sliding_window (BlModelConfig  *c,
                     JsonObject     *root,
                     const char     *filename,
                     GError        **error)
{
  gboolean mistral = strcmp (c->model_type, "mistral") == 0;
  gboolean qwen = g_str_has_prefix (c->model_type, "qwen2");
  gboolean use = TRUE;
  JsonNode *window;
  JsonNode *types;

  c->sliding_window = 0;
  c->max_window_layers = 0;
  if (!mistral && !qwen && strcmp (c->model_type, "mixtral") != 0)
    return TRUE;
  if (qwen && !get_bool (root, "use_sliding_window", FALSE, &use, filename, error))
    return FALSE;
  /* an absent sliding_window takes the class default (4096 for mistral), null is none */
  window = json_object_get_member (root, "sliding_window");
  if (!use || (window == NULL ? !mistral : JSON_NODE_HOLDS_NULL (window)))
    return TRUE;
  if (!get_size (root, "sliding_window", 4096, &c->sliding_window, filename, error) ||
      (qwen && !get_size (root, "max_window_layers", 28, &c->max_window_layers, filename, error)))
    return FALSE;

  types = get_member (root, "layer_types");
  if (types != NULL)
    {
      JsonArray *a = JSON_NODE_HOLDS_ARRAY (types) ? json_node_get_array (types) : NULL;

      if (a != NULL && json_array_get_length (a) != (guint) c->n_layers)
        a = NULL;
      for (int i = 0; a != NULL && i < c->n_layers; i++)
        {
          JsonNode *e = json_array_get_element (a, i);
          const char *want = i >= c->max_window_layers ? "sliding_attention" : "full_attention";

          if (!JSON_NODE_HOLDS_VALUE (e) || json_node_get_value_type (e) != G_TYPE_STRING ||
              strcmp (json_node_get_string (e), want) != 0)
            a = NULL;
        }
      if (a == NULL)
        {
          g_set_error (error, BL_ERROR, BL_ERROR_UNSUPPORTED_ARCHITECTURE,
                       "%s: layer_types is not %d × full_attention followed by sliding_attention "
                       "up to the %d layers; Bitlens runs that pattern only", filename,
                       c->max_window_layers, c->n_layers);
          return FALSE;
        }
    }
  return TRUE;
}

/**
 * bl_model_config_attention_window:
 * @config: a config
 * @layer: a block index
 *
 * Returns: how many keys (itself included) a query of block @layer attends to at most, or
 *   0 for full causal attention
 */
int
bl_model_config_attention_window (const BlModelConfig *config,
                                  int                  layer)
{
  g_return_val_if_fail (config != NULL, 0);
  return config->sliding_window > 0 && layer >= config->max_window_layers ? config->sliding_window : 0;
}

/**
 * bl_model_config_rope_inv_freq:
 * @config: a config
 * @inv_freq: (out caller-allocates) (array): head_dim / 2 inverse frequencies
 *
 * The rotary inverse frequencies, in fp32 and in the order of operations of transformers'
 * modeling_rope_utils.py, so that the angles equal Hugging Face's bit for bit:
 * _compute_default_rope_parameters (θ^(−2j/d)), _compute_linear_scaling_rope_parameters
 * (divided by factor) and _compute_llama3_parameters (wavelengths 2π/f above
 * original_max_position_embeddings / low_freq_factor divided by factor, those below
 * original / high_freq_factor kept, and between them
 * (1 − s)·f/factor + s·f with s = (original/wavelength − low) / (high − low)). A config read
 * from a GGUF file with a rope_freqs tensor divides the plain frequencies by its factors, as
 * llama.cpp does (ggml_rope_ext's freq_factors).
 */
void
bl_model_config_rope_inv_freq (const BlModelConfig *config,
                               float               *inv_freq)
{
  int half = config->head_dim / 2;

  g_return_if_fail (config != NULL && inv_freq != NULL);

  for (int j = 0; j < half; j++)
    {
      float exponent = (float) (2 * j) / (float) config->head_dim;
      float f = 1.0f / powf ((float) config->rope_theta, exponent);

      if (config->rope_freq_factors != NULL)
        f = f / config->rope_freq_factors[j];
      else if (config->rope_scaling == BL_ROPE_LINEAR)
        f = f / (float) config->rope_factor;
      else if (config->rope_scaling == BL_ROPE_LLAMA3)
        {
          float factor = (float) config->rope_factor;
          float old = (float) config->rope_original_max_positions;
          float low = (float) config->rope_low_freq_factor;
          float wavelen = (float) (2.0 * G_PI) / f;
          float low_wavelen = (float) (config->rope_original_max_positions /
                                       config->rope_low_freq_factor);
          float high_wavelen = (float) (config->rope_original_max_positions /
                                        config->rope_high_freq_factor);
          float scaled = wavelen > low_wavelen ? f / factor : f;

          if (!(wavelen < high_wavelen) && !(wavelen > low_wavelen))
            {
              float smooth = (old / wavelen - low) /
                             (float) (config->rope_high_freq_factor - config->rope_low_freq_factor);

              scaled = (1.0f - smooth) * scaled / factor + smooth * scaled;
            }
          f = scaled;
        }
      inv_freq[j] = f;
    }
}

static const Architecture *
find_architecture (JsonObject  *root,
                   const char  *filename,
                   GError     **error)
{
  const char *model_type;
  g_autofree char *list = NULL;

  if (!get_string (root, "model_type", &model_type, filename, error))
    return NULL;
  if (model_type == NULL)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_CORRUPT_FILE,
                   "%s: “model_type” is missing", filename);
      return NULL;
    }
  for (guint i = 0; i < G_N_ELEMENTS (architectures); i++)
    if (strcmp (model_type, architectures[i].model_type) == 0)
      return &architectures[i];

  list = g_strjoinv (", ", (char **) supported_types);
  g_set_error (error, BL_ERROR, BL_ERROR_UNSUPPORTED_ARCHITECTURE,
               "%s: model_type “%s” is not supported; Bitlens loads %s",
               filename, model_type, list);
  return NULL;
}

/* The sparse feed-forward of mixtral and qwen2_moe, with the config classes' defaults
 * (MixtralConfig: 8 local experts, top-2, always renormalised, experts as wide as
 * intermediate_size; Qwen2MoeConfig: 60 experts, top-4, norm_topk_prob false, expert width
 * moe_intermediate_size 1408, a shared expert of 5632). Qwen2-MoE models that keep dense MLPs
 * in some layers (decoder_sparse_step > 1, mlp_only_layers) are refused: the forward pass
 * runs every block sparse. */
static gboolean
read_moe (BlModelConfig  *c,
          JsonObject     *root,
          const char     *filename,
          GError        **error)
{
  int step;
  JsonNode *only;

  if (strcmp (c->model_type, "mixtral") == 0)
    {
      c->norm_topk_prob = TRUE;
      c->moe_intermediate_size = c->intermediate_size;
      return get_size (root, "num_local_experts", 8, &c->n_experts, filename, error) &&
             get_size (root, "num_experts_per_tok", 2, &c->n_experts_per_tok, filename, error);
    }
  if (strcmp (c->model_type, "qwen2_moe") != 0)
    return TRUE;

  if (!get_size (root, "num_experts", 60, &c->n_experts, filename, error) ||
      !get_size (root, "num_experts_per_tok", 4, &c->n_experts_per_tok, filename, error) ||
      !get_size (root, "moe_intermediate_size", 1408, &c->moe_intermediate_size, filename,
                 error) ||
      !get_size (root, "shared_expert_intermediate_size", 5632,
                 &c->shared_expert_intermediate_size, filename, error) ||
      !get_bool (root, "norm_topk_prob", FALSE, &c->norm_topk_prob, filename, error) ||
      !get_size (root, "decoder_sparse_step", 1, &step, filename, error))
    return FALSE;
  only = get_member (root, "mlp_only_layers");
  if (step != 1 || (only != NULL && (!JSON_NODE_HOLDS_ARRAY (only) ||
                                     json_array_get_length (json_node_get_array (only)) > 0)))
    {
      g_set_error (error, BL_ERROR, BL_ERROR_UNSUPPORTED_ARCHITECTURE,
                   "%s: dense MLP layers among the sparse ones (decoder_sparse_step %d, "
                   "mlp_only_layers) are not supported; Bitlens runs every block sparse",
                   filename, step);
      return FALSE;
    }
  return TRUE;
}

/**
 * bl_model_config_new_from_data:
 * @data: the text of a config.json
 * @len: length of @data
 * @filename: the name used in error messages
 * @error: return location for an error
 *
 * Reads the architecture of a Llama-family model (model_type llama, mistral or qwen2) or of
 * a mixture of experts built on it (mixtral, qwen2_moe: see read_moe()).
 * Absent or null fields take the defaults of the transformers config class:
 * num_key_value_heads = num_attention_heads, head_dim = hidden_size / num_attention_heads,
 * rope_theta 10000, rms_norm_eps 1e-6, tie_word_embeddings false. The bias switches follow
 * the modeling code: qwen2 biases q/k/v but not o_proj; llama reads attention_bias (q/k/v/o)
 * and mlp_bias; mistral has no biases.
 *
 * Errors: %BL_ERROR_CORRUPT_FILE for malformed JSON (json-glib's line:col message) or a
 * field of the wrong type or range; %BL_ERROR_UNSUPPORTED_ARCHITECTURE for another
 * model_type, an activation other than silu, a rope_scaling other than default, linear and
 * llama3, or a layer_types pattern other than max_window_layers'.
 *
 * Returns: (transfer full): the config, or %NULL with @error set
 */
BlModelConfig *
bl_model_config_new_from_data (const char  *data,
                               gsize        len,
                               const char  *filename,
                               GError     **error)
{
  g_autoptr(BlModelConfig) c = g_new0 (BlModelConfig, 1);
  g_autoptr(JsonNode) root_node = NULL;
  const Architecture *arch;
  JsonObject *root;
  JsonNode *archs;
  const char *dtype;
  gboolean attention_bias = FALSE;
  gboolean has_head_dim;

  g_return_val_if_fail (data != NULL || len == 0, NULL);
  g_return_val_if_fail (filename != NULL, NULL);

  root_node = bl_json_parse_object (data, len, filename, error);
  if (root_node == NULL)
    return NULL;
  root = json_node_get_object (root_node);

  arch = find_architecture (root, filename, error);
  if (arch == NULL || !check_unsupported (root, filename, error))
    return NULL;
  c->model_type = g_strdup (arch->model_type);

  archs = get_member (root, "architectures");
  if (archs != NULL && JSON_NODE_HOLDS_ARRAY (archs) &&
      json_array_get_length (json_node_get_array (archs)) > 0)
    {
      JsonNode *first = json_array_get_element (json_node_get_array (archs), 0);

      if (JSON_NODE_HOLDS_VALUE (first) && json_node_get_value_type (first) == G_TYPE_STRING)
        c->architecture = g_strdup (json_node_get_string (first));
    }

  if (!get_size (root, "vocab_size", 0, &c->vocab_size, filename, error) ||
      !get_size (root, "hidden_size", 0, &c->hidden_size, filename, error) ||
      !get_size (root, "intermediate_size", 0, &c->intermediate_size, filename, error) ||
      !get_size (root, "num_hidden_layers", 0, &c->n_layers, filename, error) ||
      !get_size (root, "num_attention_heads", 0, &c->n_heads, filename, error) ||
      !get_size (root, "num_key_value_heads", c->n_heads, &c->n_kv_heads, filename, error) ||
      !get_size (root, "max_position_embeddings", arch->max_position_embeddings,
                 &c->max_position_embeddings, filename, error))
    return NULL;

  has_head_dim = get_member (root, "head_dim") != NULL;
  if (has_head_dim && !get_size (root, "head_dim", 0, &c->head_dim, filename, error))
    return NULL;
  if (!has_head_dim)
    {
      if (c->hidden_size % c->n_heads != 0)
        {
          g_set_error (error, BL_ERROR, BL_ERROR_CORRUPT_FILE,
                       "%s: hidden_size %d is not a multiple of num_attention_heads %d and "
                       "there is no head_dim", filename, c->hidden_size, c->n_heads);
          return NULL;
        }
      c->head_dim = c->hidden_size / c->n_heads;
    }
  if (c->n_heads % c->n_kv_heads != 0)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_CORRUPT_FILE,
                   "%s: num_attention_heads %d is not a multiple of num_key_value_heads %d",
                   filename, c->n_heads, c->n_kv_heads);
      return NULL;
    }
  if ((gint64) c->n_heads * c->head_dim > G_MAXINT)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_CORRUPT_FILE,
                   "%s: num_attention_heads %d × head_dim %d overflows",
                   filename, c->n_heads, c->head_dim);
      return NULL;
    }

  if (!get_double (root, "rms_norm_eps", DEFAULT_RMS_NORM_EPS, &c->rms_norm_eps, filename, error) ||
      !get_double (root, "rope_theta", DEFAULT_ROPE_THETA, &c->rope_theta, filename, error))
    return NULL;
  if (!(c->rms_norm_eps >= 0.0 && c->rms_norm_eps < 1.0) ||
      !(c->rope_theta > 0.0 && isfinite (c->rope_theta)))
    {
      g_set_error (error, BL_ERROR, BL_ERROR_CORRUPT_FILE,
                   "%s: rms_norm_eps %g or rope_theta %g is out of range",
                   filename, c->rms_norm_eps, c->rope_theta);
      return NULL;
    }

  if (!read_rope_scaling (c, root, filename, error) ||
      !read_sliding_window (c, root, filename, error))
    return NULL;

  if (!get_bool (root, "tie_word_embeddings", FALSE, &c->tie_word_embeddings, filename, error))
    return NULL;
  if (arch->reads_attention_bias &&
      !get_bool (root, "attention_bias", FALSE, &attention_bias, filename, error))
    return NULL;
  c->attention_bias = arch->qkv_bias || attention_bias;
  c->o_proj_bias = attention_bias;
  if (arch->reads_mlp_bias &&
      !get_bool (root, "mlp_bias", FALSE, &c->mlp_bias, filename, error))
    return NULL;

  if (!get_token_id (root, "bos_token_id", &c->bos_token_id, filename, error) ||
      !get_token_id (root, "eos_token_id", &c->eos_token_id, filename, error))
    return NULL;

  /* transformers 4.56 renamed torch_dtype to dtype. */
  if (!get_string (root, "torch_dtype", &dtype, filename, error))
    return NULL;
  if (dtype == NULL && !get_string (root, "dtype", &dtype, filename, error))
    return NULL;
  c->torch_dtype = g_strdup (dtype);

  if (!read_moe (c, root, filename, error))
    return NULL;
  if (c->n_experts > 0 && c->n_experts_per_tok > c->n_experts)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_CORRUPT_FILE,
                   "%s: num_experts_per_tok %d exceeds the %d experts",
                   filename, c->n_experts_per_tok, c->n_experts);
      return NULL;
    }

  return g_steal_pointer (&c);
}

/**
 * bl_model_config_new_from_file:
 * @path: a config.json
 * @error: return location for an error
 *
 * Reads @path as bl_model_config_new_from_data() does; errors reading the file are
 * %G_FILE_ERROR.
 *
 * Returns: (transfer full): the config, or %NULL with @error set
 */
BlModelConfig *
bl_model_config_new_from_file (const char  *path,
                               GError     **error)
{
  g_autofree char *data = NULL;
  gsize len;

  g_return_val_if_fail (path != NULL, NULL);

  if (!g_file_get_contents (path, &data, &len, error))
    return NULL;
  return bl_model_config_new_from_data (data, len, path, error);
}
