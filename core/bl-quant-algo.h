/* bl-quant-algo.h: weight quantization algorithms, one dispatch point for all of them
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * An algorithm turns a full-precision linear weight W [rows × cols] (y = W·x) into the
 * fake-quantized weight the engine runs, given a weight format (bl-format.h) and, for the
 * data-aware ones, the layer's calibration statistics (bl-calib.h). Names:
 *
 *   "rtn"             round to nearest with the format's own scale rule (bl_format_fake_quant())
 *   "clip-mse"        per group, the range shrink of least Σ|error|^2.4 (GPTQ repo grid)
 *   "gptq"            GPTQ (Frantar et al. 2022) with damping, act-order, block size, groups
 *   "awq"             AWQ per-input-channel scale search (Lin et al. 2023)
 *   "smoothquant"     SmoothQuant migration strength α (Xiao et al. 2022)
 *   "hadamard"        QuaRot-style randomized Hadamard rotation of the input dimension
 *   "bias-correction" subtract the expected output error E[x]·(W_q − W)ᵀ from the bias
 *
 * and compositions joined with "+", applied left to right, e.g. "hadamard+gptq",
 * "smoothquant+gptq", "awq+bias-correction". A composition has exactly one quantizing step
 * (rtn, clip-mse, gptq, awq); when none is named, "rtn" runs last. Transforms (hadamard,
 * smoothquant) come before it and bias-correction after it.
 *
 * Options are one flat JSON object for the whole composition; each step reads its own keys,
 * which are distinct across steps, and a key no step of the composition reads is an error:
 *
 *   gptq:        "damp" (fraction of mean diag(H), default 0.01), "act_order" (bool, false),
 *                "block_size" (128), "static_groups" (bool, false)
 *   clip-mse:    "clip_grid" (100), "clip_max_shrink" (0.8), "clip_norm" (2.4)
 *   awq:         "awq_grid" (20)
 *   smoothquant: "alpha" (0.5)
 *   hadamard:    "hadamard_seed" (0), "hadamard_block" (0 = largest power of two dividing cols)
 *
 * Calibration: bl_quant_algo_needs() says what @stats must hold. Statistics are those of the
 * full-precision model's inputs (one calibration pass), not of the inputs a partly quantized
 * model would produce as GPTQ's sequential layer-by-layer procedure feeds them.
 *
 * bl_quant_algo_list_options() prints this table for the CLI.
 */
#pragma once

#include <glib.h>
#include <json-glib/json-glib.h>
#include <stdint.h>

#include "bl-calib.h"
#include "bl-format.h"

G_BEGIN_DECLS

/**
 * BlInputTransform:
 * @scale: (nullable) (array length=cols): when set, the layer's input channel j is divided by
 *   @scale[j] (SmoothQuant / AWQ, whose W·diag(s) is already in the weight)
 * @hadamard: when %TRUE, the input x is rotated to R·x with R the block-diagonal randomized
 *   Hadamard of @hadamard_seed and @hadamard_block (bl_hadamard_rotate_rows(), forward); the
 *   weight already holds W·Rᵀ
 * @hadamard_seed: seed of R's random signs (bl_hadamard_random_signs())
 * @hadamard_block: the Hadamard block, a power of two dividing cols
 * @rotate_first: when both are set, rotate before dividing (the composition "hadamard+…" then
 *   "smoothquant"); otherwise divide first
 * @bias: (nullable) (array length=rows): an output bias to add after the matmul, set only by
 *   bias correction of a layer that had no bias to correct in place
 * @cols: input features
 * @rows: output features
 *
 * What the forward pass must do around a layer whose weight an algorithm changed, so that
 * W'·T(x) ≈ W·x: bl_input_transform_apply() on the input before the activation quantizer, and
 * @bias after the matmul. Initialise with bl_input_transform_init(), release with
 * bl_input_transform_clear().
 */
typedef struct
{
  float *scale;
  gboolean hadamard;
  guint64 hadamard_seed;
  int64_t hadamard_block;
  gboolean rotate_first;
  float *bias;
  int64_t cols;
  int64_t rows;
} BlInputTransform;

void         bl_input_transform_init      (BlInputTransform       *transform);
void         bl_input_transform_clear     (BlInputTransform       *transform);
gboolean     bl_input_transform_is_identity (const BlInputTransform *transform);
gboolean     bl_input_transform_apply     (const BlInputTransform *transform,
                                           float                  *x,
                                           int64_t                 n_tokens,
                                           int64_t                 dim,
                                           GError                **error);

BlCalibFlags bl_quant_algo_needs          (const char             *algorithm,
                                           GError                **error);
gboolean     bl_quant_algo_validate       (const char             *algorithm,
                                           JsonObject             *options,
                                           GError                **error);
const char  *bl_quant_algo_list_options   (void);

gboolean     bl_quant_algo_apply          (const char             *algorithm,
                                           JsonObject             *options,
                                           const BlFormatSpec     *weight_spec,
                                           const BlFormatSpec     *act_spec,
                                           const BlCalibLayer     *stats,
                                           float                  *w,
                                           int64_t                 rows,
                                           int64_t                 cols,
                                           float                  *bias,
                                           BlInputTransform       *out_transform,
                                           GError                **error);

G_END_DECLS
