/* bl-application.h: the Bitlens workbench application
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <adwaita.h>

G_BEGIN_DECLS

#define BL_APPLICATION_ID "io.github.bitlens.Bitlens"

#define BL_TYPE_APPLICATION (bl_application_get_type ())
G_DECLARE_FINAL_TYPE (BlApplication, bl_application, BL, APPLICATION, AdwApplication)

BlApplication *bl_application_new          (const char       *default_model,
                                            GApplicationFlags flags);
GSettings     *bl_application_get_settings (BlApplication    *self);
GtkWindow     *bl_application_get_workbench (BlApplication   *self);
void           bl_application_hold_task    (GTask            *task);
guint          bl_application_get_n_tasks  (BlApplication    *self);

G_END_DECLS
