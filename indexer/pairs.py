"""Code -> training pairs: AST-aligned FIM from current files, FIM from the lines a commit added, and
explain pairs (a function/class with its docstring removed -> the docstring).

FIM middles are whole syntax nodes: a function body or block (multi-line), a statement, an expression
(cursor mid-line), or the rest of a line starting at a node. Prefix/suffix are bounded by a token budget
(approximated in characters) and cut at line boundaries, as an editor would send them. Typing points (the
cursor inside an identifier or a few characters into a line, kind ``fim_typing``) are in ``indexer.typing_points``.
"""

from __future__ import annotations

import bisect
import random
import re
from dataclasses import dataclass
from itertools import accumulate

from tree_sitter import Node, Tree

from copilot.core.types import CodeUnit, TrainingPair

FIM_PREFIX, FIM_SUFFIX, FIM_MIDDLE = "<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"

# The pair kinds (copilot.core.types.PairKind). FIM pairs: AST-aligned middles of current files, code a commit
# added, typing points of current files (indexer.typing_points). Everyone above reads these two from here.
FIM_KINDS = ("fim_file", "fim_history", "fim_typing")
HEAD_KINDS = ("fim_file", "fim_typing", "explain")  # mined from HEAD's files: replaced when the file changes

BLOCK_TYPES = frozenset({
    "block", "statement_block", "compound_statement", "constructor_body", "switch_block", "switch_body",
})
_EXTRA_STATEMENTS = frozenset({
    "let_declaration", "local_variable_declaration", "short_var_declaration", "lexical_declaration",
    "variable_declaration", "declaration", "field_declaration", "use_declaration", "const_declaration",
    "var_declaration", "assignment", "augmented_assignment", "decorated_definition", "function_definition",
    "function_declaration", "method_declaration", "method_definition", "function_item", "class_definition",
})
_EXPRESSIONS = frozenset({
    "call", "attribute", "subscript", "binary_operator", "comparison_operator", "boolean_operator", "arguments",
    "argument_list", "string", "list", "dictionary", "tuple", "object", "array", "list_comprehension",
    "dictionary_comprehension", "lambda", "conditional_expression", "template_string", "interpreted_string_literal",
    "string_literal", "composite_literal", "macro_invocation", "selector_expression", "field_expression",
    "member_expression", "call_expression", "method_invocation", "object_creation_expression",
})
_SKIP = frozenset({"comment", "line_comment", "block_comment", "ERROR"})


def is_statement(t: str) -> bool:
    return t.endswith("_statement") or t in _EXTRA_STATEMENTS


def is_expression(t: str) -> bool:
    return t in _EXPRESSIONS or t.endswith("_expression")


@dataclass(frozen=True)
class PairConfig:
    context_tokens: int = 1024  # prefix + suffix budget
    chars_per_token: float = 3.5
    prefix_share: float = 0.75
    max_middle_chars: int = 1500
    max_middle_lines: int = 40
    lines_per_fim: int = 25  # about one FIM pair per this many lines of a current file
    max_fim_per_file: int = 32
    max_history_per_file: int = 6
    lines_per_typing: int = 75  # about one typing point (indexer.typing_points) per this many lines ...
    max_typing_per_file: int = 12  # ... at most this many per current file (0: none)
    min_docstring_chars: int = 12
    max_explain_chars: int = 8000
    seed: int = 0
    # FIM pairs carry the repository context the server would send at their cursor (indexer.mine.context),
    # within this many tokens (the server's settings.context.tokens); 0: none
    context_tokens_repo: int = 256


_PLUS_ONE = (1).__add__


