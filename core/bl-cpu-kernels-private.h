/* bl-cpu-kernels-private.h: the exponential-heavy loops of the CPU backend, vectorised
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* p[0..n) ← softmax(p[0..n)): exponentials after subtracting the maximum, normalised by
 * their sum (accumulated in double). n ≥ 1. */
void bl_cpu_softmax_row (float *p,
                         int    n);

/* Online log-sum-exp update over l[0..n): with m = max(*max, max l), sets
 * *sum ← *sum · e^(*max − m) + Σ e^(l_j − m) and *max ← m. Start from *max = −∞, *sum = 0. */
void bl_cpu_logsumexp_update (const float *l,
                              int          n,
                              float       *max,
                              double      *sum);

/* out[i] = silu(gate[i]) · up[i] = gate[i] / (1 + e^−gate[i]) · up[i]; out may be gate. */
void bl_cpu_swiglu (float       *out,
                    const float *gate,
                    const float *up,
                    gint64       n);

/* The exponential the kernels use (Cephes expf: range reduction by ln 2 in two parts and a
 * degree-6 polynomial; within 2 ulp of e^x on [−87.3, 88.7], clamped outside). */
float bl_cpu_expf (float x);

G_END_DECLS
