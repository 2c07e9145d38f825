/* bl-run.c: one perplexity evaluation, cancellable, with a progressive estimate
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "bl-run.h"

#include <math.h>
#include <string.h>

#include "bl-error.h"

/**
 * SECTION:bl-run
 * @title: BlRun
 *
 * A BlRun turns a token id stream into the windows of an evaluation protocol, keeps the first
 * K of them in file order, and evaluates them in a fixed pseudo-random order (so that the
 * progressive estimate after a few windows is not biased towards the start of the text). After
 * every window it updates a #BlPplStats and emits #BlRun::window-done; the GUI shows the
 * progressive perplexity and its confidence interval from there. When a #BlStore is set, the
 * run, each window and the final result are recorded with their provenance; a failed or
 * cancelled run is recorded as such.
 *
 * A run of a quantized model (bl_run_set_quant_engine()) records its plan as JSON in the runs
 * row and its bits per weight in run_quant. With bl_run_set_kl() it also compares every window
 * with the full-precision model (bl-kl.h): the baseline of a window is read from the store
 * when it is cached there, and otherwise computed with a full-precision engine on the same
 * backend and cached at once, so an interrupted run keeps the baselines of its finished
 * windows and a rerun computes only the others. Such a run scores its windows from the full
 * logits (bl_engine_forward()) rather than bl_engine_nll().
 *
 * The engine is used from one thread at a time: a run must not share its #BlEngine with
 * another run that executes concurrently.
 */

struct _BlRun
{
  GObject parent_instance;

  /* Inputs */
  BlModel *model;
  BlEngine *engine;
  int32_t *ids;
  gsize n_ids;
  BlRunOptions options;
  int32_t bos_id;
  GArray *windows;           /* BlWindow, the selected ones in file order */
  guint *order;              /* evaluation order: indices into windows */

  /* Quantization and KL */
  BlQuantEngine *quant_engine;
  BlQuantSize quant_size;
  int top_k;                 /* 0: no KL */
  BlEngine *fp_engine;       /* the baseline's engine, made when a window is not cached */
  BlKlStats *kl_stats;
  guint n_baseline_cached;
  guint n_baseline_computed;

  /* Store */
  BlStore *store;
  char *dataset_name;
  char *dataset_path;
  char *dataset_sha256;
  char *dataset_kind;
  char *backend;
  int n_threads;
  gint64 store_id;

  /* Progress, written by the worker, read by anyone under @lock */
  GMutex lock;
  BlPplStats *stats;
  guint n_done;
  gint64 n_scored;
  double wall_seconds;
  gboolean executed;
};

G_DEFINE_FINAL_TYPE (BlRun, bl_run, G_TYPE_OBJECT)

