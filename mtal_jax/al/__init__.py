"""Active learning: pure ``selection`` procedures (top-k, k-centre greedy) and ``pool``
masks; the shell that scores a pool (``scoring``), runs trials x strategies x cycles
(``experiment``) and backs ``select.py`` (``select_cli``)."""
