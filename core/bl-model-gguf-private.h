/* bl-model-gguf-private.h: the parts of a BlModel read from a GGUF file
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <gio/gio.h>

#include "bl-gguf.h"
#include "bl-model.h"
#include "bl-safetensors.h"

G_BEGIN_DECLS

/**
 * BlModelGguf:
 * @config: the architecture, as the config.json the metadata stands for
 * @tensors: every tensor under its Hugging Face name, in the Hugging Face layout
 * @tokenizer: (nullable): the tokenizer rebuilt from tokenizer.ggml.*, else the tokenizer.json
 *   beside the file, else %NULL
 * @tokenizer_source: where @tokenizer came from, or why there is none
 * @fingerprint: SHA-256 (hex) of the complete file
 * @storage: the ggml types the file holds and what became of them, e.g.
 *   "GGUF: q4_0 ×14 (dequantized to F32), f32 ×11"
 */
typedef struct
{
  BlModelConfig *config;
  BlSafetensors *tensors;
  BlTokenizer *tokenizer;
  char *tokenizer_source;
  char *fingerprint;
  char *storage;
} BlModelGguf;

gboolean     bl_model_gguf_sniff           (const char    *path);
gboolean     bl_model_gguf_read            (const char    *path,
                                            GCancellable  *cancellable,
                                            BlModelGguf   *out,
                                            GError       **error);
void         bl_model_gguf_clear           (BlModelGguf   *parts);
gboolean     bl_model_gguf_read_tokenizer  (BlGguf        *gguf,
                                            BlTokenizer  **out,
                                            char         **why_not,
                                            GError       **error);

G_END_DECLS
