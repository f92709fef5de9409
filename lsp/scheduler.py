"""One model, one generation at a time; latest request wins per document.

Every model call goes through `Scheduler.submit(key, fn)`. `fn(cancel)` runs in a worker
thread, one job at a time, so two generations never race for the CPU. Keys are usually a
document URI (plus a kind, e.g. "explain:<uri>"):
- a newer job with the same key supersedes the older one: a queued one is dropped, a running
  one gets its `cancel` Event set, which the engine checks after every token;
- when the awaiting request is cancelled (the client's `$/cancelRequest`, which pygls turns
  into task cancellation) the job's `cancel` Event is set too, so generation stops, not only
  the reply;
- queued jobs run in arrival order of their keys (round-robin across documents);
- `others_waiting(key)` tells a cancelled job whether it may still finish reading the part of its
  prompt the next request for its key will reuse (nothing else is queued, no cancel_all).
"""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable


class Superseded(Exception):
    """A newer request for the same key replaced this one before it finished."""


@dataclass
class Job:
    key: str
    fn: Callable[[threading.Event], Any]
    future: asyncio.Future
    cancel: threading.Event = field(default_factory=threading.Event)
    started: bool = False
    hard: bool = False  # cancel_all: stop outright, no reading ahead for the next request


@dataclass
class Stats:
    submitted: int = 0
    completed: int = 0
    superseded: int = 0  # replaced by a newer job for the same key
    cancelled: int = 0  # the requester went away ($/cancelRequest, shutdown)


class Scheduler:
    def __init__(self) -> None:
        self._pending: OrderedDict[str, Job] = OrderedDict()
        self._running: Job | None = None
        self._wake: asyncio.Event | None = None
        self._worker: asyncio.Task | None = None
        self.stats = Stats()

    @property
    def running_key(self) -> str | None:
        job = self._running
        return job.key if job else None

    def pending_keys(self) -> list[str]:
        return list(self._pending)

    def others_waiting(self, key: str) -> bool:
        """True when a job for another key is queued (or the scheduler is shutting down): the running job
        should not keep the model for work that only its own key's next request would use."""
        run = self._running
        return (run is not None and run.hard) or any(k != key for k in list(self._pending))

    def _ensure_worker(self) -> None:
        if self._worker is None or self._worker.done():
            self._wake = asyncio.Event()
            self._worker = asyncio.get_running_loop().create_task(self._run())

    def supersede(self, key: str) -> None:
        """Cancel whatever is queued or running for `key`."""
        old = self._pending.pop(key, None)
        if old is not None:
            old.cancel.set()
            self.stats.superseded += 1
            if not old.future.done():
                old.future.set_exception(Superseded(key))
        run = self._running
        if run is not None and run.key == key and not run.cancel.is_set():
            run.cancel.set()
            self.stats.superseded += 1

    async def submit(self, key: str, fn: Callable[[threading.Event], Any]) -> Any:
        """Run `fn(cancel)` when the model is free; raises Superseded or CancelledError."""
        self._ensure_worker()
        self.supersede(key)
        job = Job(key, fn, asyncio.get_running_loop().create_future())
        self._pending[key] = job
        self.stats.submitted += 1
        assert self._wake is not None
        self._wake.set()
        try:
            return await asyncio.shield(job.future)
        except asyncio.CancelledError:
            if not job.cancel.is_set():
                job.cancel.set()
                self.stats.cancelled += 1
            if self._pending.get(key) is job:
                del self._pending[key]
            raise

    def cancel_all(self) -> None:
        """Stop everything now (shutdown, another model): no job keeps reading a prompt ahead."""
        for key in list(self._pending):
            self.supersede(key)
        if self._running is not None:
            self._running.hard = True
            self._running.cancel.set()

    async def _run(self) -> None:
        assert self._wake is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                _, job = self._pending.popitem(last=False)
                if job.cancel.is_set() or job.future.done():
                    continue
                self._running = job
                job.started = True
                try:
                    result = await asyncio.to_thread(job.fn, job.cancel)
                except Exception as exc:  # the caller gets the error, the worker goes on
                    if not job.future.done():
                        job.future.set_exception(exc)
                else:
                    self.stats.completed += 1
                    if not job.future.done():
                        job.future.set_result(result)
                finally:
                    self._running = None
