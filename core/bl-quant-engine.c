/* bl-quant-engine.c: an engine that runs a model under a quantization plan
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "bl-quant-engine.h"

#include <math.h>
#include <string.h>

#include "bl-calib.h"
#include "bl-error.h"
#include "bl-format-codecs.h"
#include "bl-format-scale.h"
#include "bl-moe.h"
#include "bl-protocol.h"
#include "bl-quant-algo.h"

/**
 * SECTION:bl-quant-engine
 * @title: BlQuantEngine
 *
 * See bl-quant-engine.h for what the engine does. A plan change (bl_quant_engine_set_plan())
 * resolves the new plan, compares it with the current one (bl_quant_plan_diff()) and
 * re-quantizes only the layers whose weight side changed, from their original weights read
 * again from the model's mapped tensors; an activation-only change swaps the quantizer and,
 * for a static one, observes that layer's range; a KV-cache change swaps the KV quantizer.
 * Calibration statistics are kept and collected again only when the new plan needs more of
 * them than the ones at hand.
 *
 * Like #BlEngine, a #BlQuantEngine is used from one thread at a time.
 */

typedef struct
{
  const BlLayerAssignment *a;   /* into self->resolved */
  BlInputTransform transform;
  gboolean has_transform;
  gboolean act_static;
  gboolean act_per_channel;
  float *lo;                    /* observed range of the transformed input, per channel */
  float *hi;
} LayerState;

struct _BlQuantEngine
{
  BlModel *model;
  BlBackend *backend;
  BlEngine *engine;
  BlQuantPlan *plan;
  GPtrArray *resolved;          /* BlLayerAssignment */
  GHashTable *layers;           /* name → LayerState */
  int n_threads;

  gboolean has_kv;
  BlFormatSpec kv;

  /* calibration */
  int32_t *calib_ids;
  gint64 n_calib_ids;
  BlCalib *calib;
  BlCalibFlags calib_flags;
  GHashTable *calib_hessian;    /* names of the layers whose Hessian @calib holds */

  BlQuantProgressFunc progress;
  gpointer progress_data;
  GCancellable *cancellable;    /* of the call in progress, for the weight hook */
  int n_weights_done;
  int n_weights_total;

  GPtrArray *last_quantized;    /* char*, NULL-terminated */
  GHashTable *rtn_fallbacks;    /* names of the experts rounded to nearest for want of tokens */
  GPtrArray *pending_bias;      /* PendingBias, while bl_engine_new() runs the weight hook */
  GError *hook_error;           /* the first error a hook met */
};

/* A bias the weight hook changed, set once bl_engine_new() has returned. */
typedef struct
{
  char *layer;
  float *bias;
} PendingBias;

static void
pending_bias_free (gpointer data)
{
  PendingBias *p = data;

  g_free (p->layer);
  g_free (p->bias);
  g_free (p);
}

static void
layer_state_free (gpointer data)
{
  LayerState *st = data;

  bl_input_transform_clear (&st->transform);
  g_free (st->lo);
  g_free (st->hi);
  g_free (st);
}

/**
 * bl_quant_engine_free:
 * @self: (nullable): a quantized engine
 *
 * Frees the engine, its #BlEngine and its calibration statistics. The backend stays.
 */
void
bl_quant_engine_free (BlQuantEngine *self)
{
  if (self == NULL)
    return;
  g_clear_pointer (&self->engine, bl_engine_free);
  g_clear_object (&self->model);
  g_clear_object (&self->plan);
  g_clear_pointer (&self->resolved, g_ptr_array_unref);
  g_clear_pointer (&self->layers, g_hash_table_unref);
  g_clear_pointer (&self->calib_ids, g_free);
  g_clear_pointer (&self->calib, bl_calib_free);
  g_clear_pointer (&self->calib_hessian, g_hash_table_unref);
  g_clear_pointer (&self->last_quantized, g_ptr_array_unref);
  g_clear_pointer (&self->rtn_fallbacks, g_hash_table_unref);
  g_clear_pointer (&self->pending_bias, g_ptr_array_unref);
  g_clear_error (&self->hook_error);
  g_free (self);
}

static void
report (BlQuantEngine *self,
        const char    *stage,
        int            done,
        int            total)
{
  if (self->progress != NULL)
    self->progress (stage, done, total, self->progress_data);
}

static void
set_hook_error (BlQuantEngine *self,
                GError        *error)
{
  if (self->hook_error == NULL)
    self->hook_error = error;
  else
    g_error_free (error);
}

/* ------------------------------------------------------------------------------------------ */
/* static activation quantizers */

static float
round_with (float      v,
            BlRounding mode)
{
  float t, f;

  switch (mode)
    {
    case BL_ROUND_AWAY:
      t = truncf (v);
      if (fabsf (v - t) >= 0.5f)
        t += v < 0 ? -1.0f : 1.0f;
      return t + 0.0f;
    case BL_ROUND_ZERO:
      return truncf (v) + 0.0f;
    case BL_ROUND_UP:
      f = floorf (v);
      return (v - f >= 0.5f ? f + 1.0f : f) + 0.0f;
    case BL_ROUND_RNE:
    case BL_ROUND_STOCHASTIC:
    default:
      /* |v| ≤ 2^(bits−1) here, well inside bl_scale_rne()'s 2^22 */
      return bl_scale_rne (v);
    }
}

