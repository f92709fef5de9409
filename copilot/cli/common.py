"""What the CLI command modules share: the consoles, settings from flags, CopilotError -> one red line and its
exit code, and loading the engine with a progress bar for the first conversion."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable
from functools import wraps

import click
from rich.console import Console

from copilot.core.types import CopilotError

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def errors(fn: Callable) -> Callable:
    """CopilotError -> one red line on stderr and its exit code, never a traceback."""

    @wraps(fn)
    def inner(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except CopilotError as exc:
            click.secho(f"error: {exc}", fg="red", err=True)
            sys.exit(exc.exit_code)

    return inner


def console():
    from rich.console import Console

    return Console(stderr=True)


def settings_from(**flags):
    """Settings with these command-line flags on top (defaults < config files < env < flags)."""
    from copilot.core.settings import load_settings

    return load_settings(flags)


class ProgressBar:
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

    bar = ProgressBar()
    log = (lambda m: err.print(f"[yellow]{m}[/]")) if not quiet else None
    try:
        with err.status(f"Loading model {settings.model}…", spinner="dots") if not quiet else contextlib.nullcontext():
            eng = _load(settings.model, settings, progress=bar if not quiet else None, log=log)
    finally:
        bar.close()
    key = None
    if adapter:
        key = eng.load_adapter(adapter)
    return eng, key


