"""Tests of mtal_jax.analysis.selection_shares and composition_tables: rare classes and hard
scenes among selections."""

import json
import math

import numpy as np
import pytest

from mtal_jax.analysis import composition_tables, selection_shares

# A pool of 6 images and 3 classes; pool box counts per class: 6, 2, 1 -> median 2, so
# only class 2 ("bike", 1 box) is rare (strictly below the median).
IMAGE_COUNTS = np.array(
    [[2, 0, 0], [1, 1, 0], [0, 0, 1], [1, 0, 0], [1, 1, 0], [1, 0, 0]], np.int64
)  # [N=6, C=3]
IDS = ["train_0_day", "train_1_night", "train_2_fog", "train_3_day", "train_4_day", "train_5_glare"]
NAMES = ["car", "person", "bike"]


def test_rare_classes_and_hard_flags():
    assert selection_shares.rare_classes([6, 2, 1]).tolist() == [False, False, True]
    assert selection_shares.rare_classes([3, 3, 3]).tolist() == [False] * 3  # none below the median
    with pytest.raises(ValueError, match="non-empty"):
        selection_shares.rare_classes([])
    assert selection_shares.hard_flags(IDS).tolist() == [False, True, True, False, False, True]
    camvid = ["0001TP_006690", "Seq05VD_f00000", "0016E5_07959", "0001TP_008550"]
    assert selection_shares.hard_flags(camvid) is None  # no condition in the ids themselves
    # CamVid: the dusk sequence 0001TP (HARD_SEQUENCES)
    assert selection_shares.hard_flags(camvid, "camvid").tolist() == [True, False, False, True]
    assert selection_shares.hard_definition("camvid") == "dusk (sequence 0001TP)"
    assert selection_shares.hard_definition("synthetic_driving") == "night, fog, glare"
    assert selection_shares.hard_flags(["a_day", "b_006690"]) is None  # not every id has one


def test_composition_hand_computed():
    hard = selection_shares.hard_flags(IDS)
    selections = [  # trial 0: ours picks 2 then 5; random picks 3 then 4; trial 1: ours 1
        {"strategy": "ours", "trial": 0, "cycle": 1, "selected": [2]},
        {"strategy": "ours", "trial": 0, "cycle": 2, "selected": [5]},
        {"strategy": "random", "trial": 0, "cycle": 1, "selected": [3]},
        {"strategy": "random", "trial": 0, "cycle": 2, "selected": [4]},
        {"strategy": "ours", "trial": 1, "cycle": 1, "selected": [1]},
    ]
    comp = selection_shares.composition(selections, IMAGE_COUNTS, hard, NAMES)
    assert comp["rare_classes"] == ["bike"]
    assert comp["pool_class_counts"] == {"car": 6, "person": 2, "bike": 1}
    pool = comp["pool"]  # 9 boxes, 1 rare; 1 of 6 images has a rare box; 3 of 6 hard
    assert (pool["rare_box_share"], pool["rare_image_share"], pool["hard_share"]) == (
        pytest.approx(1 / 9), pytest.approx(1 / 6), pytest.approx(0.5),
    )  # fmt: skip
    ours = comp["strategies"]["ours"]
    assert ours["trials"] == [0, 1]
    # overall: images 2, 5, 1 -> boxes 1 + 1 + 2 = 4, rare 1; rare images 1/3; hard 3/3
    o = ours["overall"]
    assert (o["images"], o["boxes"], o["rare_boxes"], o["hard_images"]) == (3, 4, 1, 3)
    assert o["rare_box_share"] == pytest.approx(0.25)
    assert o["rare_image_share"] == pytest.approx(1 / 3) and o["hard_share"] == 1.0
    # cycle 1 sums trials 0 and 1: images 2 and 1 -> 3 boxes, 1 rare
    assert ours["per_cycle"][1]["rare_box_share"] == pytest.approx(1 / 3)
    assert ours["per_cycle"][2]["rare_box_share"] == 0.0
    r = comp["strategies"]["random"]["overall"]  # images 3, 4: 3 boxes, none rare, none hard
    assert (r["rare_box_share"], r["hard_share"]) == (0.0, 0.0)
    text = composition_tables.markdown(json.loads(json.dumps(comp)))  # as read back from JSON
    assert "| ours | 2 | 3 | 25.0 % | 33.3 % | 100.0 % |" in text
    assert "| pool (all images) | — | 6 | 11.1 % | 16.7 % | 50.0 % |" in text
    assert "| ours | 33.3 % | 0.0 % |" in text
    hard = text.split("Hard-scene share per cycle")[1]  # ours: cycle 1 images 2, 1 (both hard)
    assert "| ours | 100.0 % | 100.0 % |" in hard and "| random | 0.0 % | 0.0 % |" in hard
    # against random: trial 0 only (random did not run trial 1): ours images 2, 5 (2 boxes,
    # 1 rare; 1 of 2 images with a rare box; both hard), random 3, 4 (no rare, none hard)
    vs = comp["against_random"]["ours"]
    assert vs["per_trial"] == [
        {"trial": 0, "rare_box_share": 0.5, "rare_image_share": 0.5, "hard_share": 1.0}
    ]
    assert vs["rare_box_share"]["mean"] == 0.5 and vs["rare_box_share"]["trials"] == 1
    assert "| ours | 1 | +50.0 pp | +50.0 pp | +100.0 pp |" in text
    assert list(comp["against_random"]) == ["ours"]  # random is not compared with itself


