/* bl-export-gguf.c: a model and its assignment as a GGUF v3 file llama.cpp can load
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * The output follows what llama.cpp's convert_hf_to_gguf.py writes for a Hugging Face
 * Llama/Mistral (architecture "llama") or Qwen2 (architecture "qwen2") directory:
 *
 *   - tensor names: token_embd, blk.N.{attn_norm, attn_q, attn_k, attn_v, attn_output,
 *     ffn_norm, ffn_gate, ffn_up, ffn_down}, output_norm, output (gguf-py tensor_mapping.py);
 *   - Llama's attn_q and attn_k rows permuted from the Hugging Face rotate-half RoPE layout
 *     to llama.cpp's interleaved pairs (LlamaModel.permute: reshape to
 *     [n_head, 2, head_dim/2, cols], swap axes 1 and 2); the permutation moves whole rows,
 *     so it commutes with the row-wise block quantization. Qwen2 uses NeoX RoPE in
 *     llama.cpp and is written unpermuted;
 *   - the {arch}.* hyperparameters as uint32/float32, general.file_type and
 *     general.quantization_version 2 (ggml's GGML_QNT_VERSION);
 *   - tokenizer.ggml.* from the directory's tokenizer.json (see add_tokenizer()).
 *
 * Block types hold the codes and scales of Bitlens's own quantizer (bl_format_quantize())
 * repacked into ggml's block structs, unless the options ask for ggml's reference encoders.
 * The two layouts carry the same information: a Q4_0/Q8_0 block is an fp16 scale and the
 * 32 integer codes of one group (Bitlens stores them offset by 2^(b−1)); an MXFP4 block is
 * the group's E8M0 byte and its E2M1 codes, whose bit patterns are exactly the indices of
 * ggml's kvalues_mxfp4 table.
 *
 * 1-D tensors (norms, biases) are F32, as llama.cpp keeps them. A weight whose rows are not
 * a multiple of the 32-element block is written as F16 and reported in @notes, as
 * llama-quantize's own fallback does.
 */
#include "bl-export.h"

#include <math.h>
#include <string.h>

#include "bl-error.h"
#include "bl-export-private.h"
#include "bl-format-blocks.h"
#include "bl-gguf-quants.h"
#include "bl-gguf-writer.h"
#include "bl-json-private.h"
#include "bl-model-config.h"

/* llama.cpp's enum llama_ftype for general.file_type */
#define FTYPE_ALL_F32 0
#define FTYPE_MOSTLY_F16 1
#define FTYPE_MOSTLY_Q4_0 2
#define FTYPE_MOSTLY_Q8_0 7
#define FTYPE_MOSTLY_BF16 32
#define FTYPE_MOSTLY_MXFP4_MOE 38

/* token_type values of llama.cpp's llama_token_type / gguf-py TokenType */
#define TOKEN_NORMAL 1
#define TOKEN_UNKNOWN 2
#define TOKEN_CONTROL 3
#define TOKEN_UNUSED 5
#define TOKEN_BYTE 6

/**
 * bl_export_spec_to_ggml:
 * @spec: a weight format
 * @out_type: (out): the ggml type that stores exactly this format
 *
 * The formats a GGUF file can hold as Bitlens evaluates them: `fp16` (F16), `bf16` (BF16),
 * `int8:g32` with an fp16 scale (Q8_0), `int4:g32:q4_0` (Q4_0) and `mxfp4` with the OCP
 * floor scale (MXFP4). Q8_0 and MXFP4 can differ from Bitlens's fake quantization on
 * individual elements: ggml computes the Q8_0 codes with 1/d of the unrounded d and rounds
 * half away from zero, and picks the MXFP4 element by nearest table entry, the lower index
 * on a tie, where Bitlens rounds to even (docs/exports.md gives the measured counts).
 *
 * Returns: whether @spec has a GGUF type
 */
gboolean
bl_export_spec_to_ggml (const BlFormatSpec *spec,
                        BlGgmlType         *out_type)
{
  gboolean plain_group32 = spec->granularity == BL_GRANULARITY_GROUP && spec->group_size == 32
                           && spec->clip == BL_CLIP_NONE;

  switch (spec->family)
    {
    case BL_FORMAT_FP16:
      *out_type = BL_GGML_TYPE_F16;
      return spec->rounding == BL_ROUND_RNE;
    case BL_FORMAT_BF16:
      *out_type = BL_GGML_TYPE_BF16;
      return spec->rounding == BL_ROUND_RNE;
    case BL_FORMAT_INT:
      if (!plain_group32 || spec->scale_type != BL_SCALE_TYPE_F16)
        return FALSE;
      if (spec->bits == 4 && spec->int_convention == BL_INT_Q4_0 && spec->rounding == BL_ROUND_UP)
        {
          *out_type = BL_GGML_TYPE_Q4_0;
          return TRUE;
        }
      if (spec->bits == 8 && spec->int_convention == BL_INT_ABSMAX
          && (spec->rounding == BL_ROUND_RNE || spec->rounding == BL_ROUND_AWAY))
        {
          *out_type = BL_GGML_TYPE_Q8_0;
          return TRUE;
        }
      return FALSE;
    case BL_FORMAT_MXFP:
      *out_type = BL_GGML_TYPE_MXFP4;
      return spec->ebits == 2 && spec->mbits == 1 && plain_group32
             && spec->scale_rule == BL_SCALE_RULE_FLOOR && spec->rounding == BL_ROUND_RNE;
    default:
      return FALSE;
    }
}

