"""Acceptance in use: what the editors' feedback log says about each adapter version.

The language server appends one JSON line per event to `$COPILOT_HOME/feedback/lsp-feedback.jsonl`:
`shown` for every suggestion it returns (metadata only: adapter, version, language, length, latency, whether
it came from the typed-ahead cache; never the text or the file), `accepted` / `rejected` when the editor
reports them (the id of the shown suggestion, and what was kept).

Definitions (the ones a team lead asks for):
- **shown**: suggestions the model generated and the editor displayed. A typed-ahead continuation (the user
  typed the first characters of a suggestion and the rest is shown again from the cache) is the same
  suggestion, so it is not counted again;
- **accepted**: accept events, each counted once per suggestion id (accepting a typed-ahead continuation
  accepts the suggestion it continues);
- **acceptance rate** = accepted / shown; **accepted chars** = characters of the accepted text;
- latency percentiles over the shown suggestions (pause to ghost text, as the server measured it).
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from copilot.core import paths

FILE_NAME = "lsp-feedback.jsonl"
GROUPS = ("version", "language", "day")


def feedback_file() -> Path:
    return paths.feedback_dir() / FILE_NAME


def load_events(path: str | Path | None = None, since: float | None = None) -> tuple[list[dict[str, Any]], int]:
    """(events, lines skipped): every well-formed JSON line of the log (at or after `since`, a Unix time)."""
    p = Path(path) if path else feedback_file()
    events, bad = [], 0
    try:
        lines = p.read_text(encoding="utf-8", errors="replace").splitlines()
    except FileNotFoundError:
        return [], 0
    for line in lines:
        try:
            ev = json.loads(line)
        except json.JSONDecodeError:
            bad += 1
            continue
        if not isinstance(ev, dict) or ev.get("event") not in ("shown", "accepted", "rejected"):
            bad += 1
            continue
        if since is not None and float(ev.get("time") or 0) < since:
            continue
        events.append(ev)
    return events, bad


def _version(ev: dict[str, Any]) -> str:
    if not ev.get("adapter"):
        return "base model"
    return f"{ev['adapter']}@{ev['adapter_version']}" if ev.get("adapter_version") is not None else ev["adapter"]


def _key(ev: dict[str, Any], by: str) -> str:
    if by == "version":
        return _version(ev)
    if by == "language":
        return ev.get("language") or "(unknown)"
    if by == "day":
        return datetime.fromtimestamp(float(ev.get("time") or 0), timezone.utc).strftime("%Y-%m-%d")
    raise ValueError(f"unknown grouping {by!r}; use one of {', '.join(GROUPS)}")


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100); None for no values."""
    if not values:
        return None
    s = sorted(values)
    return s[max(0, math.ceil(q / 100 * len(s)) - 1)]


def summarize(events: list[dict[str, Any]], by: str = "version") -> list[dict[str, Any]]:
    """One row per group (sorted), plus a last row "all": shown, accepted, rate, accepted chars, latency."""
    # id -> the shown event; typed-ahead continuations (from_cache) are the same suggestion shown again
    shown = {str(ev["id"]): ev for ev in events
             if ev["event"] == "shown" and ev.get("id") and not ev.get("from_cache")}
    accepted: dict[str, dict[str, Any]] = {}
    for ev in events:
        if ev["event"] == "accepted":
            key = str(ev.get("id")) if ev.get("id") else f"anon-{len(accepted)}"
            accepted.setdefault(key, ev)
    rows: dict[str, dict[str, Any]] = defaultdict(lambda: {"shown": 0, "accepted": 0, "accepted_chars": 0,
                                                           "latencies": []})
    for ev in shown.values():
        for k in (_key(ev, by), "all"):
            rows[k]["shown"] += 1
            if ev.get("latency_ms") is not None:
                rows[k]["latencies"].append(float(ev["latency_ms"]))
    for ev in accepted.values():
        for k in (_key(ev, by), "all"):
            rows[k]["accepted"] += 1
            rows[k]["accepted_chars"] += len(ev.get("completion") or "")
    out = []
    for k in sorted(k for k in rows if k != "all") + (["all"] if rows else []):
        r = rows[k]
        lat = r.pop("latencies")
        out.append({by: k, **r, "rate": r["accepted"] / r["shown"] if r["shown"] else None,
                    "latency_p50_ms": percentile(lat, 50), "latency_p95_ms": percentile(lat, 95)})
    return out


def since_promotion(adapter: str, version: int, promoted_at: str | None,
                    path: str | Path | None = None) -> dict[str, Any] | None:
    """Acceptance of ADAPTER@VERSION from its promotion on (None when nothing was shown yet)."""
    since = datetime.fromisoformat(promoted_at).timestamp() if promoted_at else None
    events, _ = load_events(path, since=since)
    mine = [ev for ev in events if ev.get("adapter") == adapter and ev.get("adapter_version") == version]
    rows = summarize(mine, "version")
    row = next((r for r in rows if r["version"] == "all"), None)
    return row if row and row["shown"] else None


def table(rows: list[dict[str, Any]], by: str) -> list[list[str]]:
    """Rows as printable cells: group, shown, accepted, rate, accepted chars, latency p50 / p95."""
    def ms(v):
        return "–" if v is None else f"{v:.0f}"

    return [[str(r[by]), str(r["shown"]), str(r["accepted"]),
             "–" if r["rate"] is None else f"{100 * r['rate']:.1f}%", str(r["accepted_chars"]),
             ms(r["latency_p50_ms"]), ms(r["latency_p95_ms"])] for r in rows]


def plot(rows: list[dict[str, Any]], by: str, out_png: str | Path) -> Path:
    """Bars of the acceptance rate per group (shown count on each bar), written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from copilot.core.files import atomic_path

    data = [r for r in rows if r[by] != "all" and r["shown"]]
    fig, ax = plt.subplots(figsize=(max(4.0, 1.1 * len(data) + 2), 3.4))
    names = [str(r[by]) for r in data]
    rates = [100 * (r["rate"] or 0) for r in data]
    bars = ax.bar(names, rates, color="#4C78A8")
    for b, r in zip(bars, data):
        ax.annotate(f"{r['accepted']}/{r['shown']}", (b.get_x() + b.get_width() / 2, b.get_height()),
                    ha="center", va="bottom", fontsize=8)
    ax.set_ylabel("accepted / shown (%)")
    ax.set_title(f"Acceptance by {by}")
    ax.set_ylim(0, max([10.0] + rates) * 1.2)
    plt.xticks(rotation=20, ha="right")
    fig.tight_layout()
    out = Path(out_png)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return out