enum {
  SIGNAL_WINDOW_DONE,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

static void
bl_run_finalize (GObject *object)
{
  BlRun *self = BL_RUN (object);

  g_clear_object (&self->model);
  g_clear_pointer (&self->ids, g_free);
  g_clear_pointer (&self->windows, g_array_unref);
  g_clear_pointer (&self->order, g_free);
  g_clear_pointer (&self->stats, bl_ppl_stats_free);
  g_clear_pointer (&self->dataset_name, g_free);
  g_clear_pointer (&self->dataset_path, g_free);
  g_clear_pointer (&self->dataset_sha256, g_free);
  g_clear_pointer (&self->dataset_kind, g_free);
  g_clear_pointer (&self->backend, g_free);
  g_clear_pointer (&self->fp_engine, bl_engine_free);
  g_clear_pointer (&self->kl_stats, bl_kl_stats_free);
  g_mutex_clear (&self->lock);

  G_OBJECT_CLASS (bl_run_parent_class)->finalize (object);
}

static void
bl_run_class_init (BlRunClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->finalize = bl_run_finalize;

  /**
   * BlRun::window-done:
   * @self: the run
   * @n_done: windows finished so far
   *
   * Emitted after each window, with the statistics already updated. For
   * bl_run_execute_async() it is emitted in the thread-default main context of the caller;
   * for bl_run_execute() in the calling thread.
   */
  signals[SIGNAL_WINDOW_DONE] =
    g_signal_new ("window-done", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 1, G_TYPE_UINT);
}

static void
bl_run_init (BlRun *self)
{
  g_mutex_init (&self->lock);
  self->stats = bl_ppl_stats_new ();
}

/**
 * bl_run_new:
 * @model: the model (its config gives BOS and the maximum context)
 * @engine: the engine to evaluate with; borrowed, and must outlive the run
 * @ids: the token ids of the whole text (BOS at the start when the tokenizer adds it)
 * @n_ids: number of ids
 * @options: protocol, context, stride, window count and seed
 * @error: return location for a #GError
 *
 * Makes the protocol's windows and the evaluation order. Fails when the context does not
 * fit the model or the text is shorter than one window.
 *
 * Returns: (transfer full): a new run, or %NULL
 */
BlRun *
bl_run_new (BlModel             *model,
            BlEngine            *engine,
            const int32_t       *ids,
            gsize                n_ids,
            const BlRunOptions  *options,
            GError             **error)
{
  g_autoptr(BlRun) self = NULL;
  g_autoptr(GArray) windows = NULL;
  BlTokenizer *tokenizer;
  gboolean add_bos;
  int max_tokens;

  g_return_val_if_fail (BL_IS_MODEL (model), NULL);
  g_return_val_if_fail (engine != NULL, NULL);
  g_return_val_if_fail (ids != NULL || n_ids == 0, NULL);
  g_return_val_if_fail (options != NULL, NULL);

  max_tokens = bl_engine_get_max_tokens (engine);
  if (options->ctx < 2 || options->ctx > max_tokens)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT,
                   "context of %d tokens is outside what the model supports (2 to %d, "
                   "max_position_embeddings)", options->ctx, max_tokens);
      return NULL;
    }
  if (options->max_windows < 0)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT,
                   "max-windows must be 0 (all) or positive, not %d", options->max_windows);
      return NULL;
    }

  tokenizer = bl_model_get_tokenizer (model);
  add_bos = tokenizer != NULL && bl_tokenizer_get_add_bos (tokenizer)
            && bl_tokenizer_get_bos_id (tokenizer) >= 0;

  windows = bl_protocol_make_windows (options->protocol, (gint64) n_ids, options->ctx,
                                      options->stride, add_bos, error);
  if (windows == NULL)
    return NULL;
  if (options->max_windows > 0)
    bl_windows_select (windows, options->max_windows);

  self = g_object_new (BL_TYPE_RUN, NULL);
  self->model = g_object_ref (model);
  self->engine = engine;
  self->ids = g_memdup2 (ids, n_ids * sizeof (int32_t));
  self->n_ids = n_ids;
  self->options = *options;
  self->bos_id = add_bos ? bl_tokenizer_get_bos_id (tokenizer) : -1;
  self->windows = g_steal_pointer (&windows);
  self->order = bl_windows_eval_order (self->windows->len, options->seed);

  return g_steal_pointer (&self);
}

/**
 * bl_run_set_store:
 * @self: a run
 * @store: (nullable): the store to record into; borrowed, must outlive the run
 * @provenance: where the text and the numbers come from
 *
 * Makes bl_run_execute() record the run, each window and the result in @store.
 */
void
bl_run_set_store (BlRun                 *self,
                  BlStore               *store,
                  const BlRunProvenance *provenance)
{
  g_return_if_fail (BL_IS_RUN (self));
  g_return_if_fail (store == NULL || provenance != NULL);

  self->store = store;
  if (store == NULL)
    return;

  g_free (self->dataset_name);
  self->dataset_name = g_strdup (provenance->dataset_name);
  g_free (self->dataset_path);
  self->dataset_path = g_strdup (provenance->dataset_path);
  g_free (self->dataset_sha256);
  self->dataset_sha256 = g_strdup (provenance->dataset_sha256);
  g_free (self->dataset_kind);
  self->dataset_kind = g_strdup (provenance->dataset_kind);
  g_free (self->backend);
  self->backend = g_strdup (provenance->backend);
  self->n_threads = provenance->n_threads;
}

