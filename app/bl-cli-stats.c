/* bl-cli-stats.c: `bitlens-cli stats`, per-layer weight and activation statistics
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "config.h"

#include "bl-cli.h"
#include "bl-cli-commands.h"

#define SHOWN_OUTLIERS 4

static void
on_progress (int      done,
             int      total,
             gpointer user_data)
{
  g_printerr ("\rcalibration window %d/%d", done, total);
  if (done == total)
    g_printerr ("\n");
}

static gboolean
layer_selected (const BlCalibLayer *l,
                const char         *glob)
{
  return glob == NULL || g_pattern_match_simple (glob, l->name);
}

static void
add_moments (JsonBuilder          *b,
             const char           *name,
             const BlCalibMoments *m)
{
  json_builder_set_member_name (b, name);
  json_builder_begin_object (b);
  bl_cli_json_add_int (b, "n", m->n);
  bl_cli_json_add_double (b, "mean", m->mean);
  bl_cli_json_add_double (b, "variance", m->variance);
  bl_cli_json_add_double (b, "kurtosis", m->kurtosis);
  bl_cli_json_add_double (b, "crest", m->crest);
  bl_cli_json_add_double (b, "absmax", m->absmax);
  bl_cli_json_add_double (b, "rms", m->rms);
  json_builder_end_object (b);
}

static void
add_outliers (JsonBuilder *b,
              const char  *name,
              const int   *index,
              int          n,
              const float *values)
{
  json_builder_set_member_name (b, name);
  json_builder_begin_array (b);
  for (int i = 0; i < n; i++)
    {
      json_builder_begin_object (b);
      bl_cli_json_add_int (b, "channel", index[i]);
      bl_cli_json_add_double (b, "absmax", values[index[i]]);
      json_builder_end_object (b);
    }
  json_builder_end_array (b);
}

static void
print_json (BlCalib      *calib,
            BlModel      *model,
            BlTextSource *source,
            const char   *glob)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autofree char *prov = bl_calib_provenance_to_json (calib);

  json_builder_begin_object (b);
  bl_cli_json_add_model (b, model);
  bl_cli_json_add_string (b, "dataset_sha256", bl_text_source_get_sha256 (source));
  json_builder_set_member_name (b, "calibration");
  if (json_parser_load_from_data (parser, prov, -1, NULL))
    json_builder_add_value (b, json_node_copy (json_parser_get_root (parser)));
  else
    json_builder_add_null_value (b);

  json_builder_set_member_name (b, "layers");
  json_builder_begin_array (b);
  for (guint i = 0; i < bl_calib_get_n_layers (calib); i++)
    {
      const BlCalibLayer *l = bl_calib_get_layer_at (calib, i);

      if (!layer_selected (l, glob))
        continue;
      json_builder_begin_object (b);
      bl_cli_json_add_string (b, "name", l->name);
      bl_cli_json_add_string (b, "kind", bl_layer_kind_to_string (l->kind));
      bl_cli_json_add_int (b, "block", l->block);
      bl_cli_json_add_int (b, "rows", l->rows);
      bl_cli_json_add_int (b, "cols", l->cols);
      bl_cli_json_add_int (b, "tokens", l->n_tokens);
      add_moments (b, "activation", &l->act);
      add_outliers (b, "activation_outliers", l->outlier_channels, l->n_outliers, l->act_absmax);
      json_builder_set_member_name (b, "histogram");
      json_builder_begin_object (b);
      bl_cli_json_add_double (b, "lo", l->hist_lo);
      bl_cli_json_add_double (b, "hi", l->hist_hi);
      bl_cli_json_add_int (b, "underflow", l->hist_underflow);
      bl_cli_json_add_int (b, "overflow", l->hist_overflow);
      json_builder_set_member_name (b, "bins");
      json_builder_begin_array (b);
      for (int k = 0; k < l->n_bins; k++)
        json_builder_add_int_value (b, l->hist[k]);
      json_builder_end_array (b);
      json_builder_end_object (b);
      add_moments (b, "weight", &l->weight);
      add_outliers (b, "weight_outlier_columns", l->weight_outlier_columns, l->n_weight_outliers,
                    l->weight_col_absmax);
      json_builder_end_object (b);
    }
  json_builder_end_array (b);

  if (bl_calib_get_flags (calib) & BL_CALIB_BLOCK_IO)
    {
      json_builder_set_member_name (b, "blocks");
      json_builder_begin_array (b);
      for (guint k = 0; k < bl_calib_get_n_blocks (calib); k++)
        {
          const BlCalibBlock *blk = bl_calib_get_block (calib, k);

          json_builder_begin_object (b);
          bl_cli_json_add_int (b, "block", blk->block);
          bl_cli_json_add_double (b, "mean_cos", blk->mean_cos);
          bl_cli_json_add_double (b, "lim", blk->lim);
          json_builder_end_object (b);
        }
      json_builder_end_array (b);
    }
  json_builder_end_object (b);

  bl_cli_print_json (b);
}

/* "ch:value ch:value …" for the first few outliers */
static char *
format_outliers (const int   *index,
                 int          n,
                 const float *values)
{
  GString *s = g_string_new (NULL);

  for (int i = 0; i < MIN (n, SHOWN_OUTLIERS); i++)
    g_string_append_printf (s, "%s%d:%.3g", i ? " " : "", index[i], values[index[i]]);
  return g_string_free (s, FALSE);
}

