"""textDocument/completion: the fallback for clients without inline completion.

Returns at most one item whose text edit inserts the full suggestion at the cursor (the same
suggestion, cache and cancellation as textDocument/inlineCompletion). The list is marked
incomplete so the client asks again as the user types.
"""

from __future__ import annotations

from typing import Any

from lsprotocol import types

from lsp.suggest import item_command, suggest


def register(server: Any) -> None:
    @server.feature(types.TEXT_DOCUMENT_COMPLETION, types.CompletionOptions(trigger_characters=[".", "(", " "]))
    async def completion(ls: Any, params: types.CompletionParams) -> types.CompletionList:
        pos = params.position
        s = await suggest(ls, params.text_document.uri, pos.line, pos.character)
        if s is None:
            return types.CompletionList(is_incomplete=True, items=[])
        first = s.text.strip().splitlines()[0] if s.text.strip() else s.text
        item = types.CompletionItem(
            label=first[:60],
            kind=types.CompletionItemKind.Text,
            detail="copilot",
            documentation=types.MarkupContent(kind=types.MarkupKind.Markdown, value=f"```\n{s.text}\n```"),
            text_edit=types.TextEdit(range=types.Range(start=s.start, end=s.end), new_text=s.text),
            insert_text_format=types.InsertTextFormat.PlainText,
            command=item_command(s.served),
            sort_text="0",
        )
        return types.CompletionList(is_incomplete=True, items=[item])
