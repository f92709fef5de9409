"""initialize and shutdown.

initialize: documents get LSP-correct line splitting (see sync.py), the workspace root picks the
settings (`.copilot.toml`) and the adapter mapping, initializationOptions are applied
(configuration.py), and the model starts loading in a background thread, so the reply is
immediate; so does the repository index (lsp/repo_index.py). shutdown: every queued or running generation
is cancelled and the index stops.
"""

from __future__ import annotations

from typing import Any

from lsprotocol import types

from lsp.features.configuration import apply
from lsp.features.sync import install


def register(server: Any) -> None:
    @server.feature(types.INITIALIZE)
    def on_initialize(ls: Any, params: types.InitializeParams) -> None:
        install(ls.workspace)
        root = params.root_uri
        if root is None and params.workspace_folders:
            root = params.workspace_folders[0].uri
        ls.set_root(root)
        apply(ls, params.initialization_options)
        if ls.engine.state == "idle":
            ls.start_engine()  # in the background: initialize answers at once
        ls.start_repo_index()  # in the background too

    @server.feature(types.SHUTDOWN)
    def on_shutdown(ls: Any, *args: Any) -> None:
        ls.scheduler.cancel_all()
        ls.repo_index.stop()
