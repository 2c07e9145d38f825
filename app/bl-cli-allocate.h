/* bl-cli-allocate.h: what `allocate` and `sweep` share: the sensitivity budget and a worker
 * that SIGINT cancels
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <gio/gio.h>

#include "bitlens.h"
#include "bl-allocator.h"
#include "bl-sensitivity.h"
#include "bl-text-source.h"

G_BEGIN_DECLS

/**
 * BlCliBudget:
 * Where the per-layer losses are measured: the model, its backend, the text and the
 * sensitivity object over that text's windows.
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

/* The options of the budget, for a GOptionEntry table. */
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
  { "threads", 'j', 0, G_OPTION_ARG_INT, &(o).threads, "CPU threads (default: all cores)", "N" }, \
  { "backend", 'b', 0, G_OPTION_ARG_STRING, &(o).backend, "cpu, cuda or auto (default auto)", "NAME" }, \
  { "db", 0, 0, G_OPTION_ARG_FILENAME, &(o).db, "SQLite store for the sensitivity cache (default $XDG_DATA_HOME/bitlens/bitlens.db)", "PATH" }, \
  { "no-store", 0, 0, G_OPTION_ARG_NONE, &(o).no_store, "Neither read nor write the sensitivity cache", NULL }

void          bl_cli_budget_options_clear (BlCliBudgetOptions *o);
BlTextSource *bl_cli_open_text            (const char         *spec,
                                           GError            **error);
gboolean      bl_cli_budget_open          (BlCliBudget        *b,
                                           const char         *model_path,
                                           const BlCliBudgetOptions *o,
                                           GError            **error);
void          bl_cli_budget_clear         (BlCliBudget        *b);
char        **bl_cli_split_list           (char              **values);
gboolean      bl_cli_parse_doubles        (const char         *list,
                                           GArray            **out,
                                           GError            **error);
gboolean      bl_cli_run_worker           (GThreadFunc         func,
                                           gpointer            data,
                                           GCancellable       *cancellable);

G_END_DECLS
