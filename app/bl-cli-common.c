/* bl-cli-common.c: helpers shared by the bitlens-cli subcommands
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "config.h"

#include <glib-unix.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>

#include "bl-brown.h"
#include "bl-cli.h"

/* --- errors and options ------------------------------------------------------------------------ */

/**
 * bl_cli_report_error:
 * @error: the error
 *
 * Prints "bitlens-cli: error: MESSAGE" on stderr.
 *
 * Returns: %BL_CLI_EXIT_CANCELLED for a cancellation, else %BL_CLI_EXIT_ERROR
 */
int
bl_cli_report_error (const GError *error)
{
  g_printerr ("bitlens-cli: error: %s\n", error->message);
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return BL_CLI_EXIT_CANCELLED;
  return BL_CLI_EXIT_ERROR;
}

/**
 * bl_cli_usage_error:
 * @command: the subcommand, as the user typed it
 * @format: printf() format of the message
 * @...: its arguments
 *
 * Prints the message and where to find the command's options on stderr.
 *
 * Returns: %BL_CLI_EXIT_USAGE
 */
int
bl_cli_usage_error (const char *command,
                    const char *format,
                    ...)
{
  va_list args;
  g_autofree char *message = NULL;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);

  g_printerr ("bitlens-cli %s: %s\nTry 'bitlens-cli %s --help'.\n", command, message, command);
  return BL_CLI_EXIT_USAGE;
}

/**
 * bl_cli_parse_model_options:
 * @context: the command's options
 * @command: the subcommand, for the usage error
 * @argc: (inout): the argument count, argv[0] the subcommand
 * @argv: (inout): the arguments
 *
 * Parses the options of a command whose only argument is an optional MODEL, and prints the
 * usage error when they do not parse or more than one argument is left.
 *
 * Returns: %FALSE on a usage error (the command exits with %BL_CLI_EXIT_USAGE)
 */
gboolean
bl_cli_parse_model_options (GOptionContext   *context,
                            const char       *command,
                            int              *argc,
                            char           ***argv)
{
  g_autoptr(GError) error = NULL;

  if (!g_option_context_parse (context, argc, argv, &error))
    {
      bl_cli_usage_error (command, "%s", error->message);
      return FALSE;
    }
  if (*argc > 2)
    {
      bl_cli_usage_error (command, "expected at most one MODEL");
      return FALSE;
    }
  return TRUE;
}

/**
 * bl_cli_n_threads:
 * @requested: the --threads value; 0 (or less) when not given
 *
 * Returns: @requested, or the number of processors when it is not positive
 */
int
bl_cli_n_threads (int requested)
{
  return requested > 0 ? requested : (int) g_get_num_processors ();
}

/**
 * bl_cli_split_list:
 * @values: (nullable): the values of a repeatable option
 *
 * Flattens repeated options and comma-separated lists: "a,b" "c" gives a b c. Blanks
 * around a part are dropped, and so are empty parts.
 *
 * Returns: (transfer full): the parts, %NULL-terminated
 */
char **
bl_cli_split_list (char **values)
{
  g_autoptr(GStrvBuilder) out = g_strv_builder_new ();

  for (guint i = 0; values != NULL && values[i] != NULL; i++)
    {
      g_auto(GStrv) parts = g_strsplit (values[i], ",", -1);

      for (guint k = 0; parts[k] != NULL; k++)
        {
          g_strstrip (parts[k]);
          if (*parts[k] != '\0')
            g_strv_builder_add (out, parts[k]);
        }
    }
  return g_strv_builder_end (out);
}

/**
 * bl_cli_parse_doubles:
 * @list: comma-separated numbers
 * @out: (out) (transfer full): the numbers, a #GArray of double
 * @error: return location for a #G_OPTION_ERROR
 *
 * Returns: %FALSE when a part is not a positive finite number
 */
gboolean
bl_cli_parse_doubles (const char  *list,
                      GArray     **out,
                      GError     **error)
{
  g_auto(GStrv) parts = g_strsplit (list, ",", -1);
  g_autoptr(GArray) v = g_array_new (FALSE, FALSE, sizeof (double));

  for (guint i = 0; parts[i] != NULL; i++)
    {
      char *end;
      double d = g_ascii_strtod (g_strstrip (parts[i]), &end);

      if (*parts[i] == '\0' || *end != '\0' || !isfinite (d) || d <= 0)
        {
          g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                       "“%s” in “%s” is not a positive number", parts[i], list);
          return FALSE;
        }
      g_array_append_val (v, d);
    }
  *out = g_steal_pointer (&v);
  return TRUE;
}

