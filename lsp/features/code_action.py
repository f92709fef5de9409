"""textDocument/codeAction: "Explain this function" / "Explain this class".

Offered when the range sits inside a function, method or class (found with tree-sitter for
the document's language); the action runs the `copilot.explain` command on that node's range.
"""

from __future__ import annotations

from typing import Any

from lsprotocol import types

from lsp import positions
from lsp.features.util import open_document
from lsp.symbols import enclosing

# A standard kind: lsprotocol-based clients cannot parse custom kinds, and quick fixes are what
# editors show in the light bulb.
KIND = types.CodeActionKind.QuickFix


def register(server: Any) -> None:
    @server.feature(types.TEXT_DOCUMENT_CODE_ACTION,
                    types.CodeActionOptions(code_action_kinds=[KIND]))
    def code_action(ls: Any, params: types.CodeActionParams) -> list[types.CodeAction]:
        uri = params.text_document.uri
        doc = open_document(ls, uri)
        if doc is None:
            return []
        text, enc = doc.source, ls.encoding
        index = positions.LineIndex(text)
        start = index.offset(params.range.start.line, params.range.start.character, enc)
        sym = enclosing(text, start, doc.language_id)
        if sym is None:
            return []
        (sl, sc), (el, ec) = index.position(sym.start, enc), index.position(sym.end, enc)
        rng = {"start": {"line": sl, "character": sc}, "end": {"line": el, "character": ec}}
        title = f"Explain this {sym.kind} ({sym.name})"
        return [types.CodeAction(
            title=title, kind=KIND,
            command=types.Command(title=title, command="copilot.explain", arguments=[uri, rng]),
        )]
