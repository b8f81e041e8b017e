#!/usr/bin/env bash
# GPU figures (issue 7) in one call on the GPU machine, with the same-run CPU
# baseline beside each.
#
# Here, on a machine with Rust:      benches/gpu.sh build
#   builds the release binary into gpu-run/ (stripped; git-ignored), prepares
#   .gl/ (the Vulkan loader: ../shared/gpu/prepare.sh) and prints what to run.
# There, on the GPU machine (no Rust, no network), with .gl and gpu-run carried:
#   source .gl/env.sh && benches/gpu.sh run [TRANSACTIONS]     (default 10^7)
#   lists the adapters, generates a chain on all cores, then measures
#   `vigil bench --backend gpu` (each stage, GPU signatures against all CPU
#   cores) and `vigil verify` with --backend cpu, gpu and auto on that chain;
#   prints a table last. Also works on lavapipe (slowly: use ~2000 tx).
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
  vigil=$PWD/gpu-run/vigil
  [ -x "$vigil" ] || { echo "no gpu-run/vigil: run 'benches/gpu.sh build' on the development machine" >&2; exit 2; }
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  echo "== adapters"
  "$vigil" devices
  echo "== CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) threads"
  blocks=$(( txs / 200 )); [ "$blocks" -ge 1 ] || blocks=1
  per=$(( txs / blocks ))
  echo "== generating $((blocks * per)) transactions"
  "$vigil" gen "$work/chain" --seed 7 --blocks "$blocks" --txs-per-block "$per" --senders 1000 \
    --payload 100..300 --segment-size 256MiB >/dev/null
  echo "== vigil bench --backend gpu"
  bench_txs=$(( txs < 200000 ? txs : 200000 ))
  "$vigil" bench --backend gpu --txs "$bench_txs" --seconds 2 | tee "$work/bench.txt"
  for backend in cpu gpu auto; do
    echo "== vigil verify --backend $backend"
    "$vigil" verify --json --backend "$backend" "$work/chain" > "$work/$backend.json" 2> "$work/$backend.err" || true
    tail -1 "$work/$backend.json"
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
  ;;
*)
  echo "usage: benches/gpu.sh build | run [TRANSACTIONS]" >&2
  exit 2
  ;;
esac
