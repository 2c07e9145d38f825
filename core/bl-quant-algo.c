/* bl-quant-algo.c: the algorithm dispatcher, the input transform and RTN
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * A composed name ("hadamard+gptq") is split at '+' into steps. Each step has a role:
 * transforms rewrite the weight and the input statistics (W·x = W'·T(x) exactly before any
 * rounding), one quantizer rounds the weight onto the format's grid, and post steps correct
 * what rounding left (bias correction). The steps run in the order written, which must be
 * transforms, then at most one quantizer, then post steps; "rtn" is the quantizer when none
 * is named.
 */
#include "bl-quant-algo-private.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

#include "bl-error.h"
#include "bl-hadamard.h"

typedef enum
{
  ROLE_TRANSFORM,
  ROLE_QUANTIZE,
  ROLE_POST,
} StepRole;

typedef struct
{
  const char *name;
  StepRole role;
  BlCalibFlags needs;
  const char *const *keys;
  gboolean (*run) (BlQuantState *state,
                   GError      **error);
} AlgoStep;

static const char *const no_keys[] = { NULL };
static const char *const gptq_keys[] = { "damp", "act_order", "block_size", "static_groups", NULL };
static const char *const clip_keys[] = { "clip_grid", "clip_max_shrink", "clip_norm", NULL };
static const char *const awq_keys[] = { "awq_grid", NULL };
static const char *const smooth_keys[] = { "alpha", NULL };
static const char *const hadamard_keys[] = { "hadamard_seed", "hadamard_block", NULL };

static const AlgoStep steps[] = {
  { "rtn", ROLE_QUANTIZE, 0, no_keys, bl_quant_rtn },
  { "hadamard", ROLE_TRANSFORM, 0, hadamard_keys, bl_quant_hadamard },
  { "smoothquant", ROLE_TRANSFORM, BL_CALIB_ACT_STATS, smooth_keys, bl_quant_smoothquant },
  { "clip-mse", ROLE_QUANTIZE, 0, clip_keys, bl_quant_clip_mse },
  { "gptq", ROLE_QUANTIZE, BL_CALIB_HESSIAN, gptq_keys, bl_quant_gptq },
  { "awq", ROLE_QUANTIZE, BL_CALIB_ACT_STATS | BL_CALIB_HESSIAN, awq_keys, bl_quant_awq },
  { "bias-correction", ROLE_POST, BL_CALIB_ACT_STATS, no_keys, bl_quant_bias_correction },
};

#define MAX_STEPS 8

static const AlgoStep *
lookup_step (const char *name,
             gsize       len)
{
  for (gsize i = 0; i < G_N_ELEMENTS (steps); i++)
    if (strlen (steps[i].name) == len && strncmp (steps[i].name, name, len) == 0)
      return &steps[i];
  return NULL;
}