static void store_finish (BlRun      *self,
                          const char *status);

/**
 * bl_run_set_quant_engine:
 * @self: a run that has not been executed yet
 * @quant_engine: the quantized engine whose engine the run was created with; borrowed, and
 *   must outlive the run
 *
 * Makes the run one of a quantized model: the stored run records the plan and its size, and
 * every window checks the engine's hooks for errors.
 */
void
bl_run_set_quant_engine (BlRun         *self,
                         BlQuantEngine *quant_engine)
{
  g_return_if_fail (BL_IS_RUN (self));
  g_return_if_fail (quant_engine != NULL);
  g_return_if_fail (bl_quant_engine_get_engine (quant_engine) == self->engine);
  g_return_if_fail (!self->executed);

  self->quant_engine = quant_engine;
  bl_quant_plan_size (bl_quant_engine_get_assignments (quant_engine), self->model,
                      &self->quant_size);
}

/**
 * bl_run_set_kl:
 * @self: a run that has not been executed yet
 * @top_k: baseline log-probabilities per position, 0 for %BL_KL_DEFAULT_TOP_K (capped at the
 *   vocabulary)
 *
 * Compares every window with the full-precision model: KL, top-1 agreement and Δp
 * (bl_run_get_kl_summary()). The baseline is cached in the run's store, when it has one.
 */
void
bl_run_set_kl (BlRun *self,
               int    top_k)
{
  g_return_if_fail (BL_IS_RUN (self));
  g_return_if_fail (top_k >= 0);
  g_return_if_fail (!self->executed);

  self->top_k = MIN (top_k > 0 ? top_k : BL_KL_DEFAULT_TOP_K,
                     bl_engine_get_vocab_size (self->engine));
  if (self->kl_stats == NULL)
    self->kl_stats = bl_kl_stats_new ();
}

static gboolean
store_begin (BlRun   *self,
             GError **error)
{
  BlTokenizer *tokenizer = bl_model_get_tokenizer (self->model);
  const BlModelConfig *config = bl_model_get_config (self->model);
  BlRunRecord rec = { 0 };
  g_autofree char *model_name = NULL;
  g_autofree char *plan_json = NULL;

  rec.model_fingerprint = bl_model_get_fingerprint (self->model);
  rec.model_path = bl_model_get_path (self->model);
  model_name = g_path_get_basename (rec.model_path);
  rec.model_name = model_name;
  rec.model_architecture = config->model_type;
  rec.model_n_params = bl_model_get_n_params (self->model);
  rec.dataset_sha256 = self->dataset_sha256;
  rec.dataset_name = self->dataset_name;
  rec.dataset_path = self->dataset_path;
  rec.dataset_kind = self->dataset_kind;
  rec.tokenizer_hash = tokenizer ? bl_tokenizer_get_hash (tokenizer) : "";
  rec.protocol = bl_protocol_to_string (self->options.protocol);
  rec.ctx = self->options.ctx;
  rec.stride = self->options.protocol == BL_PROTOCOL_HF_STRIDE ? self->options.stride : 0;
  rec.max_windows = self->options.max_windows;
  rec.n_windows = self->windows->len;
  rec.seed = self->options.seed;
  rec.backend = self->backend;
  rec.threads = self->n_threads;
  if (self->quant_engine != NULL)
    plan_json = bl_quant_plan_to_json (bl_quant_engine_get_plan (self->quant_engine));
  rec.plan_json = plan_json;

  self->store_id = bl_store_begin_run (self->store, &rec, error);
  if (self->store_id <= 0)
    return FALSE;
  if (self->quant_engine != NULL)
    {
      BlRunQuantRecord q = { 0 };

      q.linear_bits_per_weight = self->quant_size.linear_bits_per_weight;
      q.model_bits_per_weight = self->quant_size.model_bits_per_weight;
      q.model_bytes = self->quant_size.model_bytes;
      q.top_k = self->top_k;
      if (!bl_kl_store_begin_run (self->store, self->store_id, &q, error))
        {
          store_finish (self, "failed");
          return FALSE;
        }
    }
  return TRUE;
}

