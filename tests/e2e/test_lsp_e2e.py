"""End to end: the real `copilot-lsp` process over stdio, driven by pygls' real LanguageClient,
with the tiny random model (and once, marked slow, with the embedded 0.5B)."""

from __future__ import annotations

import asyncio
import json

import pytest
from helpers.lsp_harness import Session, frame
from lsprotocol import types
from pygls.exceptions import JsonRpcException

from lsp.positions import units

pytestmark = pytest.mark.timeout(300)


def run(coro):
    return asyncio.run(coro)


async def wait_for(pred, timeout: float = 30.0):
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while True:
        value = await pred()
        if value or loop.time() > end:
            return value
        await asyncio.sleep(0.02)


def test_full_session(tiny_model_dir, tmp_path):
    home = tmp_path / "home"
    root = tmp_path / "proj"
    root.mkdir()
    uri = (root / "app.py").as_uri()
    text = "import os\n\n\nclass Greeter:\n    def hello(self, name):\n        return \n"

    async def main():
        s = Session(tiny_model_dir, root=root, home=home, init_options={"copilot": {"debounceMs": 60}})
        init = await s.start()
        caps = init.capabilities
        assert caps.inline_completion_provider is not None
        assert caps.text_document_sync.change == types.TextDocumentSyncKind.Incremental
        assert {"copilot.explain", "copilot.explainStream", "copilot.status"} <= set(caps.execute_command_provider.commands)
        st = await s.wait_ready()
        assert st["state"] == "ready" and st["debounce_ms"] == 60, st
        assert any("ready" in m for m in s.logs)

        # initialize -> didOpen -> inlineCompletion
        s.open(uri, text)
        first = await s.inline(uri, 5, 15)
        assert len(first.items) == 1
        item = first.items[0]
        suggestion = item.insert_text
        assert suggestion.strip()
        assert (item.range.start.line, item.range.start.character) == (5, 15)
        assert item.command.command == "copilot.accepted"
        st = await s.status()
        calls = st["counters"]["model_calls"]

        # didChange: type the suggestion's first character -> served from the typed-ahead cache
        s.change(uri, 2, (5, 15), (5, 15), suggestion[0])
        second = await s.inline(uri, 5, 16)
        assert [i.insert_text for i in second.items] == [suggestion[1:]]
        st = await s.status()
        assert st["counters"]["model_calls"] == calls and st["counters"]["cache_hits"] == 1
        # ... and typing something else asks the model again
        s.change(uri, 3, (5, 16), (5, 16), "#")
        await s.inline(uri, 5, 17)
        assert (await s.status())["counters"]["model_calls"] == calls + 1

        # cancellation: long generations (maxTokens 1024) stopped by a newer request and by $/cancelRequest
        s.client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings={"maxTokens": 1024}))
        s.open(uri + ".long.py", "def f():\n\n", version=1)
        long_uri = uri + ".long.py"
        proto = s.client.protocol
        a = asyncio.ensure_future(proto.send_request_async(
            types.TEXT_DOCUMENT_INLINE_COMPLETION, s.inline_params(long_uri, 1, 0), msg_id="req-A"))
        assert await wait_for(lambda: _running(s, long_uri)), "request A never started generating"
        b = asyncio.ensure_future(proto.send_request_async(
            types.TEXT_DOCUMENT_INLINE_COMPLETION, s.inline_params(long_uri, 2, 0), msg_id="req-B"))
        res_a = await asyncio.wait_for(a, 60)
        assert list(res_a.items) == []  # superseded: empty, not an error
        assert await wait_for(lambda: _running(s, long_uri)), "request B never started generating"
        proto.notify(types.CANCEL_REQUEST, types.CancelParams(id="req-B"))
        with pytest.raises(JsonRpcException) as err:
            await asyncio.wait_for(b, 60)
        assert err.value.code == types.LSPErrorCodes.RequestCancelled
        st = await wait_for(lambda: _stopped(s, 2))
        # both generations were stopped inside the engine, long before 1024 tokens each
        assert st and st["counters"]["stopped_generations"] == 2, st
        assert st["counters"]["generated_tokens"] < 1024 + 200
        s.client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings={"maxTokens": 16}))

        # config change: turn python off, then on again
        s.client.workspace_did_change_configuration(
            types.DidChangeConfigurationParams(settings={"copilot": {"languages": {"python": False}}}))
        off = await s.inline(uri, 1, 0)
        assert list(off.items) == [] and (await s.status())["counters"]["disabled"] == 1
        s.client.workspace_did_change_configuration(
            types.DidChangeConfigurationParams(settings={"copilot": {"languages": {"python": True}}}))

        # textDocument/completion fallback: one item with the full text as a text edit
        comp = await s.client.text_document_completion_async(types.CompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(line=1, character=0)))
        assert len(comp.items) == 1 and comp.items[0].text_edit.new_text.strip()

        # code action on the method -> "Explain this function" running copilot.explain on its range
        actions = await s.code_actions(uri, 4, 10)
        assert len(actions) == 1 and actions[0]["title"].startswith("Explain this function")
        assert actions[0]["kind"] == "quickfix"
        cmd = actions[0]["command"]
        assert cmd["command"] == "copilot.explain"
        rng = cmd["arguments"][1]
        assert (rng["start"]["line"], rng["start"]["character"], rng["end"]["line"]) == (4, 4, 5)
        assert await s.code_actions(uri, 0, 3) == []  # "import os": no function around it
        explained = await s.command(cmd["command"], *cmd["arguments"])
        assert explained["markdown"].startswith("### `hello`") and explained["sections"] == 1

        # executeCommand explain on the whole document: an overview, which covers its one top-level class
        # (a second file-level section would repeat it); files with more units: tests/serve/test_explain_golden.py
        whole = await s.command("copilot.explain", uri)
        assert whole["markdown"].startswith("### Overview") and "### `Greeter`" not in whole["markdown"]
        assert whole["sections"] == 1

        # explainStream: $/progress begin ... end on the client's token
        streamed = await s.command("copilot.explainStream", uri, None, "tok-1")
        assert streamed["markdown"] == whole["markdown"]
        kinds = [p.value["kind"] if isinstance(p.value, dict) else p.value.kind for p in s.progress if p.token == "tok-1"]
        assert kinds[0] == "begin" and kinds[-1] == "end"

        # explain errors are one-line JSON-RPC errors, the server stays up
        with pytest.raises(JsonRpcException, match="document not open"):
            await s.command("copilot.explain", "file:///nowhere.py")
        with pytest.raises(JsonRpcException, match="URI"):
            await s.command("copilot.explain", 42)

        # feedback: accepted -> one JSONL line with the completion, adapter, latency; no file contents
        s.client.protocol.notify("copilot/accepted", {"id": item.command.arguments[0]})
        s.client.protocol.notify("copilot/rejected", {"id": "no-such-id"})
        await s.status()  # notifications are handled in order before this reply
        lines = (home / "feedback" / "lsp-feedback.jsonl").read_text().splitlines()
        rows = [json.loads(line) for line in lines]
        assert [r["event"] for r in rows if r["event"] != "shown"] == ["accepted"]
        shown = [r for r in rows if r["event"] == "shown"]
        assert shown and all("completion" not in r and "path" not in r for r in shown)  # metadata only
        row = [r for r in rows if r["event"] == "accepted"][0]
        assert row["event"] == "accepted" and row["completion"] == suggestion and row["language"] == "python"
        assert "return" not in json.dumps(row)  # the document is not in it

        # didClose forgets the document: no completion for it any more
        s.client.text_document_did_close(types.DidCloseTextDocumentParams(
            text_document=types.TextDocumentIdentifier(uri=uri)))
        assert list((await s.inline(uri, 5, 15)).items) == []

        rc = await s.stop()
        assert rc == 0

    run(main())