/**
 * bl_export_gguf_tensor_name:
 * @hf_name: a Hugging Face Llama/Qwen2 tensor name
 *
 * Maps a tensor name to llama.cpp's (gguf-py tensor_mapping.py):
 * "model.layers.3.mlp.down_proj.weight" → "blk.3.ffn_down.weight".
 *
 * Returns: (transfer full) (nullable): the GGUF name, or %NULL for a tensor llama.cpp has no
 *   name for
 */
char *
bl_export_gguf_tensor_name (const char *hf_name)
{
  static const struct { const char *hf, *gguf; } block_parts[] = {
    { "self_attn.q_proj", "attn_q" }, { "self_attn.k_proj", "attn_k" },
    { "self_attn.v_proj", "attn_v" }, { "self_attn.o_proj", "attn_output" },
    { "mlp.gate_proj", "ffn_gate" }, { "mlp.up_proj", "ffn_up" },
    { "mlp.down_proj", "ffn_down" }, { "input_layernorm", "attn_norm" },
    { "post_attention_layernorm", "ffn_norm" },
  };
  const char *suffix;

  if (g_str_equal (hf_name, "model.embed_tokens.weight"))
    return g_strdup ("token_embd.weight");
  if (g_str_equal (hf_name, "model.norm.weight"))
    return g_strdup ("output_norm.weight");
  if (g_str_equal (hf_name, "lm_head.weight"))
    return g_strdup ("output.weight");
  if (g_str_has_prefix (hf_name, "model.layers."))
    {
      char *end;
      guint64 block = g_ascii_strtoull (hf_name + strlen ("model.layers."), &end, 10);

      if (end == hf_name + strlen ("model.layers.") || *end != '.')
        return NULL;
      suffix = end + 1;
      for (guint i = 0; i < G_N_ELEMENTS (block_parts); i++)
        {
          gsize n = strlen (block_parts[i].hf);

          if (strncmp (suffix, block_parts[i].hf, n) == 0
              && (g_str_equal (suffix + n, ".weight") || g_str_equal (suffix + n, ".bias")))
            return g_strdup_printf ("blk.%" G_GUINT64_FORMAT ".%s%s", block, block_parts[i].gguf,
                                    suffix + n);
        }
    }
  return NULL;
}

/**
 * bl_export_gguf_permute_rows:
 * @src: (array): a [@rows, @cols] row-major matrix (a bias is one column)
 * @dst: (array): the permuted matrix; must not alias @src
 * @rows: rows, @n_head × head_dim
 * @cols: columns
 * @n_head: heads (the KV heads for attn_k)
 * @inverse: undo the permutation instead
 *
 * convert_hf_to_gguf.py's LlamaModel.permute: row (h, j, i) of the output, with j ∈ {0, 1}
 * the pair member and i < head_dim/2, is row (h, i, j) of the input. That turns the
 * rotate-half RoPE of Hugging Face Llama into the interleaved pairs of llama.cpp.
 */
void
bl_export_gguf_permute_rows (const float *src,
                             float       *dst,
                             gint64       rows,
                             gint64       cols,
                             int          n_head,
                             gboolean     inverse)
{
  gint64 hd = rows / n_head, half = hd / 2;

  g_return_if_fail (n_head > 0 && rows % n_head == 0 && hd % 2 == 0);

  for (gint64 h = 0; h < n_head; h++)
    for (gint64 i = 0; i < half; i++)
      for (gint64 j = 0; j < 2; j++)
        {
          gint64 out_row = h * hd + i * 2 + j, in_row = h * hd + j * half + i;

          if (inverse)
            memcpy (dst + in_row * cols, src + out_row * cols, (size_t) cols * sizeof (float));
          else
            memcpy (dst + out_row * cols, src + in_row * cols, (size_t) cols * sizeof (float));
        }
}

static int
ftype_of (BlGgmlType type)
{
  switch (type)
    {
    case BL_GGML_TYPE_F32: return FTYPE_ALL_F32;
    case BL_GGML_TYPE_Q4_0: return FTYPE_MOSTLY_Q4_0;
    case BL_GGML_TYPE_Q8_0: return FTYPE_MOSTLY_Q8_0;
    case BL_GGML_TYPE_BF16: return FTYPE_MOSTLY_BF16;
    case BL_GGML_TYPE_MXFP4: return FTYPE_MOSTLY_MXFP4_MOE;
    default: return FTYPE_MOSTLY_F16;
    }
}

/* The tokenizer.json vocabulary, merges and added tokens, indexed by id. */
typedef struct
{
  GPtrArray *tokens;       /* char *, NULL where the id is unused */
  GArray *types;           /* gint32 */
  GArray *scores;          /* float */
  GPtrArray *merges;       /* char *, "left right" */
  int unk_id;
} Vocab;

static void
vocab_clear (Vocab *v)
{
  g_clear_pointer (&v->tokens, g_ptr_array_unref);
  g_clear_pointer (&v->types, g_array_unref);
  g_clear_pointer (&v->scores, g_array_unref);
  g_clear_pointer (&v->merges, g_ptr_array_unref);
}

