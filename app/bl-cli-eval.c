/* bl-cli-eval.c: `bitlens-cli eval`, `plan`, `generate` and `runs`
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "config.h"

#include <math.h>

#include "bl-cli.h"
#include "bl-cli-commands.h"

typedef struct
{
  BlModel *model;
  BlBackend *backend;
  BlEngine *engine;
} Session;

static void
session_clear (Session *s)
{
  g_clear_pointer (&s->engine, bl_engine_free);
  g_clear_pointer (&s->backend, bl_backend_free);
  g_clear_object (&s->model);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Session, session_clear)

static gboolean
session_open (Session     *s,
              const char  *model_path,
              const char  *backend_name,
              int          n_threads,
              gboolean     make_engine,
              GError     **error)
{
  if ((s->model = bl_cli_load_model (model_path, error)) == NULL
      || (s->backend = bl_cli_backend_new (backend_name, n_threads, error)) == NULL)
    return FALSE;
  if (!make_engine)
    return TRUE;
  s->engine = bl_engine_new (s->model, s->backend, NULL, error);
  return s->engine != NULL;
}

static void
on_window_done (BlRun    *run,
                guint     n_done,
                gpointer  user_data)
{
  const BlPplStats *stats = bl_run_get_stats (run);
  g_autofree char *kl = NULL;
  BlKlSummary s;
  double lo, hi;

  if (bl_run_get_kl_summary (run, &s))
    kl = g_strdup_printf (", KL %.5f, top-1 %.1f%%", s.kl, 100.0 * s.top1);
  if (!bl_ppl_stats_get_ppl_ci (stats, &lo, &hi))
    lo = hi = NAN;
  if (isnan (lo))
    g_printerr ("window %u/%u: ppl %.4f%s (%.0f tok/s)\n", n_done, bl_run_get_n_windows (run),
                bl_ppl_stats_get_ppl (stats), kl ? kl : "", bl_run_get_tokens_per_second (run));
  else
    g_printerr ("window %u/%u: ppl %.4f, 95%% CI [%.4f, %.4f]%s (%.0f tok/s)\n", n_done,
                bl_run_get_n_windows (run), bl_ppl_stats_get_ppl (stats), lo, hi, kl ? kl : "",
                bl_run_get_tokens_per_second (run));
}

static gboolean
evaluate (gpointer       data,
          GCancellable  *cancellable,
          GError       **error)
{
  return bl_run_execute (data, cancellable, error);
}

/* --- plans ------------------------------------------------------------------------------------ */

typedef struct
{
  char *plan_path;
  char *weight;
  char *activation;
  char *algorithm;
  char **skip;
  char *kv;
  char *calib_text;
  int calib_windows;
  int calib_ctx;
  gint64 calib_seed;
  gboolean calib_seed_set;
} PlanOptions;

static void
plan_options_clear (PlanOptions *o)
{
  g_clear_pointer (&o->plan_path, g_free);
  g_clear_pointer (&o->weight, g_free);
  g_clear_pointer (&o->activation, g_free);
  g_clear_pointer (&o->algorithm, g_free);
  g_clear_pointer (&o->skip, g_strfreev);
  g_clear_pointer (&o->kv, g_free);
  g_clear_pointer (&o->calib_text, g_free);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (PlanOptions, plan_options_clear)

static gboolean
parse_calib_seed (const char  *name,
                  const char  *value,
                  gpointer     data,
                  GError     **error)
{
  PlanOptions *o = data;
  char *end = NULL;

  o->calib_seed = g_ascii_strtoll (value, &end, 10);
  if (end == value || *end != '\0')
    {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                   "--calib-seed takes an integer, not “%s”", value);
      return FALSE;
    }
  o->calib_seed_set = TRUE;
  return TRUE;
}

