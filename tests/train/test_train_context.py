"""Training prompts open with a FIM pair's stored repository context exactly as the serving engine builds them
(FimFormat.build with the row's path and context; prefix-suffix-middle only), and the recipe can turn it off."""

from __future__ import annotations

import dataclasses
import json

import pytest
from helpers.train_fixtures import fim_pair, home, tiny_model, write_dataset  # noqa: F401

from copilot.core.settings import Settings, TrainSettings

SNIPPETS = [{"path": "pkg/money.py", "text": "def helper(amount, rate):\n    \"\"\"Apply a tax rate.\"\"\"",
             "source": "definition"},
            {"path": "pkg/other.py", "text": "total = helper(price, 0.2)\nprint(total)", "source": "similar"}]
CTX = tuple((s["path"], s["text"]) for s in SNIPPETS)


def _tok(model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(model_dir))


def _fmt(tok):
    from copilot.prompts.formats import fim_format_for

    return fim_format_for(tok)


def _with_context(i: int, split: str = "train", snippets=SNIPPETS):
    return dataclasses.replace(fim_pair(i, split), context=json.dumps(snippets))


def _ids(tok, text: str) -> list[int]:
    return tok(text, add_special_tokens=False)["input_ids"]


def test_a_row_with_context_renders_the_serving_prompt(tiny_model):  # noqa: F811
    from copilot.train.data import IGNORE, encode_rows

    tok = _tok(tiny_model)
    fmt = _fmt(tok)
    row = _with_context(0).to_row()
    [ex], stats = encode_rows([row], tok, fmt, max_seq_len=256, spm_share=0.0)
    prompt = fmt.build(row["prefix"], row["suffix"], "psm", path=row["path"], context=CTX)
    assert prompt.startswith("<|file_sep|>pkg/money.py\ndef helper(amount, rate):")
    assert "<|file_sep|>pkg/m0.py\n<|fim_prefix|>" in prompt
    middle = _ids(tok, row["middle"] + "<|endoftext|>")
    assert ex.input_ids == _ids(tok, prompt) + middle
    assert ex.labels == [IGNORE] * len(_ids(tok, prompt)) + middle
    assert (stats.context, stats.context_left_out) == (1, 0)


def test_suffix_first_rows_open_with_the_header_and_recipe_off_gets_none(tiny_model):  # noqa: F811
    from copilot.train.data import encode_rows

    tok = _tok(tiny_model)
    fmt = _fmt(tok)
    row = _with_context(1).to_row()
    middle = _ids(tok, row["middle"] + "<|endoftext|>")
    [spm], stats = encode_rows([row], tok, fmt, max_seq_len=256, spm_share=1.0)
    want = fmt.build(row["prefix"], row["suffix"], "spm", path=row["path"], context=CTX, spm_header=True)
    assert want.startswith("<|file_sep|>pkg/money.py\n") and "<|file_sep|>pkg/m1.py\n<|fim_suffix|>" in want
    assert spm.input_ids == _ids(tok, want) + middle
    assert stats.context == 1  # the engines show this header to adapters whose manifest says spm_header
    [off], stats = encode_rows([row], tok, fmt, max_seq_len=256, spm_share=0.0, context=False)
    assert off.input_ids == _ids(tok, fmt.build(row["prefix"], row["suffix"], "psm")) + middle
    assert stats.context == 0
    # a row without context (an older dataset's) is encoded as before
    plain = fim_pair(1).to_row()
    plain.pop("context")
    [old], _ = encode_rows([plain], tok, fmt, max_seq_len=256, spm_share=0.0)
    assert old.input_ids == off.input_ids


def test_context_shares_the_budget_and_is_left_out_when_it_would_crowd_the_file(tiny_model):  # noqa: F811
    from copilot.train.data import encode_rows

    tok = _tok(tiny_model)
    fmt = _fmt(tok)
    long_prefix = "".join(f"value_{i} = compute_{i}(value_{i - 1})\n" for i in range(1, 80))
    row = dataclasses.replace(_with_context(2), prefix=long_prefix + "def f(x):\n    ").to_row()
    [ex], stats = encode_rows([row], tok, fmt, max_seq_len=256, spm_share=0.0)
    assert len(ex.input_ids) <= 256 and stats.context == 1
    assert tok.decode(ex.input_ids).startswith("<|file_sep|>pkg/money.py")
    huge = [{"path": "pkg/big.py", "text": "\n".join(f"def f{i}(a, b): ..." for i in range(200)), "source": "similar"}]
    # over half the budget: the last (least important) snippets go first, as a smaller context.tokens would ...
    rows = [_with_context(3, snippets=SNIPPETS[:1] + huge).to_row(), _with_context(3, snippets=huge).to_row()]
    [trimmed, bare], stats = encode_rows(rows, tok, fmt, max_seq_len=256, spm_share=0.0)
    assert (stats.context, stats.context_trimmed, stats.context_left_out) == (1, 1, 1)
    assert tok.decode(trimmed.input_ids).startswith("<|file_sep|>pkg/money.py")
    assert "pkg/big.py" not in tok.decode(trimmed.input_ids)
    # ... and a context whose first snippet alone is too long is left out
    assert bare.input_ids[: len(_ids(tok, "<|fim_prefix|>"))] == _ids(tok, "<|fim_prefix|>")


