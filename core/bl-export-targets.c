/* bl-export-targets.c: the export targets and the one dispatch over them
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "bl-export.h"

#include <errno.h>
#include <glib/gstdio.h>

#include "bl-error.h"

/**
 * SECTION:bl-export-targets
 * @title: Export targets
 *
 * Every exporter of bl-export.h as one table of #BlExportTarget, and bl_export_to() as the
 * one dispatch over it: `bitlens-cli export --to ID` and the workbench's Export menu both
 * resolve the plan against the model, pick the writer by its id and hand it the options
 * through the same function, so the two cannot drift apart.
 */

/* A plan resolved for the writers: the assignments own what the #BlExportLayer rows borrow. */
typedef struct
{
  GPtrArray *resolved;       /* BlLayerAssignment */
  GArray *layers;            /* BlExportLayer, the layers the plan quantizes */
  const char *kv;            /* canonical KV-cache spec, or NULL */
  BlFormatSpec kv_spec;
} Resolved;

static void
resolved_clear (Resolved *r)
{
  g_clear_pointer (&r->resolved, g_ptr_array_unref);
  g_clear_pointer (&r->layers, g_array_unref);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Resolved, resolved_clear)

static const BlExportLayer *
resolved_layers (const Resolved *r)
{
  return (const BlExportLayer *) r->layers->data;
}

static const BlFormatSpec *
resolved_kv (const Resolved *r)
{
  return r->kv != NULL ? &r->kv_spec : NULL;
}

static char *
text_plan_json (const Resolved         *r,
                BlModel                *model,
                const BlExportOptions  *options,
                GError                **error)
{
  return bl_export_plan_json (resolved_layers (r), r->layers->len, r->kv, error);
}

static char *
text_compressed_tensors (const Resolved         *r,
                         BlModel                *model,
                         const BlExportOptions  *options,
                         GError                **error)
{
  g_autoptr(JsonNode) qc = bl_export_compressed_tensors (resolved_layers (r), r->layers->len, model,
                                                         resolved_kv (r), error);

  return qc != NULL ? bl_export_hf_config (model, qc, error) : NULL;
}

static char *
text_modelopt (const Resolved         *r,
               BlModel                *model,
               const BlExportOptions  *options,
               GError                **error)
{
  return bl_export_modelopt (resolved_layers (r), r->layers->len, model, resolved_kv (r), error);
}

static char *
text_llama_cpp (const Resolved         *r,
                BlModel                *model,
                const BlExportOptions  *options,
                GError                **error)
{
  return bl_export_llama_cpp (resolved_layers (r), r->layers->len, model, options->input_gguf,
                              options->output_gguf, error);
}

static gboolean
write_packed (const Resolved         *r,
              BlModel                *model,
              const BlExportOptions  *options,
              const char             *path,
              GPtrArray              *notes,
              GCancellable           *cancellable,
              GError                **error)
{
  return bl_export_packed (model, resolved_layers (r), r->layers->len, path, cancellable, error);
}

static gboolean
write_gguf (const Resolved         *r,
            BlModel                *model,
            const BlExportOptions  *options,
            const char             *path,
            GPtrArray              *notes,
            GCancellable           *cancellable,
            GError                **error)
{
  return bl_export_gguf (model, resolved_layers (r), r->layers->len, &options->gguf, path, notes,
                         cancellable, error);
}

