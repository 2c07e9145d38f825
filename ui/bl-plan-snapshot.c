/* bl-plan-snapshot.c: what the plan says about every layer at one moment
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "bl-plan-snapshot.h"

#include <string.h>

/**
 * SECTION:bl-plan-snapshot
 * @title: BlPlanSnapshot
 *
 * An immutable-once-shared record of the plan the user is editing: per layer, the weight
 * spec, the activation spec and the algorithm. Layers without an entry are unquantized. The
 * undo history keeps one snapshot per change, a measurement runs one, and the exporter turns
 * one into a #BlQuantPlan. Entries keep the order they were added in (the model's order).
 *
 * The conversion to a #BlQuantPlan writes one rule per projection when every block gives
 * that projection the same assignment ("model.layers.*.mlp.down_proj.weight"), and one
 * rule per layer otherwise; the defaults quantize nothing. Rules never overlap, so the
 * plan's first-match order does not matter, and the exported JSON reads like what the user
 * did ("mxfp4 on every MLP projection").
 */

struct _BlPlanSnapshot
{
  gatomicrefcount ref_count;
  GPtrArray *entries;        /* BlPlanEntry */
  GHashTable *by_name;       /* layer → BlPlanEntry, borrowed */
};

G_DEFINE_BOXED_TYPE (BlPlanSnapshot, bl_plan_snapshot, bl_plan_snapshot_ref, bl_plan_snapshot_unref)

static void
entry_free (gpointer data)
{
  BlPlanEntry *e = data;

  g_free (e->layer);
  g_free (e->weight_spec);
  g_free (e->act_spec);
  g_free (e->algorithm);
  g_free (e);
}

/**
 * bl_plan_snapshot_new:
 *
 * Returns: (transfer full): an empty plan (every layer unquantized)
 */
BlPlanSnapshot *
bl_plan_snapshot_new (void)
{
  BlPlanSnapshot *self = g_new0 (BlPlanSnapshot, 1);

  g_atomic_ref_count_init (&self->ref_count);
  self->entries = g_ptr_array_new_with_free_func (entry_free);
  self->by_name = g_hash_table_new (g_str_hash, g_str_equal);
  return self;
}

BlPlanSnapshot *
bl_plan_snapshot_ref (BlPlanSnapshot *self)
{
  g_return_val_if_fail (self != NULL, NULL);

  g_atomic_ref_count_inc (&self->ref_count);
  return self;
}

void
bl_plan_snapshot_unref (BlPlanSnapshot *self)
{
  g_return_if_fail (self != NULL);

  if (!g_atomic_ref_count_dec (&self->ref_count))
    return;
  g_hash_table_unref (self->by_name);
  g_ptr_array_unref (self->entries);
  g_free (self);
}

/**
 * bl_plan_snapshot_add:
 * @self: a snapshot that is not shared yet
 * @layer: the layer name, not yet in @self
 * @weight_spec: (nullable): the weight spec
 * @act_spec: (nullable): the activation spec
 * @algorithm: (nullable): the algorithm; %NULL means "rtn"
 *
 * Adds one layer. Adding a layer with neither spec does nothing: it is unquantized.
 */
void
bl_plan_snapshot_add (BlPlanSnapshot *self,
                      const char     *layer,
                      const char     *weight_spec,
                      const char     *act_spec,
                      const char     *algorithm)
{
  BlPlanEntry *e;

  g_return_if_fail (self != NULL && layer != NULL);
  g_return_if_fail (!g_hash_table_contains (self->by_name, layer));

  if (weight_spec == NULL && act_spec == NULL)
    return;
  e = g_new0 (BlPlanEntry, 1);
  e->layer = g_strdup (layer);
  e->weight_spec = g_strdup (weight_spec);
  e->act_spec = g_strdup (act_spec);
  e->algorithm = g_strdup (algorithm ? algorithm : "rtn");
  g_ptr_array_add (self->entries, e);
  g_hash_table_insert (self->by_name, e->layer, e);
}

/**
 * bl_plan_snapshot_lookup:
 * @self: a snapshot
 * @layer: a layer name
 *
 * Returns: (nullable): the layer's entry, or %NULL when it is unquantized
 */
const BlPlanEntry *
bl_plan_snapshot_lookup (BlPlanSnapshot *self,
                         const char     *layer)
{
  g_return_val_if_fail (self != NULL && layer != NULL, NULL);

  return g_hash_table_lookup (self->by_name, layer);
}

