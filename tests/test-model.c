/* test-model.c: loading Hugging Face model directories into BlModel
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * The shared models (stories260k, tinystories-656k) are checked against their config.json
 * and safetensors headers; the tiny models are written here, with every tensor's values
 * known, in F32, F16 and BF16, single-file and sharded.
 */
#include <math.h>
#include <string.h>

#include <glib/gstdio.h>

#include "bl-error.h"
#include "bl-model.h"
#include "bl-model-config.h"
#include "bl-safetensors.h"
#include "safetensors-writer.h"

/* ------------------------------------------------------------------------------------------ */
/* helpers */

static char *
shared_model (const char *name)
{
  const char *shared = g_getenv ("BITLENS_SHARED_DIR");
  g_autofree char *path = NULL;

  if (shared == NULL)
    {
      g_test_skip ("BITLENS_SHARED_DIR is not set");
      return NULL;
    }
  path = g_build_filename (shared, "models", name, NULL);
  if (!g_file_test (path, G_FILE_TEST_IS_DIR))
    {
      g_test_skip_printf ("%s is absent", path);
      return NULL;
    }
  return g_steal_pointer (&path);
}

static void
rm_rf (const char *path)
{
  if (g_file_test (path, G_FILE_TEST_IS_DIR))
    {
      g_autoptr(GDir) dir = g_dir_open (path, 0, NULL);
      const char *name;

      while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
        {
          g_autofree char *child = g_build_filename (path, name, NULL);

          rm_rf (child);
        }
      g_rmdir (path);
    }
  else
    g_unlink (path);
}

static char *
make_tmp_dir (void)
{
  g_autoptr(GError) error = NULL;
  char *dir = g_dir_make_tmp ("bitlens-model-XXXXXX", &error);

  g_assert_no_error (error);
  return dir;
}

static void
write_text (const char *dir,
            const char *name,
            const char *text)
{
  g_autofree char *path = g_build_filename (dir, name, NULL);
  g_autoptr(GError) error = NULL;

  g_file_set_contents (path, text, -1, &error);
  g_assert_no_error (error);
}

static void
assert_message_has (const GError *error,
                    const char   *needle)
{
  if (strstr (error->message, needle) == NULL)
    g_error ("message “%s” lacks “%s”", error->message, needle);
}

/* ------------------------------------------------------------------------------------------ */
/* a tiny model: vocab 16, hidden 8, intermediate 12, 2 blocks, 2 heads of 4, 1 KV head */

enum { VOCAB = 16, HIDDEN = 8, INTER = 12, BLOCKS = 2, HEADS = 2, KV_HEADS = 1, HEAD_DIM = 4 };

typedef struct
{
  const char *model_type;      /* NULL: llama */
  BlDType dtype;
  gboolean tie;
  gboolean no_embed;           /* do not store model.embed_tokens.weight */
  gboolean no_lm_head;         /* do not store lm_head.weight */
  gboolean tied_metadata;      /* {"model.embed_tokens.weight": "lm_head.weight"} */
  gboolean qkv_bias;
  gboolean o_bias;
  gboolean mlp_bias;
  const char *extra_config;    /* more members for config.json, each with a leading comma */
  const char *skip;            /* a tensor not to store */
  const char *reshape;         /* a tensor to store with its dimensions swapped */
  gboolean sharded;
} Tiny;

/* Values k/16 with |k| ≤ 8 are exact in F32, F16 and BF16. */
static float
tiny_value (const char *name,
            int64_t     i)
{
  return (float) ((int) ((i * 7 + g_str_hash (name) % 13) % 17) - 8) / 16.0f;
}

static void
add_tiny (StWriter    *w,
          const Tiny  *t,
          const char  *name,
          int64_t      rows,
          int64_t      cols)
{
  int64_t shape[2] = { rows, cols };
  int n_dims = cols == 0 ? 1 : 2;
  int64_t n = rows * (cols ? cols : 1);
  g_autofree float *values = g_new (float, n);

  if (g_strcmp0 (t->skip, name) == 0)
    return;
  if (g_strcmp0 (t->reshape, name) == 0)
    {
      shape[0] = cols;
      shape[1] = rows;
    }
  for (int64_t i = 0; i < n; i++)
    values[i] = tiny_value (name, i);
  st_writer_add (w, name, t->dtype, n_dims, shape, values);
}

static void
add_linear (StWriter    *w,
            const Tiny  *t,
            int          block,
            const char  *module,
            int64_t      rows,
            int64_t      cols,
            gboolean     bias)
{
  g_autofree char *weight = g_strdup_printf ("model.layers.%d.%s.weight", block, module);
  g_autofree char *bias_name = g_strdup_printf ("model.layers.%d.%s.bias", block, module);

  add_tiny (w, t, weight, rows, cols);
  if (bias)
    add_tiny (w, t, bias_name, rows, 0);
}

static void
add_block (StWriter   *w,
           const Tiny *t,
           int         b)
{
  g_autofree char *n1 = g_strdup_printf ("model.layers.%d.input_layernorm.weight", b);
  g_autofree char *n2 = g_strdup_printf ("model.layers.%d.post_attention_layernorm.weight", b);

  add_linear (w, t, b, "self_attn.q_proj", HEADS * HEAD_DIM, HIDDEN, t->qkv_bias);
  add_linear (w, t, b, "self_attn.k_proj", KV_HEADS * HEAD_DIM, HIDDEN, t->qkv_bias);
  add_linear (w, t, b, "self_attn.v_proj", KV_HEADS * HEAD_DIM, HIDDEN, t->qkv_bias);
  add_linear (w, t, b, "self_attn.o_proj", HIDDEN, HEADS * HEAD_DIM, t->o_bias);
  add_linear (w, t, b, "mlp.gate_proj", INTER, HIDDEN, t->mlp_bias);
  add_linear (w, t, b, "mlp.up_proj", INTER, HIDDEN, t->mlp_bias);
  add_linear (w, t, b, "mlp.down_proj", HIDDEN, INTER, t->mlp_bias);
  add_tiny (w, t, n1, HIDDEN, 0);
  add_tiny (w, t, n2, HIDDEN, 0);
}

/* Writes config.json and the weights: model.safetensors, or two shards (the embedding and
 * block 0, then the rest) with model.safetensors.index.json. */
