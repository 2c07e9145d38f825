/* bl-store.c: the SQLite store of models, datasets, runs and per-window results
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * Durability. The database is in WAL mode with synchronous=NORMAL: a committed transaction
 * survives the writing process being killed at any instant (only a power loss may drop
 * the last commits, never corrupt the file; sqlite.org/wal.html). Each store operation is
 * one transaction, opened with BEGIN IMMEDIATE so that a second writer waits for the write
 * lock (busy timeout) instead of failing half-way through.
 *
 * Interrupted runs. A run is inserted with status 'running' and its owner's token. The
 * owner (one BlStore, from its first bl_store_begin_run() on) holds an exclusive flock(2)
 * on "<db>-owners/<token>.lock" for as long as it lives. The kernel drops that lock when
 * the process dies in any way, SIGKILL included. bl_store_open() looks at every 'running'
 * run written from this host: when it can take its owner's lock (or the lock file is
 * gone), the owner is dead and the run is marked 'interrupted'; when it cannot, the owner
 * is alive (a concurrent writer, in this or another process) and the run is left alone.
 * Unlike a pid check this cannot be fooled by a reused pid. Runs written from another
 * host are left alone, since flock across hosts depends on the file system; they are
 * recovered when the database is opened on their own host. A forked child inherits its
 * parent's lock, so the parent's runs count as alive while such a child lives. Closing a
 * store (finalize) marks its own unfinished runs 'interrupted'.
 */
#include "bl-store-private.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <sys/file.h>
#include <unistd.h>

#include <gio/gio.h>
#include <glib/gstdio.h>

#include "bl-error.h"

G_DEFINE_AUTOPTR_CLEANUP_FUNC (sqlite3_stmt, sqlite3_finalize)

/* How long an operation waits for another connection's write lock. */
#define BUSY_TIMEOUT_MS 10000

#define NOW_SQL "strftime ('%Y-%m-%dT%H:%M:%fZ', 'now')"

struct _BlStore
{
  GObject parent_instance;

  /* serializes every operation on the one connection */
  GMutex lock;
  sqlite3 *db;
  char *path;
  gboolean in_memory;

  /* owner identity, see the top of this file */
  char *owner_token;
  char *lock_path;
  int lock_fd;
  guint n_recovered;

  /* test hook: bl_store_set_fault() */
  char *fault_operation;
  BlStoreFault fault;
};

G_DEFINE_FINAL_TYPE (BlStore, bl_store, G_TYPE_OBJECT)

G_DEFINE_BOXED_TYPE (BlStoredRun, bl_stored_run, bl_stored_run_copy, bl_stored_run_free)

static gboolean
set_sqlite_error (BlStore     *self,
                  GError     **error,
                  const char  *step,
                  int          rc)
{
  const char *message = self->db != NULL ? sqlite3_errmsg (self->db) : sqlite3_errstr (rc);
  const char *generic = sqlite3_errstr (rc);

  /* errmsg is the specific text ("UNIQUE constraint failed: …"), errstr the class of the
   * result code ("constraint failed"); print the class only when it adds something. */
  if (g_str_equal (message, generic))
    g_set_error (error, BL_ERROR, BL_ERROR_STORE, "%s: %s: %s", self->path, step, message);
  else
    g_set_error (error, BL_ERROR, BL_ERROR_STORE, "%s: %s: %s (%s)", self->path, step, message,
                 generic);
  return FALSE;
}

static gboolean
exec_sql (BlStore     *self,
          const char  *sql,
          const char  *step,
          GError     **error)
{
  int rc = sqlite3_exec (self->db, sql, NULL, NULL, NULL);

  if (rc != SQLITE_OK)
    return set_sqlite_error (self, error, step, rc);
  return TRUE;
}

static sqlite3_stmt *
prepare (BlStore     *self,
         const char  *sql,
         const char  *step,
         GError     **error)
{
  sqlite3_stmt *stmt = NULL;
  int rc = sqlite3_prepare_v2 (self->db, sql, -1, &stmt, NULL);

  if (rc != SQLITE_OK)
    {
      set_sqlite_error (self, error, step, rc);
      sqlite3_finalize (stmt);
      return NULL;
    }
  return stmt;
}

/* Steps a statement that returns no row. */
static gboolean
step_done (BlStore       *self,
           sqlite3_stmt  *stmt,
           const char    *step,
           GError       **error)
{
  int rc = sqlite3_step (stmt);

  if (rc != SQLITE_DONE)
    return set_sqlite_error (self, error, step, rc);
  return TRUE;
}

static void
bind_text (sqlite3_stmt *stmt,
           int           index,
           const char   *value)
{
  if (value != NULL)
    sqlite3_bind_text (stmt, index, value, -1, SQLITE_TRANSIENT);
  else
    sqlite3_bind_null (stmt, index);
}

/* NaN (a number that does not exist yet, or a one-window interval) is stored as NULL. */
static void
bind_real (sqlite3_stmt *stmt,
           int           index,
           double        value)
{
  if (isfinite (value))
    sqlite3_bind_double (stmt, index, value);
  else
    sqlite3_bind_null (stmt, index);
}

static char *
column_text (sqlite3_stmt *stmt,
             int           index)
{
  return g_strdup ((const char *) sqlite3_column_text (stmt, index));
}

static double
column_real (sqlite3_stmt *stmt,
             int           index)
{
  if (sqlite3_column_type (stmt, index) == SQLITE_NULL)
    return NAN;
  return sqlite3_column_double (stmt, index);
}

static gboolean
begin_transaction (BlStore     *self,
                   const char  *operation,
                   GError     **error)
{
  g_autofree char *step = g_strdup_printf ("%s: begin transaction", operation);

  return exec_sql (self, "BEGIN IMMEDIATE", step, error);
}

/* After a failed statement SQLite may already have rolled back (on SQLITE_FULL, IOERR,
 * BUSY, NOMEM); a second ROLLBACK would only add a misleading error. */
