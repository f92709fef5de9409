"""The engine on a tiny Qwen2 model built from a config: completion, KV reuse, cancellation, adapters, explain."""

import threading

import pytest

from copilot.core.settings import Settings
from copilot.serve.explain import explain_sections
from copilot.serve.hf import Engine
from copilot.core.types import UserInputError


@pytest.fixture(scope="module")
def engine(tiny_model_dir):
    return Engine.load(str(tiny_model_dir), Settings(), device="cpu")


def test_complete_is_deterministic_and_reports(engine):
    a = engine.complete("def add(a, b):\n    return ", "\n", "python", max_new_tokens=8)
    b = engine.complete("def add(a, b):\n    return ", "\n", "python", max_new_tokens=8)
    assert a.raw == b.raw and a.text == b.text
    assert a.model == engine.model_name and a.adapter is None
    assert a.prompt_tokens > 5 and 0 < a.generated_tokens <= 8


def test_kv_reuse_matches_a_cold_cache(tiny_model_dir, engine):
    prefix = "class Stack:\n    def push(self, item):\n        self.items.app"
    engine.complete(prefix[:-3], "\n", "python", path="s.py", max_new_tokens=6)
    before = engine.stats["reused_tokens"]
    warm = engine.complete(prefix, "\n", "python", path="s.py", max_new_tokens=6)
    assert engine.stats["reused_tokens"] > before  # the common prefix was not re-read
    cold = Engine.load(str(tiny_model_dir), Settings(), device="cpu").complete(prefix, "\n", "python", path="s.py", max_new_tokens=6)
    assert warm.raw == cold.raw


def test_cancel_before_start_and_within_one_token(engine):
    ev = threading.Event()
    ev.set()
    c = engine.complete("x = ", "\n", "python", cancel=ev)
    assert c.stop_reason == "cancelled" and c.text == ""
    ev2 = threading.Event()
    seen = []

    def on_text(t):
        seen.append(t)
        if len(seen) == 3:
            ev2.set()

    ids = engine.tokenizer.encode("def f(x):", add_special_tokens=False)
    engine._stop_ids, saved = [], engine._stop_ids  # make sure nothing but the cancel stops it
    try:
        out, reason = engine._generate(ids, max_new_tokens=50, cache_key=None, on_text=on_text, cancel=ev2)
    finally:
        engine._stop_ids = saved
    assert reason == "cancelled" and len(out) == 3


def test_adapter_switching_per_call(tmp_path, tiny_model_dir):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    peft_model = get_peft_model(base, LoraConfig(r=4, lora_alpha=64, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    peft_model.save_pretrained(tmp_path / "lora")
    eng = Engine.load(str(tiny_model_dir), Settings(), device="cpu")
    prompt = ("def is_palindrome(s):\n    return ", "\n")
    base_out = eng.complete(*prompt, max_new_tokens=10, multiline=True).raw
    key = eng.load_adapter(str(tmp_path / "lora"), name="team")
    assert key == "team" and eng.adapters == ["team"]
    with_adapter = eng.complete(*prompt, adapter="team", max_new_tokens=10, multiline=True)
    assert with_adapter.adapter == "team"
    assert eng.complete(*prompt, max_new_tokens=10, multiline=True).raw == base_out  # adapter=None is the base exactly
    assert with_adapter.raw != base_out
    with pytest.raises(UserInputError, match="unknown adapter 'other'"):
        eng.complete(*prompt, adapter="other")
    # A new version under the same key replaces the old one (what the nightly hot swap does).
    second = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_model_dir),
                            LoraConfig(r=4, lora_alpha=64, target_modules=["q_proj"], init_lora_weights=False))
    second.save_pretrained(tmp_path / "lora2")
    eng.load_adapter(str(tmp_path / "lora2"), name="team")
    assert eng.adapters == ["team"] and eng.adapter_source("team").endswith("lora2")
    assert eng.complete(*prompt, adapter="team", max_new_tokens=10, multiline=True).raw != with_adapter.raw
    eng.unload_adapter("team")
    assert eng.adapters == []
    assert eng.complete(*prompt, max_new_tokens=10, multiline=True).raw == base_out


def test_explain_streams_the_text(engine):
    chunks = []
    exp = engine.explain("def add(a, b):\n    return a + b\n", "m.py", symbol="add", on_text=chunks.append, max_new_tokens=12)
    assert chunks and "".join(chunks).strip() == exp.text
    assert exp.symbol == "add" and exp.path == "m.py"


def test_explain_sections_overview_then_units():
    src = "import os\n\n\ndef a():\n    pass\n\n\nclass B:\n    def m(self):\n        pass\n"
    secs = list(explain_sections(src, "x.py", Settings()))
    assert [s[0] for s in secs] == [None, "a", "B"]
    only = list(explain_sections(src, "x.py", Settings(), symbol="B.m"))
    assert [s[0] for s in only] == ["B.m"] and "def m" in only[0][1]
    with pytest.raises(UserInputError, match="no function or class named 'zz'"):
        list(explain_sections(src, "x.py", Settings(), symbol="zz"))
    s = Settings()
    s.explain.max_input_chars = 20
    assert list(explain_sections(src, "x.py", s))[0][3] is True  # bounded input is flagged


