#!/bin/bash
# deploy/slurm end to end on a real, single-node Slurm cluster that this
# script starts itself (root, Debian bookworm or similar, no systemd needed):
#
#   deploy/slurm/check-local.sh          # VIGIL=path/to/vigil to pick the binary
#
# 1. installs slurm-wlm and munge with apt-get if they are missing;
# 2. starts munged, slurmctld and slurmd by hand, with a generated slurm.conf
#    and every state, spool, log and socket in a temporary directory (what
#    works in a container: proctrack/linuxproc, task/none, no accounting,
#    select/cons_tres with CR_Core_Memory and RealMemory declared);
# 3. generates a chain with faults and runs deploy/slurm/submit.sh with 4
#    shards: the stitch job's report must be `vigil verify`'s (exit code and
#    NDJSON, timing fields aside);
# 4. loses one shard's summary and re-runs that index alone with the
#    commands submit.sh printed (`sbatch --array=K ...`), then the stitch;
# 5. makes one task fail: the stitch job must be cancelled
#    (--kill-on-invalid-dep), not left pending;
# and stops the daemons on exit. Exit 0 when every check passed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
say() { printf '== %s\n' "$*"; }
fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }

[[ $(id -u) == 0 ]] || fail "run as root (it installs packages and starts Slurm's daemons as root)"
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null; then
  say "installing slurm-wlm and munge"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends slurm-wlm munge
fi
slurmctld -V

VIGIL=${VIGIL:-$root/target/debug/vigil}
[[ -x $VIGIL ]] || fail "no vigil at $VIGIL: cargo build -p vigil, or set VIGIL"
PATH=$(dirname "$(realpath "$VIGIL")"):$PATH
export PATH
say "vigil: $(command -v vigil)"

