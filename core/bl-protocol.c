/* bl-protocol.c: evaluation protocols that turn a token id stream into scored windows
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "bl-protocol.h"

#include "bl-error.h"

static const char * const protocol_names[] = {
  [BL_PROTOCOL_GPTQ] = "gptq",
  [BL_PROTOCOL_HF_STRIDE] = "hf-stride",
  [BL_PROTOCOL_LLAMACPP] = "llamacpp",
};

/**
 * bl_protocol_to_string:
 * @protocol: a #BlProtocol
 *
 * Returns: the protocol's name as the CLI, plan files and store rows spell it: "gptq",
 *   "hf-stride" or "llamacpp".
 */
const char *
bl_protocol_to_string (BlProtocol protocol)
{
  g_return_val_if_fail ((guint) protocol < G_N_ELEMENTS (protocol_names), NULL);

  return protocol_names[protocol];
}

/**
 * bl_protocol_from_string:
 * @name: a protocol name
 * @out_protocol: (out): the protocol
 *
 * Parses a name printed by bl_protocol_to_string().
 *
 * Returns: %TRUE when @name is a protocol name
 */
gboolean
bl_protocol_from_string (const char *name,
                         BlProtocol *out_protocol)
{
  g_return_val_if_fail (name != NULL, FALSE);
  g_return_val_if_fail (out_protocol != NULL, FALSE);

  for (guint i = 0; i < G_N_ELEMENTS (protocol_names); i++)
    if (g_str_equal (name, protocol_names[i]))
      {
        *out_protocol = (BlProtocol) i;
        return TRUE;
      }
  return FALSE;
}

static void
append_window (GArray   *windows,
               gint64    start,
               gint32    length,
               gint32    first_target,
               gboolean  bos_first)
{
  BlWindow w = { start, length, first_target, bos_first };

  g_array_append_val (windows, w);
}

/* GPTQ (datautils.get_wikitext2 + llama_eval) and llama.cpp (tools/perplexity) both cut
 * the stream into nsamples = N / ctx windows and drop the remainder. GPTQ shifts logits and
 * labels by one, so it scores positions 1 .. ctx-1. llama.cpp sets first = n_ctx/2 and
 * calls process_logits on logits[first .. n_ctx-2], which predict the ids at positions
 * first+1 .. n_ctx-1; it replaces each chunk's first id by BOS when the vocab adds BOS. */
static GArray *
make_fixed_windows (BlProtocol  protocol,
                    gint64      n_ids,
                    int         ctx,
                    gboolean    add_bos,
                    GError    **error)
{
  gint64 n_windows = n_ids / ctx;
  gint32 first_target = protocol == BL_PROTOCOL_LLAMACPP ? ctx / 2 + 1 : 1;
  gboolean bos_first = protocol == BL_PROTOCOL_LLAMACPP && add_bos;
  GArray *windows;

  if (first_target >= ctx)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT,
                   "protocol %s scores positions ctx/2+1 .. ctx-1, so ctx must be at least 3, "
                   "not %d", bl_protocol_to_string (protocol), ctx);
      return NULL;
    }
  if (n_windows == 0)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_DATASET,
                   "the text has %" G_GINT64_FORMAT " tokens, fewer than one window of %d "
                   "(protocol %s)", n_ids, ctx, bl_protocol_to_string (protocol));
      return NULL;
    }
  if (n_windows > G_MAXUINT)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT,
                   "%" G_GINT64_FORMAT " windows of %d tokens are too many", n_windows, ctx);
      return NULL;
    }

  windows = g_array_sized_new (FALSE, FALSE, sizeof (BlWindow), (guint) n_windows);
  for (gint64 k = 0; k < n_windows; k++)
    append_window (windows, k * ctx, ctx, first_target, bos_first);
  return windows;
}

/* The Hugging Face "Perplexity of fixed-length models" loop (transformers docs,
 * perplexity.md): for begin in range(0, N, stride): end = min(begin + ctx, N);
 * trg_len = end - prev_end; the labels of all but the last trg_len ids are -100; the model
 * shifts labels by one, so window position 0 is never scored; prev_end = end; stop when
 * end == N. A window whose only new id sits at position 0 scores nothing (HF adds 0 tokens
 * for it) and is left out. */
static GArray *
make_stride_windows (gint64   n_ids,
                     int      ctx,
                     int      stride,
                     GError **error)
{
  GArray *windows;
  gint64 prev_end = 0;

  if (stride < 1 || stride > ctx)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT,
                   "the hf-stride stride must be between 1 and ctx (%d), not %d", ctx, stride);
      return NULL;
    }
  if (n_ids < 2)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_DATASET,
                   "the text has %" G_GINT64_FORMAT " tokens; hf-stride needs at least 2",
                   n_ids);
      return NULL;
    }
  if ((n_ids - 1) / stride + 1 > G_MAXUINT)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT,
                   "%" G_GINT64_FORMAT " tokens at stride %d give too many windows",
                   n_ids, stride);
      return NULL;
    }

  windows = g_array_new (FALSE, FALSE, sizeof (BlWindow));
  for (gint64 begin = 0; begin < n_ids; begin += stride)
    {
      gint64 end = MIN (begin + ctx, n_ids);
      gint32 length = (gint32) (end - begin);
      gint32 trg_len = (gint32) (end - prev_end);
      gint32 first_target = MAX (1, length - trg_len);

      if (first_target < length)
        append_window (windows, begin, length, first_target, FALSE);
      prev_end = end;
      if (end == n_ids)
        break;
    }
  return windows;
}

