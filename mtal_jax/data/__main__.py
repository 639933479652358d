"""Dataset inspection CLI.

Usage (from the repository root)::

    python -m mtal_jax.data summary --config configs/camvid.py --data-root /path/to/camvid
    python -m mtal_jax.data summary --config configs/nuimages.py:tiny --data-root /data/nuimages \
        --data-dir /tmp/tfds

``summary`` prepares the dataset of the config's ``data`` section if needed (into
``--data-dir`` or ``config.data.data_dir``), prints what preparation skipped, and
prints as its last line ``{"splits": {"<split>": {"images": N, "boxes_per_class":
{"<class name>": n, ...}}, ...}}``.

``seg-weights`` prints the median-frequency class weights of the segmentation classes of
the config's training split (``summary.median_frequency_weights``) and, as its last line,
the ``--config.loss.seg_class_weights=...`` override that uses them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from mtal_jax import config_file, runtime


def load_config(spec: str):
    """``config_file.load(spec)``; a missing file ends the program with its name."""
    try:
        return config_file.load(spec)
    except FileNotFoundError as e:
        raise SystemExit(str(e)) from None


def _plain(value):
    return value.to_dict() if hasattr(value, "to_dict") else dict(value or {})


def main(argv: list[str] | None = None, *, setup: bool = False) -> int:
    """Runs the command of ``argv`` (default ``sys.argv[1:]``); ``setup``: ``runtime.setup``
    once the command line is read (the program's logs; tests leave it out)."""
    parser = argparse.ArgumentParser(
        prog="python -m mtal_jax.data", description=__doc__.split("\n")[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    summary_parser = commands.add_parser("summary", help="prepare if needed, print split counts")
    weights_parser = commands.add_parser(
        "seg-weights", help="median-frequency weights of the segmentation classes"
    )
    weights_parser.add_argument("--split", help="split to count (default config.data.train_split)")
    for p in (summary_parser, weights_parser):
        p.add_argument("--config", required=True, help="config file[:preset]")
        p.add_argument("--data-root", help="dataset files (default config.data.root)")
        p.add_argument("--data-dir", help="prepared files (default config.data.data_dir)")
    args = parser.parse_args(argv)
    if setup:
        runtime.setup()  # readable logs; TFDS's config dump and the OpenCV hint hidden
    # Here, not above: they import JAX and TFDS (seconds), which --help and a usage error
    # need not wait for.
    from mtal_jax.data import catalog, errors, summary

    data = load_config(args.config).data
    try:
        builder = catalog.prepare(
            data.name,
            data_dir=os.path.expanduser(args.data_dir or data.data_dir),
            root=args.data_root if args.data_root is not None else data.get("root", ""),
            builder_kwargs=_plain(data.get("builder_kwargs")),
        )
    except catalog.DataRootError as e:  # one line, naming this command's option
        if runtime.wants_traceback():
            raise
        raise SystemExit(f"error: {str(e).replace('--config.data.root', '--data-root')}") from None
    except (catalog.BuilderOptionError, errors.DatasetError) as e:  # names the key or file
        if runtime.wants_traceback():
            raise
        raise SystemExit(f"error: {e}") from None
    print(f"{data.name}: {builder.data_dir}")
    if args.command == "seg-weights":
        split = args.split or data.train_split
        if split not in builder.info.splits:
            raise SystemExit(
                f"error: no split {split!r} in {data.name} ({list(builder.info.splits)})"
            )
        result = summary.median_frequency_weights(builder, split)
        width = max(len(c) for c in result["classes"])
        for name, n, f, w in zip(
            result["classes"], result["pixels"], result["frequency"], result["weights"]
        ):
            print(f"  {name:<{width}}  pixels {n:>10}  frequency {f:.4f}  weight {w:.4f}")
        print(f'--config.loss.seg_class_weights="{tuple(result["weights"])}"')
        sys.stdout.flush()
        return 0
    for line in summary.skipped_lines(builder):
        print(line)
    print(json.dumps(summary.summarize(builder)))
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(setup=True))
