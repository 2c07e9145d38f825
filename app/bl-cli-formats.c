/* bl-cli-formats.c: `bitlens-cli formats` and `bitlens-cli quantize-stats`
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * quantize-stats is llama.cpp's quantize-stats (PR #728) for any Bitlens format: every linear
 * weight is fake-quantized and its error measured, without a perplexity run. Results go to
 * stdout, progress to stderr.
 */
#include <json-glib/json-glib.h>
#include <math.h>

#include "bitlens.h"
#include "bl-metrics-error.h"
#include "bl-cli.h"
#include "bl-cli-formats.h"

static const char *
granularity_name (const BlFormatSpec *spec)
{
  switch (spec->granularity)
    {
    case BL_GRANULARITY_TENSOR:
      return "tensor";
    case BL_GRANULARITY_CHANNEL:
      return "channel";
    case BL_GRANULARITY_TOKEN:
      return "token";
    case BL_GRANULARITY_GROUP:
    default:
      return "group";
    }
}

/* ------------------------------------------------------------------------------------------ */
/* formats */

static void
print_formats_json (void)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "families");
  json_builder_begin_array (b);
  for (int f = 0; f < BL_FORMAT_N_FAMILIES; f++)
    {
      json_builder_begin_object (b);
      bl_cli_json_add_string (b, "name", bl_format_family_get_name (f));
      bl_cli_json_add_string (b, "description", bl_format_family_get_description (f));
      bl_cli_json_add_int (b, "element_bits", bl_format_family_get_element_bits (f));
      bl_cli_json_add_int (b, "block_size", bl_format_family_get_block_size (f));
      json_builder_set_member_name (b, "formats");
      json_builder_begin_array (b);
      for (const char *const *ex = bl_format_family_get_examples (f); *ex != NULL; ex++)
        {
          BlFormatSpec spec;

          if (!bl_format_spec_parse (*ex, &spec, NULL))
            continue;
          json_builder_begin_object (b);
          bl_cli_json_add_string (b, "spec", *ex);
          bl_cli_json_add_string (b, "granularity", granularity_name (&spec));
          bl_cli_json_add_double (b, "bits_per_weight", bl_format_spec_bits_per_weight (&spec));
          /* per-channel and per-tensor scales cost a shape-dependent extra */
          bl_cli_json_add_boolean (b, "plus_per_row_or_tensor_scale",
                                   spec.granularity != BL_GRANULARITY_GROUP
                                   && spec.family != BL_FORMAT_BF16
                                   && spec.family != BL_FORMAT_FP16);
          json_builder_end_object (b);
        }
      json_builder_end_array (b);
      json_builder_end_object (b);
    }
  json_builder_end_array (b);
  json_builder_end_object (b);

  bl_cli_print_json (b);
}

static void
print_formats_text (void)
{
  g_print ("%-13s %-26s %8s  %s\n", "FAMILY", "SPEC", "BITS/W", "DESCRIPTION");
  for (int f = 0; f < BL_FORMAT_N_FAMILIES; f++)
    {
      gboolean first = TRUE;

      for (const char *const *ex = bl_format_family_get_examples (f); *ex != NULL; ex++)
        {
          BlFormatSpec spec;
          char bpw[32];

          if (!bl_format_spec_parse (*ex, &spec, NULL))
            continue;
          g_snprintf (bpw, sizeof bpw, "%.4g%s", bl_format_spec_bits_per_weight (&spec),
                      spec.granularity != BL_GRANULARITY_GROUP && spec.family != BL_FORMAT_BF16
                      && spec.family != BL_FORMAT_FP16 ? "+" : "");
          if (first)
            g_print ("%-13s %-26s %8s  %s\n", bl_format_family_get_name (f), *ex, bpw,
                     bl_format_family_get_description (f));
          else
            g_print ("%-13s %-26s %8s\n", "", *ex, bpw);
          first = FALSE;
        }
    }
  g_print ("\nBITS/W counts every scale, zero point and selector of a full group; '+' marks one\n"
           "more scale per row or per tensor, whose cost depends on the shape.\n");
}

/**
 * bl_cli_formats_main:
 * @argc: argument count
 * @argv: arguments, argv[0] = "formats"
 *
 * `bitlens-cli formats [--json]`: every family of the traits table with its common members,
 * their bits per weight and a one-line description.
 *
 * Returns: the exit code
 */
