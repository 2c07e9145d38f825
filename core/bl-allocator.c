/* bl-allocator.c: exact multiple-choice knapsack solvers and the allocation baselines
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "bl-allocator.h"

#include <math.h>
#include <string.h>

#include "bl-error.h"
#include "bl-export.h"
#include "bl-format.h"

typedef struct
{
  char *label;
  double loss;
  double costs[BL_ALLOC_MAX_BUDGETS];
} Option;

typedef struct
{
  char *name;
  GArray *options;           /* Option */
  guint parent;              /* union-find over ties */
} Item;

struct _BlAllocProblem
{
  guint n_budgets;
  GArray *items;             /* Item */
};

/* Tied items solved as one: a group's option o is option o of every member. */
typedef struct
{
  GArray *members;           /* guint */
  guint n_options;
  double *loss;              /* [n_options] */
  double *costs;             /* [n_options × n_budgets] */
} Group;

static void
option_clear (gpointer data)
{
  g_free (((Option *) data)->label);
}

static void
item_clear (gpointer data)
{
  Item *it = data;

  g_free (it->name);
  g_array_unref (it->options);
}

/**
 * bl_alloc_problem_new:
 * @n_budgets: budgets every option has a cost under (1–%BL_ALLOC_MAX_BUDGETS); budget 0 is
 *   the one the frontier DP runs over, usually the bits
 *
 * Returns: (transfer full): an empty problem
 */
BlAllocProblem *
bl_alloc_problem_new (guint n_budgets)
{
  BlAllocProblem *self;

  g_return_val_if_fail (n_budgets >= 1 && n_budgets <= BL_ALLOC_MAX_BUDGETS, NULL);

  self = g_new0 (BlAllocProblem, 1);
  self->n_budgets = n_budgets;
  self->items = g_array_new (FALSE, TRUE, sizeof (Item));
  g_array_set_clear_func (self->items, item_clear);
  return self;
}

void
bl_alloc_problem_free (BlAllocProblem *self)
{
  if (self == NULL)
    return;
  g_array_unref (self->items);
  g_free (self);
}

/**
 * bl_alloc_problem_add_item:
 * @self: a problem
 * @name: the item's name (a layer)
 *
 * Returns: the item's index
 */
guint
bl_alloc_problem_add_item (BlAllocProblem *self,
                           const char     *name)
{
  Item it = { g_strdup (name), g_array_new (FALSE, TRUE, sizeof (Option)), self->items->len };

  g_array_set_clear_func (it.options, option_clear);
  g_array_append_val (self->items, it);
  return self->items->len - 1;
}

/**
 * bl_alloc_problem_add_option:
 * @self: a problem
 * @item: an item index
 * @label: the option's label (a format spec)
 * @loss: its predicted loss
 * @costs: (array): its cost under each budget; exact integers (bits) keep every comparison
 *   exact
 *
 * Returns: the option's index within @item
 */
guint
bl_alloc_problem_add_option (BlAllocProblem *self,
                             guint           item,
                             const char     *label,
                             double          loss,
                             const double   *costs)
{
  Item *it;
  Option o = { g_strdup (label), loss, { 0 } };

  g_return_val_if_fail (item < self->items->len, 0);

  it = &g_array_index (self->items, Item, item);
  memcpy (o.costs, costs, self->n_budgets * sizeof (double));
  g_array_append_val (it->options, o);
  return it->options->len - 1;
}

static guint
find_root (BlAllocProblem *self,
           guint           i)
{
  while (g_array_index (self->items, Item, i).parent != i)
    i = g_array_index (self->items, Item, i).parent;
  return i;
}

/**
 * bl_alloc_problem_tie:
 * @self: a problem
 * @item_a: an item
 * @item_b: another item with as many options
 * @error: return location for an error
 *
 * Makes the two items take the same option index (HAWQ-V3's ties between layers that share
 * an input).
 *
 * Returns: %FALSE when the items have different numbers of options
 */
gboolean
bl_alloc_problem_tie (BlAllocProblem  *self,
                      guint            item_a,
                      guint            item_b,
                      GError         **error)
{
  guint ra, rb;

  g_return_val_if_fail (item_a < self->items->len && item_b < self->items->len, FALSE);

  if (bl_alloc_problem_get_n_options (self, item_a) != bl_alloc_problem_get_n_options (self, item_b))
    {
      g_set_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT,
                   "allocator: cannot tie %s (%u options) to %s (%u options)",
                   bl_alloc_problem_get_item_name (self, item_a),
                   bl_alloc_problem_get_n_options (self, item_a),
                   bl_alloc_problem_get_item_name (self, item_b),
                   bl_alloc_problem_get_n_options (self, item_b));
      return FALSE;
    }
  ra = find_root (self, item_a);
  rb = find_root (self, item_b);
  if (ra != rb)
    g_array_index (self->items, Item, MAX (ra, rb)).parent = MIN (ra, rb);
  return TRUE;
}

guint
bl_alloc_problem_get_n_items (BlAllocProblem *self)
{
  return self->items->len;
}

guint
bl_alloc_problem_get_n_options (BlAllocProblem *self,
                                guint           item)
{
  g_return_val_if_fail (item < self->items->len, 0);

  return g_array_index (self->items, Item, item).options->len;
}

