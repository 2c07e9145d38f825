/* bl-measurement.c: the live perplexity measurement of the plan being edited
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "bl-measurement.h"

#include "bl-application.h"

#include <math.h>

#include "bl-quant-engine.h"

/**
 * SECTION:bl-measurement
 * @title: BlMeasurement
 *
 * Measures the perplexity of the model under one plan on the evaluation text, and restarts
 * on every change: bl_measurement_start() cancels the measurement in flight and begins
 * another. A worker thread moves one #BlQuantEngine to the plan (which quantizes again only
 * the layers whose assignment changed, bl_quant_engine_set_plan()) and evaluates the windows
 * with a #BlRun in its fixed random order; after every window the properties change in the
 * main context, so the GUI shows a number within a second and watches its confidence
 * interval shrink. Nothing here blocks the main loop.
 *
 * The engine is shared by successive measurements: a worker holds it (a mutex) from the
 * plan change to the end of its run, and a superseded measurement stops at its next
 * cancellation check, so the next one waits at most one layer. Late signals of a superseded
 * measurement are ignored.
 *
 * Every window is also compared with the full-precision model (KL, top-1 agreement,
 * bl_run_set_kl()), whose logits the store caches, and every measurement is recorded in
 * the store with its plan (bl_run_set_quant_engine()), so the Pareto view can show it later.
 *
 * Calibration, for the plans that need it (static activation ranges, data-aware algorithms),
 * reads windows of the evaluation text chosen by the plan's calibration seed.
 *
 * The backend is the user's preference (bl_measurement_set_backend(), the "backend" setting):
 * "auto" is bl_backend_new()'s own choice (CUDA when it starts, the CPU otherwise). When
 * "cuda" cannot start, the measurement still runs, on the CPU, and
 * #BlMeasurement:backend-message says why, so that the window can tell the user.
 */

/* The quantized engine, shared by the measurements of one #BlMeasurement. */
typedef struct
{
  gatomicrefcount ref_count;
  GMutex lock;               /* held by the worker that uses the engine */
  char *preference;          /* "cpu", "cuda" or "auto", for bl_backend_new() */
  BlBackend *backend;
  char *fallback;            /* why @backend is not the preferred one, or NULL */
  BlQuantEngine *engine;
  gpointer active_job;       /* the Job holding @lock, for progress reports */
} EngineSlot;

typedef struct
{
  gatomicrefcount ref_count;
  BlMeasurement *owner;      /* borrowed; valid while the job is owner->job */
  GMainContext *context;
  BlModel *model;
  BlPlanSnapshot *snapshot;
  BlQuantPlan *plan;
  EngineSlot *slot;
  GArray *ids;
  BlRunOptions options;
  BlStore *store;
  BlRunProvenance prov;
  char *prov_strings[4];
  int n_threads;
  GCancellable *cancellable;
} Job;

struct _BlMeasurement
{
  GObject parent_instance;

  /* Inputs */
  BlModel *model;
  int n_threads;
  char *backend_preference;
  GArray *ids;
  char *text_name;
  char *text_path;
  char *text_sha256;
  char *text_kind;
  BlRunOptions options;
  BlStore *store;
  EngineSlot *slot;

  /* The measurement in flight */
  Job *job;
  BlMeasurementState state;
  BlPlanSnapshot *plan;
  guint n_done;
  guint n_windows;
  double ppl;
  double ppl_low;
  double ppl_high;
  double tokens_per_second;
  gboolean have_kl;
  BlKlSummary kl;
  char *message;
  char *stage;

  /* The backend of the engine, once a worker has created it */
  char *backend_name;
  char *backend_description;
  char *backend_message;
};

G_DEFINE_FINAL_TYPE (BlMeasurement, bl_measurement, G_TYPE_OBJECT)

G_DEFINE_ENUM_TYPE (BlMeasurementState, bl_measurement_state,
  G_DEFINE_ENUM_VALUE (BL_MEASUREMENT_IDLE, "idle"),
  G_DEFINE_ENUM_VALUE (BL_MEASUREMENT_PREPARING, "preparing"),
  G_DEFINE_ENUM_VALUE (BL_MEASUREMENT_RUNNING, "running"),
  G_DEFINE_ENUM_VALUE (BL_MEASUREMENT_FINISHED, "finished"),
  G_DEFINE_ENUM_VALUE (BL_MEASUREMENT_FAILED, "failed"))

