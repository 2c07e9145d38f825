/* bl-export.h: a per-layer quantization assignment, written for the tools that deploy it
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * Every exporter takes the model and a resolved assignment: one #BlExportLayer per linear
 * layer that a plan quantizes (a layer that is not listed stays in full precision). The
 * targets, documented with their mapping rules in docs/exports.md, are:
 *
 *   - compressed-tensors: the `quantization_config` of config.json (config_groups with
 *     targets, ignore), bl_export_compressed_tensors();
 *   - NVIDIA ModelOpt: hf_quant_config.json, bl_export_modelopt();
 *   - llama.cpp: `--tensor-type` overrides and the llama-quantize command line,
 *     bl_export_llama_cpp();
 *   - packed safetensors: codes, scales and zero points in the layout of
 *     bl-format-blocks.h, with a JSON manifest, bl_export_packed();
 *   - GGUF v3 for llama.cpp (F16, BF16, Q8_0, Q4_0, MXFP4), bl_export_gguf().
 *
 * bl_export_to() is the one entry point over all of them (bl-export-targets.c): it takes a
 * plan, resolves it, and dispatches on a target id of bl_export_targets(), which is what
 * `bitlens-cli export` and the workbench's Export menu call.
 */
#pragma once

#include <gio/gio.h>
#include <json-glib/json-glib.h>

#include "bl-format.h"
#include "bl-gguf.h"
#include "bl-model.h"
#include "bl-quant-plan.h"

G_BEGIN_DECLS

/**
 * BlExportLayer:
 * @layer: the linear layer's weight name as the engine uses it
 *   ("model.layers.0.self_attn.q_proj.weight", "lm_head.weight")
 * @weight: (nullable): the weight format; %NULL keeps the weight in full precision
 * @activation: (nullable): the format of the layer's input activations, or %NULL
 * @algorithm: (nullable): the weight algorithm that produced the weights ("rtn", "gptq",
 *   "awq", …), or %NULL for RTN
 * @options: (nullable): the algorithm's options
 *
 * One layer of a resolved assignment. Borrowed pointers.
 */
typedef struct
{
  const char *layer;
  const BlFormatSpec *weight;
  const BlFormatSpec *activation;
  const char *algorithm;
  JsonObject *options;
} BlExportLayer;

char       *bl_export_module_name       (const char          *layer);
GPtrArray  *bl_export_linear_layers     (BlModel             *model);

char       *bl_export_plan_json         (const BlExportLayer *layers,
                                         guint                n_layers,
                                         const char          *kv_cache,
                                         GError             **error);

JsonNode   *bl_export_compressed_tensors (const BlExportLayer *layers,
                                          guint                n_layers,
                                          BlModel             *model,
                                          const BlFormatSpec  *kv_cache,
                                          GError             **error);
char       *bl_export_hf_config         (BlModel             *model,
                                         JsonNode            *quantization_config,
                                         GError             **error);
char       *bl_export_modelopt          (const BlExportLayer *layers,
                                         guint                n_layers,
                                         BlModel             *model,
                                         const BlFormatSpec  *kv_cache,
                                         GError             **error);

gboolean    bl_export_spec_to_ggml      (const BlFormatSpec  *spec,
                                         BlGgmlType          *out_type);
gboolean    bl_export_spec_to_llama_cpp (const BlFormatSpec  *spec,
                                         const char         **out_type_name);
char       *bl_export_gguf_tensor_name  (const char          *hf_name);
char       *bl_export_llama_cpp         (const BlExportLayer *layers,
                                         guint                n_layers,
                                         BlModel             *model,
                                         const char          *input_gguf,
                                         const char          *output_gguf,
                                         GError             **error);

/**
 * BlGgufExportOptions:
 * @unquantized_type: the type of 2-D weights the assignment leaves in full precision
 *   (%BL_GGML_TYPE_F16, %BL_GGML_TYPE_BF16 or %BL_GGML_TYPE_F32; 0 means F16)
 * @embedding_type: the type of the token embedding (same choices and default)
 * @name: (nullable): general.name; %NULL takes the model directory's name
 * @ggml_reference: encode Q8_0, Q4_0 and MXFP4 blocks with ggml's reference quantizers
 *   (the codes llama-quantize would choose) instead of with Bitlens's own quantizer
 * @unquantized_f32: write the full-precision 2-D weights and the embedding as F32, whatever
 *   the two types say (%BL_GGML_TYPE_F32 is 0, which they read as "default")
 *
 * Choices of the GGUF export that a plan does not make. By default the blocks hold the
 * codes and scales of bl_format_quantize() for the layer's format, so that the file decodes
 * to exactly the weights Bitlens evaluated. For Q4_0 both encoders agree bit for bit; for
 * Q8_0 and MXFP4 they differ on single elements (see bl_export_spec_to_ggml()).
 */
