/* bl-format-private.h: the traits table and per-tensor context shared by the bl-format*.c files
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include "bl-format.h"
#include "bl-format-blocks.h"
#include "bl-format-codecs.h"
#include "bl-format-simd.h"

G_BEGIN_DECLS

/* Elements processed per encode/decode call; even, so complex-2bit pairs never straddle. */
#define BL_FORMAT_CHUNK 256

/* The stored part of one group: scales (decoded value and stored bits), zero, selector. */
typedef struct
{
  float scale[2];
  guint32 scale_code[2];
  int zero;
  int selector;
} BlGroupParams;

/* What the packed layout holds per element and per group for one spec. */
typedef struct
{
  int elem_bits;
  BlPackedScaleKind scale_kind;
  int scale_bits;
  int scales_per_group;
  int zero_bits;
  int selector_bits;
  gboolean has_tensor_scale;
  int extra_bits;             /* int2+int4: extra bits per element of a 4-bit group */
} BlFormatLayout;

typedef struct _BlFormatTraits BlFormatTraits;

/* Everything fixed for one tensor: geometry, element codec, tensor-level statistics. */
typedef struct
{
  BlFormatSpec spec;
  const BlFormatTraits *traits;
  BlFormatLayout layout;
  BlFpFormat elem;            /* the float element, when the family has one */
  gint64 n_rows;
  gint64 n_cols;
  gint64 group_size;          /* n_rows·n_cols for tensor granularity */
  gint64 groups_per_row;      /* 0 for tensor granularity */
  gint64 n_groups;
  gboolean tensor_group;
  float tensor_scale;         /* NVFP4/NVINT4 second-level fp32 scale */
  BlGroupParams tensor_params;
  guint8 *selectors;          /* int2+int4: 1 for the 4-bit groups, owned */
  gint64 n_selected;
  int prepare_threads;        /* threads the tensor-level pass may use; 1 elsewhere */
  gboolean fast_params;       /* params_fast may stand in for params (not in the oracle) */
} BlFormatCtx;

struct _BlFormatTraits
{
  BlFormatFamily family;
  const char *name;
  const char *description;
  const char *const *examples;
  int element_bits;
  int block_size;
  void     (*layout)    (const BlFormatSpec   *spec,
                         BlFormatLayout       *out);
  /* tensor-level pass before any group; NULL when the family has none */
  gboolean (*prepare)   (BlFormatCtx          *ctx,
                         const float          *x,
                         GError              **error);
  /* the stored parameters of one group; @shrink scales the range statistic (clipping);
   * @scratch holds @n floats or is NULL when the family does not need it */
  void     (*params)    (const BlFormatCtx    *ctx,
                         const float          *x,
                         gint64                n,
                         gint64                group_index,
                         double                shrink,
                         float                *scratch,
                         BlGroupParams        *p);
  /* the same parameters bit for bit by a faster route (tests/test-format.c compares them);
   * NULL when params is the only one */
  void     (*params_fast) (const BlFormatCtx  *ctx,
                           const float        *x,
                           gint64              n,
                           gint64              group_index,
                           double              shrink,
                           float              *scratch,
                           BlGroupParams      *p);
  void     (*encode)    (const BlFormatCtx    *ctx,
                         const BlGroupParams  *p,
                         const float          *x,
                         gint64                n,
                         guint64               index0,
                         guint16              *codes);
  void     (*decode)    (const BlFormatCtx    *ctx,
                         const BlGroupParams  *p,
                         const guint16        *codes,
                         gint64                n,
                         float                *y);
  /* decode(encode(x)) in one pass, for the family's default rounding only; NULL if none.
   * Must equal the encode/decode pair bit for bit (tests/test-format.c checks it). */
  void     (*fake_fast) (const BlFormatCtx    *ctx,
                         const BlGroupParams  *p,
                         const float          *x,
                         gint64                n,
                         float                *y);
  /* fills the fused row kernel's description, for the default rounding without clip=mse;
   * FALSE when the kernel does not cover this tensor, NULL when the family has none */
  gboolean (*row_setup) (const BlFormatCtx    *ctx,
                         BlSimdRow            *row);
  gboolean needs_scratch;
};

const BlFormatTraits *bl_format_traits_lookup (BlFormatFamily family);

void        bl_format_run_parallel            (void              (*run) (gpointer task),
                                               gpointer            tasks,
                                               gsize               task_size,
                                               int                 n);
float       bl_format_parallel_amax           (const float        *x,
                                               gint64              n,
                                               int                 n_threads);

BlRounding  bl_format_spec_default_rounding   (const BlFormatSpec *spec);
BlScaleType bl_format_spec_default_scale_type (const BlFormatSpec *spec);
gboolean    bl_format_family_has_fp_element   (BlFormatFamily      family);
void        bl_format_spec_get_layout         (const BlFormatSpec *spec,
                                               BlFormatLayout     *out);

/* Stores a scale in the spec's scale type; returns the decoded value and sets *code. */
float       bl_format_store_scale             (BlScaleType         type,
                                               float               value,
                                               guint32            *code);
float       bl_format_load_scale              (BlScaleType         type,
                                               guint32             code);

G_END_DECLS
