"""Dating each line of a file at HEAD: ``git blame`` (:func:`blame_lines`) or, for a linear history walked
from its root, the walk's own diff hunks (:class:`LineOwners`, no blame per file)."""

from __future__ import annotations

from copilot.core.git import run_git
from indexer.git.history import BIG_FILE_DIFF_BYTES, CommitInfo, FileChange
from indexer.git.repo import Repo

_EMPTY_BLOB = "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"


def blame_lines(repo: Repo, path: str) -> list[str]:
    """The commit that last touched each line (0-based) of ``path`` at HEAD (``git blame --porcelain``)."""
    if repo.head is None:
        return []
    proc = run_git(repo.git_dir, "blame", "--porcelain", repo.head, "--", path)
    if proc.returncode != 0:
        return []
    out: list[str] = []
    for line in proc.stdout.split(b"\n"):
        if len(line) > 41 and line[40:41] == b" " and not line.startswith(b"\t"):
            parts = line.split()
            if len(parts) >= 3 and len(parts[0]) == 40:
                final = int(parts[2]) - 1
                if final >= len(out):
                    out.extend([""] * (final + 1 - len(out)))
                out[final] = parts[0].decode()
    return out


def line_count(data: bytes) -> int:
    """Lines of a file as git counts them (a last line without a newline is a line)."""
    return data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)


class LineOwners:
    """The commit that last changed each line of each file, worked out from the history walk's diff hunks as
    it goes: what ``git blame`` answers at HEAD, without a blame (a walk of the history) per file.

    Only for a linear history walked from its single root commit (:meth:`applicable`): then every change of
    every file passes through :meth:`change`, in order. Each step checks that the change starts from the
    version tracked (blob shas); a file whose chain breaks (binary diff, a commit skipped on a missing object,
    an unexpected blob) is dropped, and :meth:`lines` says None for it: the caller falls back to ``git blame``.
    A file present in the root commit is read (one ``cat-file`` answer) when a commit first changes it, and
    checked to be the root's version; all its lines start as the root commit's."""

    def __init__(self, repo: Repo, root: str, paths=None):
        self._repo = repo
        self._root = root
        self._wanted = paths  # predicate on a path: which files to track (None: all)
        self._files: dict[str, tuple[str, list[str]] | None] = {}  # path -> (blob, commit of each line)
        self._touched: set[str] = set()  # paths some walked change created, changed or renamed away

    @staticmethod
    def applicable(repo: Repo, commits: list[CommitInfo]) -> str | None:
        """The root commit when ``commits`` (the whole history, oldest first) is linear from a single root."""
        if repo.shallow or not commits or commits[0].parents:
            return None
        if any(len(c.parents) != 1 for c in commits[1:]):
            return None
        return commits[0].sha

    def change(self, sha: str, ch: FileChange) -> None:
        """Apply one file change of commit ``sha`` (changes in walk order)."""
        src = ch.old_path or ch.path
        touched = self._touched
        fresh = src not in touched  # no walked change met this path: it is as the root commit left it
        touched.add(src)
        touched.add(ch.path)
        if ch.old_path:
            prev = self._files.pop(ch.old_path, None)
        else:
            prev = self._files.get(ch.path)
        if not ch.path or (self._wanted is not None and not self._wanted(ch.path)):
            self._files.pop(ch.path, None)
            return
        if not ch.blob and not ch.old_blob:  # rename or mode change without a content change
            if ch.old_path:
                self._files[ch.path] = prev
            return
        if ch.is_new and not ch.old_path:
            owners: list[str] | None = []
        elif prev is not None:
            owners = prev[1] if prev[0] == ch.old_blob else None
        elif fresh:
            owners = self._root_lines(src, ch.old_blob)
        else:
            owners = None
        if owners is None or (not ch.hunks and ch.blob != ch.old_blob and not (ch.is_new and ch.blob == _EMPTY_BLOB)):
            self._files[ch.path] = None  # binary or oversized diff (no hunks), or the chain broke
            return
        for o_start, o_n, _, n_n in reversed(ch.hunks):  # from the end: earlier hunks' positions stay valid
            at = o_start if o_n == 0 else o_start - 1
            if at + o_n > len(owners):
                self._files[ch.path] = None
                return
            owners[at:at + o_n] = [sha] * n_n
        self._files[ch.path] = (ch.blob, owners)

    def _root_lines(self, path: str, blob: str) -> list[str] | None:
        """All lines dated by the root commit, if ``blob`` is the root commit's version of ``path``."""
        if "\n" in path:  # a cat-file request is one line
            return None
        reader = self._repo.blobs()
        data = reader.read(f"{self._root}:{path}", max_bytes=BIG_FILE_DIFF_BYTES)  # larger ones diff as binary
        if data is None or reader.last_sha != blob:
            return None
        return [self._root] * line_count(data)

    def lines(self, path: str, blob: str) -> list[str] | None:
        """The commit of each line (0-based) of ``path`` at ``blob``, or None when not known from the walk.
        A path no walked change touched is as the root commit left it."""
        entry = self._files.get(path)
        if entry is not None:
            return list(entry[1]) if entry[0] == blob else None
        if path in self._touched:
            return None
        return self._root_lines(path, blob)

