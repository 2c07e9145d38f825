/* bl-bpe.c: the piece table, merge table and merge loop behind BlTokenizer
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * The merge loop is the one of Hugging Face tokenizers (tokenizers/src/models/bpe/word.rs,
 * Word::merge_all) and of sentencepiece's bpe_model.cc: the symbols form a linked list and
 * a binary heap holds every adjacent pair that has a merge, keyed by (rank, position of the
 * left symbol). Popping the minimum merges the lowest-rank pair, leftmost on ties; entries
 * made stale by earlier merges are recognised on pop and dropped (lazy invalidation). A word
 * of n symbols costs O(n log n), which matters for the SentencePiece style: it has no
 * pre-tokenizer, so a whole document is one word.
 *
 * Both hash tables use open addressing over plain arrays: no allocation per entry and one
 * cache line per probe on the hot path.
 */
#include "bl-bpe-private.h"

#include <string.h>

#define EMPTY_KEY UINT64_MAX
#define POS_BITS  40
#define POS_MASK  ((UINT64_C (1) << POS_BITS) - 1)

/* Fibonacci hashing (Knuth, TAOCP vol. 3, §6.4): multiply by 2^64/φ, keep the top bits. */
static inline gsize
hash_u64 (uint64_t key,
          guint    bits)
{
  return (gsize) ((key * UINT64_C (0x9E3779B97F4A7C15)) >> (64 - bits));
}

/* FNV-1a, 64 bit (Fowler, Noll, Vo; http://www.isthe.com/chongo/tech/comp/fnv/). */
static inline uint64_t
hash_bytes (const char *s,
            gsize       len)
{
  uint64_t h = UINT64_C (0xcbf29ce484222325);

  for (gsize i = 0; i < len; i++)
    {
      h ^= (guchar) s[i];
      h *= UINT64_C (0x100000001b3);
    }
  return h;
}

/* ---- piece table ---- */

typedef struct
{
  const char *piece;   /* NULL: empty slot */
  uint32_t    len;
  int32_t     id;
} VocabSlot;

struct _BlBpeVocab
{
  GStringChunk *strings;
  VocabSlot    *slots;
  guint         bits;
  gsize         n_used;
};

BlBpeVocab *
bl_bpe_vocab_new (void)
{
  BlBpeVocab *vocab = g_new0 (BlBpeVocab, 1);

  vocab->strings = g_string_chunk_new (4096);
  vocab->bits = 6;
  vocab->slots = g_new0 (VocabSlot, (gsize) 1 << vocab->bits);
  return vocab;
}

void
bl_bpe_vocab_free (BlBpeVocab *vocab)
{
  if (vocab == NULL)
    return;
  g_string_chunk_free (vocab->strings);
  g_free (vocab->slots);
  g_free (vocab);
}

static VocabSlot *
vocab_find_slot (VocabSlot  *slots,
                 guint       bits,
                 const char *piece,
                 gsize       len)
{
  gsize mask = ((gsize) 1 << bits) - 1;
  gsize i = hash_u64 (hash_bytes (piece, len), bits);

  for (;; i = (i + 1) & mask)
    {
      VocabSlot *slot = &slots[i];

      if (slot->piece == NULL
          || (slot->len == len && memcmp (slot->piece, piece, len) == 0))
        return slot;
    }
}

static void
vocab_grow (BlBpeVocab *vocab)
{
  guint bits = vocab->bits + 1;
  VocabSlot *slots = g_new0 (VocabSlot, (gsize) 1 << bits);

  for (gsize i = 0; i < ((gsize) 1 << vocab->bits); i++)
    if (vocab->slots[i].piece != NULL)
      *vocab_find_slot (slots, bits, vocab->slots[i].piece, vocab->slots[i].len) = vocab->slots[i];

  g_free (vocab->slots);
  vocab->slots = slots;
  vocab->bits = bits;
}

const char *
bl_bpe_vocab_insert (BlBpeVocab *vocab,
                     const char *piece,
                     gsize       len,
                     int32_t     id)
{
  VocabSlot *slot;

  g_return_val_if_fail (len < G_MAXUINT32, NULL);

  /* Keep the load factor at or below 1/2 so probe chains stay short. */
  if (2 * (vocab->n_used + 1) > ((gsize) 1 << vocab->bits))
    vocab_grow (vocab);

  slot = vocab_find_slot (vocab->slots, vocab->bits, piece, len);
  if (slot->piece == NULL)
    {
      slot->piece = g_string_chunk_insert_len (vocab->strings, piece, len);
      slot->len = len;
      vocab->n_used++;
    }
  slot->id = id;
  return slot->piece;
}

