/* bl-sweep.c: sweep points, their SQLite shard files, the resumable runner and the merge
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * A shard file is its own small SQLite database (not the main store: shards are written by
 * independent processes on possibly different machines and merged afterwards). Its schema:
 *
 *   sweep   one row: the configuration JSON, the model fingerprint, when and by which
 *           Bitlens version the file was started
 *   points  one row per measured point, written in its own transaction once measured
 *
 * The file is opened with synchronous=FULL, so a point that the runner reported as stored
 * survives a kill or a power loss, and a point being measured when the process died is
 * simply absent and measured again on the next run.
 */
#include "bl-sweep.h"

#include <math.h>
#include <sqlite3.h>
#include <string.h>

#include "bl-error.h"

/* PRAGMA application_id of a sweep file ("BLSW") */
#define SWEEP_APPLICATION_ID 0x424C5357
#define SWEEP_SCHEMA_VERSION 1

struct _BlSweep
{
  sqlite3 *db;
  char *path;
  char *config;
  char *fingerprint;
};

G_DEFINE_AUTOPTR_CLEANUP_FUNC (sqlite3_stmt, sqlite3_finalize)

void
bl_sweep_point_free (BlSweepPoint *point)
{
  if (point == NULL)
    return;
  g_free (point->key);
  g_free (point->kind);
  g_free (point->label);
  g_free (point->plan_json);
  g_free (point->shard);
  g_free (point);
}

static BlSweepPoint *
point_new (void)
{
  BlSweepPoint *p = g_new0 (BlSweepPoint, 1);

  p->kl = p->kl_ci_low = p->kl_ci_high = p->top1 = p->nll = p->base_nll = NAN;
  p->predicted_loss = NAN;
  return p;
}

/* ------------------------------------------------------------------------------------------ */
/* points */

static BlSweepPoint *
make_point (BlAllocProblem  *problem,
            const guint     *choice,
            double           total_params,
            int              index,
            char            *key,
            const char      *kind,
            char            *label,
            double           target_bits,
            GError         **error)
{
  g_autoptr(BlSweepPoint) p = point_new ();
  double costs[BL_ALLOC_MAX_BUDGETS];

  p->key = key;
  p->label = label;
  p->kind = g_strdup (kind);
  p->index = index;
  bl_alloc_problem_evaluate (problem, choice, &p->predicted_loss, costs);
  p->total_bits = costs[0];
  p->bits_per_weight = costs[0] / total_params;
  p->target_bits = isnan (target_bits) ? p->bits_per_weight : target_bits;
  p->plan_json = bl_alloc_problem_to_plan_json (problem, choice, error);
  if (p->plan_json == NULL)
    return NULL;
  return g_steal_pointer (&p);
}

/**
 * bl_sweep_make_points:
 * @problem: items are the layers (named as the engine names them), options are format specs
 *   or "none", budget 0 is each option's total bits (bl_format_spec_bits_for_shape() times the
 *   layer's weights)
 * @params: (array): the parameter count of every item
 * @objective: the name of the objective the losses come from, for the keys
 * @budgets: (array length=n_budgets): average bits per weight to allocate for
 * @n_budgets: their number
 * @error: return location for an error
 *
 * The sweep's points in order: for each budget b the optimum of @problem under
 * floor(b·Σ params) bits (bl_alloc_problem_solve_dp()), then one uniform plan for every
 * option index at which all layers offer the same format.
 *
 * Returns: (transfer full) (element-type BlSweepPoint) (nullable): the points
 */
