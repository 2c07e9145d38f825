/* bl-format-spec.c: parsing and printing spec strings
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * The grammar is documented in bl-format.h. Defaults follow peers.md §3 and methods.md: RNE
 * rounding and saturation (OFP8 emulator defaults, peers.md §3.4), the OCP FLOOR scale rule
 * (peers.md §3.2), symmetric INT with symmetric clipping (methods.md §2), MX block 32,
 * NVFP4/NVINT4 block 16, NF4 block 64 (QLoRA), BitMoD and int2+int4 group 128.
 */
#include "bl-format-private.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bl-error.h"

/* option classes a family accepts */
enum
{
  OPT_GRAN_TENSOR  = 1 << 0,
  OPT_GRAN_CHANNEL = 1 << 1,   /* channel and token */
  OPT_GRAN_GROUP   = 1 << 2,
  OPT_CONVENTION   = 1 << 3,
  OPT_SCALE_TYPE   = 1 << 4,
  OPT_SCALE_RULE   = 1 << 5,
  OPT_ROUNDING     = 1 << 6,
  OPT_ROUND_UP     = 1 << 7,   /* "up" is meaningful on integer grids only */
  OPT_SATURATE     = 1 << 8,
  OPT_CLIP         = 1 << 9,
  OPT_TERNARY      = 1 << 10,
  OPT_RANGE        = 1 << 11,
};

#define OPT_GRAN_ALL (OPT_GRAN_TENSOR | OPT_GRAN_CHANNEL | OPT_GRAN_GROUP)

static guint
family_options (BlFormatFamily family)
{
  switch (family)
    {
    case BL_FORMAT_INT:
      return OPT_GRAN_ALL | OPT_CONVENTION | OPT_SCALE_TYPE | OPT_ROUNDING | OPT_ROUND_UP | OPT_CLIP;
    case BL_FORMAT_FP:
      return OPT_GRAN_ALL | OPT_SCALE_TYPE | OPT_ROUNDING | OPT_SATURATE | OPT_CLIP;
    case BL_FORMAT_MXFP:
      return OPT_GRAN_GROUP | OPT_SCALE_RULE | OPT_ROUNDING | OPT_SATURATE | OPT_CLIP;
    case BL_FORMAT_MXINT:
      return OPT_GRAN_GROUP | OPT_SCALE_RULE | OPT_ROUNDING | OPT_ROUND_UP | OPT_CLIP;
    case BL_FORMAT_NVFP4:
      return OPT_GRAN_GROUP | OPT_ROUNDING | OPT_CLIP;
    case BL_FORMAT_NVINT4:
      return OPT_GRAN_GROUP | OPT_ROUNDING | OPT_ROUND_UP | OPT_CLIP;
    case BL_FORMAT_NF4:
      return OPT_GRAN_ALL | OPT_SCALE_TYPE | OPT_CLIP;
    case BL_FORMAT_BINARY:
      return OPT_GRAN_ALL | OPT_SCALE_TYPE;
    case BL_FORMAT_TERNARY:
      return OPT_GRAN_ALL | OPT_SCALE_TYPE | OPT_ROUNDING | OPT_ROUND_UP | OPT_TERNARY;
    case BL_FORMAT_DUAL_BINARY:
      return OPT_GRAN_ALL | OPT_SCALE_TYPE;
    case BL_FORMAT_COMPLEX_2BIT:
      return OPT_GRAN_ALL | OPT_SCALE_TYPE;
    case BL_FORMAT_BITMOD:
      return OPT_GRAN_CHANNEL | OPT_GRAN_GROUP | OPT_SCALE_TYPE | OPT_CLIP;
    case BL_FORMAT_INT2_INT4:
      return OPT_GRAN_GROUP | OPT_SCALE_TYPE | OPT_ROUNDING | OPT_ROUND_UP | OPT_CLIP | OPT_RANGE;
    case BL_FORMAT_BF16:
    case BL_FORMAT_FP16:
      return OPT_ROUNDING | OPT_SATURATE;
    case BL_FORMAT_N_FAMILIES:
    default:
      return 0;
    }
}

static BlGranularity
default_granularity (BlFormatFamily family)
{
  switch (family)
    {
    case BL_FORMAT_INT:
    case BL_FORMAT_BINARY:
    case BL_FORMAT_DUAL_BINARY:
    case BL_FORMAT_COMPLEX_2BIT:
      return BL_GRANULARITY_CHANNEL;
    case BL_FORMAT_MXFP:
    case BL_FORMAT_MXINT:
    case BL_FORMAT_NVFP4:
    case BL_FORMAT_NVINT4:
    case BL_FORMAT_NF4:
    case BL_FORMAT_BITMOD:
    case BL_FORMAT_INT2_INT4:
      return BL_GRANULARITY_GROUP;
    case BL_FORMAT_FP:
    case BL_FORMAT_TERNARY:
    case BL_FORMAT_BF16:
    case BL_FORMAT_FP16:
    case BL_FORMAT_N_FAMILIES:
    default:
      return BL_GRANULARITY_TENSOR;
    }
}

