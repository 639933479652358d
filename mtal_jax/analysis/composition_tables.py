"""Markdown tables of a composition (``selection_shares.composition``, or its JSON read
back): the rare-class and hard-scene shares per strategy, their paired differences against
random, what each strategy took of the pool, and the shares per cycle (host side, pure).

``analysis.composition`` writes them to ``composition.md``; the results page
(docs/results.md) quotes them.
"""

from __future__ import annotations

import math
from typing import Any

from mtal_jax import significance
from mtal_jax.analysis import selection_shares

_DASH = "—"


def _pct(value: float | None) -> str:
    if value is None:
        return "n/a"
    return _DASH if math.isnan(value) else f"{100 * value:.1f} %"


def _pp(stats: dict[str, Any]) -> str:
    text = significance.format_interval(stats, 1, 100)
    return text if text == _DASH else f"{text} pp"


def markdown(comp: dict[str, Any]) -> str:
    """Tables: overall shares per strategy (with the pool's), the paired differences against
    random, then the rare-class box share and (when available) the hard-scene share per
    cycle."""
    rare = ", ".join(comp["rare_classes"]) or "none"
    lines = [
        f"Rare classes (fewer pool boxes than the median class): {rare}. Hard scenes: "
        + (
            f"{comp.get('hard_definition') or ', '.join(selection_shares.HARD_CONDITIONS)}."
            if comp["hard_available"]
            else "n/a (no condition flags)."
        ),
        "",
        "| strategy | trials | images | rare-class boxes | images with a rare class | hard scenes |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    rows = [("pool (all images)", "—", comp["pool"])]
    rows += [(k, len(v["trials"]), v["overall"]) for k, v in comp["strategies"].items()]
    for name, trials, s in rows:
        lines.append(
            f"| {name} | {trials} | {s['images']} | {_pct(s['rare_box_share'])} "
            f"| {_pct(s['rare_image_share'])} | {_pct(s['hard_share'])} |"
        )
    first_cycle = min(
        (int(c) for v in comp["strategies"].values() for c in v["per_cycle"]), default=1
    )
    for key, intro in (
        (
            "against_random",
            (
                "Against random in the same trial (the strategy's share minus random's over the "
                "cycles both selected in, in percentage points; mean [95 % t interval over "
                "trials]):"
            ),
        ),
        (
            "against_random_first",
            (
                f"The same in the first selection (cycle {first_cycle}) only, before a strategy "
                "can run out of what it prefers:"
            ),
        ),
    ):
        lines += _paired_table(comp.get(key) or {}, intro)
    taken = {k: v["taken"] for k, v in comp["strategies"].items() if v.get("taken")}
    if taken:
        lines += [
            "",
            (
                "Of what cycle 0 left unlabeled, the share each strategy selected over all cycles "
                "(mean over trials). Where it took every hard scene (100 %), the overall hard-scene "
                "share above has met its ceiling: it then measures how much of the pool was "
                "selected, not how strongly hard scenes are preferred (the first cycle's table and "
                "the per-cycle tables show that):"
            ),
            "",
            "| strategy | images | images with a rare class | hard scenes |",
            "| --- | --- | --- | --- |",
        ]
        for name, t in taken.items():
            cells = [_pct(t.get(k)) for k in ("images", "rare_images", "hard_images")]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    cycles = sorted({int(c) for v in comp["strategies"].values() for c in v["per_cycle"]})
    tables = [("rare_box_share", "Rare-class box share")]
    if comp["hard_available"]:
        tables.append(("hard_share", "Hard-scene share"))
    for key, title in tables if cycles else []:
        lines += [
            "",
            f"{title} per cycle (summed over trials):",
            "",
            "| strategy | " + " | ".join(f"cycle {c}" for c in cycles) + " |",
            "| --- |" + " --- |" * len(cycles),
        ]
        for name, v in comp["strategies"].items():
            per = {int(k): s for k, s in v["per_cycle"].items()}
            cells = [_pct(per[c][key]) if c in per else _DASH for c in cycles]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _paired_table(pairs: dict[str, Any], intro: str) -> list[str]:
    """Markdown lines of one paired table (``selection_shares.against`` per strategy), or
    [] without one."""
    if not pairs:
        return []
    lines = [
        "",
        intro,
        "",
        "| strategy | trials | rare-class boxes | images with a rare class | hard scenes |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, d in pairs.items():
        cells = [_pp(d[k]) if k in d else "n/a" for k in selection_shares.SHARES]
        lines.append(f"| {name} | {len(d['per_trial'])} | " + " | ".join(cells) + " |")
    return lines
