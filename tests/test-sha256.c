/* test-sha256.c: BlSha256 against FIPS 180-4's examples and GLib's GChecksum
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include <string.h>

#include "bl-sha256.h"
#include "bl-sha256-private.h"

static void
hex_of (const void *data,
        gsize       len,
        char        hex[65])
{
  BlSha256 s;

  bl_sha256_init (&s);
  bl_sha256_update (&s, data, len);
  bl_sha256_finish_hex (&s, hex);
}

/* FIPS 180-4 / NIST CSRC example values: "abc", the two-block 448-bit message, and the empty
 * string */
static void
test_vectors (void)
{
  char hex[65];

  hex_of ("abc", 3, hex);
  g_assert_cmpstr (hex, ==, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  hex_of ("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56, hex);
  g_assert_cmpstr (hex, ==, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  hex_of ("", 0, hex);
  g_assert_cmpstr (hex, ==, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  g_test_message ("SHA extensions in use: %s", bl_sha256_accelerated () ? "yes" : "no");
}

/* Every length from 0 to 300 bytes (all padding cases, one to five blocks), fed whole and in
 * uneven pieces, equals GChecksum. */
static void
test_lengths (void)
{
  g_autoptr(GRand) rand = g_rand_new_with_seed (3);
  guint8 data[300];

  for (guint i = 0; i < sizeof data; i++)
    data[i] = (guint8) g_rand_int (rand);
  for (gsize len = 0; len <= sizeof data; len++)
    {
      g_autofree char *want = g_compute_checksum_for_data (G_CHECKSUM_SHA256, data, len);
      char hex[65];
      BlSha256 s;

      hex_of (data, len, hex);
      g_assert_cmpstr (hex, ==, want);
      bl_sha256_init (&s);
      for (gsize done = 0, piece = 1; done < len; done += piece, piece = piece * 3 % 71 + 1)
        bl_sha256_update (&s, data + done, MIN (piece, len - done));
      bl_sha256_finish_hex (&s, hex);
      g_assert_cmpstr (hex, ==, want);
    }
}

/* The accelerated and plain block functions agree on 4 MiB of random blocks; skipped where
 * the CPU has no SHA extensions (the plain path is then what runs everywhere). */
static void
test_block_functions (void)
{
#if defined(__x86_64__) || defined(__i386__)
  gsize n_blocks = 65536;
  g_autofree guint8 *data = g_malloc (n_blocks * 64);
  g_autoptr(GRand) rand = g_rand_new_with_seed (9);
  guint32 a[8], b[8];

  if (!bl_sha256_accelerated ())
    {
      g_test_skip ("this CPU has no SHA extensions (or BITLENS_SHA256_SCALAR is set)");
      return;
    }
  for (gsize i = 0; i < n_blocks * 64 / 4; i++)
    ((guint32 *) data)[i] = g_rand_int (rand);
  for (int i = 0; i < 8; i++)
    a[i] = b[i] = g_rand_int (rand);
  bl_sha256_blocks_scalar (a, data, n_blocks);
  bl_sha256_blocks_shani (b, data, n_blocks);
  g_assert_cmpmem (a, sizeof a, b, sizeof b);
  for (gsize k = 1; k <= 3; k++)
    {
      bl_sha256_blocks_scalar (a, data + 64 * k, k);
      bl_sha256_blocks_shani (b, data + 64 * k, k);
      g_assert_cmpmem (a, sizeof a, b, sizeof b);
    }
#else
  g_test_skip ("not an x86 CPU: only the plain block function exists");
#endif
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/bitlens/sha256/vectors", test_vectors);
  g_test_add_func ("/bitlens/sha256/lengths", test_lengths);
  g_test_add_func ("/bitlens/sha256/block-functions", test_block_functions);
  return g_test_run ();
}
