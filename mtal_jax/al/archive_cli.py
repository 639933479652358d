r"""Archive an experiment's run directory, or restore one (``al.experiment.archive``).

  python -m mtal_jax.al.archive_cli save runs/repro_synthetic experiments/repro_synthetic \
      [--keep reference,trial_0/cycle_0,trial_0/*/cycle_5]
  python -m mtal_jax.al.archive_cli restore experiments/repro_synthetic runs/repro_synthetic
  python -m mtal_jax.al.archive_cli check runs/repro_synthetic experiments/repro_synthetic
  python -m mtal_jax.al.archive_cli recover experiments/repro_synthetic

``recover`` puts an archive back that a save killed between its two renames left missing
beside a complete copy (``archive.recover``; ``save``, ``restore`` and ``check`` do it too).
``check`` exits 1 when the archive holds records the run directory lacks (the archive was
continued elsewhere: restore it rather than resume the run directory), else 0.

``--keep``: comma-separated patterns (``fnmatch``) of finished runs whose best weights the
archive keeps as well, for analyses later (the weights the unfinished runs start from are
always kept).

``save`` works on a run directory that a running experiment is writing. After ``restore``,
the experiment's own command (``python train.py --config ... --workdir runs/...``) continues
it.
"""

from mtal_jax import runtime

runtime.configure_host_devices()  # checkpoints were saved over the experiment's devices

import logging
import sys

from absl import app, flags

log = logging.getLogger("mtal_jax.al.archive_cli")  # not "__main__": runtime.setup sets mtal_jax.*

_KEEP = flags.DEFINE_list("keep", [], "save: finished runs whose weights are kept too (patterns).")

USAGE = (
    "usage: python -m mtal_jax.al.archive_cli save WORKDIR ARCHIVE [--keep PATTERNS]\n"
    "       python -m mtal_jax.al.archive_cli restore ARCHIVE WORKDIR\n"
    "       python -m mtal_jax.al.archive_cli check WORKDIR ARCHIVE\n"
    "       python -m mtal_jax.al.archive_cli recover ARCHIVE"
)


def main(argv: list[str]) -> None:
    args = argv[1:]
    recover = args[:1] == ["recover"] and len(args) == 2
    if not recover and (len(args) != 3 or args[0] not in ("save", "restore", "check")):
        raise app.UsageError(USAGE)  # before JAX and orbax are imported: at once
    from mtal_jax.al.experiment import archive  # here: JAX and orbax take seconds to import

    if recover:
        runtime.setup()
        put_back = archive.recover(args[1])
        log.info("%s: %s", args[1], f"put back from {put_back}" if put_back else "nothing to do")
        return
    command, src, dst = args
    runtime.setup()
    try:
        if command == "save":
            manifest = archive.save(src, dst, keep=_KEEP.value)
            log.info(
                "%s %s into %s: %d records, %d finished runs, weights of %d runs kept, "
                "%d strategy-trials unfinished",
                "archived" if manifest.get("changed", True) else "nothing new: kept the archive of",
                src, dst, manifest["records"], manifest["finished_runs"], len(manifest["weights"]),
                len(manifest["unfinished"]),
            )  # fmt: skip
        elif command == "check":
            archive.recover(dst)
            lost = archive.missing_records(dst, src)
            if lost:
                sys.exit(f"{dst} holds {len(lost)} records that {src} lacks (e.g. {lost[0]})")
            log.info("%s holds every record of %s", src, dst)
        else:
            archive.restore(src, dst)
            log.info(
                "restored %s into %s; run the experiment's command on it to continue", src, dst
            )
    except (FileNotFoundError, FileExistsError, ValueError) as e:
        sys.exit(f"error: {e}")


if __name__ == "__main__":
    runtime.run_main(main)
