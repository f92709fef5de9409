"""One indexing run: repos -> filtered file versions -> pairs -> time split -> dataset on disk.

First run: every commit's added code (history FIM) and every HEAD file (AST-aligned FIM + explain pairs).
Later runs into the same output (same repos and settings) are incremental: only commits after the
previous head and HEAD blobs whose sha changed are mined; their pairs are appended to the pool, pairs of
changed/deleted files are replaced, and the split is recomputed over everything.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from copilot.core.types import DatasetManifest, TrainingPair, UserInputError
from indexer import dataset as ds
from indexer import filters as F
from indexer.extract import units_from_tree
from indexer.languages import SUPPORTED_LANGUAGES, get_parser, language_for_path
from indexer.pairs import PairConfig, SourceText, explain_pairs, fim_pair, fims_for_added_lines, sample_fims
from indexer.repos import (MODE_SUBMODULE, MODE_SYMLINK, CommitInfo, LineOwners, Repo, blame_lines, commit_changes,
                           head_files, list_commits, open_repo, parse_since)

TOOL_VERSION = "0.1.0"
BLOB_CACHE_BYTES = 32 << 20  # source bytes of HEAD blobs kept (with their syntax trees) from history to HEAD
LAST_PARSE_BYTES = 32 << 20  # source bytes of the last parsed version of files kept for incremental parsing
_UNSEEN = object()


@dataclass(frozen=True)
class IndexConfig:
    languages: tuple[str, ...] = SUPPORTED_LANGUAGES
    max_file_bytes: int = 1024 * 1024
    pairs: PairConfig = field(default_factory=PairConfig)
    history: bool = True
    explain: bool = True
    secrets: str = "redact"  # "redact": replace with <SECRET>; "drop": skip the whole file version
    mask_emails: bool = True
    near_dup_threshold: float = 0.8
    test_fraction: float = 0.1  # newest share of commits that forms the test split ...
    test_commits: int | None = None  # ... or the newest N commits ...
    test_days: float | None = None  # ... or the commits of the last D days

    def config_hash(self) -> str:
        blob = json.dumps(asdict(self), sort_keys=True, default=list)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


class Reporter:
    """Progress hooks; the CLI draws them with rich. The default does nothing."""

    def start(self, task: str, total: int | None, description: str = "") -> None: ...

    def advance(self, task: str, n: int = 1) -> None: ...

    def note(self, message: str) -> None: ...


@dataclass
class IndexResult:
    out: Path
    manifest: dict[str, Any]
    incremental: bool
    new_pairs: int
    bytes_mined: int
    files_mined: int
    commits_mined: int
    seconds: float
    timings: dict[str, float] = field(default_factory=dict)  # open / mine / split / write seconds


class _Run:
    """Mutable state of one run: counters, dedup indexes, new rows."""

    def __init__(self, config: IndexConfig, hash_owner: dict[str, tuple[str, str]], pair_keys: set[str]):
        self.config = config
        self.filters: Counter[str] = Counter()  # HEAD files and pairs
        self.history_filters: Counter[str] = Counter()  # file versions from history
        self.secret_seen: set[tuple[str, str]] = set()  # (kind, value hash): each secret counted once
        self.emails = 0
        self.hash_owner = hash_owner  # normalized file hash -> (repo, path) of the HEAD file mined with it
        self.pair_keys = pair_keys
        # whole file text -> MinHash: a file added in history and unchanged since is hashed once, not again at HEAD
        self.file_minhash_cache: dict[str, Any] = {}
        self.file_neardup = F.FileNearDupIndex(threshold=config.near_dup_threshold,  # HEAD files, persisted
                                               cache=self.file_minhash_cache)
        self.history_neardup = F.NearDupIndex(threshold=config.near_dup_threshold,  # grouped by path
                                              cache=self.file_minhash_cache)
        self.minhash_cache: dict[str, Any] = {}  # middle text -> MinHash: pairs are hashed again at split
        self.middle_neardup = F.NearDupIndex(threshold=config.near_dup_threshold, cache=self.minhash_cache)
        self.rows: list[dict[str, Any]] = []
        self.bytes = 0
        self.files = 0
        # HEAD blobs met in history: their cleaned text (and parse) is reused when the HEAD file is mined.
        self.head_blobs: set[str] = set()
        self.blob_cache: dict[tuple[str, str], list[Any]] = {}  # (sha, language) -> [bytes, text, reason, emails, parsed]
        self.blob_cache_bytes = 0
        # path -> (blob, language, source, tree) of its last parsed version in history: the next version of the
        # file is parsed incrementally from it (tree-sitter reuses the subtrees its diff left untouched)
        self.last_parse: dict[str, tuple[str, str, SourceText, Any]] = {}
        self.last_parse_bytes = 0
        # path -> (blob, secret triggers) of its last cleaned version: the next version is searched for the
        # triggers of this one and of its added lines only
        self.triggers: dict[str, tuple[str, frozenset[str]]] = {}
        self.last_triggers: frozenset[str] | None = None
        self.line_owners: dict[str, LineOwners] = {}  # repo key -> lines' commits from the walk (instead of blame)
        self.blamed = 0  # files dated line by line with git blame (the walk could not say)

    # -- filters

    def path_reason(self, path: str, rules: F.IgnoreRules, linguist) -> str | None:
        if F.is_env_file(path):
            return "env_file"
        if F.is_lockfile(path):
            return "generated"
        lang = language_for_path(path)
        if lang is None:
            return "not_source"
        if lang not in self.config.languages:
            return "language_not_selected"
        if F.is_ignored(path, rules):
            return "ignored"
        if F.is_vendored(path):
            return "vendored"
        if F.is_generated_path(path, linguist):
            return "generated"
        return None

    def count(self, reason: str) -> None:
        if reason != "not_source":
            self.filters[reason] += 1

    def clean_text(self, data: bytes | None, key: tuple[str, str] | None = None,
                   previous: tuple[frozenset[str], list[tuple[int, int]]] | None = None
                   ) -> tuple[str | None, str | None]:
        """(text, None) for a usable file version (secrets redacted, emails masked), else (None, reason).
        With ``key`` (blob sha, language) of a HEAD blob, the result is kept for the HEAD file (``cached``).
        ``previous``: the secret triggers of the version this one was diffed against and the line ranges added
        since (see ``F.scan_secrets``). ``last_triggers`` is set to this version's triggers (None: not scanned)."""
        emails = self.emails
        text, reason = self._clean_text(data, previous)
        if (key is not None and data is not None and key[0] in self.head_blobs
                and self.blob_cache_bytes + len(data) <= BLOB_CACHE_BYTES):
            self.blob_cache[key] = [len(data), text, reason, self.emails - emails, None]
            self.blob_cache_bytes += len(data)
        return text, reason

    def cached(self, key: tuple[str, str]) -> list[Any] | None:
        """The clean result kept for a HEAD blob (counted again, as if read and cleaned again), or None."""
        entry = self.blob_cache.pop(key, None)
        if entry is not None:
            self.blob_cache_bytes -= entry[0]
            self.bytes += entry[0]
            self.emails += entry[3]
        return entry

    def _clean_text(self, data: bytes | None, previous=None) -> tuple[str | None, str | None]:
        self.last_triggers = None
        if data is None:
            return None, "missing_object"
        if F.is_binary(data):
            return None, "binary"
        text = F.decode_utf8(data)
        if text is None:
            return None, "invalid_utf8"
        if F.is_generated_text(text):
            return None, "generated"
        if F.is_minified(text):
            return None, "minified"
        triggered = None
        if previous is not None:
            lines = text.split("\n")
            added = "\n".join("\n".join(lines[a:b + 1]) for a, b in previous[1]).lower()
            triggered = previous[0] | F.trigger_kinds(added)
        hits, self.last_triggers = F.scan_secrets(text, triggered=triggered)
        if hits:
            self.secret_seen |= F.secret_fingerprints(text, hits)
            if self.config.secrets == "drop":
                return None, "secret_dropped"
            text = F.redact_secrets(text, hits)
        if self.config.mask_emails:
            text, n = F.mask_emails(text)
            self.emails += n
        return text, None

    # -- pairs

    def add_fim(self, pair: TrainingPair) -> bool:
        key = F.normalized_hash(pair.prefix[-400:] + "\0" + pair.middle + "\0" + pair.suffix[:200])
        if key in self.pair_keys:
            self.filters["duplicate_pair"] += 1
            return False
        if self.middle_neardup.check_and_add(pair.middle):
            self.filters["near_duplicate_pair"] += 1
            return False
        self.pair_keys.add(key)
        self.rows.append(_row(pair))
        return True


