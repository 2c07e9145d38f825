/* bl-text-source.c: a text file read as one document, for perplexity evaluation
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * The text each protocol tokenizes (peers.md §4.1, shared/SOURCES.md):
 *
 * - llama.cpp reads `wiki.test.raw` whole and tokenizes it as-is
 *   (tools/perplexity: the prompt is the file's contents). bl_text_source_get_text().
 *
 * - GPTQ (datautils.get_wikitext2) and the HF perplexity guide tokenize
 *   "\n\n".join(load_dataset("wikitext", "wikitext-2-raw-v1", split="test")["text"]).
 *   The HF rows are the file's lines: the dataset's builder (datasets/wikitext/wikitext.py,
 *   _generate_examples) iterates `for row in f`, keeps each line with its trailing "\n",
 *   and turns every line that is only white space (row.strip() == "") into "". The
 *   Salesforce/wikitext parquet files hold the same 4,358 test rows. So the GPTQ text is
 *   NOT the file: each " \n" blank line becomes "", and rows are joined with "\n\n".
 *   The file starts " \n = Robert Boulter = \n \n Robert …", the GPTQ text starts
 *   "\n\n = Robert Boulter = \n\n\n\n\n Robert …". For the shared wiki.test.raw (1,290,590
 *   bytes, 4,358 lines of which 1,467 are blank) it has 1,290,590 − 2·1,467 + 2·4,357 =
 *   1,296,370 bytes. bl_text_source_get_protocol_text() builds it for the wikitext kind.
 *
 * - PTB, Brown and plain text are used as-is under every protocol. (GPTQ's own PTB numbers use
 *   "\n\n"- or " "-joined stripped lines of the HF ptb_text_only splits; that variant is
 *   not reproduced here.)
 */
#include "bl-text-source.h"

#include <string.h>

#include "bl-error.h"

struct _BlTextSource
{
  GObject parent_instance;

  BlTextSourceKind kind;
  char *path;
  char *name;
  char *sha256;
  char *text;               /* the file's or given bytes, NUL-terminated */
  gsize len;
  char *hf_rows_text;       /* wikitext only: the HF rows joined with "\n\n" */
  gsize hf_rows_len;
};

G_DEFINE_FINAL_TYPE (BlTextSource, bl_text_source, G_TYPE_OBJECT)

static const char * const kind_names[] = {
  [BL_TEXT_SOURCE_PLAIN] = "plain",
  [BL_TEXT_SOURCE_WIKITEXT2_RAW] = "wikitext2-raw",
  [BL_TEXT_SOURCE_PTB] = "ptb",
  [BL_TEXT_SOURCE_BROWN] = "brown",
};

/**
 * bl_text_source_kind_to_string:
 * @kind: a #BlTextSourceKind
 *
 * Returns: "plain", "wikitext2-raw", "ptb" or "brown"
 */
const char *
bl_text_source_kind_to_string (BlTextSourceKind kind)
{
  g_return_val_if_fail ((guint) kind < G_N_ELEMENTS (kind_names), NULL);

  return kind_names[kind];
}

/**
 * bl_text_source_kind_from_string:
 * @name: a kind name
 * @out_kind: (out): the kind
 *
 * Parses a name printed by bl_text_source_kind_to_string().
 *
 * Returns: %TRUE when @name is a kind name
 */
gboolean
bl_text_source_kind_from_string (const char       *name,
                                 BlTextSourceKind *out_kind)
{
  g_return_val_if_fail (name != NULL, FALSE);
  g_return_val_if_fail (out_kind != NULL, FALSE);

  for (guint i = 0; i < G_N_ELEMENTS (kind_names); i++)
    if (g_str_equal (name, kind_names[i]))
      {
        *out_kind = (BlTextSourceKind) i;
        return TRUE;
      }
  return FALSE;
}

/* The split in the official file names "wiki.<split>.raw" and "ptb.<split>.txt", and in
 * tools/brown-to-text's "brown-<split>.txt", or NULL. */
