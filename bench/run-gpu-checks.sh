#!/usr/bin/env bash
# The GPU checks of the CUDA backend (issue 7), for a machine with an NVIDIA GPU.
#
#   bench/run-gpu-checks.sh fetch     here, on a machine with apt: download the Debian
#                                     packages the build needs into .gpu-debs/ and copy the
#                                     shared test data it reads into .gpu-shared/ (both
#                                     git-ignored; carry them to the GPU machine)
#   bench/run-gpu-checks.sh build     configure build-gpu (-Dcuda=enabled) and build it
#   bench/run-gpu-checks.sh test      meson test --suite cuda, plus the engine and CLI suites
#   bench/run-gpu-checks.sh sanitize  the GPU tests under compute-sanitizer memcheck
#   bench/run-gpu-checks.sh bench     bench-cuda-gemm and bench-cuda-ppl
#   bench/run-gpu-checks.sh all       build, test, sanitize, bench
#
# Every stage appends its output to $OUT/gpu-checks.log (OUT defaults to ./gpu-checks-out)
# and ends with one "stage: ok" or "stage: FAILED" line there. A stage runs well within ten
# minutes on one H100 with 16 cores; "all" may not, so a session whose commands are limited
# to ten minutes runs build, test, sanitize and bench as separate calls (the build directory
# stays between calls on a warm machine). From the device tool, for example:
#   run(command: "bench/run-gpu-checks.sh build && bench/run-gpu-checks.sh test",
#       carry: [".gpu-debs", ".gpu-shared"])
#
# The GPU machine's image has nvcc, gcc, meson, ninja and PyTorch but maybe not GLib,
# json-glib, SQLite or OpenBLAS; when pkg-config cannot find them there, the packages from
# .gpu-debs are unpacked into a private root (never into /) and pkg-config, the compiler and
# the loader are pointed at it (BITLENS_GPU_SYSROOT=1 does so even when the system has them).
set -uo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
stage=${1:-all}
builddir=${BITLENS_GPU_BUILDDIR:-build-gpu}
OUT=${OUT:-$here/gpu-checks-out}
mkdir -p "$OUT"
log="$OUT/gpu-checks.log"

# Debian bookworm (amd64) packages: the -dev packages with the .pc files of every package the
# build asks pkg-config for (Requires.private included), their libraries, and pkg-config.
debs=(libglib2.0-0 libglib2.0-dev libjson-glib-1.0-0 libjson-glib-dev libsqlite3-0 libsqlite3-dev
      libopenblas0-pthread libopenblas-pthread-dev liblapacke liblapacke-dev libtmglib3 libgfortran5
      libquadmath0 libffi8 libffi-dev zlib1g zlib1g-dev libmount1 libmount-dev libblkid1 libblkid-dev
      libuuid1 uuid-dev libselinux1 libselinux1-dev libsepol2 libsepol-dev libpcre2-8-0 libpcre2-16-0
      libpcre2-32-0 libpcre2-posix3 libpcre2-dev pkgconf pkgconf-bin libpkgconf3)

say () { echo "run-gpu-checks: $*" | tee -a "$log"; }

fetch () {
  local exclude
  exclude=$(git rev-parse --git-path info/exclude) || return 1
  mkdir -p "$(dirname "$exclude")" .gpu-debs .gpu-shared/models .gpu-shared/datasets/wikitext-2-raw-v1
  for d in /.gpu-debs/ /.gpu-shared/ /gpu-checks-out/; do
    grep -qxF "$d" "$exclude" 2>/dev/null || echo "$d" >> "$exclude"
  done
  (cd .gpu-debs && apt-get download "${debs[@]}") || return 1
  local shared=${BITLENS_SHARED_DIR:-$here/../shared}
  cp -r "$shared/models/stories260k" "$shared/models/tinystories-656k" .gpu-shared/models/
  cp "$shared/datasets/wikitext-2-raw-v1/wiki.test.raw" .gpu-shared/datasets/wikitext-2-raw-v1/
  du -sh .gpu-debs .gpu-shared
}

