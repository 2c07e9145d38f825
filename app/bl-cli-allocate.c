/* bl-cli-allocate.c: `bitlens-cli allocate`, the best per-layer plan under a bit budget
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "config.h"

#include <math.h>

#include "bl-cli.h"
#include "bl-cli-commands.h"

/* --- allocate ---------------------------------------------------------------------------------- */

typedef struct
{
  BlCliBudget *budget;
  char **menu;
  const char *method;
  BlAllocObjective objective;
  gboolean layerwise;          /* lim / zd */
  gboolean reverse;
  double bits;
  double bytes;
  double bops;
  GArray *ratios;

  BlAllocProblem *problem;
  GArray *params;
  guint *choice;
  double budget_bits;
  char *note;
} AllocJob;

static void
alloc_job_clear (AllocJob *j)
{
  g_clear_pointer (&j->problem, bl_alloc_problem_free);
  g_clear_pointer (&j->params, g_array_unref);
  g_clear_pointer (&j->choice, g_free);
  g_clear_pointer (&j->note, g_free);
  g_clear_pointer (&j->ratios, g_array_unref);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (AllocJob, alloc_job_clear)

static double
total_params (AllocJob *j)
{
  double t = 0;

  for (guint i = 0; i < j->params->len; i++)
    t += g_array_index (j->params, double, i);
  return t;
}

/* an option's bits per weight on item @i */
static double
option_bpw (AllocJob *j,
            guint     i,
            guint     o)
{
  return bl_alloc_problem_get_cost (j->problem, i, o, 0) / g_array_index (j->params, double, i);
}

/* Dumitru et al.: blocks ranked by LIM or ZD, the least important at the menu's narrowest
 * format, the rest at its widest (methods.md §11). */
static gboolean
solve_layerwise (AllocJob      *j,
                 GCancellable  *cancellable,
                 GError       **error)
{
  BlSensitivity *sens = j->budget->sensitivity;
  int n_blocks = bl_model_get_config (j->budget->model)->n_layers;
  g_autoptr(GPtrArray) table = bl_sensitivity_compute (sens, j->menu[0], FALSE, cancellable, error);
  g_autofree double *importance = g_new0 (double, n_blocks);
  g_autofree double *hi = g_new0 (double, n_blocks);
  g_autofree double *lo = g_new0 (double, n_blocks);
  g_autofree guint *blocks = NULL;
  guint n = bl_alloc_problem_get_n_items (j->problem), o_hi = 0, o_lo = 0, n_low = 0;
  double outside = 0;
  gboolean lim = g_str_equal (j->method, "lim");

  if (table == NULL)
    return FALSE;
  for (guint o = 1; o < bl_alloc_problem_get_n_options (j->problem, 0); o++)
    {
      if (option_bpw (j, 0, o) > option_bpw (j, 0, o_hi))
        o_hi = o;
      if (option_bpw (j, 0, o) < option_bpw (j, 0, o_lo))
        o_lo = o;
    }
  j->choice = g_new0 (guint, n);
  for (guint i = 0; i < n; i++)
    {
      const BlLayerSensitivity *s = g_ptr_array_index (table, i);

      j->choice[i] = o_hi;
      if (s->block < 0 || s->block >= n_blocks)
        {
          outside += bl_alloc_problem_get_cost (j->problem, i, o_hi, 0);
          continue;
        }
      importance[s->block] = lim ? s->lim : s->zd_block;
      hi[s->block] += bl_alloc_problem_get_cost (j->problem, i, o_hi, 0);
      lo[s->block] += bl_alloc_problem_get_cost (j->problem, i, o_lo, 0);
    }
  blocks = bl_alloc_layerwise (importance, (guint) n_blocks, hi, lo, j->budget_bits - outside, !j->reverse,
                               &n_low);
  if (blocks == NULL)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT,
                   "%s: even every block at %s exceeds the budget", j->method, j->menu[o_lo]);
      return FALSE;
    }
  for (guint i = 0; i < n; i++)
    {
      const BlLayerSensitivity *s = g_ptr_array_index (table, i);

      if (s->block >= 0 && s->block < n_blocks && blocks[s->block] == 1)
        j->choice[i] = o_lo;
    }
  j->note = g_strdup_printf ("%s: %u of %d blocks at %s, the rest at %s (%s)", j->method, n_low, n_blocks,
                             j->menu[o_lo], j->menu[o_hi],
                             j->reverse ? "a higher score marks a less important block"
                                        : "a higher score marks a more important block");
  return TRUE;
}

