"""Reading blobs by sha without checkout: one long-lived ``git cat-file --batch`` per repository."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

from copilot.core.git import git_env

# Requests up to this many bytes are written to ``git cat-file`` directly: a pipe holds at least one page
# (4 KiB, even when Linux shrinks pipes under its per-user pipe limits), so writing them into the empty pipe
# never waits for git to read.
_SMALL_WRITE = 4096


class BlobReader:
    """``git cat-file --batch``: read blobs by sha without checkout. Missing objects read as None."""

    last_status = "ok"
    last_sha = ""  # the object name git answered the last request with

    def __init__(self, git_dir: Path):
        self._proc = subprocess.Popen(["git", "cat-file", "--batch"], cwd=str(git_dir), stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=git_env())

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
