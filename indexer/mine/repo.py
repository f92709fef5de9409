"""Mining one repository: where to start (the previous run's head, ``--since``, or from scratch when the history
was rewritten), the path rules from HEAD, the history walk, the HEAD files, and the repository's report with
the state the next incremental run starts from."""

from __future__ import annotations

from typing import Any

from copilot.core.git import run_git
from indexer.filters.content import decode_utf8
from indexer.filters.paths import IgnoreRules, generated_patterns, is_ignore_file
from indexer.git.history import list_commits
from indexer.git.repo import MODE_SYMLINK, Repo, TreeEntry, head_files
from indexer.mine.config import Reporter
from indexer.mine.context import PairContext
from indexer.mine.head import HeadFiles, mine_head
from indexer.mine.history import mine_history
from indexer.mine.run import Run
from indexer.mine.walk import RepoWalk


def mine_repo(repo: Repo, prev: dict[str, Any], run: Run, reporter: Reporter, since_rev: str | None,
              since_time: int | None, drop_paths: set[tuple[str, str]], reset_repos: set[str]) -> dict[str, Any]:
    """Mine ``repo`` after its previous state ``prev``; returns its report (with the new "state")."""
    prev_commits, prev_files, rev = _start_point(repo, prev, run, since_rev, since_time, reset_repos)
    commits = list_commits(repo, rev, since_time)
    known = {c[0] for c in prev_commits}
    new_commits = [c for c in commits if c.sha not in known]
    all_commits = prev_commits + [(c.sha, c.time) for c in new_commits]
    oldest = _oldest(repo, rev, since_time, prev_commits, all_commits)
    entries = list(head_files(repo))
    rules, linguist = _path_rules(repo, entries)
    walk = RepoWalk(repo=repo, prev_last_change=prev.get("last_change", {}), prev_files=prev_files,
                    entries=entries, rules=rules, linguist=linguist, oldest=oldest)
    if run.config.pairs.context_tokens_repo > 0:
        walk.context = PairContext(repo, run.config, lambda path: walk.reason(run, path) is None)
    run.start_repo({e.sha for e in entries if e.type == "blob" and e.mode != MODE_SYMLINK
                    and prev_files.get(e.path) != e.sha})
    bytes_before, files_before = run.bytes, run.files
    if run.config.history and new_commits:
        from_root = not prev_commits and rev is None and since_time is None
        mine_history(walk, run, reporter, commits, new_commits, from_root)
    head = mine_head(walk, run, reporter, drop_paths)
    report = {"commits_total": len(all_commits), "commits_mined": len(new_commits),
              "files_mined": run.files - files_before, "bytes_mined": run.bytes - bytes_before, "since": rev}
    if walk.context is not None:
        c = walk.context
        report["context"] = {"pairs": c.filled, "non_empty": c.non_empty, "trees": c.syncs,
                             "versions_read": c.versions_read}
    return _report(walk, prev, head, all_commits, report)


def _start_point(repo: Repo, prev: dict[str, Any], run: Run, since_rev: str | None, since_time: int | None,
                 reset_repos: set[str]) -> tuple[list[tuple], dict[str, str], str | None]:
    """(commits mined before, HEAD files mined before, revision to mine after): the previous head when it is
    still in the history; when it is gone (history rewritten) the repository is mined again from scratch."""
    prev_commits = [tuple(c) for c in prev.get("commits", [])]
    prev_files: dict[str, str] = dict(prev.get("files", {}))
    prev_head = prev.get("head")
    rev = since_rev
    if rev is None and since_time is None and prev_head:
        if _is_ancestor(repo, prev_head):
            rev = prev_head
        else:
            repo.notes.append("previous head is gone (history rewritten): mined again from scratch")
            reset_repos.add(repo.key)
            prev_commits, prev_files = [], {}
            run.forget_repo(repo.key)
    return prev_commits, prev_files, rev


def _is_ancestor(repo: Repo, sha: str) -> bool:
    if repo.head is None:
        return False
    return run_git(repo.git_dir, "merge-base", "--is-ancestor", sha, repo.head).returncode == 0


def _oldest(repo: Repo, rev: str | None, since_time: int | None, prev_commits: list[tuple],
            all_commits: list[tuple]) -> tuple:
    """The (sha, time) that content no mined commit touched is attributed to."""
    if rev is not None and not prev_commits:
        # Mining starts after `rev`: content nobody touched since is as old as `rev` itself.
        sha, ct = repo.git("log", "-1", "--format=%H %ct", rev).split()
        return (sha, int(ct))
    if since_time is not None and not prev_commits:
        return ("", since_time)
    return min(all_commits, key=lambda c: c[1]) if all_commits else (repo.head or "", 0)


def _path_rules(repo: Repo, entries: list[TreeEntry]) -> tuple[IgnoreRules, Any]:
    """Ignore rules (.gitignore/.copilotignore) and linguist-generated patterns (.gitattributes) from HEAD."""
    rule_files: dict[str, str] = {}
    linguist = None
    blobs = repo.blobs()
    for e in entries:
        if e.type == "blob" and e.mode != MODE_SYMLINK and (is_ignore_file(e.path) or e.path == ".gitattributes"):
            data = blobs.read(e.sha, max_bytes=1_000_000)
            text = decode_utf8(data) if data else None
            if text is None:
                continue
            if e.path == ".gitattributes":
                linguist = generated_patterns(text)
            else:
                rule_files[e.path] = text
    return IgnoreRules(rule_files), linguist


def _report(walk: RepoWalk, prev: dict[str, Any], head: HeadFiles, all_commits: list[tuple],
            counts: dict[str, Any]) -> dict[str, Any]:
    repo = walk.repo
    lc = dict(prev.get("last_change", {}))
    lc.update({p: list(v) for p, v in walk.last_change.items()})
    return {
        "spec": repo.spec,
        "head": repo.head,
        "bare": repo.bare,
        "shallow": repo.shallow,
        **counts,
        "submodules": head.submodules,
        "notes": list(repo.notes),
        "state": {"head": repo.head, "commits": [list(c) for c in all_commits], "files": head.files,
                  "last_change": lc},
    }
