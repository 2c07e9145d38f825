/* bl-bitplane.h: the ABQ-LLM bit-plane layout and its scalar reference GEMM
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * A matrix of b-bit integer codes is stored as b binary matrices ("planes"), and an integer
 * product of two such matrices is a sum of binary products (methods.md §1, ABQ-LLM
 * engine/common/pack.cu and engine/mma_any/aq_wmma_kernel.h):
 *
 *   X = Σ_{i<p} c_i 2^i X⁽ⁱ⁾,  W = Σ_{j<q} d_j 2^j W⁽ʲ⁾,  X⁽ⁱ⁾, W⁽ʲ⁾ ∈ {0, 1}
 *   Y[m, n] = Σ_i Σ_j c_i d_j 2^(i+j) · popcount (X⁽ⁱ⁾[m, :] AND W⁽ʲ⁾[n, :])
 *
 * with c_i = d_j = 1, except that the top plane of a signed (two's complement) matrix has
 * weight −1. The packed layout is plane-major, [bit][row][word], one uint32 word per 32
 * consecutive elements of a row, element k at bit 31 − (k mod 32) (most significant first,
 * as ABQ-LLM packs), and each row padded with zero bits to a multiple of
 * BL_BITPLANE_K_ALIGN elements, the K step of the binary tensor-core MMA (m8n8k128). Zero bits
 * add nothing to any product, so the padding never changes a result.
 *
 * These functions are the oracle of the CUDA kernels (gpu/bl-cuda-gemm.cu), which use the
 * same layout and the same wrapping 32-bit arithmetic; tests/test-cuda-bitplane.c checks
 * them against a plain integer GEMM on the CPU.
 */
#pragma once

#include <glib.h>
#include <stdint.h>

G_BEGIN_DECLS

#define BL_BITPLANE_K_ALIGN 128

int64_t  bl_bitplane_words_per_row (int64_t         k);
gsize    bl_bitplane_packed_words  (int64_t         rows,
                                    int64_t         k,
                                    int             bits);
void     bl_bitplane_pack          (const uint8_t  *codes,
                                    int64_t         rows,
                                    int64_t         k,
                                    int             bits,
                                    uint32_t       *planes);
int32_t  bl_bitplane_plane_weight  (int             plane,
                                    int             bits,
                                    gboolean        is_signed);
void     bl_bitplane_gemm_ref      (const uint32_t *x_planes,
                                    int             x_bits,
                                    gboolean        x_signed,
                                    const uint32_t *w_planes,
                                    int             w_bits,
                                    gboolean        w_signed,
                                    int64_t         m,
                                    int64_t         n,
                                    int64_t         k,
                                    int32_t        *y);

G_END_DECLS