_FIELDS = ds.COLUMNS


def _row(pair: TrainingPair) -> dict[str, Any]:
    return {f: getattr(pair, f) for f in _FIELDS}  # dataclasses.asdict deep-copies: 10x slower


def _identity(repos: list[Repo], config: IndexConfig) -> dict[str, Any]:
    return {"repos": sorted(r.key for r in repos), "config_hash": config.config_hash()}


def index_repos(specs: list[str], out: str | Path, config: IndexConfig | None = None, *, since: str | None = None,
                force: bool = False, reporter: Reporter | None = None) -> IndexResult:
    """Mine ``specs`` (paths, bare repos or URLs) into the dataset at ``out``. See the module docstring."""
    config = config or IndexConfig()
    reporter = reporter or Reporter()
    if not specs:
        raise UserInputError("give at least one repository")
    if config.secrets not in ("redact", "drop"):
        raise UserInputError("secrets policy must be 'redact' or 'drop'")
    t0 = time.perf_counter()
    out = Path(out).expanduser()
    repos: list[Repo] = []
    try:
        for spec in specs:
            repo = open_repo(spec)
            if any(r.key == repo.key for r in repos):
                repo.close()
                continue
            repos.append(repo)
        t_open = time.perf_counter()
        identity = _identity(repos, config)
        previous = ds.check_target(out, identity, force)
        incremental = previous is not None
        state = ds.read_state(out) if incremental else {}
        pool = ds.read_pool(out) if incremental else []
        sig_keys, sig_matrix = ds.read_signatures(out) if incremental else ([], None)
        hash_owner = {h: (key, path) for key, st in (state.get("repos") or {}).items()
                      for path, h in st.get("hashes", {}).items()}
        run = _Run(config, hash_owner,
                   {F.normalized_hash(r["prefix"][-400:] + "\0" + r["middle"] + "\0" + r["suffix"][:200])
                    for r in pool if r["kind"] != "explain"})
        run.file_neardup.load(sig_keys, sig_matrix)
        since_rev, since_time = parse_since(since) if since else (None, None)
        repo_states: dict[str, Any] = {}
        repo_reports: dict[str, Any] = {}
        drop_paths: set[tuple[str, str]] = set()
        reset_repos: set[str] = set()
        commits_mined = 0
        for repo in repos:
            prev = (state.get("repos") or {}).get(repo.key, {})
            with F.detect_secrets_session():
                info = _mine_repo(repo, prev, run, reporter, since_rev, since_time, drop_paths, reset_repos)
            repo_states[repo.key] = info.pop("state")
            repo_reports[repo.key] = info
            commits_mined += info["commits_mined"]
        t_mine = time.perf_counter()
        # Merge with the previous pool: replaced files and rewritten repos lose their old rows.
        kept = [r for r in pool
                if r["repo"] not in reset_repos
                and not (r["kind"] in ("fim_file", "explain") and (r["repo"], r["path"]) in drop_paths)]
        all_rows = kept + run.rows
        all_commits = [(sha, t) for st in repo_states.values() for sha, t in st["commits"]]
        test_commits: set[str] = set()
        for st in repo_states.values():  # each repo's own newest commits: a stale repo still gets a test split
            test_commits |= choose_test_commits([(sha, t) for sha, t in st["commits"]], config)
        repo_by_key = {r.key: r for r in repos}

        def lines_of(key: str, path: str) -> list[str]:
            owners = run.line_owners.get(key)
            blob = repo_states[key]["files"].get(path) if key in repo_states else None
            lines = owners.lines(path, blob) if owners is not None and blob else None
            if lines is None:
                run.blamed += 1
                repo = repo_by_key.get(key)
                lines = blame_lines(repo, path) if repo is not None else []
            return lines

        redated = reattribute_by_blame(lines_of, run.rows, test_commits, dict(all_commits))
        if redated:
            how = (f"{run.blamed} by git blame, {redated - run.blamed} from the history walk's diffs" if run.blamed
                   else "from the history walk's diffs")
            reporter.note(f"attributed pairs of {redated} recently changed files line by line ({how})")
        splits, leaks = split_rows(all_rows, test_commits, config.near_dup_threshold, cache=run.minhash_cache)
        run.filters["test_leak"] += leaks
        manifest = _manifest(repos, repo_reports, config, splits, run, identity, test_commits, all_commits,
                             incremental, previous)
        for key, st in repo_states.items():
            st["hashes"] = {path: h for h, (k, path) in run.hash_owner.items() if k == key}
        new_state = {"repos": repo_states}
        reporter.note(f"writing {sum(len(v) for v in splits.values())} pairs to {out}")
        t_split = time.perf_counter()
        ds.write_dataset(out, splits, all_rows, new_state, manifest, signatures=run.file_neardup.export())
        t_end = time.perf_counter()
        timings = {"open": t_open - t0, "mine": t_mine - t_open, "split": t_split - t_mine, "write": t_end - t_split}
        return IndexResult(out=out, manifest=manifest, incremental=incremental, new_pairs=len(run.rows),
                           bytes_mined=run.bytes, files_mined=run.files, commits_mined=commits_mined,
                           seconds=t_end - t0, timings=timings)
    finally:
        for repo in repos:
            repo.close()


