/* bl-quant-engine.h: an engine that runs a model under a quantization plan
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * A #BlQuantEngine owns a #BlEngine whose hooks carry out a #BlQuantPlan:
 *
 *   - weights: each linear layer's weight goes through its algorithm (bl_quant_algo_apply())
 *     once, when the engine is built (the weight hook) or when a plan change touches it
 *     (bl_engine_set_weight() with the layer's original weight re-read from the model);
 *   - inputs: at every linear layer the activation hook applies the algorithm's input
 *     transform (SmoothQuant/AWQ division, online Hadamard rotation), then the layer's
 *     activation quantizer: dynamic (`:token`, groups, MX/NV blocks) through
 *     bl_format_fake_quant(), or static (`:tensor`, `:channel`) with scales from the ranges
 *     observed over the calibration windows;
 *   - KV cache: the keys (after RoPE) and values of every block through the plan's KV spec.
 *
 * Calibration (bl_calib_collect() for the data-aware algorithms, and one observation pass for
 * static activation ranges) runs on the full-precision model over windows drawn from the
 * calibration text with the plan's calibration settings, so a layer's statistics and ranges
 * depend only on that layer's own assignment, never on what other layers are quantized to or
 * on the order of plan edits.
 */
#pragma once

#include <gio/gio.h>

#include "bl-backend.h"
#include "bl-engine.h"
#include "bl-quant-plan.h"

G_BEGIN_DECLS

/**
 * BL_QUANT_CALIB_DEFAULT_WINDOWS:
 *
 * Calibration windows when the plan says 0.
 */
#define BL_QUANT_CALIB_DEFAULT_WINDOWS 32

/**
 * BlQuantProgressFunc:
 * @stage: "calibration" (statistics pass), "quantize" (weights) or "ranges" (static
 *   activation ranges)
 * @done: steps done in @stage
 * @total: steps in @stage
 * @user_data: user data
 */
typedef void (*BlQuantProgressFunc) (const char *stage,
                                     int         done,
                                     int         total,
                                     gpointer    user_data);

typedef struct _BlQuantEngine BlQuantEngine;

gboolean       bl_quant_engine_needs_calibration (GPtrArray           *resolved);

BlQuantEngine *bl_quant_engine_new            (BlModel             *model,
                                               BlBackend           *backend,
                                               BlQuantPlan         *plan,
                                               const int32_t       *calib_ids,
                                               gint64               n_calib_ids,
                                               GCancellable        *cancellable,
                                               BlQuantProgressFunc  progress,
                                               gpointer             progress_data,
                                               GError             **error);
void           bl_quant_engine_free           (BlQuantEngine       *self);

gboolean       bl_quant_engine_set_plan       (BlQuantEngine       *self,
                                               BlQuantPlan         *plan,
                                               GCancellable        *cancellable,
                                               GError             **error);

gboolean       bl_quant_engine_check          (BlQuantEngine       *self,
                                               GError             **error);

BlEngine      *bl_quant_engine_get_engine     (BlQuantEngine       *self);
BlQuantPlan   *bl_quant_engine_get_plan       (BlQuantEngine       *self);
GPtrArray     *bl_quant_engine_get_assignments (BlQuantEngine      *self);
const char *const *bl_quant_engine_get_last_quantized (BlQuantEngine *self);
char              **bl_quant_engine_get_rtn_fallbacks (BlQuantEngine *self);

void           bl_quant_activation_static     (const BlFormatSpec  *spec,
                                               const float         *lo,
                                               const float         *hi,
                                               gboolean             per_channel,
                                               float               *x,
                                               int64_t              n_tokens,
                                               int64_t              dim);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (BlQuantEngine, bl_quant_engine_free)

G_END_DECLS
