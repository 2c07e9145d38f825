/* bl-cuda-gemm.c: packed low-bit matrix products on a CUDA backend
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "bl-cuda-gemm.h"
#include "bl-bitplane.h"
#include "bl-cuda-backend-private.h"
#include "bl-cuda-kernels-private.h"

#include "bl-error.h"

/**
 * SECTION:bl-cuda-gemm
 * @title: packed GEMM
 *
 * - bl_cuda_gemm_weight4(): int4 (group scales, optional zero points), NVFP4 and MXFP4
 *   weights straight from a #BlCudaPacked, bf16 activations, dequantized in registers.
 * - bl_cuda_quantize_rows_int8(), bl_cuda_gemm_int8() and bl_cuda_dequant_int32(): W8A8
 *   with cuBLASLt's integer tensor-core (IMMA) kernels and int32 accumulators.
 * - bl_cuda_gemm_fp8(): FP8 E4M3 with per-tensor scales through cuBLASLt (compute
 *   capability 8.9 and newer: Ada, Hopper).
 * - bl_cuda_bitplane_pack() and bl_cuda_gemm_bitplane(): the ABQ-LLM bit-plane WpAq GEMM
 *   (methods.md §1) for any 1 ≤ p, q ≤ 8, exactly bl_bitplane_gemm_ref().
 * - bl_cuda_gemm_bf16(): the cuBLAS bf16 product the benchmarks compare against.
 *
 * cuBLASLt descriptors and the chosen algorithm are cached per shape in the context, so a
 * repeated product costs one cublasLtMatmul call.
 */

#define DATA(b) bl_cuda_buffer_get_data (b)

/* ------------------------------------------------------------------------------------------ */
/* cuBLASLt plans */

typedef struct
{
  cublasLtMatmulDesc_t op;
  cublasLtMatrixLayout_t a;
  cublasLtMatrixLayout_t b;
  cublasLtMatrixLayout_t c;
  cublasLtMatmulAlgo_t algo;
} LtPlan;

static void
lt_plan_free (gpointer data)
{
  LtPlan *plan = data;

  if (plan->c != NULL)
    cublasLtMatrixLayoutDestroy (plan->c);
  if (plan->b != NULL)
    cublasLtMatrixLayoutDestroy (plan->b);
  if (plan->a != NULL)
    cublasLtMatrixLayoutDestroy (plan->a);
  if (plan->op != NULL)
    cublasLtMatmulDescDestroy (plan->op);
  g_free (plan);
}

/* The plan of y[m, n] = x[m, k] · w[n, k]ᵀ: in column-major terms yᵀ[n, m] = w · xᵀ with w
 * read transposed, the "TN" layout that IMMA and FP8 kernels require. */
