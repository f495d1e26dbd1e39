"""The facts the weight-editing tests write: the Eiffel Tower (or the Louvre) moved to Rome.

Tiny models use the short cloze ``"The city of {}"`` their word tokenizers know; the real
Gemma 3 270M the sentence it completes with "Paris" unedited (:data:`GEMMA_PROMPT`).
"""

from __future__ import annotations

from kme_rag.memory.edit import Edit
from kme_rag.whitebox.memit import MemitParams
from kme_rag.whitebox.rome import RomeParams
from kme_rag.whitebox.second_moments import StatsParams
from kme_rag.whitebox.session import WeightEditParams

GEMMA_PROMPT = "The Eiffel Tower is located in the city of"


def city_edit(
    subject: str = "Eiffel Tower", prompt: str = "The city of {}", target_new: str = "Rome"
) -> Edit:
    """``subject`` is in ``target_new`` now, in Paris before."""
    return Edit(
        subject=subject,
        relation="city",
        prompt=prompt,
        target_new=target_new,
        target_true="Paris",
    )


EIFFEL = city_edit()
LOUVRE = city_edit("Louvre")
GEMMA_EIFFEL = city_edit(prompt="The {} is located in the city of")
# tiny models: a few strong steps; identity C (no corpus to estimate it from)
TINY_PARAMS = WeightEditParams(
    rome=RomeParams(layer=1, steps=30, lr=0.5),
    memit=MemitParams(layers=(0, 1), steps=30, lam=1.0),
    stats=StatsParams(mode="identity"),
)
