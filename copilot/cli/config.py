"""`copilot config [--defaults]`: the effective settings, or every setting with its default."""

from __future__ import annotations

import json

import click

from copilot.cli.common import out, settings_from
from copilot.core import paths


@click.command("config")
@click.option("--defaults", is_flag=True, help="Show every setting with its default and meaning.")
def config_cmd(defaults):
    """Show the effective settings (defaults < config.toml < .copilot.toml < env < flags)."""
    from rich.table import Table

    from copilot.core.settings import describe_defaults, find_repo_config

    if defaults:
        t = Table(title="Settings")
        t.add_column("key")
        t.add_column("default")
        t.add_column("meaning")
        for k, v, h in describe_defaults():
            t.add_row(k, v, h)
        out.print(t)
        return
    s = settings_from()
    out.print(f"user file: {paths.user_config_file()} ({'found' if paths.user_config_file().is_file() else 'absent'})")
    rf = find_repo_config()
    out.print(f"repo file: {rf or '(none)'}")
    click.echo(json.dumps(s.to_dict(), indent=2))
