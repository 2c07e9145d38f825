/* bl-distribution-view.c: the weight and activation distributions of one layer
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "bl-distribution-view.h"

#include <math.h>

/**
 * SECTION:bl-distribution-view
 * @title: BlDistributionView
 *
 * For the focused layer and the spec being previewed: the weight histogram with the
 * representable values of one scale group drawn over it and the histogram after
 * quantization as an outline; the numbers (QSNR, MSE, max error, crest factor, kurtosis)
 * and the INT-vs-FP verdict; and, once calibration has run, the per-channel absmax of the
 * layer's input (outlier channels marked) and the input's histogram. The analysis runs in
 * a worker thread and is cancelled when the layer or the spec changes again.
 */

enum {
  STAT_QSNR,
  STAT_MSE,
  STAT_MAX_ERR,
  STAT_BPW,
  STAT_CREST,
  STAT_KURTOSIS,
  STAT_LEVELS,
  N_STATS
};

static const char *const stat_titles[N_STATS] = {
  [STAT_QSNR] = "QSNR",
  [STAT_MSE] = "MSE",
  [STAT_MAX_ERR] = "Max error",
  [STAT_BPW] = "Bits/weight",
  [STAT_CREST] = "Crest factor",
  [STAT_KURTOSIS] = "Kurtosis",
  [STAT_LEVELS] = "Levels in group",
};

struct _BlDistributionView
{
  GtkWidget parent_instance;

  /* Template widgets */
  GtkLabel *title_label;
  GtkToggleButton *log_toggle;
  GtkDropDown *pick_dropdown;
  GtkSpinButton *group_spin;
  BlPlot *weight_plot;
  GtkFlowBox *stats_box;
  GtkLabel *verdict_label;
  GtkLabel *group_label;
  BlPlot *act_absmax_plot;
  BlPlot *act_hist_plot;
  GtkLabel *calib_label;

  GtkLabel *stat_values[N_STATS];

  /* State */
  BlLayerItem *item;
  char *spec;
  BlCalib *calib;            /* borrowed; the window clears it before freeing */
  BlLayerAnalysis *analysis;
  GCancellable *cancellable;
};

G_DEFINE_FINAL_TYPE (BlDistributionView, bl_distribution_view, GTK_TYPE_WIDGET)

