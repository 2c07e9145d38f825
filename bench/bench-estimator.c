/* bench-estimator.c: how fast the estimator predicts a plan, against measuring it
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 *   bench-estimator [--layers 30] [--hidden 128] [--plans 1000] [--threads 1]
 *
 * The model is SYNTHETIC: a Llama of --layers blocks (7 linear layers each, plus the tied
 * lm_head) with Gaussian weights, written to a temporary directory, so the figure measures
 * the estimator, not a checkpoint. It builds a sensitivity budget (2 windows of 32 ids) with
 * the one-at-a-time KL of int4:g32, then times:
 *
 *   - cold: the first prediction of a plan that uses a (layer, format) pair not seen before,
 *     which fake-quantizes that layer once (this part grows with the weights' size);
 *   - warm: --plans random mixed plans over int4:g32, int8:channel, mxfp4 and full precision,
 *     every pair already seen: the interactive case, the one that must answer in < 50 ms;
 *   - the baseline: measuring one such plan over the same budget (bl_sensitivity_measure_plan()),
 *     which is what the prediction stands in for.
 *
 * Prints one JSON object; "warm_speedup" is measure / warm prediction.
 */
#include <math.h>
#include <stdio.h>

#include <glib/gstdio.h>

#include "bl-estimator.h"
#include "bl-sensitivity.h"
#include "safetensors-writer.h"

static void
add_matrix (StWriter   *w,
            GRand      *rand,
            const char *name,
            int64_t     rows,
            int64_t     cols,
            double      scale)
{
  g_autofree float *v = g_new (float, rows * cols);
  int64_t shape[2] = { rows, cols };

  /* Box–Muller Gaussians */
  for (int64_t i = 0; i < rows * cols; i++)
    {
      double u1 = g_rand_double_range (rand, 1e-12, 1.0), u2 = g_rand_double (rand);

      v[i] = (float) (scale * sqrt (-2.0 * log (u1)) * cos (2.0 * G_PI * u2));
    }
  st_writer_add (w, name, BL_DTYPE_F32, 2, shape, v);
}

static void
add_ones (StWriter   *w,
          const char *name,
          int64_t     n)
{
  g_autofree float *v = g_new (float, n);
  int64_t shape[1] = { n };

  for (int64_t i = 0; i < n; i++)
    v[i] = 1.0f;
  st_writer_add (w, name, BL_DTYPE_F32, 1, shape, v);
}

static char *
write_model (int n_layers,
             int hidden)
{
  static const struct { const char *name; int rows_h, cols_h; } proj[] = {
    { "self_attn.q_proj", 1, 1 }, { "self_attn.k_proj", 1, 1 }, { "self_attn.v_proj", 1, 1 },
    { "self_attn.o_proj", 1, 1 }, { "mlp.gate_proj", 3, 1 }, { "mlp.up_proj", 3, 1 },
    { "mlp.down_proj", 1, 3 },
  };
  g_autoptr(GError) error = NULL;
  g_autoptr(StWriter) w = st_writer_new ();
  g_autoptr(GRand) rand = g_rand_new_with_seed (7);
  g_autofree char *dir = g_dir_make_tmp ("bench-estimator-XXXXXX", &error);
  g_autofree char *config = NULL;
  g_autofree char *config_path = NULL;
  g_autofree char *model_path = NULL;
  int vocab = 512, inter = 3 * hidden;

  g_assert_no_error (error);
  add_matrix (w, rand, "model.embed_tokens.weight", vocab, hidden, 1.0);
  for (int l = 0; l < n_layers; l++)
    {
      for (guint p = 0; p < G_N_ELEMENTS (proj); p++)
        {
          g_autofree char *name = g_strdup_printf ("model.layers.%d.%s.weight", l, proj[p].name);
          int64_t rows = proj[p].rows_h == 3 ? inter : hidden;
          int64_t cols = proj[p].cols_h == 3 ? inter : hidden;

          add_matrix (w, rand, name, rows, cols, 1.0 / sqrt ((double) cols));
        }
      {
        g_autofree char *in = g_strdup_printf ("model.layers.%d.input_layernorm.weight", l);
        g_autofree char *post = g_strdup_printf ("model.layers.%d.post_attention_layernorm.weight", l);

        add_ones (w, in, hidden);
        add_ones (w, post, hidden);
      }
    }
  add_ones (w, "model.norm.weight", hidden);
  model_path = g_build_filename (dir, "model.safetensors", NULL);
  st_writer_write (w, model_path);

  config = g_strdup_printf ("{\"architectures\": [\"LlamaForCausalLM\"], \"model_type\": \"llama\", "
                            "\"vocab_size\": %d, \"hidden_size\": %d, \"intermediate_size\": %d, "
                            "\"num_hidden_layers\": %d, \"num_attention_heads\": 4, "
                            "\"num_key_value_heads\": 4, \"max_position_embeddings\": 64, "
                            "\"rms_norm_eps\": 1e-5, \"rope_theta\": 10000.0, "
                            "\"tie_word_embeddings\": true, \"torch_dtype\": \"float32\"}",
                            vocab, hidden, inter, n_layers);
  config_path = g_build_filename (dir, "config.json", NULL);
  g_assert_true (g_file_set_contents (config_path, config, -1, NULL));
  return g_steal_pointer (&dir);
}

