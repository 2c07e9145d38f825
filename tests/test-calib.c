/* test-calib.c: calibration statistics against the same quantities computed by hand
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * A recording hook captures every linear layer's input over the same windows that
 * bl_calib_collect() runs; the test then computes each statistic directly (two-pass moments,
 * XᵀX by triple loop, histogram counts with the layer's own edges) and compares.
 */
#include <math.h>
#include <string.h>

#include "bl-calib.h"
#include "bl-engine.h"
#include "bl-error.h"
#include "bl-metrics-error.h"
#include "bl-protocol.h"

#define N_IDS 300
#define CTX 24
#define N_WINDOWS 3

static BlModel *
load_fixture (const char *variant)
{
  g_autofree char *dir = g_test_build_filename (G_TEST_DIST, "fixtures", "tiny-llama", variant,
                                                NULL);
  g_autoptr (GError) error = NULL;
  BlModel *model = bl_model_load (dir, NULL, &error);

  g_assert_no_error (error);
  return model;
}

static BlBackend *
cpu_backend (void)
{
  g_autoptr (GError) error = NULL;
  BlBackend *backend = bl_backend_new ("cpu", 1, &error);

  g_assert_no_error (error);
  return backend;
}

static int32_t *
random_ids (int vocab)
{
  g_autoptr (GRand) rand = g_rand_new_with_seed (7);
  int32_t *ids = g_new (int32_t, N_IDS);

  for (int i = 0; i < N_IDS; i++)
    ids[i] = g_rand_int_range (rand, 0, vocab);
  return ids;
}

static void
test_windows (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GArray) a = bl_calib_make_windows (1000, 64, 20, 42, &error);
  g_autoptr (GArray) b = bl_calib_make_windows (1000, 64, 20, 42, &error);
  g_autoptr (GArray) c = bl_calib_make_windows (1000, 64, 20, 43, &error);
  gboolean differ = FALSE;

  g_assert_no_error (error);
  g_assert_cmpuint (a->len, ==, 20);
  for (guint i = 0; i < a->len; i++)
    {
      const BlWindow *wa = &g_array_index (a, BlWindow, i);

      g_assert_cmpint (wa->start, ==, g_array_index (b, BlWindow, i).start);
      differ |= wa->start != g_array_index (c, BlWindow, i).start;
      g_assert_cmpint (wa->start, >=, 0);
      g_assert_cmpint (wa->start + wa->length, <=, 1000);
      g_assert_cmpint (wa->length, ==, 64);
    }
  g_assert_true (differ);
  g_assert_null (bl_calib_make_windows (63, 64, 1, 0, &error));
  g_assert_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT);
}

/* every hook call's input, per layer name, concatenated over windows */
typedef struct
{
  GHashTable *inputs;   /* name → GArray of float */
  GHashTable *cols;     /* name → GINT_TO_POINTER (cols) */
  GPtrArray *q0;        /* per window: block 0's q input (GArray of float) */
} Recorder;

static void
record_hook (const char  *layer_name,
             BlLayerKind  kind,
             int          block,
             float       *x,
             int          n_tokens,
             int          dim,
             gpointer     user_data)
{
  Recorder *r = user_data;
  GArray *a = g_hash_table_lookup (r->inputs, layer_name);

  if (a == NULL)
    {
      a = g_array_new (FALSE, FALSE, sizeof (float));
      g_hash_table_insert (r->inputs, g_strdup (layer_name), a);
      g_hash_table_insert (r->cols, g_strdup (layer_name), GINT_TO_POINTER (dim));
    }
  g_array_append_vals (a, x, (guint) (n_tokens * dim));
  if (kind == BL_LAYER_ATTN_Q && block == 0)
    {
      GArray *q = g_array_new (FALSE, FALSE, sizeof (float));

      g_array_append_vals (q, x, (guint) (n_tokens * dim));
      g_ptr_array_add (r->q0, q);
    }
}

static void
count_progress (int      done,
                int      total,
                gpointer user_data)
{
  int *calls = user_data;

  g_assert_cmpint (done, ==, *calls + 1);
  g_assert_cmpint (total, ==, N_WINDOWS);
  (*calls)++;
}

static void
assert_close (double got,
              double want,
              double rel)
{
  double tol = rel * MAX (1.0, fabs (want));

  if (!(fabs (got - want) <= tol))
    g_error ("got %.17g, want %.17g (tolerance %.3g)", got, want, tol);
}

