"""Typing points: FIM middles whose cursor sits where a typing developer's cursor does (pair kind ``fim_typing``).

The AST-aligned middles of :func:`indexer.pairs.sample_fims` start at syntax-node boundaries; an editor's
cursor is mostly inside an identifier or a few characters into a line. A typing point puts the cursor

- inside an identifier token (after 1..len-1 of its characters), or
- after 1-8 characters of a code line's first token,

and the middle is the rest of that line, up to the line end (without the newline, as for ``rest_of_line``
middles); about a quarter of them also take the rest of the smallest construct spanning more lines around
the cursor (a block, a statement, a call), within the middle limits of :class:`indexer.pairs.PairConfig`.
Cursors in comments and strings, lines with parse errors and whitespace-only middles are skipped.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

from tree_sitter import Node, Tree

from indexer.pairs import Fim, PairConfig, SourceText, first_code_byte

BLOCK_SHARE = 0.25  # share of typing points whose middle runs on to the end of the construct around the cursor
IDENTIFIER_SHARE = 0.6  # share of cursors inside an identifier (the rest: a few characters into a line)
MAX_LINE_START_CHARS = 8

_LITERAL_TYPES = frozenset({"regex", "regex_pattern", "char_literal", "character_literal", "rune_literal",
                            "heredoc_body"})


def is_identifier(node: Node) -> bool:
    """A leaf naming something: identifier, property_identifier, field_identifier, type_identifier, ..."""
    t = node.type
    return node.child_count == 0 and (t == "identifier" or t.endswith("_identifier"))


def _in_comment_or_string(node: Node) -> bool:
    while node is not None:
        t = node.type
        if "comment" in t or "string" in t or t in _LITERAL_TYPES:
            return True
        node = node.parent
    return False


def error_rows(tree: Tree) -> set[int]:
    """The rows touched by an ERROR or MISSING node."""
    rows: set[int] = set()
    root = tree.root_node
    if not root.has_error:
        return rows
    stack = [root]
    while stack:
        n = stack.pop()
        if n.is_error or n.is_missing:
            rows.update(range(n.start_point.row, n.end_point.row + 1))
            continue
        stack.extend(c for c in n.children if c.has_error)
    return rows


def _leaves(node: Node, start: int, end: int) -> Iterator[Node]:
    """The leaves of ``node`` overlapping the bytes [start, end), in order."""
    if node.child_count == 0:
        yield node
        return
    for child in node.children:
        if child.end_byte <= start:
            continue
        if child.start_byte >= end:
            break
        yield from _leaves(child, start, end)


def _cursor_in(src: SourceText, leaf: Node, k: int) -> int:
    """Byte offset after the first ``k`` characters of a one-line leaf."""
    text = src.slice(leaf.start_byte, leaf.end_byte)
    return leaf.start_byte + len(text[:k].encode("utf-8", "surrogatepass"))


def sample_typing_points(tree: Tree, src: SourceText, cfg: PairConfig, rng: random.Random) -> list[Fim]:
    """Typing-point middles in a current file: about one per ``cfg.lines_per_typing`` lines, at most
    ``cfg.max_typing_per_file`` (0: none). Deterministic for a given ``rng`` state."""
    n_lines = len(src.line_starts)
    want = min(cfg.max_typing_per_file, max(1, n_lines // cfg.lines_per_typing))
    root = tree.root_node
    bad = error_rows(tree)
    out: list[Fim] = []
    seen: set[tuple[int, int]] = set()
    attempts = 0
    while len(out) < want and attempts < want * 8:
        attempts += 1
        line = rng.randrange(n_lines)
        fim = _typing_point(root, src, line, cfg, rng, bad)
        if fim is None or (fim.start, fim.end) in seen:
            continue
        seen.add((fim.start, fim.end))
        out.append(fim)
    return out


def _typing_point(root: Node, src: SourceText, line: int, cfg: PairConfig, rng: random.Random,
                  bad: set[int]) -> Fim | None:
    first = first_code_byte(src, line)
    if first is None or line in bad:
        return None
    end = src.line_end(line)
    around = root.descendant_for_byte_range(first, max(first, end - 1))
    if around is None or around.start_byte > first or around.end_byte < end:
        around = root
    leaves = [leaf for leaf in _leaves(around, first, end) if leaf.end_byte > leaf.start_byte]
    if not leaves or leaves[0].start_byte < first:  # the line starts inside a token (a multi-line string)
        return None
    if rng.random() < IDENTIFIER_SHARE:
        names = [leaf for leaf in leaves if is_identifier(leaf) and leaf.end_point.row == line
                 and len(src.slice(leaf.start_byte, leaf.end_byte)) >= 2]
        if not names:
            return None
        leaf = rng.choice(names)
        n = len(src.slice(leaf.start_byte, leaf.end_byte))
        cursor = _cursor_in(src, leaf, rng.randint(1, n - 1))
        granularity = "identifier"
    else:
        leaf = leaves[0]
        if leaf.end_point.row != line:
            return None
        n = len(src.slice(leaf.start_byte, leaf.end_byte))
        cursor = _cursor_in(src, leaf, rng.randint(1, min(MAX_LINE_START_CHARS, n)))
        granularity = "line_start"
    if _in_comment_or_string(leaf):
        return None
    stop = end
    if rng.random() < BLOCK_SHARE:
        block_end = _construct_end(root, leaf, src, line, cursor, cfg, bad)
        if block_end is not None:
            stop, granularity = block_end, granularity + "+block"
    middle = src.data[cursor:stop]
    if len(middle.strip()) < 2:
        return None
    return Fim(cursor, stop, granularity)


def _construct_end(root: Node, leaf: Node, src: SourceText, line: int, cursor: int, cfg: PairConfig,
                   bad: set[int]) -> int | None:
    """The end of the last line of the smallest construct around the cursor that runs past its line, when
    the middle up to there stays within the limits and free of parse errors; else None."""
    node = leaf.parent
    while node is not None and node != root and node.end_point.row <= line:
        node = node.parent
    if node is None or node == root:
        return None
    last = node.end_point.row if node.end_point.column > 0 else node.end_point.row - 1
    if last <= line or last - line + 1 > cfg.max_middle_lines or any(r in bad for r in range(line, last + 1)):
        return None
    stop = src.line_end(last)
    if stop - cursor > cfg.max_middle_chars * 4 or len(src.slice(cursor, stop)) > cfg.max_middle_chars:
        return None
    return stop