/* The order is the menu's and --help's; docs/exports.md describes each target. */
static const BlExportTarget targets[] = {
  { .id = "plan-json", .title = "Resolved Plan (JSON)",
    .description = "the resolved plan, one rule per quantized layer",
    .file_kind = "Resolved plan (JSON)", .suffix = "json", .default_name = "%s-plan-resolved.json",
    .flags = BL_EXPORT_TARGET_TEXT },
  { .id = "compressed-tensors", .title = "compressed-tensors config.json",
    .description = "the model's config.json with quantization_config (vLLM, llm-compressor)",
    .file_kind = "config.json with quantization_config", .suffix = "json", .default_name = "config.json",
    .flags = BL_EXPORT_TARGET_TEXT },
  { .id = "modelopt", .title = "ModelOpt hf_quant_config.json",
    .description = "hf_quant_config.json (TensorRT-LLM, vLLM, SGLang)",
    .file_kind = "hf_quant_config.json", .suffix = "json", .default_name = "hf_quant_config.json",
    .flags = BL_EXPORT_TARGET_TEXT },
  { .id = "llama-cpp", .title = "llama.cpp Quantize Script",
    .description = "a shell script: convert_hf_to_gguf.py, then llama-quantize with one --tensor-type "
                   "per tensor",
    .file_kind = "Shell script", .suffix = "sh", .default_name = "%s-llama-quantize.sh",
    .flags = BL_EXPORT_TARGET_TEXT | BL_EXPORT_TARGET_EXECUTABLE },
  { .id = "packed", .title = "Packed safetensors Folder",
    .description = "a directory: model.safetensors with the packed codes and scales of "
                   "core/bl-format-blocks.h, bitlens-quant.json, config and tokenizer",
    .file_kind = "Folder", .suffix = NULL, .default_name = "%s-packed",
    .flags = BL_EXPORT_TARGET_DIRECTORY },
  { .id = "gguf", .title = "GGUF for llama.cpp",
    .description = "a GGUF v3 file for llama.cpp (f16, bf16, q8_0, q4_0, mxfp4)",
    .file_kind = "GGUF model", .suffix = "gguf", .default_name = "%s.gguf",
    .flags = 0 },
};

/* Each target's writer, in the same order: exactly one of a text writer (the file holds the
 * text) and a file writer. This is the only dispatch over the exporters. */
typedef struct
{
  char     *(*text)  (const Resolved         *r,
                      BlModel                *model,
                      const BlExportOptions  *options,
                      GError                **error);
  gboolean  (*write) (const Resolved         *r,
                      BlModel                *model,
                      const BlExportOptions  *options,
                      const char             *path,
                      GPtrArray              *notes,
                      GCancellable           *cancellable,
                      GError                **error);
} Writer;

static const Writer writers[] = {
  { .text = text_plan_json },
  { .text = text_compressed_tensors },
  { .text = text_modelopt },
  { .text = text_llama_cpp },
  { .write = write_packed },
  { .write = write_gguf },
};

G_STATIC_ASSERT (G_N_ELEMENTS (writers) == G_N_ELEMENTS (targets));

/**
 * bl_export_targets:
 * @n_targets: (out): their number
 *
 * Returns: (array length=n_targets) (transfer none): every export target, in the order a menu
 *   or `--help` lists them
 */
const BlExportTarget *
bl_export_targets (guint *n_targets)
{
  g_return_val_if_fail (n_targets != NULL, NULL);

  *n_targets = G_N_ELEMENTS (targets);
  return targets;
}

/**
 * bl_export_target_list_ids:
 * @separator: what goes between two ids (", ")
 *
 * Returns: (transfer full): every target's id, in table order, joined by @separator
 */
char *
bl_export_target_list_ids (const char *separator)
{
  g_autoptr(GString) s = g_string_new (NULL);

  g_return_val_if_fail (separator != NULL, NULL);

  for (guint i = 0; i < G_N_ELEMENTS (targets); i++)
    {
      if (i > 0)
        g_string_append (s, separator);
      g_string_append (s, targets[i].id);
    }
  return g_string_free (g_steal_pointer (&s), FALSE);
}

/**
 * bl_export_target_lookup:
 * @id: a target id ("gguf", "compressed-tensors", …)
 * @error: return location for a #GError, or %NULL
 *
 * Errors: %BL_ERROR_INVALID_ARGUMENT for an unknown @id; the message lists the valid ones.
 *
 * Returns: (transfer none) (nullable): the target, or %NULL with @error set
 */
const BlExportTarget *
bl_export_target_lookup (const char  *id,
                         GError     **error)
{
  g_autofree char *valid = NULL;

  g_return_val_if_fail (id != NULL, NULL);

  for (guint i = 0; i < G_N_ELEMENTS (targets); i++)
    if (g_str_equal (targets[i].id, id))
      return &targets[i];
  valid = bl_export_target_list_ids (", ");
  g_set_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT, "Unknown export target “%s” (valid: %s)", id, valid);
  return NULL;
}

/**
 * bl_export_target_default_name:
 * @target: a target
 * @model_name: the model's name, usually its directory's or file's base name
 *
 * Returns: (transfer full): the file (or directory) name to suggest for @target, e.g.
 *   "stories260k.gguf" or "config.json"
 */