static void
check_layer (const BlCalibLayer *l,
             const float        *x,
             int64_t             n,
             BlModel            *model)
{
  int64_t cols = l->cols;
  g_autofree double *h = g_new0 (double, cols * cols);
  g_autofree gint64 *hist = g_new0 (gint64, l->n_bins);
  const BlTensor *t = bl_model_get_tensor (model, l->name);
  g_autofree float *w = g_new (float, t->n_elements);
  gint64 under = 0, over = 0;
  double width = (l->hist_hi - l->hist_lo) / l->n_bins, amax = 0.0;

  g_assert_cmpint (l->n_tokens, ==, n);
  for (int64_t j = 0; j < cols; j++)
    {
      double s = 0, sa = 0, sq = 0, mx = 0;

      for (int64_t t2 = 0; t2 < n; t2++)
        {
          double v = x[t2 * cols + j];

          s += v;
          sa += fabs (v);
          sq += v * v;
          mx = MAX (mx, fabs (v));
        }
      assert_close (l->act_mean[j], s / n, 1e-12);
      assert_close (l->act_mean_abs[j], sa / n, 1e-12);
      assert_close (l->act_mean_sq[j], sq / n, 1e-12);
      g_assert_cmpfloat (l->act_absmax[j], ==, mx);
      amax = MAX (amax, mx);
    }
  /* outliers: the largest channel first, in decreasing order */
  g_assert_cmpint (l->n_outliers, ==, MIN (8, cols));
  g_assert_cmpfloat (l->act_absmax[l->outlier_channels[0]], ==, amax);
  for (int i = 1; i < l->n_outliers; i++)
    g_assert_cmpfloat (l->act_absmax[l->outlier_channels[i]], <=,
                       l->act_absmax[l->outlier_channels[i - 1]]);

  assert_close (l->act.kurtosis, bl_metrics_kurtosis (x, n * cols), 1e-9);
  assert_close (l->act.crest, bl_metrics_crest_factor (x, n * cols), 1e-12);
  g_assert_cmpfloat (l->act.absmax, ==, amax);

  for (int64_t i = 0; i < n * cols; i++)
    {
      double v = x[i];

      if (v < l->hist_lo)
        under++;
      else if (v >= l->hist_hi)
        over++;
      else
        hist[MIN (l->n_bins - 1, (int) ((v - l->hist_lo) / width))]++;
    }
  g_assert_cmpint (l->hist_underflow, ==, under);
  g_assert_cmpint (l->hist_overflow, ==, over);
  g_assert_cmpmem (l->hist, sizeof (gint64) * l->n_bins, hist, sizeof (gint64) * l->n_bins);
  g_assert_cmpfloat (l->hist_hi, ==, -l->hist_lo);
  g_assert_cmpfloat (l->hist_hi, >, 0.0);

  /* the Hessian is XᵀX */
  g_assert_nonnull (l->hessian);
  for (int64_t t2 = 0; t2 < n; t2++)
    for (int64_t i = 0; i < cols; i++)
      for (int64_t j = 0; j < cols; j++)
        h[i * cols + j] += (double) x[t2 * cols + i] * x[t2 * cols + j];
  for (int64_t i = 0; i < cols * cols; i++)
    assert_close (l->hessian[i], h[i], 1e-12);

  /* weight statistics */
  bl_tensor_to_f32 (t, w);
  assert_close (l->weight.kurtosis, bl_metrics_kurtosis (w, t->n_elements), 1e-9);
  assert_close (l->weight.crest, bl_metrics_crest_factor (w, t->n_elements), 1e-12);
  for (int64_t j = 0; j < cols; j++)
    {
      float mx = 0;

      for (int64_t r = 0; r < l->rows; r++)
        mx = MAX (mx, fabsf (w[r * cols + j]));
      g_assert_cmpfloat (l->weight_col_absmax[j], ==, mx);
    }
}

