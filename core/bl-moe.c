/* bl-moe.c: mixture-of-experts tensor naming and layout
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "bl-moe.h"

#include <stdlib.h>
#include <string.h>

#include "bl-error.h"
#include "bl-json-private.h"

/* Reads a decimal index at *p and moves past it. */
static gboolean
read_index (const char **p,
            int         *out)
{
  char *end;
  long value;

  if (!g_ascii_isdigit (**p))
    return FALSE;
  value = strtol (*p, &end, 10);
  if (value < 0 || value > G_MAXINT / 2)
    return FALSE;
  *out = (int) value;
  *p = end;
  return TRUE;
}

static gboolean
eat (const char **p,
     const char  *word)
{
  size_t len = strlen (word);

  if (strncmp (*p, word, len) != 0)
    return FALSE;
  *p += len;
  return TRUE;
}

/**
 * bl_moe_parse_name:
 * @name: a tensor name
 * @out: (out): the parsed name
 *
 * Recognises the MoE weights of Mixtral and Qwen-MoE (see bl-moe.h). Biases and other
 * tensors are not MoE weights.
 *
 * Returns: %TRUE when @name is an MoE weight
 */
gboolean
bl_moe_parse_name (const char *name,
                   BlMoeName  *out)
{
  static const struct { const char *suffix; BlMoeRole role; } mixtral_roles[] = {
    { "w1.weight", BL_MOE_ROLE_GATE }, { "w3.weight", BL_MOE_ROLE_UP },
    { "w2.weight", BL_MOE_ROLE_DOWN },
  }, qwen_roles[] = {
    { "gate_proj.weight", BL_MOE_ROLE_GATE }, { "up_proj.weight", BL_MOE_ROLE_UP },
    { "down_proj.weight", BL_MOE_ROLE_DOWN },
  };
  const char *p = name;
  BlMoeName n = { BL_MOE_STYLE_NONE, -1, -1, BL_MOE_ROLE_ROUTER };
  const void *roles = NULL;

  g_return_val_if_fail (name != NULL && out != NULL, FALSE);

  if (!eat (&p, "model.layers.") || !read_index (&p, &n.block) || !eat (&p, "."))
    return FALSE;

  if (eat (&p, "block_sparse_moe."))
    {
      n.style = BL_MOE_STYLE_MIXTRAL;
      if (strcmp (p, "gate.weight") == 0)
        {
          *out = n;
          return TRUE;
        }
      if (!eat (&p, "experts.") || !read_index (&p, &n.expert) || !eat (&p, "."))
        return FALSE;
      roles = mixtral_roles;
    }
  else if (eat (&p, "mlp."))
    {
      n.style = BL_MOE_STYLE_QWEN2_MOE;
      if (strcmp (p, "gate.weight") == 0)
        {
          *out = n;
          return TRUE;
        }
      if (strcmp (p, "shared_expert_gate.weight") == 0)
        {
          n.role = BL_MOE_ROLE_SHARED_GATE;
          *out = n;
          return TRUE;
        }
      if (eat (&p, "shared_expert."))
        n.expert = BL_MOE_SHARED_EXPERT;
      else if (!eat (&p, "experts.") || !read_index (&p, &n.expert) || !eat (&p, "."))
        return FALSE;
      roles = qwen_roles;
    }
  else
    return FALSE;

  for (guint i = 0; i < 3; i++)
    {
      const char *suffix = roles == mixtral_roles ? mixtral_roles[i].suffix : qwen_roles[i].suffix;

      if (strcmp (p, suffix) == 0)
        {
          n.role = roles == mixtral_roles ? mixtral_roles[i].role : qwen_roles[i].role;
          *out = n;
          return TRUE;
        }
    }
  return FALSE;
}

/**
 * bl_moe_tensor_name:
 * @style: %BL_MOE_STYLE_MIXTRAL or %BL_MOE_STYLE_QWEN2_MOE
 * @block: the transformer block
 * @expert: the expert, %BL_MOE_SHARED_EXPERT (Qwen-MoE), or -1 for the router and the
 *   shared gate
 * @role: the tensor's role
 *
 * The inverse of bl_moe_parse_name().
 *
 * Returns: (transfer full): the weight's name
 */
