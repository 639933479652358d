"""Training: ``state`` (TrainState), ``step`` (pure train / eval / predict factories),
``config`` (TrainConfig and its checks), ``step_fns`` (the jitted steps of one schedule),
``loop`` (the resumable training loop, shell), ``run_files`` (a run's markers, metrics and
weights read back) and ``evaluate`` (mAP, mIoU over a split)."""
