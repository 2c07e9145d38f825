/* bl-cli-model.c: `bitlens-cli info`, `tokenize` and `generate`
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "config.h"

#include <stdio.h>

#include "bl-cli.h"
#include "bl-cli-commands.h"


/* the RoPE scaling as config.json names it, or where a GGUF file's rope_freqs came from */
static const char *
rope_scaling_name (const BlModelConfig *c)
{
  if (c->rope_freq_factors != NULL)
    return "per-frequency factors (GGUF rope_freqs)";
  switch (c->rope_scaling)
    {
    case BL_ROPE_LINEAR:
      return "linear";
    case BL_ROPE_LLAMA3:
      return "llama3";
    case BL_ROPE_DEFAULT:
    default:
      return "default";
    }
}

static const char *
model_dtypes (BlModel *model,
              char     buf[64])
{
  gboolean seen[3] = { FALSE, FALSE, FALSE };
  guint n = bl_model_get_n_tensors (model);

  buf[0] = '\0';
  for (guint i = 0; i < n; i++)
    seen[bl_model_get_tensor_at (model, i)->dtype] = TRUE;
  for (guint d = 0; d < G_N_ELEMENTS (seen); d++)
    if (seen[d])
      {
        if (buf[0] != '\0')
          g_strlcat (buf, ",", 64);
        g_strlcat (buf, bl_dtype_to_string (d), 64);
      }
  return buf;
}

static char *
shape_string (const BlTensor *t)
{
  GString *s = g_string_new (NULL);

  for (int d = 0; d < t->n_dims; d++)
    g_string_append_printf (s, "%s%" G_GINT64_FORMAT, d ? "x" : "", t->shape[d]);
  return g_string_free (s, FALSE);
}

static void
print_info_json (BlModel *model)
{
  const BlModelConfig *c = bl_model_get_config (model);
  BlTokenizer *tok = bl_model_get_tokenizer (model);
  g_autoptr(JsonBuilder) b = json_builder_new ();
  char dtypes[64];
  guint n_layers = g_list_model_get_n_items (G_LIST_MODEL (model));

  json_builder_begin_object (b);
  bl_cli_json_add_string (b, "path", bl_model_get_path (model));
  bl_cli_json_add_string (b, "architecture", c->architecture ? c->architecture : "");
  bl_cli_json_add_string (b, "model_type", c->model_type);
  bl_cli_json_add_int (b, "n_layers", c->n_layers);
  bl_cli_json_add_int (b, "hidden_size", c->hidden_size);
  bl_cli_json_add_int (b, "intermediate_size", c->intermediate_size);
  bl_cli_json_add_int (b, "n_heads", c->n_heads);
  bl_cli_json_add_int (b, "n_kv_heads", c->n_kv_heads);
  bl_cli_json_add_int (b, "head_dim", c->head_dim);
  bl_cli_json_add_int (b, "vocab_size", c->vocab_size);
  bl_cli_json_add_int (b, "max_position_embeddings", c->max_position_embeddings);
  bl_cli_json_add_double (b, "rope_theta", c->rope_theta);
  bl_cli_json_add_string (b, "rope_scaling", rope_scaling_name (c));
  if (c->rope_scaling != BL_ROPE_DEFAULT && c->rope_freq_factors == NULL)
    bl_cli_json_add_double (b, "rope_factor", c->rope_factor);
  bl_cli_json_add_int (b, "sliding_window", c->sliding_window);
  if (c->sliding_window > 0)
    bl_cli_json_add_int (b, "max_window_layers", c->max_window_layers);
  bl_cli_json_add_double (b, "rms_norm_eps", c->rms_norm_eps);
  bl_cli_json_add_boolean (b, "tie_word_embeddings", c->tie_word_embeddings);
  bl_cli_json_add_int (b, "n_params", bl_model_get_n_params (model));
  bl_cli_json_add_string (b, "dtypes", model_dtypes (model, dtypes));
  if (bl_model_get_storage (model) != NULL)
    {
      bl_cli_json_add_string (b, "storage", bl_model_get_storage (model));
    }
  bl_cli_json_add_string (b, "fingerprint", bl_model_get_fingerprint (model));
  if (bl_model_get_tokenizer_source (model) != NULL)
    {
      bl_cli_json_add_string (b, "tokenizer_source", bl_model_get_tokenizer_source (model));
    }
  if (tok != NULL)
    {
      json_builder_set_member_name (b, "tokenizer");
      json_builder_begin_object (b);
      bl_cli_json_add_string (b, "style", bl_tokenizer_get_style (tok));
      bl_cli_json_add_int (b, "vocab_size", bl_tokenizer_get_vocab_size (tok));
      bl_cli_json_add_int (b, "bos_id", bl_tokenizer_get_bos_id (tok));
      bl_cli_json_add_boolean (b, "add_bos", bl_tokenizer_get_add_bos (tok));
      bl_cli_json_add_string (b, "sha256", bl_tokenizer_get_hash (tok));
      json_builder_end_object (b);
    }
  json_builder_set_member_name (b, "layers");
  json_builder_begin_array (b);
  for (guint i = 0; i < n_layers; i++)
    {
      g_autoptr(BlLayer) layer = g_list_model_get_item (G_LIST_MODEL (model), i);
      const BlTensor *t = bl_layer_get_tensor (layer);

      json_builder_begin_object (b);
      bl_cli_json_add_string (b, "name", bl_layer_get_name (layer));
      bl_cli_json_add_string (b, "kind", bl_layer_kind_to_string (bl_layer_get_kind (layer)));
      bl_cli_json_add_int (b, "block", bl_layer_get_block (layer));
      json_builder_set_member_name (b, "shape");
      json_builder_begin_array (b);
      for (int d = 0; d < t->n_dims; d++)
        json_builder_add_int_value (b, t->shape[d]);
      json_builder_end_array (b);
      bl_cli_json_add_string (b, "dtype", bl_dtype_to_string (t->dtype));
      bl_cli_json_add_int (b, "n_params", bl_layer_get_n_params (layer));
      json_builder_end_object (b);
    }
  json_builder_end_array (b);
  json_builder_end_object (b);

  bl_cli_print_json (b);
}

