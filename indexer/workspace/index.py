"""`WorkspaceIndex`: a working tree's definitions by name and by file, and its chunks in a BM25 index.

Built once (`build`: walk, read, filter, scan; bounded by a file count and a byte total, with a note when a
bound is hit) and then kept current file by file (`update` from disk or from an editor's buffer, `remove`).
An index without a root (`from_texts`) holds (path, text) pairs in memory: a git tree at a commit, which the
indexer's pairs read their repository context from.
Every public method takes the index's lock, so one thread may build or update while others read; scanning a
file happens outside the lock. Paths are repository-relative POSIX paths.
"""

from __future__ import annotations

import os
import threading
import time
from array import array
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from indexer.filters.content import (
    decode_utf8,
    is_binary,
    is_generated_text,
    is_minified,
)
from indexer.languages import (
    SUPPORTED_LANGUAGES,
    language_for_path,
    parse_language_list,
)
from indexer.workspace.bm25 import BM25
from indexer.workspace.imports import Imported, parse_imports
from indexer.workspace.symbols import Definition, scan
from indexer.workspace.walk import WalkStats, path_reason, source_files

# Languages whose code reads alike (a TypeScript file may call into JavaScript, C++ into C headers).
FAMILY = {"typescript": "js", "tsx": "js", "javascript": "js", "c": "c", "cpp": "c"}


def lines_of(text: str, start: int, end: int) -> str:
    """Lines start..end (0-based, inclusive) of `text`."""
    return "\n".join(text.split("\n")[start: end + 1])


def same_family(a: str | None, b: str | None) -> bool:
    return FAMILY.get(a or "", a) == FAMILY.get(b or "", b)


@dataclass(frozen=True)
class Limits:
    max_files: int = 20_000
    max_bytes: int = 256 << 20
    max_file_bytes: int = 1 << 20  # the indexer's IndexConfig.max_file_bytes
    languages: tuple[str, ...] = SUPPORTED_LANGUAGES


def limits_for(context: Any) -> Limits:
    """Limits from the `[context]` settings (`copilot.core.settings.ContextSettings`); an unknown language is a
    UserInputError."""
    langs = parse_language_list(",".join(context.languages)) if context.languages else SUPPORTED_LANGUAGES
    return Limits(max_files=context.max_files, max_bytes=context.max_mb << 20, languages=langs)


@dataclass
class _File:
    fid: int
    language: str
    size: int
    definitions: list[Definition]
    chunks: list[int]
    imports: dict[str, Imported] | None = None  # what it imports, read at the first question (re-exports are rare)


@dataclass(frozen=True)
class ChunkHit:
    path: str
    start_line: int
    end_line: int
    score: float


@dataclass
class BuildReport:
    files: int = 0
    bytes: int = 0
    seconds: float = 0.0
    skipped: Counter = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)  # bounds hit
    stopped: bool = False  # should_stop said so


