"""What a training run shows and hears: the progress bar (loss, tokens/s, ETA) and Ctrl-C (the first one
finishes the step, checkpoints and stops; a second aborts)."""

from __future__ import annotations

import signal
import threading

class Progress:
    """Rich progress bar with loss, tokens/s and ETA (or nothing when quiet)."""

    def __init__(self, enabled: bool, total: int, start: int, mode: str) -> None:
        self.p = None
        if not enabled:
            return
        from rich.console import Console
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
            TextColumn("ETA"), TimeRemainingColumn(), console=Console(stderr=True),
        )
        self.p.start()
        self.task = self.p.add_task(mode, total=total, completed=start, loss="-", tps="-")

    def update(self, step: int, loss: float, tps: float) -> None:
        if self.p:
            self.p.update(self.task, completed=step, loss=f"{loss:.4f}", tps=f"{tps:,.0f}")

    def set_total(self, total: int) -> None:
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
