/* test-quant-engine.c: the quantized forward against hand computation and hand-built hooks
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * Each plan's engine is compared, logit for logit and bit for bit, with a plain #BlEngine whose
 * hooks this file writes from the format library directly (fake-quant every weight, quantize
 * every input per token, observe the ranges and apply the static quantizer, quantize K and V).
 * The static and per-token quantizers are also checked on small vectors by hand.
 */
#include <math.h>
#include <string.h>

#include "bl-calib.h"
#include "bl-engine.h"
#include "bl-error.h"
#include "bl-format-codecs.h"
#include "bl-moe.h"
#include "bl-protocol.h"
#include "bl-quant-engine.h"

#define N_IDS 300
#define CTX 24
#define N_WINDOWS 3
#define SEED 7

static BlModel *
load_fixture (const char *variant)
{
  g_autofree char *dir = g_test_build_filename (G_TEST_DIST, "fixtures", "tiny-llama", variant,
                                                NULL);
  g_autoptr(GError) error = NULL;
  BlModel *model = bl_model_load (dir, NULL, &error);

  g_assert_no_error (error);
  return model;
}

static BlBackend *
cpu_backend (void)
{
  g_autoptr(GError) error = NULL;
  BlBackend *backend = bl_backend_new ("cpu", 1, &error);

  g_assert_no_error (error);
  return backend;
}

static int32_t *
random_ids (int vocab)
{
  g_autoptr(GRand) rand = g_rand_new_with_seed (11);
  int32_t *ids = g_new (int32_t, N_IDS);

  for (int i = 0; i < N_IDS; i++)
    ids[i] = g_rand_int_range (rand, 0, vocab);
  return ids;
}

static BlQuantPlan *
plan_new (const char *weight,
          const char *activation)
{
  g_autoptr(GError) error = NULL;
  BlQuantPlan *plan = bl_quant_plan_new_from_shorthand (weight, activation, NULL, NULL, &error);
  BlQuantCalibration calib = { NULL, N_WINDOWS, CTX, SEED };

  g_assert_no_error (error);
  bl_quant_plan_set_calibration (plan, &calib);
  return plan;
}

static BlQuantEngine *
quant_engine (BlModel       *model,
              BlBackend     *backend,
              BlQuantPlan   *plan,
              const int32_t *ids)
{
  g_autoptr(GError) error = NULL;
  BlQuantEngine *qe = bl_quant_engine_new (model, backend, plan, ids, ids ? N_IDS : 0, NULL, NULL,
                                           NULL, &error);

  g_assert_no_error (error);
  g_assert_nonnull (qe);
  return qe;
}

static float *
logits_of (BlEngine      *engine,
           const int32_t *ids,
           int            n)
{
  g_autoptr(GError) error = NULL;
  float *logits = g_new (float, (gsize) n * bl_engine_get_vocab_size (engine));

  g_assert_true (bl_engine_forward (engine, ids, n, logits, NULL, &error));
  g_assert_no_error (error);
  return logits;
}

static void
assert_same_logits (BlEngine      *a,
                    BlEngine      *b,
                    const int32_t *ids)
{
  int n = 20;
  g_autofree float *la = logits_of (a, ids, n);
  g_autofree float *lb = logits_of (b, ids, n);

  g_assert_cmpmem (la, sizeof (float) * n * bl_engine_get_vocab_size (a),
                   lb, sizeof (float) * n * bl_engine_get_vocab_size (b));
}

static gboolean
logits_differ (BlEngine      *a,
               BlEngine      *b,
               const int32_t *ids)
{
  int n = 20;
  g_autofree float *la = logits_of (a, ids, n);
  g_autofree float *lb = logits_of (b, ids, n);

  return memcmp (la, lb, sizeof (float) * n * bl_engine_get_vocab_size (a)) != 0;
}

