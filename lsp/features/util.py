"""Helpers shared by the feature modules: plain data from pygls' parsed params, document access."""

from __future__ import annotations

from typing import Any

from pygls.uris import to_fs_path


def plain(value: Any) -> Any:
    """pygls gives unknown params as namedtuples: turn them (recursively) into dicts/lists."""
    if hasattr(value, "_asdict"):
        return {k: plain(v) for k, v in value._asdict().items()}
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if hasattr(value, "__attrs_attrs__"):
        from lsprotocol import converters

        return converters.get_converter().unstructure(value)
    return value


def open_document(ls: Any, uri: Any):
    """The open document for `uri`, or None (never reads unopened files from disk)."""
    if not isinstance(uri, str):
        return None
    docs = ls.workspace.text_documents
    doc = docs.get(uri)
    if doc is None:
        from urllib.parse import unquote

        doc = docs.get(unquote(uri))
    return doc


def doc_path(uri: str) -> str | None:
    try:
        return to_fs_path(uri)
    except Exception:  # noqa: BLE001
        return None


def as_position(value: Any) -> tuple[int, int] | None:
    v = plain(value)
    if isinstance(v, dict) and isinstance(v.get("line"), int) and isinstance(v.get("character"), int):
        return v["line"], v["character"]
    return None


def as_range(value: Any) -> tuple[tuple[int, int], tuple[int, int]] | None:
    v = plain(value)
    if isinstance(v, dict):
        s, e = as_position(v.get("start")), as_position(v.get("end"))
        if s and e:
            return (s, e) if s <= e else (e, s)
    return None