static void
write_tiny (const char *dir,
            const Tiny *t)
{
  g_autoptr(StWriter) first = st_writer_new ();
  g_autoptr(StWriter) second = st_writer_new ();
  StWriter *rest = t->sharded ? second : first;
  g_autofree char *config = NULL;

  config = g_strdup_printf ("{\n  \"architectures\": [\"LlamaForCausalLM\"],\n"
                            "  \"model_type\": \"%s\",\n  \"vocab_size\": %d,\n"
                            "  \"hidden_size\": %d,\n  \"intermediate_size\": %d,\n"
                            "  \"num_hidden_layers\": %d,\n  \"num_attention_heads\": %d,\n"
                            "  \"num_key_value_heads\": %d,\n  \"rms_norm_eps\": 1e-05,\n"
                            "  \"rope_theta\": 500000.0,\n  \"max_position_embeddings\": 64,\n"
                            "  \"tie_word_embeddings\": %s,\n  \"bos_token_id\": 1,\n"
                            "  \"eos_token_id\": [2, 3],\n  \"torch_dtype\": \"float32\"%s\n}\n",
                            t->model_type ? t->model_type : "llama", VOCAB, HIDDEN, INTER,
                            BLOCKS, HEADS, KV_HEADS, t->tie ? "true" : "false",
                            t->extra_config ? t->extra_config : "");
  write_text (dir, "config.json", config);

  if (!t->no_embed)
    add_tiny (first, t, "model.embed_tokens.weight", VOCAB, HIDDEN);
  add_block (first, t, 0);
  for (int b = 1; b < BLOCKS; b++)
    add_block (rest, t, b);
  add_tiny (rest, t, "model.norm.weight", HIDDEN, 0);
  if (!t->no_lm_head)
    add_tiny (rest, t, "lm_head.weight", VOCAB, HIDDEN);
  if (t->tied_metadata)
    st_writer_add_metadata (rest, "model.embed_tokens.weight", "lm_head.weight");

  if (!t->sharded)
    {
      g_autofree char *path = g_build_filename (dir, "model.safetensors", NULL);

      st_writer_write (first, path);
    }
  else
    {
      g_autofree char *p1 = g_build_filename (dir, "model-00001-of-00002.safetensors", NULL);
      g_autofree char *p2 = g_build_filename (dir, "model-00002-of-00002.safetensors", NULL);
      g_autoptr(GString) index = g_string_new ("{\"metadata\": {\"total_size\": 0},\n \"weight_map\": {");
      g_autoptr(GError) error = NULL;
      StWriter *shards[2] = { first, second };
      const char *names[2] = { "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors" };

      st_writer_write (first, p1);
      st_writer_write (second, p2);
      /* The index lists what each shard holds, read back from the shard itself. */
      for (int s = 0; s < 2; s++)
        {
          g_autoptr(GBytes) bytes = st_writer_to_bytes (shards[s]);
          g_autoptr(BlSafetensors) st =
            bl_safetensors_parse_header (g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes),
                                         names[s], &error);

          g_assert_no_error (error);
          for (guint i = 0; i < bl_safetensors_get_n_tensors (st); i++)
            g_string_append_printf (index, "%s\n  \"%s\": \"%s\"", index->str[index->len - 1] == '{' ? "" : ",",
                                    bl_safetensors_get_tensor_at (st, i)->name, names[s]);
        }
      g_string_append (index, "\n }\n}\n");
      write_text (dir, "model.safetensors.index.json", index->str);
    }
}

static BlModel *
load_ok (const char *dir)
{
  g_autoptr(GError) error = NULL;
  BlModel *model = bl_model_load (dir, NULL, &error);

  g_assert_no_error (error);
  g_assert_nonnull (model);
  return model;
}

static GError *
load_fails (const char  *dir,
            GQuark       domain,
            int          code)
{
  GError *error = NULL;
  g_autoptr(BlModel) model = bl_model_load (dir, NULL, &error);

  g_assert_null (model);
  g_assert_error (error, domain, code);
  g_test_message ("%s", error->message);
  return error;
}

static void
check_tensor_values (BlModel    *model,
                     const char *name)
{
  const BlTensor *t = bl_model_get_tensor (model, name);
  g_autofree float *values = NULL;

  g_assert_nonnull (t);
  values = g_new (float, t->n_elements);
  bl_tensor_to_f32 (t, values);
  for (int64_t i = 0; i < t->n_elements; i++)
    if (values[i] != tiny_value (t->name, i))
      g_error ("%s[%" G_GINT64_FORMAT "] = %g, wrote %g", name, i, values[i], tiny_value (t->name, i));
}

static void
check_all_values (BlModel *model)
{
  for (guint i = 0; i < bl_model_get_n_tensors (model); i++)
    check_tensor_values (model, bl_model_get_tensor_at (model, i)->name);
}

/* Untied, no biases: embedding 16×8, per block q 64 + k 32 + v 32 + o 64 + gate/up/down 3×96
 * + norms 16 = 496, final norm 8, lm_head 128. */
#define TINY_PARAMS (128 + BLOCKS * 496 + 8 + 128)

/* ------------------------------------------------------------------------------------------ */
/* shared models */

static char *
sha256_of_model (const char *dir)
{
  g_autoptr(GChecksum) sum = g_checksum_new (G_CHECKSUM_SHA256);
  const char *files[] = { "config.json", "model.safetensors" };

  for (guint i = 0; i < G_N_ELEMENTS (files); i++)
    {
      g_autofree char *path = g_build_filename (dir, files[i], NULL);
      g_autofree char *data = NULL;
      gsize len;

      g_assert_true (g_file_get_contents (path, &data, &len, NULL));
      g_checksum_update (sum, (const guchar *) data, (gssize) len);
    }
  return g_strdup (g_checksum_get_string (sum));
}

static void
test_stories260k (void)
{
  g_autofree char *dir = shared_model ("stories260k");
  g_autoptr(BlModel) model = NULL;
  g_autoptr(BlLayer) first = NULL;
  g_autoptr(BlLayer) last = NULL;
  g_autofree char *expected_fp = NULL;
  g_autofree char *name = NULL, *dtype = NULL, *shape = NULL;
  const BlModelConfig *c;
  BlLayerKind kind;
  gint64 n_params;
  int block;

  if (dir == NULL)
    return;
  model = load_ok (dir);
  c = bl_model_get_config (model);
  g_assert_cmpstr (c->model_type, ==, "llama");
  g_assert_cmpstr (c->architecture, ==, "LlamaForCausalLM");
  g_assert_cmpint (c->vocab_size, ==, 512);
  g_assert_cmpint (c->hidden_size, ==, 64);
  g_assert_cmpint (c->intermediate_size, ==, 172);
  g_assert_cmpint (c->n_layers, ==, 5);
  g_assert_cmpint (c->n_heads, ==, 8);
  g_assert_cmpint (c->n_kv_heads, ==, 4);
  g_assert_cmpint (c->head_dim, ==, 8);
  g_assert_cmpint (c->max_position_embeddings, ==, 512);
  g_assert_cmpfloat (c->rms_norm_eps, ==, 1e-5);
  g_assert_cmpfloat (c->rope_theta, ==, 10000.0);
  g_assert_true (c->tie_word_embeddings);
  g_assert_false (c->attention_bias);
  g_assert_false (c->o_proj_bias);
  g_assert_false (c->mlp_bias);
  g_assert_cmpint (c->bos_token_id, ==, 1);
  g_assert_cmpint (c->eos_token_id, ==, 2);
  g_assert_cmpstr (c->torch_dtype, ==, "float32");

  g_assert_cmpuint (bl_model_get_n_tensors (model), ==, 47);
  g_assert_cmpuint (g_list_model_get_n_items (G_LIST_MODEL (model)), ==, 47);
  g_assert_true (g_list_model_get_item_type (G_LIST_MODEL (model)) == BL_TYPE_LAYER);
  g_assert_null (g_list_model_get_item (G_LIST_MODEL (model), 47));
  g_assert_cmpint (bl_model_get_n_params (model), ==, 260032);
  for (guint i = 0; i < bl_model_get_n_tensors (model); i++)
    g_assert_cmpint (bl_model_get_tensor_at (model, i)->dtype, ==, BL_DTYPE_F32);

  /* stories260k stores no lm_head.weight: the tie resolves it to the embedding. */
  g_assert_true (bl_model_get_tensor (model, "lm_head.weight") ==
                 bl_model_get_tensor (model, "model.embed_tokens.weight"));
  g_assert_cmpstr (bl_model_get_tensor (model, "lm_head.weight")->name, ==, "model.embed_tokens.weight");
  g_assert_null (bl_model_get_tensor (model, "model.layers.5.mlp.up_proj.weight"));
  g_assert_nonnull (bl_model_get_tokenizer (model));

  first = g_list_model_get_item (G_LIST_MODEL (model), 0);
  g_object_get (first, "name", &name, "kind", &kind, "block", &block, "n-params", &n_params,
                "dtype", &dtype, "shape", &shape, NULL);
  g_assert_cmpstr (name, ==, "model.embed_tokens.weight");
  g_assert_cmpint (kind, ==, BL_LAYER_EMBEDDING);
  g_assert_cmpint (block, ==, -1);
  g_assert_cmpint (n_params, ==, 512 * 64);
  g_assert_cmpstr (dtype, ==, "F32");
  g_assert_cmpstr (shape, ==, "512×64");
  last = g_list_model_get_item (G_LIST_MODEL (model), 46);
  g_assert_cmpstr (bl_layer_get_name (last), ==, "model.norm.weight");
  g_assert_cmpint (bl_layer_get_kind (last), ==, BL_LAYER_NORM);

  expected_fp = sha256_of_model (dir);
  g_assert_cmpstr (bl_model_get_fingerprint (model), ==, expected_fp);
}

