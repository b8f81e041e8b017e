#!/bin/bash
# Submits the verification array (one task a shard) and the stitch job that
# waits for it:
#
#   CHAIN=/shared/chain SUMMARIES=/shared/vigil deploy/slurm/submit.sh [options] [-- sbatch options]
#
# Options (or the environment variable; an option wins):
#   -n, --shards N   VIGIL_SHARDS  shards = array tasks 0..N-1       (default 4)
#   -c, --cpus C     VIGIL_CPUS    CPUs per task (vigil's --threads) (default 2)
#   -m, --mem M      VIGIL_MEM     memory per task, as sbatch --mem  (default 1G)
# Anything after `--` goes to both sbatch calls (--partition=..., --account=...).
# CHAIN (the chain directory or file) and SUMMARIES (a directory for the
# summaries) must be on a file system every node sees.
#
# The stitch job depends on the array with afterok and --kill-on-invalid-dep:
# if a task fails, Slurm cancels the stitch instead of leaving it pending
# (DependencyNeverSatisfied). Re-run the failed index K alone, then the
# stitch; the commands are printed below.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
shards=${VIGIL_SHARDS:-4} cpus=${VIGIL_CPUS:-2} mem=${VIGIL_MEM:-1G}
usage() { sed -n '2,13s/^# \{0,1\}//p' "$0" >&2; exit 2; }
while (($#)); do
  case $1 in
    -n | --shards) shards=${2:?$1 needs a value}; shift 2 ;;
    -c | --cpus) cpus=${2:?$1 needs a value}; shift 2 ;;
    -m | --mem) mem=${2:?$1 needs a value}; shift 2 ;;
    -h | --help) usage ;;
    --) shift; break ;;
    *) echo "submit.sh: unknown argument $1" >&2; usage ;;
  esac
done
extra=("$@")
: "${CHAIN:?set CHAIN to the chain directory (on a shared file system)}"
: "${SUMMARIES:?set SUMMARIES to a shared directory for the shard summaries}"
[[ $shards =~ ^[1-9][0-9]*$ ]] || { echo "submit.sh: the number of shards ($shards) must be a whole number from 1" >&2; exit 2; }
[[ $cpus =~ ^[1-9][0-9]*$ ]] || { echo "submit.sh: CPUs per task ($cpus) must be a whole number from 1" >&2; exit 2; }
[[ $mem =~ ^[1-9][0-9]*[KMGT]?$ ]] || { echo "submit.sh: memory per task ($mem) must be sbatch --mem's form, e.g. 1G or 512M" >&2; exit 2; }
[[ -e $CHAIN ]] || { echo "submit.sh: CHAIN $CHAIN does not exist" >&2; exit 2; }
mkdir -p "$SUMMARIES"
# Absolute paths: the tasks may start in another directory.
CHAIN=$(realpath "$CHAIN") SUMMARIES=$(realpath "$SUMMARIES")
export CHAIN SUMMARIES VIGIL_SHARDS=$shards

array=$(sbatch --parsable --export=ALL --array="0-$((shards - 1))" \
  --cpus-per-task="$cpus" --mem="$mem" "${extra[@]}" "$here/verify-array.sbatch")
array=${array%%;*}
stitch=$(sbatch --parsable --export=ALL --dependency="afterok:$array" --kill-on-invalid-dep=yes \
  --cpus-per-task="$cpus" --mem="$mem" "${extra[@]}" "$here/stitch.sbatch")
stitch=${stitch%%;*}

q() { printf '%q' "$1"; }
cat <<EOF
array job: $array (shards 0-$((shards - 1)) of $shards; --cpus-per-task=$cpus --mem=$mem)
stitch job: $stitch (after every task succeeded; cancelled if one fails)
To re-run a failed index K (log: vigil-verify-${array}_K.out) once squeue -j $array lists no task, then the stitch:
  job=\$(sbatch --parsable --array=K --cpus-per-task=$cpus --mem=$mem --export=ALL,CHAIN=$(q "$CHAIN"),SUMMARIES=$(q "$SUMMARIES"),VIGIL_SHARDS=$shards $(q "$here/verify-array.sbatch"))
  sbatch --dependency=afterok:\$job --kill-on-invalid-dep=yes --cpus-per-task=$cpus --mem=$mem --export=ALL,CHAIN=$(q "$CHAIN"),SUMMARIES=$(q "$SUMMARIES") $(q "$here/stitch.sbatch")
EOF