enum {
  PROP_0,
  PROP_STATE,
  PROP_N_DONE,
  PROP_N_WINDOWS,
  PROP_PPL,
  PROP_MESSAGE,
  PROP_BACKEND_NAME,
  PROP_BACKEND_MESSAGE,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

enum {
  SIGNAL_PROGRESS,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

static EngineSlot *
engine_slot_new (const char *preference)
{
  EngineSlot *slot = g_new0 (EngineSlot, 1);

  g_atomic_ref_count_init (&slot->ref_count);
  slot->preference = g_strdup (preference);
  g_mutex_init (&slot->lock);
  return slot;
}

static EngineSlot *
engine_slot_ref (EngineSlot *slot)
{
  g_atomic_ref_count_inc (&slot->ref_count);
  return slot;
}

static void
engine_slot_unref (EngineSlot *slot)
{
  if (!g_atomic_ref_count_dec (&slot->ref_count))
    return;
  g_clear_pointer (&slot->engine, bl_quant_engine_free);
  g_clear_pointer (&slot->backend, bl_backend_free);
  g_free (slot->preference);
  g_free (slot->fallback);
  g_mutex_clear (&slot->lock);
  g_free (slot);
}

static Job *
job_ref (Job *job)
{
  g_atomic_ref_count_inc (&job->ref_count);
  return job;
}

static void
job_unref (Job *job)
{
  if (!g_atomic_ref_count_dec (&job->ref_count))
    return;
  g_clear_pointer (&job->context, g_main_context_unref);
  g_clear_object (&job->model);
  g_clear_pointer (&job->snapshot, bl_plan_snapshot_unref);
  g_clear_object (&job->plan);
  g_clear_pointer (&job->slot, engine_slot_unref);
  g_clear_pointer (&job->ids, g_array_unref);
  g_clear_object (&job->store);
  for (guint i = 0; i < G_N_ELEMENTS (job->prov_strings); i++)
    g_free (job->prov_strings[i]);
  g_clear_object (&job->cancellable);
  g_free (job);
}

static void
bl_measurement_dispose (GObject *object)
{
  BlMeasurement *self = BL_MEASUREMENT (object);

  bl_measurement_cancel (self);

  G_OBJECT_CLASS (bl_measurement_parent_class)->dispose (object);
}

static void
bl_measurement_finalize (GObject *object)
{
  BlMeasurement *self = BL_MEASUREMENT (object);

  g_clear_object (&self->model);
  g_clear_pointer (&self->ids, g_array_unref);
  g_clear_pointer (&self->text_name, g_free);
  g_clear_pointer (&self->text_path, g_free);
  g_clear_pointer (&self->text_sha256, g_free);
  g_clear_pointer (&self->text_kind, g_free);
  g_clear_object (&self->store);
  g_clear_pointer (&self->plan, bl_plan_snapshot_unref);
  g_clear_pointer (&self->message, g_free);
  g_clear_pointer (&self->stage, g_free);
  g_clear_pointer (&self->slot, engine_slot_unref);
  g_clear_pointer (&self->backend_preference, g_free);
  g_clear_pointer (&self->backend_name, g_free);
  g_clear_pointer (&self->backend_description, g_free);
  g_clear_pointer (&self->backend_message, g_free);

  G_OBJECT_CLASS (bl_measurement_parent_class)->finalize (object);
}

static void
bl_measurement_get_property (GObject    *object,
                             guint       prop_id,
                             GValue     *value,
                             GParamSpec *pspec)
{
  BlMeasurement *self = BL_MEASUREMENT (object);

  switch (prop_id)
    {
    case PROP_STATE:
      g_value_set_enum (value, self->state);
      break;
    case PROP_N_DONE:
      g_value_set_uint (value, self->n_done);
      break;
    case PROP_N_WINDOWS:
      g_value_set_uint (value, self->n_windows);
      break;
    case PROP_PPL:
      g_value_set_double (value, self->ppl);
      break;
    case PROP_MESSAGE:
      g_value_set_string (value, self->message);
      break;
    case PROP_BACKEND_NAME:
      g_value_set_string (value, self->backend_name);
      break;
    case PROP_BACKEND_MESSAGE:
      g_value_set_string (value, self->backend_message);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
bl_measurement_class_init (BlMeasurementClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GParamFlags ro = G_PARAM_READABLE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY;

  object_class->dispose = bl_measurement_dispose;
  object_class->finalize = bl_measurement_finalize;
  object_class->get_property = bl_measurement_get_property;

  properties[PROP_STATE] = g_param_spec_enum ("state", NULL, NULL, BL_TYPE_MEASUREMENT_STATE,
                                              BL_MEASUREMENT_IDLE, ro);
  properties[PROP_N_DONE] = g_param_spec_uint ("n-done", NULL, NULL, 0, G_MAXUINT, 0, ro);
  properties[PROP_N_WINDOWS] = g_param_spec_uint ("n-windows", NULL, NULL, 0, G_MAXUINT, 0, ro);
  properties[PROP_PPL] = g_param_spec_double ("ppl", NULL, NULL, -G_MAXDOUBLE, G_MAXDOUBLE, 0, ro);
  properties[PROP_MESSAGE] = g_param_spec_string ("message", NULL, NULL, NULL, ro);
  /**
   * BlMeasurement:backend-name:
   *
   * The backend the measurements run on ("cpu", "cuda"), as bl_backend_get_name() says and
   * as stored runs record it; %NULL until the first measurement has created it.
   */
  properties[PROP_BACKEND_NAME] = g_param_spec_string ("backend-name", NULL, NULL, NULL, ro);
  /**
   * BlMeasurement:backend-message:
   *
   * Why the preferred backend is not the one in use (the #GError of bl_backend_new()), or
   * %NULL when it is.
   */
  properties[PROP_BACKEND_MESSAGE] = g_param_spec_string ("backend-message", NULL, NULL, NULL, ro);
  g_object_class_install_properties (object_class, N_PROPS, properties);

  /**
   * BlMeasurement::progress:
   * @self: the measurement
   *
   * Emitted in the main context whenever the state or the estimate changes: after every
   * window, and when a measurement starts, finishes or fails.
   */
  signals[SIGNAL_PROGRESS] =
    g_signal_new ("progress", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 0);
}

static void
bl_measurement_init (BlMeasurement *self)
{
  self->ppl = NAN;
  self->ppl_low = NAN;
  self->ppl_high = NAN;
  self->options.protocol = BL_PROTOCOL_GPTQ;
  self->options.ctx = 256;
  self->options.max_windows = 48;
}

/**
 * bl_measurement_new:
 * @model: the model to measure
 * @n_threads: CPU threads for the evaluation
 *
 * Returns: (transfer full): an idle measurement; give it text with bl_measurement_set_text()
 */
BlMeasurement *
bl_measurement_new (BlModel *model,
                    int      n_threads)
{
  BlMeasurement *self;

  g_return_val_if_fail (BL_IS_MODEL (model), NULL);

  self = g_object_new (BL_TYPE_MEASUREMENT, NULL);
  self->model = g_object_ref (model);
  self->n_threads = MAX (1, n_threads);
  self->backend_preference = g_strdup ("auto");
  self->slot = engine_slot_new (self->backend_preference);
  return self;
}

/**
 * bl_measurement_set_backend:
 * @self: a measurement
 * @preference: "cpu", "cuda" or "auto" (the "backend" setting)
 *
 * Chooses the backend of the next bl_measurement_start(). A new preference drops the
 * engine, which belongs to its backend, so the next measurement quantizes again; the one
 * in flight, if any, finishes on the old backend unless it is cancelled.
 */
void
bl_measurement_set_backend (BlMeasurement *self,
                            const char    *preference)
{
  g_return_if_fail (BL_IS_MEASUREMENT (self));
  g_return_if_fail (preference != NULL);

  if (g_str_equal (self->backend_preference, preference))
    return;
  g_free (self->backend_preference);
  self->backend_preference = g_strdup (preference);
  g_clear_pointer (&self->slot, engine_slot_unref);
  self->slot = engine_slot_new (preference);
  g_clear_pointer (&self->backend_name, g_free);
  g_clear_pointer (&self->backend_description, g_free);
  g_clear_pointer (&self->backend_message, g_free);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_BACKEND_NAME]);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_BACKEND_MESSAGE]);
}

