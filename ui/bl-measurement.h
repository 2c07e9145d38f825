/* bl-measurement.h: the live perplexity measurement of the plan being edited
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <gio/gio.h>

#include "bitlens.h"
#include "bl-kl.h"
#include "bl-plan-snapshot.h"
#include "bl-quant-plan.h"

G_BEGIN_DECLS

/**
 * BlMeasurementState:
 * @BL_MEASUREMENT_IDLE: nothing is measured (no text yet, or cancelled)
 * @BL_MEASUREMENT_PREPARING: the weights are being quantized for the plan
 * @BL_MEASUREMENT_RUNNING: windows are being evaluated; the estimate refines
 * @BL_MEASUREMENT_FINISHED: every window is done
 * @BL_MEASUREMENT_FAILED: the plan could not be measured; see #BlMeasurement:message
 */
typedef enum
{
  BL_MEASUREMENT_IDLE,
  BL_MEASUREMENT_PREPARING,
  BL_MEASUREMENT_RUNNING,
  BL_MEASUREMENT_FINISHED,
  BL_MEASUREMENT_FAILED,
} BlMeasurementState;

#define BL_TYPE_MEASUREMENT_STATE (bl_measurement_state_get_type ())
GType bl_measurement_state_get_type (void);

#define BL_TYPE_MEASUREMENT (bl_measurement_get_type ())
G_DECLARE_FINAL_TYPE (BlMeasurement, bl_measurement, BL, MEASUREMENT, GObject)

BlMeasurement      *bl_measurement_new               (BlModel        *model,
                                                      int             n_threads);
void                bl_measurement_set_text          (BlMeasurement  *self,
                                                      GArray         *ids,
                                                      const char     *name,
                                                      const char     *path,
                                                      const char     *sha256,
                                                      const char     *kind);
gboolean            bl_measurement_has_text          (BlMeasurement  *self);
void                bl_measurement_set_options       (BlMeasurement  *self,
                                                      int             ctx,
                                                      int             max_windows);
void                bl_measurement_set_store         (BlMeasurement  *self,
                                                      BlStore        *store);
void                bl_measurement_set_backend       (BlMeasurement  *self,
                                                      const char     *preference);
void                bl_measurement_start             (BlMeasurement  *self,
                                                      BlPlanSnapshot *snapshot,
                                                      BlQuantPlan    *plan);
void                bl_measurement_cancel            (BlMeasurement  *self);

BlMeasurementState  bl_measurement_get_state         (BlMeasurement  *self);
BlPlanSnapshot     *bl_measurement_get_plan          (BlMeasurement  *self);
guint               bl_measurement_get_n_done        (BlMeasurement  *self);
guint               bl_measurement_get_n_windows     (BlMeasurement  *self);
double              bl_measurement_get_ppl           (BlMeasurement  *self);
gboolean            bl_measurement_get_ppl_ci        (BlMeasurement  *self,
                                                      double         *low,
                                                      double         *high);
double              bl_measurement_get_tokens_per_second (BlMeasurement *self);
gboolean            bl_measurement_get_kl            (BlMeasurement  *self,
                                                      BlKlSummary    *out);
const char         *bl_measurement_get_message       (BlMeasurement  *self);
const char         *bl_measurement_get_stage         (BlMeasurement  *self);
const char         *bl_measurement_get_text_name     (BlMeasurement  *self);
int                 bl_measurement_get_ctx           (BlMeasurement  *self);
const char         *bl_measurement_get_backend_name  (BlMeasurement  *self);
const char         *bl_measurement_get_backend_description (BlMeasurement *self);
const char         *bl_measurement_get_backend_message (BlMeasurement *self);

G_END_DECLS
