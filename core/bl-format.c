/* bl-format.c: tensor-level quantize, dequantize and fake-quant over the traits table
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * A tensor is n_rows × n_cols, row-major; groups run along a row (see bl-format-blocks.h).
 * Every entry point goes through the traits table; the per-group kernels live in
 * bl-format-traits.c.
 */
#include "bl-format-private.h"

#include <math.h>
#include <string.h>

#include "bl-error.h"

/* the shrink grid of clip=mse: GPTQ quant.py find_params with grid = 100, maxshrink = 0.8 */
#define CLIP_GRID 100
#define CLIP_STEPS 80

const char *
bl_format_family_get_name (BlFormatFamily family)
{
  g_return_val_if_fail (family < BL_FORMAT_N_FAMILIES, NULL);
  return bl_format_traits_lookup (family)->name;
}

const char *
bl_format_family_get_description (BlFormatFamily family)
{
  g_return_val_if_fail (family < BL_FORMAT_N_FAMILIES, NULL);
  return bl_format_traits_lookup (family)->description;
}

/**
 * bl_format_family_get_examples:
 * @family: a family
 *
 * Returns: (transfer none) (array zero-terminated=1): canonical spec strings of the family's
 *   common members
 */
const char *const *
bl_format_family_get_examples (BlFormatFamily family)
{
  g_return_val_if_fail (family < BL_FORMAT_N_FAMILIES, NULL);
  return bl_format_traits_lookup (family)->examples;
}

/* the element bits of the family's default member */
int
bl_format_family_get_element_bits (BlFormatFamily family)
{
  g_return_val_if_fail (family < BL_FORMAT_N_FAMILIES, 0);
  return bl_format_traits_lookup (family)->element_bits;
}

/* the default block (group) size, 0 for per-channel or per-tensor families */
int
bl_format_family_get_block_size (BlFormatFamily family)
{
  g_return_val_if_fail (family < BL_FORMAT_N_FAMILIES, 0);
  return bl_format_traits_lookup (family)->block_size;
}

void
bl_format_spec_get_layout (const BlFormatSpec *spec,
                           BlFormatLayout     *out)
{
  memset (out, 0, sizeof *out);
  bl_format_traits_lookup (spec->family)->layout (spec, out);
}

static int
group_overhead_bits (const BlFormatLayout *l)
{
  return l->scales_per_group * l->scale_bits + l->zero_bits + l->selector_bits;
}

/**
 * bl_format_spec_bits_per_weight:
 * @spec: a spec
 *
 * The storage cost per weight of a full group: element bits plus every scale, zero point and
 * selector of the group divided by the group size (methods.md, cross-cutting note 3):
 * mxfp4 4.25, nvfp4 4.5, int4:g128 4.125. For channel and tensor granularity the overhead
 * depends on the shape and is left out; bl_format_spec_bits_for_shape() gives the exact
 * figure. int2+int4 counts its 4-bit share at the spec's percentage; NVFP4's one fp32 tensor
 * scale is left out.
 *
 * Returns: bits per weight
 */
double
bl_format_spec_bits_per_weight (const BlFormatSpec *spec)
{
  BlFormatLayout l;
  double bits;

  g_return_val_if_fail (spec != NULL, 0.0);

  bl_format_spec_get_layout (spec, &l);
  bits = l.elem_bits + l.extra_bits * spec->range_percent / 100.0 * (spec->family == BL_FORMAT_INT2_INT4);
  if (spec->granularity == BL_GRANULARITY_GROUP)
    bits += (double) group_overhead_bits (&l) / spec->group_size;
  return bits;
}

static void
geometry (const BlFormatSpec *spec,
          gint64              n_rows,
          gint64              n_cols,
          gint64             *group_size,
          gint64             *groups_per_row,
          gint64             *n_groups)
{
  switch (spec->granularity)
    {
    case BL_GRANULARITY_GROUP:
      *group_size = spec->group_size;
      *groups_per_row = (n_cols + spec->group_size - 1) / spec->group_size;
      *n_groups = n_rows * *groups_per_row;
      break;
    case BL_GRANULARITY_CHANNEL:
    case BL_GRANULARITY_TOKEN:
      *group_size = n_cols;
      *groups_per_row = 1;
      *n_groups = n_rows;
      break;
    case BL_GRANULARITY_TENSOR:
    default:
      *group_size = n_rows * n_cols;
      *groups_per_row = 0;
      *n_groups = 1;
      break;
    }
}

static gint64
mixed_n4 (const BlFormatSpec *spec,
          gint64              n_groups)
{
  if (spec->family != BL_FORMAT_INT2_INT4)
    return 0;
  return MIN (n_groups, (gint64) floor (spec->range_percent / 100.0 * (double) n_groups + 0.5));
}

/**
 * bl_format_spec_bits_for_shape:
 * @spec: a spec
 * @n_rows: rows (output channels)
 * @n_cols: columns (the grouped, input dimension)
 *
 * The exact payload bits per weight of a packed @n_rows × @n_cols tensor: codes, every
 * group's scales, zero points and selectors (a short last group in a row still pays for
 * them), the fp32 tensor scale of NVFP4/NVINT4 and the 4-bit share of int2+int4. The fixed
 * header and the section alignment of the packed buffer are not counted.
 *
 * Returns: bits per weight
 */
