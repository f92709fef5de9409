"""CLI: `copilot retrain` (one nightly cycle, or --history) and `copilot schedule install|status|remove`.

Registered in copilot/cli/main.py LAZY_COMMANDS as
    "retrain":  ("copilot.cli.nightly:retrain_cmd", ...)
    "schedule": ("copilot.cli.nightly:schedule_group", ...)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from copilot.cli.common import errors


@click.command("retrain")
@click.option("--config", "config", type=click.Path(path_type=Path), default=None,
              help="nightly.toml (default: ~/.config/copilot/nightly.toml).")
@click.option("--adapter", default=None, help="Run only this adapter of the config.")
@click.option("--dry-run", is_flag=True, help="Fetch and say what would be mined; no indexing, training or promotion.")
@click.option("--json", "as_json", is_flag=True, help="Print the cycle report as JSON.")
@click.option("--history", "show_history", is_flag=True, help="List past cycles and their decisions.")
@errors
def retrain_cmd(config, adapter, dry_run, as_json, show_history):
    """Nightly retraining: update repos, mine what is new, train a warm-started candidate on new + replayed
    pairs, evaluate it against the active adapter on the newest commits, and promote it only if better."""
    from copilot.nightly.report import summary_lines
    from copilot.nightly.run import Options, run
    from copilot.nightly.state import history

    if show_history:
        rows = history(50)
        if as_json:
            click.echo(json.dumps(rows, indent=2))
            return
        if not rows:
            click.echo("no cycles yet")
            return
        for r in rows:
            flag = " (dry run)" if r["dry_run"] else ""
            click.echo(f"{r['id']}  {r['status']:<9} {r['seconds'] if r['seconds'] is not None else '–':>8} s{flag}")
            for name, why in r["adapters"].items():
                click.echo(f"    {name}: {why}")
        return
    log = (lambda s: click.echo(s, err=True)) if not as_json else (lambda s: None)
    state = run(Options(config=str(config) if config else None, only=adapter, dry_run=dry_run, log=log))
    if as_json:
        click.echo(json.dumps(state, indent=2, default=str))
    else:
        click.echo("\n".join(summary_lines(state)))
    failed = [n for n, a in state["adapters"].items() if a.get("error")]
    if failed:
        sys.exit(1)


@click.group("schedule")
def schedule_group():
    """Run `copilot retrain` every night (systemd user timer, or crontab without systemd)."""


@schedule_group.command("install")
@click.option("--at", "at", default="02:00", show_default=True, help="Time of day, HH:MM (local time).")
@click.option("--config", "config", type=click.Path(path_type=Path), default=None, help="nightly.toml to use.")
@errors
def schedule_install(at, config):
    from copilot.nightly import schedule

    r = schedule.install(at, config)
    if r["backend"] == "cron":
        click.echo(f"crontab: {r['line']}")
    else:
        click.echo(f"systemd user timer at {r['at']}: {', '.join(r['units'])}")
        if not r["enabled"]:
            click.echo(r["note"])


@schedule_group.command("status")
@click.option("--json", "as_json", is_flag=True)
@errors
def schedule_status(as_json):
    from copilot.nightly import schedule

    r = schedule.status()
    if as_json:
        click.echo(json.dumps(r, indent=2, default=str))
        return
    if not r["installed"]:
        click.echo("not scheduled (copilot schedule install --at 02:00)")
    else:
        click.echo(f"scheduled with {r['backend']} at {r['at']}")
        if r.get("systemctl"):
            click.echo(r["systemctl"])
    last = r.get("last_cycle")
    if last:
        click.echo(f"last cycle {last['id']}: {last['status']}; " +
                   "; ".join(f"{n}: {w}" for n, w in last["adapters"].items()))


@schedule_group.command("remove")
@errors
def schedule_remove():
    from copilot.nightly import schedule

    r = schedule.remove()
    click.echo("removed: " + ", ".join(r["removed"]) if r["removed"] else "nothing was scheduled")
