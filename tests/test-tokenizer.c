/* test-tokenizer.c: BlTokenizer against the ids of tools/reference-tokenize
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * fixtures/tokenizer/reference.json is written by tools/make-tokenizer-fixtures. It holds,
 * per tokenizer, the ids and decoded text of tricky strings, the decoding of the whole
 * vocabulary, and for wiki.test.raw and ptb.test.txt (read from $BITLENS_SHARED_DIR) the id
 * count, the first 64 ids and the sha256 of all ids as int32 little-endian.
 */
#include <json-glib/json-glib.h>
#include <string.h>

#include "bl-error.h"
#include "bl-tokenizer.h"

static JsonNode *reference_root;

static JsonArray *
reference_models (void)
{
  if (reference_root == NULL)
    {
      g_autoptr(JsonParser) parser = json_parser_new ();
      g_autoptr(GError) error = NULL;
      const char *path = g_test_get_filename (G_TEST_DIST, "fixtures", "tokenizer",
                                              "reference.json", NULL);

      json_parser_load_from_file (parser, path, &error);
      g_assert_no_error (error);
      reference_root = json_node_copy (json_parser_get_root (parser));
    }
  return json_object_get_array_member (json_node_get_object (reference_root), "models");
}

static JsonObject *
reference_model (const char *name)
{
  JsonArray *models = reference_models ();

  for (guint i = 0; i < json_array_get_length (models); i++)
    {
      JsonObject *m = json_array_get_object_element (models, i);

      if (g_str_equal (json_object_get_string_member (m, "name"), name))
        return m;
    }
  g_error ("no model %s in reference.json", name);
}

static const char *
shared_dir (void)
{
  const char *dir = g_getenv ("BITLENS_SHARED_DIR");

  return dir != NULL && g_file_test (dir, G_FILE_TEST_IS_DIR) ? dir : NULL;
}

/* Opens a reference model; NULL (and the test skipped) when its files are not here. */
static BlTokenizer *
open_model (JsonObject *m)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *tok = NULL, *config = NULL;
  const char *root;
  BlTokenizer *t;

  if (g_str_equal (json_object_get_string_member (m, "location"), "shared"))
    {
      root = shared_dir ();
      if (root == NULL)
        {
          g_test_skip ("BITLENS_SHARED_DIR is not set or missing: shared models are needed");
          return NULL;
        }
    }
  else
    root = g_test_get_filename (G_TEST_DIST, "fixtures", "tokenizer", NULL);

  tok = g_build_filename (root, json_object_get_string_member (m, "tokenizer"), NULL);
  if (!JSON_NODE_HOLDS_NULL (json_object_get_member (m, "config")))
    config = g_build_filename (root, json_object_get_string_member (m, "config"), NULL);
  t = bl_tokenizer_new_from_file (tok, config, &error);
  g_assert_no_error (error);
  g_assert_nonnull (t);
  return t;
}

static void
assert_ids (GArray     *ids,
            JsonArray  *expected,
            const char *what)
{
  guint n = json_array_get_length (expected);

  if (ids->len != n)
    g_error ("%s: %u ids, expected %u", what, ids->len, n);
  for (guint i = 0; i < n; i++)
    if (g_array_index (ids, int32_t, i) != json_array_get_int_element (expected, i))
      g_error ("%s: id %u is %d, expected %" G_GINT64_FORMAT, what, i,
               g_array_index (ids, int32_t, i), json_array_get_int_element (expected, i));
}

static char *
sha256_ids (GArray *ids)
{
  g_autoptr(GChecksum) sum = g_checksum_new (G_CHECKSUM_SHA256);

  for (guint i = 0; i < ids->len; i++)
    {
      uint32_t v = GUINT32_TO_LE ((uint32_t) g_array_index (ids, int32_t, i));
      g_checksum_update (sum, (const guchar *) &v, 4);
    }
  return g_strdup (g_checksum_get_string (sum));
}