double
bl_format_spec_bits_for_shape (const BlFormatSpec *spec,
                               gint64              n_rows,
                               gint64              n_cols)
{
  BlFormatLayout l;
  gint64 gs, gpr, ng, n = n_rows * n_cols;
  double bits;

  g_return_val_if_fail (spec != NULL, 0.0);
  g_return_val_if_fail (n_rows > 0 && n_cols > 0, 0.0);

  bl_format_spec_get_layout (spec, &l);
  geometry (spec, n_rows, n_cols, &gs, &gpr, &ng);
  bits = (double) n * l.elem_bits + (double) ng * group_overhead_bits (&l);
  if (l.has_tensor_scale)
    bits += 32;
  bits += (double) mixed_n4 (spec, ng) * (double) gs * l.extra_bits;
  return bits / (double) n;
}

/* ------------------------------------------------------------------------------------------ */
/* packed layout */

static guint64
align_up (guint64 v)
{
  return (v + BL_PACKED_ALIGN - 1) / BL_PACKED_ALIGN * BL_PACKED_ALIGN;
}

static guint64
bits_to_bytes (guint64 bits)
{
  return (bits + 7) / 8;
}

static void
fill_header (const BlFormatSpec *spec,
             gint64              n_rows,
             gint64              n_cols,
             BlPackedHeader     *h)
{
  BlFormatLayout l;
  gint64 gs, gpr, ng, n = n_rows * n_cols;
  guint64 off;
  g_autofree char *str = bl_format_spec_to_string (spec);

  bl_format_spec_get_layout (spec, &l);
  geometry (spec, n_rows, n_cols, &gs, &gpr, &ng);

  memset (h, 0, sizeof *h);
  h->magic = BL_PACKED_MAGIC;
  h->version = BL_PACKED_VERSION;
  h->family = (uint16_t) spec->family;
  h->elem_bits = (uint8_t) l.elem_bits;
  if (bl_format_family_has_fp_element (spec->family))
    {
      h->ebits = (uint8_t) spec->ebits;
      h->mbits = (uint8_t) spec->mbits;
    }
  h->scale_kind = (uint8_t) l.scale_kind;
  h->scale_bits = (uint8_t) l.scale_bits;
  h->scales_per_group = (uint8_t) l.scales_per_group;
  h->zero_bits = (uint8_t) l.zero_bits;
  h->selector_bits = (uint8_t) l.selector_bits;
  h->group_size = (uint32_t) MIN (gs, (gint64) G_MAXUINT32);
  h->groups_per_row = (uint32_t) gpr;
  h->n_rows = n_rows;
  h->n_cols = n_cols;
  h->n_groups = (uint64_t) ng;
  h->tensor_scale = 1.0f;
  g_strlcpy (h->spec, str, sizeof h->spec);

  off = align_up (sizeof *h);
  h->codes_offset = off;
  h->codes_bytes = bits_to_bytes ((guint64) n * (guint64) l.elem_bits);
  off = align_up (off + h->codes_bytes);
  h->scales_offset = off;
  h->scales_bytes = (guint64) ng * (guint64) l.scales_per_group * (guint64) l.scale_bits / 8;
  off = align_up (off + h->scales_bytes);
  h->zeros_offset = off;
  h->zeros_bytes = bits_to_bytes ((guint64) ng * (guint64) l.zero_bits);
  off = align_up (off + h->zeros_bytes);
  h->selectors_offset = off;
  h->selectors_bytes = bits_to_bytes ((guint64) ng * (guint64) l.selector_bits);
  off = align_up (off + h->selectors_bytes);
  h->extra_offset = off;
  h->extra_bytes = bits_to_bytes ((guint64) mixed_n4 (spec, ng) * (guint64) gs * (guint64) l.extra_bits);
  h->total_bytes = align_up (off + h->extra_bytes);
}

/**
 * bl_format_packed_size:
 * @spec: a spec
 * @n_rows: rows
 * @n_cols: columns
 *
 * Returns: the bytes bl_format_quantize() writes for this shape (header, sections, padding)
 */
gsize
bl_format_packed_size (const BlFormatSpec *spec,
                       gint64              n_rows,
                       gint64              n_cols)
{
  BlPackedHeader h;

  g_return_val_if_fail (spec != NULL, 0);
  g_return_val_if_fail (n_rows > 0 && n_cols > 0, 0);

  fill_header (spec, n_rows, n_cols, &h);
  return (gsize) h.total_bytes;
}

/**
 * bl_format_packed_header_init:
 * @spec: a spec
 * @n_rows: rows
 * @n_cols: columns
 * @out: (out caller-allocates): the header
 *
 * Fills in the header that bl_format_quantize() writes for this spec and shape: the layout,
 * the geometry and every section's offset and size, with @out->tensor_scale 1 (quantizing
 * stores NVFP4's and NVINT4's own). Other writers and readers of the packed layout (the CUDA
 * kernels in gpu/) build and check their headers with it.
 */
