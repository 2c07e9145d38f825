/* bl-workbench.c: the workbench window
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "bl-workbench-private.h"

#include "bl-application.h"

#include <math.h>
#include <string.h>

#include "bl-brown.h"
#include "bl-hf-cache.h"
#include "bl-layer-analysis.h"
#include "bl-export.h"
#include "bl-sweep.h"
#include "bl-text-source.h"

/**
 * SECTION:bl-workbench
 * @title: BlWorkbench
 *
 * The workbench: the layer browser on the left; the format picker, the distribution view
 * and the Pareto plot on the right; the metrics bar along the bottom. The window owns the
 * model, the plan (as the #BlLayerItem rows plus a #BlPlanHistory of snapshots), the
 * evaluation text and the live #BlMeasurement. Loading, tokenizing, calibrating, the
 * per-layer QSNR and every measurement run in worker threads with a #GCancellable, so no
 * change waits for them. The actions live in bl-workbench-actions.c.
 */

#define MAX_RECENT 8
#define CALIB_WINDOWS 8

G_DEFINE_FINAL_TYPE (BlWorkbench, bl_workbench, ADW_TYPE_APPLICATION_WINDOW)

enum {
  PROP_0,
  PROP_SETTINGS,
  PROP_DEFAULT_MODEL,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

static void start_text (BlWorkbench *self);
static void update_estimate (BlWorkbench *self);
static void start_calibration (BlWorkbench *self);
static void start_sensitivity (BlWorkbench *self);
static void load_pareto (BlWorkbench   *self,
                         BlMeasurement *measurement);
static void update_summary (BlWorkbench *self);
static void rebuild_pareto (BlWorkbench *self);

/**
 * bl_workbench_toast:
 * @self: a window
 * @format: printf-style message
 * @...: arguments
 *
 * Shows a short message over the window.
 */
void
bl_workbench_toast (BlWorkbench   *self,
                 const char *format,
                 ...)
{
  g_autofree char *text = NULL;
  g_autofree char *markup = NULL;
  AdwToast *toast;
  va_list args;

  va_start (args, format);
  text = g_strdup_vprintf (format, args);
  va_end (args);
  /* a toast's title is Pango markup, and messages quote paths and errors */
  markup = g_markup_escape_text (text, -1);
  toast = adw_toast_new (markup);
  adw_toast_set_timeout (toast, 4);
  g_clear_weak_pointer (&self->last_toast);
  g_set_weak_pointer (&self->last_toast, toast);
  adw_toast_overlay_add_toast (self->toast_overlay, toast);
}

static void
cancel_and_clear (GCancellable **cancellable)
{
  if (*cancellable != NULL)
    g_cancellable_cancel (*cancellable);
  g_clear_object (cancellable);
}

/* Stops everything that belongs to the current model. */
static void
drop_model (BlWorkbench *self)
{
  /* a message about the old model must not linger over the new one */
  if (self->last_toast != NULL)
    adw_toast_dismiss (self->last_toast);
  g_clear_weak_pointer (&self->last_toast);
  cancel_and_clear (&self->text_cancellable);
  cancel_and_clear (&self->calib_cancellable);
  cancel_and_clear (&self->qsnr_cancellable);
  cancel_and_clear (&self->sensitivity_cancellable);
  cancel_and_clear (&self->estimate_cancellable);
  cancel_and_clear (&self->pareto_cancellable);
  /* a worker may still hold the estimator; the lock waits for it */
  g_mutex_lock (&self->estimator_lock);
  g_clear_object (&self->estimator);
  g_mutex_unlock (&self->estimator_lock);
  g_clear_object (&self->sensitivity);
  bl_metrics_bar_set_estimate (self->metrics_bar, NAN);
  bl_layer_browser_set_note (self->browser, NULL);
  if (self->measurement != NULL)
    {
      g_signal_handlers_disconnect_by_data (self->measurement, self);
      bl_measurement_cancel (self->measurement);
    }
  if (self->baseline_measurement != NULL)
    {
      g_signal_handlers_disconnect_by_data (self->baseline_measurement, self);
      bl_measurement_cancel (self->baseline_measurement);
    }
  bl_metrics_bar_set_measurement (self->metrics_bar, NULL);
  g_clear_object (&self->measurement);
  g_clear_object (&self->baseline_measurement);
  bl_distribution_view_set_calib (self->distribution, NULL);
  bl_distribution_view_set_layer (self->distribution, NULL);
  g_clear_pointer (&self->calib, bl_calib_free);
  bl_layer_browser_set_groups (self->browser, NULL);
  g_clear_pointer (&self->items_by_name, g_hash_table_unref);
  g_clear_pointer (&self->items, g_ptr_array_unref);
  g_clear_object (&self->groups);
  g_clear_pointer (&self->ids, g_array_unref);
  g_clear_pointer (&self->text_name, g_free);
  g_clear_pointer (&self->text_sha256, g_free);
  g_ptr_array_set_size (self->pareto_points, 0);
  bl_pareto_view_set_sweep (self->pareto_view, NULL, NULL);
  bl_scaling_view_set_model (self->scaling_view, NULL);
  g_clear_object (&self->model);
  self->baseline_ppl = NAN;
  bl_metrics_bar_set_baseline (self->metrics_bar, NAN);
}

static void
bl_workbench_dispose (GObject *object)
{
  BlWorkbench *self = BL_WORKBENCH (object);

  cancel_and_clear (&self->load_cancellable);
  cancel_and_clear (&self->hf_cancellable);
  g_clear_handle_id (&self->pulse_source, g_source_remove);
  if (self->metrics_bar != NULL)
    drop_model (self);
  gtk_widget_dispose_template (GTK_WIDGET (self), BL_TYPE_WORKBENCH);

  G_OBJECT_CLASS (bl_workbench_parent_class)->dispose (object);
}

static void
bl_workbench_finalize (GObject *object)
{
  BlWorkbench *self = BL_WORKBENCH (object);

  g_clear_weak_pointer (&self->last_toast);
  g_clear_object (&self->settings);
  g_clear_object (&self->store);
  g_clear_object (&self->history);
  g_clear_pointer (&self->default_model, g_free);
  g_clear_pointer (&self->model_path, g_free);
  g_clear_pointer (&self->hf_models, g_ptr_array_unref);
  g_clear_pointer (&self->pareto_points, g_ptr_array_unref);
  g_mutex_clear (&self->estimator_lock);

  G_OBJECT_CLASS (bl_workbench_parent_class)->finalize (object);
}

/* The plan */

static BlPlanSnapshot *
snapshot_from_items (BlWorkbench *self)
{
  BlPlanSnapshot *plan = bl_plan_snapshot_new ();

  for (guint i = 0; self->items != NULL && i < self->items->len; i++)
    {
      BlLayerItem *item = g_ptr_array_index (self->items, i);

      bl_plan_snapshot_add (plan, bl_layer_item_get_name (item), bl_layer_item_get_weight_spec (item),
                            bl_layer_item_get_act_spec (item), bl_layer_item_get_algorithm (item));
    }
  return plan;
}

static double
plan_bits (BlWorkbench *self,
           double   *out_linear_bits,
           gint64   *out_linear_params)
{
  double total = 0, linear_bits = 0;
  gint64 linear_params = 0;

  for (guint i = 0; self->items != NULL && i < self->items->len; i++)
    {
      BlLayerItem *item = g_ptr_array_index (self->items, i);

      total += bl_layer_item_get_bits (item);
      if (bl_layer_item_get_quantizable (item))
        {
          linear_bits += bl_layer_item_get_bits (item);
          linear_params += bl_layer_item_get_n_params (item);
        }
    }
  *out_linear_bits = linear_bits;
  *out_linear_params = linear_params;
  return total;
}

typedef struct
{
  BlLayerItem *item;
  char *spec;
  BlErrorStats stats;
  gboolean ok;
} QsnrJob;

static void
qsnr_job_free (gpointer data)
{
  QsnrJob *j = data;

  g_object_unref (j->item);
  g_free (j->spec);
  g_free (j);
}

static void
qsnr_thread (GTask        *task,
             gpointer      source_object,
             gpointer      task_data,
             GCancellable *cancellable)
{
  GPtrArray *jobs = task_data;

  for (guint i = 0; i < jobs->len && !g_cancellable_is_cancelled (cancellable); i++)
    {
      QsnrJob *j = g_ptr_array_index (jobs, i);
      g_autoptr(BlLayerAnalysis) a = bl_layer_analysis_compute (bl_layer_item_get_layer (j->item), j->spec,
                                                                BL_ANALYSIS_ERROR, BL_GROUP_PICK_TYPICAL,
                                                                0, cancellable, NULL);

      if (a != NULL)
        {
          j->stats = a->error;
          j->ok = TRUE;
        }
    }
  g_task_return_boolean (task, TRUE);
}

static void
on_qsnr_done (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  GPtrArray *jobs = g_task_get_task_data (G_TASK (result));

  if (g_task_had_error (G_TASK (result)))
    return;
  /* An item whose spec changed meanwhile keeps waiting for the next batch. */
  for (guint i = 0; i < jobs->len; i++)
    {
      QsnrJob *j = g_ptr_array_index (jobs, i);

      if (j->ok && g_strcmp0 (j->spec, bl_layer_item_get_weight_spec (j->item)) == 0)
        bl_layer_item_set_error_stats (j->item, &j->stats);
    }
}

/* Computes the QSNR of every quantized layer that does not know its own yet. */
static void
update_qsnr (BlWorkbench *self)
{
  g_autoptr(GTask) task = NULL;
  GPtrArray *jobs = g_ptr_array_new_with_free_func (qsnr_job_free);

  cancel_and_clear (&self->qsnr_cancellable);
  for (guint i = 0; self->items != NULL && i < self->items->len; i++)
    {
      BlLayerItem *item = g_ptr_array_index (self->items, i);

      if (bl_layer_item_get_weight_spec (item) != NULL && isnan (bl_layer_item_get_qsnr (item)))
        {
          QsnrJob *j = g_new0 (QsnrJob, 1);

          j->item = g_object_ref (item);
          j->spec = g_strdup (bl_layer_item_get_weight_spec (item));
          g_ptr_array_add (jobs, j);
        }
    }
  if (jobs->len == 0)
    {
      g_ptr_array_unref (jobs);
      return;
    }
  self->qsnr_cancellable = g_cancellable_new ();
  task = g_task_new (self, self->qsnr_cancellable, on_qsnr_done, NULL);
  g_task_set_task_data (task, jobs, (GDestroyNotify) g_ptr_array_unref);
  g_task_set_return_on_cancel (task, FALSE);
  bl_application_hold_task (task);
  g_task_run_in_thread (task, qsnr_thread);
}

/* Δppl needs the unquantized model's perplexity on the same windows. While the plan is
 * empty the live measurement is that; otherwise a second measurement runs once. */
static void
ensure_baseline (BlWorkbench *self)
{
  BlMeasurementState state;

  if (self->baseline_measurement == NULL || !isnan (self->baseline_ppl)
      || bl_plan_snapshot_is_empty (bl_plan_history_get_current (self->history)))
    return;
  state = bl_measurement_get_state (self->baseline_measurement);
  if (state == BL_MEASUREMENT_RUNNING || state == BL_MEASUREMENT_PREPARING)
    return;
  {
    g_autoptr(BlPlanSnapshot) empty = bl_plan_snapshot_new ();
    g_autoptr(BlQuantPlan) plan = bl_plan_snapshot_to_quant_plan (empty, self->model, NULL);

    bl_measurement_start (self->baseline_measurement, empty, plan);
  }
}

static void start_measurement (BlWorkbench *self);

/**
 * bl_workbench_measure:
 * @self: a window
 *
 * Measures the current plan again (from the first window).
 */
void
bl_workbench_measure (BlWorkbench *self)
{
  g_return_if_fail (BL_IS_WORKBENCH (self));

  start_measurement (self);
}

static void
start_measurement (BlWorkbench *self)
{
  BlPlanSnapshot *snapshot = bl_plan_history_get_current (self->history);
  g_autoptr(BlQuantPlan) plan = NULL;
  g_autoptr(GError) error = NULL;

  if (self->measurement == NULL || !bl_measurement_has_text (self->measurement))
    return;
  plan = bl_plan_snapshot_to_quant_plan (snapshot, self->model, &error);
  if (plan == NULL)
    {
      bl_workbench_toast (self, "The plan cannot be measured: %s", error->message);
      bl_measurement_cancel (self->measurement);
      return;
    }
  bl_measurement_start (self->measurement, snapshot, plan);
}

/* Everything that follows a change of the plan, at once: sizes, QSNR, the measurement. */
static void
plan_changed (BlWorkbench *self,
              gboolean  record)
{
  g_autoptr(BlPlanSnapshot) plan = snapshot_from_items (self);

  if (record && !bl_plan_history_push (self->history, plan))
    return;
  update_summary (self);
  update_qsnr (self);
  start_measurement (self);
  ensure_baseline (self);
  update_estimate (self);
  rebuild_pareto (self);
  bl_workbench_update_actions (self);
}

/**
 * bl_workbench_restore_plan:
 * @self: a window with a model
 * @plan: the plan to show
 * @record: whether the change is a new step of the undo history (%FALSE for undo/redo)
 *
 * Sets every layer's specs from @plan; layers @plan does not name become unquantized.
 */
void
bl_workbench_restore_plan (BlWorkbench       *self,
                        BlPlanSnapshot *plan,
                        gboolean        record)
{
  g_return_if_fail (BL_IS_WORKBENCH (self));
  g_return_if_fail (plan != NULL);

  for (guint i = 0; self->items != NULL && i < self->items->len; i++)
    {
      BlLayerItem *item = g_ptr_array_index (self->items, i);
      const BlPlanEntry *e = bl_plan_snapshot_lookup (plan, bl_layer_item_get_name (item));

      bl_layer_item_set_plan (item, e ? e->weight_spec : NULL, e ? e->act_spec : NULL,
                              e ? e->algorithm : NULL);
    }
  plan_changed (self, record);
}

static gboolean
apply_to (BlWorkbench   *self,
          GPtrArray  *targets,
          const char *spec,
          const char *act_spec,
          const char *algorithm)
{
  gboolean changed = FALSE;

  for (guint i = 0; i < targets->len; i++)
    {
      BlLayerItem *item = g_ptr_array_index (targets, i);

      if (bl_layer_item_get_quantizable (item))
        changed |= bl_layer_item_set_plan (item, spec, act_spec, algorithm);
    }
  return changed;
}

/**
 * bl_workbench_apply:
 * @self: a window with a model
 * @scope: "selection", "type", "all" or "clear"
 *
 * Gives the picker's format to the selected layers, to every layer of the focused layer's
 * type, or to every linear layer; "clear" leaves the selected layers unquantized.
 *
 * Returns: the number of layers the scope covers
 */
guint
bl_workbench_apply (BlWorkbench   *self,
                 const char *scope)
{
  g_autoptr(GPtrArray) targets = NULL;
  const char *spec = bl_format_picker_get_spec (self->picker);
  const char *act = bl_format_picker_get_act_spec (self->picker);
  const char *algorithm = bl_format_picker_get_algorithm (self->picker);
  BlLayerItem *focus = bl_layer_browser_get_focus (self->browser);
  gboolean changed;

  g_return_val_if_fail (BL_IS_WORKBENCH (self), 0);

  if (self->items == NULL)
    return 0;
  if (g_str_equal (scope, "type"))
    {
      targets = g_ptr_array_new_with_free_func (g_object_unref);
      if (focus != NULL)
        for (guint i = 0; i < self->items->len; i++)
          {
            BlLayerItem *item = g_ptr_array_index (self->items, i);

            if (g_str_equal (bl_layer_item_get_type_key (item), bl_layer_item_get_type_key (focus)))
              g_ptr_array_add (targets, g_object_ref (item));
          }
    }
  else if (g_str_equal (scope, "all"))
    {
      targets = g_ptr_array_new_with_free_func (g_object_unref);
      for (guint i = 0; i < self->items->len; i++)
        g_ptr_array_add (targets, g_object_ref (g_ptr_array_index (self->items, i)));
    }
  else
    targets = bl_layer_browser_get_selected_layers (self->browser);

  if (g_str_equal (scope, "clear"))
    changed = apply_to (self, targets, NULL, NULL, NULL);
  else if (spec == NULL)
    return 0;
  else
    changed = apply_to (self, targets, spec, act, algorithm);
  if (changed)
    plan_changed (self, TRUE);
  return targets->len;
}

/* Sizes: what the picker's format would cost on the selection, and what the plan costs. */
static void
update_summary (BlWorkbench *self)
{
  g_autoptr(GPtrArray) selected = NULL;
  g_autoptr(GString) s = g_string_new (NULL);
  const char *spec = bl_format_picker_get_spec (self->picker);
  double linear_bits, total_bits;
  gint64 linear_params;
  BlFormatSpec fs;

  if (self->items == NULL)
    return;
  total_bits = plan_bits (self, &linear_bits, &linear_params);
  bl_metrics_bar_set_size (self->metrics_bar, linear_params ? linear_bits / linear_params : 0,
                           total_bits / 8e6, self->base_bits / 8e6);

  selected = bl_layer_browser_get_selected_layers (self->browser);
  if (spec == NULL || !bl_format_spec_parse (spec, &fs, NULL))
    {
      bl_format_picker_set_summary (self->picker, "<span foreground=\"#c01c28\">Not a valid spec; "
                                    "see the tooltip of the entry.</span>");
      return;
    }
  {
    double sel_bits = 0, all_bits = total_bits;
    gint64 sel_params = 0;
    guint n_sel = 0;

    for (guint i = 0; i < selected->len; i++)
      {
        BlLayerItem *item = g_ptr_array_index (selected, i);
        BlLayer *layer = bl_layer_item_get_layer (item);
        const BlTensor *t = bl_layer_get_tensor (layer);

        if (!bl_layer_item_get_quantizable (item))
          continue;
        n_sel++;
        sel_params += bl_layer_item_get_n_params (item);
        sel_bits += bl_format_spec_bits_for_shape (&fs, t->shape[0], t->shape[1]) * bl_layer_item_get_n_params (item);
      }
    for (guint i = 0; i < self->items->len; i++)
      {
        BlLayerItem *item = g_ptr_array_index (self->items, i);
        const BlTensor *t = bl_layer_get_tensor (bl_layer_item_get_layer (item));

        if (bl_layer_item_get_quantizable (item))
          all_bits += bl_format_spec_bits_for_shape (&fs, t->shape[0], t->shape[1]) * bl_layer_item_get_n_params (item)
                      - bl_layer_item_get_bits (item);
      }
    if (n_sel > 0)
      g_string_append_printf (s, "<b>%s</b> on %u selected layer%s: <b>%.3f bits/weight</b>, %.3f MB · ",
                              spec, n_sel, n_sel == 1 ? "" : "s", sel_bits / sel_params, sel_bits / 8e6);
    else
      g_string_append_printf (s, "<b>%s</b>: %.3f bits/weight for a full group · ", spec,
                              bl_format_spec_bits_per_weight (&fs));
    g_string_append_printf (s, "on every linear layer the model would be <b>%.2f MB</b> (%.0f%% of %.2f MB)",
                            all_bits / 8e6, 100.0 * all_bits / self->base_bits, self->base_bits / 8e6);
    bl_format_picker_set_summary (self->picker, s->str);
  }
}

static void
update_targets (BlWorkbench *self)
{
  g_autoptr(GPtrArray) selected = bl_layer_browser_get_selected_layers (self->browser);
  BlLayerItem *focus = bl_layer_browser_get_focus (self->browser);
  guint n = 0;
  BlLayerItem *only = NULL;

  for (guint i = 0; i < selected->len; i++)
    if (bl_layer_item_get_quantizable (g_ptr_array_index (selected, i)))
      {
        only = g_ptr_array_index (selected, i);
        n++;
      }
  bl_format_picker_set_target (self->picker, n, n == 1 ? bl_layer_item_get_title (only) : NULL,
                               focus && bl_layer_item_get_quantizable (focus)
                               ? bl_layer_item_get_type_key (focus) : NULL);
}

static void
on_selection_changed (BlWorkbench *self)
{
  update_targets (self);
  update_summary (self);
  bl_workbench_update_actions (self);
}

static void
on_focus_changed (BlWorkbench *self)
{
  BlLayerItem *focus = bl_layer_browser_get_focus (self->browser);

  /* A layer that has a format shows it in the picker; otherwise the picker keeps the
   * format being tried, previewed on this layer. */
  if (focus != NULL && bl_layer_item_get_weight_spec (focus) != NULL)
    {
      bl_format_picker_set_spec (self->picker, bl_layer_item_get_weight_spec (focus));
      bl_format_picker_set_act_spec (self->picker, bl_layer_item_get_act_spec (focus));
      bl_format_picker_set_algorithm (self->picker, bl_layer_item_get_algorithm (focus));
    }
  bl_distribution_view_set_layer (self->distribution, focus);
  update_targets (self);
}

static void
on_picker_spec_changed (BlWorkbench *self)
{
  const char *spec = bl_format_picker_get_spec (self->picker);

  if (spec != NULL)
    bl_distribution_view_set_spec (self->distribution, spec);
  update_summary (self);
  bl_workbench_update_actions (self);
}

/* The evaluation text */

typedef struct
{
  GArray *ids;
  char *name;
  char *path;
  char *sha256;
  char *kind;
} TextData;

static void
text_data_free (gpointer data)
{
  TextData *td = data;

  g_clear_pointer (&td->ids, g_array_unref);
  g_free (td->name);
  g_free (td->path);
  g_free (td->sha256);
  g_free (td->kind);
  g_free (td);
}

static void
text_thread (GTask        *task,
             gpointer      source_object,
             gpointer      task_data,
             GCancellable *cancellable)
{
  const char *spec = task_data;
  BlModel *model = g_object_get_data (G_OBJECT (task), "bl-model");
  BlTokenizer *tok = bl_model_get_tokenizer (model);
  g_autoptr(BlTextSource) source = NULL;
  GError *error = NULL;
  TextData *td;
  const char *text;
  gsize len;

  if (tok == NULL)
    {
      g_task_return_new_error (task, BL_ERROR, BL_ERROR_NOT_FOUND,
                               "%s has no tokenizer.json, so perplexity cannot be measured",
                               bl_model_get_path (model));
      return;
    }
  if (g_str_has_prefix (spec, "brown:"))
    {
      g_autofree char *dir = bl_brown_default_dir ();

      source = bl_brown_load_split (dir, spec + strlen ("brown:"), &error);
    }
  else
    source = bl_text_source_new_from_file (spec, bl_text_source_kind_from_path (spec), &error);
  if (source == NULL)
    {
      g_task_return_error (task, error);
      return;
    }
  if (g_task_return_error_if_cancelled (task))
    return;
  text = bl_text_source_get_protocol_text (source, BL_PROTOCOL_GPTQ, &len);
  td = g_new0 (TextData, 1);
  td->ids = bl_tokenizer_encode (tok, text, len, bl_tokenizer_get_add_bos (tok));
  td->name = g_strdup (bl_text_source_get_name (source));
  td->path = g_strdup (bl_text_source_get_path (source));
  td->sha256 = g_strdup (bl_text_source_get_sha256 (source));
  td->kind = g_strdup (bl_text_source_kind_to_string (bl_text_source_get_kind (source)));
  g_task_return_pointer (task, td, text_data_free);
}

static void
add_pareto_point (BlWorkbench    *self,
                  BlPlanSnapshot *plan,
                  double          ppl,
                  double          kl)
{
  double linear_bits;
  gint64 linear_params;

  for (guint i = 0; i < self->pareto_points->len; i++)
    {
      BlParetoPoint *old = g_ptr_array_index (self->pareto_points, i);

      if (old->plan != NULL && bl_plan_snapshot_equal (old->plan, plan))
        {
          g_ptr_array_remove_index (self->pareto_points, i);
          break;
        }
    }
  /* the plan's bits are the items' bits while the plan is current */
  plan_bits (self, &linear_bits, &linear_params);
  g_ptr_array_add (self->pareto_points,
                   bl_pareto_point_new (plan, linear_params ? linear_bits / linear_params : 0, ppl, kl));
  rebuild_pareto (self);
}

static void
on_measurement_progress (BlWorkbench      *self,
                         BlMeasurement *measurement)
{
  BlPlanSnapshot *plan = bl_measurement_get_plan (measurement);

  bl_workbench_update_actions (self);
  if (bl_measurement_get_state (measurement) != BL_MEASUREMENT_FINISHED || plan == NULL)
    return;
  /* the statistics and the sensitivities wait for the first number, so that the cores
   * are the measurement's while the user waits for it, and they run one after the other */
  if (!self->background_started)
    {
      self->background_started = TRUE;
      start_calibration (self);
    }
  if (bl_plan_snapshot_is_empty (plan))
    {
      self->baseline_ppl = bl_measurement_get_ppl (measurement);
      bl_metrics_bar_set_baseline (self->metrics_bar, self->baseline_ppl);
    }
  if (self->store != NULL)
    load_pareto (self, measurement);
  else if (measurement == self->measurement
           && bl_plan_snapshot_equal (plan, bl_plan_history_get_current (self->history)))
    {
      BlKlSummary kl;

      add_pareto_point (self, plan, bl_measurement_get_ppl (measurement),
                        bl_plan_snapshot_is_empty (plan) ? 0.0
                        : bl_measurement_get_kl (measurement, &kl) ? kl.kl : NAN);
    }
}

static void
calib_progress (int      done,
                int      total,
                gpointer user_data)
{
}

static void
calib_thread (GTask        *task,
              gpointer      source_object,
              gpointer      task_data,
              GCancellable *cancellable)
{
  BlModel *model = g_object_get_data (G_OBJECT (task), "bl-model");
  GArray *ids = task_data;
  BlCalibOptions opts = { 0 };
  g_autoptr(GArray) windows = NULL;
  BlBackend *backend;
  BlCalib *calib;
  GError *error = NULL;
  int ctx = MIN (256, bl_model_get_config (model)->max_position_embeddings);

  windows = bl_calib_make_windows (ids->len, ctx, CALIB_WINDOWS, 0, &error);
  if (windows == NULL)
    {
      g_task_return_error (task, error);
      return;
    }
  backend = bl_backend_new ("cpu", 1, &error);
  if (backend == NULL)
    {
      g_task_return_error (task, error);
      return;
    }
  opts.flags = BL_CALIB_ACT_STATS;
  calib = bl_calib_collect (model, backend, (const int32_t *) ids->data, ids->len, windows, &opts,
                            cancellable, calib_progress, NULL, &error);
  bl_backend_free (backend);
  if (calib == NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, calib, (GDestroyNotify) bl_calib_free);
}

static void
on_calib_done (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  BlWorkbench *self = BL_WORKBENCH (source);
  g_autoptr(GError) error = NULL;
  BlCalib *calib = g_task_propagate_pointer (G_TASK (result), &error);

  if (calib == NULL)
    {
      if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        {
          bl_distribution_view_set_calib_status (self->distribution, error->message);
          start_sensitivity (self);
        }
      return;
    }
  start_sensitivity (self);
  bl_distribution_view_set_calib (self->distribution, NULL);
  g_clear_pointer (&self->calib, bl_calib_free);
  self->calib = calib;
  bl_distribution_view_set_calib (self->distribution, calib);
  {
    const char *dataset;
    guint64 seed;
    int n_windows, ctx;
    g_autofree char *status = NULL;

    bl_calib_get_provenance (calib, &dataset, &seed, &n_windows, &ctx);
    status = g_strdup_printf ("Inputs from one calibration pass: %d windows of %d tokens of %s.",
                              n_windows, ctx, dataset ? dataset : "the evaluation text");
    bl_distribution_view_set_calib_status (self->distribution, status);
  }
}

static void
start_calibration (BlWorkbench *self)
{
  g_autoptr(GTask) task = NULL;

  cancel_and_clear (&self->calib_cancellable);
  self->calib_cancellable = g_cancellable_new ();
  bl_distribution_view_set_calib_status (self->distribution, "Calibrating on the evaluation text…");
  task = g_task_new (self, self->calib_cancellable, on_calib_done, NULL);
  g_object_set_data_full (G_OBJECT (task), "bl-model", g_object_ref (self->model), g_object_unref);
  g_task_set_task_data (task, g_array_ref (self->ids), (GDestroyNotify) g_array_unref);
  g_task_set_return_on_cancel (task, FALSE);
  bl_application_hold_task (task);
  g_task_run_in_thread (task, calib_thread);
}

static int
n_threads (BlWorkbench *self)
{
  int n = g_settings_get_int (self->settings, "threads");

  /* one core stays with the interface */
  if (n <= 0)
    n = MAX (1, (int) g_get_num_processors () - 1);
  return n;
}

static void
apply_eval_settings (BlWorkbench   *self,
                     BlMeasurement *m)
{
  g_autofree char *backend = g_settings_get_string (self->settings, "backend");

  bl_measurement_set_options (m, g_settings_get_int (self->settings, "eval-ctx"),
                              g_settings_get_int (self->settings, "eval-windows"));
  bl_measurement_set_backend (m, backend);
}

/* A new window length, window count or backend applies from the next measurement on; the
 * baseline is measured again too, so that Δppl compares numbers of the same windows and the
 * same arithmetic. */
static void
on_eval_settings_changed (BlWorkbench *self)
{
  BlMeasurement *ms[] = { self->measurement, self->baseline_measurement };

  for (guint i = 0; i < G_N_ELEMENTS (ms); i++)
    if (ms[i] != NULL)
      {
        bl_measurement_cancel (ms[i]);
        apply_eval_settings (self, ms[i]);
      }
  /* the old baseline was measured on other windows */
  self->baseline_ppl = NAN;
  bl_metrics_bar_set_baseline (self->metrics_bar, NAN);
  start_measurement (self);
  ensure_baseline (self);
}

/* The user asked for a backend that cannot start: say so once, while the measurement
 * carries on on the CPU (the metrics bar keeps the reason in its tooltip). */
static void
on_backend_message (BlWorkbench   *self,
                    GParamSpec    *pspec,
                    BlMeasurement *m)
{
  const char *message = bl_measurement_get_backend_message (m);

  if (message != NULL)
    bl_workbench_toast (self, "The CUDA backend is not available, so measurements run on the CPU: %s", message);
}

static BlMeasurement *
new_measurement (BlWorkbench *self,
                 TextData *td)
{
  BlMeasurement *m = bl_measurement_new (self->model, n_threads (self));

  bl_measurement_set_text (m, td->ids, td->name, td->path, td->sha256, td->kind);
  apply_eval_settings (self, m);
  bl_measurement_set_store (m, self->store);
  g_signal_connect_swapped (m, "progress", G_CALLBACK (on_measurement_progress), self);
  return m;
}

static void
on_text_ready (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  BlWorkbench *self = BL_WORKBENCH (source);
  g_autoptr(GError) error = NULL;
  TextData *td = g_task_propagate_pointer (G_TASK (result), &error);

  if (td == NULL)
    {
      if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        {
          bl_workbench_toast (self, "No perplexity: %s", error->message);
          bl_distribution_view_set_calib_status (self->distribution, error->message);
        }
      return;
    }
  self->ids = g_array_ref (td->ids);
  self->measurement = new_measurement (self, td);
  self->baseline_measurement = new_measurement (self, td);
  g_signal_connect_object (self->measurement, "notify::backend-message", G_CALLBACK (on_backend_message), self,
                           G_CONNECT_SWAPPED);
  bl_metrics_bar_set_measurement (self->metrics_bar, self->measurement);
  start_measurement (self);
  ensure_baseline (self);
  g_free (self->text_name);
  self->text_name = g_strdup (td->name);
  g_free (self->text_sha256);
  self->text_sha256 = g_strdup (td->sha256);
  self->background_started = FALSE;
  bl_distribution_view_set_calib_status (self->distribution,
                                         "The inputs' statistics are collected after the first perplexity.");
  text_data_free (td);
}

static void
start_text (BlWorkbench *self)
{
  g_autoptr(GTask) task = NULL;

  cancel_and_clear (&self->text_cancellable);
  self->text_cancellable = g_cancellable_new ();
  task = g_task_new (self, self->text_cancellable, on_text_ready, NULL);
  g_object_set_data_full (G_OBJECT (task), "bl-model", g_object_ref (self->model), g_object_unref);
  g_task_set_task_data (task, g_settings_get_string (self->settings, "eval-text"), g_free);
  bl_application_hold_task (task);
  g_task_run_in_thread (task, text_thread);
}

/* Sensitivity and the instant estimate */

/* The format whose one-at-a-time KL defines each layer's sensitivity: a 4-bit block format
 * moves every layer's output enough to measure, and the estimator scales from it to any
 * other format through the layers' own errors (bl-estimator.h). */
#define SENSITIVITY_SPEC "mxfp4"

typedef struct
{
  BlEstimator *estimator;
  GMutex *lock;
  GHashTable *specs;         /* layer → weight spec */
  BlPlanSnapshot *plan;
  BlEstimate estimate;
} EstimateTask;

static void
estimate_task_free (gpointer data)
{
  EstimateTask *t = data;

  g_clear_object (&t->estimator);
  g_clear_pointer (&t->specs, g_hash_table_unref);
  g_clear_pointer (&t->plan, bl_plan_snapshot_unref);
  g_free (t);
}

static void
estimate_thread (GTask        *task,
                 gpointer      source_object,
                 gpointer      task_data,
                 GCancellable *cancellable)
{
  EstimateTask *t = task_data;
  GError *error = NULL;
  gboolean ok;

  /* the first prediction of a (layer, format) pair fake-quantizes the layer */
  g_mutex_lock (t->lock);
  ok = bl_estimator_predict (t->estimator, t->specs, &t->estimate, &error);
  g_mutex_unlock (t->lock);
  if (ok)
    g_task_return_boolean (task, TRUE);
  else
    g_task_return_error (task, error);
}

static void
on_estimated (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  BlWorkbench *self = BL_WORKBENCH (source);
  EstimateTask *t = g_task_get_task_data (G_TASK (result));
  g_autoptr(GError) error = NULL;

  if (!g_task_propagate_boolean (G_TASK (result), &error))
    {
      if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        g_message ("no estimate: %s", error->message);
      return;
    }
  if (self->history != NULL && bl_plan_snapshot_equal (t->plan, bl_plan_history_get_current (self->history)))
    bl_metrics_bar_set_estimate (self->metrics_bar, t->estimate.dppl);
}

/* The estimated Δppl of the current plan's weights, from the sensitivities. */
static void
update_estimate (BlWorkbench *self)
{
  BlPlanSnapshot *plan = bl_plan_history_get_current (self->history);
  g_autoptr(GTask) task = NULL;
  EstimateTask *t;

  cancel_and_clear (&self->estimate_cancellable);
  if (self->estimator == NULL)
    return;
  t = g_new0 (EstimateTask, 1);
  t->estimator = g_object_ref (self->estimator);
  t->lock = &self->estimator_lock;
  t->plan = bl_plan_snapshot_ref (plan);
  t->specs = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  for (guint i = 0; i < bl_plan_snapshot_get_n_entries (plan); i++)
    {
      const BlPlanEntry *e = bl_plan_snapshot_get_entry (plan, i);

      if (e->weight_spec != NULL)
        g_hash_table_insert (t->specs, g_strdup (e->layer), g_strdup (e->weight_spec));
    }
  self->estimate_cancellable = g_cancellable_new ();
  task = g_task_new (self, self->estimate_cancellable, on_estimated, NULL);
  g_task_set_task_data (task, t, estimate_task_free);
  bl_application_hold_task (task);
  g_task_run_in_thread (task, estimate_thread);
}

typedef struct
{
  BlModel *model;
  GArray *ids;
  char *text_name;
  char *text_sha256;
  BlStore *store;
  GMainContext *context;
  BlWorkbench *self;         /* for progress only; a ref is held by the task */
  BlBackend *backend;
  BlSensitivity *sensitivity;
  BlEstimator *estimator;
  GPtrArray *layers;         /* BlLayerSensitivity */
} SensitivityTask;

static void
sensitivity_task_free (gpointer data)
{
  SensitivityTask *t = data;

  g_clear_object (&t->estimator);
  g_clear_object (&t->sensitivity);
  g_clear_pointer (&t->backend, bl_backend_free);
  g_clear_pointer (&t->layers, g_ptr_array_unref);
  g_clear_object (&t->model);
  g_clear_pointer (&t->ids, g_array_unref);
  g_free (t->text_name);
  g_free (t->text_sha256);
  g_clear_object (&t->store);
  g_clear_pointer (&t->context, g_main_context_unref);
  g_free (t);
}

typedef struct
{
  BlWorkbench *self;
  char *text;
} StatusMsg;

static gboolean
show_sensitivity_status (gpointer data)
{
  StatusMsg *m = data;

  bl_layer_browser_set_note (m->self->browser, m->text);
  return G_SOURCE_REMOVE;
}

static void
status_msg_free (gpointer data)
{
  StatusMsg *m = data;

  g_object_unref (m->self);
  g_free (m->text);
  g_free (m);
}

static void
sensitivity_progress (const char *stage,
                      int         done,
                      int         total,
                      gpointer    user_data)
{
  SensitivityTask *t = user_data;
  StatusMsg *m = g_new0 (StatusMsg, 1);

  m->self = g_object_ref (t->self);
  m->text = g_strdup_printf ("sensitivity: %s %d/%d", g_str_equal (stage, "layers") ? "layer" : stage,
                             done, total);
  g_main_context_invoke_full (t->context, G_PRIORITY_DEFAULT, show_sensitivity_status, m, status_msg_free);
}

static void
sensitivity_thread (GTask        *task,
                    gpointer      source_object,
                    gpointer      task_data,
                    GCancellable *cancellable)
{
  SensitivityTask *t = task_data;
  BlSensitivityOptions opts = { 0 };
  GError *error = NULL;

  opts.n_threads = 1;
  opts.dataset_name = t->text_name;
  opts.dataset_sha256 = t->text_sha256;
  t->backend = bl_backend_new ("cpu", 1, &error);
  if (t->backend == NULL)
    {
      g_task_return_error (task, error);
      return;
    }
  t->sensitivity = bl_sensitivity_new (t->model, t->backend, (const int32_t *) t->ids->data, t->ids->len,
                                       &opts, &error);
  if (t->sensitivity == NULL)
    {
      g_task_return_error (task, error);
      return;
    }
  if (t->store != NULL)
    bl_sensitivity_set_store (t->sensitivity, t->store);
  bl_sensitivity_set_progress (t->sensitivity, sensitivity_progress, t);
  if (!bl_sensitivity_prepare (t->sensitivity, cancellable, &error)
      || (t->layers = bl_sensitivity_compute (t->sensitivity, SENSITIVITY_SPEC, TRUE, cancellable, &error)) == NULL
      || (t->estimator = bl_estimator_new (t->sensitivity, &error)) == NULL)
    {
      g_task_return_error (task, error);
      return;
    }
  /* plans measured over the same budget before (bitlens-cli sensitivity) calibrate it */
  if (t->store != NULL && bl_estimator_load_samples (t->estimator, t->store, NULL) >= 2)
    bl_estimator_fit (t->estimator, NULL, NULL);
  bl_sensitivity_set_progress (t->sensitivity, NULL, NULL);
  g_task_return_boolean (task, TRUE);
}

static void
on_sensitivity_done (GObject      *source,
                     GAsyncResult *result,
                     gpointer      user_data)
{
  BlWorkbench *self = BL_WORKBENCH (source);
  SensitivityTask *t = g_task_get_task_data (G_TASK (result));
  g_autoptr(GError) error = NULL;
  double max_kl = 0;

  if (!g_task_propagate_boolean (G_TASK (result), &error))
    {
      if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        {
          g_autofree char *note = g_strdup_printf ("no sensitivity: %s", error->message);

          bl_layer_browser_set_note (self->browser, note);
        }
      return;
    }
  for (guint i = 0; i < t->layers->len; i++)
    {
      const BlLayerSensitivity *ls = g_ptr_array_index (t->layers, i);

      if (isfinite (ls->kl))
        max_kl = MAX (max_kl, ls->kl);
    }
  bl_layer_browser_set_sensitivity_scale (self->browser, max_kl);
  for (guint i = 0; i < t->layers->len; i++)
    {
      const BlLayerSensitivity *ls = g_ptr_array_index (t->layers, i);
      BlLayerItem *item = g_hash_table_lookup (self->items_by_name, ls->name);

      if (item != NULL && isfinite (ls->kl))
        bl_layer_item_set_sensitivity (item, ls->kl);
    }
  bl_layer_browser_set_note (self->browser, "sensitivity: output KL with one layer in " SENSITIVITY_SPEC);
  /* the sensitivity's engine borrows the backend, and a queued estimate may hold the
   * estimator (and through it the sensitivity) after the model is dropped: the backend
   * lives exactly as long as the sensitivity (its qdata is cleared after its finalize) */
  g_object_set_data_full (G_OBJECT (t->sensitivity), "bitlens-backend", g_steal_pointer (&t->backend),
                          (GDestroyNotify) bl_backend_free);
  self->sensitivity = g_steal_pointer (&t->sensitivity);
  self->estimator = g_steal_pointer (&t->estimator);
  update_estimate (self);
}

/* One-at-a-time KL of every linear layer over a small budget of the evaluation text, in the
 * background; cached in the store, so a model seen before is instant. */
static void
start_sensitivity (BlWorkbench *self)
{
  g_autoptr(GTask) task = NULL;
  SensitivityTask *t = g_new0 (SensitivityTask, 1);

  cancel_and_clear (&self->sensitivity_cancellable);
  self->sensitivity_cancellable = g_cancellable_new ();
  t->model = g_object_ref (self->model);
  t->ids = g_array_ref (self->ids);
  t->text_name = g_strdup (self->text_name);
  t->text_sha256 = g_strdup (self->text_sha256);
  t->store = self->store ? g_object_ref (self->store) : NULL;
  t->context = g_main_context_ref_thread_default ();
  t->self = self;
  task = g_task_new (self, self->sensitivity_cancellable, on_sensitivity_done, NULL);
  g_task_set_task_data (task, t, sensitivity_task_free);
  g_task_set_return_on_cancel (task, FALSE);
  bl_application_hold_task (task);
  g_task_run_in_thread (task, sensitivity_thread);
}

/* The Pareto points from the store: every finished run of this model on the same windows
 * (text, protocol, context, window count), the latest run of each plan. */

typedef struct
{
  BlStore *store;
  BlModel *model;
  char *sha256;
  int ctx;
  int n_windows;
  GPtrArray *points;         /* BlParetoPoint */
} ParetoQuery;

static void
pareto_query_free (gpointer data)
{
  ParetoQuery *q = data;

  g_clear_object (&q->store);
  g_clear_object (&q->model);
  g_free (q->sha256);
  g_clear_pointer (&q->points, g_ptr_array_unref);
  g_free (q);
}

/* A plan as the store or a sweep file keeps it (JSON; %NULL for the unquantized model),
 * with its bits per weight over the linear layers computed as the window computes them. */
static BlPlanSnapshot *
snapshot_from_json (const char *plan_json,
                    const char *origin,
                    BlModel    *model,
                    double     *out_bpw,
                    GError    **error)
{
  g_autoptr(BlQuantPlan) plan = NULL;
  g_autoptr(GPtrArray) resolved = NULL;
  BlQuantSize size;

  if (plan_json != NULL)
    plan = bl_quant_plan_new_from_json (plan_json, -1, origin, error);
  else if ((plan = bl_quant_plan_new ()) != NULL
           && !bl_quant_plan_set_defaults (plan, BL_QUANT_PLAN_NONE, BL_QUANT_PLAN_NONE, NULL, NULL, error))
    return NULL;
  if (plan == NULL || (resolved = bl_quant_plan_resolve (plan, model, error)) == NULL)
    return NULL;
  bl_quant_plan_size (resolved, model, &size);
  *out_bpw = size.linear_bits_per_weight;
  return bl_plan_snapshot_new_from_quant_plan (plan, model, error);
}

static BlParetoPoint *
point_from_run (const BlStoredRun *r,
                BlModel           *model,
                BlStore           *store)
{
  g_autoptr(BlPlanSnapshot) snapshot = NULL;
  BlRunQuantRecord rec;
  double bpw, kl;

  snapshot = snapshot_from_json (r->plan_json, "stored run", model, &bpw, NULL);
  if (snapshot == NULL)
    return NULL;
  /* the full-precision model is its own baseline; a quantized run has its KL beside it
   * when the baseline was cached (bl-kl.h) */
  if (bl_plan_snapshot_is_empty (snapshot))
    kl = 0.0;
  else
    kl = bl_kl_store_get_run (store, r->id, &rec, NULL) ? rec.kl.kl : NAN;
  return bl_pareto_point_new (snapshot, bpw, r->ppl, kl);
}

static void
pareto_thread (GTask        *task,
               gpointer      source_object,
               gpointer      task_data,
               GCancellable *cancellable)
{
  ParetoQuery *q = task_data;
  g_autoptr(GPtrArray) runs = NULL;
  GError *error = NULL;

  runs = bl_store_list_runs (q->store, bl_model_get_fingerprint (q->model), &error);
  if (runs == NULL)
    {
      g_task_return_error (task, error);
      return;
    }
  q->points = g_ptr_array_new_with_free_func ((GDestroyNotify) bl_pareto_point_free);
  /* newest first, so the first run of a plan seen is the one kept */
  for (guint i = runs->len; i-- > 0 && !g_cancellable_is_cancelled (cancellable);)
    {
      const BlStoredRun *r = g_ptr_array_index (runs, i);
      BlParetoPoint *p;
      gboolean seen = FALSE;

      if (g_strcmp0 (r->status, "finished") != 0 || g_strcmp0 (r->dataset_sha256, q->sha256) != 0
          || g_strcmp0 (r->protocol, "gptq") != 0 || r->ctx != q->ctx || r->n_windows != q->n_windows
          || !isfinite (r->ppl) || (p = point_from_run (r, q->model, q->store)) == NULL)
        continue;
      for (guint k = 0; k < q->points->len && !seen; k++)
        seen = bl_plan_snapshot_equal (((BlParetoPoint *) g_ptr_array_index (q->points, k))->plan, p->plan);
      if (seen)
        bl_pareto_point_free (p);
      else
        g_ptr_array_add (q->points, p);
    }
  g_task_return_boolean (task, TRUE);
}

static void
on_pareto_loaded (GObject      *source,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  BlWorkbench *self = BL_WORKBENCH (source);
  ParetoQuery *q = g_task_get_task_data (G_TASK (result));
  g_autoptr(GError) error = NULL;

  if (!g_task_propagate_boolean (G_TASK (result), &error))
    {
      if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        g_message ("could not read the stored runs: %s", error->message);
      return;
    }
  if (q->model != self->model)
    return;
  g_ptr_array_set_size (self->pareto_points, 0);
  g_ptr_array_extend_and_steal (self->pareto_points, g_steal_pointer (&q->points));
  rebuild_pareto (self);
}

static void
load_pareto (BlWorkbench   *self,
             BlMeasurement *measurement)
{
  g_autoptr(GTask) task = NULL;
  ParetoQuery *q;

  cancel_and_clear (&self->pareto_cancellable);
  self->pareto_cancellable = g_cancellable_new ();
  q = g_new0 (ParetoQuery, 1);
  q->store = g_object_ref (self->store);
  q->model = g_object_ref (self->model);
  q->sha256 = g_strdup (self->text_sha256);
  q->ctx = bl_measurement_get_ctx (measurement);
  q->n_windows = (int) bl_measurement_get_n_windows (measurement);
  task = g_task_new (self, self->pareto_cancellable, on_pareto_loaded, NULL);
  g_task_set_task_data (task, q, pareto_query_free);
  bl_application_hold_task (task);
  g_task_run_in_thread (task, pareto_thread);
}

/* A sweep file's points beside the runs */

typedef struct
{
  BlModel *model;
  char *path;
  GPtrArray *points;         /* BlParetoPoint */
} SweepQuery;

static void
sweep_query_free (gpointer data)
{
  SweepQuery *q = data;

  g_clear_object (&q->model);
  g_free (q->path);
  g_clear_pointer (&q->points, g_ptr_array_unref);
  g_free (q);
}

static void
sweep_thread (GTask        *task,
              gpointer      source_object,
              gpointer      task_data,
              GCancellable *cancellable)
{
  SweepQuery *q = task_data;
  g_autoptr(BlSweep) sweep = NULL;
  g_autoptr(GPtrArray) points = NULL;
  GError *error = NULL;

  if ((sweep = bl_sweep_open_existing (q->path, &error)) == NULL
      || (points = bl_sweep_list_points (sweep, &error)) == NULL)
    {
      g_task_return_error (task, error);
      return;
    }
  if (g_strcmp0 (bl_sweep_get_model_fingerprint (sweep), bl_model_get_fingerprint (q->model)) != 0)
    {
      g_task_return_new_error (task, BL_ERROR, BL_ERROR_INVALID_ARGUMENT,
                               "%s is a sweep of another model (fingerprint %s, not %s)", q->path,
                               bl_sweep_get_model_fingerprint (sweep), bl_model_get_fingerprint (q->model));
      return;
    }
  q->points = g_ptr_array_new_with_free_func ((GDestroyNotify) bl_pareto_point_free);
  for (guint i = 0; i < points->len; i++)
    {
      const BlSweepPoint *sp = g_ptr_array_index (points, i);
      g_autoptr(BlPlanSnapshot) snapshot = NULL;
      g_autofree char *origin = NULL;
      double bpw;

      if (!sp->measured)
        continue;
      origin = g_strdup_printf ("%s, point %s", q->path, sp->key);
      snapshot = snapshot_from_json (sp->plan_json, origin, q->model, &bpw, &error);
      if (snapshot == NULL)
        {
          g_task_return_error (task, error);
          return;
        }
      /* the sweep records the mean NLL in nats per token: ppl = exp(NLL) */
      g_ptr_array_add (q->points, bl_pareto_point_new (snapshot, bpw, exp (sp->nll), sp->kl));
    }
  g_task_return_boolean (task, TRUE);
}

static void
on_sweep_loaded (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  BlWorkbench *self = BL_WORKBENCH (source);
  SweepQuery *q = g_task_get_task_data (G_TASK (result));
  g_autoptr(GError) error = NULL;
  g_autofree char *name = NULL;

  if (!g_task_propagate_boolean (G_TASK (result), &error))
    {
      if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        bl_workbench_toast (self, "Could not read the sweep: %s", error->message);
      return;
    }
  if (q->model != self->model)
    return;
  name = g_path_get_basename (q->path);
  bl_pareto_view_set_sweep (self->pareto_view, name, q->points);
  bl_workbench_toast (self, "Added %u points of %s", q->points->len, name);
}

/**
 * bl_workbench_open_sweep:
 * @self: a window with a model
 * @path: a sweep file of this model (bitlens-cli sweep)
 *
 * Reads the sweep's measured points in the background and shows them on the Pareto plot
 * beside the stored runs; a click on one restores its plan.
 */
void
bl_workbench_open_sweep (BlWorkbench *self,
                         const char  *path)
{
  g_autoptr(GTask) task = NULL;
  SweepQuery *q;

  g_return_if_fail (BL_IS_WORKBENCH (self));
  g_return_if_fail (path != NULL);

  if (self->model == NULL)
    return;
  q = g_new0 (SweepQuery, 1);
  q->model = g_object_ref (self->model);
  q->path = g_strdup (path);
  task = g_task_new (self, NULL, on_sweep_loaded, NULL);
  g_task_set_task_data (task, q, sweep_query_free);
  bl_application_hold_task (task);
  g_task_run_in_thread (task, sweep_thread);
}

/* The Pareto plot */

static void
rebuild_pareto (BlWorkbench *self)
{
  double linear_bits;
  gint64 linear_params;

  plan_bits (self, &linear_bits, &linear_params);
  bl_pareto_view_set_n_params (self->pareto_view, linear_params);
  bl_pareto_view_set_runs (self->pareto_view, self->pareto_points);
  bl_pareto_view_set_current (self->pareto_view, self->history ? bl_plan_history_get_current (self->history) : NULL);
}

static void
on_pareto_point (BlWorkbench   *self,
                 BlParetoPoint *p)
{
  g_autofree char *what = bl_plan_snapshot_describe (p->plan);
  g_autoptr(BlPlanSnapshot) plan = bl_plan_snapshot_ref (p->plan);
  double bpw = p->bpw, ppl = p->ppl;

  /* restoring rebuilds the view, which may drop @p */
  bl_workbench_restore_plan (self, plan, TRUE);
  if (isfinite (ppl))
    bl_workbench_toast (self, "Restored %s (%.3f bits/weight, ppl %.2f)", what, bpw, ppl);
  else
    bl_workbench_toast (self, "Restored %s (%.3f bits/weight)", what, bpw);
}

/* Loading a model */

static void
add_recent (BlWorkbench   *self,
            const char *path)
{
  g_auto(GStrv) old = g_settings_get_strv (self->settings, "recent-models");
  g_autoptr(GStrvBuilder) b = g_strv_builder_new ();
  g_auto(GStrv) recent = NULL;
  guint n = 1;

  /* already first: nothing to write */
  if (old[0] != NULL && g_str_equal (old[0], path))
    return;
  g_strv_builder_add (b, path);
  for (guint i = 0; old[i] != NULL && n < MAX_RECENT; i++)
    if (!g_str_equal (old[i], path))
      {
        g_strv_builder_add (b, old[i]);
        n++;
      }
  recent = g_strv_builder_end (b);
  g_settings_set_strv (self->settings, "recent-models", (const char *const *) recent);
}

static char *
group_title (int        block,
             BlLayerKind kind)
{
  if (block >= 0)
    return g_strdup_printf ("Block %d", block);
  return g_strdup (kind == BL_LAYER_EMBEDDING ? "Embedding" : "Output");
}

static void
build_items (BlWorkbench *self)
{
  GListModel *layers = G_LIST_MODEL (self->model);
  BlLayerItem *group = NULL;
  g_autofree char *group_name = NULL;

  self->groups = g_list_store_new (BL_TYPE_LAYER_ITEM);
  self->items = g_ptr_array_new_with_free_func (g_object_unref);
  self->items_by_name = g_hash_table_new (g_str_hash, g_str_equal);
  self->base_bits = 0;

  for (guint i = 0; i < g_list_model_get_n_items (layers); i++)
    {
      g_autoptr(BlLayer) layer = g_list_model_get_item (layers, i);
      g_autofree char *title = group_title (bl_layer_get_block (layer), bl_layer_get_kind (layer));
      BlLayerItem *item = bl_layer_item_new_layer (layer);

      if (group == NULL || !g_str_equal (title, group_name))
        {
          g_autoptr(BlLayerItem) g = bl_layer_item_new_group (title, bl_layer_get_block (layer));

          g_list_store_append (self->groups, g);
          group = g;
          g_free (group_name);
          group_name = g_strdup (title);
        }
      bl_layer_item_add_child (group, item);
      g_ptr_array_add (self->items, item);
      g_hash_table_insert (self->items_by_name, (gpointer) bl_layer_item_get_name (item), item);
      self->base_bits += bl_layer_item_get_bits (item);
    }
}

static char *
display_name (const char *path)
{
  g_autofree char *base = g_path_get_basename (path);
  g_autofree char *parent = g_path_get_dirname (path);
  g_autofree char *grand = g_path_get_dirname (parent);
  g_autofree char *repo = g_path_get_basename (grand);

  /* an HF cache snapshot: models--ORG--NAME/snapshots/REV */
  if (g_str_has_prefix (repo, "models--"))
    {
      g_auto(GStrv) parts = g_strsplit (repo + strlen ("models--"), "--", -1);

      return g_strjoinv ("/", parts);
    }
  return g_steal_pointer (&base);
}

static void
show_model (BlWorkbench *self)
{
  const BlModelConfig *config = bl_model_get_config (self->model);
  g_autofree char *name = display_name (self->model_path);
  g_autofree char *subtitle = NULL;
  g_autoptr(BlPlanSnapshot) empty = bl_plan_snapshot_new ();

  build_items (self);
  bl_layer_browser_set_groups (self->browser, G_LIST_MODEL (self->groups));
  bl_scaling_view_set_model (self->scaling_view, self->model);
  bl_plan_history_reset (self->history, empty);

  subtitle = g_strdup_printf ("%s · %s · %d blocks · %.2fM parameters", name,
                              config->model_type ? config->model_type : "model", config->n_layers,
                              bl_model_get_n_params (self->model) / 1e6);
  adw_window_title_set_subtitle (self->window_title, subtitle);
  gtk_window_set_title (GTK_WINDOW (self), name);
  gtk_stack_set_visible_child_name (self->main_stack, "workbench");
  /* the bar has nothing to say before a model is open */
  gtk_widget_set_visible (GTK_WIDGET (self->metrics_bar), TRUE);

  /* the first linear layer, so the distribution view has something to show */
  for (guint i = 0; i < self->items->len; i++)
    {
      BlLayerItem *item = g_ptr_array_index (self->items, i);

      if (bl_layer_item_get_quantizable (item))
        {
          bl_layer_browser_select_layer (self->browser, bl_layer_item_get_name (item));
          break;
        }
    }
  update_summary (self);
  rebuild_pareto (self);
  bl_workbench_update_actions (self);
  start_text (self);
}

static void
on_model_loaded (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  g_autoptr(BlWorkbench) self = user_data;
  g_autoptr(GError) error = NULL;
  BlModel *model = bl_model_load_finish (result, &error);

  g_clear_handle_id (&self->pulse_source, g_source_remove);
  g_clear_object (&self->load_cancellable);
  if (model == NULL)
    {
      gtk_stack_set_visible_child_name (self->main_stack, self->model ? "workbench" : "welcome");
      if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        bl_workbench_toast (self, "Could not open the model: %s", error->message);
      bl_workbench_update_actions (self);
      return;
    }
  drop_model (self);
  self->model = model;
  g_free (self->model_path);
  self->model_path = g_strdup (bl_model_get_path (model));
  add_recent (self, self->model_path);
  show_model (self);
}

/* The file chooser's filter matches the suffix in any case, so this does too. */
static gboolean
is_gguf_name (const char *path)
{
  size_t n = strlen (path);

  return n > strlen (".gguf") && g_ascii_strcasecmp (path + n - strlen (".gguf"), ".gguf") == 0;
}

static gboolean
pulse (gpointer data)
{
  BlWorkbench *self = data;

  gtk_progress_bar_pulse (self->load_progress);
  return G_SOURCE_CONTINUE;
}

/**
 * bl_workbench_open:
 * @self: a window
 * @path: a model directory, a GGUF file (its name ends in ".gguf"), or another file inside
 *   a model directory
 *
 * Loads the model in the background with a progress bar and a cancel button; the workbench
 * shows it when it is loaded, and the measurement starts.
 */
void
bl_workbench_open (BlWorkbench   *self,
                const char *path)
{
  g_autofree char *dir = NULL;
  g_autofree char *label = NULL;

  g_return_if_fail (BL_IS_WORKBENCH (self));
  g_return_if_fail (path != NULL);

  /* a dropped config.json or safetensors file stands for its folder; a GGUF file is a model */
  if (g_file_test (path, G_FILE_TEST_IS_DIR) || is_gguf_name (path))
    dir = g_strdup (path);
  else
    dir = g_path_get_dirname (path);
  cancel_and_clear (&self->load_cancellable);
  self->load_cancellable = g_cancellable_new ();
  label = g_strdup_printf ("Loading %s", dir);
  gtk_label_set_text (self->load_label, label);
  gtk_stack_set_visible_child_name (self->main_stack, "loading");
  if (self->pulse_source == 0)
    self->pulse_source = g_timeout_add (100, pulse, self);
  bl_model_load_async (dir, self->load_cancellable, on_model_loaded, g_object_ref (self));
  bl_workbench_update_actions (self);
}

/* The welcome page and the models menu */

static GtkWidget *
model_row (const char *title,
           const char *subtitle,
           const char *path)
{
  GtkWidget *row = adw_action_row_new ();

  adw_preferences_row_set_title (ADW_PREFERENCES_ROW (row), title);
  adw_preferences_row_set_use_markup (ADW_PREFERENCES_ROW (row), FALSE);
  adw_action_row_set_subtitle (ADW_ACTION_ROW (row), subtitle);
  gtk_list_box_row_set_activatable (GTK_LIST_BOX_ROW (row), TRUE);
  gtk_actionable_set_action_name (GTK_ACTIONABLE (row), "win.open-path");
  gtk_actionable_set_action_target (GTK_ACTIONABLE (row), "s", path);
  adw_action_row_add_suffix (ADW_ACTION_ROW (row), gtk_image_new_from_icon_name ("go-next-symbolic"));
  return row;
}

static void
clear_list (GtkListBox *list)
{
  GtkWidget *child;

  while ((child = gtk_widget_get_first_child (GTK_WIDGET (list))) != NULL)
    gtk_list_box_remove (list, child);
}

/**
 * bl_workbench_rebuild_models_menu:
 * @self: a window
 *
 * Refreshes the "open" menu and the welcome page from the recent list and the Hugging
 * Face cache.
 */
void
bl_workbench_rebuild_models_menu (BlWorkbench *self)
{
  g_auto(GStrv) recent = g_settings_get_strv (self->settings, "recent-models");
  g_autoptr(GMenu) menu = g_menu_new ();
  g_autoptr(GMenu) recent_section = g_menu_new ();
  g_autoptr(GMenu) hf_section = g_menu_new ();
  g_autoptr(GMenu) demo_section = g_menu_new ();

  clear_list (self->recent_list);
  clear_list (self->hf_list);
  for (guint i = 0; recent[i] != NULL; i++)
    {
      g_autofree char *name = display_name (recent[i]);
      g_autoptr(GMenuItem) item = g_menu_item_new (name, NULL);

      g_menu_item_set_action_and_target (item, "win.open-path", "s", recent[i]);
      g_menu_append_item (recent_section, item);
      gtk_list_box_append (self->recent_list, model_row (name, recent[i], recent[i]));
    }
  gtk_widget_set_visible (self->recent_group, recent[0] != NULL);
  for (guint i = 0; self->hf_models != NULL && i < self->hf_models->len; i++)
    {
      BlHfModel *m = g_ptr_array_index (self->hf_models, i);
      g_autoptr(GMenuItem) item = g_menu_item_new (m->repo, NULL);

      g_menu_item_set_action_and_target (item, "win.open-path", "s", m->path);
      g_menu_append_item (hf_section, item);
      gtk_list_box_append (self->hf_list, model_row (m->repo, m->path, m->path));
    }
  gtk_widget_set_visible (self->hf_group, self->hf_models != NULL && self->hf_models->len > 0);
  g_menu_append (demo_section, "The bundled demo model", "win.open-demo");
  g_menu_append (demo_section, "Open a model folder…", "win.open");
  g_menu_append (demo_section, "Open a GGUF file…", "win.open-gguf");
  g_menu_append_section (menu, "Recent", G_MENU_MODEL (recent_section));
  if (self->hf_models != NULL && self->hf_models->len > 0)
    g_menu_append_section (menu, "Hugging Face cache", G_MENU_MODEL (hf_section));
  g_menu_append_section (menu, NULL, G_MENU_MODEL (demo_section));
  adw_split_button_set_menu_model (self->models_button, G_MENU_MODEL (menu));
}

static void
on_hf_scanned (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  BlWorkbench *self = BL_WORKBENCH (source);
  GPtrArray *models = g_task_propagate_pointer (G_TASK (result), NULL);

  if (models == NULL)
    return;
  g_clear_pointer (&self->hf_models, g_ptr_array_unref);
  self->hf_models = models;
  bl_workbench_rebuild_models_menu (self);
}

static void
hf_scan_thread (GTask        *task,
                gpointer      source_object,
                gpointer      task_data,
                GCancellable *cancellable)
{
  g_task_return_pointer (task, bl_hf_cache_scan (NULL, cancellable), (GDestroyNotify) g_ptr_array_unref);
}

static void
scan_hf_cache (BlWorkbench *self)
{
  g_autoptr(GTask) task = NULL;

  cancel_and_clear (&self->hf_cancellable);
  self->hf_cancellable = g_cancellable_new ();
  task = g_task_new (self, self->hf_cancellable, on_hf_scanned, NULL);
  bl_application_hold_task (task);
  g_task_run_in_thread (task, hf_scan_thread);
}

/* Drag and drop */

static gboolean
on_drop (GtkDropTarget *target,
         const GValue  *value,
         double         x,
         double         y,
         BlWorkbench      *self)
{
  GSList *files;
  g_autofree char *path = NULL;

  if (!G_VALUE_HOLDS (value, GDK_TYPE_FILE_LIST))
    return FALSE;
  /* one model at a time: the first file dropped */
  files = gdk_file_list_get_files (g_value_get_boxed (value));
  if (files != NULL)
    path = g_file_get_path (files->data);
  g_slist_free (files);
  if (path == NULL)
    return FALSE;
  bl_workbench_open (self, path);
  return TRUE;
}

/* The GNOME pattern: the size is saved once, when the window closes, and only the keys
 * whose value changed are written. */
static gboolean
save_window_state (GtkWindow *window)
{
  BlWorkbench *self = BL_WORKBENCH (window);
  gboolean maximized = gtk_window_is_maximized (window);
  int width, height;

  if (maximized != g_settings_get_boolean (self->settings, "window-maximized"))
    g_settings_set_boolean (self->settings, "window-maximized", maximized);
  if (!maximized)
    {
      gtk_window_get_default_size (window, &width, &height);
      if (width > 0 && width != g_settings_get_int (self->settings, "window-width"))
        g_settings_set_int (self->settings, "window-width", width);
      if (height > 0 && height != g_settings_get_int (self->settings, "window-height"))
        g_settings_set_int (self->settings, "window-height", height);
    }
  return GTK_WINDOW_CLASS (bl_workbench_parent_class)->close_request (window);
}

static void
bl_workbench_constructed (GObject *object)
{
  BlWorkbench *self = BL_WORKBENCH (object);

  G_OBJECT_CLASS (bl_workbench_parent_class)->constructed (object);

  /* read once here and written once on close (save_window_state()): a binding would write
   * the settings on every size allocation */
  gtk_window_set_default_size (GTK_WINDOW (self), g_settings_get_int (self->settings, "window-width"),
                               g_settings_get_int (self->settings, "window-height"));
  if (g_settings_get_boolean (self->settings, "window-maximized"))
    gtk_window_maximize (GTK_WINDOW (self));
  g_signal_connect_object (self->settings, "changed::recent-models",
                           G_CALLBACK (bl_workbench_rebuild_models_menu), self, G_CONNECT_SWAPPED);
  g_signal_connect_object (self->settings, "changed::eval-ctx",
                           G_CALLBACK (on_eval_settings_changed), self, G_CONNECT_SWAPPED);
  g_signal_connect_object (self->settings, "changed::eval-windows",
                           G_CALLBACK (on_eval_settings_changed), self, G_CONNECT_SWAPPED);
  g_signal_connect_object (self->settings, "changed::backend",
                           G_CALLBACK (on_eval_settings_changed), self, G_CONNECT_SWAPPED);
  bl_workbench_rebuild_models_menu (self);
  scan_hf_cache (self);
  bl_workbench_init_actions (self);
  bl_workbench_update_actions (self);
}

static void
bl_workbench_set_property (GObject      *object,
                        guint         prop_id,
                        const GValue *value,
                        GParamSpec   *pspec)
{
  BlWorkbench *self = BL_WORKBENCH (object);

  switch (prop_id)
    {
    case PROP_SETTINGS:
      self->settings = g_value_dup_object (value);
      break;
    case PROP_DEFAULT_MODEL:
      self->default_model = g_value_dup_string (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
bl_workbench_class_init (BlWorkbenchClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);
  GtkWindowClass *window_class = GTK_WINDOW_CLASS (klass);

  window_class->close_request = save_window_state;
  object_class->constructed = bl_workbench_constructed;
  object_class->dispose = bl_workbench_dispose;
  object_class->finalize = bl_workbench_finalize;
  object_class->set_property = bl_workbench_set_property;

  properties[PROP_SETTINGS] =
    g_param_spec_object ("settings", NULL, NULL, G_TYPE_SETTINGS,
                         G_PARAM_WRITABLE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);
  properties[PROP_DEFAULT_MODEL] =
    g_param_spec_string ("default-model", NULL, NULL, NULL,
                         G_PARAM_WRITABLE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties (object_class, N_PROPS, properties);

  g_type_ensure (BL_TYPE_LAYER_BROWSER);
  g_type_ensure (BL_TYPE_FORMAT_PICKER);
  g_type_ensure (BL_TYPE_DISTRIBUTION_VIEW);
  g_type_ensure (BL_TYPE_METRICS_BAR);
  g_type_ensure (BL_TYPE_PARETO_VIEW);
  g_type_ensure (BL_TYPE_SCALING_VIEW);

  gtk_widget_class_set_template_from_resource (widget_class, "/io/github/bitlens/Bitlens/bl-workbench.ui");
  gtk_widget_class_bind_template_child (widget_class, BlWorkbench, window_title);
  gtk_widget_class_bind_template_child (widget_class, BlWorkbench, toast_overlay);
  gtk_widget_class_bind_template_child (widget_class, BlWorkbench, main_stack);
  gtk_widget_class_bind_template_child (widget_class, BlWorkbench, models_button);
  gtk_widget_class_bind_template_child (widget_class, BlWorkbench, recent_list);
  gtk_widget_class_bind_template_child (widget_class, BlWorkbench, recent_group);
  gtk_widget_class_bind_template_child (widget_class, BlWorkbench, hf_list);
  gtk_widget_class_bind_template_child (widget_class, BlWorkbench, hf_group);
  gtk_widget_class_bind_template_child (widget_class, BlWorkbench, welcome_demo_label);
  gtk_widget_class_bind_template_child (widget_class, BlWorkbench, load_label);
  gtk_widget_class_bind_template_child (widget_class, BlWorkbench, load_progress);
  gtk_widget_class_bind_template_child (widget_class, BlWorkbench, browser);
  gtk_widget_class_bind_template_child (widget_class, BlWorkbench, picker);
  gtk_widget_class_bind_template_child (widget_class, BlWorkbench, view_stack);
  gtk_widget_class_bind_template_child (widget_class, BlWorkbench, distribution);
  gtk_widget_class_bind_template_child (widget_class, BlWorkbench, pareto_view);
  gtk_widget_class_bind_template_child (widget_class, BlWorkbench, scaling_view);
  gtk_widget_class_bind_template_child (widget_class, BlWorkbench, metrics_bar);
  gtk_widget_class_bind_template_callback (widget_class, on_selection_changed);
  gtk_widget_class_bind_template_callback (widget_class, on_focus_changed);
  gtk_widget_class_bind_template_callback (widget_class, on_picker_spec_changed);
  gtk_widget_class_bind_template_callback (widget_class, on_pareto_point);
}

static void
bl_workbench_init (BlWorkbench *self)
{
  GtkDropTarget *drop;
  g_autoptr(GError) error = NULL;

  self->history = bl_plan_history_new ();
  g_mutex_init (&self->estimator_lock);
  self->pareto_points = g_ptr_array_new_with_free_func ((GDestroyNotify) bl_pareto_point_free);
  self->baseline_ppl = NAN;

  gtk_widget_init_template (GTK_WIDGET (self));
  /* the picker chose its first format before the template connected its signals */
  bl_distribution_view_set_spec (self->distribution, bl_format_picker_get_spec (self->picker));

  drop = gtk_drop_target_new (GDK_TYPE_FILE_LIST, GDK_ACTION_COPY);
  g_signal_connect (drop, "drop", G_CALLBACK (on_drop), self);
  gtk_widget_add_controller (GTK_WIDGET (self), GTK_EVENT_CONTROLLER (drop));

  self->store = bl_store_open (NULL, &error);
  if (self->store == NULL)
    g_message ("runs will not be recorded: %s", error->message);
}

/**
 * bl_workbench_new:
 * @application: the application
 * @settings: the application's settings (io.github.bitlens.Bitlens)
 * @default_model: (nullable): the model the "demo" action opens
 *
 * Returns: (transfer full): a new window on the welcome page
 */
BlWorkbench *
bl_workbench_new (GtkApplication *application,
               GSettings      *settings,
               const char     *default_model)
{
  BlWorkbench *self;

  g_return_val_if_fail (GTK_IS_APPLICATION (application), NULL);
  g_return_val_if_fail (G_IS_SETTINGS (settings), NULL);

  self = g_object_new (BL_TYPE_WORKBENCH,
                       "application", application,
                       "settings", settings,
                       "default-model", default_model,
                       NULL);
  return self;
}

/**
 * bl_workbench_get_model:
 * @self: a window
 *
 * Returns: (transfer none) (nullable): the model shown
 */
BlModel *
bl_workbench_get_model (BlWorkbench *self)
{
  g_return_val_if_fail (BL_IS_WORKBENCH (self), NULL);

  return self->model;
}

/**
 * bl_workbench_get_plan:
 * @self: a window
 *
 * Returns: (transfer none): the current plan
 */
BlPlanSnapshot *
bl_workbench_get_plan (BlWorkbench *self)
{
  g_return_val_if_fail (BL_IS_WORKBENCH (self), NULL);

  return bl_plan_history_get_current (self->history);
}

/**
 * bl_workbench_get_measurement:
 * @self: a window
 *
 * Returns: (transfer none) (nullable): the live measurement, once the evaluation text is
 *   tokenized
 */
BlMeasurement *
bl_workbench_get_measurement (BlWorkbench *self)
{
  g_return_val_if_fail (BL_IS_WORKBENCH (self), NULL);

  return self->measurement;
}

/**
 * bl_workbench_get_part:
 * @self: a window
 * @name: "browser", "picker", "distribution", "metrics", "pareto" (the plot), "pareto-view",
 *   "scaling", "stack", "views", or the welcome page's "recent-list" and "hf-list"
 *
 * For tests and tools that drive the window.
 *
 * Returns: (transfer none) (nullable): the widget, or %NULL for an unknown @name
 */
GtkWidget *
bl_workbench_get_part (BlWorkbench   *self,
                    const char *name)
{
  g_return_val_if_fail (BL_IS_WORKBENCH (self), NULL);

  if (g_str_equal (name, "browser"))
    return GTK_WIDGET (self->browser);
  if (g_str_equal (name, "picker"))
    return GTK_WIDGET (self->picker);
  if (g_str_equal (name, "distribution"))
    return GTK_WIDGET (self->distribution);
  if (g_str_equal (name, "metrics"))
    return GTK_WIDGET (self->metrics_bar);
  if (g_str_equal (name, "pareto"))
    return GTK_WIDGET (bl_pareto_view_get_plot (self->pareto_view));
  if (g_str_equal (name, "pareto-view"))
    return GTK_WIDGET (self->pareto_view);
  if (g_str_equal (name, "scaling"))
    return GTK_WIDGET (self->scaling_view);
  if (g_str_equal (name, "recent-list"))
    return GTK_WIDGET (self->recent_list);
  if (g_str_equal (name, "hf-list"))
    return GTK_WIDGET (self->hf_list);
  if (g_str_equal (name, "stack"))
    return GTK_WIDGET (self->main_stack);
  if (g_str_equal (name, "views"))
    return GTK_WIDGET (self->view_stack);
  return NULL;
}

/**
 * bl_workbench_export_plan:
 * @self: a window with a model
 * @file: where to write the plan
 * @error: return location for a #GError
 *
 * Writes the current plan as a #BlQuantPlan JSON file (docs/plan-schema.md), which
 * `bitlens-cli eval --plan` reads.
 *
 * Returns: %TRUE on success
 */
gboolean
bl_workbench_export_plan (BlWorkbench  *self,
                          GFile        *file,
                          GError      **error)
{
  g_autoptr(BlQuantPlan) plan = NULL;
  g_autofree char *path = NULL;

  g_return_val_if_fail (BL_IS_WORKBENCH (self), FALSE);
  g_return_val_if_fail (G_IS_FILE (file), FALSE);

  if (self->model == NULL)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT, "no model is open");
      return FALSE;
    }
  path = g_file_get_path (file);
  if (path == NULL)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED, "plans can only be saved to local files");
      return FALSE;
    }
  plan = bl_plan_snapshot_to_quant_plan (bl_plan_history_get_current (self->history), self->model, error);
  return plan != NULL && bl_quant_plan_save (plan, path, error);
}