/* The hand-built reference: what each hook should do, written with the format library. */
typedef struct
{
  BlFormatSpec weight;
  gboolean has_weight;
  const char *weight_only;   /* when set, only this layer's weight is quantized */
  BlFormatSpec act;
  gboolean has_act;
  gboolean act_static;
  GHashTable *ranges;        /* layer → float[2·(cols+1)]: lo[0..cols], hi[0..cols] */
  BlFormatSpec kv;
  gboolean has_kv;
} Reference;

static void
ref_weight (const char  *name,
            BlLayerKind  kind,
            float       *w,
            int64_t      rows,
            int64_t      cols,
            gpointer     user_data)
{
  Reference *r = user_data;
  g_autoptr(GError) error = NULL;

  if (!r->has_weight)
    return;
  if (r->weight_only != NULL ? !g_str_equal (name, r->weight_only) : kind == BL_LAYER_LM_HEAD)
    return;
  g_assert_true (bl_format_fake_quant (&r->weight, w, w, rows, cols, 1, &error));
}

static void
ref_act (const char  *name,
         BlLayerKind  kind,
         int          block,
         float       *x,
         int          n,
         int          dim,
         gpointer     user_data)
{
  Reference *r = user_data;
  g_autoptr(GError) error = NULL;

  if (!r->has_act || kind == BL_LAYER_LM_HEAD)
    return;
  if (r->act_static)
    {
      const float *range = g_hash_table_lookup (r->ranges, name);
      gboolean per_channel = r->act.granularity == BL_GRANULARITY_CHANNEL;

      bl_quant_activation_static (&r->act, per_channel ? range : range + dim,
                                  per_channel ? range + dim + 1 : range + 2 * dim + 1,
                                  per_channel, x, n, dim);
      return;
    }
  g_assert_true (bl_format_fake_quant (&r->act, x, x, n, dim, 1, &error));
}

static void
ref_kv (int       block,
        float    *k,
        float    *v,
        int       n,
        int       kv_dim,
        gpointer  user_data)
{
  Reference *r = user_data;
  g_autoptr(GError) error = NULL;

  if (!r->has_kv)
    return;
  g_assert_true (bl_format_fake_quant (&r->kv, k, k, n, kv_dim, 1, &error));
  g_assert_true (bl_format_fake_quant (&r->kv, v, v, n, kv_dim, 1, &error));
}

static BlEngine *
ref_engine (BlModel   *model,
            BlBackend *backend,
            Reference *r)
{
  g_autoptr(GError) error = NULL;
  BlEngineHooks hooks = { ref_weight, ref_act, r, ref_kv };
  BlEngine *e = bl_engine_new (model, backend, &hooks, &error);

  g_assert_no_error (error);
  return e;
}

static void
parse (const char   *str,
       BlFormatSpec *spec)
{
  g_autoptr(GError) error = NULL;

  g_assert_true (bl_format_spec_parse (str, spec, &error));
  g_assert_no_error (error);
}

/* --- hand-checked quantizers ------------------------------------------------------------- */

/* int8:tensor, range [−2, 4] from calibration: s = 4/127 in fp32; 5 lies outside the range and
 * clips to 127·s; −63.5 rounds to even (−64). */
static void
test_static_tensor_by_hand (void)
{
  BlFormatSpec spec;
  float lo = -2.0f, hi = 4.0f;
  float x[5] = { 1.0f, -2.0f, 0.5f, 4.0f, 5.0f };
  float s = 4.0f / 127.0f;
  const float q[5] = { 32.0f, -64.0f, 16.0f, 127.0f, 127.0f };

  parse ("int8:tensor", &spec);
  g_assert_cmpint (spec.scale_type, ==, BL_SCALE_TYPE_F32);
  bl_quant_activation_static (&spec, &lo, &hi, FALSE, x, 1, 5);
  for (int i = 0; i < 5; i++)
    g_assert_cmpfloat (x[i], ==, q[i] * s);
}

/* int4:channel:asym, two channels with ranges [−1, 3] and [0.5, 2]: channel 0 has s = 4/15,
 * zero = round(1/s) = round(3.75) = 4; channel 1 widens to [0, 2], s = 2/15, zero 0. Scales are
 * fp16 for channel granularity. */
