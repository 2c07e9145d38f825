/* bl-model.h: a Llama-family language model loaded from a Hugging Face directory or a GGUF file
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <gio/gio.h>

#include "bl-tensor.h"
#include "bl-tokenizer.h"

G_BEGIN_DECLS

/**
 * BlRopeScaling:
 * @BL_ROPE_DEFAULT: plain RoPE, inv_freq_j = θ^(−2j/d)
 * @BL_ROPE_LINEAR: position interpolation, inv_freq_j / factor
 * @BL_ROPE_LLAMA3: Llama 3.1's frequency-dependent scaling (transformers'
 *   _compute_llama3_parameters): low frequencies divided by factor, high ones kept, a smooth
 *   interpolation between
 *
 * The rope_scaling of config.json Bitlens implements. Other types (dynamic, yarn, longrope,
 * …) are refused when the config is read.
 */
typedef enum
{
  BL_ROPE_DEFAULT,
  BL_ROPE_LINEAR,
  BL_ROPE_LLAMA3,
} BlRopeScaling;

/**
 * BlModelConfig:
 *
 * The architecture parameters read from config.json. @head_dim is taken from config.json
 * when present, otherwise hidden_size / num_attention_heads.
 */
typedef struct
{
  char *model_type;          /* "llama", "mistral", "qwen2", "mixtral", "qwen2_moe" */
  char *architecture;        /* architectures[0], e.g. "LlamaForCausalLM" */
  int vocab_size;
  int hidden_size;
  int intermediate_size;
  int n_layers;
  int n_heads;
  int n_kv_heads;
  int head_dim;
  int max_position_embeddings;
  double rms_norm_eps;
  double rope_theta;
  gboolean tie_word_embeddings;
  gboolean attention_bias;   /* q/k/v biases (qwen2 always, llama when attention_bias=true) */
  gboolean o_proj_bias;      /* llama attention_bias=true also biases o_proj */
  gboolean mlp_bias;
  int bos_token_id;          /* -1 when absent */
  int eos_token_id;          /* -1 when absent */
  char *torch_dtype;
  /* Mixture of experts (mixtral, qwen2_moe); n_experts is 0 for a dense model */
  int n_experts;             /* routed experts per block */
  int n_experts_per_tok;     /* top-k */
  int moe_intermediate_size; /* an expert's intermediate size */
  int shared_expert_intermediate_size; /* qwen2_moe's shared expert, 0 when there is none */
  gboolean norm_topk_prob;   /* renormalise the top-k routing weights to sum 1 */
  /* RoPE frequency scaling (rope_scaling), applied by bl_model_config_rope_inv_freq() */
  BlRopeScaling rope_scaling;
  double rope_factor;                 /* linear, llama3 */
  double rope_low_freq_factor;        /* llama3 */
  double rope_high_freq_factor;       /* llama3 */
  int rope_original_max_positions;    /* llama3: original_max_position_embeddings */
  float *rope_freq_factors;           /* head_dim / 2 divisors of the plain frequencies, from
                                       * a GGUF file's rope_freqs tensor; NULL otherwise */
  /* Sliding-window attention: a query sees itself and the sliding_window − 1 keys before it,
   * in the blocks from max_window_layers on (0 for mistral and mixtral: every block);
   * sliding_window is 0 for full causal attention. See bl_model_config_attention_window(). */
  int sliding_window;
  int max_window_layers;
} BlModelConfig;

typedef enum
{
  BL_LAYER_EMBEDDING,
  BL_LAYER_ATTN_Q,
  BL_LAYER_ATTN_K,
  BL_LAYER_ATTN_V,
  BL_LAYER_ATTN_O,
  BL_LAYER_MLP_GATE,
  BL_LAYER_MLP_UP,
  BL_LAYER_MLP_DOWN,
  BL_LAYER_NORM,
  BL_LAYER_LM_HEAD,
  BL_LAYER_MOE_ROUTER,       /* an MoE router or shared-expert gate: kept in full precision */
} BlLayerKind;

#define BL_TYPE_LAYER_KIND (bl_layer_kind_get_type ())
GType bl_layer_kind_get_type (void);

#define BL_TYPE_LAYER (bl_layer_get_type ())
G_DECLARE_FINAL_TYPE (BlLayer, bl_layer, BL, LAYER, GObject)

/* A BlLayer is one named weight of the model, as a row in the UI: properties "name",
 * "kind", "block" (-1 outside the transformer blocks), "n-params", "dtype", "shape" (string "out×in"). */
const char     *bl_layer_get_name     (BlLayer *self);
BlLayerKind     bl_layer_get_kind     (BlLayer *self);
int             bl_layer_get_block    (BlLayer *self);
gint64          bl_layer_get_n_params (BlLayer *self);
const BlTensor *bl_layer_get_tensor   (BlLayer *self);
/* The bias added after this linear layer, or NULL. */
const BlTensor *bl_layer_get_bias     (BlLayer *self);
gboolean        bl_layer_kind_is_linear (BlLayerKind kind);
const char     *bl_layer_kind_to_string (BlLayerKind kind);

#define BL_TYPE_MODEL (bl_model_get_type ())
G_DECLARE_FINAL_TYPE (BlModel, bl_model, BL, MODEL, GObject)

/* A BlModel implements GListModel with one BlLayer per weight the forward pass reads: the
 * embedding, then each block (q, k, v, o, gate, up, down, input and post-attention norms),
 * then the final norm and the lm_head. Biases belong to their linear layer. A tied
 * embedding matrix is one item, named and kinded after the tensor it is stored as. */

BlModel             *bl_model_load          (const char          *path,
                                             GCancellable        *cancellable,
                                             GError             **error);
void                 bl_model_load_async    (const char          *path,
                                             GCancellable        *cancellable,
                                             GAsyncReadyCallback  callback,
                                             gpointer             user_data);
BlModel             *bl_model_load_finish   (GAsyncResult        *result,
                                             GError             **error);

const char          *bl_model_get_path        (BlModel    *self);
const BlModelConfig *bl_model_get_config      (BlModel    *self);
/* NULL when the directory has no tokenizer.json (a GGUF model: see bl_model_get_tokenizer_source()) */
BlTokenizer         *bl_model_get_tokenizer   (BlModel    *self);
/* Finds a tensor by its HF name; the tied lm_head / embed_tokens aliasing is resolved here. */
const BlTensor      *bl_model_get_tensor      (BlModel    *self,
                                               const char *name);
guint                bl_model_get_n_tensors   (BlModel    *self);
const BlTensor      *bl_model_get_tensor_at   (BlModel    *self,
                                               guint       index);
gint64               bl_model_get_n_params    (BlModel    *self);
/* GGUF models: the stored ggml types, and where the tokenizer came from (NULL otherwise) */
const char          *bl_model_get_storage     (BlModel    *self);
const char          *bl_model_get_tokenizer_source (BlModel *self);
/* sha256 hex over config.json and every safetensors header + data (or over the GGUF file),
 * stable across copies */
const char          *bl_model_get_fingerprint (BlModel    *self);

G_END_DECLS