typedef struct
{
  BlModel *model;
  BlQuantPlan *plan;
  char *target;
  char *path;
  GPtrArray *notes;          /* utf8: what the writer changed, e.g. layers kept in F16 */
} ExportJob;

static void
export_job_free (gpointer data)
{
  ExportJob *j = data;

  g_clear_object (&j->model);
  g_clear_object (&j->plan);
  g_free (j->target);
  g_free (j->path);
  g_ptr_array_unref (j->notes);
  g_free (j);
}

static void
export_thread (GTask        *task,
               gpointer      source_object,
               gpointer      task_data,
               GCancellable *cancellable)
{
  ExportJob *j = task_data;
  GError *error = NULL;

  if (bl_export_to (j->model, j->plan, j->target, NULL, j->path, j->notes, NULL, cancellable, &error))
    g_task_return_boolean (task, TRUE);
  else
    g_task_return_error (task, error);
}

/**
 * bl_workbench_export_async:
 * @self: a window with a model
 * @target: an id of bl_export_targets() ("compressed-tensors", "gguf", …)
 * @path: the file to write (the directory for "packed")
 * @cancellable: (nullable): a cancellable
 * @callback: called when the file is written
 * @user_data: for @callback
 *
 * Writes the current plan for a deployment tool in a worker thread (a GGUF or a packed
 * checkpoint of a large model takes a while), as `bitlens-cli export` does.
 */
