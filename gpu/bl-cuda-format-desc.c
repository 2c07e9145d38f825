/* bl-cuda-format-desc.c: a format spec as the format kernels read it, built without CUDA
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * Part of the always-built bitlens-gpu-ref library, so that the CPU emulation of the kernels
 * (tests/test-cuda-emulated.c) uses the very description the GPU gets.
 */
#include "bl-cuda-format-desc.h"

#include <math.h>
#include <string.h>

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

/**
 * bl_cuda_format_describe:
 * @spec: the format
 * @header: the packed header of @spec for the tensor's shape (bl_format_packed_header_init())
 * @out: (out caller-allocates): the description
 *
 * Everything the kernels need of @spec: options, the element format with its decode table,
 * the NF4 and BitMoD grids, the packed layout and the geometry (core's BlFormatCtx).
 */
void
bl_cuda_format_describe (const BlFormatSpec   *spec,
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

/**
 * bl_cuda_format_n4:
 * @spec: the format
 * @n_groups: groups of the tensor
 *
 * Returns: the number of int2+int4 groups kept at 4 bits (mixed_prepare's share), 0 for
 *   other families
 */
gint64
bl_cuda_format_n4 (const BlFormatSpec *spec,
                   gint64              n_groups)
{
  if (spec->family != BL_FORMAT_INT2_INT4)
    return 0;
  return MIN (n_groups, (gint64) floor (spec->range_percent / 100.0 * (double) n_groups + 0.5));
}

/**
 * bl_cuda_format_layout_scratch:
 * @f: a description
 * @stats_bytes: the size of the kernels' tensor statistics (bl_cuda_format_stats_size())
 * @sort_temp_bytes: the radix sort's workspace for the tensor's element count
 *   (bl_cuda_format_sort_temp_size())
 * @block: (nullable): the scratch memory, or %NULL to only measure it
 * @scratch: (out caller-allocates): the pieces of @block
 *
 * Splits one allocation into what a format call of @f needs.
 *
 * Returns: the bytes @block must hold
 */
gsize
bl_cuda_format_layout_scratch (const BlCudaFormat  *f,
                               gsize                stats_bytes,
                               gsize                sort_temp_bytes,
                               guint8              *block,
                               BlCudaFormatScratch *s)
{
  int64_t n = f->n_rows * f->n_cols;
  size_t off = 0;

  memset (s, 0, sizeof *s);
  s->format = carve (block, &off, sizeof (BlCudaFormat));
  s->params = carve (block, &off, (size_t) f->n_groups * sizeof (BlCudaGroupParams));
  s->tensor_scale = carve (block, &off, sizeof (float));
  s->stats = carve (block, &off, stats_bytes);
  s->status = carve (block, &off, sizeof (int32_t));
  if (f->family == BL_CUDA_FAMILY_TERNARY && f->ternary_stat == BL_CUDA_TERNARY_MEDIAN)
    {
      s->scratch = carve (block, &off, (size_t) n * sizeof (float));
      if (f->tensor_group)
        {
          s->abs_keys = carve (block, &off, (size_t) n * sizeof (uint32_t));
          s->sorted = carve (block, &off, (size_t) n * sizeof (uint32_t));
          s->sort_temp_bytes = sort_temp_bytes;
          s->sort_temp = carve (block, &off, sort_temp_bytes);
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
