"""Scope: deciding whether a query touches a stored edit.

:class:`TrainedScope` (the default) is the SERAC-style classifier trained on the training
splits (:mod:`kme_rag.scope.training`, weights in ``weights/``); :class:`SimilarityScope`
is the calibrated similarity-threshold baseline. Both implement :class:`ScopeModel`.
Out-of-scope queries go to the model untouched.
"""

from kme_rag.scope.base import ScopeDecision, ScopeModel
from kme_rag.scope.classifier import TrainedScope
from kme_rag.scope.similarity import SimilarityScope

__all__ = ["ScopeDecision", "ScopeModel", "SimilarityScope", "TrainedScope"]
