"""Process setup shared by the entrypoints (the only place that changes jax.config).

Call ``configure_host_devices`` before JAX is imported and ``setup`` at the start of main.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import logging
import os
import sys
from collections.abc import Iterator

# Extra XLA:CPU flags of the library, chosen by measurement (bench/xla_cpu_settings.py;
# docs/benchmarks.md, "XLA:CPU settings"): none. On jaxlib 0.10.2 the XNNPACK graph fusion
# modes, oneDNN and the YNN/XNN fusion types leave the compiled training step unchanged
# (convolutions stay XLA convolutions; dots and reductions already use YNNPACK fusions by
# default): 200 training steps are bit-identical with and without them. Keep the list
# here so that a measured improvement lands in one place (the tests pick it up too).
DEFAULT_CPU_FLAGS = ""


def cpu_xla_flags(user_flags: str, count: int = 2) -> str:
    """The XLA_FLAGS value: ``user_flags`` plus every library default it does not set.

    Args:
      user_flags: the user's XLA_FLAGS ("" if unset); a flag named there wins.
      count: virtual CPU devices (``--xla_force_host_platform_device_count``).

    Examples:
      >>> flags = cpu_xla_flags("--xla_force_host_platform_device_count=4", 2).split()
      >>> flags[0], len(flags) == 1 + len(DEFAULT_CPU_FLAGS.split())
      ('--xla_force_host_platform_device_count=4', True)
    """
    defaults = [*DEFAULT_CPU_FLAGS.split(), f"--xla_force_host_platform_device_count={count}"]
    named = {f.split("=")[0].lstrip("-") for f in user_flags.split()}
    extra = [f for f in defaults if f.split("=")[0].lstrip("-") not in named]
    return " ".join([*user_flags.split(), *extra])


# glibc malloc settings for the CPU (``tune_malloc``), chosen by measurement
# (bench/xla_cpu_settings.py, settings ``default`` vs ``library_malloc``; docs/benchmarks.md,
# "Host memory allocator"): with glibc's defaults the default training step spends about a
# fifth of its CPU time in the kernel, faulting in (33,676 page faults, ~130 MiB per step)
# the pages of XLA:CPU's large temporaries, which glibc mmaps and unmaps again every step.
# One arena, no mmap (blocks come from the heap, which is never trimmed) keep those pages
# mapped between steps: no page faults. (mallopt parameter, value)
M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD, M_MMAP_MAX, M_ARENA_MAX = -1, -2, -3, -4, -8
MALLOC_SETTINGS = (
    (M_ARENA_MAX, 1),  # threads share the main (brk) heap: other arenas' blocks >= 64 MiB mmap
    (M_MMAP_MAX, 0),  # no block from mmap (unless the heap cannot grow)
    (M_MMAP_THRESHOLD, 32 << 20),  # also stops glibc raising the trim threshold by itself
    (M_TRIM_THRESHOLD, 1 << 30),  # freed memory stays in the process up to 1 GiB
    (M_TOP_PAD, 64 << 20),  # the heap grows in steps of 64 MiB
)
MALLOC_ENV = "MTAL_JAX_MALLOC"
"""Set to ``system`` to keep the C library's allocator settings (``tune_malloc`` skipped)."""
# JAX's GPU plugin packages (jax[cuda12], jax[cuda13], ROCm): their presence means a GPU host.
_GPU_PLUGINS = ("jax_cuda12_plugin", "jax_cuda13_plugin", "jax_rocm60_plugin", "jax_rocm7_plugin")


def tune_malloc() -> bool:
    """Apply ``MALLOC_SETTINGS`` with glibc's ``mallopt``; True when they were applied.

    Skipped (False) when ``MTAL_JAX_MALLOC=system``, when the C library is not glibc, and
    when a JAX GPU plugin is installed (measured on the CPU only; a GPU host's training
    allocates little host memory per step). Call it before threads start allocating (before
    JAX is imported): arenas already given to threads are kept. Speed only: the allocator
    changes no result (bench/xla_cpu_settings.py --check compares the parameters bit for
    bit).
    """
    if os.environ.get(MALLOC_ENV, "") == "system" or not sys.platform.startswith("linux"):
        return False
    if any(importlib.util.find_spec(name) is not None for name in _GPU_PLUGINS):
        return False
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # glibc only (musl and others differ)  # noqa: B018
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return all(mallopt(param, value) == 1 for param, value in MALLOC_SETTINGS)


