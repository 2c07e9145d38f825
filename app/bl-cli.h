/* bl-cli.h: helpers shared by the bitlens-cli subcommands
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <gio/gio.h>
#include <json-glib/json-glib.h>

#include "bitlens.h"
#include "bl-text-source.h"

G_BEGIN_DECLS

/* Exit codes of bitlens-cli: 0 success, 1 an error while working, 2 a usage error,
 * 130 cancelled by SIGINT/SIGTERM. */
#define BL_CLI_EXIT_ERROR     1
#define BL_CLI_EXIT_USAGE     2
#define BL_CLI_EXIT_CANCELLED 130

/* Option entries that read the same in every command that has them. */
#define BL_CLI_THREADS_ENTRY(var) \
  { "threads", 'j', 0, G_OPTION_ARG_INT, &(var), "CPU threads (default: all cores)", "N" }
#define BL_CLI_BACKEND_ENTRY(var) \
  { "backend", 'b', 0, G_OPTION_ARG_STRING, &(var), "cpu, cuda or auto (default auto)", "NAME" }
#define BL_CLI_DB_ENTRY(var) \
  { "db", 0, 0, G_OPTION_ARG_FILENAME, &(var), \
    "SQLite store (default $XDG_DATA_HOME/bitlens/bitlens.db)", "PATH" }

/* --- errors and options ------------------------------------------------------------------------ */

int       bl_cli_report_error        (const GError    *error);
int       bl_cli_usage_error         (const char      *command,
                                      const char      *format,
                                      ...) G_GNUC_PRINTF (2, 3);
gboolean  bl_cli_parse_model_options (GOptionContext  *context,
                                      const char      *command,
                                      int             *argc,
                                      char          ***argv);
int       bl_cli_n_threads           (int              requested);
char    **bl_cli_split_list          (char           **values);
gboolean  bl_cli_parse_doubles       (const char      *list,
                                      GArray         **out,
                                      GError         **error);
gboolean  bl_cli_check_menu          (char           **menu,
                                      GError         **error);

/* --- models and texts -------------------------------------------------------------------------- */

char         *bl_cli_default_model_path (void);
BlModel      *bl_cli_load_model         (const char    *path,
                                         GError       **error);
BlBackend    *bl_cli_backend_new        (const char    *name,
                                         int            n_threads,
                                         GError       **error);
BlTokenizer  *bl_cli_require_tokenizer  (BlModel       *model,
                                         GError       **error);
BlTextSource *bl_cli_open_text          (const char    *spec,
                                         GError       **error);
GArray       *bl_cli_encode_text        (BlTokenizer   *tokenizer,
                                         BlTextSource  *source);

/* --- cancellable work -------------------------------------------------------------------------- */

/**
 * BlCliWorkFunc:
 * @data: the work's data
 * @cancellable: cancelled on SIGINT or SIGTERM
 * @error: return location for a #GError
 *
 * Work that bl_cli_run_cancellable() runs in a worker thread.
 *
 * Returns: %TRUE on success
 */
typedef gboolean (*BlCliWorkFunc) (gpointer       data,
                                   GCancellable  *cancellable,
                                   GError       **error);

gboolean bl_cli_run_cancellable (BlCliWorkFunc   func,
                                 gpointer        data,
                                 GError        **error);

/* --- JSON output ------------------------------------------------------------------------------- */

void  bl_cli_json_add_string         (JsonBuilder *builder,
                                      const char  *name,
                                      const char  *value);
void  bl_cli_json_add_int            (JsonBuilder *builder,
                                      const char  *name,
                                      gint64       value);
void  bl_cli_json_add_double         (JsonBuilder *builder,
                                      const char  *name,
                                      double       value);
void  bl_cli_json_add_boolean        (JsonBuilder *builder,
                                      const char  *name,
                                      gboolean     value);
void  bl_cli_json_add_double_or_null (JsonBuilder *builder,
                                      const char  *name,
                                      double       value);
void  bl_cli_json_add_model          (JsonBuilder *builder,
                                      BlModel     *model);
char *bl_cli_json_to_string          (JsonBuilder *builder,
                                      gboolean     pretty);
void  bl_cli_print_json              (JsonBuilder *builder);

/* --- the sensitivity budget of `sensitivity`, `allocate` and `sweep` --------------------------- */

/**
 * BlCliBudget:
 * @model: the model
 * @backend: its backend
 * @source: the text the per-layer losses are measured on
 * @ids: that text's token ids
 * @sensitivity: the sensitivity object over windows of @ids
 * @store: (nullable): the store that caches the sensitivity
 * @n_threads: the CPU threads in use
 *
 * Where the per-layer losses are measured.
 */
typedef struct
{
  BlModel *model;
  BlBackend *backend;
  BlTextSource *source;
  GArray *ids;
  BlSensitivity *sensitivity;
  BlStore *store;
  int n_threads;
} BlCliBudget;

/**
 * BlCliBudgetOptions:
 * @text: (nullable): a file or brown:SPLIT; %NULL for brown:validation
 * @windows: windows of the budget; 0 for the default
 * @ctx: ids per window; 0 for the default
 * @seed: seed of the window starts
 * @threads: CPU threads; 0 or less for every core
 * @backend: (nullable): cpu, cuda or auto; %NULL for auto
 * @db: (nullable): the store; %NULL for the default one
 * @no_store: neither read nor write the sensitivity cache
 *
 * The options of a #BlCliBudget, for a #GOptionEntry table.
 */
typedef struct
{
  char *text;
  int windows;
  int ctx;
  gint64 seed;
  int threads;
  char *backend;
  char *db;
  gboolean no_store;
} BlCliBudgetOptions;

#define BL_CLI_BUDGET_ENTRIES(o) \
  { "text", 't', 0, G_OPTION_ARG_FILENAME, &(o).text, "Text the per-layer losses are measured on: a file, or brown:SPLIT (default brown:validation)", "FILE" }, \
  { "windows", 'k', 0, G_OPTION_ARG_INT, &(o).windows, "Windows of that budget (default 8)", "N" }, \
  { "ctx", 'c', 0, G_OPTION_ARG_INT, &(o).ctx, "Ids per window (default: min(256, model maximum))", "N" }, \
  { "seed", 0, 0, G_OPTION_ARG_INT64, &(o).seed, "Seed of the window starts (default 0)", "N" }, \
  BL_CLI_THREADS_ENTRY ((o).threads), \
  BL_CLI_BACKEND_ENTRY ((o).backend), \
  { "db", 0, 0, G_OPTION_ARG_FILENAME, &(o).db, "SQLite store for the sensitivity cache (default $XDG_DATA_HOME/bitlens/bitlens.db)", "PATH" }, \
  { "no-store", 0, 0, G_OPTION_ARG_NONE, &(o).no_store, "Neither read nor write the sensitivity cache", NULL }

void     bl_cli_budget_options_clear (BlCliBudgetOptions        *options);
gboolean bl_cli_budget_open          (BlCliBudget               *budget,
                                      const char                *model_path,
                                      const BlCliBudgetOptions  *options,
                                      GError                   **error);
void     bl_cli_budget_clear         (BlCliBudget               *budget);

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (BlCliBudgetOptions, bl_cli_budget_options_clear)
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (BlCliBudget, bl_cli_budget_clear)

G_END_DECLS
