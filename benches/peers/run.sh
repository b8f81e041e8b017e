#!/usr/bin/env bash
# Per-core signature rates on the same signatures: vigil against
# ed25519-simd, ed25519-zebra and ed25519-dalek. One thread, the JSON lines
# `vigil sigs` reads, reading and parsing included for everyone; the median
# of ROUNDS interleaved runs.
#
#   benches/peers/run.sh            # N=32768 ROUNDS=4
#
# ed25519-simd compiles only with AVX-512 enabled for its whole build: it is
# built here, in its own target directory, with
# RUSTFLAGS="-C target-feature=+avx512f,+avx512dq,+avx512ifma,+avx512vl,+avx512bw"
# (never the product's flags), and only on a CPU with AVX-512 IFMA; elsewhere
# its rows say SKIPPING.
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${N:-32768}
ROUNDS=${ROUNDS:-4}
DATA=${DATA:-target/peers-data}
mkdir -p "$DATA"

cargo build --release -q -p vigil -p vigil-benches --bin vigil --bin sig_jsonl
VIGIL=target/release/vigil
GEN=target/release/sig_jsonl
SIMD=""
if grep -qw avx512ifma /proc/cpuinfo && grep -qw avx512bw /proc/cpuinfo && grep -qw avx512dq /proc/cpuinfo; then
  (cd benches/peers && RUSTFLAGS="-C target-feature=+avx512f,+avx512dq,+avx512ifma,+avx512vl,+avx512bw" \
    cargo build --release -q --target x86_64-unknown-linux-gnu)
  SIMD=benches/peers/target/x86_64-unknown-linux-gnu/release/vigil-peer-simd
else
  echo "SKIPPING ed25519-simd: this CPU has no AVX-512 IFMA (it cannot run without it)" >&2
fi

echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) threads"

declare -A FILE=([distinct]="$DATA/distinct.jsonl" [64keys]="$DATA/64keys.jsonl" [1pct_invalid]="$DATA/1pct_invalid.jsonl")
[ -s "${FILE[distinct]}" ] || "$GEN" gen "${FILE[distinct]}" "$N" "$N" 0
[ -s "${FILE[64keys]}" ] || "$GEN" gen "${FILE[64keys]}" "$N" 64 0
[ -s "${FILE[1pct_invalid]}" ] || "$GEN" gen "${FILE[1pct_invalid]}" "$N" "$N" 100

# One measurement: prints signatures/s.
measure() {
  local who=$1 data=$2 file=${FILE[$2]} out
  case $who in
    vigil-zip215) out=$("$VIGIL" sigs --threads 1 "$file" || true) ;;
    vigil-strict) out=$("$VIGIL" sigs --threads 1 --rules strict "$file" || true) ;;
    vigil-verify-only) out=$("$GEN" rate vigil-verify-only "$file") ;;
    dalek-strict|zebra-batch64) out=$("$GEN" rate "$who" "$file") ;;
    simd-zip215) [ -n "$SIMD" ] || { echo -; return; }
      out=$("$SIMD" zip215 "$([ "$data" = 64keys ] && echo hot || echo none)" "$file") ;;
    simd-dalek) [ -n "$SIMD" ] || { echo -; return; }
      out=$("$SIMD" dalek "$([ "$data" = 64keys ] && echo hot || echo none)" "$file") ;;
  esac
  echo "$out" | grep -o '[0-9]* signatures/s' | head -1 | cut -d' ' -f1
}

WHO=(vigil-zip215 vigil-verify-only simd-zip215 zebra-batch64 vigil-strict simd-dalek dalek-strict)
declare -A RATES
for round in $(seq "$ROUNDS"); do
  for data in distinct 64keys 1pct_invalid; do
    for who in "${WHO[@]}"; do
      RATES[$data,$who]+="$(measure "$who" "$data") "
    done
  done
done

median() { tr ' ' '\n' | awk '/^[0-9]+$/' | sort -n | awk '{a[NR]=$1} END {if (NR==0) print "-"; else if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
k() { [ "$1" = - ] && echo - || awk -v r="$1" 'BEGIN {printf "%.1fk", r/1000}'; }
ratio() { { [ "$1" = - ] || [ "$2" = - ]; } && echo - || awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f×", a/b}'; }

echo
echo "signatures/s, one thread, $N signatures, median of $ROUNDS interleaved runs (parsing included)"
echo
echo "| data | vigil sigs zip215 | vigil zip215 verifier alone | ed25519-simd Zip215Verifier | zebra batch of 64 | vigil sigs strict | ed25519-simd DalekVerifier | dalek verify_strict | vigil/simd zip215 | vigil/zebra | vigil/simd strict | vigil/dalek strict | sigs/verifier |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
declare -A M
for data in distinct 64keys 1pct_invalid; do
  for who in "${WHO[@]}"; do M[$who]=$(echo "${RATES[$data,$who]}" | median); done
  echo "| $data | $(k "${M[vigil-zip215]}") | $(k "${M[vigil-verify-only]}") | $(k "${M[simd-zip215]}") | $(k "${M[zebra-batch64]}") | $(k "${M[vigil-strict]}") | $(k "${M[simd-dalek]}") | $(k "${M[dalek-strict]}") | $(ratio "${M[vigil-zip215]}" "${M[simd-zip215]}") | $(ratio "${M[vigil-zip215]}" "${M[zebra-batch64]}") | $(ratio "${M[vigil-strict]}" "${M[simd-dalek]}") | $(ratio "${M[vigil-strict]}" "${M[dalek-strict]}") | $(ratio "${M[vigil-zip215]}" "${M[vigil-verify-only]}") |"
  if [ "$data" = distinct ]; then VALID_RATE=${M[vigil-zip215]}; fi
done
echo
echo "1% invalid against all valid, distinct keys (vigil sigs zip215): $(ratio "${M[vigil-zip215]}" "$VALID_RATE")"
