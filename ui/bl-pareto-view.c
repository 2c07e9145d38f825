/* bl-pareto-view.c: measured plans as quality against bits per weight, with a scaling fit
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "bl-pareto-view.h"

#include <math.h>

/**
 * SECTION:bl-pareto-view
 * @title: BlParetoView
 *
 * The Pareto page of the workbench: every measured plan of the model (the runs the store
 * holds for the same windows, handed in by the window) and, optionally, the points of a
 * sweep file, as bits per weight against perplexity or KL. The current plan is ringed.
 * With three points or more, a quality-against-bits fit (bl-scaling.h, methods.md §4) is
 * drawn with its 95% confidence band. Clicking a point emits #BlParetoView::point-activated
 * with the point, whose plan the window restores.
 */

#define CURVE_SAMPLES 96
#define BAND_LEVEL 0.95

/* The choices of the fit drop-down, in its order. */
enum {
  FIT_AUTO,
  FIT_LOG_LINEAR,
  FIT_POWER_LAW,
  FIT_LOGISTIC,
  FIT_NONE,
};

struct _BlParetoView
{
  GtkWidget parent_instance;

  /* Template widgets */
  GtkToggleButton *ppl_button;
  GtkToggleButton *kl_button;
  GtkDropDown *fit_dropdown;
  BlPlot *plot;
  GtkLabel *fit_label;
  GtkLabel *sweep_label;

  /* Data */
  GPtrArray *runs;           /* BlParetoPoint */
  GPtrArray *sweep;          /* BlParetoPoint, or NULL */
  char *sweep_name;
  BlPlanSnapshot *current;
  gint64 n_params;
  BlParetoMetric metric;

  /* What the plot shows: the points of each points series, for clicks */
  GPtrArray *shown_runs;     /* borrowed BlParetoPoint */
  GPtrArray *shown_sweep;
  int runs_series;
  int sweep_series;
  gboolean fitted;
  BlScalingModel fit_model;
  BlFitResult fit;
  char *fit_text;
};

G_DEFINE_FINAL_TYPE (BlParetoView, bl_pareto_view, GTK_TYPE_WIDGET)

