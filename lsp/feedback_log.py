"""The feedback log the server appends to (`$COPILOT_HOME/feedback/lsp-feedback.jsonl`; read by
copilot.evaluate.acceptance): one JSON line per event, written in one `write` under a file lock so readers
never see half a line. `shown` events carry metadata only — adapter, version, language, length, latency,
typed-ahead or not — never the suggestion or the document."""

from __future__ import annotations

import json
import os
import time
from typing import Any

from copilot.evaluate.acceptance import feedback_file
from lsp.state import Served


def append(ls: Any, row: dict[str, Any]) -> bool:
    """Append one event; a failure is a log line, never an error for the editor."""
    line = (json.dumps(row, ensure_ascii=False) + "\n").encode("utf-8")
    path = feedback_file()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        from filelock import FileLock

        with FileLock(str(path) + ".lock", timeout=5):
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line)  # one write of one whole line: readers never see half a line
            finally:
                os.close(fd)
    except Exception as exc:  # noqa: BLE001 - feedback is best effort, never fatal
        ls.log_message(f"copilot: could not write feedback to {path}: {exc}")
        return False
    return True


def shown(ls: Any, served: Served) -> None:
    """A suggestion the editor was given (the figures `copilot stats` divides by)."""
    if not ls.config.feedback:
        return
    append(ls, {"event": "shown", "id": served.id, "adapter": served.adapter,
                "adapter_version": served.adapter_version, "language": served.language, "chars": len(served.text),
                "latency_ms": round(served.latency_ms, 1), "from_cache": served.from_cache, "time": time.time()})
