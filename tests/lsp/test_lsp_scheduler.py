"""lsp.scheduler: one job at a time, latest request per key wins, cancellation reaches the job."""

import asyncio
import threading
import time

import pytest

from lsp.scheduler import Scheduler, Superseded


class Work:
    """A job that 'generates' one token per step and checks its cancel Event between tokens."""

    def __init__(self, tokens: int, log: list, name: str):
        self.tokens, self.log, self.name = tokens, log, name
        self.done_tokens = 0

    def __call__(self, cancel: threading.Event):
        self.log.append(("start", self.name))
        for _ in range(self.tokens):
            if cancel.is_set():
                self.log.append(("stopped", self.name))
                return "cancelled"
            time.sleep(0.005)
            self.done_tokens += 1
        self.log.append(("end", self.name))
        return self.name


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


def test_one_at_a_time_in_round_robin_order():
    log: list = []

    async def main():
        s = Scheduler()
        jobs = [s.submit(f"doc{i}", Work(3, log, f"doc{i}")) for i in range(4)]
        return await asyncio.gather(*jobs), s

    results, s = run(main())
    assert results == ["doc0", "doc1", "doc2", "doc3"]
    # never two jobs running at once: every start is followed by its own end
    assert log == [(k, f"doc{i}") for i in range(4) for k in ("start", "end")]
    assert s.stats.completed == 4


def test_newer_request_for_same_document_stops_the_running_one():
    log: list = []
    first = Work(10_000, log, "first")

    async def main():
        s = Scheduler()
        t1 = asyncio.ensure_future(s.submit("doc", first))
        while s.running_key != "doc":
            await asyncio.sleep(0.001)
        second = await s.submit("doc", Work(2, log, "second"))
        return await t1, second, s

    r1, r2, s = run(main())
    assert r1 == "cancelled" and r2 == "second"
    assert first.done_tokens < 10_000
    assert ("stopped", "first") in log
    assert s.stats.superseded == 1


def test_queued_request_is_dropped_when_superseded():
    log: list = []

    async def main():
        s = Scheduler()
        blocker = asyncio.ensure_future(s.submit("other", Work(20, log, "blocker")))
        while s.running_key != "other":
            await asyncio.sleep(0.001)
        old = asyncio.ensure_future(s.submit("doc", Work(2, log, "old")))
        await asyncio.sleep(0)
        new = await s.submit("doc", Work(2, log, "new"))
        with pytest.raises(Superseded):
            await old
        await blocker
        return new

    assert run(main()) == "new"
    assert ("start", "old") not in log


def test_cancelling_the_awaiting_request_sets_the_cancel_event():
    log: list = []
    job = Work(10_000, log, "job")

    async def main():
        s = Scheduler()
        t = asyncio.ensure_future(s.submit("doc", job))
        while s.running_key != "doc":
            await asyncio.sleep(0.001)
        t.cancel()  # what pygls does on $/cancelRequest
        with pytest.raises(asyncio.CancelledError):
            await t
        while s.running_key is not None:
            await asyncio.sleep(0.001)
        after = await s.submit("doc2", Work(1, log, "after"))
        return s, after

    s, after = run(main())
    assert ("stopped", "job") in log and after == "after"
    assert s.stats.cancelled == 1


def test_a_failing_job_reports_its_error_and_the_worker_goes_on():
    def boom(cancel):
        raise RuntimeError("model exploded")

    async def main():
        s = Scheduler()
        with pytest.raises(RuntimeError, match="exploded"):
            await s.submit("a", boom)
        return await s.submit("a", lambda cancel: 42)

    assert run(main()) == 42


def test_others_waiting_sees_other_keys_and_cancel_all_but_not_its_own_key():
    """A cancelled job may keep reading its prompt ahead only while nothing else needs the model."""
    seen: list = []

    async def main():
        s = Scheduler()
        gate = threading.Event()

        def first(cancel):
            gate.wait(5)
            seen.append(("same key queued", s.others_waiting("a")))
            gate.clear()
            gate.wait(5)
            seen.append(("other key queued", s.others_waiting("a")))
            gate.clear()
            gate.wait(5)
            seen.append(("after cancel_all", s.others_waiting("a")))
            return "first"

        t1 = asyncio.ensure_future(s.submit("a", first))
        await asyncio.sleep(0.05)
        seen.append(("idle", s.others_waiting("a")))
        t2 = asyncio.ensure_future(s.submit("a", Work(1, [], "a2")))  # supersedes: same key
        await asyncio.sleep(0.05)
        gate.set()
        await asyncio.sleep(0.05)
        t3 = asyncio.ensure_future(s.submit("b", Work(1, [], "b")))
        await asyncio.sleep(0.05)
        gate.set()
        await asyncio.sleep(0.05)
        s.cancel_all()
        gate.set()
        await asyncio.gather(t1, t2, t3, return_exceptions=True)

    run(main())
    assert seen == [("idle", False), ("same key queued", False), ("other key queued", True), ("after cancel_all", True)]
