/* bl-hf-cache.h: the models in the local Hugging Face cache
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/**
 * BlHfModel:
 * @repo: the repository id, e.g. "HuggingFaceTB/SmolLM2-135M"
 * @path: the snapshot directory that holds config.json and the safetensors
 */
typedef struct
{
  char *repo;
  char *path;
} BlHfModel;

void       bl_hf_model_free            (BlHfModel           *model);
char      *bl_hf_cache_get_dir         (void);
GPtrArray *bl_hf_cache_scan            (const char          *hub_dir,
                                        GCancellable        *cancellable);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (BlHfModel, bl_hf_model_free)

G_END_DECLS
