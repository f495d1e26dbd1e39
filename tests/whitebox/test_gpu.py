"""The white-box path on a CUDA device (skipped cleanly without one): same edit as on CPU."""

from __future__ import annotations

import pytest
import torch

from kme_rag.whitebox.architectures import read_projection
from kme_rag.whitebox.delta import undo
from kme_rag.whitebox.rome import RomeParams, apply_rome
from kme_rag.whitebox.second_moments import identity_second_moment
from tests.whitebox.tiny import edit_request, target_logprob, tiny_llama

pytestmark = pytest.mark.gpu


def test_rome_on_cuda_matches_the_cpu_edit_and_undoes_exactly() -> None:
    request = edit_request((11, 12, 13), (7,))
    params = RomeParams(layer=1, steps=10)
    results = {}
    for device in ("cpu", "cuda"):
        model = tiny_llama().to(device)
        proj = model.model.layers[1].mlp.down_proj
        original = read_projection(proj).detach().clone()
        delta = apply_rome(model, request, params, identity_second_moment(64))
        assert read_projection(proj).device.type == device
        results[device] = (read_projection(proj).detach().cpu().clone(), delta)
        assert target_logprob(model.cpu(), request.prompts[0], (7,)) > -1.0
        model.to(device)
        undo(model, delta)
        assert torch.equal(read_projection(proj), original)
    cpu, cuda = results["cpu"][0], results["cuda"][0]
    assert torch.allclose(cpu, cuda, atol=1e-3)
