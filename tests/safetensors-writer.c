/* safetensors-writer.c: writes small safetensors files and model directories for tests
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "safetensors-writer.h"

#include <string.h>

struct _StWriter
{
  GString *header_entries;
  GHashTable *metadata;
  GByteArray *data;
};

StWriter *
st_writer_new (void)
{
  StWriter *self = g_new0 (StWriter, 1);

  self->header_entries = g_string_new (NULL);
  self->metadata = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  self->data = g_byte_array_new ();
  return self;
}

void
st_writer_free (StWriter *self)
{
  g_string_free (self->header_entries, TRUE);
  g_hash_table_unref (self->metadata);
  g_byte_array_unref (self->data);
  g_free (self);
}

/* The test writer only stores values the target dtype holds exactly, so the reader's
 * widening can be checked for equality. */
uint16_t
st_f32_to_f16_exact (float value)
{
  uint32_t bits;
  uint32_t sign;
  int exponent;
  uint32_t mantissa;

  memcpy (&bits, &value, 4);
  sign = (bits >> 16) & 0x8000u;
  exponent = (int) ((bits >> 23) & 0xff) - 127;
  mantissa = bits & 0x7fffffu;

  if ((bits & 0x7fffffffu) == 0)
    return (uint16_t) sign;
  if (exponent == 128)
    return (uint16_t) (sign | 0x7c00u | (mantissa >> 13) | (mantissa != 0 ? 0x200u : 0));
  if (exponent >= -14)
    {
      g_assert_cmpint (exponent, <=, 15);
      g_assert_cmpuint (mantissa & 0x1fffu, ==, 0);
      return (uint16_t) (sign | ((uint32_t) (exponent + 15) << 10) | (mantissa >> 13));
    }
  g_assert_cmpint (exponent, >=, -24);
  mantissa |= 0x800000u;
  g_assert_cmpuint (mantissa & ((1u << (13 - 14 - exponent)) - 1), ==, 0);
  return (uint16_t) (sign | (mantissa >> (13 - 14 - exponent)));
}

uint16_t
st_f32_to_bf16_exact (float value)
{
  uint32_t bits;

  memcpy (&bits, &value, 4);
  g_assert_cmpuint (bits & 0xffffu, ==, 0);
  return (uint16_t) (bits >> 16);
}

void
st_writer_add (StWriter      *self,
               const char    *name,
               BlDType        dtype,
               int            n_dims,
               const int64_t *shape,
               const float   *values)
{
  int64_t n = 1;
  guint begin = self->data->len;

  for (int d = 0; d < n_dims; d++)
    n *= shape[d];
  for (int64_t i = 0; i < n; i++)
    {
      guint8 bytes[4];
      uint32_t bits;
      uint16_t h;

      switch (dtype)
        {
        case BL_DTYPE_F32:
          memcpy (&bits, &values[i], 4);
          bits = GUINT32_TO_LE (bits);
          memcpy (bytes, &bits, 4);
          g_byte_array_append (self->data, bytes, 4);
          break;
        case BL_DTYPE_F16:
        case BL_DTYPE_BF16:
          h = dtype == BL_DTYPE_F16 ? st_f32_to_f16_exact (values[i])
                                    : st_f32_to_bf16_exact (values[i]);
          h = GUINT16_TO_LE (h);
          memcpy (bytes, &h, 2);
          g_byte_array_append (self->data, bytes, 2);
          break;
        default:
          g_assert_not_reached ();
        }
    }

  g_string_append_printf (self->header_entries, ", \"%s\": {\"dtype\": \"%s\", \"shape\": [",
                          name, bl_dtype_to_string (dtype));
  for (int d = 0; d < n_dims; d++)
    g_string_append_printf (self->header_entries, "%s%" G_GINT64_FORMAT, d ? ", " : "", shape[d]);
  g_string_append_printf (self->header_entries, "], \"data_offsets\": [%u, %u]}",
                          begin, self->data->len);
}

void
st_writer_add_metadata (StWriter   *self,
                        const char *key,
                        const char *value)
{
  g_hash_table_insert (self->metadata, g_strdup (key), g_strdup (value));
}

GBytes *
st_writer_to_bytes (StWriter *self)
{
  g_autoptr(GString) header = g_string_new ("{\"__metadata__\": {\"format\": \"pt\"");
  g_autoptr(GByteArray) file = g_byte_array_new ();
  GHashTableIter iter;
  gpointer key, value;
  guint64 len;

  g_hash_table_iter_init (&iter, self->metadata);
  while (g_hash_table_iter_next (&iter, &key, &value))
    g_string_append_printf (header, ", \"%s\": \"%s\"", (char *) key, (char *) value);
  g_string_append_c (header, '}');
  g_string_append (header, self->header_entries->str);
  g_string_append_c (header, '}');
  /* The reference writer pads the header with spaces to a multiple of 8 bytes. */
  while (header->len % 8 != 0)
    g_string_append_c (header, ' ');

  len = GUINT64_TO_LE ((guint64) header->len);
  g_byte_array_append (file, (const guint8 *) &len, 8);
  g_byte_array_append (file, (const guint8 *) header->str, header->len);
  g_byte_array_append (file, self->data->data, self->data->len);
  return g_byte_array_free_to_bytes (g_steal_pointer (&file));
}

void
st_writer_write (StWriter   *self,
                 const char *path)
{
  g_autoptr(GBytes) bytes = st_writer_to_bytes (self);
  g_autoptr(GError) error = NULL;
  gsize len;
  const char *data = g_bytes_get_data (bytes, &len);

  g_file_set_contents (path, data, (gssize) len, &error);
  g_assert_no_error (error);
}

GBytes *
st_raw_file (const char *header,
             gsize       data_len)
{
  GByteArray *file = g_byte_array_new ();
  guint64 len = GUINT64_TO_LE ((guint64) strlen (header));
  guint start;

  g_byte_array_append (file, (const guint8 *) &len, 8);
  g_byte_array_append (file, (const guint8 *) header, (guint) strlen (header));
  start = file->len;
  g_byte_array_set_size (file, start + (guint) data_len);
  memset (file->data + start, 0x5a, data_len);
  return g_byte_array_free_to_bytes (file);
}
