"""FIM format detection from tokenizer special tokens, prompt layout, and stop ids."""

import pytest

from copilot.prompts.formats import detect_fim, explain_prompt, fim_format_for, stop_token_ids
from helpers.tiny import make_tiny_model
from copilot.core.types import UserInputError


@pytest.fixture(scope="module")
def tokenizers(tmp_path_factory):
    from transformers import AutoTokenizer

    out = {}
    for fam in ("qwen", "starcoder", "deepseek", "codellama", "none"):
        d = make_tiny_model(tmp_path_factory.mktemp(fam), family=fam, hidden_size=32, layers=1)
        out[fam] = AutoTokenizer.from_pretrained(d)
    return out


@pytest.mark.parametrize("family,first", [
    ("qwen", "<|fim_prefix|>"), ("starcoder", "<fim_prefix>"), ("deepseek", "<｜fim▁begin｜>"), ("codellama", "<PRE>"),
])
def test_family_detected_from_special_tokens(tokenizers, family, first):
    fmt = fim_format_for(tokenizers[family])
    assert fmt.family == family
    assert fmt.build("a = ", "\nb = 2").startswith(first)


def test_model_without_fim_tokens_is_a_clear_error(tokenizers):
    assert detect_fim(tokenizers["none"]) is None
    with pytest.raises(UserInputError, match="no fill-in-the-middle tokens"):
        fim_format_for(tokenizers["none"], "tiny-chat")


def test_psm_and_spm_orders(tokenizers):
    fmt = fim_format_for(tokenizers["qwen"])
    assert fmt.build("P", "S") == "<|fim_prefix|>P<|fim_suffix|>S<|fim_middle|>"
    assert fmt.build("P", "S", order="spm") == "<|fim_suffix|>S<|fim_prefix|>P<|fim_middle|>"
    cl = fim_format_for(tokenizers["codellama"])
    assert cl.build("P", "S") == "<PRE> P <SUF>S <MID>"


def test_spm_prompt_grows_only_at_the_end_when_typing(tokenizers):
    """The property KV reuse relies on: typing appends to the prefix, so in SPM order the previous
    keystroke's prompt minus its last sentinel is a prefix of the next one."""
    fmt = fim_format_for(tokenizers["qwen"])
    a = fmt.build("def f(x):\n    re", "\n", order="spm")
    b = fmt.build("def f(x):\n    ret", "\n", order="spm")
    assert b.startswith(a[: -len(fmt.middle_tok)])
    a2 = fmt.build("def f(x):\n    re", "\n", order="psm")
    b2 = fmt.build("def f(x):\n    ret", "\n", order="psm")
    assert not b2.startswith(a2[: -len(fmt.middle_tok)])


def test_other_files_context_uses_file_separator(tokenizers):
    fmt = fim_format_for(tokenizers["qwen"])
    p = fmt.build("x = ", "", path="app/main.py", context=[("app/util.py", "def helper():\n    pass\n")])
    assert p.startswith("<|file_sep|>app/util.py\ndef helper():\n    pass\n<|file_sep|>app/main.py\n<|fim_prefix|>x = ")
    # suffix-first prompts carry the header only for adapters that learned it (older ones learned that order bare)
    ctx = [("app/util.py", "def helper():\n    pass\n")]
    spm = fmt.build("x = ", "\n", order="spm", path="app/main.py", context=ctx)
    assert spm == "<|fim_suffix|>\n<|fim_prefix|>x = <|fim_middle|>"
    spm = fmt.build("x = ", "\n", order="spm", path="app/main.py", context=ctx, spm_header=True)
    assert spm == "<|file_sep|>app/util.py\ndef helper():\n    pass\n<|file_sep|>app/main.py\n<|fim_suffix|>\n<|fim_prefix|>x = <|fim_middle|>"
    # typing appends at the end: the header and the suffix stay put
    typed = fmt.build("x = 1", "\n", order="spm", path="app/main.py", context=ctx, spm_header=True)
    assert typed.startswith(spm[: -len(fmt.middle_tok)])


def test_stop_ids_cover_every_sentinel(tokenizers):
    tok = tokenizers["qwen"]
    ids = stop_token_ids(tok, fim_format_for(tok))
    for t in ("<|endoftext|>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|file_sep|>", "<|im_end|>"):
        assert tok.convert_tokens_to_ids(t) in ids


def test_explain_prompt_uses_chat_template(tokenizers):
    p = explain_prompt(tokenizers["qwen"], "def f(): pass", "a.py", "python", "f")
    assert p.startswith("<|im_start|>system") and "Explain what `f` in `a.py` does" in p
    assert p.rstrip().endswith("<|im_start|>assistant")


def test_explain_prompts_name_the_file_not_its_folders():
    """Folders are not content: an absolute editor path or a folder name never reaches the explanation prompt."""
    from copilot.prompts.formats import explain_messages

    for path in ("/tmp/copilot-e2e-x/workspace/bar/mathy.py", "C:\\src\\bar\\mathy.py", "bar/mathy.py"):
        text = explain_messages("def f():\n    pass\n", path, "python", None)[1]["content"]
        assert "`mathy.py`" in text and "bar" not in text and "tmp" not in text


def test_explain_prompt_asks_for_what_the_code_does():
    """The facts tree-sitter reads (parameters, raised exceptions, return value, assigned attributes) are asked
    for by name in a symbol's prompt and a one-unit file's overview; a file overview followed by its sections
    does not list them (the sections cover them)."""
    from copilot.prompts.formats import explain_messages, explain_points

    code = ("def restock(self, sku, quantity):\n    if quantity <= 0:\n        raise ValueError('no')\n"
            "    self.total = quantity\n    return self.total\n")
    ask = explain_messages(code, "inv.py", "python", "restock")[1]["content"].split("```")[0]
    for part in ("`quantity` and `sku` are for", "when it raises `ValueError`", "what it returns",
                 "which attributes it sets (`total`)"):
        assert part in ask, ask
    assert "`quantity`" in explain_messages(code, "inv.py", "python", None)[1]["content"].split("```")[0]
    overview = explain_messages(code, "inv.py", "python", None, others=("restock", "other"))[1]["content"]
    assert "`quantity`" not in overview.split("```")[0]
    assert explain_points("x = 1\n", "python") == ""  # nothing to ask for
    assert explain_points("function f(a) { return a; }", "javascript") == ""  # facts are read for Python only
    assert explain_points("def f(:\n", "python") == ""  # broken code: no hint, never an error