static char *
split_from_basename (const char *base,
                     const char *prefix,
                     const char *suffix)
{
  gsize n = strlen (base), np = strlen (prefix), ns = strlen (suffix);

  if (n <= np + ns || !g_str_has_prefix (base, prefix) || !g_str_has_suffix (base, suffix))
    return NULL;
  return g_strndup (base + np, n - np - ns);
}

/**
 * bl_text_source_kind_from_path:
 * @path: a file path
 *
 * Guesses the kind from the official file names: "wiki.*.raw" is WikiText-2 raw,
 * "ptb.*.txt" is PTB, "brown-*.txt" (tools/brown-to-text) is Brown, anything else
 * (including the tokenized "wiki.*.tokens") is plain.
 *
 * Returns: the kind
 */
BlTextSourceKind
bl_text_source_kind_from_path (const char *path)
{
  g_autofree char *base = NULL;
  g_autofree char *wiki = NULL;
  g_autofree char *ptb = NULL;
  g_autofree char *brown = NULL;

  g_return_val_if_fail (path != NULL, BL_TEXT_SOURCE_PLAIN);

  base = g_path_get_basename (path);
  wiki = split_from_basename (base, "wiki.", ".raw");
  if (wiki != NULL)
    return BL_TEXT_SOURCE_WIKITEXT2_RAW;
  ptb = split_from_basename (base, "ptb.", ".txt");
  if (ptb != NULL)
    return BL_TEXT_SOURCE_PTB;
  brown = split_from_basename (base, "brown-", ".txt");
  if (brown != NULL)
    return BL_TEXT_SOURCE_BROWN;
  return BL_TEXT_SOURCE_PLAIN;
}

static char *
make_name (const char       *path,
           BlTextSourceKind  kind)
{
  g_autofree char *base = g_path_get_basename (path);
  g_autofree char *split = NULL;

  switch (kind)
    {
    case BL_TEXT_SOURCE_WIKITEXT2_RAW:
      split = split_from_basename (base, "wiki.", ".raw");
      return g_strdup_printf ("wikitext-2-raw-v1/%s", split != NULL ? split : base);
    case BL_TEXT_SOURCE_PTB:
      split = split_from_basename (base, "ptb.", ".txt");
      return g_strdup_printf ("ptb/%s", split != NULL ? split : base);
    case BL_TEXT_SOURCE_BROWN:
      split = split_from_basename (base, "brown-", ".txt");
      return g_strdup_printf ("brown/%s", split != NULL ? split : base);
    case BL_TEXT_SOURCE_PLAIN:
    default:
      return g_steal_pointer (&base);
    }
}

/* Python's str.isspace(), which decides row.strip() == "": Unicode White_Space plus the
 * separators U+001C..U+001F that Python also counts (bidirectional class B or S). */
static gboolean
python_isspace (gunichar c)
{
  return g_unichar_isspace (c) || (c >= 0x1C && c <= 0x1F) || c == 0x85;
}

static gboolean
line_is_blank (const char *line,
               gsize       len)
{
  const char *end = line + len;

  for (const char *p = line; p < end; p = g_utf8_next_char (p))
    if (!python_isspace (g_utf8_get_char (p)))
      return FALSE;
  return TRUE;
}

/* "\n\n".join(rows), rows = the file's lines each with its "\n" (the last one may lack
 * it), a blank line as "". A final "\n" ends the last row; it does not start another. */
static char *
join_hf_rows (const char *text,
              gsize       len,
              gsize      *out_len)
{
  GString *out = g_string_sized_new (len + len / 16);
  const char *p = text;
  const char *end = text + len;
  gboolean first = TRUE;

  while (p < end)
    {
      const char *nl = memchr (p, '\n', end - p);
      const char *row_end = nl != NULL ? nl + 1 : end;

      if (!first)
        g_string_append_len (out, "\n\n", 2);
      first = FALSE;
      if (!line_is_blank (p, row_end - p))
        g_string_append_len (out, p, row_end - p);
      p = row_end;
    }
  *out_len = out->len;
  return g_string_free (out, FALSE);
}