static void
print_table (BlCalib    *calib,
             const char *glob)
{
  const char *dataset;
  guint64 seed;
  int n_windows, ctx;

  bl_calib_get_provenance (calib, &dataset, &seed, &n_windows, &ctx);
  g_print ("calibration: %s, %d windows of %d tokens, seed %" G_GUINT64_FORMAT "\n\n",
           dataset, n_windows, ctx, seed);
  g_print ("%-44s %11s │ %8s %8s %9s  %-36s │ %8s %7s %9s  %s\n", "layer", "shape",
           "act kurt", "crest", "absmax", "top input channels (ch:max|x|)",
           "w kurt", "crest", "absmax", "top weight columns (col:max|w|)");
  for (guint i = 0; i < bl_calib_get_n_layers (calib); i++)
    {
      const BlCalibLayer *l = bl_calib_get_layer_at (calib, i);
      g_autofree char *shape = NULL;
      g_autofree char *acts = NULL;
      g_autofree char *cols = NULL;

      if (!layer_selected (l, glob))
        continue;
      shape = g_strdup_printf ("%" G_GINT64_FORMAT "×%" G_GINT64_FORMAT, l->rows, l->cols);
      acts = format_outliers (l->outlier_channels, l->n_outliers, l->act_absmax);
      cols = format_outliers (l->weight_outlier_columns, l->n_weight_outliers, l->weight_col_absmax);
      g_print ("%-44s %11s │ %8.2f %8.2f %9.4g  %-36s │ %8.2f %7.2f %9.4g  %s\n", l->name, shape,
               l->act.kurtosis, l->act.crest, l->act.absmax, acts,
               l->weight.kurtosis, l->weight.crest, l->weight.absmax, cols);
    }
  if (bl_calib_get_flags (calib) & BL_CALIB_BLOCK_IO)
    {
      g_print ("\n%-6s %10s %10s   (LIM = −mean cos(h_in, h_out), methods.md §11)\n", "block", "mean cos", "LIM");
      for (guint k = 0; k < bl_calib_get_n_blocks (calib); k++)
        {
          const BlCalibBlock *blk = bl_calib_get_block (calib, k);

          g_print ("%-6d %10.4f %10.4f\n", blk->block, blk->mean_cos, blk->lim);
        }
    }
  g_print ("\nkurtosis is E[(x−μ)⁴]/σ⁴ (3 for a Gaussian); crest is max|x|/rms.\n");
}

