/* test-protocol.c: tests of core/bl-protocol.c
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include <string.h>

#include "bl-error.h"
#include "bl-protocol.h"

static void
test_names (void)
{
  BlProtocol p;

  for (guint i = BL_PROTOCOL_GPTQ; i <= BL_PROTOCOL_LLAMACPP; i++)
    {
      g_assert_true (bl_protocol_from_string (bl_protocol_to_string (i), &p));
      g_assert_cmpint (p, ==, i);
    }
  g_assert_cmpstr (bl_protocol_to_string (BL_PROTOCOL_GPTQ), ==, "gptq");
  g_assert_cmpstr (bl_protocol_to_string (BL_PROTOCOL_HF_STRIDE), ==, "hf-stride");
  g_assert_cmpstr (bl_protocol_to_string (BL_PROTOCOL_LLAMACPP), ==, "llamacpp");
  g_assert_false (bl_protocol_from_string ("GPTQ", &p));
  g_assert_false (bl_protocol_from_string ("", &p));
}

static gint64
count_targets (GArray *windows)
{
  gint64 n = 0;

  for (guint i = 0; i < windows->len; i++)
    {
      const BlWindow *w = &g_array_index (windows, BlWindow, i);

      g_assert_cmpint (w->first_target, >=, 1);
      g_assert_cmpint (w->first_target, <, w->length);
      n += w->length - w->first_target;
    }
  return n;
}

static void
test_gptq (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GArray) windows = NULL;

  /* 10,000 ids at 2048: 4 windows, 1,808 ids dropped, 2047 targets per window. */
  windows = bl_protocol_make_windows (BL_PROTOCOL_GPTQ, 10000, 2048, 0, TRUE, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (windows->len, ==, 4);
  for (guint i = 0; i < windows->len; i++)
    {
      const BlWindow *w = &g_array_index (windows, BlWindow, i);

      g_assert_cmpint (w->start, ==, (gint64) i * 2048);
      g_assert_cmpint (w->length, ==, 2048);
      g_assert_cmpint (w->first_target, ==, 1);
      /* GPTQ has BOS only at the start of the text, never per window */
      g_assert_false (w->bos_first);
    }
  g_assert_cmpint (count_targets (windows), ==, 4 * 2047);

  /* exactly one window */
  g_clear_pointer (&windows, g_array_unref);
  windows = bl_protocol_make_windows (BL_PROTOCOL_GPTQ, 2048, 2048, 0, FALSE, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (windows->len, ==, 1);
}

static void
test_llamacpp (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GArray) windows = NULL;

  windows = bl_protocol_make_windows (BL_PROTOCOL_LLAMACPP, 3 * 512 + 100, 512, 0, TRUE,
                                      &error);
  g_assert_no_error (error);
  g_assert_cmpuint (windows->len, ==, 3);
  for (guint i = 0; i < windows->len; i++)
    {
      const BlWindow *w = &g_array_index (windows, BlWindow, i);

      g_assert_cmpint (w->start, ==, (gint64) i * 512);
      g_assert_cmpint (w->length, ==, 512);
      g_assert_cmpint (w->first_target, ==, 257);
      g_assert_true (w->bos_first);
      /* llama.cpp: 255 scored tokens per chunk at c = 512 */
      g_assert_cmpint (w->length - w->first_target, ==, 255);
    }

  /* without a BOS token nothing is replaced */
  g_clear_pointer (&windows, g_array_unref);
  windows = bl_protocol_make_windows (BL_PROTOCOL_LLAMACPP, 2048, 512, 0, FALSE, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (windows->len, ==, 4);
  g_assert_false (g_array_index (windows, BlWindow, 0).bos_first);

  /* odd ctx: first = 1025/2 = 512, targets 513 .. 1024 */
  g_clear_pointer (&windows, g_array_unref);
  windows = bl_protocol_make_windows (BL_PROTOCOL_LLAMACPP, 1025, 1025, 0, TRUE, &error);
  g_assert_no_error (error);
  g_assert_cmpint (g_array_index (windows, BlWindow, 0).first_target, ==, 513);
  g_assert_cmpint (count_targets (windows), ==, 1025 - 512 - 1);

  /* ctx 3 is the smallest with a target; ctx 2 has none */
  g_clear_pointer (&windows, g_array_unref);
  windows = bl_protocol_make_windows (BL_PROTOCOL_LLAMACPP, 10, 3, 0, TRUE, &error);
  g_assert_no_error (error);
  g_assert_cmpint (count_targets (windows), ==, 3);
  g_clear_pointer (&windows, g_array_unref);
  windows = bl_protocol_make_windows (BL_PROTOCOL_LLAMACPP, 10, 2, 0, TRUE, &error);
  g_assert_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT);
  g_assert_null (windows);
}