typedef struct
{
  float scale;
  float zero;
  float qlo;
  float qhi;
} IntParams;

/* The int family's conventions (bl-format-traits.c int_params(), peers.md §3.6) with the
 * range taken from the calibration instead of the data. */
static void
int_static_params (const BlFormatSpec *spec,
                   float               lo,
                   float               hi,
                   IntParams          *p)
{
  float maxq = (float) ((1 << spec->bits) - 1);
  float half = (float) (1 << (spec->bits - 1));
  float ratio = spec->clip == BL_CLIP_RATIO ? (float) spec->clip_ratio : 1.0f;
  float amax = ratio * MAX (fabsf (lo), fabsf (hi));
  guint32 code;

  switch (spec->int_convention)
    {
    case BL_INT_GPTQ:
      p->scale = bl_scale_store (spec->scale_type, 2.0f * amax / maxq, &code);
      p->zero = half;
      break;
    case BL_INT_ASYM:
      lo = MIN (lo, 0.0f) * ratio;
      hi = MAX (hi, 0.0f) * ratio;
      p->scale = bl_scale_store (spec->scale_type, (hi - lo) / maxq, &code);
      p->zero = p->scale > 0.0f
                ? bl_scale_clamp (bl_scale_rne (bl_scale_clamp (-lo / p->scale, 0.0f, maxq)), 0.0f, maxq)
                : 0.0f;
      break;
    case BL_INT_ABSMAX:
    case BL_INT_Q4_0:
    default:
      p->scale = bl_scale_store (spec->scale_type, amax / (half - 1.0f), &code);
      p->zero = 0.0f;
      p->qlo = -(half - 1.0f);
      p->qhi = half - 1.0f;
      return;
    }
  p->qlo = -p->zero;
  p->qhi = maxq - p->zero;
}

/**
 * bl_quant_activation_static:
 * @spec: an int or fp activation spec with tensor or channel granularity
 * @lo: (array): the observed minimum, one value, or one per input channel when @per_channel
 * @hi: (array): the observed maximum, likewise
 * @per_channel: one scale per input channel instead of one for the whole input
 * @x: (inout) (array): the input, @n_tokens × @dim, fake-quantized in place
 * @n_tokens: rows
 * @dim: input channels
 *
 * A static activation quantizer: the scale (and zero point, for `asym`) comes from a range
 * observed beforehand, not from @x, so values outside it clip. Integer formats follow the
 * int family's conventions (absmax `sym`: s = amax/(2^(b−1)−1); `gptq`: s = 2·amax/(2^b−1)
 * around zero 2^(b−1); `asym`: s = (max−min)/(2^b−1), range widened to include 0), FP
 * formats use s = amax / (largest finite element) as torchao's static float8 scaling does;
 * the scale is stored in the spec's scale type, and `clip=R` shrinks the range by R.
 */
void
bl_quant_activation_static (const BlFormatSpec *spec,
                            const float        *lo,
                            const float        *hi,
                            gboolean            per_channel,
                            float              *x,
                            int64_t             n_tokens,
                            int64_t             dim)
{
  int64_t n_ch = per_channel ? dim : 1;

  g_return_if_fail (spec != NULL && lo != NULL && hi != NULL && x != NULL);
  g_return_if_fail (spec->family == BL_FORMAT_INT || spec->family == BL_FORMAT_FP);

  if (spec->family == BL_FORMAT_INT)
    {
      g_autofree IntParams *p = g_new (IntParams, n_ch);

      for (int64_t c = 0; c < n_ch; c++)
        int_static_params (spec, lo[c], hi[c], &p[c]);
      for (int64_t t = 0; t < n_tokens; t++)
        {
          float *restrict row = x + t * dim;

          for (int64_t j = 0; j < dim; j++)
            {
              const IntParams *q = &p[per_channel ? j : 0];
              float v = row[j] / q->scale;

              if (!(q->scale > 0.0f) || v != v)
                {
                  row[j] = 0.0f;
                  continue;
                }
              row[j] = round_with (bl_scale_clamp (v, q->qlo, q->qhi), spec->rounding) * q->scale;
            }
        }
    }
  else
    {
      g_autofree float *scale = g_new (float, n_ch);
      g_autofree BlFpFormat *fmt = g_new (BlFpFormat, 1);
      float ratio = spec->clip == BL_CLIP_RATIO ? (float) spec->clip_ratio : 1.0f;

      bl_fp_format_init (fmt, spec->ebits, spec->mbits);
      for (int64_t c = 0; c < n_ch; c++)
        {
          guint32 code;

          scale[c] = bl_scale_store (spec->scale_type,
                                     ratio * MAX (fabsf (lo[c]), fabsf (hi[c])) / fmt->max_finite,
                                     &code);
        }
      for (int64_t t = 0; t < n_tokens; t++)
        {
          float *restrict row = x + t * dim;

          for (int64_t j = 0; j < dim; j++)
            {
              float s = scale[per_channel ? j : 0];

              row[j] = s > 0.0f
                       ? bl_fp_decode (fmt, bl_fp_encode (fmt, row[j] / s, spec->rounding,
                                                          spec->saturate, 0)) * s
                       : 0.0f;
            }
        }
    }
}

