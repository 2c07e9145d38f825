/* bl-engine.c: the Llama-family forward pass, written once against the BlBackend vtable
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "bl-engine.h"

#include <math.h>
#include <string.h>

#include "bl-engine-private.h"
#include "bl-error.h"
#include "bl-model-config.h"
#include "bl-moe.h"

/**
 * SECTION:bl-engine
 * @title: BlEngine
 *
 * A #BlEngine holds a model's weights on a #BlBackend (widened to fp32, after the optional
 * weight hook) and runs Hugging Face's LlamaForCausalLM forward pass over one window of
 * tokens: llama, mistral and qwen2 layouts, grouped-query attention, q/k/v/o and MLP biases,
 * tied embeddings and an explicit head_dim, and the sparse mixture-of-experts feed-forward of
 * mixtral and qwen2_moe (bl-moe-forward.c). Each call starts from position 0; there is no
 * KV cache, because evaluation windows are independent.
 *
 * An engine is used from one thread at a time. The backend must outlive the engine.
 */

typedef BlEngineLinear Linear;

typedef struct
{
  BlBuffer *attn_norm;
  BlBuffer *mlp_norm;
  Linear q;
  Linear k;
  Linear v;
  Linear o;
  Linear gate;
  Linear up;
  Linear down;
  BlMoeMlp *moe;              /* the sparse feed-forward instead of gate/up/down, or NULL */
} Block;

struct _BlEngine
{
  BlModel *model;
  BlBackend *backend;
  BlEngineHooks hooks;

  /* Shape, from the model's config */
  int hidden;
  int intermediate;
  int n_layers;
  int n_heads;
  int n_kv_heads;
  int head_dim;
  int vocab;
  int max_tokens;
  float eps;

  /* Weights */
  Block *blocks;
  BlBuffer *embed;
  BlBuffer *final_norm;
  Linear lm_head;             /* lm_head.w == embed when tied and not transformed */

  /* Activations, each sized for n_alloc tokens */
  int n_alloc;
  BlBuffer *x;                /* residual stream [n, hidden] */
  BlBuffer *h;                /* normed input [n, hidden] */
  BlBuffer *q;                /* [n, n_heads · head_dim] */
  BlBuffer *k;                /* [n, n_kv_heads · head_dim] */
  BlBuffer *v;
  BlBuffer *att;              /* attention output [n, n_heads · head_dim] */
  BlBuffer *gate;             /* [n, intermediate] */
  BlBuffer *up;
  BlBuffer *hook_in;          /* private copy of a linear input for the activation hook */
  BlMoeScratch *moe_scratch;  /* the MoE feed-forward's buffers, NULL for a dense model */
  float *hook_host;           /* host copy when the backend cannot map buffers */
  float *kv_host;             /* host copy of k and v for the KV-cache hook, likewise */

  /* RoPE tables [n_rope, head_dim / 2] */
  int n_rope;
  BlBuffer *cos;
  BlBuffer *sin;

  /* Logits for bl_engine_forward() [n_logits, vocab] */
  int n_logits;
  BlBuffer *logits;
};

static void
linear_clear (BlEngine *self,
              Linear   *l)
{
  g_clear_pointer (&l->name, g_free);
  if (l->w != self->embed)
    bl_backend_buffer_free (self->backend, l->w);
  bl_backend_buffer_free (self->backend, l->bias);
  l->w = NULL;
  l->bias = NULL;
}

static void
activations_clear (BlEngine *self)
{
  BlBuffer **buffers[] = { &self->x, &self->h, &self->q, &self->k, &self->v, &self->att,
                           &self->gate, &self->up, &self->hook_in };

  for (guint i = 0; i < G_N_ELEMENTS (buffers); i++)
    {
      bl_backend_buffer_free (self->backend, *buffers[i]);
      *buffers[i] = NULL;
    }
  g_clear_pointer (&self->hook_host, g_free);
  g_clear_pointer (&self->kv_host, g_free);
  bl_moe_scratch_free (self, self->moe_scratch);
  self->moe_scratch = NULL;
  self->n_alloc = 0;
}

/**
 * bl_engine_free:
 * @self: (nullable): an engine
 *
 * Frees the engine and its backend buffers. The backend itself stays.
 */