static void
store_finish (BlRun      *self,
              const char *status)
{
  g_autoptr(GError) error = NULL;
  BlRunResult res = { 0 };

  if (self->store == NULL || self->store_id <= 0)
    return;

  g_mutex_lock (&self->lock);
  res.n_windows_done = self->n_done;
  res.n_tokens = self->n_scored;
  res.mean_nll = bl_ppl_stats_get_mean_nll (self->stats);
  res.ppl = bl_ppl_stats_get_ppl (self->stats);
  if (!bl_ppl_stats_get_ppl_ci (self->stats, &res.ppl_ci_low, &res.ppl_ci_high))
    res.ppl_ci_low = res.ppl_ci_high = NAN;
  res.wall_seconds = self->wall_seconds;
  res.tokens_per_second = self->wall_seconds > 0 ? self->n_scored / self->wall_seconds : 0;
  g_mutex_unlock (&self->lock);

  /* The run's own error (or cancellation) is what the caller must see; a store failure
   * while recording it is reported as a warning-free message on the log. */
  if (self->quant_engine != NULL && self->kl_stats != NULL)
    {
      BlKlSummary summary;

      g_mutex_lock (&self->lock);
      bl_kl_stats_get_summary (self->kl_stats, &summary);
      g_mutex_unlock (&self->lock);
      if (!bl_kl_store_finish_run (self->store, self->store_id, &summary, &error))
        {
          g_message ("could not record the KL of run %" G_GINT64_FORMAT ": %s",
                     self->store_id, error->message);
          g_clear_error (&error);
        }
    }
  if (!bl_store_finish_run (self->store, self->store_id, status, &res, &error))
    g_message ("could not record the end of run %" G_GINT64_FORMAT ": %s",
               self->store_id, error->message);
}

typedef struct
{
  BlRun *run;
  guint n_done;
} WindowDone;

static gboolean
emit_window_done_idle (gpointer data)
{
  WindowDone *wd = data;

  g_signal_emit (wd->run, signals[SIGNAL_WINDOW_DONE], 0, wd->n_done);
  return G_SOURCE_REMOVE;
}

static void
window_done_free (gpointer data)
{
  WindowDone *wd = data;

  g_object_unref (wd->run);
  g_free (wd);
}

static void
kl_key (BlRun   *self,
        BlKlKey *key)
{
  BlTokenizer *tokenizer = bl_model_get_tokenizer (self->model);

  key->model_fingerprint = bl_model_get_fingerprint (self->model);
  key->tokenizer_hash = tokenizer ? bl_tokenizer_get_hash (tokenizer) : "";
  key->dataset_sha256 = self->dataset_sha256;
  key->dataset_kind = self->dataset_kind;
  key->protocol = bl_protocol_to_string (self->options.protocol);
  key->ctx = self->options.ctx;
  key->stride = self->options.protocol == BL_PROTOCOL_HF_STRIDE ? self->options.stride : 0;
  key->top_k = self->top_k;
}

