/* bl-moe-forward.c: the sparse mixture-of-experts feed-forward of mixtral and qwen2_moe
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * transformers' MixtralSparseMoeBlock and Qwen2MoeSparseMoeBlock: router logits = gate(h);
 * p = softmax(logits) in fp32; the top-k of p, renormalised to sum 1 when norm_topk_prob
 * (always for Mixtral); out = Σ over experts e in index order of index_add(tokens routed to e,
 * w_{t,e} · expert_e(h_t)), where expert_e(x) = down(silu(gate(x)) ⊙ up(x)); Qwen2-MoE adds
 * sigmoid(shared_expert_gate(h)) · shared_expert(h). The block output is added to the
 * residual stream.
 *
 * The routing (softmax, top-k) and the weighted scatter-add run on the host: they are tiny
 * next to the expert matmuls, which run on the backend over the gathered rows of the tokens
 * each expert received, through the engine's linear step so that weight and activation
 * hooks see every expert projection like any other linear layer.
 */
#include "bl-engine-private.h"

#include <math.h>
#include <string.h>

#include "bl-error.h"
#include "bl-moe.h"

typedef struct
{
  BlEngineLinear gate;
  BlEngineLinear up;
  BlEngineLinear down;
} Expert;

struct _BlMoeMlp
{
  int block;
  int n_experts;
  int top_k;
  gboolean norm_topk;
  int hidden;
  BlEngineLinear router;
  Expert *experts;
  gboolean has_shared;
  Expert shared;
  BlEngineLinear shared_gate;
};

struct _BlMoeScratch
{
  int n_alloc;
  int inter;                  /* the widest expert intermediate size */
  int n_experts;
  BlBuffer *logits;           /* [n, n_experts] router logits */
  BlBuffer *xe;               /* [n, hidden] the gathered inputs of one expert */
  BlBuffer *g;                /* [n, inter] */
  BlBuffer *u;
  BlBuffer *y;                /* [n, hidden] one expert's output */
  BlBuffer *sg;               /* [n] shared-expert gate logits */
  BlBuffer *out;              /* [n, hidden] the block output */
  float *host_logits;
  float *host_y;
  float *host_sg;
  float *host_out;
  int *top_e;                 /* [n, top_k] */
  float *top_w;
  int32_t *rows;              /* token indices of one expert */
  float *row_w;               /* and their routing weights */
};

/**
 * bl_moe_widest_intermediate:
 * @config: a model config
 *
 * Returns: the widest intermediate activation the model's feed-forward needs (dense MLP,
 *   experts, shared expert, and the router's logits)
 */
int
bl_moe_widest_intermediate (const BlModelConfig *config)
{
  int widest = config->intermediate_size;

  if (config->n_experts > 0)
    widest = MAX (MAX (config->moe_intermediate_size, config->shared_expert_intermediate_size),
                  config->n_experts);
  return widest;
}

static void
expert_clear (BlEngine *engine,
              Expert   *e)
{
  bl_engine_clear_linear (engine, &e->gate);
  bl_engine_clear_linear (engine, &e->up);
  bl_engine_clear_linear (engine, &e->down);
}

void
bl_moe_mlp_free (BlEngine *engine,
                 BlMoeMlp *mlp)
{
  if (mlp == NULL)
    return;
  bl_engine_clear_linear (engine, &mlp->router);
  for (int e = 0; mlp->experts != NULL && e < mlp->n_experts; e++)
    expert_clear (engine, &mlp->experts[e]);
  g_free (mlp->experts);
  expert_clear (engine, &mlp->shared);
  bl_engine_clear_linear (engine, &mlp->shared_gate);
  g_free (mlp);
}

/* Loads one expert's three projections. The names come from bl_moe_tensor_name(), split at
 * the last dot into the prefix and the projection load_linear() expects. */
