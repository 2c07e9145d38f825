/* bl-cpu-kernels.c: the exponential-heavy loops of the CPU backend, vectorised
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * The attention softmax, the vocabulary log-sum-exp and SwiGLU spend their time in e^x, which
 * libm evaluates one lane at a time. These loops use eight lanes of GCC/Clang vector
 * extensions and a polynomial exponential, built through target_clones for AVX-512, AVX2 and
 * the baseline ISA and picked at load time (as bl-format-simd.c does). They are not meant to
 * be bit-exact with libm: the engine's fixtures allow 1e-5 relative error and the
 * exponential is within 2 ulp.
 */
#include "bl-cpu-kernels-private.h"

#include <math.h>
#include <string.h>

/* the helpers take and return 32-byte vectors but are always inlined, so the AVX calling
 * convention GCC warns about never applies */
#if defined(__clang__)
#pragma clang diagnostic ignored "-Wpsabi"
#elif defined(__GNUC__)
#pragma GCC diagnostic ignored "-Wpsabi"
#endif

typedef float v8f __attribute__ ((vector_size (32)));
typedef gint32 v8i __attribute__ ((vector_size (32)));

/* Clang before 16 names the dispatcher "f.ifunc" instead of "f", so callers in other files
 * do not link; it gets the baseline build only. */
#if defined(__x86_64__) && (!defined(__clang__) || __clang_major__ >= 16)
#define CLONES __attribute__ ((target_clones ("arch=x86-64-v4", "avx2", "default")))
#else
#define CLONES
#endif
#define INLINE static inline __attribute__ ((always_inline))

/* Cephes expf constants (Moshier, Cephes Math Library, expf.c): ln 2 split in two so that
 * n·ln 2 is exact in the first part, and the minimax polynomial for e^r on |r| ≤ ln2/2. The
 * input is clamped so that 2^n stays a normal float. */
#define EXP_MIN (-87.3f)
#define EXP_MAX 88.0f
#define LOG2E 1.44269504088896341f
#define LN2_HI 0.693359375f
#define LN2_LO (-2.12194440e-4f)
#define ROUND_MAGIC 12582912.0f  /* 1.5·2^23: adding it rounds to an integer */
#define P0 1.9875691500e-4f
#define P1 1.3981999507e-3f
#define P2 8.3334519073e-3f
#define P3 4.1665795894e-2f
#define P4 1.6666665459e-1f
#define P5 5.0000001201e-1f

/* The sum of exponentials is kept in float lanes for this many elements, then added to a
 * double: the float partial sums stay short enough to lose nothing that matters. */
#define FLUSH_EVERY 128

INLINE v8f
load8 (const float *p)
{
  v8f v;

  memcpy (&v, p, sizeof v);
  return v;
}

INLINE v8f
splat (float f)
{
  return (v8f) { 0 } + f;
}

#define store8(p, v) G_STMT_START { v8f store8_v_ = (v); memcpy ((p), &store8_v_, sizeof store8_v_); } G_STMT_END

#define max8(a, b) \
  ({ v8f max8_a_ = (a), max8_b_ = (b); \
     (v8f) (((v8i) max8_a_ & (max8_a_ > max8_b_)) | ((v8i) max8_b_ & ~(max8_a_ > max8_b_))); })

#define min8(a, b) \
  ({ v8f min8_a_ = (a), min8_b_ = (b); \
     (v8f) (((v8i) min8_a_ & (min8_a_ < min8_b_)) | ((v8i) min8_b_ & ~(min8_a_ < min8_b_))); })

#define exp8(x) \
  ({ v8f exp8_x_ = min8 (max8 ((x), splat (EXP_MIN)), splat (EXP_MAX)); \
     v8f exp8_n_ = (exp8_x_ * LOG2E + ROUND_MAGIC) - ROUND_MAGIC; \
     v8f exp8_r_ = exp8_x_ - exp8_n_ * LN2_HI - exp8_n_ * LN2_LO; \
     v8f exp8_p_ = ((((P0 * exp8_r_ + P1) * exp8_r_ + P2) * exp8_r_ + P3) * exp8_r_ + P4) * exp8_r_ + P5; \
     v8i exp8_e_ = (__builtin_convertvector (exp8_n_, v8i) + 127) << 23; \
     (exp8_p_ * exp8_r_ * exp8_r_ + exp8_r_ + 1.0f) * (v8f) exp8_e_; })

