/* bl-safetensors.c: one validated, memory-mapped safetensors file
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * Layout (https://github.com/huggingface/safetensors, README "Format"): an unsigned 64-bit
 * little-endian header length N, N bytes of UTF-8 JSON mapping tensor names to
 * {"dtype", "shape", "data_offsets": [begin, end)} plus an optional "__metadata__" string map,
 * then the data area. Offsets are relative to the start of the data area, byte 8 + N.
 */
#include "bl-safetensors.h"

#include <string.h>

#include "bl-error.h"
#include "bl-json-private.h"

struct _BlSafetensors
{
  char *filename;
  GMappedFile *mapped;       /* NULL when parsing a caller's buffer */
  gpointer owner;            /* keeps the data of bl_safetensors_new_from_tensors() alive */
  GDestroyNotify owner_free;
  const guint8 *contents;
  gsize len;
  gsize data_start;

  BlTensor *tensors;         /* sorted by offset */
  guint n_tensors;
  GHashTable *by_name;       /* name → BlTensor * inside @tensors */
  GHashTable *metadata;      /* key → value, both owned */
};

static void
bl_safetensors_clear (gpointer data)
{
  BlSafetensors *self = data;

  for (guint i = 0; i < self->n_tensors; i++)
    g_free (self->tensors[i].name);
  g_free (self->tensors);
  g_clear_pointer (&self->by_name, g_hash_table_unref);
  g_clear_pointer (&self->metadata, g_hash_table_unref);
  g_clear_pointer (&self->mapped, g_mapped_file_unref);
  if (self->owner_free != NULL)
    self->owner_free (self->owner);
  g_free (self->filename);
}

/**
 * bl_safetensors_ref:
 * @self: a file
 *
 * Returns: (transfer full): @self
 */
BlSafetensors *
bl_safetensors_ref (BlSafetensors *self)
{
  g_return_val_if_fail (self != NULL, NULL);

  return g_atomic_rc_box_acquire (self);
}

/**
 * bl_safetensors_unref:
 * @self: (transfer full): a file
 *
 * Drops a reference; the last one unmaps the file, after which the tensors' data
 * pointers are invalid.
 */
void
bl_safetensors_unref (BlSafetensors *self)
{
  g_return_if_fail (self != NULL);

  g_atomic_rc_box_release_full (self, bl_safetensors_clear);
}

static char *
shape_to_string (const int64_t *shape,
                 int            n_dims)
{
  GString *s = g_string_new ("[");

  for (int d = 0; d < n_dims; d++)
    g_string_append_printf (s, "%s%" G_GINT64_FORMAT, d ? ", " : "", shape[d]);
  g_string_append_c (s, ']');
  return g_string_free (s, FALSE);
}

/* Reads a JSON array of non-negative integers. @what names the field in messages. */
static gboolean
read_uint_array (BlSafetensors  *self,
                 const char     *tensor,
                 JsonObject     *entry,
                 const char     *what,
                 guint           max_len,
                 BlErrorCode     too_long_code,
                 gint64         *values,
                 guint          *out_len,
                 GError        **error)
{
  JsonNode *node = json_object_get_member (entry, what);
  JsonArray *array;
  guint n;

  if (node == NULL || !JSON_NODE_HOLDS_ARRAY (node))
    {
      g_set_error (error, BL_ERROR, BL_ERROR_CORRUPT_FILE,
                   "%s: tensor “%s”: “%s” is %s, not an array",
                   self->filename, tensor, what, bl_json_node_describe (node));
      return FALSE;
    }
  array = json_node_get_array (node);
  n = json_array_get_length (array);
  if (n > max_len)
    {
      g_set_error (error, BL_ERROR, too_long_code,
                   "%s: tensor “%s”: “%s” has %u entries, at most %u are allowed",
                   self->filename, tensor, what, n, max_len);
      return FALSE;
    }
  for (guint i = 0; i < n; i++)
    if (!bl_json_node_get_int (json_array_get_element (array, i), &values[i]) || values[i] < 0)
      {
        g_set_error (error, BL_ERROR, BL_ERROR_CORRUPT_FILE,
                     "%s: tensor “%s”: %s[%u] is not a non-negative integer",
                     self->filename, tensor, what, i);
        return FALSE;
      }
  *out_len = n;
  return TRUE;
}