const char *
bl_alloc_problem_get_item_name (BlAllocProblem *self,
                                guint           item)
{
  g_return_val_if_fail (item < self->items->len, NULL);

  return g_array_index (self->items, Item, item).name;
}

static const Option *
get_option (BlAllocProblem *self,
            guint           item,
            guint           option)
{
  return &g_array_index (g_array_index (self->items, Item, item).options, Option, option);
}

const char *
bl_alloc_problem_get_option_label (BlAllocProblem *self,
                                   guint           item,
                                   guint           option)
{
  g_return_val_if_fail (option < bl_alloc_problem_get_n_options (self, item), NULL);

  return get_option (self, item, option)->label;
}

double
bl_alloc_problem_get_loss (BlAllocProblem *self,
                           guint           item,
                           guint           option)
{
  g_return_val_if_fail (option < bl_alloc_problem_get_n_options (self, item), NAN);

  return get_option (self, item, option)->loss;
}

double
bl_alloc_problem_get_cost (BlAllocProblem *self,
                           guint           item,
                           guint           option,
                           guint           budget)
{
  g_return_val_if_fail (option < bl_alloc_problem_get_n_options (self, item), NAN);
  g_return_val_if_fail (budget < self->n_budgets, NAN);

  return get_option (self, item, option)->costs[budget];
}

/**
 * bl_alloc_problem_evaluate:
 * @self: a problem
 * @choice: (array): an option index per item
 * @out_loss: (out) (optional): the total loss
 * @out_costs: (out caller-allocates) (optional): the total cost under each budget
 *
 * Sums an assignment, item by item in index order.
 */
void
bl_alloc_problem_evaluate (BlAllocProblem *self,
                           const guint    *choice,
                           double         *out_loss,
                           double         *out_costs)
{
  double loss = 0, costs[BL_ALLOC_MAX_BUDGETS] = { 0 };

  for (guint i = 0; i < self->items->len; i++)
    {
      const Option *o = get_option (self, i, choice[i]);

      loss += o->loss;
      for (guint b = 0; b < self->n_budgets; b++)
        costs[b] += o->costs[b];
    }
  if (out_loss != NULL)
    *out_loss = loss;
  if (out_costs != NULL)
    memcpy (out_costs, costs, self->n_budgets * sizeof (double));
}

/**
 * bl_alloc_problem_to_plan_json:
 * @self: a problem whose item names are layers and whose option labels are weight specs or
 *   "none"
 * @choice: (array): an option per item
 * @error: return location for an error
 *
 * Returns: (transfer full) (nullable): the assignment as an explicit plan
 *   (bl_export_plan_json())
 */
char *
bl_alloc_problem_to_plan_json (BlAllocProblem  *self,
                               const guint     *choice,
                               GError         **error)
{
  guint n = self->items->len;
  g_autofree BlExportLayer *layers = g_new0 (BlExportLayer, n);
  g_autofree BlFormatSpec *specs = g_new0 (BlFormatSpec, n);

  for (guint i = 0; i < n; i++)
    {
      const char *label = get_option (self, i, choice[i])->label;

      layers[i].layer = bl_alloc_problem_get_item_name (self, i);
      if (g_str_equal (label, "none"))
        continue;
      if (!bl_format_spec_parse (label, &specs[i], error))
        return NULL;
      layers[i].weight = &specs[i];
    }
  return bl_export_plan_json (layers, n, NULL, error);
}

void
bl_alloc_solution_free (BlAllocSolution *solution)
{
  if (solution == NULL)
    return;
  g_free (solution->choice);
  g_free (solution);
}

static void
group_free (gpointer data)
{
  Group *g = data;

  g_array_unref (g->members);
  g_free (g->loss);
  g_free (g->costs);
  g_free (g);
}

/* The tie classes as groups whose option costs and losses are the members' sums. */
static GPtrArray *
make_groups (BlAllocProblem  *self,
             GError         **error)
{
  GPtrArray *groups = g_ptr_array_new_with_free_func (group_free);
  g_autofree Group **by_root = g_new0 (Group *, self->items->len + 1);

  if (self->items->len == 0)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT, "allocator: no items");
      g_ptr_array_unref (groups);
      return NULL;
    }
  for (guint i = 0; i < self->items->len; i++)
    {
      guint root = find_root (self, i), n = bl_alloc_problem_get_n_options (self, i);
      Group *g = by_root[root];

      if (n == 0)
        {
          g_set_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT, "allocator: item %s has no options",
                       bl_alloc_problem_get_item_name (self, i));
          g_ptr_array_unref (groups);
          return NULL;
        }
      if (g == NULL)
        {
          g = g_new0 (Group, 1);
          g->members = g_array_new (FALSE, FALSE, sizeof (guint));
          g->n_options = n;
          g->loss = g_new0 (double, n);
          g->costs = g_new0 (double, (gsize) n * self->n_budgets);
          by_root[root] = g;
          g_ptr_array_add (groups, g);
        }
      g_array_append_val (g->members, i);
      for (guint o = 0; o < n; o++)
        {
          const Option *op = get_option (self, i, o);

          g->loss[o] += op->loss;
          for (guint b = 0; b < self->n_budgets; b++)
            g->costs[o * self->n_budgets + b] += op->costs[b];
        }
    }
  return groups;
}

/* ------------------------------------------------------------------------------------------ */
/* the frontier DP */

