#!/usr/bin/env bash
# GPU readiness check: one prepared run on a machine with an NVIDIA GPU (< 8 min on an H200).
#
#   bash bench/fetch_wheels.sh            # here, once: cp312 wheels into the ignored wheels/
#   OUT=/some/dir bash bench/gpu_check.sh # there: every figure and log lands under $OUT
#
# Expects the GPU image: Python 3.12, jax 0.11.x with its CUDA plugin, flax, optax,
# orbax-checkpoint, chex, absl-py, pytest, hypothesis, matplotlib, scipy, pillow, tqdm, and
# no package registry. Installs the packages the image lacks from wheels/ (never over what
# is installed) and the project without dependencies (over the image's JAX), then:
#   1. imports every module of the library and reports versions and devices;
#   2. runs the test suite (tests/conftest.py pins the tests to the CPU backend with 2
#      virtual devices: this checks Python 3.12 + jax 0.11, not the GPU);
#   3. training-step benchmark on the GPU, float32 and bfloat16, default network and a
#      large one (fraction of the bf16 peak, PEAK_TFLOPS, 989 = H100/H200 dense);
#   4. ours scoring vs plain inference vs the naive per-box loop (bench/score_throughput.py);
#   4b. the input pipeline alone, 2 read-ahead threads against one per core up to 8
#      (bench/input_pipeline.py);
#   5. an experiment (EXPERIMENT, default configs/default.py:quick: one trial, ours and
#      random), given what is left of DEADLINE_S, restored first from the archive RESUME
#      when given; stopped there (SIGINT, the exact resume's stop), the records it has are
#      summarised (results.json, summary, figures) and it is archived
#      (mtal_jax.al.experiment.archive: records and the weights its unfinished runs start
#      from) into $OUT/archive.tgz.part-* (pieces of 15 MiB: the device tool returns files
#      of 16 MiB at most; `cat archive.tgz.part-* | tar xz`), which a later lease continues
#      from (RESUME).
# Each stage has a time cap and its own status line; the script never stops at a failure.
# Knobs: DEADLINE_S (the whole script, default 540 s; the experiment gets the rest less 60 s
# to summarise and archive), GPU_CHECK_TESTS (pytest arguments, "none" skips; default the
# suite), GPU_CHECK_BIG=0 (no resnet50 benchmark), GPU_CHECK_BENCH=0 (no benchmark at all),
# EXPERIMENT, EXPERIMENT_ARGS (more train.py arguments), RESUME (an archive folder in the
# repository), ARCHIVE_KEEP (finished runs whose weights the archive keeps too, patterns),
# PARALLEL_JOBS (> 0: the experiment as one process per (strategy, trial), that many at a
# time, mtal_jax.al.parallel_cli; RESUME then names such a launcher's archive), BASE (with
# PARALLEL_JOBS: an archive whose reference and cycle-0 models the processes copy,
# bench/gpu_base.sh), PACK_S and MERGE_S (with PARALLEL_JOBS: seconds kept after the
# experiment for packing, default 60, and before its cap for merging and archiving the
# parts, default 75).
# All but gpu_check.log, status.txt and the archive's pieces is packed into
# $OUT/results.tgz (the device tool brings back 8 files at most), without checkpoints or
# weights.
# The reproduction's synthetic protocol on a GPU, continued lease by lease (docs/results.md,
# "The main comparison on a GPU"; the archive comes back in archive.tgz.part-*, goes to
# experiments/gpu_h200_synthetic and travels with the next call, see docs/benchmarks.md):
#   DEADLINE_S=540 GPU_CHECK_TESTS=none GPU_CHECK_BENCH=0 EXPERIMENT=configs/default.py:repro \
#     RESUME=experiments/gpu_h200_synthetic OUT=... bash bench/gpu_check.sh
# or, many processes at once from the CPU's reference and cycle-0 models, the parts of a
# few strategies per call (bench/gpu_resume.sh; back with bench/gpu_merge_back.sh):
#   PARALLEL_JOBS=10 BASE=gpu_base/repro_synthetic RESUME=gpu_resume DEADLINE_S=540 \
#     GPU_CHECK_TESTS=none GPU_CHECK_BENCH=0 EXPERIMENT=configs/default.py:repro \
#     EXPERIMENT_ARGS=--config.al.strategies=random,ours OUT=... bash bench/gpu_check.sh
#
# GPU_CHECK_CPU=1 runs the same stages on the CPU with small sizes (how this script is
# tested where no GPU is lent; then the GPU-only facts (nvidia-smi, peak) are skipped).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu_check_out}
WORK="$OUT/work"  # packed into $OUT/results.tgz at the end
mkdir -p "$OUT" "$WORK"
DEADLINE_S=${DEADLINE_S:-540}
TESTS=${GPU_CHECK_TESTS:-tests}
BIG=${GPU_CHECK_BIG:-1}
BENCH=${GPU_CHECK_BENCH:-1}
RESUME=${RESUME:-}
BASE=${BASE:-}
PARALLEL_JOBS=${PARALLEL_JOBS:-0}
ARCHIVE_KEEP=${ARCHIVE_KEEP:-}
EXPERIMENT=${EXPERIMENT:-configs/default.py:quick}
read -ra EXPERIMENT_ARGS <<< "${EXPERIMENT_ARGS:-}"
PY=${PYTHON:-python3}
CPU=${GPU_CHECK_CPU:-0}
PEAK_TFLOPS=${PEAK_TFLOPS:-989}
LOG="$OUT/gpu_check.log"
STATUS="$OUT/status.txt"
: >"$STATUS"
T0=$(date +%s)
exec > >(tee -a "$LOG") 2>&1

