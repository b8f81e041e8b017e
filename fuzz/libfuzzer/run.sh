#!/usr/bin/env bash
# Coverage-guided fuzzing of vigil's input parsers with libFuzzer, on the
# stable toolchain (docs/FUZZING.md). libfuzzer-sys compiles libFuzzer
# (C++: needs g++ or clang++); the sanitizer-coverage pass that feeds it is
# switched on with stable -C flags (what cargo-fuzz does on nightly, minus
# the sanitizers that need -Z).
#
#   ./run.sh build                 build the six targets
#   ./run.sh TARGET SECONDS [ARG]  fuzz one target (frame, protocol, summary,
#                                  stitch, index, sig_line); extra args go to
#                                  libFuzzer
#   ./run.sh all SECONDS           each target in turn, SECONDS each
#   ./run.sh TARGET FILE...        replay inputs (a crash, a regression)
#
# The working corpus grows in work/TARGET (seeded from ../corpus/TARGET);
# a crashing input lands in artifacts/TARGET/. Exits non-zero on a crash.
set -euo pipefail
cd "$(dirname "$0")"
targets=(frame protocol summary stitch index sig_line)
host=$(rustc -vV | sed -n 's/^host: //p')
# An explicit --target keeps these flags off build scripts and proc macros.
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing"
bin=target/$host/release

build() { cargo build --release --locked --target "$host" --bins; }

fuzz() { # TARGET SECONDS [libFuzzer args]
  local t=$1 secs=$2
  shift 2
  mkdir -p "work/$t" "artifacts/$t"
  # Memory: a single allocation over 128 MiB or an RSS over 1 GiB is a
  # failure (inputs are a few KiB; every decoder bounds what it allocates).
  "$bin/$t" -max_total_time="$secs" -malloc_limit_mb=128 -rss_limit_mb=1024 \
    -timeout=10 -print_final_stats=1 -artifact_prefix="artifacts/$t/" "$@" "work/$t" "../corpus/$t"
}

case "${1:-}" in
  build) build ;;
  all)
    build
    for t in "${targets[@]}"; do fuzz "$t" "${2:?seconds}"; done
    ;;
  frame | protocol | summary | stitch | index | sig_line)
    build
    if [ -f "${2:-}" ]; then
      "$bin/$1" "${@:2}"
    else
      fuzz "$1" "${2:?seconds}" "${@:3}"
    fi
    ;;
  *)
    sed -n '2,/^set/p' "$0" | sed '$d' >&2
    exit 2
    ;;
esac
