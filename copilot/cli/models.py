"""`copilot models`: base models available locally, the default, cache state and serving backend."""

from __future__ import annotations

import json
from pathlib import Path

import click

from copilot.cli.common import out, settings_from
from copilot.core import paths


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def models(as_json):
    """Base models available locally, the default, and the state of each conversion cache."""
    from rich.table import Table

    from copilot.models.packaged import list_models

    settings = settings_from()
    rows = list_models()
    for r in rows:
        r["configured"] = r["name"] == settings.model
    if settings.model not in {r["name"] for r in rows}:
        p = Path(settings.model).expanduser()
        rows.append({"name": settings.model, "source": "folder" if p.exists() else "hub id", "weights": settings.model,
                     "installed": p.exists(), "cache": "-", "path": str(p), "default": False, "configured": True})
    from copilot.serve.backends import plan

    backend, why = plan(settings)
    if as_json:
        click.echo(json.dumps({"home": str(paths.home()), "models": rows, "backend": backend, "backend_reason": why},
                              indent=2))
        return
    t = Table(title=f"Base models (data root: {paths.home()})")
    for col in ("name", "weights", "installed", "cache", "configured", "path"):
        t.add_column(col)
    for r in rows:
        name = r["name"] + (" (default)" if r["default"] else "")
        t.add_row(name, r["weights"], "yes" if r["installed"] else "no", r["cache"],
                  "✓" if r["configured"] else "", r["path"])
    out.print(t)
    out.print(f"Serving backend: [bold]{backend}[/] ({why}); set `backend` in the config to choose.")
    out.print("Any local transformers folder or cached hub id also works: --model PATH or `model = \"...\"` in config.")
