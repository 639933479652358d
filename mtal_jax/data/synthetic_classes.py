"""The label space of ``synthetic_driving``: its classes and scene conditions.

Detection classes are the objects of :mod:`mtal_jax.data.synthetic_objects`; segmentation
classes are the stuff classes of :mod:`mtal_jax.data.synthetic_street` followed by the
detection classes (``DET_TO_SEG`` maps one to the other), and the ``street_furniture``
variant appends ``FURNITURE_CLASSES``. A scene's condition is the last ``_``-separated
field of its ``image_id`` (``"train_000123_night"``; ``mtal_jax.data.synthetic``).
Plain data, no dependencies: the renderer, the builder and the analyses read it.
"""

from __future__ import annotations

STUFF_CLASSES = ("sky", "building", "road", "sidewalk", "vegetation")
DET_CLASSES = ("car", "truck", "bus", "pedestrian", "cyclist", "traffic_sign")
SEG_CLASSES = STUFF_CLASSES + DET_CLASSES
DET_TO_SEG = tuple(range(len(STUFF_CLASSES), len(SEG_CLASSES)))
# Segmentation classes of the ``street_furniture`` variant, appended so that the others keep
# their ids: lamp posts on the sidewalks and fences along the roadside.
FURNITURE_CLASSES = ("pole", "fence")
DEFAULT_CLASS_PROBS = (0.50, 0.08, 0.04, 0.20, 0.06, 0.12)  # long tail, order of DET_CLASSES
CONDITIONS = ("day", "night", "fog", "glare")
