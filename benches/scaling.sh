#!/usr/bin/env bash
# Time per transaction and peak RSS of `vigil verify` on generated chains of
# 10^4 .. 10^MAX transactions (default MAX=7: needs ~3.5 GB of disk in $TMPDIR
# and a few minutes). Usage: [SENDERS=1000] benches/scaling.sh [MAX_EXPONENT]
set -euo pipefail
cd "$(dirname "$0")/.."
max=${1:-7}
cargo build --release -q -p vigil
vigil=target/release/vigil
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
printf "%-10s %-10s %12s %10s %14s\n" transactions bytes "tx/s" "ns/tx" "peak RSS MiB"
for e in $(seq 4 "$max"); do
  n=$((10 ** e))
  blocks=$(( n / 200 ))
  "$vigil" gen "$work/c$e" --seed 1 --blocks "$blocks" --txs-per-block 200 --senders "${SENDERS:-1000}" \
    --payload 100..300 --segment-size 256MiB >/dev/null
  bytes=$(du -sb "$work/c$e" | cut -f1)
  /usr/bin/time -f "%M" -o "$work/rss" "$vigil" verify "$work/c$e" --json > "$work/out"
  tps=$(tail -1 "$work/out" | python3 -c 'import json,sys; s=json.load(sys.stdin); print(round(s["transactions"]/s["seconds"]))')
  rss=$(( $(cat "$work/rss") / 1024 ))
  printf "%-10s %-10s %12s %10.0f %14s\n" "$n" "$bytes" "$tps" "$(python3 -c "print(1e9/$tps)")" "$rss"
  rm -rf "$work/c$e"
done
