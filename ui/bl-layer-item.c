/* bl-layer-item.c: one row of the layer browser (a layer, or the block that groups layers)
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "bl-layer-item.h"

#include <math.h>
#include <string.h>

/**
 * SECTION:bl-layer-item
 * @title: BlLayerItem
 *
 * A row of the layer browser's tree. A layer row wraps a #BlLayer and carries what the plan
 * says about it (weight spec, activation spec, algorithm), its exact bits per weight for
 * that spec and shape, and the error of the spec on this weight (QSNR). A group row is one
 * transformer block (or the embedding, or the output head); its numbers aggregate its
 * children: bits weighted by parameters, QSNR from the merged error sums.
 */

struct _BlLayerItem
{
  GObject parent_instance;

  /* What the row is */
  BlLayer *layer;               /* NULL for a group */
  GListStore *children;         /* BlLayerItem, groups only */
  char *name;
  char *title;
  char *type_key;
  int block;
  gint64 n_params;
  gint64 rows;
  gint64 cols;
  gboolean quantizable;

  /* What the plan says about it */
  char *weight_spec;
  char *act_spec;
  char *algorithm;

  /* What it costs and how wrong it is */
  double bits;                  /* total payload bits */
  BlErrorStats error;
  gboolean have_error;
  gboolean pending;             /* groups: a quantized child does not know its error yet */
  gboolean quantized;           /* groups: some child has a weight spec */
  double sensitivity;
};

G_DEFINE_FINAL_TYPE (BlLayerItem, bl_layer_item, G_TYPE_OBJECT)