/* Properties, tricky strings and the decoding of the whole vocabulary. */
static void
check_cases (const char *name)
{
  JsonObject *m = reference_model (name);
  g_autoptr(BlTokenizer) t = open_model (m);
  JsonArray *cases;
  JsonObject *all;
  int n;
  g_autofree int32_t *every = NULL;
  g_autofree char *forward = NULL, *reverse = NULL;

  if (t == NULL)
    return;

  g_assert_cmpstr (bl_tokenizer_get_style (t), ==, json_object_get_string_member (m, "style"));
  g_assert_cmpstr (bl_tokenizer_get_hash (t), ==, json_object_get_string_member (m, "hash"));
  g_assert_cmpint (bl_tokenizer_get_vocab_size (t), ==, json_object_get_int_member (m, "vocab_size"));
  g_assert_cmpint (bl_tokenizer_get_bos_id (t), ==, json_object_get_int_member (m, "bos_id"));
  g_assert_cmpint (bl_tokenizer_get_eos_id (t), ==, json_object_get_int_member (m, "eos_id"));
  g_assert_cmpint (bl_tokenizer_get_add_bos (t), ==, json_object_get_boolean_member (m, "add_bos"));

  cases = json_object_get_array_member (m, "cases");
  for (guint i = 0; i < json_array_get_length (cases); i++)
    {
      JsonObject *c = json_array_get_object_element (cases, i);
      const char *text = json_object_get_string_member (c, "text");
      g_autoptr(GArray) ids = bl_tokenizer_encode (t, text, -1, FALSE);
      g_autoptr(GArray) with_bos = bl_tokenizer_encode (t, text, -1, TRUE);
      g_autofree char *decoded = NULL;
      g_autofree char *what = g_strdup_printf ("%s case %u", name, i);
      int32_t bos = bl_tokenizer_get_bos_id (t);

      assert_ids (ids, json_object_get_array_member (c, "ids"), what);
      decoded = bl_tokenizer_decode (t, (const int32_t *) ids->data, ids->len);
      g_assert_cmpstr (decoded, ==, json_object_get_string_member (c, "decoded"));

      /* BOS goes first, and only when the tokenizer has one. */
      g_assert_cmpuint (with_bos->len, ==, ids->len + (bos >= 0 ? 1 : 0));
      if (bos >= 0)
        g_assert_cmpint (g_array_index (with_bos, int32_t, 0), ==, bos);
      g_assert_cmpmem (with_bos->data + (bos >= 0 ? 4 : 0), ids->len * 4, ids->data, ids->len * 4);
    }

  n = bl_tokenizer_get_vocab_size (t);
  every = g_new (int32_t, n);
  all = json_object_get_object_member (m, "decode_all");
  for (int i = 0; i < n; i++)
    every[i] = i;
  forward = bl_tokenizer_decode (t, every, n);
  g_assert_cmpstr (forward, ==, json_object_get_string_member (all, "forward"));
  for (int i = 0; i < n; i++)
    every[i] = n - 1 - i;
  reverse = bl_tokenizer_decode (t, every, n);
  g_assert_cmpstr (reverse, ==, json_object_get_string_member (all, "reverse"));

  for (int32_t id = 0; id < n; id++)
    {
      const char *piece = bl_tokenizer_id_to_piece (t, id);

      if (piece != NULL)
        g_assert_cmpstr (bl_tokenizer_id_to_piece (t, bl_tokenizer_piece_to_id (t, piece)), ==, piece);
    }
  g_assert_null (bl_tokenizer_id_to_piece (t, -1));
  g_assert_null (bl_tokenizer_id_to_piece (t, n));
  g_assert_cmpint (bl_tokenizer_piece_to_id (t, "no such piece, surely"), ==, -1);
}

