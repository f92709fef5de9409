"""Source text -> code units (functions, methods, classes, ...) with spans and cleaned docstrings.

The definitions come from the language's query file (``indexer/queries/<language>.scm``); this module
adds what a query cannot say simply: the wrapper node a definition really starts at (decorators,
``export``, ``template<...>``, ``const f = () => ...``), the enclosing unit (methods and their class),
whether a unit is top-level, and the documentation (a Python docstring, else the comment block right
above the definition, cleaned of comment markers).

Units whose text contains a parse error (ERROR or MISSING nodes) are skipped; the rest of the file is kept.
"""

from __future__ import annotations

import inspect
import re
import textwrap
from dataclasses import dataclass

from tree_sitter import Node, QueryCursor

from copilot.core.types import CodeUnit, Span
from indexer.languages import get_parser, get_query

# Kinds whose nested functions are methods.
CLASS_LIKE = frozenset({"class", "struct", "interface", "enum", "trait", "impl", "type"})

# Node types a top-level unit may sit inside (besides the root) per language.
_TRANSPARENT: dict[str, frozenset[str]] = {
    "python": frozenset({"decorated_definition"}),
    "javascript": frozenset({"export_statement", "lexical_declaration", "variable_declaration"}),
    "typescript": frozenset({"export_statement", "lexical_declaration", "variable_declaration"}),
    "tsx": frozenset({"export_statement", "lexical_declaration", "variable_declaration"}),
    "go": frozenset({"type_declaration"}),
    "java": frozenset(),
    "rust": frozenset({"mod_item", "declaration_list"}),
    "c": frozenset({"preproc_if", "preproc_ifdef", "preproc_else", "preproc_elif", "linkage_specification",
                    "declaration_list", "type_definition", "declaration"}),
    "cpp": frozenset({"namespace_definition", "declaration_list", "template_declaration", "linkage_specification",
                      "preproc_if", "preproc_ifdef", "preproc_else", "preproc_elif", "type_definition",
                      "declaration"}),
}

_PY_STRING = re.compile(r'^([rRbBuUfF]*)("""|\'\'\'|"|\')', re.S)


@dataclass
class _Def:
    node: Node
    kind: str
    name_node: Node | None
    pattern: int


def extract_units(source: str, language: str, path: str = "", top_level_only: bool = False) -> list[CodeUnit]:
    """All code units of ``source`` in file order. ``top_level_only`` keeps what ``copilot explain`` lists:
    module/file-level functions, classes and type declarations (C++ namespace contents included)."""
    data = source.encode("utf-8", "surrogatepass")
    tree = get_parser(language).parse(data)
    return units_from_tree(tree.root_node, data, language, path, top_level_only=top_level_only)


def units_from_tree(root: Node, data: bytes, language: str, path: str = "",
                    top_level_only: bool = False) -> list[CodeUnit]:
    """Like :func:`extract_units` for an already parsed tree (``data`` is the UTF-8 source)."""
    defs: dict[int, _Def] = {}
    docstrings: dict[int, Node] = {}
    comments_by_end: dict[int, list[Node]] = {}
    for pattern, caps in QueryCursor(get_query(language)).matches(root):
        def_key = next((k for k in caps if k.startswith("definition.")), None)
        if def_key is not None:
            node = caps[def_key][0]
            old = defs.get(node.id)
            if old is not None and old.pattern <= pattern:
                continue
            kind = def_key.split(".")[1]
            name_node = caps["name"][0] if "name" in caps else None
            defs[node.id] = _Def(node, kind, name_node, pattern)
        elif "docstring" in caps:
            string = caps["docstring"][0]
            owner = string.parent.parent.parent  # string -> expression_statement -> block -> definition
            if owner is not None:
                docstrings[owner.id] = string
        elif "comment" in caps:
            for node in caps["comment"]:
                row, col = node.end_point
                if col == 0 and row > node.start_point.row:  # Rust line comments end after their newline
                    row -= 1
                comments_by_end.setdefault(row, []).append(node)

    transparent = _TRANSPARENT.get(language, frozenset())
    units: list[tuple[int, CodeUnit]] = []
    for d in defs.values():
        name, scope = _name_of(d, data, language)
        if not name:
            continue
        outer = _outer_node(d.node, language)
        enclosing = _enclosing_def(d.node, defs)
        kind = d.kind
        parent: str | None = None
        if enclosing is not None:
            if enclosing.kind in CLASS_LIKE:
                parent = _name_of(enclosing, data, language)[0]
                if kind == "function":
                    kind = "method"
            else:
                parent = _qual(enclosing, data, language, defs)
        elif kind == "method" and language == "go":
            parent = _go_receiver(d.node, data)
        elif scope and kind == "function":
            kind, parent = "method", scope
        if top_level_only and (enclosing is not None or not _is_top_level(outer, transparent)):
            continue
        if outer.has_error:
            continue
        doc_text, doc_span = _documentation(d.node, outer, data, language, docstrings, comments_by_end)
        units.append((outer.start_byte, CodeUnit(
            path=path,
            language=language,
            kind=kind,
            name=name,
            span=node_span(outer, data),
            text=_text(outer, data),
            docstring=doc_text,
            doc_span=doc_span,
            parent=parent,
        )))
    units.sort(key=lambda item: (item[0], -item[1].span.end_byte))
    return [u for _, u in units]


