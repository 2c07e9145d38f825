#!/usr/bin/env bash
# bitlens-cli allocate, export, sweep and merge on stories260k: a sweep split into 4 shards and
# merged equals the unsharded sweep point for point; a re-run resumes; every export target
# writes a file its reader accepts (GGUF by tools/read-gguf). TAP output for `meson test`.
#
# usage: test-sweep.sh BITLENS_CLI SOURCE_DIR
set -u

cli=$1
src=$2
shared=${BITLENS_SHARED_DIR:-}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export XDG_DATA_HOME="$tmp/xdg"

n=0
fail=0
ok () { n=$((n + 1)); echo "ok $n - $1"; }
not_ok () { n=$((n + 1)); fail=$((fail + 1)); echo "not ok $n - $1"; shift; for l in "$@"; do echo "#   $l"; done; }
check () { local name=$1; shift; if "$@" >"$tmp/out" 2>"$tmp/err"; then ok "$name"; else not_ok "$name" "$(head -c 800 "$tmp/err")"; fi; }

run_cli () { "$cli" "$@" >"$tmp/out" 2>"$tmp/err"; }

# usage errors need no model
run_cli sweep --menu int4:g32; [ $? -eq 2 ] && ok "sweep without --budgets is a usage error" || not_ok "sweep usage" "$(cat "$tmp/err")"
run_cli sweep --menu int4:g32 --budgets 4 --out "$tmp/x.db" --shard 4/4; [ $? -eq 2 ] && ok "shard 4/4 is a usage error" || not_ok "shard usage" "$(cat "$tmp/err")"
run_cli merge --out "$tmp/m.db"; [ $? -eq 2 ] && ok "merge without inputs is a usage error" || not_ok "merge usage" "$(cat "$tmp/err")"
run_cli scaling sun --N 1e9 --D 1e11 --E 2 --M 1 --B 128
grep -q 'critical data size 3.928e+11 tokens' "$tmp/out" && ok "scaling sun: D_crit of E2M1 at N=1e9, B=128 is 0.393T" \
  || not_ok "scaling sun" "$(cat "$tmp/out")"

if [ -z "$shared" ] || [ ! -d "$shared/models/stories260k" ]; then
  echo "ok $((n + 1)) - sweep and export on stories260k # SKIP ../shared is absent"
  echo "1..$((n + 1))"
  exit 0
fi
model=$shared/models/stories260k
menu=int3:g64,int4:g64,int8:g64
common=(--menu "$menu" --windows 4 --ctx 128 --eval-windows 4 --eval-ctx 128 -j 1 --db "$tmp/store.db")

check "unsharded sweep" "$cli" sweep "$model" "${common[@]}" --budgets 3.5,4,5 --out "$tmp/whole.db"
for i in 0 1 2 3; do
  check "shard $i/4" "$cli" sweep "$model" "${common[@]}" --budgets 3.5,4,5 --out "$tmp/shard$i.db" --shard "$i/4"
done
check "merge 4 shards" "$cli" merge --out "$tmp/merged.db" "$tmp"/shard0.db "$tmp"/shard1.db "$tmp"/shard2.db "$tmp"/shard3.db
grep -q '6 points from 4 files' "$tmp/out" && ok "the merge holds all 6 points" || not_ok "merge count" "$(cat "$tmp/out")"
# merge refuses points that disagree; merging with the unsharded file proves every number equal
check "merged shards equal the unsharded sweep" "$cli" merge -q --out "$tmp/both.db" "$tmp/merged.db" "$tmp/whole.db"
run_cli sweep "$model" "${common[@]}" --budgets 3.5,4,5 --out "$tmp/whole.db"
[ "$(grep -c 'in the file already' "$tmp/err")" -eq 6 ] && ok "a re-run resumes: all 6 points skipped" || not_ok "resume" "$(cat "$tmp/err")"
run_cli sweep "$model" --menu int4:g64 --windows 4 --ctx 128 -j 1 --db "$tmp/store.db" --budgets 4 --out "$tmp/whole.db"
[ $? -eq 1 ] && grep -q 'belongs to another sweep' "$tmp/err" && ok "a file of another sweep is refused" \
  || not_ok "other sweep" "$(cat "$tmp/err")"

run_cli scaling fit --model power-law "$tmp/whole.db"
[ $? -eq 0 ] && grep -q '^allocated  *3 points, centre' "$tmp/out" && grep -q '^uniform (every format)  *3 points' "$tmp/out" \
  && ok "scaling fit: the allocated plans and the pooled uniform plans each make a curve" || not_ok "scaling fit" "$(cat "$tmp/out" "$tmp/err")"

check "allocate at 5 bits" "$cli" allocate "$model" --menu int4:g32:q4_0,int8:g32 --bits 5 --windows 4 --ctx 128 -j 1 \
  --db "$tmp/store.db" --out "$tmp/plan.json"
grep -q 'method kl: 4.99' "$tmp/out" && ok "the allocation meets the budget" || not_ok "budget" "$(tail -3 "$tmp/out")"
for t in plan-json compressed-tensors modelopt llama-cpp; do
  run_cli export "$model" --plan "$tmp/plan.json" --to "$t" --out "$tmp/out.$t"
  if [ $? -eq 0 ] || { [ "$t" = modelopt ] && grep -q 'no quant_algo' "$tmp/err"; }; then ok "export $t"; else not_ok "export $t" "$(cat "$tmp/err")"; fi
done
check "exported plan resolves" "$cli" export "$model" --plan "$tmp/out.plan-json" --to plan-json --out "$tmp/again.json"
cmp -s "$tmp/out.plan-json" "$tmp/again.json" && ok "plan-json is a fixed point" || not_ok "plan-json fixed point"
grep -q '"quant_method" : "compressed-tensors"' "$tmp/out.compressed-tensors" && ok "compressed-tensors config" \
  || not_ok "compressed-tensors" "$(head -c 400 "$tmp/out.compressed-tensors")"
grep -q "ffn_down.*=f16" "$tmp/out.llama-cpp" && ok "llama.cpp: 172-wide ffn_down stays f16" || not_ok "llama-cpp" "$(cat "$tmp/out.llama-cpp")"
check "export packed" "$cli" export "$model" --plan "$tmp/plan.json" --to packed --out "$tmp/packed"
check "export gguf" "$cli" export "$model" --plan "$tmp/plan.json" --to gguf --out "$tmp/m.gguf"
if [ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import numpy' 2>/dev/null; then
  check "tools/read-gguf reads the export" /usr/bin/python3 "$src/tools/read-gguf" "$tmp/m.gguf"
  grep -q '"q4_0"' "$tmp/out" && grep -q '"tokenizer.ggml.tokens"' "$tmp/out" && ok "GGUF holds q4_0 tensors and the vocabulary" \
    || not_ok "gguf content" "$(head -c 400 "$tmp/out")"
fi

echo "1..$n"
[ "$fail" -eq 0 ]
