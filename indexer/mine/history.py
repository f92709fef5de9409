"""Mining the history: the code each new commit added, as FIM pairs dated by that commit. On a linear history
walked from its root, each line's commit is worked out from the walk's diffs as it goes (no blame later). A
commit's pairs get their repository context from that commit's tree (indexer.mine.context), with the lines
the commit added to other files as the recently edited regions."""

from __future__ import annotations

from typing import Any

from indexer.git.blame import LineOwners
from indexer.git.history import CommitInfo, FileChange, commit_changes
from indexer.git.repo import MODE_SUBMODULE, MODE_SYMLINK, Repo
from indexer.languages import language_for_path
from indexer.mine.config import Reporter
from indexer.mine.parse import parse_version
from indexer.mine.run import Run
from indexer.mine.walk import RepoWalk, attribution
from indexer.pairs import fim_pair, fims_for_added_lines
from indexer.workspace.recent_edits import Edit


def mine_history(walk: RepoWalk, run: Run, reporter: Reporter, commits: list[CommitInfo],
                 new_commits: list[CommitInfo], from_root: bool) -> None:
    """Mine ``new_commits`` (``commits``: the whole list walked, ``from_root``: walked from the first commit)."""
    repo = walk.repo
    owners = _line_owners(repo, run, commits) if from_root else None
    blobs = repo.blobs()
    reporter.start("commits", len(new_commits), f"commits {repo.spec}")
    reporter.advance("commits", sum(1 for c in new_commits if len(c.parents) != 1))  # roots, merges
    for info, changes in commit_changes(repo, new_commits):
        reporter.advance("commits", 1)
        todo = _changes_to_mine(walk, run, info, changes, owners)
        start = len(run.rows)
        # the commit's blobs in one round trip to git
        for ch, (_, data, status) in zip(todo, blobs.read_many([ch.blob for ch in todo], run.config.max_file_bytes)):
            text, tree = mine_version(repo, info, ch, run, data, status)
            if walk.context is not None and data is not None:
                walk.context.offer(ch.blob, text, tree)
        if walk.context is not None:
            edits = [Edit(ch.path, a, b) for ch in changes if ch.path and ch.blob for a, b in ch.added]
            walk.context.fill(run.rows[start:], commit=info.sha, edits=edits)


def _line_owners(repo: Repo, run: Run, commits: list[CommitInfo]) -> LineOwners | None:
    """Lines dated from the walk's diffs, for a linear history walked from its root (else None)."""
    root = LineOwners.applicable(repo, commits)
    if root is None:
        return None
    langs: dict[str, bool] = {}

    def is_source(path: str) -> bool:
        v = langs.get(path)
        if v is None:
            v = langs[path] = language_for_path(path) is not None
        return v

    owners = run.line_owners[repo.key] = LineOwners(repo, root, paths=is_source)
    return owners


def _changes_to_mine(walk: RepoWalk, run: Run, info: CommitInfo, changes: list[FileChange],
                     owners: LineOwners | None) -> list[FileChange]:
    """Record one commit's changes (line owners, each file's last change) and return those to mine: source
    files the path rules keep, with added lines."""
    todo = []
    for ch in changes:
        if owners is not None:
            owners.change(info.sha, ch)
        if not ch.path:
            continue
        if ch.old_path and not ch.added:  # pure rename: the content keeps its age
            _carry_age(walk, ch)
            continue
        if not ch.blob or ch.mode in (MODE_SYMLINK, MODE_SUBMODULE):
            continue
        walk.last_change[ch.path] = (info.sha, info.time)
        if not ch.added:
            continue
        reason = walk.reason(run, ch.path)
        if reason:
            if reason != "not_source":
                run.history_filters[reason] += 1
            continue
        todo.append(ch)
    return todo


def _carry_age(walk: RepoWalk, ch: FileChange) -> None:
    old = walk.last_change.pop(ch.old_path, None) or attribution(walk.prev_last_change, ch.old_path, None)
    if old is not None:
        walk.last_change[ch.path] = old


def mine_version(repo: Repo, info: CommitInfo, ch: FileChange, run: Run, data: bytes | None,
                 status: str) -> tuple[str | None, Any]:
    """Mine one file version from history: ``data`` and ``status`` as BlobReader.read gives them. Returns its
    cleaned text (None: unusable) and its syntax tree (None: not parsed)."""
    config = run.config
    if data is None and status == "oversized":
        run.history_filters["oversized"] += 1
        return None, None
    if data is not None:
        run.bytes += len(data)
        run.files += 1
    language = language_for_path(ch.path)
    prev = run.triggers.pop(ch.old_path or ch.path, None)
    previous = (prev[1], ch.added) if prev is not None and prev[0] == ch.old_blob and ch.hunks else None
    text, reason = run.clean_text(data, key=(ch.blob, language), previous=previous)
    if run.last_triggers is not None:
        run.triggers[ch.path] = (ch.blob, run.last_triggers)
    if text is None:
        run.history_filters[reason or "filtered"] += 1
        return None, None
    if ch.is_new:  # copies show up as new files: compare those with the files seen so far
        m = run.history_neardup.minhash(text)
        if m is not None:
            if run.history_neardup.query_groups(m) - {ch.path, ch.old_path or ""}:
                run.history_filters["near_duplicate"] += 1
                return text, None
            run.history_neardup.add(text, m, group=ch.path)
    src, tree = parse_version(run, ch, text, language)
    entry = run.blob_cache.get((ch.blob, language))
    if entry is not None:
        entry[4] = (src, tree)
    for fim in fims_for_added_lines(tree, src, ch.added, config.pairs):
        run.add_fim(fim_pair(src, fim, config.pairs, kind="fim_history", repo=repo.key, path=ch.path,
                             commit=info.sha, commit_time=info.time, language=language))
    return text, tree
