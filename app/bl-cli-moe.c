/* bl-cli-moe.c: `bitlens-cli moe`, per-expert statistics, routing frequency and MC-MoE's
 * PMQ allocation of a mixture-of-experts model
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "config.h"

#include <string.h>

#include "bl-cli.h"
#include "bl-cli-commands.h"

#define DEFAULT_MENU "binary:g128,int2:g128:asym,int3:g128:asym"
#define DEFAULT_FORMAT "int2:g128:asym"

typedef struct
{
  BlModel *model;
  BlTextSource *source;
  BlMoeProfile *profile;
  GArray *stats;              /* BlMoeWeightStats */
  GArray *pmq;                /* BlMoePmqBlock */
  char **menu;
  char *format;
  double bits;
  double alpha;
  double beta;
  int n_windows;
  int ctx;
  gint64 seed;
} Report;

/* The naming layout alone, from a directory's safetensors index (a checkpoint need not be
 * present) or from the loaded model. */
static int
print_layout (const char *model_path,
              gboolean    json)
{
  g_autofree char *index = g_build_filename (model_path, "model.safetensors.index.json", NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(BlMoeLayout) layout = NULL;

  if (g_file_test (index, G_FILE_TEST_IS_REGULAR))
    layout = bl_moe_layout_new_from_index (index, &error);
  else
    {
      g_autoptr(BlModel) model = bl_model_load (model_path, NULL, &error);

      if (model != NULL)
        layout = bl_moe_layout_new_from_model (model, &error);
    }
  if (layout == NULL)
    return bl_cli_report_error (error);

  if (json)
    {
      g_autoptr(JsonBuilder) b = json_builder_new ();

      json_builder_begin_object (b);
      bl_cli_json_add_string (b, "model", model_path);
      bl_cli_json_add_string (b, "style", bl_moe_style_to_string (layout->style));
      bl_cli_json_add_int (b, "expert_tensors", layout->n_expert_tensors);
      bl_cli_json_add_int (b, "other_tensors", layout->n_other_tensors);
      json_builder_set_member_name (b, "blocks");
      json_builder_begin_array (b);
      for (guint i = 0; i < layout->blocks->len; i++)
        {
          const BlMoeBlockLayout *l = &g_array_index (layout->blocks, BlMoeBlockLayout, i);

          json_builder_begin_object (b);
          bl_cli_json_add_int (b, "block", l->block);
          bl_cli_json_add_int (b, "experts", l->n_experts);
          bl_cli_json_add_int (b, "projections", l->n_roles);
          bl_cli_json_add_boolean (b, "router", l->has_router);
          bl_cli_json_add_boolean (b, "shared_expert", l->has_shared_expert);
          bl_cli_json_add_boolean (b, "complete", l->complete);
          json_builder_end_object (b);
        }
      json_builder_end_array (b);
      json_builder_end_object (b);
      bl_cli_print_json (b);
      return 0;
    }

  g_print ("%s: %s naming, %u MoE blocks, %u routed-expert tensors, %u other tensors\n",
           model_path, bl_moe_style_to_string (layout->style), layout->blocks->len,
           layout->n_expert_tensors, layout->n_other_tensors);
  for (guint i = 0; i < layout->blocks->len; i++)
    {
      const BlMoeBlockLayout *l = &g_array_index (layout->blocks, BlMoeBlockLayout, i);

      g_print ("  block %3d: %d experts × %d projections%s%s%s\n", l->block, l->n_experts,
               l->n_roles, l->has_router ? ", router" : ", NO ROUTER",
               l->has_shared_expert ? ", shared expert" : "",
               l->complete ? "" : ", INCOMPLETE");
    }
  return 0;
}

/* bl_moe_weight_stats() lists block by block, expert by expert (the shared expert after the
 * routed ones), the gate, up and down projections. */
static const BlMoeWeightStats *
stats_at (Report *r,
          int     block,
          int     expert,
          int     role)
{
  const BlModelConfig *c = bl_model_get_config (r->model);
  int n_sets = c->n_experts + (c->shared_expert_intermediate_size > 0 ? 1 : 0);
  guint i = (guint) ((block * n_sets + expert) * 3 + (role - BL_MOE_ROLE_GATE));

  return &g_array_index (r->stats, BlMoeWeightStats, i);
}

static void
print_json (Report *r)
{
  g_autoptr(JsonBuilder) b = json_builder_new ();
  const BlModelConfig *c = bl_model_get_config (r->model);

  json_builder_begin_object (b);
  bl_cli_json_add_model (b, r->model);
  bl_cli_json_add_string (b, "style", bl_moe_style_to_string (bl_moe_config_style (c)));
  bl_cli_json_add_int (b, "experts_per_block", c->n_experts);
  bl_cli_json_add_int (b, "top_k", c->n_experts_per_tok);
  bl_cli_json_add_boolean (b, "norm_topk_prob", c->norm_topk_prob);
  json_builder_set_member_name (b, "calibration");
  json_builder_begin_object (b);
  bl_cli_json_add_string (b, "text", bl_text_source_get_name (r->source));
  bl_cli_json_add_string (b, "sha256", bl_text_source_get_sha256 (r->source));
  bl_cli_json_add_int (b, "windows", r->n_windows);
  bl_cli_json_add_int (b, "ctx", r->ctx);
  bl_cli_json_add_int (b, "seed", r->seed);
  json_builder_end_object (b);
  bl_cli_json_add_string (b, "qsnr_format", r->format);
  json_builder_set_member_name (b, "pmq");
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "menu");
  json_builder_begin_array (b);
  for (guint o = 0; r->menu[o] != NULL; o++)
    json_builder_add_string_value (b, r->menu[o]);
  json_builder_end_array (b);
  bl_cli_json_add_double_or_null (b, "bits", r->bits);
  bl_cli_json_add_double_or_null (b, "alpha", r->alpha);
  bl_cli_json_add_double_or_null (b, "beta", r->beta);
  bl_cli_json_add_string (b, "loss", "output MSE of the fake-quantized expert on its routed "
                                     "calibration tokens");
  json_builder_end_object (b);

  json_builder_set_member_name (b, "blocks");
  json_builder_begin_array (b);
  for (guint i = 0; i < r->pmq->len; i++)
    {
      const BlMoePmqBlock *p = &g_array_index (r->pmq, BlMoePmqBlock, i);
      const BlMoeBlockRouting *rt = bl_moe_profile_get_block (r->profile, i);

      json_builder_begin_object (b);
      bl_cli_json_add_int (b, "block", p->block);
      bl_cli_json_add_int (b, "tokens", rt->n_tokens);
      bl_cli_json_add_double_or_null (b, "load_std", rt->load_std);
      bl_cli_json_add_double_or_null (b, "avg_bits", p->avg_bits);
      bl_cli_json_add_double_or_null (b, "objective", p->objective);
      json_builder_set_member_name (b, "experts");
      json_builder_begin_array (b);
      for (int e = 0; e < p->n_experts; e++)
        {
          json_builder_begin_object (b);
          bl_cli_json_add_int (b, "expert", e);
          bl_cli_json_add_int (b, "tokens", rt->experts[e].tokens);
          bl_cli_json_add_double_or_null (b, "frequency", rt->experts[e].frequency);
          bl_cli_json_add_double_or_null (b, "mean_weight", rt->experts[e].mean_weight);
          bl_cli_json_add_double_or_null (b, "importance", p->importance[e]);
          bl_cli_json_add_string (b, "format", r->menu[p->choice[e]]);
          json_builder_set_member_name (b, "loss");
          json_builder_begin_object (b);
          for (int o = 0; o < p->n_options; o++)
            bl_cli_json_add_double_or_null (b, r->menu[o], p->loss[e * p->n_options + o]);
          json_builder_end_object (b);
          json_builder_set_member_name (b, "weights");
          json_builder_begin_array (b);
          for (int role = BL_MOE_ROLE_GATE; role <= BL_MOE_ROLE_DOWN; role++)
            {
              const BlMoeWeightStats *s = stats_at (r, p->block, e, role);

              json_builder_begin_object (b);
              bl_cli_json_add_string (b, "name", s->name);
              bl_cli_json_add_string (b, "role", bl_moe_role_to_string (s->role));
              bl_cli_json_add_double_or_null (b, "rms", s->rms);
              bl_cli_json_add_double_or_null (b, "absmax", s->absmax);
              bl_cli_json_add_double_or_null (b, "kurtosis", s->kurtosis);
              bl_cli_json_add_double_or_null (b, "crest", s->crest);
              bl_cli_json_add_double_or_null (b, "qsnr_db", s->qsnr_db);
              json_builder_end_object (b);
            }
          json_builder_end_array (b);
          json_builder_end_object (b);
        }
      json_builder_end_array (b);
      json_builder_end_object (b);
    }
  json_builder_end_array (b);
  json_builder_end_object (b);

  bl_cli_print_json (b);
}

