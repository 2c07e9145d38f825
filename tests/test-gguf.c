/* test-gguf.c: ggml block codecs, the GGUF reader and writer, and the model export
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * The exported file is read back three ways: by core/bl-gguf.c, by the independent
 * tools/read-gguf (its committed output for the tiny-llama fixture), and by decoding every
 * tensor and comparing it with Bitlens's own fake quantization of the same weights.
 */
#include <glib/gstdio.h>
#include <math.h>
#include <string.h>

#include "bl-error.h"
#include "bl-export.h"
#include "bl-format.h"
#include "bl-format-codecs.h"
#include "bl-gguf.h"
#include "bl-gguf-quants.h"
#include "bl-gguf-writer.h"
#include "bl-model.h"

static float *
gaussian (guint32 seed,
          gint64  n,
          double  sigma)
{
  g_autoptr (GRand) rand = g_rand_new_with_seed (seed);
  float *x = g_new (float, n);

  for (gint64 i = 0; i < n; i++)
    {
      double u1 = g_rand_double_range (rand, 1e-12, 1.0), u2 = g_rand_double (rand);

      x[i] = (float) (sigma * sqrt (-2.0 * log (u1)) * cos (2.0 * G_PI * u2));
      if (g_rand_int_range (rand, 0, 500) == 0)
        x[i] *= 20.0f;
    }
  return x;
}

static void
fake (const char  *str,
      const float *x,
      float       *y,
      gint64       rows,
      gint64       cols)
{
  BlFormatSpec spec;
  g_autoptr (GError) error = NULL;

  g_assert_true (bl_format_spec_parse (str, &spec, &error));
  g_assert_true (bl_format_fake_quant (&spec, x, y, rows, cols, 1, &error));
  g_assert_no_error (error);
}

static void
roundtrip (BlGgmlType   type,
           const float *x,
           float       *y,
           gint64       n)
{
  g_autofree guint8 *buf = g_malloc (bl_ggml_row_size (type, n));

  bl_ggml_quantize_row (type, x, buf, n);
  g_assert_true (bl_ggml_dequantize_row (type, buf, y, n));
}

/* ------------------------------------------------------------------------------------------ */
/* block codecs: hand-computed blocks, then agreement with the format library */

static void
test_q4_0_golden (void)
{
  float x[32], y[32];
  BlBlockQ4_0 b;

  /* x_j = j − 16: the signed maximum is −16, d = 2, q_j = min(15, trunc((j − 16)/2 + 8.5)) */
  for (int j = 0; j < 32; j++)
    x[j] = (float) (j - 16);
  bl_ggml_quantize_row (BL_GGML_TYPE_Q4_0, x, (guint8 *) &b, 32);
  g_assert_cmpuint (b.d, ==, 0x4000);
  for (int j = 0; j < 16; j++)
    {
      int q0 = (j + 1) / 2, q1 = MIN (15, (j + 16 + 1) / 2);

      g_assert_cmpuint (b.qs[j], ==, (guint) (q0 | (q1 << 4)));
    }
  g_assert_true (bl_ggml_dequantize_row (BL_GGML_TYPE_Q4_0, (guint8 *) &b, y, 32));
  g_assert_cmpfloat (y[0], ==, -16.0f);
  g_assert_cmpfloat (y[31], ==, 14.0f);
}

static void
test_q8_0_golden (void)
{
  float x[32] = { 1.0f, -0.5f, 0.25f }, y[32];
  BlBlockQ8_0 b;

  /* amax = 1, d = 1/127, codes round(x·127) half away from zero */
  bl_ggml_quantize_row (BL_GGML_TYPE_Q8_0, x, (guint8 *) &b, 32);
  g_assert_cmpuint (b.d, ==, bl_f16_encode (1.0f / 127.0f));
  g_assert_cmpint (b.qs[0], ==, 127);
  g_assert_cmpint (b.qs[1], ==, -64);
  g_assert_cmpint (b.qs[2], ==, 32);
  g_assert_cmpint (b.qs[3], ==, 0);
  g_assert_true (bl_ggml_dequantize_row (BL_GGML_TYPE_Q8_0, (guint8 *) &b, y, 32));
  g_assert_cmpfloat (y[0], ==, 127 * bl_f16_decode (b.d));
}

static void
test_mxfp4_golden (void)
{
  float x[32] = { 6.0f, 0.75f, -0.25f, -5.0f, 7.9f }, y[32];
  BlBlockMxfp4 b;

  /* amax 7.9: e = floor(log2 7.9) − 2 + 127 = 127, half scale 2^−1, so the grid is the E2M1
   * values themselves. 0.75 ties between 0.5 (index 1) and 1 (index 2): the lower index wins,
   * where round-to-even would give 1. −0.25 ties between +0 (index 0) and −0.5 (index 9).
   * −5 ties between −4 (index 14) and −6 (index 15) and takes −4; 7.9 saturates to 6. */
  bl_ggml_quantize_row (BL_GGML_TYPE_MXFP4, x, (guint8 *) &b, 32);
  g_assert_cmpuint (b.e, ==, 127);
  g_assert_cmpuint (b.qs[0] & 0x0F, ==, 7);
  g_assert_cmpuint (b.qs[1] & 0x0F, ==, 1);
  g_assert_cmpuint (b.qs[2] & 0x0F, ==, 0);
  g_assert_cmpuint (b.qs[3] & 0x0F, ==, 14);
  g_assert_cmpuint (b.qs[4] & 0x0F, ==, 7);
  g_assert_true (bl_ggml_dequantize_row (BL_GGML_TYPE_MXFP4, (guint8 *) &b, y, 32));
  g_assert_cmpfloat (y[0], ==, 6.0f);
  g_assert_cmpfloat (y[1], ==, 0.5f);
  g_assert_cmpfloat (y[3], ==, -4.0f);
  g_assert_cmpfloat (y[4], ==, 6.0f);
  g_assert_cmpfloat (bl_ggml_e8m0_to_f32_half (0), ==, ldexpf (1.0f, -128));
  g_assert_cmpfloat (bl_ggml_e8m0_to_f32_half (1), ==, ldexpf (1.0f, -127));
  g_assert_cmpfloat (bl_ggml_e8m0_to_f32_half (200), ==, ldexpf (1.0f, 72));
}

/* ggml Q4_0 is Bitlens's int4:g32:q4_0, bit for bit, zero blocks and ties included */
static void
test_q4_0_matches_format (void)
{
  const gint64 rows = 64, cols = 256, n = rows * cols;
  g_autofree float *x = gaussian (11, n, 0.02);
  g_autofree float *a = g_new (float, n);
  g_autofree float *b = g_new (float, n);

  for (gint64 i = 0; i < 32; i++)
    x[i] = 0.0f;
  for (gint64 i = 32; i < 64; i++)
    x[i] = (float) ((i % 17) - 8) * 0.125f;
  roundtrip (BL_GGML_TYPE_Q4_0, x, a, n);
  fake ("int4:g32:q4_0", x, b, rows, cols);
  g_assert_cmpmem (a, n * sizeof (float), b, n * sizeof (float));
}

