"""Training: ``state`` (TrainState), ``step`` (pure train / eval / predict factories),
``loop`` (the resumable training loop, shell) and ``evaluate`` (mAP, mIoU over a split)."""