static int
default_group_size (BlFormatFamily family)
{
  switch (family)
    {
    case BL_FORMAT_MXFP:
    case BL_FORMAT_MXINT:
      return 32;
    case BL_FORMAT_NVFP4:
    case BL_FORMAT_NVINT4:
      return 16;
    case BL_FORMAT_NF4:
      return 64;
    case BL_FORMAT_BITMOD:
    case BL_FORMAT_INT2_INT4:
      return 128;
    case BL_FORMAT_INT:
    case BL_FORMAT_FP:
    case BL_FORMAT_BINARY:
    case BL_FORMAT_TERNARY:
    case BL_FORMAT_DUAL_BINARY:
    case BL_FORMAT_COMPLEX_2BIT:
    case BL_FORMAT_BF16:
    case BL_FORMAT_FP16:
    case BL_FORMAT_N_FAMILIES:
    default:
      return 0;
    }
}

gboolean
bl_format_family_has_fp_element (BlFormatFamily family)
{
  return family == BL_FORMAT_FP || family == BL_FORMAT_MXFP || family == BL_FORMAT_NVFP4
         || family == BL_FORMAT_BF16 || family == BL_FORMAT_FP16;
}

static gboolean
fp_element_has_specials (const BlFormatSpec *spec)
{
  return (spec->ebits == 4 && spec->mbits == 3) || (spec->ebits == 5 && spec->mbits == 2)
         || spec->family == BL_FORMAT_BF16 || spec->family == BL_FORMAT_FP16;
}

BlRounding
bl_format_spec_default_rounding (const BlFormatSpec *spec)
{
  if (spec->family == BL_FORMAT_INT && spec->int_convention == BL_INT_Q4_0)
    return BL_ROUND_UP;
  return BL_ROUND_RNE;
}

static gboolean
default_saturate (BlFormatFamily family)
{
  /* the IEEE casts overflow to Inf like torch's .to(); the FP8 emulators clamp (peers.md §3.4) */
  return !(family == BL_FORMAT_BF16 || family == BL_FORMAT_FP16);
}

BlScaleType
bl_format_spec_default_scale_type (const BlFormatSpec *spec)
{
  switch (spec->family)
    {
    case BL_FORMAT_MXFP:
    case BL_FORMAT_MXINT:
      return BL_SCALE_TYPE_E8M0;
    case BL_FORMAT_NVFP4:
    case BL_FORMAT_NVINT4:
      return BL_SCALE_TYPE_UE4M3;
    case BL_FORMAT_NF4:
      /* bitsandbytes keeps the absmax of each block in fp32 */
      return BL_SCALE_TYPE_F32;
    case BL_FORMAT_INT:
    case BL_FORMAT_FP:
    case BL_FORMAT_BINARY:
    case BL_FORMAT_TERNARY:
    case BL_FORMAT_DUAL_BINARY:
    case BL_FORMAT_COMPLEX_2BIT:
    case BL_FORMAT_BITMOD:
    case BL_FORMAT_INT2_INT4:
    case BL_FORMAT_BF16:
    case BL_FORMAT_FP16:
    case BL_FORMAT_N_FAMILIES:
    default:
      /* one fp32 scale per tensor costs nothing; group and channel scales are fp16 as in
       * GPTQ/AWQ checkpoints (methods.md, cross-cutting note 3) */
      return spec->granularity == BL_GRANULARITY_TENSOR ? BL_SCALE_TYPE_F32 : BL_SCALE_TYPE_F16;
    }
}

/**
 * bl_format_spec_init_default:
 * @spec: (out caller-allocates): the spec to fill
 * @family: a family
 *
 * Fills @spec with the defaults of @family (for int: int4 per channel, for fp: fp8-e4m3 per
 * tensor, for mxfp: mxfp4, for mxint: mxint8, for bitmod: bitmod4).
 */