/**
 * bl_measurement_set_text:
 * @self: a measurement
 * @ids: (element-type gint32): the token ids of the whole evaluation text
 * @name: the text's name, e.g. "brown/test"
 * @path: (nullable): where it was read from
 * @sha256: the text's sha256
 * @kind: how it was read (bl_text_source_kind_to_string())
 *
 * Sets the text to measure on. The provenance strings are what a stored run records.
 */
void
bl_measurement_set_text (BlMeasurement *self,
                         GArray        *ids,
                         const char    *name,
                         const char    *path,
                         const char    *sha256,
                         const char    *kind)
{
  g_return_if_fail (BL_IS_MEASUREMENT (self));
  g_return_if_fail (ids != NULL && name != NULL && sha256 != NULL && kind != NULL);

  g_clear_pointer (&self->ids, g_array_unref);
  self->ids = g_array_ref (ids);
  g_free (self->text_name);
  self->text_name = g_strdup (name);
  g_free (self->text_path);
  self->text_path = g_strdup (path);
  g_free (self->text_sha256);
  self->text_sha256 = g_strdup (sha256);
  g_free (self->text_kind);
  self->text_kind = g_strdup (kind);
}

gboolean
bl_measurement_has_text (BlMeasurement *self)
{
  g_return_val_if_fail (BL_IS_MEASUREMENT (self), FALSE);

  return self->ids != NULL;
}

