/* bl-tokenizer.c: Hugging Face tokenizer.json BPE (SentencePiece-style and byte-level)
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * The pipeline and its corner cases follow the Hugging Face `tokenizers` library
 * (huggingface/tokenizers, tokenizers/src), so that ids match it exactly:
 *
 *  1. Added tokens whose "normalized" flag is false are split out of the raw text,
 *     leftmost-longest, honouring single_word, lstrip and rstrip
 *     (tokenizer/added_vocabulary.rs, find_matches).
 *  2. Every remaining piece is normalized on its own (so a Prepend normalizer prepends to
 *     each piece), then the added tokens with "normalized": true are split out of it; their
 *     patterns are the normalized token contents (refresh_added_tokens).
 *  3. The pre-tokenizers cut each piece into words (pre_tokenizers/split.rs, digits.rs,
 *     byte_level.rs; ByteLevel's add_prefix_space applies to every piece it receives).
 *  4. BPE turns each word into ids (models/bpe/model.rs merge_word, word.rs merge_all):
 *     characters missing from the vocabulary become <0xNN> byte pieces when byte_fallback
 *     is set and all of their bytes have one, else <unk>; with fuse_unk, consecutive unknown
 *     characters share one <unk>, without it each unknown character gets its own (so one
 *     <unk> per character, not per UTF-8 byte). As in the library, a pending <unk> is
 *     flushed by the next character found in the vocabulary, not by byte-fallback pieces.
 *     With ignore_merges, a word that is itself in the vocabulary is emitted whole.
 *
 * Deliberate differences: the library fails to encode when unk_token is set but missing
 * from the vocabulary; encode here has no error path and drops such characters, exactly as
 * when unk_token is null. Invalid UTF-8 input (the library only takes valid strings) is
 * first repaired with one U+FFFD per maximal ill-formed subsequence. Components the library
 * has but these models do not use (Unigram/WordPiece models, Metaspace, BPE dropout,
 * subword prefixes, …) are refused at load with BL_ERROR_UNSUPPORTED_FORMAT rather than
 * approximated.
 */
#include "bl-tokenizer.h"

#include <json-glib/json-glib.h>
#include <string.h>

#include "bl-bpe-private.h"
#include "bl-error.h"

/* Code points below this get their vocabulary id from a table: Latin, Greek, Cyrillic,
 * GPT-2's byte characters (up to U+0143) and SentencePiece's ▁ (U+2581) all fit. */
#define CHAR_TABLE_SIZE 0x3000
/* Words up to this many bytes are cached; longer ones are rare and rarely repeat. */
#define CACHE_MAX_WORD  128
#define CACHE_MAX_SIZE  (1 << 17)
/* Nesting limit for Sequence components, so hostile files cannot exhaust the stack. */
#define MAX_DEPTH       16
/* Ids must be dense-ish: an id far beyond the number of pieces would size arrays by it. */
#define MAX_ID          (1 << 24)

/* tokenizers/src/pre_tokenizers/byte_level.rs (the GPT-2 pattern) */
static const char gpt2_pattern[] =
  "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

typedef struct
{
  char   *literal;        /* NULL for a regex */
  gsize   literal_len;
  GRegex *regex;
} Pattern;

typedef enum
{
  SPLIT_REMOVED,
  SPLIT_ISOLATED,
  SPLIT_MERGED_WITH_PREVIOUS,
  SPLIT_MERGED_WITH_NEXT,
  SPLIT_CONTIGUOUS,
} SplitBehavior;

typedef enum
{
  NORM_PREPEND,
  NORM_REPLACE,
  NORM_UNICODE,
} NormKind;

typedef struct
{
  NormKind        kind;
  char           *text;        /* Prepend's prefix, Replace's content */
  Pattern         pattern;
  GNormalizeMode  mode;
} NormStep;

typedef enum
{
  PRE_SPLIT,
  PRE_BYTE_LEVEL,
} PreKind;

typedef struct
{
  PreKind        kind;
  Pattern        pattern;      /* Split's pattern, Digits' \p{N}, ByteLevel's GPT-2 regex */
  SplitBehavior  behavior;
  gboolean       invert;
  gboolean       add_prefix_space;
  gboolean       use_regex;
} PreStep;

typedef enum
{
  DEC_REPLACE,
  DEC_BYTE_FALLBACK,
  DEC_FUSE,
  DEC_STRIP,
  DEC_BYTE_LEVEL,
} DecKind;

typedef struct
{
  DecKind   kind;
  Pattern   pattern;
  char     *text;
  gunichar  strip_char;
  gsize     strip_start;
  gsize     strip_stop;
} DecStep;

typedef struct
{
  const char *content;    /* as matched: normalized for "normalized" tokens */
  gsize       len;
  int32_t     id;
  gboolean    lstrip;
  gboolean    rstrip;
  gboolean    single_word;
  gboolean    normalized;
} AddedPattern;

/* Added tokens sorted by first byte, longest first within a byte: the first hit at a
 * position is the leftmost-longest match. */
typedef struct
{
  GArray *items;          /* AddedPattern */
  guint   bucket[257];    /* items of first byte b: [bucket[b], bucket[b + 1]) */
} AddedMatcher;

typedef struct
{
  gsize   start;
  gsize   end;
  int32_t id;             /* added token id, or -1 for text */
} Piece;

typedef struct
{
  const char *piece;
  int32_t     id;
} VocabEntry;

typedef struct
{
  gsize    start;
  gsize    end;
  gboolean is_match;
} Match;

typedef struct
{
  gsize start;
  gsize end;
} Span;

typedef struct
{
  guint   n;
  int32_t ids[];
} CachedWord;

struct _BlTokenizer
{
  GObject parent_instance;

  /* vocabulary */
  BlBpeVocab   *vocab;          /* the model's vocabulary */
  BlBpeVocab   *added_vocab;    /* added tokens, looked up first by piece_to_id */
  const char  **id_to_piece;    /* n_ids entries, NULL for unused ids */
  int           n_ids;
  int32_t      *char_ids;       /* CHAR_TABLE_SIZE entries, -1 when not a piece */
  int32_t       byte_ids[256];  /* <0xNN> pieces, -1 when absent */

  /* BPE model */
  BlBpeMerges  *merges;
  int32_t       unk_id;
  gboolean      byte_fallback;
  gboolean      fuse_unk;
  gboolean      ignore_merges;

  /* pipeline */
  AddedMatcher  raw_added;
  AddedMatcher  normalized_added;
  GArray       *normalizers;    /* NormStep */
  GArray       *pre_tokenizers; /* PreStep */
  GArray       *decoders;       /* DecStep */
  gboolean      has_decoder;

  /* per-word results of the pre-tokenized styles */
  GMutex        cache_lock;
  GHashTable   *cache;          /* GBytes -> CachedWord */

  int32_t       bos_id;
  int32_t       eos_id;
  gboolean      add_bos;
  const char   *style;
  char         *hash;
  GStringChunk *strings;
};

G_DEFINE_FINAL_TYPE (BlTokenizer, bl_tokenizer, G_TYPE_OBJECT)

/* GPT-2's reversible byte <-> printable character map (openai/gpt-2, src/encoder.py,
 * bytes_to_unicode); filled once in class_init. */
static char    byte_char_utf8[256][3];
static guint8  byte_char_len[256];
static int16_t char_byte[0x144];

/* ---- small helpers ---- */

static gboolean G_GNUC_PRINTF (4, 5)
fail (GError      **error,
      BlErrorCode   code,
      const char   *source,
      const char   *format,
      ...)
{
  g_autofree char *message = NULL;
  va_list args;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);
  g_set_error (error, BL_ERROR, code, "%s: %s", source, message);
  return FALSE;
}

