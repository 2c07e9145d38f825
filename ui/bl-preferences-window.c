/* bl-preferences-window.c: the workbench's preferences
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "bl-preferences-window.h"

/**
 * SECTION:bl-preferences-window
 * @title: BlPreferencesWindow
 *
 * The application's Preferences (app.preferences, Ctrl+,): the backend measurements run on
 * (the "backend" setting, the workbench's side of `bitlens-cli --backend`) and the window
 * length and count of the live measurement. Each row is bound to its GSettings key, so a
 * change is written at once and the workbench, which watches the keys, measures again.
 */

struct _BlPreferencesWindow
{
  AdwPreferencesWindow parent_instance;

  /* Template widgets */
  AdwComboRow *backend_row;
  GtkAdjustment *ctx_adjustment;
  GtkAdjustment *windows_adjustment;

  /* State */
  GSettings *settings;
};

G_DEFINE_FINAL_TYPE (BlPreferencesWindow, bl_preferences_window, ADW_TYPE_PREFERENCES_WINDOW)

/* The backend row's items, in order, as the "backend" key spells them. */
static const char *const backends[] = { "auto", "cpu", "cuda" };

static gboolean
backend_to_row (GValue   *value,
                GVariant *variant,
                gpointer  user_data)
{
  const char *nick = g_variant_get_string (variant, NULL);

  for (guint i = 0; i < G_N_ELEMENTS (backends); i++)
    if (g_str_equal (nick, backends[i]))
      {
        g_value_set_uint (value, i);
        return TRUE;
      }
  return FALSE;
}

static GVariant *
row_to_backend (const GValue       *value,
                const GVariantType *type,
                gpointer            user_data)
{
  guint i = g_value_get_uint (value);

  return i < G_N_ELEMENTS (backends) ? g_variant_new_string (backends[i]) : NULL;
}

static void
bl_preferences_window_dispose (GObject *object)
{
  BlPreferencesWindow *self = BL_PREFERENCES_WINDOW (object);

  g_clear_object (&self->settings);
  gtk_widget_dispose_template (GTK_WIDGET (self), BL_TYPE_PREFERENCES_WINDOW);

  G_OBJECT_CLASS (bl_preferences_window_parent_class)->dispose (object);
}

static void
bl_preferences_window_class_init (BlPreferencesWindowClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->dispose = bl_preferences_window_dispose;

  gtk_widget_class_set_template_from_resource (widget_class, "/io/github/bitlens/Bitlens/bl-preferences-window.ui");
  gtk_widget_class_bind_template_child (widget_class, BlPreferencesWindow, backend_row);
  gtk_widget_class_bind_template_child (widget_class, BlPreferencesWindow, ctx_adjustment);
  gtk_widget_class_bind_template_child (widget_class, BlPreferencesWindow, windows_adjustment);
}

static void
bl_preferences_window_init (BlPreferencesWindow *self)
{
  gtk_widget_init_template (GTK_WIDGET (self));
}

/**
 * bl_preferences_window_new:
 * @parent: (nullable): the window it belongs to
 * @settings: the application's settings (io.github.bitlens.Bitlens)
 *
 * Returns: (transfer floating): the preferences window, its rows bound to @settings
 */
GtkWidget *
bl_preferences_window_new (GtkWindow *parent,
                           GSettings *settings)
{
  BlPreferencesWindow *self;

  g_return_val_if_fail (G_IS_SETTINGS (settings), NULL);

  self = g_object_new (BL_TYPE_PREFERENCES_WINDOW, "transient-for", parent, NULL);
  self->settings = g_object_ref (settings);
  g_settings_bind_with_mapping (settings, "backend", self->backend_row, "selected", G_SETTINGS_BIND_DEFAULT,
                                backend_to_row, row_to_backend, NULL, NULL);
  g_settings_bind (settings, "eval-ctx", self->ctx_adjustment, "value", G_SETTINGS_BIND_DEFAULT);
  g_settings_bind (settings, "eval-windows", self->windows_adjustment, "value", G_SETTINGS_BIND_DEFAULT);
  return GTK_WIDGET (self);
}

/**
 * bl_preferences_window_get_backend_row:
 * @self: a preferences window
 *
 * Returns: (transfer none): the backend row: Automatic, CPU, CUDA
 */
AdwComboRow *
bl_preferences_window_get_backend_row (BlPreferencesWindow *self)
{
  g_return_val_if_fail (BL_IS_PREFERENCES_WINDOW (self), NULL);

  return self->backend_row;
}
