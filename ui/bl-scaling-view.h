/* bl-scaling-view.h: the FP-training law calculator and the per-layer INT/FP crossover map
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <gtk/gtk.h>

#include "bl-model.h"

G_BEGIN_DECLS

#define BL_TYPE_SCALING_VIEW (bl_scaling_view_get_type ())
G_DECLARE_FINAL_TYPE (BlScalingView, bl_scaling_view, BL, SCALING_VIEW, GtkWidget)

void        bl_scaling_view_set_model          (BlScalingView *self,
                                                BlModel       *model);
void        bl_scaling_view_set_law_inputs     (BlScalingView *self,
                                                double         n_params,
                                                double         tokens,
                                                int            exponent_bits,
                                                int            mantissa_bits,
                                                int            block_size);
double      bl_scaling_view_get_loss           (BlScalingView *self);
double      bl_scaling_view_get_critical_data  (BlScalingView *self);
const char *bl_scaling_view_get_layout_text    (BlScalingView *self);
guint       bl_scaling_view_get_n_crossover    (BlScalingView *self);
const char *bl_scaling_view_get_crossover_text (BlScalingView *self);

G_END_DECLS