/* ------------------------------------------------------------------------------------------ */
/* hooks */

static void
activation_hook (const char  *layer_name,
                 BlLayerKind  kind,
                 int          block,
                 float       *x,
                 int          n_tokens,
                 int          dim,
                 gpointer     user_data)
{
  BlQuantEngine *self = user_data;
  LayerState *st = g_hash_table_lookup (self->layers, layer_name);
  GError *error = NULL;

  if (st == NULL)
    return;
  if (st->has_transform && !bl_input_transform_apply (&st->transform, x, n_tokens, dim, &error))
    {
      g_prefix_error (&error, "%s input transform: ", layer_name);
      set_hook_error (self, error);
      return;
    }
  if (!st->a->has_activation)
    return;
  if (st->act_static)
    bl_quant_activation_static (&st->a->activation, st->act_per_channel ? st->lo : st->lo + dim,
                                st->act_per_channel ? st->hi : st->hi + dim, st->act_per_channel,
                                x, n_tokens, dim);
  else if (!bl_format_fake_quant (&st->a->activation, x, x, n_tokens, dim, self->n_threads, &error))
    {
      g_prefix_error (&error, "%s input (%s): ", layer_name, st->a->activation_spec);
      set_hook_error (self, error);
    }
}

static void
kv_cache_hook (int       block,
               float    *k,
               float    *v,
               int       n_tokens,
               int       kv_dim,
               gpointer  user_data)
{
  BlQuantEngine *self = user_data;
  GError *error = NULL;

  if (!self->has_kv)
    return;
  if (!bl_format_fake_quant (&self->kv, k, k, n_tokens, kv_dim, self->n_threads, &error) ||
      !bl_format_fake_quant (&self->kv, v, v, n_tokens, kv_dim, self->n_threads, &error))
    {
      g_prefix_error (&error, "KV cache of block %d: ", block);
      set_hook_error (self, error);
    }
}

/* The original bias of @layer as fp32, or NULL when it has none. */
static float *
read_bias (BlQuantEngine *self,
           const char    *layer)
{
  g_autofree char *name = NULL;
  const BlTensor *t;
  float *bias;

  if (!g_str_has_suffix (layer, ".weight") || g_str_equal (layer, "lm_head.weight"))
    return NULL;
  name = g_strndup (layer, strlen (layer) - strlen ("weight"));
  name = g_realloc (name, strlen (name) + strlen ("bias") + 1);
  strcat (name, "bias");
  t = bl_model_get_tensor (self->model, name);
  if (t == NULL)
    return NULL;
  bias = g_new (float, t->n_elements);
  bl_tensor_to_f32 (t, bias);
  return bias;
}

/* Quantizes one layer's weight @w (the original, fp32) in place as its assignment says and
 * sets up its input transform; *@bias_out receives the bias the layer must now have when it
 * differs from the original one (*@bias_changed). */
static gboolean
quantize_weight (BlQuantEngine  *self,
                 LayerState     *st,
                 float          *w,
                 float         **bias_out,
                 gboolean       *bias_changed,
                 GError        **error)
{
  const BlLayerAssignment *a = st->a;
  const BlCalibLayer *stats = NULL;
  g_autofree float *bias = NULL;
  g_autofree float *orig = NULL;
  const char *algorithm = a->algorithm;
  JsonObject *options = a->options;
  BlMoeName moe;

  bl_input_transform_clear (&st->transform);
  st->has_transform = FALSE;
  *bias_out = NULL;
  *bias_changed = FALSE;
  if (!a->has_weight)
    return TRUE;

  if (self->calib != NULL)
    stats = bl_calib_get_layer (self->calib, a->layer);
  /* A routed expert that the calibration text never reached has no statistics for a
   * data-aware algorithm to fit: it is rounded to nearest, as GPTQModel's fail-safe does,
   * and listed by bl_quant_engine_get_rtn_fallbacks(). */
  g_hash_table_remove (self->rtn_fallbacks, a->layer);
  if (stats == NULL && self->calib != NULL && bl_quant_algo_needs (algorithm, NULL) != 0 &&
      bl_moe_parse_name (a->layer, &moe) && moe.expert >= 0)
    {
      algorithm = "rtn";
      options = NULL;
      g_hash_table_add (self->rtn_fallbacks, g_strdup (a->layer));
    }
  bias = read_bias (self, a->layer);
  if (bias != NULL)
    orig = g_memdup2 (bias, sizeof (float) * a->rows);
  if (!bl_quant_algo_apply (algorithm, options, &a->weight,
                            a->has_activation ? &a->activation : NULL, stats, w, a->rows, a->cols,
                            bias, &st->transform, error))
    {
      g_prefix_error (error, "%s (%s, %s): ", a->layer, a->weight_spec, algorithm);
      return FALSE;
    }
  st->has_transform = !bl_input_transform_is_identity (&st->transform);
  if (st->transform.bias != NULL)
    {
      /* bias correction of a layer without a bias: the forward pass adds it after the matmul */
      *bias_out = g_memdup2 (st->transform.bias, sizeof (float) * a->rows);
      *bias_changed = TRUE;
      g_clear_pointer (&st->transform.bias, g_free);
    }
  else if (bias != NULL && memcmp (bias, orig, sizeof (float) * a->rows) != 0)
    {
      *bias_out = g_steal_pointer (&bias);
      *bias_changed = TRUE;
    }
  return TRUE;
}

