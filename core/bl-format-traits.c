/* bl-format-traits.c: the per-family group kernels and the traits table
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * Every family is four scalar functions over one group: params (the stored scale, zero and
 * selector), encode (f32 → codes), decode (codes → f32) and, for the common formats, a fused
 * fake_fast that computes decode(encode(x)) in one branch-free pass. The scalar
 * encode/decode pair is the oracle; fake_fast must agree with it bit for bit, which
 * tests/test-format.c checks on every family.
 */
#include "bl-format-private.h"
#include "bl-format-scale.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* every product and sum rounds on its own, as in the reference: never fuse them into an
 * FMA, whatever the target (the fast rows and the oracle must agree bit for bit) */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize ("fp-contract=off")
#endif

#include "bl-error.h"

/* ------------------------------------------------------------------------------------------ */
/* small helpers */

static inline float
ffrom (guint32 u)
{
  float x;

  memcpy (&x, &u, sizeof x);
  return x;
}

/* max |x|; NaN wins over everything because its bit pattern is larger than Inf's */
static inline float
group_amax (const float *x,
            gint64       n)
{
  return bl_simd_amax (x, n);
}

/* the same over a tensor-level group, on the threads the tensor pass may use */
static inline float
ctx_amax (const BlFormatCtx *ctx,
          const float       *x,
          gint64             n)
{
  return bl_format_parallel_amax (x, n, ctx->prepare_threads);
}

/* Σ|x| in double with eight independent accumulators combined pairwise: a fixed order (so
 * every path agrees) without one long chain of dependent additions */
static double
sum_abs (const float *x,
         gint64       n)
{
  double acc[8] = { 0 };
  gint64 i = 0;

  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; k++)
      acc[k] += fabsf (x[i + k]);
  for (int k = 0; i < n; i++, k++)
    acc[k] += fabsf (x[i]);
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

/* round a value already clamped to a small integer range; NaN becomes 0 so that no path
 * converts a NaN to an integer */
static inline float
round_int (float      v,
           BlRounding mode,
           guint64    random)
{
  float t, f;

  if (v != v)
    return 0.0f;
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
    case BL_ROUND_STOCHASTIC:
      f = floorf (v);
      /* up with probability frac(v), resolved to 2^−32 (v − f is exact) */
      if ((random >> 32) < (guint64) ldexp ((double) (v - f), 32))
        f += 1.0f;
      return f + 0.0f;
    case BL_ROUND_RNE:
    default:
      /* |v| < 2^22 here: adding 1.5·2^23 rounds to an integer with the FPU's
       * round-to-nearest-even, and the result is +0 for zero */
      return bl_scale_rne (v);
    }
}

static inline float
clampf (float v,
        float lo,
        float hi)
{
  return v < lo ? lo : (v > hi ? hi : v);
}

static inline float
nan_to_zero (float v)
{
  return v == v ? v : 0.0f;
}

static inline guint64
element_random (const BlFormatCtx *ctx,
                guint64            index)
{
  return ctx->spec.rounding == BL_ROUND_STOCHASTIC ? bl_random_u64 (ctx->spec.seed, index) : 0;
}

float
bl_format_load_scale (BlScaleType type,
                      guint32     code)
{
  switch (type)
    {
    case BL_SCALE_TYPE_F16:
      return bl_scale_f16_decode ((guint16) code);
    case BL_SCALE_TYPE_BF16:
      return ffrom (code << 16);
    case BL_SCALE_TYPE_E8M0:
      return bl_scale_e8m0_decode ((guint8) code);
    case BL_SCALE_TYPE_UE4M3:
      return bl_ue4m3_decode ((guint8) code);
    case BL_SCALE_TYPE_F32:
    default:
      return ffrom (code);
    }
}

float
bl_format_store_scale (BlScaleType  type,
                       float        value,
                       guint32     *code)
{
  return bl_scale_store (type, value, code);
}

static void
layout_scales (const BlFormatSpec *spec,
               BlFormatLayout     *out,
               int                 scales_per_group)
{
  switch (spec->scale_type)
    {
    case BL_SCALE_TYPE_F16:
      out->scale_kind = BL_PACKED_SCALE_F16;
      out->scale_bits = 16;
      break;
    case BL_SCALE_TYPE_BF16:
      out->scale_kind = BL_PACKED_SCALE_BF16;
      out->scale_bits = 16;
      break;
    case BL_SCALE_TYPE_E8M0:
      out->scale_kind = BL_PACKED_SCALE_E8M0;
      out->scale_bits = 8;
      break;
    case BL_SCALE_TYPE_UE4M3:
      out->scale_kind = BL_PACKED_SCALE_UE4M3;
      out->scale_bits = 8;
      break;
    case BL_SCALE_TYPE_F32:
    default:
      out->scale_kind = BL_PACKED_SCALE_F32;
      out->scale_bits = 32;
      break;
    }
  out->scales_per_group = scales_per_group;
}

/* ------------------------------------------------------------------------------------------ */
/* INT: integer grid with a scale (peers.md §3.6) */

static void
int_layout (const BlFormatSpec *spec,
            BlFormatLayout     *out)
{
  out->elem_bits = spec->bits;
  layout_scales (spec, out, 1);
  out->zero_bits = spec->int_convention == BL_INT_ASYM ? spec->bits : 0;
}

static void
int_params (const BlFormatCtx *ctx,
            const float       *x,
            gint64             n,
            gint64             group_index,
            double             shrink,
            float             *scratch,
            BlGroupParams     *p)
{
  int b = ctx->spec.bits;
  float maxq = (float) ((1 << b) - 1);
  float half = (float) (1 << (b - 1));
  float amax, s;

  memset (p, 0, sizeof *p);
  switch (ctx->spec.int_convention)
    {
    case BL_INT_GPTQ:
      /* quant.py (sym): s = 2·absmax/maxq, zero = (maxq+1)/2 */
      amax = (float) shrink * ctx_amax (ctx, x, n);
      s = 2.0f * amax / maxq;
      p->scale[0] = bl_format_store_scale (ctx->spec.scale_type, s, &p->scale_code[0]);
      p->zero = 1 << (b - 1);
      break;
    case BL_INT_Q4_0:
      {
        /* ggml quantize_row_q4_0_ref: the signed value of largest magnitude (first one wins),
         * d = max/−8, id = 1/d, codes from x·id; d is stored as fp16 */
        float vmax = bl_scale_q4_0_max (x, n, group_amax (x, n)), d;

        d = (float) shrink * vmax / -half;
        p->scale[0] = bl_format_store_scale (ctx->spec.scale_type, d, &p->scale_code[0]);
        p->scale[1] = d != 0.0f ? 1.0f / d : 0.0f;
        p->zero = 1 << (b - 1);
      }
      break;
    case BL_INT_ASYM:
      {
        /* quant.py (asym): the range is forced to include 0, zero = round(−min/s) */
        float lo, hi;

        bl_simd_minmax0 (x, n, &lo, &hi);
        lo *= (float) shrink;
        hi *= (float) shrink;
        s = (hi - lo) / maxq;
        p->scale[0] = bl_format_store_scale (ctx->spec.scale_type, s, &p->scale_code[0]);
        p->zero = p->scale[0] > 0.0f ? (int) clampf (bl_scale_rne (clampf (-lo / p->scale[0], 0.0f, maxq)),
                                                     0.0f, maxq)
                                     : 0;
      }
      break;
    case BL_INT_ABSMAX:
    default:
      amax = (float) shrink * ctx_amax (ctx, x, n);
      s = amax / (half - 1.0f);
      p->scale[0] = bl_format_store_scale (ctx->spec.scale_type, s, &p->scale_code[0]);
      p->zero = 1 << (b - 1);
      break;
    }
}

/* the integer range [lo, hi] of q = code − zero */
static void
int_bounds (const BlFormatCtx   *ctx,
            const BlGroupParams *p,
            float               *lo,
            float               *hi)
{
  int b = ctx->spec.bits;

  if (ctx->spec.int_convention == BL_INT_ABSMAX)
    {
      *hi = (float) ((1 << (b - 1)) - 1);
      *lo = -*hi;
    }
  else
    {
      *lo = (float) -p->zero;
      *hi = (float) ((1 << b) - 1 - p->zero);
    }
}

