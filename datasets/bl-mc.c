/* bl-mc.c: multiple-choice and last-word tasks (PIQA, ARC, WinoGrande, BoolQ, LAMBADA)
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * How each task becomes (context, continuation) pairs. The prompts are those of
 * EleutherAI lm-evaluation-harness (lm_eval/tasks/TASK/TASK.yaml and
 * lm_eval/api/task.py, ConfigurableTask.construct_requests), zero-shot, with the default
 * target delimiter " " between context and choice:
 *
 * | task           | context                                   | continuation of choice i      |
 * |----------------|-------------------------------------------|-------------------------------|
 * | piqa           | "Question: {goal}\nAnswer:"                | " " + [sol1, sol2][i]         |
 * | arc-easy/-chal.| "Question: {question}\nAnswer:"            | " " + choices.text[i]         |
 * | boolq          | "{passage}\nQuestion: {question}?\nAnswer:"| " " + ["no", "yes"][i]        |
 * | winogrande     | sentence[:blank] + option_i (partial)     | " " + sentence[blank+1:].strip()|
 * | lambada        | text without its last word                | " " + last word (greedy match)|
 *
 * piqa, arc-easy and arc-challenge report acc and acc_norm; winogrande, boolq and lambada
 * report acc only (the harness's metric_list of each task).
 *
 * The shared files are llm-foundry's conversions (../shared/SOURCES.md), whose `query`
 * holds part of the prompt already; this is how each maps onto the table:
 * - PIQA icl `query` is "Question: {goal}\n": the context is query + "Answer:". The
 *   original release (valid.jsonl + valid-labels.lst) gives {goal} and the solutions
 *   directly, untrimmed as in Hugging Face's `piqa` dataset the harness reads; it is the
 *   default file for piqa. (The icl choices are whitespace-trimmed: 116 of 1,838 differ.)
 * - ARC icl `query` is "Question: {question}": the context is query + "\nAnswer:".
 * - BoolQ icl `query` is "Passage: {passage}\nQuestion: {question}?": the context is the
 *   query without its "Passage: " prefix, + "\nAnswer:".
 * - WinoGrande icl has `context_options` (= sentence[:blank] + option) and `continuation`
 *   (= the rest, unstripped): the continuation scored is " " + continuation.strip().
 * - LAMBADA icl has `context` and `continuation` (the last word): the continuation is
 *   " " + word. One row (test line 4463) splits at a paragraph break, "…saw the" +
 *   "\n\nrecorder"; a continuation that already starts with white space is kept as it is.
 */
#include "bl-mc.h"

#include <json-glib/json-glib.h>
#include <string.h>

#include "bl-error.h"

typedef struct
{
  const char *name;
  const char *default_file;
  gboolean acc_norm;
} TaskInfo;

static const TaskInfo task_info[BL_MC_N_TASKS] = {
  [BL_MC_TASK_PIQA] = { "piqa", "piqa/valid.jsonl", TRUE },
  [BL_MC_TASK_ARC_EASY] = { "arc-easy", "arc_easy/test.icl.jsonl", TRUE },
  [BL_MC_TASK_ARC_CHALLENGE] = { "arc-challenge", "arc_challenge/test.icl.jsonl", TRUE },
  [BL_MC_TASK_WINOGRANDE] = { "winogrande", "winogrande/validation.icl.jsonl", FALSE },
  [BL_MC_TASK_BOOLQ] = { "boolq", "boolq/validation.icl.jsonl", FALSE },
  [BL_MC_TASK_LAMBADA] = { "lambada", "lambada_openai/test.icl.jsonl", FALSE },
};

/**
 * bl_mc_task_to_string:
 * @task: a task
 *
 * Returns: the task's name: "piqa", "arc-easy", "arc-challenge", "winogrande", "boolq" or
 *   "lambada"
 */
const char *
bl_mc_task_to_string (BlMcTask task)
{
  g_return_val_if_fail ((guint) task < BL_MC_N_TASKS, NULL);
  return task_info[task].name;
}

/**
 * bl_mc_task_from_string:
 * @name: a task name as bl_mc_task_to_string() prints it; "arc_easy", "arc_challenge" and
 *   "lambada_openai" (the harness's and the shared folders' spellings) are accepted too
 * @out_task: (out): the task
 *
 * Returns: %TRUE when @name names a task
 */
