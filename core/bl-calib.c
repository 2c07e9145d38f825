/* bl-calib.c: calibration statistics from one forward pass over calibration windows
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * The pass runs a full-precision engine with an activation hook. Layers that read the same
 * input (q/k/v read rmsnorm(h) of the attention, gate/up that of the MLP) share one "site":
 * its statistics are accumulated once, on the first layer of the group (q, gate), and every
 * layer of the group points at them, Hessian included.
 *
 * Block inputs and outputs (LIM, methods.md §11) are derived from the same hook, with no
 * engine change: the residual stream h_b entering block b reaches q_proj as
 * rmsnorm(h_b) = g_b ⊙ h_b / rms(h_b), with g_b the block's input_layernorm weight, so
 * u_b = x_q / g_b is h_b up to a positive per-token factor, and the cosine is blind to that
 * factor: cos(h_b, h_(b+1)) = cos(u_b, u_(b+1)). The last block's output h_L reaches lm_head
 * through the final norm the same way. The identity is exact except in a channel whose gain
 * is 0, which the division cannot undo; such channels are left out of both vectors (the
 * count is in the log).
 */
#include "bl-calib.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <json-glib/json-glib.h>

#include "bl-engine.h"
#include "bl-error.h"
#include "bl-protocol.h"

#define DEFAULT_BINS 256
#define DEFAULT_OUTLIERS 8
/* the histogram spans ±HIST_SPAN × the 99.9th percentile of |x| in the layer's first batch:
 * robust to the few outlier channels, with room for later batches to be wider */
#define HIST_SPAN 2.0
#define HIST_QUANTILE 0.999

typedef enum
{
  SITE_ATTN_IN,     /* q, k, v */
  SITE_O_IN,
  SITE_MLP_IN,      /* gate, up */
  SITE_DOWN_IN,
  SITE_HEAD_IN,
  N_SITES
} SiteKind;

typedef struct
{
  int64_t cols;
  int64_t n_tokens;
  gboolean want_hessian;

  /* all values: power sums of (x − shift), the shift being the first batch's mean */
  gboolean shifted;
  double shift;
  double s1, s2, s3, s4;
  double sum_sq;
  double absmax;

  double *sum;          /* per channel Σ x_j */
  double *sum_abs;      /* Σ |x_j| */
  double *sum_sq_ch;    /* Σ x_j² */
  float *absmax_ch;     /* max |x_j| */

  gboolean range_set;
  double lo, hi;
  gint64 *hist;
  gint64 under, over;

  double *hessian;      /* cols × cols, upper triangle until finished */
  double *xd;           /* one batch as doubles, for dsyrk */
  int64_t xd_len;

  /* finished: what the public layers point at */
  BlCalibMoments act;
  double *mean, *mean_abs, *mean_sq;
  int n_outliers;
  int *outliers;
} Site;

typedef struct
{
  BlCalibLayer pub;
  char *name;
  Site *site;
  float *w_col_absmax;
  int *w_outliers;
} Layer;

typedef struct
{
  BlCalibBlock pub;
  double sum_cos;
} Block;

struct _BlCalib
{
  BlCalibFlags flags;
  char *dataset;
  guint64 seed;
  int n_windows;
  int ctx;
  int n_bins;
  int n_outliers;

  GPtrArray *layers;            /* Layer*, in forward order */
  GHashTable *by_name;          /* name → Layer* */
  GHashTable *sites;            /* GINT_TO_POINTER (block·N_SITES + kind + 1) → Site* */
  int n_blocks;
  Block *blocks;
};

/* the state of one pass, handed to the activation hook */
typedef struct
{
  BlCalib *calib;
  BlModel *model;
  const BlCalibOptions *options;
  GError *error;                /* the first failure inside the hook */

  /* block I/O: 1/g per norm (0 where g = 0), and u of the previous block for this window */
  float **inv_gain;             /* n_blocks + 1 vectors of hidden; the last is the final norm */
  float *prev_u;
  int prev_block;               /* -1 when the window has none yet */
  int64_t prev_tokens;
  gint64 zero_gain_channels;
} Collector;

static void
site_free (gpointer data)
{
  Site *s = data;

  g_free (s->sum);
  g_free (s->sum_abs);
  g_free (s->sum_sq_ch);
  g_free (s->absmax_ch);
  g_free (s->hist);
  g_free (s->hessian);
  g_free (s->xd);
  g_free (s->mean);
  g_free (s->mean_abs);
  g_free (s->mean_sq);
  g_free (s->outliers);
  g_free (s);
}

