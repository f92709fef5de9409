"""The time split: each repo's newest commits form the test split; current-file pairs of recently changed files
are dated line by line first, and train pairs that (nearly) repeat a test pair are removed (no leak)."""

from __future__ import annotations

from typing import Any

from indexer.filters.dedup import NearDupIndex, normalized_hash
from indexer.mine.config import IndexConfig
from indexer.pairs import HEAD_KINDS


def reattribute_by_blame(lines_of, rows: list[dict[str, Any]], test_commits: set[str], times: dict[str, int]) -> int:
    """Current-file pairs are first dated by their file's last change. For files last changed by a test
    commit, date each pair by the newest commit among the lines it covers instead (``lines_of(repo key, path)``:
    the commit of each line at HEAD, as ``git blame`` gives it), so old code in a recently touched file stays
    in train. Returns how many files were dated line by line."""
    todo: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        if r["kind"] in HEAD_KINDS and r["commit"] in test_commits:
            todo.setdefault((r["repo"], r["path"]), []).append(r)
    for (key, path), group in todo.items():
        lines = lines_of(key, path)
        if not lines:
            continue
        for r in group:
            shas = {lines[i] for i in range(r["span_start"], min(r["span_end"], len(lines) - 1) + 1) if lines[i]}
            if not shas:
                continue
            newest = max(shas, key=lambda sha: times.get(sha, 0))
            r["commit"], r["commit_time"] = newest, times.get(newest, 0)
    return len(todo)


def choose_test_commits(commits: list[tuple[str, int]], config: IndexConfig) -> set[str]:
    """The newest commits of one repo (by commit time): its last N, the last D days before its newest commit,
    or its newest ``test_fraction`` (default 10%, rounded up). At least one commit stays in train."""
    if not commits:
        return set()
    ordered = sorted(commits, key=lambda c: c[1])
    if config.test_days is not None:
        newest = ordered[-1][1]
        cut = newest - config.test_days * 86400
        chosen = [c for c in ordered if c[1] >= cut][-(len(ordered) - 1):] if len(ordered) > 1 else []
    else:
        if config.test_commits is not None:
            n = config.test_commits
        else:
            n = int(len(ordered) * config.test_fraction + 0.999999) if len(ordered) > 1 else 0
        n = min(n, len(ordered) - 1)
        chosen = ordered[len(ordered) - n:] if n > 0 else []
    return {sha for sha, _ in chosen}


def _middle(row: dict[str, Any]) -> str:
    return row["middle"] if row["kind"] != "explain" else row["completion"]


def split_rows(rows: list[dict[str, Any]], test_commits: set[str], threshold: float = 0.8,
               cache: dict[str, Any] | None = None) -> tuple[dict[str, list[dict[str, Any]]], int]:
    """Rows of test commits -> test (each row's "split" is set in place); train rows whose middle equals
    (normalized) or nearly equals a test middle are removed. Returns ({"train": [...], "test": [...]}, removed)."""
    test, train = [], []
    for r in rows:
        r["split"] = "test" if r["commit"] in test_commits else "train"
        (test if r["split"] == "test" else train).append(r)
    exact = {normalized_hash(_middle(r)) for r in test}
    near = NearDupIndex(threshold=threshold, cache=cache)
    for r in test:
        near.add(_middle(r))
    kept, removed = [], 0
    for r in train:
        m = _middle(r)
        if normalized_hash(m) in exact or near.query(m):
            removed += 1
            continue
        kept.append(r)
    return {"train": kept, "test": test}, removed