/**
 * bl_cli_check_menu:
 * @menu: the formats an allocator may give a layer, %NULL-terminated
 * @error: return location for the parse error of the first bad spec
 *
 * Checks every format of a `--menu` before the slow work starts; "none" (full precision)
 * is a valid entry.
 *
 * Returns: %TRUE when every entry is "none" or a format spec
 */
gboolean
bl_cli_check_menu (char   **menu,
                   GError **error)
{
  for (guint m = 0; menu[m] != NULL; m++)
    {
      BlFormatSpec spec;

      if (!g_str_equal (menu[m], "none") && !bl_format_spec_parse (menu[m], &spec, error))
        return FALSE;
    }
  return TRUE;
}

/* --- models and texts -------------------------------------------------------------------------- */

/**
 * bl_cli_default_model_path:
 *
 * The model directory to use when the user names none: $BITLENS_DEMO_MODEL, else the
 * installed demo model, else the one in the source tree (uninstalled runs).
 *
 * Returns: (transfer full): the path
 */
char *
bl_cli_default_model_path (void)
{
  const char *env = g_getenv ("BITLENS_DEMO_MODEL");
  g_autofree char *installed = NULL;

  if (env != NULL && *env != '\0')
    return g_strdup (env);

  installed = g_build_filename (BITLENS_DATADIR, "models", "bitlens-demo", NULL);
  if (g_file_test (installed, G_FILE_TEST_IS_DIR))
    return g_steal_pointer (&installed);

  return g_build_filename (BITLENS_SOURCE_DIR, "data", "models", "bitlens-demo", NULL);
}

/**
 * bl_cli_load_model:
 * @path: (nullable): a model directory or GGUF file; %NULL for the demo model
 * @error: return location for a #GError
 *
 * Returns: (transfer full) (nullable): the model
 */
BlModel *
bl_cli_load_model (const char  *path,
                   GError     **error)
{
  g_autofree char *default_path = path == NULL ? bl_cli_default_model_path () : NULL;

  return bl_model_load (path != NULL ? path : default_path, NULL, error);
}

/**
 * bl_cli_backend_new:
 * @name: (nullable): the --backend value; %NULL for "auto"
 * @n_threads: CPU threads
 * @error: return location for a #GError
 *
 * Returns: (transfer full) (nullable): the backend
 */
BlBackend *
bl_cli_backend_new (const char  *name,
                    int          n_threads,
                    GError     **error)
{
  return bl_backend_new (name != NULL ? name : "auto", n_threads, error);
}

/**
 * bl_cli_require_tokenizer:
 * @model: a model
 * @error: return location for a #BL_ERROR_NOT_FOUND
 *
 * The model's tokenizer, for the commands that tokenize text. A GGUF model without one
 * says why (bl_model_get_tokenizer_source()).
 *
 * Returns: (transfer none) (nullable): the tokenizer
 */
BlTokenizer *
bl_cli_require_tokenizer (BlModel  *model,
                          GError  **error)
{
  BlTokenizer *tok = bl_model_get_tokenizer (model);
  const char *source = bl_model_get_tokenizer_source (model);

  if (tok == NULL && source != NULL)
    g_set_error (error, BL_ERROR, BL_ERROR_NOT_FOUND, "%s: the model has no tokenizer (%s)",
                 bl_model_get_path (model), source);
  else if (tok == NULL)
    g_set_error (error, BL_ERROR, BL_ERROR_NOT_FOUND, "%s: the model has no tokenizer.json",
                 bl_model_get_path (model));
  return tok;
}

/**
 * bl_cli_open_text:
 * @spec: a text file, or brown:SPLIT for a split of the Brown Corpus (the demo text,
 *   fetched at set-up by tools/fetch-brown-corpus)
 * @error: return location for a #GError
 *
 * Opens what `--text` and the other text options name.
 *
 * Returns: (transfer full) (nullable): the text
 */
BlTextSource *
bl_cli_open_text (const char  *spec,
                  GError     **error)
{
  if (g_str_has_prefix (spec, "brown:"))
    {
      g_autofree char *dir = bl_brown_default_dir ();

      return bl_brown_load_split (dir, spec + strlen ("brown:"), error);
    }
  return bl_text_source_new_from_file (spec, bl_text_source_kind_from_path (spec), error);
}

/**
 * bl_cli_encode_text:
 * @tokenizer: the model's tokenizer
 * @source: a text
 *
 * Tokenizes the text as the gptq protocol reads it, the whole text as one string with BOS
 * at its start when the tokenizer adds one: the ids that calibration windows and
 * sensitivity budgets are drawn from.
 *
 * Returns: (transfer full): the ids, a #GArray of int32_t
 */