static GOptionGroup *
plan_option_group (PlanOptions *o)
{
  const GOptionEntry entries[] = {
    { "plan", 0, 0, G_OPTION_ARG_FILENAME, &o->plan_path, "Quantization plan (docs/plan-schema.md)", "FILE" },
    { "w", 0, 0, G_OPTION_ARG_STRING, &o->weight, "Weight format of every block projection (e.g. int4:g128, mxfp4)", "SPEC" },
    { "a", 0, 0, G_OPTION_ARG_STRING, &o->activation, "Activation format (int8:token dynamic, int8:tensor static, …)", "SPEC" },
    { "algorithm", 0, 0, G_OPTION_ARG_STRING, &o->algorithm, "Weight algorithm: rtn (default), gptq, awq, smoothquant, hadamard, clip-mse, bias-correction, or A+B", "NAME" },
    { "skip", 0, 0, G_OPTION_ARG_STRING_ARRAY, &o->skip, "Keep layers matching this glob in full precision (repeatable)", "PATTERN" },
    { "kv", 0, 0, G_OPTION_ARG_STRING, &o->kv, "KV-cache format (dynamic: :token or :gN)", "SPEC" },
    { "calib-text", 0, 0, G_OPTION_ARG_FILENAME, &o->calib_text, "Calibration text (a file or brown:SPLIT), for static activations and data-aware algorithms", "FILE" },
    { "calib-windows", 0, 0, G_OPTION_ARG_INT, &o->calib_windows, "Calibration windows (default: the plan's, else 32)", "N" },
    { "calib-ctx", 0, 0, G_OPTION_ARG_INT, &o->calib_ctx, "Calibration window length (default: the plan's, else min(512, model maximum))", "N" },
    { "calib-seed", 0, 0, G_OPTION_ARG_CALLBACK, parse_calib_seed, "Seed of the calibration windows (default: the plan's, else 0)", "N" },
    { NULL }
  };
  GOptionGroup *group = g_option_group_new ("plan", "Quantization plan options:",
                                            "Show the quantization plan options", o, NULL);

  g_option_group_add_entries (group, entries);
  return group;
}

static gboolean
plan_options_given (const PlanOptions *o)
{
  return o->plan_path != NULL || o->weight != NULL || o->activation != NULL
         || o->algorithm != NULL || o->skip != NULL || o->kv != NULL;
}

/* The plan the options describe: --plan FILE, or the shorthands; --kv and the calibration
 * options apply to either. */
static BlQuantPlan *
plan_from_options (const PlanOptions  *o,
                   GError            **error)
{
  g_autoptr(BlQuantPlan) plan = NULL;
  BlQuantCalibration calib;

  if (o->plan_path != NULL)
    {
      if (o->weight != NULL || o->activation != NULL || o->algorithm != NULL || o->skip != NULL)
        {
          g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_FAILED,
                       "--plan and --w/--a/--algorithm/--skip exclude each other");
          return NULL;
        }
      plan = bl_quant_plan_load (o->plan_path, error);
    }
  else
    plan = bl_quant_plan_new_from_shorthand (o->weight, o->activation, o->algorithm,
                                             (const char *const *) o->skip, error);
  if (plan == NULL)
    return NULL;
  if (o->kv != NULL && !bl_quant_plan_set_kv_cache (plan, o->kv, error))
    return NULL;
  if (o->calib_windows < 0 || o->calib_ctx < 0)
    {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                   "--calib-windows and --calib-ctx must be positive");
      return NULL;
    }
  calib = *bl_quant_plan_get_calibration (plan);
  if (o->calib_text != NULL)
    calib.text = o->calib_text;
  if (o->calib_windows > 0)
    calib.n_windows = o->calib_windows;
  if (o->calib_ctx > 0)
    calib.ctx = o->calib_ctx;
  if (o->calib_seed_set)
    calib.seed = (guint64) o->calib_seed;
  bl_quant_plan_set_calibration (plan, &calib);
  return g_steal_pointer (&plan);
}

/* A line per resolved layer, for `plan` and `eval --verbose`. */
static void
print_assignments (GPtrArray *resolved)
{
  g_print ("%-44s %-16s %-16s %-14s %8s\n", "layer", "weight", "activation", "algorithm", "bits/w");
  for (guint i = 0; i < resolved->len; i++)
    {
      const BlLayerAssignment *a = g_ptr_array_index (resolved, i);
      g_autofree char *why = a->skip >= 0 ? g_strdup_printf ("skip[%d]", a->skip)
                             : a->rule >= 0 ? g_strdup_printf ("rules[%d]", a->rule)
                             : a->rule == -1 ? g_strdup ("defaults") : g_strdup ("not named");

      g_print ("%-44s %-16s %-16s %-14s %8.4f  %s\n", a->layer,
               a->has_weight ? a->weight_spec : "none", a->has_activation ? a->activation_spec : "none",
               a->has_weight ? a->algorithm : "-", a->bits_per_weight, why);
    }
}

static void
summarize_plan (GPtrArray *resolved,
                guint     *n_weights,
                guint     *n_inputs)
{
  *n_weights = *n_inputs = 0;
  for (guint i = 0; i < resolved->len; i++)
    {
      const BlLayerAssignment *a = g_ptr_array_index (resolved, i);

      *n_weights += a->has_weight;
      *n_inputs += a->has_activation;
    }
}

