"""Walking git repositories: HEAD files, commit history with added line ranges, blob reading without checkout.

Everything goes through the git command line: ``ls-tree`` for HEAD, ``rev-list`` for the commit list, one
streamed ``git log -p -U0`` for the history (bounded memory on 50k commits), and a long-lived
``git cat-file --batch`` to read blobs by sha; ``LineOwners`` dates each line from the walk's hunks (what
``git blame`` would say). Bare repositories work; URLs are cloned (bare) into a
temporary directory. Symlinks are never followed (mode 120000 entries are skipped), submodules are skipped
with a note, missing objects are skipped with a note, and a shallow clone is mined as far as it goes.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from itertools import islice
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from copilot.core.types import UserInputError

_URL = re.compile(r"^(?:[a-zA-Z][a-zA-Z0-9+.\-]*://|[\w.\-]+@[\w.\-]+:)")
_HUNK = re.compile(rb"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")

MODE_SYMLINK = "120000"
BIG_FILE_DIFF_BYTES = 1 << 20
MODE_SUBMODULE = "160000"
# Requests up to this many bytes are written to ``git cat-file`` directly: a pipe holds at least one page
# (4 KiB, even when Linux shrinks pipes under its per-user pipe limits), so writing them into the empty pipe
# never waits for git to read.
_SMALL_WRITE = 4096


@dataclass(frozen=True)
class TreeEntry:
    mode: str
    type: str  # blob | commit (submodule) | tree
    sha: str
    size: int
    path: str


@dataclass(frozen=True)
class CommitInfo:
    sha: str
    parents: tuple[str, ...]
    time: int  # committer time, unix seconds


@dataclass
class FileChange:
    path: str
    blob: str
    mode: str
    added: list[tuple[int, int]] = field(default_factory=list)  # 0-based inclusive line ranges in the new file
    old_path: str | None = None  # set for renames
    old_blob: str = ""  # the blob this version was diffed against ("" for a new file)
    hunks: list[tuple[int, int, int, int]] = field(default_factory=list)  # git's (old start, old n, new start, new n)
    is_new: bool = False  # the path did not exist before this commit (added, copied or renamed)


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
        return _git(self.git_dir, *args, check=check, input=input)

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


def _git_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update({"GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C", "GIT_CONFIG_NOSYSTEM": "1"})
    return env


def _git(cwd: Path | str, *args: str, check: bool = True, input: str | None = None) -> str:
    proc = subprocess.run(
        ["git", "-c", "core.quotepath=off", *args], cwd=str(cwd), capture_output=True, input=input.encode() if
        input is not None else None, env=_git_env())
    if check and proc.returncode != 0:
        msg = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise GitError(msg[-1] if msg else f"git {args[0]} failed")
    return proc.stdout.decode("utf-8", "surrogateescape")


class GitError(UserInputError):
    pass


def is_url(spec: str) -> bool:
    return bool(_URL.match(spec))


def redact_url(text: str) -> str:
    """Drop credentials from URLs (``https://user:token@host`` -> ``https://host``): never written or shown."""
    return re.sub(r"(?<=://)[^/@\s]+@", "", text)


def open_repo(spec: str) -> Repo:
    """Open a local (possibly bare) repository, or clone a URL into a temporary bare repository."""
    if shutil.which("git") is None:
        raise UserInputError("git is not installed (needed to read repositories)")
    tmp = None
    shown = redact_url(spec)
    if is_url(spec):
        tmp = tempfile.mkdtemp(prefix="copilot-clone-")
        target = Path(tmp) / "repo.git"
        proc = subprocess.run(["git", "clone", "--bare", "--quiet", spec, str(target)], capture_output=True,
                              env=_git_env())
        if proc.returncode != 0:
            shutil.rmtree(tmp, ignore_errors=True)
            err = proc.stderr.decode("utf-8", "replace").strip().splitlines()
            msg = (err[-1] if err else "git clone failed").replace(spec, shown)
            raise UserInputError(f"cannot clone {shown}: {redact_url(msg)}")
        git_dir, key = target, shown
    else:
        path = Path(spec).expanduser()
        if not path.exists():
            raise UserInputError(f"{spec}: no such directory")
        if not path.is_dir():
            raise UserInputError(f"{spec}: not a directory (expected a git repository)")
        git_dir, key = path.resolve(), str(path.resolve())
    # One rev-parse for three answers: "true"/"false" twice, then HEAD's sha (no line when there is no commit;
    # nothing at all outside a repository).
    answers = _git(git_dir, "rev-parse", "--is-bare-repository", "--is-shallow-repository", "--verify", "--quiet",
                   "HEAD^{commit}", check=False).split()
    if len(answers) < 2:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
        raise UserInputError(f"{spec}: not a git repository") from None
    bare = answers[0] == "true"
    if not bare and not tmp:
        top = Path(_git(git_dir, "rev-parse", "--show-toplevel").strip()).resolve()
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


def head_files(repo: Repo) -> Iterator[TreeEntry]:
    """Every entry of HEAD's tree (recursively), without checkout. Submodules come back with type "commit"."""
    if repo.head is None:
        return
    out = _git(repo.git_dir, "ls-tree", "-r", "-z", "--long", "--full-tree", repo.head)
    for rec in out.split("\0"):
        if not rec:
            continue
        meta, _, path = rec.partition("\t")
        mode, typ, sha, size = meta.split()
        yield TreeEntry(mode=mode, type=typ, sha=sha, size=int(size) if size.isdigit() else 0, path=path)


def parse_since(value: str) -> tuple[str | None, int | None]:
    """``--since`` as (revision, None) or (None, unix time) for dates like 2024-05-01 or 2024-05-01T12:00."""
    v = value.strip()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2})?)?(Z|[+-]\d{2}:?\d{2})?", v):
        dt = datetime.fromisoformat(v.replace("Z", "+00:00"))
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=timezone.utc)
        return None, int(dt.timestamp())
    return v, None