static gboolean
solve_mixdq (AllocJob      *j,
             GCancellable  *cancellable,
             GError       **error)
{
  g_autoptr(GArray) attention = NULL;
  g_autoptr(BlAllocProblem) kl = NULL;
  g_autoptr(GArray) cands = NULL;
  static const double default_ratios[] = { 0.46, 0.58, 0.7, 0.82, 0.94, 1.06, 1.18, 1.3, 1.36 };
  const double *ratios = j->ratios != NULL ? (const double *) j->ratios->data : default_ratios;
  guint n_ratios = j->ratios != NULL ? j->ratios->len : G_N_ELEMENTS (default_ratios);
  double best = INFINITY;
  GString *note = g_string_new ("MixDQ candidates (ratio k = attention/MLP bits: Σ one-at-a-time KL):");

  /* the KL problem is the common yardstick that picks a candidate */
  kl = bl_alloc_problem_new_from_sensitivity (j->budget->sensitivity, (const char * const *) j->menu,
                                              BL_ALLOC_OBJECTIVE_KL, NULL, &attention, cancellable, error);
  if (kl == NULL)
    {
      g_string_free (note, TRUE);
      return FALSE;
    }
  cands = bl_alloc_mixdq (j->problem, (const gboolean *) attention->data, (const double *) j->params->data,
                          j->budget_bits / total_params (j), ratios, n_ratios, error);
  if (cands == NULL)
    {
      g_string_free (note, TRUE);
      return FALSE;
    }
  for (guint k = 0; k < cands->len; k++)
    {
      BlMixdqCandidate *c = &g_array_index (cands, BlMixdqCandidate, k);
      double loss;

      if (c->solution == NULL)
        {
          g_string_append_printf (note, " %.2f: infeasible;", c->ratio);
          continue;
        }
      bl_alloc_problem_evaluate (kl, c->solution->choice, &loss, NULL);
      g_string_append_printf (note, " %.2f: %.5f;", c->ratio, loss);
      if (loss < best)
        {
          best = loss;
          g_free (j->choice);
          j->choice = g_memdup2 (c->solution->choice, bl_alloc_problem_get_n_items (j->problem) * sizeof (guint));
        }
      bl_alloc_solution_free (c->solution);
    }
  j->note = g_string_free (note, FALSE);
  if (j->choice == NULL)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT, "MixDQ: no ratio gives a feasible plan");
      return FALSE;
    }
  return TRUE;
}

static gboolean
allocate (gpointer       data,
          GCancellable  *cancellable,
          GError       **error)
{
  AllocJob *j = data;
  g_autoptr(BlAllocSolution) sol = NULL;
  double budgets[2];

  if (!bl_sensitivity_prepare (j->budget->sensitivity, cancellable, error))
    return FALSE;
  j->problem = bl_alloc_problem_new_from_sensitivity (j->budget->sensitivity, (const char * const *) j->menu,
                                                      j->layerwise ? BL_ALLOC_OBJECTIVE_HAWQ : j->objective,
                                                      &j->params, NULL, cancellable, error);
  if (j->problem == NULL)
    return FALSE;
  j->budget_bits = INFINITY;
  if (j->bits > 0)
    j->budget_bits = floor (j->bits * total_params (j));
  if (j->bytes > 0)
    j->budget_bits = MIN (j->budget_bits, 8.0 * j->bytes);
  if (j->layerwise)
    return solve_layerwise (j, cancellable, error);
  if (j->objective == BL_ALLOC_OBJECTIVE_MIXDQ)
    return solve_mixdq (j, cancellable, error);

  budgets[0] = j->budget_bits;
  budgets[1] = j->bops > 0 ? j->bops : INFINITY;
  sol = j->bops > 0 ? bl_alloc_problem_solve (j->problem, budgets, error)
                    : bl_alloc_problem_solve_dp (j->problem, budgets[0], error);
  if (sol == NULL)
    return FALSE;
  j->choice = g_steal_pointer (&sol->choice);
  if (j->bops > 0)
    j->note = g_strdup_printf ("branch and bound: %" G_GUINT64_FORMAT " nodes", sol->nodes);
  return TRUE;
}

static void
print_allocation (AllocJob *j)
{
  guint n = bl_alloc_problem_get_n_items (j->problem);
  double loss, costs[2];

  bl_alloc_problem_evaluate (j->problem, j->choice, &loss, costs);
  g_print ("%-42s %-18s %8s %12s\n", "layer", "format", "bits/w", "pred. loss");
  for (guint i = 0; i < n; i++)
    g_print ("%-42s %-18s %8.4f %12.4e\n", bl_alloc_problem_get_item_name (j->problem, i),
             bl_alloc_problem_get_option_label (j->problem, i, j->choice[i]), option_bpw (j, i, j->choice[i]),
             bl_alloc_problem_get_loss (j->problem, i, j->choice[i]));
  g_print ("\nmethod %s: %.4f bits/weight over %.0f weights (budget %.4f), %.0f bytes, %.3e BOPs/token, "
           "predicted loss %.6f\n", j->method, costs[0] / total_params (j), total_params (j),
           j->budget_bits / total_params (j), costs[0] / 8, costs[1], loss);
  if (j->note != NULL)
    g_print ("%s\n", j->note);
  /* the uniform plans of the menu, for comparison at their own bits */
  for (guint o = 0; o < bl_alloc_problem_get_n_options (j->problem, 0); o++)
    {
      g_autofree guint *u = g_new0 (guint, n);
      double ul, uc[2];

      for (guint i = 0; i < n; i++)
        u[i] = o;
      bl_alloc_problem_evaluate (j->problem, u, &ul, uc);
      g_print ("uniform %-18s %.4f bits/weight, predicted loss %.6f\n",
               bl_alloc_problem_get_option_label (j->problem, 0, o), uc[0] / total_params (j), ul);
    }
}

