/* bl-store-private.h: the store's schema migrations and its test hooks
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <sqlite3.h>

#include "bl-store.h"

G_BEGIN_DECLS

/* PRAGMA application_id of a Bitlens store ("BLNS"), set by the first migration, so that
 * another program's SQLite file is never taken for (or migrated into) a store. */
#define BL_STORE_APPLICATION_ID 0x424C4E53

/* The schema, as an ordered list of migrations: migration i (0-based) takes a database
 * from user_version i to i + 1. Applied migrations are never edited; a schema change is a
 * new entry at the end. */
extern const char * const bl_store_migrations[];
extern const guint bl_store_n_migrations;

/**
 * BlStoreFault:
 * @BL_STORE_FAULT_NONE: no fault
 * @BL_STORE_FAULT_ERROR: the operation fails as a failed SQLite write would, after its
 *   statements ran and before COMMIT, so the transaction must roll back
 * @BL_STORE_FAULT_KILL: the process sends itself SIGKILL at that point, inside the open
 *   transaction (for crash tests)
 *
 * Test-only fault injection; see bl_store_set_fault().
 */
typedef enum
{
  BL_STORE_FAULT_NONE,
  BL_STORE_FAULT_ERROR,
  BL_STORE_FAULT_KILL,
} BlStoreFault;

void     bl_store_set_fault (BlStore      *self,
                             const char   *operation,
                             BlStoreFault  fault);
sqlite3 *bl_store_get_db    (BlStore      *self);

G_END_DECLS