char *
bl_moe_tensor_name (BlMoeStyle style,
                    int        block,
                    int        expert,
                    BlMoeRole  role)
{
  static const char *const mixtral[] = { NULL, "w1", "w3", "w2" };
  static const char *const qwen[] = { NULL, "gate_proj", "up_proj", "down_proj" };

  g_return_val_if_fail (style != BL_MOE_STYLE_NONE, NULL);

  if (style == BL_MOE_STYLE_MIXTRAL)
    {
      if (role == BL_MOE_ROLE_ROUTER)
        return g_strdup_printf ("model.layers.%d.block_sparse_moe.gate.weight", block);
      g_return_val_if_fail (expert >= 0 && role != BL_MOE_ROLE_SHARED_GATE, NULL);
      return g_strdup_printf ("model.layers.%d.block_sparse_moe.experts.%d.%s.weight", block,
                              expert, mixtral[role]);
    }
  if (role == BL_MOE_ROLE_ROUTER)
    return g_strdup_printf ("model.layers.%d.mlp.gate.weight", block);
  if (role == BL_MOE_ROLE_SHARED_GATE)
    return g_strdup_printf ("model.layers.%d.mlp.shared_expert_gate.weight", block);
  if (expert == BL_MOE_SHARED_EXPERT)
    return g_strdup_printf ("model.layers.%d.mlp.shared_expert.%s.weight", block, qwen[role]);
  return g_strdup_printf ("model.layers.%d.mlp.experts.%d.%s.weight", block, expert, qwen[role]);
}

/**
 * bl_moe_role_to_string:
 * @role: a role
 *
 * Returns: "router", "gate", "up", "down" or "shared_gate"
 */
const char *
bl_moe_role_to_string (BlMoeRole role)
{
  static const char *const names[] = { "router", "gate", "up", "down", "shared_gate" };

  g_return_val_if_fail ((guint) role < G_N_ELEMENTS (names), NULL);
  return names[role];
}

/**
 * bl_moe_style_to_string:
 * @style: a style
 *
 * Returns: "none", "mixtral" or "qwen2_moe"
 */
const char *
bl_moe_style_to_string (BlMoeStyle style)
{
  static const char *const names[] = { "none", "mixtral", "qwen2_moe" };

  g_return_val_if_fail ((guint) style < G_N_ELEMENTS (names), NULL);
  return names[style];
}

/**
 * bl_moe_layout_free:
 * @layout: (nullable): a layout
 */
void
bl_moe_layout_free (BlMoeLayout *layout)
{
  if (layout == NULL)
    return;
  g_clear_pointer (&layout->blocks, g_array_unref);
  g_free (layout);
}

typedef struct
{
  int block;
  gboolean has_router;
  gboolean has_shared_gate;
  guint shared_roles;         /* bit r: the shared expert has role r */
  GArray *expert_roles;       /* guint per expert: bit r when the expert has role r */
} BlockAcc;

static void
block_acc_free (gpointer data)
{
  BlockAcc *acc = data;

  g_array_unref (acc->expert_roles);
  g_free (acc);
}

static int
compare_blocks (gconstpointer a,
                gconstpointer b)
{
  const BlMoeBlockLayout *x = a, *y = b;

  return (x->block > y->block) - (x->block < y->block);
}

/**
 * bl_moe_layout_new_from_names:
 * @names: (array length=n_names): tensor names, e.g. a safetensors index's weight_map keys
 * @n_names: their number
 * @error: return location for a #GError
 *
 * Groups the MoE weights among @names by block and expert.
 *
 * Returns: (transfer full): the layout, or %NULL with %BL_ERROR_UNSUPPORTED_ARCHITECTURE when
 *   the names mix the two naming schemes
 */
BlMoeLayout *
bl_moe_layout_new_from_names (const char * const  *names,
                              guint                n_names,
                              GError             **error)
{
  g_autoptr(BlMoeLayout) layout = g_new0 (BlMoeLayout, 1);
  g_autoptr(GHashTable) acc = g_hash_table_new_full (NULL, NULL, NULL, block_acc_free);
  GHashTableIter iter;
  gpointer value;

  g_return_val_if_fail (names != NULL || n_names == 0, NULL);

  layout->blocks = g_array_new (FALSE, TRUE, sizeof (BlMoeBlockLayout));
  for (guint i = 0; i < n_names; i++)
    {
      BlMoeName n;
      BlockAcc *a;

      if (!bl_moe_parse_name (names[i], &n))
        {
          layout->n_other_tensors++;
          continue;
        }
      if (layout->style != BL_MOE_STYLE_NONE && layout->style != n.style)
        {
          g_set_error (error, BL_ERROR, BL_ERROR_UNSUPPORTED_ARCHITECTURE,
                       "Tensor “%s” follows %s naming, but earlier ones follow %s naming",
                       names[i], bl_moe_style_to_string (n.style),
                       bl_moe_style_to_string (layout->style));
          return NULL;
        }
      layout->style = n.style;
      a = g_hash_table_lookup (acc, GINT_TO_POINTER (n.block));
      if (a == NULL)
        {
          a = g_new0 (BlockAcc, 1);
          a->block = n.block;
          a->expert_roles = g_array_new (FALSE, TRUE, sizeof (guint));
          g_hash_table_insert (acc, GINT_TO_POINTER (n.block), a);
        }
      if (n.role == BL_MOE_ROLE_ROUTER)
        a->has_router = TRUE;
      else if (n.role == BL_MOE_ROLE_SHARED_GATE)
        a->has_shared_gate = TRUE;
      else if (n.expert == BL_MOE_SHARED_EXPERT)
        a->shared_roles |= 1u << n.role;
      else
        {
          if ((guint) n.expert >= a->expert_roles->len)
            g_array_set_size (a->expert_roles, n.expert + 1);
          g_array_index (a->expert_roles, guint, n.expert) |= 1u << n.role;
          layout->n_expert_tensors++;
        }
    }

  g_hash_table_iter_init (&iter, acc);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      BlockAcc *a = value;
      BlMoeBlockLayout b = { 0 };
      guint all = 0;

      b.block = a->block;
      b.n_experts = (int) a->expert_roles->len;
      b.has_router = a->has_router;
      b.has_shared_expert = a->shared_roles != 0;
      b.has_shared_gate = a->has_shared_gate;
      for (guint e = 0; e < a->expert_roles->len; e++)
        all |= g_array_index (a->expert_roles, guint, e);
      for (guint r = 0; r < 8; r++)
        b.n_roles += (all >> r) & 1;
      b.complete = b.n_experts > 0;
      for (guint e = 0; e < a->expert_roles->len; e++)
        b.complete &= g_array_index (a->expert_roles, guint, e) == all;
      g_array_append_val (layout->blocks, b);
    }
  g_array_sort (layout->blocks, compare_blocks);
  return g_steal_pointer (&layout);
}