static void
test_stats (void)
{
  g_autoptr (BlModel) model = load_fixture ("llama-tied-bf16");
  g_autoptr (BlBackend) backend = cpu_backend ();
  g_autoptr (GError) error = NULL;
  g_autofree int32_t *ids = random_ids (bl_model_get_config (model)->vocab_size);
  g_autoptr (GArray) windows = bl_calib_make_windows (N_IDS, CTX, N_WINDOWS, 5, &error);
  g_autoptr (BlCalib) calib = NULL;
  g_autoptr (BlEngine) engine = NULL;
  Recorder rec;
  BlEngineHooks hooks = { NULL, record_hook, &rec };
  BlCalibOptions options = { BL_CALIB_HESSIAN | BL_CALIB_BLOCK_IO, NULL, 64, 0, "random", 5 };
  const char *dataset;
  guint64 seed;
  int n_windows, ctx, calls = 0;
  g_autofree char *json = NULL;
  const int n_blocks = bl_model_get_config (model)->n_layers, hidden = bl_model_get_config (model)->hidden_size;
  g_autofree float *embed = NULL;
  g_autofree float *gain0 = NULL;
  double sum_cos = 0.0;

  g_assert_no_error (error);
  calib = bl_calib_collect (model, backend, ids, N_IDS, windows, &options, NULL,
                            count_progress, &calls, &error);
  g_assert_no_error (error);
  g_assert_cmpint (calls, ==, N_WINDOWS);

  rec.inputs = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify) g_array_unref);
  rec.cols = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  rec.q0 = g_ptr_array_new_with_free_func ((GDestroyNotify) g_array_unref);
  engine = bl_engine_new (model, backend, &hooks, &error);
  g_assert_no_error (error);
  for (guint i = 0; i < windows->len; i++)
    {
      const BlWindow *w = &g_array_index (windows, BlWindow, i);
      double nll;

      g_assert_true (bl_engine_nll (engine, ids + w->start, w->length, w->length - 1, &nll, NULL, &error));
      g_assert_no_error (error);
    }

  /* 2 blocks × 7 linear layers + the tied lm_head */
  g_assert_cmpuint (bl_calib_get_n_layers (calib), ==, 2 * 7 + 1);
  g_assert_nonnull (bl_calib_get_layer (calib, "lm_head.weight"));
  g_assert_null (bl_calib_get_layer (calib, "no.such.weight"));
  for (guint i = 0; i < bl_calib_get_n_layers (calib); i++)
    {
      const BlCalibLayer *l = bl_calib_get_layer_at (calib, i);
      GArray *x = g_hash_table_lookup (rec.inputs, l->name);

      g_assert_nonnull (x);
      g_assert_cmpint (GPOINTER_TO_INT (g_hash_table_lookup (rec.cols, l->name)), ==, l->cols);
      g_assert_cmpint (l->n_bins, ==, 64);
      check_layer (l, (const float *) x->data, x->len / l->cols, model);
    }

  bl_calib_get_provenance (calib, &dataset, &seed, &n_windows, &ctx);
  g_assert_cmpstr (dataset, ==, "random");
  g_assert_cmpuint (seed, ==, 5);
  g_assert_cmpint (n_windows, ==, N_WINDOWS);
  g_assert_cmpint (ctx, ==, CTX);
  json = bl_calib_provenance_to_json (calib);
  g_assert_cmpstr (json, ==, "{\"dataset\":\"random\",\"seed\":5,\"windows\":3,\"ctx\":24,\"hessian\":true,\"block_io\":true}");

  /* the block-I/O premise: block 0's q input divided by the norm gain is parallel to the
   * embedding rows, the block's actual input h_0 */
  embed = g_new (float, bl_model_get_tensor (model, "model.embed_tokens.weight")->n_elements);
  bl_tensor_to_f32 (bl_model_get_tensor (model, "model.embed_tokens.weight"), embed);
  gain0 = g_new (float, hidden);
  bl_tensor_to_f32 (bl_model_get_tensor (model, "model.layers.0.input_layernorm.weight"), gain0);
  for (guint i = 0; i < windows->len; i++)
    {
      const BlWindow *w = &g_array_index (windows, BlWindow, i);
      const float *q = (const float *) ((GArray *) g_ptr_array_index (rec.q0, i))->data;

      for (int t = 0; t < w->length - 1; t++)
        {
          const float *e = embed + (gsize) ids[w->start + t] * hidden;
          double dot = 0, na = 0, nb = 0;

          for (int j = 0; j < hidden; j++)
            {
              double u = q[t * hidden + j] / gain0[j];

              dot += u * e[j];
              na += u * u;
              nb += (double) e[j] * e[j];
            }
          assert_close (dot / sqrt (na * nb), 1.0, 1e-5);
        }
    }

  /* LIM of the last block: cos(h_(L−1), h_L) from its q input and the lm_head input */
  {
    GArray *qa = g_hash_table_lookup (rec.inputs, "model.layers.1.self_attn.q_proj.weight");
    GArray *ha = g_hash_table_lookup (rec.inputs, "lm_head.weight");
    g_autofree float *g1 = g_new (float, hidden);
    g_autofree float *gf = g_new (float, hidden);
    const BlCalibBlock *b = bl_calib_get_block (calib, (guint) n_blocks - 1);

    bl_tensor_to_f32 (bl_model_get_tensor (model, "model.layers.1.input_layernorm.weight"), g1);
    bl_tensor_to_f32 (bl_model_get_tensor (model, "model.norm.weight"), gf);
    for (guint t = 0; t < qa->len / hidden; t++)
      {
        double dot = 0, na = 0, nb = 0;

        for (int j = 0; j < hidden; j++)
          {
            double u = g_array_index (qa, float, t * hidden + j) / g1[j];
            double v = g_array_index (ha, float, t * hidden + j) / gf[j];

            dot += u * v;
            na += u * u;
            nb += v * v;
          }
        sum_cos += dot / sqrt (na * nb);
      }
    g_assert_cmpint (b->n_tokens, ==, qa->len / hidden);
    assert_close (b->mean_cos, sum_cos / (qa->len / hidden), 1e-6);
    assert_close (b->lim, -b->mean_cos, 0.0);
    g_assert_null (bl_calib_get_block (calib, (guint) n_blocks));
  }

  g_hash_table_unref (rec.inputs);
  g_hash_table_unref (rec.cols);
  g_ptr_array_unref (rec.q0);
}

