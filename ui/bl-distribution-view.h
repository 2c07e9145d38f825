/* bl-distribution-view.h: the weight and activation distributions of one layer
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <gtk/gtk.h>

#include "bl-calib.h"
#include "bl-layer-analysis.h"
#include "bl-layer-item.h"
#include "bl-plot.h"

G_BEGIN_DECLS

#define BL_TYPE_DISTRIBUTION_VIEW (bl_distribution_view_get_type ())
G_DECLARE_FINAL_TYPE (BlDistributionView, bl_distribution_view, BL, DISTRIBUTION_VIEW, GtkWidget)

GtkWidget             *bl_distribution_view_new          (void);
void                   bl_distribution_view_set_layer    (BlDistributionView *self,
                                                          BlLayerItem        *item);
BlLayerItem           *bl_distribution_view_get_layer    (BlDistributionView *self);
void                   bl_distribution_view_set_spec     (BlDistributionView *self,
                                                          const char         *spec);
void                   bl_distribution_view_set_calib    (BlDistributionView *self,
                                                          BlCalib            *calib);
void                   bl_distribution_view_set_calib_status (BlDistributionView *self,
                                                          const char         *text);
const BlLayerAnalysis *bl_distribution_view_get_analysis (BlDistributionView *self);
BlPlot                *bl_distribution_view_get_plot     (BlDistributionView *self,
                                                          const char         *id);

G_END_DECLS
