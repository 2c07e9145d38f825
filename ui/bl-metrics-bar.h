/* bl-metrics-bar.h: model size, estimated and measured quality of the current plan
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <gtk/gtk.h>

#include "bl-measurement.h"

G_BEGIN_DECLS

#define BL_TYPE_METRICS_BAR (bl_metrics_bar_get_type ())
G_DECLARE_FINAL_TYPE (BlMetricsBar, bl_metrics_bar, BL, METRICS_BAR, GtkWidget)

GtkWidget  *bl_metrics_bar_new             (void);
void        bl_metrics_bar_set_measurement (BlMetricsBar  *self,
                                            BlMeasurement *measurement);
void        bl_metrics_bar_set_baseline    (BlMetricsBar  *self,
                                            double         ppl);
void        bl_metrics_bar_set_size        (BlMetricsBar  *self,
                                            double         bpw,
                                            double         megabytes,
                                            double         base_megabytes);
void        bl_metrics_bar_set_estimate    (BlMetricsBar  *self,
                                            double         delta_ppl);
const char *bl_metrics_bar_get_ppl_text    (BlMetricsBar  *self);
const char *bl_metrics_bar_get_estimate_text (BlMetricsBar *self);
const char *bl_metrics_bar_get_kl_text     (BlMetricsBar  *self);
GtkWidget  *bl_metrics_bar_get_backend_label (BlMetricsBar *self);

G_END_DECLS
