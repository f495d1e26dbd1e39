"""The δ cache: the same edit on the same weights is optimised once and reused bit-for-bit."""

from __future__ import annotations

from pathlib import Path

import torch

from kme_rag.whitebox.architectures import get_module
from kme_rag.whitebox.delta import undo
from kme_rag.whitebox.memit import MemitParams
from kme_rag.whitebox.rome import RomeParams, apply_rome
from kme_rag.whitebox.second_moments import identity_second_moment
from kme_rag.whitebox.target import optimise_delta
from kme_rag.whitebox.targetcache import TargetCache, TargetCacheCounts
from tests.whitebox.test_session import EIFFEL, LOUVRE, _editor
from tests.whitebox.tiny import edit_request, parameters_snapshot, tiny_gpt2

PATH = "transformer.h.1.mlp.c_proj"
SUBJECT, TARGET = (11, 12, 13), (7,)


def _cache(folder: Path, state: str = "weights-a") -> TargetCache:
    return TargetCache(folder, state, TargetCacheCounts())


def test_a_stored_delta_is_the_computed_one_and_is_read_back(tmp_path: Path) -> None:
    model, request, params = tiny_gpt2(), edit_request(SUBJECT, TARGET), RomeParams(layer=1)
    fresh = optimise_delta(model, get_module(model, PATH), request, params)
    cache = _cache(tmp_path)

    first = cache.optimise(model, PATH, request, params)
    again = cache.optimise(model, PATH, request, params)

    assert torch.equal(first, fresh) and torch.equal(again, fresh)
    assert (cache.counts.computed, cache.counts.reused) == (1, 1)
    assert cache.counts.reused_seconds > 0  # the first optimisation's time, carried along


def test_rome_and_memit_share_a_delta_only_when_its_optimisation_is_the_same(
    tmp_path: Path,
) -> None:
    """The key holds the optimisation's parameters, not the method's (layer, λ)."""
    model, request = tiny_gpt2(), edit_request(SUBJECT, TARGET)
    cache = _cache(tmp_path)
    cache.optimise(model, PATH, request, RomeParams(layer=1))
    cache.optimise(model, PATH, request, MemitParams(layers=(1,), lam=3.0, clamp_norm_factor=4.0))
    assert (cache.counts.computed, cache.counts.reused) == (1, 1)

    cache.optimise(model, PATH, request, MemitParams(layers=(1,)))  # MEMIT's own clamp, 0.75
    cache.optimise(model, PATH, request, RomeParams(layer=1, steps=3))
    cache.optimise(model, PATH, edit_request(SUBJECT, (8,)), RomeParams(layer=1))
    cache.optimise(model, "transformer.h.0.mlp.c_proj", request, RomeParams(layer=1))
    assert (cache.counts.computed, cache.counts.reused) == (5, 1)
    other_weights = _cache(tmp_path, "weights-b")
    other_weights.optimise(model, PATH, request, RomeParams(layer=1))
    assert (other_weights.counts.computed, other_weights.counts.reused) == (1, 0)


def test_apply_rome_with_a_cache_edits_the_weights_as_without(tmp_path: Path) -> None:
    request, params = edit_request(SUBJECT, TARGET), RomeParams(layer=1)
    stats = identity_second_moment(128)
    plain = tiny_gpt2()
    apply_rome(plain, request, params, stats)
    cached = tiny_gpt2()
    cache = _cache(tmp_path)
    delta = apply_rome(cached, request, params, stats, cache=cache)
    undo(cached, delta)
    apply_rome(cached, request, params, stats, cache=cache)  # δ read back, not optimised

    assert cache.counts.reused == 1
    expected = parameters_snapshot(plain)
    assert all(torch.equal(p, expected[n]) for n, p in cached.named_parameters())


def test_the_editor_reuses_a_delta_only_on_the_weights_it_was_optimised_on(
    tmp_path: Path,
) -> None:
    editor = _editor(tmp_path)
    editor.write([LOUVRE], "rome")
    editor.write([EIFFEL], "rome")  # optimised on weights that already hold LOUVRE
    sequential = parameters_snapshot(editor.loaded.model)
    editor.undo()
    editor.undo()
    assert (editor.target_counts.computed, editor.target_counts.reused) == (2, 0)

    editor.write([EIFFEL], "rome")  # on the unedited weights: not the sequential δ
    assert (editor.target_counts.computed, editor.target_counts.reused) == (3, 0)
    editor.undo()
    editor.write([LOUVRE], "rome")
    editor.write([EIFFEL], "rome")  # both read back: the same weights as the first time
    assert (editor.target_counts.computed, editor.target_counts.reused) == (3, 2)
    edited = editor.loaded.model.named_parameters()
    assert all(torch.equal(p, sequential[n]) for n, p in edited)


def test_prepared_targets_make_memit_write_the_same_weights_without_optimising(
    tmp_path: Path,
) -> None:
    plain = _editor(tmp_path / "plain")
    plain.write([EIFFEL, LOUVRE], "memit")
    expected = parameters_snapshot(plain.loaded.model)

    editor = _editor(tmp_path / "prepared")
    pristine = parameters_snapshot(editor.loaded.model)
    # two "processes" each prepare their own slice of the batch; a repeat computes nothing
    assert editor.prepare_targets([EIFFEL], "memit") == 1
    assert editor.prepare_targets([LOUVRE, EIFFEL], "memit") == 1
    assert all(torch.equal(p, pristine[n]) for n, p in editor.loaded.model.named_parameters())

    editor.write([EIFFEL, LOUVRE], "memit")
    assert (editor.target_counts.computed, editor.target_counts.reused) == (2, 3)
    assert all(torch.equal(p, expected[n]) for n, p in editor.loaded.model.named_parameters())
