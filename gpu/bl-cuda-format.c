/* bl-cuda-format.c: the host side of the format kernels
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "bl-cuda-format-private.h"

#include <math.h>
#include <string.h>

#include "bl-error.h"
#include "bl-format-codecs.h"

/* The kernels mirror core's enums as plain constants (they are compiled without GLib). */
G_STATIC_ASSERT (BL_CUDA_FAMILY_INT == (int) BL_FORMAT_INT);
G_STATIC_ASSERT (BL_CUDA_FAMILY_FP == (int) BL_FORMAT_FP);
G_STATIC_ASSERT (BL_CUDA_FAMILY_MXFP == (int) BL_FORMAT_MXFP);
G_STATIC_ASSERT (BL_CUDA_FAMILY_MXINT == (int) BL_FORMAT_MXINT);
G_STATIC_ASSERT (BL_CUDA_FAMILY_NVFP4 == (int) BL_FORMAT_NVFP4);
G_STATIC_ASSERT (BL_CUDA_FAMILY_NVINT4 == (int) BL_FORMAT_NVINT4);
G_STATIC_ASSERT (BL_CUDA_FAMILY_NF4 == (int) BL_FORMAT_NF4);
G_STATIC_ASSERT (BL_CUDA_FAMILY_BINARY == (int) BL_FORMAT_BINARY);
G_STATIC_ASSERT (BL_CUDA_FAMILY_TERNARY == (int) BL_FORMAT_TERNARY);
G_STATIC_ASSERT (BL_CUDA_FAMILY_DUAL_BINARY == (int) BL_FORMAT_DUAL_BINARY);
G_STATIC_ASSERT (BL_CUDA_FAMILY_COMPLEX_2BIT == (int) BL_FORMAT_COMPLEX_2BIT);
G_STATIC_ASSERT (BL_CUDA_FAMILY_BITMOD == (int) BL_FORMAT_BITMOD);
G_STATIC_ASSERT (BL_CUDA_FAMILY_INT2_INT4 == (int) BL_FORMAT_INT2_INT4);
G_STATIC_ASSERT (BL_CUDA_FAMILY_BF16 == (int) BL_FORMAT_BF16);
G_STATIC_ASSERT (BL_CUDA_FAMILY_FP16 == (int) BL_FORMAT_FP16);
G_STATIC_ASSERT (BL_CUDA_INT_ABSMAX == (int) BL_INT_ABSMAX && BL_CUDA_INT_GPTQ == (int) BL_INT_GPTQ &&
                 BL_CUDA_INT_Q4_0 == (int) BL_INT_Q4_0 && BL_CUDA_INT_ASYM == (int) BL_INT_ASYM);
G_STATIC_ASSERT (BL_CUDA_SCALE_RULE_FLOOR == (int) BL_SCALE_RULE_FLOOR &&
                 BL_CUDA_SCALE_RULE_CEIL == (int) BL_SCALE_RULE_CEIL &&
                 BL_CUDA_SCALE_RULE_RCEIL == (int) BL_SCALE_RULE_RCEIL &&
                 BL_CUDA_SCALE_RULE_EVEN == (int) BL_SCALE_RULE_EVEN);
G_STATIC_ASSERT (BL_CUDA_ROUND_RNE == (int) BL_ROUND_RNE && BL_CUDA_ROUND_AWAY == (int) BL_ROUND_AWAY &&
                 BL_CUDA_ROUND_ZERO == (int) BL_ROUND_ZERO && BL_CUDA_ROUND_UP == (int) BL_ROUND_UP &&
                 BL_CUDA_ROUND_STOCHASTIC == (int) BL_ROUND_STOCHASTIC);
G_STATIC_ASSERT (BL_CUDA_CLIP_NONE == (int) BL_CLIP_NONE && BL_CUDA_CLIP_RATIO == (int) BL_CLIP_RATIO &&
                 BL_CUDA_CLIP_MSE == (int) BL_CLIP_MSE);
G_STATIC_ASSERT (BL_CUDA_TERNARY_ABSMEAN == (int) BL_TERNARY_ABSMEAN &&
                 BL_CUDA_TERNARY_MEDIAN == (int) BL_TERNARY_MEDIAN);
