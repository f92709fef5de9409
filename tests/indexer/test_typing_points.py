"""Typing points (kind fim_typing): the cursor inside an identifier or a few characters into a line, the middle
the rest of the line (sometimes of the construct around it), never in comments, strings or broken lines."""

from __future__ import annotations

import random
import re
from collections import Counter

import pyarrow.parquet as pq
import pytest

from indexer import dataset as ds
from indexer.languages import get_parser
from indexer.mine.config import IndexConfig
from indexer.mine.index import index_repos
from indexer.pairs import FIM_KINDS, HEAD_KINDS, PairConfig, SourceText, fim_pair
from indexer.typing_points import is_identifier, sample_typing_points
from helpers.indexer_fixtures import build_company_repo

PY = "\n\n".join(
    f'''# Handlers for queue {i}: retried, then dropped.
def handle_message_{i}(request, retries={i}):
    """Handle request number {i}; a docstring line that is long enough to be picked."""
    payload = parse_body(request.body, strict=True)
    acknowledgement_token = payload.get("token")
    if payload.get("identifier") is None:
        raise ValueError("missing identifier {i}")
    for attempt in range(retries):
        result = backend.call_remote(payload["identifier"], attempt=attempt)
        if result.ok:
            return result.value
    return None''' for i in range(14)) + "\n"

TS = "\n".join(
    f'''/* Totals of invoice batch {i}. */
export function totalOf{i}(items: LineItem[], discount: number): number {{
  // sum the line amounts first
  const subtotal = items.reduce((acc, item) => acc + item.amount * item.quantity, 0);
  if (subtotal <= 0) {{
    return 0;
  }}
  const label = `batch ${{items.length}}`;
  return subtotal - subtotal * discount;
}}
''' for i in range(12))

GO = "package billing\n\n" + "\n".join(
    f'''// Charge{i} bills the customer.
func Charge{i}(ctx context.Context, customer *Customer, amount int64) error {{
\tif amount <= 0 {{
\t\treturn fmt.Errorf("bad amount %d", amount)
\t}}
\tinvoice := NewInvoice(customer.AccountID, amount)
\treturn ledger.Record(ctx, invoice)
}}
''' for i in range(12))

CFG = PairConfig(lines_per_typing=1, max_typing_per_file=60)
_WORD = re.compile(r"\w")


def _parse(text: str, language: str):
    src = SourceText(text)
    return src, get_parser(language).parse(src.data)


def _in_comment_or_string(tree, pos: int) -> bool:
    node = tree.root_node.descendant_for_byte_range(pos, pos)
    while node is not None:
        if "comment" in node.type or "string" in node.type:
            return True
        node = node.parent
    return False


def _check_point(src: SourceText, tree, f, text: str) -> None:
    line = src.line_of(f.start)
    line_start = src.line_starts[line]
    before, middle = src.slice(line_start, f.start), src.slice(f.start, f.end)
    if f.granularity.startswith("identifier"):
        # strictly inside an identifier: word characters on both sides, and the leaf there is an identifier
        assert _WORD.match(before[-1]) and _WORD.match(middle[0]), (before, middle)
        leaf = tree.root_node.descendant_for_byte_range(f.start, f.start)
        assert is_identifier(leaf) and leaf.start_byte < f.start < leaf.end_byte, (leaf.type, before, middle)
    else:
        assert f.granularity.startswith("line_start")
        typed = before.lstrip()
        assert 1 <= len(typed) <= 8 and not any(c.isspace() for c in typed), (before, middle)
    # the middle runs to a line end (the newline stays in the suffix); "+block" ones span lines
    assert src.data[f.end:f.end + 1] in (b"\n", b"")
    assert middle.strip() and len(middle.strip()) >= 2
    assert ("\n" in middle) == f.granularity.endswith("+block")
    assert not _in_comment_or_string(tree, f.start), (before, middle)
    pair = fim_pair(src, f, PairConfig(), kind="fim_typing", repo="r", path="p", commit="c", commit_time=1,
                    language="x")
    assert pair.kind == "fim_typing" and pair.middle == middle and pair.completion == middle
    window = pair.prefix + pair.middle + pair.suffix
    start = text.find(window)  # the bounded window: contiguous, starting at a line start
    assert start >= 0 and (start == 0 or text[start - 1] == "\n") and pair.prefix.endswith(before)


@pytest.mark.parametrize("text, language", [(PY, "python"), (TS, "typescript"), (GO, "go")])
def test_cursors_sit_inside_identifiers_or_a_few_characters_into_a_line(text, language):
    src, tree = _parse(text, language)
    points = sample_typing_points(tree, src, CFG, random.Random(7))
    assert len(points) >= 30
    kinds = Counter(f.granularity for f in points)
    assert kinds["identifier"] and kinds["line_start"], kinds
    assert kinds["identifier+block"] + kinds["line_start+block"] >= 1, kinds
    assert kinds["identifier"] + kinds["identifier+block"] > kinds["line_start"] + kinds["line_start+block"], kinds
    for f in points:
        _check_point(src, tree, f, text)


