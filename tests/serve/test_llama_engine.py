"""The llama.cpp backend on the embedded model: completions, KV reuse equal to a cold cache, document
switching, cancellation within one token, and a LoRA adapter converted to GGUF agreeing with transformers."""

import threading

import pytest

from copilot.core.settings import Settings
from copilot.serve.llama import available

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not available()[0], reason=available()[1])]

DOC = '''import os


def read_config(path):
    """Read KEY=VALUE lines from path into a dict."""
    result = {}
    with open(path) as fh:
        for line in fh:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            key, _, value = line.partition("=")
'''
SUFFIX = "\n    return result\n"


@pytest.fixture(scope="module")
def home(real_model_home):
    mp = pytest.MonkeyPatch()
    mp.setenv("COPILOT_HOME", str(real_model_home))
    yield real_model_home
    mp.undo()


@pytest.fixture(scope="module")
def llama(home):
    from copilot.serve.llama import LlamaEngine

    return LlamaEngine.load("qwen2.5-coder-0.5b", Settings())


def test_completes_is_palindrome(llama):
    c = llama.complete("def is_palindrome(s):\n    return ", "\n", "python")
    assert llama.backend == "llama.cpp" and llama.fim_family == "qwen"
    assert c.text.startswith("s == s[::-1]")


@pytest.mark.parametrize("order", ["psm", "spm"])
def test_reused_cache_equals_cold_cache(llama, order):
    prefix = DOC + "            result[key.strip()] = "
    llama.complete(DOC + "            result[ke", SUFFIX, "python", path="warm.py", order=order)
    before = dict(llama.stats)
    warm = llama.complete(prefix, SUFFIX, "python", path="warm.py", order=order)
    reused = llama.stats["reused_tokens"] - before["reused_tokens"]
    assert reused > 0
    if order == "spm":  # typing only appended to the prompt: almost all of it comes from the cache
        assert reused >= warm.prompt_tokens - 8
    cold = llama.complete(prefix, SUFFIX, "python", path=f"cold-{order}.py", order=order)
    assert warm.text == cold.text and warm.text.strip()


def test_typing_in_a_long_file_keeps_the_suffix_first_cache(llama):
    """A prefix longer than the context budget: typing must not slide the prompt's start (which would
    invalidate everything after the suffix), so each keystroke re-reads only a few tokens."""
    body = "".join(f"def helper_{i}(x):\n    return x * {i} + len(str(x))\n\n\n" for i in range(60))
    typed = "def parse(line):\n    key, _, value = line.partition('=')\n    return key.strip(), value.strip()"
    llama.complete(body + typed[:20], SUFFIX, "python", path="long.py", order="spm")
    for n in range(21, len(typed), 3):
        before = dict(llama.stats)
        c = llama.complete(body + typed[:n], SUFFIX, "python", path="long.py", order="spm")
        prefilled = llama.stats["prefilled_tokens"] - before["prefilled_tokens"]
        assert c.prompt_tokens > 300 and prefilled <= 4, (n, prefilled)


def test_typing_past_the_servers_prefix_bound_keeps_the_cache(llama):
    """The server hands the engine at most ~32 KiB before the cursor; that text must start at the same place
    while the user types, or the prompt window's anchor breaks and every keystroke re-reads the window."""
    from lsp.suggest import MAX_PROMPT_CHARS, bounded_start

    body = "".join(f"def helper_{i}(x):\n    return x * {i} + len(str(x))\n\n\n" for i in range(900))
    assert len(body) > MAX_PROMPT_CHARS + 8192
    typed = "def parse(line):\n    key, _, value = line.partition('=')\n    return key.strip(), value.strip()"

    def complete(n):
        prefix = body + typed[:n]
        return llama.complete(prefix[bounded_start(len(prefix)):], SUFFIX, "python", path="huge.py", order="spm")

    complete(20)
    for n in range(21, len(typed), 4):
        before = dict(llama.stats)
        c = complete(n)
        prefilled = llama.stats["prefilled_tokens"] - before["prefilled_tokens"]
        assert c.prompt_tokens > 300 and prefilled <= 4, (n, prefilled)


