/* test-sensitivity.c: tests of core/bl-sensitivity.c and core/bl-estimator.c
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * The model is the tiny random Llama of tests/fixtures/tiny-llama/llama-tied-bf16 (2 blocks,
 * hidden 32, vocab 97, tied lm_head), on pseudo-random ids. Every number of the sensitivity
 * table is recomputed here the plain way: a calibration pass of its own for the Hessian
 * trace and LIM, the weight through bl_format_fake_quant() for QSNR and the errors, and
 * engines with a weight hook whose logits the test turns into KL, NLL and top-1 itself.
 */
#include <math.h>
#include <string.h>

#include "bitlens.h"
#include "bl-calib.h"
#include "bl-estimator.h"
#include "bl-metrics-error.h"
#include "bl-quant-plan.h"
#include "bl-sensitivity.h"
#include "bl-store-private.h"

#define N_IDS 400
#define CTX 16
#define N_WINDOWS 3
#define SPEC "int4:g32"

typedef struct
{
  BlModel *model;
  BlBackend *backend;
  int32_t ids[N_IDS];
} Fixture;

static void
fixture_setup (Fixture       *f,
               gconstpointer  data)
{
  g_autofree char *dir = g_test_build_filename (G_TEST_DIST, "fixtures", "tiny-llama",
                                                "llama-tied-bf16", NULL);
  g_autoptr(GError) error = NULL;
  guint32 state = 12345;

  f->model = bl_model_load (dir, NULL, &error);
  g_assert_no_error (error);
  f->backend = bl_backend_new ("cpu", 1, &error);
  g_assert_no_error (error);
  for (int i = 0; i < N_IDS; i++)
    {
      state = state * 1664525u + 1013904223u;
      f->ids[i] = (int32_t) ((state >> 8) % 97);
    }
}

static void
fixture_teardown (Fixture       *f,
                  gconstpointer  data)
{
  g_clear_pointer (&f->backend, bl_backend_free);
  g_clear_object (&f->model);
}

static BlSensitivity *
new_sensitivity (Fixture    *f,
                 const char *sha256)
{
  BlSensitivityOptions opts = { .n_windows = N_WINDOWS, .ctx = CTX, .seed = 5,
                                .dataset_name = "random ids", .dataset_sha256 = sha256 };
  g_autoptr(GError) error = NULL;
  BlSensitivity *sens = bl_sensitivity_new (f->model, f->backend, f->ids, N_IDS, &opts, &error);

  g_assert_no_error (error);
  return sens;
}

static const BlLayerSensitivity *
find_layer (GPtrArray  *table,
            const char *name)
{
  for (guint i = 0; i < table->len; i++)
    if (g_str_equal (((BlLayerSensitivity *) table->pdata[i])->name, name))
      return table->pdata[i];
  g_assert_not_reached ();
}

static void
test_zd (void)
{
  /* μ = 2, σ = 4: only 10 has z = 2 > 1 */
  static const float w[] = { 0, 0, 0, 0, 10 };
  static const float flat[] = { 3, 3, 3 };
  /* μ = 0, σ = 1: z = 1 exactly is not above 1 */
  static const float pm[] = { -1, 1, -1, 1 };

  g_assert_cmpfloat (bl_weight_zd (w, 5), ==, 0.2);
  g_assert_cmpfloat (bl_weight_zd (flat, 3), ==, 0.0);
  g_assert_cmpfloat (bl_weight_zd (pm, 4), ==, 0.0);
  g_assert_true (isnan (bl_weight_zd (w, 0)));
}

static void
test_spearman (void)
{
  static const double x[] = { 1, 2, 3, 4, 5 };
  static const double y[] = { 5, 6, 7, 8, 7 };
  static const double up[] = { 10, 20, 30 };
  static const double down[] = { 3, 2, 1 };
  static const double flat[] = { 1, 1, 1 };

  /* y's ranks 1, 2, 3.5, 5, 3.5: ρ = 8 / √(10 · 9.5) */
  g_assert_cmpfloat_with_epsilon (bl_spearman_rho (x, y, 5), 8.0 / sqrt (95.0), 1e-12);
  g_assert_cmpfloat_with_epsilon (bl_spearman_rho (up, down, 3), -1.0, 1e-12);
  g_assert_cmpfloat_with_epsilon (bl_spearman_rho (up, up, 3), 1.0, 1e-12);
  g_assert_true (isnan (bl_spearman_rho (up, flat, 3)));
  g_assert_true (isnan (bl_spearman_rho (up, up, 1)));
}

