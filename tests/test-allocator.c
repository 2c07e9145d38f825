/* test-allocator.c: the exact knapsack solvers against brute force, HAWQ-V3's published
 * ResNet18 configurations, MixDQ's group budgets, the LIM/ZD baseline and BAQ
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include <math.h>
#include <string.h>

#include "bl-allocator.h"
#include "bl-error.h"

/* Exhaustive search over every assignment respecting the ties. */
static double
brute_force (BlAllocProblem *p,
             const double   *budgets,
             guint           n_budgets,
             const guint    *tie_root,
             guint          *best_choice)
{
  guint n = bl_alloc_problem_get_n_items (p);
  g_autofree guint *c = g_new0 (guint, n);
  double best = INFINITY;

  for (;;)
    {
      gboolean ok = TRUE;
      double loss, costs[BL_ALLOC_MAX_BUDGETS];

      for (guint i = 0; i < n && ok; i++)
        ok = c[i] == c[tie_root[i]];
      if (ok)
        {
          bl_alloc_problem_evaluate (p, c, &loss, costs);
          for (guint b = 0; b < n_budgets && ok; b++)
            ok = costs[b] <= budgets[b];
          if (ok && loss < best)
            {
              best = loss;
              memcpy (best_choice, c, n * sizeof (guint));
            }
        }
      /* next assignment, odometer style */
      {
        guint i = 0;

        while (i < n && ++c[i] == bl_alloc_problem_get_n_options (p, i))
          c[i++] = 0;
        if (i == n)
          break;
      }
    }
  return best;
}

static BlAllocProblem *
random_problem (GRand  *rand,
                guint   n_budgets,
                guint  *tie_root,
                double *budgets)
{
  BlAllocProblem *p = bl_alloc_problem_new (n_budgets);
  guint n = (guint) g_rand_int_range (rand, 1, 8);
  double lo[BL_ALLOC_MAX_BUDGETS] = { 0 }, hi[BL_ALLOC_MAX_BUDGETS] = { 0 };

  for (guint i = 0; i < n; i++)
    {
      guint item = bl_alloc_problem_add_item (p, "x");
      guint n_opt = (guint) g_rand_int_range (rand, 1, 5);
      double mn[BL_ALLOC_MAX_BUDGETS], mx[BL_ALLOC_MAX_BUDGETS];

      /* every item of a tie class must have the same option count: use 3 for tie candidates */
      tie_root[i] = i;
      if (i > 0 && g_rand_int_range (rand, 0, 4) == 0)
        {
          tie_root[i] = (guint) g_rand_int_range (rand, 0, (gint32) i);
          while (tie_root[tie_root[i]] != tie_root[i])
            tie_root[i] = tie_root[tie_root[i]];
          n_opt = bl_alloc_problem_get_n_options (p, tie_root[i]);
        }
      for (guint b = 0; b < n_budgets; b++)
        {
          mn[b] = INFINITY;
          mx[b] = 0;
        }
      for (guint o = 0; o < n_opt; o++)
        {
          double costs[BL_ALLOC_MAX_BUDGETS];

          for (guint b = 0; b < n_budgets; b++)
            {
              costs[b] = g_rand_int_range (rand, 1, 21);
              mn[b] = MIN (mn[b], costs[b]);
              mx[b] = MAX (mx[b], costs[b]);
            }
          bl_alloc_problem_add_option (p, item, "o", g_rand_double_range (rand, 0, 10), costs);
        }
      for (guint b = 0; b < n_budgets; b++)
        {
          lo[b] += mn[b];
          hi[b] += mx[b];
        }
      if (tie_root[i] != i)
        g_assert_true (bl_alloc_problem_tie (p, tie_root[i], i, NULL));
    }
  for (guint b = 0; b < n_budgets; b++)
    budgets[b] = floor (g_rand_double_range (rand, lo[b] - 3, hi[b] + 1));
  return p;
}

