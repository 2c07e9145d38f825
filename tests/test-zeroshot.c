/* test-zeroshot.c: tests of core/bl-zeroshot.c, the zero-shot scorer and its metrics
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * The hand-computed example: tests/fixtures/reference/zeroshot-tiny-llama.json is the output
 * of tools/reference-zeroshot on tests/fixtures/tiny-llama/llama-tied-bf16 (an independent
 * PyTorch forward, float64 log-softmax); the C scores must match within 1e-4 and pick the
 * same answers. The metric tests use the test vector of methods.md §13i. The end-to-end
 * tests run the bundled demo model (data/models/bitlens-demo) on the task fixtures of
 * tests/fixtures/mc/.
 */
#include <json-glib/json-glib.h>
#include <math.h>
#include <string.h>

#include "bitlens.h"
#include "bl-mc.h"
#include "bl-store-private.h"
#include "bl-zeroshot.h"

typedef struct
{
  BlModel *model;
  BlBackend *backend;
  BlEngine *engine;
} Session;

static void
session_clear (Session *s)
{
  g_clear_pointer (&s->engine, bl_engine_free);
  g_clear_pointer (&s->backend, bl_backend_free);
  g_clear_object (&s->model);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Session, session_clear)

static void
session_open (Session    *s,
              const char *dir)
{
  g_autoptr(GError) error = NULL;

  s->model = bl_model_load (dir, NULL, &error);
  g_assert_no_error (error);
  s->backend = bl_backend_new ("cpu", 1, &error);
  g_assert_no_error (error);
  s->engine = bl_engine_new (s->model, s->backend, NULL, &error);
  g_assert_no_error (error);
}

static void
demo_open (Session *s)
{
  g_autofree char *dir = g_test_build_filename (G_TEST_DIST, "..", "data", "models",
                                                "bitlens-demo", NULL);

  session_open (s, dir);
}

static GArray *
ids_from_json (JsonArray *array)
{
  GArray *ids = g_array_new (FALSE, FALSE, sizeof (int32_t));

  for (guint i = 0; i < json_array_get_length (array); i++)
    {
      int32_t id = (int32_t) json_array_get_int_element (array, i);

      g_array_append_val (ids, id);
    }
  return ids;
}

/* The hand-computed example: summed log-likelihoods of 2- and 3-choice items on the tiny
 * random Llama, one of them longer than the model's 64 positions (left truncation), one
 * with a continuation longer than the model (several passes). */
static void
test_reference_tiny_llama (void)
{
  g_autofree char *model_dir = g_test_build_filename (G_TEST_DIST, "fixtures", "tiny-llama",
                                                      "llama-tied-bf16", NULL);
  g_autofree char *ref_path = g_test_build_filename (G_TEST_DIST, "fixtures", "reference",
                                                     "zeroshot-tiny-llama.json", NULL);
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GError) error = NULL;
  g_auto(Session) s = { 0 };
  JsonArray *items;
  gboolean saw_greedy = FALSE, saw_truncated = FALSE, saw_long = FALSE;

  session_open (&s, model_dir);
  g_assert_true (json_parser_load_from_file (parser, ref_path, &error));
  g_assert_no_error (error);
  items = json_object_get_array_member (json_node_get_object (json_parser_get_root (parser)),
                                        "items");
  g_assert_cmpuint (json_array_get_length (items), ==, 4);

  for (guint i = 0; i < json_array_get_length (items); i++)
    {
      JsonObject *item = json_array_get_object_element (items, i);
      JsonArray *choices = json_object_get_array_member (item, "choices");
      JsonArray *want_ll = json_object_get_array_member (item, "loglik");
      JsonArray *want_greedy = json_object_get_array_member (item, "greedy");
      g_autoptr(GArray) ctx = ids_from_json (json_object_get_array_member (item, "context"));
      double best = -INFINITY;
      int pred = -1;

      for (guint c = 0; c < json_array_get_length (choices); c++)
        {
          g_autoptr(GArray) cont = ids_from_json (json_array_get_array_element (choices, c));
          double ll = 0.0;
          gboolean greedy = FALSE;

          g_assert_true (bl_zeroshot_score_ids (s.engine, (const int32_t *) ctx->data, ctx->len,
                                                (const int32_t *) cont->data, cont->len, &ll,
                                                &greedy, NULL, &error));
          g_assert_no_error (error);
          g_assert_cmpfloat_with_epsilon (ll, json_array_get_double_element (want_ll, c), 1e-4);
          g_assert_cmpint (greedy, ==, json_array_get_boolean_element (want_greedy, c));
          saw_greedy |= greedy;
          saw_truncated |= ctx->len + cont->len - 1 > (guint) bl_engine_get_max_tokens (s.engine);
          saw_long |= cont->len > (guint) bl_engine_get_max_tokens (s.engine);
          if (ll > best)
            {
              best = ll;
              pred = (int) c;
            }
        }
      g_assert_cmpint (pred, ==, json_object_get_int_member (item, "pred"));
    }
  g_assert_true (saw_greedy);
  g_assert_true (saw_truncated);
  g_assert_true (saw_long);
}

