/* bl-cli-sensitivity.c: `bitlens-cli sensitivity`, per-layer sensitivity and the estimator
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "config.h"

#include <glib-unix.h>
#include <json-glib/json-glib.h>
#include <math.h>
#include <signal.h>
#include <string.h>

#include "bitlens.h"
#include "bl-brown.h"
#include "bl-estimator.h"
#include "bl-sensitivity.h"
#include "bl-text-source.h"
#include "bl-cli.h"
#include "bl-cli-commands.h"

/* --text takes a file, or brown:SPLIT for a split of the Brown Corpus; the default is
 * brown:test, as for `eval`. */
static BlTextSource *
open_text (const char  *spec,
           GError     **error)
{
  if (spec == NULL)
    spec = "brown:test";
  if (g_str_has_prefix (spec, "brown:"))
    {
      g_autofree char *dir = bl_brown_default_dir ();

      return bl_brown_load_split (dir, spec + strlen ("brown:"), error);
    }
  return bl_text_source_new_from_file (spec, bl_text_source_kind_from_path (spec), error);
}

typedef struct
{
  /* inputs */
  BlSensitivity *sens;
  BlStore *store;
  char **formats;
  gboolean with_kl;
  int n_plans;
  guint64 seed;
  GCancellable *cancellable;

  /* outputs */
  GPtrArray *tables;             /* GPtrArray of BlLayerSensitivity, one per format */
  BlEstimator *estimator;
  gboolean have_fit;
  BlEstimatorFit fit;
  GError *error;

  GMainLoop *loop;
} Job;

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
run_estimator (Job     *job,
               GError **error)
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
      if (!bl_sensitivity_measure_plan (job->sens, plan, &m, job->cancellable, error))
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

static gpointer
job_thread (gpointer data)
{
  Job *job = data;

  if (!bl_sensitivity_prepare (job->sens, job->cancellable, &job->error))
    goto out;
  job->tables = g_ptr_array_new_with_free_func ((GDestroyNotify) g_ptr_array_unref);
  for (guint f = 0; job->formats[f] != NULL; f++)
    {
      GPtrArray *table;

      g_printerr ("format %s\n", job->formats[f]);
      table = bl_sensitivity_compute (job->sens, job->formats[f], job->with_kl,
                                      job->cancellable, &job->error);
      if (table == NULL)
        goto out;
      g_ptr_array_add (job->tables, table);
    }
  if (job->n_plans > 0 && job->with_kl)
    run_estimator (job, &job->error);

out:
  g_main_loop_quit (job->loop);
  return NULL;
}

static gboolean
on_signal (gpointer user_data)
{
  Job *job = user_data;

  g_printerr ("bitlens-cli: cancelling…\n");
  g_cancellable_cancel (job->cancellable);
  return G_SOURCE_CONTINUE;
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
add_number (JsonBuilder *b,
            const char  *name,
            double       value)
{
  json_builder_set_member_name (b, name);
  if (isfinite (value))
    json_builder_add_double_value (b, value);
  else
    json_builder_add_null_value (b);
}

static void
print_json (Job          *job,
            BlModel      *model,
            BlTextSource *source)
{
  const BlSensitivityOptions *opts = bl_sensitivity_get_options (job->sens);
  g_autoptr(JsonBuilder) b = json_builder_new ();
  g_autoptr(JsonGenerator) gen = json_generator_new ();
  g_autoptr(JsonNode) root = NULL;
  g_autofree char *text = NULL;
  double base = bl_sensitivity_get_base_nll (job->sens);

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "model");
  json_builder_add_string_value (b, bl_model_get_path (model));
  json_builder_set_member_name (b, "budget");
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "dataset");
  json_builder_add_string_value (b, bl_text_source_get_name (source));
  json_builder_set_member_name (b, "dataset_sha256");
  json_builder_add_string_value (b, bl_text_source_get_sha256 (source));
  json_builder_set_member_name (b, "windows");
  json_builder_add_int_value (b, opts->n_windows);
  json_builder_set_member_name (b, "ctx");
  json_builder_add_int_value (b, opts->ctx);
  json_builder_set_member_name (b, "seed");
  json_builder_add_int_value (b, (gint64) opts->seed);
  json_builder_set_member_name (b, "tokens");
  json_builder_add_int_value (b, bl_sensitivity_get_n_tokens (job->sens));
  add_number (b, "base_nll", base);
  add_number (b, "base_ppl", exp (base));
  json_builder_set_member_name (b, "budget_id");
  json_builder_add_int_value (b, bl_sensitivity_get_budget_id (job->sens));
  json_builder_end_object (b);

  json_builder_set_member_name (b, "formats");
  json_builder_begin_array (b);
  for (guint f = 0; f < job->tables->len; f++)
    {
      GPtrArray *table = g_ptr_array_index (job->tables, f);

      json_builder_begin_object (b);
      json_builder_set_member_name (b, "weight_spec");
      json_builder_add_string_value (b, ((BlLayerSensitivity *) table->pdata[0])->weight_spec);
      json_builder_set_member_name (b, "layers");
      json_builder_begin_array (b);
      for (guint i = 0; i < table->len; i++)
        {
          const BlLayerSensitivity *s = g_ptr_array_index (table, i);

          json_builder_begin_object (b);
          json_builder_set_member_name (b, "name");
          json_builder_add_string_value (b, s->name);
          json_builder_set_member_name (b, "kind");
          json_builder_add_string_value (b, bl_layer_kind_to_string (s->kind));
          json_builder_set_member_name (b, "block");
          json_builder_add_int_value (b, s->block);
          add_number (b, "qsnr_db", s->qsnr_db);
          add_number (b, "rel_err", s->rel_err);
          add_number (b, "out_err", s->out_err);
          add_number (b, "hessian_trace", s->hessian_trace);
          add_number (b, "omega", s->omega);
          add_number (b, "kl", s->kl);
          add_number (b, "dnll", s->dnll);
          add_number (b, "top1", s->top1);
          add_number (b, "lim", s->lim);
          add_number (b, "zd", s->zd);
          add_number (b, "zd_block", s->zd_block);
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
            add_number (b, rho[i].name, rho[i].rho);
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
          add_number (b, "predicted_dppl", pd);
          add_number (b, "measured_dppl", md);
          add_number (b, "predicted_kl", pk);
          add_number (b, "measured_kl", mk);
          json_builder_end_object (b);
        }
      json_builder_end_array (b);
      if (job->have_fit)
        {
          add_number (b, "a_kl", job->fit.a_kl);
          add_number (b, "a_nll", job->fit.a_nll);
          add_number (b, "rmse_dppl", job->fit.rmse_dppl);
          add_number (b, "loo_rmse_dppl", job->fit.loo_rmse_dppl);
          add_number (b, "raw_rmse_dppl", job->fit.raw_rmse_dppl);
          add_number (b, "mae_dppl", job->fit.mae_dppl);
          add_number (b, "mean_rel_err_dppl", job->fit.mean_rel_err_dppl);
          add_number (b, "spearman_dppl", job->fit.spearman_dppl);
          add_number (b, "rmse_kl", job->fit.rmse_kl);
          add_number (b, "spearman_kl", job->fit.spearman_kl);
        }
      json_builder_end_object (b);
    }
  json_builder_end_object (b);

  root = json_builder_get_root (b);
  json_generator_set_root (gen, root);
  json_generator_set_pretty (gen, TRUE);
  text = json_generator_to_data (gen, NULL);
  g_print ("%s\n", text);
}