void
bl_engine_free (BlEngine *self)
{
  if (self == NULL)
    return;

  activations_clear (self);
  bl_backend_buffer_free (self->backend, self->cos);
  bl_backend_buffer_free (self->backend, self->sin);
  bl_backend_buffer_free (self->backend, self->logits);
  for (int l = 0; self->blocks != NULL && l < self->n_layers; l++)
    {
      Block *b = &self->blocks[l];

      bl_backend_buffer_free (self->backend, b->attn_norm);
      bl_backend_buffer_free (self->backend, b->mlp_norm);
      linear_clear (self, &b->q);
      linear_clear (self, &b->k);
      linear_clear (self, &b->v);
      linear_clear (self, &b->o);
      linear_clear (self, &b->gate);
      linear_clear (self, &b->up);
      linear_clear (self, &b->down);
      bl_moe_mlp_free (self, b->moe);
    }
  g_free (self->blocks);
  linear_clear (self, &self->lm_head);
  bl_backend_buffer_free (self->backend, self->embed);
  bl_backend_buffer_free (self->backend, self->final_norm);
  g_clear_object (&self->model);
  g_free (self);
}

/* Weight upload */

static const BlTensor *
find_tensor (BlEngine   *self,
             const char *name,
             int         rows,
             int         cols,
             GError    **error)
{
  const BlTensor *t = bl_model_get_tensor (self->model, name);
  gboolean ok;

  if (t == NULL)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_NOT_FOUND,
                   "Model %s has no tensor “%s”", bl_model_get_path (self->model), name);
      return NULL;
    }

  ok = cols == 0 ? (t->n_dims == 1 && t->shape[0] == rows)
                 : (t->n_dims == 2 && t->shape[0] == rows && t->shape[1] == cols);
  if (!ok)
    {
      g_autoptr(GString) shape = g_string_new (NULL);

      for (int d = 0; d < t->n_dims; d++)
        g_string_append_printf (shape, "%s%" G_GINT64_FORMAT, d ? "×" : "", t->shape[d]);
      g_set_error (error, BL_ERROR, BL_ERROR_CORRUPT_FILE,
                   "Tensor “%s” in %s (at byte %" G_GUINT64_FORMAT ") has shape [%s], but the "
                   "config implies [%d%s%.0d]", name, t->file, t->file_offset, shape->str,
                   rows, cols ? "×" : "", cols);
      return NULL;
    }
  return t;
}

/* Widens @t to host fp32, lets the weight hook change it when @hook_name is set (a linear
 * layer), and uploads it. */
static BlBuffer *
upload_tensor (BlEngine       *self,
               const BlTensor *t,
               const char     *hook_name,
               BlLayerKind     kind,
               GError        **error)
{
  g_autofree float *host = g_try_new (float, t->n_elements);
  BlBuffer *buffer;

  if (host == NULL)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_OUT_OF_MEMORY,
                   "Cannot allocate %" G_GINT64_FORMAT " bytes to widen tensor “%s”",
                   t->n_elements * (gint64) sizeof (float), t->name);
      return NULL;
    }
  bl_tensor_to_f32 (t, host);
  if (hook_name != NULL && self->hooks.weight_transform != NULL)
    self->hooks.weight_transform (hook_name, kind, host, t->shape[0], t->shape[1],
                                  self->hooks.user_data);

  buffer = bl_backend_buffer_new (self->backend, (size_t) t->n_elements, error);
  if (buffer == NULL)
    return NULL;
  if (!bl_backend_upload (self->backend, buffer, 0, host, (size_t) t->n_elements, error))
    {
      bl_backend_buffer_free (self->backend, buffer);
      return NULL;
    }
  return buffer;
}

static BlBuffer *
load_vector (BlEngine   *self,
             const char *name,
             int         len,
             GError    **error)
{
  const BlTensor *t = find_tensor (self, name, len, 0, error);

  return t != NULL ? upload_tensor (self, t, NULL, BL_LAYER_NORM, error) : NULL;
}

static gboolean
load_linear (BlEngine    *self,
             Linear      *l,
             const char  *prefix,
             const char  *proj,
             BlLayerKind  kind,
             int          rows,
             int          cols,
             gboolean     has_bias,
             GError     **error)
{
  g_autofree char *bias_name = g_strdup_printf ("%s.%s.bias", prefix, proj);
  const BlTensor *t;

  l->name = g_strdup_printf ("%s.%s.weight", prefix, proj);
  l->kind = kind;
  l->rows = rows;
  l->cols = cols;

  t = find_tensor (self, l->name, rows, cols, error);
  if (t == NULL || (l->w = upload_tensor (self, t, l->name, kind, error)) == NULL)
    return FALSE;

  /* A bias the config does not announce is still used when the file has one: HF would fail
   * to load such a checkpoint, but the file is the better witness of the trained model. */
  if (!has_bias && bl_model_get_tensor (self->model, bias_name) == NULL)
    return TRUE;
  if ((t = find_tensor (self, bias_name, rows, 0, error)) == NULL)
    return FALSE;
  l->bias = upload_tensor (self, t, NULL, kind, error);
  return l->bias != NULL;
}

