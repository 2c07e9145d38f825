/* bl-bpe-private.h: the piece table, merge table and merge loop behind BlTokenizer
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * Plain C, no GObject: these run once per character and once per merge.
 */
#pragma once

#include <glib.h>
#include <stdint.h>

G_BEGIN_DECLS

/* Ranks are packed with a symbol position into one 64-bit heap key, so a merge table holds
 * at most BL_BPE_MAX_MERGES merges and a word at most 2^40 symbols. */
#define BL_BPE_MAX_MERGES (1u << 24)

typedef struct _BlBpeVocab   BlBpeVocab;
typedef struct _BlBpeMerges  BlBpeMerges;
typedef struct _BlBpeScratch BlBpeScratch;

/* piece bytes (with explicit length, so U+0000 is an ordinary character) -> id */
BlBpeVocab   *bl_bpe_vocab_new           (void);
void          bl_bpe_vocab_free          (BlBpeVocab        *vocab);
/* Returns the stored copy of @piece, which lives as long as @vocab. */
const char   *bl_bpe_vocab_insert        (BlBpeVocab        *vocab,
                                          const char        *piece,
                                          gsize              len,
                                          int32_t            id);
/* -1 when absent */
int32_t       bl_bpe_vocab_lookup        (const BlBpeVocab  *vocab,
                                          const char        *piece,
                                          gsize              len);

/* (left id, right id) -> (rank, merged id); inserting a pair again replaces it */
BlBpeMerges  *bl_bpe_merges_new          (void);
void          bl_bpe_merges_free         (BlBpeMerges       *merges);
void          bl_bpe_merges_insert       (BlBpeMerges       *merges,
                                          int32_t            left,
                                          int32_t            right,
                                          uint32_t           rank,
                                          int32_t            merged);
gboolean      bl_bpe_merges_lookup       (const BlBpeMerges *merges,
                                          int32_t            left,
                                          int32_t            right,
                                          uint32_t          *rank,
                                          int32_t           *merged);

/* Reusable buffers for bl_bpe_merge_word(); one per thread. */
BlBpeScratch *bl_bpe_scratch_new         (void);
void          bl_bpe_scratch_free        (BlBpeScratch      *scratch);

/* Merges the symbols @ids[0..@n_ids) in place and returns how many remain. */
gsize         bl_bpe_merge_word          (const BlBpeMerges *merges,
                                          int32_t           *ids,
                                          gsize              n_ids,
                                          BlBpeScratch      *scratch);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (BlBpeVocab, bl_bpe_vocab_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BlBpeMerges, bl_bpe_merges_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BlBpeScratch, bl_bpe_scratch_free)

G_END_DECLS
