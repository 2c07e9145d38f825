/* bl-cli-eval.c: `bitlens-cli eval`, `generate` and `runs`
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
#include "bl-text-source.h"
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
              GError     **error)
{
  g_autofree char *path = model_path ? g_strdup (model_path) : bl_cli_default_model_path ();

  s->model = bl_model_load (path, NULL, error);
  if (s->model == NULL)
    return FALSE;
  s->backend = bl_backend_new (backend_name, n_threads, error);
  if (s->backend == NULL)
    return FALSE;
  s->engine = bl_engine_new (s->model, s->backend, NULL, error);
  return s->engine != NULL;
}

static BlTokenizer *
require_tokenizer (Session     *s,
                   GError     **error)
{
  BlTokenizer *tok = bl_model_get_tokenizer (s->model);

  if (tok == NULL)
    g_set_error (error, BL_ERROR, BL_ERROR_NOT_FOUND, "%s: the model has no tokenizer.json",
                 bl_model_get_path (s->model));
  return tok;
}

/* `--text` takes a file, or brown:SPLIT for a split of the Brown Corpus (the demo text,
 * fetched at set-up by tools/fetch-brown-corpus); the default is brown:test. */
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
  GMainLoop *loop;
  GCancellable *cancellable;
  gboolean ok;
  GError *error;
  gboolean json;
} EvalState;

static void
on_window_done (BlRun    *run,
                guint     n_done,
                gpointer  user_data)
{
  const BlPplStats *stats = bl_run_get_stats (run);
  double lo, hi;

  if (!bl_ppl_stats_get_ppl_ci (stats, &lo, &hi))
    lo = hi = NAN;
  if (isnan (lo))
    g_printerr ("window %u/%u: ppl %.4f (%.0f tok/s)\n", n_done, bl_run_get_n_windows (run),
                bl_ppl_stats_get_ppl (stats), bl_run_get_tokens_per_second (run));
  else
    g_printerr ("window %u/%u: ppl %.4f, 95%% CI [%.4f, %.4f] (%.0f tok/s)\n", n_done,
                bl_run_get_n_windows (run), bl_ppl_stats_get_ppl (stats), lo, hi,
                bl_run_get_tokens_per_second (run));
}

static void
on_run_done (GObject      *source,
             GAsyncResult *result,
             gpointer      user_data)
{
  EvalState *st = user_data;

  st->ok = bl_run_execute_finish (BL_RUN (source), result, &st->error);
  g_main_loop_quit (st->loop);
}

static gboolean
on_signal (gpointer user_data)
{
  EvalState *st = user_data;

  g_printerr ("bitlens-cli: cancelling…\n");
  g_cancellable_cancel (st->cancellable);
  return G_SOURCE_CONTINUE;
}

