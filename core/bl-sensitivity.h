/* bl-sensitivity.h: how much each linear layer matters to the model's output
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <gio/gio.h>
#include <stdint.h>

#include "bl-backend.h"
#include "bl-calib.h"
#include "bl-format.h"
#include "bl-model.h"
#include "bl-store.h"

G_BEGIN_DECLS

/**
 * BlLayerSensitivity:
 * @name: the layer (weight tensor) name as the engine names it ("lm_head.weight" for the
 *   output projection, also when it is tied to the embedding)
 * @kind: the projection
 * @block: the transformer block, -1 for the lm_head
 * @rows: output features
 * @cols: input features
 * @weight_spec: the weight format the error metrics and the KL are for
 * @qsnr_db: weight QSNR under @weight_spec, 10·log10(‖W‖²/‖W − Q(W)‖²)
 * @rel_err: ‖W − Q(W)‖² / ‖W‖² (10^(−QSNR/10))
 * @out_err: the relative output error under the calibration inputs with the Hessian's
 *   diagonal, Σ_j E[x_j²]·‖ΔW_:j‖² / Σ_j E[x_j²]·‖W_:j‖² (the per-layer error the estimator
 *   multiplies by @kl / @out_err)
 * @hessian_trace: Tr(H)/n of the layer-wise Hessian H = E[x xᵀ] ⊗ I (the Gauss–Newton
 *   Hessian of the layer's output error), = mean_j E[x_j²]
 * @omega: the HAWQ sensitivity Ω = Tr(H)/n · ‖W − Q(W)‖² (methods.md §5) with that Hessian
 * @kl: one-at-a-time KL: mean over the budget's tokens of KL(p_fp ‖ p_q) with only this
 *   layer quantized (nats/token); NaN when not measured
 * @dnll: one-at-a-time change of the mean NLL (nats/token); NaN when not measured
 * @top1: one-at-a-time top-1 agreement with the full-precision model; NaN when not measured
 * @lim: LIM of the layer's block (methods.md §11), −mean_t cos(h_in,t, h_out,t); NaN for
 *   the lm_head
 * @zd: ZD of this layer's weights, |{w : (w − μ)/σ > 1}| / N (methods.md §11)
 * @zd_block: ZD over all linear weights of the layer's block pooled; NaN for the lm_head
 *
 * One layer's sensitivity numbers for one weight format. Strings are owned by the struct.
 */
typedef struct
{
  char *name;
  BlLayerKind kind;
  int block;
  int64_t rows;
  int64_t cols;
  char *weight_spec;
  double qsnr_db;
  double rel_err;
  double out_err;
  double hessian_trace;
  double omega;
  double kl;
  double dnll;
  double top1;
  double lim;
  double zd;
  double zd_block;
} BlLayerSensitivity;

#define BL_TYPE_LAYER_SENSITIVITY (bl_layer_sensitivity_get_type ())
GType               bl_layer_sensitivity_get_type (void) G_GNUC_CONST;
BlLayerSensitivity *bl_layer_sensitivity_copy     (const BlLayerSensitivity *s);
void                bl_layer_sensitivity_free     (BlLayerSensitivity       *s);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BlLayerSensitivity, bl_layer_sensitivity_free)

/**
 * BlSensitivityOptions:
 * @n_windows: windows of the budget (0: 8)
 * @ctx: ids per window (0: the smaller of 256 and the model's maximum)
 * @seed: seed of the window starts (bl_calib_make_windows())
 * @n_threads: threads for fake-quantization (0: 1)
 * @dataset_name: (nullable): the text's name, recorded in the store
 * @dataset_sha256: (nullable): the text's sha256; a budget is cached in the store only
 *   with it
 *
 * The measurement budget: which windows of which text the calibration statistics, the
 * full-precision baseline and every one-at-a-time KL are taken over.
 */
