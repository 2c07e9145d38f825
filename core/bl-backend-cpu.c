/* bl-backend-cpu.c: the built-in CPU backend (OpenBLAS sgemm plus a small thread pool)
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "bl-backend-private.h"
#include "bl-cpu-kernels-private.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bl-error.h"

/* Threading. OpenBLAS is kept single-threaded and every op, matrix products included, is
 * split across one pool of n_threads − 1 workers plus the calling thread: column tiles of a
 * product, (head, query block) pairs of attention, vocabulary slices of the log-softmax,
 * rows of the norms. A second set of threads inside OpenBLAS would spin (sched_yield) while
 * the pool runs the other ops and steal the cores from it; one pool never oversubscribes. */

typedef struct
{
  float *data;
  size_t n;
} CpuBuffer;

typedef void (*CpuTaskFunc) (gpointer data,
                             int      begin,
                             int      end,
                             int      thread);

typedef struct _CpuPool CpuPool;

typedef struct
{
  CpuPool *pool;
  int index;                  /* 1…n_workers; the calling thread is 0 */
} CpuWorker;

struct _CpuPool
{
  int n_workers;
  GThread **threads;
  CpuWorker *workers;
  GMutex lock;
  GCond work_cond;
  GCond done_cond;
  guint64 generation;
  int n_running;
  gboolean quit;

  /* The current job: items [0, n_items) handed out in chunks of @grain. */
  CpuTaskFunc func;
  gpointer data;
  int n_items;
  int grain;
  int next;                   /* atomic */
};

typedef struct
{
  float *data;
  size_t len;
} CpuScratch;

typedef struct
{
  int n_threads;
  char *description;
  CpuPool pool;
  CpuScratch *scratch;        /* one per thread: attention scores, vocabulary logits */
} CpuContext;

#define BUF(b) (((CpuBuffer *) (b))->data)

/* Thread pool */

static void
pool_run_chunks (CpuPool *pool,
                 int      thread)
{
  for (;;)
    {
      int begin = g_atomic_int_add (&pool->next, pool->grain);

      if (begin >= pool->n_items)
        break;
      pool->func (pool->data, begin, MIN (begin + pool->grain, pool->n_items), thread);
    }
}

static gpointer
pool_worker (gpointer user_data)
{
  CpuWorker *worker = user_data;
  CpuPool *pool = worker->pool;
  guint64 seen = 0;

  g_mutex_lock (&pool->lock);
  for (;;)
    {
      while (!pool->quit && pool->generation == seen)
        g_cond_wait (&pool->work_cond, &pool->lock);
      if (pool->quit)
        break;
      seen = pool->generation;
      g_mutex_unlock (&pool->lock);

      pool_run_chunks (pool, worker->index);

      g_mutex_lock (&pool->lock);
      if (--pool->n_running == 0)
        g_cond_signal (&pool->done_cond);
    }
  g_mutex_unlock (&pool->lock);
  return NULL;
}

static void
pool_init (CpuPool *pool,
           int      n_threads)
{
  g_mutex_init (&pool->lock);
  g_cond_init (&pool->work_cond);
  g_cond_init (&pool->done_cond);
  pool->n_workers = n_threads - 1;
  pool->threads = g_new0 (GThread *, MAX (pool->n_workers, 1));
  pool->workers = g_new0 (CpuWorker, MAX (pool->n_workers, 1));
  for (int i = 0; i < pool->n_workers; i++)
    {
      pool->workers[i].pool = pool;
      pool->workers[i].index = i + 1;
      pool->threads[i] = g_thread_new ("bl-cpu-worker", pool_worker, &pool->workers[i]);
    }
}

static void
pool_clear (CpuPool *pool)
{
  g_mutex_lock (&pool->lock);
  pool->quit = TRUE;
  g_cond_broadcast (&pool->work_cond);
  g_mutex_unlock (&pool->lock);
  for (int i = 0; i < pool->n_workers; i++)
    g_thread_join (pool->threads[i]);
  g_free (pool->threads);
  g_free (pool->workers);
  g_cond_clear (&pool->done_cond);
  g_cond_clear (&pool->work_cond);
  g_mutex_clear (&pool->lock);
}

/* Runs @func over [0, n_items) in chunks of @grain items, handed out first come first
 * served. Jobs under @min_work (in rough flops) stay on the calling thread: waking a worker
 * costs more than that. */