def test_switching_documents_restores_each_cache(llama):
    a = DOC + "            result[key] = "
    b = "def add(a, b):\n    return "
    first = llama.complete(a, SUFFIX, "python", path="a.py")
    llama.complete(b, "\n", "python", path="b.py")
    before = llama.stats["reused_tokens"]
    again = llama.complete(a, SUFFIX, "python", path="a.py")
    assert llama.stats["reused_tokens"] - before >= again.prompt_tokens - 2  # a.py's cache came back
    assert again.text == first.text


def test_cancel_stops_within_one_token(llama):
    cancel = threading.Event()
    ids = llama.tokenizer.encode("# A long story about a dragon\n")

    def stop_after_three(out, text):
        if len(out) == 3:
            cancel.set()
        return False

    with llama.lock:
        out, reason = llama._generate(ids, max_new_tokens=40, cache_key=("x", "c.py", "psm"),
                                      should_stop=stop_after_three, cancel=cancel)
    assert reason == "cancelled" and len(out) == 3
    c = llama.complete("def f():\n    return ", "\n", "python", path="c.py", cancel=cancel)
    assert c.stop_reason == "cancelled" and c.text == "" and c.generated_tokens == 0
    after = llama.complete("def is_palindrome(s):\n    return ", "\n", "python", path="c.py")
    assert after.text.startswith("s == s[::-1]")  # a cancelled generation leaves no stale state behind


def test_cancel_during_a_long_prefill_keeps_what_was_read(llama, monkeypatch):
    """A cold prompt is read in chunks: cancellation lands within one chunk, and the next request for the
    document continues from the tokens already read — with the same completion as a cold cache."""
    body = "".join(f"def helper_{i}(x):\n    return x * {i}\n\n\n" for i in range(30)) + "def twice(x):\n    return "
    cancel = threading.Event()
    real_eval, chunks = llama._eval, []

    def eval_then_cancel(tokens):
        real_eval(tokens)
        chunks.append(len(tokens))
        if len(chunks) == 2:
            cancel.set()

    monkeypatch.setattr(llama, "_eval", eval_then_cancel)
    c = llama.complete(body, "\n", "python", path="prefill.py", order="psm", cancel=cancel)
    monkeypatch.undo()
    # the part before the cursor's line is read in WARM_CHUNK pieces, cancellable between them
    assert c.stop_reason == "cancelled" and chunks == [llama.WARM_CHUNK] * 2 and c.prompt_tokens > 3 * llama.WARM_CHUNK
    before = llama.stats["reused_tokens"]
    warm = llama.complete(body, "\n", "python", path="prefill.py", order="psm")
    assert llama.stats["reused_tokens"] - before == 2 * llama.WARM_CHUNK
    cold = llama.complete(body, "\n", "python", path="prefill-cold.py", order="psm")
    assert warm.text == cold.text and warm.text.strip()


BODY = "".join(f"def helper_{i}(x):\n    return x * {i}\n\n\n" for i in range(30))