static void
weight_hook (const char  *layer_name,
             BlLayerKind  kind,
             float       *w,
             int64_t      rows,
             int64_t      cols,
             gpointer     user_data)
{
  BlQuantEngine *self = user_data;
  LayerState *st = g_hash_table_lookup (self->layers, layer_name);
  g_autofree float *bias = NULL;
  gboolean bias_changed;
  GError *error = NULL;

  if (st == NULL || !st->a->has_weight || self->hook_error != NULL)
    return;
  if (g_cancellable_set_error_if_cancelled (self->cancellable, &error))
    {
      set_hook_error (self, error);
      return;
    }
  if (!quantize_weight (self, st, w, &bias, &bias_changed, &error))
    {
      set_hook_error (self, error);
      return;
    }
  g_ptr_array_add (self->last_quantized, g_strdup (layer_name));
  if (bias_changed)
    {
      PendingBias *p = g_new (PendingBias, 1);

      p->layer = g_strdup (layer_name);
      p->bias = g_steal_pointer (&bias);
      g_ptr_array_add (self->pending_bias, p);
    }
  report (self, "quantize", ++self->n_weights_done, self->n_weights_total);
}

/* ------------------------------------------------------------------------------------------ */
/* calibration */

/**
 * bl_quant_engine_needs_calibration:
 * @resolved: (element-type BlLayerAssignment): a resolved plan
 *
 * Returns: %TRUE when some layer has a static activation spec or an algorithm that needs
 *   calibration statistics, so the engine needs a calibration text
 */
gboolean
bl_quant_engine_needs_calibration (GPtrArray *resolved)
{
  g_return_val_if_fail (resolved != NULL, FALSE);

  for (guint i = 0; i < resolved->len; i++)
    {
      const BlLayerAssignment *a = g_ptr_array_index (resolved, i);

      if (a->has_activation && (a->activation.granularity == BL_GRANULARITY_TENSOR ||
                                a->activation.granularity == BL_GRANULARITY_CHANNEL))
        return TRUE;
      if (a->has_weight && bl_quant_algo_needs (a->algorithm, NULL) != 0)
        return TRUE;
    }
  return FALSE;
}

static void
calib_window_dims (BlQuantEngine *self,
                   int           *n_windows,
                   int           *ctx)
{
  const BlQuantCalibration *c = bl_quant_plan_get_calibration (self->plan);
  int max_ctx = bl_model_get_config (self->model)->max_position_embeddings;

  *n_windows = c->n_windows > 0 ? c->n_windows : BL_QUANT_CALIB_DEFAULT_WINDOWS;
  *ctx = c->ctx > 0 ? MIN (c->ctx, max_ctx) : MIN (512, max_ctx);
}

static GArray *
calib_windows (BlQuantEngine  *self,
               GError        **error)
{
  int n_windows, ctx;

  if (self->calib_ids == NULL)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT,
                   "The plan needs calibration (a static activation spec or a data-aware "
                   "algorithm), but no calibration text was given");
      return NULL;
    }
  calib_window_dims (self, &n_windows, &ctx);
  return bl_calib_make_windows (self->n_calib_ids, ctx, n_windows,
                                bl_quant_plan_get_calibration (self->plan)->seed, error);
}

static void
calib_progress (int      done,
                int      total,
                gpointer user_data)
{
  report (user_data, "calibration", done, total);
}

/* Makes sure self->calib holds what the algorithms of @resolved need: collected again, for
 * the union of the needs, when a flag or a layer's Hessian is missing. */