int32_t
bl_bpe_vocab_lookup (const BlBpeVocab *vocab,
                     const char       *piece,
                     gsize             len)
{
  const VocabSlot *slot = vocab_find_slot (vocab->slots, vocab->bits, piece, len);

  return slot->piece != NULL ? slot->id : -1;
}

/* ---- merge table ---- */

typedef struct
{
  uint64_t key;       /* left << 32 | right, EMPTY_KEY when free */
  uint32_t rank;
  int32_t  merged;
} MergeSlot;

struct _BlBpeMerges
{
  MergeSlot *slots;
  guint      bits;
  gsize      n_used;
};

static inline uint64_t
pair_key (int32_t left,
          int32_t right)
{
  return ((uint64_t) (uint32_t) left << 32) | (uint32_t) right;
}

static MergeSlot *
merges_alloc_slots (guint bits)
{
  gsize n = (gsize) 1 << bits;
  MergeSlot *slots = g_new (MergeSlot, n);

  for (gsize i = 0; i < n; i++)
    slots[i].key = EMPTY_KEY;
  return slots;
}

BlBpeMerges *
bl_bpe_merges_new (void)
{
  BlBpeMerges *merges = g_new0 (BlBpeMerges, 1);

  merges->bits = 6;
  merges->slots = merges_alloc_slots (merges->bits);
  return merges;
}

void
bl_bpe_merges_free (BlBpeMerges *merges)
{
  if (merges == NULL)
    return;
  g_free (merges->slots);
  g_free (merges);
}

static inline MergeSlot *
merges_find_slot (MergeSlot *slots,
                  guint      bits,
                  uint64_t   key)
{
  gsize mask = ((gsize) 1 << bits) - 1;
  gsize i = hash_u64 (key, bits);

  while (slots[i].key != key && slots[i].key != EMPTY_KEY)
    i = (i + 1) & mask;
  return &slots[i];
}

void
bl_bpe_merges_insert (BlBpeMerges *merges,
                      int32_t      left,
                      int32_t      right,
                      uint32_t     rank,
                      int32_t      merged)
{
  uint64_t key = pair_key (left, right);
  MergeSlot *slot;

  g_return_if_fail (left >= 0 && right >= 0 && rank < BL_BPE_MAX_MERGES);

  if (2 * (merges->n_used + 1) > ((gsize) 1 << merges->bits))
    {
      guint bits = merges->bits + 1;
      MergeSlot *slots = merges_alloc_slots (bits);

      for (gsize i = 0; i < ((gsize) 1 << merges->bits); i++)
        if (merges->slots[i].key != EMPTY_KEY)
          *merges_find_slot (slots, bits, merges->slots[i].key) = merges->slots[i];
      g_free (merges->slots);
      merges->slots = slots;
      merges->bits = bits;
    }

  slot = merges_find_slot (merges->slots, merges->bits, key);
  if (slot->key == EMPTY_KEY)
    merges->n_used++;
  slot->key = key;
  slot->rank = rank;
  slot->merged = merged;
}

gboolean
bl_bpe_merges_lookup (const BlBpeMerges *merges,
                      int32_t            left,
                      int32_t            right,
                      uint32_t          *rank,
                      int32_t           *merged)
{
  const MergeSlot *slot = merges_find_slot (merges->slots, merges->bits, pair_key (left, right));

  if (slot->key == EMPTY_KEY)
    return FALSE;
  *rank = slot->rank;
  *merged = slot->merged;
  return TRUE;
}

/* ---- merge loop ---- */

struct _BlBpeScratch
{
  gssize   *prev;
  gssize   *next;
  gsize     n_alloc;
  uint64_t *heap;      /* rank << POS_BITS | position: one compare orders (rank, position) */
  gsize     heap_len;
  gsize     heap_alloc;
};

BlBpeScratch *
bl_bpe_scratch_new (void)
{
  return g_new0 (BlBpeScratch, 1);
}

void
bl_bpe_scratch_free (BlBpeScratch *scratch)
{
  if (scratch == NULL)
    return;
  g_free (scratch->prev);
  g_free (scratch->next);
  g_free (scratch->heap);
  g_free (scratch);
}