/* The HF loop, written out as in the transformers perplexity guide, marking which global
 * positions each window scores. */
static void
hf_reference (gint64   n,
              int      ctx,
              int      stride,
              GArray  *windows)
{
  gint64 prev_end = 0;
  guint k = 0;
  g_autofree guint8 *scored = g_new0 (guint8, n);

  for (gint64 begin = 0; begin < n; begin += stride)
    {
      gint64 end = MIN (begin + ctx, n);
      gint64 trg_len = end - prev_end;
      gint64 n_scored = 0;

      /* labels: the last trg_len ids keep their label; the shift drops position 0 */
      for (gint64 pos = begin + 1; pos < end; pos++)
        if (pos >= end - trg_len)
          {
            scored[pos]++;
            n_scored++;
          }
      if (n_scored > 0)
        {
          const BlWindow *w;

          g_assert_cmpuint (k, <, windows->len);
          w = &g_array_index (windows, BlWindow, k);
          g_assert_cmpint (w->start, ==, begin);
          g_assert_cmpint (w->length, ==, end - begin);
          g_assert_cmpint (w->length - w->first_target, ==, n_scored);
          g_assert_false (w->bos_first);
          k++;
        }
      prev_end = end;
      if (end == n)
        break;
    }
  g_assert_cmpuint (k, ==, windows->len);

  /* Each position is scored at most once; with stride < ctx every position after the
   * first is scored (with stride == ctx each window's first id is not). */
  for (gint64 pos = 0; pos < n; pos++)
    {
      g_assert_cmpuint (scored[pos], <=, 1);
      if (stride < ctx && pos >= 1)
        g_assert_cmpuint (scored[pos], ==, 1);
    }
}

