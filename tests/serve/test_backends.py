"""Backend choice and the clean fallback to transformers when llama.cpp cannot serve."""

import sys

import pytest

from copilot.core.settings import Settings


def test_disabled_llama_falls_back_to_transformers(tiny_model_dir, monkeypatch):
    from copilot.serve.backends import load_engine, plan

    monkeypatch.setenv("COPILOT_DISABLE_LLAMA_CPP", "1")
    backend, why = plan(Settings(), "cpu")
    assert backend == "transformers" and "COPILOT_DISABLE_LLAMA_CPP" in why
    s = Settings()
    s.backend = "llama.cpp"
    notes = []
    eng = load_engine(str(tiny_model_dir), settings=s, device="cpu", log=notes.append)
    assert eng.backend == "transformers"
    assert notes and "llama.cpp backend unavailable" in notes[0] and "disabled" in notes[0]
    assert eng.complete("def f(x):\n    return ", "\n", "python", max_new_tokens=3).stop_reason


def test_missing_llama_cpp_package_is_reported(monkeypatch):
    from copilot.serve.llama import BackendUnavailable, LlamaEngine, available

    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # import fails as if not installed
    ok, why = available()
    assert not ok and "llama-cpp-python is not installed" in why
    with pytest.raises(BackendUnavailable, match="not installed"):
        LlamaEngine.load("qwen2.5-coder-0.5b", Settings())


def test_model_without_gguf_is_served_by_transformers(tiny_model_dir, monkeypatch):
    from copilot.serve import llama as engine_llama
    from copilot.serve.backends import load_engine

    monkeypatch.setattr(engine_llama, "available", lambda: (True, "test"))
    s = Settings()
    s.backend = "llama.cpp"
    notes = []
    eng = load_engine(str(tiny_model_dir), settings=s, device="cpu", log=notes.append)
    assert eng.backend == "transformers"
    assert "no GGUF file" in notes[0]


def test_gpu_device_and_explicit_transformers_skip_llama(monkeypatch):
    from copilot.serve import llama as engine_llama
    from copilot.serve.backends import plan

    monkeypatch.setattr(engine_llama, "available", lambda: (True, "test"))
    assert plan(Settings(), "cpu")[0] == "llama.cpp"
    assert plan(Settings(), "cuda")[0] == "transformers"
    s = Settings()
    s.backend = "transformers"
    assert plan(s, "cpu") == ("transformers", "backend = transformers in the settings")


def test_bad_backend_setting_is_a_clear_error(monkeypatch):
    from copilot.core.settings import load_settings
    from copilot.core.types import UserInputError

    with pytest.raises(UserInputError, match="backend"):
        load_settings(env={"COPILOT_BACKEND": "onnx"})
    with pytest.raises(UserInputError, match="completion.order"):
        load_settings(env={"COPILOT_COMPLETION_ORDER": "pms"})
