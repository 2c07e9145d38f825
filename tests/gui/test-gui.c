/* test-gui.c: drive the real workbench under Xvfb
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * The steps share one application and run in order, as a user would: open stories260k,
 * select a layer, give every MLP layer mxfp4, wait for the measured perplexity (recording
 * frame times while it runs), export the plan, check the file, and undo. Each step saves a
 * screenshot of the window (GtkWidgetPaintable → GskRenderer → PNG) into
 * $BITLENS_SCREENSHOT_DIR and asserts on what the widgets show.
 */
#include <glib/gstdio.h>
#include <adwaita.h>
#include <gtk/gtk.h>
#include <math.h>
#include <string.h>

#include "bl-application.h"
#include "bl-brown.h"
#include "bl-distribution-view.h"
#include "bl-format-picker.h"
#include "bl-layer-browser.h"
#include "bl-metrics-bar.h"
#include "bl-quant-plan.h"
#include "bl-workbench.h"

#define STEP_TIMEOUT_S 120

static BlApplication *app;
static BlWorkbench *win;
static char *skip_reason;
static char *shot_dir;
static char *work_dir;

static char *
shared_path (const char *rel)
{
  const char *shared = g_getenv ("BITLENS_SHARED_DIR");

  return g_build_filename (shared ? shared : "", rel, NULL);
}

static gboolean
skip_if_needed (void)
{
  if (skip_reason != NULL)
    {
      g_test_skip (skip_reason);
      return TRUE;
    }
  if (win == NULL)
    {
      g_test_skip ("an earlier step did not open the workbench");
      return TRUE;
    }
  return FALSE;
}

typedef gboolean (*Condition) (gpointer data);

/* Runs the main loop until @cond holds; fails the test after STEP_TIMEOUT_S seconds. */
static void
wait_for (Condition   cond,
          gpointer    data,
          const char *what)
{
  gint64 deadline = g_get_monotonic_time () + STEP_TIMEOUT_S * G_USEC_PER_SEC;

  while (!cond (data))
    {
      if (g_get_monotonic_time () > deadline)
        g_error ("timed out after %d s waiting for %s", STEP_TIMEOUT_S, what);
      g_main_context_iteration (NULL, FALSE);
      g_usleep (1000);
    }
}

static gboolean
elapsed (gpointer data)
{
  return g_get_monotonic_time () >= *(gint64 *) data;
}

/* Lets layout, drawing and queued idles run for @ms milliseconds. */
static void
settle (int ms)
{
  gint64 until = g_get_monotonic_time () + ms * 1000;

  wait_for (elapsed, &until, "the window to settle");
}

static gboolean
stack_settled (gpointer data)
{
  return !gtk_stack_get_transition_running (data);
}

static void
screenshot (const char *name)
{
  /* the window's content: a paintable of the toplevel itself draws nothing */
  GtkWidget *widget = adw_application_window_get_content (ADW_APPLICATION_WINDOW (win));
  GtkStack *stack = GTK_STACK (bl_workbench_get_part (win, "stack"));
  g_autoptr(GdkPaintable) paintable = gtk_widget_paintable_new (widget);
  g_autoptr(GskRenderNode) node = NULL;
  g_autoptr(GdkTexture) texture = NULL;
  g_autofree char *path = g_build_filename (shot_dir, name, NULL);
  int w = 0, h = 0;

  wait_for (stack_settled, stack, "the page transition");
  /* until the widget has been drawn once, its paintable has nothing to show */
  for (int attempt = 0; node == NULL && attempt < 50; attempt++)
    {
      GtkSnapshot *snapshot = gtk_snapshot_new ();

      settle (attempt == 0 ? 400 : 100);
      w = gtk_widget_get_width (widget);
      h = gtk_widget_get_height (widget);
      gdk_paintable_snapshot (paintable, snapshot, w, h);
      node = gtk_snapshot_free_to_node (snapshot);
    }
  if (node == NULL)
    g_error ("nothing to draw for %s: %d×%d, mapped %d", name, w, h, gtk_widget_get_mapped (widget));
  texture = gsk_renderer_render_texture (gtk_native_get_renderer (GTK_NATIVE (win)), node,
                                         &GRAPHENE_RECT_INIT (0, 0, w, h));
  g_assert_true (gdk_texture_save_to_png (texture, path));
  g_test_message ("screenshot %s (%d×%d)", path, w, h);
}

