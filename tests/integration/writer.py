"""A subprocess for the durability tests: add edits in small batches, reporting each id.

Usage: python writer.py PREFIX COUNT BATCH. The store comes from the KME_* variables. An id
is printed (and flushed) only after the add that stored it has returned.
"""

from __future__ import annotations

import sys

from kme_rag.memory.edit import parse_edit
from kme_rag.memory.store import EditMemory


def main() -> None:
    prefix, count, batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    memory = EditMemory.open()
    print("ready", flush=True)
    for start in range(0, count, batch):
        edits = [
            parse_edit({"subject": f"{prefix} {i}", "relation": "r", "target_new": f"o{i}"})
            for i in range(start, min(start + batch, count))
        ]
        for edit in memory.add_many(edits):
            print(edit.id, flush=True)
    print("done", flush=True)


if __name__ == "__main__":
    main()
