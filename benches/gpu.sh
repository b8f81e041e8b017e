#!/usr/bin/env bash
# GPU figures (issue 7) in one call on the GPU machine, with the same-run CPU
# baseline beside each.
#
# Here, on a machine with Rust:      benches/gpu.sh build
#   builds the release binary into gpu-run/ (stripped; git-ignored), prepares
#   .gl/ (the Vulkan loader: ../shared/gpu/prepare.sh) and prints what to run.
#   ../shared/gpu/ is the developers' recipe for the lent GPU machine, beside
#   the checkout and not part of the repository: only this developer-only
#   script uses it; no test, CI step or build reads ../shared.
# There, on the GPU machine (no Rust, no network), with .gl and gpu-run carried:
#   source .gl/env.sh && benches/gpu.sh run [TRANSACTIONS]     (default 10^7)
#   lists the adapters, measures the kernels with their inputs on the device
#   (`vigil bench --kernels`: ed25519 builds and batch sizes, BLAKE3, upload
#   bandwidth, each output checked against the CPU; BUILDS, KERNEL_SIGS,
#   KERNEL_SIZES, KERNEL_MESSAGES, SECONDS_PER override its sizes), generates
#   a chain on all cores and times `vigil verify` with --backend cpu, gpu and
#   auto on it, and with --rules strict; then a chain with 1% invalid
#   signatures (INVALID_TXS, default 10^6: one bad signature in every block
#   of 100) the same three ways; prints the tables last (and copies the logs
#   to $OUT if set). Every run's summary says how many signatures the GPU
#   verified and whether a call failed (`gpu` in --json).
#   `AB_REFS="branch ..." benches/gpu.sh build` also builds those revisions;
#   `run` then measures each one's default kernel and `verify --backend gpu`
#   beside this checkout's (rows gpu-vigil-ab-*).
#   Also works on lavapipe with small sizes, e.g.
#   KERNEL_SIGS=2048 KERNEL_SIZES=1024 BUILDS=u64:128 KERNEL_MESSAGES=10000 benches/gpu.sh run 2000
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
build)
  # `vigil bench` runs `vigil-bench` from beside `vigil`: both travel.
  cargo build --release -q -p vigil -p vigil-benches --bin vigil --bin vigil-bench
  rm -rf gpu-run
  mkdir -p gpu-run
  cp target/release/vigil target/release/vigil-bench gpu-run/
  strip gpu-run/vigil gpu-run/vigil-bench
  # AB_REFS="rev ...": also build those revisions (e.g. an experiment's
  # branch), measured by `run` beside this checkout's build.
  for ref in ${AB_REFS:-}; do
    tree=$(mktemp -d)
    git worktree add -q --detach "$tree" "$ref"
    root=$PWD
    (cd "$tree" && CARGO_TARGET_DIR="$root/target" cargo build --release -q -p vigil)
    cp target/release/vigil "gpu-run/vigil-ab-${ref//\//_}"
    strip "gpu-run/vigil-ab-${ref//\//_}"
    git worktree remove --force "$tree"
  done
  # target/ holds this checkout's build again.
  [ -z "${AB_REFS:-}" ] || cargo build --release -q -p vigil
  # Developer-only: the device recipe in ../shared/gpu (outside the repository).
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
  # Builds of other revisions (`AB_REFS` at build time): the default kernel
  # build only, same sizes, right after this checkout's.
  for ab in gpu-run/vigil-ab-*; do
    [ -x "$ab" ] || continue
    echo "== A/B: $(basename "$ab") (default kernel build)" | tee -a "$work/kernels.txt"
    "$ab" bench --backend gpu --kernels --seconds "${SECONDS_PER:-1}" \
      --kernel-sigs "${KERNEL_SIGS:-1048576}" --kernel-messages 1000 \
      | grep -E "^(ed25519|signatures)" | tee -a "$work/kernels.txt" \
      || echo "A/B KERNEL BENCH FAILED" | tee -a "$work/kernels.txt"
  done
  blocks=$(( txs / 200 )); [ "$blocks" -ge 1 ] || blocks=1
  per=$(( txs / blocks ))
  stamp "generating $((blocks * per)) transactions"
  "$vigil" gen "$work/chain" --seed 7 --blocks "$blocks" --txs-per-block "$per" --senders 1000 \
    --payload 100..300 --segment-size 256MiB >/dev/null
  stamp "generated: $(du -sh "$work/chain" | cut -f1)"
  # verify_as NAME CHAIN ARGS...: one timed `vigil verify --json` run.
  verify_as() {
    local name=$1 chain=$2
    shift 2
    stamp "vigil verify $* ($name)"
    VIGIL_STAGE_TIMES=1 "$vigil" verify --json "$@" "$chain" > "$work/$name.json" 2> "$work/$name.err" || true
    tail -1 "$work/$name.json"
    grep -E "busy seconds|GPU signature calls|self-test|failed|lost" "$work/$name.err" || true
  }
  for backend in cpu gpu auto; do
    verify_as "$backend" "$work/chain" --backend "$backend"
  done
  for backend in cpu gpu auto; do
    verify_as "strict-$backend" "$work/chain" --backend "$backend" --rules strict
  done
  # 1% invalid: blocks of 100 transactions, one signature flipped in each.
  bad=$(( ${INVALID_TXS:-1000000} / 100 )); [ "$bad" -ge 1 ] || bad=1
  stamp "generating $((bad * 100)) transactions, 1% with an invalid signature"
  seq 0 $((bad - 1)) | sed 's/^/--fault=tx_signature@/' > "$work/faults.args"
  xargs -a "$work/faults.args" "$vigil" gen "$work/invalid" --seed 8 --blocks "$bad" --txs-per-block 100 \
    --senders 1000 --payload 100..300 --segment-size 256MiB >/dev/null
  for backend in cpu gpu auto; do
    verify_as "invalid-$backend" "$work/invalid" --backend "$backend"
  done
  for ab in gpu-run/vigil-ab-*; do
    [ -x "$ab" ] || continue
    name=$(basename "$ab")
    stamp "$name verify --backend gpu"
    VIGIL_STAGE_TIMES=1 "$ab" verify --json --backend gpu "$work/chain" \
      > "$work/gpu-$name.json" 2> "$work/gpu-$name.err" || true
    tail -1 "$work/gpu-$name.json"
    grep -E "busy seconds|GPU signature calls" "$work/gpu-$name.err" || true
  done
  echo
  python3 - "$work" <<'PY'
