/* bl-moe.h: mixture-of-experts models — tensor naming, per-expert statistics, routing
 * frequency and MC-MoE's mixed-precision allocation across experts
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * Two naming schemes are recognised (transformers modeling_mixtral.py, modeling_qwen2_moe.py):
 *
 *   Mixtral    model.layers.N.block_sparse_moe.gate.weight               the router
 *              model.layers.N.block_sparse_moe.experts.E.{w1,w3,w2}.weight
 *                                                                        gate, up, down
 *   Qwen2-MoE  model.layers.N.mlp.gate.weight                            the router
 *              model.layers.N.mlp.experts.E.{gate,up,down}_proj.weight
 *              model.layers.N.mlp.shared_expert.{gate,up,down}_proj.weight
 *              model.layers.N.mlp.shared_expert_gate.weight              sigmoid gate, [1, hidden]
 *
 * The forward pass (bl-engine.c with bl-moe-forward.c) runs both: softmax over the router
 * logits in fp32, top-k, the top-k weights renormalised to sum 1 when the config says so
 * (always for Mixtral, norm_topk_prob for Qwen2-MoE), each chosen expert's SwiGLU MLP on the
 * tokens routed to it, their weighted sum, plus the gated shared expert.
 *
 * PMQ (MC-MoE, Huang et al., arXiv 2410.06270; methods.md §9) picks one format per expert of
 * each block from a menu, minimising Σ_e f_e^α · w_e^β · ε_e(b)^α under a bit budget, with at
 * least one expert at the widest and one at the second-widest option.
 */
#pragma once

#include <gio/gio.h>

#include "bl-backend.h"
#include "bl-format.h"
#include "bl-model.h"
#include "bl-quant-plan.h"

G_BEGIN_DECLS

/**
 * BlMoeStyle:
 * @BL_MOE_STYLE_NONE: not an MoE tensor
 * @BL_MOE_STYLE_MIXTRAL: Mixtral's block_sparse_moe naming
 * @BL_MOE_STYLE_QWEN2_MOE: Qwen-MoE's mlp.experts / mlp.shared_expert naming
 *
 * Which naming scheme a tensor name follows.
 */
typedef enum
{
  BL_MOE_STYLE_NONE,
  BL_MOE_STYLE_MIXTRAL,
  BL_MOE_STYLE_QWEN2_MOE,
} BlMoeStyle;

/**
 * BlMoeRole:
 * @BL_MOE_ROLE_ROUTER: the router linear [n_experts, hidden]
 * @BL_MOE_ROLE_GATE: an expert's gate projection (Mixtral w1)
 * @BL_MOE_ROLE_UP: an expert's up projection (Mixtral w3)
 * @BL_MOE_ROLE_DOWN: an expert's down projection (Mixtral w2)
 * @BL_MOE_ROLE_SHARED_GATE: Qwen-MoE's shared-expert gate [1, hidden]
 *
 * What an MoE tensor does.
 */
typedef enum
{
  BL_MOE_ROLE_ROUTER,
  BL_MOE_ROLE_GATE,
  BL_MOE_ROLE_UP,
  BL_MOE_ROLE_DOWN,
  BL_MOE_ROLE_SHARED_GATE,
} BlMoeRole;

/**
 * BL_MOE_SHARED_EXPERT:
 *
 * The expert index of Qwen-MoE's shared expert in #BlMoeName.
 */
#define BL_MOE_SHARED_EXPERT (-2)

/**
 * BlMoeName:
 * @style: the naming scheme
 * @block: the transformer block N
 * @expert: the expert E, %BL_MOE_SHARED_EXPERT, or -1 for the router and the shared gate
 * @role: the tensor's role
 *
 * A parsed MoE weight name.
 */
typedef struct
{
  BlMoeStyle style;
  int block;
  int expert;
  BlMoeRole role;
} BlMoeName;

gboolean     bl_moe_parse_name        (const char *name,
                                       BlMoeName  *out);
char        *bl_moe_tensor_name       (BlMoeStyle  style,
                                       int         block,
                                       int         expert,
                                       BlMoeRole   role);
const char  *bl_moe_role_to_string    (BlMoeRole   role);
const char  *bl_moe_style_to_string   (BlMoeStyle  style);

