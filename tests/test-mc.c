/* test-mc.c: tests of datasets/bl-mc.c and core/bl-mc-item.c
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * tests/fixtures/mc/ holds small task files written for these tests in the layouts of the
 * shared files (../shared/datasets), with the same directory names. The real files are
 * read by /bitlens/mc/shared when BITLENS_SHARED_DIR is set.
 */
#include <string.h>

#include "bl-error.h"
#include "bl-mc.h"

static BlMcSet *
load_fixture (BlMcTask    task,
              const char *relative)
{
  g_autofree char *path = g_test_build_filename (G_TEST_DIST, "fixtures", "mc", relative, NULL);
  g_autoptr(GError) error = NULL;
  BlMcSet *set = bl_mc_set_load (task, path, &error);

  g_assert_no_error (error);
  g_assert_nonnull (set);
  g_assert_cmpstr (bl_mc_set_get_path (set), ==, path);
  return set;
}

static void
assert_item (const BlMcItem     *item,
             const char * const *contexts,
             const char * const *continuations,
             const char * const *choices,
             int                 gold,
             guint               line)
{
  g_assert_cmpuint (item->n_choices, ==, g_strv_length ((char **) contexts));
  for (guint c = 0; c < item->n_choices; c++)
    {
      g_assert_cmpstr (item->contexts[c], ==, contexts[c]);
      g_assert_cmpstr (item->continuations[c], ==, continuations[c]);
      g_assert_cmpstr (item->choices[c], ==, choices[c]);
    }
  g_assert_null (item->contexts[item->n_choices]);
  g_assert_null (item->continuations[item->n_choices]);
  g_assert_null (item->choices[item->n_choices]);
  g_assert_cmpint (item->gold, ==, gold);
  g_assert_cmpuint (item->line, ==, line);
}

static void
test_task_names (void)
{
  BlMcTask task;

  for (guint t = 0; t < BL_MC_N_TASKS; t++)
    {
      g_assert_true (bl_mc_task_from_string (bl_mc_task_to_string (t), &task));
      g_assert_cmpint (task, ==, t);
      g_assert_nonnull (bl_mc_task_get_default_file (t));
    }
  g_assert_true (bl_mc_task_from_string ("arc_easy", &task));
  g_assert_cmpint (task, ==, BL_MC_TASK_ARC_EASY);
  g_assert_true (bl_mc_task_from_string ("arc_challenge", &task));
  g_assert_cmpint (task, ==, BL_MC_TASK_ARC_CHALLENGE);
  g_assert_true (bl_mc_task_from_string ("lambada_openai", &task));
  g_assert_cmpint (task, ==, BL_MC_TASK_LAMBADA);
  g_assert_false (bl_mc_task_from_string ("hellaswag", &task));

  /* the harness's metric_list of each task */
  g_assert_true (bl_mc_task_reports_acc_norm (BL_MC_TASK_PIQA));
  g_assert_true (bl_mc_task_reports_acc_norm (BL_MC_TASK_ARC_EASY));
  g_assert_true (bl_mc_task_reports_acc_norm (BL_MC_TASK_ARC_CHALLENGE));
  g_assert_false (bl_mc_task_reports_acc_norm (BL_MC_TASK_WINOGRANDE));
  g_assert_false (bl_mc_task_reports_acc_norm (BL_MC_TASK_BOOLQ));
  g_assert_false (bl_mc_task_reports_acc_norm (BL_MC_TASK_LAMBADA));
  g_assert_cmpstr (bl_mc_format_to_string (BL_MC_FORMAT_ICL), ==, "mc-icl");
  g_assert_cmpstr (bl_mc_format_to_string (BL_MC_FORMAT_PIQA), ==, "mc-piqa");
}

