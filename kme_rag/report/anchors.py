"""Published anchor numbers: other methods on *their own* models, with where each comes from.

They are reference points, not runs of this project: different models, different
datasets (KnowEdit's zsRE is not this repository's zsRE split), different matching
rules. Where a number was looked for and not found in a source that could be read, the
entry says so instead of quoting one from memory.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ANCHORS", "NOT_FOUND", "Anchor"]

EASYEDIT = (
    "EasyEdit README, 'Editing Performance' (github.com/zjunlp/EasyEdit, README.md at "
    "commit 02df351e1eb7a3608b2f681adeeddc8c32d3bc32)"
)
KNOWEDIT = (
    "KnowEdit table in the same EasyEdit README (commit 02df351e; Zhang et al. 2024, "
    "arXiv:2401.01286)"
)


@dataclass(frozen=True)
class Anchor:
    """One published row: values in percent, keyed by the source's own metric names."""

    method: str
    model: str
    dataset: str
    values: dict[str, float]
    source: str


def _easyedit(method: str, rel: float, gen: float, loc: float, port: float) -> Anchor:
    values = {"reliability": rel, "generalization": gen, "locality": loc, "portability": port}
    return Anchor(method, "LLaMA-2-7B", "ZsRE (EasyEdit)", values, EASYEDIT)


def _knowedit(method: str, dataset: str, succ: float, port: float, loc: float) -> Anchor:
    values = {"edit success": succ, "portability": port, "locality": loc}
    return Anchor(method, "LLaMA-2-7B", f"{dataset} (KnowEdit)", values, KNOWEDIT)


ANCHORS: tuple[Anchor, ...] = (
    _easyedit("FT", 56.94, 52.02, 96.32, 0.07),
    _easyedit("SERAC", 99.49, 99.13, 100.00, 0.13),
    _easyedit("IKE", 100.00, 99.98, 69.19, 67.56),
    _easyedit("MEND", 94.24, 90.27, 97.04, 0.14),
    _easyedit("ROME", 92.45, 87.04, 99.63, 10.46),
    _easyedit("MEMIT", 92.94, 85.97, 99.49, 6.03),
    _knowedit("SERAC", "ZsRE", 99.67, 56.48, 30.23),
    _knowedit("ICE", "ZsRE", 66.01, 63.94, 23.14),
    _knowedit("ROME", "ZsRE", 96.57, 52.20, 27.14),
    _knowedit("MEMIT", "ZsRE", 83.07, 51.43, 25.46),
    _knowedit("SERAC", "WikiData_counterfact", 99.99, 76.07, 98.96),
    _knowedit("ICE", "WikiData_counterfact", 69.83, 45.32, 32.38),
    _knowedit("ROME", "WikiData_counterfact", 83.21, 38.69, 65.40),
    _knowedit("MEMIT", "WikiData_counterfact", 83.41, 40.09, 63.68),
)

# Looked for (the papers' tables) and not found in any source that could be read here.
NOT_FOUND: tuple[tuple[str, str], ...] = (
    ("ROME on GPT-J / GPT-2 XL, CounterFact", "Meng et al. 2022, arXiv:2202.05262, Table 4"),
    ("MEMIT on GPT-J, 10,000 CounterFact edits", "Meng et al. 2023, arXiv:2210.07229"),
    ("IKE on GPT-J, CounterFact", "Zheng et al. 2023, arXiv:2305.12740"),
    ("MeLLo on MQuAKE-CF-3k (GPT-J, Vicuna-7B, GPT-3)", "Zhong et al. 2023, arXiv:2305.14795"),
    ("PokeMQA on MQuAKE-CF-3k / MQuAKE-T", "Gu et al. 2024, arXiv:2312.15194"),
)