static void
pool_parallel_for (CpuPool     *pool,
                   int          n_items,
                   int          grain,
                   double       work,
                   CpuTaskFunc  func,
                   gpointer     data)
{
  if (n_items <= 0)
    return;
  grain = MAX (grain, 1);
  if (pool->n_workers == 0 || n_items <= grain || work < 65536.0)
    {
      func (data, 0, n_items, 0);
      return;
    }

  g_mutex_lock (&pool->lock);
  pool->func = func;
  pool->data = data;
  pool->n_items = n_items;
  pool->grain = grain;
  g_atomic_int_set (&pool->next, 0);
  pool->n_running = pool->n_workers;
  pool->generation++;
  g_cond_broadcast (&pool->work_cond);
  g_mutex_unlock (&pool->lock);

  pool_run_chunks (pool, 0);

  g_mutex_lock (&pool->lock);
  while (pool->n_running > 0)
    g_cond_wait (&pool->done_cond, &pool->lock);
  g_mutex_unlock (&pool->lock);
}

/* A grain that gives each thread a few chunks, for load balance without much overhead. */
static int
grain_for (CpuContext *ctx,
           int         n_items)
{
  return MAX (1, n_items / (4 * ctx->n_threads));
}

/* Makes every thread's scratch hold @n floats; called before a job, never inside one. */
static void
scratch_reserve (CpuContext *ctx,
                 size_t      n)
{
  for (int t = 0; t < ctx->n_threads; t++)
    {
      CpuScratch *s = &ctx->scratch[t];

      if (n <= s->len)
        continue;
      free (s->data);
      s->data = NULL;
      if (posix_memalign ((void **) &s->data, 64, n * sizeof (float)) != 0)
        g_error ("Out of memory allocating %" G_GSIZE_FORMAT " bytes of CPU scratch",
                 n * sizeof (float));
      s->len = n;
    }
}

static void
blas_single_thread (void)
{
  /* OpenBLAS's thread count is process-wide and something else may have raised it. */
  if (openblas_get_num_threads () != 1)
    openblas_set_num_threads (1);
}

/* Context and buffers */

static gpointer
cpu_init (int      n_threads,
          GError **error)
{
  CpuContext *ctx = g_new0 (CpuContext, 1);

  ctx->n_threads = MAX (n_threads, 1);
  ctx->description = g_strdup_printf ("CPU, %d thread%s, OpenBLAS %s", ctx->n_threads,
                                      ctx->n_threads == 1 ? "" : "s",
                                      openblas_get_corename ());
  ctx->scratch = g_new0 (CpuScratch, ctx->n_threads);
  pool_init (&ctx->pool, ctx->n_threads);
  blas_single_thread ();
  return ctx;
}

static void
cpu_finalize (gpointer data)
{
  CpuContext *ctx = data;

  pool_clear (&ctx->pool);
  for (int t = 0; t < ctx->n_threads; t++)
    free (ctx->scratch[t].data);
  g_free (ctx->scratch);
  g_free (ctx->description);
  g_free (ctx);
}

static const char *
cpu_get_description (gpointer data)
{
  return ((CpuContext *) data)->description;
}

static BlBuffer *
cpu_buffer_new (gpointer  data,
                size_t    n_elements,
                GError  **error)
{
  CpuBuffer *buffer = g_new0 (CpuBuffer, 1);

  /* 64-byte alignment keeps rows friendly to AVX-512 loads inside OpenBLAS. */
  if (posix_memalign ((void **) &buffer->data, 64, MAX (n_elements, 1) * sizeof (float)) != 0)
    {
      g_free (buffer);
      g_set_error (error, BL_ERROR, BL_ERROR_OUT_OF_MEMORY,
                   "Cannot allocate %" G_GSIZE_FORMAT " bytes for a CPU buffer",
                   n_elements * sizeof (float));
      return NULL;
    }
  buffer->n = n_elements;
  return (BlBuffer *) buffer;
}

static void
cpu_buffer_free (gpointer  data,
                 BlBuffer *buffer)
{
  CpuBuffer *b = (CpuBuffer *) buffer;

  free (b->data);
  g_free (b);
}

static float *
cpu_buffer_map (gpointer  data,
                BlBuffer *buffer)
{
  return BUF (buffer);
}

