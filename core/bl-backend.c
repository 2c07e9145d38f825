/* bl-backend.c: the backend registry and the thin dispatch layer over the vtable
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "bl-backend.h"
#include "bl-backend-private.h"

#include <string.h>

#include "bl-error.h"

/**
 * SECTION:bl-backend
 * @title: BlBackend
 *
 * A #BlBackend is a #BlBackendClass vtable plus the context its init returned, as ggml's
 * backends are. The forward pass (#BlEngine) is written once against these entry points.
 * The CPU backend is built in; other backends (CUDA, in gpu/) register their class at run
 * time with bl_backend_register(), so the core never links to them.
 */

struct _BlBackend
{
  const BlBackendClass *klass;
  gpointer ctx;
  int n_threads;
};

static GMutex registry_lock;
static GPtrArray *registry;   /* const BlBackendClass *, registration order, cpu first */

/* Called with registry_lock held. */
static void
ensure_registry (void)
{
  if (registry != NULL)
    return;
  registry = g_ptr_array_new ();
  g_ptr_array_add (registry, (gpointer) bl_backend_cpu_get_class ());
}

static const BlBackendClass *
lookup_class (const char *name)
{
  for (guint i = 0; i < registry->len; i++)
    {
      const BlBackendClass *klass = g_ptr_array_index (registry, i);
      if (strcmp (klass->name, name) == 0)
        return klass;
    }
  return NULL;
}

static gboolean
class_is_complete (const BlBackendClass *k)
{
  return k->name != NULL && k->init != NULL && k->finalize != NULL &&
         k->get_description != NULL && k->buffer_new != NULL && k->buffer_free != NULL &&
         k->buffer_map != NULL && k->upload != NULL && k->download != NULL &&
         k->synchronize != NULL && k->copy != NULL && k->get_rows != NULL &&
         k->matmul != NULL && k->rmsnorm != NULL && k->rope != NULL &&
         k->attention != NULL && k->swiglu != NULL && k->add != NULL && k->nll != NULL;
}

/**
 * bl_backend_register:
 * @klass: (transfer none): a vtable with static storage duration and every member set
 *
 * Makes a backend available to bl_backend_new() under @klass->name. Registering a name
 * twice replaces the earlier class. Thread-safe.
 */
void
bl_backend_register (const BlBackendClass *klass)
{
  g_return_if_fail (klass != NULL);
  g_return_if_fail (class_is_complete (klass));

  g_mutex_lock (&registry_lock);
  ensure_registry ();
  for (guint i = 0; i < registry->len; i++)
    {
      const BlBackendClass *other = g_ptr_array_index (registry, i);
      if (strcmp (other->name, klass->name) == 0)
        {
          registry->pdata[i] = (gpointer) klass;
          g_mutex_unlock (&registry_lock);
          return;
        }
    }
  g_ptr_array_add (registry, (gpointer) klass);
  g_mutex_unlock (&registry_lock);
}

/**
 * bl_backend_list_names:
 *
 * Returns: (transfer full): the names of the registered backends, in registration order
 *   ("cpu" first)
 */
char **
bl_backend_list_names (void)
{
  GStrvBuilder *builder = g_strv_builder_new ();
  char **names;

  g_mutex_lock (&registry_lock);
  ensure_registry ();
  for (guint i = 0; i < registry->len; i++)
    g_strv_builder_add (builder, ((const BlBackendClass *) g_ptr_array_index (registry, i))->name);
  g_mutex_unlock (&registry_lock);

  names = g_strv_builder_end (builder);
  g_strv_builder_unref (builder);
  return names;
}

static BlBackend *
backend_new_from_class (const BlBackendClass *klass,
                        int                   n_threads,
                        GError              **error)
{
  gpointer ctx = klass->init (n_threads, error);
  BlBackend *self;

  if (ctx == NULL)
    return NULL;
  self = g_new0 (BlBackend, 1);
  self->klass = klass;
  self->ctx = ctx;
  self->n_threads = n_threads;
  return self;
}

static int
compare_priority (gconstpointer a,
                  gconstpointer b)
{
  const BlBackendClass *ka = *(const BlBackendClass * const *) a;
  const BlBackendClass *kb = *(const BlBackendClass * const *) b;

  return (kb->priority > ka->priority) - (kb->priority < ka->priority);
}

