"""``python -m kme_rag`` runs the ``kme`` command."""

from kme_rag.cli import main

main()
