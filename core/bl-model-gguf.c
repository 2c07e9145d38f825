/* bl-model-gguf.c: a Llama or Qwen2 model read from a GGUF file
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * This undoes what llama.cpp's convert_hf_to_gguf.py (and Bitlens's own exporter,
 * bl-export-gguf.c) does to a Hugging Face directory, so that the rest of Bitlens sees the
 * model it would have loaded from that directory:
 *
 *   - the {arch}.* hyperparameters become the config.json they were written from, read by
 *     bl_model_config_new_from_data() and so validated like any config.json;
 *   - the tensors get their Hugging Face names back (gguf-py tensor_mapping.py) and their
 *     shape order (GGUF lists ne[0], the contiguous dimension, first);
 *   - Llama's attn_q and attn_k rows go back from llama.cpp's interleaved RoPE pairs to the
 *     Hugging Face rotate-half layout (the inverse of LlamaModel.permute, see
 *     bl_export_gguf_permute_rows());
 *   - F32, F16 and BF16 tensors stay in the mapped file, except permuted ones, which are
 *     copied; block-quantized tensors (Q4_0 … Q8_0, MXFP4 and the K-quants Q2_K … Q6_K) are
 *     decoded to F32 with ggml's dequantize_row_* (bl_ggml_dequantize_row()), so the model
 *     evaluates exactly the weights llama.cpp would; the q/k rows are un-permuted after
 *     decoding (blocks run along a row, so rows move whole);
 *   - tokenizer.ggml.* becomes the tokenizer.json that describes the same tokenizer, read by
 *     bl_tokenizer_new_from_data() (see build_tokenizer_json()).
 */
#include "bl-model-gguf-private.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include <glib/gstdio.h>

#include "bl-error.h"
#include "bl-gguf-quants.h"
#include "bl-json-private.h"
#include "bl-model-config.h"
#include "bl-sha256.h"

/* Hashing reads the mapping in slices so that a cancel is noticed within one slice. */
#define FINGERPRINT_SLICE (64 * 1024 * 1024)

/* llama.cpp's enum llama_token_type (gguf-py TokenType) */
#define TOKEN_NORMAL 1
#define TOKEN_UNKNOWN 2
#define TOKEN_CONTROL 3
#define TOKEN_USER_DEFINED 4
#define TOKEN_UNUSED 5

/**
 * bl_model_gguf_sniff:
 * @path: a path
 *
 * Returns: whether @path is a regular file that starts with the GGUF magic
 */
gboolean
bl_model_gguf_sniff (const char *path)
{
  char magic[4];
  gboolean is_gguf;
  FILE *f;

  if (!g_file_test (path, G_FILE_TEST_IS_REGULAR))
    return FALSE;
  f = g_fopen (path, "rb");
  if (f == NULL)
    return FALSE;
  is_gguf = fread (magic, 1, 4, f) == 4 && memcmp (magic, "GGUF", 4) == 0;
  fclose (f);
  return is_gguf;
}

/**
 * bl_model_gguf_clear:
 * @parts: parts filled by bl_model_gguf_read()
 *
 * Frees what @parts still owns; a caller that takes a part sets it to %NULL first.
 */
void
bl_model_gguf_clear (BlModelGguf *parts)
{
  g_clear_pointer (&parts->config, bl_model_config_free);
  g_clear_pointer (&parts->tensors, bl_safetensors_unref);
  g_clear_object (&parts->tokenizer);
  g_clear_pointer (&parts->tokenizer_source, g_free);
  g_clear_pointer (&parts->fingerprint, g_free);
  g_clear_pointer (&parts->storage, g_free);
}

/* Config */

/* The shortest decimal that rounds to @f. GGUF stores rms_norm_eps as a float32, so 1e-5
 * comes back as 9.99999974738e-06; config.json said 1e-05, which is what this returns. */
static double
shortest_double (float f)
{
  for (int digits = 1; digits <= 9; digits++)
    {
      char fmt[8];
      char buf[G_ASCII_DTOSTR_BUF_SIZE];
      double d;

      g_snprintf (fmt, sizeof fmt, "%%.%dg", digits);
      d = g_ascii_strtod (g_ascii_formatd (buf, sizeof buf, fmt, f), NULL);
      if ((float) d == f)
        return d;
    }
  return f;
}

/* An unsigned metadata value (llama.cpp writes uint32; a signed one that is not negative
 * is taken too). */
static gboolean
get_count (BlGguf      *gguf,
           const char  *key,
           guint64     *out)
{
  gint64 i;

  if (bl_gguf_get_uint (gguf, key, out))
    return TRUE;
  if (bl_gguf_get_int (gguf, key, &i) && i >= 0)
    {
      *out = (guint64) i;
      return TRUE;
    }
  return FALSE;
}

static gboolean
require_count (BlGguf      *gguf,
               const char  *arch,
               const char  *suffix,
               guint64     *out,
               GError     **error)
{
  g_autofree char *key = g_strconcat (arch, ".", suffix, NULL);

  if (get_count (gguf, key, out) && *out >= 1 && *out <= G_MAXINT)
    return TRUE;
  g_set_error (error, BL_ERROR, BL_ERROR_CORRUPT_FILE,
               "%s: metadata “%s” is missing or not a positive integer; a %s model needs it",
               bl_gguf_get_filename (gguf), key, arch);
  return FALSE;
}

static gboolean
optional_count (BlGguf      *gguf,
                const char  *arch,
                const char  *suffix,
                guint64     *out)
{
  g_autofree char *key = g_strconcat (arch, ".", suffix, NULL);

  return get_count (gguf, key, out);
}

static gboolean
optional_float (BlGguf      *gguf,
                const char  *arch,
                const char  *suffix,
                double      *out)
{
  g_autofree char *key = g_strconcat (arch, ".", suffix, NULL);
  double d;

  if (!bl_gguf_get_float (gguf, key, &d))
    return FALSE;
  *out = shortest_double ((float) d);
  return TRUE;
}

static void
add_int (JsonBuilder *b,
         const char  *name,
         gint64       value)
{
  json_builder_set_member_name (b, name);
  json_builder_add_int_value (b, value);
}

static void
add_bool (JsonBuilder *b,
          const char  *name,
          gboolean     value)
{
  json_builder_set_member_name (b, name);
  json_builder_add_boolean_value (b, value);
}

