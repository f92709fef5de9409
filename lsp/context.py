"""Snippets from other open documents of the same language, for the completion prompt.

Like the "neighbouring tabs" heuristic: slide a window over each other open document, score
each window by the Jaccard similarity of its identifiers with the code just before the cursor,
and keep the best windows that fit a small budget. Budgets are in tokens, estimated from
characters (no tokenizer needed on the request path).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from indexer.workspace.repo_context import CHARS_PER_TOKEN

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]{2,}")
WINDOW_LINES = 20
STEP_LINES = 10
MAX_DOC_CHARS = 200_000  # other documents larger than this are only scanned at their start


@dataclass(frozen=True)
class OpenDoc:
    path: str
    language: str | None
    text: str


def _idents(text: str) -> set[str]:
    return set(_IDENT.findall(text))


def _windows(text: str) -> Iterable[str]:
    lines = text[:MAX_DOC_CHARS].splitlines()
    if len(lines) <= WINDOW_LINES:
        yield "\n".join(lines)
        return
    for start in range(0, len(lines) - WINDOW_LINES + STEP_LINES, STEP_LINES):
        yield "\n".join(lines[start : start + WINDOW_LINES])


def snippets(
    prefix: str,
    language: str | None,
    current_path: str | None,
    docs: Iterable[OpenDoc],
    budget_tokens: int = 128,
    max_snippets: int = 3,
) -> tuple[tuple[str, str], ...]:
    """Best (path, text) snippets from `docs` of the same language, within `budget_tokens`."""
    if budget_tokens <= 0 or language is None:
        return ()
    query = _idents("\n".join(prefix[-4000:].splitlines()[-WINDOW_LINES:]))
    if not query:
        return ()
    scored: list[tuple[float, str, str]] = []
    for doc in docs:
        if doc.path == current_path or doc.language != language or not doc.text.strip():
            continue
        best: tuple[float, str] | None = None
        for win in _windows(doc.text):
            ids = _idents(win)
            if not ids:
                continue
            score = len(ids & query) / len(ids | query)
            if best is None or score > best[0]:
                best = (score, win)
        if best is not None and best[0] > 0:
            scored.append((best[0], doc.path, best[1]))
    scored.sort(key=lambda t: -t[0])
    out: list[tuple[str, str]] = []
    left = int(budget_tokens * CHARS_PER_TOKEN)
    for _, path, text in scored[:max_snippets]:
        if left <= 0:
            break
        text = text[:left]
        out.append((path, text))
        left -= len(text)
    return tuple(out)


class StickySnippets:
    """Per document, the snippets chosen last, kept while the cursor stays within `lines` of where they
    were chosen. They open the prompt, so a new choice (the identifiers before the cursor change with
    every word typed) would invalidate the document's whole KV cache and cost a full prompt re-read.

    Two things make a new choice anyway: a different `epoch` (the repository index became ready, another
    file was edited), and `wanted` keys the held choice did not consider (a definition from another file
    that the code at the cursor has just started to use): one re-read then, not one per keystroke."""

    def __init__(self, lines: int = WINDOW_LINES // 2, max_docs: int = 64) -> None:
        self.lines, self.max_docs = lines, max_docs
        self._memo: dict[str, tuple[int, Any, frozenset, tuple]] = {}

    def get(self, uri: str, line: int, compute, *, epoch: Any = None, wanted: frozenset = frozenset()) -> tuple:
        held = self._memo.get(uri)
        if held is not None and abs(held[0] - line) <= self.lines and held[1] == epoch and wanted <= held[2]:
            return held[3]
        chosen = compute()
        self._memo.pop(uri, None)
        self._memo[uri] = (line, epoch, frozenset(wanted), chosen)
        while len(self._memo) > self.max_docs:
            self._memo.pop(next(iter(self._memo)))
        return chosen

    def forget(self, uri: str) -> None:
        self._memo.pop(uri, None)