/* Unicode's White_Space property (PropList.txt), as Rust's char::is_whitespace. */
static gboolean
is_white_space (gunichar c)
{
  return (c >= 0x09 && c <= 0x0d) || c == 0x20 || c == 0x85 || c == 0xa0 || c == 0x1680
         || (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 || c == 0x202f
         || c == 0x205f || c == 0x3000;
}

/* Unicode's \w (UTS #18, Annex C): alphabetic, marks, decimal digits, connector
 * punctuation and the joiners. */
static gboolean
is_word_char (gunichar c)
{
  GUnicodeType t = g_unichar_type (c);

  return g_unichar_isalpha (c) || g_unichar_ismark (c) || t == G_UNICODE_DECIMAL_NUMBER
         || t == G_UNICODE_LETTER_NUMBER || t == G_UNICODE_CONNECT_PUNCTUATION
         || c == 0x200c || c == 0x200d;
}

/* Appends @s, replacing each maximal ill-formed subsequence by one U+FFFD (Unicode 15.0,
 * §3.9 "U+FFFD Substitution of Maximal Subparts"), as Rust's String::from_utf8_lossy does.
 * U+0000 is kept: it is valid UTF-8. */
static void
append_utf8_lossy (GString    *out,
                   const char *s,
                   gsize       len)
{
  const guchar *p = (const guchar *) s;
  gsize i = 0;

  while (i < len)
    {
      guchar c = p[i];
      guchar lo = 0x80, hi = 0xbf;
      gsize need, j;

      if (c < 0x80)
        {
          g_string_append_c (out, c);
          i++;
          continue;
        }
      if (c >= 0xc2 && c <= 0xdf)
        need = 1;
      else if (c >= 0xe0 && c <= 0xef)
        {
          need = 2;
          lo = c == 0xe0 ? 0xa0 : 0x80;
          hi = c == 0xed ? 0x9f : 0xbf;
        }
      else if (c >= 0xf0 && c <= 0xf4)
        {
          need = 3;
          lo = c == 0xf0 ? 0x90 : 0x80;
          hi = c == 0xf4 ? 0x8f : 0xbf;
        }
      else
        {
          g_string_append (out, "\xef\xbf\xbd");
          i++;
          continue;
        }

      for (j = 1; j <= need && i + j < len; j++)
        {
          if (p[i + j] < lo || p[i + j] > hi)
            break;
          lo = 0x80;
          hi = 0xbf;
        }
      if (j == need + 1)
        g_string_append_len (out, s + i, j);
      else
        g_string_append (out, "\xef\xbf\xbd");
      i += j;
    }
}

/* Like g_utf8_validate_len(), but U+0000 is valid. */
static gboolean
utf8_is_valid (const char *s,
               gsize       len)
{
  const char *end;

  while (!g_utf8_validate_len (s, len, &end))
    {
      if (end == s + len || *end != '\0')
        return FALSE;
      len -= end - s + 1;
      s = end + 1;
    }
  return TRUE;
}

static void
pattern_clear (Pattern *p)
{
  g_clear_pointer (&p->literal, g_free);
  g_clear_pointer (&p->regex, g_regex_unref);
}

static gboolean
pattern_compile_regex (Pattern     *p,
                       const char  *regex,
                       const char  *source,
                       const char  *where,
                       GError     **error)
{
  g_autoptr(GError) local_error = NULL;

  p->regex = g_regex_new (regex, G_REGEX_OPTIMIZE, 0, &local_error);
  if (p->regex == NULL)
    return fail (error, BL_ERROR_CORRUPT_FILE, source, "%s: bad regex: %s", where,
                 local_error->message);
  return TRUE;
}

/* The pieces of @s as (start, end, is_match), gaps included, in order, as the library's
 * Pattern::find_matches. */
static void
pattern_find (const Pattern *p,
              const char    *s,
              gsize          len,
              GArray        *matches)
{
  gsize prev = 0;

  g_array_set_size (matches, 0);
  if (len == 0)
    {
      Match m = { 0, 0, FALSE };
      g_array_append_val (matches, m);
      return;
    }

  if (p->literal != NULL)
    {
      gsize i = 0;

      while (i + p->literal_len <= len)
        {
          const char *hit = memchr (s + i, p->literal[0], len - i - p->literal_len + 1);

          if (hit == NULL)
            break;
          i = hit - s;
          if (memcmp (hit, p->literal, p->literal_len) != 0)
            {
              i++;
              continue;
            }
          if (prev != i)
            g_array_append_vals (matches, &(Match) { prev, i, FALSE }, 1);
          g_array_append_vals (matches, &(Match) { i, i + p->literal_len, TRUE }, 1);
          i += p->literal_len;
          prev = i;
        }
    }
  else
    {
      g_autoptr(GMatchInfo) info = NULL;

      g_regex_match_full (p->regex, s, len, 0, 0, &info, NULL);
      while (g_match_info_matches (info))
        {
          int ms, me;

          g_match_info_fetch_pos (info, 0, &ms, &me);
          if (prev != (gsize) ms)
            g_array_append_vals (matches, &(Match) { prev, ms, FALSE }, 1);
          g_array_append_vals (matches, &(Match) { ms, me, TRUE }, 1);
          prev = me;
          g_match_info_next (info, NULL);
        }
    }

  if (prev != len)
    g_array_append_vals (matches, &(Match) { prev, len, FALSE }, 1);
}

/* Turns matches into the kept spans, as NormalizedString::split (normalizer.rs), adding
 * @base to every offset and dropping empty spans as PreTokenizedString::split does. */
static void
apply_behavior (GArray        *matches,
                SplitBehavior  behavior,
                gsize          base,
                GArray        *spans)
{
  Match *m = (Match *) matches->data;
  gsize first = spans->len;
  gboolean prev_match = FALSE;

  switch (behavior)
    {
    case SPLIT_REMOVED:
    case SPLIT_ISOLATED:
      for (guint i = 0; i < matches->len; i++)
        if (behavior == SPLIT_ISOLATED || !m[i].is_match)
          g_array_append_vals (spans, &(Span) { m[i].start, m[i].end }, 1);
      break;

    case SPLIT_CONTIGUOUS:
    case SPLIT_MERGED_WITH_PREVIOUS:
      for (guint i = 0; i < matches->len; i++)
        {
          gboolean join = behavior == SPLIT_CONTIGUOUS
                          ? m[i].is_match == prev_match
                          : m[i].is_match && !prev_match;

          if (join && spans->len > first)
            g_array_index (spans, Span, spans->len - 1).end = m[i].end;
          else
            g_array_append_vals (spans, &(Span) { m[i].start, m[i].end }, 1);
          prev_match = m[i].is_match;
        }
      break;

    case SPLIT_MERGED_WITH_NEXT:
      for (guint i = matches->len; i-- > 0;)
        {
          if (m[i].is_match && !prev_match && spans->len > first)
            g_array_index (spans, Span, spans->len - 1).start = m[i].start;
          else
            g_array_append_vals (spans, &(Span) { m[i].start, m[i].end }, 1);
          prev_match = m[i].is_match;
        }
      for (gsize a = first, b = spans->len; a + 1 < b; a++, b--)
        {
          Span t = g_array_index (spans, Span, a);
          g_array_index (spans, Span, a) = g_array_index (spans, Span, b - 1);
          g_array_index (spans, Span, b - 1) = t;
        }
      break;

    default:
      g_assert_not_reached ();
    }

  /* Offset and drop empty spans in place. */
  {
    gsize out = first;

    for (gsize i = first; i < spans->len; i++)
      {
        Span sp = g_array_index (spans, Span, i);

        if (sp.end > sp.start)
          g_array_index (spans, Span, out++) = (Span) { sp.start + base, sp.end + base };
      }
    g_array_set_size (spans, out);
  }
}

/* ---- normalization ---- */

static void
normalize_unicode (GString        *out,
                   const char     *s,
                   gsize           len,
                   GNormalizeMode  mode)
{
  /* g_utf8_normalize() stops at U+0000; a NUL never combines, so normalize around it. */
  while (TRUE)
    {
      const char *nul = memchr (s, '\0', len);
      gsize chunk = nul != NULL ? (gsize) (nul - s) : len;
      g_autofree char *n = g_utf8_normalize (s, chunk, mode);

      if (n != NULL)
        g_string_append (out, n);
      else
        g_string_append_len (out, s, chunk);
      if (nul == NULL)
        break;
      g_string_append_c (out, '\0');
      s += chunk + 1;
      len -= chunk + 1;
    }
}

/* Normalizes @s into @out; @tmp is scratch space. */
static void
normalize (GArray     *steps,
           const char *s,
           gsize       len,
           GString   **out,
           GString   **tmp,
           GArray     *matches)
{
  g_string_truncate (*out, 0);
  g_string_append_len (*out, s, len);

  for (guint k = 0; k < steps->len; k++)
    {
      const NormStep *step = &g_array_index (steps, NormStep, k);
      GString *cur = *out, *next = *tmp;

      g_string_truncate (next, 0);
      switch (step->kind)
        {
        case NORM_PREPEND:
          if (cur->len == 0)
            continue;
          g_string_append (next, step->text);
          g_string_append_len (next, cur->str, cur->len);
          break;

        case NORM_REPLACE:
          pattern_find (&step->pattern, cur->str, cur->len, matches);
          for (guint i = 0; i < matches->len; i++)
            {
              const Match *m = &g_array_index (matches, Match, i);

              if (m->is_match)
                g_string_append (next, step->text);
              else
                g_string_append_len (next, cur->str + m->start, m->end - m->start);
            }
          break;

        case NORM_UNICODE:
          normalize_unicode (next, cur->str, cur->len, step->mode);
          break;

        default:
          g_assert_not_reached ();
        }
      *out = next;
      *tmp = cur;
    }
}

/* ---- added tokens ---- */

static int
compare_added (gconstpointer a,
               gconstpointer b)
{
  const AddedPattern *x = a, *y = b;
  guchar fx = x->content[0], fy = y->content[0];

  if (fx != fy)
    return fx < fy ? -1 : 1;
  return x->len == y->len ? 0 : (x->len > y->len ? -1 : 1);
}

static void
added_matcher_finish (AddedMatcher *m)
{
  guint i = 0;

  /* g_array_sort is a stable merge sort (GLib >= 2.32): for two tokens with the same
   * content the first listed wins, like Aho-Corasick's lowest pattern index. */
  g_array_sort (m->items, compare_added);
  for (guint b = 0; b <= 256; b++)
    {
      while (i < m->items->len
             && (guchar) g_array_index (m->items, AddedPattern, i).content[0] < b)
        i++;
      m->bucket[b] = i;
    }
}

/* Splits @s into text pieces and added tokens, as AddedVocabulary::find_matches: the scan
 * resumes at the end of each match as found, before lstrip/rstrip move its bounds. */
static void
split_added (const AddedMatcher *m,
             const char         *s,
             gsize               len,
             GArray             *pieces)
{
  gsize offset = 0, p = 0;

  g_array_set_size (pieces, 0);
  if (m->items->len == 0)
    {
      g_array_append_vals (pieces, &(Piece) { 0, len, -1 }, 1);
      return;
    }

  while (p < len)
    {
      guchar b = s[p];
      const AddedPattern *hit = NULL;
      gsize start, stop;

      for (guint i = m->bucket[b]; i < m->bucket[b + 1]; i++)
        {
          const AddedPattern *a = &g_array_index (m->items, AddedPattern, i);

          if (a->len <= len - p && memcmp (s + p, a->content, a->len) == 0)
            {
              hit = a;
              break;
            }
        }
      if (hit == NULL)
        {
          p++;
          continue;
        }

      start = p;
      stop = p + hit->len;
      p = stop;

      if (hit->single_word)
        {
          if (start > 0 && is_word_char (g_utf8_get_char (g_utf8_find_prev_char (s, s + start))))
            continue;
          if (stop < len && is_word_char (g_utf8_get_char (s + stop)))
            continue;
        }
      if (hit->lstrip)
        {
          gsize j = start;

          while (j > 0)
            {
              const char *q = g_utf8_find_prev_char (s, s + j);

              if (!is_white_space (g_utf8_get_char (q)))
                break;
              j = q - s;
            }
          start = MAX (j, offset);
        }
      if (hit->rstrip)
        while (stop < len && is_white_space (g_utf8_get_char (s + stop)))
          stop = g_utf8_next_char (s + stop) - s;

      if (offset < start)
        g_array_append_vals (pieces, &(Piece) { offset, start, -1 }, 1);
      g_array_append_vals (pieces, &(Piece) { start, stop, hit->id }, 1);
      offset = stop;
    }
  if (offset < len)
    g_array_append_vals (pieces, &(Piece) { offset, len, -1 }, 1);
}

/* ---- encoding ---- */

typedef struct
{
  BlBpeScratch *scratch;
  int32_t      *syms;
  gsize         n_syms_alloc;
  GString      *norm;
  GString      *norm_tmp;
  GString      *buf[2];
  GString      *prefixed;
  GArray       *raw_pieces;
  GArray       *norm_pieces;
  GArray       *spans;
  GArray       *spans_tmp;
  GArray       *matches;
  GArray       *sub_matches;
} EncodeState;

static void
encode_state_init (EncodeState *st)
{
  st->scratch = bl_bpe_scratch_new ();
  st->syms = NULL;
  st->n_syms_alloc = 0;
  st->norm = g_string_new (NULL);
  st->norm_tmp = g_string_new (NULL);
  st->buf[0] = g_string_new (NULL);
  st->buf[1] = g_string_new (NULL);
  st->prefixed = g_string_new (NULL);
  st->raw_pieces = g_array_new (FALSE, FALSE, sizeof (Piece));
  st->norm_pieces = g_array_new (FALSE, FALSE, sizeof (Piece));
  st->spans = g_array_new (FALSE, FALSE, sizeof (Span));
  st->spans_tmp = g_array_new (FALSE, FALSE, sizeof (Span));
  st->matches = g_array_new (FALSE, FALSE, sizeof (Match));
  st->sub_matches = g_array_new (FALSE, FALSE, sizeof (Match));
}

static void
encode_state_clear (EncodeState *st)
{
  bl_bpe_scratch_free (st->scratch);
  g_free (st->syms);
  g_string_free (st->norm, TRUE);
  g_string_free (st->norm_tmp, TRUE);
  g_string_free (st->buf[0], TRUE);
  g_string_free (st->buf[1], TRUE);
  g_string_free (st->prefixed, TRUE);
  g_array_unref (st->raw_pieces);
  g_array_unref (st->norm_pieces);
  g_array_unref (st->spans);
  g_array_unref (st->spans_tmp);
  g_array_unref (st->matches);
  g_array_unref (st->sub_matches);
}

/* The initial symbols of a word (merge_word in models/bpe/model.rs); returns their count. */
static gsize
word_symbols (BlTokenizer *self,
              const char  *w,
              gsize        len,
              EncodeState *st)
{
  gboolean pending_unk = FALSE;
  int32_t *syms;
  gsize n = 0;

  /* A character of k bytes adds at most k symbols counting the <unk> it may leave pending. */
  if (st->n_syms_alloc < len)
    {
      st->n_syms_alloc = MAX (len, 2 * st->n_syms_alloc);
      st->syms = g_renew (int32_t, st->syms, st->n_syms_alloc);
    }
  syms = st->syms;

  for (gsize i = 0; i < len;)
    {
      gunichar c = g_utf8_get_char (w + i);
      gsize clen = g_utf8_skip[(guchar) w[i]];
      int32_t id = c < CHAR_TABLE_SIZE ? self->char_ids[c]
                                       : bl_bpe_vocab_lookup (self->vocab, w + i, clen);

      if (id >= 0)
        {
          if (pending_unk)
            syms[n++] = self->unk_id;
          pending_unk = FALSE;
          syms[n++] = id;
        }
      else
        {
          gboolean have_bytes = self->byte_fallback;

          for (gsize j = 0; have_bytes && j < clen; j++)
            have_bytes = self->byte_ids[(guchar) w[i + j]] >= 0;
          if (have_bytes)
            {
              for (gsize j = 0; j < clen; j++)
                syms[n++] = self->byte_ids[(guchar) w[i + j]];
            }
          else if (self->unk_id >= 0)
            {
              if (pending_unk && !self->fuse_unk)
                syms[n++] = self->unk_id;
              pending_unk = TRUE;
            }
        }
      i += clen;
    }
  if (pending_unk)
    syms[n++] = self->unk_id;
  return n;
}

static void
encode_word (BlTokenizer *self,
             EncodeState *st,
             const char  *w,
             gsize        len,
             GArray      *out)
{
  g_autoptr(GBytes) key = NULL;
  gsize n;

  if (len == 0)
    return;

  if (self->ignore_merges)
    {
      int32_t id = bl_bpe_vocab_lookup (self->vocab, w, len);

      if (id >= 0)
        {
          g_array_append_val (out, id);
          return;
        }
    }

  if (self->pre_tokenizers->len > 0 && len <= CACHE_MAX_WORD)
    {
      const CachedWord *hit;

      key = g_bytes_new (w, len);
      g_mutex_lock (&self->cache_lock);
      hit = g_hash_table_lookup (self->cache, key);
      if (hit != NULL)
        g_array_append_vals (out, hit->ids, hit->n);
      g_mutex_unlock (&self->cache_lock);
      if (hit != NULL)
        return;
    }

  n = word_symbols (self, w, len, st);
  n = bl_bpe_merge_word (self->merges, st->syms, n, st->scratch);
  g_array_append_vals (out, st->syms, n);

  if (key != NULL)
    {
      CachedWord *cw = g_malloc (sizeof (CachedWord) + n * sizeof (int32_t));

      cw->n = n;
      memcpy (cw->ids, st->syms, n * sizeof (int32_t));
      g_mutex_lock (&self->cache_lock);
      if (g_hash_table_size (self->cache) < CACHE_MAX_SIZE)
        g_hash_table_replace (self->cache, g_steal_pointer (&key), cw);
      else
        g_free (cw);
      g_mutex_unlock (&self->cache_lock);
    }
}

static void
append_byte_level (GString    *out,
                   const char *s,
                   gsize       len)
{
  for (gsize i = 0; i < len; i++)
    {
      guchar b = s[i];
      g_string_append_len (out, byte_char_utf8[b], byte_char_len[b]);
    }
}

/* Runs the pre-tokenizers over @s and BPE over each resulting word. */
static void
encode_text (BlTokenizer *self,
             EncodeState *st,
             const char  *s,
             gsize        len,
             GArray      *out)
{
  const char *base = s;
  GArray *spans = st->spans, *next = st->spans_tmp;

  g_array_set_size (spans, 0);
  g_array_append_vals (spans, &(Span) { 0, len }, 1);

  for (guint k = 0; k < self->pre_tokenizers->len; k++)
    {
      const PreStep *step = &g_array_index (self->pre_tokenizers, PreStep, k);
      GArray *swap;

      g_array_set_size (next, 0);
      if (step->kind == PRE_SPLIT)
        {
          for (guint i = 0; i < spans->len; i++)
            {
              Span sp = g_array_index (spans, Span, i);

              pattern_find (&step->pattern, base + sp.start, sp.end - sp.start, st->matches);
              if (step->invert)
                for (guint j = 0; j < st->matches->len; j++)
                  g_array_index (st->matches, Match, j).is_match ^= TRUE;
              apply_behavior (st->matches, step->behavior, sp.start, next);
            }
        }
      else
        {
          GString *nb = base == st->buf[0]->str ? st->buf[1] : st->buf[0];

          g_string_truncate (nb, 0);
          for (guint i = 0; i < spans->len; i++)
            {
              Span sp = g_array_index (spans, Span, i);
              const char *piece = base + sp.start;
              gsize plen = sp.end - sp.start;

              if (step->add_prefix_space && piece[0] != ' ')
                {
                  g_string_truncate (st->prefixed, 0);
                  g_string_append_c (st->prefixed, ' ');
                  g_string_append_len (st->prefixed, piece, plen);
                  piece = st->prefixed->str;
                  plen = st->prefixed->len;
                }
              if (step->use_regex)
                {
                  pattern_find (&step->pattern, piece, plen, st->matches);
                  for (guint j = 0; j < st->matches->len; j++)
                    {
                      const Match *m = &g_array_index (st->matches, Match, j);
                      gsize at = nb->len;

                      if (m->end == m->start)
                        continue;
                      append_byte_level (nb, piece + m->start, m->end - m->start);
                      g_array_append_vals (next, &(Span) { at, nb->len }, 1);
                    }
                }
              else
                {
                  gsize at = nb->len;

                  append_byte_level (nb, piece, plen);
                  g_array_append_vals (next, &(Span) { at, nb->len }, 1);
                }
            }
          base = nb->str;
        }
      swap = spans;
      spans = next;
      next = swap;
    }

  for (guint i = 0; i < spans->len; i++)
    {
      Span sp = g_array_index (spans, Span, i);
      encode_word (self, st, base + sp.start, sp.end - sp.start, out);
    }
}

/**
 * bl_tokenizer_encode:
 * @self: a #BlTokenizer
 * @text: UTF-8 text
 * @len: length of @text in bytes, or -1 when it is NUL-terminated
 * @add_bos: whether to put the BOS token first (pass bl_tokenizer_get_add_bos() for the
 *   model's default)
 *
 * Encodes @text into token ids, exactly as the Hugging Face tokenizers library would
 * (without the post-processor's other special tokens). Invalid UTF-8 is repaired first
 * (one U+FFFD per maximal ill-formed subsequence). @text must be shorter than 512 MiB
 * (GRegex reports offsets as int). Safe to call from several threads.
 *
 * Returns: (transfer full): a #GArray of int32_t ids
 */
GArray *
bl_tokenizer_encode (BlTokenizer *self,
                     const char  *text,
                     gssize       len,
                     gboolean     add_bos)
{
  g_autoptr(GString) repaired = NULL;
  GArray *ids;
  EncodeState st;
  gsize n;

  g_return_val_if_fail (BL_IS_TOKENIZER (self), NULL);
  g_return_val_if_fail (text != NULL || len == 0, NULL);

  n = len < 0 ? strlen (text) : (gsize) len;
  g_return_val_if_fail (n < G_MAXINT / 4, NULL);

  ids = g_array_new (FALSE, FALSE, sizeof (int32_t));
  if (add_bos && self->bos_id >= 0)
    g_array_append_val (ids, self->bos_id);
  if (n == 0)
    return ids;

  if (!utf8_is_valid (text, n))
    {
      repaired = g_string_sized_new (n + 16);
      append_utf8_lossy (repaired, text, n);
      text = repaired->str;
      n = repaired->len;
    }

  encode_state_init (&st);
  split_added (&self->raw_added, text, n, st.raw_pieces);
  for (guint i = 0; i < st.raw_pieces->len; i++)
    {
      Piece raw = g_array_index (st.raw_pieces, Piece, i);
      const char *seg = text + raw.start;
      gsize seg_len = raw.end - raw.start;

      if (raw.id >= 0)
        {
          g_array_append_val (ids, raw.id);
          continue;
        }
      if (self->normalizers->len > 0)
        {
          normalize (self->normalizers, seg, seg_len, &st.norm, &st.norm_tmp, st.matches);
          seg = st.norm->str;
          seg_len = st.norm->len;
        }

      split_added (&self->normalized_added, seg, seg_len, st.norm_pieces);
      for (guint j = 0; j < st.norm_pieces->len; j++)
        {
          Piece p = g_array_index (st.norm_pieces, Piece, j);

          if (p.id >= 0)
            g_array_append_val (ids, p.id);
          else if (p.end > p.start)
            encode_text (self, &st, seg + p.start, p.end - p.start, ids);
        }
    }
  encode_state_clear (&st);
  return ids;
}

/* ---- decoding ---- */

static int
hex_value (char c)
{
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/* The byte of a "<0xNN>" piece, or -1 (decoders/byte_fallback.rs). */
static int
byte_fallback_value (const char *t)
{
  if (strlen (t) != 6 || strncmp (t, "<0x", 3) != 0 || t[5] != '>'
      || hex_value (t[3]) < 0 || hex_value (t[4]) < 0)
    return -1;
  return hex_value (t[3]) * 16 + hex_value (t[4]);
}

static void
flush_fallback_bytes (GByteArray *bytes,
                      GPtrArray  *out)
{
  if (bytes->len == 0)
    return;
  if (g_utf8_validate_len ((const char *) bytes->data, bytes->len, NULL))
    g_ptr_array_add (out, g_strndup ((const char *) bytes->data, bytes->len));
  else
    for (guint i = 0; i < bytes->len; i++)
      g_ptr_array_add (out, g_strdup ("\xef\xbf\xbd"));
  g_byte_array_set_size (bytes, 0);
}

/* One decoder over the token strings (the decode_chain functions of decoders/). */
static GPtrArray *
decode_step (const DecStep *step,
             GPtrArray     *tokens)
{
  GPtrArray *out = g_ptr_array_new_with_free_func (g_free);

  switch (step->kind)
    {
    case DEC_REPLACE:
      {
        g_autoptr(GArray) matches = g_array_new (FALSE, FALSE, sizeof (Match));

        for (guint i = 0; i < tokens->len; i++)
          {
            const char *t = g_ptr_array_index (tokens, i);
            GString *s = g_string_new (NULL);

            pattern_find (&step->pattern, t, strlen (t), matches);
            for (guint j = 0; j < matches->len; j++)
              {
                const Match *m = &g_array_index (matches, Match, j);

                if (m->is_match)
                  g_string_append (s, step->text);
                else
                  g_string_append_len (s, t + m->start, m->end - m->start);
              }
            g_ptr_array_add (out, g_string_free (s, FALSE));
          }
      }
      break;

    case DEC_BYTE_FALLBACK:
      {
        g_autoptr(GByteArray) bytes = g_byte_array_new ();

        for (guint i = 0; i < tokens->len; i++)
          {
            const char *t = g_ptr_array_index (tokens, i);
            int b = byte_fallback_value (t);

            if (b >= 0)
              {
                guint8 byte = b;
                g_byte_array_append (bytes, &byte, 1);
                continue;
              }
            flush_fallback_bytes (bytes, out);
            g_ptr_array_add (out, g_strdup (t));
          }
        flush_fallback_bytes (bytes, out);
      }
      break;

    case DEC_FUSE:
      {
        GString *s = g_string_new (NULL);

        for (guint i = 0; i < tokens->len; i++)
          g_string_append (s, g_ptr_array_index (tokens, i));
        g_ptr_array_add (out, g_string_free (s, FALSE));
      }
      break;

    case DEC_STRIP:
      for (guint i = 0; i < tokens->len; i++)
        {
          const char *t = g_ptr_array_index (tokens, i);
          const char *start = t, *end = t + strlen (t);

          for (gsize k = 0; k < step->strip_start && *start != '\0'
                            && g_utf8_get_char (start) == step->strip_char; k++)
            start = g_utf8_next_char (start);
          for (gsize k = 0; k < step->strip_stop && end > start; k++)
            {
              const char *q = g_utf8_find_prev_char (start, end);

              if (q == NULL)
                q = start;
              if (g_utf8_get_char (q) != step->strip_char)
                break;
              end = q;
            }
          g_ptr_array_add (out, g_strndup (start, end - start));
        }
      break;

    case DEC_BYTE_LEVEL:
      {
        g_autoptr(GString) bytes = g_string_new (NULL);
        GString *s = g_string_new (NULL);

        /* A token whose characters are all byte characters becomes those bytes, any other
         * (an added token such as "<|endoftext|>" with exotic characters) stays as is. */
        for (guint i = 0; i < tokens->len; i++)
          {
            const char *t = g_ptr_array_index (tokens, i);
            gsize at = bytes->len;
            gboolean mapped = TRUE;

            for (const char *p = t; *p != '\0'; p = g_utf8_next_char (p))
              {
                gunichar c = g_utf8_get_char (p);

                if (c >= G_N_ELEMENTS (char_byte) || char_byte[c] < 0)
                  {
                    mapped = FALSE;
                    break;
                  }
                g_string_append_c (bytes, (char) char_byte[c]);
              }
            if (!mapped)
              {
                g_string_truncate (bytes, at);
                g_string_append (bytes, t);
              }
          }
        append_utf8_lossy (s, bytes->str, bytes->len);
        g_ptr_array_add (out, g_string_free (s, FALSE));
      }
      break;

    default:
      g_assert_not_reached ();
    }

  g_ptr_array_unref (tokens);
  return out;
}

/**
 * bl_tokenizer_decode:
 * @self: a #BlTokenizer
 * @ids: (array length=n_ids): token ids
 * @n_ids: number of ids
 *
 * Turns ids back into text through the tokenizer.json decoders, as the Hugging Face
 * library does with skip_special_tokens off. Ids out of range are skipped.
 *
 * Returns: (transfer full): UTF-8 text
 */
char *
bl_tokenizer_decode (BlTokenizer   *self,
                     const int32_t *ids,
                     gsize          n_ids)
{
  GPtrArray *tokens;
  GString *s;

  g_return_val_if_fail (BL_IS_TOKENIZER (self), NULL);
  g_return_val_if_fail (ids != NULL || n_ids == 0, NULL);

  tokens = g_ptr_array_new_with_free_func (g_free);
  for (gsize i = 0; i < n_ids; i++)
    {
      const char *piece = bl_tokenizer_id_to_piece (self, ids[i]);

      if (piece != NULL)
        g_ptr_array_add (tokens, g_strdup (piece));
    }

  for (guint k = 0; k < self->decoders->len; k++)
    tokens = decode_step (&g_array_index (self->decoders, DecStep, k), tokens);

  s = g_string_new (NULL);
  for (guint i = 0; i < tokens->len; i++)
    {
      /* Without a decoder the library joins the tokens with spaces. */
      if (i > 0 && !self->has_decoder)
        g_string_append_c (s, ' ');
      g_string_append (s, g_ptr_array_index (tokens, i));
    }
  g_ptr_array_unref (tokens);
  return g_string_free (s, FALSE);
}

/* ---- loading ---- */

typedef struct
{
  const char *source;
  GError    **error;
  int         depth;
} Loader;

/* A member's node, NULL when absent or JSON null. */
static JsonNode *
member (JsonObject *o,
        const char *name)
{
  JsonNode *n = json_object_get_member (o, name);

  return n != NULL && !JSON_NODE_HOLDS_NULL (n) ? n : NULL;
}

static gboolean
get_object (Loader      *ld,
            JsonObject  *o,
            const char  *where,
            const char  *name,
            gboolean     required,
            JsonObject **out)
{
  JsonNode *n = member (o, name);

  *out = NULL;
  if (n == NULL)
    return required ? fail (ld->error, BL_ERROR_CORRUPT_FILE, ld->source,
                            "%s has no '%s'", where, name) : TRUE;
  if (!JSON_NODE_HOLDS_OBJECT (n))
    return fail (ld->error, BL_ERROR_CORRUPT_FILE, ld->source,
                 "%s: '%s' must be an object", where, name);
  *out = json_node_get_object (n);
  return TRUE;
}

static gboolean
get_array (Loader      *ld,
           JsonObject  *o,
           const char  *where,
           const char  *name,
           JsonArray  **out)
{
  JsonNode *n = member (o, name);

  *out = NULL;
  if (n == NULL)
    return fail (ld->error, BL_ERROR_CORRUPT_FILE, ld->source, "%s has no '%s'", where, name);
  if (!JSON_NODE_HOLDS_ARRAY (n))
    return fail (ld->error, BL_ERROR_CORRUPT_FILE, ld->source,
                 "%s: '%s' must be an array", where, name);
  *out = json_node_get_array (n);
  return TRUE;
}

static gboolean
get_string (Loader      *ld,
            JsonObject  *o,
            const char  *where,
            const char  *name,
            gboolean     required,
            const char **out)
{
  JsonNode *n = member (o, name);

  *out = NULL;
  if (n == NULL)
    return required ? fail (ld->error, BL_ERROR_CORRUPT_FILE, ld->source,
                            "%s has no '%s'", where, name) : TRUE;
  if (json_node_get_value_type (n) != G_TYPE_STRING)
    return fail (ld->error, BL_ERROR_CORRUPT_FILE, ld->source,
                 "%s: '%s' must be a string", where, name);
  *out = json_node_get_string (n);
  return TRUE;
}

static gboolean
get_bool (Loader     *ld,
          JsonObject *o,
          const char *where,
          const char *name,
          gboolean    fallback,
          gboolean   *out)
{
  JsonNode *n = member (o, name);

  *out = fallback;
  if (n == NULL)
    return TRUE;
  if (json_node_get_value_type (n) != G_TYPE_BOOLEAN)
    return fail (ld->error, BL_ERROR_CORRUPT_FILE, ld->source,
                 "%s: '%s' must be true or false", where, name);
  *out = json_node_get_boolean (n);
  return TRUE;
}

static gboolean
node_get_id (Loader     *ld,
             JsonNode   *n,
             const char *where,
             int32_t    *out)
{
  gint64 v;

  if (n == NULL || json_node_get_value_type (n) != G_TYPE_INT64)
    return fail (ld->error, BL_ERROR_CORRUPT_FILE, ld->source, "%s: the id must be an integer",
                 where);
  v = json_node_get_int (n);
  if (v < 0 || v >= MAX_ID)
    return fail (ld->error, BL_ERROR_CORRUPT_FILE, ld->source,
                 "%s: id %" G_GINT64_FORMAT " is out of range [0, %d)", where, v, MAX_ID);
  *out = (int32_t) v;
  return TRUE;
}

static gboolean
get_count (Loader     *ld,
           JsonObject *o,
           const char *where,
           const char *name,
           gsize      *out)
{
  JsonNode *n = member (o, name);
  gint64 v;

  *out = 0;
  if (n == NULL)
    return TRUE;
  if (json_node_get_value_type (n) != G_TYPE_INT64
      || (v = json_node_get_int (n)) < 0 || v > G_MAXINT)
    return fail (ld->error, BL_ERROR_CORRUPT_FILE, ld->source,
                 "%s: '%s' must be a non-negative integer", where, name);
  *out = v;
  return TRUE;
}

static gboolean
parse_pattern (Loader     *ld,
               JsonObject *o,
               const char *where,
               Pattern    *out)
{
  JsonObject *p;
  const char *literal, *regex;

  if (!get_object (ld, o, where, "pattern", TRUE, &p)
      || !get_string (ld, p, where, "String", FALSE, &literal)
      || !get_string (ld, p, where, "Regex", FALSE, &regex))
    return FALSE;
  if (literal != NULL)
    {
      if (literal[0] == '\0')
        return fail (ld->error, BL_ERROR_CORRUPT_FILE, ld->source, "%s: empty pattern", where);
      out->literal = g_strdup (literal);
      out->literal_len = strlen (literal);
      return TRUE;
    }
  if (regex != NULL)
    return pattern_compile_regex (out, regex, ld->source, where, ld->error);
  return fail (ld->error, BL_ERROR_CORRUPT_FILE, ld->source,
               "%s: the pattern is neither 'String' nor 'Regex'", where);
}

static gboolean
get_type (Loader      *ld,
          JsonNode    *n,
          const char  *where,
          JsonObject **o,
          const char **type)
{
  if (!JSON_NODE_HOLDS_OBJECT (n))
    return fail (ld->error, BL_ERROR_CORRUPT_FILE, ld->source, "%s must be an object", where);
  *o = json_node_get_object (n);
  return get_string (ld, *o, where, "type", TRUE, type);
}

static gboolean
enter (Loader     *ld,
       const char *where)
{
  if (++ld->depth > MAX_DEPTH)
    return fail (ld->error, BL_ERROR_CORRUPT_FILE, ld->source,
                 "%s: Sequence nested deeper than %d", where, MAX_DEPTH);
  return TRUE;
}

static void
norm_step_clear (gpointer data)
{
  NormStep *step = data;

  g_free (step->text);
  pattern_clear (&step->pattern);
}

static void
pre_step_clear (gpointer data)
{
  pattern_clear (&((PreStep *) data)->pattern);
}

static void
dec_step_clear (gpointer data)
{
  DecStep *step = data;

  g_free (step->text);
  pattern_clear (&step->pattern);
}

static gboolean
parse_normalizer (Loader   *ld,
                  JsonNode *n,
                  GArray   *steps)
{
  const char *where = "normalizer";
  JsonObject *o;
  const char *type, *text;
  NormStep step = { 0, };
  gboolean ok = FALSE;

  if (!enter (ld, where) || !get_type (ld, n, where, &o, &type))
    goto out;

  if (g_str_equal (type, "Sequence"))
    {
      JsonArray *list;

      if (!get_array (ld, o, where, "normalizers", &list))
        goto out;
      for (guint i = 0; i < json_array_get_length (list); i++)
        if (!parse_normalizer (ld, json_array_get_element (list, i), steps))
          goto out;
      ok = TRUE;
      goto out;
    }

  if (g_str_equal (type, "Prepend"))
    {
      if (!get_string (ld, o, "normalizer Prepend", "prepend", TRUE, &text))
        goto out;
      step.kind = NORM_PREPEND;
      step.text = g_strdup (text);
    }
  else if (g_str_equal (type, "Replace"))
    {
      if (!get_string (ld, o, "normalizer Replace", "content", TRUE, &text))
        goto out;
      step.kind = NORM_REPLACE;
      step.text = g_strdup (text);
      g_array_append_val (steps, step);
      ok = parse_pattern (ld, o, "normalizer Replace",
                          &g_array_index (steps, NormStep, steps->len - 1).pattern);
      goto out;
    }
  else if (g_str_equal (type, "NFC") || g_str_equal (type, "NFD")
           || g_str_equal (type, "NFKC") || g_str_equal (type, "NFKD"))
    {
      step.kind = NORM_UNICODE;
      step.mode = g_str_equal (type, "NFC") ? G_NORMALIZE_NFC
                  : g_str_equal (type, "NFD") ? G_NORMALIZE_NFD
                  : g_str_equal (type, "NFKC") ? G_NORMALIZE_NFKC : G_NORMALIZE_NFKD;
    }
  else
    {
      fail (ld->error, BL_ERROR_UNSUPPORTED_FORMAT, ld->source,
            "normalizer type '%s' is not supported (supported: Sequence, Prepend, Replace, "
            "NFC, NFD, NFKC, NFKD)", type);
      goto out;
    }
  g_array_append_val (steps, step);
  ok = TRUE;

out:
  ld->depth--;
  return ok;
}

static gboolean
parse_pre_tokenizer (Loader   *ld,
                     JsonNode *n,
                     GArray   *steps)
{
  const char *where = "pre_tokenizer";
  JsonObject *o;
  const char *type;
  PreStep *step;
  gboolean ok = FALSE;

  if (!enter (ld, where) || !get_type (ld, n, where, &o, &type))
    goto out;

  if (g_str_equal (type, "Sequence"))
    {
      JsonArray *list;

      if (!get_array (ld, o, where, "pretokenizers", &list))
        goto out;
      for (guint i = 0; i < json_array_get_length (list); i++)
        if (!parse_pre_tokenizer (ld, json_array_get_element (list, i), steps))
          goto out;
      ok = TRUE;
      goto out;
    }

  g_array_set_size (steps, steps->len + 1);
  step = &g_array_index (steps, PreStep, steps->len - 1);

  if (g_str_equal (type, "Split"))
    {
      static const char *const behaviors[] = {
        [SPLIT_REMOVED] = "Removed",
        [SPLIT_ISOLATED] = "Isolated",
        [SPLIT_MERGED_WITH_PREVIOUS] = "MergedWithPrevious",
        [SPLIT_MERGED_WITH_NEXT] = "MergedWithNext",
        [SPLIT_CONTIGUOUS] = "Contiguous",
      };
      const char *behavior;
      guint b;

      step->kind = PRE_SPLIT;
      if (!parse_pattern (ld, o, "pre_tokenizer Split", &step->pattern)
          || !get_string (ld, o, "pre_tokenizer Split", "behavior", TRUE, &behavior)
          || !get_bool (ld, o, "pre_tokenizer Split", "invert", FALSE, &step->invert))
        goto out;
      for (b = 0; b < G_N_ELEMENTS (behaviors); b++)
        if (g_str_equal (behavior, behaviors[b]))
          break;
      if (b == G_N_ELEMENTS (behaviors))
        {
          fail (ld->error, BL_ERROR_CORRUPT_FILE, ld->source,
                "pre_tokenizer Split: unknown behavior '%s'", behavior);
          goto out;
        }
      step->behavior = b;
    }
  else if (g_str_equal (type, "Digits"))
    {
      gboolean individual;

      /* pre_tokenizers/digits.rs: every numeric character (Rust's char::is_numeric, the
       * Unicode N categories) is a match. */
      if (!get_bool (ld, o, "pre_tokenizer Digits", "individual_digits", FALSE, &individual)
          || !pattern_compile_regex (&step->pattern, "\\p{N}", ld->source, where, ld->error))
        goto out;
      step->kind = PRE_SPLIT;
      step->behavior = individual ? SPLIT_ISOLATED : SPLIT_CONTIGUOUS;
    }
  else if (g_str_equal (type, "ByteLevel"))
    {
      step->kind = PRE_BYTE_LEVEL;
      if (!get_bool (ld, o, "pre_tokenizer ByteLevel", "add_prefix_space", TRUE,
                     &step->add_prefix_space)
          || !get_bool (ld, o, "pre_tokenizer ByteLevel", "use_regex", TRUE, &step->use_regex))
        goto out;
      if (step->use_regex
          && !pattern_compile_regex (&step->pattern, gpt2_pattern, ld->source, where, ld->error))
        goto out;
    }
  else
    {
      fail (ld->error, BL_ERROR_UNSUPPORTED_FORMAT, ld->source,
            "pre_tokenizer type '%s' is not supported (supported: Sequence, Split, Digits, "
            "ByteLevel)", type);
      goto out;
    }
  ok = TRUE;

out:
  ld->depth--;
  return ok;
}

static gboolean
parse_decoder (Loader   *ld,
               JsonNode *n,
               GArray   *steps)
{
  const char *where = "decoder";
  JsonObject *o;
  const char *type;
  DecStep *step;
  gboolean ok = FALSE;

  if (!enter (ld, where) || !get_type (ld, n, where, &o, &type))
    goto out;

  if (g_str_equal (type, "Sequence"))
    {
      JsonArray *list;

      if (!get_array (ld, o, where, "decoders", &list))
        goto out;
      for (guint i = 0; i < json_array_get_length (list); i++)
        if (!parse_decoder (ld, json_array_get_element (list, i), steps))
          goto out;
      ok = TRUE;
      goto out;
    }

  g_array_set_size (steps, steps->len + 1);
  step = &g_array_index (steps, DecStep, steps->len - 1);

  if (g_str_equal (type, "Replace"))
    {
      const char *content;

      step->kind = DEC_REPLACE;
      if (!parse_pattern (ld, o, "decoder Replace", &step->pattern)
          || !get_string (ld, o, "decoder Replace", "content", TRUE, &content))
        goto out;
      step->text = g_strdup (content);
    }
  else if (g_str_equal (type, "ByteFallback"))
    step->kind = DEC_BYTE_FALLBACK;
  else if (g_str_equal (type, "Fuse"))
    step->kind = DEC_FUSE;
  else if (g_str_equal (type, "Strip"))
    {
      const char *content;

      step->kind = DEC_STRIP;
      if (!get_string (ld, o, "decoder Strip", "content", TRUE, &content)
          || !get_count (ld, o, "decoder Strip", "start", &step->strip_start)
          || !get_count (ld, o, "decoder Strip", "stop", &step->strip_stop))
        goto out;
      if (g_utf8_strlen (content, -1) != 1)
        {
          fail (ld->error, BL_ERROR_CORRUPT_FILE, ld->source,
                "decoder Strip: 'content' must be one character");
          goto out;
        }
      step->strip_char = g_utf8_get_char (content);
    }
  else if (g_str_equal (type, "ByteLevel"))
    step->kind = DEC_BYTE_LEVEL;
  else
    {
      fail (ld->error, BL_ERROR_UNSUPPORTED_FORMAT, ld->source,
            "decoder type '%s' is not supported (supported: Sequence, Replace, ByteFallback, "
            "Fuse, Strip, ByteLevel)", type);
      goto out;
    }
  ok = TRUE;

out:
  ld->depth--;
  return ok;
}

/* Finds the special token a TemplateProcessing puts first in a single sequence; *bos_id
 * stays -1 when there is none. */
static gboolean
parse_post_processor (BlTokenizer *self,
                      Loader      *ld,
                      JsonNode    *n,
                      int32_t     *bos_id)
{
  const char *where = "post_processor";
  JsonObject *o, *first, *special, *specials, *entry;
  const char *type, *name;
  JsonArray *single, *ids;
  gboolean ok = FALSE;

  if (!enter (ld, where) || !get_type (ld, n, where, &o, &type))
    goto out;

  if (g_str_equal (type, "Sequence"))
    {
      JsonArray *list;

      if (!get_array (ld, o, where, "processors", &list))
        goto out;
      for (guint i = 0; i < json_array_get_length (list); i++)
        if (!parse_post_processor (self, ld, json_array_get_element (list, i), bos_id))
          goto out;
      ok = TRUE;
      goto out;
    }
  if (g_str_equal (type, "ByteLevel"))
    {
      ok = TRUE;
      goto out;
    }
  if (!g_str_equal (type, "TemplateProcessing"))
    {
      fail (ld->error, BL_ERROR_UNSUPPORTED_FORMAT, ld->source,
            "post_processor type '%s' is not supported (supported: Sequence, ByteLevel, "
            "TemplateProcessing)", type);
      goto out;
    }

  if (!get_array (ld, o, "post_processor TemplateProcessing", "single", &single))
    goto out;
  ok = TRUE;
  if (json_array_get_length (single) == 0)
    goto out;
  if (!JSON_NODE_HOLDS_OBJECT (json_array_get_element (single, 0)))
    {
      ok = fail (ld->error, BL_ERROR_CORRUPT_FILE, ld->source,
                 "post_processor TemplateProcessing: 'single' items must be objects");
      goto out;
    }
  first = json_array_get_object_element (single, 0);
  if (!(ok = get_object (ld, first, "post_processor TemplateProcessing", "SpecialToken", FALSE,
                         &special))
      || special == NULL)
    goto out;
  if (!(ok = get_string (ld, special, "post_processor SpecialToken", "id", TRUE, &name))
      || !(ok = get_object (ld, o, "post_processor TemplateProcessing", "special_tokens", FALSE,
                            &specials)))
    goto out;

  /* The template names the token; special_tokens gives its id, else the vocabulary does. */
  if (specials != NULL && json_object_has_member (specials, name))
    {
      if (!(ok = get_object (ld, specials, "post_processor special_tokens", name, TRUE, &entry))
          || !(ok = get_array (ld, entry, "post_processor special_tokens", "ids", &ids)))
        goto out;
      if (json_array_get_length (ids) == 0)
        {
          ok = fail (ld->error, BL_ERROR_CORRUPT_FILE, ld->source,
                     "post_processor: special token '%s' has no ids", name);
          goto out;
        }
      ok = node_get_id (ld, json_array_get_element (ids, 0), "post_processor special_tokens",
                        bos_id);
      /* An id without a piece would reach the model as an out-of-vocabulary row. */
      if (ok && bl_tokenizer_id_to_piece (self, *bos_id) == NULL)
        ok = fail (ld->error, BL_ERROR_CORRUPT_FILE, ld->source,
                   "post_processor: special token '%s' has id %d, which is not in the vocabulary",
                   name, *bos_id);
    }
  else if ((*bos_id = bl_tokenizer_piece_to_id (self, name)) < 0)
    ok = fail (ld->error, BL_ERROR_CORRUPT_FILE, ld->source,
               "post_processor: special token '%s' is not in the vocabulary", name);

out:
  ld->depth--;
  return ok;
}

static gboolean
parse_vocab (BlTokenizer *self,
             Loader      *ld,
             JsonObject  *vocab,
             GArray      *entries)
{
  JsonObjectIter iter;
  const char *name;
  JsonNode *node;

  json_object_iter_init_ordered (&iter, vocab);
  while (json_object_iter_next_ordered (&iter, &name, &node))
    {
      VocabEntry e;

      if (!node_get_id (ld, node, "model.vocab", &e.id))
        return FALSE;
      e.piece = bl_bpe_vocab_insert (self->vocab, name, strlen (name), e.id);
      g_array_append_val (entries, e);
    }
  return TRUE;
}

static gboolean
parse_merges (BlTokenizer *self,
              Loader      *ld,
              JsonArray   *merges)
{
  guint n = json_array_get_length (merges);
  g_autoptr(GString) joined = g_string_new (NULL);

  if (n >= BL_BPE_MAX_MERGES)
    return fail (ld->error, BL_ERROR_UNSUPPORTED_FORMAT, ld->source,
                 "model.merges: %u merges, at most %u are supported", n, BL_BPE_MAX_MERGES - 1);

  for (guint i = 0; i < n; i++)
    {
      JsonNode *m = json_array_get_element (merges, i);
      g_autofree char *owned = NULL;
      const char *left = NULL, *right = NULL;
      int32_t a, b, merged;

      if (json_node_get_value_type (m) == G_TYPE_STRING)
        {
          /* "a b": the library splits at spaces and wants exactly two parts. */
          char *space;

          owned = g_strdup (json_node_get_string (m));
          space = strchr (owned, ' ');
          if (space != NULL && strchr (space + 1, ' ') == NULL)
            {
              *space = '\0';
              left = owned;
              right = space + 1;
            }
        }
      else if (JSON_NODE_HOLDS_ARRAY (m) && json_array_get_length (json_node_get_array (m)) == 2)
        {
          JsonArray *pair = json_node_get_array (m);
          JsonNode *l = json_array_get_element (pair, 0), *r = json_array_get_element (pair, 1);

          if (json_node_get_value_type (l) == G_TYPE_STRING
              && json_node_get_value_type (r) == G_TYPE_STRING)
            {
              left = json_node_get_string (l);
              right = json_node_get_string (r);
            }
        }
      if (left == NULL)
        return fail (ld->error, BL_ERROR_CORRUPT_FILE, ld->source,
                     "model.merges[%u] is neither \"a b\" nor [\"a\", \"b\"]", i);

      a = bl_bpe_vocab_lookup (self->vocab, left, strlen (left));
      b = bl_bpe_vocab_lookup (self->vocab, right, strlen (right));
      if (a < 0 || b < 0)
        return fail (ld->error, BL_ERROR_CORRUPT_FILE, ld->source,
                     "model.merges[%u] ('%s' '%s') names unknown token '%s'", i, left, right,
                     a < 0 ? left : right);
      g_string_assign (joined, left);
      g_string_append (joined, right);
      merged = bl_bpe_vocab_lookup (self->vocab, joined->str, joined->len);
      if (merged < 0)
        return fail (ld->error, BL_ERROR_CORRUPT_FILE, ld->source,
                     "model.merges[%u] ('%s' '%s') makes '%s', which is not in the vocabulary",
                     i, left, right, joined->str);
      bl_bpe_merges_insert (self->merges, a, b, i, merged);
    }
  return TRUE;
}

static gboolean
parse_model (BlTokenizer *self,
             Loader      *ld,
             JsonObject  *root,
             GArray      *entries)
{
  JsonObject *model, *vocab;
  JsonArray *merges;
  JsonNode *dropout;
  const char *type, *unk, *prefix, *suffix;

  if (!get_object (ld, root, "tokenizer.json", "model", TRUE, &model)
      || !get_string (ld, model, "model", "type", FALSE, &type))
    return FALSE;
  /* The library infers the type when it is missing; merges mean BPE. */
  if (type == NULL && !json_object_has_member (model, "merges"))
    return fail (ld->error, BL_ERROR_CORRUPT_FILE, ld->source,
                 "model has neither 'type' nor 'merges'");
  if (type != NULL && !g_str_equal (type, "BPE"))
    return fail (ld->error, BL_ERROR_UNSUPPORTED_FORMAT, ld->source,
                 "model type '%s' is not supported: only BPE is", type);

  if (!get_object (ld, model, "model", "vocab", TRUE, &vocab)
      || !get_array (ld, model, "model", "merges", &merges)
      || !get_string (ld, model, "model", "unk_token", FALSE, &unk)
      || !get_string (ld, model, "model", "continuing_subword_prefix", FALSE, &prefix)
      || !get_string (ld, model, "model", "end_of_word_suffix", FALSE, &suffix)
      || !get_bool (ld, model, "model", "byte_fallback", FALSE, &self->byte_fallback)
      || !get_bool (ld, model, "model", "fuse_unk", FALSE, &self->fuse_unk)
      || !get_bool (ld, model, "model", "ignore_merges", FALSE, &self->ignore_merges))
    return FALSE;

  if ((prefix != NULL && prefix[0] != '\0') || (suffix != NULL && suffix[0] != '\0'))
    return fail (ld->error, BL_ERROR_UNSUPPORTED_FORMAT, ld->source,
                 "BPE continuing_subword_prefix / end_of_word_suffix are not supported");
  dropout = member (model, "dropout");
  if (dropout != NULL
      && (!JSON_NODE_HOLDS_VALUE (dropout) || json_node_get_double (dropout) != 0.0))
    return fail (ld->error, BL_ERROR_UNSUPPORTED_FORMAT, ld->source,
                 "BPE dropout is not supported (it makes encoding random)");

  if (!parse_vocab (self, ld, vocab, entries) || !parse_merges (self, ld, merges))
    return FALSE;
  self->unk_id = unk != NULL ? bl_bpe_vocab_lookup (self->vocab, unk, strlen (unk)) : -1;
  return TRUE;
}

static gboolean
parse_added_tokens (BlTokenizer *self,
                    Loader      *ld,
                    JsonObject  *root,
                    GArray      *added)
{
  JsonNode *n = member (root, "added_tokens");
  JsonArray *list;

  if (n == NULL)
    return TRUE;
  if (!JSON_NODE_HOLDS_ARRAY (n))
    return fail (ld->error, BL_ERROR_CORRUPT_FILE, ld->source, "'added_tokens' must be an array");
  list = json_node_get_array (n);

  for (guint i = 0; i < json_array_get_length (list); i++)
    {
      JsonNode *e = json_array_get_element (list, i);
      JsonObject *o;
      const char *content;
      gboolean special;
      AddedPattern a = { 0, };

      if (!JSON_NODE_HOLDS_OBJECT (e))
        return fail (ld->error, BL_ERROR_CORRUPT_FILE, ld->source,
                     "added_tokens[%u] must be an object", i);
      o = json_node_get_object (e);
      if (!node_get_id (ld, member (o, "id"), "added_tokens", &a.id)
          || !get_string (ld, o, "added_tokens", "content", TRUE, &content)
          || !get_bool (ld, o, "added_tokens", "special", FALSE, &special)
          || !get_bool (ld, o, "added_tokens", "normalized", !special, &a.normalized)
          || !get_bool (ld, o, "added_tokens", "lstrip", FALSE, &a.lstrip)
          || !get_bool (ld, o, "added_tokens", "rstrip", FALSE, &a.rstrip)
          || !get_bool (ld, o, "added_tokens", "single_word", FALSE, &a.single_word))
        return FALSE;

      a.content = bl_bpe_vocab_insert (self->added_vocab, content, strlen (content), a.id);
      a.len = strlen (content);
      g_array_append_val (added, a);
    }
  return TRUE;
}

/* Builds the two matchers; normalized tokens are matched by their normalized content. */
static void
build_added_matchers (BlTokenizer *self,
                      GArray      *added)
{
  GString *norm = g_string_new (NULL), *tmp = g_string_new (NULL);
  g_autoptr(GArray) matches = g_array_new (FALSE, FALSE, sizeof (Match));

  for (guint i = 0; i < added->len; i++)
    {
      AddedPattern a = g_array_index (added, AddedPattern, i);

      /* An empty pattern would match everywhere without consuming anything. */
      if (a.len == 0)
        continue;
      if (!a.normalized)
        {
          g_array_append_val (self->raw_added.items, a);
          continue;
        }
      normalize (self->normalizers, a.content, a.len, &norm, &tmp, matches);
      if (norm->len == 0)
        continue;
      a.content = g_string_chunk_insert_len (self->strings, norm->str, norm->len);
      a.len = norm->len;
      g_array_append_val (self->normalized_added.items, a);
    }
  added_matcher_finish (&self->raw_added);
  added_matcher_finish (&self->normalized_added);
  g_string_free (norm, TRUE);
  g_string_free (tmp, TRUE);
}

/* bos_token / eos_token of tokenizer_config.json: a string or {"content": …}. */
static gboolean
config_token (BlTokenizer *self,
              Loader      *ld,
              JsonObject  *config,
              const char  *name,
              int32_t     *out)
{
  JsonNode *n = member (config, name);
  const char *content;

  if (n == NULL)
    return TRUE;
  if (JSON_NODE_HOLDS_OBJECT (n))
    {
      if (!get_string (ld, json_node_get_object (n), name, "content", TRUE, &content))
        return FALSE;
    }
  else if (json_node_get_value_type (n) == G_TYPE_STRING)
    content = json_node_get_string (n);
  else
    return fail (ld->error, BL_ERROR_CORRUPT_FILE, ld->source,
                 "'%s' must be a string or an object", name);

  *out = bl_tokenizer_piece_to_id (self, content);
  if (*out < 0)
    return fail (ld->error, BL_ERROR_CORRUPT_FILE, ld->source,
                 "%s '%s' is not in the vocabulary", name, content);
  return TRUE;
}

static JsonNode *
parse_json (const char  *data,
            gsize        len,
            const char  *source,
            GError     **error)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GError) local_error = NULL;
  JsonNode *root;

  if (!json_parser_load_from_data (parser, data, len, &local_error))
    {
      fail (error, BL_ERROR_CORRUPT_FILE, source, "not valid JSON: %s", local_error->message);
      return NULL;
    }
  root = json_parser_get_root (parser);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    {
      fail (error, BL_ERROR_CORRUPT_FILE, source, "the top level is not a JSON object");
      return NULL;
    }
  return json_node_copy (root);
}

