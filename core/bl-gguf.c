/* bl-gguf.c: a validating GGUF v3 reader, written from the field layout of ggml's docs/gguf.md
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * Every read is bounds-checked against the file, so a truncated or lying file gives a
 * %BL_ERROR_CORRUPT_FILE error naming the byte offset instead of a crash. Tensor data is
 * not copied: the infos point into the mapped file.
 */
#include "bl-gguf.h"

#include <string.h>

#include "bl-error.h"
#include "bl-gguf-quants.h"

struct _BlGguf
{
  char *filename;
  GMappedFile *mapped;       /* NULL when parsing a caller's buffer */
  const guint8 *contents;
  gsize len;

  guint32 version;
  guint32 alignment;
  guint64 data_offset;

  GArray *kvs;               /* BlGgufKv */
  GHashTable *kv_by_key;     /* key → index + 1 */
  GArray *tensors;           /* BlGgufTensorInfo */
  GHashTable *tensor_by_name;
};

/* ggml.c type_traits: block size and bytes per block of every type the spec lists; the
 * removed types (4, 5, 31–33, 36–38) have no entry. */
static const BlGgmlTypeTraits type_traits[BL_GGML_TYPE_COUNT] = {
  [0] = { "f32", 1, 4 },
  [1] = { "f16", 1, 2 },
  [2] = { "q4_0", 32, 18 },
  [3] = { "q4_1", 32, 20 },
  [6] = { "q5_0", 32, 22 },
  [7] = { "q5_1", 32, 24 },
  [8] = { "q8_0", 32, 34 },
  [9] = { "q8_1", 32, 36 },
  [10] = { "q2_K", 256, 84 },
  [11] = { "q3_K", 256, 110 },
  [12] = { "q4_K", 256, 144 },
  [13] = { "q5_K", 256, 176 },
  [14] = { "q6_K", 256, 210 },
  [15] = { "q8_K", 256, 292 },
  [16] = { "iq2_xxs", 256, 66 },
  [17] = { "iq2_xs", 256, 74 },
  [18] = { "iq3_xxs", 256, 98 },
  [19] = { "iq1_s", 256, 50 },
  [20] = { "iq4_nl", 32, 18 },
  [21] = { "iq3_s", 256, 110 },
  [22] = { "iq2_s", 256, 82 },
  [23] = { "iq4_xs", 256, 136 },
  [24] = { "i8", 1, 1 },
  [25] = { "i16", 1, 2 },
  [26] = { "i32", 1, 4 },
  [27] = { "i64", 1, 8 },
  [28] = { "f64", 1, 8 },
  [29] = { "iq1_m", 256, 56 },
  [30] = { "bf16", 1, 2 },
  [34] = { "tq1_0", 256, 54 },
  [35] = { "tq2_0", 256, 66 },
  [39] = { "mxfp4", 32, 17 },
};

/**
 * bl_ggml_type_get_traits:
 * @type: a ggml type number
 *
 * Returns: (nullable): the block geometry of @type, or %NULL for a number that is not (or
 *   no longer) a ggml type
 */
const BlGgmlTypeTraits *
bl_ggml_type_get_traits (guint32 type)
{
  if (type >= BL_GGML_TYPE_COUNT || type_traits[type].name == NULL)
    return NULL;
  return &type_traits[type];
}

/**
 * bl_ggml_type_from_name:
 * @name: a type name as llama-quantize spells it ("q4_0", "Q8_0", "mxfp4"), any case
 * @out_type: (out): the type
 *
 * Returns: whether @name is a ggml type
 */
gboolean
bl_ggml_type_from_name (const char *name,
                        BlGgmlType *out_type)
{
  for (guint t = 0; t < BL_GGML_TYPE_COUNT; t++)
    if (type_traits[t].name != NULL && g_ascii_strcasecmp (type_traits[t].name, name) == 0)
      {
        *out_type = (BlGgmlType) t;
        return TRUE;
      }
  return FALSE;
}

/**
 * bl_ggml_row_size:
 * @type: a ggml type
 * @n_elements: elements, a multiple of the block size
 *
 * Returns: the bytes @n_elements elements of @type take (ggml_row_size())
 */
guint64
bl_ggml_row_size (BlGgmlType type,
                  gint64     n_elements)
{
  const BlGgmlTypeTraits *tr = bl_ggml_type_get_traits (type);

  g_return_val_if_fail (tr != NULL, 0);
  return (guint64) (n_elements / tr->block_size) * (guint64) tr->type_size;
}

