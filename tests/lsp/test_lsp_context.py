"""lsp.context: snippets from other open documents of the same language, within budget."""

from lsp.context import OpenDoc, snippets

PREFIX = "from billing import invoice_total\n\ndef charge(customer, invoice_lines):\n    total = invoice_total("


def test_picks_the_most_similar_same_language_window():
    docs = [
        OpenDoc("/r/billing.py", "python", "import math\n\n" + "def invoice_total(invoice_lines, customer):\n"
                "    return sum(l.amount for l in invoice_lines)\n"),
        OpenDoc("/r/unrelated.py", "python", "def parse_args(argv):\n    return argv[1:]\n"),
        OpenDoc("/r/billing.js", "javascript", "function invoice_total(invoice_lines, customer) {}\n"),
        OpenDoc("/r/current.py", "python", PREFIX),
    ]
    out = snippets(PREFIX, "python", "/r/current.py", docs, budget_tokens=200)
    paths = [p for p, _ in out]
    assert paths[0] == "/r/billing.py"
    assert "/r/billing.js" not in paths and "/r/current.py" not in paths
    assert "invoice_total" in out[0][1]


def test_budget_is_respected_and_zero_budget_gives_nothing():
    big = "\n".join(f"invoice_total_{i} = customer_{i} + invoice_lines" for i in range(200))
    docs = [OpenDoc(f"/r/{i}.py", "python", big) for i in range(5)]
    out = snippets(PREFIX, "python", None, docs, budget_tokens=20)
    assert sum(len(t) for _, t in out) <= 70
    assert snippets(PREFIX, "python", None, docs, budget_tokens=0) == ()
    assert snippets(PREFIX, None, None, docs) == ()


def test_sticky_snippets_hold_while_the_cursor_stays_near():
    """The snippets open the prompt: re-choosing them on every keystroke would throw away the KV cache."""
    from lsp.context import StickySnippets

    calls: list[int] = []

    def choose(tag):
        def f():
            calls.append(tag)
            return (("other.py", f"snippet {tag}"),)
        return f

    memo = StickySnippets(lines=10)
    assert memo.get("file:///a.py", 100, choose(1)) == (("other.py", "snippet 1"),)
    assert memo.get("file:///a.py", 108, choose(2)) == (("other.py", "snippet 1"),)  # near: kept
    assert memo.get("file:///b.py", 100, choose(3)) == (("other.py", "snippet 3"),)  # per document
    assert memo.get("file:///a.py", 140, choose(4)) == (("other.py", "snippet 4"),)  # moved away: chosen again
    memo.forget("file:///a.py")
    assert memo.get("file:///a.py", 140, choose(5)) == (("other.py", "snippet 5"),)
    assert calls == [1, 3, 4, 5]


def test_sticky_snippets_choose_again_for_a_new_definition_or_a_ready_index():
    """Typing a call to another file's function brings its definition in at once (one new prompt head), while
    names that were already considered, or fewer of them, keep the held choice."""
    from lsp.context import StickySnippets

    memo = StickySnippets(lines=10)
    calls: list[str] = []

    def choose(tag):
        def f():
            calls.append(tag)
            return ((tag, tag),)
        return f

    memo.get("u", 10, choose("a"), epoch=False)
    memo.get("u", 11, choose("b"), epoch=True)  # the repository index became ready
    memo.get("u", 12, choose("c"), epoch=True, wanted=frozenset({"billing.py:invoice_total:3"}))
    memo.get("u", 12, choose("d"), epoch=True, wanted=frozenset({"billing.py:invoice_total:3"}))
    memo.get("u", 13, choose("e"), epoch=True)  # the name scrolled away: nothing new wanted
    assert calls == ["a", "b", "c"]