static void
test_score_ids_errors (void)
{
  g_autofree char *model_dir = g_test_build_filename (G_TEST_DIST, "fixtures", "tiny-llama",
                                                      "llama-tied-bf16", NULL);
  g_auto(Session) s = { 0 };
  int32_t ctx[] = { 1, 5 };
  int32_t cont[] = { 3, 4, 5 };
  double ll = 1.0;
  gboolean greedy = FALSE;

  session_open (&s, model_dir);
  {
    g_autoptr(GError) error = NULL;

    g_assert_false (bl_zeroshot_score_ids (s.engine, ctx, 0, cont, 1, &ll, &greedy, NULL,
                                           &error));
    g_assert_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT);
  }
  {
    g_autoptr(GError) error = NULL;

    /* an empty continuation scores 0 and counts as greedy, as in the harness */
    g_assert_true (bl_zeroshot_score_ids (s.engine, ctx, 2, NULL, 0, &ll, &greedy, NULL, &error));
    g_assert_no_error (error);
    g_assert_cmpfloat (ll, ==, 0.0);
    g_assert_true (greedy);
  }
  {
    g_autoptr(GError) error = NULL;
    g_autoptr(GCancellable) cancellable = g_cancellable_new ();

    g_cancellable_cancel (cancellable);
    g_assert_false (bl_zeroshot_score_ids (s.engine, ctx, 2, cont, 3, &ll, &greedy,
                                           cancellable, &error));
    g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  }
}

/* methods.md §13i: p̂ = (0.9, 0.8, 0.3, 0.6, 0.1, 0.55), y = (1, 0, 0, 1, 1, 0) gives
 * Balance −0.241667 and binary Brier 0.335417, laid out here as two options (P(0), P(1)). */
static void
test_metrics_methods_vector (void)
{
  static const double p1[] = { 0.9, 0.8, 0.3, 0.6, 0.1, 0.55 };
  static const int y[] = { 1, 0, 0, 1, 1, 0 };
  double probs[12];
  guint offsets[7];

  for (guint i = 0; i < 6; i++)
    {
      probs[2 * i] = 1.0 - p1[i];
      probs[2 * i + 1] = p1[i];
      offsets[i] = 2 * i;
    }
  offsets[6] = 12;

  g_assert_cmpfloat_with_epsilon (bl_zeroshot_balance (probs, offsets, y, 6), -0.241667, 1e-6);
  /* the multi-class Brier is twice the binary one on two options */
  g_assert_cmpfloat_with_epsilon (bl_zeroshot_brier (probs, offsets, y, 6), 2 * 0.335417, 1e-6);
  /* confidences 0.9 0.8 0.7 0.6 0.9 0.55 (right: y n y y n n) in 15 bins: bins 13 {0.9 ✓,
   * 0.9 ✗}, 12 {0.8 ✗}, 10 {0.7 ✓}, 9 {0.6 ✓}, 8 {0.55 ✗}:
   * (|1 − 1.8| + |0 − 0.8| + |1 − 0.7| + |1 − 0.6| + |0 − 0.55|) / 6 = 2.85 / 6 */
  g_assert_cmpfloat_with_epsilon (bl_zeroshot_ece (probs, offsets, y, 6, 15), 0.475, 1e-12);
  /* one bin: |acc − mean confidence| = |0.5 − 0.741667| = −Balance */
  g_assert_cmpfloat_with_epsilon (bl_zeroshot_ece (probs, offsets, y, 6, 1), 0.241667, 1e-6);

  g_assert_true (isnan (bl_zeroshot_brier (probs, offsets, y, 0)));
  g_assert_true (isnan (bl_zeroshot_ece (probs, offsets, y, 0, 15)));
  g_assert_true (isnan (bl_zeroshot_balance (probs, offsets, y, 0)));
}

