/* bl-gguf-writer.c: a GGUF v3 writer (ggml docs/gguf.md, "File Structure")
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * Metadata pairs are serialised as they are added, in order; tensors are kept as GBytes and
 * laid out in the order they were added, each at the next multiple of the alignment,
 * with zero padding between them and before the data section.
 */
#include "bl-gguf-writer.h"

#include <errno.h>
#include <string.h>

#include <glib/gstdio.h>

#include "bl-error.h"

typedef struct
{
  char *name;
  BlGgmlType type;
  guint32 n_dims;
  gint64 ne[BL_GGUF_MAX_DIMS];
  GBytes *data;
} PendingTensor;

struct _BlGgufWriter
{
  guint32 alignment;
  guint64 n_kv;
  GByteArray *kv;            /* the serialised pairs */
  GArray *tensors;           /* PendingTensor */
  GHashTable *keys;          /* keys already written */
};

static void
pending_tensor_clear (gpointer data)
{
  PendingTensor *t = data;

  g_free (t->name);
  g_bytes_unref (t->data);
}

/**
 * bl_gguf_writer_new:
 * @alignment: the data alignment, a multiple of 8 (0: the default 32)
 *
 * Returns: (transfer full): an empty writer; it writes `general.alignment` first
 */
BlGgufWriter *
bl_gguf_writer_new (guint32 alignment)
{
  BlGgufWriter *self = g_new0 (BlGgufWriter, 1);

  if (alignment == 0)
    alignment = BL_GGUF_DEFAULT_ALIGNMENT;
  g_return_val_if_fail (alignment % 8 == 0, NULL);

  self->alignment = alignment;
  self->kv = g_byte_array_new ();
  self->tensors = g_array_new (FALSE, TRUE, sizeof (PendingTensor));
  g_array_set_clear_func (self->tensors, pending_tensor_clear);
  self->keys = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  bl_gguf_writer_add_uint32 (self, "general.alignment", alignment);
  return self;
}

void
bl_gguf_writer_free (BlGgufWriter *self)
{
  if (self == NULL)
    return;
  g_byte_array_unref (self->kv);
  g_array_unref (self->tensors);
  g_hash_table_unref (self->keys);
  g_free (self);
}

static void
put (GByteArray *b,
     const void *p,
     gsize       n)
{
  g_byte_array_append (b, p, (guint) n);
}

static void
put_u32 (GByteArray *b,
         guint32     v)
{
  v = GUINT32_TO_LE (v);
  put (b, &v, 4);
}

static void
put_u64 (GByteArray *b,
         guint64     v)
{
  v = GUINT64_TO_LE (v);
  put (b, &v, 8);
}

static void
put_string (GByteArray *b,
            const char *s)
{
  gsize len = strlen (s);

  put_u64 (b, len);
  put (b, s, len);
}

static void
begin_kv (BlGgufWriter    *self,
          const char      *key,
          BlGgufValueType  type)
{
  /* a duplicate key makes the file invalid (gguf.cpp refuses it): a programming error */
  g_return_if_fail (!g_hash_table_contains (self->keys, key));

  g_hash_table_add (self->keys, g_strdup (key));
  put_string (self->kv, key);
  put_u32 (self->kv, type);
  self->n_kv++;
}

void
bl_gguf_writer_add_uint32 (BlGgufWriter *self,
                           const char   *key,
                           guint32       value)
{
  begin_kv (self, key, BL_GGUF_TYPE_UINT32);
  put_u32 (self->kv, value);
}

void
bl_gguf_writer_add_int32 (BlGgufWriter *self,
                          const char   *key,
                          gint32        value)
{
  begin_kv (self, key, BL_GGUF_TYPE_INT32);
  put_u32 (self->kv, (guint32) value);
}

void
bl_gguf_writer_add_uint64 (BlGgufWriter *self,
                           const char   *key,
                           guint64       value)
{
  begin_kv (self, key, BL_GGUF_TYPE_UINT64);
  put_u64 (self->kv, value);
}

void
bl_gguf_writer_add_float32 (BlGgufWriter *self,
                            const char   *key,
                            float         value)
{
  guint32 bits;

  memcpy (&bits, &value, 4);
  begin_kv (self, key, BL_GGUF_TYPE_FLOAT32);
  put_u32 (self->kv, bits);
}

void
bl_gguf_writer_add_bool (BlGgufWriter *self,
                         const char   *key,
                         gboolean      value)
{
  guint8 b = value ? 1 : 0;

  begin_kv (self, key, BL_GGUF_TYPE_BOOL);
  put (self->kv, &b, 1);
}

