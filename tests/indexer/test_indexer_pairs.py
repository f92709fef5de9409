"""FIM middles are whole syntax nodes with bounded context; history FIM covers added code; explain pairs."""

from __future__ import annotations

import random
from collections import Counter

from indexer.extract import extract_units
from indexer.languages import get_parser
from indexer.pairs import (
    FIM_MIDDLE,
    FIM_PREFIX,
    FIM_SUFFIX,
    PairConfig,
    SourceText,
    bounded_context,
    code_without_docstring,
    explain_pairs,
    fim_pair,
    fims_for_added_lines,
    sample_fims,
)
from helpers.indexer_fixtures import PARSER_RS, SERVER_GO, SHAPES_TS, UTILS_PY_V3

PY = "\n\n".join(
    f'''def handler_{i}(request, retries={i}):
    """Handle request number {i}."""
    payload = parse(request.body, strict=True)
    if payload.get("id") is None:
        raise ValueError("missing id {i}")
    for attempt in range(retries):
        result = backend.call(payload["id"], attempt=attempt)
        if result.ok:
            return result.value
    return None''' for i in range(12)) + "\n"


def _nodes(tree):
    """(start, end) of every node of the tree."""
    out = set()
    stack = [tree.root_node]
    while stack:
        n = stack.pop()
        out.add((n.start_byte, n.end_byte))
        stack.extend(n.children)
    return out


def test_fim_middles_are_whole_nodes_with_a_mix_of_granularities():
    src = SourceText(PY)
    tree = get_parser("python").parse(src.data)
    nodes = _nodes(tree)
    fims = sample_fims(tree, src, PairConfig(lines_per_fim=3, max_fim_per_file=40), random.Random(0))
    assert len(fims) >= 20
    kinds = Counter(f.granularity for f in fims)
    assert {"statement", "expression", "rest_of_line"} <= set(kinds)
    assert kinds["body"] + kinds["block"] >= 1
    starts = {n[0] for n in nodes}
    for f in fims:
        middle = src.slice(f.start, f.end)
        assert middle.strip()
        if f.granularity == "rest_of_line":
            assert f.start in starts and "\n" not in middle and src.data[f.end:f.end + 1] in (b"\n", b"")
        elif f.granularity in ("statement", "expression"):
            assert (f.start, f.end) in nodes, middle
        else:  # body/block: a whole block node (python blocks have no braces)
            assert (f.start, f.end) in nodes, middle
    # Some cursors are mid-line (expressions, rest of line), some multi-line.
    assert any(src.data[src.line_starts[src.line_of(f.start)]:f.start].strip() for f in fims)
    pairs = [fim_pair(src, f, PairConfig(), kind="fim_file", repo="r", path="h.py", commit="c", commit_time=1,
                      language="python") for f in fims]
    assert any(p.multiline for p in pairs) and any(not p.multiline for p in pairs)


def test_fim_prompt_format_and_reassembly():
    src = SourceText(UTILS_PY_V3)
    tree = get_parser("python").parse(src.data)
    fims = sample_fims(tree, src, PairConfig(lines_per_fim=2), random.Random(1))
    for f in fims:
        p = fim_pair(src, f, PairConfig(), kind="fim_file", repo="r", path="u.py", commit="c", commit_time=1,
                     language="python")
        assert p.prompt == f"{FIM_PREFIX}{p.prefix}{FIM_SUFFIX}{p.suffix}{FIM_MIDDLE}"
        assert p.completion == p.middle
        # Small file: the whole file fits in the budget, so prefix + middle + suffix is the file.
        assert p.prefix + p.middle + p.suffix == UTILS_PY_V3
        assert UTILS_PY_V3.splitlines()[p.span_start].strip()


def test_brace_block_middle_is_the_inside_of_the_braces():
    src = SourceText(SERVER_GO)
    tree = get_parser("go").parse(src.data)
    for seed in range(40):
        for f in sample_fims(tree, src, PairConfig(lines_per_fim=1), random.Random(seed)):
            if f.granularity == "body":
                middle = src.slice(f.start, f.end)
                assert middle == '\tw.WriteHeader(http.StatusOK)\n\tw.Write([]byte("ok"))\n'
                return
    raise AssertionError("no body middle sampled")


def test_context_is_bounded_and_cut_at_line_starts():
    big = "\n".join(f"value_{i} = compute({i})" for i in range(2000)) + "\n"
    src = SourceText(big)
    mid = big.index("value_1000 =")
    end = big.index("\n", mid)
    cfg = PairConfig(context_tokens=100, chars_per_token=4.0, prefix_share=0.75)
    prefix, suffix = bounded_context(src, mid, end, cfg)
    assert len(prefix) <= 300 and len(suffix) <= 100
    assert prefix.startswith("value_") and big[mid - len(prefix) - 1] == "\n"
    assert suffix.startswith("\nvalue_1001") and suffix.endswith("\n")


