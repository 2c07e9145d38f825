/* bl-workbench-actions.c: the window's actions (open, export, save plot, undo/redo, apply…)
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "bl-workbench-private.h"

#include <string.h>

#include "bl-export.h"

/**
 * SECTION:bl-workbench-actions
 * @title: BlWorkbench actions
 *
 * The "win." actions. bl_workbench_update_actions() is the one place that decides which of
 * them are enabled.
 */

static void
on_open_response (GtkNativeDialog *dialog,
                  int              response,
                  BlWorkbench        *self)
{
  if (response == GTK_RESPONSE_ACCEPT)
    {
      g_autoptr(GFile) file = gtk_file_chooser_get_file (GTK_FILE_CHOOSER (dialog));
      g_autofree char *path = g_file_get_path (file);

      if (path != NULL)
        bl_workbench_open (self, path);
    }
  g_object_unref (dialog);
}

/* Adds a filter called @name that shows the files ending in one of @suffixes (NULL-terminated). */
static void
chooser_add_filter (GtkFileChooserNative *dialog,
                    const char           *name,
                    const char *const    *suffixes)
{
  g_autoptr(GtkFileFilter) filter = gtk_file_filter_new ();

  gtk_file_filter_set_name (filter, name);
  for (guint i = 0; suffixes[i] != NULL; i++)
    gtk_file_filter_add_suffix (filter, suffixes[i]);
  gtk_file_chooser_add_filter (GTK_FILE_CHOOSER (dialog), filter);
}

/* Shows @dialog modal over the window; @on_response (dialog, response, self) takes the answer
 * and unrefs the dialog. */
static void
chooser_show (GtkFileChooserNative *dialog,
              BlWorkbench          *self,
              GCallback             on_response)
{
  gtk_native_dialog_set_modal (GTK_NATIVE_DIALOG (dialog), TRUE);
  g_signal_connect (dialog, "response", on_response, self);
  gtk_native_dialog_show (GTK_NATIVE_DIALOG (dialog));
}

static void
action_open (GSimpleAction *action,
             GVariant      *param,
             gpointer       user_data)
{
  BlWorkbench *self = user_data;
  GtkFileChooserNative *dialog;

  dialog = gtk_file_chooser_native_new ("Open a Model Folder", GTK_WINDOW (self),
                                        GTK_FILE_CHOOSER_ACTION_SELECT_FOLDER, "_Open", "_Cancel");
  chooser_show (dialog, self, G_CALLBACK (on_open_response));
}

/* GTK 4.8's chooser picks either folders or files, so a GGUF file has its own action: a
 * file chooser that shows only *.gguf. */
static void
action_open_gguf (GSimpleAction *action,
                  GVariant      *param,
                  gpointer       user_data)
{
  BlWorkbench *self = user_data;
  GtkFileChooserNative *dialog;

  dialog = gtk_file_chooser_native_new ("Open a GGUF File", GTK_WINDOW (self), GTK_FILE_CHOOSER_ACTION_OPEN,
                                        "_Open", "_Cancel");
  chooser_add_filter (dialog, "GGUF model (*.gguf)", (const char *const[]) { "gguf", NULL });
  chooser_show (dialog, self, G_CALLBACK (on_open_response));
}

static void
action_open_path (GSimpleAction *action,
                  GVariant      *param,
                  gpointer       user_data)
{
  bl_workbench_open (BL_WORKBENCH (user_data), g_variant_get_string (param, NULL));
}

static void
action_open_demo (GSimpleAction *action,
                  GVariant      *param,
                  gpointer       user_data)
{
  BlWorkbench *self = user_data;

  if (self->default_model != NULL)
    bl_workbench_open (self, self->default_model);
}

static void
action_cancel_load (GSimpleAction *action,
                    GVariant      *param,
                    gpointer       user_data)
{
  BlWorkbench *self = user_data;

  if (self->load_cancellable != NULL)
    g_cancellable_cancel (self->load_cancellable);
}