static gboolean
check_config (BlEngine            *self,
              const BlModelConfig *c,
              GError             **error)
{
  const char *path = bl_model_get_path (self->model);

  if (c->hidden_size <= 0 || c->intermediate_size <= 0 || c->n_layers <= 0 ||
      c->n_heads <= 0 || c->n_kv_heads <= 0 || c->head_dim <= 0 || c->vocab_size <= 0 ||
      c->max_position_embeddings <= 0)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_CORRUPT_FILE,
                   "config.json of %s has a non-positive size (hidden %d, intermediate %d, "
                   "layers %d, heads %d, kv heads %d, head_dim %d, vocab %d, positions %d)",
                   path, c->hidden_size, c->intermediate_size, c->n_layers, c->n_heads,
                   c->n_kv_heads, c->head_dim, c->vocab_size, c->max_position_embeddings);
      return FALSE;
    }
  if (c->n_heads % c->n_kv_heads != 0)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_CORRUPT_FILE,
                   "config.json of %s: %d attention heads are not a multiple of %d key/value "
                   "heads", path, c->n_heads, c->n_kv_heads);
      return FALSE;
    }
  if (c->head_dim % 2 != 0)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_UNSUPPORTED_ARCHITECTURE,
                   "config.json of %s: head_dim %d is odd, rotary embeddings need it even",
                   path, c->head_dim);
      return FALSE;
    }
  if (!(c->rope_theta > 0.0) || !(c->rms_norm_eps >= 0.0))
    {
      g_set_error (error, BL_ERROR, BL_ERROR_CORRUPT_FILE,
                   "config.json of %s: rope_theta %g or rms_norm_eps %g is out of range",
                   path, c->rope_theta, c->rms_norm_eps);
      return FALSE;
    }
  return TRUE;
}

static gboolean
load_weights (BlEngine  *self,
              GError   **error)
{
  const BlModelConfig *c = bl_model_get_config (self->model);
  int q_dim = self->n_heads * self->head_dim;
  int kv_dim = self->n_kv_heads * self->head_dim;
  const BlTensor *embed;
  const BlTensor *head;

  embed = find_tensor (self, "model.embed_tokens.weight", self->vocab, self->hidden, error);
  if (embed == NULL ||
      (self->embed = upload_tensor (self, embed, NULL, BL_LAYER_EMBEDDING, error)) == NULL)
    return FALSE;

  self->blocks = g_new0 (Block, self->n_layers);
  for (int l = 0; l < self->n_layers; l++)
    {
      Block *b = &self->blocks[l];
      g_autofree char *p = g_strdup_printf ("model.layers.%d", l);
      g_autofree char *attn = g_strdup_printf ("%s.self_attn", p);
      g_autofree char *mlp = g_strdup_printf ("%s.mlp", p);
      g_autofree char *n1 = g_strdup_printf ("%s.input_layernorm.weight", p);
      g_autofree char *n2 = g_strdup_printf ("%s.post_attention_layernorm.weight", p);

      if ((b->attn_norm = load_vector (self, n1, self->hidden, error)) == NULL ||
          (b->mlp_norm = load_vector (self, n2, self->hidden, error)) == NULL ||
          !load_linear (self, &b->q, attn, "q_proj", BL_LAYER_ATTN_Q, q_dim, self->hidden,
                        c->attention_bias, error) ||
          !load_linear (self, &b->k, attn, "k_proj", BL_LAYER_ATTN_K, kv_dim, self->hidden,
                        c->attention_bias, error) ||
          !load_linear (self, &b->v, attn, "v_proj", BL_LAYER_ATTN_V, kv_dim, self->hidden,
                        c->attention_bias, error) ||
          !load_linear (self, &b->o, attn, "o_proj", BL_LAYER_ATTN_O, self->hidden, q_dim,
                        c->o_proj_bias, error))
        return FALSE;
      if (bl_moe_config_is_moe (c))
        {
          if ((b->moe = bl_moe_mlp_new (self, l, error)) == NULL)
            return FALSE;
          continue;
        }
      if (!load_linear (self, &b->gate, mlp, "gate_proj", BL_LAYER_MLP_GATE,
                        self->intermediate, self->hidden, c->mlp_bias, error) ||
          !load_linear (self, &b->up, mlp, "up_proj", BL_LAYER_MLP_UP,
                        self->intermediate, self->hidden, c->mlp_bias, error) ||
          !load_linear (self, &b->down, mlp, "down_proj", BL_LAYER_MLP_DOWN,
                        self->hidden, self->intermediate, c->mlp_bias, error))
        return FALSE;
    }

  if ((self->final_norm = load_vector (self, "model.norm.weight", self->hidden, error)) == NULL)
    return FALSE;

  /* The output projection. A tied model projects with the embedding, as HF's tie_weights()
   * makes it, and shares its buffer unless a weight hook may change the projection: then the
   * projection gets its own copy and the embedding lookup stays exact. */
  if (c->tie_word_embeddings)
    head = embed;
  else if ((head = find_tensor (self, "lm_head.weight", self->vocab, self->hidden, error)) == NULL)
    return FALSE;
  self->lm_head.name = g_strdup ("lm_head.weight");
  self->lm_head.kind = BL_LAYER_LM_HEAD;
  self->lm_head.rows = self->vocab;
  self->lm_head.cols = self->hidden;
  if (head == embed && self->hooks.weight_transform == NULL)
    self->lm_head.w = self->embed;
  else if ((self->lm_head.w = upload_tensor (self, head, self->lm_head.name, BL_LAYER_LM_HEAD,
                                             error)) == NULL)
    return FALSE;

  return bl_backend_synchronize (self->backend, error);
}