gboolean
bl_mc_task_from_string (const char *name,
                        BlMcTask   *out_task)
{
  g_return_val_if_fail (name != NULL, FALSE);
  g_return_val_if_fail (out_task != NULL, FALSE);

  for (guint t = 0; t < BL_MC_N_TASKS; t++)
    if (g_str_equal (name, task_info[t].name))
      {
        *out_task = t;
        return TRUE;
      }
  if (g_str_equal (name, "arc_easy"))
    *out_task = BL_MC_TASK_ARC_EASY;
  else if (g_str_equal (name, "arc_challenge"))
    *out_task = BL_MC_TASK_ARC_CHALLENGE;
  else if (g_str_equal (name, "lambada_openai"))
    *out_task = BL_MC_TASK_LAMBADA;
  else
    return FALSE;
  return TRUE;
}

/**
 * bl_mc_task_get_default_file:
 * @task: a task
 *
 * Returns: the task's file relative to a datasets directory laid out as ../shared/datasets,
 *   e.g. "arc_easy/test.icl.jsonl"
 */
const char *
bl_mc_task_get_default_file (BlMcTask task)
{
  g_return_val_if_fail ((guint) task < BL_MC_N_TASKS, NULL);
  return task_info[task].default_file;
}

/**
 * bl_mc_task_reports_acc_norm:
 * @task: a task
 *
 * Returns: whether lm-evaluation-harness reports length-normalised accuracy for @task
 */
gboolean
bl_mc_task_reports_acc_norm (BlMcTask task)
{
  g_return_val_if_fail ((guint) task < BL_MC_N_TASKS, FALSE);
  return task_info[task].acc_norm;
}

/**
 * bl_mc_format_to_string:
 * @format: a file layout
 *
 * Returns: "mc-icl" or "mc-piqa", the dataset kind a stored result records
 */
const char *
bl_mc_format_to_string (BlMcFormat format)
{
  switch (format)
    {
    case BL_MC_FORMAT_ICL:
      return "mc-icl";
    case BL_MC_FORMAT_PIQA:
      return "mc-piqa";
    default:
      g_return_val_if_reached (NULL);
    }
}

struct _BlMcSet
{
  GObject parent_instance;

  BlMcTask task;
  BlMcFormat format;
  char *path;
  char *name;
  char *sha256;
  GPtrArray *items;   /* BlMcItem */
};

G_DEFINE_FINAL_TYPE (BlMcSet, bl_mc_set, G_TYPE_OBJECT)

static void
bl_mc_set_finalize (GObject *object)
{
  BlMcSet *self = BL_MC_SET (object);

  g_clear_pointer (&self->path, g_free);
  g_clear_pointer (&self->name, g_free);
  g_clear_pointer (&self->sha256, g_free);
  g_clear_pointer (&self->items, g_ptr_array_unref);

  G_OBJECT_CLASS (bl_mc_set_parent_class)->finalize (object);
}

static void
bl_mc_set_class_init (BlMcSetClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = bl_mc_set_finalize;
}

static void
bl_mc_set_init (BlMcSet *self)
{
  self->items = g_ptr_array_new_with_free_func ((GDestroyNotify) bl_mc_item_free);
}

/* Where a row comes from, for error messages: "FILE:LINE: …". */
typedef struct
{
  const char *source;
  guint line;
} Where;

static gboolean G_GNUC_PRINTF (3, 4)
row_error (GError     **error,
           const Where *where,
           const char  *format,
           ...)
{
  g_autofree char *message = NULL;
  va_list args;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);
  g_set_error (error, BL_ERROR, BL_ERROR_DATASET, "%s:%u: %s", where->source, where->line,
               message);
  return FALSE;
}

static const char *
get_string (JsonObject  *obj,
            const char  *member,
            const Where *where,
            GError     **error)
{
  JsonNode *node = json_object_get_member (obj, member);

  if (node == NULL)
    {
      row_error (error, where, "the row has no \"%s\"", member);
      return NULL;
    }
  if (!JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_STRING)
    {
      row_error (error, where, "\"%s\" is not a string", member);
      return NULL;
    }
  return json_node_get_string (node);
}

static gboolean
get_index (JsonObject  *obj,
           const char  *member,
           guint        n_choices,
           int         *out,
           const Where *where,
           GError     **error)
{
  JsonNode *node = json_object_get_member (obj, member);
  gint64 v;

  if (node == NULL)
    return row_error (error, where, "the row has no \"%s\"", member);
  if (!JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_INT64)
    return row_error (error, where, "\"%s\" is not an integer", member);
  v = json_node_get_int (node);
  if (v < 0 || v >= n_choices)
    return row_error (error, where, "\"%s\" is %" G_GINT64_FORMAT ", outside 0…%u", member, v,
                      n_choices - 1);
  *out = (int) v;
  return TRUE;
}