# GLib & co. from the system, or from .gpu-debs unpacked into a private root
setup_deps () {
  export PATH="/usr/local/cuda/bin:$PATH"
  if [ -z "${BITLENS_GPU_SYSROOT:-}" ] && pkg-config --exists glib-2.0 gio-2.0 json-glib-1.0 sqlite3 2>/dev/null &&
     { pkg-config --exists openblas 2>/dev/null || ldconfig -p | grep -q libopenblas; }; then
    return 0
  fi
  if [ ! -d .gpu-debs ]; then
    say "GLib, json-glib, SQLite or OpenBLAS is missing and there is no .gpu-debs to unpack (run 'bench/run-gpu-checks.sh fetch' where apt works, and carry .gpu-debs)"
    return 1
  fi
  local root=/tmp/bitlens-sysroot lib=/tmp/bitlens-sysroot/usr/lib/x86_64-linux-gnu
  if [ ! -f "$root/.unpacked" ]; then
    mkdir -p "$root"
    for deb in .gpu-debs/*.deb; do dpkg-deb -x "$deb" "$root" || return 1; done
    # what the packages' maintainer scripts would have made: the OpenBLAS alternatives
    ln -sf ../openblas-pthread/pkgconfig/openblas.pc "$lib/pkgconfig/openblas.pc"
    ln -sf ../openblas-pthread/pkgconfig/lapack-openblas.pc "$lib/pkgconfig/lapack.pc"
    ln -sf ../openblas-pthread/pkgconfig/blas-openblas.pc "$lib/pkgconfig/blas.pc"
    for so in libopenblas.so libopenblas.so.0 libblas.so.3 liblapack.so.3; do
      [ -e "$lib/openblas-pthread/$so" ] && ln -sf "openblas-pthread/$so" "$lib/$so"
    done
    ln -sf openblas-pthread/cblas.h "$root/usr/include/x86_64-linux-gnu/cblas.h"
    touch "$root/.unpacked"
  fi
  export PKG_CONFIG_SYSROOT_DIR="$root"
  export PKG_CONFIG_LIBDIR="$lib/pkgconfig:$root/usr/share/pkgconfig"
  command -v pkg-config >/dev/null 2>&1 || export PATH="$PATH:$root/usr/bin"
  export LD_LIBRARY_PATH="$lib:$lib/openblas-pthread:$root/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  export LIBRARY_PATH="$lib:$lib/openblas-pthread"
  say "using the packages unpacked in $root"
}

# the tests read the shared models at <checkout>/../shared; the carried copy stands in
setup_shared () {
  if [ ! -e ../shared ] && [ -d .gpu-shared ]; then
    ln -s "$here/.gpu-shared" ../shared && say "../shared -> .gpu-shared"
  fi
}

run_stage () {
  local name=$1
  shift
  say "== $name"
  if "$@" 2>&1 | tee -a "$log"; then
    say "$name: ok"
  else
    say "$name: FAILED"
    return 1
  fi
}

do_build () {
  nvidia-smi || true
  nvcc --version
  if [ ! -f "$builddir/build.ninja" ]; then
    meson setup "$builddir" -Dgui=false -Dcuda=enabled || return 1
  fi
  ninja -C "$builddir"
}

do_test () {
  meson test -C "$builddir" --print-errorlogs --num-processes 4 --suite cuda --suite core --suite cli
}

do_sanitize () {
  # compute-sanitizer memcheck over the GPU tests: any error fails the test
  meson test -C "$builddir" --print-errorlogs --num-processes 1 --timeout-multiplier 8 \
    --wrapper "compute-sanitizer --tool memcheck --leak-check full --error-exitcode 99" \
    cuda-backend cuda-format cuda-gemm
}

do_bench () {
  "$builddir/bench/bench-cuda-gemm" | tee "$OUT/bench-cuda-gemm.txt" || return 1
  # the python that has PyTorch on the GPU machine is the one on PATH
  python3 bench/bench-cuda-ppl "$builddir/app/bitlens-cli" | tee "$OUT/bench-cuda-ppl.txt"
}

case "$stage" in
  fetch)
    fetch
    exit $?
    ;;
  build|test|sanitize|bench|all)
    setup_deps || exit 1
    setup_shared
    status=0
    for s in build test sanitize bench; do
      if [ "$stage" = all ] || [ "$stage" = "$s" ]; then
        run_stage "$s" "do_$s" || status=1
        # nothing to test without a build
        [ "$s" = build ] && [ $status -ne 0 ] && exit 1
      fi
    done
    exit $status
    ;;
  *)
    echo "usage: $0 fetch|build|test|sanitize|bench|all" >&2
    exit 2
    ;;
esac
