/* safetensors-writer.h: writes small safetensors files and model directories for tests
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <glib.h>

#include "bl-tensor.h"

G_BEGIN_DECLS

typedef struct _StWriter StWriter;

StWriter *st_writer_new          (void);
void      st_writer_free         (StWriter       *self);
/* @values are stored in @dtype; they must be exactly representable there. */
void      st_writer_add          (StWriter       *self,
                                  const char     *name,
                                  BlDType         dtype,
                                  int             n_dims,
                                  const int64_t  *shape,
                                  const float    *values);
void      st_writer_add_metadata (StWriter       *self,
                                  const char     *key,
                                  const char     *value);
GBytes   *st_writer_to_bytes     (StWriter       *self);
void      st_writer_write        (StWriter       *self,
                                  const char     *path);

/* An 8-byte little-endian @header length, @header, then @data_len bytes of 0x5a. */
GBytes   *st_raw_file            (const char     *header,
                                  gsize           data_len);

uint16_t  st_f32_to_f16_exact    (float           value);
uint16_t  st_f32_to_bf16_exact   (float           value);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (StWriter, st_writer_free)

G_END_DECLS
