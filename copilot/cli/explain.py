"""`copilot explain FILE`: an overview, then each top-level function/class, streamed."""

from __future__ import annotations

import json
from pathlib import Path

import click

from copilot.cli.common import err, load_engine, out, settings_from
from copilot.core.settings import Settings
from copilot.core.types import CopilotError


@click.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--symbol", help="Explain only this function/class (NAME or Class.method).")
@click.option("--adapter", help="Adapter NAME[@VERSION] or folder; default: the base model (with explain.adapter = true: the configured adapter).")
@click.option("--model", help="Base model (packaged name, folder or cached hub id).")
@click.option("--backend", type=click.Choice(["auto", "llama.cpp", "transformers", "remote"]),
              help="Inference backend; remote = the team service at remote.url (key: remote.api_key_file or COPILOT_REMOTE_API_KEY).")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON instead of streaming text.")
@click.option("--max-tokens", type=int, help="Most tokens generated per section.")
def explain(file, symbol, adapter, model, backend, as_json, max_tokens):
    """Explain FILE: an overview, then each top-level function/class, streamed as generated."""
    from copilot.serve.explain import explain_sections, later_sections
    from copilot.core.sources import read_source
    from indexer.languages import language_for_path

    settings = settings_from(model=model, adapter=adapter, backend=backend, explain={"max_new_tokens": max_tokens})
    settings = explain_settings(settings, model_flag=model, adapter_flag=adapter)
    es = settings.explain
    src = read_source(file, limit=es.max_input_chars * 8)
    for note in src.notes:
        err.print(f"[yellow]note:[/] {note}")
    if not src.text.strip():
        raise CopilotError(f"{file}: the file is empty; nothing to explain")
    if language_for_path(file) is None:
        err.print(f"[yellow]note:[/] {file}: unknown language; explaining it as plain text without per-symbol sections")
    sections = list(explain_sections(src.text, str(file), settings, symbol=symbol))  # validates --symbol early
    eng, key = load_engine(settings, settings.adapter or None, quiet=as_json)
    others = later_sections(sections)
    results = []
    for sym, code, lang, truncated in sections:
        truncated = truncated or src.truncated
        if not as_json:
            title = f"## {sym}" if sym else f"# {file}"
            out.print(f"\n[bold]{title}[/]")
            if truncated:
                out.print("[yellow](input bounded: the explanation covers only the beginning)[/]")
        streamer = (lambda t: (out.file.write(t), out.file.flush())) if not as_json else None
        exp = eng.explain(code, str(file), key, symbol=sym, language=lang, on_text=streamer, truncated=truncated,
                          others=() if sym else others)
        if not as_json:
            out.file.write("\n")
        results.append({"symbol": sym, "text": exp.text, "truncated": truncated})
    if as_json:
        click.echo(json.dumps({"path": str(file), "model": eng.model_name, "adapter": key,
                               "notes": src.notes, "sections": results}, ensure_ascii=False, indent=2))


def explain_settings(settings: Settings, *, model_flag: str | None = None, adapter_flag: str | None = None) -> Settings:
    """The settings explanations run with: the configured adapter only with `explain.adapter` (or --adapter), and
    `explain.model` as the base when it is set (and no --model flag), then without the completion adapter,
    which is trained for another base."""
    import dataclasses

    if adapter_flag is None and settings.adapter and not settings.explain.adapter:
        settings = dataclasses.replace(settings, adapter="")  # explain.adapter = false: the base explains
    em = settings.explain.model.strip()
    if model_flag or not em or em == settings.model or settings.backend == "remote":
        return settings
    if settings.adapter and not adapter_flag:
        err.print(f"[yellow]note:[/] explain.model = {em}: explaining without the adapter {settings.adapter} "
                  f"(trained for {settings.model})")
    return dataclasses.replace(settings, model=em, adapter=adapter_flag or "")
