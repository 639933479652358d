"""Flax Linen models: ResNet ``backbone``, FPN ``neck``, CenterNet ``det_head``,
``seg_head``, LL4AL ``loss_heads``, assembled by ``multitask.Model`` (raw outputs only);
``pretrained`` loads converted backbone weights from a local file."""
