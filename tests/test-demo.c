/* test-demo.c: the bundled demo model (issue 8) against its trainer's own numbers
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * data/models/bitlens-demo/reference.json was written by tools/train-demo-model from the
 * stored bf16 weights widened to fp32: the sha256 of each Brown split's text, the sha256 of its
 * ids (int32 little-endian, BOS first), and the gptq-protocol perplexity at ctx 256. Here
 * Bitlens's own loader, tokenizer and engine must reproduce them: the ids exactly, the
 * decoded text byte for byte, and the perplexity within 0.5% (issue 8; in practice it agrees
 * to about 1e-6, the difference of two fp32 forwards).
 *
 * The Brown corpus is not in the repository: set-up fetches it (tools/fetch-brown-corpus)
 * into $BITLENS_BROWN_DIR or the user cache. Without it, the tests that need it skip.
 */
#include <json-glib/json-glib.h>
#include <math.h>
#include <string.h>

#include "bitlens.h"
#include "bl-brown.h"
#include "bl-text-source.h"

/* Read before g_test_init() isolates the XDG directories. */
static char *brown_dir;

typedef struct
{
  BlModel *model;
  JsonParser *reference;
  JsonObject *split;
  BlTextSource *text;
} Demo;

static void
demo_clear (Demo *d)
{
  g_clear_object (&d->text);
  g_clear_object (&d->reference);
  g_clear_object (&d->model);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Demo, demo_clear)

static char *
demo_dir (void)
{
  return g_test_build_filename (G_TEST_DIST, "..", "data", "models", "bitlens-demo", NULL);
}

