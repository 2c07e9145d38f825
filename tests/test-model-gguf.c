/* test-model-gguf.c: opening GGUF files as models (core/bl-model-gguf.c)
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * Every GGUF file here is written at test time by Bitlens's own exporter (bl_export_gguf())
 * from a Hugging Face model, the committed tiny-llama fixtures and, when BITLENS_SHARED_DIR
 * is set, stories260k. Loading it back must give the Hugging Face model again: the same
 * config, every tensor bit for bit (after the f16 or block-format round trip the export
 * made), the same logits and the same token ids.
 *
 * Bitlens does not write K-quants, so the K-quant model is assembled with the GGUF writer
 * from random blocks; it must load as their ggml dequantization and run.
 */
#include <glib/gstdio.h>
#include <math.h>
#include <string.h>

#include "bl-backend.h"
#include "bl-engine.h"
#include "bl-error.h"
#include "bl-export.h"
#include "bl-format.h"
#include "bl-format-codecs.h"
#include "bl-gguf.h"
#include "bl-gguf-quants.h"
#include "bl-gguf-writer.h"
#include "bl-json-private.h"
#include "bl-model.h"
#include "bl-model-config.h"
#include "bl-model-gguf-private.h"

static char *tmp_dir;

static char *
tmp_path (const char *name)
{
  return g_build_filename (tmp_dir, name, NULL);
}

static char *
fixture_model (const char *name)
{
  return g_test_build_filename (G_TEST_DIST, "fixtures", "tiny-llama", name, NULL);
}

/* stories260k, or NULL after g_test_skip() when the shared data is not there */
static char *
stories260k (void)
{
  const char *shared = g_getenv ("BITLENS_SHARED_DIR");
  char *dir;

  if (shared == NULL)
    {
      g_test_skip ("BITLENS_SHARED_DIR is not set; stories260k is not available");
      return NULL;
    }
  dir = g_build_filename (shared, "models", "stories260k", NULL);
  if (!g_file_test (dir, G_FILE_TEST_IS_DIR))
    {
      g_test_skip ("BITLENS_SHARED_DIR has no models/stories260k");
      g_free (dir);
      return NULL;
    }
  return dir;
}

static BlModel *
load (const char *path)
{
  g_autoptr(GError) error = NULL;
  BlModel *model = bl_model_load (path, NULL, &error);

  g_assert_no_error (error);
  g_assert_nonnull (model);
  return model;
}

/* The block projections a plan's defaults reach (every linear layer but the lm_head) */
static gboolean
is_planned (BlModel    *model,
            const char *name)
{
  guint n = g_list_model_get_n_items (G_LIST_MODEL (model));

  for (guint i = 0; i < n; i++)
    {
      g_autoptr(BlLayer) layer = g_list_model_get_item (G_LIST_MODEL (model), i);
      BlLayerKind kind = bl_layer_get_kind (layer);

      if (g_str_equal (bl_layer_get_name (layer), name))
        return bl_layer_kind_is_linear (kind) && kind != BL_LAYER_LM_HEAD
               && kind != BL_LAYER_EMBEDDING;
    }
  return FALSE;
}

/* Exports @model with every block projection in @spec (NULL: none) and everything else,
 * the embedding included, in @unquantized. */
static char *
export_gguf (BlModel     *model,
             const char  *file_name,
             const char  *spec,
             BlGgmlType   unquantized)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) notes = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GArray) layers = g_array_new (FALSE, TRUE, sizeof (BlExportLayer));
  g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  BlGgufExportOptions opts = { unquantized, unquantized, "test", FALSE,
                                unquantized == BL_GGML_TYPE_F32 };
  BlFormatSpec parsed;
  guint n = g_list_model_get_n_items (G_LIST_MODEL (model));
  char *path = tmp_path (file_name);

  if (spec != NULL)
    {
      g_assert_true (bl_format_spec_parse (spec, &parsed, &error));
      for (guint i = 0; i < n; i++)
        {
          g_autoptr(BlLayer) layer = g_list_model_get_item (G_LIST_MODEL (model), i);
          BlExportLayer e = { 0 };

          if (!is_planned (model, bl_layer_get_name (layer)))
            continue;
          g_ptr_array_add (names, g_strdup (bl_layer_get_name (layer)));
          e.layer = g_ptr_array_index (names, names->len - 1);
          e.weight = &parsed;
          g_array_append_val (layers, e);
        }
    }
  g_assert_true (bl_export_gguf (model, (const BlExportLayer *) layers->data, layers->len, &opts,
                                 path, notes, NULL, &error));
  g_assert_no_error (error);
  return path;
}

static void
check_config (const BlModelConfig *want,
              const BlModelConfig *got,
              gboolean             with_tokenizer)
{
  g_assert_cmpstr (got->model_type, ==, want->model_type);
  g_assert_cmpstr (got->architecture, ==, want->architecture);
  g_assert_cmpint (got->vocab_size, ==, want->vocab_size);
  g_assert_cmpint (got->hidden_size, ==, want->hidden_size);
  g_assert_cmpint (got->intermediate_size, ==, want->intermediate_size);
  g_assert_cmpint (got->n_layers, ==, want->n_layers);
  g_assert_cmpint (got->n_heads, ==, want->n_heads);
  g_assert_cmpint (got->n_kv_heads, ==, want->n_kv_heads);
  g_assert_cmpint (got->head_dim, ==, want->head_dim);
  g_assert_cmpint (got->max_position_embeddings, ==, want->max_position_embeddings);
  /* stored as float32, read back as the shortest decimal: equal to config.json's */
  g_assert_cmpfloat (got->rms_norm_eps, ==, want->rms_norm_eps);
  g_assert_cmpfloat (got->rope_theta, ==, want->rope_theta);
  g_assert_cmpint (got->tie_word_embeddings, ==, want->tie_word_embeddings);
  g_assert_cmpint (got->attention_bias, ==, want->attention_bias);
  g_assert_cmpint (got->o_proj_bias, ==, want->o_proj_bias);
  g_assert_cmpint (got->mlp_bias, ==, want->mlp_bias);
  g_assert_cmpint (got->n_experts, ==, 0);
  /* RoPE scaling: linear as metadata, Llama 3's as rope_freqs divisors; either way the
   * frequencies agree (llama3's through one division and its inverse: within 2 ulp) */
  {
    int half = want->head_dim / 2;
    g_autofree float *fw = g_new (float, half);
    g_autofree float *fg = g_new (float, half);

    bl_model_config_rope_inv_freq (want, fw);
    bl_model_config_rope_inv_freq (got, fg);
    for (int j = 0; j < half; j++)
      g_assert_cmpfloat_with_epsilon (fg[j], fw[j], 2.5e-7 * fw[j]);
    g_assert_true ((got->rope_freq_factors != NULL) == (want->rope_scaling == BL_ROPE_LLAMA3));
    if (want->rope_scaling == BL_ROPE_LINEAR)
      g_assert_cmpfloat (got->rope_factor, ==, want->rope_factor);
  }
  /* BOS/EOS travel with the tokenizer metadata, which a model without tokenizer.json lacks */
  if (with_tokenizer)
    {
      g_assert_cmpint (got->bos_token_id, ==, want->bos_token_id);
      g_assert_cmpint (got->eos_token_id, ==, want->eos_token_id);
    }
}

static float *
to_f32 (const BlTensor *t)
{
  float *x = g_new (float, t->n_elements);

  bl_tensor_to_f32 (t, x);
  return x;
}

/* What an elementwise type makes of @x: f32 exactly, f16/bf16 rounded as ggml rounds. */
static void
round_trip (BlGgmlType   type,
            const float *x,
            float       *y,
            gint64       n)
{
  g_autofree guint8 *buf = NULL;

  if (type == BL_GGML_TYPE_F32)
    {
      memcpy (y, x, (size_t) n * sizeof (float));
      return;
    }
  buf = g_malloc (bl_ggml_row_size (type, n));
  bl_ggml_quantize_row (type, x, buf, n);
  g_assert_true (bl_ggml_dequantize_row (type, buf, y, n));
}

/* Every tensor of @hf has its counterpart in @gguf, equal to what the export made of it:
 * norms and biases exact (F32), a planned projection the fake quantization under @spec
 * (f16 where its rows do not fill whole 32-element blocks), everything else @unquantized. */
