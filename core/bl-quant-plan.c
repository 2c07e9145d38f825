/* bl-quant-plan.c: which layers are quantized how — ordered rules plus defaults
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "bl-quant-plan.h"

#include <math.h>
#include <string.h>

#include "bl-error.h"
#include "bl-json-private.h"
#include "bl-moe.h"
#include "bl-quant-algo.h"

/**
 * SECTION:bl-quant-plan
 * @title: BlQuantPlan
 *
 * A #BlQuantPlan holds the rules of a quantization plan (see bl-quant-plan.h for the
 * semantics and docs/plan-schema.md for the JSON form). Every setter checks what it can
 * without a model — pattern syntax, spec syntax (with bl_format_spec_parse()'s own message),
 * algorithm names and options (bl_quant_algo_validate()) — and stores spec strings in their
 * canonical spelling. bl_quant_plan_validate() and bl_quant_plan_resolve() add the checks
 * that need the model: every rule and skip pattern must decide at least one linear layer.
 * Every message names the rule as `rules[i] (“pattern”)`, `defaults` or `skip[i] (“pattern”)`.
 *
 * #BlQuantPlan::changed is emitted after every change, for editors that show a plan.
 */

struct _BlQuantPlan
{
  GObject parent_instance;

  BlQuantRule defaults;
  GPtrArray *rules;           /* BlQuantRule* */
  GPtrArray *skip;            /* char*, NULL-terminated */
  char *kv_cache;             /* canonical spec, or NULL */
  BlQuantCalibration calibration;
};

G_DEFINE_FINAL_TYPE (BlQuantPlan, bl_quant_plan, G_TYPE_OBJECT)

enum {
  SIGNAL_CHANGED,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

static const char *const projections[] = {
  "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
  "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj",
};

static const BlLayerKind projection_kinds[] = {
  BL_LAYER_ATTN_Q, BL_LAYER_ATTN_K, BL_LAYER_ATTN_V, BL_LAYER_ATTN_O,
  BL_LAYER_MLP_GATE, BL_LAYER_MLP_UP, BL_LAYER_MLP_DOWN,
};

static void
rule_clear (BlQuantRule *r)
{
  g_clear_pointer (&r->pattern, g_free);
  g_clear_pointer (&r->weight, g_free);
  g_clear_pointer (&r->activation, g_free);
  g_clear_pointer (&r->algorithm, g_free);
  g_clear_pointer (&r->options, json_object_unref);
}

static void
rule_free (gpointer data)
{
  BlQuantRule *r = data;

  rule_clear (r);
  g_free (r);
}

static void
rule_copy_into (BlQuantRule       *dst,
                const BlQuantRule *src)
{
  dst->pattern = g_strdup (src->pattern);
  dst->weight = g_strdup (src->weight);
  dst->activation = g_strdup (src->activation);
  dst->algorithm = g_strdup (src->algorithm);
  dst->options = src->options != NULL ? json_object_ref (src->options) : NULL;
}

static void
bl_quant_plan_finalize (GObject *object)
{
  BlQuantPlan *self = BL_QUANT_PLAN (object);

  rule_clear (&self->defaults);
  g_clear_pointer (&self->rules, g_ptr_array_unref);
  g_clear_pointer (&self->skip, g_ptr_array_unref);
  g_clear_pointer (&self->kv_cache, g_free);
  g_clear_pointer (&self->calibration.text, g_free);

  G_OBJECT_CLASS (bl_quant_plan_parent_class)->finalize (object);
}

static void
bl_quant_plan_class_init (BlQuantPlanClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = bl_quant_plan_finalize;

  /**
   * BlQuantPlan::changed:
   * @self: the plan
   *
   * Emitted after any change to the defaults, rules, skip list, KV-cache format or
   * calibration settings.
   */
  signals[SIGNAL_CHANGED] =
    g_signal_new ("changed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 0);
}

static void
bl_quant_plan_init (BlQuantPlan *self)
{
  self->rules = g_ptr_array_new_with_free_func (rule_free);
  self->skip = g_ptr_array_new_null_terminated (0, g_free, TRUE);
}

static void
changed (BlQuantPlan *self)
{
  g_signal_emit (self, signals[SIGNAL_CHANGED], 0);
}

/**
 * bl_quant_plan_new:
 *
 * Returns: (transfer full): an empty plan: no rules, nothing skipped, defaults "none" — every
 *   layer stays in full precision
 */
BlQuantPlan *
bl_quant_plan_new (void)
{
  return g_object_new (BL_TYPE_QUANT_PLAN, NULL);
}

/* ------------------------------------------------------------------------------------------ */
/* checks that need no model */

/* Patterns are globs of g_pattern_match_simple(), which knows only * and ?. Anything outside
 * the characters of tensor names is refused, so that a shell-style class "[0-3]" or a regular
 * expression is reported instead of silently matching nothing. */
static gboolean
check_pattern (const char  *what,
               const char  *pattern,
               GError     **error)
{
  if (pattern == NULL || *pattern == '\0')
    {
      g_set_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT, "%s: the pattern is empty", what);
      return FALSE;
    }
  for (const char *p = pattern; *p != '\0'; p++)
    if (!g_ascii_isalnum (*p) && strchr ("._-*?", *p) == NULL)
      {
        g_set_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT,
                     "%s: the pattern has “%c” at offset %d; patterns are globs over layer "
                     "names with * (any run of characters) and ? (one character) only",
                     what, g_ascii_isprint (*p) ? *p : '?', (int) (p - pattern));
        return FALSE;
      }
  return TRUE;
}

/* Parses an activation spec. A spec that names no granularity is per token: the family's
 * default for weights ("channel" for int, "tensor" for fp) would be a static quantizer, and
 * "int8" on an activation almost always means the dynamic per-token one. */
static gboolean
parse_activation (const char    *str,
                  BlFormatSpec  *spec,
                  GError       **error)
{
  if (!bl_format_spec_parse (str, spec, error))
    return FALSE;
  if ((spec->family == BL_FORMAT_INT || spec->family == BL_FORMAT_FP)
      && !(spec->explicit_mask & BL_SPEC_FIELD_GRANULARITY))
    {
      /* parsed again, so that the defaults that follow from the granularity (the scale
       * type) are the per-token ones */
      g_autofree char *token = g_strconcat (str, ":token", NULL);

      if (!bl_format_spec_parse (token, spec, error))
        return FALSE;
    }
  if (spec->granularity != BL_GRANULARITY_TENSOR && spec->granularity != BL_GRANULARITY_CHANNEL)
    return TRUE;
  if (spec->family != BL_FORMAT_INT && spec->family != BL_FORMAT_FP)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_UNSUPPORTED_FORMAT,
                   "“%s”: static (tensor or channel) activation scales are implemented for the "
                   "int and fp families only; use :token or a group size", str);
      return FALSE;
    }
  if (spec->family == BL_FORMAT_INT && spec->int_convention == BL_INT_Q4_0)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_UNSUPPORTED_FORMAT,
                   "“%s”: the q4_0 convention has no static form; use sym, gptq or asym", str);
      return FALSE;
    }
  if (spec->clip == BL_CLIP_MSE || spec->rounding == BL_ROUND_STOCHASTIC)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_UNSUPPORTED_FORMAT,
                   "“%s”: a static activation scale takes neither clip=mse nor stochastic "
                   "rounding", str);
      return FALSE;
    }
  return TRUE;
}

