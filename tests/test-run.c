/* test-run.c: tests for core/bl-run.c, the evaluation run, against an independent reference
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include <json-glib/json-glib.h>
#include <math.h>
#include <string.h>

#include "bitlens.h"
#include "bl-text-source.h"

static char *
shared_path (const char *first, ...)
{
  const char *shared = g_getenv ("BITLENS_SHARED_DIR");
  g_autofree char *rel = NULL;
  va_list args;

  if (shared == NULL || !g_file_test (shared, G_FILE_TEST_IS_DIR))
    return NULL;
  va_start (args, first);
  rel = g_build_filename_valist (first, &args);
  va_end (args);
  return g_build_filename (shared, rel, NULL);
}

typedef struct
{
  BlModel *model;
  BlBackend *backend;
  BlEngine *engine;
} Fixture;

static gboolean
fixture_open (Fixture    *f,
              const char *model_name)
{
  g_autofree char *dir = shared_path ("models", model_name, NULL);
  g_autoptr(GError) error = NULL;

  if (dir == NULL)
    {
      g_test_skip ("../shared is absent (set BITLENS_SHARED_DIR): no real model to evaluate");
      return FALSE;
    }
  f->model = bl_model_load (dir, NULL, &error);
  g_assert_no_error (error);
  f->backend = bl_backend_new ("cpu", 2, &error);
  g_assert_no_error (error);
  f->engine = bl_engine_new (f->model, f->backend, NULL, &error);
  g_assert_no_error (error);
  return TRUE;
}

static void
fixture_clear (Fixture *f)
{
  g_clear_pointer (&f->engine, bl_engine_free);
  g_clear_pointer (&f->backend, bl_backend_free);
  g_clear_object (&f->model);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Fixture, fixture_clear)

static GArray *
protocol_ids (Fixture    *f,
              BlProtocol  protocol)
{
  g_autofree char *wiki = shared_path ("datasets", "wikitext-2-raw-v1", "wiki.test.raw", NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(BlTextSource) source = bl_text_source_new_from_file (wiki, BL_TEXT_SOURCE_WIKITEXT2_RAW, &error);
  BlTokenizer *tok = bl_model_get_tokenizer (f->model);
  const char *text;
  gsize len;

  g_assert_no_error (error);
  text = bl_text_source_get_protocol_text (source, protocol, &len);
  return bl_tokenizer_encode (tok, text, len, bl_tokenizer_get_add_bos (tok));
}

static char *
ids_sha256 (GArray *ids)
{
  /* The reference hashes the ids as little-endian int32. */
  g_autoptr(GChecksum) sum = g_checksum_new (G_CHECKSUM_SHA256);

  for (guint i = 0; i < ids->len; i++)
    {
      guint32 v = GUINT32_TO_LE ((guint32) g_array_index (ids, int32_t, i));
      g_checksum_update (sum, (const guchar *) &v, 4);
    }
  return g_strdup (g_checksum_get_string (sum));
}

/* Each fixture in tests/fixtures/reference/ was written by tools/reference-ppl (a plain
 * PyTorch forward) on ids from tools/reference-tokenize; Bitlens must agree on the ids
 * exactly and on the perplexity within 0.1% (issue 2). */