static void
check_tensors (BlModel     *hf,
               BlModel     *gguf,
               const char  *spec,
               BlGgmlType   unquantized)
{
  BlFormatSpec parsed;

  if (spec != NULL)
    g_assert_true (bl_format_spec_parse (spec, &parsed, NULL));
  g_assert_cmpuint (bl_model_get_n_tensors (gguf), ==, bl_model_get_n_tensors (hf));
  g_assert_cmpint (bl_model_get_n_params (gguf), ==, bl_model_get_n_params (hf));
  g_assert_cmpuint (g_list_model_get_n_items (G_LIST_MODEL (gguf)), ==,
                    g_list_model_get_n_items (G_LIST_MODEL (hf)));
  for (guint i = 0; i < bl_model_get_n_tensors (hf); i++)
    {
      const BlTensor *t = bl_model_get_tensor_at (hf, i);
      const BlTensor *u = bl_model_get_tensor (gguf, t->name);
      g_autofree float *x = NULL, *y = NULL, *want = NULL;

      g_assert_nonnull (u);
      g_assert_cmpint (u->n_dims, ==, t->n_dims);
      for (int d = 0; d < t->n_dims; d++)
        g_assert_cmpint (u->shape[d], ==, t->shape[d]);
      x = to_f32 (t);
      y = to_f32 (u);
      want = g_new (float, t->n_elements);
      if (t->n_dims == 1)
        memcpy (want, x, (size_t) t->n_elements * sizeof (float));
      else if (spec != NULL && is_planned (hf, t->name) && t->shape[1] % BL_GGML_QK == 0)
        {
          g_autoptr(GError) error = NULL;

          g_assert_true (bl_format_fake_quant (&parsed, x, want, t->shape[0], t->shape[1], 1, &error));
          g_assert_no_error (error);
          g_assert_cmpint (u->dtype, ==, BL_DTYPE_F32);
        }
      else if (spec != NULL && is_planned (hf, t->name))
        round_trip (BL_GGML_TYPE_F16, x, want, t->n_elements);
      else
        round_trip (unquantized, x, want, t->n_elements);
      if (memcmp (want, y, (size_t) t->n_elements * sizeof (float)) != 0)
        g_error ("%s: tensor %s differs from the Hugging Face model's", bl_model_get_path (gguf),
                 t->name);
    }
}

/* The largest |difference| of the two models' logits over a short sequence, relative to
 * the largest |logit|. */
static double
logits_rel_diff (BlModel *a,
                 BlModel *b)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(BlBackend) backend = bl_backend_new ("cpu", 1, &error);
  g_autoptr(BlEngine) ea = NULL;
  g_autoptr(BlEngine) eb = NULL;
  int vocab = bl_model_get_config (a)->vocab_size;
  int32_t ids[12];
  int n = G_N_ELEMENTS (ids);
  g_autofree float *la = g_new (float, (gsize) n * vocab);
  g_autofree float *lb = g_new (float, (gsize) n * vocab);
  double max_diff = 0.0, max_abs = 0.0;

  g_assert_no_error (error);
  for (int i = 0; i < n; i++)
    ids[i] = (int32_t) ((i * 37 + 1) % vocab);
  ea = bl_engine_new (a, backend, NULL, &error);
  g_assert_no_error (error);
  eb = bl_engine_new (b, backend, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (bl_engine_forward (ea, ids, n, la, NULL, &error));
  g_assert_true (bl_engine_forward (eb, ids, n, lb, NULL, &error));
  g_assert_no_error (error);
  for (gsize i = 0; i < (gsize) n * vocab; i++)
    {
      max_diff = MAX (max_diff, fabs ((double) la[i] - lb[i]));
      max_abs = MAX (max_abs, fabs ((double) la[i]));
    }
  g_assert_cmpfloat (max_abs, >, 0.0);
  return max_diff / max_abs;
}

/* f32 and f16 exports of a Hugging Face model load back as that model. */
static void
check_float_round_trip (const char *dir,
                        const char *tag,
                        gboolean    with_tokenizer)
{
  g_autoptr(BlModel) hf = load (dir);
  g_autofree char *name32 = g_strdup_printf ("%s-f32.gguf", tag);
  g_autofree char *name16 = g_strdup_printf ("%s-f16.gguf", tag);
  g_autofree char *path32 = export_gguf (hf, name32, NULL, BL_GGML_TYPE_F32);
  g_autofree char *path16 = export_gguf (hf, name16, NULL, BL_GGML_TYPE_F16);
  g_autoptr(BlModel) g32 = load (path32);
  g_autoptr(BlModel) g16 = load (path16);
  double rel;

  check_config (bl_model_get_config (hf), bl_model_get_config (g32), with_tokenizer);
  check_config (bl_model_get_config (hf), bl_model_get_config (g16), with_tokenizer);
  check_tensors (hf, g32, NULL, BL_GGML_TYPE_F32);
  check_tensors (hf, g16, NULL, BL_GGML_TYPE_F16);
  g_assert_cmpstr (bl_model_get_path (g32), ==, path32);
  g_assert_cmpuint (strlen (bl_model_get_fingerprint (g32)), ==, 64);
  g_assert_cmpstr (bl_model_get_fingerprint (g32), !=, bl_model_get_fingerprint (g16));
  g_assert_nonnull (strstr (bl_model_get_storage (g32), "f32"));
  g_assert_null (strstr (bl_model_get_storage (g32), "dequantized"));
  g_assert_null (bl_model_get_storage (hf));

  rel = logits_rel_diff (hf, g32);
  g_test_message ("%s: f32 GGUF logits differ from the Hugging Face model's by %.3g relative",
                  tag, rel);
  g_assert_cmpfloat (rel, <=, 1e-6);
}

static void
test_fixture_float (gconstpointer data)
{
  g_autofree char *dir = fixture_model (data);

  check_float_round_trip (dir, data, FALSE);
}

static void
test_stories_float (void)
{
  g_autofree char *dir = stories260k ();

  if (dir != NULL)
    check_float_round_trip (dir, "stories260k", TRUE);
}

/* A sliding window has no GGUF key (llama.cpp's converter writes none either): the export
 * says so in a note, and the file reads back as a llama model with full attention, equal to
 * the Hugging Face model within the window. */
static void
test_sliding_window_note (void)
{
  g_autofree char *dir = fixture_model ("mistral-swa");
  g_autoptr(BlModel) hf = load (dir);
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) notes = g_ptr_array_new_with_free_func (g_free);
  BlGgufExportOptions opts = { BL_GGML_TYPE_F32, BL_GGML_TYPE_F32, "test", FALSE, TRUE };
  g_autofree char *path = tmp_path ("mistral-swa.gguf");
  g_autoptr(BlModel) gguf = NULL;
  gboolean noted = FALSE;

  g_assert_cmpint (bl_model_get_config (hf)->sliding_window, ==, 5);
  g_assert_true (bl_export_gguf (hf, NULL, 0, &opts, path, notes, NULL, &error));
  g_assert_no_error (error);
  for (guint i = 0; i < notes->len; i++)
    noted |= strstr (g_ptr_array_index (notes, i), "sliding_window 5 (from block 0 on) is not written") != NULL;
  g_assert_true (noted);
  gguf = load (path);
  g_assert_cmpstr (bl_model_get_config (gguf)->model_type, ==, "llama");
  g_assert_cmpint (bl_model_get_config (gguf)->sliding_window, ==, 0);
  check_tensors (hf, gguf, NULL, BL_GGML_TYPE_F32);
}