static GtkWidget *
part (const char *name)
{
  GtkWidget *w = bl_workbench_get_part (win, name);

  g_assert_nonnull (w);
  return w;
}

/* The texts of every visible label under @root with CSS class @css_class. */
static void
collect_labels (GtkWidget  *root,
                const char *css_class,
                GPtrArray  *out)
{
  for (GtkWidget *c = gtk_widget_get_first_child (root); c != NULL; c = gtk_widget_get_next_sibling (c))
    {
      if (GTK_IS_LABEL (c) && gtk_widget_has_css_class (c, css_class) && gtk_widget_get_visible (c))
        g_ptr_array_add (out, g_strdup (gtk_label_get_text (GTK_LABEL (c))));
      collect_labels (c, css_class, out);
    }
}

static guint
count_badges (const char *text)
{
  g_autoptr(GPtrArray) labels = g_ptr_array_new_with_free_func (g_free);
  guint n = 0;

  collect_labels (part ("browser"), "badge", labels);
  for (guint i = 0; i < labels->len; i++)
    n += g_str_equal (g_ptr_array_index (labels, i), text);
  return n;
}

/* Step 1: open stories260k */

static gboolean
workbench_shown (gpointer data)
{
  GtkStack *stack = GTK_STACK (part ("stack"));

  return bl_workbench_get_model (win) != NULL
         && g_strcmp0 (gtk_stack_get_visible_child_name (stack), "workbench") == 0;
}

static gboolean
first_analysis (gpointer data)
{
  return bl_distribution_view_get_analysis (BL_DISTRIBUTION_VIEW (part ("distribution"))) != NULL;
}

static void
test_open (void)
{
  g_autofree char *model = shared_path ("models/stories260k");
  g_autofree char *text = shared_path ("datasets/wikitext-2-raw-v1/wiki.test.raw");
  GSettings *settings;
  BlModel *m;

  if (skip_reason != NULL)
    {
      g_test_skip (skip_reason);
      return;
    }
  if (!g_file_test (model, G_FILE_TEST_IS_DIR))
    {
      skip_reason = g_strdup_printf ("%s is missing (set BITLENS_SHARED_DIR)", model);
      g_test_skip (skip_reason);
      return;
    }

  app = bl_application_new (NULL, G_APPLICATION_NON_UNIQUE);
  g_assert_true (g_application_register (G_APPLICATION (app), NULL, NULL));
  settings = bl_application_get_settings (app);
  /* WikiText-2 from the shared data: present wherever stories260k is */
  g_settings_set_string (settings, "eval-text", text);
  g_settings_set_int (settings, "eval-windows", 32);
  g_settings_set_int (settings, "eval-ctx", 256);
  g_settings_set_int (settings, "window-width", 1440);
  g_settings_set_int (settings, "window-height", 900);
  g_application_activate (G_APPLICATION (app));
  win = BL_WORKBENCH (bl_application_get_workbench (app));
  g_assert_nonnull (win);

  bl_workbench_open (win, model);
  wait_for (workbench_shown, NULL, "the model to load");
  wait_for (first_analysis, NULL, "the first layer's distribution");
  m = bl_workbench_get_model (win);
  g_assert_cmpint (bl_model_get_config (m)->n_layers, ==, 5);
  /* the first linear layer is focused, and its row shows its stored type as a badge */
  g_assert_cmpstr (bl_layer_item_get_name (bl_layer_browser_get_focus (BL_LAYER_BROWSER (part ("browser")))),
                   ==, "model.layers.0.self_attn.q_proj.weight");
  g_assert_cmpuint (count_badges ("fp32"), >, 0);
  screenshot ("01-open.png");
}

/* Step 2: select a layer */

static gboolean
analysis_for (gpointer data)
{
  const BlLayerAnalysis *a = bl_distribution_view_get_analysis (BL_DISTRIBUTION_VIEW (part ("distribution")));

  return a != NULL && g_strcmp0 (a->layer_name, data) == 0 && a->hist != NULL;
}

