"""`copilot eval`: an adapter against the base model on the newest-commit test split."""

from __future__ import annotations

from pathlib import Path

import click

from copilot.cli.common import console, errors


@click.command("eval")
@click.option("--data", "data", required=True, type=click.Path(path_type=Path), help="Pairs dataset folder; its test split is used.")
@click.option("--adapter", default=None, help="NAME[@VERSION] or adapter folder; omit to score the base model only.")
@click.option("--base", default=None, help="Base model; default: settings.model.")
@click.option("--base-too", is_flag=True, help="Also score the base model (side by side).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("--report", type=click.Path(path_type=Path), default=None, help="Write a markdown report (+ PNG plot beside it).")
@click.option("--max-examples", type=int, default=None, help="Score at most N test pairs (a stable sample).")
@click.option("--order", type=click.Choice(["psm", "spm"]), default="psm", help="FIM prompt order used for completions.")
@click.option("--max-new-tokens", type=int, default=None, help="Completion length limit (default: completion settings).")
@click.option("--no-record", is_flag=True, help="Do not store the result in the adapter's manifest.")
@click.option("--backend", type=click.Choice(["transformers", "llama.cpp"]), default="transformers",
              help="Engine that generates (transformers is the reference; llama.cpp checks what the server serves).")
@click.option("--kinds", default=None,
              help="Comma list of pair kinds to score: fim_file, fim_history, fim_typing, explain.")
@click.option("--context", "context", type=click.Choice(["none", "repo"]), default=None,
              help="Repository context before the file: repo = each pair's stored context (what the server would "
                   "have sent), none = nothing. Default: repo when the dataset's pairs carry it, else none.")
@click.option("--predictions", type=click.Path(path_type=Path), default=None,
              help="Write every scored pair (prediction, reference, scores) as JSON lines to this file.")
@errors
def eval_cmd(data, adapter, base, base_too, as_json, report, max_examples, order, max_new_tokens, no_record, backend, kinds,
             context, predictions):
    """Exact match / edit similarity (FIM) and explanation similarity on the newest-commit test split."""
    from copilot.core.settings import load_settings
    from copilot.evaluate.report import table_rows, to_json, write_predictions, write_report
    from copilot.evaluate.run import evaluate

    settings = load_settings({"model": base})
    con = console()
    res = evaluate(data, adapter, base_too=base_too, settings=settings, max_examples=max_examples, order=order,
                   max_new_tokens=max_new_tokens, record=not no_record, progress=not as_json, backend=backend,
                   kinds=tuple(k.strip() for k in kinds.split(",") if k.strip()) if kinds else None,
                   log=lambda s: con.print(s, highlight=False), context=context)
    if report:
        con.print(f"Report: {write_report(res, report)}")
    if predictions:
        con.print(f"Predictions: {write_predictions(res, predictions)}")
    if as_json:
        click.echo(to_json(res))
        return
    from rich.table import Table

    t = Table(title=f"{res.get('adapter_spec') or 'base'} — {res['n']} test pairs ({res['order']}, {res['backend']}, "
                    f"context {res.get('context', 'none')})")
    for col in ("group", "metric", "n", "base", "adapter", "Δ"):
        t.add_column(col, justify="right" if col in ("n", "base", "adapter", "Δ") else "left")
    for g, m, n, b, a in table_rows(res):
        d = f"{a - b:+.1f}" if a is not None and b is not None else "–"
        t.add_row(g, m, str(n), "–" if b is None else f"{b:.1f}", "–" if a is None else f"{a:.1f}", d)
    from rich.console import Console

    Console().print(t)