static gboolean
read_tensor (BlSafetensors  *self,
             const char     *name,
             JsonNode       *node,
             BlTensor       *t,
             GError        **error)
{
  gsize data_size = self->len - self->data_start;
  JsonObject *entry;
  JsonNode *dtype_node;
  const char *dtype;
  gint64 offsets[2];
  guint n_offsets;
  guint n_dims;
  g_autofree char *shape = NULL;
  guint64 n_bytes;
  size_t elem_size;
  gboolean has_zero = FALSE;

  if (!JSON_NODE_HOLDS_OBJECT (node))
    {
      g_set_error (error, BL_ERROR, BL_ERROR_CORRUPT_FILE,
                   "%s: tensor “%s”: header entry is %s, not an object",
                   self->filename, name, bl_json_node_describe (node));
      return FALSE;
    }
  entry = json_node_get_object (node);

  dtype_node = json_object_get_member (entry, "dtype");
  if (dtype_node == NULL || !JSON_NODE_HOLDS_VALUE (dtype_node) ||
      json_node_get_value_type (dtype_node) != G_TYPE_STRING)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_CORRUPT_FILE,
                   "%s: tensor “%s”: “dtype” is %s, not a string", self->filename, name,
                   bl_json_node_describe (dtype_node));
      return FALSE;
    }
  dtype = json_node_get_string (dtype_node);

  if (!read_uint_array (self, name, entry, "shape", BL_TENSOR_MAX_DIMS,
                        BL_ERROR_UNSUPPORTED_FORMAT, t->shape, &n_dims, error) ||
      !read_uint_array (self, name, entry, "data_offsets", 2,
                        BL_ERROR_CORRUPT_FILE, offsets, &n_offsets, error))
    return FALSE;
  if (n_offsets != 2)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_CORRUPT_FILE,
                   "%s: tensor “%s”: “data_offsets” has %u entries, not 2",
                   self->filename, name, n_offsets);
      return FALSE;
    }
  t->n_dims = (int) n_dims;
  shape = shape_to_string (t->shape, t->n_dims);

  if (offsets[0] > offsets[1])
    {
      g_set_error (error, BL_ERROR, BL_ERROR_CORRUPT_FILE,
                   "%s: tensor “%s”: data_offsets [%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT
                   ") begin after end (absolute offset %" G_GUINT64_FORMAT ")",
                   self->filename, name, offsets[0], offsets[1],
                   (guint64) self->data_start + (guint64) offsets[0]);
      return FALSE;
    }
  if ((guint64) offsets[1] > data_size)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_CORRUPT_FILE,
                   "%s: tensor “%s”: data_offsets [%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT
                   ") end beyond file data size %" G_GSIZE_FORMAT " (absolute offset %"
                   G_GUINT64_FORMAT ")",
                   self->filename, name, offsets[0], offsets[1], data_size,
                   (guint64) self->data_start + (guint64) offsets[0]);
      return FALSE;
    }
  if (!bl_dtype_from_string (dtype, &t->dtype))
    {
      g_set_error (error, BL_ERROR, BL_ERROR_UNSUPPORTED_FORMAT,
                   "%s: tensor “%s” has dtype %s; Bitlens reads F32, F16 and BF16",
                   self->filename, name, dtype);
      return FALSE;
    }
  elem_size = bl_dtype_size (t->dtype);

  /* The element count is a product of up to eight int64 sizes; refuse one that overflows
   * unless a zero factor makes the whole product zero. */
  t->n_elements = 1;
  for (int d = 0; d < t->n_dims; d++)
    has_zero |= t->shape[d] == 0;
  for (int d = 0; d < t->n_dims && !has_zero; d++)
    {
      if (t->n_elements > G_MAXINT64 / t->shape[d] ||
          t->n_elements * t->shape[d] > G_MAXINT64 / (gint64) elem_size)
        {
          g_set_error (error, BL_ERROR, BL_ERROR_CORRUPT_FILE,
                       "%s: tensor “%s”: shape %s is too large (its byte size overflows 63 bits)",
                       self->filename, name, shape);
          return FALSE;
        }
      t->n_elements *= t->shape[d];
    }
  if (has_zero)
    t->n_elements = 0;
  n_bytes = (guint64) t->n_elements * elem_size;

  if ((guint64) (offsets[1] - offsets[0]) != n_bytes)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_CORRUPT_FILE,
                   "%s: tensor “%s”: shape %s of %s needs %" G_GUINT64_FORMAT " bytes, but "
                   "data_offsets [%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT ") hold %"
                   G_GINT64_FORMAT " (absolute offset %" G_GUINT64_FORMAT ")",
                   self->filename, name, shape, dtype, n_bytes, offsets[0], offsets[1],
                   offsets[1] - offsets[0], (guint64) self->data_start + (guint64) offsets[0]);
      return FALSE;
    }

  t->name = g_strdup (name);
  t->file = self->filename;
  t->file_offset = (guint64) self->data_start + (guint64) offsets[0];
  t->data = self->contents + t->file_offset;
  t->n_bytes = (size_t) n_bytes;
  return TRUE;
}