/* Whole shared files encoded as one string each. */
static void
check_files (const char *name)
{
  JsonObject *m = reference_model (name);
  g_autoptr(BlTokenizer) t = open_model (m);
  JsonArray *files;

  if (t == NULL)
    return;

  files = json_object_get_array_member (m, "files");
  for (guint i = 0; i < json_array_get_length (files); i++)
    {
      JsonObject *f = json_array_get_object_element (files, i);
      g_autoptr(GError) error = NULL;
      g_autofree char *path = g_build_filename (shared_dir (), json_object_get_string_member (f, "path"), NULL);
      g_autofree char *text = NULL, *sha = NULL, *decoded = NULL, *decoded_sha = NULL;
      g_autofree char *what = NULL;
      g_autoptr(GArray) ids = NULL;
      g_autoptr(GArray) first = NULL;
      JsonArray *expected_first = json_object_get_array_member (f, "first");
      gsize len;
      gint64 t0, t1;

      g_file_get_contents (path, &text, &len, &error);
      g_assert_no_error (error);

      t0 = g_get_monotonic_time ();
      ids = bl_tokenizer_encode (t, text, len, FALSE);
      t1 = g_get_monotonic_time ();
      g_test_message ("%s: encoding %s (%zu bytes, %u ids) took %.3f s", name,
                      json_object_get_string_member (f, "path"), len, ids->len, (t1 - t0) / 1e6);

      what = g_strdup_printf ("%s %s", name, json_object_get_string_member (f, "path"));
      g_assert_cmpint (ids->len, ==, json_object_get_int_member (f, "count"));
      first = g_array_new (FALSE, FALSE, sizeof (int32_t));
      g_array_append_vals (first, ids->data, MIN (ids->len, json_array_get_length (expected_first)));
      assert_ids (first, expected_first, what);
      sha = sha256_ids (ids);
      g_assert_cmpstr (sha, ==, json_object_get_string_member (f, "sha256"));

      decoded = bl_tokenizer_decode (t, (const int32_t *) ids->data, ids->len);
      decoded_sha = g_compute_checksum_for_string (G_CHECKSUM_SHA256, decoded, -1);
      g_assert_cmpstr (decoded_sha, ==, json_object_get_string_member (f, "decoded_sha256"));
      if (json_object_get_boolean_member (f, "roundtrip"))
        g_assert_true (g_str_equal (decoded, text));
    }
}

static void
test_sentencepiece_cases (void)
{
  check_cases ("stories260k");
  check_cases ("tinystories-656k");
}

static void
test_sentencepiece_wikitext (void)
{
  check_files ("stories260k");
  check_files ("tinystories-656k");
}

/* SOURCES.md: the first ids of wiki.test.raw's first 3,000 characters. */
static void
test_sentencepiece_golden (void)
{
  static const struct
  {
    const char *name;
    int32_t     first[8];
    guint       unk_in_256;
  } golden[] = {
    { "stories260k", { 410, 410, 13, 410, 64, 410, 461, 414 }, 0 },
    { "tinystories-656k", { 80, 80, 3, 80, 0, 80, 43, 492 }, 4 },
  };
  g_autofree char *text = NULL;
  g_autofree char *path = NULL;
  g_autoptr(GError) error = NULL;

  if (shared_dir () == NULL)
    {
      g_test_skip ("BITLENS_SHARED_DIR is not set or missing");
      return;
    }
  path = g_build_filename (shared_dir (), "datasets", "wikitext-2-raw-v1", "wiki.test.raw", NULL);
  g_file_get_contents (path, &text, NULL, &error);
  g_assert_no_error (error);

  for (guint k = 0; k < G_N_ELEMENTS (golden); k++)
    {
      g_autoptr(BlTokenizer) t = open_model (reference_model (golden[k].name));
      g_autoptr(GArray) ids = bl_tokenizer_encode (t, text, 3000, FALSE);
      guint unk = 0;

      g_assert_cmpuint (ids->len, >=, 256);
      g_assert_cmpmem (ids->data, sizeof golden[k].first, golden[k].first, sizeof golden[k].first);
      for (guint i = 0; i < 256; i++)
        unk += g_array_index (ids, int32_t, i) == 0;
      g_assert_cmpuint (unk, ==, golden[k].unk_in_256);
    }
}

static const char *const bytelevel_models[] = {
  "bytelevel", "bytelevel-smollm", "bytelevel-qwen2", "bytelevel-gpt2",
};

static void
test_bytelevel_fixture (void)
{
  for (guint i = 0; i < G_N_ELEMENTS (bytelevel_models); i++)
    check_cases (bytelevel_models[i]);
}

static void
test_bytelevel_wikitext (void)
{
  if (shared_dir () == NULL)
    {
      g_test_skip ("BITLENS_SHARED_DIR is not set or missing: wiki.test.raw is needed");
      return;
    }
  for (guint i = 0; i < G_N_ELEMENTS (bytelevel_models); i++)
    check_files (bytelevel_models[i]);
}

/* ---- small tokenizers written here; expected ids checked with tools/reference-tokenize ---- */

static const char mini_format[] =
  "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1,\"c\":2,\"-\":3,\"a-\":4,\"-b\":5,"
  "\"--\":6,\"-c\":7,\" \":8,\"1\":9,\"2\":10,\"12\":11,\"x\":12,\"<unk>\":13},"
  "\"merges\":[\"a -\",\"- -\",\"- b\",\"- c\",\"1 2\"],\"unk_token\":\"<unk>\"%s},"
  "\"normalizer\":%s,\"pre_tokenizer\":%s,\"decoder\":%s}";

