/* bl-cli-sensitivity.c: `bitlens-cli sensitivity`, per-layer sensitivity and the estimator
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "config.h"

#include <math.h>

#include "bl-cli.h"
#include "bl-cli-commands.h"

typedef struct
{
  /* inputs */
  BlSensitivity *sens;
  BlStore *store;
  char **formats;
  gboolean with_kl;
  int n_plans;
  guint64 seed;

  /* outputs */
  GPtrArray *tables;             /* GPtrArray of BlLayerSensitivity, one per format */
  BlEstimator *estimator;
  gboolean have_fit;
  BlEstimatorFit fit;
} Job;

static void
job_clear (Job *job)
{
  g_clear_pointer (&job->tables, g_ptr_array_unref);
  g_clear_object (&job->estimator);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Job, job_clear)

static void
on_progress (const char *stage,
             int         done,
             int         total,
             gpointer    user_data)
{
  /* one line per stage step, at most ~20 per stage */
  int every = MAX (1, total / 20);

  if (done == total || done % every == 0)
    g_printerr ("%s %d/%d\n", stage, done, total);
}

/* A random plan over the menu: each linear layer takes one of @formats with probability
 * @fraction, else stays in full precision. */
static GHashTable *
random_plan (BlSensitivity *sens,
             char         **formats,
             double         fraction,
             GRand         *rand)
{
  GHashTable *plan = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  guint n_formats = g_strv_length (formats);

  for (guint i = 0; i < bl_sensitivity_get_n_layers (sens); i++)
    if (g_rand_double (rand) < fraction)
      g_hash_table_insert (plan, g_strdup (bl_sensitivity_get_layer_name (sens, i)),
                           g_strdup (formats[g_rand_int_range (rand, 0, (gint32) n_formats)]));
  return plan;
}

static gboolean
run_estimator (Job           *job,
               GCancellable  *cancellable,
               GError       **error)
{
  g_autoptr(GRand) rand = g_rand_new_with_seed ((guint32) job->seed);
  guint n_loaded;

  job->estimator = bl_estimator_new (job->sens, error);
  if (job->estimator == NULL)
    return FALSE;

  /* Plans from 5% to 100% of the layers quantized, so that the samples span small and
   * large errors; measured over the budget, they land in the store as samples. */
  for (int k = 0; k < job->n_plans; k++)
    {
      double fraction = 0.05 + 0.95 * (job->n_plans > 1 ? (double) k / (job->n_plans - 1) : 1.0);
      g_autoptr(GHashTable) plan = random_plan (job->sens, job->formats, fraction, rand);
      BlPlanMeasurement m;

      g_printerr ("plan %d/%d: %u layers quantized\n", k + 1, job->n_plans,
                  g_hash_table_size (plan));
      if (!bl_sensitivity_measure_plan (job->sens, plan, &m, cancellable, error))
        return FALSE;
      if (job->store == NULL
          && !bl_estimator_add_sample (job->estimator, plan, m.nll, m.kl, error))
        return FALSE;
    }
  /* With a store, the samples are every plan measured on this budget, earlier ones too. */
  if (job->store != NULL)
    {
      n_loaded = bl_estimator_load_samples (job->estimator, job->store, error);
      if (n_loaded == 0 && error != NULL && *error != NULL)
        return FALSE;
    }
  if (bl_estimator_get_n_samples (job->estimator) >= 2)
    job->have_fit = bl_estimator_fit (job->estimator, &job->fit, error);
  return bl_estimator_get_n_samples (job->estimator) < 2 || job->have_fit;
}

static gboolean
measure (gpointer       data,
         GCancellable  *cancellable,
         GError       **error)
{
  Job *job = data;

  if (!bl_sensitivity_prepare (job->sens, cancellable, error))
    return FALSE;
  job->tables = g_ptr_array_new_with_free_func ((GDestroyNotify) g_ptr_array_unref);
  for (guint f = 0; job->formats[f] != NULL; f++)
    {
      GPtrArray *table;

      g_printerr ("format %s\n", job->formats[f]);
      table = bl_sensitivity_compute (job->sens, job->formats[f], job->with_kl, cancellable, error);
      if (table == NULL)
        return FALSE;
      g_ptr_array_add (job->tables, table);
    }
  if (job->n_plans > 0 && job->with_kl)
    return run_estimator (job, cancellable, error);
  return TRUE;
}