static gboolean
load_expert (BlEngine    *engine,
             Expert      *e,
             BlMoeStyle   style,
             int          block,
             int          expert,
             int          hidden,
             int          inter,
             GError     **error)
{
  static const BlMoeRole roles[] = { BL_MOE_ROLE_GATE, BL_MOE_ROLE_UP, BL_MOE_ROLE_DOWN };
  static const BlLayerKind kinds[] = { BL_LAYER_MLP_GATE, BL_LAYER_MLP_UP, BL_LAYER_MLP_DOWN };
  BlEngineLinear *ls[] = { &e->gate, &e->up, &e->down };

  for (guint i = 0; i < G_N_ELEMENTS (roles); i++)
    {
      g_autofree char *name = bl_moe_tensor_name (style, block, expert, roles[i]);
      char *proj;
      gboolean down = roles[i] == BL_MOE_ROLE_DOWN;

      /* "<prefix>.<proj>.weight" */
      name[strlen (name) - strlen (".weight")] = '\0';
      proj = strrchr (name, '.');
      *proj++ = '\0';
      if (!bl_engine_load_linear (engine, ls[i], name, proj, kinds[i], down ? hidden : inter,
                                  down ? inter : hidden, FALSE, error))
        return FALSE;
    }
  return TRUE;
}

static gboolean
load_router (BlEngine        *engine,
             BlEngineLinear  *l,
             BlMoeStyle       style,
             int              block,
             BlMoeRole        role,
             int              rows,
             int              hidden,
             GError         **error)
{
  g_autofree char *name = bl_moe_tensor_name (style, block, -1, role);
  char *proj;

  name[strlen (name) - strlen (".weight")] = '\0';
  proj = strrchr (name, '.');
  *proj++ = '\0';
  return bl_engine_load_linear (engine, l, name, proj, BL_LAYER_MOE_ROUTER, rows, hidden, FALSE,
                                error);
}

BlMoeMlp *
bl_moe_mlp_new (BlEngine  *engine,
                int        block,
                GError   **error)
{
  const BlModelConfig *c = bl_model_get_config (bl_engine_get_model (engine));
  BlMoeStyle style = bl_moe_config_style (c);
  BlMoeMlp *mlp = g_new0 (BlMoeMlp, 1);

  mlp->block = block;
  mlp->n_experts = c->n_experts;
  mlp->top_k = c->n_experts_per_tok;
  mlp->norm_topk = c->norm_topk_prob;
  mlp->hidden = c->hidden_size;
  mlp->experts = g_new0 (Expert, c->n_experts);
  mlp->has_shared = c->shared_expert_intermediate_size > 0;

  if (!load_router (engine, &mlp->router, style, block, BL_MOE_ROLE_ROUTER, c->n_experts,
                    c->hidden_size, error))
    goto fail;
  for (int e = 0; e < c->n_experts; e++)
    if (!load_expert (engine, &mlp->experts[e], style, block, e, c->hidden_size,
                      c->moe_intermediate_size, error))
      goto fail;
  if (mlp->has_shared &&
      (!load_expert (engine, &mlp->shared, style, block, BL_MOE_SHARED_EXPERT, c->hidden_size,
                     c->shared_expert_intermediate_size, error) ||
       !load_router (engine, &mlp->shared_gate, style, block, BL_MOE_ROLE_SHARED_GATE, 1,
                     c->hidden_size, error)))
    goto fail;
  return mlp;

fail:
  bl_moe_mlp_free (engine, mlp);
  return NULL;
}

BlEngineLinear *
bl_moe_mlp_find_linear (BlMoeMlp   *mlp,
                        const char *name)
{
  BlEngineLinear *fixed[] = { &mlp->router, &mlp->shared.gate, &mlp->shared.up,
                              &mlp->shared.down, &mlp->shared_gate };

  for (guint i = 0; i < G_N_ELEMENTS (fixed); i++)
    if (fixed[i]->name != NULL && strcmp (fixed[i]->name, name) == 0)
      return fixed[i];
  for (int e = 0; e < mlp->n_experts; e++)
    {
      BlEngineLinear *ls[] = { &mlp->experts[e].gate, &mlp->experts[e].up,
                               &mlp->experts[e].down };

      for (guint i = 0; i < G_N_ELEMENTS (ls); i++)
        if (strcmp (ls[i]->name, name) == 0)
          return ls[i];
    }
  return NULL;
}

void
bl_moe_scratch_free (BlEngine     *engine,
                     BlMoeScratch *s)
{
  BlBackend *be;

  if (s == NULL)
    return;
  be = bl_engine_get_backend (engine);
  bl_backend_buffer_free (be, s->logits);
  bl_backend_buffer_free (be, s->xe);
  bl_backend_buffer_free (be, s->g);
  bl_backend_buffer_free (be, s->u);
  bl_backend_buffer_free (be, s->y);
  bl_backend_buffer_free (be, s->sg);
  bl_backend_buffer_free (be, s->out);
  g_free (s->host_logits);
  g_free (s->host_y);
  g_free (s->host_sg);
  g_free (s->host_out);
  g_free (s->top_e);
  g_free (s->top_w);
  g_free (s->rows);
  g_free (s->row_w);
  g_free (s);
}