static BlTokenizer *
mini (const char *model_extra,
      const char *normalizer,
      const char *pre_tokenizer,
      const char *decoder)
{
  g_autofree char *json = g_strdup_printf (mini_format, model_extra, normalizer, pre_tokenizer,
                                           decoder);
  g_autoptr(GError) error = NULL;
  BlTokenizer *t = bl_tokenizer_new_from_data (json, strlen (json), NULL, 0, "mini", &error);

  g_assert_no_error (error);
  return t;
}

static void
assert_encodes (BlTokenizer   *t,
                const char    *text,
                const int32_t *expected,
                guint          n)
{
  g_autoptr(GArray) ids = bl_tokenizer_encode (t, text, -1, FALSE);

  g_assert_cmpmem (ids->data, ids->len * sizeof (int32_t), expected, n * sizeof (int32_t));
}

#define ASSERT_ENCODES(t, text, ...) \
  G_STMT_START { \
    static const int32_t expected_[] = { __VA_ARGS__ }; \
    assert_encodes ((t), (text), expected_, G_N_ELEMENTS (expected_)); \
  } G_STMT_END

static void
test_split_behaviors (void)
{
  static const struct
  {
    const char *pre;
    int32_t     ids[6];
    guint       n;
  } cases[] = {
    { "{\"type\":\"Split\",\"pattern\":{\"String\":\"-\"},\"behavior\":\"Removed\",\"invert\":false}",
      { 0, 1, 2 }, 3 },
    { "{\"type\":\"Split\",\"pattern\":{\"String\":\"-\"},\"behavior\":\"Isolated\",\"invert\":false}",
      { 0, 3, 1, 3, 3, 2 }, 6 },
    { "{\"type\":\"Split\",\"pattern\":{\"String\":\"-\"},\"behavior\":\"MergedWithPrevious\",\"invert\":false}",
      { 4, 1, 3, 3, 2 }, 5 },
    { "{\"type\":\"Split\",\"pattern\":{\"String\":\"-\"},\"behavior\":\"MergedWithNext\",\"invert\":false}",
      { 0, 5, 3, 7 }, 4 },
    { "{\"type\":\"Split\",\"pattern\":{\"String\":\"-\"},\"behavior\":\"Contiguous\",\"invert\":false}",
      { 0, 3, 1, 6, 2 }, 5 },
    { "{\"type\":\"Split\",\"pattern\":{\"String\":\"-\"},\"behavior\":\"Removed\",\"invert\":true}",
      { 3, 3, 3 }, 3 },
    { "{\"type\":\"Split\",\"pattern\":{\"Regex\":\"-+\"},\"behavior\":\"Isolated\",\"invert\":false}",
      { 0, 3, 1, 6, 2 }, 5 },
    { "null", { 4, 1, 6, 2 }, 4 },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(BlTokenizer) t = mini ("", "null", cases[i].pre, "null");

      assert_encodes (t, "a-b--c", cases[i].ids, cases[i].n);
      g_assert_cmpstr (bl_tokenizer_get_style (t), ==, "sentencepiece");
    }
}

static void
test_components (void)
{
  g_autoptr(BlTokenizer) digits = mini ("", "null", "{\"type\":\"Digits\",\"individual_digits\":false}", "null");
  g_autoptr(BlTokenizer) single = mini ("", "null", "{\"type\":\"Digits\",\"individual_digits\":true}", "null");
  g_autoptr(BlTokenizer) replace = mini ("", "{\"type\":\"Replace\",\"pattern\":{\"Regex\":\"b+\"},\"content\":\"x\"}", "null", "null");
  g_autoptr(BlTokenizer) nfkc = mini ("", "{\"type\":\"NFKC\"}", "null", "null");
  g_autoptr(BlTokenizer) fused = mini (",\"fuse_unk\":true", "{\"type\":\"NFKC\"}", "null", "null");
  g_autoptr(BlTokenizer) plain = mini ("", "null", "null", "null");
  g_autoptr(BlTokenizer) strip = mini ("", "null", "null",
                                       "{\"type\":\"Sequence\",\"decoders\":[{\"type\":\"Strip\",\"content\":\"-\",\"start\":1,\"stop\":1}]}");
  static const int32_t strip_ids[] = { 5, 4, 6, 3 };
  static const int32_t plain_ids[] = { 4, 1, 8, 2 };
  g_autofree char *stripped = NULL, *joined = NULL;

  ASSERT_ENCODES (digits, "a12b1", 0, 11, 1, 9);
  ASSERT_ENCODES (single, "a12b1", 0, 9, 10, 1, 9);
  ASSERT_ENCODES (replace, "abbbc", 0, 12, 2);
  /* U+FF41 is a compatibility 'a'; each unknown ü is its own <unk> unless fuse_unk. */
  ASSERT_ENCODES (nfkc, "\xef\xbd\x81\xc3\xbc\xc3\xbc" "a", 0, 13, 13, 0);
  ASSERT_ENCODES (fused, "\xef\xbd\x81\xc3\xbc\xc3\xbc" "a\xc3\xbc", 0, 13, 0, 13);
  ASSERT_ENCODES (plain, "a-b c", 4, 1, 8, 2);

  /* Without a decoder the library joins the pieces with spaces. */
  joined = bl_tokenizer_decode (plain, plain_ids, G_N_ELEMENTS (plain_ids));
  g_assert_cmpstr (joined, ==, "a- b   c");
  stripped = bl_tokenizer_decode (strip, strip_ids, G_N_ELEMENTS (strip_ids));
  g_assert_cmpstr (stripped, ==, "ba");
}

