"""The repository context of FIM pairs: what the language server would put before the file at the pair's
cursor (`indexer.workspace.repo_context.choose`: definitions of the names used there from other files, then
similar code, then the other files' lines the pair's commit added, as the recently edited regions), chosen
from the repository *as it was at the pair's commit*, never a later one.

One :class:`PairContext` per repository follows the walk: a `WorkspaceIndex` of texts in memory, brought to a
commit's tree only when that commit gave pairs (history pairs: the commit's tree; HEAD pairs: HEAD's), by the
files that differ from the tree it holds (`git diff-tree` between the two commits; blobs read through git,
never the working tree). Each file version is read, cleaned (the miner's content rules: secrets redacted,
emails masked) and scanned once while it stays in the tree; versions the miner has just cleaned are handed
over (`offer`) instead of being read again. The pair's own file never appears in its context.

The server reads the file's imports, own definitions and the names it uses without either from the whole
buffer; a pair reads them from its file without the middle (the code not written yet at the cursor), from
what each file version holds and where (read once), exactly as reading that text again would. A row's
context is a JSON list of {path, text, source} (repository-relative paths, as evaluation passes the row's
path), "[]" when nothing was found.
"""

from __future__ import annotations

import json
import re
from bisect import bisect_left
from collections.abc import Callable
from typing import Any

from indexer.git.repo import (
    MODE_SUBMODULE,
    MODE_SYMLINK,
    Repo,
    TreeEntry,
    tree_changes,
    tree_files,
)
from indexer.mine.config import IndexConfig
from indexer.mine.run import clean_version
from indexer.pairs import FIM_KINDS
from indexer.workspace.imports import import_spans, parse_imports
from indexer.workspace.index import Limits, WorkspaceIndex
from indexer.workspace.near_names import SCAN_CHARS, local_name_spans, name_uses
from indexer.workspace.recent_edits import CommitEdits, Edit
from indexer.workspace.repo_context import IMPORTING, FileNames, choose, file_names, known_names

Accept = Callable[[str], bool]  # whether a path is mined at all (the walk's path rules)