typedef struct
{
  double cost;
  double loss;
  gint32 parent;             /* state index in the previous stage, −1 for the start */
  gint32 option;
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
  return 0;
}

/* One DP stage: extends every state of @prev by every option of @g whose budget-0 cost
 * stays within @cap, then keeps the non-dominated states: increasing cost, strictly
 * decreasing loss. */
static GArray *
dp_stage (const GArray *prev,
          const Group  *g,
          guint         n_budgets,
          double        cap)
{
  GArray *next = g_array_sized_new (FALSE, FALSE, sizeof (State), prev->len * g->n_options);
  guint kept = 0;

  for (guint s = 0; s < prev->len; s++)
    {
      const State *p = &g_array_index (prev, State, s);

      for (guint o = 0; o < g->n_options; o++)
        {
          State n = { p->cost + g->costs[o * n_budgets], p->loss + g->loss[o], (gint32) s, (gint32) o };

          if (n.cost <= cap)
            g_array_append_val (next, n);
        }
    }
  g_array_sort (next, compare_states);
  for (guint i = 0; i < next->len; i++)
    {
      const State *c = &g_array_index (next, State, i);

      if (kept > 0 && c->loss >= g_array_index (next, State, kept - 1).loss)
        continue;
      g_array_index (next, State, kept++) = *c;
    }
  g_array_set_size (next, kept);
  return next;
}

/* All stages of the DP over the groups in order; stage k holds the frontier of groups
 * 0..k−1 (stage 0 is the empty assignment). */
static GPtrArray *
dp_run (GPtrArray *groups,
        guint      n_budgets,
        double     cap)
{
  GPtrArray *stages = g_ptr_array_new_with_free_func ((GDestroyNotify) g_array_unref);
  GArray *start = g_array_new (FALSE, FALSE, sizeof (State));
  State s0 = { 0, 0, -1, -1 };

  g_array_append_val (start, s0);
  g_ptr_array_add (stages, start);
  for (guint k = 0; k < groups->len; k++)
    g_ptr_array_add (stages, dp_stage (stages->pdata[k], groups->pdata[k], n_budgets, cap));
  return stages;
}

/**
 * bl_alloc_problem_frontier:
 * @self: a problem
 * @error: return location for an error
 *
 * The loss–cost frontier over budget 0: every assignment that no other beats in both its
 * budget-0 cost and its loss, as (cost, loss) points in increasing cost. For a budget B the
 * optimum is the last point with cost ≤ B.
 *
 * Returns: (transfer full) (element-type BlAllocPoint) (nullable): the points
 */
GArray *
bl_alloc_problem_frontier (BlAllocProblem  *self,
                           GError         **error)
{
  g_autoptr(GPtrArray) groups = make_groups (self, error);
  g_autoptr(GPtrArray) stages = NULL;
  const GArray *last;
  GArray *points;

  if (groups == NULL)
    return NULL;
  stages = dp_run (groups, self->n_budgets, INFINITY);
  last = stages->pdata[stages->len - 1];
  points = g_array_sized_new (FALSE, FALSE, sizeof (BlAllocPoint), last->len);
  for (guint i = 0; i < last->len; i++)
    {
      BlAllocPoint p = { g_array_index (last, State, i).cost, g_array_index (last, State, i).loss };

      g_array_append_val (points, p);
    }
  return points;
}

static BlAllocSolution *
solution_from_groups (BlAllocProblem *self,
                      GPtrArray      *groups,
                      const guint    *group_choice,
                      guint64         nodes)
{
  BlAllocSolution *sol = g_new0 (BlAllocSolution, 1);

  sol->choice = g_new0 (guint, self->items->len);
  for (guint k = 0; k < groups->len; k++)
    {
      const Group *g = groups->pdata[k];

      for (guint m = 0; m < g->members->len; m++)
        sol->choice[g_array_index (g->members, guint, m)] = group_choice[k];
    }
  bl_alloc_problem_evaluate (self, sol->choice, &sol->loss, sol->costs);
  sol->nodes = nodes;
  return sol;
}

static void
set_infeasible (GError       **error,
                const double  *budgets,
                guint          n_budgets)
{
  g_autoptr(GString) s = g_string_new (NULL);

  for (guint b = 0; b < n_budgets; b++)
    g_string_append_printf (s, "%s%.17g", b ? ", " : "", budgets[b]);
  g_set_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT,
               "allocator: no assignment fits the budgets (%s); the cheapest options exceed them",
               s->str);
}

/**
 * bl_alloc_problem_solve_dp:
 * @self: a problem
 * @budget: the limit on budget 0
 * @error: return location for an error
 *
 * The exact optimum under budget 0 alone (the others are not constrained), by the frontier
 * DP with states above @budget dropped.
 *
 * Returns: (transfer full) (nullable): the solution, or %NULL when nothing fits
 */
