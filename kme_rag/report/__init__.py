"""The side-by-side evaluation (``kme bench all``) and its report.

- :mod:`~.stats`: Wilson intervals, Newcombe differences, the survey's Eq. 12-14;
- :mod:`~.probes`, :mod:`~.curves`, :mod:`~.curve_bench`: scalability and
  retainability runs of a memory-based editor;
- :mod:`~.plan`: which runs ``bench all`` makes (method x dataset, quick and full sizes);
- :mod:`~.run_all`: executes the plan, one ``kme bench`` process per run;
- :mod:`~.tables`, :mod:`~.writer`, :mod:`~.anchors`: REPORT.md from the result JSONs (pure);
- :mod:`~.plots`: the PNG figures.
"""