static void
vocab_set (Vocab      *v,
           gint64      id,
           const char *text,
           gint32      type)
{
  if ((guint64) id >= v->tokens->len)
    {
      guint old = v->tokens->len;

      g_ptr_array_set_size (v->tokens, (guint) id + 1);
      g_array_set_size (v->types, (guint) id + 1);
      g_array_set_size (v->scores, (guint) id + 1);
      for (guint i = old; i <= (guint) id; i++)
        {
          g_array_index (v->types, gint32, i) = TOKEN_UNUSED;
          g_array_index (v->scores, float, i) = 0.0f;
        }
    }
  g_free (v->tokens->pdata[id]);
  v->tokens->pdata[id] = g_strdup (text);
  g_array_index (v->types, gint32, id) = type;
}

static gboolean
is_byte_token (const char *t)
{
  return strlen (t) == 6 && g_str_has_prefix (t, "<0x") && g_ascii_isxdigit (t[3])
         && g_ascii_isxdigit (t[4]) && t[5] == '>';
}

/* GPT-2's pre-tokenizer regex as tokenizers writes it for a ByteLevel pre-tokenizer with
 * use_regex, and llama.cpp's "gpt-2" pre-tokenizer (llama-vocab.cpp) */
#define GPT2_REGEX "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"

/* Qwen2's split, as its tokenizer.json writes it (llama.cpp's LLAMA_VOCAB_PRE_TYPE_QWEN2) */
#define QWEN2_REGEX "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"

/* llama.cpp's name (llama-vocab.cpp) for the byte-level pre-tokenizer: "gpt-2" for GPT-2's
 * split, "smollm" for single digits before it, "qwen2" for Qwen2's split; else "default" */
static const char *
byte_level_pre (JsonObject *root)
{
  JsonNode *pre = json_object_get_member (root, "pre_tokenizer");
  g_autoptr(GList) parts = NULL;
  JsonArray *seq;
  gboolean gpt2_split = FALSE, byte_level = FALSE, qwen2_split = FALSE, digits = FALSE;

  if (pre == NULL || !JSON_NODE_HOLDS_OBJECT (pre))
    return "default";
  seq = json_object_has_member (json_node_get_object (pre), "pretokenizers")
        ? bl_export_array_member (json_node_get_object (pre), "pretokenizers") : NULL;
  if (seq == NULL)
    parts = g_list_prepend (NULL, json_node_get_object (pre));
  else
    for (guint i = json_array_get_length (seq); i-- > 0;)
      if (JSON_NODE_HOLDS_OBJECT (json_array_get_element (seq, i)))
        parts = g_list_prepend (parts, json_array_get_object_element (seq, i));
  for (GList *l = parts; l != NULL; l = l->next)
    {
      JsonObject *p = l->data;
      const char *type = json_object_get_string_member_with_default (p, "type", "");

      if (g_str_equal (type, "ByteLevel"))
        {
          byte_level = TRUE;
          if (json_object_get_boolean_member_with_default (p, "use_regex", TRUE))
            gpt2_split = TRUE;
        }
      else if (g_str_equal (type, "Split") && json_object_has_member (p, "pattern"))
        {
          JsonObject *pat = bl_export_object_member (p, "pattern");

          if (pat != NULL && g_strcmp0 (json_object_get_string_member_with_default (pat, "Regex", ""),
                                        GPT2_REGEX) == 0)
            gpt2_split = TRUE;
          else if (pat != NULL && g_strcmp0 (json_object_get_string_member_with_default (pat, "Regex", ""),
                                             QWEN2_REGEX) == 0)
            qwen2_split = TRUE;
        }
      else if (g_str_equal (type, "Digits")
               && json_object_get_boolean_member_with_default (p, "individual_digits", FALSE))
        digits = TRUE;
    }
  if (!byte_level || gpt2_split == qwen2_split)
    return "default";
  if (qwen2_split)
    return digits ? "default" : "qwen2";
  return digits ? "smollm" : "gpt-2";
}

/*
 * The tokenizer as llama.cpp's vocabulary keys. A SentencePiece-style BPE (Llama 2,
 * TinyStories) becomes tokenizer.ggml.model "llama": llama.cpp merges the adjacent pair
 * whose joined piece has the highest score, so a piece made by merge rank r gets score −r
 * (the first merge that produces it) and the merge order of tokenizer.json is kept; every
 * other piece gets 0. (convert_hf_to_gguf.py, without a tokenizer.model, gives every piece
 * −1000 and loses that order.) A byte-level BPE becomes "gpt2" with its merges. Ids the
 * files leave unused, up to the config's vocab_size, are "[PADn]" of type UNUSED, as
 * convert_hf_to_gguf.py writes them.
 */
