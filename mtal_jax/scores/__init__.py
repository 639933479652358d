"""Per-image informativeness scores, one paper equation per function (pure, jittable).

``consistency`` holds the paper's S_loc, S_cls, S_seg (Eq. 1-3) and their combination
(Algorithm 1), with the divergences of S_cls in ``divergence``; ``boxmask`` builds BoxMasks
(Section III-C) from crops of the detected boxes (``box_crops``: crop windows and the packed
crops run through the network); ``consistency_score`` is the score function of ``ours``;
``uncertainty``, ``cald``, ``equal``, ``diversity`` and ``loss_prediction`` hold the
baselines' scores (Section IV-B).
"""