/* Q8_0 and MXFP4 against the nearest Bitlens formats: the differences are single grid steps
 * at the elements where ggml's operation order or tie rule decides differently */
static void
test_q8_0_mxfp4_vs_format (void)
{
  const gint64 rows = 256, cols = 256, n = rows * cols;
  g_autofree float *x = gaussian (12, n, 0.02);
  g_autofree float *a = g_new (float, n);
  g_autofree float *b = g_new (float, n);
  gint64 diff = 0;

  roundtrip (BL_GGML_TYPE_Q8_0, x, a, n);
  fake ("int8:g32:away", x, b, rows, cols);
  for (gint64 i = 0; i < n; i++)
    if (a[i] != b[i])
      {
        float amax = 0.0f, step;
        gint64 g = i / 32 * 32;

        for (int j = 0; j < 32; j++)
          amax = MAX (amax, fabsf (x[g + j]));
        step = bl_f16_decode (bl_f16_encode (amax / 127.0f));
        g_assert_cmpfloat (fabsf (a[i] - b[i]), ==, step);
        diff++;
      }
  g_test_message ("q8_0 vs int8:g32:away: %" G_GINT64_FORMAT " of %" G_GINT64_FORMAT
                  " elements one step apart", diff, n);
  /* ggml multiplies by 1/d of the unrounded d, Bitlens divides by the stored fp16 d */
  g_assert_cmpint (diff, <, n / 50);

  diff = 0;
  roundtrip (BL_GGML_TYPE_MXFP4, x, a, n);
  fake ("mxfp4", x, b, rows, cols);
  for (gint64 i = 0; i < n; i++)
    if (a[i] != b[i])
      {
        /* only at a tie: x exactly halfway between the two decoded values */
        g_assert_cmpfloat (fabsf (x[i] - a[i]), ==, fabsf (x[i] - b[i]));
        diff++;
      }
  g_test_message ("mxfp4 vs mxfp4 (RNE): %" G_GINT64_FORMAT " of %" G_GINT64_FORMAT
                  " elements differ, all at ties", diff, n);
}

static void
test_permute (void)
{
  const gint64 rows = 4 * 8, cols = 3;
  float x[4 * 8 * 3], p[4 * 8 * 3], back[4 * 8 * 3];

  for (int i = 0; i < rows * cols; i++)
    x[i] = (float) i;
  bl_export_gguf_permute_rows (x, p, rows, cols, 4, FALSE);
  /* head 1 (rows 8–15), head_dim 8: output row 8 + 2i + j is input row 8 + 4j + i */
  g_assert_cmpfloat (p[(8 + 0) * cols], ==, x[(8 + 0) * cols]);
  g_assert_cmpfloat (p[(8 + 1) * cols], ==, x[(8 + 4) * cols]);
  g_assert_cmpfloat (p[(8 + 2) * cols], ==, x[(8 + 1) * cols]);
  g_assert_cmpfloat (p[(8 + 7) * cols + 2], ==, x[(8 + 7) * cols + 2]);
  bl_export_gguf_permute_rows (p, back, rows, cols, 4, TRUE);
  g_assert_cmpmem (x, sizeof x, back, sizeof back);
}

/* ------------------------------------------------------------------------------------------ */
/* decoding the other legacy types and the K-quants against tools/reference-ggml-dequant */

typedef struct
{
  const char *name;
  BlGgmlType type;
  gint64 n_elements;
  GBytes *blocks;
  GBytes *values;     /* little-endian float32 */
} DequantCase;

static void
dequant_case_clear (gpointer data)
{
  DequantCase *c = data;

  g_bytes_unref (c->blocks);
  g_bytes_unref (c->values);
}

static GBytes *
from_hex (const char *hex)
{
  gsize n = strlen (hex) / 2;
  guint8 *out = g_malloc (n);

  g_assert_cmpuint (strlen (hex) % 2, ==, 0);
  for (gsize i = 0; i < n; i++)
    {
      int hi = g_ascii_xdigit_value (hex[2 * i]), lo = g_ascii_xdigit_value (hex[2 * i + 1]);

      g_assert_true (hi >= 0 && lo >= 0);
      out[i] = (guint8) (hi << 4 | lo);
    }
  return g_bytes_new_take (out, n);
}

/* tests/fixtures/gguf/dequant.json, each case checked against the traits table: the bytes
 * the independent generator laid out per block are the type_size Bitlens validates with */
static GArray *
load_dequant_cases (void)
{
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (GError) error = NULL;
  GArray *cases = g_array_new (FALSE, TRUE, sizeof (DequantCase));
  JsonArray *types;

  g_array_set_clear_func (cases, dequant_case_clear);
  g_assert_true (json_parser_load_from_file (parser, g_test_get_filename (G_TEST_DIST, "fixtures", "gguf",
                                                                           "dequant.json", NULL),
                                             &error));
  g_assert_no_error (error);
  types = json_object_get_array_member (json_node_get_object (json_parser_get_root (parser)), "types");
  for (guint i = 0; i < json_array_get_length (types); i++)
    {
      JsonObject *o = json_array_get_object_element (types, i);
      DequantCase c;
      const BlGgmlTypeTraits *tr;
      BlGgmlType by_name;

      c.name = g_intern_string (json_object_get_string_member (o, "name"));
      c.type = (BlGgmlType) json_object_get_int_member (o, "type");
      c.n_elements = json_object_get_int_member (o, "n_elements");
      c.blocks = from_hex (json_object_get_string_member (o, "blocks"));
      c.values = from_hex (json_object_get_string_member (o, "values"));
      tr = bl_ggml_type_get_traits (c.type);
      g_assert_nonnull (tr);
      g_assert_cmpstr (tr->name, ==, c.name);
      g_assert_true (bl_ggml_type_from_name (c.name, &by_name));
      g_assert_cmpint (by_name, ==, c.type);
      g_assert_cmpint (c.n_elements % tr->block_size, ==, 0);
      g_assert_cmpuint (g_bytes_get_size (c.blocks), ==,
                        (gsize) (c.n_elements / tr->block_size) * (gsize) tr->type_size);
      g_assert_cmpuint (bl_ggml_row_size (c.type, c.n_elements), ==, g_bytes_get_size (c.blocks));
      g_assert_cmpuint (g_bytes_get_size (c.values), ==, (gsize) c.n_elements * 4);
      g_array_append_val (cases, c);
    }
  return cases;
}