void
bl_format_packed_header_init (const BlFormatSpec *spec,
                              gint64              n_rows,
                              gint64              n_cols,
                              BlPackedHeader     *out)
{
  g_return_if_fail (spec != NULL && out != NULL);
  g_return_if_fail (n_rows > 0 && n_cols > 0);

  fill_header (spec, n_rows, n_cols, out);
}

/* ------------------------------------------------------------------------------------------ */
/* context */

static void
ctx_clear (BlFormatCtx *ctx)
{
  g_clear_pointer (&ctx->selectors, g_free);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (BlFormatCtx, ctx_clear)

static void
ctx_setup (BlFormatCtx        *ctx,
           const BlFormatSpec *spec,
           gint64              n_rows,
           gint64              n_cols)
{
  memset (ctx, 0, sizeof *ctx);
  ctx->spec = *spec;
  ctx->traits = bl_format_traits_lookup (spec->family);
  bl_format_spec_get_layout (spec, &ctx->layout);
  if (bl_format_family_has_fp_element (spec->family))
    bl_fp_format_init (&ctx->elem, spec->ebits, spec->mbits);
  ctx->n_rows = n_rows;
  ctx->n_cols = n_cols;
  geometry (spec, n_rows, n_cols, &ctx->group_size, &ctx->groups_per_row, &ctx->n_groups);
  ctx->tensor_group = spec->granularity == BL_GRANULARITY_TENSOR;
  ctx->tensor_scale = 1.0f;
  ctx->prepare_threads = 1;
}

/* Σ (decode(encode(x)) − x)², through the reference pair */
static double
group_sq_error (const BlFormatCtx   *ctx,
                const BlGroupParams *p,
                const float         *x,
                gint64               n,
                guint64              index0)
{
  guint16 codes[BL_FORMAT_CHUNK];
  float y[BL_FORMAT_CHUNK];
  double err = 0.0;

  for (gint64 off = 0; off < n; off += BL_FORMAT_CHUNK)
    {
      gint64 len = MIN (BL_FORMAT_CHUNK, n - off);

      ctx->traits->encode (ctx, p, x + off, len, index0 + (guint64) off, codes);
      ctx->traits->decode (ctx, p, codes, len, y);
      for (gint64 i = 0; i < len; i++)
        {
          double d = (double) y[i] - (double) x[off + i];

          err += d * d;
        }
    }
  return err;
}

static void
group_params (const BlFormatCtx *ctx,
              const float       *x,
              gint64             n,
              gint64             group_index,
              guint64            index0,
              float             *scratch,
              BlGroupParams     *p)
{
  const BlFormatTraits *t = ctx->traits;

  void (*params) (const BlFormatCtx *, const float *, gint64, gint64, double, float *, BlGroupParams *)
    = ctx->fast_params && t->params_fast != NULL ? t->params_fast : t->params;

  switch (ctx->spec.clip)
    {
    case BL_CLIP_RATIO:
      params (ctx, x, n, group_index, ctx->spec.clip_ratio, scratch, p);
      break;
    case BL_CLIP_MSE:
      {
        double best = INFINITY;

        /* GPTQ's grid search: shrink the range by p = 1 − i/100 and keep the least squared
         * error (strictly smaller wins, so ties keep the wider range) */
        for (int i = 0; i < CLIP_STEPS; i++)
          {
            BlGroupParams q;
            double err;

            params (ctx, x, n, group_index, 1.0 - (double) i / CLIP_GRID, scratch, &q);
            err = group_sq_error (ctx, &q, x, n, index0);
            if (err < best || i == 0)
              {
                best = err;
                *p = q;
              }
          }
      }
      break;
    case BL_CLIP_NONE:
    default:
      params (ctx, x, n, group_index, 1.0, scratch, p);
      break;
    }
}

static gboolean
ctx_prepare (BlFormatCtx  *ctx,
             const float  *x,
             GError      **error)
{
  if (ctx->traits->prepare != NULL && !ctx->traits->prepare (ctx, x, error))
    return FALSE;
  if (ctx->tensor_group)
    {
      g_autofree float *scratch = NULL;
      gint64 n = ctx->n_rows * ctx->n_cols;

      if (ctx->traits->needs_scratch)
        {
          scratch = g_try_new (float, n);
          if (scratch == NULL)
            {
              g_set_error (error, BL_ERROR, BL_ERROR_OUT_OF_MEMORY,
                           "out of memory for a %" G_GINT64_FORMAT "-element scratch buffer", n);
              return FALSE;
            }
        }
      group_params (ctx, x, n, 0, 0, scratch, &ctx->tensor_params);
    }
  return TRUE;
}

static gboolean
check_shape (gint64   n_rows,
             gint64   n_cols,
             GError **error)
{
  if (n_rows <= 0 || n_cols <= 0 || n_rows > G_MAXINT64 / n_cols)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT,
                   "invalid tensor shape %" G_GINT64_FORMAT " × %" G_GINT64_FORMAT, n_rows, n_cols);
      return FALSE;
    }
  return TRUE;
}