def _mine_repo(repo: Repo, prev: dict[str, Any], run: _Run, reporter: Reporter, since_rev: str | None,
               since_time: int | None, drop_paths: set[tuple[str, str]], reset_repos: set[str]) -> dict[str, Any]:
    config = run.config
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
            for h in [h for h, (k, _) in run.hash_owner.items() if k == repo.key]:
                del run.hash_owner[h]
            for key in [k for k in run.file_neardup.keys() if k.split("\0", 1)[0] == repo.key]:
                run.file_neardup.remove(key)
    commits = list_commits(repo, rev, since_time)
    known = {c[0] for c in prev_commits}
    new_commits = [c for c in commits if c.sha not in known]
    all_commits = prev_commits + [(c.sha, c.time) for c in new_commits]
    if rev is not None and not prev_commits:
        # Mining starts after `rev`: content nobody touched since is as old as `rev` itself.
        sha, ct = repo.git("log", "-1", "--format=%H %ct", rev).split()
        oldest: tuple = (sha, int(ct))
    elif since_time is not None and not prev_commits:
        oldest = ("", since_time)
    else:
        oldest = min(all_commits, key=lambda c: c[1]) if all_commits else (repo.head or "", 0)

    # ignore rules and generated markers from HEAD
    entries = list(head_files(repo))
    rule_files: dict[str, str] = {}
    linguist = None
    blobs = repo.blobs()
    for e in entries:
        if e.type == "blob" and e.mode != MODE_SYMLINK and (F.is_ignore_file(e.path) or e.path == ".gitattributes"):
            data = blobs.read(e.sha, max_bytes=1_000_000)
            text = F.decode_utf8(data) if data else None
            if text is None:
                continue
            if e.path == ".gitattributes":
                linguist = F.generated_patterns(text)
            else:
                rule_files[e.path] = text
    rules = F.IgnoreRules(rule_files)
    path_reasons: dict[str, Any] = {}

    # history: the code each new commit added
    last_change: dict[str, tuple[str, int]] = {}
    run.head_blobs = {e.sha for e in entries if e.type == "blob" and e.mode != MODE_SYMLINK
                      and prev_files.get(e.path) != e.sha}
    run.blob_cache.clear()
    run.blob_cache_bytes = 0
    bytes_before = run.bytes
    files_before = run.files
    owners = None
    if config.history and new_commits and not prev_commits and rev is None and since_time is None:
        root = LineOwners.applicable(repo, commits)
        if root is not None:  # a linear history walked from its root: lines are dated from its diffs
            langs: dict[str, bool] = {}

            def is_source(path: str) -> bool:
                v = langs.get(path)
                if v is None:
                    v = langs[path] = language_for_path(path) is not None
                return v

            owners = run.line_owners[repo.key] = LineOwners(repo, root, paths=is_source)
    if config.history and new_commits:
        reporter.start("commits", len(new_commits), f"commits {repo.spec}")
        reporter.advance("commits", sum(1 for c in new_commits if len(c.parents) != 1))  # roots, merges
        for info, changes in commit_changes(repo, new_commits):
            reporter.advance("commits", 1)
            todo = []
            for ch in changes:
                if owners is not None:
                    owners.change(info.sha, ch)
                if not ch.path:
                    continue
                if ch.old_path and not ch.added:  # pure rename: the content keeps its age
                    old = last_change.pop(ch.old_path, None) or _attribution(prev.get("last_change", {}),
                                                                             ch.old_path, None)
                    if old is not None:
                        last_change[ch.path] = old
                    continue
                if not ch.blob or ch.mode in (MODE_SYMLINK, MODE_SUBMODULE):
                    continue
                last_change[ch.path] = (info.sha, info.time)
                if not ch.added:
                    continue
                reason = path_reasons.get(ch.path, _UNSEEN)
                if reason is _UNSEEN:  # the same paths change in commit after commit: their rules are checked once
                    reason = path_reasons[ch.path] = run.path_reason(ch.path, rules, linguist)
                if reason:
                    if reason != "not_source":
                        run.history_filters[reason] += 1
                    continue
                todo.append(ch)
            # the commit's blobs in one round trip to git
            for ch, (_, data, status) in zip(todo, blobs.read_many([ch.blob for ch in todo], config.max_file_bytes)):
                _mine_history_version(repo, info, ch, run, data, status)
    # HEAD files
    # Files that changed or went away give up their content hash before anything is compared.
    head_blobs = {e.path: e.sha for e in entries}
    for h in [h for h, (k, p) in run.hash_owner.items()
              if k == repo.key and head_blobs.get(p) != prev_files.get(p)]:
        del run.hash_owner[h]
    for key in run.file_neardup.keys():
        k, _, p = key.partition("\0")
        if k == repo.key and head_blobs.get(p) != prev_files.get(p):
            run.file_neardup.remove(key)
    new_files: dict[str, str] = {}
    copies: set[str] = set()
    head_info = {"files_total": 0, "submodules": []}
    # The blobs the loop below will read, requested from git in one go (same conditions, no side effects).
    to_read: list[str] = []
    from_cache: set[tuple[str, str]] = set()
    reasons: dict[str, str | None] = {}
    for e in entries:
        if e.type != "blob" or e.mode in (MODE_SUBMODULE, MODE_SYMLINK) or prev_files.get(e.path) == e.sha:
            continue
        reason = path_reasons.get(e.path, _UNSEEN)
        reasons[e.path] = reason if reason is not _UNSEEN else run.path_reason(e.path, rules, linguist)
        if reasons[e.path] or F.is_oversized(e.size, config.max_file_bytes):
            continue
        key = (e.sha, language_for_path(e.path))
        if key in run.blob_cache and key not in from_cache:
            from_cache.add(key)
        else:
            to_read.append(e.sha)
    reads = blobs.read_many(to_read, config.max_file_bytes)
    reporter.start("files", len(entries), f"files {repo.spec}")
    for e in entries:
        reporter.advance("files", 1)
        if e.mode == MODE_SUBMODULE or e.type == "commit":
            run.count("submodule")
            head_info["submodules"].append(e.path)
            repo.notes.append(f"submodule {e.path} skipped")
            continue
        if e.type != "blob":
            continue
        if e.mode == MODE_SYMLINK:
            run.count("symlink")
            continue
        new_files[e.path] = e.sha
        if prev_files.get(e.path) == e.sha:
            continue  # unchanged blob: mined before
        if prev_files:
            drop_paths.add((repo.key, e.path))
        reason = reasons[e.path] if e.path in reasons else run.path_reason(e.path, rules, linguist)
        if reason:
            run.count(reason)
            continue
        head_info["files_total"] += 1
        if F.is_oversized(e.size, config.max_file_bytes):
            run.count("oversized")
            continue
        cached = run.cached((e.sha, language_for_path(e.path)))
        if cached is not None:
            text, reason, parsed = cached[1], cached[2], cached[4]
        else:
            sha, data, _ = next(reads)
            if sha != e.sha:  # the request list above must follow this loop's conditions exactly
                raise RuntimeError(f"blob reads out of step at {e.path}")
            if data is not None:
                run.bytes += len(data)
            text, reason = run.clean_text(data)
            parsed = None
        if text is None:
            run.count(reason or "filtered")
            if reason == "missing_object":
                repo.notes.append(f"{e.path}: object {e.sha[:12]} missing or corrupt, skipped")
            continue
        h = F.normalized_hash(text)
        owner = run.hash_owner.get(h)
        if owner is not None and owner != (repo.key, e.path):
            run.count("exact_duplicate")
            continue
        run.hash_owner[h] = (repo.key, e.path)
        if run.file_neardup.check_and_add(f"{repo.key}\0{e.path}", text):
            run.count("near_duplicate")
            copies.add(e.path)
            continue
        commit, ctime = last_change.get(e.path) or _attribution(prev.get("last_change", {}), e.path, oldest)
        _mine_current_file(repo, e.path, e.sha, text, commit, ctime, run, parsed)
    for _ in reads:  # nothing left unless an entry above was skipped unexpectedly: keep git's stream in step
        pass
    for path in prev_files:
        if path not in new_files:
            drop_paths.add((repo.key, path))
    if copies:  # the history of a file that is a near-copy of another one goes too
        before = len(run.rows)
        run.rows = [r for r in run.rows if not (r["repo"] == repo.key and r["kind"] == "fim_history"
                                                 and r["path"] in copies)]
        run.history_filters["near_duplicate_pairs"] += before - len(run.rows)
    run.blob_cache.clear()
    run.blob_cache_bytes = 0
    run.head_blobs = set()
    lc = dict(prev.get("last_change", {}))
    lc.update({p: list(v) for p, v in last_change.items()})
    return {
        "spec": repo.spec,
        "head": repo.head,
        "bare": repo.bare,
        "shallow": repo.shallow,
        "commits_total": len(all_commits),
        "commits_mined": len(new_commits),
        "files_mined": run.files - files_before,
        "bytes_mined": run.bytes - bytes_before,
        "since": rev,
        "submodules": head_info["submodules"],
        "notes": list(repo.notes),
        "state": {"head": repo.head, "commits": [list(c) for c in all_commits], "files": new_files,
                  "last_change": lc},
    }


