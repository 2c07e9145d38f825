/* bl-preferences-window.h: the workbench's preferences
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <adwaita.h>

G_BEGIN_DECLS

#define BL_TYPE_PREFERENCES_WINDOW (bl_preferences_window_get_type ())
G_DECLARE_FINAL_TYPE (BlPreferencesWindow, bl_preferences_window, BL, PREFERENCES_WINDOW, AdwPreferencesWindow)

GtkWidget  *bl_preferences_window_new      (GtkWindow           *parent,
                                            GSettings           *settings);
AdwComboRow *bl_preferences_window_get_backend_row (BlPreferencesWindow *self);

G_END_DECLS