class WorkspaceIndex:
    def __init__(self, root: str | Path | None, limits: Limits | None = None) -> None:
        self.root = Path(root).resolve() if root is not None else None  # None: texts in memory only
        self.limits = limits or Limits()
        self.report = BuildReport()
        self._lock = threading.RLock()
        self._files: dict[str, _File] = {}
        self._fids: dict[str, int] = {}
        self._paths: list[str] = []
        self._by_name: dict[str, list[Definition]] = {}
        self._by_stem: dict[str, set[str]] = {}
        self._overlay: dict[str, str] = {}  # path -> editor buffer text it was indexed from
        self._bm25 = BM25()
        self._c_start = array("I")
        self._c_end = array("I")
        self.bytes = 0
        self._symbols = 0
        self.generation = 0  # bumped by every change

    # ------------------------------------------------------------------ building
    @classmethod
    def from_texts(cls, files: Iterable[tuple[str, str]], limits: Limits | None = None) -> WorkspaceIndex:
        """An index of (repository-relative path, text) pairs kept in memory, without a working tree (a git
        tree at a commit). The caller applies its path rules; the content rules and the file limit apply here.
        `set_buffer` and `remove` keep it current."""
        index = cls(None, limits)
        for rel, text in files:
            index.set_buffer(rel, text)
        return index

    def build(self, should_stop: Callable[[], bool] | None = None) -> BuildReport:
        """Walk the tree and index every file the indexer's rules keep, within the limits."""
        if self.root is None:
            raise ValueError("an index of texts in memory has no tree to walk")
        t0 = time.perf_counter()
        rep = self.report = BuildReport()
        lim = self.limits
        walk = WalkStats()
        for rel, size in source_files(self.root, lim.languages, lim.max_file_bytes, walk):
            if should_stop is not None and should_stop():
                rep.stopped = True
                break
            if rep.files >= lim.max_files:
                rep.notes.append(f"the repository index stopped at {lim.max_files} files (context.max_files): "
                                 "files beyond it give no context")
                break
            if rep.bytes + size > lim.max_bytes:
                rep.notes.append(f"the repository index stopped at {rep.bytes / 2**20:.0f} MiB of source "
                                 f"(context.max_mb): files beyond it give no context")
                break
            if self.update(rel, skipped=rep.skipped):
                rep.files += 1
                rep.bytes += size
        rep.skipped.update(walk.skipped)
        rep.seconds = time.perf_counter() - t0
        return rep

    def rel_path(self, path: str | Path) -> str | None:
        """The repository-relative path of a file under the root, else None."""
        if self.root is None:
            return None
        try:
            rel = Path(os.path.abspath(path)).relative_to(self.root)
        except ValueError:
            try:
                rel = Path(path).resolve().relative_to(self.root)
            except (ValueError, OSError):
                return None
        return rel.as_posix()

    def indexable(self, rel: str) -> bool:
        return path_reason(rel, self.limits.languages) is None

    def update(self, rel: str, text: str | None = None, *, skipped: Counter | None = None, tree: Any = None) -> bool:
        """(Re-)index one file: from `text` (an editor's buffer) or else from disk. A file that is gone or
        that the content rules drop leaves the index. Returns whether the file is indexed now. `tree`: the
        syntax tree of `text` when the caller has it."""
        language = language_for_path(rel)
        if language is None or language not in self.limits.languages:
            return False
        reason = None
        if text is None:
            try:
                if self.root is None:
                    raise FileNotFoundError(rel)
                data = (self.root / rel).read_bytes()
            except OSError:
                self.remove(rel)
                return False
            size = len(data)
            decoded = None if is_binary(data) else decode_utf8(data)
            if decoded is None:
                reason = "binary"
            text = decoded
        else:
            size = len(text.encode("utf-8", "surrogatepass"))
        if reason is None and size > self.limits.max_file_bytes:
            reason = "oversized"
        if reason is None and (is_generated_text(text) or is_minified(text)):
            reason = "generated"
        if reason is None:
            with self._lock:
                if rel not in self._files and len(self._files) >= self.limits.max_files:
                    reason = "over_limit"
        if reason is not None:
            if skipped is not None:
                skipped[reason] += 1
            self.remove(rel)
            return False
        try:
            scanned = scan(text, language, rel, tree)
        except Exception:  # noqa: BLE001 - a file tree-sitter cannot take is left out, never fatal
            if skipped is not None:
                skipped["unparsable"] += 1
            self.remove(rel)
            return False
        with self._lock:
            self._drop(rel)
            fid = self._fids.setdefault(rel, len(self._paths))
            if fid == len(self._paths):
                self._paths.append(rel)
            entry = _File(fid, language, size, scanned.definitions, [])
            for ch in scanned.chunks:
                entry.chunks.append(self._bm25.add(fid, ch.tokens))
                self._c_start.append(ch.start_line)
                self._c_end.append(ch.end_line)
            for d in scanned.definitions:
                self._by_name.setdefault(d.name, []).append(d)
            self._by_stem.setdefault(_stem_key(rel), set()).add(rel)
            self._files[rel] = entry
            self.bytes += size
            self._symbols += len(scanned.definitions)
            self.generation += 1
        return True

    def set_buffer(self, rel: str, text: str, tree: Any = None) -> bool:
        """Index an editor's unsaved buffer for `rel` (chunks are then read from this text, not the disk)."""
        ok = self.update(rel, text, tree=tree)
        with self._lock:
            if ok:
                self._overlay[rel] = text
            else:
                self._overlay.pop(rel, None)
        return ok

    def reload(self, rel: str) -> bool:
        """Index `rel` from disk again (saved, closed, or changed outside the editor)."""
        with self._lock:
            self._overlay.pop(rel, None)
        return self.update(rel)

    def remove(self, rel: str) -> None:
        with self._lock:
            if self._drop(rel):
                self.generation += 1
            self._overlay.pop(rel, None)

    def _drop(self, rel: str) -> bool:
        old = self._files.pop(rel, None)
        if old is None:
            return False
        for cid in old.chunks:
            self._bm25.remove(cid)
        for d in old.definitions:
            same = self._by_name.get(d.name)
            if same is not None:
                same[:] = [x for x in same if x.path != rel]
                if not same:
                    del self._by_name[d.name]
        stems = self._by_stem.get(_stem_key(rel))
        if stems is not None:
            stems.discard(rel)
        self.bytes -= old.size
        self._symbols -= len(old.definitions)
        self._bm25.maybe_compact()
        return True

    # ------------------------------------------------------------------ reading
    def has(self, rel: str) -> bool:
        with self._lock:
            return rel in self._files

    def ending(self, stem: str) -> list[str]:
        """Indexed files whose path without extension is `stem` or ends with `/stem`."""
        with self._lock:
            cands = list(self._by_stem.get(stem.rsplit("/", 1)[-1], ()))
        return sorted(p for p in cands if (q := os.path.splitext(p)[0]) == stem or q.endswith("/" + stem))

    def named(self, name: str) -> list[Definition]:
        with self._lock:
            return list(self._by_name.get(name, ()))

    def definitions_in(self, rel: str) -> list[Definition]:
        with self._lock:
            entry = self._files.get(rel)
            return list(entry.definitions) if entry is not None else []

    def imports_of(self, rel: str) -> dict[str, Imported]:
        """What an indexed file imports (local name -> import), read once per indexed version."""
        with self._lock:
            entry = self._files.get(rel)
            if entry is None:
                return {}
            if entry.imports is not None:
                return entry.imports
        found = parse_imports(self.text_of(rel) or "", entry.language)
        with self._lock:
            entry.imports = found
        return found

    def language_of(self, rel: str) -> str | None:
        with self._lock:
            entry = self._files.get(rel)
            return entry.language if entry is not None else None

    def search(self, terms: set[str], k: int = 4, exclude: str | None = None,
               language: str | None = None) -> list[ChunkHit]:
        """The `k` chunks most similar to `terms`, not of `exclude`, of `language`'s family when given."""
        with self._lock:
            skip = self._fids.get(exclude) if exclude is not None else None
            hits = self._bm25.search(terms, k * 3 if language else k, skip_owner=skip)
            out = []
            for h in hits:
                path = self._paths[self._bm25.owner[h.chunk]]
                entry = self._files.get(path)
                if language is None or (entry is not None and same_family(entry.language, language)):
                    out.append(ChunkHit(path, self._c_start[h.chunk], self._c_end[h.chunk], h.score))
            return out[:k]

    def text_of(self, rel: str) -> str | None:
        """A file's text as indexed (its buffer, else the disk); None when there is none."""
        with self._lock:
            text = self._overlay.get(rel)
        if text is None and self.root is not None:
            try:
                text = (self.root / rel).read_text(encoding="utf-8", errors="replace")
            except OSError:
                return None
        return text

    def summary(self) -> dict:
        with self._lock:
            return {"files": len(self._files), "symbols": self._symbols,
                    "chunks": len(self._bm25), "bytes": self.bytes}


def _stem_key(rel: str) -> str:
    return os.path.splitext(rel.rsplit("/", 1)[-1])[0]
