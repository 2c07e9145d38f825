/* bl-format-picker.c: choose a weight format, an algorithm and an activation format
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "bl-format-picker.h"

#include <string.h>

#include "bitlens.h"

/**
 * SECTION:bl-format-picker
 * @title: BlFormatPicker
 *
 * Drop-downs for the parts of a spec string (family, element, granularity and group size,
 * integer convention, E8M0 scale rule, rounding), the algorithm and the activation spec, and
 * the spec string itself in an entry. The entry is the truth: the drop-downs write a string
 * into it, and a string typed into it sets the drop-downs. The core's parser
 * (bl_format_spec_parse()) decides what is valid and prints the canonical form.
 *
 * The apply buttons activate "win.apply" with "selection", "type", "all" or "clear"; the
 * window reads the picker's #BlFormatPicker:spec, #BlFormatPicker:act-spec and
 * #BlFormatPicker:algorithm.
 */

struct _BlFormatPicker
{
  GtkWidget parent_instance;

  /* Template widgets */
  GtkDropDown *family_dropdown;
  GtkDropDown *element_dropdown;
  GtkDropDown *granularity_dropdown;
  GtkDropDown *group_dropdown;
  GtkDropDown *convention_dropdown;
  GtkDropDown *scale_rule_dropdown;
  GtkDropDown *rounding_dropdown;
  GtkDropDown *algorithm_dropdown;
  GtkDropDown *act_dropdown;
  GtkWidget *granularity_field;
  GtkWidget *group_field;
  GtkWidget *convention_field;
  GtkWidget *scale_rule_field;
  GtkEntry *spec_entry;
  GtkLabel *summary_label;
  GtkButton *apply_selection_button;
  GtkButton *apply_type_button;

  /* State */
  char *spec;                /* canonical, or NULL when the entry does not parse */
  char *act_spec;
  char *algorithm;
  gboolean updating;
  guint n_selected;
  gboolean have_type;
};

G_DEFINE_FINAL_TYPE (BlFormatPicker, bl_format_picker, GTK_TYPE_WIDGET)