/**
 * BlMoeBlockLayout:
 * @block: the transformer block
 * @n_experts: routed experts (the largest expert index seen, plus one)
 * @n_roles: projections per expert (3 for a SwiGLU expert)
 * @has_router: the router weight is present
 * @has_shared_expert: Qwen-MoE's shared expert is present
 * @has_shared_gate: its sigmoid gate is present
 * @complete: every expert 0…@n_experts−1 has all @n_roles projections
 *
 * The MoE tensors of one block.
 */
typedef struct
{
  int block;
  int n_experts;
  int n_roles;
  gboolean has_router;
  gboolean has_shared_expert;
  gboolean has_shared_gate;
  gboolean complete;
} BlMoeBlockLayout;

/**
 * BlMoeLayout:
 * @style: the naming scheme (one per model)
 * @blocks: (element-type BlMoeBlockLayout): the MoE blocks in block order
 * @n_expert_tensors: routed-expert projections over all blocks
 * @n_other_tensors: names that are not MoE tensors
 *
 * The MoE structure of a list of tensor names. Free with bl_moe_layout_free().
 */
typedef struct
{
  BlMoeStyle style;
  GArray *blocks;
  guint n_expert_tensors;
  guint n_other_tensors;
} BlMoeLayout;

BlMoeLayout *bl_moe_layout_new_from_names (const char * const *names,
                                           guint               n_names,
                                           GError            **error);
BlMoeLayout *bl_moe_layout_new_from_index (const char         *path,
                                           GError            **error);
BlMoeLayout *bl_moe_layout_new_from_model (BlModel            *model,
                                           GError            **error);
void         bl_moe_layout_free           (BlMoeLayout        *layout);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (BlMoeLayout, bl_moe_layout_free)

/* Config helpers for the forward pass and the plan */

gboolean     bl_moe_config_is_moe         (const BlModelConfig *config);
BlMoeStyle   bl_moe_config_style          (const BlModelConfig *config);

/**
 * BlMoeWeightStats:
 * @name: the tensor name
 * @block: the transformer block
 * @expert: the expert, or %BL_MOE_SHARED_EXPERT
 * @role: gate, up or down
 * @n_params: elements
 * @rms: √(mean x²)
 * @absmax: max |x|
 * @kurtosis: E[(x−μ)⁴]/σ⁴ (bl_metrics_kurtosis(), 3 for a Gaussian)
 * @crest: @absmax / @rms
 * @qsnr_db: QSNR of the weight under the stats' format, 10·log10(Σx²/Σ(x−q)²), or NaN
 *   when no format was given
 *
 * Statistics of one expert projection.
 */
typedef struct
{
  char *name;
  int block;
  int expert;
  BlMoeRole role;
  gint64 n_params;
  double rms;
  double absmax;
  double kurtosis;
  double crest;
  double qsnr_db;
} BlMoeWeightStats;

GArray      *bl_moe_weight_stats          (BlModel            *model,
                                           const BlFormatSpec *spec,
                                           GCancellable       *cancellable,
                                           GError            **error);

/**
 * BlMoeExpertRouting:
 * @tokens: tokens routed to the expert (it is among their top-k)
 * @frequency: @tokens / the tokens seen: the activation frequency f
 * @mean_weight: the mean post-top-k routing weight over the routed tokens: w (0 when none)
 *
 * How often one expert was chosen.
 */
typedef struct
{
  gint64 tokens;
  double frequency;
  double mean_weight;
} BlMoeExpertRouting;

/**
 * BlMoeBlockRouting:
 * @block: the transformer block
 * @n_experts: routed experts
 * @top_k: experts per token
 * @n_tokens: tokens seen
 * @experts: (array length=n_experts): per expert
 * @load_std: the population standard deviation of the frequencies over the experts (0 for
 *   a perfectly balanced router; the expert-balance figure of MoEQuant, methods.md §10)
 *
 * Routing statistics of one MoE block.
 */
typedef struct
{
  int block;
  int n_experts;
  int top_k;
  gint64 n_tokens;
  BlMoeExpertRouting *experts;
  double load_std;
} BlMoeBlockRouting;

