/* bl-sha256.h: SHA-256 for model fingerprints, with the x86 SHA extensions where present
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/**
 * BlSha256:
 *
 * A running SHA-256 (FIPS 180-4). Its digests equal GLib's %G_CHECKSUM_SHA256; on CPUs with
 * the SHA extensions (Intel since Ice Lake and Goldmont, AMD since Zen) it hashes several
 * times faster, which matters for multi-gigabyte weight files. Initialise with
 * bl_sha256_init(); it holds no heap memory.
 */
typedef struct
{
  guint32 state[8];
  guint64 n_bytes;
  guint8 buffer[64];
  guint n_buffered;
} BlSha256;

void        bl_sha256_init          (BlSha256     *self);
void        bl_sha256_update        (BlSha256     *self,
                                     const void   *data,
                                     gsize         len);
void        bl_sha256_finish_hex    (BlSha256     *self,
                                     char          hex[65]);
gboolean    bl_sha256_accelerated   (void);

G_END_DECLS