enum {
  PROP_0,
  PROP_SPEC,
  PROP_ACT_SPEC,
  PROP_ALGORITHM,
  PROP_VALID,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

static const char *const int_variants[] = { "int2", "int3", "int4", "int5", "int6", "int7", "int8", NULL };
static const char *const fp_variants[] = { "fp4-e2m1", "fp6-e2m3", "fp6-e3m2", "fp8-e4m3", "fp8-e5m2", NULL };
static const char *const mxfp_variants[] = { "mxfp4", "mxfp6-e2m3", "mxfp6-e3m2", "mxfp8-e4m3", "mxfp8-e5m2", NULL };
static const char *const mxint_variants[] = { "mxint4", "mxint6", "mxint8", NULL };
static const char *const bitmod_variants[] = { "bitmod3", "bitmod4", NULL };

static const char *const granularities[] = { "tensor", "channel", "group", NULL };
static const int group_sizes[] = { 16, 32, 64, 128, 256 };
static const char *const conventions[] = { "sym", "asym", "gptq", "q4_0", NULL };
static const char *const scale_rules[] = { "floor", "ceil", "rceil", "even", NULL };
static const char *const roundings[] = { "rne", "away", "zero", "up", "stochastic", NULL };

/* The weight algorithms of bl-quant-algo.h and the compositions people use; the data-aware
 * ones calibrate first (bl-quant-engine.h). */
static const char *const algorithms[] = { "rtn", "clip-mse", "gptq", "awq", "smoothquant+gptq",
                                          "hadamard+gptq", "hadamard", "gptq+bias-correction", NULL };

/* Activation quantizers: dynamic per token or in MX/NV blocks along a row, and static per
 * tensor from calibrated ranges. */
static const char *const act_specs[] = { "none", "int8:token", "int8:tensor", "int4:token",
                                         "fp8-e4m3:token", "fp8-e4m3:tensor", "mxfp8-e4m3", "mxfp4",
                                         "nvfp4", NULL };

static const char *const *
variants_for (BlFormatFamily family,
              const char    *single[2])
{
  switch (family)
    {
    case BL_FORMAT_INT:
      return int_variants;
    case BL_FORMAT_FP:
      return fp_variants;
    case BL_FORMAT_MXFP:
      return mxfp_variants;
    case BL_FORMAT_MXINT:
      return mxint_variants;
    case BL_FORMAT_BITMOD:
      return bitmod_variants;
    default:
      single[0] = bl_format_family_get_name (family);
      single[1] = NULL;
      return single;
    }
}

static gboolean
family_has_granularity (BlFormatFamily family)
{
  switch (family)
    {
    case BL_FORMAT_INT:
    case BL_FORMAT_FP:
    case BL_FORMAT_NF4:
    case BL_FORMAT_BITMOD:
    case BL_FORMAT_INT2_INT4:
    case BL_FORMAT_BINARY:
    case BL_FORMAT_TERNARY:
      return TRUE;
    default:
      return FALSE;
    }
}

static guint
strv_index (const char *const *strv,
            const char        *s)
{
  for (guint i = 0; strv[i] != NULL; i++)
    if (g_strcmp0 (strv[i], s) == 0)
      return i;
  return GTK_INVALID_LIST_POSITION;
}

static const char *
selected_string (GtkDropDown *dropdown)
{
  GtkStringObject *obj = gtk_drop_down_get_selected_item (dropdown);

  return obj ? gtk_string_object_get_string (obj) : NULL;
}

static void
set_strings (GtkDropDown       *dropdown,
             const char *const *strings)
{
  GtkStringList *list = gtk_string_list_new ((const char **) strings);

  gtk_drop_down_set_model (dropdown, G_LIST_MODEL (list));
  g_object_unref (list);
}

/* A field lives in a GtkFlowBoxChild, which is what the flow box lays out or skips. */
static void
set_field_visible (GtkWidget *field,
                   gboolean   visible)
{
  GtkWidget *parent = gtk_widget_get_parent (field);

  gtk_widget_set_visible (field, visible);
  if (GTK_IS_FLOW_BOX_CHILD (parent))
    gtk_widget_set_visible (parent, visible);
}

static void
update_field_visibility (BlFormatPicker *self,
                         BlFormatFamily  family)
{
  gboolean granular = family_has_granularity (family);

  set_field_visible (self->granularity_field, granular);
  set_field_visible (self->group_field,
                     granular && gtk_drop_down_get_selected (self->granularity_dropdown) == 2);
  set_field_visible (self->convention_field, family == BL_FORMAT_INT);
  set_field_visible (self->scale_rule_field,
                     family == BL_FORMAT_MXFP || family == BL_FORMAT_MXINT);
}

/* Sets the drop-downs from a parsed spec, without feeding back into the entry. */
static void
controls_from_spec (BlFormatPicker     *self,
                    const BlFormatSpec *spec,
                    const char         *canonical)
{
  const char *single[2];
  const char *const *variants = variants_for (spec->family, single);
  g_autofree char *token = g_strndup (canonical, strcspn (canonical, ":"));
  guint i;

  self->updating = TRUE;
  gtk_drop_down_set_selected (self->family_dropdown, spec->family);
  set_strings (self->element_dropdown, variants);
  i = strv_index (variants, token);
  gtk_drop_down_set_selected (self->element_dropdown, i == GTK_INVALID_LIST_POSITION ? 0 : i);
  gtk_drop_down_set_selected (self->granularity_dropdown,
                              spec->granularity == BL_GRANULARITY_GROUP ? 2
                              : spec->granularity == BL_GRANULARITY_TENSOR ? 0 : 1);
  for (i = 0; i < G_N_ELEMENTS (group_sizes); i++)
    if (group_sizes[i] >= spec->group_size)
      break;
  gtk_drop_down_set_selected (self->group_dropdown, MIN (i, G_N_ELEMENTS (group_sizes) - 1));
  gtk_drop_down_set_selected (self->convention_dropdown,
                              spec->int_convention == BL_INT_ASYM ? 1
                              : spec->int_convention == BL_INT_GPTQ ? 2
                              : spec->int_convention == BL_INT_Q4_0 ? 3 : 0);
  gtk_drop_down_set_selected (self->scale_rule_dropdown, spec->scale_rule);
  gtk_drop_down_set_selected (self->rounding_dropdown, spec->rounding);
  update_field_visibility (self, spec->family);
  self->updating = FALSE;
}

static void
update_sensitivity (BlFormatPicker *self)
{
  gtk_widget_set_sensitive (GTK_WIDGET (self->apply_selection_button), self->spec != NULL && self->n_selected > 0);
  gtk_widget_set_sensitive (GTK_WIDGET (self->apply_type_button), self->spec != NULL && self->have_type);
}

/* GTK 4.8 reads a tooltip lazily and can trip over one replaced while its query is
 * pending, so a tooltip is only set when it changes. */
static void
set_tooltip (GtkWidget  *widget,
             const char *text)
{
  if (g_strcmp0 (gtk_widget_get_tooltip_text (widget), text) != 0)
    gtk_widget_set_tooltip_text (widget, text);
}

static void
set_spec_internal (BlFormatPicker *self,
                   const char     *canonical)
{
  if (g_strcmp0 (self->spec, canonical) == 0)
    return;
  g_free (self->spec);
  self->spec = g_strdup (canonical);
  update_sensitivity (self);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_SPEC]);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_VALID]);
}

