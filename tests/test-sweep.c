/* test-sweep.c: sweep points, shards, resumption after a failure and after SIGKILL, merge
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include <glib/gstdio.h>
#include <math.h>
#include <signal.h>
#include <string.h>

#include "bl-error.h"
#include "bl-format.h"
#include "bl-quant-plan.h"
#include "bl-sweep.h"

static const char *const menu[] = { "int3:g32", "int4:g32", "int8:channel" };
static const double budgets[] = { 3.5, 4.0, 5.0, 6.0 };

#define N_LAYERS 14

/* two blocks of a 32-wide model with 64-wide MLPs, losses falling with the bits */
static BlAllocProblem *
make_problem (double *params)
{
  BlAllocProblem *p = bl_alloc_problem_new (1);
  static const char *const proj[] = { "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                                      "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj" };

  for (guint l = 0; l < N_LAYERS; l++)
    {
      g_autofree char *name = g_strdup_printf ("model.layers.%u.%s.weight", l / 7, proj[l % 7]);
      gint64 rows = l % 7 == 6 ? 32 : l % 7 >= 4 ? 64 : 32, cols = l % 7 == 6 ? 64 : 32;
      guint item = bl_alloc_problem_add_item (p, name);

      params[l] = (double) (rows * cols);
      for (guint o = 0; o < G_N_ELEMENTS (menu); o++)
        {
          BlFormatSpec spec;
          double bits;

          g_assert_true (bl_format_spec_parse (menu[o], &spec, NULL));
          bits = round (bl_format_spec_bits_for_shape (&spec, rows, cols) * (double) (rows * cols));
          bl_alloc_problem_add_option (p, item, menu[o], (1.0 + (l * 7) % 5) * exp2 (-2.0 * spec.bits), &bits);
        }
    }
  return p;
}

typedef struct
{
  int calls;
  int fail_at;           /* fail on this call (1-based), 0: never */
  gboolean kill;         /* SIGKILL instead of an error */
} Measure;

/* a deterministic stand-in for a measurement */
static gboolean
measure (BlSweepPoint  *p,
         gpointer       user_data,
         GCancellable  *cancellable,
         GError       **error)
{
  Measure *m = user_data;

  m->calls++;
  if (m->fail_at != 0 && m->calls == m->fail_at)
    {
      if (m->kill)
        raise (SIGKILL);
      g_set_error (error, BL_ERROR, BL_ERROR_GPU, "simulated failure");
      return FALSE;
    }
  p->kl = 1.25 * p->predicted_loss + 1e-3 * p->index;
  p->kl_ci_low = p->kl * 0.9;
  p->kl_ci_high = p->kl * 1.1;
  p->top1 = 1.0 - p->kl;
  p->base_nll = 2.0;
  p->nll = 2.0 + 0.5 * p->kl;
  p->n_tokens = 1000;
  p->wall_seconds = 0.01 * p->index;
  return TRUE;
}

static GPtrArray *
points (void)
{
  double params[N_LAYERS];
  g_autoptr (BlAllocProblem) p = make_problem (params);
  g_autoptr (GError) error = NULL;
  GPtrArray *pts = bl_sweep_make_points (p, params, "kl", budgets, G_N_ELEMENTS (budgets), &error);

  g_assert_no_error (error);
  return pts;
}

static char *
tmp_file (const char *dir,
          const char *name)
{
  char *path = g_build_filename (dir, name, NULL);

  g_unlink (path);
  return path;
}

static const char config[] = "{\"menu\":[\"int3:g32\",\"int4:g32\",\"int8:channel\"],\"budgets\":[3.5,4,5,6]}";

static GPtrArray *
run_into (const char *path,
          guint       shard,
          guint       n_shards,
          Measure    *m,
          GError    **error)
{
  g_autoptr (GPtrArray) pts = points ();
  g_autoptr (BlSweep) sw = bl_sweep_open (path, config, "fp", error);

  if (sw == NULL || !bl_sweep_run (sw, pts, shard, n_shards, measure, m, NULL, NULL, NULL, error))
    return NULL;
  return bl_sweep_list_points (sw, error);
}

static void
assert_same_points (GPtrArray *a,
                    GPtrArray *b)
{
  g_assert_cmpuint (a->len, ==, b->len);
  for (guint k = 0; k < a->len; k++)
    {
      const BlSweepPoint *x = a->pdata[k], *y = b->pdata[k];

      g_assert_cmpstr (x->key, ==, y->key);
      g_assert_cmpstr (x->plan_json, ==, y->plan_json);
      g_assert_cmpfloat (x->kl, ==, y->kl);
      g_assert_cmpfloat (x->bits_per_weight, ==, y->bits_per_weight);
      g_assert_cmpfloat (x->predicted_loss, ==, y->predicted_loss);
      g_assert_cmpint (x->n_tokens, ==, y->n_tokens);
    }
}

static void
test_points (void)
{
  g_autoptr (GPtrArray) pts = points ();

  /* four budgets and three uniform plans */
  g_assert_cmpuint (pts->len, ==, 4 + 3);
  for (guint k = 0; k < pts->len; k++)
    {
      const BlSweepPoint *p = pts->pdata[k];
      g_autoptr (GError) error = NULL;
      g_autoptr (BlQuantPlan) plan = bl_quant_plan_new_from_json (p->plan_json, -1, p->key, &error);

      g_assert_no_error (error);
      g_assert_cmpint (p->index, ==, (int) k);
      g_assert_cmpuint (bl_quant_plan_get_n_rules (plan), ==, N_LAYERS);
      if (k < 4)
        {
          g_assert_cmpstr (p->kind, ==, "allocated");
          /* the budget holds exactly */
          g_assert_cmpfloat (p->bits_per_weight, <=, budgets[k]);
        }
      else
        g_assert_cmpstr (p->kind, ==, "uniform");
    }
  g_assert_cmpstr (((BlSweepPoint *) pts->pdata[1])->key, ==, "alloc:kl:4");
  g_assert_cmpstr (((BlSweepPoint *) pts->pdata[5])->key, ==, "uniform:int4:g32");
  /* int4:g32 costs 4.5 bits per weight (a 16-bit scale per 32), so the 5-bit budget affords
   * it: the optimum under that budget predicts no more loss than the uniform plan, and the
   * 4-bit budget cannot afford it */
  g_assert_cmpfloat (((BlSweepPoint *) pts->pdata[5])->bits_per_weight, ==, 4.5);
  g_assert_cmpfloat (((BlSweepPoint *) pts->pdata[1])->bits_per_weight, <, 4.5);
  g_assert_cmpfloat (((BlSweepPoint *) pts->pdata[2])->predicted_loss, <=,
                     ((BlSweepPoint *) pts->pdata[5])->predicted_loss);
  /* more bits never predict more loss */
  for (guint k = 1; k < 4; k++)
    g_assert_cmpfloat (((BlSweepPoint *) pts->pdata[k])->predicted_loss, <=,
                       ((BlSweepPoint *) pts->pdata[k - 1])->predicted_loss);
}

/* four shards merged give exactly the unsharded sweep */
static void
test_shards_merge (void)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("bitlens-sweep-XXXXXX", &error);
  g_autofree char *whole = tmp_file (dir, "whole.db");
  g_autofree char *merged = tmp_file (dir, "merged.db");
  char *shards[5] = { NULL };
  g_autoptr (GPtrArray) a = NULL;
  g_autoptr (GPtrArray) b = NULL;
  Measure m = { 0 };
  guint n_points = 0;

  a = run_into (whole, 0, 1, &m, &error);
  g_assert_no_error (error);
  g_assert_cmpint (m.calls, ==, 7);
  for (guint s = 0; s < 4; s++)
    {
      g_autofree char *name = g_strdup_printf ("shard%u.db", s);
      g_autoptr (GPtrArray) part = NULL;
      Measure ms = { 0 };

      shards[s] = tmp_file (dir, name);
      part = run_into (shards[s], s, 4, &ms, &error);
      g_assert_no_error (error);
      /* indices s, s+4: two points for shards 0–2, one for shard 3 */
      g_assert_cmpint (ms.calls, ==, s < 3 ? 2 : 1);
    }
  g_assert_true (bl_sweep_merge (merged, (const char * const *) shards, &n_points, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (n_points, ==, 7);
  {
    g_autoptr (BlSweep) sw = bl_sweep_open_existing (merged, &error);

    b = bl_sweep_list_points (sw, &error);
  }
  assert_same_points (a, b);
  /* merging again is a no-op */
  g_assert_true (bl_sweep_merge (merged, (const char * const *) shards, &n_points, &error));
  g_assert_cmpuint (n_points, ==, 7);

  for (guint s = 0; s < 4; s++)
    {
      g_unlink (shards[s]);
      g_free (shards[s]);
    }
  g_unlink (whole);
  g_unlink (merged);
  g_rmdir (dir);
}

/* A failure mid-sweep keeps what was measured; the re-run measures only the rest. */
static void
test_resume_after_error (void)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("bitlens-sweep-XXXXXX", &error);
  g_autofree char *path = tmp_file (dir, "resume.db");
  g_autofree char *ref = tmp_file (dir, "ref.db");
  Measure m = { 0, 3, FALSE }, m2 = { 0 }, m3 = { 0 };
  g_autoptr (GPtrArray) got = NULL;
  g_autoptr (GPtrArray) want = NULL;

  g_assert_null (run_into (path, 0, 1, &m, &error));
  g_assert_error (error, BL_ERROR, BL_ERROR_GPU);
  g_clear_error (&error);
  got = run_into (path, 0, 1, &m2, &error);
  g_assert_no_error (error);
  g_assert_cmpint (m2.calls, ==, 5);
  want = run_into (ref, 0, 1, &m3, &error);
  assert_same_points (got, want);
  g_unlink (path);
  g_unlink (ref);
  g_rmdir (dir);
}

/* The real thing: the process is killed while measuring its fourth point. */
static void
test_resume_after_kill (void)
{
  g_autofree char *path = g_build_filename (g_get_tmp_dir (), "bitlens-sweep-kill.db", NULL);

  if (g_test_subprocess ())
    {
      Measure m = { 0, 4, TRUE };

      run_into (path, 0, 1, &m, NULL);
      return;
    }
  g_unlink (path);
  g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
  g_test_trap_assert_failed ();
  {
    g_autoptr (GError) error = NULL;
    g_autoptr (GPtrArray) got = NULL;
    Measure m = { 0 };

    {
      g_autoptr (BlSweep) sw = bl_sweep_open_existing (path, &error);
      g_autoptr (GPtrArray) before = bl_sweep_list_points (sw, &error);

      g_assert_no_error (error);
      g_assert_cmpuint (before->len, ==, 3);
    }
    got = run_into (path, 0, 1, &m, &error);
    g_assert_no_error (error);
    g_assert_cmpint (m.calls, ==, 4);
    g_assert_cmpuint (got->len, ==, 7);
  }
  g_unlink (path);
}

static void
test_mismatch (void)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("bitlens-sweep-XXXXXX", &error);
  g_autofree char *a = tmp_file (dir, "a.db");
  g_autofree char *b = tmp_file (dir, "b.db");
  g_autofree char *out = tmp_file (dir, "out.db");
  const char *inputs[] = { a, b, NULL };
  guint i, n;

  {
    g_autoptr (BlSweep) sa = bl_sweep_open (a, config, "fp", &error);
    g_autoptr (BlSweep) sb = bl_sweep_open (b, "{\"menu\":[]}", "fp", &error);

    g_assert_no_error (error);
  }
  /* the same file cannot be reused for other settings */
  g_assert_null (bl_sweep_open (a, "{\"other\":1}", "fp", &error));
  g_assert_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_assert_null (bl_sweep_open (a, config, "another-model", &error));
  g_assert_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_assert_false (bl_sweep_merge (out, inputs, NULL, &error));
  g_assert_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT);
  g_assert_false (g_file_test (out, G_FILE_TEST_EXISTS));
  g_clear_error (&error);

  g_assert_true (bl_sweep_parse_shard ("3/64", &i, &n, NULL));
  g_assert_cmpuint (i, ==, 3);
  g_assert_cmpuint (n, ==, 64);
  g_assert_false (bl_sweep_parse_shard ("4/4", &i, &n, NULL));
  g_assert_false (bl_sweep_parse_shard ("1/0", &i, &n, NULL));
  g_assert_false (bl_sweep_parse_shard ("a/2", &i, &n, NULL));
  g_assert_false (bl_sweep_parse_shard ("1/2x", &i, &n, NULL));
  g_unlink (a);
  g_unlink (b);
  g_rmdir (dir);
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/bitlens/sweep/points", test_points);
  g_test_add_func ("/bitlens/sweep/shards-merge", test_shards_merge);
  g_test_add_func ("/bitlens/sweep/resume/error", test_resume_after_error);
  g_test_add_func ("/bitlens/sweep/resume/kill", test_resume_after_kill);
  g_test_add_func ("/bitlens/sweep/mismatch", test_mismatch);
  return g_test_run ();
}
