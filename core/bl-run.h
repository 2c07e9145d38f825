/* bl-run.h: one perplexity evaluation, cancellable, with a progressive estimate
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <gio/gio.h>
#include <stdint.h>

#include "bl-engine.h"
#include "bl-kl.h"
#include "bl-ppl.h"
#include "bl-protocol.h"
#include "bl-quant-engine.h"
#include "bl-store.h"

G_BEGIN_DECLS

/**
 * BlRunOptions:
 * @protocol: how the id stream becomes scored windows
 * @ctx: window length in tokens
 * @stride: the hf-stride step (ignored by the other protocols)
 * @max_windows: keep the first K windows in file order (0 keeps all)
 * @seed: seed of the fixed pseudo-random evaluation order
 */
typedef struct
{
  BlProtocol protocol;
  int ctx;
  int stride;
  int max_windows;
  guint64 seed;
} BlRunOptions;

/**
 * BlRunProvenance:
 *
 * What a stored run records about where its numbers come from. Strings are borrowed
 * for the duration of bl_run_set_store().
 */
typedef struct
{
  const char *dataset_name;
  const char *dataset_path;
  const char *dataset_sha256;
  const char *dataset_kind;
  const char *backend;
  int n_threads;
} BlRunProvenance;

#define BL_TYPE_RUN (bl_run_get_type ())
G_DECLARE_FINAL_TYPE (BlRun, bl_run, BL, RUN, GObject)

BlRun          *bl_run_new              (BlModel             *model,
                                         BlEngine            *engine,
                                         const int32_t       *ids,
                                         gsize                n_ids,
                                         const BlRunOptions  *options,
                                         GError             **error);
void            bl_run_set_store        (BlRun               *self,
                                         BlStore             *store,
                                         const BlRunProvenance *provenance);
void            bl_run_set_quant_engine (BlRun               *self,
                                         BlQuantEngine       *quant_engine);
void            bl_run_set_kl           (BlRun               *self,
                                         int                  top_k);
gboolean        bl_run_execute          (BlRun               *self,
                                         GCancellable        *cancellable,
                                         GError             **error);
void            bl_run_execute_async    (BlRun               *self,
                                         GCancellable        *cancellable,
                                         GAsyncReadyCallback  callback,
                                         gpointer             user_data);
gboolean        bl_run_execute_finish   (BlRun               *self,
                                         GAsyncResult        *result,
                                         GError             **error);

guint           bl_run_get_n_windows    (BlRun               *self);
guint           bl_run_get_n_done       (BlRun               *self);
const BlPplStats *bl_run_get_stats      (BlRun               *self);
gint64          bl_run_get_n_scored     (BlRun               *self);
double          bl_run_get_wall_seconds (BlRun               *self);
double          bl_run_get_tokens_per_second (BlRun          *self);
gboolean        bl_run_get_kl_summary   (BlRun               *self,
                                         BlKlSummary         *out);
gboolean        bl_run_get_quant_size   (BlRun               *self,
                                         BlQuantSize         *out);
guint           bl_run_get_n_baseline_cached   (BlRun        *self);
guint           bl_run_get_n_baseline_computed (BlRun        *self);
/* The store's id of this run, or 0 when it is not stored. */
gint64          bl_run_get_store_id     (BlRun               *self);

G_END_DECLS
