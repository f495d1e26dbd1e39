"""Context managers that attach to one module: capture, replace, stop early.

Every hook is removed when its ``with`` block ends, whether the block finishes or raises,
so a model is never left with a stray hook. Usage::

    with capture(proj, stop=True) as seen:
        model(input_ids)          # runs only up to ``proj``; nothing after it in the block
    keys = seen.input             # (batch, seq, d_in), detached copy

    with replace_output(proj, lambda out: out + delta):
        logits = model(input_ids).logits

The "main tensor" of a module's output is the output itself, or its first element when the
module returns a tuple (as some decoder blocks do); replacing it keeps the rest of the tuple.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext, suppress
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from kme_rag.errors import WhiteboxError

__all__ = ["Captured", "capture", "main_tensor", "replace_output", "stop_after"]

Hook = Callable[[nn.Module, tuple[Any, ...], dict[str, Any], Any], Any]


class _StopForward(Exception):
    """Raised by a stop hook to end the forward pass; caught by the context manager."""


@dataclass
class Captured:
    """What :func:`capture` saw on the module's most recent call (detached copies)."""

    input: torch.Tensor | None = None
    output: torch.Tensor | None = None


def main_tensor(output: Any) -> torch.Tensor:
    """The output itself, or its first element when the module returns a tuple."""
    tensor = output[0] if isinstance(output, tuple) else output
    if not isinstance(tensor, torch.Tensor):
        raise WhiteboxError(f"expected a tensor output, got {type(tensor).__name__}")
    return tensor


def _first_input(args: tuple[Any, ...], kwargs: dict[str, Any]) -> torch.Tensor:
    value = args[0] if args else kwargs.get("hidden_states")
    if not isinstance(value, torch.Tensor):
        raise WhiteboxError(f"expected a tensor as the module's first input, got {value!r:.80}")
    return value


@contextmanager
def _hooked(module: nn.Module, hook: Hook) -> Iterator[None]:
    """Register a forward hook (with kwargs) for the block; always remove it."""
    handle = module.register_forward_hook(hook, with_kwargs=True)
    try:
        yield
    finally:
        handle.remove()


@contextmanager
def capture(
    module: nn.Module, *, input: bool = True, output: bool = True, stop: bool = False
) -> Iterator[Captured]:
    """Record the module's first input and/or main output tensor on every call.

    The captured tensors are detached clones: later in-place changes to the model's
    activations do not alter them, and they carry no autograd graph. With ``stop=True``
    the forward pass ends right after the module by an exception the block swallows: the
    rest of the block is skipped, so read the captured tensors after it.
    """
    seen = Captured()

    def hook(mod: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> None:
        if input:
            seen.input = _first_input(args, kwargs).detach().clone()
        if output:
            seen.output = main_tensor(out).detach().clone()
        if stop:
            raise _StopForward

    with _hooked(module, hook), suppress(_StopForward) if stop else nullcontext():
        yield seen


@contextmanager
def replace_output(module: nn.Module, fn: Callable[[torch.Tensor], torch.Tensor]) -> Iterator[None]:
    """Replace the module's main output tensor by ``fn(output)`` on every call in the block.

    ``fn`` may build an autograd graph (ROME optimises a delta through it).
    """

    def hook(mod: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> Any:
        new = fn(main_tensor(out))
        return (new, *out[1:]) if isinstance(out, tuple) else new

    with _hooked(module, hook):
        yield


@contextmanager
def stop_after(module: nn.Module) -> Iterator[None]:
    """End the forward pass right after the module.

    The stop is an exception the block swallows, so the rest of the block is skipped. Enter
    it *after* any capture/replace on the same module: hooks run in registration order.
    """

    def hook(mod: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> None:
        raise _StopForward

    with _hooked(module, hook), suppress(_StopForward):
        yield