static void
on_export_response (GtkNativeDialog *dialog,
                    int              response,
                    BlWorkbench        *self)
{
  if (response == GTK_RESPONSE_ACCEPT)
    {
      g_autoptr(GFile) file = gtk_file_chooser_get_file (GTK_FILE_CHOOSER (dialog));
      g_autoptr(GError) error = NULL;
      g_autofree char *name = g_file_get_basename (file);

      if (bl_workbench_export_plan (self, file, &error))
        bl_workbench_toast (self, "Saved the plan as %s", name);
      else
        bl_workbench_toast (self, "Could not save the plan: %s", error->message);
    }
  g_object_unref (dialog);
}

/* The open model's name for suggested file names: its folder's, or its GGUF file's without
 * the suffix. */
static char *
model_base_name (BlWorkbench *self)
{
  g_autofree char *base = self->model_path ? g_path_get_basename (self->model_path) : g_strdup ("model");
  size_t n = strlen (base);

  if (n > strlen (".gguf") && g_ascii_strcasecmp (base + n - strlen (".gguf"), ".gguf") == 0)
    base[n - strlen (".gguf")] = '\0';
  return g_steal_pointer (&base);
}

static void
action_export_plan (GSimpleAction *action,
                    GVariant      *param,
                    gpointer       user_data)
{
  BlWorkbench *self = user_data;
  GtkFileChooserNative *dialog;
  g_autofree char *base = model_base_name (self);
  g_autofree char *name = g_strdup_printf ("%s-plan.json", base);

  dialog = gtk_file_chooser_native_new ("Export the Plan", GTK_WINDOW (self),
                                        GTK_FILE_CHOOSER_ACTION_SAVE, "_Save", "_Cancel");
  chooser_add_filter (dialog, "Quantization plan (JSON)", (const char *const[]) { "json", NULL });
  gtk_file_chooser_set_current_name (GTK_FILE_CHOOSER (dialog), name);
  chooser_show (dialog, self, G_CALLBACK (on_export_response));
}

static void
on_exported (GObject      *source,
             GAsyncResult *result,
             gpointer      user_data)
{
  BlWorkbench *self = BL_WORKBENCH (source);
  g_autofree char *name = user_data;
  g_autoptr(GError) error = NULL;
  g_auto(GStrv) notes = NULL;

  if (bl_workbench_export_finish (self, result, &notes, &error))
    {
      guint n = g_strv_length (notes);

      /* the notes go to the log in full; the toast names the first */
      for (guint i = 0; i < n; i++)
        g_message ("%s: %s", name, notes[i]);
      if (n == 0)
        bl_workbench_toast (self, "Exported %s", name);
      else
        bl_workbench_toast (self, "Exported %s. Note: %s%s", name, notes[0],
                            n > 1 ? " (more in the log)" : "");
    }
  else
    bl_workbench_toast (self, "Could not export %s: %s", name, error->message);
}

static void
on_export_target_response (GtkNativeDialog *dialog,
                           int              response,
                           BlWorkbench     *self)
{
  const BlExportTarget *target = g_object_get_data (G_OBJECT (dialog), "bl-export-target");

  if (response == GTK_RESPONSE_ACCEPT)
    {
      g_autoptr(GFile) file = gtk_file_chooser_get_file (GTK_FILE_CHOOSER (dialog));
      g_autofree char *path = g_file_get_path (file);

      if (path == NULL)
        bl_workbench_toast (self, "Exports can only be written to local files");
      else
        bl_workbench_export_async (self, target->id, path, NULL, on_exported, g_file_get_basename (file));
    }
  g_object_unref (dialog);
}

/* One of core/bl-export.h's targets, through a file chooser (a folder chooser for the
 * packed checkpoint, which is a directory). */
static void
action_export (GSimpleAction *action,
               GVariant      *param,
               gpointer       user_data)
{
  BlWorkbench *self = user_data;
  const BlExportTarget *target = bl_export_target_lookup (g_variant_get_string (param, NULL), NULL);
  g_autofree char *base = model_base_name (self);
  g_autofree char *title = NULL;
  GtkFileChooserNative *dialog;

  if (target == NULL)
    return;
  title = g_strdup_printf ("Export as %s", target->title);
  if (!(target->flags & BL_EXPORT_TARGET_DIRECTORY))
    {
      g_autofree char *name = bl_export_target_default_name (target, base);

      dialog = gtk_file_chooser_native_new (title, GTK_WINDOW (self), GTK_FILE_CHOOSER_ACTION_SAVE,
                                            "_Export", "_Cancel");
      chooser_add_filter (dialog, target->file_kind, (const char *const[]) { target->suffix, NULL });
      gtk_file_chooser_set_current_name (GTK_FILE_CHOOSER (dialog), name);
    }
  else
    dialog = gtk_file_chooser_native_new (title, GTK_WINDOW (self), GTK_FILE_CHOOSER_ACTION_SELECT_FOLDER,
                                          "_Export", "_Cancel");
  g_object_set_data (G_OBJECT (dialog), "bl-export-target", (gpointer) target);
  chooser_show (dialog, self, G_CALLBACK (on_export_target_response));
}

