"""What a piece of code does that an explanation should say (torch-free, tree-sitter): its parameters, the
exceptions it raises, whether it returns a value, the attributes it assigns (`self.x = ...`), a class's methods,
and every identifier it contains. The explain prompt asks for these facts; `copilot eval` checks they were covered.

Facts are read for Python; for other languages only the identifiers are collected.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass
class CodeFacts:
    params: set[str] = field(default_factory=set)
    raises: set[str] = field(default_factory=set)
    returns: bool = False
    attributes: set[str] = field(default_factory=set)
    names: set[str] = field(default_factory=set)  # every identifier in the code
    methods: list[str] = field(default_factory=list)  # a class's own methods, in order (what its explanation walks)

    def items(self) -> list[str]:
        """What an explanation should mention: each parameter, exception and assigned attribute, and
        'return' when the code returns a value."""
        return sorted(self.params) + sorted(self.raises) + sorted(self.attributes) + (["return"] if self.returns else [])


def code_facts(code: str, language: str | None) -> CodeFacts:
    facts = CodeFacts(names=set(_IDENT.findall(code)))
    if language != "python":
        return facts
    from indexer.languages import get_parser

    data = code.encode("utf-8")
    root = get_parser("python").parse(data).root_node

    def text(n) -> str:
        return data[n.start_byte:n.end_byte].decode("utf-8", "replace")

    stack = [root]
    while stack:
        n = stack.pop()
        stack.extend(n.children)
        if n.type == "parameters":
            for p in n.named_children:
                ident = p if p.type == "identifier" else next(
                    (c for c in p.named_children if c.type == "identifier"), None)
                if ident is not None and text(ident) not in ("self", "cls"):
                    facts.params.add(text(ident))
        elif n.type == "raise_statement" and n.named_children:
            exc = n.named_children[0]
            exc = exc.child_by_field_name("function") or exc if exc.type == "call" else exc
            name = text(exc).split(".")[-1]
            if _IDENT.fullmatch(name):
                facts.raises.add(name)
        elif n.type == "return_statement" and n.named_children:
            facts.returns = True
        elif n.type == "class_definition" and n.parent is not None and n.parent.type == "module":
            body = n.child_by_field_name("body")
            for c in body.named_children if body is not None else ():
                c = c.child_by_field_name("definition") if c.type == "decorated_definition" else c
                if c is not None and c.type == "function_definition" and c.child_by_field_name("name") is not None:
                    facts.methods.append(text(c.child_by_field_name("name")))
        elif n.type == "assignment":
            left = n.child_by_field_name("left")
            if left is not None and left.type == "attribute" and text(left).startswith("self."):
                facts.attributes.add(text(left).split(".", 1)[1])
    return facts