/* bit equality, with the first difference named */
static void
check_same_bits (const char  *what,
                 const float *got,
                 GBytes      *want,
                 gint64       n)
{
  const guint8 *w = g_bytes_get_data (want, NULL);

  for (gint64 i = 0; i < n; i++)
    {
      guint32 gb, wb;
      float wf;

      memcpy (&gb, got + i, 4);
      memcpy (&wb, w + 4 * i, 4);
      wb = GUINT32_FROM_LE (wb);
      if (gb != wb)
        {
          memcpy (&wf, &wb, 4);
          g_error ("%s: element %" G_GINT64_FORMAT " decodes to %.9g (0x%08x), the reference "
                   "has %.9g (0x%08x)", what, i, got[i], gb, wf, wb);
        }
    }
}

static void
test_dequant_reference (void)
{
  g_autoptr (GArray) cases = load_dequant_cases ();
  const BlGgmlType want[] = { BL_GGML_TYPE_Q4_1, BL_GGML_TYPE_Q5_0, BL_GGML_TYPE_Q5_1,
                              BL_GGML_TYPE_Q2_K, BL_GGML_TYPE_Q3_K, BL_GGML_TYPE_Q4_K,
                              BL_GGML_TYPE_Q5_K, BL_GGML_TYPE_Q6_K, BL_GGML_TYPE_Q8_K };

  g_assert_cmpuint (cases->len, ==, G_N_ELEMENTS (want));
  for (guint i = 0; i < cases->len; i++)
    {
      const DequantCase *c = &g_array_index (cases, DequantCase, i);
      const BlGgmlTypeTraits *tr = bl_ggml_type_get_traits (c->type);
      const guint8 *blocks = g_bytes_get_data (c->blocks, NULL);
      g_autofree float *y = g_new (float, c->n_elements);
      g_autofree char *what = NULL;

      g_assert_cmpint (c->type, ==, want[i]);
      g_assert_false (bl_ggml_type_can_encode (c->type));
      /* one row of all the blocks, then one row per block */
      g_assert_true (bl_ggml_dequantize_row (c->type, blocks, y, c->n_elements));
      check_same_bits (c->name, y, c->values, c->n_elements);
      memset (y, 0, (gsize) c->n_elements * sizeof (float));
      for (gint64 b = 0; b < c->n_elements / tr->block_size; b++)
        g_assert_true (bl_ggml_dequantize_row (c->type, blocks + b * tr->type_size,
                                               y + b * tr->block_size, tr->block_size));
      what = g_strdup_printf ("%s, block by block", c->name);
      check_same_bits (what, y, c->values, c->n_elements);
      g_test_message ("%s: %" G_GINT64_FORMAT " elements bit-equal to the reference", c->name,
                      c->n_elements);
    }
}

/* The byte offset of field @field (0: ne[0], 1: ne[1], … then the type, then the offset)
 * of the info of the tensor named @name in a GGUF image */
static gsize
tensor_info_field (GBytes     *bytes,
                   const char *name,
                   int         field)
{
  gsize len;
  const guint8 *data = g_bytes_get_data (bytes, &len);
  gsize n = strlen (name);

  for (gsize i = 8; i + n + 4 <= len; i++)
    if (memcmp (data + i, name, n) == 0)
      {
        guint64 stored;
        guint32 n_dims;

        memcpy (&stored, data + i - 8, 8);
        if (GUINT64_FROM_LE (stored) != n)
          continue;
        memcpy (&n_dims, data + i + n, 4);
        n_dims = GUINT32_FROM_LE (n_dims);
        if ((guint32) field <= n_dims)
          return i + n + 4 + 8 * (gsize) field;
        return i + n + 4 + 8 * n_dims + 4;
      }
  g_assert_not_reached ();
}

static void
expect_corrupt (const guint8 *data,
                gsize         len,
                const char   *needle)
{
  g_autoptr (GError) error = NULL;
  BlGguf *f = bl_gguf_new_from_data (data, len, "lying.gguf", &error);

  g_assert_null (f);
  g_assert_error (error, BL_ERROR, BL_ERROR_CORRUPT_FILE);
  g_test_message ("%s", error->message);
  if (strstr (error->message, needle) == NULL)
    g_error ("message “%s” lacks “%s”", error->message, needle);
}

/* Every fixture type in one GGUF file: the reader sizes each tensor from the traits table,
 * decodes it to the reference values, and rejects a file cut short or a header that lies
 * about a K-quant tensor's type or row length. */
static void
test_dequant_container (void)
{
  g_autoptr (GArray) cases = load_dequant_cases ();
  g_autoptr (BlGgufWriter) w = bl_gguf_writer_new (BL_GGUF_DEFAULT_ALIGNMENT);
  g_autoptr (GBytes) bytes = NULL;
  g_autoptr (BlGguf) f = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree guint8 *copy = NULL;
  const guint8 *data;
  const BlGgufTensorInfo *last;
  gsize len, at;
  guint32 type;
  guint64 ne;

  bl_gguf_writer_add_string (w, "general.architecture", "llama");
  for (guint i = 0; i < cases->len; i++)
    {
      const DequantCase *c = &g_array_index (cases, DequantCase, i);
      gint64 ne2[2] = { c->n_elements / 4, 4 };

      g_assert_true (bl_gguf_writer_add_tensor (w, c->name, c->type, 2, ne2, c->blocks, &error));
      g_assert_no_error (error);
    }
  bytes = bl_gguf_writer_to_bytes (w);
  data = g_bytes_get_data (bytes, &len);
  f = bl_gguf_new_from_data (data, len, "kquants.gguf", &error);
  g_assert_no_error (error);
  for (guint i = 0; i < cases->len; i++)
    {
      const DequantCase *c = &g_array_index (cases, DequantCase, i);
      const BlGgufTensorInfo *ti = bl_gguf_find_tensor (f, c->name);
      g_autofree float *y = g_new (float, c->n_elements);

      g_assert_nonnull (ti);
      g_assert_cmpuint (ti->type, ==, c->type);
      g_assert_cmpuint (ti->n_bytes, ==, g_bytes_get_size (c->blocks));
      g_assert_cmpmem (ti->data, ti->n_bytes, g_bytes_get_data (c->blocks, NULL), ti->n_bytes);
      g_assert_true (bl_gguf_tensor_to_f32 (f, ti, y, &error));
      g_assert_no_error (error);
      check_same_bits (c->name, y, c->values, c->n_elements);
    }

  /* cut anywhere inside the last tensor (q8_K) */
  last = bl_gguf_get_tensor_at (f, bl_gguf_get_n_tensors (f) - 1);
  g_assert_cmpuint (last->type, ==, BL_GGML_TYPE_Q8_K);
  expect_corrupt (data, last->file_offset + last->n_bytes - 1, "but the file ends at");
  expect_corrupt (data, last->file_offset + 1, "but the file ends at");

  copy = g_memdup2 (data, len);
  /* q4_K claimed as q6_K: 4 × 210 bytes run into the q5_K tensor */
  at = tensor_info_field (bytes, "q4_K", 2);
  type = GUINT32_TO_LE (BL_GGML_TYPE_Q6_K);
  memcpy (copy + at, &type, 4);
  expect_corrupt (copy, len, "overlap");
  /* rows of 128 elements: not a whole number of super-blocks */
  memcpy (copy, data, len);
  at = tensor_info_field (bytes, "q8_K", 0);
  ne = GUINT64_TO_LE (128);
  memcpy (copy + at, &ne, 8);
  expect_corrupt (copy, len, "tensor “q8_K” of type q8_K has rows of 128 elements, not a multiple "
                  "of the block size 256");
  /* twice the rows its bytes hold, at the end of the file */
  memcpy (copy, data, len);
  at = tensor_info_field (bytes, "q8_K", 1);
  ne = GUINT64_TO_LE (8);
  memcpy (copy + at, &ne, 8);
  expect_corrupt (copy, len, "tensor “q8_K” needs bytes");
}