def _is_ancestor(repo: Repo, sha: str) -> bool:
    import subprocess

    if repo.head is None:
        return False
    proc = subprocess.run(["git", "merge-base", "--is-ancestor", sha, repo.head], cwd=str(repo.git_dir),
                          capture_output=True)
    return proc.returncode == 0


def _attribution(prev_last_change: dict[str, list], path: str, oldest: tuple | None) -> tuple[str, int] | None:
    """The commit a file's current content is attributed to: its last change, else the oldest commit
    (content that came with the root commit)."""
    if path in prev_last_change:
        sha, t = prev_last_change[path]
        return sha, int(t)
    return (oldest[0], int(oldest[1])) if oldest is not None else None


def _parse(text: str, language: str):
    src = SourceText(text)
    return src, get_parser(language).parse(src.data)


def _parse_version(run: _Run, ch, text: str, language: str):
    """Parse a file version from history; incrementally from the version it was diffed against when that one
    was parsed last (its tree is copied, edited by the diff's hunks and handed to tree-sitter)."""
    prev = run.last_parse.pop(ch.old_path or ch.path, None)
    if prev is not None:
        run.last_parse_bytes -= len(prev[2].data)
    src = SourceText(text)
    tree = None
    if prev is not None and prev[0] == ch.old_blob and prev[1] == language and ch.hunks:
        edits = _hunk_edits(prev[2], src, ch.hunks)
        if edits is not None:
            old = prev[3].copy()
            for edit in reversed(edits):
                old.edit(*edit)
            tree = get_parser(language).parse(src.data, old)
    if tree is None:
        tree = get_parser(language).parse(src.data)
    run.last_parse[ch.path] = (ch.blob, language, src, tree)
    run.last_parse_bytes += len(src.data)
    while run.last_parse_bytes > LAST_PARSE_BYTES and run.last_parse:
        oldest = next(iter(run.last_parse))
        run.last_parse_bytes -= len(run.last_parse.pop(oldest)[2].data)
    return src, tree


