/* test-kl.c: KL against the cached baseline — by hand, on the tiny-llama fixtures, in the store
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include <glib/gstdio.h>
#include <math.h>
#include <string.h>

#include "bl-error.h"
#include "bl-kl.h"
#include "bl-quant-engine.h"
#include "bl-run.h"

#define N_IDS 400
#define CTX 32
#define SHA "173c87a53759e0201f33e0ccf978e510c2042d7f2cb78229d9a50d79b9e7dd08"

static BlModel *
load_fixture (const char *variant)
{
  g_autofree char *dir = g_test_build_filename (G_TEST_DIST, "fixtures", "tiny-llama", variant,
                                                NULL);
  g_autoptr(GError) error = NULL;
  BlModel *model = bl_model_load (dir, NULL, &error);

  g_assert_no_error (error);
  return model;
}

static int32_t *
random_ids (int vocab)
{
  g_autoptr(GRand) rand = g_rand_new_with_seed (5);
  int32_t *ids = g_new (int32_t, N_IDS);

  for (int i = 0; i < N_IDS; i++)
    ids[i] = g_rand_int_range (rand, 0, vocab);
  return ids;
}

/* --- by hand ------------------------------------------------------------------------------- */

static double
log_softmax (const float *x,
             int          n,
             int          i)
{
  double m = x[0], s = 0;

  for (int v = 1; v < n; v++)
    m = MAX (m, x[v]);
  for (int v = 0; v < n; v++)
    s += exp (x[v] - m);
  return x[i] - m - log (s);
}

/* A window of 3 ids (2 scored positions) over a vocabulary of 5, k = 2. Position 0: p from
 * logits [2, 1, 0, −1, 0.5], so the top-2 are ids 0 and 1 and "other" holds ids 2, 3, 4; the
 * compared row [1, 2, 0, −1, 0.5] swaps the two, so the arg-max disagrees. Position 1: the
 * compared row equals the baseline, so that position adds exactly 0. */
static void
test_by_hand (void)
{
  const float base[2 * 5] = { 2, 1, 0, -1, 0.5f, /**/ 0, 3, 1, 1, -2 };
  const float q[2 * 5] = { 1, 2, 0, -1, 0.5f, /**/ 0, 3, 1, 1, -2 };
  const int32_t ids[3] = { 4, 2, 1 };
  BlWindow w = { 100, 3, 1, FALSE };
  g_autoptr(BlKlWindow) bw = bl_kl_window_new (base, 5, ids, &w, 7, 2);
  BlKlWindowResult r;
  double lp[2], lq[2], po, qo, kl, dp, nll;

  g_assert_cmpint (bw->n_positions, ==, 2);
  g_assert_cmpint (bw->window_index, ==, 7);
  g_assert_cmpint (bw->top_ids[0], ==, 0);
  g_assert_cmpint (bw->top_ids[1], ==, 1);
  g_assert_cmpint (bw->top_ids[2], ==, 1);
  /* position 1: values 3, 1, 1 — the tie between ids 2 and 3 goes to the lower id */
  g_assert_cmpint (bw->top_ids[3], ==, 2);
  for (int i = 0; i < 2; i++)
    {
      lp[i] = log_softmax (base, 5, i);
      g_assert_cmpfloat_with_epsilon (bw->top_logp[i], lp[i], 1e-6);
    }
  lq[0] = log_softmax (q, 5, 0);
  lq[1] = log_softmax (q, 5, 1);
  po = log (exp (log_softmax (base, 5, 2)) + exp (log_softmax (base, 5, 3)) + exp (log_softmax (base, 5, 4)));
  qo = log (exp (log_softmax (q, 5, 2)) + exp (log_softmax (q, 5, 3)) + exp (log_softmax (q, 5, 4)));
  g_assert_cmpfloat_with_epsilon (bw->other_logp[0], po, 1e-6);
  /* targets: ids[1] = 2 for position 0, ids[2] = 1 for position 1 */
  g_assert_cmpfloat_with_epsilon (bw->target_logp[0], log_softmax (base, 5, 2), 1e-6);
  nll = -log_softmax (base, 5, 2) - log_softmax (base + 5, 5, 1);
  g_assert_cmpfloat_with_epsilon (bw->sum_nll, nll, 1e-6);

  bl_kl_window_compare (bw, q, 5, ids, &r);
  kl = exp (lp[0]) * (lp[0] - lq[0]) + exp (lp[1]) * (lp[1] - lq[1]) + exp (po) * (po - qo);
  g_assert_cmpint (r.n_positions, ==, 2);
  g_assert_cmpfloat_with_epsilon (r.sum_kl, kl, 1e-6);
  g_assert_cmpfloat (r.sum_kl, >, 0.0);
  /* the bucket KL bounds the full one from below (here the other bucket's three tokens have
   * the same logits on both sides, so the bound is tight, up to the fp32 log-probabilities);
   * position 1 adds exactly 0 */
  g_assert_cmpfloat (r.sum_kl, <=, bl_kl_exact (base, q, 5) + 1e-6);
  g_assert_cmpint (r.n_top1, ==, 1);
  dp = exp (log_softmax (q, 5, 2)) - exp (log_softmax (base, 5, 2));
  g_assert_cmpfloat_with_epsilon (r.sum_dp, dp, 1e-6);
  g_assert_cmpfloat_with_epsilon (r.sum_nll, -log_softmax (q, 5, 2) - log_softmax (q + 5, 5, 1),
                                  1e-6);
  g_assert_cmpfloat (r.base_sum_nll, ==, bw->sum_nll);

  /* a vocabulary of at most k + 1 tokens: the buckets are the tokens, the bound is exact */
  {
    g_autoptr(BlKlWindow) b3 = bl_kl_window_new (base, 5, ids, &w, 0, 4);
    BlKlWindowResult r3;

    bl_kl_window_compare (b3, q, 5, ids, &r3);
    g_assert_cmpfloat_with_epsilon (r3.sum_kl, bl_kl_exact (base, q, 5), 1e-6);
  }
  /* the same logits: every sum exactly 0 */
  bl_kl_window_compare (bw, base, 5, ids, &r);
  g_assert_cmpfloat (r.sum_kl, ==, 0.0);
  g_assert_cmpfloat (r.sum_dp, ==, 0.0);
  g_assert_cmpint (r.n_top1, ==, 2);
  g_assert_cmpfloat (r.sum_nll, ==, bw->sum_nll);
}