/* What the worker needs to calibrate and quantize the model under a plan. */
typedef struct
{
  BlModel *model;
  BlBackend *backend;
  BlQuantPlan *plan;
  GArray *calib_ids;
  BlQuantEngine *result;
} Build;

static void
on_quant_progress (const char *stage,
                   int         done,
                   int         total,
                   gpointer    user_data)
{
  if (done != total)
    return;
  if (g_str_equal (stage, "quantize"))
    g_printerr ("quantized %d weights\n", total);
  else if (g_str_equal (stage, "calibration"))
    g_printerr ("calibration statistics over %d windows\n", total);
  else
    g_printerr ("static activation ranges over %d windows\n", total);
}

static gboolean
build (gpointer       data,
       GCancellable  *cancellable,
       GError       **error)
{
  Build *b = data;

  b->result = bl_quant_engine_new (b->model, b->backend, b->plan,
                                   b->calib_ids ? (const int32_t *) b->calib_ids->data : NULL,
                                   b->calib_ids ? b->calib_ids->len : 0, cancellable,
                                   on_quant_progress, NULL, error);
  return b->result != NULL;
}

/* Tokenizes the calibration text the plan needs, when it needs one. */
static gboolean
calibration_ids (BlQuantPlan  *plan,
                 GPtrArray    *resolved,
                 BlTokenizer  *tok,
                 GArray      **out_ids,
                 GError      **error)
{
  const char *text_name = bl_quant_plan_get_calibration (plan)->text;
  g_autoptr(BlTextSource) source = NULL;
  const char *text;
  gsize len;

  *out_ids = NULL;
  if (!bl_quant_engine_needs_calibration (resolved))
    return TRUE;
  if (text_name == NULL)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT,
                   "the plan needs calibration (a static activation spec or a data-aware "
                   "algorithm): give --calib-text FILE, or calibration.text in the plan file");
      return FALSE;
    }
  if ((source = bl_cli_open_text (text_name, error)) == NULL)
    return FALSE;
  text = bl_text_source_get_protocol_text (source, BL_PROTOCOL_GPTQ, &len);
  g_printerr ("tokenizing the calibration text %s (%" G_GSIZE_FORMAT " bytes)…\n",
              bl_text_source_get_name (source), len);
  *out_ids = bl_tokenizer_encode (tok, text, len, bl_tokenizer_get_add_bos (tok));
  return TRUE;
}

/* --- eval ------------------------------------------------------------------------------------- */

static void
add_interval (JsonBuilder *b,
              const char  *name,
              double       lo,
              double       hi)
{
  json_builder_set_member_name (b, name);
  if (isnan (lo))
    json_builder_add_null_value (b);
  else
    {
      json_builder_begin_array (b);
      json_builder_add_double_value (b, lo);
      json_builder_add_double_value (b, hi);
      json_builder_end_array (b);
    }
}

