"""Fuzz: more than 1,000 malformed or hostile messages as raw bytes over the real server's stdin,
then a valid completion request that must still succeed; and a client vanishing mid-generation."""

from __future__ import annotations

import asyncio
import json
import random

import pytest
from helpers.lsp_harness import RawPipe, frame

pytestmark = pytest.mark.timeout(300)

GOOD_URI = "file:///fuzz/good.py"
BIG_URI = "file:///fuzz/big.py"


def req(i, method, params=None):
    m = {"jsonrpc": "2.0", "id": i, "method": method}
    if params is not None:
        m["params"] = params
    return m


def note(method, params=None):
    m = {"jsonrpc": "2.0", "method": method}
    if params is not None:
        m["params"] = params
    return m


def inline(i, uri, line, ch):
    return req(i, "textDocument/inlineCompletion", {
        "textDocument": {"uri": uri}, "position": {"line": line, "character": ch}, "context": {"triggerKind": 2}})


def did_open(uri, text, lang="python"):
    return note("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": lang, "version": 1, "text": text}})


def change(uri, version, sl, sc, el, ec, text):
    return note("textDocument/didChange", {"textDocument": {"uri": uri, "version": version}, "contentChanges": [
        {"range": {"start": {"line": sl, "character": sc}, "end": {"line": el, "character": ec}}, "text": text}]})


def raw(body: bytes, length: int | None = None) -> bytes:
    n = len(body) if length is None else length
    return b"Content-Length: %d\r\n\r\n" % n + body


def hostile(rng: random.Random, i: int) -> list[bytes]:
    """One hostile message (sometimes a few bytes-level pieces) of kind i % 24."""
    k = i % 24
    nid = f"h{i}"
    junk = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200)))
    if k == 0:
        return [b"Content-Length: abc\r\n\r\n{}"]
    if k == 1:
        return [b"Content-Length: -7\r\n\r\n"]
    if k == 2:
        return [b"Content-Length: 99999999999999\r\n\r\n"]
    if k == 3:  # declared too short: the rest of the body is read as junk headers
        body = json.dumps(req(nid, "copilot/unknown")).encode()
        return [raw(body, max(1, len(body) - 9))]
    if k == 4:  # declared too long: swallows what follows, then the reader resyncs
        body = json.dumps(note("copilot/unknown")).encode()
        return [raw(body, len(body) + rng.randrange(1, 300))]
    if k == 5:
        return [raw(junk)]
    if k == 6:
        return [raw(b'{"jsonrpc": "2.0", "id": 1, "method": "textDoc')]
    if k == 7:
        return [raw(rng.choice([b"[]", b"null", b"42", b'"s"', b"[{\"jsonrpc\":\"2.0\",\"id\":9,\"method\":\"x\"}]"]))]
    if k == 8:
        return [frame(req(nid, f"unknown/method{i}", {"x": i}))]
    if k == 9:
        return [frame(note(f"$/unknownNotification{i}", [1, 2]))]
    if k == 10:  # wrong types
        return [frame(req(nid, "textDocument/inlineCompletion", {"textDocument": {"uri": 5}, "position": "x"}))]
    if k == 11:  # positions far past the end of an open document
        return [frame(inline(nid, GOOD_URI, rng.choice([10**6, 2**31 - 1]), rng.choice([0, 10**9])))]
    if k == 12:  # a document never opened
        return [frame(inline(nid, f"file:///fuzz/never{i}.py", 0, 0))]
    if k == 13:  # edits to unopened documents and ranges past the end
        return [frame(change(f"file:///fuzz/never{i}.py", 2, 0, 0, 0, 1, "x")),
                frame(change(GOOD_URI, i, 10**5, 3, 10**5 + 2, 9, "z"))]
    if k == 14:  # binary content
        text = bytes(rng.randrange(256) for _ in range(300)).decode("latin-1")
        return [frame(did_open(f"file:///fuzz/bin{i % 5}.py", text))]
    if k == 15:
        return [raw(b'{"jsonrpc": "2.0", "id": "s%d", "method": "textDocument/didOpen", "params": '
                    b'{"textDocument": {"uri": "file:///fuzz/sur.py", "languageId": "python", "version": 1, '
                    b'"text": "\\ud800\\udfff\\ud800 x"}}}' % i)]
    if k == 16:
        return [frame({"jsonrpc": "2.0", "id": {"obj": 1}, "method": "copilot.status"}),
                frame({"jsonrpc": "1.0", "id": nid, "method": "workspace/executeCommand"}),
                frame({"jsonrpc": "2.0", "id": nid + "m"})]
    if k == 17:
        return [frame(req(nid, "workspace/executeCommand", rng.choice([
            {"command": "copilot.explain", "arguments": []},
            {"command": "copilot.explain", "arguments": [1, 2, 3, 4]},
            {"command": "copilot.explain", "arguments": ["file:///fuzz/never.py", "bad-range"]},
            {"command": "no.such.command"},
            {"command": "copilot.explainStream", "arguments": [GOOD_URI, None, {"bad": "token"}]},
        ])))]
    if k == 18:  # nested too deep for any parser
        return [raw(b"[" * 50_000), raw(b'{"a":' * 20_000 + b"1" + b"}" * 20_000)]
    if k == 19:
        return [junk.replace(b"\r\n\r\n", b"") + b"\r\n"]  # header junk
    if k == 20:
        return [frame(note("$/cancelRequest", {"id": f"nope{i}"})), frame(note("$/cancelRequest", {"id": {"x": 1}}))]
    if k == 21:
        return [frame(note("copilot/accepted", rng.choice([{"id": "c999999"}, [1], "x", None, {"id": {"a": 1}}])))]
    if k == 22:
        return [frame(req(nid, "textDocument/codeAction", {"textDocument": {"uri": GOOD_URI},
                                                          "range": {"start": {"line": 10**6, "character": 0},
                                                                    "end": {"line": 0, "character": 0}},
                                                          "context": {"diagnostics": []}}))]
    return [frame(note("workspace/didChangeConfiguration", {"settings": rng.choice(
        [{"maxTokens": "many"}, {"copilot": {"languages": {"python": "yes"}}}, None, [1, 2], {"debounceMs": -5}])}))]


