"""The index phase's work: mine each fetched repo incrementally into its own pairs dataset.

Only commits after the previous head are mined (``index_repos`` on the repo's dataset folder); a repo whose
history was rewritten is mined again from scratch when the plan says ``on_rewrite = "reindex"``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from copilot.core.types import CopilotError
from copilot.nightly.config import AdapterPlan
from copilot.nightly.state import Cycle, repo_dataset_dir


def mine_repos(cycle: Cycle, plan: AdapterPlan, a: dict[str, Any], log: Callable[[str], None]) -> dict[str, Any]:
    """{spec: what was mined} for every ok repo; kept per repo (saved after each), so a resumed index phase
    skips the repos already mined and still reports what each one mined."""
    from indexer.mine.config import IndexConfig

    icfg = IndexConfig(test_fraction=plan.test_fraction, test_commits=plan.test_commits or None)
    mined = a.setdefault("mined", {})
    for r in a["repos"]:
        if r["status"] != "ok" or r["spec"] in mined:
            continue
        summary = _mine(plan, r, icfg, log)
        if summary is not None:
            mined[r["spec"]] = summary
            cycle.save()
    return mined


def _mine(plan: AdapterPlan, r: dict[str, Any], icfg, log: Callable[[str], None]) -> dict[str, Any] | None:
    """Mine one repo; a failure skips it (noted in its entry) and returns None."""
    from indexer.mine.index import index_repos

    out = repo_dataset_dir(plan.name, r["slug"])
    try:
        res = index_repos([r["path"]], out, icfg, force=plan.on_rewrite == "reindex" and "rewritten" in r["note"])
    except CopilotError as exc:
        r.update(status="skipped", note=f"indexing failed: {exc}")
        log(f"skipping {r['spec']}: indexing failed: {exc}")
        return None
    m = res.manifest
    extra = m.get("extra", {})
    return {
        "commits_mined": res.commits_mined, "new_pairs": res.new_pairs, "files_mined": res.files_mined,
        "bytes_mined": res.bytes_mined, "incremental": res.incremental,
        "filtered": {**m.get("filters", {}), **{f"history.{k}": v for k, v in extra.get("history_filters", {}).items()}},
        "secrets_found": extra.get("secrets_found", 0), "secrets": m.get("secrets", {}),
        "seconds": round(res.seconds, 2), "by_split": m.get("counts", {}).get("by_split", {}),
    }
