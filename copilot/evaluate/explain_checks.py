"""Checks that see what is wrong with an explanation, where embedding similarity does not:

- **truncated**: the text stops mid-sentence or mid-list (its last line does not end a sentence);
- **coverage**: of the facts tree-sitter finds in the code — parameters, raised exceptions, whether it returns
  a value, attributes it assigns (`self.x = ...`) — the share the explanation mentions;
- **invented names**: the share of the explanation's code spans (`like_this`) that name an identifier the code
  (and what it imports) does not contain;
- **repetition**: the share of a file overview's sentences that say again what a section of the same explanation
  says (their words overlap by half or more); **repeated**: the same within one explanation.

Facts are read with tree-sitter for Python; for other languages only the identifiers are collected (so
`invented` is checked, `coverage` is not).
"""

from __future__ import annotations

import builtins
import keyword
import re

from copilot.serve.explain_end import code_spans, ends_sentence  # code_spans re-exported: what the checks read
from indexer.code_facts import CodeFacts, code_facts  # noqa: F401  (re-exported: the checks' facts)

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_KNOWN = set(dir(builtins)) | set(keyword.kwlist) | {"self", "cls"}


def truncated(text: str) -> bool:
    """True when the explanation's last line stops mid-sentence or mid-list (or there is no text)."""
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    if not lines:
        return True
    last = lines[-1]
    if last.startswith("#"):  # a heading with nothing under it
        return True
    return not ends_sentence(last)


def mentioned(item: str, text: str) -> bool:
    if item == "return":
        return re.search(r"\breturn", text, re.IGNORECASE) is not None
    return re.search(rf"(?<![A-Za-z0-9_]){re.escape(item)}(?![A-Za-z0-9_])", text, re.IGNORECASE) is not None


def invented(span: str, facts: CodeFacts) -> list[str]:
    """Identifiers of a code span that are neither in the code nor Python's builtins/keywords."""
    return [w for w in _IDENT.findall(span) if w not in facts.names and w not in _KNOWN and not w.isdigit()]


def file_names(path: str | None) -> set[str]:
    """The identifiers of a file's name (the prompt names the file: `inventory.py` is not an invented name)."""
    return set(_IDENT.findall((path or "").replace("\\", "/").rsplit("/", 1)[-1]))


def scores(text: str, code: str, language: str | None, path: str | None = None) -> dict[str, float]:
    """On the 0-100 scale of the other metrics: truncated (100 = cut off), coverage (when the code has facts
    to cover), repeated (when there are sentences), invented (share of code spans, when there are spans). Only the keys that apply are present, so
    averages skip explanations a measure does not apply to."""
    facts = code_facts(code, language)
    facts.names |= file_names(path)
    out: dict[str, float] = {"truncated": 100.0 * truncated(text)}
    items = facts.items() if language == "python" else []
    if items:
        out["coverage"] = 100.0 * sum(mentioned(i, text) for i in items) / len(items)
    if sentences(text):
        out["repeated"] = repeated(text)
    spans = code_spans(text)
    if spans:
        out["invented"] = 100.0 * sum(bool(invented(s, facts)) for s in spans) / len(spans)
    return out


_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]{2,}")
_STOP = {"the", "and", "that", "this", "with", "for", "are", "its", "from", "which", "function", "method", "class",
         "file", "returns", "return", "takes", "given", "into", "each", "when", "then", "also", "has", "have", "not"}


def sentences(text: str) -> list[str]:
    plain = re.sub(r"```.*?```", " ", text, flags=re.DOTALL)
    parts = re.split(r"(?<=[.!?])\s+|\n+", plain)
    return [p.strip(" -*#") for p in parts if len(_WORD.findall(p)) >= 3]


def _words(sentence: str) -> set[str]:
    return {w.lower() for w in _WORD.findall(sentence)} - _STOP


def repeated(text: str, threshold: float = 0.5) -> float:
    """0-100: the share of an explanation's sentences that say again what an earlier sentence of it said (the
    single-unit counterpart of `repetition`: a small model restating itself)."""
    own = [w for w in (_words(s) for s in sentences(text)) if w]
    rep = sum(any(len(w & o) / len(w | o) >= threshold for o in own[:i]) for i, w in enumerate(own))
    return 100.0 * rep / len(own) if own else 0.0


def repetition(overview: str, sections: list[str], threshold: float = 0.5) -> float:
    """0-100: the share of the overview's sentences whose content words overlap (Jaccard >= threshold) with a
    sentence of one of the sections: what the explanation says twice."""
    said = [_words(s) for sec in sections for s in sentences(sec)]
    own = [_words(s) for s in sentences(overview)]
    own = [w for w in own if w]
    if not own or not said:
        return 0.0
    rep = sum(any(len(w & o) / len(w | o) >= threshold for o in said if o) for w in own)
    return 100.0 * rep / len(own)
