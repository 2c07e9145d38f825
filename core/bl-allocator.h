/* bl-allocator.h: one option per layer, least predicted loss under bit, byte and BOP budgets
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * Every "integer program" of the mixed-precision papers (HAWQ-V3, AdaQuant's IP, MixDQ,
 * MC-MoE) picks exactly one option per item with an additive objective and a few additive
 * budgets: a multiple-choice knapsack (methods.md, cross-cutting note 1). A #BlAllocProblem
 * holds the table items × options → (loss, cost per budget); the solvers are exact:
 *
 *   - bl_alloc_problem_frontier(): dynamic programming over the first budget, keeping for
 *     each prefix of items only the (cost, loss) states no other state dominates. It is the
 *     knapsack DP over the exact integer budget (bits × parameters are integers) without the
 *     empty cells, and it gives the optimum for every budget at once;
 *   - bl_alloc_problem_solve(): branch and bound for any number of budgets, bounded by that
 *     frontier computed over the remaining items (the exact optimum of the relaxation that
 *     keeps only the first budget), so one budget alone never branches.
 *
 * Tied items (HAWQ-V3 ties a residual branch's downsample to its main convolution) take the
 * same option index.
 */
#pragma once

#include <gio/gio.h>

#include "bl-sensitivity.h"

G_BEGIN_DECLS

#define BL_ALLOC_MAX_BUDGETS 4

typedef struct _BlAllocProblem BlAllocProblem;

BlAllocProblem *bl_alloc_problem_new          (guint            n_budgets);
void            bl_alloc_problem_free         (BlAllocProblem  *self);
guint           bl_alloc_problem_add_item     (BlAllocProblem  *self,
                                               const char      *name);
guint           bl_alloc_problem_add_option   (BlAllocProblem  *self,
                                               guint            item,
                                               const char      *label,
                                               double           loss,
                                               const double    *costs);
gboolean        bl_alloc_problem_tie          (BlAllocProblem  *self,
                                               guint            item_a,
                                               guint            item_b,
                                               GError         **error);
guint           bl_alloc_problem_get_n_items  (BlAllocProblem  *self);
guint           bl_alloc_problem_get_n_options (BlAllocProblem *self,
                                               guint            item);
const char     *bl_alloc_problem_get_item_name (BlAllocProblem *self,
                                               guint            item);
const char     *bl_alloc_problem_get_option_label (BlAllocProblem *self,
                                               guint            item,
                                               guint            option);
double          bl_alloc_problem_get_loss     (BlAllocProblem  *self,
                                               guint            item,
                                               guint            option);
double          bl_alloc_problem_get_cost     (BlAllocProblem  *self,
                                               guint            item,
                                               guint            option,
                                               guint            budget);
char           *bl_alloc_problem_to_plan_json (BlAllocProblem *self,
                                               const guint     *choice,
                                               GError         **error);
void            bl_alloc_problem_evaluate     (BlAllocProblem  *self,
                                               const guint     *choice,
                                               double          *out_loss,
                                               double          *out_costs);

/**
 * BlAllocSolution:
 * @choice: (array): the option index of every item
 * @loss: the total predicted loss
 * @costs: the total cost under each budget
 * @nodes: branch-and-bound nodes visited (0 for the frontier DP)
 *
 * An optimal assignment. Free with bl_alloc_solution_free().
 */
typedef struct
{
  guint *choice;
  double loss;
  double costs[BL_ALLOC_MAX_BUDGETS];
  guint64 nodes;
} BlAllocSolution;

void             bl_alloc_solution_free       (BlAllocSolution *solution);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BlAllocSolution, bl_alloc_solution_free)

/**
 * BlAllocPoint:
 * @cost: the first budget's total cost of a Pareto-optimal assignment
 * @loss: its total loss, the least any assignment within @cost reaches
 *
 * One point of the loss–cost frontier (bl_alloc_problem_frontier()).
 */
typedef struct
{
  double cost;
  double loss;
} BlAllocPoint;

GArray          *bl_alloc_problem_frontier    (BlAllocProblem  *self,
                                               GError         **error);
