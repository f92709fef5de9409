"""llama.cpp's server for real (the binary scripts/install.sh builds): the packaged base GGUF and a LoRA
GGUF converted from a small random peft adapter. Base and adapter answer differently, the base is not
touched by an earlier adapter request, streaming works, and a stream the client closes early stops the
generation (the server's decode counter stops growing)."""

from __future__ import annotations

import http.client
import json
import time

import numpy as np
import pytest

from copilot.service.engines import llama_server
from copilot.service.engines.llama_server import LlamaServer

pytestmark = pytest.mark.slow  # the packaged model (assembled once; CI shares it via COPILOT_TEST_HOME)

FIM = "<|fim_prefix|>def fibonacci(n):\n    <|fim_suffix|>\n\nprint(fibonacci(10))\n<|fim_middle|>"


def _random_adapter(d, r: int = 4):
    """A peft folder with random LoRA weights on q_proj and down_proj of every layer (strong enough to
    change greedy output)."""
    from safetensors.numpy import save_file

    rng = np.random.default_rng(0)
    t = {}
    for i in range(24):
        for mod, n_in, n_out in (("self_attn.q_proj", 896, 896), ("mlp.down_proj", 4864, 896)):
            p = f"base_model.model.model.layers.{i}.{mod}"
            t[f"{p}.lora_A.weight"] = rng.standard_normal((r, n_in)).astype(np.float32) * 0.05
            t[f"{p}.lora_B.weight"] = rng.standard_normal((n_out, r)).astype(np.float32) * 0.05
    d.mkdir(parents=True)
    save_file(t, str(d / "adapter_model.safetensors"))
    (d / "adapter_config.json").write_text(json.dumps(
        {"peft_type": "LORA", "r": r, "lora_alpha": 2 * r, "target_modules": ["q_proj", "down_proj"]}))
    return d


@pytest.fixture(scope="module")
def server(real_model_home, tmp_path_factory):
    binary = llama_server.find_binary()
    if binary is None:
        pytest.skip("llama-server is not built (scripts/install.sh builds .venv/bin/llama-server)")
    mp = pytest.MonkeyPatch()
    mp.setenv("COPILOT_HOME", str(real_model_home))
    try:
        adapter = _random_adapter(tmp_path_factory.mktemp("adapter") / "rand")
        eng = LlamaServer.for_adapters({"rand@1": adapter}, model="qwen2.5-coder-0.5b", binary=binary,
                                       parallel=2, ctx_size=4096, cache_reuse=0, start_timeout_s=60,
                                       log_path=tmp_path_factory.mktemp("log") / "llama-server.log")
        eng.start()
        yield eng
        eng.stop()
        assert not eng.alive()
    finally:
        mp.undo()


def _complete(eng: LlamaServer, adapter: str | None, **extra) -> dict:
    body = eng.upstream_body({"prompt": FIM, "max_tokens": 24, "temperature": 0, **extra}, adapter)
    status, data = eng.post("/v1/completions", body)
    assert status == 200, data
    return json.loads(data)


def test_base_and_adapter_answer_differently_and_do_not_leak(server):
    base = _complete(server, None)["choices"][0]["text"]
    lora = _complete(server, "rand@1")["choices"][0]["text"]
    again = _complete(server, None)["choices"][0]["text"]
    assert base.strip() and lora != base
    assert again == base  # the adapter's scale did not stay on for the next base request
    assert _complete(server, "rand")["choices"][0]["text"] == lora  # a name served in one version
    # a body with no `lora` list gets the global scales, which start() zeroed: the base model. (Such a body
    # also keeps the slot's cached prompt, read under the last request's adapter: cache_prompt off here.)
    status, data = server.post("/v1/completions", {"prompt": FIM, "max_tokens": 24, "temperature": 0,
                                                   "cache_prompt": False})
    assert status == 200 and json.loads(data)["choices"][0]["text"] == base


def test_special_tokens_in_a_text_prompt_are_parsed(server):
    status, data = server.post("/tokenize", {"content": "<|fim_middle|>"})
    assert status == 200 and len(json.loads(data)["tokens"]) == 1


def _decodes(eng: LlamaServer) -> float:
    return eng.metrics()["llamacpp:n_decode_total"]


def test_streaming_and_a_closed_stream_stops_generation(server):
    conn = http.client.HTTPConnection(server.host, server.port, timeout=30)
    body = server.upstream_body({"prompt": FIM, "max_tokens": 3000, "temperature": 0, "stream": True,
                                 "ignore_eos": True}, "rand@1")
    conn.request("POST", "/v1/completions", json.dumps(body), {"Content-Type": "application/json"})
    resp = conn.getresponse()
    assert resp.status == 200 and resp.getheader("Content-Type", "").startswith("text/event-stream")
    events = []
    while len(events) < 5:
        line = resp.fp.readline()
        if line.startswith(b"data: "):
            events.append(json.loads(line[6:]))
    assert all("text" in e["choices"][0] for e in events)
    before = _decodes(server)
    time.sleep(0.5)
    assert _decodes(server) > before  # still generating while the client listens
    conn.sock.close()  # the client goes away mid-stream
    conn.close()
    deadline = time.monotonic() + 10
    while server.metrics().get("llamacpp:requests_processing", 1) != 0:
        assert time.monotonic() < deadline, "the server kept generating after the client closed the stream"
        time.sleep(0.1)
    settled = _decodes(server)
    time.sleep(1.0)
    assert _decodes(server) == settled
    assert server.metrics()["llamacpp:tokens_predicted_total"] < 3000