static void
test_metrics_uneven_choices (void)
{
  /* item 0: 3 options, right and sure; item 1: 4 uniform options (tie → option 0, wrong) */
  static const double probs[] = { 0.1, 0.8, 0.1, 0.25, 0.25, 0.25, 0.25 };
  static const guint offsets[] = { 0, 3, 7 };
  static const int gold[] = { 1, 3 };
  double brier = ((0.01 + 0.04 + 0.01) + (3 * 0.0625 + 0.5625)) / 2;

  g_assert_cmpfloat_with_epsilon (bl_zeroshot_brier (probs, offsets, gold, 2), brier, 1e-12);
  g_assert_cmpfloat_with_epsilon (bl_zeroshot_balance (probs, offsets, gold, 2),
                                  ((1 - 0.8) + (0 - 0.25)) / 2, 1e-12);
  /* bins of 10: 0.8 → bin 8 (|1 − 0.8|), 0.25 → bin 2 (|0 − 0.25|) */
  g_assert_cmpfloat_with_epsilon (bl_zeroshot_ece (probs, offsets, gold, 2, 10), 0.225, 1e-12);
}

static void
test_wilson (void)
{
  double lo, hi;

  /* textbook values (Wilson 1927; Newcombe 1998, table I) */
  bl_zeroshot_wilson_interval (3, 6, &lo, &hi);
  g_assert_cmpfloat_with_epsilon (lo, 0.187616, 1e-6);
  g_assert_cmpfloat_with_epsilon (hi, 0.812384, 1e-6);
  bl_zeroshot_wilson_interval (0, 10, &lo, &hi);
  g_assert_cmpfloat (lo, ==, 0.0);
  g_assert_cmpfloat_with_epsilon (hi, 0.277533, 1e-6);
  bl_zeroshot_wilson_interval (10, 10, &lo, &hi);
  g_assert_cmpfloat_with_epsilon (lo, 0.722467, 1e-6);
  g_assert_cmpfloat (hi, <=, 1.0);
  bl_zeroshot_wilson_interval (0, 0, &lo, &hi);
  g_assert_true (isnan (lo) && isnan (hi));
}

static BlTokenizer *
bytelevel_tokenizer (void)
{
  g_autofree char *json = g_test_build_filename (G_TEST_DIST, "fixtures", "tokenizer",
                                                 "bytelevel", "tokenizer.json", NULL);
  g_autofree char *config = g_test_build_filename (G_TEST_DIST, "fixtures", "tokenizer",
                                                   "bytelevel", "tokenizer_config.json", NULL);
  g_autoptr(GError) error = NULL;
  BlTokenizer *tok = bl_tokenizer_new_from_file (json, config, &error);

  g_assert_no_error (error);
  return tok;
}

static void
assert_ids_equal (GArray        *a,
                  const int32_t *b,
                  guint          n)
{
  g_assert_cmpuint (a->len, ==, n);
  g_assert_cmpmem (a->data, a->len * sizeof (int32_t), b, n * sizeof (int32_t));
}