void
bl_format_spec_init_default (BlFormatSpec   *spec,
                             BlFormatFamily  family)
{
  g_return_if_fail (spec != NULL);
  g_return_if_fail (family < BL_FORMAT_N_FAMILIES);

  memset (spec, 0, sizeof *spec);
  spec->family = family;
  spec->granularity = default_granularity (family);
  spec->group_size = default_group_size (family);
  spec->int_convention = family == BL_FORMAT_INT2_INT4 ? BL_INT_ASYM : BL_INT_ABSMAX;
  spec->scale_rule = BL_SCALE_RULE_FLOOR;
  spec->rounding = BL_ROUND_RNE;
  spec->saturate = default_saturate (family);
  spec->clip = BL_CLIP_NONE;
  spec->clip_ratio = 1.0;
  spec->ternary_stat = BL_TERNARY_ABSMEAN;
  spec->range_percent = 10.0;

  switch (family)
    {
    case BL_FORMAT_INT:
      spec->bits = 4;
      break;
    case BL_FORMAT_FP:
      spec->bits = 8;
      spec->ebits = 4;
      spec->mbits = 3;
      break;
    case BL_FORMAT_MXFP:
    case BL_FORMAT_NVFP4:
      spec->bits = 4;
      spec->ebits = 2;
      spec->mbits = 1;
      break;
    case BL_FORMAT_MXINT:
      spec->bits = 8;
      break;
    case BL_FORMAT_NVINT4:
    case BL_FORMAT_NF4:
    case BL_FORMAT_BITMOD:
      spec->bits = 4;
      break;
    case BL_FORMAT_BINARY:
    case BL_FORMAT_COMPLEX_2BIT:
      spec->bits = 1;
      break;
    case BL_FORMAT_TERNARY:
    case BL_FORMAT_DUAL_BINARY:
    case BL_FORMAT_INT2_INT4:
      spec->bits = 2;
      break;
    case BL_FORMAT_BF16:
      spec->bits = 16;
      spec->ebits = 8;
      spec->mbits = 7;
      break;
    case BL_FORMAT_FP16:
      spec->bits = 16;
      spec->ebits = 5;
      spec->mbits = 10;
      break;
    case BL_FORMAT_N_FAMILIES:
    default:
      break;
    }
  spec->scale_type = bl_format_spec_default_scale_type (spec);
}

/* ------------------------------------------------------------------------------------------ */
/* parsing */

static const char valid_families[] =
  "int2..int8, fp<N>-e<X>m<Y> (fp8-e4m3, fp8-e5m2, fp6-e3m2, fp6-e2m3, fp4-e2m1), "
  "mxfp8-e4m3, mxfp8-e5m2, mxfp6-e3m2, mxfp6-e2m3, mxfp4, mxint2..mxint8, nvfp4, nvint4, nf4, "
  "binary, ternary, dual-binary, complex-2bit, bitmod3, bitmod4, int2+int4, bf16, fp16";

static gboolean
parse_uint (const char *s,
            gint64      min,
            gint64      max,
            gint64     *out)
{
  char *end = NULL;
  guint64 v;

  if (*s < '0' || *s > '9')
    return FALSE;
  errno = 0;
  v = g_ascii_strtoull (s, &end, 10);
  if (errno != 0 || end == s || *end != '\0' || v < (guint64) min || v > (guint64) max)
    return FALSE;
  *out = (gint64) v;
  return TRUE;
}

/* "e<X>m<Y>" */
static gboolean
parse_exmy (const char *s,
            int        *ebits,
            int        *mbits)
{
  const char *m;
  gint64 e, mm;
  g_autofree char *ebuf = NULL;

  if (s[0] != 'e')
    return FALSE;
  m = strchr (s, 'm');
  if (m == NULL)
    return FALSE;
  ebuf = g_strndup (s + 1, (gsize) (m - s - 1));
  if (!parse_uint (ebuf, 1, 8, &e) || !parse_uint (m + 1, 0, 10, &mm))
    return FALSE;
  *ebits = (int) e;
  *mbits = (int) mm;
  return TRUE;
}