GPtrArray *
bl_sweep_make_points (BlAllocProblem  *problem,
                      const double    *params,
                      const char      *objective,
                      const double    *budgets,
                      guint            n_budgets,
                      GError         **error)
{
  g_autoptr(GPtrArray) points = g_ptr_array_new_with_free_func ((GDestroyNotify) bl_sweep_point_free);
  guint n = bl_alloc_problem_get_n_items (problem);
  double total = 0;

  g_return_val_if_fail (n > 0, NULL);

  for (guint i = 0; i < n; i++)
    total += params[i];
  for (guint b = 0; b < n_budgets; b++)
    {
      g_autoptr(BlAllocSolution) sol = bl_alloc_problem_solve_dp (problem, floor (budgets[b] * total), error);
      BlSweepPoint *p;

      if (sol == NULL)
        {
          g_prefix_error (error, "budget %g bits/weight: ", budgets[b]);
          return NULL;
        }
      p = make_point (problem, sol->choice, total, (int) points->len,
                      g_strdup_printf ("alloc:%s:%g", objective, budgets[b]), "allocated",
                      g_strdup_printf ("%s @ %g", objective, budgets[b]), budgets[b], error);
      if (p == NULL)
        return NULL;
      g_ptr_array_add (points, p);
    }
  for (guint o = 0; o < bl_alloc_problem_get_n_options (problem, 0); o++)
    {
      const char *label = bl_alloc_problem_get_option_label (problem, 0, o);
      g_autofree guint *choice = g_new0 (guint, n);
      gboolean uniform = TRUE;
      BlSweepPoint *p;

      for (guint i = 0; i < n && uniform; i++)
        {
          uniform = FALSE;
          for (guint k = 0; k < bl_alloc_problem_get_n_options (problem, i); k++)
            if (g_str_equal (bl_alloc_problem_get_option_label (problem, i, k), label))
              {
                choice[i] = k;
                uniform = TRUE;
                break;
              }
        }
      if (!uniform)
        continue;
      p = make_point (problem, choice, total, (int) points->len, g_strdup_printf ("uniform:%s", label),
                      "uniform", g_strdup_printf ("uniform %s", label), NAN, error);
      if (p == NULL)
        return NULL;
      g_ptr_array_add (points, p);
    }
  return g_steal_pointer (&points);
}

/**
 * bl_sweep_parse_shard:
 * @str: "i/n" with 0 ≤ i < n
 * @out_index: (out): i
 * @out_count: (out): n
 * @error: return location for an error
 *
 * Returns: whether @str is a shard
 */
gboolean
bl_sweep_parse_shard (const char  *str,
                      guint       *out_index,
                      guint       *out_count,
                      GError     **error)
{
  guint64 i, n;
  char *end;

  if (str == NULL || !g_ascii_isdigit (*str))
    goto bad;
  i = g_ascii_strtoull (str, &end, 10);
  if (*end != '/' || !g_ascii_isdigit (end[1]))
    goto bad;
  n = g_ascii_strtoull (end + 1, &end, 10);
  if (*end != '\0' || n == 0 || i >= n || n > G_MAXUINT)
    goto bad;
  *out_index = (guint) i;
  *out_count = (guint) n;
  return TRUE;

bad:
  g_set_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT,
               "shard “%s” is not i/n with 0 ≤ i < n (e.g. 3/64)", str != NULL ? str : "");
  return FALSE;
}

/* ------------------------------------------------------------------------------------------ */
/* the file */

static gboolean
db_error (BlSweep     *self,
          const char  *step,
          GError     **error)
{
  g_set_error (error, BL_ERROR, BL_ERROR_STORE, "%s: %s: %s", self->path, step, sqlite3_errmsg (self->db));
  return FALSE;
}

static gboolean
exec (BlSweep     *self,
      const char  *sql,
      const char  *step,
      GError     **error)
{
  return sqlite3_exec (self->db, sql, NULL, NULL, NULL) == SQLITE_OK || db_error (self, step, error);
}

static const char schema[] =
  "CREATE TABLE IF NOT EXISTS sweep ("
  "  id INTEGER PRIMARY KEY CHECK (id = 1),"
  "  config TEXT NOT NULL CHECK (json_valid (config)),"
  "  model_fingerprint TEXT NOT NULL,"
  "  created_at TEXT NOT NULL,"
  "  bitlens_version TEXT NOT NULL"
  ");"
  "CREATE TABLE IF NOT EXISTS points ("
  "  key TEXT PRIMARY KEY,"
  "  idx INTEGER NOT NULL,"
  "  kind TEXT NOT NULL,"
  "  label TEXT NOT NULL,"
  "  target_bits REAL,"
  "  bits_per_weight REAL NOT NULL,"
  "  total_bits REAL NOT NULL,"
  "  predicted_loss REAL,"
  "  plan_json TEXT NOT NULL CHECK (json_valid (plan_json)),"
  "  kl REAL, kl_ci_low REAL, kl_ci_high REAL, top1 REAL, nll REAL, base_nll REAL,"
  "  n_tokens INTEGER,"
  "  wall_seconds REAL,"
  "  shard TEXT,"
  "  finished_at TEXT NOT NULL"
  ");";