/**
 * bl_measurement_set_options:
 * @self: a measurement
 * @ctx: window length in tokens (capped at the model's maximum)
 * @max_windows: windows to evaluate (0: every window of the text)
 *
 * Takes effect at the next bl_measurement_start().
 */
void
bl_measurement_set_options (BlMeasurement *self,
                            int            ctx,
                            int            max_windows)
{
  const BlModelConfig *config;

  g_return_if_fail (BL_IS_MEASUREMENT (self));
  g_return_if_fail (ctx >= 2 && max_windows >= 0);

  config = bl_model_get_config (self->model);
  self->options.ctx = config->max_position_embeddings > 0 ? MIN (ctx, config->max_position_embeddings) : ctx;
  self->options.max_windows = max_windows;
}

/**
 * bl_measurement_set_store:
 * @self: a measurement
 * @store: (nullable): where finished measurements of the unquantized model are recorded
 */
void
bl_measurement_set_store (BlMeasurement *self,
                          BlStore       *store)
{
  g_return_if_fail (BL_IS_MEASUREMENT (self));

  g_set_object (&self->store, store);
}

static void
set_state (BlMeasurement      *self,
           BlMeasurementState  state,
           const char         *message)
{
  g_free (self->message);
  self->message = g_strdup (message);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_MESSAGE]);
  if (self->state != state)
    {
      self->state = state;
      g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_STATE]);
    }
  g_signal_emit (self, signals[SIGNAL_PROGRESS], 0);
}

static void
reset_numbers (BlMeasurement *self)
{
  self->have_kl = FALSE;
  self->n_done = 0;
  self->n_windows = 0;
  self->ppl = self->ppl_low = self->ppl_high = NAN;
  self->tokens_per_second = 0;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_N_DONE]);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_N_WINDOWS]);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_PPL]);
}

static void
update_from_run (BlMeasurement *self,
                 BlRun         *run)
{
  const BlPplStats *stats = bl_run_get_stats (run);

  self->n_done = bl_run_get_n_done (run);
  self->n_windows = bl_run_get_n_windows (run);
  self->ppl = bl_ppl_stats_get_ppl (stats);
  if (!bl_ppl_stats_get_ppl_ci (stats, &self->ppl_low, &self->ppl_high))
    self->ppl_low = self->ppl_high = NAN;
  self->tokens_per_second = bl_run_get_tokens_per_second (run);
  self->have_kl = bl_run_get_kl_summary (run, &self->kl) && self->kl.n_windows > 0;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_N_DONE]);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_N_WINDOWS]);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_PPL]);
}

