/* bl-text-source.h: a text file read as one document, for perplexity evaluation
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <glib-object.h>

#include "bl-protocol.h"

G_BEGIN_DECLS

/**
 * BlTextSourceKind:
 * @BL_TEXT_SOURCE_PLAIN: any UTF-8 text file, used as-is under every protocol
 * @BL_TEXT_SOURCE_WIKITEXT2_RAW: WikiText-2 raw (`wiki.{test,valid,train}.raw`), one
 *   line per Hugging Face row; see bl_text_source_get_protocol_text()
 * @BL_TEXT_SOURCE_PTB: Mikolov's Penn Treebank LM text (`ptb.{test,valid,train}.txt`),
 *   used as-is under every protocol
 * @BL_TEXT_SOURCE_BROWN: a plain-text split of the Brown Corpus (tools/BROWN.md), built by
 *   bl_brown_load_split() or read from the `brown-{train,validation,test}.txt` that
 *   tools/brown-to-text writes; used as-is under every protocol
 *
 * How a file is read. The kind is stored with every run, because it decides the exact
 * string a protocol tokenizes.
 */
typedef enum
{
  BL_TEXT_SOURCE_PLAIN,
  BL_TEXT_SOURCE_WIKITEXT2_RAW,
  BL_TEXT_SOURCE_PTB,
  BL_TEXT_SOURCE_BROWN,
} BlTextSourceKind;

const char      *bl_text_source_kind_to_string    (BlTextSourceKind  kind);
gboolean         bl_text_source_kind_from_string  (const char       *name,
                                                   BlTextSourceKind *out_kind);
BlTextSourceKind bl_text_source_kind_from_path    (const char       *path);

#define BL_TYPE_TEXT_SOURCE (bl_text_source_get_type ())
G_DECLARE_FINAL_TYPE (BlTextSource, bl_text_source, BL, TEXT_SOURCE, GObject)

BlTextSource    *bl_text_source_new_from_file     (const char       *path,
                                                   BlTextSourceKind  kind,
                                                   GError          **error);
BlTextSource    *bl_text_source_new_from_text     (const char       *name,
                                                   const char       *path,
                                                   BlTextSourceKind  kind,
                                                   char             *text,
                                                   gsize             len,
                                                   GError          **error);

BlTextSourceKind bl_text_source_get_kind          (BlTextSource     *self);
const char      *bl_text_source_get_path          (BlTextSource     *self);
const char      *bl_text_source_get_name          (BlTextSource     *self);
const char      *bl_text_source_get_sha256        (BlTextSource     *self);
const char      *bl_text_source_get_text          (BlTextSource     *self,
                                                   gsize            *len);
const char      *bl_text_source_get_protocol_text (BlTextSource     *self,
                                                   BlProtocol        protocol,
                                                   gsize            *len);

G_END_DECLS
