"""copilot/accepted and copilot/rejected notifications (and the `copilot.accepted` command that
inline completion items carry): accept/reject feedback for the nightly job.

Params: {"id": "<the id of a served completion>"} (the id is the argument of the item's
command). Optional: "text" (what was finally kept), "latencyMs". One JSON line per event is
appended to the feedback log (lsp/feedback_log.py; a copilot.core.types.FeedbackEvent
plus the id and whether it came from the typed-ahead cache): the completion text, adapter,
version and latency, never the document. Nothing leaves the machine.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Any

from copilot.core.types import FeedbackEvent
from lsp import feedback_log
from lsp.features.util import plain

MAX_TEXT = 4000


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
    if not ls.config.feedback or not feedback_log.append(ls, row):
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