static void
test_encode_pair (void)
{
  g_autoptr(BlTokenizer) tok = bytelevel_tokenizer ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GArray) ctx = NULL;
  g_autoptr(GArray) cont = NULL;
  g_autoptr(GArray) ctx2 = NULL;
  g_autoptr(GArray) cont2 = NULL;
  g_autoptr(GArray) want_ctx = NULL;
  g_autoptr(GArray) whole = NULL;
  int32_t bos = bl_tokenizer_get_bos_id (tok);

  g_assert_cmpint (bos, >=, 0);
  g_assert_true (bl_zeroshot_encode_pair (tok, "Question: Is the sky blue?\nAnswer:", " yes",
                                          TRUE, &ctx, &cont, &error));
  g_assert_no_error (error);
  want_ctx = bl_tokenizer_encode (tok, "Question: Is the sky blue?\nAnswer:", -1, TRUE);
  whole = bl_tokenizer_encode (tok, "Question: Is the sky blue?\nAnswer: yes", -1, TRUE);
  g_assert_cmpint (g_array_index (ctx, int32_t, 0), ==, bos);
  assert_ids_equal (ctx, (const int32_t *) want_ctx->data, want_ctx->len);
  /* the continuation is what the whole encoding has after the context's tokens */
  assert_ids_equal (cont, &g_array_index (whole, int32_t, ctx->len), whole->len - ctx->len);

  /* white space at the end of the context moves to the continuation */
  g_assert_true (bl_zeroshot_encode_pair (tok, "Question: Is the sky blue?\nAnswer: ", "yes",
                                          TRUE, &ctx2, &cont2, &error));
  g_assert_no_error (error);
  assert_ids_equal (ctx2, (const int32_t *) ctx->data, ctx->len);
  assert_ids_equal (cont2, (const int32_t *) cont->data, cont->len);
  g_clear_pointer (&ctx2, g_array_unref);
  g_clear_pointer (&cont2, g_array_unref);

  /* without BOS */
  g_assert_true (bl_zeroshot_encode_pair (tok, "Question: Is the sky blue?\nAnswer:", " yes",
                                          FALSE, &ctx2, &cont2, &error));
  g_assert_no_error (error);
  assert_ids_equal (ctx2, (const int32_t *) ctx->data + 1, ctx->len - 1);
  assert_ids_equal (cont2, (const int32_t *) cont->data, cont->len);
  g_clear_pointer (&ctx2, g_array_unref);
  g_clear_pointer (&cont2, g_array_unref);

  /* an empty (or blank) context is the prefix token alone, and the continuation keeps the
   * context's white space */
  g_assert_true (bl_zeroshot_encode_pair (tok, "  ", "yes", FALSE, &ctx2, &cont2, &error));
  g_assert_no_error (error);
  assert_ids_equal (ctx2, &bos, 1);
  g_clear_pointer (&whole, g_array_unref);
  whole = bl_tokenizer_encode (tok, "  yes", -1, FALSE);
  assert_ids_equal (cont2, (const int32_t *) whole->data, whole->len);
}

static BlMcSet *
load_fixture (BlMcTask    task,
              const char *relative)
{
  g_autofree char *path = g_test_build_filename (G_TEST_DIST, "fixtures", "mc", relative, NULL);
  g_autoptr(GError) error = NULL;
  BlMcSet *set = bl_mc_set_load (task, path, &error);

  g_assert_no_error (error);
  return set;
}

static void
on_item_done (BlZeroshot *zs,
              guint       n_done,
              gpointer    user_data)
{
  guint *count = user_data;

  g_assert_cmpuint (n_done, ==, *count + 1);
  g_assert_cmpuint (bl_zeroshot_get_n_done (zs), >=, n_done);
  (*count)++;
}

/* Every item's scores are those of its requests scored one by one, the predictions are
 * their argmax, and the metrics follow from them. */