def list_commits(repo: Repo, since_rev: str | None = None, since_time: int | None = None) -> list[CommitInfo]:
    """Commits reachable from HEAD, oldest first (excluding those reachable from ``since_rev``)."""
    if repo.head is None:
        return []
    args = ["rev-list", "--reverse", "--topo-order", "--format=%H %P%x00%ct", repo.head]
    if since_rev:
        if not repo.git("rev-parse", "--verify", "--quiet", f"{since_rev}^{{commit}}", check=False).strip():
            raise UserInputError(f"{repo.spec}: unknown revision {since_rev!r} for --since")
        args.append(f"^{since_rev}")
    if since_time is not None:
        args.append(f"--since={since_time}")
    out = repo.git(*args)
    commits = []
    for line in out.splitlines():
        if line.startswith("commit ") or not line:
            continue
        shas, _, ct = line.partition("\0")
        parts = shas.split()
        commits.append(CommitInfo(sha=parts[0], parents=tuple(parts[1:]), time=int(ct or 0)))
    return commits


def _unquote(path: bytes) -> str:
    """git's C-style quoted path (``"a\\tb"``) -> str."""
    if path.startswith(b'"') and path.endswith(b'"'):
        inner = path[1:-1]
        out = bytearray()
        i = 0
        simple = {ord("n"): 10, ord("t"): 9, ord('"'): 34, ord("\\"): 92, ord("a"): 7, ord("b"): 8, ord("f"): 12,
                  ord("r"): 13, ord("v"): 11}
        while i < len(inner):
            c = inner[i]
            if c == 92 and i + 1 < len(inner):
                nxt = inner[i + 1]
                if 48 <= nxt <= 55 and i + 3 < len(inner):
                    out.append(int(inner[i + 1:i + 4], 8))
                    i += 4
                    continue
                out.append(simple.get(nxt, nxt))
                i += 2
                continue
            out.append(c)
            i += 1
        path = bytes(out)
    return path.decode("utf-8", "surrogateescape")