static BlSweep *
open_db (const char  *path,
         gboolean     create,
         GError     **error)
{
  g_autoptr(BlSweep) self = g_new0 (BlSweep, 1);
  g_autoptr(sqlite3_stmt) st = NULL;
  int app_id = 0, version = 0;

  self->path = g_strdup (path);
  if (sqlite3_open_v2 (path, &self->db, create ? SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE
                                              : SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK)
    {
      db_error (self, "open", error);
      return NULL;
    }
  sqlite3_busy_timeout (self->db, 10000);
  if (sqlite3_prepare_v2 (self->db, "PRAGMA application_id", -1, &st, NULL) != SQLITE_OK
      || sqlite3_step (st) != SQLITE_ROW)
    {
      db_error (self, "reading the application id", error);
      return NULL;
    }
  app_id = sqlite3_column_int (st, 0);
  g_clear_pointer (&st, sqlite3_finalize);
  if (sqlite3_prepare_v2 (self->db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK
      || sqlite3_step (st) != SQLITE_ROW)
    {
      db_error (self, "reading the schema version", error);
      return NULL;
    }
  version = sqlite3_column_int (st, 0);
  g_clear_pointer (&st, sqlite3_finalize);
  if (app_id == 0 && version == 0 && create)
    {
      g_autofree char *pragma = g_strdup_printf ("PRAGMA application_id = %d; PRAGMA user_version = %d;",
                                                 SWEEP_APPLICATION_ID, SWEEP_SCHEMA_VERSION);

      if (!exec (self, pragma, "initialising", error) || !exec (self, schema, "creating the schema", error))
        return NULL;
    }
  else if (app_id != SWEEP_APPLICATION_ID || version != SWEEP_SCHEMA_VERSION)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_STORE,
                   "%s is not a Bitlens sweep file of schema %d (application id 0x%08x, version %d)",
                   path, SWEEP_SCHEMA_VERSION, (guint) app_id, version);
      return NULL;
    }
  if (!exec (self, "PRAGMA synchronous = FULL", "setting synchronous", error))
    return NULL;
  return g_steal_pointer (&self);
}

static gboolean
read_meta (BlSweep  *self,
           GError  **error)
{
  g_autoptr(sqlite3_stmt) st = NULL;

  if (sqlite3_prepare_v2 (self->db, "SELECT config, model_fingerprint FROM sweep WHERE id = 1", -1,
                          &st, NULL) != SQLITE_OK)
    return db_error (self, "reading the sweep", error);
  if (sqlite3_step (st) != SQLITE_ROW)
    return TRUE;
  self->config = g_strdup ((const char *) sqlite3_column_text (st, 0));
  self->fingerprint = g_strdup ((const char *) sqlite3_column_text (st, 1));
  return TRUE;
}

/**
 * bl_sweep_open:
 * @path: the shard file (created when missing)
 * @config_json: the sweep's configuration: everything that decides its points and their
 *   measurement (menu, budgets, objective, texts, windows, seeds)
 * @model_fingerprint: the model's fingerprint
 * @error: return location for an error
 *
 * Opens a shard file for a sweep; an existing file must have been started for the same
 * configuration and model, so that a resumed or merged sweep never mixes two experiments.
 *
 * Returns: (transfer full) (nullable): the file
 */
