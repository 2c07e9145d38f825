/* bl-quant-plan.h: which layers are quantized how — ordered rules plus defaults
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * A plan says, for every linear layer of a model, the weight format, the activation format,
 * the weight algorithm (bl-quant-algo.h) and its options. It is written as:
 *
 *   - defaults: the assignment of every transformer-block linear layer (q/k/v/o_proj,
 *     gate/up/down_proj) that no rule matches;
 *   - rules: an ordered list of `pattern → weight, activation, algorithm, options`. The
 *     pattern is a glob (`*` any run of characters, `?` one character, as
 *     g_pattern_match_simple()) over the layer names the engine uses
 *     ("model.layers.3.mlp.down_proj.weight", "lm_head.weight"). The FIRST rule whose pattern
 *     matches a layer decides it; a field the rule leaves out (%NULL) is taken from the
 *     defaults;
 *   - skip: globs of layers that stay in full precision whatever the rules say;
 *   - kv_cache: an optional format for the keys and values after the K/V projections and RoPE;
 *   - calibration: which text, how many windows of what length and which seed the
 *     calibration pass (static activation ranges, data-aware algorithms) reads.
 *
 * The output projection (lm_head.weight, also when it is tied to the embedding) is only
 * quantized when a rule matches it: the defaults never reach it, because its error lands
 * directly on the logits and it is kept in full precision by common practice (GPTQ, AWQ,
 * llama.cpp's default types). The embedding lookup is not a linear layer and is never
 * quantized; a pattern that matches only the embedding is an error ("matches no linear
 * layer").
 *
 * The word "none" as a weight or activation spec means full precision (no quantizer). The
 * JSON form is documented in docs/plan-schema.md.
 */
#pragma once

#include <gio/gio.h>
#include <json-glib/json-glib.h>

#include "bl-format.h"
#include "bl-model.h"

G_BEGIN_DECLS

/**
 * BL_QUANT_PLAN_VERSION:
 *
 * The "version" member bl_quant_plan_to_json() writes. A file with a higher version is
 * refused.
 */
#define BL_QUANT_PLAN_VERSION 1

/**
 * BL_QUANT_PLAN_NONE:
 *
 * The spec word for "no quantizer" (full precision) in a rule or the defaults.
 */
#define BL_QUANT_PLAN_NONE "none"

/**
 * BlQuantRule:
 * @pattern: the layer glob; %NULL for the defaults
 * @weight: (nullable): the weight spec string, "none", or %NULL to take the default's
 * @activation: (nullable): the activation spec string, "none", or %NULL to take the default's
 * @algorithm: (nullable): the weight algorithm (bl-quant-algo.h), or %NULL to take the
 *   default's ("rtn" when the defaults name none either)
 * @options: (nullable): the algorithm's options, or %NULL to take the default's; a rule's
 *   options replace the default's as a whole, they are not merged
 *
 * One rule of a plan, or the plan's defaults. Read-only; owned by the plan.
 *
 * Activation specs: `:token` and group or block formats (`int4:g32`, `mxfp4`, `nvfp4`) are
 * dynamic, their scales taken from each input as it arrives; `:tensor` and `:channel` are
 * static, one scale for the whole input or one per input channel, from the absolute maxima
 * the calibration pass observes (integer and FP element families only).
 */
typedef struct
{
  char *pattern;
  char *weight;
  char *activation;
  char *algorithm;
  JsonObject *options;
} BlQuantRule;

/**
 * BlQuantCalibration:
 * @text: (nullable): the calibration text as the CLI names it (a file, or brown:SPLIT);
 *   %NULL lets the caller choose
 * @n_windows: calibration windows (0: 32)
 * @ctx: ids per window (0: the smaller of 512 and the model's maximum)
 * @seed: seed of the window starts (bl_calib_make_windows())
 *
 * Where the calibration statistics come from. Only read when some layer needs them (a
 * static activation spec, or an algorithm for which bl_quant_algo_needs() is not 0).
 */
typedef struct
{
  char *text;
  int n_windows;
  int ctx;
  guint64 seed;
} BlQuantCalibration;