/* A rope_freqs tensor that does not fit head_dim, or holds a non-positive factor */
static void
test_bad_rope_freqs (void)
{
  g_autofree char *dir = fixture_model ("llama3-rope");
  g_autoptr(BlModel) hf = load (dir);
  g_autofree char *path = export_gguf (hf, "llama3-bad.gguf", NULL, BL_GGML_TYPE_F32);
  g_autofree char *data = NULL;
  gsize len;
  g_autoptr(GError) error = NULL;
  g_autoptr(BlModel) bad = NULL;
  float factor;
  const guint8 *at = NULL;

  /* the factors are the only F32 run starting with 1.0 then the medium-band divisor: find
   * the tensor through the reader instead of guessing offsets */
  {
    g_autoptr(BlGguf) gguf = bl_gguf_open (path, &error);
    const BlGgufTensorInfo *ti;

    g_assert_no_error (error);
    ti = bl_gguf_find_tensor (gguf, "rope_freqs.weight");
    g_assert_nonnull (ti);
    g_assert_cmpint (ti->ne[0], ==, 8);
    memcpy (&factor, ti->data + 4, sizeof factor);
    g_assert_cmpfloat (factor, >, 1.0f);
    g_assert_cmpfloat (factor, <, 8.0f);
    g_assert_true (g_file_get_contents (path, &data, &len, NULL));
    at = (const guint8 *) data + ti->file_offset;
  }
  factor = -1.0f;
  memcpy ((guint8 *) at + 4, &factor, sizeof factor);
  g_assert_true (g_file_set_contents (path, data, (gssize) len, NULL));
  bad = bl_model_load (path, NULL, &error);
  g_assert_null (bad);
  g_assert_error (error, BL_ERROR, BL_ERROR_CORRUPT_FILE);
  g_assert_nonnull (strstr (error->message, "rope_freqs.weight” factor 1 is -1, not a positive number"));
}

/* Block formats: the loaded weights are the fake quantization of the Hugging Face weights,
 * and the ggml dequantization of the written blocks with the q/k permutation undone. */
static void
check_block_round_trip (const char *dir,
                        const char *tag,
                        const char *spec)
{
  g_autoptr(BlModel) hf = load (dir);
  g_autofree char *name = g_strdup_printf ("%s-%s.gguf", tag, spec);
  g_autofree char *path = export_gguf (hf, name, spec, BL_GGML_TYPE_F32);
  g_autoptr(BlModel) gguf = load (path);
  g_autoptr(GError) error = NULL;
  g_autoptr(BlGguf) file = bl_gguf_open (path, &error);
  const BlModelConfig *c = bl_model_get_config (hf);
  gboolean llama = g_str_equal (c->model_type, "llama");
  guint n_checked = 0;

  g_assert_no_error (error);
  check_config (c, bl_model_get_config (gguf), FALSE);
  check_tensors (hf, gguf, spec, BL_GGML_TYPE_F32);
  for (guint i = 0; i < bl_gguf_get_n_tensors (file); i++)
    {
      const BlGgufTensorInfo *ti = bl_gguf_get_tensor_at (file, i);
      gint64 n = ti->ne[0] * ti->ne[1];
      g_autofree float *decoded = NULL, *want = NULL;
      const BlTensor *t;
      int n_head = 0;

      if (ti->type != BL_GGML_TYPE_Q4_0 && ti->type != BL_GGML_TYPE_Q8_0)
        continue;
      decoded = g_new (float, n);
      want = g_new (float, n);
      g_assert_true (bl_gguf_tensor_to_f32 (file, ti, decoded, &error));
      g_assert_no_error (error);
      if (llama && strstr (ti->name, ".attn_q.") != NULL)
        n_head = c->n_heads;
      else if (llama && strstr (ti->name, ".attn_k.") != NULL)
        n_head = c->n_kv_heads;
      if (n_head > 0)
        bl_export_gguf_permute_rows (decoded, want, ti->ne[1], ti->ne[0], n_head, TRUE);
      else
        memcpy (want, decoded, (size_t) n * sizeof (float));
      t = bl_model_get_tensor_at (gguf, i);
      g_assert_cmpuint (t->file_offset, ==, ti->file_offset);
      g_assert_cmpint (t->dtype, ==, BL_DTYPE_F32);
      g_assert_cmpmem (t->data, t->n_bytes, want, (gsize) n * sizeof (float));
      n_checked++;
    }
  /* llama-bias-f16's rows (40, 72 elements) fill no 32-element block: every projection
   * falls back to f16, which check_tensors() covered */
  g_assert_cmpint (n_checked > 0, ==, strstr (bl_model_get_storage (gguf), "(dequantized to F32)") != NULL);
  if (c->hidden_size % BL_GGML_QK == 0)
    g_assert_cmpuint (n_checked, >, 0);
}

static void
test_fixture_blocks (gconstpointer data)
{
  g_autofree char *dir = fixture_model (data);

  check_block_round_trip (dir, data, "int4:g32:q4_0");
  check_block_round_trip (dir, data, "int8:g32");
}

static void
test_stories_blocks (void)
{
  g_autofree char *dir = stories260k ();

  if (dir == NULL)
    return;
  check_block_round_trip (dir, "stories260k", "int4:g32:q4_0");
  check_block_round_trip (dir, "stories260k", "int8:g32");
}

/* Tokenizers */

static const char *const sample_texts[] = {
  "Once upon a time, there was a little girl named Lily.",
  "  two leading spaces,\ttabs\tand\nnew\n\nlines  ",
  "Numbers 1234567 and 3.14159, prices $12.50; e-mail: a@b.cd!",
  "Ünïcödé — “quotes”, café, naïve, 日本語のテキスト, emoji 🙂🚀",
  "I'm sure you'll see they've done it; isn't it?",
  "<s> looks special </s>",
  "",
};

static void
check_same_ids (BlTokenizer *want,
                BlTokenizer *got,
                const char  *text,
                gssize       len)
{
  g_autoptr(GArray) a = bl_tokenizer_encode (want, text, len, TRUE);
  g_autoptr(GArray) b = bl_tokenizer_encode (got, text, len, TRUE);

  g_assert_cmpmem (a->data, a->len * sizeof (int32_t), b->data, b->len * sizeof (int32_t));
}

static void
check_encodings (BlTokenizer *want,
                 BlTokenizer *got)
{
  g_assert_cmpstr (bl_tokenizer_get_style (got), ==, bl_tokenizer_get_style (want));
  g_assert_cmpint (bl_tokenizer_get_add_bos (got), ==, bl_tokenizer_get_add_bos (want));
  for (guint i = 0; i < G_N_ELEMENTS (sample_texts); i++)
    check_same_ids (want, got, sample_texts[i], -1);
}

static void
check_tokenizers (BlTokenizer *want,
                  BlTokenizer *got)
{
  g_assert_cmpint (bl_tokenizer_get_bos_id (got), ==, bl_tokenizer_get_bos_id (want));
  g_assert_cmpint (bl_tokenizer_get_eos_id (got), ==, bl_tokenizer_get_eos_id (want));
  check_encodings (want, got);
}

/* model.merges of a tokenizer.json as "left right" strings (either spelling) */
static GPtrArray *
json_merges (JsonObject *model)
{
  JsonArray *m = json_object_get_array_member (model, "merges");
  GPtrArray *merges = g_ptr_array_new_with_free_func (g_free);

  for (guint i = 0; i < json_array_get_length (m); i++)
    {
      JsonNode *e = json_array_get_element (m, i);

      if (JSON_NODE_HOLDS_ARRAY (e))
        g_ptr_array_add (merges, g_strdup_printf ("%s %s",
                                                  json_array_get_string_element (json_node_get_array (e), 0),
                                                  json_array_get_string_element (json_node_get_array (e), 1)));
      else
        g_ptr_array_add (merges, g_strdup (json_node_get_string (e)));
    }
  return merges;
}

/* The first 200 kB of WikiText-2's test text (when the shared data has it) give the same
 * ids and decode to the same text. */
static void
check_wiki_text (BlTokenizer *want,
                 BlTokenizer *got)
{
  g_autofree char *wiki = g_build_filename (g_getenv ("BITLENS_SHARED_DIR"), "datasets",
                                            "wikitext-2-raw-v1", "wiki.test.raw", NULL);
  g_autofree char *text = NULL;
  g_autoptr(GArray) a = NULL;
  g_autoptr(GArray) b = NULL;
  g_autofree char *want_text = NULL;
  g_autofree char *got_text = NULL;
  gsize len;

  if (!g_file_get_contents (wiki, &text, &len, NULL))
    return;
  len = MIN (len, 200000);
  while (len > 0 && ((guchar) text[len] & 0xc0) == 0x80)
    len--;
  a = bl_tokenizer_encode (want, text, (gssize) len, TRUE);
  b = bl_tokenizer_encode (got, text, (gssize) len, TRUE);
  g_test_message ("%u tokens of wiki.test.raw, equal ids", a->len);
  g_assert_cmpmem (a->data, a->len * sizeof (int32_t), b->data, b->len * sizeof (int32_t));
  want_text = bl_tokenizer_decode (want, (const int32_t *) a->data, a->len);
  got_text = bl_tokenizer_decode (got, (const int32_t *) b->data, b->len);
  g_assert_cmpstr (got_text, ==, want_text);
}