static gboolean
add_tokenizer (BlGgufWriter        *w,
               BlModel             *model,
               GPtrArray           *notes,
               GError             **error)
{
  const BlModelConfig *cfg = bl_model_get_config (model);
  BlTokenizer *tok = bl_model_get_tokenizer (model);
  g_autofree char *path = g_build_filename (bl_model_get_path (model), "tokenizer.json", NULL);
  g_autofree char *contents = NULL;
  gsize len;
  g_autoptr(JsonNode) root = NULL;
  JsonObject *obj, *mdl;
  JsonObject *vocab_obj;
  JsonArray *merges, *added;
  gboolean spm;
  Vocab v = { 0 };
  GHashTable *score_set;
  g_autoptr(GPtrArray) merge_strings = NULL;
  int bos, eos;
  gboolean ok = FALSE;

  if (tok == NULL || !g_file_get_contents (path, &contents, &len, NULL))
    {
      g_ptr_array_add (notes, g_strdup ("the model has no tokenizer.json: no tokenizer.ggml.* "
                                        "keys written (llama.cpp needs them to run the file)"));
      return TRUE;
    }
  root = bl_json_parse_object (contents, len, path, error);
  if (root == NULL)
    return FALSE;
  obj = json_node_get_object (root);
  mdl = bl_export_object_member (obj, "model");
  if (mdl == NULL || g_strcmp0 (json_object_get_string_member_with_default (mdl, "type", ""), "BPE") != 0
      || (vocab_obj = bl_export_object_member (mdl, "vocab")) == NULL)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_UNSUPPORTED_FORMAT,
                   "%s: GGUF export reads BPE tokenizers only", path);
      return FALSE;
    }
  spm = g_str_equal (bl_tokenizer_get_style (tok), "sentencepiece");
  v.tokens = g_ptr_array_new_with_free_func (g_free);
  v.types = g_array_new (FALSE, TRUE, sizeof (gint32));
  v.scores = g_array_new (FALSE, TRUE, sizeof (float));
  v.unk_id = -1;
  score_set = g_hash_table_new (g_direct_hash, g_direct_equal);

  {
    JsonObjectIter it;
    const char *piece;
    JsonNode *idn;
    const char *unk = json_object_get_string_member_with_default (mdl, "unk_token", NULL);

    json_object_iter_init (&it, vocab_obj);
    while (json_object_iter_next (&it, &piece, &idn))
      {
        gint64 id;

        if (!bl_json_node_get_int (idn, &id) || id < 0 || id > 10000000)
          {
            g_set_error (error, BL_ERROR, BL_ERROR_CORRUPT_FILE,
                         "%s: vocabulary entry “%s” has no valid id", path, piece);
            goto out;
          }
        vocab_set (&v, id, piece,
                   unk != NULL && g_str_equal (piece, unk) ? TOKEN_UNKNOWN
                   : spm && is_byte_token (piece) ? TOKEN_BYTE : TOKEN_NORMAL);
        if (unk != NULL && g_str_equal (piece, unk))
          v.unk_id = (int) id;
      }
  }

  added = bl_export_array_member (obj, "added_tokens");
  for (guint i = 0; added != NULL && i < json_array_get_length (added); i++)
    {
      JsonNode *an = json_array_get_element (added, i);
      JsonObject *a = JSON_NODE_HOLDS_OBJECT (an) ? json_node_get_object (an) : NULL;
      gint64 id;

      if (a == NULL || !json_object_has_member (a, "id")
          || !bl_json_node_get_int (json_object_get_member (a, "id"), &id) || id < 0 || id > 10000000
          || json_object_get_string_member_with_default (a, "content", NULL) == NULL)
        {
          g_set_error (error, BL_ERROR, BL_ERROR_CORRUPT_FILE,
                       "%s: added token %u has no id or content", path, i);
          goto out;
        }
      vocab_set (&v, id, json_object_get_string_member (a, "content"),
                 (gint64) v.unk_id == id ? TOKEN_UNKNOWN
                 : json_object_get_boolean_member_with_default (a, "special", FALSE) ? TOKEN_CONTROL
                 : TOKEN_NORMAL);
    }

  merge_strings = g_ptr_array_new_with_free_func (g_free);
  merges = bl_export_array_member (mdl, "merges");
  for (guint r = 0; merges != NULL && r < json_array_get_length (merges); r++)
    {
      JsonNode *m = json_array_get_element (merges, r);
      g_autofree char *joined = NULL;
      char *pair;

      /* tokenizers writes "left right", newer versions ["left", "right"] */
      if (JSON_NODE_HOLDS_ARRAY (m) && json_array_get_length (json_node_get_array (m)) == 2
          && JSON_NODE_HOLDS_VALUE (json_array_get_element (json_node_get_array (m), 0))
          && JSON_NODE_HOLDS_VALUE (json_array_get_element (json_node_get_array (m), 1))
          && json_node_get_value_type (json_array_get_element (json_node_get_array (m), 0)) == G_TYPE_STRING
          && json_node_get_value_type (json_array_get_element (json_node_get_array (m), 1)) == G_TYPE_STRING)
        pair = g_strdup_printf ("%s %s", json_array_get_string_element (json_node_get_array (m), 0),
                                json_array_get_string_element (json_node_get_array (m), 1));
      else if (JSON_NODE_HOLDS_VALUE (m) && json_node_get_value_type (m) == G_TYPE_STRING
               && strchr (json_node_get_string (m), ' ') != NULL)
        pair = g_strdup (json_node_get_string (m));
      else
        {
          g_set_error (error, BL_ERROR, BL_ERROR_CORRUPT_FILE, "%s: merge %u is malformed", path, r);
          goto out;
        }
      g_ptr_array_add (merge_strings, pair);
      if (spm)
        {
          const char *sp = strchr (pair, ' ');
          JsonNode *idn;
          gint64 id;

          joined = g_strdup_printf ("%.*s%s", (int) (sp - pair), pair, sp + 1);
          idn = json_object_get_member (vocab_obj, joined);
          if (idn != NULL && bl_json_node_get_int (idn, &id) && (guint64) id < v.scores->len
              && !g_hash_table_contains (score_set, GINT_TO_POINTER ((int) id)))
            {
              g_array_index (v.scores, float, id) = -(float) r;
              g_hash_table_add (score_set, GINT_TO_POINTER ((int) id));
            }
        }
    }

  for (gint64 id = (gint64) v.tokens->len; id < cfg->vocab_size; id++)
    {
      g_autofree char *pad = g_strdup_printf ("[PAD%" G_GINT64_FORMAT "]", id);

      vocab_set (&v, id, pad, TOKEN_UNUSED);
    }
  for (guint id = 0; id < v.tokens->len; id++)
    if (v.tokens->pdata[id] == NULL)
      {
        v.tokens->pdata[id] = g_strdup_printf ("[PAD%u]", id);
        g_array_index (v.types, gint32, id) = TOKEN_UNUSED;
      }

  bl_gguf_writer_add_string (w, "tokenizer.ggml.model", spm ? "llama" : "gpt2");
  if (!spm)
    bl_gguf_writer_add_string (w, "tokenizer.ggml.pre", byte_level_pre (obj));
  bl_gguf_writer_add_string_array (w, "tokenizer.ggml.tokens", (const char * const *) v.tokens->pdata,
                                   v.tokens->len);
  if (spm)
    bl_gguf_writer_add_float32_array (w, "tokenizer.ggml.scores", (const float *) v.scores->data,
                                      v.scores->len);
  bl_gguf_writer_add_int32_array (w, "tokenizer.ggml.token_type", (const gint32 *) v.types->data,
                                  v.types->len);
  if (!spm)
    bl_gguf_writer_add_string_array (w, "tokenizer.ggml.merges",
                                     (const char * const *) merge_strings->pdata, merge_strings->len);
  bos = cfg->bos_token_id >= 0 ? cfg->bos_token_id : bl_tokenizer_get_bos_id (tok);
  eos = cfg->eos_token_id >= 0 ? cfg->eos_token_id : bl_tokenizer_get_eos_id (tok);
  if (bos >= 0)
    bl_gguf_writer_add_uint32 (w, "tokenizer.ggml.bos_token_id", (guint32) bos);
  if (eos >= 0)
    bl_gguf_writer_add_uint32 (w, "tokenizer.ggml.eos_token_id", (guint32) eos);
  if (v.unk_id >= 0)
    bl_gguf_writer_add_uint32 (w, "tokenizer.ggml.unknown_token_id", (guint32) v.unk_id);
  bl_gguf_writer_add_bool (w, "tokenizer.ggml.add_bos_token", bl_tokenizer_get_add_bos (tok));
  bl_gguf_writer_add_bool (w, "tokenizer.ggml.add_eos_token", FALSE);
  ok = TRUE;

