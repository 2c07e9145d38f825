/* bl-cuda-format.cu: fake-quant, quantize and dequantize on the GPU, bit for bit as the oracle
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * Each device function below mirrors one scalar reference function of core/ (named in its
 * comment) operation for operation. Products, sums and quotients go through the _rn
 * intrinsics, and this file is compiled with -fmad=false, so nothing is fused into an FMA
 * that the reference (built with fp-contract=off) does not have. Sums whose rounding depends
 * on their order (the double accumulations of absmean, complex-2bit, BitMoD and clip=mse),
 * first-occurrence searches and quickselects run in the reference's order, one thread per
 * group; statistics that do not depend on order (maxima, minima) are parallel reductions
 * when a group is the whole tensor. The one thing allowed to differ is a NaN's payload:
 * CUDA arithmetic returns the canonical NaN where x86 passes an operand's payload through.
 */
#include "bl-cuda-kernels-private.h"

#include <math.h>

#include <cub/device/device_radix_sort.cuh>

#define NAN_F (__uint_as_float (0x7fc00000u))   /* glibc's NAN, the reference's constant */
#define INF_F (__uint_as_float (0x7f800000u))

#define CLIP_GRID 100
#define CLIP_STEPS 80
#define TERNARY_EPS 1e-5f

/* ------------------------------------------------------------------------------------------ */
/* small helpers (bl-format-traits.c, bl-format-scale.h) */

static __device__ __forceinline__ uint32_t
fbits (float x)
{
  return __float_as_uint (x);
}

static __device__ __forceinline__ float
ffrom (uint32_t u)
{
  return __uint_as_float (u);
}

static __device__ __forceinline__ float
clampf (float v,
        float lo,
        float hi)
{
  return v < lo ? lo : (v > hi ? hi : v);
}

static __device__ __forceinline__ float
nan_to_zero (float v)
{
  return v == v ? v : 0.0f;
}

/* bl_scale_rne: adding 1.5·2^23 rounds to an integer with round-to-nearest-even */
static __device__ __forceinline__ float
rne (float v)
{
  return __fsub_rn (__fadd_rn (v, 12582912.0f), 12582912.0f);
}

static __device__ __forceinline__ float
shrink_f (double shrink)
{
  return __double2float_rn (shrink);
}

/* round_int */
static __device__ float
round_int (float    v,
           int      mode,
           uint64_t random)
{
  float t, f;

  if (v != v)
    return 0.0f;
  switch (mode)
    {
    case BL_CUDA_ROUND_AWAY:
      t = truncf (v);
      if (fabsf (__fsub_rn (v, t)) >= 0.5f)
        t = __fadd_rn (t, v < 0 ? -1.0f : 1.0f);
      return __fadd_rn (t, 0.0f);
    case BL_CUDA_ROUND_ZERO:
      return __fadd_rn (truncf (v), 0.0f);
    case BL_CUDA_ROUND_UP:
      f = floorf (v);
      return __fadd_rn (__fsub_rn (v, f) >= 0.5f ? __fadd_rn (f, 1.0f) : f, 0.0f);
    case BL_CUDA_ROUND_STOCHASTIC:
      f = floorf (v);
      if ((random >> 32) < (uint64_t) ldexp ((double) __fsub_rn (v, f), 32))
        f = __fadd_rn (f, 1.0f);
      return __fadd_rn (f, 0.0f);
    case BL_CUDA_ROUND_RNE:
    default:
      return rne (v);
    }
}

static __device__ __forceinline__ uint64_t
element_random (const BlCudaFormat *f,
                uint64_t            index)
{
  return f->rounding == BL_CUDA_ROUND_STOCHASTIC ? bl_random_u64 (f->seed, index) : 0;
}

static __device__ __forceinline__ int
sign_extend (uint32_t code,
             int      bits)
{
  return (int) (code ^ (1u << (bits - 1))) - (1 << (bits - 1));
}

/* ------------------------------------------------------------------------------------------ */
/* element codecs (bl-format-codecs.c) */

/* bl_fp_decode */
static __device__ float
fp_decode (const BlCudaFp *fmt,
           uint32_t        code)
{
  uint32_t emask = (1u << fmt->ebits) - 1;
  uint32_t mmask = (1u << fmt->mbits) - 1;
  uint32_t sign = (code >> (fmt->ebits + fmt->mbits)) & 1;
  uint32_t e = (code >> fmt->mbits) & emask;
  uint32_t m = code & mmask;
  float v;

  if (fmt->specials == BL_CUDA_FP_SPECIALS_IEEE && e == emask)
    {
      if (m != 0)
        return NAN_F;
      return sign ? -INF_F : INF_F;
    }
  if (fmt->specials == BL_CUDA_FP_SPECIALS_FN && e == emask && m == mmask)
    return NAN_F;

  if (e == 0)
    v = ldexpf ((float) m, fmt->emin - fmt->mbits);
  else
    v = ldexpf ((float) ((1u << fmt->mbits) + m), (int) e - fmt->bias - fmt->mbits);
  return sign ? -v : v;
}

/* fp_nan_code */
static __device__ uint32_t
fp_nan_code (const BlCudaFp *fmt,
             uint32_t        xbits)
{
  uint32_t emask = (1u << fmt->ebits) - 1;
  uint32_t mmask = (1u << fmt->mbits) - 1;

  switch (fmt->specials)
    {
    case BL_CUDA_FP_SPECIALS_FN:
      return (emask << fmt->mbits) | mmask;
    case BL_CUDA_FP_SPECIALS_IEEE:
      if (1 + fmt->ebits + fmt->mbits <= 8)
        return (emask << fmt->mbits) | mmask;
      return ((xbits >> 31) << (fmt->ebits + fmt->mbits)) | (emask << fmt->mbits)
             | ((xbits & 0x7fffff) >> (23 - fmt->mbits)) | (1u << (fmt->mbits - 1));
    case BL_CUDA_FP_SPECIALS_NONE:
    default:
      return fmt->max_code;
    }
}

/* fp_overflow_code */
static __device__ uint32_t
fp_overflow_code (const BlCudaFp *fmt,
                  uint32_t        sign_bit,
                  int             saturate)
{
  uint32_t emask = (1u << fmt->ebits) - 1;
  uint32_t mmask = (1u << fmt->mbits) - 1;

  if (saturate || fmt->specials == BL_CUDA_FP_SPECIALS_NONE)
    return sign_bit | fmt->max_code;
  if (fmt->specials == BL_CUDA_FP_SPECIALS_IEEE)
    return sign_bit | (emask << fmt->mbits);
  return sign_bit | (emask << fmt->mbits) | mmask;
}

/* bl_fp_encode: on the integer significand, every rounding decision explicit */
static __device__ uint32_t
fp_encode (const BlCudaFp *fmt,
           float           x,
           int             rounding,
           int             saturate,
           uint64_t        random)
{
  uint32_t xbits = fbits (x);
  uint32_t sign_bit = (xbits >> 31) << (fmt->ebits + fmt->mbits);
  uint32_t absx = xbits & 0x7fffffffu;
  uint32_t sig;
  int e, qe, shift, exp_field;
  uint64_t n, rem, half;
  int up;
  uint32_t mag;

  if (absx > 0x7f800000u)
    return fp_nan_code (fmt, xbits);
  if (absx == 0x7f800000u)
    return fp_overflow_code (fmt, sign_bit, saturate);
  if (absx == 0)
    return sign_bit;

  if (absx >= 0x00800000u)
    {
      e = (int) (absx >> 23) - 127;
      sig = (absx & 0x7fffffu) | 0x800000u;
    }
  else
    {
      e = -126;
      sig = absx;
      while (sig < 0x800000u)
        {
          sig <<= 1;
          e--;
        }
    }

  qe = (e < fmt->emin ? fmt->emin : e) - fmt->mbits;
  shift = qe - (e - 23);

  if (shift >= 64)
    {
      n = 0;
      rem = 1;
      half = ~(uint64_t) 0;
    }
  else
    {
      n = (uint64_t) sig >> shift;
      rem = (uint64_t) sig & (((uint64_t) 1 << shift) - 1);
      half = (uint64_t) 1 << (shift - 1);
    }

  switch (rounding)
    {
    case BL_CUDA_ROUND_AWAY:
    case BL_CUDA_ROUND_UP:
      up = rem >= half;
      break;
    case BL_CUDA_ROUND_ZERO:
      up = 0;
      break;
    case BL_CUDA_ROUND_STOCHASTIC:
      if (shift >= 64)
        up = 0;
      else
        up = rem > 0 && (random >> (64 - shift)) < rem;
      break;
    case BL_CUDA_ROUND_RNE:
    default:
      up = rem > half || (rem == half && (n & 1));
      break;
    }
  n += (uint64_t) up;

  if (n == 0)
    return sign_bit;
  if (n >= ((uint64_t) 1 << (fmt->mbits + 1)))
    {
      n >>= 1;
      qe++;
    }
  if (n < ((uint64_t) 1 << fmt->mbits))
    mag = (uint32_t) n;
  else
    {
      exp_field = qe + fmt->mbits + fmt->bias;
      if (exp_field >= (1 << fmt->ebits))
        return fp_overflow_code (fmt, sign_bit, saturate);
      mag = ((uint32_t) exp_field << fmt->mbits) | (uint32_t) (n - ((uint64_t) 1 << fmt->mbits));
    }
  if (mag > fmt->max_code)
    return fp_overflow_code (fmt, sign_bit, saturate);
  return sign_bit | mag;
}

