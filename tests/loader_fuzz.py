"""Worker of tests/test_data_fuzz.py: mutates valid annotation records of one loader (hypothesis)
and runs its example generator under a memory cap.

    python tests/loader_fuzz.py LOADER MAX_EXAMPLES     (LOADER: coco, camvid, nuimages, openlabel)
    python tests/loader_fuzz.py memory_cap 0            (checks that the cap is enforced)

Property: preparing a dataset from the mutated files (``on_error`` "raise" or "skip") either
raises ``DatasetError`` or finishes; then every example encodes, keys are unique, and (COCO,
CamVid) every input frame is either written or counted as skipped. Anything else (another
exception, a crash, memory beyond the cap) fails. Exit status 0 when the property held.
"""

from __future__ import annotations

import copy
import json
import math
import os
import pathlib
import resource
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

MEMORY_CAP_EXTRA_BYTES = 2 << 30  # Above the address space the imports took.

# Values a record field is replaced with: wrong types, NaN/Inf/huge numbers, paths.
VALUES = [
    math.nan, math.inf, -math.inf, 1e308, 1e12, -1e9, 2**64, -(2**63), -1, 0, 0.5, True,
    None, "", "x", "../../../../etc/passwd", "/etc/passwd", "a\x00b", "é", "A" * 5000,
    [], {}, [1, 2], [[1.0, 2.0, 3.0]], [[math.nan, 1.0, 2.0, 3.0, 4.0, 5.0]],
    [[0, 0, 1e12, 0, 1e12, 1e12]], {"size": [2**31, 2**31], "counts": "0"},
    {"size": [20, 30], "counts": [2**40]}, {"size": [20, 30], "counts": [600, -5]},
]  # fmt: skip


def _cap_memory() -> int:
    with open("/proc/self/status") as f:
        vm_kib = next(int(line.split()[1]) for line in f if line.startswith("VmSize:"))
    limit = vm_kib * 1024 + MEMORY_CAP_EXTRA_BYTES
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    return limit


# ---------------------------------------------------------------- JSON mutations


def _paths(node, prefix=()) -> list[tuple]:
    """Every path (tuple of keys / indices) to a value inside ``node``, depth first."""
    out = []
    if isinstance(node, dict):
        items = list(node.items())
    elif isinstance(node, list):
        items = list(enumerate(node))
    else:
        return out
    for key, value in items[:50]:
        out.append((*prefix, key))
        out.extend(_paths(value, (*prefix, key)))
    return out


def _get(node, path):
    for key in path:
        node = node[key]
    return node


def mutate_document(data, document):
    """Applies 1-3 drawn mutations to a JSON document (in place); returns it."""
    from hypothesis import strategies as st

    for _ in range(data.draw(st.integers(1, 3), label="mutations")):
        paths = _paths(document)
        if not paths:
            break
        path = paths[data.draw(st.integers(0, len(paths) - 1), label="path")]
        parent, key = _get(document, path[:-1]), path[-1]
        kind = data.draw(st.sampled_from(["set", "set", "delete", "duplicate", "copy"]))
        if kind == "set":
            parent[key] = copy.deepcopy(data.draw(st.sampled_from(VALUES), label="value"))
        elif kind == "delete":
            del parent[key]
        elif kind == "duplicate" and isinstance(parent, list):
            parent.append(copy.deepcopy(parent[key]))  # A duplicate record (same ids).
        else:  # Another field's value here (ids of one record in another, ...).
            other = paths[data.draw(st.integers(0, len(paths) - 1), label="other")]
            parent[key] = copy.deepcopy(_get(document, other))
    return document


def _write_json(path: pathlib.Path, document) -> None:
    path.write_text(json.dumps(document, allow_nan=True))  # NaN / Infinity as JS literals


# ---------------------------------------------------------------- loaders


def _setup(loader: str, root: pathlib.Path):
    """Writes the valid tiny dataset; returns (files to mutate, builder module, options)."""
    if loader == "coco":
        from mtal_jax.data import coco_folder
        from tests import test_data_coco_folder as t

        t._write_tiny(root, semantic=False)
        return [root / "annotations" / "instances_train.json"], coco_folder.CocoFolder
    if loader == "nuimages":
        from mtal_jax.data import nuimages
        from tests import test_data_nuimages as t

        t._write_tiny(root)
        tables = root / "v1.0-mini"
        return sorted(tables.glob("*.json")), nuimages.Nuimages
    if loader == "openlabel":
        from mtal_jax.data import openlabel
        from tests import test_data_openlabel as t

        t._write_tiny(root)
        return sorted((root / "train").glob("*.json")), openlabel.Openlabel
    if loader == "camvid":
        from mtal_jax.data import camvid
        from tests import fixtures_camvid

        fixtures_camvid.write_tiny_camvid(root)
        return [root / "train.txt"], camvid.Camvid
    raise SystemExit(f"unknown loader {loader}")


