"""What mining one repository's history and its HEAD files share (:class:`RepoWalk`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from indexer.filters.paths import IgnoreRules
from indexer.git.repo import Repo, TreeEntry
from indexer.mine.run import Run


@dataclass
class RepoWalk:
    repo: Repo
    prev_last_change: dict[str, list]  # path -> [sha, time] of its last change, from the previous run
    prev_files: dict[str, str]  # path -> blob of the HEAD files mined before
    entries: list[TreeEntry]  # HEAD's tree
    rules: IgnoreRules
    linguist: Any  # linguist-generated patterns from .gitattributes (or None)
    oldest: tuple | None  # (sha, time) content nobody touched since is attributed to
    last_change: dict[str, tuple[str, int]] = field(default_factory=dict)  # path -> its last change in this walk
    path_reasons: dict[str, str | None] = field(default_factory=dict)
    context: Any = None  # indexer.mine.context.PairContext: the pairs' repository context (None: off)

    def reason(self, run: Run, path: str) -> str | None:
        """Why a path is not mined (``Run.path_reason``), worked out once per path: the same paths change in
        commit after commit."""
        if path not in self.path_reasons:
            self.path_reasons[path] = run.path_reason(path, self.rules, self.linguist)
        return self.path_reasons[path]


def attribution(prev_last_change: dict[str, list], path: str, oldest: tuple | None) -> tuple[str, int] | None:
    """The commit a file's current content is attributed to: its last change, else the oldest commit
    (content that came with the root commit)."""
    if path in prev_last_change:
        sha, t = prev_last_change[path]
        return sha, int(t)
    return (oldest[0], int(oldest[1])) if oldest is not None else None
