/* bl-measurement.c: the live perplexity measurement of the plan being edited
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "bl-measurement.h"

#include <math.h>

#include "bl-quant-algo.h"

/**
 * SECTION:bl-measurement
 * @title: BlMeasurement
 *
 * Measures the perplexity of the model under one plan on the evaluation text, and restarts
 * on every change: bl_measurement_start() cancels the measurement in flight and begins
 * another. The weights are quantized for the plan in a worker thread (an engine is built with
 * the plan's weight hook), then a #BlRun evaluates the windows in its fixed random order in
 * another; after every window the properties change in the main context, so the GUI shows a
 * number within a second and watches its confidence interval shrink. Nothing here blocks
 * the main loop.
 *
 * A superseded measurement is cancelled and cleans up after itself in the background; its
 * late signals are ignored. Only measurements of the unquantized model are recorded in the
 * store, because a #BlRun does not yet carry the plan into its stored record, and a quantized
 * run stored without its plan would be recorded as the unquantized model.
 */

typedef struct
{
  BlFormatSpec weight;
  gboolean has_weight;
  BlFormatSpec act;
  gboolean has_act;
  char *algorithm;
} LayerSpecs;

typedef struct
{
  gatomicrefcount ref_count;
  BlMeasurement *owner;      /* borrowed; valid while the job is owner->job */
  BlModel *model;
  BlPlanSnapshot *plan;
  GHashTable *specs;         /* layer name → LayerSpecs */
  int n_threads;
  GCancellable *cancellable;
  BlBackend *backend;
  BlEngine *engine;
  BlRun *run;
  GMutex error_lock;
  GError *hook_error;        /* the first error a hook met */
} Job;

struct _BlMeasurement
{
  GObject parent_instance;

  /* Inputs */
  BlModel *model;
  int n_threads;
  GArray *ids;
  char *text_name;
  char *text_path;
  char *text_sha256;
  char *text_kind;
  BlRunOptions options;
  BlStore *store;

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
  char *message;
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
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

enum {
  SIGNAL_PROGRESS,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

static void
layer_specs_free (gpointer data)
{
  LayerSpecs *ls = data;

  g_free (ls->algorithm);
  g_free (ls);
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
  g_clear_object (&job->run);
  g_clear_pointer (&job->engine, bl_engine_free);
  g_clear_pointer (&job->backend, bl_backend_free);
  g_clear_object (&job->model);
  g_clear_pointer (&job->plan, bl_plan_snapshot_unref);
  g_clear_pointer (&job->specs, g_hash_table_unref);
  g_clear_object (&job->cancellable);
  g_clear_error (&job->hook_error);
  g_mutex_clear (&job->error_lock);
  g_free (job);
}

static void
job_set_error (Job    *job,
               GError *error)
{
  g_mutex_lock (&job->error_lock);
  if (job->hook_error == NULL)
    job->hook_error = error;
  else
    g_error_free (error);
  g_mutex_unlock (&job->error_lock);
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
  return self;
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
  self->n_done = 0;
  self->n_windows = 0;
  self->ppl = self->ppl_low = self->ppl_high = NAN;
  self->tokens_per_second = 0;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_N_DONE]);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_N_WINDOWS]);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_PPL]);
}

/* Called once per linear weight by bl_engine_new(), in the job's worker thread. */
static void
weight_hook (const char  *layer_name,
             BlLayerKind  kind,
             float       *w,
             int64_t      rows,
             int64_t      cols,
             gpointer     user_data)
{
  Job *job = user_data;
  LayerSpecs *ls = g_hash_table_lookup (job->specs, layer_name);
  BlInputTransform transform;
  GError *error = NULL;

  if (ls == NULL || !ls->has_weight)
    return;
  if (!bl_quant_algo_apply (ls->algorithm, NULL, &ls->weight, ls->has_act ? &ls->act : NULL,
                            NULL, w, rows, cols, NULL, &transform, &error))
    {
      g_prefix_error (&error, "%s: ", layer_name);
      job_set_error (job, error);
      return;
    }
  if (!bl_input_transform_is_identity (&transform))
    job_set_error (job, g_error_new (BL_ERROR, BL_ERROR_INVALID_ARGUMENT,
                                     "%s: the %s algorithm transforms the layer's input, which "
                                     "the live measurement cannot apply yet",
                                     layer_name, ls->algorithm));
  bl_input_transform_clear (&transform);
}

