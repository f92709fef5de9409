"""One nightly cycle at a time per data root, with stale-lock detection.

The lock is a small JSON file (``runs_dir()/.nightly.lock``: pid, host, process start time, when taken,
what holds it) created with O_CREAT|O_EXCL, so two processes can never both create it. A lock left by
a crashed run (kill -9, power loss) does not block forever; it is *stale* and is broken when:
- it names this host and its pid is gone, or the pid now belongs to another process (start time differs);
- it is older than ``max_age_s`` (default 12 h; covers a lock left by another host that died);
- it is unreadable (half-written by a process killed while creating it) and older than 60 s.
Breaking renames the stale file away first, so only one contender wins the retry.
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from pathlib import Path
from typing import Any

from copilot.core import paths
from copilot.core.types import CopilotError

DEFAULT_MAX_AGE_S = 12 * 3600


class LockBusy(CopilotError):
    exit_code = 75  # EX_TEMPFAIL: a scheduler may retry later


def _proc_start(pid: int) -> float | None:
    try:
        import psutil

        return psutil.Process(pid).create_time()
    except Exception:  # noqa: BLE001 - gone, zombie or no permission
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class CycleLock:
    def __init__(self, path: str | Path | None = None, *, max_age_s: float = DEFAULT_MAX_AGE_S, what: str = "nightly cycle"):
        self.path = Path(path) if path else paths.runs_dir() / ".nightly.lock"
        self.max_age_s = max_age_s
        self.what = what
        self.held = False
        self.broke: dict[str, Any] | None = None  # the stale lock this acquire replaced

    def read(self) -> dict[str, Any] | None:
        try:
            return json.loads(self.path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, json.JSONDecodeError, UnicodeDecodeError):
            return {}

    def stale_reason(self, info: dict[str, Any] | None) -> str | None:
        """Why the current lock file is stale, or None when its holder may still be running."""
        if info is None:
            return None
        if not info:
            try:
                age = time.time() - self.path.stat().st_mtime
            except FileNotFoundError:
                return None
            return f"unreadable lock file {age:.0f} s old" if age > 60 else None
        age = time.time() - float(info.get("time", 0))
        if age > self.max_age_s:
            return f"older than {self.max_age_s / 3600:g} h ({age / 3600:.1f} h)"
        if info.get("host") == socket.gethostname():
            pid = int(info.get("pid", -1))
            if pid <= 0 or not _alive(pid):
                return f"process {pid} on this host is gone"
            start = _proc_start(pid)
            if start is not None and info.get("start") and abs(start - float(info["start"])) > 1.0:
                return f"pid {pid} now belongs to another process"
        return None

    def acquire(self) -> "CycleLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        me = {"pid": os.getpid(), "host": socket.gethostname(), "start": _proc_start(os.getpid()),
              "time": time.time(), "what": self.what}
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                info = self.read()
                why = self.stale_reason(info)
                if why is None:
                    if info is None:
                        continue  # released between our tries
                    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(info.get("time", 0))))
                    raise LockBusy(f"another {self.what} is running (pid {info.get('pid')} on {info.get('host')}, "
                                   f"since {since}; lock {self.path})")
                aside = self.path.with_name(f"{self.path.name}.stale-{uuid.uuid4().hex[:8]}")
                try:
                    os.rename(self.path, aside)
                except FileNotFoundError:
                    continue
                aside.unlink(missing_ok=True)
                self.broke = {**(info or {}), "reason": why}
                continue
            with os.fdopen(fd, "w") as fh:
                json.dump(me, fh)
                fh.flush()
                os.fsync(fh.fileno())
            self.held = True
            return self
        raise LockBusy(f"could not take the lock {self.path}: contended; try again")

    def release(self) -> None:
        if not self.held:
            return
        info = self.read()
        if info and info.get("pid") == os.getpid() and info.get("host") == socket.gethostname():
            self.path.unlink(missing_ok=True)
        self.held = False

    def __enter__(self) -> "CycleLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
