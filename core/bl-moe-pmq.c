/* bl-moe-pmq.c: MC-MoE's pre-loading mixed-precision quantization (PMQ) across experts
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * Huang et al., "MC-MoE: Mixture Compressor for Mixture-of-Experts LLMs Gains More",
 * arXiv 2410.06270; the program as methods.md §9(b) reads it from precision_solver.py:
 *
 *   x_{e,b} ∈ {0,1},  Σ_b x_{e,b} = 1
 *   Σ_e Σ_b cost_b · x_{e,b} ≤ C
 *   Σ_e x_{e,top} ≥ 1,  Σ_e x_{e,second} ≥ 1
 *   minimise Σ_e Σ_b x_{e,b} · (f_e^α · w_e^β) · ε_e(b)^α · 1000
 *
 * The paper solves it with Gurobi. Here it is an exact dynamic program: a multiple-choice
 * knapsack (as in bl-allocator.c) whose state also carries which of the required options
 * some expert already took, so the at-least-one constraints are met exactly.
 */
#include "bl-moe.h"

#include <math.h>
#include <string.h>

#include "bl-error.h"

/* MC-MoE scales the objective by 1000 (precision_solver.py); it changes no choice. */
#define PMQ_SCALE 1000.0

/**
 * bl_moe_pmq_importance:
 * @frequency: the expert's activation frequency, normalised over the block's experts
 * @mean_weight: its mean routing weight, normalised likewise
 * @alpha: α (MC-MoE's default 1)
 * @beta: β (MC-MoE's default 1.5)
 *
 * Returns: f^α · w^β, the expert's importance in PMQ's objective
 */
double
bl_moe_pmq_importance (double frequency,
                       double mean_weight,
                       double alpha,
                       double beta)
{
  return pow (frequency, alpha) * pow (mean_weight, beta);
}

/* The bits of the flags word that option @o sets: bit 0 for the widest option, bit 1 for
 * the second-widest, when the problem requires them. */
static guint
option_flags (const BlMoePmqProblem *p,
              int                    o)
{
  int from_top = p->n_options - 1 - o;

  return from_top < p->n_required ? 1u << from_top : 0u;
}

static gboolean
check_problem (const BlMoePmqProblem  *p,
               GError                **error)
{
  if (p->n_experts < 1 || p->n_options < 1 || p->n_required < 0 || p->n_required > 2 ||
      p->n_required > p->n_options || p->n_required > p->n_experts)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT,
                   "A PMQ problem needs experts and options, and at most two required options "
                   "that both exist (%d experts, %d options, %d required)",
                   p->n_experts, p->n_options, p->n_required);
      return FALSE;
    }
  for (int o = 1; o < p->n_options; o++)
    if (!(p->cost[o] >= p->cost[o - 1]))
      {
        g_set_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT,
                     "PMQ options must be ordered from the fewest bits up (option %d costs "
                     "%g, option %d costs %g)", o - 1, p->cost[o - 1], o, p->cost[o]);
        return FALSE;
      }
  return TRUE;
}

typedef struct
{
  double cost;
  double loss;
  guint parent;               /* index into the previous expert's states… */
  guint parent_flags;         /* …of these flags */
  int option;
} State;

static int
compare_states (gconstpointer a,
                gconstpointer b)
{
  const State *x = a, *y = b;

  if (x->cost != y->cost)
    return x->cost < y->cost ? -1 : 1;
  if (x->loss != y->loss)
    return x->loss < y->loss ? -1 : 1;
  return (x->option > y->option) - (x->option < y->option);
}

/* Keeps the states no other state with the same flags dominates (no more cost and less
 * loss): sorted by cost, each kept state lowers the best loss so far. Those are the only
 * states an optimum can extend, since what follows depends only on cost and flags. */
static void
prune (GArray *states)
{
  guint kept = 0;
  double best = INFINITY;

  g_array_sort (states, compare_states);
  for (guint i = 0; i < states->len; i++)
    {
      State s = g_array_index (states, State, i);

      if (s.loss < best)
        {
          best = s.loss;
          g_array_index (states, State, kept++) = s;
        }
    }
  g_array_set_size (states, kept);
}

/**
 * bl_moe_pmq_solve:
 * @problem: one block's program
 * @out_choice: (out caller-allocates) (array): the option of every expert
 * @out_objective: (out) (optional): Σ_e importance_e · loss_{e,b(e)} · 1000
 * @error: return location for a #GError
 *
 * Solves the block's program exactly: dynamic programming over the experts, whose states
 * are (cost so far, which required options are taken) with the least loss for each, the
 * dominated ones dropped. Ties go to the cheaper assignment, then to lower options for the
 * first experts.
 *
 * Returns: %TRUE with the optimum; %FALSE with %BL_ERROR_INVALID_ARGUMENT for a malformed
 *   problem, or when no assignment meets the budget and the constraints
 */