async def _running(s: Session, uri: str):
    st = await s.status()
    return st["scheduler"]["running"] == uri and st


async def _stopped(s: Session, n: int):
    st = await s.status()
    return st if st["counters"]["stopped_generations"] >= n else None


def test_a_request_is_answered_for_the_text_it_was_made_against(tiny_model_dir, tmp_path):
    """A completion request and the next keystroke's didChange read in one chunk: pygls starts the request's
    handler after the change is applied, so the server must use the text as it was when the request came
    (here: served from the typed-ahead cache; with the newer text the suffix differs and the model is asked)."""
    uri = (tmp_path / "app.py").as_uri()
    text = "import os\n\n\nclass Greeter:\n    def hello(self, name):\n        return \n"

    async def main():
        s = Session(tiny_model_dir, home=tmp_path / "home")
        await s.start()
        assert (await s.wait_ready())["state"] == "ready"
        s.open(uri, text)
        first = await s.inline(uri, 5, 15)
        suggestion = first.items[0].insert_text
        assert len(suggestion) >= 2
        s.change(uri, 2, (5, 15), (5, 15), suggestion[0])
        before = (await s.status())["counters"]
        other = "#" if suggestion[1] != "#" else "!"
        request = {"jsonrpc": "2.0", "id": "stale-1", "method": types.TEXT_DOCUMENT_INLINE_COMPLETION,
                   "params": {"textDocument": {"uri": uri}, "position": {"line": 5, "character": 16},
                              "context": {"triggerKind": 2}}}
        change = {"jsonrpc": "2.0", "method": types.TEXT_DOCUMENT_DID_CHANGE,
                  "params": {"textDocument": {"uri": uri, "version": 3},
                             "contentChanges": [{"range": {"start": {"line": 5, "character": 16},
                                                           "end": {"line": 5, "character": 16}}, "text": other}]}}
        stdin = s.client._server.stdin
        stdin.write(frame(request) + frame(change))  # one write: the server reads both at once
        await stdin.drain()
        for _ in range(200):
            after = (await s.status())["counters"]
            if after["requests"] > before["requests"]:
                break
            await asyncio.sleep(0.05)
        await s.stop()
        return before, after

    before, after = asyncio.run(asyncio.wait_for(main(), 300))
    assert after["requests"] == before["requests"] + 1
    assert after["cache_hits"] == before["cache_hits"] + 1 and after["model_calls"] == before["model_calls"]