import json, sys
work = sys.argv[1]
rows = {}
import glob, os
abs_ = sorted(os.path.basename(f)[:-5] for f in glob.glob(f"{work}/gpu-vigil-ab-*.json"))
def load(name):
    try:
        return json.loads(open(f"{work}/{name}.json").read().splitlines()[-1])
    except Exception:
        return None
# (title, [(label, run name)]): each table's rows against its own --backend cpu row.
tables = [
    ("zip215, valid chain", [(f"--backend {b}", b) for b in ("cpu", "gpu", "auto")]
        + [(f"{b[4:]} --backend gpu", b) for b in abs_]),
    ("--rules strict, same chain", [(f"--backend {b}", f"strict-{b}") for b in ("cpu", "gpu", "auto")]),
    ("zip215, 1% invalid signatures", [(f"--backend {b}", f"invalid-{b}") for b in ("cpu", "gpu", "auto")]),
]
w = 30
for title, rows in tables:
    runs = [(label, load(name)) for label, name in rows]
    base = runs[0][1]
    print(f"{'vigil verify: ' + title:<{w + 24}}")
    print(f"{'':<{w}} {'seconds':>9} {'tx/s':>12} {'vs cpu':>8}  {'GPU sigs':>10} {'failed':>6}  verdict")
    for label, r in runs:
        if r is None:
            print(f"{label:<{w}} {'failed':>9}"); continue
        tps = r["transactions"] / r["seconds"]
        ratio = base["seconds"] / r["seconds"] if base else float("nan")
        g = r.get("gpu") or {}
        print(f"{label:<{w}} {r['seconds']:>9.2f} {tps:>12.0f} {ratio:>7.2f}x  {g.get('signatures', 0):>10} "
              f"{g.get('failures', 0):>6}  {r['verdict']} ({r['invalid_blocks']} invalid blocks)")
    seen = {(r["verdict"], r["invalid_blocks"]) for _, r in runs if r}
    print("verdicts agree" if len(seen) == 1 else f"VERDICTS DIFFER: {seen}")
    print()
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