static void
test_item_constructors (void)
{
  static const char * const choices[] = { "ab", "ünï", "", NULL };
  static const char * const contexts[] = { "The x", "The y", NULL };
  g_autoptr(BlMcItem) shared = bl_mc_item_new_shared ("Q:", choices, " ", 1);
  g_autoptr(BlMcItem) partial = bl_mc_item_new_partial (contexts, " rest", 0);
  g_autoptr(BlMcItem) greedy = bl_mc_item_new_greedy ("ctx", " word");
  g_autoptr(BlMcItem) copy = bl_mc_item_copy (partial);

  g_assert_cmpint (shared->scoring, ==, BL_MC_SCORING_CHOICE);
  assert_item (shared, (const char *[]) { "Q:", "Q:", "Q:", NULL },
               (const char *[]) { " ab", " ünï", " ", NULL }, choices, 1, 0);
  /* acc_norm lengths are characters, not bytes; an empty choice counts as 1 */
  g_assert_cmpfloat (bl_mc_item_get_choice_length (shared, 0), ==, 2.0);
  g_assert_cmpfloat (bl_mc_item_get_choice_length (shared, 1), ==, 3.0);
  g_assert_cmpfloat (bl_mc_item_get_choice_length (shared, 2), ==, 1.0);

  assert_item (partial, contexts, (const char *[]) { " rest", " rest", NULL }, contexts, 0, 0);
  assert_item (copy, contexts, (const char *[]) { " rest", " rest", NULL }, contexts, 0, 0);
  g_assert_true (copy->contexts != partial->contexts);

  g_assert_cmpint (greedy->scoring, ==, BL_MC_SCORING_GREEDY);
  assert_item (greedy, (const char *[]) { "ctx", NULL }, (const char *[]) { " word", NULL },
               (const char *[]) { " word", NULL }, 0, 0);
}

static void
test_piqa_original (void)
{
  g_autoptr(BlMcSet) set = load_fixture (BL_MC_TASK_PIQA, "piqa/valid.jsonl");
  g_autofree char *rows = NULL, *labels = NULL, *rows_path = NULL, *labels_path = NULL;
  g_autoptr(GChecksum) sum = g_checksum_new (G_CHECKSUM_SHA256);
  gsize rows_len, labels_len;

  g_assert_cmpint (bl_mc_set_get_format (set), ==, BL_MC_FORMAT_PIQA);
  g_assert_cmpint (bl_mc_set_get_task (set), ==, BL_MC_TASK_PIQA);
  g_assert_cmpstr (bl_mc_set_get_name (set), ==, "piqa/valid.jsonl");
  g_assert_cmpuint (bl_mc_set_get_n_items (set), ==, 3);
  g_assert_cmpuint (bl_mc_set_get_items (set)->len, ==, 3);

  /* the solutions stay untrimmed, as Hugging Face's piqa rows are */
  assert_item (bl_mc_set_get_item (set, 0),
               (const char *[]) { "Question: How do I keep bread fresh for longer?\nAnswer:",
                                  "Question: How do I keep bread fresh for longer?\nAnswer:", NULL },
               (const char *[]) { " Seal it in a bag and keep it in a cool cupboard. ",
                                  " Leave it on a sunny windowsill without a cover.", NULL },
               (const char *[]) { "Seal it in a bag and keep it in a cool cupboard. ",
                                  "Leave it on a sunny windowsill without a cover.", NULL },
               0, 1);
  g_assert_cmpint (bl_mc_set_get_item (set, 1)->gold, ==, 1);
  /* line 3 is blank: the third item is on line 4, with the third label */
  g_assert_cmpuint (bl_mc_set_get_item (set, 2)->line, ==, 4);
  g_assert_cmpint (bl_mc_set_get_item (set, 2)->gold, ==, 0);

  /* the dataset identity covers both files */
  rows_path = g_test_build_filename (G_TEST_DIST, "fixtures", "mc", "piqa", "valid.jsonl", NULL);
  labels_path = g_test_build_filename (G_TEST_DIST, "fixtures", "mc", "piqa",
                                       "valid-labels.lst", NULL);
  g_assert_true (g_file_get_contents (rows_path, &rows, &rows_len, NULL));
  g_assert_true (g_file_get_contents (labels_path, &labels, &labels_len, NULL));
  g_checksum_update (sum, (const guchar *) rows, rows_len);
  g_checksum_update (sum, (const guchar *) labels, labels_len);
  g_assert_cmpstr (bl_mc_set_get_sha256 (set), ==, g_checksum_get_string (sum));
}

