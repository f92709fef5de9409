"""The source files of a working tree, with the indexer's path rules: .gitignore/.copilotignore (scoped to
their folders), vendored folders, generated paths (suffixes and `linguist-generated` in .gitattributes),
env files and lockfiles, languages not selected, oversized files. Hidden folders (.git, .venv, .tox, ...)
are not entered; symbolic links are not followed.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from indexer.filters.paths import (
    VENDORED_DIRS,
    IgnoreRules,
    generated_patterns,
    is_env_file,
    is_generated_path,
    is_lockfile,
)
from indexer.languages import language_for_path

SKIP_DIRS = frozenset({"__pycache__", "node_modules"}) | VENDORED_DIRS


class _Rules:
    """Every ignore file met so far, each parsed once and scoped to its folder."""

    def __init__(self) -> None:
        self.parts: list[IgnoreRules] = []

    def __bool__(self) -> bool:
        return bool(self.parts)

    def add(self, path: str, text: str) -> None:
        self.parts.append(IgnoreRules({path: text}))

    def matches(self, rel: str) -> bool:
        return any(r.matches(rel) for r in self.parts)


@dataclass
class WalkStats:
    skipped: Counter = field(default_factory=Counter)  # reason -> files (and folders) left out


def path_reason(rel: str, languages: tuple[str, ...], rules: IgnoreRules | _Rules | None = None,
                linguist=None) -> str | None:
    """Why a repository-relative path is not indexed, or None (the same rules as `indexer.mine.run.Run`)."""
    if is_env_file(rel) or is_lockfile(rel):
        return "generated" if is_lockfile(rel) else "env_file"
    lang = language_for_path(rel)
    if lang is None:
        return "not_source"
    if lang not in languages:
        return "language_not_selected"
    parts = rel.split("/")
    if any(p in SKIP_DIRS or p.startswith(".") for p in parts[:-1]):
        return "vendored"
    if rules is not None and rules.matches(rel):
        return "ignored"
    if is_generated_path(rel, linguist):
        return "generated"
    return None


def _read_small(path: str, limit: int = 1 << 20) -> str:
    try:
        with open(path, "rb") as fh:
            return fh.read(limit).decode("utf-8", "replace")
    except OSError:
        return ""


def source_files(root: Path, languages: tuple[str, ...], max_file_bytes: int,
                 stats: WalkStats | None = None) -> Iterator[tuple[str, int]]:
    """(repository-relative POSIX path, size in bytes) of every file to index, folder by folder."""
    stats = stats if stats is not None else WalkStats()
    rules = _Rules()
    attrs = os.path.join(root, ".gitattributes")
    linguist = generated_patterns(_read_small(attrs)) if os.path.isfile(attrs) else None
    stack = [""]
    while stack:
        rel_dir = stack.pop()
        folder = os.path.join(root, rel_dir) if rel_dir else str(root)
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            stats.skipped["unreadable"] += 1
            continue
        for name in (".gitignore", ".copilotignore"):
            if any(e.name == name and e.is_file(follow_symlinks=False) for e in entries):
                rules.add(f"{rel_dir}/{name}" if rel_dir else name, _read_small(os.path.join(folder, name)))
        subdirs: list[str] = []
        for e in entries:
            rel = f"{rel_dir}/{e.name}" if rel_dir else e.name
            try:
                if e.is_dir(follow_symlinks=False):
                    if e.name.startswith(".") or e.name in SKIP_DIRS:
                        stats.skipped["vendored_or_hidden_dir"] += 1
                    elif rules and rules.matches(rel + "/"):
                        stats.skipped["ignored_dir"] += 1
                    else:
                        subdirs.append(rel)
                    continue
                if not e.is_file(follow_symlinks=False):
                    continue
                reason = path_reason(rel, languages, rules, linguist)
                if reason is None:
                    size = e.stat(follow_symlinks=False).st_size
                    if size > max_file_bytes:
                        reason = "oversized"
                    else:
                        yield rel, size
                        continue
            except OSError:
                reason = "unreadable"
            if reason != "not_source":
                stats.skipped[reason] += 1
        stack.extend(reversed(subdirs))