static gboolean
ensure_calibration (BlQuantEngine  *self,
                    GPtrArray      *resolved,
                    GError        **error)
{
  BlCalibFlags flags = 0;
  g_autoptr(GPtrArray) hessian = g_ptr_array_new_null_terminated (0, NULL, TRUE);
  gboolean missing = FALSE;
  g_autoptr(GArray) windows = NULL;
  BlCalibOptions options = { 0 };
  const BlQuantCalibration *c = bl_quant_plan_get_calibration (self->plan);
  BlCalib *calib;

  for (guint i = 0; i < resolved->len; i++)
    {
      const BlLayerAssignment *a = g_ptr_array_index (resolved, i);
      BlCalibFlags needs;

      if (!a->has_weight)
        continue;
      needs = bl_quant_algo_needs (a->algorithm, error);
      if (error != NULL && *error != NULL)
        return FALSE;
      flags |= needs;
      if (needs & BL_CALIB_HESSIAN)
        {
          g_ptr_array_add (hessian, a->layer);
          missing |= self->calib_hessian == NULL
                     || !g_hash_table_contains (self->calib_hessian, a->layer);
        }
    }
  if (flags == 0)
    return TRUE;
  missing |= self->calib == NULL || (flags & ~self->calib_flags) != 0;
  if (!missing)
    return TRUE;

  /* keep what was collected before, so that going back and forth collects once */
  flags |= self->calib_flags;
  if (self->calib_hessian != NULL)
    {
      GHashTableIter iter;
      gpointer key;

      g_hash_table_iter_init (&iter, self->calib_hessian);
      while (g_hash_table_iter_next (&iter, &key, NULL))
        if (!g_ptr_array_find_with_equal_func (hessian, key, g_str_equal, NULL))
          g_ptr_array_add (hessian, key);
    }

  if ((windows = calib_windows (self, error)) == NULL)
    return FALSE;
  options.flags = flags | BL_CALIB_ACT_STATS;
  options.hessian_layers = (const char *const *) hessian->pdata;
  options.dataset = c->text;
  options.seed = c->seed;
  calib = bl_calib_collect (self->model, self->backend, self->calib_ids, self->n_calib_ids,
                            windows, &options, self->cancellable, calib_progress, self, error);
  if (calib == NULL)
    return FALSE;

  g_clear_pointer (&self->calib, bl_calib_free);
  self->calib = calib;
  self->calib_flags = options.flags;
  if (self->calib_hessian == NULL)
    self->calib_hessian = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  for (guint i = 0; i < hessian->len; i++)
    if (!g_hash_table_contains (self->calib_hessian, g_ptr_array_index (hessian, i)))
      g_hash_table_add (self->calib_hessian, g_strdup (g_ptr_array_index (hessian, i)));
  return TRUE;
}

typedef struct
{
  GHashTable *layers;           /* name → LayerState to observe */
  float *scratch;
  gsize scratch_len;
  GError *error;
} Observe;

/* Watches the transformed input of each layer to observe, without changing the forward pass
 * (the full-precision model's). lo/hi hold per-channel ranges at [0, dim) and the whole
 * input's at [dim] and beyond. */
static void
observe_hook (const char  *layer_name,
              BlLayerKind  kind,
              int          block,
              float       *x,
              int          n_tokens,
              int          dim,
              gpointer     user_data)
{
  Observe *o = user_data;
  LayerState *st = g_hash_table_lookup (o->layers, layer_name);
  gsize count = (gsize) n_tokens * dim;
  const float *src = x;

  if (st == NULL || o->error != NULL)
    return;
  if (st->has_transform)
    {
      if (count > o->scratch_len)
        {
          o->scratch = g_renew (float, o->scratch, count);
          o->scratch_len = count;
        }
      memcpy (o->scratch, x, count * sizeof (float));
      if (!bl_input_transform_apply (&st->transform, o->scratch, n_tokens, dim, &o->error))
        return;
      src = o->scratch;
    }
  for (int t = 0; t < n_tokens; t++)
    for (int j = 0; j < dim; j++)
      {
        float v = src[(gsize) t * dim + j];

        st->lo[j] = MIN (st->lo[j], v);
        st->hi[j] = MAX (st->hi[j], v);
      }
  for (int j = 0; j < dim; j++)
    {
      st->lo[dim] = MIN (st->lo[dim], st->lo[j]);
      st->hi[dim] = MAX (st->hi[dim], st->hi[j]);
    }
}

/* Observes the static activation ranges of the layers in @todo over the calibration windows,
 * on the full-precision model. */
static gboolean
observe_ranges (BlQuantEngine  *self,
                GHashTable     *todo,
                GError        **error)
{
  g_autoptr(GArray) windows = NULL;
  g_autoptr(BlEngine) fp = NULL;
  BlEngineHooks hooks = { 0 };
  Observe o = { 0 };
  g_autofree double *nll = NULL;
  GHashTableIter iter;
  gpointer value;

  if (g_hash_table_size (todo) == 0)
    return TRUE;
  if ((windows = calib_windows (self, error)) == NULL)
    return FALSE;

  g_hash_table_iter_init (&iter, todo);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      LayerState *st = value;
      int64_t cols = st->a->cols;

      g_free (st->lo);
      g_free (st->hi);
      st->lo = g_new (float, cols + 1);
      st->hi = g_new (float, cols + 1);
      for (int64_t j = 0; j <= cols; j++)
        {
          st->lo[j] = INFINITY;
          st->hi[j] = -INFINITY;
        }
    }

  o.layers = todo;
  hooks.activation = observe_hook;
  hooks.user_data = &o;
  fp = bl_engine_new (self->model, self->backend, &hooks, error);
  if (fp == NULL)
    return FALSE;
  nll = g_new (double, 1);
  for (guint w = 0; w < windows->len; w++)
    {
      const BlWindow *win = &g_array_index (windows, BlWindow, w);

      /* scoring only the last position runs the first length − 1 ids through every layer,
       * as bl_calib_collect() does */
      if (!bl_engine_nll (fp, self->calib_ids + win->start, win->length, win->length - 1, nll,
                          self->cancellable, error))
        {
          g_free (o.scratch);
          g_clear_error (&o.error);
          return FALSE;
        }
      report (self, "ranges", w + 1, windows->len);
    }
  g_free (o.scratch);
  if (o.error != NULL)
    {
      g_propagate_error (error, o.error);
      return FALSE;
    }
  return TRUE;
}