int
bl_cli_formats_main (int    argc,
                     char **argv)
{
  gboolean json = FALSE;
  GOptionEntry entries[] = {
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, "Print JSON", NULL },
    { NULL }
  };
  g_autoptr (GOptionContext) context = g_option_context_new ("- list the number formats");
  g_autoptr (GError) error = NULL;

  g_option_context_add_main_entries (context, entries, NULL);
  g_option_context_set_summary (context, "Every format family with its bits per weight, including scales, "
                                         "zero points and selectors. Any listed spec takes options; see "
                                         "bl-format.h for the grammar.");
  if (!g_option_context_parse (context, &argc, &argv, &error))
    return bl_cli_usage_error ("formats", "%s", error->message);
  if (argc > 1)
    return bl_cli_usage_error ("formats", "unexpected argument '%s'", argv[1]);

  if (json)
    print_formats_json ();
  else
    print_formats_text ();
  return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* quantize-stats */

typedef struct
{
  BlFormatSpec spec;
  char *name;
  BlErrorStats total;
  double total_bits;
  double kappa_sum;           /* Σ mean block κ · params, for the weighted mean */
  GPtrArray *rows;            /* TensorRow */
} FormatRun;

typedef struct
{
  const char *tensor;
  gint64 rows;
  gint64 cols;
  BlErrorStats stats;
  double bpw;
  double kappa;
} TensorRow;

static void
format_run_free (FormatRun *run)
{
  g_free (run->name);
  g_clear_pointer (&run->rows, g_ptr_array_unref);
  g_free (run);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (FormatRun, format_run_free)

/* the block over which a format's crest factor matters: its group, or the row */
static gint64
crest_block (const BlFormatSpec *spec,
             gint64              cols)
{
  return spec->granularity == BL_GRANULARITY_GROUP ? spec->group_size : cols;
}

static double
theory_or_nan (const BlFormatSpec *spec,
               double              kappa)
{
  double q;

  return bl_theory_qsnr_for_spec (spec, kappa, &q) ? q : NAN;
}

static int
cmp_runs_by_qsnr (gconstpointer a,
                  gconstpointer b)
{
  const FormatRun *ra = *(FormatRun *const *) a, *rb = *(FormatRun *const *) b;
  double qa = bl_error_stats_qsnr_db (&ra->total), qb = bl_error_stats_qsnr_db (&rb->total);

  return (qa < qb) - (qa > qb);
}

static void
print_stats_text (GPtrArray *runs,
                  const char *model_path)
{
  g_autoptr (GPtrArray) sorted = g_ptr_array_copy (runs, NULL, NULL);

  /* the copy inherits the free function, but the runs still belong to @runs */
  g_ptr_array_set_free_func (sorted, NULL);
  for (guint r = 0; r < runs->len; r++)
    {
      FormatRun *run = g_ptr_array_index (runs, r);
      double total_bpw = run->total_bits / (double) run->total.n;

      g_print ("format %s (%.4g bits/weight per full group)\n", run->name,
               bl_format_spec_bits_per_weight (&run->spec));
      g_print ("  %-44s %11s %7s %11s %9s %9s %7s\n", "tensor", "shape", "bits/w", "MSE", "QSNR dB",
               "max err", "kappa");
      for (guint t = 0; t < run->rows->len; t++)
        {
          TensorRow *row = g_ptr_array_index (run->rows, t);
          g_autofree char *shape = g_strdup_printf ("%" G_GINT64_FORMAT "x%" G_GINT64_FORMAT, row->rows, row->cols);

          g_print ("  %-44s %11s %7.4f %11.4e %9.2f %9.4g %7.2f\n", row->tensor, shape, row->bpw,
                   bl_error_stats_mse (&row->stats), bl_error_stats_qsnr_db (&row->stats),
                   row->stats.max_abs_err, row->kappa);
        }
      g_print ("  %-44s %11s %7.4f %11.4e %9.2f %9.4g %7.2f\n\n", "total", "", total_bpw,
               bl_error_stats_mse (&run->total), bl_error_stats_qsnr_db (&run->total),
               run->total.max_abs_err, run->kappa_sum / (double) run->total.n);
    }

  /* the comparison, best first; the theory column is the INT-vs-FP model (methods.md §2)
   * evaluated at the measured mean block crest factor, for the block formats it covers */
  g_ptr_array_sort (sorted, cmp_runs_by_qsnr);
  g_print ("summary for %s, ordered by QSNR\n", model_path);
  g_print ("  %-28s %7s %11s %9s %9s %9s %7s %10s\n", "format", "bits/w", "MSE", "QSNR dB", "max err",
           "cosine", "kappa", "theory dB");
  for (guint r = 0; r < sorted->len; r++)
    {
      FormatRun *run = g_ptr_array_index (sorted, r);
      double kappa = run->kappa_sum / (double) run->total.n;
      double theory = theory_or_nan (&run->spec, kappa);
      char theory_buf[32];

      if (isnan (theory))
        g_strlcpy (theory_buf, "-", sizeof theory_buf);
      else
        g_snprintf (theory_buf, sizeof theory_buf, "%.2f", theory);
      g_print ("  %-28s %7.4f %11.4e %9.2f %9.4g %9.6f %7.2f %10s\n", run->name,
               run->total_bits / (double) run->total.n, bl_error_stats_mse (&run->total),
               bl_error_stats_qsnr_db (&run->total), run->total.max_abs_err,
               bl_error_stats_cosine (&run->total), kappa, theory_buf);
    }
}

static void
add_stats_members (JsonBuilder        *b,
                   const BlErrorStats *s,
                   double              bpw,
                   double              kappa)
{
  bl_cli_json_add_double (b, "bits_per_weight", bpw);
  bl_cli_json_add_double (b, "mse", bl_error_stats_mse (s));
  bl_cli_json_add_double_or_null (b, "qsnr_db", bl_error_stats_qsnr_db (s));
  bl_cli_json_add_double (b, "max_abs_error", s->max_abs_err);
  bl_cli_json_add_double (b, "cosine", bl_error_stats_cosine (s));
  bl_cli_json_add_double (b, "block_crest_factor", kappa);
}

static void
print_stats_json (GPtrArray  *runs,
                  const char *model_path)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();

  json_builder_begin_object (b);
  bl_cli_json_add_string (b, "model", model_path);
  json_builder_set_member_name (b, "formats");
  json_builder_begin_array (b);
  for (guint r = 0; r < runs->len; r++)
    {
      FormatRun *run = g_ptr_array_index (runs, r);
      double kappa = run->kappa_sum / (double) run->total.n;
      double theory = theory_or_nan (&run->spec, kappa);

      json_builder_begin_object (b);
      bl_cli_json_add_string (b, "spec", run->name);
      json_builder_set_member_name (b, "total");
      json_builder_begin_object (b);
      bl_cli_json_add_int (b, "n_params", run->total.n);
      add_stats_members (b, &run->total, run->total_bits / (double) run->total.n, kappa);
      json_builder_set_member_name (b, "theory_qsnr_db");
      if (isnan (theory))
        json_builder_add_null_value (b);
      else
        json_builder_add_double_value (b, theory);
      json_builder_end_object (b);
      json_builder_set_member_name (b, "tensors");
      json_builder_begin_array (b);
      for (guint t = 0; t < run->rows->len; t++)
        {
          TensorRow *row = g_ptr_array_index (run->rows, t);

          json_builder_begin_object (b);
          bl_cli_json_add_string (b, "name", row->tensor);
          json_builder_set_member_name (b, "shape");
          json_builder_begin_array (b);
          json_builder_add_int_value (b, row->rows);
          json_builder_add_int_value (b, row->cols);
          json_builder_end_array (b);
          add_stats_members (b, &row->stats, row->bpw, row->kappa);
          json_builder_end_object (b);
        }
      json_builder_end_array (b);
      json_builder_end_object (b);
    }
  json_builder_end_array (b);
  json_builder_end_object (b);

  bl_cli_print_json (b);
}

