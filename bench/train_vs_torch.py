"""Training step of the default network: JAX (library defaults) vs a PyTorch twin.

  pip install -e '.[bench]'          # torch (CPU wheel); never a library dependency
  python bench/train_vs_torch.py --quick          # < 10 min on the 2-core CPU box
  python bench/train_vs_torch.py --rounds 7 --steps 3 --json /tmp/vs_torch.json

The twin (``TorchModel`` + ``torch_losses``) is the default experiment's network and loss
(``configs/default.py``: tiny ResNet, FPN, CenterNet head, segmentation head, two LL4AL
loss-prediction modules; focal + L1 + cross-entropy + ranking loss) written in PyTorch and
loaded with the Flax model's weights (``load_flax_params``); ``check_twin`` asserts that
outputs and loss terms agree to 1e-4. The timed step is the whole update in both: forward,
loss, backward, global-norm clipping, AdamW (PyTorch: ``clip_grad_norm_`` + ``AdamW``).

Timed side by side in one process, interleaved round by round (the machine is shared):
torch eager and ``torch.compile``, each NCHW and channels_last, and JAX with the library's
default CPU settings (``runtime.configure_host_devices``: the virtual devices and XLA:CPU
flags every entrypoint uses, batch sharded over the mesh). Medians of seconds per step.
The last line is ``jax_over_torch=<best torch time / JAX time>`` (above 1 = JAX faster).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import pathlib
import statistics
import sys
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch
import torch.nn.functional as F
from torch import nn

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
HEATMAP_BIAS = -math.log((1.0 - 0.1) / 0.1)


# ----------------------------------------------------------------------------- network


class ConvSame(nn.Conv2d):
    """``nn.Conv2d`` with Flax/TF "SAME" padding (asymmetric for even inputs at stride 2)."""

    def __init__(self, cin, cout, k, stride=1, bias=True):
        super().__init__(cin, cout, k, stride, padding=0, bias=bias)
        self.k, self.s = k, stride
        if stride == 1 and k % 2 == 1:
            self.padding = (k // 2, k // 2)  # symmetric: let the kernel pad

    def forward(self, x):
        if self.s > 1 and self.k > 1:
            pads = []
            for size in (x.shape[-1], x.shape[-2]):  # W then H (F.pad order)
                out = -(-size // self.s)
                total = max((out - 1) * self.s + self.k - size, 0)
                pads += [total // 2, total - total // 2]
            x = F.pad(x, pads)
        return super().forward(x)


def _bn(c):
    return nn.BatchNorm2d(c, eps=1e-5, momentum=0.1)  # Flax momentum 0.9 = torch 0.1


class BasicBlock(nn.Module):
    def __init__(self, cin, width, stride):
        super().__init__()
        self.conv1 = ConvSame(cin, width, 3, stride, bias=False)
        self.bn1 = _bn(width)
        self.conv2 = ConvSame(width, width, 3, 1, bias=False)
        self.bn2 = _bn(width)
        self.proj = None
        if cin != width or stride != 1:
            self.proj = ConvSame(cin, width, 1, stride, bias=False)
            self.bn_proj = _bn(width)

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        if self.proj is not None:
            x = self.bn_proj(self.proj(x))
        return F.relu(x + y)


class Branch(nn.Module):
    def __init__(self, cin, ch, out):
        super().__init__()
        self.conv = ConvSame(cin, ch, 3)
        self.out = ConvSame(ch, out, 1)

    def forward(self, x):
        return self.out(F.relu(self.conv(x)))


class TorchModel(nn.Module):
    """PyTorch twin of ``multitask.Model`` with a BasicBlock variant without 7x7 stem.

    Attributes mirror the Flax module names, so that ``load_flax_params`` maps one to one.
    """

    def __init__(self, variant, num_det, num_seg, neck=64, head=64, loss_prediction=True):
        super().__init__()
        if variant.bottleneck or variant.stem_7x7:
            raise ValueError("the twin covers the BasicBlock variants with the 3x3 stem")
        sw = variant.stem_width
        self.stem1, self.bn_stem1 = ConvSame(3, sw, 3, 2, bias=False), _bn(sw)
        self.stem2, self.bn_stem2 = ConvSame(sw, sw, 3, 2, bias=False), _bn(sw)
        self.blocks, self.stage_ends, cin = nn.ModuleDict(), [], sw
        for i, (n, w) in enumerate(zip(variant.blocks, variant.widths)):
            for j in range(n):
                name = f"stage{i + 1}_block{j + 1}"
                self.blocks[name] = BasicBlock(cin, w, 2 if (i > 0 and j == 0) else 1)
                cin = w
            self.stage_ends.append(name)
        widths = variant.widths
        self.laterals = nn.ModuleDict(
            {f"lateral{i + 1}": ConvSame(c, neck, 1) for i, c in enumerate(widths)}
        )
        self.fpn_out = ConvSame(neck, neck, 3)
        self.heatmap = Branch(neck, head, num_det)
        self.size = Branch(neck, head, 2)
        self.offset = Branch(neck, head, 2)
        self.seg = Branch(neck, head, num_seg)
        self.loss_prediction = loss_prediction
        if loss_prediction:
            self.lp = nn.ModuleDict()
            for t in range(2):
                for i, c in enumerate(widths):
                    self.lp[f"task{t}_fc{i + 1}"] = nn.Linear(c, 128)
                self.lp[f"task{t}_out"] = nn.Linear(128 * len(widths), 1)
        self.register_buffer("mean", torch.tensor(MEAN).view(1, 3, 1, 1) * 255.0)
        self.register_buffer("std", torch.tensor(STD).view(1, 3, 1, 1) * 255.0)

    def forward(self, images):
        """images [B, 3, H, W] float in [0, 255] -> dict of NCHW maps (+ loss_pred [B, 2])."""
        x = (images - self.mean) / self.std
        x = F.relu(self.bn_stem1(self.stem1(x)))
        x = F.relu(self.bn_stem2(self.stem2(x)))
        stages = []
        for name, block in self.blocks.items():
            x = block(x)
            if name in self.stage_ends:
                stages.append(x)
        y = self.laterals[f"lateral{len(stages)}"](stages[-1])
        for i in range(len(stages) - 2, -1, -1):
            y = self.laterals[f"lateral{i + 1}"](stages[i]) + F.interpolate(
                y, scale_factor=2, mode="nearest"
            )
        feats = F.relu(self.fpn_out(y))
        out = {
            "heatmap_logits": self.heatmap(feats),
            "box_size": F.softplus(self.size(feats)),
            "box_offset": self.offset(feats),
            "seg_logits": self.seg(feats),
        }
        if self.loss_prediction:
            pooled = [s.mean(dim=(2, 3)).detach() for s in stages]  # always detached
            preds = []
            for t in range(2):
                h = [F.relu(self.lp[f"task{t}_fc{i + 1}"](p)) for i, p in enumerate(pooled)]
                preds.append(self.lp[f"task{t}_out"](torch.cat(h, -1))[:, 0])
            out["loss_pred"] = torch.stack(preds, -1)
        return out


def _tensor(x) -> torch.Tensor:
    return torch.from_numpy(np.array(x, np.float32))  # a writable float32 copy


def load_flax_params(model: TorchModel, params: dict, batch_stats: dict) -> None:
    """Copies Flax ``params`` / ``batch_stats`` (of ``multitask.Model``) into the twin."""

    def conv(m, p):
        m.weight.data.copy_(_tensor(np.asarray(p["kernel"]).transpose(3, 2, 0, 1)))
        if m.bias is not None:
            m.bias.data.copy_(_tensor(p["bias"]))

    def bn(m, p, s):
        m.weight.data.copy_(_tensor(p["scale"]))
        m.bias.data.copy_(_tensor(p["bias"]))
        m.running_mean.copy_(_tensor(s["mean"]))
        m.running_var.copy_(_tensor(s["var"]))

    def dense(m, p):
        m.weight.data.copy_(_tensor(np.asarray(p["kernel"]).T))
        m.bias.data.copy_(_tensor(p["bias"]))

    r, rs = params["resnet"], batch_stats["resnet"]
    for n in ("stem1", "stem2"):
        conv(getattr(model, n), r[n])
        bn(getattr(model, "bn_" + n), r["bn_" + n], rs["bn_" + n])
    for name, block in model.blocks.items():
        for c in ("conv1", "conv2") + (("proj",) if block.proj is not None else ()):
            conv(getattr(block, c), r[name][c])
        for b in ("bn1", "bn2") + (("bn_proj",) if block.proj is not None else ()):
            bn(getattr(block, b), r[name][b], rs[name][b])
    for name, m in model.laterals.items():
        conv(m, params["fpn"][name])
    conv(model.fpn_out, params["fpn"]["out"])
    for br in ("heatmap", "size", "offset"):
        conv(getattr(model, br).conv, params["det"][br]["conv"])
        conv(getattr(model, br).out, params["det"][br]["out"])
    conv(model.seg.conv, params["seg"]["conv"])
    conv(model.seg.out, params["seg"]["out"])
    if model.loss_prediction:
        for name, m in model.lp.items():
            dense(m, params["loss_pred_head"][name])


# ----------------------------------------------------------------------------- loss


def _gaussian_radius(height, width, mo=0.7):
    b1 = height + width
    c1 = width * height * (1 - mo) / (1 + mo)
    r1 = (b1 + torch.sqrt(torch.clamp(b1**2 - 4 * c1, min=0.0))) / 2
    b2 = 2 * (height + width)
    c2 = (1 - mo) * width * height
    r2 = (b2 + torch.sqrt(torch.clamp(b2**2 - 16 * c2, min=0.0))) / 2
    b3 = -2 * mo * (height + width)
    c3 = (mo - 1) * width * height
    r3 = (b3 + torch.sqrt(torch.clamp(b3**2 - 16 * mo * c3, min=0.0))) / 2
    return torch.clamp(torch.minimum(torch.minimum(r1, r2), r3), min=0.0)


def torch_losses(out, boxes, labels, box_valid, seg_labels, weights, margin=1.0):
    """The library's training loss (``losses.per_example_losses`` + ``weighted_total`` + the
    LL4AL ranking loss of ``train.step``), batched, all examples valid.

    Args:
      out: ``TorchModel`` outputs (NCHW maps).
      boxes: [B, M, 4] xyxy input pixels; labels [B, M] int64; box_valid [B, M] bool;
      seg_labels: [B, H, W] int64.
      weights: the loss weights (det_heatmap, det_size, det_offset, seg).

    Returns:
      (total scalar, dict of scalar batch means of every term).
    """
    heat = out["heatmap_logits"]
    b, c, h, w = heat.shape
    cells = boxes / 4.0
    cx, cy = (cells[..., 0] + cells[..., 2]) / 2, (cells[..., 1] + cells[..., 3]) / 2
    bw, bh = cells[..., 2] - cells[..., 0], cells[..., 3] - cells[..., 1]
    ix = torch.clamp(torch.floor(cx), 0, w - 1)
    iy = torch.clamp(torch.floor(cy), 0, h - 1)
    radius = torch.floor(_gaussian_radius(torch.ceil(bh), torch.ceil(bw)))  # [B, M]
    sigma = (2 * radius + 1) / 6
    ys = torch.arange(h, dtype=torch.float32).view(1, 1, h, 1)
    xs = torch.arange(w, dtype=torch.float32).view(1, 1, 1, w)
    dy, dx = ys - iy[..., None, None], xs - ix[..., None, None]  # [B, M, h, w]
    g = torch.exp(-(dx**2 + dy**2) / (2 * sigma[..., None, None] ** 2))
    r4 = radius[..., None, None]
    window = (dx.abs() <= r4) & (dy.abs() <= r4) & box_valid[..., None, None]
    g = torch.where(window, g, torch.zeros_like(g))
    onehot = F.one_hot(labels, c).to(torch.float32)  # [B, M, C]
    target = (g[:, :, None] * onehot[..., None, None]).amax(dim=1).clamp(min=0.0)  # [B,C,h,w]
    logits = heat.float()
    p = torch.sigmoid(logits)
    pos = target >= 1.0 - 1e-6
    pos_term = F.logsigmoid(logits) * (1 - p) ** 2
    neg_term = F.logsigmoid(-logits) * p**2 * (1 - target) ** 4
    focal = -torch.where(pos, pos_term, neg_term).sum(dim=(1, 2, 3)) / torch.clamp(
        pos.sum(dim=(1, 2, 3)).float(), min=1.0
    )
    index = (iy * w + ix).long()  # [B, M]
    nvalid = torch.clamp(box_valid.sum(-1).float(), min=1.0)

    def l1_at(maps, tgt):
        at = torch.gather(maps.reshape(b, 2, h * w), 2, index[:, None].expand(b, 2, -1))
        l1 = (at.transpose(1, 2) - tgt).abs().sum(-1)  # [B, M]
        return torch.where(box_valid, l1, torch.zeros_like(l1)).sum(-1) / nvalid

    size_l = l1_at(out["box_size"], torch.stack([bw, bh], -1))
    offset_l = l1_at(out["box_offset"], torch.stack([cx - ix, cy - iy], -1))
    seg = out["seg_logits"]
    hh, ww = seg_labels.shape[1:]
    up = F.interpolate(seg.float(), size=(hh, ww), mode="bilinear", align_corners=False)
    valid = (seg_labels >= 0) & (seg_labels < seg.shape[1])
    nll = F.cross_entropy(up, torch.where(valid, seg_labels, 0), reduction="none")
    seg_l = torch.where(valid, nll, torch.zeros_like(nll)).sum((1, 2)) / torch.clamp(
        valid.sum((1, 2)).float(), min=1.0
    )
    per = {"det_heatmap": focal, "det_size": size_l, "det_offset": offset_l, "seg": seg_l}
    terms = {k: v.mean() for k, v in per.items()}
    total = sum(weights[k] * terms[k] for k in per)
    if "loss_pred" in out:
        det = sum(weights[k] * per[k] for k in ("det_heatmap", "det_size", "det_offset"))
        targets = torch.stack([det, weights["seg"] * seg_l], -1).detach()
        pred, half = out["loss_pred"], b // 2
        rank = 0.0
        for t in range(2):
            d_pred = pred[:half, t] - pred.flip(0)[:half, t]
            d_true = targets[:half, t] - targets.flip(0)[:half, t]
            sign = torch.where(d_true > 0, 1.0, -1.0)
            rank = rank + torch.clamp(margin - sign * d_pred, min=0.0).sum() / half
        terms["ll4al_ranking"] = rank
        total = total + rank
    terms["total"] = total
    return total, terms


def torch_batch(batch, channels_last=False):
    """``structs.Batch`` of NumPy arrays -> torch tensors (images NCHW float32)."""
    images = _tensor(batch.images).permute(0, 3, 1, 2)
    images = images.contiguous(
        memory_format=torch.channels_last if channels_last else torch.contiguous_format
    )
    return (
        images,
        _tensor(batch.boxes),
        torch.from_numpy(np.array(batch.box_labels, np.int64)),
        torch.from_numpy(np.array(batch.box_valid, bool)),
        torch.from_numpy(np.array(batch.seg_labels, np.int64)),
    )


# ----------------------------------------------------------------------------- check


def perturbed_variables(model, image_hw, seed=0, scale=0.05):
    """Flax variables of the default init with every parameter moved by N(0, scale) noise
    (zero-initialised BN scales would otherwise hide the residual branches)."""
    import jax

    from mtal_jax.models import multitask

    v = multitask.create_variables(model, jax.random.key(seed), image_hw)
    leaves, tree = jax.tree.flatten(v["params"])
    rng = np.random.default_rng(seed)
    leaves = [np.asarray(x) + rng.normal(0, scale, x.shape).astype(np.float32) for x in leaves]
    stats = jax.tree.map(np.asarray, v["batch_stats"])
    return {"params": jax.tree.unflatten(tree, leaves), "batch_stats": stats}


def check_twin(batch_size=4, image_hw=(96, 192), seed=0, tol=1e-4) -> dict:
    """Runs the Flax model and the twin on the same weights and images, train mode.

    Returns:
      {name: max |a - b| / max(1, max |b|)} for every output map and loss term.
    """
    import jax

    sys.path.insert(0, str(ROOT / "bench"))
    import default_net

    from mtal_jax import losses
    from mtal_jax.models import backbone, loss_heads
    from mtal_jax.train import step as step_lib

    cfg = default_net.config()
    model, _, _, tc = default_net.build(cfg)
    batch = default_net.scene_batch(batch_size, image_hw, cfg.data.max_boxes, seed=seed)
    v = perturbed_variables(model, image_hw, seed)

    def jax_loss(params):
        out, _ = model.apply(
            {"params": params, "batch_stats": v["batch_stats"]},
            batch.images,
            train=True,
            detach_loss_features=True,
            mutable=["batch_stats"],
        )
        per = losses.per_example_losses(out, batch)
        total, terms = losses.weighted_total(per, tc.loss_weights, batch.valid)
        targets = step_lib.task_losses(per, tc.loss_weights)
        rank = sum(
            loss_heads.margin_ranking_loss(out.loss_pred[:, t], targets[:, t], margin=1.0)
            for t in range(2)
        )
        terms["ll4al_ranking"] = rank
        terms["total"] = total + rank
        return terms["total"], (out, terms)

    (_, (jout, jterms)), jgrads = jax.value_and_grad(jax_loss, has_aux=True)(v["params"])
    tm = TorchModel(
        backbone.VARIANTS[cfg.model.backbone],
        len(default_net.synthetic_classes.DET_CLASSES),
        len(default_net.synthetic_classes.SEG_CLASSES),
        cfg.model.neck_channels,
        cfg.model.head_channels,
        loss_prediction=True,
    )
    load_flax_params(tm, v["params"], v["batch_stats"])
    tm.train()
    images, boxes, labels, bvalid, seg = torch_batch(batch)
    tout = tm(images)
    ttotal, tterms = torch_losses(tout, boxes, labels, bvalid, seg, tc.loss_weights)
    ttotal.backward()
    diffs = {}
    for k in ("heatmap_logits", "box_size", "box_offset", "seg_logits", "loss_pred"):
        a = tout[k].detach().numpy()
        a = a.transpose(0, 2, 3, 1) if a.ndim == 4 else a
        b = np.asarray(getattr(jout, k))
        diffs[k] = float(np.abs(a - b).max() / max(1.0, np.abs(b).max()))
    for k, val in jterms.items():
        diffs["loss/" + k] = float(
            abs(float(tterms[k].detach()) - float(val)) / max(1.0, abs(float(val)))
        )
    # Gradients of a few weights (backward of the whole loss).
    g_stem = tm.stem1.weight.grad.numpy().transpose(2, 3, 1, 0)
    diffs["grad/stem1"] = float(
        np.abs(g_stem - np.asarray(jgrads["resnet"]["stem1"]["kernel"])).max()
        / max(1.0, float(np.abs(np.asarray(jgrads["resnet"]["stem1"]["kernel"])).max()))
    )
    g_seg = tm.seg.out.weight.grad.numpy().transpose(2, 3, 1, 0)
    j_seg = np.asarray(jgrads["seg"]["out"]["kernel"])
    diffs["grad/seg_out"] = float(np.abs(g_seg - j_seg).max() / max(1.0, np.abs(j_seg).max()))
    bad = {k: d for k, d in diffs.items() if not d <= tol}
    if bad:
        raise AssertionError(f"twin differs from the Flax model beyond {tol}: {bad}")
    return diffs


# ----------------------------------------------------------------------------- timing


class TorchRunner:
    """One torch training setup: eager or compiled, NCHW or channels_last."""

    def __init__(self, variables, batch, cfg, tc, *, compiled, channels_last, total_steps):
        from mtal_jax.models import backbone

        sys.path.insert(0, str(ROOT / "bench"))
        import default_net

        self.model = TorchModel(
            backbone.VARIANTS[cfg.model.backbone],
            len(default_net.synthetic_classes.DET_CLASSES),
            len(default_net.synthetic_classes.SEG_CLASSES),
            cfg.model.neck_channels,
            cfg.model.head_channels,
            loss_prediction=bool(cfg.model.loss_prediction),
        )
        load_flax_params(self.model, variables["params"], variables["batch_stats"])
        self.model.train()
        if channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.batch = torch_batch(batch, channels_last)
        self.clip = tc.grad_clip_norm
        self.opt = torch.optim.AdamW(
            self.model.parameters(), lr=tc.learning_rate, weight_decay=tc.weight_decay
        )
        warm, peak = max(tc.lr_warmup_steps, 1), tc.learning_rate

        def lr_at(step):  # optax.warmup_cosine_decay_schedule(0, peak, warm, total, peak/100)
            if step < warm:
                return peak * step / warm
            frac = min((step - warm) / max(total_steps - warm, 1), 1.0)
            return peak * 0.01 + (peak - peak * 0.01) * 0.5 * (1 + math.cos(math.pi * frac))

        self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, lambda s: lr_at(s) / peak)
        weights = tc.loss_weights

        def loss_fn(images, boxes, labels, valid, seg):
            return torch_losses(self.model(images), boxes, labels, valid, seg, weights)[0]

        self.loss_fn = torch.compile(loss_fn) if compiled else loss_fn

    def step(self):
        self.opt.zero_grad(set_to_none=True)
        loss = self.loss_fn(*self.batch)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.clip)
        self.opt.step()
        self.sched.step()
        return loss


def profile_phases(model, tx, tc, st, host, mesh, rounds: int) -> dict:
    """Where the step's time goes, JAX (library defaults) vs torch eager channels_last.

    Each phase is its own jitted function (JAX) or call (torch), timed interleaved:
    ``forward`` (train-mode network), ``forward+loss`` (targets + losses, no gradient),
    ``grad`` (forward, loss and backward) and ``step`` (grad + clipping + AdamW). Differences
    between rows give the loss, backward and update shares.
    """
    import jax

    from mtal_jax import losses, sharding
    from mtal_jax.models import loss_heads
    from mtal_jax.train import step as step_lib

    batch = sharding.put_batch(host, mesh)
    w = tc.loss_weights

    def fwd(params, stats, images):
        out, _ = model.apply({"params": params, "batch_stats": stats}, images, train=True,
                             detach_loss_features=True, mutable=["batch_stats"])  # fmt: skip
        return out

    def loss(params, stats, b):
        out = fwd(params, stats, b.images)
        per = losses.per_example_losses(out, b)
        total, _ = losses.weighted_total(per, w, b.valid)
        t = step_lib.task_losses(per, w)
        return total + sum(
            loss_heads.margin_ranking_loss(out.loss_pred[:, i], t[:, i]) for i in range(2)
        )

    j_fwd = jax.jit(fwd)
    j_loss = jax.jit(loss)
    j_grad = jax.jit(jax.grad(loss))
    j_step = jax.jit(step_lib.make_train_step(model, tx, w))
    key = jax.random.key(0)
    jax_fns = {
        "forward": lambda: j_fwd(st.params, st.batch_stats, batch.images),
        "forward+loss": lambda: j_loss(st.params, st.batch_stats, batch),
        "grad": lambda: j_grad(st.params, st.batch_stats, batch),
        "step": lambda: j_step(st, batch, key),
    }
    cfg = __import__("default_net").config()
    variables = jax.tree.map(np.asarray, {"params": st.params, "batch_stats": st.batch_stats})
    r = TorchRunner(variables, host, cfg, tc, compiled=False, channels_last=True, total_steps=1000)
    tb = r.batch

    def t_fwd():
        with torch.no_grad():
            r.model(tb[0])

    def t_loss():
        with torch.no_grad():
            torch_losses(r.model(tb[0]), *tb[1:], w)

    def t_grad():
        r.opt.zero_grad(set_to_none=True)
        torch_losses(r.model(tb[0]), *tb[1:], w)[0].backward()

    torch_fns = {"forward": t_fwd, "forward+loss": t_loss, "grad": t_grad, "step": r.step}
    for f in jax_fns.values():
        jax.block_until_ready(f())
    for f in torch_fns.values():
        f()
    times = {(fw, ph): [] for fw in ("jax", "torch") for ph in jax_fns}
    for _ in range(rounds):
        for ph, jfn in jax_fns.items():
            t = time.perf_counter()
            for _ in range(2):
                jax.block_until_ready(jfn())
            times[("jax", ph)].append((time.perf_counter() - t) / 2)
            t = time.perf_counter()
            for _ in range(2):
                torch_fns[ph]()
            times[("torch", ph)].append((time.perf_counter() - t) / 2)
    med = {f"{fw}/{ph}": 1e3 * statistics.median(v) for (fw, ph), v in times.items()}
    print("phase breakdown, ms (medians; torch = eager channels_last):")
    print(f"  {'phase':14s} {'jax':>8s} {'torch':>8s} {'jax/torch':>9s}")
    for ph in jax_fns:
        a, b = med[f"jax/{ph}"], med[f"torch/{ph}"]
        print(f"  {ph:14s} {a:8.1f} {b:8.1f} {a / b:9.2f}")
    return med


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="5 rounds of 2 steps (< 10 min)")
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--steps", type=int, default=3, help="steps per timed call")
    p.add_argument("--skip_check", action="store_true")
    p.add_argument("--no_compile", action="store_true", help="skip the torch.compile runners")
    p.add_argument("--json", default="")
    p.add_argument(
        "--profile",
        action="store_true",
        help="phase breakdown (forward / loss / backward / update)",
    )
    args = p.parse_args()
    if args.quick:
        args.rounds, args.steps = 5, 2

    from mtal_jax import runtime

    runtime.configure_host_devices()  # the library's default CPU settings
    import jax

    sys.path.insert(0, str(ROOT / "bench"))
    import default_net

    from mtal_jax import sharding
    from mtal_jax.train import state as state_lib

    print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; load {os.getloadavg()}")
    print(f"jax {jax.__version__} devices {len(jax.devices())}; XLA_FLAGS "
          f"{os.environ.get('XLA_FLAGS', '')!r}; torch {torch.__version__} threads "
          f"{torch.get_num_threads()}", flush=True)  # fmt: skip
    if not args.skip_check:
        diffs = check_twin()
        print(f"twin check (max relative diff, tol 1e-4): worst {max(diffs.values()):.2e} "
              f"({max(diffs, key=diffs.get)})", flush=True)  # fmt: skip

    cfg = default_net.config()
    hw = tuple(cfg.data.image_size)
    total = 1000
    model, tx, step, tc = default_net.build(cfg, total_steps=total)
    host = default_net.scene_batch(cfg.train.batch_size, hw, cfg.data.max_boxes)
    mesh = sharding.create_mesh()
    st = sharding.put_replicated(
        state_lib.create_train_state(model, tx, jax.random.key(0), hw), mesh
    )
    variables = jax.tree.map(np.asarray, {"params": st.params, "batch_stats": st.batch_stats})
    jbatch = sharding.put_batch(host, mesh)
    jfn = jax.jit(step, donate_argnums=0)
    t0 = time.perf_counter()
    st, _ = jfn(st, jbatch, jax.random.key(0))
    jax.block_until_ready(st)
    first = {"jax": time.perf_counter() - t0}
    jax_state = [st]

    def jax_steps(n):
        s = jax_state[0]
        for _ in range(n):
            s, _ = jfn(s, jbatch, jax.random.key(0))
        jax.block_until_ready(s)
        jax_state[0] = s

    runners = {"jax": jax_steps}
    kinds = [(False, False), (False, True)] + (
        [] if args.no_compile else [(True, False), (True, True)]
    )
    for compiled, cl in kinds:
        name = f"torch_{'compile' if compiled else 'eager'}_{'channels_last' if cl else 'nchw'}"
        r = TorchRunner(
            variables, host, cfg, tc, compiled=compiled, channels_last=cl, total_steps=total
        )
        t0 = time.perf_counter()
        r.step()
        first[name] = time.perf_counter() - t0

        def torch_steps(n, r=r):
            for _ in range(n):
                r.step()

        runners[name] = torch_steps
        print(f"{name}: first step {first[name]:.1f} s", flush=True)
    times = {n: [] for n in runners}
    for rnd in range(args.rounds):
        for n, fn in runners.items():
            t = time.perf_counter()
            fn(args.steps)
            times[n].append((time.perf_counter() - t) / args.steps)
        print(f"round {rnd + 1}/{args.rounds}: load {os.getloadavg()[0]:.1f}", flush=True)
    med = {n: statistics.median(v) for n, v in times.items()}
    best_torch = min((n for n in med if n != "jax"), key=med.get)
    ratio = med[best_torch] / med["jax"]
    b = cfg.train.batch_size
    print(f"default network, batch {b} at {hw[0]}x{hw[1]}, medians of {args.rounds} rounds "
          f"x {args.steps} steps:")  # fmt: skip
    for n, m in med.items():
        print(f"  {n:28s} {m * 1e3:8.1f} ms/step  {b / m:6.1f} img/s  "
              f"jax/this {m / med['jax']:.2f}  first {first[n]:.1f} s")  # fmt: skip
    phases = (
        profile_phases(model, tx, tc, jax_state[0], host, mesh, args.rounds)
        if args.profile
        else None
    )
    if args.json:
        pathlib.Path(args.json).write_text(
            json.dumps(
                {
                    "median_s": med,
                    "times": times,
                    "first_s": first,
                    "best_torch": best_torch,
                    "jax_over_torch": ratio,
                    "load": os.getloadavg(),
                    "phases_ms": phases,
                },
                indent=1,
            )
        )
    print(f"jax_over_torch={ratio:.3f}")


if __name__ == "__main__":
    main()
