/* bl-tokenizer.h: Hugging Face tokenizer.json BPE (SentencePiece-style and byte-level)
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <gio/gio.h>
#include <stdint.h>

G_BEGIN_DECLS

#define BL_TYPE_TOKENIZER (bl_tokenizer_get_type ())
G_DECLARE_FINAL_TYPE (BlTokenizer, bl_tokenizer, BL, TOKENIZER, GObject)

/* @config_path (tokenizer_config.json) may be NULL; it decides add_bos_token and names BOS/EOS. */
BlTokenizer *bl_tokenizer_new_from_file (const char   *tokenizer_json_path,
                                         const char   *config_path,
                                         GError      **error);
/* Same, from memory; @source_name is used in error messages. Used by the fuzz target. */
BlTokenizer *bl_tokenizer_new_from_data (const char   *tokenizer_json,
                                         gsize         tokenizer_json_len,
                                         const char   *config_json,
                                         gsize         config_json_len,
                                         const char   *source_name,
                                         GError      **error);

/* Encodes UTF-8 @text (length @len, or -1 for NUL-terminated). Adds BOS first when
 * @add_bos is TRUE and the tokenizer has a BOS token. Returns a GArray of int32_t ids. */
GArray      *bl_tokenizer_encode        (BlTokenizer  *self,
                                         const char   *text,
                                         gssize        len,
                                         gboolean      add_bos);
char        *bl_tokenizer_decode        (BlTokenizer  *self,
                                         const int32_t *ids,
                                         gsize         n_ids);
/* The text of one token id as stored in the vocab (NULL when out of range). */
const char  *bl_tokenizer_id_to_piece   (BlTokenizer  *self,
                                         int32_t       id);
int32_t      bl_tokenizer_piece_to_id   (BlTokenizer  *self,
                                         const char   *piece);
int          bl_tokenizer_get_vocab_size (BlTokenizer *self);
int32_t      bl_tokenizer_get_bos_id    (BlTokenizer  *self);   /* -1 when none */
int32_t      bl_tokenizer_get_eos_id    (BlTokenizer  *self);   /* -1 when none */
/* add_bos_token from tokenizer_config.json (or the post-processor template) */
gboolean     bl_tokenizer_get_add_bos   (BlTokenizer  *self);
/* "sentencepiece" or "byte-level" */
const char  *bl_tokenizer_get_style     (BlTokenizer  *self);
/* sha256 hex of tokenizer.json bytes (plus tokenizer_config.json when given) */
const char  *bl_tokenizer_get_hash      (BlTokenizer  *self);

G_END_DECLS