/* sizes of the fixed-size value types; 0 for string and array */
static const guint8 value_size[BL_GGUF_TYPE_COUNT] = {
  [BL_GGUF_TYPE_UINT8] = 1, [BL_GGUF_TYPE_INT8] = 1, [BL_GGUF_TYPE_UINT16] = 2,
  [BL_GGUF_TYPE_INT16] = 2, [BL_GGUF_TYPE_UINT32] = 4, [BL_GGUF_TYPE_INT32] = 4,
  [BL_GGUF_TYPE_FLOAT32] = 4, [BL_GGUF_TYPE_BOOL] = 1, [BL_GGUF_TYPE_UINT64] = 8,
  [BL_GGUF_TYPE_INT64] = 8, [BL_GGUF_TYPE_FLOAT64] = 8,
};

static void
bl_gguf_clear (gpointer data)
{
  BlGguf *self = data;

  if (self->kvs != NULL)
    for (guint i = 0; i < self->kvs->len; i++)
      g_free (g_array_index (self->kvs, BlGgufKv, i).key);
  if (self->tensors != NULL)
    for (guint i = 0; i < self->tensors->len; i++)
      g_free (g_array_index (self->tensors, BlGgufTensorInfo, i).name);
  g_clear_pointer (&self->kvs, g_array_unref);
  g_clear_pointer (&self->tensors, g_array_unref);
  g_clear_pointer (&self->kv_by_key, g_hash_table_unref);
  g_clear_pointer (&self->tensor_by_name, g_hash_table_unref);
  g_clear_pointer (&self->mapped, g_mapped_file_unref);
  g_free (self->filename);
}

/**
 * bl_gguf_ref:
 * @self: a file
 *
 * Returns: (transfer full): @self
 */
BlGguf *
bl_gguf_ref (BlGguf *self)
{
  g_return_val_if_fail (self != NULL, NULL);

  return g_atomic_rc_box_acquire (self);
}

/**
 * bl_gguf_unref:
 * @self: (transfer full): a file
 *
 * Drops a reference; the last one unmaps the file.
 */
void
bl_gguf_unref (BlGguf *self)
{
  g_return_if_fail (self != NULL);

  g_atomic_rc_box_release_full (self, bl_gguf_clear);
}

/* A cursor over the file; every read checks the bounds and names the offset. */
typedef struct
{
  BlGguf *file;
  guint64 pos;
} Reader;

static gboolean
need (Reader   *r,
      guint64   n,
      const char *what,
      GError  **error)
{
  if (n > r->file->len || r->pos > r->file->len - n)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_CORRUPT_FILE,
                   "%s: truncated at byte %" G_GUINT64_FORMAT " reading %s (%" G_GUINT64_FORMAT
                   " bytes needed, the file has %" G_GSIZE_FORMAT ")", r->file->filename, r->pos,
                   what, n, r->file->len);
      return FALSE;
    }
  return TRUE;
}

static gboolean
read_u32 (Reader      *r,
          guint32     *out,
          const char  *what,
          GError     **error)
{
  if (!need (r, 4, what, error))
    return FALSE;
  memcpy (out, r->file->contents + r->pos, 4);
  *out = GUINT32_FROM_LE (*out);
  r->pos += 4;
  return TRUE;
}

static gboolean
read_u64 (Reader      *r,
          guint64     *out,
          const char  *what,
          GError     **error)
{
  if (!need (r, 8, what, error))
    return FALSE;
  memcpy (out, r->file->contents + r->pos, 8);
  *out = GUINT64_FROM_LE (*out);
  r->pos += 8;
  return TRUE;
}

/* A gguf_string; *out points into the file and is not terminated. */
static gboolean
read_string (Reader       *r,
             const char  **out,
             guint64      *out_len,
             const char   *what,
             GError      **error)
{
  guint64 len;

  if (!read_u64 (r, &len, what, error) || !need (r, len, what, error))
    return FALSE;
  *out = (const char *) r->file->contents + r->pos;
  *out_len = len;
  r->pos += len;
  return TRUE;
}

/* Skips one value of @type, recursing into arrays, with a bound on the nesting depth. */
static gboolean
skip_value (Reader          *r,
            BlGgufValueType  type,
            int              depth,
            const char      *key,
            GError         **error)
{
  if (type >= BL_GGUF_TYPE_COUNT)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_CORRUPT_FILE,
                   "%s: metadata “%s” has value type %u at byte %" G_GUINT64_FORMAT
                   "; GGUF v3 defines 0–12", r->file->filename, key, type, r->pos);
      return FALSE;
    }
  if (type == BL_GGUF_TYPE_STRING)
    {
      const char *s;
      guint64 len;

      return read_string (r, &s, &len, key, error);
    }
  if (type == BL_GGUF_TYPE_ARRAY)
    {
      guint32 elem;
      guint64 count;

      if (depth > 8)
        {
          g_set_error (error, BL_ERROR, BL_ERROR_CORRUPT_FILE,
                       "%s: metadata “%s” nests arrays deeper than 8 at byte %" G_GUINT64_FORMAT,
                       r->file->filename, key, r->pos);
          return FALSE;
        }
      if (!read_u32 (r, &elem, key, error) || !read_u64 (r, &count, key, error))
        return FALSE;
      if (elem >= BL_GGUF_TYPE_COUNT)
        return skip_value (r, (BlGgufValueType) elem, depth + 1, key, error);
      if (value_size[elem] != 0)
        {
          if (count > G_MAXUINT64 / value_size[elem])
            return need (r, G_MAXUINT64, key, error);
          if (!need (r, count * value_size[elem], key, error))
            return FALSE;
          r->pos += count * value_size[elem];
          return TRUE;
        }
      for (guint64 i = 0; i < count; i++)
        if (!skip_value (r, (BlGgufValueType) elem, depth + 1, key, error))
          return FALSE;
      return TRUE;
    }
  if (!need (r, value_size[type], key, error))
    return FALSE;
  if (type == BL_GGUF_TYPE_BOOL && r->file->contents[r->pos] > 1)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_CORRUPT_FILE,
                   "%s: metadata “%s” is a bool with byte value %u at byte %" G_GUINT64_FORMAT,
                   r->file->filename, key, r->file->contents[r->pos], r->pos);
      return FALSE;
    }
  r->pos += value_size[type];
  return TRUE;
}

