"""What of the repository goes before the file in a fill-in-the-middle prompt, within a token budget.

1. Definitions of the names used at the cursor (`near_names`) that live in other files: resolved through
   the file's imports where the language has them (Python, JavaScript/TypeScript; through a package's
   re-exports, `pkg.Name` from `pkg/__init__.py`'s `from .core import Name`), else by a unique name in
   the repository; rendered as signature + first line of documentation (+ members for classes), never the
   whole body. Then, in a language with imports, the names the file uses but neither defines nor imports
   (an import line being written: `from .utils import |` while the file calls `format_filename`), each
   found by a unique definition in the repository.
2. Then the repository's code chunks most similar (BM25 over identifiers) to the lines around the cursor,
   import statements and links left out of the query, and chunks that are only a file's docstring and
   imports never offered alone. A cursor with only the file's docstring and imports above it is also shown
   how the most similar files begin (their docstring and imports, before their code).
3. Then, in the room left, the regions of other files edited lately (`recent_edits`), most relevant first.

The file being completed never appears. Snippets of one file are joined under its path; the result is at
most `max_snippets` (path, text) pairs, most important first, which is what the engines accept as `context`.
Budgets are in tokens, estimated from characters (no tokenizer on the request path).
"""

from __future__ import annotations

import builtins
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from indexer.workspace.imports import (JS_LANGS, Imported, import_spans, parse_imports, resolve_module,
                                       star_modules)
from indexer.workspace.index import WorkspaceIndex, lines_of, same_family
from indexer.workspace.near_names import NOT_CODE, Ref, local_names, refs_near, used_names
from indexer.workspace.recent_edits import Edit
from indexer.workspace.symbols import Definition, tokens_of

CHARS_PER_TOKEN = 3.5
MAX_DEFINITIONS = 6
REEXPORT_HOPS = 2  # `pkg.Name` through pkg/__init__.py and a subpackage's, never further
QUERY_LINES = 20
SUFFIX_QUERY_LINES = 10
HEADER_CHARS = 400  # most of a similar file's header shown to a cursor in the imports
MAX_HEADER_PREFIX = 16_000  # a longer text before the cursor is not a file's header
MIN_CHUNK_CHARS = 80
IMPORTING = JS_LANGS | {"python"}  # languages whose files name what they import
PY_BUILTINS = frozenset(dir(builtins))
_TEST_PATH = re.compile(r"(^|/)(tests?|__tests__|spec)/|(^|/)test_[^/]*$|_test\.\w+$|\.(test|spec)\.\w+$")


def without_imports(text: str, language: str | None) -> str:
    """`text` with its import statements (`import_spans`) cut out."""
    spans = import_spans(text, language)
    if not spans:
        return text
    out, at = [], 0
    for a, b in spans:
        if a >= at:
            out.append(text[at:a])
            at = b
    out.append(text[at:])
    return "".join(out)


def similar_query(prefix: str, suffix: str = "", language: str | None = None) -> str:
    """The code similar code is looked for by: the last QUERY_LINES lines before the cursor and the first
    SUFFIX_QUERY_LINES after it, import statements left out (every sibling file imports alike; the names
    they bring are the definitions' business). The code after the cursor counts: at the top of a file, the
    lines before it are a docstring and imports, and the file's code is all below."""
    before = without_imports(prefix[-4000:], language).split("\n")[-QUERY_LINES:]
    after = without_imports(suffix[:2000], language).split("\n")[:SUFFIX_QUERY_LINES]
    return "\n".join(before + after)


def _code_only(text: str, language: str | None) -> str:
    """`text` with its strings, comments and import statements blanked (lines and offsets kept)."""
    out = list(text)
    for a, b in [m.span() for m in NOT_CODE.finditer(text)] + import_spans(text, language):
        out[a:b] = (c if c == "\n" else " " for c in text[a:b])
    return "".join(out)


def _only_imports(text: str, language: str | None) -> bool:
    return not _code_only(text, language).strip()


def file_header(text: str, language: str | None, max_chars: int = HEADER_CHARS) -> str:
    """A file's opening docstring, comments and imports: the lines before its first other code."""
    head = text[:max_chars]
    code = _code_only(head, language)
    first = len(code) - len(code.lstrip())
    if first >= len(code):  # nothing but a header within max_chars: up to its last whole line
        return head[: head.rfind("\n")].rstrip() if "\n" in head and len(text) > max_chars else head.rstrip()
    return head[: head.rfind("\n", 0, first) + 1].rstrip()


def is_test_path(rel: str) -> bool:
    """Tests' helpers and fixtures are not what code outside the tests calls."""
    return bool(_TEST_PATH.search(rel))


@dataclass(frozen=True)
class FileNames:
    """What a file says about its names: what it imports (local name -> import) and what it defines."""

    imports: dict[str, Imported]
    local: set[str]
    unresolved: tuple[str, ...] = ()  # names it calls or reads as types without defining or importing them