/* Invalid UTF-8 and U+0000 must neither crash nor be dropped silently. */
static void
test_odd_input (void)
{
  g_autoptr(BlTokenizer) t = open_model (reference_model ("bytelevel"));
  g_autoptr(GArray) bad = bl_tokenizer_encode (t, "a\xff" "b\xe2\x82", -1, FALSE);
  g_autoptr(GArray) repaired = bl_tokenizer_encode (t, "a\xef\xbf\xbd" "b\xef\xbf\xbd", -1, FALSE);
  g_autoptr(GArray) nul = bl_tokenizer_encode (t, "a\0b", 3, FALSE);
  g_autoptr(GArray) empty = bl_tokenizer_encode (t, NULL, 0, FALSE);
  g_autoptr(GArray) bos_only = bl_tokenizer_encode (t, "", 0, TRUE);
  int32_t nul_piece = bl_tokenizer_piece_to_id (t, "\xc4\x80");   /* byte 0x00 is U+0100 */
  gboolean found = FALSE;

  g_assert_cmpmem (bad->data, bad->len * 4, repaired->data, repaired->len * 4);
  for (guint i = 0; i < nul->len; i++)
    found |= g_array_index (nul, int32_t, i) == nul_piece;
  g_assert_true (found);
  g_assert_cmpuint (empty->len, ==, 0);
  g_assert_cmpuint (bos_only->len, ==, 1);
  g_assert_cmpint (g_array_index (bos_only, int32_t, 0), ==, bl_tokenizer_get_bos_id (t));
}

/* tokenizer_config.json decides BOS when it says so, else the post-processor template. */
static void
test_bos (void)
{
  const char *dir = g_test_get_filename (G_TEST_DIST, "fixtures", "tokenizer", "bytelevel", NULL);
  g_autofree char *path = g_build_filename (dir, "tokenizer.json", NULL);
  g_autofree char *json = NULL;
  gsize len;
  static const struct
  {
    const char *config;
    const char *bos;
    gboolean    add_bos;
    const char *eos;
  } cases[] = {
    { NULL, "<|begin_of_text|>", TRUE, NULL },
    { "{}", "<|begin_of_text|>", TRUE, NULL },
    { "{\"add_bos_token\": false}", "<|begin_of_text|>", FALSE, NULL },
    { "{\"bos_token\": {\"content\": \"<|im_start|>\"}, \"eos_token\": \"<|im_end|>\"}",
      "<|im_start|>", TRUE, "<|im_end|>" },
    { "{\"bos_token\": \"<|endoftext|>\", \"add_bos_token\": true, \"eos_token\": null}",
      "<|endoftext|>", TRUE, NULL },
  };

  g_file_get_contents (path, &json, &len, NULL);
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(GError) error = NULL;
      const char *c = cases[i].config;
      g_autoptr(BlTokenizer) t = bl_tokenizer_new_from_data (json, len, c, c ? strlen (c) : 0,
                                                             "bytelevel", &error);
      g_autoptr(GArray) ids = NULL;

      g_assert_no_error (error);
      g_assert_cmpint (bl_tokenizer_get_bos_id (t), ==, bl_tokenizer_piece_to_id (t, cases[i].bos));
      g_assert_cmpint (bl_tokenizer_get_add_bos (t), ==, cases[i].add_bos);
      g_assert_cmpint (bl_tokenizer_get_eos_id (t), ==,
                       cases[i].eos ? bl_tokenizer_piece_to_id (t, cases[i].eos) : -1);
      ids = bl_tokenizer_encode (t, "hi", -1, bl_tokenizer_get_add_bos (t));
      g_assert_cmpint (g_array_index (ids, int32_t, 0) == bl_tokenizer_get_bos_id (t), ==,
                       cases[i].add_bos);
    }
}

