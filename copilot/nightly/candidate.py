"""The candidate of a cycle: trained warm-started from the active adapter (or adopted when a killed cycle had
already published it), then evaluated beside the active adapter (or the base model when none is active)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from copilot.adapters.registry import Registry
from copilot.core.types import CopilotError
from copilot.nightly.config import AdapterPlan, settings_for
from copilot.nightly.state import Cycle, fault


def adopt_candidate(reg: Registry, name: str, fingerprint: str) -> int | None:
    """The version already published for this dataset (a cycle killed after publishing), if any."""
    for v in reversed(reg.versions(name)):
        try:
            m = reg.manifest(name, v)
        except CopilotError:
            continue
        if m.dataset_fingerprint == fingerprint and m.status != "retired":
            return v
    return None


def train_candidate(cycle: Cycle, plan: AdapterPlan, a: dict[str, Any], reg: Registry,
                    on_step: Callable[[int, float], None] | None, log) -> tuple[int, list[float], dict]:
    """Train and publish a candidate; a second call for the same cycle resumes from its last checkpoint."""
    from copilot.train.loop import train
    from copilot.train.recipe import TrainRecipe

    settings = settings_for(plan)
    recipe = TrainRecipe(train=settings.train, max_steps=plan.max_steps if plan.max_steps > 0 else 0,
                         max_minutes=plan.max_minutes, checkpoint_every=max(1, plan.checkpoint_every), seed=plan.seed)
    active = reg.active(plan.name)
    warm = reg.resolve(f"{plan.name}@{active}") if active is not None else None
    resume = bool(a.get("train_started"))
    a["train_started"] = True
    a["warm_start"] = f"{plan.name}@{active}" if active is not None else None
    cycle.save()

    def step_hook(step: int, loss: float) -> None:
        if on_step:
            on_step(step, loss)
        if step == plan.checkpoint_every + 1:
            fault("train_step")

    if plan.processes > 1:
        v = _train_processes(cycle, plan, recipe, a, reg, warm, resume, log)
        t = reg.manifest(plan.name, v).training
        losses, start, mode, seconds, tps = (t.get("losses", []), int(t.get("start_step", 0)), t.get("mode"),
                                             t.get("train_seconds"), t.get("tokens_per_s"))
    else:
        res = train(a["data"]["dir"], plan.name, settings=settings, recipe=recipe, base=plan.base, resume=resume,
                    progress=False, log=log, on_step=step_hook, registry=reg, init_adapter=warm)
        v, t = res.manifest.version, res.manifest.training
        losses, start, mode, seconds, tps = (res.losses, res.start_step, res.mode, round(res.seconds, 2),
                                             round(res.tokens_per_s, 1))
    reg.update_manifest(plan.name, v, training={**t, "warm_start": a["warm_start"], "nightly_cycle": cycle.id,
                                                 "resumed_from_step": start})
    return v, losses, {"steps": t.get("steps"), "resumed_from_step": start, "mode": mode, "seconds": seconds,
                       "tokens_per_s": tps, **({"processes": plan.processes} if plan.processes > 1 else {})}


def _train_processes(cycle: Cycle, plan: AdapterPlan, recipe, a: dict[str, Any], reg: Registry, warm, resume: bool,
                     log) -> int:
    """The candidate trained by `plan.processes` data-parallel processes (copilot.train.launch); -> its version."""
    from copilot.core.files import write_text_atomic
    from copilot.models.device import pick_device
    from copilot.train import launch
    from copilot.train.recipe import recipe_toml

    device = pick_device(plan.device)
    recipe_file = write_text_atomic(cycle.dir / f"{plan.name}.recipe.toml", recipe_toml(recipe))
    args = ["--data", str(a["data"]["dir"]), "--name", plan.name, "--base", plan.base, "--config", str(recipe_file),
            "--quiet"] + ["--resume"] * resume + (["--init-adapter", str(warm)] if warm is not None else [])
    return launch.train_processes(plan.processes, device, args, plan.name, reg, log=log)


def evaluate_candidate(plan: AdapterPlan, a: dict[str, Any], reg: Registry, log) -> dict[str, Any]:
    """Candidate and active (or the base model) scored on the cycle's test split."""
    from copilot.evaluate.run import evaluate
    from copilot.serve.hf import Engine

    settings = settings_for(plan)
    data = a["data"]["dir"]
    engine = Engine.load(plan.base, settings=settings, device=plan.device)
    cand = f"{plan.name}@{a['candidate']}"
    kw = dict(engine=engine, max_examples=plan.eval_examples, max_new_tokens=plan.eval_max_new_tokens,
              explain_tokens=plan.eval_max_new_tokens, registry=reg)
    c = evaluate(data, cand, record=True, **kw)
    active = reg.active(plan.name)
    if active is not None and active != int(a["candidate"]):
        act_label = f"{plan.name}@{active}"
        act = evaluate(data, act_label, record=False, **kw)["adapter"]
    else:
        act_label = "base model"
        act = evaluate(data, None, record=False, **kw)["base"]
    return {"n": c["n"], "test_fingerprint": c["test_fingerprint"], "candidate_label": cand,
            "active_label": act_label, "candidate": c["adapter"], "active": act}


def active_acceptance(reg: Registry, name: str) -> dict[str, Any] | None:
    """How the editors took the active version since its promotion (copilot stats' figures), or None."""
    from copilot.evaluate.acceptance import since_promotion

    active = reg.active(name)
    if active is None:
        return None
    return since_promotion(name, active, reg.pointer(name).get("changed"))