static void
check_against_brute_force (guint n_budgets)
{
  g_autoptr (GRand) rand = g_rand_new_with_seed (17 + n_budgets);
  guint n_feasible = 0;

  for (int trial = 0; trial < 600; trial++)
    {
      guint tie_root[8];
      double budgets[BL_ALLOC_MAX_BUDGETS];
      g_autoptr (BlAllocProblem) p = random_problem (rand, n_budgets, tie_root, budgets);
      guint n = bl_alloc_problem_get_n_items (p);
      g_autofree guint *want = g_new0 (guint, n);
      double best = brute_force (p, budgets, n_budgets, tie_root, want);
      g_autoptr (GError) error = NULL;
      g_autoptr (BlAllocSolution) bb = bl_alloc_problem_solve (p, budgets, &error);

      if (!isfinite (best))
        {
          g_assert_null (bb);
          g_assert_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT);
          continue;
        }
      n_feasible++;
      g_assert_no_error (error);
      g_assert_cmpfloat_with_epsilon (bb->loss, best, 1e-9);
      for (guint b = 0; b < n_budgets; b++)
        g_assert_cmpfloat (bb->costs[b], <=, budgets[b]);
      for (guint i = 0; i < n; i++)
        g_assert_cmpuint (bb->choice[i], ==, bb->choice[tie_root[i]]);
      if (n_budgets == 1)
        {
          g_autoptr (BlAllocSolution) dp = bl_alloc_problem_solve_dp (p, budgets[0], &error);
          g_autoptr (GArray) frontier = bl_alloc_problem_frontier (p, &error);
          double fr = INFINITY;

          g_assert_no_error (error);
          g_assert_cmpfloat_with_epsilon (dp->loss, best, 1e-9);
          g_assert_cmpfloat (dp->costs[0], <=, budgets[0]);
          g_assert_cmpuint (dp->nodes, ==, 0);
          /* the frontier's last point within the budget is the optimum, and every point is
           * the optimum at its own cost */
          for (guint k = 0; k < frontier->len; k++)
            {
              const BlAllocPoint *pt = &g_array_index (frontier, BlAllocPoint, k);
              double at = pt->cost;
              g_autofree guint *c2 = g_new0 (guint, n);

              if (pt->cost <= budgets[0])
                fr = pt->loss;
              g_assert_cmpfloat_with_epsilon (brute_force (p, &at, 1, tie_root, c2), pt->loss, 1e-9);
              if (k > 0)
                {
                  g_assert_cmpfloat (pt->cost, >, g_array_index (frontier, BlAllocPoint, k - 1).cost);
                  g_assert_cmpfloat (pt->loss, <, g_array_index (frontier, BlAllocPoint, k - 1).loss);
                }
            }
          g_assert_cmpfloat_with_epsilon (fr, best, 1e-9);
        }
    }
  g_assert_cmpuint (n_feasible, >, 150);
}

static void
test_one_budget (void)
{
  check_against_brute_force (1);
}

static void
test_two_budgets (void)
{
  check_against_brute_force (2);
}

static void
test_three_budgets (void)
{
  check_against_brute_force (3);
}

/* ------------------------------------------------------------------------------------------ */
/* HAWQ-V3 (methods.md §5): the ResNet18 arrays of ILP.ipynb and the configurations of
 * bit_config.py */

static const double hawq_trace[19] = { 0.06857826, 0.03162379, 0.03298575, 0.01205663, 0.02222431, 0.00596336, 0.06931772, 0.00807129, 0.00372905, 0.00530698, 0.00209011, 0.00737569, 0.00210454, 0.00151197, 0.00158041, 0.00078146, 0.00451841, 0.00098745, 0.00072944 };
static const double hawq_delta8[19] = { 0.0235, 0.0125, 0.0102, 0.0082, 0.0145, 0.0344, 0.0023, 0.0287, 0.0148, 0.0333, 0.0682, 0.0027, 0.0448, 0.0336, 0.0576, 0.1130, 0.0102, 0.0947, 0.0532 };
static const double hawq_delta4[19] = { 6.7430, 3.9691, 3.3281, 2.6796, 4.7277, 10.5966, 0.6827, 9.0942, 4.8857, 10.7599, 21.7546, 0.8603, 14.5324, 10.9651, 18.7706, 36.4044, 3.1572, 29.6994, 17.4016 };
static const double hawq_params[19] = { 36864, 36864, 36864, 36864, 73728, 147456, 8192, 147456, 147456, 294912, 589824, 32768, 589824, 589824, 1179648, 2359296, 131072, 2359296, 2359296 };
static const double hawq_bops[19] = { 115605504, 115605504, 115605504, 115605504, 57802752, 115605504, 6422528, 115605504, 115605504, 57802752, 115605504, 6422528, 115605504, 115605504, 57802752, 115605504, 6422528, 115605504, 115605504 };
static const double hawq_lat4[19] = { 0.21094404, 0.21092674, 0.21104113, 0.21086851, 0.13642465, 0.19167506, 0.02532183, 0.19148203, 0.19142914, 0.11395316, 0.20556011, 0.01917474, 0.20566918, 0.20566509, 0.13185102, 0.22287786, 0.01790088, 0.22304611, 0.22286099 };
static const double hawq_lat8[19] = { 0.36189111, 0.36211718, 0.31141909, 0.30454471, 0.19184896, 0.38948934, 0.0334169, 0.38904905, 0.3892859, 0.19134735, 0.34307431, 0.02802354, 0.34313329, 0.34310756, 0.21117103, 0.37376585, 0.02896843, 0.37398187, 0.37405185 };

