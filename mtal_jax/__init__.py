"""mtal_jax: multi-task (detection + segmentation) consistency active learning in JAX/Flax.

Implements Hekimoglu et al., "Multi-Task Consistency for Active Learning" (ICCV 2023
Workshops): a multi-task network, the paper's BoxMask and S_loc / S_cls / S_seg scores,
its baselines, and the active-learning protocol with continuous training and exact resume.
Layers, contracts and where to add a strategy, a dataset or a metric: ``docs/design.md``.
"""
