/* bl-export-packed.c: a model with its quantized layers as packed codes and scales
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * The output directory holds:
 *
 *   model.safetensors   every tensor the model stores, as stored, except the quantized
 *                       linear weights; for each of those, its packed sections (the layout of
 *                       core/bl-format-blocks.h, exactly the bytes bl_format_quantize() puts
 *                       after its header) as U8 tensors named LAYER.bitlens_codes,
 *                       .bitlens_scales, .bitlens_zeros, .bitlens_selectors and
 *                       .bitlens_extra (empty sections are left out);
 *   bitlens-quant.json  the manifest: per quantized layer its spec, shape, the layout fields
 *                       of its BlPackedHeader, the NVFP4 tensor scale, its activation format
 *                       and the section tensor names;
 *   config.json and the tokenizer files, copied.
 *
 * A reader rebuilds each layer's BlPackedHeader with bl_format_packed_header_init() from the
 * manifest's spec and shape, checks it against the manifest, places the sections at the
 * header's offsets and decodes with bl_format_dequantize() (bl_export_packed_read_layer()).
 * safetensors layout: huggingface/safetensors README "Format" (an 8-byte little-endian header
 * length, the JSON header padded with spaces to a multiple of 8, then the data).
 */
#include "bl-export.h"

#include <errno.h>
#include <string.h>

#include "bl-error.h"
#include "bl-export-private.h"
#include "bl-format-blocks.h"
#include "bl-json-private.h"

#define MANIFEST_NAME "bitlens-quant.json"
#define MANIFEST_FORMAT "bitlens-packed"
#define MANIFEST_VERSION 1

static const char *const section_names[] = { "codes", "scales", "zeros", "selectors", "extra" };

static const char *const scale_kind_names[] = { "none", "f32", "f16", "bf16", "e8m0", "ue4m3" };

typedef struct
{
  char *name;
  const char *dtype;
  gint64 shape[2];
  int n_dims;
  const guint8 *data;       /* borrowed: the model's mapping or @owned */
  gsize n_bytes;
  guint8 *owned;
} OutTensor;

static void
out_tensor_clear (gpointer data)
{
  OutTensor *t = data;

  g_free (t->name);
  g_free (t->owned);
}

static void
section_range (const BlPackedHeader *h,
               guint                 s,
               guint64              *offset,
               guint64              *bytes)
{
  const guint64 off[] = { h->codes_offset, h->scales_offset, h->zeros_offset, h->selectors_offset,
                          h->extra_offset };
  const guint64 len[] = { h->codes_bytes, h->scales_bytes, h->zeros_bytes, h->selectors_bytes,
                          h->extra_bytes };

  *offset = off[s];
  *bytes = len[s];
}

static void
add_header_fields (JsonBuilder          *b,
                   const BlPackedHeader *h)
{
#define INT_MEMBER(name, value) \
  G_STMT_START { json_builder_set_member_name (b, name); json_builder_add_int_value (b, (gint64) (value)); } G_STMT_END
  INT_MEMBER ("family", h->family);
  INT_MEMBER ("elem_bits", h->elem_bits);
  INT_MEMBER ("ebits", h->ebits);
  INT_MEMBER ("mbits", h->mbits);
  json_builder_set_member_name (b, "scale_kind");
  json_builder_add_string_value (b, h->scale_kind < G_N_ELEMENTS (scale_kind_names)
                                    ? scale_kind_names[h->scale_kind] : "unknown");
  INT_MEMBER ("scale_bits", h->scale_bits);
  INT_MEMBER ("scales_per_group", h->scales_per_group);
  INT_MEMBER ("zero_bits", h->zero_bits);
  INT_MEMBER ("selector_bits", h->selector_bits);
  INT_MEMBER ("group_size", h->group_size);
  INT_MEMBER ("groups_per_row", h->groups_per_row);
  INT_MEMBER ("n_groups", h->n_groups);
#undef INT_MEMBER
  json_builder_set_member_name (b, "tensor_scale");
  json_builder_add_double_value (b, h->tensor_scale);
}