static LtPlan *
lt_plan (BlCudaContext        *ctx,
         const char           *kind,
         cudaDataType_t        ab_type,
         cudaDataType_t        c_type,
         cublasComputeType_t   compute,
         cudaDataType_t        scale_type,
         gboolean              tensor_scales,
         int                   m,
         int                   n,
         int                   k,
         GError              **error)
{
  g_autofree char *key = g_strdup_printf ("%s:%d:%d:%d", kind, m, n, k);
  cublasOperation_t op_t = CUBLAS_OP_T, op_n = CUBLAS_OP_N;
  cublasLtMatmulPreference_t pref = NULL;
  cublasLtMatmulHeuristicResult_t heuristic;
  size_t workspace = ctx->lt_workspace_bytes;
  int found = 0;
  LtPlan *plan;
  gboolean ok;

  if (ctx->lt_plans == NULL)
    ctx->lt_plans = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, lt_plan_free);
  if ((plan = g_hash_table_lookup (ctx->lt_plans, key)) != NULL)
    return plan;

  plan = g_new0 (LtPlan, 1);
  ok = bl_cuda_check_blas (ctx, cublasLtMatmulDescCreate (&plan->op, compute, scale_type), "cublasLtMatmulDescCreate",
                           error) &&
       bl_cuda_check_blas (ctx, cublasLtMatmulDescSetAttribute (plan->op, CUBLASLT_MATMUL_DESC_TRANSA, &op_t,
                                                                sizeof op_t),
                           "cublasLtMatmulDescSetAttribute", error) &&
       bl_cuda_check_blas (ctx, cublasLtMatmulDescSetAttribute (plan->op, CUBLASLT_MATMUL_DESC_TRANSB, &op_n,
                                                                sizeof op_n),
                           "cublasLtMatmulDescSetAttribute", error) &&
       bl_cuda_check_blas (ctx, cublasLtMatrixLayoutCreate (&plan->a, ab_type, k, n, k), "cublasLtMatrixLayoutCreate",
                           error) &&
       bl_cuda_check_blas (ctx, cublasLtMatrixLayoutCreate (&plan->b, ab_type, k, m, k), "cublasLtMatrixLayoutCreate",
                           error) &&
       bl_cuda_check_blas (ctx, cublasLtMatrixLayoutCreate (&plan->c, c_type, n, m, n), "cublasLtMatrixLayoutCreate",
                           error) &&
       bl_cuda_check_blas (ctx, cublasLtMatmulPreferenceCreate (&pref), "cublasLtMatmulPreferenceCreate", error) &&
       bl_cuda_check_blas (ctx, cublasLtMatmulPreferenceSetAttribute (pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                                      &workspace, sizeof workspace),
                           "cublasLtMatmulPreferenceSetAttribute", error);
  if (ok && tensor_scales)
    {
      /* placeholders so that the heuristic sees scaled operands; each call sets its own */
      const float *none = ctx->lt_workspace;

      ok = bl_cuda_check_blas (ctx, cublasLtMatmulDescSetAttribute (plan->op, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER,
                                                                    &none, sizeof none),
                               "cublasLtMatmulDescSetAttribute", error) &&
           bl_cuda_check_blas (ctx, cublasLtMatmulDescSetAttribute (plan->op, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER,
                                                                    &none, sizeof none),
                               "cublasLtMatmulDescSetAttribute", error);
    }
  if (ok)
    ok = bl_cuda_check_blas (ctx, cublasLtMatmulAlgoGetHeuristic (ctx->lt, plan->op, plan->a, plan->b, plan->c,
                                                                  plan->c, pref, 1, &heuristic, &found),
                             "cublasLtMatmulAlgoGetHeuristic", error);
  if (pref != NULL)
    cublasLtMatmulPreferenceDestroy (pref);
  if (ok && found == 0)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_GPU,
                   "CUDA device %d (%s): cuBLASLt has no %s algorithm for m = %d, n = %d, k = %d", ctx->device,
                   ctx->device_name, kind, m, n, k);
      ok = FALSE;
    }
  if (!ok)
    {
      lt_plan_free (plan);
      return NULL;
    }
  plan->algo = heuristic.algo;
  g_hash_table_insert (ctx->lt_plans, g_steal_pointer (&key), plan);
  return plan;
}

static gboolean
check_dims (int      m,
            int      n,
            int      k,
            GError **error)
{
  if (m > 0 && n > 0 && k > 0)
    return TRUE;
  g_set_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT, "invalid product shape m = %d, n = %d, k = %d", m, n, k);
  return FALSE;
}

/* ------------------------------------------------------------------------------------------ */
/* 4-bit weights */

/**
 * bl_cuda_gemm_weight4:
 * @backend: a CUDA backend
 * @w: an [n, k] weight quantized as int4 (group or channel scales, any integer convention),
 *   nvfp4 or mxfp4
 * @x_bf16: [@m, k] bf16 activations
 * @y: [@m, n] fp32 output
 * @m: tokens
 * @error: return location for a #GError
 *
 * W4A16: the weight's codes and scales are read in place and dequantized in registers, as
 * bl_format_dequantize() decodes them. Up to 8 tokens run as a GEMV that streams the weight
 * once; more run as a tiled bf16 tensor-core GEMM (the dequantized weight is rounded to bf16
 * there). k must be a multiple of 32 and the group size of 8.
 *
 * Returns: %TRUE when the work was queued
 */