/* Opens the model and its reference.json; with @split, also the Brown split's text. */
static gboolean
demo_open (Demo       *d,
           const char *split)
{
  g_autofree char *dir = demo_dir ();
  g_autofree char *ref_path = g_build_filename (dir, "reference.json", NULL);
  g_autofree char *cats = g_build_filename (brown_dir, "package", "cats.txt", NULL);
  g_autoptr(GError) error = NULL;
  JsonObject *root;

  if (split != NULL && !g_file_test (cats, G_FILE_TEST_EXISTS))
    {
      g_autofree char *msg = g_strdup_printf ("the Brown corpus is not in %s (set BITLENS_BROWN_DIR "
                                              "or run tools/fetch-brown-corpus)", brown_dir);
      g_test_skip (msg);
      return FALSE;
    }

  d->model = bl_model_load (dir, NULL, &error);
  g_assert_no_error (error);
  d->reference = json_parser_new ();
  json_parser_load_from_file (d->reference, ref_path, &error);
  g_assert_no_error (error);
  root = json_node_get_object (json_parser_get_root (d->reference));
  if (split == NULL)
    return TRUE;

  d->split = json_object_get_object_member (json_object_get_object_member (root, "splits"), split);
  g_assert_nonnull (d->split);
  d->text = bl_brown_load_split (brown_dir, split, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (bl_text_source_get_sha256 (d->text), ==,
                   json_object_get_string_member (d->split, "text_sha256"));
  return TRUE;
}

static char *
ids_sha256 (GArray *ids)
{
  g_autoptr(GChecksum) sum = g_checksum_new (G_CHECKSUM_SHA256);

  for (guint i = 0; i < ids->len; i++)
    {
      guint32 v = GUINT32_TO_LE ((guint32) g_array_index (ids, int32_t, i));
      g_checksum_update (sum, (const guchar *) &v, 4);
    }
  return g_strdup (g_checksum_get_string (sum));
}

static GArray *
encode_split (Demo *d)
{
  BlTokenizer *tok = bl_model_get_tokenizer (d->model);
  const char *text;
  gsize len;

  text = bl_text_source_get_protocol_text (d->text, BL_PROTOCOL_GPTQ, &len);
  return bl_tokenizer_encode (tok, text, len, bl_tokenizer_get_add_bos (tok));
}

/* What a user opening the demo sees: its shape, as its README states it. */
static void
test_model_shape (void)
{
  g_auto(Demo) d = { 0 };
  BlTokenizer *tok;

  demo_open (&d, NULL);
  tok = bl_model_get_tokenizer (d.model);
  g_assert_cmpstr (bl_tokenizer_get_style (tok), ==, "byte-level");
  g_assert_cmpint (bl_tokenizer_get_vocab_size (tok), ==, 3328);
  g_assert_cmpint (bl_tokenizer_get_bos_id (tok), ==, 3327);
  g_assert_true (bl_tokenizer_get_add_bos (tok));
  g_assert_cmpint (bl_model_get_n_params (d.model), ==, 4606208);
}

/* The ids of both held-out splits are the trainer's, and decoding gives back the text. */
static void
test_tokenizer_round_trip (gconstpointer data)
{
  const char *split = data;
  g_auto(Demo) d = { 0 };
  g_autoptr(GArray) ids = NULL;
  g_autofree char *sha = NULL;
  g_autofree char *decoded = NULL;
  BlTokenizer *tok;
  const char *text;
  gsize len;

  if (!demo_open (&d, split))
    return;
  tok = bl_model_get_tokenizer (d.model);
  ids = encode_split (&d);
  sha = ids_sha256 (ids);
  g_assert_cmpint (ids->len, ==, json_object_get_int_member (d.split, "n_ids"));
  g_assert_cmpstr (sha, ==, json_object_get_string_member (d.split, "ids_sha256"));

  /* decode without the leading BOS: byte-level BPE is lossless, so the text comes back exactly */
  g_assert_cmpint (g_array_index (ids, int32_t, 0), ==, bl_tokenizer_get_bos_id (tok));
  decoded = bl_tokenizer_decode (tok, (const int32_t *) ids->data + 1, ids->len - 1);
  text = bl_text_source_get_protocol_text (d.text, BL_PROTOCOL_GPTQ, &len);
  g_assert_cmpuint (strlen (decoded), ==, len);
  g_assert_true (memcmp (decoded, text, len) == 0);
}

/* The whole test split, every window: Bitlens's perplexity is the trainer's. */
static void
test_perplexity (void)
{
  g_auto(Demo) d = { 0 };
  g_autoptr(GArray) ids = NULL;
  g_autoptr(BlBackend) backend = NULL;
  g_autoptr(BlEngine) engine = NULL;
  g_autoptr(BlRun) run = NULL;
  g_autoptr(GError) error = NULL;
  BlRunOptions opts = { .protocol = BL_PROTOCOL_GPTQ, .ctx = 256, .max_windows = 0, .seed = 1 };
  JsonObject *root;
  double ppl, ref_ppl, nll_sum;

  if (!demo_open (&d, "test"))
    return;
  root = json_node_get_object (json_parser_get_root (d.reference));
  g_assert_cmpstr (json_object_get_string_member (root, "protocol"), ==, "gptq");
  g_assert_cmpint (json_object_get_int_member (root, "ctx"), ==, opts.ctx);

  ids = encode_split (&d);
  backend = bl_backend_new ("cpu", 2, &error);
  g_assert_no_error (error);
  engine = bl_engine_new (d.model, backend, NULL, &error);
  g_assert_no_error (error);
  run = bl_run_new (d.model, engine, (const int32_t *) ids->data, ids->len, &opts, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (bl_run_get_n_windows (run), ==, json_object_get_int_member (d.split, "windows"));
  g_assert_true (bl_run_execute (run, NULL, &error));
  g_assert_no_error (error);

  ppl = bl_ppl_stats_get_ppl (bl_run_get_stats (run));
  ref_ppl = json_object_get_double_member (d.split, "ppl");
  nll_sum = bl_ppl_stats_get_sum_nll (bl_run_get_stats (run));
  g_test_message ("demo test split: Bitlens ppl %.6f, trainer %.6f, relative difference %.2e; "
                  "sum of nll %.4f vs %.4f; %.0f tokens/s", ppl, ref_ppl, fabs (ppl - ref_ppl) / ref_ppl,
                  nll_sum, json_object_get_double_member (d.split, "nll_sum"),
                  bl_run_get_tokens_per_second (run));
  g_assert_cmpint (bl_run_get_n_scored (run), ==, json_object_get_int_member (d.split, "scored_tokens"));
  g_assert_cmpfloat (fabs (ppl - ref_ppl) / ref_ppl, <, 5e-3);
  /* and clearly better than the unigram baseline it is reported against */
  g_assert_cmpfloat (ppl, <, 0.5 * json_object_get_double_member (d.split, "unigram_ppl"));
}

/* Greedy continuation of the trainer's first prompt gives the trainer's ids. */
static void
test_greedy (void)
{
  g_auto(Demo) d = { 0 };
  g_autoptr(BlBackend) backend = NULL;
  g_autoptr(BlEngine) engine = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GArray) ids = NULL;
  g_autofree float *logits = NULL;
  JsonObject *root, *sample;
  JsonArray *prompt, *expect;
  int vocab, n_new;

  demo_open (&d, NULL);
  root = json_node_get_object (json_parser_get_root (d.reference));
  sample = json_array_get_object_element (json_object_get_array_member (root, "greedy"), 0);
  prompt = json_object_get_array_member (sample, "prompt_ids");
  expect = json_object_get_array_member (sample, "new_ids");

  backend = bl_backend_new ("cpu", 2, &error);
  g_assert_no_error (error);
  engine = bl_engine_new (d.model, backend, NULL, &error);
  g_assert_no_error (error);
  vocab = bl_engine_get_vocab_size (engine);

  /* the prompt's ids come from Bitlens's tokenizer too */
  {
    BlTokenizer *tok = bl_model_get_tokenizer (d.model);
    const char *text = json_object_get_string_member (sample, "prompt");

    ids = bl_tokenizer_encode (tok, text, strlen (text), TRUE);
  }
  g_assert_cmpuint (ids->len, ==, json_array_get_length (prompt));
  for (guint i = 0; i < ids->len; i++)
    g_assert_cmpint (g_array_index (ids, int32_t, i), ==, json_array_get_int_element (prompt, i));

  /* a prefix of the trainer's 48 new ids: enough to show agreement, short enough for ASan */
  n_new = MIN (16, (int) json_array_get_length (expect));
  logits = g_new (float, (gsize) (ids->len + n_new) * vocab);
  for (int t = 0; t < n_new; t++)
    {
      const float *last;
      int32_t best = 0;

      g_assert_true (bl_engine_forward (engine, (const int32_t *) ids->data, ids->len, logits, NULL, &error));
      g_assert_no_error (error);
      last = logits + (gsize) (ids->len - 1) * vocab;
      for (int v = 1; v < vocab; v++)
        if (last[v] > last[best])
          best = v;
      g_assert_cmpint (best, ==, json_array_get_int_element (expect, t));
      g_array_append_val (ids, best);
    }
}

int
main (int argc, char **argv)
{
  brown_dir = bl_brown_default_dir ();
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);
  g_test_add_func ("/bitlens/demo/model-shape", test_model_shape);
  g_test_add_func ("/bitlens/demo/greedy", test_greedy);
  g_test_add_data_func ("/bitlens/demo/tokenizer-round-trip/validation", "validation",
                        test_tokenizer_round_trip);
  g_test_add_data_func ("/bitlens/demo/tokenizer-round-trip/test", "test", test_tokenizer_round_trip);
  g_test_add_func ("/bitlens/demo/perplexity", test_perplexity);
  return g_test_run ();
}
