/* bl-plot.c: a 2-D plot of data series, drawn with Cairo in snapshot()
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "bl-plot.h"

#include <cairo-svg.h>
#include <math.h>

/**
 * SECTION:bl-plot
 * @title: BlPlot
 *
 * A plot keeps its data series as plain arrays (histograms, vertical marker lines, points,
 * polylines) apart from the widget, and draws them with one function, bl_plot_draw(), that
 * serves both snapshot() and the PNG/SVG export, so an exported figure is the figure on
 * screen. Clicking near a point emits #BlPlot::point-activated.
 */

typedef enum
{
  SERIES_HISTOGRAM,
  SERIES_VLINES,
  SERIES_POINTS,
  SERIES_LINE,
  SERIES_BAND,
} SeriesKind;

typedef struct
{
  SeriesKind kind;
  char *label;
  BlPlotColor color;
  gboolean filled;
  double lo;                 /* histogram edges */
  double hi;
  double *xs;
  double *ys;                /* histogram counts, or y values (a band's lower edge) */
  double *ys_hi;             /* a band's upper edge */
  guint n;
  int highlight;
} Series;

/* Where the last draw put the data, for hit tests. */
typedef struct
{
  double left, top, width, height;
  double x0, x1, y0, y1;
  gboolean log_y;
  gboolean valid;
} Frame;

struct _BlPlot
{
  GtkWidget parent_instance;

  GPtrArray *series;
  char *title;
  char *x_label;
  char *y_label;
  char *placeholder;
  gboolean log_y;
  gboolean have_x_range;
  double x_lo;
  double x_hi;

  Frame frame;
};

G_DEFINE_FINAL_TYPE (BlPlot, bl_plot, GTK_TYPE_WIDGET)