/* Parses the entry; on success the drop-downs follow and the spec becomes the canonical
 * string, otherwise the entry shows why. */
static void
on_entry_changed (BlFormatPicker *self,
                  GtkEditable    *editable)
{
  const char *text = gtk_editable_get_text (editable);
  g_autoptr(GError) error = NULL;
  BlFormatSpec spec;

  if (!bl_format_spec_parse (text, &spec, &error))
    {
      gtk_widget_add_css_class (GTK_WIDGET (self->spec_entry), "error");
      set_tooltip (GTK_WIDGET (self->spec_entry), error->message);
      set_spec_internal (self, NULL);
      return;
    }
  {
    g_autofree char *canonical = bl_format_spec_to_string (&spec);

    gtk_widget_remove_css_class (GTK_WIDGET (self->spec_entry), "error");
    set_tooltip (GTK_WIDGET (self->spec_entry), "The weight spec; type any spec the CLI accepts");
    if (!self->updating)
      controls_from_spec (self, &spec, canonical);
    set_spec_internal (self, canonical);
  }
}

/* Writes the drop-downs' choice into the entry. */
static void
compose (BlFormatPicker *self)
{
  g_autoptr(GString) s = g_string_new (selected_string (self->element_dropdown));
  BlFormatFamily family = gtk_drop_down_get_selected (self->family_dropdown);
  const char *rounding = selected_string (self->rounding_dropdown);

  if (self->updating || s->len == 0)
    return;
  if (gtk_widget_get_visible (self->granularity_field))
    {
      guint g = gtk_drop_down_get_selected (self->granularity_dropdown);

      if (g == 2)
        g_string_append_printf (s, ":g%d", group_sizes[MIN (gtk_drop_down_get_selected (self->group_dropdown),
                                                            G_N_ELEMENTS (group_sizes) - 1)]);
      else
        g_string_append_printf (s, ":%s", granularities[g]);
    }
  if (family == BL_FORMAT_INT)
    g_string_append_printf (s, ":%s", selected_string (self->convention_dropdown));
  if (gtk_widget_get_visible (self->scale_rule_field)
      && gtk_drop_down_get_selected (self->scale_rule_dropdown) != 0)
    g_string_append_printf (s, ":%s", selected_string (self->scale_rule_dropdown));
  if (rounding != NULL && !g_str_equal (rounding, "rne"))
    g_string_append_printf (s, ":%s", rounding);

  self->updating = TRUE;
  gtk_editable_set_text (GTK_EDITABLE (self->spec_entry), s->str);
  self->updating = FALSE;
  /* show the canonical spelling */
  if (self->spec != NULL && !g_str_equal (self->spec, s->str))
    {
      self->updating = TRUE;
      gtk_editable_set_text (GTK_EDITABLE (self->spec_entry), self->spec);
      self->updating = FALSE;
    }
}

static void
on_family_changed (BlFormatPicker *self)
{
  BlFormatFamily family = gtk_drop_down_get_selected (self->family_dropdown);
  BlFormatSpec def;
  g_autofree char *canonical = NULL;

  if (self->updating || family >= BL_FORMAT_N_FAMILIES)
    return;
  bl_format_spec_init_default (&def, family);
  canonical = bl_format_spec_to_string (&def);
  /* the family's own default spec sets the element and the granularity */
  controls_from_spec (self, &def, canonical);
  set_tooltip (GTK_WIDGET (self->family_dropdown), bl_format_family_get_description (family));
  compose (self);
}