/* ------------------------------------------------------------------------------------------ */
/* scales (bl-format-scale.h) */

/* bl_scale_f16_encode */
static __device__ uint16_t
f16_encode (float x)
{
  uint32_t u = fbits (x);
  uint32_t sign = (u >> 16) & 0x8000u;
  uint32_t a = u & 0x7fffffffu;

  if (a > 0x7f800000u)
    return (uint16_t) (sign | 0x7c00u | ((a & 0x7fffffu) >> 13) | 0x200u);
  if (a >= 0x47800000u)
    return (uint16_t) (sign | 0x7c00u);
  if (a < 0x38800000u)
    {
      float f = __fadd_rn (ffrom (a), 0.5f);

      return (uint16_t) (sign | (fbits (f) - 0x3f000000u));
    }
  a += 0xc8000fffu + ((a >> 13) & 1u);
  return (uint16_t) (sign | (a >> 13));
}

/* bl_scale_f16_decode */
static __device__ float
f16_decode (uint16_t h)
{
  uint32_t o = ((uint32_t) h & 0x7fffu) << 13;
  uint32_t exp = o & 0x0f800000u;
  float f;

  if (exp == 0x0f800000u)
    {
      if (o & 0x7fffffu)
        return NAN_F;
      return (h & 0x8000u) ? -INF_F : INF_F;
    }
  if (exp == 0)
    f = __fsub_rn (ffrom (o + 0x38800000u), 6.103515625e-05f);
  else
    f = ffrom (o + 0x38000000u);
  return ffrom (fbits (f) | (((uint32_t) h & 0x8000u) << 16));
}