static int
compare_by_kl (gconstpointer a,
               gconstpointer b)
{
  const BlLayerSensitivity *x = *(BlLayerSensitivity * const *) a;
  const BlLayerSensitivity *y = *(BlLayerSensitivity * const *) b;
  double kx = isnan (x->kl) ? x->omega : x->kl, ky = isnan (y->kl) ? y->omega : y->kl;

  return kx < ky ? 1 : kx > ky ? -1 : 0;
}

/* How well each cheap measure ranks the layers like the one-at-a-time KL does. */
typedef struct
{
  const char *name;
  double rho;
} ProxyRho;

#define N_PROXIES 6

static double
proxy_value (const BlLayerSensitivity *s,
             guint                     proxy)
{
  switch (proxy)
    {
    case 0: return s->rel_err;
    case 1: return s->out_err;
    case 2: return s->omega;
    case 3: return s->lim;
    case 4: return s->zd;
    default: return -s->zd;
    }
}

static void
proxy_correlations (GPtrArray *table,
                    ProxyRho  *out)
{
  static const char *const names[N_PROXIES] = { "rel_err (1/QSNR)", "out_err", "omega (HAWQ)",
                                                "LIM (block)", "ZD", "-ZD" };
  g_autofree double *x = g_new (double, table->len);
  g_autofree double *y = g_new (double, table->len);

  for (guint p = 0; p < N_PROXIES; p++)
    {
      guint m = 0;

      for (guint i = 0; i < table->len; i++)
        {
          const BlLayerSensitivity *s = g_ptr_array_index (table, i);
          double v = proxy_value (s, p);

          /* the lm_head has no block, hence no LIM */
          if (isnan (v) || isnan (s->kl))
            continue;
          x[m] = v;
          y[m] = s->kl;
          m++;
        }
      out[p].name = names[p];
      out[p].rho = bl_spearman_rho (x, y, m);
    }
}

/* Per-block sums and orderings: the LIM paper's claim is that the first and last blocks
 * matter most. */
static void
print_blocks (GPtrArray *table,
              int        n_blocks)
{
  g_autofree double *kl = g_new0 (double, n_blocks);
  g_autofree double *lim = g_new0 (double, n_blocks);
  g_autofree double *zd = g_new0 (double, n_blocks);

  for (guint i = 0; i < table->len; i++)
    {
      const BlLayerSensitivity *s = g_ptr_array_index (table, i);

      if (s->block < 0 || s->block >= n_blocks)
        continue;
      kl[s->block] += isnan (s->kl) ? 0.0 : s->kl;
      lim[s->block] = s->lim;
      zd[s->block] = s->zd_block;
    }
  g_print ("\n%-6s %12s %10s %10s\n", "block", "Σ KL", "LIM", "ZD(block)");
  for (int b = 0; b < n_blocks; b++)
    g_print ("%-6d %12.6f %10.5f %10.5f\n", b, kl[b], lim[b], zd[b]);
  {
    double rho_lim = bl_spearman_rho (lim, kl, n_blocks);
    double rho_zd = bl_spearman_rho (zd, kl, n_blocks);

    g_print ("blocks: Spearman ρ with Σ KL: LIM %+.3f, ZD %+.3f (−ZD %+.3f)\n", rho_lim, rho_zd,
             isnan (rho_zd) ? NAN : -rho_zd);
  }
}

static void
print_table (GPtrArray *table,
             int        n_blocks)
{
  g_autoptr(GPtrArray) sorted = g_ptr_array_copy (table, NULL, NULL);
  ProxyRho rho[N_PROXIES];

  /* the copy borrows the entries: it must not free them */
  g_ptr_array_set_free_func (sorted, NULL);
  g_ptr_array_sort (sorted, compare_by_kl);
  g_print ("\nformat %s: %u linear layers, ranked by one-at-a-time KL\n",
           ((BlLayerSensitivity *) table->pdata[0])->weight_spec, table->len);
  g_print ("%-4s %-42s %8s %10s %10s %11s %11s %7s %8s %7s\n", "rank", "layer", "QSNR dB",
           "out_err", "Ω", "KL", "ΔNLL", "top-1", "LIM", "ZD");
  for (guint i = 0; i < sorted->len; i++)
    {
      const BlLayerSensitivity *s = g_ptr_array_index (sorted, i);

      g_print ("%-4u %-42s %8.2f %10.3e %10.3e %11.4e %+11.4e %7.4f %8.4f %7.4f\n", i + 1,
               s->name, s->qsnr_db, s->out_err, s->omega, s->kl, s->dnll, s->top1, s->lim,
               s->zd);
    }
  if (isnan (((BlLayerSensitivity *) table->pdata[0])->kl))
    return;
  proxy_correlations (table, rho);
  g_print ("\ncheap measures against the KL ranking (Spearman ρ over layers):");
  for (guint i = 0; i < N_PROXIES; i++)
    g_print ("%s %s %+.3f", i ? "," : "", rho[i].name, rho[i].rho);
  g_print ("\n");
  print_blocks (table, n_blocks);
}

