/* bl-plan-history.h: undo and redo of plan changes
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <glib-object.h>

#include "bl-plan-snapshot.h"

G_BEGIN_DECLS

#define BL_TYPE_PLAN_HISTORY (bl_plan_history_get_type ())
G_DECLARE_FINAL_TYPE (BlPlanHistory, bl_plan_history, BL, PLAN_HISTORY, GObject)

BlPlanHistory  *bl_plan_history_new         (void);
void            bl_plan_history_reset       (BlPlanHistory  *self,
                                             BlPlanSnapshot *initial);
gboolean        bl_plan_history_push        (BlPlanHistory  *self,
                                             BlPlanSnapshot *snapshot);
BlPlanSnapshot *bl_plan_history_get_current (BlPlanHistory  *self);
BlPlanSnapshot *bl_plan_history_undo        (BlPlanHistory  *self);
BlPlanSnapshot *bl_plan_history_redo        (BlPlanHistory  *self);
gboolean        bl_plan_history_can_undo    (BlPlanHistory  *self);
gboolean        bl_plan_history_can_redo    (BlPlanHistory  *self);

G_END_DECLS
