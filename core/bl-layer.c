/* bl-layer.c: one weight of a model, as a row of the model's list
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "bl-layer-private.h"

struct _BlLayer
{
  GObject parent_instance;

  BlLayerKind kind;
  int block;
  const BlTensor *weight;
  const BlTensor *bias;
  /* The files own the tensors; holding them keeps the mappings alive while a row
   * outlives its model. */
  BlSafetensors *weight_file;
  BlSafetensors *bias_file;
};

G_DEFINE_FINAL_TYPE (BlLayer, bl_layer, G_TYPE_OBJECT)

G_DEFINE_ENUM_TYPE (BlLayerKind, bl_layer_kind,
  G_DEFINE_ENUM_VALUE (BL_LAYER_EMBEDDING, "embedding"),
  G_DEFINE_ENUM_VALUE (BL_LAYER_ATTN_Q, "attn_q"),
  G_DEFINE_ENUM_VALUE (BL_LAYER_ATTN_K, "attn_k"),
  G_DEFINE_ENUM_VALUE (BL_LAYER_ATTN_V, "attn_v"),
  G_DEFINE_ENUM_VALUE (BL_LAYER_ATTN_O, "attn_o"),
  G_DEFINE_ENUM_VALUE (BL_LAYER_MLP_GATE, "mlp_gate"),
  G_DEFINE_ENUM_VALUE (BL_LAYER_MLP_UP, "mlp_up"),
  G_DEFINE_ENUM_VALUE (BL_LAYER_MLP_DOWN, "mlp_down"),
  G_DEFINE_ENUM_VALUE (BL_LAYER_NORM, "norm"),
  G_DEFINE_ENUM_VALUE (BL_LAYER_LM_HEAD, "lm_head"),
  G_DEFINE_ENUM_VALUE (BL_LAYER_MOE_ROUTER, "moe_router"))