static void
layer_free (gpointer data)
{
  Layer *l = data;

  g_free (l->name);
  g_free (l->w_col_absmax);
  g_free (l->w_outliers);
  g_free (l);
}

/**
 * bl_calib_free:
 * @self: (transfer full) (nullable): calibration statistics
 *
 * Frees @self and every #BlCalibLayer it handed out.
 */
void
bl_calib_free (BlCalib *self)
{
  if (self == NULL)
    return;
  g_free (self->dataset);
  g_clear_pointer (&self->by_name, g_hash_table_unref);
  g_clear_pointer (&self->layers, g_ptr_array_unref);
  g_clear_pointer (&self->sites, g_hash_table_unref);
  g_free (self->blocks);
  g_free (self);
}

/**
 * bl_calib_make_windows:
 * @n_ids: length of the tokenized calibration text
 * @ctx: ids per window
 * @n_windows: how many windows
 * @seed: the seed
 * @error: return location for a #GError
 *
 * Draws @n_windows windows of @ctx ids at uniformly random starts in [0, @n_ids − @ctx],
 * reproducibly from @seed: GPTQ's calibration sampling (`datautils.get_wikitext2`, which
 * draws `random.randint(0, len − seqlen − 1)` per sample). Windows may overlap.
 *
 * Returns: (transfer full) (element-type BlWindow): the windows (first_target 1, no BOS
 *   replacement), or %NULL with %BL_ERROR_INVALID_ARGUMENT when the text is shorter than @ctx
 */
GArray *
bl_calib_make_windows (gint64    n_ids,
                       int       ctx,
                       int       n_windows,
                       guint64   seed,
                       GError  **error)
{
  g_autoptr (GArray) windows = NULL;
  g_autoptr (GRand) rand = NULL;
  guint32 seed_words[2] = { (guint32) seed, (guint32) (seed >> 32) };

  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (ctx < 2 || n_windows < 1 || n_ids < ctx)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT,
                   "cannot draw %d calibration windows of %d ids from %" G_GINT64_FORMAT " ids",
                   n_windows, ctx, n_ids);
      return NULL;
    }
  rand = g_rand_new_with_seed_array (seed_words, 2);
  windows = g_array_sized_new (FALSE, TRUE, sizeof (BlWindow), (guint) n_windows);
  for (int i = 0; i < n_windows; i++)
    {
      BlWindow w = { 0 };

      w.start = (gint64) (g_rand_double (rand) * (double) (n_ids - ctx + 1));
      w.start = MIN (w.start, n_ids - ctx);
      w.length = ctx;
      w.first_target = 1;
      w.bos_first = FALSE;
      g_array_append_val (windows, w);
    }
  return g_steal_pointer (&windows);
}

static SiteKind
site_kind (BlLayerKind kind)
{
  switch (kind)
    {
    case BL_LAYER_ATTN_Q:
    case BL_LAYER_ATTN_K:
    case BL_LAYER_ATTN_V:
      return SITE_ATTN_IN;
    case BL_LAYER_ATTN_O:
      return SITE_O_IN;
    case BL_LAYER_MLP_GATE:
    case BL_LAYER_MLP_UP:
      return SITE_MLP_IN;
    case BL_LAYER_MLP_DOWN:
      return SITE_DOWN_IN;
    default:
      return SITE_HEAD_IN;
    }
}

static gboolean
hessian_wanted (const BlCalibOptions *options,
                const char           *name)
{
  if ((options->flags & BL_CALIB_HESSIAN) == 0)
    return FALSE;
  if (options->hessian_layers == NULL)
    return TRUE;
  for (const char *const *p = options->hessian_layers; *p != NULL; p++)
    if (g_pattern_match_simple (*p, name))
      return TRUE;
  return FALSE;
}

/* the site of a layer, created on first sight */
static Site *
get_site (Collector  *c,
          int         block,
          SiteKind    kind,
          int64_t     cols)
{
  BlCalib *calib = c->calib;
  gpointer key = GINT_TO_POINTER ((block + 1) * N_SITES + kind + 1);
  Site *s = g_hash_table_lookup (calib->sites, key);

  if (s != NULL)
    return s;
  s = g_new0 (Site, 1);
  s->cols = cols;
  s->sum = g_new0 (double, cols);
  s->sum_abs = g_new0 (double, cols);
  s->sum_sq_ch = g_new0 (double, cols);
  s->absmax_ch = g_new0 (float, cols);
  s->hist = g_new0 (gint64, calib->n_bins);
  g_hash_table_insert (calib->sites, key, s);
  return s;
}