/**
 * bl_cli_quantize_stats_main:
 * @argc: argument count
 * @argv: arguments, argv[0] = "quantize-stats"
 *
 * `bitlens-cli quantize-stats MODEL --format SPEC [--format SPEC…] [--threads N] [--json]`:
 * per linear weight and format the MSE, QSNR, max error and exact bits per weight, with
 * totals and a summary ordered by QSNR.
 *
 * Returns: the exit code
 */
int
bl_cli_quantize_stats_main (int    argc,
                            char **argv)
{
  g_auto (GStrv) format_strs = NULL;
  gboolean json = FALSE;
  int n_threads = 0;
  GOptionEntry entries[] = {
    { "format", 'f', 0, G_OPTION_ARG_STRING_ARRAY, &format_strs, "A format spec (repeatable), e.g. int4:g128:sym", "SPEC" },
    { "threads", 't', 0, G_OPTION_ARG_INT, &n_threads, "Worker threads (default: all processors)", "N" },
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, "Print JSON", NULL },
    { NULL }
  };
  g_autoptr (GOptionContext) context = g_option_context_new ("MODEL - weight quantization error of every linear layer");
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) runs = g_ptr_array_new_with_free_func ((GDestroyNotify) format_run_free);
  g_autoptr (BlModel) model = NULL;
  GListModel *layers;
  guint n_layers, n_linear = 0;

  g_option_context_add_main_entries (context, entries, NULL);
  g_option_context_set_summary (context, "Fake-quantizes every linear weight of MODEL in each format and "
                                         "prints MSE, QSNR, max error and bits per weight, with totals.");
  if (!g_option_context_parse (context, &argc, &argv, &error))
    return bl_cli_usage_error ("quantize-stats", "%s", error->message);
  if (argc < 2)
    return bl_cli_usage_error ("quantize-stats", "missing MODEL");
  if (argc > 2)
    return bl_cli_usage_error ("quantize-stats", "unexpected argument '%s'", argv[2]);
  if (format_strs == NULL || format_strs[0] == NULL)
    return bl_cli_usage_error ("quantize-stats", "give at least one --format SPEC");
  if (n_threads <= 0)
    n_threads = (int) g_get_num_processors ();

  for (char **f = format_strs; *f != NULL; f++)
    {
      g_autoptr (FormatRun) run = g_new0 (FormatRun, 1);

      if (!bl_format_spec_parse (*f, &run->spec, &error))
        return bl_cli_report_error (error);
      run->name = bl_format_spec_to_string (&run->spec);
      run->rows = g_ptr_array_new_with_free_func (g_free);
      bl_error_stats_init (&run->total);
      g_ptr_array_add (runs, g_steal_pointer (&run));
    }

  model = bl_model_load (argv[1], NULL, &error);
  if (model == NULL)
    return bl_cli_report_error (error);
  layers = G_LIST_MODEL (model);
  n_layers = g_list_model_get_n_items (layers);
  for (guint i = 0; i < n_layers; i++)
    {
      g_autoptr (BlLayer) layer = g_list_model_get_item (layers, i);

      n_linear += bl_layer_kind_is_linear (bl_layer_get_kind (layer));
    }
  g_printerr ("quantize-stats: %s: %u linear weights, %u format%s, %d threads\n", argv[1], n_linear,
              runs->len, runs->len == 1 ? "" : "s", n_threads);

  for (guint i = 0, done = 0; i < n_layers; i++)
    {
      g_autoptr (BlLayer) layer = g_list_model_get_item (layers, i);
      const BlTensor *tensor;
      g_autofree float *x = NULL;
      g_autofree float *y = NULL;
      gint64 rows, cols;

      if (!bl_layer_kind_is_linear (bl_layer_get_kind (layer)))
        continue;
      tensor = bl_layer_get_tensor (layer);
      if (tensor->n_dims != 2)
        {
          g_set_error (&error, BL_ERROR, BL_ERROR_CORRUPT_FILE,
                       "%s: linear weight %s has %d dimensions, expected 2", tensor->file, tensor->name,
                       tensor->n_dims);
          return bl_cli_report_error (error);
        }
      rows = tensor->shape[0];
      cols = tensor->shape[1];
      x = g_new (float, tensor->n_elements);
      y = g_new (float, tensor->n_elements);
      bl_tensor_to_f32 (tensor, x);
      g_printerr ("quantize-stats: [%u/%u] %s\n", ++done, n_linear, bl_layer_get_name (layer));

      for (guint r = 0; r < runs->len; r++)
        {
          FormatRun *run = g_ptr_array_index (runs, r);
          TensorRow *row = g_new0 (TensorRow, 1);

          if (!bl_format_fake_quant (&run->spec, x, y, rows, cols, n_threads, &error))
            {
              g_free (row);
              return bl_cli_report_error (error);
            }
          row->tensor = tensor->name;
          row->rows = rows;
          row->cols = cols;
          bl_error_stats_init (&row->stats);
          bl_error_stats_add (&row->stats, x, y, rows * cols);
          row->bpw = bl_format_spec_bits_for_shape (&run->spec, rows, cols);
          bl_metrics_block_crest (x, rows, cols, crest_block (&run->spec, cols), &row->kappa, NULL);
          bl_error_stats_merge (&run->total, &row->stats);
          run->total_bits += row->bpw * (double) (rows * cols);
          run->kappa_sum += row->kappa * (double) (rows * cols);
          g_ptr_array_add (run->rows, row);
        }
    }
  if (n_linear == 0)
    {
      g_set_error (&error, BL_ERROR, BL_ERROR_NOT_FOUND, "%s has no linear weights", argv[1]);
      return bl_cli_report_error (error);
    }

  if (json)
    print_stats_json (runs, argv[1]);
  else
    print_stats_text (runs, argv[1]);
  return 0;
}
