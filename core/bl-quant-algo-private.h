/* bl-quant-algo-private.h: what the algorithm files share with the dispatcher
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include "bl-format-private.h"
#include "bl-quant-algo.h"

G_BEGIN_DECLS

/**
 * BlQuantState:
 * The layer as the steps of one composition hand it on. A transform step (hadamard,
 * smoothquant) rewrites @w and the input statistics below so that they describe the
 * transformed input T(x); a statistic a transform cannot carry over (per-channel |x| after a
 * rotation) becomes %NULL, and a later step that needs it fails with a message saying so.
 * Arrays are owned by the state.
 */
typedef struct
{
  JsonObject *options;              /* nullable */
  const BlFormatSpec *weight_spec;
  const BlFormatSpec *act_spec;     /* nullable */
  const char *layer_name;           /* for messages: the stats' name or "layer" */
  float *w;                         /* [rows × cols], changed in place */
  int64_t rows;
  int64_t cols;
  float *bias;                      /* nullable, [rows] */
  BlInputTransform *transform;

  /* input statistics of T(x), nullable */
  int64_t n_tokens;
  double *hessian;                  /* [cols × cols], Σ x xᵀ */
  double *mean;                     /* [cols] E[x_j] */
  double *mean_abs;                 /* [cols] E[|x_j|] */
  double *mean_sq;                  /* [cols] E[x_j²] */
  double *absmax;                   /* [cols] max |x_j| */

  /* the layer as given, for post steps that compare against it */
  float *w_orig;                    /* [rows × cols] W before any step */
  double *mean_orig;                /* [cols] E[x] of the untransformed input, nullable */
} BlQuantState;

/* A per-group quantizer over a weight's natural groups (runs of a row's columns), for the
 * algorithms that fix a group's scale and then round elements one at a time (GPTQ, clip
 * search). It drives the format's traits table directly, so every family whose scale
 * covers a run of one row works, with the same element grid as bl_format_fake_quant(). */
typedef struct
{
  BlFormatCtx ctx;
  float *scratch;                   /* group_size floats when the family needs scratch */
} BlGroupQuant;

gboolean bl_group_quant_init      (BlGroupQuant        *q,
                                   const BlFormatSpec  *spec,
                                   const float         *w,
                                   int64_t              rows,
                                   int64_t              cols,
                                   GError             **error);
void     bl_group_quant_clear     (BlGroupQuant        *q);
int64_t  bl_group_quant_group_cols (const BlGroupQuant *q);
void     bl_group_quant_params    (const BlGroupQuant  *q,
                                   const float         *x,
                                   int64_t              n,
                                   int64_t              row,
                                   int64_t              col0,
                                   double               shrink,
                                   BlGroupParams       *p);
void     bl_group_quant_fake      (const BlGroupQuant  *q,
                                   const BlGroupParams *p,
                                   const float         *x,
                                   int64_t              n,
                                   int64_t              row,
                                   int64_t              col0,
                                   float               *y);

/* option readers: a missing key keeps *value; a key of the wrong type is an error naming it */
gboolean bl_quant_option_double   (JsonObject  *options,
                                   const char  *key,
                                   double       min,
                                   double       max,
                                   double      *value,
                                   GError     **error);
gboolean bl_quant_option_int      (JsonObject  *options,
                                   const char  *key,
                                   gint64       min,
                                   gint64       max,
                                   gint64      *value,
                                   GError     **error);
gboolean bl_quant_option_bool     (JsonObject  *options,
                                   const char  *key,
                                   gboolean    *value,
                                   GError     **error);

/* ‖(W_q − W)·X‖² summed over calibration tokens, = Σ_r Δ_r·H·Δ_rᵀ (the layer output error
 * the data-aware algorithms minimise), for a row range of W */
double   bl_quant_output_error    (const float  *wq,
                                   const float  *w,
                                   const double *hessian,
                                   int64_t       rows,
                                   int64_t       cols);

gboolean bl_quant_rtn             (BlQuantState *state,
                                   GError      **error);
gboolean bl_quant_gptq            (BlQuantState *state,
                                   GError      **error);
gboolean bl_quant_clip_mse        (BlQuantState *state,
                                   GError      **error);
gboolean bl_quant_awq             (BlQuantState *state,
                                   GError      **error);
gboolean bl_quant_smoothquant     (BlQuantState *state,
                                   GError      **error);
gboolean bl_quant_hadamard        (BlQuantState *state,
                                   GError      **error);
gboolean bl_quant_bias_correction (BlQuantState *state,
                                   GError      **error);

gboolean bl_quant_state_scale_inputs (BlQuantState  *state,
                                      const double  *s,
                                      GError       **error);

G_END_DECLS
