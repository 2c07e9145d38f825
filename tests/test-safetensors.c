/* test-safetensors.c: dtypes, fp16/bf16 widening and the safetensors parser
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include <math.h>
#include <string.h>

#include <glib/gstdio.h>

#include "bl-error.h"
#include "bl-safetensors.h"
#include "bl-tensor.h"
#include "safetensors-writer.h"

static uint32_t
float_bits (float f)
{
  uint32_t bits;

  memcpy (&bits, &f, 4);
  return bits;
}

static float
widen_one (BlDType  dtype,
           uint16_t bits)
{
  BlTensor t = { 0 };
  guint8 raw[2];
  uint16_t le = GUINT16_TO_LE (bits);
  float out;

  memcpy (raw, &le, 2);
  t.dtype = dtype;
  t.n_dims = 0;
  t.n_elements = 1;
  t.data = raw;
  t.n_bytes = 2;
  bl_tensor_to_f32 (&t, &out);
  return out;
}

static void
test_dtype_names (void)
{
  BlDType d;

  g_assert_cmpstr (bl_dtype_to_string (BL_DTYPE_F32), ==, "F32");
  g_assert_cmpstr (bl_dtype_to_string (BL_DTYPE_F16), ==, "F16");
  g_assert_cmpstr (bl_dtype_to_string (BL_DTYPE_BF16), ==, "BF16");
  g_assert_cmpuint (bl_dtype_size (BL_DTYPE_F32), ==, 4);
  g_assert_cmpuint (bl_dtype_size (BL_DTYPE_F16), ==, 2);
  g_assert_cmpuint (bl_dtype_size (BL_DTYPE_BF16), ==, 2);
  g_assert_true (bl_dtype_from_string ("BF16", &d));
  g_assert_cmpint (d, ==, BL_DTYPE_BF16);
  g_assert_true (bl_dtype_from_string ("F16", &d));
  g_assert_cmpint (d, ==, BL_DTYPE_F16);
  g_assert_false (bl_dtype_from_string ("f32", &d));
  g_assert_false (bl_dtype_from_string ("I64", &d));
  g_assert_false (bl_dtype_from_string ("", &d));
}

/* Every one of the 65536 fp16 patterns against the value IEEE 754 assigns it, computed with
 * ldexp: (-1)^s × 2^(e-15) × (1 + m/1024) for normals, (-1)^s × 2^-24 × m for subnormals. */
static void
test_f16_exhaustive (void)
{
  for (uint32_t h = 0; h <= 0xffff; h++)
    {
      uint32_t s = h >> 15, e = (h >> 10) & 0x1f, m = h & 0x3ff;
      float got = widen_one (BL_DTYPE_F16, (uint16_t) h);
      double want;

      if (e == 31 && m != 0)
        {
          g_assert_true (isnan (got));
          g_assert_cmpuint (float_bits (got) >> 31, ==, s);
          g_assert_cmpuint ((float_bits (got) >> 13) & 0x3ff, ==, m);
          continue;
        }
      if (e == 31)
        want = INFINITY;
      else if (e == 0)
        want = ldexp (m, -24);
      else
        want = ldexp (1024 + m, (int) e - 25);
      if (s)
        want = -want;
      g_assert_cmpuint (float_bits (got), ==, float_bits ((float) want));
    }
}