static void
rollback (BlStore *self)
{
  if (!sqlite3_get_autocommit (self->db))
    sqlite3_exec (self->db, "ROLLBACK", NULL, NULL, NULL);
}

static gboolean
check_fault (BlStore     *self,
             const char  *operation,
             GError     **error)
{
  BlStoreFault fault;

  if (self->fault == BL_STORE_FAULT_NONE || g_strcmp0 (self->fault_operation, operation) != 0)
    return TRUE;

  fault = self->fault;
  self->fault = BL_STORE_FAULT_NONE;
  g_clear_pointer (&self->fault_operation, g_free);
  if (fault == BL_STORE_FAULT_KILL)
    kill (getpid (), SIGKILL);

  g_set_error (error, BL_ERROR, BL_ERROR_STORE, "%s: %s: injected fault before commit",
               self->path, operation);
  return FALSE;
}

/* Commits, or rolls back when the test hook injects a fault at this point. */
static gboolean
commit (BlStore     *self,
        const char  *operation,
        GError     **error)
{
  g_autofree char *step = NULL;

  if (!check_fault (self, operation, error))
    {
      rollback (self);
      return FALSE;
    }
  step = g_strdup_printf ("%s: commit", operation);
  if (!exec_sql (self, "COMMIT", step, error))
    {
      rollback (self);
      return FALSE;
    }
  return TRUE;
}

static gboolean
read_user_version (BlStore  *self,
                   int      *version,
                   GError  **error)
{
  g_autoptr(sqlite3_stmt) stmt = prepare (self, "PRAGMA user_version", "read schema version",
                                          error);
  int rc;

  if (stmt == NULL)
    return FALSE;
  rc = sqlite3_step (stmt);
  if (rc != SQLITE_ROW)
    return set_sqlite_error (self, error, "read schema version", rc);
  *version = sqlite3_column_int (stmt, 0);
  return TRUE;
}

static gboolean
read_application_id (BlStore  *self,
                     int      *app_id,
                     GError  **error)
{
  g_autoptr(sqlite3_stmt) stmt = prepare (self, "PRAGMA application_id",
                                          "read application id", error);
  int rc;

  if (stmt == NULL)
    return FALSE;
  rc = sqlite3_step (stmt);
  if (rc != SQLITE_ROW)
    return set_sqlite_error (self, error, "read application id", rc);
  *app_id = sqlite3_column_int (stmt, 0);
  return TRUE;
}

static gboolean
refuse_future_version (BlStore  *self,
                       int       version,
                       GError  **error)
{
  if (version >= 0 && (guint) version <= bl_store_n_migrations)
    return TRUE;
  if (version < 0)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_STORE,
                   "%s: schema version %d is not a Bitlens schema version", self->path, version);
      return FALSE;
    }
  g_set_error (error, BL_ERROR, BL_ERROR_STORE,
               "%s: schema version %d is newer than this Bitlens knows (%u); it was written "
               "by a newer Bitlens, so it is left untouched", self->path, version,
               bl_store_n_migrations);
  return FALSE;
}

/* Each migration runs in its own transaction that also sets user_version, so a failure
 * leaves the database at the last complete version. The version is read again under the
 * write lock because another process may have migrated meanwhile. */
static gboolean
migrate (BlStore  *self,
         GError  **error)
{
  int version;

  if (!read_user_version (self, &version, error) || !refuse_future_version (self, version, error))
    return FALSE;

  while ((guint) version < bl_store_n_migrations)
    {
      g_autofree char *step = NULL;
      g_autofree char *set_version = NULL;

      if (!exec_sql (self, "BEGIN IMMEDIATE", "migration: begin transaction", error))
        return FALSE;
      if (!read_user_version (self, &version, error)
          || !refuse_future_version (self, version, error))
        {
          rollback (self);
          return FALSE;
        }
      if ((guint) version >= bl_store_n_migrations)
        {
          rollback (self);
          break;
        }

      step = g_strdup_printf ("migration %d → %d", version, version + 1);
      set_version = g_strdup_printf ("PRAGMA user_version = %d", version + 1);
      if (!exec_sql (self, bl_store_migrations[version], step, error)
          || !exec_sql (self, set_version, step, error)
          || !exec_sql (self, "COMMIT", step, error))
        {
          rollback (self);
          return FALSE;
        }
      version++;
    }
  return TRUE;
}

static gboolean
configure_connection (BlStore  *self,
                      GError  **error)
{
  g_autoptr(sqlite3_stmt) stmt = NULL;
  const char *mode;
  int version = 0, app_id = 0, rc;

  sqlite3_extended_result_codes (self->db, 1);
  sqlite3_busy_timeout (self->db, BUSY_TIMEOUT_MS);
  if (!exec_sql (self, "PRAGMA foreign_keys = ON", "enable foreign keys", error))
    return FALSE;

  /* Refuse a newer schema or another program's database before anything writes to the
   * file (journal_mode = WAL is stored in the file header). This also fails cleanly on a
   * file that is not SQLite. An empty database (version 0, no id) becomes a store. */
  if (!read_user_version (self, &version, error) || !read_application_id (self, &app_id, error))
    return FALSE;
  if (app_id != BL_STORE_APPLICATION_ID && (app_id != 0 || version != 0))
    {
      g_set_error (error, BL_ERROR, BL_ERROR_STORE,
                   "%s: not a Bitlens store (application_id 0x%08x, user_version %d); it is "
                   "left untouched", self->path, (guint32) app_id, version);
      return FALSE;
    }
  if (!refuse_future_version (self, version, error))
    return FALSE;

  stmt = prepare (self, "PRAGMA journal_mode = WAL", "enable WAL", error);
  if (stmt == NULL)
    return FALSE;
  rc = sqlite3_step (stmt);
  if (rc != SQLITE_ROW)
    return set_sqlite_error (self, error, "enable WAL", rc);
  mode = (const char *) sqlite3_column_text (stmt, 0);
  if (!self->in_memory && g_ascii_strcasecmp (mode, "wal") != 0)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_STORE,
                   "%s: enable WAL: the journal mode stayed \"%s\" (is the file system "
                   "read-only or without shared memory?)", self->path, mode);
      return FALSE;
    }
  g_clear_pointer (&stmt, sqlite3_finalize);

  return exec_sql (self, "PRAGMA synchronous = NORMAL", "set synchronous", error);
}