static void
test_hash (void)
{
  const char *dir = g_test_get_filename (G_TEST_DIST, "fixtures", "tokenizer", "bytelevel", NULL);
  g_autofree char *path = g_build_filename (dir, "tokenizer.json", NULL);
  g_autofree char *json = NULL;
  g_autofree char *plain = NULL;
  g_autoptr(BlTokenizer) a = NULL, b = NULL;
  gsize len;

  g_file_get_contents (path, &json, &len, NULL);
  a = bl_tokenizer_new_from_data (json, len, NULL, 0, "a", NULL);
  b = bl_tokenizer_new_from_data (json, len, "{}", 2, "b", NULL);
  plain = g_compute_checksum_for_data (G_CHECKSUM_SHA256, (const guchar *) json, len);
  g_assert_cmpstr (bl_tokenizer_get_hash (a), ==, plain);
  g_assert_cmpstr (bl_tokenizer_get_hash (b), !=, plain);
  g_assert_cmpuint (strlen (bl_tokenizer_get_hash (b)), ==, 64);
}

typedef struct
{
  BlTokenizer *t;
  const char  *text;
  GArray      *ids;
} ThreadJob;

static gpointer
encode_thread (gpointer data)
{
  ThreadJob *job = data;

  job->ids = bl_tokenizer_encode (job->t, job->text, -1, FALSE);
  return NULL;
}

/* The word cache is shared: concurrent encodes must agree with a lone one. */
static void
test_threads (void)
{
  g_autoptr(BlTokenizer) t = open_model (reference_model ("bytelevel"));
  g_autoptr(GString) text = g_string_new (NULL);
  g_autoptr(GArray) alone = NULL;
  ThreadJob jobs[4];
  GThread *threads[4];

  for (int i = 0; i < 2000; i++)
    g_string_append_printf (text, "word%d and the %d-th line's text, again. ", i % 97, i);
  for (int i = 0; i < 4; i++)
    {
      jobs[i] = (ThreadJob) { t, text->str, NULL };
      threads[i] = g_thread_new ("encode", encode_thread, &jobs[i]);
    }
  for (int i = 0; i < 4; i++)
    g_thread_join (threads[i]);
  alone = bl_tokenizer_encode (t, text->str, -1, FALSE);
  for (int i = 0; i < 4; i++)
    {
      g_assert_cmpmem (jobs[i].ids->data, jobs[i].ids->len * 4, alone->data, alone->len * 4);
      g_array_unref (jobs[i].ids);
    }
}

