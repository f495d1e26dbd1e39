"""What every result JSON records about how it was measured: command, date and machine."""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

__all__ = ["provenance"]


def provenance(program: str = "kme", argv: Sequence[str] | None = None) -> dict[str, Any]:
    """``command`` (``program`` plus this process's arguments, or ``argv``), the UTC
    ``date`` and the ``machine`` (cores, platform)."""
    args = sys.argv[1:] if argv is None else list(argv)
    return {
        "command": " ".join([program, *args]),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cores": os.cpu_count(), "platform": platform.platform()},
    }
