"""One source file -> its definitions (name, qualified name, signature, first line of documentation, span,
and for classes an outline of their members) and its chunks for similarity search.

The definitions are the indexer's code units (`indexer.extract.units_from_tree`); the signature is the
definition's text up to its body, so a prompt gets `def charge(customer, lines) -> Money:` and the
docstring's first line instead of the whole function. Chunks are functions and methods (long ones in
windows), and the lines between them in windows, each with the identifiers it contains.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from dataclasses import dataclass

from tree_sitter import Node, Parser, Tree

from indexer.extract import CLASS_LIKE, units_from_tree
from indexer.languages import get_language

IDENT = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]+")
URL = re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s\"'`)>\]]+")  # https://github.com/org/x: no code's names
MAX_SIGNATURE_LINES = 6
MAX_SIGNATURE_CHARS = 400
MAX_DOC_CHARS = 160
MAX_OUTLINE_LINES = 10
MAX_OUTLINE_LINE = 120
CHUNK_LINES = 40  # longest chunk; longer functions and gaps are cut in windows of this many lines
TAIL_LINES = 6  # lines after a function, before the next, short enough to be its chunk's end
FUNCTION_KINDS = frozenset({"function", "method"})
# Words every language repeats: no use for similarity.
STOP = frozenset("""self this cls def class return import from const let var function async await if else elif
for while in not and or is None True False null true false undefined new public private protected static void
int str bool float string number boolean char long double struct impl pub fn mut use mod crate package func
type interface enum try except finally catch throw throws raise with as pass break continue yield lambda
switch case default final extends implements super nil err ok go defer range map chan select""".split())

_local = threading.local()


def _parser(language: str) -> Parser:
    """A parser per thread and language (tree-sitter parsers must not be shared between threads)."""
    parsers = _local.__dict__.setdefault("parsers", {})
    if language not in parsers:
        parsers[language] = Parser(get_language(language))
    return parsers[language]


@dataclass(frozen=True, slots=True)
class Definition:
    name: str
    qualname: str
    kind: str  # function | method | class | struct | interface | enum | trait | impl | type
    path: str  # repository-relative, POSIX
    language: str
    start_line: int  # 0-based, inclusive
    end_line: int
    signature: str  # the text up to the body (decorators, parameters, return type), at its own indentation
    doc: str  # first line of the docstring / leading comment, or ""
    outline: str = ""  # classes: members (fields, method signatures), one per line
    container: str = ""  # methods: the first line of their class, when they are indented in it

    @property
    def key(self) -> str:
        return f"{self.path}:{self.qualname}:{self.start_line}"

    def render(self) -> str:
        """What goes in a prompt: signature, documentation line, class outline; never the body."""
        py = self.language == "python"
        sig = self.signature.rstrip()
        lines: list[str] = []
        indent = ""
        if self.container:
            head = self.container.rstrip()
            lines.append(head if py or head.endswith("{") else head + " {")
            indent = head[: len(head) - len(head.lstrip())] + ("    " if py else "  ")
        inner = indent + ("    " if py else "  ")
        if self.doc and not py:
            lines.append(f"{indent}// {self.doc}")
        is_class = self.kind in CLASS_LIKE
        if py:
            lines.append(indent + sig)
            if self.doc:
                lines.append(f'{inner}"""{self.doc}"""')
            if self.outline:
                lines.extend(inner + ln for ln in self.outline.splitlines())
            elif not self.doc or not is_class:
                lines.append(inner + "...")
        elif is_class and self.outline:
            lines.append(indent + (sig if sig.endswith("{") else sig + " {"))
            lines.extend(inner + ln for ln in self.outline.splitlines())
            lines.append(indent + "}")
        elif sig.endswith((";", "}")):
            lines.append(indent + sig)
        else:
            lines.append(indent + sig + " { ... }")
        if self.container and not py:
            lines.append(indent[:-2] + "}")
        return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class Chunk:
    start_line: int  # 0-based, inclusive
    end_line: int
    tokens: Counter  # identifier -> count


@dataclass(frozen=True, slots=True)
class ScannedFile:
    definitions: list[Definition]
    chunks: list[Chunk]


def tokens_of(text: str) -> Counter:
    """A text's identifiers for similarity, less the words every file says (STOP) and the words of URLs (a
    docstring's link to the project's site made every file that links to it look alike)."""
    if "://" in text:
        text = URL.sub(" ", text)
    return Counter(t for t in IDENT.findall(text) if t not in STOP)


def _body(node: Node) -> Node | None:
    """The first `body` field under a definition's outer node (decorators, export, const f = ...)."""
    queue, seen = [node], 0
    while queue and seen < 24:
        n = queue.pop(0)
        seen += 1
        body = n.child_by_field_name("body")
        if body is not None:
            return body
        queue.extend(n.named_children[:6])
    return None


def _trim_signature(text: str) -> str:
    """The signature as written; a long one without its decorators, its parameters on one line, its middle
    cut (the name at the start and the return type at the end are what matter)."""
    lines = [ln.rstrip() for ln in text.rstrip().splitlines()]
    if len(lines) > MAX_SIGNATURE_LINES:
        lines = [ln for ln in lines if not ln.lstrip().startswith("@")] or lines
    if len(lines) > MAX_SIGNATURE_LINES:
        lines = [re.sub(r",\s*([)\]])", r"\1", lines[0] + " ".join(ln.strip() for ln in lines[1:]))]
    out = "\n".join(lines)
    if len(out) > MAX_SIGNATURE_CHARS:
        out = out[: MAX_SIGNATURE_CHARS - 100].rstrip() + " … " + out[-90:].lstrip()
    return out