static gboolean
parse_weight (const char    *str,
              BlFormatSpec  *spec,
              GError       **error)
{
  if (!bl_format_spec_parse (str, spec, error))
    return FALSE;
  if (spec->granularity == BL_GRANULARITY_TOKEN)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT,
                   "“%s”: per-token granularity is for activations; a weight takes :channel, "
                   ":tensor or a group size", str);
      return FALSE;
    }
  return TRUE;
}

static gboolean
parse_kv (const char    *str,
          BlFormatSpec  *spec,
          GError       **error)
{
  if (!parse_activation (str, spec, error))
    return FALSE;
  if (spec->granularity == BL_GRANULARITY_TENSOR || spec->granularity == BL_GRANULARITY_CHANNEL)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_UNSUPPORTED_FORMAT,
                   "“%s”: the KV cache is quantized dynamically; use :token or a group size "
                   "(e.g. :g%d for one scale per head)", str, 64);
      return FALSE;
    }
  return TRUE;
}

typedef gboolean (*ParseFunc) (const char *, BlFormatSpec *, GError **);

/* Canonicalises one spec field: NULL stays NULL (inherit), "none" stays "none", anything
 * else must parse and is stored as bl_format_spec_to_string() prints it. */
static gboolean
canonical_spec (const char  *what,
                const char  *field,
                const char  *str,
                ParseFunc    parse,
                char       **out,
                GError     **error)
{
  BlFormatSpec spec;
  g_autoptr(GError) local = NULL;

  *out = NULL;
  if (str == NULL)
    return TRUE;
  if (g_str_equal (str, BL_QUANT_PLAN_NONE))
    {
      *out = g_strdup (BL_QUANT_PLAN_NONE);
      return TRUE;
    }
  if (!parse (str, &spec, &local))
    {
      g_set_error (error, local->domain, local->code, "%s: %s spec: %s", what, field,
                   local->message);
      return FALSE;
    }
  *out = bl_format_spec_to_string (&spec);
  return TRUE;
}

static gboolean
make_rule (const char   *what,
           const char   *pattern,
           const char   *weight,
           const char   *activation,
           const char   *algorithm,
           JsonObject   *options,
           BlQuantRule  *out,
           GError      **error)
{
  BlQuantRule r = { 0 };
  g_autoptr(GError) local = NULL;

  if (pattern != NULL && !check_pattern (what, pattern, error))
    return FALSE;
  if (!canonical_spec (what, "weight", weight, parse_weight, &r.weight, error))
    goto fail;
  if (!canonical_spec (what, "activation", activation, parse_activation, &r.activation, error))
    goto fail;
  if (algorithm != NULL || options != NULL)
    {
      const char *name = algorithm != NULL ? algorithm : "rtn";

      if (!bl_quant_algo_validate (name, options, &local))
        {
          g_set_error (error, local->domain, local->code, "%s: %s", what, local->message);
          goto fail;
        }
    }
  r.pattern = g_strdup (pattern);
  r.algorithm = g_strdup (algorithm);
  r.options = options != NULL ? json_object_ref (options) : NULL;
  *out = r;
  return TRUE;

fail:
  rule_clear (&r);
  return FALSE;
}

static char *
rule_label (int         index,
            const char *pattern)
{
  return g_strdup_printf ("rules[%d] (“%s”)", index, pattern != NULL ? pattern : "");
}

/* ------------------------------------------------------------------------------------------ */
/* setters and getters */

/**
 * bl_quant_plan_set_defaults:
 * @self: a plan
 * @weight: (nullable): the weight spec of every block linear layer no rule decides, or
 *   "none" / %NULL for full precision
 * @activation: (nullable): the activation spec, or "none" / %NULL for none
 * @algorithm: (nullable): the weight algorithm (%NULL: "rtn")
 * @options: (nullable): the algorithm's options
 * @error: return location for a #GError
 *
 * Returns: %FALSE with @error naming "defaults" and the bad field; the plan is unchanged then
 */
