"""Progress where stderr is a file or a pipe (nohup, cron, CI): a rich bar cannot redraw there and shows
nothing until the work ends, so a long run says how far it is in plain lines instead: at the first item,
every `every_s` seconds, and at the last."""

from __future__ import annotations

import time

LOG_EVERY_S = 60.0


class LogLines:
    def __init__(self, console, total: int, start: int = 0, every_s: float = LOG_EVERY_S) -> None:
        self.console, self.total, self.start, self.every_s = console, total, start, every_s
        self.t0, self.last = time.monotonic(), None

    def due(self, done: int) -> bool:
        """Whether a line is due now that `done` of `total` are done (it then counts as printed)."""
        now = time.monotonic()
        if self.last is not None and done < self.total and now - self.last < self.every_s:
            return False
        self.last = now
        return True

    def pace(self, done: int, unit: str = "step") -> str:
        """'12.3 s/step  done by 14:05' from the pace so far."""
        per = (time.monotonic() - self.t0) / max(1, done - self.start)
        end = time.strftime("%H:%M", time.localtime(time.time() + per * max(0, self.total - done)))
        return f"{per:.1f} s/{unit}  done by {end}"

    def print(self, text: str) -> None:
        self.console.print(text, highlight=False, soft_wrap=True, markup=False)