static void
test_tinystories (void)
{
  g_autofree char *dir = shared_model ("tinystories-656k");
  g_autoptr(BlModel) model = NULL;
  g_autoptr(BlLayer) last = NULL;
  const BlModelConfig *c;
  const BlTensor *embed;
  guint n_items;
  gint64 sum = 0;

  if (dir == NULL)
    return;
  model = load_ok (dir);
  c = bl_model_get_config (model);
  g_assert_cmpint (c->vocab_size, ==, 2048);
  g_assert_cmpint (c->hidden_size, ==, 128);
  g_assert_cmpint (c->intermediate_size, ==, 384);
  g_assert_cmpint (c->n_layers, ==, 2);
  g_assert_cmpint (c->n_kv_heads, ==, 4);
  g_assert_cmpint (c->head_dim, ==, 16);
  g_assert_cmpfloat (c->rms_norm_eps, ==, 1e-6);
  g_assert_cmpint (c->max_position_embeddings, ==, 512);
  g_assert_true (c->tie_word_embeddings);

  g_assert_cmpuint (bl_model_get_n_tensors (model), ==, 20);
  n_items = g_list_model_get_n_items (G_LIST_MODEL (model));
  g_assert_cmpuint (n_items, ==, 20);
  g_assert_cmpint (bl_model_get_n_params (model), ==, 656000);

  /* tinystories-656k stores the tied matrix only as lm_head.weight, with a
   * __metadata__ alias for the embedding. */
  embed = bl_model_get_tensor (model, "model.embed_tokens.weight");
  g_assert_nonnull (embed);
  g_assert_cmpstr (embed->name, ==, "lm_head.weight");
  g_assert_true (embed == bl_model_get_tensor (model, "lm_head.weight"));
  g_assert_cmpint (embed->shape[0], ==, 2048);
  g_assert_cmpint (embed->shape[1], ==, 128);

  for (guint i = 0; i < n_items; i++)
    {
      g_autoptr(BlLayer) layer = g_list_model_get_item (G_LIST_MODEL (model), i);

      g_assert_cmpint (bl_layer_get_kind (layer), !=, BL_LAYER_EMBEDDING);
      sum += bl_layer_get_n_params (layer);
    }
  g_assert_cmpint (sum, ==, 656000);
  last = g_list_model_get_item (G_LIST_MODEL (model), n_items - 1);
  g_assert_cmpstr (bl_layer_get_name (last), ==, "lm_head.weight");
  g_assert_cmpint (bl_layer_get_kind (last), ==, BL_LAYER_LM_HEAD);
  g_assert_true (bl_layer_kind_is_linear (BL_LAYER_LM_HEAD));
  g_assert_cmpstr (bl_layer_kind_to_string (bl_layer_get_kind (last)), ==, "lm_head");
}

/* ------------------------------------------------------------------------------------------ */
/* tiny models */

static void
check_tiny_layout (BlModel *model)
{
  static const BlLayerKind block_kinds[9] = {
    BL_LAYER_ATTN_Q, BL_LAYER_ATTN_K, BL_LAYER_ATTN_V, BL_LAYER_ATTN_O, BL_LAYER_MLP_GATE,
    BL_LAYER_MLP_UP, BL_LAYER_MLP_DOWN, BL_LAYER_NORM, BL_LAYER_NORM,
  };
  GListModel *list = G_LIST_MODEL (model);
  g_autoptr(BlLayer) embed = g_list_model_get_item (list, 0);
  g_autoptr(BlLayer) head = g_list_model_get_item (list, 2 + 9 * BLOCKS);
  gint64 sum = 0;

  g_assert_cmpuint (g_list_model_get_n_items (list), ==, 3 + 9 * BLOCKS);
  g_assert_cmpint (bl_layer_get_kind (embed), ==, BL_LAYER_EMBEDDING);
  g_assert_cmpint (bl_layer_get_kind (head), ==, BL_LAYER_LM_HEAD);
  for (int b = 0; b < BLOCKS; b++)
    for (int k = 0; k < 9; k++)
      {
        g_autoptr(BlLayer) layer = g_list_model_get_item (list, 1 + 9 * b + k);

        g_assert_cmpint (bl_layer_get_kind (layer), ==, block_kinds[k]);
        g_assert_cmpint (bl_layer_get_block (layer), ==, b);
      }
  for (guint i = 0; i < g_list_model_get_n_items (list); i++)
    {
      g_autoptr(BlLayer) layer = g_list_model_get_item (list, i);

      sum += bl_layer_get_n_params (layer);
    }
  g_assert_cmpint (sum, ==, bl_model_get_n_params (model));
}

static void
test_tiny_dtype (gconstpointer data)
{
  Tiny t = { .dtype = GPOINTER_TO_INT (data) };
  g_autofree char *dir = make_tmp_dir ();
  g_autoptr(BlModel) model = NULL;
  const BlModelConfig *c;

  write_tiny (dir, &t);
  model = load_ok (dir);
  c = bl_model_get_config (model);
  g_assert_cmpint (c->head_dim, ==, HEAD_DIM);        /* hidden_size / num_attention_heads */
  g_assert_cmpint (c->n_kv_heads, ==, KV_HEADS);
  g_assert_cmpfloat (c->rope_theta, ==, 500000.0);
  g_assert_cmpint (c->eos_token_id, ==, 2);            /* the first of a list */
  g_assert_false (c->tie_word_embeddings);
  g_assert_cmpuint (bl_model_get_n_tensors (model), ==, 2 + 9 * BLOCKS + 1);
  g_assert_cmpint (bl_model_get_n_params (model), ==, TINY_PARAMS);
  g_assert_true (bl_model_get_tensor (model, "lm_head.weight") !=
                 bl_model_get_tensor (model, "model.embed_tokens.weight"));
  g_assert_cmpint (bl_model_get_tensor (model, "lm_head.weight")->dtype, ==, t.dtype);
  g_assert_null (bl_model_get_tokenizer (model));
  check_tiny_layout (model);
  check_all_values (model);
  rm_rf (dir);
}