/* A JSON array of at least @min_len strings, as a NULL-terminated vector of borrowed
 * pointers (the strings stay owned by the parser). */
static const char **
get_string_array (JsonObject  *obj,
                  const char  *member,
                  guint        min_len,
                  guint       *out_len,
                  const Where *where,
                  GError     **error)
{
  JsonNode *node = json_object_get_member (obj, member);
  JsonArray *array;
  g_autofree const char **out = NULL;
  guint n;

  if (node == NULL)
    {
      row_error (error, where, "the row has no \"%s\"", member);
      return NULL;
    }
  if (!JSON_NODE_HOLDS_ARRAY (node))
    {
      row_error (error, where, "\"%s\" is not an array", member);
      return NULL;
    }
  array = json_node_get_array (node);
  n = json_array_get_length (array);
  if (n < min_len)
    {
      row_error (error, where, "\"%s\" has %u entries, fewer than %u", member, n, min_len);
      return NULL;
    }
  out = g_new0 (const char *, n + 1);
  for (guint i = 0; i < n; i++)
    {
      JsonNode *e = json_array_get_element (array, i);

      if (!JSON_NODE_HOLDS_VALUE (e) || json_node_get_value_type (e) != G_TYPE_STRING)
        {
          row_error (error, where, "\"%s\"[%u] is not a string", member, i);
          return NULL;
        }
      out[i] = json_node_get_string (e);
    }
  *out_len = n;
  return g_steal_pointer (&out);
}

/* One llm-foundry ICL row of a task that has `query`, `choices` and `gold`. */
static BlMcItem *
parse_icl_choice_row (BlMcTask     task,
                      JsonObject  *obj,
                      const Where *where,
                      GError     **error)
{
  g_autofree const char **choices = NULL;
  g_autofree char *context = NULL;
  const char *query;
  guint n;
  int gold;

  if ((query = get_string (obj, "query", where, error)) == NULL
      || (choices = get_string_array (obj, "choices", 2, &n, where, error)) == NULL
      || !get_index (obj, "gold", n, &gold, where, error))
    return NULL;

  switch (task)
    {
    case BL_MC_TASK_PIQA:
      context = g_str_has_suffix (query, "\n") ? g_strconcat (query, "Answer:", NULL)
                                               : g_strconcat (query, "\nAnswer:", NULL);
      break;
    case BL_MC_TASK_ARC_EASY:
    case BL_MC_TASK_ARC_CHALLENGE:
      context = g_strconcat (query, "\nAnswer:", NULL);
      break;
    case BL_MC_TASK_BOOLQ:
      if (!g_str_has_prefix (query, "Passage: "))
        {
          row_error (error, where, "a BoolQ \"query\" starts with \"Passage: \"");
          return NULL;
        }
      context = g_strconcat (query + strlen ("Passage: "), "\nAnswer:", NULL);
      break;
    case BL_MC_TASK_WINOGRANDE:
    case BL_MC_TASK_LAMBADA:
    default:
      g_return_val_if_reached (NULL);
    }
  return bl_mc_item_new_shared (context, choices, " ", gold);
}

static BlMcItem *
parse_icl_winogrande_row (JsonObject  *obj,
                          const Where *where,
                          GError     **error)
{
  g_autofree const char **contexts = NULL;
  g_autofree char *target = NULL;
  g_autofree char *continuation = NULL;
  const char *rest;
  guint n;
  int gold;

  if ((contexts = get_string_array (obj, "context_options", 2, &n, where, error)) == NULL
      || (rest = get_string (obj, "continuation", where, error)) == NULL
      || !get_index (obj, "gold", n, &gold, where, error))
    return NULL;

  /* preprocess_winogrande.partial_target strips the rest of the sentence */
  target = g_strstrip (g_strdup (rest));
  continuation = g_strconcat (" ", target, NULL);
  return bl_mc_item_new_partial (contexts, continuation, gold);
}