static void
test_reference (gconstpointer data)
{
  const char *name = data;
  g_autofree char *path = g_test_build_filename (G_TEST_DIST, "fixtures", "reference", name, NULL);
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GArray) ids = NULL;
  g_autoptr(BlRun) run = NULL;
  g_autoptr(BlStore) store = NULL;
  g_autofree char *sha = NULL;
  g_auto(Fixture) f = { 0 };
  BlRunOptions opts = { 0 };
  BlRunProvenance prov = { 0 };
  g_autoptr(BlStoredRun) stored = NULL;
  JsonObject *ref;
  double ref_ppl, ppl;

  json_parser_load_from_file (parser, path, &error);
  g_assert_no_error (error);
  ref = json_node_get_object (json_parser_get_root (parser));
  if (!fixture_open (&f, json_object_get_string_member (ref, "model")))
    return;

  g_assert_true (bl_protocol_from_string (json_object_get_string_member (ref, "protocol"), &opts.protocol));
  opts.ctx = json_object_get_int_member (ref, "ctx");
  opts.max_windows = json_object_get_int_member (ref, "windows");
  opts.seed = 7;

  ids = protocol_ids (&f, opts.protocol);
  sha = ids_sha256 (ids);
  g_assert_cmpint (ids->len, ==, json_object_get_int_member (ref, "n_ids"));
  g_assert_cmpstr (sha, ==, json_object_get_string_member (ref, "ids_sha256"));

  run = bl_run_new (f.model, f.engine, (const int32_t *) ids->data, ids->len, &opts, &error);
  g_assert_no_error (error);
  store = bl_store_open (":memory:", &error);
  g_assert_no_error (error);
  prov.dataset_name = "wikitext-2-raw-v1/test";
  prov.dataset_path = "wiki.test.raw";
  prov.dataset_sha256 = "173c87a53759e0201f33e0ccf978e510c2042d7f2cb78229d9a50d79b9e7dd08";
  prov.dataset_kind = "wikitext2-raw";
  prov.backend = "cpu";
  prov.n_threads = 2;
  bl_run_set_store (run, store, &prov);

  g_assert_true (bl_run_execute (run, NULL, &error));
  g_assert_no_error (error);

  ref_ppl = json_object_get_double_member (ref, "ppl");
  ppl = bl_ppl_stats_get_ppl (bl_run_get_stats (run));
  g_test_message ("%s: Bitlens ppl %.6f, reference %.6f, relative difference %.2e", name, ppl,
                  ref_ppl, fabs (ppl - ref_ppl) / ref_ppl);
  g_assert_cmpint (bl_run_get_n_scored (run), ==, json_object_get_int_member (ref, "scored_tokens"));
  g_assert_cmpfloat (fabs (ppl - ref_ppl) / ref_ppl, <, 1e-3);
  /* In practice both are fp32 forwards with fp64 sums: far tighter than the 0.1% bound. */
  g_assert_cmpfloat (fabs (bl_ppl_stats_get_mean_nll (bl_run_get_stats (run))
                           - json_object_get_double_member (ref, "mean_nll")), <, 1e-4);

  stored = bl_store_get_run (store, bl_run_get_store_id (run), &error);
  g_assert_no_error (error);
  g_assert_cmpstr (stored->status, ==, "finished");
  g_assert_cmpstr (stored->protocol, ==, json_object_get_string_member (ref, "protocol"));
  g_assert_cmpstr (stored->model_fingerprint, ==, bl_model_get_fingerprint (f.model));
  g_assert_cmpstr (stored->tokenizer_hash, ==, bl_tokenizer_get_hash (bl_model_get_tokenizer (f.model)));
  g_assert_cmpint (stored->n_windows_done, ==, opts.max_windows);
  g_assert_cmpfloat_with_epsilon (stored->ppl, ppl, 1e-9 * ppl);
}

/* SOURCES.md: the first 3,000 characters of wiki.test.raw, the first 256 ids, BOS in front,
 * one 257-token window: mean NLL 4.507416, PPL 90.687. */