# Not under /tmp: munged refuses a world-writable directory on its paths.
tmp=$(mktemp -d /var/tmp/vigil-slurm.XXXXXX)
chmod 755 "$tmp"
pids=()
cleanup() {
  local rc=$?
  say "stopping the daemons"
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if ((rc != 0)); then
    for log in "$tmp"/log/*.log; do
      [[ -e $log ]] || continue
      echo "--- last lines of $log"
      tail -n 30 "$log"
    done
  fi
  if [[ -n ${KEEP:-} ]]; then echo "kept $tmp"; else rm -rf "$tmp"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$tmp"/{munge,state,spool,log,work}

say "munged"
dd if=/dev/urandom of="$tmp/munge/munge.key" bs=1024 count=1 status=none
chmod 400 "$tmp/munge/munge.key"
socket=$tmp/munge/munge.socket
munged --foreground --force --key-file="$tmp/munge/munge.key" --socket="$socket" \
  --pid-file="$tmp/munge/munged.pid" --seed-file="$tmp/munge/munge.seed" \
  --log-file="$tmp/log/munged.log" &
pids+=($!)
for _ in $(seq 50); do [[ -S $socket ]] && break; sleep 0.2; done
munge --socket="$socket" -n </dev/null | unmunge --socket="$socket" >/dev/null || fail "munge does not work"

host=$(hostname -s)
cpus=$(nproc)
total_mb=$(awk '/^MemTotal:/ { print int($2 / 1024) }' /proc/meminfo)
# Declared below what the machine has, else slurmd drains the node.
real_mb=$((total_mb * 3 / 4))
export SLURM_CONF=$tmp/slurm.conf
cat >"$SLURM_CONF" <<EOF
ClusterName=vigilcheck
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$socket
CredType=cred/munge
SlurmctldPort=16817
SlurmdPort=16818
StateSaveLocation=$tmp/state
SlurmdSpoolDir=$tmp/spool
SlurmctldPidFile=$tmp/slurmctld.pid
SlurmdPidFile=$tmp/slurmd.pid
SlurmctldLogFile=$tmp/log/slurmctld.log
SlurmdLogFile=$tmp/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
MpiDefault=none
MailProg=/bin/true
SwitchType=switch/none
ReturnToService=2
# Finished jobs stay visible to scontrol (there is no accounting database).
MinJobAge=3600
SlurmctldTimeout=30
SlurmdTimeout=30
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$real_mb State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
say "slurm.conf"
cat "$SLURM_CONF"

say "slurmctld and slurmd"
slurmctld -D -i -f "$SLURM_CONF" &
pids+=($!)
for _ in $(seq 50); do scontrol ping 2>/dev/null | grep -q UP && break; sleep 0.2; done
scontrol ping | grep -q UP || fail "slurmctld did not start"
slurmd -D -f "$SLURM_CONF" -N "$host" &
pids+=($!)
state=
for _ in $(seq 60); do
  state=$(sinfo -h -N -o %T 2>/dev/null || true)
  [[ $state == idle ]] && break
  sleep 1
done
sinfo -N -l
[[ $state == idle ]] || { scontrol show node; fail "the node is '$state', not idle"; }

# Waits until job $1 (and all its array tasks) has left the queue; fails
# after $2 seconds, showing why it is still there.
wait_job() {
  local id=$1 limit=${2:-300} t=0
  while [[ -n $(squeue -h -j "$id" -o %i 2>/dev/null) ]]; do
    if ((t >= limit)); then
      squeue -j "$id" -o '%.18i %.10T %.30r'
      fail "job $id still queued after ${limit}s"
    fi
    sleep 1
    t=$((t + 1))
  done
}
# JobState and ExitCode of every record of job $1 ("COMPLETED 0:0" a line).
job_states() {
  scontrol show job "$1" | tr ' ' '\n' | awk -F= '/^JobState=/ { s = $2 } /^ExitCode=/ { print s, $2 }'
}
# The NDJSON report without the timing fields (stitch adds its shards').
report() {
  sed -E 's/"(seconds|longest_shard_seconds|shards)":[^,}]*,?//g; s/,}/}/g' "$1"
}

say "chain"
chain=$tmp/chain
vigil gen "$chain" --seed 18 --blocks 300 --txs-per-block 5..20 --senders 12 --segment-size 64KiB \
  --fault tx_signature@40 --fault nonce@151 --fault prev_hash@152 --fault malformed@260
set +e
vigil verify --json "$chain" >"$tmp/single.ndjson"
single_rc=$?
set -e
tail -n 1 "$tmp/single.ndjson"
((single_rc == 1)) || fail "vigil verify exits $single_rc on a chain with faults"

cd "$tmp/work"
say "submit.sh: 4 shards, 1 CPU and 512M a task"
summaries=$tmp/summaries
out=$(CHAIN=$chain SUMMARIES=$summaries VIGIL_SHARDS=4 VIGIL_CPUS=1 VIGIL_MEM=512M "$here/submit.sh")
echo "$out"
array=$(awk '/^array job:/ { print $3 }' <<<"$out")
stitch=$(awk '/^stitch job:/ { print $3 }' <<<"$out")
[[ $array =~ ^[0-9]+$ && $stitch =~ ^[0-9]+$ ]] || fail "submit.sh printed no job ids"
squeue -o '%.12i %.14j %.9T %.5C %.8m %.24r'
wait_job "$array"
wait_job "$stitch"
job_states "$array"
[[ $(job_states "$array" | sort -u) == "COMPLETED 0:0" ]] || fail "an array task did not complete"
for k in 0 1 2 3; do
  grep -q "shard $k/4" "vigil-verify-${array}_$k.out" || fail "task $k did not verify shard $k/4"
  [[ -s $summaries/shard-$k.json ]] || fail "no summary from task $k"
done
# The stitch exits as vigil verify does (1: the chain is invalid).
if ((single_rc == 0)); then want="COMPLETED 0:0"; else want="FAILED $single_rc:0"; fi
[[ $(job_states "$stitch") == "$want" ]] || fail "stitch job: $(job_states "$stitch"), vigil verify exits $single_rc"
diff <(report "vigil-stitch-$stitch.out") <(report "$tmp/single.ndjson") || fail "the stitched report differs from vigil verify's"
tail -n 1 "vigil-stitch-$stitch.out"
say "stitched = vigil verify: exit $single_rc, $(grep -o '"blocks":[0-9]*' "$tmp/single.ndjson")"
vigil stitch --chain "$chain" "$summaries"/shard-*.json | tail -n 2 || true

say "a lost summary: index 2 re-run alone, as submit.sh says"
rm "$summaries/shard-2.json"
rerun=$(awk '/^To re-run/ { on = 1; next } on && /^  / { print }' <<<"$out" | sed 's/--array=K/--array=2/')
echo "$rerun"
[[ $(wc -l <<<"$rerun") == 2 ]] || fail "submit.sh printed no re-run commands"
job=
eval "$(head -n 1 <<<"$rerun")" # job=$(sbatch --parsable --array=2 ...)
stitch_line=$(eval "$(tail -n 1 <<<"$rerun")")
echo "$stitch_line"
stitch2=${stitch_line##* }
[[ $job =~ ^[0-9]+$ && $stitch2 =~ ^[0-9]+$ ]] || fail "the re-run commands gave no job ids"
wait_job "$job"
wait_job "$stitch2"
[[ $(job_states "$job") == "COMPLETED 0:0" ]] || fail "re-run task: $(job_states "$job")"
[[ $(job_states "$stitch2") == "$want" ]] || fail "stitch job after the re-run: $(job_states "$stitch2")"
grep -h "shard 2/4" vigil-verify-"${job}"_2.out || fail "the re-run index did not verify shard 2/4"
[[ -s $summaries/shard-2.json ]] || fail "the re-run wrote no shard-2.json"
diff <(report "vigil-stitch-$stitch2.out") <(report "$tmp/single.ndjson") || fail "after the re-run the stitch differs"
say "re-run index 2 (job $job) and stitch (job $stitch2): the same report"

say "a failing task: the stitch job is cancelled, not left pending (submit.sh's defaults)"
broken=$tmp/broken
mkdir -p "$broken/shard-1.json" # a directory where task 1 writes its summary
out=$(env -u VIGIL_SHARDS -u VIGIL_CPUS -u VIGIL_MEM CHAIN="$chain" SUMMARIES="$broken" "$here/submit.sh")
echo "$out"
array=$(awk '/^array job:/ { print $3 }' <<<"$out")
stitch=$(awk '/^stitch job:/ { print $3 }' <<<"$out")
wait_job "$array"
job_states "$array"
job_states "$array" | grep -q "^FAILED 2:0" || fail "task 1 was expected to fail with exit 2"
cat "vigil-verify-${array}_1.out"
wait_job "$stitch" 120
scontrol show job "$stitch" | grep -E 'JobState|Dependency' | sed 's/^ *//'
[[ $(job_states "$stitch") == CANCELLED* ]] || fail "stitch job: $(job_states "$stitch"), expected CANCELLED"
say "stitch job $stitch cancelled after the failed task"

say "all checks passed"