void
bl_gguf_writer_add_string (BlGgufWriter *self,
                           const char   *key,
                           const char   *value)
{
  begin_kv (self, key, BL_GGUF_TYPE_STRING);
  put_string (self->kv, value);
}

void
bl_gguf_writer_add_string_array (BlGgufWriter       *self,
                                 const char         *key,
                                 const char * const *values,
                                 guint64             n_values)
{
  begin_kv (self, key, BL_GGUF_TYPE_ARRAY);
  put_u32 (self->kv, BL_GGUF_TYPE_STRING);
  put_u64 (self->kv, n_values);
  for (guint64 i = 0; i < n_values; i++)
    put_string (self->kv, values[i]);
}

void
bl_gguf_writer_add_float32_array (BlGgufWriter *self,
                                  const char   *key,
                                  const float  *values,
                                  guint64       n_values)
{
  begin_kv (self, key, BL_GGUF_TYPE_ARRAY);
  put_u32 (self->kv, BL_GGUF_TYPE_FLOAT32);
  put_u64 (self->kv, n_values);
  for (guint64 i = 0; i < n_values; i++)
    {
      guint32 bits;

      memcpy (&bits, &values[i], 4);
      put_u32 (self->kv, bits);
    }
}

void
bl_gguf_writer_add_int32_array (BlGgufWriter *self,
                                const char   *key,
                                const gint32 *values,
                                guint64       n_values)
{
  begin_kv (self, key, BL_GGUF_TYPE_ARRAY);
  put_u32 (self->kv, BL_GGUF_TYPE_INT32);
  put_u64 (self->kv, n_values);
  for (guint64 i = 0; i < n_values; i++)
    put_u32 (self->kv, (guint32) values[i]);
}

/**
 * bl_gguf_writer_add_tensor:
 * @self: a writer
 * @name: the tensor name (1–63 bytes, unique)
 * @type: its ggml type
 * @n_dims: dimensions (1–4)
 * @ne: (array length=n_dims): sizes in ggml order, the contiguous dimension first
 * @data: the encoded tensor, exactly bl_ggml_row_size (@type, @ne[0]) × the other sizes
 * @error: return location for an error
 *
 * Queues a tensor.
 *
 * Returns: %FALSE with a %BL_ERROR_INVALID_ARGUMENT error when the name, shape or size is
 *   not valid for GGUF
 */
gboolean
bl_gguf_writer_add_tensor (BlGgufWriter  *self,
                           const char    *name,
                           BlGgmlType     type,
                           guint32        n_dims,
                           const gint64  *ne,
                           GBytes        *data,
                           GError       **error)
{
  const BlGgmlTypeTraits *tr = bl_ggml_type_get_traits (type);
  PendingTensor t = { 0 };
  guint64 rows = 1, expected;

  g_return_val_if_fail (tr != NULL, FALSE);

  if (strlen (name) == 0 || strlen (name) > BL_GGUF_MAX_NAME || n_dims == 0
      || n_dims > BL_GGUF_MAX_DIMS)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT,
                   "GGUF tensor “%s”: names are 1–%d bytes and tensors have 1–%d dimensions",
                   name, BL_GGUF_MAX_NAME, BL_GGUF_MAX_DIMS);
      return FALSE;
    }
  for (guint i = 0; i < self->tensors->len; i++)
    if (g_str_equal (g_array_index (self->tensors, PendingTensor, i).name, name))
      {
        g_set_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT,
                     "GGUF tensor “%s” added twice", name);
        return FALSE;
      }
  if (ne[0] <= 0 || ne[0] % tr->block_size != 0)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT,
                   "GGUF tensor “%s”: rows of %" G_GINT64_FORMAT " elements are not a multiple "
                   "of the %s block size %d", name, ne[0], tr->name, tr->block_size);
      return FALSE;
    }
  for (guint32 d = 1; d < n_dims; d++)
    rows *= (guint64) ne[d];
  expected = rows * bl_ggml_row_size (type, ne[0]);
  if (g_bytes_get_size (data) != expected)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT,
                   "GGUF tensor “%s”: %" G_GSIZE_FORMAT " bytes of data, %" G_GUINT64_FORMAT
                   " expected for %s", name, g_bytes_get_size (data), expected, tr->name);
      return FALSE;
    }
  t.name = g_strdup (name);
  t.type = type;
  t.n_dims = n_dims;
  for (guint32 d = 0; d < BL_GGUF_MAX_DIMS; d++)
    t.ne[d] = d < n_dims ? ne[d] : 1;
  t.data = g_bytes_ref (data);
  g_array_append_val (self->tensors, t);
  return TRUE;
}

guint
bl_gguf_writer_get_n_tensors (BlGgufWriter *self)
{
  return self->tensors->len;
}

