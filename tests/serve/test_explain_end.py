"""Where an explanation ends (copilot.serve.explain_end): at a sentence, with the stream equal to the result."""

from copilot.serve.explain_end import SentenceEnd, ends_sentence


def test_sentence_ends():
    assert ends_sentence("It returns the sum.") and ends_sentence("```")
    assert not ends_sentence("It does the following:")  # a colon promises more
    assert not ends_sentence("It returns the") and not ends_sentence("for example e.g.")
    assert not ends_sentence("It does two things.\n\n1. Reads.\n\n2.")  # a list item's number opens it
    assert ends_sentence("It returns 2.") and ends_sentence("1. Reads the file.")


def _run(tokens: list[str], budget: int):
    """Drive SentenceEnd as the decode loop does, over tokens given as texts."""
    end = SentenceEnd(budget, lambda i: tokens[i])
    shown: list[str] = []
    push, flush = SentenceEnd.stream(shown.append)
    ids: list[int] = []
    reason = "length"
    for i in range(min(budget, len(tokens))):
        ids.append(i)
        text = "".join(tokens[: i + 1])
        push(tokens[i])
        if end.should_stop(ids, text):
            reason = "rule"
            break
    else:
        reason = "eos" if len(tokens) < budget else "length"
    final = end.finish("".join(tokens[: len(ids)]), reason)
    flush(final)
    return final, "".join(shown), reason


def test_past_the_soft_share_it_stops_before_the_next_sentence():
    toks = ["The", " function", " adds", " two", " numbers", ".", " It", " then", " returns", " them", "."]
    final, shown, reason = _run(toks, budget=8)
    assert reason == "rule" and final == "The function adds two numbers."
    assert shown == final  # the editor never saw " It"


def test_at_the_budget_it_trims_to_the_last_sentence_and_closes_a_fence():
    toks = ["Adds", " numbers", ".", " Example", ":", "\n```", "python", "\nadd", "(1", ","]
    final, shown, reason = _run(toks, budget=10)
    assert reason == "length" and final == "Adds numbers." and shown == final  # the half example is dropped
    final, shown, _ = _run(["```", "python", "\nx", " =", " 1", "\n"], budget=6)
    assert final == "```python\nx = 1\n```"  # nothing to trim back to: the open fence is closed
    final, shown, _ = _run(["Opens", " the", " file", ".", "\n", "```", "\n"], budget=40)
    assert final == "Opens the file." and shown == final  # an opened fence with nothing in it is dropped
    toks = ["Adds", " two", " numbers", ".", " The", " result", " is", " the"]
    final, shown, _ = _run(toks, budget=8)
    assert final == "Adds two numbers." and shown == final  # " The result is the" was never shown


def test_before_the_soft_share_sentences_go_on():
    toks = ["A", ".", " B", ".", " C", ".", " D", "."]
    final, _, reason = _run(toks, budget=100)
    assert reason == "eos" and final == "A. B. C. D."


def test_code_spans_that_name_nothing_in_the_code_lose_their_backticks():
    from copilot.serve.explain_end import code_names, unquote_unknown

    known = code_names("def should_retry(self, attempt):\n    return attempt < self.retries\n", "pkg/policy.py")
    text = ("`should_retry(attempt)` compares `attempt` with `self.retries` in `policy.py`; the `retry` loop "
            "raises `ValueError`.\n```python\nretry()\n```")
    assert unquote_unknown(text, known) == (
        "`should_retry(attempt)` compares `attempt` with `self.retries` in `policy.py`; the retry loop "
        "raises `ValueError`.\n```python\nretry()\n```")


def test_the_stream_is_fixed_as_the_final_text_is():
    from copilot.serve.explain_end import SentenceEnd, code_names, unquote_unknown

    known = code_names("def add(a, b):\n    return a + b\n")
    fix = lambda t: unquote_unknown(t, known)  # noqa: E731
    shown: list[str] = []
    push, flush = SentenceEnd.stream(shown.append, fix=fix)
    raw = "`add` sums `a` and `b`. It calls `helper` first. Then it returns."
    for i in range(0, len(raw), 3):
        push(raw[i:i + 3])
    final = fix(raw)
    flush(final)
    assert "".join(shown) == final and "`helper`" not in final and "`add`" in final


def test_a_list_number_is_not_where_a_text_ends():
    """`copilot demo` once ended "…an empty dictionary `counts`.\n\n2." : the number of the next list item."""
    toks = ["Intro", ".", "\n\n1", ".", " Reads", ".\n\n2", ".", " Writes", " the", " file", " and"]
    final, shown, reason = _run(toks, budget=10)  # the rule looks at "…2." before " Writes" and goes on
    assert reason == "length" and final == "Intro.\n\n1. Reads." and shown.strip() == final
