/* bl-backend-private.h: internals shared by the registry and the built-in CPU backend
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include "bl-backend.h"

G_BEGIN_DECLS

/* The built-in OpenBLAS backend; the registry always lists it first. */
const BlBackendClass *bl_backend_cpu_get_class (void);

G_END_DECLS
