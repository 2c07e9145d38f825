#!/usr/bin/env bash
# bitlens-cli on GGUF files written by its own exporter: info names the stored ggml types and
# the tokenizer's source; eval of an f32 GGUF of stories260k gives the perplexity of the
# Hugging Face directory exactly, and a q4_0 one a finite perplexity; a GGUF without tokenizer
# metadata and a truncated one are clear errors. TAP output for `meson test`.
#
# usage: test-cli-gguf.sh BITLENS_CLI SOURCE_DIR
set -u

cli=$1
src=$2
shared=${BITLENS_SHARED_DIR:-}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export XDG_DATA_HOME="$tmp/xdg"

n=0
ok () { n=$((n + 1)); echo "ok $n - $1"; }
not_ok () { n=$((n + 1)); echo "not ok $n - $1"; shift; for l in "$@"; do echo "#   $l"; done; }
run_cli () { "$cli" "$@" >"$tmp/out" 2>"$tmp/err"; }

echo '{"version": 1}' >"$tmp/none.json"
echo '{"version": 1, "defaults": {"weight": "int4:g32:q4_0"}}' >"$tmp/q4_0.json"

# The committed tiny-llama fixture has no tokenizer.json, so its GGUF has no tokenizer.
tiny=$src/tests/fixtures/tiny-llama/llama-tied-bf16
if run_cli export "$tiny" --plan "$tmp/q4_0.json" --to gguf --out "$tmp/tiny.gguf" \
   && run_cli info "$tmp/tiny.gguf"; then
  if grep -q 'stored as     GGUF: f32 ×5, f16 ×1, q4_0 ×14 (dequantized to F32)' "$tmp/out" \
     && grep -q 'tokenizer     none (none: the file has no tokenizer.ggml.model' "$tmp/out"; then
    ok "info on a q4_0 GGUF names its types and the missing tokenizer"
  else
    not_ok "info on a q4_0 GGUF" "$(cat "$tmp/out")"
  fi
else
  not_ok "export and info of the tiny fixture as GGUF" "$(cat "$tmp/err")"
fi

run_cli eval "$tmp/tiny.gguf" --text "$src/tests/fixtures/datasets/wiki.mini.raw" --no-store
if [ $? -eq 1 ] && grep -q "tiny.gguf: the model has no tokenizer (none: the file has no tokenizer.ggml.model" "$tmp/err"; then
  ok "eval of a GGUF without a tokenizer says why"
else
  not_ok "eval of a GGUF without a tokenizer" "$(cat "$tmp/err")"
fi

head -c 4000 "$tmp/tiny.gguf" >"$tmp/truncated.gguf"
run_cli info "$tmp/truncated.gguf"
if [ $? -eq 1 ] && grep -q "truncated.gguf: tensor “.*” needs bytes .* but the file ends at 4000" "$tmp/err"; then
  ok "a truncated GGUF is a clear error"
else
  not_ok "a truncated GGUF" "$(cat "$tmp/err")"
fi

if [ -z "$shared" ] || [ ! -d "$shared/models/stories260k" ]; then
  echo "ok $((n + 1)) - stories260k as GGUF # SKIP ../shared is absent"
  echo "1..$((n + 1))"
  exit 0
fi
model=$shared/models/stories260k
wiki=$shared/datasets/wikitext-2-raw-v1/wiki.test.raw

if run_cli export "$model" --plan "$tmp/none.json" --to gguf --unquantized-type f32 --out "$tmp/s-f32.gguf" \
   && run_cli export "$model" --plan "$tmp/q4_0.json" --to gguf --out "$tmp/s-q4_0.gguf"; then
  ok "export stories260k as f32 and q4_0 GGUF"
else
  not_ok "export stories260k as GGUF" "$(cat "$tmp/err")"
fi

if run_cli info "$tmp/s-f32.gguf"; then
  if grep -q 'parameters    260032' "$tmp/out" && grep -q 'stored as     GGUF: f32 ×47' "$tmp/out" \
     && grep -q 'tokenizer     sentencepiece BPE, 512 tokens, BOS 1 (added)' "$tmp/out" \
     && grep -q 'from tokenizer.ggml.\* of the GGUF file' "$tmp/out"; then
    ok "info on the f32 GGUF: parameters, types and the rebuilt tokenizer"
  else
    not_ok "info on the f32 GGUF" "$(cat "$tmp/out")"
  fi
else
  not_ok "info on the f32 GGUF" "$(cat "$tmp/err")"
fi

if run_cli info --json "$tmp/s-q4_0.gguf" && grep -q '"storage" : "GGUF: f32 ×11, f16 ×6, q4_0 ×30 (dequantized to F32)"' "$tmp/out"; then
  ok "info --json on the q4_0 GGUF"
else
  not_ok "info --json on the q4_0 GGUF" "$(cat "$tmp/out" "$tmp/err")"
fi

ppl () { sed -n 's/^perplexity *\([0-9.]*\).*/\1/p' "$tmp/out"; }
eval_args=(--text "$wiki" --protocol gptq --ctx 256 --max-windows 4 --no-store)
if run_cli eval "$model" "${eval_args[@]}"; then
  hf=$(ppl)
  if run_cli eval "$tmp/s-f32.gguf" "${eval_args[@]}" && [ -n "$hf" ] && [ "$(ppl)" = "$hf" ]; then
    ok "eval of the f32 GGUF gives the directory's perplexity ($hf)"
  else
    not_ok "eval of the f32 GGUF" "directory: $hf" "$(cat "$tmp/out" "$tmp/err")"
  fi
  if run_cli eval "$tmp/s-q4_0.gguf" "${eval_args[@]}" && grep -q 'windows        4 ' "$tmp/out" \
     && [ -n "$(ppl)" ]; then
    ok "eval of the q4_0 GGUF: perplexity $(ppl) over 4 windows"
  else
    not_ok "eval of the q4_0 GGUF" "$(cat "$tmp/out" "$tmp/err")"
  fi
else
  not_ok "eval of stories260k" "$(cat "$tmp/err")"
fi

echo "1..$n"
