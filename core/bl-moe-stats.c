/* bl-moe-stats.c: per-expert weight statistics, routing frequency and expert quantization loss
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "bl-moe.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

#include "bl-engine.h"
#include "bl-error.h"
#include "bl-metrics-error.h"
#include "bl-protocol.h"

static const BlMoeRole expert_roles[] = { BL_MOE_ROLE_GATE, BL_MOE_ROLE_UP, BL_MOE_ROLE_DOWN };

static void
weight_stats_clear (gpointer data)
{
  g_free (((BlMoeWeightStats *) data)->name);
}

/* Widens a 2-D tensor to fp32, or fails with the tensor's name. */
static float *
widen (BlModel     *model,
       const char  *name,
       gint64      *rows,
       gint64      *cols,
       GError     **error)
{
  const BlTensor *t = bl_model_get_tensor (model, name);
  float *w;

  if (t == NULL || t->n_dims != 2)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_NOT_FOUND,
                   "Model %s has no two-dimensional tensor “%s”", bl_model_get_path (model), name);
      return NULL;
    }
  if ((w = g_try_new (float, t->n_elements)) == NULL)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_OUT_OF_MEMORY,
                   "Cannot allocate %" G_GINT64_FORMAT " bytes to widen tensor “%s”",
                   t->n_elements * (gint64) sizeof (float), name);
      return NULL;
    }
  bl_tensor_to_f32 (t, w);
  *rows = t->shape[0];
  *cols = t->shape[1];
  return w;
}

/**
 * bl_moe_weight_stats:
 * @model: a mixture-of-experts model
 * @spec: (nullable): a weight format for the QSNR column, or %NULL for none
 * @cancellable: (nullable): checked between tensors
 * @error: return location for a #GError
 *
 * RMS, absmax, Pearson kurtosis, crest factor and (with @spec) the round-to-nearest QSNR of
 * every routed expert's and the shared expert's gate, up and down projections, in block,
 * expert, role order.
 *
 * Returns: (transfer full) (element-type BlMoeWeightStats): the statistics, or %NULL with
 *   %BL_ERROR_UNSUPPORTED_ARCHITECTURE for a dense model, or another error
 */
GArray *
bl_moe_weight_stats (BlModel             *model,
                     const BlFormatSpec  *spec,
                     GCancellable        *cancellable,
                     GError             **error)
{
  const BlModelConfig *c;
  BlMoeStyle style;
  g_autoptr(GArray) out = NULL;

  g_return_val_if_fail (BL_IS_MODEL (model), NULL);

  c = bl_model_get_config (model);
  if ((style = bl_moe_config_style (c)) == BL_MOE_STYLE_NONE)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_UNSUPPORTED_ARCHITECTURE,
                   "%s is a dense %s model, not a mixture of experts",
                   bl_model_get_path (model), c->model_type);
      return NULL;
    }

  out = g_array_new (FALSE, TRUE, sizeof (BlMoeWeightStats));
  g_array_set_clear_func (out, weight_stats_clear);
  for (int b = 0; b < c->n_layers; b++)
    for (int e = 0; e < c->n_experts + (c->shared_expert_intermediate_size > 0); e++)
      for (guint r = 0; r < G_N_ELEMENTS (expert_roles); r++)
        {
          BlMoeWeightStats s = { 0 };
          g_autofree float *w = NULL;
          gint64 rows, cols;
          double sum_sq = 0.0, absmax = 0.0;

          if (g_cancellable_set_error_if_cancelled (cancellable, error))
            return NULL;
          s.block = b;
          s.expert = e < c->n_experts ? e : BL_MOE_SHARED_EXPERT;
          s.role = expert_roles[r];
          s.name = bl_moe_tensor_name (style, b, s.expert, s.role);
          if ((w = widen (model, s.name, &rows, &cols, error)) == NULL)
            {
              g_free (s.name);
              return NULL;
            }
          s.n_params = rows * cols;
          for (gint64 i = 0; i < s.n_params; i++)
            {
              sum_sq += (double) w[i] * w[i];
              absmax = MAX (absmax, fabs (w[i]));
            }
          s.rms = sqrt (sum_sq / (double) s.n_params);
          s.absmax = absmax;
          s.kurtosis = bl_metrics_kurtosis (w, s.n_params);
          s.crest = s.rms > 0.0 ? absmax / s.rms : 0.0;
          s.qsnr_db = NAN;
          if (spec != NULL)
            {
              g_autofree float *q = g_new (float, s.n_params);
              BlErrorStats err;

              if (!bl_format_fake_quant (spec, w, q, rows, cols, 1, error))
                {
                  g_prefix_error (error, "%s: ", s.name);
                  g_free (s.name);
                  return NULL;
                }
              bl_error_stats_init (&err);
              bl_error_stats_add (&err, w, q, s.n_params);
              s.qsnr_db = bl_error_stats_qsnr_db (&err);
            }
          g_array_append_val (out, s);
        }
  return g_steal_pointer (&out);
}

