from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
from transformers import GPT2LMHeadModel

from kme_rag.errors import WhiteboxError
from kme_rag.whitebox.hooks import capture
from kme_rag.whitebox.second_moments import (
    SecondMomentAccumulator,
    StatsKey,
    cached_second_moment,
    corpus_second_moment,
    corpus_second_moments,
    identity_second_moment,
    model_fingerprint,
    token_windows,
)

KEY = StatsKey(
    model="tiny-gpt2@0",
    module="transformer.h.1.mlp.c_proj",
    layer=1,
    corpus_sha256="ab" * 32,
    samples=6,
    max_length=8,
    model_dtype="torch.float32",
    accumulate_dtype="torch.float64",
)


def test_accumulator_equals_a_direct_computation() -> None:
    keys = torch.randn(50, 6)
    acc = SecondMomentAccumulator()
    for chunk in keys.split(7):
        acc.add(chunk)
    direct = keys.double().T @ keys.double() / 50
    assert acc.count == 50 and torch.allclose(acc.moment(), direct)
    with pytest.raises(WhiteboxError, match="no keys"):
        SecondMomentAccumulator().moment()


def test_corpus_statistics_match_keys_captured_by_hand(gpt2: GPT2LMHeadModel) -> None:
    ids = torch.randint(0, 128, (45,)).tolist()  # 5 full windows of 8 and one of 5
    proj = gpt2.transformer.h[1].mlp.c_proj
    moment, tokens = corpus_second_moment(
        gpt2, proj, token_windows(ids, max_length=8, batch_size=4), samples=100
    )
    keys = []
    for start in range(0, 45, 8):
        with torch.no_grad(), capture(proj) as seen:
            gpt2(input_ids=torch.tensor([ids[start : start + 8]]))
        assert seen.input is not None
        keys.append(seen.input[0].double())  # (t, 128)
    k = torch.cat(keys)  # padding excluded: 45 keys
    assert tokens == 45 and torch.allclose(moment, k.T @ k / 45, atol=1e-5)  # fp32 batching


def test_sample_count_limits_the_sequences_used(gpt2: GPT2LMHeadModel) -> None:
    ids = list(range(64))
    proj = gpt2.transformer.h[0].mlp.c_proj
    _, tokens = corpus_second_moment(gpt2, proj, token_windows(ids, 8, 3), samples=5)
    assert tokens == 5 * 8


def test_cache_hit_returns_the_identical_tensor(tmp_path: Path) -> None:
    calls = []

    def compute() -> tuple[torch.Tensor, int]:
        calls.append(1)
        return torch.randn(4, 4, dtype=torch.float64), 99

    first = cached_second_moment(tmp_path, KEY, compute)
    second = cached_second_moment(tmp_path, KEY, compute)
    assert len(calls) == 1 and torch.equal(first.matrix, second.matrix)
    assert second.source == "corpus" and second.tokens == 99 and second.key == KEY
    sidecar = json.loads((tmp_path / f"{KEY.digest()}.json").read_text())
    assert sidecar["key"] == dataclasses.asdict(KEY) and sidecar["tokens"] == 99

    cached_second_moment(tmp_path, dataclasses.replace(KEY, samples=7), compute)
    assert len(calls) == 2  # a different sample count is a different entry


@pytest.mark.parametrize("field", [f.name for f in dataclasses.fields(StatsKey)])
def test_every_input_changes_the_cache_key(field: str) -> None:
    value = getattr(KEY, field)
    changed = value + 1 if isinstance(value, int) else value + "x"
    assert dataclasses.replace(KEY, **{field: changed}).digest() != KEY.digest()


def test_identity_mode_is_labelled() -> None:
    stats = identity_second_moment(5)
    assert stats.source == "identity" and stats.tokens == 0 and stats.key is None
    assert torch.equal(stats.matrix, torch.eye(5, dtype=torch.float64))


def test_model_fingerprint_follows_the_weights(gpt2: GPT2LMHeadModel) -> None:
    before = model_fingerprint(gpt2)
    assert model_fingerprint(gpt2) == before
    with torch.no_grad():
        gpt2.transformer.h[0].mlp.c_proj.weight[0, 0] += 1
    assert model_fingerprint(gpt2) != before


def test_several_layers_in_one_pass_equal_one_layer_at_a_time(gpt2: GPT2LMHeadModel) -> None:
    ids = torch.randint(0, 128, (40,)).tolist()
    projs = [gpt2.transformer.h[i].mlp.c_proj for i in (0, 2)]
    together, tokens = corpus_second_moments(gpt2, projs, token_windows(ids, 8, 2), samples=5)
    for proj, moment in zip(projs, together, strict=True):
        alone, count = corpus_second_moment(gpt2, proj, token_windows(ids, 8, 2), samples=5)
        assert count == tokens and torch.equal(moment, alone)


def test_windows_start_with_bos_and_skip_leaves_it_out(gpt2: GPT2LMHeadModel) -> None:
    ids = list(range(10, 24))  # 14 tokens → windows of 1 BOS + 7
    (first, mask), (second, _) = token_windows(ids, 8, 1, bos=1)
    assert first[0].tolist() == [1, *range(10, 17)] and second[0, 0] == 1
    assert mask.sum() == 8
    proj = gpt2.transformer.h[0].mlp.c_proj
    windows = token_windows(ids, 8, 2, bos=1)
    _, tokens = corpus_second_moment(gpt2, proj, windows, samples=2, skip=1)
    assert tokens == 14  # every stream token once, no BOS
