"""The one clock: UTC timestamps as ISO strings (seconds), as every manifest and report records them."""
from __future__ import annotations

from datetime import datetime, timezone


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
