"""workspace/executeCommand `copilot.explain` and `copilot.explainStream` (with $/progress).

Arguments (positional, or one object with the same names):
  uri            an open document
  range          optional; a selection explains that code, an empty range (a cursor) explains
                 the function/class around it, no range explains the whole document: an
                 overview, then each top-level function and class
  token          explainStream only: a progress token the client made up; the server sends
                 $/progress begin, then reports whose `message` is the markdown so far, then end
Returns {"markdown": str, "sections": int, "truncated": bool}. Explanations run on the same
one-at-a-time scheduler as completions; a newer explain for the same document replaces it.
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
    h = ls.engine
    if h.state != "ready":
        why = f"failed to load: {h.error}" if h.state == "failed" else "still loading"
        raise JsonRpcException(message=f"copilot.explain: the model is {why}", code=FAILED)
    engine = h.engine
    text, enc, lang_id = doc.source, ls.encoding, doc.language_id
    lang = LANG.get(lang_id or "", lang_id or "text")
    path = doc_path(uri) or uri
    code: str | None = None
    symbol: str | None = None
    r = as_range(rng) if rng is not None else None
    if r is not None:
        index = positions.LineIndex(text)
        s = index.offset(r[0][0], r[0][1], enc)
        e = index.offset(r[1][0], r[1][1], enc)
        sym = enclosing(text, s, lang_id)
        if s == e:
            if sym is not None:
                code, symbol = text[sym.start: sym.end], sym.name
        else:
            code = text[s:e]
            symbol = sym.name if sym is not None and sym.start >= s and sym.end <= e + 1 else "selection"
    finished: list = []  # Explanations of the sections already done
    current: list[str] = []

    last_push = [0.0]

    def push() -> None:
        # at most one report per REPORT_EVERY seconds: each carries the whole markdown so far
        now = time.monotonic()
        if on_markdown is None or now - last_push[0] < REPORT_EVERY:
            return
        last_push[0] = now
        done = [(ex.symbol, ex.text, ex.truncated) for ex in finished]
        ls.call_soon(on_markdown, render(done + [(cur_symbol[0] if cur_symbol else None, "".join(current), False)]))

    cur_symbol: list[str | None] = []

    def on_section(sym: str | None) -> None:
        if cur_symbol and current:
            finished.append(_Done(cur_symbol[0], "".join(current)))
        current.clear()
        cur_symbol[:] = [sym]

    def on_text(chunk: str) -> None:
        current.append(chunk)
        push()

    def work(cancel):
        adapter = ls.ensure_adapter(engine)
        if code is not None:
            cur_symbol[:] = [symbol]
            ex = engine.explain(code, path, adapter, symbol=symbol, language=lang, on_text=on_text, cancel=cancel)
            return [ex]
        try:
            return engine.explain_file(text, path, adapter, on_text=on_text, on_section=on_section, cancel=cancel)
        except ImportError:  # the symbol extractor is not installed: the overview alone
            cur_symbol[:] = [None]
            return [engine.explain(text, path, adapter, language=lang, on_text=on_text, cancel=cancel)]

    try:
        results = await ls.scheduler.submit("explain:" + uri, work)
    except Superseded:
        raise JsonRpcException(message="copilot.explain: replaced by a newer request", code=int(types.LSPErrorCodes.RequestCancelled)) from None
    except (asyncio.CancelledError, JsonRpcException):
        raise
    except Exception as exc:  # noqa: BLE001
        raise JsonRpcException(message=f"copilot.explain: {str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__}", code=FAILED) from None
    sections = [(ex.symbol, ex.text, ex.truncated) for ex in results]
    return {"markdown": render(sections), "sections": len(sections), "truncated": any(t for _, _, t in sections)}


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