static BlMcItem *
parse_icl_lambada_row (JsonObject  *obj,
                       const Where *where,
                       GError     **error)
{
  g_autofree char *continuation = NULL;
  const char *context, *word;

  if ((context = get_string (obj, "context", where, error)) == NULL
      || (word = get_string (obj, "continuation", where, error)) == NULL)
    return NULL;
  if (*word == '\0')
    {
      row_error (error, where, "\"continuation\" is empty");
      return NULL;
    }
  continuation = g_ascii_isspace (*word) ? g_strdup (word) : g_strconcat (" ", word, NULL);
  return bl_mc_item_new_greedy (context, continuation);
}

/* One row of PIQA's own valid.jsonl; @label is the row's line of valid-labels.lst, or -1
 * when the row must carry a "label" member itself. */
static BlMcItem *
parse_piqa_row (JsonObject  *obj,
                int          label,
                const Where *where,
                GError     **error)
{
  g_autofree char *context = NULL;
  const char *goal, *sol[3] = { NULL, NULL, NULL };

  if ((goal = get_string (obj, "goal", where, error)) == NULL
      || (sol[0] = get_string (obj, "sol1", where, error)) == NULL
      || (sol[1] = get_string (obj, "sol2", where, error)) == NULL)
    return NULL;
  if (label < 0 && !get_index (obj, "label", 2, &label, where, error))
    return NULL;

  context = g_strconcat ("Question: ", goal, "\nAnswer:", NULL);
  return bl_mc_item_new_shared (context, sol, " ", label);
}

/* Calls @func for every non-blank line of @data, with its 1-based number (blank lines
 * still count). A trailing "\r" is dropped. */
typedef gboolean (*LineFunc) (const char *line,
                              gsize       len,
                              guint       number,
                              gpointer    user_data,
                              GError    **error);

static gboolean
for_each_line (const char  *data,
               gsize        len,
               LineFunc     func,
               gpointer     user_data,
               GError     **error)
{
  const char *p = data, *end = data + len;
  guint number = 0;

  while (p < end)
    {
      const char *nl = memchr (p, '\n', end - p);
      const char *line_end = nl ? nl : end;
      gsize n = line_end - p;
      gboolean blank = TRUE;

      number++;
      if (n > 0 && p[n - 1] == '\r')
        n--;
      for (gsize i = 0; i < n && blank; i++)
        blank = g_ascii_isspace (p[i]);
      if (!blank && !func (p, n, number, user_data, error))
        return FALSE;
      p = nl ? nl + 1 : end;
    }
  return TRUE;
}

typedef struct
{
  BlMcSet *set;
  const char *source;
  JsonParser *parser;
  GArray *labels;       /* int, PIQA's valid-labels.lst, or NULL */
  gboolean format_known;
} ParseState;

static gboolean
parse_label_line (const char *line,
                  gsize       len,
                  guint       number,
                  gpointer    user_data,
                  GError    **error)
{
  ParseState *st = user_data;
  g_autofree char *text = g_strstrip (g_strndup (line, len));
  int label;

  if (g_str_equal (text, "0"))
    label = 0;
  else if (g_str_equal (text, "1"))
    label = 1;
  else
    {
      Where where = { st->source, number };

      return row_error (error, &where, "a PIQA label is 0 or 1, not \"%s\"", text);
    }
  g_array_append_val (st->labels, label);
  return TRUE;
}

static gboolean
parse_row (const char *line,
           gsize       len,
           guint       number,
           gpointer    user_data,
           GError    **error)
{
  ParseState *st = user_data;
  BlMcSet *set = st->set;
  Where where = { st->source, number };
  g_autoptr(GError) json_error = NULL;
  JsonNode *root;
  JsonObject *obj;
  BlMcItem *item = NULL;

  if (!json_parser_load_from_data (st->parser, line, len, &json_error))
    return row_error (error, &where, "not valid JSON: %s", json_error->message);
  root = json_parser_get_root (st->parser);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    return row_error (error, &where, "a row is a JSON object");
  obj = json_node_get_object (root);

  if (!st->format_known)
    {
      /* The first row decides the layout of the whole file. */
      if (set->task == BL_MC_TASK_PIQA && json_object_has_member (obj, "goal"))
        set->format = BL_MC_FORMAT_PIQA;
      else
        set->format = BL_MC_FORMAT_ICL;
      st->format_known = TRUE;
    }

  if (set->format == BL_MC_FORMAT_PIQA)
    {
      int label = -1;

      if (st->labels != NULL)
        {
          if (set->items->len >= st->labels->len)
            return row_error (error, &where, "there are more rows than labels (%u)",
                              st->labels->len);
          label = g_array_index (st->labels, int, set->items->len);
        }
      item = parse_piqa_row (obj, label, &where, error);
    }
  else if (set->task == BL_MC_TASK_WINOGRANDE)
    item = parse_icl_winogrande_row (obj, &where, error);
  else if (set->task == BL_MC_TASK_LAMBADA)
    item = parse_icl_lambada_row (obj, &where, error);
  else
    item = parse_icl_choice_row (set->task, obj, &where, error);

  if (item == NULL)
    return FALSE;
  item->line = number;
  g_ptr_array_add (set->items, item);
  return TRUE;
}

