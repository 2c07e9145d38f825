/* bl-model.c: a Llama-family language model loaded from a Hugging Face directory or a GGUF file
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "bl-model.h"

#include <string.h>

#include "bl-error.h"
#include "bl-export.h"
#include "bl-json-private.h"
#include "bl-layer-private.h"
#include "bl-model-config.h"
#include "bl-model-gguf-private.h"
#include "bl-moe.h"
#include "bl-safetensors.h"
#include "bl-sha256.h"

/* Hashing reads the mapping in slices so that a cancel is noticed within one slice. */
#define FINGERPRINT_SLICE (64 * 1024 * 1024)

typedef struct
{
  const BlTensor *tensor;
  BlSafetensors *file;       /* owned by the model's @files */
} Entry;

struct _BlModel
{
  GObject parent_instance;

  char *path;
  BlModelConfig *config;
  BlTokenizer *tokenizer;
  char *fingerprint;
  char *storage;             /* what the weights were stored as, for messages */
  char *tokenizer_source;    /* GGUF: where the tokenizer came from, or why there is none */

  /* Storage */
  char *weights_source;      /* model.safetensors or the index, for messages */
  GPtrArray *files;          /* BlSafetensors *, in fingerprint order */
  GArray *entries;           /* Entry, file by file in offset order */
  GHashTable *by_name;       /* stored name → index into @entries */
  GHashTable *aliases;       /* name → stored name it resolves to */

  /* Rows */
  GPtrArray *layers;         /* BlLayer * */
  gint64 n_params;
};

