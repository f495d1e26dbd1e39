"""White-box editing: writing edits into local weights.

This will hold model loading (Hugging Face folders and GGUF through transformers), the
architecture table, forward hooks, second-moment statistics, causal tracing, ROME and
MEMIT, with exact undo of every weight change.
"""