static void
test_piqa_icl (void)
{
  g_autoptr(BlMcSet) icl = load_fixture (BL_MC_TASK_PIQA, "piqa/validation.icl.jsonl");
  g_autoptr(BlMcSet) orig = load_fixture (BL_MC_TASK_PIQA, "piqa/valid.jsonl");

  g_assert_cmpint (bl_mc_set_get_format (icl), ==, BL_MC_FORMAT_ICL);
  g_assert_cmpuint (bl_mc_set_get_n_items (icl), ==, 2);
  /* "Question: {goal}\n" + "Answer:" is the same prompt as the original's */
  for (guint i = 0; i < 2; i++)
    {
      const BlMcItem *a = bl_mc_set_get_item (icl, i), *b = bl_mc_set_get_item (orig, i);

      g_assert_cmpstr (a->contexts[0], ==, b->contexts[0]);
      g_assert_cmpint (a->gold, ==, b->gold);
      for (guint c = 0; c < 2; c++)
        {
          g_autofree char *trimmed = g_strstrip (g_strdup (b->choices[c]));

          g_assert_cmpstr (a->choices[c], ==, trimmed);
        }
    }
}

static void
test_arc (void)
{
  g_autoptr(BlMcSet) easy = load_fixture (BL_MC_TASK_ARC_EASY, "arc_easy/test.icl.jsonl");
  g_autoptr(BlMcSet) challenge = load_fixture (BL_MC_TASK_ARC_CHALLENGE,
                                               "arc_challenge/test.icl.jsonl");
  const char *q = "Question: Which of these makes its own food from sunlight?\nAnswer:";

  /* the file has CRLF line ends */
  g_assert_cmpuint (bl_mc_set_get_n_items (easy), ==, 2);
  assert_item (bl_mc_set_get_item (easy, 0), (const char *[]) { q, q, q, q, NULL },
               (const char *[]) { " a rock", " a plant", " a cloud", " a spoon", NULL },
               (const char *[]) { "a rock", "a plant", "a cloud", "a spoon", NULL }, 1, 1);
  g_assert_cmpuint (bl_mc_set_get_item (easy, 1)->line, ==, 2);

  /* ARC has items with 3 or 5 choices too */
  g_assert_cmpuint (bl_mc_set_get_item (challenge, 0)->n_choices, ==, 5);
  g_assert_cmpint (bl_mc_set_get_item (challenge, 0)->gold, ==, 2);
  g_assert_cmpstr (bl_mc_set_get_name (challenge), ==, "arc-challenge/test.icl.jsonl");
}

static void
test_boolq (void)
{
  g_autoptr(BlMcSet) set = load_fixture (BL_MC_TASK_BOOLQ, "boolq/validation.icl.jsonl");
  const char *ctx = "Tomatoes are botanically fruits, although they are usually cooked and "
                    "eaten as vegetables.\nQuestion: is a tomato a fruit?\nAnswer:";

  assert_item (bl_mc_set_get_item (set, 0), (const char *[]) { ctx, ctx, NULL },
               (const char *[]) { " no", " yes", NULL }, (const char *[]) { "no", "yes", NULL },
               1, 1);
  g_assert_cmpint (bl_mc_set_get_item (set, 1)->gold, ==, 0);
}

static void
test_winogrande (void)
{
  g_autoptr(BlMcSet) set = load_fixture (BL_MC_TASK_WINOGRANDE, "winogrande/validation.icl.jsonl");
  const char *ctx0[] = { "The cup did not fit in the box because the cup",
                         "The cup did not fit in the box because the box", NULL };

  /* partial scoring: the option is in the context, the stripped rest is the continuation */
  assert_item (bl_mc_set_get_item (set, 0), ctx0,
               (const char *[]) { " was too big.", " was too big.", NULL }, ctx0, 0, 1);
  g_assert_cmpstr (bl_mc_set_get_item (set, 1)->continuations[1], ==, " had forgotten hers.");
  g_assert_cmpint (bl_mc_set_get_item (set, 1)->gold, ==, 1);
}