static void
on_open_sweep_response (GtkNativeDialog *dialog,
                        int              response,
                        BlWorkbench     *self)
{
  if (response == GTK_RESPONSE_ACCEPT)
    {
      g_autoptr(GFile) file = gtk_file_chooser_get_file (GTK_FILE_CHOOSER (dialog));
      g_autofree char *path = g_file_get_path (file);

      if (path != NULL)
        bl_workbench_open_sweep (self, path);
    }
  g_object_unref (dialog);
}

static void
action_open_sweep (GSimpleAction *action,
                   GVariant      *param,
                   gpointer       user_data)
{
  BlWorkbench *self = user_data;
  GtkFileChooserNative *dialog;

  dialog = gtk_file_chooser_native_new ("Open a Sweep", GTK_WINDOW (self), GTK_FILE_CHOOSER_ACTION_OPEN,
                                        "_Open", "_Cancel");
  chooser_add_filter (dialog, "Sweep files (bitlens-cli sweep)", (const char *const[]) { "db", "sqlite", NULL });
  chooser_show (dialog, self, G_CALLBACK (on_open_sweep_response));
}

static BlPlot *
plot_by_id (BlWorkbench   *self,
            const char *id)
{
  if (g_str_equal (id, "pareto"))
    return bl_pareto_view_get_plot (self->pareto_view);
  return bl_distribution_view_get_plot (self->distribution, id);
}

static void
on_save_plot_response (GtkNativeDialog *dialog,
                       int              response,
                       BlWorkbench        *self)
{
  const char *id = g_object_get_data (G_OBJECT (dialog), "bl-plot-id");

  if (response == GTK_RESPONSE_ACCEPT)
    {
      g_autoptr(GFile) file = gtk_file_chooser_get_file (GTK_FILE_CHOOSER (dialog));
      g_autoptr(GError) error = NULL;
      g_autofree char *name = g_file_get_basename (file);

      if (bl_plot_save (plot_by_id (self, id), file, &error))
        bl_workbench_toast (self, "Saved %s", name);
      else
        bl_workbench_toast (self, "Could not save the plot: %s", error->message);
    }
  g_object_unref (dialog);
}

static void
action_save_plot (GSimpleAction *action,
                  GVariant      *param,
                  gpointer       user_data)
{
  BlWorkbench *self = user_data;
  const char *id = g_variant_get_string (param, NULL);
  BlLayerItem *layer = bl_distribution_view_get_layer (self->distribution);
  GtkFileChooserNative *dialog;
  g_autofree char *name = NULL;

  if (plot_by_id (self, id) == NULL)
    return;
  name = g_strdup_printf ("%s-%s.png", g_str_equal (id, "pareto") || layer == NULL
                                       ? "bitlens" : bl_layer_item_get_title (layer), id);
  dialog = gtk_file_chooser_native_new ("Save the Plot", GTK_WINDOW (self),
                                        GTK_FILE_CHOOSER_ACTION_SAVE, "_Save", "_Cancel");
  chooser_add_filter (dialog, "PNG image", (const char *const[]) { "png", NULL });
  chooser_add_filter (dialog, "SVG drawing", (const char *const[]) { "svg", NULL });
  gtk_file_chooser_set_current_name (GTK_FILE_CHOOSER (dialog), name);
  g_object_set_data_full (G_OBJECT (dialog), "bl-plot-id", g_strdup (id), g_free);
  chooser_show (dialog, self, G_CALLBACK (on_save_plot_response));
}

static void
action_undo (GSimpleAction *action,
             GVariant      *param,
             gpointer       user_data)
{
  BlWorkbench *self = user_data;
  BlPlanSnapshot *plan = bl_plan_history_undo (self->history);

  if (plan != NULL)
    bl_workbench_restore_plan (self, plan, FALSE);
}

