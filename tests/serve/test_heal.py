"""Token healing (copilot.serve.heal): what the prompt backs over, which tokens may reproduce it for byte-level
BPE and SentencePiece vocabularies, and, on the embedded model through llama.cpp, ghost text that completes the
identifier under the cursor in several languages and both FIM orders."""

import pytest

from copilot.core.settings import Settings
from copilot.serve.heal import Constraint, HealIndex, heal_index_for, split_tail


@pytest.mark.parametrize("prefix, head, tail", [
    ("x = blocked_outp", "x =", " blocked_outp"),
    ("        self.items.app", "        self.items", ".app"),
    ("foo(bar", "foo", "(bar"),
    ("\tfmt.Printl", "\tfmt", ".Printl"),
    ("return\n\tval", "return\n", "\tval"),
    ("def f():\r\n    ab", "def f():\r\n   ", " ab"),
    ("line\nword", "line\n", "word"),
    ("word", "", "word"),
    ("x = 12", "x =", " 12"),
    ("naïve_na", "naï", "ve_na"),  # only ASCII identifier characters are healed
    ("return ", "return ", ""),  # on a boundary: nothing to heal
    ("call(", "call(", ""),
    ("", "", ""),
])
def test_split_tail(prefix, head, tail):
    assert split_tail(prefix) == (head, tail)
    assert head + tail == prefix


def test_a_long_identifier_heals_only_its_end():
    name = "a" * 50
    head, tail = split_tail("x = " + name)
    assert len(tail) == 32 and head + tail == "x = " + name