static gboolean
load (BlTokenizer *self,
      const char  *json,
      gsize        json_len,
      const char  *config_json,
      gsize        config_len,
      const char  *source,
      const char  *config_source,
      GError     **error)
{
  g_autoptr(JsonNode) root_node = NULL;
  g_autoptr(JsonNode) config_node = NULL;
  g_autoptr(GArray) entries = g_array_new (FALSE, FALSE, sizeof (VocabEntry));
  g_autoptr(GArray) added = g_array_new (FALSE, FALSE, sizeof (AddedPattern));
  g_autoptr(GChecksum) checksum = NULL;
  Loader ld = { source, error, 0 };
  JsonObject *root;
  JsonNode *n;
  int32_t max_id = -1, template_bos = -1;

  root_node = parse_json (json, json_len, source, error);
  if (root_node == NULL)
    return FALSE;
  root = json_node_get_object (root_node);

  if (!parse_model (self, &ld, root, entries) || !parse_added_tokens (self, &ld, root, added))
    return FALSE;
  if ((n = member (root, "normalizer")) != NULL && !parse_normalizer (&ld, n, self->normalizers))
    return FALSE;
  if ((n = member (root, "pre_tokenizer")) != NULL
      && !parse_pre_tokenizer (&ld, n, self->pre_tokenizers))
    return FALSE;
  if ((n = member (root, "decoder")) != NULL)
    {
      self->has_decoder = TRUE;
      if (!parse_decoder (&ld, n, self->decoders))
        return FALSE;
    }

  /* id -> piece: model pieces, then added tokens on top (the library asks the added
   * vocabulary first). */
  for (guint i = 0; i < entries->len; i++)
    max_id = MAX (max_id, g_array_index (entries, VocabEntry, i).id);
  for (guint i = 0; i < added->len; i++)
    max_id = MAX (max_id, g_array_index (added, AddedPattern, i).id);
  if (max_id >= 2 * (gint64) (entries->len + added->len) + 1024)
    return fail (error, BL_ERROR_CORRUPT_FILE, source,
                 "token id %d is far beyond the %u pieces: the vocabulary is not dense",
                 max_id, entries->len + added->len);
  self->n_ids = max_id + 1;
  self->id_to_piece = g_new0 (const char *, self->n_ids);
  for (guint i = 0; i < entries->len; i++)
    {
      VocabEntry e = g_array_index (entries, VocabEntry, i);

      if (self->id_to_piece[e.id] == NULL)
        self->id_to_piece[e.id] = e.piece;
    }
  for (guint i = 0; i < added->len; i++)
    {
      AddedPattern a = g_array_index (added, AddedPattern, i);
      self->id_to_piece[a.id] = a.content;
    }
  build_added_matchers (self, added);

  if ((n = member (root, "post_processor")) != NULL
      && !parse_post_processor (self, &ld, n, &template_bos))
    return FALSE;

  /* BOS: tokenizer_config.json's add_bos_token and bos_token decide when present; else a
   * TemplateProcessing that starts with a special token means that token is BOS. */
  self->bos_id = template_bos;
  self->add_bos = template_bos >= 0;
  if (config_json != NULL)
    {
      JsonObject *config;
      Loader cld = { config_source, error, 0 };
      int32_t bos = -1;

      config_node = parse_json (config_json, config_len, config_source, error);
      if (config_node == NULL)
        return FALSE;
      config = json_node_get_object (config_node);
      if (!config_token (self, &cld, config, "bos_token", &bos)
          || !config_token (self, &cld, config, "eos_token", &self->eos_id))
        return FALSE;
      if (bos >= 0)
        self->bos_id = bos;
      if (json_object_has_member (config, "add_bos_token")
          && !get_bool (&cld, config, "tokenizer_config", "add_bos_token", FALSE, &self->add_bos))
        return FALSE;
    }
  if (self->bos_id < 0)
    self->add_bos = FALSE;

  self->char_ids = g_new (int32_t, CHAR_TABLE_SIZE);
  for (gunichar c = 0; c < CHAR_TABLE_SIZE; c++)
    {
      char utf8[6];
      int len = g_unichar_to_utf8 (c, utf8);

      self->char_ids[c] = bl_bpe_vocab_lookup (self->vocab, utf8, len);
    }
  for (guint b = 0; b < 256; b++)
    {
      char name[8];

      g_snprintf (name, sizeof name, "<0x%02X>", b);
      self->byte_ids[b] = bl_bpe_vocab_lookup (self->vocab, name, 6);
    }

  self->style = "sentencepiece";
  for (guint i = 0; i < self->pre_tokenizers->len; i++)
    if (g_array_index (self->pre_tokenizers, PreStep, i).kind == PRE_BYTE_LEVEL)
      self->style = "byte-level";

  checksum = g_checksum_new (G_CHECKSUM_SHA256);
  g_checksum_update (checksum, (const guchar *) json, json_len);
  if (config_json != NULL)
    g_checksum_update (checksum, (const guchar *) config_json, config_len);
  self->hash = g_strdup (g_checksum_get_string (checksum));
  return TRUE;
}