static void
test_tiny_sharded (void)
{
  Tiny t = { .dtype = BL_DTYPE_BF16, .sharded = TRUE };
  g_autofree char *dir = make_tmp_dir ();
  g_autoptr(BlModel) model = NULL;
  const BlTensor *embed, *head;

  write_tiny (dir, &t);
  model = load_ok (dir);
  g_assert_cmpuint (bl_model_get_n_tensors (model), ==, 2 + 9 * BLOCKS + 1);
  g_assert_cmpint (bl_model_get_n_params (model), ==, TINY_PARAMS);
  embed = bl_model_get_tensor (model, "model.embed_tokens.weight");
  head = bl_model_get_tensor (model, "lm_head.weight");
  g_assert_true (g_str_has_suffix (embed->file, "model-00001-of-00002.safetensors"));
  g_assert_true (g_str_has_suffix (head->file, "model-00002-of-00002.safetensors"));
  g_assert_true (bl_model_get_tensor_at (model, 0) == embed);
  check_tiny_layout (model);
  check_all_values (model);
  rm_rf (dir);
}

/* The fingerprint covers the bytes, not the path: a copy shares it, an edit changes it. */
static void
test_tiny_fingerprint (void)
{
  Tiny t = { .dtype = BL_DTYPE_F16 };
  Tiny u = { .dtype = BL_DTYPE_F16, .extra_config = ",\n  \"use_cache\": true" };
  g_autofree char *a = make_tmp_dir ();
  g_autofree char *b = make_tmp_dir ();
  g_autofree char *c = make_tmp_dir ();
  g_autoptr(BlModel) ma = NULL;
  g_autoptr(BlModel) mb = NULL;
  g_autoptr(BlModel) mc = NULL;
  g_autofree char *fp = NULL;

  write_tiny (a, &t);
  write_tiny (b, &t);
  write_tiny (c, &u);
  ma = load_ok (a);
  mb = load_ok (b);
  mc = load_ok (c);
  g_assert_cmpuint (strlen (bl_model_get_fingerprint (ma)), ==, 64);
  g_assert_cmpstr (bl_model_get_fingerprint (ma), ==, bl_model_get_fingerprint (mb));
  g_assert_cmpstr (bl_model_get_fingerprint (ma), !=, bl_model_get_fingerprint (mc));
  g_object_get (ma, "fingerprint", &fp, NULL);
  g_assert_cmpstr (fp, ==, bl_model_get_fingerprint (ma));
  rm_rf (a);
  rm_rf (b);
  rm_rf (c);
}

static void
test_tiny_tied_metadata (void)
{
  Tiny t = { .dtype = BL_DTYPE_F32, .tie = TRUE, .no_embed = TRUE, .tied_metadata = TRUE };
  g_autofree char *dir = make_tmp_dir ();
  g_autoptr(BlModel) model = NULL;

  write_tiny (dir, &t);
  model = load_ok (dir);
  g_assert_cmpstr (bl_model_get_tensor (model, "model.embed_tokens.weight")->name, ==, "lm_head.weight");
  g_assert_cmpint (bl_model_get_n_params (model), ==, TINY_PARAMS - VOCAB * HIDDEN);
  g_assert_cmpuint (g_list_model_get_n_items (G_LIST_MODEL (model)), ==, 2 + 9 * BLOCKS);
  rm_rf (dir);
}

/* Tied without the metadata alias: the tie alone resolves whichever name is missing. */
static void
test_tiny_tied_plain (void)
{
  Tiny only_head = { .dtype = BL_DTYPE_F32, .tie = TRUE, .no_embed = TRUE };
  Tiny only_embed = { .dtype = BL_DTYPE_F32, .tie = TRUE, .no_lm_head = TRUE };
  g_autofree char *a = make_tmp_dir ();
  g_autofree char *b = make_tmp_dir ();
  g_autoptr(BlModel) ma = NULL;
  g_autoptr(BlModel) mb = NULL;

  write_tiny (a, &only_head);
  write_tiny (b, &only_embed);
  ma = load_ok (a);
  mb = load_ok (b);
  g_assert_cmpstr (bl_model_get_tensor (ma, "model.embed_tokens.weight")->name, ==, "lm_head.weight");
  g_assert_cmpstr (bl_model_get_tensor (mb, "lm_head.weight")->name, ==, "model.embed_tokens.weight");
  g_assert_cmpint (bl_model_get_n_params (ma), ==, TINY_PARAMS - VOCAB * HIDDEN);
  g_assert_cmpint (bl_model_get_n_params (mb), ==, TINY_PARAMS - VOCAB * HIDDEN);
  rm_rf (a);
  rm_rf (b);
}

/* With both matrices stored and the tie on, transformers' tie_weights() makes lm_head use
 * the embedding; the stored lm_head is not read and not counted. */
static void
test_tiny_tied_both_stored (void)
{
  Tiny t = { .dtype = BL_DTYPE_F32, .tie = TRUE };
  g_autofree char *dir = make_tmp_dir ();
  g_autoptr(BlModel) model = NULL;

  write_tiny (dir, &t);
  model = load_ok (dir);
  g_assert_cmpuint (bl_model_get_n_tensors (model), ==, 2 + 9 * BLOCKS + 1);
  g_assert_cmpstr (bl_model_get_tensor (model, "lm_head.weight")->name, ==, "model.embed_tokens.weight");
  g_assert_cmpint (bl_model_get_n_params (model), ==, TINY_PARAMS - VOCAB * HIDDEN);
  rm_rf (dir);
}

static void
test_tiny_qwen2 (void)
{
  Tiny t = { .model_type = "qwen2", .dtype = BL_DTYPE_F32, .qkv_bias = TRUE };
  g_autofree char *dir = make_tmp_dir ();
  g_autoptr(BlModel) model = NULL;
  g_autoptr(BlLayer) q = NULL;
  g_autoptr(BlLayer) o = NULL;
  const BlModelConfig *c;

  write_tiny (dir, &t);
  model = load_ok (dir);
  c = bl_model_get_config (model);
  g_assert_cmpstr (c->model_type, ==, "qwen2");
  g_assert_true (c->attention_bias);
  g_assert_false (c->o_proj_bias);
  g_assert_false (c->mlp_bias);
  g_assert_cmpint (c->max_position_embeddings, ==, 64);
  g_assert_cmpint (bl_model_get_n_params (model), ==,
                   TINY_PARAMS + BLOCKS * (HEADS + 2 * KV_HEADS) * HEAD_DIM);
  q = g_list_model_get_item (G_LIST_MODEL (model), 1);
  o = g_list_model_get_item (G_LIST_MODEL (model), 4);
  g_assert_cmpint (bl_layer_get_kind (q), ==, BL_LAYER_ATTN_Q);
  g_assert_nonnull (bl_layer_get_bias (q));
  g_assert_cmpstr (bl_layer_get_bias (q)->name, ==, "model.layers.0.self_attn.q_proj.bias");
  g_assert_cmpint (bl_layer_get_n_params (q), ==, HEADS * HEAD_DIM * (HIDDEN + 1));
  g_assert_null (bl_layer_get_bias (o));
  check_tiny_layout (model);
  check_all_values (model);
  rm_rf (dir);
}

