"""What a training run shows and hears: the progress bar (loss, tokens/s, ETA) and Ctrl-C (the first one
finishes the step, checkpoints and stops; a second aborts)."""

from __future__ import annotations

import signal
import threading
import time

LOG_EVERY_S = 60.0  # a run logged to a file (nohup, cron, CI) gets a plain line this often


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
        self.total, self.start, self.every_s = total, start, every_s
        if not console.is_terminal:
            self.lines, self.t0, self.last = console, time.monotonic(), None
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
        elif self.lines is not None:
            now = time.monotonic()
            if self.last is None or step >= self.total or now - self.last >= self.every_s:
                self.last = now
                per_step = (now - self.t0) / max(1, step - self.start)
                eta = time.strftime("%H:%M", time.localtime(time.time() + per_step * (self.total - step)))
                self.lines.print(f"train step {step}/{self.total}  loss {loss:.4f}  {tps:,.0f} tok/s  "
                                 f"{per_step:.1f} s/step  done by {eta}", highlight=False, soft_wrap=True)

    def set_total(self, total: int) -> None:
        self.total = total
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