/**
 * bl_protocol_make_windows:
 * @protocol: the protocol
 * @n_ids: number of ids in the whole tokenized text (BOS included when the caller put one
 *   at its start)
 * @ctx: window length in tokens (≥ 2; ≥ 3 for llamacpp)
 * @stride: the hf-stride step, 1 ≤ @stride ≤ @ctx; ignored by the other protocols
 * @add_bos: whether the tokenizer adds BOS; llamacpp then replaces each window's first id
 *   by BOS (#BlWindow.bos_first)
 * @error: return location for a #GError
 *
 * Cuts an id stream of @n_ids ids into the windows the protocol evaluates, in file order.
 * The caller tokenizes the whole text once, with BOS at its start when the tokenizer adds
 * BOS, under every protocol (GPTQ and HF tokenize the joined text with the tokenizer's
 * defaults, llama.cpp with add_special). See the table at the top of bl-protocol.h.
 *
 * Errors: %BL_ERROR_INVALID_ARGUMENT for @ctx < 2 (< 3 for llamacpp) or a stride outside
 * 1..@ctx; %BL_ERROR_DATASET when the text is shorter than one window (gptq, llamacpp) or
 * has fewer than 2 ids (hf-stride, whose last window may be shorter than @ctx).
 *
 * Returns: (transfer full) (element-type BlWindow): the windows, or %NULL with @error set
 */
GArray *
bl_protocol_make_windows (BlProtocol   protocol,
                          gint64       n_ids,
                          int          ctx,
                          int          stride,
                          gboolean     add_bos,
                          GError     **error)
{
  g_return_val_if_fail (n_ids >= 0, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (ctx < 2)
    {
      g_set_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT,
                   "the context length must be at least 2 tokens, not %d", ctx);
      return NULL;
    }

  switch (protocol)
    {
    case BL_PROTOCOL_GPTQ:
    case BL_PROTOCOL_LLAMACPP:
      return make_fixed_windows (protocol, n_ids, ctx, add_bos, error);
    case BL_PROTOCOL_HF_STRIDE:
      return make_stride_windows (n_ids, ctx, stride, error);
    default:
      g_set_error (error, BL_ERROR, BL_ERROR_INVALID_ARGUMENT,
                   "unknown protocol %d", (int) protocol);
      return NULL;
    }
}

/**
 * bl_windows_select:
 * @windows: (element-type BlWindow): windows from bl_protocol_make_windows()
 * @max_windows: how many to keep; 0 or less keeps all
 *
 * Keeps the first @max_windows windows in file order, so a limited run always evaluates
 * the same prefix of the text whatever its evaluation order.
 */
void
bl_windows_select (GArray *windows,
                   int     max_windows)
{
  g_return_if_fail (windows != NULL);

  if (max_windows > 0 && windows->len > (guint) max_windows)
    g_array_set_size (windows, (guint) max_windows);
}

/* SplitMix64 (Steele, Lea & Flood, "Fast splittable pseudorandom number generators",
 * OOPSLA 2014; constants of Vigna's reference splitmix64.c). Pure 64-bit integer
 * arithmetic, so the stream is the same on every platform. */
static guint64
splitmix64_next (guint64 *state)
{
  guint64 z = (*state += G_GUINT64_CONSTANT (0x9E3779B97F4A7C15));

  z = (z ^ (z >> 30)) * G_GUINT64_CONSTANT (0xBF58476D1CE4E5B9);
  z = (z ^ (z >> 27)) * G_GUINT64_CONSTANT (0x94D049BB133111EB);
  return z ^ (z >> 31);
}

/* Uniform in [0, bound) without modulo bias: reject draws below 2^64 mod bound, so the
 * accepted range is a whole multiple of bound. */
static guint64
uniform_below (guint64 *state,
               guint64  bound)
{
  guint64 threshold = (0 - bound) % bound;

  for (;;)
    {
      guint64 r = splitmix64_next (state);

      if (r >= threshold)
        return r % bound;
    }
}

/**
 * bl_windows_eval_order:
 * @n: number of windows
 * @seed: seed of the permutation
 *
 * A fixed pseudo-random permutation of 0..@n-1: the order in which a run evaluates its
 * windows, so that its progressive estimate is unbiased from the first window on. The
 * generator is SplitMix64 started at @seed; the shuffle is Durstenfeld's Fisher–Yates,
 * i = n-1 down to 1, swapping perm[i] with perm[j], j uniform in [0, i] by rejection
 * sampling. The same (@n, @seed) gives the same order on every platform.
 *
 * Returns: (transfer full) (array length=n): the permutation, free with g_free(); %NULL
 *   when @n is 0
 */
guint *
bl_windows_eval_order (guint   n,
                       guint64 seed)
{
  guint64 state = seed;
  guint *perm;

  if (n == 0)
    return NULL;

  perm = g_new (guint, n);
  for (guint i = 0; i < n; i++)
    perm[i] = i;
  for (guint i = n - 1; i > 0; i--)
    {
      guint j = (guint) uniform_below (&state, (guint64) i + 1);
      guint t = perm[i];

      perm[i] = perm[j];
      perm[j] = t;
    }
  return perm;
}
