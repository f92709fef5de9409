"""Drive the real `copilot-lsp` server as a subprocess over stdio.

`Session` uses pygls' real `LanguageClient`; `RawPipe` writes raw bytes (for the fuzz test) and
reads framed JSON-RPC replies. Both drain the server's stderr so it can never block on a full pipe.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.lsp.client import LanguageClient

REPO = Path(__file__).resolve().parents[2]


def server_cmd(model: str | Path | None, *extra: str) -> list[str]:
    cmd = [sys.executable, "-m", "lsp"]
    if model is not None:
        cmd += ["--model", str(model)]
    return cmd + list(extra)


def server_env(home: Path | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1", OMP_WAIT_POLICY="PASSIVE",
               TOKENIZERS_PARALLELISM="false", PYTHONPATH=str(REPO) + os.pathsep + env.get("PYTHONPATH", ""))
    if home is not None:
        env["COPILOT_HOME"] = str(home)
    return env


async def _drain(stream: asyncio.StreamReader | None, sink: list[bytes]) -> None:
    if stream is None:
        return
    while True:
        chunk = await stream.read(1 << 16)
        if not chunk:
            return
        sink.append(chunk)
        del sink[:-64]


class Session:
    """A real LSP client session against the real server process."""

    def __init__(self, model: str | Path | None, *, root: Path | None = None, init_options: Any = None,
                 encodings: list[str] | None = None, home: Path | None = None, extra_args: tuple[str, ...] = ()):
        self.model, self.root, self.init_options = model, root, init_options
        self.encodings, self.home, self.extra_args = encodings, home, extra_args
        self.client = LanguageClient("copilot-e2e", "0")
        self.logs: list[str] = []
        self.shown: list[str] = []
        self.progress: list[Any] = []
        self.stderr: list[bytes] = []
        c = self.client

        @c.feature(types.WINDOW_LOG_MESSAGE)
        def _log(params: types.LogMessageParams) -> None:
            self.logs.append(params.message)

        @c.feature(types.WINDOW_SHOW_MESSAGE)
        def _show(params: types.ShowMessageParams) -> None:
            self.shown.append(params.message)

        @c.feature(types.PROGRESS)
        def _progress(params: types.ProgressParams) -> None:
            self.progress.append(params)

    async def start(self) -> types.InitializeResult:
        await self.client.start_io(*server_cmd(self.model, *self.extra_args), env=server_env(self.home))
        proc = self.client._server
        self._drain = asyncio.ensure_future(_drain(proc.stderr, self.stderr))
        general = types.GeneralClientCapabilities(position_encodings=self.encodings) if self.encodings else None
        caps = types.ClientCapabilities(
            general=general,
            window=types.WindowClientCapabilities(work_done_progress=True),
            text_document=types.TextDocumentClientCapabilities(
                inline_completion=types.InlineCompletionClientCapabilities(),
                synchronization=types.TextDocumentSyncClientCapabilities(),
            ),
        )
        result = await self.client.initialize_async(types.InitializeParams(
            capabilities=caps, process_id=os.getpid(),
            root_uri=self.root.as_uri() if self.root else None,
            initialization_options=self.init_options,
        ))
        self.client.initialized(types.InitializedParams())
        return result

    @property
    def process(self):
        return self.client._server

    async def command(self, name: str, *args: Any) -> Any:
        return await self.client.workspace_execute_command_async(
            types.ExecuteCommandParams(command=name, arguments=list(args)))

    async def status(self) -> dict[str, Any]:
        res = await self.command("copilot.status")
        return res if isinstance(res, dict) else res._asdict()

    async def wait_ready(self, timeout: float = 180.0) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while True:
            st = await self.status()
            if st["state"] in ("ready", "failed") or loop.time() > end:
                return st
            await asyncio.sleep(0.1)

    def open(self, uri: str, text: str, language: str = "python", version: int = 1) -> None:
        self.client.text_document_did_open(types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(uri=uri, language_id=language, version=version, text=text)))

    def change(self, uri: str, version: int, start: tuple[int, int], end: tuple[int, int], text: str) -> None:
        rng = types.Range(start=types.Position(line=start[0], character=start[1]),
                          end=types.Position(line=end[0], character=end[1]))
        self.client.text_document_did_change(types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
            content_changes=[types.TextDocumentContentChangePartial(range=rng, text=text)]))

    def inline_params(self, uri: str, line: int, character: int) -> types.InlineCompletionParams:
        return types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            position=types.Position(line=line, character=character),
            context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Automatic))

    async def raw_request(self, method: str, params: Any) -> Any:
        """A request whose result is returned as plain JSON data, not parsed by lsprotocol (whose
        client-side parser turns every CodeAction carrying a command into a Command)."""
        import uuid

        from lsp.features.util import plain

        proto = self.client.protocol
        msg_id = str(uuid.uuid4())
        fut = proto.send_request(method, params, msg_id=msg_id)
        proto._result_types[msg_id] = None
        return plain(await asyncio.wrap_future(fut))

    async def code_actions(self, uri: str, line: int, character: int) -> list[dict[str, Any]]:
        pos = types.Position(line=line, character=character)
        return await self.raw_request(types.TEXT_DOCUMENT_CODE_ACTION, types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=uri), range=types.Range(start=pos, end=pos),
            context=types.CodeActionContext(diagnostics=[])))

    async def inline(self, uri: str, line: int, character: int) -> types.InlineCompletionList:
        return await self.client.text_document_inline_completion_async(self.inline_params(uri, line, character))

    async def stop(self) -> int | None:
        try:
            await asyncio.wait_for(self.client.shutdown_async(None), 30)
            self.client.exit(None)
        except Exception:  # noqa: BLE001 - the test already failed; just clean up
            pass
        proc = self.process
        try:
            await asyncio.wait_for(proc.wait(), 30)
        except asyncio.TimeoutError:
            proc.kill()
            await proc.wait()
        self.client._stop_event.set()
        self._drain.cancel()
        return proc.returncode

    async def __aenter__(self) -> "Session":
        await self.start()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.stop()


def frame(obj: Any) -> bytes:
    body = json.dumps(obj).encode()
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


class RawPipe:
    """Raw bytes to the server's stdin; framed JSON replies collected from its stdout."""

    def __init__(self, model: str | Path | None, home: Path | None = None):
        self.model, self.home = model, home
        self.messages: list[dict[str, Any]] = []
        self.stderr: list[bytes] = []
        self._new = asyncio.Event()

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            *server_cmd(self.model), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, env=server_env(self.home), limit=1 << 26)
        self._tasks = [asyncio.ensure_future(self._read()), asyncio.ensure_future(_drain(self.proc.stderr, self.stderr))]

    async def _read(self) -> None:
        out = self.proc.stdout
        while True:
            line = await out.readline()
            if not line:
                return
            if not line.lower().startswith(b"content-length:"):
                continue
            n = int(line.split(b":")[1])
            while (await out.readline()).strip():  # other headers (Content-Type), then the blank line
                pass
            body = await out.readexactly(n)
            self.messages.append(json.loads(body))
            self._new.set()

    async def send(self, data: bytes | dict[str, Any]) -> None:
        self.proc.stdin.write(frame(data) if isinstance(data, dict) else data)
        await self.proc.stdin.drain()

    async def reply(self, msg_id: Any, timeout: float = 60.0) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while True:
            for m in self.messages:
                if m.get("id") == msg_id and ("result" in m or "error" in m):
                    return m
            self._new.clear()
            left = end - loop.time()
            if left <= 0:
                raise TimeoutError(f"no reply to {msg_id!r}")
            try:
                await asyncio.wait_for(self._new.wait(), left)
            except asyncio.TimeoutError:
                pass

    async def close(self) -> int | None:
        try:
            self.proc.stdin.close()
        except Exception:  # noqa: BLE001
            pass
        try:
            await asyncio.wait_for(self.proc.wait(), 30)
        except asyncio.TimeoutError:
            self.proc.kill()
            await self.proc.wait()
        for t in self._tasks:
            t.cancel()
        return self.proc.returncode