typedef struct
{
  int n_windows;
  int ctx;
  guint64 seed;
  int n_threads;
  const char *dataset_name;
  const char *dataset_sha256;
} BlSensitivityOptions;

/**
 * BlPlanMeasurement:
 * @nll: mean NLL of the budget's tokens with the plan applied (nats/token)
 * @base_nll: the same for the full-precision model
 * @kl: mean KL(p_fp ‖ p_q) (nats/token)
 * @top1: top-1 agreement with the full-precision model
 * @n_tokens: scored tokens
 *
 * A plan measured over a #BlSensitivity's budget.
 */
typedef struct
{
  double nll;
  double base_nll;
  double kl;
  double top1;
  gint64 n_tokens;
} BlPlanMeasurement;

/**
 * BlSensitivityProgressFunc:
 * @stage: what is running: "calibration", "baseline", "layers" or "plan"
 * @done: steps finished in @stage
 * @total: steps in @stage
 * @user_data: user data
 */
typedef void (*BlSensitivityProgressFunc) (const char *stage,
                                           int         done,
                                           int         total,
                                           gpointer    user_data);

#define BL_TYPE_SENSITIVITY (bl_sensitivity_get_type ())
G_DECLARE_FINAL_TYPE (BlSensitivity, bl_sensitivity, BL, SENSITIVITY, GObject)

BlSensitivity  *bl_sensitivity_new          (BlModel                    *model,
                                             BlBackend                  *backend,
                                             const int32_t              *ids,
                                             gint64                      n_ids,
                                             const BlSensitivityOptions *options,
                                             GError                    **error);
void            bl_sensitivity_set_store    (BlSensitivity              *self,
                                             BlStore                    *store);
void            bl_sensitivity_set_progress (BlSensitivity              *self,
                                             BlSensitivityProgressFunc   progress,
                                             gpointer                    user_data);
gboolean        bl_sensitivity_prepare      (BlSensitivity              *self,
                                             GCancellable               *cancellable,
                                             GError                    **error);
GPtrArray      *bl_sensitivity_compute      (BlSensitivity              *self,
                                             const char                 *weight_spec,
                                             gboolean                    with_kl,
                                             GCancellable               *cancellable,
                                             GError                    **error);
GPtrArray      *bl_sensitivity_lookup       (BlSensitivity              *self,
                                             const char                 *weight_spec,
                                             GError                    **error);
gboolean        bl_sensitivity_measure_plan (BlSensitivity              *self,
                                             GHashTable                 *layer_specs,
                                             BlPlanMeasurement          *out,
                                             GCancellable               *cancellable,
                                             GError                    **error);
gboolean        bl_sensitivity_layer_error  (BlSensitivity              *self,
                                             const char                 *layer,
                                             const BlFormatSpec         *spec,
                                             double                     *out_err,
                                             double                     *rel_err,
                                             GError                    **error);

BlModel        *bl_sensitivity_get_model    (BlSensitivity              *self);
const BlSensitivityOptions *bl_sensitivity_get_options (BlSensitivity   *self);
guint           bl_sensitivity_get_n_layers (BlSensitivity              *self);
const char     *bl_sensitivity_get_layer_name (BlSensitivity            *self,
                                               guint                     index);
double          bl_sensitivity_get_base_nll (BlSensitivity              *self);
gint64          bl_sensitivity_get_n_tokens (BlSensitivity              *self);
gint64          bl_sensitivity_get_budget_id (BlSensitivity             *self);
GPtrArray      *bl_sensitivity_list_specs   (BlSensitivity              *self);

char           *bl_layer_specs_to_json      (GHashTable                 *layer_specs,
                                             GError                    **error);
GHashTable     *bl_layer_specs_from_json    (const char                 *json,
                                             GError                    **error);

double          bl_weight_zd                (const float                *w,
                                             gint64                      n);
double          bl_spearman_rho             (const double               *x,
                                             const double               *y,
                                             guint                       n);

G_END_DECLS