/* PIQA's labels file beside its rows: "valid.jsonl" → "valid-labels.lst". */
static char *
piqa_labels_path (const char *path)
{
  g_autofree char *stem = g_str_has_suffix (path, ".jsonl")
                          ? g_strndup (path, strlen (path) - strlen (".jsonl"))
                          : g_strdup (path);

  return g_strconcat (stem, "-labels.lst", NULL);
}

static gboolean
data_starts_with_piqa_row (const char *data,
                           gsize       len)
{
  const char *nl = memchr (data, '\n', len);
  gsize n = nl ? (gsize) (nl - data) : len;

  return g_strstr_len (data, n, "\"goal\"") != NULL;
}

static BlMcSet *
parse (BlMcTask     task,
       const char  *source_name,
       const char  *labels_name,
       const char  *data,
       gsize        len,
       const char  *labels,
       gsize        labels_len,
       GError     **error)
{
  g_autoptr(BlMcSet) self = g_object_new (BL_TYPE_MC_SET, NULL);
  g_autoptr(JsonParser) parser = json_parser_new_immutable ();
  g_autoptr(GArray) label_array = NULL;
  g_autoptr(GChecksum) sum = g_checksum_new (G_CHECKSUM_SHA256);
  ParseState st = { self, source_name, parser, NULL, FALSE };

  self->task = task;
  if (labels != NULL)
    {
      ParseState lst = { self, labels_name, NULL, NULL, FALSE };

      label_array = g_array_new (FALSE, FALSE, sizeof (int));
      lst.labels = label_array;
      if (!for_each_line (labels, labels_len, parse_label_line, &lst, error))
        return NULL;
      st.labels = label_array;
    }

  if (!for_each_line (data, len, parse_row, &st, error))
    return NULL;
  if (self->items->len == 0)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_DATASET, "%s: no items", source_name);
      return NULL;
    }
  if (label_array != NULL && self->format == BL_MC_FORMAT_PIQA
      && label_array->len != self->items->len)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_DATASET, "%s: %u labels for %u rows of %s",
                   labels_name, label_array->len, self->items->len, source_name);
      return NULL;
    }

  /* The stored dataset is the bytes that decide the items: the rows, and the labels
   * when they come from a second file. */
  g_checksum_update (sum, (const guchar *) data, len);
  if (labels != NULL && self->format == BL_MC_FORMAT_PIQA)
    g_checksum_update (sum, (const guchar *) labels, labels_len);
  self->sha256 = g_strdup (g_checksum_get_string (sum));
  return g_steal_pointer (&self);
}

/**
 * bl_mc_set_new_from_data:
 * @task: which task the rows belong to
 * @source_name: the file name that error messages and bl_mc_set_get_name() use
 * @data: the JSONL bytes
 * @len: their length
 * @labels: (nullable): PIQA's labels file (one 0 or 1 per line), for rows without a
 *   "label" member
 * @labels_len: its length
 * @error: return location for a #GError
 *
 * Parses a task's rows from memory. Each row becomes one #BlMcItem, formatted for @task
 * (see the table at the top of bl-mc.c). A malformed row is a %BL_ERROR_DATASET error
 * that names the source and the line.
 *
 * Returns: (transfer full): the items, or %NULL
 */
