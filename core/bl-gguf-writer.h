/* bl-gguf-writer.h: writing a GGUF v3 file
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <gio/gio.h>

#include "bl-gguf.h"

G_BEGIN_DECLS

typedef struct _BlGgufWriter BlGgufWriter;

BlGgufWriter *bl_gguf_writer_new          (guint32              alignment);
void          bl_gguf_writer_free         (BlGgufWriter        *self);

void          bl_gguf_writer_add_uint32   (BlGgufWriter        *self,
                                           const char          *key,
                                           guint32              value);
void          bl_gguf_writer_add_int32    (BlGgufWriter        *self,
                                           const char          *key,
                                           gint32               value);
void          bl_gguf_writer_add_uint64   (BlGgufWriter        *self,
                                           const char          *key,
                                           guint64              value);
void          bl_gguf_writer_add_float32  (BlGgufWriter        *self,
                                           const char          *key,
                                           float                value);
void          bl_gguf_writer_add_bool     (BlGgufWriter        *self,
                                           const char          *key,
                                           gboolean             value);
void          bl_gguf_writer_add_string   (BlGgufWriter        *self,
                                           const char          *key,
                                           const char          *value);
void          bl_gguf_writer_add_string_array (BlGgufWriter    *self,
                                           const char          *key,
                                           const char * const  *values,
                                           guint64              n_values);
void          bl_gguf_writer_add_float32_array (BlGgufWriter   *self,
                                           const char          *key,
                                           const float         *values,
                                           guint64              n_values);
void          bl_gguf_writer_add_int32_array (BlGgufWriter     *self,
                                           const char          *key,
                                           const gint32        *values,
                                           guint64              n_values);
gboolean      bl_gguf_writer_add_tensor   (BlGgufWriter        *self,
                                           const char          *name,
                                           BlGgmlType           type,
                                           guint32              n_dims,
                                           const gint64        *ne,
                                           GBytes              *data,
                                           GError             **error);
guint         bl_gguf_writer_get_n_tensors (BlGgufWriter       *self);
GBytes       *bl_gguf_writer_to_bytes     (BlGgufWriter        *self);
gboolean      bl_gguf_writer_write        (BlGgufWriter        *self,
                                           const char          *path,
                                           GCancellable        *cancellable,
                                           GError             **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (BlGgufWriter, bl_gguf_writer_free)

G_END_DECLS
