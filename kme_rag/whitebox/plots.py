"""PNG figures of white-box results (matplotlib, headless Agg backend)."""

from __future__ import annotations

from pathlib import Path

from kme_rag.whitebox.tracing import CausalTrace

__all__ = ["plot_trace"]


def plot_trace(trace: CausalTrace, title: str, out: Path) -> None:
    """Bars of the indirect effect per layer: the block output and the MLP output."""
    from kme_rag.extras import require

    matplotlib = require("matplotlib", "plotting")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    layers = range(len(trace.layer))
    fig, ax = plt.subplots(figsize=(7, 3.2))
    width = 0.4
    ax.bar([i - width / 2 for i in layers], trace.effects("layer"), width, label="block output")
    ax.bar([i + width / 2 for i in layers], trace.effects("mlp"), width, label="MLP output")
    ax.set_xlabel("layer")
    ax.set_ylabel("indirect effect on P(answer)")
    ax.set_title(title, fontsize=9)
    ax.set_xticks(list(layers))
    ax.legend(fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
