"""The vLLM engine: its runtime adapter calls against a stub HTTP server that records them, its start-up
against a stub `vllm` command, and (marked gpu) the real thing with two adapters."""

from __future__ import annotations

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from copilot.core.types import CopilotError, UserInputError
from copilot.service.engines import vllm
from copilot.service.engines.process import http
from copilot.service.engines.vllm import Vllm


def _peft(d: Path, r: int = 16) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    (d / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": r, "lora_alpha": 2 * r}))
    return d


class Recorder(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        self.calls: list[tuple[str, str, dict | None]] = []
        self.fail: set[str] = set()
        super().__init__(("127.0.0.1", 0), Handler)


class Handler(BaseHTTPRequestHandler):
    server: Recorder

    def log_message(self, *args):  # quiet
        pass

    def _answer(self, status: int, text: str) -> None:
        data = text.encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self.server.calls.append(("GET", self.path, None))
        self._answer(200 if self.path == "/health" else 404, "")

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(n) or b"null")
        self.server.calls.append(("POST", self.path, body))
        if self.path in self.server.fail:
            self._answer(400, "The lora adapter 'x' has already been loaded.")
        else:
            self._answer(200, "Success: LoRA adapter loaded")


@pytest.fixture
def recorder():
    srv = Recorder()
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()


def _engine_at(srv: Recorder, tmp_path: Path, **kw) -> Vllm:
    return Vllm("/m/hf", {"company@1": _peft(tmp_path / "c1")}, port=srv.server_address[1], binary="vllm", **kw)


def test_load_and_unload_call_the_runtime_routes(recorder, tmp_path):
    eng = _engine_at(recorder, tmp_path)
    new = _peft(tmp_path / "c2")
    eng.load("company@2", new)
    assert recorder.calls[-1] == ("POST", "/v1/load_lora_adapter", {"lora_name": "company@2", "lora_path": str(new)})
    assert eng.adapters == {"company@1": 1, "company@2": 2}
    assert eng.upstream_body({"prompt": "x"}, "company@2")["model"] == "company@2"
    eng.unload("company@1")
    assert recorder.calls[-1] == ("POST", "/v1/unload_lora_adapter", {"lora_name": "company@1"})
    assert eng.adapters == {"company@2": 2}
    with pytest.raises(UserInputError):
        eng.upstream_body({"prompt": "x"}, "company@1")


def test_a_refused_load_is_an_error_and_changes_nothing(recorder, tmp_path):
    recorder.fail.add("/v1/load_lora_adapter")
    eng = _engine_at(recorder, tmp_path)
    with pytest.raises(CopilotError, match="HTTP 400.*already been loaded"):
        eng.load("company@2", _peft(tmp_path / "c2"))
    assert eng.adapters == {"company@1": 1}


def test_a_rank_above_the_engines_limit_is_refused_before_any_call(recorder, tmp_path):
    eng = _engine_at(recorder, tmp_path)
    with pytest.raises(UserInputError, match="max-lora-rank 16"):
        eng.load("big@1", _peft(tmp_path / "big", r=64))
    assert not recorder.calls


def test_unreachable_engine(tmp_path):
    eng = Vllm("/m/hf", {}, port=1, binary="vllm")  # nothing listens on port 1
    with pytest.raises(CopilotError, match="did not answer"):
        eng.unload("x")


def test_start_waits_for_health_and_stop_ends_it(tmp_path):
    """A stub `vllm` command (a tiny Python HTTP server) is spawned with the engine's command line and
    environment; start() returns once /health is 200, stop() ends the process."""
    stub = tmp_path / "vllm"
    stub.write_text(f"""#!{sys.executable}
import json, os, sys
from http.server import BaseHTTPRequestHandler, HTTPServer
argv = sys.argv[1:]
port = int(argv[argv.index('--port') + 1])
class H(BaseHTTPRequestHandler):
    def do_GET(self):
        data = json.dumps({{'argv': argv, 'runtime': os.environ.get('VLLM_ALLOW_RUNTIME_LORA_UPDATING')}}).encode()
        self.send_response(200); self.send_header('Content-Length', str(len(data))); self.end_headers()
        self.wfile.write(data)
    def log_message(self, *a): pass
HTTPServer(('127.0.0.1', port), H).serve_forever()
""")
    stub.chmod(0o755)
    eng = Vllm("/m/hf", {"company@1": _peft(tmp_path / "c1")}, binary=[str(stub)], start_timeout_s=30,
               log_path=tmp_path / "vllm.log")
    eng.start()
    try:
        assert eng.alive()
        status, data = http("GET", eng.base_url + "/health")
        got = json.loads(data)
        assert status == 200 and got["runtime"] == "True"
        assert got["argv"][:2] == ["serve", "/m/hf"] and f"company@1={tmp_path / 'c1'}" in got["argv"]
    finally:
        eng.stop()
    assert not eng.alive()


@pytest.mark.gpu
def test_vllm_serves_two_adapters_for_real(real_model_home, tmp_path, monkeypatch):
    """vLLM on a GPU: the converted packaged base and two small random adapters; each adapter and the base
    answer, the adapters differ from the base, one is unloaded and loaded again at run time."""
    ok, why = vllm.available()
    if not ok:
        pytest.skip(why)
    import numpy as np
    from safetensors.numpy import save_file

    monkeypatch.setenv("COPILOT_HOME", str(real_model_home))
    from copilot.models.packaged import resolve_model

    base = resolve_model("qwen2.5-coder-0.5b")
    rng = np.random.default_rng(0)
    folders = {}
    for name in ("t1@1", "t2@1"):
        d = _peft(tmp_path / name.replace("@", "-"), r=8)
        cfg = json.loads((d / "adapter_config.json").read_text())
        cfg["target_modules"] = ["q_proj", "v_proj"]
        (d / "adapter_config.json").write_text(json.dumps(cfg))
        t = {}
        for i in range(24):
            for mod, out in (("q_proj", 896), ("v_proj", 128)):
                p = f"base_model.model.model.layers.{i}.self_attn.{mod}"
                t[f"{p}.lora_A.weight"] = rng.standard_normal((8, 896)).astype(np.float32) * 0.2
                t[f"{p}.lora_B.weight"] = rng.standard_normal((out, 8)).astype(np.float32) * 0.2
        save_file(t, str(d / "adapter_model.safetensors"))
        folders[name] = d
    eng = Vllm(base, folders, served_name="base", max_loras=2, max_model_len=2048,
               gpu_memory_utilization=0.3, log_path=tmp_path / "vllm.log")
    eng.start()
    try:
        prompt = "<|fim_prefix|>def add(a, b):\n    <|fim_suffix|>\n<|fim_middle|>"
        outs = {}
        for key in (None, "t1@1", "t2@1"):
            status, data = eng.post("/v1/completions", eng.upstream_body(
                {"prompt": prompt, "max_tokens": 12, "temperature": 0}, key))
            assert status == 200, data
            outs[key] = json.loads(data)["choices"][0]["text"]
        assert outs["t1@1"] != outs[None] and outs["t2@1"] != outs[None], outs
        eng.unload("t1@1")
        status, _ = eng.post("/v1/completions", {"model": "t1@1", "prompt": prompt, "max_tokens": 4})
        assert status != 200
        eng.load("t1@1", folders["t1@1"])
        status, data = eng.post("/v1/completions", eng.upstream_body(
            {"prompt": prompt, "max_tokens": 12, "temperature": 0}, "t1@1"))
        assert status == 200 and json.loads(data)["choices"][0]["text"] == outs["t1@1"]
    finally:
        eng.stop()
    assert not eng.alive()