/* splits and checks the composition; on success @out has @n_out steps, quantizer included */
static gboolean
parse_algorithm (const char      *algorithm,
                 const AlgoStep **out,
                 int             *n_out,
                 GError         **error)
{
  const char *p = algorithm;
  StepRole last = ROLE_TRANSFORM;
  gboolean have_quantizer = FALSE;
  int n = 0;

  if (algorithm == NULL || *algorithm == '\0')
    {
      g_set_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT, "empty algorithm name");
      return FALSE;
    }
  for (;;)
    {
      const char *end = strchr (p, '+');
      gsize len = end != NULL ? (gsize) (end - p) : strlen (p);
      const AlgoStep *step = lookup_step (p, len);

      if (step == NULL)
        {
          g_autoptr (GString) known = g_string_new (NULL);

          for (gsize i = 0; i < G_N_ELEMENTS (steps); i++)
            g_string_append_printf (known, "%s%s", i ? ", " : "", steps[i].name);
          g_set_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT,
                       "unknown algorithm “%.*s” in “%s” (known: %s, joined with +)",
                       (int) len, p, algorithm, known->str);
          return FALSE;
        }
      if (step->role < last || (step->role == ROLE_QUANTIZE && have_quantizer))
        {
          g_set_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT,
                       "algorithm “%s”: “%s” is out of place; write transforms (hadamard, "
                       "smoothquant) first, then one quantizer (rtn, clip-mse, gptq, awq), then "
                       "bias-correction", algorithm, step->name);
          return FALSE;
        }
      if (step->role == ROLE_POST && !have_quantizer)
        {
          if (n + 1 >= MAX_STEPS)
            break;
          out[n++] = lookup_step ("rtn", 3);
          have_quantizer = TRUE;
        }
      for (int i = 0; i < n; i++)
        if (out[i] == step)
          {
            g_set_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT,
                         "algorithm “%s” names “%s” twice", algorithm, step->name);
            return FALSE;
          }
      if (n >= MAX_STEPS)
        break;
      out[n++] = step;
      last = step->role;
      have_quantizer |= step->role == ROLE_QUANTIZE;
      if (end == NULL)
        {
          if (!have_quantizer)
            {
              if (n >= MAX_STEPS)
                break;
              out[n++] = lookup_step ("rtn", 3);
            }
          *n_out = n;
          return TRUE;
        }
      p = end + 1;
    }
  g_set_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT,
               "algorithm “%s” has more than %d steps", algorithm, MAX_STEPS);
  return FALSE;
}

/**
 * bl_quant_algo_needs:
 * @algorithm: an algorithm name or composition (see bl-quant-algo.h)
 * @error: return location for a #GError
 *
 * Which calibration statistics bl_quant_algo_apply() needs in its @stats for @algorithm, so a
 * caller knows what to ask bl_calib_collect() for: 0 for "rtn", "clip-mse" and "hadamard" (no
 * calibration at all), %BL_CALIB_HESSIAN for GPTQ and AWQ (whose losses are the layer output
 * error tr(ΔW·H·ΔWᵀ)), %BL_CALIB_ACT_STATS for SmoothQuant, AWQ and bias correction. The
 * flags of a composition are the union of its steps'.
 *
 * Returns: the flags, or 0 with @error set for an unknown name (check @error)
 */
BlCalibFlags
bl_quant_algo_needs (const char  *algorithm,
                     GError     **error)
{
  const AlgoStep *list[MAX_STEPS];
  BlCalibFlags needs = 0;
  int n = 0;

  if (!parse_algorithm (algorithm, list, &n, error))
    return 0;
  for (int i = 0; i < n; i++)
    needs |= list[i]->needs;
  return needs;
}

static gboolean
key_known (const AlgoStep *const *list,
           int                    n,
           const char            *key)
{
  for (int i = 0; i < n; i++)
    for (const char *const *k = list[i]->keys; *k != NULL; k++)
      if (strcmp (*k, key) == 0)
        return TRUE;
  return FALSE;
}

static gboolean
check_options (const char            *algorithm,
               const AlgoStep *const *list,
               int                    n,
               JsonObject            *options,
               GError               **error)
{
  g_autoptr (GList) members = NULL;

  if (options == NULL)
    return TRUE;
  members = json_object_get_members (options);
  for (GList *l = members; l != NULL; l = l->next)
    if (!key_known (list, n, l->data))
      {
        g_autoptr (GString) known = g_string_new (NULL);

        for (int i = 0; i < n; i++)
          for (const char *const *k = list[i]->keys; *k != NULL; k++)
            g_string_append_printf (known, "%s%s", known->len ? ", " : "", *k);
        g_set_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT,
                     "option “%s” is not one algorithm “%s” reads (it reads: %s)",
                     (const char *) l->data, algorithm, known->len ? known->str : "none");
        return FALSE;
      }
  return TRUE;
}

/**
 * bl_quant_algo_validate:
 * @algorithm: an algorithm name or composition
 * @options: (nullable): its options
 * @error: return location for a #GError
 *
 * Checks a name and its options without running anything, for plan validation.
 *
 * Returns: %FALSE with %BL_ERROR_INVALID_ARGUMENT naming the bad part
 */