static void
print_eval_result (BlRun        *run,
                   BlModel      *model,
                   BlTextSource *source,
                   const BlRunOptions *opts,
                   const char   *backend,
                   int           n_threads,
                   gboolean      json)
{
  const BlPplStats *stats = bl_run_get_stats (run);
  double lo, hi;

  if (!bl_ppl_stats_get_ppl_ci (stats, &lo, &hi))
    lo = hi = NAN;
  if (json)
    {
      g_autoptr(JsonBuilder) b = json_builder_new ();
      g_autoptr(JsonGenerator) gen = json_generator_new ();
      g_autoptr(JsonNode) root = NULL;
      g_autofree char *text = NULL;

      json_builder_begin_object (b);
      json_builder_set_member_name (b, "model");
      json_builder_add_string_value (b, bl_model_get_path (model));
      json_builder_set_member_name (b, "model_fingerprint");
      json_builder_add_string_value (b, bl_model_get_fingerprint (model));
      json_builder_set_member_name (b, "dataset");
      json_builder_add_string_value (b, bl_text_source_get_name (source));
      json_builder_set_member_name (b, "dataset_sha256");
      json_builder_add_string_value (b, bl_text_source_get_sha256 (source));
      json_builder_set_member_name (b, "protocol");
      json_builder_add_string_value (b, bl_protocol_to_string (opts->protocol));
      json_builder_set_member_name (b, "ctx");
      json_builder_add_int_value (b, opts->ctx);
      if (opts->protocol == BL_PROTOCOL_HF_STRIDE)
        {
          json_builder_set_member_name (b, "stride");
          json_builder_add_int_value (b, opts->stride);
        }
      json_builder_set_member_name (b, "windows");
      json_builder_add_int_value (b, bl_run_get_n_windows (run));
      json_builder_set_member_name (b, "scored_tokens");
      json_builder_add_int_value (b, bl_run_get_n_scored (run));
      json_builder_set_member_name (b, "mean_nll");
      json_builder_add_double_value (b, bl_ppl_stats_get_mean_nll (stats));
      json_builder_set_member_name (b, "ppl");
      json_builder_add_double_value (b, bl_ppl_stats_get_ppl (stats));
      json_builder_set_member_name (b, "ppl_ci95");
      if (isnan (lo))
        json_builder_add_null_value (b);
      else
        {
          json_builder_begin_array (b);
          json_builder_add_double_value (b, lo);
          json_builder_add_double_value (b, hi);
          json_builder_end_array (b);
        }
      json_builder_set_member_name (b, "backend");
      json_builder_add_string_value (b, backend);
      json_builder_set_member_name (b, "threads");
      json_builder_add_int_value (b, n_threads);
      json_builder_set_member_name (b, "seconds");
      json_builder_add_double_value (b, bl_run_get_wall_seconds (run));
      json_builder_set_member_name (b, "tokens_per_second");
      json_builder_add_double_value (b, bl_run_get_tokens_per_second (run));
      json_builder_set_member_name (b, "run_id");
      json_builder_add_int_value (b, bl_run_get_store_id (run));
      json_builder_end_object (b);

      root = json_builder_get_root (b);
      json_generator_set_root (gen, root);
      json_generator_set_pretty (gen, TRUE);
      text = json_generator_to_data (gen, NULL);
      g_print ("%s\n", text);
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
  g_print ("mean NLL       %.6f nats/token\n", bl_ppl_stats_get_mean_nll (stats));
  if (isnan (lo))
    g_print ("perplexity     %.4f (one window: no confidence interval)\n", bl_ppl_stats_get_ppl (stats));
  else
    g_print ("perplexity     %.4f, 95%% CI [%.4f, %.4f]\n", bl_ppl_stats_get_ppl (stats), lo, hi);
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
  gint64 seed = 0;
  gboolean json = FALSE;
  gboolean no_store = FALSE;
  const GOptionEntry entries[] = {
    { "text", 't', 0, G_OPTION_ARG_FILENAME, &text_path, "Text file, or brown:train|validation|test (default brown:test)", "FILE" },
    { "protocol", 'p', 0, G_OPTION_ARG_STRING, &protocol_name, "gptq (default), hf-stride or llamacpp", "NAME" },
    { "ctx", 'c', 0, G_OPTION_ARG_INT, &ctx_len, "Window length in tokens (default: min(512, model maximum))", "N" },
    { "stride", 's', 0, G_OPTION_ARG_INT, &stride, "Stride of hf-stride (default: ctx/2)", "N" },
    { "max-windows", 'k', 0, G_OPTION_ARG_INT, &max_windows, "Evaluate only the first K windows", "K" },
    { "seed", 0, 0, G_OPTION_ARG_INT64, &seed, "Seed of the evaluation order (default 0)", "N" },
    { "threads", 'j', 0, G_OPTION_ARG_INT, &n_threads, "CPU threads (default: all cores)", "N" },
    { "backend", 'b', 0, G_OPTION_ARG_STRING, &backend_name, "cpu, cuda or auto (default auto)", "NAME" },
    { "db", 0, 0, G_OPTION_ARG_FILENAME, &db_path, "SQLite store (default $XDG_DATA_HOME/bitlens/bitlens.db)", "PATH" },
    { "no-store", 0, 0, G_OPTION_ARG_NONE, &no_store, "Do not record the run", NULL },
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, "Print the result as JSON", NULL },
    { NULL }
  };
  g_autoptr(GOptionContext) octx = g_option_context_new ("[MODEL] — measure perplexity");
  g_autoptr(GError) error = NULL;
  g_auto(Session) s = { 0 };
  g_autoptr(BlTextSource) source = NULL;
  g_autoptr(GArray) ids = NULL;
  g_autoptr(BlRun) run = NULL;
  g_autoptr(BlStore) store = NULL;
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GMainLoop) loop = NULL;
  BlRunOptions opts = { 0 };
  BlTokenizer *tok;
  const char *text;
  gsize text_len;
  EvalState st = { 0 };
  guint sigint_id, sigterm_id;

  g_option_context_add_main_entries (octx, entries, NULL);
  if (!g_option_context_parse (octx, &argc, &argv, &error))
    return bl_cli_usage_error ("eval", "%s", error->message);
  if (argc > 2)
    return bl_cli_usage_error ("eval", "expected at most one MODEL");

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
  if (n_threads == 0)
    n_threads = (int) g_get_num_processors ();

  if (!session_open (&s, argc == 2 ? argv[1] : NULL, backend_name ? backend_name : "auto",
                     n_threads, &error))
    return bl_cli_report_error (error);
  tok = require_tokenizer (&s, &error);
  if (tok == NULL)
    return bl_cli_report_error (error);

  source = open_text (text_path, &error);
  if (source == NULL)
    return bl_cli_report_error (error);

  opts.ctx = ctx_len > 0 ? ctx_len : MIN (512, bl_engine_get_max_tokens (s.engine));
  opts.stride = stride > 0 ? stride : opts.ctx / 2;
  opts.max_windows = max_windows;
  opts.seed = (guint64) seed;

  text = bl_text_source_get_protocol_text (source, opts.protocol, &text_len);
  g_printerr ("tokenizing %s (%" G_GSIZE_FORMAT " bytes)…\n", bl_text_source_get_name (source), text_len);
  /* The whole text is tokenized as one string; BOS goes at its start when the tokenizer
   * adds one (see the protocol table in README.md). */
  ids = bl_tokenizer_encode (tok, text, text_len, bl_tokenizer_get_add_bos (tok));

  run = bl_run_new (s.model, s.engine, (const int32_t *) ids->data, ids->len, &opts, &error);
  if (run == NULL)
    return bl_cli_report_error (error);

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

  loop = g_main_loop_new (NULL, FALSE);
  st.loop = loop;
  st.cancellable = cancellable;
  st.json = json;
  sigint_id = g_unix_signal_add (SIGINT, on_signal, &st);
  sigterm_id = g_unix_signal_add (SIGTERM, on_signal, &st);
  g_signal_connect (run, "window-done", G_CALLBACK (on_window_done), &st);
  bl_run_execute_async (run, cancellable, on_run_done, &st);
  g_main_loop_run (loop);
  g_source_remove (sigint_id);
  g_source_remove (sigterm_id);

  if (!st.ok)
    {
      int status = bl_cli_report_error (st.error);

      g_clear_error (&st.error);
      return status;
    }

  print_eval_result (run, s.model, source, &opts, bl_backend_get_name (s.backend), n_threads, json);
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
    { "threads", 'j', 0, G_OPTION_ARG_INT, &n_threads, "CPU threads (default: all cores)", "N" },
    { "backend", 'b', 0, G_OPTION_ARG_STRING, &backend_name, "cpu, cuda or auto (default auto)", "NAME" },
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
  if (!g_option_context_parse (octx, &argc, &argv, &error))
    return bl_cli_usage_error ("generate", "%s", error->message);
  if (argc > 2)
    return bl_cli_usage_error ("generate", "expected at most one MODEL");
  if (max_tokens < 1)
    return bl_cli_usage_error ("generate", "--max-tokens must be positive");
  if (n_threads <= 0)
    n_threads = (int) g_get_num_processors ();

  if (!session_open (&s, argc == 2 ? argv[1] : NULL, backend_name ? backend_name : "auto",
                     n_threads, &error))
    return bl_cli_report_error (error);
  tok = require_tokenizer (&s, &error);
  if (tok == NULL)
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
    { "db", 0, 0, G_OPTION_ARG_FILENAME, &db_path, "SQLite store (default $XDG_DATA_HOME/bitlens/bitlens.db)", "PATH" },
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
