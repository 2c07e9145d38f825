/* bl-protocol.h: evaluation protocols that turn a token id stream into scored windows
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * The table below is the README's protocol table (peers.md §4.1). N is the number of ids of
 * the whole text, tokenized once, with BOS at its start when the tokenizer adds one.
 * A window's ids are ids[start .. start+length); position j of a window predicts the id at
 * position j from positions 0..j-1, so position 0 is never a target.
 *
 * | protocol    | text (WikiText-2 raw)                           | windows                                                                 | BOS                                                  | scored positions j of a window             |
 * |-------------|-------------------------------------------------|-------------------------------------------------------------------------|------------------------------------------------------|--------------------------------------------|
 * | `gptq`      | HF rows joined with `"\n\n"` (GPTQ `datautils`) | non-overlapping, length ctx, N/ctx of them; the remainder is dropped   | only once, at the start of the text (first window)   | 1 .. ctx-1 (ctx-1 per window)              |
 * | `hf-stride` | HF rows joined with `"\n\n"` (HF ppl docs)      | for begin in 0, s, 2s, …: [begin, min(begin+ctx, N)), stop at end == N | only once, at the start of the text (first window)   | the ids not scored by the previous window, never j = 0 |
 * | `llamacpp`  | `wiki.test.raw` as-is (llama.cpp perplexity)    | non-overlapping, length ctx, N/ctx of them; the remainder is dropped   | the first id of every window is replaced by BOS (when the tokenizer adds BOS) | ctx/2+1 .. ctx-1 (ctx-ctx/2-1 per window: 255 at ctx 512) |
 *
 * Text: see bl_text_source_get_protocol_text() in datasets/ for the exact string each protocol
 * tokenizes. Perplexity is exp(Σ nll / Σ scored tokens) over all scored positions of all
 * windows; bl-ppl.h gives the confidence interval.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/**
 * BlProtocol:
 * @BL_PROTOCOL_GPTQ: GPTQ's wikitext2 evaluation (`datautils.get_wikitext2` + `llama_eval`):
 *   non-overlapping windows of ctx ids, remainder dropped, every position but the first scored.
 * @BL_PROTOCOL_HF_STRIDE: the Hugging Face "Perplexity of fixed-length models" sliding window
 *   with a stride; each window scores only the ids the previous window did not reach.
 * @BL_PROTOCOL_LLAMACPP: llama.cpp `perplexity`: non-overlapping chunks of ctx ids, BOS put
 *   in place of each chunk's first id, only the second half of each chunk scored.
 *
 * An evaluation protocol. Every stored number carries the protocol it was measured under,
 * because the three give different perplexities on the same model and text.
 */
typedef enum
{
  BL_PROTOCOL_GPTQ,
  BL_PROTOCOL_HF_STRIDE,
  BL_PROTOCOL_LLAMACPP,
} BlProtocol;

/**
 * BlWindow:
 * @start: index of the window's first id in the whole id stream
 * @length: number of ids in the window (the model's input length)
 * @first_target: first scored window position; positions @first_target .. @length-1 are
 *   scored, so the window scores @length - @first_target ids. Always ≥ 1 and < @length.
 * @bos_first: when TRUE, the id at window position 0 is replaced by BOS before the forward
 *   pass (llama.cpp). The replaced id is never a target, since position 0 is never scored.
 *
 * One forward pass of the evaluation. Windows are plain values in a #GArray.
 */
typedef struct
{
  gint64 start;
  gint32 length;
  gint32 first_target;
  gboolean bos_first;
} BlWindow;

const char *bl_protocol_to_string    (BlProtocol   protocol);
gboolean    bl_protocol_from_string  (const char  *name,
                                      BlProtocol  *out_protocol);

GArray     *bl_protocol_make_windows (BlProtocol   protocol,
                                      gint64       n_ids,
                                      int          ctx,
                                      int          stride,
                                      gboolean     add_bos,
                                      GError     **error);

void        bl_windows_select        (GArray      *windows,
                                      int          max_windows);
guint      *bl_windows_eval_order    (guint        n,
                                      guint64      seed);

G_END_DECLS