/* stories260k's SentencePiece BPE: the export keeps scores, not merges; the merges
 * derived from the scores give the same ids as tokenizer.json on the WikiText-2 test text,
 * and the same text back. */
static void
test_stories_tokenizer (void)
{
  g_autofree char *dir = stories260k ();
  g_autoptr(BlModel) hf = NULL;
  g_autoptr(BlModel) gguf = NULL;
  g_autofree char *path = NULL;
  BlTokenizer *want, *got;

  if (dir == NULL)
    return;
  hf = load (dir);
  path = export_gguf (hf, "stories260k-tok.gguf", NULL, BL_GGML_TYPE_F16);
  gguf = load (path);
  want = bl_model_get_tokenizer (hf);
  got = bl_model_get_tokenizer (gguf);
  g_assert_nonnull (got);
  g_assert_cmpstr (bl_model_get_tokenizer_source (gguf), ==, "tokenizer.ggml.* of the GGUF file");
  g_assert_cmpint (bl_tokenizer_get_vocab_size (got), ==, bl_tokenizer_get_vocab_size (want));
  check_tokenizers (want, got);

  check_wiki_text (want, got);
}

/* A "llama" tokenizer whose file also has tokenizer.ggml.merges (convert_hf_to_gguf.py's
 * _set_vocab_llama_hf writes them): the merges are used as they are. */
static void
test_stories_tokenizer_merges (void)
{
  g_autofree char *dir = stories260k ();
  g_autoptr(GError) error = NULL;
  g_autoptr(BlModel) hf = NULL;
  g_autofree char *exported = NULL;
  g_autoptr(BlGguf) from = NULL;
  g_autoptr(BlGgufWriter) w = bl_gguf_writer_new (BL_GGUF_DEFAULT_ALIGNMENT);
  g_autofree char *json_path = NULL;
  g_autofree char *contents = NULL;
  g_autoptr(JsonNode) root = NULL;
  g_autoptr(GPtrArray) merges = NULL;
  g_auto(GStrv) tokens = NULL;
  g_autofree float *scores = NULL;
  g_autofree gint32 *types = NULL;
  g_autofree char *path = tmp_path ("stories260k-merges.gguf");
  g_autoptr(BlGguf) file = NULL;
  g_autoptr(BlTokenizer) got = NULL;
  g_autofree char *why_not = NULL;
  static const char *const ids[] = { "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
                                     "tokenizer.ggml.unknown_token_id" };
  guint n;
  gsize len;
  gboolean add_bos;

  if (dir == NULL)
    return;
  hf = load (dir);
  exported = export_gguf (hf, "stories260k-scores.gguf", NULL, BL_GGML_TYPE_F16);
  from = bl_gguf_open (exported, &error);
  g_assert_no_error (error);
  g_assert_null (bl_gguf_find_kv (from, "tokenizer.ggml.merges"));
  tokens = bl_gguf_get_string_array (from, "tokenizer.ggml.tokens");
  n = g_strv_length (tokens);
  scores = g_new (float, n);
  types = g_new (gint32, n);
  for (guint i = 0; i < n; i++)
    {
      double d;

      g_assert_true (bl_gguf_get_array_number (from, "tokenizer.ggml.scores", i, &d));
      scores[i] = (float) d;
      g_assert_true (bl_gguf_get_array_number (from, "tokenizer.ggml.token_type", i, &d));
      types[i] = (gint32) d;
    }
  json_path = g_build_filename (dir, "tokenizer.json", NULL);
  g_assert_true (g_file_get_contents (json_path, &contents, &len, &error));
  root = bl_json_parse_object (contents, len, json_path, &error);
  g_assert_no_error (error);
  merges = json_merges (json_object_get_object_member (json_node_get_object (root), "model"));

  bl_gguf_writer_add_string (w, "general.architecture", "llama");
  bl_gguf_writer_add_string (w, "tokenizer.ggml.model", "llama");
  bl_gguf_writer_add_string_array (w, "tokenizer.ggml.tokens", (const char * const *) tokens, n);
  bl_gguf_writer_add_float32_array (w, "tokenizer.ggml.scores", scores, n);
  bl_gguf_writer_add_int32_array (w, "tokenizer.ggml.token_type", types, n);
  bl_gguf_writer_add_string_array (w, "tokenizer.ggml.merges", (const char * const *) merges->pdata,
                                   merges->len);
  for (guint i = 0; i < G_N_ELEMENTS (ids); i++)
    {
      guint64 id;

      g_assert_true (bl_gguf_get_uint (from, ids[i], &id));
      bl_gguf_writer_add_uint32 (w, ids[i], (guint32) id);
    }
  g_assert_true (bl_gguf_get_bool (from, "tokenizer.ggml.add_bos_token", &add_bos));
  bl_gguf_writer_add_bool (w, "tokenizer.ggml.add_bos_token", add_bos);
  g_assert_true (bl_gguf_writer_write (w, path, NULL, &error));
  g_assert_no_error (error);

  file = bl_gguf_open (path, &error);
  g_assert_no_error (error);
  g_assert_true (bl_model_gguf_read_tokenizer (file, &got, &why_not, &error));
  g_assert_no_error (error);
  g_assert_nonnull (got);
  check_tokenizers (bl_model_get_tokenizer (hf), got);
  check_wiki_text (bl_model_get_tokenizer (hf), got);
}

/* A GGUF that holds only the tokenizer of a tokenizer.json, as llama.cpp's converter
 * writes a byte-level one: tokens, merges and tokenizer.ggml.pre. */
static char *
write_byte_level_gguf (const char *json_path,
                       const char *pre,
                       BlTokenizer *hf)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *contents = NULL;
  g_autoptr(JsonNode) root = NULL;
  g_autoptr(GPtrArray) tokens = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GPtrArray) merges = NULL;
  g_autoptr(GArray) types = g_array_new (FALSE, TRUE, sizeof (gint32));
  g_autoptr(BlGgufWriter) w = bl_gguf_writer_new (BL_GGUF_DEFAULT_ALIGNMENT);
  g_autofree char *parent = g_path_get_dirname (json_path);
  g_autofree char *base = g_path_get_basename (parent);
  g_autofree char *name = g_strdup_printf ("%s.gguf", base);
  char *path = tmp_path (name);
  JsonObject *model, *vocab;
  JsonArray *added;
  JsonObjectIter it;
  const char *piece;
  JsonNode *node;
  gsize len;

  g_assert_true (g_file_get_contents (json_path, &contents, &len, &error));
  root = bl_json_parse_object (contents, len, json_path, &error);
  g_assert_no_error (error);
  model = json_object_get_object_member (json_node_get_object (root), "model");
  vocab = json_object_get_object_member (model, "vocab");
  json_object_iter_init (&it, vocab);
  while (json_object_iter_next (&it, &piece, &node))
    {
      guint id = (guint) json_node_get_int (node);

      if (id >= tokens->len)
        {
          g_ptr_array_set_size (tokens, id + 1);
          g_array_set_size (types, id + 1);
        }
      tokens->pdata[id] = g_strdup (piece);
      g_array_index (types, gint32, id) = 1;
    }
  added = json_object_get_array_member (json_node_get_object (root), "added_tokens");
  for (guint i = 0; i < json_array_get_length (added); i++)
    {
      JsonObject *a = json_array_get_object_element (added, i);
      guint id = (guint) json_object_get_int_member (a, "id");

      if (id >= tokens->len)
        {
          g_ptr_array_set_size (tokens, id + 1);
          g_array_set_size (types, id + 1);
        }
      g_free (tokens->pdata[id]);
      tokens->pdata[id] = g_strdup (json_object_get_string_member (a, "content"));
      g_array_index (types, gint32, id) = json_object_get_boolean_member (a, "special") ? 3 : 4;
    }
  for (guint i = 0; i < tokens->len; i++)
    g_assert_nonnull (tokens->pdata[i]);
  merges = json_merges (model);

  bl_gguf_writer_add_string (w, "general.architecture", "llama");
  bl_gguf_writer_add_string (w, "tokenizer.ggml.model", "gpt2");
  bl_gguf_writer_add_string (w, "tokenizer.ggml.pre", pre);
  bl_gguf_writer_add_string_array (w, "tokenizer.ggml.tokens", (const char * const *) tokens->pdata,
                                   tokens->len);
  bl_gguf_writer_add_int32_array (w, "tokenizer.ggml.token_type", (const gint32 *) types->data,
                                  types->len);
  bl_gguf_writer_add_string_array (w, "tokenizer.ggml.merges", (const char * const *) merges->pdata,
                                   merges->len);
  if (bl_tokenizer_get_bos_id (hf) >= 0)
    bl_gguf_writer_add_uint32 (w, "tokenizer.ggml.bos_token_id", (guint32) bl_tokenizer_get_bos_id (hf));
  if (bl_tokenizer_get_eos_id (hf) >= 0)
    bl_gguf_writer_add_uint32 (w, "tokenizer.ggml.eos_token_id", (guint32) bl_tokenizer_get_eos_id (hf));
  bl_gguf_writer_add_bool (w, "tokenizer.ggml.add_bos_token", bl_tokenizer_get_add_bos (hf));
  g_assert_true (bl_gguf_writer_write (w, path, NULL, &error));
  g_assert_no_error (error);
  return path;
}