BlAllocSolution *
bl_alloc_problem_solve_dp (BlAllocProblem  *self,
                           double           budget,
                           GError         **error)
{
  g_autoptr(GPtrArray) groups = make_groups (self, error);
  g_autoptr(GPtrArray) stages = NULL;
  g_autofree guint *group_choice = NULL;
  const GArray *last;
  gint32 s;

  if (groups == NULL)
    return NULL;
  stages = dp_run (groups, self->n_budgets, budget);
  last = stages->pdata[stages->len - 1];
  if (last->len == 0)
    {
      set_infeasible (error, &budget, 1);
      return NULL;
    }
  /* the frontier's losses decrease with cost: the last state is the optimum */
  group_choice = g_new0 (guint, groups->len);
  s = (gint32) last->len - 1;
  for (guint k = groups->len; k > 0; k--)
    {
      const State *st = &g_array_index ((GArray *) stages->pdata[k], State, s);

      group_choice[k - 1] = (guint) st->option;
      s = st->parent;
    }
  return solution_from_groups (self, groups, group_choice, 0);
}

/* ------------------------------------------------------------------------------------------ */
/* branch and bound */

typedef struct
{
  GPtrArray *groups;
  guint n_budgets;
  const double *budgets;
  GPtrArray *suffix;         /* suffix[k]: frontier (budget 0) of groups k..end */
  double *min_cost;          /* [(groups+1) × n_budgets]: Σ of the cheapest option, groups k..end */
  guint *choice;
  guint *best_choice;
  double best;
  guint64 nodes;
  guint **order;             /* per group, options by increasing loss */
} Search;

/* The least loss groups k..end reach with budget-0 cost ≤ @remaining (INFINITY if none):
 * the last frontier state within @remaining, by binary search. */
static double
suffix_bound (const Search *sr,
              guint         k,
              double        remaining)
{
  const GArray *f = sr->suffix->pdata[k];
  guint lo = 0, hi = f->len;

  while (lo < hi)
    {
      guint mid = (lo + hi) / 2;

      if (g_array_index (f, State, mid).cost <= remaining)
        lo = mid + 1;
      else
        hi = mid;
    }
  return lo == 0 ? INFINITY : g_array_index (f, State, lo - 1).loss;
}

static void
search (Search *sr,
        guint   k,
        double  loss,
        double *costs)
{
  sr->nodes++;
  if (k == sr->groups->len)
    {
      if (loss < sr->best)
        {
          sr->best = loss;
          memcpy (sr->best_choice, sr->choice, sr->groups->len * sizeof (guint));
        }
      return;
    }
  for (guint i = 0; i < ((Group *) sr->groups->pdata[k])->n_options; i++)
    {
      const Group *g = sr->groups->pdata[k];
      guint o = sr->order[k][i];
      double next[BL_ALLOC_MAX_BUDGETS], bound;
      gboolean feasible = TRUE;

      for (guint b = 0; b < sr->n_budgets; b++)
        {
          next[b] = costs[b] + g->costs[o * sr->n_budgets + b];
          if (next[b] + sr->min_cost[(k + 1) * sr->n_budgets + b] > sr->budgets[b])
            feasible = FALSE;
        }
      if (!feasible)
        continue;
      bound = loss + g->loss[o] + suffix_bound (sr, k + 1, sr->budgets[0] - next[0]);
      if (bound >= sr->best)
        continue;
      sr->choice[k] = o;
      search (sr, k + 1, loss + g->loss[o], next);
    }
}

static int
compare_by_loss (gconstpointer a,
                 gconstpointer b,
                 gpointer      user_data)
{
  const double *loss = user_data;
  double x = loss[*(const guint *) a], y = loss[*(const guint *) b];

  return x < y ? -1 : x > y ? 1 : 0;
}

/**
 * bl_alloc_problem_solve:
 * @self: a problem
 * @budgets: (array): a limit for every budget (INFINITY for none)
 * @error: return location for an error
 *
 * The exact optimum under all budgets: depth-first branch and bound whose bound at each
 * node is the exact optimum of the remaining items under the remaining budget 0 (a
 * frontier DP run from the last item backwards), and whose feasibility test adds the
 * cheapest remaining options under every budget.
 *
 * Returns: (transfer full) (nullable): the solution, or %NULL when nothing fits
 */
BlAllocSolution *
bl_alloc_problem_solve (BlAllocProblem  *self,
                        const double    *budgets,
                        GError         **error)
{
  g_autoptr(GPtrArray) groups = make_groups (self, error);
  g_autoptr(GPtrArray) reversed = NULL;
  g_autoptr(GPtrArray) stages = NULL;
  Search sr = { 0 };
  guint n;
  double zero[BL_ALLOC_MAX_BUDGETS] = { 0 };
  BlAllocSolution *sol = NULL;

  if (groups == NULL)
    return NULL;
  n = groups->len;
  sr.groups = groups;
  sr.n_budgets = self->n_budgets;
  sr.budgets = budgets;
  sr.best = INFINITY;
  sr.choice = g_new0 (guint, n);
  sr.best_choice = g_new0 (guint, n);
  sr.min_cost = g_new0 (double, (gsize) (n + 1) * self->n_budgets);
  sr.order = g_new0 (guint *, n);

  /* suffix frontiers: the DP over the groups in reverse order; its stage j covers the last
   * j groups */
  reversed = g_ptr_array_new ();
  for (guint k = n; k > 0; k--)
    g_ptr_array_add (reversed, groups->pdata[k - 1]);
  stages = dp_run (reversed, self->n_budgets, budgets[0]);
  sr.suffix = g_ptr_array_new ();
  for (guint k = 0; k <= n; k++)
    g_ptr_array_add (sr.suffix, stages->pdata[n - k]);

  for (guint k = n; k > 0; k--)
    {
      const Group *g = groups->pdata[k - 1];

      for (guint b = 0; b < self->n_budgets; b++)
        {
          double m = INFINITY;

          for (guint o = 0; o < g->n_options; o++)
            m = MIN (m, g->costs[o * self->n_budgets + b]);
          sr.min_cost[(k - 1) * self->n_budgets + b] = sr.min_cost[k * self->n_budgets + b] + m;
        }
      {
        GArray *order = g_array_sized_new (FALSE, FALSE, sizeof (guint), g->n_options);

        for (guint o = 0; o < g->n_options; o++)
          g_array_append_val (order, o);
        g_array_sort_with_data (order, compare_by_loss, g->loss);
        sr.order[k - 1] = (guint *) g_array_free (order, FALSE);
      }
    }

  search (&sr, 0, 0.0, zero);
  if (isfinite (sr.best))
    sol = solution_from_groups (self, groups, sr.best_choice, sr.nodes);
  else
    set_infeasible (error, budgets, self->n_budgets);

  for (guint k = 0; k < n; k++)
    g_free (sr.order[k]);
  g_free (sr.order);
  g_free (sr.choice);
  g_free (sr.best_choice);
  g_free (sr.min_cost);
  g_ptr_array_unref (sr.suffix);
  return sol;
}