static int
cmp_float (const void *a,
           const void *b)
{
  float fa = *(const float *) a, fb = *(const float *) b;

  return (fa > fb) - (fa < fb);
}

static void
set_hist_range (Site        *s,
                const float *x,
                int64_t      count)
{
  g_autofree float *a = g_new (float, count);
  double q;

  for (int64_t i = 0; i < count; i++)
    a[i] = fabsf (x[i]);
  qsort (a, (size_t) count, sizeof *a, cmp_float);
  q = a[MIN (count - 1, (int64_t) (HIST_QUANTILE * (double) count))];
  if (!(q > 0.0) || !isfinite (q))
    q = a[count - 1] > 0.0f && isfinite (a[count - 1]) ? a[count - 1] : 1.0;
  s->hi = HIST_SPAN * q;
  s->lo = -s->hi;
  s->range_set = TRUE;
}

static gboolean
site_add (Site        *s,
          int          n_bins,
          const float *x,
          int64_t      n,
          GError     **error)
{
  int64_t cols = s->cols, count = n * cols;
  double width;

  if (count == 0)
    return TRUE;
  if (!s->shifted)
    {
      double m = 0.0;

      for (int64_t i = 0; i < count; i++)
        m += x[i];
      s->shift = m / (double) count;
      s->shifted = TRUE;
    }
  if (!s->range_set)
    set_hist_range (s, x, count);
  width = (s->hi - s->lo) / n_bins;

  for (int64_t t = 0; t < n; t++)
    {
      const float *xt = x + t * cols;

      for (int64_t j = 0; j < cols; j++)
        {
          double v = xt[j], a = fabs (v), y = v - s->shift, y2 = y * y;

          s->s1 += y;
          s->s2 += y2;
          s->s3 += y2 * y;
          s->s4 += y2 * y2;
          s->sum_sq += v * v;
          s->absmax = a > s->absmax ? a : s->absmax;
          s->sum[j] += v;
          s->sum_abs[j] += a;
          s->sum_sq_ch[j] += v * v;
          if (fabsf (xt[j]) > s->absmax_ch[j])
            s->absmax_ch[j] = fabsf (xt[j]);
          if (v < s->lo)
            s->under++;
          else if (v >= s->hi)
            s->over++;
          else
            s->hist[MIN (n_bins - 1, (int) ((v - s->lo) / width))]++;
        }
    }

  if (s->want_hessian)
    {
      if (s->hessian == NULL)
        {
          s->hessian = g_try_new0 (double, cols * cols);
          if (s->hessian == NULL)
            {
              g_set_error (error, BL_ERROR, BL_ERROR_OUT_OF_MEMORY,
                           "out of memory for a %" G_GINT64_FORMAT " × %" G_GINT64_FORMAT " Hessian",
                           cols, cols);
              return FALSE;
            }
        }
      if (s->xd_len < count)
        {
          g_free (s->xd);
          s->xd = g_new (double, count);
          s->xd_len = count;
        }
      for (int64_t i = 0; i < count; i++)
        s->xd[i] = x[i];
      /* H += XᵀX, upper triangle (mirrored when the pass ends) */
      cblas_dsyrk (CblasRowMajor, CblasUpper, CblasTrans, (int) cols, (int) n, 1.0, s->xd,
                   (int) cols, 1.0, s->hessian, (int) cols);
    }
  s->n_tokens += n;
  return TRUE;
}

