/* bl-sweep.h: Pareto sweeps over bit budgets, sharded, resumable and mergeable
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * A sweep is a fixed, ordered list of points (bl_sweep_make_points()): one allocated plan
 * per bit budget and one uniform plan per menu format. Shard i of n measures the points
 * whose index is i modulo n and stores each one in its own SQLite file as soon as it is
 * measured, in its own transaction, so a killed shard re-run skips what it finished.
 * bl_sweep_merge() joins shard files into one after checking that they belong to the same
 * sweep (same configuration and model) and agree on every point they share. Any process
 * launcher can run the shards (a Slurm job array runs `--shard $SLURM_ARRAY_TASK_ID/N`).
 */
#pragma once

#include <gio/gio.h>

#include "bl-allocator.h"

G_BEGIN_DECLS

/**
 * BlSweepPoint:
 * @key: the point's identity within the sweep ("alloc:kl:4", "uniform:int4:g32")
 * @index: its position in the sweep's order, which decides its shard
 * @kind: "allocated" or "uniform"
 * @label: what a table shows
 * @target_bits: the average bits per weight asked for (the format's own for a uniform point)
 * @bits_per_weight: the plan's bits per weight over the allocated layers, scales included
 * @total_bits: the plan's bits over those layers
 * @predicted_loss: the allocator's summed predicted loss
 * @plan_json: the plan (docs/plan-schema.md), one rule per layer
 * @measured: whether the measurement fields hold a measurement
 * @kl: mean KL against the full-precision model (nats/token)
 * @kl_ci_low: lower end of its 95% interval (NaN when unknown)
 * @kl_ci_high: upper end
 * @top1: top-1 agreement
 * @nll: mean NLL (nats/token)
 * @base_nll: the full-precision mean NLL
 * @n_tokens: scored tokens
 * @wall_seconds: time the measurement took
 * @shard: the shard that measured it ("i/n")
 *
 * One point of a sweep. Strings are owned.
 */
typedef struct
{
  char *key;
  int index;
  char *kind;
  char *label;
  double target_bits;
  double bits_per_weight;
  double total_bits;
  double predicted_loss;
  char *plan_json;
  gboolean measured;
  double kl;
  double kl_ci_low;
  double kl_ci_high;
  double top1;
  double nll;
  double base_nll;
  gint64 n_tokens;
  double wall_seconds;
  char *shard;
} BlSweepPoint;

void          bl_sweep_point_free      (BlSweepPoint *point);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BlSweepPoint, bl_sweep_point_free)

GPtrArray    *bl_sweep_make_points     (BlAllocProblem   *problem,
                                        const double     *params,
                                        const char       *objective,
                                        const double     *budgets,
                                        guint             n_budgets,
                                        GError          **error);

gboolean      bl_sweep_parse_shard     (const char       *str,
                                        guint            *out_index,
                                        guint            *out_count,
                                        GError          **error);

/**
 * BlSweepMeasureFunc:
 * @point: the point; fill its measurement fields
 * @user_data: user data
 * @cancellable: (nullable): a cancellable
 * @error: return location for an error
 *
 * Measures one point's plan.
 *
 * Returns: whether the point was measured
 */
typedef gboolean (*BlSweepMeasureFunc) (BlSweepPoint  *point,
                                        gpointer       user_data,
                                        GCancellable  *cancellable,
                                        GError       **error);

/**
 * BlSweepProgressFunc:
 * @point: the point just measured, or skipped because the file has it
 * @skipped: whether it was skipped
 * @done: points of this shard handled so far
 * @total: points of this shard
 * @user_data: user data
 */
typedef void (*BlSweepProgressFunc) (const BlSweepPoint *point,
                                     gboolean            skipped,
                                     guint               done,
                                     guint               total,
                                     gpointer            user_data);

typedef struct _BlSweep BlSweep;

BlSweep      *bl_sweep_open            (const char          *path,
                                        const char          *config_json,
                                        const char          *model_fingerprint,
                                        GError             **error);
BlSweep      *bl_sweep_open_existing   (const char          *path,
                                        GError             **error);
void          bl_sweep_close           (BlSweep             *self);
const char   *bl_sweep_get_config      (BlSweep             *self);
const char   *bl_sweep_get_model_fingerprint (BlSweep       *self);
gboolean      bl_sweep_has_point       (BlSweep             *self,
                                        const char          *key,
                                        GError             **error);
gboolean      bl_sweep_add_point       (BlSweep             *self,
                                        const BlSweepPoint  *point,
                                        GError             **error);
GPtrArray    *bl_sweep_list_points     (BlSweep             *self,
                                        GError             **error);
gboolean      bl_sweep_run             (BlSweep             *self,
                                        GPtrArray           *points,
                                        guint                shard_index,
                                        guint                shard_count,
                                        BlSweepMeasureFunc   measure,
                                        gpointer             measure_data,
                                        BlSweepProgressFunc  progress,
                                        gpointer             progress_data,
                                        GCancellable        *cancellable,
                                        GError             **error);
gboolean      bl_sweep_merge           (const char          *out_path,
                                        const char * const  *inputs,
                                        guint               *out_n_points,
                                        GError             **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (BlSweep, bl_sweep_close)

G_END_DECLS