static gboolean
read_metadata (BlSafetensors  *self,
               JsonNode       *node,
               GError        **error)
{
  JsonObjectIter iter;
  const char *key;
  JsonNode *value;

  if (!JSON_NODE_HOLDS_OBJECT (node))
    {
      g_set_error (error, BL_ERROR, BL_ERROR_CORRUPT_FILE,
                   "%s: “__metadata__” is %s, not an object of strings",
                   self->filename, bl_json_node_describe (node));
      return FALSE;
    }
  json_object_iter_init (&iter, json_node_get_object (node));
  while (json_object_iter_next (&iter, &key, &value))
    {
      if (!JSON_NODE_HOLDS_VALUE (value) || json_node_get_value_type (value) != G_TYPE_STRING)
        {
          g_set_error (error, BL_ERROR, BL_ERROR_CORRUPT_FILE,
                       "%s: “__metadata__” entry “%s” is %s, not a string",
                       self->filename, key, bl_json_node_describe (value));
          return FALSE;
        }
      g_hash_table_insert (self->metadata, g_strdup (key), g_strdup (json_node_get_string (value)));
    }
  return TRUE;
}

static int
compare_strings (gconstpointer a,
                 gconstpointer b)
{
  return strcmp (*(const char * const *) a, *(const char * const *) b);
}

static int
compare_offsets (gconstpointer a,
                 gconstpointer b)
{
  const BlTensor *ta = a;
  const BlTensor *tb = b;

  if (ta->file_offset != tb->file_offset)
    return ta->file_offset < tb->file_offset ? -1 : 1;
  if (ta->n_bytes != tb->n_bytes)
    return ta->n_bytes < tb->n_bytes ? -1 : 1;
  return strcmp (ta->name, tb->name);
}

/* Tensors must not share bytes: a quantizer writing one would silently change another. */
static gboolean
check_overlaps (BlSafetensors  *self,
                GError        **error)
{
  const BlTensor *last = NULL;

  for (guint i = 0; i < self->n_tensors; i++)
    {
      const BlTensor *t = &self->tensors[i];

      if (t->n_bytes == 0)
        continue;
      if (last != NULL && t->file_offset < last->file_offset + last->n_bytes)
        {
          g_set_error (error, BL_ERROR, BL_ERROR_CORRUPT_FILE,
                       "%s: tensor “%s” (bytes %" G_GUINT64_FORMAT "–%" G_GUINT64_FORMAT
                       ") overlaps tensor “%s” (bytes %" G_GUINT64_FORMAT "–%" G_GUINT64_FORMAT
                       ") at absolute offset %" G_GUINT64_FORMAT,
                       self->filename, t->name, t->file_offset, t->file_offset + t->n_bytes,
                       last->name, last->file_offset, last->file_offset + last->n_bytes,
                       t->file_offset);
          return FALSE;
        }
      last = t;
    }
  return TRUE;
}

/**
 * bl_safetensors_parse_header:
 * @buf: (array length=len) (nullable): the complete file contents
 * @len: length of @buf
 * @filename: the name used in error messages and in the tensors' @file
 * @error: return location for an error
 *
 * Parses and validates a safetensors file held in memory: the header length, the JSON
 * header (one object, no duplicate names), every entry's dtype, shape and data_offsets, that
 * each tensor's bytes lie inside the data area and match dtype × shape, and that no two
 * tensors overlap. Failures are %BL_ERROR_CORRUPT_FILE (%BL_ERROR_UNSUPPORTED_FORMAT for a
 * dtype other than F32, F16 and BF16, or more than %BL_TENSOR_MAX_DIMS dimensions), with a
 * message naming @filename, the tensor and the absolute byte offset.
 *
 * The result does not copy @buf: its tensors point into it, so @buf must outlive it.
 *
 * Returns: (transfer full): the parsed file, or %NULL with @error set
 */
