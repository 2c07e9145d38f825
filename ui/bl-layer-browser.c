/* bl-layer-browser.c: the layers of a model, grouped by block, as a sortable, filterable table
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "bl-layer-browser.h"

#include <math.h>
#include <string.h>

/**
 * SECTION:bl-layer-browser
 * @title: BlLayerBrowser
 *
 * A #GtkColumnView over a #GtkTreeListModel: one expandable row per block (#BlLayerItem
 * groups), its layers beneath. The column headers sort within each block
 * (#GtkTreeListRowSorter); the search entry filters by a glob anywhere in the layer name
 * ("attn.*", "mlp.down*"); the selection is multiple, and a selected block stands for all of
 * its layers. The cells follow their item's properties, so a plan change shows at once.
 */

struct _BlLayerBrowser
{
  GtkWidget parent_instance;

  /* Template widgets */
  GtkSearchEntry *search_entry;
  GtkColumnView *column_view;
  GtkLabel *status_label;

  /* The model chain: groups → filtered groups → tree → sorted → selection */
  GListModel *groups;
  GtkCustomFilter *child_filter;
  GtkCustomFilter *group_filter;
  GtkTreeListModel *tree;
  GtkMultiSelection *selection;
  char *pattern;

  BlLayerItem *focus;
  char *note;
  double sensitivity_scale;
};

G_DEFINE_FINAL_TYPE (BlLayerBrowser, bl_layer_browser, GTK_TYPE_WIDGET)

