"""copilot/accepted and copilot/rejected notifications (and the `copilot.accepted` command that
inline completion items carry): accept/reject feedback for the nightly job.

Params: {"id": "<the id of a served completion>"} (the id is the argument of the item's
command). Optional: "text" (what was finally kept), "latencyMs". One JSON line per event is
appended to `copilot.paths.feedback_dir()/lsp-feedback.jsonl` (a copilot.types.FeedbackEvent
plus the id and whether it came from the typed-ahead cache): the completion text, adapter,
version and latency, never the document. Nothing leaves the machine.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from copilot.core import paths
from copilot.core.types import FeedbackEvent
from lsp.features.util import plain

FILE_NAME = "lsp-feedback.jsonl"
MAX_TEXT = 4000


def feedback_file() -> Path:
    return paths.feedback_dir() / FILE_NAME


def record(ls: Any, event: str, params: Any) -> dict[str, Any] | None:
    data = plain(params)
    if isinstance(data, (str, int)):
        data = {"id": str(data)}
    if not isinstance(data, dict):
        return None
    served = ls.served.get(str(data.get("id")))
    text = data.get("text") if isinstance(data.get("text"), str) else None
    if served is None and text is None:
        ls.log_message(f"copilot: {event} feedback for an unknown completion ignored")
        return None
    ev = FeedbackEvent(
        event=event,
        completion=(text if text is not None else served.text)[:MAX_TEXT],
        adapter=served.adapter if served else None,
        adapter_version=served.adapter_version if served else None,
        latency_ms=round(served.latency_ms, 1) if served else None,
        language=served.language if served else None,
        path=served.path if served else None,
        time=time.time(),
    )
    row = {**asdict(ev), "id": served.id if served else None, "from_cache": served.from_cache if served else None}
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
        return None
    return row


def register(server: Any) -> None:
    @server.feature("copilot/accepted")
    def accepted(ls: Any, params: Any) -> None:
        record(ls, "accepted", params)

    @server.feature("copilot/rejected")
    def rejected(ls: Any, params: Any) -> None:
        record(ls, "rejected", params)

    @server.command("copilot.accepted")
    def accepted_cmd(ls: Any, *args: Any) -> bool:
        return record(ls, "accepted", args[0] if args else None) is not None
