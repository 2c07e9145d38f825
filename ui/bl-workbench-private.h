/* bl-workbench-private.h: what bl-workbench.c and bl-workbench-actions.c share
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <adwaita.h>

#include "bl-distribution-view.h"
#include "bl-estimator.h"
#include "bl-sensitivity.h"
#include "bl-format-picker.h"
#include "bl-layer-browser.h"
#include "bl-measurement.h"
#include "bl-metrics-bar.h"
#include "bl-pareto-view.h"
#include "bl-scaling-view.h"
#include "bl-plan-history.h"
#include "bl-plot.h"
#include "bl-workbench.h"

G_BEGIN_DECLS

struct _BlWorkbench
{
  AdwApplicationWindow parent_instance;

  /* Template widgets */
  AdwWindowTitle *window_title;
  AdwToastOverlay *toast_overlay;
  AdwToast *last_toast;      /* weak: the toast on screen, if any */
  GtkStack *main_stack;
  AdwSplitButton *models_button;
  GtkListBox *recent_list;
  GtkWidget *recent_group;
  GtkListBox *hf_list;
  GtkWidget *hf_group;
  GtkLabel *welcome_demo_label;
  GtkLabel *load_label;
  GtkProgressBar *load_progress;
  BlLayerBrowser *browser;
  BlFormatPicker *picker;
  AdwViewStack *view_stack;
  BlDistributionView *distribution;
  BlParetoView *pareto_view;
  BlScalingView *scaling_view;
  BlMetricsBar *metrics_bar;

  /* Settings and the store */
  GSettings *settings;
  BlStore *store;
  char *default_model;

  /* The model */
  char *model_path;
  BlModel *model;
  GCancellable *load_cancellable;
  guint pulse_source;
  GListStore *groups;        /* BlLayerItem groups */
  GPtrArray *items;          /* BlLayerItem layers, model order */
  GHashTable *items_by_name; /* name → BlLayerItem, borrowed */
  double base_bits;          /* Σ stored bits over all layers */

  /* The plan */
  BlPlanHistory *history;

  /* Evaluation text, measurements, calibration */
  GCancellable *text_cancellable;
  GArray *ids;
  char *text_name;
  char *text_sha256;
  gboolean background_started;
  BlMeasurement *measurement;
  BlMeasurement *baseline_measurement;
  double baseline_ppl;
  GCancellable *calib_cancellable;
  BlCalib *calib;
  GCancellable *qsnr_cancellable;
  GCancellable *hf_cancellable;
  GPtrArray *hf_models;      /* BlHfModel */

  /* Sensitivity and the instant estimate */
  GCancellable *sensitivity_cancellable;
  BlSensitivity *sensitivity;
  BlEstimator *estimator;    /* used by one worker at a time, under estimator_lock */
  GMutex estimator_lock;
  GCancellable *estimate_cancellable;

  /* Pareto */
  GPtrArray *pareto_points;  /* BlParetoPoint: from the store, or this session without one */
  GCancellable *pareto_cancellable;
};

void     bl_workbench_init_actions       (BlWorkbench       *self);
void     bl_workbench_update_actions     (BlWorkbench       *self);
void     bl_workbench_restore_plan       (BlWorkbench       *self,
                                       BlPlanSnapshot *plan,
                                       gboolean        record);
void     bl_workbench_toast              (BlWorkbench       *self,
                                       const char     *format,
                                       ...) G_GNUC_PRINTF (2, 3);
void     bl_workbench_rebuild_models_menu (BlWorkbench      *self);
void     bl_workbench_measure         (BlWorkbench    *self);
guint    bl_workbench_apply              (BlWorkbench       *self,
                                       const char     *scope);

G_END_DECLS