BlSafetensors *
bl_safetensors_parse_header (const guint8  *buf,
                             gsize          len,
                             const char    *filename,
                             GError       **error)
{
  g_autoptr(BlSafetensors) self = NULL;
  g_autoptr(JsonNode) root = NULL;
  g_autofree char *source = NULL;
  g_autoptr(GList) members = NULL;
  JsonObject *object;
  guint64 header_len;
  guint n = 0;

  g_return_val_if_fail (buf != NULL || len == 0, NULL);
  g_return_val_if_fail (filename != NULL, NULL);

  self = g_atomic_rc_box_new0 (BlSafetensors);
  self->filename = g_strdup (filename);
  self->contents = buf;
  self->len = len;
  self->metadata = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  self->by_name = g_hash_table_new (g_str_hash, g_str_equal);

  if (len < 8)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_CORRUPT_FILE,
                   "%s: file is %" G_GSIZE_FORMAT " bytes, shorter than the 8-byte header length",
                   filename, len);
      return NULL;
    }
  memcpy (&header_len, buf, 8);
  header_len = GUINT64_FROM_LE (header_len);
  if (header_len > BL_SAFETENSORS_MAX_HEADER_SIZE)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_CORRUPT_FILE,
                   "%s: header length %" G_GUINT64_FORMAT " (bytes 0–7) exceeds the format's "
                   "limit of %d bytes", filename, header_len, BL_SAFETENSORS_MAX_HEADER_SIZE);
      return NULL;
    }
  if (header_len > len - 8)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_CORRUPT_FILE,
                   "%s: header length %" G_GUINT64_FORMAT " (bytes 0–7) runs beyond the end of "
                   "the %" G_GSIZE_FORMAT "-byte file", filename, header_len, len);
      return NULL;
    }
  self->data_start = 8 + (gsize) header_len;

  source = g_strdup_printf ("%s: JSON header at byte 8", filename);
  root = bl_json_parse_object ((const char *) buf + 8, (gsize) header_len, source, error);
  if (root == NULL)
    return NULL;
  object = json_node_get_object (root);

  members = json_object_get_members (object);
  self->tensors = g_new0 (BlTensor, json_object_get_size (object));
  for (const GList *l = members; l != NULL; l = l->next)
    {
      const char *name = l->data;
      JsonNode *node = json_object_get_member (object, name);

      if (strcmp (name, "__metadata__") == 0)
        {
          if (!read_metadata (self, node, error))
            return NULL;
          continue;
        }
      if (!read_tensor (self, name, node, &self->tensors[n], error))
        return NULL;
      self->n_tensors = ++n;
    }

  /* qsort must not see the NULL array of a header without tensors (found by fuzzing). */
  if (self->n_tensors > 1)
    qsort (self->tensors, self->n_tensors, sizeof (BlTensor), compare_offsets);
  if (!check_overlaps (self, error))
    return NULL;
  for (guint i = 0; i < self->n_tensors; i++)
    g_hash_table_insert (self->by_name, self->tensors[i].name, &self->tensors[i]);

  return g_steal_pointer (&self);
}

/**
 * bl_safetensors_open:
 * @path: a .safetensors file
 * @error: return location for an error
 *
 * Maps @path read-only and validates it as bl_safetensors_parse_header() does. The mapping
 * lives as long as the returned file. Errors opening the file are %G_FILE_ERROR.
 *
 * Returns: (transfer full): the file, or %NULL with @error set
 */
BlSafetensors *
bl_safetensors_open (const char  *path,
                     GError     **error)
{
  g_autoptr(GMappedFile) mapped = NULL;
  BlSafetensors *self;

  g_return_val_if_fail (path != NULL, NULL);

  mapped = g_mapped_file_new (path, FALSE, error);
  if (mapped == NULL)
    return NULL;
  self = bl_safetensors_parse_header ((const guint8 *) g_mapped_file_get_contents (mapped),
                                      g_mapped_file_get_length (mapped), path, error);
  if (self != NULL)
    self->mapped = g_steal_pointer (&mapped);
  return self;
}

/**
 * bl_safetensors_new_from_tensors:
 * @filename: the file the tensors were read from, for messages
 * @tensors: (array length=n_tensors): tensors with distinct names whose @data stays valid
 *   while @owner lives
 * @n_tensors: their number
 * @owner: (transfer full) (nullable): what holds the data
 * @owner_free: (nullable): frees @owner when the last reference is dropped
 *
 * Wraps tensors that do not come from a safetensors file (a GGUF model's tensors under
 * their Hugging Face names, some pointing into the GGUF mapping, some decoded into memory)
 * so that a #BlModel holds them like a file's. The descriptors are copied; each tensor's
 * @file becomes @filename and keeps its @file_offset. The tensors are numbered by that
 * offset. There is no safetensors image: bl_safetensors_get_contents() returns %NULL and 0,
 * and there is no metadata.
 *
 * Returns: (transfer full): the tensor set
 */