out:
  g_hash_table_unref (score_set);
  vocab_clear (&v);
  return ok;
}

/* Repacks bl_format_quantize()'s codes and scales of @spec into ggml blocks of @type; the
 * caller checked that bl_export_spec_to_ggml (@spec) is @type. */
static GBytes *
encode_bitlens (const BlFormatSpec *spec,
                BlGgmlType          type,
                const float        *x,
                gint64              rows,
                gint64              cols,
                GError            **error)
{
  gsize size = bl_format_packed_size (spec, rows, cols);
  g_autofree guint8 *packed = g_malloc (size);
  const BlPackedHeader *h = (const BlPackedHeader *) packed;
  guint64 row_bytes = bl_ggml_row_size (type, cols);
  guint8 *buf;
  gint64 groups_per_row = cols / BL_GGML_QK;

  if (!bl_format_quantize (spec, x, rows, cols, packed, size, error))
    return NULL;
  g_assert (h->group_size == BL_GGML_QK && h->zero_bits == 0 && h->scales_per_group == 1);
  buf = g_malloc ((gsize) (row_bytes * (guint64) rows));
  for (gint64 r = 0; r < rows; r++)
    for (gint64 g = 0; g < groups_per_row; g++)
      {
        guint64 group = (guint64) (r * groups_per_row + g), first = group * BL_GGML_QK;
        const guint8 *codes = packed + h->codes_offset, *scales = packed + h->scales_offset;
        guint8 *block = buf + (guint64) r * row_bytes + (guint64) g * (guint64) bl_ggml_type_get_traits (type)->type_size;

        if (type == BL_GGML_TYPE_Q8_0)
          {
            BlBlockQ8_0 b;

            memcpy (&b.d, scales + 2 * group, 2);
            for (int j = 0; j < BL_GGML_QK; j++)
              b.qs[j] = (int8_t) ((int) bl_bits_get (codes, first + (guint64) j, h->elem_bits) - 128);
            memcpy (block, &b, sizeof b);
          }
        else
          {
            /* Q4_0: fp16 d then nibbles; MXFP4: E8M0 byte then nibbles */
            int head = type == BL_GGML_TYPE_Q4_0 ? 2 : 1;

            memcpy (block, scales + (guint64) head * group, (gsize) head);
            for (int j = 0; j < BL_GGML_QK / 2; j++)
              block[head + j] = (guint8) (bl_bits_get (codes, first + (guint64) j, 4)
                                          | bl_bits_get (codes, first + (guint64) j + 16, 4) << 4);
          }
      }
  return g_bytes_new_take (buf, (gsize) (row_bytes * (guint64) rows));
}

