/* bl-store-rows-private.h: small SQLite helpers for the result tables outside bl-store.c
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * The zero-shot results (bl-zeroshot.c), the sensitivity cache (bl-sensitivity.c) and the
 * estimator's samples write their own tables through the store's connection
 * (bl_store_get_db()). These helpers turn SQLite failures into %BL_ERROR_STORE errors that
 * name the database and the step, as bl-store.c's own messages do.
 */
#pragma once

#include <sqlite3.h>

#include "bl-model.h"
#include "bl-store.h"

G_BEGIN_DECLS

G_DEFINE_AUTOPTR_CLEANUP_FUNC (sqlite3_stmt, sqlite3_finalize)

/* The store's timestamp format: UTC, ISO 8601 with milliseconds. */
#define BL_STORE_NOW_SQL "strftime ('%Y-%m-%dT%H:%M:%fZ', 'now')"

sqlite3_stmt *bl_store_rows_prepare      (BlStore      *store,
                                          const char   *sql,
                                          const char   *step,
                                          GError      **error);
gboolean      bl_store_rows_step_done    (BlStore      *store,
                                          sqlite3_stmt *stmt,
                                          const char   *step,
                                          GError      **error);
gboolean      bl_store_rows_exec         (BlStore      *store,
                                          const char   *sql,
                                          const char   *step,
                                          GError      **error);
void          bl_store_rows_rollback     (BlStore      *store);
void          bl_store_rows_bind_text    (sqlite3_stmt *stmt,
                                          int           index,
                                          const char   *value);
void          bl_store_rows_bind_real    (sqlite3_stmt *stmt,
                                          int           index,
                                          double        value);
double        bl_store_rows_column_real  (sqlite3_stmt *stmt,
                                          int           index);
gint64        bl_store_rows_last_id      (BlStore      *store);
gboolean      bl_store_rows_upsert_model (BlStore      *store,
                                          BlModel      *model,
                                          GError      **error);

G_END_DECLS
