"""The team service for real on CPU: `copilot serve` on llama.cpp's server with two team adapters trained
here on the embedded model, two language servers with different team keys (backend = remote).

Checks, in order: each editor gets its own team's completion; a key asking for another team's adapter
gets 403; a client that goes away stops the generation in the engine; a promotion is served within 60 s
without restarting the service and without failing a request in flight; a killed engine gives editors an
empty result and a clear status within 2 s, and service resumes when the engine is back.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from helpers.lsp_harness import Session
from helpers.service_fixtures import request, trained_word_adapter

pytestmark = pytest.mark.slow

MODEL = "qwen2.5-coder-0.5b"
# The shape of the training pairs (tests/helpers/train_fixtures.fim_pair): an adapter answers with its word.
TEXT = "# module 7\n\ndef double(x):\n    \n\n\ndef main():\n    print(double)\n"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(coro):
    return asyncio.new_event_loop().run_until_complete(coro)


@pytest.fixture(scope="module")
def service(real_model_home, tmp_path_factory):
    from copilot.service.engines.llama_server import find_binary

    if find_binary() is None:
        pytest.skip("llama-server is not built (scripts/install.sh builds it; COPILOT_NO_LLAMA_SERVER=1 skips it)")
    from copilot.adapters.registry import Registry
    from copilot.service.keys import KeyStore

    alpha_src = trained_word_adapter(real_model_home, "alpha")
    bravo_src = trained_word_adapter(real_model_home, "bravo")
    home = tmp_path_factory.mktemp("service") / "home"
    home.mkdir()
    (home / "models").symlink_to(Path(real_model_home) / "models", target_is_directory=True)
    reg = Registry(home / "adapters")
    for name, src in (("alpha", alpha_src), ("bravo", bravo_src)):
        man = json.loads((src / "manifest.json").read_text())
        reg.publish(name, src, {**man, "name": name})
        reg.promote(f"{name}@1", force=True)
    keys = KeyStore(home / "service" / "keys.json")
    _, key_a = keys.add("team-a", ["alpha"])
    _, key_b = keys.add("team-b", ["bravo"])
    port = _free_port()
    env = dict(os.environ, COPILOT_HOME=str(home), OMP_WAIT_POLICY="PASSIVE", HF_HUB_OFFLINE="1",
               HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    log = open(home / "serve.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "copilot.cli.main", "serve", "--port", str(port), "--poll", "1",
                             "--parallel", "2"], env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 240
    while True:
        assert proc.poll() is None, (home / "serve.log").read_text()[-3000:]
        try:
            if request(url + "/health", timeout=2)[0] == 200:
                break
        except OSError:
            pass
        assert time.time() < deadline, (home / "serve.log").read_text()[-3000:]
        time.sleep(0.5)
    yield {"url": url, "a": key_a, "b": key_b, "registry": reg, "proc": proc, "home": home, "bravo_src": bravo_src}
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


def editor(service, monkeypatch, team: str, tmp_path) -> Session:
    """A language server whose backend is the team service, with `team`'s key and adapter."""
    monkeypatch.setenv("COPILOT_BACKEND", "remote")
    monkeypatch.setenv("COPILOT_REMOTE_URL", service["url"])
    monkeypatch.setenv("COPILOT_REMOTE_API_KEY", service[team])
    home = tmp_path / f"editor-{team}"
    if not home.exists():  # the base model's vocabulary builds the prompts here: the same packaged model
        home.mkdir()
        (home / "models").symlink_to(service["home"] / "models", target_is_directory=True)
    return Session(MODEL, home=home, init_options={"adapter": {"a": "alpha", "b": "bravo"}[team]})


def health(service) -> dict:
    return request(service["url"] + "/health")[1]


def test_each_editor_gets_its_teams_completion(service, monkeypatch, tmp_path):
    uri = (tmp_path / "m.py").as_uri()

    async def main():
        a = editor(service, monkeypatch, "a", tmp_path)
        await a.start()
        b = editor(service, monkeypatch, "b", tmp_path)
        await b.start()
        for s in (a, b):
            st = await s.wait_ready(120)
            assert st["state"] == "ready" and st["backend"] == "remote", st
            s.open(uri, TEXT)
        got_a, got_b = await asyncio.gather(a.inline(uri, 3, 4), b.inline(uri, 3, 4))
        text_a, text_b = got_a.items[0].insert_text, got_b.items[0].insert_text
        assert "alpha-" in text_a and "bravo" not in text_a, text_a
        assert "bravo-" in text_b and "alpha" not in text_b, text_b
        st = await a.status()
        assert (st["adapter"], st["adapter_version"]) == ("alpha", 1), st
        assert st["service"]["url"] == service["url"] and st["service"]["problem"] is None
        assert await a.stop() == 0 and await b.stop() == 0

    run(main())
    # Nothing of the code went to the service's log.
    assert "double" not in (service["home"] / "serve.log").read_text()


def test_another_teams_adapter_is_refused(service):
    body = {"model": "bravo", "prompt": "def f():\n    return ", "max_tokens": 4}
    status, answer, _ = request(service["url"] + "/v1/completions", key=service["a"], body=body)
    assert status == 403 and "bravo" in answer["error"]["message"]
    status, answer, headers = request(service["url"] + "/v1/completions", key=service["b"], body=body)
    assert status == 200 and headers["X-Copilot-Served"] == "bravo@1" and answer["choices"][0]["text"]


