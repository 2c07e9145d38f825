/* bl-calib.h: calibration statistics from one forward pass over calibration windows
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * A calibration pass runs the full-precision model over a few windows of token ids and, through
 * the engine's activation hook, watches the input X of every linear layer. Per layer it keeps:
 *
 *   - running moments of all of X: mean, variance, Pearson kurtosis (Gaussian = 3, the
 *     bl_metrics_kurtosis() convention) and crest factor max|x| / rms (bl_metrics_crest_factor());
 *   - per input channel j: E[x_j], E[|x_j|] (AWQ's activation magnitude), E[x_j²] (AWQ / llama.cpp
 *     imatrix importance) and max|x_j| (SmoothQuant; the outlier channels are the largest of these);
 *   - a histogram with fixed bins over a symmetric robust range set from the first batch the
 *     layer sees, with underflow and overflow counts for everything outside it;
 *   - optionally the Hessian proxy H = Σ_t x_t x_tᵀ (GPTQ's XᵀX, un-normalised, accumulated in
 *     fp64), only for the layers that ask for it, because it costs cols² doubles per layer;
 *   - the same moments, crest, kurtosis and outlier input columns for the weight itself.
 *
 * With %BL_CALIB_BLOCK_IO it also records, per transformer block b, the cosine similarity of the
 * block's input h_b and output h_(b+1) per token (LIM, methods.md §11). See bl_calib_collect()
 * for how those hidden states are observed.
 *
 * Provenance: the dataset name, the seed, the window count and the window length are kept with
 * the statistics (bl_calib_get_provenance()), so they can be stored beside every result.
 */
#pragma once

#include <gio/gio.h>
#include <stdint.h>

#include "bl-backend.h"
#include "bl-model.h"

G_BEGIN_DECLS

/**
 * BlCalibFlags:
 * @BL_CALIB_ACT_STATS: activation moments, per-channel statistics and histograms (always
 *   collected; the flag exists so #BlCalibFlags values can say "no calibration needed" as 0)
 * @BL_CALIB_HESSIAN: H = XᵀX in fp64 for the layers named in #BlCalibOptions.hessian_layers
 * @BL_CALIB_BLOCK_IO: per-block input/output cosine similarity (LIM)
 *
 * What a calibration pass collects, and what an algorithm needs (bl_quant_algo_needs()).
 */
typedef enum
{
  BL_CALIB_ACT_STATS = 1 << 0,
  BL_CALIB_HESSIAN   = 1 << 1,
  BL_CALIB_BLOCK_IO  = 1 << 2,
} BlCalibFlags;

/**
 * BlCalibOptions:
 * @flags: what to collect
 * @hessian_layers: (nullable) (array zero-terminated=1): globs (g_pattern_match_simple()) over
 *   layer names whose Hessian to keep when @flags has %BL_CALIB_HESSIAN; %NULL keeps every
 *   linear layer's
 * @n_bins: histogram bins; 0 picks 256
 * @n_outliers: outlier channels to list per layer; 0 picks 8
 * @dataset: (nullable): the calibration text's name, kept for provenance
 * @seed: the seed the windows were drawn with, kept for provenance
 *
 * Options of bl_calib_collect(). Zero-initialised options collect activation statistics only.
 */
typedef struct
{
  BlCalibFlags flags;
  const char *const *hessian_layers;
  int n_bins;
  int n_outliers;
  const char *dataset;
  guint64 seed;
} BlCalibOptions;

/**
 * BlCalibMoments:
 * @n: values seen
 * @mean: their mean
 * @variance: their population variance
 * @kurtosis: E[(x−μ)⁴]/σ⁴ (3 for a Gaussian; 0 when the variance is 0)
 * @absmax: max |x|
 * @rms: √E[x²]
 * @crest: @absmax / @rms (0 when @rms is 0)
 *
 * Summary statistics of a whole tensor (all tokens × channels, or all weights).
 */
typedef struct
{
  gint64 n;
  double mean;
  double variance;
  double kurtosis;
  double absmax;
  double rms;
  double crest;
} BlCalibMoments;

