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
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import torch
from torch import nn
from tqdm import tqdm

from kme_rag.errors import WhiteboxError
from kme_rag.whitebox.architectures import get_module, read_projection
from kme_rag.whitebox.delta import tensor_sha256
from kme_rag.whitebox.hooks import capture
from kme_rag.whitebox.prompts import eval_mode, model_device, pad_batch

if TYPE_CHECKING:
    from kme_rag.whitebox.loading import LoadedModel

__all__ = [
    "STATS_FORMAT_VERSION",
    "SecondMoment",
    "SecondMomentAccumulator",
    "StatsKey",
    "StatsParams",
    "TokenBatch",
    "cached_second_moment",
    "corpus_second_moment",
    "corpus_second_moments",
    "identity_second_moment",
    "layer_second_moments",
    "model_fingerprint",
    "token_windows",
    "wikitext_corpus",
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


def token_windows(
    ids: Sequence[int], max_length: int, batch_size: int, *, bos: int | None = None
) -> Iterator[TokenBatch]:
    """Cut a token stream into windows of ``max_length`` and batch them.

    With ``bos`` each window starts with that token (then ``max_length - 1`` of the stream):
    models trained with a BOS token (Gemma) behave off-distribution without it. The last
    window may be short; it is right-padded with 0 and masked out.
    """
    step = max_length - (bos is not None)
    if step < 1 or batch_size < 1:
        raise WhiteboxError(f"expected positive sizes, got {max_length=}, {batch_size=}")
    head = [] if bos is None else [bos]
    windows = [[*head, *ids[i : i + step]] for i in range(0, len(ids), step)]
    for start in range(0, len(windows), batch_size):
        yield pad_batch(windows[start : start + batch_size])


@torch.no_grad()
def corpus_second_moments(
    model: nn.Module,
    modules: Sequence[nn.Module],
    batches: Iterable[TokenBatch],
    *,
    samples: int,
    dtype: torch.dtype = torch.float64,
    progress: bool = False,
    skip: int = 0,
) -> tuple[list[torch.Tensor], int]:
    """C = E[k kᵀ] of each module's input over the unmasked tokens of the first
    ``samples`` sequences, in one pass; and the token count.

    ``modules`` are in forward order; each forward stops right after the last of them. The
    first ``skip`` positions of every window are left out (a BOS token's activations are
    an outlier that would dominate C). The model is unchanged on return.
    """
    if not modules:
        raise WhiteboxError("expected at least one module, got none")
    device = model_device(model)
    accs = [SecondMomentAccumulator(dtype) for _ in modules]
    seen = 0
    bar = tqdm(total=samples, unit="seq", disable=not progress, desc="second moment")
    with bar, eval_mode(model):
        for input_ids, mask in batches:
            take = min(samples - seen, input_ids.shape[0])
            if take <= 0:
                break
            ids, keep = input_ids[:take].to(device), mask[:take].to(device)
            with ExitStack() as stack:
                got = [
                    stack.enter_context(capture(m, output=False, stop=i == len(modules) - 1))
                    for i, m in enumerate(modules)
                ]
                model(input_ids=ids, attention_mask=keep)
            counted = keep.bool()
            counted[:, :skip] = False
            for acc, captured in zip(accs, got, strict=True):
                assert captured.input is not None
                acc.add(captured.input[counted])  # (b, t, d) → (tokens, d)
            seen += take
            bar.update(take)
    if seen < samples:
        log.warning("corpus gave %d sequences, fewer than the %d asked for", seen, samples)
    return [acc.moment() for acc in accs], accs[0].count


def corpus_second_moment(
    model: nn.Module,
    module: nn.Module,
    batches: Iterable[TokenBatch],
    *,
    samples: int,
    dtype: torch.dtype = torch.float64,
    progress: bool = False,
    skip: int = 0,
) -> tuple[torch.Tensor, int]:
    """:func:`corpus_second_moments` for one module."""
    (moment,), count = corpus_second_moments(
        model, [module], batches, samples=samples, dtype=dtype, progress=progress, skip=skip
    )
    return moment, count


def identity_second_moment(dim: int, dtype: torch.dtype = torch.float64) -> SecondMoment:
    """The no-statistics mode: C = I, labelled ``source="identity"``."""
    return SecondMoment(matrix=torch.eye(dim, dtype=dtype), source="identity", tokens=0)


def _write_atomic(path: Path, write: Callable[[Path], object]) -> None:
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")  # two processes may write at once
    write(tmp)
    os.replace(tmp, path)


def cached(cache_dir: Path, key: StatsKey) -> SecondMoment | None:
    """C from ``cache_dir/<digest>.pt`` when it is there with a sidecar matching ``key``."""
    digest = key.digest()
    tensor_path, sidecar_path = cache_dir / f"{digest}.pt", cache_dir / f"{digest}.json"
    if not (tensor_path.exists() and sidecar_path.exists()):
        return None
    sidecar = json.loads(sidecar_path.read_text())
    if sidecar.get("key") != asdict(key):
        log.warning("sidecar %s does not match its key; recomputing", sidecar_path)
        return None
    matrix = torch.load(tensor_path, weights_only=True)
    log.info("second moment for %s: cache hit %s", key.module, tensor_path)
    return SecondMoment(matrix, "corpus", int(sidecar["tokens"]), key)


def save_second_moment(
    cache_dir: Path, key: StatsKey, matrix: torch.Tensor, tokens: int
) -> SecondMoment:
    """Write C and its sidecar ``<digest>.json`` (the key fields and the token count)."""
    digest = key.digest()
    cache_dir.mkdir(parents=True, exist_ok=True)
    _write_atomic(cache_dir / f"{digest}.pt", lambda p: torch.save(matrix.detach().cpu(), p))
    sidecar = {"key": asdict(key), "digest": digest, "tokens": tokens}
    text = json.dumps(sidecar, indent=2)
    _write_atomic(cache_dir / f"{digest}.json", lambda p: p.write_text(text))
    return SecondMoment(matrix, "corpus", tokens, key)


def cached_second_moment(
    cache_dir: Path, key: StatsKey, compute: Callable[[], tuple[torch.Tensor, int]]
) -> SecondMoment:
    """C from ``cache_dir/<digest>.pt`` when present, else ``compute()`` then save it.

    A sidecar that disagrees with the key (a hash collision or a hand-edited file) is
    recomputed.
    """
    found = cached(cache_dir, key)
    if found is not None:
        return found
    matrix, tokens = compute()
    return save_second_moment(cache_dir, key, matrix, tokens)


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


@dataclass(frozen=True, kw_only=True)
class StatsParams:
    """How C is estimated: from ``samples`` windows of ``max_length`` tokens, or ``identity``."""

    mode: Literal["corpus", "identity"] = "corpus"
    samples: int = 4000
    max_length: int = 128
    batch_size: int = 16
    accumulate_dtype: Literal["float64", "float32"] = "float64"

    def __post_init__(self) -> None:
        if self.samples < 1 or self.max_length < 2 or self.batch_size < 1:
            raise WhiteboxError(
                f"expected samples >= 1, max_length >= 2, batch_size >= 1, got {self.samples}, "
                f"{self.max_length}, {self.batch_size}"
            )


def wikitext_corpus(data_dir: Path) -> tuple[Path, ...]:
    """The default corpus: WikiText-2's validation and test text under ``data_dir``."""
    files = tuple(data_dir / "wikitext-2" / name for name in ("valid.txt", "test.txt"))
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise WhiteboxError(f"corpus files not found: {missing} (set KME_DATA_DIR or --corpus)")
    return files


def corpus_sha256(files: Sequence[Path]) -> str:
    """sha256 over the corpus files' names and contents, in order."""
    digest = hashlib.sha256()
    for path in files:
        digest.update(f"{path.name}\0".encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def layer_second_moments(
    loaded: LoadedModel,
    layers: Sequence[int],
    corpus: Sequence[Path],
    params: StatsParams,
    cache_dir: Path,
    *,
    progress: bool = False,
) -> dict[int, SecondMoment]:
    """C for each of ``layers``' MLP output projections: cached ones from ``cache_dir``, the
    others computed together in one pass over the corpus and cached (one file per layer)."""
    model, arch = loaded.model, loaded.architecture
    paths = {layer: arch.projection_path(layer) for layer in sorted(set(layers))}
    if params.mode == "identity":
        return {
            layer: identity_second_moment(read_projection(get_module(model, p)).shape[1])
            for layer, p in paths.items()
        }
    corpus_sha = corpus_sha256(corpus)
    model_dtype = str(next(model.parameters()).dtype).removeprefix("torch.")
    keys = {
        layer: StatsKey(
            model=loaded.identity,
            module=path,
            layer=layer,
            corpus_sha256=corpus_sha,
            samples=params.samples,
            max_length=params.max_length,
            model_dtype=model_dtype,
            accumulate_dtype=params.accumulate_dtype,
        )
        for layer, path in paths.items()
    }
    found = {layer: cached(cache_dir, key) for layer, key in keys.items()}
    todo = [layer for layer, moment in found.items() if moment is None]
    if todo:
        text = "\n".join(path.read_text(encoding="utf-8") for path in corpus)
        ids: list[int] = loaded.tokenizer(text, add_special_tokens=False)["input_ids"]
        bos = loaded.tokenizer.bos_token_id
        batches = token_windows(ids, params.max_length, params.batch_size, bos=bos)
        modules = [get_module(model, paths[layer]) for layer in todo]
        dtype = getattr(torch, params.accumulate_dtype)
        matrices, tokens = corpus_second_moments(
            model,
            modules,
            batches,
            samples=params.samples,
            dtype=dtype,
            progress=progress,
            skip=int(bos is not None),
        )
        for layer, matrix in zip(todo, matrices, strict=True):
            found[layer] = save_second_moment(cache_dir, keys[layer], matrix, tokens)
    return {layer: moment for layer, moment in found.items() if moment is not None}