/* LIM's per-token cosine between the previous block's u and this one's (module comment) */
static void
block_io (Collector   *c,
          int          block,
          const float *x,
          int64_t      n,
          int64_t      dim)
{
  BlCalib *calib = c->calib;
  const float *inv = c->inv_gain[block < 0 ? calib->n_blocks : block];
  int this_block = block < 0 ? calib->n_blocks : block;

  if (c->prev_block >= 0 && c->prev_block == this_block - 1 && c->prev_tokens == n)
    {
      Block *b = &calib->blocks[c->prev_block];

      for (int64_t t = 0; t < n; t++)
        {
          const float *pu = c->prev_u + t * dim, *xt = x + t * dim;
          double dot = 0.0, na = 0.0, nb = 0.0;

          for (int64_t j = 0; j < dim; j++)
            {
              double u = (double) xt[j] * inv[j], p = pu[j];

              if (inv[j] == 0.0f || c->inv_gain[c->prev_block][j] == 0.0f)
                continue;
              dot += u * p;
              na += p * p;
              nb += u * u;
            }
          if (na > 0.0 && nb > 0.0)
            b->sum_cos += dot / sqrt (na * nb);
        }
      b->pub.n_tokens += n;
    }
  if (block >= 0)
    {
      for (int64_t i = 0; i < n * dim; i++)
        c->prev_u[i] = x[i] * inv[i % dim];
      c->prev_block = block;
      c->prev_tokens = n;
    }
}

static void
calib_hook (const char  *layer_name,
            BlLayerKind  kind,
            int          block,
            float       *x,
            int          n_tokens,
            int          dim,
            gpointer     user_data)
{
  Collector *c = user_data;
  BlCalib *calib = c->calib;
  Layer *l;

  if (c->error != NULL)
    return;
  l = g_hash_table_lookup (calib->by_name, layer_name);
  if (l == NULL)
    {
      const BlTensor *t = bl_model_get_tensor (c->model, layer_name);

      l = g_new0 (Layer, 1);
      l->name = g_strdup (layer_name);
      l->pub.name = l->name;
      l->pub.kind = kind;
      l->pub.block = block;
      l->pub.rows = t != NULL && t->n_dims == 2 ? t->shape[0] : 0;
      l->pub.cols = dim;
      l->site = get_site (c, block, site_kind (kind), dim);
      l->site->want_hessian |= hessian_wanted (c->options, layer_name);
      g_ptr_array_add (calib->layers, l);
      g_hash_table_insert (calib->by_name, l->name, l);
    }
  if (l->site->cols != dim)
    {
      g_set_error (&c->error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT,
                   "%s: input of %d features where its group had %" G_GINT64_FORMAT,
                   layer_name, dim, l->site->cols);
      return;
    }
  /* k, v and up see the same input as q and gate, which already counted it */
  if (kind == BL_LAYER_ATTN_K || kind == BL_LAYER_ATTN_V || kind == BL_LAYER_MLP_UP)
    return;
  if (!site_add (l->site, calib->n_bins, x, n_tokens, &c->error))
    return;
  if ((calib->flags & BL_CALIB_BLOCK_IO) && (kind == BL_LAYER_ATTN_Q || block < 0))
    block_io (c, block, x, n_tokens, dim);
}

/* ------------------------------------------------------------------------------------------ */
/* finishing */

static void
moments_finish (BlCalibMoments *m,
                gint64          n,
                double          shift,
                double          s1,
                double          s2,
                double          s4_term,
                double          sum_sq,
                double          absmax)
{
  memset (m, 0, sizeof *m);
  m->n = n;
  if (n == 0)
    return;
  {
    double my = s1 / n, var = s2 / n - my * my;

    m->mean = shift + my;
    m->variance = var > 0.0 ? var : 0.0;
    m->kurtosis = var > 0.0 ? s4_term / (var * var) : 0.0;
  }
  m->absmax = absmax;
  m->rms = sqrt (sum_sq / n);
  m->crest = m->rms > 0.0 ? absmax / m->rms : 0.0;
}

/* indices of the @k largest of @v, largest first (ties: lower index first) */
static int *
top_k (const float *v,
       int64_t      n,
       int          k,
       int         *out_k)
{
  g_autofree gboolean *taken = g_new0 (gboolean, n);
  int *idx;

  k = (int) MIN ((int64_t) k, n);
  idx = g_new (int, MAX (k, 1));
  for (int i = 0; i < k; i++)
    {
      int64_t best = -1;

      for (int64_t j = 0; j < n; j++)
        if (!taken[j] && (best < 0 || v[j] > v[best]))
          best = j;
      taken[best] = TRUE;
      idx[i] = (int) best;
    }
  *out_k = k;
  return idx;
}