static gboolean
parse_family (const char   *tok,
              BlFormatSpec *spec)
{
  gint64 v;
  int ebits, mbits;

  if (g_str_equal (tok, "nvfp4"))
    bl_format_spec_init_default (spec, BL_FORMAT_NVFP4);
  else if (g_str_equal (tok, "nvint4"))
    bl_format_spec_init_default (spec, BL_FORMAT_NVINT4);
  else if (g_str_equal (tok, "nf4"))
    bl_format_spec_init_default (spec, BL_FORMAT_NF4);
  else if (g_str_equal (tok, "binary"))
    bl_format_spec_init_default (spec, BL_FORMAT_BINARY);
  else if (g_str_equal (tok, "ternary"))
    bl_format_spec_init_default (spec, BL_FORMAT_TERNARY);
  else if (g_str_equal (tok, "dual-binary"))
    bl_format_spec_init_default (spec, BL_FORMAT_DUAL_BINARY);
  else if (g_str_equal (tok, "complex-2bit"))
    bl_format_spec_init_default (spec, BL_FORMAT_COMPLEX_2BIT);
  else if (g_str_equal (tok, "int2+int4"))
    bl_format_spec_init_default (spec, BL_FORMAT_INT2_INT4);
  else if (g_str_equal (tok, "bf16"))
    bl_format_spec_init_default (spec, BL_FORMAT_BF16);
  else if (g_str_equal (tok, "fp16"))
    bl_format_spec_init_default (spec, BL_FORMAT_FP16);
  else if (g_str_equal (tok, "mxfp4"))
    bl_format_spec_init_default (spec, BL_FORMAT_MXFP);
  else if (g_str_has_prefix (tok, "bitmod") && parse_uint (tok + 6, 3, 4, &v))
    {
      bl_format_spec_init_default (spec, BL_FORMAT_BITMOD);
      spec->bits = (int) v;
    }
  else if (g_str_has_prefix (tok, "mxint") && parse_uint (tok + 5, 2, 8, &v))
    {
      bl_format_spec_init_default (spec, BL_FORMAT_MXINT);
      spec->bits = (int) v;
    }
  else if (g_str_has_prefix (tok, "int") && parse_uint (tok + 3, 2, 8, &v))
    {
      bl_format_spec_init_default (spec, BL_FORMAT_INT);
      spec->bits = (int) v;
    }
  else if (g_str_has_prefix (tok, "mxfp") || g_str_has_prefix (tok, "fp"))
    {
      gboolean mx = g_str_has_prefix (tok, "mxfp");
      const char *rest = tok + (mx ? 4 : 2);
      const char *dash = strchr (rest, '-');
      g_autofree char *nbuf = NULL;

      if (dash == NULL)
        return FALSE;
      nbuf = g_strndup (rest, (gsize) (dash - rest));
      if (!parse_uint (nbuf, 2, 8, &v) || !parse_exmy (dash + 1, &ebits, &mbits)
          || 1 + ebits + mbits != v)
        return FALSE;
      bl_format_spec_init_default (spec, mx ? BL_FORMAT_MXFP : BL_FORMAT_FP);
      spec->bits = (int) v;
      spec->ebits = ebits;
      spec->mbits = mbits;
    }
  else
    return FALSE;

  return TRUE;
}

static const char *
family_label (BlFormatFamily family)
{
  return bl_format_family_get_name (family);
}

static char *
valid_options (const BlFormatSpec *spec)
{
  guint opts = family_options (spec->family);
  GString *s = g_string_new (NULL);

#define ADD(str) G_STMT_START { if (s->len > 0) g_string_append (s, ", "); g_string_append (s, str); } G_STMT_END
  if (opts & OPT_GRAN_GROUP)
    ADD ("g<N>");
  if (opts & OPT_GRAN_CHANNEL)
    ADD ("channel, token");
  if (opts & OPT_GRAN_TENSOR)
    ADD ("tensor");
  if (opts & OPT_CONVENTION)
    ADD ("sym, asym, absmax, gptq, q4_0");
  if (opts & OPT_SCALE_TYPE)
    ADD ("scale=fp32|fp16|bf16");
  if (opts & OPT_SCALE_RULE)
    ADD ("floor, ceil, rceil, even");
  if (opts & OPT_ROUNDING)
    ADD ((opts & OPT_ROUND_UP) ? "rne, away, zero, up, stochastic[:SEED]"
                               : "rne, away, zero, stochastic[:SEED]");
  if ((opts & OPT_SATURATE) && (!bl_format_family_has_fp_element (spec->family)
                                || fp_element_has_specials (spec)))
    ADD ("sat, nosat");
  else if (opts & OPT_SATURATE)
    ADD ("sat");
  if (opts & OPT_CLIP)
    ADD ("clip=mse, clip=<ratio in (0,1]>");
  if (opts & OPT_TERNARY)
    ADD ("absmean, median");
  if (opts & OPT_RANGE)
    ADD ("range<P>%");
#undef ADD
  if (s->len == 0)
    g_string_append (s, "none");
  return g_string_free (s, FALSE);
}

static gboolean
option_error (GError            **error,
              const char         *str,
              const char         *tok,
              const BlFormatSpec *spec,
              const char         *why)
{
  g_autofree char *valid = valid_options (spec);

  g_set_error (error, BL_ERROR, BL_ERROR_UNSUPPORTED_FORMAT,
               "format spec '%s': %s '%s'; valid options for %s: %s",
               str, why, tok, family_label (spec->family), valid);
  return FALSE;
}

