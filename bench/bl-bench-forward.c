/* bl-bench-forward.c: times the engine's perplexity forward (bl_engine_nll) over windows
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 *   bl-bench-forward MODEL_DIR IDS_FILE [--ctx 512] [--threads T] [--backend cpu] [--warmup 1]
 *
 * IDS_FILE holds whitespace-separated token ids, cut into windows of --ctx tokens (a partial
 * last window is dropped). Every window is scored from its second token (first_target = 1),
 * as the GPTQ protocol does. Prints one JSON object: the window count, the wall and process
 * CPU seconds spent in bl_engine_nll (after --warmup untimed windows), tokens per second
 * counting all --ctx tokens of a window, and the mean NLL, which bench/bench-ppl-throughput
 * compares with PyTorch's.
 * Driven by bench/bench-ppl-throughput; see there.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "bl-engine.h"

/* CPU seconds of the whole process, all threads: on a machine shared with other work this
 * measures the engine's cost better than the wall clock does. */
static double
process_cpu_seconds (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static GArray *
read_ids (const char  *path,
          GError     **error)
{
  g_autofree char *text = NULL;
  g_auto(GStrv) tokens = NULL;
  GArray *ids;

  if (!g_file_get_contents (path, &text, NULL, error))
    return NULL;
  tokens = g_strsplit_set (g_strstrip (text), " \t\r\n", -1);
  ids = g_array_new (FALSE, FALSE, sizeof (int32_t));
  for (guint i = 0; tokens[i] != NULL; i++)
    {
      gint64 v;
      int32_t id;

      if (*tokens[i] == '\0')
        continue;
      if (!g_ascii_string_to_signed (tokens[i], 10, 0, G_MAXINT32, &v, error))
        {
          g_array_unref (ids);
          return NULL;
        }
      id = (int32_t) v;
      g_array_append_val (ids, id);
    }
  return ids;
}

int
main (int   argc,
      char *argv[])
{
  int ctx_len = 512;
  int n_threads = 0;
  int warmup = 1;
  g_autofree char *backend_name = g_strdup ("cpu");
  GOptionEntry entries[] = {
    { "ctx", 0, 0, G_OPTION_ARG_INT, &ctx_len, "Window length in tokens", "N" },
    { "threads", 0, 0, G_OPTION_ARG_INT, &n_threads, "Host threads (0: one per processor)", "T" },
    { "backend", 0, 0, G_OPTION_ARG_STRING, &backend_name, "Backend: cpu, cuda, auto", "NAME" },
    { "warmup", 0, 0, G_OPTION_ARG_INT, &warmup, "Untimed windows run first", "K" },
    { NULL }
  };
  g_autoptr(GOptionContext) options = g_option_context_new ("MODEL_DIR IDS_FILE");
  g_autoptr(GError) error = NULL;
  g_autoptr(BlModel) model = NULL;
  g_autoptr(BlBackend) backend = NULL;
  g_autoptr(BlEngine) engine = NULL;
  g_autoptr(GArray) ids = NULL;
  g_autofree double *nll = NULL;
  gint64 t0;
  double load_seconds;
  double seconds;
  double cpu0;
  double cpu_seconds;
  double sum = 0.0;
  int n_windows;

  g_option_context_add_main_entries (options, entries, NULL);
  if (!g_option_context_parse (options, &argc, &argv, &error) || argc != 3)
    {
      g_printerr ("%s\n", error != NULL ? error->message : "Expected MODEL_DIR IDS_FILE");
      return 2;
    }

  t0 = g_get_monotonic_time ();
  if ((ids = read_ids (argv[2], &error)) == NULL ||
      (model = bl_model_load (argv[1], NULL, &error)) == NULL ||
      (backend = bl_backend_new (backend_name, n_threads, &error)) == NULL ||
      (engine = bl_engine_new (model, backend, NULL, &error)) == NULL)
    {
      g_printerr ("bl-bench-forward: %s\n", error->message);
      return 1;
    }
  load_seconds = (g_get_monotonic_time () - t0) / 1e6;

  n_windows = (int) (ids->len / (guint) ctx_len);
  if (ctx_len < 2 || ctx_len > bl_engine_get_max_tokens (engine) || n_windows == 0)
    {
      g_printerr ("bl-bench-forward: %u ids do not make a window of %d tokens (max %d)\n",
                  ids->len, ctx_len, bl_engine_get_max_tokens (engine));
      return 1;
    }
  nll = g_new (double, ctx_len - 1);

  for (int w = 0; w < warmup; w++)
    if (!bl_engine_nll (engine, &g_array_index (ids, int32_t, 0), ctx_len, 1, nll, NULL, &error))
      {
        g_printerr ("bl-bench-forward: %s\n", error->message);
        return 1;
      }

  t0 = g_get_monotonic_time ();
  cpu0 = process_cpu_seconds ();
  for (int w = 0; w < n_windows; w++)
    {
      const int32_t *window = &g_array_index (ids, int32_t, (size_t) w * ctx_len);

      if (!bl_engine_nll (engine, window, ctx_len, 1, nll, NULL, &error))
        {
          g_printerr ("bl-bench-forward: %s\n", error->message);
          return 1;
        }
      for (int j = 0; j < ctx_len - 1; j++)
        sum += nll[j];
    }
  seconds = (g_get_monotonic_time () - t0) / 1e6;
  cpu_seconds = process_cpu_seconds () - cpu0;

  printf ("{\"backend\": \"%s\", \"description\": \"%s\", \"threads\": %d, \"windows\": %d, "
          "\"ctx\": %d, \"load_seconds\": %.3f, \"seconds\": %.4f, \"cpu_seconds\": %.4f, "
          "\"tokens_per_second\": %.1f, \"mean_nll\": %.6f}\n",
          bl_backend_get_name (backend), bl_backend_get_description (backend),
          bl_backend_get_n_threads (backend), n_windows, ctx_len, load_seconds, seconds,
          cpu_seconds, n_windows * ctx_len / seconds,
          sum / ((double) n_windows * (ctx_len - 1)));
  return 0;
}
