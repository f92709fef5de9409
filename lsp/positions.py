"""Position conversion between LSP positions and string offsets.

LSP positions are (line, character) where `character` counts code units of the negotiated
encoding: UTF-16 by default, UTF-8 or UTF-32 if the client offered them at `initialize`.
Lines end at "\\n", "\\r\\n" or "\\r" only (not at the other characters `str.splitlines` knows).
Out-of-range positions are clamped: a line past the end means the end of the document, a
character past the end of its line means the end of that line (before its line break).
"""

from __future__ import annotations

import re
from bisect import bisect_right

UTF8 = "utf-8"
UTF16 = "utf-16"
UTF32 = "utf-32"

_EOL = re.compile(r"\r\n|\r|\n")


def normalize_encoding(kind: object) -> str:
    """lsprotocol PositionEncodingKind (or its string value) -> 'utf-8' | 'utf-16' | 'utf-32'."""
    value = getattr(kind, "value", kind)
    value = str(value or UTF16).lower()
    return value if value in (UTF8, UTF16, UTF32) else UTF16


def units(text: str, encoding: str) -> int:
    """Length of `text` in code units of `encoding`."""
    if encoding == UTF32:
        return len(text)
    if encoding == UTF8:
        return len(text.encode("utf-8", "surrogatepass"))
    # UTF-16: one unit per BMP character, two per astral character.
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def _chars_for_units(line: str, n: int, encoding: str) -> int:
    """How many characters of `line` make up `n` code units (never splitting a character)."""
    if n <= 0:
        return 0
    if encoding == UTF32:
        return min(n, len(line))
    count = 0
    for i, ch in enumerate(line):
        cp = ord(ch)
        if encoding == UTF8:
            w = 1 if cp < 0x80 else 2 if cp < 0x800 else 3 if cp < 0x10000 else 4
        else:
            w = 2 if cp > 0xFFFF else 1
        if count + w > n:
            return i
        count += w
        if count == n:
            return i + 1
    return len(line)


class LineIndex:
    """Start offsets of every line of a text; O(log n) line lookup."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.starts = [0] + [m.end() for m in _EOL.finditer(text)]

    def line_count(self) -> int:
        return len(self.starts)

    def line_text(self, line: int) -> str:
        """The line's content without its line break."""
        start = self.starts[line]
        end = self.starts[line + 1] if line + 1 < len(self.starts) else len(self.text)
        s = self.text[start:end]
        if s.endswith("\r\n"):
            return s[:-2]
        if s.endswith(("\n", "\r")):
            return s[:-1]
        return s

    def offset(self, line: int, character: int, encoding: str = UTF16) -> int:
        """LSP position -> character offset into the text (clamped)."""
        if line < 0:
            return 0
        if line >= len(self.starts):
            return len(self.text)
        content = self.line_text(line)
        return self.starts[line] + _chars_for_units(content, max(0, character), encoding)

    def position(self, offset: int, encoding: str = UTF16) -> tuple[int, int]:
        """Character offset -> LSP (line, character) in `encoding` units (clamped)."""
        offset = max(0, min(offset, len(self.text)))
        line = bisect_right(self.starts, offset) - 1
        content = self.line_text(line)
        col = min(offset - self.starts[line], len(content))
        return line, units(content[:col], encoding)


def offset_at(text: str, line: int, character: int, encoding: str = UTF16) -> int:
    return LineIndex(text).offset(line, character, encoding)


def position_at(text: str, offset: int, encoding: str = UTF16) -> tuple[int, int]:
    return LineIndex(text).position(offset, encoding)
