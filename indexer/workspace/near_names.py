"""The names a developer is using at the cursor, most relevant first: the call being typed, then the names on
the cursor's line (nearest first), then those of a few lines above; each with the dotted chain before it
(`billing.invoice_total` -> name `invoice_total`, qualifier `("billing",)`). Read from the text alone: no
parse, microseconds per request.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass

SCAN_CHARS = 200_000  # how much of a file its names are read from
_CHAIN = re.compile(r"[A-Za-z_$][\w$]*(?:\s*\.\s*[A-Za-z_$][\w$]*)*")
_WORD_END = re.compile(r"[A-Za-z_$][\w$]*$")
_LOCAL_DEF = re.compile(
    r"\b(?:def|class|function|func|fn|struct|interface|enum|trait|type)\s+\**([A-Za-z_$][\w$]*)")
KEYWORDS = frozenset("""and as assert async await break case catch class const continue def default del do elif else
enum except export extends false False finally fn for from func function go if impl import in interface is lambda let
match mod new nil None nonlocal not null or pass pub raise return self Self static struct super switch this throw
true True try type typeof use var void while with yield print len str int list dict set tuple range
isinstance""".split())


@dataclass(frozen=True)
class Ref:
    name: str
    qualifier: tuple[str, ...] = ()  # the dotted chain before the name; ("?",) after a call or an index
    partial: bool = False  # the word being typed, not finished


def _chains(text: str, base: int) -> list[tuple[int, tuple[str, ...]]]:
    """(end offset, parts) of each dotted chain; a chain right after `).` or `].` gets the qualifier "?"."""
    out = []
    for m in _CHAIN.finditer(text):
        parts = tuple(p.strip() for p in m.group(0).split("."))
        before = text[: m.start()].rstrip()
        if before.endswith(".") and not before.endswith(".."):
            parts = ("?",) + parts
        out.append((base + m.end(), parts))
    return out


def _refs_of(parts: tuple[str, ...]) -> list[Ref]:
    """The last part of a chain first (what is being called or read), then the head, then the middle."""
    order = [len(parts) - 1] + [i for i in range(len(parts) - 1)]
    return [Ref(parts[i], parts[:i]) for i in order if parts[i] != "?"]


def open_call(prefix: str, window: int = 400) -> tuple[str, ...] | None:
    """The chain before the innermost parenthesis still open at the cursor (the call being typed)."""
    tail = prefix[-window:]
    depth = 0
    for i in range(len(tail) - 1, -1, -1):
        c = tail[i]
        if c in ")]}":
            depth += 1
        elif c in "([{":
            if depth > 0:
                depth -= 1
                continue
            if c != "(":
                return None
            before = tail[:i].rstrip()
            chains = _chains(before, 0)
            return chains[-1][1] if chains and chains[-1][0] == len(before) else None
    return None


def refs_near(prefix: str, suffix: str, lines_above: int = 3) -> list[Ref]:
    """The names at the cursor, most relevant first, without repeats and keywords."""
    refs: list[Ref] = []
    call = open_call(prefix)
    if call:
        refs += _refs_of(call)
    word = _WORD_END.search(prefix[-100:])
    if word and not re.match(r"[\w$]", suffix[:1]) and len(word.group(0)) >= 2:
        refs.append(Ref(word.group(0), partial=True))
    tail = prefix[-4000:]
    line_start = tail.rfind("\n") + 1
    start = line_start
    for _ in range(lines_above):
        if start == 0:
            break
        start = tail.rfind("\n", 0, start - 1) + 1
    rest = suffix.split("\n", 1)[0]
    cursor_line = sorted(_chains(tail[line_start:], line_start), key=lambda t: -t[0])
    above = sorted(_chains(tail[start:line_start], start), key=lambda t: -t[0])
    for _, parts in cursor_line + _chains(rest, len(tail)) + above:
        refs += _refs_of(parts)
    out, seen = [], set()
    for r in refs:
        key = (r.name, r.qualifier, r.partial)
        if r.name in KEYWORDS or len(r.name) < 2 or key in seen:
            continue
        seen.add(key)
        out.append(r)
    return out


def local_names(text: str, limit: int = SCAN_CHARS) -> set[str]:
    """Names a file defines itself (functions, classes, types): those never come from another file."""
    return set(_LOCAL_DEF.findall(text[:limit]))


def local_name_spans(text: str, limit: int = SCAN_CHARS) -> list[tuple[int, int, str]]:
    """(start, end, name) of each place `local_names` finds a name defined."""
    return [(m.start(), m.end(), m.group(1)) for m in _LOCAL_DEF.finditer(text[:limit])]


_USED = re.compile(r"(?<![\w$.])([A-Za-z_$][\w$]*)(\s*\()?")
_ASSIGNED = re.compile(r"(?<![\w$.])([A-Za-z_$][\w$]*)\s*(?::[^=\n]*)?=(?!=)")


NOT_CODE = re.compile(r'''"""[\s\S]*?"""|\'\'\'[\s\S]*?\'\'\'|"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\''''
                       r"|`(?:\\.|[^`\\])*`|/\*[\s\S]*?\*/|//[^\n]*|#[^\n]*")


@dataclass(frozen=True)
class NameUses:
    """Where a file uses and assigns its bare names (offsets of each, by first use), and its strings and
    comments, which name nothing: what `used_names` is read from, with where."""

    used: dict[str, list[int]]
    assigned: dict[str, list[int]]
    not_code: list[tuple[int, int]]


def _counts(name: str, call: str) -> bool:
    return bool(call or name[:1].isupper()) and name not in KEYWORDS and len(name) >= 3


def name_uses(text: str, limit: int = SCAN_CHARS) -> NameUses:
    """Names called (`name(`) or read as a type (`Name`) outside strings and comments, and names assigned,
    each with its offsets in `text` (what the miner keeps per file version; `used_names` reads the same
    code, each string or comment made one space, without offsets)."""
    text = text[:limit]
    not_code = [m.span() for m in NOT_CODE.finditer(text)]
    starts, shifts, shift = [], [], 0  # where each blank stands in the code, and how far the text is ahead
    for a, b in not_code:
        starts.append(a - shift)
        shift += b - a - 1
        shifts.append(shift)

    def at(p: int) -> int:
        k = bisect_right(starts, p - 1)
        return p + (shifts[k - 1] if k else 0)

    code = NOT_CODE.sub(" ", text)
    assigned: dict[str, list[int]] = {}
    for m in _ASSIGNED.finditer(code):
        assigned.setdefault(m.group(1), []).append(at(m.start(1)))
    used: dict[str, list[int]] = {}
    for m in _USED.finditer(code):
        if _counts(m.group(1), m.group(2)):
            used.setdefault(m.group(1), []).append(at(m.start(1)))
    return NameUses(used, assigned, not_code)


def used_names(text: str, limit: int = SCAN_CHARS) -> list[str]:
    """Bare names a file calls (`name(`) or reads as a type (`Name`) outside strings and comments, first use
    first, less the names it assigns itself: what must come from an import or a definition somewhere."""
    code = NOT_CODE.sub(" ", text[:limit])
    assigned = set(_ASSIGNED.findall(code))
    used = dict.fromkeys(name for name, call in _USED.findall(code) if _counts(name, call))
    return [name for name in used if name not in assigned]