/* Routing frequency and the routed inputs of every expert */

typedef struct
{
  float *x;                   /* [max_rows, hidden] the first inputs routed to the expert */
  int n_rows;
  double weight_sum;          /* Σ of its post-top-k routing weights */
} ExpertAcc;

struct _BlMoeProfile
{
  BlModel *model;
  BlMoeStyle style;
  int hidden;
  int max_rows;
  GArray *blocks;             /* BlMoeBlockRouting, one per transformer block */
  ExpertAcc **acc;            /* [block][expert] */
  GHashTable *gate_of;        /* expert gate-projection name → block · n_experts + expert */
};

/**
 * bl_moe_profile_free:
 * @self: (nullable): a profile
 */
void
bl_moe_profile_free (BlMoeProfile *self)
{
  if (self == NULL)
    return;
  for (guint b = 0; self->blocks != NULL && b < self->blocks->len; b++)
    {
      BlMoeBlockRouting *r = &g_array_index (self->blocks, BlMoeBlockRouting, b);

      for (int e = 0; e < r->n_experts; e++)
        g_free (self->acc[b][e].x);
      g_free (self->acc[b]);
      g_free (r->experts);
    }
  g_free (self->acc);
  g_clear_pointer (&self->blocks, g_array_unref);
  g_clear_pointer (&self->gate_of, g_hash_table_unref);
  g_clear_object (&self->model);
  g_free (self);
}

/**
 * bl_moe_profile_new:
 * @model: a mixture-of-experts model
 * @max_rows: how many routed inputs to keep per expert for bl_moe_profile_expert_loss()
 *   (the first ones routed to it; 0 keeps none)
 * @error: return location for a #GError
 *
 * An empty routing profile of @model; bl_moe_profile_run() fills it.
 *
 * Returns: (transfer full): the profile, or %NULL with %BL_ERROR_UNSUPPORTED_ARCHITECTURE
 *   for a dense model
 */
BlMoeProfile *
bl_moe_profile_new (BlModel  *model,
                    int       max_rows,
                    GError  **error)
{
  const BlModelConfig *c;
  BlMoeProfile *self;

  g_return_val_if_fail (BL_IS_MODEL (model), NULL);
  g_return_val_if_fail (max_rows >= 0, NULL);

  c = bl_model_get_config (model);
  if (bl_moe_config_style (c) == BL_MOE_STYLE_NONE)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_UNSUPPORTED_ARCHITECTURE,
                   "%s is a dense %s model, not a mixture of experts",
                   bl_model_get_path (model), c->model_type);
      return NULL;
    }

  self = g_new0 (BlMoeProfile, 1);
  self->model = g_object_ref (model);
  self->style = bl_moe_config_style (c);
  self->hidden = c->hidden_size;
  self->max_rows = max_rows;
  self->blocks = g_array_new (FALSE, TRUE, sizeof (BlMoeBlockRouting));
  self->acc = g_new0 (ExpertAcc *, c->n_layers);
  self->gate_of = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  for (int b = 0; b < c->n_layers; b++)
    {
      BlMoeBlockRouting r = { b, c->n_experts, c->n_experts_per_tok, 0, NULL, 0.0 };

      r.experts = g_new0 (BlMoeExpertRouting, c->n_experts);
      g_array_append_val (self->blocks, r);
      self->acc[b] = g_new0 (ExpertAcc, c->n_experts);
      for (int e = 0; e < c->n_experts; e++)
        g_hash_table_insert (self->gate_of,
                             bl_moe_tensor_name (self->style, b, e, BL_MOE_ROLE_GATE),
                             GINT_TO_POINTER (b * c->n_experts + e));
    }
  return self;
}

static void
routing_hook (int          block,
              const int   *experts,
              const float *weights,
              int          n_tokens,
              int          n_experts,
              int          top_k,
              gpointer     user_data)
{
  BlMoeProfile *self = user_data;
  BlMoeBlockRouting *r = &g_array_index (self->blocks, BlMoeBlockRouting, block);

  r->n_tokens += n_tokens;
  for (int i = 0; i < n_tokens * top_k; i++)
    {
      r->experts[experts[i]].tokens++;
      self->acc[block][experts[i]].weight_sum += weights[i];
    }
}

/* Keeps the first max_rows inputs of every expert's gate projection: the engine calls the
 * hook with exactly the rows routed to the expert (bl-moe-forward.c). */