/* Encodes a [rows, cols] matrix (or a vector, rows = 1) row by row. */
static GBytes *
encode_rows (BlGgmlType   type,
             const float *x,
             gint64       rows,
             gint64       cols)
{
  guint64 row_bytes = bl_ggml_row_size (type, cols);
  guint8 *buf = g_malloc ((gsize) (row_bytes * (guint64) rows));

  for (gint64 r = 0; r < rows; r++)
    bl_ggml_quantize_row (type, x + r * cols, buf + (guint64) r * row_bytes, cols);
  return g_bytes_new_take (buf, (gsize) (row_bytes * (guint64) rows));
}

static gboolean
check_float_type (BlGgmlType   type,
                  const char  *what,
                  GError     **error)
{
  if (type != BL_GGML_TYPE_F16 && type != BL_GGML_TYPE_BF16 && type != BL_GGML_TYPE_F32)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT,
                   "GGUF export: the %s type must be f16, bf16 or f32", what);
      return FALSE;
    }
  return TRUE;
}

/* Adds one tensor: permutes Llama's q/k rows, picks the type, encodes. */
static gboolean
add_tensor (BlGgufWriter        *w,
            BlModel             *model,
            const BlTensor      *t,
            const char          *gguf_name,
            const char          *layer_name,
            BlGgmlType           type,
            const BlFormatSpec  *spec,
            gboolean             ggml_reference,
            gboolean             permute,
            GHashTable          *type_params,
            GPtrArray           *notes,
            GError             **error)
{
  const BlModelConfig *cfg = bl_model_get_config (model);
  gint64 rows = t->n_dims == 2 ? t->shape[0] : 1;
  gint64 cols = t->n_dims == 2 ? t->shape[1] : t->n_elements;
  g_autofree float *x = g_new (float, t->n_elements);
  g_autoptr(GBytes) data = NULL;
  gint64 ne[2] = { cols, rows };
  gboolean is_q = strstr (gguf_name, ".attn_q.") != NULL, is_k = strstr (gguf_name, ".attn_k.") != NULL;

  bl_tensor_to_f32 (t, x);
  if (permute && (is_q || is_k))
    {
      g_autofree float *p = g_new (float, t->n_elements);
      int n_head = is_q ? cfg->n_heads : cfg->n_kv_heads;

      /* a bias is a column of rows: permute it as a [n, 1] matrix */
      if (t->n_dims == 1)
        bl_export_gguf_permute_rows (x, p, t->n_elements, 1, n_head, FALSE);
      else
        bl_export_gguf_permute_rows (x, p, rows, cols, n_head, FALSE);
      memcpy (x, p, (size_t) t->n_elements * sizeof (float));
    }
  if (cols % bl_ggml_type_get_traits (type)->block_size != 0)
    {
      g_ptr_array_add (notes, g_strdup_printf ("%s: rows of %" G_GINT64_FORMAT " elements are not a "
                                               "multiple of the %s block; written as f16, as "
                                               "llama-quantize falls back", layer_name, cols,
                                               bl_ggml_type_get_traits (type)->name));
      type = BL_GGML_TYPE_F16;
    }
  if (!ggml_reference && (type == BL_GGML_TYPE_Q8_0 || type == BL_GGML_TYPE_Q4_0
                          || type == BL_GGML_TYPE_MXFP4))
    {
      data = encode_bitlens (spec, type, x, rows, cols, error);
      if (data == NULL)
        return FALSE;
    }
  else
    data = encode_rows (type, x, rows, cols);
  if (t->n_dims == 2 && type_params != NULL)
    {
      gpointer old = g_hash_table_lookup (type_params, GINT_TO_POINTER (type));

      g_hash_table_insert (type_params, GINT_TO_POINTER (type),
                           GSIZE_TO_POINTER (GPOINTER_TO_SIZE (old) + (gsize) t->n_elements));
    }
  return bl_gguf_writer_add_tensor (w, gguf_name, type, t->n_dims == 2 ? 2 : 1, ne, data, error);
}

static void
arch_u32 (BlGgufWriter *w,
          const char   *arch,
          const char   *suffix,
          int           value)
{
  g_autofree char *key = g_strconcat (arch, ".", suffix, NULL);

  bl_gguf_writer_add_uint32 (w, key, (guint32) value);
}

static void
arch_f32 (BlGgufWriter *w,
          const char   *arch,
          const char   *suffix,
          double        value)
{
  g_autofree char *key = g_strconcat (arch, ".", suffix, NULL);

  bl_gguf_writer_add_float32 (w, key, (float) value);
}

/* What llama.cpp needs to rotate as the model does: linear scaling as metadata; Llama 3's
 * as a rope_freqs tensor of per-frequency divisors (what convert_hf_to_gguf.py writes), here
 * the ratio of the plain to the scaled frequency so that llama.cpp's θ·pos/factor lands on
 * the scaled one; a GGUF model's own factors are written back as they were read. A
 * sliding window has no llama-architecture key, as in convert_hf_to_gguf.py: a note says so. */