BlSweep *
bl_sweep_open (const char  *path,
               const char  *config_json,
               const char  *model_fingerprint,
               GError     **error)
{
  g_autoptr(BlSweep) self = open_db (path, TRUE, error);

  if (self == NULL || !read_meta (self, error))
    return NULL;
  if (self->config == NULL)
    {
      g_autoptr(sqlite3_stmt) st = NULL;

      if (sqlite3_prepare_v2 (self->db, "INSERT INTO sweep (id, config, model_fingerprint, created_at, "
                              "bitlens_version) VALUES (1, ?, ?, strftime ('%Y-%m-%dT%H:%M:%fZ', 'now'), ?)",
                              -1, &st, NULL) != SQLITE_OK)
        {
          db_error (self, "starting the sweep", error);
          return NULL;
        }
      sqlite3_bind_text (st, 1, config_json, -1, SQLITE_TRANSIENT);
      sqlite3_bind_text (st, 2, model_fingerprint, -1, SQLITE_TRANSIENT);
      sqlite3_bind_text (st, 3, BITLENS_VERSION, -1, SQLITE_STATIC);
      if (sqlite3_step (st) != SQLITE_DONE)
        {
          db_error (self, "starting the sweep", error);
          return NULL;
        }
      self->config = g_strdup (config_json);
      self->fingerprint = g_strdup (model_fingerprint);
    }
  else if (!g_str_equal (self->config, config_json) || !g_str_equal (self->fingerprint, model_fingerprint))
    {
      g_set_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT,
                   "%s belongs to another sweep (%s differs); use a new file or the same settings",
                   path, g_str_equal (self->fingerprint, model_fingerprint) ? "the configuration"
                                                                            : "the model");
      return NULL;
    }
  return g_steal_pointer (&self);
}

/**
 * bl_sweep_open_existing:
 * @path: a shard file
 * @error: return location for an error
 *
 * Returns: (transfer full) (nullable): the file, for reading
 */
BlSweep *
bl_sweep_open_existing (const char  *path,
                        GError     **error)
{
  g_autoptr(BlSweep) self = NULL;

  if (!g_file_test (path, G_FILE_TEST_IS_REGULAR))
    {
      g_set_error (error, BL_ERROR, BL_ERROR_NOT_FOUND, "%s: no such sweep file", path);
      return NULL;
    }
  self = open_db (path, FALSE, error);
  if (self == NULL || !read_meta (self, error))
    return NULL;
  if (self->config == NULL)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_STORE, "%s: the sweep was never started", path);
      return NULL;
    }
  return g_steal_pointer (&self);
}

void
bl_sweep_close (BlSweep *self)
{
  if (self == NULL)
    return;
  sqlite3_close (self->db);
  g_free (self->path);
  g_free (self->config);
  g_free (self->fingerprint);
  g_free (self);
}

const char *
bl_sweep_get_config (BlSweep *self)
{
  return self->config;
}

const char *
bl_sweep_get_model_fingerprint (BlSweep *self)
{
  return self->fingerprint;
}

/**
 * bl_sweep_has_point:
 * @self: a sweep file
 * @key: a point key
 * @error: return location for an error
 *
 * Returns: whether the file holds a measurement of @key (%FALSE with @error set on failure)
 */
gboolean
bl_sweep_has_point (BlSweep     *self,
                    const char  *key,
                    GError     **error)
{
  g_autoptr(sqlite3_stmt) st = NULL;
  int rc;

  if (sqlite3_prepare_v2 (self->db, "SELECT 1 FROM points WHERE key = ?", -1, &st, NULL) != SQLITE_OK)
    return db_error (self, "looking up a point", error);
  sqlite3_bind_text (st, 1, key, -1, SQLITE_TRANSIENT);
  rc = sqlite3_step (st);
  if (rc != SQLITE_ROW && rc != SQLITE_DONE)
    return db_error (self, "looking up a point", error);
  return rc == SQLITE_ROW;
}

static void
bind_real (sqlite3_stmt *st,
           int           i,
           double        v)
{
  if (isfinite (v))
    sqlite3_bind_double (st, i, v);
  else
    sqlite3_bind_null (st, i);
}

static double
column_real (sqlite3_stmt *st,
             int           i)
{
  return sqlite3_column_type (st, i) == SQLITE_NULL ? NAN : sqlite3_column_double (st, i);
}

