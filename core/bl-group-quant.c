/* bl-group-quant.c: a weight's format, one group at a time
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * GPTQ and the clip search need what bl_format_fake_quant() does internally but in pieces: the
 * stored parameters (scale, zero, selector) of one group computed from values of the
 * algorithm's choosing, then elements rounded one at a time on that group's grid. This file
 * drives the format traits table (bl-format-private.h) for that. The context is set up as
 * bl-format.c's own ctx_setup() does, and tensor-level statistics (NVFP4's second-level scale,
 * int2+int4's group selection, per-tensor scales) come from the weight as first given, as
 * they do in bl_format_fake_quant().
 */
#include "bl-quant-algo-private.h"

#include <math.h>
#include <string.h>

#include "bl-error.h"

/* the same grid as bl-format.c's clip=mse: shrink 1 − i/100 for i < 80 (IST-DASLab gptq quant.py) */
#define CLIP_GRID 100
#define CLIP_STEPS 80

/**
 * bl_group_quant_init:
 * @q: (out caller-allocates): the quantizer
 * @spec: the weight format
 * @w: (array): the weight, @rows × @cols, for the tensor-level statistics
 * @rows: rows
 * @cols: columns
 * @error: return location for a #GError
 *
 * Sets up a per-group quantizer. Families whose elements are not rounded one at a time
 * (complex-2bit rounds pairs) are refused, as are token granularity specs.
 *
 * Returns: %FALSE with %BL_ERROR_UNSUPPORTED_FORMAT for such a spec
 */
gboolean
bl_group_quant_init (BlGroupQuant        *q,
                     const BlFormatSpec  *spec,
                     const float         *w,
                     int64_t              rows,
                     int64_t              cols,
                     GError             **error)
{
  BlFormatCtx *ctx = &q->ctx;

  memset (q, 0, sizeof *q);
  if (spec->family == BL_FORMAT_COMPLEX_2BIT)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_UNSUPPORTED_FORMAT,
                   "complex-2bit rounds weights in pairs, so it cannot be rounded column by column");
      return FALSE;
    }
  if (rows <= 0 || cols <= 0 || rows > G_MAXINT64 / cols)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT,
                   "invalid weight shape %" G_GINT64_FORMAT " × %" G_GINT64_FORMAT, rows, cols);
      return FALSE;
    }

  ctx->spec = *spec;
  ctx->traits = bl_format_traits_lookup (spec->family);
  bl_format_spec_get_layout (spec, &ctx->layout);
  if (bl_format_family_has_fp_element (spec->family))
    bl_fp_format_init (&ctx->elem, spec->ebits, spec->mbits);
  ctx->n_rows = rows;
  ctx->n_cols = cols;
  switch (spec->granularity)
    {
    case BL_GRANULARITY_GROUP:
      ctx->group_size = spec->group_size;
      ctx->groups_per_row = (cols + spec->group_size - 1) / spec->group_size;
      ctx->n_groups = rows * ctx->groups_per_row;
      break;
    case BL_GRANULARITY_CHANNEL:
    case BL_GRANULARITY_TOKEN:
      ctx->group_size = cols;
      ctx->groups_per_row = 1;
      ctx->n_groups = rows;
      break;
    case BL_GRANULARITY_TENSOR:
    default:
      ctx->group_size = rows * cols;
      ctx->groups_per_row = 0;
      ctx->n_groups = 1;
      ctx->tensor_group = TRUE;
      break;
    }
  ctx->tensor_scale = 1.0f;
  ctx->prepare_threads = 1;

  if (ctx->traits->prepare != NULL && !ctx->traits->prepare (ctx, w, error))
    {
      bl_group_quant_clear (q);
      return FALSE;
    }
  if (ctx->traits->needs_scratch)
    q->scratch = g_new (float, ctx->group_size);
  if (ctx->tensor_group)
    bl_group_quant_params (q, w, rows * cols, 0, 0, 1.0, &ctx->tensor_params);
  return TRUE;
}

/**
 * bl_group_quant_clear:
 * @q: a quantizer set up by bl_group_quant_init()
 *
 * Frees what the quantizer holds.
 */
void
bl_group_quant_clear (BlGroupQuant *q)
{
  g_clear_pointer (&q->ctx.selectors, g_free);
  g_clear_pointer (&q->scratch, g_free);
}

/**
 * bl_group_quant_group_cols:
 * @q: a quantizer
 *
 * Returns: columns one group covers along a row (the whole row for channel and tensor
 *   granularity, whose parameters do not change along it)
 */
