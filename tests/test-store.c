/* test-store.c: tests of core/bl-store.c
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * Every operation on ":memory:", injected failures inside transactions (the test hook and a
 * genuine SQLite error from a trigger), processes killed inside a transaction and while
 * writing concurrently, and schema migrations.
 */
#include <math.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "bl-error.h"
#include "bl-store-private.h"

#define SHA_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define SHA_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

static BlRunRecord
make_record (const char *fingerprint)
{
  BlRunRecord rec = {
    .model_fingerprint = fingerprint,
    .model_path = "/models/stories260k",
    .model_name = "stories260k",
    .model_architecture = "llama",
    .model_n_params = 260032,
    .dataset_sha256 = SHA_A,
    .dataset_name = "wikitext-2-raw-v1/test",
    .dataset_path = "/data/wiki.test.raw",
    .dataset_kind = "wikitext2-raw",
    .tokenizer_hash = "tok-hash",
    .protocol = "llamacpp",
    .ctx = 512,
    .stride = 0,
    .max_windows = 0,
    .n_windows = 4,
    .seed = G_GUINT64_CONSTANT (0xFEDCBA9876543210),
    .backend = "cpu",
    .threads = 2,
    .plan_json = "{\"default\":\"int4:g128:sym\"}",
  };

  return rec;
}

static BlRunResult
make_result (void)
{
  BlRunResult res = {
    .n_windows_done = 4,
    .n_tokens = 1020,
    .mean_nll = 4.5,
    .ppl = exp (4.5),
    .ppl_ci_low = 80.0,
    .ppl_ci_high = 100.0,
    .wall_seconds = 1.5,
    .tokens_per_second = 680.0,
  };

  return res;
}

/* Begins a run, adds @n_windows windows and, when @status is not NULL, ends it. */
static gint64
store_run (BlStore    *store,
           const char *fingerprint,
           int         n_windows,
           const char *status)
{
  g_autoptr(GError) error = NULL;
  BlRunRecord rec = make_record (fingerprint);
  BlRunResult res = make_result ();
  gint64 id;

  rec.n_windows = n_windows;
  id = bl_store_begin_run (store, &rec, &error);
  g_assert_no_error (error);
  g_assert_cmpint (id, >, 0);
  for (int i = 0; i < n_windows; i++)
    {
      bl_store_add_window (store, id, i, (gint64) i * 512, 255, 255 * 4.5 + i, &error);
      g_assert_no_error (error);
    }
  if (status != NULL)
    {
      res.n_windows_done = n_windows;
      bl_store_finish_run (store, id, status, &res, &error);
      g_assert_no_error (error);
    }
  return id;
}

static gint64
query_int (sqlite3    *db,
           const char *sql)
{
  sqlite3_stmt *stmt = NULL;
  gint64 value;

  g_assert_cmpint (sqlite3_prepare_v2 (db, sql, -1, &stmt, NULL), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_step (stmt), ==, SQLITE_ROW);
  value = sqlite3_column_int64 (stmt, 0);
  sqlite3_finalize (stmt);
  return value;
}

static char *
query_text (sqlite3    *db,
            const char *sql)
{
  sqlite3_stmt *stmt = NULL;
  char *value;

  g_assert_cmpint (sqlite3_prepare_v2 (db, sql, -1, &stmt, NULL), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_step (stmt), ==, SQLITE_ROW);
  value = g_strdup ((const char *) sqlite3_column_text (stmt, 0));
  sqlite3_finalize (stmt);
  return value;
}

/* Each test has its own XDG directories (G_TEST_OPTION_ISOLATE_DIRS), removed afterwards. */
static char *
make_tmp_db_path (void)
{
  const char *dir = g_get_user_cache_dir ();

  g_assert_cmpint (g_mkdir_with_parents (dir, 0700), ==, 0);
  return g_build_filename (dir, "bitlens.db", NULL);
}

static void
assert_integrity_ok (const char *path)
{
  sqlite3 *db = NULL;
  g_autofree char *check = NULL;

  g_assert_cmpint (sqlite3_open_v2 (path, &db, SQLITE_OPEN_READWRITE, NULL), ==, SQLITE_OK);
  check = query_text (db, "PRAGMA integrity_check");
  g_assert_cmpstr (check, ==, "ok");
  g_assert_cmpint (query_int (db, "SELECT count (*) FROM pragma_foreign_key_check"), ==, 0);
  sqlite3_close (db);
}

static void
test_open_memory (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(BlStore) store = bl_store_open (":memory:", &error);
  g_autofree char *mode = NULL;
  sqlite3 *db;

  g_assert_no_error (error);
  g_assert_cmpstr (bl_store_get_path (store), ==, ":memory:");
  g_assert_cmpuint (bl_store_get_n_recovered (store), ==, 0);
  db = bl_store_get_db (store);
  g_assert_cmpint (query_int (db, "PRAGMA user_version"), ==, BL_STORE_SCHEMA_VERSION);
  g_assert_cmpint (query_int (db, "PRAGMA foreign_keys"), ==, 1);
  mode = query_text (db, "PRAGMA journal_mode");
  g_assert_cmpstr (mode, ==, "memory");
}