/**
 * bl_engine_new:
 * @model: a loaded model
 * @backend: the backend to run on; it must outlive the engine
 * @hooks: (nullable): optional weight and activation callbacks, copied
 * @error: return location for a #GError
 *
 * Widens every weight to fp32, calls @hooks->weight_transform on each linear weight, and
 * uploads the weights to @backend.
 *
 * Returns: (transfer full) (nullable): the engine, or %NULL with @error set
 */
BlEngine *
bl_engine_new (BlModel             *model,
               BlBackend           *backend,
               const BlEngineHooks *hooks,
               GError             **error)
{
  g_autoptr(BlEngine) self = NULL;
  const BlModelConfig *c;

  g_return_val_if_fail (BL_IS_MODEL (model), NULL);
  g_return_val_if_fail (backend != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  self = g_new0 (BlEngine, 1);
  self->model = g_object_ref (model);
  self->backend = backend;
  if (hooks != NULL)
    self->hooks = *hooks;

  c = bl_model_get_config (model);
  if (!check_config (self, c, error))
    return NULL;
  self->hidden = c->hidden_size;
  self->intermediate = bl_moe_widest_intermediate (c);
  self->n_layers = c->n_layers;
  self->n_heads = c->n_heads;
  self->n_kv_heads = c->n_kv_heads;
  self->head_dim = c->head_dim;
  self->vocab = c->vocab_size;
  self->max_tokens = c->max_position_embeddings;
  self->eps = (float) c->rms_norm_eps;

  if (!load_weights (self, error))
    return NULL;
  return g_steal_pointer (&self);
}

/**
 * bl_engine_get_model:
 * @self: an engine
 *
 * Returns: (transfer none): the model
 */
BlModel *
bl_engine_get_model (BlEngine *self)
{
  g_return_val_if_fail (self != NULL, NULL);
  return self->model;
}

/**
 * bl_engine_get_backend:
 * @self: an engine
 *
 * Returns: (transfer none): the backend the engine runs on
 */
BlBackend *
bl_engine_get_backend (BlEngine *self)
{
  g_return_val_if_fail (self != NULL, NULL);
  return self->backend;
}

/**
 * bl_engine_get_max_tokens:
 * @self: an engine
 *
 * Returns: the longest window the model supports (max_position_embeddings)
 */
int
bl_engine_get_max_tokens (BlEngine *self)
{
  g_return_val_if_fail (self != NULL, 0);
  return self->max_tokens;
}

/**
 * bl_engine_get_vocab_size:
 * @self: an engine
 *
 * Returns: the number of logits per position
 */
int
bl_engine_get_vocab_size (BlEngine *self)
{
  g_return_val_if_fail (self != NULL, 0);
  return self->vocab;
}

/* Per-layer updates */

static Linear *
find_linear (BlEngine    *self,
             const char  *layer_name,
             GError     **error)
{
  Linear *l_moe;

  if (g_str_equal (layer_name, self->lm_head.name))
    return &self->lm_head;
  for (int l = 0; l < self->n_layers; l++)
    {
      Block *b = &self->blocks[l];
      Linear *all[] = { &b->q, &b->k, &b->v, &b->o, &b->gate, &b->up, &b->down };

      for (guint i = 0; i < G_N_ELEMENTS (all); i++)
        if (all[i]->name != NULL && g_str_equal (layer_name, all[i]->name))
          return all[i];
      if (b->moe != NULL && (l_moe = bl_moe_mlp_find_linear (b->moe, layer_name)) != NULL)
        return l_moe;
    }
  g_set_error (error, BL_ERROR, BL_ERROR_NOT_FOUND, "The engine of %s has no linear layer “%s”",
               bl_model_get_path (self->model), layer_name);
  return NULL;
}

/**
 * bl_engine_set_weight:
 * @self: an engine
 * @layer_name: a linear layer as #BlWeightTransformFunc names it
 * @w: [rows, cols] row-major fp32, the layer's new weight
 * @error: return location for a #GError
 *
 * Replaces one linear layer's weight, e.g. after a plan change re-quantized it. No weight
 * hook runs. The other layers are not touched; a tied lm_head that shared the embedding's
 * buffer gets its own, so the embedding lookup stays as it was.
 *
 * Returns: %TRUE on success; %FALSE with %BL_ERROR_NOT_FOUND or a backend error
 */
gboolean
bl_engine_set_weight (BlEngine     *self,
                      const char   *layer_name,
                      const float  *w,
                      GError      **error)
{
  Linear *l;
  size_t count;

  g_return_val_if_fail (self != NULL, FALSE);
  g_return_val_if_fail (layer_name != NULL && w != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if ((l = find_linear (self, layer_name, error)) == NULL)
    return FALSE;
  count = (size_t) l->rows * l->cols;
  if (l->w == self->embed)
    {
      BlBuffer *own = bl_backend_buffer_new (self->backend, count, error);

      if (own == NULL)
        return FALSE;
      l->w = own;
    }
  return bl_backend_upload (self->backend, l->w, 0, w, count, error)
         && bl_backend_synchronize (self->backend, error);
}

/**
 * bl_engine_set_bias:
 * @self: an engine
 * @layer_name: a linear layer as #BlWeightTransformFunc names it
 * @bias: (nullable): [rows] fp32, the bias added after the layer, or %NULL for none
 * @error: return location for a #GError
 *
 * Replaces, adds or removes one linear layer's output bias (bias correction adds one to a
 * layer that had none). The lm_head takes none.
 *
 * Returns: %TRUE on success; %FALSE with %BL_ERROR_NOT_FOUND, %BL_ERROR_INVALID_ARGUMENT (a
 *   bias for the lm_head) or a backend error
 */
gboolean
bl_engine_set_bias (BlEngine     *self,
                    const char   *layer_name,
                    const float  *bias,
                    GError      **error)
{
  Linear *l;

  g_return_val_if_fail (self != NULL, FALSE);
  g_return_val_if_fail (layer_name != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if ((l = find_linear (self, layer_name, error)) == NULL)
    return FALSE;
  if (l == &self->lm_head && bias != NULL)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT,
                   "The output projection of %s takes no bias (LlamaForCausalLM has none)",
                   bl_model_get_path (self->model));
      return FALSE;
    }
  if (bias == NULL)
    {
      bl_backend_buffer_free (self->backend, l->bias);
      l->bias = NULL;
      return TRUE;
    }
  if (l->bias == NULL && (l->bias = bl_backend_buffer_new (self->backend, l->rows, error)) == NULL)
    return FALSE;
  return bl_backend_upload (self->backend, l->bias, 0, bias, (size_t) l->rows, error)
         && bl_backend_synchronize (self->backend, error);
}

/* Forward pass */

static gboolean
ensure_activations (BlEngine  *self,
                    int        n,
                    GError   **error)
{
  size_t q_dim = (size_t) self->n_heads * self->head_dim;
  size_t kv_dim = (size_t) self->n_kv_heads * self->head_dim;
  size_t widest = MAX (MAX ((size_t) self->hidden, q_dim), (size_t) self->intermediate);
  struct { BlBuffer **buffer; size_t dim; } plan[] = {
    { &self->x, self->hidden }, { &self->h, self->hidden }, { &self->q, q_dim },
    { &self->k, kv_dim }, { &self->v, kv_dim }, { &self->att, q_dim },
    { &self->gate, self->intermediate }, { &self->up, self->intermediate },
    { &self->hook_in, widest },
  };

  if (n <= self->n_alloc)
    return TRUE;

  activations_clear (self);
  for (guint i = 0; i < G_N_ELEMENTS (plan); i++)
    {
      if (plan[i].buffer == &self->hook_in && self->hooks.activation == NULL)
        continue;
      *plan[i].buffer = bl_backend_buffer_new (self->backend, plan[i].dim * n, error);
      if (*plan[i].buffer == NULL)
        {
          activations_clear (self);
          return FALSE;
        }
    }
  if (self->hooks.activation != NULL &&
      bl_backend_buffer_map (self->backend, self->hook_in) == NULL)
    self->hook_host = g_new (float, widest * n);
  if (self->hooks.kv_cache != NULL && bl_backend_buffer_map (self->backend, self->k) == NULL)
    self->kv_host = g_new (float, 2 * kv_dim * n);
  self->n_alloc = n;
  return TRUE;
}

/* The cos/sin tables for positions 0..n-1, in fp32 exactly as HF's LlamaRotaryEmbedding
 * computes them: inv_freq = 1 / theta^(2j/d) in fp32 (the exponent rounded to fp32 first),
 * freq = position · inv_freq rounded to fp32, then cos and sin of that fp32 angle. Su et al.
 * 2021, "RoFormer", section 3.4.2. */
static gboolean
ensure_rope (BlEngine  *self,
             int        n,
             GError   **error)
{
  int half = self->head_dim / 2;
  g_autofree float *inv_freq = NULL;
  g_autofree float *c = NULL;
  g_autofree float *s = NULL;

  if (n <= self->n_rope)
    return TRUE;

  bl_backend_buffer_free (self->backend, self->cos);
  bl_backend_buffer_free (self->backend, self->sin);
  self->cos = self->sin = NULL;
  self->n_rope = 0;

  inv_freq = g_new (float, half);
  c = g_new (float, (size_t) n * half);
  s = g_new (float, (size_t) n * half);
  bl_model_config_rope_inv_freq (bl_model_get_config (self->model), inv_freq);
  for (int i = 0; i < n; i++)
    for (int j = 0; j < half; j++)
      {
        float angle = (float) i * inv_freq[j];

        c[(size_t) i * half + j] = cosf (angle);
        s[(size_t) i * half + j] = sinf (angle);
      }

  self->cos = bl_backend_buffer_new (self->backend, (size_t) n * half, error);
  if (self->cos == NULL)
    return FALSE;
  self->sin = bl_backend_buffer_new (self->backend, (size_t) n * half, error);
  if (self->sin == NULL ||
      !bl_backend_upload (self->backend, self->cos, 0, c, (size_t) n * half, error) ||
      !bl_backend_upload (self->backend, self->sin, 0, s, (size_t) n * half, error))
    return FALSE;
  self->n_rope = n;
  return TRUE;
}

/* Runs @l on @x [n, l->cols] into @y [n, l->rows] (or adds onto @y when @accumulate). With
 * an activation hook, the hook sees and may change a private copy of the input. */
static gboolean
linear (BlEngine  *self,
        Linear    *l,
        int        block,
        BlBuffer  *y,
        BlBuffer  *x,
        int        n,
        gboolean   accumulate,
        GError   **error)
{
  if (self->hooks.activation != NULL)
    {
      size_t count = (size_t) n * l->cols;
      float *host = bl_backend_buffer_map (self->backend, self->hook_in);

      bl_backend_copy (self->backend, self->hook_in, x, count);
      if (host == NULL)
        {
          host = self->hook_host;
          if (!bl_backend_download (self->backend, self->hook_in, 0, host, count, error))
            return FALSE;
        }
      self->hooks.activation (l->name, l->kind, block, host, n, l->cols, self->hooks.user_data);
      if (host == self->hook_host &&
          !bl_backend_upload (self->backend, self->hook_in, 0, host, count, error))
        return FALSE;
      x = self->hook_in;
    }
  bl_backend_matmul (self->backend, y, x, l->w, l->bias, n, l->cols, l->rows, accumulate);
  return TRUE;
}

/* Lets the KV-cache hook see and change the keys (after RoPE) and values of block @block. */
static gboolean
kv_cache_hook (BlEngine  *self,
               int        block,
               int        n,
               GError   **error)
{
  size_t kv_dim = (size_t) self->n_kv_heads * self->head_dim;
  size_t count = (size_t) n * kv_dim;
  float *k = bl_backend_buffer_map (self->backend, self->k);
  float *v = bl_backend_buffer_map (self->backend, self->v);

  if (k == NULL || v == NULL)
    {
      k = self->kv_host;
      v = self->kv_host + count;
      if (!bl_backend_download (self->backend, self->k, 0, k, count, error) ||
          !bl_backend_download (self->backend, self->v, 0, v, count, error))
        return FALSE;
    }
  self->hooks.kv_cache (block, k, v, n, (int) kv_dim, self->hooks.user_data);
  if (k == self->kv_host &&
      (!bl_backend_upload (self->backend, self->k, 0, k, count, error) ||
       !bl_backend_upload (self->backend, self->v, 0, v, count, error)))
    return FALSE;
  return TRUE;
}

static gboolean
check_ids (BlEngine       *self,
           const int32_t  *ids,
           int             n,
           GError        **error)
{
  if (n < 1 || n > self->max_tokens)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT,
                   "A window of %d tokens is outside 1…%d (max_position_embeddings)",
                   n, self->max_tokens);
      return FALSE;
    }
  for (int i = 0; i < n; i++)
    if (ids[i] < 0 || ids[i] >= self->vocab)
      {
        g_set_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT,
                     "Token id %d at position %d is outside the vocabulary (0…%d)",
                     ids[i], i, self->vocab - 1);
        return FALSE;
      }
  return TRUE;
}

