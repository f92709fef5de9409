"""`copilot index REPO [REPO ...] --out DIR`: mine git repositories into a pairs dataset.

`copilot index`: mine repositories into a pairs dataset (registered lazily by copilot.cli.main).
"""

from __future__ import annotations

import json
import sys

import click

from copilot.core.types import CopilotError


def _make_reporter(console):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from indexer.mine.config import Reporter

    class RichReporter(Reporter):
        def __init__(self) -> None:
            self.progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                     TimeElapsedColumn(), console=console, transient=False)
            self.tasks: dict[str, int] = {}
            self.started = False

        def start(self, task: str, total: int | None, description: str = "") -> None:
            if not self.started:
                self.progress.start()
                self.started = True
            self.tasks[task] = self.progress.add_task(description or task, total=total)

        def advance(self, task: str, n: int = 1) -> None:
            if task in self.tasks:
                self.progress.advance(self.tasks[task], n)

        def note(self, message: str) -> None:
            self.progress.console.print(f"[dim]{message}[/dim]")

        def stop(self) -> None:
            if self.started:
                self.progress.stop()

    return RichReporter()


def _summary_table(result, console) -> None:
    from rich.table import Table

    from indexer.pairs import FIM_KINDS

    m = result.manifest
    counts = m["counts"]
    table = Table(title=f"pairs dataset {result.out}" + (" (incremental)" if result.incremental else ""))
    table.add_column("kind")
    table.add_column("train", justify="right")
    table.add_column("test", justify="right")
    for kind in (*FIM_KINDS, "explain"):
        table.add_row(kind, str(counts["by_kind_split"].get(f"{kind}/train", 0)),
                      str(counts["by_kind_split"].get(f"{kind}/test", 0)))
    table.add_row("[bold]total", str(counts["by_split"]["train"]), str(counts["by_split"]["test"]))
    console.print(table)
    langs = ", ".join(f"{k} {v}" for k, v in sorted(counts["by_language"].items(), key=lambda kv: -kv[1]))
    console.print(f"languages: {langs or '-'}")
    ctx = m["extra"].get("context") or {}
    if ctx.get("tokens"):
        console.print(f"repository context: {ctx['non_empty']} of {ctx['fim_pairs']} FIM pairs "
                      f"({ctx['mined_with_context']} mined with it, up to {ctx['tokens']} tokens)")
    filt = ", ".join(f"{k} {v}" for k, v in m["filters"].items() if v)
    console.print(f"filtered: {filt or 'nothing'}")
    found = m["extra"]["secrets_found"]
    if found:
        kinds = ", ".join(f"{k} {v}" for k, v in sorted(m["secrets"].items()))
        console.print(f"secrets: {found} found, {m['extra']['secrets_action']}ed ({kinds})")
    else:
        console.print("secrets: none found")
    mb = result.bytes_mined / 1e6
    rate = mb / result.seconds if result.seconds > 0 else 0.0
    console.print(f"this run: {result.new_pairs} new pairs from {result.commits_mined} commits and "
                  f"{result.files_mined} file versions ({mb:.2f} MB) in {result.seconds:.1f} s ({rate:.2f} MB/s)")
    for key, rep in m["repos"].items():
        for note in rep.get("notes", []):
            console.print(f"[yellow]note[/yellow] {key}: {note}")


@click.command("index")
@click.argument("repos", nargs=-1, required=True)
@click.option("--out", "out", required=True, type=click.Path(file_okay=False), help="Output dataset directory.")
@click.option("--since", default=None, help="Mine only commits after this revision or date (YYYY-MM-DD).")
@click.option("--languages", default=None, help="Comma-separated languages, e.g. py,ts,go (default: all).")
@click.option("--force", is_flag=True, help="Replace a different dataset already in --out.")
@click.option("--json", "as_json", is_flag=True, help="Print the manifest as JSON on stdout.")
@click.option("--secrets", type=click.Choice(["redact", "drop"]), default="redact", show_default=True,
              help="What to do with a file version holding a secret.")
@click.option("--test-fraction", type=float, default=0.1, show_default=True,
              help="Newest share of commits forming the test split.")
@click.option("--test-commits", type=int, default=None, help="Use the newest N commits as the test split.")
@click.option("--test-days", type=float, default=None, help="Use the commits of the last D days as the test split.")
@click.option("--no-history", is_flag=True, help="Skip FIM pairs from commit history.")
@click.option("--max-file-kb", type=int, default=1024, show_default=True, help="Skip files larger than this.")
@click.option("--context-tokens", type=click.IntRange(min=0), default=256, show_default=True,
              help="Repository context each FIM pair carries (what the server would send at its cursor, from the "
                   "repository at the pair's commit), in tokens; 0: none.")
def index(repos, out, since, languages, force, as_json, secrets, test_fraction, test_commits, test_days,
          no_history, max_file_kb, context_tokens):
    """Mine git repositories (paths, bare repos or URLs) into a filtered pairs dataset at --out."""
    from rich.console import Console

    from indexer.languages import parse_language_list
    from indexer.mine.config import IndexConfig
    from indexer.mine.index import index_repos
    from indexer.pairs import PairConfig

    console = Console(stderr=True)
    try:
        if not 0.0 <= test_fraction < 1.0:
            raise click.BadParameter("must be in [0, 1)", param_hint="--test-fraction")
        config = IndexConfig(
            languages=parse_language_list(languages), max_file_bytes=max_file_kb * 1024, history=not no_history,
            secrets=secrets, test_fraction=test_fraction, test_commits=test_commits, test_days=test_days,
            pairs=PairConfig(context_tokens_repo=context_tokens))
        reporter = _make_reporter(console)
        try:
            result = index_repos(list(repos), out, config, since=since, force=force, reporter=reporter)
        finally:
            reporter.stop()
    except CopilotError as e:
        exc = click.ClickException(str(e))
        exc.exit_code = e.exit_code
        raise exc from None
    except KeyboardInterrupt:
        raise click.ClickException("interrupted; the previous dataset (if any) is unchanged") from None
    if as_json:
        sys.stdout.write(json.dumps(result.manifest, indent=2, sort_keys=True) + "\n")
    else:
        _summary_table(result, console)


if __name__ == "__main__":  # pragma: no cover
    index()