static void
test_lambada (void)
{
  g_autoptr(BlMcSet) set = load_fixture (BL_MC_TASK_LAMBADA, "lambada_openai/test.icl.jsonl");
  const BlMcItem *a = bl_mc_set_get_item (set, 0), *b = bl_mc_set_get_item (set, 1);

  g_assert_cmpint (a->scoring, ==, BL_MC_SCORING_GREEDY);
  g_assert_cmpuint (a->n_choices, ==, 1);
  g_assert_cmpstr (a->contexts[0], ==, "The kettle clicked off, so she poured the water over the "
                                       "tea leaves and waited for the");
  g_assert_cmpstr (a->continuations[0], ==, " tea");
  /* a continuation that starts with white space keeps it, and gets no extra space */
  g_assert_cmpstr (b->continuations[0], ==, "\n\nmap");
}

static void
test_load_default (void)
{
  g_autofree char *dir = g_test_build_filename (G_TEST_DIST, "fixtures", "mc", NULL);

  for (guint t = 0; t < BL_MC_N_TASKS; t++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(BlMcSet) set = bl_mc_set_load_default (t, dir, &error);

      g_assert_no_error (error);
      g_assert_cmpint (bl_mc_set_get_task (set), ==, t);
      g_assert_cmpuint (bl_mc_set_get_n_items (set), >, 0);
    }
}

typedef struct
{
  BlMcTask task;
  const char *data;
  const char *labels;
  const char *message;
} BadCase;