static void
set_stage (BlMeasurement *self,
           char          *stage)
{
  g_free (self->stage);
  self->stage = stage;
}

/* Messages from the worker to the main context. */
typedef enum
{
  MSG_STAGE,
  MSG_BACKEND,
  MSG_RUNNING,
  MSG_WINDOW,
} MsgKind;

typedef struct
{
  Job *job;
  MsgKind kind;
  char *stage;               /* MSG_STAGE: the stage; MSG_BACKEND: the backend's name */
  char *description;         /* MSG_BACKEND: its description */
  char *fallback;            /* MSG_BACKEND: why it is not the preferred one, or NULL */
  BlRun *run;
} Msg;

static void
msg_free (gpointer data)
{
  Msg *msg = data;

  job_unref (msg->job);
  g_free (msg->stage);
  g_free (msg->description);
  g_free (msg->fallback);
  g_clear_object (&msg->run);
  g_free (msg);
}

static gboolean
msg_dispatch (gpointer data)
{
  Msg *msg = data;
  BlMeasurement *self = msg->job->owner;

  if (self == NULL || self->job != msg->job)
    return G_SOURCE_REMOVE;
  switch (msg->kind)
    {
    case MSG_STAGE:
      set_stage (self, g_steal_pointer (&msg->stage));
      g_signal_emit (self, signals[SIGNAL_PROGRESS], 0);
      break;
    case MSG_BACKEND:
      g_free (self->backend_description);
      self->backend_description = g_steal_pointer (&msg->description);
      if (g_strcmp0 (self->backend_name, msg->stage) != 0)
        {
          g_free (self->backend_name);
          self->backend_name = g_steal_pointer (&msg->stage);
          g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_BACKEND_NAME]);
        }
      if (g_strcmp0 (self->backend_message, msg->fallback) != 0)
        {
          g_free (self->backend_message);
          self->backend_message = g_steal_pointer (&msg->fallback);
          g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_BACKEND_MESSAGE]);
        }
      g_signal_emit (self, signals[SIGNAL_PROGRESS], 0);
      break;
    case MSG_RUNNING:
      set_stage (self, NULL);
      update_from_run (self, msg->run);
      set_state (self, BL_MEASUREMENT_RUNNING, NULL);
      break;
    case MSG_WINDOW:
    default:
      update_from_run (self, msg->run);
      g_signal_emit (self, signals[SIGNAL_PROGRESS], 0);
      break;
    }
  return G_SOURCE_REMOVE;
}

static void
post (Job     *job,
      MsgKind  kind,
      char    *stage,
      BlRun   *run)
{
  Msg *msg = g_new0 (Msg, 1);

  msg->job = job_ref (job);
  msg->kind = kind;
  msg->stage = stage;
  msg->run = run ? g_object_ref (run) : NULL;
  g_main_context_invoke_full (job->context, G_PRIORITY_DEFAULT, msg_dispatch, msg, msg_free);
}

/* The quantized engine's progress, in the worker: which stage, how far. */
static void
on_engine_progress (const char *stage,
                    int         done,
                    int         total,
                    gpointer    user_data)
{
  EngineSlot *slot = user_data;
  Job *job = slot->active_job;
  const char *what;

  if (job == NULL)
    return;
  if (g_str_equal (stage, "quantize"))
    what = "quantizing weights";
  else if (g_str_equal (stage, "calibration"))
    what = "calibrating";
  else
    what = "observing activation ranges";
  post (job, MSG_STAGE, g_strdup_printf ("%s %d/%d…", what, done, total), NULL);
}

static void
on_window_done (BlRun    *run,
                guint     n_done,
                gpointer  user_data)
{
  post (user_data, MSG_WINDOW, NULL, run);
}

/* The slot's backend as the user prefers it. A "cuda" that cannot start (no CUDA backend in
 * this build, no device) is not worth failing the measurement for: it runs on the CPU, and
 * the slot keeps the reason for the window. "auto" falls back by itself, without a word to
 * the user. */
