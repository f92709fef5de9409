"""The remote backend when the team service cannot answer: an empty completion within the timeout and a
clear problem, never a hang. (Serving for real: tests/e2e/test_team_service.py.)"""

from __future__ import annotations

import socket
import threading
import time

import pytest

from copilot.core.settings import Settings
from copilot.serve.llama import available

pytestmark = pytest.mark.skipif(not available()[0], reason="the remote backend reads the vocabulary with llama.cpp")


@pytest.fixture()
def home(real_model_home, monkeypatch):
    monkeypatch.setenv("COPILOT_HOME", str(real_model_home))
    return real_model_home


def remote_settings(url: str, timeout_ms: int = 800) -> Settings:
    s = Settings(backend="remote")
    s.remote.url = url
    s.remote.timeout_ms = timeout_ms
    return s


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_no_key_and_no_url_are_clear_errors(home, monkeypatch):
    from copilot.core.types import UserInputError
    from copilot.serve.backends import load_engine

    monkeypatch.delenv("COPILOT_REMOTE_API_KEY", raising=False)
    with pytest.raises(UserInputError, match="remote.url"):
        load_engine(settings=Settings(backend="remote"))
    with pytest.raises(UserInputError, match="COPILOT_REMOTE_API_KEY"):
        load_engine(settings=remote_settings("http://127.0.0.1:9"))
    monkeypatch.setenv("COPILOT_REMOTE_API_KEY", "cpk_x")
    with pytest.raises(UserInputError, match="not an http"):
        load_engine(settings=remote_settings("ftp://x"))


def test_a_dead_service_gives_an_empty_completion_at_once(home, monkeypatch):
    from copilot.serve.backends import load_engine

    monkeypatch.setenv("COPILOT_REMOTE_API_KEY", "cpk_x")
    logs: list[str] = []
    eng = load_engine(settings=remote_settings(f"http://127.0.0.1:{_free_port()}"), log=logs.append)
    assert eng.backend == "remote" and eng.problem and "unreachable" in eng.problem
    assert logs and "completions stay empty" in logs[0]
    t0 = time.perf_counter()
    c = eng.complete("def add(a, b):\n    return ", "\n", "python")
    assert c.text == "" and c.stop_reason == "unavailable" and time.perf_counter() - t0 < 2
    assert "unreachable" in eng.problem


def test_a_silent_service_times_out_within_the_bound(home, monkeypatch):
    """A service that accepts the connection and never answers: empty after remote.timeout_ms, not a hang."""
    from copilot.serve.remote import RemoteEngine

    monkeypatch.setenv("COPILOT_REMOTE_API_KEY", "cpk_x")
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    held = []
    threading.Thread(target=lambda: [held.append(srv.accept()) for _ in range(8)], daemon=True).start()
    eng = RemoteEngine.load(settings=remote_settings(f"http://127.0.0.1:{srv.getsockname()[1]}", timeout_ms=600))
    t0 = time.perf_counter()
    c = eng.complete("def add(a, b):\n    return ", "\n", "python")
    took = time.perf_counter() - t0
    assert c.text == "" and c.stop_reason == "unavailable" and took < 1.5, took
    assert "timed out" in eng.problem
    srv.close()


def test_cancel_closes_the_stream_at_once(home, monkeypatch):
    """A newer keystroke's cancel ends a request that is waiting on the service within a few ms."""
    from copilot.serve.remote import RemoteEngine

    monkeypatch.setenv("COPILOT_REMOTE_API_KEY", "cpk_x")
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    threading.Thread(target=lambda: srv.accept(), daemon=True).start()
    eng = RemoteEngine.load(settings=remote_settings(f"http://127.0.0.1:{srv.getsockname()[1]}", timeout_ms=5000))
    cancel = threading.Event()
    threading.Timer(0.3, cancel.set).start()
    t0 = time.perf_counter()
    c = eng.complete("def add(a, b):\n    return ", "\n", "python", cancel=cancel)
    assert c.stop_reason == "cancelled" and time.perf_counter() - t0 < 1.0
    srv.close()


def test_prompts_are_the_local_engines_token_for_token(home, monkeypatch):
    """The remote backend sends exactly the prompt the local llama.cpp engine reads (minus token healing)."""
    from copilot.serve.llama import LlamaEngine
    from copilot.serve.remote import RemoteEngine

    monkeypatch.setenv("COPILOT_REMOTE_API_KEY", "cpk_x")
    s = remote_settings(f"http://127.0.0.1:{_free_port()}")
    s.completion.token_healing = False
    remote = RemoteEngine.load(settings=s)
    local = LlamaEngine.load("qwen2.5-coder-0.5b", s)
    args = ("import os\n\ndef home():\n    return os.", "\n\nprint(home())\n", None, "app/paths.py",
            (("app/util.py", "def helper():\n    pass\n"),), None)
    assert remote._prompt(*args).ids == local._prompt(*args).ids
