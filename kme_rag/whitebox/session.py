"""A local model whose weights carry edits: write (ROME / MEMIT), undo, reopen, answer.

:class:`WeightEditor` ties the white-box pieces to the edit memory's :class:`Edit`:

- :meth:`WeightEditor.write` turns structured edits into requests and applies ROME (one
  delta per edit, in order) or MEMIT (one delta for the batch), persisting each delta in
  the :class:`~kme_rag.whitebox.deltastore.DeltaStore`;
- :meth:`WeightEditor.undo` restores the weights of the newest delta bit for bit;
- :meth:`WeightEditor.open` loads the model and reapplies the stored deltas;
- :attr:`WeightEditor.backend` answers from the edited weights (route ``weights``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from kme_rag.errors import NothingToUndoError, WhiteboxError
from kme_rag.memory.edit import Edit
from kme_rag.settings import Settings
from kme_rag.whitebox.architectures import get_module, read_projection
from kme_rag.whitebox.backend import TorchBackend
from kme_rag.whitebox.delta import WeightDelta, apply_delta, undo
from kme_rag.whitebox.deltastore import DeltaRecord, DeltaStore
from kme_rag.whitebox.edit_requests import edit_request
from kme_rag.whitebox.loading import LoadedModel, LoadParams, load_from_settings
from kme_rag.whitebox.memit import MemitParams, apply_memit, target_path
from kme_rag.whitebox.rome import RomeParams, apply_rome
from kme_rag.whitebox.second_moments import SecondMoment, StatsParams, layer_second_moments
from kme_rag.whitebox.targetcache import TargetCache, TargetCacheCounts

__all__ = ["Method", "WeightEditParams", "WeightEditor"]

log = logging.getLogger(__name__)

Method = Literal["rome", "memit"]
MEMIT_GPTJ_LAMBDA, MEMIT_GPTJ_KEY_DIM = 15000.0, 16384


@dataclass(frozen=True, kw_only=True)
class WeightEditParams:
    """How edits are written: ``rome`` / ``memit`` params (``None``: the architecture's
    default layers with the paper's other hyper-parameters) and how C is estimated."""

    rome: RomeParams | None = None
    memit: MemitParams | None = None
    stats: StatsParams = field(default_factory=StatsParams)
    corpus: tuple[Path, ...] = ()  # empty: WikiText-2 under the settings' data_dir
    cache_targets: bool = True  # keep optimised δs on disk (same edit, same weights: reused)


@dataclass
class _Applied:
    record: DeltaRecord
    delta: WeightDelta  # applied: carries the pre-edit weights for an exact undo


class WeightEditor:
    """The edited model, its stored deltas, and the statistics its methods need."""

    def __init__(
        self,
        loaded: LoadedModel,
        store: DeltaStore,
        *,
        corpus: Sequence[Path],
        cache_dir: Path,
        params: WeightEditParams | None = None,
    ) -> None:
        self.loaded = loaded
        self.store = store
        self.corpus = tuple(corpus)
        self.cache_dir = cache_dir
        self.params = params or WeightEditParams()
        self._applied: list[_Applied] = []
        self.target_counts = TargetCacheCounts()
        self.backend = TorchBackend(loaded.model, loaded.tokenizer, name=f"{loaded.source.name}")

    @classmethod
    def open(
        cls,
        settings: Settings,
        *,
        params: WeightEditParams | None = None,
        load: LoadParams | None = None,
    ) -> WeightEditor:
        """Load the settings' model and reapply every delta stored for it, in order."""
        from kme_rag.whitebox.second_moments import wikitext_corpus

        loaded = load_from_settings(settings, load or LoadParams(device=settings.device))
        params = params or WeightEditParams()
        corpus = params.corpus or wikitext_corpus(settings.data_dir)
        store = DeltaStore(settings.weights_root, loaded.identity)
        editor = cls(loaded, store, corpus=corpus, cache_dir=settings.cache_dir, params=params)
        editor.reapply()
        return editor

    @classmethod
    def open_scratch(
        cls, settings: Settings, *, params: WeightEditParams | None = None
    ) -> WeightEditor:
        """The settings' model on a fresh, empty deltas folder, for benchmarks: the user's
        own weight edits are neither reapplied nor touched. Applies ``KME_TORCH_THREADS``."""
        import tempfile

        import torch

        if settings.torch_threads:
            torch.set_num_threads(settings.torch_threads)
        scratch = Path(tempfile.mkdtemp(prefix="kme-scratch-weights-"))
        return cls.open(settings.model_copy(update={"weights_dir": scratch}), params=params)

    # ---- state -------------------------------------------------------------------------

    @property
    def records(self) -> list[DeltaRecord]:
        return [a.record for a in self._applied]

    def edit_ids(self) -> frozenset[str]:
        """Ids of the edits written into the weights now."""
        return frozenset(i for a in self._applied for i in a.record.edit_ids)

    def reapply(self) -> int:
        """Apply the stored deltas not applied yet (all of them after a fresh load)."""
        records = self.store.records()
        done = {a.record.id for a in self._applied}
        for record in records:
            if record.id not in done:
                delta = apply_delta(self.loaded.model, self.store.load(record))
                self._applied.append(_Applied(record, delta))
        return len(records) - len(done)

    # ---- writing -------------------------------------------------------------------------

    def rome_params(self) -> RomeParams:
        if self.params.rome is not None:
            return self.params.rome
        arch, model = self.loaded.architecture, self.loaded.model
        layer = arch.rome_layer(arch.num_layers(model))
        return RomeParams(layer=layer, clamp_norm_factor=arch.target_clamp)

    def memit_params(self) -> MemitParams:
        if self.params.memit is not None:
            return self.params.memit
        arch, model = self.loaded.architecture, self.loaded.model
        layers = arch.memit_layers(arch.num_layers(model))
        d_in = read_projection(get_module(model, arch.projection_path(layers[0]))).shape[1]
        # λ weighs λC against KKᵀ; a key's kᵀC⁻¹k grows with d_in, so MEMIT's GPT-J value
        # (15,000 at d_in = 16,384) is scaled to this model's key width
        lam = MEMIT_GPTJ_LAMBDA * d_in / MEMIT_GPTJ_KEY_DIM
        if arch.mlp_adds_to_residual:
            return MemitParams(layers=layers, lam=lam)
        # targets in the projection's space, as ROME's: ROME's clamp, not the residual's
        return MemitParams(layers=layers, lam=lam, clamp_norm_factor=arch.target_clamp)

    def _target_cache(self) -> TargetCache | None:
        """The δ cache for the weights as they are now (None when caching is off)."""
        if not self.params.cache_targets:
            return None
        dtype = next(self.loaded.model.parameters()).dtype
        applied = (a.record.sha256 for a in self._applied)
        state = "\n".join([self.loaded.identity, str(dtype), *applied])
        return TargetCache(self.cache_dir / "targets", state, self.target_counts)

    def second_moments(
        self, layers: Sequence[int], *, progress: bool = False
    ) -> dict[int, SecondMoment]:
        """C of each layer (cached on disk after the first computation)."""
        return layer_second_moments(
            self.loaded,
            layers,
            self.corpus,
            self.params.stats,
            self.cache_dir / "stats",
            progress=progress,
        )

    def write(
        self, edits: Sequence[Edit], method: Method = "rome", *, progress: bool = False
    ) -> list[DeltaRecord]:
        """Write ``edits`` into the weights; return the new records (ROME: one per edit)."""
        if not edits:
            raise WhiteboxError("expected at least one edit to write, got none")
        requests = [edit_request(self.loaded.tokenizer, e) for e in _structured(edits)]
        if method == "memit":
            memit = self.memit_params()
            stats = self.second_moments(memit.layers, progress=progress)
            start = time.perf_counter()
            delta = apply_memit(
                self.loaded.model, requests, memit, stats, cache=self._target_cache()
            )
            return [self._keep(delta, tuple(e.id for e in edits), time.perf_counter() - start)]
        rome = self.rome_params()
        moment = self.second_moments([rome.layer], progress=progress)[rome.layer]
        records = []
        for edit, request in zip(edits, requests, strict=True):
            start = time.perf_counter()
            cache = self._target_cache()  # keyed by the edits written before this one
            delta = apply_rome(self.loaded.model, request, rome, moment, cache=cache)
            records.append(self._keep(delta, (edit.id,), time.perf_counter() - start))
        return records

    def prepare_targets(self, edits: Sequence[Edit], method: Method = "memit") -> int:
        """Optimise and cache the δs that writing each of ``edits`` with ``method`` would
        need on the weights as they are now, writing nothing; return how many were computed
        (the rest were cached already).

        The optimisation dominates a large MEMIT batch (~9 s per edit for Gemma 3 270M on
        one core) and each δ is independent, so processes given disjoint slices of the
        batch can fill the cache side by side before one :meth:`write` solves. For ROME this
        prepares each edit as if it were the only one (one at a time, restored between).
        """
        cache = self._target_cache()
        if cache is None:
            raise WhiteboxError("target caching is off (cache_targets=False): nothing to keep")
        arch, model = self.loaded.architecture, self.loaded.model
        params: RomeParams | MemitParams
        if method == "memit":
            params = self.memit_params()
            path = target_path(arch, params)
        else:
            params = self.rome_params()
            path = arch.projection_path(params.layer)
        before = cache.counts.computed
        for edit in _structured(edits):
            cache.optimise(model, path, edit_request(self.loaded.tokenizer, edit), params)
        return cache.counts.computed - before

    def _keep(self, delta: WeightDelta, edit_ids: tuple[str, ...], seconds: float) -> DeltaRecord:
        try:
            record = self.store.append(
                replace(delta, originals={}, edited_sha={}), edit_ids, seconds
            )
        except BaseException:
            undo(self.loaded.model, delta)  # never leave weights the store does not know
            raise
        self._applied.append(_Applied(record, delta))
        log.info(
            "wrote %s into the weights (%s, %.1f s)", ", ".join(edit_ids), delta.method, seconds
        )
        return record

    def undo(self) -> DeltaRecord:
        """Restore the weights from before the newest delta (bit for bit) and forget it."""
        if not self._applied:
            raise NothingToUndoError("no weight edit to undo")
        last = self._applied[-1]
        undo(self.loaded.model, last.delta)
        self._applied.pop()
        self.store.pop()
        return last.record


def _structured(edits: Sequence[Edit]) -> Sequence[Edit]:
    for edit in edits:
        if not edit.structured:
            raise WhiteboxError(
                f"edit {edit.id} is a statement ({edit.statement!r}); weight editing needs a "
                "structured edit (subject, relation, new object)"
            )
    return edits