class PairContext:
    """The repository at the commit being mined, for the context of its FIM pairs."""

    def __init__(self, repo: Repo, config: IndexConfig, accept: Accept) -> None:
        self.repo, self.config, self.accept = repo, config, accept
        self.tokens = config.pairs.context_tokens_repo
        self.limits = Limits(max_file_bytes=config.max_file_bytes, languages=config.languages)
        self.index = WorkspaceIndex.from_texts((), self.limits)
        self.blobs: dict[str, str] = {}  # path -> blob the index holds it at
        self.commit: str | None = None  # the commit whose tree the index holds (None: a tree given as entries)
        self._offered: dict[str, tuple[str | None, Any]] = {}  # blob -> (cleaned text, its tree), from the miner
        self._names: dict[str, _Names] = {}  # path -> what its current text imports and defines, and where
        self.syncs = 0
        self.versions_read = 0  # file versions read and cleaned here (not handed over by the miner)
        self.filled = 0  # FIM rows given a context
        self.non_empty = 0  # ... of which with at least one snippet

    def offer(self, blob: str, text: str | None, tree: Any = None) -> None:
        """A file version the miner has just read and cleaned (None: unusable), with its syntax tree when the
        miner parsed it: not read or parsed again here."""
        self._offered[blob] = (text, tree)

    # ------------------------------------------------------------------ following the walk
    def at_commit(self, sha: str) -> None:
        """Bring the index to `sha`'s tree."""
        if self.commit == sha:
            return
        if self.commit is None:
            self.at_tree(list(tree_files(self.repo, sha)))
        else:
            self._apply(tree_changes(self.repo, self.commit, sha))
        self.commit = sha

    def at_tree(self, entries: list[TreeEntry]) -> None:
        """Bring the index to a tree given as its entries (HEAD's, listed by the walk already)."""
        tree = {e.path: e.sha for e in entries if e.type == "blob"
                and e.mode not in (MODE_SYMLINK, MODE_SUBMODULE) and e.size <= self.config.max_file_bytes}
        changes: list[tuple[str, str | None, str]] = [(p, None, "") for p in self.blobs if p not in tree]
        changes += [(p, sha, "") for p, sha in tree.items() if self.blobs.get(p) != sha]
        self._apply(changes)
        self.commit = None

    def _apply(self, changes: list[tuple[str, str | None, str]]) -> None:
        self.syncs += 1
        todo: list[tuple[str, str]] = []
        for path, blob, mode in changes:
            if blob is None or mode in (MODE_SYMLINK, MODE_SUBMODULE) or not self.accept(path):
                if self.blobs.pop(path, None) is not None:
                    self.index.remove(path)
                continue
            if self.blobs.get(path) != blob:
                todo.append((path, blob))
        texts = {b: self._offered[b] for _, b in todo if b in self._offered}
        unread = list(dict.fromkeys(b for _, b in todo if b not in texts))
        if unread:
            for sha, data, _ in self.repo.blobs().read_many(unread, self.config.max_file_bytes):
                texts[sha] = (clean_version(data, self.config).text, None)
                self.versions_read += 1
        self._offered.clear()  # what was not wanted now is read again if a later tree holds it
        for path, blob in todo:
            text, tree = texts.get(blob, (None, None))
            size = len(text.encode("utf-8", "surrogatepass")) if text is not None else 0
            if text is None or (path not in self.blobs and self.index.bytes + size > self.limits.max_bytes):
                if self.blobs.pop(path, None) is not None:
                    self.index.remove(path)
                continue
            self.blobs[path] = blob
            if not self.index.set_buffer(path, text, tree):
                self.blobs.pop(path, None)

    # ------------------------------------------------------------------ the pairs
    def fill(self, rows: list[dict[str, Any]], *, commit: str | None = None,
             entries: list[TreeEntry] | None = None, edits: list[Edit] | None = None) -> None:
        """Set the "context" of the FIM rows among `rows`, all mined at `commit` (or at the tree `entries`);
        `edits`: the regions the commit changed (a row's context shows those of other files where room is left)."""
        fim = [r for r in rows if r["kind"] in FIM_KINDS]
        if not fim or self.tokens <= 0:
            return
        if entries is not None:
            self.at_tree(entries)
        elif commit is not None:
            self.at_commit(commit)
        commit_edits = CommitEdits(edits) if edits else None
        for row in fim:
            row["context"] = self.context_of(row, commit_edits)

    def context_of(self, row: dict[str, Any], edits: CommitEdits | None = None) -> str:
        """The JSON context of one FIM row at the tree the index holds."""
        rel, language, prefix, middle, suffix = row["path"], row["language"], row["prefix"], row["middle"], row["suffix"]
        text = self.index.text_of(rel)
        at = text.find(prefix + middle + suffix) if text else -1
        if at < 0:  # the file is not at hand (left out of the index): what the pair holds
            file_text, names = prefix + suffix, None
        else:
            at += len(prefix)
            file_text = text[:at] + text[at + len(middle):]
            names = self._names_of(rel, text, language, at, len(middle))
        snippets = choose(self.index, rel, language, prefix, suffix, tokens=self.tokens, file_text=file_text,
                          names=names, edits=edits.nearest(rel) if edits is not None else ())
        snippets = [s for s in snippets if s.path != rel]  # never the pair's own file (choose never gives it)
        self.filled += 1
        self.non_empty += bool(snippets)
        return json.dumps([{"path": s.path, "text": s.text, "source": s.source} for s in snippets],
                          ensure_ascii=False)

    def _names_of(self, rel: str, text: str, language: str, at: int, n: int) -> FileNames | None:
        """What the file without the middle `text[at:at + n]` imports, defines and uses without either, as
        `file_names` reads it from that text, from the whole file's (read once per file version): its imports
        when the middle's lines hold no import statement, its definitions less those only the middle makes,
        the names it uses less those only the middle uses. None when the middle touches an import (choose then
        reads the file without the middle)."""
        names = self._names.get(rel)
        if names is None or names.text is not text:
            names = self._names[rel] = _Names(text, language)
        first = text.rfind("\n", 0, at) + 1
        last = text.find("\n", at + n)
        last = len(text) if last < 0 else last
        if any(a <= last and first < b for a, b in names.imports):
            return None
        gone = {name for name, spans in names.defined.items() if all(a < at + n and at < b for a, b in spans)}
        local = names.local - gone if gone else names.local
        if language not in IMPORTING:
            return FileNames(names.parsed, local)
        if names.uses is None or not _cut_cleanly(text, at, n, first, names.uses.not_code):
            return file_names(text[:at] + text[at + n:], language)
        return FileNames(names.parsed, local, names.unresolved(local, at, at + n))


