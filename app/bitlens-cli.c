/* bitlens-cli.c: the batch-mode front end of Bitlens
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "config.h"

#include <locale.h>
#include <stdio.h>
#include <string.h>

#include "bl-cli.h"
#include "bl-cli-commands.h"
#include "bl-cli-formats.h"
#ifdef BITLENS_HAVE_CUDA
#include "bl-cuda-backend.h"
#endif

typedef struct
{
  const char *name;
  int (*main) (int argc, char **argv);
  const char *summary;
} Command;

static const Command commands[] = {
  { "info", bl_cli_info_main, "Show a model's architecture, parameters and layers" },
  { "tokenize", bl_cli_tokenize_main, "Print the token ids of a text file" },
  { "eval", bl_cli_eval_main, "Measure perplexity under an evaluation protocol, and store the run" },
  { "plan", bl_cli_plan_main, "Write or check a quantization plan (--w/--a/--algorithm/--skip shorthands)" },
  { "generate", bl_cli_generate_main, "Greedy generation from a prompt" },
  { "runs", bl_cli_runs_main, "List the runs recorded in the store" },
  { "formats", bl_cli_formats_main, "List every number format with its bits per weight" },
  { "quantize-stats", bl_cli_quantize_stats_main, "Per-tensor quantization error of a model's weights in given formats" },
  { "sensitivity", bl_cli_sensitivity_main, "Per-layer sensitivity to a weight format (one-at-a-time KL, QSNR, Hessian proxy, LIM, ZD) and the Δppl estimator" },
  { "zeroshot", bl_cli_zeroshot_main, "Zero-shot accuracy and calibration on a multiple-choice task (PIQA, ARC, …)" },
  { "stats", bl_cli_stats_main, "Per-layer weight and activation statistics from a calibration pass (kurtosis, crest, outliers, LIM)" },
  { "export", bl_cli_export_main, "Write a plan for a deployment tool: plan JSON, compressed-tensors, ModelOpt, llama.cpp, packed safetensors, GGUF" },
  { "allocate", bl_cli_allocate_main, "The best per-layer formats from a menu under a bits, bytes or BOPs budget" },
  { "scaling", bl_cli_scaling_main, "Scaling laws: FP training law calculator, INT/FP crossover map, quality-vs-bits fits" },
  { "sweep", bl_cli_sweep_main, "Allocate, measure and store a Pareto sweep over bit budgets (shardable, resumable)" },
  { "merge", bl_cli_merge_main, "Join the shard files of a sweep" },
  { "moe", bl_cli_moe_main, "Mixture of experts: per-expert statistics, routing frequency and MC-MoE's PMQ bit allocation" },
};

static void
print_usage (FILE *stream)
{
  fprintf (stream,
           "Usage: bitlens-cli COMMAND [OPTIONS…]\n\n"
           "Bitlens %s, a quantization workbench (batch mode).\n\n"
           "Commands:\n", BITLENS_VERSION);
  for (guint i = 0; i < G_N_ELEMENTS (commands); i++)
    fprintf (stream, "  %-16s %s\n", commands[i].name, commands[i].summary);
  fprintf (stream,
           "\nMODEL is a Hugging Face model directory; when omitted, the bundled demo model is used.\n"
           "Run 'bitlens-cli COMMAND --help' for a command's options.\n"
           "Progress goes to stderr and results to stdout. Exit status: 0 success, 1 error,\n"
           "2 usage error, 130 cancelled.\n");
}

int
main (int    argc,
      char **argv)
{
  setlocale (LC_ALL, "");
  /* Numbers printed for machines must not depend on the user's locale. */
  setlocale (LC_NUMERIC, "C");
  g_set_prgname ("bitlens-cli");
#ifdef BITLENS_HAVE_CUDA
  /* "cuda" and "cuda-bf16" for --backend; "auto" tries "cuda" first */
  bl_backend_cuda_register ();
#endif

  if (argc < 2)
    {
      print_usage (stderr);
      return BL_CLI_EXIT_USAGE;
    }
  if (strcmp (argv[1], "--help") == 0 || strcmp (argv[1], "-h") == 0 || strcmp (argv[1], "help") == 0)
    {
      print_usage (stdout);
      return 0;
    }
  if (strcmp (argv[1], "--version") == 0)
    {
      g_print ("bitlens-cli %s\n", BITLENS_VERSION);
      return 0;
    }

  for (guint i = 0; i < G_N_ELEMENTS (commands); i++)
    if (strcmp (argv[1], commands[i].name) == 0)
      return commands[i].main (argc - 1, argv + 1);

  g_printerr ("bitlens-cli: unknown command '%s'\n\n", argv[1]);
  print_usage (stderr);
  return BL_CLI_EXIT_USAGE;
}