gboolean
bl_moe_pmq_solve (const BlMoePmqProblem  *problem,
                  int                    *out_choice,
                  double                 *out_objective,
                  GError                **error)
{
  const BlMoePmqProblem *p = problem;
  guint want;
  guint n_flags;
  g_autofree GArray **layers = NULL;   /* [(expert + 1) × flags] */
  GArray *final;
  double best = INFINITY;
  guint best_i = 0;
  gboolean ok = FALSE;

  g_return_val_if_fail (problem != NULL && out_choice != NULL, FALSE);
  if (!check_problem (p, error))
    return FALSE;

  want = (1u << p->n_required) - 1;
  n_flags = want + 1;
  layers = g_new0 (GArray *, (size_t) (p->n_experts + 1) * n_flags);
  for (guint i = 0; i < (guint) (p->n_experts + 1) * n_flags; i++)
    layers[i] = g_array_new (FALSE, FALSE, sizeof (State));
  {
    State start = { 0.0, 0.0, 0, 0, -1 };

    g_array_append_val (layers[0], start);
  }

  for (int e = 0; e < p->n_experts; e++)
    for (guint f = 0; f < n_flags; f++)
      {
        GArray *from = layers[(size_t) e * n_flags + f];

        for (guint i = 0; i < from->len; i++)
          for (int o = 0; o < p->n_options; o++)
            {
              const State *s = &g_array_index (from, State, i);
              guint nf = f | option_flags (p, o);
              State t;

              t.cost = s->cost + p->cost[o];
              if (t.cost > p->budget)
                continue;
              t.loss = s->loss + p->importance[e] * p->loss[(size_t) e * p->n_options + o]
                                 * PMQ_SCALE;
              t.parent = i;
              t.parent_flags = f;
              t.option = o;
              g_array_append_val (layers[(size_t) (e + 1) * n_flags + nf], t);
            }
        if (f + 1 == n_flags)
          for (guint g = 0; g < n_flags; g++)
            prune (layers[(size_t) (e + 1) * n_flags + g]);
      }

  final = layers[(size_t) p->n_experts * n_flags + want];
  for (guint i = 0; i < final->len; i++)
    if (g_array_index (final, State, i).loss < best)
      {
        best = g_array_index (final, State, i).loss;
        best_i = i;
      }
  if (final->len == 0)
    {
      /* the cheapest feasible assignment: the required options once, the cheapest elsewhere */
      double least = (p->n_experts - p->n_required) * p->cost[0];

      for (int r = 0; r < p->n_required; r++)
        least += p->cost[p->n_options - 1 - r];
      g_set_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT,
                   "No assignment of %d experts fits the budget %g with one expert at each of "
                   "the %d widest options; the cheapest costs %g", p->n_experts, p->budget,
                   p->n_required, least);
    }
  else
    {
      guint f = want, i = best_i;

      for (int e = p->n_experts; e > 0; e--)
        {
          const State *s = &g_array_index (layers[(size_t) e * n_flags + f], State, i);

          out_choice[e - 1] = s->option;
          f = s->parent_flags;
          i = s->parent;
        }
      if (out_objective != NULL)
        *out_objective = best;
      ok = TRUE;
    }

  for (guint i = 0; i < (guint) (p->n_experts + 1) * n_flags; i++)
    g_array_unref (layers[i]);
  return ok;
}

/**
 * bl_moe_pmq_brute_force:
 * @problem: one block's program (small: n_options^n_experts assignments are tried)
 * @out_choice: (out caller-allocates) (array): the option of every expert
 * @out_objective: (out) (optional): the optimum
 *
 * The oracle for bl_moe_pmq_solve() in tests.
 *
 * Returns: %TRUE when some assignment is feasible
 */
gboolean
bl_moe_pmq_brute_force (const BlMoePmqProblem *problem,
                        int                   *out_choice,
                        double                *out_objective)
{
  const BlMoePmqProblem *p = problem;
  g_autofree int *x = g_new0 (int, p->n_experts);
  guint want = (1u << p->n_required) - 1;
  double best = INFINITY;
  gboolean found = FALSE;

  for (;;)
    {
      double cost = 0.0, loss = 0.0;
      guint flags = 0;
      int e;

      for (e = 0; e < p->n_experts; e++)
        {
          cost += p->cost[x[e]];
          loss += p->importance[e] * p->loss[(size_t) e * p->n_options + x[e]] * PMQ_SCALE;
          flags |= option_flags (p, x[e]);
        }
      if (cost <= p->budget && flags == want && loss < best)
        {
          best = loss;
          found = TRUE;
          memcpy (out_choice, x, sizeof (int) * p->n_experts);
        }
      for (e = 0; e < p->n_experts && ++x[e] == p->n_options; e++)
        x[e] = 0;
      if (e == p->n_experts)
        break;
    }
  if (found && out_objective != NULL)
    *out_objective = best;
  return found;
}

