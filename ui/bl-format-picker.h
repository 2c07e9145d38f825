/* bl-format-picker.h: choose a weight format, an algorithm and an activation format
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <gtk/gtk.h>

G_BEGIN_DECLS

#define BL_TYPE_FORMAT_PICKER (bl_format_picker_get_type ())
G_DECLARE_FINAL_TYPE (BlFormatPicker, bl_format_picker, BL, FORMAT_PICKER, GtkWidget)

GtkWidget  *bl_format_picker_new           (void);
const char *bl_format_picker_get_spec      (BlFormatPicker *self);
const char *bl_format_picker_get_act_spec  (BlFormatPicker *self);
const char *bl_format_picker_get_algorithm (BlFormatPicker *self);
gboolean    bl_format_picker_get_valid     (BlFormatPicker *self);
gboolean    bl_format_picker_set_spec      (BlFormatPicker *self,
                                            const char     *spec);
void        bl_format_picker_set_act_spec  (BlFormatPicker *self,
                                            const char     *act_spec);
void        bl_format_picker_set_algorithm (BlFormatPicker *self,
                                            const char     *algorithm);
void        bl_format_picker_set_summary   (BlFormatPicker *self,
                                            const char     *markup);
void        bl_format_picker_set_target    (BlFormatPicker *self,
                                            guint           n_selected,
                                            const char     *layer_label,
                                            const char     *type_label);

G_END_DECLS