enum {
  PROP_0,
  PROP_FOCUS,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

enum {
  SIGNAL_SELECTION_CHANGED,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

typedef void (*RefreshFunc) (GtkWidget   *cell,
                             BlLayerItem *item);

/* Cell contents */

static char *
format_count (gint64 n)
{
  if (n >= 1000000000)
    return g_strdup_printf ("%.2fG", n / 1e9);
  if (n >= 1000000)
    return g_strdup_printf ("%.2fM", n / 1e6);
  if (n >= 10000)
    return g_strdup_printf ("%.1fk", n / 1e3);
  return g_strdup_printf ("%" G_GINT64_FORMAT, n);
}

static GtkWidget *
label_cell (double xalign)
{
  GtkWidget *label = gtk_label_new (NULL);

  gtk_label_set_xalign (GTK_LABEL (label), xalign);
  gtk_widget_add_css_class (label, "numeric");
  return label;
}

static GtkWidget *
setup_name (void)
{
  GtkWidget *expander = gtk_tree_expander_new ();
  GtkWidget *label = gtk_label_new (NULL);

  gtk_label_set_xalign (GTK_LABEL (label), 0);
  gtk_label_set_ellipsize (GTK_LABEL (label), PANGO_ELLIPSIZE_MIDDLE);
  gtk_tree_expander_set_child (GTK_TREE_EXPANDER (expander), label);
  return expander;
}

static void
refresh_name (GtkWidget   *cell,
              BlLayerItem *item)
{
  GtkWidget *label = gtk_tree_expander_get_child (GTK_TREE_EXPANDER (cell));

  gtk_label_set_text (GTK_LABEL (label), bl_layer_item_get_title (item));
  /* GTK 4.8 reads a tooltip lazily and can trip over one replaced while its query is
   * pending, so a cell's tooltip changes only when the cell shows another layer */
  if (g_strcmp0 (gtk_widget_get_tooltip_text (cell), bl_layer_item_get_name (item)) != 0)
    gtk_widget_set_tooltip_text (cell, bl_layer_item_get_name (item));
  if (bl_layer_item_is_group (item))
    gtk_widget_add_css_class (label, "heading");
  else
    gtk_widget_remove_css_class (label, "heading");
}

static GtkWidget *
setup_shape (void)
{
  GtkWidget *label = label_cell (0);

  gtk_widget_add_css_class (label, "dim-label");
  return label;
}

static void
refresh_shape (GtkWidget   *cell,
               BlLayerItem *item)
{
  g_autofree char *shape = NULL;

  g_object_get (item, "shape", &shape, NULL);
  gtk_label_set_text (GTK_LABEL (cell), shape);
}

static GtkWidget *
setup_params (void)
{
  return label_cell (1);
}

static void
refresh_params (GtkWidget   *cell,
                BlLayerItem *item)
{
  g_autofree char *text = format_count (bl_layer_item_get_n_params (item));

  gtk_label_set_text (GTK_LABEL (cell), text);
}

static GtkWidget *
setup_badge (void)
{
  GtkWidget *label = gtk_label_new (NULL);

  gtk_widget_set_halign (label, GTK_ALIGN_START);
  gtk_label_set_ellipsize (GTK_LABEL (label), PANGO_ELLIPSIZE_END);
  gtk_widget_add_css_class (label, "badge");
  return label;
}

static void
set_badge (GtkWidget  *cell,
           const char *text,
           gboolean    active)
{
  gtk_label_set_text (GTK_LABEL (cell), text);
  gtk_widget_set_visible (cell, text != NULL && *text != '\0');
  if (active)
    gtk_widget_add_css_class (cell, "quantized");
  else
    gtk_widget_remove_css_class (cell, "quantized");
}

/* The stored type in the spec vocabulary's spelling (bf16, fp16), so the column reads as
 * one language. */
static const char *
dtype_badge (BlDType dtype)
{
  switch (dtype)
    {
    case BL_DTYPE_BF16:
      return "bf16";
    case BL_DTYPE_F16:
      return "fp16";
    case BL_DTYPE_F32:
    default:
      return "fp32";
    }
}

static void
refresh_weight (GtkWidget   *cell,
                BlLayerItem *item)
{
  const char *spec = bl_layer_item_get_weight_spec (item);
  BlLayer *layer = bl_layer_item_get_layer (item);

  if (layer == NULL)
    set_badge (cell, NULL, FALSE);
  else if (spec != NULL)
    set_badge (cell, spec, TRUE);
  else
    set_badge (cell, dtype_badge (bl_layer_get_tensor (layer)->dtype), FALSE);
}

static void
refresh_act (GtkWidget   *cell,
             BlLayerItem *item)
{
  const char *spec = bl_layer_item_get_act_spec (item);

  set_badge (cell, spec, spec != NULL);
}

static GtkWidget *
setup_bpw (void)
{
  return label_cell (1);
}

static void
refresh_bpw (GtkWidget   *cell,
             BlLayerItem *item)
{
  char buf[32];

  g_snprintf (buf, sizeof buf, "%.3f", bl_layer_item_get_bpw (item));
  gtk_label_set_text (GTK_LABEL (cell), buf);
}

static GtkWidget *
setup_bar (void)
{
  GtkWidget *box = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 6);
  GtkWidget *bar = gtk_level_bar_new_for_interval (0, 1);
  GtkWidget *label = label_cell (1);

