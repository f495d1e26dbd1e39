"""Second-moment statistics C = E[k kᵀ] of a projection's input, and their disk cache.

ROME and MEMIT weigh their updates by ``C``, the uncentred covariance of the keys ``k``
(the MLP output projection's inputs) over ordinary text. Computing it means running the
model over many token windows, so the result is cached under a key made of *every* input
that changes it (:class:`StatsKey`: model identity, module, corpus, sample count, window
length, both dtypes, format version) with a JSON sidecar naming them. ``identity`` mode
(:func:`identity_second_moment`) skips the corpus entirely and says so in its ``source``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import torch
from torch import nn
from tqdm import tqdm

from kme_rag.errors import WhiteboxError
from kme_rag.whitebox.delta import tensor_sha256
from kme_rag.whitebox.hooks import capture
from kme_rag.whitebox.prompts import eval_mode, model_device, pad_batch

__all__ = [
    "STATS_FORMAT_VERSION",
    "SecondMoment",
    "SecondMomentAccumulator",
    "StatsKey",
    "TokenBatch",
    "cached_second_moment",
    "corpus_second_moment",
    "identity_second_moment",
    "model_fingerprint",
    "token_windows",
]

log = logging.getLogger(__name__)

STATS_FORMAT_VERSION = 1
TokenBatch = tuple[torch.Tensor, torch.Tensor]  # input_ids (b, t), attention_mask (b, t)


@dataclass(frozen=True)
class SecondMoment:
    """``matrix`` = C (d_in, d_in); ``source`` says whether it came from text or is I."""

    matrix: torch.Tensor
    source: Literal["corpus", "identity"]
    tokens: int  # key vectors averaged; 0 for identity
    key: StatsKey | None = None


@dataclass(frozen=True)
class StatsKey:
    """Every input that changes C; its :meth:`digest` names the cache file."""

    model: str  # identity of the weights: a file sha256, or name@revision, or a fingerprint
    module: str  # dotted path of the projection, e.g. "model.layers.5.mlp.down_proj"
    layer: int
    corpus_sha256: str
    samples: int  # token windows (sequences) used
    max_length: int  # tokens per window
    model_dtype: str  # dtype the forward pass ran in
    accumulate_dtype: str  # dtype of the running sum
    version: int = STATS_FORMAT_VERSION

    def digest(self) -> str:
        blob = json.dumps(asdict(self), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()


class SecondMomentAccumulator:
    """Running ``Σ k kᵀ`` and count; :meth:`moment` is their ratio, C = E[k kᵀ]."""

    def __init__(self, dtype: torch.dtype = torch.float64) -> None:
        self.dtype = dtype
        self.total: torch.Tensor | None = None  # (d, d), on the keys' device
        self.count = 0

    def add(self, keys: torch.Tensor) -> None:
        """Add a batch of keys, shape ``(n, d)``."""
        if keys.dim() != 2:
            raise WhiteboxError(f"expected keys of shape (n, d), got {tuple(keys.shape)}")
        k = keys.to(self.dtype)
        outer = k.T @ k  # (d, d) = Σ_i k_i k_iᵀ
        self.total = outer if self.total is None else self.total + outer
        self.count += k.shape[0]

    def moment(self) -> torch.Tensor:
        if self.total is None or self.count == 0:
            raise WhiteboxError("no keys were accumulated; the corpus gave no tokens")
        return self.total / self.count


def token_windows(ids: Sequence[int], max_length: int, batch_size: int) -> Iterator[TokenBatch]:
    """Cut a token stream into windows of ``max_length`` and batch them.

    The last window may be short; it is right-padded with 0 and masked out.
    """
    if max_length < 1 or batch_size < 1:
        raise WhiteboxError(f"expected positive sizes, got {max_length=}, {batch_size=}")
    windows = [ids[i : i + max_length] for i in range(0, len(ids), max_length)]
    for start in range(0, len(windows), batch_size):
        yield pad_batch(windows[start : start + batch_size])


@torch.no_grad()
def corpus_second_moment(
    model: nn.Module,
    module: nn.Module,
    batches: Iterable[TokenBatch],
    *,
    samples: int,
    dtype: torch.dtype = torch.float64,
    progress: bool = False,
) -> tuple[torch.Tensor, int]:
    """C = E[k kᵀ] over the unmasked tokens of the first ``samples`` sequences; and the count.

    ``module`` is the projection whose input is k; each forward stops right after it. The
    model is unchanged on return.
    """
    device = model_device(model)
    acc = SecondMomentAccumulator(dtype)
    seen = 0
    bar = tqdm(total=samples, unit="seq", disable=not progress, desc="second moment")
    with bar, eval_mode(model):
        for input_ids, mask in batches:
            take = min(samples - seen, input_ids.shape[0])
            if take <= 0:
                break
            ids, keep = input_ids[:take].to(device), mask[:take].to(device)
            with capture(module, output=False, stop=True) as got:
                model(input_ids=ids, attention_mask=keep)
            assert got.input is not None
            acc.add(got.input[keep.bool()])  # (b, t, d) → (tokens, d)
            seen += take
            bar.update(take)
    if seen < samples:
        log.warning("corpus gave %d sequences, fewer than the %d asked for", seen, samples)
    return acc.moment(), acc.count


def identity_second_moment(dim: int, dtype: torch.dtype = torch.float64) -> SecondMoment:
    """The no-statistics mode: C = I, labelled ``source="identity"``."""
    return SecondMoment(matrix=torch.eye(dim, dtype=dtype), source="identity", tokens=0)


def _write_atomic(path: Path, write: Callable[[Path], object]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    os.replace(tmp, path)


def cached_second_moment(
    cache_dir: Path, key: StatsKey, compute: Callable[[], tuple[torch.Tensor, int]]
) -> SecondMoment:
    """C from ``cache_dir/<digest>.pt`` when present, else ``compute()`` then save it.

    The sidecar ``<digest>.json`` records the key fields and the token count; a sidecar
    that disagrees with the key (a hash collision or a hand-edited file) is recomputed.
    """
    digest = key.digest()
    tensor_path, sidecar_path = cache_dir / f"{digest}.pt", cache_dir / f"{digest}.json"
    if tensor_path.exists() and sidecar_path.exists():
        sidecar = json.loads(sidecar_path.read_text())
        if sidecar.get("key") == asdict(key):
            matrix = torch.load(tensor_path, weights_only=True)
            log.info("second moment for %s: cache hit %s", key.module, tensor_path)
            return SecondMoment(matrix, "corpus", int(sidecar["tokens"]), key)
        log.warning("sidecar %s does not match its key; recomputing", sidecar_path)
    matrix, tokens = compute()
    cache_dir.mkdir(parents=True, exist_ok=True)
    _write_atomic(tensor_path, lambda p: torch.save(matrix.detach().cpu(), p))
    sidecar = {"key": asdict(key), "digest": digest, "tokens": tokens}
    _write_atomic(sidecar_path, lambda p: p.write_text(json.dumps(sidecar, indent=2)))
    return SecondMoment(matrix, "corpus", tokens, key)


def model_fingerprint(model: nn.Module) -> str:
    """sha256 over the model's config and every parameter's bytes (slow on big models)."""
    digest = hashlib.sha256()
    config = getattr(model, "config", None)
    if config is not None and hasattr(config, "to_json_string"):
        digest.update(config.to_json_string().encode())
    for name, param in sorted(model.named_parameters()):
        digest.update(name.encode())
        digest.update(tensor_sha256(param).encode())
    return digest.hexdigest()
