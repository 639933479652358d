"""runtime: the library's XLA:CPU flags (the user's XLA_FLAGS win); third-party log noise
dropped by default."""

import logging
import os
import signal
import subprocess
import sys

import pytest

from mtal_jax import runtime

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

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


# A fresh process: mallopt settings, then a 48 MiB block (above glibc's largest mmap
# threshold); prints tune_malloc's result and by how much that block grew the bytes that glibc
# holds in mmapped blocks.
_MMAPPED = """
import ctypes, sys
from mtal_jax import runtime
{call}
class Info(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in (
        "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split())]
libc = ctypes.CDLL(None)
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, (ctypes.c_size_t,)
libc.mallinfo2.restype = Info
before = libc.mallinfo2().hblkhd
block = libc.malloc(48 << 20)
print(applied, libc.mallinfo2().hblkhd - before)
"""


def _glibc() -> bool:
    import ctypes

    return sys.platform.startswith("linux") and hasattr(ctypes.CDLL(None), "mallinfo2")


def _mmapped(call: str, **env) -> tuple[str, int]:
    code = _MMAPPED.format(call=call)
    env = {k: v for k, v in os.environ.items() if k != runtime.MALLOC_ENV} | env
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True,
        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    ).stdout.split()  # fmt: skip
    return out[0], int(out[1])


def test_tune_malloc_keeps_large_blocks_in_the_heap():
    if not _glibc():
        import pytest

        pytest.skip("glibc only")
    # glibc's defaults: a 48 MiB block is mmapped (and unmapped again when freed).
    applied, mmapped = _mmapped("applied = None")
    assert mmapped >= 48 << 20
    # The library's settings (what configure_host_devices applies): from the heap.
    applied, mmapped = _mmapped("applied = runtime.tune_malloc()")
    assert (applied, mmapped) == ("True", 0)
    applied, mmapped = _mmapped("runtime.configure_host_devices(2); applied = True")
    assert mmapped == 0
    # Opt-out: the C library's settings stay.
    applied, mmapped = _mmapped("applied = runtime.tune_malloc()", MTAL_JAX_MALLOC="system")
    assert applied == "False" and mmapped >= 48 << 20


def test_run_main_turns_an_interrupt_into_one_line_and_exit_130(monkeypatch, capsys):
    """Ctrl-C (SIGINT) during a run: no traceback, one line saying to run the same command,
    exit status 130 (the shell's for SIGINT)."""

    def main(argv):
        raise KeyboardInterrupt

    monkeypatch.setattr(sys, "argv", ["train.py"])
    # JAX is imported here: the real exit would end pytest's process (the next tests run it)
    monkeypatch.setattr(runtime, "_exit_after_interrupt", sys.exit)
    with pytest.raises(SystemExit) as exc:
        runtime.run_main(main)
    assert exc.value.code == 130
    err = capsys.readouterr().err
    assert "run the same command again to continue" in err and "Traceback" not in err


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # the lost one
def test_an_interrupt_lost_where_it_was_raised_is_raised_again(monkeypatch):
    """A signal's exception raised where Python drops it (a garbage-collector callback, a
    ``__del__``: "Exception ignored") comes back at the next ``raise_pending_interrupt``, as
    each training step and scored batch call it; once ``run_main`` is done, nothing is
    pending and its handlers are gone."""
    import gc

    monkeypatch.setattr(sys, "argv", ["train.py"])
    monkeypatch.setattr(runtime, "_exit_after_interrupt", sys.exit)
    old = signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a shell's job
    seen = []

    def lose_it(phase, info):  # JAX's own gc callback is where it was seen lost
        if phase == "start" and not seen:
            seen.append(signal.getsignal(signal.SIGINT))
            signal.raise_signal(signal.SIGINT)

    def main(argv):
        gc.callbacks.append(lose_it)
        try:
            gc.collect()  # prints "Exception ignored in: <function ...lose_it>"
        finally:
            gc.callbacks.remove(lose_it)
        runtime.raise_pending_interrupt()
        raise AssertionError("the interrupt was lost")

    try:
        with pytest.raises(SystemExit) as exc:
            runtime.run_main(main)
        assert exc.value.code == 130
        assert seen == [runtime._interrupt]  # run_main's handler was the one in place
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
        runtime.raise_pending_interrupt()  # nothing pending after run_main
    finally:
        signal.signal(signal.SIGINT, old)


def test_an_interrupt_during_a_compile_exits_130_without_a_crash(tmp_path):
    """JAX compiles on a thread of its own; a Ctrl-C while the main thread waits for it used
    to end in a segmentation fault at exit, after the compile finished (rc -11)."""
    script = (
        "import os, signal, threading\n"
        "from mtal_jax import runtime\n"
        "runtime.configure_host_devices()\n"
        "def main(argv):\n"
        "    import jax, jax.numpy as jnp\n"
        "    def f(x):\n"
        "        for i in range(600):\n"
        "            x = jnp.sin(x @ x.T + i)\n"
        "        return x\n"
        "    lowered = jax.jit(f).lower(jnp.ones((64, 64)))\n"
        "    threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT)).start()\n"
        "    lowered.compile()\n"
        "    print('compiled', flush=True)\n"
        "runtime.run_main(main)\n"
    )
    env = {**os.environ, "JAX_COMPILATION_CACHE_DIR": str(tmp_path / "cache")}  # a real compile
    proc = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, env=env,
        timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 130, proc.stderr[-2000:]
    assert "interrupted: run the same command again" in proc.stderr
    assert "Segmentation fault" not in proc.stderr and "compiled" not in proc.stdout


