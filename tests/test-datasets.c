/* test-datasets.c: tests of datasets/bl-text-source.c
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * The expected GPTQ/HF texts were produced with Python the way the HF wikitext builder and
 * GPTQ do it: rows = [row if row.strip() else "" for row in open(path)], "\n\n".join(rows).
 */
#include <string.h>

#include <glib/gstdio.h>

#include "bl-error.h"
#include "bl-text-source.h"

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

static void
test_kind_names (void)
{
  BlTextSourceKind kind;

  for (guint i = BL_TEXT_SOURCE_PLAIN; i <= BL_TEXT_SOURCE_PTB; i++)
    {
      g_assert_true (bl_text_source_kind_from_string (bl_text_source_kind_to_string (i), &kind));
      g_assert_cmpint (kind, ==, i);
    }
  g_assert_false (bl_text_source_kind_from_string ("wikitext", &kind));

  g_assert_cmpint (bl_text_source_kind_from_path ("wiki.test.raw"), ==,
                   BL_TEXT_SOURCE_WIKITEXT2_RAW);
  g_assert_cmpint (bl_text_source_kind_from_path ("/data/wikitext-2-raw/wiki.valid.raw"), ==,
                   BL_TEXT_SOURCE_WIKITEXT2_RAW);
  g_assert_cmpint (bl_text_source_kind_from_path ("/data/ptb/ptb.test.txt"), ==,
                   BL_TEXT_SOURCE_PTB);
  g_assert_cmpint (bl_text_source_kind_from_path ("/data/wikitext-2/wiki.test.tokens"), ==,
                   BL_TEXT_SOURCE_PLAIN);
  g_assert_cmpint (bl_text_source_kind_from_path ("wiki.raw"), ==, BL_TEXT_SOURCE_PLAIN);
  g_assert_cmpint (bl_text_source_kind_from_path ("story.txt"), ==, BL_TEXT_SOURCE_PLAIN);
}

static void
test_plain (void)
{
  static const char text[] = "Once upon a time, ünïcödé.\n\nThe end.";
  g_autoptr(GError) error = NULL;
  g_autoptr(BlTextSource) source = NULL;
  g_autofree char *path = write_tmp ("story.txt", text, -1);
  g_autofree char *sha = g_compute_checksum_for_string (G_CHECKSUM_SHA256, text, -1);
  const char *got;
  gsize len = 0;

  source = bl_text_source_new_from_file (path, bl_text_source_kind_from_path (path), &error);
  g_assert_no_error (error);
  g_assert_cmpint (bl_text_source_get_kind (source), ==, BL_TEXT_SOURCE_PLAIN);
  g_assert_cmpstr (bl_text_source_get_path (source), ==, path);
  g_assert_cmpstr (bl_text_source_get_name (source), ==, "story.txt");
  g_assert_cmpstr (bl_text_source_get_sha256 (source), ==, sha);
  got = bl_text_source_get_text (source, &len);
  g_assert_cmpmem (got, len, text, strlen (text));
  g_assert_cmpint (got[len], ==, '\0');
  for (BlProtocol p = BL_PROTOCOL_GPTQ; p <= BL_PROTOCOL_LLAMACPP; p++)
    {
      g_assert_true (bl_text_source_get_protocol_text (source, p, &len) == got);
      g_assert_cmpuint (len, ==, strlen (text));
    }
}

