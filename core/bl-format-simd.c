/* bl-format-simd.c: vectorised fake-quant loops
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * Eight lanes of GCC/Clang vector extensions, built twice through target_clones (AVX2 and
 * the baseline ISA) and picked at load time. Each kernel performs, lane by lane, exactly the
 * IEEE operations of the scalar kernels in bl-format-traits.c (division, multiplication,
 * compare-select, the 1.5·2^23 rounding trick, truncation), never a fused multiply-add, so
 * the results agree bit for bit; tests/test-format.c checks that on every family. The scalar
 * tail of each loop is the same arithmetic.
 */
#include "bl-format-simd.h"
#include "bl-format-scale.h"

#include <math.h>
#include <string.h>

/* every product and sum rounds on its own, as in the reference: never fuse them into an
 * FMA, whatever the target (the fast rows and the oracle must agree bit for bit) */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize ("fp-contract=off")
#endif

/* the helpers take and return 32-byte vectors but are always inlined, so the AVX calling
 * convention GCC warns about never applies */
#if defined(__clang__)
#pragma clang diagnostic ignored "-Wpsabi"
#elif defined(__GNUC__)
#pragma GCC diagnostic ignored "-Wpsabi"
#endif

typedef float v8f __attribute__ ((vector_size (32)));
typedef gint32 v8i __attribute__ ((vector_size (32)));
typedef guint32 v8u __attribute__ ((vector_size (32)));

#if defined(__clang__)
#define SHUF8(v, a, b, c, d, e, f, g, h) __builtin_shufflevector (v, v, a, b, c, d, e, f, g, h)
#else
#define SHUF8(v, a, b, c, d, e, f, g, h) __builtin_shuffle (v, (v8u) { a, b, c, d, e, f, g, h })
#endif

#if defined(__clang__)
#define SHUF2(a, b, ...) __builtin_shufflevector (a, b, __VA_ARGS__)
#else
#define SHUF2(a, b, ...) __builtin_shuffle (a, b, (v8u) { __VA_ARGS__ })
#endif


/* Clang before 16 names a target_clones dispatcher "f.ifunc", which callers in other files do
 * not link against: there (and off x86-64) the baseline build is the only one */
#if defined(__x86_64__) && (!defined(__clang__) || __clang_major__ >= 16)
#define BL_SIMD_CLONES __attribute__ ((target_clones ("arch=x86-64-v4", "avx2", "default")))
#else
#define BL_SIMD_CLONES
#endif
#define BL_SIMD_INLINE static inline __attribute__ ((always_inline))

BL_SIMD_INLINE v8f
load8 (const float *p)
{
  v8f v;

  memcpy (&v, p, sizeof v);
  return v;
}

/* vector-scalar arithmetic broadcasts in one instruction (a braced list of eight copies would
 * be assembled lane by lane) */
BL_SIMD_INLINE v8u
splatu (guint32 u)
{
  return (v8u) { 0 } + u;
}

/* a broadcast of the bit pattern: pure data movement, so −0.0 stays −0.0 (0.0f + f would
 * make it +0.0), and it compiles to one broadcast instruction (a lane-0 shuffle of a float
 * became eight lane inserts wherever f came from memory) */
BL_SIMD_INLINE v8f
splat (float f)
{
  guint32 u;

  memcpy (&u, &f, sizeof u);
  return (v8f) splatu (u);
}

/* The helpers that take vectors are macros: GCC notes an ABI change for any function with a
 * 32-byte vector parameter compiled for the baseline target, even when it is always inlined.
 * Each argument is evaluated once. */

#define store8(p, v) G_STMT_START { v8f store8_v_ = (v); memcpy ((p), &store8_v_, sizeof store8_v_); } G_STMT_END

/* mask ? a : b, with a mask of all-ones or all-zeros lanes */
#define select8(mask, a, b) \
  ((v8f) (((v8u) (a) & (v8u) (mask)) | ((v8u) (b) & ~(v8u) (mask))))

/* lane maximum of |x| bit patterns: their top bit is clear, so the signed comparison (one
 * vpmaxsd, where unsigned would need a sign flip on AVX2) orders them the same */
#define umax8(a, b) \
  ({ v8i umax8_a_ = (v8i) (a), umax8_b_ = (v8i) (b); (v8u) select8 (umax8_a_ > umax8_b_, (v8f) umax8_a_, (v8f) umax8_b_); })

/* v < lo ? lo : (v > hi ? hi : v): NaN passes through, as in the scalar clampf */
#define clamp8(v, lo, hi) \
  ({ v8f clamp8_v_ = (v), clamp8_lo_ = (lo), clamp8_hi_ = (hi); \
     select8 (clamp8_v_ < clamp8_lo_, clamp8_lo_, select8 (clamp8_v_ > clamp8_hi_, clamp8_hi_, clamp8_v_)); })

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

static inline guint32
fbits (float x)
{
  guint32 u;

  memcpy (&u, &x, sizeof u);
  return u;
}

static inline float
ffrom (guint32 u)
{
  float x;

  memcpy (&x, &u, sizeof x);
  return x;
}

/* ------------------------------------------------------------------------------------------ */

BL_SIMD_INLINE float
amax_loop (const float *x,
           gint64       n)
{
  v8u m8 = splatu (0);
  guint32 m = 0;
  gint64 i = 0;

  for (; i + 8 <= n; i += 8)
    {
      v8i b = (v8i) ((v8u) load8 (x + i) & splatu (0x7fffffffu));

      /* signed comparison: the top bit is clear */
      m8 = (v8u) select8 (b > (v8i) m8, (v8f) b, (v8f) m8);
    }
  m8 = umax8 (SHUF8 (m8, 4, 5, 6, 7, 0, 1, 2, 3), m8);
  m8 = umax8 (SHUF8 (m8, 2, 3, 0, 1, 6, 7, 4, 5), m8);
  m8 = umax8 (SHUF8 (m8, 1, 0, 3, 2, 5, 4, 7, 6), m8);
  m = m8[0];
  for (; i < n; i++)
    {
      guint32 b = fbits (x[i]) & 0x7fffffffu;

      m = b > m ? b : m;
    }
  return ffrom (m);
}

/* min and max, starting from @start (so NaNs are skipped unless @start is one) */
BL_SIMD_INLINE void
minmax_loop (const float *x,
             gint64       n,
             float        start,
             float       *out_lo,
             float       *out_hi)
{
  v8f lo8 = splat (start), hi8 = splat (start);
  float lo = start, hi = start;
  gint64 i = 0;

  for (; i + 8 <= n; i += 8)
    {
      v8f v = load8 (x + i);

      lo8 = select8 (v < lo8, v, lo8);
      hi8 = select8 (v > hi8, v, hi8);
    }
  for (int k = 0; k < 8; k++)
    {
      lo = lo8[k] < lo ? lo8[k] : lo;
      hi = hi8[k] > hi ? hi8[k] : hi;
    }
  for (; i < n; i++)
    {
      lo = x[i] < lo ? x[i] : lo;
      hi = x[i] > hi ? x[i] : hi;
    }
  *out_lo = lo;
  *out_hi = hi;
}

/* Σ|x| in double exactly as bl-format-traits.c's sum_abs: eight accumulators, element i into
 * accumulator i mod 8 (the tail from accumulator 0), combined pairwise; here the eight are
 * the lanes of two vectors, so no accumulator waits on memory */
