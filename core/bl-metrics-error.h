/* bl-metrics-error.h: quantization error metrics and the INT-vs-FP crest-factor theory
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <glib.h>

#include "bl-format.h"

G_BEGIN_DECLS

/**
 * BlErrorStats:
 * @n: elements
 * @sum_sq_ref: Σ x²
 * @sum_sq_err: Σ (x − q)²
 * @sum_sq_approx: Σ q²
 * @sum_dot: Σ x·q
 * @max_abs_err: max |x − q|
 *
 * Running sums (in double) of a reference x against its quantized q. Several tensors merge by
 * adding them, which is how totals over a model are formed.
 */
typedef struct
{
  gint64 n;
  double sum_sq_ref;
  double sum_sq_err;
  double sum_sq_approx;
  double sum_dot;
  double max_abs_err;
} BlErrorStats;

void    bl_error_stats_init       (BlErrorStats       *stats);
void    bl_error_stats_add        (BlErrorStats       *stats,
                                   const float        *reference,
                                   const float        *approx,
                                   gint64              n);
void    bl_error_stats_merge      (BlErrorStats       *into,
                                   const BlErrorStats *from);
double  bl_error_stats_mse        (const BlErrorStats *stats);
double  bl_error_stats_qsnr_db    (const BlErrorStats *stats);
double  bl_error_stats_cosine     (const BlErrorStats *stats);

double  bl_metrics_crest_factor   (const float        *x,
                                   gint64              n);
void    bl_metrics_block_crest    (const float        *x,
                                   gint64              n_rows,
                                   gint64              n_cols,
                                   gint64              block,
                                   double             *out_mean,
                                   double             *out_q3);
double  bl_metrics_kurtosis       (const float        *x,
                                   gint64              n);

/**
 * BlTheoryScaling:
 * @BL_THEORY_MX: a UE8M0 power-of-two block scale, ρ = 1.5 (OCP MX)
 * @BL_THEORY_NV: an E4M3 block scale over 16 elements, ρ = 1.05 (NVFP4/NVINT4)
 *
 * The block-scale model of the INT-vs-FP paper's theoretical QSNR (methods.md §2).
 */
typedef enum
{
  BL_THEORY_MX,
  BL_THEORY_NV,
} BlTheoryScaling;

double  bl_theory_qsnr_int        (double             kappa,
                                   int                bits,
                                   BlTheoryScaling    scaling);
double  bl_theory_qsnr_fp         (double             kappa,
                                   int                ebits,
                                   int                mbits,
                                   BlTheoryScaling    scaling);
double  bl_theory_crossover       (int                int_bits,
                                   int                ebits,
                                   int                mbits,
                                   BlTheoryScaling    scaling);
gboolean bl_theory_qsnr_for_spec  (const BlFormatSpec *spec,
                                   double             kappa,
                                   double            *out_qsnr_db);

G_END_DECLS
