/* bl-store-rows.c: small SQLite helpers for the result tables outside bl-store.c
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "bl-store-rows-private.h"

#include <math.h>

#include "bl-error.h"
#include "bl-store-private.h"

static gboolean
set_error (BlStore     *store,
           const char  *step,
           GError     **error)
{
  g_set_error (error, BL_ERROR, BL_ERROR_STORE, "%s: %s: %s", bl_store_get_path (store), step,
               sqlite3_errmsg (bl_store_get_db (store)));
  return FALSE;
}

sqlite3_stmt *
bl_store_rows_prepare (BlStore     *store,
                       const char  *sql,
                       const char  *step,
                       GError     **error)
{
  sqlite3_stmt *stmt = NULL;

  if (sqlite3_prepare_v2 (bl_store_get_db (store), sql, -1, &stmt, NULL) != SQLITE_OK)
    {
      set_error (store, step, error);
      sqlite3_finalize (stmt);
      return NULL;
    }
  return stmt;
}

/* Steps a statement that returns no row. */
gboolean
bl_store_rows_step_done (BlStore       *store,
                         sqlite3_stmt  *stmt,
                         const char    *step,
                         GError       **error)
{
  if (sqlite3_step (stmt) != SQLITE_DONE)
    return set_error (store, step, error);
  return TRUE;
}

gboolean
bl_store_rows_exec (BlStore     *store,
                    const char  *sql,
                    const char  *step,
                    GError     **error)
{
  if (sqlite3_exec (bl_store_get_db (store), sql, NULL, NULL, NULL) != SQLITE_OK)
    return set_error (store, step, error);
  return TRUE;
}

/* After a failed statement SQLite may have rolled back already (SQLITE_FULL, IOERR, BUSY,
 * NOMEM); a second ROLLBACK would only add a misleading error. */
void
bl_store_rows_rollback (BlStore *store)
{
  sqlite3 *db = bl_store_get_db (store);

  if (!sqlite3_get_autocommit (db))
    sqlite3_exec (db, "ROLLBACK", NULL, NULL, NULL);
}

void
bl_store_rows_bind_text (sqlite3_stmt *stmt,
                         int           index,
                         const char   *value)
{
  if (value != NULL)
    sqlite3_bind_text (stmt, index, value, -1, SQLITE_TRANSIENT);
  else
    sqlite3_bind_null (stmt, index);
}

/* NaN and ±Inf (a number without a population, an exact reconstruction) are stored as NULL. */
void
bl_store_rows_bind_real (sqlite3_stmt *stmt,
                         int           index,
                         double        value)
{
  if (isfinite (value))
    sqlite3_bind_double (stmt, index, value);
  else
    sqlite3_bind_null (stmt, index);
}

double
bl_store_rows_column_real (sqlite3_stmt *stmt,
                           int           index)
{
  if (sqlite3_column_type (stmt, index) == SQLITE_NULL)
    return NAN;
  return sqlite3_column_double (stmt, index);
}

/* The rowid of the last INSERT on the store's connection. */
gint64
bl_store_rows_last_id (BlStore *store)
{
  return sqlite3_last_insert_rowid (bl_store_get_db (store));
}

/* Records (or refreshes) the model row every result references, as bl-store.c does for
 * runs. Call it inside the caller's transaction. */
gboolean
bl_store_rows_upsert_model (BlStore  *store,
                            BlModel  *model,
                            GError  **error)
{
  g_autoptr(sqlite3_stmt) stmt = NULL;
  g_autofree char *name = g_path_get_basename (bl_model_get_path (model));

  stmt = bl_store_rows_prepare (store,
                                "INSERT INTO models (fingerprint, path, name, architecture, "
                                "  n_params, first_seen, last_seen) "
                                "VALUES (?1, ?2, ?3, ?4, ?5, " BL_STORE_NOW_SQL ", "
                                BL_STORE_NOW_SQL ") "
                                "ON CONFLICT (fingerprint) DO UPDATE SET "
                                "  path = coalesce (excluded.path, path), "
                                "  name = coalesce (excluded.name, name), "
                                "  architecture = coalesce (excluded.architecture, architecture), "
                                "  n_params = coalesce (excluded.n_params, n_params), "
                                "  last_seen = excluded.last_seen",
                                "record model", error);
  if (stmt == NULL)
    return FALSE;
  bl_store_rows_bind_text (stmt, 1, bl_model_get_fingerprint (model));
  bl_store_rows_bind_text (stmt, 2, bl_model_get_path (model));
  bl_store_rows_bind_text (stmt, 3, name);
  bl_store_rows_bind_text (stmt, 4, bl_model_get_config (model)->model_type);
  sqlite3_bind_int64 (stmt, 5, bl_model_get_n_params (model));
  return bl_store_rows_step_done (store, stmt, "record model", error);
}
