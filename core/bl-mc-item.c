/* bl-mc-item.c: one item of a zero-shot task, as the scored (context, continuation) pairs
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "bl-mc-item.h"

G_DEFINE_BOXED_TYPE (BlMcItem, bl_mc_item, bl_mc_item_copy, bl_mc_item_free)

static BlMcItem *
item_alloc (guint       n_choices,
            int         gold,
            BlMcScoring scoring)
{
  BlMcItem *item = g_new0 (BlMcItem, 1);

  item->n_choices = n_choices;
  item->contexts = g_new0 (char *, n_choices + 1);
  item->continuations = g_new0 (char *, n_choices + 1);
  item->choices = g_new0 (char *, n_choices + 1);
  item->gold = gold;
  item->scoring = scoring;
  return item;
}

/**
 * bl_mc_item_new_shared:
 * @context: the text every choice is scored after, e.g. "Question: …\nAnswer:"
 * @choices: (array zero-terminated=1): the choice texts, at least one
 * @delimiter: what goes between @context and each choice (lm-evaluation-harness
 *   `target_delimiter`, " " by default)
 * @gold: index of the right choice
 *
 * The common multiple-choice shape: one context, and choice i scored as the
 * continuation @delimiter + @choices[i].
 *
 * Returns: (transfer full): a new item
 */
BlMcItem *
bl_mc_item_new_shared (const char         *context,
                       const char * const *choices,
                       const char         *delimiter,
                       int                 gold)
{
  BlMcItem *item;
  guint n;

  g_return_val_if_fail (context != NULL, NULL);
  g_return_val_if_fail (choices != NULL && choices[0] != NULL, NULL);
  g_return_val_if_fail (delimiter != NULL, NULL);

  n = g_strv_length ((char **) choices);
  g_return_val_if_fail (gold >= 0 && (guint) gold < n, NULL);

  item = item_alloc (n, gold, BL_MC_SCORING_CHOICE);
  for (guint i = 0; i < n; i++)
    {
      item->contexts[i] = g_strdup (context);
      item->continuations[i] = g_strconcat (delimiter, choices[i], NULL);
      item->choices[i] = g_strdup (choices[i]);
    }
  return item;
}

/**
 * bl_mc_item_new_partial:
 * @contexts: (array zero-terminated=1): one context per choice, the choice already in it
 * @continuation: the text scored after every context, delimiter included
 * @gold: index of the right choice
 *
 * Partial scoring (Trinh & Le 2018, as lm-evaluation-harness scores WinoGrande with
 * `multiple_inputs`): the choices differ in the context, and the same continuation is
 * scored after each. The choice texts for `acc_norm` are the contexts, as the harness's
 * `doc_to_choice` returns them.
 *
 * Returns: (transfer full): a new item
 */
BlMcItem *
bl_mc_item_new_partial (const char * const *contexts,
                        const char         *continuation,
                        int                 gold)
{
  BlMcItem *item;
  guint n;

  g_return_val_if_fail (contexts != NULL && contexts[0] != NULL, NULL);
  g_return_val_if_fail (continuation != NULL, NULL);

  n = g_strv_length ((char **) contexts);
  g_return_val_if_fail (gold >= 0 && (guint) gold < n, NULL);

  item = item_alloc (n, gold, BL_MC_SCORING_CHOICE);
  for (guint i = 0; i < n; i++)
    {
      item->contexts[i] = g_strdup (contexts[i]);
      item->continuations[i] = g_strdup (continuation);
      item->choices[i] = g_strdup (contexts[i]);
    }
  return item;
}

/**
 * bl_mc_item_new_greedy:
 * @context: the text before the target
 * @continuation: the target, delimiter included (e.g. " word")
 *
 * A one-continuation item scored by greedy match (LAMBADA).
 *
 * Returns: (transfer full): a new item
 */
BlMcItem *
bl_mc_item_new_greedy (const char *context,
                       const char *continuation)
{
  BlMcItem *item;

  g_return_val_if_fail (context != NULL, NULL);
  g_return_val_if_fail (continuation != NULL, NULL);

  item = item_alloc (1, 0, BL_MC_SCORING_GREEDY);
  item->contexts[0] = g_strdup (context);
  item->continuations[0] = g_strdup (continuation);
  item->choices[0] = g_strdup (continuation);
  return item;
}

BlMcItem *
bl_mc_item_copy (const BlMcItem *item)
{
  BlMcItem *copy;

  g_return_val_if_fail (item != NULL, NULL);

  copy = g_new0 (BlMcItem, 1);
  *copy = *item;
  copy->contexts = g_strdupv (item->contexts);
  copy->continuations = g_strdupv (item->continuations);
  copy->choices = g_strdupv (item->choices);
  return copy;
}

void
bl_mc_item_free (BlMcItem *item)
{
  if (item == NULL)
    return;
  g_strfreev (item->contexts);
  g_strfreev (item->continuations);
  g_strfreev (item->choices);
  g_free (item);
}

/**
 * bl_mc_item_get_choice_length:
 * @item: an item
 * @choice: a choice index
 *
 * The length that `acc_norm` divides a choice's log-likelihood by: the number of Unicode
 * characters of the choice text, as lm-evaluation-harness takes `len()` of the
 * `doc_to_choice` strings (lm_eval/api/task.py, process_results).
 *
 * Returns: the length in characters (at least 1, so that an empty choice cannot divide by 0)
 */
double
bl_mc_item_get_choice_length (const BlMcItem *item,
                              guint           choice)
{
  glong n;

  g_return_val_if_fail (item != NULL, 1.0);
  g_return_val_if_fail (choice < item->n_choices, 1.0);

  n = g_utf8_strlen (item->choices[choice], -1);
  return n > 0 ? (double) n : 1.0;
}