static void
action_redo (GSimpleAction *action,
             GVariant      *param,
             gpointer       user_data)
{
  BlWorkbench *self = user_data;
  BlPlanSnapshot *plan = bl_plan_history_redo (self->history);

  if (plan != NULL)
    bl_workbench_restore_plan (self, plan, FALSE);
}

static void
action_search (GSimpleAction *action,
               GVariant      *param,
               gpointer       user_data)
{
  BlWorkbench *self = user_data;

  bl_layer_browser_focus_search (self->browser);
}

static void
action_apply (GSimpleAction *action,
              GVariant      *param,
              gpointer       user_data)
{
  bl_workbench_apply (BL_WORKBENCH (user_data), g_variant_get_string (param, NULL));
}

static void
action_measure (GSimpleAction *action,
                GVariant      *param,
                gpointer       user_data)
{
  BlWorkbench *self = user_data;

  bl_workbench_measure (self);
}

static void
action_stop_measure (GSimpleAction *action,
                     GVariant      *param,
                     gpointer       user_data)
{
  BlWorkbench *self = user_data;

  if (self->measurement != NULL)
    bl_measurement_cancel (self->measurement);
}

static void
action_show_view (GSimpleAction *action,
                  GVariant      *param,
                  gpointer       user_data)
{
  BlWorkbench *self = user_data;

  adw_view_stack_set_visible_child_name (self->view_stack, g_variant_get_string (param, NULL));
}

static const GActionEntry entries[] = {
  { "open", action_open },
  { "open-gguf", action_open_gguf },
  { "open-path", action_open_path, "s" },
  { "open-demo", action_open_demo },
  { "cancel-load", action_cancel_load },
  { "export-plan", action_export_plan },
  { "export", action_export, "s" },
  { "open-sweep", action_open_sweep },
  { "save-plot", action_save_plot, "s" },
  { "undo", action_undo },
  { "redo", action_redo },
  { "search", action_search },
  { "apply", action_apply, "s" },
  { "measure", action_measure },
  { "stop-measure", action_stop_measure },
  { "show-view", action_show_view, "s" },
};

void
bl_workbench_init_actions (BlWorkbench *self)
{
  g_action_map_add_action_entries (G_ACTION_MAP (self), entries, G_N_ELEMENTS (entries), self);
  g_signal_connect_object (self->history, "notify::can-undo", G_CALLBACK (bl_workbench_update_actions),
                           self, G_CONNECT_SWAPPED);
  g_signal_connect_object (self->history, "notify::can-redo", G_CALLBACK (bl_workbench_update_actions),
                           self, G_CONNECT_SWAPPED);
}

static void
set_enabled (BlWorkbench   *self,
             const char *name,
             gboolean    enabled)
{
  GAction *action = g_action_map_lookup_action (G_ACTION_MAP (self), name);

  if (action != NULL)
    g_simple_action_set_enabled (G_SIMPLE_ACTION (action), enabled);
}

/**
 * bl_workbench_update_actions:
 * @self: a window
 *
 * Enables each action exactly when it can do something.
 */
void
bl_workbench_update_actions (BlWorkbench *self)
{
  gboolean have_model = self->model != NULL;
  gboolean measuring = self->measurement != NULL
                       && (bl_measurement_get_state (self->measurement) == BL_MEASUREMENT_RUNNING
                           || bl_measurement_get_state (self->measurement) == BL_MEASUREMENT_PREPARING);

  set_enabled (self, "open-demo", self->default_model != NULL);
  set_enabled (self, "cancel-load", self->load_cancellable != NULL);
  set_enabled (self, "export-plan", have_model);
  set_enabled (self, "export", have_model);
  set_enabled (self, "open-sweep", have_model);
  set_enabled (self, "save-plot", have_model);
  set_enabled (self, "undo", have_model && bl_plan_history_can_undo (self->history));
  set_enabled (self, "redo", have_model && bl_plan_history_can_redo (self->history));
  set_enabled (self, "search", have_model);
  set_enabled (self, "apply", have_model);
  set_enabled (self, "measure", self->measurement != NULL);
  set_enabled (self, "stop-measure", measuring);
}
