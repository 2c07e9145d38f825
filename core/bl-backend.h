/* bl-backend.h: the compute backend interface (a vtable plus a context, as in ggml)
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <glib.h>
#include <stdint.h>

G_BEGIN_DECLS

/**
 * BlBuffer:
 *
 * An opaque array of fp32 values owned by one backend (host memory for the CPU backend,
 * device memory for a GPU backend). Only the backend that allocated a buffer may use it.
 * Activations are stored row-major as [n_tokens, dim].
 */
typedef struct _BlBuffer BlBuffer;

typedef struct _BlBackend BlBackend;

/**
 * BlBackendClass:
 * @name: the name used by bl_backend_new() ("cpu", "cuda")
 * @priority: "auto" tries registered backends from the highest priority down
 * @init: creates the backend context; @n_threads is the number of host threads to use
 * @finalize: frees the context
 * @get_description: a one-line description (device name, thread count), owned by the context
 * @buffer_new: allocates @n_elements fp32 values, contents undefined
 * @buffer_free: frees a buffer from @buffer_new
 * @buffer_map: the host address of @buffer when the host can read and write it in place,
 *   otherwise %NULL (the engine then downloads and uploads around host-side hooks)
 * @upload: copies @n host values into @dst starting at element @offset
 * @download: copies @n values from element @offset of @src to the host
 * @synchronize: waits for queued work and reports the first failure of a compute op since
 *   the last call
 * @copy: @dst[0..n) = @src[0..n)
 * @get_rows: embedding lookup, @dst[i, :] = @table[@ids[i], :] for i < @n (ids on the host,
 *   already range-checked by the caller)
 * @matmul: @y[n, out] = @x[n, in] · @wᵀ + @bias, or @y += that when @accumulate. @w is
 *   [out, in] row-major as Hugging Face stores linear weights; @bias ([out]) may be %NULL
 * @rmsnorm: @y[i, :] = @w ⊙ (@x[i, :] · rsqrt(mean(@x[i, :]²) + @eps)), computed in fp32 in
 *   Hugging Face's LlamaRMSNorm order; @y may equal @x
 * @rope: rotary embedding in place on @x [n, n_heads · head_dim] in the rotate-half layout:
 *   for j < head_dim/2, (x_j, x_{j+h/2}) ← (x_j c − x_{j+h/2} s, x_{j+h/2} c + x_j s) with
 *   c = @cos[i, j], s = @sin[i, j]; the tables are [n, head_dim/2], one row per token
 * @attention: causal softmax attention with grouped-query heads: query head h reads key and
 *   value head h / (n_heads / n_kv_heads); @q is [n, n_heads · head_dim], @k and @v are
 *   [n, n_kv_heads · head_dim], @out is [n, n_heads · head_dim]; scores are scaled by
 *   1/√head_dim and the softmax is taken in fp32 after subtracting the row maximum; with
 *   @window > 0 query i sees only keys j with i − @window < j ≤ i (sliding-window attention,
 *   transformers' sliding_window_overlay), with 0 every key j ≤ i
 * @swiglu: @out[i] = silu(@gate[i]) · @up[i] for i < @n; @out may equal @gate
 * @add: @x[i] += @y[i] for i < @n
 * @nll: for rows r in [@row0, @row0 + @n_rows) of @h ([*, dim]), computes the logits
 *   @h[r] · @wᵀ over the vocabulary and writes the negative log-softmax at @targets[r − @row0]
 *   to @nll[r − @row0] (host memory); the full logits need not be materialised at once
 *
 * The vtable of one backend. Compute ops return nothing: a backend that can fail inside an
 * op (a GPU kernel error) records the first failure and reports it from the next
 * @synchronize, @download or @nll call. Every member must be set.
 */
typedef struct _BlBackendClass BlBackendClass;
struct _BlBackendClass
{
  const char *name;
  int priority;

  gpointer    (*init)            (int             n_threads,
                                  GError        **error);
  void        (*finalize)        (gpointer        ctx);
  const char *(*get_description) (gpointer        ctx);

  BlBuffer   *(*buffer_new)      (gpointer        ctx,
                                  size_t          n_elements,
                                  GError        **error);
  void        (*buffer_free)     (gpointer        ctx,
                                  BlBuffer       *buffer);
  float      *(*buffer_map)      (gpointer        ctx,
                                  BlBuffer       *buffer);
  gboolean    (*upload)          (gpointer        ctx,
                                  BlBuffer       *dst,
                                  size_t          offset,
                                  const float    *src,
                                  size_t          n,
                                  GError        **error);
  gboolean    (*download)        (gpointer        ctx,
                                  BlBuffer       *src,
                                  size_t          offset,
                                  float          *dst,
                                  size_t          n,
                                  GError        **error);
  gboolean    (*synchronize)     (gpointer        ctx,
                                  GError        **error);

