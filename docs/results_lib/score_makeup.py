"""What the ``ours`` score is made of, on the results page: each term's share of the
combined score's variance over the runs' selections (``mtal_jax.al.diagnostics``; paper
Algorithm 1 adds the terms), the ``kl`` settings' domination by S_cls, and the paragraph
under the side-by-side.
"""

from __future__ import annotations

import json
import os

from docs.results_lib import page_files, run_dirs, table_cells, variants
from mtal_jax import significance


def score_makeup_section(run, table1_run, d):
    """What ``ours``' combined score is made of, from the ``diagnostics.json`` of every
    selection of the main run's ``ours`` and of Table I's own runs (copied runs are the main
    run's): per strategy, mean shares of the score's variance and degenerate fractions
    (``mtal_jax.al.diagnostics.aggregate``); writes ``score_diagnostics.json`` into ``d``."""
    from mtal_jax.al import diagnostics

    entries = []
    for source in (run, table1_run):
        if source and os.path.isdir(source):
            entries += [
                e
                for e in diagnostics.collect(source)
                if not run_dirs.is_copied(
                    os.path.join(source, f"trial_{e['trial']}", e["strategy"]), source
                )
            ]
    aggregated = diagnostics.aggregate(entries)
    if not aggregated:
        return ""
    page_files.write_text(
        os.path.join(d, "score_diagnostics.json"), json.dumps(aggregated, indent=1) + "\n"
    )
    text = [
        "\n### What the `ours` score is made of\n",
        (
            "Read from the `diagnostics.json` beside every selection (`mtal_jax.al.diagnostics`): "
            "per strategy, the mean over its selections (trials x cycles 1-5) of the pool's "
            "images, the share without a scored box (no detection at or above "
            "`det_score_threshold`: the score is then w_seg S_seg alone) in the pool and among "
            "the images the strategy selected from it, the share whose best "
            "box has an empty BoxMask, each weighted term's share of the combined score's "
            "variance (Cov(term, score) / Var(score); mean ± SD over selections), and how many "
            "of the selected images each term alone (Table I's one-hot setting) would also "
            "have selected from the same pool with the same model (`selection.top_k` of the "
            "stored `scores.npz`; a one-hot row reads 100 % for its own term by construction; "
            "`docs/results/<dataset>/score_diagnostics.json`). Command: this page's "
            "`python docs/make_results.py` (no training; seconds), or per run "
            "`mtal_jax.al.diagnostics.summary_markdown` in its `summary.md`.\n"
        ),
        diagnostics.aggregate_markdown(aggregated),
    ]
    main = aggregated.get("ours")
    if main:
        comps = main["components"]
        shares = {
            n: c["variance_share"] for n, c in comps.items() if c["variance_share"] is not None
        }
        top = max(shares, key=shares.get)
        alone = main.get("shared_with_alone") or {}
        stds = [comps[n].get("std") for n in ("S_loc", "S_cls", "S_seg")]
        balanced = ""
        if all(v is not None and v > 0 for v in stds):
            w = ",".join(f"{stds[0] / v:.2g}" for v in stds)
            balanced = (
                f"Weights {w} (the inverse spreads, S_loc's set to 1: per-image SD "
                + " / ".join(f"{v:.3f}" for v in stds)
                + ") would give the three terms one spread on these pools "
                f"(`select.py --weights {w}`); whether that selects better is what the "
                "`balanced` experiment below measures."
            )
        main_alone = ", ".join(
            f"{n} alone {100 * v:.0f} %" for n, v in alone.items() if v is not None
        )
        r2 = comps[top]["r2"]
        text.append(
            "Reading: in the main comparison "
            + ", ".join(f"{n} carries {100 * v:.0f} %" for n, v in shares.items())
            + f" of the combined score's variance, so {top} "
            + (
                "decides the ranking almost alone"
                if shares[top] > 0.9
                else "dominates the ranking"
                if shares[top] > 0.6
                else "leads the ranking"
            )
            + (f" (r² {r2:.2f} with the score)" if r2 is not None else "")
            + f"; {100 * main['fraction_without_box']:.0f} % of the pool has no scored box"
            + (
                f" but {100 * main['selected_without_box']:.0f} % of the selected images (their "
                "score is S_seg alone)"
                if main["selected_without_box"] is not None
                else ""
            )
            + ". "
            + (
                f"Of the images it selected, each term alone would also have selected (the "
                f"same pool, the same model): {main_alone}; a random selection shares "
                f"{100 * main['shared_by_chance']:.0f} %. "
                if main_alone
                else ""
            )
            + "The paper scales each score to one range (III-F) and adds them (III-G, "
            "Algorithm 1); one range is not one spread, and in a sum the spreads decide. "
            "Table I's settings change exactly these shares."
            + (f" {balanced}" if balanced else "")
            + "\n"
        )
    kl = _kl_dominance(aggregated)
    if kl:
        text.append(kl)
    return "\n".join(text)


