"""The project's documentation; ``docs.results_lib`` builds docs/results.md
(``python docs/make_results.py``)."""