/* llama.cpp's byte-level pre-tokenizers "gpt-2", "qwen2" and "smollm" against the
 * tokenizer.json fixtures of those families */
static void
test_byte_level_tokenizers (void)
{
  static const struct { const char *fixture, *pre; } cases[] = {
    { "bytelevel", "gpt-2" },
    { "bytelevel-qwen2", "qwen2" },
    { "bytelevel-smollm", "smollm" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *json = g_test_build_filename (G_TEST_DIST, "fixtures", "tokenizer",
                                                     cases[i].fixture, "tokenizer.json", NULL);
      g_autofree char *config = g_test_build_filename (G_TEST_DIST, "fixtures", "tokenizer",
                                                       cases[i].fixture, "tokenizer_config.json",
                                                       NULL);
      g_autoptr(GError) error = NULL;
      g_autoptr(BlTokenizer) want = bl_tokenizer_new_from_file (json, config, &error);
      g_autofree char *path = NULL;
      g_autoptr(BlGguf) file = NULL;
      g_autoptr(BlTokenizer) got = NULL;
      g_autofree char *why_not = NULL;

      g_assert_no_error (error);
      path = write_byte_level_gguf (json, cases[i].pre, want);
      file = bl_gguf_open (path, &error);
      g_assert_no_error (error);
      g_assert_true (bl_model_gguf_read_tokenizer (file, &got, &why_not, &error));
      g_assert_no_error (error);
      g_assert_null (why_not);
      g_assert_nonnull (got);
      check_tokenizers (want, got);
    }
}

static void
copy_file (const char *from_dir,
           const char *name,
           const char *to_dir)
{
  g_autofree char *from = g_build_filename (from_dir, name, NULL);
  g_autofree char *to = g_build_filename (to_dir, name, NULL);
  g_autofree char *contents = NULL;
  g_autoptr(GError) error = NULL;
  gsize len;

  g_assert_true (g_file_get_contents (from, &contents, &len, &error));
  g_assert_true (g_file_set_contents (to, contents, (gssize) len, &error));
  g_assert_no_error (error);
}

/* The fixture's config.json without bos_token_id and eos_token_id, which the export would
 * prefer to the borrowed tokenizer's */
static void
write_config_without_tokens (const char *from_dir,
                             const char *to_dir)
{
  g_autofree char *from = g_build_filename (from_dir, "config.json", NULL);
  g_autofree char *to = g_build_filename (to_dir, "config.json", NULL);
  g_autofree char *contents = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) root = NULL;
  g_autoptr(JsonGenerator) gen = json_generator_new ();
  gsize len;

  g_assert_true (g_file_get_contents (from, &contents, &len, &error));
  root = bl_json_parse_object (contents, len, from, &error);
  g_assert_no_error (error);
  json_object_remove_member (json_node_get_object (root), "bos_token_id");
  json_object_remove_member (json_node_get_object (root), "eos_token_id");
  json_generator_set_root (gen, root);
  g_assert_true (json_generator_to_file (gen, to, &error));
  g_assert_no_error (error);
}

/* Bitlens's own export names the byte-level pre-tokenizers of the fixtures as llama.cpp
 * does, so that its GGUF files load with their tokenizer: a model directory made of a
 * tiny-llama fixture's weights and a tokenizer fixture, exported and loaded back. */