static void
test_bf16 (void)
{
  const struct { uint16_t bits; float value; } cases[] = {
    { 0x3f80, 1.0f }, { 0xc020, -2.5f }, { 0x0000, 0.0f }, { 0x7f7f, 3.3895314e38f },
    { 0x0080, 1.17549435e-38f }, { 0x0001, 9.18354962e-41f }, { 0x7f80, INFINITY },
    { 0xff80, -INFINITY },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    g_assert_cmpuint (float_bits (widen_one (BL_DTYPE_BF16, cases[i].bits)), ==,
                      float_bits (cases[i].value));
  g_assert_cmpuint (float_bits (widen_one (BL_DTYPE_BF16, 0x8000)), ==, 0x80000000u);
  g_assert_true (isnan (widen_one (BL_DTYPE_BF16, 0x7fc1)));
  g_assert_cmpuint (float_bits (widen_one (BL_DTYPE_BF16, 0x7fc1)), ==, 0x7fc10000u);
}

/* safetensors data offsets need not be aligned; the widening reads byte by byte. */
static void
test_unaligned (void)
{
  float values[3] = { 1.5f, -0.25f, 1e-3f };
  guint8 *raw = g_malloc (1 + sizeof values);
  BlTensor t = { 0 };
  float out[3];

  memcpy (raw + 1, values, sizeof values);
  t.dtype = BL_DTYPE_F32;
  t.n_dims = 1;
  t.shape[0] = 3;
  t.n_elements = 3;
  t.data = raw + 1;
  t.n_bytes = sizeof values;
  bl_tensor_to_f32 (&t, out);
  g_assert_cmpmem (out, sizeof out, values, sizeof values);
  g_free (raw);
}

/* ------------------------------------------------------------------------------------------ */
/* a valid file */

static const float f32_values[6] = { 1.0f, -2.5f, 3.1415927f, 0.0f, -0.0f, 1e-30f };
/* exact in fp16: the largest normal, the smallest normal and subnormal, a fraction */
static const float f16_values[4] = { 65504.0f, 6.1035156e-05f, 5.9604645e-08f, -0.333984375f };
static const float bf16_values[4] = { 1.0f, -3.0e38f, 9.18354962e-41f, 0.0078125f };

static GBytes *
three_dtype_file (void)
{
  g_autoptr(StWriter) w = st_writer_new ();
  const int64_t s23[2] = { 2, 3 };
  const int64_t s4[1] = { 4 };
  const int64_t s22[2] = { 2, 2 };
  float bf16_exact[4];

  /* -3.0e38 is not a bf16 value; take its upper half as the stored number. */
  for (guint i = 0; i < 4; i++)
    {
      uint32_t bits = float_bits (bf16_values[i]) & 0xffff0000u;

      memcpy (&bf16_exact[i], &bits, 4);
    }
  st_writer_add (w, "a.weight", BL_DTYPE_F32, 2, s23, f32_values);
  st_writer_add (w, "b.half", BL_DTYPE_F16, 1, s4, f16_values);
  st_writer_add (w, "c.brain", BL_DTYPE_BF16, 2, s22, bf16_exact);
  st_writer_add_metadata (w, "alias.weight", "a.weight");
  return st_writer_to_bytes (w);
}

static void
check_three_dtypes (BlSafetensors *st)
{
  const BlTensor *a, *b, *c;
  float out[6];

  g_assert_cmpuint (bl_safetensors_get_n_tensors (st), ==, 3);
  a = bl_safetensors_get_tensor (st, "a.weight");
  b = bl_safetensors_get_tensor (st, "b.half");
  c = bl_safetensors_get_tensor (st, "c.brain");
  g_assert_nonnull (a);
  g_assert_nonnull (b);
  g_assert_nonnull (c);
  g_assert_null (bl_safetensors_get_tensor (st, "missing"));
  g_assert_true (bl_safetensors_get_tensor_at (st, 0) == a);
  g_assert_true (bl_safetensors_get_tensor_at (st, 2) == c);

  g_assert_cmpint (a->dtype, ==, BL_DTYPE_F32);
  g_assert_cmpint (a->n_dims, ==, 2);
  g_assert_cmpint (a->shape[0], ==, 2);
  g_assert_cmpint (a->shape[1], ==, 3);
  g_assert_cmpint (a->n_elements, ==, 6);
  g_assert_cmpuint (a->n_bytes, ==, 24);
  g_assert_cmpint (b->n_elements, ==, 4);
  g_assert_cmpuint (b->n_bytes, ==, 8);
  g_assert_cmpuint (b->file_offset, ==, a->file_offset + 24);
  g_assert_cmpuint (c->file_offset, ==, b->file_offset + 8);

  bl_tensor_to_f32 (a, out);
  g_assert_cmpmem (out, 6 * sizeof (float), f32_values, sizeof f32_values);
  bl_tensor_to_f32 (b, out);
  g_assert_cmpmem (out, 4 * sizeof (float), f16_values, sizeof f16_values);
  bl_tensor_to_f32 (c, out);
  g_assert_cmpfloat (out[0], ==, 1.0f);
  g_assert_cmpuint (float_bits (out[1]), ==, float_bits (-3.0e38f) & 0xffff0000u);
  g_assert_cmpfloat (out[2], ==, 9.18354962e-41f);
  g_assert_cmpfloat (out[3], ==, 0.0078125f);

  g_assert_cmpstr (bl_safetensors_get_metadata (st, "format"), ==, "pt");
  g_assert_cmpstr (bl_safetensors_get_metadata (st, "alias.weight"), ==, "a.weight");
  g_assert_null (bl_safetensors_get_metadata (st, "nope"));
}

static void
test_roundtrip_memory (void)
{
  g_autoptr(GBytes) bytes = three_dtype_file ();
  g_autoptr(GError) error = NULL;
  g_autoptr(BlSafetensors) st = NULL;
  g_auto(GStrv) keys = NULL;
  gsize len;
  const guint8 *data = g_bytes_get_data (bytes, &len);

  st = bl_safetensors_parse_header (data, len, "mem.safetensors", &error);
  g_assert_no_error (error);
  check_three_dtypes (st);
  g_assert_cmpstr (bl_safetensors_get_filename (st), ==, "mem.safetensors");
  g_assert_cmpstr (bl_safetensors_get_tensor (st, "a.weight")->file, ==, "mem.safetensors");
  keys = bl_safetensors_list_metadata_keys (st);
  g_assert_cmpuint (g_strv_length (keys), ==, 2);
  g_assert_cmpstr (keys[0], ==, "alias.weight");
  g_assert_cmpstr (keys[1], ==, "format");
}

static void
test_roundtrip_file (void)
{
  g_autoptr(GBytes) bytes = three_dtype_file ();
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("bitlens-st-XXXXXX", &error);
  g_autofree char *path = g_build_filename (dir, "x.safetensors", NULL);
  BlSafetensors *st;
  BlSafetensors *extra;
  const guint8 *contents;
  gsize len;

  g_assert_no_error (error);
  g_file_set_contents (path, g_bytes_get_data (bytes, NULL), (gssize) g_bytes_get_size (bytes), &error);
  g_assert_no_error (error);

  st = bl_safetensors_open (path, &error);
  g_assert_no_error (error);
  check_three_dtypes (st);
  contents = bl_safetensors_get_contents (st, &len);
  g_assert_cmpmem (contents, len, g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes));

  /* The mapping lives as long as any reference. */
  extra = bl_safetensors_ref (st);
  bl_safetensors_unref (st);
  g_assert_cmpuint (g_unlink (path), ==, 0);
  check_three_dtypes (extra);
  bl_safetensors_unref (extra);
  g_assert_cmpuint (g_rmdir (dir), ==, 0);

  g_assert_null (bl_safetensors_open (path, &error));
  g_assert_error (error, G_FILE_ERROR, G_FILE_ERROR_NOENT);
}