static gboolean
write_safetensors (const char *path,
                   GArray     *tensors,
                   GError    **error)
{
  g_autoptr(JsonBuilder) b = json_builder_new ();
  g_autoptr(JsonGenerator) gen = json_generator_new ();
  g_autoptr(JsonNode) root = NULL;
  g_autofree char *header = NULL;
  g_autoptr(GFile) file = NULL;
  g_autoptr(GFileOutputStream) out = NULL;
  g_autofree char *partial = g_strconcat (path, ".partial", NULL);
  gsize header_len, padded;
  guint64 offset = 0, len_le;

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "__metadata__");
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "format");
  json_builder_add_string_value (b, MANIFEST_FORMAT);
  json_builder_set_member_name (b, "manifest");
  json_builder_add_string_value (b, MANIFEST_NAME);
  json_builder_end_object (b);
  for (guint i = 0; i < tensors->len; i++)
    {
      const OutTensor *t = &g_array_index (tensors, OutTensor, i);

      json_builder_set_member_name (b, t->name);
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "dtype");
      json_builder_add_string_value (b, t->dtype);
      json_builder_set_member_name (b, "shape");
      json_builder_begin_array (b);
      for (int d = 0; d < t->n_dims; d++)
        json_builder_add_int_value (b, t->shape[d]);
      json_builder_end_array (b);
      json_builder_set_member_name (b, "data_offsets");
      json_builder_begin_array (b);
      json_builder_add_int_value (b, (gint64) offset);
      json_builder_add_int_value (b, (gint64) (offset + t->n_bytes));
      json_builder_end_array (b);
      json_builder_end_object (b);
      offset += t->n_bytes;
    }
  json_builder_end_object (b);
  root = json_builder_get_root (b);
  json_generator_set_root (gen, root);
  header = json_generator_to_data (gen, &header_len);
  padded = (header_len + 7) / 8 * 8;
  header = g_realloc (header, padded + 1);
  memset (header + header_len, ' ', padded - header_len);
  len_le = GUINT64_TO_LE ((guint64) padded);

  file = g_file_new_for_path (partial);
  out = g_file_replace (file, NULL, FALSE, G_FILE_CREATE_NONE, NULL, error);
  if (out == NULL)
    return FALSE;
  if (!g_output_stream_write_all (G_OUTPUT_STREAM (out), &len_le, 8, NULL, NULL, error)
      || !g_output_stream_write_all (G_OUTPUT_STREAM (out), header, padded, NULL, NULL, error))
    goto fail;
  for (guint i = 0; i < tensors->len; i++)
    {
      const OutTensor *t = &g_array_index (tensors, OutTensor, i);

      if (!g_output_stream_write_all (G_OUTPUT_STREAM (out), t->data, t->n_bytes, NULL, NULL, error))
        goto fail;
    }
  if (!g_output_stream_close (G_OUTPUT_STREAM (out), NULL, error))
    goto fail;
  {
    g_autoptr(GFile) dest = g_file_new_for_path (path);

    return g_file_move (file, dest, G_FILE_COPY_OVERWRITE, NULL, NULL, NULL, error);
  }

fail:
  g_output_stream_close (G_OUTPUT_STREAM (out), NULL, NULL);
  g_file_delete (file, NULL, NULL);
  return FALSE;
}

static gboolean
copy_side_files (BlModel     *model,
                 const char  *dir,
                 GError     **error)
{
  static const char *const names[] = { "config.json", "generation_config.json", "tokenizer.json",
                                       "tokenizer_config.json", "special_tokens_map.json" };

  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    {
      g_autofree char *src_path = g_build_filename (bl_model_get_path (model), names[i], NULL);
      g_autofree char *dst_path = g_build_filename (dir, names[i], NULL);
      g_autoptr(GFile) src = g_file_new_for_path (src_path);
      g_autoptr(GFile) dst = g_file_new_for_path (dst_path);

      if (!g_file_query_exists (src, NULL))
        continue;
      if (!g_file_copy (src, dst, G_FILE_COPY_OVERWRITE, NULL, NULL, NULL, error))
        return FALSE;
    }
  return TRUE;
}