char *
bl_export_target_default_name (const BlExportTarget *target,
                               const char           *model_name)
{
  g_autoptr(GString) name = NULL;

  g_return_val_if_fail (target != NULL && model_name != NULL, NULL);

  name = g_string_new (target->default_name);
  g_string_replace (name, "%s", model_name, 0);
  return g_string_free (g_steal_pointer (&name), FALSE);
}

/* Resolves @plan against @model and keeps the layers the plan quantizes, with the KV-cache
 * spec parsed, as every writer takes them. */
static gboolean
resolve (BlQuantPlan  *plan,
         BlModel      *model,
         Resolved     *r,
         GError      **error)
{
  r->resolved = bl_quant_plan_resolve (plan, model, error);
  if (r->resolved == NULL)
    return FALSE;
  r->layers = g_array_new (FALSE, TRUE, sizeof (BlExportLayer));
  for (guint i = 0; i < r->resolved->len; i++)
    {
      const BlLayerAssignment *a = g_ptr_array_index (r->resolved, i);
      BlExportLayer l = { a->layer, a->has_weight ? &a->weight : NULL,
                          a->has_activation ? &a->activation : NULL, a->algorithm, a->options };

      if (l.weight != NULL || l.activation != NULL)
        g_array_append_val (r->layers, l);
    }
  r->kv = bl_quant_plan_get_kv_cache (plan);
  return r->kv == NULL || bl_format_spec_parse (r->kv, &r->kv_spec, error);
}

static const Writer *
lookup (const char             *id,
        const BlExportTarget  **out_target,
        GError                **error)
{
  const BlExportTarget *t = bl_export_target_lookup (id, error);

  *out_target = t;
  return t != NULL ? &writers[t - targets] : NULL;
}

/**
 * bl_export_to_text:
 * @model: the model
 * @plan: the plan, resolved against @model here (bl_quant_plan_resolve())
 * @target: the id of a target with %BL_EXPORT_TARGET_TEXT
 * @options: (nullable): the choices a plan does not make; %NULL for every default
 * @out_n_layers: (out) (optional): how many layers the plan quantizes, the layers written
 * @error: return location for a #GError
 *
 * The text a text target's file holds, for a caller that writes it elsewhere (standard
 * output). Errors: %BL_ERROR_INVALID_ARGUMENT for an unknown target or one that writes a
 * binary file or a directory, and the plan's and the writer's own errors.
 *
 * Returns: (transfer full) (nullable): the text, or %NULL with @error set
 */
char *
bl_export_to_text (BlModel                *model,
                   BlQuantPlan            *plan,
                   const char             *target,
                   const BlExportOptions  *options,
                   guint                  *out_n_layers,
                   GError                **error)
{
  static const BlExportOptions defaults = { 0 };
  g_auto(Resolved) r = { 0 };
  const BlExportTarget *t;
  const Writer *w;

  g_return_val_if_fail (BL_IS_MODEL (model), NULL);
  g_return_val_if_fail (BL_IS_QUANT_PLAN (plan), NULL);
  g_return_val_if_fail (target != NULL, NULL);

  if ((w = lookup (target, &t, error)) == NULL)
    return NULL;
  if (w->text == NULL)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT, "The export target “%s” writes %s, not text",
                   target, (t->flags & BL_EXPORT_TARGET_DIRECTORY) ? "a directory" : "a binary file");
      return NULL;
    }
  if (!resolve (plan, model, &r, error))
    return NULL;
  if (out_n_layers != NULL)
    *out_n_layers = r.layers->len;
  return w->text (&r, model, options != NULL ? options : &defaults, error);
}

