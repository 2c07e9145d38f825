/* bl-format-blocks.h: the packed layout of a quantized tensor, shared by C and nvcc
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * This header holds plain structs, enums and static inline helpers only: no GLib types, so
 * that the CUDA backend (gpu/) can include it unchanged and read what
 * bl_format_quantize() writes.
 *
 * Layout of a packed tensor (all integers little-endian, every section starts on a
 * BL_PACKED_ALIGN boundary, the gaps are zero):
 *
 *   BlPackedHeader            fixed size, at offset 0
 *   codes                     one code of header.elem_bits bits per element, in row-major
 *                             element order, packed LSB-first: element i occupies bits
 *                             [i·b, i·b + b) of the byte stream. For 4-bit codes this puts the
 *                             even column in the low nibble, as ModelOpt NVFP4 checkpoints do
 *                             (peers.md §3.3).
 *   scales                    header.scales_per_group scales per group, group-major, each
 *                             header.scale_bits wide (8, 16 or 32), kind header.scale_kind
 *   zeros                     one zero point of header.zero_bits bits per group, LSB-first
 *   selectors                 one selector of header.selector_bits bits per group, LSB-first
 *                             (BitMoD data type id, int2+int4 "this group is 4-bit" flag)
 *   extra                     int2+int4 only: the high 2 bits of every element of a 4-bit
 *                             group, groups in order, LSB-first
 *
 * Groups run along a row (the input dimension of a linear weight); a row of n_cols elements
 * holds groups_per_row groups and its last group may be shorter than group_size. With tensor
 * granularity there is exactly one group covering every element.
 *
 * The code of an element means, per family (header.family, a BlFormatFamily value):
 *   INT          unsigned u; value = (u − zero)·scale. Symmetric conventions store
 *                zero = 2^(b−1) implicitly (zero_bits = 0); asym stores it per group.
 *   FP, MXFP, NVFP4, BF16, FP16
 *                the sign|exponent|mantissa bit pattern of the ExMy element (peers.md §3.1)
 *   MXINT, NVINT4
 *                b-bit two's complement; MXINT carries the implied 2^−(b−2) of
 *                OCP MX v1.0 (peers.md §3.1), NVINT4 is the plain integer
 *   NF4          index into the QLoRA NormalFloat table
 *   BINARY       1 = negative
 *   TERNARY      2-bit two's complement in {−1, 0, +1}
 *   DUAL_BINARY  bit 0 = first binary plane, bit 1 = second (DB-LLM, methods.md §13b)
 *   COMPLEX_2BIT one bit per real weight; the pair (2k, 2k+1) of a group forms the 2-bit
 *                code of one complex weight: bit of element 2k = negative, bit of 2k+1 =
 *                imaginary axis (iFairy {±1, ±i}, methods.md §13d)
 *   BITMOD       index into the sorted 8- or 16-value grid picked by the group's selector
 *   INT2_INT4    low 2 bits here, high 2 bits in the extra section for 4-bit groups
 */
#pragma once

#include <stdint.h>
#include <stddef.h>

#ifdef __cplusplus
#define BL_BLOCKS_STATIC_ASSERT(cond, msg) static_assert (cond, msg)
#else
#define BL_BLOCKS_STATIC_ASSERT(cond, msg) _Static_assert (cond, msg)
#endif

#if defined(__CUDACC__)
#define BL_BLOCKS_INLINE static __host__ __device__ inline
#else
#define BL_BLOCKS_INLINE static inline
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* "BLQ1" read as a little-endian uint32 */
#define BL_PACKED_MAGIC   0x31514c42u
#define BL_PACKED_VERSION 1u
#define BL_PACKED_ALIGN   64u
#define BL_PACKED_SPEC_MAX 112

/**
 * BlPackedScaleKind:
 * @BL_PACKED_SCALE_NONE: no per-group scale (bf16, fp16)
 * @BL_PACKED_SCALE_F32: IEEE binary32
 * @BL_PACKED_SCALE_F16: IEEE binary16
 * @BL_PACKED_SCALE_BF16: bfloat16
 * @BL_PACKED_SCALE_E8M0: OCP MX E8M0 power of two, bias 127, 0xFF = NaN (peers.md §3.1)
 * @BL_PACKED_SCALE_UE4M3: FP8 E4M3 with the sign bit 0 (NVFP4, peers.md §3.3)
 */
