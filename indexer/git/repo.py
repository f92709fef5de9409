"""Opening a repository (local, bare, or a temporary bare clone of a URL) and listing HEAD's tree.

Everything goes through the git command line (``copilot.core.git``); URLs are cloned bare into a temporary
directory. Symlinks (mode 120000) and submodules (mode 160000) are listed with their modes: the miner skips them.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from copilot.core.git import git, redact_url, run_git
from copilot.core.types import UserInputError
from indexer.git.blobs import BlobReader

_URL = re.compile(r"^(?:[a-zA-Z][a-zA-Z0-9+.\-]*://|[\w.\-]+@[\w.\-]+:)")

MODE_SYMLINK = "120000"
MODE_SUBMODULE = "160000"


@dataclass(frozen=True)
class TreeEntry:
    mode: str
    type: str  # blob | commit (submodule) | tree
    sha: str
    size: int
    path: str


@dataclass
class Repo:
    """An opened repository (local, bare, or a temporary bare clone of a URL)."""

    spec: str
    key: str
    git_dir: Path
    bare: bool
    head: str | None
    shallow: bool
    notes: list[str] = field(default_factory=list)
    _tmp: str | None = None
    _reader: BlobReader | None = None

    def git(self, *args: str, check: bool = True, input: str | None = None) -> str:
        return git(self.git_dir, *args, check=check, input=input)

    def blobs(self) -> BlobReader:
        if self._reader is None:
            self._reader = BlobReader(self.git_dir)
        return self._reader

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def __enter__(self) -> Repo:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def is_url(spec: str) -> bool:
    return bool(_URL.match(spec))


def open_repo(spec: str) -> Repo:
    """Open a local (possibly bare) repository, or clone a URL into a temporary bare repository."""
    if shutil.which("git") is None:
        raise UserInputError("git is not installed (needed to read repositories)")
    tmp = None
    shown = redact_url(spec)
    if is_url(spec):
        tmp, git_dir = _clone(spec, shown)
        key = shown
    else:
        git_dir = _local_dir(spec)
        key = str(git_dir)
    # One rev-parse for three answers: "true"/"false" twice, then HEAD's sha (no line when there is no commit;
    # nothing at all outside a repository).
    answers = git(git_dir, "rev-parse", "--is-bare-repository", "--is-shallow-repository", "--verify", "--quiet",
                  "HEAD^{commit}", check=False).split()
    if len(answers) < 2:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
        raise UserInputError(f"{spec}: not a git repository") from None
    bare = answers[0] == "true"
    if not bare and not tmp:
        top = Path(git(git_dir, "rev-parse", "--show-toplevel").strip()).resolve()
        if top != git_dir:
            raise UserInputError(f"{spec}: not the top of a git repository (the repository is {top})")
    head = answers[2] if len(answers) > 2 else None
    shallow = answers[1] == "true"
    repo = Repo(spec=shown, key=key, git_dir=git_dir, bare=bare, head=head, shallow=shallow, _tmp=tmp)
    if head is None:
        repo.notes.append("empty repository (no commits): nothing to mine")
    if shallow:
        repo.notes.append("shallow clone: history mined only as far as the clone goes")
    return repo


def _clone(spec: str, shown: str) -> tuple[str, Path]:
    """(temporary directory, bare clone in it) of a URL; credentials never show in the error."""
    tmp = tempfile.mkdtemp(prefix="copilot-clone-")
    target = Path(tmp) / "repo.git"
    proc = run_git(None, "clone", "--bare", "--quiet", spec, str(target))
    if proc.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        err = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        msg = (err[-1] if err else "git clone failed").replace(spec, shown)
        raise UserInputError(f"cannot clone {shown}: {redact_url(msg)}")
    return tmp, target


def _local_dir(spec: str) -> Path:
    path = Path(spec).expanduser()
    if not path.exists():
        raise UserInputError(f"{spec}: no such directory")
    if not path.is_dir():
        raise UserInputError(f"{spec}: not a directory (expected a git repository)")
    return path.resolve()


def head_files(repo: Repo) -> Iterator[TreeEntry]:
    """Every entry of HEAD's tree (recursively), without checkout. Submodules come back with type "commit"."""
    if repo.head is None:
        return
    yield from tree_files(repo, repo.head)


def tree_files(repo: Repo, rev: str) -> Iterator[TreeEntry]:
    """Every entry of a commit's (or tree's) tree, recursively, without checkout."""
    out = git(repo.git_dir, "ls-tree", "-r", "-z", "--long", "--full-tree", rev)
    for rec in out.split("\0"):
        if not rec:
            continue
        meta, _, path = rec.partition("\t")
        mode, typ, sha, size = meta.split()
        yield TreeEntry(mode=mode, type=typ, sha=sha, size=int(size) if size.isdigit() else 0, path=path)


def tree_changes(repo: Repo, old: str, new: str) -> list[tuple[str, str | None, str]]:
    """(path, new blob or None when gone, new mode) of every file that differs between two commits' trees
    (any two: not only a commit and its parent); renames are a deletion and an addition."""
    out = git(repo.git_dir, "diff-tree", "-r", "-z", "--no-renames", "--no-commit-id", old, new)
    fields = out.split("\0")
    changes = []
    for meta, path in zip(fields[0::2], fields[1::2]):
        if not meta.startswith(":"):
            continue
        _, new_mode, _, new_sha, status = meta[1:].split()
        changes.append((path, None if status == "D" else new_sha, new_mode))
    return changes