static void
check_evaluation (Session    *s,
                  BlMcTask    task,
                  const char *file)
{
  g_autoptr(BlMcSet) set = load_fixture (task, file);
  BlTokenizer *tok = bl_model_get_tokenizer (s->model);
  BlZeroshotOptions opts = { .add_bos = TRUE, .seed = 7 };
  g_autoptr(BlZeroshot) zs = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree double *probs = NULL;
  g_autofree guint *offsets = NULL;
  g_autofree int *gold = NULL;
  BlZeroshotMetrics m;
  guint n = bl_mc_set_get_n_items (set), count = 0, right = 0, right_norm = 0, n_probs = 0;
  double chance = 0.0, gold_ll = 0.0;

  zs = bl_zeroshot_new (s->engine, tok, bl_mc_set_get_items (set), &opts, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (bl_zeroshot_get_n_items (zs), ==, n);
  g_signal_connect (zs, "item-done", G_CALLBACK (on_item_done), &count);
  g_assert_true (bl_zeroshot_execute (zs, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (count, ==, n);
  g_assert_cmpuint (bl_zeroshot_get_n_done (zs), ==, n);

  probs = g_new (double, 8 * n);
  offsets = g_new (guint, n + 1);
  gold = g_new (int, n);
  offsets[0] = 0;
  for (guint i = 0; i < n; i++)
    {
      const BlMcItem *item = bl_mc_set_get_item (set, i);
      const double *ll;
      guint n_choices;
      int pred, pred_norm, want_pred = 0, want_norm = 0;
      gboolean all_greedy = TRUE;

      g_assert_true (bl_zeroshot_get_item_result (zs, i, &ll, &n_choices, &pred, &pred_norm));
      g_assert_cmpuint (n_choices, ==, item->n_choices);
      for (guint c = 0; c < n_choices; c++)
        {
          g_autoptr(GArray) ctx = NULL;
          g_autoptr(GArray) cont = NULL;
          double want;
          gboolean greedy;

          g_assert_true (bl_zeroshot_encode_pair (tok, item->contexts[c], item->continuations[c],
                                                  TRUE, &ctx, &cont, &error));
          g_assert_true (bl_zeroshot_score_ids (s->engine, (const int32_t *) ctx->data, ctx->len,
                                                (const int32_t *) cont->data, cont->len, &want,
                                                &greedy, NULL, &error));
          g_assert_no_error (error);
          g_assert_cmpfloat (ll[c], ==, want);
          g_assert_cmpfloat (ll[c], <, 0.0);
          all_greedy = all_greedy && greedy;
          if (ll[c] > ll[want_pred])
            want_pred = (int) c;
          if (ll[c] / bl_mc_item_get_choice_length (item, c)
              > ll[want_norm] / bl_mc_item_get_choice_length (item, want_norm))
            want_norm = (int) c;
        }
      gold_ll += ll[item->gold];
      if (item->scoring == BL_MC_SCORING_GREEDY)
        {
          g_assert_cmpint (pred, ==, all_greedy ? 0 : -1);
          right += all_greedy;
          continue;
        }
      g_assert_cmpint (pred, ==, want_pred);
      g_assert_cmpint (pred_norm, ==, want_norm);
      right += pred == item->gold;
      right_norm += pred_norm == item->gold;
      chance += 1.0 / n_choices;
      for (guint c = 0; c < n_choices; c++)
        {
          double sum = 0.0;

          for (guint d = 0; d < n_choices; d++)
            sum += exp (ll[d] - ll[c]);
          probs[n_probs + c] = 1.0 / sum;
        }
      n_probs += n_choices;
      gold[i] = item->gold;
      offsets[i + 1] = n_probs;
    }

  bl_zeroshot_get_metrics (zs, &m);
  g_assert_cmpuint (m.n_items, ==, n);
  g_assert_cmpfloat_with_epsilon (m.acc, (double) right / n, 1e-12);
  g_assert_cmpfloat_with_epsilon (m.mean_loglik, gold_ll / n, 1e-9);
  g_assert_cmpfloat_with_epsilon (m.ppl, exp (-gold_ll / n), 1e-6 * m.ppl);
  g_assert_cmpfloat (m.acc_ci_low, <=, m.acc);
  g_assert_cmpfloat (m.acc_ci_high, >=, m.acc);
  if (task == BL_MC_TASK_LAMBADA)
    {
      g_assert_cmpuint (m.n_choice_items, ==, 0);
      g_assert_true (isnan (m.acc_norm) && isnan (m.ece) && isnan (m.brier));
      g_assert_true (isnan (m.balance) && isnan (m.chance));
      return;
    }
  g_assert_cmpuint (m.n_choice_items, ==, n);
  g_assert_cmpfloat_with_epsilon (m.acc_norm, (double) right_norm / n, 1e-12);
  g_assert_cmpfloat_with_epsilon (m.chance, chance / n, 1e-12);
  g_assert_cmpuint (m.ece_bins, ==, BL_ZEROSHOT_DEFAULT_ECE_BINS);
  g_assert_cmpfloat_with_epsilon (m.brier, bl_zeroshot_brier (probs, offsets, gold, n), 1e-12);
  g_assert_cmpfloat_with_epsilon (m.ece, bl_zeroshot_ece (probs, offsets, gold, n, 15), 1e-12);
  g_assert_cmpfloat_with_epsilon (m.balance, bl_zeroshot_balance (probs, offsets, gold, n), 1e-12);
  g_assert_cmpfloat_with_epsilon (m.balance, m.acc - m.mean_confidence, 1e-12);
}

static void
test_evaluation_demo (void)
{
  g_auto(Session) s = { 0 };

  demo_open (&s);
  check_evaluation (&s, BL_MC_TASK_PIQA, "piqa/valid.jsonl");
  check_evaluation (&s, BL_MC_TASK_ARC_CHALLENGE, "arc_challenge/test.icl.jsonl");
  check_evaluation (&s, BL_MC_TASK_WINOGRANDE, "winogrande/validation.icl.jsonl");
  check_evaluation (&s, BL_MC_TASK_BOOLQ, "boolq/validation.icl.jsonl");
  check_evaluation (&s, BL_MC_TASK_LAMBADA, "lambada_openai/test.icl.jsonl");
}

static void
test_limit_and_order (void)
{
  g_auto(Session) s = { 0 };
  g_autoptr(BlMcSet) set = load_fixture (BL_MC_TASK_ARC_EASY, "arc_easy/test.icl.jsonl");
  BlTokenizer *tok;
  BlZeroshotOptions opts = { .add_bos = TRUE, .limit = 1, .ece_bins = 4 };
  BlZeroshotOptions all = { .add_bos = TRUE, .seed = 99 };
  g_autoptr(BlZeroshot) first = NULL;
  g_autoptr(BlZeroshot) whole = NULL;
  g_autoptr(GError) error = NULL;
  BlZeroshotMetrics m;
  const double *a, *b;
  guint n;

  demo_open (&s);
  tok = bl_model_get_tokenizer (s.model);
  first = bl_zeroshot_new (s.engine, tok, bl_mc_set_get_items (set), &opts, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (bl_zeroshot_get_n_items (first), ==, 1);
  bl_zeroshot_get_metrics (first, &m);
  g_assert_cmpuint (m.n_items, ==, 0);
  g_assert_true (isnan (m.acc) && isnan (m.brier));
  g_assert_false (bl_zeroshot_get_item_result (first, 0, NULL, NULL, NULL, NULL));
  g_assert_true (bl_zeroshot_execute (first, NULL, &error));
  bl_zeroshot_get_metrics (first, &m);
  g_assert_cmpuint (m.n_items, ==, 1);
  g_assert_cmpuint (m.ece_bins, ==, 4);
  g_assert_true (isnan (m.acc_stderr));

  /* the same item scores the same in any evaluation order */
  whole = bl_zeroshot_new (s.engine, tok, bl_mc_set_get_items (set), &all, &error);
  g_assert_true (bl_zeroshot_execute (whole, NULL, &error));
  g_assert_no_error (error);
  g_assert_true (bl_zeroshot_get_item_result (first, 0, &a, &n, NULL, NULL));
  g_assert_true (bl_zeroshot_get_item_result (whole, 0, &b, NULL, NULL, NULL));
  g_assert_cmpmem (a, n * sizeof (double), b, n * sizeof (double));

  {
    g_autoptr(GPtrArray) none = g_ptr_array_new ();
    g_autoptr(GError) empty_error = NULL;

    g_assert_null (bl_zeroshot_new (s.engine, tok, none, &all, &empty_error));
    g_assert_error (empty_error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT);
  }
}

typedef struct
{
  GMainLoop *loop;
  gboolean ok;
  GError *error;
  guint n_signals;
} AsyncState;

static void
on_async_item (BlZeroshot *zs,
               guint       n_done,
               gpointer    user_data)
{
  AsyncState *st = user_data;

  st->n_signals++;
  g_assert_cmpuint (n_done, ==, st->n_signals);
}

static void
on_async_done (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  AsyncState *st = user_data;

  st->ok = bl_zeroshot_execute_finish (BL_ZEROSHOT (source), result, &st->error);
  g_main_loop_quit (st->loop);
}

static void
test_async (void)
{
  g_auto(Session) s = { 0 };
  g_autoptr(BlMcSet) set = load_fixture (BL_MC_TASK_BOOLQ, "boolq/validation.icl.jsonl");
  BlZeroshotOptions opts = { .add_bos = FALSE };
  g_autoptr(BlZeroshot) zs = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GMainLoop) loop = g_main_loop_new (NULL, FALSE);
  AsyncState st = { loop, FALSE, NULL, 0 };

  demo_open (&s);
  zs = bl_zeroshot_new (s.engine, bl_model_get_tokenizer (s.model), bl_mc_set_get_items (set),
                        &opts, &error);
  g_signal_connect (zs, "item-done", G_CALLBACK (on_async_item), &st);
  bl_zeroshot_execute_async (zs, NULL, on_async_done, &st);
  g_main_loop_run (loop);
  g_assert_no_error (st.error);
  g_assert_true (st.ok);
  /* the idle emissions queued before the completion callback have all run */
  while (g_main_context_iteration (NULL, FALSE))
    ;
  g_assert_cmpuint (st.n_signals, ==, bl_mc_set_get_n_items (set));
}

static gint64
query_int (sqlite3    *db,
           const char *sql)
{
  sqlite3_stmt *stmt = NULL;
  gint64 v;

  g_assert_cmpint (sqlite3_prepare_v2 (db, sql, -1, &stmt, NULL), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_step (stmt), ==, SQLITE_ROW);
  v = sqlite3_column_type (stmt, 0) == SQLITE_NULL ? -1 : sqlite3_column_int64 (stmt, 0);
  sqlite3_finalize (stmt);
  return v;
}

static double
query_double (sqlite3    *db,
              const char *sql)
{
  sqlite3_stmt *stmt = NULL;
  double v;

  g_assert_cmpint (sqlite3_prepare_v2 (db, sql, -1, &stmt, NULL), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_step (stmt), ==, SQLITE_ROW);
  v = sqlite3_column_type (stmt, 0) == SQLITE_NULL ? NAN : sqlite3_column_double (stmt, 0);
  sqlite3_finalize (stmt);
  return v;
}

static void
test_store (void)
{
  g_auto(Session) s = { 0 };
  g_autoptr(BlMcSet) set = load_fixture (BL_MC_TASK_PIQA, "piqa/valid.jsonl");
  BlTokenizer *tok;
  BlZeroshotOptions opts = { .add_bos = TRUE };
  g_autoptr(BlZeroshot) done = NULL;
  g_autoptr(BlZeroshot) cancelled = NULL;
  g_autoptr(BlStore) store = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  BlZeroshotProvenance prov = {
    .task = "piqa",
    .dataset_name = bl_mc_set_get_name (set),
    .dataset_path = bl_mc_set_get_path (set),
    .dataset_sha256 = bl_mc_set_get_sha256 (set),
    .dataset_kind = bl_mc_format_to_string (bl_mc_set_get_format (set)),
    .backend = "cpu",
    .threads = 1,
    .plan_json = "{\"default\": {\"w\": \"int8:channel\"}}",
  };
  BlZeroshotMetrics m;
  sqlite3 *db;
  gint64 id, id2;
  const double *ll;
  g_autofree char *sql = NULL;

  demo_open (&s);
  tok = bl_model_get_tokenizer (s.model);
  store = bl_store_open (":memory:", &error);
  g_assert_no_error (error);
  db = bl_store_get_db (store);

  done = bl_zeroshot_new (s.engine, tok, bl_mc_set_get_items (set), &opts, &error);
  g_assert_true (bl_zeroshot_execute (done, NULL, &error));
  id = bl_zeroshot_store (done, store, &prov, "finished", NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (id, >, 0);

  bl_zeroshot_get_metrics (done, &m);
  sql = g_strdup_printf ("SELECT n_done FROM zeroshot_runs WHERE id = %" G_GINT64_FORMAT
                         " AND status = 'finished' AND task = 'piqa' AND add_bos = 1 "
                         "AND dataset_kind = 'mc-piqa' AND plan_json IS NOT NULL "
                         "AND model_fingerprint = '%s'", id, bl_model_get_fingerprint (s.model));
  g_assert_cmpint (query_int (db, sql), ==, 3);
  g_clear_pointer (&sql, g_free);
  sql = g_strdup_printf ("SELECT acc FROM zeroshot_runs WHERE id = %" G_GINT64_FORMAT, id);
  g_assert_cmpfloat (query_double (db, sql), ==, m.acc);
  g_clear_pointer (&sql, g_free);
  sql = g_strdup_printf ("SELECT balance FROM zeroshot_runs WHERE id = %" G_GINT64_FORMAT, id);
  g_assert_cmpfloat (query_double (db, sql), ==, m.balance);
  g_clear_pointer (&sql, g_free);
  g_assert_cmpint (query_int (db, "SELECT count (*) FROM zeroshot_items"), ==, 3);
  /* the stored log-likelihoods round-trip exactly */
  g_assert_true (bl_zeroshot_get_item_result (done, 1, &ll, NULL, NULL, NULL));
  sql = g_strdup_printf ("SELECT json_extract (loglik, '$[1]') FROM zeroshot_items "
                         "WHERE run_id = %" G_GINT64_FORMAT " AND item_index = 1", id);
  g_assert_cmpfloat (query_double (db, sql), ==, ll[1]);
  g_clear_pointer (&sql, g_free);
  g_assert_cmpint (query_int (db, "SELECT count (*) FROM datasets WHERE kind = 'mc-piqa'"), ==, 1);

  /* a cancelled evaluation is recorded as such, with what it finished (here nothing) */
  cancelled = bl_zeroshot_new (s.engine, tok, bl_mc_set_get_items (set), &opts, &error);
  g_cancellable_cancel (cancellable);
  g_assert_false (bl_zeroshot_execute (cancelled, cancellable, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&error);
  prov.plan_json = NULL;
  id2 = bl_zeroshot_store (cancelled, store, &prov, "cancelled", "cancelled by the user", &error);
  g_assert_no_error (error);
  sql = g_strdup_printf ("SELECT n_done FROM zeroshot_runs WHERE id = %" G_GINT64_FORMAT
                         " AND status = 'cancelled' AND acc IS NULL AND n_items = 3", id2);
  g_assert_cmpint (query_int (db, sql), ==, 0);
  g_clear_pointer (&sql, g_free);
  g_assert_cmpint (query_int (db, "SELECT count (*) FROM zeroshot_items"), ==, 3);

  /* a failing insert leaves nothing behind: an unknown status violates the CHECK */
  g_assert_cmpint (bl_zeroshot_store (done, store, &prov, "running", NULL, &error), ==, 0);
  g_assert_error (error, BL_ERROR, BL_ERROR_STORE);
  g_assert_cmpint (query_int (db, "SELECT count (*) FROM zeroshot_runs"), ==, 2);
  g_assert_cmpint (query_int (db, "SELECT count (*) FROM zeroshot_items"), ==, 3);
  g_assert_true (sqlite3_get_autocommit (db));
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

  g_test_add_func ("/bitlens/zeroshot/reference/tiny-llama", test_reference_tiny_llama);
  g_test_add_func ("/bitlens/zeroshot/score-ids/errors", test_score_ids_errors);
  g_test_add_func ("/bitlens/zeroshot/metrics/methods-vector", test_metrics_methods_vector);
  g_test_add_func ("/bitlens/zeroshot/metrics/uneven-choices", test_metrics_uneven_choices);
  g_test_add_func ("/bitlens/zeroshot/metrics/wilson", test_wilson);
  g_test_add_func ("/bitlens/zeroshot/encode-pair", test_encode_pair);
  g_test_add_func ("/bitlens/zeroshot/evaluation/demo", test_evaluation_demo);
  g_test_add_func ("/bitlens/zeroshot/evaluation/limit-and-order", test_limit_and_order);
  g_test_add_func ("/bitlens/zeroshot/evaluation/async", test_async);
  g_test_add_func ("/bitlens/zeroshot/store", test_store);

  return g_test_run ();
}