class SourceText:
    """A file's text with its UTF-8 bytes and line offsets, for node <-> text conversion."""

    def __init__(self, text: str):
        self.text = text
        self.data = text.encode("utf-8", "surrogatepass")
        self.ascii = len(self.data) == len(text)
        self._line_starts: list[int] | None = None

    @property
    def line_starts(self) -> list[int]:
        if self._line_starts is None:
            # the offset after each newline: running sums of the line lengths (+1 for the newline)
            pieces = self.data.split(b"\n")
            self._line_starts = list(accumulate(map(_PLUS_ONE, map(len, pieces[:-1])), initial=0))
        return self._line_starts

    def char(self, byte_offset: int) -> int:
        """Character offset of a byte offset."""
        if self.ascii:
            return byte_offset
        return len(self.data[:byte_offset].decode("utf-8", "replace"))

    def slice(self, start: int, end: int) -> str:
        return self.data[start:end].decode("utf-8", "replace")

    def line_of(self, byte_offset: int) -> int:
        return bisect.bisect_right(self.line_starts, byte_offset) - 1

    def line_end(self, line: int) -> int:
        """Byte offset of the newline ending ``line`` (or the end of data)."""
        starts = self.line_starts
        return starts[line + 1] - 1 if line + 1 < len(starts) else len(self.data)


@dataclass(frozen=True)
class Fim:
    start: int  # byte offsets of the middle
    end: int
    granularity: str  # body | block | statement | expression | rest_of_line | added | identifier | line_start
    #                 (typing points whose middle runs past the line end: identifier+block, line_start+block)


def fim_prompt(prefix: str, suffix: str) -> str:
    """The plain Qwen FIM prompt (prefix-suffix-middle); the trainer re-formats per model family."""
    return f"{FIM_PREFIX}{prefix}{FIM_SUFFIX}{suffix}{FIM_MIDDLE}"


def bounded_context(src: SourceText, start: int, end: int, cfg: PairConfig) -> tuple[str, str]:
    """(prefix, suffix) around a middle, within the character budget, cut at line boundaries."""
    text = src.text
    cs, ce = src.char(start), src.char(end)
    budget = int(cfg.context_tokens * cfg.chars_per_token)
    pre_budget = int(budget * cfg.prefix_share)
    suf_budget = budget - pre_budget
    p0 = max(0, cs - pre_budget)
    if p0 > 0:
        nl = text.find("\n", p0, cs)
        p0 = nl + 1 if nl >= 0 else cs - (cs - p0)  # no newline: keep the partial line
    s1 = min(len(text), ce + suf_budget)
    if s1 < len(text):
        nl = text.rfind("\n", ce, s1)
        s1 = nl + 1 if nl >= 0 else s1
    return text[p0:cs], text[ce:s1]


def _ok_middle(src: SourceText, node: Node, cfg: PairConfig) -> bool:
    if node.has_error or node.type in _SKIP:
        return False
    if node.end_byte - node.start_byte > cfg.max_middle_chars * 4:
        return False
    if node.end_point.row - node.start_point.row + 1 > cfg.max_middle_lines:
        return False
    middle = src.slice(node.start_byte, node.end_byte)
    return len(middle.strip()) >= 2 and len(middle) <= cfg.max_middle_chars


def first_code_byte(src: SourceText, line: int) -> int | None:
    start = src.line_starts[line]
    end = src.line_end(line)
    seg = src.data[start:end]
    stripped = len(seg) - len(seg.lstrip())
    return start + stripped if stripped < len(seg) else None


def _climb(node: Node, pred, root: Node) -> Node | None:
    while node is not None and node != root:
        if pred(node):
            return node
        node = node.parent
    return None


