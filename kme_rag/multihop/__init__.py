"""Multi-hop questions over edited knowledge.

- :mod:`.walk`: the graph-guided method — link the question's subject, infer its relation
  chain (:mod:`.relations`), walk it taking edited hops from the fact graph and asking the
  model the others (:mod:`.hops`); the KnowledgeEditor's ``multihop`` route.
- :mod:`.mello`: MeLLo (decompose, retrieve, self-check), the baseline and the fallback.
- :mod:`.evaluate` and :mod:`.bench`: MQuAKE scoring and ``kme bench mquake``.
"""