static void
print_info_text (BlModel *model)
{
  const BlModelConfig *c = bl_model_get_config (model);
  BlTokenizer *tok = bl_model_get_tokenizer (model);
  guint n_layers = g_list_model_get_n_items (G_LIST_MODEL (model));
  char dtypes[64];

  g_print ("model         %s\n", bl_model_get_path (model));
  g_print ("architecture  %s (model_type %s)\n", c->architecture ? c->architecture : "?", c->model_type);
  g_print ("blocks        %d\n", c->n_layers);
  g_print ("hidden        %d, intermediate %d\n", c->hidden_size, c->intermediate_size);
  g_print ("attention     %d heads, %d KV heads (GQA %d:1), head_dim %d\n",
           c->n_heads, c->n_kv_heads, c->n_heads / MAX (c->n_kv_heads, 1), c->head_dim);
  g_print ("rope_theta    %g, rms_norm_eps %g, max positions %d\n",
           c->rope_theta, c->rms_norm_eps, c->max_position_embeddings);
  if (c->rope_freq_factors != NULL)
    g_print ("rope scaling  %s\n", rope_scaling_name (c));
  else if (c->rope_scaling != BL_ROPE_DEFAULT)
    g_print ("rope scaling  %s, factor %g\n", rope_scaling_name (c), c->rope_factor);
  if (c->sliding_window > 0 && c->max_window_layers > 0)
    g_print ("window        %d tokens, from block %d on\n", c->sliding_window, c->max_window_layers);
  else if (c->sliding_window > 0)
    g_print ("window        %d tokens (sliding-window attention)\n", c->sliding_window);
  g_print ("vocab         %d%s\n", c->vocab_size, c->tie_word_embeddings ? " (tied embeddings)" : "");
  g_print ("parameters    %" G_GINT64_FORMAT "\n", bl_model_get_n_params (model));
  g_print ("dtypes        %s\n", model_dtypes (model, dtypes));
  if (bl_model_get_storage (model) != NULL)
    g_print ("stored as     %s\n", bl_model_get_storage (model));
  g_print ("fingerprint   %s\n", bl_model_get_fingerprint (model));
  if (tok != NULL)
    g_print ("tokenizer     %s BPE, %d tokens, BOS %d%s\n", bl_tokenizer_get_style (tok),
             bl_tokenizer_get_vocab_size (tok), bl_tokenizer_get_bos_id (tok),
             bl_tokenizer_get_add_bos (tok) ? " (added)" : "");
  else
    g_print ("tokenizer     none (%s)\n", bl_model_get_tokenizer_source (model) != NULL
                                           ? bl_model_get_tokenizer_source (model) : "no tokenizer.json");
  if (tok != NULL && bl_model_get_tokenizer_source (model) != NULL)
    g_print ("              from %s\n", bl_model_get_tokenizer_source (model));

  g_print ("\n%-48s %-10s %-12s %-5s %12s\n", "layer", "kind", "shape", "dtype", "params");
  for (guint i = 0; i < n_layers; i++)
    {
      g_autoptr(BlLayer) layer = g_list_model_get_item (G_LIST_MODEL (model), i);
      const BlTensor *t = bl_layer_get_tensor (layer);
      g_autofree char *shape = shape_string (t);

      g_print ("%-48s %-10s %-12s %-5s %12" G_GINT64_FORMAT "\n", bl_layer_get_name (layer),
               bl_layer_kind_to_string (bl_layer_get_kind (layer)), shape,
               bl_dtype_to_string (t->dtype), bl_layer_get_n_params (layer));
    }
}