static void
test_scalar_and_empty (void)
{
  g_autoptr(GBytes) bytes =
    st_raw_file ("{\"s\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]},"
                 "\"z\":{\"dtype\":\"BF16\",\"shape\":[0,7],\"data_offsets\":[4,4]},"
                 "\"y\":{\"dtype\":\"F16\",\"shape\":[3,0],\"data_offsets\":[2,2]}}   ", 4);
  g_autoptr(GError) error = NULL;
  g_autoptr(BlSafetensors) st = NULL;
  const BlTensor *s, *z;

  st = bl_safetensors_parse_header (g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes),
                                    "scalar.safetensors", &error);
  g_assert_no_error (error);
  s = bl_safetensors_get_tensor (st, "s");
  z = bl_safetensors_get_tensor (st, "z");
  g_assert_cmpint (s->n_dims, ==, 0);
  g_assert_cmpint (s->n_elements, ==, 1);
  g_assert_cmpint (z->n_dims, ==, 2);
  g_assert_cmpint (z->n_elements, ==, 0);
  g_assert_cmpuint (z->n_bytes, ==, 0);
  g_assert_cmpint (bl_safetensors_get_tensor (st, "y")->n_elements, ==, 0);
}

/* ------------------------------------------------------------------------------------------ */
/* bad inputs: each must fail with the given code and a message naming the file and, where
 * it helps, the tensor and the absolute byte offset */