static void
print_eval_result (BlRun              *run,
                   BlModel            *model,
                   BlTextSource       *source,
                   const BlRunOptions *opts,
                   const char         *backend,
                   int                 n_threads,
                   BlQuantEngine      *qe,
                   gboolean            json)
{
  const BlPplStats *stats = bl_run_get_stats (run);
  BlQuantSize size;
  BlKlSummary kl;
  gboolean has_size = bl_run_get_quant_size (run, &size);
  gboolean has_kl = bl_run_get_kl_summary (run, &kl);
  guint n_weights = 0, n_inputs = 0;
  double lo, hi;

  if (!bl_ppl_stats_get_ppl_ci (stats, &lo, &hi))
    lo = hi = NAN;
  if (qe != NULL)
    summarize_plan (bl_quant_engine_get_assignments (qe), &n_weights, &n_inputs);

  if (json)
    {
      g_autoptr(JsonBuilder) b = json_builder_new ();

      json_builder_begin_object (b);
      bl_cli_json_add_model (b, model);
      bl_cli_json_add_string (b, "dataset", bl_text_source_get_name (source));
      bl_cli_json_add_string (b, "dataset_sha256", bl_text_source_get_sha256 (source));
      bl_cli_json_add_string (b, "protocol", bl_protocol_to_string (opts->protocol));
      bl_cli_json_add_int (b, "ctx", opts->ctx);
      if (opts->protocol == BL_PROTOCOL_HF_STRIDE)
        {
          bl_cli_json_add_int (b, "stride", opts->stride);
        }
      bl_cli_json_add_int (b, "windows", bl_run_get_n_windows (run));
      bl_cli_json_add_int (b, "scored_tokens", bl_run_get_n_scored (run));
      bl_cli_json_add_double (b, "mean_nll", bl_ppl_stats_get_mean_nll (stats));
      bl_cli_json_add_double (b, "ppl", bl_ppl_stats_get_ppl (stats));
      add_interval (b, "ppl_ci95", lo, hi);
      if (qe != NULL)
        {
          g_autofree char *plan_json = bl_quant_plan_to_json (bl_quant_engine_get_plan (qe));
          JsonNode *plan_node = json_from_string (plan_json, NULL);

          json_builder_set_member_name (b, "plan");
          json_builder_add_value (b, plan_node);
          bl_cli_json_add_int (b, "quantized_weights", n_weights);
          bl_cli_json_add_int (b, "quantized_inputs", n_inputs);
        }
      if (has_size)
        {
          bl_cli_json_add_double (b, "bits_per_weight", size.linear_bits_per_weight);
          bl_cli_json_add_double_or_null (b, "quantized_bits_per_weight", size.quantized_bits_per_weight);
          bl_cli_json_add_double (b, "model_bits_per_weight", size.model_bits_per_weight);
          bl_cli_json_add_double (b, "model_bytes", size.model_bytes);
        }
      if (has_kl)
        {
          bl_cli_json_add_double_or_null (b, "kl", kl.kl);
          add_interval (b, "kl_ci95", kl.kl_ci_low, kl.kl_ci_high);
          bl_cli_json_add_double_or_null (b, "top1", kl.top1);
          bl_cli_json_add_double_or_null (b, "delta_p", kl.delta_p);
          bl_cli_json_add_double_or_null (b, "base_ppl", exp (kl.base_nll));
          bl_cli_json_add_int (b, "baseline_windows_cached", bl_run_get_n_baseline_cached (run));
          bl_cli_json_add_int (b, "baseline_windows_computed",
                               bl_run_get_n_baseline_computed (run));
        }
      bl_cli_json_add_string (b, "backend", backend);
      bl_cli_json_add_int (b, "threads", n_threads);
      bl_cli_json_add_double (b, "seconds", bl_run_get_wall_seconds (run));
      bl_cli_json_add_double (b, "tokens_per_second", bl_run_get_tokens_per_second (run));
      bl_cli_json_add_int (b, "run_id", bl_run_get_store_id (run));
      json_builder_end_object (b);

      bl_cli_print_json (b);
      return;
    }

  g_print ("model          %s\n", bl_model_get_path (model));
  g_print ("dataset        %s (sha256 %.16s…)\n", bl_text_source_get_name (source),
           bl_text_source_get_sha256 (source));
  g_print ("protocol       %s, ctx %d", bl_protocol_to_string (opts->protocol), opts->ctx);
  if (opts->protocol == BL_PROTOCOL_HF_STRIDE)
    g_print (", stride %d", opts->stride);
  g_print ("\nwindows        %u (%" G_GINT64_FORMAT " scored tokens)\n",
           bl_run_get_n_windows (run), bl_run_get_n_scored (run));
  if (qe != NULL)
    {
      GPtrArray *resolved = bl_quant_engine_get_assignments (qe);
      const char *kv = bl_quant_plan_get_kv_cache (bl_quant_engine_get_plan (qe));

      g_print ("plan           weights of %u and inputs of %u of %u linear layers quantized%s%s\n",
               n_weights, n_inputs, resolved->len, kv ? ", KV cache " : "", kv ? kv : "");
    }
  if (has_size)
    {
      g_print ("bits/weight    %.4f (linear layers), %.4f (whole model, %.1f KiB)",
               size.linear_bits_per_weight, size.model_bits_per_weight, size.model_bytes / 1024.0);
      if (!isnan (size.quantized_bits_per_weight))
        g_print (", %.4f over the quantized layers", size.quantized_bits_per_weight);
      g_print ("\n");
    }
  g_print ("mean NLL       %.6f nats/token\n", bl_ppl_stats_get_mean_nll (stats));
  if (isnan (lo))
    g_print ("perplexity     %.4f (one window: no confidence interval)\n", bl_ppl_stats_get_ppl (stats));
  else
    g_print ("perplexity     %.4f, 95%% CI [%.4f, %.4f]\n", bl_ppl_stats_get_ppl (stats), lo, hi);
  if (has_kl)
    {
      g_print ("baseline ppl   %.4f (full precision; %u windows cached, %u computed)\n",
               exp (kl.base_nll), bl_run_get_n_baseline_cached (run),
               bl_run_get_n_baseline_computed (run));
      if (isnan (kl.kl_ci_low))
        g_print ("KL             %.6f nats/token (top-k + other buckets: a lower bound)\n", kl.kl);
      else
        g_print ("KL             %.6f nats/token, 95%% CI [%.6f, %.6f] (top-k + other buckets: a lower bound)\n",
                 kl.kl, kl.kl_ci_low, kl.kl_ci_high);
      g_print ("top-1          %.2f%% agreement with full precision\n", 100.0 * kl.top1);
      g_print ("Δp             %+.6f (mean change of p(correct token))\n", kl.delta_p);
    }
  g_print ("backend        %s, %d threads, %.2f s, %.0f scored tokens/s\n", backend, n_threads,
           bl_run_get_wall_seconds (run), bl_run_get_tokens_per_second (run));
  if (bl_run_get_store_id (run) > 0)
    g_print ("stored as run  %" G_GINT64_FORMAT "\n", bl_run_get_store_id (run));
}