/**
 * BlLayerAssignment:
 * @layer: the layer name as the engine uses it
 * @kind: the projection
 * @block: the transformer block, -1 for the lm_head
 * @rows: output features
 * @cols: input features
 * @rule: index of the rule that decided the layer, -1 for the defaults, -2 for a layer
 *   that stays in full precision because a skip pattern matched it or (the lm_head) because
 *   no rule matched it
 * @skip: index of the skip pattern that matched, or -1
 * @has_weight: the weight is quantized
 * @weight: the parsed weight format when @has_weight
 * @weight_spec: (nullable): its canonical string (bl_format_spec_to_string()), %NULL when
 *   not quantized
 * @has_activation: the layer's input is quantized
 * @activation: the parsed activation format when @has_activation
 * @activation_spec: (nullable): its canonical string, %NULL when not quantized
 * @algorithm: (nullable): the weight algorithm, %NULL when the weight is not quantized
 * @options: (nullable): the algorithm's options (a reference)
 * @n_params: @rows × @cols
 * @stored_bits: bits per weight of the tensor as the model stores it (32, 16)
 * @bits_per_weight: bits per weight under the plan, scales, zero points and tensor scales
 *   included (bl_format_spec_bits_for_shape()), or @stored_bits when not quantized
 *
 * What a resolved plan does to one linear layer.
 */
typedef struct
{
  char *layer;
  BlLayerKind kind;
  int block;
  gint64 rows;
  gint64 cols;
  int rule;
  int skip;
  gboolean has_weight;
  BlFormatSpec weight;
  char *weight_spec;
  gboolean has_activation;
  BlFormatSpec activation;
  char *activation_spec;
  char *algorithm;
  JsonObject *options;
  gint64 n_params;
  double stored_bits;
  double bits_per_weight;
} BlLayerAssignment;

#define BL_TYPE_LAYER_ASSIGNMENT (bl_layer_assignment_get_type ())
GType              bl_layer_assignment_get_type (void) G_GNUC_CONST;
BlLayerAssignment *bl_layer_assignment_copy     (const BlLayerAssignment *a);
void               bl_layer_assignment_free     (BlLayerAssignment       *a);
gboolean           bl_layer_assignment_weight_equal     (const BlLayerAssignment *a,
                                                         const BlLayerAssignment *b);
gboolean           bl_layer_assignment_activation_equal (const BlLayerAssignment *a,
                                                         const BlLayerAssignment *b);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BlLayerAssignment, bl_layer_assignment_free)

/**
 * BlLayerChange:
 * @BL_LAYER_CHANGE_WEIGHT: the weight format, algorithm or options changed (the weight must
 *   be quantized again)
 * @BL_LAYER_CHANGE_ACTIVATION: the activation format changed
 *
 * What differs for one layer between two resolved plans (bl_quant_plan_diff()).
 */
typedef enum
{
  BL_LAYER_CHANGE_WEIGHT     = 1 << 0,
  BL_LAYER_CHANGE_ACTIVATION = 1 << 1,
} BlLayerChange;

/**
 * BlLayerDiff:
 * @layer: the layer name
 * @changes: what changed
 * @before: the assignment in the first plan
 * @after: the assignment in the second plan
 *
 * One changed layer. Owned by the array bl_quant_plan_diff() returns; @before and @after
 * point into the compared arrays, which must outlive it.
 */
typedef struct
{
  const char *layer;
  BlLayerChange changes;
  const BlLayerAssignment *before;
  const BlLayerAssignment *after;
} BlLayerDiff;

/**
 * BlQuantSize:
 * @linear_params: weights of the linear layers (block projections and the lm_head)
 * @linear_bits: their bits under the plan
 * @linear_bits_per_weight: @linear_bits / @linear_params
 * @model_params: every parameter of the model (embedding, norms, linear layers; a tied
 *   embedding counted once)
 * @model_bits: their bits under the plan: quantized layers at their format's cost, the
 *   rest as stored; a quantized tied lm_head adds its own copy, since the embedding lookup
 *   stays exact
 * @model_bits_per_weight: @model_bits / @model_params
 * @model_bytes: @model_bits / 8
 * @quantized_params: weights of the layers whose weights the plan quantizes
 * @quantized_bits_per_weight: their bits per weight, scales included (NaN when none is
 *   quantized): the figure that compares formats, free of the unquantized lm_head
 *
 * The size of a model under a resolved plan (bl_quant_plan_size()).
 */
