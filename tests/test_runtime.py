"""runtime: the library's XLA:CPU flags (the user's XLA_FLAGS win); third-party log noise
dropped by default."""

import logging
import os
import subprocess
import sys

from mtal_jax import runtime

XNN = "--xla_cpu_experimental_xnn_graph_fusion_mode"


def test_defaults_added_to_empty_flags(monkeypatch):
    monkeypatch.setattr(runtime, "DEFAULT_CPU_FLAGS", f"{XNN}=XNN_GRAPH_FUSION_MODE_GREEDY")
    flags = runtime.cpu_xla_flags("", 3).split()
    assert "--xla_force_host_platform_device_count=3" in flags
    assert all(f in flags for f in runtime.DEFAULT_CPU_FLAGS.split())


def test_user_flags_win_and_are_kept_in_order(monkeypatch):
    monkeypatch.setattr(runtime, "DEFAULT_CPU_FLAGS", f"{XNN}=XNN_GRAPH_FUSION_MODE_GREEDY")
    user = f"--xla_dump_to=/tmp/x {XNN}=XNN_GRAPH_FUSION_MODE_DISABLED"
    flags = runtime.cpu_xla_flags(user, 2).split()
    assert flags[:2] == user.split()
    assert [f for f in flags if f.startswith(XNN)] == [f"{XNN}=XNN_GRAPH_FUSION_MODE_DISABLED"]
    flags = runtime.cpu_xla_flags("--xla_force_host_platform_device_count=1", 2).split()
    assert [f for f in flags if "device_count" in f] == ["--xla_force_host_platform_device_count=1"]


def test_configure_host_devices_in_a_fresh_process():
    code = (
        "from mtal_jax import runtime; runtime.configure_host_devices(2); import jax, os;"
        "print(jax.device_count(), os.environ['XLA_FLAGS'])"
    )
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"} | {"JAX_PLATFORMS": "cpu"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True,
        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    ).stdout.split()  # fmt: skip
    assert out[0] == "2"
    assert set(runtime.DEFAULT_CPU_FLAGS.split()) <= set(out[1:])
    assert "--xla_force_host_platform_device_count=2" in out[1:]


def _record(msg, *args):
    return logging.LogRecord("absl", logging.WARNING, __file__, 1, msg, args, None)


def test_noise_filter_drops_only_listed_messages():
    assert not runtime._drop_noise(_record("Using custom data configuration: %s", "Cfg(...)"))
    assert not runtime._drop_noise(_record("OpenCV is not installed. We recommend ..."))
    assert runtime._drop_noise(_record("checkpoint %s does not match", "x"))
    assert runtime._drop_noise(_record(ValueError("not a string message")))