/**
 * bl_backend_new:
 * @name: a registered backend name ("cpu", "cuda"), or "auto"
 * @n_threads: host threads to use; 0 or less means one per processor
 * @error: return location for a #GError
 *
 * Creates a backend. "auto" tries the registered backends from the highest priority down and
 * returns the first one that initialises, so it falls back to the CPU. An unknown name fails
 * with %BL_ERROR_INVALID_ARGUMENT; a known backend that cannot start (no device) fails with
 * the backend's own error, normally %BL_ERROR_GPU. Both messages list the available backends.
 *
 * Returns: (transfer full) (nullable): the backend, or %NULL with @error set
 */
BlBackend *
bl_backend_new (const char  *name,
                int          n_threads,
                GError     **error)
{
  g_autoptr(GPtrArray) candidates = g_ptr_array_new ();
  g_auto(GStrv) names = NULL;
  g_autofree char *list = NULL;
  const BlBackendClass *klass;
  GError *local_error = NULL;
  BlBackend *self;

  g_return_val_if_fail (name != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (n_threads <= 0)
    n_threads = (int) g_get_num_processors ();

  names = bl_backend_list_names ();
  list = g_strjoinv (", ", names);

  g_mutex_lock (&registry_lock);
  ensure_registry ();
  if (strcmp (name, "auto") == 0)
    {
      for (guint i = 0; i < registry->len; i++)
        g_ptr_array_add (candidates, g_ptr_array_index (registry, i));
      g_ptr_array_sort (candidates, compare_priority);
      klass = NULL;
    }
  else
    {
      klass = lookup_class (name);
    }
  g_mutex_unlock (&registry_lock);

  if (strcmp (name, "auto") == 0)
    {
      for (guint i = 0; i < candidates->len; i++)
        {
          const BlBackendClass *k = g_ptr_array_index (candidates, i);

          self = backend_new_from_class (k, n_threads, &local_error);
          if (self != NULL)
            return self;
          /* Said aloud: a user who has a GPU must learn why the run is on the CPU. */
          g_message ("Backend “%s” is not available: %s; trying the next one", k->name,
                     local_error->message);
          g_clear_error (&local_error);
        }
      g_set_error (error, BL_ERROR, BL_ERROR_GPU,
                   "No backend could be started (registered: %s)", list);
      return NULL;
    }

  if (klass == NULL)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT,
                   "Unknown backend “%s” (available: %s, auto)", name, list);
      return NULL;
    }

  self = backend_new_from_class (klass, n_threads, &local_error);
  if (self == NULL)
    {
      g_propagate_prefixed_error (error, local_error,
                                  "Backend “%s” is not available (registered: %s): ", name, list);
      return NULL;
    }
  return self;
}

/**
 * bl_backend_free:
 * @self: (nullable): a backend
 *
 * Frees the backend. Buffers it allocated must be freed before.
 */
void
bl_backend_free (BlBackend *self)
{
  if (self == NULL)
    return;
  self->klass->finalize (self->ctx);
  g_free (self);
}

/**
 * bl_backend_get_name:
 * @self: a backend
 *
 * Returns: the backend's registered name, e.g. "cpu"
 */
const char *
bl_backend_get_name (BlBackend *self)
{
  g_return_val_if_fail (self != NULL, NULL);
  return self->klass->name;
}

/**
 * bl_backend_get_description:
 * @self: a backend
 *
 * Returns: a one-line human description (device, threads)
 */
const char *
bl_backend_get_description (BlBackend *self)
{
  g_return_val_if_fail (self != NULL, NULL);
  return self->klass->get_description (self->ctx);
}

/**
 * bl_backend_get_context:
 * @self: a backend
 * @klass: the class @self is expected to be
 *
 * Gives a backend's own code (gpu/ entry points that take a #BlBackend) its context back,
 * after checking that @self really is of @klass.
 *
 * Returns: (transfer none) (nullable): the context init returned, or %NULL when @self is of
 *   another class
 */
gpointer
bl_backend_get_context (BlBackend            *self,
                        const BlBackendClass *klass)
{
  g_return_val_if_fail (self != NULL, NULL);
  return self->klass == klass ? self->ctx : NULL;
}

/**
 * bl_backend_get_n_threads:
 * @self: a backend
 *
 * Returns: the number of host threads the backend was created with
 */
int
bl_backend_get_n_threads (BlBackend *self)
{
  g_return_val_if_fail (self != NULL, 0);
  return self->n_threads;
}

/**
 * bl_backend_buffer_new:
 * @self: a backend
 * @n_elements: number of fp32 values
 * @error: return location for a #GError
 *
 * Returns: (transfer full) (nullable): a buffer with undefined contents
 */