static void
print_table (Report *r)
{
  const BlModelConfig *c = bl_model_get_config (r->model);
  guint n_options = g_strv_length (r->menu);
  g_autofree char *menu = g_strjoinv (",", r->menu);

  g_print ("model        %s (%s, %d MoE blocks × %d experts, top-%d%s)\n",
           bl_model_get_path (r->model), c->model_type, c->n_layers, c->n_experts,
           c->n_experts_per_tok, c->norm_topk_prob ? ", renormalised" : "");
  g_print ("calibration  %s, %d windows × %d tokens, seed %" G_GINT64_FORMAT "\n",
           bl_text_source_get_name (r->source), r->n_windows, r->ctx, r->seed);
  g_print ("PMQ          menu %s; budget %.4g bits/weight over each block's experts; "
           "α %.3g, β %.3g\n", menu, r->bits, r->alpha, r->beta);
  g_print ("             f = tokens routed / tokens, w = mean routing weight, ε = output MSE "
           "of the quantized expert on its routed tokens\n");

  for (guint i = 0; i < r->pmq->len; i++)
    {
      const BlMoePmqBlock *p = &g_array_index (r->pmq, BlMoePmqBlock, i);
      const BlMoeBlockRouting *rt = bl_moe_profile_get_block (r->profile, i);

      g_print ("\nblock %d: %" G_GINT64_FORMAT " tokens, load-balance std %.4f; PMQ %.4f bits/weight, "
               "objective %.6g\n", p->block, rt->n_tokens, rt->load_std, p->avg_bits,
               p->objective);
      g_print ("  %-6s %7s %7s %7s %9s %8s %8s %8s %7s %8s", "expert", "tokens", "f", "w",
               "importance", "rms", "absmax", "kurtosis", "crest", "QSNR dB");
      for (guint o = 0; o < n_options; o++)
        g_print (" %14.14s", r->menu[o]);
      g_print ("  %s\n", "PMQ format");
      for (int e = 0; e < p->n_experts; e++)
        {
          const BlMoeWeightStats *gate = stats_at (r, p->block, e, BL_MOE_ROLE_GATE);
          double kurt = 0.0, qsnr = 0.0;

          /* the expert's three projections: the largest kurtosis and crest, the mean QSNR */
          for (int role = BL_MOE_ROLE_GATE; role <= BL_MOE_ROLE_DOWN; role++)
            {
              const BlMoeWeightStats *s = stats_at (r, p->block, e, role);

              kurt = MAX (kurt, s->kurtosis);
              qsnr += s->qsnr_db / 3.0;
            }
          g_print ("  %-6d %7" G_GINT64_FORMAT " %7.4f %7.4f %9.4f %8.4f %8.4f %8.2f %7.2f %8.2f",
                   e, rt->experts[e].tokens, rt->experts[e].frequency,
                   rt->experts[e].mean_weight, p->importance[e], gate->rms, gate->absmax, kurt,
                   gate->crest, qsnr);
          for (guint o = 0; o < n_options; o++)
            g_print (" %14.4g", p->loss[e * n_options + o]);
          g_print ("  %s\n", r->menu[p->choice[e]]);
        }
    }
  g_print ("\nrms, absmax and crest are the gate projection's; kurtosis the largest of the three "
           "projections; QSNR (%s) their mean\n", r->format);
}