/**
 * bl_export_packed:
 * @model: the model
 * @layers: (array length=n_layers): the assignment; every quantized layer must use RTN (a
 *   %NULL algorithm or "rtn"), since the codes are those of the stored weights
 * @n_layers: its length
 * @dir: the output directory (created when missing)
 * @cancellable: (nullable): a cancellable
 * @error: return location for an error
 *
 * Writes the packed checkpoint described at the top of this file.
 *
 * Returns: whether it was written
 */
gboolean
bl_export_packed (BlModel             *model,
                  const BlExportLayer *layers,
                  guint                n_layers,
                  const char          *dir,
                  GCancellable        *cancellable,
                  GError             **error)
{
  g_autoptr(GArray) tensors = g_array_new (FALSE, TRUE, sizeof (OutTensor));
  g_autoptr(JsonBuilder) mb = json_builder_new ();
  g_autoptr(JsonGenerator) gen = json_generator_new ();
  g_autoptr(JsonNode) manifest = NULL;
  g_autoptr(GHashTable) quantized = g_hash_table_new (g_str_hash, g_str_equal);
  g_autofree char *st_path = NULL, *manifest_path = NULL, *manifest_text = NULL;

  g_return_val_if_fail (BL_IS_MODEL (model) && dir != NULL, FALSE);

  g_array_set_clear_func (tensors, out_tensor_clear);
  for (guint i = 0; i < n_layers; i++)
    {
      if (layers[i].weight == NULL)
        continue;
      if (layers[i].algorithm != NULL && !g_str_equal (layers[i].algorithm, "rtn"))
        {
          g_set_error (error, BL_ERROR, BL_ERROR_UNSUPPORTED_FORMAT,
                       "packed export: layer %s uses the %s algorithm; the packed checkpoint holds "
                       "the codes of the stored weights (RTN)", layers[i].layer, layers[i].algorithm);
          return FALSE;
        }
      if (bl_model_get_tensor (model, layers[i].layer) == NULL)
        {
          g_set_error (error, BL_ERROR, BL_ERROR_NOT_FOUND, "packed export: the model has no layer %s",
                       layers[i].layer);
          return FALSE;
        }
      g_hash_table_insert (quantized, (gpointer) layers[i].layer, (gpointer) &layers[i]);
    }

  json_builder_begin_object (mb);
  json_builder_set_member_name (mb, "format");
  json_builder_add_string_value (mb, MANIFEST_FORMAT);
  json_builder_set_member_name (mb, "version");
  json_builder_add_int_value (mb, MANIFEST_VERSION);
  json_builder_set_member_name (mb, "packed_layout_version");
  json_builder_add_int_value (mb, BL_PACKED_VERSION);
  json_builder_set_member_name (mb, "model_fingerprint");
  json_builder_add_string_value (mb, bl_model_get_fingerprint (model));
  json_builder_set_member_name (mb, "layers");
  json_builder_begin_object (mb);

  /* the stored tensors in model order, then a tied lm_head's own sections */
  for (guint i = 0; i <= bl_model_get_n_tensors (model); i++)
    {
      const BlTensor *t = i < bl_model_get_n_tensors (model) ? bl_model_get_tensor_at (model, i) : NULL;
      const char *name = t != NULL ? t->name : "lm_head.weight";
      const BlExportLayer *l = g_hash_table_lookup (quantized, name);
      gint64 rows, cols;
      gsize size;
      g_autofree guint8 *packed = NULL;
      g_autofree float *w = NULL;
      g_autofree char *spec = NULL;
      BlPackedHeader h;

      if (g_cancellable_set_error_if_cancelled (cancellable, error))
        return FALSE;
      if (t == NULL)
        {
          /* only a tied, quantized lm_head has no stored tensor of its own */
          if (l == NULL || bl_model_get_tensor_at (model, 0) == NULL
              || !bl_model_get_config (model)->tie_word_embeddings)
            break;
          t = bl_model_get_tensor (model, "lm_head.weight");
        }
      if (l == NULL)
        {
          OutTensor o = { g_strdup (t->name), bl_dtype_to_string (t->dtype), { 0, 0 }, t->n_dims,
                          t->data, t->n_bytes, NULL };

          for (int d = 0; d < t->n_dims && d < 2; d++)
            o.shape[d] = t->shape[d];
          if (t->n_dims > 2)
            {
              g_set_error (error, BL_ERROR, BL_ERROR_UNSUPPORTED_FORMAT,
                           "packed export: tensor %s has %d dimensions", t->name, t->n_dims);
              return FALSE;
            }
          g_array_append_val (tensors, o);
          continue;
        }
      rows = t->shape[0];
      cols = t->shape[1];
      w = g_new (float, rows * cols);
      bl_tensor_to_f32 (t, w);
      size = bl_format_packed_size (l->weight, rows, cols);
      packed = g_malloc (size);
      if (!bl_format_quantize (l->weight, w, rows, cols, packed, size, error))
        return FALSE;
      memcpy (&h, packed, sizeof h);
      spec = bl_format_spec_to_string (l->weight);

      json_builder_set_member_name (mb, name);
      json_builder_begin_object (mb);
      json_builder_set_member_name (mb, "spec");
      json_builder_add_string_value (mb, spec);
      json_builder_set_member_name (mb, "shape");
      json_builder_begin_array (mb);
      json_builder_add_int_value (mb, rows);
      json_builder_add_int_value (mb, cols);
      json_builder_end_array (mb);
      json_builder_set_member_name (mb, "activation");
      if (l->activation != NULL)
        {
          g_autofree char *a = bl_format_spec_to_string (l->activation);

          json_builder_add_string_value (mb, a);
        }
      else
        json_builder_add_null_value (mb);
      add_header_fields (mb, &h);
      json_builder_set_member_name (mb, "sections");
      json_builder_begin_object (mb);
      for (guint s = 0; s < G_N_ELEMENTS (section_names); s++)
        {
          guint64 off, bytes;
          OutTensor o = { 0 };

          section_range (&h, s, &off, &bytes);
          if (bytes == 0)
            continue;
          o.name = g_strdup_printf ("%s.bitlens_%s", name, section_names[s]);
          o.dtype = "U8";
          o.n_dims = 1;
          o.shape[0] = (gint64) bytes;
          o.owned = g_memdup2 (packed + off, bytes);
          o.data = o.owned;
          o.n_bytes = bytes;
          json_builder_set_member_name (mb, section_names[s]);
          json_builder_add_string_value (mb, o.name);
          g_array_append_val (tensors, o);
        }
      json_builder_end_object (mb);
      json_builder_end_object (mb);
    }
  json_builder_end_object (mb);
  json_builder_end_object (mb);

  if (g_mkdir_with_parents (dir, 0755) != 0)
    {
      int saved = errno;

      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved), "%s: %s", dir, g_strerror (saved));
      return FALSE;
    }
  st_path = g_build_filename (dir, "model.safetensors", NULL);
  if (!write_safetensors (st_path, tensors, error))
    return FALSE;
  manifest = json_builder_get_root (mb);
  json_generator_set_root (gen, manifest);
  json_generator_set_pretty (gen, TRUE);
  json_generator_set_indent (gen, 2);
  manifest_text = json_generator_to_data (gen, NULL);
  manifest_path = g_build_filename (dir, MANIFEST_NAME, NULL);
  if (!g_file_set_contents (manifest_path, manifest_text, -1, error))
    return FALSE;
  return copy_side_files (model, dir, error);
}