/* ------------------------------------------------------------------------------------------ */
/* container */

static GBytes *
small_file (void)
{
  g_autoptr (BlGgufWriter) w = bl_gguf_writer_new (0);
  const char *strs[] = { "a", "", "ünï" };
  const float fl[] = { 1.5f, -2.0f };
  const gint32 in[] = { -7, 9, 11 };
  float t0[32], t1[3 * 32];
  gint64 ne0[1] = { 32 }, ne1[2] = { 32, 3 };
  g_autoptr (GBytes) d0 = NULL, d1 = NULL;
  guint8 q[3 * 18];

  for (int i = 0; i < 32; i++)
    t0[i] = (float) i;
  for (int i = 0; i < 96; i++)
    t1[i] = (float) (i - 48) / 7.0f;
  bl_ggml_quantize_row (BL_GGML_TYPE_Q4_0, t1, q, 96);
  d0 = g_bytes_new (t0, sizeof t0);
  d1 = g_bytes_new (q, sizeof q);
  bl_gguf_writer_add_string (w, "general.architecture", "llama");
  bl_gguf_writer_add_uint32 (w, "test.u32", 4000000000u);
  bl_gguf_writer_add_int32 (w, "test.i32", -5);
  bl_gguf_writer_add_uint64 (w, "test.u64", G_GUINT64_CONSTANT (1) << 40);
  bl_gguf_writer_add_float32 (w, "test.f32", 0.25f);
  bl_gguf_writer_add_bool (w, "test.bool", TRUE);
  bl_gguf_writer_add_string_array (w, "test.strs", strs, 3);
  bl_gguf_writer_add_float32_array (w, "test.floats", fl, 2);
  bl_gguf_writer_add_int32_array (w, "test.ints", in, 3);
  g_assert_true (bl_gguf_writer_add_tensor (w, "t0", BL_GGML_TYPE_F32, 1, ne0, d0, NULL));
  g_assert_true (bl_gguf_writer_add_tensor (w, "blk.0.t1", BL_GGML_TYPE_Q4_0, 2, ne1, d1, NULL));
  return bl_gguf_writer_to_bytes (w);
}

static void
test_container_roundtrip (void)
{
  g_autoptr (GBytes) bytes = small_file ();
  gsize len;
  const guint8 *data = g_bytes_get_data (bytes, &len);
  g_autoptr (GError) error = NULL;
  g_autoptr (BlGguf) f = bl_gguf_new_from_data (data, len, "small.gguf", &error);
  guint64 u;
  gint64 i;
  double d;
  gboolean b;
  const BlGgufTensorInfo *t;
  float y[96];
  g_autofree char *arch = NULL, *s0 = NULL, *s2 = NULL;
  guint32 w32;
  guint64 w64;

  g_assert_no_error (error);
  /* the header fields at their spec offsets */
  memcpy (&w32, data, 4);
  g_assert_cmpuint (w32, ==, BL_GGUF_MAGIC);
  g_assert_cmpmem (data, 4, "GGUF", 4);
  memcpy (&w32, data + 4, 4);
  g_assert_cmpuint (w32, ==, 3);
  memcpy (&w64, data + 8, 8);
  g_assert_cmpuint (w64, ==, 2);
  memcpy (&w64, data + 16, 8);
  g_assert_cmpuint (w64, ==, 10);
  memcpy (&w64, data + 24, 8);
  g_assert_cmpuint (w64, ==, strlen ("general.alignment"));
  g_assert_cmpmem (data + 32, w64, "general.alignment", w64);

  g_assert_cmpuint (bl_gguf_get_version (f), ==, 3);
  g_assert_cmpuint (bl_gguf_get_alignment (f), ==, 32);
  g_assert_cmpuint (bl_gguf_get_data_offset (f) % 32, ==, 0);
  g_assert_cmpuint (bl_gguf_get_n_kv (f), ==, 10);
  arch = bl_gguf_get_string (f, "general.architecture");
  g_assert_cmpstr (arch, ==, "llama");
  g_assert_true (bl_gguf_get_uint (f, "test.u32", &u));
  g_assert_cmpuint (u, ==, 4000000000u);
  g_assert_true (bl_gguf_get_int (f, "test.i32", &i));
  g_assert_cmpint (i, ==, -5);
  g_assert_false (bl_gguf_get_uint (f, "test.i32", &u));
  g_assert_true (bl_gguf_get_uint (f, "test.u64", &u));
  g_assert_cmpuint (u, ==, G_GUINT64_CONSTANT (1) << 40);
  g_assert_true (bl_gguf_get_float (f, "test.f32", &d));
  g_assert_cmpfloat (d, ==, 0.25);
  g_assert_true (bl_gguf_get_bool (f, "test.bool", &b));
  g_assert_true (b);
  s0 = bl_gguf_get_array_string (f, "test.strs", 0);
  s2 = bl_gguf_get_array_string (f, "test.strs", 2);
  g_assert_cmpstr (s0, ==, "a");
  g_assert_cmpstr (s2, ==, "ünï");
  g_assert_null (bl_gguf_get_array_string (f, "test.strs", 3));
  g_assert_true (bl_gguf_get_array_number (f, "test.floats", 1, &d));
  g_assert_cmpfloat (d, ==, -2.0);
  g_assert_true (bl_gguf_get_array_number (f, "test.ints", 0, &d));
  g_assert_cmpfloat (d, ==, -7.0);
  g_assert_null (bl_gguf_find_kv (f, "test.missing"));

  g_assert_cmpuint (bl_gguf_get_n_tensors (f), ==, 2);
  t = bl_gguf_find_tensor (f, "blk.0.t1");
  g_assert_nonnull (t);
  g_assert_cmpuint (t->type, ==, BL_GGML_TYPE_Q4_0);
  g_assert_cmpint (t->ne[0], ==, 32);
  g_assert_cmpint (t->ne[1], ==, 3);
  g_assert_cmpuint (t->offset, ==, 128);     /* t0 takes 128 bytes, already aligned */
  g_assert_cmpuint (t->n_bytes, ==, 54);
  g_assert_cmpuint (len, ==, bl_gguf_get_data_offset (f) + 128 + 64);
  g_assert_true (bl_gguf_tensor_to_f32 (f, t, y, &error));
  for (int k = 0; k < 96; k++)
    g_assert_cmpfloat (fabsf (y[k] - (float) (k - 48) / 7.0f), <=, 7.0f / 14.0f * 1.01f);
  t = bl_gguf_find_tensor (f, "t0");
  g_assert_true (bl_gguf_tensor_to_f32 (f, t, y, &error));
  g_assert_cmpfloat (y[31], ==, 31.0f);
}