/* ------------------------------------------------------------------------------------------ */
/* construction and plan changes */

static gboolean
is_static (const BlLayerAssignment *a)
{
  return a->has_activation && (a->activation.granularity == BL_GRANULARITY_TENSOR ||
                               a->activation.granularity == BL_GRANULARITY_CHANNEL);
}

static gboolean
set_kv (BlQuantEngine  *self,
        BlQuantPlan    *plan,
        GError        **error)
{
  const char *kv = bl_quant_plan_get_kv_cache (plan);

  self->has_kv = kv != NULL;
  return kv == NULL || bl_format_spec_parse (kv, &self->kv, error);
}

static void
reset_last_quantized (BlQuantEngine *self)
{
  if (self->rtn_fallbacks == NULL)
    self->rtn_fallbacks = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_clear_pointer (&self->last_quantized, g_ptr_array_unref);
  self->last_quantized = g_ptr_array_new_null_terminated (0, g_free, TRUE);
}

static int
count_weights (GPtrArray *resolved)
{
  int n = 0;

  for (guint i = 0; i < resolved->len; i++)
    n += ((BlLayerAssignment *) g_ptr_array_index (resolved, i))->has_weight;
  return n;
}

/**
 * bl_quant_engine_new:
 * @model: the model
 * @backend: the backend; it must outlive the engine
 * @plan: the plan, copied (later changes to @plan do not reach the engine; see
 *   bl_quant_engine_set_plan())
 * @calib_ids: (nullable) (array length=n_calib_ids): the calibration text as token ids, copied;
 *   required when bl_quant_engine_needs_calibration() says so for the plan, and kept for
 *   later plan changes
 * @n_calib_ids: its length
 * @cancellable: (nullable): checked between windows and between layers
 * @progress: (nullable): told about the calibration, quantization and range passes
 * @progress_data: its user data
 * @error: return location for a #GError
 *
 * Resolves @plan against @model, collects the calibration it needs, quantizes the weights and
 * observes the static activation ranges.
 *
 * Returns: (transfer full) (nullable): the engine, or %NULL with @error set (a plan error names
 *   the rule, an algorithm error the layer)
 */
BlQuantEngine *
bl_quant_engine_new (BlModel              *model,
                     BlBackend            *backend,
                     BlQuantPlan          *plan,
                     const int32_t        *calib_ids,
                     gint64                n_calib_ids,
                     GCancellable         *cancellable,
                     BlQuantProgressFunc   progress,
                     gpointer              progress_data,
                     GError              **error)
{
  g_autoptr(BlQuantEngine) self = NULL;
  g_autoptr(GHashTable) todo = NULL;
  BlEngineHooks hooks = { 0 };

  g_return_val_if_fail (BL_IS_MODEL (model), NULL);
  g_return_val_if_fail (backend != NULL, NULL);
  g_return_val_if_fail (BL_IS_QUANT_PLAN (plan), NULL);
  g_return_val_if_fail (calib_ids != NULL || n_calib_ids == 0, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  self = g_new0 (BlQuantEngine, 1);
  self->model = g_object_ref (model);
  self->backend = backend;
  self->plan = bl_quant_plan_copy (plan);
  self->n_threads = MAX (1, bl_backend_get_n_threads (backend));
  self->progress = progress;
  self->progress_data = progress_data;
  self->cancellable = cancellable;
  self->layers = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, layer_state_free);
  if (calib_ids != NULL)
    {
      self->calib_ids = g_memdup2 (calib_ids, sizeof (int32_t) * n_calib_ids);
      self->n_calib_ids = n_calib_ids;
    }
  reset_last_quantized (self);

  if ((self->resolved = bl_quant_plan_resolve (self->plan, model, error)) == NULL ||
      !set_kv (self, self->plan, error))
    return NULL;
  if (bl_quant_engine_needs_calibration (self->resolved) && self->calib_ids == NULL)
    {
      (void) calib_windows (self, error);
      return NULL;
    }
  if (!ensure_calibration (self, self->resolved, error))
    return NULL;

  todo = g_hash_table_new (g_str_hash, g_str_equal);
  for (guint i = 0; i < self->resolved->len; i++)
    {
      const BlLayerAssignment *a = g_ptr_array_index (self->resolved, i);
      LayerState *st = g_new0 (LayerState, 1);

      st->a = a;
      bl_input_transform_init (&st->transform);
      st->act_static = is_static (a);
      st->act_per_channel = st->act_static && a->activation.granularity == BL_GRANULARITY_CHANNEL;
      g_hash_table_insert (self->layers, g_strdup (a->layer), st);
      if (st->act_static)
        g_hash_table_add (todo, a->layer);
    }

  /* weights: once, in the engine's weight hook; the biases it changed afterwards */
  self->n_weights_total = count_weights (self->resolved);
  self->pending_bias = g_ptr_array_new_with_free_func (pending_bias_free);
  hooks.weight_transform = weight_hook;
  hooks.activation = activation_hook;
  hooks.kv_cache = kv_cache_hook;
  hooks.user_data = self;
  self->engine = bl_engine_new (model, backend, &hooks, error);
  if (self->engine == NULL)
    return NULL;
  if (self->hook_error != NULL)
    {
      g_propagate_error (error, g_steal_pointer (&self->hook_error));
      return NULL;
    }
  for (guint i = 0; i < self->pending_bias->len; i++)
    {
      PendingBias *p = g_ptr_array_index (self->pending_bias, i);

      if (!bl_engine_set_bias (self->engine, p->layer, p->bias, error))
        return NULL;
    }
  g_clear_pointer (&self->pending_bias, g_ptr_array_unref);

  /* static activation ranges need the transforms, so they come after the weights */
  {
    g_autoptr(GHashTable) states = g_hash_table_new (g_str_hash, g_str_equal);
    GHashTableIter iter;
    gpointer key;

    g_hash_table_iter_init (&iter, todo);
    while (g_hash_table_iter_next (&iter, &key, NULL))
      g_hash_table_insert (states, key, g_hash_table_lookup (self->layers, key));
    if (!observe_ranges (self, states, error))
      return NULL;
  }
  self->cancellable = NULL;
  return g_steal_pointer (&self);
}

