/* bl-engine.h: the Llama-family forward pass, written once against the BlBackend vtable
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <gio/gio.h>
#include <stdint.h>

#include "bl-backend.h"
#include "bl-model.h"

G_BEGIN_DECLS

/**
 * BlWeightTransformFunc:
 * @layer_name: the weight's tensor name, e.g. "model.layers.0.self_attn.q_proj.weight"
 *   ("lm_head.weight" for the output projection, also when it is tied to the embedding)
 * @kind: which projection it is
 * @w: (inout): the weight as host fp32, [@rows, @cols] row-major; change it in place
 * @rows: output features
 * @cols: input features
 * @user_data: #BlEngineHooks.user_data
 *
 * Called once per linear weight by bl_engine_new(), before the weight is uploaded. This is
 * where weight quantizers (fake-quant) go.
 */
typedef void (*BlWeightTransformFunc) (const char  *layer_name,
                                       BlLayerKind  kind,
                                       float       *w,
                                       int64_t      rows,
                                       int64_t      cols,
                                       gpointer     user_data);

/**
 * BlActivationFunc:
 * @layer_name: the weight's tensor name of the linear layer about to run
 * @kind: which projection it is
 * @block: the transformer block, or -1 for the output projection
 * @x: (inout): the layer's input, [@n_tokens, @dim] row-major host fp32; change it in place
 * @n_tokens: rows
 * @dim: the layer's input features
 * @user_data: #BlEngineHooks.user_data
 *
 * Called at the input of every linear layer in every forward pass, with a private copy of
 * the input, so a change (an activation quantizer) reaches only that layer even where
 * several layers share an input (q/k/v, gate/up). On the CPU backend @x is the buffer
 * itself; on a backend whose buffers the host cannot map, the engine downloads the input
 * before the call and uploads it after.
 */
typedef void (*BlActivationFunc) (const char  *layer_name,
                                  BlLayerKind  kind,
                                  int          block,
                                  float       *x,
                                  int          n_tokens,
                                  int          dim,
                                  gpointer     user_data);

/**
 * BlKvCacheFunc:
 * @block: the transformer block
 * @k: (inout): the keys after the K projection and RoPE, [@n_tokens, @kv_dim] row-major host
 *   fp32 (head h at columns h·head_dim…); change them in place
 * @v: (inout): the values after the V projection, [@n_tokens, @kv_dim]
 * @n_tokens: rows
 * @kv_dim: n_kv_heads · head_dim
 * @user_data: #BlEngineHooks.user_data
 *
 * Called in every block of every forward pass once the keys and values are what a KV cache
 * would hold, before attention reads them: this is where a KV-cache quantizer goes. As with
 * #BlActivationFunc, a backend whose buffers the host cannot map has them downloaded before
 * and uploaded after the call.
 */
typedef void (*BlKvCacheFunc) (int       block,
                               float    *k,
                               float    *v,
                               int       n_tokens,
                               int       kv_dim,
                               gpointer  user_data);

/**
 * BlRoutingFunc:
 * @block: the transformer block
 * @experts: [@n_tokens, @top_k] the experts each token chose, best first
 * @weights: [@n_tokens, @top_k] their routing weights after top-k (renormalised to sum 1
 *   where the model does)
 * @n_tokens: tokens in the window
 * @n_experts: routed experts of the block
 * @top_k: experts per token
 * @user_data: #BlEngineHooks.user_data
 *
 * Called in every mixture-of-experts block of every forward pass once the router has chosen,
 * before the experts run: this is where routing statistics are collected (bl-moe.h).
 */
typedef void (*BlRoutingFunc) (int           block,
                               const int    *experts,
                               const float  *weights,
                               int           n_tokens,
                               int           n_experts,
                               int           top_k,
                               gpointer      user_data);

/**
 * BlEngineHooks:
 * @weight_transform: (nullable): see #BlWeightTransformFunc
 * @activation: (nullable): see #BlActivationFunc
 * @user_data: passed to every hook
 * @kv_cache: (nullable): see #BlKvCacheFunc
 * @routing: (nullable): see #BlRoutingFunc
 *
 * Optional callbacks for quantizers and calibration statistics. Copied by bl_engine_new().
 * Without hooks the forward pass is exactly the unhooked one.
 */
typedef struct
{
  BlWeightTransformFunc weight_transform;
  BlActivationFunc activation;
  gpointer user_data;
  BlKvCacheFunc kv_cache;
  BlRoutingFunc routing;
} BlEngineHooks;

typedef struct _BlEngine BlEngine;

BlEngine  *bl_engine_new            (BlModel             *model,
                                     BlBackend           *backend,
                                     const BlEngineHooks *hooks,
                                     GError             **error);
void       bl_engine_free           (BlEngine            *self);

BlModel   *bl_engine_get_model      (BlEngine            *self);
BlBackend *bl_engine_get_backend    (BlEngine            *self);
int        bl_engine_get_max_tokens (BlEngine            *self);
int        bl_engine_get_vocab_size (BlEngine            *self);

gboolean   bl_engine_set_weight     (BlEngine            *self,
                                     const char          *layer_name,
                                     const float         *w,
                                     GError             **error);
gboolean   bl_engine_set_bias       (BlEngine            *self,
                                     const char          *layer_name,
                                     const float         *bias,
                                     GError             **error);

gboolean   bl_engine_forward        (BlEngine            *self,
                                     const int32_t       *ids,
                                     int                  n,
                                     float               *logits,
                                     GCancellable        *cancellable,
                                     GError             **error);
gboolean   bl_engine_nll            (BlEngine            *self,
                                     const int32_t       *ids,
                                     int                  n,
                                     int                  first_target,
                                     double              *nll,
                                     GCancellable        *cancellable,
                                     GError             **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (BlEngine, bl_engine_free)

G_END_DECLS
