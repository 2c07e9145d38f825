/* bl-metrics-bar.c: model size, estimated and measured quality of the current plan
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "bl-metrics-bar.h"

#include <math.h>

/**
 * SECTION:bl-metrics-bar
 * @title: BlMetricsBar
 *
 * The strip under the workbench: what the plan costs (bits per weight of the linear layers,
 * model size), the instant estimate of Δppl when an estimator is available, and the measured
 * perplexity with its 95% confidence interval, KL and top-1 agreement against the
 * full-precision model, refining window by window, with a progress bar, and the backend the
 * measurement runs on (in the warning colour when it is not the preferred one, with the
 * reason in its tooltip). It follows a #BlMeasurement through its "progress" signal.
 */

struct _BlMetricsBar
{
  GtkWidget parent_instance;

  /* Template widgets */
  GtkLabel *size_label;
  GtkWidget *estimate_box;
  GtkLabel *estimate_label;
  GtkLabel *ppl_label;
  GtkLabel *ci_label;
  GtkLabel *delta_label;
  GtkLabel *kl_label;
  GtkProgressBar *progress_bar;
  GtkLabel *windows_label;
  GtkLabel *backend_label;
  GtkSpinner *spinner;

  /* State */
  BlMeasurement *measurement;
  double baseline;
};

G_DEFINE_FINAL_TYPE (BlMetricsBar, bl_metrics_bar, GTK_TYPE_WIDGET)

static void
set_tooltip (GtkWidget  *widget,
             const char *text)
{
  /* a tooltip set again on every window would be rebuilt every time */
  if (g_strcmp0 (gtk_widget_get_tooltip_text (widget), text) != 0)
    gtk_widget_set_tooltip_text (widget, text);
}

static void
update_backend (BlMetricsBar *self)
{
  const char *name = self->measurement ? bl_measurement_get_backend_name (self->measurement) : NULL;
  const char *fallback = self->measurement ? bl_measurement_get_backend_message (self->measurement) : NULL;
  GtkWidget *label = GTK_WIDGET (self->backend_label);
  g_autofree char *tooltip = NULL;

  gtk_widget_set_visible (label, name != NULL);
  if (name == NULL)
    return;
  gtk_label_set_text (self->backend_label, name);
  if (fallback != NULL)
    {
      tooltip = g_strdup_printf ("The preferred backend could not start, so the measurement runs on %s: %s",
                                 name, fallback);
      gtk_widget_remove_css_class (label, "dim-label");
      gtk_widget_add_css_class (label, "warning");
    }
  else
    {
      const char *description = bl_measurement_get_backend_description (self->measurement);

      tooltip = g_strdup_printf ("Measured on the %s backend%s%s", name, description ? ": " : "",
                                 description ? description : "");
      gtk_widget_remove_css_class (label, "warning");
      gtk_widget_add_css_class (label, "dim-label");
    }
  set_tooltip (label, tooltip);
}

