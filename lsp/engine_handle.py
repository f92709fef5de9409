"""EngineHandle: loads the inference engine (copilot.backends) in a background thread; never raises into the server.

torch and the model are imported only inside that thread (the server starts and answers at
once). A load that fails leaves state "failed" and a one-line error; a newer `start` (another
model from the configuration) makes the result of an older one be dropped.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from typing import Any, Callable

from copilot.core.settings import Settings
from copilot.core.types import CopilotError


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{exc.__class__.__name__}: {text[0]}" if text and not isinstance(exc, CopilotError) else (text[0] if text else exc.__class__.__name__)



class EngineHandle:
    """Loads `copilot.engine.Engine` in a background thread; never raises into the server."""

    def __init__(self) -> None:
        self.state = "idle"  # idle | loading | ready | failed
        self.engine: Any = None
        self.error: str | None = None
        self.model: str | None = None
        self.load_seconds: float | None = None
        self._ready = threading.Event()
        self._generation = 0
        self.notes: list[str] = []  # e.g. why llama.cpp was not used

    def start(self, model: str, settings: Settings, on_done: Callable[["EngineHandle"], None]) -> None:
        self._generation += 1
        gen = self._generation
        self.state, self.error, self.model = "loading", None, model
        self._ready.clear()

        def work() -> None:
            t0 = time.perf_counter()
            try:
                from copilot.serve.backends import load_engine

                eng = load_engine(model, settings=dataclasses.replace(settings, adapter=""), device=settings.device,
                                  log=self.notes.append)
            except BaseException as exc:  # noqa: BLE001 - any failure keeps the server up
                if gen == self._generation:
                    self.engine, self.state, self.error = None, "failed", one_line(exc)
            else:
                if gen == self._generation:
                    self.engine, self.state = eng, "ready"
            self.load_seconds = time.perf_counter() - t0
            if gen == self._generation:
                self._ready.set()
                on_done(self)

        threading.Thread(target=work, name="engine-load", daemon=True).start()

    def wait(self, timeout: float | None = None) -> bool:
        return self._ready.wait(timeout)

    @property
    def device(self) -> str | None:
        return getattr(self.engine, "device", None)

    @property
    def backend(self) -> str | None:
        return getattr(self.engine, "backend", None)