int
bl_cli_stats_main (int    argc,
                   char **argv)
{
  g_autofree char *text_path = NULL;
  g_autofree char *layer_glob = NULL;
  g_autofree char *backend_name = NULL;
  int n_windows = 32, ctx_len = 0, n_threads = 0;
  gint64 seed = 0;
  gboolean json = FALSE, block_io = FALSE;
  const GOptionEntry entries[] = {
    { "text", 't', 0, G_OPTION_ARG_FILENAME, &text_path, "Calibration text: a file, or brown:train|validation|test (default brown:train)", "FILE" },
    { "windows", 'n', 0, G_OPTION_ARG_INT, &n_windows, "Calibration windows (default 32)", "N" },
    { "ctx", 'c', 0, G_OPTION_ARG_INT, &ctx_len, "Window length in tokens (default: min(512, model maximum))", "N" },
    { "seed", 0, 0, G_OPTION_ARG_INT64, &seed, "Seed of the window draw (default 0)", "N" },
    { "layer", 'l', 0, G_OPTION_ARG_STRING, &layer_glob, "Show only layers matching GLOB, e.g. '*.down_proj.weight'", "GLOB" },
    { "block-io", 0, 0, G_OPTION_ARG_NONE, &block_io, "Also measure each block's input/output cosine (LIM)", NULL },
    BL_CLI_THREADS_ENTRY (n_threads),
    BL_CLI_BACKEND_ENTRY (backend_name),
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, "Print the statistics as JSON", NULL },
    { NULL }
  };
  g_autoptr (GOptionContext) octx = g_option_context_new ("[MODEL] — per-layer weight and activation statistics");
  g_autoptr (GError) error = NULL;
  g_autoptr (BlModel) model = NULL;
  g_autoptr (BlBackend) backend = NULL;
  g_autoptr (BlTextSource) source = NULL;
  g_autoptr (GArray) ids = NULL;
  g_autoptr (GArray) windows = NULL;
  g_autoptr (BlCalib) calib = NULL;
  BlCalibOptions options = { 0 };
  BlTokenizer *tok;

  g_option_context_add_main_entries (octx, entries, NULL);
  if (!bl_cli_parse_model_options (octx, "stats", &argc, &argv))
    return BL_CLI_EXIT_USAGE;
  if (n_windows < 1)
    return bl_cli_usage_error ("stats", "--windows must be at least 1");
  if (n_threads < 0)
    return bl_cli_usage_error ("stats", "--threads must be positive");
  n_threads = bl_cli_n_threads (n_threads);

  if ((model = bl_cli_load_model (argc == 2 ? argv[1] : NULL, &error)) == NULL
      || (backend = bl_cli_backend_new (backend_name, n_threads, &error)) == NULL
      || (tok = bl_cli_require_tokenizer (model, &error)) == NULL
      || (source = bl_cli_open_text (text_path != NULL ? text_path : "brown:train", &error)) == NULL)
    return bl_cli_report_error (error);
  ids = bl_cli_encode_text (tok, source);

  if (ctx_len <= 0)
    ctx_len = MIN (512, bl_model_get_config (model)->max_position_embeddings);
  windows = bl_calib_make_windows (ids->len, ctx_len, n_windows, (guint64) seed, &error);
  if (windows == NULL)
    return bl_cli_report_error (error);

  options.flags = BL_CALIB_ACT_STATS | (block_io ? BL_CALIB_BLOCK_IO : 0);
  options.dataset = bl_text_source_get_name (source);
  options.seed = (guint64) seed;
  calib = bl_calib_collect (model, backend, (const int32_t *) ids->data, ids->len, windows,
                            &options, NULL, on_progress, NULL, &error);
  if (calib == NULL)
    return bl_cli_report_error (error);

  if (json)
    print_json (calib, model, source, layer_glob);
  else
    print_table (calib, layer_glob);
  return 0;
}