static BlMoeScratch *
scratch_ensure (BlEngine      *engine,
                BlMoeScratch **scratch,
                BlMoeMlp      *mlp,
                int            n,
                GError       **error)
{
  const BlModelConfig *c = bl_model_get_config (bl_engine_get_model (engine));
  BlBackend *be = bl_engine_get_backend (engine);
  BlMoeScratch *s = *scratch;
  size_t hn = (size_t) n * mlp->hidden;
  int inter = MAX (c->moe_intermediate_size, c->shared_expert_intermediate_size);

  if (s != NULL && s->n_alloc >= n)
    return s;
  bl_moe_scratch_free (engine, s);
  *scratch = s = g_new0 (BlMoeScratch, 1);
  s->inter = inter;
  s->n_experts = mlp->n_experts;
  if ((s->logits = bl_backend_buffer_new (be, (size_t) n * mlp->n_experts, error)) == NULL ||
      (s->xe = bl_backend_buffer_new (be, hn, error)) == NULL ||
      (s->g = bl_backend_buffer_new (be, (size_t) n * inter, error)) == NULL ||
      (s->u = bl_backend_buffer_new (be, (size_t) n * inter, error)) == NULL ||
      (s->y = bl_backend_buffer_new (be, hn, error)) == NULL ||
      (s->sg = bl_backend_buffer_new (be, (size_t) n, error)) == NULL ||
      (s->out = bl_backend_buffer_new (be, hn, error)) == NULL)
    {
      bl_moe_scratch_free (engine, s);
      *scratch = NULL;
      return NULL;
    }
  s->host_logits = g_new (float, (size_t) n * mlp->n_experts);
  s->host_y = g_new (float, hn);
  s->host_sg = g_new (float, n);
  s->host_out = g_new (float, hn);
  s->top_e = g_new (int, (size_t) n * mlp->top_k);
  s->top_w = g_new (float, (size_t) n * mlp->top_k);
  s->rows = g_new (int32_t, n);
  s->row_w = g_new (float, n);
  s->n_alloc = n;
  return s;
}

/* Softmax over one token's router logits in fp32 (after subtracting the maximum), its
 * top-k (the larger probability first, the lower index on a tie, as torch.topk on CPU) and,
 * with @norm, the chosen probabilities divided by their sum. */
static void
route_token (const float * restrict logits,
             int                    n_experts,
             int                    top_k,
             gboolean               norm,
             float       * restrict probs,
             int         * restrict top_e,
             float       * restrict top_w)
{
  float max = logits[0];
  float sum = 0.0f;

  for (int e = 1; e < n_experts; e++)
    max = MAX (max, logits[e]);
  for (int e = 0; e < n_experts; e++)
    {
      probs[e] = expf (logits[e] - max);
      sum += probs[e];
    }
  for (int e = 0; e < n_experts; e++)
    probs[e] /= sum;

  for (int k = 0; k < top_k; k++)
    {
      int best = -1;

      for (int e = 0; e < n_experts; e++)
        {
          gboolean taken = FALSE;

          for (int j = 0; j < k; j++)
            taken |= top_e[j] == e;
          if (!taken && (best < 0 || probs[e] > probs[best]))
            best = e;
        }
      top_e[k] = best;
      top_w[k] = probs[best];
    }
  if (norm)
    {
      float total = 0.0f;

      for (int k = 0; k < top_k; k++)
        total += top_w[k];
      for (int k = 0; k < top_k; k++)
        top_w[k] /= total;
    }
}

/* Reads @n values of @buffer to the host: in place where the backend maps its buffers. */
static const float *
host_view (BlBackend  *be,
           BlBuffer   *buffer,
           float      *host,
           size_t      n,
           GError    **error)
{
  float *mapped;

  if (!bl_backend_synchronize (be, error))
    return NULL;
  mapped = bl_backend_buffer_map (be, buffer);
  if (mapped != NULL)
    return mapped;
  return bl_backend_download (be, buffer, 0, host, n, error) ? host : NULL;
}

