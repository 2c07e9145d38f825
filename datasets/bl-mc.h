/* bl-mc.h: multiple-choice and last-word tasks (PIQA, ARC, WinoGrande, BoolQ, LAMBADA)
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <glib-object.h>

#include "bl-mc-item.h"

G_BEGIN_DECLS

/**
 * BlMcTask:
 * @BL_MC_TASK_PIQA: PIQA (Bisk et al. 2020), validation split, 2 choices
 * @BL_MC_TASK_ARC_EASY: ARC-Easy (Clark et al. 2018), test split
 * @BL_MC_TASK_ARC_CHALLENGE: ARC-Challenge, test split
 * @BL_MC_TASK_WINOGRANDE: WinoGrande (Sakaguchi et al. 2020), winogrande_xl dev split,
 *   partial scoring
 * @BL_MC_TASK_BOOLQ: BoolQ (Clark et al. 2019), validation split, " no" / " yes"
 * @BL_MC_TASK_LAMBADA: LAMBADA, OpenAI's detokenized test set, last word by greedy match
 *
 * The zero-shot tasks Bitlens reads. Each one is formatted as lm-evaluation-harness's task
 * of the same name formats it; see the table at the top of bl-mc.c.
 */
typedef enum
{
  BL_MC_TASK_PIQA,
  BL_MC_TASK_ARC_EASY,
  BL_MC_TASK_ARC_CHALLENGE,
  BL_MC_TASK_WINOGRANDE,
  BL_MC_TASK_BOOLQ,
  BL_MC_TASK_LAMBADA,
} BlMcTask;

#define BL_MC_N_TASKS (BL_MC_TASK_LAMBADA + 1)

/**
 * BlMcFormat:
 * @BL_MC_FORMAT_ICL: MosaicML llm-foundry's ICL JSONL (`*.icl.jsonl`): `query`, `choices`,
 *   `gold`; WinoGrande `context_options`, `continuation`, `gold`; LAMBADA `context`,
 *   `continuation`
 * @BL_MC_FORMAT_PIQA: PIQA's own release: `valid.jsonl` rows with `goal`, `sol1`, `sol2`,
 *   and the labels one per line in `valid-labels.lst` beside it (or a `label` member)
 *
 * The file layouts bl_mc_set_load() understands; it tells them apart by the members of
 * the first row.
 */
typedef enum
{
  BL_MC_FORMAT_ICL,
  BL_MC_FORMAT_PIQA,
} BlMcFormat;

const char *bl_mc_task_to_string          (BlMcTask    task);
gboolean    bl_mc_task_from_string        (const char *name,
                                           BlMcTask   *out_task);
const char *bl_mc_task_get_default_file   (BlMcTask    task);
gboolean    bl_mc_task_reports_acc_norm   (BlMcTask    task);
const char *bl_mc_format_to_string        (BlMcFormat  format);

#define BL_TYPE_MC_SET (bl_mc_set_get_type ())
G_DECLARE_FINAL_TYPE (BlMcSet, bl_mc_set, BL, MC_SET, GObject)

BlMcSet        *bl_mc_set_load           (BlMcTask     task,
                                          const char  *path,
                                          GError     **error);
BlMcSet        *bl_mc_set_load_default   (BlMcTask     task,
                                          const char  *datasets_dir,
                                          GError     **error);
BlMcSet        *bl_mc_set_new_from_data  (BlMcTask     task,
                                          const char  *source_name,
                                          const char  *data,
                                          gsize        len,
                                          const char  *labels,
                                          gsize        labels_len,
                                          GError     **error);

BlMcTask        bl_mc_set_get_task       (BlMcSet     *self);
BlMcFormat      bl_mc_set_get_format     (BlMcSet     *self);
const char     *bl_mc_set_get_path       (BlMcSet     *self);
const char     *bl_mc_set_get_name       (BlMcSet     *self);
const char     *bl_mc_set_get_sha256     (BlMcSet     *self);
guint           bl_mc_set_get_n_items    (BlMcSet     *self);
const BlMcItem *bl_mc_set_get_item       (BlMcSet     *self,
                                          guint        index);
GPtrArray      *bl_mc_set_get_items      (BlMcSet     *self);

G_END_DECLS