BlMcSet *
bl_mc_set_new_from_data (BlMcTask     task,
                         const char  *source_name,
                         const char  *data,
                         gsize        len,
                         const char  *labels,
                         gsize        labels_len,
                         GError     **error)
{
  BlMcSet *self;

  g_return_val_if_fail ((guint) task < BL_MC_N_TASKS, NULL);
  g_return_val_if_fail (source_name != NULL, NULL);
  g_return_val_if_fail (data != NULL || len == 0, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  self = parse (task, source_name, "labels", data, len, labels, labels_len, error);
  if (self != NULL)
    self->name = g_strdup_printf ("%s/%s", task_info[task].name, source_name);
  return self;
}

/**
 * bl_mc_set_load:
 * @task: which task the file holds
 * @path: a JSONL file in one of the #BlMcFormat layouts. For PIQA's own layout the labels
 *   are read from the "-labels.lst" file beside it ("valid.jsonl" → "valid-labels.lst").
 * @error: return location for a #GError
 *
 * Reads a task file. I/O errors are %G_FILE_ERROR; a malformed row is %BL_ERROR_DATASET,
 * with the file and line in the message.
 *
 * Returns: (transfer full): the items, or %NULL
 */
BlMcSet *
bl_mc_set_load (BlMcTask     task,
                const char  *path,
                GError     **error)
{
  g_autofree char *data = NULL;
  g_autofree char *labels = NULL;
  g_autofree char *labels_path = NULL;
  g_autofree char *base = NULL;
  gsize len = 0, labels_len = 0;
  BlMcSet *self;

  g_return_val_if_fail ((guint) task < BL_MC_N_TASKS, NULL);
  g_return_val_if_fail (path != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (!g_file_get_contents (path, &data, &len, error))
    return NULL;

  if (task == BL_MC_TASK_PIQA && data_starts_with_piqa_row (data, len))
    {
      labels_path = piqa_labels_path (path);
      /* Without the labels file, each row must carry its own "label". */
      if (g_file_test (labels_path, G_FILE_TEST_EXISTS)
          && !g_file_get_contents (labels_path, &labels, &labels_len, error))
        return NULL;
    }

  self = parse (task, path, labels_path, data, len, labels, labels_len, error);
  if (self == NULL)
    return NULL;
  base = g_path_get_basename (path);
  self->name = g_strdup_printf ("%s/%s", task_info[task].name, base);
  self->path = g_strdup (path);
  return self;
}

/**
 * bl_mc_set_load_default:
 * @task: a task
 * @datasets_dir: a directory laid out as ../shared/datasets
 * @error: return location for a #GError
 *
 * Reads @datasets_dir/bl_mc_task_get_default_file().
 *
 * Returns: (transfer full): the items, or %NULL
 */
BlMcSet *
bl_mc_set_load_default (BlMcTask     task,
                        const char  *datasets_dir,
                        GError     **error)
{
  g_autofree char *path = NULL;

  g_return_val_if_fail ((guint) task < BL_MC_N_TASKS, NULL);
  g_return_val_if_fail (datasets_dir != NULL, NULL);

  path = g_build_filename (datasets_dir, task_info[task].default_file, NULL);
  return bl_mc_set_load (task, path, error);
}

BlMcTask
bl_mc_set_get_task (BlMcSet *self)
{
  g_return_val_if_fail (BL_IS_MC_SET (self), BL_MC_TASK_PIQA);
  return self->task;
}

BlMcFormat
bl_mc_set_get_format (BlMcSet *self)
{
  g_return_val_if_fail (BL_IS_MC_SET (self), BL_MC_FORMAT_ICL);
  return self->format;
}

/* The file the items were read from, or NULL for bl_mc_set_new_from_data(). */
const char *
bl_mc_set_get_path (BlMcSet *self)
{
  g_return_val_if_fail (BL_IS_MC_SET (self), NULL);
  return self->path;
}

/* "TASK/FILE", e.g. "piqa/valid.jsonl" */
const char *
bl_mc_set_get_name (BlMcSet *self)
{
  g_return_val_if_fail (BL_IS_MC_SET (self), NULL);
  return self->name;
}

/* sha256 hex of the rows' bytes, followed by the labels file's bytes where one was read */
const char *
bl_mc_set_get_sha256 (BlMcSet *self)
{
  g_return_val_if_fail (BL_IS_MC_SET (self), NULL);
  return self->sha256;
}

guint
bl_mc_set_get_n_items (BlMcSet *self)
{
  g_return_val_if_fail (BL_IS_MC_SET (self), 0);
  return self->items->len;
}

const BlMcItem *
bl_mc_set_get_item (BlMcSet *self,
                    guint    index)
{
  g_return_val_if_fail (BL_IS_MC_SET (self), NULL);
  g_return_val_if_fail (index < self->items->len, NULL);
  return g_ptr_array_index (self->items, index);
}

/**
 * bl_mc_set_get_items:
 * @self: a set
 *
 * Returns: (transfer none) (element-type BlMcItem): the items in file order
 */
GPtrArray *
bl_mc_set_get_items (BlMcSet *self)
{
  g_return_val_if_fail (BL_IS_MC_SET (self), NULL);
  return self->items;
}