def _kl_dominance(aggregated):
    """A sentence on Table I's ``kl`` settings that combine S_cls with another term: the
    share of the score's variance S_cls carries in each (``aggregated``: per strategy,
    ``diagnostics.aggregate``), or "" without such a setting."""
    names = {"ours_kl_all": "all three", "ours_kl_loc_cls": "S_loc + S_cls",
             "ours_kl_cls_seg": "S_cls + S_seg"}  # fmt: skip
    shares, same = {}, {}
    for n, text in names.items():
        share = ((aggregated.get(n) or {}).get("components", {}).get("S_cls") or {}).get(
            "variance_share"
        )
        if share is not None:
            shares[text] = share
            same[text] = (aggregated[n].get("shared_with_alone") or {}).get("S_cls")
    if not shares:
        return ""
    picks = [f"{100 * v:.0f} %" for v in same.values() if v is not None]
    return (
        "With `kl` (the paper's Eq. 2 verbatim, unbounded: about 27.6 at most with eps 1e-6, "
        "where the other terms stay in [0, 1]) S_cls carries "
        + ", ".join(f"{100 * v:.0f} % ({t})" for t, v in shares.items())
        + " of the score's variance: each `kl` setting with S_cls ranks mostly by S_cls"
        + (
            f" and selects mostly what S_cls alone would ({', '.join(picks)} of the same "
            "images, above)"
            if picks
            else ""
        )
        + ", so Table I's `kl` rows that add a term to S_cls test little more than S_cls "
        "itself (`js`, bounded like the other terms, is the library's default for that "
        "reason).\n"
    )