static void
test_bad_json (void)
{
  static const struct
  {
    const char *json;
    const char *config;
    int         code;
    const char *message;
  } cases[] = {
    { "{\"model\": ", NULL, BL_ERROR_CORRUPT_FILE, "not valid JSON" },
    { "[1, 2]", NULL, BL_ERROR_CORRUPT_FILE, "top level is not a JSON object" },
    { "{}", NULL, BL_ERROR_CORRUPT_FILE, "has no 'model'" },
    { "{\"model\": {\"type\": \"BPE\", \"merges\": []}}", NULL, BL_ERROR_CORRUPT_FILE, "has no 'vocab'" },
    { "{\"model\": {\"type\": \"BPE\", \"vocab\": {}}}", NULL, BL_ERROR_CORRUPT_FILE, "has no 'merges'" },
    { "{\"model\": {\"vocab\": {}}}", NULL, BL_ERROR_CORRUPT_FILE, "neither 'type' nor 'merges'" },
    { "{\"model\": {\"type\": \"Unigram\", \"vocab\": []}}", NULL, BL_ERROR_UNSUPPORTED_FORMAT,
      "model type 'Unigram' is not supported: only BPE is" },
    { "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": \"0\"}, \"merges\": []}}", NULL,
      BL_ERROR_CORRUPT_FILE, "the id must be an integer" },
    { "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": -1}, \"merges\": []}}", NULL,
      BL_ERROR_CORRUPT_FILE, "out of range" },
    { "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 5000000}, \"merges\": []}}", NULL,
      BL_ERROR_CORRUPT_FILE, "not dense" },
    { "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [\"a zz\"]}}", NULL,
      BL_ERROR_CORRUPT_FILE, "names unknown token 'zz'" },
    { "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [\"a a\"]}}", NULL,
      BL_ERROR_CORRUPT_FILE, "makes 'aa', which is not in the vocabulary" },
    { "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [\"aa\"]}}", NULL,
      BL_ERROR_CORRUPT_FILE, "merges[0] is neither" },
    { "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [[\"a\"]]}}", NULL,
      BL_ERROR_CORRUPT_FILE, "merges[0] is neither" },
    { "{\"model\": {\"type\": \"BPE\", \"vocab\": {}, \"merges\": [], \"dropout\": 0.1}}", NULL,
      BL_ERROR_UNSUPPORTED_FORMAT, "dropout" },
    { "{\"model\": {\"type\": \"BPE\", \"vocab\": {}, \"merges\": [], \"end_of_word_suffix\": \"</w>\"}}",
      NULL, BL_ERROR_UNSUPPORTED_FORMAT, "end_of_word_suffix" },
    { "{\"model\": {\"type\": \"BPE\", \"vocab\": {}, \"merges\": []}, \"added_tokens\": {}}", NULL,
      BL_ERROR_CORRUPT_FILE, "'added_tokens' must be an array" },
    { "{\"model\": {\"type\": \"BPE\", \"vocab\": {}, \"merges\": []}, \"added_tokens\": [{\"id\": 0}]}",
      NULL, BL_ERROR_CORRUPT_FILE, "has no 'content'" },
    { "{\"model\": {\"type\": \"BPE\", \"vocab\": {}, \"merges\": []}, \"normalizer\": {\"type\": \"Lowercase\"}}",
      NULL, BL_ERROR_UNSUPPORTED_FORMAT, "normalizer type 'Lowercase' is not supported" },
    { "{\"model\": {\"type\": \"BPE\", \"vocab\": {}, \"merges\": []}, \"pre_tokenizer\": {\"type\": \"Metaspace\"}}",
      NULL, BL_ERROR_UNSUPPORTED_FORMAT, "pre_tokenizer type 'Metaspace' is not supported" },
    { "{\"model\": {\"type\": \"BPE\", \"vocab\": {}, \"merges\": []}, \"decoder\": {\"type\": \"WordPiece\"}}",
      NULL, BL_ERROR_UNSUPPORTED_FORMAT, "decoder type 'WordPiece' is not supported" },
    { "{\"model\": {\"type\": \"BPE\", \"vocab\": {}, \"merges\": []}, \"post_processor\": {\"type\": \"BertProcessing\"}}",
      NULL, BL_ERROR_UNSUPPORTED_FORMAT, "post_processor type 'BertProcessing' is not supported" },
    { "{\"model\": {\"type\": \"BPE\", \"vocab\": {}, \"merges\": []}, \"pre_tokenizer\": "
      "{\"type\": \"Split\", \"pattern\": {\"Regex\": \"(\"}, \"behavior\": \"Isolated\"}}",
      NULL, BL_ERROR_CORRUPT_FILE, "bad regex" },
    { "{\"model\": {\"type\": \"BPE\", \"vocab\": {}, \"merges\": []}, \"pre_tokenizer\": "
      "{\"type\": \"Split\", \"pattern\": {\"String\": \"-\"}, \"behavior\": \"Sideways\"}}",
      NULL, BL_ERROR_CORRUPT_FILE, "unknown behavior 'Sideways'" },
    { "{\"model\": {\"type\": \"BPE\", \"vocab\": {}, \"merges\": []}, \"decoder\": "
      "{\"type\": \"Strip\", \"content\": \"ab\", \"start\": 1, \"stop\": 0}}",
      NULL, BL_ERROR_CORRUPT_FILE, "must be one character" },
    { "{\"model\": {\"type\": \"BPE\", \"vocab\": {}, \"merges\": []}, \"post_processor\": "
      "{\"type\": \"TemplateProcessing\", \"single\": [{\"SpecialToken\": {\"id\": \"<s>\"}}]}}",
      NULL, BL_ERROR_CORRUPT_FILE, "special token '<s>' is not in the vocabulary" },
    { "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}, \"post_processor\": "
      "{\"type\": \"TemplateProcessing\", \"single\": [{\"SpecialToken\": {\"id\": \"<s>\"}}], "
      "\"special_tokens\": {\"<s>\": {\"ids\": [7]}}}}",
      NULL, BL_ERROR_CORRUPT_FILE, "special token '<s>' has id 7, which is not in the vocabulary" },
    { "{\"model\": {\"type\": \"BPE\", \"vocab\": {}, \"merges\": []}}", "{nope",
      BL_ERROR_CORRUPT_FILE, "bad (tokenizer_config): not valid JSON" },
    { "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}}", "{\"bos_token\": \"<s>\"}",
      BL_ERROR_CORRUPT_FILE, "bos_token '<s>' is not in the vocabulary" },
    { "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}}", "{\"add_bos_token\": 1}",
      BL_ERROR_CORRUPT_FILE, "'add_bos_token' must be true or false" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(GError) error = NULL;
      const char *c = cases[i].config;
      g_autoptr(BlTokenizer) t = bl_tokenizer_new_from_data (cases[i].json, strlen (cases[i].json),
                                                             c, c ? strlen (c) : 0, "bad", &error);

      g_assert_null (t);
      g_assert_error (error, BL_ERROR, cases[i].code);
      if (strstr (error->message, cases[i].message) == NULL || !g_str_has_prefix (error->message, "bad"))
        g_error ("case %u: message \"%s\" lacks \"%s\"", i, error->message, cases[i].message);
    }
}

