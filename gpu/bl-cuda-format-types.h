/* bl-cuda-format-types.h: the plain-data description of a format that the kernels read
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * Neither GLib nor CUDA: nvcc, the host C files and the CPU emulation of the kernels
 * (tests/test-cuda-emulated.c) all include it. The format enums are mirrored as BL_CUDA_*
 * constants; bl-cuda-format-desc.c checks at compile time that they equal core's
 * BlFormatFamily and friends.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum
{
  BL_CUDA_FAMILY_INT,
  BL_CUDA_FAMILY_FP,
  BL_CUDA_FAMILY_MXFP,
  BL_CUDA_FAMILY_MXINT,
  BL_CUDA_FAMILY_NVFP4,
  BL_CUDA_FAMILY_NVINT4,
  BL_CUDA_FAMILY_NF4,
  BL_CUDA_FAMILY_BINARY,
  BL_CUDA_FAMILY_TERNARY,
  BL_CUDA_FAMILY_DUAL_BINARY,
  BL_CUDA_FAMILY_COMPLEX_2BIT,
  BL_CUDA_FAMILY_BITMOD,
  BL_CUDA_FAMILY_INT2_INT4,
  BL_CUDA_FAMILY_BF16,
  BL_CUDA_FAMILY_FP16,
};

enum { BL_CUDA_INT_ABSMAX, BL_CUDA_INT_GPTQ, BL_CUDA_INT_Q4_0, BL_CUDA_INT_ASYM };
enum { BL_CUDA_SCALE_RULE_FLOOR, BL_CUDA_SCALE_RULE_CEIL, BL_CUDA_SCALE_RULE_RCEIL, BL_CUDA_SCALE_RULE_EVEN };
enum { BL_CUDA_ROUND_RNE, BL_CUDA_ROUND_AWAY, BL_CUDA_ROUND_ZERO, BL_CUDA_ROUND_UP, BL_CUDA_ROUND_STOCHASTIC };
enum { BL_CUDA_CLIP_NONE, BL_CUDA_CLIP_RATIO, BL_CUDA_CLIP_MSE };
enum { BL_CUDA_TERNARY_ABSMEAN, BL_CUDA_TERNARY_MEDIAN };
enum { BL_CUDA_SCALE_F32, BL_CUDA_SCALE_F16, BL_CUDA_SCALE_BF16, BL_CUDA_SCALE_E8M0, BL_CUDA_SCALE_UE4M3 };
enum { BL_CUDA_FP_SPECIALS_NONE, BL_CUDA_FP_SPECIALS_IEEE, BL_CUDA_FP_SPECIALS_FN };

/* BlFpFormat without GLib: a sign + ExMy element (bl-format-codecs.h) */
typedef struct
{
  int32_t ebits;
  int32_t mbits;
  int32_t bias;
  int32_t specials;
  uint32_t max_code;
  float max_finite;
  int32_t emax;
  int32_t emin;
  float table[256];
} BlCudaFp;

/* Everything the kernels need of one tensor's format: the spec's options, the packed layout
 * and the geometry (BlFormatCtx of core/bl-format-private.h, as plain data). */
typedef struct
{
  int32_t family;
  int32_t bits;
  int32_t int_convention;
  int32_t scale_type;
  int32_t scale_rule;
  int32_t rounding;
  uint64_t seed;
  int32_t saturate;
  int32_t clip;
  double clip_ratio;
  int32_t ternary_stat;
  int32_t has_elem;
  BlCudaFp elem;

  float nf4_table[16];        /* bl_nf4_table () */
  float nf4_mids[15];         /* its decision thresholds, as bl-format-traits.c computes them */
  float bitmod_grid[4][16];   /* bl_bitmod_grid (bits, selector) */
  int32_t bitmod_n;           /* values per grid */

  int32_t elem_bits;
  int32_t scales_per_group;
  int32_t scale_bits;
  int32_t zero_bits;
  int32_t selector_bits;

  int64_t n_rows;
  int64_t n_cols;
  int64_t group_size;         /* n_rows·n_cols for tensor granularity */
  int64_t groups_per_row;     /* 0 for tensor granularity */
  int64_t n_groups;
  int32_t tensor_group;
} BlCudaFormat;

/* BlGroupParams: the stored part of one group */
typedef struct
{
  float scale[2];
  uint32_t scale_code[2];
  int32_t zero;
  int32_t selector;
} BlCudaGroupParams;

/* Device scratch of one format call; every pointer is device memory. */
typedef struct
{
  const BlCudaFormat *format; /* a device copy of the call's BlCudaFormat */
  BlCudaGroupParams *params;  /* [n_groups] */
  float *tensor_scale;        /* [1]: NVFP4/NVINT4 s_T */
  void *stats;                /* tensor-level statistics (bl-cuda-format.cu), bl_cuda_format_stats_size () bytes */
  float *scratch;             /* [n_rows·n_cols]: ternary median, or NULL */
  uint32_t *abs_keys;         /* [n_rows·n_cols]: tensor-wide ternary median: |x| bit patterns, or NULL */
  uint32_t *sorted;           /* [n_rows·n_cols]: the same, sorted, or NULL */
  void *sort_temp;            /* bl_cuda_format_sort_temp_size () bytes, or NULL */
  size_t sort_temp_bytes;
  uint8_t *selectors;         /* [n_groups]: int2+int4 4-bit flags, or NULL */
  int64_t *slots;             /* [n_groups]: int2+int4 extra-section slot or −1, or NULL */
  int64_t *slot_groups;       /* [n_groups]: the group of each slot, or NULL */
  void *ranking;              /* [n_groups] × 16 bytes: int2+int4 (range, index) pairs, or NULL */
  int32_t *status;            /* [1]: 0, or 1 when a packed tensor has too many 4-bit groups */
} BlCudaFormatScratch;

#ifdef __cplusplus
}
#endif