static void
test_empty_file (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(BlTextSource) source = NULL;
  g_autofree char *path = write_tmp ("wiki.empty.raw", "", 0);
  gsize len = 1;

  source = bl_text_source_new_from_file (path, BL_TEXT_SOURCE_WIKITEXT2_RAW, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (bl_text_source_get_text (source, &len), ==, "");
  g_assert_cmpuint (len, ==, 0);
  g_assert_cmpstr (bl_text_source_get_protocol_text (source, BL_PROTOCOL_GPTQ, &len), ==, "");
  g_assert_cmpuint (len, ==, 0);
  g_assert_cmpstr (bl_text_source_get_sha256 (source), ==,
                   "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

static void
test_invalid_utf8 (void)
{
  static const struct { const char *bytes; gsize len; gsize offset; } cases[] = {
    { "hello\xffworld", 11, 5 },
    { "ab\xc3", 3, 2 },              /* truncated sequence at the end */
    { "ok\0nul", 6, 2 },             /* NUL is not text */
    { "\xed\xa0\x80", 3, 0 },        /* a UTF-16 surrogate */
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(BlTextSource) source = NULL;
      g_autofree char *path = write_tmp ("bad.txt", cases[i].bytes, cases[i].len);
      g_autofree char *expected = g_strdup_printf ("%s: invalid UTF-8 at byte offset %"
                                                   G_GSIZE_FORMAT, path, cases[i].offset);

      source = bl_text_source_new_from_file (path, BL_TEXT_SOURCE_PLAIN, &error);
      g_assert_null (source);
      g_assert_error (error, BL_ERROR, BL_ERROR_DATASET);
      g_assert_cmpstr (error->message, ==, expected);
    }
}

static void
test_missing_file (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(BlTextSource) source = NULL;

  source = bl_text_source_new_from_file ("/nonexistent/wiki.test.raw",
                                         BL_TEXT_SOURCE_WIKITEXT2_RAW, &error);
  g_assert_null (source);
  g_assert_error (error, G_FILE_ERROR, G_FILE_ERROR_NOENT);
}

static void
test_wikitext_rows (void)
{
  static const char expected[] =
    "\n\n = Valkyria = \n\n\n\n\n Senj\xc5\x8d no Valkyria is a game . \n\n\n\n\n"
    " = = Plot = = \n\n\n\n\n It is set in 1935 . \n\n\n";
  g_autoptr(GError) error = NULL;
  g_autoptr(BlTextSource) source = NULL;
  g_autofree char *file = NULL;
  const char *path = g_test_get_filename (G_TEST_DIST, "fixtures", "datasets", "wiki.mini.raw",
                                          NULL);
  const char *text;
  gsize file_len, len;

  g_assert_true (g_file_get_contents (path, &file, &file_len, NULL));
  source = bl_text_source_new_from_file (path, bl_text_source_kind_from_path (path), &error);
  g_assert_no_error (error);
  g_assert_cmpint (bl_text_source_get_kind (source), ==, BL_TEXT_SOURCE_WIKITEXT2_RAW);
  g_assert_cmpstr (bl_text_source_get_name (source), ==, "wikitext-2-raw-v1/mini");

  /* llama.cpp: the file as-is */
  text = bl_text_source_get_protocol_text (source, BL_PROTOCOL_LLAMACPP, &len);
  g_assert_cmpmem (text, len, file, file_len);
  text = bl_text_source_get_text (source, &len);
  g_assert_cmpmem (text, len, file, file_len);

  /* GPTQ and HF: the HF rows joined with "\n\n" */
  text = bl_text_source_get_protocol_text (source, BL_PROTOCOL_GPTQ, &len);
  g_assert_cmpmem (text, len, expected, sizeof expected - 1);
  g_assert_cmpint (text[len], ==, '\0');
  text = bl_text_source_get_protocol_text (source, BL_PROTOCOL_HF_STRIDE, &len);
  g_assert_cmpmem (text, len, expected, sizeof expected - 1);
}

/* White-space-only rows as Python's str.strip() sees them, and a last line without "\n". */
static void
test_wikitext_blank_rows (void)
{
  /* "a \n", "\t\n", "\u3000\n", "\x1c\n", "\u00a0x\n", "b" */
  static const char file[] = "a \n\t\n\xe3\x80\x80\n\x1c\n\xc2\xa0x\nb";
  static const char expected[] = "a \n\n\n\n\n\n\n\n\n\xc2\xa0x\n\n\nb";
  g_autoptr(GError) error = NULL;
  g_autoptr(BlTextSource) source = NULL;
  g_autofree char *path = write_tmp ("wiki.edge.raw", file, sizeof file - 1);
  const char *text;
  gsize len;

  source = bl_text_source_new_from_file (path, BL_TEXT_SOURCE_WIKITEXT2_RAW, &error);
  g_assert_no_error (error);
  text = bl_text_source_get_protocol_text (source, BL_PROTOCOL_GPTQ, &len);
  g_assert_cmpmem (text, len, expected, sizeof expected - 1);
}

static char *
shared_path (const char *relative)
{
  const char *shared = g_getenv ("BITLENS_SHARED_DIR");
  char *path;

  if (shared == NULL)
    {
      g_test_skip ("BITLENS_SHARED_DIR is not set; the shared datasets are not available");
      return NULL;
    }
  path = g_build_filename (shared, relative, NULL);
  if (!g_file_test (path, G_FILE_TEST_IS_REGULAR))
    {
      g_autofree char *msg = g_strdup_printf ("%s is missing", path);

      g_test_skip (msg);
      g_free (path);
      return NULL;
    }
  return path;
}

static void
test_wikitext_shared (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(BlTextSource) source = NULL;
  g_autofree char *path = shared_path ("datasets/wikitext-2-raw-v1/wiki.test.raw");
  g_autofree char *sha = NULL;
  const char *text;
  gsize len;

  if (path == NULL)
    return;

  source = bl_text_source_new_from_file (path, bl_text_source_kind_from_path (path), &error);
  g_assert_no_error (error);
  g_assert_cmpint (bl_text_source_get_kind (source), ==, BL_TEXT_SOURCE_WIKITEXT2_RAW);
  g_assert_cmpstr (bl_text_source_get_name (source), ==, "wikitext-2-raw-v1/test");
  /* shared/SOURCES.md */
  g_assert_cmpstr (bl_text_source_get_sha256 (source), ==,
                   "173c87a53759e0201f33e0ccf978e510c2042d7f2cb78229d9a50d79b9e7dd08");

  text = bl_text_source_get_protocol_text (source, BL_PROTOCOL_LLAMACPP, &len);
  g_assert_cmpuint (len, ==, 1290590);
  g_assert_true (g_str_has_prefix (text, " \n = Robert Boulter = \n \n Robert Boulter is"));

  /* 4,358 rows, 1,467 blank: 1,290,590 − 2·1,467 + 2·4,357 bytes */
  text = bl_text_source_get_protocol_text (source, BL_PROTOCOL_GPTQ, &len);
  g_assert_cmpuint (len, ==, 1296370);
  g_assert_true (g_str_has_prefix (text, "\n\n = Robert Boulter = \n\n\n\n\n Robert Boulter is"));
  sha = g_compute_checksum_for_data (G_CHECKSUM_SHA256, (const guchar *) text, len);
  g_assert_cmpstr (sha, ==, "696cca6b65a171b0a358a4be6732cdfdf2dd6164a32e20fd70e3c13fc4dfae83");
}

static void
test_ptb_shared (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(BlTextSource) source = NULL;
  g_autofree char *path = shared_path ("datasets/ptb/ptb.test.txt");
  const char *file;
  gsize file_len, len;

  if (path == NULL)
    return;

  source = bl_text_source_new_from_file (path, bl_text_source_kind_from_path (path), &error);
  g_assert_no_error (error);
  g_assert_cmpint (bl_text_source_get_kind (source), ==, BL_TEXT_SOURCE_PTB);
  g_assert_cmpstr (bl_text_source_get_name (source), ==, "ptb/test");
  g_assert_cmpstr (bl_text_source_get_sha256 (source), ==,
                   "dd65dff31e70846b2a6030a87482edcd5d199130cdcfa1f3dccbb033728deee0");
  file = bl_text_source_get_text (source, &file_len);
  g_assert_cmpuint (file_len, ==, 449945);
  for (BlProtocol p = BL_PROTOCOL_GPTQ; p <= BL_PROTOCOL_LLAMACPP; p++)
    {
      g_assert_true (bl_text_source_get_protocol_text (source, p, &len) == file);
      g_assert_cmpuint (len, ==, file_len);
    }
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

  g_test_add_func ("/bitlens/datasets/kind/names", test_kind_names);
  g_test_add_func ("/bitlens/datasets/plain", test_plain);
  g_test_add_func ("/bitlens/datasets/empty-file", test_empty_file);
  g_test_add_func ("/bitlens/datasets/invalid-utf8", test_invalid_utf8);
  g_test_add_func ("/bitlens/datasets/missing-file", test_missing_file);
  g_test_add_func ("/bitlens/datasets/wikitext/rows", test_wikitext_rows);
  g_test_add_func ("/bitlens/datasets/wikitext/blank-rows", test_wikitext_blank_rows);
  g_test_add_func ("/bitlens/datasets/wikitext/shared", test_wikitext_shared);
  g_test_add_func ("/bitlens/datasets/ptb/shared", test_ptb_shared);

  return g_test_run ();
}
