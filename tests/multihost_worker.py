"""Worker of tests/test_multihost.py: one of N processes scoring one pool together.

python tests/multihost_worker.py PROCESS_ID NUM_PROCESSES PORT DATA_DIR OUT_NPZ
"""

import os
import sys

os.environ["JAX_PLATFORMS"] = "cpu"
os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=1"
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main(pid: int, nproc: int, port: int, data_dir: str, out: str) -> None:
    from configs import tiny
    from mtal_jax import runtime

    config = tiny.get_config()
    config.data.data_dir = data_dir
    config.mesh.coordinator_address = f"127.0.0.1:{port}"
    config.mesh.num_processes = nproc
    config.mesh.process_id = pid
    runtime.setup(config.mesh)

    import jax
    import numpy as np

    from mtal_jax import strategies
    from mtal_jax.al import experiment, scoring
    from mtal_jax.models import multitask
    from mtal_jax.train import step as step_lib

    setup = experiment.build_setup(config)
    assert jax.process_count() == nproc and len(setup.mesh.devices.ravel()) == nproc
    variables = multitask.create_variables(setup.model, jax.random.key(0), setup.spec.image_hw)
    strategy = strategies.get_strategy("ours")
    predict = jax.jit(
        step_lib.make_predict_fn(
            setup.model, strategy, decode_kwargs=experiment.decode_kwargs(config),
            det_to_seg=np.asarray(setup.dataset.det_to_seg, np.int32),
        )
    )  # fmt: skip
    indices = np.arange(setup.pool_size)[::-1][:30]  # 30 images: the last batch is partial
    from mtal_jax import sharding

    scores, _ = scoring.score_pool(
        predict, sharding.put_replicated(variables, setup.mesh), setup.dataset.sources["train"], indices,
        setup.spec, batch_size=8, mesh=setup.mesh, progress=False,
    )  # fmt: skip
    # training and evaluation are one-process only: refused, never run with wrong batches
    from mtal_jax.train import config as config_lib

    try:
        config_lib.check_single_process()
        refused = False
    except ValueError as e:
        refused = "training runs in one process" in str(e)
    if jax.process_index() == 0:
        np.savez(out, indices=indices, training_refused=refused == (nproc > 1), **scores)


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5])
