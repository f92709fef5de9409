"""The phases of one adapter's cycle, one function each, in order (STEPS).

Each phase does its work and moves the adapter's state to the next phase (``Cycle.set_phase`` rewrites
state.json atomically), or to "done" with a decision saying why the cycle ends there. A killed cycle is
resumed from the phase its state.json names.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from copilot.adapters.registry import Registry
from copilot.nightly import gate
from copilot.nightly.candidate import active_acceptance, adopt_candidate, evaluate_candidate, train_candidate
from copilot.nightly.config import AdapterPlan
from copilot.nightly.dataset import build_cycle_dataset
from copilot.nightly.fetch import fetch_repos
from copilot.nightly.index import mine_repos
from copilot.nightly.state import Cycle, fault, remember


@dataclass
class AdapterJob:
    """One adapter's run through the phases: its plan, its state in the cycle, the registry, a log."""
    cycle: Cycle
    plan: AdapterPlan
    reg: Registry
    log: Callable[[str], None]
    on_step: Callable[[int, float], None] | None = None
    a: dict[str, Any] = field(init=False)

    def __post_init__(self) -> None:
        self.a = self.cycle.ad(self.plan.name)
        self.a.setdefault("timings", {})

    @property
    def phase(self) -> str:
        return self.a["phase"]

    def to(self, phase: str, **data: Any) -> None:
        self.cycle.set_phase(self.plan.name, phase, **data)

    def stop(self, decision: dict[str, Any], **data: Any) -> None:
        """End this adapter's cycle here, saying why."""
        self.a["decision"] = decision
        self.to("done", **data)

    @contextmanager
    def timed(self, phase: str) -> Iterator[None]:
        t = time.perf_counter()
        yield
        timings = self.a["timings"]
        timings[phase] = round(timings.get(phase, 0.0) + time.perf_counter() - t, 3)


def fetch(job: AdapterJob) -> None:
    """Update every repo; end here when none can be read, none moved, or on a dry run."""
    fault("fetch")
    with job.timed("fetch"):
        repos = fetch_repos(job.plan, job.log)
    ok = [r for r in repos if r["status"] == "ok"]
    if not ok:
        job.stop({"promote": False, "why": "no repository could be read"}, repos=repos)
    elif all(r["unchanged"] for r in ok):
        job.stop({"promote": False, "why": "nothing new since the last cycle", "nothing_new": True}, repos=repos)
        job.log("nothing new since the last cycle")
    elif job.cycle.state.get("dry_run"):
        job.stop({"promote": False, "why": "dry run: would index, train and evaluate",
                  "would_mine": [r["spec"] for r in ok if not r["unchanged"]]}, repos=repos)
    else:
        job.to("index", repos=repos)


def index(job: AdapterJob) -> None:
    """Mine what is new in each repo into its own dataset."""
    fault("index")
    with job.timed("index"):
        mined = mine_repos(job.cycle, job.plan, job.a, job.log)
    job.to("dataset", mined=mined)


def dataset(job: AdapterJob) -> None:
    """Compose the cycle's train (new + replay) and test splits; end here with too few new pairs."""
    fault("dataset")
    with job.timed("dataset"):
        info = build_cycle_dataset(job.cycle, job.plan, job.a)
    if info["new_train"] < job.plan.min_new_pairs:
        job.a["decision"] = {"promote": False, "why": f"no new training pairs ({info['new_train']} new)",
                             "nothing_new": info["new_train"] == 0}
        remember(job.plan, job.a, trained=False)
        job.to("done", data=info)
        job.log(job.a["decision"]["why"])
        return
    job.to("train", data=info, train_started=False)


def train(job: AdapterJob) -> None:
    """Train the candidate (or adopt the one a killed cycle already published for this dataset)."""
    fault("train")
    name = job.plan.name
    with job.timed("train"):
        cand = adopt_candidate(job.reg, name, job.a["data"]["fingerprint"])
        if cand is None:
            cand, job.a["loss"], job.a["train"] = train_candidate(job.cycle, job.plan, job.a, job.reg,
                                                                  job.on_step, job.log)
        else:
            job.log(f"adopting {name}@{cand} published before the interruption")
            job.a["loss"] = job.reg.manifest(name, cand).training.get("losses", [])
    job.to("eval", candidate=cand)


def evaluate(job: AdapterJob) -> None:
    """Score candidate and active on the cycle's test split."""
    fault("eval")
    with job.timed("eval"):
        job.a["eval"] = evaluate_candidate(job.plan, job.a, job.reg, job.log)
        job.a["eval"]["active_acceptance"] = active_acceptance(job.reg, job.plan.name)
    job.to("decide")


def decide(job: AdapterJob) -> None:
    """Promote only when the candidate beats the active adapter by the margin."""
    job.a["decision"] = gate.decide(job.a["eval"], job.plan.metric, job.plan.margin)
    job.log(job.a["decision"]["why"])
    job.to("promote" if job.a["decision"]["promote"] else "retain")


def promote(job: AdapterJob) -> None:
    """The registry's atomic pointer switch, and the candidate made ready for llama.cpp."""
    fault("promote")
    from copilot.adapters.gguf_lora import prepare_for_serving

    name, cand = job.plan.name, int(job.a["candidate"])
    if job.reg.active(name) != cand:
        job.reg.promote(f"{name}@{cand}", force=True)
    gguf_adapter = prepare_for_serving(job.reg.version_dir(name, cand), job.plan.base, log=job.log)
    if gguf_adapter is not None:
        job.log(f"converted {name}@{cand} for llama.cpp: {gguf_adapter.name}")
    fault("promoted")
    job.a["decision"]["promoted"] = f"{name}@{cand}"
    job.log(f"promoted {name}@{cand}")
    job.to("retain")


def retain(job: AdapterJob) -> None:
    """Remember what was consumed; keep the newest versions, never the active one or its predecessor."""
    from copilot.adapters import retention

    a = job.a
    remember(job.plan, a, trained=True)
    protect = (int(a["candidate"]),) if a.get("candidate") and a["decision"].get("promote") else ()
    a["removed"] = retention.apply(job.reg, job.plan.name, job.plan.keep, protect=protect)
    job.to("done")


STEPS: tuple[tuple[str, Callable[[AdapterJob], None]], ...] = (
    ("fetch", fetch), ("index", index), ("dataset", dataset), ("train", train), ("eval", evaluate),
    ("decide", decide), ("promote", promote), ("retain", retain),
)
