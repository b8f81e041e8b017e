#!/usr/bin/env bash
# Scale-out figures: one `vigil verify` of a generated chain against N = 1, 2,
# 4 shard processes run at once on this machine (each with cores/N threads),
# then `vigil stitch --chain` (which re-hashes the chain); wall times, the
# stitch's own time and peak RSS, and a
# check that the stitched report equals the single run's (timing aside).
# Usage: [CHAIN=dir] benches/shards.sh [TRANSACTIONS]   (default 10^7: ~3.5 GB in $TMPDIR)
set -euo pipefail
cd "$(dirname "$0")/.."
txs=${1:-10000000}
cargo build --release -q -p vigil
vigil=$PWD/target/release/vigil
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
chain=${CHAIN:-$work/chain}
if [ ! -d "$chain" ]; then
  blocks=$(( txs / 200 ))
  "$vigil" gen "$chain" --seed 7 --blocks "$blocks" --txs-per-block 200 --senders 1000 --payload 100..300 \
    --segment-size 256MiB --fault nonce@$((blocks / 2)) --fault prev_hash@$((blocks / 4)) >/dev/null
fi
cores=$(nproc)
seconds() { python3 -c "import sys; print(f'{float(sys.argv[1]):.1f}')" "$1"; }
now() { date +%s.%N; }
strip() { python3 -c 'import json,sys
for l in sys.stdin:
    v = json.loads(l)
    for k in ("seconds", "shards", "longest_shard_seconds"): v.pop(k, None)
    print(json.dumps(v, sort_keys=True))'; }

/usr/bin/time -f "%e %M" -o "$work/single.time" "$vigil" verify --json "$chain" > "$work/single.json" || true
read -r single_s single_kb < <(tail -1 "$work/single.time")
printf "%-22s %10s %12s %14s\n" run "wall s" "vs single" "peak RSS MiB"
printf "%-22s %10s %12s %14s\n" "vigil verify" "$(seconds "$single_s")" "1.00x" "$((single_kb / 1024))"
for n in 1 2 4; do
  threads=$(( cores / n )); [ "$threads" -ge 1 ] || threads=1
  rm -f "$work"/s-*.json
  start=$(now)
  for i in $(seq 0 $((n - 1))); do
    /usr/bin/time -f "%M" -o "$work/rss-$i" "$vigil" verify "$chain" --shard "$i/$n" --threads "$threads" \
      --summary "$work/s-$i.json" 2>/dev/null &
  done
  wait
  shards_s=$(python3 -c "import sys; print($(now) - $start)")
  rss=$(for f in "$work"/rss-*; do tail -1 "$f"; done | sort -n | tail -1)
  /usr/bin/time -f "%e %M" -o "$work/stitch.time" "$vigil" stitch --json "$work"/s-*.json --chain "$chain" > "$work/stitched.json" || true
  read -r stitch_s stitch_kb < <(tail -1 "$work/stitch.time")
  total=$(python3 -c "print($shards_s + $stitch_s)")
  diff <(strip < "$work/single.json") <(strip < "$work/stitched.json") >/dev/null \
    || { echo "stitched report differs from the single run ($n shards)" >&2; exit 1; }
  printf "%-22s %10s %11.2fx %14s\n" "$n shards + stitch" "$(seconds "$total")" "$(python3 -c "print($single_s / $total)")" "$((rss / 1024))"
  printf "%-22s %10s %11.2f%% %14s\n" "  of which stitch" "$stitch_s" "$(python3 -c "print(100 * $stitch_s / $total)")" "$((stitch_kb / 1024))"
done
echo "summaries: $(du -cb "$work"/s-*.json | tail -1 | cut -f1) bytes for 4 shards; chain: $(du -sb "$chain" | cut -f1) bytes"