int
bl_cli_info_main (int    argc,
                  char **argv)
{
  gboolean json = FALSE;
  const GOptionEntry entries[] = {
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, "Print JSON", NULL },
    { NULL }
  };
  g_autoptr(GOptionContext) ctx = g_option_context_new ("[MODEL] — show a model's architecture and layers");
  g_autoptr(GError) error = NULL;
  g_autoptr(BlModel) model = NULL;

  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!g_option_context_parse (ctx, &argc, &argv, &error))
    return bl_cli_usage_error ("info", "%s", error->message);
  if (argc > 2)
    return bl_cli_usage_error ("info", "expected at most one MODEL, got %d arguments", argc - 1);

  model = bl_cli_load_model (argc == 2 ? argv[1] : NULL, &error);
  if (model == NULL)
    return bl_cli_report_error (error);

  if (json)
    print_info_json (model);
  else
    print_info_text (model);
  return 0;
}

int
bl_cli_tokenize_main (int    argc,
                      char **argv)
{
  gboolean no_bos = FALSE;
  gboolean count_only = FALSE;
  g_autofree char *protocol_name = NULL;
  const GOptionEntry entries[] = {
    { "protocol", 'p', 0, G_OPTION_ARG_STRING, &protocol_name,
      "Tokenize the text that this protocol evaluates (see README); default: the file as it is", "NAME" },
    { "no-bos", 0, 0, G_OPTION_ARG_NONE, &no_bos, "Do not add BOS even when the tokenizer adds it", NULL },
    { "count", 0, 0, G_OPTION_ARG_NONE, &count_only, "Print only the number of ids", NULL },
    { NULL }
  };
  g_autoptr(GOptionContext) ctx = g_option_context_new ("MODEL FILE — print the token ids of a text file");
  g_autoptr(GError) error = NULL;
  g_autoptr(BlModel) model = NULL;
  g_autoptr(GArray) ids = NULL;
  g_autoptr(BlTextSource) source = NULL;
  const char *text;
  gsize len = 0;
  BlProtocol protocol = BL_PROTOCOL_LLAMACPP;
  BlTokenizer *tok;
  GString *out;

  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!g_option_context_parse (ctx, &argc, &argv, &error))
    return bl_cli_usage_error ("tokenize", "%s", error->message);
  if (argc != 3)
    return bl_cli_usage_error ("tokenize", "expected MODEL and FILE");

  if ((model = bl_cli_load_model (argv[1], &error)) == NULL
      || (tok = bl_cli_require_tokenizer (model, &error)) == NULL)
    return bl_cli_report_error (error);
  if (protocol_name != NULL && !bl_protocol_from_string (protocol_name, &protocol))
    {
      g_set_error (&error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT,
                   "unknown protocol '%s' (valid: gptq, hf-stride, llamacpp)", protocol_name);
      return bl_cli_report_error (error);
    }
  source = bl_text_source_new_from_file (argv[2], protocol_name ? bl_text_source_kind_from_path (argv[2])
                                                                : BL_TEXT_SOURCE_PLAIN, &error);
  if (source == NULL)
    return bl_cli_report_error (error);
  /* llamacpp (and plain text under any protocol) is the file as it is. */
  text = bl_text_source_get_protocol_text (source, protocol, &len);

  ids = bl_tokenizer_encode (tok, text, len, !no_bos && bl_tokenizer_get_add_bos (tok));
  if (count_only)
    {
      g_print ("%u\n", ids->len);
      return 0;
    }
  out = g_string_sized_new (ids->len * 6);
  for (guint i = 0; i < ids->len; i++)
    g_string_append_printf (out, "%s%d", i ? " " : "", g_array_index (ids, int32_t, i));
  g_string_append_c (out, '\n');
  fwrite (out->str, 1, out->len, stdout);
  g_string_free (out, TRUE);
  return 0;
}