gboolean
bl_quant_plan_set_defaults (BlQuantPlan  *self,
                            const char   *weight,
                            const char   *activation,
                            const char   *algorithm,
                            JsonObject   *options,
                            GError      **error)
{
  BlQuantRule r;

  g_return_val_if_fail (BL_IS_QUANT_PLAN (self), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (!make_rule ("defaults", NULL, weight, activation, algorithm, options, &r, error))
    return FALSE;
  rule_clear (&self->defaults);
  self->defaults = r;
  changed (self);
  return TRUE;
}

/**
 * bl_quant_plan_get_defaults:
 * @self: a plan
 *
 * Returns: (transfer none): the defaults (their @pattern is %NULL)
 */
const BlQuantRule *
bl_quant_plan_get_defaults (BlQuantPlan *self)
{
  g_return_val_if_fail (BL_IS_QUANT_PLAN (self), NULL);
  return &self->defaults;
}

guint
bl_quant_plan_get_n_rules (BlQuantPlan *self)
{
  g_return_val_if_fail (BL_IS_QUANT_PLAN (self), 0);
  return self->rules->len;
}

/**
 * bl_quant_plan_get_rule:
 * @self: a plan
 * @index: below bl_quant_plan_get_n_rules()
 *
 * Returns: (transfer none): the rule
 */
const BlQuantRule *
bl_quant_plan_get_rule (BlQuantPlan *self,
                        guint        index)
{
  g_return_val_if_fail (BL_IS_QUANT_PLAN (self), NULL);
  g_return_val_if_fail (index < self->rules->len, NULL);
  return g_ptr_array_index (self->rules, index);
}

/**
 * bl_quant_plan_insert_rule:
 * @self: a plan
 * @index: where the rule goes, 0…n, or -1 to append it
 * @pattern: the layer glob
 * @weight: (nullable): weight spec, "none", or %NULL to inherit the default
 * @activation: (nullable): activation spec, "none", or %NULL to inherit
 * @algorithm: (nullable): algorithm, or %NULL to inherit
 * @options: (nullable): the algorithm's options, or %NULL to inherit
 * @error: return location for a #GError
 *
 * Inserts a rule. Rules are tried in order and the first whose pattern matches a layer
 * decides it, so a specific rule must come before a general one.
 *
 * Returns: %FALSE with @error naming the rule (by the index it would have had) and the bad
 *   field; the plan is unchanged then
 */
gboolean
bl_quant_plan_insert_rule (BlQuantPlan  *self,
                           int           index,
                           const char   *pattern,
                           const char   *weight,
                           const char   *activation,
                           const char   *algorithm,
                           JsonObject   *options,
                           GError      **error)
{
  g_autofree char *what = NULL;
  BlQuantRule *r;

  g_return_val_if_fail (BL_IS_QUANT_PLAN (self), FALSE);
  g_return_val_if_fail (index >= -1 && index <= (int) self->rules->len, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (index < 0)
    index = self->rules->len;
  what = rule_label (index, pattern);
  r = g_new0 (BlQuantRule, 1);
  if (!make_rule (what, pattern != NULL ? pattern : "", weight, activation, algorithm, options,
                  r, error))
    {
      g_free (r);
      return FALSE;
    }
  g_ptr_array_insert (self->rules, index, r);
  changed (self);
  return TRUE;
}

void
bl_quant_plan_remove_rule (BlQuantPlan *self,
                           guint        index)
{
  g_return_if_fail (BL_IS_QUANT_PLAN (self));
  g_return_if_fail (index < self->rules->len);

  g_ptr_array_remove_index (self->rules, index);
  changed (self);
}

void
bl_quant_plan_clear_rules (BlQuantPlan *self)
{
  g_return_if_fail (BL_IS_QUANT_PLAN (self));

  g_ptr_array_set_size (self->rules, 0);
  changed (self);
}

/**
 * bl_quant_plan_get_skip:
 * @self: a plan
 *
 * Returns: (transfer none) (array zero-terminated=1): the skip patterns
 */
const char *const *
bl_quant_plan_get_skip (BlQuantPlan *self)
{
  static const char *const none[] = { NULL };

  g_return_val_if_fail (BL_IS_QUANT_PLAN (self), NULL);
  /* an empty NULL-terminated GPtrArray may have no storage yet */
  return self->skip->pdata != NULL ? (const char *const *) self->skip->pdata : none;
}

/**
 * bl_quant_plan_add_skip:
 * @self: a plan
 * @pattern: a glob of layers to keep in full precision
 * @error: return location for a #GError
 *
 * Returns: %FALSE with @error naming the pattern when it is malformed
 */
gboolean
bl_quant_plan_add_skip (BlQuantPlan  *self,
                        const char   *pattern,
                        GError      **error)
{
  g_autofree char *what = NULL;

  g_return_val_if_fail (BL_IS_QUANT_PLAN (self), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  what = g_strdup_printf ("skip[%u] (“%s”)", self->skip->len, pattern ? pattern : "");
  if (!check_pattern (what, pattern, error))
    return FALSE;
  g_ptr_array_add (self->skip, g_strdup (pattern));
  changed (self);
  return TRUE;
}

void
bl_quant_plan_clear_skip (BlQuantPlan *self)
{
  g_return_if_fail (BL_IS_QUANT_PLAN (self));

  g_ptr_array_set_size (self->skip, 0);
  changed (self);
}

/**
 * bl_quant_plan_get_kv_cache:
 * @self: a plan
 *
 * Returns: (nullable): the canonical KV-cache spec, or %NULL when the cache is not quantized
 */
const char *
bl_quant_plan_get_kv_cache (BlQuantPlan *self)
{
  g_return_val_if_fail (BL_IS_QUANT_PLAN (self), NULL);
  return self->kv_cache;
}

/**
 * bl_quant_plan_set_kv_cache:
 * @self: a plan
 * @spec: (nullable): a dynamic spec (`:token` or a group size) for the keys and values, or
 *   %NULL / "none" to leave the cache in full precision
 * @error: return location for a #GError
 *
 * Returns: %FALSE with @error when @spec does not parse or is static
 */
gboolean
bl_quant_plan_set_kv_cache (BlQuantPlan  *self,
                            const char   *spec,
                            GError      **error)
{
  g_autofree char *canonical = NULL;

  g_return_val_if_fail (BL_IS_QUANT_PLAN (self), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (!canonical_spec ("kv_cache", "KV-cache", spec, parse_kv, &canonical, error))
    return FALSE;
  if (canonical != NULL && g_str_equal (canonical, BL_QUANT_PLAN_NONE))
    g_clear_pointer (&canonical, g_free);
  g_free (self->kv_cache);
  self->kv_cache = g_steal_pointer (&canonical);
  changed (self);
  return TRUE;
}

/**
 * bl_quant_plan_get_calibration:
 * @self: a plan
 *
 * Returns: (transfer none): the calibration settings (zeros: the documented defaults)
 */
const BlQuantCalibration *
bl_quant_plan_get_calibration (BlQuantPlan *self)
{
  g_return_val_if_fail (BL_IS_QUANT_PLAN (self), NULL);
  return &self->calibration;
}

/**
 * bl_quant_plan_set_calibration:
 * @self: a plan
 * @calibration: the settings, copied
 */
void
bl_quant_plan_set_calibration (BlQuantPlan              *self,
                               const BlQuantCalibration *calibration)
{
  g_return_if_fail (BL_IS_QUANT_PLAN (self));
  g_return_if_fail (calibration != NULL);
  g_return_if_fail (calibration->n_windows >= 0 && calibration->ctx >= 0);

  g_free (self->calibration.text);
  self->calibration = *calibration;
  self->calibration.text = g_strdup (calibration->text);
  changed (self);
}

/**
 * bl_quant_plan_copy:
 * @self: a plan
 *
 * Returns: (transfer full): an independent copy (options objects are shared, read-only)
 */
BlQuantPlan *
bl_quant_plan_copy (BlQuantPlan *self)
{
  BlQuantPlan *copy;

  g_return_val_if_fail (BL_IS_QUANT_PLAN (self), NULL);

  copy = bl_quant_plan_new ();
  rule_copy_into (&copy->defaults, &self->defaults);
  for (guint i = 0; i < self->rules->len; i++)
    {
      BlQuantRule *r = g_new0 (BlQuantRule, 1);

      rule_copy_into (r, g_ptr_array_index (self->rules, i));
      g_ptr_array_add (copy->rules, r);
    }
  for (guint i = 0; i < self->skip->len; i++)
    g_ptr_array_add (copy->skip, g_strdup (g_ptr_array_index (self->skip, i)));
  copy->kv_cache = g_strdup (self->kv_cache);
  copy->calibration = self->calibration;
  copy->calibration.text = g_strdup (self->calibration.text);
  return copy;
}

/**
 * bl_quant_plan_new_from_shorthand:
 * @weight: (nullable): the weight spec of every block linear layer (`--w`), or %NULL / "none"
 * @activation: (nullable): the activation spec (`--a`), or %NULL / "none"
 * @algorithm: (nullable): the algorithm (`--algorithm`, %NULL: "rtn")
 * @skip: (nullable) (array zero-terminated=1): globs of layers to keep in full precision
 *   (`--skip`, repeatable)
 * @error: return location for a #GError
 *
 * The plan the CLI shorthands describe: defaults only, no rules. As with any plan the
 * defaults leave the lm_head in full precision; a plan file with a rule for "lm_head.weight"
 * is how to quantize it.
 *
 * Returns: (transfer full) (nullable): the plan, or %NULL with @error set
 */
BlQuantPlan *
bl_quant_plan_new_from_shorthand (const char         *weight,
                                  const char         *activation,
                                  const char         *algorithm,
                                  const char *const  *skip,
                                  GError            **error)
{
  g_autoptr(BlQuantPlan) plan = bl_quant_plan_new ();

  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (!bl_quant_plan_set_defaults (plan, weight, activation, algorithm, NULL, error))
    return NULL;
  for (guint i = 0; skip != NULL && skip[i] != NULL; i++)
    if (!bl_quant_plan_add_skip (plan, skip[i], error))
      return NULL;
  return g_steal_pointer (&plan);
}

/* ------------------------------------------------------------------------------------------ */
/* JSON */

static gboolean
check_members (JsonObject         *obj,
               const char         *what,
               const char *const  *known,
               GError            **error)
{
  g_autoptr(GList) members = json_object_get_members (obj);

  for (GList *l = members; l != NULL; l = l->next)
    if (!g_strv_contains (known, l->data))
      {
        g_autofree char *list = g_strjoinv (", ", (char **) known);

        g_set_error (error, BL_ERROR, BL_ERROR_CORRUPT_FILE,
                     "%s: unknown member “%s” (known: %s)", what, (const char *) l->data, list);
        return FALSE;
      }
  return TRUE;
}

/* Reads an optional string member: absent → NULL, null → "none" for specs, a string → it. */
static gboolean
get_string_member (JsonObject   *obj,
                   const char   *what,
                   const char   *name,
                   gboolean      null_is_none,
                   const char  **out,
                   GError      **error)
{
  JsonNode *node = json_object_get_member (obj, name);

  *out = NULL;
  if (node == NULL)
    return TRUE;
  if (JSON_NODE_HOLDS_NULL (node) && null_is_none)
    {
      *out = BL_QUANT_PLAN_NONE;
      return TRUE;
    }
  if (!JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_STRING)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_CORRUPT_FILE, "%s: “%s” must be a string, not %s",
                   what, name, bl_json_node_describe (node));
      return FALSE;
    }
  *out = json_node_get_string (node);
  return TRUE;
}

static gboolean
rule_from_json (BlQuantPlan  *self,
                JsonNode     *node,
                const char   *what,
                gboolean      is_defaults,
                int           index,
                GError      **error)
{
  static const char *const rule_keys[] = { "pattern", "weight", "activation", "algorithm",
                                           "options", NULL };
  static const char *const default_keys[] = { "weight", "activation", "algorithm", "options",
                                              NULL };
  g_autofree char *label = NULL;
  JsonObject *obj;
  JsonNode *options_node;
  JsonObject *options = NULL;
  const char *pattern = NULL, *weight, *activation, *algorithm;

  if (!JSON_NODE_HOLDS_OBJECT (node))
    {
      g_set_error (error, BL_ERROR, BL_ERROR_CORRUPT_FILE, "%s must be an object, not %s",
                   what, bl_json_node_describe (node));
      return FALSE;
    }
  obj = json_node_get_object (node);
  if (!is_defaults)
    {
      if (!get_string_member (obj, what, "pattern", FALSE, &pattern, error))
        return FALSE;
      if (pattern == NULL)
        {
          g_set_error (error, BL_ERROR, BL_ERROR_CORRUPT_FILE, "%s has no “pattern”", what);
          return FALSE;
        }
      label = rule_label (index, pattern);
    }
  else
    label = g_strdup (what);

  if (!check_members (obj, label, is_defaults ? default_keys : rule_keys, error) ||
      !get_string_member (obj, label, "weight", TRUE, &weight, error) ||
      !get_string_member (obj, label, "activation", TRUE, &activation, error) ||
      !get_string_member (obj, label, "algorithm", FALSE, &algorithm, error))
    return FALSE;

  options_node = json_object_get_member (obj, "options");
  if (options_node != NULL && !JSON_NODE_HOLDS_NULL (options_node))
    {
      if (!JSON_NODE_HOLDS_OBJECT (options_node))
        {
          g_set_error (error, BL_ERROR, BL_ERROR_CORRUPT_FILE,
                       "%s: “options” must be an object, not %s", label,
                       bl_json_node_describe (options_node));
          return FALSE;
        }
      options = json_node_get_object (options_node);
    }

  if (is_defaults)
    return bl_quant_plan_set_defaults (self, weight, activation, algorithm, options, error);
  return bl_quant_plan_insert_rule (self, -1, pattern, weight, activation, algorithm, options,
                                    error);
}

static gboolean
calibration_from_json (BlQuantPlan  *self,
                       JsonNode     *node,
                       GError      **error)
{
  static const char *const keys[] = { "text", "windows", "ctx", "seed", NULL };
  static const char *const ints[] = { "windows", "ctx", "seed" };
  BlQuantCalibration c = { 0 };
  gint64 values[G_N_ELEMENTS (ints)] = { 0 };
  const char *text;
  JsonObject *obj;

  if (!JSON_NODE_HOLDS_OBJECT (node))
    {
      g_set_error (error, BL_ERROR, BL_ERROR_CORRUPT_FILE,
                   "calibration must be an object, not %s", bl_json_node_describe (node));
      return FALSE;
    }
  obj = json_node_get_object (node);
  if (!check_members (obj, "calibration", keys, error) ||
      !get_string_member (obj, "calibration", "text", FALSE, &text, error))
    return FALSE;
  for (guint i = 0; i < G_N_ELEMENTS (ints); i++)
    {
      JsonNode *n = json_object_get_member (obj, ints[i]);

      if (n == NULL)
        continue;
      if (!bl_json_node_get_int (n, &values[i]) || values[i] < 0
          || (i < 2 && values[i] > G_MAXINT))
        {
          g_set_error (error, BL_ERROR, BL_ERROR_CORRUPT_FILE,
                       "calibration: “%s” must be a non-negative integer, not %s", ints[i],
                       bl_json_node_describe (n));
          return FALSE;
        }
    }
  c.text = (char *) text;
  c.n_windows = (int) values[0];
  c.ctx = (int) values[1];
  c.seed = (guint64) values[2];
  bl_quant_plan_set_calibration (self, &c);
  return TRUE;
}

/**
 * bl_quant_plan_new_from_json:
 * @json: the JSON text (docs/plan-schema.md)
 * @length: its length, or -1 when NUL-terminated
 * @source: a name for messages (the file name)
 * @error: return location for a #GError
 *
 * Parses a plan strictly: unknown members, wrong types, a missing or too new "version",
 * malformed patterns, bad specs and unknown algorithms or options are errors that name the
 * rule.
 *
 * Returns: (transfer full) (nullable): the plan, or %NULL with @error set
 */
BlQuantPlan *
bl_quant_plan_new_from_json (const char  *json,
                             gssize       length,
                             const char  *source,
                             GError     **error)
{
  static const char *const keys[] = { "version", "defaults", "rules", "skip", "kv_cache",
                                      "calibration", NULL };
  g_autoptr(BlQuantPlan) plan = bl_quant_plan_new ();
  g_autoptr(JsonNode) root = NULL;
  g_autoptr(GError) local = NULL;
  JsonObject *obj;
  JsonNode *node;
  gint64 version;
  const char *kv;

  g_return_val_if_fail (json != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (source == NULL)
    source = "plan";
  root = bl_json_parse_object (json, length < 0 ? strlen (json) : (gsize) length, source, error);
  if (root == NULL)
    return NULL;
  obj = json_node_get_object (root);

  node = json_object_get_member (obj, "version");
  if (node == NULL || !bl_json_node_get_int (node, &version) || version < 1)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_CORRUPT_FILE,
                   "%s: a plan needs an integer “version” ≥ 1 (this Bitlens writes %d)",
                   source, BL_QUANT_PLAN_VERSION);
      return NULL;
    }
  if (version > BL_QUANT_PLAN_VERSION)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_UNSUPPORTED_FORMAT,
                   "%s: plan version %" G_GINT64_FORMAT " is newer than this Bitlens reads (%d)",
                   source, version, BL_QUANT_PLAN_VERSION);
      return NULL;
    }
  if (!check_members (obj, source, keys, &local))
    goto fail;

  if ((node = json_object_get_member (obj, "defaults")) != NULL
      && !rule_from_json (plan, node, "defaults", TRUE, -1, &local))
    goto fail;

  if ((node = json_object_get_member (obj, "rules")) != NULL)
    {
      JsonArray *rules;

      if (!JSON_NODE_HOLDS_ARRAY (node))
        {
          g_set_error (&local, BL_ERROR, BL_ERROR_CORRUPT_FILE,
                       "“rules” must be an array, not %s", bl_json_node_describe (node));
          goto fail;
        }
      rules = json_node_get_array (node);
      for (guint i = 0; i < json_array_get_length (rules); i++)
        {
          g_autofree char *what = g_strdup_printf ("rules[%u]", i);

          if (!rule_from_json (plan, json_array_get_element (rules, i), what, FALSE, i, &local))
            goto fail;
        }
    }

  if ((node = json_object_get_member (obj, "skip")) != NULL)
    {
      JsonArray *skip;

      if (!JSON_NODE_HOLDS_ARRAY (node))
        {
          g_set_error (&local, BL_ERROR, BL_ERROR_CORRUPT_FILE,
                       "“skip” must be an array of patterns, not %s", bl_json_node_describe (node));
          goto fail;
        }
      skip = json_node_get_array (node);
      for (guint i = 0; i < json_array_get_length (skip); i++)
        {
          JsonNode *e = json_array_get_element (skip, i);

          if (!JSON_NODE_HOLDS_VALUE (e) || json_node_get_value_type (e) != G_TYPE_STRING)
            {
              g_set_error (&local, BL_ERROR, BL_ERROR_CORRUPT_FILE,
                           "skip[%u] must be a string, not %s", i, bl_json_node_describe (e));
              goto fail;
            }
          if (!bl_quant_plan_add_skip (plan, json_node_get_string (e), &local))
            goto fail;
        }
    }

  if (!get_string_member (obj, "kv_cache", "kv_cache", TRUE, &kv, &local) ||
      !bl_quant_plan_set_kv_cache (plan, kv, &local))
    goto fail;

  if ((node = json_object_get_member (obj, "calibration")) != NULL
      && !calibration_from_json (plan, node, &local))
    goto fail;

  return g_steal_pointer (&plan);

