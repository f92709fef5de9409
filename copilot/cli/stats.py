"""`copilot stats`: acceptance of the served suggestions from the editors' feedback log — per adapter
version, language or day — with latency percentiles; a table, JSON, or a PNG plot."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import click

from copilot.cli.common import errors, out
from copilot.core.types import UserInputError


def _since(value: str | None) -> float | None:
    if not value:
        return None
    try:
        d = datetime.fromisoformat(value)
    except ValueError:
        raise UserInputError(f"--since must be a date or time like 2026-11-30 or 2026-11-30T09:00, got {value!r}") from None
    return (d if d.tzinfo else d.replace(tzinfo=timezone.utc)).timestamp()


@click.command("stats")
@click.option("--by", type=click.Choice(["version", "language", "day"]), default="version", show_default=True,
              help="Group the figures by adapter version, language or day (UTC).")
@click.option("--since", default=None, help="Only events from this date/time on (ISO, UTC unless given).")
@click.option("--log", "log_file", type=click.Path(path_type=Path), default=None,
              help="Feedback log to read (default: $COPILOT_HOME/feedback/lsp-feedback.jsonl).")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
@click.option("--plot", "plot_png", type=click.Path(path_type=Path), default=None, help="Also write a PNG bar plot.")
@errors
def stats_cmd(by, since, log_file, as_json, plot_png):
    """Shown vs accepted suggestions, accepted characters and latency, from the editors' feedback."""
    from copilot.evaluate.acceptance import feedback_file, load_events, plot, summarize, table

    path = log_file or feedback_file()
    events, bad = load_events(path, since=_since(since))
    rows = summarize(events, by)
    if plot_png and rows:
        plot(rows, by, plot_png)
    if as_json:
        click.echo(json.dumps({"log": str(path), "by": by, "skipped_lines": bad, "rows": rows}, indent=2))
        return
    if not rows:
        out.print(f"No suggestions shown yet (feedback log: {path}). The language server records them as editors use it.")
        return
    from rich.table import Table

    t = Table(title=f"Acceptance by {by} ({path})")
    for col in (by, "shown", "accepted", "rate", "accepted chars", "p50 ms", "p95 ms"):
        t.add_column(col, justify="left" if col == by else "right")
    for cells in table(rows, by):
        t.add_row(*cells)
    out.print(t)
    if bad:
        out.print(f"[yellow]{bad} unreadable line(s) skipped[/]")
    if plot_png:
        out.print(f"Plot: {plot_png}")
