/* bl-json.c: strict JSON parsing on top of json-glib for files Bitlens reads
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "bl-json-private.h"

#include <string.h>

#include "bl-error.h"

static gsize
number_end (const char *data,
            gsize       len,
            gsize       start)
{
  gsize end = start;

  while (end < len && data[end] != '\0' && strchr ("0123456789+-.eE", data[end]) != NULL)
    end++;
  return end;
}

/* json-glib 1.6 reads an integer literal with g_ascii_strtoull and casts it to gint64, so a
 * literal beyond the int64 range silently becomes another number (-1, or a positive value
 * after the sign of a negative one is applied). Such literals are refused here. */
static gboolean
check_integer (const char  *token,
               gsize        len,
               const char  *source,
               int          line,
               int          col,
               GError     **error)
{
  const char *digits = token;
  const char *limit;
  gsize n;

  if (memchr (token, '.', len) != NULL || memchr (token, 'e', len) != NULL ||
      memchr (token, 'E', len) != NULL)
    return TRUE;
  if (*digits == '-')
    digits++;
  limit = digits == token ? "9223372036854775807" : "9223372036854775808";
  for (const char *p = digits; p < token + len; p++)
    if (!g_ascii_isdigit (*p))
      return TRUE;   /* a malformed number, json-glib reports it */
  while (digits < token + len - 1 && *digits == '0')
    digits++;
  n = (gsize) (token + len - digits);
  if (n < 19 || (n == 19 && strncmp (digits, limit, 19) <= 0))
    return TRUE;
  g_set_error (error, BL_ERROR, BL_ERROR_CORRUPT_FILE,
               "%s:%d:%d: integer %.*s is outside the 64-bit range",
               source, line, col, (int) MIN (len, 40), token);
  return FALSE;
}

/* Checks what json-glib 1.6 lets through or cannot survive: text that is not UTF-8, nesting
 * deep enough to overflow its recursive parser, raw control characters inside strings, a top
 * level that is not one object, and anything after that object (json-glib accepts a second
 * statement there). RFC 8259 sections 2 and 7 define the grammar checked here. */
static gboolean
check_structure (const char  *data,
                 gsize        len,
                 const char  *source,
                 GError     **error)
{
  const char *bad_utf8 = NULL;
  gboolean in_string = FALSE;
  gboolean escaped = FALSE;
  gboolean closed = FALSE;
  gboolean started = FALSE;
  int depth = 0;
  int line = 1;
  int col = 0;

  if (!g_utf8_validate_len (data, len, &bad_utf8))
    {
      g_set_error (error, BL_ERROR, BL_ERROR_CORRUPT_FILE,
                   "%s: JSON text is not valid UTF-8 (byte %" G_GSIZE_FORMAT " of the text)",
                   source, (gsize) (bad_utf8 - data));
      return FALSE;
    }

  for (gsize i = 0; i < len; i++)
    {
      guchar c = (guchar) data[i];

      if (c == '\n')
        {
          line++;
          col = 0;
        }
      else
        col++;

      if (in_string)
        {
          if (c < 0x20)
            {
              g_set_error (error, BL_ERROR, BL_ERROR_CORRUPT_FILE,
                           "%s:%d:%d: control character 0x%02x inside a JSON string",
                           source, line, col, c);
              return FALSE;
            }
          if (escaped)
            escaped = FALSE;
          else if (c == '\\')
            escaped = TRUE;
          else if (c == '"')
            in_string = FALSE;
          continue;
        }

      if (c == ' ' || c == '\t' || c == '\n' || c == '\r')
        continue;

      if (closed)
        {
          g_set_error (error, BL_ERROR, BL_ERROR_CORRUPT_FILE,
                       "%s:%d:%d: unexpected content after the top-level JSON object",
                       source, line, col);
          return FALSE;
        }
      if (!started && c != '{')
        {
          g_set_error (error, BL_ERROR, BL_ERROR_CORRUPT_FILE,
                       "%s:%d:%d: the JSON text is not an object (it starts with “%c”)",
                       source, line, col, g_ascii_isprint (c) ? c : '?');
          return FALSE;
        }
      started = TRUE;

      if (c < 0x20)
        {
          g_set_error (error, BL_ERROR, BL_ERROR_CORRUPT_FILE,
                       "%s:%d:%d: control character 0x%02x in JSON text", source, line, col, c);
          return FALSE;
        }
      if (c == '"')
        in_string = TRUE;
      else if (c == '-' || g_ascii_isdigit (c))
        {
          gsize end = number_end (data, len, i);

          if (!check_integer (data + i, end - i, source, line, col, error))
            return FALSE;
          col += (int) (end - i - 1);
          i = end - 1;
        }
      else if (c == '{' || c == '[')
        {
          if (++depth > BL_JSON_MAX_DEPTH)
            {
              g_set_error (error, BL_ERROR, BL_ERROR_CORRUPT_FILE,
                           "%s:%d:%d: JSON nesting deeper than %d levels",
                           source, line, col, BL_JSON_MAX_DEPTH);
              return FALSE;
            }
        }
      else if (c == '}' || c == ']')
        {
          /* Unbalanced closers are json-glib's to report, with its own message. */
          if (depth > 0 && --depth == 0)
            closed = TRUE;
        }
    }

  if (!started)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_CORRUPT_FILE,
                   "%s: the JSON text is empty", source);
      return FALSE;
    }
  return TRUE;
}

