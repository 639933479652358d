"""Process setup shared by the entrypoints (the only place that changes jax.config).

Call ``configure_host_devices`` before JAX is imported and ``setup`` at the start of main.
"""

from __future__ import annotations

import logging
import os
import sys


def configure_host_devices(count: int = 2) -> None:
    """On the CPU, split the host into ``count`` virtual devices (faster here, and the data-
    parallel path is exercised). Must run before JAX is imported; keeps an explicit flag."""
    if "jax" in sys.modules:
        return
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_force_host_platform_device_count" not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={count}".strip()


def run_main(main) -> None:
    """``absl.app.run(main)``, except that ``-h``/``--help`` prints the usage and exits 0
    (absl exits 1 after help), and a missing dataset folder (``catalog.DataRootError``)
    prints one line and exits 1."""
    from absl import app

    if any(a in ("-h", "--help", "--helpshort", "--helpfull") for a in sys.argv[1:]):
        app.usage(shorthelp="--helpfull" not in sys.argv, writeto_stdout=True, exitcode=0)
    from mtal_jax.data import catalog

    try:
        app.run(main)
    except catalog.DataRootError as e:  # missing user data: one line, not a traceback
        sys.exit(f"error: {e}")


def setup(mesh_config=None, *, verbose: bool = False) -> None:
    """Readable logs, quiet third-party INFO chatter, optional multi-host initialisation.

    Args:
      mesh_config: ``config.mesh``; with ``num_processes > 1`` calls
        ``jax.distributed.initialize`` with its coordinator address and process id.
      verbose: DEBUG logs of mtal_jax.
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
