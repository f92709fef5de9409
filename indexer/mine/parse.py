"""Parsing file versions with tree-sitter: from scratch, or incrementally from the file's previous version
(its tree edited by the diff's hunks), which reuses the subtrees the diff left untouched."""

from __future__ import annotations

from typing import Any

from indexer.git.history import FileChange
from indexer.languages import get_parser
from indexer.mine.run import Run
from indexer.pairs import SourceText

LAST_PARSE_BYTES = 32 << 20  # source bytes of the last parsed version of files kept for incremental parsing


def parse(text: str, language: str) -> tuple[SourceText, Any]:
    src = SourceText(text)
    return src, get_parser(language).parse(src.data)


def parse_version(run: Run, ch: FileChange, text: str, language: str) -> tuple[SourceText, Any]:
    """Parse a file version from history; incrementally from the version it was diffed against when that one
    was parsed last (its tree is copied, edited by the diff's hunks and handed to tree-sitter)."""
    prev = run.last_parse.pop(ch.old_path or ch.path, None)
    if prev is not None:
        run.last_parse_bytes -= len(prev[2].data)
    src = SourceText(text)
    tree = None
    if prev is not None and prev[0] == ch.old_blob and prev[1] == language and ch.hunks:
        edits = _hunk_edits(prev[2], src, ch.hunks)
        if edits is not None:
            old = prev[3].copy()
            for edit in reversed(edits):
                old.edit(*edit)
            tree = get_parser(language).parse(src.data, old)
    if tree is None:
        tree = get_parser(language).parse(src.data)
    run.last_parse[ch.path] = (ch.blob, language, src, tree)
    run.last_parse_bytes += len(src.data)
    while run.last_parse_bytes > LAST_PARSE_BYTES and run.last_parse:
        oldest = next(iter(run.last_parse))
        run.last_parse_bytes -= len(run.last_parse.pop(oldest)[2].data)
    return src, tree


def _hunk_edits(old: SourceText, new: SourceText, hunks: list[tuple[int, int, int, int]]):
    """tree-sitter edits (start, old end, new end bytes and points) turning ``old`` into ``new``, from git's
    line hunks; None unless the text between the hunks is exactly the same in both (redactions may have moved
    lines): then the caller parses from scratch."""
    def at(src: SourceText, line: int) -> int:
        starts = src.line_starts
        return starts[line] if line < len(starts) else len(src.data)

    def point(src: SourceText, pos: int) -> tuple[int, int]:
        row = src.line_of(pos)
        return row, pos - src.line_starts[row]

    od, nd = old.data, new.data
    ranges = []
    po = pn = 0
    for o_start, o_n, n_start, n_n in hunks:
        o0 = at(old, o_start if o_n == 0 else o_start - 1)
        o1 = at(old, o_start - 1 + o_n) if o_n else o0
        n0 = at(new, n_start if n_n == 0 else n_start - 1)
        n1 = at(new, n_start - 1 + n_n) if n_n else n0
        if o0 < po or n0 < pn or o1 < o0 or n1 < n0 or od[po:o0] != nd[pn:n0]:
            return None
        ranges.append((o0, o1, n0, n1))
        po, pn = o1, n1
    if od[po:] != nd[pn:]:
        return None
    edits = []
    for o0, o1, n0, n1 in ranges:
        seg = nd[n0:n1]
        row, col = point(old, o0)
        nl = seg.count(b"\n")
        end = (row + nl, len(seg) - seg.rfind(b"\n") - 1) if nl else (row, col + len(seg))
        edits.append((o0, o1, o0 + (n1 - n0), (row, col), point(old, o1), end))
    return edits
