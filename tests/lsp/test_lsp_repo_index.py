"""lsp.repo_index: the server's index is built in a worker thread, follows edited buffers (debounced), saves
and deletions, and reports its state for copilot.status."""

from __future__ import annotations

import asyncio
import time

from copilot.core.settings import ContextSettings
from lsp import repo_index
from lsp.repo_index import RepoIndex


def wait(pred, timeout=20.0):
    end = time.monotonic() + timeout
    while not pred() and time.monotonic() < end:
        time.sleep(0.02)
    return pred()


def test_build_then_buffer_save_and_delete(tmp_path, monkeypatch):
    monkeypatch.setattr(repo_index, "DEBOUNCE_S", 0.2)
    (tmp_path / "billing.py").write_text("def invoice_total(lines):\n    return sum(lines)\n")
    (tmp_path / "notes.md").write_text("# not code\n")
    said: list[str] = []
    repo = RepoIndex()
    assert repo.status() == {"state": "off"}
    repo.start(tmp_path, ContextSettings(), said.append)
    assert wait(lambda: repo.ready), repo.status()
    st = repo.status()
    assert (st["state"], st["files"], st["symbols"]) == ("ready", 1, 1) and st["seconds"] >= 0
    assert said and "repository index ready: 1 files, 1 symbols" in said[0]
    assert repo.rel(str(tmp_path / "billing.py")) == "billing.py"
    assert repo.rel(str(tmp_path / "notes.md")) is None and repo.rel("/elsewhere/x.py") is None

    async def edit():
        loop = asyncio.get_running_loop()
        buffer = {"text": "def invoice_total(lines):\n    return 0\n\ndef late_fee(days):\n    return days\n"}
        for _ in range(5):  # keystrokes: one scan after the pause, not five
            repo.edited(loop, str(tmp_path / "billing.py"), lambda: buffer["text"])
            await asyncio.sleep(0.01)
        generation = repo.index.generation
        await asyncio.sleep(0.6)
        assert repo.settle()
        return repo.index.generation - generation

    assert asyncio.run(edit()) == 1
    assert repo.index.named("late_fee")
    repo.from_disk(str(tmp_path / "billing.py"))  # closed without saving: the disk again
    assert repo.settle() and not repo.index.named("late_fee")
    (tmp_path / "billing.py").unlink()
    repo.deleted(str(tmp_path / "billing.py"))
    assert repo.settle() and repo.status()["files"] == 0
    repo.stop()


def test_off_without_root_or_by_setting_and_bad_languages_fail_cleanly(tmp_path):
    said: list[str] = []
    repo = RepoIndex()
    repo.start(None, ContextSettings(), said.append)
    repo.start(tmp_path, ContextSettings(repo=False), said.append)
    assert repo.status() == {"state": "off"} and not repo.ready
    repo.start(tmp_path, ContextSettings(languages=["cobol"]), said.append)
    assert repo.status()["state"] == "failed" and "cobol" in repo.status()["error"] and "cobol" in said[0]