fail:
  g_set_error (error, local->domain, local->code, "%s: %s", source, local->message);
  return NULL;
}

/**
 * bl_quant_plan_load:
 * @path: a plan file
 * @error: return location for a #GError
 *
 * Returns: (transfer full) (nullable): the plan, or %NULL with @error (a %G_IO_ERROR when the
 *   file cannot be read, a %BL_ERROR naming the file and the rule otherwise)
 */
BlQuantPlan *
bl_quant_plan_load (const char  *path,
                    GError     **error)
{
  g_autofree char *data = NULL;
  gsize len;

  g_return_val_if_fail (path != NULL, NULL);

  if (!g_file_get_contents (path, &data, &len, error))
    return NULL;
  return bl_quant_plan_new_from_json (data, len, path, error);
}

static void
add_spec_member (JsonBuilder *b,
                 const char  *name,
                 const char  *value)
{
  if (value == NULL)
    return;
  json_builder_set_member_name (b, name);
  json_builder_add_string_value (b, value);
}

static void
add_rule (JsonBuilder       *b,
          const BlQuantRule *r)
{
  json_builder_begin_object (b);
  add_spec_member (b, "pattern", r->pattern);
  add_spec_member (b, "weight", r->weight);
  add_spec_member (b, "activation", r->activation);
  add_spec_member (b, "algorithm", r->algorithm);
  if (r->options != NULL)
    {
      JsonNode *node = json_node_new (JSON_NODE_OBJECT);

      json_node_set_object (node, r->options);
      json_builder_set_member_name (b, "options");
      json_builder_add_value (b, node);
    }
  json_builder_end_object (b);
}