stage() { # name cap_seconds command...
  local name=$1 cap=$2
  shift 2
  local t=$(date +%s)
  echo "=== $name (cap ${cap}s) $(date -u +%H:%M:%S)"
  timeout --signal=INT --kill-after=10 "$cap" "$@"
  local rc=$?
  local line="$name rc=$rc $(($(date +%s) - t))s"
  [ $rc -eq 124 ] && line="$line TIMED OUT"
  echo "$line" | tee -a "$STATUS"
}

echo "gpu_check $(date -u '+%Y-%m-%d %H:%M UTC') host $(hostname) CPU-mode=$CPU"
if [ "$CPU" = 1 ]; then
  export JAX_PLATFORMS=cpu
  TRAIN_ARGS_BIG=(--backbone tiny --image_hw 64,128 --batch 8 --rounds 2 --steps 2)
  TRAIN_ARGS=(--rounds 2 --steps 2)
  SCORE_ARGS=(--image_hw 64,128 --batch 4 --num_boxes 4 --repeats 2)
  PIPE_ARGS=(--threads 1,2 --batches 10 --warmup 2 --num_train 64 --num_test 16)
  TEST_CAP=${TEST_CAP:-300}
  [ "$TESTS" = tests ] && TESTS="tests/test_runtime.py tests/test_fields.py tests/test_losses.py"
  EXP_OVERRIDES=(--config.train.initial_steps=4 --config.train.full_steps=4 --config.train.steps=2
    --config.al.num_cycles=1 --config.data.builder_kwargs.num_train=64
    --config.data.builder_kwargs.num_test=16 --config.eval.every_steps=4
    --config.checkpoint.every_steps=4)
else
  nvidia-smi >"$WORK/nvidia-smi.txt" 2>&1 || echo "nvidia-smi failed"
  TRAIN_ARGS_BIG=(--backbone resnet50 --image_hw 512,1024 --batch 32 --rounds 5 --steps 5)
  TRAIN_ARGS=(--rounds 5 --steps 20)
  SCORE_ARGS=(--image_hw 256,512 --batch 32 --num_boxes 8 --repeats 10)
  PIPE_ARGS=(--threads "2,$(nproc --ignore=0 2> /dev/null | awk '{print ($1 < 8) ? $1 : 8}')")
  TEST_CAP=${TEST_CAP:-200}
  EXP_OVERRIDES=()
fi

# ---------------------------------------------------------------- 0. install
install_packages() {
  "$PY" - <<'EOF'
import importlib.metadata as md, pathlib, re, subprocess, sys
missing = []
for w in sorted(pathlib.Path("wheels").glob("*.whl")):
    name = re.sub(r"[-_.]+", "-", w.name.split("-")[0]).lower()
    try:
        md.version(name)
    except md.PackageNotFoundError:
        missing.append(str(w))
print("installing from wheels/:", [pathlib.Path(m).name for m in missing] or "nothing")
if missing:
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-index", "--no-deps", *missing], check=True)
EOF
  "$PY" -m pip install --no-index --no-deps --no-build-isolation --ignore-requires-python -e . \
    || { echo "pip install -e . failed: using PYTHONPATH=$PWD"; return 1; }
}
[ -d wheels ] || echo "wheels/ is missing: run bench/fetch_wheels.sh where PyPI is reachable"
export -f install_packages
export PY
stage install 300 bash -c install_packages
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