static void
bl_text_source_finalize (GObject *object)
{
  BlTextSource *self = BL_TEXT_SOURCE (object);

  g_clear_pointer (&self->path, g_free);
  g_clear_pointer (&self->name, g_free);
  g_clear_pointer (&self->sha256, g_free);
  g_clear_pointer (&self->text, g_free);
  g_clear_pointer (&self->hf_rows_text, g_free);

  G_OBJECT_CLASS (bl_text_source_parent_class)->finalize (object);
}

static void
bl_text_source_class_init (BlTextSourceClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = bl_text_source_finalize;
}

static void
bl_text_source_init (BlTextSource *self)
{
}

/* Checks self->text and derives the sha256 and the protocol texts from it; @where names
 * the text in the error. */
static gboolean
take_text (BlTextSource  *self,
           const char    *where,
           GError       **error)
{
  const char *invalid = NULL;

  if (!g_utf8_validate_len (self->text, self->len, &invalid))
    {
      g_set_error (error, BL_ERROR, BL_ERROR_DATASET,
                   "%s: invalid UTF-8 at byte offset %" G_GSIZE_FORMAT, where,
                   (gsize) (invalid - self->text));
      return FALSE;
    }

  self->sha256 = g_compute_checksum_for_data (G_CHECKSUM_SHA256, (const guchar *) self->text,
                                              self->len);
  if (self->kind == BL_TEXT_SOURCE_WIKITEXT2_RAW)
    self->hf_rows_text = join_hf_rows (self->text, self->len, &self->hf_rows_len);
  return TRUE;
}

/**
 * bl_text_source_new_from_file:
 * @path: a UTF-8 text file
 * @kind: how to read it (see bl_text_source_kind_from_path())
 * @error: return location for a #GError
 *
 * Reads the whole file as one document and computes the sha256 of its bytes. The file must
 * be valid UTF-8 without NUL bytes.
 *
 * Returns: (transfer full): the source, or %NULL with @error set: %G_FILE_ERROR when the
 *   file cannot be read, %BL_ERROR_DATASET naming the file and byte offset of the first
 *   invalid UTF-8 sequence
 */