/* The config.json that convert_hf_to_gguf.py read to write {arch}.* (its
 * TextModel.set_gguf_parameters and LlamaModel/Qwen2Model.set_gguf_parameters). */
static BlModelConfig *
read_config (BlGguf      *gguf,
             const char  *arch,
             GError     **error)
{
  const char *file = bl_gguf_get_filename (gguf);
  const BlGgufTensorInfo *embd = bl_gguf_find_tensor (gguf, "token_embd.weight");
  g_autoptr(JsonBuilder) b = json_builder_new ();
  g_autoptr(JsonGenerator) gen = json_generator_new ();
  g_autoptr(JsonNode) root = NULL;
  g_autofree char *json = NULL;
  g_autofree char *source = NULL;
  g_autofree char *scaling_key = g_strconcat (arch, ".rope.scaling.type", NULL);
  g_autofree char *scaling = bl_gguf_get_string (gguf, scaling_key);
  gboolean llama = g_str_equal (arch, "llama");
  guint64 n_layers, hidden, inter, n_heads, n_kv_heads, head_dim, value_dim, rope_dim, ctx, n;
  double eps, theta = 10000.0, factor = 0.0;
  gsize len;

  if (optional_count (gguf, arch, "expert_count", &n) && n > 0)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_UNSUPPORTED_ARCHITECTURE,
                   "%s: a %s mixture of experts (%s.expert_count %" G_GUINT64_FORMAT "); Bitlens "
                   "reads dense llama and qwen2 GGUF files", file, arch, arch, n);
      return NULL;
    }
  if (scaling != NULL && !g_str_equal (scaling, "none") && !g_str_equal (scaling, "linear"))
    {
      g_set_error (error, BL_ERROR, BL_ERROR_UNSUPPORTED_ARCHITECTURE,
                   "%s: %s is “%s”; Bitlens implements none and linear RoPE scaling (and "
                   "Llama 3's, from a rope_freqs tensor)", file, scaling_key, scaling);
      return NULL;
    }
  if (scaling != NULL && g_str_equal (scaling, "linear") &&
      !(optional_float (gguf, arch, "rope.scaling.factor", &factor) && factor > 0.0))
    {
      g_set_error (error, BL_ERROR, BL_ERROR_CORRUPT_FILE,
                   "%s: linear RoPE scaling without a positive %s.rope.scaling.factor", file, arch);
      return NULL;
    }
  if (embd == NULL || embd->n_dims != 2)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_CORRUPT_FILE,
                   "%s: tensor “token_embd.weight” is missing or not a matrix", file);
      return NULL;
    }
  if (!require_count (gguf, arch, "block_count", &n_layers, error)
      || !require_count (gguf, arch, "embedding_length", &hidden, error)
      || !require_count (gguf, arch, "feed_forward_length", &inter, error)
      || !require_count (gguf, arch, "attention.head_count", &n_heads, error))
    return NULL;
  {
    g_autofree char *key = g_strconcat (arch, ".attention.layer_norm_rms_epsilon", NULL);

    if (!optional_float (gguf, arch, "attention.layer_norm_rms_epsilon", &eps))
      {
        g_set_error (error, BL_ERROR, BL_ERROR_CORRUPT_FILE,
                     "%s: metadata “%s” is missing or not a float", file, key);
        return NULL;
      }
  }
  optional_float (gguf, arch, "rope.freq_base", &theta);
  if (!optional_count (gguf, arch, "attention.head_count_kv", &n_kv_heads))
    n_kv_heads = n_heads;
  if (!optional_count (gguf, arch, "attention.key_length", &head_dim))
    head_dim = hidden / n_heads;
  if (!optional_count (gguf, arch, "attention.value_length", &value_dim))
    value_dim = head_dim;
  if (!optional_count (gguf, arch, "rope.dimension_count", &rope_dim))
    rope_dim = head_dim;
  if (value_dim != head_dim || rope_dim != head_dim)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_UNSUPPORTED_ARCHITECTURE,
                   "%s: key length %" G_GUINT64_FORMAT ", value length %" G_GUINT64_FORMAT
                   " and RoPE dimensions %" G_GUINT64_FORMAT " differ; Bitlens runs attention "
                   "with one head size, all of it rotated", file, head_dim, value_dim, rope_dim);
      return NULL;
    }
  if (!optional_count (gguf, arch, "context_length", &ctx))
    ctx = 2048;

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "model_type");
  json_builder_add_string_value (b, arch);
  json_builder_set_member_name (b, "architectures");
  json_builder_begin_array (b);
  json_builder_add_string_value (b, llama ? "LlamaForCausalLM" : "Qwen2ForCausalLM");
  json_builder_end_array (b);
  add_int (b, "vocab_size", embd->ne[1]);
  add_int (b, "hidden_size", (gint64) hidden);
  add_int (b, "intermediate_size", (gint64) inter);
  add_int (b, "num_hidden_layers", (gint64) n_layers);
  add_int (b, "num_attention_heads", (gint64) n_heads);
  add_int (b, "num_key_value_heads", (gint64) n_kv_heads);
  add_int (b, "head_dim", (gint64) head_dim);
  add_int (b, "max_position_embeddings", (gint64) MIN (ctx, (guint64) G_MAXINT));
  json_builder_set_member_name (b, "rms_norm_eps");
  json_builder_add_double_value (b, eps);
  json_builder_set_member_name (b, "rope_theta");
  json_builder_add_double_value (b, theta);
  if (factor > 0.0)
    {
      json_builder_set_member_name (b, "rope_scaling");
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "rope_type");
      json_builder_add_string_value (b, "linear");
      json_builder_set_member_name (b, "factor");
      json_builder_add_double_value (b, factor);
      json_builder_end_object (b);
    }
  /* llama.cpp uses the embedding as the output layer when output.weight is absent
   * (llama-model.cpp, LLM_ARCH_LLAMA: TENSOR_DUPLICATED) */
  add_bool (b, "tie_word_embeddings", bl_gguf_find_tensor (gguf, "output.weight") == NULL);
  if (llama)
    {
      /* LlamaConfig's attention_bias covers q, k, v and o; mlp_bias all three MLP projections */
      add_bool (b, "attention_bias", bl_gguf_find_tensor (gguf, "blk.0.attn_q.bias") != NULL);
      add_bool (b, "mlp_bias", bl_gguf_find_tensor (gguf, "blk.0.ffn_gate.bias") != NULL);
    }
  if (get_count (gguf, "tokenizer.ggml.bos_token_id", &n) && n <= G_MAXINT32)
    add_int (b, "bos_token_id", (gint64) n);
  if (get_count (gguf, "tokenizer.ggml.eos_token_id", &n) && n <= G_MAXINT32)
    add_int (b, "eos_token_id", (gint64) n);
  json_builder_end_object (b);

  root = json_builder_get_root (b);
  json_generator_set_root (gen, root);
  json = json_generator_to_data (gen, &len);
  source = g_strdup_printf ("%s (its %s.* metadata as config.json)", file, arch);
  return bl_model_config_new_from_data (json, len, source, error);
}