static void
test_errors (void)
{
  static const BadCase cases[] = {
    { BL_MC_TASK_ARC_EASY, "", NULL, "rows.jsonl: no items" },
    { BL_MC_TASK_ARC_EASY, "\n\n", NULL, "rows.jsonl: no items" },
    { BL_MC_TASK_ARC_EASY, "{\"query\": \"Q\", \"choices\": [\"a\", \"b\"], \"gold\": 0}\n{\"query\": \"Q\"",
      NULL, "rows.jsonl:2: not valid JSON" },
    { BL_MC_TASK_ARC_EASY, "[1, 2]", NULL, "rows.jsonl:1: a row is a JSON object" },
    { BL_MC_TASK_ARC_EASY, "{\"choices\": [\"a\", \"b\"], \"gold\": 0}", NULL,
      "rows.jsonl:1: the row has no \"query\"" },
    { BL_MC_TASK_ARC_EASY, "{\"query\": 3, \"choices\": [\"a\", \"b\"], \"gold\": 0}", NULL,
      "rows.jsonl:1: \"query\" is not a string" },
    { BL_MC_TASK_ARC_EASY, "\n\n{\"query\": \"Q\", \"choices\": [\"a\", \"b\"], \"gold\": 2}", NULL,
      "rows.jsonl:3: \"gold\" is 2, outside 0…1" },
    { BL_MC_TASK_ARC_EASY, "{\"query\": \"Q\", \"choices\": [\"a\", \"b\"], \"gold\": -1}", NULL,
      "rows.jsonl:1: \"gold\" is -1, outside 0…1" },
    { BL_MC_TASK_ARC_EASY, "{\"query\": \"Q\", \"choices\": [\"a\", \"b\"], \"gold\": \"0\"}", NULL,
      "rows.jsonl:1: \"gold\" is not an integer" },
    { BL_MC_TASK_ARC_EASY, "{\"query\": \"Q\", \"choices\": [\"a\", \"b\"], \"gold\": 0.5}", NULL,
      "rows.jsonl:1: \"gold\" is not an integer" },
    { BL_MC_TASK_ARC_EASY, "{\"query\": \"Q\", \"choices\": \"a\", \"gold\": 0}", NULL,
      "rows.jsonl:1: \"choices\" is not an array" },
    { BL_MC_TASK_ARC_EASY, "{\"query\": \"Q\", \"choices\": [\"a\"], \"gold\": 0}", NULL,
      "rows.jsonl:1: \"choices\" has 1 entries, fewer than 2" },
    { BL_MC_TASK_ARC_EASY, "{\"query\": \"Q\", \"choices\": [\"a\", null], \"gold\": 0}", NULL,
      "rows.jsonl:1: \"choices\"[1] is not a string" },
    { BL_MC_TASK_BOOLQ, "{\"query\": \"Q: x\", \"choices\": [\"no\", \"yes\"], \"gold\": 0}", NULL,
      "rows.jsonl:1: a BoolQ \"query\" starts with \"Passage: \"" },
    { BL_MC_TASK_WINOGRANDE, "{\"context_options\": [\"a\", \"b\"], \"gold\": 0}", NULL,
      "rows.jsonl:1: the row has no \"continuation\"" },
    { BL_MC_TASK_LAMBADA, "{\"context\": \"a\", \"continuation\": \"\"}", NULL,
      "rows.jsonl:1: \"continuation\" is empty" },
    { BL_MC_TASK_PIQA, "{\"goal\": \"g\", \"sol1\": \"a\", \"sol2\": \"b\"}", NULL,
      "rows.jsonl:1: the row has no \"label\"" },
    { BL_MC_TASK_PIQA, "{\"goal\": \"g\", \"sol1\": \"a\"}", "0\n", "rows.jsonl:1: the row has no \"sol2\"" },
    { BL_MC_TASK_PIQA, "{\"goal\": \"g\", \"sol1\": \"a\", \"sol2\": \"b\"}", "0\n2\n",
      "labels:2: a PIQA label is 0 or 1, not \"2\"" },
    { BL_MC_TASK_PIQA, "{\"goal\": \"g\", \"sol1\": \"a\", \"sol2\": \"b\"}", "0\n1\n",
      "labels: 2 labels for 1 rows of rows.jsonl" },
    { BL_MC_TASK_PIQA, "{\"goal\": \"g\", \"sol1\": \"a\", \"sol2\": \"b\"}\n"
      "{\"goal\": \"g\", \"sol1\": \"a\", \"sol2\": \"b\"}", "1\n",
      "rows.jsonl:2: there are more rows than labels (1)" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      const BadCase *c = &cases[i];
      g_autoptr(GError) error = NULL;
      g_autoptr(BlMcSet) set = NULL;

      set = bl_mc_set_new_from_data (c->task, "rows.jsonl", c->data, strlen (c->data), c->labels,
                                     c->labels ? strlen (c->labels) : 0, &error);
      g_assert_null (set);
      g_assert_error (error, BL_ERROR, BL_ERROR_DATASET);
      if (!g_str_has_prefix (error->message, c->message))
        g_error ("case %u: \"%s\" does not start with \"%s\"", i, error->message, c->message);
    }
}

static void
test_from_data (void)
{
  static const char rows[] = "{\"goal\": \"g\", \"sol1\": \"a\", \"sol2\": \"b\", \"label\": 1}\n";
  g_autoptr(GError) error = NULL;
  g_autoptr(BlMcSet) set = NULL;
  g_autofree char *sha = g_compute_checksum_for_string (G_CHECKSUM_SHA256, rows, -1);

  /* a PIQA row may carry its own label (Hugging Face's export) */
  set = bl_mc_set_new_from_data (BL_MC_TASK_PIQA, "hf.jsonl", rows, strlen (rows), NULL, 0, &error);
  g_assert_no_error (error);
  g_assert_cmpint (bl_mc_set_get_item (set, 0)->gold, ==, 1);
  g_assert_cmpstr (bl_mc_set_get_name (set), ==, "piqa/hf.jsonl");
  g_assert_null (bl_mc_set_get_path (set));
  g_assert_cmpstr (bl_mc_set_get_sha256 (set), ==, sha);
}

static void
test_missing_file (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(BlMcSet) set = bl_mc_set_load (BL_MC_TASK_PIQA, "/nonexistent/valid.jsonl", &error);

  g_assert_null (set);
  g_assert_error (error, G_FILE_ERROR, G_FILE_ERROR_NOENT);
}

/* The shared files: their row counts (SOURCES.md), and PIQA's two copies agree. */
static void
test_shared (void)
{
  static const guint counts[BL_MC_N_TASKS] = {
    [BL_MC_TASK_PIQA] = 1838,
    [BL_MC_TASK_ARC_EASY] = 2376,
    [BL_MC_TASK_ARC_CHALLENGE] = 1172,
    [BL_MC_TASK_WINOGRANDE] = 1267,
    [BL_MC_TASK_BOOLQ] = 3270,
    [BL_MC_TASK_LAMBADA] = 5153,
  };
  const char *shared = g_getenv ("BITLENS_SHARED_DIR");
  g_autofree char *dir = NULL;
  g_autofree char *icl_path = NULL;
  g_autoptr(BlMcSet) piqa = NULL;
  g_autoptr(BlMcSet) piqa_icl = NULL;
  g_autoptr(GError) error = NULL;
  guint trimmed = 0;

  if (shared == NULL || !g_file_test (shared, G_FILE_TEST_IS_DIR))
    {
      g_test_skip ("BITLENS_SHARED_DIR is not set or not a directory: the shared task files "
                   "are absent");
      return;
    }
  dir = g_build_filename (shared, "datasets", NULL);

  for (guint t = 0; t < BL_MC_N_TASKS; t++)
    {
      g_autoptr(BlMcSet) set = bl_mc_set_load_default (t, dir, &error);

      g_assert_no_error (error);
      g_assert_cmpuint (bl_mc_set_get_n_items (set), ==, counts[t]);
      for (guint i = 0; i < bl_mc_set_get_n_items (set); i++)
        {
          const BlMcItem *item = bl_mc_set_get_item (set, i);

          g_assert_cmpint (item->gold, >=, 0);
          g_assert_cmpint (item->gold, <, item->n_choices);
          for (guint c = 0; c < item->n_choices; c++)
            g_assert_true (item->contexts[c][0] != '\0' && item->continuations[c][0] != '\0');
        }
      if (t == BL_MC_TASK_PIQA)
        piqa = g_object_ref (set);
    }
  g_assert_cmpint (bl_mc_set_get_format (piqa), ==, BL_MC_FORMAT_PIQA);

  icl_path = g_build_filename (dir, "piqa", "validation.icl.jsonl", NULL);
  piqa_icl = bl_mc_set_load (BL_MC_TASK_PIQA, icl_path, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (bl_mc_set_get_n_items (piqa_icl), ==, 1838);
  for (guint i = 0; i < 1838; i++)
    {
      const BlMcItem *a = bl_mc_set_get_item (piqa, i), *b = bl_mc_set_get_item (piqa_icl, i);

      g_assert_cmpstr (a->contexts[0], ==, b->contexts[0]);
      g_assert_cmpint (a->gold, ==, b->gold);
      for (guint c = 0; c < 2; c++)
        {
          g_autofree char *s = g_strstrip (g_strdup (a->choices[c]));

          g_assert_cmpstr (s, ==, b->choices[c]);
          trimmed += !g_str_equal (a->choices[c], b->choices[c]);
        }
    }
  /* SOURCES.md: 1,722 of 1,838 first solutions are identical; both solutions counted here */
  g_assert_cmpuint (trimmed, >, 0);
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

  g_test_add_func ("/bitlens/mc/task-names", test_task_names);
  g_test_add_func ("/bitlens/mc/item/constructors", test_item_constructors);
  g_test_add_func ("/bitlens/mc/piqa/original", test_piqa_original);
  g_test_add_func ("/bitlens/mc/piqa/icl", test_piqa_icl);
  g_test_add_func ("/bitlens/mc/arc", test_arc);
  g_test_add_func ("/bitlens/mc/boolq", test_boolq);
  g_test_add_func ("/bitlens/mc/winogrande", test_winogrande);
  g_test_add_func ("/bitlens/mc/lambada", test_lambada);
  g_test_add_func ("/bitlens/mc/load-default", test_load_default);
  g_test_add_func ("/bitlens/mc/errors", test_errors);
  g_test_add_func ("/bitlens/mc/from-data", test_from_data);
  g_test_add_func ("/bitlens/mc/missing-file", test_missing_file);
  g_test_add_func ("/bitlens/mc/shared", test_shared);

  return g_test_run ();
}