static gboolean
create_backend (EngineSlot  *slot,
                int          n_threads,
                GError     **error)
{
  g_autoptr(GError) preferred_error = NULL;

  slot->backend = bl_backend_new (slot->preference, n_threads, &preferred_error);
  if (slot->backend != NULL)
    return TRUE;
  if (g_str_equal (slot->preference, "cpu"))
    {
      g_propagate_error (error, g_steal_pointer (&preferred_error));
      return FALSE;
    }
  slot->fallback = g_strdup (preferred_error->message);
  slot->backend = bl_backend_new ("cpu", n_threads, error);
  return slot->backend != NULL;
}

/* Every measurement says which backend it runs on: a superseded one's message is dropped. */
static void
post_backend (Job *job)
{
  EngineSlot *slot = job->slot;
  Msg *msg = g_new0 (Msg, 1);

  msg->job = job_ref (job);
  msg->kind = MSG_BACKEND;
  msg->stage = g_strdup (bl_backend_get_name (slot->backend));
  msg->description = g_strdup (bl_backend_get_description (slot->backend));
  msg->fallback = g_strdup (slot->fallback);
  g_main_context_invoke_full (job->context, G_PRIORITY_DEFAULT, msg_dispatch, msg, msg_free);
}

/* Moves the shared engine to the job's plan and runs the windows, holding the engine. */
static gboolean
measure (Job           *job,
         GCancellable  *cancellable,
         GError       **error)
{
  EngineSlot *slot = job->slot;
  g_autoptr(BlRun) run = NULL;

  if (g_cancellable_set_error_if_cancelled (cancellable, error))
    return FALSE;
  if (slot->backend == NULL && !create_backend (slot, job->n_threads, error))
    return FALSE;
  post_backend (job);
  if (slot->engine == NULL)
    {
      slot->engine = bl_quant_engine_new (job->model, slot->backend, job->plan,
                                          (const int32_t *) job->ids->data, job->ids->len,
                                          cancellable, on_engine_progress, slot, error);
      if (slot->engine == NULL)
        return FALSE;
    }
  else if (!bl_quant_engine_set_plan (slot->engine, job->plan, cancellable, error))
    return FALSE;

  run = bl_run_new (job->model, bl_quant_engine_get_engine (slot->engine), (const int32_t *) job->ids->data,
                    job->ids->len, &job->options, error);
  if (run == NULL)
    return FALSE;
  bl_run_set_quant_engine (run, slot->engine);
  bl_run_set_kl (run, 0);
  /* the backend that ran, which is not always the one preferred */
  job->prov.backend = bl_backend_get_name (slot->backend);
  if (job->store != NULL)
    bl_run_set_store (run, job->store, &job->prov);
  g_signal_connect (run, "window-done", G_CALLBACK (on_window_done), job);
  post (job, MSG_RUNNING, NULL, run);
  if (!bl_run_execute (run, cancellable, error))
    return FALSE;
  post (job, MSG_WINDOW, NULL, run);
  return TRUE;
}

static void
measure_thread (GTask        *task,
                gpointer      source_object,
                gpointer      task_data,
                GCancellable *cancellable)
{
  Job *job = task_data;
  EngineSlot *slot = job->slot;
  GError *error = NULL;
  gboolean ok;

  g_mutex_lock (&slot->lock);
  slot->active_job = job;
  ok = measure (job, cancellable, &error);
  slot->active_job = NULL;
  g_mutex_unlock (&slot->lock);

  if (ok)
    g_task_return_boolean (task, TRUE);
  else
    g_task_return_error (task, error);
}

static void
on_measured (GObject      *source,
             GAsyncResult *result,
             gpointer      user_data)
{
  Job *job = g_task_get_task_data (G_TASK (result));
  BlMeasurement *self = job->owner;
  g_autoptr(GError) error = NULL;
  gboolean ok = g_task_propagate_boolean (G_TASK (result), &error);

  if (self == NULL || self->job != job)
    return;
  self->job = NULL;
  job->owner = NULL;
  set_stage (self, NULL);
  if (ok)
    set_state (self, BL_MEASUREMENT_FINISHED, NULL);
  else if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    set_state (self, BL_MEASUREMENT_IDLE, NULL);
  else
    set_state (self, BL_MEASUREMENT_FAILED, error->message);
  job_unref (job);           /* the owner's reference */
}

