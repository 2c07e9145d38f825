/* bl-scaling-view.c: the FP-training law calculator and the per-layer INT/FP crossover map
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "bl-scaling-view.h"

#include <math.h>
#include <string.h>

#include "bl-application.h"
#include "bl-plot.h"
#include "bl-scaling.h"

/**
 * SECTION:bl-scaling-view
 * @title: BlScalingView
 *
 * The Scaling page of the workbench, beside the Pareto plot:
 *
 *   - a calculator for the FP-quantization training law of Sun et al. (ICML 2025;
 *     methods.md §3, bl_sun_loss()) with the paper's constants: the loss for N, D, E, M, B,
 *     the critical data size beyond which more tokens hurt, the best exponent/mantissa split
 *     for a bit width, and the loss against training tokens as a plot;
 *   - the INT/FP crossover map of the open model (methods.md §2, bl_crossover_map()): for one
 *     INT/FP pair, each linear layer's block crest factor against the crossover κ*, and the
 *     theoretical and measured QSNR of both formats. It is computed in a worker thread the
 *     first time the page is shown.
 */

#define LAW_SAMPLES 64
#define LAW_LOG_D_LO 9.0
#define LAW_LOG_D_HI 14.0

struct _BlScalingView
{
  GtkWidget parent_instance;

  /* Template widgets */
  GtkSpinButton *n_spin;
  GtkSpinButton *d_spin;
  GtkSpinButton *e_spin;
  GtkSpinButton *m_spin;
  GtkSpinButton *b_spin;
  GtkSpinButton *p_spin;
  GtkLabel *loss_label;
  GtkLabel *dcrit_label;
  GtkLabel *layout_label;
  BlPlot *law_plot;
  GtkDropDown *pair_dropdown;
  GtkLabel *crossover_label;
  GtkGrid *crossover_grid;

  /* The law */
  BlSunConstants constants;
  double loss;
  double d_crit;
  char *layout_text;

  /* The crossover map */
  BlModel *model;
  GPtrArray *entries;        /* BlCrossoverEntry, or NULL until computed */
  GCancellable *cancellable;
  char *crossover_text;
  guint n_shown;
};

G_DEFINE_FINAL_TYPE (BlScalingView, bl_scaling_view, GTK_TYPE_WIDGET)

static void
set_label_printf (GtkLabel   *label,
                  const char *format,
                  ...) G_GNUC_PRINTF (2, 3);

static void
set_label_printf (GtkLabel   *label,
                  const char *format,
                  ...)
{
  g_autofree char *text = NULL;
  va_list args;

  va_start (args, format);
  text = g_strdup_vprintf (format, args);
  va_end (args);
  gtk_label_set_markup (label, text);
}

/* Everything the law's inputs decide, recomputed on every change (a few pow() calls). */
static void
update_law (BlScalingView *self)
{
  double N = gtk_spin_button_get_value (self->n_spin) * 1e6;
  double D = gtk_spin_button_get_value (self->d_spin) * 1e9;
  double E = gtk_spin_button_get_value (self->e_spin);
  double M = gtk_spin_button_get_value (self->m_spin);
  double B = gtk_spin_button_get_value (self->b_spin);
  int P = gtk_spin_button_get_value_as_int (self->p_spin);
  double xs[LAW_SAMPLES], ys[LAW_SAMPLES], ys_bf16[LAW_SAMPLES];
  g_autofree char *label = NULL;
  int best_e, best_m;

  self->loss = bl_sun_loss (&self->constants, N, D, E, M, B);
  self->d_crit = bl_sun_critical_data (&self->constants, N, E, M, B);
  bl_sun_optimal_layout (&self->constants, P, &best_e, &best_m);
  g_free (self->layout_text);
  self->layout_text = g_strdup_printf ("E%dM%d", best_e, best_m);

  set_label_printf (self->loss_label, "<b>%.4f</b>", self->loss);
  if (self->d_crit >= 1e12)
    set_label_printf (self->dcrit_label, "<b>%.3g T</b> tokens", self->d_crit / 1e12);
  else
    set_label_printf (self->dcrit_label, "<b>%.3g B</b> tokens", self->d_crit / 1e9);
  set_label_printf (self->layout_label, "<b>%s</b> (1 sign + %d exponent + %d mantissa bits)",
                    self->layout_text, best_e, best_m);

  for (guint i = 0; i < LAW_SAMPLES; i++)
    {
      xs[i] = LAW_LOG_D_LO + (LAW_LOG_D_HI - LAW_LOG_D_LO) * i / (LAW_SAMPLES - 1);
      ys[i] = bl_sun_loss (&self->constants, N, pow (10.0, xs[i]), E, M, B);
      ys_bf16[i] = bl_sun_loss (&self->constants, N, pow (10.0, xs[i]), 8, 7, B);
    }
  bl_plot_clear (self->law_plot);
  label = g_strdup_printf ("E%.0fM%.0f, block %.0f", E, M, B);
  bl_plot_add_line (self->law_plot, "BF16 (E8M7)", xs, ys_bf16, LAW_SAMPLES, BL_PLOT_GRAY);
  bl_plot_add_line (self->law_plot, label, xs, ys, LAW_SAMPLES, BL_PLOT_BLUE);
  if (log10 (self->d_crit) > LAW_LOG_D_LO && log10 (self->d_crit) < LAW_LOG_D_HI)
    {
      double x = log10 (self->d_crit);

      bl_plot_add_vlines (self->law_plot, "critical data size", &x, 1, BL_PLOT_RED);
    }
}

