"""Nightly retraining: one gated, crash-safe cycle per configured adapter.

For each adapter of ``nightly.toml``:
  fetch    URL repos are mirrored under the data root (``git clone --mirror`` once, ``git fetch`` after);
           local repos are read as they are. A repo that is gone, fails to fetch or whose history was
           rewritten (force-push) is skipped with a report entry; the others go on.
  index    each repo is mined incrementally into its own dataset (``indexer.pipeline.index_repos``):
           only commits after the previous head are mined.
  dataset  train = pairs of commits never trained on (new) + a replay sample of older train pairs;
           test = the newest-commit test split of every repo (the same rows for both sides).
  train    a candidate, warm-started from the active adapter (train(init_adapter=...)), checkpointed; a killed
           cycle resumes training from its last checkpoint.
  eval     candidate and active (or the base model when none is active) on that test split.
  decide   promote only when candidate >= active + margin on the configured metric.
  promote  the registry's atomic pointer switch (the language server picks it up between requests).
  retain   keep the newest K versions, never the active one or its predecessor.
A cycle where no repo moved since the last one ends after the fetch, in seconds ("nothing new").
Commits whose pairs went into a candidate count as trained even when it is not promoted (they stay in
the replay pool); pairs of the held-out newest commits are trained on once newer commits push them
into the train split. Per-adapter memory (repo heads, trained commits, per-repo indexes) lives under
``<data root>/nightly/<adapter>/``; URL mirrors under ``<data root>/nightly/mirrors/``.

Crash safety: every phase transition rewrites ``runs_dir()/<cycle-id>/state.json`` atomically. The
registry only changes through its own atomic operations (publish = rename, promote = pointer replace),
so a kill -9 anywhere leaves the active adapter loadable. The next ``retrain`` finds the unfinished
cycle and resumes it from its phase (a candidate already published for the cycle's dataset is adopted
instead of trained again).

nightly.toml::

    [defaults]                      # every key may be overridden per adapter
    base = "qwen2.5-coder-0.5b"     # base model (packaged name, folder, cached hub id)
    device = "auto"
    max_steps = 200                 # training budget: steps ...
    max_minutes = 30                # ... and/or wall minutes (0 = none)
    checkpoint_every = 20
    replay_share = 0.5              # share of the training set that is replayed older pairs
    metric = "fim.edit_sim"         # or fim.exact_match, explain.rouge_l ... (from the eval summary)
    margin = 0.5                    # promote when candidate > active + margin (metric units, 0-100); ties never
                                    # promote at margin >= 0; a negative margin tolerates that much regression
    keep = 5                        # retention: versions kept per adapter
    eval_examples = 60              # test rows evaluated (stable sample)
    eval_max_new_tokens = 48
    test_fraction = 0.1             # newest share of each repo's commits held out (or test_commits = N)
    on_rewrite = "skip"             # force-pushed repo: "skip" (report it) or "reindex" (mine from scratch)
    min_new_pairs = 1               # fewer new training pairs than this: no training tonight
    seed = 0                        # replay sample / eval sample / training order

    [defaults.train]                # any TrainSettings key (r, alpha, learning_rate, max_seq_len, ...)
    r = 16

    [adapters.acme]
    repos = ["/srv/git/backend", "https://git.example.com/acme/web.git"]
    margin = 0.0
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import shutil
import subprocess
import sys
import time
import tomllib
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from copilot.core import paths
from copilot.adapters.registry import Registry, _write_json_atomic, check_name, get_metric
from copilot.core.types import CopilotError, UserInputError

PHASES = ("fetch", "index", "dataset", "train", "eval", "decide", "promote", "retain", "done")
FIM_KINDS = ("fim_file", "fim_history")


# ---------------------------------------------------------------------------- config
@dataclass
class AdapterPlan:
    name: str
    repos: list[str] = field(default_factory=list)
    base: str = "qwen2.5-coder-0.5b"
    device: str = "auto"
    max_steps: int = 200
    max_minutes: float = 30.0
    checkpoint_every: int = 20
    replay_share: float = 0.5
    metric: str = "fim.edit_sim"
    margin: float = 0.5
    keep: int = 5
    eval_examples: int = 60
    eval_max_new_tokens: int = 48
    test_fraction: float = 0.1
    test_commits: int = 0
    on_rewrite: str = "skip"
    min_new_pairs: int = 1
    seed: int = 0
    train: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def config_hash(self) -> str:
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:16]


_KEYS = {f.name for f in fields(AdapterPlan)} - {"name"}


def _apply(plan: AdapterPlan, data: dict[str, Any], where: str) -> AdapterPlan:
    for k, v in data.items():
        key = k.replace("-", "_")
        if key not in _KEYS:
            raise UserInputError(f"{where}: unknown key {k!r} (known: {', '.join(sorted(_KEYS))})")
        cur = getattr(plan, key)
        if key == "train":
            if not isinstance(v, dict):
                raise UserInputError(f"{where}: 'train' must be a table")
            plan.train = {**plan.train, **v}
            continue
        if key == "repos":
            if isinstance(v, str):
                v = [v]
            if not isinstance(v, list) or not all(isinstance(x, str) and x for x in v):
                raise UserInputError(f"{where}: 'repos' must be a list of paths or URLs")
            plan.repos = list(v)
            continue
        if isinstance(cur, bool) or not isinstance(v, (int, float, str)) or (
                isinstance(cur, (int, float)) and not isinstance(v, (int, float))) or (
                isinstance(cur, str) and not isinstance(v, str)):
            raise UserInputError(f"{where}: bad value for {k!r}: {v!r}")
        setattr(plan, key, type(cur)(v) if isinstance(cur, float) else v)
    return plan


def _check(plan: AdapterPlan, where: str) -> None:
    check_name(plan.name)
    if not plan.repos:
        raise UserInputError(f"{where}: adapter {plan.name!r} lists no repos")
    if not 0.0 <= plan.replay_share < 1.0:
        raise UserInputError(f"{where}: replay_share must be in [0, 1), got {plan.replay_share}")
    if plan.keep < 2:
        raise UserInputError(f"{where}: keep must be at least 2 (the active version and its predecessor)")
    if plan.on_rewrite not in ("skip", "reindex"):
        raise UserInputError(f"{where}: on_rewrite must be 'skip' or 'reindex'")
    if plan.max_steps <= 0 and plan.max_minutes <= 0:
        raise UserInputError(f"{where}: give a training budget (max_steps and/or max_minutes)")
    if "." not in plan.metric:
        raise UserInputError(f"{where}: metric must look like 'fim.edit_sim' or 'fim.exact_match'")
    from copilot.core.settings import TrainSettings

    known = {f.name for f in fields(TrainSettings)}
    bad = [k for k in plan.train if k.replace("-", "_") not in known]
    if bad:
        raise UserInputError(f"{where}: unknown train setting(s) {bad}; known: {', '.join(sorted(known))}")


def default_config_path() -> Path:
    return paths.user_config_file().parent / "nightly.toml"


def load_config(path: str | Path | None = None) -> list[AdapterPlan]:
    p = Path(path).expanduser() if path else default_config_path()
    try:
        data = tomllib.loads(p.read_text())
    except FileNotFoundError:
        raise UserInputError(f"nightly config not found: {p} (see `copilot retrain --help` for its format)") from None
    except OSError as exc:
        raise UserInputError(f"{p}: cannot read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise UserInputError(f"{p}: invalid TOML: {exc}") from None
    unknown = set(data) - {"defaults", "adapters"}
    if unknown:
        raise UserInputError(f"{p}: unknown section(s) {sorted(unknown)}; use [defaults] and [adapters.NAME]")
    defaults = data.get("defaults", {})
    adapters = data.get("adapters", {})
    if not isinstance(adapters, dict) or not adapters:
        raise UserInputError(f"{p}: no [adapters.NAME] section")
    plans = []
    for name, table in adapters.items():
        if not isinstance(table, dict):
            raise UserInputError(f"{p}: [adapters.{name}] must be a table")
        plan = AdapterPlan(name=name)
        _apply(plan, defaults, f"{p} [defaults]")
        _apply(plan, table, f"{p} [adapters.{name}]")
        base_dir = p.parent
        plan.repos = [r if _is_url(r) or Path(r).expanduser().is_absolute() else str((base_dir / r).resolve())
                      for r in plan.repos]
        _check(plan, str(p))
        plans.append(plan)
    return plans


# ---------------------------------------------------------------------------- layout / state
def nightly_dir() -> Path:
    return paths.home() / "nightly"


def adapter_dir(name: str) -> Path:
    return nightly_dir() / check_name(name)


def _slug(spec: str) -> str:
    tail = re.sub(r"[^A-Za-z0-9._-]+", "-", spec.rstrip("/").rsplit("/", 1)[-1])[:40].strip("-.") or "repo"
    return f"{tail}-{hashlib.sha1(spec.encode()).hexdigest()[:10]}"


def _is_url(spec: str) -> bool:
    from indexer.repos import is_url

    return is_url(spec)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _read_json(p: Path, default: Any) -> Any:
    try:
        return json.loads(p.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return default


def fault(point: str) -> None:
    """Test hook: with COPILOT_FAULT_AT=<point>, announce it (COPILOT_FAULT_FILE) and wait to be killed."""
    if os.environ.get("COPILOT_FAULT_AT") != point:
        return
    marker = os.environ.get("COPILOT_FAULT_FILE")
    if marker:
        Path(marker).write_text(f"{point} {os.getpid()}\n")
    print(f"FAULT-PAUSE {point}", file=sys.stderr, flush=True)
    while True:
        time.sleep(0.2)


class Cycle:
    """The state of one cycle on disk: runs_dir()/<id>/state.json (rewritten atomically)."""

    def __init__(self, cid: str, state: dict[str, Any]):
        self.id = cid
        self.dir = paths.runs_dir() / cid
        self.state = state

    @classmethod
    def new(cls, plans: list[AdapterPlan], config_path: str | None, dry_run: bool) -> "Cycle":
        # Microseconds in the id: cycles started within one second still sort in start order (history()).
        cid = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ") + "-" + uuid.uuid4().hex[:6]
        state = {"id": cid, "status": "running", "started": _now(), "finished": None, "dry_run": dry_run,
                 "config": config_path, "pid": os.getpid(), "resumed": 0,
                 "adapters": {p.name: {"phase": "fetch", "plan": p.to_dict(), "plan_hash": p.config_hash()}
                              for p in plans}}
        c = cls(cid, state)
        c.dir.mkdir(parents=True, exist_ok=True)
        c.save()
        return c

    @classmethod
    def load(cls, cid: str) -> "Cycle":
        p = paths.runs_dir() / cid / "state.json"
        state = _read_json(p, None)
        if state is None:
            raise UserInputError(f"unknown cycle {cid}")
        return cls(cid, state)

    def save(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        _write_json_atomic(self.dir / "state.json", self.state)

    def ad(self, name: str) -> dict[str, Any]:
        return self.state["adapters"][name]

    def set_phase(self, name: str, phase: str, **data: Any) -> None:
        a = self.ad(name)
        a.update(data)
        a["phase"] = phase
        a.setdefault("timings", {})
        self.save()


def unfinished_cycles() -> list[str]:
    root = paths.runs_dir()
    if not root.is_dir():
        return []
    out = []
    for d in sorted(root.iterdir()):
        st = _read_json(d / "state.json", None) if d.is_dir() else None
        if st and st.get("status") == "running" and not st.get("dry_run"):
            out.append(d.name)
    return out


# ---------------------------------------------------------------------------- git helpers
def _git(cwd: Path | str | None, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "true", "LC_ALL": "C"}
    return subprocess.run(["git", *args], cwd=str(cwd) if cwd else None, capture_output=True, text=True,
                          env=env, timeout=timeout)


def _last(err: str) -> str:
    from indexer.repos import redact_url

    lines = [line for line in (err or "").strip().splitlines() if line.strip()]
    return redact_url(lines[-1] if lines else "git failed")


def update_repo(spec: str, log: Callable[[str], None]) -> tuple[str | None, str | None, str]:
    """-> (local path to index, HEAD sha, note). Path None = skip this repo (note says why)."""
    from indexer.repos import redact_url

    shown = redact_url(spec)
    if _is_url(spec):
        mirror = nightly_dir() / "mirrors" / f"{_slug(shown)}.git"
        if not mirror.is_dir():
            tmp = mirror.with_name(f".{mirror.name}.tmp-{uuid.uuid4().hex[:6]}")
            tmp.parent.mkdir(parents=True, exist_ok=True)
            proc = _git(None, "clone", "--mirror", "--quiet", spec, str(tmp))
            if proc.returncode != 0:
                shutil.rmtree(tmp, ignore_errors=True)
                return None, None, f"clone failed: {_last(proc.stderr)}"
            os.rename(tmp, mirror)
            note = "cloned"
        else:
            proc = _git(mirror, "fetch", "--prune", "--force", "--quiet", "origin")
            if proc.returncode != 0:
                return None, None, f"fetch failed: {_last(proc.stderr)}"
            note = "fetched"
        path = mirror
    else:
        path = Path(spec).expanduser()
        if not path.is_dir():
            return None, None, "repository is gone (no such directory)"
        note = "local"
    proc = _git(path, "rev-parse", "--verify", "--quiet", "HEAD^{commit}")
    if proc.returncode != 0:
        if _git(path, "rev-parse", "--git-dir").returncode != 0:
            return None, None, "not a git repository"
        return str(path), None, f"{note}; empty repository"
    return str(path), proc.stdout.strip(), note


def _is_ancestor(path: str, old: str, new: str) -> bool:
    return _git(path, "merge-base", "--is-ancestor", old, new).returncode == 0


# ---------------------------------------------------------------------------- the cycle
@dataclass
class Options:
    config: str | None = None
    only: str | None = None
    dry_run: bool = False
    log: Callable[[str], None] = lambda s: None
    on_step: Callable[[int, float], None] | None = None


def run(opts: Options) -> dict[str, Any]:
    """Run (or resume) one cycle. Returns the report dict (also written under the runs dir)."""
    from copilot.core.locks import CycleLock

    plans = load_config(opts.config)
    if opts.only:
        plans = [p for p in plans if p.name == opts.only]
        if not plans:
            raise UserInputError(f"adapter {opts.only!r} is not in the nightly config")
    lock = CycleLock(what="nightly cycle")
    with lock:
        if lock.broke:
            opts.log(f"Broke a stale lock ({lock.broke.get('reason')})")
        cycle = None
        if not opts.dry_run:
            for cid in reversed(unfinished_cycles()):
                c = Cycle.load(cid)
                same = {n: a.get("plan_hash") for n, a in c.state["adapters"].items()} == {
                    p.name: p.config_hash() for p in plans}
                if same and cycle is None:
                    cycle = c
                    c.state["resumed"] = int(c.state.get("resumed", 0)) + 1
                    c.state["pid"] = os.getpid()
                    c.save()
                    opts.log(f"Resuming unfinished cycle {cid}")
                else:
                    c.state["status"] = "abandoned"
                    c.state["finished"] = _now()
                    c.save()
        if cycle is None:
            cycle = Cycle.new(plans, str(opts.config) if opts.config else None, opts.dry_run)
        t0 = time.perf_counter()
        for plan in plans:
            a = cycle.ad(plan.name)
            if a["phase"] == "done":
                continue
            try:
                _run_adapter(cycle, plan, opts)
            except CopilotError as exc:
                a["error"] = str(exc)
                a["decision"] = {"promote": False, "why": f"failed: {exc}"}
                cycle.set_phase(plan.name, "done")
                opts.log(f"{plan.name}: {exc}")
        cycle.state["status"] = "done"
        cycle.state["finished"] = _now()
        cycle.state["seconds"] = round(time.perf_counter() - t0 + float(cycle.state.get("seconds", 0)), 2)
        cycle.save()
        write_report(cycle)
        return cycle.state


def _run_adapter(cycle: Cycle, plan: AdapterPlan, opts: Options) -> None:
    a = cycle.ad(plan.name)
    reg = Registry()
    log = lambda s: opts.log(f"{plan.name}: {s}")  # noqa: E731
    timings = a.setdefault("timings", {})

    def timed(phase: str, t: float) -> None:
        timings[phase] = round(timings.get(phase, 0.0) + time.perf_counter() - t, 3)

    # ---- fetch
    if a["phase"] == "fetch":
        fault("fetch")
        t = time.perf_counter()
        prev = _read_json(adapter_dir(plan.name) / "state.json", {})
        repos = []
        for spec in plan.repos:
            from indexer.repos import redact_url

            path, head, note = update_repo(spec, log)
            entry = {"spec": redact_url(spec), "slug": _slug(redact_url(spec)), "path": path, "head": head,
                     "note": note, "status": "ok" if path and head else "skipped"}
            if path and head:
                old = _read_json(adapter_dir(plan.name) / "repos" / entry["slug"] / "index_state.json", {})
                old_head = next(iter((old.get("repos") or {}).values()), {}).get("head")
                if old_head and old_head != head and not _is_ancestor(path, old_head, head):
                    if plan.on_rewrite == "skip":
                        entry.update(status="skipped", note=f"history rewritten (force-push?): previous head "
                                     f"{old_head[:12]} is not an ancestor of {head[:12]}; set on_rewrite = "
                                     "\"reindex\" to mine it again from scratch")
                    else:
                        entry["note"] += "; history rewritten: mined again from scratch"
                entry["unchanged"] = head == (prev.get("heads") or {}).get(entry["spec"])
            if entry["status"] == "skipped":
                log(f"skipping {entry['spec']}: {entry['note']}")
            repos.append(entry)
        ok = [r for r in repos if r["status"] == "ok"]
        timed("fetch", t)
        if not ok:
            a["decision"] = {"promote": False, "why": "no repository could be read"}
            cycle.set_phase(plan.name, "done", repos=repos)
            return
        if all(r["unchanged"] for r in ok):
            a["decision"] = {"promote": False, "why": "nothing new since the last cycle", "nothing_new": True}
            cycle.set_phase(plan.name, "done", repos=repos)
            log("nothing new since the last cycle")
            return
        if cycle.state.get("dry_run"):
            a["decision"] = {"promote": False, "why": "dry run: would index, train and evaluate",
                             "would_mine": [r["spec"] for r in ok if not r["unchanged"]]}
            cycle.set_phase(plan.name, "done", repos=repos)
            return
        cycle.set_phase(plan.name, "index", repos=repos)

    # ---- index
    if a["phase"] == "index":
        fault("index")
        t = time.perf_counter()
        from indexer.pipeline import IndexConfig, index_repos

        icfg = IndexConfig(test_fraction=plan.test_fraction, test_commits=plan.test_commits or None)
        mined = a.setdefault("mined", {})  # kept per repo, so a resumed index phase reports what each mined
        for r in a["repos"]:
            if r["status"] != "ok" or r["spec"] in mined:
                continue
            out = adapter_dir(plan.name) / "repos" / r["slug"]
            try:
                res = index_repos([r["path"]], out, icfg, force=plan.on_rewrite == "reindex" and "rewritten" in r["note"])
            except CopilotError as exc:
                r.update(status="skipped", note=f"indexing failed: {exc}")
                log(f"skipping {r['spec']}: indexing failed: {exc}")
                continue
            m = res.manifest
            extra = m.get("extra", {})
            mined[r["spec"]] = {
                "commits_mined": res.commits_mined, "new_pairs": res.new_pairs, "files_mined": res.files_mined,
                "bytes_mined": res.bytes_mined, "incremental": res.incremental,
                "filtered": {**m.get("filters", {}), **{f"history.{k}": v for k, v in extra.get("history_filters", {}).items()}},
                "secrets_found": extra.get("secrets_found", 0), "secrets": m.get("secrets", {}),
                "seconds": round(res.seconds, 2), "by_split": m.get("counts", {}).get("by_split", {}),
            }
            cycle.save()
        timed("index", t)
        cycle.set_phase(plan.name, "dataset", mined=mined)

    # ---- dataset
    if a["phase"] == "dataset":
        fault("dataset")
        t = time.perf_counter()
        info = build_cycle_dataset(cycle, plan, a)
        timed("dataset", t)
        if info["new_train"] < plan.min_new_pairs:
            a["decision"] = {"promote": False, "why": f"no new training pairs ({info['new_train']} new)",
                             "nothing_new": info["new_train"] == 0}
            _finish_adapter(plan, a, trained=False)
            cycle.set_phase(plan.name, "done", data=info)
            log(a["decision"]["why"])
            return
        cycle.set_phase(plan.name, "train", data=info, train_started=False)

    # ---- train
    if a["phase"] == "train":
        fault("train")
        t = time.perf_counter()
        cand = _adopt_candidate(reg, plan.name, a["data"]["fingerprint"])
        if cand is None:
            cand, losses, extra = _train(cycle, plan, a, reg, opts, log)
            a["loss"] = losses
            a["train"] = extra
        else:
            log(f"adopting {plan.name}@{cand} published before the interruption")
            man = reg.manifest(plan.name, cand)
            a["loss"] = man.training.get("losses", [])
        timed("train", t)
        cycle.set_phase(plan.name, "eval", candidate=cand)

    # ---- eval
    if a["phase"] == "eval":
        fault("eval")
        t = time.perf_counter()
        a["eval"] = _evaluate(plan, a, reg, log)
        timed("eval", t)
        cycle.set_phase(plan.name, "decide")

    # ---- decide
    if a["phase"] == "decide":
        a["decision"] = decide(a["eval"], plan.metric, plan.margin)
        log(a["decision"]["why"])
        cycle.set_phase(plan.name, "promote" if a["decision"]["promote"] else "retain")

    # ---- promote
    if a["phase"] == "promote":
        fault("promote")
        cand = int(a["candidate"])
        if reg.active(plan.name) != cand:
            reg.promote(f"{plan.name}@{cand}", force=True)
        from copilot.adapters.gguf_lora import prepare_for_serving

        gguf_adapter = prepare_for_serving(reg.version_dir(plan.name, cand), plan.base, log=log)
        if gguf_adapter is not None:
            log(f"converted {plan.name}@{cand} for llama.cpp: {gguf_adapter.name}")
        fault("promoted")
        a["decision"]["promoted"] = f"{plan.name}@{cand}"
        log(f"promoted {plan.name}@{cand}")
        cycle.set_phase(plan.name, "retain")

    # ---- retain
    if a["phase"] == "retain":
        from copilot.adapters import retention

        _finish_adapter(plan, a, trained=True)
        protect = (int(a["candidate"]),) if a.get("candidate") and a["decision"].get("promote") else ()
        a["removed"] = retention.apply(reg, plan.name, plan.keep, protect=protect)
        cycle.set_phase(plan.name, "done")


def _finish_adapter(plan: AdapterPlan, a: dict[str, Any], trained: bool) -> None:
    """Remember what this cycle consumed: repo heads (for 'nothing new') and the trained commits."""
    d = adapter_dir(plan.name)
    st = _read_json(d / "state.json", {})
    heads = st.get("heads", {})
    for r in a.get("repos", []):
        if r["status"] == "ok":
            heads[r["spec"]] = r["head"]
    st["heads"] = heads
    if trained and a.get("data"):
        tc = {k: set(v) for k, v in st.get("trained_commits", {}).items()}
        for key, shas in a["data"].get("train_commits", {}).items():
            tc.setdefault(key, set()).update(shas)
        st["trained_commits"] = {k: sorted(v) for k, v in tc.items()}
    st["updated"] = _now()
    d.mkdir(parents=True, exist_ok=True)
    _write_json_atomic(d / "state.json", st)


def _read_split(out: Path, split: str) -> list[dict[str, Any]]:
    p = out / "parquet" / f"{split}.parquet"
    if not p.is_file():
        return []
    import pyarrow.parquet as pq

    return pq.read_table(p).to_pylist()


def build_cycle_dataset(cycle: Cycle, plan: AdapterPlan, a: dict[str, Any]) -> dict[str, Any]:
    """Write runs/<id>/data-<adapter>/: train = new + replay, test = every repo's newest-commit split."""
    from indexer import dataset as ds

    st = _read_json(adapter_dir(plan.name) / "state.json", {})
    trained = {k: set(v) for k, v in st.get("trained_commits", {}).items()}
    new, old, test, heads = [], [], [], {}
    train_commits: dict[str, list[str]] = {}
    for r in a["repos"]:
        out = adapter_dir(plan.name) / "repos" / r["slug"]
        if not (out / "manifest.json").is_file():
            continue
        key = r["spec"]
        done = trained.get(key, set())
        rows = _read_split(out, "train")
        for row in rows:
            (old if row["commit"] in done else new).append(row)
        train_commits[key] = sorted({row["commit"] for row in rows})
        test += [row for row in _read_split(out, "test") if row["kind"] in FIM_KINDS or plan.metric.startswith("explain")]
        heads[key] = r.get("head")
    rng = random.Random(f"{cycle.id}|{plan.seed}")
    n_replay = min(len(old), round(len(new) * plan.replay_share / (1 - plan.replay_share))) if new else 0
    replay = rng.sample(old, n_replay) if n_replay else []
    train_rows = new + replay
    for row in train_rows:
        row["split"] = "train"
    test.sort(key=lambda r: (r["repo"], r["path"], r["span_start"], r["middle"]))
    if len(test) > plan.eval_examples:
        test = random.Random(plan.seed).sample(test, plan.eval_examples)
    fp = hashlib.sha256(json.dumps({"cycle": cycle.id, "adapter": plan.name, "heads": heads,
                                    "n": [len(new), len(replay), len(test)]}, sort_keys=True).encode()).hexdigest()[:24]
    out = cycle.dir / f"data-{plan.name}"
    manifest = {"fingerprint": fp, "config_hash": plan.config_hash(), "repos": heads,
                "counts": {"new": len(new), "replay": len(replay), "test": len(test)}, "filters": {}, "secrets": {},
                "created": _now(), "tool_version": "nightly", "extra": {"cycle": cycle.id}}
    if new:
        ds.write_dataset(out, {"train": train_rows, "test": test}, [], {}, manifest)
    return {"dir": str(out), "fingerprint": fp, "new_train": len(new), "replay": len(replay), "old_train": len(old),
            "test": len(test), "train_commits": train_commits,
            "new_commits": len({r["commit"] for r in new})}