/**
 * bl_measurement_start:
 * @self: a measurement with text
 * @snapshot: the plan to measure
 * @plan: the same plan as the core's #BlQuantPlan (bl_plan_snapshot_to_quant_plan())
 *
 * Cancels the measurement in flight, if any, and starts measuring @plan. Returns at once.
 */
void
bl_measurement_start (BlMeasurement  *self,
                      BlPlanSnapshot *snapshot,
                      BlQuantPlan    *plan)
{
  g_autoptr(GTask) task = NULL;
  Job *job;

  g_return_if_fail (BL_IS_MEASUREMENT (self));
  g_return_if_fail (snapshot != NULL && BL_IS_QUANT_PLAN (plan));
  g_return_if_fail (self->ids != NULL);

  bl_measurement_cancel (self);

  g_clear_pointer (&self->plan, bl_plan_snapshot_unref);
  self->plan = bl_plan_snapshot_ref (snapshot);
  reset_numbers (self);

  job = g_new0 (Job, 1);
  g_atomic_ref_count_init (&job->ref_count);
  job->owner = self;
  job->context = g_main_context_ref_thread_default ();
  job->model = g_object_ref (self->model);
  job->snapshot = bl_plan_snapshot_ref (snapshot);
  job->plan = bl_quant_plan_copy (plan);
  job->slot = engine_slot_ref (self->slot);
  job->ids = g_array_ref (self->ids);
  job->options = self->options;
  job->n_threads = self->n_threads;
  job->cancellable = g_cancellable_new ();
  if (self->store != NULL)
    {
      job->store = g_object_ref (self->store);
      job->prov.dataset_name = job->prov_strings[0] = g_strdup (self->text_name);
      job->prov.dataset_path = job->prov_strings[1] = g_strdup (self->text_path);
      job->prov.dataset_sha256 = job->prov_strings[2] = g_strdup (self->text_sha256);
      job->prov.dataset_kind = job->prov_strings[3] = g_strdup (self->text_kind);
      job->prov.n_threads = self->n_threads;
    }

  self->job = job;           /* the owner's reference */
  set_stage (self, g_strdup ("waiting for the engine…"));
  set_state (self, BL_MEASUREMENT_PREPARING, NULL);
  task = g_task_new (NULL, job->cancellable, on_measured, NULL);
  g_task_set_source_tag (task, bl_measurement_start);
  g_task_set_task_data (task, job_ref (job), (GDestroyNotify) job_unref);
  /* the run records its cancellation in the store, so the worker must see it through */
  g_task_set_return_on_cancel (task, FALSE);
  bl_application_hold_task (task);
  g_task_run_in_thread (task, measure_thread);
}

/**
 * bl_measurement_cancel:
 * @self: a measurement
 *
 * Cancels the measurement in flight; the state becomes %BL_MEASUREMENT_IDLE at once, and
 * the worker stops at its next check.
 */
void
bl_measurement_cancel (BlMeasurement *self)
{
  Job *job;

  g_return_if_fail (BL_IS_MEASUREMENT (self));

  job = g_steal_pointer (&self->job);
  if (job == NULL)
    return;
  job->owner = NULL;
  g_cancellable_cancel (job->cancellable);
  job_unref (job);
  set_stage (self, NULL);
  set_state (self, BL_MEASUREMENT_IDLE, NULL);
}

/**
 * bl_measurement_get_stage:
 * @self: a measurement
 *
 * Returns: (nullable): what the measurement is doing before its first window, e.g.
 *   "quantizing weights 3/15…"
 */
const char *
bl_measurement_get_stage (BlMeasurement *self)
{
  g_return_val_if_fail (BL_IS_MEASUREMENT (self), NULL);

  return self->stage;
}

BlMeasurementState
bl_measurement_get_state (BlMeasurement *self)
{
  g_return_val_if_fail (BL_IS_MEASUREMENT (self), BL_MEASUREMENT_IDLE);

  return self->state;
}

/**
 * bl_measurement_get_plan:
 * @self: a measurement
 *
 * Returns: (transfer none) (nullable): the plan of the last bl_measurement_start()
 */