GArray *
bl_cli_encode_text (BlTokenizer  *tokenizer,
                    BlTextSource *source)
{
  gsize len;
  const char *text = bl_text_source_get_protocol_text (source, BL_PROTOCOL_GPTQ, &len);

  return bl_tokenizer_encode (tokenizer, text, len, bl_tokenizer_get_add_bos (tokenizer));
}

/* --- cancellable work -------------------------------------------------------------------------- */

typedef struct
{
  BlCliWorkFunc func;
  gpointer data;
  GCancellable *cancellable;
  GMainLoop *loop;
  gboolean ok;
  GError *error;
} Work;

static void
quit_loop (gpointer user_data)
{
  g_main_loop_quit (user_data);
}

static gpointer
work_thread (gpointer user_data)
{
  Work *w = user_data;

  w->ok = w->func (w->data, w->cancellable, &w->error);
  /* through the main context, so that the quit cannot come before g_main_loop_run() */
  g_idle_add_once (quit_loop, w->loop);
  return NULL;
}

static gboolean
on_signal (gpointer user_data)
{
  Work *w = user_data;

  g_printerr ("bitlens-cli: cancelling…\n");
  g_cancellable_cancel (w->cancellable);
  return G_SOURCE_CONTINUE;
}

/**
 * bl_cli_run_cancellable:
 * @func: the work
 * @data: its data
 * @error: return location for the error of @func (%G_IO_ERROR_CANCELLED when a signal
 *   cancelled it)
 *
 * Runs @func in a worker thread while the main thread turns SIGINT and SIGTERM into a
 * cancellation, and returns when the worker has ended: everything @func used is the
 * caller's again, and nothing of it is released in another thread.
 *
 * Returns: what @func returned
 */
gboolean
bl_cli_run_cancellable (BlCliWorkFunc   func,
                        gpointer        data,
                        GError        **error)
{
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GMainLoop) loop = g_main_loop_new (NULL, FALSE);
  Work w = { func, data, cancellable, loop, FALSE, NULL };
  guint sigint_id = g_unix_signal_add (SIGINT, on_signal, &w);
  guint sigterm_id = g_unix_signal_add (SIGTERM, on_signal, &w);
  GThread *thread = g_thread_new ("worker", work_thread, &w);

  g_main_loop_run (loop);
  g_thread_join (thread);
  g_source_remove (sigint_id);
  g_source_remove (sigterm_id);
  if (!w.ok)
    g_propagate_error (error, w.error);
  return w.ok;
}

/* --- JSON output ------------------------------------------------------------------------------- */

/* json-glib's builder takes a member's name and its value in two calls; these take both. */

/**
 * bl_cli_json_add_string:
 * @builder: a builder inside an object
 * @name: the member's name
 * @value: its value
 */
void
bl_cli_json_add_string (JsonBuilder *builder,
                        const char  *name,
                        const char  *value)
{
  json_builder_set_member_name (builder, name);
  json_builder_add_string_value (builder, value);
}

/**
 * bl_cli_json_add_int:
 * @builder: a builder inside an object
 * @name: the member's name
 * @value: its value
 */
void
bl_cli_json_add_int (JsonBuilder *builder,
                     const char  *name,
                     gint64       value)
{
  json_builder_set_member_name (builder, name);
  json_builder_add_int_value (builder, value);
}

/**
 * bl_cli_json_add_double:
 * @builder: a builder inside an object
 * @name: the member's name
 * @value: its value, finite
 */
void
bl_cli_json_add_double (JsonBuilder *builder,
                        const char  *name,
                        double       value)
{
  json_builder_set_member_name (builder, name);
  json_builder_add_double_value (builder, value);
}

/**
 * bl_cli_json_add_boolean:
 * @builder: a builder inside an object
 * @name: the member's name
 * @value: its value
 */
void
bl_cli_json_add_boolean (JsonBuilder *builder,
                         const char  *name,
                         gboolean     value)
{
  json_builder_set_member_name (builder, name);
  json_builder_add_boolean_value (builder, value);
}

/**
 * bl_cli_json_add_double_or_null:
 * @builder: a builder inside an object
 * @name: the member's name
 * @value: its value
 *
 * Adds @value, or null where it is NaN or infinite: JSON has no such numbers.
 */
void
bl_cli_json_add_double_or_null (JsonBuilder *builder,
                                const char  *name,
                                double       value)
{
  json_builder_set_member_name (builder, name);
  if (isfinite (value))
    json_builder_add_double_value (builder, value);
  else
    json_builder_add_null_value (builder);
}

/**
 * bl_cli_json_add_model:
 * @builder: a builder inside an object
 * @model: a model
 *
 * Adds the members "model" (its path) and "model_fingerprint" that begin every result.
 */