int
bl_cli_allocate_main (int    argc,
                      char **argv)
{
  g_auto(BlCliBudgetOptions) bo = { 0 };
  g_auto(GStrv) menu_args = NULL;
  g_auto(GStrv) menu = NULL;
  g_autofree char *objective = NULL, *out_path = NULL, *ratios = NULL;
  double bits = 0, bytes = 0, bops = 0;
  gboolean reverse = FALSE;
  const GOptionEntry entries[] = {
    { "menu", 'm', 0, G_OPTION_ARG_STRING_ARRAY, &menu_args, "Formats a layer may take, comma-separated or repeated; \"none\" keeps full precision", "SPECS" },
    { "bits", 0, 0, G_OPTION_ARG_DOUBLE, &bits, "Average bits per weight over the allocated layers, scales included", "B" },
    { "bytes", 0, 0, G_OPTION_ARG_DOUBLE, &bytes, "Bytes the allocated layers may take", "N" },
    { "bops", 0, 0, G_OPTION_ARG_DOUBLE, &bops, "Bit operations per token (Σ rows·cols·weight bits·16)", "N" },
    { "objective", 'o', 0, G_OPTION_ARG_STRING, &objective, "kl (default), hawq, adaquant, mixdq, lim or zd", "NAME" },
    { "ratios", 0, 0, G_OPTION_ARG_STRING, &ratios, "MixDQ: ratios k = attention/MLP bits to try (default 0.46…1.36)", "LIST" },
    { "reverse", 0, 0, G_OPTION_ARG_NONE, &reverse, "lim/zd: a higher score marks a LESS important block", NULL },
    { "out", 0, 0, G_OPTION_ARG_FILENAME, &out_path, "Write the plan (docs/plan-schema.md) here", "FILE" },
    BL_CLI_BUDGET_ENTRIES (bo),
    { NULL }
  };
  g_autoptr(GOptionContext) octx = g_option_context_new ("[MODEL] — the best per-layer formats under a budget");
  g_autoptr(GError) error = NULL;
  g_auto(BlCliBudget) budget = { 0 };
  g_auto(AllocJob) job = { 0 };

  g_option_context_add_main_entries (octx, entries, NULL);
  g_option_context_set_description (octx,
    "Measures each layer's predicted loss in each menu format over a window budget\n"
    "(`bitlens-cli sensitivity`), then picks one format per layer that minimises the summed\n"
    "loss under the budgets, exactly (a multiple-choice knapsack; core/bl-allocator.h).\n"
    "Objectives: kl (one-at-a-time KL), hawq (Tr(H)/n·‖W − Q(W)‖²), adaquant (one-at-a-time\n"
    "ΔNLL), mixdq (attention by KL and MLP by ΔNLL, separate budgets over a ratio sweep), and\n"
    "the layer-wise baselines lim and zd (whole blocks to the narrowest format).");
  if (!bl_cli_parse_model_options (octx, "allocate", &argc, &argv))
    return BL_CLI_EXIT_USAGE;
  menu = bl_cli_split_list (menu_args);
  if (menu[0] == NULL)
    return bl_cli_usage_error ("allocate", "--menu is required");
  if (bits <= 0 && bytes <= 0)
    return bl_cli_usage_error ("allocate", "give --bits or --bytes");
  job.method = objective != NULL ? objective : "kl";
  job.layerwise = g_str_equal (job.method, "lim") || g_str_equal (job.method, "zd");
  if (!job.layerwise && !bl_alloc_objective_from_string (job.method, &job.objective))
    return bl_cli_usage_error ("allocate", "unknown objective “%s”", job.method);
  if (job.layerwise && g_strv_length (menu) < 2)
    return bl_cli_usage_error ("allocate", "%s needs a menu of at least two formats", job.method);
  if (ratios != NULL && !bl_cli_parse_doubles (ratios, &job.ratios, &error))
    return bl_cli_usage_error ("allocate", "%s", error->message);
  if (!bl_cli_check_menu (menu, &error))
    return bl_cli_report_error (error);

  if (!bl_cli_budget_open (&budget, argc == 2 ? argv[1] : NULL, &bo, &error))
    return bl_cli_report_error (error);
  job.budget = &budget;
  job.menu = menu;
  job.bits = bits;
  job.bytes = bytes;
  job.bops = bops;
  job.reverse = reverse;
  if (!bl_cli_run_cancellable (allocate, &job, &error))
    return bl_cli_report_error (error);

  print_allocation (&job);
  if (out_path != NULL)
    {
      g_autofree char *plan = bl_alloc_problem_to_plan_json (job.problem, job.choice, &error);

      if (plan == NULL || !g_file_set_contents (out_path, plan, -1, &error))
        return bl_cli_report_error (error);
      g_printerr ("plan written to %s\n", out_path);
    }
  return 0;
}