enum {
  PROP_0,
  PROP_LAYER,
  PROP_IS_GROUP,
  PROP_NAME,
  PROP_TITLE,
  PROP_BLOCK,
  PROP_SHAPE,
  PROP_N_PARAMS,
  PROP_QUANTIZABLE,
  PROP_WEIGHT_SPEC,
  PROP_ACT_SPEC,
  PROP_ALGORITHM,
  PROP_BPW,
  PROP_QSNR,
  PROP_SENSITIVITY,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

static void
bl_layer_item_finalize (GObject *object)
{
  BlLayerItem *self = BL_LAYER_ITEM (object);

  g_clear_object (&self->layer);
  g_clear_object (&self->children);
  g_clear_pointer (&self->name, g_free);
  g_clear_pointer (&self->title, g_free);
  g_clear_pointer (&self->type_key, g_free);
  g_clear_pointer (&self->weight_spec, g_free);
  g_clear_pointer (&self->act_spec, g_free);
  g_clear_pointer (&self->algorithm, g_free);

  G_OBJECT_CLASS (bl_layer_item_parent_class)->finalize (object);
}

static void
bl_layer_item_get_property (GObject    *object,
                            guint       prop_id,
                            GValue     *value,
                            GParamSpec *pspec)
{
  BlLayerItem *self = BL_LAYER_ITEM (object);

  switch (prop_id)
    {
    case PROP_LAYER:
      g_value_set_object (value, self->layer);
      break;
    case PROP_IS_GROUP:
      g_value_set_boolean (value, self->children != NULL);
      break;
    case PROP_NAME:
      g_value_set_string (value, self->name);
      break;
    case PROP_TITLE:
      g_value_set_string (value, self->title);
      break;
    case PROP_BLOCK:
      g_value_set_int (value, self->block);
      break;
    case PROP_SHAPE:
      if (self->layer != NULL)
        g_object_get_property (G_OBJECT (self->layer), "shape", value);
      else
        g_value_set_string (value, "");
      break;
    case PROP_N_PARAMS:
      g_value_set_int64 (value, self->n_params);
      break;
    case PROP_QUANTIZABLE:
      g_value_set_boolean (value, self->quantizable);
      break;
    case PROP_WEIGHT_SPEC:
      g_value_set_string (value, self->weight_spec);
      break;
    case PROP_ACT_SPEC:
      g_value_set_string (value, self->act_spec);
      break;
    case PROP_ALGORITHM:
      g_value_set_string (value, self->algorithm);
      break;
    case PROP_BPW:
      g_value_set_double (value, bl_layer_item_get_bpw (self));
      break;
    case PROP_QSNR:
      g_value_set_double (value, bl_layer_item_get_qsnr (self));
      break;
    case PROP_SENSITIVITY:
      g_value_set_double (value, self->sensitivity);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
bl_layer_item_class_init (BlLayerItemClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GParamFlags ro = G_PARAM_READABLE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY;

  object_class->finalize = bl_layer_item_finalize;
  object_class->get_property = bl_layer_item_get_property;

  properties[PROP_LAYER] = g_param_spec_object ("layer", NULL, NULL, BL_TYPE_LAYER, ro);
  properties[PROP_IS_GROUP] = g_param_spec_boolean ("is-group", NULL, NULL, FALSE, ro);
  properties[PROP_NAME] = g_param_spec_string ("name", NULL, NULL, NULL, ro);
  properties[PROP_TITLE] = g_param_spec_string ("title", NULL, NULL, NULL, ro);
  properties[PROP_BLOCK] = g_param_spec_int ("block", NULL, NULL, -1, G_MAXINT, -1, ro);
  properties[PROP_SHAPE] = g_param_spec_string ("shape", NULL, NULL, NULL, ro);
  properties[PROP_N_PARAMS] = g_param_spec_int64 ("n-params", NULL, NULL, 0, G_MAXINT64, 0, ro);
  properties[PROP_QUANTIZABLE] = g_param_spec_boolean ("quantizable", NULL, NULL, FALSE, ro);
  properties[PROP_WEIGHT_SPEC] = g_param_spec_string ("weight-spec", NULL, NULL, NULL, ro);
  properties[PROP_ACT_SPEC] = g_param_spec_string ("act-spec", NULL, NULL, NULL, ro);
  properties[PROP_ALGORITHM] = g_param_spec_string ("algorithm", NULL, NULL, NULL, ro);
  properties[PROP_BPW] = g_param_spec_double ("bpw", NULL, NULL, 0, G_MAXDOUBLE, 0, ro);
  properties[PROP_QSNR] = g_param_spec_double ("qsnr", NULL, NULL, -G_MAXDOUBLE, G_MAXDOUBLE, 0, ro);
  properties[PROP_SENSITIVITY] = g_param_spec_double ("sensitivity", NULL, NULL, -G_MAXDOUBLE,
                                                      G_MAXDOUBLE, 0, ro);
  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
bl_layer_item_init (BlLayerItem *self)
{
  self->sensitivity = NAN;
  bl_error_stats_init (&self->error);
}

/* "model.layers.3.mlp.down_proj.weight" → "mlp.down_proj": the block is the group's title. */
static char *
short_title (const char *name)
{
  const char *s = name;
  gsize len;

  if (g_str_has_prefix (s, "model.layers."))
    {
      s += strlen ("model.layers.");
      while (g_ascii_isdigit (*s))
        s++;
      if (*s == '.')
        s++;
    }
  else if (g_str_has_prefix (s, "model."))
    s += strlen ("model.");
  len = strlen (s);
  if (g_str_has_suffix (s, ".weight"))
    len -= strlen (".weight");
  return g_strndup (s, len);
}

static double
native_bits (BlLayerItem *self)
{
  return 8.0 * (double) bl_dtype_size (bl_layer_get_tensor (self->layer)->dtype);
}

static void
update_bits (BlLayerItem *self)
{
  BlFormatSpec spec;

  if (self->weight_spec != NULL && bl_format_spec_parse (self->weight_spec, &spec, NULL))
    self->bits = bl_format_spec_bits_for_shape (&spec, self->rows, self->cols) * (double) self->n_params;
  else
    self->bits = native_bits (self) * (double) self->n_params;
}

/**
 * bl_layer_item_new_layer:
 * @layer: a layer of a model
 *
 * Returns: (transfer full): a row for @layer, unquantized
 */
BlLayerItem *
bl_layer_item_new_layer (BlLayer *layer)
{
  BlLayerItem *self;
  const BlTensor *t;

  g_return_val_if_fail (BL_IS_LAYER (layer), NULL);

  t = bl_layer_get_tensor (layer);
  self = g_object_new (BL_TYPE_LAYER_ITEM, NULL);
  self->layer = g_object_ref (layer);
  self->name = g_strdup (bl_layer_get_name (layer));
  self->title = short_title (self->name);
  self->type_key = g_strdup (bl_layer_kind_to_string (bl_layer_get_kind (layer)));
  self->block = bl_layer_get_block (layer);
  self->n_params = bl_layer_get_n_params (layer);
  self->rows = t->n_dims == 2 ? t->shape[0] : 1;
  self->cols = t->n_dims == 2 ? t->shape[1] : t->n_elements;
  /* The engine's weight hook sees the linear weights (lm_head included, also when tied). */
  self->quantizable = bl_layer_kind_is_linear (bl_layer_get_kind (layer))
                      || bl_layer_get_kind (layer) == BL_LAYER_LM_HEAD;
  self->algorithm = g_strdup ("rtn");
  update_bits (self);
  return self;
}

/**
 * bl_layer_item_new_group:
 * @title: what the group row shows, e.g. "Block 3"
 * @block: the block, or -1 for the rows outside the blocks
 *
 * Returns: (transfer full): an empty group
 */
BlLayerItem *
bl_layer_item_new_group (const char *title,
                         int         block)
{
  BlLayerItem *self;

  g_return_val_if_fail (title != NULL, NULL);

  self = g_object_new (BL_TYPE_LAYER_ITEM, NULL);
  self->children = g_list_store_new (BL_TYPE_LAYER_ITEM);
  self->title = g_strdup (title);
  self->name = g_strdup (title);
  self->type_key = g_strdup ("group");
  self->block = block;
  return self;
}

static void
group_recompute (BlLayerItem *group)
{
  guint n = g_list_model_get_n_items (G_LIST_MODEL (group->children));
  BlErrorStats merged;
  gboolean any_error = FALSE;

  group->pending = FALSE;
  group->quantized = FALSE;
  bl_error_stats_init (&merged);
  group->bits = 0;
  group->n_params = 0;
  for (guint i = 0; i < n; i++)
    {
      g_autoptr(BlLayerItem) child = g_list_model_get_item (G_LIST_MODEL (group->children), i);

      group->bits += child->bits;
      group->n_params += child->n_params;
      if (child->weight_spec != NULL)
        {
          group->quantized = TRUE;
          group->pending |= !child->have_error;
        }
      if (child->have_error)
        {
          bl_error_stats_merge (&merged, &child->error);
          any_error = TRUE;
        }
    }
  group->error = merged;
  group->have_error = any_error;
  g_object_notify_by_pspec (G_OBJECT (group), properties[PROP_N_PARAMS]);
  g_object_notify_by_pspec (G_OBJECT (group), properties[PROP_BPW]);
  g_object_notify_by_pspec (G_OBJECT (group), properties[PROP_QSNR]);
}

static void
on_child_changed (BlLayerItem *child,
                  GParamSpec  *pspec,
                  BlLayerItem *group)
{
  group_recompute (group);
}

/**
 * bl_layer_item_add_child:
 * @group: a group row
 * @child: a layer row
 *
 * Adds @child to @group; the group's totals follow the child's changes from now on.
 */
void
bl_layer_item_add_child (BlLayerItem *group,
                         BlLayerItem *child)
{
  g_return_if_fail (BL_IS_LAYER_ITEM (group) && group->children != NULL);
  g_return_if_fail (BL_IS_LAYER_ITEM (child) && child->children == NULL);

  g_list_store_append (group->children, child);
  g_signal_connect_object (child, "notify::bpw", G_CALLBACK (on_child_changed), group, 0);
  g_signal_connect_object (child, "notify::qsnr", G_CALLBACK (on_child_changed), group, 0);
  g_signal_connect_object (child, "notify::weight-spec", G_CALLBACK (on_child_changed), group, 0);
  group_recompute (group);
}

gboolean
bl_layer_item_is_group (BlLayerItem *self)
{
  g_return_val_if_fail (BL_IS_LAYER_ITEM (self), FALSE);

  return self->children != NULL;
}

/**
 * bl_layer_item_get_layer:
 * @self: a row
 *
 * Returns: (transfer none) (nullable): the layer, or %NULL for a group
 */
BlLayer *
bl_layer_item_get_layer (BlLayerItem *self)
{
  g_return_val_if_fail (BL_IS_LAYER_ITEM (self), NULL);

  return self->layer;
}

/**
 * bl_layer_item_get_children:
 * @self: a row
 *
 * Returns: (transfer none) (nullable): the group's layer rows, or %NULL for a layer
 */
GListModel *
bl_layer_item_get_children (BlLayerItem *self)
{
  g_return_val_if_fail (BL_IS_LAYER_ITEM (self), NULL);

  return self->children ? G_LIST_MODEL (self->children) : NULL;
}

const char *
bl_layer_item_get_name (BlLayerItem *self)
{
  g_return_val_if_fail (BL_IS_LAYER_ITEM (self), NULL);

  return self->name;
}

const char *
bl_layer_item_get_title (BlLayerItem *self)
{
  g_return_val_if_fail (BL_IS_LAYER_ITEM (self), NULL);

  return self->title;
}

int
bl_layer_item_get_block (BlLayerItem *self)
{
  g_return_val_if_fail (BL_IS_LAYER_ITEM (self), -1);

  return self->block;
}

gint64
bl_layer_item_get_n_params (BlLayerItem *self)
{
  g_return_val_if_fail (BL_IS_LAYER_ITEM (self), 0);

  return self->n_params;
}

/**
 * bl_layer_item_get_quantizable:
 * @self: a row
 *
 * Returns: whether the plan can give this layer a format (the linear layers and the head)
 */
gboolean
bl_layer_item_get_quantizable (BlLayerItem *self)
{
  g_return_val_if_fail (BL_IS_LAYER_ITEM (self), FALSE);

  return self->quantizable;
}

/**
 * bl_layer_item_get_type_key:
 * @self: a row
 *
 * Returns: what "all layers of this type" means for the row: the layer kind's name
 *   ("mlp_down", "attn_q", …), or "group"
 */
const char *
bl_layer_item_get_type_key (BlLayerItem *self)
{
  g_return_val_if_fail (BL_IS_LAYER_ITEM (self), NULL);

  return self->type_key;
}

/**
 * bl_layer_item_get_weight_spec:
 * @self: a row
 *
 * Returns: (nullable): the weight spec string, or %NULL when the layer stays unquantized
 */
const char *
bl_layer_item_get_weight_spec (BlLayerItem *self)
{
  g_return_val_if_fail (BL_IS_LAYER_ITEM (self), NULL);

  return self->weight_spec;
}

/**
 * bl_layer_item_get_act_spec:
 * @self: a row
 *
 * Returns: (nullable): the activation spec string, or %NULL for full-precision inputs
 */
const char *
bl_layer_item_get_act_spec (BlLayerItem *self)
{
  g_return_val_if_fail (BL_IS_LAYER_ITEM (self), NULL);

  return self->act_spec;
}

const char *
bl_layer_item_get_algorithm (BlLayerItem *self)
{
  g_return_val_if_fail (BL_IS_LAYER_ITEM (self), NULL);

  return self->algorithm;
}

/**
 * bl_layer_item_set_plan:
 * @self: a layer row that is quantizable
 * @weight_spec: (nullable): a valid spec string, or %NULL for unquantized
 * @act_spec: (nullable): a valid spec string, or %NULL for full-precision inputs
 * @algorithm: (nullable): the algorithm name; %NULL means "rtn"
 *
 * Sets what the plan says about the layer. The error statistics of the previous spec are
 * dropped (the QSNR shows as unknown until bl_layer_item_set_error_stats()).
 *
 * Returns: whether anything changed
 */
gboolean
bl_layer_item_set_plan (BlLayerItem *self,
                        const char  *weight_spec,
                        const char  *act_spec,
                        const char  *algorithm)
{
  g_return_val_if_fail (BL_IS_LAYER_ITEM (self), FALSE);
  g_return_val_if_fail (self->layer != NULL, FALSE);

  if (algorithm == NULL)
    algorithm = "rtn";
  if (g_strcmp0 (weight_spec, self->weight_spec) == 0
      && g_strcmp0 (act_spec, self->act_spec) == 0
      && g_strcmp0 (algorithm, self->algorithm) == 0)
    return FALSE;

  g_object_freeze_notify (G_OBJECT (self));
  if (g_strcmp0 (weight_spec, self->weight_spec) != 0)
    {
      g_free (self->weight_spec);
      self->weight_spec = g_strdup (weight_spec);
      update_bits (self);
      g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_WEIGHT_SPEC]);
      g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_BPW]);
    }
  if (g_strcmp0 (act_spec, self->act_spec) != 0)
    {
      g_free (self->act_spec);
      self->act_spec = g_strdup (act_spec);
      g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_ACT_SPEC]);
    }
  if (g_strcmp0 (algorithm, self->algorithm) != 0)
    {
      g_free (self->algorithm);
      self->algorithm = g_strdup (algorithm);
      g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_ALGORITHM]);
    }
  if (self->have_error)
    {
      self->have_error = FALSE;
      g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_QSNR]);
    }
  g_object_thaw_notify (G_OBJECT (self));
  return TRUE;
}