BlAllocSolution *bl_alloc_problem_solve_dp    (BlAllocProblem  *self,
                                               double           budget,
                                               GError         **error);
BlAllocSolution *bl_alloc_problem_solve       (BlAllocProblem  *self,
                                               const double    *budgets,
                                               GError         **error);

/**
 * BlAllocObjective:
 * @BL_ALLOC_OBJECTIVE_KL: one-at-a-time KL, the mean KL(p_fp ‖ p_q) with only this layer in
 *   this format
 * @BL_ALLOC_OBJECTIVE_HAWQ: HAWQ-V3's Ω = Tr(H)/n · ‖W − Q(W)‖² (methods.md §5)
 * @BL_ALLOC_OBJECTIVE_ADAQUANT: AdaQuant's measured per-layer degradation ΔL = loss(only this
 *   layer quantized) − loss(full precision), floored at 1e−6 (methods.md §7)
 * @BL_ALLOC_OBJECTIVE_MIXDQ: MixDQ's metric-decoupled sensitivity (methods.md §8): attention
 *   layers by their KL, MLP layers by their ΔL, with a separate bit budget per group
 *
 * Where the per-layer predicted loss comes from.
 */
typedef enum
{
  BL_ALLOC_OBJECTIVE_KL,
  BL_ALLOC_OBJECTIVE_HAWQ,
  BL_ALLOC_OBJECTIVE_ADAQUANT,
  BL_ALLOC_OBJECTIVE_MIXDQ,
} BlAllocObjective;

/**
 * BlAllocMeasures:
 * @kl: one-at-a-time KL (nats/token)
 * @dnll: one-at-a-time change of the mean NLL (nats/token)
 * @omega: the HAWQ sensitivity
 * @attention: the layer is an attention projection (q, k, v, o), for MixDQ's groups
 *
 * What was measured for one layer in one format.
 */
typedef struct
{
  double kl;
  double dnll;
  double omega;
  gboolean attention;
} BlAllocMeasures;

gboolean         bl_alloc_objective_from_string (const char           *name,
                                                 BlAllocObjective     *out);
const char      *bl_alloc_objective_to_string   (BlAllocObjective      objective);
double           bl_alloc_objective_loss        (BlAllocObjective      objective,
                                                 const BlAllocMeasures *m);

/**
 * BlMixdqCandidate:
 * @ratio: k = b̄_attention / b̄_mlp
 * @attention_budget: the attention group's bit budget
 * @mlp_budget: the MLP group's bit budget
 * @solution: (nullable): the combined assignment, %NULL when a group has no feasible one
 *
 * One point of MixDQ's sweep over the budget ratio.
 */
typedef struct
{
  double ratio;
  double attention_budget;
  double mlp_budget;
  BlAllocSolution *solution;
} BlMixdqCandidate;

BlAllocProblem  *bl_alloc_problem_new_from_sensitivity (BlSensitivity      *sensitivity,
                                                 const char * const *menu,
                                                 BlAllocObjective    objective,
                                                 GArray            **out_params,
                                                 GArray            **out_attention,
                                                 GCancellable       *cancellable,
                                                 GError            **error);

GArray          *bl_alloc_mixdq                 (BlAllocProblem  *self,
                                                 const gboolean  *attention,
                                                 const double    *params,
                                                 double           avg_bits,
                                                 const double    *ratios,
                                                 guint            n_ratios,
                                                 GError         **error);

guint           *bl_alloc_layerwise             (const double    *importance,
                                                 guint            n_blocks,
                                                 const double    *block_bits_hi,
                                                 const double    *block_bits_lo,
                                                 double           budget_bits,
                                                 gboolean         higher_is_important,
                                                 guint           *out_n_low);

gboolean         bl_baq_allocate                (const double    *hinv_diag,
                                                 gint64           cols,
                                                 gint64           group_size,
                                                 double           avg_bits,
                                                 int              min_bits,
                                                 int              max_bits,
                                                 int             *out_bits,
                                                 double          *out_gain,
                                                 GError         **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (BlAllocProblem, bl_alloc_problem_free)

G_END_DECLS