@pytest.mark.parametrize("order", ["psm", "spm"])
def test_a_cancelled_request_reads_up_to_the_cursor_line_while_nothing_else_waits(llama, order):
    """Typing cancels every request before it finishes a cold prompt; the part before the cursor's line
    is still read (while keep_warming() says nothing else waits), so the next keystroke re-reads one line."""
    cancel = threading.Event()
    cancel.set()  # the next keystroke arrived before this request even started
    line = "def twice(x):\n    return x"
    c = llama.complete(BODY + line, "\n", "python", path=f"warm-{order}.py", order=order, cancel=cancel,
                       keep_warming=lambda: True)
    assert c.stop_reason == "cancelled" and c.generated_tokens == 0
    before = dict(llama.stats)
    nxt = llama.complete(BODY + line + " +", "\n", "python", path=f"warm-{order}.py", order=order)
    prefilled = llama.stats["prefilled_tokens"] - before["prefilled_tokens"]
    assert nxt.prompt_tokens > 300 and prefilled <= 16, prefilled

    # something else waits for the model: the cancelled request stops at once and reads nothing
    c = llama.complete(BODY + line, "\n", "python", path=f"nowarm-{order}.py", order=order, cancel=cancel,
                       keep_warming=lambda: False)
    before = dict(llama.stats)
    llama.complete(BODY + line + " +", "\n", "python", path=f"nowarm-{order}.py", order=order)
    assert llama.stats["reused_tokens"] - before["reused_tokens"] == 0

    # it is asked before every chunk: another document's request stops the reading within one chunk
    answers = iter([True, True, False])
    llama.complete(BODY + line, "\n", "python", path=f"part-{order}.py", order=order, cancel=cancel,
                   keep_warming=lambda: next(answers))
    before = dict(llama.stats)
    llama.complete(BODY + line, "\n", "python", path=f"part-{order}.py", order=order)
    assert llama.stats["reused_tokens"] - before["reused_tokens"] == 2 * llama.WARM_CHUNK


@pytest.mark.parametrize("order", ["psm", "spm"])
@pytest.mark.parametrize("cursor_line", ["    return x", "    ", ""])
def test_stable_tokens_are_shared_with_the_next_keystroke(llama, order, cursor_line):
    """What a cancelled request reads ahead must be what the next keystroke's prompt starts with."""
    fim = llama.fim

    def prompt_ids(prefix):
        return llama.tokenizer.encode(fim.build(prefix, "\n\nprint(twice(2))\n", order=order))

    prefix = BODY + "def twice(x):\n" + cursor_line
    stable = llama._stable_tokens(fim, fim.build(prefix, "\n\nprint(twice(2))\n", order=order), prefix,
                                  "\n\nprint(twice(2))\n", order, None, ())
    assert stable > 250
    now = prompt_ids(prefix)
    for typed in ("a", " ", "(", "\n"):
        assert prompt_ids(prefix + typed)[:stable] == now[:stable], typed


PROMPTS = [
    ("def fibonacci(n):\n    ", "\n"),
    ("import json\n\ndef load(path):\n    with open(path) as fh:\n        return ", "\n"),
    ("class Stack:\n    def __init__(self):\n        self.items = ", "\n"),
    ("for i in range(10):\n    if i % 2 == 0:\n        ", "\n"),
    ("def mean(xs):\n    return ", "\n"),
    ("def greet(name):\n    print(", ")\n"),
]


@pytest.fixture(scope="module")
def rand_adapter(home, tmp_path_factory):
    """A random, seeded LoRA strong enough to change outputs, and the transformers engine serving it."""
    import torch
    from peft import LoraConfig, get_peft_model

    from copilot.serve.hf import Engine

    ref = Engine.load("qwen2.5-coder-0.5b", Settings(), device="cpu")
    torch.manual_seed(0)
    pm = get_peft_model(ref.model, LoraConfig(r=8, lora_alpha=4, init_lora_weights=False,
                                              target_modules=["q_proj", "v_proj", "up_proj", "down_proj"]))
    ad = tmp_path_factory.mktemp("adapter") / "rand-adapter"
    pm.save_pretrained(str(ad))
    ref.model = pm.unload()  # back to the plain base for the engine's own adapter loading
    ref.load_adapter(str(ad), name="rand")
    expected = [ref.complete(p, s, "python", adapter="rand", max_new_tokens=12).text for p, s in PROMPTS]
    return ad, expected