/**
 * bl_quant_engine_set_plan:
 * @self: a quantized engine
 * @plan: the new plan, copied
 * @cancellable: (nullable): checked between layers and windows
 * @error: return location for a #GError
 *
 * Moves the engine to @plan, touching only what changed (bl_quant_plan_diff()): a layer whose
 * weight format, algorithm or options changed is quantized again from its original weight;
 * a layer whose static activation spec or input transform changed has its range observed
 * again; everything else stays as it is. bl_quant_engine_get_last_quantized() lists the
 * re-quantized layers. Calibration statistics are collected again only when @plan needs
 * ones the engine does not hold.
 *
 * On failure the engine may hold a mix of both plans; free it or set a plan again.
 *
 * Returns: %TRUE on success
 */
gboolean
bl_quant_engine_set_plan (BlQuantEngine  *self,
                          BlQuantPlan    *plan,
                          GCancellable   *cancellable,
                          GError        **error)
{
  g_autoptr(BlQuantPlan) copy = NULL;
  g_autoptr(GPtrArray) resolved = NULL;
  g_autoptr(GPtrArray) diff = NULL;
  g_autoptr(GHashTable) todo = NULL;
  g_autoptr(GPtrArray) old_resolved = NULL;
  gboolean ok = FALSE;

  g_return_val_if_fail (self != NULL, FALSE);
  g_return_val_if_fail (BL_IS_QUANT_PLAN (plan), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  copy = bl_quant_plan_copy (plan);
  if ((resolved = bl_quant_plan_resolve (copy, self->model, error)) == NULL)
    return FALSE;
  self->cancellable = cancellable;
  reset_last_quantized (self);
  diff = bl_quant_plan_diff (self->resolved, resolved);

  /* the new plan's calibration settings apply from here on */
  g_set_object (&self->plan, copy);
  if (!set_kv (self, copy, error))
    goto out;
  if (bl_quant_engine_needs_calibration (resolved) && self->calib_ids == NULL)
    {
      (void) calib_windows (self, error);
      goto out;
    }
  if (!ensure_calibration (self, resolved, error))
    goto out;

  /* every layer state now points into the new resolution */
  for (guint i = 0; i < resolved->len; i++)
    {
      const BlLayerAssignment *a = g_ptr_array_index (resolved, i);
      LayerState *st = g_hash_table_lookup (self->layers, a->layer);

      st->a = a;
    }
  old_resolved = g_steal_pointer (&self->resolved);
  self->resolved = g_steal_pointer (&resolved);

  todo = g_hash_table_new (g_str_hash, g_str_equal);
  self->n_weights_done = 0;
  self->n_weights_total = 0;
  for (guint i = 0; i < diff->len; i++)
    self->n_weights_total += !!(((BlLayerDiff *) g_ptr_array_index (diff, i))->changes
                                & BL_LAYER_CHANGE_WEIGHT);

  for (guint i = 0; i < diff->len; i++)
    {
      const BlLayerDiff *d = g_ptr_array_index (diff, i);
      LayerState *st = g_hash_table_lookup (self->layers, d->layer);
      const BlTensor *t;
      g_autofree float *w = NULL;
      g_autofree float *bias = NULL;
      gboolean bias_changed;

      st->act_static = is_static (st->a);
      st->act_per_channel = st->act_static
                            && st->a->activation.granularity == BL_GRANULARITY_CHANNEL;
      if (st->act_static && (d->changes & BL_LAYER_CHANGE_WEIGHT || !is_static (d->before) ||
                             !bl_layer_assignment_activation_equal (d->before, d->after)))
        g_hash_table_insert (todo, st->a->layer, st);
      if (!(d->changes & BL_LAYER_CHANGE_WEIGHT))
        continue;

      if (g_cancellable_set_error_if_cancelled (cancellable, error))
        goto out;
      t = bl_model_get_tensor (self->model, d->layer);
      w = g_new (float, t->n_elements);
      bl_tensor_to_f32 (t, w);
      if (!quantize_weight (self, st, w, &bias, &bias_changed, error))
        goto out;
      if (!bl_engine_set_weight (self->engine, d->layer, w, error))
        goto out;
      /* the bias the layer must have now: the corrected one, or the original (or none) */
      if (!bias_changed)
        bias = read_bias (self, d->layer);
      if ((bias != NULL || d->before->has_weight)
          && !bl_engine_set_bias (self->engine, d->layer, bias, error))
        goto out;
      g_ptr_array_add (self->last_quantized, g_strdup (d->layer));
      report (self, "quantize", ++self->n_weights_done, self->n_weights_total);
    }

  ok = observe_ranges (self, todo, error);

out:
  self->cancellable = NULL;
  return ok;
}

/**
 * bl_quant_engine_check:
 * @self: a quantized engine
 * @error: return location for a #GError
 *
 * The engine's hooks cannot fail a forward pass; they keep the first error they meet (an
 * input transform whose size does not match, a quantizer that refuses its input) for this
 * call. Call it after each forward pass whose result matters.
 *
 * Returns: %TRUE when no hook has failed since the last call
 */
gboolean
bl_quant_engine_check (BlQuantEngine  *self,
                       GError        **error)
{
  g_return_val_if_fail (self != NULL, FALSE);

  if (self->hook_error == NULL)
    return TRUE;
  g_propagate_error (error, g_steal_pointer (&self->hook_error));
  return FALSE;
}

/**
 * bl_quant_engine_get_engine:
 * @self: a quantized engine
 *
 * Returns: (transfer none): the engine that runs the plan, for bl_run_new() and friends
 */
BlEngine *
bl_quant_engine_get_engine (BlQuantEngine *self)
{
  g_return_val_if_fail (self != NULL, NULL);
  return self->engine;
}

/**
 * bl_quant_engine_get_plan:
 * @self: a quantized engine
 *
 * Returns: (transfer none): the engine's own copy of the plan it runs
 */
BlQuantPlan *
bl_quant_engine_get_plan (BlQuantEngine *self)
{
  g_return_val_if_fail (self != NULL, NULL);
  return self->plan;
}

/**
 * bl_quant_engine_get_assignments:
 * @self: a quantized engine
 *
 * Returns: (transfer none) (element-type BlLayerAssignment): the resolved plan
 */
GPtrArray *
bl_quant_engine_get_assignments (BlQuantEngine *self)
{
  g_return_val_if_fail (self != NULL, NULL);
  return self->resolved;
}

static int
compare_names (gconstpointer a,
               gconstpointer b)
{
  return strcmp (*(const char *const *) a, *(const char *const *) b);
}

/**
 * bl_quant_engine_get_rtn_fallbacks:
 * @self: a quantized engine
 *
 * The routed-expert weights whose rule names a data-aware algorithm (GPTQ, AWQ, …) but
 * whose expert the router sent no calibration token, so that there were no statistics to
 * fit: they are rounded to nearest in their format instead.
 *
 * Returns: (transfer full) (array zero-terminated=1): their names, sorted; free with
 *   g_strfreev()
 */
char **
bl_quant_engine_get_rtn_fallbacks (BlQuantEngine *self)
{
  GHashTableIter it;
  gpointer name;
  g_autoptr(GPtrArray) names = g_ptr_array_new ();

  g_return_val_if_fail (self != NULL, NULL);
  g_hash_table_iter_init (&it, self->rtn_fallbacks);
  while (g_hash_table_iter_next (&it, &name, NULL))
    g_ptr_array_add (names, g_strdup (name));
  g_ptr_array_sort (names, compare_names);
  g_ptr_array_add (names, NULL);
  return (char **) g_ptr_array_free (g_steal_pointer (&names), FALSE);
}

/**
 * bl_quant_engine_get_last_quantized:
 * @self: a quantized engine
 *
 * Returns: (transfer none) (array zero-terminated=1): the layers whose weights the last
 *   bl_quant_engine_new() or bl_quant_engine_set_plan() quantized
 */
const char *const *
bl_quant_engine_get_last_quantized (BlQuantEngine *self)
{
  static const char *const none[] = { NULL };

  g_return_val_if_fail (self != NULL, NULL);
  /* an empty NULL-terminated GPtrArray may have no storage yet */
  return self->last_quantized->pdata != NULL ? (const char *const *) self->last_quantized->pdata
                                             : none;
}
