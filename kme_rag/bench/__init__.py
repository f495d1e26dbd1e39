"""Every benchmark of kme_rag: what ``kme bench`` runs and writes.

Layer: above the runtime (``memory``, ``scope``, ``ike``, ``multihop``, ``whitebox``,
``editor``, ``server``, ``wrappers``), which imports nothing from here; below
``report``'s reader, which renders the files written here (tables, plots, REPORT.md) and
runs nothing. The scope model's *training* stays with the scope model
(:mod:`kme_rag.scope.training`, ``kme scope train``): it builds a shipped artefact, not a
measurement; its *evaluation* is here (:mod:`.scope_eval`).

- :mod:`.harness`: CounterFact / zsRE cases, the probes asked per case, the metrics
  (efficacy, generality, locality) and the memory methods' runner (none, ike, kme).
- :mod:`.weights`: ROME and MEMIT on the same cases (probability and generation metrics).
- :mod:`.memory_weights`: ``kme+weights`` — the edits consolidated into the weights,
  asked through the editor.
- :mod:`.mquake` and :mod:`.mquake_metrics`: multi-hop (none, MeLLo, the walk).
- :mod:`.curves` and :mod:`.curve_runs`: scalability and retainability curves.
- :mod:`.scope_eval`: the scope classifier's recall and specificity.
- :mod:`.plan` and :mod:`.run_all`: ``kme bench all`` — the plan, lanes and manifest.
- :mod:`.output`: the one writer of a result JSON and its per-case JSONL.
- :mod:`.provenance`: command, date and machine, recorded in every result.
- :mod:`.cli`: ``kme bench`` as a Typer sub-app, one subcommand per benchmark.
"""