/**
 * bl_moe_plan_new:
 * @model: a mixture-of-experts model
 * @menu: (array zero-terminated=1): the option specs, as in the choices
 * @choice: [n_layers × n_experts] the option index of every routed expert, block by block
 * @rest: (nullable): the weight spec of every other linear layer (attention, shared expert),
 *   or %NULL to keep them in full precision
 * @error: return location for a #GError
 *
 * A plan with @rest as its defaults and one rule per routed-expert projection, its exact
 * name as the pattern. The routers are not linear layers of a plan and stay in full
 * precision; the lm_head too, as in every plan.
 *
 * Returns: (transfer full): the plan, or %NULL with @error set (a bad spec)
 */
BlQuantPlan *
bl_moe_plan_new (BlModel             *model,
                 const char * const  *menu,
                 const int           *choice,
                 const char          *rest,
                 GError             **error)
{
  static const BlMoeRole roles[] = { BL_MOE_ROLE_GATE, BL_MOE_ROLE_UP, BL_MOE_ROLE_DOWN };
  const BlModelConfig *c;
  BlMoeStyle style;
  g_autoptr(BlQuantPlan) plan = bl_quant_plan_new ();
  guint n_menu;

  g_return_val_if_fail (BL_IS_MODEL (model), NULL);
  g_return_val_if_fail (menu != NULL && choice != NULL, NULL);

  c = bl_model_get_config (model);
  style = bl_moe_config_style (c);
  n_menu = g_strv_length ((char **) menu);
  if (style == BL_MOE_STYLE_NONE)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_UNSUPPORTED_ARCHITECTURE,
                   "%s is a dense %s model, not a mixture of experts",
                   bl_model_get_path (model), c->model_type);
      return NULL;
    }
  if (!bl_quant_plan_set_defaults (plan, rest != NULL ? rest : BL_QUANT_PLAN_NONE, NULL, NULL,
                                   NULL, error))
    return NULL;
  for (int b = 0; b < c->n_layers; b++)
    for (int e = 0; e < c->n_experts; e++)
      {
        int o = choice[(size_t) b * c->n_experts + e];

        g_return_val_if_fail (o >= 0 && (guint) o < n_menu, NULL);
        for (guint r = 0; r < G_N_ELEMENTS (roles); r++)
          {
            g_autofree char *name = bl_moe_tensor_name (style, b, e, roles[r]);

            if (!bl_quant_plan_insert_rule (plan, -1, name, menu[o], NULL, NULL, NULL, error))
              return NULL;
          }
      }
  return g_steal_pointer (&plan);
}

static void
pmq_block_clear (gpointer data)
{
  BlMoePmqBlock *b = data;

  g_free (b->frequency);
  g_free (b->mean_weight);
  g_free (b->importance);
  g_free (b->loss);
  g_free (b->cost);
  g_free (b->choice);
}

