"""`copilot adapters list|show|promote|rollback|remove|pull`: the adapter registry from the command line."""

from __future__ import annotations

import json

import click

from copilot.cli.common import errors


@click.group("adapters")
def adapters_group():
    """List, inspect, promote, roll back and remove registered adapters."""


@adapters_group.command("list")
@click.option("--json", "as_json", is_flag=True)
@errors
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
@errors
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
@errors
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
@errors
def adapters_rollback(name):
    """Make the previously active version of NAME active again."""
    from copilot.adapters.registry import Registry

    m = Registry().rollback(name)
    click.echo(f"rolled back: {m.name}@{m.version} is active again")


@adapters_group.command("remove")
@click.argument("spec")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@errors
def adapters_remove(spec, yes):
    """Delete NAME@VERSION (not the active one), or every version of NAME."""
    from copilot.adapters.registry import Registry

    if not yes and "@" not in spec:
        click.confirm(f"Remove every version of adapter {spec!r}?", abort=True)
    removed = Registry().remove(spec)
    click.echo("removed " + ", ".join(removed))


@adapters_group.command("pull")
@click.option("--from", "url", required=True, help="The team service's URL (copilot serve).")
@click.option("--key-file", type=click.Path(exists=True, dir_okay=False), help="File with your team's key (default: remote.api_key_file, else COPILOT_REMOTE_API_KEY).")
@click.option("--name", "names", multiple=True, help="Only this adapter (repeatable); default: every adapter of your team.")
@click.option("--all", "all_versions", is_flag=True, help="Every version, not only the active one.")
@errors
def adapters_pull(url, key_file, names, all_versions):
    """Copy your team's adapters from the team service into the local registry (for working offline):
    sha256 and base model checked, installed atomically, the service's active version made active here."""
    from pathlib import Path

    from copilot.adapters.gguf_files import file_sha256, gguf_for
    from copilot.adapters.pull import pull
    from copilot.cli.common import ProgressBar, err
    from copilot.core.settings import load_settings
    from copilot.serve.remote import api_key

    settings = load_settings()
    key = Path(key_file).read_text().strip() if key_file else api_key(settings)
    try:
        base_sha = file_sha256(gguf_for(settings.model))
    except Exception:  # noqa: BLE001 - a base without a GGUF: the manifest's name is still checked by the engines
        base_sha = None
    bar = ProgressBar()
    try:
        done = pull(url, key, names=list(names) or None, all_versions=all_versions, base_sha256=base_sha,
                    progress=lambda what, got, total: bar(f"pulling {what}", got, total))
    finally:
        bar.close()
    if not done:
        err.print("the service offers this key no adapter with an active version")
    for name, version, what in done:
        click.echo(f"{name}@{version}: {what}")
