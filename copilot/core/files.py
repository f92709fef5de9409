"""File helpers every part shares: atomic writes, JSON reads that tolerate a missing file, sha256.

One owner for each cross-cutting need: a reader never sees half a file, and a failed write (disk full,
read-only folder) is a ``CopilotError`` naming the file, with nothing left behind.
"""
from __future__ import annotations

import hashlib
import json
import os
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from copilot.core.types import CopilotError


@contextmanager
def atomic_path(out: str | Path) -> Iterator[Path]:
    """A temporary path next to `out`, renamed onto `out` when the block succeeds and removed otherwise."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    # A unique name, not created here: the caller's open() creates it with the usual (umask) permissions.
    tmp = out.with_name(f".{out.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")
    try:
        yield tmp
        os.replace(tmp, out)
    except OSError as exc:
        raise CopilotError(f"cannot write {out}: {exc.strerror or exc}") from None
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes_atomic(path: str | Path, data: bytes) -> Path:
    """Write `data` to `path` through a fsynced temporary file and a rename."""
    path = Path(path)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    return path


def write_text_atomic(path: str | Path, text: str) -> Path:
    return write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: str | Path, data: Any, *, indent: int | None = 2, sort_keys: bool = True) -> Path:
    return write_text_atomic(path, json.dumps(data, indent=indent, sort_keys=sort_keys, default=str) + "\n")


def read_json(path: str | Path, default: Any = None) -> Any:
    """The parsed JSON in `path`, or `default` when the file is missing or not valid JSON."""
    try:
        return json.loads(Path(path).read_text())
    except (FileNotFoundError, NotADirectoryError, json.JSONDecodeError, UnicodeDecodeError):
        return default


def sha256_file(path: str | Path, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def sha256_json(data: Any, length: int | None = None) -> str:
    """A stable hash of JSON-able `data` (keys sorted): config hashes and fingerprints."""
    digest = hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()
    return digest[:length] if length else digest