@pytest.mark.parametrize("encoding", ["utf-16", "utf-8"])
def test_positions_emoji_cjk_crlf(tiny_model_dir, tmp_path, encoding):
    uri = (tmp_path / "u.py").as_uri()
    head = "# 😀 中文 𝄞\u2028 \x0c\r\ndef f(a):\r\n"  # U+2028 and form feed are not line ends in LSP
    line2 = "    s = '😀中' + "
    text = head + line2
    js_uri = (tmp_path / "u.js").as_uri()
    js_line = "const s = '😀中'; function greet(n) { return n; }"

    async def main():
        s = Session(tiny_model_dir, home=tmp_path / "home", encodings=[encoding])
        init = await s.start()
        assert init.capabilities.position_encoding == encoding
        assert (await s.wait_ready())["state"] == "ready"
        s.open(uri, text)
        col = units(line2, encoding)
        res = await s.inline(uri, 2, col)
        assert len(res.items) == 1
        x = res.items[0].insert_text
        assert (res.items[0].range.start.line, res.items[0].range.start.character) == (2, col)
        before = (await s.status())["counters"]
        # type the first character at the client-side position: the server must apply the edit at
        # exactly the right place for the typed-ahead cache to match
        s.change(uri, 2, (2, col), (2, col), x[0])
        res2 = await s.inline(uri, 2, col + units(x[0], encoding))
        after = (await s.status())["counters"]
        assert [i.insert_text for i in res2.items] == [x[1:]]
        assert after["cache_hits"] == before["cache_hits"] + 1 and after["model_calls"] == before["model_calls"]
        # a position inside the emoji (mid surrogate pair / mid UTF-8 sequence) clamps before it;
        # a character past the end of a line clamps to its end
        mid = units("    s = '", encoding) + 1
        r = await s.inline(uri, 2, mid)
        if r.items:
            assert r.items[0].range.start.character == units("    s = '", encoding)
        r = await s.inline(uri, 0, 10_000)
        if r.items:
            assert r.items[0].range.start.character == units("# 😀 中文 𝄞\u2028 \x0c", encoding)
        # server -> client positions: the function after an emoji on the same line
        s.open(js_uri, js_line, language="javascript")
        acts = await s.code_actions(js_uri, 0, units(js_line, encoding) - 3)
        assert len(acts) == 1 and "greet" in acts[0]["title"]
        rng = acts[0]["command"]["arguments"][1]
        assert rng["start"] == {"line": 0, "character": units("const s = '😀中'; ", encoding)}
        assert rng["end"] == {"line": 0, "character": units(js_line, encoding)}
        assert await s.stop() == 0

    run(main())


