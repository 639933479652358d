"""Two processes (CPU collectives over loopback) score one pool together = one process."""

import os
import socket
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(nproc: int, data_dir: str, out: str) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                os.path.join(HERE, "multihost_worker.py"),
                str(p),
                str(nproc),
                str(port),
                data_dir,
                out,
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for p in range(nproc)
    ]
    logs = [p.communicate(timeout=300)[0] for p in procs]
    for p, log in zip(procs, logs):
        assert p.returncode == 0, log[-3000:]


def test_two_processes_agree_with_one(tmp_path):
    data_dir = str(tmp_path / "tfds")
    one, two = str(tmp_path / "one.npz"), str(tmp_path / "two.npz")
    _run(1, data_dir, one)  # also prepares the dataset before the 2-process run
    _run(2, data_dir, two)
    a, b = np.load(one), np.load(two)
    assert set(a.files) == set(b.files) and "score" in a.files
    np.testing.assert_array_equal(a["indices"], b["indices"])
    assert a["training_refused"] and b["training_refused"]  # refused with 2, not with 1
    for k in a.files:
        np.testing.assert_allclose(a[k], b[k], rtol=1e-4, atol=1e-5, err_msg=k)
