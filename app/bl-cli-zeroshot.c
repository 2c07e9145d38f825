/* bl-cli-zeroshot.c: `bitlens-cli zeroshot`, zero-shot accuracy and calibration on a task
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "config.h"

#include "bl-mc.h"
#include "bl-cli.h"
#include "bl-cli-commands.h"

/* The task files live in $BITLENS_DATASETS_DIR, else in $BITLENS_SHARED_DIR/datasets, else
 * in ../shared/datasets beside the source tree (the layout of the shared data). */
static char *
default_datasets_dir (void)
{
  const char *env = g_getenv ("BITLENS_DATASETS_DIR");

  if (env != NULL && *env != '\0')
    return g_strdup (env);
  env = g_getenv ("BITLENS_SHARED_DIR");
  if (env != NULL && *env != '\0')
    return g_build_filename (env, "datasets", NULL);
  return g_build_filename (BITLENS_SOURCE_DIR, "..", "shared", "datasets", NULL);
}

/* The quantized engine of --plan or the --w/--a/--algorithm shorthands; the plan's
 * calibration text (or --calib-text) is read only when the plan needs calibration. */
static BlQuantEngine *
quant_engine_new (BlModel      *model,
                  BlBackend    *backend,
                  const char   *plan_path,
                  const char   *weight,
                  const char   *activation,
                  const char   *algorithm,
                  const char   *calib_text,
                  char        **out_plan_json,
                  GError      **error)
{
  g_autoptr(BlQuantPlan) plan = NULL;
  g_autoptr(GPtrArray) resolved = NULL;
  g_autoptr(GArray) ids = NULL;
  const char *text_name;

  plan = plan_path != NULL ? bl_quant_plan_load (plan_path, error)
                           : bl_quant_plan_new_from_shorthand (weight, activation, algorithm,
                                                               NULL, error);
  if (plan == NULL || (resolved = bl_quant_plan_resolve (plan, model, error)) == NULL)
    return NULL;
  text_name = calib_text != NULL ? calib_text : bl_quant_plan_get_calibration (plan)->text;
  if (bl_quant_engine_needs_calibration (resolved))
    {
      g_autoptr(BlTextSource) source = NULL;

      if (text_name == NULL)
        {
          g_set_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT,
                       "the plan needs calibration (a static activation spec or a data-aware "
                       "algorithm): give --calib-text FILE, or calibration.text in the plan");
          return NULL;
        }
      if ((source = bl_cli_open_text (text_name, error)) == NULL)
        return NULL;
      ids = bl_cli_encode_text (bl_model_get_tokenizer (model), source);
    }
  *out_plan_json = bl_quant_plan_to_json (plan);
  g_printerr ("quantizing the model under the plan…\n");
  return bl_quant_engine_new (model, backend, plan, ids ? (const int32_t *) ids->data : NULL,
                              ids ? ids->len : 0, NULL, NULL, NULL, error);
}

static void
on_item_done (BlZeroshot *zs,
              guint       n_done,
              gpointer    user_data)
{
  guint report_every = GPOINTER_TO_UINT (user_data);
  guint n = bl_zeroshot_get_n_items (zs);
  BlZeroshotMetrics m;

  if (n_done % report_every != 0 && n_done != n)
    return;
  bl_zeroshot_get_metrics (zs, &m);
  g_printerr ("item %u/%u: acc %.4f, 95%% CI [%.4f, %.4f] (%.1f items/s)\n", n_done, n, m.acc,
              m.acc_ci_low, m.acc_ci_high,
              n_done / MAX (bl_zeroshot_get_wall_seconds (zs), 1e-9));
}

static gboolean
score (gpointer       data,
       GCancellable  *cancellable,
       GError       **error)
{
  return bl_zeroshot_execute (data, cancellable, error);
}