static gboolean
add_rope_and_window (BlGgufWriter         *w,
                     const char           *arch,
                     const BlModelConfig  *cfg,
                     GPtrArray            *notes,
                     GError              **error)
{
  int half = cfg->head_dim / 2;

  if (cfg->rope_freq_factors == NULL && cfg->rope_scaling == BL_ROPE_LINEAR)
    {
      g_autofree char *key = g_strconcat (arch, ".rope.scaling.type", NULL);

      bl_gguf_writer_add_string (w, key, "linear");
      arch_f32 (w, arch, "rope.scaling.factor", cfg->rope_factor);
    }
  else if (cfg->rope_freq_factors != NULL || cfg->rope_scaling == BL_ROPE_LLAMA3)
    {
      BlModelConfig plain = *cfg;
      g_autofree float *base = g_new (float, half);
      g_autofree float *scaled = g_new (float, half);
      g_autofree float *factors = g_new (float, half);
      g_autoptr(GBytes) data = NULL;
      gint64 ne[1] = { half };

      plain.rope_scaling = BL_ROPE_DEFAULT;
      plain.rope_freq_factors = NULL;
      bl_model_config_rope_inv_freq (&plain, base);
      bl_model_config_rope_inv_freq (cfg, scaled);
      for (int j = 0; j < half; j++)
        factors[j] = cfg->rope_freq_factors != NULL ? cfg->rope_freq_factors[j] : base[j] / scaled[j];
      data = g_bytes_new_take (g_steal_pointer (&factors), (gsize) half * sizeof (float));
      if (!bl_gguf_writer_add_tensor (w, "rope_freqs.weight", BL_GGML_TYPE_F32, 1, ne, data, error))
        return FALSE;
    }
  if (cfg->sliding_window > 0)
    g_ptr_array_add (notes, g_strdup_printf ("sliding_window %d (from block %d on) is not written: "
                                             "llama.cpp's %s architecture has no key for it, as in "
                                             "its own convert_hf_to_gguf.py, and attends to every "
                                             "earlier token; windows longer than %d tokens give "
                                             "other results there", cfg->sliding_window,
                                             cfg->max_window_layers, arch, cfg->sliding_window));
  return TRUE;
}

/**
 * bl_export_gguf:
 * @model: the model
 * @layers: (array length=n_layers): the assignment
 * @n_layers: its length
 * @options: (nullable): the types of what the assignment does not cover
 * @path: the output file
 * @notes: (element-type utf8): receives a line for each deviation from the assignment (a
 *   fallback to F16, a missing tokenizer)
 * @cancellable: (nullable): a cancellable
 * @error: return location for an error
 *
 * Writes the model as a GGUF v3 file whose linear weights have the types
 * bl_export_spec_to_ggml() maps the assignment to.
 *
 * Returns: whether the file was written; a layer whose format has no GGUF type is a
 *   %BL_ERROR_UNSUPPORTED_FORMAT error naming it
 */