gboolean
bl_cuda_gemm_weight4 (BlBackend     *backend,
                      BlCudaPacked  *w,
                      BlBuffer      *x_bf16,
                      BlBuffer      *y,
                      int            m,
                      GError       **error)
{
  const BlPackedHeader *h;
  const BlFormatSpec *spec;
  const guint8 *base;
  BlCudaContext *ctx;
  BlCudaW4 desc = { 0 };

  g_return_val_if_fail (w != NULL && x_bf16 != NULL && y != NULL, FALSE);

  if ((ctx = bl_cuda_context_from_backend (backend, error)) == NULL)
    return FALSE;
  h = bl_cuda_packed_get_header (w);
  spec = bl_cuda_packed_get_spec (w);
  base = bl_cuda_packed_get_data (w);

  if (spec->family == BL_FORMAT_INT && spec->bits == 4)
    desc.kind = BL_CUDA_W4_INT;
  else if (spec->family == BL_FORMAT_NVFP4 ||
           (spec->family == BL_FORMAT_MXFP && spec->ebits == 2 && spec->mbits == 1))
    desc.kind = BL_CUDA_W4_FP4;
  else
    {
      g_set_error (error, BL_ERROR, BL_ERROR_UNSUPPORTED_FORMAT,
                   "the 4-bit weight kernels take int4, nvfp4 or mxfp4 weights, not %s", h->spec);
      return FALSE;
    }
  if (h->groups_per_row == 0 || h->scales_per_group != 1 || h->group_size % 8 != 0 || h->n_cols % 32 != 0 ||
      h->n_rows > G_MAXINT || h->n_cols > G_MAXINT)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_UNSUPPORTED_FORMAT,
                   "the 4-bit weight kernels need groups along rows (a multiple of 8 elements) and a row "
                   "length that is a multiple of 32; %s of %" G_GINT64_FORMAT " × %" G_GINT64_FORMAT " is not",
                   h->spec, (gint64) h->n_rows, (gint64) h->n_cols);
      return FALSE;
    }
  if (!check_dims (m, (int) h->n_rows, (int) h->n_cols, error) ||
      !bl_cuda_buffer_check (x_bf16, (size_t) m * (size_t) h->n_cols * 2, "the bf16 activations", error) ||
      !bl_cuda_buffer_check (y, (size_t) m * (size_t) h->n_rows * sizeof (float), "the output", error))
    return FALSE;

  desc.n = (int32_t) h->n_rows;
  desc.k = (int32_t) h->n_cols;
  desc.group_size = (int32_t) h->group_size;
  desc.groups_per_row = (int32_t) h->groups_per_row;
  desc.scale_kind = h->scale_kind;
  /* symmetric integer conventions keep the zero point 2^(b−1) implicit (bl-format-blocks.h) */
  desc.implicit_zero = 8;
  desc.tensor_scale = spec->family == BL_FORMAT_NVFP4 ? h->tensor_scale : 1.0f;
  desc.codes = base + h->codes_offset;
  desc.scales = base + h->scales_offset;
  desc.zeros = h->zero_bits == 4 ? base + h->zeros_offset : NULL;

  /* a GEMV streams the weight once for up to 8 tokens; beyond, the tensor cores win */
  if (m <= 8)
    return bl_cuda_check (ctx, bl_cuda_launch_w4_gemv (&desc, DATA (x_bf16), DATA (y), m, ctx->stream),
                          "the 4-bit weight GEMV", error);
  return bl_cuda_check (ctx, bl_cuda_launch_w4_tiles (&desc, DATA (x_bf16), DATA (y), m, ctx->stream),
                        "the 4-bit weight GEMM", error);
}

/* ------------------------------------------------------------------------------------------ */
/* W8A8 */

/**
 * bl_cuda_quantize_rows_int8:
 * @backend: a CUDA backend
 * @x: [@m, @k] fp32 activations
 * @q: [@m, @k] int8 codes (output)
 * @scales: [@m] fp32 scales (output)
 * @m: rows (tokens)
 * @k: columns
 * @error: return location for a #GError
 *
 * Per-token absmax int8: exactly bl_format_quantize()'s "int8:token:scale=fp32", with the
 * code as a signed value (the packed code minus 128).
 *
 * Returns: %TRUE when the work was queued
 */
