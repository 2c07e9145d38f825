#!/usr/bin/env bash
# CLI tests of `bitlens-cli zeroshot` and `bitlens-cli sensitivity`: the real binary on the
# bundled demo model and the task fixtures of tests/fixtures/mc/. TAP output for `meson test`.
#
# usage: test-cli-sensitivity.sh BITLENS_CLI
set -u

cli=$1
src=${G_TEST_SRCDIR:?G_TEST_SRCDIR must point at tests/}
demo="$src/../data/models/bitlens-demo"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export XDG_DATA_HOME="$tmp/xdg"
db="$tmp/store.db"

n=0
ok () { n=$((n + 1)); echo "ok $n - $1"; }
not_ok () { n=$((n + 1)); echo "not ok $n - $1"; shift; for l in "$@"; do echo "#   $l"; done; }

# check NAME WANTED_STATUS PATTERN CMD...: the exit status, and PATTERN (ERE) in stdout+stderr
check () {
  local name=$1 want=$2 pattern=$3
  shift 3
  "$@" >"$tmp/out" 2>"$tmp/err"
  local status=$?
  if [ "$status" -ne "$want" ]; then
    not_ok "$name" "exit status $status, wanted $want" "stderr: $(head -c 600 "$tmp/err")"
  elif ! cat "$tmp/out" "$tmp/err" | grep -qE -- "$pattern"; then
    not_ok "$name" "no /$pattern/ in the output" "stdout: $(head -c 600 "$tmp/out")" \
      "stderr: $(head -c 600 "$tmp/err")"
  else
    ok "$name"
  fi
}

# has NAME PATTERN: PATTERN (ERE) in the stdout of the last check
has () {
  if grep -qE -- "$2" "$tmp/out"; then ok "$1"; else not_ok "$1" "no /$2/ in: $(head -c 600 "$tmp/out")"; fi
}

check "zeroshot --help" 0 "--task" "$cli" zeroshot --help
check "zeroshot needs --task" 2 "--task is required" "$cli" zeroshot "$demo"
check "zeroshot refuses an unknown task" 2 "unknown task 'hellaswag'" \
  "$cli" zeroshot "$demo" --task hellaswag
check "zeroshot on a task file, as JSON" 0 '"acc_norm" : ' \
  "$cli" zeroshot "$demo" --task arc-easy --file "$src/fixtures/mc/arc_easy/test.icl.jsonl" \
  --json --db "$db"
has "zeroshot reports chance" '"chance" : 0.25'
has "zeroshot stores the result" '"result_id" : 1'
check "zeroshot prints the calibration metrics" 0 "Balance +[-+]" \
  "$cli" zeroshot "$demo" --task boolq --file "$src/fixtures/mc/boolq/validation.icl.jsonl" \
  --db "$db"
check "zeroshot scores a quantized plan" 0 '"weight" : "int4:g32"' \
  "$cli" zeroshot "$demo" --task piqa --file "$src/fixtures/mc/piqa/valid.jsonl" \
  --w int4:g32 --json --no-store
printf '{"query": "Question: x", "choices": ["a", "b"], "gold": 0}\n{"query": 1}\n' > "$tmp/bad.jsonl"
check "zeroshot names the file and line of a bad row" 1 "bad.jsonl:2: \"query\" is not a string" \
  "$cli" zeroshot "$demo" --task arc-easy --file "$tmp/bad.jsonl" --no-store

text="$src/fixtures/datasets/wiki.mini.raw"
check "sensitivity needs --format" 2 "--format is required" "$cli" sensitivity "$demo" --text "$text"
check "sensitivity refuses a bad format" 1 "error: " \
  "$cli" sensitivity "$demo" --format int99 --text "$text"
check "sensitivity ranks the layers and calibrates the estimator" 0 '"spearman_dppl"' \
  "$cli" sensitivity "$demo" --format int4:g32 --text "$text" --ctx 16 --windows 2 -j 1 \
  --plans 3 --json --db "$db"
has "sensitivity records the KL of the layers" '"kl" : [0-9]'
has "sensitivity compares the cheap measures with the KL" '"spearman_vs_kl"'
"$cli" sensitivity "$demo" --format int4:g32 --text "$text" --ctx 16 --windows 2 -j 1 \
  --db "$db" >"$tmp/out" 2>"$tmp/err"
if [ $? -eq 0 ] && ! grep -q '^layers ' "$tmp/err" && grep -q 'ranked by one-at-a-time KL' "$tmp/out"; then
  ok "sensitivity reads a cached format back instead of measuring it"
else
  not_ok "sensitivity reads a cached format back instead of measuring it" "stderr: $(head -c 600 "$tmp/err")"
fi

echo "1..$n"
