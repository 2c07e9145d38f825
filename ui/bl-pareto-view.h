/* bl-pareto-view.h: measured plans as quality against bits per weight, with a scaling fit
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <gtk/gtk.h>

#include "bl-plan-snapshot.h"
#include "bl-plot.h"
#include "bl-scaling.h"

G_BEGIN_DECLS

/**
 * BlParetoPoint:
 * @plan: the plan that was measured
 * @bpw: its bits per weight over the linear layers, scales included
 * @ppl: the measured perplexity (NaN: not measured)
 * @kl: the mean KL against the full-precision model, nats per token (NaN: not measured)
 *
 * One measured plan, from the store, this session or a sweep file.
 */
typedef struct
{
  BlPlanSnapshot *plan;
  double bpw;
  double ppl;
  double kl;
} BlParetoPoint;

BlParetoPoint *bl_pareto_point_new  (BlPlanSnapshot *plan,
                                     double          bpw,
                                     double          ppl,
                                     double          kl);
void           bl_pareto_point_free (BlParetoPoint  *point);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BlParetoPoint, bl_pareto_point_free)

/**
 * BlParetoMetric:
 * @BL_PARETO_PPL: perplexity
 * @BL_PARETO_KL: KL divergence from the full-precision model
 *
 * The quality on the y axis.
 */
typedef enum
{
  BL_PARETO_PPL,
  BL_PARETO_KL,
} BlParetoMetric;

#define BL_TYPE_PARETO_VIEW (bl_pareto_view_get_type ())
G_DECLARE_FINAL_TYPE (BlParetoView, bl_pareto_view, BL, PARETO_VIEW, GtkWidget)

void            bl_pareto_view_set_runs      (BlParetoView   *self,
                                              GPtrArray      *points);
void            bl_pareto_view_set_sweep     (BlParetoView   *self,
                                              const char     *name,
                                              GPtrArray      *points);
void            bl_pareto_view_set_current   (BlParetoView   *self,
                                              BlPlanSnapshot *plan);
void            bl_pareto_view_set_n_params  (BlParetoView   *self,
                                              gint64          n_params);
void            bl_pareto_view_set_metric    (BlParetoView   *self,
                                              BlParetoMetric  metric);
BlParetoMetric  bl_pareto_view_get_metric    (BlParetoView   *self);
BlPlot         *bl_pareto_view_get_plot      (BlParetoView   *self);
const BlFitResult *bl_pareto_view_get_fit    (BlParetoView   *self,
                                              BlScalingModel *out_model);
const char     *bl_pareto_view_get_fit_text  (BlParetoView   *self);
gboolean        bl_pareto_view_lookup        (BlParetoView   *self,
                                              BlPlanSnapshot *plan,
                                              guint          *out_series,
                                              guint          *out_index);

G_END_DECLS
