"""textDocument/didOpen, textDocument/didChange, textDocument/didSave, textDocument/didClose (incremental sync).

pygls' workspace applies the edits (TextDocumentSyncKind.Incremental, positions in the
negotiated encoding) before these handlers run; here the server drops what it kept for a
document: a change makes a queued/running completion for that document stale only when the
next request arrives (latest wins), a close cancels it and forgets the cached suggestions, the
document's chosen snippets and any request snapshot.

The repository index (lsp/repo_index.py) follows: an opened or edited buffer is re-scanned a second after
its last change, a saved or closed file is read again from disk; each change's lines go to its edit log
(the recently edited regions of other files' completion context).

One fix to pygls: its documents split lines with `str.splitlines`, which also breaks at
U+2028, form feeds and other characters that are not line ends in LSP, so an edit after such a
character would land on the wrong line. Documents here split at "\r\n", "\r" and "\n" only.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import partial
from typing import Any

from lsprotocol import types
from pygls.workspace.text_document import TextDocument

from lsp.features.util import doc_path

_LINES = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$")
_BREAKS = re.compile(r"\r\n|\r|\n")


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
    def buffer_text(uri: str) -> Callable[[], str | None]:
        def text() -> str | None:
            doc = server.workspace.text_documents.get(uri)
            return doc.source if doc is not None else None
        return text

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: Any, params: types.DidOpenTextDocumentParams) -> None:
        uri = params.text_document.uri
        ls.cache.drop(uri)
        ls.repo_index.edited(ls.loop, doc_path(uri), buffer_text(uri))

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: Any, params: types.DidChangeTextDocumentParams) -> None:
        uri = params.text_document.uri
        path = doc_path(uri)
        for change in params.content_changes:  # each in the coordinates the previous one left
            r = getattr(change, "range", None)
            if r is not None:
                new_end = r.start.line + len(_BREAKS.findall(change.text))
                ls.repo_index.record_edit(path, r.start.line, r.end.line, new_end)
        ls.repo_index.edited(ls.loop, path, buffer_text(uri))

    @server.feature(types.TEXT_DOCUMENT_DID_SAVE)
    def did_save(ls: Any, params: types.DidSaveTextDocumentParams) -> None:
        ls.repo_index.from_disk(doc_path(params.text_document.uri))

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: Any, params: types.DidCloseTextDocumentParams) -> None:
        uri = params.text_document.uri
        ls.cache.drop(uri)
        ls.snippet_memo.forget(uri)
        ls.snapshots.pop(uri, None)
        ls.scheduler.supersede(uri)
        ls.scheduler.supersede("explain:" + uri)
        ls.repo_index.from_disk(doc_path(uri))