static void
test_golden_90687 (void)
{
  g_autofree char *wiki = shared_path ("datasets", "wikitext-2-raw-v1", "wiki.test.raw", NULL);
  g_autofree char *text = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GArray) ids = NULL;
  g_auto(Fixture) f = { 0 };
  double nll[256], sum = 0;

  if (!fixture_open (&f, "stories260k"))
    return;
  g_file_get_contents (wiki, &text, NULL, &error);
  g_assert_no_error (error);
  ids = bl_tokenizer_encode (bl_model_get_tokenizer (f.model), text, 3000, TRUE);
  g_assert_cmpint (ids->len, >=, 257);
  g_assert_cmpint (g_array_index (ids, int32_t, 0), ==, 1);
  g_assert_cmpint (g_array_index (ids, int32_t, 1), ==, 410);

  g_assert_true (bl_engine_nll (f.engine, (const int32_t *) ids->data, 257, 1, nll, NULL, &error));
  for (int i = 0; i < 256; i++)
    sum += nll[i];
  g_test_message ("mean NLL %.6f, ppl %.4f", sum / 256, exp (sum / 256));
  g_assert_cmpfloat (fabs (sum / 256 - 4.507416), <, 5e-6);
  g_assert_cmpfloat (fabs (exp (sum / 256) - 90.687), <, 5e-4);
}

/* The final perplexity must not depend on the evaluation order beyond summation. */
static void
test_order_independent (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GArray) ids = NULL;
  g_auto(Fixture) f = { 0 };
  double ppl[3];

  if (!fixture_open (&f, "stories260k"))
    return;
  ids = protocol_ids (&f, BL_PROTOCOL_GPTQ);
  for (int s = 0; s < 3; s++)
    {
      BlRunOptions opts = { .protocol = BL_PROTOCOL_GPTQ, .ctx = 128, .max_windows = 12, .seed = 1000 * s };
      g_autoptr(BlRun) run = bl_run_new (f.model, f.engine, (const int32_t *) ids->data, ids->len, &opts, &error);

      g_assert_no_error (error);
      g_assert_true (bl_run_execute (run, NULL, &error));
      ppl[s] = bl_ppl_stats_get_ppl (bl_run_get_stats (run));
    }
  g_assert_cmpfloat (fabs (ppl[0] - ppl[1]) / ppl[0], <, 1e-12);
  g_assert_cmpfloat (fabs (ppl[0] - ppl[2]) / ppl[0], <, 1e-12);
}

typedef struct
{
  GMainLoop *loop;
  guint n_signals;
  guint last_n_done;
  gboolean ok;
  GError *error;
  GCancellable *cancel_after_first;
} AsyncState;

static void
on_window_done (BlRun *run, guint n_done, gpointer user_data)
{
  AsyncState *st = user_data;

  st->n_signals++;
  g_assert_cmpuint (n_done, ==, st->last_n_done + 1);
  st->last_n_done = n_done;
  if (st->cancel_after_first != NULL)
    g_cancellable_cancel (st->cancel_after_first);
}

static void
on_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  AsyncState *st = user_data;

  st->ok = bl_run_execute_finish (BL_RUN (source), result, &st->error);
  g_main_loop_quit (st->loop);
}