def _hunk_edits(old: SourceText, new: SourceText, hunks: list[tuple[int, int, int, int]]):
    """tree-sitter edits (start, old end, new end bytes and points) turning ``old`` into ``new``, from git's
    line hunks; None unless the text between the hunks is exactly the same in both (redactions may have moved
    lines): then the caller parses from scratch."""
    def at(src: SourceText, line: int) -> int:
        starts = src.line_starts
        return starts[line] if line < len(starts) else len(src.data)

    def point(src: SourceText, pos: int) -> tuple[int, int]:
        row = src.line_of(pos)
        return row, pos - src.line_starts[row]

    od, nd = old.data, new.data
    ranges = []
    po = pn = 0
    for o_start, o_n, n_start, n_n in hunks:
        o0 = at(old, o_start if o_n == 0 else o_start - 1)
        o1 = at(old, o_start - 1 + o_n) if o_n else o0
        n0 = at(new, n_start if n_n == 0 else n_start - 1)
        n1 = at(new, n_start - 1 + n_n) if n_n else n0
        if o0 < po or n0 < pn or o1 < o0 or n1 < n0 or od[po:o0] != nd[pn:n0]:
            return None
        ranges.append((o0, o1, n0, n1))
        po, pn = o1, n1
    if od[po:] != nd[pn:]:
        return None
    edits = []
    for o0, o1, n0, n1 in ranges:
        seg = nd[n0:n1]
        row, col = point(old, o0)
        nl = seg.count(b"\n")
        end = (row + nl, len(seg) - seg.rfind(b"\n") - 1) if nl else (row, col + len(seg))
        edits.append((o0, o1, o0 + (n1 - n0), (row, col), point(old, o1), end))
    return edits


