#!/usr/bin/env bash
# The part of a parallel_cli archive that one device call continues: the parts of the
# given strategies (their records and the weights they continue from, without training
# logs, score files and figures) with the merged files, copied into the ignored folder
# DEST (default gpu_resume/; any gpu_resume*/ is ignored). A whole archive can exceed what
# a device call carries (64 MiB with the code, wheels/ and gpu_base/), so each call carries
# the parts it runs; prepare both calls of a lease first, since an idle machine goes back
# after 30 s (docs/benchmarks.md, "Many processes on one GPU"):
#   bash bench/gpu_resume.sh random,ours
#   bash bench/gpu_resume.sh cald,equal,entropy,alternation,cdal,coreset \
#     experiments/gpu_h200_parallel gpu_resume_b
set -euo pipefail
cd "$(dirname "$0")/.."
STRATEGIES=${1:?usage: $0 strategy[,strategy...] [archive] [dest]}
SRC=${2:-experiments/gpu_h200_parallel}
DEST=${3:-gpu_resume}
case "$DEST" in
  gpu_resume*) ;;
  *) echo "DEST must be a gpu_resume* folder (ignored by git), got $DEST" >&2; exit 2 ;;
esac
rm -rf "$DEST"
mkdir -p "$DEST/parts"
for f in "$SRC"/*.json; do cp "$f" "$DEST/"; done
IFS=, read -ra names <<< "$STRATEGIES"
# what a part continues from: its records, selections, pools and weights; its training
# logs, score files and figures stay here (bench/gpu_merge_back.sh keeps them)
for s in "${names[@]}"; do
  for part in "$SRC"/parts/"$s".trial_*; do
    [ -d "$part" ] || continue
    cp -r "$part" "$DEST/parts/"
    find "$DEST/parts/$(basename "$part")" \( -name metrics.jsonl -o -name scores.npz \
      -o -name '*.png' \) -delete
  done
done
echo "$DEST/: $(ls "$DEST/parts" | wc -l) parts, $(du -sh "$DEST" | cut -f1)"