static void
test_tiny_llama_biases (void)
{
  Tiny t = { .dtype = BL_DTYPE_F16, .qkv_bias = TRUE, .o_bias = TRUE, .mlp_bias = TRUE,
             .extra_config = ",\n  \"attention_bias\": true,\n  \"mlp_bias\": true" };
  g_autofree char *dir = make_tmp_dir ();
  g_autoptr(BlModel) model = NULL;
  const BlModelConfig *c;

  write_tiny (dir, &t);
  model = load_ok (dir);
  c = bl_model_get_config (model);
  g_assert_true (c->attention_bias);
  g_assert_true (c->o_proj_bias);
  g_assert_true (c->mlp_bias);
  g_assert_cmpint (bl_model_get_n_params (model), ==,
                   TINY_PARAMS + BLOCKS * ((HEADS + 2 * KV_HEADS) * HEAD_DIM + HIDDEN +
                                           2 * INTER + HIDDEN));
  check_tiny_layout (model);
  check_all_values (model);
  rm_rf (dir);
}

/* mistral reads neither bias switch and defaults to 131072 positions. */
static void
test_tiny_mistral (void)
{
  Tiny t = { .model_type = "mistral", .dtype = BL_DTYPE_BF16,
             .extra_config = ",\n  \"attention_bias\": true,\n  \"sliding_window\": 4096" };
  g_autofree char *dir = make_tmp_dir ();
  g_autoptr(BlModel) model = NULL;
  const BlModelConfig *c;

  write_tiny (dir, &t);
  model = load_ok (dir);
  c = bl_model_get_config (model);
  g_assert_cmpstr (c->model_type, ==, "mistral");
  g_assert_false (c->attention_bias);
  g_assert_false (c->o_proj_bias);
  g_assert_cmpint (bl_model_get_n_params (model), ==, TINY_PARAMS);
  rm_rf (dir);
}

/* ------------------------------------------------------------------------------------------ */
/* async */

typedef struct
{
  GMainLoop *loop;
  BlModel *model;
  GError *error;
} AsyncResult;

static void
on_loaded (GObject      *source,
           GAsyncResult *result,
           gpointer      user_data)
{
  AsyncResult *r = user_data;

  r->model = bl_model_load_finish (result, &r->error);
  g_main_loop_quit (r->loop);
}

static void
test_async (void)
{
  Tiny t = { .dtype = BL_DTYPE_F32 };
  g_autofree char *dir = make_tmp_dir ();
  g_autoptr(GMainLoop) loop = g_main_loop_new (NULL, FALSE);
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  AsyncResult r = { loop, NULL, NULL };

  write_tiny (dir, &t);
  bl_model_load_async (dir, NULL, on_loaded, &r);
  g_main_loop_run (loop);
  g_assert_no_error (r.error);
  g_assert_nonnull (r.model);
  g_assert_cmpint (bl_model_get_n_params (r.model), ==, TINY_PARAMS);
  g_clear_object (&r.model);

  g_cancellable_cancel (cancellable);
  bl_model_load_async (dir, cancellable, on_loaded, &r);
  g_main_loop_run (loop);
  g_assert_null (r.model);
  g_assert_error (r.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&r.error);
  rm_rf (dir);
}

/* ------------------------------------------------------------------------------------------ */
/* bad model directories */

static void
test_bad_missing_tensor (void)
{
  Tiny t = { .dtype = BL_DTYPE_F32, .skip = "model.layers.1.mlp.up_proj.weight" };
  g_autofree char *dir = make_tmp_dir ();
  g_autoptr(GError) error = NULL;

  write_tiny (dir, &t);
  error = load_fails (dir, BL_ERROR, BL_ERROR_CORRUPT_FILE);
  assert_message_has (error, "model.safetensors");
  assert_message_has (error, "“model.layers.1.mlp.up_proj.weight” is missing");
  assert_message_has (error, "llama model with 2 blocks");
  rm_rf (dir);
}

static void
test_bad_wrong_shape (void)
{
  Tiny t = { .dtype = BL_DTYPE_F32, .reshape = "model.layers.0.mlp.down_proj.weight" };
  g_autofree char *dir = make_tmp_dir ();
  g_autoptr(GError) error = NULL;

  write_tiny (dir, &t);
  error = load_fails (dir, BL_ERROR, BL_ERROR_CORRUPT_FILE);
  assert_message_has (error, "model.safetensors: tensor “model.layers.0.mlp.down_proj.weight”");
  assert_message_has (error, "has shape [12, 8], but config.json implies [8, 12]");
  assert_message_has (error, "absolute offset");
  rm_rf (dir);
}

static void
test_bad_missing_bias (void)
{
  Tiny t = { .model_type = "qwen2", .dtype = BL_DTYPE_F32 };
  g_autofree char *dir = make_tmp_dir ();
  g_autoptr(GError) error = NULL;

  write_tiny (dir, &t);
  error = load_fails (dir, BL_ERROR, BL_ERROR_CORRUPT_FILE);
  assert_message_has (error, "“model.layers.0.self_attn.q_proj.bias” is missing");
  assert_message_has (error, "qwen2");
  rm_rf (dir);
}

static void
test_bad_untied_no_lm_head (void)
{
  Tiny t = { .dtype = BL_DTYPE_F32, .no_lm_head = TRUE };
  g_autofree char *dir = make_tmp_dir ();
  g_autoptr(GError) error = NULL;

  write_tiny (dir, &t);
  error = load_fails (dir, BL_ERROR, BL_ERROR_CORRUPT_FILE);
  assert_message_has (error, "“lm_head.weight” is missing");
  assert_message_has (error, "untied embeddings");
  rm_rf (dir);
}

static void
test_bad_unknown_architecture (void)
{
  Tiny t = { .model_type = "gpt2", .dtype = BL_DTYPE_F32 };
  g_autofree char *dir = make_tmp_dir ();
  g_autoptr(GError) error = NULL;

  write_tiny (dir, &t);
  error = load_fails (dir, BL_ERROR, BL_ERROR_UNSUPPORTED_ARCHITECTURE);
  assert_message_has (error, "config.json");
  assert_message_has (error, "model_type “gpt2”");
  assert_message_has (error, "llama, mistral, qwen2");
  rm_rf (dir);
}

static void
test_bad_config_malformed (void)
{
  Tiny t = { .dtype = BL_DTYPE_F32 };
  g_autofree char *dir = make_tmp_dir ();
  g_autoptr(GError) error = NULL;

  write_tiny (dir, &t);
  write_text (dir, "config.json", "{\n  \"model_type\": \"llama\",\n  \"vocab_size\": 16,,\n}\n");
  error = load_fails (dir, BL_ERROR, BL_ERROR_CORRUPT_FILE);
  assert_message_has (error, "config.json:3:");
  assert_message_has (error, "Parse error");
  rm_rf (dir);
}

typedef struct
{
  const char *path;
  const char *extra;
  BlErrorCode code;
  const char *needle;
} ConfigCase;