/* Every truncation is refused with an error, and random corruption never crashes. */
static void
test_container_corrupt (void)
{
  g_autoptr (GBytes) bytes = small_file ();
  gsize len;
  const guint8 *data = g_bytes_get_data (bytes, &len);
  g_autofree guint8 *copy = g_memdup2 (data, len);
  g_autoptr (GRand) rand = g_rand_new_with_seed (5);

  g_autoptr (BlGguf) whole = bl_gguf_new_from_data (data, len, "small.gguf", NULL);
  gsize end = bl_gguf_get_data_offset (whole) + 128 + 54;

  /* every cut before the end of the last tensor's bytes (the rest is padding) */
  for (gsize n = 0; n < end; n++)
    {
      g_autoptr (GError) error = NULL;
      BlGguf *f = bl_gguf_new_from_data (data, n, "cut.gguf", &error);

      g_assert_null (f);
      g_assert_error (error, BL_ERROR, BL_ERROR_CORRUPT_FILE);
    }
  {
    g_autoptr (GError) error = NULL;

    copy[4] = 2;
    g_assert_null (bl_gguf_new_from_data (copy, len, "v2.gguf", &error));
    g_assert_error (error, BL_ERROR, BL_ERROR_UNSUPPORTED_FORMAT);
    g_assert_nonnull (strstr (error->message, "version 2"));
    copy[4] = 3;
  }
  for (int iter = 0; iter < 3000; iter++)
    {
      g_autoptr (GError) error = NULL;
      BlGguf *f;
      gsize pos = (gsize) g_rand_int_range (rand, 0, (gint32) len);
      guint8 old = copy[pos];

      copy[pos] = (guint8) g_rand_int_range (rand, 0, 256);
      f = bl_gguf_new_from_data (copy, len, "fuzz.gguf", &error);
      if (f != NULL)
        {
          for (guint t = 0; t < bl_gguf_get_n_tensors (f); t++)
            {
              const BlGgufTensorInfo *ti = bl_gguf_get_tensor_at (f, t);

              g_assert_cmpuint (ti->file_offset + ti->n_bytes, <=, len);
            }
          bl_gguf_unref (f);
        }
      copy[pos] = old;
    }
}

/* ------------------------------------------------------------------------------------------ */
/* model export */

typedef struct
{
  const char *layer;
  const char *spec;
} Assign;

/* the fixture plan: every GGUF type on some layer, an unlisted layer (F16 by default) and a
 * quantized tied lm_head, which becomes its own output.weight */
static const Assign tiny_plan[] = {
  { "model.layers.0.self_attn.q_proj.weight", "int4:g32:q4_0" },
  { "model.layers.0.self_attn.k_proj.weight", "int8:g32" },
  { "model.layers.0.self_attn.v_proj.weight", "mxfp4" },
  { "model.layers.0.self_attn.o_proj.weight", "fp16" },
  { "model.layers.0.mlp.gate_proj.weight", "int4:g32:q4_0" },
  { "model.layers.0.mlp.down_proj.weight", "int8:g32" },
  { "model.layers.1.self_attn.q_proj.weight", "mxfp4" },
  { "model.layers.1.self_attn.k_proj.weight", "int4:g32:q4_0" },
  { "model.layers.1.self_attn.v_proj.weight", "int8:g32" },
  { "model.layers.1.self_attn.o_proj.weight", "int4:g32:q4_0" },
  { "model.layers.1.mlp.gate_proj.weight", "mxfp4" },
  { "model.layers.1.mlp.up_proj.weight", "bf16" },
  { "model.layers.1.mlp.down_proj.weight", "int4:g32:q4_0" },
  { "lm_head.weight", "int8:g32" },
};

static BlExportLayer *
make_layers (const Assign *plan,
             guint         n,
             BlFormatSpec *specs)
{
  BlExportLayer *layers = g_new0 (BlExportLayer, n);

  for (guint i = 0; i < n; i++)
    {
      g_assert_true (bl_format_spec_parse (plan[i].spec, &specs[i], NULL));
      layers[i].layer = plan[i].layer;
      layers[i].weight = &specs[i];
    }
  return layers;
}

static const char *
fixture_model (void)
{
  return g_test_get_filename (G_TEST_DIST, "fixtures", "tiny-llama", "llama-tied-bf16", NULL);
}

/* The GGUF file of the fixture plan, written once into the build directory, where
 * tools/read-gguf can read it to regenerate tests/fixtures/gguf/tiny-llama-tied.gguf.json. */
static char *
export_fixture (gboolean    ggml_reference,
                GPtrArray **out_notes)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (BlModel) model = bl_model_load (fixture_model (), NULL, &error);
  BlFormatSpec specs[G_N_ELEMENTS (tiny_plan)];
  g_autofree BlExportLayer *layers = make_layers (tiny_plan, G_N_ELEMENTS (tiny_plan), specs);
  char *path = g_build_filename (g_getenv ("G_TEST_BUILDDIR") != NULL ? g_getenv ("G_TEST_BUILDDIR")
                                 : g_get_tmp_dir (),
                                 ggml_reference ? "tiny-llama-tied-ggml.gguf" : "tiny-llama-tied.gguf",
                                 NULL);
  GPtrArray *notes = g_ptr_array_new_with_free_func (g_free);
  BlGgufExportOptions opts = { 0 };

  g_assert_no_error (error);
  opts.name = "tiny-llama-tied";
  opts.ggml_reference = ggml_reference;
  g_assert_true (bl_export_gguf (model, layers, G_N_ELEMENTS (tiny_plan), &opts, path, notes, NULL,
                                 &error));
  g_assert_no_error (error);
  *out_notes = notes;
  return path;
}

static const char *const proj_names[7] = {
  "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
  "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj",
};

static const char *
spec_for (const char *layer)
{
  for (guint i = 0; i < G_N_ELEMENTS (tiny_plan); i++)
    if (g_str_equal (tiny_plan[i].layer, layer))
      return tiny_plan[i].spec;
  return "fp16";
}

/* Decodes every linear weight of the file and compares it with the fake quantization of
 * the model's own weight under the plan's format. */