def configure_host_devices(count: int = 2) -> None:
    """On the CPU, split the host into ``count`` virtual devices (faster here, and the data-
    parallel path is exercised), apply ``DEFAULT_CPU_FLAGS`` and ``tune_malloc``. Must run
    before JAX is imported; flags already in XLA_FLAGS win."""
    if "jax" in sys.modules:
        return
    os.environ["XLA_FLAGS"] = cpu_xla_flags(os.environ.get("XLA_FLAGS", ""), count)
    tune_malloc()


# Added (PEP 678 note) to the errors raised while checking the user's flags, config and
# files, before any work: ``run_main`` prints those as one line instead of a traceback.
INPUT_ERROR_NOTE = "mtal_jax: an input error"


@contextlib.contextmanager
def input_checks() -> Iterator[None]:
    """Marks the OSError / ValueError raised inside as input errors (their types kept), for
    code that only checks what the user gave (``is_input_error``)."""
    try:
        yield
    except (OSError, ValueError) as e:
        if not is_input_error(e):
            e.add_note(INPUT_ERROR_NOTE)
        raise


def is_input_error(error: BaseException) -> bool:
    """Whether ``error`` was raised inside ``input_checks``."""
    return INPUT_ERROR_NOTE in getattr(error, "__notes__", ())


class Terminated(KeyboardInterrupt):
    """SIGTERM (``timeout``, SLURM, ``docker stop``), raised like Ctrl-C by ``run_main``."""


_received: list[type[KeyboardInterrupt]] = []
"""The interrupts ``run_main``'s signal handlers raised (``raise_pending_interrupt``)."""


def _interrupt(signum, frame) -> None:
    """SIGINT and SIGTERM under ``run_main``: raised as Python's own handler raises Ctrl-C
    (``KeyboardInterrupt``; ``Terminated`` for SIGTERM), and remembered."""
    del frame
    import signal

    kind = Terminated if signum == signal.SIGTERM else KeyboardInterrupt
    _received.append(kind)
    raise kind


def raise_pending_interrupt() -> None:
    """Raises the interrupt that a signal raised under ``run_main``, if one did: a no-op
    otherwise. Called by the long loops: each training step, each batch evaluated, scored,
    analysed or exported.

    A signal's exception is raised in whatever Python code the main thread runs next, and
    there it can be lost: in a garbage-collector callback (JAX registers one) or a
    ``__del__`` Python prints it as "Exception ignored" and goes on. A Ctrl-C at such a
    moment did nothing (a run interrupted 8 s in went on to finish, 2026-12-06), and at a
    parallel launcher's deadline a part then ran on until its SIGKILL. Once the handler
    has raised it, the next call here raises it again.
    """
    if _received:
        raise _received[-1]


def _exit_after_interrupt(code: int) -> None:
    """Ends the process with ``code`` after an interrupt, its messages flushed.

    With JAX imported, without the interpreter's shutdown (``os._exit``): JAX compiles on a
    thread of its own while the main thread waits, and an interrupt raised in that wait
    leaves the compile running; at shutdown JAX's exit handler destroys the devices that
    compile then uses, and the process died of a segmentation fault, after waiting for the
    compile (a Ctrl-C during the first training step's compile, and every part a parallel
    launcher stopped while compiling). Every ``finally`` has run by then (checkpoints and
    records are written atomically or not at all), so only the interpreter's own teardown
    is skipped. Without JAX, ``sys.exit``.
    """
    if "jax" not in sys.modules:
        sys.exit(code)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    logging.shutdown()
    os._exit(code)


def _innermost(error: BaseException) -> str:
    """The text of the innermost first argument: ``AttributeError(KeyError("'x' ..."))``
    (how ml_collections reports an unknown field) gives ``'x' ...``."""
    arg: object = error
    while isinstance(arg, BaseException) and arg.args:
        arg = arg.args[0]
    return str(arg)