static void
test_exported_byte_level (void)
{
  static const struct { const char *weights, *tokenizer; } cases[] = {
    { "qwen2-gqa", "bytelevel-qwen2" },
    { "llama-tied-bf16", "bytelevel-smollm" },
    { "llama-tied-bf16", "bytelevel" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *weights = fixture_model (cases[i].weights);
      g_autofree char *tok = g_test_build_filename (G_TEST_DIST, "fixtures", "tokenizer",
                                                    cases[i].tokenizer, NULL);
      g_autofree char *dir = tmp_path (cases[i].tokenizer);
      g_autofree char *name = g_strdup_printf ("%s.gguf", cases[i].tokenizer);
      g_autoptr(BlModel) hf = NULL;
      g_autoptr(BlModel) gguf = NULL;
      g_autofree char *path = NULL;

      g_test_message ("%s weights with the %s tokenizer", cases[i].weights, cases[i].tokenizer);
      g_assert_cmpint (g_mkdir_with_parents (dir, 0700), ==, 0);
      write_config_without_tokens (weights, dir);
      copy_file (weights, "model.safetensors", dir);
      copy_file (tok, "tokenizer.json", dir);
      copy_file (tok, "tokenizer_config.json", dir);
      hf = load (dir);
      path = export_gguf (hf, name, NULL, BL_GGML_TYPE_F16);
      gguf = load (path);
      g_assert_nonnull (bl_model_get_tokenizer (gguf));
      check_tokenizers (bl_model_get_tokenizer (hf), bl_model_get_tokenizer (gguf));
    }
}

/* A pre-tokenizer Bitlens does not rebuild: no tokenizer, and the reason */
static void
test_unknown_pre_tokenizer (void)
{
  g_autofree char *json = g_test_build_filename (G_TEST_DIST, "fixtures", "tokenizer",
                                                 "bytelevel", "tokenizer.json", NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(BlTokenizer) hf = bl_tokenizer_new_from_file (json, NULL, &error);
  g_autofree char *path = write_byte_level_gguf (json, "deepseek-llm", hf);
  g_autoptr(BlGguf) file = bl_gguf_open (path, &error);
  g_autoptr(BlTokenizer) got = NULL;
  g_autofree char *why_not = NULL;

  g_assert_no_error (error);
  g_assert_true (bl_model_gguf_read_tokenizer (file, &got, &why_not, &error));
  g_assert_no_error (error);
  g_assert_null (got);
  g_assert_nonnull (strstr (why_not, "“deepseek-llm”"));
}

/* A model whose GGUF has no tokenizer metadata uses a tokenizer.json beside the file. */
static void
test_tokenizer_beside (void)
{
  g_autofree char *dir = fixture_model ("llama-tied-bf16");
  g_autoptr(BlModel) hf = load (dir);
  g_autofree char *sub = tmp_path ("beside");
  g_autofree char *src = g_test_build_filename (G_TEST_DIST, "fixtures", "tokenizer", "bytelevel",
                                                "tokenizer.json", NULL);
  g_autofree char *dst = g_build_filename (sub, "tokenizer.json", NULL);
  g_autofree char *plain = export_gguf (hf, "no-tokenizer.gguf", NULL, BL_GGML_TYPE_F16);
  g_autofree char *moved = g_build_filename (sub, "model.gguf", NULL);
  g_autoptr(BlModel) bare = load (plain);
  g_autoptr(BlModel) beside = NULL;
  g_autofree char *contents = NULL;
  g_autoptr(GError) error = NULL;
  gsize len;

  g_assert_null (bl_model_get_tokenizer (bare));
  g_assert_nonnull (strstr (bl_model_get_tokenizer_source (bare), "no tokenizer.ggml.model"));

  g_assert_cmpint (g_mkdir_with_parents (sub, 0700), ==, 0);
  g_assert_true (g_file_get_contents (src, &contents, &len, &error));
  g_assert_true (g_file_set_contents (dst, contents, (gssize) len, &error));
  g_assert_cmpint (g_rename (plain, moved), ==, 0);
  beside = load (moved);
  g_assert_nonnull (bl_model_get_tokenizer (beside));
  g_assert_nonnull (strstr (bl_model_get_tokenizer_source (beside), dst));
  g_assert_cmpint (g_unlink (dst), ==, 0);
  g_assert_cmpint (g_unlink (moved), ==, 0);
  g_assert_cmpint (g_rmdir (sub), ==, 0);
}

/* Bad files */

static GBytes *
fixture_gguf_bytes (void)
{
  g_autofree char *dir = fixture_model ("llama-bias-f16");
  g_autoptr(BlModel) hf = load (dir);
  g_autofree char *path = export_gguf (hf, "bad-base.gguf", NULL, BL_GGML_TYPE_F16);
  g_autoptr(GError) error = NULL;
  g_autofree char *data = NULL;
  gsize len;

  g_assert_true (g_file_get_contents (path, &data, &len, &error));
  return g_bytes_new_take (g_steal_pointer (&data), len);
}

/* Writes @data as @name and checks that loading it fails with @code and a message
 * holding the path and @needle. */
static void
check_load_error (const guint8 *data,
                  gsize         len,
                  const char   *name,
                  int           code,
                  const char   *needle)
{
  g_autofree char *path = tmp_path (name);
  g_autoptr(GError) error = NULL;
  g_autoptr(BlModel) model = NULL;

  g_assert_true (g_file_set_contents (path, (const char *) data, (gssize) len, &error));
  model = bl_model_load (path, NULL, &error);
  g_assert_null (model);
  g_assert_error (error, BL_ERROR, code);
  g_test_message ("%s: %s", name, error->message);
  g_assert_nonnull (strstr (error->message, path));
  if (strstr (error->message, needle) == NULL)
    g_error ("message “%s” lacks “%s”", error->message, needle);
}

/* The byte offset of the field after tensor @name's info: its offset (then @ne_index = -1)
 * or dimension @ne_index. */
static gsize
tensor_field (GBytes     *bytes,
              const char *name,
              int         ne_index)
{
  gsize len;
  const guint8 *data = g_bytes_get_data (bytes, &len);
  gsize n = strlen (name);
  guint32 n_dims;

  for (gsize i = 8; i + n + 4 <= len; i++)
    if (memcmp (data + i, name, n) == 0)
      {
        guint64 stored;

        memcpy (&stored, data + i - 8, 8);
        if (GUINT64_FROM_LE (stored) != n)
          continue;
        memcpy (&n_dims, data + i + n, 4);
        n_dims = GUINT32_FROM_LE (n_dims);
        if (ne_index >= 0)
          return i + n + 4 + 8 * (gsize) ne_index;
        return i + n + 4 + 8 * n_dims + 4;
      }
  g_assert_not_reached ();
}

static void
test_bad_truncated (void)
{
  g_autoptr(GBytes) bytes = fixture_gguf_bytes ();
  g_autoptr(GError) error = NULL;
  gsize len;
  const guint8 *data = g_bytes_get_data (bytes, &len);
  g_autoptr(BlGguf) whole = bl_gguf_new_from_data (data, len, "whole", &error);
  const BlGgufTensorInfo *last;

  g_assert_no_error (error);
  last = bl_gguf_get_tensor_at (whole, bl_gguf_get_n_tensors (whole) - 1);

  /* in the tensor data, in the last tensor info, in the metadata (where the counts already
   * claim more than the bytes left can hold) and in the header */
  check_load_error (data, len - 100, "truncated-data.gguf", BL_ERROR_CORRUPT_FILE, "but the file ends at");
  check_load_error (data, tensor_field (bytes, last->name, -1) + 3, "truncated-infos.gguf",
                    BL_ERROR_CORRUPT_FILE, "truncated at byte");
  check_load_error (data, 200, "truncated-kv.gguf", BL_ERROR_CORRUPT_FILE, "bytes can hold");
  check_load_error (data, 6, "truncated-header.gguf", BL_ERROR_CORRUPT_FILE, "truncated at byte 4");
}

static void
test_bad_tensor_offset (void)
{
  g_autoptr(GBytes) bytes = fixture_gguf_bytes ();
  gsize len = g_bytes_get_size (bytes);
  g_autofree guint8 *data = g_memdup2 (g_bytes_get_data (bytes, NULL), len);
  gsize at = tensor_field (bytes, "blk.1.ffn_down.weight", -1);
  guint64 lie = GUINT64_TO_LE ((guint64) 1 << 40);
  guint64 ne;

  memcpy (data + at, &lie, 8);
  check_load_error (data, len, "lying-offset.gguf", BL_ERROR_CORRUPT_FILE,
                    "tensor “blk.1.ffn_down.weight” needs bytes");

  /* a size that runs into the next tensor */
  memcpy (data, g_bytes_get_data (bytes, NULL), len);
  at = tensor_field (bytes, "token_embd.weight", 1);
  memcpy (&ne, data + at, 8);
  ne = GUINT64_TO_LE (GUINT64_FROM_LE (ne) + 1);
  memcpy (data + at, &ne, 8);
  check_load_error (data, len, "lying-size.gguf", BL_ERROR_CORRUPT_FILE, "overlap");

  /* a size that fits the file but not the metadata */
  memcpy (data, g_bytes_get_data (bytes, NULL), len);
  at = tensor_field (bytes, "output_norm.weight", 0);
  memcpy (&ne, data + at, 8);
  ne = GUINT64_TO_LE (GUINT64_FROM_LE (ne) - 8);
  memcpy (data + at, &ne, 8);
  check_load_error (data, len, "lying-shape.gguf", BL_ERROR_CORRUPT_FILE,
                    "tensor “model.norm.weight” (GGUF “output_norm.weight”) has shape [32], but "
                    "the metadata implies [40]");
}

static void
write_minimal (const char *path,
               const char *arch,
               const char *tensor)
{
  g_autoptr(BlGgufWriter) w = bl_gguf_writer_new (BL_GGUF_DEFAULT_ALIGNMENT);
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) data = g_bytes_new_take (g_new0 (float, 64), 64 * sizeof (float));
  gint64 ne[2] = { 8, 8 };
  g_autofree char *key = NULL;

  if (arch != NULL)
    bl_gguf_writer_add_string (w, "general.architecture", arch);
  key = g_strconcat (arch != NULL ? arch : "x", ".block_count", NULL);
  bl_gguf_writer_add_uint32 (w, key, 1);
  g_clear_pointer (&key, g_free);
  key = g_strconcat (arch != NULL ? arch : "x", ".embedding_length", NULL);
  bl_gguf_writer_add_uint32 (w, key, 8);
  g_clear_pointer (&key, g_free);
  key = g_strconcat (arch != NULL ? arch : "x", ".feed_forward_length", NULL);
  bl_gguf_writer_add_uint32 (w, key, 8);
  g_clear_pointer (&key, g_free);
  key = g_strconcat (arch != NULL ? arch : "x", ".attention.head_count", NULL);
  bl_gguf_writer_add_uint32 (w, key, 2);
  g_clear_pointer (&key, g_free);
  key = g_strconcat (arch != NULL ? arch : "x", ".attention.layer_norm_rms_epsilon", NULL);
  bl_gguf_writer_add_float32 (w, key, 1e-5f);
  g_assert_true (bl_gguf_writer_add_tensor (w, "token_embd.weight", BL_GGML_TYPE_F32, 2, ne, data, &error));
  if (tensor != NULL)
    g_assert_true (bl_gguf_writer_add_tensor (w, tensor, BL_GGML_TYPE_F32, 2, ne, data, &error));
  g_assert_no_error (error);
  g_assert_true (bl_gguf_writer_write (w, path, NULL, &error));
  g_assert_no_error (error);
}

static void
check_minimal_error (const char *name,
                     const char *arch,
                     const char *tensor,
                     int         code,
                     const char *needle)
{
  g_autofree char *path = tmp_path (name);
  g_autoptr(GError) error = NULL;
  g_autoptr(BlModel) model = NULL;

  write_minimal (path, arch, tensor);
  model = bl_model_load (path, NULL, &error);
  g_assert_null (model);
  g_assert_error (error, BL_ERROR, code);
  g_test_message ("%s: %s", name, error->message);
  g_assert_nonnull (strstr (error->message, path));
  if (strstr (error->message, needle) == NULL)
    g_error ("message “%s” lacks “%s”", error->message, needle);
}

static void
test_bad_architecture (void)
{
  check_minimal_error ("arch-gpt2.gguf", "gpt2", NULL, BL_ERROR_UNSUPPORTED_ARCHITECTURE,
                       "GGUF architecture “gpt2” is not supported");
  check_minimal_error ("arch-none.gguf", NULL, NULL, BL_ERROR_CORRUPT_FILE,
                       "“general.architecture” is missing");
  /* a matrix where Llama 3's per-frequency RoPE divisors belong */
  check_minimal_error ("arch-rope-freqs.gguf", "llama", "rope_freqs.weight", BL_ERROR_CORRUPT_FILE,
                       "tensor “rope_freqs.weight” (absolute offset 704) is not 2 F32 factors, "
                       "one per RoPE frequency of head_dim 4");
  check_minimal_error ("arch-block-range.gguf", "llama", "blk.1.attn_q.weight",
                       BL_ERROR_UNSUPPORTED_ARCHITECTURE, "with 1 blocks");
  /* llama needs the projections of block 0 */
  check_minimal_error ("arch-missing.gguf", "llama", NULL, BL_ERROR_CORRUPT_FILE,
                       "tensor “model.norm.weight” (GGUF “output_norm.weight”) is missing");
}

/* A regular file that is not GGUF keeps the directory error. */
static void
test_not_gguf (void)
{
  g_autofree char *path = tmp_path ("plain.txt");
  g_autoptr(GError) error = NULL;
  g_autoptr(BlModel) model = NULL;

  g_assert_true (g_file_set_contents (path, "GGU", 3, &error));
  model = bl_model_load (path, NULL, &error);
  g_assert_null (model);
  g_assert_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, "or a GGUF file"));
}