def _first_line(doc: str | None) -> str:
    for line in (doc or "").splitlines():
        line = line.strip().lstrip("-=#*~ ")
        if line:
            return line if len(line) <= MAX_DOC_CHARS else line[:MAX_DOC_CHARS].rstrip() + "…"
    return ""


def _decode(data: bytes, a: int, b: int) -> str:
    return data[a:b].decode("utf-8", "replace")


def _outline(body: Node, data: bytes, sigs: dict[int, str], language: str) -> str:
    """A class body's members: fields as written (first line), methods as their signatures."""
    out: list[str] = []
    base_col: int | None = None
    for child in body.named_children:
        if child.type in ("comment", "line_comment", "block_comment") or (
                child.type == "expression_statement" and child.named_child_count == 1
                and child.named_children[0].type == "string"):
            continue
        col = child.start_point.column
        base_col = col if base_col is None else min(base_col, col)
        sig = sigs.get(child.start_byte)
        if sig is not None:
            first = sig.splitlines()
            keep = [ln for ln in first if not ln.lstrip().startswith("@")] or first
            text = " ".join(s.strip() for s in keep)
            text += " ..." if language == "python" else (" { ... }" if not text.endswith(";") else "")
        else:
            text = _decode(data, child.start_byte, child.end_byte).splitlines()[0].rstrip()
            if child.end_point.row > child.start_point.row and language == "python" and text.endswith(":"):
                text += " ..."
        if len(text) > MAX_OUTLINE_LINE:
            text = text[:MAX_OUTLINE_LINE].rstrip() + " …"
        out.append(text)
        if len(out) >= MAX_OUTLINE_LINES:
            out.append("..." if language == "python" else "// ...")
            break
    return "\n".join(out)


def scan(text: str, language: str, path: str, tree: Tree | None = None) -> ScannedFile:
    """Definitions and chunks of one file (`path` repository-relative); `tree`: its syntax tree when the caller
    parsed this very text already."""
    data = text.encode("utf-8", "surrogatepass")
    root = (tree if tree is not None else _parser(language).parse(data)).root_node
    units = units_from_tree(root, data, language, path)
    lines = text.split("\n")
    nodes: list[tuple[object, Node | None, Node | None]] = []
    sigs: dict[int, str] = {}  # outer start byte -> signature (for class outlines)
    for u in units:
        node = root.descendant_for_byte_range(u.span.start_byte, u.span.end_byte)
        while node is not None and node.parent is not None and node.parent.start_byte == node.start_byte \
                and node.parent.end_byte == node.end_byte:
            node = node.parent
        body = _body(node) if node is not None else None
        end = body.start_byte if body is not None and body.start_byte > u.span.start_byte else u.span.end_byte
        if body is None and u.kind not in FUNCTION_KINDS:  # a struct/type without a body field: all of it
            sig = "\n".join(_decode(data, u.span.start_byte, u.span.end_byte).splitlines()[:MAX_OUTLINE_LINES + 2])
        else:
            sig = _trim_signature(_decode(data, u.span.start_byte, end))
        sigs[u.span.start_byte] = sig
        nodes.append((u, node, body))
    classes: list[tuple[str, int, int, str]] = []  # name, first and last line, first line of the signature
    defs: list[Definition] = []
    for u, node, body in nodes:
        sig = sigs[u.span.start_byte]
        outline = ""
        if u.kind in CLASS_LIKE and body is not None:
            outline = _outline(body, data, sigs, language)
        if u.kind in CLASS_LIKE:
            head = next((ln for ln in sig.splitlines() if not ln.lstrip().startswith("@")), "")
            classes.append((u.name, u.span.start_line, u.span.end_line,
                            lines[u.span.start_line][: u.span.start_col] + head.strip()))
        container = ""
        if u.kind == "method" and u.span.start_col > 0:  # the innermost class-like block around it
            around = [c for c in classes if c[0] == u.parent and c[1] <= u.span.start_line <= c[2]]
            container = around[-1][3] if around else ""
        defs.append(Definition(u.name, u.qualname, u.kind, path, language, u.span.start_line, u.span.end_line,
                               sig, _first_line(u.docstring), outline, container))
    return ScannedFile(defs, _chunks(lines, [(d.start_line, d.end_line) for d in defs if d.kind in FUNCTION_KINDS]))


def _chunks(lines: list[str], functions: list[tuple[int, int]]) -> list[Chunk]:
    """Outermost functions/methods (with the few lines after one, up to TAIL_LINES, that use it), and the runs
    of lines between them, in windows of CHUNK_LINES."""
    spans: list[tuple[int, int]] = []
    last_end = -1
    for start, end in sorted(functions):
        if start <= last_end:  # nested in the previous function
            continue
        spans.append((start, end))
        last_end = end
    out: list[tuple[int, int]] = []
    cursor = 0
    ends = spans + [(len(lines), len(lines))]
    for k, (start, end) in enumerate(ends):
        for a in range(cursor, start, CHUNK_LINES):  # the gap before this function
            out.append((a, min(start, a + CHUNK_LINES) - 1))
        for a in range(start, min(end, len(lines) - 1) + 1, CHUNK_LINES):
            out.append((a, min(end, a + CHUNK_LINES - 1)))
        cursor = end + 1
        if k + 1 < len(ends):  # a few lines after it (`assert_type(hello, ...)`, `app.add(...)`) go with it
            upto = min(ends[k + 1][0], len(lines))
            if 0 < upto - cursor <= TAIL_LINES and upto - out[-1][0] <= CHUNK_LINES:
                out[-1] = (out[-1][0], upto - 1)
                cursor = upto
    chunks = []
    for a, b in out:
        toks = tokens_of("\n".join(lines[a: b + 1]))
        if len(toks) >= 2:
            chunks.append(Chunk(a, b, toks))
    return chunks