/* Runs the embedding and every transformer block over ids[0..n), then the final norm, and
 * leaves the normed hidden states in self->h. HF LlamaDecoderLayer: pre-norm attention and
 * MLP blocks, each added to the residual stream. */
static gboolean
run_blocks (BlEngine      *self,
            const int32_t *ids,
            int            n,
            GCancellable  *cancellable,
            GError       **error)
{
  BlBackend *be = self->backend;

  if (!ensure_activations (self, n, error) || !ensure_rope (self, n, error))
    return FALSE;

  bl_backend_get_rows (be, self->x, self->embed, ids, n, self->hidden);
  for (int l = 0; l < self->n_layers; l++)
    {
      Block *b = &self->blocks[l];

      if (g_cancellable_set_error_if_cancelled (cancellable, error))
        return FALSE;

      bl_backend_rmsnorm (be, self->h, self->x, b->attn_norm, n, self->hidden, self->eps);
      if (!linear (self, &b->q, l, self->q, self->h, n, FALSE, error) ||
          !linear (self, &b->k, l, self->k, self->h, n, FALSE, error) ||
          !linear (self, &b->v, l, self->v, self->h, n, FALSE, error))
        return FALSE;
      bl_backend_rope (be, self->q, self->cos, self->sin, n, self->n_heads, self->head_dim);
      bl_backend_rope (be, self->k, self->cos, self->sin, n, self->n_kv_heads, self->head_dim);
      if (self->hooks.kv_cache != NULL && !kv_cache_hook (self, l, n, error))
        return FALSE;
      bl_backend_attention (be, self->att, self->q, self->k, self->v, n, self->n_heads,
                            self->n_kv_heads, self->head_dim,
                            bl_model_config_attention_window (bl_model_get_config (self->model), l));
      /* o_proj accumulates straight onto the residual stream. */
      if (!linear (self, &b->o, l, self->x, self->att, n, TRUE, error))
        return FALSE;

      bl_backend_rmsnorm (be, self->h, self->x, b->mlp_norm, n, self->hidden, self->eps);
      if (b->moe != NULL)
        {
          if (!bl_moe_mlp_forward (self, b->moe, &self->moe_scratch, self->x, self->h, n, error))
            return FALSE;
          continue;
        }
      if (!linear (self, &b->gate, l, self->gate, self->h, n, FALSE, error) ||
          !linear (self, &b->up, l, self->up, self->h, n, FALSE, error))
        return FALSE;
      bl_backend_swiglu (be, self->gate, self->gate, self->up, (size_t) n * self->intermediate);
      if (!linear (self, &b->down, l, self->x, self->gate, n, TRUE, error))
        return FALSE;
    }
  if (g_cancellable_set_error_if_cancelled (cancellable, error))
    return FALSE;
  bl_backend_rmsnorm (be, self->h, self->x, self->final_norm, n, self->hidden, self->eps);
  return TRUE;
}