static void
check_export_dequant (gboolean ggml_reference)
{
  g_autoptr (GPtrArray) notes = NULL;
  g_autofree char *path = export_fixture (ggml_reference, &notes);
  g_autoptr (GError) error = NULL;
  g_autoptr (BlModel) model = bl_model_load (fixture_model (), NULL, &error);
  g_autoptr (BlGguf) f = bl_gguf_open (path, &error);
  const BlModelConfig *cfg = bl_model_get_config (model);
  guint n_checked = 0;

  g_assert_no_error (error);
  /* the fixture has no tokenizer.json */
  g_assert_cmpuint (notes->len, ==, 1);
  g_assert_nonnull (strstr (g_ptr_array_index (notes, 0), "tokenizer"));

  for (int l = 0; l <= 2 * 7; l++)
    {
      g_autofree char *name = l < 14 ? g_strdup_printf ("model.layers.%d.%s.weight", l / 7, proj_names[l % 7])
                              : g_strdup ("lm_head.weight");
      const BlTensor *t = bl_model_get_tensor (model, name);
      g_autofree char *gname = bl_export_gguf_tensor_name (name);
      const BlGgufTensorInfo *gt;
      gint64 rows, cols;
      g_autofree float *w = NULL, *want = NULL, *got = NULL, *unperm = NULL;
      const char *spec = spec_for (name);
      BlFormatSpec parsed;
      BlGgmlType type;

      gt = bl_gguf_find_tensor (f, gname);
      g_assert_nonnull (gt);
      rows = t->shape[0];
      cols = t->shape[1];
      g_assert_cmpint (gt->ne[0], ==, cols);
      g_assert_cmpint (gt->ne[1], ==, rows);
      g_assert_true (bl_format_spec_parse (spec, &parsed, NULL));
      g_assert_true (bl_export_spec_to_ggml (&parsed, &type));
      g_assert_cmpuint (gt->type, ==, type);

      w = g_new (float, rows * cols);
      want = g_new (float, rows * cols);
      got = g_new (float, rows * cols);
      unperm = g_new (float, rows * cols);
      bl_tensor_to_f32 (t, w);
      fake (spec, w, want, rows, cols);
      g_assert_true (bl_gguf_tensor_to_f32 (f, gt, got, &error));
      if (strstr (gname, ".attn_q.") || strstr (gname, ".attn_k."))
        {
          bl_export_gguf_permute_rows (got, unperm, rows, cols,
                                       strstr (gname, ".attn_q.") ? cfg->n_heads : cfg->n_kv_heads,
                                       TRUE);
          memcpy (got, unperm, (size_t) (rows * cols) * sizeof (float));
        }
      /* ggml's own encoders differ from Bitlens's by one Q8_0 step on some elements and
       * pick the other MXFP4 neighbour on a tie; Bitlens's codes decode exactly */
      if (ggml_reference && type == BL_GGML_TYPE_Q8_0)
        for (gint64 k = 0; k < rows * cols; k++)
          {
            float amax = 0.0f;

            for (gint64 j = k / 32 * 32; j < k / 32 * 32 + 32; j++)
              amax = MAX (amax, fabsf (w[j]));
            g_assert_cmpfloat (fabsf (got[k] - want[k]), <=, amax / 127.0f * 1.001f);
          }
      else if (ggml_reference && type == BL_GGML_TYPE_MXFP4)
        for (gint64 k = 0; k < rows * cols; k++)
          g_assert_cmpfloat (fabsf (w[k] - got[k]), ==, fabsf (w[k] - want[k]));
      else if (type == BL_GGML_TYPE_MXFP4)
        /* ggml's integer table decodes the E2M1 code of −0 as +0: equal as numbers */
        for (gint64 k = 0; k < rows * cols; k++)
          g_assert_cmpfloat (got[k], ==, want[k]);
      else
        g_assert_cmpmem (got, (gsize) (rows * cols) * sizeof (float), want,
                         (gsize) (rows * cols) * sizeof (float));
      n_checked++;
    }
  /* 2 blocks × 7 projections + the lm_head */
  g_assert_cmpuint (n_checked, ==, 15);
  /* the tied embedding stays F16, unpermuted */
  g_assert_cmpuint (bl_gguf_find_tensor (f, "token_embd.weight")->type, ==, BL_GGML_TYPE_F16);
  g_assert_cmpuint (bl_gguf_find_tensor (f, "blk.0.attn_norm.weight")->type, ==, BL_GGML_TYPE_F32);
}

/* the default: the file decodes to exactly the weights Bitlens evaluates */
static void
test_export_dequant (void)
{
  check_export_dequant (FALSE);
}

static void
test_export_ggml_reference (void)
{
  check_export_dequant (TRUE);
}

static void
test_export_metadata (void)
{
  g_autoptr (GPtrArray) notes = NULL;
  g_autofree char *path = export_fixture (FALSE, &notes);
  g_autoptr (GError) error = NULL;
  g_autoptr (BlGguf) f = bl_gguf_open (path, &error);
  g_autofree char *arch = NULL, *name = NULL;
  guint64 u;
  double d;

  g_assert_no_error (error);
  arch = bl_gguf_get_string (f, "general.architecture");
  name = bl_gguf_get_string (f, "general.name");
  g_assert_cmpstr (arch, ==, "llama");
  g_assert_cmpstr (name, ==, "tiny-llama-tied");
  g_assert_true (bl_gguf_get_uint (f, "llama.block_count", &u));
  g_assert_cmpuint (u, ==, 2);
  g_assert_true (bl_gguf_get_uint (f, "llama.embedding_length", &u));
  g_assert_cmpuint (u, ==, 32);
  g_assert_true (bl_gguf_get_uint (f, "llama.attention.head_count_kv", &u));
  g_assert_cmpuint (u, ==, 1);
  g_assert_true (bl_gguf_get_uint (f, "llama.rope.dimension_count", &u));
  g_assert_cmpuint (u, ==, 8);
  g_assert_true (bl_gguf_get_float (f, "llama.rope.freq_base", &d));
  g_assert_cmpfloat (d, ==, 10000.0);
  g_assert_true (bl_gguf_get_uint (f, "general.quantization_version", &u));
  g_assert_cmpuint (u, ==, 2);
  /* Q4_0 covers the most linear weights: 4 projections of 32×32 plus two 64×32 */
  g_assert_true (bl_gguf_get_uint (f, "general.file_type", &u));
  g_assert_cmpuint (u, ==, 2);
  /* 1 embedding + per block 2 norms and 7 weights + final norm + output.weight */
  g_assert_cmpuint (bl_gguf_get_n_tensors (f), ==, 1 + 2 * 9 + 1 + 1);
  for (guint i = 0; i < bl_gguf_get_n_tensors (f); i++)
    g_assert_cmpuint (bl_gguf_get_tensor_at (f, i)->offset % 32, ==, 0);
}