static void
hawq_case (int         constraint,
           double      lambda,
           const char *want)
{
  g_autoptr (BlAllocProblem) p = bl_alloc_problem_new (1);
  g_autoptr (GError) error = NULL;
  g_autoptr (BlAllocSolution) sol = NULL;
  double all4 = 0, all8 = 0, limit;
  char got[20];

  for (guint i = 0; i < 19; i++)
    {
      guint item = bl_alloc_problem_add_item (p, "layer");
      /* size in bits (0.5·x·P MB scaled by 2^23), BOPs as the notebook stores them (bops/64 at
       * 4 bits, bops/16 at 8 bits), latency as measured */
      double c4 = constraint == 0 ? 4 * hawq_params[i] : constraint == 1 ? hawq_bops[i] / 64 : hawq_lat4[i];
      double c8 = constraint == 0 ? 8 * hawq_params[i] : constraint == 1 ? hawq_bops[i] / 16 : hawq_lat8[i];

      bl_alloc_problem_add_option (p, item, "4", 0.0, &c4);
      bl_alloc_problem_add_option (p, item, "8", hawq_trace[i] * (hawq_delta8[i] - hawq_delta4[i]), &c8);
      all4 += c4;
      all8 += c8;
    }
  g_assert_true (bl_alloc_problem_tie (p, 4, 6, NULL));
  g_assert_true (bl_alloc_problem_tie (p, 9, 11, NULL));
  g_assert_true (bl_alloc_problem_tie (p, 14, 16, NULL));
  limit = all4 + lambda * (all8 - all4);
  sol = bl_alloc_problem_solve_dp (p, limit, &error);
  g_assert_no_error (error);
  for (guint i = 0; i < 19; i++)
    got[i] = sol->choice[i] == 0 ? '4' : '8';
  got[19] = '\0';
  g_assert_cmpstr (got, ==, want);
  g_assert_cmpfloat (sol->costs[0], <=, limit);
  /* branch and bound agrees */
  {
    g_autoptr (BlAllocSolution) bb = bl_alloc_problem_solve (p, &limit, &error);

    g_assert_no_error (error);
    g_assert_cmpmem (bb->choice, 19 * sizeof (guint), sol->choice, 19 * sizeof (guint));
  }
}

static void
test_hawq_v3 (void)
{
  hawq_case (0, 0.25, "8888888888888844444");
  hawq_case (0, 0.50, "8888888888888884844");
  hawq_case (0, 0.75, "8888888888888488884");
  hawq_case (1, 0.25, "8884848444444444444");
  hawq_case (1, 0.50, "8884888848884444444");
  hawq_case (1, 0.75, "8888888848888484884");
  hawq_case (2, 0.25, "8884848444444444444");
  hawq_case (2, 0.50, "8888848848884484844");
  hawq_case (2, 0.75, "8888888848888484884");
}

/* size and BOPs together, each at λ = 0.5: the joint optimum satisfies both and is no better
 * than either alone */
static void
test_hawq_two_budgets (void)
{
  g_autoptr (BlAllocProblem) p = bl_alloc_problem_new (2);
  g_autoptr (GError) error = NULL;
  double all4[2] = { 0 }, all8[2] = { 0 }, limits[2];
  g_autoptr (BlAllocSolution) sol = NULL;
  guint tie_root[19];
  g_autofree guint *want = g_new0 (guint, 19);

  for (guint i = 0; i < 19; i++)
    {
      guint item = bl_alloc_problem_add_item (p, "layer");
      double c4[2] = { 4 * hawq_params[i], hawq_bops[i] / 64 }, c8[2] = { 8 * hawq_params[i], hawq_bops[i] / 16 };

      bl_alloc_problem_add_option (p, item, "4", 0.0, c4);
      bl_alloc_problem_add_option (p, item, "8", hawq_trace[i] * (hawq_delta8[i] - hawq_delta4[i]), c8);
      for (guint b = 0; b < 2; b++)
        {
          all4[b] += c4[b];
          all8[b] += c8[b];
        }
      tie_root[i] = i;
    }
  tie_root[6] = 4;
  tie_root[11] = 9;
  tie_root[16] = 14;
  bl_alloc_problem_tie (p, 4, 6, NULL);
  bl_alloc_problem_tie (p, 9, 11, NULL);
  bl_alloc_problem_tie (p, 14, 16, NULL);
  for (guint b = 0; b < 2; b++)
    limits[b] = all4[b] + 0.5 * (all8[b] - all4[b]);
  sol = bl_alloc_problem_solve (p, limits, &error);
  g_assert_no_error (error);
  g_assert_cmpfloat_with_epsilon (sol->loss, brute_force (p, limits, 2, tie_root, want), 1e-12);
  g_test_message ("HAWQ-V3 size+BOPs at λ = 0.5: loss %.6f, %" G_GUINT64_FORMAT " nodes", sol->loss,
                  sol->nodes);
}

