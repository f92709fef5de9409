"""The fetch phase's git work: bring every repo of a plan up to date and say which ones can be mined.

URL repos are mirrored under the data root (``git clone --mirror`` once, ``git fetch`` after); local repos
are read as they are. A repo that is gone, fails to fetch or whose history was rewritten (force-push) is
skipped with a note; the others go on.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from copilot.core.git import last_line, redact_url, run_git
from copilot.nightly.config import AdapterPlan
from copilot.nightly.state import adapter_memory, mirror_dir, repo_dataset_dir, slug

GIT_TIMEOUT = 600


def fetch_repos(plan: AdapterPlan, log: Callable[[str], None]) -> list[dict[str, Any]]:
    """One entry per repo of the plan: spec (redacted), slug, path, head, note, status ("ok"/"skipped"),
    and for a readable repo whether it is unchanged since the last cycle."""
    seen = adapter_memory(plan.name).get("heads") or {}
    repos = []
    for spec in plan.repos:
        entry = check_repo(plan, spec, seen, log)
        if entry["status"] == "skipped":
            log(f"skipping {entry['spec']}: {entry['note']}")
        repos.append(entry)
    return repos


def check_repo(plan: AdapterPlan, spec: str, seen: dict[str, str], log: Callable[[str], None]) -> dict[str, Any]:
    path, head, note = update_repo(spec, log)
    shown = redact_url(spec)
    entry = {"spec": shown, "slug": slug(shown), "path": path, "head": head, "note": note,
             "status": "ok" if path and head else "skipped"}
    if path and head:
        _check_rewrite(plan, entry)
        entry["unchanged"] = head == seen.get(entry["spec"])
    return entry


def _check_rewrite(plan: AdapterPlan, entry: dict[str, Any]) -> None:
    """A head that does not descend from the one mined last time: skip the repo, or mine it again."""
    from indexer import dataset as ds

    old_head = ds.indexed_head(repo_dataset_dir(plan.name, entry["slug"]))
    head = entry["head"]
    if not old_head or old_head == head or is_ancestor(entry["path"], old_head, head):
        return
    if plan.on_rewrite == "skip":
        entry.update(status="skipped", note=f"history rewritten (force-push?): previous head "
                     f"{old_head[:12]} is not an ancestor of {head[:12]}; set on_rewrite = "
                     "\"reindex\" to mine it again from scratch")
    else:
        entry["note"] += "; history rewritten: mined again from scratch"


def update_repo(spec: str, log: Callable[[str], None]) -> tuple[str | None, str | None, str]:
    """-> (local path to index, HEAD sha, note). Path None = skip this repo (note says why)."""
    from indexer.git.repo import is_url

    if is_url(spec):
        path, note = _update_mirror(spec)
        if path is None:
            return None, None, note
    else:
        path = Path(spec).expanduser()
        if not path.is_dir():
            return None, None, "repository is gone (no such directory)"
        note = "local"
    proc = run_git(path, "rev-parse", "--verify", "--quiet", "HEAD^{commit}", timeout=GIT_TIMEOUT)
    if proc.returncode != 0:
        if run_git(path, "rev-parse", "--git-dir", timeout=GIT_TIMEOUT).returncode != 0:
            return None, None, "not a git repository"
        return str(path), None, f"{note}; empty repository"
    return str(path), proc.stdout.decode("utf-8", "surrogateescape").strip(), note


def _update_mirror(spec: str) -> tuple[Path | None, str]:
    """Clone the URL as a mirror once (into a temporary name, renamed when complete), fetch it after."""
    mirror = mirror_dir(slug(redact_url(spec)))
    if mirror.is_dir():
        proc = run_git(mirror, "fetch", "--prune", "--force", "--quiet", "origin", timeout=GIT_TIMEOUT)
        if proc.returncode != 0:
            return None, f"fetch failed: {last_line(proc.stderr)}"
        return mirror, "fetched"
    tmp = mirror.with_name(f".{mirror.name}.tmp-{uuid.uuid4().hex[:6]}")
    tmp.parent.mkdir(parents=True, exist_ok=True)
    proc = run_git(None, "clone", "--mirror", "--quiet", spec, str(tmp), timeout=GIT_TIMEOUT)
    if proc.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        return None, f"clone failed: {last_line(proc.stderr)}"
    tmp.rename(mirror)
    return mirror, "cloned"


def is_ancestor(path: str, old: str, new: str) -> bool:
    return run_git(path, "merge-base", "--is-ancestor", old, new, timeout=GIT_TIMEOUT).returncode == 0