/* Gives the output projection's activation hook its look at the final hidden states. The
 * projection itself happens in bl_backend_matmul() or bl_backend_nll(). */
static BlBuffer *
lm_head_input (BlEngine  *self,
               int        n,
               GError   **error)
{
  Linear *l = &self->lm_head;
  size_t count = (size_t) n * l->cols;
  float *host;

  if (self->hooks.activation == NULL)
    return self->h;

  host = bl_backend_buffer_map (self->backend, self->hook_in);
  bl_backend_copy (self->backend, self->hook_in, self->h, count);
  if (host == NULL)
    {
      host = self->hook_host;
      if (!bl_backend_download (self->backend, self->hook_in, 0, host, count, error))
        return NULL;
    }
  self->hooks.activation (l->name, l->kind, -1, host, n, l->cols, self->hooks.user_data);
  if (host == self->hook_host &&
      !bl_backend_upload (self->backend, self->hook_in, 0, host, count, error))
    return NULL;
  return self->hook_in;
}

/**
 * bl_engine_forward:
 * @self: an engine
 * @ids: @n token ids
 * @n: window length, 1…bl_engine_get_max_tokens()
 * @logits: (out caller-allocates) (nullable): room for [@n, vocab] fp32 logits
 * @cancellable: (nullable): checked between layers
 * @error: return location for a #GError
 *
 * Runs @ids at positions 0…@n−1 as one window (no cache is kept between calls).
 *
 * Returns: %TRUE on success; %FALSE with %G_IO_ERROR_CANCELLED, %BL_ERROR_INVALID_ARGUMENT
 *   (length or id out of range) or a backend error
 */
