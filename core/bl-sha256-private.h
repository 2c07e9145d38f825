/* bl-sha256-private.h: the block functions behind BlSha256, for the tests
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef void (*BlSha256Blocks) (guint32      state[8],
                                const guint8 *data,
                                gsize         n_blocks);

void bl_sha256_blocks_scalar (guint32      state[8],
                              const guint8 *data,
                              gsize         n_blocks);
#if defined(__x86_64__) || defined(__i386__)
void bl_sha256_blocks_shani  (guint32      state[8],
                              const guint8 *data,
                              gsize         n_blocks);
#endif

G_END_DECLS
