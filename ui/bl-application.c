/* bl-application.c: the Bitlens workbench application
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "bl-application.h"

#include "bitlens.h"
#include "bl-preferences-window.h"
#include "bl-resources.h"
#include "bl-workbench.h"

/**
 * SECTION:bl-application
 * @title: BlApplication
 *
 * Starts the workbench: one window, opened on the default model (the bundled demo) or on
 * the model folders given on the command line. It owns the settings, the keyboard
 * shortcuts and the about window.
 */

struct _BlApplication
{
  AdwApplication parent_instance;

  char *default_model;
  GSettings *settings;
  guint n_tasks;
};

G_DEFINE_FINAL_TYPE (BlApplication, bl_application, ADW_TYPE_APPLICATION)

enum {
  PROP_0,
  PROP_DEFAULT_MODEL,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

/* The schema comes from the build tree when running uninstalled, else from the system. */
static GSettings *
new_settings (void)
{
  GSettingsSchemaSource *system = g_settings_schema_source_get_default ();
  g_autoptr(GSettingsSchemaSource) local = NULL;
  g_autoptr(GSettingsSchema) schema = NULL;

  if (g_file_test (BITLENS_UI_SCHEMA_DIR "/gschemas.compiled", G_FILE_TEST_EXISTS))
    local = g_settings_schema_source_new_from_directory (BITLENS_UI_SCHEMA_DIR, system, FALSE, NULL);
  if (local != NULL)
    schema = g_settings_schema_source_lookup (local, BL_APPLICATION_ID, TRUE);
  if (schema == NULL && system != NULL)
    schema = g_settings_schema_source_lookup (system, BL_APPLICATION_ID, TRUE);
  if (schema == NULL)
    g_error ("the GSettings schema %s is not installed", BL_APPLICATION_ID);
  return g_settings_new_full (schema, NULL, NULL);
}

static BlWorkbench *
get_window (BlApplication *self)
{
  GtkWindow *window = gtk_application_get_active_window (GTK_APPLICATION (self));

  if (BL_IS_WORKBENCH (window))
    return BL_WORKBENCH (window);
  return bl_workbench_new (GTK_APPLICATION (self), self->settings, self->default_model);
}

static void
bl_application_activate (GApplication *app)
{
  BlApplication *self = BL_APPLICATION (app);
  gboolean fresh = gtk_application_get_active_window (GTK_APPLICATION (self)) == NULL;
  BlWorkbench *window = get_window (self);

  gtk_window_present (GTK_WINDOW (window));
  if (fresh && self->default_model != NULL
      && g_file_test (self->default_model, G_FILE_TEST_IS_DIR))
    bl_workbench_open (window, self->default_model);
}

static void
bl_application_open (GApplication  *app,
                     GFile        **files,
                     int            n_files,
                     const char    *hint)
{
  BlApplication *self = BL_APPLICATION (app);
  BlWorkbench *window = get_window (self);
  g_autofree char *path = n_files > 0 ? g_file_get_path (files[n_files - 1]) : NULL;

  gtk_window_present (GTK_WINDOW (window));
  if (path != NULL)
    bl_workbench_open (window, path);
}

static void
action_about (GSimpleAction *action,
              GVariant      *param,
              gpointer       user_data)
{
  BlApplication *self = user_data;
  static const char *developers[] = { "The Bitlens authors", NULL };
  GtkWidget *about;

  about = g_object_new (ADW_TYPE_ABOUT_WINDOW,
                        "transient-for", gtk_application_get_active_window (GTK_APPLICATION (self)),
                        "application-name", "Bitlens",
                        "application-icon", BL_APPLICATION_ID,
                        "version", BITLENS_VERSION,
                        "developer-name", "The Bitlens authors",
                        "developers", developers,
                        "comments", "A quantization workbench for language models: number formats, "
                                    "per-layer error, and perplexity measured as you change the plan.",
                        "license-type", GTK_LICENSE_GPL_3_0,
                        "copyright", "© The Bitlens authors",
                        NULL);
  gtk_window_present (GTK_WINDOW (about));
}

static void
action_preferences (GSimpleAction *action,
                    GVariant      *param,
                    gpointer       user_data)
{
  BlApplication *self = user_data;
  GtkWidget *prefs = bl_preferences_window_new (gtk_application_get_active_window (GTK_APPLICATION (self)),
                                                self->settings);

  gtk_window_present (GTK_WINDOW (prefs));
}

static void
action_quit (GSimpleAction *action,
             GVariant      *param,
             gpointer       user_data)
{
  GApplication *app = user_data;
  GList *windows = g_list_copy (gtk_application_get_windows (GTK_APPLICATION (app)));

  /* closing the windows cancels their work; then the application ends */
  for (GList *l = windows; l != NULL; l = l->next)
    gtk_window_destroy (l->data);
  g_list_free (windows);
}

static const GActionEntry app_entries[] = {
  { "about", action_about },
  { "preferences", action_preferences },
  { "quit", action_quit },
};

static void
bl_application_startup (GApplication *app)
{
  BlApplication *self = BL_APPLICATION (app);
  static const struct
  {
    const char *action;
    const char *accels[3];
  } accels[] = {
    { "app.quit", { "<Control>q", NULL } },
    { "app.preferences", { "<Control>comma", NULL } },
    { "win.open", { "<Control>o", NULL } },
    { "win.open-gguf", { "<Control><Shift>o", NULL } },
    { "win.export-plan", { "<Control>e", "<Control>s", NULL } },
    { "win.undo", { "<Control>z", NULL } },
    { "win.redo", { "<Control><Shift>z", "<Control>y", NULL } },
    { "win.search", { "<Control>f", NULL } },
    { "win.apply('selection')", { "<Control>Return", NULL } },
    { "win.measure", { "F5", NULL } },
    { "win.show-view('distribution')", { "<Alt>1", NULL } },
    { "win.show-view('pareto')", { "<Alt>2", NULL } },
    { "win.show-view('scaling')", { "<Alt>3", NULL } },
    { "window.close", { "<Control>w", NULL } },
  };

  G_APPLICATION_CLASS (bl_application_parent_class)->startup (app);

  self->settings = new_settings ();
  g_action_map_add_action_entries (G_ACTION_MAP (self), app_entries, G_N_ELEMENTS (app_entries), self);
  for (guint i = 0; i < G_N_ELEMENTS (accels); i++)
    gtk_application_set_accels_for_action (GTK_APPLICATION (self), accels[i].action, accels[i].accels);
}

static void
bl_application_finalize (GObject *object)
{
  BlApplication *self = BL_APPLICATION (object);

  g_clear_pointer (&self->default_model, g_free);
  g_clear_object (&self->settings);

  G_OBJECT_CLASS (bl_application_parent_class)->finalize (object);
}

static void
bl_application_set_property (GObject      *object,
                             guint         prop_id,
                             const GValue *value,
                             GParamSpec   *pspec)
{
  BlApplication *self = BL_APPLICATION (object);

  switch (prop_id)
    {
    case PROP_DEFAULT_MODEL:
      self->default_model = g_value_dup_string (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
bl_application_class_init (BlApplicationClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GApplicationClass *app_class = G_APPLICATION_CLASS (klass);

  object_class->finalize = bl_application_finalize;
  object_class->set_property = bl_application_set_property;
  app_class->activate = bl_application_activate;
  app_class->open = bl_application_open;
  app_class->startup = bl_application_startup;

  bl_ui_register_resource ();

  properties[PROP_DEFAULT_MODEL] =
    g_param_spec_string ("default-model", NULL, NULL, NULL,
                         G_PARAM_WRITABLE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
bl_application_init (BlApplication *self)
{
}

/**
 * bl_application_new:
 * @default_model: (nullable): the model opened at start and by "Open the Demo Model"
 * @flags: application flags (%G_APPLICATION_NON_UNIQUE for tests)
 *
 * Returns: (transfer full): the application
 */
BlApplication *
bl_application_new (const char       *default_model,
                    GApplicationFlags flags)
{
  return g_object_new (BL_TYPE_APPLICATION,
                       "application-id", BL_APPLICATION_ID,
                       "flags", flags | G_APPLICATION_HANDLES_OPEN,
                       "resource-base-path", "/io/github/bitlens/Bitlens",
                       "default-model", default_model,
                       NULL);
}

/**
 * bl_application_get_settings:
 * @self: a started application
 *
 * Returns: (transfer none): the application's settings
 */
GSettings *
bl_application_get_settings (BlApplication *self)
{
  g_return_val_if_fail (BL_IS_APPLICATION (self), NULL);

  return self->settings;
}

/**
 * bl_application_get_workbench:
 * @self: an application
 *
 * Returns: (transfer none) (nullable): the workbench window, once activated
 */
GtkWindow *
bl_application_get_workbench (BlApplication *self)
{
  GList *windows;

  g_return_val_if_fail (BL_IS_APPLICATION (self), NULL);

  for (windows = gtk_application_get_windows (GTK_APPLICATION (self)); windows != NULL; windows = windows->next)
    if (BL_IS_WORKBENCH (windows->data))
      return windows->data;
  return NULL;
}

static void
on_task_completed (GTask         *task,
                   GParamSpec    *pspec,
                   BlApplication *self)
{
  self->n_tasks--;
  g_application_release (G_APPLICATION (self));
}

/**
 * bl_application_hold_task:
 * @task: a #GTask about to run in a worker thread
 *
 * Keeps the running #BlApplication alive until @task completes, so that closing the last
 * window lets cancelled workers wind down before the process exits (a worker inside
 * OpenBLAS or SQLite must not meet the library's exit-time teardown). Without a
 * #BlApplication this does nothing.
 */
void
bl_application_hold_task (GTask *task)
{
  GApplication *app = g_application_get_default ();
  BlApplication *self;

  g_return_if_fail (G_IS_TASK (task));

  if (!BL_IS_APPLICATION (app))
    return;
  self = BL_APPLICATION (app);
  self->n_tasks++;
  g_application_hold (app);
  g_signal_connect_data (task, "notify::completed", G_CALLBACK (on_task_completed),
                         g_object_ref (self), (GClosureNotify) (void (*) (void)) g_object_unref, 0);
}

/**
 * bl_application_get_n_tasks:
 * @self: an application
 *
 * Returns: the worker tasks that have not completed yet
 */
guint
bl_application_get_n_tasks (BlApplication *self)
{
  g_return_val_if_fail (BL_IS_APPLICATION (self), 0);

  return self->n_tasks;
}