/* The full-precision baseline of window @index: from the store, or computed (and cached). */
static BlKlWindow *
baseline_window (BlRun          *self,
                 const BlWindow *w,
                 guint           index,
                 const int32_t  *window_ids,
                 float          *logits,
                 GCancellable   *cancellable,
                 GError        **error)
{
  g_autoptr(GError) local_error = NULL;
  BlKlWindow *base = NULL;
  BlKlKey key;

  kl_key (self, &key);
  if (self->store != NULL)
    {
      base = bl_kl_store_load (self->store, &key, w, index, &local_error);
      if (local_error != NULL)
        {
          g_propagate_error (error, g_steal_pointer (&local_error));
          return NULL;
        }
      if (base != NULL)
        {
          self->n_baseline_cached++;
          return base;
        }
    }

  if (self->fp_engine == NULL
      && (self->fp_engine = bl_engine_new (self->model, bl_engine_get_backend (self->engine),
                                           NULL, error)) == NULL)
    return NULL;
  if (!bl_engine_forward (self->fp_engine, window_ids, w->length - 1, logits, cancellable, error))
    return NULL;
  base = bl_kl_window_new (logits, bl_engine_get_vocab_size (self->engine), window_ids, w, index,
                           self->top_k);
  if (self->store != NULL && !bl_kl_store_save (self->store, &key, base, error))
    {
      bl_kl_window_free (base);
      return NULL;
    }
  self->n_baseline_computed++;
  return base;
}

/* Scores window @index from the full logits and compares it with the baseline. */
static gboolean
kl_window (BlRun            *self,
           const BlWindow   *w,
           guint             index,
           const int32_t    *window_ids,
           float            *logits,
           BlKlWindowResult *out,
           GCancellable     *cancellable,
           GError          **error)
{
  g_autoptr(BlKlWindow) base = NULL;

  base = baseline_window (self, w, index, window_ids, logits, cancellable, error);
  if (base == NULL)
    return FALSE;
  if (!bl_engine_forward (self->engine, window_ids, w->length - 1, logits, cancellable, error))
    return FALSE;
  if (self->quant_engine != NULL && !bl_quant_engine_check (self->quant_engine, error))
    return FALSE;
  bl_kl_window_compare (base, logits, bl_engine_get_vocab_size (self->engine), window_ids, out);
  return TRUE;
}

static gboolean
execute (BlRun        *self,
         GMainContext *emit_context,
         GCancellable *cancellable,
         GError      **error)
{
  g_autofree int32_t *window_ids = NULL;
  g_autofree double *nll = NULL;
  g_autofree float *logits = NULL;
  gint64 start_us = g_get_monotonic_time ();
  int ctx = self->options.ctx;

  g_return_val_if_fail (!self->executed, FALSE);
  self->executed = TRUE;

  if (self->store != NULL && !store_begin (self, error))
    return FALSE;

  window_ids = g_new (int32_t, ctx);
  nll = g_new (double, ctx);
  if (self->top_k > 0)
    logits = g_new (float, (gsize) ctx * bl_engine_get_vocab_size (self->engine));

  for (guint k = 0; k < self->windows->len; k++)
    {
      const BlWindow *w = &g_array_index (self->windows, BlWindow, self->order[k]);
      int n_targets = w->length - w->first_target;
      double sum = 0.0;
      g_autoptr(GError) local_error = NULL;
      BlKlWindowResult kl = { 0 };
      gboolean ok;

      memcpy (window_ids, self->ids + w->start, w->length * sizeof (int32_t));
      if (w->bos_first && self->bos_id >= 0)
        window_ids[0] = self->bos_id;

      if (self->top_k > 0)
        ok = kl_window (self, w, self->order[k], window_ids, logits, &kl, cancellable,
                        &local_error);
      else
        ok = bl_engine_nll (self->engine, window_ids, w->length, w->first_target, nll,
                            cancellable, &local_error)
             && (self->quant_engine == NULL
                 || bl_quant_engine_check (self->quant_engine, &local_error));
      if (!ok)
        {
          self->wall_seconds = (g_get_monotonic_time () - start_us) / 1e6;
          store_finish (self, g_error_matches (local_error, G_IO_ERROR, G_IO_ERROR_CANCELLED)
                              ? "cancelled" : "failed");
          g_propagate_error (error, g_steal_pointer (&local_error));
          return FALSE;
        }

      if (self->top_k > 0)
        sum = kl.sum_nll;
      else
        for (int j = 0; j < n_targets; j++)
          sum += nll[j];

      g_mutex_lock (&self->lock);
      bl_ppl_stats_add_window (self->stats, sum, n_targets);
      if (self->top_k > 0)
        bl_kl_stats_add_window (self->kl_stats, &kl);
      self->n_done++;
      self->n_scored += n_targets;
      self->wall_seconds = (g_get_monotonic_time () - start_us) / 1e6;
      g_mutex_unlock (&self->lock);

      if (self->store != NULL
          && ((self->top_k > 0 && self->quant_engine != NULL
               && !bl_kl_store_add_run_window (self->store, self->store_id, self->order[k], &kl,
                                               &local_error))
              || !bl_store_add_window (self->store, self->store_id, self->order[k], w->start,
                                       n_targets, sum, &local_error)))
        {
          store_finish (self, "failed");
          g_propagate_error (error, g_steal_pointer (&local_error));
          return FALSE;
        }

      if (emit_context != NULL)
        {
          WindowDone *wd = g_new (WindowDone, 1);

          wd->run = g_object_ref (self);
          wd->n_done = k + 1;
          g_main_context_invoke_full (emit_context, G_PRIORITY_DEFAULT,
                                      emit_window_done_idle, wd, window_done_free);
        }
      else
        g_signal_emit (self, signals[SIGNAL_WINDOW_DONE], 0, k + 1);
    }

  store_finish (self, "finished");
  return TRUE;
}

