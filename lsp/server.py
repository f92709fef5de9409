"""CopilotServer: the pygls language server's state — settings, engine handle, request bookkeeping.

The engine (torch, the model) is loaded in a background thread after `initialize`, so the
server answers at once. Until it is ready, or if it fails to load, completions are empty and
`copilot.status` / `window/showMessage` say why. Every model call goes through one
`Scheduler` (one generation at a time, latest request per document wins).
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import logging
import os
import subprocess
import sys
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable

from lsprotocol import types
from pygls.lsp.server import LanguageServer
from pygls.protocol import LanguageServerProtocol
from pygls.uris import to_fs_path

from copilot.core.git import git
from copilot.core.settings import Settings, load_settings
from copilot.core.types import CopilotError
from lsp import positions
from lsp.adapters import AdapterSlot
from lsp.cache import TypedAheadCache
from lsp.context import StickySnippets
from lsp.engine_handle import EngineHandle
from lsp.repo_index import RepoIndex
from lsp.scheduler import Scheduler
from lsp.state import LspConfig, Served
from lsp.transport import Framer, decode, dispatch, resync_point

log = logging.getLogger("copilot.lsp")

SERVER_NAME = "copilot-lsp"
SERVER_VERSION = "0.1.0"


class CopilotProtocol(LanguageServerProtocol):
    """Answers requests sent before `initialize` with ServerNotInitialized (-32002)."""

    def handle_message(self, message: Any) -> None:
        method = getattr(message, "method", None)
        if self._workspace is None and method not in (types.INITIALIZE, types.EXIT):
            if method is not None and hasattr(message, "id"):
                self._send_response(
                    message.id, None,
                    types.ResponseError(code=int(types.ErrorCodes.ServerNotInitialized), message="server not initialized"),
                )
            return
        super().handle_message(message)


class CopilotServer(LanguageServer):
    def __init__(self, model_override: str | None = None, settings: Settings | None = None) -> None:
        super().__init__(SERVER_NAME, SERVER_VERSION, protocol_cls=CopilotProtocol,
                         text_document_sync_kind=types.TextDocumentSyncKind.Incremental)
        self.model_override = model_override
        self.settings = settings or self._default_settings()
        self.config = LspConfig()
        self.engine = EngineHandle()
        self.explain_engine = EngineHandle()  # only with explain.model set: a second base for explanations
        self.scheduler = Scheduler()
        self.cache = TypedAheadCache()
        self.snippet_memo = StickySnippets()
        self.repo_index = RepoIndex()  # the workspace's functions, classes and code chunks (lsp/repo_index.py)
        # uri -> (line, character, document text) as it was when a completion request arrived; see snapshot()
        self.snapshots: dict[str, tuple[int, int, str]] = {}
        self.served: OrderedDict[str, Served] = OrderedDict()
        self._ids = itertools.count(1)
        self.counters = {"requests": 0, "cache_hits": 0, "model_calls": 0, "cancelled": 0, "empty": 0, "disabled": 0,
                         "generated_tokens": 0, "stopped_generations": 0, "cursor_moves": 0,
                         "warmed_tokens": 0}
        self.last_latency_ms: float | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.root_path: Path | None = None
        self.remote_url: str | None = None
        self.adapters = AdapterSlot()  # touched only in the scheduler's worker thread

    @staticmethod
    def _default_settings() -> Settings:
        """User config file and COPILOT_* environment (a workspace root adds its .copilot.toml later)."""
        try:
            return load_settings()
        except CopilotError as exc:
            log.warning("copilot: settings ignored: %s", exc)
            return Settings()

    # ------------------------------------------------------------------ state
    @property
    def encoding(self) -> str:
        try:
            return positions.normalize_encoding(self.workspace.position_encoding)
        except Exception:
            return positions.UTF16

    def model_spec(self) -> str:
        return self.config.model or self.model_override or self.settings.model

    def adapter_spec(self) -> str:
        """Adapter serving this workspace: client config > workspace mapping > settings.adapter."""
        if self.config.adapter is not None:
            return self.config.adapter
        for key, name in self.settings.workspaces.items():
            if self.remote_url and key == self.remote_url:
                return name
            if self.root_path is not None:
                try:
                    kp = Path(key).expanduser().resolve()
                except (OSError, RuntimeError):
                    continue
                if self.root_path == kp or kp in self.root_path.parents:
                    return name
        return self.settings.adapter

    def set_root(self, root_uri: str | None) -> None:
        path = to_fs_path(root_uri) if root_uri else None
        if not path:
            return
        self.root_path = Path(path).resolve()
        try:
            self.settings = load_settings(cwd=self.root_path)
        except CopilotError as exc:
            self.notify_user(f"copilot: settings ignored: {exc}", types.MessageType.Warning)
        try:
            url = git(self.root_path, "config", "--get", "remote.origin.url", check=False, timeout=5).strip()
            self.remote_url = url or None
        except (OSError, subprocess.SubprocessError):
            self.remote_url = None

    def start_repo_index(self) -> None:
        """Index the workspace's repository in the background (a no-op without a root or with context.repo off)."""
        self.repo_index.start(self.root_path, self.settings.context, lambda text: self.call_soon(self.log_message, text))

    def start_engine(self) -> None:
        spec = self.model_spec()
        self.log_message(f"copilot: loading model {spec} ...")
        self.engine.start(spec, self.settings, lambda h: self.call_soon(self._engine_done, h))

    def explain_model_spec(self) -> str | None:
        """explain.model when it names another base than completions use (local backends), else None."""
        em = self.settings.explain.model.strip()
        if not em or em == self.model_spec() or self.settings.backend == "remote":
            return None
        return em

    def start_explain_engine(self, spec: str) -> None:
        self.log_message(f"copilot: loading explanation model {spec} ...")
        self.explain_engine.start(spec, self.settings, lambda h: self.call_soon(self._engine_done, h))

    def _engine_done(self, handle: EngineHandle) -> None:
        if handle.state == "ready":
            for note in handle.notes:
                self.log_message(f"copilot: {note}")
            self.log_message(f"copilot: model {handle.model} ready on {handle.device} ({handle.backend}) "
                             f"in {handle.load_seconds:.1f}s")
        else:
            what = "Explanations" if handle is self.explain_engine else "Completions"
            self.notify_user(f"copilot: model {handle.model} failed to load: {handle.error}. "
                             f"{what} are disabled until the model is fixed.", types.MessageType.Error)

    # ------------------------------------------------------------------ adapters (worker thread)
    def ensure_adapter(self, engine: Any) -> str | None:
        """Before each model call: the adapter serving this workspace (hot-swapped when the
        registry's active version changed), or None for the base model."""
        return self.adapters.ensure(
            engine, self.adapter_spec(),
            on_switch=lambda label: self.call_soon(self.log_message, f"copilot: serving {label}"),
            on_problem=lambda name, msg: self.call_soon(
                self.notify_user, f"copilot: adapter {name} not used: {msg}", types.MessageType.Warning),
        )

    @property
    def adapter_version(self) -> int | None:
        return self.adapters.version

    # ------------------------------------------------------------------ bookkeeping
    def remember(self, served: Served) -> None:
        self.served[served.id] = served
        while len(self.served) > 256:
            self.served.popitem(last=False)

    def next_id(self) -> str:
        return f"c{next(self._ids)}"

    def status(self) -> dict[str, Any]:
        import psutil

        h = self.engine
        return {
            "state": h.state,
            "model": h.model or self.model_spec(),
            "device": h.device,
            "backend": h.backend,
            "fim_order": self._fim_order(),
            "adapter_mode": getattr(h.engine, "adapter_mode", None),
            "error": h.error,
            "adapter": self.adapters.name,
            "adapter_version": self.adapters.version,
            "adapter_spec": self.adapter_spec() or None,
            "adapter_error": self.adapters.error,
            "last_latency_ms": self.last_latency_ms,
            "position_encoding": self.encoding,
            "debounce_ms": self.config.debounce_ms,
            "counters": dict(self.counters),
            "prompt_tokens": dict(getattr(h.engine, "stats", None) or {}),  # reused / prefilled / shifted in the KV cache
            "scheduler": {**dataclasses.asdict(self.scheduler.stats), "running": self.scheduler.running_key,
                          "queued": self.scheduler.pending_keys()},
            "repo_index": self.repo_index.status(),
            "explain_model": ({"model": self.explain_model_spec(), "state": self.explain_engine.state,
                               "error": self.explain_engine.error} if self.explain_model_spec() else None),
            "service": self._service_status(),
            "rss_mb": round(psutil.Process().memory_info().rss / 2**20, 1),
        }

    def _service_status(self) -> dict[str, Any] | None:
        """backend = remote: the team service's URL and why the last request got nothing from it (None: fine)."""
        eng = self.engine.engine
        service = getattr(eng, "service", None)
        if service is None:
            return None
        return {"url": service.url, "problem": getattr(eng, "problem", None)}

    def _fim_order(self) -> str | None:
        eng = self.engine.engine
        try:
            return eng.preferred_order(self.adapters.key) if eng is not None else None
        except Exception:  # noqa: BLE001 - status must always answer
            return None

    # ------------------------------------------------------------------ messages (loop thread only)
    def call_soon(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run `fn` on the event loop thread (pygls writes must not interleave)."""
        loop = self.loop
        if loop is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        try:
            if running is loop:
                fn(*args)
            else:
                loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:
            pass

    def log_message(self, text: str, kind: types.MessageType = types.MessageType.Info) -> None:
        log.info("%s", text)
        try:
            self.window_log_message(types.LogMessageParams(type=kind, message=text))
        except Exception:  # noqa: BLE001 - no writer yet / client gone
            pass

    def notify_user(self, text: str, kind: types.MessageType = types.MessageType.Info) -> None:
        self.log_message(text, kind)
        try:
            self.window_show_message(types.ShowMessageParams(type=kind, message=text))
        except Exception:  # noqa: BLE001
            pass

    def report_server_error(self, error: Exception, source: Any) -> None:
        log.error("server error (%s): %s", getattr(source, "__name__", source), error)

    SNAPSHOT_METHODS = (types.TEXT_DOCUMENT_INLINE_COMPLETION, types.TEXT_DOCUMENT_COMPLETION)

    def snapshot(self, message: Any) -> None:
        """Remember the document text a completion request was made against. pygls starts the request's
        handler only after the rest of the input already read is dispatched, and that may hold the next
        keystrokes' didChange: the handler would then pair the old position with newer text, complete at
        the wrong place and, in suffix-first order, throw away the document's whole KV cache."""
        if not isinstance(message, dict) or message.get("method") not in self.SNAPSHOT_METHODS:
            return
        params = message.get("params")
        try:
            uri, pos = params["textDocument"]["uri"], params["position"]
            doc = self.workspace.text_documents.get(uri)
            if doc is not None:
                self.snapshots[uri] = (int(pos["line"]), int(pos["character"]), doc.source)
        except Exception:  # noqa: BLE001 - malformed params are answered by dispatch; not initialized yet
            return
        while len(self.snapshots) > 64:
            self.snapshots.pop(next(iter(self.snapshots)))

    # ------------------------------------------------------------------ transports
    async def _serve(self, chunks: "asyncio.Queue[bytes]") -> None:
        self.loop = asyncio.get_running_loop()
        framer = Framer()
        try:
            while True:
                data = await chunks.get()
                if not data:
                    break
                framer.feed(data)
                for body in framer.bodies():
                    try:
                        message = decode(body)
                    except (ValueError, RecursionError):  # not JSON, or nested too deep to parse
                        at = resync_point(body)
                        log.warning("invalid JSON body (%d bytes)%s", len(body), "; resyncing" if at else "")
                        if at is not None:
                            framer.pushback(body[at:])
                        continue
                    self.snapshot(message)
                    dispatch(self.protocol, message)
        finally:
            self.scheduler.cancel_all()
            self.repo_index.stop()

    def start_io(self, stdin: Any = None, stdout: Any = None) -> int:  # type: ignore[override]
        """Serve over stdio with the hardened reader; returns the exit code at end of input or `exit`
        (0 after a `shutdown` request, 1 otherwise, as the protocol says)."""
        from pygls.io_ import StdoutWriter

        stdin = stdin or sys.stdin.buffer
        stdout = stdout or sys.stdout.buffer
        self.protocol.set_writer(StdoutWriter(stdout))

        async def main() -> None:
            loop = asyncio.get_running_loop()
            chunks: asyncio.Queue[bytes] = asyncio.Queue()

            try:
                fd = stdin.fileno()
            except (AttributeError, OSError, ValueError):
                fd = None

            def reader() -> None:
                # os.read on the descriptor: a daemon thread blocked here holds no Python lock,
                # so the process can exit while it waits.
                while True:
                    try:
                        data = os.read(fd, 1 << 16) if fd is not None else stdin.read1(1 << 16)
                    except (OSError, ValueError):
                        data = b""
                    try:
                        loop.call_soon_threadsafe(chunks.put_nowait, data)
                    except RuntimeError:
                        return
                    if not data:
                        return

            threading.Thread(target=reader, name="stdin-reader", daemon=True).start()
            await self._serve(chunks)

        try:
            asyncio.run(main())
        except BrokenPipeError:
            log.error("client connection lost")
        except KeyboardInterrupt:
            pass
        except SystemExit as exc:
            return int(exc.code or 0)
        return 0 if self.protocol._shutdown else 1

    def start_tcp(self, host: str, port: int) -> None:  # type: ignore[override]
        async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.protocol.set_writer(writer)  # type: ignore[arg-type]
            chunks: asyncio.Queue[bytes] = asyncio.Queue()

            async def pump() -> None:
                while True:
                    try:
                        data = await reader.read(1 << 16)
                    except OSError:
                        data = b""
                    chunks.put_nowait(data)
                    if not data:
                        return

            task = asyncio.ensure_future(pump())
            try:
                await self._serve(chunks)
            finally:
                task.cancel()

        async def main() -> None:
            server = await asyncio.start_server(connection, host, port)
            log.info("serving on %s:%s", host, port)
            async with server:
                await server.serve_forever()

        try:
            asyncio.run(main())
        except (KeyboardInterrupt, SystemExit):
            pass


def build_server(model_override: str | None = None, settings: Settings | None = None) -> CopilotServer:
    """A server with every feature registered (one module per LSP feature)."""
    from lsp.features import (code_action, completion, configuration, context, cursor, explain, feedback,
                              inline_completion, lifecycle, stats, status, sync, watched_files)

    server = CopilotServer(model_override=model_override, settings=settings)
    for feature in (lifecycle, configuration, sync, watched_files, inline_completion, completion, cursor, explain,
                    code_action, status, context, feedback, stats):
        feature.register(server)
    return server