gboolean
bl_quant_algo_validate (const char  *algorithm,
                        JsonObject  *options,
                        GError     **error)
{
  const AlgoStep *list[MAX_STEPS];
  int n = 0;

  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  return parse_algorithm (algorithm, list, &n, error)
         && check_options (algorithm, list, n, options, error);
}

/**
 * bl_quant_algo_list_options:
 *
 * Returns: a human-readable table of the algorithms and their options
 */
const char *
bl_quant_algo_list_options (void)
{
  return "rtn              round to nearest on the format's grid\n"
         "clip-mse         per-group range shrink of least Σ|error|^norm (IST-DASLab gptq quant.py)\n"
         "                   clip_grid (100), clip_max_shrink (0.8), clip_norm (2.4)\n"
         "gptq             GPTQ (Frantar et al. 2022); needs the Hessian\n"
         "                   damp (0.01), act_order (false), block_size (128), static_groups (false)\n"
         "awq              AWQ scale search (Lin et al. 2023); needs mean |x| and the Hessian\n"
         "                   awq_grid (20)\n"
         "smoothquant      SmoothQuant migration (Xiao et al. 2022); needs max |x| per channel\n"
         "                   alpha (0.5)\n"
         "hadamard         QuaRot-style randomized Hadamard of the input dimension\n"
         "                   hadamard_seed (0), hadamard_block (0: largest power of two dividing cols)\n"
         "bias-correction  b ← b − (W_q − W)·E[x] (Nagel et al. 2019); needs the input mean\n"
         "compose with +, e.g. hadamard+gptq, smoothquant+gptq, awq+bias-correction\n";
}

/* ------------------------------------------------------------------------------------------ */
/* option readers */

static gboolean
option_node (JsonObject  *options,
             const char  *key,
             JsonNode   **out)
{
  *out = options != NULL ? json_object_get_member (options, key) : NULL;
  return *out != NULL;
}

gboolean
bl_quant_option_double (JsonObject  *options,
                        const char  *key,
                        double       min,
                        double       max,
                        double      *value,
                        GError     **error)
{
  JsonNode *node;
  double v;

  if (!option_node (options, key, &node))
    return TRUE;
  if (!JSON_NODE_HOLDS_VALUE (node)
      || (json_node_get_value_type (node) != G_TYPE_DOUBLE && json_node_get_value_type (node) != G_TYPE_INT64))
    {
      g_set_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT, "option “%s” must be a number", key);
      return FALSE;
    }
  v = json_node_get_double (node);
  if (!(v >= min && v <= max))
    {
      g_set_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT,
                   "option “%s” = %g is outside [%g, %g]", key, v, min, max);
      return FALSE;
    }
  *value = v;
  return TRUE;
}

gboolean
bl_quant_option_int (JsonObject  *options,
                     const char  *key,
                     gint64       min,
                     gint64       max,
                     gint64      *value,
                     GError     **error)
{
  JsonNode *node;
  gint64 v;

  if (!option_node (options, key, &node))
    return TRUE;
  if (!JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_INT64)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT, "option “%s” must be an integer", key);
      return FALSE;
    }
  v = json_node_get_int (node);
  if (v < min || v > max)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT,
                   "option “%s” = %" G_GINT64_FORMAT " is outside [%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT "]",
                   key, v, min, max);
      return FALSE;
    }
  *value = v;
  return TRUE;
}

gboolean
bl_quant_option_bool (JsonObject  *options,
                      const char  *key,
                      gboolean    *value,
                      GError     **error)
{
  JsonNode *node;

  if (!option_node (options, key, &node))
    return TRUE;
  if (!JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_BOOLEAN)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT, "option “%s” must be true or false", key);
      return FALSE;
    }
  *value = json_node_get_boolean (node);
  return TRUE;
}

/* ------------------------------------------------------------------------------------------ */
/* the input transform */

/**
 * bl_input_transform_init:
 * @transform: (out caller-allocates): a transform
 *
 * Sets @transform to the identity.
 */