static void
print_estimator (Job *job)
{
  BlEstimator *est = job->estimator;
  guint n = bl_estimator_get_n_samples (est);

  g_print ("\nestimator: %u measured plans on this budget\n", n);
  g_print ("%-5s %12s %12s %12s %12s\n", "plan", "pred Δppl", "meas Δppl", "pred KL", "meas KL");
  for (guint i = 0; i < n; i++)
    {
      double pd, md, pk, mk;

      bl_estimator_get_sample (est, i, &pd, &md, &pk, &mk);
      g_print ("%-5u %12.4f %12.4f %12.6f %12.6f\n", i + 1, pd, md, pk, mk);
    }
  if (!job->have_fit)
    return;
  g_print ("fit: a_kl %.4f, a_nll %.4f; Δppl RMSE %.4f (leave-one-out %.4f, before the fit "
           "%.4f), MAE %.4f, mean relative error %.1f%%, Spearman ρ %.3f; KL RMSE %.6f, "
           "Spearman ρ %.3f\n", job->fit.a_kl, job->fit.a_nll, job->fit.rmse_dppl,
           job->fit.loo_rmse_dppl, job->fit.raw_rmse_dppl, job->fit.mae_dppl,
           100.0 * job->fit.mean_rel_err_dppl, job->fit.spearman_dppl, job->fit.rmse_kl,
           job->fit.spearman_kl);
}