static void
test_select_layer (void)
{
  const char *name = "model.layers.2.mlp.down_proj.weight";
  BlLayerBrowser *browser;
  const BlLayerAnalysis *a;

  if (skip_if_needed ())
    return;
  browser = BL_LAYER_BROWSER (part ("browser"));
  g_assert_true (bl_layer_browser_select_layer (browser, name));
  g_assert_cmpstr (bl_layer_item_get_name (bl_layer_browser_get_focus (browser)), ==, name);
  wait_for (analysis_for, (gpointer) name, "the distribution of the selected layer");
  a = bl_distribution_view_get_analysis (BL_DISTRIBUTION_VIEW (part ("distribution")));
  /* down_proj of stories260k: 64 rows of 172 inputs; the picker previews mxfp4 */
  g_assert_cmpint (a->rows, ==, 64);
  g_assert_cmpint (a->cols, ==, 172);
  g_assert_cmpstr (a->spec, ==, "mxfp4");
  g_assert_cmpfloat (a->bpw, >, 4.25);
  g_assert_cmpuint (a->n_levels, >=, 8);
  g_assert_cmpuint (a->n_levels, <=, 15);
  g_assert_true (isfinite (bl_error_stats_qsnr_db (&a->error)));
  screenshot ("02-layer.png");
}

/* Step 3: mxfp4 on every MLP layer, as a user does it: filter, select all, apply */

static gboolean
qsnr_known (gpointer data)
{
  BlLayerBrowser *browser = BL_LAYER_BROWSER (part ("browser"));
  g_autoptr(GPtrArray) sel = bl_layer_browser_get_selected_layers (browser);

  for (guint i = 0; i < sel->len; i++)
    if (isnan (bl_layer_item_get_qsnr (g_ptr_array_index (sel, i))))
      return FALSE;
  return TRUE;
}

static void
test_apply_mlp (void)
{
  BlLayerBrowser *browser;
  BlFormatPicker *picker;
  GtkColumnView *view = NULL;
  BlPlanSnapshot *plan;
  g_autoptr(GPtrArray) sel = NULL;

  if (skip_if_needed ())
    return;
  browser = BL_LAYER_BROWSER (part ("browser"));
  picker = BL_FORMAT_PICKER (part ("picker"));
  g_assert_true (bl_format_picker_set_spec (picker, "mxfp4"));
  bl_layer_browser_set_filter_text (browser, "mlp");
  settle (200);
  for (GtkWidget *c = gtk_widget_get_first_child (GTK_WIDGET (browser)); c != NULL && view == NULL;
       c = gtk_widget_get_next_sibling (c))
    if (GTK_IS_SCROLLED_WINDOW (c))
      view = GTK_COLUMN_VIEW (gtk_scrolled_window_get_child (GTK_SCROLLED_WINDOW (c)));
  g_assert_nonnull (view);
  g_assert_true (gtk_selection_model_select_all (gtk_column_view_get_model (view)));
  sel = bl_layer_browser_get_selected_layers (browser);
  g_assert_cmpuint (sel->len, ==, 15);   /* 5 blocks × gate, up, down */
  g_assert_true (gtk_widget_activate_action (GTK_WIDGET (win), "win.apply", "s", "selection"));

  plan = bl_workbench_get_plan (win);
  g_assert_cmpuint (bl_plan_snapshot_get_n_entries (plan), ==, 15);
  for (guint i = 0; i < bl_plan_snapshot_get_n_entries (plan); i++)
    {
      const BlPlanEntry *e = bl_plan_snapshot_get_entry (plan, i);

      g_assert_nonnull (strstr (e->layer, ".mlp."));
      g_assert_cmpstr (e->weight_spec, ==, "mxfp4");
      g_assert_null (e->act_spec);
      g_assert_cmpstr (e->algorithm, ==, "rtn");
    }
  g_assert_null (bl_plan_snapshot_lookup (plan, "model.layers.0.self_attn.q_proj.weight"));
  wait_for (qsnr_known, NULL, "the QSNR of the new formats");
  settle (200);
  /* the rows show the new format: a badge per visible MLP row */
  g_assert_cmpuint (count_badges ("mxfp4"), >, 0);
  screenshot ("03-mxfp4-mlp.png");
  bl_layer_browser_set_filter_text (browser, "");
}