def known_names(imports: dict[str, Imported], local: set[str], language: str | None) -> set[str]:
    """The names a file need not get from anywhere: its own, its imports', the language's built-ins."""
    return local | set(imports) | (PY_BUILTINS if language == "python" else frozenset())


def file_names(text: str, language: str | None) -> FileNames:
    imports, local = parse_imports(text, language), local_names(text)
    unresolved = ()
    if language in IMPORTING:
        known = known_names(imports, local, language)
        unresolved = tuple(n for n in used_names(text) if n not in known)
    return FileNames(imports, local, unresolved)


@dataclass(frozen=True)
class Snippet:
    path: str  # as shown in the prompt
    text: str
    source: str  # "definition" | "similar" | "open_file"


class _Resolver:
    """Names at the cursor -> definitions in other files, for one file."""

    def __init__(self, index: WorkspaceIndex, rel: str | None, language: str | None, names: FileNames) -> None:
        self.index, self.rel, self.language = index, rel, language
        self.imports = names.imports
        self.in_tests = rel is not None and is_test_path(rel)
        self.local = set(names.local)
        if rel is not None:
            self.local |= {d.name for d in index.definitions_in(rel) if d.kind != "method"}

    def _files(self, module: str) -> list[str]:
        return [p for p in resolve_module(module, self.rel or "", self.language, self.index.has, self.index.ending)
                if p != self.rel]

    def _in_files(self, name: str, files: list[str], hops: int = REEXPORT_HOPS) -> list[Definition]:
        """The definition of `name` in the first of `files` that has it; else where one of them imports it
        from (a package's `__init__.py` re-exporting `from .core import Command`), at most `hops` away."""
        found = [d for d in self.index.named(name) if d.path in files and d.kind != "method"]
        found.sort(key=lambda d: (files.index(d.path), d.kind == "impl", d.start_line))
        if found or hops <= 0:
            return found[:1]
        for f in files:
            imports = self.index.imports_of(f)
            imp = imports.get(name)
            ways = [(imp.module, imp.name)] if imp is not None and imp.name not in (None, "default") else []
            for module, there_name in ways + [(m, name) for m in star_modules(imports)]:
                there = [p for p in resolve_module(module, f, self.language, self.index.has, self.index.ending)
                         if p != self.rel and p != f]
                found = self._in_files(there_name, there, hops - 1) if there else []
                if found:
                    return found
        return []

    def _unique(self, name: str, methods: bool, owner: str | None = None) -> list[Definition]:
        cands = [d for d in self.index.named(name) if d.path != self.rel and (d.kind == "method") == methods
                 and same_family(d.language, self.language) and (self.in_tests or not is_test_path(d.path))]
        if owner is not None:
            owned = [d for d in cands if d.qualname.endswith(f"{owner}.{name}")]
            cands = owned or cands
        if not cands or len({d.path for d in cands}) != 1 or len({d.qualname for d in cands}) != 1 and methods:
            return []
        cands.sort(key=lambda d: (d.kind == "impl", d.start_line))
        return cands[:1]

    def unique(self, name: str) -> list[Definition]:
        """A function or class of that name defined in exactly one other file (not a test's, outside tests)."""
        return [] if name in self.local else self._unique(name, methods=False)

    def _module_of(self, imp: Imported) -> str | None:
        """The module a name imported as a module (or as a submodule: `from pkg import mod`) stands for."""
        if imp.name is None:
            return imp.module
        if self.language == "python":
            sep = "" if imp.module.endswith(".") else "."
            return f"{imp.module}{sep}{imp.name}"
        return None

    def resolve(self, ref: Ref) -> list[Definition]:
        if ref.partial:
            names = [n for n in self.imports if n.startswith(ref.name) and n != ref.name]
            return [d for n in names[:2] for d in self.resolve(Ref(n))]
        if not ref.qualifier:
            if ref.name in self.local:
                return []
            imp = self.imports.get(ref.name)
            if imp is None:  # with explicit imports, a name not imported is local, a builtin, a global or a star's
                if self.language not in IMPORTING:
                    return self._unique(ref.name, methods=False)
                if ref.name in PY_BUILTINS and self.language == "python":
                    return []
                stars = [p for m in star_modules(self.imports) for p in self._files(m)]
                return self._in_files(ref.name, stars) if stars else []
            if imp.name is None:
                return []
            files = self._files(imp.module)
            if not files:  # a package's name, not the repository's
                return []
            return self._in_files(imp.name if imp.name != "default" else ref.name, files) or \
                self._unique(ref.name, methods=False)
        head = ref.qualifier[0]
        imp = self.imports.get(head)
        if imp is not None and head not in self.local:
            module = self._module_of(imp)
            if module is not None:
                mods = [module] + ([module + "." + ".".join(ref.qualifier[1:])] if len(ref.qualifier) > 1 else [])
                for mod in reversed(mods):
                    files = self._files(mod)
                    if files:
                        return self._in_files(ref.name, files)
                return []
        if head in ("self", "this", "cls", "Self"):
            return []
        owner = ref.qualifier[-1] if ref.qualifier[-1][:1].isupper() else None
        return self._unique(ref.name, methods=True, owner=owner)