static void
on_element_changed (BlFormatPicker *self)
{
  const char *token = selected_string (self->element_dropdown);
  BlFormatSpec spec;

  if (self->updating || token == NULL)
    return;
  /* a new element keeps the granularity the user chose */
  if (bl_format_spec_parse (token, &spec, NULL))
    update_field_visibility (self, spec.family);
  compose (self);
}

static void
on_option_changed (BlFormatPicker *self)
{
  if (self->updating)
    return;
  update_field_visibility (self, gtk_drop_down_get_selected (self->family_dropdown));
  compose (self);
}

static void
on_algorithm_changed (BlFormatPicker *self)
{
  const char *algorithm = selected_string (self->algorithm_dropdown);

  if (algorithm == NULL || g_strcmp0 (algorithm, self->algorithm) == 0)
    return;
  g_free (self->algorithm);
  self->algorithm = g_strdup (algorithm);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_ALGORITHM]);
}

static void
on_act_changed (BlFormatPicker *self)
{
  const char *act = selected_string (self->act_dropdown);

  if (act != NULL && g_str_equal (act, "none"))
    act = NULL;
  if (g_strcmp0 (act, self->act_spec) == 0)
    return;
  g_free (self->act_spec);
  self->act_spec = g_strdup (act);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_ACT_SPEC]);
}

static void
bl_format_picker_dispose (GObject *object)
{
  GtkWidget *child;

  gtk_widget_dispose_template (GTK_WIDGET (object), BL_TYPE_FORMAT_PICKER);
  /* the template children that are not bound to a field */
  while ((child = gtk_widget_get_first_child (GTK_WIDGET (object))) != NULL)
    gtk_widget_unparent (child);

  G_OBJECT_CLASS (bl_format_picker_parent_class)->dispose (object);
}

static void
bl_format_picker_finalize (GObject *object)
{
  BlFormatPicker *self = BL_FORMAT_PICKER (object);

  g_clear_pointer (&self->spec, g_free);
  g_clear_pointer (&self->act_spec, g_free);
  g_clear_pointer (&self->algorithm, g_free);

  G_OBJECT_CLASS (bl_format_picker_parent_class)->finalize (object);
}