static void
site_finish (Site *s,
             int   n_outliers)
{
  int64_t cols = s->cols, n = s->n_tokens;
  gint64 count = n * cols;
  double my = count > 0 ? s->s1 / count : 0.0;
  /* E[(x−μ)⁴] from the power sums of y = x − shift, μ_y = my */
  double m4 = count > 0 ? s->s4 / count - 4 * my * s->s3 / count + 6 * my * my * s->s2 / count
                          - 3 * my * my * my * my : 0.0;

  moments_finish (&s->act, count, s->shift, s->s1, s->s2, m4, s->sum_sq, s->absmax);
  s->mean = g_new0 (double, cols);
  s->mean_abs = g_new0 (double, cols);
  s->mean_sq = g_new0 (double, cols);
  for (int64_t j = 0; j < cols && n > 0; j++)
    {
      s->mean[j] = s->sum[j] / n;
      s->mean_abs[j] = s->sum_abs[j] / n;
      s->mean_sq[j] = s->sum_sq_ch[j] / n;
    }
  s->outliers = top_k (s->absmax_ch, cols, n_outliers, &s->n_outliers);
  if (s->hessian != NULL)
    for (int64_t i = 0; i < cols; i++)
      for (int64_t j = 0; j < i; j++)
        s->hessian[i * cols + j] = s->hessian[j * cols + i];
  g_clear_pointer (&s->xd, g_free);
  s->xd_len = 0;
}

static void
weight_stats (Layer          *l,
              const BlTensor *t,
              int             n_outliers)
{
  int64_t rows = l->pub.rows, cols = l->pub.cols, count = rows * cols;
  g_autofree float *w = g_new (float, count);
  double m = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0, s4 = 0.0, sq = 0.0, amax = 0.0, my, m4;

  bl_tensor_to_f32 (t, w);
  l->w_col_absmax = g_new0 (float, cols);
  for (int64_t i = 0; i < count; i++)
    m += w[i];
  m /= (double) count;
  for (int64_t r = 0; r < rows; r++)
    for (int64_t j = 0; j < cols; j++)
      {
        double v = w[r * cols + j], y = v - m, y2 = y * y;

        s1 += y;
        s2 += y2;
        s3 += y2 * y;
        s4 += y2 * y2;
        sq += v * v;
        amax = fabs (v) > amax ? fabs (v) : amax;
        if (fabsf (w[r * cols + j]) > l->w_col_absmax[j])
          l->w_col_absmax[j] = fabsf (w[r * cols + j]);
      }
  my = s1 / count;
  m4 = s4 / count - 4 * my * s3 / count + 6 * my * my * s2 / count - 3 * my * my * my * my;
  moments_finish (&l->pub.weight, count, m, s1, s2, m4, sq, amax);
  l->w_outliers = top_k (l->w_col_absmax, cols, n_outliers, &l->pub.n_weight_outliers);
  l->pub.weight_col_absmax = l->w_col_absmax;
  l->pub.weight_outlier_columns = l->w_outliers;
}

static void
layer_finish (BlCalib  *calib,
              BlModel  *model,
              Layer    *l)
{
  Site *s = l->site;
  const BlTensor *t = bl_model_get_tensor (model, l->name);

  l->pub.n_tokens = s->n_tokens;
  l->pub.act = s->act;
  l->pub.act_mean = s->mean;
  l->pub.act_mean_abs = s->mean_abs;
  l->pub.act_mean_sq = s->mean_sq;
  l->pub.act_absmax = s->absmax_ch;
  l->pub.n_outliers = s->n_outliers;
  l->pub.outlier_channels = s->outliers;
  l->pub.hist_lo = s->lo;
  l->pub.hist_hi = s->hi;
  l->pub.n_bins = calib->n_bins;
  l->pub.hist = s->hist;
  l->pub.hist_underflow = s->under;
  l->pub.hist_overflow = s->over;
  l->pub.hessian = s->hessian;
  if (t != NULL && t->n_dims == 2 && t->shape[1] == l->pub.cols)
    weight_stats (l, t, calib->n_outliers);
}

/* ------------------------------------------------------------------------------------------ */
/* the pass */

static void
collector_clear (Collector *c)
{
  if (c->inv_gain != NULL)
    for (int b = 0; b <= c->calib->n_blocks; b++)
      g_free (c->inv_gain[b]);
  g_clear_pointer (&c->inv_gain, g_free);
  g_clear_pointer (&c->prev_u, g_free);
  g_clear_error (&c->error);
}