/* K-quants */

/* A one-block Llama of K-quant projections, as llama-quantize's Q4_K_M mixes them (Q6_K
 * for attn_v, ffn_down and output, Q4_K elsewhere), with hidden size 256 so that a row is
 * one super-block. The blocks are random bytes under a small random d (and dmin), so every
 * bit field of the format is exercised and the weights stay of modest size. */
typedef struct
{
  const char *name;
  BlGgmlType type;
  gint64 ne[2];
} KTensor;

static const KTensor k_tensors[] = {
  { "token_embd.weight", BL_GGML_TYPE_F32, { 256, 32 } },
  { "output_norm.weight", BL_GGML_TYPE_F32, { 256, 1 } },
  { "output.weight", BL_GGML_TYPE_Q6_K, { 256, 32 } },
  { "blk.0.attn_norm.weight", BL_GGML_TYPE_F32, { 256, 1 } },
  { "blk.0.ffn_norm.weight", BL_GGML_TYPE_F32, { 256, 1 } },
  { "blk.0.attn_q.weight", BL_GGML_TYPE_Q4_K, { 256, 256 } },
  { "blk.0.attn_k.weight", BL_GGML_TYPE_Q4_K, { 256, 128 } },
  { "blk.0.attn_v.weight", BL_GGML_TYPE_Q6_K, { 256, 128 } },
  { "blk.0.attn_output.weight", BL_GGML_TYPE_Q4_K, { 256, 256 } },
  { "blk.0.ffn_gate.weight", BL_GGML_TYPE_Q4_K, { 256, 512 } },
  { "blk.0.ffn_down.weight", BL_GGML_TYPE_Q6_K, { 512, 256 } },
  { "blk.0.ffn_up.weight", BL_GGML_TYPE_Q4_K, { 256, 512 } },
};

static GBytes *
k_tensor_data (const KTensor *t,
               GRand         *rand)
{
  gint64 n = t->ne[0] * t->ne[1];
  gsize size = bl_ggml_row_size (t->type, n);
  guint8 *data = g_malloc (size);

  if (t->type == BL_GGML_TYPE_F32)
    {
      float *f = (float *) data;

      /* norms near 1, embeddings of unit scale */
      for (gint64 i = 0; i < n; i++)
        f[i] = (float) (t->ne[1] == 1 ? g_rand_double_range (rand, 0.5, 1.5)
                                      : g_rand_double_range (rand, -1.0, 1.0));
      return g_bytes_new_take (data, size);
    }
  for (gsize i = 0; i < size; i++)
    data[i] = (guint8) g_rand_int_range (rand, 0, 256);
  for (gsize b = 0; b < size; b += bl_ggml_type_get_traits (t->type)->type_size)
    if (t->type == BL_GGML_TYPE_Q4_K)
      {
        BlBlockQ4_K *q = (BlBlockQ4_K *) (data + b);

        /* d·sc·q reaches 63·15·d, dmin·m reaches 63·dmin */
        q->d = bl_f16_encode ((float) g_rand_double_range (rand, -2e-4, 2e-4));
        q->dmin = bl_f16_encode ((float) g_rand_double_range (rand, -1e-3, 1e-3));
      }
    else
      {
        BlBlockQ6_K *q = (BlBlockQ6_K *) (data + b);

        /* d·sc·(q − 32) reaches 128·32·d */
        q->d = bl_f16_encode ((float) g_rand_double_range (rand, -2e-5, 2e-5));
      }
  return g_bytes_new_take (data, size);
}

