"""textDocument/didOpen, textDocument/didChange, textDocument/didClose (incremental sync).

pygls' workspace applies the edits (TextDocumentSyncKind.Incremental, positions in the
negotiated encoding) before these handlers run; here the server drops what it kept for a
document: a change makes a queued/running completion for that document stale only when the
next request arrives (latest wins), a close cancels it and forgets the cached suggestions, the
document's chosen snippets and any request snapshot.

One fix to pygls: its documents split lines with `str.splitlines`, which also breaks at
U+2028, form feeds and other characters that are not line ends in LSP, so an edit after such a
character would land on the wrong line. Documents here split at "\r\n", "\r" and "\n" only.
"""

from __future__ import annotations

import re
from functools import partial
from typing import Any

from lsprotocol import types
from pygls.workspace.text_document import TextDocument

_LINES = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$")


class LspTextDocument(TextDocument):
    @property
    def lines(self):  # type: ignore[override]
        return tuple(_LINES.findall(self.source))


def _create_text_document(ws: Any, doc_uri: str, source: str | None = None, version: int | None = None,
                          language_id: str | None = None) -> TextDocument:
    return LspTextDocument(doc_uri, source=source, version=version, language_id=language_id,
                           sync_kind=ws._sync_kind, position_codec=ws._position_codec)


def install(workspace: Any) -> None:
    """Make `workspace` create LSP-correct documents (called once, right after initialize)."""
    workspace._create_text_document = partial(_create_text_document, workspace)


def register(server: Any) -> None:
    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: Any, params: types.DidOpenTextDocumentParams) -> None:
        ls.cache.drop(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: Any, params: types.DidCloseTextDocumentParams) -> None:
        uri = params.text_document.uri
        ls.cache.drop(uri)
        ls.snippet_memo.forget(uri)
        ls.snapshots.pop(uri, None)
        ls.scheduler.supersede(uri)
        ls.scheduler.supersede("explain:" + uri)