/**
 * bl_quant_plan_to_json:
 * @self: a plan
 *
 * Serialises the plan (docs/plan-schema.md). Spec strings are canonical, members that
 * inherit are left out, so bl_quant_plan_new_from_json() of the text gives an equal plan and
 * printing that again gives the same text.
 *
 * Returns: (transfer full): pretty-printed JSON
 */
char *
bl_quant_plan_to_json (BlQuantPlan *self)
{
  g_autoptr(JsonBuilder) b = json_builder_new ();
  g_autoptr(JsonGenerator) gen = json_generator_new ();
  g_autoptr(JsonNode) root = NULL;
  const BlQuantCalibration *c = &self->calibration;

  g_return_val_if_fail (BL_IS_QUANT_PLAN (self), NULL);

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "version");
  json_builder_add_int_value (b, BL_QUANT_PLAN_VERSION);
  json_builder_set_member_name (b, "defaults");
  add_rule (b, &self->defaults);
  json_builder_set_member_name (b, "rules");
  json_builder_begin_array (b);
  for (guint i = 0; i < self->rules->len; i++)
    add_rule (b, g_ptr_array_index (self->rules, i));
  json_builder_end_array (b);
  json_builder_set_member_name (b, "skip");
  json_builder_begin_array (b);
  for (guint i = 0; i < self->skip->len; i++)
    json_builder_add_string_value (b, g_ptr_array_index (self->skip, i));
  json_builder_end_array (b);
  add_spec_member (b, "kv_cache", self->kv_cache);
  if (c->text != NULL || c->n_windows != 0 || c->ctx != 0 || c->seed != 0)
    {
      json_builder_set_member_name (b, "calibration");
      json_builder_begin_object (b);
      add_spec_member (b, "text", c->text);
      json_builder_set_member_name (b, "windows");
      json_builder_add_int_value (b, c->n_windows);
      json_builder_set_member_name (b, "ctx");
      json_builder_add_int_value (b, c->ctx);
      /* the guint64 seed as the int64 with the same bits, as the store keeps it */
      json_builder_set_member_name (b, "seed");
      json_builder_add_int_value (b, (gint64) c->seed);
      json_builder_end_object (b);
    }
  json_builder_end_object (b);

  root = json_builder_get_root (b);
  json_generator_set_root (gen, root);
  json_generator_set_pretty (gen, TRUE);
  return json_generator_to_data (gen, NULL);
}

