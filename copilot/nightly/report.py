"""A cycle's report: runs_dir()/<id>/report.json (the cycle state) and report.md, and the terminal summary."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from copilot.adapters.registry import get_metric
from copilot.core import paths
from copilot.core.files import write_json_atomic, write_text_atomic
from copilot.evaluate.run import TYPING_GROUP
from copilot.nightly.gate import TYPING_METRICS, typing_scores
from copilot.nightly.state import Cycle

REPORT_JSON = "report.json"
REPORT_MD = "report.md"


def write_report(cycle: Cycle) -> tuple[Path, Path]:
    write_json_atomic(cycle.dir / REPORT_JSON, cycle.state)
    write_text_atomic(cycle.dir / REPORT_MD, markdown(cycle.state))
    return cycle.dir / REPORT_JSON, cycle.dir / REPORT_MD


def _f(v: Any) -> str:
    return "–" if v is None else (f"{v:.2f}" if isinstance(v, float) else str(v))


def sparkline(values: list[float]) -> str:
    if not values:
        return ""
    bars = "▁▂▃▄▅▆▇█"
    lo, hi = min(values), max(values)
    step = max(1, len(values) // 40)
    return "".join(bars[int((v - lo) / (hi - lo + 1e-12) * 7)] for v in values[::step])


# ---------------------------------------------------------------------------- report.md
def markdown(st: dict[str, Any]) -> str:
    out = [f"# Nightly cycle {st['id']}", "",
           f"Status **{st['status']}** · started {st['started']} · finished {st.get('finished') or '–'} · "
           f"{_f(st.get('seconds'))} s" + (f" · resumed {st['resumed']}×" if st.get("resumed") else "")
           + (" · dry run" if st.get("dry_run") else ""), ""]
    for name, a in st["adapters"].items():
        out += _adapter_section(name, a)
    return "\n".join(out)


def _adapter_section(name: str, a: dict[str, Any]) -> list[str]:
    d = a.get("decision") or {}
    out = [f"## {name}", "", f"**Decision:** {d.get('why', 'unfinished (' + a['phase'] + ')')}", ""]
    out += _repo_table(a)
    data = a.get("data")
    if data:
        out += ["", f"Training set: {data['new_train']} new pairs from {data['new_commits']} commits + "
                    f"{data['replay']} replayed (of {data['old_train']} older); test split: {data['test']} pairs."]
    if a.get("loss"):
        ls = a["loss"]
        out += ["", f"Loss ({len(ls)} steps, warm start: {a.get('warm_start') or 'none'}): "
                    f"{ls[0]:.3f} → {ls[-1]:.3f}  `{sparkline(ls)}`"]
    if a.get("eval"):
        out += _eval_table(a["eval"])
    if a.get("removed"):
        out += ["", f"Retention removed: {', '.join(a['removed'])}"]
    if a.get("timings"):
        out += ["", "Timings: " + ", ".join(f"{k} {v:.1f} s" for k, v in a["timings"].items())]
    out.append("")
    return out


def _repo_table(a: dict[str, Any]) -> list[str]:
    out = ["| repo | status | head | commits mined | new pairs | filtered | secrets | note |",
           "|---|---|---|---|---|---|---|---|"]
    for r in a.get("repos", []):
        m = (a.get("mined") or {}).get(r["spec"], {})
        out.append(f"| {r['spec']} | {r['status']} | {(r.get('head') or '–')[:12]} | {m.get('commits_mined', '–')} | "
                   f"{m.get('new_pairs', '–')} | {sum(m.get('filtered', {}).values()) if m else '–'} | "
                   f"{m.get('secrets_found', '–')} | {r.get('note', '')} |")
    return out


def _eval_table(ev: dict[str, Any]) -> list[str]:
    out = ["", f"| metric (n={ev['n']}) | candidate {ev['candidate_label']} | active ({ev['active_label']}) |",
           "|---|---|---|"]
    for group in ("fim", "explain"):
        for k in ("exact_match", "edit_sim", "cosine", "rouge_l", "token_f1"):
            c = get_metric(ev["candidate"], f"{group}.{k}")
            if c is not None:
                out.append(f"| {group}.{k} | {c:.2f} | {_f(get_metric(ev['active'], f'{group}.{k}'))} |")
        if group == "fim":  # the typing points (fim_typing pairs) right below all FIM pairs
            typing = typing_scores(ev)
            for k in TYPING_METRICS if typing else ():
                out.append(f"| fim_by.{TYPING_GROUP}.{k} (typing points, n={typing['n']}) | "
                           f"{_f(typing[k]['candidate'])} | {_f(typing[k]['active'])} |")
    acc = ev.get("active_acceptance")
    if acc:
        out.append(f"| editors: accepted / shown since promotion | – | {100 * acc['rate']:.1f}% "
                   f"({acc['accepted']}/{acc['shown']}, latency p50 {_f(acc['latency_p50_ms'])} ms) |")
    return out


# ---------------------------------------------------------------------------- terminal summary
def summary_lines(st: dict[str, Any]) -> list[str]:
    lines = [f"cycle {st['id']}: {st['status']} in {_f(st.get('seconds'))} s" + (" (dry run)" if st.get("dry_run") else "")]
    for name, a in st["adapters"].items():
        lines += _adapter_summary(name, a)
    lines.append(f"  report: {paths.runs_dir() / st['id'] / REPORT_MD}")
    return lines


def _adapter_summary(name: str, a: dict[str, Any]) -> list[str]:
    d = a.get("decision") or {}
    repos = a.get("repos", [])
    mined = a.get("mined") or {}
    commits = sum(m.get("commits_mined", 0) for m in mined.values())
    pairs = sum(m.get("new_pairs", 0) for m in mined.values())
    secrets = sum(m.get("secrets_found", 0) for m in mined.values())
    skipped = [r for r in repos if r["status"] != "ok"]
    lines = [f"  {name}: {d.get('why', a['phase'])}",
             f"    repos {len(repos) - len(skipped)}/{len(repos)} ok, {commits} commits mined, {pairs} new pairs, "
             f"{secrets} secrets redacted"]
    for r in skipped:
        lines.append(f"    skipped {r['spec']}: {r['note']}")
    if a.get("data"):
        dd = a["data"]
        lines.append(f"    trained on {dd['new_train']} new + {dd['replay']} replay pairs; test {dd['test']}")
    if a.get("loss"):
        lines.append(f"    loss {a['loss'][0]:.3f} → {a['loss'][-1]:.3f}  {sparkline(a['loss'])}")
    typing = typing_scores(a["eval"]) if a.get("eval") else None
    if typing:
        lines.append(f"    typing points ({typing['n']}): exact match {_f(typing['exact_match']['candidate'])} vs "
                     f"{_f(typing['exact_match']['active'])}, edit sim {_f(typing['edit_sim']['candidate'])} vs "
                     f"{_f(typing['edit_sim']['active'])} (candidate vs {a['eval'].get('active_label')})")
    if a.get("removed"):
        lines.append(f"    retention removed {', '.join(a['removed'])}")
    return lines
