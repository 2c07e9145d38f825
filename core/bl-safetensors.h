/* bl-safetensors.h: one validated, memory-mapped safetensors file
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <glib.h>

#include "bl-tensor.h"

G_BEGIN_DECLS

/* The reference implementation's limit on the JSON header (safetensors/src/tensor.rs,
 * MAX_HEADER_SIZE); a longer header is refused before any allocation. */
#define BL_SAFETENSORS_MAX_HEADER_SIZE 100000000

typedef struct _BlSafetensors BlSafetensors;

BlSafetensors  *bl_safetensors_open               (const char     *path,
                                                   GError        **error);
BlSafetensors  *bl_safetensors_parse_header       (const guint8   *buf,
                                                   gsize           len,
                                                   const char     *filename,
                                                   GError        **error);
BlSafetensors  *bl_safetensors_new_from_tensors   (const char     *filename,
                                                   const BlTensor *tensors,
                                                   guint           n_tensors,
                                                   gpointer        owner,
                                                   GDestroyNotify  owner_free);
BlSafetensors  *bl_safetensors_ref                (BlSafetensors  *self);
void            bl_safetensors_unref              (BlSafetensors  *self);

const char     *bl_safetensors_get_filename       (BlSafetensors  *self);
guint           bl_safetensors_get_n_tensors      (BlSafetensors  *self);
const BlTensor *bl_safetensors_get_tensor_at      (BlSafetensors  *self,
                                                   guint           index);
const BlTensor *bl_safetensors_get_tensor         (BlSafetensors  *self,
                                                   const char     *name);
const char     *bl_safetensors_get_metadata       (BlSafetensors  *self,
                                                   const char     *key);
GStrv           bl_safetensors_list_metadata_keys (BlSafetensors  *self);
const guint8   *bl_safetensors_get_contents       (BlSafetensors  *self,
                                                   gsize          *len);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (BlSafetensors, bl_safetensors_unref)

G_END_DECLS
