/* bl-layer-browser.h: the layers of a model, grouped by block, as a sortable, filterable table
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <gtk/gtk.h>

#include "bl-layer-item.h"

G_BEGIN_DECLS

#define BL_TYPE_LAYER_BROWSER (bl_layer_browser_get_type ())
G_DECLARE_FINAL_TYPE (BlLayerBrowser, bl_layer_browser, BL, LAYER_BROWSER, GtkWidget)

GtkWidget   *bl_layer_browser_new                 (void);
void         bl_layer_browser_set_groups          (BlLayerBrowser *self,
                                                   GListModel     *groups);
BlLayerItem *bl_layer_browser_get_focus           (BlLayerBrowser *self);
GPtrArray   *bl_layer_browser_get_selected_layers (BlLayerBrowser *self);
gboolean     bl_layer_browser_select_layer        (BlLayerBrowser *self,
                                                   const char     *name);
void         bl_layer_browser_set_filter_text     (BlLayerBrowser *self,
                                                   const char     *text);
void         bl_layer_browser_focus_search        (BlLayerBrowser *self);
void         bl_layer_browser_set_note            (BlLayerBrowser *self,
                                                   const char     *note);
void         bl_layer_browser_set_sensitivity_scale (BlLayerBrowser *self,
                                                   double          max_sensitivity);

G_END_DECLS
