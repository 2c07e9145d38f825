/* bl-sha256.c: SHA-256 for model fingerprints, with the x86 SHA extensions where present
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * The hash is FIPS 180-4's. GLib's GChecksum hashes about 0.2 GB/s, so a 7B model's 14 GB of
 * weights took over a minute to fingerprint; the SHA-NI instructions (sha256rnds2 runs two
 * rounds, sha256msg1/msg2 extend the message schedule) do the same work several times
 * faster. The block function below follows Intel's "Intel SHA Extensions" white paper
 * (Gulley et al., 2013): the state is kept as the register pair ABEF/CDGH that
 * sha256rnds2 works on, and each group of four rounds adds four schedule words to four
 * round constants. Where the CPU lacks the extensions, a plain C block function does the
 * same. The tests compare both with GChecksum on every length up to several blocks and on
 * large random buffers.
 */
#include "bl-sha256.h"

#include <string.h>

#include "bl-sha256-private.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <immintrin.h>
#define HAVE_X86 1
#endif

/* FIPS 180-4 §4.2.2 */
static const guint32 K[64] = {
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static inline guint32
rotr (guint32 x,
      int     n)
{
  return (x >> n) | (x << (32 - n));
}

/* FIPS 180-4 §6.2.2, one 64-byte block at a time */
void
bl_sha256_blocks_scalar (guint32      state[8],
                         const guint8 *data,
                         gsize         n_blocks)
{
  for (gsize blk = 0; blk < n_blocks; blk++, data += 64)
    {
      guint32 w[64];
      guint32 a = state[0], b = state[1], c = state[2], d = state[3];
      guint32 e = state[4], f = state[5], g = state[6], h = state[7];

      for (int t = 0; t < 16; t++)
        w[t] = (guint32) data[4 * t] << 24 | (guint32) data[4 * t + 1] << 16 |
               (guint32) data[4 * t + 2] << 8 | (guint32) data[4 * t + 3];
      for (int t = 16; t < 64; t++)
        {
          guint32 s0 = rotr (w[t - 15], 7) ^ rotr (w[t - 15], 18) ^ (w[t - 15] >> 3);
          guint32 s1 = rotr (w[t - 2], 17) ^ rotr (w[t - 2], 19) ^ (w[t - 2] >> 10);

          w[t] = w[t - 16] + s0 + w[t - 7] + s1;
        }
      for (int t = 0; t < 64; t++)
        {
          guint32 t1 = h + (rotr (e, 6) ^ rotr (e, 11) ^ rotr (e, 25)) + ((e & f) ^ (~e & g)) + K[t] + w[t];
          guint32 t2 = (rotr (a, 2) ^ rotr (a, 13) ^ rotr (a, 22)) + ((a & b) ^ (a & c) ^ (b & c));

          h = g;
          g = f;
          f = e;
          e = d + t1;
          d = c;
          c = b;
          b = a;
          a = t1 + t2;
        }
      state[0] += a;
      state[1] += b;
      state[2] += c;
      state[3] += d;
      state[4] += e;
      state[5] += f;
      state[6] += g;
      state[7] += h;
    }
}

#ifdef HAVE_X86
/* Sixteen groups of four rounds. Group i adds the round constants to its schedule words
 * msg[i % 4] and runs two rnds2 (the second on the upper half); from group 3 on it also
 * finishes the schedule words of group i + 1 (msg2 over a partial sum that msg1 began three
 * groups earlier), and from group 1 to 12 it begins those of group i + 3 with msg1. */
__attribute__ ((target ("sha,sse4.1,ssse3")))
void
bl_sha256_blocks_shani (guint32      state[8],
                        const guint8 *data,
                        gsize         n_blocks)
{
  const __m128i bswap = _mm_set_epi64x (0x0c0d0e0f08090a0bLL, 0x0405060700010203LL);
  __m128i tmp = _mm_loadu_si128 ((const __m128i *) &state[0]);
  __m128i state1 = _mm_loadu_si128 ((const __m128i *) &state[4]);
  __m128i state0;

  tmp = _mm_shuffle_epi32 (tmp, 0xb1);                /* CDAB */
  state1 = _mm_shuffle_epi32 (state1, 0x1b);          /* EFGH */
  state0 = _mm_alignr_epi8 (tmp, state1, 8);          /* ABEF */
  state1 = _mm_blend_epi16 (state1, tmp, 0xf0);       /* CDGH */

  for (gsize blk = 0; blk < n_blocks; blk++, data += 64)
    {
      __m128i abef = state0, cdgh = state1;
      __m128i msg[4];

      for (int i = 0; i < 16; i++)
        {
          __m128i m;

          if (i < 4)
            msg[i] = _mm_shuffle_epi8 (_mm_loadu_si128 ((const __m128i *) (data + 16 * i)), bswap);
          m = _mm_add_epi32 (msg[i % 4], _mm_loadu_si128 ((const __m128i *) &K[4 * i]));
          state1 = _mm_sha256rnds2_epu32 (state1, state0, m);
          if (i >= 3 && i <= 14)
            {
              __m128i *next = &msg[(i + 1) % 4];

              *next = _mm_add_epi32 (*next, _mm_alignr_epi8 (msg[i % 4], msg[(i + 3) % 4], 4));
              *next = _mm_sha256msg2_epu32 (*next, msg[i % 4]);
            }
          m = _mm_shuffle_epi32 (m, 0x0e);
          state0 = _mm_sha256rnds2_epu32 (state0, state1, m);
          if (i >= 1 && i <= 12)
            msg[(i + 3) % 4] = _mm_sha256msg1_epu32 (msg[(i + 3) % 4], msg[i % 4]);
        }
      state0 = _mm_add_epi32 (state0, abef);
      state1 = _mm_add_epi32 (state1, cdgh);
    }

  tmp = _mm_shuffle_epi32 (state0, 0x1b);             /* FEBA */
  state1 = _mm_shuffle_epi32 (state1, 0xb1);          /* DCHG */
  state0 = _mm_blend_epi16 (tmp, state1, 0xf0);       /* DCBA */
  state1 = _mm_alignr_epi8 (state1, tmp, 8);          /* ABEF */
  _mm_storeu_si128 ((__m128i *) &state[0], state0);
  _mm_storeu_si128 ((__m128i *) &state[4], state1);
}
#endif

/* CPUID leaf 7 EBX bit 29 (SHA), leaf 1 ECX bits 9 (SSSE3) and 19 (SSE4.1) */
static gboolean
detect_shani (void)
{
#ifdef HAVE_X86
  unsigned int a, b, c, d;

  if (!__get_cpuid (1, &a, &b, &c, &d) || !(c & (1u << 9)) || !(c & (1u << 19)))
    return FALSE;
  if (!__get_cpuid_count (7, 0, &a, &b, &c, &d))
    return FALSE;
  return (b & (1u << 29)) != 0;
#else
  return FALSE;
#endif
}

static BlSha256Blocks
blocks_impl (void)
{
  static gsize once = 0;
  static BlSha256Blocks impl;

  if (g_once_init_enter (&once))
    {
      impl = bl_sha256_blocks_scalar;
#ifdef HAVE_X86
      if (detect_shani () && g_getenv ("BITLENS_SHA256_SCALAR") == NULL)
        impl = bl_sha256_blocks_shani;
#endif
      g_once_init_leave (&once, 1);
    }
  return impl;
}

/**
 * bl_sha256_accelerated:
 *
 * Returns: whether hashing runs on the CPU's SHA extensions (set BITLENS_SHA256_SCALAR in
 *   the environment to use the plain C path)
 */
gboolean
bl_sha256_accelerated (void)
{
#ifdef HAVE_X86
  return blocks_impl () == bl_sha256_blocks_shani;
#else
  return FALSE;
#endif
}

/**
 * bl_sha256_init:
 * @self: a #BlSha256 to (re)start
 */
void
bl_sha256_init (BlSha256 *self)
{
  /* FIPS 180-4 §5.3.3 */
  static const guint32 h0[8] = { 0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19 };

  g_return_if_fail (self != NULL);
  memcpy (self->state, h0, sizeof h0);
  self->n_bytes = 0;
  self->n_buffered = 0;
}

/**
 * bl_sha256_update:
 * @self: a running hash
 * @data: (array length=len): bytes
 * @len: their number
 *
 * Hashes @data after what came before.
 */
void
bl_sha256_update (BlSha256   *self,
                  const void *data,
                  gsize       len)
{
  BlSha256Blocks blocks = blocks_impl ();
  const guint8 *p = data;

  g_return_if_fail (self != NULL);
  g_return_if_fail (data != NULL || len == 0);

  self->n_bytes += len;
  if (self->n_buffered > 0)
    {
      gsize take = MIN (len, 64 - self->n_buffered);

      memcpy (self->buffer + self->n_buffered, p, take);
      self->n_buffered += (guint) take;
      p += take;
      len -= take;
      if (self->n_buffered < 64)
        return;
      blocks (self->state, self->buffer, 1);
      self->n_buffered = 0;
    }
  if (len >= 64)
    {
      blocks (self->state, p, len / 64);
      p += len / 64 * 64;
      len %= 64;
    }
  memcpy (self->buffer, p, len);
  self->n_buffered = (guint) len;
}

/**
 * bl_sha256_finish_hex:
 * @self: a running hash; restarted afterwards
 * @hex: (out caller-allocates): receives the digest as 64 lowercase hex digits and a NUL,
 *   as g_checksum_get_string() writes it
 *
 * Pads the message (FIPS 180-4 §5.1.1) and writes its digest.
 */
void
bl_sha256_finish_hex (BlSha256 *self,
                      char      hex[65])
{
  static const char digits[] = "0123456789abcdef";
  guint64 bits;
  guint8 tail[72] = { 0x80 };
  gsize pad;

  g_return_if_fail (self != NULL && hex != NULL);

  bits = self->n_bytes * 8;
  /* 0x80, zeros up to 56 mod 64, then the length in bits, big-endian */
  pad = (self->n_buffered < 56 ? 56 : 120) - self->n_buffered;
  for (int i = 0; i < 8; i++)
    tail[pad + (gsize) i] = (guint8) (bits >> (56 - 8 * i));
  bl_sha256_update (self, tail, pad + 8);
  for (int i = 0; i < 8; i++)
    for (int j = 0; j < 8; j++)
      hex[8 * i + j] = digits[(self->state[i] >> (28 - 4 * j)) & 0xf];
  hex[64] = '\0';
  bl_sha256_init (self);
}