  gtk_widget_set_size_request (bar, 40, -1);
  gtk_widget_set_valign (bar, GTK_ALIGN_CENTER);
  gtk_label_set_width_chars (GTK_LABEL (label), 5);
  gtk_box_append (GTK_BOX (box), bar);
  gtk_box_append (GTK_BOX (box), label);
  return box;
}

static void
set_bar (GtkWidget  *cell,
         double      fraction,
         const char *text)
{
  GtkWidget *bar = gtk_widget_get_first_child (cell);
  GtkWidget *label = gtk_widget_get_next_sibling (bar);

  gtk_level_bar_set_value (GTK_LEVEL_BAR (bar), isnan (fraction) ? 0 : CLAMP (fraction, 0, 1));
  gtk_widget_set_opacity (bar, isnan (fraction) ? 0.3 : 1.0);
  gtk_label_set_text (GTK_LABEL (label), text);
}

static GtkWidget *
setup_qsnr (void)
{
  GtkWidget *cell = setup_bar ();

  gtk_widget_set_tooltip_text (cell, "Quantization SNR of the weight under its format (round to nearest)");
  return cell;
}

static GtkWidget *
setup_sensitivity (void)
{
  GtkWidget *cell = setup_bar ();
  GtkWidget *bar = gtk_widget_get_first_child (cell);

  gtk_widget_set_tooltip_text (cell, "KL divergence of the output (nats/token) with only this layer "
                               "quantized to the reference format; the bar is relative to the most "
                               "sensitive layer");
  /* a long bar is a warning here, not a good sign as for QSNR: no low/high colours */
  gtk_level_bar_remove_offset_value (GTK_LEVEL_BAR (bar), GTK_LEVEL_BAR_OFFSET_LOW);
  gtk_level_bar_remove_offset_value (GTK_LEVEL_BAR (bar), GTK_LEVEL_BAR_OFFSET_HIGH);
  gtk_level_bar_remove_offset_value (GTK_LEVEL_BAR (bar), GTK_LEVEL_BAR_OFFSET_FULL);
  return cell;
}

static void
refresh_qsnr (GtkWidget   *cell,
              BlLayerItem *item)
{
  double q = bl_layer_item_get_qsnr (item);
  char buf[32];

  /* 40 dB (an 8-bit grid on a Gaussian is about 40) fills the bar. */
  if (isnan (q))
    set_bar (cell, NAN, "…");
  else if (isinf (q))
    set_bar (cell, NAN, "exact");
  else
    {
      g_snprintf (buf, sizeof buf, "%.1f dB", q);
      set_bar (cell, q / 40.0, buf);
    }
}

/* One-at-a-time KL (nats/token) with only this layer quantized to the reference format; the
 * bar is relative to the most sensitive layer. */
static void
refresh_sensitivity (GtkWidget   *cell,
                     BlLayerItem *item)
{
  BlLayerBrowser *self = g_object_get_data (G_OBJECT (cell), "bl-browser");
  double s = bl_layer_item_get_sensitivity (item);
  char buf[32];

  if (isnan (s))
    set_bar (cell, NAN, bl_layer_item_get_quantizable (item) ? "…" : "—");
  else
    {
      g_snprintf (buf, sizeof buf, "%.2g", s);
      set_bar (cell, self->sensitivity_scale > 0 ? s / self->sensitivity_scale : NAN, buf);
    }
}

/* Sorting: within a block, by the column's value */

static int
cmp_double (double a,
            double b)
{
  if (isnan (a) || isnan (b))
    return isnan (a) - isnan (b);
  return (a > b) - (a < b);
}

static int
cmp_name (gconstpointer a,
          gconstpointer b,
          gpointer      data)
{
  return g_strcmp0 (bl_layer_item_get_title ((BlLayerItem *) a), bl_layer_item_get_title ((BlLayerItem *) b));
}

static int
cmp_params (gconstpointer a,
            gconstpointer b,
            gpointer      data)
{
  gint64 x = bl_layer_item_get_n_params ((BlLayerItem *) a), y = bl_layer_item_get_n_params ((BlLayerItem *) b);

  return (x > y) - (x < y);
}

static int
cmp_weight (gconstpointer a,
            gconstpointer b,
            gpointer      data)
{
  return g_strcmp0 (bl_layer_item_get_weight_spec ((BlLayerItem *) a),
                    bl_layer_item_get_weight_spec ((BlLayerItem *) b));
}

static int
cmp_act (gconstpointer a,
         gconstpointer b,
         gpointer      data)
{
  return g_strcmp0 (bl_layer_item_get_act_spec ((BlLayerItem *) a),
                    bl_layer_item_get_act_spec ((BlLayerItem *) b));
}

static int
cmp_bpw (gconstpointer a,
         gconstpointer b,
         gpointer      data)
{
  return cmp_double (bl_layer_item_get_bpw ((BlLayerItem *) a), bl_layer_item_get_bpw ((BlLayerItem *) b));
}

static int
cmp_qsnr (gconstpointer a,
          gconstpointer b,
          gpointer      data)
{
  return cmp_double (bl_layer_item_get_qsnr ((BlLayerItem *) a), bl_layer_item_get_qsnr ((BlLayerItem *) b));
}

static int
cmp_sensitivity (gconstpointer a,
                 gconstpointer b,
                 gpointer      data)
{
  return cmp_double (bl_layer_item_get_sensitivity ((BlLayerItem *) a),
                     bl_layer_item_get_sensitivity ((BlLayerItem *) b));
}

typedef struct
{
  const char *title;
  gboolean expand;
  int fixed_width;
  GtkWidget *(*setup) (void);
  RefreshFunc refresh;
  GCompareDataFunc compare;
} ColumnDef;

static const ColumnDef columns[] = {
  { "Layer", TRUE, 158, setup_name, refresh_name, cmp_name },
  { "Shape", FALSE, 76, setup_shape, refresh_shape, NULL },
  { "Params", FALSE, 54, setup_params, refresh_params, cmp_params },
  { "Weights", FALSE, 112, setup_badge, refresh_weight, cmp_weight },
  { "Inputs", FALSE, 76, setup_badge, refresh_act, cmp_act },
  { "Bits/w", FALSE, 54, setup_bpw, refresh_bpw, cmp_bpw },
  { "QSNR", FALSE, 104, setup_qsnr, refresh_qsnr, cmp_qsnr },
  { "Sensitivity", FALSE, 116, setup_sensitivity, refresh_sensitivity, cmp_sensitivity },
};

static void
on_factory_setup (GtkSignalListItemFactory *factory,
                  GtkListItem              *list_item,
                  const ColumnDef          *def)
{
  GtkWidget *cell = def->setup ();

  g_object_set_data (G_OBJECT (cell), "bl-browser", g_object_get_data (G_OBJECT (factory), "bl-browser"));
  gtk_list_item_set_child (list_item, cell);
}

static void
on_item_notify (BlLayerItem *item,
                GParamSpec  *pspec,
                GtkWidget   *cell)
{
  RefreshFunc refresh = g_object_get_data (G_OBJECT (cell), "bl-refresh");

  refresh (cell, item);
}

static void
on_factory_bind (GtkSignalListItemFactory *factory,
                 GtkListItem              *list_item,
                 const ColumnDef          *def)
{
  GtkTreeListRow *row = gtk_list_item_get_item (list_item);
  BlLayerItem *item = gtk_tree_list_row_get_item (row);
  GtkWidget *cell = gtk_list_item_get_child (list_item);
  gulong id;

  if (GTK_IS_TREE_EXPANDER (cell))
    gtk_tree_expander_set_list_row (GTK_TREE_EXPANDER (cell), row);
  g_object_set_data (G_OBJECT (cell), "bl-refresh", def->refresh);
  def->refresh (cell, item);
  id = g_signal_connect_object (item, "notify", G_CALLBACK (on_item_notify), cell, 0);
  g_object_set_data (G_OBJECT (list_item), "bl-handler", GSIZE_TO_POINTER ((gsize) id));
  g_object_set_data_full (G_OBJECT (list_item), "bl-item", item, g_object_unref);
}

static void
on_factory_unbind (GtkSignalListItemFactory *factory,
                   GtkListItem              *list_item,
                   const ColumnDef          *def)
{
  BlLayerItem *item = g_object_get_data (G_OBJECT (list_item), "bl-item");
  gulong id = (gulong) GPOINTER_TO_SIZE (g_object_get_data (G_OBJECT (list_item), "bl-handler"));
  GtkWidget *cell = gtk_list_item_get_child (list_item);

  if (item != NULL && id != 0)
    g_signal_handler_disconnect (item, id);
  g_object_set_data (G_OBJECT (list_item), "bl-handler", NULL);
  g_object_set_data (G_OBJECT (list_item), "bl-item", NULL);
  if (GTK_IS_TREE_EXPANDER (cell))
    gtk_tree_expander_set_list_row (GTK_TREE_EXPANDER (cell), NULL);
}

/* Filtering */

static gboolean
child_matches (gpointer item,
               gpointer user_data)
{
  BlLayerBrowser *self = user_data;

  return self->pattern == NULL || g_pattern_match_simple (self->pattern, bl_layer_item_get_name (item));
}

static gboolean
group_matches (gpointer item,
               gpointer user_data)
{
  BlLayerBrowser *self = user_data;
  GListModel *children = bl_layer_item_get_children (item);

  if (self->pattern == NULL || children == NULL)
    return TRUE;
  for (guint i = 0; i < g_list_model_get_n_items (children); i++)
    {
      g_autoptr(BlLayerItem) child = g_list_model_get_item (children, i);

      if (child_matches (child, self))
        return TRUE;
    }
  return FALSE;
}

static GListModel *
create_children (gpointer item,
                 gpointer user_data)
{
  BlLayerBrowser *self = user_data;
  GListModel *children = bl_layer_item_get_children (item);

  if (children == NULL)
    return NULL;
  return G_LIST_MODEL (gtk_filter_list_model_new (g_object_ref (children),
                                                  GTK_FILTER (g_object_ref (self->child_filter))));
}

static void
update_status (BlLayerBrowser *self)
{
  g_autoptr(GPtrArray) selected = bl_layer_browser_get_selected_layers (self);
  guint n_layers = 0, n_shown = 0;
  g_autofree char *text = NULL;

  if (self->groups != NULL)
    for (guint i = 0; i < g_list_model_get_n_items (self->groups); i++)
      {
        g_autoptr(BlLayerItem) group = g_list_model_get_item (self->groups, i);
        GListModel *children = bl_layer_item_get_children (group);

        for (guint j = 0; j < g_list_model_get_n_items (children); j++)
          {
            g_autoptr(BlLayerItem) child = g_list_model_get_item (children, j);

            n_layers++;
            n_shown += child_matches (child, self);
          }
      }
  if (n_shown == n_layers)
    text = g_strdup_printf ("%u layers · %u selected%s%s", n_layers, selected->len,
                            self->note ? " · " : "", self->note ? self->note : "");
  else
    text = g_strdup_printf ("%u of %u layers match · %u selected%s%s", n_shown, n_layers, selected->len,
                            self->note ? " · " : "", self->note ? self->note : "");
  gtk_label_set_text (self->status_label, text);
}

static void
on_search_changed (BlLayerBrowser *self,
                   GtkSearchEntry *entry)
{
  const char *text = gtk_editable_get_text (GTK_EDITABLE (entry));
  g_autofree char *lower = g_utf8_strdown (text, -1);

  g_clear_pointer (&self->pattern, g_free);
  g_strstrip (lower);
  if (*lower != '\0')
    self->pattern = g_strdup_printf ("*%s*", lower);
  gtk_filter_changed (GTK_FILTER (self->child_filter), GTK_FILTER_CHANGE_DIFFERENT);
  gtk_filter_changed (GTK_FILTER (self->group_filter), GTK_FILTER_CHANGE_DIFFERENT);
  update_status (self);
}

static BlLayerItem *
row_item_at (BlLayerBrowser *self,
             guint           position)
{
  g_autoptr(GtkTreeListRow) row = g_list_model_get_item (G_LIST_MODEL (self->selection), position);

  return row ? gtk_tree_list_row_get_item (row) : NULL;
}

static void
on_selection_changed (BlLayerBrowser    *self,
                      guint              position,
                      guint              n_items,
                      GtkSelectionModel *model)
{
  g_autoptr(GtkBitset) set = gtk_selection_model_get_selection (model);
  BlLayerItem *focus = NULL;
  GtkBitsetIter iter;
  guint pos;

  for (gboolean ok = gtk_bitset_iter_init_first (&iter, set, &pos); ok && focus == NULL;
       ok = gtk_bitset_iter_next (&iter, &pos))
    {
      g_autoptr(BlLayerItem) item = row_item_at (self, pos);

      if (item != NULL && !bl_layer_item_is_group (item))
        focus = g_object_ref (item);
    }
  if (focus == NULL && !gtk_bitset_is_empty (set))
    {
      g_autoptr(BlLayerItem) group = row_item_at (self, gtk_bitset_get_minimum (set));
      GListModel *children = group ? bl_layer_item_get_children (group) : NULL;

      if (children != NULL && g_list_model_get_n_items (children) > 0)
        focus = g_list_model_get_item (children, 0);
    }

  if (focus != NULL && focus != self->focus)
    {
      g_set_object (&self->focus, focus);
      g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_FOCUS]);
    }
  g_clear_object (&focus);
  update_status (self);
  g_signal_emit (self, signals[SIGNAL_SELECTION_CHANGED], 0);
}