def makeup_summary(results_dir, names, balanced=(), native=()):
    """One paragraph under the side-by-side: what ``ours``' combined score amounts to in each
    dataset's main comparison (``score_diagnostics.json`` of ``score_makeup_section``); ""
    when none is written. ``balanced``, ``native``: the datasets whose ``balanced`` /
    ``native`` section this build wrote; their results are quoted (``variants.COMPARISONS``)."""
    found, losses, own = {}, {}, {}
    for name in names:
        data = page_files.read_json(os.path.join(results_dir, name, "score_diagnostics.json")) or {}
        if "ours" in data:
            title = run_dirs.DATASETS.get(name, (name,))[0]
            found[title] = data["ours"]
            fig6 = (
                page_files.read_json(os.path.join(results_dir, name, "fig6_correlation.json")) or {}
            )
            try:  # the largest |Spearman| of S_loc and of S_seg with a loss
                n = fig6["names"]
                cols = [j for j, c in enumerate(n) if c.startswith("L_")]
                rho = fig6["spearman"]
                losses[title] = [
                    max(abs(rho[n.index(t)][j]) for j in cols) for t in ("S_loc", "S_seg")
                ]
                pair = (
                    [
                        rho[n.index("S_loc")][n.index("E_det_loc")],
                        rho[n.index("S_seg")][n.index("L_seg")],
                    ]
                    if "E_det_loc" in n
                    else []
                )  # each score with its own target; null where a column is constant
                if pair and all(table_cells.finite(v) for v in pair):
                    own[title] = pair
            except (KeyError, ValueError, TypeError):
                pass
    if not found:
        return ""

    def pct(x):
        return "—" if x is None else f"{100 * x:.0f} %"

    def each(value):
        return " and ".join(f"{pct(value(a))} ({title})" for title, a in found.items())

    def share(name):
        return each(lambda a: a["components"][name]["variance_share"])

    return (
        "What `ours` selects with: its combined score (S_seg plus the largest S_loc + S_cls "
        "of the boxes, paper Algorithm 1) is mostly S_loc. S_loc carries "
        + share("S_loc")
        + " of its variance, S_seg "
        + share("S_seg")
        + "; of the images `ours` selects, S_loc alone would also have selected "
        + each(lambda a: (a.get("shared_with_alone") or {}).get("S_loc"))
        + ", against "
        + each(lambda a: a.get("shared_by_chance"))
        + " by chance"
        + (
            "; in Fig. 6 (trial 0's cycle-0 model) S_loc's Spearman with the localization "
            "error of the detected boxes is "
            + " and ".join(f"{v[0]:+.2f} ({t})" for t, v in own.items())
            + " (with the training losses, at most "
            + " and ".join(f"{losses[t][0]:.2f} ({t})" for t in own if t in losses)
            + " in magnitude), S_seg's with the segmentation loss "
            + " and ".join(f"{v[1]:+.2f} ({t})" for t, v in own.items())
            if own and len(own) == len(losses)
            else (
                "; yet in Fig. 6 (trial 0's cycle-0 model) S_loc's largest |Spearman| with a "
                "loss is "
                + " and ".join(f"{v[0]:.2f} ({t})" for t, v in losses.items())
                + ", S_seg's "
                + " and ".join(f"{v[1]:.2f} ({t})" for t, v in losses.items())
                if losses
                else ""
            )
        )
        + ". Its verdicts are then largely S_loc's, and Table I's all three "
        "against S_loc is a small difference by construction (each dataset's \"What the "
        '`ours` score is made of"; the `balanced` experiments test equal spreads).'
        + _balanced_reading(results_dir, [n for n in names if n in balanced])
        + _native_reading(results_dir, [n for n in names if n in native])
        + "\n"
    )


def _native_reading(results_dir, names):
    """ " ..." quoting each dataset's ``native`` experiment (BoxMask crops at the objects' own
    scale) against random and ours once it has at least two paired trials; "" before."""
    parts = []
    for name in names:
        data = (
            page_files.read_json(os.path.join(results_dir, f"{name}_native", variants.COMPARISONS))
            or {}
        )
        strategy, gains = data.get("strategy"), data.get("gains") or {}
        pairs = [(other, gains.get(f"{strategy} vs {other}") or {}) for other in ("random", "ours")]
        if any((g.get("trials") or 0) < 2 for _, g in pairs):
            continue
        title = run_dirs.DATASETS.get(name, (name,))[0]
        parts.append(
            f"{title}: {strategy} "
            + ", ".join(
                f"against {other} {significance.format_interval(g)} mDSQ "
                f"({g.get('reading') or variants.comparison_reading(g)})"
                for other, g in pairs
            )
            + f" over {pairs[0][1]['trials']} trials"
        )
    if not parts:
        return ""
    return (
        " With BoxMask crops at the objects' own scale (`native`, beyond the paper): "
        + "; ".join(parts)
        + "."
    )


def _balanced_reading(results_dir, names):
    """ " ..." quoting each dataset's ``balanced`` experiment against ``ours`` once it has
    at least two paired trials (``variants.COMPARISONS``); "" before."""
    parts = []
    for name in names:
        path = os.path.join(results_dir, f"{name}_balanced", variants.COMPARISONS)
        data = page_files.read_json(path) or {}
        g = (data.get("gains") or {}).get(f"{data.get('strategy')} vs ours") or {}
        if (g.get("trials") or 0) < 2:
            continue
        title = run_dirs.DATASETS.get(name, (name,))[0]
        share = data.get("s_loc_share")
        moved = f"S_loc's share {100 * share:.0f} %, " if share is not None else ""
        parts.append(
            f"{title}: {moved}{data['strategy']} against ours "
            f"{significance.format_interval(g)} mDSQ over {g['trials']} trials, "
            f"{g.get('reading') or variants.comparison_reading(g)}"
        )
    if not parts:
        return ""
    return " Giving the three terms one spread (`balanced`): " + "; ".join(parts) + "."
