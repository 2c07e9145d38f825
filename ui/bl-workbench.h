/* bl-workbench.h: the workbench window
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <adwaita.h>

#include "bitlens.h"
#include "bl-measurement.h"
#include "bl-plan-snapshot.h"

G_BEGIN_DECLS

#define BL_TYPE_WORKBENCH (bl_workbench_get_type ())
G_DECLARE_FINAL_TYPE (BlWorkbench, bl_workbench, BL, WORKBENCH, AdwApplicationWindow)

BlWorkbench       *bl_workbench_new          (GtkApplication *application,
                                        GSettings      *settings,
                                        const char     *default_model);
void            bl_workbench_open         (BlWorkbench       *self,
                                        const char     *path);
BlModel        *bl_workbench_get_model    (BlWorkbench       *self);
BlPlanSnapshot *bl_workbench_get_plan     (BlWorkbench       *self);
BlMeasurement  *bl_workbench_get_measurement (BlWorkbench    *self);
GtkWidget      *bl_workbench_get_part     (BlWorkbench       *self,
                                        const char     *name);
gboolean        bl_workbench_export_plan  (BlWorkbench       *self,
                                        GFile          *file,
                                        GError        **error);
void            bl_workbench_export_async (BlWorkbench         *self,
                                           const char          *target,
                                           const char          *path,
                                           GCancellable        *cancellable,
                                           GAsyncReadyCallback  callback,
                                           gpointer             user_data);
gboolean        bl_workbench_export_finish (BlWorkbench        *self,
                                            GAsyncResult       *result,
                                            GStrv              *out_notes,
                                            GError            **error);
void            bl_workbench_open_sweep   (BlWorkbench       *self,
                                           const char        *path);

G_END_DECLS
