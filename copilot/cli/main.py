"""`copilot` command line: thin — parse, call the modules, print.

Subcommands of other parts (index, train, eval, adapters, retrain, schedule) are imported lazily so
`copilot --help` is instant and never imports torch.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import traceback
from pathlib import Path

import click
from rich.console import Console

from copilot.core import paths
from copilot.core.types import CopilotError

paths.set_offline_env()

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

# name -> ("module:attribute", short help). Loaded only when used.
LAZY_COMMANDS: dict[str, tuple[str, str]] = {
    "index": ("copilot.cli.index:index", "Mine git repositories into a training-pairs dataset."),
    "train": ("copilot.cli.train:train_cmd", "Train a LoRA adapter on a pairs dataset (registered as a candidate)."),
    "eval": ("copilot.cli.train:eval_cmd", "Evaluate an adapter against the base model on the newest-commit test split."),
    "adapters": ("copilot.cli.train:adapters_group", "List, show, promote, roll back or remove registered adapters."),
    "retrain": ("copilot.cli.nightly:retrain_cmd", "Nightly cycle: mine new commits, train a candidate, promote it only if better."),
    "schedule": ("copilot.cli.nightly:schedule_group", "Install, show or remove the nightly retraining timer (systemd or cron)."),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx):
        names = set(super().list_commands(ctx))
        names.update(n for n, (target, _) in LAZY_COMMANDS.items() if _available(target))
        return sorted(names)

    def get_command(self, ctx, name):
        cmd = super().get_command(ctx, name)
        if cmd is not None or name not in LAZY_COMMANDS:
            return cmd
        target, short = LAZY_COMMANDS[name]
        if ctx.resilient_parsing or _help_listing():
            # For the command list show the short help without importing the module.
            if not _available(target):
                return None
            return click.Command(name, help=short, short_help=short)
        mod_name, attr = target.split(":")
        try:
            mod = importlib.import_module(mod_name)
        except ImportError:
            return None
        return getattr(mod, attr, None)


def _help_listing() -> bool:
    return any(a in ("--help", "-h") for a in sys.argv[1:2])


def _available(target: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(target.split(":")[0]) is not None


def _settings(**flags):
    from copilot.core.settings import load_settings

    return load_settings(flags)


class _ProgressBar:
    """Rich progress for the one-time model conversion, on stderr."""

    def __init__(self):
        self._progress = None
        self._tasks: dict[str, int] = {}

    def __call__(self, stage: str, done: int, total: int) -> None:
        from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn

        if self._progress is None:
            self._progress = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                                      TimeElapsedColumn(), console=err, transient=False)
            self._progress.start()
        if stage == "done":
            self.close()
            return
        if stage not in self._tasks:
            for t in self._tasks.values():
                task = self._progress.tasks[t]
                self._progress.update(t, completed=task.total)
            self._tasks[stage] = self._progress.add_task(stage, total=max(total, 1))
        self._progress.update(self._tasks[stage], completed=done, total=max(total, 1))

    def close(self):
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


def load_engine(settings, adapter: str | None = None, quiet: bool = False):
    """Load the engine with a progress bar for the first conversion; returns (engine, adapter key or None)."""
    from copilot.serve.backends import load_engine as _load

    bar = _ProgressBar()
    log = (lambda m: err.print(f"[yellow]{m}[/]")) if not quiet else None
    try:
        with err.status(f"Loading model {settings.model}…", spinner="dots") if not quiet else _null():
            eng = _load(settings.model, settings, progress=bar if not quiet else None, log=log)
    finally:
        bar.close()
    key = None
    if adapter:
        key = eng.load_adapter(adapter)
    return eng, key


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option("0.1.0", prog_name="copilot")
def cli():
    """Self-hosted coding copilot that learns your company's code. Offline; everything stays on this machine.

    Data lives under $COPILOT_HOME (default ~/.local/share/copilot).
    """


# ---------------------------------------------------------------------------------------------- explain
@cli.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--symbol", help="Explain only this function/class (NAME or Class.method).")
@click.option("--adapter", help="Adapter NAME[@VERSION] or folder; default: config, else the base model.")
@click.option("--model", help="Base model (packaged name, folder or cached hub id).")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON instead of streaming text.")
@click.option("--max-tokens", type=int, help="Most tokens generated per section.")
def explain(file, symbol, adapter, model, as_json, max_tokens):
    """Explain FILE: an overview, then each top-level function/class, streamed as generated."""
    from copilot.serve.hf import explain_sections
    from copilot.core.sources import read_source
    from indexer.languages import language_for_path

    settings = _settings(model=model, adapter=adapter, explain={"max_new_tokens": max_tokens})
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
    results = []
    for sym, code, lang, truncated in sections:
        truncated = truncated or src.truncated
        if not as_json:
            title = f"## {sym}" if sym else f"# {file}"
            out.print(f"\n[bold]{title}[/]")
            if truncated:
                out.print("[yellow](input bounded: the explanation covers only the beginning)[/]")
        streamer = (lambda t: (out.file.write(t), out.file.flush())) if not as_json else None
        exp = eng.explain(code, str(file), key, symbol=sym, language=lang, on_text=streamer, truncated=truncated)
        if not as_json:
            out.file.write("\n")
        results.append({"symbol": sym, "text": exp.text, "truncated": truncated})
    if as_json:
        click.echo(json.dumps({"path": str(file), "model": eng.model_name, "adapter": key,
                               "notes": src.notes, "sections": results}, ensure_ascii=False, indent=2))


# ---------------------------------------------------------------------------------------------- complete
@cli.command()
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

    settings = _settings(model=model, adapter=adapter, completion={"max_new_tokens": max_tokens})
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


# ---------------------------------------------------------------------------------------------- models
@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def models(as_json):
    """Base models available locally, the default, and the state of each conversion cache."""
    from rich.table import Table

    from copilot.models.packaged import list_models

    settings = _settings()
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


# ---------------------------------------------------------------------------------------------- config
@cli.command("config")
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
    s = _settings()
    out.print(f"user file: {paths.user_config_file()} ({'found' if paths.user_config_file().is_file() else 'absent'})")
    rf = find_repo_config()
    out.print(f"repo file: {rf or '(none)'}")
    click.echo(json.dumps(s.to_dict(), indent=2))


# ---------------------------------------------------------------------------------------------- demo
DEMO_FILE = '''"""Tiny inventory helpers."""


def is_palindrome(s):
    return s == s[::-1]


class Inventory:
    """Counts items by name."""

    def __init__(self):
        self.counts = {}

    def add(self, name, n=1):
        self.counts[name] = self.counts.get(name, 0) + n
        return self.counts[name]
'''


@cli.command()
@click.option("--model", help="Base model (default: the embedded Qwen2.5-Coder-0.5B).")
def demo(model):
    """Show the product working on the embedded model: a completion, then an explanation."""
    import tempfile
    import time

    settings = _settings(model=model)
    t0 = time.time()
    eng, _ = load_engine(settings)
    out.print(f"[green]model ready[/] ({eng.model_name}, {eng.device}) in {time.time() - t0:.1f} s")
    prefix = "def is_palindrome(s):\n    return "
    res = eng.complete(prefix, "\n", "python")
    out.print("\n[bold]Completion[/] at the cursor (█):")
    out.print(f"[dim]{prefix}[/]█[cyan]{res.text}[/]")
    out.print(f"[dim]({res.generated_tokens} tokens, {res.latency_ms:.0f} ms, stop: {res.stop_reason})[/]")
    with tempfile.TemporaryDirectory() as td:
        f = Path(td) / "inventory.py"
        f.write_text(DEMO_FILE)
        out.print("\n[bold]Explanation[/] of inventory.py (streamed):")
        eng.explain(DEMO_FILE, "inventory.py", None, language="python", max_new_tokens=120,
                    on_text=lambda t: (out.file.write(t), out.file.flush()))
        out.file.write("\n")
    out.print("\n[green]Done.[/] Next: `copilot explain FILE`, `copilot complete FILE --line L --col C`, "
              "`copilot index REPO --out DIR`, `copilot-lsp` for editors. See README.md.")


def main(argv: list[str] | None = None) -> None:
    try:
        cli.main(args=argv, prog_name="copilot", standalone_mode=False)
    except click.exceptions.Abort:
        err.print("aborted")
        sys.exit(130)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
    except click.exceptions.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except CopilotError as exc:
        err.print(f"[red]error:[/] {exc}", markup=True)
        sys.exit(exc.exit_code)
    except MemoryError:
        err.print("[red]error:[/] out of memory")
        sys.exit(1)
    except OSError as exc:
        if exc.errno == 28:
            err.print(f"[red]error:[/] no space left on device ({exc.filename or paths.home()})")
        else:
            err.print(f"[red]error:[/] {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "))
        sys.exit(1)
    except Exception as exc:  # last resort: one line, traceback only on request
        if os.environ.get("COPILOT_DEBUG"):
            traceback.print_exc()
        err.print(f"[red]internal error:[/] {exc.__class__.__name__}: {str(exc).splitlines()[0] if str(exc) else ''} "
                  "(set COPILOT_DEBUG=1 for details)")
        sys.exit(1)


if __name__ == "__main__":
    main()