/**
 * bl_moe_layout_new_from_index:
 * @path: a model.safetensors.index.json
 * @error: return location for a #GError
 *
 * The layout of the weight_map keys of a sharded checkpoint's index, which is enough to
 * describe a model without its shards.
 *
 * Returns: (transfer full): the layout, or %NULL with a %G_FILE_ERROR or
 *   %BL_ERROR_CORRUPT_FILE
 */
BlMoeLayout *
bl_moe_layout_new_from_index (const char  *path,
                              GError     **error)
{
  g_autofree char *data = NULL;
  g_autoptr(JsonNode) root = NULL;
  g_autoptr(GList) keys = NULL;
  g_autofree const char **names = NULL;
  JsonNode *map;
  gsize len;
  guint i = 0;

  g_return_val_if_fail (path != NULL, NULL);

  if (!g_file_get_contents (path, &data, &len, error) ||
      (root = bl_json_parse_object (data, len, path, error)) == NULL)
    return NULL;
  map = json_object_get_member (json_node_get_object (root), "weight_map");
  if (map == NULL || !JSON_NODE_HOLDS_OBJECT (map))
    {
      g_set_error (error, BL_ERROR, BL_ERROR_CORRUPT_FILE,
                   "%s: “weight_map” is missing or not an object", path);
      return NULL;
    }
  keys = json_object_get_members (json_node_get_object (map));
  names = g_new (const char *, g_list_length (keys) + 1);
  for (GList *l = keys; l != NULL; l = l->next)
    names[i++] = l->data;
  return bl_moe_layout_new_from_names (names, i, error);
}

/**
 * bl_moe_layout_new_from_model:
 * @model: a loaded model
 * @error: return location for a #GError
 *
 * Returns: (transfer full): the layout of @model's tensors, or %NULL with @error set
 */
BlMoeLayout *
bl_moe_layout_new_from_model (BlModel  *model,
                              GError  **error)
{
  guint n = bl_model_get_n_tensors (model);
  g_autofree const char **names = g_new (const char *, n + 1);

  g_return_val_if_fail (BL_IS_MODEL (model), NULL);

  for (guint i = 0; i < n; i++)
    names[i] = bl_model_get_tensor_at (model, i)->name;
  return bl_moe_layout_new_from_names (names, n, error);
}

/**
 * bl_moe_config_is_moe:
 * @config: a model config
 *
 * Returns: %TRUE when the model's blocks have a sparse MoE feed-forward
 */
gboolean
bl_moe_config_is_moe (const BlModelConfig *config)
{
  g_return_val_if_fail (config != NULL, FALSE);
  return config->n_experts > 0;
}

/**
 * bl_moe_config_style:
 * @config: a model config
 *
 * Returns: the naming scheme of the model's MoE weights, %BL_MOE_STYLE_NONE for a dense model
 */
BlMoeStyle
bl_moe_config_style (const BlModelConfig *config)
{
  g_return_val_if_fail (config != NULL, BL_MOE_STYLE_NONE);
  if (config->n_experts <= 0)
    return BL_MOE_STYLE_NONE;
  return strcmp (config->model_type, "mixtral") == 0 ? BL_MOE_STYLE_MIXTRAL
                                                     : BL_MOE_STYLE_QWEN2_MOE;
}