static void
print_json (BlModel                 *model,
            BlMcSet                 *set,
            BlZeroshot              *zs,
            const BlZeroshotMetrics *m,
            const BlZeroshotOptions *opts,
            const char              *backend,
            int                      n_threads,
            gint64                   store_id,
            const char              *plan_json)
{
  g_autoptr(JsonBuilder) b = json_builder_new ();
  BlMcTask task = bl_mc_set_get_task (set);
  gboolean choice = m->n_choice_items > 0;

  json_builder_begin_object (b);
  bl_cli_json_add_model (b, model);
  bl_cli_json_add_string (b, "task", bl_mc_task_to_string (task));
  bl_cli_json_add_string (b, "dataset", bl_mc_set_get_name (set));
  bl_cli_json_add_string (b, "dataset_sha256", bl_mc_set_get_sha256 (set));
  json_builder_set_member_name (b, "plan");
  if (plan_json != NULL)
    json_builder_add_value (b, json_from_string (plan_json, NULL));
  else
    json_builder_add_null_value (b);
  bl_cli_json_add_boolean (b, "add_bos", opts->add_bos);
  bl_cli_json_add_int (b, "items", bl_zeroshot_get_n_items (zs));
  bl_cli_json_add_int (b, "items_done", m->n_items);
  bl_cli_json_add_double_or_null (b, "acc", m->acc);
  bl_cli_json_add_double_or_null (b, "acc_stderr", m->acc_stderr);
  json_builder_set_member_name (b, "acc_ci95");
  json_builder_begin_array (b);
  json_builder_add_double_value (b, m->acc_ci_low);
  json_builder_add_double_value (b, m->acc_ci_high);
  json_builder_end_array (b);
  if (bl_mc_task_reports_acc_norm (task))
    {
      bl_cli_json_add_double_or_null (b, "acc_norm", m->acc_norm);
      bl_cli_json_add_double_or_null (b, "acc_norm_stderr", m->acc_norm_stderr);
    }
  if (choice)
    {
      bl_cli_json_add_double_or_null (b, "chance", m->chance);
      bl_cli_json_add_double_or_null (b, "ece", m->ece);
      bl_cli_json_add_int (b, "ece_bins", m->ece_bins);
      bl_cli_json_add_double_or_null (b, "brier", m->brier);
      bl_cli_json_add_double_or_null (b, "balance", m->balance);
      bl_cli_json_add_double_or_null (b, "mean_confidence", m->mean_confidence);
    }
  else
    bl_cli_json_add_double_or_null (b, "ppl", m->ppl);
  bl_cli_json_add_double_or_null (b, "mean_gold_loglik", m->mean_loglik);
  bl_cli_json_add_string (b, "backend", backend);
  bl_cli_json_add_int (b, "threads", n_threads);
  bl_cli_json_add_double_or_null (b, "seconds", bl_zeroshot_get_wall_seconds (zs));
  bl_cli_json_add_int (b, "result_id", store_id);
  json_builder_end_object (b);

  bl_cli_print_json (b);
}

static void
print_table (BlModel                 *model,
             BlMcSet                 *set,
             BlZeroshot              *zs,
             const BlZeroshotMetrics *m,
             const BlZeroshotOptions *opts,
             const char              *backend,
             int                      n_threads,
             gint64                   store_id,
             const char              *plan_json)
{
  BlMcTask task = bl_mc_set_get_task (set);
  g_autoptr(JsonNode) plan = plan_json != NULL ? json_from_string (plan_json, NULL) : NULL;
  g_autofree char *compact = plan != NULL ? json_to_string (plan, FALSE) : NULL;

  g_print ("model          %s\n", bl_model_get_path (model));
  g_print ("plan           %s\n", compact != NULL ? compact : "none (full precision)");
  g_print ("task           %s: %s (sha256 %.16s…), BOS %s\n", bl_mc_task_to_string (task),
           bl_mc_set_get_name (set), bl_mc_set_get_sha256 (set), opts->add_bos ? "on" : "off");
  g_print ("items          %u of %u scored\n", m->n_items, bl_zeroshot_get_n_items (zs));
  g_print ("acc            %.4f ± %.4f (95%% Wilson CI [%.4f, %.4f])\n", m->acc, m->acc_stderr,
           m->acc_ci_low, m->acc_ci_high);
  if (bl_mc_task_reports_acc_norm (task))
    g_print ("acc_norm       %.4f ± %.4f\n", m->acc_norm, m->acc_norm_stderr);
  if (m->n_choice_items > 0)
    {
      g_print ("chance         %.4f\n", m->chance);
      g_print ("ECE            %.4f (%u equal-width bins)\n", m->ece, m->ece_bins);
      g_print ("Brier          %.4f (multi-class; uniform guessing with 1/k scores 1 − 1/k)\n",
               m->brier);
      g_print ("Balance        %+.4f (acc − mean confidence %.4f; < 0 over-confident)\n",
               m->balance, m->mean_confidence);
    }
  else
    g_print ("ppl            %.4f (of the target word)\n", m->ppl);
  g_print ("backend        %s, %d threads, %.2f s\n", backend, n_threads,
           bl_zeroshot_get_wall_seconds (zs));
  if (store_id > 0)
    g_print ("stored as      zero-shot result %" G_GINT64_FORMAT "\n", store_id);
}