gboolean
bl_engine_forward (BlEngine      *self,
                   const int32_t *ids,
                   int            n,
                   float         *logits,
                   GCancellable  *cancellable,
                   GError       **error)
{
  BlBuffer *head_in;

  g_return_val_if_fail (self != NULL, FALSE);
  g_return_val_if_fail (ids != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (!check_ids (self, ids, n, error) || !run_blocks (self, ids, n, cancellable, error))
    return FALSE;
  if (logits == NULL)
    return bl_backend_synchronize (self->backend, error);

  if ((head_in = lm_head_input (self, n, error)) == NULL)
    return FALSE;
  if (n > self->n_logits)
    {
      bl_backend_buffer_free (self->backend, self->logits);
      self->n_logits = 0;
      self->logits = bl_backend_buffer_new (self->backend, (size_t) n * self->vocab, error);
      if (self->logits == NULL)
        return FALSE;
      self->n_logits = n;
    }
  bl_backend_matmul (self->backend, self->logits, head_in, self->lm_head.w, NULL, n,
                     self->hidden, self->vocab, FALSE);
  return bl_backend_download (self->backend, self->logits, 0, logits, (size_t) n * self->vocab,
                              error);
}

/**
 * bl_engine_nll:
 * @self: an engine
 * @ids: @n token ids
 * @n: window length, 1…bl_engine_get_max_tokens()
 * @first_target: first scored position, 1…@n
 * @nll: (out caller-allocates): room for @n − @first_target values
 * @cancellable: (nullable): checked between layers
 * @error: return location for a #GError
 *
 * Scores a window: for j in [@first_target, @n), @nll[j − @first_target] =
 * −log p(@ids[j] | @ids[0..j−1]) in nats, from a log-softmax over the vocabulary taken in
 * fp32 after subtracting the row maximum, with the sum of exponentials kept in double.
 * The full [n, vocab] logits are never materialised.
 *
 * Returns: %TRUE on success; %FALSE with %G_IO_ERROR_CANCELLED, %BL_ERROR_INVALID_ARGUMENT
 *   or a backend error
 */
gboolean
bl_engine_nll (BlEngine      *self,
               const int32_t *ids,
               int            n,
               int            first_target,
               double        *nll,
               GCancellable  *cancellable,
               GError       **error)
{
  BlBuffer *head_in;
  int n_run;

  g_return_val_if_fail (self != NULL, FALSE);
  g_return_val_if_fail (ids != NULL, FALSE);
  g_return_val_if_fail (nll != NULL || first_target == n, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (!check_ids (self, ids, n, error))
    return FALSE;
  if (first_target < 1 || first_target > n)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT,
                   "The first scored position %d is outside 1…%d", first_target, n);
      return FALSE;
    }
  if (first_target == n)
    return TRUE;

  /* The last token is only ever a target: attention is causal, so running ids[0..n−1)
   * gives the same hidden states for every position that predicts a target. */
  n_run = n - 1;
  if (!run_blocks (self, ids, n_run, cancellable, error) ||
      (head_in = lm_head_input (self, n_run, error)) == NULL)
    return FALSE;
  return bl_backend_nll (self->backend, head_in, self->lm_head.w, first_target - 1,
                         n - first_target, self->hidden, self->vocab, ids + first_target, nll,
                         error);
}

/* For the MoE feed-forward (bl-engine-private.h) */

gboolean
bl_engine_load_linear (BlEngine        *self,
                       BlEngineLinear  *l,
                       const char      *prefix,
                       const char      *proj,
                       BlLayerKind      kind,
                       int              rows,
                       int              cols,
                       gboolean         has_bias,
                       GError         **error)
{
  return load_linear (self, l, prefix, proj, kind, rows, cols, has_bias, error);
}

void
bl_engine_clear_linear (BlEngine       *self,
                        BlEngineLinear *l)
{
  linear_clear (self, l);
}

gboolean
bl_engine_run_linear (BlEngine        *self,
                      BlEngineLinear  *l,
                      int              block,
                      BlBuffer        *y,
                      BlBuffer        *x,
                      int              n,
                      gboolean         accumulate,
                      GError         **error)
{
  return linear (self, l, block, y, x, n, accumulate, error);
}

const BlEngineHooks *
bl_engine_get_hooks (BlEngine *self)
{
  return &self->hooks;
}