static void
activation_hook (const char  *layer_name,
                 BlLayerKind  kind,
                 int          block,
                 float       *x,
                 int          n_tokens,
                 int          dim,
                 gpointer     user_data)
{
  BlMoeProfile *self = user_data;
  gpointer value;
  ExpertAcc *a;
  int take;
  int n_experts;

  if (kind != BL_LAYER_MLP_GATE || self->max_rows == 0 ||
      !g_hash_table_lookup_extended (self->gate_of, layer_name, NULL, &value))
    return;
  n_experts = g_array_index (self->blocks, BlMoeBlockRouting, 0).n_experts;
  a = &self->acc[GPOINTER_TO_INT (value) / n_experts][GPOINTER_TO_INT (value) % n_experts];
  take = MIN (n_tokens, self->max_rows - a->n_rows);
  if (take <= 0)
    return;
  if (a->x == NULL)
    a->x = g_new (float, (size_t) self->max_rows * dim);
  memcpy (a->x + (size_t) a->n_rows * dim, x, sizeof (float) * (size_t) take * dim);
  a->n_rows += take;
}

/**
 * bl_moe_profile_run:
 * @self: a profile
 * @backend: the backend to run the full-precision model on
 * @ids: the tokenized calibration text
 * @n_ids: its length
 * @windows: (element-type BlWindow): the windows to run, e.g. from bl_calib_make_windows()
 *   (each runs from its start for its length; first_target and bos_first are not read)
 * @cancellable: (nullable): checked between windows and layers
 * @error: return location for a #GError
 *
 * Runs the model over the windows and adds their routing to the profile: for every block
 * and expert the tokens routed to it, the activation frequency f = tokens / tokens seen,
 * the mean routing weight w over the routed tokens, and the block's load-balance std.
 * Calling it again adds more windows.
 *
 * Returns: %TRUE on success
 */
gboolean
bl_moe_profile_run (BlMoeProfile   *self,
                    BlBackend      *backend,
                    const int32_t  *ids,
                    gint64          n_ids,
                    GArray         *windows,
                    GCancellable   *cancellable,
                    GError        **error)
{
  BlEngineHooks hooks = { 0 };
  g_autoptr(BlEngine) engine = NULL;

  g_return_val_if_fail (self != NULL && backend != NULL, FALSE);
  g_return_val_if_fail (windows != NULL, FALSE);
  g_return_val_if_fail (ids != NULL || windows->len == 0, FALSE);

  hooks.routing = routing_hook;
  hooks.activation = activation_hook;
  hooks.user_data = self;
  if ((engine = bl_engine_new (self->model, backend, &hooks, error)) == NULL)
    return FALSE;
  for (guint w = 0; w < windows->len; w++)
    {
      const BlWindow *win = &g_array_index (windows, BlWindow, w);

      if (win->start < 0 || win->length < 1 || win->start + win->length > n_ids)
        {
          g_set_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT,
                       "Window %u (ids %" G_GINT64_FORMAT "…%" G_GINT64_FORMAT ") is outside "
                       "the %" G_GINT64_FORMAT " calibration ids", w, win->start,
                       win->start + win->length, n_ids);
          return FALSE;
        }
      if (!bl_engine_forward (engine, ids + win->start, win->length, NULL, cancellable, error))
        return FALSE;
    }

  for (guint b = 0; b < self->blocks->len; b++)
    {
      BlMoeBlockRouting *r = &g_array_index (self->blocks, BlMoeBlockRouting, b);
      double mean = 0.0, var = 0.0;

      for (int e = 0; e < r->n_experts; e++)
        {
          BlMoeExpertRouting *x = &r->experts[e];

          x->frequency = r->n_tokens > 0 ? (double) x->tokens / (double) r->n_tokens : 0.0;
          x->mean_weight = x->tokens > 0 ? self->acc[b][e].weight_sum / (double) x->tokens : 0.0;
          mean += x->frequency / r->n_experts;
        }
      for (int e = 0; e < r->n_experts; e++)
        var += (r->experts[e].frequency - mean) * (r->experts[e].frequency - mean);
      r->load_std = sqrt (var / r->n_experts);
    }
  return TRUE;
}

/**
 * bl_moe_profile_get_model:
 * @self: a profile
 *
 * Returns: (transfer none): the profiled model
 */
BlModel *
bl_moe_profile_get_model (BlMoeProfile *self)
{
  g_return_val_if_fail (self != NULL, NULL);
  return self->model;
}

/**
 * bl_moe_profile_get_n_blocks:
 * @self: a profile
 *
 * Returns: the MoE blocks (every transformer block of the model)
 */
guint
bl_moe_profile_get_n_blocks (BlMoeProfile *self)
{
  g_return_val_if_fail (self != NULL, 0);
  return self->blocks->len;
}