/**
 * bl_run_execute:
 * @self: a run that has not been executed yet
 * @cancellable: (nullable): checked between layers of every window
 * @error: return location for a #GError
 *
 * Evaluates every selected window, in the run's fixed order, in the calling thread.
 *
 * Returns: %TRUE when every window was evaluated
 */
gboolean
bl_run_execute (BlRun        *self,
                GCancellable *cancellable,
                GError      **error)
{
  g_return_val_if_fail (BL_IS_RUN (self), FALSE);

  return execute (self, NULL, cancellable, error);
}

static void
execute_thread (GTask        *task,
                gpointer      source_object,
                gpointer      task_data,
                GCancellable *cancellable)
{
  BlRun *self = source_object;
  GMainContext *context = task_data;
  GError *error = NULL;

  if (execute (self, context, cancellable, &error))
    g_task_return_boolean (task, TRUE);
  else
    g_task_return_error (task, error);
}

/**
 * bl_run_execute_async:
 * @self: a run that has not been executed yet
 * @cancellable: (nullable): a #GCancellable
 * @callback: called in the caller's thread-default main context when done
 * @user_data: data for @callback
 *
 * Evaluates the run in a worker thread. #BlRun::window-done is emitted in the caller's
 * thread-default main context after every window.
 */
void
bl_run_execute_async (BlRun               *self,
                      GCancellable        *cancellable,
                      GAsyncReadyCallback  callback,
                      gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;

  g_return_if_fail (BL_IS_RUN (self));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, bl_run_execute_async);
  g_task_set_task_data (task, g_main_context_ref_thread_default (),
                        (GDestroyNotify) g_main_context_unref);
  /* The error is what tells the caller; a cancelled task must still run to record it. */
  g_task_set_return_on_cancel (task, FALSE);
  g_task_run_in_thread (task, execute_thread);
}

/**
 * bl_run_execute_finish:
 * @self: a run
 * @result: the #GAsyncResult
 * @error: return location for a #GError (%G_IO_ERROR_CANCELLED when cancelled)
 *
 * Returns: %TRUE when every window was evaluated
 */