static inline void
heap_sift_down (uint64_t *heap,
                gsize     len,
                gsize     i)
{
  uint64_t v = heap[i];

  for (;;)
    {
      gsize c = 2 * i + 1;

      if (c >= len)
        break;
      if (c + 1 < len && heap[c + 1] < heap[c])
        c++;
      if (heap[c] >= v)
        break;
      heap[i] = heap[c];
      i = c;
    }
  heap[i] = v;
}

static inline void
heap_push (BlBpeScratch *s,
           uint64_t      v)
{
  gsize i;

  if (s->heap_len == s->heap_alloc)
    {
      s->heap_alloc = MAX (64, 2 * s->heap_alloc);
      s->heap = g_renew (uint64_t, s->heap, s->heap_alloc);
    }
  i = s->heap_len++;
  while (i > 0)
    {
      gsize parent = (i - 1) / 2;

      if (s->heap[parent] <= v)
        break;
      s->heap[i] = s->heap[parent];
      i = parent;
    }
  s->heap[i] = v;
}

static inline uint64_t
heap_pop (BlBpeScratch *s)
{
  uint64_t top = s->heap[0];

  s->heap[0] = s->heap[--s->heap_len];
  if (s->heap_len > 0)
    heap_sift_down (s->heap, s->heap_len, 0);
  return top;
}

gsize
bl_bpe_merge_word (const BlBpeMerges *merges,
                   int32_t           *ids,
                   gsize              n_ids,
                   BlBpeScratch      *s)
{
  gssize *prev, *next;
  uint32_t rank;
  int32_t merged;
  gsize out = 0;

  if (n_ids < 2)
    return n_ids;
  g_return_val_if_fail (n_ids <= POS_MASK, n_ids);

  if (s->n_alloc < n_ids)
    {
      s->n_alloc = MAX (n_ids, 2 * s->n_alloc);
      s->prev = g_renew (gssize, s->prev, s->n_alloc);
      s->next = g_renew (gssize, s->next, s->n_alloc);
    }
  prev = s->prev;
  next = s->next;

  s->heap_len = 0;
  for (gsize i = 0; i < n_ids; i++)
    {
      prev[i] = (gssize) i - 1;
      next[i] = i + 1 < n_ids ? (gssize) i + 1 : -1;
      if (i + 1 < n_ids && bl_bpe_merges_lookup (merges, ids[i], ids[i + 1], &rank, &merged))
        {
          if (s->heap_len == s->heap_alloc)
            {
              s->heap_alloc = MAX (64, MAX (n_ids, 2 * s->heap_alloc));
              s->heap = g_renew (uint64_t, s->heap, s->heap_alloc);
            }
          s->heap[s->heap_len++] = (uint64_t) rank << POS_BITS | i;
        }
    }
  for (gsize i = s->heap_len / 2; i-- > 0;)
    heap_sift_down (s->heap, s->heap_len, i);

  while (s->heap_len > 0)
    {
      uint64_t top = heap_pop (s);
      gsize pos = top & POS_MASK;
      gssize right, after, before;

      /* Stale entries: the left symbol was merged away, lost its right neighbour, or the
       * pair at pos changed. A rank names exactly one pair, so an equal rank means the
       * entry still describes the current pair. */
      if (ids[pos] < 0 || next[pos] < 0)
        continue;
      right = next[pos];
      if (!bl_bpe_merges_lookup (merges, ids[pos], ids[right], &rank, &merged)
          || rank != top >> POS_BITS)
        continue;

      ids[pos] = merged;
      ids[right] = -1;
      after = next[right];
      next[pos] = after;
      if (after >= 0)
        prev[after] = pos;

      before = prev[pos];
      if (before >= 0 && bl_bpe_merges_lookup (merges, ids[before], ids[pos], &rank, &merged))
        heap_push (s, (uint64_t) rank << POS_BITS | (gsize) before);
      if (after >= 0 && bl_bpe_merges_lookup (merges, ids[pos], ids[after], &rank, &merged))
        heap_push (s, (uint64_t) rank << POS_BITS | pos);
    }

  /* Merging keeps the left position, so array order is still the word's order. */
  for (gsize i = 0; i < n_ids; i++)
    if (ids[i] >= 0)
      ids[out++] = ids[i];
  return out;
}
