"""File extension -> tree-sitter language, cached parsers, and the per-language query files.

One query file per language lives in ``indexer/queries/<language>.scm``. Its captures:
``@definition.<kind>`` (a function/method/class/... node), ``@name`` (that definition's name),
``@docstring`` (Python: a body's leading string) and ``@comment`` (comment nodes; a block of them
right above a definition is its documentation).
"""

from __future__ import annotations

import functools
import importlib
from pathlib import Path, PurePosixPath

from tree_sitter import Language, Parser, Query

from copilot.core.types import UserInputError

QUERIES_DIR = Path(__file__).parent / "queries"

SUPPORTED_LANGUAGES: tuple[str, ...] = (
    "python", "javascript", "typescript", "tsx", "go", "java", "rust", "c", "cpp",
)

EXTENSIONS: dict[str, str] = {
    ".py": "python",
    ".js": "javascript", ".mjs": "javascript", ".cjs": "javascript", ".jsx": "javascript",
    ".ts": "typescript", ".mts": "typescript", ".cts": "typescript",
    ".tsx": "tsx",
    ".go": "go",
    ".java": "java",
    ".rs": "rust",
    ".c": "c", ".h": "c",
    ".cc": "cpp", ".cpp": "cpp", ".cxx": "cpp", ".hpp": "cpp", ".hh": "cpp", ".hxx": "cpp",
}

# Short names accepted by `--languages py,ts,...`.
ALIASES: dict[str, str] = {
    "py": "python", "js": "javascript", "jsx": "javascript", "ts": "typescript",
    "golang": "go", "rs": "rust", "c++": "cpp", "cxx": "cpp", "cc": "cpp", "h": "c",
}

# language -> (grammar module, function returning the language pointer)
_GRAMMARS: dict[str, tuple[str, str]] = {
    "python": ("tree_sitter_python", "language"),
    "javascript": ("tree_sitter_javascript", "language"),
    "typescript": ("tree_sitter_typescript", "language_typescript"),
    "tsx": ("tree_sitter_typescript", "language_tsx"),
    "go": ("tree_sitter_go", "language"),
    "java": ("tree_sitter_java", "language"),
    "rust": ("tree_sitter_rust", "language"),
    "c": ("tree_sitter_c", "language"),
    "cpp": ("tree_sitter_cpp", "language"),
}


def language_for_path(path: str | Path) -> str | None:
    """The language of a file from its extension, or None when we do not parse it."""
    return _language_for(str(path))


@functools.lru_cache(maxsize=1 << 16)
def _language_for(path: str) -> str | None:  # the same paths are asked about in commit after commit
    return EXTENSIONS.get(PurePosixPath(path).suffix.lower())


def normalize_language(name: str) -> str:
    """Canonical language name for a user-given one (``py`` -> ``python``); UserInputError if unknown."""
    key = name.strip().lower()
    key = ALIASES.get(key, key)
    if key not in SUPPORTED_LANGUAGES:
        raise UserInputError(
            f"unknown language {name!r}; supported: {', '.join(SUPPORTED_LANGUAGES)} (or py, js, ts, rs, c++)"
        )
    return key


def parse_language_list(spec: str | None) -> tuple[str, ...]:
    """``"py,ts"`` -> ``("python", "typescript")``; None/empty -> all languages. ``ts`` also enables tsx."""
    if not spec:
        return SUPPORTED_LANGUAGES
    out: list[str] = []
    for part in spec.split(","):
        if not part.strip():
            continue
        lang = normalize_language(part)
        for item in (lang, "tsx") if lang == "typescript" else (lang,):
            if item not in out:
                out.append(item)
    return tuple(out)


def _check(language: str) -> None:
    if language not in _GRAMMARS:
        raise UserInputError(f"unsupported language {language!r}; supported: {', '.join(SUPPORTED_LANGUAGES)}")


@functools.cache
def get_language(language: str) -> Language:
    """The tree-sitter Language for a canonical language name."""
    _check(language)
    module_name, func = _GRAMMARS[language]
    module = importlib.import_module(module_name)
    return Language(getattr(module, func)())


@functools.cache
def get_parser(language: str) -> Parser:
    """A cached parser. Parsers are not thread-safe: use one thread per parser (the indexer is single-threaded)."""
    return Parser(get_language(language))


@functools.cache
def query_source(language: str) -> str:
    _check(language)
    return (QUERIES_DIR / f"{language}.scm").read_text(encoding="utf-8")


@functools.cache
def get_query(language: str) -> Query:
    """The compiled definitions/docstring query of a language."""
    return Query(get_language(language), query_source(language))