/* 1/g of every norm that feeds a block (input_layernorm) and of the final norm */
static gboolean
load_inverse_gains (Collector  *c,
                    int         max_tokens,
                    GError    **error)
{
  const BlModelConfig *config = bl_model_get_config (c->model);
  int n_blocks = c->calib->n_blocks, hidden = config->hidden_size;

  c->inv_gain = g_new0 (float *, n_blocks + 1);
  for (int b = 0; b <= n_blocks; b++)
    {
      g_autofree char *name = b < n_blocks
                              ? g_strdup_printf ("model.layers.%d.input_layernorm.weight", b)
                              : g_strdup ("model.norm.weight");
      const BlTensor *t = bl_model_get_tensor (c->model, name);

      if (t == NULL || t->n_elements != hidden)
        {
          g_set_error (error, BL_ERROR, BL_ERROR_NOT_FOUND,
                       "%s: no %s of %d elements for the block input/output statistics",
                       bl_model_get_path (c->model), name, hidden);
          return FALSE;
        }
      c->inv_gain[b] = g_new (float, hidden);
      bl_tensor_to_f32 (t, c->inv_gain[b]);
      for (int j = 0; j < hidden; j++)
        {
          if (c->inv_gain[b][j] == 0.0f)
            c->zero_gain_channels++;
          c->inv_gain[b][j] = c->inv_gain[b][j] != 0.0f ? 1.0f / c->inv_gain[b][j] : 0.0f;
        }
    }
  c->prev_u = g_new (float, (gsize) max_tokens * hidden);
  if (c->zero_gain_channels > 0)
    g_info ("calibration: %" G_GINT64_FORMAT " norm channels with gain 0 are left out of LIM",
            c->zero_gain_channels);
  return TRUE;
}

/**
 * bl_calib_collect:
 * @model: the model
 * @backend: the backend to run it on
 * @ids: (array length=n_ids): the calibration text as token ids
 * @n_ids: how many
 * @windows: (element-type BlWindow): the windows to run, e.g. from bl_calib_make_windows()
 *   or a protocol's windows; a window with bos_first has its first id replaced by BOS
 * @options: (nullable): what to collect; %NULL collects activation statistics only
 * @cancellable: (nullable): checked between windows and between layers
 * @progress: (nullable) (scope call): called after every window
 * @progress_data: its user data
 * @error: return location for a #GError
 *
 * Runs the unquantized model over @windows once and gathers the statistics described in
 * bl-calib.h. Each window runs as one bl_engine_nll() call scoring only its last position,
 * so the linear layers see the window's first length − 1 positions (the last id is only
 * ever a target). Memory is O(Σ cols + bins) per layer, plus cols² doubles per requested
 * Hessian (shared by the layers that read the same input: q/k/v, gate/up), plus one
 * window's hidden states for the block statistics.
 *
 * Returns: (transfer full): the statistics, or %NULL with @error set (%G_IO_ERROR_CANCELLED,
 *   %BL_ERROR_INVALID_ARGUMENT for a window outside @ids, %BL_ERROR_OUT_OF_MEMORY, or an
 *   engine error)
 */