void
bl_cli_json_add_model (JsonBuilder *builder,
                       BlModel     *model)
{
  bl_cli_json_add_string (builder, "model", bl_model_get_path (model));
  bl_cli_json_add_string (builder, "model_fingerprint", bl_model_get_fingerprint (model));
}

/**
 * bl_cli_json_to_string:
 * @builder: a builder whose root is complete
 * @pretty: indent the output
 *
 * Returns: (transfer full): the JSON text of the builder's root
 */
char *
bl_cli_json_to_string (JsonBuilder *builder,
                       gboolean     pretty)
{
  g_autoptr(JsonGenerator) gen = json_generator_new ();
  g_autoptr(JsonNode) root = json_builder_get_root (builder);

  json_generator_set_root (gen, root);
  json_generator_set_pretty (gen, pretty);
  return json_generator_to_data (gen, NULL);
}

/**
 * bl_cli_print_json:
 * @builder: a builder whose root is complete
 *
 * Prints the builder's root, indented, and a newline on stdout.
 */
void
bl_cli_print_json (JsonBuilder *builder)
{
  g_autofree char *text = bl_cli_json_to_string (builder, TRUE);

  g_print ("%s\n", text);
}

/* --- the sensitivity budget -------------------------------------------------------------------- */

/**
 * bl_cli_budget_options_clear:
 * @options: options filled by %BL_CLI_BUDGET_ENTRIES
 *
 * Frees the strings of @options.
 */
void
bl_cli_budget_options_clear (BlCliBudgetOptions *options)
{
  g_clear_pointer (&options->text, g_free);
  g_clear_pointer (&options->backend, g_free);
  g_clear_pointer (&options->db, g_free);
}

static void
on_budget_progress (const char *stage,
                    int         done,
                    int         total,
                    gpointer    user_data)
{
  int every = MAX (1, total / 10);

  if (done == total || done % every == 0)
    g_printerr ("%s %d/%d\n", stage, done, total);
}

/**
 * bl_cli_budget_open:
 * @budget: (out caller-allocates): the budget
 * @model_path: (nullable): the model directory; %NULL for the demo model
 * @options: the options
 * @error: return location for an error
 *
 * Loads the model, the backend and the text, and sets up (without running) the sensitivity
 * budget over its windows. Progress goes to stderr, about ten lines a stage. On failure
 * @budget holds what was opened: clear it with bl_cli_budget_clear() either way.
 *
 * Returns: %TRUE on success
 */
gboolean
bl_cli_budget_open (BlCliBudget               *budget,
                    const char                *model_path,
                    const BlCliBudgetOptions  *options,
                    GError                   **error)
{
  BlSensitivityOptions opts = { 0 };
  BlTokenizer *tok;

  memset (budget, 0, sizeof *budget);
  budget->n_threads = bl_cli_n_threads (options->threads);
  if ((budget->model = bl_cli_load_model (model_path, error)) == NULL
      || (budget->backend = bl_cli_backend_new (options->backend, budget->n_threads,
                                                error)) == NULL
      || (tok = bl_cli_require_tokenizer (budget->model, error)) == NULL
      || (budget->source = bl_cli_open_text (options->text != NULL ? options->text
                                                                   : "brown:validation",
                                             error)) == NULL)
    return FALSE;
  budget->ids = bl_cli_encode_text (tok, budget->source);
  opts.n_windows = options->windows;
  opts.ctx = options->ctx;
  opts.seed = (guint64) options->seed;
  opts.n_threads = budget->n_threads;
  opts.dataset_name = bl_text_source_get_name (budget->source);
  opts.dataset_sha256 = bl_text_source_get_sha256 (budget->source);
  budget->sensitivity = bl_sensitivity_new (budget->model, budget->backend,
                                            (const int32_t *) budget->ids->data, budget->ids->len,
                                            &opts, error);
  if (budget->sensitivity == NULL)
    return FALSE;
  if (!options->no_store)
    {
      if ((budget->store = bl_store_open (options->db, error)) == NULL)
        return FALSE;
      bl_sensitivity_set_store (budget->sensitivity, budget->store);
    }
  bl_sensitivity_set_progress (budget->sensitivity, on_budget_progress, NULL);
  return TRUE;
}

/**
 * bl_cli_budget_clear:
 * @budget: a budget
 *
 * Frees what bl_cli_budget_open() opened.
 */
void
bl_cli_budget_clear (BlCliBudget *budget)
{
  g_clear_object (&budget->sensitivity);
  g_clear_object (&budget->store);
  g_clear_pointer (&budget->ids, g_array_unref);
  g_clear_object (&budget->source);
  g_clear_pointer (&budget->backend, bl_backend_free);
  g_clear_object (&budget->model);
}