/* ---- GObject ---- */

static void
bl_tokenizer_finalize (GObject *object)
{
  BlTokenizer *self = BL_TOKENIZER (object);

  g_clear_pointer (&self->vocab, bl_bpe_vocab_free);
  g_clear_pointer (&self->added_vocab, bl_bpe_vocab_free);
  g_clear_pointer (&self->merges, bl_bpe_merges_free);
  g_clear_pointer (&self->id_to_piece, g_free);
  g_clear_pointer (&self->char_ids, g_free);
  g_clear_pointer (&self->raw_added.items, g_array_unref);
  g_clear_pointer (&self->normalized_added.items, g_array_unref);
  g_clear_pointer (&self->normalizers, g_array_unref);
  g_clear_pointer (&self->pre_tokenizers, g_array_unref);
  g_clear_pointer (&self->decoders, g_array_unref);
  g_clear_pointer (&self->cache, g_hash_table_unref);
  g_mutex_clear (&self->cache_lock);
  g_clear_pointer (&self->hash, g_free);
  g_clear_pointer (&self->strings, g_string_chunk_free);

  G_OBJECT_CLASS (bl_tokenizer_parent_class)->finalize (object);
}

static void
bl_tokenizer_class_init (BlTokenizerClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  guint n = 0;

  object_class->finalize = bl_tokenizer_finalize;

  /* bytes_to_unicode: printable Latin-1 bytes stand for themselves, the other 68 bytes
   * take U+0100 onwards in byte order. */
  for (guint c = 0; c < G_N_ELEMENTS (char_byte); c++)
    char_byte[c] = -1;
  for (guint b = 0; b < 256; b++)
    {
      gboolean printable = (b >= '!' && b <= '~') || (b >= 0xa1 && b <= 0xac) || b >= 0xae;
      gunichar c = printable ? b : 256 + n++;

      byte_char_len[b] = g_unichar_to_utf8 (c, byte_char_utf8[b]);
      char_byte[c] = b;
    }
}