def commit_changes(repo: Repo, commits: list[CommitInfo]) -> Iterator[tuple[CommitInfo, list[FileChange]]]:
    """For each non-merge commit with a parent, the files it changed with the line ranges it added.

    One streamed ``git log -p -U0`` over the given commits (in the given order). If git stops on a missing
    or corrupt object, that commit is skipped with a note and the walk resumes after it."""
    todo = [c for c in commits if len(c.parents) == 1]
    while todo:
        index = {c.sha: i for i, c in enumerate(todo)}
        state: dict[str, str | None] = {"error": None}
        last_done = -1
        failed: int | None = None
        for sha, changes, complete in _stream_log(repo, [c.sha for c in todo], state):
            i = index.get(sha)
            if i is None:
                continue
            if not complete:
                failed = i
                break
            last_done = i
            yield todo[i], changes
        if state["error"] is None:
            return
        if failed is None:
            failed = last_done + 1
        if failed >= len(todo):
            return
        repo.notes.append(f"commit {todo[failed].sha[:12]} skipped: {state['error']}")
        todo = todo[failed + 1:]


def _stream_log(repo: Repo, shas: list[str], state: dict[str, str | None]) -> Iterator[tuple[str, list[FileChange], bool]]:
    """Yields (sha, changes, complete). complete=False for the last commit when git failed midway."""
    # Files over 1 MiB diff as binary (no hunks): a 100 MB file never streams through the pipe.
    args = ["git", "-c", "core.quotepath=off", "-c", f"core.bigFileThreshold={BIG_FILE_DIFF_BYTES}", "log",
            "--no-walk=unsorted", "--stdin", "-p", "-U0",
            "--full-index", "--no-color", "--no-ext-diff", "--no-textconv", "-M", "--format=%x01%H",
            "--diff-filter=AMR", "--ignore-submodules"]
    proc = subprocess.Popen(args, cwd=str(repo.git_dir), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=_git_env())
    assert proc.stdin and proc.stdout and proc.stderr
    def feed() -> None:
        try:
            proc.stdin.write(("\n".join(shas) + "\n").encode())
            proc.stdin.close()
        except BrokenPipeError:
            pass

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    err_chunks: list[bytes] = []
    err_thread = threading.Thread(target=lambda: err_chunks.append(proc.stderr.read()), daemon=True)
    err_thread.start()

    current: str | None = None
    changes: list[FileChange] = []
    change: FileChange | None = None
    skip_lines = 0
    lines = iter(proc.stdout)
    try:
        for raw in lines:
            if skip_lines:
                # a hunk's content lines: consumed in C (the line already in hand is the first of them)
                deque(islice(lines, skip_lines - 1), maxlen=0)
                skip_lines = 0
                continue
            line = raw.rstrip(b"\n")
            if line.startswith(b"\x01"):
                if current is not None:
                    yield current, changes, True
                current, changes, change = line[1:].decode(), [], None
                continue
            if line.startswith(b"diff --git "):
                change = FileChange(path="", blob="", mode="")
                changes.append(change)
            elif change is None:
                continue
            elif line.startswith(b"index "):
                meta = line[6:].split()
                if b".." in meta[0]:
                    old_blob, _, new_blob = meta[0].partition(b"..")
                    change.blob = new_blob.decode()
                    change.old_blob = "" if old_blob.strip(b"0") == b"" else old_blob.decode()
                if len(meta) > 1:
                    change.mode = meta[1].decode()
            elif line.startswith(b"rename from "):
                change.old_path = _unquote(line[12:])
                change.is_new = True
            elif line.startswith(b"rename to "):
                change.path = _unquote(line[10:])
            elif line.startswith(b"new file mode "):
                change.mode = line[14:].decode()
                change.is_new = True
            elif line.startswith(b"+++ "):
                target = line[4:]
                if target.endswith(b"\t"):  # git appends a tab to names with spaces
                    target = target[:-1]
                if target != b"/dev/null":
                    p = _unquote(target)
                    change.path = p[2:] if p.startswith("b/") else p
            elif line.startswith(b"@@ "):
                m = _HUNK.match(line)
                if m:
                    old_n = int(m.group(2)) if m.group(2) is not None else 1
                    start = int(m.group(3))
                    new_n = int(m.group(4)) if m.group(4) is not None else 1
                    change.hunks.append((int(m.group(1)), old_n, start, new_n))
                    if new_n > 0:
                        change.added.append((start - 1, start - 1 + new_n - 1))
                    skip_lines = old_n + new_n
        proc.wait()
        err_thread.join(timeout=5)
        if proc.returncode != 0:
            state["error"] = _last_line(b"".join(err_chunks))
        if current is not None:
            yield current, changes, proc.returncode == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            try:
                stream.close()
            except OSError:
                pass


