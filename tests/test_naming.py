"""The naming hazard of docs/design.md §7: no module may shadow a standard-library module.

Every ``*.py`` stem in the repository is checked against ``sys.stdlib_module_names``;
the repo-root ``select.py`` is the one guarded exception, and subprocess runs from the
repo root check that its guard works (``import select`` still gives the real module,
and ``python select.py --help`` / ``python train.py --help`` print their usage). The
entrypoints also answer ``--help`` and usage errors before importing JAX.
"""

import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
GUARDED = {ROOT / "select.py"}  # guarded: see the module docstring of select.py
_SKIP_DIRS = {"__pycache__", "node_modules", "build", "dist", "venv", "env", "site-packages"}
_ALLOWED_STEMS = {"__init__", "__main__"}


def _python_files():
    for dirpath, dirnames, filenames in os.walk(ROOT):
        here = pathlib.Path(dirpath)
        dirnames[:] = [
            d
            for d in dirnames
            if not d.startswith(".")
            and d not in _SKIP_DIRS
            and not d.endswith(".egg-info")
            and not (here / d / "pyvenv.cfg").exists()  # any virtual environment
        ]
        for name in filenames:
            if name.endswith(".py"):
                yield here / name


def test_no_module_shadows_the_standard_library():
    files = list(_python_files())
    assert any(f.parent.name == "mtal_jax" for f in files), "the walk should see the package"
    clashes = sorted(
        str(f.relative_to(ROOT))
        for f in files
        if f.stem in sys.stdlib_module_names and f.stem not in _ALLOWED_STEMS and f not in GUARDED
    )
    assert not clashes, f"these modules shadow standard-library modules (rename them): {clashes}"


def _run(args, timeout=120):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "XLA_FLAGS")}
    env["JAX_PLATFORMS"] = "cpu"
    return subprocess.run(
        [sys.executable, *args],
        check=False,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _require(name):
    if not (ROOT / name).exists():
        pytest.skip(f"{name} does not exist yet at the repo root (the lead writes it)")


def test_import_select_from_the_repo_root_gives_the_standard_library():
    _require("select.py")
    # `python -c` puts the current directory (the repo root) first on sys.path.
    code = (
        "import select, selectors, subprocess\n"
        "assert hasattr(select, 'select'), select.__file__\n"
        "selectors.DefaultSelector().close()\n"
        "print(subprocess.run(['true']).returncode)\n"
    )
    proc = _run(["-c", code])
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith("0")


@pytest.mark.parametrize("script, flag", [("select.py", "--strategy"), ("train.py", "--workdir")])
def test_entrypoint_help_runs_from_the_repo_root(script, flag):
    _require(script)
    proc = _run([script, "--help"])
    assert "Traceback" not in proc.stderr, proc.stderr
    assert flag in proc.stdout, proc.stdout + proc.stderr
    # runtime.run_main turns absl's help exit status (1) into 0.
    assert proc.returncode == 0, (proc.returncode, proc.stdout, proc.stderr)


def _imports_jax(stderr: str) -> bool:
    """Whether ``python -X importtime``'s report in ``stderr`` lists the ``jax`` package."""
    return any(line.rsplit("|", 1)[-1].strip() == "jax" for line in stderr.splitlines())


@pytest.mark.parametrize(
    "args",
    [
        ["select.py", "--helpshort"],
        ["select.py", "--budget", "1"],  # no --checkpoint
        ["train.py", "--helpshort"],
        ["-m", "mtal_jax.data", "--help"],
        ["-m", "mtal_jax.data", "summary"],  # no --config
        ["-m", "mtal_jax.al.archive_cli", "keep", "a", "b"],
        ["-m", "mtal_jax.analysis.cli", "--helpshort"],
        ["-m", "mtal_jax.sim2real", "--helpshort"],
        ["-m", "mtal_jax.al.parallel_cli", "--helpshort"],
        ["-m", "mtal_jax.al.parallel_cli", "--workdir", "w", "--", "--not_config=1"],
        ["docs/make_results.py", "--help"],
        ["docs/make_results.py", "--data_root", "nope"],
    ],
)
def test_entrypoints_answer_help_and_usage_errors_without_importing_jax(args):
    # JAX and the library take seconds to import: these import them once the command line
    # has been read.
    proc = _run(["-X", "importtime", *args])
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.stdout.strip() or proc.stderr.strip()  # the help or the usage error
    assert not _imports_jax(proc.stderr), args


def test_the_import_check_sees_jax_when_it_is_imported():
    proc = _run(["-X", "importtime", "select.py", "--checkpoint", "x", "--budget", "1"])
    assert _imports_jax(proc.stderr)


def test_select_rejects_weights_that_are_not_numbers_before_loading_anything():
    _require("select.py")
    proc = _run(
        ["-X", "importtime", "select.py", "--weights", "1,x,1", "--checkpoint", "/nonexistent",
         "--budget", "1"]
    )  # fmt: skip
    assert "Traceback" not in proc.stderr, proc.stderr
    assert not _imports_jax(proc.stderr)
    last = proc.stderr.strip().splitlines()[-1]
    assert last == "error: --weights must be three numbers w_loc,w_cls,w_seg, got '1,x,1'"
    assert "--budget" not in proc.stderr  # one line, not the flags' help
    assert proc.returncode == 1


def test_select_prints_an_input_error_as_one_line(tmp_path):
    _require("select.py")
    missing = str(tmp_path / "no_run")
    proc = _run(
        ["select.py", "--config", "configs/tiny.py", "--checkpoint", missing, "--budget", "1"]
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    assert (
        proc.stderr.strip().splitlines()[-1].startswith(f"error: no checkpoint found in {missing}")
    )
    assert proc.returncode == 1


def test_train_prints_a_config_error_as_one_line(tmp_path):
    _require("train.py")
    workdir = str(tmp_path / "run")
    args = ["--config", "configs/tiny.py", "--workdir", workdir, "--config.al.strategies=nope"]
    proc = _run(["train.py", *args])
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("error: unknown strategy 'nope'")
    assert proc.returncode == 1 and not os.path.exists(workdir)
