"""Run (or resume) one nightly cycle: every adapter of the config through the phases, under the cycle lock."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from copilot.adapters.registry import Registry
from copilot.core.types import CopilotError, UserInputError
from copilot.nightly import phases
from copilot.nightly.config import AdapterPlan, load_config
from copilot.nightly.report import write_report
from copilot.nightly.state import Cycle, unfinished_cycles


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

    plans = _plans(opts)
    lock = CycleLock(what="nightly cycle")
    with lock:
        if lock.broke:
            opts.log(f"Broke a stale lock ({lock.broke.get('reason')})")
        cycle = None if opts.dry_run else _resume(plans, opts)
        if cycle is None:
            cycle = Cycle.new(plans, str(opts.config) if opts.config else None, opts.dry_run)
        t0 = time.perf_counter()
        for plan in plans:
            if cycle.ad(plan.name)["phase"] != "done":
                _run_adapter_safely(cycle, plan, opts)
        cycle.finish("done")
        cycle.state["seconds"] = round(time.perf_counter() - t0 + float(cycle.state.get("seconds", 0)), 2)
        cycle.save()
        write_report(cycle)
        return cycle.state


def _plans(opts: Options) -> list[AdapterPlan]:
    plans = load_config(opts.config)
    if opts.only:
        plans = [p for p in plans if p.name == opts.only]
        if not plans:
            raise UserInputError(f"adapter {opts.only!r} is not in the nightly config")
    return plans


def _resume(plans: list[AdapterPlan], opts: Options) -> Cycle | None:
    """The newest unfinished cycle started for these same plans, marked resumed; other unfinished ones are
    marked abandoned."""
    cycle = None
    for cid in reversed(unfinished_cycles()):
        c = Cycle.load(cid)
        if c.same_plans(plans) and cycle is None:
            cycle = c
            c.state["resumed"] = int(c.state.get("resumed", 0)) + 1
            c.state["pid"] = os.getpid()
            c.save()
            opts.log(f"Resuming unfinished cycle {cid}")
        else:
            c.finish("abandoned")
            c.save()
    return cycle


def _run_adapter_safely(cycle: Cycle, plan: AdapterPlan, opts: Options) -> None:
    """One adapter's phases; a CopilotError ends that adapter (reported as failed), not the cycle."""
    try:
        _run_adapter(cycle, plan, opts)
    except CopilotError as exc:
        a = cycle.ad(plan.name)
        a["error"] = str(exc)
        a["decision"] = {"promote": False, "why": f"failed: {exc}"}
        cycle.set_phase(plan.name, "done")
        opts.log(f"{plan.name}: {exc}")


def _run_adapter(cycle: Cycle, plan: AdapterPlan, opts: Options) -> None:
    """From the phase the adapter's state names, each phase in order until one ends the cycle ("done")."""
    job = phases.AdapterJob(cycle, plan, Registry(), lambda s: opts.log(f"{plan.name}: {s}"), opts.on_step)
    for phase, step in phases.STEPS:
        if job.phase == phase:
            step(job)
