/* bl-cli-common.c: helpers shared by the bitlens-cli subcommands
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "config.h"

#include <gio/gio.h>
#include <stdarg.h>

#include "bl-cli.h"

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

int
bl_cli_report_error (const GError *error)
{
  g_printerr ("bitlens-cli: error: %s\n", error->message);
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return BL_CLI_EXIT_CANCELLED;
  return BL_CLI_EXIT_ERROR;
}

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