static void
test_static_channel_by_hand (void)
{
  BlFormatSpec spec;
  float lo[2] = { -1.0f, 0.5f }, hi[2] = { 3.0f, 2.0f };
  float x[4] = { 1.0f, 1.0f, -3.0f, -1.0f };
  float s0 = bl_f16_decode (bl_f16_encode (4.0f / 15.0f));
  float s1 = bl_f16_decode (bl_f16_encode (2.0f / 15.0f));

  parse ("int4:channel:asym", &spec);
  g_assert_cmpint (spec.scale_type, ==, BL_SCALE_TYPE_F16);
  bl_quant_activation_static (&spec, lo, hi, TRUE, x, 2, 2);
  /* token 0: 1/s0 = 3.75 → 4; 1/s1 = 7.5 → 8 (ties to even) */
  g_assert_cmpfloat (x[0], ==, 4.0f * s0);
  g_assert_cmpfloat (x[1], ==, 8.0f * s1);
  /* token 1: −3/s0 = −11.25 clips to −zero = −4; −1 clips to 0 (channel 1 has no negatives) */
  g_assert_cmpfloat (x[2], ==, -4.0f * s0);
  g_assert_cmpfloat (x[3], ==, 0.0f);
}

/* fp8-e4m3:tensor, amax 448: s = 1, so the element grid itself: 0.3 → 0.3125 (E4M3 step 2^−5
 * between 0.25 and 0.5: 0.3 lies between 0.28125 and 0.3125, nearer the latter) and 500 clips to
 * 448 under saturation. */
static void
test_static_fp8_by_hand (void)
{
  BlFormatSpec spec;
  float lo = -448.0f, hi = 448.0f;
  float x[3] = { 0.3f, 500.0f, -1.0f };

  parse ("fp8-e4m3:tensor:sat", &spec);
  bl_quant_activation_static (&spec, &lo, &hi, FALSE, x, 1, 3);
  g_assert_cmpfloat (x[0], ==, 0.3125f);
  g_assert_cmpfloat (x[1], ==, 448.0f);
  g_assert_cmpfloat (x[2], ==, -1.0f);
}

/* "int8" as an activation spec is per token: one fp16 scale per row, amax/127. */
static void
test_per_token_by_hand (void)
{
  g_autoptr(BlQuantPlan) plan = plan_new (NULL, "int8");
  g_autoptr(BlModel) model = load_fixture ("llama-tied-bf16");
  g_autoptr(GPtrArray) r = NULL;
  g_autoptr(GError) error = NULL;
  const BlLayerAssignment *a;
  float x[8] = { 1.0f, -2.0f, 0.5f, 4.0f, /* row 2 */ 0.1f, 0.0f, -0.2f, 0.05f };
  float s0 = bl_f16_decode (bl_f16_encode (4.0f / 127.0f));
  float s1 = bl_f16_decode (bl_f16_encode (0.2f / 127.0f));

  r = bl_quant_plan_resolve (plan, model, &error);
  g_assert_no_error (error);
  a = g_ptr_array_index (r, 0);
  g_assert_true (a->has_activation);
  g_assert_false (a->has_weight);
  g_assert_cmpstr (a->activation_spec, ==, "int8:token");
  g_assert_true (bl_format_fake_quant (&a->activation, x, x, 2, 4, 1, &error));
  g_assert_cmpfloat (x[0], ==, roundf (1.0f / s0) * s0);           /* 31.75 → 32 */
  g_assert_cmpfloat (x[1], ==, -64.0f * s0);                        /* −63.5 → −64 */
  g_assert_cmpfloat (x[3], ==, 127.0f * s0);
  g_assert_cmpfloat (x[6], ==, -127.0f * s1);
  g_assert_cmpfloat (x[4], ==, roundf (0.1f / s1) * s1);
}

/* --- the engine against the hand-built reference ------------------------------------------ */

