/* bl-cli-export.c: `bitlens-cli export`, a plan for the tools that deploy it
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "config.h"

#include <string.h>

#include "bitlens.h"
#include "bl-export.h"
#include "bl-quant-plan.h"
#include "bl-cli.h"
#include "bl-cli-commands.h"

/* The targets' descriptions for --help, each wrapped under its id as a two-column list. */
static char *
describe_targets (void)
{
  const guint indent = 22, width = 94;
  g_autoptr(GString) s = g_string_new ("Formats (docs/exports.md):");
  const BlExportTarget *targets;
  guint n;

  targets = bl_export_targets (&n);
  for (guint i = 0; i < n; i++)
    {
      g_auto(GStrv) words = g_strsplit (targets[i].description, " ", -1);
      guint col;

      g_string_append_printf (s, "\n  %-18s  %s", targets[i].id, words[0]);
      col = indent + strlen (words[0]);
      for (guint w = 1; words[w] != NULL; w++)
        {
          if (col + 1 + strlen (words[w]) > width)
            {
              g_string_append_printf (s, "\n%*s%s", (int) indent, "", words[w]);
              col = indent + strlen (words[w]);
            }
          else
            {
              g_string_append_printf (s, " %s", words[w]);
              col += 1 + strlen (words[w]);
            }
        }
    }
  return g_string_free (g_steal_pointer (&s), FALSE);
}

int
bl_cli_export_main (int    argc,
                    char **argv)
{
  g_autofree char *plan_path = NULL, *target = NULL, *out = NULL, *in_gguf = NULL, *out_gguf = NULL;
  g_autofree char *name = NULL, *unquantized = NULL;
  g_autofree char *ids = bl_export_target_list_ids (", ");
  g_autofree char *description = describe_targets ();
  gboolean ggml_reference = FALSE;
  const GOptionEntry entries[] = {
    { "plan", 'p', 0, G_OPTION_ARG_FILENAME, &plan_path, "The plan (docs/plan-schema.md)", "FILE" },
    { "to", 0, 0, G_OPTION_ARG_STRING, &target, ids, "FORMAT" },
    { "out", 'o', 0, G_OPTION_ARG_FILENAME, &out, "Output file (a directory for packed; - for stdout where the output is text)", "PATH" },
    { "ggml-reference", 0, 0, G_OPTION_ARG_NONE, &ggml_reference, "gguf: encode blocks with ggml's reference quantizers instead of Bitlens's codes", NULL },
    { "unquantized-type", 0, 0, G_OPTION_ARG_STRING, &unquantized, "gguf: type of full-precision 2-D weights and the embedding: f16 (default), bf16 or f32", "TYPE" },
    { "name", 0, 0, G_OPTION_ARG_STRING, &name, "gguf: general.name (default: the model directory's name)", "NAME" },
    { "input-gguf", 0, 0, G_OPTION_ARG_FILENAME, &in_gguf, "llama-cpp: the F16 GGUF the script converts to and quantizes from", "FILE" },
    { "output-gguf", 0, 0, G_OPTION_ARG_FILENAME, &out_gguf, "llama-cpp: the GGUF llama-quantize writes", "FILE" },
    { NULL }
  };
  g_autoptr(GOptionContext) octx = g_option_context_new ("[MODEL] — write a plan for a deployment tool");
  g_autoptr(GError) error = NULL;
  g_autoptr(BlModel) model = NULL;
  g_autoptr(BlQuantPlan) plan = NULL;
  g_autoptr(GPtrArray) notes = g_ptr_array_new_with_free_func (g_free);
  g_autofree char *model_path = NULL;
  const BlExportTarget *t;
  BlExportOptions opts = { 0 };
  guint n_layers = 0;
  gboolean ok;

  g_option_context_add_main_entries (octx, entries, NULL);
  g_option_context_set_description (octx, description);
  if (!g_option_context_parse (octx, &argc, &argv, &error))
    return bl_cli_usage_error ("export", "%s", error->message);
  if (argc > 2)
    return bl_cli_usage_error ("export", "expected at most one MODEL");
  if (plan_path == NULL || target == NULL || out == NULL)
    return bl_cli_usage_error ("export", "--plan, --to and --out are required");
  if ((t = bl_export_target_lookup (target, &error)) == NULL)
    return bl_cli_usage_error ("export", "%s", error->message);
  if (unquantized != NULL && !bl_gguf_export_options_set_unquantized_type (&opts.gguf, unquantized, &error))
    return bl_cli_usage_error ("export", "%s", error->message);
  opts.gguf.ggml_reference = ggml_reference;
  opts.gguf.name = name;
  opts.input_gguf = in_gguf;
  opts.output_gguf = out_gguf;

  model_path = argc == 2 ? g_strdup (argv[1]) : bl_cli_default_model_path ();
  if ((model = bl_model_load (model_path, NULL, &error)) == NULL
      || (plan = bl_quant_plan_load (plan_path, &error)) == NULL)
    return bl_cli_report_error (error);
  /* "-" is standard output for a text target; any other target writes a file of that name */
  if (g_str_equal (out, "-") && (t->flags & BL_EXPORT_TARGET_TEXT))
    {
      g_autofree char *text = bl_export_to_text (model, plan, t->id, &opts, &n_layers, &error);

      ok = text != NULL;
      if (ok)
        g_print ("%s", text);
    }
  else
    ok = bl_export_to (model, plan, t->id, &opts, out, notes, &n_layers, NULL, &error);
  for (guint i = 0; i < notes->len; i++)
    g_printerr ("note: %s\n", (const char *) g_ptr_array_index (notes, i));
  if (!ok)
    return bl_cli_report_error (error);
  if (!g_str_equal (out, "-"))
    g_printerr ("%s: %u quantized layers of %s written to %s\n", target, n_layers,
                bl_model_get_path (model), out);
  return 0;
}