/* The data of one tensor of a safetensors file, any dtype. */
static gboolean
find_st_tensor (JsonObject    *header,
                const guint8  *data,
                gsize          data_len,
                const char    *file,
                const char    *name,
                const guint8 **out,
                gsize         *out_len,
                GError       **error)
{
  JsonObject *entry = bl_export_object_member (header, name);
  JsonArray *offs;
  gint64 b, e;

  if (entry == NULL || (offs = bl_export_array_member (entry, "data_offsets")) == NULL
      || json_array_get_length (offs) != 2)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_CORRUPT_FILE, "%s: no tensor “%s”", file, name);
      return FALSE;
    }
  b = json_array_get_int_element (offs, 0);
  e = json_array_get_int_element (offs, 1);
  if (b < 0 || e < b || (guint64) e > data_len)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_CORRUPT_FILE,
                   "%s: tensor “%s” has data_offsets [%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT
                   "] outside the %" G_GSIZE_FORMAT " data bytes", file, name, b, e, data_len);
      return FALSE;
    }
  *out = data + b;
  *out_len = (gsize) (e - b);
  return TRUE;
}

/**
 * bl_export_packed_read_layer:
 * @dir: a directory bl_export_packed() wrote
 * @layer: a quantized layer's name
 * @dst: (array length=n_elements): the decoded weight, row-major
 * @n_elements: rows × cols of the layer
 * @error: return location for an error
 *
 * Reads one quantized layer back: the manifest's spec and shape give the BlPackedHeader
 * (bl_format_packed_header_init()), whose layout fields must equal the manifest's; the
 * section tensors go to the header's offsets, and bl_format_dequantize() decodes.
 *
 * Returns: whether the layer was read
 */