static gboolean
valid_key (const char *key,
           guint64     len)
{
  if (len == 0 || len > 65535)
    return FALSE;
  for (guint64 i = 0; i < len; i++)
    if ((guchar) key[i] < 0x20 || (guchar) key[i] > 0x7e)
      return FALSE;
  return TRUE;
}

static gboolean
parse_kvs (BlGguf   *self,
           Reader   *r,
           guint64   n_kv,
           GError  **error)
{
  for (guint64 i = 0; i < n_kv; i++)
    {
      const char *key;
      guint64 key_len, start = r->pos;
      guint32 type;
      BlGgufKv kv = { 0 };

      if (!read_string (r, &key, &key_len, "a metadata key", error))
        return FALSE;
      if (!valid_key (key, key_len))
        {
          g_set_error (error, BL_ERROR, BL_ERROR_CORRUPT_FILE,
                       "%s: metadata key %" G_GUINT64_FORMAT " at byte %" G_GUINT64_FORMAT
                       " is not printable ASCII of 1–65535 bytes", self->filename, i, start);
          return FALSE;
        }
      kv.key = g_strndup (key, key_len);
      g_array_append_val (self->kvs, kv);
      if (g_hash_table_contains (self->kv_by_key, kv.key))
        {
          g_set_error (error, BL_ERROR, BL_ERROR_CORRUPT_FILE,
                       "%s: metadata key “%s” appears twice (second at byte %" G_GUINT64_FORMAT ")",
                       self->filename, kv.key, start);
          return FALSE;
        }
      g_hash_table_insert (self->kv_by_key, kv.key, GUINT_TO_POINTER (self->kvs->len));
      if (!read_u32 (r, &type, kv.key, error))
        return FALSE;
      g_array_index (self->kvs, BlGgufKv, self->kvs->len - 1).type = (BlGgufValueType) type;
      if (type == BL_GGUF_TYPE_ARRAY)
        {
          guint32 elem;
          guint64 count;
          Reader peek = *r;

          if (!read_u32 (&peek, &elem, kv.key, error) || !read_u64 (&peek, &count, kv.key, error))
            return FALSE;
          g_array_index (self->kvs, BlGgufKv, self->kvs->len - 1).array_type = (BlGgufValueType) elem;
          g_array_index (self->kvs, BlGgufKv, self->kvs->len - 1).array_len = count;
          g_array_index (self->kvs, BlGgufKv, self->kvs->len - 1).offset = peek.pos;
        }
      else
        g_array_index (self->kvs, BlGgufKv, self->kvs->len - 1).offset = r->pos;
      if (!skip_value (r, (BlGgufValueType) type, 0, kv.key, error))
        return FALSE;
    }
  return TRUE;
}

