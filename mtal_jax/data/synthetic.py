"""The embedded default dataset ``synthetic_driving``: procedural street scenes.

docs/design.md §5.

No download: every example is drawn by ``synthetic_scene.render_scene``, a pure NumPy
function, and the TFDS builder :class:`SyntheticDriving` stores the drawings in the common
example format of ``mtal_jax.data.features`` (array_record, no TensorFlow). The drawing
lives in four modules:

- ``synthetic_classes``: the classes (``DET_CLASSES``, ``SEG_CLASSES``, ``DET_TO_SEG``,
  ``FURNITURE_CLASSES``), the long-tailed default class mix and the scene ``CONDITIONS``;
- ``synthetic_street``: the camera and ground geometry, road, sidewalks, facades, tree rows
  and street furniture;
- ``synthetic_objects``: the objects' shapes, colours, placement and drawing;
- ``synthetic_scene``: ``render_scene``, which composes them, derives exact boxes and
  segmentation, and applies lighting, hard conditions and sensor noise.

Street furniture (``street_furniture=True``, off by default; for sim-to-real pretraining
towards real road scenes, ``mtal_jax.sim2real --street_furniture``): lamp posts on both
sidewalks and fences along the roadside, two more segmentation classes
(``FURNITURE_CLASSES``, ids after ``SEG_CLASSES``) without boxes. Thin classes such as
CamVid's pole and fence are the ones a network pretrained without them segments worst.

Hard conditions: a fraction ``hard_fraction`` of scenes is ``night``, ``fog`` or ``glare``;
the condition is the last ``_``-separated field of ``image_id`` (``"train_000123_night"``).

Determinism: example ``i`` of split ``s`` is ``render_scene([seed, SPLITS.index(s), i], ...)``
and depends on nothing else (same NumPy version and platform -> same bytes).

Speed (``python bench/synthetic_generation.py --prepare``, 2-vCPU project VM): 1000 scenes at
128x256 render in about 3.4 s (3.4 ms each); building the default dataset (800 + 200
examples, PNG encoding and array_record writing included) takes about 7.6 s and 52 MiB.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
from typing import ClassVar

import numpy as np
import PIL.Image
import tensorflow_datasets as tfds

from mtal_jax.data import cache, features, synthetic_classes, synthetic_scene

__all__ = [
    "SPLITS",
    "SyntheticDriving",
    "SyntheticDrivingConfig",
    "make_config",
    "prepare",
]

SPLITS = ("train", "test")


@dataclasses.dataclass(eq=False)
class SyntheticDrivingConfig(tfds.core.BuilderConfig):
    """Parameters of one ``synthetic_driving`` variant; build it with :func:`make_config`.

    The name encodes every parameter (readable fields plus a hash of all of them), so each
    variant lives in its own directory and a changed size never reads a stale cache.
    """

    num_train: int = 800
    num_test: int = 200
    height: int = 128
    width: int = 256
    seed: int = 0
    hard_fraction: float = 0.05
    max_objects: int = 12
    class_probs: tuple[float, ...] = synthetic_classes.DEFAULT_CLASS_PROBS
    min_visible_px: int = 8
    min_visible_fraction: float = 0.2
    street_furniture: bool = False

    def render_params(self) -> dict:
        """Keyword arguments of :func:`render_scene` (besides rng, height, width)."""
        return {
            "max_objects": self.max_objects,
            "hard_fraction": self.hard_fraction,
            "class_probs": self.class_probs,
            "min_visible_px": self.min_visible_px,
            "min_visible_fraction": self.min_visible_fraction,
            "street_furniture": self.street_furniture,
        }

    def seg_classes(self) -> tuple[str, ...]:
        """The segmentation classes of this variant."""
        return synthetic_classes.SEG_CLASSES + (
            synthetic_classes.FURNITURE_CLASSES if self.street_furniture else ()
        )


# Fields added after datasets had been generated, with their default: left out of the name
# while at the default, so that existing variants keep their names (and caches).
_LATER_FIELDS = {"street_furniture": False}


def parameter_names() -> tuple[str, ...]:
    """The ``SyntheticDrivingConfig`` fields ``make_config`` (``builder_kwargs``) may set."""
    base = {f.name for f in dataclasses.fields(tfds.core.BuilderConfig)}
    return tuple(sorted({f.name for f in dataclasses.fields(SyntheticDrivingConfig)} - base))


def make_config(**params) -> SyntheticDrivingConfig:
    """Returns the config of the given ``SyntheticDrivingConfig`` fields (others default).

    Raises:
      TypeError: on an unknown parameter name.
      ValueError: on a value that does not convert to the field's type.
    """
    fields = set(parameter_names())
    if unknown := set(params) - fields:
        raise TypeError(f"unknown parameters {sorted(unknown)}; valid: {sorted(fields)}")
    defaults = SyntheticDrivingConfig(name="default")
    for key, value in params.items():  # plain Python types, so the name hash is stable
        if key == "class_probs":
            params[key] = tuple(float(p) for p in value)
        else:
            params[key] = type(getattr(defaults, key))(value)
    values = dataclasses.asdict(dataclasses.replace(defaults, **params))
    values = {
        k: values[k]
        for k in sorted(fields)
        if not (k in _LATER_FIELDS and values[k] == _LATER_FIELDS[k])
    }
    digest = hashlib.sha1(json.dumps(values, sort_keys=True).encode()).hexdigest()[:8]
    name = (
        f"h{values['height']}_w{values['width']}_train{values['num_train']}"
        f"_test{values['num_test']}_seed{values['seed']}_{digest}"
    )
    return SyntheticDrivingConfig(name=name, description=json.dumps(values), **params)


class SyntheticDriving(tfds.core.GeneratorBasedBuilder):
    """TFDS builder of procedurally generated street scenes (no download, no TensorFlow).

    ``SyntheticDriving(data_dir=..., height=64, width=128, ...)`` takes the
    ``SyntheticDrivingConfig`` fields as keyword arguments (or ``config=``). Splits ``train``
    and ``test``; example ``i`` of a split is stored at position ``i`` (shuffling disabled).
    """

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES: ClassVar[dict[str, str]] = {
        "1.0.0": "Initial release."
    }  # bump VERSION when the renderer changes
    BUILDER_CONFIGS: ClassVar[list] = [
        make_config()
    ]  # the default; any other parameters make a new config

    def __init__(
        self, *, config=None, data_dir=None, file_format="array_record", version=None, **params
    ):
        if config is None:
            config = make_config(**params)
        elif params:
            raise TypeError(f"pass either config or parameters, not both: {sorted(params)}")
        if isinstance(config, SyntheticDrivingConfig):  # TFDS wants the class's own instance
            config = next((c for c in self.BUILDER_CONFIGS if c.name == config.name), config)
        super().__init__(config=config, data_dir=data_dir, file_format=file_format, version=version)

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(
            builder=self,
            description="Procedural street scenes with exact boxes and semantic masks.",
            features=features.make_features(),
            metadata=features.make_metadata(
                list(synthetic_classes.DET_CLASSES),
                list(self.builder_config.seg_classes()),
                list(synthetic_classes.DET_TO_SEG),
            ),
            disable_shuffling=True,
        )

    def _split_generators(self, dl_manager):
        del dl_manager  # nothing to download
        c = self.builder_config
        return {"train": self._generate_examples("train", c.num_train),
                "test": self._generate_examples("test", c.num_test)}  # fmt: skip

    def _generate_examples(self, split: str, num: int):
        c = self.builder_config
        for i in range(num):
            rng = [c.seed, SPLITS.index(split), i]
            scene = synthetic_scene.render_scene(rng, c.height, c.width, **c.render_params())
            yield (
                i,
                {
                    "image": _png(scene["image"]),
                    "segmentation": _png(scene["segmentation"]),
                    "boxes": scene["boxes"],
                    "box_labels": scene["box_labels"],
                    "image_id": f"{split}_{i:06d}_{scene['condition']}",
                },
            )


def _png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    PIL.Image.fromarray(array).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def prepare(data_dir: str, **params) -> SyntheticDriving:
    """Builds ``synthetic_driving`` under data_dir unless already there; returns the builder.

    Args:
      data_dir: TFDS data directory (the data lands in
        ``data_dir/synthetic_driving/<config name>/<version>``).
      **params: ``SyntheticDrivingConfig`` fields (num_train, num_test, height, width, seed,
        hard_fraction, max_objects, class_probs, min_visible_px, min_visible_fraction,
        street_furniture).
    """
    builder = SyntheticDriving(data_dir=data_dir, **params)
    return cache.download_and_prepare(builder)  # generated here: no download, quiet