typedef struct
{
  const char *path;
  const char *header;        /* NULL: use @raw */
  const char *raw;
  gsize raw_len;
  gsize data_len;
  BlErrorCode code;
  const char *needles[4];
} BadCase;

#define T(name, dtype, shape, begin, end) \
  "\"" name "\":{\"dtype\":\"" dtype "\",\"shape\":" shape ",\"data_offsets\":[" begin "," end "]}"

static const BadCase bad_cases[] = {
  { "/bitlens/safetensors/bad/empty-file", NULL, "", 0, 0, BL_ERROR_CORRUPT_FILE,
    { "file is 0 bytes", "8-byte header length" } },
  { "/bitlens/safetensors/bad/truncated", NULL, "\x10\0\0\0\0", 5, 0, BL_ERROR_CORRUPT_FILE,
    { "file is 5 bytes" } },
  { "/bitlens/safetensors/bad/header-length-beyond-eof", NULL, "\xff\0\0\0\0\0\0\0{}", 10, 0,
    BL_ERROR_CORRUPT_FILE, { "header length 255", "beyond the end", "10-byte file" } },
  { "/bitlens/safetensors/bad/header-length-absurd", NULL,
    "\0\0\0\0\0\0\0\x01{}", 10, 0, BL_ERROR_CORRUPT_FILE,
    { "header length 72057594037927936", "limit" } },
  { "/bitlens/safetensors/bad/header-length-zero", NULL, "\0\0\0\0\0\0\0\0", 8, 0,
    BL_ERROR_CORRUPT_FILE, { "JSON header at byte 8", "empty" } },
  { "/bitlens/safetensors/bad/json-malformed", "{\"a\": {\"dtype\": \"F32\",\n \"shape\": [1,}}", NULL,
    0, 0, BL_ERROR_CORRUPT_FILE, { "JSON header at byte 8:2:", "Parse error" } },
  { "/bitlens/safetensors/bad/json-not-object", "[1, 2, 3]", NULL, 0, 0, BL_ERROR_CORRUPT_FILE,
    { "JSON header at byte 8", "not an object" } },
  { "/bitlens/safetensors/bad/json-trailing", "{} {}", NULL, 0, 0, BL_ERROR_CORRUPT_FILE,
    { "JSON header at byte 8:1:4", "after the top-level" } },
  { "/bitlens/safetensors/bad/json-nul", NULL, "\x07\0\0\0\0\0\0\0{\"a\":\0}", 15, 0,
    BL_ERROR_CORRUPT_FILE, { "JSON header at byte 8", "not valid UTF-8 (byte 5 of the text)" } },
  { "/bitlens/safetensors/bad/json-deep",
    "{\"a\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}",
    NULL, 0, 0, BL_ERROR_CORRUPT_FILE, { "nesting deeper than 64" } },
  { "/bitlens/safetensors/bad/json-not-utf8", "{\"\xff\": 1}", NULL, 0, 0, BL_ERROR_CORRUPT_FILE,
    { "not valid UTF-8", "byte 2 of the text" } },
  { "/bitlens/safetensors/bad/json-huge-integer",
    "{" T ("w", "F32", "[-18446744073709551615]", "0", "4") "}", NULL, 0, 4,
    BL_ERROR_CORRUPT_FILE, { "outside the 64-bit range" } },
  { "/bitlens/safetensors/bad/duplicate-name",
    "{" T ("w", "F32", "[1]", "0", "4") "," T ("w", "F32", "[1]", "4", "8") "}", NULL, 0, 8,
    BL_ERROR_CORRUPT_FILE, { "duplicate key", "“w”" } },
  { "/bitlens/safetensors/bad/entry-not-object", "{\"w\": [1, 2]}", NULL, 0, 0,
    BL_ERROR_CORRUPT_FILE, { "tensor “w”", "an array, not an object" } },
  { "/bitlens/safetensors/bad/missing-dtype",
    "{\"w\":{\"shape\":[1],\"data_offsets\":[0,4]}}", NULL, 0, 4, BL_ERROR_CORRUPT_FILE,
    { "tensor “w”", "“dtype” is missing" } },
  { "/bitlens/safetensors/bad/dtype-not-string",
    "{\"w\":{\"dtype\":7,\"shape\":[1],\"data_offsets\":[0,4]}}", NULL, 0, 4,
    BL_ERROR_CORRUPT_FILE, { "tensor “w”", "“dtype” is an integer" } },
  { "/bitlens/safetensors/bad/missing-shape",
    "{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", NULL, 0, 4, BL_ERROR_CORRUPT_FILE,
    { "tensor “w”", "“shape” is missing" } },
  { "/bitlens/safetensors/bad/missing-offsets",
    "{\"w\":{\"dtype\":\"F32\",\"shape\":[1]}}", NULL, 0, 4, BL_ERROR_CORRUPT_FILE,
    { "tensor “w”", "“data_offsets” is missing" } },
  { "/bitlens/safetensors/bad/negative-dim", "{" T ("w", "F32", "[2, -1]", "0", "8") "}", NULL,
    0, 8, BL_ERROR_CORRUPT_FILE, { "tensor “w”", "shape[1] is not a non-negative integer" } },
  { "/bitlens/safetensors/bad/fractional-dim", "{" T ("w", "F32", "[2.5]", "0", "8") "}", NULL,
    0, 8, BL_ERROR_CORRUPT_FILE, { "tensor “w”", "shape[0]" } },
  { "/bitlens/safetensors/bad/string-dim", "{" T ("w", "F32", "[\"2\"]", "0", "8") "}", NULL,
    0, 8, BL_ERROR_CORRUPT_FILE, { "tensor “w”", "shape[0]" } },
  { "/bitlens/safetensors/bad/offsets-arity",
    "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", NULL, 0, 4,
    BL_ERROR_CORRUPT_FILE, { "tensor “w”", "has 1 entries, not 2" } },
  { "/bitlens/safetensors/bad/offsets-reversed", "{" T ("w", "F32", "[1]", "8", "4") "}", NULL,
    0, 8, BL_ERROR_CORRUPT_FILE, { "tensor “w”", "[8, 4)", "begin after end", "absolute offset 70" } },
  { "/bitlens/safetensors/bad/shape-overflow",
    "{" T ("w", "F32", "[4294967296, 4294967296]", "0", "4") "}", NULL, 0, 4,
    BL_ERROR_CORRUPT_FILE, { "tensor “w”", "[4294967296, 4294967296]", "overflows" } },
  { "/bitlens/safetensors/bad/shape-bytes-mismatch",
    "{" T ("ok", "F32", "[2]", "0", "8") ","
        T ("model.layers.0.self_attn.q_proj.weight", "F16", "[2, 4]", "8", "20") "}",
    NULL, 0, 20, BL_ERROR_CORRUPT_FILE,
    { "tensor “model.layers.0.self_attn.q_proj.weight”", "needs 16 bytes", "hold 12",
      "absolute offset 165" } },
  { "/bitlens/safetensors/bad/offset-beyond-eof",
    "{" T ("model.layers.0.self_attn.q_proj.weight", "F32", "[1024]", "4096", "8192") "}   ",
    NULL, 0, 6000, BL_ERROR_CORRUPT_FILE,
    { "tensor “model.layers.0.self_attn.q_proj.weight”", "[4096, 8192)",
      "end beyond file data size 6000", "absolute offset 4207" } },
  { "/bitlens/safetensors/bad/overlap",
    "{" T ("first", "F32", "[4]", "0", "16") "," T ("second", "F32", "[4]", "8", "24") "}", NULL,
    0, 24, BL_ERROR_CORRUPT_FILE, { "“second”", "overlaps tensor “first”", "absolute offset 134" } },
  { "/bitlens/safetensors/bad/dtype-unsupported", "{" T ("w", "I64", "[1]", "0", "8") "}", NULL,
    0, 8, BL_ERROR_UNSUPPORTED_FORMAT, { "tensor “w”", "dtype I64", "F32, F16 and BF16" } },
  { "/bitlens/safetensors/bad/dtype-garbage", "{" T ("w", "F33", "[1]", "0", "4") "}", NULL,
    0, 4, BL_ERROR_UNSUPPORTED_FORMAT, { "tensor “w”", "dtype F33" } },
  { "/bitlens/safetensors/bad/too-many-dims",
    "{" T ("w", "F32", "[1,1,1,1,1,1,1,1,1]", "0", "4") "}", NULL, 0, 4,
    BL_ERROR_UNSUPPORTED_FORMAT, { "tensor “w”", "has 9 entries, at most 8" } },
  { "/bitlens/safetensors/bad/metadata-not-strings",
    "{\"__metadata__\":{\"format\":1}}", NULL, 0, 0, BL_ERROR_CORRUPT_FILE,
    { "“__metadata__” entry “format” is an integer" } },
  { "/bitlens/safetensors/bad/metadata-not-object", "{\"__metadata__\":\"pt\"}", NULL, 0, 0,
    BL_ERROR_CORRUPT_FILE, { "“__metadata__” is a string" } },
};

