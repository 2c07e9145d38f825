/* bl-cli-sweep.c: `bitlens-cli sweep` (allocate, measure and store every budget, in shards)
 * and `bitlens-cli merge` (join shard files)
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "config.h"

#include <math.h>
#include <string.h>

#include "bl-quant-engine.h"
#include "bl-quant-plan.h"
#include "bl-run.h"
#include "bl-sweep.h"
#include "bl-cli.h"
#include "bl-cli-commands.h"

static int
compare_by_bits (gconstpointer a,
                 gconstpointer b)
{
  const BlSweepPoint *x = *(BlSweepPoint * const *) a, *y = *(BlSweepPoint * const *) b;

  if (x->bits_per_weight != y->bits_per_weight)
    return x->bits_per_weight < y->bits_per_weight ? -1 : 1;
  return g_strcmp0 (x->kind, y->kind);
}

/* The sweep as a table by bits per weight. An allocated plan that uses no more bits than a
 * uniform plan and has a lower measured KL is marked with the narrowest such uniform plan. */
static void
print_points (GPtrArray *points)
{
  g_autoptr(GPtrArray) sorted = g_ptr_array_sized_new (points->len);

  for (guint k = 0; k < points->len; k++)
    g_ptr_array_add (sorted, points->pdata[k]);
  g_ptr_array_sort (sorted, compare_by_bits);
  g_print ("%-26s %9s %9s %12s %23s %8s %9s\n", "point", "bits/w", "target", "pred. loss", "KL (95% CI)", "top-1",
           "ppl");
  for (guint k = 0; k < sorted->len; k++)
    {
      const BlSweepPoint *p = sorted->pdata[k];
      const BlSweepPoint *beaten = NULL;

      for (guint u = 0; u < sorted->len && g_str_equal (p->kind, "allocated"); u++)
        {
          const BlSweepPoint *q = sorted->pdata[u];

          if (g_str_equal (q->kind, "uniform") && q->bits_per_weight >= p->bits_per_weight && q->kl > p->kl
              && (beaten == NULL || q->bits_per_weight < beaten->bits_per_weight))
            beaten = q;
        }
      g_print ("%-26s %9.4f %9.4f %12.4e %9.5f [%6.4f,%6.4f] %8.4f %9.4f", p->label, p->bits_per_weight,
               p->target_bits, p->predicted_loss, p->kl, p->kl_ci_low, p->kl_ci_high, p->top1, exp (p->nll));
      if (beaten != NULL)
        g_print ("  beats %s (KL %.5f)", beaten->label, beaten->kl);
      g_print ("\n");
    }
}

/* --- measurement through the quantized engine and a KL run ------------------------------------ */

typedef struct
{
  BlCliBudget *budget;
  BlTextSource *eval_source;
  GArray *eval_ids;
  BlRunOptions opts;
  int top_k;
  BlQuantEngine *qe;
} Measurer;

static void
measurer_clear (Measurer *m)
{
  g_clear_pointer (&m->qe, bl_quant_engine_free);
  g_clear_pointer (&m->eval_ids, g_array_unref);
  g_clear_object (&m->eval_source);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Measurer, measurer_clear)

static gboolean
measure_point (BlSweepPoint  *p,
               gpointer       user_data,
               GCancellable  *cancellable,
               GError       **error)
{
  Measurer *m = user_data;
  g_autoptr(BlQuantPlan) plan = bl_quant_plan_new_from_json (p->plan_json, -1, p->key, error);
  g_autoptr(BlRun) run = NULL;
  BlKlSummary kl;

  if (plan == NULL)
    return FALSE;
  /* one engine for the whole shard: a new plan re-quantizes only the layers it changes */
  if (m->qe == NULL)
    m->qe = bl_quant_engine_new (m->budget->model, m->budget->backend, plan, NULL, 0, cancellable, NULL, NULL,
                                 error);
  else if (!bl_quant_engine_set_plan (m->qe, plan, cancellable, error))
    return FALSE;
  if (m->qe == NULL)
    return FALSE;
  run = bl_run_new (m->budget->model, bl_quant_engine_get_engine (m->qe), (const int32_t *) m->eval_ids->data,
                    m->eval_ids->len, &m->opts, error);
  if (run == NULL)
    return FALSE;
  bl_run_set_quant_engine (run, m->qe);
  bl_run_set_kl (run, m->top_k);
  if (!bl_run_execute (run, cancellable, error))
    return FALSE;
  if (!bl_run_get_kl_summary (run, &kl))
    {
      g_set_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT, "point %s: no KL was measured", p->key);
      return FALSE;
    }
  p->kl = kl.kl;
  p->kl_ci_low = kl.kl_ci_low;
  p->kl_ci_high = kl.kl_ci_high;
  p->top1 = kl.top1;
  p->nll = kl.nll;
  p->base_nll = kl.base_nll;
  p->n_tokens = (gint64) kl.n_positions;
  p->wall_seconds = bl_run_get_wall_seconds (run);
  return TRUE;
}