/**
 * BlCalibLayer:
 * @name: the layer (weight tensor) name, e.g. "model.layers.0.mlp.down_proj.weight"
 * @kind: the projection
 * @block: the transformer block, -1 for lm_head
 * @rows: output features
 * @cols: input features (the length of every per-channel array below)
 * @n_tokens: input rows X has had over the pass
 * @act: moments of all of X
 * @act_mean: (array length=cols): E[x_j]
 * @act_mean_abs: (array length=cols): E[|x_j|]
 * @act_mean_sq: (array length=cols): E[x_j²]
 * @act_absmax: (array length=cols): max |x_j|
 * @n_outliers: entries in @outlier_channels
 * @outlier_channels: (array length=n_outliers): input channels by decreasing @act_absmax
 * @hist_lo: the histogram's lower edge
 * @hist_hi: its upper edge
 * @n_bins: bins, each (@hist_hi − @hist_lo)/@n_bins wide
 * @hist: (array length=n_bins): counts per bin
 * @hist_underflow: values below @hist_lo
 * @hist_overflow: values at or above @hist_hi
 * @hessian: (nullable) (array): Σ_t x_t x_tᵀ, @cols × @cols row-major fp64, un-normalised
 *   (divide by @n_tokens for E[xxᵀ]); %NULL unless requested. Layers that read the same
 *   input (q/k/v, gate/up) share one matrix, so asking for one of them gives it to all
 * @weight: moments of the weight
 * @weight_col_absmax: (array length=cols): max_r |W_rj| per input column
 * @n_weight_outliers: entries in @weight_outlier_columns
 * @weight_outlier_columns: (array length=n_weight_outliers): columns by decreasing
 *   @weight_col_absmax
 *
 * The statistics of one linear layer. Owned by its #BlCalib; read-only.
 */
typedef struct
{
  const char *name;
  BlLayerKind kind;
  int block;
  int64_t rows;
  int64_t cols;
  int64_t n_tokens;

  BlCalibMoments act;
  const double *act_mean;
  const double *act_mean_abs;
  const double *act_mean_sq;
  const float *act_absmax;
  int n_outliers;
  const int *outlier_channels;

  double hist_lo;
  double hist_hi;
  int n_bins;
  const gint64 *hist;
  gint64 hist_underflow;
  gint64 hist_overflow;

  const double *hessian;

  BlCalibMoments weight;
  const float *weight_col_absmax;
  int n_weight_outliers;
  const int *weight_outlier_columns;
} BlCalibLayer;

/**
 * BlCalibBlock:
 * @block: the transformer block
 * @n_tokens: tokens seen
 * @mean_cos: (1/T)·Σ_t cos(h_in,t, h_out,t)
 * @lim: LIM = −@mean_cos (methods.md §11; higher means the block changes its input more)
 *
 * Block input/output statistics for LIM, collected with %BL_CALIB_BLOCK_IO.
 */
typedef struct
{
  int block;
  int64_t n_tokens;
  double mean_cos;
  double lim;
} BlCalibBlock;

/**
 * BlCalibProgressFunc:
 * @done: windows finished
 * @total: windows in the pass
 * @user_data: user data
 *
 * Called after each calibration window.
 */
typedef void (*BlCalibProgressFunc) (int      done,
                                     int      total,
                                     gpointer user_data);

typedef struct _BlCalib BlCalib;

GArray             *bl_calib_make_windows   (gint64                n_ids,
                                             int                   ctx,
                                             int                   n_windows,
                                             guint64               seed,
                                             GError              **error);

BlCalib            *bl_calib_collect        (BlModel              *model,
                                             BlBackend            *backend,
                                             const int32_t        *ids,
                                             gint64                n_ids,
                                             GArray               *windows,
                                             const BlCalibOptions *options,
                                             GCancellable         *cancellable,
                                             BlCalibProgressFunc   progress,
                                             gpointer              progress_data,
                                             GError              **error);
void                bl_calib_free           (BlCalib              *self);

guint               bl_calib_get_n_layers   (BlCalib              *self);
const BlCalibLayer *bl_calib_get_layer_at   (BlCalib              *self,
                                             guint                 index);
const BlCalibLayer *bl_calib_get_layer      (BlCalib              *self,
                                             const char           *layer_name);
guint               bl_calib_get_n_blocks   (BlCalib              *self);
const BlCalibBlock *bl_calib_get_block      (BlCalib              *self,
                                             guint                 block);
BlCalibFlags        bl_calib_get_flags      (BlCalib              *self);
void                bl_calib_get_provenance (BlCalib              *self,
                                             const char          **out_dataset,
                                             guint64              *out_seed,
                                             int                  *out_n_windows,
                                             int                  *out_ctx);
char               *bl_calib_provenance_to_json (BlCalib          *self);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (BlCalib, bl_calib_free)

G_END_DECLS