def sample_fims(tree: Tree, src: SourceText, cfg: PairConfig, rng: random.Random,
                units: list[CodeUnit] | None = None) -> list[Fim]:
    """Pick AST-aligned middles in a current file: a mix of bodies/blocks, statements, expressions, rest-of-line."""
    root = tree.root_node
    n_lines = len(src.line_starts)
    want = max(1, min(cfg.max_fim_per_file, n_lines // cfg.lines_per_fim))
    out: list[Fim] = []
    seen: set[tuple[int, int]] = set()
    attempts = 0
    while len(out) < want and attempts < want * 6:
        attempts += 1
        line = rng.randrange(n_lines)
        pos = first_code_byte(src, line)
        if pos is None:
            continue
        leaf = root.named_descendant_for_byte_range(pos, pos)
        if leaf is None:
            continue
        r = rng.random()
        fim: Fim | None = None
        if r < 0.25:
            fim = _pick_block(leaf, root, src, cfg)
        elif r < 0.6:
            node = _climb(leaf, lambda n: is_statement(n.type) and n.start_byte == pos, root)
            if node is not None and _ok_middle(src, node, cfg):
                fim = Fim(node.start_byte, node.end_byte, "statement")
        elif r < 0.8:
            fim = _pick_expression(root, src, line, cfg, rng)
        else:
            fim = _pick_rest_of_line(root, src, line, cfg, rng)
        if fim is None or (fim.start, fim.end) in seen:
            continue
        seen.add((fim.start, fim.end))
        out.append(fim)
    return out


def _pick_block(leaf: Node, root: Node, src: SourceText, cfg: PairConfig) -> Fim | None:
    node = leaf
    while node is not None and node != root:
        if node.type in BLOCK_TYPES and node.end_point.row > node.start_point.row:
            if _ok_middle(src, node, cfg):
                body_of = node.parent is not None and node.parent.child_by_field_name("body") == node
                start = node.start_byte
                end = node.end_byte
                if src.data[start:start + 1] == b"{":  # brace blocks: the middle is what is inside the braces
                    inner_start = start + 1
                    nl = src.data.find(b"\n", inner_start, end)
                    if nl < 0:
                        return None
                    start = nl + 1
                    close = src.data.rfind(b"}", start, end)
                    end = src.data.rfind(b"\n", start, close) + 1 if close > start else end
                    if end <= start or not src.data[start:end].strip():
                        return None
                return Fim(start, end, "body" if body_of else "block")
        node = node.parent
    return None


def _pick_expression(root: Node, src: SourceText, line: int, cfg: PairConfig, rng: random.Random) -> Fim | None:
    start, end = src.line_starts[line], src.line_end(line)
    if end - start < 3:
        return None
    pos = rng.randrange(start, end)
    node = root.named_descendant_for_byte_range(pos, pos)
    chosen = None
    while node is not None and node != root and node.start_point.row == line and node.end_point.row == line:
        if is_expression(node.type) and _ok_middle(src, node, cfg):
            chosen = node
            if rng.random() < 0.5:
                break
        node = node.parent
    if chosen is None:
        return None
    return Fim(chosen.start_byte, chosen.end_byte, "expression")


def _pick_rest_of_line(root: Node, src: SourceText, line: int, cfg: PairConfig, rng: random.Random) -> Fim | None:
    first = first_code_byte(src, line)
    end = src.line_end(line)
    if first is None or end - first < 4:
        return None
    pos = rng.randrange(first + 1, end)
    node = root.named_descendant_for_byte_range(pos, pos)
    if node is None or node.start_byte <= first or node.start_byte >= end or node.has_error:
        return None
    start = node.start_byte
    if not src.data[start:end].strip() or src.data[start:end].lstrip().startswith((b"#", b"//")):
        return None
    return Fim(start, end, "rest_of_line")


def fims_for_added_lines(tree: Tree, src: SourceText, added: list[tuple[int, int]], cfg: PairConfig) -> list[Fim]:
    """Middles for code a commit added: the largest whole nodes lying inside the added line ranges."""
    root = tree.root_node
    out: list[Fim] = []
    n_lines = len(src.line_starts)
    for a, b in added:
        if a >= n_lines:
            continue
        b = min(b, n_lines - 1)
        range_start, range_end = src.line_starts[a], src.line_end(b)
        line = a
        while line <= b and len(out) < cfg.max_history_per_file:
            pos = first_code_byte(src, line)
            if pos is None:
                line += 1
                continue
            node = root.named_descendant_for_byte_range(pos, pos)
            best = None
            while node is not None and node != root and node.start_byte >= range_start \
                    and node.end_byte <= range_end:
                if node.start_byte == pos:
                    best = node
                node = node.parent
            if best is None or best.type in _SKIP:
                line += 1
                continue
            if _ok_middle(src, best, cfg):
                out.append(Fim(best.start_byte, best.end_byte, "added"))
            line = best.end_point.row + 1
        if len(out) >= cfg.max_history_per_file:
            break
    return out


def fim_pair(src: SourceText, fim: Fim, cfg: PairConfig, *, kind: str, repo: str, path: str, commit: str,
             commit_time: int, language: str) -> TrainingPair:
    prefix, suffix = bounded_context(src, fim.start, fim.end, cfg)
    middle = src.slice(fim.start, fim.end)
    return TrainingPair(
        kind=kind, prompt=fim_prompt(prefix, suffix), completion=middle, repo=repo, path=path, commit=commit,
        commit_time=commit_time, language=language, span_start=src.line_of(fim.start),
        span_end=src.line_of(max(fim.start, fim.end - 1)), prefix=prefix, middle=middle, suffix=suffix,
        multiline="\n" in middle.rstrip("\n"),
    )


# ---------------------------------------------------------------- explain pairs


def explain_prompt(code: str, path: str, language: str, kind: str, name: str) -> str:
    return (f"Explain what the {language} {kind} `{name}` in `{path}` does.\n\n"
            f"```{language}\n{code}\n```\n")


_EXPLAIN_PROMPT = re.compile(r"Explain what the \S+ \w+ `([^`]+)` in `[^`]*` does\.\n\n```[^\n]*\n(.*)\n```\n?", re.S)


def explain_pair_parts(row: dict) -> tuple[str, str | None]:
    """(code, symbol name) of an explain pair: what training and evaluation hand the engine's explain prompt, so
    the code is not fenced twice and the pair's folders never reach the model. (code, None) for rows whose
    prompt is not in `explain_prompt`'s layout."""
    prompt = row.get("prompt") or ""
    m = _EXPLAIN_PROMPT.fullmatch(prompt)
    if m is None:
        return row.get("middle") or prompt, None
    return m.group(2), m.group(1)


def code_without_docstring(unit: CodeUnit) -> str:
    """The unit's text with its docstring removed when the docstring sits inside the unit (Python)."""
    doc = unit.doc_span
    if doc is None or not (unit.span.start_byte <= doc.start_byte and doc.end_byte <= unit.span.end_byte):
        return unit.text
    data = unit.text.encode("utf-8", "surrogatepass")
    s = doc.start_byte - unit.span.start_byte
    e = doc.end_byte - unit.span.start_byte
    line_start = data.rfind(b"\n", 0, s) + 1
    nl = data.find(b"\n", e)
    line_end = len(data) if nl < 0 else nl + 1
    if not data[line_start:s].strip() and not data[e:line_end].strip():
        s, e = line_start, line_end
    return (data[:s] + data[e:]).decode("utf-8", "replace").rstrip()


def explain_pairs(units: list[CodeUnit], cfg: PairConfig, *, repo: str, commit: str, commit_time: int) -> list[TrainingPair]:
    out = []
    for u in units:
        if not u.docstring or len(u.docstring) < cfg.min_docstring_chars:
            continue
        code = code_without_docstring(u)
        if len(code) > cfg.max_explain_chars or sum(1 for ln in code.splitlines() if ln.strip()) < 2:
            continue
        out.append(TrainingPair(
            kind="explain", prompt=explain_prompt(code, u.path, u.language, u.kind, u.qualname),
            completion=u.docstring, repo=repo, path=u.path, commit=commit, commit_time=commit_time,
            language=u.language, span_start=u.span.start_line, span_end=u.span.end_line,
            multiline="\n" in u.docstring,
        ))
    return out