def test_composition_against_random_pairs_trials_and_common_cycles():
    hard = selection_shares.hard_flags(IDS)
    sel = lambda s, t, c, ids: {"strategy": s, "trial": t, "cycle": c, "selected": ids}
    selections = [
        sel("ours", 0, 1, [2]), sel("random", 0, 1, [3]),  # rare and hard vs neither: +1
        sel("ours", 1, 1, [5]), sel("random", 1, 1, [1]),  # no rare, both hard: 0
        sel("ours", 2, 1, [0]), sel("random", 2, 1, [4]),  # no rare, neither hard: 0
        sel("ours", 2, 2, [2]),  # random has no cycle 2 in trial 2 yet: left out
    ]  # fmt: skip
    comp = selection_shares.composition(selections, IMAGE_COUNTS, hard, NAMES)
    vs = comp["against_random"]["ours"]
    assert [p["rare_box_share"] for p in vs["per_trial"]] == [1.0, 0.0, 0.0]
    assert [p["hard_share"] for p in vs["per_trial"]] == [1.0, 0.0, 0.0]
    # [1, 0, 0]: mean 1/3, sample std sqrt(1/3), t(0.975, 2) = 4.302653
    half = 4.302652730 * math.sqrt(1 / 3) / math.sqrt(3)
    for key in selection_shares.SHARES:
        assert vs[key]["mean"] == pytest.approx(1 / 3) and vs[key]["trials"] == 3
        assert vs[key]["ci95"] == pytest.approx([1 / 3 - half, 1 / 3 + half])
    text = composition_tables.markdown(comp)
    cell = f"+33.3 [{100 * (1 / 3 - half):+.1f}, {100 * (1 / 3 + half):+.1f}] pp"
    assert f"| ours | 3 | {cell} | {cell} | {cell} |" in text
    # without hard flags the hard-scene difference is n/a; without random nothing is paired
    comp = selection_shares.composition(selections, IMAGE_COUNTS, None, NAMES)
    assert "hard_share" not in comp["against_random"]["ours"]
    assert f"| ours | 3 | {cell} | {cell} | n/a |" in composition_tables.markdown(comp)
    alone = [s for s in selections if s["strategy"] == "ours"]
    comp = selection_shares.composition(alone, IMAGE_COUNTS, hard, NAMES)
    assert comp["against_random"] == {} and "Against random" not in composition_tables.markdown(
        comp
    )


