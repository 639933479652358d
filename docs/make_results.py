"""Rebuilds docs/results.md and docs/results/<dataset>/ from the run directories.

  python docs/make_results.py

Reads runs/{default,camvid,camvid_table1,default_all} (results.json, reference metrics,
selections, logs for wall times; partial runs work) and the prose in docs/results_src/
(head.md, tail.md, longer_cycles_run.md: the interpretation, written by hand against the numbers).
The analysis figures (Table II, Fig. 5, Fig. 6) come from the commands in head.md.
"""

import collections
import glob
import json
import math
import os
import re
import sys

M = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, M)
from mtal_jax import jsonio, reporting

R = f"{M}/docs/results"
SRC = f"{M}/docs/results_src"


def read(p):
    return open(p).read().strip() if os.path.exists(p) else "_(not available yet)_"


def load(run):
    p = f"{M}/{run}/results.json"
    return jsonio.read(p) if os.path.exists(p) else []


def write_text(path, text):
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def dump_records(records, path):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(records, f)  # one line: the records are large


def wall(log):
    ts = []
    with open(f"{M}/{log}", errors="ignore") as f:
        lines = f.readlines()
    for line in lines:
        m = re.search(r"[IW]11(\d\d) (\d\d):(\d\d):(\d\d)", line)
        if m:
            day, h, mi, s = map(int, m.groups())
            ts.append(day * 86400 + h * 3600 + mi * 60 + s)
    if not ts:
        return "n/a"
    d = max(ts) - min(ts)
    return f"{d // 3600} h {d % 3600 // 60:02d} min"


def supp(records):
    by = collections.defaultdict(lambda: collections.defaultdict(list))
    for r in records:
        by[r["strategy"]][r["trial"]].append(r)
    lines = [
        "| strategy | trials (cycles done) | fraction at 65 % of full mDSQ (mean curve) | at 70 % | final mDSQ | final mAP | final mIoU |",
        "|---|---|---|---|---|---|---|",
    ]
    summ = reporting.summarize(records)
    for s, trials in by.items():
        sm = summ[s]
        fr, md = sm.fractions, sm.means["mdsq"]
        f80 = reporting.label_efficiency(fr, md, target=0.65)
        f85 = reporting.label_efficiency(fr, md, target=0.70)
        fmt = lambda v: "not reached" if math.isnan(v) else f"{100 * v:.1f} %"
        finals = [max(rs, key=lambda r: r["cycle"]) for rs in trials.values()]
        full = [f for f in finals if f["cycle"] == max(r["cycle"] for r in records)]

        def ms(key, full=full):
            import numpy as np

            v = np.array([f[key] for f in full])
            if not len(v):
                return "—"
            return (
                f"{v.mean():.4f} ± {v.std(ddof=1) if len(v) > 1 else 0:.4f}"
                if key != "mdsq"
                else f"{v.mean():.3f} ± {v.std(ddof=1) if len(v) > 1 else 0:.3f}"
            )

        cyc = ", ".join(str(max(r["cycle"] for r in rs)) for rs in trials.values())
        lines.append(
            f"| {s} | {len(trials)} ({cyc}) | {fmt(f80)} | {fmt(f85)} | {ms('mdsq')} | {ms('map')} | {ms('miou')} |"
        )
    return "\n".join(lines)


def hard_share(run):
    shares = collections.defaultdict(lambda: [0, 0])
    for sel in glob.glob(f"{M}/{run}/trial_*/*/cycle_*/selection.json"):
        s = jsonio.read(sel)
        ids = s["image_ids"]
        hard = sum(1 for i in ids if i.rsplit("_", 1)[-1] in ("night", "fog", "glare"))
        shares[s["strategy"]][0] += hard
        shares[s["strategy"]][1] += len(ids)
    rows = ["| strategy | hard scenes selected | share |", "|---|---|---|"]
    for k, (h, n) in sorted(shares.items()):
        rows.append(f"| {k} | {h} / {n} | {100 * h / max(n, 1):.1f} % |")
    return "\n".join(rows)


SETTINGS = {
    "ours_loc": (1, 0, 0),
    "ours_cls": (0, 1, 0),
    "ours_seg": (0, 0, 1),
    "ours_loc_cls": (1, 1, 0),
    "ours_loc_seg": (1, 0, 1),
    "ours_cls_seg": (0, 1, 1),
    "ours_all": (1, 1, 1),
}