static gboolean
parse_tensor_infos (BlGguf  *self,
                    Reader  *r,
                    guint64  n_tensors,
                    GError **error)
{
  for (guint64 i = 0; i < n_tensors; i++)
    {
      const char *name;
      guint64 name_len, start = r->pos;
      BlGgufTensorInfo t = { 0 };
      const BlGgmlTypeTraits *tr;
      guint64 n_elements = 1;

      if (!read_string (r, &name, &name_len, "a tensor name", error))
        return FALSE;
      if (name_len == 0 || name_len > BL_GGUF_MAX_NAME || memchr (name, 0, name_len) != NULL)
        {
          g_set_error (error, BL_ERROR, BL_ERROR_CORRUPT_FILE,
                       "%s: tensor %" G_GUINT64_FORMAT " at byte %" G_GUINT64_FORMAT
                       " has a name of %" G_GUINT64_FORMAT " bytes; GGUF allows 1–%d",
                       self->filename, i, start, name_len, BL_GGUF_MAX_NAME);
          return FALSE;
        }
      t.name = g_strndup (name, name_len);
      g_array_append_val (self->tensors, t);
      if (g_hash_table_contains (self->tensor_by_name, t.name))
        {
          g_set_error (error, BL_ERROR, BL_ERROR_CORRUPT_FILE,
                       "%s: tensor “%s” appears twice (second at byte %" G_GUINT64_FORMAT ")",
                       self->filename, t.name, start);
          return FALSE;
        }
      g_hash_table_insert (self->tensor_by_name, t.name, GUINT_TO_POINTER (self->tensors->len));
      if (!read_u32 (r, &t.n_dims, t.name, error))
        return FALSE;
      if (t.n_dims == 0 || t.n_dims > BL_GGUF_MAX_DIMS)
        {
          g_set_error (error, BL_ERROR, BL_ERROR_CORRUPT_FILE,
                       "%s: tensor “%s” has %u dimensions; GGUF allows 1–%d", self->filename,
                       t.name, t.n_dims, BL_GGUF_MAX_DIMS);
          return FALSE;
        }
      for (guint32 d = 0; d < t.n_dims; d++)
        {
          guint64 ne;

          if (!read_u64 (r, &ne, t.name, error))
            return FALSE;
          if (ne == 0 || ne > (guint64) G_MAXINT64 || n_elements > (guint64) G_MAXINT64 / ne)
            {
              g_set_error (error, BL_ERROR, BL_ERROR_CORRUPT_FILE,
                           "%s: tensor “%s” has dimension %u of size %" G_GUINT64_FORMAT
                           " (empty or overflowing)", self->filename, t.name, d, ne);
              return FALSE;
            }
          t.ne[d] = (gint64) ne;
          n_elements *= ne;
        }
      for (guint32 d = t.n_dims; d < BL_GGUF_MAX_DIMS; d++)
        t.ne[d] = 1;
      if (!read_u32 (r, &t.type, t.name, error) || !read_u64 (r, &t.offset, t.name, error))
        return FALSE;
      tr = bl_ggml_type_get_traits (t.type);
      if (tr == NULL)
        {
          g_set_error (error, BL_ERROR, BL_ERROR_UNSUPPORTED_FORMAT,
                       "%s: tensor “%s” has ggml type %u, which is not a ggml type",
                       self->filename, t.name, t.type);
          return FALSE;
        }
      if (t.ne[0] % tr->block_size != 0)
        {
          g_set_error (error, BL_ERROR, BL_ERROR_CORRUPT_FILE,
                       "%s: tensor “%s” of type %s has rows of %" G_GINT64_FORMAT
                       " elements, not a multiple of the block size %d", self->filename, t.name,
                       tr->name, t.ne[0], tr->block_size);
          return FALSE;
        }
      if (n_elements / (guint64) tr->block_size > G_MAXUINT64 / (guint64) tr->type_size)
        {
          g_set_error (error, BL_ERROR, BL_ERROR_CORRUPT_FILE,
                       "%s: tensor “%s” is too large to address", self->filename, t.name);
          return FALSE;
        }
      t.n_bytes = n_elements / (guint64) tr->block_size * (guint64) tr->type_size;
      g_array_index (self->tensors, BlGgufTensorInfo, self->tensors->len - 1) = t;
    }
  return TRUE;
}

static int
compare_offsets (gconstpointer a,
                 gconstpointer b)
{
  const BlGgufTensorInfo *x = *(BlGgufTensorInfo * const *) a;
  const BlGgufTensorInfo *y = *(BlGgufTensorInfo * const *) b;

  return x->offset < y->offset ? -1 : x->offset > y->offset ? 1 : 0;
}

/* Places the data: offsets aligned, inside the file, and no two tensors overlapping. */
static gboolean
place_tensors (BlGguf  *self,
               GError **error)
{
  g_autoptr(GPtrArray) sorted = g_ptr_array_new ();

  for (guint i = 0; i < self->tensors->len; i++)
    {
      BlGgufTensorInfo *t = &g_array_index (self->tensors, BlGgufTensorInfo, i);

      if (t->offset % self->alignment != 0)
        {
          g_set_error (error, BL_ERROR, BL_ERROR_CORRUPT_FILE,
                       "%s: tensor “%s” starts at data offset %" G_GUINT64_FORMAT
                       ", not a multiple of the alignment %u", self->filename, t->name,
                       t->offset, self->alignment);
          return FALSE;
        }
      if (t->offset > self->len - self->data_offset
          || t->n_bytes > self->len - self->data_offset - t->offset)
        {
          g_set_error (error, BL_ERROR, BL_ERROR_CORRUPT_FILE,
                       "%s: tensor “%s” needs bytes %" G_GUINT64_FORMAT "–%" G_GUINT64_FORMAT
                       " but the file ends at %" G_GSIZE_FORMAT, self->filename, t->name,
                       self->data_offset + t->offset, self->data_offset + t->offset + t->n_bytes,
                       self->len);
          return FALSE;
        }
      t->file_offset = self->data_offset + t->offset;
      t->data = self->contents + t->file_offset;
      g_ptr_array_add (sorted, t);
    }
  g_ptr_array_sort (sorted, compare_offsets);
  for (guint i = 1; i < sorted->len; i++)
    {
      const BlGgufTensorInfo *a = sorted->pdata[i - 1], *b = sorted->pdata[i];

      if (a->offset + a->n_bytes > b->offset)
        {
          g_set_error (error, BL_ERROR, BL_ERROR_CORRUPT_FILE,
                       "%s: tensors “%s” and “%s” overlap at file byte %" G_GUINT64_FORMAT,
                       self->filename, a->name, b->name, b->file_offset);
          return FALSE;
        }
    }
  return TRUE;
}