/* Tensors */

/* llama.cpp's tensor names back to Hugging Face's (gguf-py tensor_mapping.py), the
 * inverse of bl_export_gguf_tensor_name(). A block number must be below @n_layers. */
static char *
hf_tensor_name (const char *name,
                int         n_layers)
{
  static const struct { const char *gguf, *hf; } block_parts[] = {
    { "attn_q", "self_attn.q_proj" }, { "attn_k", "self_attn.k_proj" },
    { "attn_v", "self_attn.v_proj" }, { "attn_output", "self_attn.o_proj" },
    { "ffn_gate", "mlp.gate_proj" }, { "ffn_up", "mlp.up_proj" },
    { "ffn_down", "mlp.down_proj" }, { "attn_norm", "input_layernorm" },
    { "ffn_norm", "post_attention_layernorm" },
  };
  const char *p;
  guint64 block = 0;

  if (g_str_equal (name, "token_embd.weight"))
    return g_strdup ("model.embed_tokens.weight");
  if (g_str_equal (name, "output_norm.weight"))
    return g_strdup ("model.norm.weight");
  if (g_str_equal (name, "output.weight"))
    return g_strdup ("lm_head.weight");
  if (!g_str_has_prefix (name, "blk."))
    return NULL;
  p = name + strlen ("blk.");
  if (!g_ascii_isdigit (*p))
    return NULL;
  for (; g_ascii_isdigit (*p); p++)
    {
      block = block * 10 + (guint64) (*p - '0');
      if (block >= (guint64) n_layers)
        return NULL;
    }
  if (*p++ != '.')
    return NULL;
  for (guint i = 0; i < G_N_ELEMENTS (block_parts); i++)
    {
      gsize n = strlen (block_parts[i].gguf);

      if (strncmp (p, block_parts[i].gguf, n) == 0
          && (g_str_equal (p + n, ".weight") || g_str_equal (p + n, ".bias")))
        return g_strdup_printf ("model.layers.%" G_GUINT64_FORMAT ".%s%s", block,
                                block_parts[i].hf, p + n);
    }
  return NULL;
}

/* The inverse of convert_hf_to_gguf.py's LlamaModel.permute (bl_export_gguf_permute_rows()):
 * row h·hd + 2i + j of the file is row h·hd + j·hd/2 + i of the Hugging Face matrix. Rows
 * are moved whole, of any type. */
static void
unpermute_rows (const guint8 *src,
                guint8       *dst,
                gint64        rows,
                gsize         row_bytes,
                gint64        n_head)
{
  gint64 hd = rows / n_head, half = hd / 2;

  for (gint64 h = 0; h < n_head; h++)
    for (gint64 i = 0; i < half; i++)
      for (gint64 j = 0; j < 2; j++)
        memcpy (dst + (gsize) (h * hd + j * half + i) * row_bytes,
                src + (gsize) (h * hd + 2 * i + j) * row_bytes, row_bytes);
}

/* What keeps the tensors' data alive: the mapped file and the decoded copies. */
typedef struct
{
  BlGguf *gguf;
  GPtrArray *buffers;
} Storage;

static void
storage_free (gpointer data)
{
  Storage *s = data;

  g_ptr_array_unref (s->buffers);
  bl_gguf_unref (s->gguf);
  g_free (s);
}

static void
clear_tensor (gpointer data)
{
  g_free (((BlTensor *) data)->name);
}

/* One GGUF tensor as the Hugging Face tensor it was converted from; @t->data points into
 * the file or into a buffer added to @storage. */