/**
 * bl_sweep_add_point:
 * @self: a sweep file
 * @point: a measured point
 * @error: return location for an error
 *
 * Stores @point in one transaction.
 *
 * Returns: whether it was stored; a point already stored is an error
 */
gboolean
bl_sweep_add_point (BlSweep             *self,
                    const BlSweepPoint  *point,
                    GError             **error)
{
  g_autoptr(sqlite3_stmt) st = NULL;

  if (sqlite3_prepare_v2 (self->db,
                          "INSERT INTO points (key, idx, kind, label, target_bits, bits_per_weight, "
                          "total_bits, predicted_loss, plan_json, kl, kl_ci_low, kl_ci_high, top1, nll, "
                          "base_nll, n_tokens, wall_seconds, shard, finished_at) VALUES (?, ?, ?, ?, ?, ?, "
                          "?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, strftime ('%Y-%m-%dT%H:%M:%fZ', 'now'))",
                          -1, &st, NULL) != SQLITE_OK)
    return db_error (self, "storing a point", error);
  sqlite3_bind_text (st, 1, point->key, -1, SQLITE_TRANSIENT);
  sqlite3_bind_int (st, 2, point->index);
  sqlite3_bind_text (st, 3, point->kind, -1, SQLITE_TRANSIENT);
  sqlite3_bind_text (st, 4, point->label, -1, SQLITE_TRANSIENT);
  bind_real (st, 5, point->target_bits);
  bind_real (st, 6, point->bits_per_weight);
  bind_real (st, 7, point->total_bits);
  bind_real (st, 8, point->predicted_loss);
  sqlite3_bind_text (st, 9, point->plan_json, -1, SQLITE_TRANSIENT);
  bind_real (st, 10, point->kl);
  bind_real (st, 11, point->kl_ci_low);
  bind_real (st, 12, point->kl_ci_high);
  bind_real (st, 13, point->top1);
  bind_real (st, 14, point->nll);
  bind_real (st, 15, point->base_nll);
  sqlite3_bind_int64 (st, 16, point->n_tokens);
  bind_real (st, 17, point->wall_seconds);
  if (point->shard != NULL)
    sqlite3_bind_text (st, 18, point->shard, -1, SQLITE_TRANSIENT);
  else
    sqlite3_bind_null (st, 18);
  if (sqlite3_step (st) != SQLITE_DONE)
    {
      g_autofree char *step = g_strdup_printf ("storing point %s", point->key);

      return db_error (self, step, error);
    }
  return TRUE;
}

/**
 * bl_sweep_list_points:
 * @self: a sweep file
 * @error: return location for an error
 *
 * Returns: (transfer full) (element-type BlSweepPoint) (nullable): the stored points in sweep
 *   order
 */
GPtrArray *
bl_sweep_list_points (BlSweep  *self,
                      GError  **error)
{
  g_autoptr(sqlite3_stmt) st = NULL;
  g_autoptr(GPtrArray) out = g_ptr_array_new_with_free_func ((GDestroyNotify) bl_sweep_point_free);
  int rc;

  if (sqlite3_prepare_v2 (self->db,
                          "SELECT key, idx, kind, label, target_bits, bits_per_weight, total_bits, "
                          "predicted_loss, plan_json, kl, kl_ci_low, kl_ci_high, top1, nll, base_nll, "
                          "n_tokens, wall_seconds, shard FROM points ORDER BY idx", -1, &st, NULL) != SQLITE_OK)
    {
      db_error (self, "listing points", error);
      return NULL;
    }
  while ((rc = sqlite3_step (st)) == SQLITE_ROW)
    {
      BlSweepPoint *p = point_new ();

      p->key = g_strdup ((const char *) sqlite3_column_text (st, 0));
      p->index = sqlite3_column_int (st, 1);
      p->kind = g_strdup ((const char *) sqlite3_column_text (st, 2));
      p->label = g_strdup ((const char *) sqlite3_column_text (st, 3));
      p->target_bits = column_real (st, 4);
      p->bits_per_weight = column_real (st, 5);
      p->total_bits = column_real (st, 6);
      p->predicted_loss = column_real (st, 7);
      p->plan_json = g_strdup ((const char *) sqlite3_column_text (st, 8));
      p->kl = column_real (st, 9);
      p->kl_ci_low = column_real (st, 10);
      p->kl_ci_high = column_real (st, 11);
      p->top1 = column_real (st, 12);
      p->nll = column_real (st, 13);
      p->base_nll = column_real (st, 14);
      p->n_tokens = sqlite3_column_int64 (st, 15);
      p->wall_seconds = column_real (st, 16);
      p->shard = g_strdup ((const char *) sqlite3_column_text (st, 17));
      p->measured = TRUE;
      g_ptr_array_add (out, p);
    }
  if (rc != SQLITE_DONE)
    {
      db_error (self, "listing points", error);
      return NULL;
    }
  return g_steal_pointer (&out);
}

