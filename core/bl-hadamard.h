/* bl-hadamard.h: fast Walsh–Hadamard transforms and seeded random-sign rotations
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

gboolean bl_hadamard_is_power_of_two (gint64        n);
gint64   bl_hadamard_block_size      (gint64        n);
void     bl_hadamard_fwht            (float        *x,
                                      gint64        n);
void     bl_hadamard_random_signs    (guint64       seed,
                                      float        *signs,
                                      gint64        n);
gboolean bl_hadamard_rotate_rows     (float        *x,
                                      gint64        n_rows,
                                      gint64        n_cols,
                                      gint64        block,
                                      const float  *signs,
                                      gboolean      inverse,
                                      GError      **error);

G_END_DECLS
