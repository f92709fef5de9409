"""Reading user source files safely: missing, directories, binary, invalid UTF-8, empty and huge files."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from copilot.core.types import UserInputError

BINARY_SNIFF = 8192


@dataclass
class SourceText:
    path: Path
    text: str
    size: int  # bytes on disk
    truncated: bool = False  # only the first `limit` bytes were read
    notes: list[str] = field(default_factory=list)  # warnings to show the user


def looks_binary(data: bytes) -> bool:
    return b"\x00" in data[:BINARY_SNIFF]


def read_source(path: str | Path, limit: int | None = None) -> SourceText:
    """Read a text file for explain/complete. Raises UserInputError with a one-line message when it can't."""
    p = Path(path)
    if not p.exists():
        raise UserInputError(f"{p}: no such file")
    if p.is_dir():
        raise UserInputError(f"{p}: is a directory, not a file")
    if not p.is_file():
        raise UserInputError(f"{p}: not a regular file")
    try:
        size = p.stat().st_size
        with open(p, "rb") as fh:
            data = fh.read(limit) if limit else fh.read()
    except PermissionError:
        raise UserInputError(f"{p}: permission denied") from None
    except OSError as exc:
        raise UserInputError(f"{p}: cannot read: {exc.strerror or exc}") from None
    if looks_binary(data):
        raise UserInputError(f"{p}: binary file (contains NUL bytes), not source code")
    notes: list[str] = []
    truncated = limit is not None and size > limit
    if truncated:
        # Don't cut a multi-byte character or a line in half.
        cut = data.rfind(b"\n")
        if cut > 0:
            data = data[: cut + 1]
        notes.append(f"{p} is {size / 1e6:.1f} MB: only its first {len(data) / 1e3:.0f} KB were used")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        text = data.decode("utf-8", errors="replace")
        bad = text.count("\ufffd")
        notes.append(f"{p} is not valid UTF-8 (first bad byte at offset {exc.start}): {bad} byte(s) were replaced with U+FFFD")
    if text.startswith("\ufeff"):
        text = text[1:]
    return SourceText(path=p, text=text, size=size, truncated=truncated, notes=notes)


def offset_of(text: str, line: int, col: int, path: str = "file") -> int:
    """Character offset of a 1-based (line, col) position; col may be one past the line's end."""
    lines = text.split("\n")
    if line < 1 or line > len(lines):
        raise UserInputError(f"line {line} is outside {path} (it has {len(lines)} line{'s' if len(lines) != 1 else ''})")
    content = lines[line - 1].rstrip("\r")
    if col < 1 or col > len(content) + 1:
        raise UserInputError(f"column {col} is outside line {line} of {path} (it has {len(content)} characters; use 1..{len(content) + 1})")
    return sum(len(ln) + 1 for ln in lines[: line - 1]) + col - 1
