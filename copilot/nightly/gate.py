"""The decide phase: promote the candidate only when it beats the active adapter by the configured margin.

The decision also carries the typing points' scores (``typing``: exact match and edit similarity of candidate
and active on the ``fim_typing`` pairs, copilot.evaluate.run.TYPING_GROUP) to be shown beside it; they gate
only when the configured metric names them (``metric = "fim_by.kind=fim_typing.edit_sim"``)."""

from __future__ import annotations

from typing import Any

from copilot.adapters.registry import get_metric
from copilot.evaluate.run import TYPING_GROUP

TYPING_METRICS = ("exact_match", "edit_sim")


def decide(ev: dict[str, Any], metric: str, margin: float) -> dict[str, Any]:
    d = _decide(ev, metric, margin)
    typing = typing_scores(ev)
    if typing is not None:
        d["typing"] = typing
    return d


def typing_scores(ev: dict[str, Any]) -> dict[str, Any] | None:
    """{"n": pairs, metric: {"candidate": c, "active": a}} for the typing points, or None without any."""
    group = ev.get("candidate", {}).get("fim_by", {}).get(TYPING_GROUP)
    if not group:
        return None
    out: dict[str, Any] = {"n": int(group.get("n", 0))}
    for m in TYPING_METRICS:
        out[m] = {side: get_metric(ev.get(side, {}), f"fim_by.{TYPING_GROUP}.{m}") for side in ("candidate", "active")}
    return out


def _decide(ev: dict[str, Any], metric: str, margin: float) -> dict[str, Any]:
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