static void
test_full_precision_is_exact (void)
{
  g_autoptr(BlModel) model = load_fixture ("llama-tied-bf16");
  g_autoptr(BlBackend) backend = cpu_backend ();
  g_autofree int32_t *ids = random_ids (97);
  g_autoptr(BlQuantPlan) plan = bl_quant_plan_new ();
  g_autoptr(BlQuantEngine) qe = quant_engine (model, backend, plan, NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(BlEngine) plain = bl_engine_new (model, backend, NULL, &error);

  g_assert_no_error (error);
  assert_same_logits (bl_quant_engine_get_engine (qe), plain, ids);
  g_assert_null (bl_quant_engine_get_last_quantized (qe)[0]);
  g_assert_true (bl_quant_engine_check (qe, &error));
}

static void
test_weights_and_tokens (gconstpointer data)
{
  const char *variant = data;
  g_autoptr(BlModel) model = load_fixture (variant);
  g_autoptr(BlBackend) backend = cpu_backend ();
  g_autofree int32_t *ids = random_ids (97);
  g_autoptr(BlQuantPlan) plan = plan_new ("int4:g16", "int8:token");
  g_autoptr(BlQuantEngine) qe = quant_engine (model, backend, plan, NULL);
  Reference r = { 0 };
  g_autoptr(BlEngine) ref = NULL;
  g_autoptr(BlEngine) plain = NULL;
  g_autoptr(GError) error = NULL;

  parse ("int4:g16", &r.weight);
  r.has_weight = TRUE;
  parse ("int8:token", &r.act);
  r.has_act = TRUE;
  ref = ref_engine (model, backend, &r);
  assert_same_logits (bl_quant_engine_get_engine (qe), ref, ids);
  g_assert_cmpuint (g_strv_length ((char **) bl_quant_engine_get_last_quantized (qe)), ==,
                    bl_model_get_config (model)->n_layers * 7);

  plain = bl_engine_new (model, backend, NULL, &error);
  g_assert_true (logits_differ (bl_quant_engine_get_engine (qe), plain, ids));
}

static void
test_kv_cache (void)
{
  g_autoptr(BlModel) model = load_fixture ("qwen2-gqa");
  g_autoptr(BlBackend) backend = cpu_backend ();
  g_autofree int32_t *ids = random_ids (97);
  g_autoptr(BlQuantPlan) plan = plan_new (NULL, NULL);
  g_autoptr(BlQuantEngine) qe = NULL;
  Reference r = { 0 };
  g_autoptr(BlEngine) ref = NULL;
  g_autoptr(BlEngine) plain = NULL;
  g_autoptr(GError) error = NULL;

  /* one scale per head (head_dim 16) */
  g_assert_true (bl_quant_plan_set_kv_cache (plan, "int4:g16", &error));
  qe = quant_engine (model, backend, plan, NULL);
  parse ("int4:g16", &r.kv);
  r.has_kv = TRUE;
  ref = ref_engine (model, backend, &r);
  assert_same_logits (bl_quant_engine_get_engine (qe), ref, ids);
  plain = bl_engine_new (model, backend, NULL, &error);
  g_assert_true (logits_differ (bl_quant_engine_get_engine (qe), plain, ids));
}

static void
observe (const char  *name,
         BlLayerKind  kind,
         int          block,
         float       *x,
         int          n,
         int          dim,
         gpointer     user_data)
{
  GHashTable *ranges = user_data;
  float *range = g_hash_table_lookup (ranges, name);

  if (range == NULL)
    {
      range = g_new (float, 2 * (dim + 1));
      for (int j = 0; j <= dim; j++)
        {
          range[j] = INFINITY;
          range[dim + 1 + j] = -INFINITY;
        }
      g_hash_table_insert (ranges, g_strdup (name), range);
    }
  for (int t = 0; t < n; t++)
    for (int j = 0; j < dim; j++)
      {
        float v = x[t * dim + j];

        range[j] = MIN (range[j], v);
        range[dim + 1 + j] = MAX (range[dim + 1 + j], v);
        range[dim] = MIN (range[dim], v);
        range[2 * dim + 1] = MAX (range[2 * dim + 1], v);
      }
}

/* Ranges observed by hand on the full-precision model over the plan's calibration windows. */
static GHashTable *
observe_by_hand (BlModel       *model,
                 BlBackend     *backend,
                 const int32_t *ids)
{
  GHashTable *ranges = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  BlEngineHooks hooks = { NULL, observe, ranges, NULL };
  g_autoptr(GError) error = NULL;
  g_autoptr(BlEngine) fp = bl_engine_new (model, backend, &hooks, &error);
  g_autoptr(GArray) windows = bl_calib_make_windows (N_IDS, CTX, N_WINDOWS, SEED, &error);
  double nll;

  g_assert_no_error (error);
  for (guint w = 0; w < windows->len; w++)
    {
      const BlWindow *win = &g_array_index (windows, BlWindow, w);

      g_assert_true (bl_engine_nll (fp, ids + win->start, win->length, win->length - 1, &nll,
                                    NULL, &error));
    }
  return ranges;
}

static void
test_static_activations (gconstpointer data)
{
  const char *act = data;
  g_autoptr(BlModel) model = load_fixture ("llama-bias-f16");
  g_autoptr(BlBackend) backend = cpu_backend ();
  g_autofree int32_t *ids = random_ids (97);
  g_autoptr(BlQuantPlan) plan = plan_new ("int8:channel", act);
  g_autoptr(BlQuantEngine) qe = NULL;
  g_autoptr(GHashTable) ranges = NULL;
  Reference r = { 0 };
  g_autoptr(BlEngine) ref = NULL;
  g_autoptr(GError) error = NULL;

  /* without calibration text, the plan cannot run */
  qe = bl_quant_engine_new (model, backend, plan, NULL, 0, NULL, NULL, NULL, &error);
  g_assert_null (qe);
  g_assert_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, "calibration"));
  g_clear_error (&error);

  qe = quant_engine (model, backend, plan, ids);
  ranges = observe_by_hand (model, backend, ids);
  parse ("int8:channel", &r.weight);
  r.has_weight = TRUE;
  parse (act, &r.act);
  r.has_act = TRUE;
  r.act_static = TRUE;
  r.ranges = ranges;
  ref = ref_engine (model, backend, &r);
  assert_same_logits (bl_quant_engine_get_engine (qe), ref, ids);
}

