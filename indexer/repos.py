"""Walking git repositories: HEAD files, commit history with added line ranges, blob reading without checkout.

Everything goes through the git command line: ``ls-tree`` for HEAD, ``rev-list`` for the commit list, one
streamed ``git log -p -U0`` for the history (bounded memory on 50k commits), and a long-lived
``git cat-file --batch`` to read blobs by sha. Bare repositories work; URLs are cloned (bare) into a
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

from copilot.types import UserInputError

_URL = re.compile(r"^(?:[a-zA-Z][a-zA-Z0-9+.\-]*://|[\w.\-]+@[\w.\-]+:)")
_HUNK = re.compile(rb"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")

MODE_SYMLINK = "120000"
BIG_FILE_DIFF_BYTES = 1 << 20
MODE_SUBMODULE = "160000"


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
    try:
        bare = _git(git_dir, "rev-parse", "--is-bare-repository", check=True).strip() == "true"
    except GitError:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
        raise UserInputError(f"{spec}: not a git repository") from None
    if not bare and not tmp:
        top = Path(_git(git_dir, "rev-parse", "--show-toplevel").strip()).resolve()
        if top != git_dir:
            raise UserInputError(f"{spec}: not the top of a git repository (the repository is {top})")
    head = _git(git_dir, "rev-parse", "--verify", "--quiet", "HEAD^{commit}", check=False).strip() or None
    shallow = _git(git_dir, "rev-parse", "--is-shallow-repository", check=False).strip() == "true"
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


class BlobReader:
    """``git cat-file --batch``: read blobs by sha without checkout. Missing objects read as None."""

    last_status = "ok"

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
            writer.join(timeout=5)

    def _answer(self, max_bytes: int | None) -> bytes | None:
        """Read one ``--batch`` answer (the request was written already); sets ``last_status``."""
        proc = self._proc
        assert proc.stdout
        self.last_status = "missing"
        header = proc.stdout.readline()
        parts = header.split()
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