/* The K-quant model, its last tensor (blk.0.ffn_up.weight, Q4_K) last in the file too */
static GBytes *
k_quant_gguf (BlGgmlType v_type)
{
  g_autoptr(BlGgufWriter) w = bl_gguf_writer_new (BL_GGUF_DEFAULT_ALIGNMENT);
  g_autoptr(GRand) rand = g_rand_new_with_seed (12);
  g_autoptr(GError) error = NULL;

  bl_gguf_writer_add_string (w, "general.architecture", "llama");
  bl_gguf_writer_add_uint32 (w, "llama.block_count", 1);
  bl_gguf_writer_add_uint32 (w, "llama.context_length", 64);
  bl_gguf_writer_add_uint32 (w, "llama.embedding_length", 256);
  bl_gguf_writer_add_uint32 (w, "llama.feed_forward_length", 512);
  bl_gguf_writer_add_uint32 (w, "llama.attention.head_count", 4);
  bl_gguf_writer_add_uint32 (w, "llama.attention.head_count_kv", 2);
  bl_gguf_writer_add_float32 (w, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
  for (gsize i = 0; i < G_N_ELEMENTS (k_tensors); i++)
    {
      KTensor t = k_tensors[i];
      g_autoptr(GBytes) data = NULL;

      if (g_str_equal (t.name, "blk.0.attn_v.weight"))
        t.type = v_type;
      if (t.type == BL_GGML_TYPE_Q4_K || t.type == BL_GGML_TYPE_Q6_K || t.type == BL_GGML_TYPE_F32)
        data = k_tensor_data (&t, rand);
      else
        data = g_bytes_new_take (g_malloc0 (bl_ggml_row_size (t.type, t.ne[0] * t.ne[1])),
                                 bl_ggml_row_size (t.type, t.ne[0] * t.ne[1]));
      g_assert_true (bl_gguf_writer_add_tensor (w, t.name, t.type, t.ne[1] == 1 ? 1 : 2, t.ne,
                                                data, &error));
      g_assert_no_error (error);
    }
  return bl_gguf_writer_to_bytes (w);
}

/* Q4_K and Q6_K projections load as their ggml dequantization, attn_q and attn_k with
 * llama.cpp's RoPE row permutation undone after decoding, and the model runs. */
static void
test_k_quants (void)
{
  g_autoptr(GBytes) bytes = k_quant_gguf (BL_GGML_TYPE_Q6_K);
  g_autofree char *path = tmp_path ("k-quants.gguf");
  g_autoptr(GError) error = NULL;
  g_autoptr(BlModel) model = NULL;
  g_autoptr(BlGguf) file = NULL;
  g_autoptr(BlBackend) backend = NULL;
  g_autoptr(BlEngine) engine = NULL;
  const BlModelConfig *c;
  int32_t ids[6] = { 1, 7, 31, 0, 12, 5 };
  int n = G_N_ELEMENTS (ids);
  g_autofree float *logits = NULL;
  guint n_permuted = 0;
  double max_abs = 0.0;

  g_assert_true (g_file_set_contents (path, g_bytes_get_data (bytes, NULL),
                                      (gssize) g_bytes_get_size (bytes), &error));
  model = load (path);
  file = bl_gguf_open (path, &error);
  g_assert_no_error (error);
  c = bl_model_get_config (model);
  g_assert_cmpint (c->hidden_size, ==, 256);
  g_assert_cmpint (c->intermediate_size, ==, 512);
  g_assert_cmpint (c->n_kv_heads, ==, 2);
  g_test_message ("storage: %s", bl_model_get_storage (model));
  g_assert_cmpstr (bl_model_get_storage (model), ==,
                   "GGUF: f32 ×4, q4_K ×5 (dequantized to F32), q6_K ×3 (dequantized to F32)");

  g_assert_cmpuint (bl_model_get_n_tensors (model), ==, bl_gguf_get_n_tensors (file));
  for (guint i = 0; i < bl_gguf_get_n_tensors (file); i++)
    {
      const BlGgufTensorInfo *ti = bl_gguf_get_tensor_at (file, i);
      const BlTensor *t = bl_model_get_tensor_at (model, i);
      gint64 rows = ti->ne[1], cols = ti->ne[0];
      g_autofree float *decoded = NULL, *want = NULL;
      int n_head = 0;

      if (ti->type == BL_GGML_TYPE_F32)
        continue;
      decoded = g_new (float, rows * cols);
      want = g_new (float, rows * cols);
      for (gint64 r = 0; r < rows; r++)
        g_assert_true (bl_ggml_dequantize_row (ti->type, ti->data + r * bl_ggml_row_size (ti->type, cols),
                                               decoded + r * cols, cols));
      if (strstr (ti->name, ".attn_q.") != NULL)
        n_head = c->n_heads;
      else if (strstr (ti->name, ".attn_k.") != NULL)
        n_head = c->n_kv_heads;
      if (n_head > 0)
        {
          bl_export_gguf_permute_rows (decoded, want, rows, cols, n_head, TRUE);
          /* the permutation moves rows: the loaded tensor is not the decoded one as stored */
          g_assert_true (memcmp (want, decoded, (gsize) (rows * cols) * sizeof (float)) != 0);
          n_permuted++;
        }
      else
        memcpy (want, decoded, (gsize) (rows * cols) * sizeof (float));
      g_assert_cmpint (t->dtype, ==, BL_DTYPE_F32);
      g_assert_cmpint (t->shape[0], ==, rows);
      g_assert_cmpint (t->shape[1], ==, cols);
      g_assert_cmpmem (t->data, t->n_bytes, want, (gsize) (rows * cols) * sizeof (float));
    }
  g_assert_cmpuint (n_permuted, ==, 2);

  backend = bl_backend_new ("cpu", 1, &error);
  g_assert_no_error (error);
  engine = bl_engine_new (model, backend, NULL, &error);
  g_assert_no_error (error);
  logits = g_new (float, (gsize) n * c->vocab_size);
  g_assert_true (bl_engine_forward (engine, ids, n, logits, NULL, &error));
  g_assert_no_error (error);
  for (gsize i = 0; i < (gsize) n * c->vocab_size; i++)
    {
      g_assert_true (isfinite (logits[i]));
      max_abs = MAX (max_abs, fabs ((double) logits[i]));
    }
  g_test_message ("largest |logit| %.4g", max_abs);
  g_assert_cmpfloat (max_abs, >, 0.0);
}

/* A Q4_K tensor cut short, and a type Bitlens does not decode, are clear errors. */
static void
test_bad_k_quants (void)
{
  g_autoptr(GBytes) bytes = k_quant_gguf (BL_GGML_TYPE_Q6_K);
  g_autoptr(GBytes) iq = k_quant_gguf ((BlGgmlType) 20);   /* iq4_nl */
  g_autoptr(GError) error = NULL;
  gsize len;
  const guint8 *data = g_bytes_get_data (bytes, &len);
  g_autoptr(BlGguf) whole = bl_gguf_new_from_data (data, len, "whole", &error);
  const BlGgufTensorInfo *up;

  g_assert_no_error (error);
  up = bl_gguf_get_tensor_at (whole, bl_gguf_get_n_tensors (whole) - 1);
  g_assert_cmpstr (up->name, ==, "blk.0.ffn_up.weight");
  g_assert_cmpuint (up->type, ==, BL_GGML_TYPE_Q4_K);
  /* one byte short of its last super-block */
  check_load_error (data, up->file_offset + up->n_bytes - 1, "truncated-q4_K.gguf",
                    BL_ERROR_CORRUPT_FILE, "tensor “blk.0.ffn_up.weight” needs bytes");
  check_load_error (g_bytes_get_data (iq, NULL), g_bytes_get_size (iq), "iq4_nl.gguf",
                    BL_ERROR_UNSUPPORTED_FORMAT, "tensor “blk.0.attn_v.weight” has type iq4_nl");
}

static void
remove_tree (const char *dir)
{
  g_autoptr(GDir) d = g_dir_open (dir, 0, NULL);
  const char *name;

  while (d != NULL && (name = g_dir_read_name (d)) != NULL)
    {
      g_autofree char *path = g_build_filename (dir, name, NULL);

      if (g_file_test (path, G_FILE_TEST_IS_DIR))
        remove_tree (path);
      else
        g_unlink (path);
    }
  g_rmdir (dir);
}

int
main (int    argc,
      char **argv)
{
  g_autoptr(GError) error = NULL;
  int status;

  g_test_init (&argc, &argv, NULL);
  tmp_dir = g_dir_make_tmp ("bitlens-model-gguf-XXXXXX", &error);
  g_assert_no_error (error);

  g_test_add_data_func ("/bitlens/model-gguf/float/llama-tied-bf16", "llama-tied-bf16", test_fixture_float);
  g_test_add_data_func ("/bitlens/model-gguf/float/llama-bias-f16", "llama-bias-f16", test_fixture_float);
  g_test_add_data_func ("/bitlens/model-gguf/float/qwen2-gqa", "qwen2-gqa", test_fixture_float);
  g_test_add_data_func ("/bitlens/model-gguf/float/llama3-rope", "llama3-rope", test_fixture_float);
  g_test_add_data_func ("/bitlens/model-gguf/float/llama-linear-rope", "llama-linear-rope",
                        test_fixture_float);
  g_test_add_func ("/bitlens/model-gguf/sliding-window-note", test_sliding_window_note);
  g_test_add_func ("/bitlens/model-gguf/bad/rope-freqs", test_bad_rope_freqs);
  g_test_add_func ("/bitlens/model-gguf/float/stories260k", test_stories_float);
  g_test_add_data_func ("/bitlens/model-gguf/blocks/llama-tied-bf16", "llama-tied-bf16", test_fixture_blocks);
  g_test_add_data_func ("/bitlens/model-gguf/blocks/llama-bias-f16", "llama-bias-f16", test_fixture_blocks);
  g_test_add_data_func ("/bitlens/model-gguf/blocks/qwen2-gqa", "qwen2-gqa", test_fixture_blocks);
  g_test_add_func ("/bitlens/model-gguf/blocks/stories260k", test_stories_blocks);
  g_test_add_func ("/bitlens/model-gguf/tokenizer/stories260k", test_stories_tokenizer);
  g_test_add_func ("/bitlens/model-gguf/tokenizer/stories260k-merges", test_stories_tokenizer_merges);
  g_test_add_func ("/bitlens/model-gguf/tokenizer/byte-level", test_byte_level_tokenizers);
  g_test_add_func ("/bitlens/model-gguf/tokenizer/exported-byte-level", test_exported_byte_level);
  g_test_add_func ("/bitlens/model-gguf/tokenizer/unknown-pre", test_unknown_pre_tokenizer);
  g_test_add_func ("/bitlens/model-gguf/tokenizer/beside", test_tokenizer_beside);
  g_test_add_func ("/bitlens/model-gguf/k-quants", test_k_quants);
  g_test_add_func ("/bitlens/model-gguf/bad/truncated", test_bad_truncated);
  g_test_add_func ("/bitlens/model-gguf/bad/k-quants", test_bad_k_quants);
  g_test_add_func ("/bitlens/model-gguf/bad/tensor-offset", test_bad_tensor_offset);
  g_test_add_func ("/bitlens/model-gguf/bad/architecture", test_bad_architecture);
  g_test_add_func ("/bitlens/model-gguf/bad/not-gguf", test_not_gguf);

  status = g_test_run ();
  remove_tree (tmp_dir);
  g_free (tmp_dir);
  return status;
}