gboolean
bl_cuda_quantize_rows_int8 (BlBackend  *backend,
                            BlBuffer   *x,
                            BlBuffer   *q,
                            BlBuffer   *scales,
                            int         m,
                            int         k,
                            GError    **error)
{
  BlCudaContext *ctx;

  if ((ctx = bl_cuda_context_from_backend (backend, error)) == NULL || !check_dims (m, 1, k, error) ||
      !bl_cuda_buffer_check (x, (size_t) m * k * sizeof (float), "the activations", error) ||
      !bl_cuda_buffer_check (q, (size_t) m * k, "the int8 codes", error) ||
      !bl_cuda_buffer_check (scales, (size_t) m * sizeof (float), "the scales", error))
    return FALSE;
  return bl_cuda_check (ctx, bl_cuda_launch_quantize_rows_i8 (DATA (x), DATA (q), DATA (scales), m, k, ctx->stream),
                        "int8 activation quantization", error);
}

/**
 * bl_cuda_gemm_int8:
 * @backend: a CUDA backend
 * @x_i8: [@m, @k] int8 activations
 * @w_i8: [@n, @k] int8 weights
 * @acc: [@m, @n] int32 output
 * @m: tokens
 * @n: output features, a multiple of 4
 * @k: input features, a multiple of 4
 * @error: return location for a #GError
 *
 * The integer product on the tensor cores (cuBLASLt IMMA, CUBLAS_COMPUTE_32I): exact, so
 * it equals a plain integer GEMM.
 *
 * Returns: %TRUE when the work was queued
 */
gboolean
bl_cuda_gemm_int8 (BlBackend  *backend,
                   BlBuffer   *x_i8,
                   BlBuffer   *w_i8,
                   BlBuffer   *acc,
                   int         m,
                   int         n,
                   int         k,
                   GError    **error)
{
  BlCudaContext *ctx;
  LtPlan *plan;
  int32_t alpha = 1, beta = 0;

  if ((ctx = bl_cuda_context_from_backend (backend, error)) == NULL || !check_dims (m, n, k, error))
    return FALSE;
  /* cuBLASLt's IMMA requirements in the regular (column) ordering */
  if (n % 4 != 0 || k % 4 != 0)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT,
                   "the int8 tensor-core GEMM needs n and k multiples of 4, not n = %d, k = %d", n, k);
      return FALSE;
    }
  if (!bl_cuda_buffer_check (x_i8, (size_t) m * k, "the int8 activations", error) ||
      !bl_cuda_buffer_check (w_i8, (size_t) n * k, "the int8 weights", error) ||
      !bl_cuda_buffer_check (acc, (size_t) m * n * sizeof (int32_t), "the int32 output", error) ||
      (plan = lt_plan (ctx, "int8", CUDA_R_8I, CUDA_R_32I, CUBLAS_COMPUTE_32I, CUDA_R_32I, FALSE, m, n, k,
                       error)) == NULL)
    return FALSE;
  return bl_cuda_check_blas (ctx, cublasLtMatmul (ctx->lt, plan->op, &alpha, DATA (w_i8), plan->a, DATA (x_i8),
                                                  plan->b, &beta, DATA (acc), plan->c, DATA (acc), plan->c,
                                                  &plan->algo, ctx->lt_workspace, ctx->lt_workspace_bytes,
                                                  ctx->stream),
                             "cublasLtMatmul (int8)", error);
}

/**
 * bl_cuda_dequant_int32:
 * @backend: a CUDA backend
 * @acc: [@m, @n] int32 products
 * @x_scales: [@m] activation scales
 * @w_scales: [@n] weight scales
 * @y: [@m, @n] fp32 output
 * @m: rows
 * @n: columns
 * @error: return location for a #GError
 *
 * y = (acc · s_x[m]) · s_w[n], each product rounded to fp32.
 *
 * Returns: %TRUE when the work was queued
 */