static void
bl_format_picker_get_property (GObject    *object,
                               guint       prop_id,
                               GValue     *value,
                               GParamSpec *pspec)
{
  BlFormatPicker *self = BL_FORMAT_PICKER (object);

  switch (prop_id)
    {
    case PROP_SPEC:
      g_value_set_string (value, self->spec);
      break;
    case PROP_ACT_SPEC:
      g_value_set_string (value, self->act_spec);
      break;
    case PROP_ALGORITHM:
      g_value_set_string (value, self->algorithm);
      break;
    case PROP_VALID:
      g_value_set_boolean (value, self->spec != NULL);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
bl_format_picker_class_init (BlFormatPickerClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);
  GParamFlags ro = G_PARAM_READABLE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY;

  object_class->dispose = bl_format_picker_dispose;
  object_class->finalize = bl_format_picker_finalize;
  object_class->get_property = bl_format_picker_get_property;

  properties[PROP_SPEC] = g_param_spec_string ("spec", NULL, NULL, NULL, ro);
  properties[PROP_ACT_SPEC] = g_param_spec_string ("act-spec", NULL, NULL, NULL, ro);
  properties[PROP_ALGORITHM] = g_param_spec_string ("algorithm", NULL, NULL, NULL, ro);
  properties[PROP_VALID] = g_param_spec_boolean ("valid", NULL, NULL, FALSE, ro);
  g_object_class_install_properties (object_class, N_PROPS, properties);

  gtk_widget_class_set_template_from_resource (widget_class, "/io/github/bitlens/Bitlens/bl-format-picker.ui");
  gtk_widget_class_bind_template_child (widget_class, BlFormatPicker, family_dropdown);
  gtk_widget_class_bind_template_child (widget_class, BlFormatPicker, element_dropdown);
  gtk_widget_class_bind_template_child (widget_class, BlFormatPicker, granularity_dropdown);
  gtk_widget_class_bind_template_child (widget_class, BlFormatPicker, group_dropdown);
  gtk_widget_class_bind_template_child (widget_class, BlFormatPicker, convention_dropdown);
  gtk_widget_class_bind_template_child (widget_class, BlFormatPicker, scale_rule_dropdown);
  gtk_widget_class_bind_template_child (widget_class, BlFormatPicker, rounding_dropdown);
  gtk_widget_class_bind_template_child (widget_class, BlFormatPicker, algorithm_dropdown);
  gtk_widget_class_bind_template_child (widget_class, BlFormatPicker, act_dropdown);
  gtk_widget_class_bind_template_child (widget_class, BlFormatPicker, granularity_field);
  gtk_widget_class_bind_template_child (widget_class, BlFormatPicker, group_field);
  gtk_widget_class_bind_template_child (widget_class, BlFormatPicker, convention_field);
  gtk_widget_class_bind_template_child (widget_class, BlFormatPicker, scale_rule_field);
  gtk_widget_class_bind_template_child (widget_class, BlFormatPicker, spec_entry);
  gtk_widget_class_bind_template_child (widget_class, BlFormatPicker, summary_label);
  gtk_widget_class_bind_template_child (widget_class, BlFormatPicker, apply_selection_button);
  gtk_widget_class_bind_template_child (widget_class, BlFormatPicker, apply_type_button);
  gtk_widget_class_bind_template_callback (widget_class, on_entry_changed);
  gtk_widget_class_bind_template_callback (widget_class, on_family_changed);
  gtk_widget_class_bind_template_callback (widget_class, on_element_changed);
  gtk_widget_class_bind_template_callback (widget_class, on_option_changed);
  gtk_widget_class_bind_template_callback (widget_class, on_algorithm_changed);
  gtk_widget_class_bind_template_callback (widget_class, on_act_changed);
  gtk_widget_class_set_layout_manager_type (widget_class, GTK_TYPE_BIN_LAYOUT);
  gtk_widget_class_set_css_name (widget_class, "formatpicker");
}

static void
bl_format_picker_init (BlFormatPicker *self)
{
  g_autoptr(GStrvBuilder) families = g_strv_builder_new ();
  g_autoptr(GStrvBuilder) groups = g_strv_builder_new ();
  g_auto(GStrv) family_names = NULL;
  g_auto(GStrv) group_names = NULL;

  gtk_widget_init_template (GTK_WIDGET (self));

  for (int f = 0; f < BL_FORMAT_N_FAMILIES; f++)
    g_strv_builder_add (families, bl_format_family_get_name (f));
  family_names = g_strv_builder_end (families);
  for (guint i = 0; i < G_N_ELEMENTS (group_sizes); i++)
    {
      char buf[16];

      g_snprintf (buf, sizeof buf, "%d", group_sizes[i]);
      g_strv_builder_add (groups, buf);
    }
  group_names = g_strv_builder_end (groups);

  self->updating = TRUE;
  set_strings (self->family_dropdown, (const char *const *) family_names);
  set_strings (self->granularity_dropdown, granularities);
  set_strings (self->group_dropdown, (const char *const *) group_names);
  set_strings (self->convention_dropdown, conventions);
  set_strings (self->scale_rule_dropdown, scale_rules);
  set_strings (self->rounding_dropdown, roundings);
  set_strings (self->algorithm_dropdown, algorithms);
  set_strings (self->act_dropdown, act_specs);
  self->updating = FALSE;

  self->algorithm = g_strdup ("rtn");
  bl_format_picker_set_spec (self, "mxfp4");
}

GtkWidget *
bl_format_picker_new (void)
{
  return g_object_new (BL_TYPE_FORMAT_PICKER, NULL);
}

/**
 * bl_format_picker_get_spec:
 * @self: a picker
 *
 * Returns: (nullable): the canonical weight spec, or %NULL while the entry does not parse
 */
const char *
bl_format_picker_get_spec (BlFormatPicker *self)
{
  g_return_val_if_fail (BL_IS_FORMAT_PICKER (self), NULL);

  return self->spec;
}

/**
 * bl_format_picker_get_act_spec:
 * @self: a picker
 *
 * Returns: (nullable): the activation spec, or %NULL for full-precision inputs
 */
const char *
bl_format_picker_get_act_spec (BlFormatPicker *self)
{
  g_return_val_if_fail (BL_IS_FORMAT_PICKER (self), NULL);

  return self->act_spec;
}

const char *
bl_format_picker_get_algorithm (BlFormatPicker *self)
{
  g_return_val_if_fail (BL_IS_FORMAT_PICKER (self), NULL);

  return self->algorithm;
}

gboolean
bl_format_picker_get_valid (BlFormatPicker *self)
{
  g_return_val_if_fail (BL_IS_FORMAT_PICKER (self), FALSE);

  return self->spec != NULL;
}

/**
 * bl_format_picker_set_spec:
 * @self: a picker
 * @spec: a weight spec string
 *
 * Shows @spec in the entry and the drop-downs.
 *
 * Returns: whether @spec parses
 */
gboolean
bl_format_picker_set_spec (BlFormatPicker *self,
                           const char     *spec)
{
  g_return_val_if_fail (BL_IS_FORMAT_PICKER (self), FALSE);
  g_return_val_if_fail (spec != NULL, FALSE);

  gtk_editable_set_text (GTK_EDITABLE (self->spec_entry), spec);
  return self->spec != NULL;
}

/**
 * bl_format_picker_set_act_spec:
 * @self: a picker
 * @act_spec: (nullable): one of the offered activation specs, or %NULL for none
 */
void
bl_format_picker_set_act_spec (BlFormatPicker *self,
                               const char     *act_spec)
{
  guint i;

  g_return_if_fail (BL_IS_FORMAT_PICKER (self));

  i = strv_index (act_specs, act_spec ? act_spec : "none");
  if (i == GTK_INVALID_LIST_POSITION)
    {
      g_autoptr(GStrvBuilder) b = g_strv_builder_new ();
      g_auto(GStrv) strings = NULL;

      /* a spec from a restored plan that the list does not offer: add it */
      g_strv_builder_addv (b, (const char **) act_specs);
      g_strv_builder_add (b, act_spec);
      strings = g_strv_builder_end (b);
      set_strings (self->act_dropdown, (const char *const *) strings);
      i = g_strv_length (strings) - 1;
    }
  gtk_drop_down_set_selected (self->act_dropdown, i);
  on_act_changed (self);
}

/**
 * bl_format_picker_set_algorithm:
 * @self: a picker
 * @algorithm: an offered algorithm name
 */
void
bl_format_picker_set_algorithm (BlFormatPicker *self,
                                const char     *algorithm)
{
  guint i;

  g_return_if_fail (BL_IS_FORMAT_PICKER (self));

  i = strv_index (algorithms, algorithm);
  if (i != GTK_INVALID_LIST_POSITION)
    gtk_drop_down_set_selected (self->algorithm_dropdown, i);
  on_algorithm_changed (self);
}

/**
 * bl_format_picker_set_summary:
 * @self: a picker
 * @markup: Pango markup: what the spec costs on the selection and on the model
 */
void
bl_format_picker_set_summary (BlFormatPicker *self,
                              const char     *markup)
{
  g_return_if_fail (BL_IS_FORMAT_PICKER (self));

  gtk_label_set_markup (self->summary_label, markup ? markup : "");
}

/**
 * bl_format_picker_set_target:
 * @self: a picker
 * @n_selected: how many layers "apply to the selection" would change
 * @layer_label: (nullable): the selected layer's name when @n_selected is 1
 * @type_label: (nullable): the type of the focused layer, e.g. "mlp_down"
 *
 * Names the targets on the apply buttons; with nothing selected, "apply to the selection"
 * is off.
 */
void
bl_format_picker_set_target (BlFormatPicker *self,
                             guint           n_selected,
                             const char     *layer_label,
                             const char     *type_label)
{
  g_autofree char *sel = NULL;
  g_autofree char *type = NULL;

  g_return_if_fail (BL_IS_FORMAT_PICKER (self));

  if (n_selected == 0)
    sel = g_strdup ("Apply to selection");
  else if (n_selected == 1 && layer_label != NULL)
    sel = g_strdup_printf ("Apply to %s", layer_label);
  else
    sel = g_strdup_printf ("Apply to %u layers", n_selected);
  type = type_label ? g_strdup_printf ("All %s", type_label) : g_strdup ("All of this type");
  gtk_button_set_label (self->apply_selection_button, sel);
  gtk_button_set_label (self->apply_type_button, type);
  self->n_selected = n_selected;
  self->have_type = type_label != NULL;
  update_sensitivity (self);
}