def _mine_history_version(repo: Repo, info: CommitInfo, ch, run: _Run, data: bytes | None, status: str) -> None:
    """Mine one file version from history: ``data`` and ``status`` as BlobReader.read gives them."""
    config = run.config
    if data is None and status == "oversized":
        run.history_filters["oversized"] += 1
        return
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
        return
    if ch.is_new:  # copies show up as new files: compare those with the files seen so far
        m = run.history_neardup.minhash(text)
        if m is not None:
            if run.history_neardup.query_groups(m) - {ch.path, ch.old_path or ""}:
                run.history_filters["near_duplicate"] += 1
                return
            run.history_neardup.add(text, m, group=ch.path)
    src, tree = _parse_version(run, ch, text, language)
    entry = run.blob_cache.get((ch.blob, language))
    if entry is not None:
        entry[4] = (src, tree)
    for fim in fims_for_added_lines(tree, src, ch.added, config.pairs):
        run.add_fim(fim_pair(src, fim, config.pairs, kind="fim_history", repo=repo.key, path=ch.path,
                             commit=info.sha, commit_time=info.time, language=language))


def _mine_current_file(repo: Repo, path: str, blob: str, text: str, commit: str, ctime: int, run: _Run,
                       parsed: tuple[SourceText, Any] | None = None) -> None:
    config = run.config
    language = language_for_path(path)
    run.files += 1
    src, tree = parsed if parsed is not None else _parse(text, language)
    rng = random.Random(f"{config.pairs.seed}:{blob}")
    for fim in sample_fims(tree, src, config.pairs, rng):
        run.add_fim(fim_pair(src, fim, config.pairs, kind="fim_file", repo=repo.key, path=path, commit=commit,
                             commit_time=ctime, language=language))
    if config.explain:
        units = units_from_tree(tree.root_node, src.data, language, path)
        for pair in explain_pairs(units, config.pairs, repo=repo.key, commit=commit, commit_time=ctime):
            key = F.normalized_hash(pair.prompt + "\0" + pair.completion)
            if key in run.pair_keys:
                run.filters["duplicate_pair"] += 1
                continue
            run.pair_keys.add(key)
            run.rows.append(_row(pair))