int
bl_cli_eval_main (int    argc,
                  char **argv)
{
  g_autofree char *text_path = NULL;
  g_autofree char *protocol_name = NULL;
  g_autofree char *db_path = NULL;
  g_autofree char *backend_name = NULL;
  int ctx_len = 0;
  int stride = 0;
  int max_windows = 0;
  int n_threads = 0;
  int top_k = 0;
  gint64 seed = 0;
  gboolean json = FALSE;
  gboolean no_store = FALSE;
  gboolean no_kl = FALSE;
  g_auto(PlanOptions) po = { 0 };
  const GOptionEntry entries[] = {
    { "text", 't', 0, G_OPTION_ARG_FILENAME, &text_path, "Text file, or brown:train|validation|test (default brown:test)", "FILE" },
    { "protocol", 'p', 0, G_OPTION_ARG_STRING, &protocol_name, "gptq (default), hf-stride or llamacpp", "NAME" },
    { "ctx", 'c', 0, G_OPTION_ARG_INT, &ctx_len, "Window length in tokens (default: min(512, model maximum))", "N" },
    { "stride", 's', 0, G_OPTION_ARG_INT, &stride, "Stride of hf-stride (default: ctx/2)", "N" },
    { "max-windows", 'k', 0, G_OPTION_ARG_INT, &max_windows, "Evaluate only the first K windows", "K" },
    { "seed", 0, 0, G_OPTION_ARG_INT64, &seed, "Seed of the evaluation order (default 0)", "N" },
    BL_CLI_THREADS_ENTRY (n_threads),
    BL_CLI_BACKEND_ENTRY (backend_name),
    { "top-k", 0, 0, G_OPTION_ARG_INT, &top_k, "Baseline log-probabilities per position for KL (default 32)", "K" },
    { "no-kl", 0, 0, G_OPTION_ARG_NONE, &no_kl, "With a plan: skip the comparison with full precision", NULL },
    BL_CLI_DB_ENTRY (db_path),
    { "no-store", 0, 0, G_OPTION_ARG_NONE, &no_store, "Do not record the run", NULL },
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, "Print the result as JSON", NULL },
    { NULL }
  };
  g_autoptr(GOptionContext) octx = g_option_context_new ("[MODEL] — measure perplexity, and with a plan KL, top-1 and Δp against full precision");
  g_autoptr(GError) error = NULL;
  g_auto(Session) s = { 0 };
  g_autoptr(BlTextSource) source = NULL;
  g_autoptr(GArray) ids = NULL;
  g_autoptr(GArray) calib_ids = NULL;
  g_autoptr(BlRun) run = NULL;
  g_autoptr(BlStore) store = NULL;
  g_autoptr(BlQuantPlan) plan = NULL;
  g_autoptr(GPtrArray) resolved = NULL;
  g_autoptr(BlQuantEngine) qe = NULL;
  BlEngine *engine;
  BlRunOptions opts = { 0 };
  BlTokenizer *tok;
  const char *text;
  gsize text_len;

  g_option_context_add_main_entries (octx, entries, NULL);
  g_option_context_add_group (octx, plan_option_group (&po));
  if (!bl_cli_parse_model_options (octx, "eval", &argc, &argv))
    return BL_CLI_EXIT_USAGE;
  if (top_k < 0)
    return bl_cli_usage_error ("eval", "--top-k must be positive");

  if (protocol_name == NULL)
    opts.protocol = BL_PROTOCOL_GPTQ;
  else if (!bl_protocol_from_string (protocol_name, &opts.protocol))
    {
      g_set_error (&error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT,
                   "unknown protocol '%s' (valid: gptq, hf-stride, llamacpp)", protocol_name);
      return bl_cli_report_error (error);
    }
  if (n_threads < 0)
    return bl_cli_usage_error ("eval", "--threads must be positive");
  n_threads = bl_cli_n_threads (n_threads);
  if (plan_options_given (&po) && (plan = plan_from_options (&po, &error)) == NULL)
    {
      if (error->domain == G_OPTION_ERROR)
        return bl_cli_usage_error ("eval", "%s", error->message);
      return bl_cli_report_error (error);
    }

  /* The plain engine is only made without a plan; a plan's engine is the quantized one. */
  if (!session_open (&s, argc == 2 ? argv[1] : NULL, backend_name, n_threads, plan == NULL, &error)
      || (tok = bl_cli_require_tokenizer (s.model, &error)) == NULL
      || (source = bl_cli_open_text (text_path != NULL ? text_path : "brown:test", &error)) == NULL)
    return bl_cli_report_error (error);

  if (plan != NULL)
    {
      Build b = { s.model, s.backend, plan, NULL, NULL };

      if ((resolved = bl_quant_plan_resolve (plan, s.model, &error)) == NULL ||
          !calibration_ids (plan, resolved, tok, &calib_ids, &error))
        return bl_cli_report_error (error);
      /* Calibration and quantization run in a worker, so that SIGINT cancels them too. */
      b.calib_ids = calib_ids;
      if (!bl_cli_run_cancellable (build, &b, &error))
        return bl_cli_report_error (error);
      qe = b.result;
      engine = bl_quant_engine_get_engine (qe);
      {
        g_auto(GStrv) fallbacks = bl_quant_engine_get_rtn_fallbacks (qe);

        if (fallbacks[0] != NULL)
          {
            g_autofree char *list = g_strjoinv (", ", fallbacks);

            g_printerr ("bitlens-cli: %u expert weights received no calibration token and were "
                        "rounded to nearest instead: %s\n", g_strv_length (fallbacks), list);
          }
      }
    }
  else
    engine = s.engine;

  opts.ctx = ctx_len > 0 ? ctx_len : MIN (512, bl_engine_get_max_tokens (engine));
  opts.stride = stride > 0 ? stride : opts.ctx / 2;
  opts.max_windows = max_windows;
  opts.seed = (guint64) seed;

  text = bl_text_source_get_protocol_text (source, opts.protocol, &text_len);
  g_printerr ("tokenizing %s (%" G_GSIZE_FORMAT " bytes)…\n", bl_text_source_get_name (source), text_len);
  /* The whole text is tokenized as one string; BOS goes at its start when the tokenizer
   * adds one (see the protocol table in README.md). */
  ids = bl_tokenizer_encode (tok, text, text_len, bl_tokenizer_get_add_bos (tok));

  run = bl_run_new (s.model, engine, (const int32_t *) ids->data, ids->len, &opts, &error);
  if (run == NULL)
    return bl_cli_report_error (error);
  if (qe != NULL)
    {
      bl_run_set_quant_engine (run, qe);
      if (!no_kl)
        bl_run_set_kl (run, top_k);
    }

  if (!no_store)
    {
      BlRunProvenance prov = {
        .dataset_name = bl_text_source_get_name (source),
        .dataset_path = bl_text_source_get_path (source),
        .dataset_sha256 = bl_text_source_get_sha256 (source),
        .dataset_kind = bl_text_source_kind_to_string (bl_text_source_get_kind (source)),
        .backend = bl_backend_get_name (s.backend),
        .n_threads = n_threads,
      };

      store = bl_store_open (db_path, &error);
      if (store == NULL)
        return bl_cli_report_error (error);
      bl_run_set_store (run, store, &prov);
    }

  g_printerr ("evaluating %u windows of %d tokens (%s, %s backend, %d threads)…\n",
              bl_run_get_n_windows (run), opts.ctx, bl_protocol_to_string (opts.protocol),
              bl_backend_get_name (s.backend), n_threads);

  g_signal_connect (run, "window-done", G_CALLBACK (on_window_done), NULL);
  if (!bl_cli_run_cancellable (evaluate, run, &error))
    return bl_cli_report_error (error);

  print_eval_result (run, s.model, source, &opts, bl_backend_get_name (s.backend), n_threads, qe,
                     json);
  return 0;
}