static void
print_json (Job          *job,
            BlModel      *model,
            BlTextSource *source)
{
  const BlSensitivityOptions *opts = bl_sensitivity_get_options (job->sens);
  g_autoptr(JsonBuilder) b = json_builder_new ();
  double base = bl_sensitivity_get_base_nll (job->sens);

  json_builder_begin_object (b);
  bl_cli_json_add_string (b, "model", bl_model_get_path (model));
  json_builder_set_member_name (b, "budget");
  json_builder_begin_object (b);
  bl_cli_json_add_string (b, "dataset", bl_text_source_get_name (source));
  bl_cli_json_add_string (b, "dataset_sha256", bl_text_source_get_sha256 (source));
  bl_cli_json_add_int (b, "windows", opts->n_windows);
  bl_cli_json_add_int (b, "ctx", opts->ctx);
  bl_cli_json_add_int (b, "seed", (gint64) opts->seed);
  bl_cli_json_add_int (b, "tokens", bl_sensitivity_get_n_tokens (job->sens));
  bl_cli_json_add_double_or_null (b, "base_nll", base);
  bl_cli_json_add_double_or_null (b, "base_ppl", exp (base));
  bl_cli_json_add_int (b, "budget_id", bl_sensitivity_get_budget_id (job->sens));
  json_builder_end_object (b);

  json_builder_set_member_name (b, "formats");
  json_builder_begin_array (b);
  for (guint f = 0; f < job->tables->len; f++)
    {
      GPtrArray *table = g_ptr_array_index (job->tables, f);

      json_builder_begin_object (b);
      bl_cli_json_add_string (b, "weight_spec",
                              ((BlLayerSensitivity *) table->pdata[0])->weight_spec);
      json_builder_set_member_name (b, "layers");
      json_builder_begin_array (b);
      for (guint i = 0; i < table->len; i++)
        {
          const BlLayerSensitivity *s = g_ptr_array_index (table, i);

          json_builder_begin_object (b);
          bl_cli_json_add_string (b, "name", s->name);
          bl_cli_json_add_string (b, "kind", bl_layer_kind_to_string (s->kind));
          bl_cli_json_add_int (b, "block", s->block);
          bl_cli_json_add_double_or_null (b, "qsnr_db", s->qsnr_db);
          bl_cli_json_add_double_or_null (b, "rel_err", s->rel_err);
          bl_cli_json_add_double_or_null (b, "out_err", s->out_err);
          bl_cli_json_add_double_or_null (b, "hessian_trace", s->hessian_trace);
          bl_cli_json_add_double_or_null (b, "omega", s->omega);
          bl_cli_json_add_double_or_null (b, "kl", s->kl);
          bl_cli_json_add_double_or_null (b, "dnll", s->dnll);
          bl_cli_json_add_double_or_null (b, "top1", s->top1);
          bl_cli_json_add_double_or_null (b, "lim", s->lim);
          bl_cli_json_add_double_or_null (b, "zd", s->zd);
          bl_cli_json_add_double_or_null (b, "zd_block", s->zd_block);
          json_builder_end_object (b);
        }
      json_builder_end_array (b);
      if (!isnan (((BlLayerSensitivity *) table->pdata[0])->kl))
        {
          ProxyRho rho[N_PROXIES];

          proxy_correlations (table, rho);
          json_builder_set_member_name (b, "spearman_vs_kl");
          json_builder_begin_object (b);
          for (guint i = 0; i < N_PROXIES; i++)
            bl_cli_json_add_double_or_null (b, rho[i].name, rho[i].rho);
          json_builder_end_object (b);
        }
      json_builder_end_object (b);
    }
  json_builder_end_array (b);

  if (job->estimator != NULL)
    {
      guint n = bl_estimator_get_n_samples (job->estimator);

      json_builder_set_member_name (b, "estimator");
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "samples");
      json_builder_begin_array (b);
      for (guint i = 0; i < n; i++)
        {
          double pd, md, pk, mk;

          bl_estimator_get_sample (job->estimator, i, &pd, &md, &pk, &mk);
          json_builder_begin_object (b);
          bl_cli_json_add_double_or_null (b, "predicted_dppl", pd);
          bl_cli_json_add_double_or_null (b, "measured_dppl", md);
          bl_cli_json_add_double_or_null (b, "predicted_kl", pk);
          bl_cli_json_add_double_or_null (b, "measured_kl", mk);
          json_builder_end_object (b);
        }
      json_builder_end_array (b);
      if (job->have_fit)
        {
          bl_cli_json_add_double_or_null (b, "a_kl", job->fit.a_kl);
          bl_cli_json_add_double_or_null (b, "a_nll", job->fit.a_nll);
          bl_cli_json_add_double_or_null (b, "rmse_dppl", job->fit.rmse_dppl);
          bl_cli_json_add_double_or_null (b, "loo_rmse_dppl", job->fit.loo_rmse_dppl);
          bl_cli_json_add_double_or_null (b, "raw_rmse_dppl", job->fit.raw_rmse_dppl);
          bl_cli_json_add_double_or_null (b, "mae_dppl", job->fit.mae_dppl);
          bl_cli_json_add_double_or_null (b, "mean_rel_err_dppl", job->fit.mean_rel_err_dppl);
          bl_cli_json_add_double_or_null (b, "spearman_dppl", job->fit.spearman_dppl);
          bl_cli_json_add_double_or_null (b, "rmse_kl", job->fit.rmse_kl);
          bl_cli_json_add_double_or_null (b, "spearman_kl", job->fit.spearman_kl);
        }
      json_builder_end_object (b);
    }
  json_builder_end_object (b);

  bl_cli_print_json (b);
}

