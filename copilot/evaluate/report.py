"""Evaluation reports: the base-vs-adapter table (markdown and terminal rows), a PNG bar chart, JSON.

The FIM rows: all FIM pairs, then the typing points (``typing points``: the ``kind=fim_typing`` group of
``fim_by``, cursors inside an identifier or a few characters into a line) right below, then every other group."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from copilot.core.files import atomic_path, write_text_atomic
from copilot.evaluate.run import CONTEXT_GROUP, EXPLAIN_CHECKS, TYPING_GROUP

TYPING_LABEL = "typing points"
GROUP_LABELS = {TYPING_GROUP: TYPING_LABEL, CONTEXT_GROUP: "needs a name only the context holds",
                "context_gives=False": "the code around suffices"}
CONTEXT_LABELS = {"repo": "repo (each pair's stored context before the file, as the server sends it)",
                  "none": "none"}


def _fmt(v: Any) -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.1f}"


def table_rows(result: dict[str, Any]) -> list[tuple[str, str, int, float | None, float | None]]:
    """(group, metric, n, base, adapter) rows for the markdown/terminal tables."""
    out = []
    base, ad = result.get("base", {}), result.get("adapter", {})
    ref = ad or base
    if "fim" in ref:
        for metric in ("exact_match", "edit_sim"):
            out.append(("all FIM", metric, int(ref["fim"]["n"]), base.get("fim", {}).get(metric), ad.get("fim", {}).get(metric)))
        groups = ref.get("fim_by", {})
        # the typing points first, then the pairs only context can help (stable sort)
        for group in sorted(groups, key=lambda g: (g != TYPING_GROUP, g != CONTEXT_GROUP)):
            label = GROUP_LABELS.get(group, group)
            for metric in ("exact_match", "edit_sim"):
                out.append((label, metric, int(groups[group]["n"]), base.get("fim_by", {}).get(group, {}).get(metric),
                            ad.get("fim_by", {}).get(group, {}).get(metric)))
    if "explain" in ref:
        for metric in ("cosine", "rouge_l", "token_f1", *EXPLAIN_CHECKS):
            if metric in ref["explain"]:
                out.append(("explain", metric, int(ref["explain"]["n"]), base.get("explain", {}).get(metric),
                            ad.get("explain", {}).get(metric)))
    return out


def markdown(result: dict[str, Any], plot_name: str | None = None) -> str:
    context = CONTEXT_LABELS.get(result.get("context", "none"), result.get("context"))
    lines = [f"# Evaluation: {result.get('adapter_spec') or 'base'} on {result['dataset']}", "",
             f"- model: `{result['model']}`; FIM order: {result['order']}; repository context: {context}; "
             f"examples: {result['n']}; test split fingerprint: `{result['test_fingerprint']}`", "",
             "| group | metric | n | base | adapter | Δ |", "|---|---|---:|---:|---:|---:|"]
    for group, metric, n, b, a in table_rows(result):
        d = (a - b) if (a is not None and b is not None) else None
        lines.append(f"| {group} | {metric} | {n} | {_fmt(b)} | {_fmt(a)} | {('+' if d and d > 0 else '') + _fmt(d) if d is not None else '–'} |")
    if plot_name:
        lines += ["", f"![base vs adapter]({plot_name})"]
    return "\n".join(lines) + "\n"


def plot(result: dict[str, Any], out_png: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in table_rows(result) if r[0] in ("all FIM", TYPING_LABEL, "explain")]
    labels = [f"{g}\n{m}" for g, m, *_ in rows]
    base = [r[3] if r[3] is not None else 0 for r in rows]
    ad = [r[4] if r[4] is not None else 0 for r in rows]
    fig, ax = plt.subplots(figsize=(max(4, 1.6 * len(rows) + 1), 3.2))
    x = range(len(rows))
    if any(r[3] is not None for r in rows):
        ax.bar([i - 0.2 for i in x], base, 0.4, label="base")
    if any(r[4] is not None for r in rows):
        ax.bar([i + 0.2 for i in x], ad, 0.4, label="adapter")
    ax.set_xticks(list(x), labels, fontsize=8)
    ax.set_ylim(0, 100)
    ax.set_ylabel("score (0-100)")
    ax.legend()
    fig.tight_layout()
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return out_png


def write_report(result: dict[str, Any], out_md: str | Path) -> Path:
    out_md = Path(out_md)
    out_md.parent.mkdir(parents=True, exist_ok=True)
    png = plot(result, out_md.with_suffix(".png"))
    return write_text_atomic(out_md, markdown(result, png.name))


def write_predictions(result: dict[str, Any], out: str | Path) -> Path:
    """Every scored pair as one JSON line (side, path, kind, prediction, reference, scores): which completions
    were wrong, and what the model wrote instead. Holds the company's code: written only where asked."""
    lines = [json.dumps({"side": side, **rec}, ensure_ascii=False, default=str)
             for side, recs in result.get("examples", {}).items() for rec in recs]
    return write_text_atomic(out, "".join(line + "\n" for line in lines))


def to_json(result: dict[str, Any], with_examples: bool = False) -> str:
    data = result if with_examples else {k: v for k, v in result.items() if k != "examples"}
    return json.dumps(data, indent=2, default=str)