/* --- on a model ------------------------------------------------------------------------------ */

typedef struct
{
  BlModel *model;
  BlBackend *backend;
  int32_t *ids;
} Fixture;

static void
fixture_set_up (Fixture       *f,
                gconstpointer  data)
{
  g_autoptr(GError) error = NULL;

  f->model = load_fixture ("llama-bias-f16");
  f->backend = bl_backend_new ("cpu", 1, &error);
  g_assert_no_error (error);
  f->ids = random_ids (97);
}

static void
fixture_tear_down (Fixture       *f,
                   gconstpointer  data)
{
  g_clear_object (&f->model);
  g_clear_pointer (&f->backend, bl_backend_free);
  g_clear_pointer (&f->ids, g_free);
}

static BlQuantEngine *
quant_engine (Fixture    *f,
              const char *weight)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(BlQuantPlan) plan = bl_quant_plan_new_from_shorthand (weight, NULL, NULL, NULL, &error);
  BlQuantEngine *qe;

  g_assert_no_error (error);
  qe = bl_quant_engine_new (f->model, f->backend, plan, NULL, 0, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  return qe;
}

static BlRun *
kl_run (Fixture       *f,
        BlQuantEngine *qe,
        BlStore       *store,
        int            max_windows)
{
  BlRunOptions opts = { BL_PROTOCOL_GPTQ, CTX, 0, max_windows, 3 };
  BlRunProvenance prov = { "random", NULL, SHA, "plain", "cpu", 1 };
  g_autoptr(GError) error = NULL;
  BlRun *run = bl_run_new (f->model, bl_quant_engine_get_engine (qe), f->ids, N_IDS, &opts, &error);

  g_assert_no_error (error);
  bl_run_set_quant_engine (run, qe);
  bl_run_set_kl (run, 0);
  if (store != NULL)
    bl_run_set_store (run, store, &prov);
  return run;
}

