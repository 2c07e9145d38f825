/* bl-plan-export.c: the workbench's plan through every exporter of core/bl-export.h
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "bl-plan-export.h"

#include <glib/gstdio.h>

#include "bl-error.h"
#include "bl-export.h"

/**
 * SECTION:bl-plan-export
 * @title: Plan export
 *
 * The targets of `bitlens-cli export` (docs/exports.md) for the Export menu: the same core
 * writers, given the window's plan resolved against its model. The writing runs in a worker
 * thread, so it holds no GTK.
 */

static const BlPlanExportTarget targets[] = {
  { "plan-json", "Resolved Plan (JSON)", "Resolved plan (JSON)", "json", "%s-plan-resolved.json" },
  { "compressed-tensors", "compressed-tensors config.json", "config.json with quantization_config", "json",
    "config.json" },
  { "modelopt", "ModelOpt hf_quant_config.json", "hf_quant_config.json", "json", "hf_quant_config.json" },
  { "llama-cpp", "llama.cpp Quantize Script", "Shell script", "sh", "%s-llama-quantize.sh" },
  { "packed", "Packed safetensors Folder", "Folder", NULL, "%s-packed" },
  { "gguf", "GGUF for llama.cpp", "GGUF model", "gguf", "%s.gguf" },
};

/**
 * bl_plan_export_targets:
 * @n_targets: (out): their number
 *
 * Returns: (array length=n_targets): every target, in menu order
 */
const BlPlanExportTarget *
bl_plan_export_targets (guint *n_targets)
{
  *n_targets = G_N_ELEMENTS (targets);
  return targets;
}

/**
 * bl_plan_export_lookup:
 * @id: a target name
 *
 * Returns: (nullable): the target, or %NULL for an unknown @id
 */
const BlPlanExportTarget *
bl_plan_export_lookup (const char *id)
{
  for (guint i = 0; i < G_N_ELEMENTS (targets); i++)
    if (g_strcmp0 (targets[i].id, id) == 0)
      return &targets[i];
  return NULL;
}

/**
 * bl_plan_export_write:
 * @model: the model
 * @plan: the plan
 * @id: a target of bl_plan_export_targets()
 * @path: the file (the directory for "packed")
 * @notes: (nullable) (element-type utf8): where the GGUF writer adds its notes
 * @cancellable: (nullable): a cancellable, for the packed and GGUF writers
 * @error: return location for a #GError
 *
 * Resolves @plan against @model and writes it as @id, as `bitlens-cli export --to @id` does.
 * The llama.cpp script is made executable.
 *
 * Returns: %TRUE on success
 */
gboolean
bl_plan_export_write (BlModel       *model,
                      BlQuantPlan   *plan,
                      const char    *id,
                      const char    *path,
                      GPtrArray     *notes,
                      GCancellable  *cancellable,
                      GError       **error)
{
  g_autoptr(GPtrArray) resolved = NULL;
  g_autoptr(GArray) layers = g_array_new (FALSE, TRUE, sizeof (BlExportLayer));
  g_autofree char *text = NULL;
  const char *kv;
  BlFormatSpec kv_spec;
  const BlExportLayer *ls;

  g_return_val_if_fail (BL_IS_MODEL (model), FALSE);
  g_return_val_if_fail (plan != NULL, FALSE);
  g_return_val_if_fail (path != NULL, FALSE);

  if (bl_plan_export_lookup (id) == NULL)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT, "unknown export target “%s”", id);
      return FALSE;
    }
  if ((resolved = bl_quant_plan_resolve (plan, model, error)) == NULL)
    return FALSE;
  for (guint i = 0; i < resolved->len; i++)
    {
      const BlLayerAssignment *a = g_ptr_array_index (resolved, i);
      BlExportLayer l = { a->layer, a->has_weight ? &a->weight : NULL,
                          a->has_activation ? &a->activation : NULL, a->algorithm, a->options };

      if (l.weight != NULL || l.activation != NULL)
        g_array_append_val (layers, l);
    }
  ls = (const BlExportLayer *) layers->data;
  kv = bl_quant_plan_get_kv_cache (plan);
  if (kv != NULL && !bl_format_spec_parse (kv, &kv_spec, error))
    return FALSE;

  if (g_str_equal (id, "packed"))
    return bl_export_packed (model, ls, layers->len, path, cancellable, error);
  if (g_str_equal (id, "gguf"))
    {
      g_autoptr(GPtrArray) own_notes = g_ptr_array_new_with_free_func (g_free);
      BlGgufExportOptions opts = { 0 };

      return bl_export_gguf (model, ls, layers->len, &opts, path, notes ? notes : own_notes, cancellable, error);
    }
  if (g_str_equal (id, "plan-json"))
    text = bl_export_plan_json (ls, layers->len, kv, error);
  else if (g_str_equal (id, "compressed-tensors"))
    {
      g_autoptr(JsonNode) qc = bl_export_compressed_tensors (ls, layers->len, model,
                                                             kv != NULL ? &kv_spec : NULL, error);

      text = qc != NULL ? bl_export_hf_config (model, qc, error) : NULL;
    }
  else if (g_str_equal (id, "modelopt"))
    text = bl_export_modelopt (ls, layers->len, model, kv != NULL ? &kv_spec : NULL, error);
  else
    text = bl_export_llama_cpp (ls, layers->len, model, NULL, NULL, error);
  if (text == NULL || !g_file_set_contents (path, text, -1, error))
    return FALSE;
  if (g_str_equal (id, "llama-cpp"))
    g_chmod (path, 0755);
  return TRUE;
}
