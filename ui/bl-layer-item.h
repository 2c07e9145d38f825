/* bl-layer-item.h: one row of the layer browser (a layer, or the block that groups layers)
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <gio/gio.h>

#include "bitlens.h"
#include "bl-metrics-error.h"

G_BEGIN_DECLS

#define BL_TYPE_LAYER_ITEM (bl_layer_item_get_type ())
G_DECLARE_FINAL_TYPE (BlLayerItem, bl_layer_item, BL, LAYER_ITEM, GObject)

BlLayerItem *bl_layer_item_new_layer       (BlLayer      *layer);
BlLayerItem *bl_layer_item_new_group       (const char   *title,
                                            int           block);
void         bl_layer_item_add_child       (BlLayerItem  *group,
                                            BlLayerItem  *child);

gboolean     bl_layer_item_is_group        (BlLayerItem  *self);
BlLayer     *bl_layer_item_get_layer       (BlLayerItem  *self);
GListModel  *bl_layer_item_get_children    (BlLayerItem  *self);
const char  *bl_layer_item_get_name        (BlLayerItem  *self);
const char  *bl_layer_item_get_title       (BlLayerItem  *self);
int          bl_layer_item_get_block       (BlLayerItem  *self);
gint64       bl_layer_item_get_n_params    (BlLayerItem  *self);
gboolean     bl_layer_item_get_quantizable (BlLayerItem  *self);
const char  *bl_layer_item_get_type_key    (BlLayerItem  *self);

const char  *bl_layer_item_get_weight_spec (BlLayerItem  *self);
const char  *bl_layer_item_get_act_spec    (BlLayerItem  *self);
const char  *bl_layer_item_get_algorithm   (BlLayerItem  *self);
gboolean     bl_layer_item_set_plan        (BlLayerItem  *self,
                                            const char   *weight_spec,
                                            const char   *act_spec,
                                            const char   *algorithm);

double       bl_layer_item_get_bits        (BlLayerItem  *self);
double       bl_layer_item_get_bpw         (BlLayerItem  *self);
double       bl_layer_item_get_qsnr        (BlLayerItem  *self);
void         bl_layer_item_set_error_stats (BlLayerItem  *self,
                                            const BlErrorStats *stats);
double       bl_layer_item_get_sensitivity (BlLayerItem  *self);
void         bl_layer_item_set_sensitivity (BlLayerItem  *self,
                                            double        sensitivity);

G_END_DECLS
