"""Applied weight edits on disk, in order, next to the edit store: reopen, undo, audit.

One folder per model (named by a digest of its content hash, so deltas are never replayed
onto other weights) holds one file per applied delta and ``manifest.json``::

    {"model": "gguf-sha256:…", "deltas": [{"id": "d0001-…", "method": "rome",
      "edit_ids": ["…"], "file": "d0001-….pt", "sha256": "…", "created_at": "…"}, …]}

Deltas are kept without the pre-edit weights: reopening a model applies them in order to
the pristine weights, which :func:`~kme_rag.whitebox.delta.apply_delta` reproduces bit for
bit, and records fresh originals for an exact undo. Writes are atomic (temporary file,
then rename), the manifest last, so a crash leaves at worst an orphan delta file.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kme_rag.errors import NothingToUndoError, WhiteboxError
from kme_rag.whitebox.delta import WeightDelta, delta_from_bytes, delta_to_bytes

__all__ = ["DeltaRecord", "DeltaStore", "written_edits"]

MANIFEST = "manifest.json"


@dataclass(frozen=True)
class DeltaRecord:
    """One applied weight edit: which edits it wrote, with which method, in which file."""

    id: str
    method: str
    edit_ids: tuple[str, ...]
    file: str
    sha256: str
    created_at: str
    seconds: float = 0.0  # how long computing the delta took

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DeltaRecord:
        return cls(**{**data, "edit_ids": tuple(data["edit_ids"])})


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


class DeltaStore:
    """The ordered deltas of one model, in ``root/<digest of the model identity>/``."""

    def __init__(self, root: Path, model_identity: str) -> None:
        digest = hashlib.sha256(model_identity.encode()).hexdigest()[:16]
        self.folder = root / digest
        self.model_identity = model_identity

    def records(self) -> list[DeltaRecord]:
        """The applied deltas, oldest first."""
        path = self.folder / MANIFEST
        if not path.exists():
            return []
        manifest = json.loads(path.read_text())
        if manifest.get("model") != self.model_identity:
            raise WhiteboxError(
                f"{path} belongs to model {manifest.get('model')!r}, not {self.model_identity!r}"
            )
        return [DeltaRecord.from_json(r) for r in manifest["deltas"]]

    def _save_manifest(self, records: list[DeltaRecord]) -> None:
        manifest = {"model": self.model_identity, "deltas": [asdict(r) for r in records]}
        _write_atomic(self.folder / MANIFEST, json.dumps(manifest, indent=2).encode())

    def append(self, delta: WeightDelta, edit_ids: tuple[str, ...], seconds: float) -> DeltaRecord:
        """Persist ``delta`` (its change only) as the newest record."""
        records = self.records()
        delta_id = f"d{len(records) + 1:04d}-{uuid.uuid4().hex[:8]}"
        data = delta_to_bytes(delta)
        record = DeltaRecord(
            id=delta_id,
            method=delta.method,
            edit_ids=edit_ids,
            file=f"{delta_id}.pt",
            sha256=hashlib.sha256(data).hexdigest(),
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            seconds=round(seconds, 3),
        )
        self.folder.mkdir(parents=True, exist_ok=True)
        _write_atomic(self.folder / record.file, data)
        self._save_manifest([*records, record])
        return record

    def load(self, record: DeltaRecord) -> WeightDelta:
        """The delta of ``record``, checked against its sha256."""
        data = (self.folder / record.file).read_bytes()
        if hashlib.sha256(data).hexdigest() != record.sha256:
            raise WhiteboxError(f"delta file {record.file} does not match its recorded sha256")
        return delta_from_bytes(data)

    def pop(self) -> DeltaRecord:
        """Forget the newest record (the caller restores the weights first)."""
        records = self.records()
        if not records:
            raise NothingToUndoError("no weight edit to undo")
        last = records.pop()
        self._save_manifest(records)
        (self.folder / last.file).unlink(missing_ok=True)
        return last


def written_edits(root: Path) -> dict[str, str]:
    """Edit id → the newest delta writing it, over every model's folder under ``root``
    (read from the manifests alone: no model is loaded)."""
    written: dict[str, str] = {}
    for manifest in sorted(root.glob(f"*/{MANIFEST}")):
        for record in map(DeltaRecord.from_json, json.loads(manifest.read_text())["deltas"]):
            written.update(dict.fromkeys(record.edit_ids, record.id))
    return written