/* ------------------------------------------------------------------------------------------ */
/* objectives */

static const char *const objective_names[] = { "kl", "hawq", "adaquant", "mixdq" };

gboolean
bl_alloc_objective_from_string (const char       *name,
                                BlAllocObjective *out)
{
  for (guint i = 0; i < G_N_ELEMENTS (objective_names); i++)
    if (g_str_equal (name, objective_names[i]))
      {
        *out = (BlAllocObjective) i;
        return TRUE;
      }
  return FALSE;
}

const char *
bl_alloc_objective_to_string (BlAllocObjective objective)
{
  g_return_val_if_fail ((guint) objective < G_N_ELEMENTS (objective_names), NULL);

  return objective_names[objective];
}

/**
 * bl_alloc_objective_loss:
 * @objective: an objective
 * @m: the layer's measures in one format
 *
 * Returns: the predicted loss the allocator adds up for this layer in this format
 */
double
bl_alloc_objective_loss (BlAllocObjective       objective,
                         const BlAllocMeasures *m)
{
  switch (objective)
    {
    case BL_ALLOC_OBJECTIVE_KL:
      return m->kl;
    case BL_ALLOC_OBJECTIVE_HAWQ:
      return m->omega;
    case BL_ALLOC_OBJECTIVE_ADAQUANT:
      /* CalibTIP floors the measured degradation at 1e−6 */
      return MAX (m->dnll, 1e-6);
    case BL_ALLOC_OBJECTIVE_MIXDQ:
      return m->attention ? m->kl : MAX (m->dnll, 1e-6);
    default:
      g_return_val_if_reached (NAN);
    }
}

/* Bits per weight of a weight the model keeps in full precision: its stored dtype. */
static double
stored_bits (BlModel    *model,
             const char *layer)
{
  const BlTensor *t = bl_model_get_tensor (model, layer);

  return t != NULL ? 8.0 * (double) bl_dtype_size (t->dtype) : 32.0;
}

/**
 * bl_alloc_problem_new_from_sensitivity:
 * @sensitivity: a prepared #BlSensitivity
 * @menu: (array zero-terminated=1): the weight formats every layer may take; "none" keeps a
 *   layer in full precision (its stored bits, no loss)
 * @objective: where the losses come from; every objective but HAWQ measures the one-at-a-time
 *   KL and ΔNLL of each layer in each format (bl_sensitivity_compute())
 * @out_params: (out) (element-type double) (optional): each layer's parameter count
 * @out_attention: (out) (element-type gboolean) (optional): whether each layer is an attention
 *   projection (MixDQ's groups)
 * @cancellable: (nullable): a cancellable
 * @error: return location for an error
 *
 * The allocation problem of a model: one item per linear layer of the sensitivity budget,
 * one option per menu format, budget 0 the layer's exact total bits under that format
 * (bl_format_spec_bits_for_shape() times the weights, scales included) and budget 1 its BOPs per token,
 * rows·cols·element bits·16 (HAWQ-V3's b_w·b_a with 16-bit activations).
 *
 * Returns: (transfer full) (nullable): the problem
 */