/* expert(x) = down(silu(gate(x)) ⊙ up(x)) over @n rows of @x into s->y. */
static gboolean
run_expert (BlEngine      *engine,
            BlMoeScratch  *s,
            Expert        *e,
            int            block,
            BlBuffer      *x,
            int            n,
            GError       **error)
{
  BlBackend *be = bl_engine_get_backend (engine);

  if (!bl_engine_run_linear (engine, &e->gate, block, s->g, x, n, FALSE, error) ||
      !bl_engine_run_linear (engine, &e->up, block, s->u, x, n, FALSE, error))
    return FALSE;
  bl_backend_swiglu (be, s->g, s->g, s->u, (size_t) n * e->gate.rows);
  return bl_engine_run_linear (engine, &e->down, block, s->y, s->g, n, FALSE, error);
}

gboolean
bl_moe_mlp_forward (BlEngine      *engine,
                    BlMoeMlp      *mlp,
                    BlMoeScratch **scratch,
                    BlBuffer      *x,
                    BlBuffer      *h,
                    int            n,
                    GError       **error)
{
  BlBackend *be = bl_engine_get_backend (engine);
  const BlEngineHooks *hooks = bl_engine_get_hooks (engine);
  int E = mlp->n_experts, K = mlp->top_k, H = mlp->hidden;
  g_autofree float *probs = g_new (float, E);
  const float *logits;
  BlMoeScratch *s;

  if ((s = scratch_ensure (engine, scratch, mlp, n, error)) == NULL ||
      !bl_engine_run_linear (engine, &mlp->router, mlp->block, s->logits, h, n, FALSE, error) ||
      (logits = host_view (be, s->logits, s->host_logits, (size_t) n * E, error)) == NULL)
    return FALSE;

  for (int t = 0; t < n; t++)
    route_token (logits + (size_t) t * E, E, K, mlp->norm_topk, probs,
                 s->top_e + (size_t) t * K, s->top_w + (size_t) t * K);
  if (hooks->routing != NULL)
    hooks->routing (mlp->block, s->top_e, s->top_w, n, E, K, hooks->user_data);

  memset (s->host_out, 0, sizeof (float) * (size_t) n * H);
  for (int e = 0; e < E; e++)
    {
      int m = 0;
      const float *y;

      for (int t = 0; t < n; t++)
        for (int k = 0; k < K; k++)
          if (s->top_e[(size_t) t * K + k] == e)
            {
              s->rows[m] = t;
              s->row_w[m++] = s->top_w[(size_t) t * K + k];
            }
      if (m == 0)
        continue;

      /* get_rows gathers the routed tokens' rows of h, as it gathers embedding rows. */
      bl_backend_get_rows (be, s->xe, h, s->rows, m, H);
      if (!run_expert (engine, s, &mlp->experts[e], mlp->block, s->xe, m, error) ||
          (y = host_view (be, s->y, s->host_y, (size_t) m * H, error)) == NULL)
        return FALSE;
      for (int i = 0; i < m; i++)
        {
          float * restrict dst = s->host_out + (size_t) s->rows[i] * H;
          const float * restrict src = y + (size_t) i * H;
          float w = s->row_w[i];

          for (int j = 0; j < H; j++)
            dst[j] += src[j] * w;
        }
    }

  if (mlp->has_shared)
    {
      const float *y;
      const float *sg;

      if (!run_expert (engine, s, &mlp->shared, mlp->block, h, n, error) ||
          !bl_engine_run_linear (engine, &mlp->shared_gate, mlp->block, s->sg, h, n, FALSE,
                                 error) ||
          (y = host_view (be, s->y, s->host_y, (size_t) n * H, error)) == NULL ||
          (sg = host_view (be, s->sg, s->host_sg, (size_t) n, error)) == NULL)
        return FALSE;
      for (int t = 0; t < n; t++)
        {
          float gate = 1.0f / (1.0f + expf (-sg[t]));
          float * restrict dst = s->host_out + (size_t) t * H;
          const float * restrict src = y + (size_t) t * H;

          for (int j = 0; j < H; j++)
            dst[j] += gate * src[j];
        }
    }

  if (!bl_backend_upload (be, s->out, 0, s->host_out, (size_t) n * H, error))
    return FALSE;
  bl_backend_add (be, x, s->out, (size_t) n * H);
  return TRUE;
}