int
bl_cli_sensitivity_main (int    argc,
                         char **argv)
{
  g_auto(GStrv) formats = NULL;
  g_autofree char *text_path = NULL;
  g_autofree char *db_path = NULL;
  g_autofree char *backend_name = NULL;
  int n_windows = 0;
  int ctx = 0;
  int n_threads = 0;
  int n_plans = 0;
  gint64 seed = 0;
  gboolean no_kl = FALSE;
  gboolean no_store = FALSE;
  gboolean json = FALSE;
  const GOptionEntry entries[] = {
    { "format", 'f', 0, G_OPTION_ARG_STRING_ARRAY, &formats, "Weight format spec (repeatable), e.g. int4:g32", "SPEC" },
    { "text", 't', 0, G_OPTION_ARG_FILENAME, &text_path, "Budget text: a file, or brown:train|validation|test (default brown:test)", "FILE" },
    { "windows", 'k', 0, G_OPTION_ARG_INT, &n_windows, "Windows in the budget (default 8)", "N" },
    { "ctx", 'c', 0, G_OPTION_ARG_INT, &ctx, "Ids per window (default: min(256, model maximum))", "N" },
    { "seed", 0, 0, G_OPTION_ARG_INT64, &seed, "Seed of the window starts and the random plans (default 0)", "N" },
    { "no-kl", 0, 0, G_OPTION_ARG_NONE, &no_kl, "Skip the one-at-a-time KL (weight, Hessian-proxy, LIM and ZD only)", NULL },
    { "plans", 'p', 0, G_OPTION_ARG_INT, &n_plans, "Measure N random mixed plans over the --format menu and calibrate the estimator", "N" },
    { "threads", 'j', 0, G_OPTION_ARG_INT, &n_threads, "CPU threads (default: all cores)", "N" },
    { "backend", 'b', 0, G_OPTION_ARG_STRING, &backend_name, "cpu, cuda or auto (default auto)", "NAME" },
    { "db", 0, 0, G_OPTION_ARG_FILENAME, &db_path, "SQLite store (default $XDG_DATA_HOME/bitlens/bitlens.db)", "PATH" },
    { "no-store", 0, 0, G_OPTION_ARG_NONE, &no_store, "Neither read nor write the sensitivity cache", NULL },
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, "Print the result as JSON", NULL },
    { NULL }
  };
  g_autoptr(GOptionContext) octx = g_option_context_new ("[MODEL] — per-layer sensitivity to a weight format");
  g_autoptr(GError) error = NULL;
  g_autoptr(BlModel) model = NULL;
  g_autoptr(BlBackend) backend = NULL;
  g_autoptr(BlTextSource) source = NULL;
  g_autoptr(GArray) ids = NULL;
  g_autoptr(BlSensitivity) sens = NULL;
  g_autoptr(BlStore) store = NULL;
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GMainLoop) loop = NULL;
  g_autofree char *model_path = NULL;
  BlSensitivityOptions opts = { 0 };
  BlTokenizer *tok;
  const char *text;
  gsize text_len;
  Job job = { 0 };
  GThread *thread;
  guint sigint_id, sigterm_id;
  int status = 0;

  g_option_context_add_main_entries (octx, entries, NULL);
  g_option_context_set_description (octx,
    "Ranks the linear layers by the KL divergence the model's output takes when only that\n"
    "layer is quantized (one-at-a-time, over a small window budget), beside cheap proxies:\n"
    "weight QSNR, the calibration-weighted output error, HAWQ's Hessian-trace Ω, LIM and ZD.\n"
    "With --plans it measures random mixed plans and reports the estimator's predicted\n"
    "against measured Δppl. Results are cached in the store per budget and format.");
  if (!g_option_context_parse (octx, &argc, &argv, &error))
    return bl_cli_usage_error ("sensitivity", "%s", error->message);
  if (argc > 2)
    return bl_cli_usage_error ("sensitivity", "expected at most one MODEL");
  if (formats == NULL || formats[0] == NULL)
    return bl_cli_usage_error ("sensitivity", "--format is required");
  if (n_windows < 0 || ctx < 0 || n_threads < 0 || n_plans < 0)
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
  if (n_threads == 0)
    n_threads = (int) g_get_num_processors ();

  model_path = argc == 2 ? g_strdup (argv[1]) : bl_cli_default_model_path ();
  if ((model = bl_model_load (model_path, NULL, &error)) == NULL
      || (backend = bl_backend_new (backend_name ? backend_name : "auto", n_threads,
                                    &error)) == NULL)
    return bl_cli_report_error (error);
  if ((tok = bl_model_get_tokenizer (model)) == NULL)
    {
      g_set_error (&error, BL_ERROR, BL_ERROR_NOT_FOUND, "%s: the model has no tokenizer.json",
                   bl_model_get_path (model));
      return bl_cli_report_error (error);
    }
  if ((source = open_text (text_path, &error)) == NULL)
    return bl_cli_report_error (error);
  text = bl_text_source_get_protocol_text (source, BL_PROTOCOL_GPTQ, &text_len);
  ids = bl_tokenizer_encode (tok, text, text_len, bl_tokenizer_get_add_bos (tok));

  opts.n_windows = n_windows;
  opts.ctx = ctx;
  opts.seed = (guint64) seed;
  opts.n_threads = n_threads;
  opts.dataset_name = bl_text_source_get_name (source);
  opts.dataset_sha256 = bl_text_source_get_sha256 (source);
  sens = bl_sensitivity_new (model, backend, (const int32_t *) ids->data, ids->len, &opts, &error);
  if (sens == NULL)
    return bl_cli_report_error (error);
  if (!no_store)
    {
      if ((store = bl_store_open (db_path, &error)) == NULL)
        return bl_cli_report_error (error);
      bl_sensitivity_set_store (sens, store);
    }
  bl_sensitivity_set_progress (sens, on_progress, NULL);

  job.sens = sens;
  job.store = store;
  job.formats = formats;
  job.with_kl = !no_kl;
  job.n_plans = n_plans;
  job.seed = (guint64) seed;
  job.cancellable = cancellable;
  loop = g_main_loop_new (NULL, FALSE);
  job.loop = loop;
  sigint_id = g_unix_signal_add (SIGINT, on_signal, &job);
  sigterm_id = g_unix_signal_add (SIGTERM, on_signal, &job);
  thread = g_thread_new ("sensitivity", job_thread, &job);
  g_main_loop_run (loop);
  g_thread_join (thread);
  g_source_remove (sigint_id);
  g_source_remove (sigterm_id);

  if (job.error != NULL)
    status = bl_cli_report_error (job.error);
  else if (json)
    print_json (&job, model, source);
  else
    {
      const BlSensitivityOptions *used = bl_sensitivity_get_options (sens);
      double base = bl_sensitivity_get_base_nll (sens);

      g_print ("model   %s\n", bl_model_get_path (model));
      g_print ("budget  %d windows × %d ids of %s (sha256 %.16s…), seed %" G_GINT64_FORMAT
               ", %" G_GINT64_FORMAT " scored positions; full precision NLL %.4f (ppl %.3f)\n",
               used->n_windows, used->ctx, bl_text_source_get_name (source),
               bl_text_source_get_sha256 (source), seed, bl_sensitivity_get_n_tokens (sens),
               base, exp (base));
      for (guint f = 0; f < job.tables->len; f++)
        print_table (g_ptr_array_index (job.tables, f), bl_model_get_config (model)->n_layers);
      if (job.estimator != NULL)
        print_estimator (&job);
    }

  g_clear_pointer (&job.tables, g_ptr_array_unref);
  g_clear_object (&job.estimator);
  g_clear_error (&job.error);
  return status;
}