/* --- plan ------------------------------------------------------------------------------------- */

int
bl_cli_plan_main (int    argc,
                  char **argv)
{
  g_autofree char *out_path = NULL;
  gboolean json = FALSE;
  gboolean list_algorithms = FALSE;
  g_auto(PlanOptions) po = { 0 };
  const GOptionEntry entries[] = {
    { "out", 'o', 0, G_OPTION_ARG_FILENAME, &out_path, "Write the plan to FILE", "FILE" },
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, "Print the plan JSON instead of the per-layer table", NULL },
    { "list-algorithms", 0, 0, G_OPTION_ARG_NONE, &list_algorithms, "List the weight algorithms and their options", NULL },
    { NULL }
  };
  g_autoptr(GOptionContext) octx = g_option_context_new ("[MODEL] — write or check a quantization plan");
  g_autoptr(GError) error = NULL;
  g_autoptr(BlModel) model = NULL;
  g_autoptr(BlQuantPlan) plan = NULL;
  g_autoptr(GPtrArray) resolved = NULL;
  BlQuantSize size;

  g_option_context_add_main_entries (octx, entries, NULL);
  g_option_context_add_group (octx, plan_option_group (&po));
  g_option_context_set_description (octx,
    "Builds a plan from --w/--a/--algorithm/--skip/--kv (or reads --plan FILE), checks it against\n"
    "MODEL (every rule and skip pattern must decide a layer) and prints what it does to each\n"
    "linear layer. The file format is docs/plan-schema.md.");
  if (!g_option_context_parse (octx, &argc, &argv, &error))
    return bl_cli_usage_error ("plan", "%s", error->message);
  if (list_algorithms)
    {
      g_print ("%s", bl_quant_algo_list_options ());
      return 0;
    }
  if (argc > 2)
    return bl_cli_usage_error ("plan", "expected at most one MODEL");
  if (!plan_options_given (&po))
    return bl_cli_usage_error ("plan", "give --plan FILE or at least one of --w, --a, --algorithm, --skip, --kv");
  if ((plan = plan_from_options (&po, &error)) == NULL)
    {
      if (error->domain == G_OPTION_ERROR)
        return bl_cli_usage_error ("plan", "%s", error->message);
      return bl_cli_report_error (error);
    }

  if ((model = bl_cli_load_model (argc == 2 ? argv[1] : NULL, &error)) == NULL ||
      (resolved = bl_quant_plan_resolve (plan, model, &error)) == NULL)
    return bl_cli_report_error (error);
  if (out_path != NULL && !bl_quant_plan_save (plan, out_path, &error))
    return bl_cli_report_error (error);

  if (json)
    {
      g_autofree char *text = bl_quant_plan_to_json (plan);

      g_print ("%s\n", text);
      return 0;
    }
  bl_quant_plan_size (resolved, model, &size);
  print_assignments (resolved);
  g_print ("\nbits/weight %.4f over the linear layers, %.4f over the whole model (%.1f KiB)",
           size.linear_bits_per_weight, size.model_bits_per_weight, size.model_bytes / 1024.0);
  if (!isnan (size.quantized_bits_per_weight))
    g_print (", %.4f over the %" G_GINT64_FORMAT " quantized weights", size.quantized_bits_per_weight,
             size.quantized_params);
  g_print ("\n");
  if (bl_quant_plan_get_kv_cache (plan) != NULL)
    g_print ("KV cache    %s\n", bl_quant_plan_get_kv_cache (plan));
  if (out_path != NULL)
    g_print ("written to  %s\n", out_path);
  return 0;
}

