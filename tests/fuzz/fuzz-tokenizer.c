/* fuzz-tokenizer.c: libFuzzer target for bl_tokenizer_new_from_data()
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * The input is a tokenizer.json. When it loads, a fixed text with added-token look-alikes,
 * several scripts and invalid UTF-8 is encoded and decoded, and so is the input itself.
 * Build with -Dfuzzing=true (clang); run e.g.
 *   build-fuzz/tests/fuzz-tokenizer -max_total_time=60 tests/fuzz/corpus-tokenizer
 */
#include <stdint.h>

#include "bl-tokenizer.h"

int LLVMFuzzerTestOneInput (const uint8_t *data,
                            size_t         size);

static void
round_trip (BlTokenizer *t,
            const char  *text,
            gssize       len)
{
  g_autoptr(GArray) ids = bl_tokenizer_encode (t, text, len, TRUE);
  g_autofree char *back = bl_tokenizer_decode (t, (const int32_t *) ids->data, ids->len);

  for (guint i = 0; i < ids->len; i++)
    g_assert_nonnull (bl_tokenizer_id_to_piece (t, g_array_index (ids, int32_t, i)));
  g_assert_true (g_utf8_validate (back, -1, NULL));
}

int
LLVMFuzzerTestOneInput (const uint8_t *data,
                        size_t         size)
{
  static const char text[] =
    "Hello  world<s></s> <unk> it's 1234 ▁x <|endoftext|>\n\t naïve 日本 🙂 \xff\xe2\x82 end  ";
  g_autoptr(BlTokenizer) t = NULL;

  t = bl_tokenizer_new_from_data ((const char *) data, size, NULL, 0, "fuzz", NULL);
  if (t == NULL)
    return 0;

  round_trip (t, text, sizeof text - 1);
  round_trip (t, (const char *) data, MIN (size, 512));
  return 0;
}