static gboolean
parse (BlGguf  *self,
       GError **error)
{
  Reader r = { self, 0 };
  guint32 magic;
  guint64 n_tensors, n_kv, align;

  if (!read_u32 (&r, &magic, "the magic", error))
    return FALSE;
  if (magic != BL_GGUF_MAGIC)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_CORRUPT_FILE,
                   "%s: not a GGUF file (magic 0x%08x, expected “GGUF”)", self->filename, magic);
      return FALSE;
    }
  if (!read_u32 (&r, &self->version, "the version", error))
    return FALSE;
  if (self->version != BL_GGUF_VERSION)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_UNSUPPORTED_FORMAT,
                   "%s: GGUF version %u; Bitlens reads version 3", self->filename, self->version);
      return FALSE;
    }
  if (!read_u64 (&r, &n_tensors, "the tensor count", error)
      || !read_u64 (&r, &n_kv, "the metadata count", error))
    return FALSE;
  /* each pair and each tensor info takes at least 12 and 24 bytes: refuse counts the file
   * cannot hold before allocating for them */
  if (n_kv > self->len / 12 || n_tensors > self->len / 24)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_CORRUPT_FILE,
                   "%s: claims %" G_GUINT64_FORMAT " metadata pairs and %" G_GUINT64_FORMAT
                   " tensors, more than %" G_GSIZE_FORMAT " bytes can hold", self->filename, n_kv,
                   n_tensors, self->len);
      return FALSE;
    }
  if (!parse_kvs (self, &r, n_kv, error) || !parse_tensor_infos (self, &r, n_tensors, error))
    return FALSE;

  self->alignment = BL_GGUF_DEFAULT_ALIGNMENT;
  if (bl_gguf_find_kv (self, "general.alignment") != NULL)
    {
      if (!bl_gguf_get_uint (self, "general.alignment", &align) || align == 0 || align % 8 != 0
          || align > 1u << 20)
        {
          g_set_error (error, BL_ERROR, BL_ERROR_CORRUPT_FILE,
                       "%s: general.alignment must be a uint32 multiple of 8", self->filename);
          return FALSE;
        }
      self->alignment = (guint32) align;
    }
  self->data_offset = r.pos + (self->alignment - r.pos % self->alignment) % self->alignment;
  if (self->data_offset > self->len)
    {
      if (n_tensors == 0)
        self->data_offset = self->len;
      else
        {
          g_set_error (error, BL_ERROR, BL_ERROR_CORRUPT_FILE,
                       "%s: the data section would start at byte %" G_GUINT64_FORMAT
                       ", past the end", self->filename, self->data_offset);
          return FALSE;
        }
    }
  return place_tensors (self, error);
}

static BlGguf *
gguf_new (const char *filename)
{
  BlGguf *self = g_atomic_rc_box_new0 (BlGguf);

  self->filename = g_strdup (filename);
  self->kvs = g_array_new (FALSE, TRUE, sizeof (BlGgufKv));
  self->tensors = g_array_new (FALSE, TRUE, sizeof (BlGgufTensorInfo));
  self->kv_by_key = g_hash_table_new (g_str_hash, g_str_equal);
  self->tensor_by_name = g_hash_table_new (g_str_hash, g_str_equal);
  return self;
}

/**
 * bl_gguf_open:
 * @path: a GGUF file
 * @error: return location for an error
 *
 * Maps @path and validates its header, metadata and tensor infos.
 *
 * Returns: (transfer full) (nullable): the file, or %NULL with @error set
 */
BlGguf *
bl_gguf_open (const char  *path,
              GError     **error)
{
  g_autoptr(BlGguf) self = NULL;
  GMappedFile *mapped;

  g_return_val_if_fail (path != NULL, NULL);

  mapped = g_mapped_file_new (path, FALSE, error);
  if (mapped == NULL)
    return NULL;
  self = gguf_new (path);
  self->mapped = mapped;
  self->contents = (const guint8 *) g_mapped_file_get_contents (mapped);
  self->len = g_mapped_file_get_length (mapped);
  if (!parse (self, error))
    return NULL;
  return g_steal_pointer (&self);
}

