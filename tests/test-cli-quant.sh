#!/usr/bin/env bash
# CLI tests of quantized evaluation: `bitlens-cli plan` and `bitlens-cli eval` with a plan, run
# on the real binary. The interrupted-eval case sends SIGINT to the running process and checks
# that the store is consistent and that a rerun reuses the cached baseline. TAP for meson test.
#
# usage: test-cli-quant.sh BITLENS_CLI
set -u

cli=$1
shared=${BITLENS_SHARED_DIR:-}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export XDG_DATA_HOME="$tmp/xdg"

n=0
ok () { n=$((n + 1)); echo "ok $n - $1"; }
not_ok () { n=$((n + 1)); echo "not ok $n - $1"; shift; for l in "$@"; do echo "#   $l"; done; }
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

# expect_error NAME PATTERN CMD...: exit 1 and one "bitlens-cli: error:" line matching PATTERN
expect_error () {
  local name=$1 pattern=$2
  shift 2
  run "$name" 1 "$@" || return
  if [ "$(grep -c '^bitlens-cli: error: ' "$tmp/err")" -ne 1 ]; then
    not_ok "$name" "wanted one error line" "stderr: $err"
  elif ! grep -qE "$pattern" "$tmp/err"; then
    not_ok "$name" "error does not match /$pattern/" "stderr: $err"
  else
    ok "$name: $(grep '^bitlens-cli: error: ' "$tmp/err" | cut -c1-160)"
  fi
}

# json_get FILE KEY: a top-level number or string of `eval --json` output
json_get () {
  /usr/bin/python3 -c 'import json,sys; v=json.load(open(sys.argv[1])).get(sys.argv[2]); print("null" if v is None else v)' "$1" "$2"
}

run "plan --list-algorithms" 0 "$cli" plan --list-algorithms \
  && { echo "$out" | grep -q gptq && ok "plan --list-algorithms lists gptq" || not_ok "plan --list-algorithms lists gptq" "$out"; }
run "plan without a plan is a usage error" 2 "$cli" plan && ok "plan without --w or --plan is a usage error"
run "--plan with --w is a usage error" 2 "$cli" eval --plan "$tmp/p.json" --w int4 \
  && ok "--plan and --w together are a usage error"

if [ -z "$shared" ] || [ ! -d "$shared/models/stories260k" ]; then
  skip "tests on the shared models" "../shared is absent (BITLENS_SHARED_DIR=$shared)"
  echo "1..$n"
  exit 0
fi

s260=$shared/models/stories260k
wiki=$shared/datasets/wikitext-2-raw-v1/wiki.test.raw
valid=$shared/datasets/wikitext-2-v1/wiki.valid.tokens
db=$tmp/store.db

# plan: shorthands → file → eval --plan reads it back
if run "plan writes a file" 0 "$cli" plan "$s260" --w int4:g32 --a int8:token --skip 'model.layers.0.*' --out "$tmp/p.json"; then
  if echo "$out" | grep -qE '^model.layers.0.mlp.down_proj.weight +none +none .*skip\[0\]' \
     && echo "$out" | grep -qE '^model.layers.1.mlp.down_proj.weight +int4:g32 +int8:token +rtn +4.5581' \
     && echo "$out" | grep -qE '^lm_head.weight +none' \
     && grep -q '"version" : 1' "$tmp/p.json"; then
    ok "plan: the per-layer table (skip, defaults, lm_head in full precision) and the file"
  else
    not_ok "plan: the per-layer table and the file" "$out"
  fi
fi

cat >"$tmp/bad.json" <<'EOF'
{ "version": 1, "rules": [ { "pattern": "*.q_proj.weight", "weight": "int4:g32" },
                            { "pattern": "*.k_proj.weight", "weight": "int4:g0" } ] }
EOF
expect_error "a bad spec names its rule" 'bad.json: rules\[1\] \(“\*\.k_proj\.weight”\): weight spec' \
  "$cli" eval "$s260" --text "$wiki" --plan "$tmp/bad.json" --no-store
cat >"$tmp/nomatch.json" <<'EOF'
{ "version": 1, "rules": [ { "pattern": "model.layers.9.*", "weight": "int4:g32" } ] }
EOF
expect_error "a rule that matches no layer" 'rules\[0\] \(“model.layers.9.\*”\) matches no linear layer' \
  "$cli" plan "$s260" --plan "$tmp/nomatch.json"
expect_error "static activations need a calibration text" 'calib-text' \
  "$cli" eval "$s260" --text "$wiki" --w int8:channel --a int8:tensor --max-windows 2 --no-store

# eval --plan: ppl with CI, KL, top-1, Δp, bits/weight; the full-precision plan has KL 0
if run "eval --plan" 0 "$cli" eval "$s260" --text "$wiki" --plan "$tmp/p.json" --max-windows 3 -j 1 --db "$db"; then
  if echo "$out" | grep -qE '^perplexity +[0-9.]+, 95% CI' && echo "$out" | grep -qE '^KL +0\.[0-9]+ nats' \
     && echo "$out" | grep -qE '^top-1 +[0-9.]+% agreement' && echo "$out" | grep -qE '^Δp ' \
     && echo "$out" | grep -qE '^bits/weight +[0-9.]+ \(linear layers\)'; then
    ok "eval --plan prints ppl with CI, KL, top-1, Δp and bits/weight"
  else
    not_ok "eval --plan prints ppl with CI, KL, top-1, Δp and bits/weight" "$out"
  fi
