"""A subprocess for the crash-point tests: SIGKILL itself between the two writes of a
supersede or of an undo, after printing what was acknowledged.

Usage: python crasher.py supersede|undo|import [FILE]. The store comes from the KME_*
variables.
``supersede``: adds Japan → Kyoto (acknowledged), then Japan → Osaka and dies after the
new record is written, before the old one is demoted. ``undo``: adds both (acknowledged),
then undoes the Osaka add and dies after Kyoto is revived, before Osaka is deleted.
``import FILE``: imports a CounterFact file and dies once its first batch is written.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kme_rag.memory.edit import Edit
from kme_rag.memory.store import EditMemory
from tests.hashing import HashEmbedder


def die_on(memory: EditMemory, method: str) -> None:
    """The next call of ``memory.<method>`` with records to write kills this process."""
    original = getattr(memory, method)

    def crash(edits: Sequence[Any], *args: Any, **kwargs: Any) -> Any:
        if edits:
            os.kill(os.getpid(), signal.SIGKILL)
        return original(edits, *args, **kwargs)

    setattr(memory, method, crash)


def fact(new: str) -> Edit:
    return Edit(subject="Japan", relation="capital", target_new=new, target_true="Tokyo")


def main() -> None:
    point = sys.argv[1]
    memory = EditMemory.open(embedder=HashEmbedder())
    if point == "import":

        def die(written: int) -> None:
            print("acked", written, flush=True)
            os.kill(os.getpid(), signal.SIGKILL)

        memory.import_file(Path(sys.argv[2]), "counterfact", progress=die)
    kyoto = memory.add(fact("Kyoto"))
    print("acked", kyoto.id, flush=True)
    if point == "supersede":
        die_on(memory, "_update")  # _write: new record, then the demotion (dies here)
        memory.add(fact("Osaka"))
    else:
        osaka = memory.add(fact("Osaka"))
        print("acked", osaka.id, flush=True)
        die_on(memory, "_remove")  # _undo_add: revive Kyoto, then delete Osaka (dies here)
        memory.undo()
    print("survived", flush=True)  # never reached


if __name__ == "__main__":
    main()