BlAllocProblem *
bl_alloc_problem_new_from_sensitivity (BlSensitivity      *sensitivity,
                                       const char * const *menu,
                                       BlAllocObjective    objective,
                                       GArray            **out_params,
                                       GArray            **out_attention,
                                       GCancellable       *cancellable,
                                       GError            **error)
{
  g_autoptr(BlAllocProblem) p = bl_alloc_problem_new (2);
  g_autoptr(GPtrArray) tables = g_ptr_array_new_with_free_func ((GDestroyNotify) g_ptr_array_unref);
  g_autoptr(GArray) params = g_array_new (FALSE, FALSE, sizeof (double));
  g_autoptr(GArray) attention = g_array_new (FALSE, FALSE, sizeof (gboolean));
  BlModel *model = bl_sensitivity_get_model (sensitivity);
  guint n_layers = bl_sensitivity_get_n_layers (sensitivity);
  guint n_menu = menu != NULL ? g_strv_length ((char **) menu) : 0;

  if (n_menu == 0)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT, "allocator: the menu is empty");
      return NULL;
    }
  for (guint m = 0; m < n_menu; m++)
    {
      GPtrArray *t = NULL;

      if (!g_str_equal (menu[m], "none"))
        {
          t = bl_sensitivity_compute (sensitivity, menu[m], objective != BL_ALLOC_OBJECTIVE_HAWQ,
                                      cancellable, error);
          if (t == NULL)
            return NULL;
        }
      g_ptr_array_add (tables, t != NULL ? t : g_ptr_array_new ());
    }
  for (guint i = 0; i < n_layers; i++)
    {
      const char *name = bl_sensitivity_get_layer_name (sensitivity, i);
      guint item = bl_alloc_problem_add_item (p, name);
      for (guint m = 0; m < n_menu; m++)
        {
          GPtrArray *t = tables->pdata[m];
          double costs[2], loss = 0.0;
          gint64 rows, cols;

          if (t->len == 0)
            {
              const BlTensor *w = bl_model_get_tensor (model, name);
              double bits = stored_bits (model, name);

              rows = w->shape[0];
              cols = w->shape[1];
              costs[0] = bits * (double) (rows * cols);
              costs[1] = (double) (rows * cols) * bits * 16.0;
            }
          else
            {
              const BlLayerSensitivity *s = g_ptr_array_index (t, i);
              BlFormatSpec spec;
              BlAllocMeasures meas = { s->kl, s->dnll, s->omega,
                                       s->kind == BL_LAYER_ATTN_Q || s->kind == BL_LAYER_ATTN_K
                                       || s->kind == BL_LAYER_ATTN_V || s->kind == BL_LAYER_ATTN_O };

              if (!bl_format_spec_parse (menu[m], &spec, error))
                return NULL;
              rows = s->rows;
              cols = s->cols;
              /* bits per weight times the weights: the tensor's total bits, an integer */
              costs[0] = round (bl_format_spec_bits_for_shape (&spec, rows, cols) * (double) (rows * cols));
              costs[1] = (double) (rows * cols) * spec.bits * 16.0;
              loss = bl_alloc_objective_loss (objective, &meas);
            }
          bl_alloc_problem_add_option (p, item, menu[m], loss, costs);
        }
      {
        const BlTensor *w = bl_model_get_tensor (model, name);
        double n = (double) (w->shape[0] * w->shape[1]);
        gboolean att = strstr (name, ".self_attn.") != NULL;

        g_array_append_val (params, n);
        g_array_append_val (attention, att);
      }
    }
  if (out_params != NULL)
    *out_params = g_steal_pointer (&params);
  if (out_attention != NULL)
    *out_attention = g_steal_pointer (&attention);
  return g_steal_pointer (&p);
}

/* A copy of the items in @mask, ties between two kept items kept. */
static BlAllocProblem *
sub_problem (BlAllocProblem *self,
             const gboolean *mask,
             gboolean        value,
             guint         **out_index)
{
  BlAllocProblem *sub = bl_alloc_problem_new (self->n_budgets);
  guint *index = g_new (guint, self->items->len);

  for (guint i = 0; i < self->items->len; i++)
    {
      index[i] = G_MAXUINT;
      if (mask[i] != value)
        continue;
      index[i] = bl_alloc_problem_add_item (sub, bl_alloc_problem_get_item_name (self, i));
      for (guint o = 0; o < bl_alloc_problem_get_n_options (self, i); o++)
        {
          const Option *op = get_option (self, i, o);

          bl_alloc_problem_add_option (sub, index[i], op->label, op->loss, op->costs);
        }
    }
  for (guint i = 0; i < self->items->len; i++)
    {
      guint r = find_root (self, i);

      if (index[i] != G_MAXUINT && index[r] != G_MAXUINT && r != i)
        bl_alloc_problem_tie (sub, index[r], index[i], NULL);
    }
  *out_index = index;
  return sub;
}

/**
 * bl_alloc_mixdq:
 * @self: a problem whose budget 0 is bits and whose losses are MixDQ's decoupled metrics
 *   (%BL_ALLOC_OBJECTIVE_MIXDQ)
 * @attention: (array): per item, whether it is in the attention group
 * @params: (array): per item, its parameter count
 * @avg_bits: the target average bits per weight over all items
 * @ratios: (array length=n_ratios): the ratios k = b̄_attention / b̄_mlp to try
 * @n_ratios: their number
 * @error: return location for an error
 *
 * MixDQ's group-wise allocation (methods.md §8): for each k, with r = params_attention /
 * params_mlp, b̄_mlp = b̄·(1 + r)/(k·r + 1) and b̄_attention = k·b̄_mlp; each group is
 * solved exactly under its own bit budget (floor of b̄·params) and the two are joined.
 *
 * Returns: (transfer full) (element-type BlMixdqCandidate): one candidate per ratio; free
 *   each candidate's solution with bl_alloc_solution_free()
 */