static void
on_point (const BlSweepPoint *p,
          gboolean            skipped,
          guint               done,
          guint               total,
          gpointer            user_data)
{
  if (skipped)
    g_printerr ("point %u/%u %s: in the file already\n", done, total, p->key);
  else
    g_printerr ("point %u/%u %s: %.4f bits/weight, KL %.5f, top-1 %.4f (%.1f s)\n", done, total, p->key,
                p->bits_per_weight, p->kl, p->top1, p->wall_seconds);
}

typedef struct
{
  BlCliBudget *budget;
  Measurer *measurer;
  char **menu;
  BlAllocObjective objective;
  const char *objective_name;
  GArray *budgets;
  BlSweep *sweep;
  guint shard, n_shards;
} SweepJob;

static gboolean
sweep (gpointer       data,
       GCancellable  *cancellable,
       GError       **error)
{
  SweepJob *j = data;
  g_autoptr(BlAllocProblem) problem = NULL;
  g_autoptr(GArray) params = NULL;
  g_autoptr(GPtrArray) points = NULL;

  if (!bl_sensitivity_prepare (j->budget->sensitivity, cancellable, error))
    return FALSE;
  problem = bl_alloc_problem_new_from_sensitivity (j->budget->sensitivity, (const char * const *) j->menu,
                                                   j->objective, &params, NULL, cancellable, error);
  if (problem == NULL)
    return FALSE;
  points = bl_sweep_make_points (problem, (const double *) params->data, j->objective_name,
                                 (const double *) j->budgets->data, j->budgets->len, error);
  if (points == NULL)
    return FALSE;
  return bl_sweep_run (j->sweep, points, j->shard, j->n_shards, measure_point, j->measurer, on_point,
                       NULL, cancellable, error);
}

/* Everything that decides the points and their numbers, so that a resumed or merged sweep
 * never mixes two experiments. */
static char *
sweep_config (SweepJob *j,
              int       eval_windows)
{
  g_autoptr(JsonBuilder) b = json_builder_new ();
  const BlSensitivityOptions *so = bl_sensitivity_get_options (j->budget->sensitivity);

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "menu");
  json_builder_begin_array (b);
  for (guint m = 0; j->menu[m] != NULL; m++)
    json_builder_add_string_value (b, j->menu[m]);
  json_builder_end_array (b);
  json_builder_set_member_name (b, "budgets");
  json_builder_begin_array (b);
  for (guint k = 0; k < j->budgets->len; k++)
    json_builder_add_double_value (b, g_array_index (j->budgets, double, k));
  json_builder_end_array (b);
  bl_cli_json_add_string (b, "objective", j->objective_name);
  bl_cli_json_add_string (b, "budget_text", bl_text_source_get_sha256 (j->budget->source));
  bl_cli_json_add_int (b, "budget_windows", so->n_windows);
  bl_cli_json_add_int (b, "budget_ctx", so->ctx);
  bl_cli_json_add_int (b, "budget_seed", (gint64) so->seed);
  bl_cli_json_add_string (b, "eval_text", bl_text_source_get_sha256 (j->measurer->eval_source));
  bl_cli_json_add_int (b, "eval_windows", eval_windows);
  bl_cli_json_add_int (b, "eval_ctx", j->measurer->opts.ctx);
  bl_cli_json_add_int (b, "eval_seed", (gint64) j->measurer->opts.seed);
  bl_cli_json_add_int (b, "top_k", j->measurer->top_k);
  bl_cli_json_add_string (b, "backend", bl_backend_get_name (j->budget->backend));
  bl_cli_json_add_int (b, "threads", j->budget->n_threads);
  json_builder_end_object (b);
  return bl_cli_json_to_string (b, FALSE);
}

