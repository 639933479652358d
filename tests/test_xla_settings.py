"""The library's XLA:CPU flags: 200 training steps within float tolerance of plain XLA, and
bit-reproducible run to run (slow: three training processes; bench/xla_cpu_settings.py)."""

import importlib.util
import pathlib
import types

import pytest

BENCH = pathlib.Path(__file__).resolve().parents[1] / "bench" / "xla_cpu_settings.py"


@pytest.mark.slow
def test_library_flags_match_plain_xla_and_are_bit_reproducible():
    spec = importlib.util.spec_from_file_location("xla_cpu_settings", BENCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    res = mod.check(types.SimpleNamespace(steps=1, check_steps=200, flags=None))
    assert res["bitwise_reproducible"], res
    assert res["loss_rel_diff_first_10"] < 1e-4, res
    assert res["max_param_rel_l2_diff"] < 1e-3, res
    assert res["loss_last_library"] < 0.5 * res["loss_first"], res  # it trains