def test_model_that_fails_to_load_keeps_the_server_up(tiny_model_dir, tmp_path):
    uri = (tmp_path / "a.py").as_uri()

    async def main():
        s = Session(tmp_path / "no-such-model", home=tmp_path / "home")
        await s.start()
        st = await s.wait_ready(60)
        assert st["state"] == "failed" and st["error"] and "\n" not in st["error"]
        assert any("failed to load" in m for m in s.shown)
        s.open(uri, "def f():\n    ")
        res = await asyncio.wait_for(s.inline(uri, 1, 4), 10)
        assert list(res.items) == []
        with pytest.raises(JsonRpcException, match="failed to load"):
            await s.command("copilot.explain", uri)
        # fixing the model in the configuration reloads it in the background
        s.client.workspace_did_change_configuration(
            types.DidChangeConfigurationParams(settings={"model": str(tiny_model_dir)}))
        await asyncio.sleep(0.2)
        st = await s.wait_ready(60)
        assert st["state"] == "ready" and st["error"] is None, st
        res = await s.inline(uri, 1, 4)
        assert len(res.items) == 1
        assert await s.stop() == 0

    run(main())


def test_adapter_hot_swap_between_requests(tiny_model_dir, tmp_path):
    from helpers.train_fixtures import save_tiny_adapter

    from copilot.adapters.registry import Registry
    from copilot.core.types import AdapterManifest

    home = tmp_path / "home"
    reg = Registry(home / "adapters")

    def man() -> AdapterManifest:
        return AdapterManifest(name="x", version=0, base_model="tiny", base_model_sha256="", dataset_fingerprint="fp",
                               lora={"r": 4}, training={}, prompt_format="qwen", weights_sha256="", created="")

    srcs = [save_tiny_adapter(tiny_model_dir, tmp_path / f"a{i}", seed=i) for i in range(2)]
    reg.publish("acme", srcs[0], man())
    reg.promote("acme@1", force=True)
    uri = (tmp_path / "a.py").as_uri()

    async def main():
        s = Session(tiny_model_dir, home=home, init_options={"adapter": "acme"})
        await s.start()
        assert (await s.wait_ready())["state"] == "ready"
        s.open(uri, "def add(a, b):\n    return ")
        await s.inline(uri, 1, 11)
        st = await s.status()
        assert (st["adapter"], st["adapter_version"]) == ("acme", 1), st
        reg.publish("acme", srcs[1], man())
        reg.promote("acme@2", force=True)  # the nightly job promotes a new version
        await s.inline(uri, 1, 4)  # a new position: a model call, not the typed-ahead cache
        st = await s.status()
        assert (st["adapter"], st["adapter_version"]) == ("acme", 2), st
        assert any("serving acme@2" in m for m in s.logs)
        # an unknown adapter: warned once, served by the base model
        s.client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings={"adapter": "nope"}))
        await s.inline(uri, 1, 6)
        st = await s.status()
        assert st["adapter"] is None and "unknown adapter" in st["adapter_error"]
        assert any("adapter nope not used" in m for m in s.shown)
        assert await s.stop() == 0

    run(main())


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["auto", "transformers"])
def test_real_embedded_model_session(real_model_home, tmp_path, monkeypatch, backend):
    """The packaged Qwen2.5-Coder-0.5B behind the server: a completion and a streamed explanation,
    on the default backend (llama.cpp when installed) and on the transformers reference."""
    from copilot.serve.llama import available

    monkeypatch.setenv("COPILOT_BACKEND", backend)
    expected = "llama.cpp" if backend == "auto" and available()[0] else "transformers"
    uri = (tmp_path / "m.py").as_uri()
    text = "def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n    if n < 2:\n        return n\n    return "

    async def main():
        s = Session("qwen2.5-coder-0.5b", home=real_model_home)
        await s.start()
        st = await s.wait_ready(900)
        assert st["state"] == "ready", st
        assert st["backend"] == expected and st["fim_order"] == "psm"  # the base model: prefix-suffix-middle
        assert st["adapter_mode"] == ("merged" if expected == "llama.cpp" else "runtime LoRA")
        s.open(uri, text)
        res = await s.inline(uri, 4, 11)
        assert len(res.items) == 1 and "fibonacci" in res.items[0].insert_text
        out = await s.command("copilot.explainStream", uri, {"start": {"line": 0, "character": 0},
                                                              "end": {"line": 4, "character": 11}}, "t")
        assert len(out["markdown"]) > 40
        reports = [p.value for p in s.progress if p.token == "t"]
        assert len(reports) > 3  # streamed as generated
        assert await s.stop() == 0

    run(main())