/**
 * bl_gguf_new_from_data:
 * @data: (array length=len): a GGUF file's bytes, which must outlive the result
 * @len: their length
 * @filename: the name used in error messages
 * @error: return location for an error
 *
 * Like bl_gguf_open(), over a buffer.
 *
 * Returns: (transfer full) (nullable): the file, or %NULL with @error set
 */
BlGguf *
bl_gguf_new_from_data (const guint8 *data,
                       gsize         len,
                       const char   *filename,
                       GError      **error)
{
  g_autoptr(BlGguf) self = gguf_new (filename);

  self->contents = data;
  self->len = len;
  if (!parse (self, error))
    return NULL;
  return g_steal_pointer (&self);
}

const char *
bl_gguf_get_filename (BlGguf *self)
{
  return self->filename;
}

guint32
bl_gguf_get_version (BlGguf *self)
{
  return self->version;
}

guint32
bl_gguf_get_alignment (BlGguf *self)
{
  return self->alignment;
}

/**
 * bl_gguf_get_data_offset:
 * @self: a file
 *
 * Returns: the absolute file offset of the data section
 */
guint64
bl_gguf_get_data_offset (BlGguf *self)
{
  return self->data_offset;
}

/**
 * bl_gguf_get_contents:
 * @self: a file
 * @len: (out): its size in bytes
 *
 * Returns: (transfer none): the complete file
 */
const guint8 *
bl_gguf_get_contents (BlGguf *self,
                      gsize  *len)
{
  *len = self->len;
  return self->contents;
}

guint
bl_gguf_get_n_kv (BlGguf *self)
{
  return self->kvs->len;
}

const BlGgufKv *
bl_gguf_get_kv_at (BlGguf *self,
                   guint   index)
{
  g_return_val_if_fail (index < self->kvs->len, NULL);

  return &g_array_index (self->kvs, BlGgufKv, index);
}

/**
 * bl_gguf_find_kv:
 * @self: a file
 * @key: a metadata key
 *
 * Returns: (nullable): the pair, or %NULL when the file does not have @key
 */
const BlGgufKv *
bl_gguf_find_kv (BlGguf     *self,
                 const char *key)
{
  guint idx = GPOINTER_TO_UINT (g_hash_table_lookup (self->kv_by_key, key));

  return idx == 0 ? NULL : &g_array_index (self->kvs, BlGgufKv, idx - 1);
}

/* Reads the scalar of @type at @offset as a double and as 64-bit integers. */
static gboolean
scalar_at (BlGguf          *self,
           BlGgufValueType  type,
           guint64          offset,
           double          *as_double,
           gint64          *as_int,
           guint64         *as_uint)
{
  const guint8 *p = self->contents + offset;
  double d;
  gint64 i = 0;
  guint64 u = 0;

  switch (type)
    {
    case BL_GGUF_TYPE_UINT8: case BL_GGUF_TYPE_BOOL: u = p[0]; i = (gint64) u; d = (double) u; break;
    case BL_GGUF_TYPE_INT8: i = (gint8) p[0]; d = (double) i; break;
    case BL_GGUF_TYPE_UINT16: { guint16 v; memcpy (&v, p, 2); u = GUINT16_FROM_LE (v); i = (gint64) u; d = (double) u; } break;
    case BL_GGUF_TYPE_INT16: { guint16 v; memcpy (&v, p, 2); i = (gint16) GUINT16_FROM_LE (v); d = (double) i; } break;
    case BL_GGUF_TYPE_UINT32: { guint32 v; memcpy (&v, p, 4); u = GUINT32_FROM_LE (v); i = (gint64) u; d = (double) u; } break;
    case BL_GGUF_TYPE_INT32: { guint32 v; memcpy (&v, p, 4); i = (gint32) GUINT32_FROM_LE (v); d = (double) i; } break;
    case BL_GGUF_TYPE_UINT64: { guint64 v; memcpy (&v, p, 8); u = GUINT64_FROM_LE (v); i = (gint64) u; d = (double) u; } break;
    case BL_GGUF_TYPE_INT64: { guint64 v; memcpy (&v, p, 8); i = (gint64) GUINT64_FROM_LE (v); d = (double) i; } break;
    case BL_GGUF_TYPE_FLOAT32: { guint32 v; float f; memcpy (&v, p, 4); v = GUINT32_FROM_LE (v); memcpy (&f, &v, 4); d = f; } break;
    case BL_GGUF_TYPE_FLOAT64: { guint64 v; memcpy (&v, p, 8); v = GUINT64_FROM_LE (v); memcpy (&d, &v, 8); } break;
    default:
      return FALSE;
    }
  if (u == 0 && i > 0)
    u = (guint64) i;
  *as_double = d;
  *as_int = i;
  *as_uint = u;
  return TRUE;
}

