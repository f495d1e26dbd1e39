"""Weight changes as data: what an edit adds to each projection, applied and undone exactly.

A :class:`WeightDelta` lists, per edited projection, the change ``Δ`` in the canonical
``(out, in)`` orientation — low rank as ``left @ right.T`` (ROME: rank one; MEMIT: rank =
number of edits) or dense. :func:`apply_delta` writes ``W + Δ`` and returns the delta with
the pre-edit weights recorded; :func:`undo` copies those back, so undo is bit-for-bit
(subtracting ``Δ`` again would not be, in floating point). Undo must run in reverse order of
application; an out-of-order undo is detected (the weight no longer hashes to what the
apply left) and refused.

For persistence, :func:`delta_to_bytes` keeps the change (and optionally the originals);
reopening a model reapplies the stored changes in order to the pristine weights, which
reproduces the same bits because :func:`apply_delta` is deterministic.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, field, replace

import torch
from torch import nn

from kme_rag.errors import WhiteboxError
from kme_rag.whitebox.architectures import get_module, read_projection, write_projection

__all__ = [
    "LayerDelta",
    "WeightDelta",
    "apply_delta",
    "delta_from_bytes",
    "delta_to_bytes",
    "tensor_sha256",
    "undo",
]


@dataclass(frozen=True)
class LayerDelta:
    """The change to one projection, ``(out, in)``: ``left @ right.T`` or ``dense``.

    Exactly one form is set: ``left`` (out, r) with ``right`` (in, r), or ``dense`` (out, in).
    """

    path: str
    left: torch.Tensor | None = None
    right: torch.Tensor | None = None
    dense: torch.Tensor | None = None

    def __post_init__(self) -> None:
        low_rank = self.left is not None and self.right is not None
        if low_rank == (self.dense is not None) or (self.left is None) != (self.right is None):
            raise WhiteboxError(f"{self.path}: give either left and right, or dense")
        if self.left is not None and self.right is not None:
            if self.left.dim() != 2 or self.right.dim() != 2:
                raise WhiteboxError(f"{self.path}: left and right must be 2-D (out, r), (in, r)")
            if self.left.shape[1] != self.right.shape[1]:
                raise WhiteboxError(
                    f"{self.path}: rank mismatch {self.left.shape[1]} vs {self.right.shape[1]}"
                )

    @property
    def shape(self) -> tuple[int, int]:
        if self.dense is not None:
            return (self.dense.shape[0], self.dense.shape[1])
        assert self.left is not None and self.right is not None
        return (self.left.shape[0], self.right.shape[0])

    def matrix(self, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        """``Δ`` as a dense ``(out, in)`` tensor in the given dtype, on the given device."""
        if self.dense is not None:
            return self.dense.to(device=device, dtype=dtype)
        assert self.left is not None and self.right is not None
        left = self.left.to(device=device, dtype=dtype)  # (out, r)
        right = self.right.to(device=device, dtype=dtype)  # (in, r)
        return left @ right.T


@dataclass(frozen=True)
class WeightDelta:
    """One weight edit: its per-projection changes and, once applied, what undo needs.

    ``originals`` holds each touched parameter exactly as it was before :func:`apply_delta`
    (stored orientation, on CPU); ``edited_sha`` the hash of each right after. Both are
    empty until the delta is applied.
    """

    method: str
    layers: tuple[LayerDelta, ...]
    originals: dict[str, torch.Tensor] = field(default_factory=dict)
    edited_sha: dict[str, str] = field(default_factory=dict)

    @property
    def applied(self) -> bool:
        return bool(self.originals)


def tensor_sha256(tensor: torch.Tensor) -> str:
    """sha256 of a tensor's raw bytes (any dtype, bfloat16 included) and its shape."""
    flat = tensor.detach().contiguous().cpu().reshape(-1).view(torch.uint8)  # (numel*itemsize,)
    digest = hashlib.sha256(str((tuple(tensor.shape), str(tensor.dtype))).encode())
    digest.update(flat.numpy().tobytes())
    return digest.hexdigest()


def _parameter(model: nn.Module, path: str) -> torch.Tensor:
    weight = get_module(model, path).weight
    assert isinstance(weight, torch.Tensor)
    return weight


def apply_delta(model: nn.Module, delta: WeightDelta) -> WeightDelta:
    """Write ``W + Δ`` for every layer; return the delta with originals recorded.

    The sum is computed in at least float32 and cast to the weight's dtype; the same delta
    on the same weights always gives the same bits.
    """
    if delta.applied:
        raise WhiteboxError(f"this {delta.method} delta is already applied; undo it first")
    originals: dict[str, torch.Tensor] = {}
    for layer in delta.layers:
        module = get_module(model, layer.path)
        if layer.path not in originals:
            originals[layer.path] = _parameter(model, layer.path).detach().cpu().clone()
        weight = read_projection(module)  # (out, in)
        if tuple(weight.shape) != layer.shape:
            raise WhiteboxError(
                f"{layer.path}: delta shape {layer.shape} does not match weight {weight.shape}"
            )
        compute = torch.promote_types(weight.dtype, torch.float32)
        edited = weight.to(compute) + layer.matrix(compute, weight.device)
        write_projection(module, edited)
    shas = {path: tensor_sha256(_parameter(model, path)) for path in originals}
    return replace(delta, originals=originals, edited_sha=shas)


def undo(model: nn.Module, delta: WeightDelta) -> None:
    """Restore every weight the delta touched to its exact pre-edit bits.

    Raises :class:`WhiteboxError` when the delta was never applied, or when a weight changed
    since (a later edit not yet undone): deltas are undone in reverse order of application.
    """
    if not delta.applied:
        raise WhiteboxError(f"this {delta.method} delta was never applied; nothing to undo")
    for path, sha in delta.edited_sha.items():
        if tensor_sha256(_parameter(model, path)) != sha:
            raise WhiteboxError(
                f"{path} changed since this {delta.method} edit was applied; undo later edits first"
            )
    with torch.no_grad():
        for path, original in delta.originals.items():
            _parameter(model, path).copy_(original)


def delta_to_bytes(delta: WeightDelta, *, include_originals: bool = False) -> bytes:
    """Serialise the delta with ``torch.save`` (tensors moved to CPU)."""
    payload: dict[str, object] = {
        "method": delta.method,
        "paths": [layer.path for layer in delta.layers],
    }
    for i, layer in enumerate(delta.layers):
        for name in ("left", "right", "dense"):
            tensor = getattr(layer, name)
            if tensor is not None:
                payload[f"{i}.{name}"] = tensor.detach().cpu()
    if include_originals:
        payload["originals"] = dict(delta.originals)
        payload["edited_sha"] = dict(delta.edited_sha)
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return buffer.getvalue()


def delta_from_bytes(data: bytes) -> WeightDelta:
    """Inverse of :func:`delta_to_bytes` (loads tensors only: ``weights_only=True``)."""
    payload = torch.load(io.BytesIO(data), weights_only=True)  # saved from CPU, loads on CPU
    layers = tuple(
        LayerDelta(
            path=path,
            left=payload.get(f"{i}.left"),
            right=payload.get(f"{i}.right"),
            dense=payload.get(f"{i}.dense"),
        )
        for i, path in enumerate(payload["paths"])
    )
    return WeightDelta(
        method=payload["method"],
        layers=layers,
        originals=dict(payload.get("originals", {})),
        edited_sha=dict(payload.get("edited_sha", {})),
    )
