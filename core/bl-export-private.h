/* bl-export-private.h: JSON accessors shared by the exporters
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <json-glib/json-glib.h>

G_BEGIN_DECLS

/* The member @name of @obj as an object, or %NULL when @obj is %NULL or the member is absent
 * or of another type (json-glib's own getters emit a critical on a missing member, and the
 * files read here come from users). */
static inline JsonObject *
bl_export_object_member (JsonObject *obj,
                         const char *name)
{
  JsonNode *node = obj != NULL ? json_object_get_member (obj, name) : NULL;

  return node != NULL && JSON_NODE_HOLDS_OBJECT (node) ? json_node_get_object (node) : NULL;
}

static inline JsonArray *
bl_export_array_member (JsonObject *obj,
                        const char *name)
{
  JsonNode *node = obj != NULL ? json_object_get_member (obj, name) : NULL;

  return node != NULL && JSON_NODE_HOLDS_ARRAY (node) ? json_node_get_array (node) : NULL;
}

G_END_DECLS