def test_non_ascii_offsets():
    text = 'GREETING = "héllo wörld"\n\ndef greet(name):\n    message = f"{GREETING}, {name}"\n    return message\n'
    src = SourceText(text)
    tree = get_parser("python").parse(src.data)
    for seed in range(5):
        for f in sample_fims(tree, src, PairConfig(lines_per_fim=1), random.Random(seed)):
            p = fim_pair(src, f, PairConfig(), kind="fim_file", repo="r", path="g.py", commit="c",
                         commit_time=1, language="python")
            assert p.prefix + p.middle + p.suffix == text


def test_history_fims_cover_added_lines_with_whole_nodes():
    src = SourceText(UTILS_PY_V3)
    tree = get_parser("python").parse(src.data)
    lines = UTILS_PY_V3.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith("def median_of_sorted"))
    fims = fims_for_added_lines(tree, src, [(start - 2, len(lines) - 1)], PairConfig())
    assert [src.slice(f.start, f.end) for f in fims] == [
        'def median_of_sorted(values):\n    """Middle element of an already sorted list of numbers."""\n'
        '    middle_index = len(values) // 2\n    return values[middle_index]']
    # One changed line inside a function: the statement on it.
    line = next(i for i, ln in enumerate(lines) if "count = len(values)" in ln)
    fims = fims_for_added_lines(tree, src, [(line, line)], PairConfig())
    assert [src.slice(f.start, f.end) for f in fims] == ["count = len(values)"]


def test_history_fims_in_rust_and_typescript():
    src = SourceText(PARSER_RS)
    tree = get_parser("rust").parse(src.data)
    fims = fims_for_added_lines(tree, src, [(0, len(PARSER_RS.splitlines()) - 1)], PairConfig())
    assert len(fims) == 1 and src.slice(fims[0].start, fims[0].end).startswith("pub fn parse_list")
    src = SourceText(SHAPES_TS)
    tree = get_parser("typescript").parse(src.data)
    lines = SHAPES_TS.splitlines()
    a = next(i for i, ln in enumerate(lines) if "const dx" in ln)
    fims = fims_for_added_lines(tree, src, [(a, a + 1)], PairConfig())
    assert [src.slice(f.start, f.end) for f in fims] == ["const dx = a.x - b.x;", "const dy = a.y - b.y;"]


def test_explain_pairs_remove_the_docstring_from_the_prompt():
    units = extract_units(UTILS_PY_V3, "python", "src/utils.py")
    pairs = explain_pairs(units, PairConfig(), repo="r", commit="c", commit_time=5)
    assert [p.completion for p in pairs] == [
        "Limit a value to the range [low, high].",
        "Arithmetic mean of a non-empty list of numbers.",
        "Middle element of an already sorted list of numbers.",
    ]
    clamp = pairs[0]
    assert "Limit a value" not in clamp.prompt
    assert "def clamp(value, low, high):\n    if value < low:" in clamp.prompt
    assert "src/utils.py" in clamp.prompt and clamp.kind == "explain" and clamp.commit_time == 5
    assert clamp.middle == "" and clamp.span_start == 3


def test_explain_pairs_from_leading_comments():
    units = extract_units(SHAPES_TS, "typescript", "web/shapes.ts")
    pairs = explain_pairs(units, PairConfig(), repo="r", commit="c", commit_time=1)
    # midpoint is a one-liner: too small to explain; Point's comment is the file header? no: it is "export interface"
    assert [p.completion for p in pairs] == ["Euclidean distance between two points."]
    assert "export function distance(a: Point, b: Point): number {" in pairs[0].prompt
    assert "Euclidean" not in pairs[0].prompt


def test_code_without_docstring_keeps_leading_comment_units_whole():
    (unit,) = extract_units(SERVER_GO, "go", "s.go")
    assert code_without_docstring(unit) == unit.text


def test_explain_pair_parts_give_back_the_code_and_the_name():
    """Training and evaluation hand the engine the pair's code and symbol, not its whole prompt: the code is not
    fenced twice and the pair's folders never reach the model."""
    from indexer.pairs import explain_pair_parts

    units = extract_units(UTILS_PY_V3, "python", "src/utils.py")
    pairs = explain_pairs(units, PairConfig(), repo="r", commit="c", commit_time=5)
    for p, u in zip(pairs, [u for u in units if u.docstring]):
        code, name = explain_pair_parts(p.to_row())
        assert name == u.qualname and code == code_without_docstring(u)
        assert "```" not in code and "src/" not in code
    assert explain_pair_parts({"prompt": "free text", "middle": ""}) == ("free text", None)
