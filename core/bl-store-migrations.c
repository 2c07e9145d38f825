/* bl-store-migrations.c: the store's schema, one migration per schema version
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * bl_store_open() applies migration i, in its own transaction, to a database whose
 * PRAGMA user_version is i, and sets user_version to i + 1 in the same transaction.
 * An applied migration is never edited: a schema change is a new entry at the end.
 */
#include "bl-store-private.h"

const char * const bl_store_migrations[] = {
  /* 0 → 1: models, datasets, runs and their per-window sums. */
  "PRAGMA application_id = 1112297043;"   /* BL_STORE_APPLICATION_ID */
  "CREATE TABLE models ("
  "  fingerprint TEXT PRIMARY KEY NOT NULL,"
  "  path TEXT,"
  "  name TEXT,"
  "  architecture TEXT,"
  "  n_params INTEGER,"
  "  first_seen TEXT NOT NULL,"
  "  last_seen TEXT NOT NULL"
  ");"
  /* A dataset is its bytes (sha256) read one way (kind): the kind decides the text a
   * protocol tokenizes, so the same file read as plain text is another dataset. */
  "CREATE TABLE datasets ("
  "  sha256 TEXT NOT NULL CHECK (length (sha256) = 64),"
  "  kind TEXT NOT NULL,"
  "  name TEXT NOT NULL,"
  "  path TEXT,"
  "  first_seen TEXT NOT NULL,"
  "  last_seen TEXT NOT NULL,"
  "  PRIMARY KEY (sha256, kind)"
  ");"
  "CREATE TABLE runs ("
  "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
  "  started_at TEXT NOT NULL,"
  "  finished_at TEXT,"
  "  status TEXT NOT NULL CHECK (status IN"
  "    ('running', 'finished', 'failed', 'cancelled', 'interrupted')),"
  "  model_fingerprint TEXT NOT NULL REFERENCES models (fingerprint),"
  "  dataset_sha256 TEXT NOT NULL,"
  "  dataset_kind TEXT NOT NULL,"
  "  tokenizer_hash TEXT,"
  "  protocol TEXT NOT NULL,"
  "  ctx INTEGER NOT NULL CHECK (ctx >= 2),"
  "  stride INTEGER NOT NULL CHECK (stride >= 0),"
  "  max_windows INTEGER NOT NULL CHECK (max_windows >= 0),"
  "  n_windows INTEGER NOT NULL CHECK (n_windows >= 0),"
  /* the guint64 seed, stored as the int64 with the same bits */
  "  seed INTEGER NOT NULL,"
  "  backend TEXT,"
  "  threads INTEGER,"
  "  plan_json TEXT CHECK (plan_json IS NULL OR json_valid (plan_json)),"
  "  n_windows_done INTEGER,"
  "  n_tokens INTEGER,"
  "  mean_nll REAL,"
  "  ppl REAL,"
  "  ppl_ci_low REAL,"
  "  ppl_ci_high REAL,"
  "  wall_seconds REAL,"
  "  tokens_per_second REAL,"
  "  message TEXT,"
  "  bitlens_version TEXT NOT NULL,"
  "  host TEXT NOT NULL,"
  "  owner_pid INTEGER NOT NULL,"
  /* the writing BlStore's random token; its lock file tells whether it is alive */
  "  owner_token TEXT NOT NULL,"
  "  FOREIGN KEY (dataset_sha256, dataset_kind) REFERENCES datasets (sha256, kind)"
  ");"
  "CREATE INDEX runs_by_model ON runs (model_fingerprint, id);"
  "CREATE INDEX runs_running ON runs (owner_token) WHERE status = 'running';"
  /* A run that has ended stays ended: its numbers are provenance. */
  "CREATE TRIGGER runs_status_final BEFORE UPDATE OF status ON runs"
  "  WHEN OLD.status <> 'running'"
  "  BEGIN SELECT RAISE (ABORT, 'a run that has ended cannot change its status'); END;"
  "CREATE TABLE run_windows ("
  "  run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,"
  "  window_index INTEGER NOT NULL CHECK (window_index >= 0),"
  "  start INTEGER NOT NULL CHECK (start >= 0),"
  "  n_tokens INTEGER NOT NULL CHECK (n_tokens > 0),"
  "  sum_nll REAL NOT NULL,"
  "  PRIMARY KEY (run_id, window_index)"
  ") WITHOUT ROWID;",

  /* 1 → 2: zero-shot task results (core/bl-zeroshot.c). A result is written once, when
   * the evaluation ends (also cancelled, with the items done), so there is no 'running'
   * state to recover. */
  "CREATE TABLE zeroshot_runs ("
  "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
  "  started_at TEXT NOT NULL,"
  "  finished_at TEXT NOT NULL,"
  "  status TEXT NOT NULL CHECK (status IN ('finished', 'failed', 'cancelled')),"
  "  model_fingerprint TEXT NOT NULL REFERENCES models (fingerprint),"
  "  task TEXT NOT NULL,"
  "  dataset_sha256 TEXT NOT NULL,"
  "  dataset_kind TEXT NOT NULL,"
  "  tokenizer_hash TEXT,"
  "  add_bos INTEGER NOT NULL CHECK (add_bos IN (0, 1)),"
  "  item_limit INTEGER NOT NULL CHECK (item_limit >= 0),"
  "  n_items INTEGER NOT NULL CHECK (n_items >= 0),"
  "  n_done INTEGER NOT NULL CHECK (n_done >= 0 AND n_done <= n_items),"
  "  seed INTEGER NOT NULL,"
  "  ece_bins INTEGER NOT NULL CHECK (ece_bins > 0),"
  "  backend TEXT,"
  "  threads INTEGER,"
  "  plan_json TEXT CHECK (plan_json IS NULL OR json_valid (plan_json)),"
  "  acc REAL,"
  "  acc_stderr REAL,"
  "  acc_ci_low REAL,"
  "  acc_ci_high REAL,"
  "  acc_norm REAL,"
  "  acc_norm_stderr REAL,"
  "  chance REAL,"
  "  ece REAL,"
  "  brier REAL,"
  "  balance REAL,"
  "  mean_confidence REAL,"
  "  mean_loglik REAL,"
  "  ppl REAL,"
  "  wall_seconds REAL,"
  "  message TEXT,"
  "  bitlens_version TEXT NOT NULL,"
  "  host TEXT NOT NULL,"
  "  FOREIGN KEY (dataset_sha256, dataset_kind) REFERENCES datasets (sha256, kind)"
  ");"
  "CREATE INDEX zeroshot_runs_by_model ON zeroshot_runs (model_fingerprint, task, id);"
  /* per item: the summed log-likelihood of each choice, as a JSON array */
  "CREATE TABLE zeroshot_items ("
  "  run_id INTEGER NOT NULL REFERENCES zeroshot_runs (id) ON DELETE CASCADE,"
  "  item_index INTEGER NOT NULL CHECK (item_index >= 0),"
  "  gold INTEGER NOT NULL,"
  "  pred INTEGER NOT NULL,"
  "  pred_norm INTEGER NOT NULL,"
  "  loglik TEXT NOT NULL CHECK (json_valid (loglik)),"
  "  PRIMARY KEY (run_id, item_index)"
  ") WITHOUT ROWID;",
};

const guint bl_store_n_migrations = G_N_ELEMENTS (bl_store_migrations);

G_STATIC_ASSERT (G_N_ELEMENTS (bl_store_migrations) == BL_STORE_SCHEMA_VERSION);
G_STATIC_ASSERT (BL_STORE_APPLICATION_ID == 1112297043);
