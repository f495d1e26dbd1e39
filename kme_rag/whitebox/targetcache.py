"""Optimised target deltas kept on disk, so the same edit on the same weights is optimised once.

The δ that ROME and MEMIT optimise (:func:`~kme_rag.whitebox.target.optimise_delta`) is most of
an edit's cost (seconds to tens of seconds on a CPU) and depends only on the weights it is
optimised on, the module it is added to, the tokenized request and the optimisation's
parameters. Writing the same edits with ROME and then with MEMIT on the same layer (or again
after an undo) therefore needs each δ once. The key is a sha256 of all of those, the weights
named by a *state* string: the model's content identity plus the deltas applied on top of it,
in order; so an edit made after others (sequential ROME) is keyed by those others too.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, fields
from pathlib import Path

import torch
from torch import nn

from kme_rag.whitebox.architectures import get_module
from kme_rag.whitebox.prompts import EditRequest, model_device
from kme_rag.whitebox.target import TargetParams, optimise_delta

__all__ = ["TargetCache", "TargetCacheCounts"]


@dataclass
class TargetCacheCounts:
    """What a cache served: ``reused`` δs read back (their first optimisation took
    ``reused_seconds`` in all) and ``computed`` δs optimised now."""

    reused: int = 0
    computed: int = 0
    reused_seconds: float = 0.0


def _key(state: str, path: str, request: EditRequest, params: TargetParams, device: str) -> str:
    optimisation = {f.name: getattr(params, f.name) for f in fields(TargetParams)}
    blob = {
        "state": state,
        "module": path,
        "device": device,
        "prompts": [[list(p.input_ids), p.subject_last] for p in request.prompts],
        "essence": [[list(p.input_ids), p.subject_last] for p in request.essence],
        "target": list(request.target_ids),
        "params": optimisation,
        "torch": torch.__version__,
    }
    return hashlib.sha256(json.dumps(blob, sort_keys=True).encode()).hexdigest()


@dataclass
class TargetCache:
    """δs under ``folder``, one ``<key>.pt`` each; ``state`` names the weights (see module)."""

    folder: Path
    state: str
    counts: TargetCacheCounts

    def optimise(
        self, model: nn.Module, path: str, request: EditRequest, params: TargetParams
    ) -> torch.Tensor:
        """:func:`optimise_delta` at the module ``path``: the stored δ when there is one."""
        device = model_device(model)
        file = self.folder / f"{_key(self.state, path, request, params, device.type)}.pt"
        if file.exists():
            saved = torch.load(file, map_location=device, weights_only=True)
            self.counts.reused += 1
            self.counts.reused_seconds += float(saved["seconds"])
            delta: torch.Tensor = saved["delta"]
            return delta
        start = time.perf_counter()
        delta = optimise_delta(model, get_module(model, path), request, params)
        seconds = time.perf_counter() - start
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = file.with_name(f"{file.name}.{os.getpid()}.tmp")
        torch.save({"delta": delta.detach().cpu(), "seconds": seconds}, tmp)
        os.replace(tmp, file)
        self.counts.computed += 1
        return delta
