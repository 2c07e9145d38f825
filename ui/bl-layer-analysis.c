/* bl-layer-analysis.c: the data behind the distribution view of one layer
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "bl-layer-analysis.h"

#include "bl-application.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/**
 * SECTION:bl-layer-analysis
 * @title: BlLayerAnalysis
 *
 * Everything the distribution view shows about one weight under one spec: the histograms
 * before and after fake quantization, the representable values of one scale group, the error
 * (bl-metrics-error.h) and the INT-vs-FP crest-factor verdict (methods.md §2). The numerics
 * are the core's (bl_format_fake_quant(), bl_error_stats_add(), bl_metrics_*(),
 * bl_theory_*()); this file only bins and selects what to draw.
 *
 * The representable grid of a group is found by asking the format itself: copies of the
 * group, each with one small element replaced by a probe value inside the group's range, are
 * fake-quantized, and the probe's outputs are the values that group's scale can represent.
 * For formats with a tensor-level scale (per-tensor granularity, NVFP4/NVINT4) one extra row
 * carries the tensor's max |w| so that the tensor scale is the real one. Formats whose scale
 * is a mean over the group (binary, ternary, dual-binary, complex-2bit) have only a handful
 * of levels, all of which the group's own quantized values hit; those are used instead.
 */

#define N_BINS 161
#define MAX_PROBE_ELEMENTS (4 << 20)

void
bl_layer_analysis_free (BlLayerAnalysis *self)
{
  if (self == NULL)
    return;
  g_free (self->layer_name);
  g_free (self->spec);
  g_free (self->hist);
  g_free (self->hist_quant);
  g_free (self->levels);
  g_free (self);
}

static void
histogram (const float *x,
           gint64       n,
           double       lo,
           double       hi,
           double      *counts,
           guint        n_bins)
{
  double scale = n_bins / (hi - lo);

  memset (counts, 0, n_bins * sizeof (double));
  for (gint64 i = 0; i < n; i++)
    {
      double b = floor ((x[i] - lo) * scale);
      gint64 k = isfinite (b) ? (gint64) CLAMP (b, 0, (double) n_bins - 1) : 0;

      counts[k] += 1.0;
    }
}

static int
cmp_double (const void *a,
            const void *b)
{
  double da = *(const double *) a, db = *(const double *) b;

  return (da > db) - (da < db);
}

static gboolean
scale_is_mean (BlFormatFamily family)
{
  return family == BL_FORMAT_BINARY || family == BL_FORMAT_TERNARY
         || family == BL_FORMAT_DUAL_BINARY || family == BL_FORMAT_COMPLEX_2BIT;
}

static gboolean
range_is_asymmetric (const BlFormatSpec *spec)
{
  return spec->family == BL_FORMAT_INT2_INT4
         || (spec->family == BL_FORMAT_INT && spec->int_convention == BL_INT_ASYM);
}

/* The scale group geometry: the length of a group along a row, and how many per row. */
static gint64
group_length (const BlFormatSpec *spec,
              gint64              cols)
{
  if (spec != NULL && spec->granularity == BL_GRANULARITY_GROUP && spec->group_size > 0)
    return MIN ((gint64) spec->group_size, cols);
  return cols;
}

static void
pick_group (BlLayerAnalysis *a,
            const float     *w,
            BlGroupPick      pick,
            gint64           index)
{
  gint64 per_row = (a->cols + a->group_len - 1) / a->group_len;
  g_autofree double *amax = NULL;

  a->n_groups = a->rows * per_row;
  amax = g_new (double, a->n_groups);
  for (gint64 g = 0; g < a->n_groups; g++)
    {
      gint64 r = g / per_row, c0 = (g % per_row) * a->group_len;
      gint64 len = MIN (a->group_len, a->cols - c0);
      const float *x = w + r * a->cols + c0;
      double m = 0;

      for (gint64 i = 0; i < len; i++)
        m = MAX (m, fabs ((double) x[i]));
      amax[g] = m;
    }

  switch (pick)
    {
    case BL_GROUP_PICK_INDEX:
      a->group_index = CLAMP (index, 0, a->n_groups - 1);
      break;
    case BL_GROUP_PICK_WIDEST:
      a->group_index = 0;
      for (gint64 g = 1; g < a->n_groups; g++)
        if (amax[g] > amax[a->group_index])
          a->group_index = g;
      break;
    case BL_GROUP_PICK_TYPICAL:
    default:
      {
        g_autofree double *sorted = g_memdup2 (amax, a->n_groups * sizeof (double));
        double median;

        qsort (sorted, a->n_groups, sizeof (double), cmp_double);
        median = sorted[a->n_groups / 2];
        a->group_index = 0;
        for (gint64 g = 0; g < a->n_groups; g++)
          if (amax[g] == median)
            {
              a->group_index = g;
              break;
            }
      }
      break;
    }
  a->group_row = a->group_index / per_row;
  a->group_col = (a->group_index % per_row) * a->group_len;
  a->group_len = MIN (a->group_len, a->cols - a->group_col);
  a->group_absmax = amax[a->group_index];
}

