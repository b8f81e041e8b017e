#!/bin/bash
# Submits the verification array and the stitch step that waits for it:
#   CHAIN=/shared/chain SUMMARIES=/shared/vigil deploy/slurm/submit.sh
set -euo pipefail
here=$(dirname "$0")
: "${CHAIN:?set CHAIN}" "${SUMMARIES:?set SUMMARIES}"
mkdir -p "$SUMMARIES"
array=$(sbatch --parsable --export=ALL,CHAIN="$CHAIN",SUMMARIES="$SUMMARIES" "$here/verify-array.sbatch")
sbatch --dependency=afterok:"${array%%;*}" --export=ALL,CHAIN="$CHAIN",SUMMARIES="$SUMMARIES" "$here/stitch.sbatch"
