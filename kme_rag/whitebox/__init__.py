"""White-box editing: writing edits into local weights.

Read top to bottom, in the order an edit flows through them:

- :mod:`~kme_rag.whitebox.loading` — a causal LM from a Hugging Face folder or a GGUF file
  (converted once, cached under its sha256); its ``default_device`` is the settings layer.
- :mod:`~kme_rag.whitebox.architectures` — where things are in each model family (table keyed
  by ``config.model_type``), projection weights read/written as ``(out, in)``.
- :mod:`~kme_rag.whitebox.hooks` — capture / replace a module's input or output, stop early.
- :mod:`~kme_rag.whitebox.prompts` — tokenised edit requests and batched forward plumbing.
- :mod:`~kme_rag.whitebox.edit_requests` — an :class:`~kme_rag.memory.edit.Edit` as a tokenised
  request (context prefixes, subject's last token, target ids) and ROME's probability metrics.
- :mod:`~kme_rag.whitebox.tracing` — causal tracing (corrupt-and-restore) per layer.
- :mod:`~kme_rag.whitebox.second_moments` — C = E[k kᵀ] over a corpus, cached under every input.
- :mod:`~kme_rag.whitebox.target` — the optimised target value (ROME's loss).
- :mod:`~kme_rag.whitebox.rome` and :mod:`~kme_rag.whitebox.memit` — the updates.
- :mod:`~kme_rag.whitebox.delta` — weight changes as data: apply, exact undo, bytes.

- :mod:`~kme_rag.whitebox.session` — :class:`WeightEditor`: load, write edits (ROME or
  MEMIT), list and undo them; :mod:`~kme_rag.whitebox.deltastore` keeps the deltas per model.
- :mod:`~kme_rag.whitebox.backend` — the edited weights as a generation backend (route
  ``weights``); :mod:`~kme_rag.whitebox.gguf_export` — the edited model as a GGUF file.

Importing this package loads nothing heavy; the submodules import torch and transformers.
"""