static void
test_layer_specs_json (void)
{
  g_autoptr(GHashTable) plan = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr(GHashTable) back = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *json = NULL;
  g_autofree char *again = NULL;

  g_hash_table_insert (plan, "b.weight", "int8:channel");
  g_hash_table_insert (plan, "a.weight", SPEC);
  json = bl_layer_specs_to_json (plan, &error);
  g_assert_no_error (error);
  /* sorted names, canonical specs: equal plans are equal text */
  g_assert_nonnull (strstr (json, "\"a.weight\""));
  g_assert_true (strstr (json, "\"a.weight\"") < strstr (json, "\"b.weight\""));
  back = bl_layer_specs_from_json (json, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_hash_table_size (back), ==, 2);
  again = bl_layer_specs_to_json (back, &error);
  g_assert_cmpstr (again, ==, json);

  g_hash_table_insert (plan, "c.weight", "int99:nonsense");
  g_assert_null (bl_layer_specs_to_json (plan, &error));
  g_assert_nonnull (error);
  g_clear_error (&error);
  g_assert_null (bl_layer_specs_from_json ("{\"layers\": [1]}", &error));
  g_assert_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_assert_null (bl_layer_specs_from_json ("{\"layers\": {\"x\": 4}}", &error));
  g_assert_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT);
}

typedef struct
{
  const char *name;
  const float *q;
} OneLayer;

static void
replace_one (const char  *layer_name,
             BlLayerKind  kind,
             float       *w,
             int64_t      rows,
             int64_t      cols,
             gpointer     user_data)
{
  OneLayer *one = user_data;

  if (g_str_equal (layer_name, one->name))
    memcpy (w, one->q, (gsize) rows * cols * sizeof (float));
}

/* log-softmax of a row in double, the plain way */
static void
log_softmax (const float *z,
             int          n,
             double      *out)
{
  double m = -INFINITY, s = 0.0;

  for (int v = 0; v < n; v++)
    m = MAX (m, z[v]);
  for (int v = 0; v < n; v++)
    s += exp (z[v] - m);
  for (int v = 0; v < n; v++)
    out[v] = z[v] - m - log (s);
}

/* KL, NLL and top-1 of an engine against the full-precision one over the windows */
static void
reference_scores (Fixture  *f,
                  BlEngine *base,
                  BlEngine *quant,
                  GArray   *windows,
                  double   *kl,
                  double   *nll,
                  double   *base_nll,
                  double   *top1)
{
  int vocab = bl_engine_get_vocab_size (base);
  g_autofree float *zb = g_new (float, (CTX - 1) * vocab);
  g_autofree float *zq = g_new (float, (CTX - 1) * vocab);
  g_autofree double *lp = g_new (double, vocab);
  g_autofree double *lq = g_new (double, vocab);
  double s_kl = 0, s_nll = 0, s_base = 0, agree = 0;
  int n = 0;

  for (guint k = 0; k < windows->len; k++)
    {
      const BlWindow *w = &g_array_index (windows, BlWindow, k);

      g_assert_true (bl_engine_forward (base, f->ids + w->start, CTX - 1, zb, NULL, NULL));
      g_assert_true (bl_engine_forward (quant, f->ids + w->start, CTX - 1, zq, NULL, NULL));
      for (int j = 0; j < CTX - 1; j++, n++)
        {
          int t = f->ids[w->start + j + 1], ab = 0, aq = 0;

          log_softmax (zb + j * vocab, vocab, lp);
          log_softmax (zq + j * vocab, vocab, lq);
          for (int v = 0; v < vocab; v++)
            {
              s_kl += exp (lp[v]) * (lp[v] - lq[v]);
              ab = lp[v] > lp[ab] ? v : ab;
              aq = lq[v] > lq[aq] ? v : aq;
            }
          s_nll -= lq[t];
          s_base -= lp[t];
          agree += ab == aq;
        }
    }
  *kl = s_kl / n;
  *nll = s_nll / n;
  *base_nll = s_base / n;
  *top1 = agree / n;
}