def test_sigterm_is_an_interrupt_too(tmp_path):
    """``timeout``, SLURM and ``docker stop`` send SIGTERM: one line, exit status 143."""
    script = (
        "import sys, time\n"
        "from mtal_jax import runtime\n"
        "def main(argv):\n"
        "    print('started', flush=True)\n"
        "    time.sleep(60)\n"
        "runtime.run_main(main)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout.readline().strip() == "started"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert "terminated (SIGTERM): run the same command again" in err and "Traceback" not in err


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--config", "configs/nope.py"],
         "error: --config: [Errno 2] No such file or directory: 'configs/nope.py'"),
        (["--config", "configs/tiny.py", "--config.train.lerning_rate=1"],
         ("error: a --config.* flag names no config field: 'lerning_rate' "
         'Did you mean "learning_rate" instead of "lerning_rate"?')),
    ],
)  # fmt: skip
def test_a_bad_config_flag_is_one_line(tmp_path, flags, message):
    result = subprocess.run(
        [sys.executable, "train.py", *flags, "--workdir", str(tmp_path / "run")],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == message, result.stderr[-2000:]
    assert "Traceback" not in result.stderr


def test_an_error_inside_a_config_file_keeps_its_traceback(tmp_path):
    config = tmp_path / "typo_config.py"
    config.write_text(
        "from configs import tiny\n\n\ndef get_config(arg=None):\n"
        "    c = tiny.get_config(arg)\n    c.trian.steps = 3\n    return c\n"
    )
    result = subprocess.run(
        [sys.executable, "train.py", "--config", str(config), "--workdir", str(tmp_path / "r")],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode != 0
    assert "Traceback" in result.stderr and "typo_config.py" in result.stderr  # its file, line
    assert "flag names no config field" not in result.stderr


def test_input_errors_are_one_line_other_errors_keep_their_traceback(monkeypatch):
    """An error raised inside ``input_checks`` keeps its type, gets the note once and ends
    ``run_main`` with one line (exit status 1: ``sys.exit`` of a message); the same type raised
    elsewhere propagates."""

    def checked_twice():
        with runtime.input_checks():
            with_one_check()

    def with_one_check():
        with runtime.input_checks():
            raise FileNotFoundError("config file x.py not found")

    with pytest.raises(FileNotFoundError) as caught:
        checked_twice()  # nested checks: one note
    assert runtime.is_input_error(caught.value)
    assert caught.value.__notes__ == [runtime.INPUT_ERROR_NOTE]
    monkeypatch.setattr(sys, "argv", ["train.py"])

    def bad_input(argv):
        with runtime.input_checks():
            raise ValueError("config.al.strategies is empty")

    with pytest.raises(SystemExit) as exc:
        runtime.run_main(bad_input)
    assert exc.value.code == "error: config.al.strategies is empty"

    def bug(argv):
        raise ValueError("shapes (3,) and (4,) do not match")

    with pytest.raises(ValueError, match="do not match"):
        runtime.run_main(bug)


@pytest.mark.parametrize(
    "value, one_line", [("", True), ("0", True), ("false", True), ("Off", True), ("1", False),
                        ("yes", False)]
)  # fmt: skip
def test_mtal_traceback_raises_the_errors_printed_as_one_line(monkeypatch, value, one_line):
    """``MTAL_TRACEBACK=1`` shows the traceback of a one-line error (a dataset file's, an
    input check's), to report a bug in a reader; empty or ``0`` keeps the one line."""
    from mtal_jax.data import errors

    monkeypatch.setattr(sys, "argv", ["train.py"])
    monkeypatch.setenv(runtime.TRACEBACK_ENV, value)

    def bad_file(argv):
        raise errors.DatasetError("cut short", path="labels/0001.png", reason=errors.CORRUPT_IMAGE)

    def bad_input(argv):
        with runtime.input_checks():
            raise ValueError("config.al.strategies is empty")

    for main, kind in ((bad_file, errors.DatasetError), (bad_input, ValueError)):
        with pytest.raises(SystemExit if one_line else kind) as exc:
            runtime.run_main(main)
        if one_line:
            assert str(exc.value.code).startswith("error: ")


def test_the_errors_printed_as_one_line_name_classes_that_exist():
    """``runtime._ONE_LINE_ERRORS`` names its classes by module and name (so that a usage error
    imports nothing): each must exist, or its errors would keep their traceback silently."""
    import importlib

    classes = [
        getattr(importlib.import_module(module), name) for module, name in runtime._ONE_LINE_ERRORS
    ]
    assert all(isinstance(c, type) and issubclass(c, Exception) for c in classes)
    assert set(runtime._one_line_errors()) == set(classes)  # all imported now: all of them