/**
 * bl_export_to:
 * @model: the model
 * @plan: the plan, resolved against @model here (bl_quant_plan_resolve())
 * @target: a target id (bl_export_targets())
 * @options: (nullable): the choices a plan does not make; %NULL for every default
 * @path: the file to write, or the directory for a %BL_EXPORT_TARGET_DIRECTORY target
 * @notes: (nullable) (element-type utf8): receives, as strings to free with g_free(), a line
 *   for each place where the writer could not follow the plan and what it did instead (a
 *   GGUF layer whose rows are not a multiple of the block stays F16)
 * @out_n_layers: (out) (optional): how many layers the plan quantizes, the layers written
 * @cancellable: (nullable): checked before the plan is resolved, and by the packed and GGUF
 *   writers between tensors
 * @error: return location for a #GError
 *
 * Writes @plan for the deployment tool that @target names, as `bitlens-cli export --to
 * @target` does: the layers the resolved plan quantizes (a layer it leaves alone stays in
 * full precision) and its KV-cache format go to the target's writer of this header. A
 * %BL_EXPORT_TARGET_EXECUTABLE file is made executable.
 *
 * Errors: %BL_ERROR_INVALID_ARGUMENT for an unknown @target (the message lists the valid
 * ones), the plan's errors (a rule that matches no layer), the writer's errors (a format the
 * target cannot express: %BL_ERROR_UNSUPPORTED_FORMAT), %G_FILE_ERROR or %G_IO_ERROR when
 * the file cannot be written, and %G_IO_ERROR_CANCELLED.
 *
 * Returns: %TRUE when @path was written
 */
gboolean
bl_export_to (BlModel                *model,
              BlQuantPlan            *plan,
              const char             *target,
              const BlExportOptions  *options,
              const char             *path,
              GPtrArray              *notes,
              guint                  *out_n_layers,
              GCancellable           *cancellable,
              GError                **error)
{
  static const BlExportOptions defaults = { 0 };
  g_auto(Resolved) r = { 0 };
  g_autoptr(GPtrArray) own_notes = NULL;
  g_autofree char *text = NULL;
  const BlExportTarget *t;
  const Writer *w;

  g_return_val_if_fail (BL_IS_MODEL (model), FALSE);
  g_return_val_if_fail (BL_IS_QUANT_PLAN (plan), FALSE);
  g_return_val_if_fail (target != NULL && path != NULL, FALSE);

  if ((w = lookup (target, &t, error)) == NULL
      || g_cancellable_set_error_if_cancelled (cancellable, error)
      || !resolve (plan, model, &r, error))
    return FALSE;
  if (out_n_layers != NULL)
    *out_n_layers = r.layers->len;
  if (options == NULL)
    options = &defaults;
  if (w->write != NULL)
    {
      if (notes == NULL)
        notes = own_notes = g_ptr_array_new_with_free_func (g_free);
      return w->write (&r, model, options, path, notes, cancellable, error);
    }
  if ((text = w->text (&r, model, options, error)) == NULL
      || !g_file_set_contents (path, text, -1, error))
    return FALSE;
  /* the script is meant to be run as it is */
  if ((t->flags & BL_EXPORT_TARGET_EXECUTABLE) && g_chmod (path, 0755) != 0)
    {
      int saved = errno;

      g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (saved), "Could not make %s executable: %s",
                   path, g_strerror (saved));
      return FALSE;
    }
  return TRUE;
}

/**
 * bl_gguf_export_options_set_unquantized_type:
 * @options: GGUF options
 * @type_name: a ggml type name ("f16", "bf16", "f32"; any case)
 * @error: return location for a #GError, or %NULL
 *
 * Sets the type of the full-precision 2-D weights and of the token embedding together, as
 * `bitlens-cli export --unquantized-type` does; for "f32" it also sets @unquantized_f32,
 * since %BL_GGML_TYPE_F32 is 0 and the two type fields read 0 as F16. The GGUF writer then
 * refuses a type that is not a float type.
 *
 * Errors: %BL_ERROR_INVALID_ARGUMENT when @type_name is no ggml type.
 *
 * Returns: whether @type_name is a ggml type
 */
gboolean
bl_gguf_export_options_set_unquantized_type (BlGgufExportOptions  *options,
                                             const char           *type_name,
                                             GError              **error)
{
  BlGgmlType t;

  g_return_val_if_fail (options != NULL && type_name != NULL, FALSE);

  if (!bl_ggml_type_from_name (type_name, &t))
    {
      g_set_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT,
                   "Unknown ggml type “%s” (the full-precision types are f16, bf16 and f32)", type_name);
      return FALSE;
    }
  options->unquantized_type = options->embedding_type = t;
  options->unquantized_f32 = t == BL_GGML_TYPE_F32;
  return TRUE;
}
