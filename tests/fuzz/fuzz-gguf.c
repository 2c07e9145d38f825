/* fuzz-gguf.c: libFuzzer target for bl_gguf_new_from_data() and the GGUF tokenizer rebuild
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * The input is a whole GGUF file. When it parses, every metadata value is read through
 * every getter (scalars, each array element, whole string arrays), every tensor is looked
 * up by name, checked to lie inside the input and decoded when its type has a decoder
 * (AddressSanitizer flags a byte outside the input), and tokenizer.ggml.* is rebuilt into
 * a tokenizer when the file has one (bl_model_gguf_read_tokenizer()).
 * Build with -Dfuzzing=true (clang); run e.g.
 *   build-fuzz/tests/fuzz-gguf -max_total_time=60 tests/fuzz/corpus-gguf
 */
#include <stdint.h>

#include "bl-error.h"
#include "bl-gguf.h"
#include "bl-model-gguf-private.h"

int LLVMFuzzerTestOneInput (const uint8_t *data,
                            size_t         size);

/* Reads the value of @kv through every getter; each must agree with its type. */
static void
walk_kv (BlGguf         *f,
         const BlGgufKv *kv)
{
  guint64 u;
  gint64 i;
  double d;
  gboolean b;
  g_autofree char *s = bl_gguf_get_string (f, kv->key);
  g_auto(GStrv) strings = bl_gguf_get_string_array (f, kv->key);

  g_assert_true (bl_gguf_find_kv (f, kv->key) == kv);
  g_assert_true ((s != NULL) == (kv->type == BL_GGUF_TYPE_STRING));
  g_assert_true ((strings != NULL)
                 == (kv->type == BL_GGUF_TYPE_ARRAY && kv->array_type == BL_GGUF_TYPE_STRING));
  if (strings != NULL)
    g_assert_true (g_strv_length (strings) <= kv->array_len);
  bl_gguf_get_uint (f, kv->key, &u);
  bl_gguf_get_int (f, kv->key, &i);
  bl_gguf_get_float (f, kv->key, &d);
  bl_gguf_get_bool (f, kv->key, &b);
  if (kv->type != BL_GGUF_TYPE_ARRAY)
    return;
  /* the first and last few elements: walking a string array to element n costs O(n) */
  for (guint64 e = 0; e < kv->array_len; e++)
    {
      g_autofree char *element = NULL;

      if (e == 4 && kv->array_len > 8)
        e = kv->array_len - 4;
      element = bl_gguf_get_array_string (f, kv->key, e);
      g_assert_true ((element != NULL) == (kv->array_type == BL_GGUF_TYPE_STRING));
      bl_gguf_get_array_number (f, kv->key, e, &d);
    }
  g_assert_null (bl_gguf_get_array_string (f, kv->key, kv->array_len));
  g_assert_false (bl_gguf_get_array_number (f, kv->key, kv->array_len, &d));
}

int
LLVMFuzzerTestOneInput (const uint8_t *data,
                        size_t         size)
{
  g_autoptr(BlGguf) f = bl_gguf_new_from_data (data, size, "fuzz.gguf", NULL);
  g_autoptr(BlTokenizer) tok = NULL;
  g_autofree char *why_not = NULL;
  g_autoptr(GError) error = NULL;

  if (f == NULL)
    return 0;

  g_assert_true (bl_gguf_get_data_offset (f) <= size);
  for (guint k = 0; k < bl_gguf_get_n_kv (f); k++)
    walk_kv (f, bl_gguf_get_kv_at (f, k));

  for (guint t = 0; t < bl_gguf_get_n_tensors (f); t++)
    {
      const BlGgufTensorInfo *ti = bl_gguf_get_tensor_at (f, t);
      gint64 n = ti->ne[0] * ti->ne[1] * ti->ne[2] * ti->ne[3];
      g_autofree float *values = NULL;

      g_assert_true (bl_gguf_find_tensor (f, ti->name) == ti);
      g_assert_true (ti->data >= data && ti->n_bytes <= size
                     && (size_t) (ti->data - data) <= size - ti->n_bytes);
      g_assert_true (ti->file_offset == (guint64) (ti->data - data));
      /* n_bytes ≤ size bounds the decoded size by 256/50 floats per byte (IQ1_S, which
       * has no decoder; Q2_K, at 256/84, is the densest one that has) */
      values = g_new (float, n);
      if (!bl_gguf_tensor_to_f32 (f, ti, values, &error))
        {
          g_assert_error (error, BL_ERROR, BL_ERROR_UNSUPPORTED_FORMAT);
          g_clear_error (&error);
        }
    }

  if (bl_model_gguf_read_tokenizer (f, &tok, &why_not, &error))
    {
      g_assert_true ((tok == NULL) == (why_not != NULL));
      if (tok != NULL)
        {
          g_autoptr(GArray) ids = bl_tokenizer_encode (tok, "Hello, wörld 42!", -1, TRUE);
          g_autofree char *text = bl_tokenizer_decode (tok, (const int32_t *) ids->data, ids->len);

          g_assert_nonnull (text);
        }
    }
  else
    g_assert_nonnull (error);
  return 0;
}