static gboolean
convert_tensor (BlGguf                  *gguf,
                const BlGgufTensorInfo  *ti,
                const BlModelConfig     *config,
                gboolean                 llama,
                Storage                 *storage,
                BlTensor                *t,
                gboolean                *dequantized,
                GError                 **error)
{
  const char *file = bl_gguf_get_filename (gguf);
  g_autofree float *decoded = NULL;
  const guint8 *src = ti->data;
  gint64 rows = ti->n_dims == 2 ? ti->ne[1] : ti->ne[0];
  gint64 n_head = 0;
  gsize elem;

  t->name = hf_tensor_name (ti->name, config->n_layers);
  if (t->name == NULL)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_UNSUPPORTED_ARCHITECTURE,
                   "%s: tensor “%s” (absolute offset %" G_GUINT64_FORMAT ") has no counterpart "
                   "in a Hugging Face %s model with %d blocks", file, ti->name, ti->file_offset,
                   config->model_type, config->n_layers);
      return FALSE;
    }
  if (ti->n_dims > 2)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_CORRUPT_FILE,
                   "%s: tensor “%s” (absolute offset %" G_GUINT64_FORMAT ") has %u dimensions; "
                   "a weight has at most 2", file, ti->name, ti->file_offset, ti->n_dims);
      return FALSE;
    }
  t->n_dims = (int) ti->n_dims;
  for (int d = 0; d < t->n_dims; d++)
    t->shape[d] = ti->ne[t->n_dims - 1 - d];
  t->n_elements = ti->ne[0] * ti->ne[1];
  t->file_offset = ti->file_offset;
  *dequantized = FALSE;

  switch (ti->type)
    {
    case BL_GGML_TYPE_F32: t->dtype = BL_DTYPE_F32; break;
    case BL_GGML_TYPE_F16: t->dtype = BL_DTYPE_F16; break;
    case BL_GGML_TYPE_BF16: t->dtype = BL_DTYPE_BF16; break;
    default:
      decoded = g_try_new (float, (gsize) t->n_elements);
      if (decoded == NULL)
        {
          g_set_error (error, BL_ERROR, BL_ERROR_OUT_OF_MEMORY,
                       "%s: no memory to decode tensor “%s” (%" G_GINT64_FORMAT " elements)",
                       file, ti->name, t->n_elements);
          return FALSE;
        }
      if (!bl_gguf_tensor_to_f32 (gguf, ti, decoded, error))
        return FALSE;
      t->dtype = BL_DTYPE_F32;
      src = (const guint8 *) decoded;
      *dequantized = TRUE;
    }
  elem = bl_dtype_size (t->dtype);
  t->n_bytes = (size_t) t->n_elements * elem;

  if (llama && (g_str_has_suffix (t->name, ".q_proj.weight") || g_str_has_suffix (t->name, ".q_proj.bias")))
    n_head = config->n_heads;
  else if (llama && (g_str_has_suffix (t->name, ".k_proj.weight") || g_str_has_suffix (t->name, ".k_proj.bias")))
    n_head = config->n_kv_heads;
  if (n_head > 0)
    {
      guint8 *dst;

      if (rows % (2 * n_head) != 0)
        {
          g_set_error (error, BL_ERROR, BL_ERROR_CORRUPT_FILE,
                       "%s: tensor “%s” (absolute offset %" G_GUINT64_FORMAT ") has %" G_GINT64_FORMAT
                       " rows, which %" G_GINT64_FORMAT " heads of even size cannot hold", file,
                       ti->name, ti->file_offset, rows, n_head);
          return FALSE;
        }
      dst = g_try_malloc (t->n_bytes);
      if (dst == NULL)
        {
          g_set_error (error, BL_ERROR, BL_ERROR_OUT_OF_MEMORY,
                       "%s: no memory to reorder tensor “%s”", file, ti->name);
          return FALSE;
        }
      unpermute_rows (src, dst, rows, t->n_bytes / (gsize) rows, n_head);
      g_ptr_array_add (storage->buffers, dst);
      t->data = dst;
    }
  else if (decoded != NULL)
    {
      t->data = (const guint8 *) decoded;
      g_ptr_array_add (storage->buffers, g_steal_pointer (&decoded));
    }
  else
    t->data = src;
  return TRUE;
}

/* "GGUF: q4_0 ×14 (dequantized to F32), f32 ×11", types in ggml's order */
static char *
describe_storage (const guint *counts,
                  const guint *decoded)
{
  GString *s = g_string_new ("GGUF:");
  const char *sep = " ";

  for (guint type = 0; type < BL_GGML_TYPE_COUNT; type++)
    if (counts[type] > 0)
      {
        g_string_append_printf (s, "%s%s ×%u%s", sep, bl_ggml_type_get_traits (type)->name,
                                counts[type], decoded[type] > 0 ? " (dequantized to F32)" : "");
        sep = ", ";
      }
  return g_string_free (s, FALSE);
}

static gboolean
read_tensors (BlGguf               *gguf,
              const BlModelConfig  *config,
              gboolean              llama,
              GCancellable         *cancellable,
              BlModelGguf          *out,
              GError              **error)
{
  Storage *storage = g_new0 (Storage, 1);
  g_autoptr(GArray) tensors = g_array_new (FALSE, TRUE, sizeof (BlTensor));
  guint counts[BL_GGML_TYPE_COUNT] = { 0 };
  guint decoded[BL_GGML_TYPE_COUNT] = { 0 };

  storage->gguf = bl_gguf_ref (gguf);
  storage->buffers = g_ptr_array_new_with_free_func (g_free);
  g_array_set_clear_func (tensors, clear_tensor);
  for (guint i = 0; i < bl_gguf_get_n_tensors (gguf); i++)
    {
      const BlGgufTensorInfo *ti = bl_gguf_get_tensor_at (gguf, i);
      BlTensor t = { 0 };
      gboolean dequantized;

      /* Llama 3's RoPE scaling, read into the config by read_rope_freqs() */
      if (g_str_equal (ti->name, "rope_freqs.weight"))
        continue;
      if (g_cancellable_set_error_if_cancelled (cancellable, error)
          || !convert_tensor (gguf, ti, config, llama, storage, &t, &dequantized, error))
        {
          g_free (t.name);
          storage_free (storage);
          return FALSE;
        }
      g_array_append_val (tensors, t);
      counts[ti->type]++;
      if (dequantized)
        decoded[ti->type]++;
    }
  out->tensors = bl_safetensors_new_from_tensors (bl_gguf_get_filename (gguf),
                                                  (const BlTensor *) tensors->data, tensors->len,
                                                  storage, storage_free);
  out->storage = describe_storage (counts, decoded);
  return TRUE;
}

/* rope_freqs.weight: the divisors llama.cpp applies to each RoPE frequency, which
 * convert_hf_to_gguf.py writes for Llama 3's rope_scaling (1 for the high frequencies,
 * factor for the low ones, 1 / ((1 − s)/factor + s) between). */
static gboolean
read_rope_freqs (BlGguf         *gguf,
                 BlModelConfig  *config,
                 GError        **error)
{
  const BlGgufTensorInfo *ti = bl_gguf_find_tensor (gguf, "rope_freqs.weight");
  int half = config->head_dim / 2;

  if (ti == NULL)
    return TRUE;
  if (ti->type != BL_GGML_TYPE_F32 || ti->n_dims != 1 || ti->ne[0] != half)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_CORRUPT_FILE,
                   "%s: tensor “rope_freqs.weight” (absolute offset %" G_GUINT64_FORMAT ") is "
                   "not %d F32 factors, one per RoPE frequency of head_dim %d",
                   bl_gguf_get_filename (gguf), ti->file_offset, half, config->head_dim);
      return FALSE;
    }
  config->rope_freq_factors = g_new (float, half);
  memcpy (config->rope_freq_factors, ti->data, (gsize) half * sizeof (float));
  for (int j = 0; j < half; j++)
    if (!(config->rope_freq_factors[j] > 0.0f && isfinite (config->rope_freq_factors[j])))
      {
        g_set_error (error, BL_ERROR, BL_ERROR_CORRUPT_FILE,
                     "%s: tensor “rope_freqs.weight” factor %d is %g, not a positive number",
                     bl_gguf_get_filename (gguf), j, config->rope_freq_factors[j]);
        return FALSE;
      }
  return TRUE;
}