/* The activation quantizer: dynamic fake quantization of each linear layer's input, with
 * the scale granularity the spec names (per token for ":token"). */
static void
activation_hook (const char  *layer_name,
                 BlLayerKind  kind,
                 int          block,
                 float       *x,
                 int          n_tokens,
                 int          dim,
                 gpointer     user_data)
{
  Job *job = user_data;
  LayerSpecs *ls = g_hash_table_lookup (job->specs, layer_name);
  GError *error = NULL;

  if (ls == NULL || !ls->has_act)
    return;
  if (!bl_format_fake_quant (&ls->act, x, x, n_tokens, dim, 1, &error))
    {
      g_prefix_error (&error, "%s input: ", layer_name);
      job_set_error (job, error);
    }
}

static void
build_thread (GTask        *task,
              gpointer      source_object,
              gpointer      task_data,
              GCancellable *cancellable)
{
  Job *job = task_data;
  BlEngineHooks hooks = { 0 };
  GError *error = NULL;
  gboolean any_act = FALSE;
  GHashTableIter iter;
  gpointer value;

  g_hash_table_iter_init (&iter, job->specs);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    any_act |= ((LayerSpecs *) value)->has_act;

  hooks.weight_transform = weight_hook;
  hooks.activation = any_act ? activation_hook : NULL;
  hooks.user_data = job;

  job->backend = bl_backend_new ("cpu", job->n_threads, &error);
  if (job->backend == NULL)
    {
      g_task_return_error (task, error);
      return;
    }
  if (g_task_return_error_if_cancelled (task))
    return;
  job->engine = bl_engine_new (job->model, job->backend, &hooks, &error);
  if (job->engine == NULL)
    {
      g_task_return_error (task, error);
      return;
    }
  if (job->hook_error != NULL)
    {
      g_task_return_error (task, g_error_copy (job->hook_error));
      return;
    }
  g_task_return_boolean (task, TRUE);
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
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_N_DONE]);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_N_WINDOWS]);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_PPL]);
}

static void
on_window_done (BlRun    *run,
                guint     n_done,
                gpointer  user_data)
{
  Job *job = user_data;
  BlMeasurement *self = job->owner;

  if (self == NULL || self->job != job)
    return;
  update_from_run (self, run);
  g_signal_emit (self, signals[SIGNAL_PROGRESS], 0);
}

static void
on_run_done (GObject      *source,
             GAsyncResult *result,
             gpointer      user_data)
{
  Job *job = user_data;
  BlMeasurement *self = job->owner;
  g_autoptr(GError) error = NULL;
  gboolean ok = bl_run_execute_finish (BL_RUN (source), result, &error);

  if (ok && job->hook_error != NULL)
    {
      ok = FALSE;
      error = g_error_copy (job->hook_error);
    }
  if (self != NULL && self->job == job)
    {
      self->job = NULL;
      update_from_run (self, BL_RUN (source));
      if (ok)
        set_state (self, BL_MEASUREMENT_FINISHED, NULL);
      else if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        set_state (self, BL_MEASUREMENT_IDLE, NULL);
      else
        set_state (self, BL_MEASUREMENT_FAILED, error->message);
      job->owner = NULL;
      job_unref (job);       /* the owner's reference */
    }
  job_unref (job);           /* the run's reference */
}