static void
test_table (Fixture       *f,
            gconstpointer  data)
{
  g_autoptr(BlSensitivity) sens = new_sensitivity (f, NULL);
  g_autoptr(GPtrArray) table = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(BlCalib) calib = NULL;
  g_autoptr(GArray) windows = NULL;
  g_autoptr(BlEngine) base = NULL;
  BlCalibOptions copts = { .flags = BL_CALIB_ACT_STATS | BL_CALIB_BLOCK_IO };
  BlFormatSpec spec;
  gboolean saw_head = FALSE;

  g_assert_null (bl_sensitivity_compute (sens, SPEC, FALSE, NULL, &error));
  g_assert_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);

  g_assert_true (bl_sensitivity_prepare (sens, NULL, &error));
  g_assert_no_error (error);
  g_assert_true (bl_sensitivity_prepare (sens, NULL, &error));
  g_assert_cmpuint (bl_sensitivity_get_n_layers (sens), ==, 2 * 7 + 1);
  g_assert_cmpint (bl_sensitivity_get_n_tokens (sens), ==, N_WINDOWS * (CTX - 1));
  g_assert_cmpint (bl_sensitivity_get_budget_id (sens), ==, 0);

  table = bl_sensitivity_compute (sens, SPEC, TRUE, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (table->len, ==, 15);

  /* the same windows, calibrated and scored independently */
  windows = bl_calib_make_windows (N_IDS, CTX, N_WINDOWS, 5, &error);
  calib = bl_calib_collect (f->model, f->backend, f->ids, N_IDS, windows, &copts, NULL, NULL,
                            NULL, &error);
  g_assert_no_error (error);
  base = bl_engine_new (f->model, f->backend, NULL, &error);
  g_assert_true (bl_format_spec_parse (SPEC, &spec, &error));

  for (guint i = 0; i < table->len; i++)
    {
      const BlLayerSensitivity *s = g_ptr_array_index (table, i);
      const BlCalibLayer *cl = bl_calib_get_layer (calib, s->name);
      const BlTensor *t = bl_model_get_tensor (f->model, s->name);
      g_autofree float *w = g_new (float, t->n_elements);
      g_autofree float *q = g_new (float, t->n_elements);
      g_autoptr(BlEngine) quant = NULL;
      OneLayer one = { s->name, q };
      BlEngineHooks hooks = { replace_one, NULL, &one };
      BlErrorStats es;
      double trace = 0, out_e = 0, out_r = 0, kl, nll, base_nll, top1;

      g_assert_nonnull (cl);
      g_assert_cmpstr (s->weight_spec, ==, SPEC);
      g_assert_cmpint (s->rows, ==, cl->rows);
      g_assert_cmpint (s->cols, ==, cl->cols);
      g_assert_cmpint (s->block, ==, cl->block);
      saw_head |= s->kind == BL_LAYER_LM_HEAD && g_str_equal (s->name, "lm_head.weight");

      bl_tensor_to_f32 (t, w);
      g_assert_true (bl_format_fake_quant (&spec, w, q, s->rows, s->cols, 1, &error));
      bl_error_stats_init (&es);
      bl_error_stats_add (&es, w, q, t->n_elements);
      g_assert_cmpfloat_with_epsilon (s->qsnr_db, bl_error_stats_qsnr_db (&es), 1e-9);
      g_assert_cmpfloat_with_epsilon (s->rel_err, es.sum_sq_err / es.sum_sq_ref, 1e-12);
      for (int64_t j = 0; j < s->cols; j++)
        trace += cl->act_mean_sq[j] / s->cols;
      g_assert_cmpfloat_with_epsilon (s->hessian_trace, trace, 1e-9 * trace);
      g_assert_cmpfloat_with_epsilon (s->omega, trace * es.sum_sq_err, 1e-9 * s->omega);
      for (int64_t r = 0; r < s->rows; r++)
        for (int64_t j = 0; j < s->cols; j++)
          {
            double d = w[r * s->cols + j] - q[r * s->cols + j];

            out_e += cl->act_mean_sq[j] * d * d;
            out_r += cl->act_mean_sq[j] * w[r * s->cols + j] * w[r * s->cols + j];
          }
      g_assert_cmpfloat_with_epsilon (s->out_err, out_e / out_r, 1e-9);
      if (s->block >= 0)
        g_assert_cmpfloat (s->lim, ==, bl_calib_get_block (calib, s->block)->lim);
      else
        g_assert_true (isnan (s->lim) && isnan (s->zd_block));
      g_assert_cmpfloat (s->zd, ==, bl_weight_zd (w, t->n_elements));

      quant = bl_engine_new (f->model, f->backend, &hooks, &error);
      g_assert_no_error (error);
      reference_scores (f, base, quant, windows, &kl, &nll, &base_nll, &top1);
      g_assert_cmpfloat (s->kl, >, 0.0);
      g_assert_cmpfloat_with_epsilon (s->kl, kl, 1e-6 + 1e-5 * kl);
      g_assert_cmpfloat_with_epsilon (s->dnll, nll - base_nll, 1e-9);
      g_assert_cmpfloat_with_epsilon (s->top1, top1, 1e-12);
      g_assert_cmpfloat_with_epsilon (bl_sensitivity_get_base_nll (sens), base_nll, 1e-9);
    }
  g_assert_true (saw_head);

  /* the same format again is the same table, not a new measurement */
  {
    g_autoptr(GPtrArray) again = bl_sensitivity_compute (sens, "int4:g32", TRUE, NULL, &error);

    g_assert_true (again == table);
  }
}