static void
bl_tokenizer_init (BlTokenizer *self)
{
  self->vocab = bl_bpe_vocab_new ();
  self->added_vocab = bl_bpe_vocab_new ();
  self->merges = bl_bpe_merges_new ();
  self->strings = g_string_chunk_new (1024);
  self->raw_added.items = g_array_new (FALSE, FALSE, sizeof (AddedPattern));
  self->normalized_added.items = g_array_new (FALSE, FALSE, sizeof (AddedPattern));
  self->normalizers = g_array_new (FALSE, TRUE, sizeof (NormStep));
  g_array_set_clear_func (self->normalizers, norm_step_clear);
  self->pre_tokenizers = g_array_new (FALSE, TRUE, sizeof (PreStep));
  g_array_set_clear_func (self->pre_tokenizers, pre_step_clear);
  self->decoders = g_array_new (FALSE, TRUE, sizeof (DecStep));
  g_array_set_clear_func (self->decoders, dec_step_clear);
  self->cache = g_hash_table_new_full (g_bytes_hash, g_bytes_equal,
                                       (GDestroyNotify) g_bytes_unref, g_free);
  g_mutex_init (&self->cache_lock);
  self->unk_id = -1;
  self->bos_id = -1;
  self->eos_id = -1;
  self->style = "sentencepiece";
}

