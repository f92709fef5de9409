"""The function or class around a position, found with tree-sitter (for code actions / explain)."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from functools import lru_cache

MAX_PARSE_CHARS = 2_000_000

# LSP languageId -> (grammar module, function returning the language pointer)
GRAMMARS = {
    "python": ("tree_sitter_python", "language"),
    "javascript": ("tree_sitter_javascript", "language"),
    "javascriptreact": ("tree_sitter_javascript", "language"),
    "typescript": ("tree_sitter_typescript", "language_typescript"),
    "typescriptreact": ("tree_sitter_typescript", "language_tsx"),
    "go": ("tree_sitter_go", "language"),
    "java": ("tree_sitter_java", "language"),
    "rust": ("tree_sitter_rust", "language"),
    "c": ("tree_sitter_c", "language"),
    "cpp": ("tree_sitter_cpp", "language"),
}
FUNCTIONS = {
    "function_definition", "function_declaration", "method_definition", "method_declaration",
    "function_item", "constructor_declaration", "generator_function_declaration",
}
CLASSES = {
    "class_definition", "class_declaration", "struct_item", "impl_item", "enum_item", "trait_item",
    "interface_declaration", "class_specifier", "struct_specifier", "enum_declaration",
}


@dataclass(frozen=True)
class Symbol:
    kind: str  # "function" | "class"
    name: str
    start: int  # character offsets into the text
    end: int


@lru_cache(maxsize=None)
def _parser(language_id: str):
    spec = GRAMMARS.get(language_id)
    if spec is None:
        return None
    try:
        from tree_sitter import Language, Parser

        mod = importlib.import_module(spec[0])
        return Parser(Language(getattr(mod, spec[1])()))
    except Exception:  # noqa: BLE001 - a missing grammar means no code action, not an error
        return None


def _name(node) -> str:
    for field in ("name", "type"):
        n = node.child_by_field_name(field)
        if n is not None and n.text:
            return n.text.decode("utf-8", "replace")
    stack = [node.child_by_field_name("declarator")]
    while stack:
        n = stack.pop()
        if n is None:
            continue
        if n.type in ("identifier", "field_identifier", "qualified_identifier", "destructor_name"):
            return n.text.decode("utf-8", "replace")
        stack.extend(reversed(n.children))
    return "<anonymous>"


def enclosing(text: str, offset: int, language_id: str | None) -> Symbol | None:
    """The innermost function or class containing character `offset`."""
    if not language_id or len(text) > MAX_PARSE_CHARS:
        return None
    parser = _parser(language_id)
    if parser is None:
        return None
    data = text.encode("utf-8", "surrogatepass")
    b = len(text[:offset].encode("utf-8", "surrogatepass"))
    tree = parser.parse(data)
    node = tree.root_node.descendant_for_byte_range(b, b)
    while node is not None:
        if node.type in FUNCTIONS or node.type in CLASSES:
            kind = "function" if node.type in FUNCTIONS else "class"
            start = len(data[: node.start_byte].decode("utf-8", "replace"))
            end = start + len(data[node.start_byte: node.end_byte].decode("utf-8", "replace"))
            return Symbol(kind, _name(node), start, end)
        node = node.parent
    return None
