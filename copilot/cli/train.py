"""CLI commands: `copilot train`, `copilot eval`, `copilot adapters list|show|promote|rollback|remove`.

Thin: parse flags, call copilot.train / copilot.evaluate / copilot.registry, print with rich.
Registered by copilot/cli.py (`cli.add_command(train_cmd)`, `eval_cmd`, `adapters_group`).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path

import click

from copilot.core.types import CopilotError


def _errors(fn: Callable) -> Callable:
    """CopilotError -> one red line on stderr and its exit code, never a traceback."""

    @wraps(fn)
    def inner(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except CopilotError as exc:
            click.secho(f"error: {exc}", fg="red", err=True)
            sys.exit(exc.exit_code)

    return inner


def _console():
    from rich.console import Console

    return Console(stderr=True)


@click.command("train")
@click.option("--data", "data", required=True, type=click.Path(path_type=Path), help="Pairs dataset folder (from `copilot index`).")
@click.option("--name", required=True, help="Adapter name in the registry (e.g. team or repo).")
@click.option("--base", default=None, help="Base model (packaged name, folder or cached hub id); default: settings.model.")
@click.option("--config", "recipe", default=None, type=click.Path(path_type=Path), help="Recipe TOML (keys of [train] and run options).")
@click.option("--max-steps", type=int, default=None, help="Stop after N optimizer steps (overrides --epochs).")
@click.option("--epochs", type=float, default=None, help="Passes over the train split (default 1).")
@click.option("--resume", is_flag=True, help="Continue from the last checkpoint of this NAME.")
@click.option("--quantize", type=click.Choice(["auto", "4bit", "none"]), default=None,
              help="auto: NF4 QLoRA on GPU, fp32 LoRA on CPU; 4bit: force bitsandbytes NF4.")
@click.option("--spm-share", type=float, default=None, help="Share of FIM pairs in suffix-first order (default 0.5).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@_errors
def train_cmd(data, name, base, recipe, max_steps, epochs, resume, quantize, spm_share, quiet):
    """Train a LoRA adapter on DATA's train split and register it as a candidate version of NAME."""
    from copilot.core.settings import load_settings
    from copilot.train.loop import load_recipe, train

    settings = load_settings({"model": base, "train": {"quantize": quantize}})
    rec = load_recipe(recipe, settings.train, max_steps=max_steps, epochs=epochs, spm_share=spm_share)
    con = _console()
    res = train(data, name, settings=settings, recipe=rec, base=base, resume=resume, progress=not quiet,
                log=lambda s: con.print(s, highlight=False))
    m = res.manifest
    con.print(f"[green]Trained {m.name}@{m.version}[/] ({res.mode}, {res.steps} steps, "
              f"loss {m.training['loss_first']:.3f} → {m.training['loss_last']:.3f}, {res.tokens_per_s:,.0f} tok/s). "
              f"Evaluate: copilot eval --data {data} --adapter {m.name}@{m.version} --base-too")


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
@click.option("--kinds", default=None, help="Comma list of pair kinds to score: fim_file, fim_history, explain.")
@_errors
def eval_cmd(data, adapter, base, base_too, as_json, report, max_examples, order, max_new_tokens, no_record, backend, kinds):
    """Exact match / edit similarity (FIM) and explanation similarity on the newest-commit test split."""
    from copilot.core.settings import load_settings
    from copilot.evaluate.run import evaluate, table_rows, to_json, write_report

    settings = load_settings({"model": base})
    con = _console()
    res = evaluate(data, adapter, base_too=base_too, settings=settings, max_examples=max_examples, order=order,
                   max_new_tokens=max_new_tokens, record=not no_record, progress=not as_json, backend=backend,
                   kinds=tuple(k.strip() for k in kinds.split(",") if k.strip()) if kinds else None,
                   log=lambda s: con.print(s, highlight=False))
    if report:
        con.print(f"Report: {write_report(res, report)}")
    if as_json:
        click.echo(to_json(res))
        return
    from rich.table import Table

    t = Table(title=f"{res.get('adapter_spec') or 'base'} — {res['n']} test pairs ({res['order']}, {res['backend']})")
    for col in ("group", "metric", "n", "base", "adapter", "Δ"):
        t.add_column(col, justify="right" if col in ("n", "base", "adapter", "Δ") else "left")
    for g, m, n, b, a in table_rows(res):
        d = f"{a - b:+.1f}" if a is not None and b is not None else "–"
        t.add_row(g, m, str(n), "–" if b is None else f"{b:.1f}", "–" if a is None else f"{a:.1f}", d)
    from rich.console import Console

    Console().print(t)