void
bl_input_transform_init (BlInputTransform *transform)
{
  g_return_if_fail (transform != NULL);
  memset (transform, 0, sizeof *transform);
}

/**
 * bl_input_transform_clear:
 * @transform: a transform
 *
 * Frees what @transform holds and resets it to the identity.
 */
void
bl_input_transform_clear (BlInputTransform *transform)
{
  g_return_if_fail (transform != NULL);
  g_free (transform->scale);
  g_free (transform->bias);
  bl_input_transform_init (transform);
}

/**
 * bl_input_transform_is_identity:
 * @transform: a transform
 *
 * Returns: %TRUE when the layer's input needs nothing and no bias is added
 */
gboolean
bl_input_transform_is_identity (const BlInputTransform *transform)
{
  g_return_val_if_fail (transform != NULL, TRUE);
  return transform->scale == NULL && !transform->hadamard && transform->bias == NULL;
}

static void
divide_channels (const float *scale,
                 float       *x,
                 int64_t      n_tokens,
                 int64_t      dim)
{
  for (int64_t t = 0; t < n_tokens; t++)
    for (int64_t j = 0; j < dim; j++)
      x[t * dim + j] /= scale[j];
}

/**
 * bl_input_transform_apply:
 * @transform: a transform
 * @x: (array): the layer's input, @n_tokens × @dim row-major, changed in place
 * @n_tokens: rows
 * @dim: input features; must equal the transform's cols
 * @error: return location for a #GError
 *
 * Applies the input side of @transform (division by the channel scales, the online Hadamard
 * rotation, in the transform's order). The output @bias is the caller's to add after the
 * matmul.
 *
 * Returns: %FALSE with %BL_ERROR_INVALID_ARGUMENT when @dim does not match
 */
gboolean
bl_input_transform_apply (const BlInputTransform *transform,
                          float                  *x,
                          int64_t                 n_tokens,
                          int64_t                 dim,
                          GError                **error)
{
  g_autofree float *signs = NULL;

  g_return_val_if_fail (transform != NULL, FALSE);
  g_return_val_if_fail (x != NULL || n_tokens == 0, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (transform->scale == NULL && !transform->hadamard)
    return TRUE;
  if (dim != transform->cols)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT,
                   "input transform for %" G_GINT64_FORMAT " features applied to %" G_GINT64_FORMAT,
                   transform->cols, dim);
      return FALSE;
    }
  if (transform->scale != NULL && !(transform->hadamard && transform->rotate_first))
    divide_channels (transform->scale, x, n_tokens, dim);
  if (transform->hadamard)
    {
      signs = g_new (float, dim);
      bl_hadamard_random_signs (transform->hadamard_seed, signs, dim);
      if (!bl_hadamard_rotate_rows (x, n_tokens, dim, transform->hadamard_block, signs, FALSE, error))
        return FALSE;
    }
  if (transform->scale != NULL && transform->hadamard && transform->rotate_first)
    divide_channels (transform->scale, x, n_tokens, dim);
  return TRUE;
}

/* ------------------------------------------------------------------------------------------ */
/* RTN and shared numerics */

/**
 * bl_quant_rtn:
 * @state: the layer
 * @error: return location for a #GError
 *
 * Round to nearest: the format's own fake-quant of the whole weight.
 *
 * Returns: %TRUE on success
 */
gboolean
bl_quant_rtn (BlQuantState *state,
              GError      **error)
{
  return bl_format_fake_quant (state->weight_spec, state->w, state->w, state->rows, state->cols,
                               (int) MIN (g_get_num_processors (), 8), error);
}

double
bl_quant_output_error (const float  *wq,
                       const float  *w,
                       const double *hessian,
                       int64_t       rows,
                       int64_t       cols)
{
  g_autofree double *d = g_new (double, rows * cols);
  g_autofree double *dh = g_new (double, rows * cols);
  double total = 0.0;

  for (int64_t i = 0; i < rows * cols; i++)
    d[i] = (double) wq[i] - (double) w[i];
  /* Σ_r Δ_r·H·Δ_rᵀ = Σ (Δ ∘ Δ·H): one BLAS product instead of rows quadratic forms */
  cblas_dsymm (CblasRowMajor, CblasRight, CblasUpper, (int) rows, (int) cols, 1.0, hessian,
               (int) cols, d, (int) cols, 0.0, dh, (int) cols);
  for (int64_t i = 0; i < rows * cols; i++)
    total += d[i] * dh[i];
  return total;
}

