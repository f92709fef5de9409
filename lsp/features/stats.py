"""workspace/executeCommand `copilot.stats`: acceptance of the suggestions this machine's editors were shown,
from the feedback log — the same figures as `copilot stats` (per adapter version and per language, with
latency percentiles). Arguments: none, or {"by": "version" | "language" | "day"}."""

from __future__ import annotations

from typing import Any

from lsprotocol import types
from pygls.exceptions import JsonRpcException

from copilot.evaluate.acceptance import GROUPS, feedback_file, load_events, summarize
from lsp.features.util import plain

INVALID = int(types.ErrorCodes.InvalidParams)


def stats(by: str | None = None) -> dict[str, Any]:
    events, bad = load_events()
    groups = [by] if by else ["version", "language"]
    return {"log": str(feedback_file()), "skipped_lines": bad, **{f"by_{g}": summarize(events, g) for g in groups}}


def register(server: Any) -> None:
    @server.command("copilot.stats")
    def stats_cmd(ls: Any, *args: Any) -> dict[str, Any]:
        arg = plain(args[0]) if args else None
        by = arg.get("by") if isinstance(arg, dict) else None
        if by is not None and by not in GROUPS:
            raise JsonRpcException(message=f"copilot.stats: by must be one of {', '.join(GROUPS)}", code=INVALID)
        return stats(by)
