"""The engines' command lines and request bodies (copilot.service.engines), without starting anything."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from copilot.core.types import CopilotError, UserInputError
from copilot.service.engines import Engine, llama_server, vllm
from copilot.service.engines.llama_server import LlamaServer
from copilot.service.engines.vllm import Vllm


def _exe(path: Path) -> Path:
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def _peft(d: Path, r: int = 16) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    (d / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": r, "lora_alpha": 2 * r}))
    return d


# ---------------------------------------------------------------------- llama-server
def test_llama_server_command_line():
    cmd = llama_server.command("/bin/llama-server", "/m/base.gguf",
                               [("company@1", Path("/c/a.gguf")), ("company-ctx@1", Path("/c/b.gguf"))],
                               host="127.0.0.1", port=9001, threads=2, parallel=3, ctx_size=2048, cache_reuse=64)
    assert cmd == ["/bin/llama-server", "-m", "/m/base.gguf", "--alias", "copilot-base",
                   "--host", "127.0.0.1", "--port", "9001", "-t", "2", "-tb", "2", "-np", "3", "-c", "2048",
                   "--cache-reuse", "64", "-fa", "off", "--metrics",
                   "--lora", "/c/a.gguf", "--lora", "/c/b.gguf", "--lora-init-without-apply", "--no-webui"]


def test_llama_server_command_without_adapters_or_webui_flag():
    cmd = llama_server.command("llama-server", "b.gguf", [], port=1, threads=1, parallel=1, ctx_size=512,
                               cache_reuse=0, no_webui=False, extra=["--no-warmup"])
    assert "--lora" not in cmd and "--lora-init-without-apply" not in cmd and "--no-webui" not in cmd
    assert cmd[-1] == "--no-warmup" and cmd[cmd.index("-c") + 1] == "512"


def test_llama_server_rejects_a_comma_in_a_lora_path():
    with pytest.raises(UserInputError, match="comma"):
        llama_server.command("llama-server", "b.gguf", [("a@1", Path("/x,y/a.gguf"))], threads=1)


def test_llama_server_engine_builds_its_command(tmp_path):
    binary = _exe(tmp_path / "llama-server")
    eng = LlamaServer(binary, tmp_path / "base.gguf", {"a@1": tmp_path / "a.gguf"}, port=9002, threads=1,
                      parallel=1, ctx_size=1024, cache_reuse=16)
    cmd = eng.command()
    assert cmd[:3] == [str(binary), "-m", str(tmp_path / "base.gguf")]
    assert cmd[cmd.index("--lora") + 1] == str(tmp_path / "a.gguf")
    assert "--no-webui" not in cmd  # the stub's --help does not list it
    assert eng.base_url == "http://127.0.0.1:9002" and eng.adapters == {"a@1": 0}
    assert isinstance(eng, Engine) and eng.name == "llama.cpp"


def test_llama_server_start_reports_a_missing_file(tmp_path):
    eng = LlamaServer(_exe(tmp_path / "llama-server"), tmp_path / "nope.gguf", [], threads=1, cache_reuse=0)
    with pytest.raises(CopilotError, match="no such file"):
        eng.start()
    assert not eng.alive()


def test_llama_server_start_shows_the_log_when_it_exits(tmp_path):
    binary = tmp_path / "llama-server"
    binary.write_text("#!/bin/sh\necho 'error: cannot load model' >&2\nexit 3\n")
    binary.chmod(0o755)
    (tmp_path / "b.gguf").write_bytes(b"GGUF")
    eng = LlamaServer(binary, tmp_path / "b.gguf", [], threads=1, cache_reuse=0, log_path=tmp_path / "log")
    with pytest.raises(CopilotError, match=r"exited with code 3[\s\S]*cannot load model"):
        eng.start()


def test_find_binary_order(tmp_path, monkeypatch):
    monkeypatch.setenv("COPILOT_LLAMA_SERVER", str(_exe(tmp_path / "mine")))
    assert llama_server.find_binary() == tmp_path / "mine"
    monkeypatch.setenv("COPILOT_LLAMA_SERVER", str(tmp_path / "missing"))
    assert llama_server.find_binary() is None
    with pytest.raises(CopilotError, match="COPILOT_LLAMA_SERVER"):
        llama_server.require_binary()
    monkeypatch.delenv("COPILOT_LLAMA_SERVER")
    monkeypatch.setattr(llama_server.sys, "executable", str(tmp_path / "venv" / "bin" / "python"))
    monkeypatch.setenv("PATH", str(tmp_path / "path"))
    assert llama_server.find_binary() is None
    (tmp_path / "path").mkdir()
    _exe(tmp_path / "path" / "llama-server")
    assert llama_server.find_binary() == tmp_path / "path" / "llama-server"
    (tmp_path / "venv" / "bin").mkdir(parents=True)
    _exe(tmp_path / "venv" / "bin" / "llama-server")
    assert llama_server.find_binary() == tmp_path / "venv" / "bin" / "llama-server"


def test_llama_server_upstream_body_lists_every_adapter():
    eng = LlamaServer(None, "b.gguf", [("company@1", Path("a.gguf")), ("company-ctx@1", Path("c.gguf"))], port=1,
                      threads=1, cache_reuse=0)
    body = {"model": "company", "prompt": "x", "max_tokens": 4, "lora": [{"id": 1, "scale": 5.0}]}
    up = eng.upstream_body(body, "company-ctx@1")
    assert up == {"model": "copilot-base", "prompt": "x", "max_tokens": 4,
                  "lora": [{"id": 0, "scale": 0.0}, {"id": 1, "scale": 1.0}]}
    assert body["lora"] == [{"id": 1, "scale": 5.0}] and body["model"] == "company"  # not modified
    assert eng.upstream_body(body, None)["lora"] == [{"id": 0, "scale": 0.0}, {"id": 1, "scale": 0.0}]
    assert eng.upstream_body(body, "company")["lora"] == [{"id": 0, "scale": 1.0}, {"id": 1, "scale": 0.0}]
    with pytest.raises(UserInputError, match="not served"):
        eng.upstream_body(body, "other@1")
    bare = LlamaServer(None, "b.gguf", [], port=1, threads=1, cache_reuse=0)
    assert bare.upstream_body(body, None) == {"model": "copilot-base", "prompt": "x", "max_tokens": 4}


# ---------------------------------------------------------------------- vLLM
def test_vllm_command_line(tmp_path):
    a, b = _peft(tmp_path / "a"), _peft(tmp_path / "b")
    cmd = vllm.command("/m/hf", {"company@1": a, "company-ctx@1": b}, host="0.0.0.0", port=8100, max_loras=2,
                       max_lora_rank=16, binary="vllm")
    assert cmd == ["vllm", "serve", "/m/hf", "--enable-lora", "--lora-modules", f"company@1={a}",
                   f"company-ctx@1={b}", "--max-loras", "2", "--max-lora-rank", "16", "--enable-prefix-caching",
                   "--host", "0.0.0.0", "--port", "8100"]


def test_vllm_engine_command_env_and_rank(tmp_path, monkeypatch):
    eng = Vllm("/m/hf", {"t@1": _peft(tmp_path / "a", r=24)}, served_name="base", port=8101, max_loras=1,
               binary=["/venv-vllm/bin/vllm"], max_model_len=4096, gpu_memory_utilization=0.5)
    cmd = eng.command()
    assert cmd[:5] == ["/venv-vllm/bin/vllm", "serve", "/m/hf", "--served-model-name", "base"]
    assert cmd[cmd.index("--max-lora-rank") + 1] == "32"  # rank 24 -> the next rank vLLM accepts
    assert cmd[cmd.index("--max-model-len") + 1] == "4096" and cmd[cmd.index("--gpu-memory-utilization") + 1] == "0.5"
    assert eng.env()["VLLM_ALLOW_RUNTIME_LORA_UPDATING"] == "True"
    assert eng.adapters == {"t@1": 1} and isinstance(eng, Engine) and eng.name == "vllm"


def test_vllm_upstream_body(tmp_path):
    eng = Vllm("/m/hf", {"company@1": _peft(tmp_path / "a")}, port=1, binary="vllm")
    body = {"model": "company", "prompt": "x", "stream": True}
    assert eng.upstream_body(body, "company@1") == {"model": "company@1", "prompt": "x", "stream": True}
    assert eng.upstream_body(body, "company")["model"] == "company@1"
    assert eng.upstream_body(body, None)["model"] == "/m/hf"
    named = Vllm("/m/hf", {}, served_name="qwen-base", port=1, binary="vllm")
    assert named.upstream_body(body, None)["model"] == "qwen-base"
    with pytest.raises(UserInputError, match="not served"):
        named.upstream_body(body, "company")
    assert body["model"] == "company"


def test_vllm_available_says_why_not(monkeypatch, tmp_path):
    monkeypatch.delenv("COPILOT_VLLM", raising=False)
    monkeypatch.setattr(vllm, "find_binary", lambda: None)
    ok, why = vllm.available()
    assert not ok and why.startswith("vLLM is not installed: run scripts/install-vllm.sh")
    monkeypatch.setattr(vllm, "find_binary", lambda: ["vllm"])
    ok, why = vllm.available()
    assert ok == os.path.isfile("/proc/driver/nvidia/version")
    if not ok:
        assert "CUDA" in why
        with pytest.raises(CopilotError, match="CUDA"):
            Vllm("/m/hf", port=1).start()


def test_engine_modules_do_not_import_torch():
    import subprocess
    import sys

    code = ("import sys, copilot.service.engines.llama_server, copilot.service.engines.vllm\n"
            "copilot.service.engines.vllm.available()\n"
            "bad = [m for m in ('torch', 'vllm', 'transformers') if m in sys.modules]\n"
            "sys.exit(f'imported {bad}' if bad else 0)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