/**
 * bl_layer_item_get_bits:
 * @self: a row
 *
 * Returns: the payload bits of the layer (or the group) under the current plan
 */
double
bl_layer_item_get_bits (BlLayerItem *self)
{
  g_return_val_if_fail (BL_IS_LAYER_ITEM (self), 0);

  return self->bits;
}

/**
 * bl_layer_item_get_bpw:
 * @self: a row
 *
 * Returns: exact bits per weight under the current plan (bl_format_spec_bits_for_shape()),
 *   the stored dtype's width when unquantized
 */
double
bl_layer_item_get_bpw (BlLayerItem *self)
{
  g_return_val_if_fail (BL_IS_LAYER_ITEM (self), 0);

  return self->n_params > 0 ? self->bits / (double) self->n_params : 0.0;
}

/**
 * bl_layer_item_get_qsnr:
 * @self: a row
 *
 * Returns: the quantization SNR in dB of the current weight spec (of a group: over its
 *   quantized layers), +∞ when unquantized, NaN while unknown
 */
double
bl_layer_item_get_qsnr (BlLayerItem *self)
{
  g_return_val_if_fail (BL_IS_LAYER_ITEM (self), NAN);

  if (self->children == NULL ? self->weight_spec == NULL : !self->quantized)
    return INFINITY;
  if (!self->have_error || self->pending)
    return NAN;
  return bl_error_stats_qsnr_db (&self->error);
}

/**
 * bl_layer_item_set_error_stats:
 * @self: a layer row
 * @stats: the error of the current weight spec against the weight
 *
 * Records the error the current spec makes on this weight.
 */
void
bl_layer_item_set_error_stats (BlLayerItem        *self,
                               const BlErrorStats *stats)
{
  g_return_if_fail (BL_IS_LAYER_ITEM (self) && self->layer != NULL);
  g_return_if_fail (stats != NULL);

  self->error = *stats;
  self->have_error = TRUE;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_QSNR]);
}

double
bl_layer_item_get_sensitivity (BlLayerItem *self)
{
  g_return_val_if_fail (BL_IS_LAYER_ITEM (self), NAN);

  return self->sensitivity;
}

/**
 * bl_layer_item_set_sensitivity:
 * @self: a row
 * @sensitivity: the layer's sensitivity score (NaN: unknown)
 */
void
bl_layer_item_set_sensitivity (BlLayerItem *self,
                               double       sensitivity)
{
  g_return_if_fail (BL_IS_LAYER_ITEM (self));

  if (self->sensitivity == sensitivity || (isnan (self->sensitivity) && isnan (sensitivity)))
    return;
  self->sensitivity = sensitivity;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_SENSITIVITY]);
}