GArray *
bl_alloc_mixdq (BlAllocProblem  *self,
                const gboolean  *attention,
                const double    *params,
                double           avg_bits,
                const double    *ratios,
                guint            n_ratios,
                GError         **error)
{
  double p_att = 0, p_mlp = 0, r;
  g_autofree guint *idx_att = NULL, *idx_mlp = NULL;
  g_autoptr(BlAllocProblem) att = sub_problem (self, attention, TRUE, &idx_att);
  g_autoptr(BlAllocProblem) mlp = sub_problem (self, attention, FALSE, &idx_mlp);
  GArray *out = g_array_new (FALSE, TRUE, sizeof (BlMixdqCandidate));

  for (guint i = 0; i < self->items->len; i++)
    {
      if (attention[i])
        p_att += params[i];
      else
        p_mlp += params[i];
    }
  if (p_att <= 0 || p_mlp <= 0)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT,
                   "MixDQ allocation needs layers in both groups (attention %.0f, MLP %.0f parameters)",
                   p_att, p_mlp);
      g_array_unref (out);
      return NULL;
    }
  r = p_att / p_mlp;
  for (guint k = 0; k < n_ratios; k++)
    {
      BlMixdqCandidate c = { ratios[k], 0, 0, NULL };
      double b_mlp = avg_bits * (1 + r) / (ratios[k] * r + 1);
      g_autoptr(BlAllocSolution) sa = NULL, sm = NULL;

      c.mlp_budget = floor (b_mlp * p_mlp);
      c.attention_budget = floor (ratios[k] * b_mlp * p_att);
      sa = bl_alloc_problem_solve_dp (att, c.attention_budget, NULL);
      sm = bl_alloc_problem_solve_dp (mlp, c.mlp_budget, NULL);
      if (sa != NULL && sm != NULL)
        {
          c.solution = g_new0 (BlAllocSolution, 1);
          c.solution->choice = g_new0 (guint, self->items->len);
          for (guint i = 0; i < self->items->len; i++)
            c.solution->choice[i] = attention[i] ? sa->choice[idx_att[i]] : sm->choice[idx_mlp[i]];
          bl_alloc_problem_evaluate (self, c.solution->choice, &c.solution->loss, c.solution->costs);
        }
      g_array_append_val (out, c);
    }
  return out;
}

/* ------------------------------------------------------------------------------------------ */
/* LIM / ZD layer-wise baseline (methods.md §11) */

static int
compare_by_key (gconstpointer a,
                gconstpointer b,
                gpointer      user_data)
{
  const double *key = user_data;
  guint i = *(const guint *) a, j = *(const guint *) b;
  double x = key[i], y = key[j];

  if (x != y)
    return x < y ? -1 : 1;
  return i < j ? -1 : i > j;
}

/**
 * bl_alloc_layerwise:
 * @importance: (array length=n_blocks): a score per transformer block (LIM or ZD)
 * @n_blocks: blocks
 * @block_bits_hi: (array length=n_blocks): a block's bits in the high-precision option
 * @block_bits_lo: (array length=n_blocks): its bits in the low-precision option
 * @budget_bits: the bits the blocks may take together
 * @higher_is_important: whether a higher score marks a more important block (LIM); %FALSE
 *   reverses the ordering (the "smaller is more important" reading of ZD)
 * @out_n_low: (out): how many blocks went to the low option
 *
 * Dumitru et al.'s layer-wise quantization: the least important blocks move to the low
 * option one at a time, until the blocks fit @budget_bits.
 *
 * Returns: (transfer full) (nullable): per block 0 (high) or 1 (low), or %NULL when even
 *   every block low exceeds the budget
 */
guint *
bl_alloc_layerwise (const double *importance,
                    guint         n_blocks,
                    const double *block_bits_hi,
                    const double *block_bits_lo,
                    double        budget_bits,
                    gboolean      higher_is_important,
                    guint        *out_n_low)
{
  g_autoptr(GArray) order = g_array_sized_new (FALSE, FALSE, sizeof (guint), n_blocks);
  g_autofree double *key = g_new (double, n_blocks);
  guint *choice = g_new0 (guint, n_blocks);
  double total = 0;
  guint m = 0;

  for (guint b = 0; b < n_blocks; b++)
    {
      g_array_append_val (order, b);
      key[b] = higher_is_important ? importance[b] : -importance[b];
      total += block_bits_hi[b];
    }
  g_array_sort_with_data (order, compare_by_key, key);
  while (total > budget_bits && m < n_blocks)
    {
      guint b = g_array_index (order, guint, m++);

      choice[b] = 1;
      total += block_bits_lo[b] - block_bits_hi[b];
    }
  if (total > budget_bits)
    {
      g_free (choice);
      return NULL;
    }
  *out_n_low = m;
  return choice;
}

/* ------------------------------------------------------------------------------------------ */
/* BAQ (methods.md §6) */