INLINE float
exp1 (float x)
{
  float n;
  float r;
  float p;
  gint32 e;
  float scale;

  x = x < EXP_MIN ? EXP_MIN : (x > EXP_MAX ? EXP_MAX : x);
  n = (x * LOG2E + ROUND_MAGIC) - ROUND_MAGIC;
  r = x - n * LN2_HI - n * LN2_LO;
  p = ((((P0 * r + P1) * r + P2) * r + P3) * r + P4) * r + P5;
  e = ((gint32) n + 127) << 23;
  memcpy (&scale, &e, sizeof scale);
  return (p * r * r + r + 1.0f) * scale;
}

INLINE float
hmax8 (v8f v)
{
  float m = v[0];

  for (int i = 1; i < 8; i++)
    m = v[i] > m ? v[i] : m;
  return m;
}

INLINE double
hsum8 (v8f v)
{
  double s = 0.0;

  for (int i = 0; i < 8; i++)
    s += v[i];
  return s;
}

INLINE float
max_loop (const float *p,
          int          n,
          float        m)
{
  v8f vm = splat (m);
  int j = 0;

  for (; j + 8 <= n; j += 8)
    vm = max8 (vm, load8 (p + j));
  m = hmax8 (vm);
  for (; j < n; j++)
    m = p[j] > m ? p[j] : m;
  return m;
}

/* Σ e^(p_j − max), storing the exponentials back when @store */
INLINE double
sum_exp_loop (float   *p,
              int      n,
              float    max,
              gboolean store)
{
  v8f vmax = splat (max);
  v8f acc = splat (0.0f);
  double sum = 0.0;
  int j = 0;

  for (int k = 1; j + 8 <= n; j += 8, k++)
    {
      v8f e = exp8 (load8 (p + j) - vmax);

      if (store)
        store8 (p + j, e);
      acc += e;
      if (k % (FLUSH_EVERY / 8) == 0)
        {
          sum += hsum8 (acc);
          acc = splat (0.0f);
        }
    }
  sum += hsum8 (acc);
  for (; j < n; j++)
    {
      float e = exp1 (p[j] - max);

      if (store)
        p[j] = e;
      sum += e;
    }
  return sum;
}

/* The loops are always-inline helpers and the exported functions below only call them: the
 * vector code must not sit in a target_clones function's own body, where Clang rejects
 * 32-byte vector values for the baseline clone. */

INLINE void
softmax_row_loop (float *p,
                  int    n)
{
  float max = max_loop (p, n, -INFINITY);
  float inv = (float) (1.0 / sum_exp_loop (p, n, max, TRUE));
  v8f vinv = splat (inv);
  int j = 0;

  for (; j + 8 <= n; j += 8)
    store8 (p + j, load8 (p + j) * vinv);
  for (; j < n; j++)
    p[j] *= inv;
}

INLINE void
logsumexp_update_loop (const float *l,
                       int          n,
                       float       *max,
                       double      *sum)
{
  float m = max_loop (l, n, *max);
  double earlier;

  /* Online softmax (Milakov & Gimelshein 2018): rescale the earlier partial sum to the new
   * maximum, so one pass over vocabulary slices gives the exact log-sum-exp. An empty
   * earlier sum stays 0 (its maximum may still be −∞, and −∞ − −∞ is not a number). */
  earlier = *sum > 0.0 ? *sum * exp ((double) *max - (double) m) : 0.0;
  *sum = earlier + sum_exp_loop ((float *) l, n, m, FALSE);
  *max = m;
}

INLINE void
swiglu_loop (float       *out,
             const float *gate,
             const float *up,
             gint64       n)
{
  gint64 i = 0;

  /* silu(x) = x / (1 + e^−x), the form ATen's CPU silu kernel evaluates. */
  for (; i + 8 <= n; i += 8)
    {
      v8f g = load8 (gate + i);

      store8 (out + i, g / (1.0f + exp8 (-g)) * load8 (up + i));
    }
  for (; i < n; i++)
    out[i] = gate[i] / (1.0f + exp1 (-gate[i])) * up[i];
}

CLONES void
bl_cpu_softmax_row (float *p,
                    int    n)
{
  softmax_row_loop (p, n);
}

CLONES void
bl_cpu_logsumexp_update (const float *l,
                         int          n,
                         float       *max,
                         double      *sum)
{
  logsumexp_update_loop (l, n, max, sum);
}

CLONES void
bl_cpu_swiglu (float       *out,
               const float *gate,
               const float *up,
               gint64       n)
{
  swiglu_loop (out, gate, up, n);
}

float
bl_cpu_expf (float x)
{
  return exp1 (x);
}