fi
if run "eval full-precision plan" 0 "$cli" eval "$s260" --text "$wiki" --w none --max-windows 3 -j 1 --db "$db" --json; then
  echo "$out" >"$tmp/fp.json"
  if [ "$(json_get "$tmp/fp.json" kl)" = "0.0" ] && [ "$(json_get "$tmp/fp.json" top1)" = "1.0" ] \
     && [ "$(json_get "$tmp/fp.json" delta_p)" = "0.0" ] \
     && [ "$(json_get "$tmp/fp.json" baseline_windows_cached)" = "3" ]; then
    ok "the full-precision plan has KL exactly 0, top-1 1, Δp 0, from the cached baseline"
  else
    not_ok "the full-precision plan has KL exactly 0" "$out"
  fi
fi
if run "eval W8A8 static with calibration" 0 "$cli" eval "$s260" --text "$wiki" --w int8:channel --a int8:tensor \
     --calib-text "$valid" --calib-windows 4 --max-windows 2 -j 1 --db "$db" --json; then
  echo "$out" >"$tmp/w8a8.json"
  kl=$(json_get "$tmp/w8a8.json" kl)
  if /usr/bin/python3 -c "import sys; k=float(sys.argv[1]); sys.exit(0 if 0 < k < 0.1 else 1)" "$kl" \
     && grep -q '"calibration"' "$tmp/w8a8.json"; then
    ok "W8A8 with static activation ranges from a calibration text: KL $kl"
  else
    not_ok "W8A8 with static activation ranges" "$out"
  fi
fi

# SIGINT: the run is recorded as cancelled, nothing is left 'running', and a rerun with the
# same arguments reuses the baselines the interrupted run cached.
args=(eval "$s260" --text "$wiki" --w int4:g32 --a int8:token --kv int8:g8 --max-windows 48 -j 1 --db "$db")
"$cli" "${args[@]}" >"$tmp/int.out" 2>"$tmp/int.err" &
pid=$!
for _ in $(seq 1 600); do
  grep -q '^window 3/48' "$tmp/int.err" 2>/dev/null && break
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.05
done
kill -INT "$pid" 2>/dev/null
wait "$pid"
status=$?
done_before=$(grep -c '^window ' "$tmp/int.err")
if [ "$status" -eq 130 ] && grep -q 'cancelling' "$tmp/int.err" && [ "$done_before" -ge 3 ] && [ "$done_before" -lt 48 ]; then
  ok "SIGINT cancels the eval after $done_before windows (exit 130)"
else
  not_ok "SIGINT cancels the eval" "status $status, $done_before windows" "$(tail -5 "$tmp/int.err")"
fi
if ! command -v sqlite3 >/dev/null; then
  skip "the store is consistent after SIGINT" "the sqlite3 shell is not installed"
else
  states=$(sqlite3 "$db" "SELECT status || ':' || n_windows_done FROM runs ORDER BY id DESC LIMIT 1")
  running=$(sqlite3 "$db" "SELECT count (*) FROM runs WHERE status = 'running'")
  kl_rows=$(sqlite3 "$db" "SELECT count (*) FROM run_kl_windows WHERE run_id = (SELECT max (id) FROM runs)")
  integrity=$(sqlite3 "$db" "PRAGMA integrity_check")
  if [ "$states" = "cancelled:$done_before" ] && [ "$running" = "0" ] && [ "$kl_rows" = "$done_before" ] \
     && [ "$integrity" = "ok" ]; then
    ok "the store is consistent: the run is 'cancelled' with $done_before windows and their KL rows"
  else
    not_ok "the store is consistent after SIGINT" "last run $states, running $running, kl rows $kl_rows, integrity $integrity"
  fi
fi
if run "rerun after SIGINT" 0 "$cli" "${args[@]}" --json; then
  echo "$out" >"$tmp/rerun.json"
  cached=$(json_get "$tmp/rerun.json" baseline_windows_cached)
  computed=$(json_get "$tmp/rerun.json" baseline_windows_computed)
  if [ "$cached" -ge "$done_before" ] && [ $((cached + computed)) -eq 48 ]; then
    ok "the rerun reuses $cached cached baseline windows and computes $computed"
  else
    not_ok "the rerun reuses the cached baseline" "cached $cached, computed $computed, before $done_before"
  fi
  if run "third run" 0 "$cli" "${args[@]}" --json; then
    echo "$out" >"$tmp/third.json"
    if [ "$(json_get "$tmp/third.json" baseline_windows_cached)" = "48" ] \
       && [ "$(json_get "$tmp/third.json" kl)" = "$(json_get "$tmp/rerun.json" kl)" ]; then
      ok "a third run reads every baseline window back and gets the same KL"
    else
      not_ok "a third run reads every baseline window back" "$out"
    fi
  fi
fi

echo "1..$n"
