"""The completion at a cursor, shared by textDocument/inlineCompletion and textDocument/completion.

Single line when the cursor is mid-line, a block at the end of a line or on an empty line
(the engine decides from the text around the cursor). The flow of one request:
1. the typed-ahead cache: if the user typed the first characters of a suggestion shown here,
   the rest is returned without a model call;
2. otherwise the request is queued on the scheduler under the document's URI: a newer request
   for the same document, or the client's $/cancelRequest, stops the generation within a token;
3. the prompt is the text around the cursor (bounded) plus, before it, the repository's definitions of
   what the cursor's code uses, its most similar code and snippets of other open documents of the same
   language (`context_snippets`; kept while the cursor stays near, so the prompt's start stays put); the engine
   reuses its KV cache for the unchanged prompt prefix, and a cancelled request still reads the part
   before the cursor's line when nothing else waits (the next keystroke's prompt starts the same).
Nothing is returned (an empty list) while the model loads, if it failed, or for a disabled
language; never an error.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

from lsprotocol import types

from indexer.workspace import repo_context
from indexer.workspace.repo_context import Snippet
from lsp import context, feedback_log, positions
from lsp.features.util import doc_path, open_document
from lsp.scheduler import Superseded
from lsp.state import Served

log = logging.getLogger("copilot.lsp")

# LSP languageIds the engine names differently
ENGINE_LANG = {"javascriptreact": "javascript", "typescriptreact": "tsx"}

# The engine keeps only a token budget of the text around the cursor; never hand it megabytes.
MAX_PROMPT_CHARS = 32_000
# ... but the text handed over must start at the same place while the user types: the engine keeps the
# start of its prompt window fixed by offsets into that text (see BaseEngine._budget), and a start that
# moved with every keystroke would re-read the whole window each time. So it starts on a multiple of this.
PREFIX_START_STEP = 8_192
MAX_CONTEXT_FILES = 4  # the engines take at most four other files' snippets


@dataclass(frozen=True)
class Suggestion:
    text: str
    start: types.Position
    end: types.Position
    served: Served


@dataclass(frozen=True)
class _Cursor:
    """One request's view of its document: the text as it was when the request arrived, split at the cursor."""

    uri: str
    doc: Any
    language: str | None
    path: str | None
    index: positions.LineIndex
    offset: int
    start: types.Position
    prefix: str
    suffix: str
    crlf: bool
    encoding: str

    def end(self, replace_suffix_chars: int) -> types.Position:
        return _end(self.index, self.offset, replace_suffix_chars, self.encoding)


async def suggest(ls: Any, uri: str, line: int, character: int) -> Suggestion | None:
    """The completion at a position, or None. Shared by inline completion and completion."""
    t0 = time.perf_counter()
    ls.counters["requests"] += 1
    cur = _read_cursor(ls, uri, line, character)
    if cur is None:
        return None
    cached = _from_cache(ls, cur, t0)
    if cached is not None:
        return cached
    if ls.engine.state != "ready":
        ls.counters["empty"] += 1
        return None
    answer = await _generate(ls, cur, t0, line, character)
    return _finish(ls, cur, answer, t0) if answer is not None else None


def _read_cursor(ls: Any, uri: str, line: int, character: int) -> _Cursor | None:
    snap = ls.snapshots.pop(uri, None)  # taken whether or not this request gets to use it
    doc = open_document(ls, uri)
    if doc is None:
        ls.counters["empty"] += 1
        return None
    if not ls.config.language_enabled(doc.language_id):
        ls.counters["disabled"] += 1
        return None
    text = snap[2] if snap is not None and snap[:2] == (line, character) else doc.source
    return _cursor_in(ls, uri, doc, text, line, character)


def _cursor_in(ls: Any, uri: str, doc: Any, text: str, line: int, character: int) -> _Cursor:
    """The cursor at (line, character) of `text`, the document's content as a request sees it."""
    enc = ls.encoding
    index = positions.LineIndex(text)
    offset = index.offset(line, character, enc)
    cur_line, cur_char = index.position(offset, enc)
    return _Cursor(uri, doc, doc.language_id, doc_path(uri), index, offset,
                   types.Position(line=cur_line, character=cur_char), text[:offset], text[offset:],
                   "\r\n" in text[max(0, offset - 2000): offset + 2000], enc)


def _from_cache(ls: Any, cur: _Cursor, t0: float) -> Suggestion | None:
    """The rest of a suggestion shown here whose first characters the user has typed, without a model call."""
    hit = ls.cache.get(cur.uri, cur.prefix, cur.suffix)
    if hit is None:
        return None
    ls.counters["cache_hits"] += 1
    old: Served = hit.entry.meta
    latency = (time.perf_counter() - t0) * 1000
    served = Served(ls.next_id(), hit.text, old.adapter, old.adapter_version, latency, cur.language, cur.path, True,
                    replace_suffix_chars=old.replace_suffix_chars)
    ls.remember(served)
    ls.last_latency_ms = latency
    feedback_log.shown(ls, served)
    return Suggestion(hit.text, cur.start, cur.end(old.replace_suffix_chars), served)