/* ------------------------------------------------------------------------------------------ */
/* fake quant */

typedef struct
{
  const BlFormatCtx *ctx;
  const BlSimdRow *row;       /* the fused row kernel, or NULL */
  const float *src;
  float *dst;
  gint64 begin;               /* rows, or flattened elements for tensor granularity */
  gint64 end;
  gboolean fast;
  float *scratch;
} FakeJob;

static void
fake_span (const BlFormatCtx   *ctx,
           const BlGroupParams *p,
           const float         *x,
           gint64               n,
           guint64              index0,
           float               *y,
           gboolean             fast)
{
  guint16 codes[BL_FORMAT_CHUNK];

  if (fast)
    {
      ctx->traits->fake_fast (ctx, p, x, n, y);
      return;
    }
  for (gint64 off = 0; off < n; off += BL_FORMAT_CHUNK)
    {
      gint64 len = MIN (BL_FORMAT_CHUNK, n - off);

      ctx->traits->encode (ctx, p, x + off, len, index0 + (guint64) off, codes);
      ctx->traits->decode (ctx, p, codes, len, y + off);
    }
}

static void
fake_job_run (FakeJob *job)
{
  const BlFormatCtx *ctx = job->ctx;

  if (ctx->tensor_group)
    {
      fake_span (ctx, &ctx->tensor_params, job->src + job->begin, job->end - job->begin,
                 (guint64) job->begin, job->dst + job->begin, job->fast);
      return;
    }
  for (gint64 r = job->begin; r < job->end; r++)
    {
      const float *xr = job->src + r * ctx->n_cols;
      float *yr = job->dst + r * ctx->n_cols;

      if (job->row != NULL)
        {
          bl_simd_fake_row (job->row, xr, ctx->n_cols, ctx->group_size,
                            ctx->selectors != NULL ? ctx->selectors + r * ctx->groups_per_row : NULL, yr);
          continue;
        }
      for (gint64 g = 0; g < ctx->groups_per_row; g++)
        {
          gint64 col0 = g * ctx->group_size;
          gint64 len = MIN (ctx->group_size, ctx->n_cols - col0);
          guint64 index0 = (guint64) (r * ctx->n_cols + col0);
          BlGroupParams p;

          group_params (ctx, xr + col0, len, r * ctx->groups_per_row + g, index0, job->scratch, &p);
          fake_span (ctx, &p, xr + col0, len, index0, yr + col0, job->fast);
        }
    }
}

/* The worker pool: persistent threads that take the tasks of one batch at a time. A worker
 * that finishes spins for a short while before it sleeps, and so does a caller waiting for
 * its batch: fake-quantizing a model is one call per tensor, back to back, and waking a
 * sleeping thread costs tens of microseconds (measured 40 µs per call on a 2-core VM with a
 * GThreadPool), a quarter of the time of a SmolLM-sized tensor at memory speed. A caller that
 * finds the pool busy (another thread's batch, or a batch started from inside a task) runs
 * its tasks itself. */

#define POOL_MAX_WORKERS 63
#define POOL_SPIN 2000        /* polls, each a pause: tens of microseconds */

typedef struct
{
  GMutex busy;                /* held by the caller whose batch the pool runs */
  GMutex lock;                /* guards the batch, the claims and the sleep */
  GCond wake;
  gint generation;            /* bumped for each batch */
  gint done;                  /* tasks of the batch finished */
  int next;                   /* the next task to claim */
  int n_workers;
  void (*run) (gpointer task);
  guint8 *tasks;
  gsize task_size;
  int n_tasks;
} Pool;

static Pool pool;

static inline void
cpu_relax (void)
{
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause ();
#endif
}

/* claims and runs tasks of the current batch until none is left */
static void
pool_take_tasks (void)
{
  for (;;)
    {
      void (*run) (gpointer task);
      gpointer task;

      g_mutex_lock (&pool.lock);
      if (pool.next >= pool.n_tasks)
        {
          g_mutex_unlock (&pool.lock);
          return;
        }
      run = pool.run;
      task = pool.tasks + pool.task_size * (gsize) pool.next++;
      g_mutex_unlock (&pool.lock);
      run (task);
      g_atomic_int_inc (&pool.done);
    }
}

static gpointer
pool_worker (gpointer data)
{
  gint seen = GPOINTER_TO_INT (data);

  for (;;)
    {
      int spin = 0;

      while (g_atomic_int_get (&pool.generation) == seen && spin++ < POOL_SPIN)
        cpu_relax ();
      g_mutex_lock (&pool.lock);
      while (pool.generation == seen)
        g_cond_wait (&pool.wake, &pool.lock);
      seen = pool.generation;
      g_mutex_unlock (&pool.lock);
      pool_take_tasks ();
    }
  return NULL;
}

/* runs @run on each of the @n tasks of @tasks (@task_size bytes apart), on the calling thread
 * and up to @n − 1 workers, and returns when all are done */