static void
remove_model (const char *dir)
{
  g_autofree char *a = g_build_filename (dir, "model.safetensors", NULL);
  g_autofree char *b = g_build_filename (dir, "config.json", NULL);

  g_unlink (a);
  g_unlink (b);
  g_rmdir (dir);
}

static GHashTable *
random_plan (BlSensitivity *sens,
             GRand         *rand)
{
  static const char *const menu[] = { NULL, "int4:g32", "int8:channel", "mxfp4" };
  GHashTable *plan = g_hash_table_new (g_str_hash, g_str_equal);

  for (guint i = 0; i < bl_sensitivity_get_n_layers (sens); i++)
    {
      const char *spec = menu[g_rand_int_range (rand, 0, G_N_ELEMENTS (menu))];

      if (spec != NULL)
        g_hash_table_insert (plan, (gpointer) bl_sensitivity_get_layer_name (sens, i),
                             (gpointer) spec);
    }
  return plan;
}

static GHashTable *
uniform_plan (BlSensitivity *sens,
              const char    *spec)
{
  GHashTable *plan = g_hash_table_new (g_str_hash, g_str_equal);

  for (guint i = 0; i < bl_sensitivity_get_n_layers (sens); i++)
    g_hash_table_insert (plan, (gpointer) bl_sensitivity_get_layer_name (sens, i),
                         (gpointer) spec);
  return plan;
}