enum {
  SIGNAL_POINT_ACTIVATED,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

enum {
  PROP_0,
  PROP_TITLE,
  PROP_LOG_Y,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

static const double palette[][3] = {
  [BL_PLOT_BLUE] = { 0x35 / 255., 0x84 / 255., 0xe4 / 255. },
  [BL_PLOT_ORANGE] = { 0xff / 255., 0x78 / 255., 0x00 / 255. },
  [BL_PLOT_RED] = { 0xe0 / 255., 0x1b / 255., 0x24 / 255. },
  [BL_PLOT_GREEN] = { 0x26 / 255., 0xa2 / 255., 0x69 / 255. },
  [BL_PLOT_PURPLE] = { 0x91 / 255., 0x41 / 255., 0xac / 255. },
  [BL_PLOT_GRAY] = { 0x77 / 255., 0x76 / 255., 0x7b / 255. },
};

/* g_set_str() arrived in GLib 2.76; the build targets 2.74. */
static gboolean
replace_str (char       **dst,
             const char  *src)
{
  if (g_strcmp0 (*dst, src) == 0)
    return FALSE;
  g_free (*dst);
  *dst = g_strdup (src);
  return TRUE;
}

static void
series_free (gpointer data)
{
  Series *s = data;

  g_free (s->label);
  g_free (s->xs);
  g_free (s->ys);
  g_free (s->ys_hi);
  g_free (s);
}

static void
bl_plot_finalize (GObject *object)
{
  BlPlot *self = BL_PLOT (object);

  g_clear_pointer (&self->series, g_ptr_array_unref);
  g_clear_pointer (&self->title, g_free);
  g_clear_pointer (&self->x_label, g_free);
  g_clear_pointer (&self->y_label, g_free);
  g_clear_pointer (&self->placeholder, g_free);

  G_OBJECT_CLASS (bl_plot_parent_class)->finalize (object);
}

static void
bl_plot_get_property (GObject    *object,
                      guint       prop_id,
                      GValue     *value,
                      GParamSpec *pspec)
{
  BlPlot *self = BL_PLOT (object);

  switch (prop_id)
    {
    case PROP_TITLE:
      g_value_set_string (value, self->title);
      break;
    case PROP_LOG_Y:
      g_value_set_boolean (value, self->log_y);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
bl_plot_set_property (GObject      *object,
                      guint         prop_id,
                      const GValue *value,
                      GParamSpec   *pspec)
{
  BlPlot *self = BL_PLOT (object);

  switch (prop_id)
    {
    case PROP_TITLE:
      bl_plot_set_title (self, g_value_get_string (value));
      break;
    case PROP_LOG_Y:
      bl_plot_set_log_y (self, g_value_get_boolean (value));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
bl_plot_snapshot (GtkWidget   *widget,
                  GtkSnapshot *snapshot)
{
  BlPlot *self = BL_PLOT (widget);
  int width = gtk_widget_get_width (widget);
  int height = gtk_widget_get_height (widget);
  cairo_t *cr;

  if (width <= 0 || height <= 0)
    return;
  cr = gtk_snapshot_append_cairo (snapshot, &GRAPHENE_RECT_INIT (0, 0, width, height));
  bl_plot_draw (self, cr, width, height, FALSE);
  cairo_destroy (cr);
}

static void
bl_plot_measure (GtkWidget      *widget,
                 GtkOrientation  orientation,
                 int             for_size,
                 int            *minimum,
                 int            *natural,
                 int            *minimum_baseline,
                 int            *natural_baseline)
{
  *minimum = orientation == GTK_ORIENTATION_HORIZONTAL ? 200 : 140;
  *natural = orientation == GTK_ORIENTATION_HORIZONTAL ? 480 : 220;
}

static double
data_to_px_x (const Frame *f,
              double       x)
{
  return f->left + (x - f->x0) / (f->x1 - f->x0) * f->width;
}

static double
transform_y (const Frame *f,
             double       y)
{
  if (f->log_y)
    return y > 0 ? log10 (y) : -INFINITY;
  return y;
}

static double
data_to_px_y (const Frame *f,
              double       y)
{
  double t = transform_y (f, y);

  if (isinf (t) && t < 0)
    return f->top + f->height;
  return f->top + f->height - (t - f->y0) / (f->y1 - f->y0) * f->height;
}

static void
on_click_released (GtkGestureClick *gesture,
                   int              n_press,
                   double           x,
                   double           y,
                   BlPlot          *self)
{
  double best = 10.0 * 10.0;
  int best_series = -1, best_point = -1;

  if (!self->frame.valid)
    return;
  for (guint s = 0; s < self->series->len; s++)
    {
      Series *ser = g_ptr_array_index (self->series, s);

      if (ser->kind != SERIES_POINTS)
        continue;
      for (guint i = 0; i < ser->n; i++)
        {
          double dx = data_to_px_x (&self->frame, ser->xs[i]) - x;
          double dy = data_to_px_y (&self->frame, ser->ys[i]) - y;

          if (dx * dx + dy * dy < best)
            {
              best = dx * dx + dy * dy;
              best_series = (int) s;
              best_point = (int) i;
            }
        }
    }
  if (best_series >= 0)
    g_signal_emit (self, signals[SIGNAL_POINT_ACTIVATED], 0, (guint) best_series, (guint) best_point);
}

static void
bl_plot_class_init (BlPlotClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->finalize = bl_plot_finalize;
  object_class->get_property = bl_plot_get_property;
  object_class->set_property = bl_plot_set_property;
  widget_class->snapshot = bl_plot_snapshot;
  widget_class->measure = bl_plot_measure;

  properties[PROP_TITLE] =
    g_param_spec_string ("title", NULL, NULL, NULL,
                         G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);
  properties[PROP_LOG_Y] =
    g_param_spec_boolean ("log-y", NULL, NULL, FALSE,
                          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);
  g_object_class_install_properties (object_class, N_PROPS, properties);

  /**
   * BlPlot::point-activated:
   * @self: the plot
   * @series: the index of the points series, in the order the series were added
   * @point: the index of the point within it
   *
   * Emitted when the user clicks within 10 px of a point.
   */
  signals[SIGNAL_POINT_ACTIVATED] =
    g_signal_new ("point-activated", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 2, G_TYPE_UINT, G_TYPE_UINT);

  gtk_widget_class_set_css_name (widget_class, "plot");
  gtk_widget_class_set_accessible_role (widget_class, GTK_ACCESSIBLE_ROLE_IMG);
}

static void
bl_plot_init (BlPlot *self)
{
  GtkGesture *click = gtk_gesture_click_new ();

  self->series = g_ptr_array_new_with_free_func (series_free);
  g_signal_connect (click, "released", G_CALLBACK (on_click_released), self);
  gtk_widget_add_controller (GTK_WIDGET (self), GTK_EVENT_CONTROLLER (click));
}

/**
 * bl_plot_new:
 *
 * Returns: (transfer floating): a new, empty plot
 */
GtkWidget *
bl_plot_new (void)
{
  return g_object_new (BL_TYPE_PLOT, NULL);
}

/**
 * bl_plot_clear:
 * @self: a plot
 *
 * Removes every series and the fixed x range; titles stay.
 */
void
bl_plot_clear (BlPlot *self)
{
  g_return_if_fail (BL_IS_PLOT (self));

  g_ptr_array_set_size (self->series, 0);
  self->have_x_range = FALSE;
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

void
bl_plot_set_title (BlPlot     *self,
                   const char *title)
{
  g_return_if_fail (BL_IS_PLOT (self));

  if (replace_str (&self->title, title))
    {
      g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_TITLE]);
      gtk_accessible_update_property (GTK_ACCESSIBLE (self), GTK_ACCESSIBLE_PROPERTY_LABEL,
                                      title ? title : "", -1);
      gtk_widget_queue_draw (GTK_WIDGET (self));
    }
}

const char *
bl_plot_get_title (BlPlot *self)
{
  g_return_val_if_fail (BL_IS_PLOT (self), NULL);

  return self->title;
}

void
bl_plot_set_axis_labels (BlPlot     *self,
                         const char *x_label,
                         const char *y_label)
{
  g_return_if_fail (BL_IS_PLOT (self));

  replace_str (&self->x_label, x_label);
  replace_str (&self->y_label, y_label);
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

/**
 * bl_plot_set_placeholder:
 * @self: a plot
 * @text: (nullable): what to say while the plot has no series
 */
void
bl_plot_set_placeholder (BlPlot     *self,
                         const char *text)
{
  g_return_if_fail (BL_IS_PLOT (self));

  replace_str (&self->placeholder, text);
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

/**
 * bl_plot_set_log_y:
 * @self: a plot
 * @log_y: whether the y axis is logarithmic (values ≤ 0 then sit on the axis)
 */
void
bl_plot_set_log_y (BlPlot   *self,
                   gboolean  log_y)
{
  g_return_if_fail (BL_IS_PLOT (self));

  log_y = !!log_y;
  if (self->log_y == log_y)
    return;
  self->log_y = log_y;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_LOG_Y]);
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

gboolean
bl_plot_get_log_y (BlPlot *self)
{
  g_return_val_if_fail (BL_IS_PLOT (self), FALSE);

  return self->log_y;
}

/**
 * bl_plot_set_x_range:
 * @self: a plot
 * @lo: left end
 * @hi: right end, > @lo
 *
 * Fixes the x range instead of fitting it to the data (until bl_plot_clear()).
 */
void
bl_plot_set_x_range (BlPlot *self,
                     double  lo,
                     double  hi)
{
  g_return_if_fail (BL_IS_PLOT (self));
  g_return_if_fail (hi > lo);

  self->have_x_range = TRUE;
  self->x_lo = lo;
  self->x_hi = hi;
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

static Series *
series_new (BlPlot     *self,
            SeriesKind  kind,
            const char *label,
            BlPlotColor color)
{
  Series *s = g_new0 (Series, 1);

  s->kind = kind;
  s->label = g_strdup (label);
  s->color = color;
  s->highlight = -1;
  g_ptr_array_add (self->series, s);
  gtk_widget_queue_draw (GTK_WIDGET (self));
  return s;
}

/**
 * bl_plot_add_histogram:
 * @self: a plot
 * @label: (nullable): the legend entry
 * @lo: the left edge of the first bin
 * @hi: the right edge of the last bin
 * @counts: (array length=n_bins): the bin heights
 * @n_bins: bins
 * @color: the colour
 * @filled: bars when %TRUE, an outline when %FALSE (for an overlay)
 */
void
bl_plot_add_histogram (BlPlot       *self,
                       const char   *label,
                       double        lo,
                       double        hi,
                       const double *counts,
                       guint         n_bins,
                       BlPlotColor   color,
                       gboolean      filled)
{
  Series *s;

  g_return_if_fail (BL_IS_PLOT (self));
  g_return_if_fail (hi > lo && n_bins > 0 && counts != NULL);

  s = series_new (self, SERIES_HISTOGRAM, label, color);
  s->lo = lo;
  s->hi = hi;
  s->ys = g_memdup2 (counts, n_bins * sizeof (double));
  s->n = n_bins;
  s->filled = filled;
}

/**
 * bl_plot_add_vlines:
 * @self: a plot
 * @label: (nullable): the legend entry
 * @xs: (array length=n): where the lines go
 * @n: lines
 * @color: the colour
 *
 * Thin vertical lines over the full height, with a tick under the axis: a format's
 * representable values.
 */
void
bl_plot_add_vlines (BlPlot       *self,
                    const char   *label,
                    const double *xs,
                    guint         n,
                    BlPlotColor   color)
{
  Series *s;

  g_return_if_fail (BL_IS_PLOT (self));
  g_return_if_fail (n == 0 || xs != NULL);

  s = series_new (self, SERIES_VLINES, label, color);
  s->xs = g_memdup2 (xs, n * sizeof (double));
  s->n = n;
}

/**
 * bl_plot_add_points:
 * @self: a plot
 * @label: (nullable): the legend entry
 * @xs: (array length=n): x values
 * @ys: (array length=n): y values
 * @n: points
 * @color: the colour
 * @highlight: the index of a point to ring, or -1
 */
void
bl_plot_add_points (BlPlot       *self,
                    const char   *label,
                    const double *xs,
                    const double *ys,
                    guint         n,
                    BlPlotColor   color,
                    int           highlight)
{
  Series *s;

  g_return_if_fail (BL_IS_PLOT (self));
  g_return_if_fail (n == 0 || (xs != NULL && ys != NULL));

  s = series_new (self, SERIES_POINTS, label, color);
  s->xs = g_memdup2 (xs, n * sizeof (double));
  s->ys = g_memdup2 (ys, n * sizeof (double));
  s->n = n;
  s->highlight = highlight;
}

/**
 * bl_plot_add_line:
 * @self: a plot
 * @label: (nullable): the legend entry
 * @xs: (array length=n): x values, increasing
 * @ys: (array length=n): y values
 * @n: vertices
 * @color: the colour
 */
void
bl_plot_add_line (BlPlot       *self,
                  const char   *label,
                  const double *xs,
                  const double *ys,
                  guint         n,
                  BlPlotColor   color)
{
  Series *s;

  g_return_if_fail (BL_IS_PLOT (self));
  g_return_if_fail (n == 0 || (xs != NULL && ys != NULL));

  s = series_new (self, SERIES_LINE, label, color);
  s->xs = g_memdup2 (xs, n * sizeof (double));
  s->ys = g_memdup2 (ys, n * sizeof (double));
  s->n = n;
}

/**
 * bl_plot_add_band:
 * @self: a plot
 * @label: (nullable): the legend entry
 * @xs: (array length=n): x values, increasing
 * @lo: (array length=n): the lower edge at each x
 * @hi: (array length=n): the upper edge at each x
 * @n: vertices
 * @color: the colour
 *
 * A translucent area between two curves, such as a fit's confidence band.
 */
void
bl_plot_add_band (BlPlot       *self,
                  const char   *label,
                  const double *xs,
                  const double *lo,
                  const double *hi,
                  guint         n,
                  BlPlotColor   color)
{
  Series *s;

  g_return_if_fail (BL_IS_PLOT (self));
  g_return_if_fail (n == 0 || (xs != NULL && lo != NULL && hi != NULL));

  s = series_new (self, SERIES_BAND, label, color);
  s->xs = g_memdup2 (xs, n * sizeof (double));
  s->ys = g_memdup2 (lo, n * sizeof (double));
  s->ys_hi = g_memdup2 (hi, n * sizeof (double));
  s->n = n;
}

static void
extend (double *lo,
        double *hi,
        double  v)
{
  if (!isfinite (v))
    return;
  *lo = MIN (*lo, v);
  *hi = MAX (*hi, v);
}

/* The data extents over every series, in plot coordinates (log10 for a log y axis). */
static gboolean
compute_ranges (BlPlot *self,
                Frame  *f)
{
  double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;

  f->log_y = self->log_y;
  for (guint s = 0; s < self->series->len; s++)
    {
      Series *ser = g_ptr_array_index (self->series, s);

      switch (ser->kind)
        {
        case SERIES_HISTOGRAM:
          extend (&xlo, &xhi, ser->lo);
          extend (&xlo, &xhi, ser->hi);
          for (guint i = 0; i < ser->n; i++)
            if (!self->log_y || ser->ys[i] > 0)
              extend (&ylo, &yhi, transform_y (f, ser->ys[i]));
          if (!self->log_y)
            extend (&ylo, &yhi, 0.0);
          break;
        case SERIES_VLINES:
          for (guint i = 0; i < ser->n; i++)
            extend (&xlo, &xhi, ser->xs[i]);
          break;
        case SERIES_POINTS:
        case SERIES_LINE:
          for (guint i = 0; i < ser->n; i++)
            {
              extend (&xlo, &xhi, ser->xs[i]);
              extend (&ylo, &yhi, transform_y (f, ser->ys[i]));
            }
          break;
        case SERIES_BAND:
          /* a band follows the data; it does not stretch the axes (a wide band where the
           * data are sparse would flatten the points) */
          break;
        default:
          g_assert_not_reached ();
        }
    }
  if (self->have_x_range)
    {
      xlo = self->x_lo;
      xhi = self->x_hi;
    }
  if (!isfinite (xlo) || !isfinite (ylo))
    return FALSE;
  if (xhi - xlo <= 0)
    {
      double pad = fabs (xlo) > 0 ? fabs (xlo) * 0.1 : 1.0;
      xlo -= pad;
      xhi += pad;
    }
  if (yhi - ylo <= 0)
    {
      double pad = fabs (ylo) > 0 ? fabs (ylo) * 0.1 : 1.0;
      ylo -= self->log_y ? 0.5 : pad;
      yhi += self->log_y ? 0.5 : pad;
    }
  /* Points and lines get a margin so nothing sits on the frame; histograms start at 0. */
  if (!self->have_x_range)
    {
      gboolean points = FALSE;

      for (guint s = 0; s < self->series->len; s++)
        points |= ((Series *) g_ptr_array_index (self->series, s))->kind >= SERIES_POINTS;
      if (points)
        {
          double pad = 0.06 * (xhi - xlo);
          xlo -= pad;
          xhi += pad;
        }
    }
  if (self->log_y)
    {
      ylo = floor (ylo);
      yhi = ceil (yhi + 0.05);
    }
  else
    {
      double pad = 0.06 * (yhi - ylo);

      if (ylo != 0.0)
        ylo -= pad;
      yhi += pad;
    }
  f->x0 = xlo;
  f->x1 = xhi;
  f->y0 = ylo;
  f->y1 = yhi;
  return TRUE;
}

/* Tick spacing 1, 2 or 5 × 10^k giving about @target ticks over [lo, hi]. */
static double
nice_step (double lo,
           double hi,
           int    target)
{
  double raw = (hi - lo) / target;
  double mag = pow (10.0, floor (log10 (raw)));
  double norm = raw / mag;

  if (norm < 1.5)
    return mag;
  if (norm < 3.5)
    return 2 * mag;
  if (norm < 7.5)
    return 5 * mag;
  return 10 * mag;
}

static void
format_tick (char   *buf,
             gsize   size,
             double  v,
             double  step)
{
  if (fabs (v) < step * 1e-6)
    v = 0.0;
  if (fabs (v) >= 1e5 || (fabs (v) < 1e-3 && v != 0.0))
    g_snprintf (buf, size, "%.1e", v);
  else
    {
      int decimals = step >= 1 ? 0 : (int) ceil (-log10 (step) - 1e-9);

      g_snprintf (buf, size, "%.*f", MIN (decimals, 6), v);
    }
}

static void
set_rgb (cairo_t     *cr,
         BlPlotColor  color,
         double       alpha)
{
  cairo_set_source_rgba (cr, palette[color][0], palette[color][1], palette[color][2], alpha);
}

static void
draw_text (cairo_t    *cr,
           const char *text,
           double      x,
           double      y,
           double      align_x,
           double      align_y)
{
  cairo_text_extents_t ext;

  cairo_text_extents (cr, text, &ext);
  cairo_move_to (cr, x - ext.x_advance * align_x - ext.x_bearing * (1 - align_x) * 0,
                 y - ext.height * align_y - ext.y_bearing);
  cairo_show_text (cr, text);
}

static void
draw_series (BlPlot      *self,
             cairo_t     *cr,
             const Frame *f)
{
  double bottom = f->top + f->height;

  for (guint s = 0; s < self->series->len; s++)
    {
      Series *ser = g_ptr_array_index (self->series, s);

      switch (ser->kind)
        {
        case SERIES_HISTOGRAM:
          {
            double bw = (ser->hi - ser->lo) / ser->n;

            if (ser->filled)
              {
                for (guint i = 0; i < ser->n; i++)
                  {
                    double x0 = data_to_px_x (f, ser->lo + i * bw);
                    double x1 = data_to_px_x (f, ser->lo + (i + 1) * bw);
                    double y = data_to_px_y (f, ser->ys[i]);

                    if (ser->ys[i] <= 0 || y >= bottom)
                      continue;
                    cairo_rectangle (cr, x0, y, MAX (x1 - x0 - (x1 - x0 > 3 ? 0.5 : 0), 0.5), bottom - y);
                  }
                set_rgb (cr, ser->color, 0.55);
                cairo_fill (cr);
              }
            else
              {
                cairo_move_to (cr, data_to_px_x (f, ser->lo), bottom);
                for (guint i = 0; i < ser->n; i++)
                  {
                    double y = MIN (data_to_px_y (f, ser->ys[i]), bottom);

                    cairo_line_to (cr, data_to_px_x (f, ser->lo + i * bw), y);
                    cairo_line_to (cr, data_to_px_x (f, ser->lo + (i + 1) * bw), y);
                  }
                cairo_line_to (cr, data_to_px_x (f, ser->hi), bottom);
                set_rgb (cr, ser->color, 0.95);
                cairo_set_line_width (cr, 1.4);
                cairo_stroke (cr);
              }
          }
          break;
        case SERIES_VLINES:
          cairo_set_line_width (cr, 1.0);
          for (guint i = 0; i < ser->n; i++)
            {
              double x = round (data_to_px_x (f, ser->xs[i])) + 0.5;

              if (x < f->left || x > f->left + f->width)
                continue;
              cairo_move_to (cr, x, f->top);
              cairo_line_to (cr, x, bottom);
            }
          set_rgb (cr, ser->color, ser->n > 64 ? 0.18 : 0.40);
          cairo_stroke (cr);
          cairo_set_line_width (cr, 2.0);
          for (guint i = 0; i < ser->n; i++)
            {
              double x = round (data_to_px_x (f, ser->xs[i])) + 0.5;

              if (x < f->left || x > f->left + f->width)
                continue;
              cairo_move_to (cr, x, bottom);
              cairo_line_to (cr, x, bottom + 5);
            }
          set_rgb (cr, ser->color, 0.9);
          cairo_stroke (cr);
          break;
        case SERIES_LINE:
          for (guint i = 0; i < ser->n; i++)
            {
              double x = data_to_px_x (f, ser->xs[i]), y = data_to_px_y (f, ser->ys[i]);

              if (i == 0)
                cairo_move_to (cr, x, y);
              else
                cairo_line_to (cr, x, y);
            }
          set_rgb (cr, ser->color, 0.9);
          cairo_set_line_width (cr, 1.6);
          cairo_stroke (cr);
          break;
        case SERIES_BAND:
          for (guint i = 0; i < ser->n; i++)
            {
              double x = data_to_px_x (f, ser->xs[i]), y = data_to_px_y (f, ser->ys_hi[i]);

              if (i == 0)
                cairo_move_to (cr, x, y);
              else
                cairo_line_to (cr, x, y);
            }
          for (guint i = ser->n; i-- > 0;)
            cairo_line_to (cr, data_to_px_x (f, ser->xs[i]), data_to_px_y (f, ser->ys[i]));
          cairo_close_path (cr);
          set_rgb (cr, ser->color, 0.16);
          cairo_fill (cr);
          break;
        case SERIES_POINTS:
          for (guint i = 0; i < ser->n; i++)
            {
              double x = data_to_px_x (f, ser->xs[i]), y = data_to_px_y (f, ser->ys[i]);

              cairo_new_sub_path (cr);
              cairo_arc (cr, x, y, 4.0, 0, 2 * G_PI);
            }
          set_rgb (cr, ser->color, 0.85);
          cairo_fill (cr);
          if (ser->highlight >= 0 && (guint) ser->highlight < ser->n)
            {
              double x = data_to_px_x (f, ser->xs[ser->highlight]);
              double y = data_to_px_y (f, ser->ys[ser->highlight]);

              cairo_arc (cr, x, y, 8.0, 0, 2 * G_PI);
              set_rgb (cr, BL_PLOT_PURPLE, 1.0);
              cairo_set_line_width (cr, 2.5);
              cairo_stroke (cr);
            }
          break;
        default:
          g_assert_not_reached ();
        }
    }
}

static void
draw_legend (BlPlot      *self,
             cairo_t     *cr,
             const Frame *f,
             const GdkRGBA *fg)
{
  double y = f->top + 6;

  for (guint s = 0; s < self->series->len; s++)
    {
      Series *ser = g_ptr_array_index (self->series, s);
      cairo_text_extents_t ext;
      double x;

      if (ser->label == NULL)
        continue;
      cairo_text_extents (cr, ser->label, &ext);
      x = f->left + f->width - ext.x_advance - 6;
      cairo_rectangle (cr, x - 16, y + 2, 10, 8);
      set_rgb (cr, ser->color, ser->kind == SERIES_BAND ? 0.3
                               : ser->kind == SERIES_HISTOGRAM && ser->filled ? 0.55 : 0.95);
      cairo_fill (cr);
      cairo_set_source_rgba (cr, fg->red, fg->green, fg->blue, 0.85);
      draw_text (cr, ser->label, x, y, 0.0, 0.0);
      y += 15;
    }
}

/**
 * bl_plot_draw:
 * @self: a plot
 * @cr: where to draw
 * @width: the width of the area, in pixels (points for SVG)
 * @height: the height
 * @for_export: %TRUE to draw dark on a white background, %FALSE to use the widget's colours
 *
 * Draws the plot: axes with ticks, every series in the order added, the legend and the title.
 */
void
bl_plot_draw (BlPlot  *self,
              cairo_t *cr,
              int      width,
              int      height,
              gboolean for_export)
{
  GdkRGBA fg = { 0, 0, 0, 1 };
  Frame f = { 0 };
  double step;
  char buf[64];

  g_return_if_fail (BL_IS_PLOT (self));

  if (for_export)
    {
      cairo_set_source_rgb (cr, 1, 1, 1);
      cairo_paint (cr);
    }
  else
    gtk_style_context_get_color (gtk_widget_get_style_context (GTK_WIDGET (self)), &fg);

  cairo_select_font_face (cr, "Sans", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
  cairo_set_font_size (cr, 11.0);

  f.left = 58;
  f.top = self->title ? 24 : 8;
  f.width = width - f.left - 12;
  f.height = height - f.top - 40;

  if (self->title)
    {
      cairo_set_font_size (cr, 12.5);
      cairo_select_font_face (cr, "Sans", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_BOLD);
      cairo_set_source_rgba (cr, fg.red, fg.green, fg.blue, 0.9);
      draw_text (cr, self->title, f.left, 5, 0.0, 0.0);
      cairo_select_font_face (cr, "Sans", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
      cairo_set_font_size (cr, 11.0);
    }

  if (f.width < 20 || f.height < 20 || !compute_ranges (self, &f))
    {
      self->frame.valid = FALSE;
      if (self->placeholder)
        {
          cairo_set_source_rgba (cr, fg.red, fg.green, fg.blue, 0.55);
          draw_text (cr, self->placeholder, width / 2.0, height / 2.0, 0.5, 0.5);
        }
      return;
    }

  /* Grid and ticks */
  cairo_set_line_width (cr, 1.0);
  step = nice_step (f.x0, f.x1, MAX (2, (int) (f.width / 90)));
  for (double v = ceil (f.x0 / step) * step; v <= f.x1 + step * 1e-9; v += step)
    {
      double x = round (data_to_px_x (&f, v)) + 0.5;

      cairo_set_source_rgba (cr, fg.red, fg.green, fg.blue, 0.10);
      cairo_move_to (cr, x, f.top);
      cairo_line_to (cr, x, f.top + f.height);
      cairo_stroke (cr);
      format_tick (buf, sizeof buf, v, step);
      cairo_set_source_rgba (cr, fg.red, fg.green, fg.blue, 0.75);
      draw_text (cr, buf, x, f.top + f.height + 8, 0.5, 0.0);
    }
  if (f.log_y)
    {
      int every = MAX (1, (int) ceil ((f.y1 - f.y0) / MAX (2.0, f.height / 28)));

      for (int e = (int) f.y0; e <= (int) f.y1; e += every)
        {
          double y = round (f.top + f.height - (e - f.y0) / (f.y1 - f.y0) * f.height) + 0.5;

          cairo_set_source_rgba (cr, fg.red, fg.green, fg.blue, 0.10);
          cairo_move_to (cr, f.left, y);
          cairo_line_to (cr, f.left + f.width, y);
          cairo_stroke (cr);
          g_snprintf (buf, sizeof buf, "1e%d", e);
          cairo_set_source_rgba (cr, fg.red, fg.green, fg.blue, 0.75);
          draw_text (cr, buf, f.left - 6, y, 1.0, 0.5);
        }
    }
  else
    {
      step = nice_step (f.y0, f.y1, MAX (2, (int) (f.height / 36)));
      for (double v = ceil (f.y0 / step) * step; v <= f.y1 + step * 1e-9; v += step)
        {
          double y = round (data_to_px_y (&f, v)) + 0.5;

          cairo_set_source_rgba (cr, fg.red, fg.green, fg.blue, 0.10);
          cairo_move_to (cr, f.left, y);
          cairo_line_to (cr, f.left + f.width, y);
          cairo_stroke (cr);
          format_tick (buf, sizeof buf, v, step);
          cairo_set_source_rgba (cr, fg.red, fg.green, fg.blue, 0.75);
          draw_text (cr, buf, f.left - 6, y, 1.0, 0.5);
        }
    }

  cairo_save (cr);
  cairo_rectangle (cr, f.left, f.top - 1, f.width + 1, f.height + 8);
  cairo_clip (cr);
  draw_series (self, cr, &f);
  cairo_restore (cr);

  cairo_set_source_rgba (cr, fg.red, fg.green, fg.blue, 0.45);
  cairo_rectangle (cr, f.left + 0.5, f.top + 0.5, f.width, f.height);
  cairo_stroke (cr);

  draw_legend (self, cr, &f, &fg);

  cairo_set_source_rgba (cr, fg.red, fg.green, fg.blue, 0.8);
  if (self->x_label)
    draw_text (cr, self->x_label, f.left + f.width / 2, height - 14, 0.5, 0.0);
  if (self->y_label)
    {
      cairo_save (cr);
      cairo_translate (cr, 12, f.top + f.height / 2);
      cairo_rotate (cr, -G_PI / 2);
      draw_text (cr, self->y_label, 0, -2, 0.5, 0.5);
      cairo_restore (cr);
    }

  f.valid = TRUE;
  self->frame = f;
}

/**
 * bl_plot_save:
 * @self: a plot
 * @file: where to write; a name ending in ".svg" gives SVG, anything else PNG
 * @error: return location for a #GError
 *
 * Writes the plot at its on-screen size (at least 640×400), dark on white.
 *
 * Returns: %TRUE on success
 */
gboolean
bl_plot_save (BlPlot  *self,
              GFile   *file,
              GError **error)
{
  g_autofree char *path = NULL;
  int width, height;
  cairo_surface_t *surface;
  cairo_t *cr;
  cairo_status_t status;

  g_return_val_if_fail (BL_IS_PLOT (self), FALSE);
  g_return_val_if_fail (G_IS_FILE (file), FALSE);

  path = g_file_get_path (file);
  if (path == NULL)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED, "plots can only be saved to local files");
      return FALSE;
    }
  width = MAX (640, gtk_widget_get_width (GTK_WIDGET (self)));
  height = MAX (400, gtk_widget_get_height (GTK_WIDGET (self)));

  if (g_str_has_suffix (path, ".svg") || g_str_has_suffix (path, ".SVG"))
    surface = cairo_svg_surface_create (path, width, height);
  else
    surface = cairo_image_surface_create (CAIRO_FORMAT_ARGB32, width, height);

  cr = cairo_create (surface);
  bl_plot_draw (self, cr, width, height, TRUE);
  cairo_destroy (cr);

  if (cairo_surface_get_type (surface) == CAIRO_SURFACE_TYPE_IMAGE)
    status = cairo_surface_write_to_png (surface, path);
  else
    {
      cairo_surface_finish (surface);
      status = cairo_surface_status (surface);
    }
  cairo_surface_destroy (surface);

  if (status != CAIRO_STATUS_SUCCESS)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "%s: %s", path, cairo_status_to_string (status));
      return FALSE;
    }
  return TRUE;
}

/**
 * bl_plot_get_n_series:
 * @self: a plot
 *
 * Returns: the series added since the last bl_plot_clear(); the next one added gets this
 *   index in #BlPlot::point-activated
 */
guint
bl_plot_get_n_series (BlPlot *self)
{
  g_return_val_if_fail (BL_IS_PLOT (self), 0);

  return self->series->len;
}

/**
 * bl_plot_get_n_points:
 * @self: a plot
 *
 * Returns: the number of points over all points series
 */
guint
bl_plot_get_n_points (BlPlot *self)
{
  guint n = 0;

  g_return_val_if_fail (BL_IS_PLOT (self), 0);

  for (guint s = 0; s < self->series->len; s++)
    {
      Series *ser = g_ptr_array_index (self->series, s);

      if (ser->kind == SERIES_POINTS)
        n += ser->n;
    }
  return n;
}