# ---------------------------------------------------------------- helpers


def _text(node: Node, data: bytes) -> str:
    return data[node.start_byte:node.end_byte].decode("utf-8", "replace")


def node_span(node: Node, data: bytes) -> Span:
    """A Span for a node, with columns counted in characters."""
    return make_span(data, node.start_byte, node.end_byte, node.start_point, node.end_point)


def make_span(data: bytes, start: int, end: int, start_point, end_point) -> Span:
    sr, sc = start_point
    er, ec = end_point
    return Span(
        start_byte=start,
        end_byte=end,
        start_line=sr,
        start_col=len(data[start - sc:start].decode("utf-8", "replace")),
        end_line=er,
        end_col=len(data[end - ec:end].decode("utf-8", "replace")),
    )


def _name_of(d: _Def, data: bytes, language: str) -> tuple[str, str | None]:
    """(name, scope) of a definition; scope is set for C++ ``A::f`` definitions."""
    node = d.name_node
    if node is None and language in ("c", "cpp"):
        node = _c_function_name(d.node)
    if node is None:
        return "", None
    text = _text(node, data).strip()
    if d.kind == "impl" or (language == "cpp" and node.type == "template_type"):
        text = text.split("<", 1)[0].strip()
    if language == "cpp" and "::" in text:
        scope, _, name = text.rpartition("::")
        return name, scope.split("<", 1)[0] or None
    return text, None


def _c_function_name(node: Node) -> Node | None:
    """The identifier under a C/C++ function definition's (pointer/reference) declarators."""
    decl = node.child_by_field_name("declarator")
    for _ in range(8):
        if decl is None:
            return None
        if decl.type == "function_declarator":
            return decl.child_by_field_name("declarator")
        nxt = decl.child_by_field_name("declarator")
        if nxt is None:  # reference_declarator has no field name
            nxt = next((c for c in decl.named_children if c.type.endswith("declarator")), None)
        decl = nxt
    return None


def _outer_node(node: Node, language: str) -> Node:
    """The node a definition really starts at: decorators, export, template<...>, const f = ..."""
    outer = node
    parent = outer.parent
    if language == "python":
        if parent is not None and parent.type == "decorated_definition":
            outer = parent
    elif language in ("javascript", "typescript", "tsx"):
        if node.type == "variable_declarator" and parent is not None \
                and parent.type in ("lexical_declaration", "variable_declaration") \
                and len([c for c in parent.named_children if c.type == "variable_declarator"]) == 1:
            outer = parent
        if outer.parent is not None and outer.parent.type == "export_statement":
            outer = outer.parent
    elif language == "go":
        if node.type in ("type_spec", "type_alias") and parent is not None and parent.type == "type_declaration" \
                and len(parent.named_children) == 1:
            outer = parent
    elif language == "cpp":
        while outer.parent is not None and outer.parent.type == "template_declaration":
            outer = outer.parent
    return outer


def _enclosing_def(node: Node, defs: dict[int, _Def]) -> _Def | None:
    parent = node.parent
    while parent is not None:
        found = defs.get(parent.id)
        if found is not None:
            return found
        parent = parent.parent
    return None


