"""Repository context through the real `copilot-lsp` process (tiny model): the index is built in the
background after initialize, `copilot.context` shows what a completion's prompt would open with, and the
index follows didSave and workspace/didChangeWatchedFiles."""

from __future__ import annotations

import asyncio

import pytest
from helpers.lsp_harness import Session
from lsprotocol import types

pytestmark = pytest.mark.timeout(300)

BILLING = '''"""Billing rules."""


def invoice_total(lines: list, vat: float = 0.2) -> float:
    """Sum of the invoice lines, taxes included."""
    body_never_shown = 7
    return sum(lines) * (1 + vat) * body_never_shown
'''

APP = "from billing import invoice_total\n\n\ndef charge(lines):\n    return invoice_total(\n"


async def until(fn, timeout: float = 60.0):
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while True:
        value = await fn()
        if value or loop.time() > end:
            return value
        await asyncio.sleep(0.1)


def test_repo_context_through_the_server(tiny_model_dir, tmp_path):
    root = tmp_path / "proj"
    root.mkdir()
    (root / "billing.py").write_text(BILLING)
    (root / "app.py").write_text(APP)
    app_uri, billing_uri = (root / "app.py").as_uri(), (root / "billing.py").as_uri()

    async def main():
        s = Session(tiny_model_dir, root=root, home=tmp_path / "home")
        init = await s.start()
        assert "copilot.context" in init.capabilities.execute_command_provider.commands
        ready = await until(lambda: _index_state(s, "ready"))  # app.py (an open call) has no complete unit
        assert ready and ready["files"] == 2 and ready["symbols"] == 1 and ready["seconds"] is not None, ready

        # billing.py is not open: its definition comes from the index, not from the open-file snippets
        s.open(app_uri, APP)
        ctx = await s.command("copilot.context", app_uri, {"line": 4, "character": 25})
        snippets = ctx["snippets"]
        assert snippets[0]["path"] == "billing.py" and snippets[0]["source"] == "definition"
        assert "def invoice_total(lines: list, vat: float = 0.2) -> float:" in snippets[0]["text"]
        assert "Sum of the invoice lines" in snippets[0]["text"] and "body_never_shown" not in snippets[0]["text"]
        assert all(sn["path"] != "app.py" for sn in snippets)  # never the file being completed
        assert ctx["repo_index"]["state"] == "ready"
        await s.wait_ready()
        assert len((await s.inline(app_uri, 4, 25)).items) == 1  # the completion runs with that context

        # a definition added and saved in billing.py is found after didSave
        s.open(billing_uri, BILLING)
        added = "\n\ndef late_fee(days: int) -> float:\n    \"\"\"Fee for paying late.\"\"\"\n    return 2.5 * days\n"
        s.change(billing_uri, 2, (6, 52), (6, 52), added)
        (root / "billing.py").write_text(BILLING + added)
        s.client.text_document_did_save(types.DidSaveTextDocumentParams(
            text_document=types.TextDocumentIdentifier(uri=billing_uri)))
        s.change(app_uri, 2, (4, 11), (4, 25), "late_fee(")
        s.change(app_uri, 3, (0, 33), (0, 33), ", late_fee")  # Python: what is not imported is not looked up
        found = await until(lambda: _snippet_with(s, app_uri, (4, 20), "def late_fee(days: int) -> float:"))
        assert found and found["path"] == "billing.py", found

        # a module written by another program, announced with workspace/didChangeWatchedFiles
        (root / "fees.py").write_text("def rush_fee(hours: int) -> float:\n    \"\"\"Fee for rush orders.\"\"\"\n"
                                      "    return 10.0 * hours\n")
        s.client.workspace_did_change_watched_files(types.DidChangeWatchedFilesParams(changes=[
            types.FileEvent(uri=(root / "fees.py").as_uri(), type=types.FileChangeType.Created)]))
        s.change(app_uri, 4, (0, 0), (0, 0), "from fees import rush_fee\n")
        s.change(app_uri, 5, (5, 11), (5, 20), "rush_fee(")
        found = await until(lambda: _snippet_with(s, app_uri, (5, 20), "def rush_fee(hours: int) -> float:"))
        assert found and found["path"] == "fees.py", found
        st = await s.status()
        assert st["repo_index"]["files"] == 3 and st["repo_index"]["symbols"] == 3, st["repo_index"]
        assert await s.stop() == 0

    asyncio.run(main())


def test_a_region_edited_in_another_buffer_joins_the_context(tiny_model_dir, tmp_path):
    root = tmp_path / "proj"
    root.mkdir()
    settings = '"""Settings."""\n\n' + "".join(f"SHADE_{i} = {i}\n" for i in range(45))
    (root / "settings.py").write_text(settings)
    app = "import settings\n\n\ndef retries():\n    return \n"
    (root / "app.py").write_text(app)
    settings_uri, app_uri = (root / "settings.py").as_uri(), (root / "app.py").as_uri()

    async def main():
        s = Session(tiny_model_dir, root=root, home=tmp_path / "home")
        await s.start()
        assert await until(lambda: _index_state(s, "ready"))
        s.open(app_uri, app)
        before = await s.command("copilot.context", app_uri, {"line": 4, "character": 11})
        assert not any("RETRY_LIMIT" in sn["text"] for sn in before["snippets"])
        # the developer adds a setting at the end of settings.py (unsaved), then goes back to app.py
        s.open(settings_uri, settings)
        s.change(settings_uri, 2, (47, 0), (47, 0), "RETRY_LIMIT = 5  # attempts\n")
        found = await until(lambda: _snippet_with(s, app_uri, (4, 11), "RETRY_LIMIT = 5  # attempts"))
        assert found and found["path"] == "settings.py", found
        assert await s.stop() == 0

    asyncio.run(main())


def test_repo_context_off_by_setting(tiny_model_dir, tmp_path):
    root = tmp_path / "proj"
    root.mkdir()
    (root / "billing.py").write_text(BILLING)
    (root / ".copilot.toml").write_text("[context]\nrepo = false\n")

    async def main():
        s = Session(tiny_model_dir, root=root, home=tmp_path / "home")
        await s.start()
        s.open((root / "app.py").as_uri(), APP)
        ctx = await s.command("copilot.context", (root / "app.py").as_uri(), {"line": 4, "character": 25})
        assert ctx["repo_index"] == {"state": "off"} and ctx["snippets"] == []
        assert (await s.status())["repo_index"]["state"] == "off"
        assert await s.stop() == 0

    asyncio.run(main())


async def _index_state(s: Session, state: str):
    st = (await s.status())["repo_index"]
    return st if st["state"] == state else None


async def _snippet_with(s: Session, uri: str, pos: tuple[int, int], needle: str):
    ctx = await s.command("copilot.context", uri, {"line": pos[0], "character": pos[1]})
    return next((sn for sn in ctx["snippets"] if needle in sn["text"]), None)