guint
bl_plan_snapshot_get_n_entries (BlPlanSnapshot *self)
{
  g_return_val_if_fail (self != NULL, 0);

  return self->entries->len;
}

const BlPlanEntry *
bl_plan_snapshot_get_entry (BlPlanSnapshot *self,
                            guint           index)
{
  g_return_val_if_fail (self != NULL && index < self->entries->len, NULL);

  return g_ptr_array_index (self->entries, index);
}

gboolean
bl_plan_snapshot_is_empty (BlPlanSnapshot *self)
{
  g_return_val_if_fail (self != NULL, TRUE);

  return self->entries->len == 0;
}

/**
 * bl_plan_snapshot_equal:
 * @a: a snapshot
 * @b: another
 *
 * Returns: whether every layer has the same specs and algorithm in both
 */
gboolean
bl_plan_snapshot_equal (BlPlanSnapshot *a,
                        BlPlanSnapshot *b)
{
  g_return_val_if_fail (a != NULL && b != NULL, FALSE);

  if (a->entries->len != b->entries->len)
    return FALSE;
  for (guint i = 0; i < a->entries->len; i++)
    {
      const BlPlanEntry *ea = g_ptr_array_index (a->entries, i);
      const BlPlanEntry *eb = g_hash_table_lookup (b->by_name, ea->layer);

      if (eb == NULL || g_strcmp0 (ea->weight_spec, eb->weight_spec) != 0
          || g_strcmp0 (ea->act_spec, eb->act_spec) != 0
          || g_strcmp0 (ea->algorithm, eb->algorithm) != 0)
        return FALSE;
    }
  return TRUE;
}

/**
 * bl_plan_snapshot_describe:
 * @self: a snapshot
 *
 * Returns: (transfer full): a short summary for labels and tooltips, e.g.
 *   "mxfp4 ×15, int8:channel ×2" or "unquantized"
 */
char *
bl_plan_snapshot_describe (BlPlanSnapshot *self)
{
  g_autoptr(GHashTable) counts = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_autoptr(GPtrArray) order = g_ptr_array_new_with_free_func (g_free);
  GString *s = g_string_new (NULL);

  g_return_val_if_fail (self != NULL, NULL);

  for (guint i = 0; i < self->entries->len; i++)
    {
      const BlPlanEntry *e = g_ptr_array_index (self->entries, i);
      g_autofree char *key = g_strdup_printf ("%s%s%s%s%s", e->weight_spec ? e->weight_spec : "fp",
                                              e->act_spec ? " · A " : "",
                                              e->act_spec ? e->act_spec : "",
                                              g_str_equal (e->algorithm, "rtn") ? "" : " · ",
                                              g_str_equal (e->algorithm, "rtn") ? "" : e->algorithm);
      gpointer n;

      if (!g_hash_table_lookup_extended (counts, key, NULL, &n))
        {
          n = GUINT_TO_POINTER (0);
          g_ptr_array_add (order, g_strdup (key));
        }
      g_hash_table_insert (counts, g_steal_pointer (&key), GUINT_TO_POINTER (GPOINTER_TO_UINT (n) + 1));
    }
  for (guint i = 0; i < order->len; i++)
    {
      const char *key = g_ptr_array_index (order, i);

      g_string_append_printf (s, "%s%s ×%u", i ? ", " : "", key,
                              GPOINTER_TO_UINT (g_hash_table_lookup (counts, key)));
    }
  if (s->len == 0)
    g_string_append (s, "unquantized");
  return g_string_free (s, FALSE);
}

static gboolean
entry_equal (const BlPlanEntry *a,
             const BlPlanEntry *b)
{
  if (a == NULL || b == NULL)
    return a == b;
  return g_strcmp0 (a->weight_spec, b->weight_spec) == 0 && g_strcmp0 (a->act_spec, b->act_spec) == 0
         && g_strcmp0 (a->algorithm, b->algorithm) == 0;
}

/* "model.layers.12.mlp.down_proj.weight" → "mlp.down_proj.weight", or NULL outside the blocks */
static const char *
block_suffix (const char *name)
{
  const char *s;

  if (!g_str_has_prefix (name, "model.layers."))
    return NULL;
  s = name + strlen ("model.layers.");
  if (!g_ascii_isdigit (*s))
    return NULL;
  while (g_ascii_isdigit (*s))
    s++;
  return *s == '.' ? s + 1 : NULL;
}

