/* bl-plan-history.c: undo and redo of plan changes
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "bl-plan-history.h"

/**
 * SECTION:bl-plan-history
 * @title: BlPlanHistory
 *
 * A linear history of plan snapshots with a cursor. A change pushes a snapshot and drops
 * whatever could have been redone; undo and redo move the cursor and hand back the snapshot
 * to restore. The "can-undo" and "can-redo" properties drive the actions' enabled state.
 */

/* Enough for an afternoon of exploration; the oldest changes fall off first. */
#define MAX_DEPTH 200

struct _BlPlanHistory
{
  GObject parent_instance;

  GPtrArray *snapshots;      /* BlPlanSnapshot, oldest first */
  guint cursor;              /* index of the current snapshot */
};

G_DEFINE_FINAL_TYPE (BlPlanHistory, bl_plan_history, G_TYPE_OBJECT)

enum {
  PROP_0,
  PROP_CAN_UNDO,
  PROP_CAN_REDO,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

static void
bl_plan_history_finalize (GObject *object)
{
  BlPlanHistory *self = BL_PLAN_HISTORY (object);

  g_clear_pointer (&self->snapshots, g_ptr_array_unref);

  G_OBJECT_CLASS (bl_plan_history_parent_class)->finalize (object);
}

static void
bl_plan_history_get_property (GObject    *object,
                              guint       prop_id,
                              GValue     *value,
                              GParamSpec *pspec)
{
  BlPlanHistory *self = BL_PLAN_HISTORY (object);

  switch (prop_id)
    {
    case PROP_CAN_UNDO:
      g_value_set_boolean (value, bl_plan_history_can_undo (self));
      break;
    case PROP_CAN_REDO:
      g_value_set_boolean (value, bl_plan_history_can_redo (self));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
bl_plan_history_class_init (BlPlanHistoryClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->finalize = bl_plan_history_finalize;
  object_class->get_property = bl_plan_history_get_property;

  properties[PROP_CAN_UNDO] =
    g_param_spec_boolean ("can-undo", NULL, NULL, FALSE,
                          G_PARAM_READABLE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);
  properties[PROP_CAN_REDO] =
    g_param_spec_boolean ("can-redo", NULL, NULL, FALSE,
                          G_PARAM_READABLE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);
  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
bl_plan_history_init (BlPlanHistory *self)
{
  self->snapshots = g_ptr_array_new_with_free_func ((GDestroyNotify) bl_plan_snapshot_unref);
  g_ptr_array_add (self->snapshots, bl_plan_snapshot_new ());
}

static void
notify_both (BlPlanHistory *self)
{
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_CAN_UNDO]);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_CAN_REDO]);
}

BlPlanHistory *
bl_plan_history_new (void)
{
  return g_object_new (BL_TYPE_PLAN_HISTORY, NULL);
}

/**
 * bl_plan_history_reset:
 * @self: a history
 * @initial: the plan to start from (a new model's, or a restored one)
 *
 * Forgets every change.
 */
void
bl_plan_history_reset (BlPlanHistory  *self,
                       BlPlanSnapshot *initial)
{
  g_return_if_fail (BL_IS_PLAN_HISTORY (self));
  g_return_if_fail (initial != NULL);

  g_ptr_array_set_size (self->snapshots, 0);
  g_ptr_array_add (self->snapshots, bl_plan_snapshot_ref (initial));
  self->cursor = 0;
  notify_both (self);
}

/**
 * bl_plan_history_push:
 * @self: a history
 * @snapshot: the plan after a change
 *
 * Records a change. A snapshot equal to the current one records nothing.
 *
 * Returns: whether a change was recorded
 */
gboolean
bl_plan_history_push (BlPlanHistory  *self,
                      BlPlanSnapshot *snapshot)
{
  g_return_val_if_fail (BL_IS_PLAN_HISTORY (self), FALSE);
  g_return_val_if_fail (snapshot != NULL, FALSE);

  if (bl_plan_snapshot_equal (snapshot, bl_plan_history_get_current (self)))
    return FALSE;
  g_ptr_array_set_size (self->snapshots, self->cursor + 1);
  g_ptr_array_add (self->snapshots, bl_plan_snapshot_ref (snapshot));
  if (self->snapshots->len > MAX_DEPTH)
    g_ptr_array_remove_index (self->snapshots, 0);
  self->cursor = self->snapshots->len - 1;
  notify_both (self);
  return TRUE;
}

/**
 * bl_plan_history_get_current:
 * @self: a history
 *
 * Returns: (transfer none): the plan at the cursor
 */
BlPlanSnapshot *
bl_plan_history_get_current (BlPlanHistory *self)
{
  g_return_val_if_fail (BL_IS_PLAN_HISTORY (self), NULL);

  return g_ptr_array_index (self->snapshots, self->cursor);
}

/**
 * bl_plan_history_undo:
 * @self: a history
 *
 * Returns: (transfer none) (nullable): the plan to restore, or %NULL when there is nothing
 *   to undo
 */
BlPlanSnapshot *
bl_plan_history_undo (BlPlanHistory *self)
{
  g_return_val_if_fail (BL_IS_PLAN_HISTORY (self), NULL);

  if (self->cursor == 0)
    return NULL;
  self->cursor--;
  notify_both (self);
  return bl_plan_history_get_current (self);
}

/**
 * bl_plan_history_redo:
 * @self: a history
 *
 * Returns: (transfer none) (nullable): the plan to restore, or %NULL when there is nothing
 *   to redo
 */
BlPlanSnapshot *
bl_plan_history_redo (BlPlanHistory *self)
{
  g_return_val_if_fail (BL_IS_PLAN_HISTORY (self), NULL);

  if (self->cursor + 1 >= self->snapshots->len)
    return NULL;
  self->cursor++;
  notify_both (self);
  return bl_plan_history_get_current (self);
}

gboolean
bl_plan_history_can_undo (BlPlanHistory *self)
{
  g_return_val_if_fail (BL_IS_PLAN_HISTORY (self), FALSE);

  return self->cursor > 0;
}

gboolean
bl_plan_history_can_redo (BlPlanHistory *self)
{
  g_return_val_if_fail (BL_IS_PLAN_HISTORY (self), FALSE);

  return self->cursor + 1 < self->snapshots->len;
}
