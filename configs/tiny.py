"""Tiny experiment for tests and smoke runs: 64x64 synthetic scenes, the test backbone.

2 strategies x 2 cycles x 1 trial; finishes in about a minute on a 2-core CPU.

Command:
  python train.py --config configs/tiny.py --workdir /tmp/mtal_tiny
  python train.py --config configs/tiny.py:repro --workdir /tmp/mtal_tiny_repro  # 2 trials:
      # random in both, ours in the first (al.trials_per_strategy)
"""

from configs import default


def get_config(arg=None):
    config = default.get_config()
    config.data.builder_kwargs = {
        "num_train": 40,
        "num_test": 16,
        "height": 64,
        "width": 64,
        "seed": 0,
    }
    config.data.image_size = (64, 64)
    config.data.max_boxes = 8
    config.model.backbone = "test"
    config.model.neck_channels = 16
    config.model.head_channels = 16
    config.train.steps = 6
    config.train.initial_steps = 8  # cycle 0
    config.train.full_steps = 8
    config.train.batch_size = 4
    config.train.lr_warmup_steps = 2
    config.train.log_every_steps = 2
    config.al.num_cycles = 2
    config.al.num_trials = 1
    config.al.strategies = "ours,random"
    config.al.score_batch_size = 8
    # One evaluation and one checkpoint per training run, at its end: a third of the time of a
    # tiny experiment goes to mid-run evaluations and checkpoint saves (docs/benchmarks.md
    # "The test suite"). Tests of mid-run checkpoints and evaluations set their own.
    config.eval.every_steps = 1000
    config.eval.batch_size = 8
    config.eval.max_detections = 8
    config.checkpoint.every_steps = 1000
    if arg == "repro":  # the structure of default.py:repro at test scale (tests/test_repro.py)
        config.al.strategies = "random,ours"
        config.al.num_trials = 2
        config.al.trials_per_strategy = {"random": 2, "ours": 1}
    elif arg:
        raise ValueError(f"unknown preset {arg!r} (valid: repro)")
    return config
