/* bl-cli-formats.h: `bitlens-cli formats` and `bitlens-cli quantize-stats`
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* argv[0] is the subcommand name; the return value is the process exit code. */
int bl_cli_formats_main        (int    argc,
                                char **argv);
int bl_cli_quantize_stats_main (int    argc,
                                char **argv);

G_END_DECLS
