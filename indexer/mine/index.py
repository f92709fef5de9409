"""One indexing run: repos -> filtered file versions -> pairs -> time split -> dataset on disk.

First run: every commit's added code (history FIM) and every HEAD file (AST-aligned FIM, typing points and
explain pairs).
Later runs into the same output (same repos and settings) are incremental: only commits after the
previous head and HEAD blobs whose sha changed are mined; their pairs are appended to the pool, pairs of
changed/deleted files are replaced, and the split is recomputed over everything.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from copilot.core.clock import now_iso
from copilot.core.files import sha256_json
from copilot.core.types import DatasetManifest, UserInputError
from indexer import dataset as ds
from indexer.filters.secrets import detect_secrets_session
from indexer.git.blame import blame_lines
from indexer.git.history import parse_since
from indexer.git.repo import Repo, open_repo
from indexer.mine.config import IndexConfig, IndexResult, Reporter
from indexer.mine.repo import mine_repo
from indexer.mine.run import Run, fim_key
from indexer.mine.split import choose_test_commits, reattribute_by_blame, split_rows
from indexer.pairs import FIM_KINDS, HEAD_KINDS

TOOL_VERSION = "0.1.0"


@dataclass
class _Mined:
    """What mining every repository gave, per repository key."""

    states: dict[str, Any] = field(default_factory=dict)  # the state the next run starts from
    reports: dict[str, Any] = field(default_factory=dict)
    drop_paths: set[tuple[str, str]] = field(default_factory=set)  # (repo, path): files whose old rows go
    reset_repos: set[str] = field(default_factory=set)  # repos mined again from scratch: all old rows go
    commits: int = 0


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
        _open_repos(specs, repos)
        t_open = time.perf_counter()
        identity = _identity(repos, config)
        previous = ds.check_target(out, identity, force)
        incremental = previous is not None
        state, pool, run = _resume(out, config, incremental)
        mined = _mine_all(repos, state, run, reporter, since)
        t_mine = time.perf_counter()
        all_rows = _merge_pool(pool, mined, run.rows)
        all_commits = [(sha, t) for st in mined.states.values() for sha, t in st["commits"]]
        test_commits: set[str] = set()
        for st in mined.states.values():  # each repo's own newest commits: a stale repo still gets a test split
            test_commits |= choose_test_commits([(sha, t) for sha, t in st["commits"]], config)
        _date_lines(run, repos, mined.states, test_commits, all_commits, reporter)
        splits, leaks = split_rows(all_rows, test_commits, config.near_dup_threshold, cache=run.minhash_cache)
        run.filters["test_leak"] += leaks
        manifest = _manifest(repos, mined.reports, config, splits, run, identity, test_commits, all_commits,
                             incremental, previous)
        for key, st in mined.states.items():
            st["hashes"] = {path: h for h, (k, path) in run.hash_owner.items() if k == key}
        reporter.note(f"writing {sum(len(v) for v in splits.values())} pairs to {out}")
        t_split = time.perf_counter()
        ds.write_dataset(out, splits, all_rows, {"repos": mined.states}, manifest,
                         signatures=run.file_neardup.export())
        t_end = time.perf_counter()
        timings = {"open": t_open - t0, "mine": t_mine - t_open, "split": t_split - t_mine, "write": t_end - t_split}
        return IndexResult(out=out, manifest=manifest, incremental=incremental, new_pairs=len(run.rows),
                           bytes_mined=run.bytes, files_mined=run.files, commits_mined=mined.commits,
                           seconds=t_end - t0, timings=timings)
    finally:
        for repo in repos:
            repo.close()


def _open_repos(specs: list[str], repos: list[Repo]) -> None:
    """Open each spec into ``repos`` (the caller closes them, also after a failure); a repeat is dropped."""
    for spec in specs:
        repo = open_repo(spec)
        if any(r.key == repo.key for r in repos):
            repo.close()
            continue
        repos.append(repo)


def _identity(repos: list[Repo], config: IndexConfig) -> dict[str, Any]:
    return {"repos": sorted(r.key for r in repos), "config_hash": config.config_hash()}


def _resume(out: Path, config: IndexConfig, incremental: bool) -> tuple[dict[str, Any], list[dict[str, Any]], Run]:
    """(previous state, previous pool, a run that knows the pairs, content hashes and signatures mined before)."""
    state = ds.read_state(out) if incremental else {}
    pool = ds.read_pool(out) if incremental else []
    sig_keys, sig_matrix = ds.read_signatures(out) if incremental else ([], None)
    hash_owner = {h: (key, path) for key, st in (state.get("repos") or {}).items()
                  for path, h in st.get("hashes", {}).items()}
    pair_keys = {fim_key(r["prefix"], r["middle"], r["suffix"]) for r in pool if r["kind"] != "explain"}
    run = Run(config, hash_owner, pair_keys)
    run.file_neardup.load(sig_keys, sig_matrix)
    return state, pool, run


def _mine_all(repos: list[Repo], state: dict[str, Any], run: Run, reporter: Reporter, since: str | None) -> _Mined:
    since_rev, since_time = parse_since(since) if since else (None, None)
    mined = _Mined()
    for repo in repos:
        prev = (state.get("repos") or {}).get(repo.key, {})
        with detect_secrets_session():
            info = mine_repo(repo, prev, run, reporter, since_rev, since_time, mined.drop_paths, mined.reset_repos)
        mined.states[repo.key] = info.pop("state")
        mined.reports[repo.key] = info
        mined.commits += info["commits_mined"]
    return mined


def _merge_pool(pool: list[dict[str, Any]], mined: _Mined, new_rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The previous pool without the rows of replaced files and rewritten repos, then the new rows."""
    kept = [r for r in pool
            if r["repo"] not in mined.reset_repos
            and not (r["kind"] in HEAD_KINDS and (r["repo"], r["path"]) in mined.drop_paths)]
    return kept + new_rows


