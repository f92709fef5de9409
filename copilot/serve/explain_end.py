"""Where an explanation ends (torch-free): at a sentence, not at the token budget.

A budget cut mid-sentence reads as broken (`copilot eval`'s `truncated` check: 92 % of the embedded model's
explanations on the company pairs before this). So once `SOFT_SHARE` of the budget is generated, generation
stops when a new sentence or paragraph would start; a text that still reaches the budget is trimmed back to
its last complete sentence (an open code fence is closed). Streaming passes text on a sentence or paragraph
at a time, so what an editor or terminal showed is always the start of the final text.

Names come from the code: an inline code span (`like_this`) claims a name of the code, so a span whose
identifiers the code (or the file's name, or Python's builtins) does not contain loses its backticks and
stays as prose (`unquote_unknown`), in the stream and in the final text alike.
"""

from __future__ import annotations

import builtins
import keyword
import re
from collections.abc import Callable

SOFT_SHARE = 0.7
_BOUNDARY = re.compile(r"""[.!?][)\]"'*_`]*(?=\s)|\n\n""")
_SENTENCE_END = re.compile(r"""(?:[.!?][)\]"'*_`]*|```)\s*$""")  # not ":" — it promises what follows


_LIST_MARK = re.compile(r"(?:^|\n)[ \t]*(?:\d+|[a-zA-Z])\.[)\]*_]*\s*$")  # "2." opening a list item is no sentence end


def ends_sentence(text: str) -> bool:
    return (bool(_SENTENCE_END.search(text)) and not text.rstrip().endswith(("e.g.", "i.e."))
            and not _LIST_MARK.search(text))


class SentenceEnd:
    """`should_stop(ids, text)` for the decode loop, `finish(text, reason)` for the result, and `stream(on_text)`
    for the one-token-late streaming."""

    def __init__(self, budget: int, token_text: Callable[[int], str]):
        self.soft = max(1, int(budget * SOFT_SHARE))
        self._token_text = token_text
        self.cut: int | None = None  # characters of the text kept when the rule stopped generation

    def should_stop(self, ids: list[int], text: str) -> bool:
        if len(ids) < self.soft:
            return False
        last = self._token_text(ids[-1])
        if not last[:1].isspace() or not text.endswith(last):
            return False
        head = text[: len(text) - len(last)]
        if head.count("```") % 2 == 0 and ends_sentence(head):
            self.cut = len(head)
            return True
        return False

    def finish(self, text: str, reason: str) -> str:
        """The final text: cut before the sentence the rule saw starting, or (at the budget) back to the last
        sentence or paragraph end past a third of the text; an open code fence closed (dropped when empty)."""
        if reason == "rule" and self.cut is not None:
            text = text[: self.cut]
        elif reason == "length":
            ends = [e for e in boundaries(text) if e >= len(text) / 3]
            if ends:
                text = text[: ends[-1]]
        text = text.rstrip()
        if text.count("```") % 2 == 1:
            head, _, opened = text.rpartition("```")
            # a fence opened with nothing in it (at most a language tag) goes; one with code in it is closed
            text = head.rstrip() if re.fullmatch(r"[\w+-]*", opened.strip()) else text + "\n```"
        return text

    @staticmethod
    def stream(on_text: Callable[[str], None] | None, fix: Callable[[str], str] = lambda t: t):
        """(on_text for the decode loop, flush(final_text)): text is passed on up to its last sentence or
        paragraph end (through `fix`, as the final text is), the rest when the final text is known, so what was
        shown is always the start of the result."""
        if on_text is None:
            return None, lambda final: None
        shown: list[str] = []
        buf: list[str] = []

        def push(chunk: str) -> None:
            buf.append(chunk)
            text = "".join(buf)
            ends = boundaries(text)
            if ends:
                part = fix(text[: ends[-1]])
                on_text(part)
                shown.append(part)
                buf[:] = [text[ends[-1]:]]

        def flush(final: str) -> None:
            done = "".join(shown)
            if final.startswith(done) and len(final) > len(done):
                on_text(final[len(done):])

        return push, flush


def boundaries(text: str) -> list[int]:
    """Offsets just after each sentence end that whitespace follows, and after each paragraph break (a list
    item or a code line alone does not end what is shown)."""
    return [m.end() for m in _BOUNDARY.finditer(text) if not _LIST_MARK.search(text, 0, m.end())]


_SPAN = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ALWAYS = set(dir(builtins)) | set(keyword.kwlist) | {"self", "cls"}


def code_spans(text: str) -> list[str]:
    """The inline code spans (`like_this`) of a text."""
    return _SPAN.findall(text)


def code_names(code: str, path: str | None = None) -> frozenset[str]:
    """Every identifier of the code and of the file's name: what a code span may name."""
    name = (path or "").replace("\\", "/").rsplit("/", 1)[-1]
    return frozenset(_IDENT.findall(code)) | frozenset(_IDENT.findall(name))


def unquote_unknown(text: str, known: frozenset[str]) -> str:
    """Drop the backticks of inline code spans that name something the code does not contain."""

    def fix(m: re.Match) -> str:
        words = [w for w in _IDENT.findall(m.group(1)) if w not in _ALWAYS]
        return m.group(1) if words and any(w not in known for w in words) else m.group(0)

    out, fence = [], False
    for part in re.split(r"(```)", text):  # never inside a fenced block
        if part == "```":
            fence = not fence
            out.append(part)
        else:
            out.append(part if fence else _SPAN.sub(fix, part))
    return "".join(out)
