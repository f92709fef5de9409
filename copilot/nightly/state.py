"""What the nightly cycles keep on disk, and the one module that reads and writes it.

    runs_dir()/<cycle-id>/state.json           one cycle: status, and per adapter its phase and results
                                               (rewritten atomically at every phase transition)
    <data root>/nightly/<adapter>/state.json   per-adapter memory: repo heads seen, commits trained on
    <data root>/nightly/<adapter>/repos/<slug>/   each repo's incremental pairs dataset (indexer.dataset)
    <data root>/nightly/mirrors/<slug>.git     mirrors of URL repos (copilot.nightly.fetch)
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from copilot.adapters.registry import check_name
from copilot.core import paths
from copilot.core.clock import now_iso
from copilot.core.files import read_json, write_json_atomic
from copilot.core.types import UserInputError

if TYPE_CHECKING:
    from copilot.nightly.config import AdapterPlan

PHASES = ("fetch", "index", "dataset", "train", "eval", "decide", "promote", "retain", "done")
STATE = "state.json"


# ---------------------------------------------------------------------------- layout
def nightly_dir() -> Path:
    return paths.home() / "nightly"


def adapter_dir(name: str) -> Path:
    return nightly_dir() / check_name(name)


def repo_dataset_dir(adapter: str, slug: str) -> Path:
    """Where one repo of an adapter is mined incrementally (a pairs dataset owned by indexer.dataset)."""
    return adapter_dir(adapter) / "repos" / slug


def mirror_dir(slug: str) -> Path:
    return nightly_dir() / "mirrors" / f"{slug}.git"


def slug(spec: str) -> str:
    """A readable, unique folder name for a repo spec: its last path part plus a hash of the whole spec."""
    tail = re.sub(r"[^A-Za-z0-9._-]+", "-", spec.rstrip("/").rsplit("/", 1)[-1])[:40].strip("-.") or "repo"
    return f"{tail}-{hashlib.sha1(spec.encode()).hexdigest()[:10]}"


# ---------------------------------------------------------------------------- fault injection
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


# ---------------------------------------------------------------------------- one cycle
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
        state = {"id": cid, "status": "running", "started": now_iso(), "finished": None, "dry_run": dry_run,
                 "config": config_path, "pid": os.getpid(), "resumed": 0,
                 "adapters": {p.name: {"phase": "fetch", "plan": p.to_dict(), "plan_hash": p.config_hash()}
                              for p in plans}}
        c = cls(cid, state)
        c.dir.mkdir(parents=True, exist_ok=True)
        c.save()
        return c

    @classmethod
    def load(cls, cid: str) -> "Cycle":
        state = read_json(paths.runs_dir() / cid / STATE, None)
        if state is None:
            raise UserInputError(f"unknown cycle {cid}")
        return cls(cid, state)

    def save(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.dir / STATE, self.state)

    def ad(self, name: str) -> dict[str, Any]:
        return self.state["adapters"][name]

    def set_phase(self, name: str, phase: str, **data: Any) -> None:
        a = self.ad(name)
        a.update(data)
        a["phase"] = phase
        a.setdefault("timings", {})
        self.save()

    def same_plans(self, plans: list[AdapterPlan]) -> bool:
        """Whether this cycle was started for exactly these adapter plans (so it may be resumed)."""
        return {n: a.get("plan_hash") for n, a in self.state["adapters"].items()} == {
            p.name: p.config_hash() for p in plans}

    def finish(self, status: str) -> None:
        self.state["status"] = status
        self.state["finished"] = now_iso()


def _cycle_dirs(newest_first: bool = False) -> list[Path]:
    root = paths.runs_dir()
    if not root.is_dir():
        return []
    return sorted((d for d in root.iterdir() if d.is_dir()), reverse=newest_first)


def unfinished_cycles() -> list[str]:
    out = []
    for d in _cycle_dirs():
        st = read_json(d / STATE, None)
        if st and st.get("status") == "running" and not st.get("dry_run"):
            out.append(d.name)
    return out


def history(limit: int = 20) -> list[dict[str, Any]]:
    out = []
    for d in _cycle_dirs(newest_first=True)[:limit]:
        st = read_json(d / STATE, None)
        if not st:
            continue
        out.append({"id": st["id"], "status": st["status"], "started": st["started"], "seconds": st.get("seconds"),
                    "dry_run": st.get("dry_run", False),
                    "adapters": {n: (a.get("decision") or {}).get("why", f"unfinished ({a['phase']})")
                                 for n, a in st["adapters"].items()}})
    return out


# ---------------------------------------------------------------------------- per-adapter memory
def adapter_memory(name: str) -> dict[str, Any]:
    """What earlier cycles of this adapter consumed: {"heads": {spec: sha}, "trained_commits": {spec: [sha]}}."""
    return read_json(adapter_dir(name) / STATE, {})


def remember(plan: AdapterPlan, a: dict[str, Any], trained: bool) -> None:
    """Remember what this cycle consumed: repo heads (for 'nothing new') and the trained commits."""
    st = adapter_memory(plan.name)
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
    st["updated"] = now_iso()
    write_json_atomic(adapter_dir(plan.name) / STATE, st)
