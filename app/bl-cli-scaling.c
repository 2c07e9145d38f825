/* bl-cli-scaling.c: `bitlens-cli scaling`: the FP training law calculator, the per-layer
 * INT/FP crossover map and quality-against-bits fits over sweep files
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "config.h"

#include <math.h>
#include <string.h>

#include "bitlens.h"
#include "bl-scaling.h"
#include "bl-sweep.h"
#include "bl-cli.h"
#include "bl-cli-commands.h"

static void
print_usage (void)
{
  g_print ("Usage: bitlens-cli scaling sun [--N N] [--D D] [--E E] [--M M] [--B B]\n"
           "       bitlens-cli scaling crossover [MODEL] [-j N]\n"
           "       bitlens-cli scaling fit [--model log-linear|power-law|logistic] [--metric kl|nll] FILE…\n\n"
           "sun        Sun et al.'s law for FP-quantized training (methods.md §3): the loss, the\n"
           "           critical data size and the best exponent/mantissa split, paper constants\n"
           "crossover  per linear layer and INT/FP pair, the block crest factors and whether INT or FP\n"
           "           has the higher QSNR, by the INT-vs-FP theory and measured (methods.md §2)\n"
           "fit        quality against total model bits over the points of sweep files, one curve\n"
           "           per uniform format, one for every uniform plan pooled and one for the allocated\n"
           "           plans, with 95%% bands and the\n"
           "           bits where two curves cross (methods.md §4)\n");
}

static int
sun_main (int    argc,
          char **argv)
{
  double N = 1e9, D = 1e11, E = 4, M = 3, B = 128;
  const GOptionEntry entries[] = {
    { "N", 0, 0, G_OPTION_ARG_DOUBLE, &N, "Non-embedding parameters (default 1e9)", "N" },
    { "D", 0, 0, G_OPTION_ARG_DOUBLE, &D, "Training tokens (default 1e11)", "D" },
    { "E", 0, 0, G_OPTION_ARG_DOUBLE, &E, "Exponent bits (default 4)", "E" },
    { "M", 0, 0, G_OPTION_ARG_DOUBLE, &M, "Mantissa bits (default 3)", "M" },
    { "B", 0, 0, G_OPTION_ARG_DOUBLE, &B, "Block size of a scaling factor (default 128)", "B" },
    { NULL }
  };
  g_autoptr(GOptionContext) octx = g_option_context_new ("— the FP-quantization training law");
  g_autoptr(GError) error = NULL;
  static const int layouts[][2] = { { 8, 7 }, { 4, 3 }, { 5, 2 }, { 2, 1 }, { 1, 2 }, { 3, 0 } };
  BlSunConstants c;

  g_option_context_add_main_entries (octx, entries, NULL);
  if (!g_option_context_parse (octx, &argc, &argv, &error))
    return bl_cli_usage_error ("scaling sun", "%s", error->message);
  if (N <= 0 || D <= 0 || E < 0 || M < 0 || B < 2)
    return bl_cli_usage_error ("scaling sun", "need N, D > 0, E, M ≥ 0 and B ≥ 2");
  bl_sun_constants_init (&c);
  g_print ("L(N, D, E, M, B) = n/N^α + d/D^β + ε + (D^β/N^α)·log2 B / (γ (E+½)^δ (M+½)^ν)\n"
           "n %.4f  α %.4f  d %.4f  β %.4f  ε %.4f  γ %.4f  δ %.4f  ν %.4f (Sun et al., Table 2)\n\n",
           c.n, c.alpha, c.d, c.beta, c.epsilon, c.gamma, c.delta, c.nu);
  g_print ("N %.4g, D %.4g, E%gM%g, B %g: loss %.4f, critical data size %.4g tokens (%.4g T)\n\n", N, D, E,
           M, B, bl_sun_loss (&c, N, D, E, M, B), bl_sun_critical_data (&c, N, E, M, B),
           bl_sun_critical_data (&c, N, E, M, B) / 1e12);
  g_print ("%-6s %14s %12s\n", "layout", "D_crit (T)", "loss");
  for (guint i = 0; i < G_N_ELEMENTS (layouts); i++)
    g_print ("E%dM%d   %14.4g %12.4f\n", layouts[i][0], layouts[i][1],
             bl_sun_critical_data (&c, N, layouts[i][0], layouts[i][1], B) / 1e12,
             bl_sun_loss (&c, N, D, layouts[i][0], layouts[i][1], B));
  g_print ("\noptimal layout by total bits P = 1 + E + M:");
  for (int p = 3; p <= 16; p++)
    {
      int e, m;

      bl_sun_optimal_layout (&c, p, &e, &m);
      g_print (" %d:E%dM%d", p, e, m);
    }
  g_print ("\n");
  return 0;
}

static int
crossover_main (int    argc,
                char **argv)
{
  int n_threads = 0;
  const GOptionEntry entries[] = {
    BL_CLI_THREADS_ENTRY (n_threads),
    { NULL }
  };
  g_autoptr(GOptionContext) octx = g_option_context_new ("[MODEL] — the per-layer INT/FP crossover map");
  g_autoptr(GError) error = NULL;
  g_autoptr(BlModel) model = NULL;
  g_autoptr(GPtrArray) map = NULL;
  guint agree = 0, int_wins[BL_CROSSOVER_N_PAIRS] = { 0 }, n_layers[BL_CROSSOVER_N_PAIRS] = { 0 };

  g_option_context_add_main_entries (octx, entries, NULL);
  if (!g_option_context_parse (octx, &argc, &argv, &error))
    return bl_cli_usage_error ("scaling crossover", "%s", error->message);
  if ((model = bl_cli_load_model (argc >= 2 ? argv[1] : NULL, &error)) == NULL
      || (map = bl_crossover_map (model, bl_cli_n_threads (n_threads), NULL, &error)) == NULL)
    return bl_cli_report_error (error);
  g_print ("%-42s %-13s %7s %7s %7s %9s %9s %9s %9s %s\n", "layer", "pair", "κ mean", "κ Q3", "κ*",
           "INT th.", "FP th.", "INT meas", "FP meas", "verdict");
  for (guint i = 0; i < map->len; i++)
    {
      const BlCrossoverEntry *e = map->pdata[i];
      gboolean th = e->qsnr_int_theory > e->qsnr_fp_theory, me = e->qsnr_int > e->qsnr_fp;

      g_print ("%-42s %-13s %7.3f %7.3f %7.3f %9.2f %9.2f %9.2f %9.2f %s%s\n", e->layer,
               bl_crossover_pair_name (e->pair), e->kappa_mean, e->kappa_q3, e->crossover, e->qsnr_int_theory,
               e->qsnr_fp_theory, e->qsnr_int, e->qsnr_fp, me ? "INT" : "FP", th == me ? "" : " (theory: other)");
      agree += th == me;
      int_wins[e->pair] += me;
      n_layers[e->pair]++;
    }
  g_print ("\ntheory and measurement agree on %u of %u layer×pair verdicts;", agree, map->len);
  for (guint p = 0; p < BL_CROSSOVER_N_PAIRS; p++)
    g_print (" %s: INT wins %u/%u;", bl_crossover_pair_name ((BlCrossoverPair) p), int_wins[p], n_layers[p]);
  g_print ("\n");
  return 0;
}

typedef struct
{
  char *name;
  GArray *bits;
  GArray *quality;
  BlFitResult fit;
  gboolean fitted;
} Curve;

static void
curve_free (gpointer data)
{
  Curve *c = data;

  g_free (c->name);
  g_array_unref (c->bits);
  g_array_unref (c->quality);
  g_free (c);
}

static void
curve_add (GHashTable *by_name,
           GPtrArray  *curves,
           const char *name,
           double      bits,
           double      quality)
{
  Curve *c = g_hash_table_lookup (by_name, name);

  if (c == NULL)
    {
      c = g_new0 (Curve, 1);
      c->name = g_strdup (name);
      c->bits = g_array_new (FALSE, FALSE, sizeof (double));
      c->quality = g_array_new (FALSE, FALSE, sizeof (double));
      g_hash_table_insert (by_name, c->name, c);
      g_ptr_array_add (curves, c);
    }
  g_array_append_val (c->bits, bits);
  g_array_append_val (c->quality, quality);
}

static int
fit_main (int    argc,
          char **argv)
{
  g_autofree char *model_name = NULL, *metric = NULL;
  const GOptionEntry entries[] = {
    { "model", 0, 0, G_OPTION_ARG_STRING, &model_name, "log-linear (default), power-law or logistic", "NAME" },
    { "metric", 0, 0, G_OPTION_ARG_STRING, &metric, "kl (default) or nll", "NAME" },
    { NULL }
  };
  g_autoptr(GOptionContext) octx = g_option_context_new ("FILE… — quality against total model bits");
  g_autoptr(GError) error = NULL;
  g_autoptr(GHashTable) by_name = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr(GPtrArray) curves = g_ptr_array_new_with_free_func (curve_free);
  BlScalingModel model = BL_SCALING_LOG_LINEAR;
  gboolean use_nll;
  double lo = INFINITY, hi = 0;

  g_option_context_add_main_entries (octx, entries, NULL);
  if (!g_option_context_parse (octx, &argc, &argv, &error))
    return bl_cli_usage_error ("scaling fit", "%s", error->message);
  if (argc < 2)
    return bl_cli_usage_error ("scaling fit", "give at least one sweep file");
  if (model_name != NULL && !bl_scaling_model_from_string (model_name, &model))
    return bl_cli_usage_error ("scaling fit", "unknown model “%s”", model_name);
  use_nll = metric != NULL && g_str_equal (metric, "nll");
  if (metric != NULL && !use_nll && !g_str_equal (metric, "kl"))
    return bl_cli_usage_error ("scaling fit", "unknown metric “%s”", metric);

  /* one curve per uniform format and one for the allocated plans, across every file (models
   * of different sizes give the spread in total bits) */
  for (int f = 1; f < argc; f++)
    {
      g_autoptr(BlSweep) sweep = bl_sweep_open_existing (argv[f], &error);
      g_autoptr(GPtrArray) points = sweep != NULL ? bl_sweep_list_points (sweep, &error) : NULL;

      if (points == NULL)
        return bl_cli_report_error (error);
      for (guint k = 0; k < points->len; k++)
        {
          const BlSweepPoint *p = points->pdata[k];
          gboolean uniform = g_str_equal (p->kind, "uniform");
          double q = use_nll ? p->nll : p->kl;

          if (!isfinite (q))
            continue;
          curve_add (by_name, curves, uniform ? p->label : "allocated", p->total_bits, q);
          /* one model's sweep holds one point per uniform format: pooled, the uniform plans
           * still make a curve to set against the allocated one */
          if (uniform)
            curve_add (by_name, curves, "uniform (every format)", p->total_bits, q);
          lo = MIN (lo, p->total_bits);
          hi = MAX (hi, p->total_bits);
        }
    }
  g_print ("%s against log10(total bits) − centre, %s model; parameters ± standard error\n",
           use_nll ? "NLL" : "KL", bl_scaling_model_to_string (model));
  for (guint i = 0; i < curves->len; i++)
    {
      Curve *c = curves->pdata[i];
      g_autoptr(GError) fit_error = NULL;

      c->fitted = bl_scaling_fit (model, (const double *) c->bits->data, (const double *) c->quality->data,
                                  c->bits->len, &c->fit, &fit_error);
      if (!c->fitted)
        {
          g_print ("%-24s %u points: %s\n", c->name, c->bits->len, fit_error->message);
          continue;
        }
      g_print ("%-24s %u points, centre 10^%.4f bits, R² %.4f:", c->name, c->bits->len, c->fit.x_center, c->fit.r2);
      for (guint k = 0; k < c->fit.n_params; k++)
        g_print (" p%u %.5g ± %.2g", k, c->fit.params[k],
                 sqrt (c->fit.covariance[k * c->fit.n_params + k]));
      g_print ("\n");
      for (guint k = 0; k < c->bits->len; k++)
        {
          double x = g_array_index (c->bits, double, k), hw;
          double y = bl_scaling_predict (model, &c->fit, x, 0.95, &hw);

          g_print ("    %.4g bits: measured %.5f, fitted %.5f ± %.5f (95%%)\n", x,
                   g_array_index (c->quality, double, k), y, hw);
        }
    }
  for (guint i = 0; i < curves->len; i++)
    for (guint k = i + 1; k < curves->len; k++)
      {
        Curve *a = curves->pdata[i], *b = curves->pdata[k];
        double x;

        if (a->fitted && b->fitted && bl_scaling_crossover (model, &a->fit, &b->fit, lo, hi, &x))
          g_print ("%s and %s cross at %.4g bits\n", a->name, b->name, x);
      }
  return 0;
}

int
bl_cli_scaling_main (int    argc,
                     char **argv)
{
  if (argc < 2 || g_str_equal (argv[1], "--help") || g_str_equal (argv[1], "-h"))
    {
      print_usage ();
      return argc < 2 ? BL_CLI_EXIT_USAGE : 0;
    }
  if (g_str_equal (argv[1], "sun"))
    return sun_main (argc - 1, argv + 1);
  if (g_str_equal (argv[1], "crossover"))
    return crossover_main (argc - 1, argv + 1);
  if (g_str_equal (argv[1], "fit"))
    return fit_main (argc - 1, argv + 1);
  return bl_cli_usage_error ("scaling", "unknown mode “%s” (sun, crossover or fit)", argv[1]);
}