int64_t
bl_group_quant_group_cols (const BlGroupQuant *q)
{
  return q->ctx.spec.granularity == BL_GRANULARITY_GROUP ? q->ctx.group_size : q->ctx.n_cols;
}

/* Σ (q(x) − x)² on the grid of @p */
static double
sq_error (const BlGroupQuant  *q,
          const BlGroupParams *p,
          const float         *x,
          int64_t              n,
          int64_t              row,
          int64_t              col0)
{
  float y[BL_FORMAT_CHUNK];
  double err = 0.0;

  for (int64_t off = 0; off < n; off += BL_FORMAT_CHUNK)
    {
      int64_t len = MIN (BL_FORMAT_CHUNK, n - off);

      bl_group_quant_fake (q, p, x + off, len, row, col0 + off, y);
      for (int64_t i = 0; i < len; i++)
        {
          double d = (double) y[i] - (double) x[off + i];

          err += d * d;
        }
    }
  return err;
}

/**
 * bl_group_quant_params:
 * @q: a quantizer
 * @x: (array length=n): the values the parameters are fitted to
 * @n: how many (at most one group)
 * @row: the weight row of the group
 * @col0: the group's first column
 * @shrink: factor on the range statistic (1 for none), on top of the spec's own clipping
 * @p: (out): the group's parameters
 *
 * The stored parameters of the group at (@row, @col0), computed from @x the way the format
 * would compute them from the weight, with the spec's clip rule (ratio or MSE grid) applied.
 * For tensor granularity the parameters are the tensor's, whatever @x holds.
 */
void
bl_group_quant_params (const BlGroupQuant *q,
                       const float        *x,
                       int64_t             n,
                       int64_t             row,
                       int64_t             col0,
                       double              shrink,
                       BlGroupParams      *p)
{
  const BlFormatCtx *ctx = &q->ctx;
  const BlFormatTraits *t = ctx->traits;
  int64_t group_index;

  if (ctx->tensor_group && (row != 0 || col0 != 0 || n != ctx->n_rows * ctx->n_cols))
    {
      *p = ctx->tensor_params;
      return;
    }
  group_index = ctx->tensor_group ? 0 : row * ctx->groups_per_row + col0 / ctx->group_size;
  switch (ctx->spec.clip)
    {
    case BL_CLIP_RATIO:
      t->params (ctx, x, n, group_index, shrink * ctx->spec.clip_ratio, q->scratch, p);
      break;
    case BL_CLIP_MSE:
      {
        double best = INFINITY;

        for (int i = 0; i < CLIP_STEPS; i++)
          {
            BlGroupParams c;
            double err;

            t->params (ctx, x, n, group_index, shrink * (1.0 - (double) i / CLIP_GRID), q->scratch, &c);
            err = sq_error (q, &c, x, n, row, col0);
            if (err < best || i == 0)
              {
                best = err;
                *p = c;
              }
          }
      }
      break;
    case BL_CLIP_NONE:
    default:
      t->params (ctx, x, n, group_index, shrink, q->scratch, p);
      break;
    }
}

/**
 * bl_group_quant_fake:
 * @q: a quantizer
 * @p: the group's parameters
 * @x: (array length=n): values of one group's row, starting at column @col0
 * @n: how many
 * @row: their weight row
 * @col0: the column of @x[0] (seeds stochastic rounding as bl_format_fake_quant() does)
 * @y: (out caller-allocates) (array length=n): the values on the grid of @p
 *
 * Rounds @x on the grid of @p through the family's scalar encode/decode pair, the oracle
 * that bl_format_fake_quant() agrees with bit for bit.
 */
void
bl_group_quant_fake (const BlGroupQuant  *q,
                     const BlGroupParams *p,
                     const float         *x,
                     int64_t              n,
                     int64_t              row,
                     int64_t              col0,
                     float               *y)
{
  const BlFormatCtx *ctx = &q->ctx;
  guint16 codes[BL_FORMAT_CHUNK];
  guint64 index0 = (guint64) (row * ctx->n_cols + col0);

  for (int64_t off = 0; off < n; off += BL_FORMAT_CHUNK)
    {
      int64_t len = MIN (BL_FORMAT_CHUNK, n - off);

      ctx->traits->encode (ctx, p, x + off, len, index0 + (guint64) off, codes);
      ctx->traits->decode (ctx, p, codes, len, y + off);
    }
}