/**
 * bl_quant_state_scale_inputs:
 * @state: the layer
 * @s: (array): cols per-input-channel factors, all > 0
 * @error: return location for a #GError
 *
 * W ← W·diag(s) and x ← x/s: rewrites the weight, the input statistics and the transform.
 * The factors are rounded to fp32 first, and the same fp32 values multiply the weight and
 * divide the input, so the two cancel up to fp32 rounding of the products.
 *
 * Returns: %FALSE when a rotation already sits between an earlier scaling and this one (the
 *   transform has one scaling on each side of the rotation at most)
 */
gboolean
bl_quant_state_scale_inputs (BlQuantState  *state,
                             const double  *s,
                             GError       **error)
{
  BlInputTransform *t = state->transform;
  int64_t rows = state->rows, cols = state->cols;

  if (t->hadamard && t->scale != NULL && !t->rotate_first)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT,
                   "a channel scaling on both sides of the rotation cannot be applied as one input transform");
      return FALSE;
    }
  if (t->scale == NULL)
    {
      t->scale = g_new (float, cols);
      for (int64_t j = 0; j < cols; j++)
        t->scale[j] = 1.0f;
    }
  t->rotate_first = t->hadamard;
  for (int64_t j = 0; j < cols; j++)
    {
      float f = (float) s[j];
      double d = f;

      t->scale[j] *= f;
      for (int64_t r = 0; r < rows; r++)
        state->w[r * cols + j] *= f;
      if (state->mean != NULL)
        state->mean[j] /= d;
      if (state->mean_abs != NULL)
        state->mean_abs[j] /= d;
      if (state->mean_sq != NULL)
        state->mean_sq[j] /= d * d;
      if (state->absmax != NULL)
        state->absmax[j] /= d;
      if (state->hessian != NULL)
        for (int64_t i = 0; i < cols; i++)
          {
            state->hessian[i * cols + j] /= d;
            state->hessian[j * cols + i] /= d;
          }
    }
  return TRUE;
}

/* ------------------------------------------------------------------------------------------ */
/* dispatch */

static void
state_clear (BlQuantState *state)
{
  g_clear_pointer (&state->hessian, g_free);
  g_clear_pointer (&state->mean, g_free);
  g_clear_pointer (&state->mean_abs, g_free);
  g_clear_pointer (&state->mean_sq, g_free);
  g_clear_pointer (&state->absmax, g_free);
  g_clear_pointer (&state->w_orig, g_free);
  g_clear_pointer (&state->mean_orig, g_free);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (BlQuantState, state_clear)

static double *
dup_doubles (const double *v,
             int64_t       n)
{
  return v != NULL ? g_memdup2 (v, sizeof (double) * (gsize) n) : NULL;
}

/* the stats' arrays as the state's own copies, so transforms can rewrite them */
static gboolean
state_load_stats (BlQuantState       *state,
                  const BlCalibLayer *stats,
                  GError            **error)
{
  if (stats == NULL)
    return TRUE;
  if (stats->cols != state->cols || stats->rows != state->rows)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT,
                   "calibration statistics of %s are for a %" G_GINT64_FORMAT " × %" G_GINT64_FORMAT
                   " weight, not %" G_GINT64_FORMAT " × %" G_GINT64_FORMAT,
                   stats->name, stats->rows, stats->cols, state->rows, state->cols);
      return FALSE;
    }
  state->n_tokens = stats->n_tokens;
  state->hessian = stats->hessian != NULL
                   ? g_memdup2 (stats->hessian, sizeof (double) * (gsize) (state->cols * state->cols))
                   : NULL;
  state->mean = dup_doubles (stats->act_mean, state->cols);
  state->mean_abs = dup_doubles (stats->act_mean_abs, state->cols);
  state->mean_sq = dup_doubles (stats->act_mean_sq, state->cols);
  if (stats->act_absmax != NULL)
    {
      state->absmax = g_new (double, state->cols);
      for (int64_t j = 0; j < state->cols; j++)
        state->absmax[j] = stats->act_absmax[j];
    }
  return TRUE;
}

