"""workspace/executeCommand `copilot.context`: the snippets the server would put before the file in the
completion prompt at a position, and the repository index's state.

Arguments: `[uri, {line, character}]` or `[{textDocument: {uri}, position: {line, character}}]` (the
character in the negotiated position encoding). Returns `{snippets: [{path, source, text}], repo_index}`,
`source` being `definition`, `similar` or `open_file`, most important first. It goes through the same
choice as a completion (lsp/suggest.context_snippets), the per-document memo included.
"""

from __future__ import annotations

from typing import Any

from lsprotocol import types
from pygls.exceptions import JsonRpcException

from lsp import suggest
from lsp.features.util import as_position, plain

INVALID = int(types.ErrorCodes.InvalidParams)


def _target(args: tuple[Any, ...]) -> tuple[str, int, int]:
    first = plain(args[0]) if args else None
    if isinstance(first, dict):
        uri = (first.get("textDocument") or {}).get("uri")
        pos = as_position(first.get("position"))
    else:
        uri, pos = first, as_position(args[1]) if len(args) > 1 else None
    if not isinstance(uri, str) or pos is None or min(pos) < 0:
        raise JsonRpcException(message="copilot.context: arguments are [uri, {line, character}]", code=INVALID)
    return uri, pos[0], pos[1]


def register(server: Any) -> None:
    @server.command("copilot.context")
    def context_cmd(ls: Any, *args: Any) -> dict[str, Any]:
        uri, line, character = _target(args)
        cur = suggest.cursor_at(ls, uri, line, character)
        if cur is None:
            raise JsonRpcException(message=f"copilot.context: document not open: {uri}", code=INVALID)
        prefix, suffix = suggest.bounded(cur)
        snippets = suggest.context_snippets(ls, cur, prefix, suffix)
        return {"snippets": [{"path": s.path, "source": s.source, "text": s.text} for s in snippets],
                "repo_index": ls.repo_index.status()}