def _adopt_candidate(reg: Registry, name: str, fingerprint: str) -> int | None:
    for v in reversed(reg.versions(name)):
        try:
            m = reg.manifest(name, v)
        except CopilotError:
            continue
        if m.dataset_fingerprint == fingerprint and m.status != "retired":
            return v
    return None


def _settings(plan: AdapterPlan):
    from copilot.core.settings import TrainSettings, _merge, load_settings

    s = load_settings()
    s.model = plan.base
    s.device = plan.device
    s.adapter = ""
    ts = TrainSettings(**{k: v for k, v in asdict(s.train).items()})
    _merge(ts, {k.replace("-", "_"): v for k, v in plan.train.items()}, "nightly config [train]")
    s.train = ts
    return s


def _train(cycle: Cycle, plan: AdapterPlan, a: dict[str, Any], reg: Registry, opts: Options, log) -> tuple[int, list[float], dict]:
    from copilot.train.loop import TrainRecipe, train

    settings = _settings(plan)
    recipe = TrainRecipe(train=settings.train, max_steps=plan.max_steps if plan.max_steps > 0 else 0,
                         max_minutes=plan.max_minutes, checkpoint_every=max(1, plan.checkpoint_every), seed=plan.seed)
    active = reg.active(plan.name)
    warm = reg.resolve(f"{plan.name}@{active}") if active is not None else None
    resume = bool(a.get("train_started"))
    a["train_started"] = True
    a["warm_start"] = f"{plan.name}@{active}" if active is not None else None
    cycle.save()

    def on_step(step: int, loss: float) -> None:
        if opts.on_step:
            opts.on_step(step, loss)
        if step == plan.checkpoint_every + 1:
            fault("train_step")

    res = train(a["data"]["dir"], plan.name, settings=settings, recipe=recipe, base=plan.base, resume=resume,
                progress=False, log=log, on_step=on_step, registry=reg, init_adapter=warm)
    v = res.manifest.version
    reg.update_manifest(plan.name, v, training={**res.manifest.training, "warm_start": a["warm_start"],
                                                 "nightly_cycle": cycle.id, "resumed_from_step": res.start_step})
    return v, res.losses, {"steps": res.steps, "resumed_from_step": res.start_step, "mode": res.mode,
                           "seconds": round(res.seconds, 2), "tokens_per_s": round(res.tokens_per_s, 1)}