/**
 * bl_baq_allocate:
 * @coef: (array length=cols): the loss coefficient c_j of every input column; inside GPTQ,
 *   c_j = 1/d_j² with d_j = U_jj, the diagonal of the upper Cholesky factor of H⁻¹ (the row
 *   ranges multiply every column alike and cancel); 0 for a dead column
 * @cols: columns
 * @group_size: columns that share a width (1: per column; 128 with widths in {2, 3, 4} is the
 *   deployable variant of methods.md §6)
 * @avg_bits: the average width R̄ to keep
 * @min_bits: the narrowest width
 * @max_bits: the widest width
 * @out_bits: (array length=cols): the width of every column
 * @out_gain: (out) (optional): Σ_j c_j·2^(−2R̄) / Σ_j c_j·2^(−2R_j), the predicted loss
 *   reduction over uniform R̄ bits (AM(c)/GM(c) before rounding and clamping)
 * @error: return location for an error
 *
 * BAQ's allocation: the per-column loss model c_j·2^(−2R_j) is minimised under
 * Σ R_j = cols·R̄. The continuous optimum is the reverse water-filling
 * R_j = R̄ + ½·log2(c_j / GM(c)), every column then losing the same c_j·2^(−2R_j); widths
 * outside [@min_bits, @max_bits] are clamped and the rest re-solved. Integer widths follow
 * by rounding every group down and then giving the remaining bits one at a time to the group
 * whose loss drops most (marginal analysis, exact for this separable convex problem), so that
 * Σ R_j never exceeds cols·R̄.
 *
 * Returns: %FALSE with @error set when the arguments are out of range
 */
gboolean
bl_baq_allocate (const double  *coef,
                 gint64         cols,
                 gint64         group_size,
                 double         avg_bits,
                 int            min_bits,
                 int            max_bits,
                 int           *out_bits,
                 double        *out_gain,
                 GError       **error)
{
  gint64 n_groups;
  g_autofree double *c = NULL, *cont = NULL;
  g_autofree gint64 *size = NULL;
  g_autofree int *bits = NULL;
  g_autofree gboolean *fixed = NULL;
  double budget, used = 0, before = 0, after = 0;

  if (cols <= 0 || group_size <= 0 || min_bits < 0 || max_bits < min_bits || avg_bits < min_bits
      || avg_bits > max_bits)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT,
                   "BAQ: need cols > 0, group_size > 0 and min_bits ≤ avg_bits (%g) ≤ max_bits",
                   avg_bits);
      return FALSE;
    }
  n_groups = (cols + group_size - 1) / group_size;
  c = g_new0 (double, n_groups);
  cont = g_new0 (double, n_groups);
  size = g_new0 (gint64, n_groups);
  bits = g_new0 (int, n_groups);
  fixed = g_new0 (gboolean, n_groups);
  for (gint64 j = 0; j < cols; j++)
    {
      if (!(coef[j] >= 0) || isinf (coef[j]))
        {
          g_set_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT,
                       "BAQ: coefficient of column %" G_GINT64_FORMAT " is %g", j, coef[j]);
          return FALSE;
        }
      c[j / group_size] += coef[j];
      size[j / group_size]++;
    }
  for (gint64 g = 0; g < n_groups; g++)
    c[g] /= (double) size[g];
  budget = avg_bits * (double) cols;

  /* continuous water-filling: free groups get R̄_free + ½·log2(c_g / GM_w(c_free)), where the
   * geometric mean is weighted by group size; a zero coefficient, and any width out of range,
   * is pinned to its bound and the rest re-solved */
  for (gint64 g = 0; g < n_groups; g++)
    if (c[g] == 0)
      {
        fixed[g] = TRUE;
        cont[g] = min_bits;
      }
  for (int iter = 0; iter <= n_groups; iter++)
    {
      double free_cols = 0, free_budget = budget, log_gm = 0;
      gboolean changed = FALSE;

      for (gint64 g = 0; g < n_groups; g++)
        if (fixed[g])
          free_budget -= cont[g] * (double) size[g];
        else
          {
            free_cols += (double) size[g];
            log_gm += (double) size[g] * log2 (c[g]);
          }
      if (free_cols == 0)
        break;
      log_gm /= free_cols;
      for (gint64 g = 0; g < n_groups; g++)
        if (!fixed[g])
          cont[g] = free_budget / free_cols + 0.5 * (log2 (c[g]) - log_gm);
      for (gint64 g = 0; g < n_groups; g++)
        if (!fixed[g] && (cont[g] < min_bits || cont[g] > max_bits))
          {
            cont[g] = CLAMP (cont[g], (double) min_bits, (double) max_bits);
            fixed[g] = TRUE;
            changed = TRUE;
          }
      if (!changed)
        break;
    }

  /* integer widths: round down, then spend the rest by the largest loss reduction per bit */
  for (gint64 g = 0; g < n_groups; g++)
    {
      bits[g] = CLAMP ((int) floor (cont[g] + 1e-9), min_bits, max_bits);
      used += (double) bits[g] * (double) size[g];
    }
  for (;;)
    {
      gint64 best = -1;
      double best_gain = 0;

      for (gint64 g = 0; g < n_groups; g++)
        {
          double gain;

          if (bits[g] >= max_bits || used + (double) size[g] > budget + 1e-9)
            continue;
          /* per bit: c·(2^(−2R) − 2^(−2R−2)) = ¾·c·2^(−2R), the same for every column */
          gain = 0.75 * c[g] * exp2 (-2.0 * bits[g]);
          if (gain > best_gain)
            {
              best_gain = gain;
              best = g;
            }
        }
      if (best < 0)
        break;
      bits[best]++;
      used += (double) size[best];
    }
  for (gint64 j = 0; j < cols; j++)
    {
      out_bits[j] = bits[j / group_size];
      before += coef[j] * exp2 (-2.0 * avg_bits);
      after += coef[j] * exp2 (-2.0 * out_bits[j]);
    }
  if (out_gain != NULL)
    *out_gain = after > 0 ? before / after : 1.0;
  return TRUE;
}
