"""A file's imports, read from its text with a few patterns (no parse needed), and their resolution to the
repository's files.

Python: `import a.b [as c]`, `from a.b import x [as y], ...` (parenthesized too), relative `from .m import x`,
and `from .m import *`. JavaScript/TypeScript: `import d, {x as y} from './m'`, `import * as ns from './m'`,
`require('./m')`, and the re-exports `export {x as y} from './m'`, `export * from './m'`, `export * as ns from
'./m'` (read as imports: where `y` is found from that file; relative specifiers only: a package's names are not
the repository's). A star import is kept under the key `*<module>` (`Imported(name="*")`, see `star_modules`):
the names it brings are unknown until that module is read. Other languages have no import resolution: their
names are looked up by unique name.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass

_PY_FROM = re.compile(r"^[ \t]*from[ \t]+(\.*[\w.]*)[ \t]+import[ \t]+(\([^)]*\)|[^\n#;]+)", re.M)
_PY_IMPORT = re.compile(r"^[ \t]*import[ \t]+([^\n#;]+)", re.M)
_JS_IMPORT = re.compile(
    r"""\bimport\s+(?:type\s+)?(?:([\w$]+)\s*,?\s*)?(?:\{([^}]*)\}|\*\s+as\s+([\w$]+))?\s*from\s*['"]([^'"]+)['"]""")
_JS_REEXPORT = re.compile(r"""\bexport\s+(?:type\s+)?\{([^}]*)\}\s*from\s*['"]([^'"]+)['"]""")
_JS_STAR_EXPORT = re.compile(r"""\bexport\s+(?:type\s+)?\*\s*(?:as\s+([\w$]+)\s*)?from\s*['"]([^'"]+)['"]""")
_JS_REQUIRE = re.compile(
    r"""\b(?:const|let|var)\s+(?:\{([^}]*)\}|([\w$]+))\s*=\s*require\(\s*['"]([^'"]+)['"]\s*\)""")
# Other languages' import statements, only to tell them from code (their names are found by unique name):
# Java/Kotlin `import a.b.C;`, Go `import "fmt"` and `import (...)`, Rust `use a::{b, c};`, C/C++ `#include`, C# `using`.
_OTHER_IMPORT = re.compile(r"^[ \t]*(?:import|use|using|#[ \t]*include)\b[^\n;({]*(?:\([^)]*\)|\{[^}]*\})?[^\n;]*;?",
                           re.M)
JS_LANGS = frozenset({"javascript", "typescript", "tsx"})
JS_EXTS = (".ts", ".tsx", ".js", ".jsx", ".mjs", ".cjs", ".mts", ".cts")
MAX_SCAN_CHARS = 64_000  # imports sit at the top of a file


@dataclass(frozen=True)
class Imported:
    local: str  # the name used in this file
    module: str  # as written: "a.b", "..m", "./m"
    name: str | None  # the imported name; None: `local` is the module itself


def parse_imports(text: str, language: str | None) -> dict[str, Imported]:
    """local name -> what it imports."""
    text = text[:MAX_SCAN_CHARS]
    out: dict[str, Imported] = {}
    if language == "python":
        for m in _PY_FROM.finditer(text):
            module = m.group(1)
            for part in m.group(2).strip("()").replace("\\\n", " ").split(","):
                bits = part.split()
                if not bits:
                    continue
                if bits[0] == "*":
                    out["*" + module] = Imported("*", module, "*")
                    continue
                local = bits[2] if len(bits) == 3 and bits[1] == "as" else bits[0]
                out[local] = Imported(local, module, bits[0])
        for m in _PY_IMPORT.finditer(text):
            for part in m.group(1).split(","):
                bits = part.split()
                if not bits:
                    continue
                if len(bits) == 3 and bits[1] == "as":
                    out[bits[2]] = Imported(bits[2], bits[0], None)
                else:
                    head = bits[0].split(".")[0]
                    out.setdefault(head, Imported(head, head, None))
    elif language in JS_LANGS:
        for m in _JS_IMPORT.finditer(text):
            default, named, star, spec = m.groups()
            if default and default != "type":
                out[default] = Imported(default, spec, "default")
            if star:
                out[star] = Imported(star, spec, None)
            _js_named(named, spec, out)
        for m in _JS_REEXPORT.finditer(text):  # `export {x} from './m'`: where x is found from here
            _js_named(m.group(1), m.group(2), out)
        for m in _JS_STAR_EXPORT.finditer(text):  # `export * from './m'`, `export * as ns from './m'`
            ns, spec = m.groups()
            out[ns or "*" + spec] = Imported(ns, spec, None) if ns else Imported("*", spec, "*")
        for m in _JS_REQUIRE.finditer(text):
            named, whole, spec = m.groups()
            if whole:
                out[whole] = Imported(whole, spec, None)
            _js_named(named, spec, out)
    return out


def star_modules(imports: dict[str, Imported]) -> list[str]:
    """The modules a file imports every public name of (`from .m import *`, `export * from './m'`)."""
    return [imp.module for imp in imports.values() if imp.name == "*"]


def import_spans(text: str, language: str | None) -> list[tuple[int, int]]:
    """(start, end) of each import statement (those `parse_imports` reads, and other languages' `import`,
    `use`, `#include` lines): text outside them can change without changing the file's imports."""
    text = text[:MAX_SCAN_CHARS]
    patterns = ((_PY_FROM, _PY_IMPORT) if language == "python" else
                (_JS_IMPORT, _JS_REEXPORT, _JS_STAR_EXPORT, _JS_REQUIRE) if language in JS_LANGS else (_OTHER_IMPORT,))
    return sorted((m.start(), m.end()) for rx in patterns for m in rx.finditer(text))


