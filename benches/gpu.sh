#!/usr/bin/env bash
# GPU figures (issue 7) in one call on the GPU machine, with the same-run CPU
# baseline beside each.
#
# Here, on a machine with Rust:      benches/gpu.sh build
#   builds the release binary into gpu-run/ (stripped; git-ignored), prepares
#   .gl/ (the Vulkan loader: ../shared/gpu/prepare.sh) and prints what to run.
# There, on the GPU machine (no Rust, no network), with .gl and gpu-run carried:
#   source .gl/env.sh && benches/gpu.sh run [TRANSACTIONS]     (default 10^7)
#   lists the adapters, measures the kernels with their inputs on the device
#   (`vigil bench --kernels`: ed25519 builds and batch sizes, BLAKE3, upload
#   bandwidth, each output checked against the CPU; BUILDS, KERNEL_SIGS,
#   KERNEL_SIZES, KERNEL_MESSAGES, SECONDS_PER override its sizes), generates
#   a chain on all cores and times `vigil verify` with --backend cpu, gpu and
#   auto on it; prints the tables last (and copies the logs to $OUT if set).
#   Also works on lavapipe with small sizes, e.g.
#   KERNEL_SIGS=2048 KERNEL_SIZES=1024 BUILDS=u64:128 KERNEL_MESSAGES=10000 benches/gpu.sh run 2000
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
build)
  cargo build --release -q -p vigil
  mkdir -p gpu-run
  cp target/release/vigil gpu-run/vigil
  strip gpu-run/vigil
  [ -f .gl/env.sh ] || bash ../shared/gpu/prepare.sh
  echo "carry .gl and gpu-run; run: source .gl/env.sh && benches/gpu.sh run 10000000"
  ;;
run)
  txs=${2:-10000000}
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,power.draw --format=csv || true
  vigil=$PWD/gpu-run/vigil
  [ -x "$vigil" ] || { echo "no gpu-run/vigil: run 'benches/gpu.sh build' on the development machine" >&2; exit 2; }
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  echo "== adapters"
  "$vigil" devices
  echo "== CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) threads," \
    "$(grep -m1 -o -w 'avx512ifma' /proc/cpuinfo || grep -m1 -o -w 'avx2' /proc/cpuinfo || echo 'no AVX2')"
  stamp() { echo "   [$(date +%T)] $*"; }
  echo "== vigil bench --backend gpu --kernels (inputs on the device; outputs checked against the CPU)"
  kargs=(--kernel-sigs "${KERNEL_SIGS:-1048576}" --kernel-messages "${KERNEL_MESSAGES:-4000000}")
  sizes=${KERNEL_SIZES-8192,65536,262144,2097152}
  builds=${BUILDS-u64:64:checked,u32:64,u64:32,u64:128,u64:256}
  [ -n "$sizes" ] && kargs+=(--kernel-sizes "$sizes")
  [ -n "$builds" ] && kargs+=(--builds "$builds")
  "$vigil" bench --backend gpu --kernels --seconds "${SECONDS_PER:-1}" "${kargs[@]}" | tee "$work/kernels.txt" \
    || echo "KERNEL BENCH FAILED (exit $?)" | tee -a "$work/kernels.txt"
  blocks=$(( txs / 200 )); [ "$blocks" -ge 1 ] || blocks=1
  per=$(( txs / blocks ))
  stamp "generating $((blocks * per)) transactions"
  "$vigil" gen "$work/chain" --seed 7 --blocks "$blocks" --txs-per-block "$per" --senders 1000 \
    --payload 100..300 --segment-size 256MiB >/dev/null
  stamp "generated: $(du -sh "$work/chain" | cut -f1)"
  for backend in cpu gpu auto; do
    stamp "vigil verify --backend $backend"
    VIGIL_STAGE_TIMES=1 "$vigil" verify --json --backend "$backend" "$work/chain" \
      > "$work/$backend.json" 2> "$work/$backend.err" || true
    tail -1 "$work/$backend.json"
    grep -E "busy seconds|GPU signature calls" "$work/$backend.err" || true
  done
  echo
  python3 - "$work" <<'PY'
import json, sys
work = sys.argv[1]
rows = {}
for b in ["cpu", "gpu", "auto"]:
    try:
        rows[b] = json.loads(open(f"{work}/{b}.json").read().splitlines()[-1])
    except Exception as e:
        rows[b] = None
base = rows["cpu"]
print(f"{'vigil verify':<22} {'seconds':>9} {'tx/s':>12} {'vs --backend cpu':>17}  verdict")
for b, r in rows.items():
    if r is None:
        print(f"--backend {b:<12} {'failed':>9}"); continue
    tps = r["transactions"] / r["seconds"]
    ratio = base["seconds"] / r["seconds"] if base else float("nan")
    print(f"--backend {b:<12} {r['seconds']:>9.2f} {tps:>12.0f} {ratio:>16.2f}x  {r['verdict']}")
verdicts = {r["verdict"] for r in rows.values() if r}
print("verdicts agree" if len(verdicts) == 1 else f"VERDICTS DIFFER: {verdicts}")
PY
  echo
  cat "$work/kernels.txt"
  if [ -n "${OUT:-}" ]; then cp "$work"/*.txt "$work"/*.json "$work"/*.err "$OUT"/ 2>/dev/null || true; fi
  ;;
*)
  echo "usage: benches/gpu.sh build | run [TRANSACTIONS]" >&2
  exit 2
  ;;
esac