/* The full-precision plan reproduces the baseline bit for bit: KL, Δp exactly 0, top-1 1. */
static void
test_full_precision_zero (Fixture       *f,
                          gconstpointer  data)
{
  g_autoptr(BlQuantEngine) qe = quant_engine (f, NULL);
  g_autoptr(BlRun) run = kl_run (f, qe, NULL, 0);
  g_autoptr(GError) error = NULL;
  g_autoptr(BlEngine) plain = NULL;
  BlRunOptions opts = { BL_PROTOCOL_GPTQ, CTX, 0, 0, 3 };
  g_autoptr(BlRun) nll_run = NULL;
  BlKlSummary s;

  g_assert_true (bl_run_execute (run, NULL, &error));
  g_assert_no_error (error);
  g_assert_true (bl_run_get_kl_summary (run, &s));
  g_assert_cmpuint (s.n_windows, ==, N_IDS / CTX);
  g_assert_cmpint (s.n_positions, ==, (N_IDS / CTX) * (CTX - 1));
  g_assert_cmpfloat (s.kl, ==, 0.0);
  g_assert_cmpfloat (s.delta_p, ==, 0.0);
  g_assert_cmpfloat (s.top1, ==, 1.0);
  g_assert_cmpfloat (s.nll, ==, s.base_nll);
  g_assert_cmpuint (bl_run_get_n_baseline_computed (run), ==, N_IDS / CTX);

  /* the perplexity from the full logits is the bl_engine_nll() one, to rounding */
  plain = bl_engine_new (f->model, f->backend, NULL, &error);
  nll_run = bl_run_new (f->model, plain, f->ids, N_IDS, &opts, &error);
  g_assert_true (bl_run_execute (nll_run, NULL, &error));
  g_assert_cmpfloat_with_epsilon (bl_ppl_stats_get_mean_nll (bl_run_get_stats (run)),
                                  bl_ppl_stats_get_mean_nll (bl_run_get_stats (nll_run)), 1e-6);
  g_assert_cmpfloat_with_epsilon (bl_ppl_stats_get_mean_nll (bl_run_get_stats (run)), s.base_nll,
                                  1e-12);
}

/* int4: KL above 0 and finite, below the full-vocabulary KL of the same logits, and growing as
 * the format gets coarser. */
static void
test_int4_positive (Fixture       *f,
                    gconstpointer  data)
{
  const char *formats[] = { "int8:channel", "int4:g16", "int3:g16" };
  double last = 0.0;

  for (guint i = 0; i < G_N_ELEMENTS (formats); i++)
    {
      g_autoptr(BlQuantEngine) qe = quant_engine (f, formats[i]);
      g_autoptr(BlRun) run = kl_run (f, qe, NULL, 0);
      g_autoptr(GError) error = NULL;
      BlKlSummary s;

      g_assert_true (bl_run_execute (run, NULL, &error));
      g_assert_true (bl_run_get_kl_summary (run, &s));
      g_assert_true (isfinite (s.kl));
      g_assert_cmpfloat (s.kl, >, last);
      g_assert_cmpfloat (s.top1, <=, 1.0);
      g_assert_true (isfinite (s.kl_ci_low) && s.kl_ci_low <= s.kl && s.kl <= s.kl_ci_high);
      last = s.kl;
    }

  /* one window by hand: the bound against the exact KL, row by row */
  {
    g_autoptr(BlQuantEngine) qe = quant_engine (f, "int4:g16");
    g_autoptr(GError) error = NULL;
    g_autoptr(BlEngine) plain = bl_engine_new (f->model, f->backend, NULL, &error);
    g_autofree float *lp = g_new (float, (CTX - 1) * 97);
    g_autofree float *lq = g_new (float, (CTX - 1) * 97);
    BlWindow w = { 0, CTX, 1, FALSE };
    g_autoptr(BlKlWindow) base = NULL;
    BlKlWindowResult r;
    double exact = 0;

    g_assert_true (bl_engine_forward (plain, f->ids, CTX - 1, lp, NULL, &error));
    g_assert_true (bl_engine_forward (bl_quant_engine_get_engine (qe), f->ids, CTX - 1, lq, NULL,
                                      &error));
    base = bl_kl_window_new (lp, 97, f->ids, &w, 0, 8);
    bl_kl_window_compare (base, lq, 97, f->ids, &r);
    for (int p = 0; p < CTX - 1; p++)
      exact += bl_kl_exact (lp + p * 97, lq + p * 97, 97);
    g_assert_cmpfloat (r.sum_kl, >, 0.0);
    g_assert_cmpfloat (r.sum_kl, <=, exact + 1e-6);
    /* more buckets refine the partition, and a refinement never lowers the KL */
    {
      g_autoptr(BlKlWindow) fine = bl_kl_window_new (lp, 97, f->ids, &w, 0, 32);
      BlKlWindowResult rf;

      bl_kl_window_compare (fine, lq, 97, f->ids, &rf);
      g_assert_cmpfloat (rf.sum_kl, >=, r.sum_kl - 1e-6);
      g_assert_cmpfloat (rf.sum_kl, <=, exact + 1e-6);
    }
  }
}