gboolean
bl_export_packed_read_layer (const char  *dir,
                             const char  *layer,
                             float       *dst,
                             gint64       n_elements,
                             GError     **error)
{
  g_autofree char *manifest_path = g_build_filename (dir, MANIFEST_NAME, NULL);
  g_autofree char *st_path = g_build_filename (dir, "model.safetensors", NULL);
  g_autofree char *manifest_text = NULL;
  gsize manifest_len, st_len;
  g_autoptr(JsonNode) manifest = NULL, st_header = NULL;
  g_autoptr(GMappedFile) mapped = NULL;
  const guint8 *st;
  guint64 header_len;
  JsonObject *layers, *entry, *sections;
  JsonArray *shape;
  BlFormatSpec spec;
  BlPackedHeader h;
  g_autofree guint8 *packed = NULL;
  gint64 rows, cols;

  if (!g_file_get_contents (manifest_path, &manifest_text, &manifest_len, error))
    return FALSE;
  manifest = bl_json_parse_object (manifest_text, manifest_len, manifest_path, error);
  if (manifest == NULL)
    return FALSE;
  if (g_strcmp0 (json_object_get_string_member_with_default (json_node_get_object (manifest), "format", ""),
                 MANIFEST_FORMAT) != 0
      || json_object_get_int_member_with_default (json_node_get_object (manifest), "version", 0)
         != MANIFEST_VERSION)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_UNSUPPORTED_FORMAT, "%s: not a %s manifest of version %d",
                   manifest_path, MANIFEST_FORMAT, MANIFEST_VERSION);
      return FALSE;
    }
  layers = bl_export_object_member (json_node_get_object (manifest), "layers");
  entry = bl_export_object_member (layers, layer);
  if (entry == NULL)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_NOT_FOUND, "%s: no quantized layer %s", manifest_path, layer);
      return FALSE;
    }
  shape = bl_export_array_member (entry, "shape");
  if (shape == NULL || json_array_get_length (shape) != 2
      || !bl_format_spec_parse (json_object_get_string_member_with_default (entry, "spec", ""), &spec, error))
    {
      if (error != NULL && *error == NULL)
        g_set_error (error, BL_ERROR, BL_ERROR_CORRUPT_FILE, "%s: layer %s has no valid shape",
                     manifest_path, layer);
      return FALSE;
    }
  rows = json_array_get_int_element (shape, 0);
  cols = json_array_get_int_element (shape, 1);
  if (rows <= 0 || cols <= 0 || rows * cols != n_elements)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT,
                   "%s: layer %s is %" G_GINT64_FORMAT "×%" G_GINT64_FORMAT ", not %" G_GINT64_FORMAT
                   " elements", manifest_path, layer, rows, cols, n_elements);
      return FALSE;
    }
  bl_format_packed_header_init (&spec, rows, cols, &h);
  if (json_object_get_int_member_with_default (entry, "elem_bits", -1) != h.elem_bits
      || json_object_get_int_member_with_default (entry, "group_size", -1) != h.group_size
      || json_object_get_int_member_with_default (entry, "n_groups", -1) != (gint64) h.n_groups
      || json_object_get_int_member_with_default (entry, "scale_bits", -1) != h.scale_bits
      || json_object_get_int_member_with_default (entry, "zero_bits", -1) != h.zero_bits)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_CORRUPT_FILE,
                   "%s: layer %s: the manifest's layout does not match spec %s (packed layout "
                   "version %u)", manifest_path, layer, json_object_get_string_member (entry, "spec"),
                   BL_PACKED_VERSION);
      return FALSE;
    }
  h.tensor_scale = (float) json_object_get_double_member_with_default (entry, "tensor_scale", 1.0);
  packed = g_malloc0 (h.total_bytes);
  memcpy (packed, &h, sizeof h);

  mapped = g_mapped_file_new (st_path, FALSE, error);
  if (mapped == NULL)
    return FALSE;
  st = (const guint8 *) g_mapped_file_get_contents (mapped);
  st_len = g_mapped_file_get_length (mapped);
  if (st_len < 8)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_CORRUPT_FILE, "%s: shorter than its header", st_path);
      return FALSE;
    }
  memcpy (&header_len, st, 8);
  header_len = GUINT64_FROM_LE (header_len);
  if (header_len > st_len - 8)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_CORRUPT_FILE, "%s: header length %" G_GUINT64_FORMAT
                   " exceeds the file", st_path, header_len);
      return FALSE;
    }
  st_header = bl_json_parse_object ((const char *) st + 8, header_len, st_path, error);
  if (st_header == NULL)
    return FALSE;
  sections = bl_export_object_member (entry, "sections");
  for (guint s = 0; s < G_N_ELEMENTS (section_names); s++)
    {
      guint64 off, bytes;
      const guint8 *data;
      gsize len;
      const char *tname;

      section_range (&h, s, &off, &bytes);
      if (bytes == 0)
        continue;
      tname = sections != NULL ? json_object_get_string_member_with_default (sections, section_names[s], NULL)
                               : NULL;
      if (tname == NULL
          || !find_st_tensor (json_node_get_object (st_header), st + 8 + header_len,
                              st_len - 8 - header_len, st_path, tname, &data, &len, error))
        {
          if (error != NULL && *error == NULL)
            g_set_error (error, BL_ERROR, BL_ERROR_CORRUPT_FILE, "%s: layer %s lists no %s section",
                         manifest_path, layer, section_names[s]);
          return FALSE;
        }
      if (len != bytes)
        {
          g_set_error (error, BL_ERROR, BL_ERROR_CORRUPT_FILE,
                       "%s: section %s of layer %s has %" G_GSIZE_FORMAT " bytes, the layout of %s "
                       "needs %" G_GUINT64_FORMAT, st_path, section_names[s], layer, len,
                       json_object_get_string_member (entry, "spec"), bytes);
          return FALSE;
        }
      memcpy (packed + off, data, len);
    }
  return bl_format_dequantize (packed, h.total_bytes, dst, n_elements, error);
}