def test_code_is_capped_as_served_and_the_context_comes_on_top(tiny_model):  # noqa: F811
    """The server fits prefix+suffix to completion.context_tokens and puts the context before them; a training
    row with room for both (max_seq_len 1024) must hold the same: the code capped at code_tokens, the context
    whole, rather than the context eating into the code (the 512-token rows gave the code half)."""
    from copilot.train.data import encode_rows, fit_context

    tok = _tok(tiny_model)
    fmt = _fmt(tok)
    long_prefix = "".join(f"value_{i} = compute_{i}(value_{i - 1})\n" for i in range(1, 120))
    row = dataclasses.replace(_with_context(4), prefix=long_prefix + "def f(x):\n    ").to_row()
    middle = _ids(tok, row["middle"] + "<|endoftext|>")
    [capped], stats = encode_rows([row], tok, fmt, max_seq_len=1024, spm_share=0.0, code_tokens=128)
    prefix, suffix = fit_context(tok, row["prefix"], row["suffix"], 128)
    want = fmt.build(prefix, suffix, "psm", path=row["path"], context=CTX)
    assert capped.input_ids == _ids(tok, want) + middle
    assert stats.context == 1 and stats.context_trimmed == 0
    assert 100 < len(_ids(tok, prefix + suffix)) <= 128
    # without the cap the same row's code takes all the room the context leaves: many more prefix lines
    [uncapped], _ = encode_rows([row], tok, fmt, max_seq_len=1024, spm_share=0.0, code_tokens=0)
    assert len(uncapped.input_ids) > len(capped.input_ids) + 300
    # and a row too short for both still gives the context at most half, the code the rest
    [short], _ = encode_rows([row], tok, fmt, max_seq_len=256, spm_share=0.0, code_tokens=512)
    assert len(short.input_ids) <= 256 and tok.decode(short.input_ids).startswith("<|file_sep|>pkg/money.py")


def test_recipe_option_is_read_and_recorded_in_the_manifest(home, tiny_model, tmp_path):  # noqa: F811
    from copilot.train.loop import train
    from copilot.train.recipe import TrainRecipe, load_recipe

    (tmp_path / "r.toml").write_text("context = false\n")
    assert load_recipe(tmp_path / "r.toml").context is False and load_recipe(None).context is True
    data = write_dataset(tmp_path / "ds", [_with_context(i) for i in range(8)], [_with_context(0, "test")])
    s = Settings()
    s.model, s.device = str(tiny_model), "cpu"
    ts = TrainSettings(r=4, alpha=8, learning_rate=1e-3, max_seq_len=256, batch_tokens=512)
    on = train(data, "with-ctx", settings=s, recipe=TrainRecipe(train=ts, max_steps=1, spm_share=0.0),
               progress=False).manifest
    off = train(data, "no-ctx", settings=s, recipe=TrainRecipe(train=ts, max_steps=1, spm_share=0.0, context=False),
                progress=False).manifest
    assert on.training["context"] is True and on.training["context_examples"] == 8
    assert on.training["context_left_out"] == on.training["context_trimmed"] == 0
    assert off.training["context"] is False and off.training["context_examples"] == 0
    assert on.training["fim_orders"] == off.training["fim_orders"] == ["psm"]
    assert on.training["spm_header"] is False  # no suffix-first rows: nothing learned in that order


@pytest.mark.parametrize("order", ["psm", "spm"])
def test_prompt_helper_matches_format_build(tiny_model, order):  # noqa: F811
    from copilot.train.data import fim_prompt

    tok = _tok(tiny_model)
    fmt = _fmt(tok)
    row = _with_context(4).to_row()
    prompt, how = fim_prompt(tok, fmt, row, order, budget=2000)
    assert prompt == fmt.build(row["prefix"], row["suffix"], order, path=row["path"], context=CTX, spm_header=True)
    assert how == "shown"