G_STATIC_ASSERT (BL_CUDA_SCALE_F32 == (int) BL_SCALE_TYPE_F32 && BL_CUDA_SCALE_F16 == (int) BL_SCALE_TYPE_F16 &&
                 BL_CUDA_SCALE_BF16 == (int) BL_SCALE_TYPE_BF16 && BL_CUDA_SCALE_E8M0 == (int) BL_SCALE_TYPE_E8M0 &&
                 BL_CUDA_SCALE_UE4M3 == (int) BL_SCALE_TYPE_UE4M3);
G_STATIC_ASSERT (BL_CUDA_FP_SPECIALS_NONE == (int) BL_FP_SPECIALS_NONE &&
                 BL_CUDA_FP_SPECIALS_IEEE == (int) BL_FP_SPECIALS_IEEE &&
                 BL_CUDA_FP_SPECIALS_FN == (int) BL_FP_SPECIALS_FN);
G_STATIC_ASSERT (sizeof (((BlCudaFp *) NULL)->table) == sizeof (((BlFpFormat *) NULL)->table));

#define SCRATCH_ALIGN 256

static void
describe (const BlFormatSpec   *spec,
          const BlPackedHeader *h,
          BlCudaFormat         *f)
{
  memset (f, 0, sizeof *f);
  f->family = spec->family;
  f->bits = spec->bits;
  f->int_convention = spec->int_convention;
  f->scale_type = spec->scale_type;
  f->scale_rule = spec->scale_rule;
  f->rounding = spec->rounding;
  f->seed = spec->seed;
  f->saturate = spec->saturate;
  f->clip = spec->clip;
  f->clip_ratio = spec->clip_ratio;
  f->ternary_stat = spec->ternary_stat;

  /* the header names an element format exactly where the reference context has one */
  if (h->ebits != 0)
    {
      BlFpFormat elem;

      bl_fp_format_init (&elem, spec->ebits, spec->mbits);
      f->has_elem = TRUE;
      f->elem.ebits = elem.ebits;
      f->elem.mbits = elem.mbits;
      f->elem.bias = elem.bias;
      f->elem.specials = elem.specials;
      f->elem.max_code = elem.max_code;
      f->elem.max_finite = elem.max_finite;
      f->elem.emax = elem.emax;
      f->elem.emin = elem.emin;
      memcpy (f->elem.table, elem.table, sizeof f->elem.table);
    }

  /* the NF4 table and its thresholds, computed as nf4_thresholds () does */
  memcpy (f->nf4_table, bl_nf4_table (), sizeof f->nf4_table);
  for (int k = 0; k < 15; k++)
    f->nf4_mids[k] = (float) (((double) f->nf4_table[k] + (double) f->nf4_table[k + 1]) / 2.0);
  if (spec->family == BL_FORMAT_BITMOD)
    for (int sel = 0; sel < 4; sel++)
      {
        int nv;
        const float *grid = bl_bitmod_grid (spec->bits, sel, &nv);

        memcpy (f->bitmod_grid[sel], grid, (size_t) nv * sizeof (float));
        f->bitmod_n = nv;
      }

  f->elem_bits = h->elem_bits;
  f->scales_per_group = h->scales_per_group;
  f->scale_bits = h->scale_bits;
  f->zero_bits = h->zero_bits;
  f->selector_bits = h->selector_bits;

  f->n_rows = h->n_rows;
  f->n_cols = h->n_cols;
  f->tensor_group = spec->granularity == BL_GRANULARITY_TENSOR;
  f->group_size = f->tensor_group ? h->n_rows * h->n_cols : (int64_t) h->group_size;
  f->groups_per_row = h->groups_per_row;
  f->n_groups = (int64_t) h->n_groups;
}

/* carves the pieces of one allocation; @offset advances past each */
static void *
carve (guint8 *block,
       size_t *offset,
       size_t  bytes)
{
  void *p = block != NULL ? block + *offset : NULL;

  *offset += (bytes + SCRATCH_ALIGN - 1) / SCRATCH_ALIGN * SCRATCH_ALIGN;
  return p;
}