/**
 * bl_plan_snapshot_to_quant_plan:
 * @self: a snapshot
 * @model: the model the snapshot's layer names belong to
 * @error: return location for a #GError
 *
 * Returns: (transfer full): the plan as the core's #BlQuantPlan, or %NULL with @error set
 *   (a spec or algorithm the plan refuses)
 */
BlQuantPlan *
bl_plan_snapshot_to_quant_plan (BlPlanSnapshot  *self,
                                BlModel         *model,
                                GError         **error)
{
  g_autoptr(BlQuantPlan) plan = bl_quant_plan_new ();
  /* per block suffix: the entry every block shares, or a marker that they differ */
  g_autoptr(GHashTable) uniform = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr(GHashTable) emitted = g_hash_table_new (g_str_hash, g_str_equal);
  static const BlPlanEntry differs = { NULL, NULL, NULL, NULL };
  GListModel *layers = G_LIST_MODEL (model);

  g_return_val_if_fail (self != NULL, NULL);
  g_return_val_if_fail (BL_IS_MODEL (model), NULL);

  if (!bl_quant_plan_set_defaults (plan, BL_QUANT_PLAN_NONE, BL_QUANT_PLAN_NONE, "rtn", NULL, error))
    return NULL;

  for (guint i = 0; i < g_list_model_get_n_items (layers); i++)
    {
      g_autoptr(BlLayer) layer = g_list_model_get_item (layers, i);
      const char *suffix = block_suffix (bl_layer_get_name (layer));
      const BlPlanEntry *e = bl_plan_snapshot_lookup (self, bl_layer_get_name (layer));
      gpointer seen;

      if (suffix == NULL)
        continue;
      if (!g_hash_table_lookup_extended (uniform, suffix, NULL, &seen))
        g_hash_table_insert (uniform, (gpointer) suffix, (gpointer) (e ? e : &differs));
      else if (seen != &differs && !entry_equal (seen, e))
        g_hash_table_insert (uniform, (gpointer) suffix, (gpointer) &differs);
    }

  for (guint i = 0; i < self->entries->len; i++)
    {
      const BlPlanEntry *e = g_ptr_array_index (self->entries, i);
      const char *suffix = block_suffix (e->layer);
      const BlPlanEntry *shared = suffix ? g_hash_table_lookup (uniform, suffix) : NULL;
      g_autofree char *pattern = NULL;

      if (shared != NULL && shared != &differs)
        {
          if (!g_hash_table_add (emitted, (gpointer) suffix))
            continue;
          pattern = g_strconcat ("model.layers.*.", suffix, NULL);
        }
      else
        pattern = g_strdup (e->layer);
      if (!bl_quant_plan_insert_rule (plan, -1, pattern,
                                      e->weight_spec ? e->weight_spec : BL_QUANT_PLAN_NONE,
                                      e->act_spec ? e->act_spec : BL_QUANT_PLAN_NONE,
                                      e->algorithm, NULL, error))
        return NULL;
    }
  return g_steal_pointer (&plan);
}

/**
 * bl_plan_snapshot_new_from_quant_plan:
 * @plan: a plan
 * @model: the model to resolve it against
 * @error: return location for a #GError
 *
 * Returns: (transfer full): what @plan does to each layer of @model, or %NULL with @error
 *   set when the plan does not fit the model
 */
BlPlanSnapshot *
bl_plan_snapshot_new_from_quant_plan (BlQuantPlan  *plan,
                                      BlModel      *model,
                                      GError      **error)
{
  g_autoptr(GPtrArray) resolved = NULL;
  BlPlanSnapshot *self;

  g_return_val_if_fail (BL_IS_QUANT_PLAN (plan), NULL);
  g_return_val_if_fail (BL_IS_MODEL (model), NULL);

  resolved = bl_quant_plan_resolve (plan, model, error);
  if (resolved == NULL)
    return NULL;
  self = bl_plan_snapshot_new ();
  for (guint i = 0; i < resolved->len; i++)
    {
      const BlLayerAssignment *a = g_ptr_array_index (resolved, i);

      bl_plan_snapshot_add (self, a->layer, a->weight_spec, a->activation_spec, a->algorithm);
    }
  return self;
}
