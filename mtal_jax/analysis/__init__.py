"""The paper's analyses of the consistency scores (Table II, Figures 5 and 6).

Pure parts (array in, array or table out) live in ``boxmask_accuracy``, ``correlation``
and ``overlays``; ``collect`` builds the jitted per-batch function and ``collect_loop`` runs
it over a split; ``figures`` writes the files, ``wall_times`` their wall-time record, and
``cli`` is the shell (``python -m mtal_jax.analysis.cli --help``). Not in the paper: the
composition of each strategy's selections (rare classes, hard scenes), counted in
``selection_shares``, tabulated in ``composition_tables`` and run by ``composition``
(``python -m mtal_jax.analysis.composition --help``).
"""