static void
count_layers (const char *stage,
              int         done,
              int         total,
              gpointer    user_data)
{
  if (g_str_equal (stage, "layers"))
    (*(int *) user_data)++;
}

static void
test_plans_and_store (Fixture       *f,
                      gconstpointer  data)
{
  static const char sha[] = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
  g_autoptr(BlStore) store = NULL;
  g_autoptr(BlSensitivity) sens = new_sensitivity (f, sha);
  g_autoptr(BlSensitivity) again = new_sensitivity (f, sha);
  g_autoptr(GPtrArray) table = NULL;
  g_autoptr(GPtrArray) cached = NULL;
  g_autoptr(GPtrArray) specs = NULL;
  g_autoptr(GHashTable) empty = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr(GHashTable) one = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr(GHashTable) bad = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr(GError) error = NULL;
  const BlLayerSensitivity *down;
  BlPlanMeasurement m;
  sqlite3 *db;
  int n_layer_steps = 0;

  store = bl_store_open (":memory:", &error);
  g_assert_no_error (error);
  db = bl_store_get_db (store);
  bl_sensitivity_set_store (sens, store);
  g_assert_true (bl_sensitivity_prepare (sens, NULL, &error));
  g_assert_cmpint (bl_sensitivity_get_budget_id (sens), >, 0);
  table = bl_sensitivity_compute (sens, SPEC, TRUE, NULL, &error);
  g_assert_no_error (error);

  /* an empty plan is the full-precision model: KL exactly 0 */
  g_assert_true (bl_sensitivity_measure_plan (sens, empty, &m, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpfloat (m.kl, ==, 0.0);
  g_assert_cmpfloat (m.nll, ==, m.base_nll);
  g_assert_cmpfloat (m.top1, ==, 1.0);
  g_assert_cmpint (m.n_tokens, ==, N_WINDOWS * (CTX - 1));

  /* a one-layer plan is that layer's one-at-a-time measurement */
  down = find_layer (table, "model.layers.1.mlp.down_proj.weight");
  g_hash_table_insert (one, "model.layers.1.mlp.down_proj.weight", SPEC);
  g_assert_true (bl_sensitivity_measure_plan (sens, one, &m, NULL, &error));
  g_assert_cmpfloat (m.kl, ==, down->kl);
  g_assert_cmpfloat (m.nll - m.base_nll, ==, down->dnll);

  g_hash_table_insert (bad, "model.layers.9.mlp.down_proj.weight", SPEC);
  g_assert_false (bl_sensitivity_measure_plan (sens, bad, &m, NULL, &error));
  g_assert_error (error, BL_ERROR, BL_ERROR_NOT_FOUND);
  g_clear_error (&error);
  g_hash_table_remove_all (bad);
  g_hash_table_insert (bad, "model.layers.0.mlp.down_proj.weight", "int99");
  g_assert_false (bl_sensitivity_measure_plan (sens, bad, &m, NULL, &error));
  g_assert_nonnull (error);
  g_clear_error (&error);

  /* what the store holds */
  {
    sqlite3_stmt *stmt = NULL;

    g_assert_cmpint (sqlite3_prepare_v2 (db, "SELECT (SELECT count (*) FROM sensitivity), "
                                         "(SELECT count (*) FROM estimator_samples), "
                                         "(SELECT count (*) FROM sensitivity_budgets)",
                                         -1, &stmt, NULL), ==, SQLITE_OK);
    g_assert_cmpint (sqlite3_step (stmt), ==, SQLITE_ROW);
    g_assert_cmpint (sqlite3_column_int (stmt, 0), ==, 15);
    g_assert_cmpint (sqlite3_column_int (stmt, 1), ==, 2);
    g_assert_cmpint (sqlite3_column_int (stmt, 2), ==, 1);
    sqlite3_finalize (stmt);
  }

  /* a second object on the same budget reads the table back instead of measuring it */
  bl_sensitivity_set_store (again, store);
  bl_sensitivity_set_progress (again, count_layers, &n_layer_steps);
  g_assert_true (bl_sensitivity_prepare (again, NULL, &error));
  g_assert_cmpint (bl_sensitivity_get_budget_id (again), ==, bl_sensitivity_get_budget_id (sens));
  specs = bl_sensitivity_list_specs (again);
  g_assert_cmpuint (specs->len, ==, 1);
  g_assert_cmpstr (specs->pdata[0], ==, SPEC);
  cached = bl_sensitivity_compute (again, SPEC, TRUE, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (n_layer_steps, ==, 0);
  for (guint i = 0; i < table->len; i++)
    {
      const BlLayerSensitivity *a = g_ptr_array_index (table, i);
      const BlLayerSensitivity *b = g_ptr_array_index (cached, i);

      g_assert_cmpstr (a->name, ==, b->name);
      g_assert_cmpfloat (a->kl, ==, b->kl);
      g_assert_cmpfloat (a->out_err, ==, b->out_err);
      g_assert_cmpfloat_with_epsilon (a->qsnr_db, b->qsnr_db, 1e-9);
      g_assert_true (a->lim == b->lim || (isnan (a->lim) && isnan (b->lim)));
      g_assert_cmpfloat (a->zd, ==, b->zd);
    }
  /* a format without rows is measured */
  {
    g_autoptr(GPtrArray) other = bl_sensitivity_compute (again, "int8:channel", FALSE, NULL,
                                                         &error);

    g_assert_no_error (error);
    g_assert_cmpint (n_layer_steps, ==, 15);
    g_assert_true (isnan (((BlLayerSensitivity *) other->pdata[0])->kl));
  }
}

static void
test_estimator (Fixture       *f,
                gconstpointer  data)
{
  static const char sha[] = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210";
  g_autoptr(BlStore) store = bl_store_open (":memory:", NULL);
  g_autoptr(BlSensitivity) sens = new_sensitivity (f, sha);
  g_autoptr(BlEstimator) est = NULL;
  g_autoptr(BlEstimator) from_store = NULL;
  g_autoptr(GPtrArray) table = NULL;
  g_autoptr(GHashTable) empty = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr(GHashTable) two = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr(GHashTable) unknown = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr(GError) error = NULL;
  const char *a = "model.layers.0.self_attn.v_proj.weight";
  const char *b = "model.layers.1.mlp.up_proj.weight";
  const BlLayerSensitivity *la, *lb;
  BlEstimate e, ea, eb;
  BlEstimatorFit fit;
  BlPlanMeasurement m;
  double pd, md, pk, mk;

  bl_sensitivity_set_store (sens, store);
  g_assert_true (bl_sensitivity_prepare (sens, NULL, &error));

  /* no one-at-a-time KL yet */
  g_assert_null (bl_estimator_new (sens, &error));
  g_assert_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);

  table = bl_sensitivity_compute (sens, SPEC, TRUE, NULL, &error);
  g_assert_no_error (error);
  est = bl_estimator_new (sens, &error);
  g_assert_no_error (error);
  la = find_layer (table, a);
  lb = find_layer (table, b);

  /* full precision predicts no change */
  g_assert_true (bl_estimator_predict (est, empty, &e, &error));
  g_assert_cmpfloat (e.dkl, ==, 0.0);
  g_assert_cmpfloat (e.dppl, ==, 0.0);
  g_assert_cmpuint (e.n_layers, ==, 0);
  g_assert_cmpfloat_with_epsilon (e.base_ppl, exp (bl_sensitivity_get_base_nll (sens)),
                                  1e-12 * e.base_ppl);

  /* one layer at the measured format predicts its one-at-a-time KL; two add up */
  g_hash_table_insert (two, (gpointer) a, SPEC);
  g_assert_true (bl_estimator_predict (est, two, &ea, &error));
  g_assert_cmpfloat_with_epsilon (ea.dkl, la->kl, 1e-12);
  g_assert_cmpfloat_with_epsilon (bl_estimator_get_layer_sensitivity (est, a),
                                  la->kl / la->out_err, 1e-9);
  g_hash_table_remove_all (two);
  g_hash_table_insert (two, (gpointer) b, SPEC);
  g_assert_true (bl_estimator_predict (est, two, &eb, &error));
  g_hash_table_insert (two, (gpointer) a, SPEC);
  g_assert_true (bl_estimator_predict (est, two, &e, &error));
  g_assert_cmpfloat_with_epsilon (e.dkl, la->kl + lb->kl, 1e-12);
  g_assert_cmpuint (e.n_layers, ==, 2);
  g_assert_cmpfloat_with_epsilon (e.ppl, e.base_ppl * exp (e.dnll), 1e-12 * e.ppl);

  /* another format scales with its output error (8-bit: far smaller) */
  g_hash_table_replace (two, (gpointer) a, "int8:channel");
  g_hash_table_replace (two, (gpointer) b, "int8:channel");
  g_assert_true (bl_estimator_predict (est, two, &e, &error));
  g_assert_no_error (error);
  g_assert_cmpfloat (e.dkl, >, 0.0);
  g_assert_cmpfloat (e.dkl, <, 0.1 * (la->kl + lb->kl));

  /* a BlQuantPlan: the defaults reach every block projection, not the lm_head */
  {
    g_autoptr(BlQuantPlan) plan = bl_quant_plan_new_from_shorthand (SPEC, NULL, NULL, NULL,
                                                                    &error);
    g_autoptr(BlQuantPlan) with_act = bl_quant_plan_new_from_shorthand (SPEC, "int8:token",
                                                                        NULL, NULL, &error);
    g_autoptr(GHashTable) blocks = g_hash_table_new (g_str_hash, g_str_equal);
    BlEstimate ep, eh;

    g_assert_no_error (error);
    for (guint i = 0; i < table->len; i++)
      if (((BlLayerSensitivity *) table->pdata[i])->block >= 0)
        g_hash_table_insert (blocks, ((BlLayerSensitivity *) table->pdata[i])->name, SPEC);
    g_assert_true (bl_estimator_predict_plan (est, plan, &ep, &error));
    g_assert_no_error (error);
    g_assert_true (bl_estimator_predict (est, blocks, &eh, &error));
    g_assert_cmpuint (ep.n_layers, ==, 14);
    g_assert_cmpfloat (ep.dkl, ==, eh.dkl);
    g_assert_false (ep.approximate);
    g_assert_true (bl_estimator_predict_plan (est, with_act, &ep, &error));
    g_assert_true (ep.approximate);
    g_assert_cmpfloat (ep.dkl, ==, eh.dkl);
  }

  g_hash_table_insert (unknown, "model.layers.7.mlp.up_proj.weight", SPEC);
  g_assert_false (bl_estimator_predict (est, unknown, &e, &error));
  g_assert_error (error, BL_ERROR, BL_ERROR_NOT_FOUND);
  g_clear_error (&error);

  /* calibration: samples exactly 3× the additive prediction fit a = 3 with no error */
  g_assert_false (bl_estimator_fit (est, &fit, &error));
  g_assert_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_hash_table_remove_all (two);
  g_hash_table_insert (two, (gpointer) a, SPEC);
  g_assert_true (bl_estimator_add_sample (est, two, bl_sensitivity_get_base_nll (sens)
                                          + 3 * ea.additive_kl, 3 * ea.additive_kl, &error));
  g_hash_table_insert (two, (gpointer) b, SPEC);
  g_assert_true (bl_estimator_add_sample (est, two, bl_sensitivity_get_base_nll (sens)
                                          + 3 * (ea.additive_kl + eb.additive_kl),
                                          3 * (ea.additive_kl + eb.additive_kl), &error));
  g_assert_true (bl_estimator_add_sample (est, empty, bl_sensitivity_get_base_nll (sens), 0.0,
                                          &error));
  g_assert_true (bl_estimator_fit (est, &fit, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (fit.n_samples, ==, 3);
  g_assert_cmpfloat_with_epsilon (fit.a_kl, 3.0, 1e-9);
  g_assert_cmpfloat_with_epsilon (fit.a_nll, 3.0, 1e-9);
  /* the random model's perplexity is ~1e8: the Δppl tolerance is relative to it */
  g_assert_cmpfloat_with_epsilon (fit.rmse_dppl, 0.0, 1e-12 * e.base_ppl);
  g_assert_cmpfloat_with_epsilon (fit.loo_rmse_dppl, 0.0, 1e-12 * e.base_ppl);
  g_assert_cmpfloat_with_epsilon (fit.rmse_kl, 0.0, 1e-12);
  g_assert_cmpfloat_with_epsilon (fit.spearman_dppl, 1.0, 1e-12);
  /* the empty plan's measured Δppl is 0: it is left out of the relative error */
  g_assert_cmpfloat_with_epsilon (fit.mean_rel_err_dppl, 0.0, 1e-9);
  g_assert_true (bl_estimator_get_sample (est, 1, &pd, &md, &pk, &mk));
  g_assert_cmpfloat_with_epsilon (pd, md, 1e-12 * e.base_ppl);
  g_assert_cmpfloat_with_epsilon (pk, mk, 1e-12);
  g_assert_false (bl_estimator_get_sample (est, 3, NULL, NULL, NULL, NULL));
  g_assert_true (bl_estimator_predict (est, two, &e, &error));
  g_assert_cmpfloat_with_epsilon (e.dkl, 3 * (la->kl + lb->kl), 1e-12);

  /* plans measured on the budget come back from the store as samples */
  g_assert_true (bl_sensitivity_measure_plan (sens, two, &m, NULL, &error));
  g_hash_table_remove (two, a);
  g_assert_true (bl_sensitivity_measure_plan (sens, two, &m, NULL, &error));
  g_assert_true (bl_sensitivity_measure_plan (sens, empty, &m, NULL, &error));
  from_store = bl_estimator_new (sens, &error);
  g_assert_cmpuint (bl_estimator_load_samples (from_store, store, &error), ==, 3);
  g_assert_no_error (error);
  g_assert_true (bl_estimator_fit (from_store, &fit, &error));
  g_assert_no_error (error);
  g_assert_cmpfloat (fit.a_kl, >, 0.0);
  g_assert_cmpfloat (fit.rmse_kl, >=, 0.0);
  /* the empty plan is predicted exactly */
  g_assert_true (bl_estimator_get_sample (from_store, 2, &pd, &md, &pk, &mk));
  g_assert_cmpfloat (pd, ==, 0.0);
  g_assert_cmpfloat (md, ==, 0.0);
  g_assert_cmpfloat (mk, ==, 0.0);
}

static void
test_options (Fixture       *f,
              gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  BlSensitivityOptions opts = { .ctx = 65 };
  g_autoptr(BlSensitivity) defaults = NULL;

  /* the model has 64 positions */
  g_assert_null (bl_sensitivity_new (f->model, f->backend, f->ids, N_IDS, &opts, &error));
  g_assert_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  opts.ctx = 16;
  g_assert_null (bl_sensitivity_new (f->model, f->backend, f->ids, 10, &opts, &error));
  g_assert_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);

  defaults = bl_sensitivity_new (f->model, f->backend, f->ids, N_IDS, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (bl_sensitivity_get_options (defaults)->n_windows, ==, 8);
  g_assert_cmpint (bl_sensitivity_get_options (defaults)->ctx, ==, 64);
  g_assert_true (isnan (bl_sensitivity_get_base_nll (defaults)));
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

  g_test_add_func ("/bitlens/sensitivity/zd", test_zd);
  g_test_add_func ("/bitlens/sensitivity/spearman", test_spearman);
  g_test_add_func ("/bitlens/sensitivity/layer-specs-json", test_layer_specs_json);
  g_test_add ("/bitlens/sensitivity/table", Fixture, NULL, fixture_setup, test_table,
              fixture_teardown);
  g_test_add ("/bitlens/sensitivity/plans-and-store", Fixture, NULL, fixture_setup,
              test_plans_and_store, fixture_teardown);
  g_test_add ("/bitlens/sensitivity/options", Fixture, NULL, fixture_setup, test_options,
              fixture_teardown);
  g_test_add ("/bitlens/estimator/predict-and-fit", Fixture, NULL, fixture_setup,
              test_estimator, fixture_teardown);

  return g_test_run ();
}
