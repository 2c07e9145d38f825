/* bl-gguf.h: reading a GGUF v3 file, and the ggml tensor types it names
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * The layout is the one of ggml's docs/gguf.md ("File Structure", GGUF v3), little-endian:
 *
 *   uint32 magic "GGUF", uint32 version (3), uint64 tensor_count, uint64 metadata_kv_count
 *   metadata_kv_count × { gguf_string key, uint32 value_type, value }
 *   tensor_count × { gguf_string name, uint32 n_dims, uint64 dims[n_dims] (ne[0], the
 *                    innermost and contiguous dimension, first), uint32 ggml_type,
 *                    uint64 offset (relative to the data section, a multiple of ALIGNMENT) }
 *   zero padding to ALIGNMENT, then the data section
 *
 * where gguf_string is a uint64 byte length followed by UTF-8 bytes without a terminator,
 * an array value is { uint32 element type, uint64 count, elements }, and ALIGNMENT is the
 * uint32 `general.alignment`, or 32 when the file does not say.
 */
#pragma once

#include <glib.h>
#include <stdint.h>

G_BEGIN_DECLS

#define BL_GGUF_MAGIC 0x46554747u       /* "GGUF" read as a little-endian uint32 */
#define BL_GGUF_VERSION 3u
#define BL_GGUF_DEFAULT_ALIGNMENT 32u
/* ggml's GGML_MAX_NAME is 64 bytes with the terminator */
#define BL_GGUF_MAX_NAME 63
#define BL_GGUF_MAX_DIMS 4

/**
 * BlGgmlType:
 *
 * ggml's `enum ggml_type` (ggml/include/ggml.h; the gaps are removed types). Only the
 * values Bitlens writes or decodes are named; bl_ggml_type_get_traits() knows the block
 * geometry of every type the spec lists, so that any GGUF file can be walked.
 */
typedef enum
{
  BL_GGML_TYPE_F32 = 0,
  BL_GGML_TYPE_F16 = 1,
  BL_GGML_TYPE_Q4_0 = 2,
  BL_GGML_TYPE_Q4_1 = 3,
  BL_GGML_TYPE_Q5_0 = 6,
  BL_GGML_TYPE_Q5_1 = 7,
  BL_GGML_TYPE_Q8_0 = 8,
  BL_GGML_TYPE_Q2_K = 10,
  BL_GGML_TYPE_Q3_K = 11,
  BL_GGML_TYPE_Q4_K = 12,
  BL_GGML_TYPE_Q5_K = 13,
  BL_GGML_TYPE_Q6_K = 14,
  BL_GGML_TYPE_Q8_K = 15,
  BL_GGML_TYPE_BF16 = 30,
  BL_GGML_TYPE_MXFP4 = 39,
  BL_GGML_TYPE_COUNT = 40,
} BlGgmlType;

/**
 * BlGgmlTypeTraits:
 * @name: ggml's type name ("q4_0", as llama-quantize spells it)
 * @block_size: elements per block
 * @type_size: bytes per block
 *
 * Geometry of one ggml type (ggml.c type_traits).
 */
typedef struct
{
  const char *name;
  int block_size;
  int type_size;
} BlGgmlTypeTraits;

const BlGgmlTypeTraits *bl_ggml_type_get_traits (guint32 type);
gboolean                bl_ggml_type_from_name  (const char *name,
                                                 BlGgmlType *out_type);
guint64                 bl_ggml_row_size        (BlGgmlType  type,
                                                 gint64      n_elements);

/**
 * BlGgufValueType:
 *
 * `enum gguf_metadata_value_type` of the spec.
 */
typedef enum
{
  BL_GGUF_TYPE_UINT8 = 0,
  BL_GGUF_TYPE_INT8 = 1,
  BL_GGUF_TYPE_UINT16 = 2,
  BL_GGUF_TYPE_INT16 = 3,
  BL_GGUF_TYPE_UINT32 = 4,
  BL_GGUF_TYPE_INT32 = 5,
  BL_GGUF_TYPE_FLOAT32 = 6,
  BL_GGUF_TYPE_BOOL = 7,
  BL_GGUF_TYPE_STRING = 8,
  BL_GGUF_TYPE_ARRAY = 9,
  BL_GGUF_TYPE_UINT64 = 10,
  BL_GGUF_TYPE_INT64 = 11,
  BL_GGUF_TYPE_FLOAT64 = 12,
  BL_GGUF_TYPE_COUNT = 13,
} BlGgufValueType;