static void
update (BlMetricsBar *self)
{
  BlMeasurementState state;
  double ppl, lo, hi;
  guint done, total;
  char buf[128];

  if (self->measurement == NULL)
    {
      gtk_label_set_text (self->ppl_label, "—");
      gtk_label_set_text (self->ci_label, "");
      gtk_label_set_text (self->delta_label, "");
      gtk_label_set_text (self->kl_label, "");
      gtk_label_set_text (self->windows_label, "no evaluation text yet");
      gtk_progress_bar_set_fraction (self->progress_bar, 0);
      gtk_spinner_stop (self->spinner);
      update_backend (self);
      return;
    }
  update_backend (self);

  state = bl_measurement_get_state (self->measurement);
  ppl = bl_measurement_get_ppl (self->measurement);
  done = bl_measurement_get_n_done (self->measurement);
  total = bl_measurement_get_n_windows (self->measurement);

  if (isnan (ppl))
    gtk_label_set_text (self->ppl_label, "…");
  else
    {
      g_snprintf (buf, sizeof buf, "%.2f", ppl);
      gtk_label_set_text (self->ppl_label, buf);
    }
  if (bl_measurement_get_ppl_ci (self->measurement, &lo, &hi))
    {
      g_snprintf (buf, sizeof buf, "[%.2f, %.2f]", lo, hi);
      gtk_label_set_text (self->ci_label, buf);
    }
  else
    gtk_label_set_text (self->ci_label, "");
  if (!isnan (ppl) && !isnan (self->baseline))
    {
      g_snprintf (buf, sizeof buf, "%+.2f", ppl - self->baseline);
      gtk_label_set_text (self->delta_label, buf);
      g_snprintf (buf, sizeof buf, "Change against the unquantized model's %.2f on the same windows", self->baseline);
      set_tooltip (GTK_WIDGET (self->delta_label), buf);
    }
  else
    gtk_label_set_text (self->delta_label, "");

  {
    BlKlSummary kl;

    /* the unquantized model agrees with itself: no KL to show */
    if (bl_measurement_get_kl (self->measurement, &kl)
        && !bl_plan_snapshot_is_empty (bl_measurement_get_plan (self->measurement)))
      {
        g_snprintf (buf, sizeof buf, "KL %.3f · top-1 %.1f%%", kl.kl, 100.0 * kl.top1);
        gtk_label_set_text (self->kl_label, buf);
      }
    else
      gtk_label_set_text (self->kl_label, "");
  }

  switch (state)
    {
    case BL_MEASUREMENT_PREPARING:
      {
        const char *stage = bl_measurement_get_stage (self->measurement);

        gtk_label_set_text (self->windows_label, stage ? stage : "quantizing weights…");
      }
      gtk_progress_bar_set_fraction (self->progress_bar, 0);
      gtk_spinner_start (self->spinner);
      break;
    case BL_MEASUREMENT_RUNNING:
      g_snprintf (buf, sizeof buf, "%u/%u windows · %s · ctx %d", done, total,
                  bl_measurement_get_text_name (self->measurement),
                  bl_measurement_get_ctx (self->measurement));
      gtk_label_set_text (self->windows_label, buf);
      gtk_progress_bar_set_fraction (self->progress_bar, total ? (double) done / total : 0);
      gtk_spinner_start (self->spinner);
      break;
    case BL_MEASUREMENT_FINISHED:
      g_snprintf (buf, sizeof buf, "%u windows · %s · ctx %d · %.0f tok/s", total,
                  bl_measurement_get_text_name (self->measurement),
                  bl_measurement_get_ctx (self->measurement),
                  bl_measurement_get_tokens_per_second (self->measurement));
      gtk_label_set_text (self->windows_label, buf);
      gtk_progress_bar_set_fraction (self->progress_bar, 1);
      gtk_spinner_stop (self->spinner);
      break;
    case BL_MEASUREMENT_FAILED:
      gtk_label_set_text (self->windows_label, bl_measurement_get_message (self->measurement));
      gtk_label_set_text (self->ppl_label, "failed");
      gtk_progress_bar_set_fraction (self->progress_bar, 0);
      gtk_spinner_stop (self->spinner);
      break;
    case BL_MEASUREMENT_IDLE:
    default:
      gtk_label_set_text (self->windows_label, done ? "stopped" : "waiting for the evaluation text…");
      gtk_spinner_stop (self->spinner);
      break;
    }
}

static void
bl_metrics_bar_dispose (GObject *object)
{
  BlMetricsBar *self = BL_METRICS_BAR (object);
  GtkWidget *child;

  if (self->measurement != NULL)
    g_signal_handlers_disconnect_by_data (self->measurement, self);
  g_clear_object (&self->measurement);
  gtk_widget_dispose_template (GTK_WIDGET (self), BL_TYPE_METRICS_BAR);
  /* the template children that are not bound to a field */
  while ((child = gtk_widget_get_first_child (GTK_WIDGET (self))) != NULL)
    gtk_widget_unparent (child);

  G_OBJECT_CLASS (bl_metrics_bar_parent_class)->dispose (object);
}

static void
bl_metrics_bar_class_init (BlMetricsBarClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->dispose = bl_metrics_bar_dispose;

  gtk_widget_class_set_template_from_resource (widget_class, "/io/github/bitlens/Bitlens/bl-metrics-bar.ui");
  gtk_widget_class_bind_template_child (widget_class, BlMetricsBar, size_label);
  gtk_widget_class_bind_template_child (widget_class, BlMetricsBar, estimate_box);
  gtk_widget_class_bind_template_child (widget_class, BlMetricsBar, estimate_label);
  gtk_widget_class_bind_template_child (widget_class, BlMetricsBar, ppl_label);
  gtk_widget_class_bind_template_child (widget_class, BlMetricsBar, ci_label);
  gtk_widget_class_bind_template_child (widget_class, BlMetricsBar, delta_label);
  gtk_widget_class_bind_template_child (widget_class, BlMetricsBar, kl_label);
  gtk_widget_class_bind_template_child (widget_class, BlMetricsBar, progress_bar);
  gtk_widget_class_bind_template_child (widget_class, BlMetricsBar, windows_label);
  gtk_widget_class_bind_template_child (widget_class, BlMetricsBar, backend_label);
  gtk_widget_class_bind_template_child (widget_class, BlMetricsBar, spinner);
  gtk_widget_class_set_layout_manager_type (widget_class, GTK_TYPE_BIN_LAYOUT);
  gtk_widget_class_set_css_name (widget_class, "metricsbar");
}