static size_t
layout_scratch (BlCudaFormatCall *call,
                guint8           *block)
{
  const BlCudaFormat *f = &call->format;
  BlCudaFormatScratch *s = &call->scratch;
  int64_t n = f->n_rows * f->n_cols;
  size_t off = 0;

  memset (s, 0, sizeof *s);
  s->format = carve (block, &off, sizeof (BlCudaFormat));
  s->params = carve (block, &off, (size_t) f->n_groups * sizeof (BlCudaGroupParams));
  s->tensor_scale = carve (block, &off, sizeof (float));
  s->stats = carve (block, &off, bl_cuda_format_stats_size ());
  s->status = carve (block, &off, sizeof (int32_t));
  if (f->family == BL_CUDA_FAMILY_TERNARY && f->ternary_stat == BL_CUDA_TERNARY_MEDIAN)
    {
      s->scratch = carve (block, &off, (size_t) n * sizeof (float));
      if (f->tensor_group)
        {
          s->abs_keys = carve (block, &off, (size_t) n * sizeof (uint32_t));
          s->sorted = carve (block, &off, (size_t) n * sizeof (uint32_t));
          s->sort_temp_bytes = bl_cuda_format_sort_temp_size (n);
          s->sort_temp = carve (block, &off, s->sort_temp_bytes);
        }
    }
  if (f->family == BL_CUDA_FAMILY_INT2_INT4)
    {
      s->selectors = carve (block, &off, (size_t) f->n_groups);
      s->slots = carve (block, &off, (size_t) f->n_groups * sizeof (int64_t));
      s->slot_groups = carve (block, &off, (size_t) f->n_groups * sizeof (int64_t));
      s->ranking = carve (block, &off, (size_t) f->n_groups * 16);
    }
  return off;
}

/**
 * bl_cuda_format_call_init:
 * @call: (out caller-allocates): the call
 * @ctx: the context to run on
 * @spec: the format
 * @n_rows: rows
 * @n_cols: columns
 * @error: return location for a #GError
 *
 * Describes @spec for the kernels, allocates the call's device scratch and copies the
 * description to the device. Clear with bl_cuda_format_call_clear() also after a failure.
 *
 * Returns: %TRUE on success
 */
gboolean
bl_cuda_format_call_init (BlCudaFormatCall   *call,
                          BlCudaContext      *ctx,
                          const BlFormatSpec *spec,
                          gint64              n_rows,
                          gint64              n_cols,
                          GError            **error)
{
  size_t bytes;

  memset (call, 0, sizeof *call);
  call->ctx = ctx;
  if (n_rows <= 0 || n_cols <= 0 || n_rows > G_MAXINT64 / n_cols)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT,
                   "invalid tensor shape %" G_GINT64_FORMAT " × %" G_GINT64_FORMAT, n_rows, n_cols);
      return FALSE;
    }
  if (spec->family >= BL_FORMAT_N_FAMILIES)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_UNSUPPORTED_FORMAT, "unknown format family %d", (int) spec->family);
      return FALSE;
    }
  call->spec = *spec;
  bl_format_packed_header_init (spec, n_rows, n_cols, &call->header);
  describe (spec, &call->header, &call->format);
  if (spec->family == BL_FORMAT_INT2_INT4)
    {
      int64_t n_groups = call->format.n_groups;

      /* mixed_prepare's share of 4-bit groups */
      call->n4 = MIN (n_groups, (gint64) floor (spec->range_percent / 100.0 * (double) n_groups + 0.5));
    }

  bytes = layout_scratch (call, NULL);
  call->block = bl_cuda_alloc (ctx, bytes, "format kernel scratch", error);
  if (call->block == NULL)
    return FALSE;
  layout_scratch (call, call->block);
  return bl_cuda_check (ctx, cudaMemcpyAsync ((void *) call->scratch.format, &call->format, sizeof call->format,
                                              cudaMemcpyHostToDevice, ctx->stream),
                        "uploading a format description", error);
}