/* Sequence components nested without end must fail, not exhaust the stack. */
static void
test_bad_nesting (void)
{
  g_autoptr(GString) json = g_string_new ("{\"model\": {\"type\": \"BPE\", \"vocab\": {}, \"merges\": []}, "
                                          "\"normalizer\": ");
  g_autoptr(GError) error = NULL;
  g_autoptr(BlTokenizer) t = NULL;

  for (int i = 0; i < 40; i++)
    g_string_append (json, "{\"type\": \"Sequence\", \"normalizers\": [");
  g_string_append (json, "{\"type\": \"NFC\"}");
  for (int i = 0; i < 40; i++)
    g_string_append (json, "]}");
  g_string_append (json, "}");

  t = bl_tokenizer_new_from_data (json->str, json->len, NULL, 0, "deep", &error);
  g_assert_null (t);
  g_assert_error (error, BL_ERROR, BL_ERROR_CORRUPT_FILE);
  g_assert_nonnull (strstr (error->message, "nested deeper"));
}

static void
test_missing_file (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(BlTokenizer) t = bl_tokenizer_new_from_file ("/nonexistent/tokenizer.json", NULL, &error);

  g_assert_null (t);
  g_assert_error (error, G_FILE_ERROR, G_FILE_ERROR_NOENT);
}

int
main (int   argc,
      char *argv[])
{
  int ret;

  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/bitlens/tokenizer/sentencepiece/golden", test_sentencepiece_golden);
  g_test_add_func ("/bitlens/tokenizer/sentencepiece/cases", test_sentencepiece_cases);
  g_test_add_func ("/bitlens/tokenizer/sentencepiece/wikitext", test_sentencepiece_wikitext);
  g_test_add_func ("/bitlens/tokenizer/bytelevel/fixture", test_bytelevel_fixture);
  g_test_add_func ("/bitlens/tokenizer/bytelevel/wikitext", test_bytelevel_wikitext);
  g_test_add_func ("/bitlens/tokenizer/split-behaviors", test_split_behaviors);
  g_test_add_func ("/bitlens/tokenizer/components", test_components);
  g_test_add_func ("/bitlens/tokenizer/odd-input", test_odd_input);
  g_test_add_func ("/bitlens/tokenizer/bos", test_bos);
  g_test_add_func ("/bitlens/tokenizer/hash", test_hash);
  g_test_add_func ("/bitlens/tokenizer/threads", test_threads);
  g_test_add_func ("/bitlens/tokenizer/bad-json", test_bad_json);
  g_test_add_func ("/bitlens/tokenizer/bad-nesting", test_bad_nesting);
  g_test_add_func ("/bitlens/tokenizer/missing-file", test_missing_file);

  ret = g_test_run ();
  g_clear_pointer (&reference_root, json_node_unref);
  return ret;
}
