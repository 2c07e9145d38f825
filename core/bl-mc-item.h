/* bl-mc-item.h: one item of a zero-shot task, as the scored (context, continuation) pairs
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <glib-object.h>

G_BEGIN_DECLS

/**
 * BlMcScoring:
 * @BL_MC_SCORING_CHOICE: multiple choice: the predicted answer is the choice whose
 *   continuation has the highest summed log-likelihood (lm-evaluation-harness
 *   `output_type: multiple_choice`)
 * @BL_MC_SCORING_GREEDY: one continuation; the item is right when every continuation
 *   token is the model's argmax (lm-evaluation-harness `output_type: loglikelihood`,
 *   metric `acc` from `is_greedy`, as LAMBADA reports it)
 *
 * How an item's log-likelihoods become a prediction.
 */
typedef enum
{
  BL_MC_SCORING_CHOICE,
  BL_MC_SCORING_GREEDY,
} BlMcScoring;

/**
 * BlMcItem:
 * @n_choices: number of choices (1 for %BL_MC_SCORING_GREEDY)
 * @contexts: (array length=n_choices): the text each choice is scored after. All equal
 *   for most tasks; WinoGrande's partial scoring puts the choice in the context.
 * @continuations: (array length=n_choices): the scored text of each choice, its leading
 *   delimiter (usually one space) included
 * @choices: (array length=n_choices): the choice texts as the task lists them
 *   (lm-evaluation-harness `doc_to_choice`); their lengths in characters normalise
 *   `acc_norm`
 * @gold: index of the right choice
 * @scoring: how the item is scored
 * @line: the 1-based line of the source file the item was read from (0: not from a file)
 *
 * A task item already turned into scoring requests: the loaders in datasets/bl-mc.h do
 * the per-task formatting, so the scorer (core/bl-zeroshot.h) knows no task. Each string
 * array is %NULL-terminated as well as counted.
 */
typedef struct
{
  guint n_choices;
  char **contexts;
  char **continuations;
  char **choices;
  int gold;
  BlMcScoring scoring;
  guint line;
} BlMcItem;

#define BL_TYPE_MC_ITEM (bl_mc_item_get_type ())
GType     bl_mc_item_get_type       (void) G_GNUC_CONST;

BlMcItem *bl_mc_item_new_shared     (const char         *context,
                                     const char * const *choices,
                                     const char         *delimiter,
                                     int                 gold);
BlMcItem *bl_mc_item_new_partial    (const char * const *contexts,
                                     const char         *continuation,
                                     int                 gold);
BlMcItem *bl_mc_item_new_greedy     (const char         *context,
                                     const char         *continuation);
BlMcItem *bl_mc_item_copy           (const BlMcItem     *item);
void      bl_mc_item_free           (BlMcItem           *item);

double    bl_mc_item_get_choice_length (const BlMcItem *item,
                                        guint           choice);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (BlMcItem, bl_mc_item_free)

G_END_DECLS
