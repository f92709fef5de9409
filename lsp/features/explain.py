"""workspace/executeCommand `copilot.explain` and `copilot.explainStream` (with $/progress).

Arguments (positional, or one object with the same names):
  uri            an open document
  range          optional; a selection explains that code, an empty range (a cursor) explains
                 the function/class around it, no range explains the whole document: an
                 overview, then each top-level function and class
  token          explainStream only: a progress token the client made up; the server sends
                 $/progress begin, then reports whose `message` is the markdown so far, then end
Returns {"markdown": str, "sections": int, "truncated": bool, "model": the base model that wrote it}.
Explanations run on the same one-at-a-time scheduler as completions; a newer explain for the same document replaces it.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from lsprotocol import types
from pygls.exceptions import JsonRpcException

from lsp import positions
from lsp.features.util import as_range, doc_path, open_document, plain
from lsp.scheduler import Superseded
from lsp.symbols import enclosing

INVALID = int(types.ErrorCodes.InvalidParams)
FAILED = int(types.LSPErrorCodes.RequestFailed)

REPORT_EVERY = 0.1  # seconds between $/progress reports


@dataclass(frozen=True)
class _Done:
    symbol: str | None
    text: str
    truncated: bool = False


# languageId -> the engine's language names (prompts only)
LANG = {"javascriptreact": "javascript", "typescriptreact": "tsx"}


def parse_args(args: tuple[Any, ...]) -> tuple[str, Any, Any]:
    vals = [plain(a) for a in args]
    if len(vals) == 1 and isinstance(vals[0], dict):
        d = vals[0]
        uri, rng, token = d.get("uri") or d.get("textDocument", {}).get("uri"), d.get("range"), d.get("token")
    else:
        vals += [None] * (3 - len(vals))
        uri, rng, token = vals[0], vals[1], vals[2]
    if not isinstance(uri, str):
        raise JsonRpcException(message="copilot.explain: first argument must be a document URI", code=INVALID)
    if rng is not None and as_range(rng) is None:
        raise JsonRpcException(message="copilot.explain: range must be {start:{line,character}, end:{...}}", code=INVALID)
    if token is not None and not isinstance(token, (str, int)):
        raise JsonRpcException(message="copilot.explainStream: token must be a string or integer", code=INVALID)
    return uri, rng, token


def render(sections: list[tuple[str | None, str, bool]]) -> str:
    out = []
    for symbol, text, truncated in sections:
        out.append("### Overview" if symbol is None else f"### `{symbol}`")
        out.append(text.strip() or "_(no explanation)_")
        if truncated:
            out.append("_(the code was too long: only its beginning was read)_")
    return "\n\n".join(out)


async def explain(ls: Any, uri: str, rng: Any, on_markdown=None) -> dict[str, Any]:
    doc = open_document(ls, uri)
    if doc is None:
        raise JsonRpcException(message=f"copilot.explain: document not open: {uri}", code=INVALID)
    engine, own_adapter = await _explain_engine(ls)
    text, lang_id = doc.source, doc.language_id
    lang = LANG.get(lang_id or "", lang_id or "text")
    path = doc_path(uri) or uri
    code, symbol = _target(text, rng, ls.encoding, lang_id)
    stream = _Stream(ls, on_markdown)

    def work(cancel):
        adapter = ls.ensure_adapter(engine) if own_adapter else None
        if code is not None:
            stream.on_section(symbol)
            return [engine.explain(code, path, adapter, symbol=symbol, language=lang, on_text=stream.on_text,
                                   cancel=cancel)]
        try:
            return engine.explain_file(text, path, adapter, on_text=stream.on_text, on_section=stream.on_section,
                                       cancel=cancel)
        except ImportError:  # the symbol extractor is not installed: the overview alone
            stream.on_section(None)
            return [engine.explain(text, path, adapter, language=lang, on_text=stream.on_text, cancel=cancel)]

    results = await _run(ls, "explain:" + uri, work)
    sections = [(ex.symbol, ex.text, ex.truncated) for ex in results]
    return {"markdown": render(sections), "sections": len(sections), "truncated": any(t for _, _, t in sections),
            "model": engine.model_name}


async def _explain_engine(ls: Any) -> tuple[Any, bool]:
    """(engine, whether the workspace's adapter applies: `explain.adapter`): the completion engine, or with
    `explain.model` set the explanation model's own engine, loaded on first use (awaited here, so completions keep
    being served), without the adapter."""
    spec = ls.explain_model_spec()
    if spec is None:
        return _ready_engine(ls.engine), ls.settings.explain.adapter
    h = ls.explain_engine
    if h.state == "idle" or h.model != spec:
        ls.start_explain_engine(spec)
    await asyncio.get_running_loop().run_in_executor(None, h.wait, 600)
    return _ready_engine(h), False


def _ready_engine(h: Any) -> Any:
    if h.state != "ready":
        why = f"failed to load: {h.error}" if h.state == "failed" else "still loading"
        raise JsonRpcException(message=f"copilot.explain: the model is {why}", code=FAILED)
    return h.engine


def _target(text: str, rng: Any, enc: str, lang_id: str | None) -> tuple[str | None, str | None]:
    """(code, symbol) to explain: the selection, or the definition around an empty range's cursor;
    (None, None) = the whole file, section by section."""
    r = as_range(rng) if rng is not None else None
    if r is None:
        return None, None
    index = positions.LineIndex(text)
    s = index.offset(r[0][0], r[0][1], enc)
    e = index.offset(r[1][0], r[1][1], enc)
    sym = enclosing(text, s, lang_id)
    if s == e:
        return (text[sym.start: sym.end], sym.name) if sym is not None else (None, None)
    return text[s:e], (sym.name if sym is not None and sym.start >= s and sym.end <= e + 1 else "selection")


class _Stream:
    """The markdown so far, reported to `on_markdown` at most once per REPORT_EVERY seconds."""

    def __init__(self, ls: Any, on_markdown) -> None:
        self.ls, self.on_markdown = ls, on_markdown
        self.finished: list[_Done] = []
        self.current: list[str] = []
        self.symbol: list[str | None] = []  # [] = no section started yet
        self.last_push = 0.0

    def on_section(self, sym: str | None) -> None:
        if self.symbol and self.current:
            self.finished.append(_Done(self.symbol[0], "".join(self.current)))
        self.current.clear()
        self.symbol[:] = [sym]

    def on_text(self, chunk: str) -> None:
        self.current.append(chunk)
        now = time.monotonic()
        if self.on_markdown is None or now - self.last_push < REPORT_EVERY:
            return
        self.last_push = now
        done = [(ex.symbol, ex.text, ex.truncated) for ex in self.finished]
        cur = (self.symbol[0] if self.symbol else None, "".join(self.current), False)
        self.ls.call_soon(self.on_markdown, render(done + [cur]))


async def _run(ls: Any, key: str, work) -> list:
    try:
        return await ls.scheduler.submit(key, work)
    except Superseded:
        raise JsonRpcException(message="copilot.explain: replaced by a newer request",
                               code=int(types.LSPErrorCodes.RequestCancelled)) from None
    except (asyncio.CancelledError, JsonRpcException):
        raise
    except Exception as exc:  # noqa: BLE001
        first = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
        raise JsonRpcException(message=f"copilot.explain: {first}", code=FAILED) from None


def register(server: Any) -> None:
    @server.command("copilot.explain")
    async def explain_cmd(ls: Any, *args: Any) -> dict[str, Any]:
        uri, rng, _ = parse_args(args)
        return await explain(ls, uri, rng)

    @server.command("copilot.explainStream")
    async def explain_stream(ls: Any, *args: Any) -> dict[str, Any]:
        uri, rng, token = parse_args(args)
        if token is None:
            return await explain(ls, uri, rng)

        def send(value: Any) -> None:
            try:
                ls.progress(types.ProgressParams(token=token, value=value))
            except Exception:  # noqa: BLE001 - client gone
                pass

        send(types.WorkDoneProgressBegin(title="Copilot: explaining", cancellable=False))
        try:
            result = await explain(ls, uri, rng, on_markdown=lambda md: send(types.WorkDoneProgressReport(message=md)))
        finally:
            send(types.WorkDoneProgressEnd(message="done"))
        return result
