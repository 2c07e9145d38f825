/* bl-cli.h: helpers shared by the bitlens-cli subcommands
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Exit codes of bitlens-cli: 0 success, 1 an error while working, 2 a usage error,
 * 130 cancelled by SIGINT/SIGTERM. */
#define BL_CLI_EXIT_ERROR     1
#define BL_CLI_EXIT_USAGE     2
#define BL_CLI_EXIT_CANCELLED 130

/* The model directory to use when the user names none: $BITLENS_DEMO_MODEL, else the
 * installed demo model, else the one in the source tree (uninstalled runs). */
char *bl_cli_default_model_path (void);

/* Prints "bitlens-cli: error: MESSAGE" on stderr and returns BL_CLI_EXIT_ERROR (or
 * BL_CLI_EXIT_CANCELLED for a cancellation). */
int   bl_cli_report_error (const GError *error);

int   bl_cli_usage_error (const char *command,
                          const char *format,
                          ...) G_GNUC_PRINTF (2, 3);

G_END_DECLS