int
bl_cli_generate_main (int    argc,
                      char **argv)
{
  g_autofree char *prompt = NULL;
  g_autofree char *backend_name = NULL;
  int max_tokens = 64;
  int n_threads = 0;
  const GOptionEntry entries[] = {
    { "prompt", 'p', 0, G_OPTION_ARG_STRING, &prompt, "Prompt text (default: empty, BOS only)", "TEXT" },
    { "max-tokens", 'n', 0, G_OPTION_ARG_INT, &max_tokens, "Tokens to generate (default 64)", "N" },
    BL_CLI_THREADS_ENTRY (n_threads),
    BL_CLI_BACKEND_ENTRY (backend_name),
    { NULL }
  };
  g_autoptr(GOptionContext) octx = g_option_context_new ("[MODEL] — greedy generation");
  g_autoptr(GError) error = NULL;
  g_auto(Session) s = { 0 };
  g_autoptr(GArray) ids = NULL;
  g_autofree float *logits = NULL;
  g_autofree char *text = NULL;
  BlTokenizer *tok;
  int vocab, max_ctx;
  guint n_prompt;

  g_option_context_add_main_entries (octx, entries, NULL);
  if (!bl_cli_parse_model_options (octx, "generate", &argc, &argv))
    return BL_CLI_EXIT_USAGE;
  if (max_tokens < 1)
    return bl_cli_usage_error ("generate", "--max-tokens must be positive");

  if (!session_open (&s, argc == 2 ? argv[1] : NULL, backend_name, bl_cli_n_threads (n_threads), TRUE,
                     &error)
      || (tok = bl_cli_require_tokenizer (s.model, &error)) == NULL)
    return bl_cli_report_error (error);

  ids = bl_tokenizer_encode (tok, prompt ? prompt : "", -1, bl_tokenizer_get_add_bos (tok));
  if (ids->len == 0)
    {
      g_set_error (&error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT,
                   "empty prompt and the tokenizer adds no BOS: nothing to condition on");
      return bl_cli_report_error (error);
    }
  n_prompt = ids->len;
  vocab = bl_model_get_config (s.model)->vocab_size;
  max_ctx = bl_engine_get_max_tokens (s.engine);
  logits = g_new (float, (gsize) max_ctx * vocab);

  /* Greedy decoding without a KV cache: each step re-runs the window. Quadratic, and
   * fine for the short generations this command is for. */
  for (int step = 0; step < max_tokens && (int) ids->len < max_ctx; step++)
    {
      const float *last;
      int32_t best = 0;

      if (!bl_engine_forward (s.engine, (const int32_t *) ids->data, ids->len, logits, NULL, &error))
        return bl_cli_report_error (error);
      last = logits + (gsize) (ids->len - 1) * vocab;
      for (int v = 1; v < vocab; v++)
        if (last[v] > last[best])
          best = v;
      g_array_append_val (ids, best);
      if (best == bl_tokenizer_get_eos_id (tok))
        break;
    }

  /* Decode prompt and continuation together so that word boundaries come out right,
   * skipping a leading BOS. */
  {
    guint first = (bl_tokenizer_get_add_bos (tok) && n_prompt > 0
                   && g_array_index (ids, int32_t, 0) == bl_tokenizer_get_bos_id (tok)) ? 1 : 0;

    text = bl_tokenizer_decode (tok, (const int32_t *) ids->data + first, ids->len - first);
  }
  g_print ("%s\n", text);
  g_printerr ("ids:");
  for (guint i = 0; i < ids->len; i++)
    g_printerr (" %d", g_array_index (ids, int32_t, i));
  g_printerr ("\n");
  return 0;
}