/* Bitlens's reader and the independent tools/read-gguf see the same file. */
static void
test_export_independent_reader (void)
{
  g_autoptr (GPtrArray) notes = NULL;
  g_autofree char *path = export_fixture (FALSE, &notes);
  g_autoptr (GError) error = NULL;
  g_autoptr (BlGguf) f = bl_gguf_open (path, &error);
  g_autoptr (JsonParser) parser = json_parser_new ();
  JsonObject *root;
  JsonArray *kvs, *tensors;
  gsize len;

  g_assert_no_error (error);
  g_assert_true (json_parser_load_from_file (parser, g_test_get_filename (G_TEST_DIST, "fixtures", "gguf",
                                                                           "tiny-llama-tied.gguf.json", NULL),
                                             &error));
  root = json_node_get_object (json_parser_get_root (parser));
  g_assert_true (g_file_test (path, G_FILE_TEST_EXISTS));
  {
    g_autofree char *contents = NULL;

    g_assert_true (g_file_get_contents (path, &contents, &len, NULL));
    g_assert_cmpint (json_object_get_int_member (root, "file_bytes"), ==, (gint64) len);
  }
  g_assert_cmpint (json_object_get_int_member (root, "version"), ==, bl_gguf_get_version (f));
  g_assert_cmpint (json_object_get_int_member (root, "data_offset"), ==,
                   (gint64) bl_gguf_get_data_offset (f));

  kvs = json_object_get_array_member (root, "metadata");
  g_assert_cmpuint (json_array_get_length (kvs), ==, bl_gguf_get_n_kv (f));
  for (guint i = 0; i < json_array_get_length (kvs); i++)
    {
      JsonObject *kv = json_array_get_object_element (kvs, i);
      const BlGgufKv *mine = bl_gguf_get_kv_at (f, i);
      const char *type = json_object_get_string_member (kv, "type");
      JsonNode *value = json_object_get_member (kv, "value");

      g_assert_cmpstr (json_object_get_string_member (kv, "key"), ==, mine->key);
      if (g_str_equal (type, "string"))
        {
          g_autofree char *s = bl_gguf_get_string (f, mine->key);

          g_assert_cmpstr (s, ==, json_node_get_string (value));
        }
      else if (g_str_equal (type, "uint32") || g_str_equal (type, "uint64"))
        {
          guint64 u;

          g_assert_true (bl_gguf_get_uint (f, mine->key, &u));
          g_assert_cmpint ((gint64) u, ==, json_node_get_int (value));
        }
      else if (g_str_equal (type, "float32"))
        {
          double d;

          g_assert_true (bl_gguf_get_float (f, mine->key, &d));
          g_assert_cmpfloat (d, ==, json_node_get_double (value));
        }
      else
        g_error ("unexpected metadata type %s for %s", type, mine->key);
    }

  tensors = json_object_get_array_member (root, "tensors");
  g_assert_cmpuint (json_array_get_length (tensors), ==, bl_gguf_get_n_tensors (f));
  for (guint i = 0; i < json_array_get_length (tensors); i++)
    {
      JsonObject *jt = json_array_get_object_element (tensors, i);
      const BlGgufTensorInfo *t = bl_gguf_get_tensor_at (f, i);
      JsonArray *dims = json_object_get_array_member (jt, "dims");
      g_autofree char *sha = g_compute_checksum_for_data (G_CHECKSUM_SHA256, t->data, t->n_bytes);
      gint64 n = 1;
      g_autofree float *y = NULL;
      double sum = 0, sum_sq = 0;

      g_assert_cmpstr (json_object_get_string_member (jt, "name"), ==, t->name);
      g_assert_cmpuint (json_array_get_length (dims), ==, t->n_dims);
      for (guint d = 0; d < t->n_dims; d++)
        {
          g_assert_cmpint (json_array_get_int_element (dims, d), ==, t->ne[d]);
          n *= t->ne[d];
        }
      g_assert_cmpstr (json_object_get_string_member (jt, "type"), ==,
                       bl_ggml_type_get_traits (t->type)->name);
      g_assert_cmpint (json_object_get_int_member (jt, "offset"), ==, (gint64) t->offset);
      g_assert_cmpint (json_object_get_int_member (jt, "bytes"), ==, (gint64) t->n_bytes);
      g_assert_cmpstr (json_object_get_string_member (jt, "sha256"), ==, sha);
      y = g_new (float, n);
      g_assert_true (bl_gguf_tensor_to_f32 (f, t, y, &error));
      for (gint64 k = 0; k < n; k++)
        {
          sum += y[k];
          sum_sq += (double) y[k] * y[k];
        }
      g_assert_cmpfloat_with_epsilon (sum, json_object_get_double_member (jt, "sum"),
                                      1e-9 * MAX (1.0, sum_sq));
      g_assert_cmpfloat_with_epsilon (sum_sq, json_object_get_double_member (jt, "sum_sq"),
                                      1e-9 * MAX (1.0, sum_sq));
    }
}

/* A format no GGUF type stores is refused, naming the layer. */
static void
test_export_unsupported (void)
{
  static const Assign plan[] = { { "model.layers.0.mlp.up_proj.weight", "int3:g128:asym" } };
  g_autoptr (GError) error = NULL;
  g_autoptr (BlModel) model = bl_model_load (fixture_model (), NULL, &error);
  BlFormatSpec specs[1];
  g_autofree BlExportLayer *layers = make_layers (plan, 1, specs);
  g_autoptr (GPtrArray) notes = g_ptr_array_new_with_free_func (g_free);
  g_autofree char *path = g_build_filename (g_get_tmp_dir (), "bitlens-unsupported.gguf", NULL);

  g_assert_false (bl_export_gguf (model, layers, 1, NULL, path, notes, NULL, &error));
  g_assert_error (error, BL_ERROR, BL_ERROR_UNSUPPORTED_FORMAT);
  g_assert_nonnull (strstr (error->message, "model.layers.0.mlp.up_proj.weight"));
  g_assert_false (g_file_test (path, G_FILE_TEST_EXISTS));
}

/* The scores derived from the merge order rank the merged pieces as the SentencePiece model
 * did: llama2.c's tok512.bin, shipped beside stories260k, holds the original scores
 * (int32 max_token_length, then per token float32 score, int32 length, bytes). */
static void
check_scores_against_sentencepiece (BlGguf     *f,
                                    const char *dir)
{
  g_autofree char *path = g_build_filename (dir, "original", "tok512.bin", NULL);
  g_autofree char *contents = NULL;
  gsize len, pos = 4;
  float sp[512];
  double ours[512];
  guint n = 0, pairs = 0;

  if (!g_file_get_contents (path, &contents, &len, NULL))
    return;
  for (n = 0; n < 512 && pos + 8 <= len; n++)
    {
      gint32 l;

      memcpy (&sp[n], contents + pos, 4);
      memcpy (&l, contents + pos + 4, 4);
      pos += 8 + (gsize) l;
      g_assert_true (bl_gguf_get_array_number (f, "tokenizer.ggml.scores", n, &ours[n]));
    }
  g_assert_cmpuint (n, ==, 512);
  /* merged pieces have negative scores in both, except the first merge's 0 */
  for (guint i = 259; i < 512; i++)
    for (guint k = i + 1; k < 512; k++)
      if (ours[i] != 0.0 || i == 259)
        if (ours[k] != 0.0 && sp[i] != sp[k])
          {
            g_assert_cmpint (sp[i] > sp[k], ==, ours[i] > ours[k]);
            pairs++;
          }
  g_assert_cmpuint (pairs, >, 10000);
}