static guint64
align_up (guint64 v,
          guint64 a)
{
  return v + (a - v % a) % a;
}

/* Header, metadata and tensor infos, padded to the alignment; the data offsets follow
 * from the tensor sizes alone. */
static GByteArray *
build_head (BlGgufWriter *self,
            guint64      *out_data_size)
{
  GByteArray *b = g_byte_array_new ();
  guint64 offset = 0;
  static const guint8 zeros[64] = { 0 };

  put_u32 (b, BL_GGUF_MAGIC);
  put_u32 (b, BL_GGUF_VERSION);
  put_u64 (b, self->tensors->len);
  put_u64 (b, self->n_kv);
  put (b, self->kv->data, self->kv->len);
  for (guint i = 0; i < self->tensors->len; i++)
    {
      const PendingTensor *t = &g_array_index (self->tensors, PendingTensor, i);

      put_string (b, t->name);
      put_u32 (b, t->n_dims);
      for (guint32 d = 0; d < t->n_dims; d++)
        put_u64 (b, (guint64) t->ne[d]);
      put_u32 (b, t->type);
      put_u64 (b, offset);
      offset = align_up (offset + g_bytes_get_size (t->data), self->alignment);
    }
  while (b->len % self->alignment != 0)
    put (b, zeros, MIN (sizeof zeros, self->alignment - b->len % self->alignment));
  *out_data_size = offset;
  return b;
}

/**
 * bl_gguf_writer_to_bytes:
 * @self: a writer
 *
 * Returns: (transfer full): the whole file in memory
 */
GBytes *
bl_gguf_writer_to_bytes (BlGgufWriter *self)
{
  guint64 data_size;
  GByteArray *b = build_head (self, &data_size);
  static const guint8 zeros[64] = { 0 };

  for (guint i = 0; i < self->tensors->len; i++)
    {
      const PendingTensor *t = &g_array_index (self->tensors, PendingTensor, i);
      gsize n;
      const guint8 *p = g_bytes_get_data (t->data, &n);

      put (b, p, n);
      while (b->len % self->alignment != 0)
        put (b, zeros, MIN (sizeof zeros, self->alignment - b->len % self->alignment));
    }
  return g_byte_array_free_to_bytes (b);
}

/**
 * bl_gguf_writer_write:
 * @self: a writer
 * @path: the output file
 * @cancellable: (nullable): a cancellable
 * @error: return location for an error
 *
 * Streams the file to @path. The file is written as @path.partial and renamed into place
 * when complete, so an interrupted export never leaves a truncated model under @path.
 *
 * Returns: whether the file was written
 */
gboolean
bl_gguf_writer_write (BlGgufWriter  *self,
                      const char    *path,
                      GCancellable  *cancellable,
                      GError       **error)
{
  g_autofree char *partial = g_strconcat (path, ".partial", NULL);
  g_autoptr(GFile) file = g_file_new_for_path (partial);
  g_autoptr(GFileOutputStream) out = NULL;
  g_autoptr(GByteArray) head = NULL;
  guint64 data_size, written = 0;
  static const guint8 zeros[64] = { 0 };

  out = g_file_replace (file, NULL, FALSE, G_FILE_CREATE_NONE, cancellable, error);
  if (out == NULL)
    return FALSE;
  head = build_head (self, &data_size);
  if (!g_output_stream_write_all (G_OUTPUT_STREAM (out), head->data, head->len, NULL,
                                  cancellable, error))
    goto fail;
  for (guint i = 0; i < self->tensors->len; i++)
    {
      const PendingTensor *t = &g_array_index (self->tensors, PendingTensor, i);
      gsize n;
      const guint8 *p = g_bytes_get_data (t->data, &n);

      if (!g_output_stream_write_all (G_OUTPUT_STREAM (out), p, n, NULL, cancellable, error))
        goto fail;
      written += n;
      while (written % self->alignment != 0)
        {
          gsize pad = MIN (sizeof zeros, self->alignment - written % self->alignment);

          if (!g_output_stream_write_all (G_OUTPUT_STREAM (out), zeros, pad, NULL, cancellable,
                                          error))
            goto fail;
          written += pad;
        }
    }
  g_assert (written == data_size);
  if (!g_output_stream_close (G_OUTPUT_STREAM (out), cancellable, error))
    goto fail;
  if (g_rename (partial, path) != 0)
    {
      int saved = errno;

      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved), "%s: cannot rename %s: %s",
                   path, partial, g_strerror (saved));
      g_unlink (partial);
      return FALSE;
    }
  return TRUE;

fail:
  g_output_stream_close (G_OUTPUT_STREAM (out), NULL, NULL);
  g_unlink (partial);
  return FALSE;
}