static GtkWidget *
cell (const char *text,
      gboolean    numeric,
      const char *css_class)
{
  GtkWidget *label = gtk_label_new (text);

  gtk_label_set_xalign (GTK_LABEL (label), numeric ? 1.0 : 0.0);
  if (numeric)
    gtk_widget_add_css_class (label, "numeric");
  if (css_class != NULL)
    gtk_widget_add_css_class (label, css_class);
  return label;
}

static char *
short_layer_name (const char *layer)
{
  g_autofree char *s = g_strdup (layer);

  if (g_str_has_suffix (s, ".weight"))
    s[strlen (s) - strlen (".weight")] = '\0';
  if (g_str_has_prefix (s, "model.layers."))
    return g_strdup (s + strlen ("model.layers."));
  return g_steal_pointer (&s);
}

/* The map for the chosen pair: one grid row per layer, and a sentence that counts them. */
static void
update_crossover (BlScalingView *self)
{
  BlCrossoverPair pair = gtk_drop_down_get_selected (self->pair_dropdown);
  static const char *const heads[] = { "Layer", "κ", "By κ", "INT dB", "FP dB", "Measured" };
  GtkWidget *child;
  guint row = 1, n = 0, int_theory = 0, int_measured = 0, agree = 0;
  double kappa_star = NAN;
  const char *int_spec = NULL, *fp_spec = NULL;
  char buf[32];

  while ((child = gtk_widget_get_first_child (GTK_WIDGET (self->crossover_grid))) != NULL)
    gtk_grid_remove (self->crossover_grid, child);
  g_clear_pointer (&self->crossover_text, g_free);
  self->n_shown = 0;
  if (self->entries == NULL)
    return;
  for (guint c = 0; c < G_N_ELEMENTS (heads); c++)
    gtk_grid_attach (self->crossover_grid, cell (heads[c], c > 0, "heading"), (int) c, 0, 1, 1);
  for (guint i = 0; i < self->entries->len; i++)
    {
      const BlCrossoverEntry *e = g_ptr_array_index (self->entries, i);
      g_autofree char *name = NULL;
      gboolean theory_int, measured_int;

      if (e->pair != pair)
        continue;
      int_spec = e->int_spec;
      fp_spec = e->fp_spec;
      kappa_star = e->crossover;
      theory_int = e->kappa_q3 < e->crossover;
      measured_int = e->qsnr_int > e->qsnr_fp;
      n++;
      int_theory += theory_int;
      int_measured += measured_int;
      agree += theory_int == measured_int;
      name = short_layer_name (e->layer);
      gtk_grid_attach (self->crossover_grid, cell (name, FALSE, NULL), 0, (int) row, 1, 1);
      g_snprintf (buf, sizeof buf, "%.2f", e->kappa_q3);
      gtk_grid_attach (self->crossover_grid, cell (buf, TRUE, NULL), 1, (int) row, 1, 1);
      gtk_grid_attach (self->crossover_grid, cell (theory_int ? "INT" : "FP", FALSE, "dim-label"),
                       2, (int) row, 1, 1);
      g_snprintf (buf, sizeof buf, "%.1f", e->qsnr_int);
      gtk_grid_attach (self->crossover_grid, cell (buf, TRUE, NULL), 3, (int) row, 1, 1);
      g_snprintf (buf, sizeof buf, "%.1f", e->qsnr_fp);
      gtk_grid_attach (self->crossover_grid, cell (buf, TRUE, NULL), 4, (int) row, 1, 1);
      gtk_grid_attach (self->crossover_grid,
                       cell (measured_int ? "INT" : "FP", FALSE, measured_int ? "accent" : "success"),
                       5, (int) row, 1, 1);
      row++;
    }
  self->n_shown = n;
  if (n == 0)
    return;
  self->crossover_text =
    g_strdup_printf ("%s against %s, crossover κ* = %.2f. By the block crest factor %s wins on %u of %u "
                     "layers; by the measured QSNR on %u. Theory and measurement agree on %u layers.",
                     int_spec, fp_spec, kappa_star, int_spec, int_theory, n, int_measured, agree);
  gtk_label_set_text (self->crossover_label, self->crossover_text);
}