# ---------------------------------------------------------------- split


def reattribute_by_blame(lines_of, rows: list[dict[str, Any]], test_commits: set[str], times: dict[str, int]) -> int:
    """Current-file pairs are first dated by their file's last change. For files last changed by a test
    commit, date each pair by the newest commit among the lines it covers instead (``lines_of(repo key, path)``:
    the commit of each line at HEAD, as ``git blame`` gives it), so old code in a recently touched file stays
    in train. Returns how many files were dated line by line."""
    todo: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        if r["kind"] in ("fim_file", "explain") and r["commit"] in test_commits:
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
    exact = {F.normalized_hash(_middle(r)) for r in test}
    near = F.NearDupIndex(threshold=threshold, cache=cache)
    for r in test:
        near.add(_middle(r))
    kept, removed = [], 0
    for r in train:
        m = _middle(r)
        if F.normalized_hash(m) in exact or near.query(m):
            removed += 1
            continue
        kept.append(r)
    return {"train": kept, "test": test}, removed


# ---------------------------------------------------------------- manifest


def _manifest(repos, reports, config: IndexConfig, splits, run: _Run, identity, test_commits, all_commits,
              incremental: bool, previous: dict[str, Any] | None) -> dict[str, Any]:
    rows = splits["train"] + splits["test"]
    counts: dict[str, Any] = {
        "total": len(rows),
        "by_split": {k: len(v) for k, v in splits.items()},
        "by_kind": dict(Counter(r["kind"] for r in rows)),
        "by_language": dict(Counter(r["language"] for r in rows)),
        "by_kind_split": dict(Counter(f"{r['kind']}/{r['split']}" for r in rows)),
        "this_run": {"new_pairs": len(run.rows), "files_mined": run.files, "bytes_mined": run.bytes,
                     "commits_mined": sum(r["commits_mined"] for r in reports.values())},
    }
    fingerprint = hashlib.sha256(json.dumps(
        {"config": identity["config_hash"], "heads": {r.key: r.head for r in repos}}, sort_keys=True
    ).encode()).hexdigest()[:24]
    test_times = [t for sha, t in all_commits if sha in test_commits]
    secrets = dict(sorted(Counter(kind for kind, _ in run.secret_seen).items()))
    prev_runs = (previous or {}).get("extra", {}).get("runs", [])
    manifest = DatasetManifest(
        fingerprint=fingerprint,
        config_hash=identity["config_hash"],
        repos=reports,
        counts=counts,
        filters=dict(sorted(run.filters.items())),
        secrets=secrets,
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        tool_version=TOOL_VERSION,
        extra={
            "identity": identity,
            "config": json.loads(json.dumps(asdict(config), default=list)),
            "split": {"test_commits": len(test_commits), "total_commits": len(all_commits), "per_repo": True,
                      "test_since": min(test_times) if test_times else None,
                      "rule": ("days" if config.test_days is not None else
                               "commits" if config.test_commits is not None else "fraction")},
            "history_filters": dict(sorted(run.history_filters.items())),
            "secrets_action": config.secrets,
            "secrets_found": sum(secrets.values()),
            "emails_masked": run.emails,
            "incremental": incremental,
            "prompt_format": "qwen-fim-psm",
            "runs": prev_runs + [{"time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                                  "incremental": incremental, **counts["this_run"]}],
        },
    )
    return manifest.to_dict()