enum {
  SIGNAL_POINT_ACTIVATED,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

/**
 * bl_pareto_point_new:
 * @plan: the measured plan
 * @bpw: its bits per weight over the linear layers
 * @ppl: its perplexity, or NaN
 * @kl: its KL against the full-precision model, or NaN
 *
 * Returns: (transfer full): a point holding a reference to @plan
 */
BlParetoPoint *
bl_pareto_point_new (BlPlanSnapshot *plan,
                     double          bpw,
                     double          ppl,
                     double          kl)
{
  BlParetoPoint *p;

  g_return_val_if_fail (plan != NULL, NULL);

  p = g_new0 (BlParetoPoint, 1);
  p->plan = bl_plan_snapshot_ref (plan);
  p->bpw = bpw;
  p->ppl = ppl;
  p->kl = kl;
  return p;
}

/**
 * bl_pareto_point_free:
 * @point: (nullable): a point
 */
void
bl_pareto_point_free (BlParetoPoint *point)
{
  if (point == NULL)
    return;
  g_clear_pointer (&point->plan, bl_plan_snapshot_unref);
  g_free (point);
}

static double
quality (BlParetoView        *self,
         const BlParetoPoint *p)
{
  return self->metric == BL_PARETO_KL ? p->kl : p->ppl;
}

static int
choose_model (guint           choice,
              guint           n,
              BlScalingModel *out)
{
  switch (choice)
    {
    case FIT_LOG_LINEAR:
      *out = BL_SCALING_LOG_LINEAR;
      return n >= 3;
    case FIT_POWER_LAW:
      *out = BL_SCALING_POWER_LAW;
      return n >= 4;
    case FIT_LOGISTIC:
      *out = BL_SCALING_LOGISTIC;
      return n >= 5;
    case FIT_NONE:
      return FALSE;
    default:
      /* a power law with a floor needs a point beyond its three parameters for a band;
       * below that the line in log bits is the honest choice */
      *out = n >= 5 ? BL_SCALING_POWER_LAW : BL_SCALING_LOG_LINEAR;
      return n >= 3;
    }
}

/* Fits quality against the total bits of the linear layers (bits per weight × their
 * parameters), the x of the k-bit inference scaling view (methods.md §4), and draws the
 * fit with its confidence band under the points. Only the runs enter the fit: they were
 * measured on the same windows, while a sweep file's points come from its own text. */
static void
add_fit (BlParetoView *self,
         GPtrArray    *points)
{
  guint choice = gtk_drop_down_get_selected (self->fit_dropdown);
  g_autofree double *bits = g_new (double, MAX (points->len, 1));
  g_autofree double *q = g_new (double, MAX (points->len, 1));
  g_autoptr(GError) error = NULL;
  double xs[CURVE_SAMPLES], ys[CURVE_SAMPLES], lo[CURVE_SAMPLES], hi[CURVE_SAMPLES];
  double x_lo = INFINITY, x_hi = -INFINITY;
  gboolean band = TRUE;
  g_autofree char *label = NULL;

  self->fitted = FALSE;
  g_clear_pointer (&self->fit_text, g_free);
  if (self->n_params <= 0 || !choose_model (choice, points->len, &self->fit_model))
    {
      if (choice != FIT_NONE)
        self->fit_text = g_strdup_printf ("A fit needs at least %d measured plans; %u so far.",
                                          choice == FIT_LOGISTIC ? 5 : choice == FIT_POWER_LAW ? 4 : 3,
                                          points->len);
      return;
    }
  for (guint i = 0; i < points->len; i++)
    {
      const BlParetoPoint *p = g_ptr_array_index (points, i);

      bits[i] = p->bpw * (double) self->n_params;
      q[i] = quality (self, p);
      x_lo = MIN (x_lo, p->bpw);
      x_hi = MAX (x_hi, p->bpw);
    }
  self->fitted = bl_scaling_fit (self->fit_model, bits, q, points->len, &self->fit, &error);
  if (!self->fitted && choice == FIT_AUTO && self->fit_model != BL_SCALING_LOG_LINEAR)
    {
      g_clear_error (&error);
      self->fit_model = BL_SCALING_LOG_LINEAR;
      self->fitted = bl_scaling_fit (self->fit_model, bits, q, points->len, &self->fit, &error);
    }
  if (!self->fitted)
    {
      self->fit_text = g_strdup_printf ("No %s fit: %s", bl_scaling_model_to_string (self->fit_model),
                                        error->message);
      return;
    }
  for (guint i = 0; i < CURVE_SAMPLES; i++)
    {
      double hw = NAN;

      xs[i] = x_lo + (x_hi - x_lo) * i / (CURVE_SAMPLES - 1);
      ys[i] = bl_scaling_predict (self->fit_model, &self->fit, xs[i] * (double) self->n_params, BAND_LEVEL, &hw);
      band &= isfinite (hw);
      lo[i] = ys[i] - hw;
      hi[i] = ys[i] + hw;
    }
  if (band)
    bl_plot_add_band (self->plot, "95% confidence band", xs, lo, hi, CURVE_SAMPLES, BL_PLOT_GREEN);
  label = g_strdup_printf ("%s fit", bl_scaling_model_to_string (self->fit_model));
  bl_plot_add_line (self->plot, label, xs, ys, CURVE_SAMPLES, BL_PLOT_GREEN);
  self->fit_text = g_strdup_printf ("%s fit of %s against log₁₀ of the linear layers' bits over the %u measured plans: "
                                    "R² %.3f, %u degrees of freedom%s.",
                                    bl_scaling_model_to_string (self->fit_model),
                                    self->metric == BL_PARETO_KL ? "KL" : "perplexity", points->len,
                                    self->fit.r2, self->fit.dof,
                                    band ? "; the band is the 95% confidence interval of the curve"
                                         : "; no band without a spare degree of freedom");
}

static void
rebuild (BlParetoView *self)
{
  GPtrArray *sources[] = { self->runs, self->sweep };
  GPtrArray *shown[] = { self->shown_runs, self->shown_sweep };
  int highlight = -1;

  bl_plot_clear (self->plot);
  bl_plot_set_axis_labels (self->plot, "bits per weight (linear layers)",
                           self->metric == BL_PARETO_KL ? "KL from full precision (nats/token)" : "perplexity");
  self->runs_series = self->sweep_series = -1;
  for (guint s = 0; s < G_N_ELEMENTS (sources); s++)
    {
      g_ptr_array_set_size (shown[s], 0);
      for (guint i = 0; sources[s] != NULL && i < sources[s]->len; i++)
        {
          BlParetoPoint *p = g_ptr_array_index (sources[s], i);

          if (isfinite (quality (self, p)) && isfinite (p->bpw) && p->bpw > 0)
            g_ptr_array_add (shown[s], p);
        }
    }
  add_fit (self, self->shown_runs);
  gtk_label_set_text (self->fit_label, self->fit_text ? self->fit_text : "");
  gtk_widget_set_visible (GTK_WIDGET (self->fit_label), self->fit_text != NULL);

  for (guint s = 0; s < G_N_ELEMENTS (shown); s++)
    {
      guint n = shown[s]->len;
      g_autofree double *xs = g_new (double, MAX (n, 1));
      g_autofree double *ys = g_new (double, MAX (n, 1));
      g_autofree char *label = NULL;

      if (n == 0)
        continue;
      highlight = -1;
      for (guint i = 0; i < n; i++)
        {
          BlParetoPoint *p = g_ptr_array_index (shown[s], i);

          xs[i] = p->bpw;
          ys[i] = quality (self, p);
          if (highlight < 0 && self->current != NULL && bl_plan_snapshot_equal (p->plan, self->current))
            highlight = (int) i;
        }
      if (s == 0)
        {
          self->runs_series = (int) bl_plot_get_n_series (self->plot);
          bl_plot_add_points (self->plot, "measured plans (click to restore)", xs, ys, n, BL_PLOT_BLUE, highlight);
        }
      else
        {
          label = g_strdup_printf ("sweep %s", self->sweep_name ? self->sweep_name : "");
          self->sweep_series = (int) bl_plot_get_n_series (self->plot);
          bl_plot_add_points (self->plot, label, xs, ys, n, BL_PLOT_ORANGE, highlight);
        }
    }
}

static void
on_point_activated (BlParetoView *self,
                    guint         series,
                    guint         index)
{
  GPtrArray *shown = NULL;

  if ((int) series == self->runs_series)
    shown = self->shown_runs;
  else if ((int) series == self->sweep_series)
    shown = self->shown_sweep;
  if (shown != NULL && index < shown->len)
    g_signal_emit (self, signals[SIGNAL_POINT_ACTIVATED], 0, g_ptr_array_index (shown, index));
}

static void
on_metric_toggled (BlParetoView *self)
{
  BlParetoMetric metric = gtk_toggle_button_get_active (self->kl_button) ? BL_PARETO_KL : BL_PARETO_PPL;

  if (metric != self->metric)
    {
      self->metric = metric;
      rebuild (self);
    }
}

static void
on_fit_changed (BlParetoView *self)
{
  rebuild (self);
}

static void
bl_pareto_view_dispose (GObject *object)
{
  BlParetoView *self = BL_PARETO_VIEW (object);
  GtkWidget *child;

  gtk_widget_dispose_template (GTK_WIDGET (self), BL_TYPE_PARETO_VIEW);
  while ((child = gtk_widget_get_first_child (GTK_WIDGET (self))) != NULL)
    gtk_widget_unparent (child);

  G_OBJECT_CLASS (bl_pareto_view_parent_class)->dispose (object);
}

static void
bl_pareto_view_finalize (GObject *object)
{
  BlParetoView *self = BL_PARETO_VIEW (object);

  g_clear_pointer (&self->runs, g_ptr_array_unref);
  g_clear_pointer (&self->sweep, g_ptr_array_unref);
  g_clear_pointer (&self->shown_runs, g_ptr_array_unref);
  g_clear_pointer (&self->shown_sweep, g_ptr_array_unref);
  g_clear_pointer (&self->current, bl_plan_snapshot_unref);
  g_free (self->sweep_name);
  g_free (self->fit_text);

  G_OBJECT_CLASS (bl_pareto_view_parent_class)->finalize (object);
}

static void
bl_pareto_view_class_init (BlParetoViewClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->dispose = bl_pareto_view_dispose;
  object_class->finalize = bl_pareto_view_finalize;

  /**
   * BlParetoView::point-activated:
   * @self: the view
   * @point: (type gpointer): the #BlParetoPoint clicked, owned by the view
   *
   * A point was clicked.
   */
  signals[SIGNAL_POINT_ACTIVATED] =
    g_signal_new ("point-activated", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
                  NULL, G_TYPE_NONE, 1, G_TYPE_POINTER);

  g_type_ensure (BL_TYPE_PLOT);
  gtk_widget_class_set_template_from_resource (widget_class, "/io/github/bitlens/Bitlens/bl-pareto-view.ui");
  gtk_widget_class_bind_template_child (widget_class, BlParetoView, ppl_button);
  gtk_widget_class_bind_template_child (widget_class, BlParetoView, kl_button);
  gtk_widget_class_bind_template_child (widget_class, BlParetoView, fit_dropdown);
  gtk_widget_class_bind_template_child (widget_class, BlParetoView, plot);
  gtk_widget_class_bind_template_child (widget_class, BlParetoView, fit_label);
  gtk_widget_class_bind_template_child (widget_class, BlParetoView, sweep_label);
  gtk_widget_class_bind_template_callback (widget_class, on_point_activated);
  gtk_widget_class_bind_template_callback (widget_class, on_metric_toggled);
  gtk_widget_class_bind_template_callback (widget_class, on_fit_changed);
  gtk_widget_class_set_layout_manager_type (widget_class, GTK_TYPE_BIN_LAYOUT);
  gtk_widget_class_set_css_name (widget_class, "paretoview");
}

static void
bl_pareto_view_init (BlParetoView *self)
{
  self->shown_runs = g_ptr_array_new ();
  self->shown_sweep = g_ptr_array_new ();
  self->runs_series = self->sweep_series = -1;
  gtk_widget_init_template (GTK_WIDGET (self));
  bl_plot_set_title (self->plot, "Quality against size");
  bl_plot_set_placeholder (self->plot, "Finished measurements appear here");
  rebuild (self);
}

/**
 * bl_pareto_view_set_runs:
 * @self: a view
 * @points: (nullable) (element-type BlParetoPoint): the measured plans of the model; the
 *   view keeps a reference to the array
 */
void
bl_pareto_view_set_runs (BlParetoView *self,
                         GPtrArray    *points)
{
  g_return_if_fail (BL_IS_PARETO_VIEW (self));

  if (points != NULL)
    g_ptr_array_ref (points);
  g_clear_pointer (&self->runs, g_ptr_array_unref);
  self->runs = points;
  rebuild (self);
}

/**
 * bl_pareto_view_set_sweep:
 * @self: a view
 * @name: (nullable): the sweep's name, for the legend
 * @points: (nullable) (element-type BlParetoPoint): the measured points of a sweep file,
 *   or %NULL to drop the sweep; the view keeps a reference
 */
void
bl_pareto_view_set_sweep (BlParetoView *self,
                          const char   *name,
                          GPtrArray    *points)
{
  g_autofree char *text = NULL;

  g_return_if_fail (BL_IS_PARETO_VIEW (self));

  if (points != NULL)
    g_ptr_array_ref (points);
  g_clear_pointer (&self->sweep, g_ptr_array_unref);
  self->sweep = points;
  g_free (self->sweep_name);
  self->sweep_name = g_strdup (name);
  if (points != NULL)
    text = g_strdup_printf ("Sweep %s: %u measured points (orange).", name ? name : "", points->len);
  gtk_label_set_text (self->sweep_label, text ? text : "");
  gtk_widget_set_visible (GTK_WIDGET (self->sweep_label), text != NULL);
  rebuild (self);
}

/**
 * bl_pareto_view_set_current:
 * @self: a view
 * @plan: (nullable): the window's current plan, ringed where it was measured
 */
void
bl_pareto_view_set_current (BlParetoView   *self,
                            BlPlanSnapshot *plan)
{
  g_return_if_fail (BL_IS_PARETO_VIEW (self));

  if (plan != NULL)
    bl_plan_snapshot_ref (plan);
  g_clear_pointer (&self->current, bl_plan_snapshot_unref);
  self->current = plan;
  rebuild (self);
}

/**
 * bl_pareto_view_set_n_params:
 * @self: a view
 * @n_params: the parameters of the model's linear layers, which turn bits per weight into
 *   the total bits the scaling fit is written in; 0 without a model
 */
void
bl_pareto_view_set_n_params (BlParetoView *self,
                             gint64        n_params)
{
  g_return_if_fail (BL_IS_PARETO_VIEW (self));

  self->n_params = n_params;
  rebuild (self);
}

/**
 * bl_pareto_view_set_metric:
 * @self: a view
 * @metric: the quality on the y axis
 */
void
bl_pareto_view_set_metric (BlParetoView   *self,
                           BlParetoMetric  metric)
{
  g_return_if_fail (BL_IS_PARETO_VIEW (self));

  /* the toggle's handler rebuilds */
  gtk_toggle_button_set_active (metric == BL_PARETO_KL ? self->kl_button : self->ppl_button, TRUE);
}

/**
 * bl_pareto_view_get_metric:
 * @self: a view
 *
 * Returns: the quality on the y axis
 */
BlParetoMetric
bl_pareto_view_get_metric (BlParetoView *self)
{
  g_return_val_if_fail (BL_IS_PARETO_VIEW (self), BL_PARETO_PPL);

  return self->metric;
}

/**
 * bl_pareto_view_get_plot:
 * @self: a view
 *
 * Returns: (transfer none): the plot, for saving as PNG or SVG
 */
BlPlot *
bl_pareto_view_get_plot (BlParetoView *self)
{
  g_return_val_if_fail (BL_IS_PARETO_VIEW (self), NULL);

  return self->plot;
}

/**
 * bl_pareto_view_get_fit:
 * @self: a view
 * @out_model: (out) (optional): the fitted model
 *
 * Returns: (nullable): the fit drawn, or %NULL when there is none
 */
const BlFitResult *
bl_pareto_view_get_fit (BlParetoView   *self,
                        BlScalingModel *out_model)
{
  g_return_val_if_fail (BL_IS_PARETO_VIEW (self), NULL);

  if (!self->fitted)
    return NULL;
  if (out_model != NULL)
    *out_model = self->fit_model;
  return &self->fit;
}

/**
 * bl_pareto_view_get_fit_text:
 * @self: a view
 *
 * Returns: (nullable): the sentence under the plot that describes the fit
 */
const char *
bl_pareto_view_get_fit_text (BlParetoView *self)
{
  g_return_val_if_fail (BL_IS_PARETO_VIEW (self), NULL);

  return self->fit_text;
}

/**
 * bl_pareto_view_lookup:
 * @self: a view
 * @plan: a plan
 * @out_series: (out): the plot series that shows it
 * @out_index: (out): its index in that series
 *
 * Finds where the plot shows @plan, so a test can click it through #BlPlot::point-activated.
 *
 * Returns: %TRUE when a point of @plan is shown
 */
gboolean
bl_pareto_view_lookup (BlParetoView   *self,
                       BlPlanSnapshot *plan,
                       guint          *out_series,
                       guint          *out_index)
{
  GPtrArray *shown[] = { self->shown_runs, self->shown_sweep };
  int series[] = { self->runs_series, self->sweep_series };

  g_return_val_if_fail (BL_IS_PARETO_VIEW (self), FALSE);
  g_return_val_if_fail (plan != NULL, FALSE);

  for (guint s = 0; s < G_N_ELEMENTS (shown); s++)
    for (guint i = 0; series[s] >= 0 && i < shown[s]->len; i++)
      if (bl_plan_snapshot_equal (((BlParetoPoint *) g_ptr_array_index (shown[s], i))->plan, plan))
        {
          *out_series = (guint) series[s];
          *out_index = i;
          return TRUE;
        }
  return FALSE;
}