# ---------------------------------------------------------------- 1. imports
stage imports 120 "$PY" - <<'EOF' 2>&1 | tee "$WORK/versions.txt"
import importlib, pkgutil, sys, warnings
warnings.simplefilter("default", DeprecationWarning)
import jax, flax, optax, orbax.checkpoint, numpy
print("python", sys.version.split()[0], "jax", jax.__version__, "flax", flax.__version__,
      "optax", optax.__version__, "numpy", numpy.__version__)
print("backend", jax.default_backend(), "devices", jax.devices())
import mtal_jax
bad = []
for m in pkgutil.walk_packages(mtal_jax.__path__, "mtal_jax."):
    try:
        importlib.import_module(m.name)
    except Exception as e:  # report every module that does not import
        bad.append(f"{m.name}: {type(e).__name__}: {e}")
print("modules that fail to import:", bad or "none")
sys.exit(1 if bad else 0)
EOF

# ---------------------------------------------------------------- 2. test suite
if [ "$TESTS" != none ]; then
  read -ra TEST_ARGS <<< "$TESTS"
  stage tests "$TEST_CAP" "$PY" -m pytest -q -p no:cacheprovider --junitxml="$WORK/tests.xml" \
    "${TEST_ARGS[@]}"
fi

# ---------------------------------------------------------------- 3. training step
[ "$BENCH" = 1 ] && for dt in float32 bfloat16; do
  stage "train_step_default_$dt" 120 "$PY" bench/train_step.py --dtype $dt "${TRAIN_ARGS[@]}" \
    --json "$WORK/train_step_default_$dt.json"
  [ "$BIG" = 1 ] && stage "train_step_large_$dt" 150 "$PY" bench/train_step.py --dtype $dt \
    "${TRAIN_ARGS_BIG[@]}" --peak_tflops "$PEAK_TFLOPS" --json "$WORK/train_step_large_$dt.json"
done

# ---------------------------------------------------------------- 4. scoring
[ "$BENCH" = 1 ] && stage score_throughput 150 "$PY" bench/score_throughput.py "${SCORE_ARGS[@]}" \
  --out "$WORK/score_throughput.json"

# ---------------------------------------------------------------- 4b. input pipeline
# The host side alone (bench/input_pipeline.py), 2 threads against pipeline.read_threads'
# default here; it also prepares the synthetic dataset the experiment reads.
[ "$BENCH" = 1 ] && stage input_pipeline 150 "$PY" bench/input_pipeline.py "${PIPE_ARGS[@]}" \
  --data_dir=/tmp/gpu_check_tfds --json "$WORK/input_pipeline.json"

# ---------------------------------------------------------------- 5. experiment
EXP_DIR=/tmp/gpu_check_experiment
EXP_CAP=$((DEADLINE_S - 60 - ($(date +%s) - T0)))
rm -rf /tmp/gpu_check_archive
if [ "$PARALLEL_JOBS" -gt 0 ]; then
  # One process per (strategy, trial), PARALLEL_JOBS at a time (mtal_jax.al.parallel_cli),
  # copying the reference and cycle-0 models of BASE (bench/gpu_base.sh) when given.
  SHARE_ARGS=() RESTORE_ARGS=()
  if [ -n "$BASE" ]; then
    [ -e /tmp/gpu_check_base ] || stage restore_base 120 "$PY" -m mtal_jax.al.archive_cli \
      restore "$BASE" /tmp/gpu_check_base
    SHARE_ARGS=(--share_from /tmp/gpu_check_base)
  fi
  [ -n "$RESUME" ] && [ -d "$RESUME/parts" ] && RESTORE_ARGS=(--restore_from "$RESUME")
  # PACK_S: kept for packing after the stage; MERGE_S: the launcher stops its parts this long
  # before the stage's cap, to merge and archive them (15 s on the H200 for 37 parts)
  EXP_CAP=$((DEADLINE_S - ${PACK_S:-60} - ($(date +%s) - T0)))
  [ $EXP_CAP -lt 120 ] && EXP_CAP=120
  echo "experiment: $EXPERIMENT ${EXPERIMENT_ARGS[*]} in $EXP_DIR, $PARALLEL_JOBS processes"
  stage experiment "$EXP_CAP" "$PY" -m mtal_jax.al.parallel_cli --config "$EXPERIMENT" \
    --workdir "$EXP_DIR" --jobs "$PARALLEL_JOBS" --deadline_s $((EXP_CAP - ${MERGE_S:-75})) \
    --archive_to /tmp/gpu_check_archive "${SHARE_ARGS[@]}" "${RESTORE_ARGS[@]}" -- \
    "${EXP_OVERRIDES[@]}" "${EXPERIMENT_ARGS[@]}"