def flag_error_message(error: BaseException) -> str:
    """One line for an error raised while absl parsed the command line (a ``--config``
    file that cannot be loaded, a ``--config.*`` override naming no key): the innermost
    message, with the OS error's line alone when there is one."""
    lines = [line.strip() for line in _innermost(error).splitlines() if line.strip()]
    os_lines = [line for line in lines if "[Errno" in line]
    if os_lines:
        return f"--config: {os_lines[-1]}"
    text = " ".join(lines)
    if isinstance(error, (KeyError, AttributeError)):
        return f"a --config.* flag names no config field: {text}"
    return text


def _names_an_override(error: BaseException) -> bool:
    """Whether ``error`` (raised before ``main``) names a key of a ``--config.*`` flag on
    the command line; an error inside a config file's own code keeps its traceback (its file
    and line)."""
    text = _innermost(error)
    overrides = [
        a.split("=")[0][len("--config.") :] for a in sys.argv[1:] if a.startswith("--config.")
    ]
    if isinstance(error, (KeyError, AttributeError)):
        return any(f"'{part}'" in text for o in overrides for part in o.split("."))
    return any(o in text for o in overrides) or "flag --config" in text


TRACEBACK_ENV = "MTAL_TRACEBACK"
"""Set (to anything but empty, ``0``, ``false``, ``no`` or ``off``), ``run_main`` raises the
errors it would print as one line, with their traceback (to report a bug in a dataset
reader, say)."""


def wants_traceback() -> bool:
    """Whether ``TRACEBACK_ENV`` asks for full tracebacks instead of one-line errors."""
    value = os.environ.get(TRACEBACK_ENV, "").strip().lower()
    return value not in ("", "0", "false", "no", "off")


def run_main(main) -> None:
    """``absl.app.run(main)``, except that ``-h``/``--help`` prints the usage and exits 0
    (absl exits 1 after help), an error in the command line itself (a ``--config`` file
    that cannot be loaded, an override naming no field), a missing dataset folder
    (``catalog.DataRootError``), a dataset option its builder does not take
    (``catalog.BuilderOptionError``), a bad dataset file or example
    (``errors.DatasetError``, ``pipeline.DataError``: they name the file and record), a
    missing weights file
    (``pretrained.WeightsNotFoundError``), a run directory another process holds
    (``workdir_lock.WorkdirLockedError``) or an error in the user's flags, config or files
    (``input_checks``) prints one line and exits 1, and an interrupt (Ctrl-C, SIGINT; or
    SIGTERM, from ``timeout``, SLURM or ``docker stop``) prints one line instead of a
    traceback and exits 130 (143 for SIGTERM): checkpoints, records and archives are
    written atomically, so the same command again resumes a training run from its last
    checkpoint (and redoes a selection or archive). With ``MTAL_TRACEBACK=1`` in the
    environment, the errors printed as one line are raised with their traceback instead."""
    import signal

    from absl import app

    if any(a in ("-h", "--help", "--helpshort", "--helpfull") for a in sys.argv[1:]):
        app.usage(shorthelp="--helpfull" not in sys.argv, writeto_stdout=True, exitcode=0)
    import threading

    main_thread = threading.current_thread() is threading.main_thread()  # handlers: there
    # only where the default stands, not one a parent chose (nor an ignored SIGINT: a job
    # the shell started in the background)
    defaults = {signal.SIGTERM: signal.SIG_DFL, signal.SIGINT: signal.default_int_handler}
    installed = {
        sig: default
        for sig, default in defaults.items()
        if main_thread and signal.getsignal(sig) is default
    }
    for sig in installed:
        signal.signal(sig, _interrupt)
    _received.clear()
    try:
        _run(main, app)
    finally:
        for sig, default in installed.items():
            signal.signal(sig, default)
        _received.clear()


_ONE_LINE_ERRORS = (
    ("mtal_jax.data.catalog", "DataRootError"),
    ("mtal_jax.data.catalog", "BuilderOptionError"),
    ("mtal_jax.data.errors", "DatasetError"),  # a user's dataset file: named with its record
    ("mtal_jax.data.pipeline", "DataError"),  # a decoded example the network cannot take
    ("mtal_jax.models.pretrained", "WeightsNotFoundError"),
    ("mtal_jax.workdir_lock", "WorkdirLockedError"),
)
"""(module, class) of the errors ``run_main`` prints as one line whatever they derive from."""