static gboolean
range_error (BlBuffer  *buffer,
             size_t     offset,
             size_t     n,
             GError   **error)
{
  g_set_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT,
               "Elements %" G_GSIZE_FORMAT "…%" G_GSIZE_FORMAT " are outside a CPU buffer of %"
               G_GSIZE_FORMAT, offset, offset + n, ((CpuBuffer *) buffer)->n);
  return FALSE;
}

static gboolean
cpu_upload (gpointer     data,
            BlBuffer    *dst,
            size_t       offset,
            const float *src,
            size_t       n,
            GError     **error)
{
  if (offset + n > ((CpuBuffer *) dst)->n)
    return range_error (dst, offset, n, error);
  memcpy (BUF (dst) + offset, src, n * sizeof (float));
  return TRUE;
}

static gboolean
cpu_download (gpointer  data,
              BlBuffer *src,
              size_t    offset,
              float    *dst,
              size_t    n,
              GError  **error)
{
  if (offset + n > ((CpuBuffer *) src)->n)
    return range_error (src, offset, n, error);
  memcpy (dst, BUF (src) + offset, n * sizeof (float));
  return TRUE;
}

static gboolean
cpu_synchronize (gpointer  data,
                 GError  **error)
{
  return TRUE;
}

/* Ops */

static void
cpu_copy (gpointer  data,
          BlBuffer *dst,
          BlBuffer *src,
          size_t    n)
{
  memcpy (BUF (dst), BUF (src), n * sizeof (float));
}

static void
cpu_get_rows (gpointer       data,
              BlBuffer      *dst,
              BlBuffer      *table,
              const int32_t *ids,
              int            n,
              int            dim)
{
  float *restrict out = BUF (dst);
  const float *restrict t = BUF (table);

  for (int i = 0; i < n; i++)
    memcpy (out + (size_t) i * dim, t + (size_t) ids[i] * dim, (size_t) dim * sizeof (float));
}

typedef struct
{
  float *y;
  const float *x;
  const float *w;
  const float *bias;
  int n;
  int in;
  int out;
  int tile;
  gboolean accumulate;
} MatmulJob;

/* Output columns [tile·begin, tile·end) of y = x·wᵀ + bias. */
static void
matmul_tiles (gpointer data,
              int      begin,
              int      end,
              int      thread)
{
  const MatmulJob *job = data;
  int c0 = begin * job->tile;
  int cols = MIN (end * job->tile, job->out) - c0;
  float beta = job->accumulate ? 1.0f : 0.0f;
  float *y = job->y + c0;

  /* As torch.addmm does for nn.Linear: the bias is broadcast into the output first and the
   * product is accumulated onto it (beta = 1). */
  if (job->bias != NULL)
    {
      const float *restrict b = job->bias + c0;

      for (int i = 0; i < job->n; i++)
        {
          float *restrict row = y + (size_t) i * job->out;

          if (job->accumulate)
            for (int j = 0; j < cols; j++)
              row[j] += b[j];
          else
            memcpy (row, b, (size_t) cols * sizeof (float));
        }
      beta = 1.0f;
    }
  cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasTrans, job->n, cols, job->in,
               1.0f, job->x, job->in, job->w + (size_t) c0 * job->in, job->in, beta,
               y, job->out);
}

/* Column tiles of a product: a multiple of 16 columns (the sgemm kernels' register width),
 * about two per thread so that a thread slowed by another process can be caught up. */
static int
matmul_tile (CpuContext *ctx,
             int         out)
{
  int tile = (out + ctx->n_threads - 1) / ctx->n_threads;

  tile = (tile + 15) / 16 * 16;
  return MAX (tile, 64);
}

static void
cpu_matmul (gpointer  data,
            BlBuffer *y,
            BlBuffer *x,
            BlBuffer *w,
            BlBuffer *bias,
            int       n,
            int       in,
            int       out,
            gboolean  accumulate)
{
  CpuContext *ctx = data;
  int tile = matmul_tile (ctx, out);
  MatmulJob job = { BUF (y), BUF (x), BUF (w), bias ? BUF (bias) : NULL, n, in, out, tile,
                    accumulate };

  blas_single_thread ();
  pool_parallel_for (&ctx->pool, (out + tile - 1) / tile, 1, 2.0 * n * in * out,
                     matmul_tiles, &job);
}

typedef struct
{
  float *y;
  const float *x;
  const float *w;
  int dim;
  float eps;
} RmsNormJob;