def test_fuzz_then_a_valid_completion_still_succeeds(tiny_model_dir, tmp_path):
    rng = random.Random(1234)

    async def main():
        p = RawPipe(tiny_model_dir, home=tmp_path / "home")
        await p.start()
        sent = 0
        # requests before initialize are refused with ServerNotInitialized, not crashes
        for m in (inline("pre-1", GOOD_URI, 0, 0), req("pre-2", "copilot/whatever"), note("initialized", {}),
                  did_open(GOOD_URI, "x = 1\n")):
            await p.send(m)
            sent += 1
        assert (await p.reply("pre-1"))["error"]["code"] == -32002
        assert (await p.reply("pre-2"))["error"]["code"] == -32002

        await p.send(req("init", "initialize", {"processId": None, "rootUri": None, "capabilities": {}}))
        assert "capabilities" in (await p.reply("init"))["result"]
        await p.send(note("initialized", {}))
        await p.send(did_open(GOOD_URI, "def add(a, b):\n    return a + b\n"))

        # a 20 MB document: open it, complete at its end, edit it
        big = ("def f%d(x):\n    return x * %d  # 中文 😀\n" * 8) * 1
        lines = big * (20_000_000 // len(big))
        await p.send(did_open(BIG_URI, lines))
        n_lines = lines.count("\n")
        await p.send(inline("big-1", BIG_URI, n_lines, 0))
        await p.send(change(BIG_URI, 2, n_lines, 0, n_lines, 0, "def g(y):\n    return "))
        await p.send(inline("big-2", BIG_URI, n_lines + 1, 11))
        sent += 4

        for i in range(1000):
            for chunk in hostile(rng, i):
                await p.send(chunk)
                sent += 1
        # flush: more than any declared-too-long length can swallow
        await p.send(frame(did_open("file:///fuzz/pad.py", "p = 0\n" * 200)))
        assert sent >= 1000

        # the server is alive and a valid completion still succeeds
        await p.send(did_open("file:///fuzz/final.py", "def add(a, b):\n    return "))
        await p.send(req("st", "workspace/executeCommand", {"command": "copilot.status"}))
        st = (await p.reply("st", timeout=120))["result"]
        if st["state"] == "loading":
            for _ in range(600):
                await p.send(req(f"st{_}", "workspace/executeCommand", {"command": "copilot.status"}))
                st = (await p.reply(f"st{_}"))["result"]
                if st["state"] != "loading":
                    break
                await asyncio.sleep(0.1)
        assert st["state"] == "ready", st
        await p.send(inline("final", "file:///fuzz/final.py", 1, 11))
        final = await p.reply("final", timeout=120)
        assert final["result"]["items"] and final["result"]["items"][0]["insertText"].strip()
        assert p.proc.returncode is None

        # a sample of the hostile requests got proper answers
        replies = {m.get("id"): m for m in p.messages if "id" in m}
        assert replies["h8"]["error"]["code"] == -32601  # unknown method
        assert replies["h10"]["error"]["code"] == -32602  # wrong param types
        assert replies["h12"]["result"]["items"] == []  # a document never opened
        assert "result" in replies["h11"]  # positions past the end: clamped, answered
        assert "big-2" in replies and "result" in replies["big-2"]

        await p.send(req("bye", "shutdown"))
        await p.reply("bye")
        await p.send(note("exit"))
        assert await p.close() == 0

    asyncio.run(main())


def test_client_disconnecting_mid_generation(tiny_model_dir, tmp_path):
    async def main():
        p = RawPipe(tiny_model_dir, home=tmp_path / "home")
        await p.start()
        await p.send(req(1, "initialize", {"processId": None, "rootUri": None, "capabilities": {},
                                           "initializationOptions": {"maxTokens": 1024}}))
        await p.reply(1)
        await p.send(note("initialized", {}))
        for n in range(600):
            await p.send(req(f"s{n}", "workspace/executeCommand", {"command": "copilot.status"}))
            st = (await p.reply(f"s{n}"))["result"]
            if st["state"] != "loading":
                break
            await asyncio.sleep(0.1)
        await p.send(did_open(GOOD_URI, "def f():\n\n"))
        await p.send(inline(2, GOOD_URI, 1, 0))
        for n in range(200):
            await p.send(req(f"r{n}", "workspace/executeCommand", {"command": "copilot.status"}))
            if (await p.reply(f"r{n}"))["result"]["scheduler"]["running"]:
                break
        rc = await p.close()  # stdin closed while generating: the process must end by itself
        assert rc == 1  # no shutdown request came first

    asyncio.run(main())