/* Re-quantization after a plan change touches only the changed layer, and the result is the
 * engine a fresh build of the new plan gives. */
static void
test_set_plan (void)
{
  g_autoptr(BlModel) model = load_fixture ("llama-bias-f16");
  g_autoptr(BlBackend) backend = cpu_backend ();
  g_autofree int32_t *ids = random_ids (97);
  g_autoptr(BlQuantPlan) a = plan_new ("int4:g16", NULL);
  g_autoptr(BlQuantPlan) b = bl_quant_plan_copy (a);
  g_autoptr(BlQuantPlan) c = bl_quant_plan_copy (a);
  g_autoptr(BlQuantPlan) fp = plan_new (NULL, NULL);
  g_autoptr(BlQuantEngine) qe = quant_engine (model, backend, a, ids);
  g_autoptr(BlQuantEngine) fresh = NULL;
  g_autoptr(GError) error = NULL;
  const char *const *last;
  Reference r = { 0 };
  g_autoptr(BlEngine) ref = NULL;

  g_assert_true (bl_quant_plan_insert_rule (b, -1, "model.layers.1.mlp.up_proj.weight",
                                            "int8:channel", NULL, NULL, NULL, &error));
  g_assert_true (bl_quant_engine_set_plan (qe, b, NULL, &error));
  g_assert_no_error (error);
  last = bl_quant_engine_get_last_quantized (qe);
  g_assert_cmpstr (last[0], ==, "model.layers.1.mlp.up_proj.weight");
  g_assert_null (last[1]);
  fresh = quant_engine (model, backend, b, ids);
  assert_same_logits (bl_quant_engine_get_engine (qe), bl_quant_engine_get_engine (fresh), ids);
  g_clear_pointer (&fresh, bl_quant_engine_free);

  /* an activation-only change quantizes no weight; a static one observes its range */
  g_assert_true (bl_quant_plan_insert_rule (c, -1, "model.layers.0.self_attn.o_proj.weight",
                                            NULL, "int8:tensor", NULL, NULL, &error));
  g_assert_true (bl_quant_engine_set_plan (qe, c, NULL, &error));
  g_assert_no_error (error);
  last = bl_quant_engine_get_last_quantized (qe);
  g_assert_cmpstr (last[0], ==, "model.layers.1.mlp.up_proj.weight");   /* back to int4:g16 */
  g_assert_null (last[1]);
  fresh = quant_engine (model, backend, c, ids);
  assert_same_logits (bl_quant_engine_get_engine (qe), bl_quant_engine_get_engine (fresh), ids);

  /* back to full precision: every weight is restored from the model */
  g_assert_true (bl_quant_engine_set_plan (qe, fp, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (g_strv_length ((char **) bl_quant_engine_get_last_quantized (qe)), ==, 14);
  ref = ref_engine (model, backend, &r);
  assert_same_logits (bl_quant_engine_get_engine (qe), ref, ids);
}

/* Bias correction on a model without biases adds an output bias; moving the layer back to
 * RTN removes it again. */
static void
test_bias_correction (void)
{
  g_autoptr(BlModel) model = load_fixture ("llama-tied-bf16");
  g_autoptr(BlBackend) backend = cpu_backend ();
  g_autofree int32_t *ids = random_ids (97);
  g_autoptr(BlQuantPlan) rtn = plan_new ("int4:g16", NULL);
  g_autoptr(BlQuantPlan) bc = bl_quant_plan_copy (rtn);
  g_autoptr(BlQuantEngine) qe = NULL;
  g_autoptr(BlQuantEngine) fresh = NULL;
  g_autoptr(GError) error = NULL;

  g_assert_true (bl_quant_plan_insert_rule (bc, -1, "*.down_proj.weight", NULL, NULL,
                                            "bias-correction", NULL, &error));
  qe = quant_engine (model, backend, bc, ids);
  fresh = quant_engine (model, backend, rtn, ids);
  g_assert_true (logits_differ (bl_quant_engine_get_engine (qe), bl_quant_engine_get_engine (fresh),
                                ids));
  g_assert_true (bl_quant_engine_set_plan (qe, rtn, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (g_strv_length ((char **) bl_quant_engine_get_last_quantized (qe)), ==, 2);
  assert_same_logits (bl_quant_engine_get_engine (qe), bl_quant_engine_get_engine (fresh), ids);
}

/* A quantized tied lm_head gets its own weights and the embedding lookup stays exact: the
 * reference quantizes only the head in its weight hook, which gives it its own copy too. */
static void
test_tied_head (void)
{
  g_autoptr(BlModel) model = load_fixture ("llama-tied-bf16");
  g_autoptr(BlBackend) backend = cpu_backend ();
  g_autofree int32_t *ids = random_ids (97);
  g_autoptr(BlQuantPlan) plan = plan_new (NULL, NULL);
  g_autoptr(BlQuantPlan) fp = plan_new (NULL, NULL);
  g_autoptr(BlQuantEngine) qe = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(BlEngine) plain = bl_engine_new (model, backend, NULL, &error);
  g_autoptr(BlEngine) ref = NULL;
  Reference r = { 0 };

  g_assert_true (bl_quant_plan_insert_rule (plan, -1, "lm_head.weight", "int4:g8", NULL, NULL,
                                            NULL, &error));
  qe = quant_engine (model, backend, plan, NULL);
  g_assert_cmpstr (bl_quant_engine_get_last_quantized (qe)[0], ==, "lm_head.weight");
  parse ("int4:g8", &r.weight);
  r.has_weight = TRUE;
  r.weight_only = "lm_head.weight";
  ref = ref_engine (model, backend, &r);
  assert_same_logits (bl_quant_engine_get_engine (qe), ref, ids);
  g_assert_true (logits_differ (bl_quant_engine_get_engine (qe), plain, ids));

  /* and back: the head's own copy now holds the exact embedding again */
  g_assert_true (bl_quant_engine_set_plan (qe, fp, NULL, &error));
  g_assert_no_error (error);
  assert_same_logits (bl_quant_engine_get_engine (qe), plain, ids);
}

/* Input transforms: with QuaRot's rotation folded into a bf16 weight, the forward pass must
 * rotate every input online, or the logits are garbage (relative error near 1); with a static
 * int8 quantizer on top, the ranges must be those of the rotated inputs. */
static double
max_relative_error (const float *a,
                    const float *b,
                    gsize        n)
{
  double diff = 0, ref = 0;

  for (gsize i = 0; i < n; i++)
    {
      diff = MAX (diff, fabs ((double) a[i] - b[i]));
      ref = MAX (ref, fabs ((double) b[i]));
    }
  return diff / ref;
}

static void
test_transforms (void)
{
  g_autoptr(BlModel) model = load_fixture ("llama-tied-bf16");
  g_autoptr(BlBackend) backend = cpu_backend ();
  g_autofree int32_t *ids = random_ids (97);
  g_autoptr(GError) error = NULL;
  g_autoptr(BlEngine) plain = bl_engine_new (model, backend, NULL, &error);
  g_autofree float *lp = logits_of (plain, ids, 20);
  const struct { const char *act; double bound; } cases[] = {
    /* per channel clips more than per tensor here: 69 calibration tokens of random ids
     * leave many channels' observed ranges narrow */
    { NULL, 0.01 }, { "int8:tensor", 0.05 }, { "int8:channel", 0.3 },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(BlQuantPlan) plan = plan_new (NULL, NULL);
      g_autoptr(BlQuantEngine) qe = NULL;
      g_autofree float *lq = NULL;
      double err;

      g_assert_true (bl_quant_plan_set_defaults (plan, "bf16", cases[i].act, "hadamard", NULL,
                                                 &error));
      qe = quant_engine (model, backend, plan, ids);
      lq = logits_of (bl_quant_engine_get_engine (qe), ids, 20);
      err = max_relative_error (lq, lp, 20 * 97);
      g_test_message ("hadamard + bf16 weights, activations %s: max relative error %.2e",
                      cases[i].act ? cases[i].act : "none", err);
      g_assert_cmpfloat (err, <, cases[i].bound);
      g_assert_cmpfloat (err, >, 0.0);
    }
}

/* GPTQ on a mixture of experts whose calibration reaches only some experts: those the router
 * never chose have no statistics and are rounded to nearest instead of failing the plan. The
 * result equals a plan that says rtn for exactly those experts and gptq for the rest. */
static void
test_moe_rtn_fallback (void)
{
  g_autofree char *dir = g_test_build_filename (G_TEST_DIST, "fixtures", "tiny-moe-mixtral", NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(BlModel) model = bl_model_load (dir, NULL, &error);
  g_autoptr(BlBackend) backend = cpu_backend ();
  g_autofree int32_t *ids = NULL;
  g_autoptr(BlQuantPlan) plan = NULL;
  g_autoptr(BlQuantPlan) explicit_plan = NULL;
  g_autoptr(GString) json = g_string_new ("{\"version\": 1, \"defaults\": {\"weight\": \"int4:g32\", "
                                          "\"algorithm\": \"gptq\"}, \"rules\": [");
  /* 6 tokens of one window: 12 expert choices per block, for 8 experts in each of 2 blocks */
  BlQuantCalibration calib = { NULL, 1, 6, SEED };
  BlQuantEngine *qe;
  BlQuantEngine *qe_explicit;
  g_auto(GStrv) fallbacks = NULL;
  g_auto(GStrv) none = NULL;
  guint n_experts_total = 0;

  g_assert_no_error (error);
  ids = random_ids (bl_model_get_config (model)->vocab_size);
  plan = bl_quant_plan_new_from_shorthand ("int4:g32", NULL, "gptq", NULL, &error);
  g_assert_no_error (error);
  bl_quant_plan_set_calibration (plan, &calib);
  qe = quant_engine (model, backend, plan, ids);
  fallbacks = bl_quant_engine_get_rtn_fallbacks (qe);

  for (guint i = 0; i < g_list_model_get_n_items (G_LIST_MODEL (model)); i++)
    {
      g_autoptr(BlLayer) layer = g_list_model_get_item (G_LIST_MODEL (model), i);
      BlMoeName moe;

      if (bl_moe_parse_name (bl_layer_get_name (layer), &moe) && moe.expert >= 0)
        n_experts_total++;
    }
  g_test_message ("%u of %u expert weights had no calibration token", g_strv_length (fallbacks),
                  n_experts_total);
  /* some experts were reached and some were not; whole experts (w1, w2, w3) fall back */
  g_assert_cmpuint (g_strv_length (fallbacks), >, 0);
  g_assert_cmpuint (g_strv_length (fallbacks), <, n_experts_total);
  g_assert_cmpuint (g_strv_length (fallbacks) % 3, ==, 0);
  for (guint i = 0; fallbacks[i] != NULL; i++)
    {
      BlMoeName moe;

      g_assert_true (bl_moe_parse_name (fallbacks[i], &moe));
      g_assert_cmpint (moe.expert, >=, 0);
      g_string_append_printf (json, "%s{\"pattern\": \"%s\", \"algorithm\": \"rtn\"}", i > 0 ? ", " : "",
                              fallbacks[i]);
    }
  g_string_append (json, "]}");

  explicit_plan = bl_quant_plan_new_from_json (json->str, -1, "explicit", &error);
  g_assert_no_error (error);
  bl_quant_plan_set_calibration (explicit_plan, &calib);
  qe_explicit = quant_engine (model, backend, explicit_plan, ids);
  none = bl_quant_engine_get_rtn_fallbacks (qe_explicit);
  g_assert_cmpuint (g_strv_length (none), ==, 0);
  assert_same_logits (bl_quant_engine_get_engine (qe), bl_quant_engine_get_engine (qe_explicit), ids);
  bl_quant_engine_free (qe_explicit);
  bl_quant_engine_free (qe);
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/bitlens/quant-engine/static/int8-tensor", test_static_tensor_by_hand);
  g_test_add_func ("/bitlens/quant-engine/static/int4-channel-asym", test_static_channel_by_hand);
  g_test_add_func ("/bitlens/quant-engine/static/fp8-tensor", test_static_fp8_by_hand);
  g_test_add_func ("/bitlens/quant-engine/token/int8", test_per_token_by_hand);
  g_test_add_func ("/bitlens/quant-engine/full-precision-exact", test_full_precision_is_exact);
  g_test_add_data_func ("/bitlens/quant-engine/w4a8/llama-bias-f16", "llama-bias-f16",
                        test_weights_and_tokens);
  g_test_add_data_func ("/bitlens/quant-engine/w4a8/llama-tied-bf16", "llama-tied-bf16",
                        test_weights_and_tokens);
  g_test_add_data_func ("/bitlens/quant-engine/w4a8/qwen2-gqa", "qwen2-gqa",
                        test_weights_and_tokens);
  g_test_add_func ("/bitlens/quant-engine/kv-cache", test_kv_cache);
  g_test_add_data_func ("/bitlens/quant-engine/static/engine-tensor", "int8:tensor",
                        test_static_activations);
  g_test_add_data_func ("/bitlens/quant-engine/static/engine-channel", "int8:channel",
                        test_static_activations);
  g_test_add_func ("/bitlens/quant-engine/set-plan", test_set_plan);
  g_test_add_func ("/bitlens/quant-engine/bias-correction", test_bias_correction);
  g_test_add_func ("/bitlens/quant-engine/tied-head", test_tied_head);
  g_test_add_func ("/bitlens/quant-engine/transforms", test_transforms);
  g_test_add_func ("/bitlens/quant-engine/moe-rtn-fallback", test_moe_rtn_fallback);

  return g_test_run ();
}
