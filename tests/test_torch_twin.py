"""The PyTorch twin of bench/train_vs_torch.py computes the Flax model's outputs and loss."""

import importlib.util
import pathlib

import pytest

pytest.importorskip("torch")

BENCH = pathlib.Path(__file__).resolve().parents[1] / "bench" / "train_vs_torch.py"


def test_torch_twin_matches_flax_outputs_loss_and_grads():
    spec = importlib.util.spec_from_file_location("train_vs_torch", BENCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    # Same (perturbed) weights and images, train mode: every output map, every loss term
    # and two weight gradients agree to 1e-4 (relative to max(1, |value|)); check_twin
    # raises otherwise and returns the differences.
    diffs = mod.check_twin(batch_size=2, image_hw=(64, 128), tol=1e-4)
    assert {"heatmap_logits", "seg_logits", "loss_pred", "loss/total", "grad/stem1"} <= set(diffs)
    assert max(diffs.values()) <= 1e-4