int
bl_cli_sweep_main (int    argc,
                   char **argv)
{
  g_auto(BlCliBudgetOptions) bo = { 0 };
  g_auto(GStrv) menu_args = NULL;
  g_auto(GStrv) menu = NULL;
  g_autofree char *budgets = NULL, *shard = NULL, *db = NULL, *objective = NULL, *eval_text = NULL;
  int eval_windows = 16, eval_ctx = 0, top_k = 0;
  gint64 eval_seed = 0;
  const GOptionEntry entries[] = {
    { "menu", 'm', 0, G_OPTION_ARG_STRING_ARRAY, &menu_args, "Formats a layer may take, comma-separated or repeated", "SPECS" },
    { "budgets", 0, 0, G_OPTION_ARG_STRING, &budgets, "Average bits per weight to allocate for, e.g. 3,3.5,4,4.5,6,8", "LIST" },
    { "objective", 'o', 0, G_OPTION_ARG_STRING, &objective, "kl (default), hawq or adaquant", "NAME" },
    { "shard", 0, 0, G_OPTION_ARG_STRING, &shard, "Measure the points i, i+n, i+2n… only (default 0/1)", "i/n" },
    { "out", 0, 0, G_OPTION_ARG_FILENAME, &db, "The shard's sweep file (created or resumed)", "FILE" },
    { "eval-text", 0, 0, G_OPTION_ARG_FILENAME, &eval_text, "Text the plans are measured on (default brown:test)", "FILE" },
    { "eval-windows", 0, 0, G_OPTION_ARG_INT, &eval_windows, "Windows measured per plan (default 16)", "N" },
    { "eval-ctx", 0, 0, G_OPTION_ARG_INT, &eval_ctx, "Ids per measured window (default: min(256, model maximum))", "N" },
    { "eval-seed", 0, 0, G_OPTION_ARG_INT64, &eval_seed, "Seed of the measured windows' order (default 0)", "N" },
    { "top-k", 0, 0, G_OPTION_ARG_INT, &top_k, "Baseline log-probabilities per position for the KL (default 32)", "N" },
    BL_CLI_BUDGET_ENTRIES (bo),
    { NULL }
  };
  g_autoptr(GOptionContext) octx = g_option_context_new ("[MODEL] — allocate, measure and store a Pareto sweep");
  g_autoptr(GError) error = NULL;
  g_autoptr(BlSweep) sweep_file = NULL;
  g_autoptr(GArray) budget_bits = NULL;
  g_autoptr(GPtrArray) stored = NULL;
  g_autofree char *config = NULL;
  g_auto(BlCliBudget) budget = { 0 };
  g_auto(Measurer) measurer = { 0 };
  SweepJob job = { 0 };

  g_option_context_add_main_entries (octx, entries, NULL);
  g_option_context_set_description (octx,
    "For every budget, the plan the allocator picks from the menu (as `bitlens-cli allocate`),\n"
    "and for every menu format the uniform plan, each measured by its KL against the\n"
    "full-precision model on the evaluation text and stored in FILE as soon as it is done.\n"
    "Re-running the same command skips the stored points, so a killed sweep resumes; with\n"
    "--shard i/n it runs one of n independent shards (a Slurm job array: --shard\n"
    "$SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT), joined afterwards by `bitlens-cli merge`.");
  if (!bl_cli_parse_model_options (octx, "sweep", &argc, &argv))
    return BL_CLI_EXIT_USAGE;
  menu = bl_cli_split_list (menu_args);
  if (menu[0] == NULL || budgets == NULL || db == NULL)
    return bl_cli_usage_error ("sweep", "--menu, --budgets and --out are required");
  job.objective_name = objective != NULL ? objective : "kl";
  if (!bl_alloc_objective_from_string (job.objective_name, &job.objective)
      || job.objective == BL_ALLOC_OBJECTIVE_MIXDQ)
    return bl_cli_usage_error ("sweep", "objective “%s” is not kl, hawq or adaquant", job.objective_name);
  if (!bl_cli_parse_doubles (budgets, &budget_bits, &error)
      || !bl_sweep_parse_shard (shard != NULL ? shard : "0/1", &job.shard, &job.n_shards, &error))
    return bl_cli_usage_error ("sweep", "%s", error->message);
  if (eval_windows <= 0 || eval_ctx < 0 || top_k < 0)
    return bl_cli_usage_error ("sweep", "--eval-windows must be positive, --eval-ctx and --top-k not negative");
  if (!bl_cli_check_menu (menu, &error))
    return bl_cli_report_error (error);

  if (!bl_cli_budget_open (&budget, argc == 2 ? argv[1] : NULL, &bo, &error))
    return bl_cli_report_error (error);
  measurer.budget = &budget;
  measurer.top_k = top_k > 0 ? top_k : BL_KL_DEFAULT_TOP_K;
  measurer.opts.protocol = BL_PROTOCOL_GPTQ;
  measurer.opts.ctx = eval_ctx > 0 ? eval_ctx : MIN (256, bl_model_get_config (budget.model)->max_position_embeddings);
  measurer.opts.max_windows = eval_windows;
  measurer.opts.seed = (guint64) eval_seed;
  if ((measurer.eval_source = bl_cli_open_text (eval_text != NULL ? eval_text : "brown:test", &error)) == NULL)
    return bl_cli_report_error (error);
  measurer.eval_ids = bl_cli_encode_text (bl_model_get_tokenizer (budget.model), measurer.eval_source);

  job.budget = &budget;
  job.measurer = &measurer;
  job.menu = menu;
  job.budgets = budget_bits;
  config = sweep_config (&job, eval_windows);
  if ((sweep_file = bl_sweep_open (db, config, bl_model_get_fingerprint (budget.model), &error)) == NULL)
    return bl_cli_report_error (error);
  job.sweep = sweep_file;
  g_printerr ("sweep shard %u/%u of %s into %s\n", job.shard, job.n_shards, bl_model_get_path (budget.model), db);
  if (!bl_cli_run_cancellable (sweep, &job, &error)
      || (stored = bl_sweep_list_points (sweep_file, &error)) == NULL)
    return bl_cli_report_error (error);
  g_print ("%s: %u points stored (shard %u/%u)\n", db, stored->len, job.shard, job.n_shards);
  print_points (stored);
  return 0;
}