def _tokenizers():
    """Byte-level BPE (the tiny Qwen-style tokenizer) and a SentencePiece-style (Metaspace) BPE, both trained on code."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from helpers.tiny import _CORPUS

    out = {}
    for kind in ("bytes", "spm"):
        tok = Tokenizer(models.BPE())
        if kind == "bytes":
            tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
            tok.decoder = decoders.ByteLevel()
            alphabet = pre_tokenizers.ByteLevel.alphabet()
        else:
            tok.pre_tokenizer = pre_tokenizers.Metaspace(prepend_scheme="never")
            tok.decoder = decoders.Metaspace(prepend_scheme="never")
            alphabet = list("▁\t" + "".join(chr(c) for c in range(33, 127)))
        tok.train_from_iterator([_CORPUS] * 4, trainer=trainers.BpeTrainer(vocab_size=500, initial_alphabet=alphabet))
        out[kind] = PreTrainedTokenizerFast(tokenizer_object=tok)
    return out


@pytest.fixture(scope="module")
def toks():
    return _tokenizers()


@pytest.mark.parametrize("kind", ["bytes", "spm"])
def test_index_texts_are_what_the_tokenizer_decodes(toks, kind):
    tok = toks[kind]
    idx = HealIndex(tok.get_vocab())
    assert len(idx) > 100
    for tid, text in idx.text.items():
        decoded = tok.decode([tid])
        # Metaspace decoding drops a leading space of the first token of a text: compare after it.
        assert decoded == text or (kind == "spm" and decoded == text.lstrip(" ")), (tid, text, decoded)
    assert any(t.startswith(" ") for t in idx.text.values())  # word tokens with their leading space


@pytest.mark.parametrize("kind", ["bytes", "spm"])
def test_constraint_only_allows_tokens_that_reproduce_the_tail(toks, kind):
    tok = toks[kind]
    idx = HealIndex(tok.get_vocab())
    tail = " items.app"
    c = Constraint(idx, tail)
    out: list[int] = []
    while (allowed := c(out)) is not None:
        assert allowed
        for tid in allowed:
            text = idx.text[tid]
            done = "".join(idx.text[i] for i in out)
            rest = tail[len(done):]
            assert rest.startswith(text) or text.startswith(rest)
        out.append(min(allowed, key=lambda t: len(idx.text[t])))  # the shortest: the longest path to covering it
    assert "".join(idx.text[i] for i in out).startswith(tail)
    assert c(out) is None


def test_index_is_built_once_per_tokenizer(toks):
    tok = toks["bytes"]
    assert heal_index_for(tok) is heal_index_for(tok)


def test_tiny_engine_reproduces_the_tail_and_returns_only_what_follows(tiny_model_dir):
    """A random model would continue anywhere: healing forces its first tokens to spell the typed word."""
    from copilot.serve.hf import Engine

    eng = Engine.load(str(tiny_model_dir), Settings(), device="cpu")
    c = eng.complete("class Stack:\n    def push(self, item):\n        self.items.app", "\n", "python", multiline=False)
    assert c.healed == ".app"
    assert c.generated_tokens >= 1 and not c.raw.startswith(".app")
    eng.settings.completion.token_healing = False
    assert eng.complete("x = 1\n", "\n", "python").healed == ""


# ---------------------------------------------------------------- the embedded model, llama.cpp

GOLDEN = [  # (language, prefix, suffix, what the ghost text starts with)
    ("python", "import json\n\ndef save(data, path):\n    with open(path, 'w') as fh:\n        json.dum", "\n", "p("),
    ("python", "class Stack:\n    def __init__(self):\n        self.items = []\n\n    def push(self, item):\n        self.items.app", "\n", "end(item)"),
    ("python", "for i in ran", "\n    print(i)\n", "ge("),
    ("python", "def area(width, height):\n    return width * hei", "\n", "ght"),
    ("javascript", "function show(xs) {\n  for (const x of xs) {\n    console.lo", "\n  }\n}\n", "g("),
    ("go", "package main\n\nimport \"fmt\"\n\nfunc main() {\n\tfmt.Printl", "\n}\n", "n("),
    ("rust", "fn main() {\n    let v: Vec<i32> = Vec::ne", "\n}\n", "w()"),
]


@pytest.fixture(scope="module")
def llama(real_model_home):
    from copilot.serve.llama import LlamaEngine, available

    if not available()[0]:
        pytest.skip(available()[1])
    mp = pytest.MonkeyPatch()
    mp.setenv("COPILOT_HOME", str(real_model_home))
    try:
        yield LlamaEngine.load("qwen2.5-coder-0.5b", Settings())
    finally:
        mp.undo()


@pytest.mark.slow
@pytest.mark.parametrize("order", ["psm", "spm"])
@pytest.mark.parametrize("lang, prefix, suffix, start", GOLDEN, ids=[f"{g[0]}-{g[3]}" for g in GOLDEN])
def test_mid_identifier_ghost_text_completes_the_identifier(llama, order, lang, prefix, suffix, start):
    llama.settings.completion.token_healing = True
    c = llama.complete(prefix, suffix, lang, order=order)
    assert c.healed and prefix.endswith(c.healed)
    assert c.text.startswith(start), (c.text, c.raw)


@pytest.mark.slow
def test_without_healing_the_same_cursors_are_garbled(llama):
    """What the golden cases guard against: the plain prompt ends inside a token and the model starts a new one."""
    llama.settings.completion.token_healing = False
    try:
        wrong = [g for g in GOLDEN for order in ("psm", "spm")
                 if not llama.complete(g[1], g[2], g[0], order=order).text.startswith(g[3])]
    finally:
        llama.settings.completion.token_healing = True
    assert len(wrong) >= 5


@pytest.mark.slow
@pytest.mark.parametrize("prefix", ["def is_palindrome(s):\n    return ", "xs = sorted(", "total = 0\n"])
def test_on_a_boundary_healed_and_plain_prompts_agree(llama, prefix):
    out = []
    for heal in (True, False):
        llama.settings.completion.token_healing = heal
        c = llama.complete(prefix, "\n", "python", order="psm")
        out.append((c.text, c.prompt_tokens, c.healed))
    llama.settings.completion.token_healing = True
    assert out[0] == out[1] and out[0][2] == ""


@pytest.mark.slow
def test_typing_on_inside_a_word_reuses_the_whole_prompt(llama):
    """The healed prompt ends before the word, so the next keystroke in the word reads no prompt token again."""
    prefix = "import json\n\ndef save(data, path):\n    with open(path, 'w') as fh:\n        json.du"
    llama.complete(prefix, "\n", "python", path="heal-cache.py", order="spm")
    c = llama.complete(prefix + "m", "\n", "python", path="heal-cache.py", order="spm")
    assert c.text.startswith("p(")
    assert llama.last_trace["prefilled"] == 1  # the one token always evaluated for fresh logits
