#!/usr/bin/env bash
# Continues the reproduction of docs/results.md, one experiment after the other, on any
# machine: an experiment whose run directory (runs/<name>) is missing, or behind its archive
# here (experiments/<name>: continued on another machine; the old directory is moved aside),
# starts from the archive (restored), and its own command resumes it exactly.
# While it runs, its archive is refreshed every ARCHIVE_EVERY_S seconds (default 1200);
# commit experiments/ to keep the progress (experiments/README.md).
#   mkdir -p runs && nohup experiments/continue.sh >> runs/continue.log 2>&1 &
# Names given as arguments run only those experiments, in the order below (not the
# arguments'); two instances with disjoint names run side by side (a run directory another
# process holds is refused); the finished sources they share (repro_*) are restored first,
# so that both do not at once. As the reproduction runs since 2026-12-05 (trials10_camvid
# first, so the chain is two invocations; experiments/README.md):
#   experiments/continue.sh repro_synthetic repro_camvid >> runs/continue.log 2>&1
#   nohup bash -c 'experiments/continue.sh trials10_camvid && experiments/continue.sh \
#     table1_synthetic balanced_camvid native_synthetic' >> runs/continue_table1.log 2>&1 &
# (table1_camvid, balanced_synthetic and native_camvid have finished; trials10_camvid
# finished its 10 trials on 2026-12-04 and runs again extended to 20: al.num_trials may
# grow on resume.) The CamVid entries read configs/camvid.py's data.root: without that
# folder the first of them stops the list (experiments/README.md).
# To stop: kill this script (TERM or INT): it stops the running experiment (TERM; its exact
# resume continues from the last checkpoint), saves its archive once more and runs no other.
# (A job started in the background ignores INT, so Ctrl-C never reaches its train.py.)
set -u
cd "$(dirname "$0")/.." && . .venv/bin/activate || exit 1
stopping=0
pid=""
stop() {
  stopping=1
  [ -n "$pid" ] && kill -TERM "$pid" 2> /dev/null
}
trap stop TERM INT
mkdir -p runs
EVERY=${ARCHIVE_EVERY_S:-1200}
# name, config, finished runs whose weights the archive keeps, extra train.py arguments.
# Kept for the analyses of docs/results.md (Table II: the reference; Fig. 6: trial 0's
# cycle-0 model; Fig. 5: random, CALD and ours after the last cycle of trial 0) and for
# Table I, which shares the main comparison's reference, cycle-0 models of its 3 trials and
# the runs of random and ours (= ours_js_all) instead of training them again
# (al.share_from; its source experiment is restored first when missing); trials10 (ours
# against random over 10 trials) shares the cycle-0 models of all 5 trials likewise.
KEEP="reference,trial_0/cycle_0,trial_1/cycle_0,trial_2/cycle_0,trial_3/cycle_0,trial_4/cycle_0,trial_0/random/cycle_5,trial_0/cald/cycle_5,trial_0/ours/cycle_5"
EXPERIMENTS=(
  "repro_synthetic configs/default.py:repro $KEEP"
  "repro_camvid configs/camvid.py:repro $KEEP"
  "table1_camvid configs/camvid.py:table1 - --config.al.share_from=runs/repro_camvid"
  "balanced_synthetic configs/default.py:balanced - --config.al.share_from=runs/repro_synthetic"
  "native_camvid configs/camvid.py:native - --config.al.share_from=runs/repro_camvid"
  "table1_synthetic configs/default.py:table1 - --config.al.share_from=runs/repro_synthetic"
  "trials10_camvid configs/camvid.py:trials10 - --config.al.share_from=runs/repro_camvid --config.al.num_trials=20"
  "balanced_camvid configs/camvid.py:balanced - --config.al.share_from=runs/repro_camvid"
  "native_synthetic configs/default.py:native - --config.al.share_from=runs/repro_synthetic"
)
for want in "$@"; do
  printf '%s\n' "${EXPERIMENTS[@]}" | grep -q "^$want " || { echo "unknown experiment $want"; exit 2; }
done
# Brings runs/$1 up to its archive: restored when missing, replaced when behind it.
restore() {
  # an archive a save killed between its two renames left missing is put back first
  python -m mtal_jax.al.archive_cli recover "experiments/$1" || exit 1
  if [ -e "runs/$1" ] && [ -e "experiments/$1/archive.json" ] &&
    ! python -m mtal_jax.al.archive_cli check "runs/$1" "experiments/$1"; then
    mv "runs/$1" "runs/$1.stale-$(date +%s)"  # the archive went further elsewhere
  fi
  if [ ! -e "runs/$1" ] && [ -e "experiments/$1/archive.json" ]; then
    python -m mtal_jax.al.archive_cli restore "experiments/$1" "runs/$1" || exit 1
  fi
}
for entry in "${EXPERIMENTS[@]}"; do
  read -r name config keep extra <<< "$entry"
  if [ $# -gt 0 ] && ! printf '%s\n' "$@" | grep -qx "$name"; then continue; fi
  [ "$keep" = "-" ] && keep=""
  restore "$name"
  case "$extra" in  # the experiment it shares runs with, restored first
    *share_from=runs/*) source="${extra##*share_from=runs/}"; source="${source%% *}"
      [ -e "runs/$source" ] || restore "$source" ;;
  esac
  # shellcheck disable=SC2086  # extra: several arguments
  python train.py --config "$config" --workdir "runs/$name" --noprogress ${extra:-} &
  pid=$!
  while kill -0 "$pid" 2> /dev/null; do
    for _ in $(seq "$EVERY"); do kill -0 "$pid" 2> /dev/null || break; sleep 1; done
    kill -0 "$pid" 2> /dev/null || break  # ended: the save below
    [ -e "runs/$name/config.json" ] && nice python -m mtal_jax.al.archive_cli save "runs/$name" "experiments/$name" --keep="$keep"
  done
  while kill -0 "$pid" 2> /dev/null; do sleep 1; done  # a trapped signal interrupts wait
  wait "$pid"
  rc=$?
  # Once more after it ended (a save still running when it ended had scanned an earlier
  # state), and after a failure or a stop too, to keep what it trained.
  [ -e "runs/$name/config.json" ] && nice python -m mtal_jax.al.archive_cli save "runs/$name" "experiments/$name" --keep="$keep"
  [ "$stopping" -eq 0 ] || { echo "continue.sh: stopped during $name"; exit 130; }
  [ "$rc" -eq 0 ] || exit 1
done
