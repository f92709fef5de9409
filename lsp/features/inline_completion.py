"""textDocument/inlineCompletion (LSP 3.18): ghost text at the cursor.

Single line when the cursor is mid-line, a block at the end of a line or on an empty line (the engine
decides from the text around the cursor). The work — typed-ahead cache, scheduling, prompt, engine call —
is `lsp.suggest.suggest`; this feature turns its answer into an InlineCompletionList (empty, never an error).
"""

from __future__ import annotations

from typing import Any

from lsprotocol import types

from lsp.suggest import item_command, suggest


def register(server: Any) -> None:
    @server.feature(types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionOptions())
    async def inline_completion(ls: Any, params: types.InlineCompletionParams) -> types.InlineCompletionList:
        pos = params.position
        s = await suggest(ls, params.text_document.uri, pos.line, pos.character)
        if s is None:
            return types.InlineCompletionList(items=[])
        return types.InlineCompletionList(items=[types.InlineCompletionItem(
            insert_text=s.text, range=types.Range(start=s.start, end=s.end), command=item_command(s.served),
        )])