static void
add_unique_levels (GArray *levels,
                   double  tolerance)
{
  guint out = 0;

  g_array_sort (levels, cmp_double);
  for (guint i = 0; i < levels->len; i++)
    {
      double v = g_array_index (levels, double, i);

      if (!isfinite (v))
        continue;
      if (out > 0 && v - g_array_index (levels, double, out - 1) <= tolerance)
        continue;
      g_array_index (levels, double, out++) = v;
    }
  g_array_set_size (levels, out);
}

static gboolean
compute_levels (BlLayerAnalysis    *a,
                const BlFormatSpec *spec,
                const float        *w,
                const float        *q,
                double              tensor_absmax,
                GCancellable       *cancellable,
                GError            **error)
{
  const float *grp = w + a->group_row * a->cols + a->group_col;
  const float *grp_q = q + a->group_row * a->cols + a->group_col;
  gint64 len = a->group_len;
  g_autoptr(GArray) levels = g_array_new (FALSE, FALSE, sizeof (double));
  double tolerance = 1e-6 * MAX (a->group_absmax, 1e-30);

  for (gint64 i = 0; i < len; i++)
    {
      double v = grp_q[i];
      g_array_append_val (levels, v);
    }

  if (!scale_is_mean (spec->family) && len >= 2)
    {
      gint64 n_probe = CLAMP (MAX_PROBE_ELEMENTS / len, 256, 2048);
      gint64 p = -1, arg_max = 0, arg_min = 0;
      double lo, hi;
      g_autofree float *probe = NULL;
      g_autofree float *probe_q = NULL;

      for (gint64 i = 1; i < len; i++)
        {
          if (grp[i] > grp[arg_max])
            arg_max = i;
          if (grp[i] < grp[arg_min])
            arg_min = i;
        }
      /* the element whose replacement moves no range statistic: the smallest |w| that is
       * neither the group's max nor its min */
      for (gint64 i = 0; i < len; i++)
        if (i != arg_max && i != arg_min && (p < 0 || fabsf (grp[i]) < fabsf (grp[p])))
          p = i;
      if (p < 0)
        p = arg_max == 0 ? 1 : 0;

      if (range_is_asymmetric (spec))
        {
          lo = grp[arg_min];
          hi = grp[arg_max];
        }
      else
        {
          hi = a->group_absmax;
          lo = -hi;
        }

      probe = g_new (float, (n_probe + 1) * len);
      probe_q = g_new (float, (n_probe + 1) * len);
      memset (probe, 0, len * sizeof (float));
      probe[0] = (float) tensor_absmax;
      for (gint64 k = 0; k < n_probe; k++)
        {
          float *row = probe + (k + 1) * len;

          memcpy (row, grp, len * sizeof (float));
          row[p] = (float) (lo + (hi - lo) * (double) k / (double) (n_probe - 1));
        }
      if (g_cancellable_set_error_if_cancelled (cancellable, error))
        return FALSE;
      if (!bl_format_fake_quant (spec, probe, probe_q, n_probe + 1, len, 1, error))
        return FALSE;
      for (gint64 k = 0; k < n_probe; k++)
        {
          double v = probe_q[(k + 1) * len + p];
          g_array_append_val (levels, v);
        }
    }

  add_unique_levels (levels, tolerance);
  a->n_levels = levels->len;
  a->levels = (double *) g_array_free (g_steal_pointer (&levels), FALSE);
  return TRUE;
}

