"""The decide phase: promote the candidate only when it beats the active adapter by the configured margin."""

from __future__ import annotations

from typing import Any

from copilot.adapters.registry import get_metric


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