static void
on_map_computed (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  BlScalingView *self = BL_SCALING_VIEW (source);
  g_autoptr(GError) error = NULL;
  GPtrArray *entries = g_task_propagate_pointer (G_TASK (result), &error);

  if (entries == NULL)
    {
      if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        gtk_label_set_text (self->crossover_label, error->message);
      return;
    }
  if (g_task_get_task_data (G_TASK (result)) != self->model)
    {
      g_ptr_array_unref (entries);
      return;
    }
  g_clear_object (&self->cancellable);
  g_clear_pointer (&self->entries, g_ptr_array_unref);
  self->entries = entries;
  update_crossover (self);
}

static void
map_thread (GTask        *task,
            gpointer      source_object,
            gpointer      task_data,
            GCancellable *cancellable)
{
  GError *error = NULL;
  GPtrArray *entries = bl_crossover_map (task_data, 1, cancellable, &error);

  if (entries == NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, entries, (GDestroyNotify) g_ptr_array_unref);
}

/* The map waits until the page is shown: it fake-quantizes every layer in eight formats,
 * work a user who never looks at it should not pay for. */
static void
maybe_start_map (BlScalingView *self)
{
  g_autoptr(GTask) task = NULL;

  if (self->model == NULL || self->entries != NULL || self->cancellable != NULL
      || !gtk_widget_get_mapped (GTK_WIDGET (self)))
    return;
  self->cancellable = g_cancellable_new ();
  gtk_label_set_text (self->crossover_label, "Measuring every linear layer in both formats of each pair…");
  task = g_task_new (self, self->cancellable, on_map_computed, NULL);
  g_task_set_task_data (task, g_object_ref (self->model), g_object_unref);
  g_task_set_return_on_cancel (task, FALSE);
  bl_application_hold_task (task);
  g_task_run_in_thread (task, map_thread);
}

static void
bl_scaling_view_map (GtkWidget *widget)
{
  GTK_WIDGET_CLASS (bl_scaling_view_parent_class)->map (widget);
  maybe_start_map (BL_SCALING_VIEW (widget));
}

static void
bl_scaling_view_dispose (GObject *object)
{
  BlScalingView *self = BL_SCALING_VIEW (object);
  GtkWidget *child;

  if (self->cancellable != NULL)
    g_cancellable_cancel (self->cancellable);
  g_clear_object (&self->cancellable);
  g_clear_object (&self->model);
  gtk_widget_dispose_template (GTK_WIDGET (self), BL_TYPE_SCALING_VIEW);
  while ((child = gtk_widget_get_first_child (GTK_WIDGET (self))) != NULL)
    gtk_widget_unparent (child);

  G_OBJECT_CLASS (bl_scaling_view_parent_class)->dispose (object);
}

static void
bl_scaling_view_finalize (GObject *object)
{
  BlScalingView *self = BL_SCALING_VIEW (object);

  g_clear_pointer (&self->entries, g_ptr_array_unref);
  g_free (self->layout_text);
  g_free (self->crossover_text);

  G_OBJECT_CLASS (bl_scaling_view_parent_class)->finalize (object);
}

static void
bl_scaling_view_class_init (BlScalingViewClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->dispose = bl_scaling_view_dispose;
  object_class->finalize = bl_scaling_view_finalize;
  widget_class->map = bl_scaling_view_map;

  g_type_ensure (BL_TYPE_PLOT);
  gtk_widget_class_set_template_from_resource (widget_class, "/io/github/bitlens/Bitlens/bl-scaling-view.ui");
  gtk_widget_class_bind_template_child (widget_class, BlScalingView, n_spin);
  gtk_widget_class_bind_template_child (widget_class, BlScalingView, d_spin);
  gtk_widget_class_bind_template_child (widget_class, BlScalingView, e_spin);
  gtk_widget_class_bind_template_child (widget_class, BlScalingView, m_spin);
  gtk_widget_class_bind_template_child (widget_class, BlScalingView, b_spin);
  gtk_widget_class_bind_template_child (widget_class, BlScalingView, p_spin);
  gtk_widget_class_bind_template_child (widget_class, BlScalingView, loss_label);
  gtk_widget_class_bind_template_child (widget_class, BlScalingView, dcrit_label);
  gtk_widget_class_bind_template_child (widget_class, BlScalingView, layout_label);
  gtk_widget_class_bind_template_child (widget_class, BlScalingView, law_plot);
  gtk_widget_class_bind_template_child (widget_class, BlScalingView, pair_dropdown);
  gtk_widget_class_bind_template_child (widget_class, BlScalingView, crossover_label);
  gtk_widget_class_bind_template_child (widget_class, BlScalingView, crossover_grid);
  gtk_widget_class_bind_template_callback (widget_class, update_law);
  gtk_widget_class_bind_template_callback (widget_class, update_crossover);
  gtk_widget_class_set_layout_manager_type (widget_class, GTK_TYPE_BIN_LAYOUT);
  gtk_widget_class_set_css_name (widget_class, "scalingview");
}