int
bl_cli_sensitivity_main (int    argc,
                         char **argv)
{
  g_auto(GStrv) formats = NULL;
  g_auto(BlCliBudgetOptions) bo = { 0 };
  int n_plans = 0;
  gboolean no_kl = FALSE;
  gboolean json = FALSE;
  const GOptionEntry entries[] = {
    { "format", 'f', 0, G_OPTION_ARG_STRING_ARRAY, &formats, "Weight format spec (repeatable), e.g. int4:g32", "SPEC" },
    { "text", 't', 0, G_OPTION_ARG_FILENAME, &bo.text, "Budget text: a file, or brown:train|validation|test (default brown:test)", "FILE" },
    { "windows", 'k', 0, G_OPTION_ARG_INT, &bo.windows, "Windows in the budget (default 8)", "N" },
    { "ctx", 'c', 0, G_OPTION_ARG_INT, &bo.ctx, "Ids per window (default: min(256, model maximum))", "N" },
    { "seed", 0, 0, G_OPTION_ARG_INT64, &bo.seed, "Seed of the window starts and the random plans (default 0)", "N" },
    { "no-kl", 0, 0, G_OPTION_ARG_NONE, &no_kl, "Skip the one-at-a-time KL (weight, Hessian-proxy, LIM and ZD only)", NULL },
    { "plans", 'p', 0, G_OPTION_ARG_INT, &n_plans, "Measure N random mixed plans over the --format menu and calibrate the estimator", "N" },
    BL_CLI_THREADS_ENTRY (bo.threads),
    BL_CLI_BACKEND_ENTRY (bo.backend),
    BL_CLI_DB_ENTRY (bo.db),
    { "no-store", 0, 0, G_OPTION_ARG_NONE, &bo.no_store, "Neither read nor write the sensitivity cache", NULL },
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, "Print the result as JSON", NULL },
    { NULL }
  };
  g_autoptr(GOptionContext) octx = g_option_context_new ("[MODEL] — per-layer sensitivity to a weight format");
  g_autoptr(GError) error = NULL;
  g_auto(BlCliBudget) budget = { 0 };
  g_auto(Job) job = { 0 };
  const BlSensitivityOptions *used;
  double base;

  g_option_context_add_main_entries (octx, entries, NULL);
  g_option_context_set_description (octx,
    "Ranks the linear layers by the KL divergence the model's output takes when only that\n"
    "layer is quantized (one-at-a-time, over a small window budget), beside cheap proxies:\n"
    "weight QSNR, the calibration-weighted output error, HAWQ's Hessian-trace Ω, LIM and ZD.\n"
    "With --plans it measures random mixed plans and reports the estimator's predicted\n"
    "against measured Δppl. Results are cached in the store per budget and format.");
  if (!bl_cli_parse_model_options (octx, "sensitivity", &argc, &argv))
    return BL_CLI_EXIT_USAGE;
  if (formats == NULL || formats[0] == NULL)
    return bl_cli_usage_error ("sensitivity", "--format is required");
  if (bo.windows < 0 || bo.ctx < 0 || bo.threads < 0 || n_plans < 0)
    return bl_cli_usage_error ("sensitivity", "--windows, --ctx, --threads and --plans must be "
                               "positive");
  if (n_plans > 0 && no_kl)
    return bl_cli_usage_error ("sensitivity", "--plans needs the one-at-a-time KL (drop --no-kl)");
  for (guint f = 0; formats[f] != NULL; f++)
    {
      BlFormatSpec spec;

      if (!bl_format_spec_parse (formats[f], &spec, &error))
        return bl_cli_report_error (error);
    }
  /* the budget of `allocate` and `sweep`, over the text `eval` reads by default */
  if (bo.text == NULL)
    bo.text = g_strdup ("brown:test");

  if (!bl_cli_budget_open (&budget, argc == 2 ? argv[1] : NULL, &bo, &error))
    return bl_cli_report_error (error);
  bl_sensitivity_set_progress (budget.sensitivity, on_progress, NULL);

  job.sens = budget.sensitivity;
  job.store = budget.store;
  job.formats = formats;
  job.with_kl = !no_kl;
  job.n_plans = n_plans;
  job.seed = (guint64) bo.seed;
  if (!bl_cli_run_cancellable (measure, &job, &error))
    return bl_cli_report_error (error);

  if (json)
    {
      print_json (&job, budget.model, budget.source);
      return 0;
    }
  used = bl_sensitivity_get_options (budget.sensitivity);
  base = bl_sensitivity_get_base_nll (budget.sensitivity);
  g_print ("model   %s\n", bl_model_get_path (budget.model));
  g_print ("budget  %d windows × %d ids of %s (sha256 %.16s…), seed %" G_GINT64_FORMAT
           ", %" G_GINT64_FORMAT " scored positions; full precision NLL %.4f (ppl %.3f)\n",
           used->n_windows, used->ctx, bl_text_source_get_name (budget.source),
           bl_text_source_get_sha256 (budget.source), bo.seed,
           bl_sensitivity_get_n_tokens (budget.sensitivity), base, exp (base));
  for (guint f = 0; f < job.tables->len; f++)
    print_table (g_ptr_array_index (job.tables, f), bl_model_get_config (budget.model)->n_layers);
  if (job.estimator != NULL)
    print_estimator (&job);
  return 0;
}