/**
 * bl_quant_plan_save:
 * @self: a plan
 * @path: the file to write (replaced atomically)
 * @error: return location for a #GError
 *
 * Returns: %TRUE when written
 */
gboolean
bl_quant_plan_save (BlQuantPlan  *self,
                    const char   *path,
                    GError      **error)
{
  g_autofree char *json = NULL;
  g_autofree char *text = NULL;

  g_return_val_if_fail (BL_IS_QUANT_PLAN (self), FALSE);
  g_return_val_if_fail (path != NULL, FALSE);

  json = bl_quant_plan_to_json (self);
  text = g_strconcat (json, "\n", NULL);
  return g_file_set_contents (path, text, -1, error);
}

/* ------------------------------------------------------------------------------------------ */
/* resolution against a model */

G_DEFINE_BOXED_TYPE (BlLayerAssignment, bl_layer_assignment, bl_layer_assignment_copy,
                     bl_layer_assignment_free)

/**
 * bl_layer_assignment_copy:
 * @a: an assignment
 *
 * Returns: (transfer full): a deep copy (the options object is shared, read-only)
 */
BlLayerAssignment *
bl_layer_assignment_copy (const BlLayerAssignment *a)
{
  BlLayerAssignment *copy;

  g_return_val_if_fail (a != NULL, NULL);

  copy = g_memdup2 (a, sizeof *a);
  copy->layer = g_strdup (a->layer);
  copy->weight_spec = g_strdup (a->weight_spec);
  copy->activation_spec = g_strdup (a->activation_spec);
  copy->algorithm = g_strdup (a->algorithm);
  copy->options = a->options != NULL ? json_object_ref (a->options) : NULL;
  return copy;
}

void
bl_layer_assignment_free (BlLayerAssignment *a)
{
  if (a == NULL)
    return;
  g_free (a->layer);
  g_free (a->weight_spec);
  g_free (a->activation_spec);
  g_free (a->algorithm);
  g_clear_pointer (&a->options, json_object_unref);
  g_free (a);
}

static gboolean
options_equal (JsonObject *a,
               JsonObject *b)
{
  g_autoptr(JsonNode) na = NULL;
  g_autoptr(JsonNode) nb = NULL;

  if (a == NULL || b == NULL)
    return (a == NULL || json_object_get_size (a) == 0) && (b == NULL || json_object_get_size (b) == 0);
  na = json_node_init_object (json_node_alloc (), a);
  nb = json_node_init_object (json_node_alloc (), b);
  return json_node_equal (na, nb);
}

/**
 * bl_layer_assignment_weight_equal:
 * @a: an assignment
 * @b: another, of the same layer
 *
 * Returns: %TRUE when both leave the weight alone, or quantize it to the same format with the
 *   same algorithm and options
 */
gboolean
bl_layer_assignment_weight_equal (const BlLayerAssignment *a,
                                  const BlLayerAssignment *b)
{
  g_return_val_if_fail (a != NULL && b != NULL, FALSE);

  if (a->has_weight != b->has_weight)
    return FALSE;
  if (!a->has_weight)
    return TRUE;
  return bl_format_spec_equal (&a->weight, &b->weight)
         && g_strcmp0 (a->algorithm, b->algorithm) == 0
         && options_equal (a->options, b->options);
}

/**
 * bl_layer_assignment_activation_equal:
 * @a: an assignment
 * @b: another, of the same layer
 *
 * Returns: %TRUE when both leave the input alone or quantize it to the same format
 */
gboolean
bl_layer_assignment_activation_equal (const BlLayerAssignment *a,
                                      const BlLayerAssignment *b)
{
  g_return_val_if_fail (a != NULL && b != NULL, FALSE);

  if (a->has_activation != b->has_activation)
    return FALSE;
  return !a->has_activation || bl_format_spec_equal (&a->activation, &b->activation);
}

typedef struct
{
  char *name;
  BlLayerKind kind;
  int block;
  gint64 rows;
  gint64 cols;
  double stored_bits;
} LinearInfo;

static void
linear_info_clear (gpointer data)
{
  g_free (((LinearInfo *) data)->name);
}

/* Appends the two-dimensional tensor @name as a linear layer; takes @name. */
static gboolean
append_linear (BlModel      *model,
               GArray       *out,
               char         *name,
               BlLayerKind   kind,
               int           block,
               GError      **error)
{
  LinearInfo info = { name, kind, block, 0, 0, 0.0 };
  const BlTensor *t = bl_model_get_tensor (model, name);

  if (t == NULL || t->n_dims != 2)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_NOT_FOUND,
                   "Model %s has no two-dimensional tensor “%s”",
                   bl_model_get_path (model), name);
      g_free (name);
      return FALSE;
    }
  info.rows = t->shape[0];
  info.cols = t->shape[1];
  info.stored_bits = 8.0 * bl_dtype_size (t->dtype);
  g_array_append_val (out, info);
  return TRUE;
}

/* The linear layers in the engine's order and naming (bl-engine.c): the seven projections of
 * every block, then "lm_head.weight". In a mixture of experts (bl-moe.h) the block's MLP
 * projections are those of every routed expert, then of the shared expert; the routers stay
 * outside the plan, in full precision. */