/* PMQ for block @index of @profile into @b (whose arrays the caller frees on failure too). */
static gboolean
allocate_block (BlMoeProfile         *profile,
                guint                 index,
                const BlFormatSpec   *specs,
                guint                 n_options,
                double                avg_bits,
                double                alpha,
                double                beta,
                BlMoePmqBlock        *b,
                GCancellable         *cancellable,
                GError              **error)
{
  const BlMoeBlockRouting *r = bl_moe_profile_get_block (profile, index);
  BlModel *model = bl_moe_profile_get_model (profile);
  BlMoePmqProblem problem = { 0 };
  static const BlMoeRole roles[] = { BL_MOE_ROLE_GATE, BL_MOE_ROLE_UP, BL_MOE_ROLE_DOWN };
  BlMoeStyle style = bl_moe_config_style (bl_model_get_config (model));
  g_autofree double *powered = NULL;
  double f_sum = 0.0, w_sum = 0.0;

  b->block = r->block;
  b->n_experts = r->n_experts;
  b->n_options = (int) n_options;
  b->frequency = g_new (double, r->n_experts);
  b->mean_weight = g_new (double, r->n_experts);
  b->importance = g_new (double, r->n_experts);
  b->loss = g_new (double, (size_t) r->n_experts * n_options);
  b->cost = g_new (double, n_options);
  b->choice = g_new0 (int, r->n_experts);

  /* Every routed expert of a block has the shapes of expert 0: its cost under an option is
   * the bits of its three projections over their weights. */
  for (guint o = 0; o < n_options; o++)
    {
      double bits = 0.0, params = 0.0;

      for (guint k = 0; k < G_N_ELEMENTS (roles); k++)
        {
          g_autofree char *name = bl_moe_tensor_name (style, r->block, 0, roles[k]);
          const BlTensor *t = bl_model_get_tensor (model, name);

          g_return_val_if_fail (t != NULL && t->n_dims == 2, FALSE);
          bits += bl_format_spec_bits_for_shape (&specs[o], t->shape[0], t->shape[1])
                  * (double) t->n_elements;
          params += (double) t->n_elements;
        }
      b->cost[o] = bits / params;
    }

  for (int e = 0; e < r->n_experts; e++)
    {
      f_sum += r->experts[e].frequency;
      w_sum += r->experts[e].mean_weight;
    }
  for (int e = 0; e < r->n_experts; e++)
    {
      b->frequency[e] = f_sum > 0.0 ? r->experts[e].frequency / f_sum : 0.0;
      b->mean_weight[e] = w_sum > 0.0 ? r->experts[e].mean_weight / w_sum : 0.0;
      b->importance[e] = bl_moe_pmq_importance (b->frequency[e], b->mean_weight[e], alpha,
                                                beta);
      for (guint o = 0; o < n_options; o++)
        if (g_cancellable_set_error_if_cancelled (cancellable, error) ||
            !bl_moe_profile_expert_loss (profile, index, e, &specs[o],
                                         &b->loss[(size_t) e * n_options + o], error))
          return FALSE;
    }

  powered = g_new (double, (size_t) b->n_experts * n_options);
  for (size_t k = 0; k < (size_t) b->n_experts * n_options; k++)
    powered[k] = pow (b->loss[k], alpha);
  problem.n_experts = b->n_experts;
  problem.n_options = b->n_options;
  problem.importance = b->importance;
  problem.loss = powered;
  problem.cost = b->cost;
  /* a relative slack, so a budget equal to a feasible mean is not lost to rounding */
  problem.budget = avg_bits * b->n_experts * (1.0 + 1e-12);
  problem.n_required = MIN (2, MIN (b->n_options, b->n_experts));
  if (!bl_moe_pmq_solve (&problem, b->choice, &b->objective, error))
    {
      g_prefix_error (error, "Block %d: ", r->block);
      return FALSE;
    }
  for (int e = 0; e < b->n_experts; e++)
    b->avg_bits += b->cost[b->choice[e]] / b->n_experts;
  return TRUE;
}

/**
 * bl_moe_pmq_allocate:
 * @profile: a routing profile after bl_moe_profile_run(), with routed inputs kept
 * @menu: (array zero-terminated=1): weight specs ordered from the fewest bits up, e.g.
 *   binary:g128, int2:g128:asym, int3:g128:asym (MC-MoE's 1, 2 and 3 bits)
 * @avg_bits: the budget: mean bits per weight over each block's routed experts, scales
 *   included (MC-MoE's C divided by the number of experts)
 * @alpha: α, the exponent of f and ε (MC-MoE's default 1)
 * @beta: β, the exponent of w (MC-MoE's default 1.5)
 * @cancellable: (nullable): checked between experts
 * @error: return location for a #GError
 *
 * MC-MoE's PMQ for every MoE block: f and w from the profile normalised to sum 1 over the
 * block's experts, ε_e(b) from bl_moe_profile_expert_loss(), then bl_moe_pmq_solve() with
 * one expert required at each of the two widest options (one when the menu has two
 * entries, none with one).
 *
 * Returns: (transfer full) (element-type BlMoePmqBlock): one allocation per block, or %NULL
 *   with @error set (a bad spec, a menu out of order, an infeasible budget)
 */
GArray *
bl_moe_pmq_allocate (BlMoeProfile        *profile,
                     const char * const  *menu,
                     double               avg_bits,
                     double               alpha,
                     double               beta,
                     GCancellable        *cancellable,
                     GError             **error)
{
  g_autoptr(GArray) out = NULL;
  g_autofree BlFormatSpec *specs = NULL;
  guint n_options;

  g_return_val_if_fail (profile != NULL && menu != NULL, NULL);

  n_options = g_strv_length ((char **) menu);
  if (n_options == 0)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT, "The PMQ menu is empty");
      return NULL;
    }
  specs = g_new0 (BlFormatSpec, n_options);
  for (guint o = 0; o < n_options; o++)
    if (!bl_format_spec_parse (menu[o], &specs[o], error))
      return NULL;

  out = g_array_new (FALSE, TRUE, sizeof (BlMoePmqBlock));
  g_array_set_clear_func (out, pmq_block_clear);
  for (guint i = 0; i < bl_moe_profile_get_n_blocks (profile); i++)
    {
      BlMoePmqBlock b = { 0 };

      if (!allocate_block (profile, i, specs, n_options, avg_bits, alpha, beta, &b, cancellable,
                           error))
        {
          pmq_block_clear (&b);
          return NULL;
        }
      g_array_append_val (out, b);
    }
  return g_steal_pointer (&out);
}