static void
int_encode (const BlFormatCtx   *ctx,
            const BlGroupParams *p,
            const float         *x,
            gint64               n,
            guint64              index0,
            guint16             *codes)
{
  float lo, hi;

  int_bounds (ctx, p, &lo, &hi);
  if (ctx->spec.int_convention == BL_INT_Q4_0 && ctx->spec.rounding == BL_ROUND_UP)
    {
      /* ggml: MIN(15, (int8_t)(x·id + 8.5f)), evaluated exactly so in fp32 */
      float bias = (float) p->zero + 0.5f;
      float maxq = (float) ((1 << ctx->spec.bits) - 1);

      for (gint64 i = 0; i < n; i++)
        codes[i] = (guint16) truncf (clampf (nan_to_zero (x[i] * p->scale[1] + bias), 0.0f, maxq));
      return;
    }
  for (gint64 i = 0; i < n; i++)
    {
      float v = ctx->spec.int_convention == BL_INT_Q4_0 ? x[i] * p->scale[1] : x[i] / p->scale[0];
      float q = round_int (clampf (nan_to_zero (v), lo, hi), ctx->spec.rounding,
                           element_random (ctx, index0 + (guint64) i));

      codes[i] = (guint16) ((int) q + p->zero);
    }
}

static void
int_decode (const BlFormatCtx   *ctx,
            const BlGroupParams *p,
            const guint16       *codes,
            gint64               n,
            float               *y)
{
  for (gint64 i = 0; i < n; i++)
    y[i] = (float) ((int) codes[i] - p->zero) * p->scale[0];
}

static void
int_fake_fast (const BlFormatCtx   *ctx,
               const BlGroupParams *p,
               const float         *x,
               gint64               n,
               float               *y)
{
  float lo, hi;

  int_bounds (ctx, p, &lo, &hi);
  if (ctx->spec.int_convention == BL_INT_Q4_0)
    bl_simd_q4_0 (x, n, p->scale[1], (float) p->zero + 0.5f, (float) ((1 << ctx->spec.bits) - 1),
                  (float) p->zero, p->scale[0], y);
  else
    bl_simd_int_rne (x, n, p->scale[0], 1.0f, 1.0f, lo, hi, y);
}

/* ------------------------------------------------------------------------------------------ */
/* FP: ExMy elements with an absmax scale */

static void
fp_layout (const BlFormatSpec *spec,
           BlFormatLayout     *out)
{
  out->elem_bits = spec->bits;
  layout_scales (spec, out, 1);
}

static void
fp_params (const BlFormatCtx *ctx,
           const float       *x,
           gint64             n,
           gint64             group_index,
           double             shrink,
           float             *scratch,
           BlGroupParams     *p)
{
  float amax = (float) shrink * ctx_amax (ctx, x, n);

  memset (p, 0, sizeof *p);
  p->scale[0] = bl_format_store_scale (ctx->spec.scale_type, amax / ctx->elem.max_finite,
                                       &p->scale_code[0]);
}

static void
fp_encode (const BlFormatCtx   *ctx,
           const BlGroupParams *p,
           const float         *x,
           gint64               n,
           guint64              index0,
           guint16             *codes)
{
  for (gint64 i = 0; i < n; i++)
    codes[i] = (guint16) bl_fp_encode (&ctx->elem, x[i] / p->scale[0], ctx->spec.rounding,
                                       ctx->spec.saturate, element_random (ctx, index0 + (guint64) i));
}

static void
fp_decode (const BlFormatCtx   *ctx,
           const BlGroupParams *p,
           const guint16       *codes,
           gint64               n,
           float               *y)
{
  for (gint64 i = 0; i < n; i++)
    y[i] = ctx->elem.table[codes[i]] * p->scale[0];
}

static void
fp_fake_fast (const BlFormatCtx   *ctx,
              const BlGroupParams *p,
              const float         *x,
              gint64               n,
              float               *y)
{
  BlSimdFp f;

  bl_simd_fp_init (&f, &ctx->elem, ctx->spec.saturate);
  bl_simd_fp (&f, x, n, p->scale[0], -INFINITY, INFINITY, y);
}

/* ------------------------------------------------------------------------------------------ */
/* MX: OCP Microscaling v1.0 (peers.md §3.2) */

static void
mx_layout (const BlFormatSpec *spec,
           BlFormatLayout     *out)
{
  out->elem_bits = spec->bits;
  layout_scales (spec, out, 1);
}

static guint8
mx_scale_code (const BlFormatCtx *ctx,
               float              amax)
{
  if (ctx->spec.family == BL_FORMAT_MXINT)
    return bl_scale_mx_code (ctx->spec.scale_rule, 0, ctx->spec.bits - 2,
                             ldexpf ((float) ((1 << (ctx->spec.bits - 1)) - 1), -(ctx->spec.bits - 2)), amax);
  return bl_scale_mx_code (ctx->spec.scale_rule, ctx->elem.emax, ctx->elem.mbits, ctx->elem.max_finite, amax);
}

static void
mx_params (const BlFormatCtx *ctx,
           const float       *x,
           gint64             n,
           gint64             group_index,
           double             shrink,
           float             *scratch,
           BlGroupParams     *p)
{
  memset (p, 0, sizeof *p);
  p->scale_code[0] = mx_scale_code (ctx, (float) shrink * group_amax (x, n));
  p->scale[0] = bl_scale_e8m0_decode ((guint8) p->scale_code[0]);
}

static void
mxfp_encode (const BlFormatCtx   *ctx,
             const BlGroupParams *p,
             const float         *x,
             gint64               n,
             guint64              index0,
             guint16             *codes)
{
  /* P_i = quantize_elem(V_i / X), saturating normals (mx_ops.py) */
  for (gint64 i = 0; i < n; i++)
    codes[i] = (guint16) bl_fp_encode (&ctx->elem, x[i] / p->scale[0], ctx->spec.rounding,
                                       ctx->spec.saturate, element_random (ctx, index0 + (guint64) i));
}

static void
mxint_encode (const BlFormatCtx   *ctx,
              const BlGroupParams *p,
              const float         *x,
              gint64               n,
              guint64              index0,
              guint16             *codes)
{
  int b = ctx->spec.bits;
  float qmax = (float) ((1 << (b - 1)) - 1);
  float up = (float) (1 << (b - 2));
  guint32 mask = (1u << b) - 1;

  /* an MXINT element is a two's complement fixed-point value with 2^−(b−2) implied; the
   * −2^(b−1) code stays unused (symmetric, peers.md §3.1) */
  for (gint64 i = 0; i < n; i++)
    {
      float q = round_int (clampf (nan_to_zero (x[i] / p->scale[0] * up), -qmax, qmax),
                           ctx->spec.rounding, element_random (ctx, index0 + (guint64) i));

      codes[i] = (guint16) ((guint32) (int) q & mask);
    }
}

static inline int
sign_extend (guint32 code,
             int     bits)
{
  return (int) (code ^ (1u << (bits - 1))) - (1 << (bits - 1));
}

static void
mxint_decode (const BlFormatCtx   *ctx,
              const BlGroupParams *p,
              const guint16       *codes,
              gint64               n,
              float               *y)
{
  int b = ctx->spec.bits;
  float down = ldexpf (1.0f, -(b - 2));

  for (gint64 i = 0; i < n; i++)
    y[i] = (float) sign_extend (codes[i], b) * down * p->scale[0];
}

static void
mxint_fake_fast (const BlFormatCtx   *ctx,
                 const BlGroupParams *p,
                 const float         *x,
                 gint64               n,
                 float               *y)
{
  int b = ctx->spec.bits;
  float qmax = (float) ((1 << (b - 1)) - 1);

  bl_simd_int_rne (x, n, p->scale[0], (float) (1 << (b - 2)), ldexpf (1.0f, -(b - 2)), -qmax, qmax, y);
}

/* ------------------------------------------------------------------------------------------ */
/* NVFP4 / NVINT4: torchao nvfp4_quantize (peers.md §3.3, §3.8) */

static void
nv_layout (const BlFormatSpec *spec,
           BlFormatLayout     *out)
{
  out->elem_bits = 4;
  layout_scales (spec, out, 1);
  out->has_tensor_scale = TRUE;
}

static float
nv_qmax (const BlFormatCtx *ctx)
{
  return ctx->spec.family == BL_FORMAT_NVFP4 ? 6.0f : 7.0f;
}

static gboolean
nv_prepare (BlFormatCtx  *ctx,
            const float  *x,
            GError      **error)
{
  float amax = ctx_amax (ctx, x, ctx->n_rows * ctx->n_cols);

  /* step 1: s_T = amax_tensor / (448 · 6), torchao per_tensor_amax_to_scale; NVINT4 uses
   * its element maximum 7 in place of 6 (methods.md §2: s_t = max(s)/448, s = amax/Qmax) */
  ctx->tensor_scale = amax / (448.0f * nv_qmax (ctx));
  return TRUE;
}

static void
nv_params (const BlFormatCtx *ctx,
           const float       *x,
           gint64             n,
           gint64             group_index,
           double             shrink,
           float             *scratch,
           BlGroupParams     *p)
{
  memset (p, 0, sizeof *p);
  /* step 2: s_b = fp8_e4m3((amax_block/6)/s_T), clamped to [E4M3 tiny, 448] as torchao does;
   * the data are divided by the fp32 product s_T·s_b, which is also the decode scale */
  p->scale[0] = bl_scale_nv_block ((float) shrink * group_amax (x, n), nv_qmax (ctx), ctx->tensor_scale,
                                   &p->scale_code[0]);
}

