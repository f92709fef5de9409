"""Mining HEAD's files: every file whose blob changed since the last run (all of them the first time) gives
FIM pairs sampled over the file, typing points and explain pairs, dated by its last change; duplicates of other files
(exact or near) are skipped, and a near-copy's history goes too. The FIM pairs get their repository context from
HEAD's tree (indexer.mine.context)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from indexer.extract import units_from_tree
from indexer.filters.dedup import normalized_hash
from indexer.filters.paths import is_oversized
from indexer.git.repo import MODE_SUBMODULE, MODE_SYMLINK, Repo, TreeEntry
from indexer.languages import language_for_path
from indexer.mine.config import Reporter
from indexer.mine.parse import parse
from indexer.mine.run import Run, row_of
from indexer.mine.walk import RepoWalk, attribution
from indexer.pairs import SourceText, explain_pairs, fim_pair, sample_fims
from indexer.typing_points import sample_typing_points


@dataclass
class HeadFiles:
    files: dict[str, str] = field(default_factory=dict)  # path -> blob of every HEAD file (the next run's baseline)
    submodules: list[str] = field(default_factory=list)
    copies: set[str] = field(default_factory=set)  # files skipped as near-copies of another file


def mine_head(walk: RepoWalk, run: Run, reporter: Reporter, drop_paths: set[tuple[str, str]]) -> HeadFiles:
    """Mine HEAD's changed files; the previous rows of changed or deleted files go into ``drop_paths``."""
    repo = walk.repo
    _forget_changed(walk, run)
    head = HeadFiles()
    reads = repo.blobs().read_many(_blobs_to_read(walk, run), run.config.max_file_bytes)
    reporter.start("files", len(walk.entries), f"files {repo.spec}")
    start = len(run.rows)
    for e in walk.entries:
        reporter.advance("files", 1)
        if not _to_mine(walk, run, e, head, drop_paths):
            continue
        text, parsed = _clean_entry(repo, run, e, reads)
        if text is None or _is_duplicate(repo, run, e.path, text, head):
            if walk.context is not None:
                walk.context.offer(e.sha, text)
            continue
        commit, ctime = walk.last_change.get(e.path) or attribution(walk.prev_last_change, e.path, walk.oldest)
        tree = mine_current_file(repo, e.path, e.sha, text, commit, ctime, run, parsed)
        if walk.context is not None:
            walk.context.offer(e.sha, text, tree)
    for _ in reads:  # nothing left unless an entry above was skipped unexpectedly: keep git's stream in step
        pass
    if walk.context is not None:
        walk.context.fill(run.rows[start:], entries=walk.entries)
    for path in walk.prev_files:
        if path not in head.files:
            drop_paths.add((repo.key, path))
    if head.copies:
        _drop_history_of(repo, run, head.copies)
    run.end_repo()
    return head


def _forget_changed(walk: RepoWalk, run: Run) -> None:
    """Files that changed or went away give up their content hash before anything is compared."""
    repo, prev_files = walk.repo, walk.prev_files
    head_blobs = {e.path: e.sha for e in walk.entries}
    for h in [h for h, (k, p) in run.hash_owner.items()
              if k == repo.key and head_blobs.get(p) != prev_files.get(p)]:
        del run.hash_owner[h]
    for key in run.file_neardup.keys():
        k, _, p = key.partition("\0")
        if k == repo.key and head_blobs.get(p) != prev_files.get(p):
            run.file_neardup.remove(key)


def _blobs_to_read(walk: RepoWalk, run: Run) -> list[str]:
    """The blobs the loop of :func:`mine_head` will read, to request from git in one go (same conditions, no
    side effects): changed files the rules keep, unless the history walk left their cleaned text."""
    to_read: list[str] = []
    from_cache: set[tuple[str, str]] = set()
    for e in walk.entries:
        if e.type != "blob" or e.mode in (MODE_SUBMODULE, MODE_SYMLINK) or walk.prev_files.get(e.path) == e.sha:
            continue
        if walk.reason(run, e.path) or is_oversized(e.size, run.config.max_file_bytes):
            continue
        key = (e.sha, language_for_path(e.path))
        if key in run.blob_cache and key not in from_cache:
            from_cache.add(key)
        else:
            to_read.append(e.sha)
    return to_read