BlTextSource *
bl_text_source_new_from_file (const char        *path,
                              BlTextSourceKind   kind,
                              GError           **error)
{
  g_autoptr(BlTextSource) self = NULL;

  g_return_val_if_fail (path != NULL, NULL);
  g_return_val_if_fail ((guint) kind < G_N_ELEMENTS (kind_names), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  self = g_object_new (BL_TYPE_TEXT_SOURCE, NULL);
  if (!g_file_get_contents (path, &self->text, &self->len, error))
    return NULL;

  self->kind = kind;
  self->path = g_strdup (path);
  self->name = make_name (path, kind);
  if (!take_text (self, path, error))
    return NULL;

  return g_steal_pointer (&self);
}

/**
 * bl_text_source_new_from_text:
 * @name: the source's short name (see bl_text_source_get_name()), for example "brown/test"
 * @path: (nullable): where the text came from, returned by bl_text_source_get_path()
 * @kind: how the text is read
 * @text: (transfer full): the text, NUL-terminated at @len; freed with g_free()
 * @len: the text's length in bytes
 * @error: return location for a #GError
 *
 * Wraps a text built in memory (for example a Brown split assembled from its sample files
 * by bl_brown_load_split()) as a source, exactly as if it had been read from a file of
 * @kind. The source takes @text, also when it fails. The text must be valid UTF-8 without
 * NUL bytes.
 *
 * Returns: (transfer full): the source, or %NULL with @error set: %BL_ERROR_DATASET naming
 *   @name and the byte offset of the first invalid UTF-8 sequence
 */
BlTextSource *
bl_text_source_new_from_text (const char        *name,
                              const char        *path,
                              BlTextSourceKind   kind,
                              char              *text,
                              gsize              len,
                              GError           **error)
{
  g_autoptr(BlTextSource) self = NULL;

  g_return_val_if_fail (name != NULL, NULL);
  g_return_val_if_fail ((guint) kind < G_N_ELEMENTS (kind_names), NULL);
  g_return_val_if_fail (text != NULL && text[len] == '\0', NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  self = g_object_new (BL_TYPE_TEXT_SOURCE, NULL);
  self->text = text;
  self->len = len;
  self->kind = kind;
  self->path = g_strdup (path);
  self->name = g_strdup (name);
  if (!take_text (self, name, error))
    return NULL;

  return g_steal_pointer (&self);
}

/**
 * bl_text_source_get_kind:
 * @self: a text source
 *
 * Returns: how the file was read
 */
BlTextSourceKind
bl_text_source_get_kind (BlTextSource *self)
{
  g_return_val_if_fail (BL_IS_TEXT_SOURCE (self), BL_TEXT_SOURCE_PLAIN);

  return self->kind;
}

/**
 * bl_text_source_get_path:
 * @self: a text source
 *
 * Returns: (nullable): the file path it was read from, or for a text built in memory the
 *   path given to bl_text_source_new_from_text() (for a Brown split, the corpus directory)
 */
const char *
bl_text_source_get_path (BlTextSource *self)
{
  g_return_val_if_fail (BL_IS_TEXT_SOURCE (self), NULL);

  return self->path;
}

/**
 * bl_text_source_get_name:
 * @self: a text source
 *
 * Returns: a short name: "wikitext-2-raw-v1/test", "ptb/test", "brown/test", or the file's
 *   base name
 */
const char *
bl_text_source_get_name (BlTextSource *self)
{
  g_return_val_if_fail (BL_IS_TEXT_SOURCE (self), NULL);

  return self->name;
}

/**
 * bl_text_source_get_sha256:
 * @self: a text source
 *
 * Returns: the lowercase hex sha256 of the text's bytes (for a file, its bytes as read)
 */
const char *
bl_text_source_get_sha256 (BlTextSource *self)
{
  g_return_val_if_fail (BL_IS_TEXT_SOURCE (self), NULL);

  return self->sha256;
}

/**
 * bl_text_source_get_text:
 * @self: a text source
 * @len: (out) (optional): the text's length in bytes
 *
 * The file's bytes (or the text given to bl_text_source_new_from_text()), unchanged
 * (NUL-terminated; valid UTF-8). This is the text llama.cpp scores; for the text of a given
 * protocol use bl_text_source_get_protocol_text().
 *
 * Returns: (transfer none): the text
 */
const char *
bl_text_source_get_text (BlTextSource *self,
                         gsize        *len)
{
  g_return_val_if_fail (BL_IS_TEXT_SOURCE (self), NULL);

  if (len != NULL)
    *len = self->len;
  return self->text;
}

/**
 * bl_text_source_get_protocol_text:
 * @self: a text source
 * @protocol: the evaluation protocol
 * @len: (out) (optional): the text's length in bytes
 *
 * The exact string @protocol tokenizes (once, with BOS at its start when the tokenizer
 * adds one). For %BL_TEXT_SOURCE_WIKITEXT2_RAW under %BL_PROTOCOL_GPTQ and
 * %BL_PROTOCOL_HF_STRIDE it is "\n\n".join(HF rows): the file's lines, each with its "\n",
 * white-space-only lines as "", joined with "\n\n" (see the top of bl-text-source.c). In
 * every other case (llamacpp, PTB, Brown, plain text) it is the file as-is.
 *
 * Returns: (transfer none): the text (NUL-terminated; valid UTF-8)
 */
const char *
bl_text_source_get_protocol_text (BlTextSource *self,
                                  BlProtocol    protocol,
                                  gsize        *len)
{
  g_return_val_if_fail (BL_IS_TEXT_SOURCE (self), NULL);

  if (self->kind == BL_TEXT_SOURCE_WIKITEXT2_RAW
      && (protocol == BL_PROTOCOL_GPTQ || protocol == BL_PROTOCOL_HF_STRIDE))
    {
      if (len != NULL)
        *len = self->hf_rows_len;
      return self->hf_rows_text;
    }
  return bl_text_source_get_text (self, len);
}