static GArray *
list_linear_layers (BlModel  *model,
                    GError  **error)
{
  const BlModelConfig *c = bl_model_get_config (model);
  BlMoeStyle style = bl_moe_config_style (c);
  static const BlMoeRole roles[] = { BL_MOE_ROLE_GATE, BL_MOE_ROLE_UP, BL_MOE_ROLE_DOWN };
  g_autoptr(GArray) out = g_array_new (FALSE, TRUE, sizeof (LinearInfo));

  g_array_set_clear_func (out, linear_info_clear);
  for (int b = 0; b < c->n_layers; b++)
    {
      int n_sets = c->n_experts + (c->shared_expert_intermediate_size > 0 ? 1 : 0);

      for (guint p = 0; p < G_N_ELEMENTS (projections); p++)
        if ((style == BL_MOE_STYLE_NONE || projection_kinds[p] < BL_LAYER_MLP_GATE) &&
            !append_linear (model, out,
                            g_strdup_printf ("model.layers.%d.%s.weight", b, projections[p]),
                            projection_kinds[p], b, error))
          return NULL;
      for (int e = 0; style != BL_MOE_STYLE_NONE && e < n_sets; e++)
        for (guint r = 0; r < G_N_ELEMENTS (roles); r++)
          if (!append_linear (model, out,
                              bl_moe_tensor_name (style, b, e < c->n_experts ? e
                                                                            : BL_MOE_SHARED_EXPERT,
                                                  roles[r]),
                              projection_kinds[4 + r], b, error))
            return NULL;
    }

  {
    LinearInfo info = { 0 };
    const BlTensor *t = bl_model_get_tensor (model, "lm_head.weight");

    if (t == NULL || t->n_dims != 2)
      {
        g_set_error (error, BL_ERROR, BL_ERROR_NOT_FOUND,
                     "Model %s has no two-dimensional output projection “lm_head.weight”",
                     bl_model_get_path (model));
        return NULL;
      }
    info.name = g_strdup ("lm_head.weight");
    info.kind = BL_LAYER_LM_HEAD;
    info.block = -1;
    info.rows = t->shape[0];
    info.cols = t->shape[1];
    info.stored_bits = 8.0 * bl_dtype_size (t->dtype);
    g_array_append_val (out, info);
  }
  return g_steal_pointer (&out);
}

static const char *
pick (const char *field,
      const char *fallback)
{
  return field != NULL ? field : fallback;
}

static gboolean
fill_assignment (BlLayerAssignment  *a,
                 const BlQuantRule  *rule,
                 const BlQuantRule  *defaults,
                 GError            **error)
{
  const char *weight = pick (rule->weight, defaults->weight);
  const char *activation = pick (rule->activation, defaults->activation);
  JsonObject *options = rule->options != NULL ? rule->options : defaults->options;

  if (weight != NULL && !g_str_equal (weight, BL_QUANT_PLAN_NONE))
    {
      if (!parse_weight (weight, &a->weight, error))
        return FALSE;
      a->has_weight = TRUE;
      a->weight_spec = bl_format_spec_to_string (&a->weight);
      a->algorithm = g_strdup (pick (pick (rule->algorithm, defaults->algorithm), "rtn"));
      a->options = options != NULL ? json_object_ref (options) : NULL;
      /* The algorithm and options were checked one by one; a rule that names only options
       * inherits the default algorithm, so check the pair that will run. */
      if (!bl_quant_algo_validate (a->algorithm, a->options, error))
        return FALSE;
      a->bits_per_weight = bl_format_spec_bits_for_shape (&a->weight, a->rows, a->cols);
    }
  if (activation != NULL && !g_str_equal (activation, BL_QUANT_PLAN_NONE))
    {
      if (!parse_activation (activation, &a->activation, error))
        return FALSE;
      a->has_activation = TRUE;
      a->activation_spec = bl_format_spec_to_string (&a->activation);
    }
  return TRUE;
}

/**
 * bl_quant_plan_resolve:
 * @self: a plan
 * @model: the model to apply it to
 * @error: return location for a #GError
 *
 * Decides every linear layer of @model (in the engine's order: block by block q, k, v, o,
 * gate, up, down, then the lm_head): the first skip pattern that matches keeps it in full
 * precision; otherwise the first matching rule decides it, its missing fields taken from the
 * defaults; otherwise a block projection takes the defaults and the lm_head stays in full
 * precision. A rule or skip pattern that matches no linear layer of @model, and a rule every
 * one of whose layers an earlier rule or a skip pattern already decided, is an error that
 * names it.
 *
 * Returns: (transfer full) (element-type BlLayerAssignment): one assignment per linear layer,
 *   or %NULL with @error set
 */
GPtrArray *
bl_quant_plan_resolve (BlQuantPlan  *self,
                       BlModel      *model,
                       GError      **error)
{
  g_autoptr(GArray) layers = NULL;
  g_autoptr(GPtrArray) out = NULL;
  g_autofree guint *rule_hits = NULL;
  g_autofree guint *rule_matches = NULL;
  g_autofree guint *skip_hits = NULL;

  g_return_val_if_fail (BL_IS_QUANT_PLAN (self), NULL);
  g_return_val_if_fail (BL_IS_MODEL (model), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  layers = list_linear_layers (model, error);
  if (layers == NULL)
    return NULL;

  out = g_ptr_array_new_with_free_func ((GDestroyNotify) bl_layer_assignment_free);
  rule_hits = g_new0 (guint, self->rules->len + 1);
  rule_matches = g_new0 (guint, self->rules->len + 1);
  skip_hits = g_new0 (guint, self->skip->len + 1);

  for (guint i = 0; i < layers->len; i++)
    {
      const LinearInfo *info = &g_array_index (layers, LinearInfo, i);
      g_autoptr(BlLayerAssignment) a = g_new0 (BlLayerAssignment, 1);
      g_autofree char *what = NULL;
      const BlQuantRule *rule = NULL;

      a->layer = g_strdup (info->name);
      a->kind = info->kind;
      a->block = info->block;
      a->rows = info->rows;
      a->cols = info->cols;
      a->n_params = info->rows * info->cols;
      a->stored_bits = info->stored_bits;
      a->bits_per_weight = info->stored_bits;
      a->rule = -2;
      a->skip = -1;

      for (guint s = 0; s < self->skip->len && a->skip < 0; s++)
        if (g_pattern_match_simple (g_ptr_array_index (self->skip, s), info->name))
          {
            a->skip = s;
            skip_hits[s]++;
          }
      for (guint r = 0; r < self->rules->len; r++)
        if (g_pattern_match_simple (((BlQuantRule *) g_ptr_array_index (self->rules, r))->pattern,
                                    info->name))
          {
            rule_matches[r]++;
            if (rule == NULL && a->skip < 0)
              {
                rule = g_ptr_array_index (self->rules, r);
                a->rule = r;
                rule_hits[r]++;
              }
          }
      if (rule == NULL && a->skip < 0 && info->kind != BL_LAYER_LM_HEAD)
        {
          rule = &self->defaults;
          a->rule = -1;
        }
      if (rule != NULL)
        {
          what = a->rule >= 0 ? rule_label (a->rule, rule->pattern) : g_strdup ("defaults");
          if (!fill_assignment (a, rule, &self->defaults, error))
            {
              g_prefix_error (error, "%s, layer %s: ", what, info->name);
              return NULL;
            }
        }
      g_ptr_array_add (out, g_steal_pointer (&a));
    }

  for (guint r = 0; r < self->rules->len; r++)
    {
      const BlQuantRule *rule = g_ptr_array_index (self->rules, r);

      if (rule_hits[r] > 0)
        continue;
      if (rule_matches[r] == 0)
        g_set_error (error, BL_ERROR, BL_ERROR_NOT_FOUND,
                     "rules[%u] (“%s”) matches no linear layer of %s (names look like "
                     "“model.layers.0.self_attn.q_proj.weight” and “lm_head.weight”)",
                     r, rule->pattern, bl_model_get_path (model));
      else
        g_set_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT,
                     "rules[%u] (“%s”) decides no layer: each of the %u it matches is taken "
                     "by an earlier rule or a skip pattern (the first matching rule wins)",
                     r, rule->pattern, rule_matches[r]);
      return NULL;
    }
  for (guint s = 0; s < self->skip->len; s++)
    if (skip_hits[s] == 0)
      {
        g_set_error (error, BL_ERROR, BL_ERROR_NOT_FOUND,
                     "skip[%u] (“%s”) matches no linear layer of %s", s,
                     (const char *) g_ptr_array_index (self->skip, s), bl_model_get_path (model));
        return NULL;
      }

  return g_steal_pointer (&out);
}