/* ------------------------------------------------------------------------------------------ */

static void
test_mixdq (void)
{
  g_autoptr (BlAllocProblem) p = bl_alloc_problem_new (1);
  g_autoptr (GError) error = NULL;
  gboolean attention[6] = { TRUE, TRUE, FALSE, FALSE, FALSE, TRUE };
  double params[6] = { 100, 100, 300, 300, 300, 100 };
  double ratios[3] = { 0.5, 1.0, 1.5 };
  g_autoptr (GArray) cands = NULL;

  for (guint i = 0; i < 6; i++)
    {
      guint item = bl_alloc_problem_add_item (p, "l");

      for (int bits = 2; bits <= 8; bits += 2)
        {
          double cost = bits * params[i];

          bl_alloc_problem_add_option (p, item, "b", (i + 1.0) * exp2 (-bits), &cost);
        }
    }
  cands = bl_alloc_mixdq (p, attention, params, 4.0, ratios, 3, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (cands->len, ==, 3);
  for (guint k = 0; k < 3; k++)
    {
      BlMixdqCandidate *c = &g_array_index (cands, BlMixdqCandidate, k);
      double att = 0, mlp = 0;
      /* r = 300/900 = 1/3: b̄_mlp = 4·(4/3)/(k/3 + 1) */
      double b_mlp = 4.0 * (4.0 / 3.0) / (ratios[k] / 3.0 + 1.0);

      g_assert_cmpfloat_with_epsilon (c->mlp_budget, floor (b_mlp * 900), 1e-9);
      g_assert_cmpfloat_with_epsilon (c->attention_budget, floor (ratios[k] * b_mlp * 300), 1e-9);
      g_assert_nonnull (c->solution);
      for (guint i = 0; i < 6; i++)
        {
          double cost = bl_alloc_problem_get_cost (p, i, c->solution->choice[i], 0);

          if (attention[i])
            att += cost;
          else
            mlp += cost;
        }
      g_assert_cmpfloat (att, <=, c->attention_budget);
      g_assert_cmpfloat (mlp, <=, c->mlp_budget);
      bl_alloc_solution_free (c->solution);
    }
}

static void
test_layerwise (void)
{
  /* LIM-like scores: first and last blocks matter most */
  double importance[6] = { 0.9, 0.2, 0.1, 0.3, 0.25, 0.8 };
  double hi[6], lo[6];
  guint n_low = 0;
  g_autofree guint *c = NULL;

  for (guint b = 0; b < 6; b++)
    {
      hi[b] = 4 * 100;
      lo[b] = 2 * 100;
    }
  /* 3.5 bits on average: two of six blocks at 2 bits leaves 6·400 − 2·200 = 2000 ≤ 2100 */
  c = bl_alloc_layerwise (importance, 6, hi, lo, 3.5 * 600, TRUE, &n_low);
  g_assert_nonnull (c);
  g_assert_cmpuint (n_low, ==, 2);
  g_assert_cmpuint (c[2], ==, 1);
  g_assert_cmpuint (c[1], ==, 1);
  g_assert_cmpuint (c[0] + c[3] + c[4] + c[5], ==, 0);
  g_clear_pointer (&c, g_free);
  /* the reversed reading moves the highest scores first */
  c = bl_alloc_layerwise (importance, 6, hi, lo, 3.5 * 600, FALSE, &n_low);
  g_assert_cmpuint (c[0], ==, 1);
  g_assert_cmpuint (c[5], ==, 1);
  g_clear_pointer (&c, g_free);
  g_assert_null (bl_alloc_layerwise (importance, 6, hi, lo, 1.0 * 600, TRUE, &n_low));
}

static void
test_baq (void)
{
  /* c = [1, 16, 1, 16]: ½·log2(c/GM) = ∓1, so R = 3, 5, 3, 5 at R̄ = 4, every column losing
   * c·2^(−2R) = 2^(−6), and the gain over 4 bits is AM/GM = 8.5/4 */
  const double c[4] = { 1, 16, 1, 16 };
  int bits[4];
  double gain;
  g_autoptr (GError) error = NULL;
  g_autoptr (GRand) rand = g_rand_new_with_seed (3);
  double rc[256];
  int rbits[256];

  g_assert_true (bl_baq_allocate (c, 4, 1, 4.0, 0, 8, bits, &gain, &error));
  g_assert_cmpint (bits[0], ==, 3);
  g_assert_cmpint (bits[1], ==, 5);
  g_assert_cmpint (bits[2], ==, 3);
  g_assert_cmpint (bits[3], ==, 5);
  g_assert_cmpfloat_with_epsilon (gain, 8.5 / 4.0, 1e-12);

  /* random coefficients: widths in range, never more than the budget, and at least as good as
   * uniform; groups of 32 share a width */
  for (guint j = 0; j < 256; j++)
    rc[j] = exp (g_rand_double_range (rand, -4, 4));
  g_assert_true (bl_baq_allocate (rc, 256, 32, 3.0, 2, 4, rbits, &gain, &error));
  {
    gint64 total = 0;

    for (guint j = 0; j < 256; j++)
      {
        g_assert_cmpint (rbits[j], >=, 2);
        g_assert_cmpint (rbits[j], <=, 4);
        g_assert_cmpint (rbits[j], ==, rbits[j / 32 * 32]);
        total += rbits[j];
      }
    g_assert_cmpint (total, <=, 3 * 256);
    g_assert_cmpint (total, >=, 3 * 256 - 32);
    g_assert_cmpfloat (gain, >=, 1.0);
  }
  /* a dead column (c = 0) takes the minimum */
  {
    const double dead[3] = { 0, 1, 1 };
    int db[3];

    g_assert_true (bl_baq_allocate (dead, 3, 1, 2.0, 0, 8, db, NULL, &error));
    g_assert_cmpint (db[0], ==, 0);
    g_assert_cmpint (db[1] + db[2], ==, 6);
  }
  g_assert_false (bl_baq_allocate (c, 4, 1, 9.0, 0, 8, bits, NULL, &error));
  g_assert_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT);
}

