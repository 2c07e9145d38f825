/* bl-error.h: the one error domain of Bitlens
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define BL_ERROR (bl_error_quark ())

/**
 * BlErrorCode:
 * @BL_ERROR_CORRUPT_FILE: a model, tokenizer or config file is malformed or lies about itself
 * @BL_ERROR_UNSUPPORTED_ARCHITECTURE: the model architecture is not one Bitlens can run
 * @BL_ERROR_UNSUPPORTED_FORMAT: a dtype, number format or spec string is not supported
 * @BL_ERROR_DATASET: a dataset or text source cannot be used
 * @BL_ERROR_STORE: the SQLite store failed
 * @BL_ERROR_GPU: a GPU backend failure (no device, out of device memory, kernel error)
 * @BL_ERROR_INVALID_ARGUMENT: a caller-supplied option is out of range
 * @BL_ERROR_NOT_FOUND: a named tensor, file or record does not exist
 * @BL_ERROR_OUT_OF_MEMORY: a host allocation failed
 *
 * Error codes of the %BL_ERROR domain. I/O errors stay in %G_IO_ERROR.
 */
typedef enum
{
  BL_ERROR_CORRUPT_FILE,
  BL_ERROR_UNSUPPORTED_ARCHITECTURE,
  BL_ERROR_UNSUPPORTED_FORMAT,
  BL_ERROR_DATASET,
  BL_ERROR_STORE,
  BL_ERROR_GPU,
  BL_ERROR_INVALID_ARGUMENT,
  BL_ERROR_NOT_FOUND,
  BL_ERROR_OUT_OF_MEMORY,
} BlErrorCode;

GQuark bl_error_quark (void);

G_END_DECLS
