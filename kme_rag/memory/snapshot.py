"""The fact graph saved beside the store, so a large store opens without a rebuild.

Rebuilding the graph reads every active record of a namespace and indexes its names:
~0.2 ms an edit, so minutes at a million. A *snapshot* is the graph and the active ids of
one namespace as of a *watermark* (microseconds on the writer's clock): every record the
store writes carries ``written_us``, the time of that write, so opening from a snapshot
reads only the records written since (less :data:`MARGIN_US`, for clocks a little apart
and writes still in flight) and applies them, as :meth:`EditMemory.sync` does for another
process's writes. Records an undo removes leave no record to read: a *removal stamp*
moved since the snapshot sends the open (or the sync) to the full comparison of ids.

A snapshot is derived, never the truth: one that does not match (another format, another
version of kme_rag or of the alias gazetteer, a collection recreated under the same name,
a file cut short) is ignored and rebuilt, and deleting the folder loses nothing. The file
is a pickle, read only from the store's own folder (or, for a Chroma server, this user's
cache): whoever can write there can already rewrite the edits themselves.
"""

from __future__ import annotations

import gc
import hashlib
import json
import logging
import os
import pickle
import tempfile
import time
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, BinaryIO

from kme_rag.memory.edit import Edit
from kme_rag.memory.graph import FactGraph

__all__ = [
    "MARGIN_US",
    "SNAPSHOT_VERSION",
    "Snapshot",
    "derivation",
    "load_snapshot",
    "now_us",
    "save_snapshot",
    "snapshot_path",
]

log = logging.getLogger(__name__)

SNAPSHOT_VERSION = 1
MARGIN_US = 30_000_000  # writes this long before the watermark are read again
_MAGIC = b"kme-graph\n"


def now_us() -> int:
    """The ``written_us`` of a write made now."""
    return time.time_ns() // 1000


def _package(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "none"


def derivation() -> dict[str, Any]:
    """What a graph built from the same records depends on besides them: a snapshot
    written under other values is rebuilt."""
    return {
        "format": SNAPSHOT_VERSION,
        "kme_rag": _package("kme_rag"),
        "countryinfo": _package("countryinfo"),  # the alias gazetteer
        "graph": sorted(vars(FactGraph())),
        "edit": list(Edit.model_fields),  # an edit is pickled as its values in this order
    }


@dataclass(frozen=True)
class Snapshot:
    """The graph of one namespace and its active ids, as of ``watermark_us``."""

    graph: FactGraph
    active: frozenset[str]
    watermark_us: int
    removals: str | None  # the removal stamp the graph had seen
    writer: str  # the memory that saved it: its writes before saved_us are all in the graph
    saved_us: int


def snapshot_path(folder: Path, collection: str, namespace: str) -> Path:
    digest = hashlib.sha256(f"{collection}\0{namespace}".encode()).hexdigest()[:20]
    return folder / f"{digest}.graph"


def _header(collection_id: str, namespace: str) -> dict[str, Any]:
    return {**derivation(), "collection": collection_id, "namespace": namespace}


def save_snapshot(path: Path, collection_id: str, namespace: str, snapshot: Snapshot) -> None:
    """Write ``snapshot`` atomically (a reader sees the old file or the new one)."""
    header = {
        **_header(collection_id, namespace),
        "watermark_us": snapshot.watermark_us,
        "removals": snapshot.removals,
        "writer": snapshot.writer,
        "saved_us": snapshot.saved_us,
        "facts": len(snapshot.graph),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".graph")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(_MAGIC + json.dumps(header).encode() + b"\n")
            pickle.dump((snapshot.graph, snapshot.active), out, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(name, path)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise


def _unpickle(src: BinaryIO) -> Any:
    """``pickle.load`` with the cyclic collector paused: it would otherwise walk the
    growing heap again and again while a large graph is made (half the load time)."""
    paused = gc.isenabled()
    gc.disable()
    try:
        return pickle.load(src)
    finally:
        if paused:
            gc.enable()


def load_snapshot(path: Path, collection_id: str, namespace: str) -> Snapshot | None:
    """The snapshot at ``path`` when it was written for this collection, namespace and
    derivation; None otherwise (missing, stale or unreadable: the caller rebuilds)."""
    try:
        with path.open("rb") as src:
            if src.read(len(_MAGIC)) != _MAGIC:
                return None
            header = json.loads(src.readline())
            expected = _header(collection_id, namespace)
            if any(header.get(k) != v for k, v in expected.items()):
                log.info("graph snapshot %s is for another build or collection: rebuilding", path)
                return None
            graph, active = _unpickle(src)  # the store's own folder: see the module docstring
        if not isinstance(graph, FactGraph) or len(graph) != header["facts"]:
            raise ValueError("not the graph its header describes")
        return Snapshot(
            graph,
            frozenset(active),
            int(header["watermark_us"]),
            header["removals"],
            str(header["writer"]),
            int(header["saved_us"]),
        )
    except FileNotFoundError:
        return None
    except Exception as exc:  # a file cut short, another pickle: rebuilt, never trusted
        log.warning("graph snapshot %s unreadable (%s): rebuilding", path, exc)
        return None