def test_small_file_window_is_the_whole_file_and_sampling_is_deterministic():
    text = GO.split("\n// Charge2")[0] + "\n"
    src, tree = _parse(text, "go")
    points = sample_typing_points(tree, src, CFG, random.Random(3))
    assert points == sample_typing_points(tree, src, CFG, random.Random(3))
    assert points != sample_typing_points(tree, src, CFG, random.Random(4))
    for f in points:
        p = fim_pair(src, f, PairConfig(), kind="fim_typing", repo="r", path="b.go", commit="c", commit_time=1,
                     language="go")
        assert p.prefix + p.middle + p.suffix == text


def test_how_many_per_file():
    src, tree = _parse(PY, "python")
    n_lines = len(src.line_starts)
    default = PairConfig()
    assert default.max_typing_per_file * 2 < default.max_fim_per_file  # about a third as many as fim_file
    assert len(sample_typing_points(tree, src, default, random.Random(0))) == n_lines // default.lines_per_typing
    assert sample_typing_points(tree, src, PairConfig(max_typing_per_file=0), random.Random(0)) == []
    assert len(sample_typing_points(tree, src, PairConfig(lines_per_typing=1, max_typing_per_file=5),
                                   random.Random(0))) == 5


def test_no_cursor_on_a_line_with_a_parse_error_or_in_comments_strings_and_non_ascii_names():
    good = "def größe_berechnen(breite, höhe):\n    fläche = breite * höhe\n    return fläche\n\n"
    broken = "def broken(:\n    value = = compute(\n"
    half_broken = "def total_of(items):\n    total = compute_total(items)\n    value = = 3\n    return total\n\n"
    text = (half_broken + good + broken + good.replace("größe_berechnen", "volumen")
            + '"""\nclose_all(handles) in a docstring\n"""\n')
    src, tree = _parse(text, "python")
    bad_lines = {2} | set(range(text[:text.index(broken)].count("\n"),
                                text[:text.index(broken) + len(broken)].count("\n")))
    doc_lines = {len(text.splitlines()) - 2}
    points = [f for seed in range(30) for f in sample_typing_points(tree, src, CFG, random.Random(seed))]
    assert points
    for f in points:
        assert src.line_of(f.start) not in bad_lines | doc_lines
        assert not any(src.line_of(f.end) >= r >= src.line_of(f.start) for r in bad_lines)
        _check_point(src, tree, f, text)
    assert any("ö" in src.slice(src.line_starts[src.line_of(f.start)], f.end) for f in points)


def test_fim_kinds_have_one_owner():
    from copilot.evaluate import run as evaluate_run
    from copilot.nightly import dataset as nightly_dataset
    from copilot.train import data as train_data

    assert FIM_KINDS == ("fim_file", "fim_history", "fim_typing") and "fim_typing" in HEAD_KINDS
    assert evaluate_run.FIM_KINDS is FIM_KINDS and nightly_dataset.FIM_KINDS is FIM_KINDS
    assert train_data.FIM_KINDS is FIM_KINDS


def test_config_hash_of_existing_datasets_is_unchanged():
    # the digest a dataset mined before typing points recorded: it stays the same dataset (incremental runs go on)
    assert IndexConfig().config_hash() == "506005ba13fa7ef4"
    assert IndexConfig(pairs=PairConfig(max_typing_per_file=0)).config_hash() != "506005ba13fa7ef4"


def test_indexer_end_to_end_writes_typing_points(tmp_path):
    build_company_repo(tmp_path / "repo")
    out = tmp_path / "ds"
    result = index_repos([str(tmp_path / "repo")], out)
    rows = pq.read_table(out / ds.POOL).to_pylist()
    typing = [r for r in rows if r["kind"] == "fim_typing"]
    assert len(typing) >= 4 and {r["language"] for r in typing} >= {"python", "typescript", "go"}
    counts = result.manifest["counts"]["by_kind"]
    assert counts["fim_typing"] == len(typing)  # small files: one typing point each
    for r in typing:
        assert r["prompt"] == f"<|fim_prefix|>{r['prefix']}<|fim_suffix|>{r['suffix']}<|fim_middle|>"
        assert r["completion"] == r["middle"] and r["middle"].strip()
        assert r["suffix"][:1] in ("\n", "")  # the middle ends at a line end
        typed = r["prefix"].rsplit("\n", 1)[-1].lstrip()
        inside = bool(typed) and _WORD.match(typed[-1]) and _WORD.match(r["middle"][0])
        assert inside or 1 <= len(typed) <= 8, (typed, r["middle"])
        assert "<SECRET>" not in typed  # the filters ran before: secrets are redacted in every kind alike
    disabled = index_repos([str(tmp_path / "repo")], tmp_path / "ds0",
                           IndexConfig(pairs=PairConfig(max_typing_per_file=0)))
    assert "fim_typing" not in disabled.manifest["counts"]["by_kind"]