enum {
  PROP_0,
  PROP_NAME,
  PROP_KIND,
  PROP_BLOCK,
  PROP_N_PARAMS,
  PROP_DTYPE,
  PROP_SHAPE,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

static char *
shape_string (const BlTensor *t)
{
  GString *s = g_string_new (NULL);

  for (int d = 0; d < t->n_dims; d++)
    g_string_append_printf (s, "%s%" G_GINT64_FORMAT, d ? "×" : "", t->shape[d]);
  return g_string_free (s, FALSE);
}

static void
bl_layer_finalize (GObject *object)
{
  BlLayer *self = BL_LAYER (object);

  g_clear_pointer (&self->weight_file, bl_safetensors_unref);
  g_clear_pointer (&self->bias_file, bl_safetensors_unref);

  G_OBJECT_CLASS (bl_layer_parent_class)->finalize (object);
}

static void
bl_layer_get_property (GObject    *object,
                       guint       prop_id,
                       GValue     *value,
                       GParamSpec *pspec)
{
  BlLayer *self = BL_LAYER (object);

  switch (prop_id)
    {
    case PROP_NAME:
      g_value_set_string (value, self->weight->name);
      break;
    case PROP_KIND:
      g_value_set_enum (value, self->kind);
      break;
    case PROP_BLOCK:
      g_value_set_int (value, self->block);
      break;
    case PROP_N_PARAMS:
      g_value_set_int64 (value, bl_layer_get_n_params (self));
      break;
    case PROP_DTYPE:
      g_value_set_static_string (value, bl_dtype_to_string (self->weight->dtype));
      break;
    case PROP_SHAPE:
      g_value_take_string (value, shape_string (self->weight));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
bl_layer_class_init (BlLayerClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->finalize = bl_layer_finalize;
  object_class->get_property = bl_layer_get_property;

  properties[PROP_NAME] =
    g_param_spec_string ("name", NULL, NULL, NULL,
                         G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  properties[PROP_KIND] =
    g_param_spec_enum ("kind", NULL, NULL, BL_TYPE_LAYER_KIND, BL_LAYER_EMBEDDING,
                       G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  properties[PROP_BLOCK] =
    g_param_spec_int ("block", NULL, NULL, -1, G_MAXINT, -1,
                      G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  properties[PROP_N_PARAMS] =
    g_param_spec_int64 ("n-params", NULL, NULL, 0, G_MAXINT64, 0,
                        G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  properties[PROP_DTYPE] =
    g_param_spec_string ("dtype", NULL, NULL, NULL,
                         G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  properties[PROP_SHAPE] =
    g_param_spec_string ("shape", NULL, NULL, NULL,
                         G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
bl_layer_init (BlLayer *self)
{
}

BlLayer *
bl_layer_new (BlLayerKind     kind,
              int             block,
              const BlTensor *weight,
              BlSafetensors  *weight_file,
              const BlTensor *bias,
              BlSafetensors  *bias_file)
{
  BlLayer *self;

  g_return_val_if_fail (weight != NULL && weight_file != NULL, NULL);
  g_return_val_if_fail ((bias == NULL) == (bias_file == NULL), NULL);

  self = g_object_new (BL_TYPE_LAYER, NULL);
  self->kind = kind;
  self->block = block;
  self->weight = weight;
  self->weight_file = bl_safetensors_ref (weight_file);
  self->bias = bias;
  self->bias_file = bias_file != NULL ? bl_safetensors_ref (bias_file) : NULL;
  return self;
}

/**
 * bl_layer_get_name:
 * @self: a layer
 *
 * Returns: the name of the weight tensor as stored, e.g.
 *   "model.layers.0.self_attn.q_proj.weight"
 */
const char *
bl_layer_get_name (BlLayer *self)
{
  g_return_val_if_fail (BL_IS_LAYER (self), NULL);

  return self->weight->name;
}

/**
 * bl_layer_get_kind:
 * @self: a layer
 *
 * Returns: the role of the weight in the forward pass
 */
BlLayerKind
bl_layer_get_kind (BlLayer *self)
{
  g_return_val_if_fail (BL_IS_LAYER (self), BL_LAYER_EMBEDDING);

  return self->kind;
}

/**
 * bl_layer_get_block:
 * @self: a layer
 *
 * Returns: the transformer block, or -1 for the embedding, the final norm and the lm_head
 */
int
bl_layer_get_block (BlLayer *self)
{
  g_return_val_if_fail (BL_IS_LAYER (self), -1);

  return self->block;
}

/**
 * bl_layer_get_n_params:
 * @self: a layer
 *
 * Returns: the elements of the weight plus those of its bias, so that the layers of a
 *   model add up to bl_model_get_n_params()
 */
gint64
bl_layer_get_n_params (BlLayer *self)
{
  g_return_val_if_fail (BL_IS_LAYER (self), 0);

  return self->weight->n_elements + (self->bias != NULL ? self->bias->n_elements : 0);
}

/**
 * bl_layer_get_tensor:
 * @self: a layer
 *
 * Returns: (transfer none): the weight tensor
 */
const BlTensor *
bl_layer_get_tensor (BlLayer *self)
{
  g_return_val_if_fail (BL_IS_LAYER (self), NULL);

  return self->weight;
}

/**
 * bl_layer_get_bias:
 * @self: a layer
 *
 * Returns: (transfer none) (nullable): the bias of a linear layer that has one
 */
const BlTensor *
bl_layer_get_bias (BlLayer *self)
{
  g_return_val_if_fail (BL_IS_LAYER (self), NULL);

  return self->bias;
}

/**
 * bl_layer_kind_is_linear:
 * @kind: a kind
 *
 * Returns: %TRUE for the kinds that multiply activations by a matrix (the attention and
 *   MLP projections and the lm_head), the ones a weight quantizer works on
 */
gboolean
bl_layer_kind_is_linear (BlLayerKind kind)
{
  switch (kind)
    {
    case BL_LAYER_ATTN_Q:
    case BL_LAYER_ATTN_K:
    case BL_LAYER_ATTN_V:
    case BL_LAYER_ATTN_O:
    case BL_LAYER_MLP_GATE:
    case BL_LAYER_MLP_UP:
    case BL_LAYER_MLP_DOWN:
    case BL_LAYER_LM_HEAD:
      return TRUE;
    case BL_LAYER_EMBEDDING:
    case BL_LAYER_NORM:
    /* A router's error changes which experts run, not just how well; like MC-MoE, Bitlens
     * keeps routers out of the weight quantizers' reach. */
    case BL_LAYER_MOE_ROUTER:
    default:
      return FALSE;
    }
}

/**
 * bl_layer_kind_to_string:
 * @kind: a kind
 *
 * Returns: the nick of @kind: "embedding", "attn_q", … "lm_head"
 */
const char *
bl_layer_kind_to_string (BlLayerKind kind)
{
  g_autoptr(GEnumClass) klass = g_type_class_ref (BL_TYPE_LAYER_KIND);
  GEnumValue *value = g_enum_get_value (klass, kind);

  g_return_val_if_fail (value != NULL, NULL);

  return value->value_nick;
}