static char *
owners_dir (BlStore *self)
{
  return g_strconcat (self->path, "-owners", NULL);
}

/* Takes the lock that marks this store's runs as alive; see the top of this file. */
static gboolean
ensure_owner_lock (BlStore  *self,
                   GError  **error)
{
  g_autofree char *dir = NULL;
  g_autofree char *name = NULL;
  int saved_errno;

  if (self->in_memory || self->lock_fd >= 0)
    return TRUE;

  dir = owners_dir (self);
  if (g_mkdir_with_parents (dir, 0700) != 0)
    {
      saved_errno = errno;
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved_errno),
                   "%s: cannot create the run-owner directory: %s", dir,
                   g_strerror (saved_errno));
      return FALSE;
    }
  name = g_strconcat (self->owner_token, ".lock", NULL);
  self->lock_path = g_build_filename (dir, name, NULL);
  self->lock_fd = g_open (self->lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (self->lock_fd < 0 || flock (self->lock_fd, LOCK_EX | LOCK_NB) != 0)
    {
      saved_errno = errno;
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved_errno),
                   "%s: cannot lock the run-owner file: %s", self->lock_path,
                   g_strerror (saved_errno));
      if (self->lock_fd >= 0)
        close (self->lock_fd);
      self->lock_fd = -1;
      g_clear_pointer (&self->lock_path, g_free);
      return FALSE;
    }
  return TRUE;
}

/* TRUE when the owner with @token is certainly dead. On TRUE, *out_fd holds its lock
 * (or -1 when the lock file is gone), so no one can take the token over meanwhile. */
static gboolean
owner_is_dead (BlStore    *self,
               const char *token,
               char      **out_lock_path,
               int        *out_fd)
{
  g_autofree char *dir = owners_dir (self);
  g_autofree char *name = g_strconcat (token, ".lock", NULL);
  g_autofree char *lock_path = g_build_filename (dir, name, NULL);
  int fd = g_open (lock_path, O_RDWR | O_CLOEXEC, 0);

  if (fd < 0)
    {
      /* Owners create their lock before they write a run, so a missing file means the
       * owner ended (and removed it) or the file was deleted; any other error (say
       * EACCES) leaves us unable to tell, and the run is left alone. */
      if (errno != ENOENT)
        return FALSE;
      *out_fd = -1;
      *out_lock_path = NULL;
      return TRUE;
    }
  if (flock (fd, LOCK_EX | LOCK_NB) != 0)
    {
      close (fd);
      return FALSE;
    }
  *out_fd = fd;
  *out_lock_path = g_steal_pointer (&lock_path);
  return TRUE;
}

static gboolean
recover_interrupted_runs (BlStore  *self,
                          GError  **error)
{
  g_autoptr(sqlite3_stmt) select = NULL;
  g_autoptr(sqlite3_stmt) update = NULL;
  g_autoptr(GPtrArray) tokens = g_ptr_array_new_with_free_func (g_free);
  int rc;

  if (self->in_memory)
    return TRUE;

  select = prepare (self,
                    "SELECT DISTINCT owner_token FROM runs "
                    "WHERE status = 'running' AND host = ?1",
                    "recover interrupted runs: list running runs", error);
  if (select == NULL)
    return FALSE;
  bind_text (select, 1, g_get_host_name ());
  while ((rc = sqlite3_step (select)) == SQLITE_ROW)
    g_ptr_array_add (tokens, column_text (select, 0));
  if (rc != SQLITE_DONE)
    return set_sqlite_error (self, error, "recover interrupted runs: list running runs", rc);

  update = prepare (self,
                    "UPDATE runs SET status = 'interrupted', finished_at = " NOW_SQL ", "
                    "  message = printf ('the process that ran it (pid %d on %s) ended "
                    "without finishing it', owner_pid, host) "
                    "WHERE owner_token = ?1 AND status = 'running'",
                    "recover interrupted runs: mark interrupted", error);
  if (update == NULL)
    return FALSE;

  for (guint i = 0; i < tokens->len; i++)
    {
      const char *token = g_ptr_array_index (tokens, i);
      g_autofree char *lock_path = NULL;
      int fd = -1;
      gboolean ok;

      if (!owner_is_dead (self, token, &lock_path, &fd))
        continue;

      sqlite3_reset (update);
      bind_text (update, 1, token);
      ok = step_done (self, update, "recover interrupted runs: mark interrupted", error);
      if (ok)
        self->n_recovered += sqlite3_changes (self->db);
      /* The lock file is removed only while its lock is held and its runs are marked. */
      if (ok && lock_path != NULL)
        g_unlink (lock_path);
      if (fd >= 0)
        close (fd);
      if (!ok)
        return FALSE;
    }
  return TRUE;
}

static void
release_owner (BlStore *self)
{
  if (self->lock_fd < 0)
    return;

  if (self->db != NULL)
    {
      g_autoptr(sqlite3_stmt) stmt = NULL;
      g_autoptr(GError) error = NULL;

      stmt = prepare (self,
                      "UPDATE runs SET status = 'interrupted', finished_at = " NOW_SQL ", "
                      "  message = 'the store was closed while the run was running' "
                      "WHERE owner_token = ?1 AND status = 'running'",
                      "close: mark unfinished runs interrupted", &error);
      if (stmt != NULL)
        {
          bind_text (stmt, 1, self->owner_token);
          step_done (self, stmt, "close: mark unfinished runs interrupted", &error);
        }
      /* A run that could not be marked here is marked by the next bl_store_open(),
       * once this process is gone. */
      if (error != NULL)
        g_debug ("%s", error->message);
    }
  g_unlink (self->lock_path);
  close (self->lock_fd);
  self->lock_fd = -1;
  g_clear_pointer (&self->lock_path, g_free);
}