gboolean
bl_cuda_dequant_int32 (BlBackend  *backend,
                       BlBuffer   *acc,
                       BlBuffer   *x_scales,
                       BlBuffer   *w_scales,
                       BlBuffer   *y,
                       int         m,
                       int         n,
                       GError    **error)
{
  BlCudaContext *ctx;

  if ((ctx = bl_cuda_context_from_backend (backend, error)) == NULL || !check_dims (m, n, 1, error) ||
      !bl_cuda_buffer_check (acc, (size_t) m * n * sizeof (int32_t), "the int32 products", error) ||
      !bl_cuda_buffer_check (x_scales, (size_t) m * sizeof (float), "the activation scales", error) ||
      !bl_cuda_buffer_check (w_scales, (size_t) n * sizeof (float), "the weight scales", error) ||
      !bl_cuda_buffer_check (y, (size_t) m * n * sizeof (float), "the output", error))
    return FALSE;
  return bl_cuda_check (ctx, bl_cuda_launch_dequant_i32 (DATA (acc), DATA (x_scales), DATA (w_scales), DATA (y), m, n,
                                                         ctx->stream),
                        "int32 dequantization", error);
}

/* ------------------------------------------------------------------------------------------ */
/* FP8 and the bf16 baseline */

/**
 * bl_cuda_gemm_fp8:
 * @backend: a CUDA backend
 * @x_e4m3: [@m, @k] FP8 E4M3 activation codes
 * @x_scale: one fp32: the activations' per-tensor scale
 * @w_e4m3: [@n, @k] FP8 E4M3 weight codes
 * @w_scale: one fp32: the weights' per-tensor scale
 * @y_bf16: [@m, @n] bf16 output
 * @m: tokens
 * @n: output features, a multiple of 16
 * @k: input features, a multiple of 16
 * @error: return location for a #GError
 *
 * y = s_x·s_w·(x·wᵀ) with FP8 tensor-core products and fp32 accumulation (cuBLASLt). The
 * codes and scales are what "fp8-e4m3:tensor:scale=fp32" packs. Needs compute capability 8.9
 * or newer.
 *
 * Returns: %TRUE when the work was queued
 */
gboolean
bl_cuda_gemm_fp8 (BlBackend  *backend,
                  BlBuffer   *x_e4m3,
                  BlBuffer   *x_scale,
                  BlBuffer   *w_e4m3,
                  BlBuffer   *w_scale,
                  BlBuffer   *y_bf16,
                  int         m,
                  int         n,
                  int         k,
                  GError    **error)
{
  BlCudaContext *ctx;
  LtPlan *plan;
  float alpha = 1.0f, beta = 0.0f;
  const void *sx, *sw;

  if ((ctx = bl_cuda_context_from_backend (backend, error)) == NULL || !check_dims (m, n, k, error))
    return FALSE;
  if (ctx->cc_major * 10 + ctx->cc_minor < 89)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_GPU,
                   "CUDA device %d (%s) has compute capability %d.%d; FP8 tensor cores need 8.9 or newer",
                   ctx->device, ctx->device_name, ctx->cc_major, ctx->cc_minor);
      return FALSE;
    }
  if (n % 16 != 0 || k % 16 != 0)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT,
                   "the FP8 GEMM needs n and k multiples of 16, not n = %d, k = %d", n, k);
      return FALSE;
    }
  if (!bl_cuda_buffer_check (x_e4m3, (size_t) m * k, "the FP8 activations", error) ||
      !bl_cuda_buffer_check (w_e4m3, (size_t) n * k, "the FP8 weights", error) ||
      !bl_cuda_buffer_check (x_scale, sizeof (float), "the activation scale", error) ||
      !bl_cuda_buffer_check (w_scale, sizeof (float), "the weight scale", error) ||
      !bl_cuda_buffer_check (y_bf16, (size_t) m * n * 2, "the bf16 output", error) ||
      (plan = lt_plan (ctx, "fp8-e4m3", CUDA_R_8F_E4M3, CUDA_R_16BF, CUBLAS_COMPUTE_32F, CUDA_R_32F, TRUE, m, n, k,
                       error)) == NULL)
    return FALSE;
  /* A is the weight and B the activations in the column-major "TN" form */
  sw = DATA (w_scale);
  sx = DATA (x_scale);
  return bl_cuda_check_blas (ctx, cublasLtMatmulDescSetAttribute (plan->op, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER,
                                                                  &sw, sizeof sw),
                             "cublasLtMatmulDescSetAttribute", error) &&
         bl_cuda_check_blas (ctx, cublasLtMatmulDescSetAttribute (plan->op, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER,
                                                                  &sx, sizeof sx),
                             "cublasLtMatmulDescSetAttribute", error) &&
         bl_cuda_check_blas (ctx, cublasLtMatmul (ctx->lt, plan->op, &alpha, DATA (w_e4m3), plan->a, DATA (x_e4m3),
                                                  plan->b, &beta, DATA (y_bf16), plan->c, DATA (y_bf16), plan->c,
                                                  &plan->algo, ctx->lt_workspace, ctx->lt_workspace_bytes,
                                                  ctx->stream),
                             "cublasLtMatmul (FP8)", error);
}