static void
test_store_round_trip (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(BlStore) store = bl_store_open (":memory:", &error);
  const float logits[3 * 4] = { 1, 2, 3, 4, /**/ 0, 0, 1, 0, /**/ -1, 5, 2, 2 };
  const int32_t ids[4] = { 0, 3, 2, 1 };
  BlWindow w = { 8, 4, 1, FALSE };
  BlWindow other = { 9, 4, 1, FALSE };
  BlKlKey key = { "fp", "", SHA, "plain", "gptq", 4, 0, 2 };
  g_autoptr(BlKlWindow) a = bl_kl_window_new (logits, 4, ids, &w, 2, 2);
  g_autoptr(BlKlWindow) b = NULL;

  g_assert_no_error (error);
  g_assert_null (bl_kl_store_load (store, &key, &w, 2, &error));
  g_assert_no_error (error);
  g_assert_cmpint (bl_kl_store_count (store, &key, &error), ==, 0);
  g_assert_true (bl_kl_store_save (store, &key, a, &error));
  g_assert_no_error (error);
  g_assert_cmpint (bl_kl_store_count (store, &key, &error), ==, 1);

  b = bl_kl_store_load (store, &key, &w, 2, &error);
  g_assert_no_error (error);
  g_assert_nonnull (b);
  g_assert_cmpint (b->n_positions, ==, 3);
  g_assert_cmpfloat (b->sum_nll, ==, a->sum_nll);
  g_assert_cmpmem (b->top_ids, 6 * 4, a->top_ids, 6 * 4);
  g_assert_cmpmem (b->top_logp, 6 * 4, a->top_logp, 6 * 4);
  g_assert_cmpmem (b->other_logp, 3 * 4, a->other_logp, 3 * 4);
  g_assert_cmpmem (b->target_logp, 3 * 4, a->target_logp, 3 * 4);

  /* another key misses; a window that moved is an error, not a silent mismatch */
  key.top_k = 3;
  g_assert_null (bl_kl_store_load (store, &key, &w, 2, &error));
  g_assert_no_error (error);
  key.top_k = 2;
  g_assert_null (bl_kl_store_load (store, &key, &other, 2, &error));
  g_assert_error (error, BL_ERROR, BL_ERROR_STORE);
  g_clear_error (&error);
  key.dataset_sha256 = NULL;
  g_assert_false (bl_kl_store_save (store, &key, a, &error));
  g_assert_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT);
}

static void
cancel_after_first (BlRun    *run,
                    guint     n_done,
                    gpointer  user_data)
{
  if (n_done == 2)
    g_cancellable_cancel (user_data);
}

/* The baseline is cached window by window: a cancelled run keeps what it finished, the rerun
 * computes only the rest, and a third run reads everything back with the same numbers. The
 * stored runs carry the plan, its size and the KL. */