static void
bl_metrics_bar_init (BlMetricsBar *self)
{
  gtk_widget_init_template (GTK_WIDGET (self));
  self->baseline = NAN;
  bl_metrics_bar_set_estimate (self, NAN);
  update (self);
}

GtkWidget *
bl_metrics_bar_new (void)
{
  return g_object_new (BL_TYPE_METRICS_BAR, NULL);
}

/**
 * bl_metrics_bar_set_measurement:
 * @self: a bar
 * @measurement: (nullable): the live measurement to follow
 */
void
bl_metrics_bar_set_measurement (BlMetricsBar  *self,
                                BlMeasurement *measurement)
{
  g_return_if_fail (BL_IS_METRICS_BAR (self));

  if (self->measurement == measurement)
    return;
  if (self->measurement != NULL)
    g_signal_handlers_disconnect_by_data (self->measurement, self);
  g_set_object (&self->measurement, measurement);
  if (measurement != NULL)
    g_signal_connect_swapped (measurement, "progress", G_CALLBACK (update), self);
  update (self);
}

/**
 * bl_metrics_bar_set_baseline:
 * @self: a bar
 * @ppl: the unquantized model's perplexity on the same windows (NaN: unknown)
 */
void
bl_metrics_bar_set_baseline (BlMetricsBar *self,
                             double        ppl)
{
  g_return_if_fail (BL_IS_METRICS_BAR (self));

  self->baseline = ppl;
  update (self);
}

/**
 * bl_metrics_bar_set_size:
 * @self: a bar
 * @bpw: bits per weight over the linear layers
 * @megabytes: the model's size under the plan (10⁶ bytes)
 * @base_megabytes: its size as stored
 */
void
bl_metrics_bar_set_size (BlMetricsBar *self,
                         double        bpw,
                         double        megabytes,
                         double        base_megabytes)
{
  g_autofree char *markup = NULL;

  g_return_if_fail (BL_IS_METRICS_BAR (self));

  markup = g_strdup_printf ("<b>%.3f</b> bits/w · <b>%.2f</b> of %.2f MB",
                            bpw, megabytes, base_megabytes);
  gtk_label_set_markup (self->size_label, markup);
}

/**
 * bl_metrics_bar_set_estimate:
 * @self: a bar
 * @delta_ppl: the estimator's predicted Δppl of the plan, or NaN to hide the estimate
 */
void
bl_metrics_bar_set_estimate (BlMetricsBar *self,
                             double        delta_ppl)
{
  char buf[64];

  g_return_if_fail (BL_IS_METRICS_BAR (self));

  gtk_widget_set_visible (self->estimate_box, !isnan (delta_ppl));
  g_snprintf (buf, sizeof buf, "%+.2f", delta_ppl);
  gtk_label_set_text (self->estimate_label, buf);
}

/**
 * bl_metrics_bar_get_ppl_text:
 * @self: a bar
 *
 * Returns: the measured perplexity as shown ("…" before the first window)
 */
const char *
bl_metrics_bar_get_ppl_text (BlMetricsBar *self)
{
  g_return_val_if_fail (BL_IS_METRICS_BAR (self), NULL);

  return gtk_label_get_text (self->ppl_label);
}

/**
 * bl_metrics_bar_get_estimate_text:
 * @self: a bar
 *
 * Returns: (nullable): the estimated Δppl as shown, or %NULL while there is no estimate
 */
const char *
bl_metrics_bar_get_estimate_text (BlMetricsBar *self)
{
  g_return_val_if_fail (BL_IS_METRICS_BAR (self), NULL);

  return gtk_widget_get_visible (self->estimate_box) ? gtk_label_get_text (self->estimate_label) : NULL;
}

/**
 * bl_metrics_bar_get_kl_text:
 * @self: a bar
 *
 * Returns: the KL and top-1 agreement as shown ("" when there is none)
 */
const char *
bl_metrics_bar_get_kl_text (BlMetricsBar *self)
{
  g_return_val_if_fail (BL_IS_METRICS_BAR (self), NULL);

  return gtk_label_get_text (self->kl_label);
}

/**
 * bl_metrics_bar_get_backend_label:
 * @self: a bar
 *
 * Returns: (transfer none): the label that names the measurement's backend; hidden until
 *   the measurement has one, with the "warning" style class when it is not the preferred
 *   backend
 */
GtkWidget *
bl_metrics_bar_get_backend_label (BlMetricsBar *self)
{
  g_return_val_if_fail (BL_IS_METRICS_BAR (self), NULL);

  return GTK_WIDGET (self->backend_label);
}