typedef struct _BlMoeProfile BlMoeProfile;

BlMoeProfile *bl_moe_profile_new          (BlModel            *model,
                                           int                 max_rows,
                                           GError            **error);
void          bl_moe_profile_free         (BlMoeProfile       *self);
gboolean      bl_moe_profile_run          (BlMoeProfile       *self,
                                           BlBackend          *backend,
                                           const int32_t      *ids,
                                           gint64              n_ids,
                                           GArray             *windows,
                                           GCancellable       *cancellable,
                                           GError            **error);
BlModel      *bl_moe_profile_get_model    (BlMoeProfile       *self);
guint         bl_moe_profile_get_n_blocks (BlMoeProfile       *self);
const BlMoeBlockRouting *bl_moe_profile_get_block (BlMoeProfile *self,
                                           guint               index);
gboolean      bl_moe_profile_expert_loss  (BlMoeProfile       *self,
                                           guint               index,
                                           int                 expert,
                                           const BlFormatSpec *spec,
                                           double             *out_loss,
                                           GError            **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (BlMoeProfile, bl_moe_profile_free)

/* PMQ: one block's program */

/**
 * BlMoePmqProblem:
 * @n_experts: experts (items)
 * @n_options: menu entries, ordered from the fewest to the most bits
 * @importance: [@n_experts] f_e^α · w_e^β
 * @loss: [@n_experts × @n_options] ε_e(b)^α, row-major by expert
 * @cost: [@n_options] bits of one expert under each option (bits per weight or total bits)
 * @budget: the largest total Σ_e cost allowed
 * @n_required: how many of the widest options need at least one expert each (2 in MC-MoE:
 *   Σ_e x_{e,top} ≥ 1 and Σ_e x_{e,second} ≥ 1; fewer when the menu is shorter)
 *
 * One MoE block's allocation: minimise Σ_e importance_e · loss_{e,b(e)} · 1000 subject to
 * Σ_e cost_{b(e)} ≤ budget and the at-least-one constraints.
 */
typedef struct
{
  int n_experts;
  int n_options;
  const double *importance;
  const double *loss;
  const double *cost;
  double budget;
  int n_required;
} BlMoePmqProblem;

gboolean     bl_moe_pmq_solve             (const BlMoePmqProblem *problem,
                                           int                   *out_choice,
                                           double                *out_objective,
                                           GError               **error);
gboolean     bl_moe_pmq_brute_force       (const BlMoePmqProblem *problem,
                                           int                   *out_choice,
                                           double                *out_objective);
double       bl_moe_pmq_importance        (double                 frequency,
                                           double                 mean_weight,
                                           double                 alpha,
                                           double                 beta);

/**
 * BlMoePmqBlock:
 * @block: the transformer block
 * @n_experts: routed experts
 * @n_options: menu entries
 * @frequency: [@n_experts] f_e normalised to sum 1 over the block
 * @mean_weight: [@n_experts] w_e normalised likewise
 * @importance: [@n_experts] f_e^α · w_e^β
 * @loss: [@n_experts × @n_options] ε_e(b) (bl_moe_profile_expert_loss())
 * @cost: [@n_options] bits per weight of one expert under each option, scales included
 * @choice: [@n_experts] the chosen option of every expert
 * @objective: the optimum of PMQ's objective
 * @avg_bits: the chosen options' mean bits per weight
 *
 * PMQ's allocation of one MoE block (bl_moe_pmq_allocate()).
 */
typedef struct
{
  int block;
  int n_experts;
  int n_options;
  double *frequency;
  double *mean_weight;
  double *importance;
  double *loss;
  double *cost;
  int *choice;
  double objective;
  double avg_bits;
} BlMoePmqBlock;

GArray      *bl_moe_pmq_allocate          (BlMoeProfile         *profile,
                                           const char * const   *menu,
                                           double                avg_bits,
                                           double                alpha,
                                           double                beta,
                                           GCancellable         *cancellable,
                                           GError              **error);

BlQuantPlan *bl_moe_plan_new              (BlModel              *model,
                                           const char * const   *menu,
                                           const int            *choice,
                                           const char           *rest,
                                           GError              **error);

G_END_DECLS
