/* bl-model-config.h: reading a Hugging Face config.json into a BlModelConfig
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include "bl-model.h"

G_BEGIN_DECLS

BlModelConfig      *bl_model_config_new_from_data       (const char          *data,
                                                         gsize                len,
                                                         const char          *filename,
                                                         GError             **error);
BlModelConfig      *bl_model_config_new_from_file       (const char          *path,
                                                         GError             **error);
void                bl_model_config_free                (BlModelConfig       *config);
const char * const *bl_model_config_supported_types     (void);
void                bl_model_config_rope_inv_freq       (const BlModelConfig *config,
                                                         float               *inv_freq);
int                 bl_model_config_attention_window    (const BlModelConfig *config,
                                                         int                  layer);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (BlModelConfig, bl_model_config_free)

G_END_DECLS