/* bl_scale_bf16_encode */
static __device__ uint16_t
bf16_encode (float x)
{
  uint32_t u = fbits (x);

  if ((u & 0x7fffffffu) > 0x7f800000u)
    return (uint16_t) ((u >> 16) | 0x40u);
  return (uint16_t) ((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

/* bl_scale_e8m0_decode */
static __device__ float
e8m0_decode (uint8_t code)
{
  if (code == 0xff)
    return NAN_F;
  if (code == 0)
    return ffrom (0x00400000u);
  return ffrom ((uint32_t) code << 23);
}

/* bl_scale_e4m3_encode_normal */
static __device__ __forceinline__ uint8_t
e4m3_encode_normal (float v)
{
  uint32_t a = fbits (v);

  return (uint8_t) (((a + 0x7ffffu + ((a >> 20) & 1u)) >> 20) - (120u << 3));
}

/* bl_scale_e4m3_decode_normal */
static __device__ __forceinline__ float
e4m3_decode_normal (uint8_t code)
{
  return ffrom (((uint32_t) code + (120u << 3)) << 20);
}

/* bl_ue4m3_decode: the E4M3FN value of the low 7 bits (bl_fp_decode of E4M3) */
static __device__ float
ue4m3_decode (uint32_t code)
{
  uint32_t c = code & 0x7f;
  uint32_t e = c >> 3;
  uint32_t m = c & 7;

  if (e == 15 && m == 7)
    return NAN_F;
  if (e == 0)
    return ldexpf ((float) m, -6 - 3);
  return ldexpf ((float) (8 + m), (int) e - 7 - 3);
}

/* bl_scale_store */
static __device__ float
scale_store (int       type,
             float     value,
             uint32_t *code)
{
  switch (type)
    {
    case BL_CUDA_SCALE_F16:
      *code = f16_encode (clampf (value, -65504.0f, 65504.0f));
      return f16_decode ((uint16_t) *code);
    case BL_CUDA_SCALE_BF16:
      *code = bf16_encode (clampf (value, -3.3895313892515355e38f, 3.3895313892515355e38f));
      return ffrom (*code << 16);
    case BL_CUDA_SCALE_E8M0:
    case BL_CUDA_SCALE_UE4M3:
    case BL_CUDA_SCALE_F32:
    default:
      *code = fbits (value);
      return value;
    }
}

/* bl_format_load_scale */
static __device__ float
load_scale (int      type,
            uint32_t code)
{
  switch (type)
    {
    case BL_CUDA_SCALE_F16:
      return f16_decode ((uint16_t) code);
    case BL_CUDA_SCALE_BF16:
      return ffrom (code << 16);
    case BL_CUDA_SCALE_E8M0:
      return e8m0_decode ((uint8_t) code);
    case BL_CUDA_SCALE_UE4M3:
      return ue4m3_decode (code);
    case BL_CUDA_SCALE_F32:
    default:
      return ffrom (code);
    }
}

/* bl_scale_mx_code */
static __device__ uint8_t
mx_code (int   rule,
         int   emax,
         int   mbits,
         float max_pos,
         float amax)
{
  uint32_t b = fbits (amax) & 0x7fffffffu;
  int e;

  if (amax != amax)
    return 0xff;
  switch (rule)
    {
    case BL_CUDA_SCALE_RULE_CEIL:
      e = (int) (b >> 23) - 127 + ((b & 0x7fffffu) != 0) - emax;
      break;
    case BL_CUDA_SCALE_RULE_EVEN:
      b = (b + (1u << (23 - mbits - 1))) & 0x7f800000u;
      e = (int) (b >> 23) - 127 - emax;
      break;
    case BL_CUDA_SCALE_RULE_RCEIL:
      {
        float d = __fdiv_rn (amax, max_pos);
        uint32_t db = fbits (d);

        if (d == 0.0f)
          e = -127;
        else if (db >= 0x00800000u)
          e = (int) (db >> 23) - 127 + ((db & 0x7fffffu) != 0);
        else
          {
            int msb = 31 - __clz ((int) db);

            e = msb - 149 + ((db & (db - 1)) != 0);
          }
      }
      break;
    case BL_CUDA_SCALE_RULE_FLOOR:
    default:
      e = (int) (b >> 23) - 127 - emax;
      break;
    }
  if (e < -127)
    e = -127;
  if (e > 127)
    return 0xff;
  return (uint8_t) (e + 127);
}

/* bl_scale_nv_block */
static __device__ float
nv_block (float     amax,
          float     qmax,
          float     tensor_scale,
          uint32_t *code)
{
  float scaled;

  if (tensor_scale == 0.0f)
    {
      *code = 0;
      return 0.0f;
    }
  scaled = clampf (__fdiv_rn (__fdiv_rn (amax, qmax), tensor_scale), 0.015625f, 448.0f);
  if (!(scaled == scaled))
    {
      *code = 0x7f;
      return NAN_F;
    }
  *code = e4m3_encode_normal (scaled);
  return __fmul_rn (tensor_scale, e4m3_decode_normal ((uint8_t) *code));
}

/* ------------------------------------------------------------------------------------------ */
/* group statistics, in the reference's order */

/* amax_loop: the largest |x| bit pattern (NaN wins over Inf) */
static __device__ float
amax_seq (const float *x,
          int64_t      n)
{
  uint32_t m = 0;

  for (int64_t i = 0; i < n; i++)
    {
      uint32_t b = fbits (x[i]) & 0x7fffffffu;

      m = b > m ? b : m;
    }
  return ffrom (m);
}

/* minmax_loop: NaNs skipped unless @start is one. The reference's vector lanes may meet
 * equal values in another order; only the sign of a zero could differ, and neither caller
 * can tell (the start is +0, which no −0 replaces, or the result is only used as hi − lo
 * with hi > 0). */
static __device__ void
minmax_seq (const float *x,
            int64_t      n,
            float        start,
            float       *out_lo,
            float       *out_hi)
{
  float lo = start, hi = start;

  for (int64_t i = 0; i < n; i++)
    {
      lo = x[i] < lo ? x[i] : lo;
      hi = x[i] > hi ? x[i] : hi;
    }
  *out_lo = lo;
  *out_hi = hi;
}

/* sum_abs: eight double accumulators, element i into accumulator i mod 8, combined pairwise */
static __device__ double
sum_abs_seq (const float *x,
             int64_t      n)
{
  double acc[8] = { 0, 0, 0, 0, 0, 0, 0, 0 };

  for (int64_t i = 0; i < n; i++)
    acc[i % 8] = __dadd_rn (acc[i % 8], (double) fabsf (x[i]));
  return __dadd_rn (__dadd_rn (__dadd_rn (acc[0], acc[1]), __dadd_rn (acc[2], acc[3])),
                    __dadd_rn (__dadd_rn (acc[4], acc[5]), __dadd_rn (acc[6], acc[7])));
}

/* bl_scale_q4_0_max */
static __device__ float
q4_0_max_seq (const float *x,
              int64_t      n,
              float        amax)
{
  float best = 0.0f, vmax = 0.0f;

  if (amax == amax)
    {
      if (amax == 0.0f)
        return 0.0f;
      for (int64_t i = 0; i < n; i++)
        if (fabsf (x[i]) == amax)
          return x[i];
    }
  for (int64_t i = 0; i < n; i++)
    if (best < fabsf (x[i]))
      {
        best = fabsf (x[i]);
        vmax = x[i];
      }
  return vmax;
}

/* lower_median: quickselect, exactly the reference's, so that NaNs land where they land there */
static __device__ float
lower_median (float   *buf,
              int64_t  n)
{
  int64_t k = (n - 1) / 2, lo = 0, hi = n - 1;

  while (hi > lo)
    {
      float pivot = buf[lo + (hi - lo) / 2];
      int64_t i = lo, j = hi;

      while (i <= j)
        {
          while (buf[i] < pivot)
            i++;
          while (buf[j] > pivot)
            j--;
          if (i <= j)
            {
              float t = buf[i];

              buf[i] = buf[j];
              buf[j] = t;
              i++;
              j--;
            }
        }
      if (k <= j)
        hi = j;
      else if (k >= i)
        lo = i;
      else
        break;
    }
  return buf[k];
}

/* phase_code (complex-2bit) */
static __device__ __forceinline__ int
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

/* grid_nearest (BitMoD) */
static __device__ __forceinline__ int
grid_nearest (const float *grid,
              int          n_values,
              float        v)
{
  int c = 0;

  for (int k = 0; k + 1 < n_values; k++)
    c += v > __fmul_rn (0.5f, __fadd_rn (grid[k], grid[k + 1]));
  return c;
}

/* Tensor-level statistics, precomputed by parallel reductions when a group is the whole
 * tensor; NULL for ordinary groups, which compute what they need in-thread. */
typedef struct
{
  float amax;
  float lo0;
  float hi0;
  float q4max;
  double sum_abs;
  const uint32_t *sorted_abs; /* |x| bit patterns in ascending order, or NULL */
} Pre;

static __device__ __forceinline__ float
stat_amax (const float *x,
           int64_t      n,
           const Pre   *pre)
{
  return pre != NULL ? pre->amax : amax_seq (x, n);
}

static __device__ __forceinline__ void
stat_minmax0 (const float *x,
              int64_t      n,
              const Pre   *pre,
              float       *lo,
              float       *hi)
{
  if (pre != NULL)
    {
      *lo = pre->lo0;
      *hi = pre->hi0;
    }
  else
    minmax_seq (x, n, 0.0f, lo, hi);
}

static __device__ __forceinline__ double
stat_sum_abs (const float *x,
              int64_t      n,
              const Pre   *pre)
{
  return pre != NULL ? pre->sum_abs : sum_abs_seq (x, n);
}

/* ------------------------------------------------------------------------------------------ */
/* per-family group parameters (the traits' params functions) */

static __device__ void
params_one (const BlCudaFormat *f,
            const float        *x,
            int64_t             n,
            int64_t             g,
            double              shrink,
            float              *scratch,
            const Pre          *pre,
            float               tensor_scale,
            const uint8_t      *selectors,
            BlCudaGroupParams  *p)
{
  p->scale[0] = p->scale[1] = 0.0f;
  p->scale_code[0] = p->scale_code[1] = 0;
  p->zero = 0;
  p->selector = 0;

  switch (f->family)
    {
    case BL_CUDA_FAMILY_INT:
      {
        int b = f->bits;
        float maxq = (float) ((1 << b) - 1);
        float half = (float) (1 << (b - 1));

        switch (f->int_convention)
          {
          case BL_CUDA_INT_GPTQ:
            {
              float amax = __fmul_rn (shrink_f (shrink), stat_amax (x, n, pre));
              float s = __fdiv_rn (__fmul_rn (2.0f, amax), maxq);

              p->scale[0] = scale_store (f->scale_type, s, &p->scale_code[0]);
              p->zero = 1 << (b - 1);
            }
            break;
          case BL_CUDA_INT_Q4_0:
            {
              float vmax = pre != NULL ? pre->q4max : q4_0_max_seq (x, n, amax_seq (x, n));
              float d = __fdiv_rn (__fmul_rn (shrink_f (shrink), vmax), -half);

              p->scale[0] = scale_store (f->scale_type, d, &p->scale_code[0]);
              p->scale[1] = d != 0.0f ? __fdiv_rn (1.0f, d) : 0.0f;
              p->zero = 1 << (b - 1);
            }
            break;
          case BL_CUDA_INT_ASYM:
            {
              float lo, hi, s;

              stat_minmax0 (x, n, pre, &lo, &hi);
              lo = __fmul_rn (lo, shrink_f (shrink));
              hi = __fmul_rn (hi, shrink_f (shrink));
              s = __fdiv_rn (__fsub_rn (hi, lo), maxq);
              p->scale[0] = scale_store (f->scale_type, s, &p->scale_code[0]);
              p->zero = p->scale[0] > 0.0f
                        ? (int) clampf (rne (clampf (__fdiv_rn (-lo, p->scale[0]), 0.0f, maxq)), 0.0f, maxq)
                        : 0;
            }
            break;
          case BL_CUDA_INT_ABSMAX:
          default:
            {
              float amax = __fmul_rn (shrink_f (shrink), stat_amax (x, n, pre));
              float s = __fdiv_rn (amax, __fsub_rn (half, 1.0f));

              p->scale[0] = scale_store (f->scale_type, s, &p->scale_code[0]);
              p->zero = 1 << (b - 1);
            }
            break;
          }
      }
      break;

    case BL_CUDA_FAMILY_FP:
      {
        float amax = __fmul_rn (shrink_f (shrink), stat_amax (x, n, pre));

        p->scale[0] = scale_store (f->scale_type, __fdiv_rn (amax, f->elem.max_finite), &p->scale_code[0]);
      }
      break;

    case BL_CUDA_FAMILY_MXFP:
    case BL_CUDA_FAMILY_MXINT:
      {
        float amax = __fmul_rn (shrink_f (shrink), stat_amax (x, n, pre));

        if (f->family == BL_CUDA_FAMILY_MXINT)
          p->scale_code[0] = mx_code (f->scale_rule, 0, f->bits - 2,
                                      ldexpf ((float) ((1 << (f->bits - 1)) - 1), -(f->bits - 2)), amax);
        else
          p->scale_code[0] = mx_code (f->scale_rule, f->elem.emax, f->elem.mbits, f->elem.max_finite, amax);
        p->scale[0] = e8m0_decode ((uint8_t) p->scale_code[0]);
      }
      break;

    case BL_CUDA_FAMILY_NVFP4:
    case BL_CUDA_FAMILY_NVINT4:
      p->scale[0] = nv_block (__fmul_rn (shrink_f (shrink), stat_amax (x, n, pre)),
                              f->family == BL_CUDA_FAMILY_NVFP4 ? 6.0f : 7.0f, tensor_scale,
                              &p->scale_code[0]);
      break;

    case BL_CUDA_FAMILY_NF4:
      p->scale[0] = scale_store (f->scale_type, __fmul_rn (shrink_f (shrink), stat_amax (x, n, pre)),
                                 &p->scale_code[0]);
      break;

    case BL_CUDA_FAMILY_BINARY:
      p->scale[0] = scale_store (f->scale_type,
                                 n > 0 ? __double2float_rn (__ddiv_rn (stat_sum_abs (x, n, pre), (double) n)) : 0.0f,
                                 &p->scale_code[0]);
      break;

    case BL_CUDA_FAMILY_TERNARY:
      {
        float gamma = 0.0f;

        if (n > 0 && f->ternary_stat == BL_CUDA_TERNARY_MEDIAN && pre != NULL && pre->sorted_abs != NULL)
          {
            /* Without NaNs the lower median is the ((n − 1)/2)-th smallest |x|, whichever
             * way it is found: a radix sort instead of one thread's quickselect of the
             * whole tensor. */
            gamma = ffrom (pre->sorted_abs[(n - 1) / 2]);
          }
        else if (n > 0 && f->ternary_stat == BL_CUDA_TERNARY_MEDIAN)
          {
            for (int64_t i = 0; i < n; i++)
              scratch[i] = fabsf (x[i]);
            gamma = lower_median (scratch, n);
          }
        else if (n > 0)
          gamma = __double2float_rn (__ddiv_rn (stat_sum_abs (x, n, pre), (double) n));
        p->scale[0] = scale_store (f->scale_type, gamma, &p->scale_code[0]);
      }
      break;

    case BL_CUDA_FAMILY_DUAL_BINARY:
      {
        float lo, hi, s, z;

        /* dual_params' loop is minmax_loop's with start 0 */
        stat_minmax0 (x, n, pre, &lo, &hi);
        s = __fdiv_rn (__fsub_rn (hi, lo), 3.0f);
        z = s > 0.0f ? round_int (clampf (__fdiv_rn (-lo, s), 0.0f, 3.0f), BL_CUDA_ROUND_RNE, 0) : 1.0f;
        if (z <= 1.0f)
          {
            p->scale[0] = scale_store (f->scale_type, __fmul_rn (2.0f, s), &p->scale_code[0]);
            p->scale[1] = scale_store (f->scale_type, -s, &p->scale_code[1]);
          }
        else
          {
            p->scale[0] = scale_store (f->scale_type, __fmul_rn (-2.0f, s), &p->scale_code[0]);
            p->scale[1] = scale_store (f->scale_type, s, &p->scale_code[1]);
          }
      }
      break;

    case BL_CUDA_FAMILY_COMPLEX_2BIT:
      {
        double sum_re = 0.0, sum_im = 0.0;
        int64_t n_re = 0, n_im = 0;

        for (int64_t i = 0; i < n; i += 2)
          {
            float a = x[i], b = i + 1 < n ? x[i + 1] : 0.0f;
            int c = phase_code (a, b);

            if (c < 2)
              {
                sum_re = __dadd_rn (sum_re, (double) fabsf (a));
                n_re++;
              }
            else
              {
                sum_im = __dadd_rn (sum_im, (double) fabsf (b));
                n_im++;
              }
          }
        p->scale[0] = scale_store (f->scale_type, n_re ? __double2float_rn (__ddiv_rn (sum_re, (double) n_re)) : 0.0f,
                                   &p->scale_code[0]);
        p->scale[1] = scale_store (f->scale_type, n_im ? __double2float_rn (__ddiv_rn (sum_im, (double) n_im)) : 0.0f,
                                   &p->scale_code[1]);
      }
      break;

    case BL_CUDA_FAMILY_BITMOD:
      {
        float amax = __fmul_rn (shrink_f (shrink), stat_amax (x, n, pre));
        double best_err = (double) INF_F;
        int nv = f->bitmod_n;

        for (int sel = 0; sel < 4; sel++)
          {
            const float *grid = f->bitmod_grid[sel];
            float g0 = fabsf (grid[0]), g1 = fabsf (grid[nv - 1]);
            float gmax = g0 > g1 ? g0 : g1;
            uint32_t code;
            float s = scale_store (f->scale_type, __fdiv_rn (amax, gmax), &code);
            double err = 0.0;

            for (int64_t i = 0; i < n; i++)
              {
                float q = __fmul_rn (grid[grid_nearest (grid, nv, __fdiv_rn (x[i], s))], s);
                double d = __dsub_rn ((double) q, (double) x[i]);

                err = __dadd_rn (err, __dmul_rn (d, d));
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
      break;

    case BL_CUDA_FAMILY_INT2_INT4:
      {
        int bits = selectors[g] ? 4 : 2;
        float maxq = (float) ((1 << bits) - 1);
        float lo, hi;

        p->selector = selectors[g];
        minmax_seq (x, n, 0.0f, &lo, &hi);
        lo = __fmul_rn (lo, shrink_f (shrink));
        hi = __fmul_rn (hi, shrink_f (shrink));
        p->scale[0] = scale_store (f->scale_type, __fdiv_rn (__fsub_rn (hi, lo), maxq), &p->scale_code[0]);
        p->zero = p->scale[0] > 0.0f
                  ? (int) clampf (rne (clampf (__fdiv_rn (-lo, p->scale[0]), 0.0f, maxq)), 0.0f, maxq)
                  : 0;
      }
      break;

    case BL_CUDA_FAMILY_BF16:
    case BL_CUDA_FAMILY_FP16:
    default:
      p->scale[0] = 1.0f;
      break;
    }
}

/* ------------------------------------------------------------------------------------------ */
/* per-family element encode and decode (the traits' encode and decode functions) */

/* the code of element @off of a group starting at @xg with @len elements; @index is the
 * element's row-major index in the tensor (the stochastic-rounding key) */
static __device__ uint32_t
encode_one (const BlCudaFormat      *f,
            const BlCudaGroupParams *p,
            const float             *xg,
            int64_t                  off,
            int64_t                  len,
            uint64_t                 index)
{
  float x = xg[off];

  switch (f->family)
    {
    case BL_CUDA_FAMILY_INT:
      {
        int b = f->bits;
        float lo, hi, v, q;

        if (f->int_convention == BL_CUDA_INT_ABSMAX)
          {
            hi = (float) ((1 << (b - 1)) - 1);
            lo = -hi;
          }
        else
          {
            lo = (float) -p->zero;
            hi = (float) ((1 << b) - 1 - p->zero);
          }
        if (f->int_convention == BL_CUDA_INT_Q4_0 && f->rounding == BL_CUDA_ROUND_UP)
          {
            float bias = __fadd_rn ((float) p->zero, 0.5f);
            float maxq = (float) ((1 << b) - 1);

            return (uint16_t) truncf (clampf (nan_to_zero (__fadd_rn (__fmul_rn (x, p->scale[1]), bias)), 0.0f, maxq));
          }
        v = f->int_convention == BL_CUDA_INT_Q4_0 ? __fmul_rn (x, p->scale[1]) : __fdiv_rn (x, p->scale[0]);
        q = round_int (clampf (nan_to_zero (v), lo, hi), f->rounding, element_random (f, index));
        return (uint16_t) ((int) q + p->zero);
      }

    case BL_CUDA_FAMILY_FP:
    case BL_CUDA_FAMILY_MXFP:
      return (uint16_t) fp_encode (&f->elem, __fdiv_rn (x, p->scale[0]), f->rounding, f->saturate,
                                   element_random (f, index));

    case BL_CUDA_FAMILY_MXINT:
      {
        int b = f->bits;
        float qmax = (float) ((1 << (b - 1)) - 1);
        float up = (float) (1 << (b - 2));
        float q = round_int (clampf (nan_to_zero (__fmul_rn (__fdiv_rn (x, p->scale[0]), up)), -qmax, qmax),
                             f->rounding, element_random (f, index));

        return (uint16_t) ((uint32_t) (int) q & ((1u << b) - 1));
      }

    case BL_CUDA_FAMILY_NVFP4:
      return (uint16_t) fp_encode (&f->elem, clampf (__fdiv_rn (x, p->scale[0]), -6.0f, 6.0f), f->rounding, 1,
                                   element_random (f, index));

    case BL_CUDA_FAMILY_NVINT4:
      {
        float q = round_int (clampf (nan_to_zero (__fdiv_rn (x, p->scale[0])), -7.0f, 7.0f), f->rounding,
                             element_random (f, index));

        return (uint16_t) ((uint32_t) (int) q & 0xfu);
      }

    case BL_CUDA_FAMILY_NF4:
      {
        float v = __fdiv_rn (x, p->scale[0]);
        uint32_t c = 0;

        for (int k = 0; k < 15; k++)
          c += v > f->nf4_mids[k];
        return c;
      }

    case BL_CUDA_FAMILY_BINARY:
      return x < 0.0f;

    case BL_CUDA_FAMILY_TERNARY:
      {
        float denom = __fadd_rn (p->scale[0], TERNARY_EPS);
        float q = round_int (clampf (nan_to_zero (__fdiv_rn (x, denom)), -1.0f, 1.0f), f->rounding,
                             element_random (f, index));

        return (uint16_t) ((uint32_t) (int) q & 3u);
      }

    case BL_CUDA_FAMILY_DUAL_BINARY:
      {
        float vals[4];
        int best = 0;
        float best_d;

        for (int c = 0; c < 4; c++)
          vals[c] = __fadd_rn (__fmul_rn ((float) (c & 1), p->scale[0]), __fmul_rn ((float) (c >> 1), p->scale[1]));
        best_d = fabsf (__fsub_rn (x, vals[0]));
        for (int c = 1; c < 4; c++)
          {
            float d = fabsf (__fsub_rn (x, vals[c]));

            if (d < best_d || (d == best_d && fabsf (vals[c]) < fabsf (vals[best])))
              {
                best = c;
                best_d = d;
              }
          }
        return (uint32_t) best;
      }

    case BL_CUDA_FAMILY_COMPLEX_2BIT:
      /* pairs (2k, 2k + 1) of the group: the even element holds "negative", the odd one
       * "imaginary axis" */
      if (off % 2 == 0)
        return (uint32_t) phase_code (x, off + 1 < len ? xg[off + 1] : 0.0f) & 1u;
      return (uint32_t) phase_code (xg[off - 1], x) >> 1;

    case BL_CUDA_FAMILY_BITMOD:
      return (uint32_t) grid_nearest (f->bitmod_grid[p->selector], f->bitmod_n, __fdiv_rn (x, p->scale[0]));

    case BL_CUDA_FAMILY_INT2_INT4:
      {
        int bits = p->selector ? 4 : 2;
        float lo = (float) -p->zero, hi = (float) ((1 << bits) - 1 - p->zero);
        float q = round_int (clampf (nan_to_zero (__fdiv_rn (x, p->scale[0])), lo, hi), f->rounding,
                             element_random (f, index));

        return (uint16_t) ((int) q + p->zero);
      }

    case BL_CUDA_FAMILY_BF16:
    case BL_CUDA_FAMILY_FP16:
    default:
      return (uint16_t) fp_encode (&f->elem, x, f->rounding, f->saturate, element_random (f, index));
    }
}

/* the value of element @off of its group from its @code; complex-2bit also reads its pair's
 * @partner code */
static __device__ float
decode_one (const BlCudaFormat      *f,
            const BlCudaGroupParams *p,
            uint32_t                 code,
            uint32_t                 partner,
            int64_t                  off,
            int64_t                  len)
{
  switch (f->family)
    {
    case BL_CUDA_FAMILY_INT:
    case BL_CUDA_FAMILY_INT2_INT4:
      return __fmul_rn ((float) ((int) code - p->zero), p->scale[0]);
    case BL_CUDA_FAMILY_FP:
    case BL_CUDA_FAMILY_MXFP:
    case BL_CUDA_FAMILY_NVFP4:
      return __fmul_rn (f->elem.table[code], p->scale[0]);
    case BL_CUDA_FAMILY_MXINT:
      return __fmul_rn (__fmul_rn ((float) sign_extend (code, f->bits), ldexpf (1.0f, -(f->bits - 2))), p->scale[0]);
    case BL_CUDA_FAMILY_NVINT4:
      return __fmul_rn ((float) sign_extend (code, 4), p->scale[0]);
    case BL_CUDA_FAMILY_NF4:
      return __fmul_rn (f->nf4_table[code], p->scale[0]);
    case BL_CUDA_FAMILY_BINARY:
      return code ? -p->scale[0] : p->scale[0];
    case BL_CUDA_FAMILY_TERNARY:
      return __fmul_rn ((float) sign_extend (code, 2), p->scale[0]);
    case BL_CUDA_FAMILY_DUAL_BINARY:
      return __fadd_rn (__fmul_rn ((float) (code & 1), p->scale[0]), __fmul_rn ((float) (code >> 1), p->scale[1]));
    case BL_CUDA_FAMILY_COMPLEX_2BIT:
      if (off % 2 == 0)
        {
          int neg = code & 1;
          int imag = off + 1 < len && (partner & 1);

          return imag ? 0.0f : (neg ? -p->scale[0] : p->scale[0]);
        }
      else
        {
          int neg = partner & 1;
          int imag = code & 1;

          return imag ? (neg ? -p->scale[1] : p->scale[1]) : 0.0f;
        }
    case BL_CUDA_FAMILY_BITMOD:
      return __fmul_rn (f->bitmod_grid[p->selector][code], p->scale[0]);
    case BL_CUDA_FAMILY_BF16:
    case BL_CUDA_FAMILY_FP16:
    default:
      return fp_decode (&f->elem, code);
    }
}

/* decode (encode (x)) of one element; complex-2bit encodes the pair partner too */
static __device__ __forceinline__ float
fake_one (const BlCudaFormat      *f,
          const BlCudaGroupParams *p,
          const float             *xg,
          int64_t                  off,
          int64_t                  len,
          uint64_t                 index)
{
  uint32_t code = encode_one (f, p, xg, off, len, index);
  uint32_t partner = 0;

  if (f->family == BL_CUDA_FAMILY_COMPLEX_2BIT)
    {
      if (off % 2 == 0 && off + 1 < len)
        partner = encode_one (f, p, xg, off + 1, len, index + 1);
      else if (off % 2 == 1)
        partner = encode_one (f, p, xg, off - 1, len, index - 1);
    }
  return decode_one (f, p, code, partner, off, len);
}

/* group_sq_error: Σ (decode (encode (x)) − x)² in element order */
static __device__ double
sq_error (const BlCudaFormat      *f,
          const BlCudaGroupParams *p,
          const float             *x,
          int64_t                  n,
          uint64_t                 index0)
{
  double err = 0.0;

  for (int64_t i = 0; i < n; i++)
    {
      float y = fake_one (f, p, x, i, n, index0 + (uint64_t) i);
      double d = __dsub_rn ((double) y, (double) x[i]);

      err = __dadd_rn (err, __dmul_rn (d, d));
    }
  return err;
}

/* group_params: the clip modes around params_one */
static __device__ void
group_params (const BlCudaFormat *f,
              const float        *x,
              int64_t             n,
              int64_t             g,
              uint64_t            index0,
              float              *scratch,
              const Pre          *pre,
              float               tensor_scale,
              const uint8_t      *selectors,
              BlCudaGroupParams  *p)
{
  switch (f->clip)
    {
    case BL_CUDA_CLIP_RATIO:
      params_one (f, x, n, g, f->clip_ratio, scratch, pre, tensor_scale, selectors, p);
      break;
    case BL_CUDA_CLIP_MSE:
      {
        double best = (double) INF_F;

        for (int i = 0; i < CLIP_STEPS; i++)
          {
            BlCudaGroupParams q;
            double err;

            params_one (f, x, n, g, __dsub_rn (1.0, __ddiv_rn ((double) i, (double) CLIP_GRID)), scratch, pre,
                        tensor_scale, selectors, &q);
            err = sq_error (f, &q, x, n, index0);
            if (err < best || i == 0)
              {
                best = err;
                *p = q;
              }
          }
      }
      break;
    case BL_CUDA_CLIP_NONE:
    default:
      params_one (f, x, n, g, 1.0, scratch, pre, tensor_scale, selectors, p);
      break;
    }
}

/* ------------------------------------------------------------------------------------------ */
/* geometry */

typedef struct
{
  int64_t g;                  /* group index */
  int64_t start;              /* element index of the group's first element */
  int64_t off;                /* offset in the group */
  int64_t len;                /* elements in the group */
} Where;

static __device__ __forceinline__ Where
locate (const BlCudaFormat *f,
        int64_t             e)
{
  Where w;

  if (f->tensor_group)
    {
      w.g = 0;
      w.start = 0;
      w.off = e;
      w.len = f->n_rows * f->n_cols;
    }
  else
    {
      int64_t row = e / f->n_cols;
      int64_t col = e - row * f->n_cols;
      int64_t gc = col / f->group_size;
      int64_t col0 = gc * f->group_size;

      w.g = row * f->groups_per_row + gc;
      w.start = row * f->n_cols + col0;
      w.off = col - col0;
      w.len = f->n_cols - col0 < f->group_size ? f->n_cols - col0 : f->group_size;
    }
  return w;
}

static __device__ __forceinline__ Where
locate_group (const BlCudaFormat *f,
              int64_t             g)
{
  Where w;

  if (f->tensor_group)
    {
      w.g = 0;
      w.start = 0;
      w.len = f->n_rows * f->n_cols;
    }
  else
    {
      int64_t row = g / f->groups_per_row;
      int64_t col0 = (g - row * f->groups_per_row) * f->group_size;

      w.g = g;
      w.start = row * f->n_cols + col0;
      w.len = f->n_cols - col0 < f->group_size ? f->n_cols - col0 : f->group_size;
    }
  w.off = 0;
  return w;
}

static unsigned int
blocks_for (int64_t n,
            int     threads)
{
  int64_t b = (n + threads - 1) / threads;

  return (unsigned int) (b < 1 ? 1 : (b > (1 << 20) ? (1 << 20) : b));
}

/* ------------------------------------------------------------------------------------------ */
/* tensor-level statistics */

typedef struct
{
  unsigned int amax_bits;           /* largest |x| bit pattern, NaN included */
  unsigned int amax_nonnan_bits;    /* the same over the non-NaN values */
  unsigned int lo_key;              /* order keys of min and max over non-NaN values and +0 */
  unsigned int hi_key;
  unsigned long long first;         /* Q4_0: first index holding the largest |x| */
  double acc[8];                    /* sum_abs accumulators */
  Pre pre;
} TensorStats;

/* a key whose unsigned order is the float order; −0 is folded into +0 before, so that a
 * reduction's zero is +0, the start value minmax_loop never replaces by −0 */
static __device__ __forceinline__ unsigned int
order_key (float v)
{
  uint32_t u = fbits (v);

  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

static __device__ __forceinline__ float
order_value (unsigned int k)
{
  return ffrom ((k & 0x80000000u) ? (k & 0x7fffffffu) : ~k);
}

static __global__ void
stats_init_kernel (TensorStats *st)
{
  st->amax_bits = 0;
  st->amax_nonnan_bits = 0;
  st->lo_key = order_key (0.0f);
  st->hi_key = order_key (0.0f);
  st->first = ~0ull;
  for (int k = 0; k < 8; k++)
    st->acc[k] = 0.0;
}

static __global__ void
stats_reduce_kernel (const float *x,
                     int64_t      n,
                     TensorStats *st)
{
  unsigned int amax = 0, nonnan = 0, lo = order_key (0.0f), hi = order_key (0.0f);

  for (int64_t i = blockIdx.x * (int64_t) blockDim.x + threadIdx.x; i < n; i += (int64_t) gridDim.x * blockDim.x)
    {
      float v = x[i];
      unsigned int b = fbits (v) & 0x7fffffffu;

      amax = b > amax ? b : amax;
      if (b <= 0x7f800000u)
        {
          unsigned int k = order_key (v == 0.0f ? 0.0f : v);

          nonnan = b > nonnan ? b : nonnan;
          lo = k < lo ? k : lo;
          hi = k > hi ? k : hi;
        }
    }
  amax = __reduce_max_sync (0xffffffffu, amax);
  nonnan = __reduce_max_sync (0xffffffffu, nonnan);
  lo = __reduce_min_sync (0xffffffffu, lo);
  hi = __reduce_max_sync (0xffffffffu, hi);
  if (threadIdx.x % 32 == 0)
    {
      atomicMax (&st->amax_bits, amax);
      atomicMax (&st->amax_nonnan_bits, nonnan);
      atomicMin (&st->lo_key, lo);
      atomicMax (&st->hi_key, hi);
    }
}

/* the first index whose |x| is bl_scale_q4_0_max's target: amax, or the largest non-NaN
 * |x| when amax is NaN */
static __global__ void
stats_first_kernel (const float *x,
                    int64_t      n,
                    TensorStats *st)
{
  unsigned int target = st->amax_bits > 0x7f800000u ? st->amax_nonnan_bits : st->amax_bits;
  unsigned long long first = ~0ull;

  if (target == 0)
    return;
  for (int64_t i = blockIdx.x * (int64_t) blockDim.x + threadIdx.x; i < n; i += (int64_t) gridDim.x * blockDim.x)
    if ((fbits (x[i]) & 0x7fffffffu) == target)
      {
        first = (unsigned long long) i;
        break;
      }
  for (int o = 16; o > 0; o /= 2)
    {
      unsigned long long other = __shfl_down_sync (0xffffffffu, first, o);

      first = other < first ? other : first;
    }
  if (threadIdx.x % 32 == 0 && first != ~0ull)
    atomicMin (&st->first, first);
}

/* sum_abs over the whole tensor: thread k owns accumulator k and adds its elements in the
 * reference's order */
static __global__ void
stats_sum_abs_kernel (const float *x,
                      int64_t      n,
                      TensorStats *st)
{
  int k = threadIdx.x;
  double acc = 0.0;

  for (int64_t i = k; i < n; i += 8)
    acc = __dadd_rn (acc, (double) fabsf (x[i]));
  st->acc[k] = acc;
}

static __global__ void
abs_keys_kernel (const float *x,
                 int64_t      n,
                 uint32_t    *keys)
{
  for (int64_t i = blockIdx.x * (int64_t) blockDim.x + threadIdx.x; i < n; i += (int64_t) gridDim.x * blockDim.x)
    keys[i] = fbits (x[i]) & 0x7fffffffu;
}

static __global__ void
stats_finish_kernel (const float    *x,
                     TensorStats    *st,
                     float           nv_qmax,
                     float          *tensor_scale,
                     const uint32_t *sorted)
{
  unsigned int target = st->amax_bits > 0x7f800000u ? st->amax_nonnan_bits : st->amax_bits;
  const double *a = st->acc;

  /* the sorted keys stand in for the quickselect only when no NaN can reorder it */
  st->pre.sorted_abs = st->amax_bits <= 0x7f800000u ? sorted : NULL;

  st->pre.amax = ffrom (st->amax_bits);
  st->pre.lo0 = order_value (st->lo_key);
  st->pre.hi0 = order_value (st->hi_key);
  st->pre.q4max = target == 0 || st->first == ~0ull ? 0.0f : x[st->first];
  st->pre.sum_abs = __dadd_rn (__dadd_rn (__dadd_rn (a[0], a[1]), __dadd_rn (a[2], a[3])),
                               __dadd_rn (__dadd_rn (a[4], a[5]), __dadd_rn (a[6], a[7])));
  /* nv_prepare: s_T = amax_tensor / (448 · Qmax) */
  if (nv_qmax > 0.0f)
    *tensor_scale = __fdiv_rn (st->pre.amax, __fmul_rn (448.0f, nv_qmax));
}

/* ------------------------------------------------------------------------------------------ */
/* int2+int4: rank the groups by range (mixed_prepare) */

typedef struct
{
  float range;
  int64_t index;
} GroupRange;

static __device__ __forceinline__ int
range_before (const GroupRange *a,
              const GroupRange *b)
{
  if (a->range != b->range)
    return a->range > b->range;
  return a->index < b->index;
}

static __global__ void
ranges_kernel (const BlCudaFormat *f,
               const float        *x,
               GroupRange         *ranges)
{
  for (int64_t g = blockIdx.x * (int64_t) blockDim.x + threadIdx.x; g < f->n_groups;
       g += (int64_t) gridDim.x * blockDim.x)
    {
      Where w = locate_group (f, g);
      float lo, hi;

      minmax_seq (x + w.start, w.len, x[w.start], &lo, &hi);
      ranges[g].range = __fsub_rn (hi, lo);
      ranges[g].index = g;
    }
}

/* select_top and the selector/slot bookkeeping, on one thread in the reference's order */
static __global__ void
select_kernel (GroupRange *r,
               int64_t     n,
               int64_t     k,
               uint8_t    *selectors,
               int64_t    *slots,
               int64_t    *slot_groups)
{
  int64_t lo = 0, hi = n - 1, count = 0;

  while (lo < hi && k > 0 && k < n)
    {
      GroupRange pivot = r[lo + (hi - lo) / 2];
      int64_t i = lo, j = hi;

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
      if (k - 1 <= j)
        hi = j;
      else if (k - 1 >= i)
        lo = i;
      else
        break;
    }
  for (int64_t s = 0; s < k; s++)
    selectors[r[s].index] = 1;
  for (int64_t g = 0; g < n; g++)
    {
      if (selectors[g])
        {
          slots[g] = count;
          slot_groups[count++] = g;
        }
      else
        slots[g] = -1;
    }
}

size_t
bl_cuda_format_stats_size (void)
{
  return sizeof (TensorStats);
}

size_t
bl_cuda_format_sort_temp_size (int64_t n)
{
  size_t bytes = 0;

  cub::DeviceRadixSort::SortKeys (NULL, bytes, (const uint32_t *) NULL, (uint32_t *) NULL, (int) n);
  return bytes;
}

cudaError_t
bl_cuda_launch_format_prepare (const BlCudaFormat        *f,
                               const float               *x,
                               int64_t                    n4,
                               const BlCudaFormatScratch *s,
                               cudaStream_t               stream)
{
  int64_t n = f->n_rows * f->n_cols;
  int nv = f->family == BL_CUDA_FAMILY_NVFP4 || f->family == BL_CUDA_FAMILY_NVINT4;
  float nv_qmax = nv ? (f->family == BL_CUDA_FAMILY_NVFP4 ? 6.0f : 7.0f) : 0.0f;
  TensorStats *st = (TensorStats *) s->stats;

  if (f->tensor_group || nv)
    {
      BL_CUDA_LAUNCH (stats_init_kernel, 1, 1, stream) (st);
      BL_CUDA_LAUNCH (stats_reduce_kernel, blocks_for (n, 256), 256, stream) (x, n, st);
      if (f->tensor_group && f->family == BL_CUDA_FAMILY_INT && f->int_convention == BL_CUDA_INT_Q4_0)
        BL_CUDA_LAUNCH (stats_first_kernel, blocks_for (n, 256), 256, stream) (x, n, st);
      if (f->tensor_group &&
          (f->family == BL_CUDA_FAMILY_BINARY ||
           (f->family == BL_CUDA_FAMILY_TERNARY && f->ternary_stat == BL_CUDA_TERNARY_ABSMEAN)))
        BL_CUDA_LAUNCH (stats_sum_abs_kernel, 1, 8, stream) (x, n, st);
      if (s->sorted != NULL)
        {
          size_t bytes = s->sort_temp_bytes;
          cudaError_t err;

          BL_CUDA_LAUNCH (abs_keys_kernel, blocks_for (n, 256), 256, stream) (x, n, s->abs_keys);
          err = cub::DeviceRadixSort::SortKeys (s->sort_temp, bytes, (const uint32_t *) s->abs_keys, s->sorted,
                                                (int) n, 0, 32, stream);
          if (err != cudaSuccess)
            return err;
        }
      BL_CUDA_LAUNCH (stats_finish_kernel, 1, 1, stream) (x, st, nv_qmax, s->tensor_scale, s->sorted);
    }
  if (f->family == BL_CUDA_FAMILY_INT2_INT4)
    {
      cudaError_t err = cudaMemsetAsync (s->selectors, 0, (size_t) f->n_groups, stream);

      if (err != cudaSuccess)
        return err;
      BL_CUDA_LAUNCH (ranges_kernel, blocks_for (f->n_groups, 128), 128, stream) (s->format, x,
                                                                                 (GroupRange *) s->ranking);
      BL_CUDA_LAUNCH (select_kernel, 1, 1, stream) ((GroupRange *) s->ranking, f->n_groups, n4, s->selectors,
                                                    s->slots, s->slot_groups);
    }
  return cudaGetLastError ();
}

/* ------------------------------------------------------------------------------------------ */
/* group parameters and fake-quant */

static __global__ void
params_kernel (const BlCudaFormat *f,
               const float        *x,
               BlCudaFormatScratch s)
{
  const TensorStats *st = (const TensorStats *) s.stats;
  int nv = f->family == BL_CUDA_FAMILY_NVFP4 || f->family == BL_CUDA_FAMILY_NVINT4;
  float tensor_scale = nv ? *s.tensor_scale : 1.0f;

  for (int64_t g = blockIdx.x * (int64_t) blockDim.x + threadIdx.x; g < f->n_groups;
       g += (int64_t) gridDim.x * blockDim.x)
    {
      Where w = locate_group (f, g);

      group_params (f, x + w.start, w.len, g, (uint64_t) w.start, s.scratch != NULL ? s.scratch + w.start : NULL,
                    f->tensor_group ? &st->pre : NULL, tensor_scale, s.selectors, &s.params[g]);
    }
}

cudaError_t
bl_cuda_launch_format_params (const BlCudaFormat        *f,
                              const float               *x,
                              const BlCudaFormatScratch *s,
                              cudaStream_t               stream)
{
  BL_CUDA_LAUNCH (params_kernel, blocks_for (f->n_groups, 64), 64, stream) (s->format, x, *s);
  return cudaGetLastError ();
}

static __global__ void
fake_kernel (const BlCudaFormat       *f,
             const float              *x,
             float                    *y,
             const BlCudaGroupParams  *params)
{
  int64_t n = f->n_rows * f->n_cols;

  for (int64_t e = blockIdx.x * (int64_t) blockDim.x + threadIdx.x; e < n; e += (int64_t) gridDim.x * blockDim.x)
    {
      Where w = locate (f, e);
      BlCudaGroupParams p = params[w.g];

      y[e] = fake_one (f, &p, x + w.start, w.off, w.len, (uint64_t) e);
    }
}

cudaError_t
bl_cuda_launch_format_fake (const BlCudaFormat        *f,
                            const float               *x,
                            float                     *y,
                            const BlCudaFormatScratch *s,
                            cudaStream_t               stream)
{
  int64_t n = f->n_rows * f->n_cols;

  BL_CUDA_LAUNCH (fake_kernel, blocks_for (n, 256), 256, stream) (s->format, x, y, s->params);
  return cudaGetLastError ();
}

/* ------------------------------------------------------------------------------------------ */
/* packing (write_group, write_codes) */

enum { SECTION_CODES, SECTION_SCALES, SECTION_ZEROS, SECTION_SELECTORS, SECTION_EXTRA };

static __device__ uint32_t
field_value (const BlCudaFormat      *f,
             int                      section,
             int64_t                  i,
             const float             *x,
             const BlCudaGroupParams *params,
             const int64_t           *slot_groups)
{
  switch (section)
    {
    case SECTION_CODES:
      {
        Where w = locate (f, i);

        return encode_one (f, &params[w.g], x + w.start, w.off, w.len, (uint64_t) i);
      }
    case SECTION_SCALES:
      return params[i / f->scales_per_group].scale_code[i % f->scales_per_group];
    case SECTION_ZEROS:
      return (uint32_t) params[i].zero;
    case SECTION_SELECTORS:
      return (uint32_t) params[i].selector;
    case SECTION_EXTRA:
    default:
      {
        int64_t slot = i / f->group_size;
        int64_t off = i - slot * f->group_size;
        Where w = locate_group (f, slot_groups[slot]);

        if (off >= w.len)
          return 0;
        return encode_one (f, &params[w.g], x + w.start, off, w.len, (uint64_t) (w.start + off)) >> 2;
      }
    }
}

/* Each thread writes whole bytes of an LSB-first stream of @n_fields fields of @width bits:
 * no two threads touch one byte, so the stream needs no atomics. */
static __global__ void
pack_kernel (const BlCudaFormat      *f,
             int                      section,
             int                      width,
             int64_t                  n_fields,
             uint64_t                 n_bytes,
             uint8_t                 *out,
             const float             *x,
             const BlCudaGroupParams *params,
             const int64_t           *slot_groups)
{
  uint32_t mask = width == 32 ? 0xffffffffu : (1u << width) - 1u;

  for (uint64_t byte = blockIdx.x * (uint64_t) blockDim.x + threadIdx.x; byte < n_bytes;
       byte += (uint64_t) gridDim.x * blockDim.x)
    {
      uint64_t bit0 = byte * 8;
      int64_t first = (int64_t) (bit0 / (uint64_t) width);
      int64_t last = (int64_t) ((bit0 + 7) / (uint64_t) width);
      uint32_t v = 0;

      if (last > n_fields - 1)
        last = n_fields - 1;
      for (int64_t i = first; i <= last; i++)
        {
          uint64_t value = field_value (f, section, i, x, params, slot_groups) & mask;
          uint64_t pos = (uint64_t) i * (uint64_t) width;

          v |= (uint32_t) ((pos >= bit0 ? value << (pos - bit0) : value >> (bit0 - pos)) & 0xffu);
        }
      out[byte] = (uint8_t) v;
    }
}

static cudaError_t
pack_section (int                        section,
              int                        width,
              int64_t                    n_fields,
              uint64_t                   offset,
              uint64_t                   n_bytes,
              uint8_t                   *packed,
              const float               *x,
              const BlCudaFormatScratch *s,
              cudaStream_t               stream)
{
  if (n_fields <= 0 || width <= 0 || n_bytes == 0)
    return cudaSuccess;
  BL_CUDA_LAUNCH (pack_kernel, blocks_for ((int64_t) n_bytes, 256), 256, stream) (s->format, section, width,
                                                                                   n_fields, n_bytes, packed + offset,
                                                                                   x, s->params, s->slot_groups);
  return cudaGetLastError ();
}

cudaError_t
bl_cuda_launch_format_pack (const BlCudaFormat        *f,
                            const BlPackedHeader      *h,
                            const float               *x,
                            int64_t                    n4,
                            uint8_t                   *packed,
                            const BlCudaFormatScratch *s,
                            cudaStream_t               stream)
{
  cudaError_t err;
  int64_t n = f->n_rows * f->n_cols;

  if ((err = pack_section (SECTION_CODES, f->elem_bits, n, h->codes_offset, h->codes_bytes, packed, x, s,
                           stream)) != cudaSuccess ||
      (err = pack_section (SECTION_SCALES, f->scale_bits, f->n_groups * f->scales_per_group, h->scales_offset,
                           h->scales_bytes, packed, x, s, stream)) != cudaSuccess ||
      (err = pack_section (SECTION_ZEROS, f->zero_bits, f->n_groups, h->zeros_offset, h->zeros_bytes, packed, x, s,
                           stream)) != cudaSuccess ||
      (err = pack_section (SECTION_SELECTORS, f->selector_bits, f->n_groups, h->selectors_offset,
                           h->selectors_bytes, packed, x, s, stream)) != cudaSuccess)
    return err;
  if (f->family == BL_CUDA_FAMILY_INT2_INT4)
    return pack_section (SECTION_EXTRA, 2, n4 * f->group_size, h->extra_offset, h->extra_bytes, packed, x, s,
                         stream);
  return cudaSuccess;
}

/* ------------------------------------------------------------------------------------------ */
/* unpacking (read_params, read_codes) */

typedef struct
{
  uint64_t codes;
  uint64_t scales;
  uint64_t zeros;
  uint64_t selectors;
  uint64_t extra;
  float tensor_scale;
} Sections;

static __device__ uint32_t
get_scale (const uint8_t *section,
           uint64_t       index,
           int            scale_bits)
{
  if (scale_bits == 32)
    {
      const uint8_t *b = section + index * 4;

      return (uint32_t) b[0] | ((uint32_t) b[1] << 8) | ((uint32_t) b[2] << 16) | ((uint32_t) b[3] << 24);
    }
  return bl_bits_get (section, index, (unsigned) scale_bits);
}

static __device__ void
read_params (const BlCudaFormat *f,
             const uint8_t      *packed,
             Sections            sec,
             int64_t             g,
             BlCudaGroupParams  *p)
{
  p->scale[1] = 0.0f;
  p->scale_code[1] = 0;
  for (int k = 0; k < f->scales_per_group; k++)
    {
      p->scale_code[k] = get_scale (packed + sec.scales, (uint64_t) g * (uint64_t) f->scales_per_group + (uint64_t) k,
                                    f->scale_bits);
      p->scale[k] = load_scale (f->scale_type, p->scale_code[k]);
    }
  if (f->zero_bits > 0)
    p->zero = (int) bl_bits_get (packed + sec.zeros, (uint64_t) g, (unsigned) f->zero_bits);
  else if (f->family == BL_CUDA_FAMILY_INT)
    p->zero = 1 << (f->bits - 1);
  else
    p->zero = 0;
  p->selector = f->selector_bits > 0
                ? (int) bl_bits_get (packed + sec.selectors, (uint64_t) g, (unsigned) f->selector_bits)
                : 0;
  if (f->family == BL_CUDA_FAMILY_NVFP4 || f->family == BL_CUDA_FAMILY_NVINT4)
    p->scale[0] = __fmul_rn (sec.tensor_scale, p->scale[0]);
}

/* the extra-section slot of every 4-bit group, in group order; more of them than the
 * header allows is a corrupt tensor (bl_format_dequantize) */
static __global__ void
slots_kernel (const BlCudaFormat *f,
              const uint8_t      *packed,
              Sections            sec,
              int64_t             n4,
              int64_t            *slots,
              int32_t            *status)
{
  int64_t count = 0;

  *status = 0;
  for (int64_t g = 0; g < f->n_groups; g++)
    {
      if (bl_bits_get (packed + sec.selectors, (uint64_t) g, (unsigned) f->selector_bits) == 0 || *status)
        slots[g] = -1;
      else if (count >= n4)
        {
          *status = 1;
          slots[g] = -1;
        }
      else
        slots[g] = count++;
    }
}

static __device__ __forceinline__ uint32_t
read_code (const BlCudaFormat *f,
           const uint8_t      *packed,
           Sections            sec,
           int64_t             e,
           int64_t             slot,
           int64_t             off)
{
  uint32_t c = bl_bits_get (packed + sec.codes, (uint64_t) e, (unsigned) f->elem_bits);

  if (slot >= 0)
    c |= bl_bits_get (packed + sec.extra, (uint64_t) (slot * f->group_size + off), 2) << 2;
  return c;
}

static __global__ void
unpack_kernel (const BlCudaFormat *f,
               const uint8_t      *packed,
               Sections            sec,
               const int64_t      *slots,
               float              *y)
{
  int64_t n = f->n_rows * f->n_cols;

  for (int64_t e = blockIdx.x * (int64_t) blockDim.x + threadIdx.x; e < n; e += (int64_t) gridDim.x * blockDim.x)
    {
      Where w = locate (f, e);
      int64_t slot = slots != NULL ? slots[w.g] : -1;
      BlCudaGroupParams p;
      uint32_t code, partner = 0;

      read_params (f, packed, sec, w.g, &p);
      code = read_code (f, packed, sec, e, slot, w.off);
      if (f->family == BL_CUDA_FAMILY_COMPLEX_2BIT)
        {
          if (w.off % 2 == 0 && w.off + 1 < w.len)
            partner = read_code (f, packed, sec, e + 1, -1, w.off + 1);
          else if (w.off % 2 == 1)
            partner = read_code (f, packed, sec, e - 1, -1, w.off - 1);
        }
      y[e] = decode_one (f, &p, code, partner, w.off, w.len);
    }
}

cudaError_t
bl_cuda_launch_format_unpack (const BlCudaFormat        *f,
                              const BlPackedHeader      *h,
                              const uint8_t             *packed,
                              int64_t                    n4,
                              float                     *y,
                              const BlCudaFormatScratch *s,
                              cudaStream_t               stream)
{
  Sections sec = { h->codes_offset, h->scales_offset, h->zeros_offset, h->selectors_offset, h->extra_offset,
                   h->tensor_scale };
  int64_t n = f->n_rows * f->n_cols;
  const int64_t *slots = NULL;

  if (f->family == BL_CUDA_FAMILY_INT2_INT4)
    {
      BL_CUDA_LAUNCH (slots_kernel, 1, 1, stream) (s->format, packed, sec, n4, s->slots, s->status);
      slots = s->slots;
    }
  BL_CUDA_LAUNCH (unpack_kernel, blocks_for (n, 256), 256, stream) (s->format, packed, sec, slots, y);
  return cudaGetLastError ();
}
