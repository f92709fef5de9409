"""What a training run shows and hears: the progress bar (loss, tokens/s, ETA) and Ctrl-C (the first one
finishes the step, checkpoints and stops; a second aborts)."""

from __future__ import annotations

import signal
import threading

from copilot.core.log_lines import LOG_EVERY_S, LogLines


class Progress:
    """Rich progress bar with loss, tokens/s and ETA on a terminal; where stderr is a file or a pipe, where a
    bar cannot redraw, a plain line at the first step, every LOG_EVERY_S seconds and at the last step
    (nothing when quiet)."""

    def __init__(self, enabled: bool, total: int, start: int, mode: str, every_s: float = LOG_EVERY_S) -> None:
        self.p = None
        self.lines = None
        if not enabled:
            return
        from rich.console import Console

        console = Console(stderr=True)
        if not console.is_terminal:
            self.lines = LogLines(console, total, start, every_s)
            return
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        self.p = Progress(
            TextColumn("[bold]train[/] {task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}"), TextColumn("{task.fields[tps]} tok/s"),
            TextColumn("ETA"), TimeRemainingColumn(), console=console,
        )
        self.p.start()
        self.task = self.p.add_task(mode, total=total, completed=start, loss="-", tps="-")

    def update(self, step: int, loss: float, tps: float) -> None:
        if self.p:
            self.p.update(self.task, completed=step, loss=f"{loss:.4f}", tps=f"{tps:,.0f}")
        elif self.lines is not None and self.lines.due(step):
            self.lines.print(f"train step {step}/{self.lines.total}  loss {loss:.4f}  {tps:,.0f} tok/s  "
                             f"{self.lines.pace(step)}")

    def set_total(self, total: int) -> None:
        if self.lines is not None:
            self.lines.total = total
        if self.p:
            self.p.update(self.task, total=total)

    def close(self) -> None:
        if self.p:
            self.p.stop()


def sigint_to(stop: threading.Event):
    if threading.current_thread() is not threading.main_thread():
        return None
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum, frame):  # first Ctrl-C: finish the step, checkpoint, stop; second: abort
        if stop.is_set():
            signal.signal(signal.SIGINT, previous)
            raise KeyboardInterrupt
        stop.set()

    signal.signal(signal.SIGINT, handler)
    return previous