static void
test_bad (gconstpointer data)
{
  const BadCase *c = data;
  g_autoptr(GBytes) bytes = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(BlSafetensors) st = NULL;
  const char *filename = "bad-input.safetensors";

  if (c->header != NULL)
    bytes = st_raw_file (c->header, c->data_len);
  else
    bytes = g_bytes_new (c->raw, c->raw_len);

  st = bl_safetensors_parse_header (g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes),
                                    filename, &error);
  g_assert_null (st);
  g_assert_error (error, BL_ERROR, (int) c->code);
  g_test_message ("%s", error->message);
  g_assert_true (g_str_has_prefix (error->message, filename));
  for (guint i = 0; i < G_N_ELEMENTS (c->needles) && c->needles[i] != NULL; i++)
    if (strstr (error->message, c->needles[i]) == NULL)
      g_error ("message “%s” lacks “%s”", error->message, c->needles[i]);
}

/* A header with no tensors is valid; the fuzzer found that it once passed a NULL array to
 * qsort (tests/fuzz/corpus-safetensors/empty-header-ws is that input). */
static void
test_no_tensors (void)
{
  static const guint8 file[] = "\x20\0\0\0\0\0\0\0{\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r"
                               "\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r}}";
  g_autoptr(GError) error = NULL;
  g_autoptr(BlSafetensors) st = NULL;

  st = bl_safetensors_parse_header (file, sizeof file - 1, "empty.safetensors", &error);
  g_assert_no_error (error);
  g_assert_cmpuint (bl_safetensors_get_n_tensors (st), ==, 0);
  g_assert_null (bl_safetensors_get_tensor (st, "x"));
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/bitlens/tensor/dtype-names", test_dtype_names);
  g_test_add_func ("/bitlens/tensor/f16-exhaustive", test_f16_exhaustive);
  g_test_add_func ("/bitlens/tensor/bf16", test_bf16);
  g_test_add_func ("/bitlens/tensor/unaligned", test_unaligned);
  g_test_add_func ("/bitlens/safetensors/roundtrip-memory", test_roundtrip_memory);
  g_test_add_func ("/bitlens/safetensors/no-tensors", test_no_tensors);
  g_test_add_func ("/bitlens/safetensors/roundtrip-file", test_roundtrip_file);
  g_test_add_func ("/bitlens/safetensors/scalar-and-empty", test_scalar_and_empty);
  for (guint i = 0; i < G_N_ELEMENTS (bad_cases); i++)
    g_test_add_data_func (bad_cases[i].path, &bad_cases[i], test_bad);

  return g_test_run ();
}