static void
compute_theory (BlLayerAnalysis    *a,
                const BlFormatSpec *spec,
                const float        *w)
{
  BlTheoryScaling scaling = BL_THEORY_MX;
  int bits = spec != NULL ? spec->bits : 4;
  int ebits, mbits;

  a->crossover = NAN;
  a->theory_int_db = NAN;
  a->theory_fp_db = NAN;
  a->theory_block = 0;

  if (spec != NULL && (spec->family == BL_FORMAT_NVFP4 || spec->family == BL_FORMAT_NVINT4))
    {
      scaling = BL_THEORY_NV;
      a->theory_block = 16;
      ebits = 2;
      mbits = 1;
      a->int_name = "NVINT4";
      a->fp_name = "NVFP4";
    }
  else
    {
      /* The element pairs the INT-vs-FP paper compares at each width (methods.md §2). */
      a->theory_block = 32;
      switch (bits)
        {
        case 4:
          ebits = 2, mbits = 1;
          a->int_name = "MXINT4";
          a->fp_name = "MXFP4";
          break;
        case 6:
          ebits = 2, mbits = 3;
          a->int_name = "MXINT6";
          a->fp_name = "MXFP6 (E2M3)";
          break;
        case 8:
          ebits = 4, mbits = 3;
          a->int_name = "MXINT8";
          a->fp_name = "MXFP8 (E4M3)";
          break;
        default:
          a->theory_block = 0;
          return;
        }
    }

  bl_metrics_block_crest (w, a->rows, a->cols, MIN (a->theory_block, a->cols), &a->block_crest, NULL);
  if (!(a->block_crest > 0))
    {
      a->theory_block = 0;
      return;
    }
  a->crossover = bl_theory_crossover (scaling == BL_THEORY_NV ? 4 : bits, ebits, mbits, scaling);
  a->theory_int_db = bl_theory_qsnr_int (a->block_crest, scaling == BL_THEORY_NV ? 4 : bits, scaling);
  a->theory_fp_db = bl_theory_qsnr_fp (a->block_crest, ebits, mbits, scaling);
}

/**
 * bl_layer_analysis_compute:
 * @layer: a layer
 * @spec: (nullable): a weight spec string, or %NULL for the unquantized weight
 * @flags: what to compute beyond the error
 * @pick: which group the grid is drawn for
 * @group_index: the group for %BL_GROUP_PICK_INDEX
 * @cancellable: (nullable): checked between the steps
 * @error: return location for a #GError
 *
 * Analyses the weight of @layer under @spec in the calling thread.
 *
 * Returns: (transfer full): the analysis, or %NULL with @error set
 */
BlLayerAnalysis *
bl_layer_analysis_compute (BlLayer         *layer,
                           const char      *spec,
                           BlAnalysisFlags  flags,
                           BlGroupPick      pick,
                           gint64           group_index,
                           GCancellable    *cancellable,
                           GError         **error)
{
  g_autoptr(BlLayerAnalysis) a = g_new0 (BlLayerAnalysis, 1);
  const BlTensor *t;
  BlFormatSpec fs;
  g_autofree float *w = NULL;
  g_autofree float *q = NULL;
  double absmax = 0;
  gint64 n;

  g_return_val_if_fail (BL_IS_LAYER (layer), NULL);

  t = bl_layer_get_tensor (layer);
  a->layer_name = g_strdup (bl_layer_get_name (layer));
  a->spec = g_strdup (spec);
  a->rows = t->n_dims == 2 ? t->shape[0] : 1;
  a->cols = t->n_dims == 2 ? t->shape[1] : t->n_elements;
  n = a->rows * a->cols;
  bl_error_stats_init (&a->error);
  a->crossover = NAN;

  if (spec != NULL)
    {
      if (!bl_format_spec_parse (spec, &fs, error))
        return NULL;
      a->bpw = bl_format_spec_bits_for_shape (&fs, a->rows, a->cols);
    }
  else
    a->bpw = 8.0 * (double) bl_dtype_size (t->dtype);

  w = g_new (float, n);
  bl_tensor_to_f32 (t, w);
  for (gint64 i = 0; i < n; i++)
    absmax = MAX (absmax, fabs ((double) w[i]));

  if (spec != NULL)
    {
      q = g_new (float, n);
      if (g_cancellable_set_error_if_cancelled (cancellable, error))
        return NULL;
      if (!bl_format_fake_quant (&fs, w, q, a->rows, a->cols, 1, error))
        return NULL;
      bl_error_stats_add (&a->error, w, q, n);
    }

  if (flags & BL_ANALYSIS_HISTOGRAMS)
    {
      a->hist_hi = absmax > 0 ? absmax : 1.0;
      a->hist_lo = -a->hist_hi;
      a->n_bins = N_BINS;
      a->hist = g_new (double, N_BINS);
      histogram (w, n, a->hist_lo, a->hist_hi, a->hist, N_BINS);
      if (q != NULL)
        {
          a->hist_quant = g_new (double, N_BINS);
          histogram (q, n, a->hist_lo, a->hist_hi, a->hist_quant, N_BINS);
        }
    }

  if ((flags & BL_ANALYSIS_GRID) && spec != NULL && fs.bits <= 8)
    {
      if (g_cancellable_set_error_if_cancelled (cancellable, error))
        return NULL;
      a->group_len = group_length (&fs, a->cols);
      pick_group (a, w, pick, group_index);
      if (!compute_levels (a, &fs, w, q, absmax, cancellable, error))
        return NULL;
    }

  if (flags & BL_ANALYSIS_SHAPE_STATS)
    {
      if (g_cancellable_set_error_if_cancelled (cancellable, error))
        return NULL;
      a->crest = bl_metrics_crest_factor (w, n);
      a->kurtosis = bl_metrics_kurtosis (w, n);
      compute_theory (a, spec != NULL ? &fs : NULL, w);
    }

  return g_steal_pointer (&a);
}

