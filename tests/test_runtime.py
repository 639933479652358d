"""Process setup: third-party noise is dropped by default, kept with verbose."""

import logging

from mtal_jax import runtime


def _record(msg, *args):
    return logging.LogRecord("absl", logging.WARNING, __file__, 1, msg, args, None)


def test_noise_filter_drops_only_listed_messages():
    assert not runtime._drop_noise(_record("Using custom data configuration: %s", "Cfg(...)"))
    assert not runtime._drop_noise(_record("OpenCV is not installed. We recommend ..."))
    assert runtime._drop_noise(_record("checkpoint %s does not match", "x"))
    assert runtime._drop_noise(_record(ValueError("not a string message")))
