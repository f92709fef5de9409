"""Retention of adapter versions: keep the newest K per adapter, never the active one or its predecessor.

Also sweeps leftovers a killed process may leave in the registry folder (``.tmp-*`` publish dirs and
``.trash-*`` dirs) once they are older than an hour; they are invisible to readers anyway.
"""

from __future__ import annotations

import shutil
import time

from copilot.adapters.registry import Registry
from copilot.core.types import UserInputError


def plan(registry: Registry, name: str, keep: int, *, protect: tuple[int, ...] = ()) -> list[int]:
    """Versions of NAME that retention would remove (oldest first)."""
    if keep < 1:
        raise UserInputError(f"retention keep must be at least 1, got {keep}")
    versions = registry.versions(name)
    ptr = registry.pointer(name)
    protected = {v for v in (ptr.get("active"), ptr.get("previous"), *protect) if v is not None}
    newest = set(versions[-keep:])
    return [v for v in versions if v not in newest and v not in protected]


def sweep_leftovers(registry: Registry, name: str, older_than_s: float = 3600) -> list[str]:
    d = registry.root / name
    removed = []
    if not d.is_dir():
        return removed
    now = time.time()
    for p in d.iterdir():
        if p.is_dir() and p.name.startswith((".tmp-", ".trash-")):
            try:
                if now - p.stat().st_mtime > older_than_s:
                    shutil.rmtree(p, ignore_errors=True)
                    removed.append(p.name)
            except FileNotFoundError:
                pass
    return removed


def apply(registry: Registry, name: str, keep: int, *, protect: tuple[int, ...] = (), dry_run: bool = False) -> list[str]:
    """Remove the versions `plan` names; returns 'NAME@V' for each one removed (or that would be)."""
    out = []
    for v in plan(registry, name, keep, protect=protect):
        if not dry_run:
            registry.remove(f"{name}@{v}")
        out.append(f"{name}@{v}")
    if not dry_run:
        sweep_leftovers(registry, name)
    return out


__all__ = ["plan", "apply", "sweep_leftovers"]