def test_tcp_transport(tiny_model_dir, tmp_path):
    import socket
    import subprocess

    from helpers.lsp_harness import server_cmd, server_env
    from pygls.lsp.client import LanguageClient

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen(server_cmd(tiny_model_dir, "--tcp", f"127.0.0.1:{port}"), env=server_env(tmp_path / "home"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    uri = (tmp_path / "t.py").as_uri()

    async def main():
        client = LanguageClient("tcp-e2e", "0")
        for _ in range(300):
            try:
                await client.start_tcp("127.0.0.1", port)
                break
            except OSError:
                await asyncio.sleep(0.1)
        await client.initialize_async(types.InitializeParams(capabilities=types.ClientCapabilities()))
        client.initialized(types.InitializedParams())
        for _ in range(600):
            st = await client.workspace_execute_command_async(types.ExecuteCommandParams(command="copilot.status"))
            if st["state"] != "loading":
                break
            await asyncio.sleep(0.1)
        assert st["state"] == "ready"
        client.text_document_did_open(types.DidOpenTextDocumentParams(text_document=types.TextDocumentItem(
            uri=uri, language_id="python", version=1, text="def add(a, b):\n    return ")))
        res = await client.text_document_inline_completion_async(types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(line=1, character=11),
            context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Invoked)))
        assert len(res.items) == 1 and res.items[0].insert_text.strip()
        await client.shutdown_async(None)

    try:
        run(asyncio.wait_for(main(), 120))
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.slow
def test_cursor_moved_reads_the_new_place_ahead_of_typing(real_model_home, tmp_path, monkeypatch):
    """copilot/cursorMoved on llama.cpp: the prompt up to the cursor's line is read before the first keystroke,
    so the first completion there re-reads only its own line; a mid-word cursor gets the word completed."""
    from copilot.serve.llama import available

    if not available()[0]:
        pytest.skip(available()[1])
    monkeypatch.setenv("COPILOT_BACKEND", "llama.cpp")
    uri = (tmp_path / "warm.py").as_uri()
    body = "".join(f"def helper_{i}(value):\n    return value * {i} + len(str(value))\n\n\n" for i in range(12))
    text = body + "def main(items):\r\n    for item in items:\r\n        label = \"🙂\"; print(helper_3(item), lab\r\n"
    line, col = text.count("\n") - 1, len("        label = \"🙂\"; print(helper_3(item), lab") + 1  # UTF-16: the emoji is 2

    async def main():
        s = Session("qwen2.5-coder-0.5b", home=real_model_home)
        await s.start()
        assert (await s.wait_ready(900))["state"] == "ready"
        s.open(uri, text)
        s.client.protocol.notify("copilot/cursorMoved", {"textDocument": {"uri": uri}, "position": {"line": line, "character": col}})
        s.client.protocol.notify("copilot/cursorMoved", {"textDocument": {"uri": uri}})  # malformed: ignored
        for _ in range(300):
            st = await s.status()
            if st["counters"]["warmed_tokens"] > 0 and st["scheduler"]["running"] is None:
                break
            await asyncio.sleep(0.1)
        warmed, before = st["counters"]["warmed_tokens"], st["prompt_tokens"]["prefilled_tokens"]
        assert warmed > 200  # the twelve helpers above the cursor
        res = await s.inline(uri, line, col)
        after = (await s.status())["prompt_tokens"]["prefilled_tokens"]
        assert after - before < 60  # the cursor's line and the suffix, not the whole window again
        assert res.items and res.items[0].insert_text.startswith("el")  # `lab` -> `label`, healed mid-word
        assert await s.stop() == 0

    run(main())
