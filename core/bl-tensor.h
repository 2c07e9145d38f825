/* bl-tensor.h: a read-only view of one stored tensor (mmapped)
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <glib.h>
#include <stdint.h>

G_BEGIN_DECLS

#define BL_TENSOR_MAX_DIMS 8

typedef enum
{
  BL_DTYPE_F32,
  BL_DTYPE_F16,
  BL_DTYPE_BF16,
} BlDType;

/**
 * BlTensor:
 * @name: the tensor name as stored (e.g. "model.layers.0.self_attn.q_proj.weight")
 * @dtype: element type
 * @n_dims: number of dimensions (0 for a scalar)
 * @shape: sizes, outermost first (row-major, as safetensors stores them)
 * @n_elements: product of @shape
 * @data: the first byte of the tensor inside the mapped file
 * @n_bytes: size of @data in bytes
 * @file: the file the tensor lives in (for error messages)
 * @file_offset: absolute byte offset of @data inside @file
 *
 * Owned by the model (or the safetensors file) that returned it.
 */
typedef struct
{
  char *name;
  BlDType dtype;
  int n_dims;
  int64_t shape[BL_TENSOR_MAX_DIMS];
  int64_t n_elements;
  const guint8 *data;
  size_t n_bytes;
  char *file;
  guint64 file_offset;
} BlTensor;

const char *bl_dtype_to_string (BlDType dtype);
gboolean    bl_dtype_from_string (const char *str,
                                  BlDType    *out_dtype);
size_t      bl_dtype_size (BlDType dtype);

/* Widen @n_elements elements of @tensor to fp32 (exact for all supported dtypes). */
void        bl_tensor_to_f32 (const BlTensor *tensor,
                              float          *dst);

G_END_DECLS