int
bl_cli_merge_main (int    argc,
                   char **argv)
{
  g_autofree char *out = NULL;
  gboolean quiet = FALSE;
  const GOptionEntry entries[] = {
    { "out", 'o', 0, G_OPTION_ARG_FILENAME, &out, "The merged sweep file (created, or extended)", "FILE" },
    { "quiet", 'q', 0, G_OPTION_ARG_NONE, &quiet, "Do not print the merged table", NULL },
    { NULL }
  };
  g_autoptr(GOptionContext) octx = g_option_context_new ("FILE… — join the shard files of a sweep");
  g_autoptr(GError) error = NULL;
  g_autoptr(BlSweep) sweep = NULL;
  g_autoptr(GPtrArray) points = NULL;
  guint n = 0;

  g_option_context_add_main_entries (octx, entries, NULL);
  g_option_context_set_description (octx,
    "Every file must come from the same sweep (configuration and model); a point two files\n"
    "both hold must agree on its plan and every measured number.");
  if (!g_option_context_parse (octx, &argc, &argv, &error))
    return bl_cli_usage_error ("merge", "%s", error->message);
  if (out == NULL || argc < 2)
    return bl_cli_usage_error ("merge", "give --out FILE and at least one shard file");
  if (!bl_sweep_merge (out, (const char * const *) argv + 1, &n, &error))
    return bl_cli_report_error (error);
  g_print ("%s: %u points from %d files\n", out, n, argc - 1);
  if (quiet)
    return 0;
  if ((sweep = bl_sweep_open_existing (out, &error)) == NULL
      || (points = bl_sweep_list_points (sweep, &error)) == NULL)
    return bl_cli_report_error (error);
  print_points (points);
  return 0;
}
