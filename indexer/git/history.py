"""The commit history: the commit list (``rev-list``) and each commit's changed files with the line ranges it
added, from one streamed ``git log -p -U0`` (bounded memory on 50k commits). A commit git cannot show (a
missing or corrupt object) is skipped with a note and the walk resumes after it; a shallow clone is mined as
far as it goes.
"""

from __future__ import annotations

import io
import re
import subprocess
import threading
from collections import deque
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from itertools import islice
from pathlib import Path
from typing import IO

from copilot.core.git import git_env, last_line, run_git
from copilot.core.types import UserInputError
from indexer.git.repo import Repo

_HUNK = re.compile(rb"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")

BIG_FILE_DIFF_BYTES = 1 << 20


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


def worktree_changes(root: Path) -> list[FileChange]:
    """The working tree's uncommitted changes to tracked files (`git diff HEAD`): each changed file with the
    line ranges it holds that HEAD does not. Empty where git cannot tell (not a repository, no commit yet)."""
    try:
        proc = run_git(root, "diff", "HEAD", "-p", "-U0", "--no-color", "--no-ext-diff", "--no-textconv",
                       timeout=10)
    except (OSError, subprocess.SubprocessError):
        return []
    if proc.returncode != 0:
        return []
    parsing = _parse_log(io.BytesIO(b"\x01worktree\n" + proc.stdout))
    while True:
        try:
            next(parsing)
        except StopIteration as done:
            return [c for c in done.value[1] if c.path] if done.value else []


def untracked_files(root: Path) -> list[str]:
    """The working tree's new files git does not track yet and does not ignore (`git ls-files --others
    --exclude-standard`), repository-relative. Empty where git cannot tell."""
    try:
        proc = run_git(root, "ls-files", "-z", "--others", "--exclude-standard", timeout=10)
    except (OSError, subprocess.SubprocessError):
        return []
    if proc.returncode != 0:
        return []
    return [p.decode("utf-8", "replace") for p in proc.stdout.split(b"\0") if p]


def _stream_log(repo: Repo, shas: list[str],
                state: dict[str, str | None]) -> Iterator[tuple[str, list[FileChange], bool]]:
    """Yields (sha, changes, complete). complete=False for the last commit when git failed midway."""
    proc, err_chunks, err_thread = _start_log(repo, shas)
    try:
        last = yield from _parse_log(proc.stdout)
        proc.wait()
        err_thread.join(timeout=5)
        if proc.returncode != 0:
            state["error"] = last_line(b"".join(err_chunks))
        if last is not None:
            yield last[0], last[1], proc.returncode == 0
    finally:
        _stop(proc)


def _start_log(repo: Repo, shas: list[str]) -> tuple[subprocess.Popen, list[bytes], threading.Thread]:
    """``git log -p -U0`` over ``shas`` (fed on stdin by a thread; stderr collected by another)."""
    # Files over 1 MiB diff as binary (no hunks): a 100 MB file never streams through the pipe.
    args = ["git", "-c", "core.quotepath=off", "-c", f"core.bigFileThreshold={BIG_FILE_DIFF_BYTES}", "log",
            "--no-walk=unsorted", "--stdin", "-p", "-U0",
            "--full-index", "--no-color", "--no-ext-diff", "--no-textconv", "-M", "--format=%x01%H",
            "--diff-filter=AMR", "--ignore-submodules"]
    proc = subprocess.Popen(args, cwd=str(repo.git_dir), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=git_env())
    assert proc.stdin and proc.stdout and proc.stderr

    def feed() -> None:
        try:
            proc.stdin.write(("\n".join(shas) + "\n").encode())
            proc.stdin.close()
        except BrokenPipeError:
            pass

    threading.Thread(target=feed, daemon=True).start()
    err_chunks: list[bytes] = []
    err_thread = threading.Thread(target=lambda: err_chunks.append(proc.stderr.read()), daemon=True)
    err_thread.start()
    return proc, err_chunks, err_thread


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    for stream in (proc.stdout, proc.stderr):
        try:
            stream.close()
        except OSError:
            pass


def _parse_log(stream: IO[bytes]) -> Generator[tuple[str, list[FileChange], bool], None,
                                               tuple[str, list[FileChange]] | None]:
    """Yields (sha, changes, True) for each commit once the next one starts; returns the last (sha, changes)."""
    current: str | None = None
    changes: list[FileChange] = []
    change: FileChange | None = None
    skip_lines = 0
    lines = iter(stream)
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
        elif change is not None:
            skip_lines = _read_header_line(change, line)
    return (current, changes) if current is not None else None


def _read_header_line(change: FileChange, line: bytes) -> int:
    """Apply one line of a file's diff header (or a hunk header) to ``change``; returns how many hunk content
    lines follow it (to skip unread)."""
    if line.startswith(b"index "):
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
        return _add_hunk(change, line)
    return 0


def _add_hunk(change: FileChange, line: bytes) -> int:
    """Record a hunk header; returns its content line count (old + new)."""
    m = _HUNK.match(line)
    if not m:
        return 0
    old_n = int(m.group(2)) if m.group(2) is not None else 1
    start = int(m.group(3))
    new_n = int(m.group(4)) if m.group(4) is not None else 1
    change.hunks.append((int(m.group(1)), old_n, start, new_n))
    if new_n > 0:
        change.added.append((start - 1, start - 1 + new_n - 1))
    return old_n + new_n