def definitions_near(index: WorkspaceIndex, rel: str | None, language: str | None, prefix: str, suffix: str,
                     file_text: str | None = None, limit: int = MAX_DEFINITIONS,
                     names: FileNames | None = None) -> list[Definition]:
    """Definitions in other files of the names used at the cursor, most relevant first. `names`: the file's
    names when the caller has them already (else read from `file_text`, else from the prefix and suffix)."""
    if names is None:
        names = file_names(file_text if file_text is not None else prefix + suffix, language)
    resolver = _Resolver(index, rel, language, names)
    out: dict[str, Definition] = {}
    for ref in refs_near(prefix, suffix):
        for d in resolver.resolve(ref):
            if d.path != rel:
                out.setdefault(d.key, d)
        if len(out) >= limit:
            break
    for name in names.unresolved:  # what an import still has to bring (a unique definition, never a guess)
        if len(out) >= limit:
            break
        for d in resolver.unique(name):
            out.setdefault(d.key, d)
    return list(out.values())[:limit]


def _overlaps(spans: list[tuple[str, int, int]], path: str, start: int, end: int) -> bool:
    """Whether lines start..end of `path` overlap a span already shown."""
    return any(p == path and a <= end and start <= b for p, a, b in spans)


def _whole_lines_within(text: str, limit: int) -> str:
    """`text` cut to its whole lines within `limit` characters ("" when its first line is longer)."""
    if len(text) <= limit:
        return text
    return text[: text.rfind("\n", 0, limit)] if "\n" in text[:limit] else ""


def choose(index: WorkspaceIndex, rel: str | None, language: str | None, prefix: str, suffix: str, *,
           tokens: int, definitions: bool = True, similar: bool = True, file_text: str | None = None,
           show: Callable[[str], str] = str, max_snippets: int = 4,
           found: list[Definition] | None = None, names: FileNames | None = None,
           edits: Sequence[Edit] = ()) -> list[Snippet]:
    """The repository's snippets for a cursor (definitions first, then similar code, then the regions of
    other files in `edits`, most relevant first), within `tokens`."""
    budget = int(tokens * CHARS_PER_TOKEN)
    groups: dict[str, list[str]] = {}
    sources: dict[str, str] = {}
    spans: list[tuple[str, int, int]] = []
    used = 0

    def add(path: str, text: str, source: str) -> bool:
        nonlocal used
        if path not in groups and len(groups) >= max_snippets:
            return False
        groups.setdefault(path, []).append(text)
        sources.setdefault(path, source)
        used += len(text) + 2
        return True

    if definitions and budget > 0:
        cap = budget * 2 // 3 if similar else budget
        defs = found if found is not None else definitions_near(index, rel, language, prefix, suffix, file_text,
                                                                names=names)
        for d in defs:
            text = d.render()
            if used + len(text) <= cap and add(d.path, text, "definition"):
                spans.append((d.path, d.start_line, d.end_line))
    if similar and budget - used >= MIN_CHUNK_CHARS:
        terms = set(tokens_of(similar_query(prefix, suffix, language)))
        hits = index.search(terms, k=8, exclude=rel, language=language)
        best = hits[0].score if hits else 0.0
        # writing the docstring or imports: show how files alike begin
        in_header = len(prefix) <= MAX_HEADER_PREFIX and _only_imports(prefix, language)
        for h in hits:
            left = budget - used - 2
            if h.score < 0.4 * best or left < MIN_CHUNK_CHARS:
                break
            if _overlaps(spans, h.path, h.start_line, h.end_line):
                continue
            whole = index.text_of(h.path) or ""
            if in_header and h.path not in groups and h.start_line > 0:  # a chunk from line 0 holds the header
                header = file_header(whole, language)
                if header and len(header) + 2 <= left - MIN_CHUNK_CHARS and add(h.path, header, "similar"):
                    left -= len(header) + 2
            text = lines_of(whole, h.start_line, h.end_line).strip("\n")
            if _only_imports(text, language):
                continue  # a file's docstring and imports: the names they bring are the definitions' business
            text = _whole_lines_within(text, left)
            if len(text.strip()) < MIN_CHUNK_CHARS // 2:
                continue
            if add(h.path, text, "similar"):
                spans.append((h.path, h.start_line, h.end_line))
    for e in edits:
        left = budget - used - 2
        if left < MIN_CHUNK_CHARS:
            break
        whole = index.text_of(e.path) if e.path != rel else None
        if not whole:
            continue
        lo, hi = e.window(whole.count("\n") + 1)
        if _overlaps(spans, e.path, lo, hi):
            continue
        text = _whole_lines_within(lines_of(whole, lo, hi).strip("\n"), left)
        if len(text.strip()) >= MIN_CHUNK_CHARS // 2 and add(e.path, text, "recent_edit"):
            spans.append((e.path, lo, hi))
    return [Snippet(show(p), "\n\n".join(texts), sources[p]) for p, texts in groups.items()]