class _Names:
    """One file version's imports, definitions and names used, with where they are written."""

    def __init__(self, text: str, language: str) -> None:
        self.text, self.language = text, language
        self.parsed = parse_imports(text, language)
        # only where imports name what the file uses: another language's `import`/`use` lines change nothing
        # `file_names` reads, so a middle touching them needs no second reading
        self.imports = import_spans(text, language) if language in IMPORTING else []
        self.defined: dict[str, list[tuple[int, int]]] = {}
        for a, b, name in local_name_spans(text):
            self.defined.setdefault(name, []).append((a, b))
        self.local = set(self.defined)
        self.uses = name_uses(text) if language in IMPORTING and len(text) <= SCAN_CHARS else None

    def unresolved(self, local: set[str], start: int, end: int) -> tuple[str, ...]:
        """The names used outside text[start:end], assigned nowhere outside it, and neither defined (`local`),
        imported nor built in: `file_names(...).unresolved` of the text without that span."""
        assert self.uses is not None
        known = known_names(self.parsed, local, self.language)
        found: list[tuple[int, str]] = []
        for name, offsets in self.uses.used.items():
            if name in known:
                continue
            outside = [p for p in offsets if not start <= p < end]
            if outside and all(start <= p < end for p in self.uses.assigned.get(name, ())):
                found.append((outside[0], name))
        return tuple(name for _, name in sorted(found))


_OPENS = re.compile(r"""["'`#]|/[/*]""")  # where a string or a comment can open
_WORD = re.compile(r"[\w$]")
_NON_SPACE = re.compile(r"\S")
_DEFINING = re.compile(r"\b(?:def|class|function|func|fn|struct|interface|enum|trait|type)$")
_ANNOTATING = re.compile(r"[\w$]\s*:[^=\n]*$|=$")  # `name: T|` or `name =|`: an assignment read across


def _side(c: str) -> str:
    return "w" if _WORD.match(c) else c if c == "." else " "


def _cut_cleanly(text: str, at: int, n: int, first: int, not_code: list[tuple[int, int]]) -> bool:
    """Whether taking text[at:at + n] out changes no name's reading but those the span holds, so the names
    the whole file uses (`name_uses`) tell what the file without it uses: no string or comment crosses either
    end, none opens in the span without closing in it, no name is cut in two or joined, and no call,
    attribute or assignment reads across the cut."""
    end = at + n
    i = bisect_left(not_code, (at, -1))  # the first string or comment starting in the span or after it
    if i and not_code[i - 1][1] >= at:
        return False  # a string or comment runs into the span or right up to it
    pos = at
    while i < len(not_code) and not_code[i][0] <= end:
        a, b = not_code[i]
        if a == end or b > end or _OPENS.search(text, pos, a):
            return False  # one runs out of the span or from its end, or an unclosed quote before it
        pos, i = b, i + 1
    if _OPENS.search(text, pos, end):
        return False  # an unclosed quote in the span: without it, the line may read differently
    if at and (text[at - 1] == "/" or _WORD.match(text, at - 1) and (_WORD.match(text, at) or _WORD.match(text, end))):
        return False  # a name cut in two or joined with the suffix's, or a comment opened across the cut
    if end < len(text) and _WORD.match(text, end) and n and _side(text[at - 1] if at else "\n") != _side(text[end - 1]):
        return False  # the suffix's first name reads as an attribute on one side of the cut only
    if _ANNOTATING.search(text[first:at].rstrip()):
        return False  # an assignment or annotation being written on the cursor's line
    last = at  # the end of the text before the cut, less its trailing whitespace (no copy of it)
    while last and text[last - 1].isspace():
        last -= 1
    if _DEFINING.search(text, max(0, last - 16), last):
        return False  # `def |`: what follows the cut is what it defines
    if last and _WORD.match(text, last - 1):
        opens = (_first_char(text, at, end), _first_char(text, end, len(text)))
        if any(c and c in "(:=" for c in opens):
            return False  # a name's call or assignment reads across the cut
    return True


def _first_char(text: str, start: int, end: int) -> str:
    """The first character of text[start:end] that is not whitespace ('' when none)."""
    m = _NON_SPACE.search(text, start, end)
    return m.group() if m else ""