void
bl_format_run_parallel (void     (*run) (gpointer task),
                        gpointer   tasks,
                        gsize      task_size,
                        int        n)
{
  int spin = 0;

  if (n <= 1 || !g_mutex_trylock (&pool.busy))
    {
      for (int t = 0; t < n; t++)
        run ((guint8 *) tasks + task_size * (gsize) t);
      return;
    }
  g_mutex_lock (&pool.lock);
  while (pool.n_workers < MIN (n - 1, POOL_MAX_WORKERS))
    {
      /* a new worker starts as if it had seen the current batch */
      g_thread_unref (g_thread_new ("bl-format", pool_worker, GINT_TO_POINTER (pool.generation)));
      pool.n_workers++;
    }
  pool.run = run;
  pool.tasks = tasks;
  pool.task_size = task_size;
  pool.n_tasks = n;
  pool.next = 0;
  g_atomic_int_set (&pool.done, 0);
  g_atomic_int_inc (&pool.generation);
  g_cond_broadcast (&pool.wake);
  g_mutex_unlock (&pool.lock);

  pool_take_tasks ();
  /* every task is claimed; wait for those still running on workers */
  while (g_atomic_int_get (&pool.done) < n)
    {
      cpu_relax ();
      if (++spin % 1024 == 0)
        g_thread_yield ();
    }
  g_mutex_unlock (&pool.busy);
}

typedef struct
{
  const float *x;
  gint64 n;
  float amax;
} AmaxTask;

static void
amax_task_run (gpointer data)
{
  AmaxTask *task = data;

  task->amax = bl_simd_amax (task->x, task->n);
}

/**
 * bl_format_parallel_amax:
 * @x: (array): values
 * @n: how many
 * @n_threads: threads to use
 *
 * max |x| over a whole tensor, split over threads; exact, so the split changes nothing.
 *
 * Returns: the maximum (NaN if any value is NaN)
 */
float
bl_format_parallel_amax (const float *x,
                         gint64       n,
                         int          n_threads)
{
  g_autofree AmaxTask *tasks = NULL;
  gint64 per;
  guint32 best = 0;

  if (n_threads <= 1 || n < 65536)
    return bl_simd_amax (x, n);
  tasks = g_new (AmaxTask, n_threads);
  per = (n + n_threads - 1) / n_threads;
  for (int t = 0; t < n_threads; t++)
    tasks[t] = (AmaxTask) { x + MIN (n, per * t), MIN (n, per * (t + 1)) - MIN (n, per * t), 0.0f };
  bl_format_run_parallel (amax_task_run, tasks, sizeof *tasks, n_threads);
  for (int t = 0; t < n_threads; t++)
    {
      guint32 b;

      memcpy (&b, &tasks[t].amax, sizeof b);
      best = b > best ? b : best;
    }
  {
    float r;

    memcpy (&r, &best, sizeof r);
    return r;
  }
}

static void
fake_job_task (gpointer data)
{
  fake_job_run (data);
}

static gboolean
fake_quant (const BlFormatSpec *spec,
            const float        *src,
            float              *dst,
            gint64              n_rows,
            gint64              n_cols,
            int                 n_threads,
            gboolean            allow_fast,
            GError            **error)
{
  g_auto (BlFormatCtx) ctx = { 0 };
  g_autofree FakeJob *jobs = NULL;
  g_autofree float *scratch = NULL;
  BlSimdRow row;
  gint64 units, per;
  gboolean fast, use_row;

  if (!check_shape (n_rows, n_cols, error))
    return FALSE;
  ctx_setup (&ctx, spec, n_rows, n_cols);
  /* the tensor-level statistics may use the threads; the per-group work never nests them */
  ctx.prepare_threads = MAX (n_threads, 1);
  ctx.fast_params = allow_fast;
  if (!ctx_prepare (&ctx, src, error))
    return FALSE;
  ctx.prepare_threads = 1;

  fast = allow_fast && ctx.traits->fake_fast != NULL
         && spec->rounding == bl_format_spec_default_rounding (spec);
  use_row = fast && !ctx.tensor_group && spec->clip != BL_CLIP_MSE && ctx.traits->row_setup != NULL
            && ctx.traits->row_setup (&ctx, &row);
  /* tensor granularity splits the flattened tensor at chunk multiples (complex-2bit pairs
   * must not straddle a split); otherwise whole rows */
  units = ctx.tensor_group ? (n_rows * n_cols + BL_FORMAT_CHUNK - 1) / BL_FORMAT_CHUNK : n_rows;
  n_threads = (int) CLAMP (n_threads, 1, MIN (units, 256));
  per = (units + n_threads - 1) / n_threads;

  jobs = g_new0 (FakeJob, n_threads);
  if (ctx.traits->needs_scratch && !ctx.tensor_group)
    {
      scratch = g_try_new (float, ctx.group_size * n_threads);
      if (scratch == NULL)
        {
          g_set_error (error, BL_ERROR, BL_ERROR_OUT_OF_MEMORY, "out of memory for group scratch buffers");
          return FALSE;
        }
    }
  for (int t = 0; t < n_threads; t++)
    {
      FakeJob *job = &jobs[t];

      job->ctx = &ctx;
      job->row = use_row ? &row : NULL;
      job->src = src;
      job->dst = dst;
      job->begin = MIN (units, per * t);
      job->end = MIN (units, per * (t + 1));
      if (ctx.tensor_group)
        {
          job->begin = MIN (job->begin * BL_FORMAT_CHUNK, n_rows * n_cols);
          job->end = MIN (job->end * BL_FORMAT_CHUNK, n_rows * n_cols);
        }
      job->fast = fast;
      job->scratch = scratch != NULL ? scratch + ctx.group_size * t : NULL;
    }
  bl_format_run_parallel (fake_job_task, jobs, sizeof *jobs, n_threads);
  return TRUE;
}

