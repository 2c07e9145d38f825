/* bl-error.c
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "bl-error.h"

G_DEFINE_QUARK (bl-error-quark, bl_error)
