/* bl-plan-export.h: the workbench's plan through every exporter of core/bl-export.h
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <gio/gio.h>

#include "bl-model.h"
#include "bl-quant-plan.h"

G_BEGIN_DECLS

/**
 * BlPlanExportTarget:
 * @id: the name `bitlens-cli export --to` uses ("plan-json", "gguf", …)
 * @title: the menu label
 * @filter_name: the file chooser's filter
 * @suffix: (nullable): the file name suffix, %NULL for a directory target
 * @default_name: the file chooser's suggested name; "%s" stands for the model's name
 *
 * One export target.
 */
typedef struct
{
  const char *id;
  const char *title;
  const char *filter_name;
  const char *suffix;
  const char *default_name;
} BlPlanExportTarget;

const BlPlanExportTarget *bl_plan_export_lookup (const char    *id);
const BlPlanExportTarget *bl_plan_export_targets (guint        *n_targets);
gboolean                  bl_plan_export_write  (BlModel       *model,
                                                 BlQuantPlan   *plan,
                                                 const char    *id,
                                                 const char    *path,
                                                 GPtrArray     *notes,
                                                 GCancellable  *cancellable,
                                                 GError       **error);

G_END_DECLS