def _date_lines(run: Run, repos: list[Repo], repo_states: dict[str, Any], test_commits: set[str],
                all_commits: list[tuple[str, int]], reporter: Reporter) -> None:
    """Date current-file pairs of files last changed by a test commit line by line (see reattribute_by_blame):
    from the history walk's diffs where they say, else with git blame."""
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


def _context_counts(rows: list[dict[str, Any]], config: IndexConfig) -> dict[str, Any]:
    """How many FIM pairs carry repository context (mined with it / with at least one snippet)."""
    fim = [r.get("context") for r in rows if r["kind"] in FIM_KINDS]
    return {"tokens": config.pairs.context_tokens_repo, "fim_pairs": len(fim),
            "mined_with_context": sum(1 for c in fim if c), "non_empty": sum(1 for c in fim if c and c != "[]")}


def _manifest(repos, reports, config: IndexConfig, splits, run: Run, identity, test_commits, all_commits,
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
    fingerprint = sha256_json({"config": identity["config_hash"], "heads": {r.key: r.head for r in repos}}, 24)
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
        created=now_iso(),
        tool_version=TOOL_VERSION,
        extra={
            "identity": identity,
            "config": json.loads(json.dumps(asdict(config), default=list)),
            "split": {"test_commits": len(test_commits), "total_commits": len(all_commits), "per_repo": True,
                      "test_since": min(test_times) if test_times else None,
                      "rule": ("days" if config.test_days is not None else
                               "commits" if config.test_commits is not None else "fraction")},
            "history_filters": dict(sorted(run.history_filters.items())),
            "context": _context_counts(rows, config),
            "secrets_action": config.secrets,
            "secrets_found": sum(secrets.values()),
            "emails_masked": run.emails,
            "incremental": incremental,
            "prompt_format": "qwen-fim-psm",
            "runs": prev_runs + [{"time": now_iso(),
                                  "incremental": incremental, **counts["this_run"]}],
        },
    )
    return manifest.to_dict()