static void
test_hf_stride (void)
{
  static const struct { gint64 n; int ctx, stride; } cases[] = {
    { 10, 4, 2 }, { 10, 4, 4 }, { 9, 4, 4 }, { 11, 4, 3 }, { 3, 8, 2 }, { 2, 2, 1 },
    { 1000, 64, 1 }, { 1000, 64, 63 }, { 1000, 64, 64 }, { 1025, 512, 256 }, { 1024, 512, 512 },
  };
  g_autoptr(GError) error = NULL;
  g_autoptr(GArray) windows = NULL;

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      windows = bl_protocol_make_windows (BL_PROTOCOL_HF_STRIDE, cases[i].n, cases[i].ctx,
                                          cases[i].stride, TRUE, &error);
      g_assert_no_error (error);
      hf_reference (cases[i].n, cases[i].ctx, cases[i].stride, windows);
      g_clear_pointer (&windows, g_array_unref);
    }

  /* spelled out: N 10, ctx 4, stride 2 */
  windows = bl_protocol_make_windows (BL_PROTOCOL_HF_STRIDE, 10, 4, 2, FALSE, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (windows->len, ==, 4);
  {
    static const BlWindow expected[] = {
      { 0, 4, 1, FALSE }, { 2, 4, 2, FALSE }, { 4, 4, 2, FALSE }, { 6, 4, 2, FALSE },
    };

    for (guint i = 0; i < G_N_ELEMENTS (expected); i++)
      {
        const BlWindow *w = &g_array_index (windows, BlWindow, i);

        g_assert_cmpint (w->start, ==, expected[i].start);
        g_assert_cmpint (w->length, ==, expected[i].length);
        g_assert_cmpint (w->first_target, ==, expected[i].first_target);
        g_assert_cmpint (w->bos_first, ==, expected[i].bos_first);
      }
  }
  g_clear_pointer (&windows, g_array_unref);

  /* the GPT-2 example of the HF guide: 287,644 ids, ctx 1024, stride 512 → 561 windows,
   * and every id but the first is scored: 287,643 targets */
  windows = bl_protocol_make_windows (BL_PROTOCOL_HF_STRIDE, 287644, 1024, 512, FALSE, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (windows->len, ==, 561);
  g_assert_cmpint (count_targets (windows), ==, 287643);
  g_clear_pointer (&windows, g_array_unref);

  /* stride == ctx, one id left over: its window would score nothing and is left out */
  windows = bl_protocol_make_windows (BL_PROTOCOL_HF_STRIDE, 9, 4, 4, FALSE, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (windows->len, ==, 2);
  g_assert_cmpint (count_targets (windows), ==, 6);
}

static void
test_errors (void)
{
  static const struct {
    BlProtocol protocol;
    gint64 n;
    int ctx, stride;
    int code;
    const char *fragment;
  } cases[] = {
    { BL_PROTOCOL_GPTQ, 100, 1, 0, BL_ERROR_INVALID_ARGUMENT, "at least 2" },
    { BL_PROTOCOL_GPTQ, 100, 0, 0, BL_ERROR_INVALID_ARGUMENT, "at least 2" },
    { BL_PROTOCOL_GPTQ, 100, 101, 0, BL_ERROR_DATASET, "fewer than one window of 101" },
    { BL_PROTOCOL_LLAMACPP, 511, 512, 0, BL_ERROR_DATASET, "511 tokens" },
    { BL_PROTOCOL_HF_STRIDE, 100, 16, 17, BL_ERROR_INVALID_ARGUMENT, "stride" },
    { BL_PROTOCOL_HF_STRIDE, 100, 16, 0, BL_ERROR_INVALID_ARGUMENT, "stride" },
    { BL_PROTOCOL_HF_STRIDE, 1, 16, 8, BL_ERROR_DATASET, "at least 2" },
    { BL_PROTOCOL_HF_STRIDE, 100, 1, 1, BL_ERROR_INVALID_ARGUMENT, "at least 2" },
    { (BlProtocol) 7, 100, 16, 8, BL_ERROR_INVALID_ARGUMENT, "unknown protocol" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(GArray) windows = NULL;

      windows = bl_protocol_make_windows (cases[i].protocol, cases[i].n, cases[i].ctx,
                                          cases[i].stride, TRUE, &error);
      g_assert_null (windows);
      g_assert_error (error, BL_ERROR, cases[i].code);
      g_assert_nonnull (strstr (error->message, cases[i].fragment));
    }
}

static void
test_select (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GArray) windows = NULL;

  windows = bl_protocol_make_windows (BL_PROTOCOL_GPTQ, 1000, 100, 0, FALSE, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (windows->len, ==, 10);
  bl_windows_select (windows, 0);
  g_assert_cmpuint (windows->len, ==, 10);
  bl_windows_select (windows, 100);
  g_assert_cmpuint (windows->len, ==, 10);
  bl_windows_select (windows, 3);
  g_assert_cmpuint (windows->len, ==, 3);
  for (guint i = 0; i < windows->len; i++)
    g_assert_cmpint (g_array_index (windows, BlWindow, i).start, ==, (gint64) i * 100);
}

static void
test_eval_order (void)
{
  /* golden permutations from a Python transcription of the same SplitMix64 + Fisher–Yates
   * (whose SplitMix64 gives 0xe220a8397b1dcdaf first from state 0, as Vigna's reference) */
  static const guint golden_42[] = { 0, 9, 5, 8, 6, 4, 7, 2, 1, 3 };
  static const guint golden_0[] = { 2, 10, 14, 11, 6, 1, 5, 13, 8, 3, 4, 7, 12, 9, 0, 15 };
  static const guint golden_max[] = { 2, 0, 3, 4, 1 };
  g_autofree guint *p42 = bl_windows_eval_order (10, 42);
  g_autofree guint *p0 = bl_windows_eval_order (16, 0);
  g_autofree guint *pmax = bl_windows_eval_order (5, G_MAXUINT64);
  g_autofree guint *one = bl_windows_eval_order (1, 7);
  g_autofree guint *again = NULL;
  g_autofree guint *other = NULL;
  g_autofree guint8 *seen = NULL;
  const guint n = 1000;

  g_assert_cmpmem (p42, 10 * sizeof (guint), golden_42, sizeof golden_42);
  g_assert_cmpmem (p0, 16 * sizeof (guint), golden_0, sizeof golden_0);
  g_assert_cmpmem (pmax, 5 * sizeof (guint), golden_max, sizeof golden_max);
  g_assert_null (bl_windows_eval_order (0, 1));
  g_assert_cmpuint (one[0], ==, 0);

  again = bl_windows_eval_order (n, 12345);
  other = bl_windows_eval_order (n, 12346);
  seen = g_new0 (guint8, n);
  for (guint i = 0; i < n; i++)
    {
      g_assert_cmpuint (again[i], <, n);
      g_assert_cmpuint (seen[again[i]], ==, 0);
      seen[again[i]] = 1;
    }
  g_assert_true (memcmp (again, other, n * sizeof (guint)) != 0);
  g_clear_pointer (&other, g_free);
  other = bl_windows_eval_order (n, 12345);
  g_assert_cmpmem (again, n * sizeof (guint), other, n * sizeof (guint));
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/bitlens/protocol/names", test_names);
  g_test_add_func ("/bitlens/protocol/gptq", test_gptq);
  g_test_add_func ("/bitlens/protocol/llamacpp", test_llamacpp);
  g_test_add_func ("/bitlens/protocol/hf-stride", test_hf_stride);
  g_test_add_func ("/bitlens/protocol/errors", test_errors);
  g_test_add_func ("/bitlens/protocol/select", test_select);
  g_test_add_func ("/bitlens/protocol/eval-order", test_eval_order);

  return g_test_run ();
}