static void
rmsnorm_rows (gpointer data,
              int      begin,
              int      end,
              int      thread)
{
  const RmsNormJob *job = data;
  const float *restrict w = job->w;
  int dim = job->dim;

  for (int i = begin; i < end; i++)
    {
      const float *restrict x = job->x + (size_t) i * dim;
      float *y = job->y + (size_t) i * dim;
      double ss = 0.0;
      float r;

      for (int j = 0; j < dim; j++)
        ss += (double) x[j] * x[j];
      /* HF LlamaRMSNorm: x * rsqrt(mean(x²) + eps) in fp32, then weight * that. */
      r = 1.0f / sqrtf ((float) (ss / dim) + job->eps);
      for (int j = 0; j < dim; j++)
        y[j] = w[j] * (x[j] * r);
    }
}

static void
cpu_rmsnorm (gpointer  data,
             BlBuffer *y,
             BlBuffer *x,
             BlBuffer *w,
             int       n,
             int       dim,
             float     eps)
{
  CpuContext *ctx = data;
  RmsNormJob job = { BUF (y), BUF (x), BUF (w), dim, eps };

  pool_parallel_for (&ctx->pool, n, grain_for (ctx, n), 3.0 * n * dim, rmsnorm_rows, &job);
}

typedef struct
{
  float *x;
  const float *cos;
  const float *sin;
  int n_heads;
  int head_dim;
} RopeJob;

static void
rope_rows (gpointer data,
           int      begin,
           int      end,
           int      thread)
{
  const RopeJob *job = data;
  int half = job->head_dim / 2;
  size_t stride = (size_t) job->n_heads * job->head_dim;

  for (int i = begin; i < end; i++)
    {
      const float *restrict c = job->cos + (size_t) i * half;
      const float *restrict s = job->sin + (size_t) i * half;

      for (int h = 0; h < job->n_heads; h++)
        {
          float *restrict lo = job->x + i * stride + (size_t) h * job->head_dim;
          float *restrict hi = lo + half;

          /* q·cos + rotate_half(q)·sin with rotate_half(q) = (−q_hi, q_lo), as in HF's
           * apply_rotary_pos_emb; each product is rounded before the sum, as there. */
          for (int j = 0; j < half; j++)
            {
              float a = lo[j];
              float b = hi[j];

              lo[j] = a * c[j] - b * s[j];
              hi[j] = b * c[j] + a * s[j];
            }
        }
    }
}

static void
cpu_rope (gpointer  data,
          BlBuffer *x,
          BlBuffer *cos,
          BlBuffer *sin,
          int       n,
          int       n_heads,
          int       head_dim)
{
  CpuContext *ctx = data;
  RopeJob job = { BUF (x), BUF (cos), BUF (sin), n_heads, head_dim };

  pool_parallel_for (&ctx->pool, n, grain_for (ctx, n), 3.0 * n * n_heads * head_dim,
                     rope_rows, &job);
}

/* Query rows per attention block. Blocks keep the causal waste of the dense products below
 * about 1/(2·blocks) while staying large enough for sgemm to run near peak. */
#define ATTENTION_BLOCK 128

typedef struct
{
  CpuContext *ctx;
  float *out;
  const float *q;
  const float *k;
  const float *v;
  int n;
  int n_heads;
  int group;                  /* query heads per key/value head */
  int head_dim;
  int n_blocks;
  float scale;
  int window;                 /* keys a query sees, itself included; 0: all earlier ones */
} AttentionJob;

/* Softmax of rows [0, rows) of @s (leading dimension @ld, column c holding key key0 + c),
 * row r (query row0 + r) attending to keys max(0, row0 + r − window + 1)…row0 + r (all
 * earlier keys when @window is 0); masked keys get probability 0, as exp(−inf) gives in HF's
 * masked softmax. */
static void
causal_softmax (float *s,
                int    rows,
                int    ld,
                int    row0,
                int    key0,
                int    window)
{
  for (int r = 0; r < rows; r++)
    {
      float *p = s + (size_t) r * ld;
      int last = row0 + r - key0;
      int first = window > 0 ? MAX (0, last - window + 1) : 0;

      memset (p, 0, (size_t) first * sizeof (float));
      bl_cpu_softmax_row (p + first, last - first + 1);
      memset (p + last + 1, 0, (size_t) (ld - last - 1) * sizeof (float));
    }
}