static void
bl_store_finalize (GObject *object)
{
  BlStore *self = BL_STORE (object);

  release_owner (self);
  g_clear_pointer (&self->db, sqlite3_close_v2);
  g_clear_pointer (&self->path, g_free);
  g_clear_pointer (&self->owner_token, g_free);
  g_clear_pointer (&self->fault_operation, g_free);
  g_mutex_clear (&self->lock);

  G_OBJECT_CLASS (bl_store_parent_class)->finalize (object);
}

static void
bl_store_class_init (BlStoreClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = bl_store_finalize;
}

static void
bl_store_init (BlStore *self)
{
  g_mutex_init (&self->lock);
  self->lock_fd = -1;
  self->owner_token = g_uuid_string_random ();
}

/**
 * bl_store_get_default_path:
 *
 * Returns: (transfer full): `$XDG_DATA_HOME/bitlens/bitlens.db` (g_get_user_data_dir())
 */
char *
bl_store_get_default_path (void)
{
  return g_build_filename (g_get_user_data_dir (), "bitlens", "bitlens.db", NULL);
}

/**
 * bl_store_open:
 * @path: (nullable): database file, ":memory:" for a private in-memory database, or
 *   %NULL for bl_store_get_default_path()
 * @error: return location for a #GError
 *
 * Opens (creating the file and its directory when needed) the store, enables foreign
 * keys, WAL mode and a busy timeout, brings the schema up to %BL_STORE_SCHEMA_VERSION
 * (refusing a newer one), and marks the runs of dead writers as 'interrupted' (see
 * bl_store_get_n_recovered()). A #BlStore may be used from several threads; its
 * operations are serialized.
 *
 * Returns: (transfer full): the store, or %NULL with @error set (%BL_ERROR_STORE, or
 *   %G_IO_ERROR when the directory cannot be created)
 */
BlStore *
bl_store_open (const char  *path,
               GError     **error)
{
  g_autoptr(BlStore) self = NULL;
  int rc;

  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  self = g_object_new (BL_TYPE_STORE, NULL);
  self->path = path != NULL ? g_strdup (path) : bl_store_get_default_path ();
  self->in_memory = g_str_equal (self->path, ":memory:");

  if (!self->in_memory)
    {
      g_autofree char *dir = g_path_get_dirname (self->path);

      if (g_mkdir_with_parents (dir, 0700) != 0)
        {
          int saved_errno = errno;

          g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved_errno),
                       "%s: cannot create the directory: %s", dir, g_strerror (saved_errno));
          return NULL;
        }
    }

  rc = sqlite3_open_v2 (self->path, &self->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                        NULL);
  if (rc != SQLITE_OK)
    {
      set_sqlite_error (self, error, "open", rc);
      return NULL;
    }

  if (!configure_connection (self, error)
      || !migrate (self, error)
      || !recover_interrupted_runs (self, error))
    return NULL;

  return g_steal_pointer (&self);
}

/**
 * bl_store_get_path:
 * @self: a store
 *
 * Returns: the database path (or ":memory:")
 */
const char *
bl_store_get_path (BlStore *self)
{
  g_return_val_if_fail (BL_IS_STORE (self), NULL);

  return self->path;
}

/**
 * bl_store_get_n_recovered:
 * @self: a store
 *
 * Returns: how many runs bl_store_open() marked 'interrupted' because the process that
 *   was running them had died
 */
guint
bl_store_get_n_recovered (BlStore *self)
{
  g_return_val_if_fail (BL_IS_STORE (self), 0);

  return self->n_recovered;
}

static gboolean
upsert_model_and_dataset (BlStore            *self,
                          const BlRunRecord  *rec,
                          GError            **error)
{
  g_autoptr(sqlite3_stmt) model = NULL;
  g_autoptr(sqlite3_stmt) dataset = NULL;

  model = prepare (self,
                   "INSERT INTO models (fingerprint, path, name, architecture, n_params, "
                   "                    first_seen, last_seen) "
                   "VALUES (?1, ?2, ?3, ?4, ?5, " NOW_SQL ", " NOW_SQL ") "
                   "ON CONFLICT (fingerprint) DO UPDATE SET "
                   "  path = coalesce (excluded.path, path), "
                   "  name = coalesce (excluded.name, name), "
                   "  architecture = coalesce (excluded.architecture, architecture), "
                   "  n_params = coalesce (excluded.n_params, n_params), "
                   "  last_seen = excluded.last_seen",
                   "begin_run: record model", error);
  if (model == NULL)
    return FALSE;
  bind_text (model, 1, rec->model_fingerprint);
  bind_text (model, 2, rec->model_path);
  bind_text (model, 3, rec->model_name);
  bind_text (model, 4, rec->model_architecture);
  if (rec->model_n_params > 0)
    sqlite3_bind_int64 (model, 5, rec->model_n_params);
  if (!step_done (self, model, "begin_run: record model", error))
    return FALSE;

  dataset = prepare (self,
                     "INSERT INTO datasets (sha256, kind, name, path, first_seen, last_seen) "
                     "VALUES (?1, ?2, ?3, ?4, " NOW_SQL ", " NOW_SQL ") "
                     "ON CONFLICT (sha256, kind) DO UPDATE SET "
                     "  name = excluded.name, "
                     "  path = coalesce (excluded.path, path), "
                     "  last_seen = excluded.last_seen",
                     "begin_run: record dataset", error);
  if (dataset == NULL)
    return FALSE;
  bind_text (dataset, 1, rec->dataset_sha256);
  bind_text (dataset, 2, rec->dataset_kind);
  bind_text (dataset, 3, rec->dataset_name);
  bind_text (dataset, 4, rec->dataset_path);
  return step_done (self, dataset, "begin_run: record dataset", error);
}