static gboolean
mark_field (GError            **error,
            const char         *str,
            const char         *tok,
            BlFormatSpec       *spec,
            guint32             field)
{
  if (spec->explicit_mask & field)
    return option_error (error, str, tok, spec, "a second value for the same option in");
  spec->explicit_mask |= field;
  return TRUE;
}

/**
 * bl_format_spec_parse:
 * @str: a spec string such as "int4:g128:sym" or "mxfp4:ceil"
 * @out_spec: (out caller-allocates): the parsed spec
 * @error: return location for a #GError
 *
 * Parses and validates a spec string (grammar in bl-format.h). On error the message names
 * the offending token and lists the valid ones, with code %BL_ERROR_UNSUPPORTED_FORMAT.
 *
 * Returns: %TRUE on success
 */
gboolean
bl_format_spec_parse (const char    *str,
                      BlFormatSpec  *out_spec,
                      GError       **error)
{
  g_auto (GStrv) toks = NULL;
  BlFormatSpec spec;
  gboolean scale_type_given = FALSE;
  guint opts;

  g_return_val_if_fail (str != NULL, FALSE);
  g_return_val_if_fail (out_spec != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  toks = g_strsplit (str, ":", -1);
  if (toks[0] == NULL || toks[0][0] == '\0')
    {
      g_set_error (error, BL_ERROR, BL_ERROR_UNSUPPORTED_FORMAT,
                   "format spec '%s' is empty; valid families: %s", str, valid_families);
      return FALSE;
    }
  if (!parse_family (toks[0], &spec))
    {
      g_set_error (error, BL_ERROR, BL_ERROR_UNSUPPORTED_FORMAT,
                   "format spec '%s': unknown format '%s'; valid families: %s",
                   str, toks[0], valid_families);
      return FALSE;
    }
  opts = family_options (spec.family);

  for (guint i = 1; toks[i] != NULL; i++)
    {
      const char *tok = toks[i];
      gint64 v;

      if (tok[0] == 'g' && parse_uint (tok + 1, 1, 1 << 30, &v))
        {
          if (!(opts & OPT_GRAN_GROUP))
            return option_error (error, str, tok, &spec, "unsupported granularity");
          if (!mark_field (error, str, tok, &spec, BL_SPEC_FIELD_GRANULARITY))
            return FALSE;
          if (spec.family == BL_FORMAT_COMPLEX_2BIT && (v % 2) != 0)
            return option_error (error, str, tok, &spec, "complex-2bit pairs weights, so the group size must be even, not");
          spec.granularity = BL_GRANULARITY_GROUP;
          spec.group_size = (int) v;
        }
      else if (g_str_equal (tok, "channel") || g_str_equal (tok, "token") || g_str_equal (tok, "tensor"))
        {
          gboolean tensor = g_str_equal (tok, "tensor");

          if (!(opts & (tensor ? OPT_GRAN_TENSOR : OPT_GRAN_CHANNEL)))
            return option_error (error, str, tok, &spec, "unsupported granularity");
          if (!mark_field (error, str, tok, &spec, BL_SPEC_FIELD_GRANULARITY))
            return FALSE;
          spec.granularity = tensor ? BL_GRANULARITY_TENSOR
                             : g_str_equal (tok, "token") ? BL_GRANULARITY_TOKEN
                             : BL_GRANULARITY_CHANNEL;
          spec.group_size = 0;
        }
      else if (g_str_equal (tok, "sym") || g_str_equal (tok, "asym") || g_str_equal (tok, "absmax")
               || g_str_equal (tok, "gptq") || g_str_equal (tok, "q4_0"))
        {
          if (!(opts & OPT_CONVENTION))
            return option_error (error, str, tok, &spec, "unsupported option");
          if (!mark_field (error, str, tok, &spec, BL_SPEC_FIELD_CONVENTION))
            return FALSE;
          if (g_str_equal (tok, "sym"))
            {
              spec.int_convention = BL_INT_ABSMAX;
              spec.explicit_mask |= BL_SPEC_FIELD_SYM_WORD;
            }
          else if (g_str_equal (tok, "asym"))
            spec.int_convention = BL_INT_ASYM;
          else if (g_str_equal (tok, "absmax"))
            spec.int_convention = BL_INT_ABSMAX;
          else if (g_str_equal (tok, "gptq"))
            spec.int_convention = BL_INT_GPTQ;
          else
            spec.int_convention = BL_INT_Q4_0;
        }
      else if (g_str_has_prefix (tok, "scale="))
        {
          const char *t = tok + 6;

          if (!(opts & OPT_SCALE_TYPE))
            return option_error (error, str, tok, &spec, "unsupported option");
          if (!mark_field (error, str, tok, &spec, BL_SPEC_FIELD_SCALE_TYPE))
            return FALSE;
          if (g_str_equal (t, "fp32"))
            spec.scale_type = BL_SCALE_TYPE_F32;
          else if (g_str_equal (t, "fp16"))
            spec.scale_type = BL_SCALE_TYPE_F16;
          else if (g_str_equal (t, "bf16"))
            spec.scale_type = BL_SCALE_TYPE_BF16;
          else
            return option_error (error, str, tok, &spec, "unknown scale type in");
          scale_type_given = TRUE;
        }
      else if (g_str_equal (tok, "floor") || g_str_equal (tok, "ceil") || g_str_equal (tok, "rceil")
               || g_str_equal (tok, "even"))
        {
          if (!(opts & OPT_SCALE_RULE))
            return option_error (error, str, tok, &spec, "unsupported option");
          if (!mark_field (error, str, tok, &spec, BL_SPEC_FIELD_SCALE_RULE))
            return FALSE;
          spec.scale_rule = g_str_equal (tok, "floor") ? BL_SCALE_RULE_FLOOR
                            : g_str_equal (tok, "ceil") ? BL_SCALE_RULE_CEIL
                            : g_str_equal (tok, "rceil") ? BL_SCALE_RULE_RCEIL
                            : BL_SCALE_RULE_EVEN;
        }
      else if (g_str_equal (tok, "rne") || g_str_equal (tok, "away") || g_str_equal (tok, "zero")
               || g_str_equal (tok, "up") || g_str_equal (tok, "stochastic"))
        {
          if (!(opts & OPT_ROUNDING) || (g_str_equal (tok, "up") && !(opts & OPT_ROUND_UP)))
            return option_error (error, str, tok, &spec, "unsupported rounding");
          if (!mark_field (error, str, tok, &spec, BL_SPEC_FIELD_ROUNDING))
            return FALSE;
          spec.rounding = g_str_equal (tok, "rne") ? BL_ROUND_RNE
                          : g_str_equal (tok, "away") ? BL_ROUND_AWAY
                          : g_str_equal (tok, "zero") ? BL_ROUND_ZERO
                          : g_str_equal (tok, "up") ? BL_ROUND_UP
                          : BL_ROUND_STOCHASTIC;
          if (spec.rounding == BL_ROUND_STOCHASTIC && toks[i + 1] != NULL
              && toks[i + 1][0] >= '0' && toks[i + 1][0] <= '9')
            {
              char *end = NULL;

              errno = 0;
              spec.seed = g_ascii_strtoull (toks[i + 1], &end, 10);
              if (errno != 0 || *end != '\0')
                return option_error (error, str, toks[i + 1], &spec, "bad stochastic seed");
              i++;
            }
        }
      else if (g_str_equal (tok, "sat") || g_str_equal (tok, "nosat"))
        {
          gboolean sat = g_str_equal (tok, "sat");

          if (!(opts & OPT_SATURATE))
            return option_error (error, str, tok, &spec, "unsupported option");
          if (!sat && bl_format_family_has_fp_element (spec.family) && !fp_element_has_specials (&spec))
            return option_error (error, str, tok, &spec,
                                 "the element has no Inf or NaN and always saturates, so it rejects");
          if (!mark_field (error, str, tok, &spec, BL_SPEC_FIELD_SATURATE))
            return FALSE;
          spec.saturate = sat;
        }
      else if (g_str_has_prefix (tok, "clip="))
        {
          const char *t = tok + 5;

          if (!(opts & OPT_CLIP))
            return option_error (error, str, tok, &spec, "unsupported option");
          if (!mark_field (error, str, tok, &spec, BL_SPEC_FIELD_CLIP))
            return FALSE;
          if (g_str_equal (t, "mse"))
            spec.clip = BL_CLIP_MSE;
          else
            {
              char *end = NULL;
              double r = g_ascii_strtod (t, &end);

              if (end == t || *end != '\0' || !(r > 0.0 && r <= 1.0))
                return option_error (error, str, tok, &spec, "clip ratio must be in (0, 1], not");
              spec.clip = BL_CLIP_RATIO;
              spec.clip_ratio = r;
            }
        }
      else if (g_str_equal (tok, "absmean") || g_str_equal (tok, "median"))
        {
          if (!(opts & OPT_TERNARY))
            return option_error (error, str, tok, &spec, "unsupported option");
          if (!mark_field (error, str, tok, &spec, BL_SPEC_FIELD_TERNARY))
            return FALSE;
          spec.ternary_stat = g_str_equal (tok, "median") ? BL_TERNARY_MEDIAN : BL_TERNARY_ABSMEAN;
        }
      else if (g_str_has_prefix (tok, "range") && g_str_has_suffix (tok, "%"))
        {
          g_autofree char *num = g_strndup (tok + 5, strlen (tok) - 6);
          char *end = NULL;
          double p;

          if (!(opts & OPT_RANGE))
            return option_error (error, str, tok, &spec, "unsupported option");
          if (!mark_field (error, str, tok, &spec, BL_SPEC_FIELD_RANGE))
            return FALSE;
          p = g_ascii_strtod (num, &end);
          if (end == num || *end != '\0' || !(p >= 0.0 && p <= 100.0))
            return option_error (error, str, tok, &spec, "range percentage must be in [0, 100], not");
          spec.range_percent = p;
        }
      else
        return option_error (error, str, tok, &spec, "unknown option");
    }

  if (!scale_type_given)
    spec.scale_type = bl_format_spec_default_scale_type (&spec);
  if (!(spec.explicit_mask & BL_SPEC_FIELD_ROUNDING))
    spec.rounding = bl_format_spec_default_rounding (&spec);

  *out_spec = spec;
  return TRUE;
}

/* ------------------------------------------------------------------------------------------ */
/* printing */

/* the shortest plain decimal (no exponent) that reads back as @v */
static void
append_shortest (GString *s,
                 double   v)
{
  char buf[G_ASCII_DTOSTR_BUF_SIZE];

  for (int prec = 0; prec <= 17; prec++)
    {
      char fmt[8];

      g_snprintf (fmt, sizeof fmt, "%%.%df", prec);
      g_ascii_formatd (buf, sizeof buf, fmt, v);
      if (g_ascii_strtod (buf, NULL) == v)
        break;
    }
  g_string_append (s, buf);
}

static void
append_family (GString            *s,
               const BlFormatSpec *spec)
{
  switch (spec->family)
    {
    case BL_FORMAT_INT:
      g_string_append_printf (s, "int%d", spec->bits);
      break;
    case BL_FORMAT_FP:
      g_string_append_printf (s, "fp%d-e%dm%d", spec->bits, spec->ebits, spec->mbits);
      break;
    case BL_FORMAT_MXFP:
      if (spec->ebits == 2 && spec->mbits == 1)
        g_string_append (s, "mxfp4");
      else
        g_string_append_printf (s, "mxfp%d-e%dm%d", spec->bits, spec->ebits, spec->mbits);
      break;
    case BL_FORMAT_MXINT:
      g_string_append_printf (s, "mxint%d", spec->bits);
      break;
    case BL_FORMAT_BITMOD:
      g_string_append_printf (s, "bitmod%d", spec->bits);
      break;
    case BL_FORMAT_NVFP4:
    case BL_FORMAT_NVINT4:
    case BL_FORMAT_NF4:
    case BL_FORMAT_BINARY:
    case BL_FORMAT_TERNARY:
    case BL_FORMAT_DUAL_BINARY:
    case BL_FORMAT_COMPLEX_2BIT:
    case BL_FORMAT_INT2_INT4:
    case BL_FORMAT_BF16:
    case BL_FORMAT_FP16:
    case BL_FORMAT_N_FAMILIES:
    default:
      g_string_append (s, bl_format_family_get_name (spec->family));
      break;
    }
}

/**
 * bl_format_spec_to_string:
 * @spec: a spec
 *
 * Prints @spec in canonical option order; see bl-format.h for the round-trip rule.
 *
 * Returns: (transfer full): the spec string
 */
char *
bl_format_spec_to_string (const BlFormatSpec *spec)
{
  GString *s;
  guint32 mask;

  g_return_val_if_fail (spec != NULL, NULL);
  g_return_val_if_fail (spec->family < BL_FORMAT_N_FAMILIES, NULL);

  s = g_string_new (NULL);
  mask = spec->explicit_mask;
  append_family (s, spec);

  if ((mask & BL_SPEC_FIELD_GRANULARITY) || spec->granularity != default_granularity (spec->family)
      || (spec->granularity == BL_GRANULARITY_GROUP && spec->group_size != default_group_size (spec->family)))
    {
      switch (spec->granularity)
        {
        case BL_GRANULARITY_TENSOR:
          g_string_append (s, ":tensor");
          break;
        case BL_GRANULARITY_CHANNEL:
          g_string_append (s, ":channel");
          break;
        case BL_GRANULARITY_TOKEN:
          g_string_append (s, ":token");
          break;
        case BL_GRANULARITY_GROUP:
        default:
          g_string_append_printf (s, ":g%d", spec->group_size);
          break;
        }
    }

  if (spec->family == BL_FORMAT_INT)
    {
      if ((mask & BL_SPEC_FIELD_SYM_WORD) && spec->int_convention == BL_INT_ABSMAX)
        g_string_append (s, ":sym");
      else if ((mask & BL_SPEC_FIELD_CONVENTION) || spec->int_convention != BL_INT_ABSMAX)
        {
          static const char *const names[] = { "absmax", "gptq", "q4_0", "asym" };

          g_string_append_printf (s, ":%s", names[spec->int_convention]);
        }
    }

  if ((family_options (spec->family) & OPT_SCALE_TYPE)
      && ((mask & BL_SPEC_FIELD_SCALE_TYPE) || spec->scale_type != bl_format_spec_default_scale_type (spec)))
    {
      static const char *const names[] = { "fp32", "fp16", "bf16", "e8m0", "ue4m3" };

      g_string_append_printf (s, ":scale=%s", names[spec->scale_type]);
    }

  if ((family_options (spec->family) & OPT_SCALE_RULE)
      && ((mask & BL_SPEC_FIELD_SCALE_RULE) || spec->scale_rule != BL_SCALE_RULE_FLOOR))
    {
      static const char *const names[] = { "floor", "ceil", "rceil", "even" };

      g_string_append_printf (s, ":%s", names[spec->scale_rule]);
    }

  if ((mask & BL_SPEC_FIELD_ROUNDING) || spec->rounding != bl_format_spec_default_rounding (spec))
    {
      static const char *const names[] = { "rne", "away", "zero", "up", "stochastic" };

      g_string_append_printf (s, ":%s", names[spec->rounding]);
      if (spec->rounding == BL_ROUND_STOCHASTIC && spec->seed != 0)
        g_string_append_printf (s, ":%" G_GUINT64_FORMAT, spec->seed);
    }

  if ((mask & BL_SPEC_FIELD_SATURATE) || spec->saturate != default_saturate (spec->family))
    g_string_append (s, spec->saturate ? ":sat" : ":nosat");

  if ((mask & BL_SPEC_FIELD_CLIP) || spec->clip != BL_CLIP_NONE)
    {
      if (spec->clip == BL_CLIP_MSE)
        g_string_append (s, ":clip=mse");
      else
        {
          g_string_append (s, ":clip=");
          append_shortest (s, spec->clip_ratio);
        }
    }

  if (spec->family == BL_FORMAT_TERNARY
      && ((mask & BL_SPEC_FIELD_TERNARY) || spec->ternary_stat != BL_TERNARY_ABSMEAN))
    g_string_append (s, spec->ternary_stat == BL_TERNARY_MEDIAN ? ":median" : ":absmean");

  if (spec->family == BL_FORMAT_INT2_INT4
      && ((mask & BL_SPEC_FIELD_RANGE) || spec->range_percent != 10.0))
    {
      g_string_append (s, ":range");
      append_shortest (s, spec->range_percent);
      g_string_append_c (s, '%');
    }

  return g_string_free (s, FALSE);
}

/**
 * bl_format_spec_equal:
 * @a: a spec
 * @b: another spec
 *
 * Compares what the specs mean: "int4:sym" equals "int4", "int4:g128" differs from "int4:g64".
 *
 * Returns: whether @a and @b quantize identically
 */
gboolean
bl_format_spec_equal (const BlFormatSpec *a,
                      const BlFormatSpec *b)
{
  g_return_val_if_fail (a != NULL && b != NULL, FALSE);

  if (a->family != b->family || a->bits != b->bits || a->ebits != b->ebits || a->mbits != b->mbits)
    return FALSE;
  if (a->granularity != b->granularity
      || (a->granularity == BL_GRANULARITY_GROUP && a->group_size != b->group_size))
    return FALSE;
  if (a->int_convention != b->int_convention || a->scale_type != b->scale_type
      || a->scale_rule != b->scale_rule || a->rounding != b->rounding
      || a->saturate != b->saturate || a->clip != b->clip || a->ternary_stat != b->ternary_stat)
    return FALSE;
  if (a->rounding == BL_ROUND_STOCHASTIC && a->seed != b->seed)
    return FALSE;
  if (a->clip == BL_CLIP_RATIO && a->clip_ratio != b->clip_ratio)
    return FALSE;
  if (a->family == BL_FORMAT_INT2_INT4 && a->range_percent != b->range_percent)
    return FALSE;
  return TRUE;
}