def check_merged_file(base_path, lora_path, merged_path):
    """Adapted weights = base + (alpha / r) * B @ A within Q8_0 rounding; every other tensor byte-identical."""
    import gguf
    import numpy as np
    from gguf import quants

    base, lora, merged = (gguf.GGUFReader(str(p)) for p in (base_path, lora_path, merged_path))
    alpha = float(lora.fields["adapter.lora.alpha"].contents())
    ab = {t.name: np.asarray(t.data, dtype=np.float32) for t in lora.tensors}
    got = {t.name: t for t in merged.tensors}
    assert len(got) == len(base.tensors)
    adapted = 0
    for t in base.tensors:
        m = got[t.name]
        if t.name + ".lora_a" in ab:
            a, b = ab[t.name + ".lora_a"], ab[t.name + ".lora_b"]
            want = quants.dequantize(t.data, t.tensor_type).reshape(b.shape[0], a.shape[1]) + alpha / a.shape[0] * (b @ a)
            have = quants.dequantize(m.data, m.tensor_type).reshape(want.shape)
            assert m.tensor_type.name == "Q8_0"
            assert np.abs(have - want).max() <= np.abs(want).max() / 127 + 1e-6  # Q8_0: 1/127 of the block's range
            adapted += 1
        else:
            assert m.tensor_type == t.tensor_type and np.array_equal(np.asarray(m.data), np.asarray(t.data)), t.name
    assert adapted == sum(1 for k in ab if k.endswith(".lora_a")) > 0
    assert merged.fields["tokenizer.ggml.tokens"].contents()[:50] == base.fields["tokenizer.ggml.tokens"].contents()[:50]


@pytest.mark.parametrize("merge", [True, False], ids=["merged", "runtime-lora"])
def test_gguf_adapter_matches_transformers(home, llama, rand_adapter, merge):
    """The adapter converted to a LoRA GGUF gives the same greedy completions through llama.cpp as through
    transformers/peft — merged into the base and re-quantized like it (the default), or applied at run time."""
    from copilot.serve.llama import LlamaEngine

    ad, expected = rand_adapter
    eng = llama if merge else LlamaEngine.load("qwen2.5-coder-0.5b", Settings(adapter_merge=False))
    assert eng.settings.adapter_merge is merge
    eng.load_adapter(str(ad), name="rand")
    got = [eng.complete(p, s, "python", adapter="rand", max_new_tokens=12).text for p, s in PROMPTS]
    if merge:  # the served model is the merged file
        assert eng._loaded_path.parent.name == "merged-gguf" and eng._loaded_path != eng.model_path
        check_merged_file(eng.model_path, eng._lora_files["rand"], eng._loaded_path)
    base = [eng.complete(p, s, "python", max_new_tokens=12).text for p, s in PROMPTS]
    assert eng._loaded_path == eng.model_path
    same = sum(t == g for t, g in zip(expected, got))
    changed = sum(g != b for g, b in zip(got, base))
    assert changed >= 2, "the adapter should change some completions"
    assert same >= len(PROMPTS) - 1, f"only {same}/{len(PROMPTS)} completions agree: {got} vs {expected}"
    eng.unload_adapter("rand")
    assert eng.adapters == []


def test_cache_reuse_shifts_the_runs_a_new_prompt_repeats(llama):
    """After a cut in the middle of the previous prompt (a cursor that moved down past some lines), the cached
    tokens after the cut are shifted into place instead of re-read (completion.cache_reuse); with it off they
    are read again."""
    tok = llama.tokenizer
    head = tok.encode(DOC)
    gone = tok.encode("\n# a block the new prompt no longer holds\nVALUES = [1, 2, 3]\n")
    tail = tok.encode("\n\ndef write_config(path, cfg):\n    with open(path, 'w') as fh:\n        for k, v in cfg.items():\n            fh.write(f'{k}={v}\\n')\n")
    read = {}
    for reuse in (32, 0):
        llama.settings.completion.cache_reuse = reuse
        try:
            llama._generate(head + gone + tail, max_new_tokens=1, cache_key=(None, "shift.py", "psm"))
            before = dict(llama.stats)
            out, _ = llama._generate(head + tail, max_new_tokens=4, cache_key=(None, "shift.py", "psm"))
        finally:
            llama.settings.completion.cache_reuse = 32
        read[reuse] = llama.stats["prefilled_tokens"] - before["prefilled_tokens"]
        assert len(out) == 4
        if reuse:
            assert llama.stats["shifted_tokens"] - before.get("shifted_tokens", 0) == len(tail) - 1
        llama._drop_caches()
    assert read[32] == 1 and read[0] == len(tail)