/* Tokenizer */

/* The pre-tokenizers llama.cpp names in tokenizer.ggml.pre (llama-vocab.cpp) that Bitlens
 * rebuilds, as the tokenizer.json of the model family writes them. */
typedef enum
{
  PRE_GPT2,       /* GPT-2's regex inside ByteLevel */
  PRE_QWEN2,      /* Qwen2's Split regex, then ByteLevel without a regex; NFC first */
  PRE_SMOLLM,     /* single digits, then GPT-2's ByteLevel */
} PreKind;

static const struct
{
  const char *name;
  PreKind kind;
} pre_names[] = {
  { "gpt-2", PRE_GPT2 },
  { "qwen2", PRE_QWEN2 },
  { "smollm", PRE_SMOLLM },
};

/* Qwen2's pre-tokenizer regex, as its tokenizer.json and llama.cpp's LLAMA_VOCAB_PRE_TYPE_QWEN2 have it */
#define QWEN2_REGEX "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"

static void
add_byte_level (JsonBuilder *b,
                gboolean     use_regex)
{
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "type");
  json_builder_add_string_value (b, "ByteLevel");
  add_bool (b, "add_prefix_space", FALSE);
  add_bool (b, "trim_offsets", TRUE);
  add_bool (b, "use_regex", use_regex);
  json_builder_end_object (b);
}

static void
add_pre_tokenizer (JsonBuilder *b,
                   PreKind      kind)
{
  json_builder_set_member_name (b, "pre_tokenizer");
  if (kind == PRE_GPT2)
    {
      add_byte_level (b, TRUE);
      return;
    }
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "type");
  json_builder_add_string_value (b, "Sequence");
  json_builder_set_member_name (b, "pretokenizers");
  json_builder_begin_array (b);
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "type");
  if (kind == PRE_QWEN2)
    {
      json_builder_add_string_value (b, "Split");
      json_builder_set_member_name (b, "pattern");
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "Regex");
      json_builder_add_string_value (b, QWEN2_REGEX);
      json_builder_end_object (b);
      json_builder_set_member_name (b, "behavior");
      json_builder_add_string_value (b, "Isolated");
      add_bool (b, "invert", FALSE);
    }
  else
    {
      json_builder_add_string_value (b, "Digits");
      add_bool (b, "individual_digits", TRUE);
    }
  json_builder_end_object (b);
  add_byte_level (b, kind == PRE_SMOLLM);
  json_builder_end_array (b);
  json_builder_end_object (b);
}

/* SentencePiece's "▁" and the decoding steps of a Llama tokenizer.json */
#define SPM_SPACE "\xe2\x96\x81"

static void
add_replace (JsonBuilder *b,
             const char  *pattern,
             const char  *content)
{
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "type");
  json_builder_add_string_value (b, "Replace");
  json_builder_set_member_name (b, "pattern");
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "String");
  json_builder_add_string_value (b, pattern);
  json_builder_end_object (b);
  json_builder_set_member_name (b, "content");
  json_builder_add_string_value (b, content);
  json_builder_end_object (b);
}

static void
add_type (JsonBuilder *b,
          const char  *type)
{
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "type");
  json_builder_add_string_value (b, type);
  json_builder_end_object (b);
}

/* Normalizer and decoder of transformers' LlamaConverter (convert_slow_tokenizer.py):
 * prepend "▁" when the model adds a space prefix, spaces become "▁"; decoding undoes both
 * and joins <0xNN> byte pieces. */
static void
add_spm_normalizer_decoder (JsonBuilder *b,
                            gboolean     space_prefix)
{
  json_builder_set_member_name (b, "normalizer");
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "type");
  json_builder_add_string_value (b, "Sequence");
  json_builder_set_member_name (b, "normalizers");
  json_builder_begin_array (b);
  if (space_prefix)
    {
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "type");
      json_builder_add_string_value (b, "Prepend");
      json_builder_set_member_name (b, "prepend");
      json_builder_add_string_value (b, SPM_SPACE);
      json_builder_end_object (b);
    }
  add_replace (b, " ", SPM_SPACE);
  json_builder_end_array (b);
  json_builder_end_object (b);

  json_builder_set_member_name (b, "decoder");
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "type");
  json_builder_add_string_value (b, "Sequence");
  json_builder_set_member_name (b, "decoders");
  json_builder_begin_array (b);
  add_replace (b, SPM_SPACE, " ");
  add_type (b, "ByteFallback");
  add_type (b, "Fuse");
  if (space_prefix)
    {
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "type");
      json_builder_add_string_value (b, "Strip");
      json_builder_set_member_name (b, "content");
      json_builder_add_string_value (b, " ");
      add_int (b, "start", 1);
      add_int (b, "stop", 0);
      json_builder_end_object (b);
    }
  json_builder_end_array (b);
  json_builder_end_object (b);
}

typedef struct
{
  guint piece;
  guint left;
  guint right;
  float score;               /* the score of @piece */
} SpmMerge;

/* Score first, highest first; then the order a stable sort of the per-piece lists keeps:
 * piece id, then (left id, right id). */
static int
compare_spm_merges (gconstpointer a,
                    gconstpointer b)
{
  const SpmMerge *x = a, *y = b;

  if (x->score != y->score)
    return x->score > y->score ? -1 : 1;
  if (x->piece != y->piece)
    return x->piece < y->piece ? -1 : 1;
  if (x->left != y->left)
    return x->left < y->left ? -1 : 1;
  return x->right < y->right ? -1 : x->right > y->right ? 1 : 0;
}

/* The merges of a SentencePiece BPE vocabulary, as transformers' SentencePieceExtractor
 * derives them (convert_slow_tokenizer.py): every split of every piece into two pieces of
 * the vocabulary, the splits of one piece ordered by (left id, right id), and all of them
 * ordered by the merged piece's score, highest first, stably. llama.cpp's SPM tokenizer
 * merges the adjacent pair whose joined piece scores highest, which is the same order.
 * Only normal pieces are merge results: control, byte and unused pieces are never built
 * by merging. */