/* Step 4: the measured perplexity, with frame times recorded while it runs */

typedef struct
{
  gint64 last_paint;
  gint64 worst_interval;
  gint64 frame_start;
  gint64 worst_frame;
  guint n_frames;
} FrameStats;

static void
on_before_paint (GdkFrameClock *clock,
                 FrameStats    *fs)
{
  fs->frame_start = g_get_monotonic_time ();
}

static void
on_after_paint (GdkFrameClock *clock,
                FrameStats    *fs)
{
  gint64 now = g_get_monotonic_time ();

  if (fs->last_paint != 0)
    fs->worst_interval = MAX (fs->worst_interval, now - fs->last_paint);
  if (fs->frame_start != 0)
    fs->worst_frame = MAX (fs->worst_frame, now - fs->frame_start);
  fs->last_paint = now;
  fs->n_frames++;
}

static gboolean
measured (gpointer data)
{
  BlMeasurement *m = bl_workbench_get_measurement (win);

  return m != NULL && bl_measurement_get_state (m) == BL_MEASUREMENT_FINISHED
         && bl_plan_snapshot_equal (bl_measurement_get_plan (m), bl_workbench_get_plan (win));
}

static gboolean
running (gpointer data)
{
  BlMeasurement *m = bl_workbench_get_measurement (win);

  return m != NULL && (bl_measurement_get_state (m) == BL_MEASUREMENT_RUNNING || measured (NULL));
}

static gboolean
pareto_has_two (gpointer data)
{
  return bl_plot_get_n_points (BL_PLOT (part ("pareto"))) >= 2;
}

static gboolean
estimated (gpointer data)
{
  return bl_metrics_bar_get_estimate_text (BL_METRICS_BAR (part ("metrics"))) != NULL;
}

static void
test_measure (void)
{
  GdkFrameClock *clock;
  FrameStats fs = { 0 };
  const char *text;
  char *end = NULL;
  double ppl;
  gulong before, after;

  if (skip_if_needed ())
    return;
  clock = gtk_widget_get_frame_clock (GTK_WIDGET (win));
  g_assert_nonnull (clock);
  wait_for (running, NULL, "the measurement to start");
  /* a longer measurement, so that there is time to watch the frames */
  g_settings_set_int (bl_application_get_settings (app), "eval-windows", 160);
  g_assert_true (gtk_widget_activate_action (GTK_WIDGET (win), "win.measure", NULL));
  wait_for (running, NULL, "the restarted measurement");
  screenshot ("04-measuring.png");
  /* the spinner animates while the measurement runs, so the clock ticks every frame; the
   * recording starts after the screenshot, whose rendering is the test's, not the window's */
  before = g_signal_connect (clock, "before-paint", G_CALLBACK (on_before_paint), &fs);
  after = g_signal_connect (clock, "after-paint", G_CALLBACK (on_after_paint), &fs);
  wait_for (measured, NULL, "the measured perplexity");
  g_signal_handler_disconnect (clock, before);
  g_signal_handler_disconnect (clock, after);

  text = bl_metrics_bar_get_ppl_text (BL_METRICS_BAR (part ("metrics")));
  ppl = g_ascii_strtod (text, &end);
  g_assert_true (end != text && *end == '\0');
  g_assert_cmpfloat (ppl, >, 1.0);
  g_assert_cmpfloat (fabs (ppl - bl_measurement_get_ppl (bl_workbench_get_measurement (win))), <, 0.01);
  /* the comparison with the full-precision model */
  g_assert_true (g_str_has_prefix (bl_metrics_bar_get_kl_text (BL_METRICS_BAR (part ("metrics"))), "KL "));
  g_test_message ("measured ppl %s; %u frames during the measurement, worst interval %.1f ms, "
                  "worst frame %.1f ms", text, fs.n_frames, fs.worst_interval / 1000.0, fs.worst_frame / 1000.0);
  g_print ("# frames during the measurement: %u; worst frame-to-frame interval %.1f ms; "
           "worst frame (update → paint) %.1f ms\n", fs.n_frames, fs.worst_interval / 1000.0,
           fs.worst_frame / 1000.0);
  g_assert_cmpuint (fs.n_frames, >, 5);
  /* responsive: no frame waits on the measurement */
  g_assert_cmpint (fs.worst_interval, <, 500 * 1000);
  screenshot ("05-measured.png");

  /* the instant estimate, once the sensitivities are in */
  wait_for (estimated, NULL, "the estimated Δppl");
  text = bl_metrics_bar_get_estimate_text (BL_METRICS_BAR (part ("metrics")));
  g_ascii_strtod (text, &end);
  g_assert_true (end != text && *end == '\0');
  g_assert_true (isfinite (bl_layer_item_get_sensitivity (bl_layer_browser_get_focus (BL_LAYER_BROWSER (part ("browser"))))));

  g_assert_true (gtk_widget_activate_action (GTK_WIDGET (win), "win.show-view", "s", "pareto"));
  /* the stored runs: at least the unquantized model and this plan */
  wait_for (pareto_has_two, NULL, "the Pareto points");
  screenshot ("06-pareto.png");
  g_assert_true (gtk_widget_activate_action (GTK_WIDGET (win), "win.show-view", "s", "distribution"));
}