@click.group("adapters")
def adapters_group():
    """List, inspect, promote, roll back and remove registered adapters."""


@adapters_group.command("list")
@click.option("--json", "as_json", is_flag=True)
@_errors
def adapters_list(as_json):
    """Every adapter version with its status and stored eval."""
    from copilot.adapters.registry import Registry, get_metric

    reg = Registry()
    rows = []
    for name in reg.names():
        for v in reg.versions(name):
            m = reg.manifest(name, v)
            ev = m.metrics.get("eval", {}).get("adapter", {})
            rows.append({"name": name, "version": v, "status": m.status, "created": m.created, "base": m.base_model,
                         "exact_match": get_metric(ev, "fim.exact_match"), "edit_sim": get_metric(ev, "fim.edit_sim")})
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo(f"No adapters in {reg.root}. Train one: copilot train --data DIR --name NAME")
        return
    from rich.console import Console
    from rich.table import Table

    t = Table()
    for col in ("name", "version", "status", "created", "base", "EM", "edit-sim"):
        t.add_column(col)
    for r in rows:
        style = "green" if r["status"] == "active" else None
        t.add_row(r["name"], str(r["version"]), r["status"], r["created"], r["base"],
                  "–" if r["exact_match"] is None else f"{r['exact_match']:.1f}",
                  "–" if r["edit_sim"] is None else f"{r['edit_sim']:.1f}", style=style)
    Console().print(t)


@adapters_group.command("show")
@click.argument("spec")
@_errors
def adapters_show(spec):
    """Print the manifest of NAME[@VERSION] (NAME = active, else newest)."""
    from copilot.adapters.registry import Registry

    reg = Registry()
    name, v = reg.parse_spec(spec)
    data = reg.manifest(name, v).to_dict()
    data["path"] = str(reg.version_dir(name, v))
    click.echo(json.dumps(data, indent=2, default=str))


@adapters_group.command("promote")
@click.argument("spec")
@click.option("--force", is_flag=True, help="Promote even if its stored eval is worse than the active version's.")
@_errors
def adapters_promote(spec, force):
    """Make NAME@VERSION the active version (the previous active is kept for rollback)."""
    from copilot.adapters.registry import Registry

    reg = Registry()
    m = reg.promote(spec, force=force)
    click.echo(f"{m.name}@{m.version} is now active")
    from copilot.adapters.gguf_lora import prepare_for_serving

    out = prepare_for_serving(reg.version_dir(m.name, m.version), m.base_model, log=click.echo)
    if out is not None:
        click.echo(f"converted for the llama.cpp backend: {out}")


@adapters_group.command("rollback")
@click.argument("name")
@_errors
def adapters_rollback(name):
    """Make the previously active version of NAME active again."""
    from copilot.adapters.registry import Registry

    m = Registry().rollback(name)
    click.echo(f"rolled back: {m.name}@{m.version} is active again")


@adapters_group.command("remove")
@click.argument("spec")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@_errors
def adapters_remove(spec, yes):
    """Delete NAME@VERSION (not the active one), or every version of NAME."""
    from copilot.adapters.registry import Registry

    if not yes and "@" not in spec:
        click.confirm(f"Remove every version of adapter {spec!r}?", abort=True)
    removed = Registry().remove(spec)
    click.echo("removed " + ", ".join(removed))