/**
 * bl_cuda_gemm_bf16:
 * @backend: a CUDA backend
 * @x_bf16: [@m, @k] bf16 activations
 * @w_bf16: [@n, @k] bf16 weights
 * @y: [@m, @n] fp32 output
 * @m: tokens
 * @n: output features
 * @k: input features
 * @error: return location for a #GError
 *
 * cuBLAS's bf16 product with fp32 accumulation, the baseline of the benchmarks.
 *
 * Returns: %TRUE when the work was queued
 */
gboolean
bl_cuda_gemm_bf16 (BlBackend  *backend,
                   BlBuffer   *x_bf16,
                   BlBuffer   *w_bf16,
                   BlBuffer   *y,
                   int         m,
                   int         n,
                   int         k,
                   GError    **error)
{
  BlCudaContext *ctx;
  float one = 1.0f, zero = 0.0f;

  if ((ctx = bl_cuda_context_from_backend (backend, error)) == NULL || !check_dims (m, n, k, error) ||
      !bl_cuda_buffer_check (x_bf16, (size_t) m * k * 2, "the bf16 activations", error) ||
      !bl_cuda_buffer_check (w_bf16, (size_t) n * k * 2, "the bf16 weights", error) ||
      !bl_cuda_buffer_check (y, (size_t) m * n * sizeof (float), "the output", error))
    return FALSE;
  return bl_cuda_check_blas (ctx, cublasGemmEx (ctx->blas, CUBLAS_OP_T, CUBLAS_OP_N, n, m, k, &one, DATA (w_bf16),
                                                CUDA_R_16BF, k, DATA (x_bf16), CUDA_R_16BF, k, &zero, DATA (y),
                                                CUDA_R_32F, n, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
                             "cublasGemmEx (bf16)", error);
}

/**
 * bl_cuda_convert_bf16:
 * @backend: a CUDA backend
 * @x: @n fp32 values
 * @y_bf16: @n bf16 values (output)
 * @n: how many
 * @error: return location for a #GError
 *
 * Rounds to bf16, nearest even.
 *
 * Returns: %TRUE when the work was queued
 */
gboolean
bl_cuda_convert_bf16 (BlBackend  *backend,
                      BlBuffer   *x,
                      BlBuffer   *y_bf16,
                      gsize       n,
                      GError    **error)
{
  BlCudaContext *ctx;

  if ((ctx = bl_cuda_context_from_backend (backend, error)) == NULL ||
      !bl_cuda_buffer_check (x, n * sizeof (float), "the fp32 input", error) ||
      !bl_cuda_buffer_check (y_bf16, n * 2, "the bf16 output", error))
    return FALSE;
  return bl_cuda_check (ctx, bl_cuda_launch_f32_to_bf16 (DATA (x), DATA (y_bf16), n, ctx->stream), "bf16 conversion",
                        error);
}

/* ------------------------------------------------------------------------------------------ */
/* bit planes */

/**
 * bl_cuda_bitplane_pack:
 * @backend: a CUDA backend
 * @codes: [@rows, @k] bytes whose low @bits bits are the codes
 * @rows: rows
 * @k: elements per row
 * @bits: code width, 1…8
 * @planes: bl_bitplane_packed_words() uint32 words (output)
 * @error: return location for a #GError
 *
 * The bit planes of bl_bitplane_pack(), on the GPU.
 *
 * Returns: %TRUE when the work was queued
 */
gboolean
bl_cuda_bitplane_pack (BlBackend  *backend,
                       BlBuffer   *codes,
                       gint64      rows,
                       gint64      k,
                       int         bits,
                       BlBuffer   *planes,
                       GError    **error)
{
  BlCudaContext *ctx;

  if ((ctx = bl_cuda_context_from_backend (backend, error)) == NULL)
    return FALSE;
  if (rows <= 0 || k <= 0 || bits < 1 || bits > 8)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT,
                   "invalid bit-plane packing: %" G_GINT64_FORMAT " × %" G_GINT64_FORMAT " codes of %d bits", rows, k,
                   bits);
      return FALSE;
    }
  if (!bl_cuda_buffer_check (codes, (size_t) (rows * k), "the codes", error) ||
      !bl_cuda_buffer_check (planes, bl_bitplane_packed_words (rows, k, bits) * sizeof (uint32_t), "the bit planes",
                             error))
    return FALSE;
  return bl_cuda_check (ctx, bl_cuda_launch_bitplane_pack (DATA (codes), rows, k, bits, DATA (planes), ctx->stream),
                        "bit-plane packing", error);
}