static void
on_items_changed (BlLayerBrowser *self,
                  guint           position,
                  guint           removed,
                  guint           added,
                  GListModel     *model)
{
  update_status (self);
  g_signal_emit (self, signals[SIGNAL_SELECTION_CHANGED], 0);
}

static void
bl_layer_browser_dispose (GObject *object)
{
  BlLayerBrowser *self = BL_LAYER_BROWSER (object);
  GtkWidget *child;

  gtk_widget_dispose_template (GTK_WIDGET (self), BL_TYPE_LAYER_BROWSER);
  /* the template children that are not bound to a field */
  while ((child = gtk_widget_get_first_child (GTK_WIDGET (self))) != NULL)
    gtk_widget_unparent (child);
  g_clear_object (&self->selection);
  g_clear_object (&self->tree);
  g_clear_object (&self->groups);
  g_clear_object (&self->focus);

  G_OBJECT_CLASS (bl_layer_browser_parent_class)->dispose (object);
}

static void
bl_layer_browser_finalize (GObject *object)
{
  BlLayerBrowser *self = BL_LAYER_BROWSER (object);

  g_clear_object (&self->child_filter);
  g_clear_object (&self->group_filter);
  g_clear_pointer (&self->pattern, g_free);
  g_clear_pointer (&self->note, g_free);

  G_OBJECT_CLASS (bl_layer_browser_parent_class)->finalize (object);
}