BlBuffer *
bl_backend_buffer_new (BlBackend *self,
                       size_t     n_elements,
                       GError   **error)
{
  g_return_val_if_fail (self != NULL, NULL);
  return self->klass->buffer_new (self->ctx, n_elements, error);
}

/**
 * bl_backend_buffer_free:
 * @self: a backend
 * @buffer: (nullable): a buffer of @self
 */
void
bl_backend_buffer_free (BlBackend *self,
                        BlBuffer  *buffer)
{
  g_return_if_fail (self != NULL);
  if (buffer != NULL)
    self->klass->buffer_free (self->ctx, buffer);
}

/**
 * bl_backend_buffer_map:
 * @self: a backend
 * @buffer: a buffer of @self
 *
 * Returns: (nullable): the buffer's host address when the host can access it in place
 */
float *
bl_backend_buffer_map (BlBackend *self,
                       BlBuffer  *buffer)
{
  g_return_val_if_fail (self != NULL, NULL);
  return self->klass->buffer_map (self->ctx, buffer);
}

/**
 * bl_backend_upload:
 * @self: a backend
 * @dst: destination buffer
 * @offset: first element of @dst to write
 * @src: @n host values
 * @n: number of values
 * @error: return location for a #GError
 *
 * Returns: %TRUE on success
 */
gboolean
bl_backend_upload (BlBackend   *self,
                   BlBuffer    *dst,
                   size_t       offset,
                   const float *src,
                   size_t       n,
                   GError     **error)
{
  g_return_val_if_fail (self != NULL, FALSE);
  return self->klass->upload (self->ctx, dst, offset, src, n, error);
}

/**
 * bl_backend_download:
 * @self: a backend
 * @src: source buffer
 * @offset: first element of @src to read
 * @dst: room for @n host values
 * @n: number of values
 * @error: return location for a #GError
 *
 * Waits for queued work on @src.
 *
 * Returns: %TRUE on success
 */
gboolean
bl_backend_download (BlBackend *self,
                     BlBuffer  *src,
                     size_t     offset,
                     float     *dst,
                     size_t     n,
                     GError   **error)
{
  g_return_val_if_fail (self != NULL, FALSE);
  return self->klass->download (self->ctx, src, offset, dst, n, error);
}

/**
 * bl_backend_synchronize:
 * @self: a backend
 * @error: return location for a #GError
 *
 * Waits for queued work.
 *
 * Returns: %FALSE with @error set when a compute op failed since the last call
 */
gboolean
bl_backend_synchronize (BlBackend *self,
                        GError   **error)
{
  g_return_val_if_fail (self != NULL, FALSE);
  return self->klass->synchronize (self->ctx, error);
}

/**
 * bl_backend_copy:
 * @self: a backend
 * @dst: destination
 * @src: source
 * @n: number of values
 *
 * @dst[0..n) = @src[0..n).
 */
void
bl_backend_copy (BlBackend *self,
                 BlBuffer  *dst,
                 BlBuffer  *src,
                 size_t     n)
{
  self->klass->copy (self->ctx, dst, src, n);
}

/**
 * bl_backend_get_rows:
 * @self: a backend
 * @dst: [n, dim] output
 * @table: [*, dim] embedding table
 * @ids: @n host row indices, each within @table
 * @n: number of rows
 * @dim: row length
 *
 * Embedding lookup.
 */
void
bl_backend_get_rows (BlBackend     *self,
                     BlBuffer      *dst,
                     BlBuffer      *table,
                     const int32_t *ids,
                     int            n,
                     int            dim)
{
  self->klass->get_rows (self->ctx, dst, table, ids, n, dim);
}

/**
 * bl_backend_matmul:
 * @self: a backend
 * @y: [n, out] output
 * @x: [n, in] input
 * @w: [out, in] weight, row-major (Hugging Face's nn.Linear layout)
 * @bias: (nullable): [out] bias
 * @n: rows
 * @in: input features
 * @out: output features
 * @accumulate: add to @y instead of overwriting it (fuses a residual connection)
 *
 * @y = @x · @wᵀ + @bias (or @y += that).
 */
void
bl_backend_matmul (BlBackend *self,
                   BlBuffer  *y,
                   BlBuffer  *x,
                   BlBuffer  *w,
                   BlBuffer  *bias,
                   int        n,
                   int        in,
                   int        out,
                   gboolean   accumulate)
{
  self->klass->matmul (self->ctx, y, x, w, bias, n, in, out, accumulate);
}