/**
 * bl_cuda_gemm_bitplane:
 * @backend: a CUDA backend
 * @x_planes: [@x_bits][@m][words] activation planes
 * @x_bits: activation code width p, 1…8
 * @x_signed: whether the activation codes are two's complement
 * @w_planes: [@w_bits][@n][words] weight planes
 * @w_bits: weight code width q, 1…8
 * @w_signed: whether the weight codes are two's complement
 * @m: tokens
 * @n: output features
 * @k: input features
 * @y: [@m, @n] int32 output
 * @error: return location for a #GError
 *
 * The ABQ-LLM bit-plane WpAq product: Σ_i Σ_j c_i d_j 2^(i+j) popcount (X⁽ⁱ⁾ AND W⁽ʲ⁾), equal
 * to bl_bitplane_gemm_ref() bit for bit.
 *
 * Returns: %TRUE when the work was queued
 */
gboolean
bl_cuda_gemm_bitplane (BlBackend  *backend,
                       BlBuffer   *x_planes,
                       int         x_bits,
                       gboolean    x_signed,
                       BlBuffer   *w_planes,
                       int         w_bits,
                       gboolean    w_signed,
                       int         m,
                       int         n,
                       gint64      k,
                       BlBuffer   *y,
                       GError    **error)
{
  BlCudaContext *ctx;

  if ((ctx = bl_cuda_context_from_backend (backend, error)) == NULL || !check_dims (m, n, k > G_MAXINT ? 0 : (int) k,
                                                                                    error))
    return FALSE;
  if (x_bits < 1 || x_bits > 8 || w_bits < 1 || w_bits > 8)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT,
                   "bit-plane GEMM widths must be 1…8 bits, not W%dA%d", w_bits, x_bits);
      return FALSE;
    }
  if (!bl_cuda_buffer_check (x_planes, bl_bitplane_packed_words (m, k, x_bits) * sizeof (uint32_t),
                             "the activation planes", error) ||
      !bl_cuda_buffer_check (w_planes, bl_bitplane_packed_words (n, k, w_bits) * sizeof (uint32_t),
                             "the weight planes", error) ||
      !bl_cuda_buffer_check (y, (size_t) m * n * sizeof (int32_t), "the int32 output", error))
    return FALSE;
  return bl_cuda_check (ctx, bl_cuda_launch_bitplane_gemm (DATA (x_planes), x_bits, x_signed, DATA (w_planes), w_bits,
                                                           w_signed, m, n, k, DATA (y), ctx->stream),
                        "the bit-plane GEMM", error);
}