static void
bl_scaling_view_init (BlScalingView *self)
{
  bl_sun_constants_init (&self->constants);
  gtk_widget_init_template (GTK_WIDGET (self));
  bl_plot_set_title (self->law_plot, "Loss against training tokens");
  bl_plot_set_axis_labels (self->law_plot, "log₁₀ training tokens", "predicted loss");
  update_law (self);
}

/**
 * bl_scaling_view_set_model:
 * @self: a view
 * @model: (nullable): the model whose crossover map the page shows
 */
void
bl_scaling_view_set_model (BlScalingView *self,
                           BlModel       *model)
{
  g_return_if_fail (BL_IS_SCALING_VIEW (self));

  if (model == self->model)
    return;
  if (self->cancellable != NULL)
    g_cancellable_cancel (self->cancellable);
  g_clear_object (&self->cancellable);
  g_clear_pointer (&self->entries, g_ptr_array_unref);
  g_set_object (&self->model, model);
  gtk_label_set_text (self->crossover_label, model != NULL ? "" : "No model is open.");
  update_crossover (self);
  maybe_start_map (self);
}

/**
 * bl_scaling_view_set_law_inputs:
 * @self: a view
 * @n_params: N, non-embedding parameters
 * @tokens: D, training tokens
 * @exponent_bits: E
 * @mantissa_bits: M
 * @block_size: B, elements per scaling factor
 *
 * Sets the calculator's inputs, as a user would in the spin buttons.
 */
void
bl_scaling_view_set_law_inputs (BlScalingView *self,
                                double         n_params,
                                double         tokens,
                                int            exponent_bits,
                                int            mantissa_bits,
                                int            block_size)
{
  g_return_if_fail (BL_IS_SCALING_VIEW (self));

  gtk_spin_button_set_value (self->n_spin, n_params / 1e6);
  gtk_spin_button_set_value (self->d_spin, tokens / 1e9);
  gtk_spin_button_set_value (self->e_spin, exponent_bits);
  gtk_spin_button_set_value (self->m_spin, mantissa_bits);
  gtk_spin_button_set_value (self->b_spin, block_size);
  update_law (self);
}

/**
 * bl_scaling_view_get_loss:
 * @self: a view
 *
 * Returns: the law's loss at the calculator's inputs
 */
double
bl_scaling_view_get_loss (BlScalingView *self)
{
  g_return_val_if_fail (BL_IS_SCALING_VIEW (self), NAN);

  return self->loss;
}

/**
 * bl_scaling_view_get_critical_data:
 * @self: a view
 *
 * Returns: the critical data size in tokens at the calculator's inputs
 */
double
bl_scaling_view_get_critical_data (BlScalingView *self)
{
  g_return_val_if_fail (BL_IS_SCALING_VIEW (self), NAN);

  return self->d_crit;
}

/**
 * bl_scaling_view_get_layout_text:
 * @self: a view
 *
 * Returns: the best split of the chosen bit width, such as "E4M3"
 */
const char *
bl_scaling_view_get_layout_text (BlScalingView *self)
{
  g_return_val_if_fail (BL_IS_SCALING_VIEW (self), NULL);

  return self->layout_text;
}

/**
 * bl_scaling_view_get_n_crossover:
 * @self: a view
 *
 * Returns: the layers the crossover map shows for the chosen pair, 0 until it is computed
 */
guint
bl_scaling_view_get_n_crossover (BlScalingView *self)
{
  g_return_val_if_fail (BL_IS_SCALING_VIEW (self), 0);

  return self->n_shown;
}

/**
 * bl_scaling_view_get_crossover_text:
 * @self: a view
 *
 * Returns: (nullable): the sentence that sums up the crossover map
 */
const char *
bl_scaling_view_get_crossover_text (BlScalingView *self)
{
  g_return_val_if_fail (BL_IS_SCALING_VIEW (self), NULL);

  return self->crossover_text;
}
