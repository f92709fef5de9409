"""Golden explanations of small files by the embedded model (default settings, greedy, llama.cpp when built):
they fail on a section that stops mid-sentence, an overview that says the sections again, a code span naming
something the file does not define, or sections that mention less than 80 % of the parameters, raised
exceptions, return values and assigned attributes of their code."""

from __future__ import annotations

import re

import pytest

from copilot.core.settings import Settings
from copilot.evaluate.explain_checks import code_facts, code_spans, file_names, invented, repetition, scores, truncated
from copilot.serve.explain import explain_sections

pytestmark = pytest.mark.slow

ONE_FUNCTION = '''def is_palindrome(text: str) -> bool:
    """True when text reads the same both ways, ignoring case and spaces."""
    cleaned = "".join(ch.lower() for ch in text if not ch.isspace())
    return cleaned == cleaned[::-1]
'''

ONE_CLASS = '''class Inventory:
    """Stock levels per SKU."""

    def __init__(self):
        self.stock = {}

    def restock(self, sku, quantity):
        if quantity <= 0:
            raise ValueError("quantity must be positive")
        self.stock[sku] = self.stock.get(sku, 0) + quantity

    def reserve_items(self, sku, quantity):
        available = self.stock.get(sku, 0)
        if quantity > available:
            raise ValueError(f"only {available} of {sku} left")
        self.stock[sku] = available - quantity
        return self.stock[sku]
'''

MODULE = '''import json
from pathlib import Path


def load_settings(path):
    """Read a JSON settings file; a missing file gives the defaults."""
    p = Path(path)
    if not p.exists():
        return {"retries": 3}
    return json.loads(p.read_text())


class RetryPolicy:
    def __init__(self, retries):
        self.retries = retries

    def should_retry(self, attempt):
        return attempt < self.retries
'''


@pytest.fixture(scope="module")
def engine(real_model_home):
    mp = pytest.MonkeyPatch()
    mp.setenv("COPILOT_HOME", str(real_model_home))
    from copilot.serve.backends import load_engine

    yield load_engine("qwen2.5-coder-0.5b", Settings())
    mp.undo()


def check(engine, source: str, path: str, n_sections: int) -> list:
    streamed: list[list[str]] = []
    out = engine.explain_file(source, path, on_text=lambda t: streamed[-1].append(t),
                              on_section=lambda sym: streamed.append([]))
    assert len(out) == n_sections, [e.symbol for e in out]
    facts = code_facts(source, "python")
    facts.names |= file_names(path)
    for e in out:
        assert not truncated(e.text), (e.symbol, e.text[-200:])
        bad = [s for s in code_spans(e.text) if invented(s, facts)]
        assert not bad, (e.symbol, bad, e.text)
    for e, shown in zip(out, streamed):
        assert "".join(shown).strip() == e.text.strip(), e.symbol  # what was streamed is the final text
    # coverage of the sections whose prompt asks for the facts (a symbol, or the overview of a one-unit file)
    codes = {sym: code for sym, code, _, _ in explain_sections(source, path, Settings())}
    COVERAGE[path] = [(e.symbol, scores(e.text, codes[e.symbol], "python", path).get("coverage"), e.text)
                      for e in out if e.symbol or len(out) == 1]
    return out


COVERAGE: dict[str, list] = {}  # path -> [(section, coverage, text)], filled by check()
FILES = [(ONE_FUNCTION, "pal/is_pal.py", 1), (ONE_CLASS, "shop/inventory.py", 1), (MODULE, "bar/settings.py", 3)]


def test_one_function_is_one_section(engine):
    out = check(engine, ONE_FUNCTION, "pal/is_pal.py", 1)  # folded: a function section would repeat the overview
    assert "is_palindrome" in out[0].text and "class" not in out[0].text.lower()


def test_a_class_with_methods(engine):
    out = check(engine, ONE_CLASS, "shop/inventory.py", 1)  # one top-level unit: the overview covers it
    text = out[0].text
    assert "restock" in text and "reserve_items" in text


def test_a_module_with_a_function_and_a_class_does_not_repeat_itself(engine):
    out = check(engine, MODULE, "bar/settings.py", 3)
    overview, sections = out[0].text, [e.text for e in out[1:]]
    assert [e.symbol for e in out] == [None, "load_settings", "RetryPolicy"]
    assert repetition(overview, sections) < 50, (overview, sections)
    assert not re.search(r"\bbar\b", overview.lower())  # the folder is not content


def test_sections_cover_what_the_code_does(engine):
    """Of the parameters, raised exceptions, return values and assigned attributes of the three files' sections,
    at least 80 % are mentioned (pooled: one section of a small file moves a per-file share by half)."""
    for source, path, n in FILES:
        if path not in COVERAGE:  # run alone (-k): explain the files the other tests did not
            check(engine, source, path, n)
    cov = [(path, sym, c, text) for path, rows in COVERAGE.items() for sym, c, text in rows if c is not None]
    assert len(cov) >= 4 and sum(c for _, _, c, _ in cov) / len(cov) >= 80, cov
