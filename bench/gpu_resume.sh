#!/usr/bin/env bash
# The part of a parallel_cli archive that one device call continues: the parts of the
# given strategies (their records and the weights they continue from, without training
# logs, score files and figures) with the merged files, copied into the ignored folder
# gpu_resume/. A whole archive can exceed what a
# device call carries (64 MiB with the code, wheels/ and gpu_base/), so each call carries
# the parts it runs (docs/benchmarks.md, "Many processes on one GPU"):
#   bash bench/gpu_resume.sh random,ours,cdal,coreset [ARCHIVE]
set -euo pipefail
cd "$(dirname "$0")/.."
STRATEGIES=${1:?usage: $0 strategy[,strategy...] [archive]}
SRC=${2:-experiments/gpu_h200_parallel}
rm -rf gpu_resume
mkdir -p gpu_resume/parts
for f in "$SRC"/*.json; do cp "$f" gpu_resume/; done
IFS=, read -ra names <<< "$STRATEGIES"
# what a part continues from: its records, selections, pools and weights; its training
# logs, score files and figures stay here (bench/gpu_merge_back.sh keeps them)
for s in "${names[@]}"; do
  for part in "$SRC"/parts/"$s".trial_*; do
    [ -d "$part" ] || continue
    cp -r "$part" gpu_resume/parts/
    find "gpu_resume/parts/$(basename "$part")" \( -name metrics.jsonl -o -name scores.npz \
      -o -name '*.png' \) -delete
  done
done
echo "gpu_resume/: $(ls gpu_resume/parts | wc -l) parts, $(du -sh gpu_resume | cut -f1)"
