"""`copilot complete FILE --line L --col C`: the inline completion an editor would show."""

from __future__ import annotations

import json
from pathlib import Path

import click

from copilot.cli.common import err, load_engine, settings_from


@click.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--line", "line", type=int, required=True, help="1-based line of the cursor.")
@click.option("--col", "col", type=int, required=True, help="1-based column of the cursor (characters).")
@click.option("--adapter", help="Adapter NAME[@VERSION] or folder; default: config, else the base model.")
@click.option("--model", help="Base model (packaged name, folder or cached hub id).")
@click.option("--max-tokens", type=int, help="Most tokens generated.")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def complete(file, line, col, adapter, model, max_tokens, as_json):
    """Print the inline completion an editor would show at LINE:COL of FILE."""
    from copilot.core.sources import offset_of, read_source
    from indexer.languages import language_for_path

    settings = settings_from(model=model, adapter=adapter, completion={"max_new_tokens": max_tokens})
    src = read_source(file)
    for note in src.notes:
        err.print(f"[yellow]note:[/] {note}")
    text = src.text
    off = offset_of(text, line, col, str(file))
    eng, key = load_engine(settings, settings.adapter or None, quiet=as_json)
    res = eng.complete(text[:off], text[off:], language_for_path(file), key, path=str(file))
    if as_json:
        click.echo(json.dumps({
            "path": str(file), "line": line, "col": col, "text": res.text, "stop_reason": res.stop_reason,
            "model": res.model, "adapter": res.adapter, "prompt_tokens": res.prompt_tokens,
            "generated_tokens": res.generated_tokens, "latency_ms": round(res.latency_ms, 1),
        }, ensure_ascii=False, indent=2))
    else:
        if res.text:
            click.echo(res.text)
        else:
            err.print("[yellow](no completion at this position)[/]")