void
bl_workbench_export_async (BlWorkbench         *self,
                           const char          *target,
                           const char          *path,
                           GCancellable        *cancellable,
                           GAsyncReadyCallback  callback,
                           gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  g_autoptr(GError) error = NULL;
  ExportJob *j;

  g_return_if_fail (BL_IS_WORKBENCH (self));
  g_return_if_fail (target != NULL && path != NULL);

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, bl_workbench_export_async);
  if (self->model == NULL)
    {
      g_task_return_new_error (task, BL_ERROR, BL_ERROR_INVALID_ARGUMENT, "no model is open");
      return;
    }
  j = g_new0 (ExportJob, 1);
  j->model = g_object_ref (self->model);
  j->plan = bl_plan_snapshot_to_quant_plan (bl_plan_history_get_current (self->history), self->model, &error);
  j->target = g_strdup (target);
  j->path = g_strdup (path);
  j->notes = g_ptr_array_new_with_free_func (g_free);
  g_task_set_task_data (task, j, export_job_free);
  if (j->plan == NULL)
    {
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  bl_application_hold_task (task);
  g_task_run_in_thread (task, export_thread);
}

/**
 * bl_workbench_export_finish:
 * @self: the window
 * @result: the result given to the callback
 * @out_notes: (out) (optional) (transfer full): what the writer could not write as the plan
 *   says and did instead (a GGUF layer whose width is not a multiple of the block stays
 *   F16), an empty vector when nothing
 * @error: return location for a #GError
 *
 * Returns: %TRUE when the export was written
 */
gboolean
bl_workbench_export_finish (BlWorkbench   *self,
                            GAsyncResult  *result,
                            GStrv         *out_notes,
                            GError       **error)
{
  ExportJob *j;

  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);

  if (!g_task_propagate_boolean (G_TASK (result), error))
    return FALSE;
  j = g_task_get_task_data (G_TASK (result));
  if (out_notes != NULL)
    {
      g_autoptr(GStrvBuilder) b = g_strv_builder_new ();

      for (guint i = 0; j != NULL && i < j->notes->len; i++)
        g_strv_builder_add (b, g_ptr_array_index (j->notes, i));
      *out_notes = g_strv_builder_end (b);
    }
  return TRUE;
}