def table1(records):
    import numpy as np

    curves = reporting._curves(records)
    lines = [
        "| S_loc | S_cls | S_seg | run name | trials | mDSQ 50 % | mDSQ 70 % | mDSQ 90 % | mAP 90 % | mIoU 90 % |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, w in SETTINGS.items():
        trials = curves.get(name, {})
        cells = []
        for metric, f in (("mdsq", 0.5), ("mdsq", 0.7), ("mdsq", 0.9), ("map", 0.9), ("miou", 0.9)):
            v = np.array([reporting._interp(c, f, metric) for c in trials.values()])
            v = v[np.isfinite(v)]
            nd = 3 if metric == "mdsq" else 4
            cells.append(
                "—"
                if not len(v)
                else f"{v.mean():.{nd}f} ± {(v.std(ddof=1) if len(v) > 1 else 0):.{nd}f}"
            )
        mark = lambda x: "✓" if x else ""
        lines.append(
            f"| {mark(w[0])} | {mark(w[1])} | {mark(w[2])} | {name} | {len(trials)} | "
            + " | ".join(cells)
            + " |"
        )
    return "\n".join(lines)


def main():
    """Rebuilds docs/results.md and docs/results/* from the run directories."""
    out = [read(f"{SRC}/head.md")]
    for name, title, run, log in [
        (
            "synthetic",
            "Synthetic default: every strategy, 3 trials",
            "runs/default",
            "runs/default.log",
        ),
        ("camvid", "CamVid: every strategy, 3 trials", "runs/camvid", "runs/camvid.log"),
    ]:
        d = os.path.join(R, name)
        os.makedirs(d, exist_ok=True)
        recs = load(run)
        if recs:
            reporting.write_summary(recs, d)
            dump_records(recs, os.path.join(d, "results.json"))
            write_text(os.path.join(d, "supplementary.md"), supp(recs) + "\n")
        ref = jsonio.read(f"{M}/{run}/reference/metrics.json")
        out.append(f"\n## {title}\n")
        out.append(
            f"Command: `python train.py --config configs/{'default' if name == 'synthetic' else 'camvid'}.py --workdir {run}`; "
            f"wall time {wall(log)} (sharing the 2 cores with the other dataset's run). "
            f"Reference (100 % of the pool, `{run}/reference`): mAP {ref['map']:.4f}, AP50 {ref['ap50']:.4f}, mIoU {ref['miou']:.4f}. "
            f"{len(recs)} result records (`docs/results/{name}/results.json`).\n"
        )
        out.append(read(os.path.join(d, "summary.md")).replace("## ", "### "))
        out.append(
            "\n### Supplementary: lower targets and final values (mean ± std over trials)\n\n"
            + read(os.path.join(d, "supplementary.md"))
        )
        out.append(f"\n![mDSQ]({name}/mdsq.png) ![mAP]({name}/map.png) ![mIoU]({name}/miou.png)\n")
        out.append(
            "### Table II: BoxMask accuracy (reference model, eval split)\n\n"
            + read(os.path.join(d, "table2_boxmask_accuracy.md"))
        )
        out.append(f"\n![Table II]({name}/table2_boxmask_accuracy.png)\n")
        out.append(
            "### Figure 6: correlations on the unlabeled pool of cycle 0 (trial 0, cycle-0 model)\n\n"
            + read(os.path.join(d, "fig6_correlation.md"))
            .replace("**Pearson**", "Pearson:")
            .replace("**Spearman**", "Spearman:")
        )
        out.append(f"\n![Figure 6]({name}/fig6_correlation.png)\n")
        bg = (
            "gray background: model outputs only, no CamVid pixels"
            if name == "camvid"
            else "drawn on the input image"
        )
        out.append(
            f"### Figure 5: random vs CALD vs ours after the last cycle (trial 0; {bg})\n\n"
            "Per image, one row per model: boxes; segmentation; BoxMasks; disagreement (S_loc/S_seg pixels).\n\n"
            f"![Figure 5]({name}/fig5_compare.png)\n"
        )
        if name == "synthetic":
            out.append(
                "### Rare hard scenes among the selections\n\nShare of night/fog/glare scenes among the images each strategy selected over cycles 1-5, all trials (the pool holds about 5 %):\n\n"
                + hard_share(run)
                + "\n"
            )

    old = load("runs/default_all")
    if old:
        d = os.path.join(R, "synthetic_200steps")
        os.makedirs(d, exist_ok=True)
        reporting.write_summary(old, d)
        dump_records(old, os.path.join(d, "results.json"))
        out.append("\n## Synthetic, longer cycles: every strategy, 1 trial (earlier run)\n")
        out.append(read(f"{SRC}/longer_cycles_run.md"))
        out.append(read(os.path.join(d, "summary.md")).replace("## ", "### "))
        out.append("\n![mDSQ](synthetic_200steps/mdsq.png)\n")

    t1 = load("runs/camvid_table1")
    out.append("\n## Table I: ablation of the three scores on CamVid\n")
    if os.path.exists(f"{M}/runs/camvid_table1.log"):
        out.append(
            f"Command: `python train.py --config configs/camvid.py:table1 --workdir runs/camvid_table1`; wall time {wall('runs/camvid_table1.log')}. "
            f"{len(t1)} result records (`docs/results/camvid_table1/results.json`). Values interpolated at the labeled fraction, mean ± std over trials.\n"
        )
    if t1:
        d = os.path.join(R, "camvid_table1")
        os.makedirs(d, exist_ok=True)
        reporting.write_summary(t1, d)
        dump_records(t1, os.path.join(d, "results.json"))
        out.append(table1(t1))
        out.append("\n![mDSQ](camvid_table1/mdsq.png)\n")
    out.append(read(f"{SRC}/tail.md"))
    write_text(f"{M}/docs/results.md", "\n".join(out) + "\n")
    print("written", len(load("runs/default")), len(load("runs/camvid")), len(t1))


if __name__ == "__main__":
    main()