/* Members appended to the tiny model's config.json. */
static const ConfigCase config_cases[] = {
  { "/bitlens/model/bad/config/duplicate-key", ", \"hidden_size\": 16", BL_ERROR_CORRUPT_FILE,
    "duplicate key “hidden_size”" },
  { "/bitlens/model/bad/config/head-dim-zero", ", \"head_dim\": 0", BL_ERROR_CORRUPT_FILE,
    "“head_dim” is 0, not a positive integer" },
  { "/bitlens/model/bad/config/bias-type", ", \"attention_bias\": 1", BL_ERROR_CORRUPT_FILE,
    "“attention_bias” is an integer, not a boolean" },
  { "/bitlens/model/bad/config/huge-integer", ",\n  \"pad_token_id\": 99999999999999999999",
    BL_ERROR_CORRUPT_FILE, "config.json:17:19: integer 99999999999999999999 is outside the 64-bit range" },
  { "/bitlens/model/bad/config/rope-scaling",
    ", \"rope_scaling\": {\"rope_type\": \"yarn\", \"factor\": 4.0}",
    BL_ERROR_UNSUPPORTED_ARCHITECTURE, "rope_scaling “yarn” is not supported; Bitlens implements default, linear and llama3" },
  { "/bitlens/model/bad/config/rope-scaling-llama3-incomplete",
    ", \"rope_scaling\": {\"rope_type\": \"llama3\", \"factor\": 8.0}",
    BL_ERROR_CORRUPT_FILE, "rope_scaling (llama3): “low_freq_factor” is missing" },
  { "/bitlens/model/bad/config/rope-scaling-llama3-bands",
    ", \"rope_scaling\": {\"rope_type\": \"llama3\", \"factor\": 8.0, \"low_freq_factor\": 4.0, "
    "\"high_freq_factor\": 4.0, \"original_max_position_embeddings\": 8192}",
    BL_ERROR_CORRUPT_FILE, "needs 0 < low_freq_factor < high_freq_factor, not 4 and 4" },
  { "/bitlens/model/bad/config/rope-scaling-factor",
    ", \"rope_scaling\": {\"type\": \"linear\", \"factor\": 0}",
    BL_ERROR_CORRUPT_FILE, "rope_scaling (linear) needs a positive “factor”, not 0" },
  { "/bitlens/model/bad/config/rope-scaling-type",
    ", \"rope_scaling\": \"linear\"",
    BL_ERROR_CORRUPT_FILE, "“rope_scaling” is a string, not an object or null" },
  { "/bitlens/model/bad/config/activation", ", \"hidden_act\": \"gelu\"",
    BL_ERROR_UNSUPPORTED_ARCHITECTURE, "hidden_act “gelu”" },
};

static void
test_bad_config (gconstpointer data)
{
  const ConfigCase *cc = data;
  Tiny t = { .dtype = BL_DTYPE_F32, .extra_config = cc->extra };
  g_autofree char *dir = make_tmp_dir ();
  g_autoptr(GError) error = NULL;

  write_tiny (dir, &t);
  error = load_fails (dir, BL_ERROR, (int) cc->code);
  assert_message_has (error, "config.json");
  assert_message_has (error, cc->needle);
  rm_rf (dir);
}