def context_snippets(ls: Any, cur: _Cursor, prefix: str, suffix: str) -> tuple[Snippet, ...]:
    """What goes before the file in the prompt (indexer/workspace/repo_context.py, lsp/context.py): definitions
    from other files of what the code at the cursor uses, the repository's most similar code, the regions of
    other files edited lately, snippets of other open documents; within `context.tokens`, at most 4 files.
    Kept while the cursor stays near (the prompt's start stays put), chosen again when the index becomes
    ready, another file is edited or a new definition is wanted."""
    cs = ls.settings.context
    repo = ls.repo_index if cs.repo and ls.repo_index.ready else None
    open_files = cs.open_files and ls.config.other_files
    if (repo is None and not open_files) or cs.tokens <= 0:
        return ()
    language = ENGINE_LANG.get(cur.language or "", cur.language)
    rel = repo.rel(cur.path) if repo is not None else None
    found = []
    if repo is not None and cs.definitions:
        found = repo_context.definitions_near(repo.index, rel, language, prefix, suffix, file_text=cur.doc.source)

    def choose() -> tuple[Snippet, ...]:
        chosen: list[Snippet] = []
        if repo is not None:
            chosen = repo_context.choose(repo.index, rel, language, prefix, suffix, tokens=cs.tokens,
                                         definitions=cs.definitions, similar=cs.similar, file_text=cur.doc.source,
                                         show=repo.show, found=found,
                                         edits=repo.edits.recent() if cs.recent_edits else ())
        left = cs.tokens - int(sum(len(s.text) for s in chosen) / repo_context.CHARS_PER_TOKEN)
        if open_files and len(chosen) < MAX_CONTEXT_FILES and left > 0:
            taken = {s.path for s in chosen}
            docs = [context.OpenDoc(prompt_path(ls, doc_path(d.uri)) or d.uri, d.language_id, d.source)
                    for d in list(ls.workspace.text_documents.values()) if d.uri != cur.doc.uri]
            budget = min(left, ls.settings.completion.other_files_tokens)
            picked = context.snippets(prefix, cur.language, cur.path, [d for d in docs if d.path not in taken],
                                      budget, max_snippets=min(3, MAX_CONTEXT_FILES - len(chosen)))
            chosen += [Snippet(path, text, "open_file") for path, text in picked]
        return tuple(chosen)

    # a new choice when the index becomes ready or another file is edited (this file's edits are in its prompt)
    epoch = (repo is not None, repo.edits.stamp(rel) if repo is not None and cs.recent_edits else 0)
    return ls.snippet_memo.get(cur.uri, cur.start.line, choose, epoch=epoch,
                               wanted=frozenset(d.key for d in found))


def prompt_path(ls: Any, path: str | None) -> str | None:
    """How a file is named in the prompt: repository-relative inside the indexed repository (as the training
    pairs and `copilot eval` name it, so the adapter sees at serving time what it learned on), else absolute."""
    repo = ls.repo_index if ls.settings.context.repo and ls.repo_index.ready else None
    return (repo.rel(path) or path) if repo is not None else path


def _snippets(ls: Any, cur: _Cursor, prefix: str, suffix: str) -> tuple[tuple[str, str], ...]:
    return tuple((s.path, s.text) for s in context_snippets(ls, cur, prefix, suffix))


def cursor_at(ls: Any, uri: str, line: int, character: int) -> _Cursor | None:
    """The cursor in an open document (None: not open), as `copilot.context` and `copilot/cursorMoved` see it."""
    doc = open_document(ls, uri)
    return _cursor_in(ls, uri, doc, doc.source, line, character) if doc is not None else None


def bounded(cur: _Cursor) -> tuple[str, str]:
    """The prefix and suffix handed to the engine (see MAX_PROMPT_CHARS)."""
    return cur.prefix[bounded_start(len(cur.prefix)):], cur.suffix[:MAX_PROMPT_CHARS]