/**
 * bl_format_fake_quant:
 * @spec: the format
 * @src: (array): @n_rows × @n_cols input, row-major
 * @dst: (array): output of the same size; may equal @src
 * @n_rows: rows (output channels, or tokens)
 * @n_cols: columns (groups run along a row)
 * @n_threads: worker threads (1 runs in the caller)
 * @error: return location for a #GError
 *
 * Quantizes and dequantizes in one pass: the result is exactly
 * bl_format_dequantize(bl_format_quantize(@src)), computed with the family's fused fast
 * path where it has one.
 *
 * Returns: %TRUE on success
 */
gboolean
bl_format_fake_quant (const BlFormatSpec *spec,
                      const float        *src,
                      float              *dst,
                      gint64              n_rows,
                      gint64              n_cols,
                      int                 n_threads,
                      GError            **error)
{
  g_return_val_if_fail (spec != NULL, FALSE);
  g_return_val_if_fail (spec->family < BL_FORMAT_N_FAMILIES, FALSE);
  g_return_val_if_fail (src != NULL && dst != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  return fake_quant (spec, src, dst, n_rows, n_cols, n_threads, TRUE, error);
}

/**
 * bl_format_fake_quant_reference:
 * @spec: the format
 * @src: (array): input
 * @dst: (array): output
 * @n_rows: rows
 * @n_cols: columns
 * @error: return location for a #GError
 *
 * The oracle: the scalar encode/decode pair of every group, on one thread, without fused
 * fast paths. bl_format_fake_quant() must equal it bit for bit.
 *
 * Returns: %TRUE on success
 */
gboolean
bl_format_fake_quant_reference (const BlFormatSpec *spec,
                                const float        *src,
                                float              *dst,
                                gint64              n_rows,
                                gint64              n_cols,
                                GError            **error)
{
  g_return_val_if_fail (spec != NULL, FALSE);
  g_return_val_if_fail (spec->family < BL_FORMAT_N_FAMILIES, FALSE);
  g_return_val_if_fail (src != NULL && dst != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  return fake_quant (spec, src, dst, n_rows, n_cols, 1, FALSE, error);
}

/* ------------------------------------------------------------------------------------------ */
/* quantize / dequantize */

static void
put_scale (guint8  *section,
           guint64  index,
           int      scale_bits,
           guint32  code)
{
  if (scale_bits == 32)
    {
      guint32 le = GUINT32_TO_LE (code);

      memcpy (section + index * 4, &le, 4);
    }
  else
    bl_bits_put (section, index, (unsigned) scale_bits, code);
}

static guint32
get_scale (const guint8 *section,
           guint64       index,
           int           scale_bits)
{
  if (scale_bits == 32)
    {
      guint32 le;

      memcpy (&le, section + index * 4, 4);
      return GUINT32_FROM_LE (le);
    }
  return bl_bits_get (section, index, (unsigned) scale_bits);
}

static void
write_group (const BlFormatCtx   *ctx,
             const BlPackedHeader *h,
             guint8              *base,
             const BlGroupParams *p,
             gint64               group_index)
{
  const BlFormatLayout *l = &ctx->layout;

  for (int k = 0; k < l->scales_per_group; k++)
    put_scale (base + h->scales_offset, (guint64) group_index * (guint64) l->scales_per_group + (guint64) k,
               l->scale_bits, p->scale_code[k]);
  if (l->zero_bits > 0)
    bl_bits_put (base + h->zeros_offset, (guint64) group_index, (unsigned) l->zero_bits, (guint32) p->zero);
  if (l->selector_bits > 0)
    bl_bits_put (base + h->selectors_offset, (guint64) group_index, (unsigned) l->selector_bits,
                 (guint32) p->selector);
}

static void
write_codes (const BlFormatCtx   *ctx,
             const BlPackedHeader *h,
             guint8              *base,
             const BlGroupParams *p,
             const float         *x,
             gint64               n,
             guint64              index0,
             gint64               slot)
{
  guint16 codes[BL_FORMAT_CHUNK];
  unsigned eb = (unsigned) ctx->layout.elem_bits;

  for (gint64 off = 0; off < n; off += BL_FORMAT_CHUNK)
    {
      gint64 len = MIN (BL_FORMAT_CHUNK, n - off);

      ctx->traits->encode (ctx, p, x + off, len, index0 + (guint64) off, codes);
      for (gint64 i = 0; i < len; i++)
        {
          bl_bits_put (base + h->codes_offset, index0 + (guint64) (off + i), eb, codes[i]);
          if (slot >= 0)
            bl_bits_put (base + h->extra_offset,
                         (guint64) (slot * ctx->group_size + off + i), 2, codes[i] >> 2);
        }
    }
}

/**
 * bl_format_quantize:
 * @spec: the format
 * @src: (array): @n_rows × @n_cols input, row-major
 * @n_rows: rows
 * @n_cols: columns
 * @dst: (array): the packed output, bl_format_packed_size() bytes
 * @dst_size: size of @dst
 * @error: return location for a #GError
 *
 * Encodes @src into the packed layout of bl-format-blocks.h with the scalar reference
 * kernels.
 *
 * Returns: %TRUE on success
 */
gboolean
bl_format_quantize (const BlFormatSpec *spec,
                    const float        *src,
                    gint64              n_rows,
                    gint64              n_cols,
                    guint8             *dst,
                    gsize               dst_size,
                    GError            **error)
{
  g_auto (BlFormatCtx) ctx = { 0 };
  g_autofree float *scratch = NULL;
  BlPackedHeader h;
  gint64 slot = 0;

  g_return_val_if_fail (spec != NULL, FALSE);
  g_return_val_if_fail (spec->family < BL_FORMAT_N_FAMILIES, FALSE);
  g_return_val_if_fail (src != NULL && dst != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (!check_shape (n_rows, n_cols, error))
    return FALSE;
  fill_header (spec, n_rows, n_cols, &h);
  if (dst_size < h.total_bytes)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT,
                   "packed buffer of %" G_GSIZE_FORMAT " bytes is smaller than the %" G_GUINT64_FORMAT
                   " bytes %s needs for %" G_GINT64_FORMAT " × %" G_GINT64_FORMAT,
                   dst_size, (guint64) h.total_bytes, h.spec, n_rows, n_cols);
      return FALSE;
    }
  ctx_setup (&ctx, spec, n_rows, n_cols);
  if (!ctx_prepare (&ctx, src, error))
    return FALSE;
  if (ctx.layout.has_tensor_scale)
    h.tensor_scale = ctx.tensor_scale;

  memset (dst, 0, (gsize) h.total_bytes);
  memcpy (dst, &h, sizeof h);

  if (ctx.tensor_group)
    {
      write_group (&ctx, &h, dst, &ctx.tensor_params, 0);
      write_codes (&ctx, &h, dst, &ctx.tensor_params, src, n_rows * n_cols, 0, -1);
      return TRUE;
    }

  if (ctx.traits->needs_scratch)
    scratch = g_new (float, ctx.group_size);
  for (gint64 r = 0; r < n_rows; r++)
    for (gint64 g = 0; g < ctx.groups_per_row; g++)
      {
        gint64 col0 = g * ctx.group_size;
        gint64 len = MIN (ctx.group_size, n_cols - col0);
        gint64 gi = r * ctx.groups_per_row + g;
        guint64 index0 = (guint64) (r * n_cols + col0);
        BlGroupParams p;
        gint64 this_slot = -1;

        group_params (&ctx, src + index0, len, gi, index0, scratch, &p);
        write_group (&ctx, &h, dst, &p, gi);
        if (ctx.layout.extra_bits > 0 && p.selector)
          this_slot = slot++;
        write_codes (&ctx, &h, dst, &p, src + index0, len, index0, this_slot);
      }
  return TRUE;
}

static gboolean
corrupt (GError     **error,
         const char  *what,
         guint64      offset)
{
  g_set_error (error, BL_ERROR, BL_ERROR_CORRUPT_FILE,
               "packed tensor is corrupt: %s (header byte offset %" G_GUINT64_FORMAT ")", what, offset);
  return FALSE;
}

static void
read_params (const BlFormatCtx    *ctx,
             const BlPackedHeader *h,
             const guint8         *base,
             gint64                group_index,
             BlGroupParams        *p)
{
  const BlFormatLayout *l = &ctx->layout;

  memset (p, 0, sizeof *p);
  for (int k = 0; k < l->scales_per_group; k++)
    {
      p->scale_code[k] = get_scale (base + h->scales_offset,
                                    (guint64) group_index * (guint64) l->scales_per_group + (guint64) k,
                                    l->scale_bits);
      p->scale[k] = bl_format_load_scale (ctx->spec.scale_type, p->scale_code[k]);
    }
  if (l->zero_bits > 0)
    p->zero = (int) bl_bits_get (base + h->zeros_offset, (guint64) group_index, (unsigned) l->zero_bits);
  else if (ctx->spec.family == BL_FORMAT_INT)
    p->zero = 1 << (ctx->spec.bits - 1);
  if (l->selector_bits > 0)
    p->selector = (int) bl_bits_get (base + h->selectors_offset, (guint64) group_index,
                                     (unsigned) l->selector_bits);
  if (ctx->spec.family == BL_FORMAT_NVFP4 || ctx->spec.family == BL_FORMAT_NVINT4)
    p->scale[0] = ctx->tensor_scale * p->scale[0];
}

static void
read_codes (const BlFormatCtx    *ctx,
            const BlPackedHeader *h,
            const guint8         *base,
            const BlGroupParams  *p,
            gint64                n,
            guint64               index0,
            gint64                slot,
            float                *y)
{
  guint16 codes[BL_FORMAT_CHUNK];
  unsigned eb = (unsigned) ctx->layout.elem_bits;

  for (gint64 off = 0; off < n; off += BL_FORMAT_CHUNK)
    {
      gint64 len = MIN (BL_FORMAT_CHUNK, n - off);

      for (gint64 i = 0; i < len; i++)
        {
          guint32 c = bl_bits_get (base + h->codes_offset, index0 + (guint64) (off + i), eb);

          if (slot >= 0)
            c |= bl_bits_get (base + h->extra_offset, (guint64) (slot * ctx->group_size + off + i), 2) << 2;
          codes[i] = (guint16) c;
        }
      ctx->traits->decode (ctx, p, codes, len, y + off);
    }
}

/**
 * bl_format_dequantize:
 * @packed: (array): a buffer written by bl_format_quantize()
 * @packed_size: its size in bytes
 * @dst: (array): @n_elements floats
 * @n_elements: n_rows × n_cols of the packed tensor
 * @error: return location for a #GError
 *
 * Decodes a packed tensor. The header is checked against its own spec string, so a damaged
 * or mismatched buffer fails with %BL_ERROR_CORRUPT_FILE instead of reading out of bounds.
 *
 * Returns: %TRUE on success
 */
gboolean
bl_format_dequantize (const guint8  *packed,
                      gsize          packed_size,
                      float         *dst,
                      gint64         n_elements,
                      GError       **error)
{
  g_auto (BlFormatCtx) ctx = { 0 };
  g_autoptr (GError) local_error = NULL;
  BlPackedHeader h, expect;
  BlFormatSpec spec;
  gint64 slot = 0;

  g_return_val_if_fail (packed != NULL, FALSE);
  g_return_val_if_fail (dst != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (packed_size < sizeof h)
    return corrupt (error, "shorter than its header", 0);
  memcpy (&h, packed, sizeof h);
  if (h.magic != BL_PACKED_MAGIC)
    return corrupt (error, "bad magic", G_STRUCT_OFFSET (BlPackedHeader, magic));
  if (h.version != BL_PACKED_VERSION)
    return corrupt (error, "unknown version", G_STRUCT_OFFSET (BlPackedHeader, version));
  if (memchr (h.spec, '\0', sizeof h.spec) == NULL)
    return corrupt (error, "unterminated spec string", G_STRUCT_OFFSET (BlPackedHeader, spec));
  if (!bl_format_spec_parse (h.spec, &spec, &local_error))
    return corrupt (error, local_error->message, G_STRUCT_OFFSET (BlPackedHeader, spec));
  if (h.n_rows <= 0 || h.n_cols <= 0 || h.n_rows > G_MAXINT64 / h.n_cols)
    return corrupt (error, "bad shape", G_STRUCT_OFFSET (BlPackedHeader, n_rows));
  if (h.n_rows * h.n_cols != n_elements)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT,
                   "packed tensor holds %" G_GINT64_FORMAT " × %" G_GINT64_FORMAT " elements, not %" G_GINT64_FORMAT,
                   (gint64) h.n_rows, (gint64) h.n_cols, n_elements);
      return FALSE;
    }
  fill_header (&spec, h.n_rows, h.n_cols, &expect);
  expect.tensor_scale = h.tensor_scale;
  if (memcmp (&expect, &h, sizeof h) != 0)
    return corrupt (error, "header does not match its spec string", 0);
  if (packed_size < h.total_bytes)
    return corrupt (error, "shorter than the size its header states", G_STRUCT_OFFSET (BlPackedHeader, total_bytes));

  ctx_setup (&ctx, &spec, h.n_rows, h.n_cols);
  ctx.tensor_scale = h.tensor_scale;

  if (ctx.tensor_group)
    {
      BlGroupParams p;

      read_params (&ctx, &h, packed, 0, &p);
      read_codes (&ctx, &h, packed, &p, n_elements, 0, -1, dst);
      return TRUE;
    }
  for (gint64 r = 0; r < h.n_rows; r++)
    for (gint64 g = 0; g < ctx.groups_per_row; g++)
      {
        gint64 col0 = g * ctx.group_size;
        gint64 len = MIN (ctx.group_size, h.n_cols - col0);
        gint64 gi = r * ctx.groups_per_row + g;
        guint64 index0 = (guint64) (r * h.n_cols + col0);
        BlGroupParams p;
        gint64 this_slot = -1;

        read_params (&ctx, &h, packed, gi, &p);
        if (ctx.layout.extra_bits > 0 && p.selector)
          {
            if (slot >= mixed_n4 (&spec, ctx.n_groups))
              return corrupt (error, "more 4-bit groups than the header allows", h.selectors_offset);
            this_slot = slot++;
          }
        read_codes (&ctx, &h, packed, &p, len, index0, this_slot, dst + index0);
      }
  return TRUE;
}