def _stream(service, key: str, model: str, max_tokens: int, read_events: int | None = None):
    """POST a streamed completion; read `read_events` events and close (None: read to the end).
    Returns (HTTP status, events read, finish reason)."""
    import http.client

    host, port = service["url"].split("//")[1].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    body = {"model": model, "prompt": "def fibonacci(n):\n", "max_tokens": max_tokens, "stream": True,
            "temperature": 0, "ignore_eos": True}
    conn.request("POST", "/v1/completions", json.dumps(body),
                 {"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    resp = conn.getresponse()
    events, finish = 0, None
    while resp.status == 200:
        line = resp.readline()
        if not line:
            break
        if line.startswith(b"data:") and b"[DONE]" not in line:
            events += 1
            finish = json.loads(line[5:])["choices"][0].get("finish_reason") or finish
            if read_events is not None and events >= read_events:
                break
    conn.sock.shutdown(socket.SHUT_RDWR)
    conn.close()
    return resp.status, events, finish


def _engine_metrics(service) -> dict[str, float]:
    from copilot.service.engines.process import parse_metrics

    engine = health(service)["replicas"][0]["url"]
    import urllib.request

    with urllib.request.urlopen(engine + "/metrics", timeout=5) as r:
        return parse_metrics(r.read().decode())


def test_a_client_that_leaves_stops_the_generation_in_the_engine(service):
    before = _engine_metrics(service)
    status, events, _ = _stream(service, service["a"], "alpha", max_tokens=800, read_events=3)
    assert status == 200 and events == 3
    time.sleep(1.0)
    m1 = _engine_metrics(service)
    time.sleep(1.5)
    m2 = _engine_metrics(service)
    # llama.cpp counts decoded tokens as it goes (n_decode_total); it no longer grows once the client left.
    assert m2["llamacpp:n_decode_total"] == m1["llamacpp:n_decode_total"]
    assert m2.get("llamacpp:requests_processing", 0) == 0
    produced = m2["llamacpp:tokens_predicted_total"] - before.get("llamacpp:tokens_predicted_total", 0)
    assert produced < 200, produced  # far fewer than the 800 asked for: the engine stopped


def test_a_promotion_is_served_within_a_minute_without_failing_requests(service, monkeypatch, tmp_path):
    reg = service["registry"]
    serve_pid = service["proc"].pid
    gen0 = health(service)["generation"]
    uri = (tmp_path / "m.py").as_uri()
    in_flight: dict = {}

    def long_request():
        in_flight["result"] = _stream(service, service["a"], "alpha", max_tokens=120)

    async def main():
        a = editor(service, monkeypatch, "a", tmp_path)
        await a.start()
        assert (await a.wait_ready(120))["state"] == "ready"
        a.open(uri, TEXT)
        assert "alpha-" in (await a.inline(uri, 3, 4)).items[0].insert_text
        t = threading.Thread(target=long_request)
        t.start()
        time.sleep(0.5)
        # The nightly job publishes and promotes alpha@2 (here: bravo's weights, so the change is visible).
        man = json.loads((service["bravo_src"] / "manifest.json").read_text())
        reg.publish("alpha", service["bravo_src"], {**man, "name": "alpha"})
        reg.promote("alpha@2", force=True)
        t0 = time.time()
        text, line = "", 0
        while time.time() - t0 < 60:
            line += 1
            a.change(uri, 1 + line, (1, 0), (1, 0), "\n")  # a new prompt: not the typed-ahead cache
            res = await a.inline(uri, 3 + line, 4)
            text = res.items[0].insert_text if res.items else ""
            if "bravo-" in text:
                break
            await asyncio.sleep(1)
        took = time.time() - t0
        assert "bravo-" in text, f"alpha@2 not served after {took:.0f} s: {text!r}"
        st = await a.status()
        assert (st["adapter"], st["adapter_version"]) == ("alpha", 2), st
        t.join(60)
        assert await a.stop() == 0
        return took

    took = run(main())
    status, events, finish = in_flight["result"]
    assert status == 200 and events >= 100 and finish == "length", in_flight  # the request in flight finished whole
    assert service["proc"].pid == serve_pid and service["proc"].poll() is None  # the service never restarted
    assert health(service)["generation"] > gen0
    print(f"promotion served after {took:.1f} s")


def test_a_killed_engine_gives_an_empty_result_and_a_status_then_recovers(service, monkeypatch, tmp_path):
    uri = (tmp_path / "m.py").as_uri()

    async def main():
        a = editor(service, monkeypatch, "a", tmp_path)
        await a.start()
        assert (await a.wait_ready(120))["state"] == "ready"
        a.open(uri, TEXT)
        assert (await a.inline(uri, 3, 4)).items
        pid = health(service)["replicas"][0]["pid"]
        os.kill(pid, signal.SIGKILL)
        a.change(uri, 2, (1, 0), (1, 0), "\n")
        t0 = time.perf_counter()
        res = await a.inline(uri, 4, 4)
        took = time.perf_counter() - t0
        assert not res.items and took < 2.0, (res, took)
        st = await a.status()
        assert st["service"]["problem"] and "503" in st["service"]["problem"], st
        assert any("team service" in m for m in a.logs)
        # The service restarts the engine; completions come back without anything done by hand.
        deadline, line, items = time.time() + 90, 4, []
        while time.time() < deadline and not items:
            await asyncio.sleep(1)
            line += 1
            a.change(uri, line - 2, (1, 0), (1, 0), "\n")
            items = (await a.inline(uri, line, 4)).items
        assert items and "bravo-" in items[0].insert_text  # alpha@2 since the promotion above
        st = await a.status()
        assert st["service"]["problem"] is None
        assert await a.stop() == 0

    run(main())
    assert health(service)["replicas"][0]["restarts"] >= 1