def _qual(d: _Def, data: bytes, language: str, defs: dict[int, _Def]) -> str:
    name, scope = _name_of(d, data, language)
    enclosing = _enclosing_def(d.node, defs)
    if enclosing is not None:
        return f"{_qual(enclosing, data, language, defs)}.{name}"
    return f"{scope}.{name}" if scope else name


def _go_receiver(node: Node, data: bytes) -> str | None:
    receiver = node.child_by_field_name("receiver")
    if receiver is None:
        return None
    for param in receiver.named_children:
        typ = param.child_by_field_name("type")
        if typ is not None:
            text = _text(typ, data).lstrip("*").strip()
            return text.split("[", 1)[0] or None
    return None


def _is_top_level(outer: Node, transparent: frozenset[str]) -> bool:
    parent = outer.parent
    while parent is not None and parent.parent is not None:
        if parent.type not in transparent:
            return False
        parent = parent.parent
    return True


def _documentation(node: Node, outer: Node, data: bytes, language: str, docstrings: dict[int, Node],
                   comments_by_end: dict[int, list[Node]]) -> tuple[str | None, Span | None]:
    string = docstrings.get(node.id)
    if string is not None:
        text = clean_python_docstring(_text(string, data))
        if text:
            return text, node_span(string, data)
    # A block of comments ending on the line right above the definition (attributes in between are fine).
    anchor = outer
    while anchor.prev_named_sibling is not None and anchor.prev_named_sibling.type == "attribute_item" \
            and anchor.prev_named_sibling.end_point.row >= anchor.start_point.row - 1:
        anchor = anchor.prev_named_sibling
    line = anchor.start_point.row
    block: list[Node] = []
    while True:
        candidates = [c for c in comments_by_end.get(line - 1, ()) if _starts_line(c, data)]
        if not candidates:
            break
        comment = min(candidates, key=lambda c: c.start_byte)
        raw = _text(comment, data)
        if raw.startswith(("//!", "/*!", "#!")):  # module docs, shebangs
            break
        block.insert(0, comment)
        line = comment.start_point.row
    if not block:
        return None, None
    text = clean_comment("\n".join(_text(c, data).rstrip("\n") for c in block))
    if not text:
        return None, None
    first, last = block[0], block[-1]
    return text, make_span(data, first.start_byte, last.end_byte, first.start_point, last.end_point)


def _starts_line(node: Node, data: bytes) -> bool:
    """True when only whitespace precedes the node on its line (not a trailing comment)."""
    start = node.start_byte
    before = data[start - node.start_point.column:start]
    return not before.strip()


def clean_python_docstring(literal: str) -> str:
    """The text of a Python string literal used as a docstring, dedented like ``inspect.cleandoc``."""
    m = _PY_STRING.match(literal)
    if not m:
        return literal.strip()
    quote = m.group(2)
    body = literal[m.end():]
    if body.endswith(quote):
        body = body[: -len(quote)]
    return inspect.cleandoc(body).strip()


_BLOCK_OPEN = re.compile(r"^\s*/\*[*!]?")
_BLOCK_CLOSE = re.compile(r"\*+/\s*$")
_LINE_MARKER = re.compile(r"^\s*(///?|//!|#+)")
_STAR = re.compile(r"^\s*\*(?!/)")


def clean_comment(text: str) -> str:
    """Comment text without its markers (``//``, ``///``, ``#``, ``/* */``, ``/** */``, leading ``*``)."""
    out: list[str] = []
    in_block = False
    for raw in text.splitlines():
        line = raw
        if not in_block and _BLOCK_OPEN.match(line):
            in_block = True
            line = _BLOCK_OPEN.sub("", line, count=1)
        elif in_block:
            line = _STAR.sub("", line, count=1)
        if in_block:
            if _BLOCK_CLOSE.search(line):
                line = _BLOCK_CLOSE.sub("", line)
                in_block = False
            out.append(line.rstrip())
            continue
        line = _LINE_MARKER.sub("", line, count=1)
        out.append(line.rstrip())
    # Drop one space after markers consistently: dedent handles common leading whitespace.
    cleaned = textwrap.dedent("\n".join(out)).strip("\n")
    return cleaned.strip()