/* Step 5: export the plan and read it back */

static void
test_export (void)
{
  g_autofree char *path = NULL;
  g_autoptr(GFile) file = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(BlQuantPlan) plan = NULL;
  g_autoptr(GPtrArray) resolved = NULL;
  g_autofree char *json = NULL;
  guint n_mlp = 0;

  if (skip_if_needed ())
    return;
  path = g_build_filename (work_dir, "stories260k-plan.json", NULL);
  file = g_file_new_for_path (path);
  g_assert_true (bl_workbench_export_plan (win, file, &error));
  g_assert_no_error (error);

  /* one rule per MLP projection, as the user applied it */
  g_assert_true (g_file_get_contents (path, &json, NULL, &error));
  g_assert_no_error (error);
  g_assert_nonnull (strstr (json, "model.layers.*.mlp.down_proj.weight"));
  g_assert_nonnull (strstr (json, "\"mxfp4\""));

  /* and the core reads it back to the same assignment */
  plan = bl_quant_plan_load (path, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (bl_quant_plan_get_n_rules (plan), ==, 3);
  resolved = bl_quant_plan_resolve (plan, bl_workbench_get_model (win), &error);
  g_assert_no_error (error);
  for (guint i = 0; i < resolved->len; i++)
    {
      const BlLayerAssignment *a = g_ptr_array_index (resolved, i);
      gboolean mlp = strstr (a->layer, ".mlp.") != NULL;

      g_assert_cmpint (a->has_weight, ==, mlp);
      g_assert_false (a->has_activation);
      if (mlp)
        {
          g_assert_cmpstr (a->weight_spec, ==, "mxfp4");
          n_mlp++;
        }
    }
  g_assert_cmpuint (n_mlp, ==, 15);
}

/* Step 6: undo and redo */

static void
test_undo (void)
{
  if (skip_if_needed ())
    return;
  g_assert_true (gtk_widget_activate_action (GTK_WIDGET (win), "win.undo", NULL));
  g_assert_true (bl_plan_snapshot_is_empty (bl_workbench_get_plan (win)));
  settle (200);
  g_assert_cmpuint (count_badges ("mxfp4"), ==, 0);
  g_assert_true (gtk_widget_activate_action (GTK_WIDGET (win), "win.redo", NULL));
  g_assert_cmpuint (bl_plan_snapshot_get_n_entries (bl_workbench_get_plan (win)), ==, 15);
  settle (200);
  g_assert_cmpuint (count_badges ("mxfp4"), >, 0);
}

/* Step 7: the bundled demo model, as the README's first command shows it */

static gboolean
measured_empty (gpointer data)
{
  BlMeasurement *m = bl_workbench_get_measurement (win);

  return m != NULL && bl_measurement_get_state (m) == BL_MEASUREMENT_FINISHED
         && bl_plan_snapshot_is_empty (bl_measurement_get_plan (m));
}

static void
test_demo (void)
{
  g_autofree char *rel = g_test_build_filename (G_TEST_DIST, "..", "..", "data", "models", "bitlens-demo", NULL);
  g_autofree char *demo = g_canonicalize_filename (rel, NULL);
  g_autofree char *brown = bl_brown_default_dir ();
  g_autofree char *package = g_build_filename (brown, "package", NULL);
  GSettings *settings;
  const char *text;
  char *end = NULL;

  if (skip_if_needed ())
    return;
  if (!g_file_test (demo, G_FILE_TEST_IS_DIR) || !g_file_test (package, G_FILE_TEST_IS_DIR))
    {
      g_test_skip ("the demo model or the Brown corpus (tools/fetch-brown-corpus) is missing");
      return;
    }
  settings = bl_application_get_settings (app);
  g_settings_set_string (settings, "eval-text", "brown:test");
  g_settings_set_int (settings, "eval-windows", 48);
  bl_workbench_open (win, demo);
  wait_for (workbench_shown, NULL, "the demo model to load");
  g_assert_cmpstr (bl_model_get_path (bl_workbench_get_model (win)), ==, demo);
  wait_for (measured_empty, NULL, "the demo model's perplexity");
  text = bl_metrics_bar_get_ppl_text (BL_METRICS_BAR (part ("metrics")));
  g_test_message ("demo: ppl %s on %s, %u windows of %d", text,
                  bl_measurement_get_text_name (bl_workbench_get_measurement (win)),
                  bl_measurement_get_n_windows (bl_workbench_get_measurement (win)),
                  bl_measurement_get_ctx (bl_workbench_get_measurement (win)));
  g_assert_cmpfloat (g_ascii_strtod (text, &end), >, 1.0);
  g_assert_true (*end == '\0');
  screenshot ("07-demo.png");

  g_assert_true (bl_format_picker_set_spec (BL_FORMAT_PICKER (part ("picker")), "nvfp4"));
  g_assert_true (gtk_widget_activate_action (GTK_WIDGET (win), "win.apply", "s", "all"));
  g_assert_true (bl_layer_browser_select_layer (BL_LAYER_BROWSER (part ("browser")),
                                                "model.layers.1.mlp.down_proj.weight"));
  wait_for (measured, NULL, "the demo model's perplexity under nvfp4");
  screenshot ("08-demo-nvfp4.png");
}

static gboolean
no_tasks (gpointer data)
{
  return bl_application_get_n_tasks (app) == 0;
}

int
main (int    argc,
      char **argv)
{
  int status;

  g_test_init (&argc, &argv, NULL);

  if (g_getenv ("BITLENS_GUI_SKIP") != NULL)
    skip_reason = g_strdup (g_getenv ("BITLENS_GUI_SKIP"));
  else if (!gtk_init_check ())
    skip_reason = g_strdup ("no display: the GUI tests run under xvfb-run");

  shot_dir = g_strdup (g_getenv ("BITLENS_SCREENSHOT_DIR"));
  if (shot_dir == NULL)
    shot_dir = g_build_filename (g_get_tmp_dir (), "bitlens-screenshots", NULL);
  g_mkdir_with_parents (shot_dir, 0755);
  work_dir = g_dir_make_tmp ("bitlens-gui-XXXXXX", NULL);

  g_test_add_func ("/bitlens/gui/open", test_open);
  g_test_add_func ("/bitlens/gui/select-layer", test_select_layer);
  g_test_add_func ("/bitlens/gui/apply-mxfp4-mlp", test_apply_mlp);
  g_test_add_func ("/bitlens/gui/measure", test_measure);
  g_test_add_func ("/bitlens/gui/export", test_export);
  g_test_add_func ("/bitlens/gui/undo", test_undo);
  g_test_add_func ("/bitlens/gui/demo", test_demo);
  status = g_test_run ();

  if (win != NULL)
    {
      gtk_window_destroy (GTK_WINDOW (win));
      /* the cancelled workers wind down before the process exits */
      wait_for (no_tasks, NULL, "the workers to finish");
    }
  g_clear_object (&app);
  if (work_dir != NULL)
    {
      g_autofree char *plan = g_build_filename (work_dir, "stories260k-plan.json", NULL);

      g_remove (plan);
      g_rmdir (work_dir);
    }
  g_free (shot_dir);
  g_free (work_dir);
  g_free (skip_reason);
  return status;
}