static gboolean
is_unsigned (BlGgufValueType t)
{
  return t == BL_GGUF_TYPE_UINT8 || t == BL_GGUF_TYPE_UINT16 || t == BL_GGUF_TYPE_UINT32
         || t == BL_GGUF_TYPE_UINT64;
}

static gboolean
is_signed (BlGgufValueType t)
{
  return t == BL_GGUF_TYPE_INT8 || t == BL_GGUF_TYPE_INT16 || t == BL_GGUF_TYPE_INT32
         || t == BL_GGUF_TYPE_INT64;
}

/**
 * bl_gguf_get_uint:
 * @self: a file
 * @key: a metadata key
 * @out: (out): the value
 *
 * Returns: whether @key holds an unsigned integer (uint8–uint64)
 */
gboolean
bl_gguf_get_uint (BlGguf     *self,
                  const char *key,
                  guint64    *out)
{
  const BlGgufKv *kv = bl_gguf_find_kv (self, key);
  double d;
  gint64 i;

  return kv != NULL && is_unsigned (kv->type) && scalar_at (self, kv->type, kv->offset, &d, &i, out);
}

/**
 * bl_gguf_get_int:
 * @self: a file
 * @key: a metadata key
 * @out: (out): the value
 *
 * Returns: whether @key holds a signed integer (int8–int64)
 */
gboolean
bl_gguf_get_int (BlGguf     *self,
                 const char *key,
                 gint64     *out)
{
  const BlGgufKv *kv = bl_gguf_find_kv (self, key);
  double d;
  guint64 u;

  return kv != NULL && is_signed (kv->type) && scalar_at (self, kv->type, kv->offset, &d, out, &u);
}

/**
 * bl_gguf_get_float:
 * @self: a file
 * @key: a metadata key
 * @out: (out): the value
 *
 * Returns: whether @key holds a float32 or float64
 */
gboolean
bl_gguf_get_float (BlGguf     *self,
                   const char *key,
                   double     *out)
{
  const BlGgufKv *kv = bl_gguf_find_kv (self, key);
  gint64 i;
  guint64 u;

  return kv != NULL && (kv->type == BL_GGUF_TYPE_FLOAT32 || kv->type == BL_GGUF_TYPE_FLOAT64)
         && scalar_at (self, kv->type, kv->offset, out, &i, &u);
}

/**
 * bl_gguf_get_bool:
 * @self: a file
 * @key: a metadata key
 * @out: (out): the value
 *
 * Returns: whether @key holds a bool
 */
gboolean
bl_gguf_get_bool (BlGguf     *self,
                  const char *key,
                  gboolean   *out)
{
  const BlGgufKv *kv = bl_gguf_find_kv (self, key);

  if (kv == NULL || kv->type != BL_GGUF_TYPE_BOOL)
    return FALSE;
  *out = self->contents[kv->offset] != 0;
  return TRUE;
}

static char *
string_at (BlGguf  *self,
           guint64  offset)
{
  guint64 len;

  memcpy (&len, self->contents + offset, 8);
  len = GUINT64_FROM_LE (len);
  return g_strndup ((const char *) self->contents + offset + 8, len);
}

/**
 * bl_gguf_get_string:
 * @self: a file
 * @key: a metadata key
 *
 * Returns: (transfer full) (nullable): the string value, or %NULL when @key is absent or not
 *   a string
 */
char *
bl_gguf_get_string (BlGguf     *self,
                    const char *key)
{
  const BlGgufKv *kv = bl_gguf_find_kv (self, key);

  if (kv == NULL || kv->type != BL_GGUF_TYPE_STRING)
    return NULL;
  return string_at (self, kv->offset);
}

/* Offset of element @index of a string array: strings have different lengths, so walk. */
static guint64
string_element_offset (BlGguf         *self,
                       const BlGgufKv *kv,
                       guint64         index)
{
  guint64 off = kv->offset;

  for (guint64 i = 0; i < index; i++)
    {
      guint64 len;

      memcpy (&len, self->contents + off, 8);
      off += 8 + GUINT64_FROM_LE (len);
    }
  return off;
}

/**
 * bl_gguf_get_array_string:
 * @self: a file
 * @key: a metadata key
 * @index: an element index
 *
 * Reads element @index of a string array. Walking to it costs O(@index).
 *
 * Returns: (transfer full) (nullable): the element, or %NULL when @key is not a string array
 *   with that many elements
 */
char *
bl_gguf_get_array_string (BlGguf     *self,
                          const char *key,
                          guint64     index)
{
  const BlGgufKv *kv = bl_gguf_find_kv (self, key);

  if (kv == NULL || kv->type != BL_GGUF_TYPE_ARRAY || kv->array_type != BL_GGUF_TYPE_STRING
      || index >= kv->array_len)
    return NULL;
  return string_at (self, string_element_offset (self, kv, index));
}