typedef struct
{
  gint64 linear_params;
  double linear_bits;
  double linear_bits_per_weight;
  gint64 model_params;
  double model_bits;
  double model_bits_per_weight;
  double model_bytes;
  gint64 quantized_params;
  double quantized_bits_per_weight;
} BlQuantSize;

#define BL_TYPE_QUANT_PLAN (bl_quant_plan_get_type ())
G_DECLARE_FINAL_TYPE (BlQuantPlan, bl_quant_plan, BL, QUANT_PLAN, GObject)

BlQuantPlan       *bl_quant_plan_new              (void);
BlQuantPlan       *bl_quant_plan_new_from_shorthand (const char         *weight,
                                                   const char         *activation,
                                                   const char         *algorithm,
                                                   const char *const  *skip,
                                                   GError            **error);
BlQuantPlan       *bl_quant_plan_new_from_json    (const char         *json,
                                                   gssize              length,
                                                   const char         *source,
                                                   GError            **error);
BlQuantPlan       *bl_quant_plan_load             (const char         *path,
                                                   GError            **error);
BlQuantPlan       *bl_quant_plan_copy             (BlQuantPlan        *self);

char              *bl_quant_plan_to_json          (BlQuantPlan        *self);
gboolean           bl_quant_plan_save             (BlQuantPlan        *self,
                                                   const char         *path,
                                                   GError            **error);

gboolean           bl_quant_plan_set_defaults     (BlQuantPlan        *self,
                                                   const char         *weight,
                                                   const char         *activation,
                                                   const char         *algorithm,
                                                   JsonObject         *options,
                                                   GError            **error);
const BlQuantRule *bl_quant_plan_get_defaults     (BlQuantPlan        *self);

guint              bl_quant_plan_get_n_rules      (BlQuantPlan        *self);
const BlQuantRule *bl_quant_plan_get_rule         (BlQuantPlan        *self,
                                                   guint               index);
gboolean           bl_quant_plan_insert_rule      (BlQuantPlan        *self,
                                                   int                 index,
                                                   const char         *pattern,
                                                   const char         *weight,
                                                   const char         *activation,
                                                   const char         *algorithm,
                                                   JsonObject         *options,
                                                   GError            **error);
void               bl_quant_plan_remove_rule      (BlQuantPlan        *self,
                                                   guint               index);
void               bl_quant_plan_clear_rules      (BlQuantPlan        *self);

const char *const *bl_quant_plan_get_skip         (BlQuantPlan        *self);
gboolean           bl_quant_plan_add_skip         (BlQuantPlan        *self,
                                                   const char         *pattern,
                                                   GError            **error);
void               bl_quant_plan_clear_skip       (BlQuantPlan        *self);

const char        *bl_quant_plan_get_kv_cache     (BlQuantPlan        *self);
gboolean           bl_quant_plan_set_kv_cache     (BlQuantPlan        *self,
                                                   const char         *spec,
                                                   GError            **error);

const BlQuantCalibration *bl_quant_plan_get_calibration (BlQuantPlan  *self);
void               bl_quant_plan_set_calibration  (BlQuantPlan        *self,
                                                   const BlQuantCalibration *calibration);

gboolean           bl_quant_plan_validate         (BlQuantPlan        *self,
                                                   BlModel            *model,
                                                   GError            **error);
GPtrArray         *bl_quant_plan_resolve          (BlQuantPlan        *self,
                                                   BlModel            *model,
                                                   GError            **error);
GPtrArray         *bl_quant_plan_diff             (GPtrArray          *before,
                                                   GPtrArray          *after);
void               bl_quant_plan_size             (GPtrArray          *resolved,
                                                   BlModel            *model,
                                                   BlQuantSize        *out);

G_END_DECLS
