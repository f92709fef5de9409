"""Explanation planning (torch-free): which sections `copilot explain` and the engines explain — an overview of
the file, then each top-level function/class (none for a file with one: the overview covers it), or just one
named symbol. The overview's prompt names the sections that follow, so it does not repeat them. `copilot explain` validates
--symbol with it before any engine loads."""

from __future__ import annotations

from typing import Iterator

from copilot.core.settings import Settings
from copilot.core.types import UserInputError


def explain_sections(source: str, path: str, settings: Settings, symbol: str | None = None
                     ) -> Iterator[tuple[str | None, str, str | None, bool]]:
    """(symbol or None for the overview, code, language, truncated) for each section of an explanation."""
    from indexer.extract import extract_units
    from indexer.languages import language_for_path

    es = settings.explain
    language = language_for_path(path)
    units = []
    if language:
        try:
            units = extract_units(source, language, path, top_level_only=symbol is None)
        except Exception:  # a parser failure must not stop the overview
            units = []
    if symbol:
        matches = [u for u in units if u.name == symbol or u.qualname == symbol]
        if not matches:
            known = ", ".join(sorted({u.qualname for u in units})[:15]) or "none found"
            raise UserInputError(f"no function or class named '{symbol}' in {path} (known: {known})")
        u = matches[0]
        yield u.qualname, u.text[: es.max_input_chars], language, len(u.text) > es.max_input_chars
        return
    truncated = len(source) > es.max_input_chars
    yield None, source[: es.max_input_chars], language, truncated
    if len(units) <= 1:
        return  # one function or class: its section would repeat the overview, which already covers it
    for u in units[: es.max_symbols]:
        yield u.qualname, u.text[: es.max_input_chars], language, len(u.text) > es.max_input_chars


def later_sections(sections) -> tuple[str, ...]:
    """The symbols explained after the overview: the overview's prompt names them so it does not repeat them."""
    return tuple(sym for sym, *_ in sections if sym)
