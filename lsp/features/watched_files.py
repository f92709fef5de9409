"""workspace/didChangeWatchedFiles: source files created, changed or deleted outside the editor (a `git
checkout`, a generator, another editor) are indexed again or dropped from the repository index.

On `initialized`, when the client can register file watchers dynamically, the server asks it to watch
the source files of the indexer's languages (`client/registerCapability`); clients that watch files on
their own may send the notification without it. Open documents are left alone: the editor's buffer wins.
"""

from __future__ import annotations

import logging
from typing import Any

from lsprotocol import types

from indexer.languages import EXTENSIONS
from lsp.features.util import doc_path

log = logging.getLogger("copilot.lsp")

GLOB = "**/*.{" + ",".join(sorted({e.lstrip(".") for e in EXTENSIONS})) + "}"


def register(server: Any) -> None:
    @server.feature(types.INITIALIZED)
    async def initialized(ls: Any, params: types.InitializedParams) -> None:
        caps = ls.client_capabilities
        dyn = getattr(getattr(getattr(caps, "workspace", None), "did_change_watched_files", None),
                      "dynamic_registration", False)
        if not dyn or ls.repo_index.index is None:
            return
        options = types.DidChangeWatchedFilesRegistrationOptions(
            watchers=[types.FileSystemWatcher(glob_pattern=GLOB)])
        try:
            await ls.client_register_capability_async(types.RegistrationParams(registrations=[types.Registration(
                id="copilot-repo-index", method=types.WORKSPACE_DID_CHANGE_WATCHED_FILES, register_options=options)]))
        except Exception as exc:  # noqa: BLE001 - no watcher: saves and edits in the editor still update the index
            log.debug("file watcher registration refused: %s", exc)

    @server.feature(types.WORKSPACE_DID_CHANGE_WATCHED_FILES)
    def did_change_watched_files(ls: Any, params: types.DidChangeWatchedFilesParams) -> None:
        for change in params.changes:
            if change.uri in ls.workspace.text_documents:
                continue
            path = doc_path(change.uri)
            if change.type == types.FileChangeType.Deleted:
                ls.repo_index.deleted(path)
            else:
                ls.repo_index.from_disk(path)