static void
report_clear (Report *r)
{
  g_clear_object (&r->model);
  g_clear_object (&r->source);
  g_clear_pointer (&r->profile, bl_moe_profile_free);
  g_clear_pointer (&r->stats, g_array_unref);
  g_clear_pointer (&r->pmq, g_array_unref);
  g_clear_pointer (&r->menu, g_strfreev);
  g_clear_pointer (&r->format, g_free);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Report, report_clear)

int
bl_cli_moe_main (int    argc,
                 char **argv)
{
  g_autofree char *text_path = NULL;
  g_autofree char *backend_name = NULL;
  g_autofree char *menu_list = NULL;
  g_autofree char *format = NULL;
  g_autofree char *rest = NULL;
  g_autofree char *plan_path = NULL;
  int n_windows = 8, ctx = 0, n_threads = 0, max_rows = 4096;
  gint64 seed = 0;
  double bits = 2.5, alpha = 1.0, beta = 1.5;
  gboolean json = FALSE, layout_only = FALSE;
  const GOptionEntry entries[] = {
    { "text", 't', 0, G_OPTION_ARG_FILENAME, &text_path, "Calibration text: a file, or brown:train|validation|test (default brown:train)", "FILE" },
    { "windows", 'n', 0, G_OPTION_ARG_INT, &n_windows, "Calibration windows (default 8)", "N" },
    { "ctx", 'c', 0, G_OPTION_ARG_INT, &ctx, "Window length in tokens (default: min(512, model maximum))", "N" },
    { "seed", 0, 0, G_OPTION_ARG_INT64, &seed, "Seed of the window draw (default 0)", "N" },
    { "format", 'f', 0, G_OPTION_ARG_STRING, &format, "Weight format of the QSNR column (default " DEFAULT_FORMAT ")", "SPEC" },
    { "menu", 'm', 0, G_OPTION_ARG_STRING, &menu_list, "PMQ options, fewest bits first (default " DEFAULT_MENU ")", "SPECS" },
    { "bits", 0, 0, G_OPTION_ARG_DOUBLE, &bits, "PMQ budget: mean bits per weight over each block's experts, scales included (default 2.5)", "B" },
    { "alpha", 0, 0, G_OPTION_ARG_DOUBLE, &alpha, "PMQ α, exponent of f and ε (default 1)", "A" },
    { "beta", 0, 0, G_OPTION_ARG_DOUBLE, &beta, "PMQ β, exponent of w (default 1.5)", "B" },
    { "rest", 0, 0, G_OPTION_ARG_STRING, &rest, "Weight format of the other linear layers in the plan (default: none, full precision)", "SPEC" },
    { "max-rows", 0, 0, G_OPTION_ARG_INT, &max_rows, "Routed inputs kept per expert for ε (default 4096)", "N" },
    { "plan", 'o', 0, G_OPTION_ARG_FILENAME, &plan_path, "Write the PMQ allocation as a plan JSON (for eval --plan, export)", "FILE" },
    { "layout", 0, 0, G_OPTION_ARG_NONE, &layout_only, "Only recognise the MoE tensor names (a model.safetensors.index.json is enough)", NULL },
    BL_CLI_THREADS_ENTRY (n_threads),
    BL_CLI_BACKEND_ENTRY (backend_name),
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, "Print JSON", NULL },
    { NULL }
  };
  g_autoptr(GOptionContext) octx =
    g_option_context_new ("MODEL — per-expert statistics, routing frequency and MC-MoE's PMQ "
                          "bit allocation of a mixture of experts");
  g_autoptr(GError) error = NULL;
  g_autoptr(BlBackend) backend = NULL;
  g_autoptr(GArray) ids = NULL;
  g_autoptr(GArray) windows = NULL;
  BlFormatSpec qsnr_spec;
  g_auto(Report) r = { 0 };
  BlTokenizer *tok;

  g_option_context_add_main_entries (octx, entries, NULL);
  if (!g_option_context_parse (octx, &argc, &argv, &error))
    return bl_cli_usage_error ("moe", "%s", error->message);
  if (argc != 2)
    return bl_cli_usage_error ("moe", "expected one MODEL");
  if (n_windows < 1 || max_rows < 1 || !(bits > 0.0) || !(alpha > 0.0) || !(beta >= 0.0))
    return bl_cli_usage_error ("moe", "--windows and --max-rows must be at least 1, --bits and "
                               "--alpha positive, --beta not negative");
  if (n_threads < 0)
    return bl_cli_usage_error ("moe", "--threads must be positive");
  n_threads = bl_cli_n_threads (n_threads);
  if (layout_only)
    return print_layout (argv[1], json);

  r.format = g_strdup (format != NULL ? format : DEFAULT_FORMAT);
  r.menu = g_strsplit (menu_list != NULL ? menu_list : DEFAULT_MENU, ",", -1);
  r.bits = bits;
  r.alpha = alpha;
  r.beta = beta;
  r.n_windows = n_windows;
  r.seed = seed;
  if (!bl_format_spec_parse (r.format, &qsnr_spec, &error))
    return bl_cli_usage_error ("moe", "%s", error->message);

  if ((r.model = bl_model_load (argv[1], NULL, &error)) == NULL ||
      (backend = bl_cli_backend_new (backend_name, n_threads, &error)) == NULL ||
      (r.profile = bl_moe_profile_new (r.model, max_rows, &error)) == NULL ||
      (tok = bl_cli_require_tokenizer (r.model, &error)) == NULL ||
      (r.source = bl_cli_open_text (text_path != NULL ? text_path : "brown:train", &error)) == NULL)
    return bl_cli_report_error (error);
  ids = bl_cli_encode_text (tok, r.source);
  r.ctx = ctx > 0 ? ctx : MIN (512, bl_model_get_config (r.model)->max_position_embeddings);
  if ((windows = bl_calib_make_windows (ids->len, r.ctx, n_windows, (guint64) seed,
                                        &error)) == NULL)
    return bl_cli_report_error (error);

  g_printerr ("routing %d windows of %d tokens\n", n_windows, r.ctx);
  if (!bl_moe_profile_run (r.profile, backend, (const int32_t *) ids->data, ids->len, windows,
                           NULL, &error) ||
      (r.stats = bl_moe_weight_stats (r.model, &qsnr_spec, NULL, &error)) == NULL ||
      (r.pmq = bl_moe_pmq_allocate (r.profile, (const char * const *) r.menu, bits, alpha,
                                    beta, NULL, &error)) == NULL)
    return bl_cli_report_error (error);

  if (plan_path != NULL)
    {
      const BlModelConfig *c = bl_model_get_config (r.model);
      g_autofree int *choice = g_new (int, (size_t) c->n_layers * c->n_experts);
      g_autoptr(BlQuantPlan) plan = NULL;

      for (guint i = 0; i < r.pmq->len; i++)
        {
          const BlMoePmqBlock *p = &g_array_index (r.pmq, BlMoePmqBlock, i);

          memcpy (choice + (size_t) p->block * c->n_experts, p->choice, sizeof (int) * p->n_experts);
        }
      if ((plan = bl_moe_plan_new (r.model, (const char * const *) r.menu, choice, rest,
                                   &error)) == NULL ||
          !bl_quant_plan_save (plan, plan_path, &error))
        return bl_cli_report_error (error);
      g_printerr ("wrote the PMQ plan to %s\n", plan_path);
    }

  if (json)
    print_json (&r);
  else
    print_table (&r);
  return 0;
}