/**
 * bl_tokenizer_new_from_data:
 * @tokenizer_json: the bytes of a tokenizer.json
 * @tokenizer_json_len: their length
 * @config_json: (nullable): the bytes of a tokenizer_config.json
 * @config_json_len: their length
 * @source_name: what to call the data in error messages
 * @error: return location for a #GError
 *
 * Loads a BPE tokenizer from memory. Malformed files fail with %BL_ERROR_CORRUPT_FILE,
 * valid files using components Bitlens does not implement with
 * %BL_ERROR_UNSUPPORTED_FORMAT; both messages say what and where.
 *
 * Returns: (transfer full) (nullable): the tokenizer, or %NULL with @error set
 */
BlTokenizer *
bl_tokenizer_new_from_data (const char  *tokenizer_json,
                            gsize        tokenizer_json_len,
                            const char  *config_json,
                            gsize        config_json_len,
                            const char  *source_name,
                            GError     **error)
{
  g_autoptr(BlTokenizer) self = NULL;
  g_autofree char *config_source = NULL;

  g_return_val_if_fail (tokenizer_json != NULL || tokenizer_json_len == 0, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (source_name == NULL)
    source_name = "tokenizer.json";
  config_source = g_strdup_printf ("%s (tokenizer_config)", source_name);
  self = g_object_new (BL_TYPE_TOKENIZER, NULL);
  if (!load (self, tokenizer_json, tokenizer_json_len, config_json, config_json_len,
             source_name, config_source, error))
    return NULL;
  return g_steal_pointer (&self);
}

/**
 * bl_tokenizer_new_from_file:
 * @tokenizer_json_path: path of a tokenizer.json
 * @config_path: (nullable): path of the matching tokenizer_config.json
 * @error: return location for a #GError
 *
 * Loads a BPE tokenizer. The config decides add_bos_token and names BOS and EOS.
 *
 * Returns: (transfer full) (nullable): the tokenizer, or %NULL with @error set
 */
BlTokenizer *
bl_tokenizer_new_from_file (const char  *tokenizer_json_path,
                            const char  *config_path,
                            GError     **error)
{
  g_autofree char *json = NULL, *config = NULL;
  gsize json_len = 0, config_len = 0;
  g_autoptr(BlTokenizer) self = NULL;

  g_return_val_if_fail (tokenizer_json_path != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (!g_file_get_contents (tokenizer_json_path, &json, &json_len, error))
    return NULL;
  if (config_path != NULL && !g_file_get_contents (config_path, &config, &config_len, error))
    return NULL;

  self = g_object_new (BL_TYPE_TOKENIZER, NULL);
  if (!load (self, json, json_len, config, config_len, tokenizer_json_path,
             config_path != NULL ? config_path : "", error))
    return NULL;
  return g_steal_pointer (&self);
}

/**
 * bl_tokenizer_id_to_piece:
 * @self: a #BlTokenizer
 * @id: a token id
 *
 * Returns: (nullable): the piece as stored in the vocabulary (added tokens included), or
 *   %NULL when @id is out of range or unused
 */
const char *
bl_tokenizer_id_to_piece (BlTokenizer *self,
                          int32_t      id)
{
  g_return_val_if_fail (BL_IS_TOKENIZER (self), NULL);

  if (id < 0 || id >= self->n_ids)
    return NULL;
  return self->id_to_piece[id];
}

/**
 * bl_tokenizer_piece_to_id:
 * @self: a #BlTokenizer
 * @piece: a piece, as stored in the vocabulary
 *
 * Returns: the id of @piece (added tokens first, as the library does), or -1
 */
int32_t
bl_tokenizer_piece_to_id (BlTokenizer *self,
                          const char  *piece)
{
  int32_t id;

  g_return_val_if_fail (BL_IS_TOKENIZER (self), -1);
  g_return_val_if_fail (piece != NULL, -1);

  id = bl_bpe_vocab_lookup (self->added_vocab, piece, strlen (piece));
  return id >= 0 ? id : bl_bpe_vocab_lookup (self->vocab, piece, strlen (piece));
}

/**
 * bl_tokenizer_get_vocab_size:
 * @self: a #BlTokenizer
 *
 * Returns: one more than the largest id, added tokens included
 */
int
bl_tokenizer_get_vocab_size (BlTokenizer *self)
{
  g_return_val_if_fail (BL_IS_TOKENIZER (self), 0);
  return self->n_ids;
}

/**
 * bl_tokenizer_get_bos_id:
 * @self: a #BlTokenizer
 *
 * Returns: the BOS id, or -1 when the tokenizer has none
 */
int32_t
bl_tokenizer_get_bos_id (BlTokenizer *self)
{
  g_return_val_if_fail (BL_IS_TOKENIZER (self), -1);
  return self->bos_id;
}

/**
 * bl_tokenizer_get_eos_id:
 * @self: a #BlTokenizer
 *
 * Returns: the EOS id named by tokenizer_config.json, or -1
 */
int32_t
bl_tokenizer_get_eos_id (BlTokenizer *self)
{
  g_return_val_if_fail (BL_IS_TOKENIZER (self), -1);
  return self->eos_id;
}

/**
 * bl_tokenizer_get_add_bos:
 * @self: a #BlTokenizer
 *
 * Returns: whether the model puts BOS first by default (add_bos_token of
 *   tokenizer_config.json, else whether the post-processor template starts with a special
 *   token)
 */
gboolean
bl_tokenizer_get_add_bos (BlTokenizer *self)
{
  g_return_val_if_fail (BL_IS_TOKENIZER (self), FALSE);
  return self->add_bos;
}

/**
 * bl_tokenizer_get_style:
 * @self: a #BlTokenizer
 *
 * Returns: "byte-level" when a ByteLevel pre-tokenizer is present, else "sentencepiece"
 */
const char *
bl_tokenizer_get_style (BlTokenizer *self)
{
  g_return_val_if_fail (BL_IS_TOKENIZER (self), NULL);
  return self->style;
}

/**
 * bl_tokenizer_get_hash:
 * @self: a #BlTokenizer
 *
 * Returns: the SHA-256 (hex) of the tokenizer.json bytes followed by the
 *   tokenizer_config.json bytes when one was given
 */
const char *
bl_tokenizer_get_hash (BlTokenizer *self)
{
  g_return_val_if_fail (BL_IS_TOKENIZER (self), NULL);
  return self->hash;
}