/**
 * bl_sweep_run:
 * @self: the shard file
 * @points: (element-type BlSweepPoint): the sweep's points (bl_sweep_make_points())
 * @shard_index: this shard, i
 * @shard_count: shards, n
 * @measure: measures one point
 * @measure_data: its data
 * @progress: (nullable): called after each point of the shard
 * @progress_data: its data
 * @cancellable: (nullable): a cancellable
 * @error: return location for an error
 *
 * Measures and stores every point with index ≡ i (mod n) that the file does not hold yet.
 *
 * Returns: whether every point of the shard is now stored
 */
gboolean
bl_sweep_run (BlSweep             *self,
              GPtrArray           *points,
              guint                shard_index,
              guint                shard_count,
              BlSweepMeasureFunc   measure,
              gpointer             measure_data,
              BlSweepProgressFunc  progress,
              gpointer             progress_data,
              GCancellable        *cancellable,
              GError             **error)
{
  guint total = 0, done = 0;
  g_autofree char *shard = g_strdup_printf ("%u/%u", shard_index, shard_count);

  g_return_val_if_fail (shard_count > 0 && shard_index < shard_count, FALSE);

  for (guint k = 0; k < points->len; k++)
    if (((BlSweepPoint *) points->pdata[k])->index % shard_count == shard_index)
      total++;
  for (guint k = 0; k < points->len; k++)
    {
      BlSweepPoint *p = points->pdata[k];
      GError *local = NULL;
      gboolean have;

      if ((guint) p->index % shard_count != shard_index)
        continue;
      have = bl_sweep_has_point (self, p->key, &local);
      if (local != NULL)
        {
          g_propagate_error (error, local);
          return FALSE;
        }
      if (!have)
        {
          if (g_cancellable_set_error_if_cancelled (cancellable, error)
              || !measure (p, measure_data, cancellable, error))
            return FALSE;
          p->measured = TRUE;
          g_free (p->shard);
          p->shard = g_strdup (shard);
          if (!bl_sweep_add_point (self, p, error))
            return FALSE;
        }
      done++;
      if (progress != NULL)
        progress (p, have, done, total, progress_data);
    }
  return TRUE;
}

/* Whether two measurements of one point agree: everything but the timing and the shard. */
static gboolean
same_real (double a,
           double b)
{
  return (isnan (a) && isnan (b)) || a == b;
}

static gboolean
same_point (const BlSweepPoint *a,
            const BlSweepPoint *b)
{
  return a->index == b->index && g_str_equal (a->kind, b->kind) && g_str_equal (a->plan_json, b->plan_json)
         && same_real (a->bits_per_weight, b->bits_per_weight) && same_real (a->total_bits, b->total_bits)
         && same_real (a->predicted_loss, b->predicted_loss) && same_real (a->kl, b->kl)
         && same_real (a->kl_ci_low, b->kl_ci_low) && same_real (a->kl_ci_high, b->kl_ci_high)
         && same_real (a->top1, b->top1) && same_real (a->nll, b->nll)
         && same_real (a->base_nll, b->base_nll) && a->n_tokens == b->n_tokens;
}