/**
 * BlGgufKv:
 * @key: the key
 * @type: the value type
 * @array_type: the element type when @type is %BL_GGUF_TYPE_ARRAY
 * @array_len: the element count when @type is %BL_GGUF_TYPE_ARRAY
 * @offset: file offset of the value (of the first element for an array)
 *
 * One metadata pair, as found in the file. Read values with the bl_gguf_get_*() functions.
 */
typedef struct
{
  char *key;
  BlGgufValueType type;
  BlGgufValueType array_type;
  guint64 array_len;
  guint64 offset;
} BlGgufKv;

/**
 * BlGgufTensorInfo:
 * @name: the tensor name
 * @n_dims: dimensions
 * @ne: sizes in ggml order: @ne[0] is the contiguous (innermost) dimension
 * @type: the ggml type
 * @offset: offset inside the data section
 * @file_offset: absolute file offset of the data
 * @n_bytes: size of the data
 * @data: the data inside the mapped file
 *
 * One tensor of the file.
 */
typedef struct
{
  char *name;
  guint32 n_dims;
  gint64 ne[BL_GGUF_MAX_DIMS];
  guint32 type;
  guint64 offset;
  guint64 file_offset;
  guint64 n_bytes;
  const guint8 *data;
} BlGgufTensorInfo;

typedef struct _BlGguf BlGguf;

BlGguf                 *bl_gguf_open             (const char      *path,
                                                  GError         **error);
BlGguf                 *bl_gguf_new_from_data    (const guint8    *data,
                                                  gsize            len,
                                                  const char      *filename,
                                                  GError         **error);
BlGguf                 *bl_gguf_ref              (BlGguf          *self);
void                    bl_gguf_unref            (BlGguf          *self);

const char             *bl_gguf_get_filename     (BlGguf          *self);
guint32                 bl_gguf_get_version      (BlGguf          *self);
guint32                 bl_gguf_get_alignment    (BlGguf          *self);
guint64                 bl_gguf_get_data_offset  (BlGguf          *self);

const guint8           *bl_gguf_get_contents     (BlGguf          *self,
                                                  gsize           *len);
guint                   bl_gguf_get_n_kv         (BlGguf          *self);
const BlGgufKv         *bl_gguf_get_kv_at        (BlGguf          *self,
                                                  guint            index);
const BlGgufKv         *bl_gguf_find_kv          (BlGguf          *self,
                                                  const char      *key);
gboolean                bl_gguf_get_uint         (BlGguf          *self,
                                                  const char      *key,
                                                  guint64         *out);
gboolean                bl_gguf_get_int          (BlGguf          *self,
                                                  const char      *key,
                                                  gint64          *out);
gboolean                bl_gguf_get_float        (BlGguf          *self,
                                                  const char      *key,
                                                  double          *out);
gboolean                bl_gguf_get_bool         (BlGguf          *self,
                                                  const char      *key,
                                                  gboolean        *out);
char                   *bl_gguf_get_string       (BlGguf          *self,
                                                  const char      *key);
char                   *bl_gguf_get_array_string (BlGguf          *self,
                                                  const char      *key,
                                                  guint64          index);
GStrv                   bl_gguf_get_string_array (BlGguf          *self,
                                                  const char      *key);
gboolean                bl_gguf_get_array_number (BlGguf          *self,
                                                  const char      *key,
                                                  guint64          index,
                                                  double          *out);

guint                   bl_gguf_get_n_tensors    (BlGguf          *self);
const BlGgufTensorInfo *bl_gguf_get_tensor_at    (BlGguf          *self,
                                                  guint            index);
const BlGgufTensorInfo *bl_gguf_find_tensor      (BlGguf          *self,
                                                  const char      *name);
gboolean                bl_gguf_tensor_to_f32    (BlGguf          *self,
                                                  const BlGgufTensorInfo *tensor,
                                                  float           *dst,
                                                  GError         **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (BlGguf, bl_gguf_unref)

G_END_DECLS