static void
nvfp4_encode (const BlFormatCtx   *ctx,
              const BlGroupParams *p,
              const float         *x,
              gint64               n,
              guint64              index0,
              guint16             *codes)
{
  /* step 3: x_q = e2m1_RNE(clamp(x/(s_T·s_b), −6, 6)) */
  for (gint64 i = 0; i < n; i++)
    codes[i] = (guint16) bl_fp_encode (&ctx->elem, clampf (x[i] / p->scale[0], -6.0f, 6.0f),
                                       ctx->spec.rounding, TRUE,
                                       element_random (ctx, index0 + (guint64) i));
}

static void
nvfp4_fake_fast (const BlFormatCtx   *ctx,
                 const BlGroupParams *p,
                 const float         *x,
                 gint64               n,
                 float               *y)
{
  BlSimdFp f;

  bl_simd_fp_init (&f, &ctx->elem, TRUE);
  bl_simd_fp (&f, x, n, p->scale[0], -6.0f, 6.0f, y);
}

static void
nvint4_encode (const BlFormatCtx   *ctx,
               const BlGroupParams *p,
               const float         *x,
               gint64               n,
               guint64              index0,
               guint16             *codes)
{
  /* INT4 with symmetric clipping to [−7, 7] (peers.md §3.8) */
  for (gint64 i = 0; i < n; i++)
    {
      float q = round_int (clampf (nan_to_zero (x[i] / p->scale[0]), -7.0f, 7.0f),
                           ctx->spec.rounding, element_random (ctx, index0 + (guint64) i));

      codes[i] = (guint16) ((guint32) (int) q & 0xfu);
    }
}

static void
nvint4_decode (const BlFormatCtx   *ctx,
               const BlGroupParams *p,
               const guint16       *codes,
               gint64               n,
               float               *y)
{
  for (gint64 i = 0; i < n; i++)
    y[i] = (float) sign_extend (codes[i], 4) * p->scale[0];
}

static void
nvint4_fake_fast (const BlFormatCtx   *ctx,
                  const BlGroupParams *p,
                  const float         *x,
                  gint64               n,
                  float               *y)
{
  bl_simd_int_rne (x, n, p->scale[0], 1.0f, 1.0f, -7.0f, 7.0f, y);
}

/* ------------------------------------------------------------------------------------------ */
/* NF4 (QLoRA): absmax per block, nearest NormalFloat value */

static void
nf4_layout (const BlFormatSpec *spec,
            BlFormatLayout     *out)
{
  out->elem_bits = 4;
  layout_scales (spec, out, 1);
}

static void
nf4_params (const BlFormatCtx *ctx,
            const float       *x,
            gint64             n,
            gint64             group_index,
            double             shrink,
            float             *scratch,
            BlGroupParams     *p)
{
  memset (p, 0, sizeof *p);
  p->scale[0] = bl_format_store_scale (ctx->spec.scale_type, (float) shrink * ctx_amax (ctx, x, n),
                                       &p->scale_code[0]);
}

/* decision thresholds halfway between neighbours; a value on a threshold takes the lower
 * code, as bitsandbytes' dQuantizeNF4 (strict '>') does */
static const float *
nf4_thresholds (void)
{
  static float mids[15];
  static gsize initialised = 0;

  if (g_once_init_enter (&initialised))
    {
      const float *t = bl_nf4_table ();

      for (int k = 0; k < 15; k++)
        mids[k] = (float) (((double) t[k] + (double) t[k + 1]) / 2.0);
      g_once_init_leave (&initialised, 1);
    }
  return mids;
}

static void
nf4_encode (const BlFormatCtx   *ctx,
            const BlGroupParams *p,
            const float         *x,
            gint64               n,
            guint64              index0,
            guint16             *codes)
{
  const float *mids = nf4_thresholds ();

  for (gint64 i = 0; i < n; i++)
    {
      float v = x[i] / p->scale[0];
      guint16 c = 0;

      for (int k = 0; k < 15; k++)
        c += v > mids[k];
      codes[i] = c;
    }
}

static void
nf4_decode (const BlFormatCtx   *ctx,
            const BlGroupParams *p,
            const guint16       *codes,
            gint64               n,
            float               *y)
{
  const float *t = bl_nf4_table ();

  for (gint64 i = 0; i < n; i++)
    y[i] = t[codes[i]] * p->scale[0];
}

static void
nf4_fake_fast (const BlFormatCtx   *ctx,
               const BlGroupParams *p,
               const float         *x,
               gint64               n,
               float               *y)
{
  bl_simd_nf4 (x, n, p->scale[0], nf4_thresholds (), bl_nf4_table (), y);
}

/* ------------------------------------------------------------------------------------------ */
/* binary: sign(w) · mean|w| */

static void
binary_layout (const BlFormatSpec *spec,
               BlFormatLayout     *out)
{
  out->elem_bits = 1;
  layout_scales (spec, out, 1);
}

static void
binary_params (const BlFormatCtx *ctx,
               const float       *x,
               gint64             n,
               gint64             group_index,
               double             shrink,
               float             *scratch,
               BlGroupParams     *p)
{
  memset (p, 0, sizeof *p);
  p->scale[0] = bl_format_store_scale (ctx->spec.scale_type, n > 0 ? (float) (sum_abs (x, n) / (double) n) : 0.0f,
                                       &p->scale_code[0]);
}

static void
binary_encode (const BlFormatCtx   *ctx,
               const BlGroupParams *p,
               const float         *x,
               gint64               n,
               guint64              index0,
               guint16             *codes)
{
  /* sign(0) = +1, as BitStack's sign step does */
  for (gint64 i = 0; i < n; i++)
    codes[i] = x[i] < 0.0f;
}

static void
binary_decode (const BlFormatCtx   *ctx,
               const BlGroupParams *p,
               const guint16       *codes,
               gint64               n,
               float               *y)
{
  for (gint64 i = 0; i < n; i++)
    y[i] = codes[i] ? -p->scale[0] : p->scale[0];
}

static void
binary_fake_fast (const BlFormatCtx   *ctx,
                  const BlGroupParams *p,
                  const float         *x,
                  gint64               n,
                  float               *y)
{
  bl_simd_sign (x, n, p->scale[0], y);
}

/* ------------------------------------------------------------------------------------------ */
/* ternary: BitNet b1.58 absmean, or the median variant (peers.md §3.7, methods.md §13c) */

#define TERNARY_EPS 1e-5f

static void
ternary_layout (const BlFormatSpec *spec,
                BlFormatLayout     *out)
{
  out->elem_bits = 2;
  layout_scales (spec, out, 1);
}

/* Hoare-partition quickselect: the @k-th smallest (from 0) of the @n values of @buf, which it
 * reorders. One definition serves the oracle's float median and the fast path's bit
 * patterns (select_u32). */
#define DEFINE_QUICKSELECT(name, type)                                                        \
  static type                                                                                 \
  name (type   *buf,                                                                          \
        gint64  n,                                                                            \
        gint64  k)                                                                            \
  {                                                                                           \
    gint64 lo = 0, hi = n - 1;                                                                \
                                                                                              \
    while (hi > lo)                                                                           \
      {                                                                                       \
        type pivot = buf[lo + (hi - lo) / 2];                                                 \
        gint64 i = lo, j = hi;                                                                \
                                                                                              \
        while (i <= j)                                                                        \
          {                                                                                   \
            while (buf[i] < pivot)                                                            \
              i++;                                                                            \
            while (buf[j] > pivot)                                                            \
              j--;                                                                            \
            if (i <= j)                                                                       \
              {                                                                               \
                type t = buf[i];                                                              \
                                                                                              \
                buf[i] = buf[j];                                                              \
                buf[j] = t;                                                                   \
                i++;                                                                          \
                j--;                                                                          \
              }                                                                               \
          }                                                                                   \
        if (k <= j)                                                                           \
          hi = j;                                                                             \
        else if (k >= i)                                                                      \
          lo = i;                                                                             \
        else                                                                                  \
          break;                                                                              \
      }                                                                                       \
    return buf[k];                                                                            \
  }

DEFINE_QUICKSELECT (select_f32, float)
DEFINE_QUICKSELECT (select_u32, guint32)

/* the lower median (torch.median), by quickselect on @buf */
static float
lower_median (float  *buf,
              gint64  n)
{
  return select_f32 (buf, n, (n - 1) / 2);
}

