"""The dataset phase: one cycle's training set, composed from the per-repo datasets (owned by indexer.dataset).

train = pairs of commits never trained on (new) + a replay sample of older train pairs;
test  = the newest-commit test split of every repo (the same rows for both sides of the comparison).
"""

from __future__ import annotations

import random
from typing import Any

from copilot.core.clock import now_iso
from copilot.core.files import sha256_json
from copilot.nightly.config import AdapterPlan
from copilot.nightly.state import Cycle, adapter_memory, repo_dataset_dir
from indexer.pairs import FIM_KINDS


def build_cycle_dataset(cycle: Cycle, plan: AdapterPlan, a: dict[str, Any]) -> dict[str, Any]:
    """Write runs/<id>/data-<adapter>/: train = new + replay, test = every repo's newest-commit split."""
    from indexer import dataset as ds

    pool = _collect(plan, a)
    new, old = pool["new"], pool["old"]
    replay = _replay_sample(new, old, plan, f"{cycle.id}|{plan.seed}")
    train_rows = new + replay
    for row in train_rows:
        row["split"] = "train"
    test = _test_sample(pool["test"], plan)
    fp = sha256_json({"cycle": cycle.id, "adapter": plan.name, "heads": pool["heads"],
                      "n": [len(new), len(replay), len(test)]}, 24)
    out = cycle.dir / f"data-{plan.name}"
    manifest = {"fingerprint": fp, "config_hash": plan.config_hash(), "repos": pool["heads"],
                "counts": {"new": len(new), "replay": len(replay), "test": len(test)}, "filters": {}, "secrets": {},
                "created": now_iso(), "tool_version": "nightly", "extra": {"cycle": cycle.id}}
    if new:
        ds.write_dataset(out, {"train": train_rows, "test": test}, [], {}, manifest)
    return {"dir": str(out), "fingerprint": fp, "new_train": len(new), "replay": len(replay), "old_train": len(old),
            "test": len(test), "train_commits": pool["train_commits"],
            "new_commits": len({r["commit"] for r in new})}


def _collect(plan: AdapterPlan, a: dict[str, Any]) -> dict[str, Any]:
    """Every mined repo's train rows, split into new (commits never trained on) and old, and its test rows."""
    from indexer import dataset as ds

    trained = {k: set(v) for k, v in adapter_memory(plan.name).get("trained_commits", {}).items()}
    new, old, test, heads = [], [], [], {}
    train_commits: dict[str, list[str]] = {}
    for r in a["repos"]:
        out = repo_dataset_dir(plan.name, r["slug"])
        if not ds.has_dataset(out):
            continue
        key = r["spec"]
        done = trained.get(key, set())
        rows = ds.split_rows(out, "train")
        for row in rows:
            (old if row["commit"] in done else new).append(row)
        train_commits[key] = sorted({row["commit"] for row in rows})
        test += [row for row in ds.split_rows(out, "test")
                 if row["kind"] in FIM_KINDS or plan.metric.startswith("explain")]
        heads[key] = r.get("head")
    return {"new": new, "old": old, "test": test, "heads": heads, "train_commits": train_commits}


def _replay_sample(new: list[dict], old: list[dict], plan: AdapterPlan, seed: str) -> list[dict]:
    """Older pairs replayed beside the new ones, replay_share of the training set (none without new pairs)."""
    rng = random.Random(seed)
    n_replay = min(len(old), round(len(new) * plan.replay_share / (1 - plan.replay_share))) if new else 0
    return rng.sample(old, n_replay) if n_replay else []


def _test_sample(test: list[dict], plan: AdapterPlan) -> list[dict]:
    """A stable sample of at most eval_examples test rows."""
    test.sort(key=lambda r: (r["repo"], r["path"], r["span_start"], r["middle"]))
    if len(test) > plan.eval_examples:
        test = random.Random(plan.seed).sample(test, plan.eval_examples)
    return test