int
bl_cli_runs_main (int    argc,
                  char **argv)
{
  g_autofree char *db_path = NULL;
  const GOptionEntry entries[] = {
    BL_CLI_DB_ENTRY (db_path),
    { NULL }
  };
  g_autoptr(GOptionContext) octx = g_option_context_new ("— list the recorded runs");
  g_autoptr(GError) error = NULL;
  g_autoptr(BlStore) store = NULL;
  g_autoptr(GPtrArray) runs = NULL;

  g_option_context_add_main_entries (octx, entries, NULL);
  if (!g_option_context_parse (octx, &argc, &argv, &error))
    return bl_cli_usage_error ("runs", "%s", error->message);

  store = bl_store_open (db_path, &error);
  if (store == NULL)
    return bl_cli_report_error (error);
  runs = bl_store_list_runs (store, NULL, &error);
  if (runs == NULL)
    return bl_cli_report_error (error);

  g_print ("%-5s %-20s %-11s %-10s %5s %7s %10s %-24s %s\n", "id", "started", "status", "protocol",
           "ctx", "windows", "ppl", "model", "dataset");
  for (guint i = 0; i < runs->len; i++)
    {
      const BlStoredRun *r = g_ptr_array_index (runs, i);
      g_autofree char *model = g_path_get_basename (r->model_path ? r->model_path : "?");

      g_print ("%-5" G_GINT64_FORMAT " %-20s %-11s %-10s %5d %7d %10.4f %-24s %s\n", r->id,
               r->started_at, r->status, r->protocol, r->ctx, r->n_windows, r->ppl, model,
               r->dataset_name);
    }
  return 0;
}