enum {
  SIGNAL_UPDATED,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

static void
set_stat (BlDistributionView *self,
          int                 stat,
          const char         *format,
          ...) G_GNUC_PRINTF (3, 4);

static void
set_stat (BlDistributionView *self,
          int                 stat,
          const char         *format,
          ...)
{
  g_autofree char *text = NULL;
  va_list args;

  va_start (args, format);
  text = g_strdup_vprintf (format, args);
  va_end (args);
  gtk_label_set_text (self->stat_values[stat], text);
}

static void
clear_stats (BlDistributionView *self)
{
  for (int i = 0; i < N_STATS; i++)
    gtk_label_set_text (self->stat_values[i], "—");
  gtk_label_set_text (self->verdict_label, "");
  gtk_label_set_text (self->group_label, "");
}

static void
show_weight_plot (BlDistributionView *self)
{
  const BlLayerAnalysis *a = self->analysis;
  g_autofree char *grid_label = NULL;

  bl_plot_clear (self->weight_plot);
  if (a == NULL || a->hist == NULL)
    return;
  bl_plot_set_x_range (self->weight_plot, a->hist_lo, a->hist_hi);
  bl_plot_add_histogram (self->weight_plot, "weights", a->hist_lo, a->hist_hi, a->hist, a->n_bins,
                         BL_PLOT_BLUE, TRUE);
  if (a->hist_quant != NULL)
    bl_plot_add_histogram (self->weight_plot, "after quantization", a->hist_lo, a->hist_hi,
                           a->hist_quant, a->n_bins, BL_PLOT_ORANGE, FALSE);
  if (a->n_levels > 0)
    {
      grid_label = g_strdup_printf ("%s grid, group #%" G_GINT64_FORMAT, a->spec, a->group_index);
      bl_plot_add_vlines (self->weight_plot, grid_label, a->levels, a->n_levels, BL_PLOT_RED);
    }
}

static void
show_numbers (BlDistributionView *self)
{
  const BlLayerAnalysis *a = self->analysis;
  g_autofree char *verdict = NULL;

  clear_stats (self);
  if (a == NULL)
    return;
  if (a->spec != NULL)
    {
      set_stat (self, STAT_QSNR, "%.2f dB", bl_error_stats_qsnr_db (&a->error));
      set_stat (self, STAT_MSE, "%.3g", bl_error_stats_mse (&a->error));
      set_stat (self, STAT_MAX_ERR, "%.3g", a->error.max_abs_err);
    }
  else
    set_stat (self, STAT_QSNR, "exact");
  set_stat (self, STAT_BPW, "%.3f", a->bpw);
  set_stat (self, STAT_CREST, "%.2f", a->crest);
  set_stat (self, STAT_KURTOSIS, "%.2f", a->kurtosis);
  if (a->n_levels > 0)
    {
      g_autofree char *group = NULL;

      set_stat (self, STAT_LEVELS, "%u", a->n_levels);
      group = g_strdup_printf ("Grid of group #%" G_GINT64_FORMAT " of %" G_GINT64_FORMAT
                               ": row %" G_GINT64_FORMAT ", columns %" G_GINT64_FORMAT "–%" G_GINT64_FORMAT
                               ", max |w| %.4g",
                               a->group_index, a->n_groups, a->group_row, a->group_col,
                               a->group_col + a->group_len - 1, a->group_absmax);
      gtk_label_set_text (self->group_label, group);
    }
  verdict = bl_layer_analysis_verdict (a);
  gtk_label_set_text (self->verdict_label, verdict ? verdict : "");
  gtk_widget_set_visible (GTK_WIDGET (self->verdict_label), verdict != NULL);
}

static void
show_activations (BlDistributionView *self)
{
  const BlCalibLayer *cl = NULL;

  bl_plot_clear (self->act_absmax_plot);
  bl_plot_clear (self->act_hist_plot);
  if (self->calib != NULL && self->item != NULL)
    cl = bl_calib_get_layer (self->calib, bl_layer_item_get_name (self->item));
  if (cl == NULL)
    {
      bl_plot_set_placeholder (self->act_absmax_plot,
                               self->calib ? "No calibration statistics for this layer" : "Calibrating…");
      bl_plot_set_placeholder (self->act_hist_plot, NULL);
      return;
    }

  {
    g_autofree double *absmax = g_new (double, cl->cols);
    g_autofree double *ox = g_new (double, MAX (cl->n_outliers, 1));
    g_autofree double *oy = g_new (double, MAX (cl->n_outliers, 1));

    for (gint64 j = 0; j < cl->cols; j++)
      absmax[j] = cl->act_absmax[j];
    for (int k = 0; k < cl->n_outliers; k++)
      {
        ox[k] = cl->outlier_channels[k];
        oy[k] = cl->act_absmax[cl->outlier_channels[k]];
      }
    bl_plot_set_x_range (self->act_absmax_plot, -0.5, cl->cols - 0.5);
    bl_plot_add_histogram (self->act_absmax_plot, "max |x| per channel", -0.5, cl->cols - 0.5,
                           absmax, cl->cols, BL_PLOT_BLUE, TRUE);
    bl_plot_add_points (self->act_absmax_plot, "outlier channels", ox, oy, cl->n_outliers,
                        BL_PLOT_RED, -1);
  }
  {
    g_autofree double *counts = g_new (double, cl->n_bins);

    for (int b = 0; b < cl->n_bins; b++)
      counts[b] = (double) cl->hist[b];
    bl_plot_add_histogram (self->act_hist_plot, "inputs", cl->hist_lo, cl->hist_hi, counts,
                           cl->n_bins, BL_PLOT_GREEN, TRUE);
  }
}

static void
update_title (BlDistributionView *self)
{
  g_autofree char *title = NULL;
  int block;

  if (self->item == NULL)
    {
      gtk_label_set_text (self->title_label, "Select a layer");
      return;
    }
  block = bl_layer_item_get_block (self->item);
  if (block >= 0)
    title = g_strdup_printf ("Block %d · %s · %s", block, bl_layer_item_get_title (self->item),
                             self->spec ? self->spec : "unquantized");
  else
    title = g_strdup_printf ("%s · %s", bl_layer_item_get_title (self->item),
                             self->spec ? self->spec : "unquantized");
  gtk_label_set_text (self->title_label, title);
  if (g_strcmp0 (gtk_widget_get_tooltip_text (GTK_WIDGET (self->title_label)), bl_layer_item_get_name (self->item)) != 0)
    gtk_widget_set_tooltip_text (GTK_WIDGET (self->title_label), bl_layer_item_get_name (self->item));
}

static void
on_analysis_done (GObject      *source,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  g_autoptr(BlDistributionView) self = user_data;
  g_autoptr(GError) error = NULL;
  BlLayerAnalysis *a = bl_layer_analysis_compute_finish (result, &error);

  if (a == NULL)
    {
      if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        {
          clear_stats (self);
          gtk_label_set_text (self->verdict_label, error->message);
          gtk_widget_set_visible (GTK_WIDGET (self->verdict_label), TRUE);
        }
      return;
    }
  g_clear_pointer (&self->analysis, bl_layer_analysis_free);
  self->analysis = a;
  if (a->n_groups > 0)
    gtk_adjustment_set_upper (gtk_spin_button_get_adjustment (self->group_spin), (double) a->n_groups - 1);
  show_weight_plot (self);
  show_numbers (self);
  g_signal_emit (self, signals[SIGNAL_UPDATED], 0);
}

static void
refresh (BlDistributionView *self)
{
  BlGroupPick pick = gtk_drop_down_get_selected (self->pick_dropdown);

  g_cancellable_cancel (self->cancellable);
  g_clear_object (&self->cancellable);
  update_title (self);
  gtk_widget_set_visible (GTK_WIDGET (self->group_spin), pick == BL_GROUP_PICK_INDEX);
  if (self->item == NULL)
    {
      g_clear_pointer (&self->analysis, bl_layer_analysis_free);
      bl_plot_clear (self->weight_plot);
      clear_stats (self);
      return;
    }
  self->cancellable = g_cancellable_new ();
  bl_layer_analysis_compute_async (bl_layer_item_get_layer (self->item), self->spec,
                                   BL_ANALYSIS_ALL, pick,
                                   (gint64) gtk_spin_button_get_value (self->group_spin),
                                   self->cancellable, on_analysis_done, g_object_ref (self));
}

static void
on_log_toggled (BlDistributionView *self,
                GtkToggleButton    *toggle)
{
  gboolean log_y = gtk_toggle_button_get_active (toggle);

  bl_plot_set_log_y (self->weight_plot, log_y);
  bl_plot_set_log_y (self->act_hist_plot, log_y);
}

static void
on_pick_changed (BlDistributionView *self)
{
  refresh (self);
}

static void
bl_distribution_view_dispose (GObject *object)
{
  BlDistributionView *self = BL_DISTRIBUTION_VIEW (object);
  GtkWidget *child;

  g_cancellable_cancel (self->cancellable);
  g_clear_object (&self->cancellable);
  gtk_widget_dispose_template (GTK_WIDGET (self), BL_TYPE_DISTRIBUTION_VIEW);
  /* the template children that are not bound to a field */
  while ((child = gtk_widget_get_first_child (GTK_WIDGET (self))) != NULL)
    gtk_widget_unparent (child);
  g_clear_object (&self->item);
  self->calib = NULL;

  G_OBJECT_CLASS (bl_distribution_view_parent_class)->dispose (object);
}

static void
bl_distribution_view_finalize (GObject *object)
{
  BlDistributionView *self = BL_DISTRIBUTION_VIEW (object);

  g_clear_pointer (&self->spec, g_free);
  g_clear_pointer (&self->analysis, bl_layer_analysis_free);

  G_OBJECT_CLASS (bl_distribution_view_parent_class)->finalize (object);
}

static void
bl_distribution_view_class_init (BlDistributionViewClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->dispose = bl_distribution_view_dispose;
  object_class->finalize = bl_distribution_view_finalize;

  /**
   * BlDistributionView::updated:
   * @self: the view
   *
   * Emitted when an analysis has finished and the plots and numbers show it.
   */
  signals[SIGNAL_UPDATED] =
    g_signal_new ("updated", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 0);

  g_type_ensure (BL_TYPE_PLOT);
  gtk_widget_class_set_template_from_resource (widget_class, "/io/github/bitlens/Bitlens/bl-distribution-view.ui");
  gtk_widget_class_bind_template_child (widget_class, BlDistributionView, title_label);
  gtk_widget_class_bind_template_child (widget_class, BlDistributionView, log_toggle);
  gtk_widget_class_bind_template_child (widget_class, BlDistributionView, pick_dropdown);
  gtk_widget_class_bind_template_child (widget_class, BlDistributionView, group_spin);
  gtk_widget_class_bind_template_child (widget_class, BlDistributionView, weight_plot);
  gtk_widget_class_bind_template_child (widget_class, BlDistributionView, stats_box);
  gtk_widget_class_bind_template_child (widget_class, BlDistributionView, verdict_label);
  gtk_widget_class_bind_template_child (widget_class, BlDistributionView, group_label);
  gtk_widget_class_bind_template_child (widget_class, BlDistributionView, act_absmax_plot);
  gtk_widget_class_bind_template_child (widget_class, BlDistributionView, act_hist_plot);
  gtk_widget_class_bind_template_child (widget_class, BlDistributionView, calib_label);
  gtk_widget_class_bind_template_callback (widget_class, on_log_toggled);
  gtk_widget_class_bind_template_callback (widget_class, on_pick_changed);
  gtk_widget_class_set_layout_manager_type (widget_class, GTK_TYPE_BIN_LAYOUT);
  gtk_widget_class_set_css_name (widget_class, "distributionview");
}

static void
bl_distribution_view_init (BlDistributionView *self)
{
  gtk_widget_init_template (GTK_WIDGET (self));

  for (int i = 0; i < N_STATS; i++)
    {
      GtkWidget *box = gtk_box_new (GTK_ORIENTATION_VERTICAL, 0);
      GtkWidget *title = gtk_label_new (stat_titles[i]);
      GtkWidget *value = gtk_label_new ("—");

      gtk_label_set_xalign (GTK_LABEL (title), 0);
      gtk_label_set_xalign (GTK_LABEL (value), 0);
      gtk_label_set_selectable (GTK_LABEL (value), TRUE);
      gtk_widget_add_css_class (title, "caption");
      gtk_widget_add_css_class (title, "dim-label");
      gtk_widget_add_css_class (value, "numeric");
      gtk_widget_add_css_class (value, "stat-value");
      gtk_box_append (GTK_BOX (box), title);
      gtk_box_append (GTK_BOX (box), value);
      gtk_flow_box_append (self->stats_box, box);
      self->stat_values[i] = GTK_LABEL (value);
    }

  bl_plot_set_title (self->weight_plot, "Weights");
  bl_plot_set_axis_labels (self->weight_plot, "w", "count");
  bl_plot_set_placeholder (self->weight_plot, "Select a layer to see its weights");
  bl_plot_set_title (self->act_absmax_plot, "Input max |x| per channel");
  bl_plot_set_axis_labels (self->act_absmax_plot, "channel", "max |x|");
  bl_plot_set_placeholder (self->act_absmax_plot, "Calibrating…");
  bl_plot_set_title (self->act_hist_plot, "Inputs");
  bl_plot_set_axis_labels (self->act_hist_plot, "x", "count");
  on_log_toggled (self, self->log_toggle);
  update_title (self);
  clear_stats (self);
}

GtkWidget *
bl_distribution_view_new (void)
{
  return g_object_new (BL_TYPE_DISTRIBUTION_VIEW, NULL);
}

/**
 * bl_distribution_view_set_layer:
 * @self: a view
 * @item: (nullable): the layer to show
 */
void
bl_distribution_view_set_layer (BlDistributionView *self,
                                BlLayerItem        *item)
{
  g_return_if_fail (BL_IS_DISTRIBUTION_VIEW (self));
  g_return_if_fail (item == NULL || !bl_layer_item_is_group (item));

  if (!g_set_object (&self->item, item))
    return;
  gtk_spin_button_set_value (self->group_spin, 0);
  show_activations (self);
  refresh (self);
}

/**
 * bl_distribution_view_get_layer:
 * @self: a view
 *
 * Returns: (transfer none) (nullable): the layer shown
 */
BlLayerItem *
bl_distribution_view_get_layer (BlDistributionView *self)
{
  g_return_val_if_fail (BL_IS_DISTRIBUTION_VIEW (self), NULL);

  return self->item;
}

/**
 * bl_distribution_view_set_spec:
 * @self: a view
 * @spec: (nullable): the weight spec to preview, %NULL for the unquantized weight
 */
void
bl_distribution_view_set_spec (BlDistributionView *self,
                               const char         *spec)
{
  g_return_if_fail (BL_IS_DISTRIBUTION_VIEW (self));

  if (g_strcmp0 (spec, self->spec) == 0)
    return;
  g_free (self->spec);
  self->spec = g_strdup (spec);
  refresh (self);
}

/**
 * bl_distribution_view_set_calib:
 * @self: a view
 * @calib: (nullable): calibration statistics of the model; borrowed, and the caller must
 *   set %NULL here before freeing them
 */
void
bl_distribution_view_set_calib (BlDistributionView *self,
                                BlCalib            *calib)
{
  g_return_if_fail (BL_IS_DISTRIBUTION_VIEW (self));

  self->calib = calib;
  show_activations (self);
}

/**
 * bl_distribution_view_set_calib_status:
 * @self: a view
 * @text: (nullable): where the activation statistics come from, or what is happening
 */
void
bl_distribution_view_set_calib_status (BlDistributionView *self,
                                       const char         *text)
{
  g_return_if_fail (BL_IS_DISTRIBUTION_VIEW (self));

  gtk_label_set_text (self->calib_label, text ? text : "");
}

/**
 * bl_distribution_view_get_analysis:
 * @self: a view
 *
 * Returns: (nullable): the analysis shown, or %NULL before the first one finishes
 */
const BlLayerAnalysis *
bl_distribution_view_get_analysis (BlDistributionView *self)
{
  g_return_val_if_fail (BL_IS_DISTRIBUTION_VIEW (self), NULL);

  return self->analysis;
}

/**
 * bl_distribution_view_get_plot:
 * @self: a view
 * @id: "weights", "act-absmax" or "act-hist"
 *
 * Returns: (transfer none) (nullable): the plot, or %NULL for an unknown @id
 */
BlPlot *
bl_distribution_view_get_plot (BlDistributionView *self,
                               const char         *id)
{
  g_return_val_if_fail (BL_IS_DISTRIBUTION_VIEW (self), NULL);

  if (g_strcmp0 (id, "weights") == 0)
    return self->weight_plot;
  if (g_strcmp0 (id, "act-absmax") == 0)
    return self->act_absmax_plot;
  if (g_strcmp0 (id, "act-hist") == 0)
    return self->act_hist_plot;
  return NULL;
}