def test_composition_first_cycle_and_what_was_taken_of_the_unlabeled():
    hard = selection_shares.hard_flags(IDS)  # images 1, 2, 5 hard; image 2 holds the rare box
    sel = lambda s, t, c, ids: {"strategy": s, "trial": t, "cycle": c, "selected": ids}
    selections = [
        sel("ours", 0, 1, [2]), sel("ours", 0, 2, [5]),  # trial 0 labeled 0, 1 at cycle 0
        sel("random", 0, 1, [3]), sel("random", 0, 2, [2]),
    ]  # fmt: skip
    comp = selection_shares.composition(selections, IMAGE_COUNTS, hard, NAMES, initial={0: [0, 1]})
    # cycle 1 alone: ours image 2 (rare, hard) against random image 3 (neither): +1, +1
    first = comp["against_random_first"]["ours"]["per_trial"]
    assert first == [{"trial": 0, "rare_box_share": 1.0, "rare_image_share": 1.0,
                      "hard_share": 1.0}]  # fmt: skip
    # over both cycles ours and random both end up with image 2: hard 2/2 against 1/2
    assert comp["against_random"]["ours"]["per_trial"][0]["hard_share"] == pytest.approx(0.5)
    # unlabeled after cycle 0: images 2-5 (hard: 2 and 5; with a rare class: 2)
    assert comp["strategies"]["ours"]["taken"] == {
        "images": 0.5, "rare_images": 1.0, "hard_images": 1.0,
    }  # fmt: skip
    assert comp["strategies"]["random"]["taken"] == {
        "images": 0.5, "rare_images": 1.0, "hard_images": 0.5,
    }  # fmt: skip
    text = composition_tables.markdown(json.loads(json.dumps(comp)))
    assert "first selection (cycle 1) only" in text
    assert "| ours | 50.0 % | 100.0 % | 100.0 % |" in text
    assert "| random | 50.0 % | 100.0 % | 50.0 % |" in text
    no_initial = selection_shares.composition(selections, IMAGE_COUNTS, hard, NAMES)
    assert "taken" not in no_initial["strategies"]["ours"]


def test_composition_names_its_hard_scenes():
    sel = [{"strategy": "ours", "trial": 0, "cycle": 1, "selected": [0, 3]}]
    ids = ["0001TP_1", "0006R0_2", "0016E5_3", "0001TP_4", "Seq05VD_5", "0016E5_6"]
    hard = selection_shares.hard_flags(ids, "camvid")
    comp = selection_shares.composition(sel, IMAGE_COUNTS, hard, NAMES, "dusk (sequence 0001TP)")
    assert comp["hard_definition"] == "dusk (sequence 0001TP)"
    assert comp["pool"]["hard_share"] == pytest.approx(2 / 6)
    assert comp["strategies"]["ours"]["overall"]["hard_share"] == 1.0
    text = composition_tables.markdown(comp)
    assert "Hard scenes: dusk (sequence 0001TP)." in text and "Hard-scene share per cycle" in text
    # a composition.json written before the definition was recorded reads as the synthetic one
    del comp["hard_definition"]
    assert "Hard scenes: night, fog, glare." in composition_tables.markdown(comp)


def test_composition_without_hard_flags_reports_na():
    sel = [{"strategy": "ours", "trial": 0, "cycle": 1, "selected": [0]}]
    comp = selection_shares.composition(sel, IMAGE_COUNTS, None, NAMES)
    assert comp["pool"]["hard_share"] is None and not comp["hard_available"]
    assert comp["strategies"]["ours"]["overall"]["rare_box_share"] == 0.0
    assert comp["strategies"]["ours"]["overall"]["hard_images"] is None
    text = composition_tables.markdown(comp)
    assert "Hard-scene share per cycle" not in text
    assert "n/a (no condition flags)" in text and "| ours | 1 | 1 | 0.0 % | 0.0 % | n/a |" in text
    empty = selection_shares.shares(
        selection_shares.counts_of(IMAGE_COUNTS, np.zeros(3, bool), None, [])
    )
    assert math.isnan(empty["rare_box_share"]) and empty["images"] == 0