gboolean
bl_export_gguf (BlModel                   *model,
                const BlExportLayer       *layers,
                guint                      n_layers,
                const BlGgufExportOptions *options,
                const char                *path,
                GPtrArray                 *notes,
                GCancellable              *cancellable,
                GError                   **error)
{
  const BlModelConfig *cfg;
  g_autoptr(BlGgufWriter) w = NULL;
  g_autoptr(GHashTable) assigned = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr(GHashTable) type_params = g_hash_table_new (g_direct_hash, g_direct_equal);
  g_autofree char *base = NULL;
  BlGgufExportOptions opts = { BL_GGML_TYPE_F16, BL_GGML_TYPE_F16, NULL, FALSE, FALSE };
  const char *arch;
  gboolean permute;
  const BlExportLayer *head = NULL;
  int ftype = FTYPE_MOSTLY_F16;
  gsize best = 0;
  GHashTableIter it;
  gpointer k, val;

  g_return_val_if_fail (BL_IS_MODEL (model), FALSE);
  g_return_val_if_fail (path != NULL && notes != NULL, FALSE);

  cfg = bl_model_get_config (model);
  if (options != NULL)
    {
      opts = *options;
      if (opts.unquantized_type == 0)
        opts.unquantized_type = BL_GGML_TYPE_F16;
      if (opts.embedding_type == 0)
        opts.embedding_type = BL_GGML_TYPE_F16;
      if (opts.unquantized_f32)
        opts.unquantized_type = opts.embedding_type = BL_GGML_TYPE_F32;
    }
  if (!check_float_type (opts.unquantized_type, "unquantized", error)
      || !check_float_type (opts.embedding_type, "embedding", error))
    return FALSE;

  if (g_str_equal (cfg->model_type, "llama") || g_str_equal (cfg->model_type, "mistral"))
    {
      arch = "llama";
      permute = TRUE;
    }
  else if (g_str_equal (cfg->model_type, "qwen2"))
    {
      arch = "qwen2";
      permute = FALSE;
    }
  else
    {
      g_set_error (error, BL_ERROR, BL_ERROR_UNSUPPORTED_ARCHITECTURE,
                   "GGUF export: model type “%s” is not one of llama, mistral, qwen2",
                   cfg->model_type);
      return FALSE;
    }

  for (guint i = 0; i < n_layers; i++)
    {
      BlGgmlType type;

      if (layers[i].weight != NULL && !bl_export_spec_to_ggml (layers[i].weight, &type))
        {
          g_autofree char *s = bl_format_spec_to_string (layers[i].weight);

          g_set_error (error, BL_ERROR, BL_ERROR_UNSUPPORTED_FORMAT,
                       "GGUF export: layer %s has format %s, which no GGUF type stores; GGUF takes "
                       "fp16, bf16, int8:g32 (q8_0), int4:g32:q4_0 (q4_0) and mxfp4", layers[i].layer, s);
          return FALSE;
        }
      if (bl_model_get_tensor (model, layers[i].layer) == NULL)
        {
          g_set_error (error, BL_ERROR, BL_ERROR_NOT_FOUND,
                       "GGUF export: the model has no layer %s", layers[i].layer);
          return FALSE;
        }
      g_hash_table_insert (assigned, (gpointer) layers[i].layer, (gpointer) &layers[i]);
      if (g_str_equal (layers[i].layer, "lm_head.weight"))
        head = &layers[i];
    }

  w = bl_gguf_writer_new (BL_GGUF_DEFAULT_ALIGNMENT);
  base = g_path_get_basename (bl_model_get_path (model));
  bl_gguf_writer_add_string (w, "general.architecture", arch);
  bl_gguf_writer_add_string (w, "general.type", "model");
  bl_gguf_writer_add_string (w, "general.name", opts.name != NULL ? opts.name : base);
  bl_gguf_writer_add_string (w, "general.quantized_by", "Bitlens");

  for (guint i = 0; i < bl_model_get_n_tensors (model); i++)
    {
      const BlTensor *t = bl_model_get_tensor_at (model, i);
      g_autofree char *name = bl_export_gguf_tensor_name (t->name);
      const BlExportLayer *a = g_hash_table_lookup (assigned, t->name);
      BlGgmlType type;
      const BlFormatSpec *spec = NULL;

      if (g_cancellable_set_error_if_cancelled (cancellable, error))
        return FALSE;
      if (name == NULL)
        {
          g_set_error (error, BL_ERROR, BL_ERROR_UNSUPPORTED_ARCHITECTURE,
                       "GGUF export: tensor %s has no llama.cpp name", t->name);
          return FALSE;
        }
      if (t->n_dims != 2)
        type = BL_GGML_TYPE_F32;
      else if (g_str_equal (t->name, "model.embed_tokens.weight"))
        type = opts.embedding_type;
      else if (a != NULL && a->weight != NULL)
        {
          spec = a->weight;
          bl_export_spec_to_ggml (spec, &type);
        }
      else
        type = opts.unquantized_type;
      if (!add_tensor (w, model, t, name, t->name, type, spec, opts.ggml_reference, permute,
                       g_str_equal (t->name, "model.embed_tokens.weight") ? NULL : type_params,
                       notes, error))
        return FALSE;
    }
  /* A tied output layer is the embedding in llama.cpp unless output.weight exists: write
   * that tensor when the assignment quantizes the lm_head, the embedding lookup staying exact. */
  if (cfg->tie_word_embeddings && head != NULL && head->weight != NULL)
    {
      BlGgmlType type;

      bl_export_spec_to_ggml (head->weight, &type);
      if (!add_tensor (w, model, bl_model_get_tensor (model, "lm_head.weight"), "output.weight",
                       "lm_head.weight", type, head->weight, opts.ggml_reference, FALSE, type_params,
                       notes, error))
        return FALSE;
    }

  g_hash_table_iter_init (&it, type_params);
  while (g_hash_table_iter_next (&it, &k, &val))
    if (GPOINTER_TO_SIZE (val) > best)
      {
        best = GPOINTER_TO_SIZE (val);
        ftype = ftype_of ((BlGgmlType) GPOINTER_TO_INT (k));
      }

  arch_u32 (w, arch, "block_count", cfg->n_layers);
  arch_u32 (w, arch, "context_length", cfg->max_position_embeddings);
  arch_u32 (w, arch, "embedding_length", cfg->hidden_size);
  arch_u32 (w, arch, "feed_forward_length", cfg->intermediate_size);
  arch_u32 (w, arch, "attention.head_count", cfg->n_heads);
  arch_u32 (w, arch, "attention.head_count_kv", cfg->n_kv_heads);
  arch_f32 (w, arch, "rope.freq_base", cfg->rope_theta);
  arch_f32 (w, arch, "attention.layer_norm_rms_epsilon", cfg->rms_norm_eps);
  if (cfg->head_dim * cfg->n_heads != cfg->hidden_size)
    {
      arch_u32 (w, arch, "attention.key_length", cfg->head_dim);
      arch_u32 (w, arch, "attention.value_length", cfg->head_dim);
    }
  arch_u32 (w, arch, "vocab_size", cfg->vocab_size);
  arch_u32 (w, arch, "rope.dimension_count", cfg->head_dim);
  if (!add_rope_and_window (w, arch, cfg, notes, error))
    return FALSE;
  bl_gguf_writer_add_uint32 (w, "general.file_type", (guint32) ftype);
  bl_gguf_writer_add_uint32 (w, "general.quantization_version", 2);
  if (!add_tokenizer (w, model, notes, error))
    return FALSE;
  return bl_gguf_writer_write (w, path, cancellable, error);
}