/**
 * bl_quant_plan_validate:
 * @self: a plan
 * @model: (nullable): the model it is for, or %NULL to check only what needs no model
 * @error: return location for a #GError
 *
 * Checks the whole plan. Without a model this re-checks the combinations the setters could
 * not see (a rule that names options but inherits the algorithm); with one it also resolves
 * the plan (bl_quant_plan_resolve()).
 *
 * Returns: %TRUE when the plan can be applied; otherwise %FALSE with @error naming the rule
 */
gboolean
bl_quant_plan_validate (BlQuantPlan  *self,
                        BlModel      *model,
                        GError      **error)
{
  g_autoptr(GPtrArray) resolved = NULL;

  g_return_val_if_fail (BL_IS_QUANT_PLAN (self), FALSE);
  g_return_val_if_fail (model == NULL || BL_IS_MODEL (model), FALSE);

  for (guint r = 0; r < self->rules->len; r++)
    {
      const BlQuantRule *rule = g_ptr_array_index (self->rules, r);
      const char *algorithm = pick (pick (rule->algorithm, self->defaults.algorithm), "rtn");
      JsonObject *options = rule->options != NULL ? rule->options : self->defaults.options;

      if (!bl_quant_algo_validate (algorithm, options, error))
        {
          g_prefix_error (error, "rules[%u] (“%s”): ", r, rule->pattern);
          return FALSE;
        }
    }
  if (model == NULL)
    return TRUE;
  resolved = bl_quant_plan_resolve (self, model, error);
  return resolved != NULL;
}

/**
 * bl_quant_plan_diff:
 * @before: (element-type BlLayerAssignment): a resolved plan
 * @after: (element-type BlLayerAssignment): another, resolved against the same model
 *
 * Returns: (transfer full) (element-type BlLayerDiff): the layers whose assignment differs,
 *   in @after's order, each with what changed; it points into @before and @after
 */
GPtrArray *
bl_quant_plan_diff (GPtrArray *before,
                    GPtrArray *after)
{
  g_autoptr(GHashTable) by_name = g_hash_table_new (g_str_hash, g_str_equal);
  GPtrArray *out = g_ptr_array_new_with_free_func (g_free);

  g_return_val_if_fail (before != NULL && after != NULL, out);

  for (guint i = 0; i < before->len; i++)
    {
      BlLayerAssignment *a = g_ptr_array_index (before, i);

      g_hash_table_insert (by_name, a->layer, a);
    }
  for (guint i = 0; i < after->len; i++)
    {
      const BlLayerAssignment *b = g_ptr_array_index (after, i);
      const BlLayerAssignment *a = g_hash_table_lookup (by_name, b->layer);
      BlLayerChange changes = 0;
      BlLayerDiff *d;

      if (a == NULL)
        continue;
      if (!bl_layer_assignment_weight_equal (a, b))
        changes |= BL_LAYER_CHANGE_WEIGHT;
      if (!bl_layer_assignment_activation_equal (a, b))
        changes |= BL_LAYER_CHANGE_ACTIVATION;
      if (changes == 0)
        continue;
      d = g_new (BlLayerDiff, 1);
      d->layer = b->layer;
      d->changes = changes;
      d->before = a;
      d->after = b;
      g_ptr_array_add (out, d);
    }
  return out;
}

/**
 * bl_quant_plan_size:
 * @resolved: (element-type BlLayerAssignment): a resolved plan
 * @model: the model it was resolved against
 * @out: (out caller-allocates): the sizes
 *
 * Bits per weight of the linear layers and of the whole model under the plan. A quantized
 * layer costs what bl_format_spec_bits_for_shape() says (codes, every group's scales and zero
 * points, a tensor scale); everything else costs its stored dtype.
 */
void
bl_quant_plan_size (GPtrArray   *resolved,
                    BlModel     *model,
                    BlQuantSize *out)
{
  const BlTensor *head, *embed;
  double quantized_bits = 0;
  gboolean tied;

  g_return_if_fail (resolved != NULL);
  g_return_if_fail (BL_IS_MODEL (model));
  g_return_if_fail (out != NULL);

  memset (out, 0, sizeof *out);
  for (guint i = 0; i < bl_model_get_n_tensors (model); i++)
    {
      const BlTensor *t = bl_model_get_tensor_at (model, i);

      out->model_params += t->n_elements;
      out->model_bits += (double) t->n_elements * 8.0 * bl_dtype_size (t->dtype);
    }

  head = bl_model_get_tensor (model, "lm_head.weight");
  embed = bl_model_get_tensor (model, "model.embed_tokens.weight");
  tied = head != NULL && head == embed;
  for (guint i = 0; i < resolved->len; i++)
    {
      const BlLayerAssignment *a = g_ptr_array_index (resolved, i);
      double bits = (double) a->n_params * a->bits_per_weight;

      out->linear_params += a->n_params;
      out->linear_bits += bits;
      if (!a->has_weight)
        continue;
      out->quantized_params += a->n_params;
      quantized_bits += bits;
      /* A quantized tied head is a second tensor beside the exact embedding. */
      if (!(tied && a->kind == BL_LAYER_LM_HEAD))
        out->model_bits -= (double) a->n_params * a->stored_bits;
      out->model_bits += bits;
    }
  out->linear_bits_per_weight = out->linear_params > 0 ? out->linear_bits / out->linear_params : 0;
  out->model_bits_per_weight = out->model_params > 0 ? out->model_bits / out->model_params : 0;
  out->model_bytes = out->model_bits / 8.0;
  out->quantized_bits_per_weight = out->quantized_params > 0
                                   ? quantized_bits / out->quantized_params : NAN;
}