static void
test_objectives (void)
{
  BlAllocMeasures m = { 0.5, -0.1, 2.0, FALSE };
  BlAllocObjective o;

  g_assert_true (bl_alloc_objective_from_string ("hawq", &o));
  g_assert_cmpint (o, ==, BL_ALLOC_OBJECTIVE_HAWQ);
  g_assert_false (bl_alloc_objective_from_string ("nope", &o));
  g_assert_cmpfloat (bl_alloc_objective_loss (BL_ALLOC_OBJECTIVE_KL, &m), ==, 0.5);
  g_assert_cmpfloat (bl_alloc_objective_loss (BL_ALLOC_OBJECTIVE_HAWQ, &m), ==, 2.0);
  g_assert_cmpfloat (bl_alloc_objective_loss (BL_ALLOC_OBJECTIVE_ADAQUANT, &m), ==, 1e-6);
  g_assert_cmpfloat (bl_alloc_objective_loss (BL_ALLOC_OBJECTIVE_MIXDQ, &m), ==, 1e-6);
  m.attention = TRUE;
  g_assert_cmpfloat (bl_alloc_objective_loss (BL_ALLOC_OBJECTIVE_MIXDQ, &m), ==, 0.5);
  g_assert_cmpstr (bl_alloc_objective_to_string (BL_ALLOC_OBJECTIVE_ADAQUANT), ==, "adaquant");
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/bitlens/allocator/dp/brute-force", test_one_budget);
  g_test_add_func ("/bitlens/allocator/bb/two-budgets", test_two_budgets);
  g_test_add_func ("/bitlens/allocator/bb/three-budgets", test_three_budgets);
  g_test_add_func ("/bitlens/allocator/hawq-v3/resnet18", test_hawq_v3);
  g_test_add_func ("/bitlens/allocator/hawq-v3/size-and-bops", test_hawq_two_budgets);
  g_test_add_func ("/bitlens/allocator/mixdq", test_mixdq);
  g_test_add_func ("/bitlens/allocator/layerwise", test_layerwise);
  g_test_add_func ("/bitlens/allocator/baq", test_baq);
  g_test_add_func ("/bitlens/allocator/objectives", test_objectives);
  return g_test_run ();
}