def test_model_without_fim_refuses_completion(tmp_path):
    from helpers.tiny import make_tiny_model

    d = make_tiny_model(tmp_path / "chat", family="none", hidden_size=32, layers=1)
    eng = Engine.load(str(d), Settings(), device="cpu")
    with pytest.raises(UserInputError, match="no fill-in-the-middle tokens"):
        eng.complete("x = ", "\n")
    assert eng.explain("x = 1", "a.py", max_new_tokens=3).path == "a.py"  # explain still works


def test_budget_cut_prefix_start_does_not_slide_while_typing(engine):
    body = "".join(f"value_{i} = compute({i}, factor={i * 3})\n" for i in range(400))
    typed = "".join(f"total += value_{i}\n" for i in range(12))
    starts = []
    for n in range(1, len(typed), 7):
        text = body + typed[:n]
        p, _ = engine._budget(text, "\n", 256, 0.25, doc="t.py")
        assert len(engine.tokenizer.encode(p, add_special_tokens=False)) <= 255 and p.endswith(typed[:n])
        start = len(text) - len(p)
        assert text[start - 1] == "\n"  # a window starts at a line start
        starts.append(start)
    jumps = sum(a != b for a, b in zip(starts, starts[1:]))
    # it moves on only after about a quarter of the budget was typed (the tiny tokenizer: ~1 token a character)
    assert 1 <= jumps <= len(typed) // 50, (jumps, len(starts))
    # without a document (one-off CLI calls, evaluation) the window ends at the cursor and fills the budget
    p, _ = engine._budget(body, "\n", 256, 0.25)
    assert len(engine.tokenizer.encode(p, add_special_tokens=False)) > 255 * 0.9
    # text above the window changed: a fresh window
    p2, _ = engine._budget("# edited\n" + body[body.index("\n") + 1:] + typed, "\n", 256, 0.25, doc="t.py")
    assert p2.endswith(typed)


def test_auto_order_prefers_prefix_first_when_suffix_first_evals_worse(engine):
    def ev(order, edit_sim, backend="llama.cpp"):
        return {"order": order, "backend": backend, "n": 100, "dataset_fingerprint": "d1",
                "test_fingerprint": f"{order}hash-fim_file", "adapter": {"fim": {"edit_sim": edit_sim, "exact_match": 1.0}}}

    meta = {"training": {"fim_orders": ["psm", "spm"]}, "metrics": {}}
    engine._adapter_meta["probe"] = meta
    try:
        assert engine.preferred_order("probe") == "spm"  # trained on it, no evals yet: trust the training
        meta["metrics"] = {"a": ev("psm", 48.3), "b": ev("spm", 47.0)}
        assert engine.preferred_order("probe") == "spm"  # within the tolerance: the fast order
        meta["metrics"] = {"a": ev("psm", 48.3), "b": ev("spm", 41.4)}
        assert engine.preferred_order("probe") == "psm"  # clearly worse: quality first
        meta["metrics"] = {"a": ev("psm", 48.3), "b": ev("spm", 41.4, backend="transformers")}
        assert engine.preferred_order("probe") == "spm"  # not comparable (other backend)
        assert engine.preferred_order(None) == "psm"  # the base model never learned suffix-first
        a, b = ev("psm", 48.3), ev("spm", 41.4)
        a["test_fingerprint"], b["test_fingerprint"] = "psmhash", "spmhash"  # all kinds: no "-kinds" part
        meta["metrics"] = {"a": a, "b": b}
        assert engine.preferred_order("probe") == "psm"
    finally:
        del engine._adapter_meta["probe"]


def test_suffix_first_prompt_opens_with_the_header_only_for_adapters_that_learned_it(engine):
    ctx = (("app/util.py", "def helper(amount):\n    return amount * 2\n"),)
    engine._adapter_meta["old"] = {"training": {"fim_orders": ["psm", "spm"]}}
    engine._adapter_meta["new"] = {"training": {"fim_orders": ["psm", "spm"], "spm_header": True}}
    try:
        def text(adapter, prefix="x = hel"):
            pr = engine._prompt(prefix, "\n", adapter, "app/main.py", ctx, "spm")
            return engine.tokenizer.decode(pr.ids), pr

        old, _ = text("old")
        new, pr = text("new")
        assert "app/util.py" not in old and old.startswith("<|fim_suffix|>")
        assert new.startswith("<|file_sep|>app/util.py\ndef helper(amount):") and "<|fim_suffix|>" in new
        # the header and the suffix come before the cursor's line: typing on keeps them (and their cache)
        typed, _ = text("new", "x = help")
        head = new[: new.index("<|fim_prefix|>")]
        assert typed.startswith(head) and pr.warm_until >= len(engine.tokenizer.encode(head, add_special_tokens=False)) - 2
        assert engine.spm_header(None) is False  # the base model never learned suffix-first
    finally:
        del engine._adapter_meta["old"], engine._adapter_meta["new"]