/* stories260k with its SentencePiece-style tokenizer: the vocabulary keys, and ffn_down,
 * whose 172-element rows fit no 32-block, falls back to F16 */
static void
test_export_stories (void)
{
  const char *shared = g_getenv ("BITLENS_SHARED_DIR");
  g_autofree char *dir = NULL, *path = NULL, *tok0 = NULL, *tok300 = NULL, *model_name = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (BlModel) model = NULL;
  g_autoptr (BlGguf) f = NULL;
  g_autoptr (GPtrArray) notes = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GArray) layers = g_array_new (FALSE, TRUE, sizeof (BlExportLayer));
  g_autoptr (GPtrArray) names = NULL;
  BlFormatSpec q4;
  guint64 u;
  double d;
  gboolean b;
  const BlGgufKv *kv;
  guint n_fallback = 0;

  if (shared == NULL)
    {
      g_test_skip ("BITLENS_SHARED_DIR is not set; stories260k is not available");
      return;
    }
  dir = g_build_filename (shared, "models", "stories260k", NULL);
  model = bl_model_load (dir, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (bl_format_spec_parse ("int4:g32:q4_0", &q4, NULL));
  names = g_ptr_array_new_with_free_func (g_free);
  for (int l = 0; l < bl_model_get_config (model)->n_layers * 7; l++)
    {
      BlExportLayer e = { 0 };

      g_ptr_array_add (names, g_strdup_printf ("model.layers.%d.%s.weight", l / 7, proj_names[l % 7]));
      e.layer = g_ptr_array_index (names, names->len - 1);
      e.weight = &q4;
      g_array_append_val (layers, e);
    }
  path = g_build_filename (g_get_tmp_dir (), "bitlens-stories260k-q4_0.gguf", NULL);
  g_assert_true (bl_export_gguf (model, (BlExportLayer *) layers->data, layers->len, NULL, path, notes,
                                 NULL, &error));
  g_assert_no_error (error);
  for (guint i = 0; i < notes->len; i++)
    if (strstr (g_ptr_array_index (notes, i), "down_proj") != NULL)
      n_fallback++;
  g_assert_cmpuint (n_fallback, ==, 5);

  f = bl_gguf_open (path, &error);
  g_assert_no_error (error);
  model_name = bl_gguf_get_string (f, "tokenizer.ggml.model");
  g_assert_cmpstr (model_name, ==, "llama");
  kv = bl_gguf_find_kv (f, "tokenizer.ggml.tokens");
  g_assert_nonnull (kv);
  g_assert_cmpuint (kv->array_len, ==, 512);
  tok0 = bl_gguf_get_array_string (f, "tokenizer.ggml.tokens", 0);
  g_assert_cmpstr (tok0, ==, "<unk>");
  /* token types: <unk> unknown, <s> control, <0x00> byte, then normal pieces */
  g_assert_true (bl_gguf_get_array_number (f, "tokenizer.ggml.token_type", 0, &d));
  g_assert_cmpfloat (d, ==, 2);
  g_assert_true (bl_gguf_get_array_number (f, "tokenizer.ggml.token_type", 1, &d));
  g_assert_cmpfloat (d, ==, 3);
  g_assert_true (bl_gguf_get_array_number (f, "tokenizer.ggml.token_type", 3, &d));
  g_assert_cmpfloat (d, ==, 6);
  g_assert_true (bl_gguf_get_array_number (f, "tokenizer.ggml.token_type", 300, &d));
  g_assert_cmpfloat (d, ==, 1);
  /* the first merge ("▁ t") makes the highest-scoring merged piece */
  tok300 = bl_gguf_get_array_string (f, "tokenizer.ggml.tokens", 259);
  g_assert_cmpstr (tok300, ==, "▁t");
  g_assert_true (bl_gguf_get_array_number (f, "tokenizer.ggml.scores", 259, &d));
  g_assert_cmpfloat (d, ==, 0.0);
  g_assert_true (bl_gguf_get_uint (f, "tokenizer.ggml.bos_token_id", &u));
  g_assert_cmpuint (u, ==, 1);
  g_assert_true (bl_gguf_get_uint (f, "tokenizer.ggml.eos_token_id", &u));
  g_assert_cmpuint (u, ==, 2);
  g_assert_true (bl_gguf_get_bool (f, "tokenizer.ggml.add_bos_token", &b));
  g_assert_true (b);
  g_assert_null (bl_gguf_find_kv (f, "tokenizer.ggml.merges"));
  g_assert_cmpuint (bl_gguf_find_tensor (f, "blk.0.ffn_down.weight")->type, ==, BL_GGML_TYPE_F16);
  g_assert_cmpuint (bl_gguf_find_tensor (f, "blk.0.ffn_up.weight")->type, ==, BL_GGML_TYPE_Q4_0);
  /* tied embeddings and an unquantized lm_head: no output.weight */
  g_assert_null (bl_gguf_find_tensor (f, "output.weight"));
  check_scores_against_sentencepiece (f, dir);
  g_unlink (path);
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/bitlens/gguf/q4_0/golden", test_q4_0_golden);
  g_test_add_func ("/bitlens/gguf/q8_0/golden", test_q8_0_golden);
  g_test_add_func ("/bitlens/gguf/mxfp4/golden", test_mxfp4_golden);
  g_test_add_func ("/bitlens/gguf/q4_0/matches-format", test_q4_0_matches_format);
  g_test_add_func ("/bitlens/gguf/q8_0-mxfp4/vs-format", test_q8_0_mxfp4_vs_format);
  g_test_add_func ("/bitlens/gguf/permute", test_permute);
  g_test_add_func ("/bitlens/gguf/dequant/reference", test_dequant_reference);
  g_test_add_func ("/bitlens/gguf/dequant/container", test_dequant_container);
  g_test_add_func ("/bitlens/gguf/container/roundtrip", test_container_roundtrip);
  g_test_add_func ("/bitlens/gguf/container/corrupt", test_container_corrupt);
  g_test_add_func ("/bitlens/gguf/export/dequant", test_export_dequant);
  g_test_add_func ("/bitlens/gguf/export/ggml-reference", test_export_ggml_reference);
  g_test_add_func ("/bitlens/gguf/export/metadata", test_export_metadata);
  g_test_add_func ("/bitlens/gguf/export/independent-reader", test_export_independent_reader);
  g_test_add_func ("/bitlens/gguf/export/unsupported", test_export_unsupported);
  g_test_add_func ("/bitlens/gguf/export/stories260k", test_export_stories);
  return g_test_run ();
}
