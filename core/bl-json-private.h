/* bl-json-private.h: strict JSON parsing on top of json-glib for files Bitlens reads
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <json-glib/json-glib.h>

G_BEGIN_DECLS

/* Nesting deeper than this is refused before json-glib sees the text: json-glib 1.6 parses
 * recursively without a limit and overflows the stack on a few hundred kilobytes of "[". */
#define BL_JSON_MAX_DEPTH 64

JsonNode *bl_json_parse_object   (const char  *data,
                                  gsize        len,
                                  const char  *source,
                                  GError     **error);

gboolean  bl_json_node_get_int   (JsonNode    *node,
                                  gint64      *out_value);
const char *bl_json_node_describe (JsonNode  *node);

G_END_DECLS