/* Field checks that cannot be reached by appending members, on config text alone. */
static void
test_config_fields (void)
{
  static const struct { const char *json; BlErrorCode code; const char *needle; } cases[] = {
    { "{\"model_type\": \"llama\", \"vocab_size\": 16, \"hidden_size\": \"8\"}",
      BL_ERROR_CORRUPT_FILE, "“hidden_size” is \"8\", not a positive integer" },
    { "{\"model_type\": \"llama\", \"vocab_size\": 16, \"hidden_size\": 9, \"intermediate_size\": 4, "
      "\"num_hidden_layers\": 1, \"num_attention_heads\": 2}",
      BL_ERROR_CORRUPT_FILE, "hidden_size 9 is not a multiple of num_attention_heads 2" },
    { "{\"model_type\": \"llama\", \"vocab_size\": 16, \"hidden_size\": 8, \"intermediate_size\": 4, "
      "\"num_hidden_layers\": 1, \"num_attention_heads\": 4, \"num_key_value_heads\": 3}",
      BL_ERROR_CORRUPT_FILE, "num_attention_heads 4 is not a multiple of num_key_value_heads 3" },
    { "{\"model_type\": \"llama\", \"vocab_size\": 16, \"hidden_size\": 8, \"intermediate_size\": 4, "
      "\"num_hidden_layers\": 1, \"num_attention_heads\": 4, \"rope_theta\": -1}",
      BL_ERROR_CORRUPT_FILE, "rope_theta -1 is out of range" },
    { "{\"vocab_size\": 16}", BL_ERROR_CORRUPT_FILE, "“model_type” is missing" },
    { "{\"model_type\": \"llama\"}", BL_ERROR_CORRUPT_FILE, "“vocab_size” is missing" },
    { "[]", BL_ERROR_CORRUPT_FILE, "not an object" },
    { "", BL_ERROR_CORRUPT_FILE, "empty" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(BlModelConfig) c =
        bl_model_config_new_from_data (cases[i].json, strlen (cases[i].json), "cfg.json", &error);

      g_assert_null (c);
      g_assert_error (error, BL_ERROR, (int) cases[i].code);
      g_assert_true (g_str_has_prefix (error->message, "cfg.json"));
      assert_message_has (error, cases[i].needle);
    }
}

/* Defaults of transformers' config classes for fields config.json leaves out. */
static void
test_config_defaults (void)
{
  const char *json = "{\"model_type\": \"qwen2\", \"vocab_size\": 16, \"hidden_size\": 8, "
                     "\"intermediate_size\": 4, \"num_hidden_layers\": 1, "
                     "\"num_attention_heads\": 2, \"head_dim\": null, \"rope_scaling\": null, "
                     "\"eos_token_id\": null}";
  g_autoptr(GError) error = NULL;
  g_autoptr(BlModelConfig) c = bl_model_config_new_from_data (json, strlen (json), "cfg.json", &error);

  g_assert_no_error (error);
  g_assert_cmpint (c->n_kv_heads, ==, 2);
  g_assert_cmpint (c->head_dim, ==, 4);
  g_assert_cmpint (c->max_position_embeddings, ==, 32768);
  g_assert_cmpfloat (c->rope_theta, ==, 10000.0);
  g_assert_cmpfloat (c->rms_norm_eps, ==, 1e-6);
  g_assert_false (c->tie_word_embeddings);
  g_assert_true (c->attention_bias);
  g_assert_false (c->o_proj_bias);
  g_assert_cmpint (c->bos_token_id, ==, -1);
  g_assert_cmpint (c->eos_token_id, ==, -1);
  g_assert_null (c->architecture);
  g_assert_null (c->torch_dtype);
  g_assert_cmpstr (bl_model_config_supported_types ()[2], ==, "qwen2");
  g_assert_cmpint (c->rope_scaling, ==, BL_ROPE_DEFAULT);
  /* Qwen2Config: sliding_window 4096 only with use_sliding_window, which defaults to false */
  g_assert_cmpint (c->sliding_window, ==, 0);
  g_assert_cmpint (bl_model_config_attention_window (c, 0), ==, 0);
}

/* Which blocks attend through a sliding window, and how wide it is, as the transformers
 * config classes decide. */
static void
test_config_sliding_window (void)
{
  static const struct { const char *extra; int window; int first_layer; const char *error; } cases[] = {
    /* MistralConfig defaults to a 4096-token window; null turns it off (Mistral v0.2 on) */
    { "\"model_type\": \"mistral\"", 4096, 0, NULL },
    { "\"model_type\": \"mistral\", \"sliding_window\": null", 0, 0, NULL },
    { "\"model_type\": \"mistral\", \"sliding_window\": 7", 7, 0, NULL },
    /* MixtralConfig defaults to none */
    { "\"model_type\": \"mixtral\"", 0, 0, NULL },
    { "\"model_type\": \"mixtral\", \"sliding_window\": 4096", 4096, 0, NULL },
    /* llama has no sliding window, whatever the file says */
    { "\"model_type\": \"llama\", \"sliding_window\": 7", 0, 0, NULL },
    /* qwen2: only with use_sliding_window, from max_window_layers (default 28) on */
    { "\"model_type\": \"qwen2\", \"sliding_window\": 7", 0, 0, NULL },
    { "\"model_type\": \"qwen2\", \"use_sliding_window\": true, \"sliding_window\": 7", 7, 28, NULL },
    { "\"model_type\": \"qwen2\", \"use_sliding_window\": true, \"sliding_window\": 7, "
      "\"max_window_layers\": 1, \"layer_types\": [\"full_attention\", \"sliding_attention\"]", 7, 1, NULL },
    { "\"model_type\": \"qwen2\", \"use_sliding_window\": true, \"sliding_window\": 7, "
      "\"max_window_layers\": 1, \"layer_types\": [\"sliding_attention\", \"full_attention\"]", 0, 0,
      "layer_types is not 1 × full_attention followed by sliding_attention up to the 2 layers" },
    { "\"model_type\": \"mistral\", \"sliding_window\": 0", 0, 0,
      "“sliding_window” is 0, not a positive integer" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *json = g_strdup_printf ("{%s, \"vocab_size\": 16, \"hidden_size\": 8, "
                                               "\"intermediate_size\": 4, \"num_hidden_layers\": 2, "
                                               "\"num_attention_heads\": 2}", cases[i].extra);
      g_autoptr(GError) error = NULL;
      g_autoptr(BlModelConfig) c = bl_model_config_new_from_data (json, strlen (json), "cfg.json", &error);

      if (cases[i].error != NULL)
        {
          g_assert_null (c);
          g_assert_nonnull (error);
          assert_message_has (error, cases[i].error);
          continue;
        }
      g_assert_no_error (error);
      g_assert_cmpint (c->sliding_window, ==, cases[i].window);
      for (int l = 0; l < 30; l++)
        g_assert_cmpint (bl_model_config_attention_window (c, l), ==,
                         cases[i].window > 0 && l >= cases[i].first_layer ? cases[i].window : 0);
    }
}

/* The rotary inverse frequencies under rope_scaling, against values computed by hand from
 * transformers' _compute_llama3_parameters and _compute_linear_scaling_rope_parameters. */
static void
test_config_rope_scaling (void)
{
  const char *json = "{\"model_type\": \"llama\", \"vocab_size\": 16, \"hidden_size\": 64, "
                     "\"intermediate_size\": 4, \"num_hidden_layers\": 1, \"num_attention_heads\": 4, "
                     "\"rope_theta\": 10000, \"rope_scaling\": {\"rope_type\": \"llama3\", \"factor\": 8, "
                     "\"low_freq_factor\": 1, \"high_freq_factor\": 4, "
                     "\"original_max_position_embeddings\": 64}}";
  g_autoptr(GError) error = NULL;
  g_autoptr(BlModelConfig) c = bl_model_config_new_from_data (json, strlen (json), "cfg.json", &error);
  float f[8];

  g_assert_no_error (error);
  g_assert_cmpint (c->rope_scaling, ==, BL_ROPE_LLAMA3);
  g_assert_cmpint (c->head_dim, ==, 16);
  bl_model_config_rope_inv_freq (c, f);
  /* j = 0: wavelength 2π < 64/4, kept */
  g_assert_cmpfloat (f[0], ==, 1.0f);
  /* j = 1: 10000^(−1/8) = 0.316228, wavelength 19.869 between 16 and 64: s = (64/19.869 − 1)/3
   * = 0.740357, f·((1 − s)/8 + s) = 0.244384 */
  g_assert_cmpfloat_with_epsilon (f[1], 0.316228 * ((1 - 0.740357) / 8 + 0.740357), 1e-5);
  /* j = 3: 10000^(−3/8) = 0.0316228, wavelength 198.7 > 64: divided by 8 */
  g_assert_cmpfloat_with_epsilon (f[3], 0.0316228 / 8, 1e-8);
  /* j = 7: 10000^(−7/8), divided by 8 */
  g_assert_cmpfloat_with_epsilon (f[7], pow (10000.0, -7.0 / 8) / 8, 1e-10);

  c->rope_scaling = BL_ROPE_LINEAR;
  c->rope_factor = 4.0;
  bl_model_config_rope_inv_freq (c, f);
  g_assert_cmpfloat (f[0], ==, 0.25f);
  g_assert_cmpfloat_with_epsilon (f[1], 0.316228 / 4, 1e-6);
}

static void
test_bad_directory (void)
{
  g_autofree char *dir = make_tmp_dir ();
  g_autofree char *missing = g_build_filename (dir, "nope", NULL);
  g_autofree char *file = g_build_filename (dir, "config.json", NULL);
  g_autoptr(GError) e1 = NULL;
  g_autoptr(GError) e2 = NULL;
  g_autoptr(GError) e3 = NULL;
  g_autoptr(GError) e4 = NULL;
  g_autoptr(GError) e5 = NULL;
  Tiny t = { .dtype = BL_DTYPE_F32 };
  g_autofree char *weights = NULL;

  e1 = load_fails (missing, BL_ERROR, BL_ERROR_NOT_FOUND);
  assert_message_has (e1, missing);
  e2 = load_fails (dir, BL_ERROR, BL_ERROR_NOT_FOUND);
  assert_message_has (e2, "has no config.json");

  write_tiny (dir, &t);
  e3 = load_fails (file, BL_ERROR, BL_ERROR_INVALID_ARGUMENT);
  assert_message_has (e3, "is not a directory");

  weights = g_build_filename (dir, "model.safetensors", NULL);
  g_assert_cmpint (g_unlink (weights), ==, 0);
  e4 = load_fails (dir, BL_ERROR, BL_ERROR_NOT_FOUND);
  assert_message_has (e4, "neither model.safetensors nor model.safetensors.index.json");

  write_text (dir, "pytorch_model.bin", "PK");
  e5 = load_fails (dir, BL_ERROR, BL_ERROR_UNSUPPORTED_FORMAT);
  assert_message_has (e5, "pytorch_model.bin");
  rm_rf (dir);
}

static void
test_bad_safetensors (void)
{
  Tiny t = { .dtype = BL_DTYPE_F32 };
  g_autofree char *dir = make_tmp_dir ();
  g_autofree char *weights = g_build_filename (dir, "model.safetensors", NULL);
  g_autoptr(GBytes) bad = st_raw_file ("{\"model.embed_tokens.weight\":{\"dtype\":\"I8\","
                                       "\"shape\":[16,8],\"data_offsets\":[0,128]}}", 128);
  g_autoptr(GError) e1 = NULL;
  g_autoptr(GError) e2 = NULL;

  write_tiny (dir, &t);
  g_file_set_contents (weights, g_bytes_get_data (bad, NULL), (gssize) g_bytes_get_size (bad), NULL);
  e1 = load_fails (dir, BL_ERROR, BL_ERROR_UNSUPPORTED_FORMAT);
  assert_message_has (e1, weights);
  assert_message_has (e1, "tensor “model.embed_tokens.weight” has dtype I8");

  g_file_set_contents (weights, g_bytes_get_data (bad, NULL), 100, NULL);
  e2 = load_fails (dir, BL_ERROR, BL_ERROR_CORRUPT_FILE);
  assert_message_has (e2, weights);
  assert_message_has (e2, "end beyond file data size");
  rm_rf (dir);
}

static void
rewrite_index (const char *dir,
               const char *from,
               const char *to)
{
  g_autofree char *path = g_build_filename (dir, "model.safetensors.index.json", NULL);
  g_autofree char *text = NULL;
  g_autoptr(GString) s = NULL;

  g_assert_true (g_file_get_contents (path, &text, NULL, NULL));
  s = g_string_new (text);
  g_assert_cmpuint (g_string_replace (s, from, to, 1), ==, 1);
  g_assert_true (g_file_set_contents (path, s->str, -1, NULL));
}

static void
test_bad_shards (void)
{
  Tiny t = { .dtype = BL_DTYPE_F32, .sharded = TRUE };
  g_autofree char *dir = make_tmp_dir ();
  g_autoptr(GError) e1 = NULL;
  g_autoptr(GError) e2 = NULL;
  g_autoptr(GError) e3 = NULL;
  g_autoptr(GError) e4 = NULL;

  write_tiny (dir, &t);
  rewrite_index (dir, "\"model.norm.weight\": \"model-00002-of-00002", "\"model.norm.weight\": \"model-00001-of-00002");
  e1 = load_fails (dir, BL_ERROR, BL_ERROR_CORRUPT_FILE);
  assert_message_has (e1, "model.safetensors.index.json: weight_map puts tensor “model.norm.weight” "
                          "in model-00001-of-00002.safetensors, which does not contain it");

  write_tiny (dir, &t);
  rewrite_index (dir, "\"model.norm.weight\": \"model-00002-of-00002.safetensors",
                 "\"model.norm.weight\": \"../model-00002-of-00002.safetensors");
  e2 = load_fails (dir, BL_ERROR, BL_ERROR_CORRUPT_FILE);
  assert_message_has (e2, "“../model-00002-of-00002.safetensors”, which is not a file name");

  write_tiny (dir, &t);
  rewrite_index (dir, "\"model.norm.weight\": \"model-00002-of-00002.safetensors",
                 "\"model.norm.weight\": \"model-00003-of-00002.safetensors");
  e3 = load_fails (dir, G_FILE_ERROR, G_FILE_ERROR_NOENT);
  assert_message_has (e3, "model.safetensors.index.json: shard “model-00003-of-00002.safetensors”");

  /* the same tensor name in both shards */
  {
    g_autoptr(StWriter) w = st_writer_new ();
    g_autofree char *p1 = g_build_filename (dir, "model-00001-of-00002.safetensors", NULL);
    const int64_t shape[1] = { HIDDEN };
    float values[HIDDEN] = { 0 };

    write_tiny (dir, &t);
    st_writer_add (w, "model.norm.weight", BL_DTYPE_F32, 1, shape, values);
    st_writer_add (w, "model.embed_tokens.weight", BL_DTYPE_F32, 1, shape, values);
    st_writer_write (w, p1);
    e4 = load_fails (dir, BL_ERROR, BL_ERROR_CORRUPT_FILE);
    assert_message_has (e4, "tensor “model.norm.weight”");
    assert_message_has (e4, "is also stored in");
  }
  rm_rf (dir);
}

static void
test_bad_tokenizer (void)
{
  Tiny t = { .dtype = BL_DTYPE_F32 };
  g_autofree char *dir = make_tmp_dir ();
  g_autoptr(GError) error = NULL;

  write_tiny (dir, &t);
  write_text (dir, "tokenizer.json", "{\"model\": ");
  error = load_fails (dir, BL_ERROR, BL_ERROR_CORRUPT_FILE);
  assert_message_has (error, "Cannot load the tokenizer of");
  assert_message_has (error, "tokenizer.json");
  rm_rf (dir);
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/bitlens/model/stories260k", test_stories260k);
  g_test_add_func ("/bitlens/model/tinystories-656k", test_tinystories);
  g_test_add_data_func ("/bitlens/model/tiny/f32", GINT_TO_POINTER (BL_DTYPE_F32), test_tiny_dtype);
  g_test_add_data_func ("/bitlens/model/tiny/f16", GINT_TO_POINTER (BL_DTYPE_F16), test_tiny_dtype);
  g_test_add_data_func ("/bitlens/model/tiny/bf16", GINT_TO_POINTER (BL_DTYPE_BF16), test_tiny_dtype);
  g_test_add_func ("/bitlens/model/tiny/sharded", test_tiny_sharded);
  g_test_add_func ("/bitlens/model/tiny/fingerprint", test_tiny_fingerprint);
  g_test_add_func ("/bitlens/model/tiny/tied-metadata", test_tiny_tied_metadata);
  g_test_add_func ("/bitlens/model/tiny/tied-plain", test_tiny_tied_plain);
  g_test_add_func ("/bitlens/model/tiny/tied-both-stored", test_tiny_tied_both_stored);
  g_test_add_func ("/bitlens/model/tiny/qwen2", test_tiny_qwen2);
  g_test_add_func ("/bitlens/model/tiny/llama-biases", test_tiny_llama_biases);
  g_test_add_func ("/bitlens/model/tiny/mistral", test_tiny_mistral);
  g_test_add_func ("/bitlens/model/async", test_async);
  g_test_add_func ("/bitlens/model/config/fields", test_config_fields);
  g_test_add_func ("/bitlens/model/config/defaults", test_config_defaults);
  g_test_add_func ("/bitlens/model/config/sliding-window", test_config_sliding_window);
  g_test_add_func ("/bitlens/model/config/rope-scaling", test_config_rope_scaling);
  g_test_add_func ("/bitlens/model/bad/missing-tensor", test_bad_missing_tensor);
  g_test_add_func ("/bitlens/model/bad/wrong-shape", test_bad_wrong_shape);
  g_test_add_func ("/bitlens/model/bad/missing-bias", test_bad_missing_bias);
  g_test_add_func ("/bitlens/model/bad/untied-no-lm-head", test_bad_untied_no_lm_head);
  g_test_add_func ("/bitlens/model/bad/unknown-architecture", test_bad_unknown_architecture);
  g_test_add_func ("/bitlens/model/bad/config-malformed", test_bad_config_malformed);
  for (guint i = 0; i < G_N_ELEMENTS (config_cases); i++)
    g_test_add_data_func (config_cases[i].path, &config_cases[i], test_bad_config);
  g_test_add_func ("/bitlens/model/bad/directory", test_bad_directory);
  g_test_add_func ("/bitlens/model/bad/safetensors", test_bad_safetensors);
  g_test_add_func ("/bitlens/model/bad/shards", test_bad_shards);
  g_test_add_func ("/bitlens/model/bad/tokenizer", test_bad_tokenizer);

  return g_test_run ();
}