static void
ternary_params (const BlFormatCtx *ctx,
                const float       *x,
                gint64             n,
                gint64             group_index,
                double             shrink,
                float             *scratch,
                BlGroupParams     *p)
{
  float gamma = 0.0f;

  memset (p, 0, sizeof *p);
  if (n > 0 && ctx->spec.ternary_stat == BL_TERNARY_MEDIAN)
    {
      for (gint64 i = 0; i < n; i++)
        scratch[i] = fabsf (x[i]);
      gamma = lower_median (scratch, n);
    }
  else if (n > 0)
    gamma = (float) (sum_abs (x, n) / (double) n);
  p->scale[0] = bl_format_store_scale (ctx->spec.scale_type, gamma, &p->scale_code[0]);
}

/* The lower median of |x| without sorting the tensor (for params_fast): the bit patterns of
 * |x| order like the values, so the k-th smallest is one exact value. Eight pivots taken from
 * a sample of 1024 values bracket rank k (the sample only guides; any sample gives the exact
 * answer); counting passes narrow the bracket, one more collects the values in it, and
 * quickselect finds the answer among those few. Both passes split the tensor over the prepare threads. FALSE for
 * small tensors, NaNs, or a sample so unlucky that the bracket holds a quarter of the tensor
 * (the caller then takes the reference). */

#define MEDIAN_SAMPLE 1024

typedef struct
{
  const float *x;
  gint64 n;
  const guint32 *pivots;
  gint64 counts[9];
  guint32 lo;
  guint32 hi;
  guint32 *out;
} MedianTask;

static void
median_count_task (gpointer data)
{
  MedianTask *t = data;

  bl_simd_count_below (t->x, t->n, t->pivots, t->counts);
}

static void
median_collect_task (gpointer data)
{
  MedianTask *t = data;

  bl_simd_collect_range (t->x, t->n, t->lo, t->hi, t->out);
}

/* sorts @n bit patterns by four byte-wise counting passes (LSD radix) through @tmp */
static void
sort_u32 (guint32 *v,
          guint32 *tmp,
          int      n)
{
  for (int shift = 0; shift < 32; shift += 8)
    {
      int count[257] = { 0 };

      for (int i = 0; i < n; i++)
        count[((v[i] >> shift) & 0xffu) + 1]++;
      for (int b = 0; b < 256; b++)
        count[b + 1] += count[b];
      for (int i = 0; i < n; i++)
        tmp[count[(v[i] >> shift) & 0xffu]++] = v[i];
      memcpy (v, tmp, sizeof (guint32) * (gsize) n);
    }
}

static gboolean
fast_lower_median (const BlFormatCtx *ctx,
                   const float       *x,
                   gint64             n,
                   float             *scratch,
                   float             *out)
{
  static const int spread[8] = { -96, -48, -24, -8, 8, 24, 48, 96 };
  guint32 sample[MEDIAN_SAMPLE], tmp[MEDIAN_SAMPLE], pivots[8];
  gint64 k = (n - 1) / 2, stride = n / MEDIAN_SAMPLE, rank, below = 0, above = n;
  int n_threads = MAX (1, ctx->prepare_threads), j = -1;
  g_autofree MedianTask *tasks = NULL;
  guint32 *cand = (guint32 *) scratch, lo = 0, hi = 0x7f800001u;
  gint64 per, offset = 0, t_below[256], t_above[256];

  if (n < 16 * MEDIAN_SAMPLE || scratch == NULL)
    return FALSE;
  n_threads = MIN (n_threads, 256);
  /* 32 runs of 32 neighbours spread over the tensor: a few cache lines each, where 1024
   * scattered values would cost a cache miss apiece (about a pass over a small tensor) */
  for (int i = 0; i < MEDIAN_SAMPLE; i++)
    {
      gint64 at = (i / 32) * 32 * stride + 16 * stride - 16 + i % 32;
      guint32 b;

      memcpy (&b, &x[at], sizeof b);
      sample[i] = b & 0x7fffffffu;
    }
  sort_u32 (sample, tmp, MEDIAN_SAMPLE);
  rank = (gint64) ((double) k / (double) n * MEDIAN_SAMPLE);
  for (int p = 0; p < 8; p++)
    pivots[p] = sample[CLAMP (rank + spread[p], 0, MEDIAN_SAMPLE - 1)];

  tasks = g_new0 (MedianTask, n_threads);
  per = (n + n_threads - 1) / n_threads;
  for (int t = 0; t < n_threads; t++)
    {
      tasks[t].x = x + MIN (n, per * t);
      tasks[t].n = MIN (n, per * (t + 1)) - MIN (n, per * t);
      tasks[t].pivots = pivots;
      t_below[t] = 0;
      t_above[t] = tasks[t].n;
    }
  /* Counting rounds narrow the bracket [lo, hi), #{< lo} = below ≤ k < above = #{< hi}: the
   * first from the sample's pivots, the next from eight pivots spread evenly over the
   * bracket's bit patterns (where the values are close to evenly spread), until the bracket
   * holds at most 1/256 of the tensor: a further counting round (vector compares, no
   * branches) costs less than collecting and selecting among a denser bracket */
  for (int round = 0; round < 4 && above - below > n / 256 && hi - lo > 8; round++)
    {
      gint64 total[9] = { 0 };

      if (round > 0)
        for (int p = 0; p < 8; p++)
          pivots[p] = lo + (guint32) ((guint64) (hi - lo) * (guint64) (p + 1) / 9u);
      bl_format_run_parallel (median_count_task, tasks, sizeof *tasks, n_threads);
      for (int t = 0; t < n_threads; t++)
        for (int p = 0; p < 9; p++)
          total[p] += tasks[t].counts[p];
      if (total[8] > 0)
        return FALSE;
      for (j = 7; j >= 0 && total[j] > k; j--)
        ;
      if (j >= 0 && total[j] >= below)
        {
          lo = pivots[j];
          below = total[j];
          for (int t = 0; t < n_threads; t++)
            t_below[t] = tasks[t].counts[j];
        }
      if (j < 7 && total[j + 1] <= above)
        {
          hi = pivots[j + 1];
          above = total[j + 1];
          for (int t = 0; t < n_threads; t++)
            t_above[t] = tasks[t].counts[j + 1];
        }
    }
  if (above - below > n / 4)
    return FALSE;
  for (int t = 0; t < n_threads; t++)
    {
      tasks[t].lo = lo;
      tasks[t].hi = hi;
      tasks[t].out = cand + offset;
      offset += t_above[t] - t_below[t];
    }
  bl_format_run_parallel (median_collect_task, tasks, sizeof *tasks, n_threads);
  {
    guint32 b = select_u32 (cand, above - below, k - below);

    memcpy (out, &b, sizeof *out);
  }
  return TRUE;
}

/* The absmean sum has one order, so one thread adds; while it adds the first half, another
 * reads the second half into the shared cache, so that the adding thread finds it there
 * instead of in memory. */
typedef struct
{
  const float *x;
  gint64 n;
  gboolean add;
  double sum;
} SumTask;

static void
sum_task_run (gpointer data)
{
  SumTask *t = data;

  if (t->add)
    t->sum = bl_simd_sum_abs (t->x, t->n);
  else
    bl_simd_touch (t->x, t->n);
}

static double
ordered_sum_abs (const BlFormatCtx *ctx,
                 const float       *x,
                 gint64             n)
{
  SumTask tasks[2] = { { x, n, TRUE, 0.0 }, { x + n / 2, n - n / 2, FALSE, 0.0 } };

  bl_format_run_parallel (sum_task_run, tasks, sizeof tasks[0], ctx->prepare_threads >= 2 && n >= 65536 ? 2 : 1);
  return tasks[0].sum;
}

static void
ternary_params_fast (const BlFormatCtx *ctx,
                     const float       *x,
                     gint64             n,
                     gint64             group_index,
                     double             shrink,
                     float             *scratch,
                     BlGroupParams     *p)
{
  float gamma;

  if (ctx->spec.ternary_stat == BL_TERNARY_MEDIAN ? fast_lower_median (ctx, x, n, scratch, &gamma) : n > 0)
    {
      /* absmean: sum_abs's eight accumulators, held in vector registers */
      if (ctx->spec.ternary_stat == BL_TERNARY_ABSMEAN)
        gamma = (float) (ordered_sum_abs (ctx, x, n) / (double) n);
      memset (p, 0, sizeof *p);
      p->scale[0] = bl_format_store_scale (ctx->spec.scale_type, gamma, &p->scale_code[0]);
      return;
    }
  ternary_params (ctx, x, n, group_index, shrink, scratch, p);
}

static void
ternary_encode (const BlFormatCtx   *ctx,
                const BlGroupParams *p,
                const float         *x,
                gint64               n,
                guint64              index0,
                guint16             *codes)
{
  /* W̃ = RoundClip(W/(γ+ε), −1, 1) */
  float denom = p->scale[0] + TERNARY_EPS;

  for (gint64 i = 0; i < n; i++)
    {
      float q = round_int (clampf (nan_to_zero (x[i] / denom), -1.0f, 1.0f), ctx->spec.rounding,
                           element_random (ctx, index0 + (guint64) i));

      codes[i] = (guint16) ((guint32) (int) q & 3u);
    }
}