typedef struct
{
  BlLayer *layer;
  char *spec;
  BlAnalysisFlags flags;
  BlGroupPick pick;
  gint64 group_index;
} TaskData;

static void
task_data_free (gpointer data)
{
  TaskData *td = data;

  g_object_unref (td->layer);
  g_free (td->spec);
  g_free (td);
}

static void
compute_thread (GTask        *task,
                gpointer      source_object,
                gpointer      task_data,
                GCancellable *cancellable)
{
  TaskData *td = task_data;
  GError *error = NULL;
  BlLayerAnalysis *a;

  a = bl_layer_analysis_compute (td->layer, td->spec, td->flags, td->pick, td->group_index,
                                 cancellable, &error);
  if (a == NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, a, (GDestroyNotify) bl_layer_analysis_free);
}

/**
 * bl_layer_analysis_compute_async:
 * @layer: a layer
 * @spec: (nullable): a weight spec string
 * @flags: what to compute beyond the error
 * @pick: which group the grid is drawn for
 * @group_index: the group for %BL_GROUP_PICK_INDEX
 * @cancellable: (nullable): a #GCancellable
 * @callback: called in the caller's thread-default main context
 * @user_data: for @callback
 *
 * Runs bl_layer_analysis_compute() in a worker thread.
 */
void
bl_layer_analysis_compute_async (BlLayer             *layer,
                                 const char          *spec,
                                 BlAnalysisFlags      flags,
                                 BlGroupPick          pick,
                                 gint64               group_index,
                                 GCancellable        *cancellable,
                                 GAsyncReadyCallback  callback,
                                 gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  TaskData *td;

  g_return_if_fail (BL_IS_LAYER (layer));

  td = g_new0 (TaskData, 1);
  td->layer = g_object_ref (layer);
  td->spec = g_strdup (spec);
  td->flags = flags;
  td->pick = pick;
  td->group_index = group_index;

  task = g_task_new (NULL, cancellable, callback, user_data);
  g_task_set_source_tag (task, bl_layer_analysis_compute_async);
  g_task_set_task_data (task, td, task_data_free);
  bl_application_hold_task (task);
  g_task_run_in_thread (task, compute_thread);
}

/**
 * bl_layer_analysis_compute_finish:
 * @result: the #GAsyncResult
 * @error: return location for a #GError
 *
 * Returns: (transfer full): the analysis, or %NULL with @error set
 */
BlLayerAnalysis *
bl_layer_analysis_compute_finish (GAsyncResult  *result,
                                  GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, NULL), NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}

/**
 * bl_layer_analysis_verdict:
 * @self: an analysis with shape statistics
 *
 * The INT-vs-FP verdict in words: which element type the crest-factor model predicts to
 * have the higher QSNR on this weight's blocks, and why.
 *
 * Returns: (transfer full) (nullable): the sentence, or %NULL when the model does not apply
 */
char *
bl_layer_analysis_verdict (const BlLayerAnalysis *self)
{
  gboolean fp_wins;

  g_return_val_if_fail (self != NULL, NULL);

  if (self->theory_block == 0 || isnan (self->theory_int_db) || isnan (self->theory_fp_db))
    return NULL;
  fp_wins = self->theory_fp_db > self->theory_int_db;
  if (isnan (self->crossover))
    return g_strdup_printf ("Block crest factor κ = %.2f over %d-element blocks: %s is predicted "
                            "to win (%.1f dB against %.1f dB); the curves do not cross.",
                            self->block_crest, self->theory_block,
                            fp_wins ? self->fp_name : self->int_name,
                            MAX (self->theory_fp_db, self->theory_int_db),
                            MIN (self->theory_fp_db, self->theory_int_db));
  return g_strdup_printf ("Block crest factor κ = %.2f over %d-element blocks, %s the crossover "
                          "κ* = %.2f: %s is predicted to win (%.1f dB against %.1f dB for %s).",
                          self->block_crest, self->theory_block,
                          self->block_crest > self->crossover ? "above" : "below",
                          self->crossover, fp_wins ? self->fp_name : self->int_name,
                          MAX (self->theory_fp_db, self->theory_int_db),
                          MIN (self->theory_fp_db, self->theory_int_db),
                          fp_wins ? self->int_name : self->fp_name);
}