static void list_model_iface_init (GListModelInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (BlModel, bl_model, G_TYPE_OBJECT,
                               G_IMPLEMENT_INTERFACE (G_TYPE_LIST_MODEL, list_model_iface_init))

enum {
  PROP_0,
  PROP_PATH,
  PROP_N_PARAMS,
  PROP_FINGERPRINT,
  PROP_N_ITEMS,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

static GType
list_model_get_item_type (GListModel *model)
{
  return BL_TYPE_LAYER;
}

static guint
list_model_get_n_items (GListModel *model)
{
  return BL_MODEL (model)->layers->len;
}

static gpointer
list_model_get_item (GListModel *model,
                     guint       position)
{
  BlModel *self = BL_MODEL (model);

  if (position >= self->layers->len)
    return NULL;
  return g_object_ref (g_ptr_array_index (self->layers, position));
}

static void
list_model_iface_init (GListModelInterface *iface)
{
  iface->get_item_type = list_model_get_item_type;
  iface->get_n_items = list_model_get_n_items;
  iface->get_item = list_model_get_item;
}

static void
bl_model_finalize (GObject *object)
{
  BlModel *self = BL_MODEL (object);

  g_clear_pointer (&self->layers, g_ptr_array_unref);
  g_clear_pointer (&self->aliases, g_hash_table_unref);
  g_clear_pointer (&self->by_name, g_hash_table_unref);
  g_clear_pointer (&self->entries, g_array_unref);
  g_clear_pointer (&self->files, g_ptr_array_unref);
  g_clear_object (&self->tokenizer);
  g_clear_pointer (&self->config, bl_model_config_free);
  g_free (self->weights_source);
  g_free (self->fingerprint);
  g_free (self->storage);
  g_free (self->tokenizer_source);
  g_free (self->path);

  G_OBJECT_CLASS (bl_model_parent_class)->finalize (object);
}

static void
bl_model_get_property (GObject    *object,
                       guint       prop_id,
                       GValue     *value,
                       GParamSpec *pspec)
{
  BlModel *self = BL_MODEL (object);

  switch (prop_id)
    {
    case PROP_PATH:
      g_value_set_string (value, self->path);
      break;
    case PROP_N_PARAMS:
      g_value_set_int64 (value, self->n_params);
      break;
    case PROP_FINGERPRINT:
      g_value_set_string (value, self->fingerprint);
      break;
    case PROP_N_ITEMS:
      g_value_set_uint (value, self->layers->len);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
bl_model_class_init (BlModelClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->finalize = bl_model_finalize;
  object_class->get_property = bl_model_get_property;

  properties[PROP_PATH] =
    g_param_spec_string ("path", NULL, NULL, NULL,
                         G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  properties[PROP_N_PARAMS] =
    g_param_spec_int64 ("n-params", NULL, NULL, 0, G_MAXINT64, 0,
                        G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  properties[PROP_FINGERPRINT] =
    g_param_spec_string ("fingerprint", NULL, NULL, NULL,
                         G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  properties[PROP_N_ITEMS] =
    g_param_spec_uint ("n-items", NULL, NULL, 0, G_MAXUINT, 0,
                       G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
bl_model_init (BlModel *self)
{
  self->files = g_ptr_array_new_with_free_func ((GDestroyNotify) bl_safetensors_unref);
  self->entries = g_array_new (FALSE, FALSE, sizeof (Entry));
  self->by_name = g_hash_table_new (g_str_hash, g_str_equal);
  self->aliases = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  self->layers = g_ptr_array_new_with_free_func (g_object_unref);
}

/* Storage */

static gboolean
add_file (BlModel        *self,
          BlSafetensors  *file,
          GError        **error)
{
  g_ptr_array_add (self->files, file);
  for (guint i = 0; i < bl_safetensors_get_n_tensors (file); i++)
    {
      Entry e = { bl_safetensors_get_tensor_at (file, i), file };
      gpointer other;

      if (g_hash_table_lookup_extended (self->by_name, e.tensor->name, NULL, &other))
        {
          const Entry *first = &g_array_index (self->entries, Entry, GPOINTER_TO_UINT (other));

          g_set_error (error, BL_ERROR, BL_ERROR_CORRUPT_FILE,
                       "%s: tensor “%s” (absolute offset %" G_GUINT64_FORMAT ") is also "
                       "stored in %s", e.tensor->file, e.tensor->name, e.tensor->file_offset,
                       first->tensor->file);
          return FALSE;
        }
      g_hash_table_insert (self->by_name, e.tensor->name, GUINT_TO_POINTER (self->entries->len));
      g_array_append_val (self->entries, e);
    }
  return TRUE;
}

/* A shard name in weight_map must be a plain file of the model directory. */
static gboolean
is_plain_file_name (const char *name)
{
  return name[0] != '\0' && strcmp (name, ".") != 0 && strcmp (name, "..") != 0 &&
         strchr (name, '/') == NULL && strchr (name, '\\') == NULL;
}

static int
compare_strings (gconstpointer a,
                 gconstpointer b)
{
  return strcmp (*(const char * const *) a, *(const char * const *) b);
}

/* model.safetensors.index.json: {"metadata": {...}, "weight_map": {tensor: shard file}}
 * (transformers, modeling_utils.py, load_sharded_checkpoint). Shards are opened in name
 * order, which is also the order of the fingerprint. */
static gboolean
load_sharded (BlModel       *self,
              const char    *index_path,
              GCancellable  *cancellable,
              GError       **error)
{
  g_autofree char *data = NULL;
  g_autoptr(JsonNode) root = NULL;
  g_autoptr(GHashTable) shard_set = NULL;
  g_autofree const char **shards = NULL;
  JsonNode *map_node;
  JsonObjectIter iter;
  const char *tensor;
  JsonNode *shard;
  guint n_shards;
  gsize len;

  if (!g_file_get_contents (index_path, &data, &len, error))
    return FALSE;
  root = bl_json_parse_object (data, len, index_path, error);
  if (root == NULL)
    return FALSE;
  map_node = json_object_get_member (json_node_get_object (root), "weight_map");
  if (map_node == NULL || !JSON_NODE_HOLDS_OBJECT (map_node))
    {
      g_set_error (error, BL_ERROR, BL_ERROR_CORRUPT_FILE,
                   "%s: “weight_map” is %s, not an object", index_path,
                   bl_json_node_describe (map_node));
      return FALSE;
    }

  shard_set = g_hash_table_new (g_str_hash, g_str_equal);
  json_object_iter_init (&iter, json_node_get_object (map_node));
  while (json_object_iter_next (&iter, &tensor, &shard))
    {
      const char *name;

      if (!JSON_NODE_HOLDS_VALUE (shard) || json_node_get_value_type (shard) != G_TYPE_STRING)
        {
          g_set_error (error, BL_ERROR, BL_ERROR_CORRUPT_FILE,
                       "%s: weight_map entry for tensor “%s” is %s, not a file name",
                       index_path, tensor, bl_json_node_describe (shard));
          return FALSE;
        }
      name = json_node_get_string (shard);
      if (!is_plain_file_name (name))
        {
          g_set_error (error, BL_ERROR, BL_ERROR_CORRUPT_FILE,
                       "%s: weight_map puts tensor “%s” in “%s”, which is not a file name "
                       "inside the model directory", index_path, tensor, name);
          return FALSE;
        }
      g_hash_table_add (shard_set, (gpointer) name);
    }
  if (g_hash_table_size (shard_set) == 0)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_CORRUPT_FILE,
                   "%s: “weight_map” is empty", index_path);
      return FALSE;
    }

  shards = (const char **) g_hash_table_get_keys_as_array (shard_set, &n_shards);
  qsort (shards, n_shards, sizeof (char *), compare_strings);
  for (guint i = 0; i < n_shards; i++)
    {
      g_autofree char *shard_path = g_build_filename (self->path, shards[i], NULL);
      BlSafetensors *file;

      if (g_cancellable_set_error_if_cancelled (cancellable, error))
        return FALSE;
      file = bl_safetensors_open (shard_path, error);
      if (file == NULL)
        {
          g_prefix_error (error, "%s: shard “%s”: ", index_path, shards[i]);
          return FALSE;
        }
      if (!add_file (self, file, error))
        return FALSE;
    }

  /* Every tensor the index announces must be where it says. */
  json_object_iter_init (&iter, json_node_get_object (map_node));
  while (json_object_iter_next (&iter, &tensor, &shard))
    {
      g_autofree char *shard_path = g_build_filename (self->path, json_node_get_string (shard), NULL);
      gpointer index;

      if (!g_hash_table_lookup_extended (self->by_name, tensor, NULL, &index) ||
          strcmp (g_array_index (self->entries, Entry, GPOINTER_TO_UINT (index)).tensor->file,
                  shard_path) != 0)
        {
          g_set_error (error, BL_ERROR, BL_ERROR_CORRUPT_FILE,
                       "%s: weight_map puts tensor “%s” in %s, which does not contain it",
                       index_path, tensor, json_node_get_string (shard));
          return FALSE;
        }
    }
  return TRUE;
}

static gboolean
load_weights (BlModel       *self,
              GCancellable  *cancellable,
              GError       **error)
{
  g_autofree char *single = g_build_filename (self->path, "model.safetensors", NULL);
  g_autofree char *index = g_build_filename (self->path, "model.safetensors.index.json", NULL);
  g_autofree char *bin = g_build_filename (self->path, "pytorch_model.bin", NULL);

  /* transformers prefers the single file when both exist (modeling_utils.py). */
  if (g_file_test (single, G_FILE_TEST_EXISTS))
    {
      BlSafetensors *file = bl_safetensors_open (single, error);

      self->weights_source = g_steal_pointer (&single);
      return file != NULL && add_file (self, file, error);
    }
  if (g_file_test (index, G_FILE_TEST_EXISTS))
    {
      self->weights_source = g_strdup (index);
      return load_sharded (self, index, cancellable, error);
    }
  if (g_file_test (bin, G_FILE_TEST_EXISTS))
    g_set_error (error, BL_ERROR, BL_ERROR_UNSUPPORTED_FORMAT,
                 "%s holds PyTorch pickle weights (pytorch_model.bin); Bitlens reads "
                 "safetensors only", self->path);
  else
    g_set_error (error, BL_ERROR, BL_ERROR_NOT_FOUND,
                 "%s has neither model.safetensors nor model.safetensors.index.json",
                 self->path);
  return FALSE;
}

/* Tied embeddings (https://huggingface.co/docs/safetensors/torch_shared_tensors): when
 * transformers saves a model it drops the duplicate names of a shared tensor and records each
 * dropped name in "__metadata__" as {dropped: kept}, which is how tinystories-656k stores its
 * embedding only as lm_head.weight. A checkpoint may also simply omit one of the two, as
 * stories260k omits lm_head.weight. With tie_word_embeddings, PreTrainedModel.tie_weights()
 * makes lm_head use the input embedding, so that alias wins over a stored lm_head. */
static void
build_aliases (BlModel *self)
{
  const char *embed = "model.embed_tokens.weight";
  const char *head = "lm_head.weight";

  for (guint i = 0; i < self->files->len; i++)
    {
      BlSafetensors *file = g_ptr_array_index (self->files, i);
      g_auto(GStrv) keys = bl_safetensors_list_metadata_keys (file);

      for (guint k = 0; keys[k] != NULL; k++)
        {
          const char *target = bl_safetensors_get_metadata (file, keys[k]);

          if (!g_hash_table_contains (self->by_name, keys[k]) &&
              g_hash_table_contains (self->by_name, target))
            g_hash_table_insert (self->aliases, g_strdup (keys[k]), g_strdup (target));
        }
    }

  if (!self->config->tie_word_embeddings)
    return;
  if (g_hash_table_contains (self->by_name, embed))
    g_hash_table_insert (self->aliases, g_strdup (head), g_strdup (embed));
  else if (g_hash_table_contains (self->by_name, head))
    g_hash_table_insert (self->aliases, g_strdup (embed), g_strdup (head));
}

static const Entry *
resolve (BlModel    *self,
         const char *name)
{
  const char *stored = g_hash_table_lookup (self->aliases, name);
  gpointer index;

  if (!g_hash_table_lookup_extended (self->by_name, stored != NULL ? stored : name, NULL, &index))
    return NULL;
  return &g_array_index (self->entries, Entry, GPOINTER_TO_UINT (index));
}

/* Architecture check */

typedef struct
{
  BlModel *model;
  GHashTable *listed;        /* tensors already shown as a row */
} Rows;

static char *
shape_to_string (const int64_t *shape,
                 int            n_dims)
{
  GString *s = g_string_new ("[");

  for (int d = 0; d < n_dims; d++)
    g_string_append_printf (s, "%s%" G_GINT64_FORMAT, d ? ", " : "", shape[d]);
  g_string_append_c (s, ']');
  return g_string_free (s, FALSE);
}

/* Looks @name up and checks its shape against [@rows, @cols] (a vector when @cols is 0).
 * A missing tensor is an error when @required, else *@out is NULL. */
static gboolean
expect (BlModel       *self,
        const char    *name,
        int64_t        rows,
        int64_t        cols,
        gboolean       required,
        const Entry  **out,
        GError       **error)
{
  const Entry *e = resolve (self, name);
  int64_t shape[2] = { rows, cols };
  int n_dims = cols == 0 ? 1 : 2;
  const BlTensor *t;
  /* a GGUF model's tensors have Hugging Face names here; say what the file calls them */
  g_autofree char *gguf_name = self->storage != NULL ? bl_export_gguf_tensor_name (name) : NULL;
  g_autofree char *also = gguf_name != NULL ? g_strdup_printf (" (GGUF “%s”)", gguf_name)
                                            : g_strdup ("");

  *out = e;
  if (e == NULL && !required)
    return TRUE;
  if (e == NULL)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_CORRUPT_FILE,
                   "%s: tensor “%s”%s is missing; a %s model with %d blocks%s needs it",
                   self->weights_source, name, also, self->config->model_type, self->config->n_layers,
                   strcmp (name, "lm_head.weight") == 0 ? " and untied embeddings" : "");
      return FALSE;
    }
  t = e->tensor;
  if (t->n_dims != n_dims || t->shape[0] != rows || (n_dims == 2 && t->shape[1] != cols))
    {
      g_autofree char *have = shape_to_string (t->shape, t->n_dims);
      g_autofree char *want = shape_to_string (shape, n_dims);

      g_set_error (error, BL_ERROR, BL_ERROR_CORRUPT_FILE,
                   "%s: tensor “%s”%s has shape %s, but %s implies %s (absolute offset %"
                   G_GUINT64_FORMAT ")", t->file, t->name, also, have,
                   self->storage != NULL ? "the metadata" : "config.json", want, t->file_offset);
      return FALSE;
    }
  return TRUE;
}

static void
add_row (Rows        *rows,
         BlLayerKind  kind,
         int          block,
         const Entry *weight,
         const Entry *bias)
{
  BlLayer *layer;

  if (g_hash_table_contains (rows->listed, weight->tensor))
    return;
  g_hash_table_add (rows->listed, (gpointer) weight->tensor);
  layer = bl_layer_new (kind, block, weight->tensor, weight->file,
                        bias != NULL ? bias->tensor : NULL, bias != NULL ? bias->file : NULL);
  rows->model->n_params += bl_layer_get_n_params (layer);
  g_ptr_array_add (rows->model->layers, layer);
}

/* A linear layer of block @block: weight [@out_dim, @in_dim], bias [@out_dim] required when
 * the config announces one and checked when the file has one anyway (the engine uses it). */
static gboolean
expect_linear (BlModel      *self,
               Rows         *rows,
               int           block,
               const char   *module,
               BlLayerKind   kind,
               int64_t       out_dim,
               int64_t       in_dim,
               gboolean      has_bias,
               GError      **error)
{
  g_autofree char *weight_name = g_strdup_printf ("model.layers.%d.%s.weight", block, module);
  g_autofree char *bias_name = g_strdup_printf ("model.layers.%d.%s.bias", block, module);
  const Entry *weight;
  const Entry *bias;

  if (!expect (self, weight_name, out_dim, in_dim, TRUE, &weight, error) ||
      !expect (self, bias_name, out_dim, 0, has_bias, &bias, error))
    return FALSE;
  add_row (rows, kind, block, weight, bias);
  return TRUE;
}

static gboolean
expect_norm (BlModel     *self,
             Rows        *rows,
             int          block,
             const char  *name,
             GError     **error)
{
  const Entry *weight;

  if (!expect (self, name, self->config->hidden_size, 0, TRUE, &weight, error))
    return FALSE;
  add_row (rows, BL_LAYER_NORM, block, weight, NULL);
  return TRUE;
}

/* The sparse feed-forward of block @block (bl-moe.h names): the router, every expert's
 * gate, up and down projections, and Qwen2-MoE's shared expert and its gate. */
static gboolean
expect_moe (BlModel  *self,
            Rows     *rows,
            int       block,
            GError  **error)
{
  const BlModelConfig *c = self->config;
  BlMoeStyle style = bl_moe_config_style (c);
  static const BlMoeRole roles[] = { BL_MOE_ROLE_GATE, BL_MOE_ROLE_UP, BL_MOE_ROLE_DOWN };
  static const BlLayerKind kinds[] = { BL_LAYER_MLP_GATE, BL_LAYER_MLP_UP, BL_LAYER_MLP_DOWN };
  gboolean shared = c->shared_expert_intermediate_size > 0;
  int n_expert_sets = c->n_experts + (shared ? 1 : 0);

  /* The router [n_experts, hidden] and the shared expert's gate [1, hidden] */
  for (int g = 0; g < (shared ? 2 : 1); g++)
    {
      BlMoeRole role = g == 0 ? BL_MOE_ROLE_ROUTER : BL_MOE_ROLE_SHARED_GATE;
      g_autofree char *name = bl_moe_tensor_name (style, block, -1, role);
      const Entry *weight;

      if (!expect (self, name, g == 0 ? c->n_experts : 1, c->hidden_size, TRUE, &weight, error))
        return FALSE;
      add_row (rows, BL_LAYER_MOE_ROUTER, block, weight, NULL);
    }
  for (int e = 0; e < n_expert_sets; e++)
    {
      int expert = e < c->n_experts ? e : BL_MOE_SHARED_EXPERT;
      int64_t inter = e < c->n_experts ? c->moe_intermediate_size
                                       : c->shared_expert_intermediate_size;

      for (guint i = 0; i < G_N_ELEMENTS (roles); i++)
        {
          g_autofree char *name = bl_moe_tensor_name (style, block, expert, roles[i]);
          gboolean down = roles[i] == BL_MOE_ROLE_DOWN;
          const Entry *weight;

          if (!expect (self, name, down ? c->hidden_size : inter, down ? inter : c->hidden_size,
                       TRUE, &weight, error))
            return FALSE;
          add_row (rows, kinds[i], block, weight, NULL);
        }
    }
  return TRUE;
}

/* Checks every tensor the Llama forward pass reads (transformers modeling_llama.py,
 * modeling_mistral.py, modeling_qwen2.py) against the shapes the config implies, and builds
 * the rows: embedding, then each block (q, k, v, o, gate, up, down, input and
 * post-attention norms), then the final norm and the lm_head. A tied matrix is one row,
 * shown under the name it is stored as. */
static gboolean
check_architecture (BlModel  *self,
                    GError  **error)
{
  const BlModelConfig *c = self->config;
  int64_t q_dim = (int64_t) c->n_heads * c->head_dim;
  int64_t kv_dim = (int64_t) c->n_kv_heads * c->head_dim;
  g_autoptr(GHashTable) listed = g_hash_table_new (NULL, NULL);
  Rows rows = { self, listed };
  const Entry *embed;
  const Entry *head;
  const Entry *norm;
  gboolean tied_in_head;

  if (!expect (self, "model.embed_tokens.weight", c->vocab_size, c->hidden_size, TRUE,
               &embed, error) ||
      !expect (self, "lm_head.weight", c->vocab_size, c->hidden_size, TRUE, &head, error) ||
      !expect (self, "model.norm.weight", c->hidden_size, 0, TRUE, &norm, error))
    return FALSE;

  tied_in_head = embed == head && strcmp (embed->tensor->name, "lm_head.weight") == 0;
  if (!tied_in_head)
    add_row (&rows, BL_LAYER_EMBEDDING, -1, embed, NULL);

  for (int b = 0; b < c->n_layers; b++)
    {
      g_autofree char *input_norm = g_strdup_printf ("model.layers.%d.input_layernorm.weight", b);
      g_autofree char *post_norm =
        g_strdup_printf ("model.layers.%d.post_attention_layernorm.weight", b);

      if (!expect_linear (self, &rows, b, "self_attn.q_proj", BL_LAYER_ATTN_Q, q_dim,
                          c->hidden_size, c->attention_bias, error) ||
          !expect_linear (self, &rows, b, "self_attn.k_proj", BL_LAYER_ATTN_K, kv_dim,
                          c->hidden_size, c->attention_bias, error) ||
          !expect_linear (self, &rows, b, "self_attn.v_proj", BL_LAYER_ATTN_V, kv_dim,
                          c->hidden_size, c->attention_bias, error) ||
          !expect_linear (self, &rows, b, "self_attn.o_proj", BL_LAYER_ATTN_O, c->hidden_size,
                          q_dim, c->o_proj_bias, error))
        return FALSE;
      if (c->n_experts > 0)
        {
          if (!expect_moe (self, &rows, b, error) ||
              !expect_norm (self, &rows, b, input_norm, error) ||
              !expect_norm (self, &rows, b, post_norm, error))
            return FALSE;
          continue;
        }
      if (!expect_linear (self, &rows, b, "mlp.gate_proj", BL_LAYER_MLP_GATE,
                          c->intermediate_size, c->hidden_size, c->mlp_bias, error) ||
          !expect_linear (self, &rows, b, "mlp.up_proj", BL_LAYER_MLP_UP,
                          c->intermediate_size, c->hidden_size, c->mlp_bias, error) ||
          !expect_linear (self, &rows, b, "mlp.down_proj", BL_LAYER_MLP_DOWN, c->hidden_size,
                          c->intermediate_size, c->mlp_bias, error) ||
          !expect_norm (self, &rows, b, input_norm, error) ||
          !expect_norm (self, &rows, b, post_norm, error))
        return FALSE;
    }

  add_row (&rows, BL_LAYER_NORM, -1, norm, NULL);
  add_row (&rows, BL_LAYER_LM_HEAD, -1, head, NULL);
  return TRUE;
}

/* Fingerprint */

static gboolean
compute_fingerprint (BlModel       *self,
                     const char    *config_data,
                     gsize          config_len,
                     GCancellable  *cancellable,
                     GError       **error)
{
  BlSha256 sum;
  char hex[65];

  bl_sha256_init (&sum);
  bl_sha256_update (&sum, config_data, config_len);
  for (guint i = 0; i < self->files->len; i++)
    {
      gsize len;
      const guint8 *contents = bl_safetensors_get_contents (g_ptr_array_index (self->files, i), &len);

      for (gsize done = 0; done < len; done += FINGERPRINT_SLICE)
        {
          if (g_cancellable_set_error_if_cancelled (cancellable, error))
            return FALSE;
          bl_sha256_update (&sum, contents + done, MIN (len - done, FINGERPRINT_SLICE));
        }
    }
  bl_sha256_finish_hex (&sum, hex);
  self->fingerprint = g_strdup (hex);
  return TRUE;
}

static gboolean
load_tokenizer (BlModel  *self,
                GError  **error)
{
  g_autofree char *json = g_build_filename (self->path, "tokenizer.json", NULL);
  g_autofree char *config = g_build_filename (self->path, "tokenizer_config.json", NULL);

  if (!g_file_test (json, G_FILE_TEST_EXISTS))
    return TRUE;
  self->tokenizer = bl_tokenizer_new_from_file (json, g_file_test (config, G_FILE_TEST_EXISTS)
                                                      ? config : NULL, error);
  if (self->tokenizer == NULL)
    {
      g_prefix_error (error, "Cannot load the tokenizer of %s: ", self->path);
      return FALSE;
    }
  return TRUE;
}

/* A GGUF file: bl-model-gguf.c turns it into the config and tensors of the Hugging Face
 * model it was converted from, which are then checked as a directory's are. */
static BlModel *
load_gguf (const char    *path,
           GCancellable  *cancellable,
           GError       **error)
{
  g_autoptr(BlModel) self = g_object_new (BL_TYPE_MODEL, NULL);
  BlModelGguf parts;
  BlSafetensors *tensors;

  self->path = g_canonicalize_filename (path, NULL);
  if (!bl_model_gguf_read (self->path, cancellable, &parts, error))
    return NULL;
  self->config = g_steal_pointer (&parts.config);
  self->tokenizer = g_steal_pointer (&parts.tokenizer);
  self->tokenizer_source = g_steal_pointer (&parts.tokenizer_source);
  self->fingerprint = g_steal_pointer (&parts.fingerprint);
  self->storage = g_steal_pointer (&parts.storage);
  self->weights_source = g_strdup (self->path);
  tensors = g_steal_pointer (&parts.tensors);
  bl_model_gguf_clear (&parts);
  if (!add_file (self, tensors, error))
    return NULL;
  build_aliases (self);
  if (!check_architecture (self, error))
    return NULL;
  return g_steal_pointer (&self);
}

/**
 * bl_model_load:
 * @path: a Hugging Face model directory or a GGUF file
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for an error
 *
 * Loads a Llama-family model (model_type llama, mistral or qwen2) from a directory holding
 * config.json and either model.safetensors or model.safetensors.index.json with its shards,
 * plus tokenizer.json (and tokenizer_config.json) when present. The safetensors files are
 * memory-mapped and validated completely (see bl_safetensors_parse_header()), and every
 * tensor the forward pass needs is checked against the shape config.json implies.
 *
 * A regular file that starts with the GGUF magic is read as the Hugging Face model it was
 * converted from (general.architecture "llama" or "qwen2"; see bl-model-gguf.c): the
 * llama.cpp tensor names and Llama's q/k row order are undone, block-quantized tensors are
 * decoded to F32, and the tokenizer is rebuilt from tokenizer.ggml.* (or read from a
 * tokenizer.json beside the file). Its fingerprint is the SHA-256 of the whole file.
 *
 * The fingerprint is the SHA-256 (hex) of the bytes of config.json followed by the complete
 * bytes of every safetensors file (8-byte header length, JSON header and tensor data), the
 * single model.safetensors or the shards in file-name order. It does not depend on the
 * directory's path, so copies of a model share it; the tokenizer has its own hash.
 *
 * Errors: %BL_ERROR_NOT_FOUND when @path or a required file is missing,
 * %BL_ERROR_INVALID_ARGUMENT when @path is neither a directory nor a GGUF file,
 * %BL_ERROR_CORRUPT_FILE,
 * %BL_ERROR_UNSUPPORTED_ARCHITECTURE and %BL_ERROR_UNSUPPORTED_FORMAT as described at
 * bl_model_config_new_from_data() and bl_safetensors_parse_header(), the tokenizer's error
 * prefixed with @path, %G_FILE_ERROR for I/O failures and %G_IO_ERROR_CANCELLED.
 *
 * Returns: (transfer full): the model, or %NULL with @error set
 */
BlModel *
bl_model_load (const char    *path,
               GCancellable  *cancellable,
               GError       **error)
{
  g_autoptr(BlModel) self = NULL;
  g_autofree char *config_path = NULL;
  g_autofree char *config_data = NULL;
  gsize config_len;

  g_return_val_if_fail (path != NULL, NULL);
  g_return_val_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable), NULL);

  if (!g_file_test (path, G_FILE_TEST_EXISTS))
    {
      g_set_error (error, BL_ERROR, BL_ERROR_NOT_FOUND, "Model directory %s does not exist", path);
      return NULL;
    }
  if (bl_model_gguf_sniff (path))
    return load_gguf (path, cancellable, error);
  if (!g_file_test (path, G_FILE_TEST_IS_DIR))
    {
      g_set_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT,
                   "%s is not a directory or a GGUF file; a model is a Hugging Face "
                   "directory with config.json and model.safetensors, or a GGUF file", path);
      return NULL;
    }

  self = g_object_new (BL_TYPE_MODEL, NULL);
  self->path = g_canonicalize_filename (path, NULL);

  config_path = g_build_filename (self->path, "config.json", NULL);
  if (!g_file_test (config_path, G_FILE_TEST_EXISTS))
    {
      g_set_error (error, BL_ERROR, BL_ERROR_NOT_FOUND, "%s has no config.json", self->path);
      return NULL;
    }
  if (!g_file_get_contents (config_path, &config_data, &config_len, error))
    return NULL;
  self->config = bl_model_config_new_from_data (config_data, config_len, config_path, error);
  if (self->config == NULL)
    return NULL;

  if (g_cancellable_set_error_if_cancelled (cancellable, error) ||
      !load_weights (self, cancellable, error))
    return NULL;
  build_aliases (self);
  if (!check_architecture (self, error) ||
      !load_tokenizer (self, error) ||
      !compute_fingerprint (self, config_data, config_len, cancellable, error))
    return NULL;

  return g_steal_pointer (&self);
}

static void
load_in_thread (GTask        *task,
                gpointer      source_object,
                gpointer      task_data,
                GCancellable *cancellable)
{
  GError *error = NULL;
  BlModel *model = bl_model_load (task_data, cancellable, &error);

  if (model != NULL)
    g_task_return_pointer (task, model, g_object_unref);
  else
    g_task_return_error (task, error);
}

/**
 * bl_model_load_async:
 * @path: a Hugging Face model directory
 * @cancellable: (nullable): a #GCancellable
 * @callback: called in the thread-default main context of the caller when done
 * @user_data: data for @callback
 *
 * Loads the model as bl_model_load() does, in a worker thread. Cancelling stops the load
 * between files and between 64 MiB slices of the fingerprint.
 */
void
bl_model_load_async (const char          *path,
                     GCancellable        *cancellable,
                     GAsyncReadyCallback  callback,
                     gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;

  g_return_if_fail (path != NULL);
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  task = g_task_new (NULL, cancellable, callback, user_data);
  g_task_set_source_tag (task, bl_model_load_async);
  g_task_set_task_data (task, g_strdup (path), g_free);
  g_task_run_in_thread (task, load_in_thread);
}

/**
 * bl_model_load_finish:
 * @result: the result passed to the callback of bl_model_load_async()
 * @error: return location for an error
 *
 * Returns: (transfer full): the model, or %NULL with @error set
 */
BlModel *
bl_model_load_finish (GAsyncResult  *result,
                      GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, NULL), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == bl_model_load_async, NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}

/**
 * bl_model_get_path:
 * @self: a model
 *
 * Returns: the absolute path of the model directory or GGUF file
 */
const char *
bl_model_get_path (BlModel *self)
{
  g_return_val_if_fail (BL_IS_MODEL (self), NULL);

  return self->path;
}

/**
 * bl_model_get_config:
 * @self: a model
 *
 * Returns: (transfer none): the architecture read from config.json
 */
const BlModelConfig *
bl_model_get_config (BlModel *self)
{
  g_return_val_if_fail (BL_IS_MODEL (self), NULL);

  return self->config;
}

/**
 * bl_model_get_tokenizer:
 * @self: a model
 *
 * Returns: (transfer none) (nullable): the tokenizer, %NULL when the directory has no
 *   tokenizer.json
 */
BlTokenizer *
bl_model_get_tokenizer (BlModel *self)
{
  g_return_val_if_fail (BL_IS_MODEL (self), NULL);

  return self->tokenizer;
}

/**
 * bl_model_get_tensor:
 * @self: a model
 * @name: a Hugging Face tensor name
 *
 * Finds a tensor by name, resolving the names a tied embedding is known by: with
 * tie_word_embeddings, "lm_head.weight" is the stored "model.embed_tokens.weight" and,
 * when only "lm_head.weight" is stored, the other way round; and every {alias: stored}
 * entry transformers writes into "__metadata__" for tensors it deduplicated.
 *
 * Returns: (transfer none) (nullable): the tensor, valid as long as @self
 */
const BlTensor *
bl_model_get_tensor (BlModel    *self,
                     const char *name)
{
  const Entry *e;

  g_return_val_if_fail (BL_IS_MODEL (self), NULL);
  g_return_val_if_fail (name != NULL, NULL);

  e = resolve (self, name);
  return e != NULL ? e->tensor : NULL;
}

/**
 * bl_model_get_n_tensors:
 * @self: a model
 *
 * Returns: the number of tensors stored in the safetensors files or the GGUF file (an alias
 *   is not one)
 */
guint
bl_model_get_n_tensors (BlModel *self)
{
  g_return_val_if_fail (BL_IS_MODEL (self), 0);

  return self->entries->len;
}

/**
 * bl_model_get_tensor_at:
 * @self: a model
 * @index: below bl_model_get_n_tensors()
 *
 * Tensors are numbered file by file (the shards in name order), in the order of their
 * bytes in each file (for a GGUF model, of the GGUF tensors they were read from).
 *
 * Returns: (transfer none): the tensor
 */
const BlTensor *
bl_model_get_tensor_at (BlModel *self,
                        guint    index)
{
  g_return_val_if_fail (BL_IS_MODEL (self), NULL);
  g_return_val_if_fail (index < self->entries->len, NULL);

  return g_array_index (self->entries, Entry, index).tensor;
}

/**
 * bl_model_get_n_params:
 * @self: a model
 *
 * Returns: the parameters the forward pass uses (weights, norms and biases), a tied
 *   embedding counted once; tensors the architecture does not read are not counted
 */
gint64
bl_model_get_n_params (BlModel *self)
{
  g_return_val_if_fail (BL_IS_MODEL (self), 0);

  return self->n_params;
}

/**
 * bl_model_get_storage:
 * @self: a model
 *
 * Returns: (nullable): for a GGUF model the ggml types of its tensors and which were
 *   dequantized, e.g. "GGUF: q4_0 ×14 (dequantized to F32), f32 ×11"; %NULL for a
 *   Hugging Face directory, whose dtypes the tensors carry
 */
const char *
bl_model_get_storage (BlModel *self)
{
  g_return_val_if_fail (BL_IS_MODEL (self), NULL);

  return self->storage;
}

/**
 * bl_model_get_tokenizer_source:
 * @self: a model
 *
 * Returns: (nullable): for a GGUF model, where its tokenizer came from or why it has none;
 *   %NULL for a Hugging Face directory (its tokenizer.json)
 */
const char *
bl_model_get_tokenizer_source (BlModel *self)
{
  g_return_val_if_fail (BL_IS_MODEL (self), NULL);

  return self->tokenizer_source;
}

/**
 * bl_model_get_fingerprint:
 * @self: a model
 *
 * The scheme is described at bl_model_load().
 *
 * Returns: the SHA-256 of config.json and the safetensors files, or of the GGUF file, 64 hex
 *   digits
 */
const char *
bl_model_get_fingerprint (BlModel *self)
{
  g_return_val_if_fail (BL_IS_MODEL (self), NULL);

  return self->fingerprint;
}