BlCalib *
bl_calib_collect (BlModel              *model,
                  BlBackend            *backend,
                  const int32_t        *ids,
                  gint64                n_ids,
                  GArray               *windows,
                  const BlCalibOptions *options,
                  GCancellable         *cancellable,
                  BlCalibProgressFunc   progress,
                  gpointer              progress_data,
                  GError              **error)
{
  static const BlCalibOptions defaults = { BL_CALIB_ACT_STATS, NULL, 0, 0, NULL, 0 };
  g_autoptr (BlCalib) calib = NULL;
  g_autoptr (BlEngine) engine = NULL;
  g_autofree int32_t *buf = NULL;
  Collector c = { 0 };
  BlEngineHooks hooks = { 0 };
  BlTokenizer *tokenizer;
  int32_t bos = -1;
  int max_len = 0;
  gboolean ok = TRUE;
  double last_nll;

  g_return_val_if_fail (BL_IS_MODEL (model), NULL);
  g_return_val_if_fail (backend != NULL, NULL);
  g_return_val_if_fail (ids != NULL || n_ids == 0, NULL);
  g_return_val_if_fail (windows != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (options == NULL)
    options = &defaults;
  for (guint i = 0; i < windows->len; i++)
    {
      const BlWindow *w = &g_array_index (windows, BlWindow, i);

      if (w->start < 0 || w->length < 2 || w->start > n_ids - w->length)
        {
          g_set_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT,
                       "calibration window %u [%" G_GINT64_FORMAT ", +%d) is outside the %"
                       G_GINT64_FORMAT " ids", i, w->start, w->length, n_ids);
          return NULL;
        }
      max_len = MAX (max_len, w->length);
    }

  calib = g_new0 (BlCalib, 1);
  calib->flags = options->flags | BL_CALIB_ACT_STATS;
  calib->dataset = g_strdup (options->dataset);
  calib->seed = options->seed;
  calib->n_windows = (int) windows->len;
  calib->ctx = max_len;
  calib->n_bins = options->n_bins > 0 ? options->n_bins : DEFAULT_BINS;
  calib->n_outliers = options->n_outliers > 0 ? options->n_outliers : DEFAULT_OUTLIERS;
  calib->layers = g_ptr_array_new_with_free_func (layer_free);
  calib->by_name = g_hash_table_new (g_str_hash, g_str_equal);
  calib->sites = g_hash_table_new_full (NULL, NULL, NULL, site_free);
  calib->n_blocks = bl_model_get_config (model)->n_layers;
  calib->blocks = g_new0 (Block, calib->n_blocks);
  for (int b = 0; b < calib->n_blocks; b++)
    calib->blocks[b].pub.block = b;

  c.calib = calib;
  c.model = model;
  c.options = options;
  c.prev_block = -1;
  if ((calib->flags & BL_CALIB_BLOCK_IO) && !load_inverse_gains (&c, max_len, error))
    {
      collector_clear (&c);
      return NULL;
    }

  hooks.activation = calib_hook;
  hooks.user_data = &c;
  engine = bl_engine_new (model, backend, &hooks, error);
  if (engine == NULL)
    {
      collector_clear (&c);
      return NULL;
    }
  tokenizer = bl_model_get_tokenizer (model);
  bos = tokenizer != NULL ? bl_tokenizer_get_bos_id (tokenizer) : bl_model_get_config (model)->bos_token_id;
  buf = g_new (int32_t, MAX (max_len, 1));

  for (guint i = 0; i < windows->len && ok; i++)
    {
      const BlWindow *w = &g_array_index (windows, BlWindow, i);

      if (g_cancellable_set_error_if_cancelled (cancellable, error))
        {
          ok = FALSE;
          break;
        }
      memcpy (buf, ids + w->start, sizeof (int32_t) * (gsize) w->length);
      if (w->bos_first && bos >= 0)
        buf[0] = bos;
      c.prev_block = -1;
      ok = bl_engine_nll (engine, buf, w->length, w->length - 1, &last_nll,
                          cancellable, error);
      if (ok && c.error != NULL)
        {
          g_propagate_error (error, g_steal_pointer (&c.error));
          ok = FALSE;
        }
      if (ok && progress != NULL)
        progress ((int) i + 1, (int) windows->len, progress_data);
    }
  collector_clear (&c);
  if (!ok)
    return NULL;

  {
    GHashTableIter iter;
    gpointer value;

    g_hash_table_iter_init (&iter, calib->sites);
    while (g_hash_table_iter_next (&iter, NULL, &value))
      site_finish (value, calib->n_outliers);
  }
  for (guint i = 0; i < calib->layers->len; i++)
    layer_finish (calib, model, g_ptr_array_index (calib->layers, i));
  for (int b = 0; b < calib->n_blocks; b++)
    {
      Block *blk = &calib->blocks[b];

      blk->pub.mean_cos = blk->pub.n_tokens > 0 ? blk->sum_cos / blk->pub.n_tokens : 0.0;
      blk->pub.lim = -blk->pub.mean_cos;
    }
  return g_steal_pointer (&calib);
}

/* ------------------------------------------------------------------------------------------ */
/* accessors */

/**
 * bl_calib_get_n_layers:
 * @self: calibration statistics
 *
 * Returns: how many linear layers were seen
 */
guint
bl_calib_get_n_layers (BlCalib *self)
{
  g_return_val_if_fail (self != NULL, 0);
  return self->layers->len;
}

/**
 * bl_calib_get_layer_at:
 * @self: calibration statistics
 * @index: a layer index, in forward order
 *
 * Returns: (transfer none): the layer's statistics, or %NULL past the end
 */
