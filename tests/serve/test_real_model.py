"""The embedded default model for real: Qwen2.5-Coder-0.5B from the PyPI parts, converted once and cached.

Slow (the first conversion takes about a minute); CI runs these too, with COPILOT_TEST_HOME keeping the
converted cache for every test that needs the real model."""

import json
import re

import pytest

from copilot.core.settings import Settings

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def real_engine(real_model_home):
    mp = pytest.MonkeyPatch()
    mp.setenv("COPILOT_HOME", str(real_model_home))
    from copilot.serve.hf import Engine

    try:
        yield Engine.load("qwen2.5-coder-0.5b", Settings(), device="cpu")
    finally:
        mp.undo()


def test_conversion_is_verified_and_cached(real_engine, real_model_home, monkeypatch):
    from copilot.models import packaged as models

    monkeypatch.setenv("COPILOT_HOME", str(real_model_home))
    assert models.cache_state("qwen2.5-coder-0.5b") == "ready"
    meta = json.loads((models.converted_dir("qwen2.5-coder-0.5b") / "copilot-model.json").read_text())
    assert meta["gguf_sha256"] == models.PACKAGED["qwen2.5-coder-0.5b"].sha256
    assert real_engine.fim_family == "qwen"
    assert real_engine.tokenizer.convert_tokens_to_ids("<|fim_middle|>") == 151660


def test_completes_is_palindrome(real_engine):
    c = real_engine.complete("def is_palindrome(s):\n    return ", "\n", "python")
    assert re.search(r"s\s*==\s*s\[::-1\]|s\[::-1\]\s*==\s*s|reversed\(s\)", c.text), c.text
    assert "\n" not in c.text  # finishing a return line gives one line, not the rest of a script


def test_multiline_body_stops_at_the_block(real_engine):
    c = real_engine.complete("def fib(n):\n    ", "\n\nprint(fib(10))\n", "python", multiline=True)
    assert "fib(n" in c.text and "print(fib(10))" not in c.text
    assert all(not ln.strip() or ln.startswith(" ") for ln in c.text.split("\n")[1:])  # stays inside the body


def test_explains_a_small_file(real_engine):
    src = "def is_palindrome(s):\n    return s == s[::-1]\n"
    chunks = []
    exp = real_engine.explain(src, "pal.py", symbol="is_palindrome", on_text=chunks.append, max_new_tokens=60)
    assert "palindrome" in exp.text.lower() or "reverse" in exp.text.lower(), exp.text
    assert len(chunks) > 1 and "".join(chunks).strip() == exp.text  # streamed a sentence at a time: the stream is the text


@pytest.mark.parametrize("order", ["psm", "spm"])
@pytest.mark.parametrize("prefix, suffix, start", [
    ("for i in ran", "\n    print(i)\n", "ge("),
    ("class Stack:\n    def __init__(self):\n        self.items = []\n\n    def push(self, item):\n        self.items.app", "\n", "end(item)"),
])
def test_transformers_engine_heals_mid_identifier_cursors(real_engine, order, prefix, suffix, start):
    """Token healing on the transformers engine too: the ghost text continues the identifier under the cursor."""
    c = real_engine.complete(prefix, suffix, "python", order=order)
    assert c.healed and c.text.startswith(start), (c.text, c.raw)