static void
test_open_default_path (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(BlStore) store = NULL;
  g_autofree char *expected = g_build_filename (g_get_user_data_dir (), "bitlens", "bitlens.db",
                                                NULL);
  g_autofree char *default_path = bl_store_get_default_path ();
  g_autofree char *mode = NULL;

  /* G_TEST_OPTION_ISOLATE_DIRS points XDG_DATA_HOME at a fresh temporary directory */
  g_assert_cmpstr (default_path, ==, expected);
  g_assert_false (g_file_test (expected, G_FILE_TEST_EXISTS));
  store = bl_store_open (NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (bl_store_get_path (store), ==, expected);
  g_assert_true (g_file_test (expected, G_FILE_TEST_IS_REGULAR));
  mode = query_text (bl_store_get_db (store), "PRAGMA journal_mode");
  g_assert_cmpstr (mode, ==, "wal");
  g_assert_cmpint (query_int (bl_store_get_db (store), "PRAGMA synchronous"), ==, 1);
}

static void
test_open_not_a_database (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(BlStore) store = NULL;
  g_autofree char *path = make_tmp_db_path ();
  g_autofree char *garbage = g_strnfill (4096, 'x');

  g_assert_true (g_file_set_contents (path, garbage, -1, NULL));
  store = bl_store_open (path, &error);
  g_assert_null (store);
  g_assert_error (error, BL_ERROR, BL_ERROR_STORE);
  g_assert_nonnull (strstr (error->message, path));
  g_assert_nonnull (strstr (error->message, "not a database"));
}

static void
test_runs_roundtrip (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(BlStore) store = bl_store_open (":memory:", &error);
  g_autoptr(BlStoredRun) run = NULL;
  g_autoptr(BlStoredRun) copy = NULL;
  g_autoptr(GPtrArray) runs = NULL;
  g_autoptr(GArray) windows = NULL;
  BlRunRecord rec = make_record ("fp-1");
  BlRunResult res = make_result ();
  gint64 id;

  g_assert_no_error (error);
  id = bl_store_begin_run (store, &rec, &error);
  g_assert_no_error (error);
  g_assert_cmpint (id, ==, 1);

  run = bl_store_get_run (store, id, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (run->status, ==, "running");
  g_assert_nonnull (run->started_at);
  g_assert_null (run->finished_at);
  g_assert_true (g_str_has_suffix (run->started_at, "Z"));
  g_assert_true (isnan (run->ppl));
  g_assert_cmpint (run->n_windows_done, ==, 0);
  g_clear_pointer (&run, bl_stored_run_free);

  /* windows out of file order, as the random evaluation order writes them */
  for (int i = 3; i >= 0; i--)
    {
      g_assert_true (bl_store_add_window (store, id, i, (gint64) i * 512, 255, 1000.0 + i, &error));
      g_assert_no_error (error);
    }
  run = bl_store_get_run (store, id, &error);
  g_assert_cmpint (run->n_windows_done, ==, 4);
  g_clear_pointer (&run, bl_stored_run_free);

  res.message = NULL;
  g_assert_true (bl_store_finish_run (store, id, "finished", &res, &error));
  g_assert_no_error (error);

  run = bl_store_get_run (store, id, &error);
  g_assert_no_error (error);
  g_assert_cmpint (run->id, ==, id);
  g_assert_cmpstr (run->status, ==, "finished");
  g_assert_nonnull (run->finished_at);
  g_assert_cmpstr (run->model_fingerprint, ==, "fp-1");
  g_assert_cmpstr (run->model_path, ==, rec.model_path);
  g_assert_cmpstr (run->model_name, ==, rec.model_name);
  g_assert_cmpstr (run->model_architecture, ==, "llama");
  g_assert_cmpint (run->model_n_params, ==, 260032);
  g_assert_cmpstr (run->dataset_sha256, ==, SHA_A);
  g_assert_cmpstr (run->dataset_name, ==, rec.dataset_name);
  g_assert_cmpstr (run->dataset_path, ==, rec.dataset_path);
  g_assert_cmpstr (run->dataset_kind, ==, "wikitext2-raw");
  g_assert_cmpstr (run->tokenizer_hash, ==, "tok-hash");
  g_assert_cmpstr (run->protocol, ==, "llamacpp");
  g_assert_cmpint (run->ctx, ==, 512);
  g_assert_cmpint (run->stride, ==, 0);
  g_assert_cmpint (run->max_windows, ==, 0);
  g_assert_cmpint (run->n_windows, ==, 4);
  g_assert_cmpuint (run->seed, ==, G_GUINT64_CONSTANT (0xFEDCBA9876543210));
  g_assert_cmpstr (run->backend, ==, "cpu");
  g_assert_cmpint (run->threads, ==, 2);
  g_assert_cmpstr (run->plan_json, ==, rec.plan_json);
  g_assert_cmpint (run->n_windows_done, ==, 4);
  g_assert_cmpint (run->n_tokens, ==, 1020);
  g_assert_cmpfloat (run->mean_nll, ==, 4.5);
  g_assert_cmpfloat (run->ppl, ==, exp (4.5));
  g_assert_cmpfloat (run->ppl_ci_low, ==, 80.0);
  g_assert_cmpfloat (run->ppl_ci_high, ==, 100.0);
  g_assert_cmpfloat (run->wall_seconds, ==, 1.5);
  g_assert_cmpfloat (run->tokens_per_second, ==, 680.0);
  g_assert_null (run->message);
  g_assert_cmpstr (run->bitlens_version, ==, BITLENS_TEST_VERSION);
  g_assert_cmpstr (run->host, ==, g_get_host_name ());
  g_assert_cmpint (run->owner_pid, ==, getpid ());

  copy = bl_stored_run_copy (run);
  g_assert_true (copy->status != run->status);
  g_assert_cmpstr (copy->status, ==, run->status);
  g_assert_cmpstr (copy->plan_json, ==, run->plan_json);
  g_assert_cmpfloat (copy->ppl, ==, run->ppl);

  windows = bl_store_list_windows (store, id, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (windows->len, ==, 4);
  for (guint i = 0; i < windows->len; i++)
    {
      const BlStoredWindow *w = &g_array_index (windows, BlStoredWindow, i);

      g_assert_cmpint (w->window_index, ==, (int) i);
      g_assert_cmpint (w->start, ==, (gint64) i * 512);
      g_assert_cmpint (w->n_tokens, ==, 255);
      g_assert_cmpfloat (w->sum_nll, ==, 1000.0 + i);
    }

  /* a second model; the filter */
  store_run (store, "fp-2", 2, "finished");
  store_run (store, "fp-1", 1, NULL);
  runs = bl_store_list_runs (store, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (runs->len, ==, 3);
  for (guint i = 0; i < runs->len; i++)
    g_assert_cmpint (((BlStoredRun *) g_ptr_array_index (runs, i))->id, ==, (gint64) i + 1);
  g_clear_pointer (&runs, g_ptr_array_unref);
  runs = bl_store_list_runs (store, "fp-1", &error);
  g_assert_no_error (error);
  g_assert_cmpuint (runs->len, ==, 2);
  g_assert_cmpstr (((BlStoredRun *) g_ptr_array_index (runs, 1))->status, ==, "running");
  g_clear_pointer (&runs, g_ptr_array_unref);
  runs = bl_store_list_runs (store, "no-such-model", &error);
  g_assert_no_error (error);
  g_assert_cmpuint (runs->len, ==, 0);
}

static void
test_runs_upsert (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(BlStore) store = bl_store_open (":memory:", &error);
  g_autoptr(BlStoredRun) run = NULL;
  BlRunRecord rec = make_record ("fp-1");
  sqlite3 *db = bl_store_get_db (store);
  g_autofree char *path = NULL;

  store_run (store, "fp-1", 1, "finished");
  /* the same model seen at another path, with fewer details: the new path is kept, known
   * details are not erased */
  rec.model_path = "/elsewhere/stories260k";
  rec.model_architecture = NULL;
  rec.model_n_params = 0;
  g_assert_cmpint (bl_store_begin_run (store, &rec, &error), ==, 2);
  g_assert_no_error (error);
  g_assert_cmpint (query_int (db, "SELECT count (*) FROM models"), ==, 1);
  g_assert_cmpint (query_int (db, "SELECT count (*) FROM datasets"), ==, 1);
  path = query_text (db, "SELECT path FROM models");
  g_assert_cmpstr (path, ==, "/elsewhere/stories260k");
  g_assert_cmpint (query_int (db, "SELECT n_params FROM models"), ==, 260032);

  /* the same bytes read as another kind are another dataset */
  rec.dataset_kind = "plain";
  rec.dataset_name = "wiki.test.raw";
  g_assert_cmpint (bl_store_begin_run (store, &rec, &error), ==, 3);
  g_assert_no_error (error);
  g_assert_cmpint (query_int (db, "SELECT count (*) FROM datasets"), ==, 2);
  run = bl_store_get_run (store, 3, &error);
  g_assert_cmpstr (run->dataset_kind, ==, "plain");
  g_assert_cmpstr (run->dataset_name, ==, "wiki.test.raw");
}

static void
test_runs_errors (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(BlStore) store = bl_store_open (":memory:", &error);
  BlRunRecord rec = make_record ("fp-1");
  BlRunResult res = make_result ();
  gint64 id, running;

  id = store_run (store, "fp-1", 2, "finished");
  running = store_run (store, "fp-1", 1, NULL);

  g_assert_false (bl_store_add_window (store, 99, 0, 0, 10, 1.0, &error));
  g_assert_error (error, BL_ERROR, BL_ERROR_NOT_FOUND);
  g_assert_nonnull (strstr (error->message, "no run 99"));
  g_clear_error (&error);

  g_assert_false (bl_store_add_window (store, id, 7, 0, 10, 1.0, &error));
  g_assert_error (error, BL_ERROR, BL_ERROR_STORE);
  g_assert_nonnull (strstr (error->message, "already ended (status finished)"));
  g_clear_error (&error);

  /* a window index twice: the primary key refuses it, naming the SQL step */
  g_assert_false (bl_store_add_window (store, running, 0, 0, 10, 1.0, &error));
  g_assert_error (error, BL_ERROR, BL_ERROR_STORE);
  g_assert_nonnull (strstr (error->message, "add_window: insert window"));
  g_assert_nonnull (strstr (error->message, "UNIQUE"));
  g_clear_error (&error);
  g_assert_true (sqlite3_get_autocommit (bl_store_get_db (store)));

  g_assert_false (bl_store_add_window (store, running, 5, 0, 0, 1.0, &error));
  g_assert_error (error, BL_ERROR, BL_ERROR_STORE);
  g_assert_nonnull (strstr (error->message, "CHECK"));
  g_clear_error (&error);

  g_assert_false (bl_store_finish_run (store, running, "interrupted", &res, &error));
  g_assert_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_assert_false (bl_store_finish_run (store, id, "failed", &res, &error));
  g_assert_error (error, BL_ERROR, BL_ERROR_STORE);
  g_assert_nonnull (strstr (error->message, "already ended"));
  g_clear_error (&error);
  g_assert_false (bl_store_finish_run (store, 99, "failed", &res, &error));
  g_assert_error (error, BL_ERROR, BL_ERROR_NOT_FOUND);
  g_clear_error (&error);

  g_assert_null (bl_store_get_run (store, 99, &error));
  g_assert_error (error, BL_ERROR, BL_ERROR_NOT_FOUND);
  g_clear_error (&error);
  g_assert_null (bl_store_list_windows (store, 99, &error));
  g_assert_error (error, BL_ERROR, BL_ERROR_NOT_FOUND);
  g_clear_error (&error);

  /* the schema's checks */
  rec.plan_json = "{not json";
  g_assert_cmpint (bl_store_begin_run (store, &rec, &error), ==, 0);
  g_assert_error (error, BL_ERROR, BL_ERROR_STORE);
  g_assert_nonnull (strstr (error->message, "begin_run: insert run"));
  g_clear_error (&error);
  rec = make_record ("fp-1");
  rec.ctx = 1;
  g_assert_cmpint (bl_store_begin_run (store, &rec, &error), ==, 0);
  g_assert_error (error, BL_ERROR, BL_ERROR_STORE);
  g_clear_error (&error);
  rec = make_record ("fp-1");
  rec.dataset_sha256 = "short";
  g_assert_cmpint (bl_store_begin_run (store, &rec, &error), ==, 0);
  g_assert_error (error, BL_ERROR, BL_ERROR_STORE);
  g_assert_nonnull (strstr (error->message, "begin_run: record dataset"));
  g_clear_error (&error);

  /* a finished run's status cannot be changed behind the API's back either */
  g_assert_cmpint (sqlite3_exec (bl_store_get_db (store),
                                 "UPDATE runs SET status = 'failed' WHERE id = 1", NULL, NULL,
                                 NULL) & 0xff, ==, SQLITE_CONSTRAINT);
  g_assert_cmpint (query_int (bl_store_get_db (store), "SELECT count (*) FROM runs"), ==, 2);
}

static void
test_runs_missing_numbers (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(BlStore) store = bl_store_open (":memory:", &error);
  g_autoptr(BlStoredRun) run = NULL;
  BlRunResult res = make_result ();
  gint64 one, two;

  /* one window: no interval, NaN in and NaN out */
  one = store_run (store, "fp-1", 1, NULL);
  res.ppl_ci_low = NAN;
  res.ppl_ci_high = NAN;
  res.n_windows_done = 1;
  g_assert_true (bl_store_finish_run (store, one, "finished", &res, &error));
  run = bl_store_get_run (store, one, &error);
  g_assert_true (isnan (run->ppl_ci_low) && isnan (run->ppl_ci_high));
  g_assert_cmpint (query_int (bl_store_get_db (store),
                              "SELECT ppl_ci_low IS NULL FROM runs WHERE id = 1"), ==, 1);
  g_clear_pointer (&run, bl_stored_run_free);

  /* failed without numbers: the stored windows still say how far it got */
  two = store_run (store, "fp-1", 3, NULL);
  g_assert_true (bl_store_finish_run (store, two, "failed", NULL, &error));
  g_assert_no_error (error);
  run = bl_store_get_run (store, two, &error);
  g_assert_cmpstr (run->status, ==, "failed");
  g_assert_true (isnan (run->ppl));
  g_assert_cmpint (run->n_windows_done, ==, 3);
}

/* The test hook fails a write after its statements ran: the operation reports the error
 * and its transaction is rolled back; earlier runs are untouched. */
static void
test_fault_injected (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(BlStore) store = bl_store_open (":memory:", &error);
  g_autoptr(BlStoredRun) before = NULL;
  g_autoptr(BlStoredRun) after = NULL;
  g_autoptr(BlStoredRun) run = NULL;
  g_autoptr(GArray) windows = NULL;
  BlRunRecord rec = make_record ("fp-new");
  BlRunResult res = make_result ();
  sqlite3 *db = bl_store_get_db (store);
  gint64 done, id;

  done = store_run (store, "fp-1", 3, "finished");
  before = bl_store_get_run (store, done, &error);

  /* begin_run: neither the new model nor the run survive */
  bl_store_set_fault (store, "begin_run", BL_STORE_FAULT_ERROR);
  g_assert_cmpint (bl_store_begin_run (store, &rec, &error), ==, 0);
  g_assert_error (error, BL_ERROR, BL_ERROR_STORE);
  g_assert_nonnull (strstr (error->message, "begin_run"));
  g_clear_error (&error);
  g_assert_true (sqlite3_get_autocommit (db));
  g_assert_cmpint (query_int (db, "SELECT count (*) FROM models WHERE fingerprint = 'fp-new'"),
                   ==, 0);
  g_assert_cmpint (query_int (db, "SELECT count (*) FROM runs"), ==, 1);

  /* the fault fires once */
  id = bl_store_begin_run (store, &rec, &error);
  g_assert_no_error (error);
  g_assert_cmpint (id, >, done);

  /* add_window */
  g_assert_true (bl_store_add_window (store, id, 0, 0, 255, 1000.0, &error));
  bl_store_set_fault (store, "add_window", BL_STORE_FAULT_ERROR);
  g_assert_false (bl_store_add_window (store, id, 1, 512, 255, 1001.0, &error));
  g_assert_error (error, BL_ERROR, BL_ERROR_STORE);
  g_clear_error (&error);
  windows = bl_store_list_windows (store, id, &error);
  g_assert_cmpuint (windows->len, ==, 1);

  /* finish_run: the run stays running, and can still be finished */
  bl_store_set_fault (store, "finish_run", BL_STORE_FAULT_ERROR);
  g_assert_false (bl_store_finish_run (store, id, "finished", &res, &error));
  g_assert_error (error, BL_ERROR, BL_ERROR_STORE);
  g_assert_nonnull (strstr (error->message, "finish_run: injected fault before commit"));
  g_clear_error (&error);
  g_assert_true (sqlite3_get_autocommit (db));
  run = bl_store_get_run (store, id, &error);
  g_assert_cmpstr (run->status, ==, "running");
  g_assert_true (isnan (run->ppl));
  g_assert_null (run->finished_at);
  g_assert_true (bl_store_finish_run (store, id, "finished", &res, &error));
  g_assert_no_error (error);

  after = bl_store_get_run (store, done, &error);
  g_assert_cmpstr (after->status, ==, before->status);
  g_assert_cmpstr (after->finished_at, ==, before->finished_at);
  g_assert_cmpfloat (after->ppl, ==, before->ppl);
  g_assert_cmpint (after->n_windows_done, ==, 3);
}

/* A genuine SQLite failure (a trigger that aborts the UPDATE) inside finish_run. */
static void
test_fault_sqlite_error (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(BlStore) store = bl_store_open (":memory:", &error);
  g_autoptr(BlStoredRun) run = NULL;
  g_autoptr(GPtrArray) runs = NULL;
  BlRunResult res = make_result ();
  sqlite3 *db = bl_store_get_db (store);
  gint64 done, id;

  done = store_run (store, "fp-1", 2, "finished");
  id = store_run (store, "fp-1", 2, NULL);
  g_assert_cmpint (sqlite3_exec (db,
                                 "CREATE TEMP TRIGGER fail_finish BEFORE UPDATE ON runs "
                                 "BEGIN SELECT RAISE (ABORT, 'disk on fire'); END",
                                 NULL, NULL, NULL), ==, SQLITE_OK);

  g_assert_false (bl_store_finish_run (store, id, "finished", &res, &error));
  g_assert_error (error, BL_ERROR, BL_ERROR_STORE);
  g_assert_nonnull (strstr (error->message, "finish_run: update run: disk on fire"));
  g_clear_error (&error);
  g_assert_true (sqlite3_get_autocommit (db));

  run = bl_store_get_run (store, id, &error);
  g_assert_cmpstr (run->status, ==, "running");
  runs = bl_store_list_runs (store, NULL, &error);
  g_assert_cmpuint (runs->len, ==, 2);
  g_assert_cmpstr (((BlStoredRun *) g_ptr_array_index (runs, 0))->status, ==, "finished");
  g_assert_cmpint (((BlStoredRun *) g_ptr_array_index (runs, 0))->id, ==, done);
  g_assert_cmpint (query_int (db, "SELECT count (*) FROM run_windows"), ==, 4);
}

/* In a forked child: begin a run, add @n_windows windows, then arm @fault_operation to
 * SIGKILL the process inside its transaction and call it. Never returns. */
G_GNUC_NORETURN static void
child_killed_in_transaction (const char *path,
                             int         n_windows,
                             const char *fault_operation)
{
  g_autoptr(BlStore) store = bl_store_open (path, NULL);
  BlRunRecord rec = make_record ("fp-child");
  BlRunResult res = make_result ();
  gint64 id;

  if (store == NULL || (id = bl_store_begin_run (store, &rec, NULL)) <= 0)
    _exit (2);
  for (int i = 0; i < n_windows; i++)
    if (!bl_store_add_window (store, id, i, (gint64) i * 512, 255, 1000.0 + i, NULL))
      _exit (3);
  bl_store_set_fault (store, fault_operation, BL_STORE_FAULT_KILL);
  if (g_str_equal (fault_operation, "add_window"))
    bl_store_add_window (store, id, n_windows, (gint64) n_windows * 512, 255, 1.0, NULL);
  else
    bl_store_finish_run (store, id, "finished", &res, NULL);
  _exit (4);
}

static void
run_killed_child (const char *path,
                  int         n_windows,
                  const char *fault_operation)
{
  int status = 0;
  pid_t pid = fork ();

  g_assert_cmpint (pid, >=, 0);
  if (pid == 0)
    child_killed_in_transaction (path, n_windows, fault_operation);
  g_assert_cmpint (waitpid (pid, &status, 0), ==, pid);
  g_assert_true (WIFSIGNALED (status));
  g_assert_cmpint (WTERMSIG (status), ==, SIGKILL);
}

static void
test_kill_in_transaction (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(BlStore) store = NULL;
  g_autoptr(BlStoredRun) killed = NULL;
  g_autoptr(BlStoredRun) finished = NULL;
  g_autoptr(GArray) windows = NULL;
  g_autofree char *path = make_tmp_db_path ();
  g_autofree char *wal = g_strconcat (path, "-wal", NULL);
  gint64 done;

  store = bl_store_open (path, &error);
  g_assert_no_error (error);
  done = store_run (store, "fp-1", 3, "finished");
  g_clear_object (&store);

  /* killed inside add_window's transaction after 3 committed windows, then inside
   * finish_run's */
  run_killed_child (path, 3, "add_window");
  run_killed_child (path, 2, "finish_run");
  g_assert_true (g_file_test (wal, G_FILE_TEST_EXISTS));

  store = bl_store_open (path, &error);
  g_assert_no_error (error);
  /* the second child's open already recovered the first child's run */
  g_assert_cmpuint (bl_store_get_n_recovered (store), ==, 1);

  finished = bl_store_get_run (store, done, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (finished->status, ==, "finished");
  g_assert_cmpfloat (finished->ppl, ==, exp (4.5));
  windows = bl_store_list_windows (store, done, &error);
  g_assert_cmpuint (windows->len, ==, 3);
  g_clear_pointer (&windows, g_array_unref);

  killed = bl_store_get_run (store, done + 1, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (killed->status, ==, "interrupted");
  g_assert_nonnull (killed->finished_at);
  g_assert_nonnull (strstr (killed->message, "ended without finishing it"));
  g_assert_cmpint (killed->owner_pid, !=, getpid ());
  g_assert_cmpint (killed->n_windows_done, ==, 3);
  windows = bl_store_list_windows (store, done + 1, &error);
  g_assert_cmpuint (windows->len, ==, 3);
  g_clear_pointer (&killed, bl_stored_run_free);

  /* the finish_run that was killed before COMMIT left no numbers */
  killed = bl_store_get_run (store, done + 2, &error);
  g_assert_cmpstr (killed->status, ==, "interrupted");
  g_assert_true (isnan (killed->ppl));
  g_assert_cmpint (killed->n_windows_done, ==, 2);
  g_clear_object (&store);

  assert_integrity_ok (path);

  /* a second open has nothing left to recover */
  store = bl_store_open (path, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (bl_store_get_n_recovered (store), ==, 0);
}

/* A writer killed at an arbitrary moment while another process has the store open: the
 * live writer's run is never marked interrupted; the dead one's is. */
static void
test_kill_concurrent_writer (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(BlStore) store = NULL;
  g_autoptr(BlStore) observer = NULL;
  g_autoptr(BlStoredRun) run = NULL;
  g_autofree char *path = make_tmp_db_path ();
  int fds[2], status = 0;
  gint64 id = 0;
  pid_t pid;

  store = bl_store_open (path, &error);
  g_assert_no_error (error);
  store_run (store, "fp-1", 2, "finished");
  g_clear_object (&store);

  g_assert_cmpint (pipe (fds), ==, 0);
  pid = fork ();
  g_assert_cmpint (pid, >=, 0);
  if (pid == 0)
    {
      g_autoptr(BlStore) child = bl_store_open (path, NULL);
      BlRunRecord rec = make_record ("fp-child");
      gint64 child_id;

      close (fds[0]);
      if (child == NULL || (child_id = bl_store_begin_run (child, &rec, NULL)) <= 0)
        _exit (2);
      if (write (fds[1], &child_id, sizeof child_id) != sizeof child_id)
        _exit (3);
      for (int i = 0;; i++)
        if (!bl_store_add_window (child, child_id, i, (gint64) i * 512, 255, 1000.0, NULL))
          _exit (4);
    }
  close (fds[1]);
  g_assert_cmpint (read (fds[0], &id, sizeof id), ==, sizeof id);
  close (fds[0]);

  /* open the store while the child writes: its run is alive and must stay 'running' */
  observer = bl_store_open (path, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (bl_store_get_n_recovered (observer), ==, 0);
  for (;;)
    {
      run = bl_store_get_run (observer, id, &error);
      g_assert_no_error (error);
      g_assert_cmpstr (run->status, ==, "running");
      if (run->n_windows_done >= 50)
        break;
      g_clear_pointer (&run, bl_stored_run_free);
      g_usleep (1000);
    }
  g_clear_pointer (&run, bl_stored_run_free);

  g_assert_cmpint (kill (pid, SIGKILL), ==, 0);
  g_assert_cmpint (waitpid (pid, &status, 0), ==, pid);
  g_assert_true (WIFSIGNALED (status));
  g_clear_object (&observer);

  store = bl_store_open (path, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (bl_store_get_n_recovered (store), ==, 1);
  run = bl_store_get_run (store, id, &error);
  g_assert_cmpstr (run->status, ==, "interrupted");
  g_assert_cmpint (run->n_windows_done, >=, 50);
  g_clear_object (&store);
  assert_integrity_ok (path);
}

/* Closing a store with an unfinished run marks it interrupted at once. */
static void
test_close_marks_interrupted (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(BlStore) store = NULL;
  g_autoptr(BlStoredRun) run = NULL;
  g_autofree char *path = make_tmp_db_path ();
  g_autofree char *owners = g_strconcat (path, "-owners", NULL);
  g_autoptr(GDir) dir = NULL;
  gint64 id;

  store = bl_store_open (path, &error);
  id = store_run (store, "fp-1", 1, NULL);
  g_clear_object (&store);

  /* the owner's lock file is gone with it */
  dir = g_dir_open (owners, 0, &error);
  g_assert_no_error (error);
  g_assert_null (g_dir_read_name (dir));

  store = bl_store_open (path, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (bl_store_get_n_recovered (store), ==, 0);
  run = bl_store_get_run (store, id, &error);
  g_assert_cmpstr (run->status, ==, "interrupted");
  g_assert_nonnull (strstr (run->message, "closed"));
}

static gpointer
test_threads_worker (gpointer data)
{
  BlStore *store = data;
  g_autoptr(GError) error = NULL;
  BlRunRecord rec = make_record ("fp-thread");
  gint64 id = bl_store_begin_run (store, &rec, &error);

  g_assert_no_error (error);
  for (int i = 0; i < 40; i++)
    {
      bl_store_add_window (store, id, i, i, 1, 1.0, &error);
      g_assert_no_error (error);
    }
  bl_store_finish_run (store, id, "finished", NULL, &error);
  g_assert_no_error (error);
  return NULL;
}

static void
test_threads (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(BlStore) store = bl_store_open (":memory:", &error);
  GThread *threads[8];

  /* joined threads are gone, so the fork in the kill tests stays safe */
  for (int i = 0; i < 8; i++)
    threads[i] = g_thread_new ("store-writer", test_threads_worker, store);
  for (int i = 0; i < 8; i++)
    g_thread_join (threads[i]);
  g_assert_cmpint (query_int (bl_store_get_db (store), "SELECT count (*) FROM run_windows"),
                   ==, 8 * 40);
  g_assert_cmpint (query_int (bl_store_get_db (store),
                              "SELECT count (*) FROM runs WHERE status = 'finished'"), ==, 8);
}

static sqlite3 *
open_raw (const char *path)
{
  sqlite3 *db = NULL;

  g_assert_cmpint (sqlite3_open (path, &db), ==, SQLITE_OK);
  return db;
}

static void
test_migration_from_zero (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(BlStore) store = NULL;
  g_autoptr(BlStoredRun) run = NULL;
  g_autofree char *path = make_tmp_db_path ();
  sqlite3 *db;
  gint64 id;

  /* an existing, empty SQLite database at user_version 0 */
  db = open_raw (path);
  g_assert_cmpint (query_int (db, "PRAGMA user_version"), ==, 0);
  g_assert_cmpint (sqlite3_exec (db, "CREATE TABLE notes (x)", NULL, NULL, NULL), ==, SQLITE_OK);
  sqlite3_close (db);

  store = bl_store_open (path, &error);
  g_assert_no_error (error);
  db = bl_store_get_db (store);
  g_assert_cmpint (query_int (db, "PRAGMA user_version"), ==, BL_STORE_SCHEMA_VERSION);
  g_assert_cmpint (query_int (db, "PRAGMA application_id"), ==, BL_STORE_APPLICATION_ID);
  g_assert_cmpint (query_int (db, "SELECT count (*) FROM sqlite_schema WHERE type = 'table' "
                                  "AND name IN ('models', 'datasets', 'runs', 'run_windows')"),
                   ==, 4);
  id = store_run (store, "fp-1", 2, "finished");
  g_clear_object (&store);

  /* reopening at the current version changes nothing */
  store = bl_store_open (path, &error);
  g_assert_no_error (error);
  g_assert_cmpint (query_int (bl_store_get_db (store), "PRAGMA user_version"), ==,
                   BL_STORE_SCHEMA_VERSION);
  run = bl_store_get_run (store, id, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (run->status, ==, "finished");
  g_clear_object (&store);
  assert_integrity_ok (path);
}

/* A migration that fails rolls back whole: the database stays at version 0, untouched. */
static void
test_migration_failure (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(BlStore) store = NULL;
  g_autofree char *path = make_tmp_db_path ();
  sqlite3 *db;

  db = open_raw (path);
  g_assert_cmpint (sqlite3_exec (db, "CREATE TABLE runs (mine TEXT); "
                                     "INSERT INTO runs VALUES ('keep me')",
                                 NULL, NULL, NULL), ==, SQLITE_OK);
  sqlite3_close (db);

  store = bl_store_open (path, &error);
  g_assert_null (store);
  g_assert_error (error, BL_ERROR, BL_ERROR_STORE);
  g_assert_nonnull (strstr (error->message, path));
  g_assert_nonnull (strstr (error->message, "migration 0 → 1"));
  g_assert_nonnull (strstr (error->message, "already exists"));

  db = open_raw (path);
  g_assert_cmpint (query_int (db, "PRAGMA user_version"), ==, 0);
  g_assert_cmpint (query_int (db, "SELECT count (*) FROM sqlite_schema WHERE name = 'models'"),
                   ==, 0);
  g_assert_cmpint (query_int (db, "SELECT count (*) FROM runs WHERE mine = 'keep me'"), ==, 1);
  sqlite3_close (db);
}

static void
test_migration_future_refused (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(BlStore) store = NULL;
  g_autofree char *path = make_tmp_db_path ();
  g_autofree char *sql = g_strdup_printf ("PRAGMA application_id = %d; "
                                          "PRAGMA user_version = %d",
                                          BL_STORE_APPLICATION_ID, BL_STORE_SCHEMA_VERSION + 1);
  g_autofree char *mode = NULL;
  sqlite3 *db;

  db = open_raw (path);
  g_assert_cmpint (sqlite3_exec (db, sql, NULL, NULL, NULL), ==, SQLITE_OK);
  sqlite3_close (db);

  store = bl_store_open (path, &error);
  g_assert_null (store);
  g_assert_error (error, BL_ERROR, BL_ERROR_STORE);
  g_assert_nonnull (strstr (error->message, path));
  g_assert_nonnull (strstr (error->message, "newer than this Bitlens knows"));

  /* untouched: same version, and not even switched to WAL */
  db = open_raw (path);
  g_assert_cmpint (query_int (db, "PRAGMA user_version"), ==, BL_STORE_SCHEMA_VERSION + 1);
  mode = query_text (db, "PRAGMA journal_mode");
  g_assert_cmpstr (mode, ==, "delete");
  sqlite3_close (db);
}

/* Another program's SQLite file (its own user_version, no Bitlens application_id) is
 * refused, not migrated. */
static void
test_migration_foreign_refused (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(BlStore) store = NULL;
  g_autofree char *path = make_tmp_db_path ();
  sqlite3 *db;

  db = open_raw (path);
  g_assert_cmpint (sqlite3_exec (db, "CREATE TABLE t (x); PRAGMA user_version = 1",
                                 NULL, NULL, NULL), ==, SQLITE_OK);
  sqlite3_close (db);

  store = bl_store_open (path, &error);
  g_assert_null (store);
  g_assert_error (error, BL_ERROR, BL_ERROR_STORE);
  g_assert_nonnull (strstr (error->message, "not a Bitlens store"));

  db = open_raw (path);
  g_assert_cmpint (query_int (db, "PRAGMA user_version"), ==, 1);
  g_assert_cmpint (query_int (db, "SELECT count (*) FROM sqlite_schema"), ==, 1);
  sqlite3_close (db);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

  g_test_add_func ("/bitlens/store/open/memory", test_open_memory);
  g_test_add_func ("/bitlens/store/open/default-path", test_open_default_path);
  g_test_add_func ("/bitlens/store/open/not-a-database", test_open_not_a_database);
  g_test_add_func ("/bitlens/store/runs/roundtrip", test_runs_roundtrip);
  g_test_add_func ("/bitlens/store/runs/upsert", test_runs_upsert);
  g_test_add_func ("/bitlens/store/runs/errors", test_runs_errors);
  g_test_add_func ("/bitlens/store/runs/missing-numbers", test_runs_missing_numbers);
  g_test_add_func ("/bitlens/store/runs/threads", test_threads);
  g_test_add_func ("/bitlens/store/fault/injected", test_fault_injected);
  g_test_add_func ("/bitlens/store/fault/sqlite-error", test_fault_sqlite_error);
  g_test_add_func ("/bitlens/store/kill/in-transaction", test_kill_in_transaction);
  g_test_add_func ("/bitlens/store/kill/concurrent-writer", test_kill_concurrent_writer);
  g_test_add_func ("/bitlens/store/close-marks-interrupted", test_close_marks_interrupted);
  g_test_add_func ("/bitlens/store/migration/from-zero", test_migration_from_zero);
  g_test_add_func ("/bitlens/store/migration/failure-rolls-back", test_migration_failure);
  g_test_add_func ("/bitlens/store/migration/future-refused", test_migration_future_refused);
  g_test_add_func ("/bitlens/store/migration/foreign-refused", test_migration_foreign_refused);

  return g_test_run ();
}