def _evaluate(plan: AdapterPlan, a: dict[str, Any], reg: Registry, log) -> dict[str, Any]:
    from copilot.serve.hf import Engine
    from copilot.evaluate.run import evaluate

    settings = _settings(plan)
    data = a["data"]["dir"]
    engine = Engine.load(plan.base, settings=settings, device=plan.device)
    cand = f"{plan.name}@{a['candidate']}"
    kw = dict(engine=engine, max_examples=plan.eval_examples, max_new_tokens=plan.eval_max_new_tokens,
              explain_tokens=plan.eval_max_new_tokens, registry=reg)
    c = evaluate(data, cand, record=True, **kw)
    active = reg.active(plan.name)
    if active is not None and active != int(a["candidate"]):
        act_label = f"{plan.name}@{active}"
        r = evaluate(data, act_label, record=False, **kw)
        act = r["adapter"]
    else:
        act_label = "base model"
        act = evaluate(data, None, record=False, **kw)["base"]
    return {"n": c["n"], "test_fingerprint": c["test_fingerprint"], "candidate_label": cand,
            "active_label": act_label, "candidate": c["adapter"], "active": act}


def decide(ev: dict[str, Any], metric: str, margin: float) -> dict[str, Any]:
    c = get_metric(ev.get("candidate", {}), metric)
    act = get_metric(ev.get("active", {}), metric)
    if c is None:
        return {"promote": False, "metric": metric, "why": f"candidate has no {metric} (no such rows in the test split)"}
    if act is None:
        return {"promote": True, "metric": metric, "candidate": c, "active": None,
                "why": f"promoted: nothing to compare against ({metric} {c:.2f})"}
    # "Better": strictly above active + margin; a negative margin explicitly tolerates that much regression.
    better = c > act + margin if margin >= 0 else c >= act + margin
    verdict = "promoted" if better else "kept active"
    return {"promote": better, "metric": metric, "candidate": c, "active": act, "margin": margin,
            "why": f"{verdict}: {metric} candidate {c:.2f} vs {ev.get('active_label')} {act:.2f} (needs +{margin:g})"}


