"""The paper's analyses of the consistency scores (Table II, Figures 5 and 6).

Pure parts (array in, array or table out) live in ``boxmask_accuracy``, ``correlation``
and ``overlays``; ``collect`` builds the jitted per-batch function; ``cli`` is the shell
(``python -m mtal_jax.analysis.cli --help``).
"""