/* The GUI's path: a worker thread, progress signals in the caller's main context, cancel. */
static void
test_async_and_cancel (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GArray) ids = NULL;
  g_autoptr(BlStore) store = NULL;
  g_auto(Fixture) f = { 0 };
  BlRunProvenance prov = {
    .dataset_name = "wiki", .dataset_path = "wiki.test.raw", .dataset_kind = "wikitext2-raw",
    .dataset_sha256 = "173c87a53759e0201f33e0ccf978e510c2042d7f2cb78229d9a50d79b9e7dd08",
    .backend = "cpu", .n_threads = 2,
  };
  BlRunOptions opts = { .protocol = BL_PROTOCOL_LLAMACPP, .ctx = 256, .max_windows = 6, .seed = 3 };

  if (!fixture_open (&f, "stories260k"))
    return;
  ids = protocol_ids (&f, BL_PROTOCOL_LLAMACPP);
  store = bl_store_open (":memory:", &error);
  g_assert_no_error (error);

  /* Complete run */
  {
    g_autoptr(BlRun) run = bl_run_new (f.model, f.engine, (const int32_t *) ids->data, ids->len, &opts, &error);
    g_autoptr(GMainLoop) loop = g_main_loop_new (NULL, FALSE);
    AsyncState st = { .loop = loop };

    g_assert_no_error (error);
    bl_run_set_store (run, store, &prov);
    g_signal_connect (run, "window-done", G_CALLBACK (on_window_done), &st);
    bl_run_execute_async (run, NULL, on_done, &st);
    g_main_loop_run (loop);
    g_assert_no_error (st.error);
    g_assert_true (st.ok);
    g_assert_cmpuint (st.n_signals, ==, 6);
    /* llamacpp scores ctx - ctx/2 - 1 tokens per window */
    g_assert_cmpint (bl_run_get_n_scored (run), ==, 6 * (256 - 128 - 1));
  }

  /* Cancelled after the first window: the error says so and the store records it. */
  {
    g_autoptr(BlRun) run = bl_run_new (f.model, f.engine, (const int32_t *) ids->data, ids->len, &opts, &error);
    g_autoptr(GMainLoop) loop = g_main_loop_new (NULL, FALSE);
    g_autoptr(GCancellable) cancellable = g_cancellable_new ();
    g_autoptr(BlStoredRun) stored = NULL;
    g_autoptr(GPtrArray) runs = NULL;
    AsyncState st = { .loop = loop, .cancel_after_first = cancellable };

    g_assert_no_error (error);
    bl_run_set_store (run, store, &prov);
    g_signal_connect (run, "window-done", G_CALLBACK (on_window_done), &st);
    bl_run_execute_async (run, cancellable, on_done, &st);
    g_main_loop_run (loop);
    g_assert_false (st.ok);
    g_assert_error (st.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
    g_clear_error (&st.error);
    g_assert_cmpuint (bl_run_get_n_done (run), <, 6);

    stored = bl_store_get_run (store, bl_run_get_store_id (run), &error);
    g_assert_no_error (error);
    g_assert_cmpstr (stored->status, ==, "cancelled");
    runs = bl_store_list_runs (store, NULL, &error);
    g_assert_no_error (error);
    g_assert_cmpuint (runs->len, ==, 2);
    g_assert_cmpstr (((BlStoredRun *) g_ptr_array_index (runs, 0))->status, ==, "finished");
  }
}

static void
test_bad_options (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GArray) ids = NULL;
  g_auto(Fixture) f = { 0 };
  BlRunOptions opts = { .protocol = BL_PROTOCOL_GPTQ, .ctx = 4096 };
  g_autoptr(BlRun) run = NULL;
  int32_t few[10] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 };

  if (!fixture_open (&f, "stories260k"))
    return;
  ids = protocol_ids (&f, BL_PROTOCOL_GPTQ);

  run = bl_run_new (f.model, f.engine, (const int32_t *) ids->data, ids->len, &opts, &error);
  g_assert_null (run);
  g_assert_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, "512"));
  g_clear_error (&error);

  opts.ctx = 64;
  run = bl_run_new (f.model, f.engine, few, G_N_ELEMENTS (few), &opts, &error);
  g_assert_null (run);
  g_assert_error (error, BL_ERROR, BL_ERROR_DATASET);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_data_func ("/bitlens/run/reference/stories260k-gptq", "stories260k-wikitext2-gptq-512-k16.json", test_reference);
  g_test_add_data_func ("/bitlens/run/reference/stories260k-llamacpp", "stories260k-wikitext2-llamacpp-512-k8.json", test_reference);
  g_test_add_data_func ("/bitlens/run/reference/tinystories-656k-gptq", "tinystories-656k-wikitext2-gptq-512-k16.json", test_reference);
  g_test_add_data_func ("/bitlens/run/reference/tinystories-656k-llamacpp", "tinystories-656k-wikitext2-llamacpp-512-k8.json", test_reference);
  g_test_add_func ("/bitlens/run/golden-90687", test_golden_90687);
  g_test_add_func ("/bitlens/run/order-independent", test_order_independent);
  g_test_add_func ("/bitlens/run/async-and-cancel", test_async_and_cancel);
  g_test_add_func ("/bitlens/run/bad-options", test_bad_options);

  return g_test_run ();
}
