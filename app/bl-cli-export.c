/* bl-cli-export.c: `bitlens-cli export`, a plan for the tools that deploy it
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "config.h"

#include <glib/gstdio.h>
#include <string.h>

#include "bitlens.h"
#include "bl-export.h"
#include "bl-quant-plan.h"
#include "bl-cli.h"
#include "bl-cli-commands.h"

static const char *const targets[] = { "plan-json", "compressed-tensors", "modelopt", "llama-cpp", "packed",
                                       "gguf", NULL };

static gboolean
write_text (const char  *path,
            const char  *text,
            GError     **error)
{
  if (g_str_equal (path, "-"))
    {
      g_print ("%s", text);
      return TRUE;
    }
  return g_file_set_contents (path, text, -1, error);
}

int
bl_cli_export_main (int    argc,
                    char **argv)
{
  g_autofree char *plan_path = NULL, *target = NULL, *out = NULL, *in_gguf = NULL, *out_gguf = NULL;
  g_autofree char *name = NULL, *unquantized = NULL;
  gboolean ggml_reference = FALSE;
  const GOptionEntry entries[] = {
    { "plan", 'p', 0, G_OPTION_ARG_FILENAME, &plan_path, "The plan (docs/plan-schema.md)", "FILE" },
    { "to", 0, 0, G_OPTION_ARG_STRING, &target, "plan-json, compressed-tensors, modelopt, llama-cpp, packed or gguf", "FORMAT" },
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
  g_autoptr(GPtrArray) resolved = NULL;
  g_autoptr(GArray) layers = g_array_new (FALSE, TRUE, sizeof (BlExportLayer));
  g_autofree char *model_path = NULL;
  const char *kv = NULL;
  BlFormatSpec kv_spec;
  gboolean ok = FALSE;

  g_option_context_add_main_entries (octx, entries, NULL);
  g_option_context_set_description (octx,
    "Formats (docs/exports.md):\n"
    "  plan-json           the resolved plan, one rule per quantized layer\n"
    "  compressed-tensors  the model's config.json with quantization_config (vLLM, llm-compressor)\n"
    "  modelopt            hf_quant_config.json (TensorRT-LLM, vLLM, SGLang)\n"
    "  llama-cpp           a shell script: convert_hf_to_gguf.py, then llama-quantize with one\n"
    "                      --tensor-type per tensor\n"
    "  packed              a directory: model.safetensors with the packed codes and scales of\n"
    "                      core/bl-format-blocks.h, bitlens-quant.json, config and tokenizer\n"
    "  gguf                a GGUF v3 file for llama.cpp (f16, bf16, q8_0, q4_0, mxfp4)");
  if (!g_option_context_parse (octx, &argc, &argv, &error))
    return bl_cli_usage_error ("export", "%s", error->message);
  if (argc > 2)
    return bl_cli_usage_error ("export", "expected at most one MODEL");
  if (plan_path == NULL || target == NULL || out == NULL)
    return bl_cli_usage_error ("export", "--plan, --to and --out are required");
  if (!g_strv_contains (targets, target))
    return bl_cli_usage_error ("export", "unknown format “%s”", target);

  model_path = argc == 2 ? g_strdup (argv[1]) : bl_cli_default_model_path ();
  if ((model = bl_model_load (model_path, NULL, &error)) == NULL
      || (plan = bl_quant_plan_load (plan_path, &error)) == NULL
      || (resolved = bl_quant_plan_resolve (plan, model, &error)) == NULL)
    return bl_cli_report_error (error);
  for (guint i = 0; i < resolved->len; i++)
    {
      const BlLayerAssignment *a = g_ptr_array_index (resolved, i);
      BlExportLayer l = { a->layer, a->has_weight ? &a->weight : NULL,
                          a->has_activation ? &a->activation : NULL, a->algorithm, a->options };

      if (l.weight != NULL || l.activation != NULL)
        g_array_append_val (layers, l);
    }
  kv = bl_quant_plan_get_kv_cache (plan);
  if (kv != NULL && !bl_format_spec_parse (kv, &kv_spec, &error))
    return bl_cli_report_error (error);

  if (g_str_equal (target, "plan-json"))
    {
      g_autofree char *text = bl_export_plan_json ((BlExportLayer *) layers->data, layers->len, kv, &error);

      ok = text != NULL && write_text (out, text, &error);
    }
  else if (g_str_equal (target, "compressed-tensors"))
    {
      g_autoptr(JsonNode) qc = bl_export_compressed_tensors ((BlExportLayer *) layers->data, layers->len, model,
                                                             kv != NULL ? &kv_spec : NULL, &error);
      g_autofree char *text = qc != NULL ? bl_export_hf_config (model, qc, &error) : NULL;

      ok = text != NULL && write_text (out, text, &error);
    }
  else if (g_str_equal (target, "modelopt"))
    {
      g_autofree char *text = bl_export_modelopt ((BlExportLayer *) layers->data, layers->len, model,
                                                  kv != NULL ? &kv_spec : NULL, &error);

      ok = text != NULL && write_text (out, text, &error);
    }
  else if (g_str_equal (target, "llama-cpp"))
    {
      g_autofree char *text = bl_export_llama_cpp ((BlExportLayer *) layers->data, layers->len, model, in_gguf,
                                                   out_gguf, &error);

      ok = text != NULL && write_text (out, text, &error);
      if (ok && !g_str_equal (out, "-"))
        g_chmod (out, 0755);
    }
  else if (g_str_equal (target, "packed"))
    ok = bl_export_packed (model, (BlExportLayer *) layers->data, layers->len, out, NULL, &error);
  else
    {
      g_autoptr(GPtrArray) notes = g_ptr_array_new_with_free_func (g_free);
      BlGgufExportOptions opts = { 0 };

      opts.ggml_reference = ggml_reference;
      opts.name = name;
      if (unquantized != NULL)
        {
          BlGgmlType t;

          if (!bl_ggml_type_from_name (unquantized, &t))
            return bl_cli_usage_error ("export", "unknown type “%s”", unquantized);
          opts.unquantized_type = opts.embedding_type = t;
          opts.unquantized_f32 = t == BL_GGML_TYPE_F32;
        }
      ok = bl_export_gguf (model, (BlExportLayer *) layers->data, layers->len, &opts, out, notes, NULL, &error);
      for (guint i = 0; i < notes->len; i++)
        g_printerr ("note: %s\n", (const char *) g_ptr_array_index (notes, i));
    }
  if (!ok)
    return bl_cli_report_error (error);
  if (!g_str_equal (out, "-"))
    g_printerr ("%s: %u quantized layers of %s written to %s\n", target, layers->len,
                bl_model_get_path (model), out);
  return 0;
}