# ---------------------------------------------------------------------------- reports
def write_report(cycle: Cycle) -> tuple[Path, Path]:
    st = cycle.state
    _write_json_atomic(cycle.dir / "report.json", st)
    md = cycle.dir / "report.md"
    tmp = md.with_suffix(".md.tmp")
    tmp.write_text(markdown(st))
    os.replace(tmp, md)
    return cycle.dir / "report.json", md


def _f(v: Any) -> str:
    return "–" if v is None else (f"{v:.2f}" if isinstance(v, float) else str(v))


def _sparkline(values: list[float]) -> str:
    if not values:
        return ""
    bars = "▁▂▃▄▅▆▇█"
    lo, hi = min(values), max(values)
    step = max(1, len(values) // 40)
    return "".join(bars[int((v - lo) / (hi - lo + 1e-12) * 7)] for v in values[::step])


def markdown(st: dict[str, Any]) -> str:
    out = [f"# Nightly cycle {st['id']}", "",
           f"Status **{st['status']}** · started {st['started']} · finished {st.get('finished') or '–'} · "
           f"{_f(st.get('seconds'))} s" + (f" · resumed {st['resumed']}×" if st.get("resumed") else "")
           + (" · dry run" if st.get("dry_run") else ""), ""]
    for name, a in st["adapters"].items():
        d = a.get("decision") or {}
        out += [f"## {name}", "", f"**Decision:** {d.get('why', 'unfinished (' + a['phase'] + ')')}", ""]
        out += ["| repo | status | head | commits mined | new pairs | filtered | secrets | note |",
                "|---|---|---|---|---|---|---|---|"]
        for r in a.get("repos", []):
            m = (a.get("mined") or {}).get(r["spec"], {})
            out.append(f"| {r['spec']} | {r['status']} | {(r.get('head') or '–')[:12]} | {m.get('commits_mined', '–')} | "
                       f"{m.get('new_pairs', '–')} | {sum(m.get('filtered', {}).values()) if m else '–'} | "
                       f"{m.get('secrets_found', '–')} | {r.get('note', '')} |")
        data = a.get("data")
        if data:
            out += ["", f"Training set: {data['new_train']} new pairs from {data['new_commits']} commits + "
                        f"{data['replay']} replayed (of {data['old_train']} older); test split: {data['test']} pairs."]
        if a.get("loss"):
            ls = a["loss"]
            out += ["", f"Loss ({len(ls)} steps, warm start: {a.get('warm_start') or 'none'}): "
                        f"{ls[0]:.3f} → {ls[-1]:.3f}  `{_sparkline(ls)}`"]
        ev = a.get("eval")
        if ev:
            out += ["", f"| metric (n={ev['n']}) | candidate {ev['candidate_label']} | active ({ev['active_label']}) |",
                    "|---|---|---|"]
            for group in ("fim", "explain"):
                for k in ("exact_match", "edit_sim", "cosine", "rouge_l", "token_f1"):
                    c = get_metric(ev["candidate"], f"{group}.{k}")
                    if c is not None:
                        out.append(f"| {group}.{k} | {c:.2f} | {_f(get_metric(ev['active'], f'{group}.{k}'))} |")
        if a.get("removed"):
            out += ["", f"Retention removed: {', '.join(a['removed'])}"]
        if a.get("timings"):
            out += ["", "Timings: " + ", ".join(f"{k} {v:.1f} s" for k, v in a["timings"].items())]
        out.append("")
    return "\n".join(out)


def summary_lines(st: dict[str, Any]) -> list[str]:
    lines = [f"cycle {st['id']}: {st['status']} in {_f(st.get('seconds'))} s" + (" (dry run)" if st.get("dry_run") else "")]
    for name, a in st["adapters"].items():
        d = a.get("decision") or {}
        repos = a.get("repos", [])
        mined = a.get("mined") or {}
        commits = sum(m.get("commits_mined", 0) for m in mined.values())
        pairs = sum(m.get("new_pairs", 0) for m in mined.values())
        secrets = sum(m.get("secrets_found", 0) for m in mined.values())
        skipped = [r for r in repos if r["status"] != "ok"]
        lines.append(f"  {name}: {d.get('why', a['phase'])}")
        lines.append(f"    repos {len(repos) - len(skipped)}/{len(repos)} ok, {commits} commits mined, {pairs} new pairs, "
                     f"{secrets} secrets redacted")
        for r in skipped:
            lines.append(f"    skipped {r['spec']}: {r['note']}")
        if a.get("data"):
            dd = a["data"]
            lines.append(f"    trained on {dd['new_train']} new + {dd['replay']} replay pairs; test {dd['test']}")
        if a.get("loss"):
            lines.append(f"    loss {a['loss'][0]:.3f} → {a['loss'][-1]:.3f}  {_sparkline(a['loss'])}")
        if a.get("removed"):
            lines.append(f"    retention removed {', '.join(a['removed'])}")
    lines.append(f"  report: {paths.runs_dir() / st['id'] / 'report.md'}")
    return lines


def history(limit: int = 20) -> list[dict[str, Any]]:
    root = paths.runs_dir()
    if not root.is_dir():
        return []
    out = []
    for d in sorted((p for p in root.iterdir() if p.is_dir()), reverse=True)[:limit]:
        st = _read_json(d / "state.json", None)
        if not st:
            continue
        out.append({"id": st["id"], "status": st["status"], "started": st["started"], "seconds": st.get("seconds"),
                    "dry_run": st.get("dry_run", False),
                    "adapters": {n: (a.get("decision") or {}).get("why", f"unfinished ({a['phase']})")
                                 for n, a in st["adapters"].items()}})
    return out


__all__ = ["AdapterPlan", "Options", "load_config", "run", "decide", "history", "summary_lines", "markdown"]