/**
 * bl_gguf_get_string_array:
 * @self: a file
 * @key: a metadata key
 *
 * Reads a whole string array in one walk (a vocabulary of 150,000 tokens would cost
 * quadratic time through bl_gguf_get_array_string()). A string holding a NUL byte is cut
 * there.
 *
 * Returns: (transfer full) (nullable): the %NULL-terminated elements, or %NULL when @key is
 *   not a string array
 */
GStrv
bl_gguf_get_string_array (BlGguf     *self,
                          const char *key)
{
  const BlGgufKv *kv = bl_gguf_find_kv (self, key);
  GPtrArray *strings;
  guint64 off;

  if (kv == NULL || kv->type != BL_GGUF_TYPE_ARRAY || kv->array_type != BL_GGUF_TYPE_STRING)
    return NULL;
  strings = g_ptr_array_new ();
  off = kv->offset;
  for (guint64 i = 0; i < kv->array_len; i++)
    {
      guint64 len;

      /* parse_kvs() checked that every element lies inside the file */
      memcpy (&len, self->contents + off, 8);
      len = GUINT64_FROM_LE (len);
      g_ptr_array_add (strings, g_strndup ((const char *) self->contents + off + 8, len));
      off += 8 + len;
    }
  g_ptr_array_add (strings, NULL);
  return (GStrv) g_ptr_array_free (strings, FALSE);
}

/**
 * bl_gguf_get_array_number:
 * @self: a file
 * @key: a metadata key
 * @index: an element index
 * @out: (out): the element as a double
 *
 * Returns: whether @key is an array of numbers or bools with an element @index
 */
gboolean
bl_gguf_get_array_number (BlGguf     *self,
                          const char *key,
                          guint64     index,
                          double     *out)
{
  const BlGgufKv *kv = bl_gguf_find_kv (self, key);
  gint64 i;
  guint64 u;

  if (kv == NULL || kv->type != BL_GGUF_TYPE_ARRAY || kv->array_type >= BL_GGUF_TYPE_COUNT
      || value_size[kv->array_type] == 0 || index >= kv->array_len)
    return FALSE;
  return scalar_at (self, kv->array_type, kv->offset + index * value_size[kv->array_type], out,
                    &i, &u);
}

guint
bl_gguf_get_n_tensors (BlGguf *self)
{
  return self->tensors->len;
}

const BlGgufTensorInfo *
bl_gguf_get_tensor_at (BlGguf *self,
                       guint   index)
{
  g_return_val_if_fail (index < self->tensors->len, NULL);

  return &g_array_index (self->tensors, BlGgufTensorInfo, index);
}

/**
 * bl_gguf_find_tensor:
 * @self: a file
 * @name: a tensor name
 *
 * Returns: (nullable): the tensor, or %NULL
 */
const BlGgufTensorInfo *
bl_gguf_find_tensor (BlGguf     *self,
                     const char *name)
{
  guint idx = GPOINTER_TO_UINT (g_hash_table_lookup (self->tensor_by_name, name));

  return idx == 0 ? NULL : &g_array_index (self->tensors, BlGgufTensorInfo, idx - 1);
}

/**
 * bl_gguf_tensor_to_f32:
 * @self: a file
 * @tensor: one of its tensors
 * @dst: room for every element of @tensor, in ggml order (ne[0] fastest)
 * @error: return location for an error
 *
 * Decodes a tensor of type F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, MXFP4 or one of
 * the K-quants (Q2_K … Q6_K, Q8_K) as ggml's dequantize_row_* does.
 *
 * Returns: %FALSE with @error set for another type
 */
gboolean
bl_gguf_tensor_to_f32 (BlGguf                 *self,
                       const BlGgufTensorInfo *tensor,
                       float                  *dst,
                       GError                **error)
{
  gint64 rows = tensor->ne[1] * tensor->ne[2] * tensor->ne[3];
  guint64 row_bytes = bl_ggml_row_size ((BlGgmlType) tensor->type, tensor->ne[0]);

  for (gint64 r = 0; r < rows; r++)
    if (!bl_ggml_dequantize_row (tensor->type, tensor->data + (guint64) r * row_bytes,
                                 dst + r * tensor->ne[0], tensor->ne[0]))
      {
        g_set_error (error, BL_ERROR, BL_ERROR_UNSUPPORTED_FORMAT,
                     "%s: tensor “%s” has type %s; Bitlens decodes f32, f16, bf16, q4_0, q4_1, "
                     "q5_0, q5_1, q8_0, q2_K, q3_K, q4_K, q5_K, q6_K, q8_K and mxfp4",
                     self->filename, tensor->name,
                     bl_ggml_type_get_traits (tensor->type)->name);
        return FALSE;
      }
  return TRUE;
}
