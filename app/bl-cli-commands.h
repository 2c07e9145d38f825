/* bl-cli-commands.h: the bitlens-cli subcommands
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Each takes argv with argv[0] = the subcommand name and returns the process exit code. */
int bl_cli_info_main     (int argc, char **argv);
int bl_cli_tokenize_main (int argc, char **argv);
int bl_cli_eval_main     (int argc, char **argv);
int bl_cli_plan_main     (int argc, char **argv);
int bl_cli_generate_main (int argc, char **argv);
int bl_cli_runs_main     (int argc, char **argv);
int bl_cli_zeroshot_main (int argc, char **argv);
int bl_cli_sensitivity_main (int argc, char **argv);
int bl_cli_stats_main    (int argc, char **argv);
int bl_cli_export_main   (int argc, char **argv);
int bl_cli_allocate_main (int argc, char **argv);
int bl_cli_scaling_main  (int argc, char **argv);
int bl_cli_sweep_main    (int argc, char **argv);
int bl_cli_merge_main    (int argc, char **argv);
int bl_cli_moe_main      (int argc, char **argv);

G_END_DECLS