BlSafetensors *
bl_safetensors_new_from_tensors (const char     *filename,
                                 const BlTensor *tensors,
                                 guint           n_tensors,
                                 gpointer        owner,
                                 GDestroyNotify  owner_free)
{
  BlSafetensors *self;

  g_return_val_if_fail (filename != NULL, NULL);
  g_return_val_if_fail (tensors != NULL || n_tensors == 0, NULL);

  self = g_atomic_rc_box_new0 (BlSafetensors);
  self->filename = g_strdup (filename);
  self->owner = owner;
  self->owner_free = owner_free;
  self->metadata = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  self->by_name = g_hash_table_new (g_str_hash, g_str_equal);
  self->tensors = g_new0 (BlTensor, MAX (n_tensors, 1));
  self->n_tensors = n_tensors;
  for (guint i = 0; i < n_tensors; i++)
    {
      self->tensors[i] = tensors[i];
      self->tensors[i].name = g_strdup (tensors[i].name);
      self->tensors[i].file = self->filename;
    }
  if (n_tensors > 1)
    qsort (self->tensors, n_tensors, sizeof (BlTensor), compare_offsets);
  for (guint i = 0; i < n_tensors; i++)
    g_hash_table_insert (self->by_name, self->tensors[i].name, &self->tensors[i]);
  return self;
}

/**
 * bl_safetensors_get_filename:
 * @self: a file
 *
 * Returns: the path or name the file was opened under
 */
const char *
bl_safetensors_get_filename (BlSafetensors *self)
{
  g_return_val_if_fail (self != NULL, NULL);

  return self->filename;
}

/**
 * bl_safetensors_get_n_tensors:
 * @self: a file
 *
 * Returns: the number of tensors (the "__metadata__" entry is not one)
 */
guint
bl_safetensors_get_n_tensors (BlSafetensors *self)
{
  g_return_val_if_fail (self != NULL, 0);

  return self->n_tensors;
}

/**
 * bl_safetensors_get_tensor_at:
 * @self: a file
 * @index: below bl_safetensors_get_n_tensors()
 *
 * Tensors are numbered in the order of their bytes in the file.
 *
 * Returns: (transfer none): the tensor
 */
const BlTensor *
bl_safetensors_get_tensor_at (BlSafetensors *self,
                              guint          index)
{
  g_return_val_if_fail (self != NULL, NULL);
  g_return_val_if_fail (index < self->n_tensors, NULL);

  return &self->tensors[index];
}

/**
 * bl_safetensors_get_tensor:
 * @self: a file
 * @name: a tensor name
 *
 * Returns: (transfer none) (nullable): the tensor stored under exactly @name
 */
const BlTensor *
bl_safetensors_get_tensor (BlSafetensors *self,
                           const char    *name)
{
  g_return_val_if_fail (self != NULL, NULL);
  g_return_val_if_fail (name != NULL, NULL);

  return g_hash_table_lookup (self->by_name, name);
}

/**
 * bl_safetensors_get_metadata:
 * @self: a file
 * @key: a key of the "__metadata__" map
 *
 * Returns: (nullable): the value stored under @key
 */
const char *
bl_safetensors_get_metadata (BlSafetensors *self,
                             const char    *key)
{
  g_return_val_if_fail (self != NULL, NULL);
  g_return_val_if_fail (key != NULL, NULL);

  return g_hash_table_lookup (self->metadata, key);
}

/**
 * bl_safetensors_list_metadata_keys:
 * @self: a file
 *
 * Returns: (transfer full): the "__metadata__" keys, sorted
 */
GStrv
bl_safetensors_list_metadata_keys (BlSafetensors *self)
{
  g_autofree const char **keys = NULL;
  guint n;

  g_return_val_if_fail (self != NULL, NULL);

  keys = (const char **) g_hash_table_get_keys_as_array (self->metadata, &n);
  qsort (keys, n, sizeof (char *), compare_strings);
  return g_strdupv ((char **) keys);
}

/**
 * bl_safetensors_get_contents:
 * @self: a file
 * @len: (out): the file size
 *
 * Returns: (transfer none) (nullable): the complete file: header length, JSON header and
 *   data; %NULL (and 0) for a set made by bl_safetensors_new_from_tensors()
 */
const guint8 *
bl_safetensors_get_contents (BlSafetensors *self,
                             gsize         *len)
{
  g_return_val_if_fail (self != NULL, NULL);
  g_return_val_if_fail (len != NULL, NULL);

  *len = self->len;
  return self->contents;
}
