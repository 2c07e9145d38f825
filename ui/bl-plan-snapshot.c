/* bl-plan-snapshot.c: what the plan says about every layer at one moment
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "bl-plan-snapshot.h"

/**
 * SECTION:bl-plan-snapshot
 * @title: BlPlanSnapshot
 *
 * An immutable-once-shared record of the plan the user is editing: per layer, the weight
 * spec, the activation spec and the algorithm. Layers without an entry are unquantized. The
 * undo history keeps one snapshot per change, a measurement runs one, and the exporter turns
 * one into a #BlQuantPlan. Entries keep the order they were added in (the model's order).
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