static GPtrArray *
spm_merges (GStrv         tokens,
            const gint32 *types,
            const float  *scores,
            GHashTable   *ids)
{
  g_autoptr(GArray) merges = g_array_new (FALSE, FALSE, sizeof (SpmMerge));
  GPtrArray *out = g_ptr_array_new_with_free_func (g_free);

  for (guint id = 0; tokens[id] != NULL; id++)
    {
      const char *piece = tokens[id];

      if (piece[0] == '\0' || types[id] != TOKEN_NORMAL
          || GPOINTER_TO_UINT (g_hash_table_lookup (ids, piece)) != id + 1)
        continue;
      for (const char *p = g_utf8_next_char (piece); *p != '\0'; p = g_utf8_next_char (p))
        {
          g_autofree char *left = g_strndup (piece, (gsize) (p - piece));
          guint l = GPOINTER_TO_UINT (g_hash_table_lookup (ids, left));
          guint r = GPOINTER_TO_UINT (g_hash_table_lookup (ids, p));

          if (l != 0 && r != 0)
            {
              SpmMerge m = { id, l - 1, r - 1, scores != NULL ? scores[id] : 0.0f };

              g_array_append_val (merges, m);
            }
        }
    }
  g_array_sort (merges, compare_spm_merges);
  for (guint i = 0; i < merges->len; i++)
    {
      const SpmMerge *m = &g_array_index (merges, SpmMerge, i);

      g_ptr_array_add (out, g_strconcat (tokens[m->left], " ", tokens[m->right], NULL));
    }
  return out;
}

/* An optional per-token number array of tokenizer.ggml.*: absent, or one per token. */
static gboolean
read_token_numbers (BlGguf      *gguf,
                    const char  *key,
                    guint        n_tokens,
                    double      *out,
                    gboolean    *present,
                    GError     **error)
{
  const BlGgufKv *kv = bl_gguf_find_kv (gguf, key);

  *present = kv != NULL;
  if (kv == NULL)
    return TRUE;
  if (kv->type != BL_GGUF_TYPE_ARRAY || kv->array_len != n_tokens)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_CORRUPT_FILE,
                   "%s: metadata “%s” is not an array of %u numbers, one per token",
                   bl_gguf_get_filename (gguf), key, n_tokens);
      return FALSE;
    }
  for (guint i = 0; i < n_tokens; i++)
    if (!bl_gguf_get_array_number (gguf, key, i, &out[i]))
      {
        g_set_error (error, BL_ERROR, BL_ERROR_CORRUPT_FILE,
                     "%s: metadata “%s” is not an array of numbers", bl_gguf_get_filename (gguf),
                     key);
        return FALSE;
      }
  return TRUE;
}

static char *
generate (JsonBuilder *b,
          gsize       *len)
{
  g_autoptr(JsonGenerator) gen = json_generator_new ();
  g_autoptr(JsonNode) root = json_builder_get_root (b);

  json_generator_set_root (gen, root);
  return json_generator_to_data (gen, len);
}

/* A token id metadata value as the token's text, or NULL. */
static const char *
token_of (BlGguf     *gguf,
          const char *key,
          GStrv       tokens,
          guint       n_tokens)
{
  guint64 id;

  return get_count (gguf, key, &id) && id < n_tokens ? tokens[id] : NULL;
}

/*
 * tokenizer.ggml.* as the tokenizer.json transformers writes for the same tokenizer:
 *
 *   - "llama" (SentencePiece BPE): LlamaConverter's normalizer and decoder, a BPE model with
 *     byte_fallback and fuse_unk, the merges of tokenizer.ggml.merges when the file has
 *     them, else derived from the scores (spm_merges());
 *   - "gpt2" (byte-level BPE) with tokenizer.ggml.pre "gpt-2", "qwen2" or "smollm": the
 *     merges as written and that family's pre-tokenizer.
 *
 * Control and unknown tokens are special added tokens, user-defined ones plain added tokens;
 * unused ones ("[PADn]") are left out. tokenizer.ggml.add_bos_token (llama.cpp's default:
 * on for "llama", off for "gpt2") and the BOS/EOS ids become the tokenizer_config.json.
 * Anything else is no tokenizer, and *@why_not says why.
 */