/**
 * bl_backend_rmsnorm:
 * @self: a backend
 * @y: [n, dim] output, may be @x
 * @x: [n, dim] input
 * @w: [dim] weight
 * @n: rows
 * @dim: row length
 * @eps: added to the mean square
 *
 * Hugging Face LlamaRMSNorm (Zhang & Sennrich 2019), see #BlBackendClass.
 */
void
bl_backend_rmsnorm (BlBackend *self,
                    BlBuffer  *y,
                    BlBuffer  *x,
                    BlBuffer  *w,
                    int        n,
                    int        dim,
                    float      eps)
{
  self->klass->rmsnorm (self->ctx, y, x, w, n, dim, eps);
}

/**
 * bl_backend_rope:
 * @self: a backend
 * @x: [n, n_heads · head_dim], rotated in place
 * @cos: [n, head_dim / 2] cosines, one row per token
 * @sin: [n, head_dim / 2] sines
 * @n: rows
 * @n_heads: heads in @x
 * @head_dim: even head size
 *
 * Rotary position embedding (Su et al. 2021) in Hugging Face's rotate-half layout.
 */
void
bl_backend_rope (BlBackend *self,
                 BlBuffer  *x,
                 BlBuffer  *cos,
                 BlBuffer  *sin,
                 int        n,
                 int        n_heads,
                 int        head_dim)
{
  self->klass->rope (self->ctx, x, cos, sin, n, n_heads, head_dim);
}

/**
 * bl_backend_attention:
 * @self: a backend
 * @out: [n, n_heads · head_dim]
 * @q: [n, n_heads · head_dim]
 * @k: [n, n_kv_heads · head_dim]
 * @v: [n, n_kv_heads · head_dim]
 * @n: tokens
 * @n_heads: query heads
 * @n_kv_heads: key/value heads, dividing @n_heads
 * @head_dim: head size
 * @window: keys a query sees at most, itself included (sliding-window attention), or 0 for
 *   all earlier keys
 *
 * Causal grouped-query attention, see #BlBackendClass.
 */
void
bl_backend_attention (BlBackend *self,
                      BlBuffer  *out,
                      BlBuffer  *q,
                      BlBuffer  *k,
                      BlBuffer  *v,
                      int        n,
                      int        n_heads,
                      int        n_kv_heads,
                      int        head_dim,
                      int        window)
{
  g_return_if_fail (window >= 0);
  self->klass->attention (self->ctx, out, q, k, v, n, n_heads, n_kv_heads, head_dim, window);
}

/**
 * bl_backend_swiglu:
 * @self: a backend
 * @out: output, may be @gate
 * @gate: gate projection
 * @up: up projection
 * @n: number of values
 *
 * @out = silu(@gate) ⊙ @up (Shazeer 2020, "GLU Variants Improve Transformer").
 */
void
bl_backend_swiglu (BlBackend *self,
                   BlBuffer  *out,
                   BlBuffer  *gate,
                   BlBuffer  *up,
                   size_t     n)
{
  self->klass->swiglu (self->ctx, out, gate, up, n);
}

/**
 * bl_backend_add:
 * @self: a backend
 * @x: accumulated in place
 * @y: added
 * @n: number of values
 *
 * @x += @y.
 */
void
bl_backend_add (BlBackend *self,
                BlBuffer  *x,
                BlBuffer  *y,
                size_t     n)
{
  self->klass->add (self->ctx, x, y, n);
}

/**
 * bl_backend_nll:
 * @self: a backend
 * @h: [*, dim] final hidden states (after the final norm)
 * @w: [vocab, dim] output projection
 * @row0: first row of @h to score
 * @n_rows: rows to score
 * @dim: hidden size
 * @vocab: vocabulary size
 * @targets: @n_rows host target ids, each below @vocab
 * @nll: (out caller-allocates): @n_rows host results
 * @error: return location for a #GError
 *
 * Negative log-likelihood of each target under the log-softmax of its row's logits.
 *
 * Returns: %TRUE on success
 */
gboolean
bl_backend_nll (BlBackend     *self,
                BlBuffer      *h,
                BlBuffer      *w,
                int            row0,
                int            n_rows,
                int            dim,
                int            vocab,
                const int32_t *targets,
                double        *nll,
                GError       **error)
{
  g_return_val_if_fail (self != NULL, FALSE);
  return self->klass->nll (self->ctx, h, w, row0, n_rows, dim, vocab, targets, nll, error);
}