/**
 * bl_moe_profile_get_block:
 * @self: a profile
 * @index: below bl_moe_profile_get_n_blocks()
 *
 * Returns: (transfer none): the routing statistics of block @index
 */
const BlMoeBlockRouting *
bl_moe_profile_get_block (BlMoeProfile *self,
                          guint         index)
{
  g_return_val_if_fail (self != NULL && index < self->blocks->len, NULL);
  return &g_array_index (self->blocks, BlMoeBlockRouting, index);
}

/* y[m, out] = silu(x·gateᵀ) ⊙ (x·upᵀ) · downᵀ */
static void
expert_mlp (const float *x,
            int          m,
            int          hidden,
            int          inter,
            const float *gate,
            const float *up,
            const float *down,
            float       *g,
            float       *u,
            float       *y)
{
  cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasTrans, m, inter, hidden, 1.0f, x, hidden,
               gate, hidden, 0.0f, g, inter);
  cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasTrans, m, inter, hidden, 1.0f, x, hidden,
               up, hidden, 0.0f, u, inter);
  for (size_t i = 0; i < (size_t) m * inter; i++)
    g[i] = g[i] / (1.0f + expf (-g[i])) * u[i];
  cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasTrans, m, hidden, inter, 1.0f, g, inter,
               down, inter, 0.0f, y, hidden);
}

/**
 * bl_moe_profile_expert_loss:
 * @self: a profile after bl_moe_profile_run()
 * @index: the block
 * @expert: the routed expert
 * @spec: the weight format
 * @out_loss: (out): ε_e(spec)
 * @error: return location for a #GError
 *
 * The quantization loss of one expert in one format, MC-MoE's ε_{i,e}(b) (methods.md §9):
 * the mean squared error, per output element, of the expert's SwiGLU output when all three
 * of its projections are fake-quantized to @spec (round to nearest), over the calibration
 * inputs the router sent it (the first max_rows of them). An expert that received no token
 * has ε = 0: its activation frequency, and so its importance, is 0 as well.
 *
 * Returns: %TRUE on success
 */
gboolean
bl_moe_profile_expert_loss (BlMoeProfile        *self,
                            guint                index,
                            int                  expert,
                            const BlFormatSpec  *spec,
                            double              *out_loss,
                            GError             **error)
{
  const BlMoeBlockRouting *r;
  ExpertAcc *a;
  float *w[3] = { NULL, NULL, NULL };
  float *q[3] = { NULL, NULL, NULL };
  g_autofree float *g = NULL;
  g_autofree float *u = NULL;
  g_autofree float *y_ref = NULL;
  g_autofree float *y_q = NULL;
  gint64 rows[3], cols[3];
  gboolean ok = FALSE;
  double sum = 0.0;
  int m, inter;

  g_return_val_if_fail (self != NULL && spec != NULL && out_loss != NULL, FALSE);
  g_return_val_if_fail (index < self->blocks->len, FALSE);
  r = &g_array_index (self->blocks, BlMoeBlockRouting, index);
  g_return_val_if_fail (expert >= 0 && expert < r->n_experts, FALSE);

  a = &self->acc[index][expert];
  *out_loss = 0.0;
  if ((m = a->n_rows) == 0)
    return TRUE;

  for (int i = 0; i < 3; i++)
    {
      g_autofree char *name = bl_moe_tensor_name (self->style, r->block, expert, expert_roles[i]);

      if ((w[i] = widen (self->model, name, &rows[i], &cols[i], error)) == NULL)
        goto out;
      q[i] = g_new (float, rows[i] * cols[i]);
      if (!bl_format_fake_quant (spec, w[i], q[i], rows[i], cols[i], 1, error))
        {
          g_prefix_error (error, "%s: ", name);
          goto out;
        }
    }
  inter = (int) rows[0];
  g = g_new (float, (size_t) m * inter);
  u = g_new (float, (size_t) m * inter);
  y_ref = g_new (float, (size_t) m * self->hidden);
  y_q = g_new (float, (size_t) m * self->hidden);
  expert_mlp (a->x, m, self->hidden, inter, w[0], w[1], w[2], g, u, y_ref);
  expert_mlp (a->x, m, self->hidden, inter, q[0], q[1], q[2], g, u, y_q);
  for (size_t i = 0; i < (size_t) m * self->hidden; i++)
    {
      double d = (double) y_q[i] - y_ref[i];

      sum += d * d;
    }
  *out_loss = sum / ((double) m * self->hidden);
  ok = TRUE;

out:
  for (int i = 0; i < 3; i++)
    {
      g_free (w[i]);
      g_free (q[i]);
    }
  return ok;
}
