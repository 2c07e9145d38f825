/* bl-plan-snapshot.h: what the plan says about every layer at one moment
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <glib-object.h>

#include "bl-model.h"
#include "bl-quant-plan.h"

G_BEGIN_DECLS

/**
 * BlPlanEntry:
 * @layer: the layer (weight tensor) name
 * @weight_spec: (nullable): the weight spec string, %NULL for an unquantized weight
 * @act_spec: (nullable): the activation spec string, %NULL for a full-precision input
 * @algorithm: the weight algorithm, e.g. "rtn"
 *
 * One layer's part of the plan. Owned by its snapshot.
 */
typedef struct
{
  char *layer;
  char *weight_spec;
  char *act_spec;
  char *algorithm;
} BlPlanEntry;

typedef struct _BlPlanSnapshot BlPlanSnapshot;

#define BL_TYPE_PLAN_SNAPSHOT (bl_plan_snapshot_get_type ())
GType              bl_plan_snapshot_get_type    (void) G_GNUC_CONST;
BlPlanSnapshot    *bl_plan_snapshot_new         (void);
BlPlanSnapshot    *bl_plan_snapshot_ref         (BlPlanSnapshot    *self);
void               bl_plan_snapshot_unref       (BlPlanSnapshot    *self);
void               bl_plan_snapshot_add         (BlPlanSnapshot    *self,
                                                 const char        *layer,
                                                 const char        *weight_spec,
                                                 const char        *act_spec,
                                                 const char        *algorithm);
const BlPlanEntry *bl_plan_snapshot_lookup      (BlPlanSnapshot    *self,
                                                 const char        *layer);
guint              bl_plan_snapshot_get_n_entries (BlPlanSnapshot  *self);
const BlPlanEntry *bl_plan_snapshot_get_entry   (BlPlanSnapshot    *self,
                                                 guint              index);
gboolean           bl_plan_snapshot_is_empty    (BlPlanSnapshot    *self);
gboolean           bl_plan_snapshot_equal       (BlPlanSnapshot    *a,
                                                 BlPlanSnapshot    *b);
char              *bl_plan_snapshot_describe    (BlPlanSnapshot    *self);
BlQuantPlan       *bl_plan_snapshot_to_quant_plan (BlPlanSnapshot  *self,
                                                 BlModel           *model,
                                                 GError           **error);
BlPlanSnapshot    *bl_plan_snapshot_new_from_quant_plan (BlQuantPlan *plan,
                                                 BlModel           *model,
                                                 GError           **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (BlPlanSnapshot, bl_plan_snapshot_unref)

G_END_DECLS