BL_SIMD_CLONES double
bl_simd_sum_abs (const float *x,
                 gint64       n)
{
  typedef double v4d __attribute__ ((vector_size (32)));
  v4d lo = { 0 }, hi = { 0 };
  double acc[8];
  gint64 i = 0;

  for (; i + 8 <= n; i += 8)
    {
      v8f a = (v8f) ((v8u) load8 (x + i) & splatu (0x7fffffffu));

      lo += (v4d) { a[0], a[1], a[2], a[3] };
      hi += (v4d) { a[4], a[5], a[6], a[7] };
    }
  for (int k = 0; k < 4; k++)
    {
      acc[k] = lo[k];
      acc[k + 4] = hi[k];
    }
  for (int k = 0; i < n; i++, k++)
    acc[k] += fabsf (x[i]);
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

/* reads one value of every 64-byte line of @x, so that the lines are in the cache */
void
bl_simd_touch (const float *x,
               gint64       n)
{
  guint32 acc = 0;

  for (gint64 i = 0; i < n; i += 16)
    acc |= fbits (x[i]);
  /* an empty asm that takes acc keeps the loads */
  __asm__ volatile ("" : : "r" (acc));
}

/* counts[k] = #{i : bits(|x[i]|) < pivots[k]} for eight pivots, counts[8] = the NaNs; the bit
 * patterns of |x| order like the values, NaNs above Inf */
BL_SIMD_INLINE void
count_below_loop (const float   *x,
                  gint64         n,
                  const guint32 *pivots,
                  gint64        *counts)
{
  v8i p[8], c[9];
  gint64 i = 0;

  for (int k = 0; k < 8; k++)
    p[k] = (v8i) splatu (pivots[k]);
  for (int k = 0; k < 9; k++)
    c[k] = (v8i) splatu (0);
  for (int k = 0; k < 9; k++)
    counts[k] = 0;
  while (i + 8 <= n)
    {
      /* lane counters are flushed before they can overflow */
      gint64 end = MIN (n - (n - i) % 8, i + ((gint64) 1 << 30));

      for (; i < end; i += 8)
        {
          /* the top bit is clear, so the signed comparison orders them */
          v8i b = (v8i) ((v8u) load8 (x + i) & splatu (0x7fffffffu));

          c[0] -= b < p[0];
          c[1] -= b < p[1];
          c[2] -= b < p[2];
          c[3] -= b < p[3];
          c[4] -= b < p[4];
          c[5] -= b < p[5];
          c[6] -= b < p[6];
          c[7] -= b < p[7];
          c[8] -= b > (v8i) splatu (0x7f800000u);
        }
      for (int k = 0; k < 9; k++)
        {
          for (int l = 0; l < 8; l++)
            counts[k] += c[k][l];
          c[k] = (v8i) splatu (0);
        }
    }
  for (; i < n; i++)
    {
      guint32 b = fbits (x[i]) & 0x7fffffffu;

      for (int k = 0; k < 8; k++)
        counts[k] += b < pivots[k];
      counts[8] += b > 0x7f800000u;
    }
}

BL_SIMD_CLONES void
bl_simd_count_below (const float   *x,
                     gint64         n,
                     const guint32 *pivots,
                     gint64        *counts)
{
  count_below_loop (x, n, pivots, counts);
}

/* appends to @out the bit patterns of |x[i]| in [lo, hi), in order; returns how many */
BL_SIMD_CLONES gint64
bl_simd_collect_range (const float *x,
                       gint64       n,
                       guint32      lo,
                       guint32      hi,
                       guint32     *out)
{
  const v8u lo8 = splatu (lo), width8 = splatu (hi - lo);
  gint64 m = 0, i = 0;

  for (; i + 8 <= n; i += 8)
    {
      v8u d = (((v8u) load8 (x + i) & splatu (0x7fffffffu)) - lo8);
      /* unsigned d < width, with the sign flipped for the signed comparison */
      v8i in = (v8i) (d ^ splatu (0x80000000u)) < (v8i) (width8 ^ splatu (0x80000000u));
      v8u any = (v8u) in;

      any |= SHUF8 (any, 4, 5, 6, 7, 0, 1, 2, 3);
      any |= SHUF8 (any, 2, 3, 0, 1, 6, 7, 4, 5);
      if ((any[0] | any[1]) != 0)
        for (int l = 0; l < 8; l++)
          if (in[l])
            out[m++] = d[l] + lo;
    }
  for (; i < n; i++)
    {
      guint32 b = fbits (x[i]) & 0x7fffffffu;

      if (b - lo < hi - lo)
        out[m++] = b;
    }
  return m;
}

/* y = RNE(clamp(nan→0(x/s · pre), lo, hi)) · post · s */
BL_SIMD_INLINE void
int_rne_loop (const float *x,
                 gint64       n,
                 float        s,
                 float        pre,
                 float        post,
                 float        lo,
                 float        hi,
                 float       *y)
{
  const v8f magic = splat (12582912.0f), zero = splat (0.0f);
  const v8f s8 = splat (s), pre8 = splat (pre), post8 = splat (post), lo8 = splat (lo), hi8 = splat (hi);
  gint64 i = 0;

  if (pre == 1.0f && post == 1.0f)
    {
      for (; i + 8 <= n; i += 8)
        {
          v8f q = load8 (x + i) / s8;
          v8f v = clamp8 (select8 (q == q, q, zero), lo8, hi8);

          store8 (y + i, ((v + magic) - magic) * s8);
        }
      for (; i < n; i++)
        {
          float v = clampf (nan_to_zero (x[i] / s), lo, hi);

          y[i] = ((v + 12582912.0f) - 12582912.0f) * s;
        }
      return;
    }
  for (; i + 8 <= n; i += 8)
    {
      v8f q = load8 (x + i) / s8 * pre8;
      v8f v = clamp8 (select8 (q == q, q, zero), lo8, hi8);

      store8 (y + i, ((v + magic) - magic) * post8 * s8);
    }
  for (; i < n; i++)
    {
      float v = clampf (nan_to_zero (x[i] / s * pre), lo, hi);

      y[i] = ((v + 12582912.0f) - 12582912.0f) * post * s;
    }
}

/* ggml Q4_0: y = (trunc(clamp(nan→0(x·id + bias), 0, maxq)) − z) · s */
BL_SIMD_INLINE void
q4_0_loop (const float *x,
              gint64       n,
              float        id,
              float        bias,
              float        maxq,
              float        z,
              float        s,
              float       *y)
{
  const v8f id8 = splat (id), bias8 = splat (bias), zero = splat (0.0f), maxq8 = splat (maxq);
  const v8f z8 = splat (z), s8 = splat (s);
  gint64 i = 0;

  for (; i + 8 <= n; i += 8)
    {
      v8f q = load8 (x + i) * id8 + bias8;
      v8f v = clamp8 (select8 (q == q, q, zero), zero, maxq8);
      v8f t = __builtin_convertvector (__builtin_convertvector (v, v8i), v8f);

      store8 (y + i, (t - z8) * s8);
    }
  for (; i < n; i++)
    y[i] = (truncf (clampf (nan_to_zero (x[i] * id + bias), 0.0f, maxq)) - z) * s;
}

/* the per-format constants of fp_round8, broadcast once per loop */
typedef struct
{
  v8f big;
  v8f max_finite;
  v8f overflow;
  v8f nan_in;                 /* what a NaN input becomes */
  v8i emin;
  v8i magic_bias;             /* 23 + 127 − mbits */
} Fp8;

BL_SIMD_INLINE void
fp8_init (Fp8            *c,
          const BlSimdFp *f)
{
  c->big = splat (f->big);
  c->max_finite = splat (f->max_finite);
  c->overflow = splat (f->overflow);
  c->nan_in = splat (f->nan_to_max ? f->max_finite : NAN);
  c->emin = (v8i) splatu ((guint32) f->emin);
  c->magic_bias = (v8i) splatu ((guint32) (23 + 127 - f->mbits));
}

/* decode(encode_rne(v)) without codes: round |v| at the quantum of its binade by adding and
 * subtracting 1.5·2^(23+k), which the FPU rounds to a multiple of 2^k with ties to even;
 * then apply the overflow and NaN rules of bl_fp_encode() */
BL_SIMD_INLINE v8f
fp_round8 (const Fp8 *c,
           const v8f *v,
           gboolean   may_nan,
           gboolean   bounded)
{
  v8u vb = (v8u) *v;
  v8f a = (v8f) (vb & splatu (0x7fffffffu));
  v8i is_nan = a != a;
  v8i e;
  v8f magic, r, out;

  /* @bounded: the caller clamped v to ±max_finite, so nothing can overflow */
  if (!bounded)
    a = select8 (a < c->big, a, c->big);
  e = (v8i) ((v8u) a >> 23) - 127;
  e = (v8i) select8 (e < c->emin, (v8f) c->emin, (v8f) e);
  magic = (v8f) (((v8u) (e + c->magic_bias) << 23) | splatu (0x400000u));
  r = (a + magic) - magic;
  if (!bounded)
    r = select8 (r > c->max_finite, c->overflow, r);
  out = (v8f) ((v8u) r | (vb & splatu (0x80000000u)));
  /* only formats with NaN codes (or non-saturating E4M3) produce a NaN from an overflow */
  if (may_nan)
    out = select8 (r != r, splat (NAN), out);
  return select8 (is_nan, c->nan_in, out);
}

BL_SIMD_INLINE float
fp_round1 (const BlSimdFp *f,
           float           v)
{
  guint32 vb = fbits (v);
  float a = ffrom (vb & 0x7fffffffu);
  int e;
  float magic, r;

  if (a != a)
    return f->nan_to_max ? f->max_finite : NAN;
  a = a < f->big ? a : f->big;
  e = (int) (fbits (a) >> 23) - 127;
  e = e < f->emin ? f->emin : e;
  magic = ffrom (((guint32) (e - f->mbits + 23 + 127) << 23) | 0x400000u);
  r = (a + magic) - magic;
  r = r > f->max_finite ? f->overflow : r;
  if (r != r)
    return NAN;
  return ffrom (fbits (r) | (vb & 0x80000000u));
}

void
bl_simd_fp_init (BlSimdFp         *f,
                 const BlFpFormat *fmt,
                 gboolean          saturate)
{
  f->emin = fmt->emin;
  f->mbits = fmt->mbits;
  f->max_finite = fmt->max_finite;
  f->big = ldexpf (1.0f, fmt->emax + 2);
  f->nan_to_max = fmt->specials == BL_FP_SPECIALS_NONE;
  if (saturate || fmt->specials == BL_FP_SPECIALS_NONE)
    f->overflow = fmt->max_finite;
  else if (fmt->specials == BL_FP_SPECIALS_IEEE)
    f->overflow = INFINITY;
  else
    f->overflow = NAN;
}

/* y = round_fp(clamp(x/s, lo, hi)) · s; with @inv_exact the division is a multiplication by
 * the exact reciprocal of a power-of-two s (MX), which rounds identically. @clamp, @may_nan
 * and @inv_exact are constants at every call site, so each combination compiles to its own
 * loop. */
BL_SIMD_INLINE void
fp_loop_impl (const BlSimdFp *f,
              const Fp8      *c,
              const float    *x,
              gint64          n,
              float           s,
              float           lo,
              float           hi,
              float          *y,
              gboolean        clamp,
              gboolean        may_nan,
              gboolean        inv_exact,
              gboolean        bounded)
{
  const v8f s8 = splat (s), inv8 = inv_exact ? splat (1.0f / s) : s8, lo8 = splat (lo), hi8 = splat (hi);
  gint64 i = 0;

  for (; i + 8 <= n; i += 8)
    {
      v8f v = inv_exact ? load8 (x + i) * inv8 : load8 (x + i) / s8;

      if (clamp)
        v = clamp8 (v, lo8, hi8);
      store8 (y + i, fp_round8 (c, &v, may_nan, bounded) * s8);
    }
  for (; i < n; i++)
    y[i] = fp_round1 (f, clampf (inv_exact ? x[i] * (1.0f / s) : x[i] / s, lo, hi)) * s;
}

BL_SIMD_INLINE void
fp_loop (const BlSimdFp *f,
         const Fp8      *c,
         const float    *x,
         gint64          n,
         float           s,
         float           lo,
         float           hi,
         float          *y)
{
  gboolean clamp = lo != -INFINITY || hi != INFINITY;

  if (f->nan_to_max)
    {
      if (clamp)
        {
          /* NVFP4's clamp to ±6 = max_finite: no overflow to handle */
          if (-lo == f->max_finite && hi == f->max_finite)
            fp_loop_impl (f, c, x, n, s, lo, hi, y, TRUE, FALSE, FALSE, TRUE);
          else
            fp_loop_impl (f, c, x, n, s, lo, hi, y, TRUE, FALSE, FALSE, FALSE);
        }
      else
        fp_loop_impl (f, c, x, n, s, lo, hi, y, FALSE, FALSE, FALSE, FALSE);
    }
  else
    fp_loop_impl (f, c, x, n, s, lo, hi, y, clamp, TRUE, FALSE, FALSE);
}

/* an MX block: X is a power of two (or NaN), so x/X = x·(1/X) exactly */
BL_SIMD_INLINE void
fp_loop_pow2 (const BlSimdFp *f,
              const Fp8      *c,
              const float    *x,
              gint64          n,
              float           s,
              float          *y)
{
  if (f->nan_to_max)
    fp_loop_impl (f, c, x, n, s, -INFINITY, INFINITY, y, FALSE, FALSE, TRUE, FALSE);
  else
    fp_loop_impl (f, c, x, n, s, -INFINITY, INFINITY, y, FALSE, TRUE, TRUE, FALSE);
}

/* NF4: the last of the 15 ascending thresholds that x/s exceeds names the value */
BL_SIMD_INLINE void
nf4_loop (const float *x,
             gint64       n,
             float        s,
             const float *mids,
             const float *table,
             float       *y)
{
  gint64 i = 0;

#if defined(__clang__)
  v8f mids8[15], table8[16];

  for (int k = 0; k < 15; k++)
    mids8[k] = splat (mids[k]);
  for (int k = 0; k < 16; k++)
    table8[k] = splat (table[k]);
  for (; i + 8 <= n; i += 8)
    {
      v8f v = load8 (x + i) / splat (s);
      v8f r = table8[0];

      for (int k = 0; k < 15; k++)
        r = select8 (v > mids8[k], table8[k + 1], r);
      store8 (y + i, r * splat (s));
    }
#else
  /* the same count of thresholds below v, found by a 4-step binary search whose thresholds
   * and results are looked up with lane permutes */
  const v8f m7 = splat (mids[7]), s8 = splat (s);
  const v8f m_a = { mids[3], mids[11], 0, 0, 0, 0, 0, 0 };
  const v8f m_b = { mids[1], mids[5], mids[9], mids[13], 0, 0, 0, 0 };
  const v8f m_c = { mids[0], mids[2], mids[4], mids[6], mids[8], mids[10], mids[12], mids[14] };
  const v8f t_lo = { table[0], table[1], table[2], table[3], table[4], table[5], table[6], table[7] };
  const v8f t_hi = { table[8], table[9], table[10], table[11], table[12], table[13], table[14], table[15] };

  for (; i + 8 <= n; i += 8)
    {
      v8f v = load8 (x + i) / s8;
      v8i c = (v > m7) & 8;

      c += (v > __builtin_shuffle (m_a, c >> 3)) & 4;
      c += (v > __builtin_shuffle (m_b, c >> 2)) & 2;
      c += (v > __builtin_shuffle (m_c, c >> 1)) & 1;
      store8 (y + i, select8 ((c & 8) != 0, __builtin_shuffle (t_hi, c & 7), __builtin_shuffle (t_lo, c & 7)) * s8);
    }
#endif
  for (; i < n; i++)
    {
      float v = x[i] / s;
      float r = table[0];

      for (int k = 0; k < 15; k++)
        r = v > mids[k] ? table[k + 1] : r;
      y[i] = r * s;
    }
}

/* bfloat16 RNE on the bit pattern; NaN → NaN, overflow → ±Inf or ±max when saturating */
BL_SIMD_INLINE void
bf16_loop (const float *x,
              gint64       n,
              gboolean     saturate,
              float       *y)
{
  gint64 i = 0;

  for (; i + 8 <= n; i += 8)
    {
      v8u b = (v8u) load8 (x + i);
      v8u r = (b + splatu (0x7fffu) + ((b >> 16) & splatu (1u))) & splatu (0xffff0000u);
      v8f out;

      if (saturate)
        r = (v8u) select8 ((v8i) ((r & splatu (0x7fffffffu)) == splatu (0x7f800000u)),
                           (v8f) ((r & splatu (0x80000000u)) | splatu (0x7f7f0000u)), (v8f) r);
      out = select8 ((v8i) ((b & splatu (0x7fffffffu)) > splatu (0x7f800000u)), splat (NAN), (v8f) r);
      store8 (y + i, out);
    }
  for (; i < n; i++)
    {
      guint32 b = fbits (x[i]);
      guint32 r = (b + 0x7fffu + ((b >> 16) & 1u)) & 0xffff0000u;

      if (saturate && (r & 0x7fffffffu) == 0x7f800000u)
        r = (r & 0x80000000u) | 0x7f7f0000u;
      y[i] = (b & 0x7fffffffu) > 0x7f800000u ? NAN : ffrom (r);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* exported spans */

BL_SIMD_CLONES float
bl_simd_amax (const float *x,
              gint64       n)
{
  return amax_loop (x, n);
}

/* min and max over the group with 0 included (GPTQ forces the range to contain 0) */
BL_SIMD_CLONES void
bl_simd_minmax0 (const float *x,
                 gint64       n,
                 float       *out_lo,
                 float       *out_hi)
{
  minmax_loop (x, n, 0.0f, out_lo, out_hi);
}

/* min and max of @n ≥ 1 values */
BL_SIMD_CLONES void
bl_simd_minmax (const float *x,
                gint64       n,
                float       *out_lo,
                float       *out_hi)
{
  minmax_loop (x, n, x[0], out_lo, out_hi);
}

BL_SIMD_CLONES void
bl_simd_int_rne (const float *x,
                 gint64       n,
                 float        s,
                 float        pre,
                 float        post,
                 float        lo,
                 float        hi,
                 float       *y)
{
  int_rne_loop (x, n, s, pre, post, lo, hi, y);
}

/* y = RNE(clamp(nan→0(x/d), lo, hi)) · m (ternary: d = γ + ε, m = γ) */
BL_SIMD_INLINE void
int_rne2_loop (const float *x,
               gint64       n,
               float        d,
               float        m,
               float        lo,
               float        hi,
               float       *y)
{
  const v8f magic = splat (12582912.0f), zero = splat (0.0f);
  const v8f d8 = splat (d), m8 = splat (m), lo8 = splat (lo), hi8 = splat (hi);
  gint64 i = 0;

  for (; i + 8 <= n; i += 8)
    {
      v8f q = load8 (x + i) / d8;
      v8f v = clamp8 (select8 (q == q, q, zero), lo8, hi8);

      store8 (y + i, ((v + magic) - magic) * m8);
    }
  for (; i < n; i++)
    {
      float v = clampf (nan_to_zero (x[i] / d), lo, hi);

      y[i] = ((v + 12582912.0f) - 12582912.0f) * m;
    }
}

BL_SIMD_CLONES void
bl_simd_int_rne2 (const float *x,
                  gint64       n,
                  float        d,
                  float        m,
                  float        lo,
                  float        hi,
                  float       *y)
{
  int_rne2_loop (x, n, d, m, lo, hi, y);
}

/* dual-binary: the nearest of the four sums c₀·a1 + c₁·a2, ties to the smaller magnitude
 * and then the lower code, exactly as the reference encoder decides */
BL_SIMD_INLINE void
dual_loop (const float *x,
           gint64       n,
           float        a1,
           float        a2,
           float       *y)
{
  float vals[4];
  v8f v8[4], m8[4];
  gint64 i = 0;

  for (int c = 0; c < 4; c++)
    {
      vals[c] = (float) (c & 1) * a1 + (float) (c >> 1) * a2;
      v8[c] = splat (vals[c]);
      m8[c] = splat (fabsf (vals[c]));
    }
  for (; i + 8 <= n; i += 8)
    {
      v8f xv = load8 (x + i);
      v8f best = v8[0], best_m = m8[0];
      v8f best_d = (v8f) ((v8u) (xv - v8[0]) & splatu (0x7fffffffu));

      for (int c = 1; c < 4; c++)
        {
          v8f d = (v8f) ((v8u) (xv - v8[c]) & splatu (0x7fffffffu));
          v8i take = (d < best_d) | ((d == best_d) & (m8[c] < best_m));

          best = select8 (take, v8[c], best);
          best_m = select8 (take, m8[c], best_m);
          best_d = select8 (take, d, best_d);
        }
      store8 (y + i, best);
    }
  for (; i < n; i++)
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
      y[i] = vals[best];
    }
}

BL_SIMD_CLONES void
bl_simd_dual (const float *x,
              gint64       n,
              float        a1,
              float        a2,
              float       *y)
{
  dual_loop (x, n, a1, a2, y);
}

/* binary: y = x < 0 ? −s : s */
BL_SIMD_INLINE void
sign_loop (const float *x,
           gint64       n,
           float        s,
           float       *y)
{
  const v8f pos = splat (s), neg = splat (-s), zero = splat (0.0f);
  gint64 i = 0;

  for (; i + 8 <= n; i += 8)
    store8 (y + i, select8 (load8 (x + i) < zero, neg, pos));
  for (; i < n; i++)
    y[i] = x[i] < 0.0f ? -s : s;
}

BL_SIMD_CLONES void
bl_simd_sign (const float *x,
              gint64       n,
              float        s,
              float       *y)
{
  sign_loop (x, n, s, y);
}

BL_SIMD_CLONES void
bl_simd_q4_0 (const float *x,
              gint64       n,
              float        id,
              float        bias,
              float        maxq,
              float        z,
              float        s,
              float       *y)
{
  q4_0_loop (x, n, id, bias, maxq, z, s, y);
}

BL_SIMD_INLINE void
fp_span (const BlSimdFp *f,
         const float    *x,
         gint64          n,
         float           s,
         float           lo,
         float           hi,
         float          *y)
{
  Fp8 c;

  fp8_init (&c, f);
  fp_loop (f, &c, x, n, s, lo, hi, y);
}

BL_SIMD_CLONES void
bl_simd_fp (const BlSimdFp *f,
            const float    *x,
            gint64          n,
            float           s,
            float           lo,
            float           hi,
            float          *y)
{
  fp_span (f, x, n, s, lo, hi, y);
}

BL_SIMD_CLONES void
bl_simd_nf4 (const float *x,
             gint64       n,
             float        s,
             const float *mids,
             const float *table,
             float       *y)
{
  nf4_loop (x, n, s, mids, table, y);
}

BL_SIMD_CLONES void
bl_simd_bf16 (const float *x,
              gint64       n,
              gboolean     saturate,
              float       *y)
{
  bf16_loop (x, n, saturate, y);
}

/* ------------------------------------------------------------------------------------------ */
/* fused rows: no calls per group. A row is done in chunks of groups, first every group's scale
 * (independent scalar chains the CPU overlaps), then every group's elements. The scale
 * arithmetic is bl-format-scale.h's, exactly as the families' params functions use it. */

#define ROW_CHUNK 64

/* bl_scale_q4_0_max without a data-dependent branch: the smallest index whose |x| equals
 * amax, as a lane-wise minimum (a search loop would mispredict once per group) */
BL_SIMD_INLINE float
q4_0_max_loop (const float *x,
               gint64       n,
               float        amax)
{
  const v8u target = splatu (fbits (amax));
  const v8i lanes = { 0, 1, 2, 3, 4, 5, 6, 7 };
  v8i best = (v8i) splatu (G_MAXINT32);
  gint64 i = 0, first;

  if (amax != amax || amax == 0.0f)
    return bl_scale_q4_0_max (x, n, amax);
  for (; i + 8 <= n; i += 8)
    {
      v8i eq = (v8i) (((v8u) load8 (x + i) & splatu (0x7fffffffu)) == target);
      v8i cand = (v8i) select8 (eq, (v8f) (lanes + (gint32) i), (v8f) splatu (G_MAXINT32));

      best = (v8i) select8 (cand < best, (v8f) cand, (v8f) best);
    }
  best = (v8i) select8 (SHUF8 (best, 4, 5, 6, 7, 0, 1, 2, 3) < best, (v8f) SHUF8 (best, 4, 5, 6, 7, 0, 1, 2, 3), (v8f) best);
  best = (v8i) select8 (SHUF8 (best, 2, 3, 0, 1, 6, 7, 4, 5) < best, (v8f) SHUF8 (best, 2, 3, 0, 1, 6, 7, 4, 5), (v8f) best);
  best = (v8i) select8 (SHUF8 (best, 1, 0, 3, 2, 5, 4, 7, 6) < best, (v8f) SHUF8 (best, 1, 0, 3, 2, 5, 4, 7, 6), (v8f) best);
  first = best[0];
  if (first != G_MAXINT32)
    return x[first];
  for (; i < n; i++)
    if (fabsf (x[i]) == amax)
      return x[i];
  return 0.0f;
}

/* the scale of one group and, for asym the zero point, for q4_0 the reciprocal 1/d */
BL_SIMD_INLINE void
group_scale (const BlSimdRow *r,
             const float     *x,
             gint64           n,
             int              selector,
             float           *out_s,
             float           *out_aux)
{
  guint32 code;

  switch (r->kind)
    {
    case BL_SIMD_ROW_MIXED:
      {
        /* int2+int4 (mixed_params): asymmetric, 4 bits where the prepare pass selected */
        float maxq = selector ? 15.0f : 3.0f, lo, hi, s;

        minmax_loop (x, n, 0.0f, &lo, &hi);
        lo *= r->shrink;
        hi *= r->shrink;
        s = bl_scale_store (r->scale_type, (hi - lo) / maxq, &code);
        *out_s = s;
        *out_aux = s > 0.0f ? (float) (int) bl_scale_clamp (bl_scale_rne (bl_scale_clamp (-lo / s, 0.0f, maxq)), 0.0f, maxq)
                            : 0.0f;
      }
      break;
    case BL_SIMD_ROW_DUAL:
      {
        /* dual_params: the asymmetric 2-bit grid {−s, 0, s, 2s} or its mirror as α₁, α₂ */
        float lo, hi, s, z;

        minmax_loop (x, n, 0.0f, &lo, &hi);
        s = (hi - lo) / 3.0f;
        z = bl_scale_clamp (-lo / s, 0.0f, 3.0f);
        z = s > 0.0f ? (z == z ? bl_scale_rne (z) : 0.0f) : 1.0f;
        *out_s = bl_scale_store (r->scale_type, (z <= 1.0f ? 2.0f : -2.0f) * s, &code);
        *out_aux = bl_scale_store (r->scale_type, z <= 1.0f ? -s : s, &code);
      }
      break;
    case BL_SIMD_ROW_INT_ABSMAX:
      *out_s = bl_scale_store (r->scale_type, r->shrink * amax_loop (x, n) / (r->half - 1.0f), &code);
      break;
    case BL_SIMD_ROW_INT_GPTQ:
      *out_s = bl_scale_store (r->scale_type, 2.0f * (r->shrink * amax_loop (x, n)) / r->maxq, &code);
      break;
    case BL_SIMD_ROW_INT_ASYM:
      {
        float lo, hi, s, z;

        minmax_loop (x, n, 0.0f, &lo, &hi);
        lo *= r->shrink;
        hi *= r->shrink;
        s = bl_scale_store (r->scale_type, (hi - lo) / r->maxq, &code);
        z = s > 0.0f ? bl_scale_clamp (bl_scale_rne (bl_scale_clamp (-lo / s, 0.0f, r->maxq)), 0.0f, r->maxq)
                     : 0.0f;
        *out_s = s;
        *out_aux = (float) (int) z;
      }
      break;
    case BL_SIMD_ROW_INT_Q4_0:
      {
        float d = r->shrink * q4_0_max_loop (x, n, amax_loop (x, n)) / -r->half;

        *out_s = bl_scale_store (r->scale_type, d, &code);
        *out_aux = d != 0.0f ? 1.0f / d : 0.0f;
      }
      break;
    case BL_SIMD_ROW_FP:
      *out_s = bl_scale_store (r->scale_type, r->shrink * amax_loop (x, n) / r->fp.max_finite, &code);
      break;
    case BL_SIMD_ROW_MXFP:
    case BL_SIMD_ROW_MXINT:
      *out_s = bl_scale_e8m0_decode (bl_scale_mx_code (r->mx_rule, r->mx_emax, r->mx_mbits, r->mx_max_pos,
                                                       r->shrink * amax_loop (x, n)));
      break;
    case BL_SIMD_ROW_NVFP4:
      *out_s = bl_scale_nv_block (r->shrink * amax_loop (x, n), 6.0f, r->tensor_scale, &code);
      break;
    case BL_SIMD_ROW_NVINT4:
      *out_s = bl_scale_nv_block (r->shrink * amax_loop (x, n), 7.0f, r->tensor_scale, &code);
      break;
    case BL_SIMD_ROW_NF4:
    default:
      *out_s = bl_scale_store (r->scale_type, r->shrink * amax_loop (x, n), &code);
      break;
    }
}

BL_SIMD_INLINE void
group_elements (const BlSimdRow *r,
                const Fp8       *c,
                const float     *x,
                gint64           n,
                int              selector,
                float            s,
                float            aux,
                float           *y)
{
  switch (r->kind)
    {
    case BL_SIMD_ROW_MIXED:
      int_rne_loop (x, n, s, 1.0f, 1.0f, -aux, (selector ? 15.0f : 3.0f) - aux, y);
      break;
    case BL_SIMD_ROW_DUAL:
      dual_loop (x, n, s, aux, y);
      break;
    case BL_SIMD_ROW_INT_ABSMAX:
      int_rne_loop (x, n, s, 1.0f, 1.0f, -(r->half - 1.0f), r->half - 1.0f, y);
      break;
    case BL_SIMD_ROW_INT_GPTQ:
      int_rne_loop (x, n, s, 1.0f, 1.0f, -r->half, r->maxq - r->half, y);
      break;
    case BL_SIMD_ROW_INT_ASYM:
      int_rne_loop (x, n, s, 1.0f, 1.0f, -aux, r->maxq - aux, y);
      break;
    case BL_SIMD_ROW_INT_Q4_0:
      q4_0_loop (x, n, aux, r->half + 0.5f, r->maxq, r->half, s, y);
      break;
    case BL_SIMD_ROW_FP:
      fp_loop (&r->fp, c, x, n, s, -INFINITY, INFINITY, y);
      break;
    case BL_SIMD_ROW_MXFP:
      fp_loop_pow2 (&r->fp, c, x, n, s, y);
      break;
    case BL_SIMD_ROW_MXINT:
      int_rne_loop (x, n, s, r->mx_up, r->mx_down, -(r->half - 1.0f), r->half - 1.0f, y);
      break;
    case BL_SIMD_ROW_NVFP4:
      fp_loop (&r->fp, c, x, n, s, -6.0f, 6.0f, y);
      break;
    case BL_SIMD_ROW_NVINT4:
      int_rne_loop (x, n, s, 1.0f, 1.0f, -7.0f, 7.0f, y);
      break;
    case BL_SIMD_ROW_NF4:
    default:
      nf4_loop (x, n, s, r->nf4_mids, r->nf4_table, y);
      break;
    }
}

/* Eight groups of @gs (a multiple of 8) at once: their |x| maxima as one vector. Each group's
 * lanes are reduced, then the eight partial vectors are folded together pairwise, so lane k
 * ends up holding group k's maximum (the same bit-pattern maximum amax_loop computes). */
BL_SIMD_INLINE v8f
amax8_groups (const float *x,
              gint64       gs)
{
  v8u m[8], a[4], b[2], c;

  for (int k = 0; k < 8; k++)
    {
      m[k] = splatu (0);
      for (gint64 i = 0; i < gs; i += 8)
        m[k] = umax8 (m[k], (v8u) load8 (x + k * gs + i) & splatu (0x7fffffffu));
    }
  for (int k = 0; k < 4; k++)
    a[k] = umax8 (SHUF2 (m[2 * k], m[2 * k + 1], 0, 1, 2, 3, 8, 9, 10, 11),
                  SHUF2 (m[2 * k], m[2 * k + 1], 4, 5, 6, 7, 12, 13, 14, 15));
  for (int k = 0; k < 2; k++)
    b[k] = umax8 (SHUF2 (a[2 * k], a[2 * k + 1], 0, 1, 4, 5, 8, 9, 12, 13),
                  SHUF2 (a[2 * k], a[2 * k + 1], 2, 3, 6, 7, 10, 11, 14, 15));
  c = umax8 (SHUF2 (b[0], b[1], 0, 2, 4, 6, 8, 10, 12, 14), SHUF2 (b[0], b[1], 1, 3, 5, 7, 9, 11, 13, 15));
  return (v8f) c;
}

/* whether group_scale8 covers this row kind: the NV two-level scale and the MX E8M0 rules
 * computed on bit patterns (RCEIL's exact log2 of subnormals stays scalar) */
BL_SIMD_INLINE gboolean
row_scale8_ok (const BlSimdRow *r,
               gint64           gs)
{
  if (gs % 8 != 0)
    return FALSE;
  switch (r->kind)
    {
    case BL_SIMD_ROW_NVFP4:
    case BL_SIMD_ROW_NVINT4:
      return r->tensor_scale != 0.0f;
    case BL_SIMD_ROW_MXFP:
    case BL_SIMD_ROW_MXINT:
      return r->mx_rule != BL_SCALE_RULE_RCEIL;
    case BL_SIMD_ROW_INT_ABSMAX:
    case BL_SIMD_ROW_INT_GPTQ:
    case BL_SIMD_ROW_INT_ASYM:
    case BL_SIMD_ROW_INT_Q4_0:
    case BL_SIMD_ROW_FP:
    case BL_SIMD_ROW_NF4:
    default:
      return FALSE;
    }
}

/* group_scale for eight full groups, lane by lane the same operations as
 * bl_scale_nv_block and bl_scale_mx_code + bl_scale_e8m0_decode */
BL_SIMD_INLINE void
group_scale8 (const BlSimdRow *r,
              const float     *x,
              gint64           gs,
              float           *out_s)
{
  /* the NVFP4 and MX block sizes as constants, so their reduction loops unroll */
  v8f amax = splat (r->shrink) * (gs == 16 ? amax8_groups (x, 16) : gs == 32 ? amax8_groups (x, 32)
                                                                            : amax8_groups (x, gs));
  v8f total;

  if (r->kind == BL_SIMD_ROW_NVFP4 || r->kind == BL_SIMD_ROW_NVINT4)
    {
      v8f scaled = clamp8 ((amax / splat (r->kind == BL_SIMD_ROW_NVFP4 ? 6.0f : 7.0f)) / splat (r->tensor_scale),
                           splat (0.015625f), splat (448.0f));
      v8u bits = (v8u) scaled;
      v8u code = ((bits + splatu (0x7ffffu) + ((bits >> 20) & splatu (1u))) >> 20) - splatu (120u << 3);
      v8f dec = (v8f) ((code + splatu (120u << 3)) << 20);

      total = select8 (scaled == scaled, splat (r->tensor_scale) * dec, splat (NAN));
    }
  else
    {
      v8u b = (v8u) amax & splatu (0x7fffffffu);
      v8i e;
      v8f pow2;

      if (r->mx_rule == BL_SCALE_RULE_EVEN)
        b = (b + splatu (1u << (23 - r->mx_mbits - 1))) & splatu (0x7f800000u);
      e = (v8i) (b >> 23) - 127 - r->mx_emax;
      if (r->mx_rule == BL_SCALE_RULE_CEIL)
        e -= (v8i) ((b & splatu (0x7fffffu)) != 0);
      e = (v8i) select8 (e < -127, (v8f) ((v8i) splatu ((guint32) -127)), (v8f) e);
      /* 2^e: exponent field e + 127, or the subnormal 2^−127 for e = −127 */
      pow2 = select8 (e == -127, (v8f) splatu (0x00400000u), (v8f) ((v8u) (e + 127) << 23));
      total = select8 ((e > 127) | (v8i) (amax != amax), splat (NAN), pow2);
    }
  memcpy (out_s, &total, sizeof total);
}

/* ------------------------------------------------------------------------------------------ */
/* BitMoD (methods.md §12): per group, the grid of least squared error among four. The
 * reference (bitmod_params in bl-format-traits.c) quantizes the group onto each grid,
 * q = grid[c]·s with c the number of midpoints below x/s, sums (q − x)² in double in element
 * order, and keeps the first grid with the smallest sum. Here the four candidate rows are
 * computed eight lanes at a time and the sums in float, in any order; the float sums decide
 * only where a proven error bound separates them, and otherwise the exact double sums are
 * formed in the reference's order from the very same rows. */

/* the constants of one group's candidate rows, broadcast once */
typedef struct
{
  v8f l1, l2, cap, neg_cap, one, two, four, half, quarter, magic;
  v8f lo[4], hi[4], extra[4];
} Bitmod8;

/* the nearest base value of v, a midpoint going to the lower value, in units of the grid:
 * v/q (q = 1, 2 or 4, the base's spacing where v lies) is rounded to nearest even by the
 * 1.5·2^23 trick and moved down where that rounded a tie up; |v/q| < 2^22 here */
#define bitmod_base8(c, v) \
  ({ const Bitmod8 *bb_c_ = (c); v8f bb_v_ = (v); \
     v8f bb_m_ = (v8f) ((v8u) bb_v_ & splatu (0x7fffffffu)); \
     v8i bb_b1_ = bb_m_ < bb_c_->l1, bb_b2_ = bb_m_ < bb_c_->l2; \
     v8f bb_q_ = select8 (bb_b1_, bb_c_->one, select8 (bb_b2_, bb_c_->two, bb_c_->four)); \
     v8f bb_u_ = bb_v_ * select8 (bb_b1_, bb_c_->one, select8 (bb_b2_, bb_c_->half, bb_c_->quarter)); \
     v8f bb_t_ = (bb_u_ + bb_c_->magic) - bb_c_->magic; \
     bb_t_ = select8 (bb_t_ - bb_u_ == bb_c_->half, bb_t_ - bb_c_->one, bb_t_); \
     clamp8 (bb_t_ * bb_q_, bb_c_->neg_cap, bb_c_->cap); })

BL_SIMD_INLINE void
bitmod8_init (Bitmod8         *c,
              const BlSimdRow *r)
{
  c->l1 = splat (r->bm_l1);
  c->l2 = splat (r->bm_l2);
  c->cap = splat (r->bm_cap);
  c->neg_cap = splat (-r->bm_cap);
  c->one = splat (1.0f);
  c->two = splat (2.0f);
  c->four = splat (4.0f);
  c->half = splat (0.5f);
  c->quarter = splat (0.25f);
  c->magic = splat (12582912.0f);
  for (int k = 0; k < 4; k++)
    {
      c->lo[k] = splat (r->bm_lo[k]);
      c->hi[k] = splat (r->bm_hi[k]);
      c->extra[k] = splat (r->bm_extra[k]);
    }
}

/* the sum of the lanes, pairwise (any order serves: the caller bounds the rounding) */
#define hsum8(v) \
  ({ v8f hs_v_ = (v); hs_v_ += SHUF8 (hs_v_, 4, 5, 6, 7, 0, 1, 2, 3); \
     hs_v_ += SHUF8 (hs_v_, 2, 3, 0, 1, 6, 7, 4, 5); hs_v_ += SHUF8 (hs_v_, 1, 0, 3, 2, 5, 4, 7, 6); hs_v_[0]; })

/* the OR of the lanes */
#define hor8(v) \
  ({ v8u ho_v_ = (v8u) (v); ho_v_ |= SHUF8 (ho_v_, 4, 5, 6, 7, 0, 1, 2, 3); \
     ho_v_ |= SHUF8 (ho_v_, 2, 3, 0, 1, 6, 7, 4, 5); ho_v_ |= SHUF8 (ho_v_, 1, 0, 3, 2, 5, 4, 7, 6); ho_v_[0]; })

BL_SIMD_INLINE float
bitmod_base1 (const BlSimdRow *r,
              float            v)
{
  float m = fabsf (v);
  float q = m < r->bm_l1 ? 1.0f : (m < r->bm_l2 ? 2.0f : 4.0f);
  float u = v * (m < r->bm_l1 ? 1.0f : (m < r->bm_l2 ? 0.5f : 0.25f));
  float t = (u + 12582912.0f) - 12582912.0f;

  t = t - u == 0.5f ? t - 1.0f : t;
  return clampf (t * q, -r->bm_cap, r->bm_cap);
}

/* Σ (q − x)² in double, in element order: the reference's sum */
static double
bitmod_exact_error (const float *q,
                    const float *x,
                    gint64       n)
{
  double err = 0.0;

  for (gint64 i = 0; i < n; i++)
    {
      double d = (double) q[i] - (double) x[i];

      err += d * d;
    }
  return err;
}

/* the reference, element by element, for groups with a non-finite value or a zero scale */
static void
bitmod_group_reference (const BlSimdRow *r,
                        const float     *x,
                        gint64           n,
                        const float     *s,
                        float           *qbuf,
                        float           *y)
{
  double best_err = INFINITY;
  int best = -1;

  for (int k = 0; k < 4; k++)
    {
      double err;

      for (gint64 i = 0; i < n; i++)
        qbuf[i] = r->bm_grids[k][bl_grid_nearest (r->bm_grids[k], r->bm_n_values, x[i] / s[k])] * s[k];
      err = bitmod_exact_error (qbuf, x, n);
      if (err < best_err)
        {
          best_err = err;
          best = k;
        }
    }
  /* no grid won (every sum NaN or Inf): the reference keeps selector 0 with scale 0 */
  for (gint64 i = 0; i < n; i++)
    {
      float sk = best >= 0 ? s[best] : 0.0f;
      const float *grid = r->bm_grids[MAX (best, 0)];

      y[i] = grid[bl_grid_nearest (grid, r->bm_n_values, x[i] / sk)] * sk;
    }
}

BL_SIMD_INLINE void
bitmod_group (const BlSimdRow *r,
              const float     *x,
              gint64           n,
              float           *y)
{
  /* candidate row 0 goes straight to y unless y is x (in place), the others here */
  float qbuf[4][BL_SIMD_BITMOD_MAX_GROUP];
  float *rows[4] = { y != x ? y : qbuf[0], qbuf[1], qbuf[2], qbuf[3] };
  float s[4], e[4];
  float amax = r->shrink * amax_loop (x, n);
  Bitmod8 c;
  gboolean same01, same23, decided = TRUE;
  double gamma, floor_err;
  int a = 0;
  gint64 i = 0;

  {
    guint32 code;

    /* grids 0 and 1 share their maximum, and so do 2 and 3 (the row setup checks it) */
    s[0] = s[1] = bl_scale_store (r->scale_type, amax / r->bm_gmax[0], &code);
    s[2] = s[3] = bl_scale_store (r->scale_type, amax / r->bm_gmax[2], &code);
  }
  if (!(amax < INFINITY) || !(s[0] > 0.0f && s[0] < INFINITY) || !(s[2] > 0.0f && s[2] < INFINITY))
    {
      bitmod_group_reference (r, x, n, s, qbuf[0], y);
      return;
    }

  bitmod8_init (&c, r);
  {
    const v8f s01 = splat (s[0]), s23 = splat (s[2]);
    v8f acc0 = splat (0.0f), acc1 = acc0, acc2 = acc0, acc3 = acc0;
    v8i diff01 = (v8i) splatu (0), diff23 = diff01;

    for (; i + 8 <= n; i += 8)
      {
        v8f xv = load8 (x + i);
        v8f v01 = xv / s01, v23 = xv / s23;
        v8f b01 = bitmod_base8 (&c, v01), b23 = bitmod_base8 (&c, v23);
        v8f q0 = select8 ((v01 > c.lo[0]) & (v01 <= c.hi[0]), c.extra[0], b01) * s01;
        v8f q1 = select8 ((v01 > c.lo[1]) & (v01 <= c.hi[1]), c.extra[1], b01) * s01;
        v8f q2 = select8 ((v23 > c.lo[2]) & (v23 <= c.hi[2]), c.extra[2], b23) * s23;
        v8f q3 = select8 ((v23 > c.lo[3]) & (v23 <= c.hi[3]), c.extra[3], b23) * s23;
        v8f d0 = q0 - xv, d1 = q1 - xv, d2 = q2 - xv, d3 = q3 - xv;

        diff01 |= (v8i) q0 ^ (v8i) q1;
        diff23 |= (v8i) q2 ^ (v8i) q3;
        acc0 += d0 * d0;
        acc1 += d1 * d1;
        acc2 += d2 * d2;
        acc3 += d3 * d3;
        store8 (rows[0] + i, q0);
        store8 (&qbuf[1][i], q1);
        store8 (&qbuf[2][i], q2);
        store8 (&qbuf[3][i], q3);
      }
    e[0] = hsum8 (acc0);
    e[1] = hsum8 (acc1);
    e[2] = hsum8 (acc2);
    e[3] = hsum8 (acc3);
    same01 = hor8 (diff01) == 0;
    same23 = hor8 (diff23) == 0;
  }
  for (; i < n; i++)
    {
      float v01 = x[i] / s[0], v23 = x[i] / s[2];
      float b01 = bitmod_base1 (r, v01), b23 = bitmod_base1 (r, v23);

      for (int k = 0; k < 4; k++)
        {
          float v = k < 2 ? v01 : v23, b = k < 2 ? b01 : b23;
          float d;

          rows[k][i] = (v > r->bm_lo[k] && !(v > r->bm_hi[k]) ? r->bm_extra[k] : b) * s[k < 2 ? 0 : 2];
          d = rows[k][i] - x[i];
          e[k] += d * d;
        }
      same01 = same01 && fbits (rows[0][i]) == fbits (rows[1][i]);
      same23 = same23 && fbits (rows[2][i]) == fbits (rows[3][i]);
    }

  /* Each float sum E is within γ·T + n·2^−149 of the exact Σ (q − x)² = T (relative rounding
   * of the difference, the square and at most n additions, plus underflow of a square), and
   * the reference's double sum R within (n + 2)·2^−53·T of it. E_k − E_a > 4γ(E_a + E_k) +
   * 4n·2^−149 then proves R_a < R_k (Higham, "Accuracy and Stability of Numerical
   * Algorithms", 2nd ed., §4.2). Identical rows have identical reference sums. */
  for (int k = 1; k < 4; k++)
    if (e[k] < e[a])
      a = k;
  gamma = ((double) n + 16.0) * 0x1p-24;
  floor_err = (double) n * 0x1p-149;
  for (int k = 0; k < 4 && decided; k++)
    {
      gboolean same = (a < 2) == (k < 2) && (a < 2 ? same01 : same23);

      if (k == a || (same && k > a))
        continue;
      decided = (double) e[k] - (double) e[a] > 4.0 * gamma * ((double) e[a] + (double) e[k]) + 4.0 * floor_err;
    }
  if (!decided)
    {
      double best_err = INFINITY;

      for (int k = 0; k < 4; k++)
        {
          double err = bitmod_exact_error (rows[k], x, n);

          if (err < best_err)
            {
              best_err = err;
              a = k;
            }
        }
    }
  if (rows[a] != y)
    memcpy (y, rows[a], sizeof (float) * (gsize) n);
}

/* ------------------------------------------------------------------------------------------ */
/* complex-2bit (methods.md §13d): the reference (complex_params) sums |re| over the ±1 pairs
 * and |im| over the ±i pairs in double, pair by pair. When every term is a multiple of the
 * smallest term's ulp and the sums stay below 2^53 such units, every partial sum is exact in
 * any order, so the vector lanes may add them in theirs; otherwise the pairs are summed in
 * the reference's order. */

/* per lane of a pair (both lanes alike): whether the phase is ±1, and whether it is negative,
 * exactly as phase_code decides: 0 → +1, then the sectors +1, +i, −i, and −1 for the rest */
#define complex_masks8(v, even, out_re, out_neg) \
  G_STMT_START { \
    v8f cm_v_ = (v), cm_w_ = SHUF8 (cm_v_, 1, 0, 3, 2, 5, 4, 7, 6), cm_z_ = splat (0.0f); \
    v8f cm_a_ = select8 ((even), cm_v_, cm_w_), cm_b_ = select8 ((even), cm_w_, cm_v_); \
    v8f cm_na_ = (v8f) ((v8u) cm_a_ ^ splatu (0x80000000u)), cm_nb_ = (v8f) ((v8u) cm_b_ ^ splatu (0x80000000u)); \
    v8i cm_first_ = ((cm_a_ == cm_z_) & (cm_b_ == cm_z_)) | ((cm_a_ > cm_z_) & (cm_b_ >= cm_na_) & (cm_b_ < cm_a_)); \
    v8i cm_c2_ = (cm_b_ > cm_z_) & (cm_a_ <= cm_b_) & (cm_a_ > cm_nb_); \
    v8i cm_c3_ = (cm_b_ < cm_z_) & (cm_a_ >= cm_b_) & (cm_a_ < cm_nb_); \
    *(out_re) = cm_first_ | (~cm_c2_ & ~cm_c3_); \
    *(out_neg) = ~(cm_first_ | cm_c2_); \
  } G_STMT_END

static inline int
complex_phase1 (float a,
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

/* the ulp exponent field of a nonzero |term| (subnormals share the smallest normal's) */
static inline int
complex_ulp_field (guint32 bits)
{
  return MAX (1, (int) (bits >> 23));
}

BL_SIMD_INLINE void
complex_group (const BlSimdRow *r,
               const float     *x,
               gint64           n,
               float           *y)
{
  typedef double v4d __attribute__ ((vector_size (32)));
  const v8i even = { -1, 0, -1, 0, -1, 0, -1, 0 };
  v4d acc_lo = { 0 }, acc_hi = { 0 };
  v8u hi8 = splatu (0), lo8 = splatu (0x7fffffffu);
  v8i cnt8 = (v8i) splatu (0);
  double sum_re = 0.0, sum_im = 0.0;
  gint64 n_re = 0, n_im = 0, i = 0, n_vec = n / 8 * 8;
  guint32 hi = 0, lo = 0x7fffffffu;
  float s_re, s_im;
  guint32 code;

  for (; i < n_vec; i += 8)
    {
      v8f v = load8 (x + i);
      v8i is_re, neg;
      v8f term;

      complex_masks8 (v, even, &is_re, &neg);
      /* the real part of a ±1 pair, the imaginary part of a ±i pair, else 0 */
      term = (v8f) ((v8u) v & splatu (0x7fffffffu) & (v8u) ~(even ^ is_re));
      /* the code as ±1 or 0 (scaled below), where y does not overwrite x */
      if (y != x)
        store8 (y + i, (v8f) ((v8u) select8 (neg, splat (-1.0f), splat (1.0f)) & (v8u) ~(even ^ is_re)));
      hi8 = umax8 (hi8, (v8u) term);
      lo8 = (v8u) select8 (((v8i) term != 0) & ((v8i) term < (v8i) lo8), term, (v8f) lo8);
      cnt8 -= even & is_re;
      acc_lo += (v4d) { term[0], term[1], term[2], term[3] };
      acc_hi += (v4d) { term[4], term[5], term[6], term[7] };
    }
  for (int l = 0; l < 8; l++)
    {
      hi = MAX (hi, hi8[l]);
      lo = MIN (lo, lo8[l]);
      n_re += cnt8[l];
    }
  n_im = n_vec / 2 - n_re;
  sum_re = (acc_lo[0] + acc_lo[2]) + (acc_hi[0] + acc_hi[2]);
  sum_im = (acc_lo[1] + acc_lo[3]) + (acc_hi[1] + acc_hi[3]);
  for (; i < n; i += 2)
    {
      float a = x[i], b = i + 1 < n ? x[i + 1] : 0.0f;
      guint32 t = fbits (complex_phase1 (a, b) < 2 ? fabsf (a) : fabsf (b));

      hi = MAX (hi, t);
      lo = t != 0 ? MIN (lo, t) : lo;
      if (complex_phase1 (a, b) < 2)
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
  /* exact sums: finite terms within 29 − log2(pairs) binades of one another */
  if (hi >= 0x7f800000u
      || (hi != 0 && complex_ulp_field (hi) - complex_ulp_field (lo) + g_bit_storage ((gulong) (n / 2 + 1)) > 28))
    {
      sum_re = sum_im = 0.0;
      for (i = 0; i < n; i += 2)
        {
          float a = x[i], b = i + 1 < n ? x[i + 1] : 0.0f;

          if (complex_phase1 (a, b) < 2)
            sum_re += fabsf (a);
          else
            sum_im += fabsf (b);
        }
    }
  s_re = bl_scale_store (r->scale_type, n_re ? (float) (sum_re / (double) n_re) : 0.0f, &code);
  s_im = bl_scale_store (r->scale_type, n_im ? (float) (sum_im / (double) n_im) : 0.0f, &code);

  {
    const v8f val = { s_re, s_im, s_re, s_im, s_re, s_im, s_re, s_im };
    const v8f nval = (v8f) ((v8u) val ^ splatu (0x80000000u));

    /* ±1 · s = ±s and (+0) · s = +0 exactly for a finite s ≥ 0 */
    if (y != x && s_re < INFINITY && s_im < INFINITY)
      for (i = 0; i < n_vec; i += 8)
        store8 (y + i, load8 (y + i) * val);
    else
      for (i = 0; i < n_vec; i += 8)
        {
          v8i is_re, neg;

          complex_masks8 (load8 (x + i), even, &is_re, &neg);
          store8 (y + i, (v8f) ((v8u) select8 (neg, nval, val) & (v8u) ~(even ^ is_re)));
        }
  }
  for (; i < n; i += 2)
    {
      int c = complex_phase1 (x[i], i + 1 < n ? x[i + 1] : 0.0f);

      y[i] = c >= 2 ? 0.0f : (c & 1 ? -s_re : s_re);
      if (i + 1 < n)
        y[i + 1] = c < 2 ? 0.0f : (c & 1 ? -s_im : s_im);
    }
}

BL_SIMD_INLINE void
fake_row_loop (const BlSimdRow *r,
               const float     *x,
               gint64           n,
               gint64           group_size,
               const guint8    *selectors,
               float           *y)
{
  Fp8 c;
  float s[ROW_CHUNK], aux[ROW_CHUNK];

  if (r->kind == BL_SIMD_ROW_BITMOD || r->kind == BL_SIMD_ROW_COMPLEX)
    {
      for (gint64 off = 0; off < n; off += group_size)
        if (r->kind == BL_SIMD_ROW_BITMOD)
          bitmod_group (r, x + off, MIN (group_size, n - off), y + off);
        else
          complex_group (r, x + off, MIN (group_size, n - off), y + off);
      return;
    }
  fp8_init (&c, &r->fp);
  for (gint64 base = 0; base < n; base += ROW_CHUNK * group_size)
    {
      int n_groups = (int) MIN (ROW_CHUNK, (n - base + group_size - 1) / group_size);

      int g = 0;

      if (row_scale8_ok (r, group_size))
        for (; g + 8 <= n_groups && base + (g + 8) * group_size <= n; g += 8)
          {
            group_scale8 (r, x + base + g * group_size, group_size, &s[g]);
            for (int k = 0; k < 8; k++)
              aux[g + k] = 0.0f;
          }
      for (; g < n_groups; g++)
        {
          gint64 off = base + g * group_size;

          aux[g] = 0.0f;
          group_scale (r, x + off, MIN (group_size, n - off), selectors != NULL ? selectors[off / group_size] : 0,
                       &s[g], &aux[g]);
        }
      g = 0;
      if (r->kind == BL_SIMD_ROW_NVFP4 && group_size % 8 == 0)
        {
          /* NVFP4's blocks are two vectors: one loop over the chunk, constants hoisted */
          const v8f lo8 = splat (-6.0f), hi8 = splat (6.0f);

          for (; g < n_groups && base + (g + 1) * group_size <= n; g++)
            {
              const v8f s8 = splat (s[g]);
              const float *xg = x + base + g * group_size;
              float *yg = y + base + g * group_size;

              for (gint64 i = 0; i < group_size; i += 8)
                {
                  v8f v = clamp8 (load8 (xg + i) / s8, lo8, hi8);

                  store8 (yg + i, fp_round8 (&c, &v, FALSE, TRUE) * s8);
                }
            }
        }
      for (; g < n_groups; g++)
        {
          gint64 off = base + g * group_size;

          group_elements (r, &c, x + off, MIN (group_size, n - off), selectors != NULL ? selectors[off / group_size] : 0,
                          s[g], aux[g], y + off);
        }
    }
}

BL_SIMD_CLONES void
bl_simd_fake_row (const BlSimdRow *r,
                  const float     *x,
                  gint64           n,
                  gint64           group_size,
                  const guint8    *selectors,
                  float           *y)
{
  fake_row_loop (r, x, n, group_size, selectors, y);
}