typedef struct
{
  BlGgmlType unquantized_type;
  BlGgmlType embedding_type;
  const char *name;
  gboolean ggml_reference;
  gboolean unquantized_f32;
} BlGgufExportOptions;

gboolean    bl_export_gguf              (BlModel                   *model,
                                         const BlExportLayer       *layers,
                                         guint                      n_layers,
                                         const BlGgufExportOptions *options,
                                         const char                *path,
                                         GPtrArray                 *notes,
                                         GCancellable              *cancellable,
                                         GError                   **error);
void        bl_export_gguf_permute_rows (const float               *src,
                                         float                     *dst,
                                         gint64                     rows,
                                         gint64                     cols,
                                         int                        n_head,
                                         gboolean                   inverse);

gboolean    bl_export_packed            (BlModel                   *model,
                                         const BlExportLayer       *layers,
                                         guint                      n_layers,
                                         const char                *dir,
                                         GCancellable              *cancellable,
                                         GError                   **error);
gboolean    bl_export_packed_read_layer (const char                *dir,
                                         const char                *layer,
                                         float                     *dst,
                                         gint64                     n_elements,
                                         GError                   **error);

gboolean    bl_gguf_export_options_set_unquantized_type (BlGgufExportOptions  *options,
                                                         const char           *type_name,
                                                         GError              **error);

/**
 * BlExportTargetFlags:
 * @BL_EXPORT_TARGET_TEXT: the file is text, which bl_export_to_text() also returns
 * @BL_EXPORT_TARGET_DIRECTORY: the target is a directory, not a file
 * @BL_EXPORT_TARGET_EXECUTABLE: the file is written executable (a script)
 *
 * What a target writes.
 */
typedef enum
{
  BL_EXPORT_TARGET_TEXT = 1 << 0,
  BL_EXPORT_TARGET_DIRECTORY = 1 << 1,
  BL_EXPORT_TARGET_EXECUTABLE = 1 << 2,
} BlExportTargetFlags;

/**
 * BlExportTarget:
 * @id: the name bl_export_to() and `bitlens-cli export --to` take ("plan-json", "gguf", …)
 * @title: a title for a menu or a dialog ("GGUF for llama.cpp")
 * @description: what is written, in one line, for `--help`
 * @file_kind: what the file is, for a file chooser's filter ("GGUF model")
 * @suffix: (nullable): the file name's suffix without the dot, %NULL for a directory
 * @default_name: the name to suggest, "%s" standing for the model's name; see
 *   bl_export_target_default_name()
 * @flags: what the target writes
 *
 * One export target. The table is static: the pointers live as long as the program.
 */
typedef struct
{
  const char *id;
  const char *title;
  const char *description;
  const char *file_kind;
  const char *suffix;
  const char *default_name;
  BlExportTargetFlags flags;
} BlExportTarget;

/**
 * BlExportOptions:
 * @gguf: the GGUF writer's choices (target "gguf")
 * @input_gguf: (nullable): target "llama-cpp": the F16 GGUF the script converts to and
 *   quantizes from (%NULL: a name next to the model)
 * @output_gguf: (nullable): target "llama-cpp": the GGUF llama-quantize writes
 *
 * The choices of bl_export_to() that a plan does not make. Each target reads its own
 * members and ignores the others; all zero means every default. Borrowed strings.
 */
typedef struct
{
  BlGgufExportOptions gguf;
  const char *input_gguf;
  const char *output_gguf;
} BlExportOptions;

const BlExportTarget *bl_export_targets            (guint                  *n_targets);
const BlExportTarget *bl_export_target_lookup      (const char             *id,
                                                    GError                **error);
char                 *bl_export_target_list_ids    (const char             *separator);
char                 *bl_export_target_default_name (const BlExportTarget  *target,
                                                     const char            *model_name);
gboolean              bl_export_to                 (BlModel                *model,
                                                    BlQuantPlan            *plan,
                                                    const char             *target,
                                                    const BlExportOptions  *options,
                                                    const char             *path,
                                                    GPtrArray              *notes,
                                                    guint                  *out_n_layers,
                                                    GCancellable           *cancellable,
                                                    GError                **error);
char                 *bl_export_to_text            (BlModel                *model,
                                                    BlQuantPlan            *plan,
                                                    const char             *target,
                                                    const BlExportOptions  *options,
                                                    guint                  *out_n_layers,
                                                    GError                **error);

G_END_DECLS