def _js_named(named: str | None, spec: str, out: dict[str, Imported]) -> None:
    for part in (named or "").split(","):
        bits = part.replace(":", " as ").split()
        if bits and bits[0] == "type":
            bits = bits[1:]
        if not bits:
            continue
        local = bits[2] if len(bits) == 3 and bits[1] == "as" else bits[0]
        out[local] = Imported(local, spec, bits[0])


def resolve_module(module: str, current: str, language: str | None, exists: Callable[[str], bool],
                   ending: Callable[[str], list[str]]) -> list[str]:
    """Indexed files a module name points to, from the importing file `current` (repository-relative).
    `exists(path)` says whether a path is indexed; `ending(stem)` lists indexed files whose path without its
    extension ends with `stem` (a/b -> x/a/b.py, a/b/__init__.py is asked as a/b/__init__)."""
    if language == "python":
        dots = len(module) - len(module.lstrip("."))
        rest = module[dots:].replace(".", "/")
        if dots:
            base = posixpath.dirname(current)
            for _ in range(dots - 1):
                base = posixpath.dirname(base)
            stem = posixpath.join(base, rest) if rest else base
            return [p for p in (stem + ".py", stem + "/__init__.py") if stem and exists(p)]
        if not rest:
            return []
        found = ending(rest) + ending(rest + "/__init__")
        found = [p for p in found if p.endswith(".py")]
        # the closest to the importing file first: the most leading folders in common, then the shortest
        return sorted(found, key=lambda p: (-_common(p, current), len(p), p))
    if language in JS_LANGS:
        if not module.startswith("."):
            return []
        stem = posixpath.normpath(posixpath.join(posixpath.dirname(current), module))
        bare = stem[: -len(posixpath.splitext(stem)[1])] if stem.endswith((".js", ".jsx", ".mjs", ".cjs")) else stem
        cands = [stem] + [bare + e for e in JS_EXTS] + [bare + "/index" + e for e in JS_EXTS]
        return [p for p in dict.fromkeys(cands) if exists(p)][:1]
    return []


def _common(a: str, b: str) -> int:
    n = 0
    for x, y in zip(a.split("/")[:-1], b.split("/")[:-1]):
        if x != y:
            break
        n += 1
    return n