typedef struct
{
  GHashTable *n_members;   /* JsonObject * → members seen so far */
  char *duplicate;
} DuplicateCheck;

/* json-glib keeps the last of two equal keys without a word. Counting the members announced
 * for an object against the object's size catches the merge. Objects are only freed by such a
 * merge, so the pointer keys stay unique until the first duplicate, where the check stops. */
static void
on_object_member (JsonParser *parser,
                  JsonObject *object,
                  const char *member_name,
                  gpointer    user_data)
{
  DuplicateCheck *check = user_data;
  guint n;

  if (check->duplicate != NULL)
    return;
  n = GPOINTER_TO_UINT (g_hash_table_lookup (check->n_members, object)) + 1;
  g_hash_table_insert (check->n_members, object, GUINT_TO_POINTER (n));
  if (n != json_object_get_size (object))
    check->duplicate = g_strdup (member_name);
}

/**
 * bl_json_parse_object:
 * @data: JSON text (need not be NUL-terminated)
 * @len: length of @data in bytes
 * @source: the file name used in error messages
 * @error: return location for a %BL_ERROR_CORRUPT_FILE error
 *
 * Parses @data, which must be exactly one JSON object, refusing duplicate keys anywhere.
 * Parse errors read `source:line:col: message`.
 *
 * Returns: (transfer full): the root node, holding an object
 */
JsonNode *
bl_json_parse_object (const char  *data,
                      gsize        len,
                      const char  *source,
                      GError     **error)
{
  g_autoptr(JsonParser) parser = NULL;
  g_autoptr(GError) local_error = NULL;
  g_autoptr(GHashTable) n_members = NULL;
  DuplicateCheck check = { 0 };
  gboolean ok;

  g_return_val_if_fail (data != NULL || len == 0, NULL);
  g_return_val_if_fail (source != NULL, NULL);

  if (len > G_MAXSSIZE)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_CORRUPT_FILE,
                   "%s: JSON text of %" G_GSIZE_FORMAT " bytes is too large", source, len);
      return NULL;
    }
  if (!check_structure (data, len, source, error))
    return NULL;

  n_members = g_hash_table_new (NULL, NULL);
  check.n_members = n_members;
  parser = json_parser_new ();
  g_signal_connect (parser, "object-member", G_CALLBACK (on_object_member), &check);
  ok = json_parser_load_from_data (parser, data, (gssize) len, &local_error);
  g_signal_handlers_disconnect_by_data (parser, &check);

  if (!ok)
    {
      const char *message = local_error->message;

      g_free (check.duplicate);
      /* json-glib names in-memory input "<data>"; the caller knows the real name. */
      if (g_str_has_prefix (message, "<data>:"))
        message += strlen ("<data>:");
      g_set_error (error, BL_ERROR, BL_ERROR_CORRUPT_FILE, "%s:%s", source, message);
      return NULL;
    }
  if (check.duplicate != NULL)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_CORRUPT_FILE,
                   "%s: duplicate key “%s” in a JSON object", source, check.duplicate);
      g_free (check.duplicate);
      return NULL;
    }
  return json_parser_steal_root (parser);
}

/**
 * bl_json_node_get_int:
 * @node: (nullable): a node
 * @out_value: (out): the integer
 *
 * Returns: %TRUE when @node holds a JSON integer (no fraction, no exponent) that fits
 *   an int64; json-glib turns larger integers into -1, which callers refuse as negative
 */
gboolean
bl_json_node_get_int (JsonNode *node,
                      gint64   *out_value)
{
  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node) ||
      json_node_get_value_type (node) != G_TYPE_INT64)
    return FALSE;
  *out_value = json_node_get_int (node);
  return TRUE;
}

/**
 * bl_json_node_describe:
 * @node: (nullable): a node
 *
 * Returns: what @node holds, for messages: "missing" for %NULL, "an integer", "a string", …
 */
const char *
bl_json_node_describe (JsonNode *node)
{
  if (node == NULL)
    return "missing";
  switch (json_node_get_node_type (node))
    {
    case JSON_NODE_OBJECT:
      return "an object";
    case JSON_NODE_ARRAY:
      return "an array";
    case JSON_NODE_NULL:
      return "null";
    case JSON_NODE_VALUE:
      switch (json_node_get_value_type (node))
        {
        case G_TYPE_INT64:
          return "an integer";
        case G_TYPE_DOUBLE:
          return "a number";
        case G_TYPE_BOOLEAN:
          return "a boolean";
        case G_TYPE_STRING:
          return "a string";
        default:
          return "a value";
        }
    default:
      return "a value";
    }
}