static gint64
insert_run (BlStore            *self,
            const BlRunRecord  *rec,
            GError            **error)
{
  g_autoptr(sqlite3_stmt) stmt = NULL;

  stmt = prepare (self,
                  "INSERT INTO runs (started_at, status, model_fingerprint, dataset_sha256, "
                  "  dataset_kind, tokenizer_hash, protocol, ctx, stride, max_windows, "
                  "  n_windows, seed, backend, threads, plan_json, bitlens_version, host, "
                  "  owner_pid, owner_token) "
                  "VALUES (" NOW_SQL ", 'running', ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, "
                  "  ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
                  "begin_run: insert run", error);
  if (stmt == NULL)
    return 0;
  bind_text (stmt, 1, rec->model_fingerprint);
  bind_text (stmt, 2, rec->dataset_sha256);
  bind_text (stmt, 3, rec->dataset_kind);
  bind_text (stmt, 4, rec->tokenizer_hash);
  bind_text (stmt, 5, rec->protocol);
  sqlite3_bind_int (stmt, 6, rec->ctx);
  sqlite3_bind_int (stmt, 7, rec->stride);
  sqlite3_bind_int (stmt, 8, rec->max_windows);
  sqlite3_bind_int (stmt, 9, rec->n_windows);
  sqlite3_bind_int64 (stmt, 10, (gint64) rec->seed);
  bind_text (stmt, 11, rec->backend);
  if (rec->threads > 0)
    sqlite3_bind_int (stmt, 12, rec->threads);
  bind_text (stmt, 13, rec->plan_json);
  bind_text (stmt, 14, BITLENS_VERSION);
  bind_text (stmt, 15, g_get_host_name ());
  sqlite3_bind_int64 (stmt, 16, getpid ());
  bind_text (stmt, 17, self->owner_token);
  if (!step_done (self, stmt, "begin_run: insert run", error))
    return 0;
  return sqlite3_last_insert_rowid (self->db);
}

/**
 * bl_store_begin_run:
 * @self: a store
 * @rec: what to record; the fields marked required must be set
 * @error: return location for a #GError
 *
 * In one transaction: records (or refreshes) the model and the dataset, and inserts the
 * run with status 'running', the current time, this Bitlens version, host and pid.
 *
 * Returns: the new run's id (> 0), or 0 with @error set
 */
gint64
bl_store_begin_run (BlStore            *self,
                    const BlRunRecord  *rec,
                    GError            **error)
{
  g_autoptr(GMutexLocker) locker = NULL;
  gint64 id;

  g_return_val_if_fail (BL_IS_STORE (self), 0);
  g_return_val_if_fail (rec != NULL, 0);
  g_return_val_if_fail (rec->model_fingerprint != NULL, 0);
  g_return_val_if_fail (rec->dataset_sha256 != NULL, 0);
  g_return_val_if_fail (rec->dataset_name != NULL, 0);
  g_return_val_if_fail (rec->dataset_kind != NULL, 0);
  g_return_val_if_fail (rec->protocol != NULL, 0);
  g_return_val_if_fail (error == NULL || *error == NULL, 0);

  locker = g_mutex_locker_new (&self->lock);

  if (!ensure_owner_lock (self, error) || !begin_transaction (self, "begin_run", error))
    return 0;
  if (!upsert_model_and_dataset (self, rec, error)
      || (id = insert_run (self, rec, error)) == 0)
    {
      rollback (self);
      return 0;
    }
  if (!commit (self, "begin_run", error))
    return 0;
  return id;
}

/* Explains why an UPDATE or INSERT guarded by "status = 'running'" changed nothing. */
static gboolean
set_not_running_error (BlStore     *self,
                       gint64       run_id,
                       const char  *operation,
                       GError     **error)
{
  g_autoptr(sqlite3_stmt) stmt = NULL;
  g_autofree char *step = g_strdup_printf ("%s: look up run", operation);
  int rc;

  stmt = prepare (self, "SELECT status FROM runs WHERE id = ?1", step, error);
  if (stmt == NULL)
    return FALSE;
  sqlite3_bind_int64 (stmt, 1, run_id);
  rc = sqlite3_step (stmt);
  if (rc == SQLITE_DONE)
    g_set_error (error, BL_ERROR, BL_ERROR_NOT_FOUND, "%s: %s: there is no run %" G_GINT64_FORMAT,
                 self->path, operation, run_id);
  else if (rc == SQLITE_ROW)
    g_set_error (error, BL_ERROR, BL_ERROR_STORE,
                 "%s: %s: run %" G_GINT64_FORMAT " has already ended (status %s)",
                 self->path, operation, run_id, sqlite3_column_text (stmt, 0));
  else
    set_sqlite_error (self, error, step, rc);
  return FALSE;
}

/**
 * bl_store_add_window:
 * @self: a store
 * @run_id: a run begun with bl_store_begin_run() and not yet finished
 * @window_index: the window's index in file order (unique within the run)
 * @start: index of the window's first id in the id stream
 * @n_tokens: scored tokens of the window (> 0)
 * @sum_nll: Σ NLL over the window's scored tokens, nats
 * @error: return location for a #GError
 *
 * Records one evaluated window, in its own transaction, so that an interrupted run keeps
 * every window it finished.
 *
 * Returns: %TRUE on success; %FALSE with %BL_ERROR_NOT_FOUND when there is no such run, or
 *   %BL_ERROR_STORE when it has ended or the write fails
 */
