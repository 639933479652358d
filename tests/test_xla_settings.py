"""The library's XLA:CPU flags: 200 training steps within float tolerance of plain XLA, and
bit-reproducible run to run; its malloc settings (runtime.tune_malloc): bit identical to
glibc's defaults (slow: three training processes each; bench/xla_cpu_settings.py)."""

import importlib.util
import pathlib
import types

import pytest

BENCH = pathlib.Path(__file__).resolve().parents[1] / "bench" / "xla_cpu_settings.py"


def _bench():
    spec = importlib.util.spec_from_file_location("xla_cpu_settings", BENCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _args(**kw):
    base = {"steps": 1, "check_steps": 200, "flags": None, "check_malloc": False}
    return types.SimpleNamespace(**(base | {"config": "configs/default.py"} | kw))


@pytest.mark.slow
def test_library_flags_match_plain_xla_and_are_bit_reproducible():
    res = _bench().check(_args())
    assert res["bitwise_reproducible"], res
    assert res["loss_rel_diff_first_10"] < 1e-4, res
    assert res["max_param_rel_l2_diff"] < 1e-3, res
    assert res["loss_last_library"] < 0.5 * res["loss_first"], res  # it trains


@pytest.mark.slow
def test_library_malloc_settings_change_no_bit():
    res = _bench().check(_args(check_malloc=True, check_steps=50))
    assert res["malloc"] == "library" and res["flags"] == "", res
    assert res["bitwise_reproducible"] and res["bitwise_equal_plain"], res
