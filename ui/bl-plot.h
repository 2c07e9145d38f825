/* bl-plot.h: a 2-D plot of data series, drawn with Cairo in snapshot()
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <gtk/gtk.h>

G_BEGIN_DECLS

/**
 * BlPlotColor:
 * @BL_PLOT_BLUE: the first series
 * @BL_PLOT_ORANGE: the second series, overlays
 * @BL_PLOT_RED: highlights, grid levels
 * @BL_PLOT_GREEN: fits
 * @BL_PLOT_PURPLE: the highlighted point
 * @BL_PLOT_GRAY: context
 *
 * The palette (GNOME HIG colours), so a series keeps its colour in PNG and SVG exports.
 */
typedef enum
{
  BL_PLOT_BLUE,
  BL_PLOT_ORANGE,
  BL_PLOT_RED,
  BL_PLOT_GREEN,
  BL_PLOT_PURPLE,
  BL_PLOT_GRAY,
} BlPlotColor;

#define BL_TYPE_PLOT (bl_plot_get_type ())
G_DECLARE_FINAL_TYPE (BlPlot, bl_plot, BL, PLOT, GtkWidget)

GtkWidget *bl_plot_new            (void);
void       bl_plot_clear          (BlPlot        *self);
void       bl_plot_set_title      (BlPlot        *self,
                                   const char    *title);
const char *bl_plot_get_title     (BlPlot        *self);
void       bl_plot_set_axis_labels (BlPlot       *self,
                                   const char    *x_label,
                                   const char    *y_label);
void       bl_plot_set_placeholder (BlPlot       *self,
                                   const char    *text);
void       bl_plot_set_log_y      (BlPlot        *self,
                                   gboolean       log_y);
gboolean   bl_plot_get_log_y      (BlPlot        *self);
void       bl_plot_set_x_range    (BlPlot        *self,
                                   double         lo,
                                   double         hi);
void       bl_plot_add_histogram  (BlPlot        *self,
                                   const char    *label,
                                   double         lo,
                                   double         hi,
                                   const double  *counts,
                                   guint          n_bins,
                                   BlPlotColor    color,
                                   gboolean       filled);
void       bl_plot_add_vlines     (BlPlot        *self,
                                   const char    *label,
                                   const double  *xs,
                                   guint          n,
                                   BlPlotColor    color);
void       bl_plot_add_points     (BlPlot        *self,
                                   const char    *label,
                                   const double  *xs,
                                   const double  *ys,
                                   guint          n,
                                   BlPlotColor    color,
                                   int            highlight);
void       bl_plot_add_line       (BlPlot        *self,
                                   const char    *label,
                                   const double  *xs,
                                   const double  *ys,
                                   guint          n,
                                   BlPlotColor    color);
void       bl_plot_add_band       (BlPlot        *self,
                                   const char    *label,
                                   const double  *xs,
                                   const double  *lo,
                                   const double  *hi,
                                   guint          n,
                                   BlPlotColor    color);
guint      bl_plot_get_n_series   (BlPlot        *self);
guint      bl_plot_get_n_points   (BlPlot        *self);
void       bl_plot_draw           (BlPlot        *self,
                                   cairo_t       *cr,
                                   int            width,
                                   int            height,
                                   gboolean       for_export);
gboolean   bl_plot_save           (BlPlot        *self,
                                   GFile         *file,
                                   GError       **error);

G_END_DECLS