async def _generate(ls: Any, cur: _Cursor, t0: float, line: int, character: int):
    """Queue the model call on the scheduler; -> (completion, adapter, version), or None when superseded,
    cancelled or failed (a failure is logged, never raised to the client)."""
    engine = ls.engine.engine
    p_bounded, s_bounded = bounded(cur)
    snippets = _snippets(ls, cur, p_bounded, s_bounded)
    max_tokens = ls.config.max_tokens
    language = ENGINE_LANG.get(cur.language or "", cur.language)

    def work(cancel):
        t_run = time.perf_counter()
        adapter = ls.ensure_adapter(engine)
        comp = engine.complete(p_bounded, s_bounded, language, adapter, path=prompt_path(ls, cur.path), context=snippets,
                               max_new_tokens=max_tokens, cancel=cancel,
                               keep_warming=lambda: not ls.scheduler.others_waiting(cur.uri))
        ls.counters["generated_tokens"] += comp.generated_tokens
        if adapter and engine.backend == "remote":
            ls.ensure_adapter(engine)  # the version the service says it used (a promotion there shows at once)
        if comp.stop_reason == "cancelled":  # the engine confirms it stopped early
            ls.counters["stopped_generations"] += 1
        if log.isEnabledFor(logging.DEBUG):
            trace = getattr(engine, "last_trace", None) or {}
            log.debug("completion %s:%d:%d waited %.0f ms, ran %.0f ms, %s -> %r", cur.path, line, character,
                      (t_run - t0) * 1000, (time.perf_counter() - t_run) * 1000,
                      " ".join(f"{k}={v}" for k, v in trace.items()), comp.text[:40])
        return comp, adapter, ls.adapter_version

    ls.counters["model_calls"] += 1
    try:
        answer = await ls.scheduler.submit(cur.uri, work)
    except Superseded:
        ls.counters["cancelled"] += 1
        return None
    except asyncio.CancelledError:
        ls.counters["cancelled"] += 1
        raise
    except Exception as exc:  # noqa: BLE001 - a failing model call is an empty answer plus a log line
        ls.log_message(f"copilot: completion failed: {exc}", types.MessageType.Error)
        ls.counters["empty"] += 1
        return None
    if answer[0].stop_reason == "cancelled":
        ls.counters["cancelled"] += 1
        return None
    _service_changed(ls, engine)
    return answer


def _service_changed(ls: Any, engine: Any) -> None:
    """backend = remote: say once when the team service stops answering, and once when it is back."""
    problem = getattr(engine, "problem", None)
    if problem != ls.__dict__.get("_service_problem"):
        ls._service_problem = problem
        if problem:
            ls.log_message(f"copilot: {problem}", types.MessageType.Warning)
        elif getattr(engine, "service", None) is not None:
            ls.log_message(f"copilot: the team service at {engine.service.url} answers again")


async def warm(ls: Any, uri: str, line: int, character: int) -> int:
    """The cursor moved to (line, character) of `uri`: read the prompt there up to the cursor's line into the
    document's cache while the developer has not typed yet (copilot/cursorMoved). Never competes with a
    completion: skipped while one is queued or running for this document, and superseded by the next one.
    Returns the tokens read."""
    ls.counters["cursor_moves"] += 1
    if ls.engine.state != "ready" or ls.scheduler.running_key == uri or uri in ls.scheduler.pending_keys():
        return 0
    cur = cursor_at(ls, uri, line, character)
    if cur is None or not ls.config.language_enabled(cur.language):
        return 0
    engine = ls.engine.engine
    prefix, suffix = bounded(cur)
    snippets = _snippets(ls, cur, prefix, suffix)

    def work(cancel):
        adapter = ls.ensure_adapter(engine)
        return engine.warm(prefix, suffix, adapter, path=prompt_path(ls, cur.path), context=snippets, cancel=cancel,
                           keep_warming=lambda: not ls.scheduler.others_waiting(uri))

    try:
        n = await ls.scheduler.submit(uri, work)
    except (Superseded, asyncio.CancelledError):
        return 0
    except Exception as exc:  # noqa: BLE001 - reading ahead is best effort: a log line, never an error reply
        log.debug("warming %s failed: %s", uri, exc)
        return 0
    ls.counters["warmed_tokens"] += n
    return n


def _finish(ls: Any, cur: _Cursor, answer, t0: float) -> Suggestion | None:
    """Record and cache what the model answered, in the document's line endings."""
    comp, adapter, version = answer
    latency = (time.perf_counter() - t0) * 1000
    ls.last_latency_ms = latency
    out = comp.text.replace("\r\n", "\n").replace("\n", "\r\n") if cur.crlf else comp.text
    if not out.strip():
        ls.counters["empty"] += 1
        return None
    served = Served(ls.next_id(), out, adapter, version, latency, cur.language, cur.path, False,
                    replace_suffix_chars=comp.replace_suffix_chars)
    ls.remember(served)
    ls.cache.put(cur.uri, cur.prefix, cur.suffix, out, meta=served)
    feedback_log.shown(ls, served)
    return Suggestion(out, cur.start, cur.end(comp.replace_suffix_chars), served)


def bounded_start(prefix_len: int) -> int:
    """Where the prefix handed to the engine starts: at most MAX_PROMPT_CHARS + PREFIX_START_STEP before the
    cursor, on a multiple of PREFIX_START_STEP (it moves once per 8 KiB typed, not per keystroke)."""
    return max(0, (prefix_len - MAX_PROMPT_CHARS) // PREFIX_START_STEP * PREFIX_START_STEP)


def _end(index: positions.LineIndex, offset: int, replace: int, enc: str) -> types.Position:
    if replace <= 0:
        line, char = index.position(offset, enc)
    else:
        line_no, _ = index.position(offset, enc)
        line_end = index.offset(line_no, 1 << 30, enc)
        line, char = index.position(min(offset + replace, line_end), enc)
    return types.Position(line=line, character=char)


def item_command(served: Served) -> types.Command:
    return types.Command(title="copilot: accepted", command="copilot.accepted", arguments=[served.id])