/**
 * bl_quant_algo_apply:
 * @algorithm: an algorithm name or composition (see bl-quant-algo.h)
 * @options: (nullable): the algorithm's options (keys listed in bl-quant-algo.h)
 * @weight_spec: the weight format
 * @act_spec: (nullable): the format the layer's input is quantized to at run time, or %NULL
 *   for a full-precision input; no current step reads it, and it is accepted so a plan rule
 *   hands over its whole specification
 * @stats: (nullable): the layer's calibration statistics; required when
 *   bl_quant_algo_needs(@algorithm) is not 0, and must then hold what it names
 * @w: (array): the weight, @rows × @cols row-major fp32, replaced by the fake-quantized
 *   weight the forward pass should run
 * @rows: output features
 * @cols: input features
 * @bias: (nullable) (array length=rows): the layer's bias, corrected in place by bias
 *   correction
 * @out_transform: (out caller-allocates): what the forward pass must do around the layer;
 *   initialised here, release with bl_input_transform_clear()
 * @error: return location for a #GError
 *
 * Runs @algorithm on one linear layer. The result satisfies, for calibration-like inputs x,
 * @w_new·T(x) + b_new ≈ @w_old·x + b_old, where T is @out_transform.
 *
 * Returns: %TRUE on success; on failure @w may be partly changed and @out_transform is the
 *   identity
 */
gboolean
bl_quant_algo_apply (const char          *algorithm,
                     JsonObject          *options,
                     const BlFormatSpec  *weight_spec,
                     const BlFormatSpec  *act_spec,
                     const BlCalibLayer  *stats,
                     float               *w,
                     int64_t              rows,
                     int64_t              cols,
                     float               *bias,
                     BlInputTransform    *out_transform,
                     GError             **error)
{
  g_auto (BlQuantState) state = { 0 };
  const AlgoStep *list[MAX_STEPS];
  int n = 0;

  g_return_val_if_fail (weight_spec != NULL, FALSE);
  g_return_val_if_fail (w != NULL, FALSE);
  g_return_val_if_fail (out_transform != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  bl_input_transform_init (out_transform);
  if (rows <= 0 || cols <= 0)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT,
                   "invalid weight shape %" G_GINT64_FORMAT " × %" G_GINT64_FORMAT, rows, cols);
      return FALSE;
    }
  if (!parse_algorithm (algorithm, list, &n, error)
      || !check_options (algorithm, list, n, options, error))
    return FALSE;

  out_transform->rows = rows;
  out_transform->cols = cols;
  state.options = options;
  state.weight_spec = weight_spec;
  state.act_spec = act_spec;
  state.layer_name = stats != NULL && stats->name != NULL ? stats->name : "layer";
  state.w = w;
  state.rows = rows;
  state.cols = cols;
  state.bias = bias;
  state.transform = out_transform;
  if (!state_load_stats (&state, stats, error))
    return FALSE;
  state.w_orig = g_memdup2 (w, sizeof (float) * (gsize) (rows * cols));
  state.mean_orig = dup_doubles (state.mean, cols);

  for (int i = 0; i < n; i++)
    {
      if (list[i]->needs != 0 && stats == NULL)
        {
          g_set_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT,
                       "algorithm “%s” needs calibration statistics", list[i]->name);
          bl_input_transform_clear (out_transform);
          return FALSE;
        }
      if (!list[i]->run (&state, error))
        {
          g_prefix_error (error, "%s (%s): ", state.layer_name, list[i]->name);
          bl_input_transform_clear (out_transform);
          return FALSE;
        }
    }
  return TRUE;
}
