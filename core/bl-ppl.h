/* bl-ppl.h: perplexity with a confidence interval, accumulated window by window
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <glib-object.h>

G_BEGIN_DECLS

/**
 * BlPplStats:
 *
 * Per-window sums of negative log-likelihood (nats) and scored token counts, and the
 * perplexity they give so far. The windows are the independent units of the estimate
 * (tokens inside one window share context and are correlated), see bl_ppl_stats_get_nll_ci().
 */
typedef struct _BlPplStats BlPplStats;

#define BL_TYPE_PPL_STATS (bl_ppl_stats_get_type ())
GType       bl_ppl_stats_get_type      (void) G_GNUC_CONST;

BlPplStats *bl_ppl_stats_new           (void);
BlPplStats *bl_ppl_stats_copy          (const BlPplStats *stats);
void        bl_ppl_stats_free          (BlPplStats       *stats);

void        bl_ppl_stats_add_window    (BlPplStats       *stats,
                                        double            sum_nll,
                                        gint64            n_tokens);

guint       bl_ppl_stats_get_n_windows (const BlPplStats *stats);
gint64      bl_ppl_stats_get_n_tokens  (const BlPplStats *stats);
double      bl_ppl_stats_get_sum_nll   (const BlPplStats *stats);
double      bl_ppl_stats_get_mean_nll  (const BlPplStats *stats);
double      bl_ppl_stats_get_ppl       (const BlPplStats *stats);
double      bl_ppl_stats_get_std_error (const BlPplStats *stats);
gboolean    bl_ppl_stats_get_nll_ci    (const BlPplStats *stats,
                                        double           *low,
                                        double           *high);
gboolean    bl_ppl_stats_get_ppl_ci    (const BlPplStats *stats,
                                        double           *low,
                                        double           *high);

double      bl_student_t_quantile      (double            p,
                                        double            df);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (BlPplStats, bl_ppl_stats_free)

G_END_DECLS