static void
ternary_decode (const BlFormatCtx   *ctx,
                const BlGroupParams *p,
                const guint16       *codes,
                gint64               n,
                float               *y)
{
  for (gint64 i = 0; i < n; i++)
    y[i] = (float) sign_extend (codes[i], 2) * p->scale[0];
}

static void
ternary_fake_fast (const BlFormatCtx   *ctx,
                   const BlGroupParams *p,
                   const float         *x,
                   gint64               n,
                   float               *y)
{
  bl_simd_int_rne2 (x, n, p->scale[0] + TERNARY_EPS, p->scale[0], -1.0f, 1.0f, y);
}

/* ------------------------------------------------------------------------------------------ */
/* dual-binary: DB-LLM ŵ = α₁·b₁ + α₂·b₂ initialised from a 2-bit uniform quantizer
 * (methods.md §13b) */

static void
dual_layout (const BlFormatSpec *spec,
             BlFormatLayout     *out)
{
  out->elem_bits = 2;
  layout_scales (spec, out, 2);
}

static void
dual_params (const BlFormatCtx *ctx,
             const float       *x,
             gint64             n,
             gint64             group_index,
             double             shrink,
             float             *scratch,
             BlGroupParams     *p)
{
  float lo = 0.0f, hi = 0.0f, s, z;

  memset (p, 0, sizeof *p);
  for (gint64 i = 0; i < n; i++)
    {
      lo = x[i] < lo ? x[i] : lo;
      hi = x[i] > hi ? x[i] : hi;
    }
  /* the asymmetric 2-bit grid (q − z)·s with z = round(−min/s); z = 1 gives {−s, 0, s, 2s}
   * = 2s·b₁ − s·b₂ (α₁ = 2s, α₂ = −s as in the paper), z = 2 its mirror α₁ = −2s, α₂ = s */
  s = (hi - lo) / 3.0f;
  z = s > 0.0f ? round_int (clampf (-lo / s, 0.0f, 3.0f), BL_ROUND_RNE, 0) : 1.0f;
  if (z <= 1.0f)
    {
      p->scale[0] = bl_format_store_scale (ctx->spec.scale_type, 2.0f * s, &p->scale_code[0]);
      p->scale[1] = bl_format_store_scale (ctx->spec.scale_type, -s, &p->scale_code[1]);
    }
  else
    {
      p->scale[0] = bl_format_store_scale (ctx->spec.scale_type, -2.0f * s, &p->scale_code[0]);
      p->scale[1] = bl_format_store_scale (ctx->spec.scale_type, s, &p->scale_code[1]);
    }
}

static void
dual_encode (const BlFormatCtx   *ctx,
             const BlGroupParams *p,
             const float         *x,
             gint64               n,
             guint64              index0,
             guint16             *codes)
{
  float vals[4];

  for (int c = 0; c < 4; c++)
    vals[c] = (float) (c & 1) * p->scale[0] + (float) (c >> 1) * p->scale[1];
  /* the nearest of the four sums; on a tie the smaller magnitude, then the lower code
   * (the paper's Heaviside thresholds sit on these midpoints) */
  for (gint64 i = 0; i < n; i++)
    {
      int best = 0;
      float best_d = fabsf (x[i] - vals[0]);

      for (int c = 1; c < 4; c++)
        {
          float d = fabsf (x[i] - vals[c]);

          if (d < best_d || (d == best_d && fabsf (vals[c]) < fabsf (vals[best])))
            {
              best = c;
              best_d = d;
            }
        }
      codes[i] = (guint16) best;
    }
}

static void
dual_decode (const BlFormatCtx   *ctx,
             const BlGroupParams *p,
             const guint16       *codes,
             gint64               n,
             float               *y)
{
  for (gint64 i = 0; i < n; i++)
    y[i] = (float) (codes[i] & 1) * p->scale[0] + (float) (codes[i] >> 1) * p->scale[1];
}

static void
dual_fake_fast (const BlFormatCtx   *ctx,
                const BlGroupParams *p,
                const float         *x,
                gint64               n,
                float               *y)
{
  bl_simd_dual (x, n, p->scale[0], p->scale[1], y);
}

/* ------------------------------------------------------------------------------------------ */
/* complex-2bit: iFairy PhaseQuant on pairs (w[2k] + i·w[2k+1]) (methods.md §13d) */

static void
complex_layout (const BlFormatSpec *spec,
                BlFormatLayout     *out)
{
  out->elem_bits = 1;
  layout_scales (spec, out, 2);
}

/* 0 = +1, 1 = −1, 2 = +i, 3 = −i (bit 0: negative, bit 1: imaginary axis); the phase
 * sectors are [−π/4, π/4) → +1, [π/4, 3π/4) → +i, [3π/4, π] ∪ [−π, −3π/4) → −1,
 * [−3π/4, −π/4) → −i, and 0 maps to +1 */
static inline int
phase_code (float a,
            float b)
{
  if (a == 0.0f && b == 0.0f)
    return 0;
  if (a > 0.0f && b >= -a && b < a)
    return 0;
  if (b > 0.0f && a <= b && a > -b)
    return 2;
  if (b < 0.0f && a >= b && a < -b)
    return 3;
  return 1;
}

static void
complex_params (const BlFormatCtx *ctx,
                const float       *x,
                gint64             n,
                gint64             group_index,
                double             shrink,
                float             *scratch,
                BlGroupParams     *p)
{
  double sum_re = 0.0, sum_im = 0.0;
  gint64 n_re = 0, n_im = 0;

  memset (p, 0, sizeof *p);
  for (gint64 i = 0; i < n; i += 2)
    {
      float a = x[i], b = i + 1 < n ? x[i + 1] : 0.0f;
      int c = phase_code (a, b);

      if (c < 2)
        {
          sum_re += fabsf (a);
          n_re++;
        }
      else
        {
          sum_im += fabsf (b);
          n_im++;
        }
    }
  /* axis-wise scales: mean |re| over the ±1 weights, mean |im| over the ±i weights */
  p->scale[0] = bl_format_store_scale (ctx->spec.scale_type, n_re ? (float) (sum_re / (double) n_re) : 0.0f,
                                       &p->scale_code[0]);
  p->scale[1] = bl_format_store_scale (ctx->spec.scale_type, n_im ? (float) (sum_im / (double) n_im) : 0.0f,
                                       &p->scale_code[1]);
}

static void
complex_encode (const BlFormatCtx   *ctx,
                const BlGroupParams *p,
                const float         *x,
                gint64               n,
                guint64              index0,
                guint16             *codes)
{
  for (gint64 i = 0; i < n; i += 2)
    {
      int c = phase_code (x[i], i + 1 < n ? x[i + 1] : 0.0f);

      codes[i] = (guint16) (c & 1);
      if (i + 1 < n)
        codes[i + 1] = (guint16) (c >> 1);
    }
}

static void
complex_decode (const BlFormatCtx   *ctx,
                const BlGroupParams *p,
                const guint16       *codes,
                gint64               n,
                float               *y)
{
  for (gint64 i = 0; i < n; i += 2)
    {
      gboolean neg = codes[i] & 1;
      gboolean imag = i + 1 < n && (codes[i + 1] & 1);
      float re = imag ? 0.0f : (neg ? -p->scale[0] : p->scale[0]);
      float im = imag ? (neg ? -p->scale[1] : p->scale[1]) : 0.0f;

      y[i] = re;
      if (i + 1 < n)
        y[i + 1] = im;
    }
}