def _one_line_errors() -> tuple[type[Exception], ...]:
    """The classes of ``_ONE_LINE_ERRORS`` whose modules are imported: an error of one of
    them was raised only if its module was, and importing the others (JAX, seconds) would
    delay a usage error or a bad flag's one line for nothing."""
    return tuple(
        getattr(sys.modules[module], name)
        for module, name in _ONE_LINE_ERRORS
        if module in sys.modules
    )


def _run(main, app) -> None:
    """``run_main``'s body: ``app.run(main)`` with its errors turned into lines."""
    started = False

    def started_main(argv):
        nonlocal started
        started = True
        return main(argv)

    try:
        app.run(started_main)
    except Exception as e:
        if isinstance(e, _one_line_errors()):  # one line
            if wants_traceback():
                raise
            sys.exit(f"error: {e}")
        if not isinstance(e, (OSError, ValueError, KeyError, AttributeError, TypeError)):
            raise
        # raised by absl parsing the command line, or the --config file's load failure,
        # which ml_collections raises again on the first read of the flag: the user's flags
        flag_error = "Failed loading config file" in str(e) or (
            not started and _names_an_override(e)
        )
        input_error = isinstance(e, (OSError, ValueError)) and is_input_error(e)
        if wants_traceback() or not (flag_error or input_error):
            raise
        if flag_error:
            sys.exit(f"error: {flag_error_message(e)}")
        sys.exit(f"error: {e}")  # the user's flags, config or files (input_checks)
    except KeyboardInterrupt as e:
        how = "terminated (SIGTERM)" if isinstance(e, Terminated) else "interrupted"
        print(
            f"{how}: run the same command again to continue (checkpoints, records and "
            "archives are written atomically)",
            file=sys.stderr,
        )
        _exit_after_interrupt(143 if isinstance(e, Terminated) else 130)


NOISE = (
    "Using custom data configuration",  # TFDS: the builder config's full repr
    "OpenCV is not installed",  # TFDS: decoding with PIL is fine here
    "Waiting for previous save to complete",  # orbax: async checkpoint timing
    "CheckpointManagerOptions.read_only=True",  # orbax: a reader's manager (read_only=True)
    "Given directory is read only",  # orbax: the same, once per reader
)
"""Starts of third-party warnings that ``setup`` drops unless ``verbose``."""


def _drop_noise(record: logging.LogRecord) -> bool:
    """Logging filter: False (drop) for the messages listed in ``NOISE``."""
    message = record.msg if isinstance(record.msg, str) else ""
    return not message.startswith(NOISE)


def setup(mesh_config=None, *, verbose: bool = False) -> None:
    """Readable logs, quiet third-party INFO chatter, optional multi-host initialisation.

    Args:
      mesh_config: ``config.mesh``; with ``num_processes > 1`` calls
        ``jax.distributed.initialize`` with its coordinator address and process id.
      verbose: DEBUG logs of mtal_jax, and third-party warnings in ``NOISE`` kept.
    """
    import jax

    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname).1s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    logging.getLogger("mtal_jax").setLevel(logging.DEBUG if verbose else logging.INFO)
    for noisy in ("absl", "jax", "orbax", "tensorflow_datasets"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if not verbose:
        logging.getLogger("absl").addFilter(_drop_noise)
    try:
        from absl import logging as absl_logging

        absl_logging.set_verbosity(absl_logging.WARNING)
    except ImportError:  # pragma: no cover
        pass
    # Persistent compilation cache: resumed and repeated runs skip XLA compiles.
    jax.config.update("jax_compilation_cache_dir", os.path.expanduser("~/.cache/mtal_jax/xla"))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)
    import tensorflow_datasets as tfds

    tfds.disable_progress_bar()  # our own progress bars and log lines suffice
    if mesh_config is not None and int(mesh_config.num_processes) > 1:
        jax.distributed.initialize(
            coordinator_address=mesh_config.coordinator_address,
            num_processes=int(mesh_config.num_processes),
            process_id=int(mesh_config.process_id),
        )