/* Items are (query block, head) pairs, the costliest (last) blocks first so that the cheap
 * ones fill the gaps at the end. */
static void
attention_items (gpointer data,
                 int      begin,
                 int      end,
                 int      thread)
{
  const AttentionJob *job = data;
  float *scores = job->ctx->scratch[thread].data;
  int ldq = job->n_heads * job->head_dim;
  int ldk = ldq / job->group;

  for (int item = begin; item < end; item++)
    {
      int h = item % job->n_heads;
      int b = job->n_blocks - 1 - item / job->n_heads;
      int r0 = b * ATTENTION_BLOCK;
      int rows = MIN (ATTENTION_BLOCK, job->n - r0);
      /* the block's queries see keys key0…r0 + rows − 1: all earlier ones, or under a
       * sliding window those its first query still sees */
      int key0 = job->window > 0 ? MAX (0, r0 - job->window + 1) : 0;
      int keys = r0 + rows - key0;
      const float *kh = job->k + (size_t) key0 * ldk + (size_t) (h / job->group) * job->head_dim;
      const float *vh = job->v + (size_t) key0 * ldk + (size_t) (h / job->group) * job->head_dim;
      size_t at = (size_t) r0 * ldq + (size_t) h * job->head_dim;

      /* softmax(Q·Kᵀ/√d)·V (Vaswani et al. 2017, eq. 1); HF scales the product the same way. */
      cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasTrans, rows, keys, job->head_dim,
                   job->scale, job->q + at, ldq, kh, ldk, 0.0f, scores, keys);
      causal_softmax (scores, rows, keys, r0, key0, job->window);
      cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, job->head_dim, keys,
                   1.0f, scores, keys, vh, ldk, 0.0f, job->out + at, ldq);
    }
}

static void
cpu_attention (gpointer  data,
               BlBuffer *out,
               BlBuffer *q,
               BlBuffer *k,
               BlBuffer *v,
               int       n,
               int       n_heads,
               int       n_kv_heads,
               int       head_dim,
               int       window)
{
  CpuContext *ctx = data;
  AttentionJob job = {
    ctx, BUF (out), BUF (q), BUF (k), BUF (v), n, n_heads, n_heads / n_kv_heads, head_dim,
    (n + ATTENTION_BLOCK - 1) / ATTENTION_BLOCK, 1.0f / sqrtf ((float) head_dim), window,
  };

  scratch_reserve (ctx, (size_t) MIN (n, ATTENTION_BLOCK) * n);
  blas_single_thread ();
  pool_parallel_for (&ctx->pool, job.n_blocks * n_heads, 1,
                     2.0 * n * n * n_heads * head_dim, attention_items, &job);
}

typedef struct
{
  float *out;
  const float *gate;
  const float *up;
} SwigluJob;

#define ELEMENTWISE_GRAIN 16384

static void
swiglu_range (gpointer data,
              int      begin,
              int      end,
              int      thread)
{
  const SwigluJob *job = data;

  bl_cpu_swiglu (job->out + begin, job->gate + begin, job->up + begin, end - begin);
}

static void
cpu_swiglu (gpointer  data,
            BlBuffer *out,
            BlBuffer *gate,
            BlBuffer *up,
            size_t    n)
{
  CpuContext *ctx = data;
  SwigluJob job = { BUF (out), BUF (gate), BUF (up) };

  g_return_if_fail (n <= G_MAXINT);
  pool_parallel_for (&ctx->pool, (int) n, ELEMENTWISE_GRAIN, 8.0 * n, swiglu_range, &job);
}

typedef struct
{
  float *x;
  const float *y;
} AddJob;

static void
add_range (gpointer data,
           int      begin,
           int      end,
           int      thread)
{
  const AddJob *job = data;
  float *restrict x = job->x;
  const float *restrict y = job->y;

  for (int i = begin; i < end; i++)
    x[i] += y[i];
}

static void
cpu_add (gpointer  data,
         BlBuffer *x,
         BlBuffer *y,
         size_t    n)
{
  CpuContext *ctx = data;
  AddJob job = { BUF (x), BUF (y) };

  g_return_if_fail (n <= G_MAXINT);
  pool_parallel_for (&ctx->pool, (int) n, ELEMENTWISE_GRAIN, (double) n, add_range, &job);
}

/* Vocabulary columns per slice of the fused output projection + log-softmax: the logits of
 * one slice stay a few MB while the projection weight is streamed from memory once. */