gboolean
bl_run_execute_finish (BlRun         *self,
                       GAsyncResult  *result,
                       GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

guint
bl_run_get_n_windows (BlRun *self)
{
  g_return_val_if_fail (BL_IS_RUN (self), 0);
  return self->windows->len;
}

guint
bl_run_get_n_done (BlRun *self)
{
  guint n;

  g_return_val_if_fail (BL_IS_RUN (self), 0);
  g_mutex_lock (&self->lock);
  n = self->n_done;
  g_mutex_unlock (&self->lock);
  return n;
}

/**
 * bl_run_get_stats:
 * @self: a run
 *
 * The statistics so far. Read them from the thread that handles #BlRun::window-done, or
 * after the run has finished; the worker thread updates them between windows.
 *
 * Returns: (transfer none): the run's perplexity statistics
 */
const BlPplStats *
bl_run_get_stats (BlRun *self)
{
  g_return_val_if_fail (BL_IS_RUN (self), NULL);
  return self->stats;
}

gint64
bl_run_get_n_scored (BlRun *self)
{
  gint64 n;

  g_return_val_if_fail (BL_IS_RUN (self), 0);
  g_mutex_lock (&self->lock);
  n = self->n_scored;
  g_mutex_unlock (&self->lock);
  return n;
}

double
bl_run_get_wall_seconds (BlRun *self)
{
  double s;

  g_return_val_if_fail (BL_IS_RUN (self), 0);
  g_mutex_lock (&self->lock);
  s = self->wall_seconds;
  g_mutex_unlock (&self->lock);
  return s;
}

/**
 * bl_run_get_tokens_per_second:
 * @self: a run
 *
 * Scored tokens per second of wall time so far. Under protocols that score only part of a
 * window (llamacpp, hf-stride) this is lower than the forward throughput.
 *
 * Returns: tokens per second, or 0 before the first window
 */
double
bl_run_get_tokens_per_second (BlRun *self)
{
  double tps;

  g_return_val_if_fail (BL_IS_RUN (self), 0);
  g_mutex_lock (&self->lock);
  tps = self->wall_seconds > 0 ? self->n_scored / self->wall_seconds : 0;
  g_mutex_unlock (&self->lock);
  return tps;
}

gint64
bl_run_get_store_id (BlRun *self)
{
  g_return_val_if_fail (BL_IS_RUN (self), 0);
  return self->store_id;
}

/**
 * bl_run_get_kl_summary:
 * @self: a run
 * @out: (out caller-allocates): the comparison with the baseline so far
 *
 * Returns: %FALSE when the run measures no KL (bl_run_set_kl())
 */
gboolean
bl_run_get_kl_summary (BlRun       *self,
                       BlKlSummary *out)
{
  g_return_val_if_fail (BL_IS_RUN (self), FALSE);
  g_return_val_if_fail (out != NULL, FALSE);

  if (self->kl_stats == NULL)
    return FALSE;
  g_mutex_lock (&self->lock);
  bl_kl_stats_get_summary (self->kl_stats, out);
  g_mutex_unlock (&self->lock);
  return TRUE;
}

/**
 * bl_run_get_quant_size:
 * @self: a run
 * @out: (out caller-allocates): the size of the model under the run's plan
 *
 * Returns: %FALSE when the run has no quantized engine
 */
gboolean
bl_run_get_quant_size (BlRun       *self,
                       BlQuantSize *out)
{
  g_return_val_if_fail (BL_IS_RUN (self), FALSE);
  g_return_val_if_fail (out != NULL, FALSE);

  if (self->quant_engine == NULL)
    return FALSE;
  *out = self->quant_size;
  return TRUE;
}

/**
 * bl_run_get_n_baseline_cached:
 * @self: a run
 *
 * Returns: windows whose KL baseline the store already held; read after the run ends
 */
guint
bl_run_get_n_baseline_cached (BlRun *self)
{
  g_return_val_if_fail (BL_IS_RUN (self), 0);
  return self->n_baseline_cached;
}

/**
 * bl_run_get_n_baseline_computed:
 * @self: a run
 *
 * Returns: windows whose KL baseline this run computed; read after the run ends
 */
guint
bl_run_get_n_baseline_computed (BlRun *self)
{
  g_return_val_if_fail (BL_IS_RUN (self), 0);
  return self->n_baseline_computed;
}
