"""Tests of scores/consistency_score.py: the score function of ``ours`` (paper III-G)."""

import numpy as np

from mtal_jax import structs
from mtal_jax.scores import consistency_score

C_SEG, C_DET = 4, 2
DET_TO_SEG = np.array([1, 2], np.int32)


def test_ours_score_reads_only_the_content_pixels():
    # 2 images of 4 x 4 cells whose last row is padding (Predictions.pixel_valid), no
    # detection: S_seg is the car share of the 12 content cells, whatever the padding holds
    seg = np.zeros((2, 4, 4), np.int32)
    seg[:, 0, 0] = 1  # one car cell in the content
    seg[1, 3] = 1  # image 1: car predicted on the padding row
    det = structs.Detections(
        boxes=np.zeros((2, 1, 4), np.float32), det_probs=np.full((2, 1, C_DET), 0.5, np.float32),
        scores=np.zeros((2, 1), np.float32), labels=np.zeros((2, 1), np.int32),
        valid=np.zeros((2, 1), bool),
    )  # fmt: skip
    preds = structs.Predictions(
        detections=det, seg_probs=np.eye(C_SEG, dtype=np.float32)[seg],
        embedding=np.zeros((2, 1), np.float32), valid=np.ones(2, bool),
        pixel_valid=np.broadcast_to(np.arange(4)[None, :, None] < 3, (2, 4, 4)),
        extras={"box_valid": np.zeros((2, 1), bool), "box_masks": np.zeros((2, 1, 4, 4), bool),
                "det_to_seg": np.broadcast_to(DET_TO_SEG, (2, C_DET)),
                "boxes_dropped": np.zeros(2, np.int32)},
    )  # fmt: skip
    out = consistency_score.make_score_fn()(preds)
    np.testing.assert_allclose(out["s_seg"], [1 / 12, 1 / 12], rtol=1e-6)
    np.testing.assert_allclose(out["score"], [1 / 12, 1 / 12], rtol=1e-6)