else
  if [ -n "$RESUME" ] && [ ! -e "$EXP_DIR" ]; then
    if [ -e "$RESUME/archive.json" ]; then
      stage restore 120 "$PY" -m mtal_jax.al.archive_cli restore "$RESUME" "$EXP_DIR"
    else
      echo "RESUME=$RESUME holds no archive.json: the experiment starts from scratch"
    fi
  fi
  EXP_CAP=$((DEADLINE_S - 60 - ($(date +%s) - T0)))
  [ $EXP_CAP -lt 30 ] && EXP_CAP=30
  echo "experiment: $EXPERIMENT ${EXPERIMENT_ARGS[*]} in $EXP_DIR"
  stage experiment "$EXP_CAP" "$PY" train.py --config "$EXPERIMENT" --workdir "$EXP_DIR" \
    --config.data.data_dir=/tmp/gpu_check_tfds --progress=false "${EXP_OVERRIDES[@]}" \
    "${EXPERIMENT_ARGS[@]}"
  # A stopped experiment: the summary of the records it has (results.json is written after
  # each cycle, the summary only after each finished strategy-trial).
  stage experiment_summary 30 "$PY" -c "import sys; from mtal_jax import jsonio, reporting; \
reporting.write_summary(jsonio.read(sys.argv[1] + '/results.json'), sys.argv[1])" "$EXP_DIR"
  stage archive 60 "$PY" -m mtal_jax.al.archive_cli save "$EXP_DIR" /tmp/gpu_check_archive \
    --keep="$ARCHIVE_KEEP"
fi
(cd "$EXP_DIR" && find . -type f \( -name '*.json' -o -name '*.jsonl' -o -name '*.md' \
  -o -name '*.png' -o -name '*.log' \) -not -path '*/train/latest/*' -not -path '*/train/best/*' \
  -print0 | tar -czf "$WORK/experiment.tgz" --null -T -) || echo "no experiment directory to pack"
if [ -e /tmp/gpu_check_archive/archive.json ] || [ -e /tmp/gpu_check_archive/parallel.json ]; then
  # in pieces of 15 MiB (the device tool brings back files of 16 MiB at most):
  #   cat archive.tgz.part-* | tar xz -C <folder>
  tar -czf - -C /tmp/gpu_check_archive . | split -b 15M - "$OUT/archive.tgz.part-"
else
  echo "no archive: the next lease starts the experiment again"
fi

# ---------------------------------------------------------------- summary
"$PY" - "$OUT" <<'EOF' | tee "$OUT/summary.txt"
import json, pathlib, sys
out = pathlib.Path(sys.argv[1])
for f in sorted((out / "work").glob("train_step_*.json")):
    r = json.loads(f.read_text())
    print(f"{f.stem}: {r['backend']} {r['backbone']} {r['image_hw']} b{r['batch']} {r['dtype']}: "
          f"{r['median_ms']:.1f} ms/step, {r['images_per_s']:.0f} img/s, "
          f"{r['achieved_tflops']:.1f} TFLOP/s" + (f", {100 * r['fraction_of_peak']:.1f} % of peak"
                                                  if "fraction_of_peak" in r else ""))
p = out / "work" / "input_pipeline.json"
if p.exists():
    r = json.loads(p.read_text())
    print("input_pipeline: ms per batch of", r["batch"], "by read-ahead threads:",
          {k: round(v, 2) for k, v in r["ms_per_batch"].items()}, "on", r["cpu_count"], "cores")
s = out / "work" / "score_throughput.json"
if s.exists():
    print("score_throughput:", s.read_text()[:2000])
EOF
echo "total $(($(date +%s) - T0))s" | tee -a "$STATUS"
tar -czf "$OUT/results.tgz" -C "$WORK" . && rm -rf "$WORK"
