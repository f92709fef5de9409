"""The workspace's repository index in the server: built in a background thread after `initialize`, kept
current from the editor's events, read by completions (`lsp.suggest`) only once it is ready.

It also keeps the edit log (`indexer.workspace.recent_edits.EditLog`): where each buffer changed, for the
recently edited regions of the context.

One worker thread does all the index's work, in order: the build first, then every update (a saved file
re-read from disk, an edited buffer re-scanned a second after the last keystroke, files changed outside
the editor). The worker runs at a lower CPU priority than the server where the OS allows, so indexing
never holds up a completion; a request that arrives before the index is ready has no repository context.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
import queue
from pathlib import Path
from typing import Any

from copilot.core.settings import ContextSettings
from copilot.core.types import CopilotError
from indexer.workspace.index import WorkspaceIndex, limits_for
from indexer.workspace.recent_edits import EditLog

log = logging.getLogger("copilot.lsp")

DEBOUNCE_S = 1.0  # an edited buffer is re-scanned this long after its last change


def _lower_priority() -> None:
    try:  # Linux: a thread's own niceness
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
    except (AttributeError, OSError):
        pass


class RepoIndex:
    def __init__(self) -> None:
        self.state = "off"  # off | building | ready | failed
        self.index: WorkspaceIndex | None = None
        self.error: str | None = None
        self.seconds: float | None = None
        self.notes: list[str] = []
        self._worker: queue.SimpleQueue | None = None  # the worker thread's jobs (None: it stops)
        self._timers: dict[str, Any] = {}
        self._stopping = False
        self.edits = EditLog()  # where the developer edited lately (repository-relative), newest first

    @property
    def ready(self) -> bool:
        return self.state == "ready" and self.index is not None

    def start(self, root: Path | None, settings: ContextSettings, say: Callable[[str], None]) -> None:
        """Index `root` in the background (nothing without a root, or with `context.repo = false`)."""
        if self.index is not None or root is None or not settings.repo:
            return
        try:
            limits = limits_for(settings)
        except CopilotError as exc:
            self.state, self.error = "failed", str(exc)
            say(f"copilot: repository index off: {exc}")
            return
        self.index = WorkspaceIndex(root, limits)
        self.state = "building"
        self._worker = queue.SimpleQueue()
        self._worker.put((self._build, (say,)))
        # A daemon thread: exiting the server never waits for an index build (a pool's thread would be joined).
        threading.Thread(target=self._run, args=(self._worker,), name="repo-index", daemon=True).start()

    def _run(self, jobs: queue.SimpleQueue) -> None:
        _lower_priority()
        while not self._stopping:
            job = jobs.get()
            if job is None:
                return
            fn, args = job
            fn(*args)

    def _build(self, say: Callable[[str], None]) -> None:
        assert self.index is not None
        try:
            report = self.index.build(should_stop=lambda: self._stopping)
        except Exception as exc:  # noqa: BLE001 - no index is no repository context, never a dead server
            log.exception("repository index failed")
            self.state, self.error = "failed", f"{type(exc).__name__}: {exc}"
            say(f"copilot: repository index failed: {self.error}")
            return
        self.seconds, self.notes = report.seconds, list(report.notes)
        if report.stopped:
            self.state = "off"
            return
        self.state = "ready"
        s = self.index.summary()
        say(f"copilot: repository index ready: {s['files']} files, {s['symbols']} symbols in {report.seconds:.1f}s")
        for note in report.notes:
            say(f"copilot: {note}")

    def stop(self) -> None:
        self._stopping = True
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        if self._worker is not None:
            self._worker.put(None)

    # ------------------------------------------------------------------ paths
    def rel(self, path: str | None) -> str | None:
        """The repository-relative path of an indexable file under the root, else None."""
        if self.index is None or not path:
            return None
        rel = self.index.rel_path(path)
        return rel if rel is not None and self.index.indexable(rel) else None

    def show(self, rel: str) -> str:
        """How a repository file is named in a prompt: its repository-relative path, as training pairs and
        `copilot eval` name it (lsp/suggest.prompt_path names the document being completed the same way)."""
        return rel

    # ------------------------------------------------------------------ updates (loop thread)
    def _submit(self, fn: Callable[..., Any], *args: Any) -> None:
        if self._worker is not None and not self._stopping:
            self._worker.put((self._quietly, (fn, *args)))

    @staticmethod
    def _quietly(fn: Callable[..., Any], *args: Any) -> None:
        try:
            fn(*args)
        except Exception:  # noqa: BLE001 - one file's update never stops the others
            log.exception("repository index update failed")

    def edited(self, loop: Any, path: str | None, text: Callable[[], str | None]) -> None:
        """A buffer changed: re-scan its text once the typing pauses (debounced)."""
        rel = self.rel(path)
        if rel is None or loop is None:
            return
        old = self._timers.pop(rel, None)
        if old is not None:
            old.cancel()

        def fire() -> None:
            self._timers.pop(rel, None)
            current = text()
            if current is not None and self.index is not None:
                self._submit(self._take_buffer, rel, current)

        self._timers[rel] = loop.call_later(DEBOUNCE_S, fire)

    def record_edit(self, path: str | None, start: int, old_end: int, new_end: int) -> None:
        """Lines start..old_end of a buffer became lines start..new_end (one didChange content change)."""
        rel = self.rel(path)
        if rel is not None:
            self.edits.record(rel, start, old_end, new_end)

    def _take_buffer(self, rel: str, text: str) -> None:
        assert self.index is not None
        self.index.set_buffer(rel, text)
        self.edits.settled(rel)  # other files' held context choices are made again, with this text

    def from_disk(self, path: str | None) -> None:
        """A file was saved, closed, created or changed outside the editor: read it again."""
        rel = self.rel(path)
        if rel is None or self.index is None:
            return
        old = self._timers.pop(rel, None)
        if old is not None:
            old.cancel()
        self._submit(self.index.reload, rel)

    def deleted(self, path: str | None) -> None:
        rel = self.rel(path)
        if rel is not None and self.index is not None:
            self.edits.forget(rel)
            self._submit(self.index.remove, rel)

    def settle(self, timeout: float = 10.0) -> bool:
        """Wait until the updates submitted so far are done (tests and `copilot.context`)."""
        if self._worker is None:
            return True
        done = threading.Event()
        self._submit(done.set)
        return done.wait(timeout)

    def status(self) -> dict[str, Any]:
        out: dict[str, Any] = {"state": self.state}
        if self.index is not None:
            s = self.index.summary()
            out.update(files=s["files"], symbols=s["symbols"], chunks=s["chunks"],
                       seconds=round(self.seconds, 2) if self.seconds is not None else None)
        if self.error:
            out["error"] = self.error
        if self.notes:
            out["notes"] = list(self.notes)
        return out

