"""Selects the next images to annotate with a trained checkpoint (for data teams).

  python select.py --strategy ours --config configs/default.py --checkpoint runs/x/reference
      --budget 100 [--pool pool_ids.txt] [--labeled labeled_ids.txt] --output selection.json [--format csv]
      [--det_score_threshold 0.3] [--cls_divergence js|kl] [--weights 1,1,1]
      [--crop_window box|native]
  python select.py ... --format label-studio --output batch_01/   # or --format coco (CVAT)

Naming hazard (docs/design.md §7): this file shares its name with the standard library's
``select`` module. Imported under that name (the repo root on ``sys.path``), it replaces
itself with the real module; run as a script, it takes the repo root off ``sys.path``
before importing anything else.
"""

import os as _os
import sys as _sys

_ROOT = _os.path.dirname(_os.path.abspath(__file__))


def _without_root(path):
    return [p for p in path if _os.path.abspath(p or _os.curdir) != _ROOT]


if __name__ != "__main__":
    # Imported as `select` by accident: become the standard-library module.
    import importlib as _importlib

    _saved_path = list(_sys.path)
    _sys.modules.pop(__name__, None)
    _sys.path[:] = _without_root(_sys.path)
    try:
        _real = _importlib.import_module("select")
    finally:
        _sys.path[:] = _saved_path
    _sys.modules[__name__] = _real
    globals().update({k: v for k, v in vars(_real).items() if not k.startswith("__")})
else:
    _sys.path[:] = _without_root(_sys.path)
    import select as _stdlib_select  # noqa: F401  (cache the real module first)

    _sys.path.append(_ROOT)  # now safe: `select` resolves to the cached stdlib module

    from mtal_jax import runtime

    runtime.configure_host_devices()

    from absl import app, flags
    from ml_collections import config_flags

    _CONFIG = config_flags.DEFINE_config_file(
        "config",
        _os.path.join(_ROOT, "configs", "default.py"),
        "Config the checkpoint was trained with.",
        lock_config=True,
    )
    _STRATEGY = flags.DEFINE_string(
        "strategy", None, "Strategy name (sugar for --config.al.strategy.name)."
    )
    _CHECKPOINT = flags.DEFINE_string(
        "checkpoint",
        None,
        "Training run dir (holding train/best) or a checkpoint dir.",
        required=True,
    )
    _BUDGET = flags.DEFINE_integer("budget", None, "Number of images to select.", required=True)
    _POOL = flags.DEFINE_string(
        "pool",
        None,
        "File of image ids to choose from (one per line); default: the whole train split.",
    )
    _LABELED = flags.DEFINE_string(
        "labeled",
        None,
        "File of already labeled image ids (never selected; seeds diversity methods).",
    )
    _OUTPUT = flags.DEFINE_string(
        "output", "selection.json", "Output file (json, csv) or folder (label-studio, coco)."
    )
    _FORMAT = flags.DEFINE_enum(
        "format",
        "json",
        ["json", "csv", "label-studio", "coco"],
        "Output format; label-studio and coco write a folder with pre-annotations and "
        "disagreement maps.",
    )
    _IMAGE_URL_PREFIX = flags.DEFINE_string(
        "image_url_prefix",
        None,
        "label-studio: URL prefix of the exported images "
        "(default /data/local-files/?d=<output folder name>/).",
    )
    _SEED = flags.DEFINE_integer("seed", 0, "Selection seed (random tie-breaks, random strategy).")
    _PROGRESS = flags.DEFINE_bool("progress", True, "Show progress bars.")
    _ROUND = flags.DEFINE_integer(
        "round",
        0,
        "Annotation round: the protocol cycle whose model scores (0: the first selection); "
        "alternation uses CALD or EquAL by its parity.",
    )
    _DET_SCORE_THRESHOLD = flags.DEFINE_float(
        "det_score_threshold",
        None,
        "ours: only detections with at least this confidence are scored (default: the "
        "config's al.strategy.kwargs, else 0.3).",
    )
    _CLS_DIVERGENCE = flags.DEFINE_enum(
        "cls_divergence",
        None,
        ["js", "kl"],
        "ours: divergence of S_cls, js (bounded, default) or kl (the paper's Eq. 2).",
    )
    _CROP_WINDOW = flags.DEFINE_enum(
        "crop_window",
        None,
        ["box", "native"],
        "ours: BoxMask crops of the box resized to S x S (box, the paper's, default) or "
        "squares of at least S pixels (native: small objects at their own scale; "
        "docs/design.md).",
    )

    _WEIGHTS = flags.DEFINE_list(
        "weights",
        None,
        "ours: w_loc,w_cls,w_seg, e.g. 1,0,1 (Table I's settings; default: the config's "
        "al.strategy.kwargs, else 1,1,1).",
    )

    def _weights(values):
        if values is None:
            return None
        with runtime.input_checks():  # one line: "error: --weights ..."
            try:
                return tuple(float(v) for v in values)
            except ValueError:
                raise ValueError(
                    f"--weights must be three numbers w_loc,w_cls,w_seg, got {','.join(values)!r}"
                ) from None

    def main(argv):
        if len(argv) > 1:
            raise app.UsageError(f"unexpected arguments: {argv[1:]}")
        config = _CONFIG.value
        weights = _weights(_WEIGHTS.value)
        runtime.setup(config.mesh)
        # Here, not above: JAX and the library take seconds to import, which --help, a
        # misspelt or missing flag and bad --weights need not wait for.
        from mtal_jax.al import select_cli

        select_cli.run(
            config,
            strategy=_STRATEGY.value or config.al.strategy.name,
            checkpoint=_CHECKPOINT.value,
            budget=_BUDGET.value,
            pool_file=_POOL.value,
            labeled_file=_LABELED.value,
            output=_OUTPUT.value,
            fmt=_FORMAT.value,
            seed=_SEED.value,
            progress=_PROGRESS.value and _sys.stderr.isatty(),  # bars on a terminal only
            image_url_prefix=_IMAGE_URL_PREFIX.value,
            det_score_threshold=_DET_SCORE_THRESHOLD.value,
            cls_divergence=_CLS_DIVERGENCE.value,
            crop_window=_CROP_WINDOW.value,
            weights=weights,
            round_=_ROUND.value,
        )

    runtime.run_main(main)