def _mutate_camvid(data, path: pathlib.Path) -> None:
    """Mutates the lines of a CamVid list: tokens, duplicates, deletions, non-UTF-8 bytes."""
    from hypothesis import strategies as st

    lines = [line.split(" ") for line in path.read_text().splitlines()]
    raw = {}
    for _ in range(data.draw(st.integers(1, 3), label="mutations")):
        if not lines:
            break
        i = data.draw(st.integers(0, len(lines) - 1), label="line")
        kind = data.draw(st.sampled_from(["token", "delete", "duplicate", "bytes", "extra"]))
        if kind == "token" and lines[i]:
            j = data.draw(st.integers(0, len(lines[i]) - 1), label="token")
            lines[i][j] = str(data.draw(st.sampled_from(VALUES), label="value"))[:200]
        elif kind == "delete":
            del lines[i]
        elif kind == "duplicate":
            lines.append(list(lines[i]))
        elif kind == "bytes":
            raw[i] = data.draw(st.binary(min_size=1, max_size=20), label="bytes")
        else:
            lines[i].append("extra")
    out = b""
    for i, tokens in enumerate(lines):
        line = raw.get(i, " ".join(tokens).encode("utf-8", "surrogateescape"))
        out += line.replace(b"\n", b" ") + b"\n"
    path.write_bytes(out)


def _expected_frames(loader: str, files: list[pathlib.Path]) -> int | None:
    """Input frames of the mutated files, when the count is well defined."""
    if loader == "camvid":
        return sum(1 for line in files[0].read_bytes().splitlines() if line.strip())
    if loader == "coco":
        try:
            images = json.loads(files[0].read_text())["images"]
        except (ValueError, KeyError, TypeError):
            return None
        return len(images) if isinstance(images, list) else None
    return None


def run_builder(builder_cls, root: pathlib.Path, on_error: str, tfds_dir: pathlib.Path):
    """Runs every split's generator and encodes the examples (no TFDS writing, for speed).

    Returns:
      ``{split: (written, skipped frames)}``; raises what the builder raises.
    """
    builder = builder_cls(root=str(root), on_error=on_error, data_dir=str(tfds_dir))
    result = {}
    for split, generator in builder._split_generators(None).items():
        keys = set()
        for key, example in generator:
            assert key not in keys, f"duplicate key {key!r} reached the writer"
            keys.add(key)
            builder.info.features.encode_example(example)
        skipped = builder.info.metadata["skipped"][split]
        result[split] = (len(keys), sum(skipped["frames"].values()))
    return result


def fuzz(loader: str, max_examples: int) -> None:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from mtal_jax.data import errors

    base = pathlib.Path(tempfile.mkdtemp(prefix=f"fuzz_{loader}_"))
    counter = iter(range(10**9))

    @settings(
        max_examples=max_examples, deadline=None, database=None,
        derandomize=not os.environ.get("FUZZ_RANDOM"),  # FUZZ_RANDOM=1: explore new cases
        suppress_health_check=list(HealthCheck), print_blob=True,
    )  # fmt: skip
    @given(data=st.data(), on_error=st.sampled_from(["raise", "skip"]))
    def check(data, on_error):
        root = base / f"case{next(counter)}"
        files, builder_cls = _setup(loader, root / "data")
        if loader == "camvid":
            _mutate_camvid(data, files[0])
        else:
            path = files[data.draw(st.integers(0, len(files) - 1), label="file")]
            _write_json(path, mutate_document(data, json.loads(path.read_text())))
        try:
            result = run_builder(builder_cls, root / "data", on_error, root / "tfds")
        except errors.DatasetError:
            return
        expected = _expected_frames(loader, files)
        if on_error == "skip" and expected is not None:
            counted = sum(w + s for w, s in result.values())
            assert counted == expected, f"{expected} frames in, {result} written/skipped"

    check()


def main(loader: str, max_examples: int) -> None:
    # Everything is imported before the cap (tfds, PIL, pycocotools).
    from absl import logging

    logging.set_verbosity(logging.ERROR)  # Skips are counted, not shown.
    limit = _cap_memory()
    print(f"address space capped at {limit / 2**30:.1f} GiB", flush=True)
    if loader == "memory_cap":
        try:
            blob = bytearray(MEMORY_CAP_EXTRA_BYTES + (1 << 30))
        except MemoryError:
            print("cap enforced", flush=True)
            return
        raise SystemExit(f"allocated {len(blob)} bytes above the cap")
    fuzz(loader, max_examples)
    print("property held", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
