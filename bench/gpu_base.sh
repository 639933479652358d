#!/usr/bin/env bash
# The start of a GPU run of the main comparison from the CPU's own models: an archive of
# the experiment ARCHIVE (default experiments/repro_synthetic) that holds its reference and
# its trials' cycle-0 models (the weights the strategies start from) and no strategy run,
# in the ignored folder gpu_base/<name>/ (about 12 MB for the synthetic default). The
# parts of mtal_jax.al.parallel_cli copy these (--share_from) instead of training them,
# so every GPU strategy-trial starts from the CPU trial's model and pool
# (docs/benchmarks.md, "GPU check"):
#   bash bench/gpu_base.sh [ARCHIVE]
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=${1:-experiments/repro_synthetic}
PY=${PYTHON:-python}
name=$(basename "$SRC")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$PY" -m mtal_jax.al.archive_cli restore "$SRC" "$tmp/run"
# strategy runs go; each trial's cycle 0 and the reference stay
find "$tmp/run" -mindepth 2 -maxdepth 2 -path "$tmp/run/trial_*" ! -name cycle_0 -exec rm -rf {} +
rm -f "$tmp"/run/{summary.md,summary.json,paired.json,archive.json} "$tmp"/run/*.png
"$PY" - "$tmp/run/results.json" <<'PYEOF'
import sys
from mtal_jax import jsonio
records = jsonio.read(sys.argv[1])
jsonio.write_atomic(sys.argv[1], [r for r in records if r["cycle"] == 0])
PYEOF
rm -rf "gpu_base/$name"
mkdir -p gpu_base
"$PY" -m mtal_jax.al.archive_cli save "$tmp/run" "gpu_base/$name"
du -sh "gpu_base/$name"
