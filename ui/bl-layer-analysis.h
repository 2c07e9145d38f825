/* bl-layer-analysis.h: the data behind the distribution view of one layer
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <gio/gio.h>

#include "bitlens.h"
#include "bl-metrics-error.h"

G_BEGIN_DECLS

/**
 * BlGroupPick:
 * @BL_GROUP_PICK_TYPICAL: the group whose absmax is the median over all groups
 * @BL_GROUP_PICK_WIDEST: the group with the largest absmax
 * @BL_GROUP_PICK_INDEX: the group given by index
 *
 * Which scale group (block, channel or the tensor) the representable grid is drawn for.
 */
typedef enum
{
  BL_GROUP_PICK_TYPICAL,
  BL_GROUP_PICK_WIDEST,
  BL_GROUP_PICK_INDEX,
} BlGroupPick;

/**
 * BlAnalysisFlags:
 * @BL_ANALYSIS_ERROR: the error of the spec on the weight (always computed)
 * @BL_ANALYSIS_HISTOGRAMS: weight histograms before and after quantization
 * @BL_ANALYSIS_GRID: the representable values for the picked group
 * @BL_ANALYSIS_SHAPE_STATS: crest factor, kurtosis and the INT-vs-FP verdict
 * @BL_ANALYSIS_ALL: everything
 */
typedef enum
{
  BL_ANALYSIS_ERROR       = 0,
  BL_ANALYSIS_HISTOGRAMS  = 1 << 0,
  BL_ANALYSIS_GRID        = 1 << 1,
  BL_ANALYSIS_SHAPE_STATS = 1 << 2,
  BL_ANALYSIS_ALL         = 0x7,
} BlAnalysisFlags;

/**
 * BlLayerAnalysis:
 * @layer_name: the layer
 * @spec: (nullable): the weight spec analysed, %NULL for the unquantized weight
 * @rows: output features
 * @cols: input features
 * @bpw: exact bits per weight for this shape (the dtype width when @spec is %NULL)
 * @error: the spec's error against the weight (zero when @spec is %NULL)
 * @hist_lo: left edge of the histograms (−max|w|)
 * @hist_hi: right edge (+max|w|)
 * @n_bins: bins of each histogram
 * @hist: (array length=n_bins) (nullable): weight counts
 * @hist_quant: (array length=n_bins) (nullable): counts after quantization
 * @n_levels: entries of @levels
 * @levels: (array length=n_levels) (nullable): the representable values for the picked
 *   group, increasing
 * @n_groups: scale groups in the tensor
 * @group_index: the picked group (row-major over rows, then groups of a row)
 * @group_row: its row
 * @group_col: its first column
 * @group_len: its length
 * @group_absmax: its max |w|
 * @crest: max|w| / rms(w) over the tensor
 * @kurtosis: Pearson kurtosis of w (3 for a Gaussian)
 * @theory_block: the block length of the INT-vs-FP model (32 MX, 16 NV); 0 when not applied
 * @block_crest: mean crest factor over @theory_block blocks
 * @crossover: the crest factor where the INT and FP curves cross (NaN: none)
 * @theory_int_db: predicted QSNR of the INT format at @block_crest
 * @theory_fp_db: predicted QSNR of the FP format at @block_crest
 * @int_name: the INT side of the comparison, e.g. "MXINT4"
 * @fp_name: the FP side, e.g. "MXFP4"
 *
 * What the distribution view draws. Plain data, owned by the caller.
 */
typedef struct
{
  char *layer_name;
  char *spec;
  gint64 rows;
  gint64 cols;
  double bpw;
  BlErrorStats error;
  double hist_lo;
  double hist_hi;
  guint n_bins;
  double *hist;
  double *hist_quant;
  guint n_levels;
  double *levels;
  gint64 n_groups;
  gint64 group_index;
  gint64 group_row;
  gint64 group_col;
  gint64 group_len;
  double group_absmax;
  double crest;
  double kurtosis;
  int theory_block;
  double block_crest;
  double crossover;
  double theory_int_db;
  double theory_fp_db;
  const char *int_name;
  const char *fp_name;
} BlLayerAnalysis;

BlLayerAnalysis *bl_layer_analysis_compute        (BlLayer             *layer,
                                                   const char          *spec,
                                                   BlAnalysisFlags      flags,
                                                   BlGroupPick          pick,
                                                   gint64               group_index,
                                                   GCancellable        *cancellable,
                                                   GError             **error);
void             bl_layer_analysis_compute_async  (BlLayer             *layer,
                                                   const char          *spec,
                                                   BlAnalysisFlags      flags,
                                                   BlGroupPick          pick,
                                                   gint64               group_index,
                                                   GCancellable        *cancellable,
                                                   GAsyncReadyCallback  callback,
                                                   gpointer             user_data);
BlLayerAnalysis *bl_layer_analysis_compute_finish (GAsyncResult        *result,
                                                   GError             **error);
void             bl_layer_analysis_free           (BlLayerAnalysis     *self);
char            *bl_layer_analysis_verdict        (const BlLayerAnalysis *self);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (BlLayerAnalysis, bl_layer_analysis_free)

G_END_DECLS