static void
complex_fake_fast (const BlFormatCtx   *ctx,
                   const BlGroupParams *p,
                   const float         *x,
                   gint64               n,
                   float               *y)
{
  for (gint64 i = 0; i < n; i += 2)
    {
      int c = phase_code (x[i], i + 1 < n ? x[i + 1] : 0.0f);

      y[i] = c >= 2 ? 0.0f : (c & 1 ? -p->scale[0] : p->scale[0]);
      if (i + 1 < n)
        y[i + 1] = c < 2 ? 0.0f : (c & 1 ? -p->scale[1] : p->scale[1]);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* BitMoD: per group the extended FP grid of least squared error (methods.md §12) */

static void
bitmod_layout (const BlFormatSpec *spec,
               BlFormatLayout     *out)
{
  out->elem_bits = spec->bits;
  layout_scales (spec, out, 1);
  out->selector_bits = 2;
}

static void
bitmod_params (const BlFormatCtx *ctx,
               const float       *x,
               gint64             n,
               gint64             group_index,
               double             shrink,
               float             *scratch,
               BlGroupParams     *p)
{
  float amax = (float) shrink * group_amax (x, n);
  double best_err = INFINITY;

  memset (p, 0, sizeof *p);
  for (int sel = 0; sel < 4; sel++)
    {
      int nv;
      const float *grid = bl_bitmod_grid (ctx->spec.bits, sel, &nv);
      float gmax = MAX (fabsf (grid[0]), fabsf (grid[nv - 1]));
      guint32 code;
      float s = bl_format_store_scale (ctx->spec.scale_type, amax / gmax, &code);
      double err = 0.0;

      for (gint64 i = 0; i < n; i++)
        {
          float q = grid[bl_grid_nearest (grid, nv, x[i] / s)] * s;
          double d = (double) q - (double) x[i];

          err += d * d;
        }
      if (err < best_err)
        {
          best_err = err;
          p->selector = sel;
          p->scale[0] = s;
          p->scale_code[0] = code;
        }
    }
}

static void
bitmod_encode (const BlFormatCtx   *ctx,
               const BlGroupParams *p,
               const float         *x,
               gint64               n,
               guint64              index0,
               guint16             *codes)
{
  int nv;
  const float *grid = bl_bitmod_grid (ctx->spec.bits, p->selector, &nv);

  for (gint64 i = 0; i < n; i++)
    codes[i] = (guint16) bl_grid_nearest (grid, nv, x[i] / p->scale[0]);
}

static void
bitmod_decode (const BlFormatCtx   *ctx,
               const BlGroupParams *p,
               const guint16       *codes,
               gint64               n,
               float               *y)
{
  int nv;
  const float *grid = bl_bitmod_grid (ctx->spec.bits, p->selector, &nv);

  for (gint64 i = 0; i < n; i++)
    y[i] = grid[codes[i]] * p->scale[0];
}

static void
bitmod_fake_fast (const BlFormatCtx   *ctx,
                  const BlGroupParams *p,
                  const float         *x,
                  gint64               n,
                  float               *y)
{
  int nv;
  const float *grid = bl_bitmod_grid (ctx->spec.bits, p->selector, &nv);

  for (gint64 i = 0; i < n; i++)
    y[i] = grid[bl_grid_nearest (grid, nv, x[i] / p->scale[0])] * p->scale[0];
}

/* ------------------------------------------------------------------------------------------ */
/* int2+int4: asymmetric 2-bit groups, the widest-range groups at 4 bits (methods.md §13e) */

static void
mixed_layout (const BlFormatSpec *spec,
              BlFormatLayout     *out)
{
  out->elem_bits = 2;
  layout_scales (spec, out, 1);
  out->zero_bits = 4;
  out->selector_bits = 1;
  out->extra_bits = 2;
}

typedef struct
{
  float range;
  gint64 index;
} GroupRange;

/* the ranking order: wider range first, ties by lower group index (a strict total order, so
 * the selected set does not depend on how it is found) */
static inline gboolean
range_before (const GroupRange *a,
              const GroupRange *b)
{
  if (a->range != b->range)
    return a->range > b->range;
  return a->index < b->index;
}

/* moves the first @k groups in ranking order to r[0..k), in O(n) on average (quickselect) */
static void
select_top (GroupRange *r,
            gint64      n,
            gint64      k)
{
  gint64 lo = 0, hi = n - 1;

  while (lo < hi && k > 0 && k < n)
    {
      GroupRange pivot = r[lo + (hi - lo) / 2];
      gint64 i = lo, j = hi;

      while (i <= j)
        {
          while (range_before (&r[i], &pivot))
            i++;
          while (range_before (&pivot, &r[j]))
            j--;
          if (i <= j)
            {
              GroupRange t = r[i];

              r[i] = r[j];
              r[j] = t;
              i++;
              j--;
            }
        }
      /* r[lo..j] precede r[i..hi]; the boundary k must fall in one part */
      if (k - 1 <= j)
        hi = j;
      else if (k - 1 >= i)
        lo = i;
      else
        break;
    }
}

typedef struct
{
  const BlFormatCtx *ctx;
  const float *x;
  gint64 begin;               /* groups */
  gint64 end;
  GroupRange *ranges;
} RangeTask;

static void
range_task_run (gpointer data)
{
  RangeTask *t = data;
  const BlFormatCtx *ctx = t->ctx;

  for (gint64 g = t->begin; g < t->end; g++)
    {
      gint64 row = g / ctx->groups_per_row;
      gint64 col0 = (g % ctx->groups_per_row) * ctx->group_size;
      gint64 len = MIN (ctx->group_size, ctx->n_cols - col0);
      float lo, hi;

      bl_simd_minmax (t->x + row * ctx->n_cols + col0, len, &lo, &hi);
      t->ranges[g].range = hi - lo;
      t->ranges[g].index = g;
    }
}

static gboolean
mixed_prepare (BlFormatCtx  *ctx,
               const float  *x,
               GError      **error)
{
  g_autofree GroupRange *ranges = g_try_new (GroupRange, ctx->n_groups);
  g_autofree RangeTask *tasks = NULL;
  int n_threads = (int) CLAMP (ctx->prepare_threads, 1, MAX (1, ctx->n_groups / 64));
  gint64 n4, per;

  if (ranges == NULL)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_OUT_OF_MEMORY,
                   "out of memory ranking %" G_GINT64_FORMAT " groups", ctx->n_groups);
      return FALSE;
    }
  /* every group's range on its own, so the threads may split the groups */
  tasks = g_new (RangeTask, n_threads);
  per = (ctx->n_groups + n_threads - 1) / n_threads;
  for (int t = 0; t < n_threads; t++)
    tasks[t] = (RangeTask) { ctx, x, MIN (ctx->n_groups, per * t), MIN (ctx->n_groups, per * (t + 1)), ranges };
  bl_format_run_parallel (range_task_run, tasks, sizeof *tasks, n_threads);
  /* rank by range (ties: lower group index first) and promote the top share to 4 bits */
  n4 = (gint64) floor (ctx->spec.range_percent / 100.0 * (double) ctx->n_groups + 0.5);
  n4 = MIN (n4, ctx->n_groups);
  select_top (ranges, ctx->n_groups, n4);
  ctx->selectors = g_try_malloc0 ((gsize) ctx->n_groups);
  if (ctx->selectors == NULL)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_OUT_OF_MEMORY,
                   "out of memory ranking %" G_GINT64_FORMAT " groups", ctx->n_groups);
      return FALSE;
    }
  for (gint64 k = 0; k < n4; k++)
    ctx->selectors[ranges[k].index] = 1;
  ctx->n_selected = n4;
  return TRUE;
}

static void
mixed_params (const BlFormatCtx *ctx,
              const float       *x,
              gint64             n,
              gint64             group_index,
              double             shrink,
              float             *scratch,
              BlGroupParams     *p)
{
  int bits = ctx->selectors[group_index] ? 4 : 2;
  float maxq = (float) ((1 << bits) - 1);
  float lo, hi;

  memset (p, 0, sizeof *p);
  p->selector = ctx->selectors[group_index];
  bl_simd_minmax0 (x, n, &lo, &hi);
  lo *= (float) shrink;
  hi *= (float) shrink;
  p->scale[0] = bl_format_store_scale (ctx->spec.scale_type, (hi - lo) / maxq, &p->scale_code[0]);
  p->zero = p->scale[0] > 0.0f ? (int) clampf (bl_scale_rne (clampf (-lo / p->scale[0], 0.0f, maxq)),
                                               0.0f, maxq)
                                : 0;
}

static void
mixed_encode (const BlFormatCtx   *ctx,
              const BlGroupParams *p,
              const float         *x,
              gint64               n,
              guint64              index0,
              guint16             *codes)
{
  int bits = p->selector ? 4 : 2;
  float lo = (float) -p->zero, hi = (float) ((1 << bits) - 1 - p->zero);

  for (gint64 i = 0; i < n; i++)
    {
      float q = round_int (clampf (nan_to_zero (x[i] / p->scale[0]), lo, hi), ctx->spec.rounding,
                           element_random (ctx, index0 + (guint64) i));

      codes[i] = (guint16) ((int) q + p->zero);
    }
}

static void
mixed_fake_fast (const BlFormatCtx   *ctx,
                 const BlGroupParams *p,
                 const float         *x,
                 gint64               n,
                 float               *y)
{
  float maxq = (float) ((1 << (p->selector ? 4 : 2)) - 1);

  bl_simd_int_rne (x, n, p->scale[0], 1.0f, 1.0f, (float) -p->zero, maxq - (float) p->zero, y);
}

/* ------------------------------------------------------------------------------------------ */
/* bf16 / fp16 casts */

static void
cast_layout (const BlFormatSpec *spec,
             BlFormatLayout     *out)
{
  out->elem_bits = 16;
  out->scale_kind = BL_PACKED_SCALE_NONE;
}

