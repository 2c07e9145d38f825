/* bl-hf-cache.c: the models in the local Hugging Face cache
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "bl-hf-cache.h"

#include <string.h>

/**
 * SECTION:bl-hf-cache
 * @title: Hugging Face cache
 *
 * The hub cache keeps each repository as `models--ORG--NAME/` with `snapshots/REVISION/`
 * directories and a `refs/main` file naming the current revision (huggingface_hub's
 * cache layout, "Understand caching" in its documentation). A snapshot is offered when it
 * has a config.json and at least one .safetensors file, which is what bl_model_load() reads.
 */

void
bl_hf_model_free (BlHfModel *model)
{
  if (model == NULL)
    return;
  g_free (model->repo);
  g_free (model->path);
  g_free (model);
}

/**
 * bl_hf_cache_get_dir:
 *
 * `$HF_HUB_CACHE`, else `$HF_HOME/hub`, else `~/.cache/huggingface/hub` (the huggingface_hub
 * defaults).
 *
 * Returns: (transfer full): the hub cache directory, which may not exist
 */
char *
bl_hf_cache_get_dir (void)
{
  const char *hub = g_getenv ("HF_HUB_CACHE");
  const char *home = g_getenv ("HF_HOME");

  if (hub != NULL && *hub != '\0')
    return g_strdup (hub);
  if (home != NULL && *home != '\0')
    return g_build_filename (home, "hub", NULL);
  return g_build_filename (g_get_home_dir (), ".cache", "huggingface", "hub", NULL);
}

static gboolean
is_model_dir (const char *dir)
{
  g_autofree char *config = g_build_filename (dir, "config.json", NULL);
  g_autoptr(GDir) d = NULL;
  const char *name;

  if (!g_file_test (config, G_FILE_TEST_EXISTS))
    return FALSE;
  d = g_dir_open (dir, 0, NULL);
  if (d == NULL)
    return FALSE;
  while ((name = g_dir_read_name (d)) != NULL)
    if (g_str_has_suffix (name, ".safetensors"))
      return TRUE;
  return FALSE;
}

/* The snapshot refs/main names, else any snapshot that holds a model. */
static char *
pick_snapshot (const char *repo_dir)
{
  g_autofree char *ref_path = g_build_filename (repo_dir, "refs", "main", NULL);
  g_autofree char *snapshots = g_build_filename (repo_dir, "snapshots", NULL);
  g_autofree char *revision = NULL;
  g_autoptr(GDir) d = NULL;
  const char *name;

  if (g_file_get_contents (ref_path, &revision, NULL, NULL))
    {
      g_autofree char *path = g_build_filename (snapshots, g_strstrip (revision), NULL);

      if (is_model_dir (path))
        return g_steal_pointer (&path);
    }
  d = g_dir_open (snapshots, 0, NULL);
  if (d == NULL)
    return NULL;
  while ((name = g_dir_read_name (d)) != NULL)
    {
      g_autofree char *path = g_build_filename (snapshots, name, NULL);

      if (is_model_dir (path))
        return g_steal_pointer (&path);
    }
  return NULL;
}

static int
cmp_repo (gconstpointer a,
          gconstpointer b)
{
  const BlHfModel *ma = *(const BlHfModel *const *) a;
  const BlHfModel *mb = *(const BlHfModel *const *) b;

  return g_ascii_strcasecmp (ma->repo, mb->repo);
}

/**
 * bl_hf_cache_scan:
 * @hub_dir: (nullable): the hub cache, or %NULL for bl_hf_cache_get_dir()
 * @cancellable: (nullable): checked between repositories
 *
 * Lists the loadable models in the cache, by repository id. A missing or unreadable cache
 * is an empty list.
 *
 * Returns: (transfer full) (element-type BlHfModel): the models
 */
GPtrArray *
bl_hf_cache_scan (const char   *hub_dir,
                  GCancellable *cancellable)
{
  GPtrArray *out = g_ptr_array_new_with_free_func ((GDestroyNotify) bl_hf_model_free);
  g_autofree char *dir = hub_dir ? g_strdup (hub_dir) : bl_hf_cache_get_dir ();
  g_autoptr(GDir) d = g_dir_open (dir, 0, NULL);
  const char *name;

  if (d == NULL)
    return out;
  while ((name = g_dir_read_name (d)) != NULL && !g_cancellable_is_cancelled (cancellable))
    {
      g_autofree char *repo_dir = NULL;
      g_autofree char *snapshot = NULL;
      g_auto(GStrv) parts = NULL;
      BlHfModel *m;

      if (!g_str_has_prefix (name, "models--"))
        continue;
      repo_dir = g_build_filename (dir, name, NULL);
      snapshot = pick_snapshot (repo_dir);
      if (snapshot == NULL)
        continue;
      parts = g_strsplit (name + strlen ("models--"), "--", -1);
      m = g_new0 (BlHfModel, 1);
      m->repo = g_strjoinv ("/", parts);
      m->path = g_steal_pointer (&snapshot);
      g_ptr_array_add (out, m);
    }
  g_ptr_array_sort (out, cmp_repo);
  return out;
}