const BlCalibLayer *
bl_calib_get_layer_at (BlCalib *self,
                       guint    index)
{
  g_return_val_if_fail (self != NULL, NULL);
  if (index >= self->layers->len)
    return NULL;
  return &((Layer *) g_ptr_array_index (self->layers, index))->pub;
}

/**
 * bl_calib_get_layer:
 * @self: calibration statistics
 * @layer_name: a weight name as the engine's hooks name it ("lm_head.weight" also when tied)
 *
 * Returns: (transfer none) (nullable): the layer's statistics, or %NULL for an unknown name
 */
const BlCalibLayer *
bl_calib_get_layer (BlCalib    *self,
                    const char *layer_name)
{
  Layer *l;

  g_return_val_if_fail (self != NULL, NULL);
  g_return_val_if_fail (layer_name != NULL, NULL);
  l = g_hash_table_lookup (self->by_name, layer_name);
  return l != NULL ? &l->pub : NULL;
}

/**
 * bl_calib_get_n_blocks:
 * @self: calibration statistics
 *
 * Returns: the transformer blocks of the model
 */
guint
bl_calib_get_n_blocks (BlCalib *self)
{
  g_return_val_if_fail (self != NULL, 0);
  return (guint) self->n_blocks;
}

/**
 * bl_calib_get_block:
 * @self: calibration statistics
 * @block: a block index
 *
 * Returns: (transfer none) (nullable): the block's LIM statistics (all zero without
 *   %BL_CALIB_BLOCK_IO), or %NULL past the end
 */
const BlCalibBlock *
bl_calib_get_block (BlCalib *self,
                    guint    block)
{
  g_return_val_if_fail (self != NULL, NULL);
  if (block >= (guint) self->n_blocks)
    return NULL;
  return &self->blocks[block].pub;
}

/**
 * bl_calib_get_flags:
 * @self: calibration statistics
 *
 * Returns: what was collected
 */
BlCalibFlags
bl_calib_get_flags (BlCalib *self)
{
  g_return_val_if_fail (self != NULL, 0);
  return self->flags;
}

/**
 * bl_calib_get_provenance:
 * @self: calibration statistics
 * @out_dataset: (out) (optional) (transfer none) (nullable): the dataset name given
 * @out_seed: (out) (optional): the seed given
 * @out_n_windows: (out) (optional): windows run
 * @out_ctx: (out) (optional): the longest window
 *
 * Where the statistics came from, to store beside the results that used them.
 */
void
bl_calib_get_provenance (BlCalib     *self,
                         const char **out_dataset,
                         guint64     *out_seed,
                         int         *out_n_windows,
                         int         *out_ctx)
{
  g_return_if_fail (self != NULL);
  if (out_dataset != NULL)
    *out_dataset = self->dataset;
  if (out_seed != NULL)
    *out_seed = self->seed;
  if (out_n_windows != NULL)
    *out_n_windows = self->n_windows;
  if (out_ctx != NULL)
    *out_ctx = self->ctx;
}

/**
 * bl_calib_provenance_to_json:
 * @self: calibration statistics
 *
 * The provenance as a JSON object: {"dataset", "seed", "windows", "ctx", "hessian",
 * "block_io"}, for a run record.
 *
 * Returns: (transfer full): the JSON text
 */
char *
bl_calib_provenance_to_json (BlCalib *self)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  g_autoptr (JsonGenerator) gen = json_generator_new ();
  g_autoptr (JsonNode) root = NULL;

  g_return_val_if_fail (self != NULL, NULL);

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "dataset");
  if (self->dataset != NULL)
    json_builder_add_string_value (b, self->dataset);
  else
    json_builder_add_null_value (b);
  json_builder_set_member_name (b, "seed");
  json_builder_add_int_value (b, (gint64) self->seed);
  json_builder_set_member_name (b, "windows");
  json_builder_add_int_value (b, self->n_windows);
  json_builder_set_member_name (b, "ctx");
  json_builder_add_int_value (b, self->ctx);
  json_builder_set_member_name (b, "hessian");
  json_builder_add_boolean_value (b, (self->flags & BL_CALIB_HESSIAN) != 0);
  json_builder_set_member_name (b, "block_io");
  json_builder_add_boolean_value (b, (self->flags & BL_CALIB_BLOCK_IO) != 0);
  json_builder_end_object (b);
  root = json_builder_get_root (b);
  json_generator_set_root (gen, root);
  return json_generator_to_data (gen, NULL);
}
