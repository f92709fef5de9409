"""textDocument/didOpen, textDocument/didChange, textDocument/didClose (incremental sync).

pygls' workspace applies the edits (TextDocumentSyncKind.Incremental, positions in the
negotiated encoding) before these handlers run; here the server drops what it kept for a
document: a change makes a queued/running completion for that document stale only when the
next request arrives (latest wins), a close cancels it and forgets the cached suggestions.
"""

from __future__ import annotations

from typing import Any

from lsprotocol import types


def register(server: Any) -> None:
    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: Any, params: types.DidOpenTextDocumentParams) -> None:
        ls.cache.drop(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: Any, params: types.DidCloseTextDocumentParams) -> None:
        uri = params.text_document.uri
        ls.cache.drop(uri)
        ls.scheduler.supersede(uri)
        ls.scheduler.supersede("explain:" + uri)