  void        (*copy)            (gpointer        ctx,
                                  BlBuffer       *dst,
                                  BlBuffer       *src,
                                  size_t          n);
  void        (*get_rows)        (gpointer        ctx,
                                  BlBuffer       *dst,
                                  BlBuffer       *table,
                                  const int32_t  *ids,
                                  int             n,
                                  int             dim);
  void        (*matmul)          (gpointer        ctx,
                                  BlBuffer       *y,
                                  BlBuffer       *x,
                                  BlBuffer       *w,
                                  BlBuffer       *bias,
                                  int             n,
                                  int             in,
                                  int             out,
                                  gboolean        accumulate);
  void        (*rmsnorm)         (gpointer        ctx,
                                  BlBuffer       *y,
                                  BlBuffer       *x,
                                  BlBuffer       *w,
                                  int             n,
                                  int             dim,
                                  float           eps);
  void        (*rope)            (gpointer        ctx,
                                  BlBuffer       *x,
                                  BlBuffer       *cos,
                                  BlBuffer       *sin,
                                  int             n,
                                  int             n_heads,
                                  int             head_dim);
  void        (*attention)       (gpointer        ctx,
                                  BlBuffer       *out,
                                  BlBuffer       *q,
                                  BlBuffer       *k,
                                  BlBuffer       *v,
                                  int             n,
                                  int             n_heads,
                                  int             n_kv_heads,
                                  int             head_dim,
                                  int             window);
  void        (*swiglu)          (gpointer        ctx,
                                  BlBuffer       *out,
                                  BlBuffer       *gate,
                                  BlBuffer       *up,
                                  size_t          n);
  void        (*add)             (gpointer        ctx,
                                  BlBuffer       *x,
                                  BlBuffer       *y,
                                  size_t          n);
  gboolean    (*nll)             (gpointer        ctx,
                                  BlBuffer       *h,
                                  BlBuffer       *w,
                                  int             row0,
                                  int             n_rows,
                                  int             dim,
                                  int             vocab,
                                  const int32_t  *targets,
                                  double         *nll,
                                  GError        **error);
};

void         bl_backend_register        (const BlBackendClass *klass);
char       **bl_backend_list_names      (void);

BlBackend   *bl_backend_new             (const char  *name,
                                         int          n_threads,
                                         GError     **error);
void         bl_backend_free            (BlBackend   *self);
const char  *bl_backend_get_name        (BlBackend   *self);
const char  *bl_backend_get_description (BlBackend   *self);
int          bl_backend_get_n_threads   (BlBackend   *self);
gpointer     bl_backend_get_context     (BlBackend            *self,
                                         const BlBackendClass *klass);

BlBuffer    *bl_backend_buffer_new      (BlBackend   *self,
                                         size_t       n_elements,
                                         GError     **error);
void         bl_backend_buffer_free     (BlBackend   *self,
                                         BlBuffer    *buffer);
float       *bl_backend_buffer_map      (BlBackend   *self,
                                         BlBuffer    *buffer);
gboolean     bl_backend_upload          (BlBackend   *self,
                                         BlBuffer    *dst,
                                         size_t       offset,
                                         const float *src,
                                         size_t       n,
                                         GError     **error);
gboolean     bl_backend_download        (BlBackend   *self,
                                         BlBuffer    *src,
                                         size_t       offset,
                                         float       *dst,
                                         size_t       n,
                                         GError     **error);
gboolean     bl_backend_synchronize     (BlBackend   *self,
                                         GError     **error);

void         bl_backend_copy            (BlBackend     *self,
                                         BlBuffer      *dst,
                                         BlBuffer      *src,
                                         size_t         n);
void         bl_backend_get_rows        (BlBackend     *self,
                                         BlBuffer      *dst,
                                         BlBuffer      *table,
                                         const int32_t *ids,
                                         int            n,
                                         int            dim);
void         bl_backend_matmul          (BlBackend     *self,
                                         BlBuffer      *y,
                                         BlBuffer      *x,
                                         BlBuffer      *w,
                                         BlBuffer      *bias,
                                         int            n,
                                         int            in,
                                         int            out,
                                         gboolean       accumulate);
void         bl_backend_rmsnorm         (BlBackend     *self,
                                         BlBuffer      *y,
                                         BlBuffer      *x,
                                         BlBuffer      *w,
                                         int            n,
                                         int            dim,
                                         float          eps);
void         bl_backend_rope            (BlBackend     *self,
                                         BlBuffer      *x,
                                         BlBuffer      *cos,
                                         BlBuffer      *sin,
                                         int            n,
                                         int            n_heads,
                                         int            head_dim);
void         bl_backend_attention       (BlBackend     *self,
                                         BlBuffer      *out,
                                         BlBuffer      *q,
                                         BlBuffer      *k,
                                         BlBuffer      *v,
                                         int            n,
                                         int            n_heads,
                                         int            n_kv_heads,
                                         int            head_dim,
                                         int            window);
void         bl_backend_swiglu          (BlBackend     *self,
                                         BlBuffer      *out,
                                         BlBuffer      *gate,
                                         BlBuffer      *up,
                                         size_t         n);
void         bl_backend_add             (BlBackend     *self,
                                         BlBuffer      *x,
                                         BlBuffer      *y,
                                         size_t         n);
gboolean     bl_backend_nll             (BlBackend     *self,
                                         BlBuffer      *h,
                                         BlBuffer      *w,
                                         int            row0,
                                         int            n_rows,
                                         int            dim,
                                         int            vocab,
                                         const int32_t *targets,
                                         double        *nll,
                                         GError       **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (BlBackend, bl_backend_free)

G_END_DECLS
