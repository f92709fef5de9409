"""`copilot serve`: the team service (front door + engines), and `copilot serve keys add|list|revoke`."""

from __future__ import annotations

import json

import click

from copilot.cli.common import err, errors


@click.group("serve", invoke_without_command=True)
@click.option("--engine", type=click.Choice(["llama-server", "vllm"]), default="llama-server", show_default=True,
              help="llama-server: llama.cpp's server on CPU (built by scripts/install.sh); vllm: vLLM on CUDA GPUs (scripts/install-vllm.sh).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address the front door listens on (0.0.0.0 for every interface).")
@click.option("--port", type=int, default=8080, show_default=True)
@click.option("--model", help="Base model (default: the `model` setting).")
@click.option("--replicas", type=int, default=1, show_default=True, help="Engine processes behind the one endpoint (e.g. one per GPU, or per NUMA node).")
@click.option("--parallel", type=int, default=4, show_default=True, help="Requests one engine runs at once (llama-server slots; vLLM batches itself).")
@click.option("--threads", type=int, default=0, help="CPU threads per llama-server engine (0: the usable cores / replicas).")
@click.option("--poll", type=float, default=5.0, show_default=True, help="Seconds between checks of the registry and the keys (promotions go live within this plus an engine start).")
@click.option("--keys", "keys_file", type=click.Path(dir_okay=False), help="Key store (default: $COPILOT_HOME/service/keys.json).")
@click.option("--tls-cert", type=click.Path(exists=True, dir_okay=False), help="Serve HTTPS with this certificate (PEM).")
@click.option("--tls-key", type=click.Path(exists=True, dir_okay=False), help="The certificate's private key (PEM).")
@click.option("--rpm", type=int, default=1200, show_default=True, help="Requests per minute per key (bursts of 10 s allowed).")
@click.option("--max-tokens", type=int, default=1024, show_default=True, help="Largest max_tokens a request may ask for.")
@click.option("--log-requests/--no-log-requests", default=True, show_default=True, help="One line per request: team, route, status, adapter, ms (never code).")
@click.option("--gpu-memory", type=float, default=0.85, show_default=True, help="vllm: share of GPU memory vLLM may take.")
@click.pass_context
@errors
def serve_group(ctx, engine, host, port, model, replicas, parallel, threads, poll, keys_file, tls_cert, tls_key, rpm,
                max_tokens, log_requests, gpu_memory):
    """Serve the base model and every team's active adapter to all editors from one endpoint.

    Editors (or `copilot complete --backend remote`) set `backend = "remote"` and `remote.url` to this
    service, with their team's key. Keys: `copilot serve keys add TEAM`."""
    if ctx.invoked_subcommand is not None:
        return
    from copilot.core.settings import load_settings
    from copilot.service.run import ServiceOptions, run_service

    if bool(tls_cert) != bool(tls_key):
        raise click.UsageError("--tls-cert and --tls-key go together")
    settings = load_settings({"model": model})
    opts = ServiceOptions(engine=engine, host=host, port=port, replicas=replicas, parallel=parallel, threads=threads,
                          poll_s=poll, keys_file=keys_file, tls_cert=tls_cert, tls_key=tls_key, requests_per_minute=rpm,
                          max_tokens=max_tokens, log_requests=log_requests, gpu_memory=gpu_memory)
    run_service(settings, opts, say=lambda m: err.print(m, highlight=False))


@serve_group.group("keys")
def keys_group():
    """Team API keys: a key reaches only its team's adapters and the base model."""


def _store(keys_file):
    from copilot.service.keys import KeyStore

    return KeyStore(keys_file)


@keys_group.command("add")
@click.argument("team")
@click.option("--adapter", "adapters", multiple=True, help="Adapter name this team may use (repeatable; default: the team's name).")
@click.option("--rpm", type=int, help="Requests per minute for this key (default: the service's --rpm).")
@click.option("--keys", "keys_file", type=click.Path(dir_okay=False), help="Key store (default: $COPILOT_HOME/service/keys.json).")
@errors
def keys_add(team, adapters, rpm, keys_file):
    """Make a key for TEAM and print it once (it is stored only as a hash)."""
    key, token = _store(keys_file).add(team, list(adapters), limits={"requests_per_minute": rpm} if rpm else None)
    err.print(f"key {key.id} for team {key.team} (adapters: {', '.join(key.adapters)}). "
              "Give it to the team now; it is not shown again:", highlight=False)
    click.echo(token)


@keys_group.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.option("--keys", "keys_file", type=click.Path(dir_okay=False))
@errors
def keys_list(as_json, keys_file):
    """Every key: id, team, adapters, created, revoked (never the key itself)."""
    import time

    rows = [{"id": k.id, "team": k.team, "adapters": list(k.adapters), "created": k.created, "revoked": k.revoked,
             "limits": k.limits} for k in _store(keys_file).list()]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("No keys yet: copilot serve keys add TEAM [--adapter NAME]")
        return
    fmt = lambda t: time.strftime("%Y-%m-%d %H:%M", time.localtime(t)) if t else "-"
    for r in rows:
        click.echo(f"{r['id']}  {r['team']:<16} {','.join(r['adapters']):<24} created {fmt(r['created'])}"
                   f"  {'REVOKED ' + fmt(r['revoked']) if r['revoked'] else 'live'}")


@keys_group.command("revoke")
@click.argument("team_or_id")
@click.option("--keys", "keys_file", type=click.Path(dir_okay=False))
@errors
def keys_revoke(team_or_id, keys_file):
    """Revoke one key (by id) or every key of a team; the service refuses it within a second."""
    for k in _store(keys_file).revoke(team_or_id):
        click.echo(f"revoked {k.id} ({k.team})")