static gboolean
build_tokenizer_json (BlGguf   *gguf,
                      char    **out_json,
                      gsize    *out_len,
                      char    **out_config,
                      gsize    *out_config_len,
                      char    **why_not,
                      GError  **error)
{
  const char *file = bl_gguf_get_filename (gguf);
  g_autofree char *model = bl_gguf_get_string (gguf, "tokenizer.ggml.model");
  g_autofree char *pre = bl_gguf_get_string (gguf, "tokenizer.ggml.pre");
  g_auto(GStrv) tokens = NULL;
  g_auto(GStrv) merges = NULL;
  g_autoptr(GPtrArray) derived = NULL;
  g_autoptr(GHashTable) ids = NULL;
  g_autofree double *numbers = NULL;
  g_autofree gint32 *types = NULL;
  g_autofree float *scores = NULL;
  g_autoptr(JsonBuilder) b = json_builder_new ();
  g_autoptr(JsonBuilder) cb = json_builder_new ();
  gboolean spm, present, add_bos, space_prefix = TRUE;
  const char *unk = NULL, *bos, *eos;
  PreKind kind = PRE_GPT2;
  guint n;

  if (model == NULL)
    {
      *why_not = g_strdup ("the file has no tokenizer.ggml.model");
      return TRUE;
    }
  spm = g_str_equal (model, "llama");
  if (!spm && !g_str_equal (model, "gpt2"))
    {
      *why_not = g_strdup_printf ("tokenizer.ggml.model is “%s”; Bitlens rebuilds “llama” and "
                                  "“gpt2” tokenizers", model);
      return TRUE;
    }
  if (!spm)
    {
      guint i;

      for (i = 0; i < G_N_ELEMENTS (pre_names); i++)
        if (pre != NULL && g_str_equal (pre, pre_names[i].name))
          break;
      if (i == G_N_ELEMENTS (pre_names))
        {
          *why_not = g_strdup_printf ("tokenizer.ggml.pre is %s%s%s; Bitlens rebuilds the "
                                      "“gpt-2”, “qwen2” and “smollm” pre-tokenizers",
                                      pre != NULL ? "“" : "", pre != NULL ? pre : "absent",
                                      pre != NULL ? "”" : "");
          return TRUE;
        }
      kind = pre_names[i].kind;
    }

  tokens = bl_gguf_get_string_array (gguf, "tokenizer.ggml.tokens");
  if (tokens == NULL || tokens[0] == NULL)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_CORRUPT_FILE,
                   "%s: tokenizer.ggml.model is “%s” but tokenizer.ggml.tokens is missing, "
                   "empty or not a string array", file, model);
      return FALSE;
    }
  n = g_strv_length (tokens);
  for (guint i = 0; i < n; i++)
    if (!g_utf8_validate (tokens[i], -1, NULL))
      {
        g_set_error (error, BL_ERROR, BL_ERROR_CORRUPT_FILE,
                     "%s: token %u of tokenizer.ggml.tokens is not UTF-8", file, i);
        return FALSE;
      }
  numbers = g_new (double, n);
  types = g_new (gint32, n);
  if (!read_token_numbers (gguf, "tokenizer.ggml.token_type", n, numbers, &present, error))
    return FALSE;
  for (guint i = 0; i < n; i++)
    types[i] = present ? (gint32) numbers[i] : TOKEN_NORMAL;
  if (spm)
    {
      if (!read_token_numbers (gguf, "tokenizer.ggml.scores", n, numbers, &present, error))
        return FALSE;
      if (present)
        {
          scores = g_new (float, n);
          for (guint i = 0; i < n; i++)
            scores[i] = (float) numbers[i];
        }
    }
  merges = bl_gguf_get_string_array (gguf, "tokenizer.ggml.merges");
  if (merges == NULL && !spm)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_CORRUPT_FILE,
                   "%s: a “gpt2” tokenizer without tokenizer.ggml.merges", file);
      return FALSE;
    }
  bl_gguf_get_bool (gguf, "tokenizer.ggml.add_space_prefix", &space_prefix);

  /* piece → id + 1; a piece listed twice is the later id, as in llama.cpp's token_to_id */
  ids = g_hash_table_new (g_str_hash, g_str_equal);
  for (guint i = 0; i < n; i++)
    if (types[i] != TOKEN_UNUSED)
      g_hash_table_insert (ids, tokens[i], GUINT_TO_POINTER (i + 1));
  for (guint i = 0; i < n; i++)
    if (types[i] == TOKEN_UNKNOWN)
      unk = tokens[i];
  if (unk == NULL)
    unk = token_of (gguf, "tokenizer.ggml.unknown_token_id", tokens, n);
  if (spm && merges == NULL)
    derived = spm_merges (tokens, types, scores, ids);

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "version");
  json_builder_add_string_value (b, "1.0");
  json_builder_set_member_name (b, "added_tokens");
  json_builder_begin_array (b);
  for (guint i = 0; i < n; i++)
    if (types[i] == TOKEN_CONTROL || types[i] == TOKEN_UNKNOWN || types[i] == TOKEN_USER_DEFINED)
      {
        json_builder_begin_object (b);
        add_int (b, "id", i);
        json_builder_set_member_name (b, "content");
        json_builder_add_string_value (b, tokens[i]);
        add_bool (b, "single_word", FALSE);
        add_bool (b, "lstrip", FALSE);
        add_bool (b, "rstrip", FALSE);
        add_bool (b, "normalized", types[i] == TOKEN_USER_DEFINED);
        add_bool (b, "special", types[i] != TOKEN_USER_DEFINED);
        json_builder_end_object (b);
      }
  json_builder_end_array (b);
  if (spm)
    add_spm_normalizer_decoder (b, space_prefix);
  else
    {
      json_builder_set_member_name (b, "normalizer");
      if (kind == PRE_QWEN2)
        add_type (b, "NFC");
      else
        json_builder_add_null_value (b);
      add_pre_tokenizer (b, kind);
      json_builder_set_member_name (b, "decoder");
      add_byte_level (b, TRUE);
    }
  json_builder_set_member_name (b, "model");
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "type");
  json_builder_add_string_value (b, "BPE");
  json_builder_set_member_name (b, "unk_token");
  if (unk != NULL)
    json_builder_add_string_value (b, unk);
  else
    json_builder_add_null_value (b);
  add_bool (b, "fuse_unk", spm);
  add_bool (b, "byte_fallback", spm);
  json_builder_set_member_name (b, "vocab");
  json_builder_begin_object (b);
  for (guint i = 0; i < n; i++)
    if (types[i] != TOKEN_UNUSED && GPOINTER_TO_UINT (g_hash_table_lookup (ids, tokens[i])) == i + 1)
      add_int (b, tokens[i], i);
  json_builder_end_object (b);
  json_builder_set_member_name (b, "merges");
  json_builder_begin_array (b);
  if (derived != NULL)
    for (guint i = 0; i < derived->len; i++)
      json_builder_add_string_value (b, g_ptr_array_index (derived, i));
  else
    for (guint i = 0; merges[i] != NULL; i++)
      json_builder_add_string_value (b, merges[i]);
  json_builder_end_array (b);
  json_builder_end_object (b);
  json_builder_end_object (b);

  if (!bl_gguf_get_bool (gguf, "tokenizer.ggml.add_bos_token", &add_bos))
    add_bos = spm;
  bos = token_of (gguf, "tokenizer.ggml.bos_token_id", tokens, n);
  eos = token_of (gguf, "tokenizer.ggml.eos_token_id", tokens, n);
  json_builder_begin_object (cb);
  add_bool (cb, "add_bos_token", add_bos && bos != NULL);
  json_builder_set_member_name (cb, "bos_token");
  if (bos != NULL)
    json_builder_add_string_value (cb, bos);
  else
    json_builder_add_null_value (cb);
  json_builder_set_member_name (cb, "eos_token");
  if (eos != NULL)
    json_builder_add_string_value (cb, eos);
  else
    json_builder_add_null_value (cb);
  json_builder_end_object (cb);

  *out_json = generate (b, out_len);
  *out_config = generate (cb, out_config_len);
  return TRUE;
}