static void
test_cache_and_cancel (Fixture       *f,
                       gconstpointer  data)
{
  g_autofree char *dir = g_dir_make_tmp ("bitlens-kl-XXXXXX", NULL);
  g_autofree char *path = g_build_filename (dir, "store.db", NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(BlStore) store = bl_store_open (path, &error);
  g_autoptr(BlQuantEngine) qe = quant_engine (f, "int4:g16");
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(BlRun) first = kl_run (f, qe, store, 6);
  g_autoptr(BlRun) second = NULL;
  g_autoptr(BlRun) third = NULL;
  g_autoptr(BlStoredRun) stored = NULL;
  g_autoptr(BlQuantPlan) plan = NULL;
  BlRunQuantRecord q;
  BlKlSummary s2, s3;
  BlQuantSize size;

  g_assert_no_error (error);
  g_signal_connect (first, "window-done", G_CALLBACK (cancel_after_first), cancellable);
  g_assert_false (bl_run_execute (first, cancellable, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&error);
  /* the third window's baseline pass saw the cancellation and cached nothing */
  g_assert_cmpuint (bl_run_get_n_baseline_computed (first), ==, 2);
  stored = bl_store_get_run (store, bl_run_get_store_id (first), &error);
  g_assert_no_error (error);
  g_assert_cmpstr (stored->status, ==, "cancelled");
  g_assert_cmpint (stored->n_windows_done, ==, 2);
  g_assert_true (bl_kl_store_get_run (store, stored->id, &q, &error));
  g_assert_cmpuint (q.kl.n_windows, ==, 2);
  g_assert_cmpint (q.kl.n_positions, ==, 2 * (CTX - 1));
  g_assert_cmpfloat (q.kl.kl, >, 0.0);
  g_clear_pointer (&stored, bl_stored_run_free);

  second = kl_run (f, qe, store, 6);
  g_assert_true (bl_run_execute (second, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (bl_run_get_n_baseline_cached (second), ==, 2);
  g_assert_cmpuint (bl_run_get_n_baseline_computed (second), ==, 4);

  third = kl_run (f, qe, store, 6);
  g_assert_true (bl_run_execute (third, NULL, &error));
  g_assert_cmpuint (bl_run_get_n_baseline_cached (third), ==, 6);
  g_assert_cmpuint (bl_run_get_n_baseline_computed (third), ==, 0);
  g_assert_true (bl_run_get_kl_summary (second, &s2));
  g_assert_true (bl_run_get_kl_summary (third, &s3));
  g_assert_cmpfloat (s2.kl, ==, s3.kl);
  g_assert_cmpfloat (s2.top1, ==, s3.top1);
  g_assert_cmpfloat (s2.delta_p, ==, s3.delta_p);

  stored = bl_store_get_run (store, bl_run_get_store_id (third), &error);
  g_assert_no_error (error);
  g_assert_cmpstr (stored->status, ==, "finished");
  plan = bl_quant_plan_new_from_json (stored->plan_json, -1, "stored", &error);
  g_assert_no_error (error);
  g_assert_cmpstr (bl_quant_plan_get_defaults (plan)->weight, ==, "int4:g16");
  g_assert_true (bl_kl_store_get_run (store, stored->id, &q, &error));
  g_assert_true (bl_run_get_quant_size (third, &size));
  g_assert_cmpfloat (q.linear_bits_per_weight, ==, size.linear_bits_per_weight);
  g_assert_cmpfloat (q.model_bits_per_weight, ==, size.model_bits_per_weight);
  g_assert_cmpint (q.top_k, ==, BL_KL_DEFAULT_TOP_K);
  g_assert_cmpfloat_with_epsilon (q.kl.kl, s3.kl, 1e-12);
  g_assert_cmpfloat_with_epsilon (q.kl.top1, s3.top1, 1e-12);
  g_assert_cmpuint (q.kl.n_windows, ==, 6);

  g_clear_object (&store);
  g_unlink (path);
  {
    g_autofree char *wal = g_strconcat (path, "-wal", NULL);
    g_autofree char *shm = g_strconcat (path, "-shm", NULL);

    g_unlink (wal);
    g_unlink (shm);
  }
  g_rmdir (dir);
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/bitlens/kl/by-hand", test_by_hand);
  g_test_add_func ("/bitlens/kl/store/round-trip", test_store_round_trip);
  g_test_add ("/bitlens/kl/full-precision-zero", Fixture, NULL, fixture_set_up,
              test_full_precision_zero, fixture_tear_down);
  g_test_add ("/bitlens/kl/int4-positive", Fixture, NULL, fixture_set_up, test_int4_positive,
              fixture_tear_down);
  g_test_add ("/bitlens/kl/cache-and-cancel", Fixture, NULL, fixture_set_up,
              test_cache_and_cancel, fixture_tear_down);

  return g_test_run ();
}