def _to_mine(walk: RepoWalk, run: Run, e: TreeEntry, head: HeadFiles, drop_paths: set[tuple[str, str]]) -> bool:
    """Whether to mine a HEAD entry: not a submodule or symlink, changed, kept by the rules, not oversized
    (what is skipped is counted)."""
    repo = walk.repo
    if e.mode == MODE_SUBMODULE or e.type == "commit":
        run.count("submodule")
        head.submodules.append(e.path)
        repo.notes.append(f"submodule {e.path} skipped")
        return False
    if e.type != "blob":
        return False
    if e.mode == MODE_SYMLINK:
        run.count("symlink")
        return False
    head.files[e.path] = e.sha
    if walk.prev_files.get(e.path) == e.sha:
        return False  # unchanged blob: mined before
    if walk.prev_files:
        drop_paths.add((repo.key, e.path))
    reason = walk.reason(run, e.path)
    if reason:
        run.count(reason)
        return False
    if is_oversized(e.size, run.config.max_file_bytes):
        run.count("oversized")
        return False
    return True


def _clean_entry(repo: Repo, run: Run, e: TreeEntry, reads: Iterator[tuple[str, bytes | None, str]]
                 ) -> tuple[str | None, tuple[SourceText, Any] | None]:
    """(clean text, parse kept from history) of a HEAD file: from the history walk's cache, else the next
    blob read; (None, None) when filtered (counted)."""
    cached = run.cached((e.sha, language_for_path(e.path)))
    if cached is not None:
        text, reason, parsed = cached[1], cached[2], cached[4]
    else:
        sha, data, _ = next(reads)
        if sha != e.sha:  # the request list must follow mine_head's conditions exactly
            raise RuntimeError(f"blob reads out of step at {e.path}")
        if data is not None:
            run.bytes += len(data)
        text, reason = run.clean_text(data)
        parsed = None
    if text is None:
        run.count(reason or "filtered")
        if reason == "missing_object":
            repo.notes.append(f"{e.path}: object {e.sha[:12]} missing or corrupt, skipped")
        return None, None
    return text, parsed


def _is_duplicate(repo: Repo, run: Run, path: str, text: str, head: HeadFiles) -> bool:
    """An exact duplicate of a file mined with another path, or a near-copy of another file (counted)."""
    h = normalized_hash(text)
    owner = run.hash_owner.get(h)
    if owner is not None and owner != (repo.key, path):
        run.count("exact_duplicate")
        return True
    run.hash_owner[h] = (repo.key, path)
    if run.file_neardup.check_and_add(f"{repo.key}\0{path}", text):
        run.count("near_duplicate")
        head.copies.add(path)
        return True
    return False


def _drop_history_of(repo: Repo, run: Run, copies: set[str]) -> None:
    """The history of a file that is a near-copy of another one goes too."""
    before = len(run.rows)
    run.rows = [r for r in run.rows if not (r["repo"] == repo.key and r["kind"] == "fim_history"
                                             and r["path"] in copies)]
    run.history_filters["near_duplicate_pairs"] += before - len(run.rows)


def mine_current_file(repo: Repo, path: str, blob: str, text: str, commit: str, ctime: int, run: Run,
                       parsed: tuple[SourceText, Any] | None = None) -> Any:
    """FIM pairs, typing points and explain pairs of one current file; returns its syntax tree."""
    config = run.config
    language = language_for_path(path)
    run.files += 1
    src, tree = parsed if parsed is not None else parse(text, language)
    rng = random.Random(f"{config.pairs.seed}:{blob}")
    for fim in sample_fims(tree, src, config.pairs, rng):
        run.add_fim(fim_pair(src, fim, config.pairs, kind="fim_file", repo=repo.key, path=path, commit=commit,
                             commit_time=ctime, language=language))
    typing_rng = random.Random(f"{config.pairs.seed}:typing:{blob}")  # its own draws: fim_file pairs stay put
    for fim in sample_typing_points(tree, src, config.pairs, typing_rng):
        run.add_fim(fim_pair(src, fim, config.pairs, kind="fim_typing", repo=repo.key, path=path, commit=commit,
                             commit_time=ctime, language=language))
    if config.explain:
        units = units_from_tree(tree.root_node, src.data, language, path)
        for pair in explain_pairs(units, config.pairs, repo=repo.key, commit=commit, commit_time=ctime):
            key = normalized_hash(pair.prompt + "\0" + pair.completion)
            if key in run.pair_keys:
                run.filters["duplicate_pair"] += 1
                continue
            run.pair_keys.add(key)
            run.rows.append(row_of(pair))
    return tree