typedef enum
{
  BL_PACKED_SCALE_NONE = 0,
  BL_PACKED_SCALE_F32 = 1,
  BL_PACKED_SCALE_F16 = 2,
  BL_PACKED_SCALE_BF16 = 3,
  BL_PACKED_SCALE_E8M0 = 4,
  BL_PACKED_SCALE_UE4M3 = 5,
} BlPackedScaleKind;

/**
 * BlPackedHeader:
 *
 * The fixed-size header at offset 0 of a packed tensor. Offsets are in bytes from the start
 * of the header. @spec is the canonical spec string, NUL-terminated, so that a reader can
 * reconstruct every option that is not a layout field (rounding, clip…).
 */
typedef struct
{
  uint32_t magic;
  uint16_t version;
  uint16_t family;            /* BlFormatFamily */
  uint8_t  elem_bits;         /* bits per code in the codes section */
  uint8_t  ebits;             /* FP element exponent bits, 0 when not a float element */
  uint8_t  mbits;             /* FP element mantissa bits */
  uint8_t  scale_kind;        /* BlPackedScaleKind */
  uint8_t  scale_bits;        /* width of one stored scale */
  uint8_t  scales_per_group;
  uint8_t  zero_bits;
  uint8_t  selector_bits;
  uint32_t group_size;        /* elements per group along a row (the whole tensor for tensor granularity) */
  uint32_t groups_per_row;    /* 0 for tensor granularity */
  int64_t  n_rows;
  int64_t  n_cols;
  uint64_t n_groups;
  float    tensor_scale;      /* NVFP4/NVINT4 fp32 per-tensor scale, 1 otherwise */
  uint32_t reserved;
  uint64_t codes_offset, codes_bytes;
  uint64_t scales_offset, scales_bytes;
  uint64_t zeros_offset, zeros_bytes;
  uint64_t selectors_offset, selectors_bytes;
  uint64_t extra_offset, extra_bytes;
  uint64_t total_bytes;
  char     spec[BL_PACKED_SPEC_MAX];
} BlPackedHeader;

BL_BLOCKS_STATIC_ASSERT (sizeof (BlPackedHeader) == 256, "BlPackedHeader must stay 256 bytes");
BL_BLOCKS_STATIC_ASSERT (offsetof (BlPackedHeader, n_rows) == 24, "BlPackedHeader field moved");
BL_BLOCKS_STATIC_ASSERT (offsetof (BlPackedHeader, codes_offset) == 56, "BlPackedHeader field moved");

/* Reads the @bits-wide field number @index of an LSB-first bit stream (@bits ≤ 16). */
BL_BLOCKS_INLINE uint32_t
bl_bits_get (const uint8_t *stream,
             uint64_t       index,
             unsigned       bits)
{
  uint64_t bit = index * bits;
  uint64_t byte = bit >> 3;
  unsigned shift = (unsigned) (bit & 7);
  uint32_t window = stream[byte];
  unsigned have = 8 - shift;

  /* at most 16 + 7 bits span 3 bytes */
  if (have < bits)
    window |= (uint32_t) stream[byte + 1] << 8;
  if (have + 8 < bits)
    window |= (uint32_t) stream[byte + 2] << 16;
  return (window >> shift) & ((1u << bits) - 1u);
}

/* Writes @value into field number @index of an LSB-first bit stream; the stream must start
 * zeroed (fields are OR-ed in). */
BL_BLOCKS_INLINE void
bl_bits_put (uint8_t  *stream,
             uint64_t  index,
             unsigned  bits,
             uint32_t  value)
{
  uint64_t bit = index * bits;
  uint64_t byte = bit >> 3;
  unsigned shift = (unsigned) (bit & 7);
  uint32_t v = (value & ((1u << bits) - 1u)) << shift;

  stream[byte] |= (uint8_t) v;
  if (shift + bits > 8)
    stream[byte + 1] |= (uint8_t) (v >> 8);
  if (shift + bits > 16)
    stream[byte + 2] |= (uint8_t) (v >> 16);
}

/* The stochastic-rounding random stream: a counter-based splitmix64 finaliser
 * (Steele et al., "Fast splittable pseudorandom number generators", OOPSLA 2014), keyed by the
 * spec's seed and the element's row-major index, so any backend and any thread split draws
 * the same number for the same element. */
BL_BLOCKS_INLINE uint64_t
bl_random_u64 (uint64_t seed,
               uint64_t index)
{
  uint64_t z = seed + (index + 1u) * 0x9E3779B97F4A7C15ull;

  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

#ifdef __cplusplus
}
#endif