static void
cast_params (const BlFormatCtx *ctx,
             const float       *x,
             gint64             n,
             gint64             group_index,
             double             shrink,
             float             *scratch,
             BlGroupParams     *p)
{
  memset (p, 0, sizeof *p);
  p->scale[0] = 1.0f;
}

static void
cast_encode (const BlFormatCtx   *ctx,
             const BlGroupParams *p,
             const float         *x,
             gint64               n,
             guint64              index0,
             guint16             *codes)
{
  for (gint64 i = 0; i < n; i++)
    codes[i] = (guint16) bl_fp_encode (&ctx->elem, x[i], ctx->spec.rounding, ctx->spec.saturate,
                                       element_random (ctx, index0 + (guint64) i));
}

static void
cast_decode (const BlFormatCtx   *ctx,
             const BlGroupParams *p,
             const guint16       *codes,
             gint64               n,
             float               *y)
{
  for (gint64 i = 0; i < n; i++)
    y[i] = bl_fp_decode (&ctx->elem, codes[i]);
}

static void
fp16_fake_fast (const BlFormatCtx   *ctx,
                const BlGroupParams *p,
                const float         *x,
                gint64               n,
                float               *y)
{
  BlSimdFp f;

  bl_simd_fp_init (&f, &ctx->elem, ctx->spec.saturate);
  bl_simd_fp (&f, x, n, 1.0f, -INFINITY, INFINITY, y);
}

static void
bf16_fake_fast (const BlFormatCtx   *ctx,
                const BlGroupParams *p,
                const float         *x,
                gint64               n,
                float               *y)
{
  bl_simd_bf16 (x, n, ctx->spec.saturate, y);
}

/* ------------------------------------------------------------------------------------------ */
/* fused row descriptions (bl-format-simd.c) */

static void
row_common (const BlFormatCtx *ctx,
            BlSimdRow         *row,
            BlSimdRowKind      kind)
{
  memset (row, 0, sizeof *row);
  row->kind = kind;
  row->shrink = ctx->spec.clip == BL_CLIP_RATIO ? (float) ctx->spec.clip_ratio : 1.0f;
  row->scale_type = ctx->spec.scale_type;
  row->half = (float) (1 << (ctx->spec.bits - 1));
  row->maxq = (float) ((1 << ctx->spec.bits) - 1);
}

static gboolean
int_row_setup (const BlFormatCtx *ctx,
               BlSimdRow         *row)
{
  static const BlSimdRowKind kinds[] = {
    [BL_INT_ABSMAX] = BL_SIMD_ROW_INT_ABSMAX, [BL_INT_GPTQ] = BL_SIMD_ROW_INT_GPTQ,
    [BL_INT_Q4_0] = BL_SIMD_ROW_INT_Q4_0, [BL_INT_ASYM] = BL_SIMD_ROW_INT_ASYM,
  };

  row_common (ctx, row, kinds[ctx->spec.int_convention]);
  return TRUE;
}

static gboolean
fp_row_setup (const BlFormatCtx *ctx,
              BlSimdRow         *row)
{
  row_common (ctx, row, BL_SIMD_ROW_FP);
  bl_simd_fp_init (&row->fp, &ctx->elem, ctx->spec.saturate);
  return TRUE;
}

static gboolean
mxfp_row_setup (const BlFormatCtx *ctx,
                BlSimdRow         *row)
{
  row_common (ctx, row, BL_SIMD_ROW_MXFP);
  bl_simd_fp_init (&row->fp, &ctx->elem, ctx->spec.saturate);
  row->mx_rule = ctx->spec.scale_rule;
  row->mx_emax = ctx->elem.emax;
  row->mx_mbits = ctx->elem.mbits;
  row->mx_max_pos = ctx->elem.max_finite;
  return TRUE;
}

static gboolean
mxint_row_setup (const BlFormatCtx *ctx,
                 BlSimdRow         *row)
{
  int b = ctx->spec.bits;

  row_common (ctx, row, BL_SIMD_ROW_MXINT);
  row->mx_rule = ctx->spec.scale_rule;
  row->mx_emax = 0;
  row->mx_mbits = b - 2;
  row->mx_max_pos = ldexpf ((float) ((1 << (b - 1)) - 1), -(b - 2));
  row->mx_up = (float) (1 << (b - 2));
  row->mx_down = ldexpf (1.0f, -(b - 2));
  return TRUE;
}

static gboolean
nv_row_setup (const BlFormatCtx *ctx,
              BlSimdRow         *row)
{
  row_common (ctx, row, ctx->spec.family == BL_FORMAT_NVFP4 ? BL_SIMD_ROW_NVFP4 : BL_SIMD_ROW_NVINT4);
  if (ctx->spec.family == BL_FORMAT_NVFP4)
    bl_simd_fp_init (&row->fp, &ctx->elem, TRUE);
  row->tensor_scale = ctx->tensor_scale;
  return TRUE;
}

static gboolean
nf4_row_setup (const BlFormatCtx *ctx,
               BlSimdRow         *row)
{
  row_common (ctx, row, BL_SIMD_ROW_NF4);
  row->nf4_mids = nf4_thresholds ();
  row->nf4_table = bl_nf4_table ();
  return TRUE;
}

static gboolean
dual_row_setup (const BlFormatCtx *ctx,
                BlSimdRow         *row)
{
  row_common (ctx, row, BL_SIMD_ROW_DUAL);
  return TRUE;
}

static gboolean
complex_row_setup (const BlFormatCtx *ctx,
                   BlSimdRow         *row)
{
  row_common (ctx, row, BL_SIMD_ROW_COMPLEX);
  return TRUE;
}

static gboolean
mixed_row_setup (const BlFormatCtx *ctx,
                 BlSimdRow         *row)
{
  row_common (ctx, row, BL_SIMD_ROW_MIXED);
  return TRUE;
}

/* BitMoD's grids as the fused row needs them: a symmetric base, whose magnitudes the row
 * computes from their spacing, plus one extra value per grid (methods.md §12: ER adds ±10 or
 * ±3, EA ±16 or ±6). Any other shape of grid keeps the generic path. */
static gboolean
bitmod_row_setup (const BlFormatCtx *ctx,
                  BlSimdRow         *row)
{
  /* the spacing: 1 below l1, 2 below l2, then 4, up to cap */
  const float l1 = ctx->spec.bits == 4 ? 4.0f : 2.0f;
  const float l2 = ctx->spec.bits == 4 ? 8.0f : INFINITY;
  const float cap = ctx->spec.bits == 4 ? 12.0f : 4.0f;

  if (ctx->group_size > BL_SIMD_BITMOD_MAX_GROUP)
    return FALSE;
  row_common (ctx, row, BL_SIMD_ROW_BITMOD);
  row->bm_l1 = l1;
  row->bm_l2 = l2;
  row->bm_cap = cap;
  for (int sel = 0; sel < 4; sel++)
    {
      int nv, extra = -1, k = 0;
      const float *grid = bl_bitmod_grid (ctx->spec.bits, sel, &nv);
      float base[32];
      int n_base = 0;

      for (int i = 0; i < nv; i++)
        {
          gboolean mirrored = FALSE;

          for (int j = 0; j < nv; j++)
            mirrored = mirrored || grid[j] == -grid[i];
          if (!mirrored && extra >= 0)
            return FALSE;
          if (!mirrored)
            extra = i;
          else
            base[n_base++] = grid[i];
        }
      if (extra < 0)
        return FALSE;
      /* the base must be −cap … −1, 0, 1 … cap with the spacing above, in order */
      for (float m = -cap; m <= cap; m += (m < 0 ? -m > l2 : m >= l2) ? 4.0f : (m < 0 ? -m > l1 : m >= l1) ? 2.0f : 1.0f)
        if (k >= n_base || base[k++] != m)
          return FALSE;
      if (k != n_base)
        return FALSE;
      row->bm_grids[sel] = grid;
      row->bm_n_values = nv;
      row->bm_gmax[sel] = MAX (fabsf (grid[0]), fabsf (grid[nv - 1]));
      row->bm_extra[sel] = grid[extra];
      row->bm_lo[sel] = extra > 0 ? 0.5f * (grid[extra - 1] + grid[extra]) : -INFINITY;
      row->bm_hi[sel] = extra + 1 < nv ? 0.5f * (grid[extra] + grid[extra + 1]) : INFINITY;
    }
  return row->bm_gmax[0] == row->bm_gmax[1] && row->bm_gmax[2] == row->bm_gmax[3];
}

/* ------------------------------------------------------------------------------------------ */
/* the table */

static const char *const int_examples[] = { "int8:channel", "int8:token", "int4:g128:sym", "int4:g128:asym",
                                            "int4:g32:q4_0", "int4:g128:gptq", "int3:g128:asym", "int2:g64:asym", NULL };