BlPlanSnapshot *
bl_measurement_get_plan (BlMeasurement *self)
{
  g_return_val_if_fail (BL_IS_MEASUREMENT (self), NULL);

  return self->plan;
}

guint
bl_measurement_get_n_done (BlMeasurement *self)
{
  g_return_val_if_fail (BL_IS_MEASUREMENT (self), 0);

  return self->n_done;
}

guint
bl_measurement_get_n_windows (BlMeasurement *self)
{
  g_return_val_if_fail (BL_IS_MEASUREMENT (self), 0);

  return self->n_windows;
}

/**
 * bl_measurement_get_ppl:
 * @self: a measurement
 *
 * Returns: the perplexity over the windows done so far, NaN before the first
 */
double
bl_measurement_get_ppl (BlMeasurement *self)
{
  g_return_val_if_fail (BL_IS_MEASUREMENT (self), NAN);

  return self->ppl;
}

/**
 * bl_measurement_get_ppl_ci:
 * @self: a measurement
 * @low: (out): lower end of the 95% interval
 * @high: (out): upper end
 *
 * Returns: whether the interval exists yet (it needs two windows)
 */
gboolean
bl_measurement_get_ppl_ci (BlMeasurement *self,
                           double        *low,
                           double        *high)
{
  g_return_val_if_fail (BL_IS_MEASUREMENT (self), FALSE);

  *low = self->ppl_low;
  *high = self->ppl_high;
  return !isnan (self->ppl_low);
}

double
bl_measurement_get_tokens_per_second (BlMeasurement *self)
{
  g_return_val_if_fail (BL_IS_MEASUREMENT (self), 0);

  return self->tokens_per_second;
}

/**
 * bl_measurement_get_message:
 * @self: a measurement
 *
 * Returns: (nullable): why the last measurement failed
 */
const char *
bl_measurement_get_message (BlMeasurement *self)
{
  g_return_val_if_fail (BL_IS_MEASUREMENT (self), NULL);

  return self->message;
}

const char *
bl_measurement_get_text_name (BlMeasurement *self)
{
  g_return_val_if_fail (BL_IS_MEASUREMENT (self), NULL);

  return self->text_name;
}

int
bl_measurement_get_ctx (BlMeasurement *self)
{
  g_return_val_if_fail (BL_IS_MEASUREMENT (self), 0);

  return self->options.ctx;
}

/**
 * bl_measurement_get_kl:
 * @self: a measurement
 * @out: (out caller-allocates): KL, its interval, top-1 agreement and Δp over the windows
 *   done so far
 *
 * Returns: whether a window has been compared with the full-precision model yet
 */
gboolean
bl_measurement_get_kl (BlMeasurement *self,
                       BlKlSummary   *out)
{
  g_return_val_if_fail (BL_IS_MEASUREMENT (self), FALSE);
  g_return_val_if_fail (out != NULL, FALSE);

  *out = self->kl;
  return self->have_kl;
}

/**
 * bl_measurement_get_backend_name:
 * @self: a measurement
 *
 * Returns: (nullable): the backend the measurements run on ("cpu", "cuda"), %NULL before
 *   the first measurement has created it
 */
const char *
bl_measurement_get_backend_name (BlMeasurement *self)
{
  g_return_val_if_fail (BL_IS_MEASUREMENT (self), NULL);

  return self->backend_name;
}

/**
 * bl_measurement_get_backend_description:
 * @self: a measurement
 *
 * Returns: (nullable): the backend's one-line description (bl_backend_get_description():
 *   its threads, or its device)
 */
const char *
bl_measurement_get_backend_description (BlMeasurement *self)
{
  g_return_val_if_fail (BL_IS_MEASUREMENT (self), NULL);

  return self->backend_description;
}

/**
 * bl_measurement_get_backend_message:
 * @self: a measurement
 *
 * Returns: (nullable): why the preferred backend could not start and the CPU runs the
 *   measurements instead, or %NULL when the preference holds
 */
const char *
bl_measurement_get_backend_message (BlMeasurement *self)
{
  g_return_val_if_fail (BL_IS_MEASUREMENT (self), NULL);

  return self->backend_message;
}
