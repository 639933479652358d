"""The parts of docs/results.md, built from the reproduction's run directories.

``docs/make_results.py`` is the command line; ``results_page.build`` assembles the page
from one module per part: ``run_dirs`` (the runs read), ``page_files`` (files read and
written), ``table_cells`` (cell formats), ``regime``, ``main_comparison``, ``trials10``,
``table1_scores``, ``score_makeup``, ``variants``, ``gpu_serial``, ``gpu_parallel``,
``analyses`` (Table II, Figures 5 and 6) and ``claims_table`` (the side-by-side with the
paper).
"""
