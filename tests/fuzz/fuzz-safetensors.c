/* fuzz-safetensors.c: libFuzzer target for bl_safetensors_parse_header()
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * The input is a whole safetensors file. When it parses, every tensor is widened to fp32,
 * which reads each byte the parser vouched for (AddressSanitizer flags a byte outside the
 * input), and the lookups by name and the metadata are exercised.
 * Build with -Dfuzzing=true (clang); run e.g.
 *   build-fuzz/tests/fuzz-safetensors -max_total_time=60 tests/fuzz/corpus-safetensors
 */
#include <stdint.h>

#include "bl-safetensors.h"

int LLVMFuzzerTestOneInput (const uint8_t *data,
                            size_t         size);

int
LLVMFuzzerTestOneInput (const uint8_t *data,
                        size_t         size)
{
  g_autoptr(BlSafetensors) st = NULL;
  g_auto(GStrv) keys = NULL;

  st = bl_safetensors_parse_header (data, size, "fuzz.safetensors", NULL);
  if (st == NULL)
    return 0;

  for (guint i = 0; i < bl_safetensors_get_n_tensors (st); i++)
    {
      const BlTensor *t = bl_safetensors_get_tensor_at (st, i);
      g_autofree float *values = g_new (float, MAX (t->n_elements, 1));

      g_assert_true (t->data >= data && t->data + t->n_bytes <= data + size);
      g_assert_true ((size_t) t->n_elements * bl_dtype_size (t->dtype) == t->n_bytes);
      g_assert_true (bl_safetensors_get_tensor (st, t->name) == t);
      bl_tensor_to_f32 (t, values);
    }
  keys = bl_safetensors_list_metadata_keys (st);
  for (guint k = 0; keys[k] != NULL; k++)
    g_assert_nonnull (bl_safetensors_get_metadata (st, keys[k]));
  return 0;
}
