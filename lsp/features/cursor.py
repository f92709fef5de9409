"""copilot/cursorMoved (a notification from the editor): the cursor came to rest somewhere new.

Params: {"textDocument": {"uri": "..."}, "position": {"line": L, "character": C}} (C in the negotiated
position encoding). The server reads the prompt at that place, up to the cursor's line, into the
document's KV cache while the developer has not typed yet (lsp/suggest.warm), so the first pause there
does not pay for a cold prompt read. Editors send it when the cursor rests after a move that was not an
edit (the VS Code extension and the Neovim plugin do, debounced). Malformed params are ignored.
"""

from __future__ import annotations

import logging
from typing import Any

from lsp import suggest
from lsp.features.util import plain

log = logging.getLogger("copilot.lsp")


def register(server: Any) -> None:
    @server.feature("copilot/cursorMoved")
    async def cursor_moved(ls: Any, params: Any) -> None:
        data = plain(params)
        try:
            uri = str(data["textDocument"]["uri"])
            line, character = int(data["position"]["line"]), int(data["position"]["character"])
        except (KeyError, TypeError, ValueError):
            log.debug("copilot/cursorMoved with malformed params ignored")
            return
        if line < 0 or character < 0:
            return
        await suggest.warm(ls, uri, line, character)