/**
 * bl_sweep_merge:
 * @out_path: the merged file (created, or extended when it is a file of the same sweep)
 * @inputs: (array zero-terminated=1): shard files
 * @out_n_points: (out) (optional): points in the merged file
 * @error: return location for an error
 *
 * Copies every point of @inputs into @out_path. All files must share the configuration and
 * the model; a point present in two files must agree on its plan and every measured number.
 *
 * Returns: whether the merge succeeded; nothing is written on failure
 */
gboolean
bl_sweep_merge (const char          *out_path,
                const char * const  *inputs,
                guint               *out_n_points,
                GError             **error)
{
  g_autoptr(BlSweep) first = NULL;
  g_autoptr(BlSweep) out = NULL;
  g_autoptr(GHashTable) seen = g_hash_table_new_full (g_str_hash, g_str_equal, NULL,
                                                      (GDestroyNotify) bl_sweep_point_free);
  g_autoptr(GPtrArray) existing = NULL;
  g_autoptr(GPtrArray) order = g_ptr_array_new ();

  if (inputs == NULL || inputs[0] == NULL)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT, "merge: no input files");
      return FALSE;
    }
  first = bl_sweep_open_existing (inputs[0], error);
  if (first == NULL)
    return FALSE;
  for (guint f = 0; inputs[f] != NULL; f++)
    {
      g_autoptr(BlSweep) in = bl_sweep_open_existing (inputs[f], error);
      g_autoptr(GPtrArray) pts = NULL;

      if (in == NULL)
        return FALSE;
      if (!g_str_equal (bl_sweep_get_config (in), bl_sweep_get_config (first))
          || !g_str_equal (bl_sweep_get_model_fingerprint (in), bl_sweep_get_model_fingerprint (first)))
        {
          g_set_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT,
                       "merge: %s and %s belong to different sweeps", inputs[0], inputs[f]);
          return FALSE;
        }
      pts = bl_sweep_list_points (in, error);
      if (pts == NULL)
        return FALSE;
      for (guint k = 0; k < pts->len; k++)
        {
          BlSweepPoint *p = pts->pdata[k];
          BlSweepPoint *prev = g_hash_table_lookup (seen, p->key);

          if (prev != NULL)
            {
              if (!same_point (prev, p))
                {
                  g_set_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT,
                               "merge: point %s differs between shard %s and %s (%s)", p->key,
                               prev->shard != NULL ? prev->shard : "?", p->shard != NULL ? p->shard : "?",
                               inputs[f]);
                  return FALSE;
                }
              continue;
            }
          g_ptr_array_add (order, p);
          g_hash_table_insert (seen, p->key, g_ptr_array_steal_index (pts, k));
          k--;
        }
    }

  out = bl_sweep_open (out_path, bl_sweep_get_config (first), bl_sweep_get_model_fingerprint (first), error);
  if (out == NULL)
    return FALSE;
  existing = bl_sweep_list_points (out, error);
  if (existing == NULL)
    return FALSE;
  for (guint k = 0; k < existing->len; k++)
    {
      BlSweepPoint *e = existing->pdata[k];
      BlSweepPoint *p = g_hash_table_lookup (seen, e->key);

      if (p != NULL && !same_point (p, e))
        {
          g_set_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT,
                       "merge: point %s in %s differs from the inputs", e->key, out_path);
          return FALSE;
        }
    }
  if (!exec (out, "BEGIN IMMEDIATE", "beginning the merge", error))
    return FALSE;
  for (guint k = 0; k < order->len; k++)
    {
      BlSweepPoint *p = order->pdata[k];
      GError *local = NULL;
      gboolean have = bl_sweep_has_point (out, p->key, &local);

      if (local != NULL || (!have && !bl_sweep_add_point (out, p, &local)))
        {
          exec (out, "ROLLBACK", "rolling back", NULL);
          g_propagate_error (error, local);
          return FALSE;
        }
    }
  if (!exec (out, "COMMIT", "committing the merge", error))
    return FALSE;
  if (out_n_points != NULL)
    {
      g_autoptr(GPtrArray) all = bl_sweep_list_points (out, error);

      if (all == NULL)
        return FALSE;
      *out_n_points = all->len;
    }
  return TRUE;
}