def _last_line(err: bytes) -> str:
    lines = err.decode("utf-8", "replace").strip().splitlines()
    return lines[-1] if lines else "git failed"


def blame_lines(repo: Repo, path: str) -> list[str]:
    """The commit that last touched each line (0-based) of ``path`` at HEAD (``git blame --porcelain``)."""
    if repo.head is None:
        return []
    proc = subprocess.run(["git", "blame", "--porcelain", repo.head, "--", path], cwd=str(repo.git_dir),
                          capture_output=True, env=_git_env())
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


_EMPTY_BLOB = "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"


class BlobReader:
    """``git cat-file --batch``: read blobs by sha without checkout. Missing objects read as None."""

    last_status = "ok"
    last_sha = ""  # the object name git answered the last request with

    def __init__(self, git_dir: Path):
        self._proc = subprocess.Popen(["git", "cat-file", "--batch"], cwd=str(git_dir), stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=_git_env())

    def read(self, sha: str, max_bytes: int | None = None) -> bytes | None:
        """The blob's bytes; None if missing/corrupt or larger than ``max_bytes`` (then not kept in memory).
        ``last_status`` says which: "ok", "missing" or "oversized"."""
        proc = self._proc
        assert proc.stdin and proc.stdout
        self.last_status = "missing"
        if proc.poll() is not None:
            return None
        try:
            proc.stdin.write(sha.encode() + b"\n")
            proc.stdin.flush()
        except BrokenPipeError:
            return None
        return self._answer(max_bytes)

    def read_many(self, shas: list[str], max_bytes: int | None = None) -> Iterator[tuple[str, bytes | None, str]]:
        """(sha, data, status) for each sha in order, as :meth:`read` gives them, with one round trip for all: a
        thread writes the requests while the answers are read (no wait on git per blob). Consume it fully."""
        proc = self._proc
        assert proc.stdin and proc.stdout
        if not shas:
            return
        if proc.poll() is not None:
            for sha in shas:
                yield sha, None, "missing"
            return
        failed: list[bool] = []

        def feed() -> None:
            try:
                proc.stdin.write("".join(sha + "\n" for sha in shas).encode())
                proc.stdin.flush()
            except (BrokenPipeError, OSError, ValueError):
                failed.append(True)

        writer = None
        if len(shas) * 41 <= _SMALL_WRITE:
            feed()  # fits in an empty pipe's buffer: the write cannot block, no thread needed
        else:
            writer = threading.Thread(target=feed, daemon=True)
            writer.start()
        done = 0
        try:
            for sha in shas:
                data = self._answer(max_bytes)
                done += 1
                yield sha, data, self.last_status
        finally:
            try:
                for _ in range(len(shas) - done):  # left early: drain the answers so the stream stays in step
                    self._answer(0)
            except (OSError, ValueError):  # the reader was closed meanwhile (an error unwound the run)
                pass
            if writer is not None:
                writer.join(timeout=5)

    def _answer(self, max_bytes: int | None) -> bytes | None:
        """Read one ``--batch`` answer (the request was written already); sets ``last_status``."""
        proc = self._proc
        assert proc.stdout
        self.last_status = "missing"
        header = proc.stdout.readline()
        parts = header.split()
        self.last_sha = parts[0].decode() if parts else ""
        if len(parts) != 3 or parts[1] not in (b"blob",):
            if len(parts) == 3:  # not a blob: consume it
                self._skip(int(parts[2]) + 1)
            return None
        size = int(parts[2])
        if max_bytes is not None and size > max_bytes:
            self._skip(size + 1)
            self.last_status = "oversized"
            return None
        data = proc.stdout.read(size)
        proc.stdout.read(1)
        if len(data) != size:
            return None
        self.last_status = "ok"
        return data

    def _skip(self, n: int) -> None:
        assert self._proc.stdout
        while n > 0:
            chunk = self._proc.stdout.read(min(n, 1 << 20))
            if not chunk:
                return
            n -= len(chunk)

    def close(self) -> None:
        proc = self._proc
        try:
            if proc.stdin:
                proc.stdin.close()
            proc.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            proc.kill()
            proc.wait()
        if proc.stdout:
            proc.stdout.close()