int
main (int   argc,
      char *argv[])
{
  int n_layers = 30, hidden = 128, n_plans = 1000, n_threads = 1;
  GOptionEntry entries[] = {
    { "layers", 0, 0, G_OPTION_ARG_INT, &n_layers, "Transformer blocks", "N" },
    { "hidden", 0, 0, G_OPTION_ARG_INT, &hidden, "Hidden size (a multiple of 32)", "N" },
    { "plans", 0, 0, G_OPTION_ARG_INT, &n_plans, "Warm predictions to time", "N" },
    { "threads", 0, 0, G_OPTION_ARG_INT, &n_threads, "CPU threads", "T" },
    { NULL }
  };
  g_autoptr(GOptionContext) octx = g_option_context_new ("— time the estimator");
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = NULL;
  g_autoptr(BlModel) model = NULL;
  g_autoptr(BlBackend) backend = NULL;
  g_autoptr(BlSensitivity) sens = NULL;
  g_autoptr(BlEstimator) est = NULL;
  g_autoptr(GPtrArray) table = NULL;
  g_autoptr(GRand) rand = g_rand_new_with_seed (11);
  g_autofree int32_t *ids = NULL;
  BlSensitivityOptions opts = { .n_windows = 2, .ctx = 32, .seed = 3 };
  const char *cold_specs[] = { "int8:channel", "mxfp4" };
  double cold_s = 0.0, warm_total = 0.0, warm_max = 0.0, measure_s, checksum = 0.0;
  BlPlanMeasurement m;
  BlEstimate e;
  gint64 t0;
  int n_ids = 2000;

  g_option_context_add_main_entries (octx, entries, NULL);
  if (!g_option_context_parse (octx, &argc, &argv, &error))
    {
      g_printerr ("%s\n", error->message);
      return 2;
    }

  dir = write_model (n_layers, hidden);
  model = bl_model_load (dir, NULL, &error);
  g_assert_no_error (error);
  backend = bl_backend_new ("cpu", n_threads, &error);
  g_assert_no_error (error);
  ids = g_new (int32_t, n_ids);
  for (int i = 0; i < n_ids; i++)
    ids[i] = g_rand_int_range (rand, 0, 512);
  opts.n_threads = n_threads;
  sens = bl_sensitivity_new (model, backend, ids, n_ids, &opts, &error);
  g_assert_no_error (error);
  g_assert_true (bl_sensitivity_prepare (sens, NULL, &error));
  t0 = g_get_monotonic_time ();
  table = bl_sensitivity_compute (sens, "int4:g32", TRUE, NULL, &error);
  g_assert_no_error (error);
  g_printerr ("one-at-a-time KL of %u layers: %.1f s\n", table->len,
              (g_get_monotonic_time () - t0) / 1e6);
  est = bl_estimator_new (sens, &error);
  g_assert_no_error (error);

  /* cold: every layer's error in two formats the estimator has not seen */
  for (guint k = 0; k < G_N_ELEMENTS (cold_specs); k++)
    {
      g_autoptr(GHashTable) plan = uniform_plan (sens, cold_specs[k]);

      t0 = g_get_monotonic_time ();
      g_assert_true (bl_estimator_predict (est, plan, &e, &error));
      cold_s += (g_get_monotonic_time () - t0) / 1e6;
    }

  for (int k = 0; k < n_plans; k++)
    {
      g_autoptr(GHashTable) plan = random_plan (sens, rand);
      double s;

      t0 = g_get_monotonic_time ();
      g_assert_true (bl_estimator_predict (est, plan, &e, &error));
      s = (g_get_monotonic_time () - t0) / 1e6;
      warm_total += s;
      warm_max = MAX (warm_max, s);
      checksum += e.dkl;
    }

  {
    g_autoptr(GHashTable) plan = random_plan (sens, rand);

    t0 = g_get_monotonic_time ();
    g_assert_true (bl_sensitivity_measure_plan (sens, plan, &m, NULL, &error));
    measure_s = (g_get_monotonic_time () - t0) / 1e6;
  }

  printf ("{\"model\": \"synthetic llama, %d blocks, hidden %d\", \"linear_layers\": %u, "
          "\"warm_predictions\": %d, \"warm_ms_mean\": %.4f, \"warm_ms_max\": %.4f, "
          "\"cold_ms_per_layer_format\": %.4f, \"measure_ms\": %.1f, \"warm_speedup\": %.0f, "
          "\"under_50ms\": %s, \"checksum\": %.6g}\n",
          n_layers, hidden, table->len, n_plans, 1e3 * warm_total / n_plans, 1e3 * warm_max,
          1e3 * cold_s / (G_N_ELEMENTS (cold_specs) * table->len), 1e3 * measure_s,
          measure_s / (warm_total / n_plans), warm_max < 0.050 ? "true" : "false", checksum);

  g_clear_object (&est);
  g_clear_pointer (&table, g_ptr_array_unref);
  g_clear_object (&sens);
  g_clear_object (&model);
  remove_model (dir);
  return 0;
}