/**
 * bl_model_gguf_read_tokenizer:
 * @gguf: a GGUF file
 * @out: (out) (transfer full) (nullable): the tokenizer, %NULL when the file has none that
 *   Bitlens rebuilds
 * @why_not: (out) (transfer full) (nullable): with no tokenizer, the reason; else %NULL
 * @error: return location for an error
 *
 * Rebuilds the tokenizer that tokenizer.ggml.* describes (see build_tokenizer_json()).
 *
 * Returns: %FALSE with @error set when tokenizer.ggml.* is malformed
 */
gboolean
bl_model_gguf_read_tokenizer (BlGguf       *gguf,
                              BlTokenizer **out,
                              char        **why_not,
                              GError      **error)
{
  g_autofree char *json = NULL;
  g_autofree char *config = NULL;
  g_autofree char *source = NULL;
  gsize len = 0, config_len = 0;

  g_return_val_if_fail (gguf != NULL && out != NULL && why_not != NULL, FALSE);

  *out = NULL;
  *why_not = NULL;
  if (!build_tokenizer_json (gguf, &json, &len, &config, &config_len, why_not, error))
    return FALSE;
  if (json == NULL)
    return TRUE;
  source = g_strdup_printf ("%s (its tokenizer.ggml.* metadata as tokenizer.json)",
                            bl_gguf_get_filename (gguf));
  *out = bl_tokenizer_new_from_data (json, len, config, config_len, source, error);
  return *out != NULL;
}

static gboolean
read_tokenizer (BlGguf       *gguf,
                BlModelGguf  *out,
                GError      **error)
{
  const char *file = bl_gguf_get_filename (gguf);
  g_autofree char *why_not = NULL;
  g_autofree char *dir = NULL;
  g_autofree char *json = NULL;
  g_autofree char *config = NULL;

  if (!bl_model_gguf_read_tokenizer (gguf, &out->tokenizer, &why_not, error))
    return FALSE;
  if (out->tokenizer != NULL)
    {
      out->tokenizer_source = g_strdup ("tokenizer.ggml.* of the GGUF file");
      return TRUE;
    }

  /* A tokenizer.json beside the file stands in for metadata Bitlens cannot rebuild. */
  dir = g_path_get_dirname (file);
  json = g_build_filename (dir, "tokenizer.json", NULL);
  config = g_build_filename (dir, "tokenizer_config.json", NULL);
  if (!g_file_test (json, G_FILE_TEST_EXISTS))
    {
      out->tokenizer_source = g_strdup_printf ("none: %s, and there is no tokenizer.json beside "
                                               "the file", why_not);
      return TRUE;
    }
  out->tokenizer = bl_tokenizer_new_from_file (json, g_file_test (config, G_FILE_TEST_EXISTS)
                                                     ? config : NULL, error);
  if (out->tokenizer == NULL)
    {
      g_prefix_error (error, "Cannot load the tokenizer beside %s: ", file);
      return FALSE;
    }
  out->tokenizer_source = g_strdup_printf ("%s (%s)", json, why_not);
  return TRUE;
}

/* SHA-256 of the complete file */
static gboolean
fingerprint (BlGguf        *gguf,
             GCancellable  *cancellable,
             BlModelGguf   *out,
             GError       **error)
{
  BlSha256 sum;
  char hex[65];
  gsize len;
  const guint8 *contents = bl_gguf_get_contents (gguf, &len);

  bl_sha256_init (&sum);
  for (gsize done = 0; done < len; done += FINGERPRINT_SLICE)
    {
      if (g_cancellable_set_error_if_cancelled (cancellable, error))
        return FALSE;
      bl_sha256_update (&sum, contents + done, MIN (len - done, FINGERPRINT_SLICE));
    }
  bl_sha256_finish_hex (&sum, hex);
  out->fingerprint = g_strdup (hex);
  return TRUE;
}

/**
 * bl_model_gguf_read:
 * @path: a GGUF v3 file
 * @cancellable: (nullable): a #GCancellable
 * @out: (out caller-allocates): the parts, to be freed with bl_model_gguf_clear()
 * @error: return location for an error
 *
 * Reads a GGUF file whose general.architecture is "llama" or "qwen2" as the Hugging Face
 * model it was converted from (see the top of this file). The caller checks the tensors
 * against the config. A mixture of experts, RoPE scaling other than linear and Llama 3's
 * (rope_freqs), another architecture or a
 * tensor with no Hugging Face name is %BL_ERROR_UNSUPPORTED_ARCHITECTURE; a tensor of a
 * ggml type Bitlens does not decode is %BL_ERROR_UNSUPPORTED_FORMAT; everything the
 * reader (bl_gguf_open()) and the config reader refuse keeps their errors.
 *
 * Returns: %FALSE with @error set (and @out cleared) on failure
 */
gboolean
bl_model_gguf_read (const char    *path,
                    GCancellable  *cancellable,
                    BlModelGguf   *out,
                    GError       **error)
{
  g_autoptr(BlGguf) gguf = NULL;
  g_autofree char *arch = NULL;
  gboolean llama;

  g_return_val_if_fail (path != NULL && out != NULL, FALSE);

  memset (out, 0, sizeof *out);
  gguf = bl_gguf_open (path, error);
  if (gguf == NULL)
    return FALSE;
  arch = bl_gguf_get_string (gguf, "general.architecture");
  if (arch == NULL)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_CORRUPT_FILE,
                   "%s: metadata “general.architecture” is missing or not a string", path);
      return FALSE;
    }
  llama = g_str_equal (arch, "llama");
  if (!llama && !g_str_equal (arch, "qwen2"))
    {
      g_set_error (error, BL_ERROR, BL_ERROR_UNSUPPORTED_ARCHITECTURE,
                   "%s: GGUF architecture “%s” is not supported; Bitlens reads llama and qwen2",
                   path, arch);
      return FALSE;
    }

  out->config = read_config (gguf, arch, error);
  if (out->config == NULL
      || !read_rope_freqs (gguf, out->config, error)
      || !read_tensors (gguf, out->config, llama, cancellable, out, error)
      || !read_tokenizer (gguf, out, error)
      || !fingerprint (gguf, cancellable, out, error))
    {
      bl_model_gguf_clear (out);
      return FALSE;
    }
  return TRUE;
}
