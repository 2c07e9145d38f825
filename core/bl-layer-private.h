/* bl-layer-private.h: constructing the layers of a BlModel
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include "bl-model.h"
#include "bl-safetensors.h"

G_BEGIN_DECLS

/* @weight_file and @bias_file hold @weight and @bias and are kept alive by the layer. */
BlLayer *bl_layer_new (BlLayerKind     kind,
                       int             block,
                       const BlTensor *weight,
                       BlSafetensors  *weight_file,
                       const BlTensor *bias,
                       BlSafetensors  *bias_file);

G_END_DECLS