gboolean
bl_store_add_window (BlStore  *self,
                     gint64    run_id,
                     int       window_index,
                     gint64    start,
                     gint64    n_tokens,
                     double    sum_nll,
                     GError  **error)
{
  g_autoptr(GMutexLocker) locker = NULL;
  g_autoptr(sqlite3_stmt) stmt = NULL;

  g_return_val_if_fail (BL_IS_STORE (self), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  locker = g_mutex_locker_new (&self->lock);

  if (!begin_transaction (self, "add_window", error))
    return FALSE;
  stmt = prepare (self,
                  "INSERT INTO run_windows (run_id, window_index, start, n_tokens, sum_nll) "
                  "SELECT ?1, ?2, ?3, ?4, ?5 "
                  "WHERE EXISTS (SELECT 1 FROM runs WHERE id = ?1 AND status = 'running')",
                  "add_window: insert window", error);
  if (stmt == NULL)
    {
      rollback (self);
      return FALSE;
    }
  sqlite3_bind_int64 (stmt, 1, run_id);
  sqlite3_bind_int (stmt, 2, window_index);
  sqlite3_bind_int64 (stmt, 3, start);
  sqlite3_bind_int64 (stmt, 4, n_tokens);
  bind_real (stmt, 5, sum_nll);
  if (!step_done (self, stmt, "add_window: insert window", error))
    {
      rollback (self);
      return FALSE;
    }
  if (sqlite3_changes (self->db) == 0)
    {
      set_not_running_error (self, run_id, "add_window", error);
      rollback (self);
      return FALSE;
    }
  return commit (self, "add_window", error);
}

/**
 * bl_store_finish_run:
 * @self: a store
 * @run_id: a running run
 * @status: "finished", "failed" or "cancelled"
 * @res: (nullable): the run's numbers; %NULL records none
 * @error: return location for a #GError
 *
 * Ends a run: sets its status, end time and results, in one transaction. A run ends once.
 *
 * Returns: %TRUE on success; %FALSE with %BL_ERROR_INVALID_ARGUMENT for another @status,
 *   %BL_ERROR_NOT_FOUND when there is no such run, %BL_ERROR_STORE when it has already
 *   ended or the write fails
 */
gboolean
bl_store_finish_run (BlStore            *self,
                     gint64              run_id,
                     const char         *status,
                     const BlRunResult  *res,
                     GError            **error)
{
  g_autoptr(GMutexLocker) locker = NULL;
  g_autoptr(sqlite3_stmt) stmt = NULL;

  g_return_val_if_fail (BL_IS_STORE (self), FALSE);
  g_return_val_if_fail (status != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (!g_str_equal (status, "finished") && !g_str_equal (status, "failed")
      && !g_str_equal (status, "cancelled"))
    {
      g_set_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT,
                   "a run ends as \"finished\", \"failed\" or \"cancelled\", not \"%s\"", status);
      return FALSE;
    }

  locker = g_mutex_locker_new (&self->lock);

  if (!begin_transaction (self, "finish_run", error))
    return FALSE;
  stmt = prepare (self,
                  "UPDATE runs SET status = ?2, finished_at = " NOW_SQL ", "
                  "  n_windows_done = ?3, n_tokens = ?4, mean_nll = ?5, ppl = ?6, "
                  "  ppl_ci_low = ?7, ppl_ci_high = ?8, wall_seconds = ?9, "
                  "  tokens_per_second = ?10, message = ?11 "
                  "WHERE id = ?1 AND status = 'running'",
                  "finish_run: update run", error);
  if (stmt == NULL)
    {
      rollback (self);
      return FALSE;
    }
  sqlite3_bind_int64 (stmt, 1, run_id);
  bind_text (stmt, 2, status);
  if (res != NULL)
    {
      sqlite3_bind_int (stmt, 3, res->n_windows_done);
      sqlite3_bind_int64 (stmt, 4, res->n_tokens);
      bind_real (stmt, 5, res->mean_nll);
      bind_real (stmt, 6, res->ppl);
      bind_real (stmt, 7, res->ppl_ci_low);
      bind_real (stmt, 8, res->ppl_ci_high);
      bind_real (stmt, 9, res->wall_seconds);
      bind_real (stmt, 10, res->tokens_per_second);
      bind_text (stmt, 11, res->message);
    }
  if (!step_done (self, stmt, "finish_run: update run", error))
    {
      rollback (self);
      return FALSE;
    }
  if (sqlite3_changes (self->db) == 0)
    {
      set_not_running_error (self, run_id, "finish_run", error);
      rollback (self);
      return FALSE;
    }
  return commit (self, "finish_run", error);
}

/* Columns of RUN_SELECT, in order. */
enum
{
  COL_ID, COL_STARTED_AT, COL_FINISHED_AT, COL_STATUS,
  COL_MODEL_FINGERPRINT, COL_MODEL_PATH, COL_MODEL_NAME, COL_MODEL_ARCHITECTURE,
  COL_MODEL_N_PARAMS,
  COL_DATASET_SHA256, COL_DATASET_NAME, COL_DATASET_PATH, COL_DATASET_KIND,
  COL_TOKENIZER_HASH, COL_PROTOCOL, COL_CTX, COL_STRIDE, COL_MAX_WINDOWS, COL_N_WINDOWS,
  COL_SEED, COL_BACKEND, COL_THREADS, COL_PLAN_JSON,
  COL_N_WINDOWS_DONE, COL_N_TOKENS, COL_MEAN_NLL, COL_PPL, COL_PPL_CI_LOW, COL_PPL_CI_HIGH,
  COL_WALL_SECONDS, COL_TOKENS_PER_SECOND, COL_MESSAGE,
  COL_BITLENS_VERSION, COL_HOST, COL_OWNER_PID,
};

/* A run that did not finish has no n_windows_done; its stored windows say how far it got. */
#define RUN_SELECT \
  "SELECT r.id, r.started_at, r.finished_at, r.status, " \
  "  r.model_fingerprint, m.path, m.name, m.architecture, m.n_params, " \
  "  r.dataset_sha256, d.name, d.path, r.dataset_kind, " \
  "  r.tokenizer_hash, r.protocol, r.ctx, r.stride, r.max_windows, r.n_windows, " \
  "  r.seed, r.backend, r.threads, r.plan_json, " \
  "  coalesce (r.n_windows_done, " \
  "            (SELECT count (*) FROM run_windows w WHERE w.run_id = r.id)), " \
  "  r.n_tokens, r.mean_nll, r.ppl, r.ppl_ci_low, r.ppl_ci_high, " \
  "  r.wall_seconds, r.tokens_per_second, r.message, " \
  "  r.bitlens_version, r.host, r.owner_pid " \
  "FROM runs r " \
  "JOIN models m ON m.fingerprint = r.model_fingerprint " \
  "JOIN datasets d ON d.sha256 = r.dataset_sha256 AND d.kind = r.dataset_kind "

static BlStoredRun *
stored_run_from_row (sqlite3_stmt *stmt)
{
  BlStoredRun *run = g_new0 (BlStoredRun, 1);

  run->id = sqlite3_column_int64 (stmt, COL_ID);
  run->started_at = column_text (stmt, COL_STARTED_AT);
  run->finished_at = column_text (stmt, COL_FINISHED_AT);
  run->status = column_text (stmt, COL_STATUS);
  run->model_fingerprint = column_text (stmt, COL_MODEL_FINGERPRINT);
  run->model_path = column_text (stmt, COL_MODEL_PATH);
  run->model_name = column_text (stmt, COL_MODEL_NAME);
  run->model_architecture = column_text (stmt, COL_MODEL_ARCHITECTURE);
  run->model_n_params = sqlite3_column_int64 (stmt, COL_MODEL_N_PARAMS);
  run->dataset_sha256 = column_text (stmt, COL_DATASET_SHA256);
  run->dataset_name = column_text (stmt, COL_DATASET_NAME);
  run->dataset_path = column_text (stmt, COL_DATASET_PATH);
  run->dataset_kind = column_text (stmt, COL_DATASET_KIND);
  run->tokenizer_hash = column_text (stmt, COL_TOKENIZER_HASH);
  run->protocol = column_text (stmt, COL_PROTOCOL);
  run->ctx = sqlite3_column_int (stmt, COL_CTX);
  run->stride = sqlite3_column_int (stmt, COL_STRIDE);
  run->max_windows = sqlite3_column_int (stmt, COL_MAX_WINDOWS);
  run->n_windows = sqlite3_column_int (stmt, COL_N_WINDOWS);
  run->seed = (guint64) sqlite3_column_int64 (stmt, COL_SEED);
  run->backend = column_text (stmt, COL_BACKEND);
  run->threads = sqlite3_column_int (stmt, COL_THREADS);
  run->plan_json = column_text (stmt, COL_PLAN_JSON);
  run->n_windows_done = sqlite3_column_int (stmt, COL_N_WINDOWS_DONE);
  run->n_tokens = sqlite3_column_int64 (stmt, COL_N_TOKENS);
  run->mean_nll = column_real (stmt, COL_MEAN_NLL);
  run->ppl = column_real (stmt, COL_PPL);
  run->ppl_ci_low = column_real (stmt, COL_PPL_CI_LOW);
  run->ppl_ci_high = column_real (stmt, COL_PPL_CI_HIGH);
  run->wall_seconds = column_real (stmt, COL_WALL_SECONDS);
  run->tokens_per_second = column_real (stmt, COL_TOKENS_PER_SECOND);
  run->message = column_text (stmt, COL_MESSAGE);
  run->bitlens_version = column_text (stmt, COL_BITLENS_VERSION);
  run->host = column_text (stmt, COL_HOST);
  run->owner_pid = sqlite3_column_int64 (stmt, COL_OWNER_PID);
  return run;
}

/**
 * bl_store_list_runs:
 * @self: a store
 * @model_fingerprint: (nullable): only this model's runs, or %NULL for all
 * @error: return location for a #GError
 *
 * Returns: (transfer full) (element-type BlStoredRun): the runs, oldest first (by id),
 *   or %NULL with @error set
 */
GPtrArray *
bl_store_list_runs (BlStore     *self,
                    const char  *model_fingerprint,
                    GError     **error)
{
  g_autoptr(GMutexLocker) locker = NULL;
  g_autoptr(sqlite3_stmt) stmt = NULL;
  g_autoptr(GPtrArray) runs = NULL;
  int rc;

  g_return_val_if_fail (BL_IS_STORE (self), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  locker = g_mutex_locker_new (&self->lock);

  stmt = prepare (self,
                  RUN_SELECT "WHERE ?1 IS NULL OR r.model_fingerprint = ?1 ORDER BY r.id",
                  "list_runs", error);
  if (stmt == NULL)
    return NULL;
  bind_text (stmt, 1, model_fingerprint);

  runs = g_ptr_array_new_with_free_func ((GDestroyNotify) bl_stored_run_free);
  while ((rc = sqlite3_step (stmt)) == SQLITE_ROW)
    g_ptr_array_add (runs, stored_run_from_row (stmt));
  if (rc != SQLITE_DONE)
    {
      set_sqlite_error (self, error, "list_runs", rc);
      return NULL;
    }
  return g_steal_pointer (&runs);
}

/**
 * bl_store_get_run:
 * @self: a store
 * @run_id: a run id
 * @error: return location for a #GError
 *
 * Returns: (transfer full): the run, or %NULL with @error set (%BL_ERROR_NOT_FOUND when
 *   there is no such run)
 */
BlStoredRun *
bl_store_get_run (BlStore  *self,
                  gint64    run_id,
                  GError  **error)
{
  g_autoptr(GMutexLocker) locker = NULL;
  g_autoptr(sqlite3_stmt) stmt = NULL;
  int rc;

  g_return_val_if_fail (BL_IS_STORE (self), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  locker = g_mutex_locker_new (&self->lock);

  stmt = prepare (self, RUN_SELECT "WHERE r.id = ?1", "get_run", error);
  if (stmt == NULL)
    return NULL;
  sqlite3_bind_int64 (stmt, 1, run_id);
  rc = sqlite3_step (stmt);
  if (rc == SQLITE_ROW)
    return stored_run_from_row (stmt);
  if (rc == SQLITE_DONE)
    g_set_error (error, BL_ERROR, BL_ERROR_NOT_FOUND, "%s: get_run: there is no run %"
                 G_GINT64_FORMAT, self->path, run_id);
  else
    set_sqlite_error (self, error, "get_run", rc);
  return NULL;
}

/**
 * bl_store_list_windows:
 * @self: a store
 * @run_id: a run id
 * @error: return location for a #GError
 *
 * Returns: (transfer full) (element-type BlStoredWindow): the run's stored windows by
 *   window index, or %NULL with @error set (%BL_ERROR_NOT_FOUND when there is no such run)
 */
GArray *
bl_store_list_windows (BlStore  *self,
                       gint64    run_id,
                       GError  **error)
{
  g_autoptr(GMutexLocker) locker = NULL;
  g_autoptr(sqlite3_stmt) exists = NULL;
  g_autoptr(sqlite3_stmt) stmt = NULL;
  g_autoptr(GArray) windows = NULL;
  int rc;

  g_return_val_if_fail (BL_IS_STORE (self), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  locker = g_mutex_locker_new (&self->lock);

  exists = prepare (self, "SELECT 1 FROM runs WHERE id = ?1", "list_windows: look up run",
                    error);
  if (exists == NULL)
    return NULL;
  sqlite3_bind_int64 (exists, 1, run_id);
  rc = sqlite3_step (exists);
  if (rc == SQLITE_DONE)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_NOT_FOUND,
                   "%s: list_windows: there is no run %" G_GINT64_FORMAT, self->path, run_id);
      return NULL;
    }
  if (rc != SQLITE_ROW)
    {
      set_sqlite_error (self, error, "list_windows: look up run", rc);
      return NULL;
    }

  stmt = prepare (self,
                  "SELECT window_index, start, n_tokens, sum_nll FROM run_windows "
                  "WHERE run_id = ?1 ORDER BY window_index",
                  "list_windows", error);
  if (stmt == NULL)
    return NULL;
  sqlite3_bind_int64 (stmt, 1, run_id);
  windows = g_array_new (FALSE, FALSE, sizeof (BlStoredWindow));
  while ((rc = sqlite3_step (stmt)) == SQLITE_ROW)
    {
      BlStoredWindow w = {
        .window_index = sqlite3_column_int (stmt, 0),
        .start = sqlite3_column_int64 (stmt, 1),
        .n_tokens = sqlite3_column_int64 (stmt, 2),
        .sum_nll = sqlite3_column_double (stmt, 3),
      };

      g_array_append_val (windows, w);
    }
  if (rc != SQLITE_DONE)
    {
      set_sqlite_error (self, error, "list_windows", rc);
      return NULL;
    }
  return g_steal_pointer (&windows);
}

/**
 * bl_stored_run_copy:
 * @run: a stored run
 *
 * Returns: (transfer full): a deep copy of @run
 */
BlStoredRun *
bl_stored_run_copy (const BlStoredRun *run)
{
  BlStoredRun *copy;

  g_return_val_if_fail (run != NULL, NULL);

  copy = g_memdup2 (run, sizeof *run);
  copy->started_at = g_strdup (run->started_at);
  copy->finished_at = g_strdup (run->finished_at);
  copy->status = g_strdup (run->status);
  copy->model_fingerprint = g_strdup (run->model_fingerprint);
  copy->model_path = g_strdup (run->model_path);
  copy->model_name = g_strdup (run->model_name);
  copy->model_architecture = g_strdup (run->model_architecture);
  copy->dataset_sha256 = g_strdup (run->dataset_sha256);
  copy->dataset_name = g_strdup (run->dataset_name);
  copy->dataset_path = g_strdup (run->dataset_path);
  copy->dataset_kind = g_strdup (run->dataset_kind);
  copy->tokenizer_hash = g_strdup (run->tokenizer_hash);
  copy->protocol = g_strdup (run->protocol);
  copy->backend = g_strdup (run->backend);
  copy->plan_json = g_strdup (run->plan_json);
  copy->message = g_strdup (run->message);
  copy->bitlens_version = g_strdup (run->bitlens_version);
  copy->host = g_strdup (run->host);
  return copy;
}

/**
 * bl_stored_run_free:
 * @run: (nullable): a stored run
 */
void
bl_stored_run_free (BlStoredRun *run)
{
  if (run == NULL)
    return;
  g_free (run->started_at);
  g_free (run->finished_at);
  g_free (run->status);
  g_free (run->model_fingerprint);
  g_free (run->model_path);
  g_free (run->model_name);
  g_free (run->model_architecture);
  g_free (run->dataset_sha256);
  g_free (run->dataset_name);
  g_free (run->dataset_path);
  g_free (run->dataset_kind);
  g_free (run->tokenizer_hash);
  g_free (run->protocol);
  g_free (run->backend);
  g_free (run->plan_json);
  g_free (run->message);
  g_free (run->bitlens_version);
  g_free (run->host);
  g_free (run);
}

/**
 * bl_store_set_fault: (skip)
 * @self: a store
 * @operation: "begin_run", "add_window" or "finish_run"
 * @fault: what happens at the next @operation, once, after its statements ran and before
 *   its COMMIT
 *
 * Test hook (bl-store-private.h): injects a failure inside a transaction.
 */
void
bl_store_set_fault (BlStore      *self,
                    const char   *operation,
                    BlStoreFault  fault)
{
  g_autoptr(GMutexLocker) locker = NULL;

  g_return_if_fail (BL_IS_STORE (self));

  locker = g_mutex_locker_new (&self->lock);
  g_free (self->fault_operation);
  self->fault_operation = g_strdup (operation);
  self->fault = fault;
}

/**
 * bl_store_get_db: (skip)
 * @self: a store
 *
 * Test hook (bl-store-private.h): the connection, for tests that add triggers.
 *
 * Returns: (transfer none): the SQLite connection
 */
sqlite3 *
bl_store_get_db (BlStore *self)
{
  g_return_val_if_fail (BL_IS_STORE (self), NULL);

  return self->db;
}
