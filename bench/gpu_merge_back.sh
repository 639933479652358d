#!/usr/bin/env bash
# Brings the parallel_cli archive a device call returned (bench/gpu_check.sh with
# PARALLEL_JOBS: $OUT/archive.tgz.part-*) into experiments/gpu_h200_parallel: per part, the
# returned files replace this copy's (weights included: the stale ones go first), files the
# call did not carry (training logs, score files, figures: bench/gpu_resume.sh) stay, and
# the merged records, summary and figures are made again from all parts. The call's log,
# status, launcher state and nvidia-smi output go to device/ as lease<N>_*.
#   bash bench/gpu_merge_back.sh <files_at> <N> [ARCHIVE]
# CONFIG (default configs/default.py:repro) and MERGE_ARGS (more parallel_cli arguments)
# are those of the merge.
set -euo pipefail
cd "$(dirname "$0")/.."
FILES=${1:?usage: $0 files_at lease_number [archive]}
N=${2:?usage: $0 files_at lease_number [archive]}
DST=${3:-experiments/gpu_h200_parallel}
PY=${PYTHON:-python}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat "$FILES"/archive.tgz.part-* | tar xz -C "$tmp"
mkdir -p "$DST/parts" "$DST/device"
for part in "$tmp"/parts/*/; do
  name=$(basename "$part")
  [ -d "$DST/parts/$name" ] && find "$DST/parts/$name" -name weights.npz -delete
  mkdir -p "$DST/parts/$name"
  cp -r "$part". "$DST/parts/$name"/
done
[ -f "$tmp/parallel.json" ] && cp "$tmp/parallel.json" "$DST/device/lease${N}_parallel.json"
cp "$FILES/gpu_check.log" "$DST/device/lease${N}_gpu_check.log"
cp "$FILES/status.txt" "$DST/device/lease${N}_status.txt"
# the lease's GPU (the results page names it per lease)
smi="$DST/device/lease${N}_nvidia-smi.txt"
tar xzf "$FILES/results.tgz" -O --wildcards "*nvidia-smi.txt" > "$smi" 2> /dev/null \
  || rm -f "$smi"
# shellcheck disable=SC2086  # MERGE_ARGS: words on purpose
"$PY" -m mtal_jax.al.parallel_cli --config "${CONFIG:-configs/default.py:repro}" \
  --workdir "$DST" --merge_only ${MERGE_ARGS:-}