#define NLL_VOCAB_SLICE 2048

typedef struct
{
  CpuContext *ctx;
  const float *h;             /* the first scored row */
  const float *w;
  int n_rows;
  int dim;
  int vocab;
  const int32_t *targets;
  float **max;                /* per thread: running row maxima */
  double **sum;               /* per thread: running Σ exp(logit − max) */
  double *target_logit;       /* each row's target lies in exactly one slice */
} NllJob;

static void
nll_slices (gpointer data,
            int      begin,
            int      end,
            int      thread)
{
  const NllJob *job = data;
  float *logits = job->ctx->scratch[thread].data;
  float *max = job->max[thread];
  double *sum = job->sum[thread];

  for (int slice = begin; slice < end; slice++)
    {
      int c0 = slice * NLL_VOCAB_SLICE;
      int cols = MIN (NLL_VOCAB_SLICE, job->vocab - c0);

      cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasTrans, job->n_rows, cols, job->dim,
                   1.0f, job->h, job->dim, job->w + (size_t) c0 * job->dim, job->dim, 0.0f,
                   logits, cols);
      for (int r = 0; r < job->n_rows; r++)
        {
          const float *l = logits + (size_t) r * cols;
          int t = job->targets[r] - c0;

          bl_cpu_logsumexp_update (l, cols, &max[r], &sum[r]);
          if (t >= 0 && t < cols)
            job->target_logit[r] = l[t];
        }
    }
}

static gboolean
cpu_nll (gpointer       data,
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
  CpuContext *ctx = data;
  int n_slices = (vocab + NLL_VOCAB_SLICE - 1) / NLL_VOCAB_SLICE;
  g_autofree float *max_store = g_new (float, (size_t) ctx->n_threads * n_rows);
  g_autofree double *sum_store = g_new0 (double, (size_t) ctx->n_threads * n_rows);
  g_autofree float **max = g_new (float *, ctx->n_threads);
  g_autofree double **sum = g_new (double *, ctx->n_threads);
  g_autofree double *target_logit = g_new0 (double, n_rows);
  NllJob job = { ctx, BUF (h) + (size_t) row0 * dim, BUF (w), n_rows, dim, vocab, targets,
                 max, sum, target_logit };

  for (size_t i = 0; i < (size_t) ctx->n_threads * n_rows; i++)
    max_store[i] = -INFINITY;
  for (int t = 0; t < ctx->n_threads; t++)
    {
      max[t] = max_store + (size_t) t * n_rows;
      sum[t] = sum_store + (size_t) t * n_rows;
    }

  scratch_reserve (ctx, (size_t) n_rows * MIN (vocab, NLL_VOCAB_SLICE));
  blas_single_thread ();
  pool_parallel_for (&ctx->pool, n_slices, 1, 2.0 * n_rows * dim * vocab, nll_slices, &job);

  /* Merge the threads' partial log-sum-exps, then −log softmax(l)_t = M + log S − l_t. */
  for (int r = 0; r < n_rows; r++)
    {
      float m = -INFINITY;
      double s = 0.0;

      for (int t = 0; t < ctx->n_threads; t++)
        m = MAX (m, max[t][r]);
      for (int t = 0; t < ctx->n_threads; t++)
        if (sum[t][r] > 0.0)
          s += sum[t][r] * exp ((double) max[t][r] - (double) m);
      nll[r] = (double) m + log (s) - target_logit[r];
    }
  return TRUE;
}

static const BlBackendClass cpu_class = {
  .name = "cpu",
  .priority = 0,
  .init = cpu_init,
  .finalize = cpu_finalize,
  .get_description = cpu_get_description,
  .buffer_new = cpu_buffer_new,
  .buffer_free = cpu_buffer_free,
  .buffer_map = cpu_buffer_map,
  .upload = cpu_upload,
  .download = cpu_download,
  .synchronize = cpu_synchronize,
  .copy = cpu_copy,
  .get_rows = cpu_get_rows,
  .matmul = cpu_matmul,
  .rmsnorm = cpu_rmsnorm,
  .rope = cpu_rope,
  .attention = cpu_attention,
  .swiglu = cpu_swiglu,
  .add = cpu_add,
  .nll = cpu_nll,
};

const BlBackendClass *
bl_backend_cpu_get_class (void)
{
  return &cpu_class;
}