static const char *const fp_examples[] = { "fp8-e4m3:tensor", "fp8-e5m2", "fp6-e3m2:g32", "fp6-e2m3:g32",
                                           "fp4-e2m1:g32", NULL };
static const char *const mxfp_examples[] = { "mxfp8-e4m3", "mxfp8-e5m2", "mxfp6-e3m2", "mxfp6-e2m3", "mxfp4", NULL };
static const char *const mxint_examples[] = { "mxint8", "mxint6", "mxint4", NULL };
static const char *const nvfp4_examples[] = { "nvfp4", NULL };
static const char *const nvint4_examples[] = { "nvint4", NULL };
static const char *const nf4_examples[] = { "nf4:g64", NULL };
static const char *const binary_examples[] = { "binary:channel", NULL };
static const char *const ternary_examples[] = { "ternary:absmean", "ternary:median", NULL };
static const char *const dual_examples[] = { "dual-binary", NULL };
static const char *const complex_examples[] = { "complex-2bit", NULL };
static const char *const bitmod_examples[] = { "bitmod4:g128", "bitmod3:g128", NULL };
static const char *const mixed_examples[] = { "int2+int4:g128:range10%", NULL };
static const char *const bf16_examples[] = { "bf16", NULL };
static const char *const fp16_examples[] = { "fp16", NULL };

static const BlFormatTraits traits_table[BL_FORMAT_N_FAMILIES] = {
  [BL_FORMAT_INT] = {
    .family = BL_FORMAT_INT, .name = "int",
    .description = "integer grid with a scale per group/channel/tensor (absmax, GPTQ, Q4_0 or asymmetric)",
    .examples = int_examples, .element_bits = 4, .block_size = 0,
    .layout = int_layout, .params = int_params, .encode = int_encode, .decode = int_decode,
    .fake_fast = int_fake_fast, .row_setup = int_row_setup,
  },
  [BL_FORMAT_FP] = {
    .family = BL_FORMAT_FP, .name = "fp",
    .description = "FP ExMy elements (OCP FP8 E4M3/E5M2, FP6, FP4) with an absmax scale",
    .examples = fp_examples, .element_bits = 8, .block_size = 0,
    .layout = fp_layout, .params = fp_params, .encode = fp_encode, .decode = fp_decode,
    .fake_fast = fp_fake_fast, .row_setup = fp_row_setup,
  },
  [BL_FORMAT_MXFP] = {
    .family = BL_FORMAT_MXFP, .name = "mxfp",
    .description = "OCP Microscaling float: 32-element blocks sharing an E8M0 power-of-two scale",
    .examples = mxfp_examples, .element_bits = 4, .block_size = 32,
    .layout = mx_layout, .params = mx_params, .encode = mxfp_encode, .decode = fp_decode,
    .fake_fast = fp_fake_fast, .row_setup = mxfp_row_setup,
  },
  [BL_FORMAT_MXINT] = {
    .family = BL_FORMAT_MXINT, .name = "mxint",
    .description = "OCP Microscaling integer: 32-element two's complement blocks with an E8M0 scale",
    .examples = mxint_examples, .element_bits = 8, .block_size = 32,
    .layout = mx_layout, .params = mx_params, .encode = mxint_encode, .decode = mxint_decode,
    .fake_fast = mxint_fake_fast, .row_setup = mxint_row_setup,
  },
  [BL_FORMAT_NVFP4] = {
    .family = BL_FORMAT_NVFP4, .name = "nvfp4",
    .description = "NVIDIA NVFP4: E2M1 in 16-element blocks, UE4M3 block scale and an fp32 tensor scale",
    .examples = nvfp4_examples, .element_bits = 4, .block_size = 16,
    .layout = nv_layout, .prepare = nv_prepare, .params = nv_params, .encode = nvfp4_encode,
    .decode = fp_decode, .fake_fast = nvfp4_fake_fast, .row_setup = nv_row_setup,
  },
  [BL_FORMAT_NVINT4] = {
    .family = BL_FORMAT_NVINT4, .name = "nvint4",
    .description = "the NVFP4 two-level scale recipe with INT4 elements in [-7, 7] (INT v.s. FP)",
    .examples = nvint4_examples, .element_bits = 4, .block_size = 16,
    .layout = nv_layout, .prepare = nv_prepare, .params = nv_params, .encode = nvint4_encode,
    .decode = nvint4_decode, .fake_fast = nvint4_fake_fast, .row_setup = nv_row_setup,
  },
  [BL_FORMAT_NF4] = {
    .family = BL_FORMAT_NF4, .name = "nf4",
    .description = "QLoRA NormalFloat4: 16 normal quantiles times a per-block absmax",
    .examples = nf4_examples, .element_bits = 4, .block_size = 64,
    .layout = nf4_layout, .params = nf4_params, .encode = nf4_encode, .decode = nf4_decode,
    .fake_fast = nf4_fake_fast, .row_setup = nf4_row_setup,
  },
  [BL_FORMAT_BINARY] = {
    .family = BL_FORMAT_BINARY, .name = "binary",
    .description = "1-bit sign(w) times mean|w| of the channel",
    .examples = binary_examples, .element_bits = 1, .block_size = 0,
    .layout = binary_layout, .params = binary_params, .encode = binary_encode, .decode = binary_decode,
    .fake_fast = binary_fake_fast,
  },
  [BL_FORMAT_TERNARY] = {
    .family = BL_FORMAT_TERNARY, .name = "ternary",
    .description = "BitNet b1.58 {-1, 0, +1} times mean|W| (absmean) or median|W|",
    .examples = ternary_examples, .element_bits = 2, .block_size = 0,
    .layout = ternary_layout, .params = ternary_params, .params_fast = ternary_params_fast,
    .encode = ternary_encode, .decode = ternary_decode,
    .fake_fast = ternary_fake_fast, .needs_scratch = TRUE,
  },
  [BL_FORMAT_DUAL_BINARY] = {
    .family = BL_FORMAT_DUAL_BINARY, .name = "dual-binary",
    .description = "DB-LLM dual binarization: two scaled binary planes per weight",
    .examples = dual_examples, .element_bits = 2, .block_size = 0,
    .layout = dual_layout, .params = dual_params, .encode = dual_encode, .decode = dual_decode,
    .fake_fast = dual_fake_fast, .row_setup = dual_row_setup,
  },
  [BL_FORMAT_COMPLEX_2BIT] = {
    .family = BL_FORMAT_COMPLEX_2BIT, .name = "complex-2bit",
    .description = "iFairy PhaseQuant: weight pairs as complex numbers in {±1, ±i} with axis scales",
    .examples = complex_examples, .element_bits = 1, .block_size = 0,
    .layout = complex_layout, .params = complex_params, .encode = complex_encode, .decode = complex_decode,
    .fake_fast = complex_fake_fast, .row_setup = complex_row_setup,
  },
  [BL_FORMAT_BITMOD] = {
    .family = BL_FORMAT_BITMOD, .name = "bitmod",
    .description = "BitMoD: per group the best of four extended FP grids (2-bit selector)",
    .examples = bitmod_examples, .element_bits = 4, .block_size = 128,
    .layout = bitmod_layout, .params = bitmod_params, .encode = bitmod_encode, .decode = bitmod_decode,
    .fake_fast = bitmod_fake_fast, .row_setup = bitmod_row_setup,
  },
  [BL_FORMAT_INT2_INT4] = {
    .family = BL_FORMAT_INT2_INT4, .name = "int2+int4",
    .description = "asymmetric 2-bit groups with the widest-range share of groups kept at 4 bits",
    .examples = mixed_examples, .element_bits = 2, .block_size = 128,
    .layout = mixed_layout, .prepare = mixed_prepare, .params = mixed_params, .encode = mixed_encode,
    .decode = int_decode, .fake_fast = mixed_fake_fast, .row_setup = mixed_row_setup,
  },
  [BL_FORMAT_BF16] = {
    .family = BL_FORMAT_BF16, .name = "bf16",
    .description = "bfloat16 cast (round to nearest even)",
    .examples = bf16_examples, .element_bits = 16, .block_size = 0,
    .layout = cast_layout, .params = cast_params, .encode = cast_encode, .decode = cast_decode,
    .fake_fast = bf16_fake_fast,
  },
  [BL_FORMAT_FP16] = {
    .family = BL_FORMAT_FP16, .name = "fp16",
    .description = "IEEE half cast (round to nearest even)",
    .examples = fp16_examples, .element_bits = 16, .block_size = 0,
    .layout = cast_layout, .params = cast_params, .encode = cast_encode, .decode = cast_decode,
    .fake_fast = fp16_fake_fast,
  },
};

const BlFormatTraits *
bl_format_traits_lookup (BlFormatFamily family)
{
  g_return_val_if_fail (family < BL_FORMAT_N_FAMILIES, NULL);
  return &traits_table[family];
}