int
bl_cli_zeroshot_main (int    argc,
                      char **argv)
{
  g_autofree char *task_name = NULL;
  g_autofree char *file = NULL;
  g_autofree char *datasets_dir = NULL;
  g_autofree char *db_path = NULL;
  g_autofree char *backend_name = NULL;
  g_autofree char *plan_path = NULL;
  g_autofree char *weight = NULL;
  g_autofree char *activation = NULL;
  g_autofree char *algorithm = NULL;
  g_autofree char *calib_text = NULL;
  g_autofree char *plan_json = NULL;
  int limit = 0;
  int ece_bins = 0;
  int n_threads = 0;
  gint64 seed = 0;
  gboolean json = FALSE;
  gboolean no_store = FALSE;
  gboolean bos = FALSE;
  gboolean no_bos = FALSE;
  const GOptionEntry entries[] = {
    { "task", 't', 0, G_OPTION_ARG_STRING, &task_name, "piqa, arc-easy, arc-challenge, winogrande, boolq or lambada", "NAME" },
    { "file", 'f', 0, G_OPTION_ARG_FILENAME, &file, "The task's JSONL file (default: the task's file in the datasets directory)", "FILE" },
    { "datasets", 0, 0, G_OPTION_ARG_FILENAME, &datasets_dir, "Datasets directory (default $BITLENS_DATASETS_DIR, $BITLENS_SHARED_DIR/datasets or ../shared/datasets)", "DIR" },
    { "limit", 'n', 0, G_OPTION_ARG_INT, &limit, "Score only the first N items", "N" },
    { "bos", 0, 0, G_OPTION_ARG_NONE, &bos, "Put BOS in front of every request (default: as the tokenizer's add_bos_token)", NULL },
    { "no-bos", 0, 0, G_OPTION_ARG_NONE, &no_bos, "No BOS (lm-evaluation-harness's default)", NULL },
    { "ece-bins", 0, 0, G_OPTION_ARG_INT, &ece_bins, "Confidence bins of the ECE (default 15)", "M" },
    { "plan", 0, 0, G_OPTION_ARG_FILENAME, &plan_path, "Score the model quantized under this plan (docs/plan-schema.md)", "FILE" },
    { "w", 0, 0, G_OPTION_ARG_STRING, &weight, "Shorthand plan: weight format of every block projection", "SPEC" },
    { "a", 0, 0, G_OPTION_ARG_STRING, &activation, "Shorthand plan: activation format", "SPEC" },
    { "algorithm", 0, 0, G_OPTION_ARG_STRING, &algorithm, "Shorthand plan: weight algorithm (default rtn)", "NAME" },
    { "calib-text", 0, 0, G_OPTION_ARG_FILENAME, &calib_text, "Calibration text when the plan needs one (a file or brown:SPLIT)", "FILE" },
    { "seed", 0, 0, G_OPTION_ARG_INT64, &seed, "Seed of the evaluation order (default 0)", "N" },
    BL_CLI_THREADS_ENTRY (n_threads),
    BL_CLI_BACKEND_ENTRY (backend_name),
    BL_CLI_DB_ENTRY (db_path),
    { "no-store", 0, 0, G_OPTION_ARG_NONE, &no_store, "Do not record the result", NULL },
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, "Print the result as JSON", NULL },
    { NULL }
  };
  g_autoptr(GOptionContext) octx = g_option_context_new ("[MODEL] — zero-shot accuracy on a task");
  g_autoptr(GError) error = NULL;
  g_autoptr(BlModel) model = NULL;
  g_autoptr(BlBackend) backend = NULL;
  g_autoptr(BlEngine) engine = NULL;
  g_autoptr(BlQuantEngine) quant = NULL;
  g_autoptr(BlMcSet) set = NULL;
  g_autoptr(BlZeroshot) zs = NULL;
  g_autoptr(BlStore) store = NULL;
  g_autoptr(GError) run_error = NULL;
  BlZeroshotOptions opts = { 0 };
  BlZeroshotMetrics m;
  BlTokenizer *tok;
  BlEngine *scoring_engine;
  BlMcTask task;
  gint64 store_id = 0;
  gboolean ok;
  int status = 0;

  g_option_context_add_main_entries (octx, entries, NULL);
  g_option_context_set_description (octx,
    "Each choice is scored by the summed log-likelihood of its continuation, with the\n"
    "prompts of lm-evaluation-harness (see datasets/bl-mc.c). Prints accuracy with a 95%\n"
    "Wilson interval, acc_norm where the harness reports it, and the calibration of the\n"
    "option probabilities (softmax over the choices): ECE, Brier and Balance score.");
  if (!bl_cli_parse_model_options (octx, "zeroshot", &argc, &argv))
    return BL_CLI_EXIT_USAGE;
  if (task_name == NULL)
    return bl_cli_usage_error ("zeroshot", "--task is required");
  if (!bl_mc_task_from_string (task_name, &task))
    return bl_cli_usage_error ("zeroshot", "unknown task '%s' (valid: piqa, arc-easy, "
                               "arc-challenge, winogrande, boolq, lambada)", task_name);
  if (limit < 0 || ece_bins < 0 || n_threads < 0)
    return bl_cli_usage_error ("zeroshot", "--limit, --ece-bins and --threads must be positive");
  if (bos && no_bos)
    return bl_cli_usage_error ("zeroshot", "--bos and --no-bos exclude each other");
  if (plan_path != NULL && (weight != NULL || activation != NULL || algorithm != NULL))
    return bl_cli_usage_error ("zeroshot", "--plan and --w/--a/--algorithm exclude each other");
  n_threads = bl_cli_n_threads (n_threads);

  if ((model = bl_cli_load_model (argc == 2 ? argv[1] : NULL, &error)) == NULL
      || (backend = bl_cli_backend_new (backend_name, n_threads, &error)) == NULL
      || (tok = bl_cli_require_tokenizer (model, &error)) == NULL)
    return bl_cli_report_error (error);
  /* A quantized engine is scored exactly like the full-precision one. */
  if (plan_path != NULL || weight != NULL || activation != NULL || algorithm != NULL)
    {
      quant = quant_engine_new (model, backend, plan_path, weight, activation, algorithm,
                                calib_text, &plan_json, &error);
      if (quant == NULL)
        return bl_cli_report_error (error);
      scoring_engine = bl_quant_engine_get_engine (quant);
    }
  else if ((engine = bl_engine_new (model, backend, NULL, &error)) == NULL)
    return bl_cli_report_error (error);
  else
    scoring_engine = engine;

  if (file != NULL)
    set = bl_mc_set_load (task, file, &error);
  else
    {
      if (datasets_dir == NULL)
        datasets_dir = default_datasets_dir ();
      set = bl_mc_set_load_default (task, datasets_dir, &error);
    }
  if (set == NULL)
    return bl_cli_report_error (error);

  opts.add_bos = bos || (!no_bos && bl_tokenizer_get_add_bos (tok));
  opts.limit = (guint) limit;
  opts.ece_bins = (guint) ece_bins;
  opts.seed = (guint64) seed;
  zs = bl_zeroshot_new (scoring_engine, tok, bl_mc_set_get_items (set), &opts, &error);
  if (zs == NULL)
    return bl_cli_report_error (error);

  if (!no_store && (store = bl_store_open (db_path, &error)) == NULL)
    return bl_cli_report_error (error);

  g_printerr ("scoring %u items of %s (%s backend, %d threads)…\n", bl_zeroshot_get_n_items (zs),
              bl_mc_set_get_name (set), bl_backend_get_name (backend), n_threads);

  g_signal_connect (zs, "item-done", G_CALLBACK (on_item_done),
                    GUINT_TO_POINTER (MAX (1, bl_zeroshot_get_n_items (zs) / 20)));
  ok = bl_cli_run_cancellable (score, zs, &run_error);

  /* A cancelled or failed evaluation is still recorded, with the items it finished, so
   * that the store says what happened. */
  if (store != NULL)
    {
      BlZeroshotProvenance prov = {
        .task = bl_mc_task_to_string (task),
        .dataset_name = bl_mc_set_get_name (set),
        .dataset_path = bl_mc_set_get_path (set),
        .dataset_sha256 = bl_mc_set_get_sha256 (set),
        .dataset_kind = bl_mc_format_to_string (bl_mc_set_get_format (set)),
        .backend = bl_backend_get_name (backend),
        .threads = n_threads,
        .plan_json = plan_json,
      };
      const char *result_status = ok ? "finished"
                                  : g_error_matches (run_error, G_IO_ERROR, G_IO_ERROR_CANCELLED)
                                  ? "cancelled" : "failed";

      store_id = bl_zeroshot_store (zs, store, &prov, result_status,
                                    ok ? NULL : run_error->message, &error);
      if (store_id == 0)
        {
          status = bl_cli_report_error (error);
          g_clear_error (&error);
        }
    }

  if (!ok)
    return bl_cli_report_error (run_error);
  if (status != 0)
    return status;

  bl_zeroshot_get_metrics (zs, &m);
  if (json)
    print_json (model, set, zs, &m, &opts, bl_backend_get_name (backend), n_threads, store_id,
                plan_json);
  else
    print_table (model, set, zs, &m, &opts, bl_backend_get_name (backend), n_threads, store_id,
                 plan_json);
  return 0;
}