/* without BL_CALIB_HESSIAN no layer carries one; with globs only the matching inputs do */
static void
test_hessian_selection (void)
{
  g_autoptr (BlModel) model = load_fixture ("llama-tied-bf16");
  g_autoptr (BlBackend) backend = cpu_backend ();
  g_autoptr (GError) error = NULL;
  g_autofree int32_t *ids = random_ids (bl_model_get_config (model)->vocab_size);
  g_autoptr (GArray) windows = bl_calib_make_windows (N_IDS, CTX, 1, 1, &error);
  g_autoptr (BlCalib) none = NULL;
  g_autoptr (BlCalib) some = NULL;
  const char *const globs[] = { "*.mlp.down_proj.weight", NULL };
  BlCalibOptions options = { BL_CALIB_HESSIAN, globs, 0, 0, NULL, 0 };

  none = bl_calib_collect (model, backend, ids, N_IDS, windows, NULL, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  some = bl_calib_collect (model, backend, ids, N_IDS, windows, &options, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  for (guint i = 0; i < bl_calib_get_n_layers (none); i++)
    {
      const BlCalibLayer *a = bl_calib_get_layer_at (none, i);
      const BlCalibLayer *b = bl_calib_get_layer (some, a->name);

      g_assert_null (a->hessian);
      g_assert_true ((b->hessian != NULL) == g_pattern_match_simple (globs[0], a->name));
      g_assert_cmpint (a->n_bins, ==, 256);
    }
}

static void
test_cancel (void)
{
  g_autoptr (BlModel) model = load_fixture ("llama-tied-bf16");
  g_autoptr (BlBackend) backend = cpu_backend ();
  g_autoptr (GError) error = NULL;
  g_autofree int32_t *ids = random_ids (bl_model_get_config (model)->vocab_size);
  g_autoptr (GArray) windows = bl_calib_make_windows (N_IDS, CTX, 2, 1, &error);
  g_autoptr (GCancellable) cancellable = g_cancellable_new ();
  BlWindow bad = { N_IDS - 4, 8, 1, FALSE };

  g_cancellable_cancel (cancellable);
  g_assert_null (bl_calib_collect (model, backend, ids, N_IDS, windows, NULL, cancellable,
                                   NULL, NULL, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&error);

  g_array_append_val (windows, bad);
  g_assert_null (bl_calib_collect (model, backend, ids, N_IDS, windows, NULL, NULL, NULL, NULL, &error));
  g_assert_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT);
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/bitlens/calib/windows", test_windows);
  g_test_add_func ("/bitlens/calib/stats-by-hand", test_stats);
  g_test_add_func ("/bitlens/calib/hessian-selection", test_hessian_selection);
  g_test_add_func ("/bitlens/calib/cancel", test_cancel);
  return g_test_run ();
}