static void
bl_layer_browser_get_property (GObject    *object,
                               guint       prop_id,
                               GValue     *value,
                               GParamSpec *pspec)
{
  BlLayerBrowser *self = BL_LAYER_BROWSER (object);

  switch (prop_id)
    {
    case PROP_FOCUS:
      g_value_set_object (value, self->focus);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
bl_layer_browser_class_init (BlLayerBrowserClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->dispose = bl_layer_browser_dispose;
  object_class->finalize = bl_layer_browser_finalize;
  object_class->get_property = bl_layer_browser_get_property;

  /**
   * BlLayerBrowser:focus:
   *
   * The layer the distribution view shows: the first selected layer row, or the first layer
   * of the first selected block.
   */
  properties[PROP_FOCUS] =
    g_param_spec_object ("focus", NULL, NULL, BL_TYPE_LAYER_ITEM,
                         G_PARAM_READABLE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);
  g_object_class_install_properties (object_class, N_PROPS, properties);

  /**
   * BlLayerBrowser::selection-changed:
   * @self: the browser
   *
   * Emitted when the set of selected rows changes.
   */
  signals[SIGNAL_SELECTION_CHANGED] =
    g_signal_new ("selection-changed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 0);

  gtk_widget_class_set_template_from_resource (widget_class, "/io/github/bitlens/Bitlens/bl-layer-browser.ui");
  gtk_widget_class_bind_template_child (widget_class, BlLayerBrowser, search_entry);
  gtk_widget_class_bind_template_child (widget_class, BlLayerBrowser, column_view);
  gtk_widget_class_bind_template_child (widget_class, BlLayerBrowser, status_label);
  gtk_widget_class_bind_template_callback (widget_class, on_search_changed);
  gtk_widget_class_set_layout_manager_type (widget_class, GTK_TYPE_BOX_LAYOUT);
  gtk_widget_class_set_css_name (widget_class, "layerbrowser");
}

static void
bl_layer_browser_init (BlLayerBrowser *self)
{
  gtk_widget_init_template (GTK_WIDGET (self));
  gtk_orientable_set_orientation (GTK_ORIENTABLE (gtk_widget_get_layout_manager (GTK_WIDGET (self))),
                                  GTK_ORIENTATION_VERTICAL);

  self->child_filter = gtk_custom_filter_new (child_matches, self, NULL);
  self->group_filter = gtk_custom_filter_new (group_matches, self, NULL);

  for (guint c = 0; c < G_N_ELEMENTS (columns); c++)
    {
      GtkListItemFactory *factory = gtk_signal_list_item_factory_new ();
      GtkColumnViewColumn *column;

      g_object_set_data (G_OBJECT (factory), "bl-browser", self);
      g_signal_connect (factory, "setup", G_CALLBACK (on_factory_setup), (gpointer) &columns[c]);
      g_signal_connect (factory, "bind", G_CALLBACK (on_factory_bind), (gpointer) &columns[c]);
      g_signal_connect (factory, "unbind", G_CALLBACK (on_factory_unbind), (gpointer) &columns[c]);
      column = gtk_column_view_column_new (columns[c].title, factory);
      gtk_column_view_column_set_expand (column, columns[c].expand);
      gtk_column_view_column_set_resizable (column, TRUE);
      if (columns[c].fixed_width > 0)
        gtk_column_view_column_set_fixed_width (column, columns[c].fixed_width);
      if (columns[c].compare != NULL)
        {
          GtkSorter *sorter = GTK_SORTER (gtk_custom_sorter_new (columns[c].compare, NULL, NULL));

          gtk_column_view_column_set_sorter (column, sorter);
          g_object_unref (sorter);
        }
      gtk_column_view_append_column (self->column_view, column);
      g_object_unref (column);
    }
}

GtkWidget *
bl_layer_browser_new (void)
{
  return g_object_new (BL_TYPE_LAYER_BROWSER, NULL);
}

/**
 * bl_layer_browser_set_groups:
 * @self: a browser
 * @groups: (nullable): a list of #BlLayerItem groups, or %NULL to show nothing
 *
 * Shows @groups, every block expanded, nothing selected.
 */
void
bl_layer_browser_set_groups (BlLayerBrowser *self,
                             GListModel     *groups)
{
  GtkFilterListModel *filtered;
  GtkSortListModel *sorted;
  GtkSorter *row_sorter;

  g_return_if_fail (BL_IS_LAYER_BROWSER (self));
  g_return_if_fail (groups == NULL || G_IS_LIST_MODEL (groups));

  if (self->selection != NULL)
    g_signal_handlers_disconnect_by_data (self->selection, self);
  gtk_column_view_set_model (self->column_view, NULL);
  g_clear_object (&self->selection);
  g_clear_object (&self->tree);
  g_clear_object (&self->focus);
  g_set_object (&self->groups, groups);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_FOCUS]);
  if (groups == NULL)
    {
      update_status (self);
      return;
    }

  filtered = gtk_filter_list_model_new (g_object_ref (groups), GTK_FILTER (g_object_ref (self->group_filter)));
  self->tree = gtk_tree_list_model_new (G_LIST_MODEL (filtered), FALSE, TRUE, create_children, self, NULL);
  row_sorter = GTK_SORTER (gtk_tree_list_row_sorter_new (g_object_ref (gtk_column_view_get_sorter (self->column_view))));
  sorted = gtk_sort_list_model_new (G_LIST_MODEL (g_object_ref (self->tree)), row_sorter);
  self->selection = gtk_multi_selection_new (G_LIST_MODEL (sorted));
  g_signal_connect_swapped (self->selection, "selection-changed", G_CALLBACK (on_selection_changed), self);
  /* filtering removes selected rows without a selection-changed */
  g_signal_connect_swapped (self->selection, "items-changed", G_CALLBACK (on_items_changed), self);
  gtk_column_view_set_model (self->column_view, GTK_SELECTION_MODEL (self->selection));
  update_status (self);
}

/**
 * bl_layer_browser_get_focus:
 * @self: a browser
 *
 * Returns: (transfer none) (nullable): the layer the selection points at
 */
BlLayerItem *
bl_layer_browser_get_focus (BlLayerBrowser *self)
{
  g_return_val_if_fail (BL_IS_LAYER_BROWSER (self), NULL);

  return self->focus;
}

/**
 * bl_layer_browser_get_selected_layers:
 * @self: a browser
 *
 * Returns: (transfer container) (element-type BlLayerItem): the selected layer rows, with a
 *   selected block standing for its layers that pass the filter, each once, in table order
 */
GPtrArray *
bl_layer_browser_get_selected_layers (BlLayerBrowser *self)
{
  GPtrArray *out = g_ptr_array_new_with_free_func (g_object_unref);
  g_autoptr(GHashTable) seen = g_hash_table_new (NULL, NULL);
  g_autoptr(GtkBitset) set = NULL;
  GtkBitsetIter iter;
  guint pos;

  g_return_val_if_fail (BL_IS_LAYER_BROWSER (self), out);

  if (self->selection == NULL)
    return out;
  set = gtk_selection_model_get_selection (GTK_SELECTION_MODEL (self->selection));
  for (gboolean ok = gtk_bitset_iter_init_first (&iter, set, &pos); ok;
       ok = gtk_bitset_iter_next (&iter, &pos))
    {
      g_autoptr(BlLayerItem) item = row_item_at (self, pos);
      GListModel *children;

      if (item == NULL)
        continue;
      children = bl_layer_item_get_children (item);
      if (children == NULL)
        {
          if (g_hash_table_add (seen, item))
            g_ptr_array_add (out, g_object_ref (item));
          continue;
        }
      for (guint j = 0; j < g_list_model_get_n_items (children); j++)
        {
          g_autoptr(BlLayerItem) child = g_list_model_get_item (children, j);

          if (child_matches (child, self) && g_hash_table_add (seen, child))
            g_ptr_array_add (out, g_object_ref (child));
        }
    }
  return out;
}

/**
 * bl_layer_browser_select_layer:
 * @self: a browser
 * @name: a layer name
 *
 * Selects the row of the layer named @name (only it), which makes it the focus.
 *
 * Returns: whether the layer is shown
 */
gboolean
bl_layer_browser_select_layer (BlLayerBrowser *self,
                               const char     *name)
{
  guint n;

  g_return_val_if_fail (BL_IS_LAYER_BROWSER (self), FALSE);
  g_return_val_if_fail (name != NULL, FALSE);

  if (self->selection == NULL)
    return FALSE;
  n = g_list_model_get_n_items (G_LIST_MODEL (self->selection));
  for (guint i = 0; i < n; i++)
    {
      g_autoptr(BlLayerItem) item = row_item_at (self, i);

      if (item != NULL && !bl_layer_item_is_group (item)
          && g_strcmp0 (bl_layer_item_get_name (item), name) == 0)
        return gtk_selection_model_select_item (GTK_SELECTION_MODEL (self->selection), i, TRUE);
    }
  return FALSE;
}

/**
 * bl_layer_browser_set_filter_text:
 * @self: a browser
 * @text: a glob matched anywhere in the layer names, "" for all
 */
void
bl_layer_browser_set_filter_text (BlLayerBrowser *self,
                                  const char     *text)
{
  g_return_if_fail (BL_IS_LAYER_BROWSER (self));

  gtk_editable_set_text (GTK_EDITABLE (self->search_entry), text ? text : "");
  /* the entry delays search-changed; a caller that sets the text wants it now */
  on_search_changed (self, self->search_entry);
}

void
bl_layer_browser_focus_search (BlLayerBrowser *self)
{
  g_return_if_fail (BL_IS_LAYER_BROWSER (self));

  gtk_widget_grab_focus (GTK_WIDGET (self->search_entry));
}

/**
 * bl_layer_browser_set_note:
 * @self: a browser
 * @note: (nullable): a short note after the counts in the status line, e.g. what runs in
 *   the background
 */
void
bl_layer_browser_set_note (BlLayerBrowser *self,
                           const char     *note)
{
  g_return_if_fail (BL_IS_LAYER_BROWSER (self));

  g_free (self->note);
  self->note = g_strdup (note);
  update_status (self);
}

/**
 * bl_layer_browser_set_sensitivity_scale:
 * @self: a browser
 * @max_sensitivity: the largest sensitivity of the model, which fills the bar
 *
 * Call before the items' sensitivities are set, so the bars are drawn to scale.
 */
void
bl_layer_browser_set_sensitivity_scale (BlLayerBrowser *self,
                                        double          max_sensitivity)
{
  g_return_if_fail (BL_IS_LAYER_BROWSER (self));

  self->sensitivity_scale = max_sensitivity;
}