static void
on_built (GObject      *source,
          GAsyncResult *result,
          gpointer      user_data)
{
  Job *job = user_data;
  BlMeasurement *self = job->owner;
  g_autoptr(GError) error = NULL;

  if (!g_task_propagate_boolean (G_TASK (result), &error) || self == NULL || self->job != job)
    {
      if (self != NULL && self->job == job)
        {
          self->job = NULL;
          job->owner = NULL;
          job_unref (job);   /* the owner's reference */
          if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
            set_state (self, BL_MEASUREMENT_IDLE, NULL);
          else
            set_state (self, BL_MEASUREMENT_FAILED, error->message);
        }
      job_unref (job);       /* the task's reference */
      return;
    }

  job->run = bl_run_new (job->model, job->engine, (const int32_t *) self->ids->data, self->ids->len,
                         &self->options, &error);
  if (job->run == NULL)
    {
      self->job = NULL;
      job->owner = NULL;
      job_unref (job);
      job_unref (job);
      set_state (self, BL_MEASUREMENT_FAILED, error->message);
      return;
    }
  if (self->store != NULL && bl_plan_snapshot_is_empty (job->plan))
    {
      BlRunProvenance prov = {
        .dataset_name = self->text_name,
        .dataset_path = self->text_path,
        .dataset_sha256 = self->text_sha256,
        .dataset_kind = self->text_kind,
        .backend = bl_backend_get_name (job->backend),
        .n_threads = job->n_threads,
      };

      bl_run_set_store (job->run, self->store, &prov);
    }
  self->n_windows = bl_run_get_n_windows (job->run);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_N_WINDOWS]);
  set_state (self, BL_MEASUREMENT_RUNNING, NULL);
  g_signal_connect (job->run, "window-done", G_CALLBACK (on_window_done), job);
  /* the task's reference passes to the run */
  bl_run_execute_async (job->run, job->cancellable, on_run_done, job);
}

static gboolean
parse_plan (BlMeasurement  *self,
            Job            *job,
            GError        **error)
{
  for (guint i = 0; i < bl_plan_snapshot_get_n_entries (job->plan); i++)
    {
      const BlPlanEntry *e = bl_plan_snapshot_get_entry (job->plan, i);
      LayerSpecs *ls = g_new0 (LayerSpecs, 1);

      g_hash_table_insert (job->specs, g_strdup (e->layer), ls);
      ls->algorithm = g_strdup (e->algorithm);
      if (e->weight_spec != NULL)
        {
          if (!bl_format_spec_parse (e->weight_spec, &ls->weight, error))
            return FALSE;
          ls->has_weight = TRUE;
        }
      if (e->act_spec != NULL)
        {
          if (!bl_format_spec_parse (e->act_spec, &ls->act, error))
            return FALSE;
          ls->has_act = TRUE;
        }
      if (!bl_quant_algo_validate (e->algorithm, NULL, error))
        return FALSE;
      if (bl_quant_algo_needs (e->algorithm, NULL) != 0)
        {
          g_set_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT,
                       "%s: the %s algorithm needs calibration, which the live measurement "
                       "does not run yet", e->layer, e->algorithm);
          return FALSE;
        }
    }
  return TRUE;
}

/**
 * bl_measurement_start:
 * @self: a measurement with text
 * @plan: the plan to measure
 *
 * Cancels the measurement in flight, if any, and starts measuring @plan. Returns at once.
 */
void
bl_measurement_start (BlMeasurement  *self,
                      BlPlanSnapshot *plan)
{
  g_autoptr(GError) error = NULL;
  Job *job;

  g_return_if_fail (BL_IS_MEASUREMENT (self));
  g_return_if_fail (plan != NULL);
  g_return_if_fail (self->ids != NULL);

  bl_measurement_cancel (self);

  g_clear_pointer (&self->plan, bl_plan_snapshot_unref);
  self->plan = bl_plan_snapshot_ref (plan);
  reset_numbers (self);

  job = g_new0 (Job, 1);
  g_atomic_ref_count_init (&job->ref_count);
  g_mutex_init (&job->error_lock);
  job->owner = self;
  job->model = g_object_ref (self->model);
  job->plan = bl_plan_snapshot_ref (plan);
  job->specs = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, layer_specs_free);
  job->n_threads = self->n_threads;
  job->cancellable = g_cancellable_new ();

  if (!parse_plan (self, job, &error))
    {
      job_unref (job);
      set_state (self, BL_MEASUREMENT_FAILED, error->message);
      return;
    }

  self->job = job;           /* the owner's reference */
  set_state (self, BL_MEASUREMENT_PREPARING, NULL);
  {
    g_autoptr(GTask) task = g_task_new (NULL, job->cancellable, on_built, job_ref (job));

    g_task_set_source_tag (task, bl_measurement_start);
    g_task_set_task_data (task, job, NULL);
    g_task_run_in_thread (task, build_thread);
  }
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
  set_state (self, BL_MEASUREMENT_IDLE, NULL);
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