/**
 * bl_cuda_format_call_params:
 * @call: an initialised call
 * @x: device address of the n_rows × n_cols input
 * @error: return location for a #GError
 *
 * Queues the tensor-level pass (NVFP4's s_T, int2+int4's ranking, whole-tensor statistics)
 * and every group's parameters.
 *
 * Returns: %TRUE when the kernels were queued
 */
gboolean
bl_cuda_format_call_params (BlCudaFormatCall  *call,
                            const float       *x,
                            GError           **error)
{
  BlCudaContext *ctx = call->ctx;

  return bl_cuda_check (ctx, bl_cuda_launch_format_prepare (&call->format, x, call->n4, &call->scratch, ctx->stream),
                        "the tensor-level format pass", error) &&
         bl_cuda_check (ctx, bl_cuda_launch_format_params (&call->format, x, &call->scratch, ctx->stream),
                        "the group parameters", error);
}

/**
 * bl_cuda_format_call_clear:
 * @call: a call
 *
 * Gives the scratch back after the queued work.
 */
void
bl_cuda_format_call_clear (BlCudaFormatCall *call)
{
  if (call->ctx != NULL)
    bl_cuda_free (call->ctx, call->block);
  call->block = NULL;
}

/**
 * bl_cuda_format_fake_quant:
 * @backend: a CUDA backend
 * @spec: the format
 * @src: n_rows × n_cols fp32 values on @backend
 * @dst: output of the same size on @backend; may be @src
 * @n_rows: rows (output channels, or tokens)
 * @n_cols: columns (groups run along a row)
 * @error: return location for a #GError
 *
 * Quantizes and dequantizes on the GPU: the result equals bl_format_fake_quant() bit for
 * bit (NaN payloads aside). The work is queued on the backend's stream; a failure inside a
 * kernel is reported by the next bl_backend_synchronize().
 *
 * Returns: %TRUE when the work was queued
 */
gboolean
bl_cuda_format_fake_quant (BlBackend          *backend,
                           const BlFormatSpec *spec,
                           BlBuffer           *src,
                           BlBuffer           *dst,
                           gint64              n_rows,
                           gint64              n_cols,
                           GError            **error)
{
  BlCudaContext *ctx;
  BlCudaFormatCall call;
  const float *x;
  float *copy = NULL;
  gboolean ok;

  g_return_val_if_fail (spec != NULL && src != NULL && dst != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if ((ctx = bl_cuda_context_from_backend (backend, error)) == NULL)
    return FALSE;
  if (!bl_cuda_format_call_init (&call, ctx, spec, n_rows, n_cols, error) ||
      !bl_cuda_buffer_check (src, (size_t) (n_rows * n_cols) * sizeof (float), "the fake-quant input", error) ||
      !bl_cuda_buffer_check (dst, (size_t) (n_rows * n_cols) * sizeof (float), "the fake-quant output", error))
    {
      bl_cuda_format_call_clear (&call);
      return FALSE;
    }

  x = bl_cuda_buffer_get_data (src);
  /* a complex-2bit element reads its pair partner, which in place may already be written */
  if (spec->family == BL_FORMAT_COMPLEX_2BIT && bl_cuda_buffer_get_data (dst) == bl_cuda_buffer_get_data (src))
    {
      size_t bytes = (size_t) (n_rows * n_cols) * sizeof (float);

      copy = bl_cuda_alloc (ctx, bytes, "a copy of the fake-quant input", error);
      if (copy == NULL ||
          !bl_cuda_check (ctx, cudaMemcpyAsync (copy, x, bytes, cudaMemcpyDeviceToDevice, ctx->stream),
                          "copying the fake-quant input", error))
        {
          bl_cuda_free (ctx, copy);
          bl_cuda_format_call_clear (&call);
          return FALSE;
        }
      x = copy;
    }

  ok = bl_cuda_format_call_params (&call, x, error) &&
       bl_cuda_check (ctx, bl_cuda_launch_format_fake (&call.format, x, bl_cuda_buffer_get_data (dst), &call.scratch,
                                                       ctx->stream),
                      "fake-quant", error);
  bl_cuda_free (ctx, copy);
  bl_cuda_format_call_clear (&call);
  return ok;
}
