"""FIM pairs carry the repository context the server would have sent at their cursor, from the repository as
it was at the pair's commit (indexer.mine.context): never a later commit, never the working tree, never the
pair's own file."""

from __future__ import annotations

import json
from pathlib import Path
from dataclasses import asdict

import pytest
from helpers.indexer_fixtures import commit, init_repo

from copilot.core.files import sha256_json
from indexer import dataset as ds
from indexer.mine.config import IndexConfig
from indexer.mine.index import index_repos
from indexer.pairs import FIM_KINDS, PairConfig

README = "# billing\n\nSmall billing helpers.\n"

A_V1 = '''"""Money helpers."""


def helper(amount, rate):
    """Apply a tax rate to an amount in cents."""
    taxed = amount + amount * rate
    return round(taxed)
'''

# commit 2 changes helper's signature and adds later_helper
A_V2 = A_V1.replace("def helper(amount, rate):", "def helper(amount, rate, rounding=True):") + '''

def later_helper(amounts):
    """Total of several amounts in cents."""
    total = 0
    for amount in amounts:
        total += amount
    return total
'''

B_V1 = '''"""Invoices."""

from a import helper


def invoice_total(lines, rate):
    """The taxed total of an invoice's lines."""
    subtotal = sum(line.price * line.quantity for line in lines)
    taxed = helper(subtotal, rate)
    if taxed < 0:
        raise ValueError("negative invoice")
    return taxed
'''

B_V2 = B_V1.replace("from a import helper", "from a import helper, later_helper") + '''

def batch_total(invoices, rate):
    """The taxed total of several invoices."""
    totals = [invoice_total(inv.lines, rate) for inv in invoices]
    grand = later_helper(totals)
    return grand
'''


def _snippets(row: dict) -> list[dict]:
    return json.loads(row["context"]) if row.get("context") else []


@pytest.fixture(scope="module")
def mined(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("ctx")
    repo = init_repo(root / "repo")
    shas = {"c0": commit(repo, {"README.md": README}, "2024-01-01T10:00:00+00:00", "readme")}
    shas["c1"] = commit(repo, {"a.py": A_V1, "b.py": B_V1}, "2024-01-02T10:00:00+00:00", "helper and invoices")
    shas["c2"] = commit(repo, {"a.py": A_V2, "b.py": B_V2}, "2024-01-03T10:00:00+00:00", "later helper")
    # the working tree is never read: an uncommitted definition must appear in no context
    (repo / "a.py").write_text(A_V2 + "\n\ndef uncommitted_thing():\n    return 1\n", encoding="utf-8")
    out = root / "ds"
    config = IndexConfig(pairs=PairConfig(lines_per_fim=2, max_fim_per_file=32, max_history_per_file=12),
                         test_fraction=0.0)
    result = index_repos([str(repo)], out, config)
    return {"rows": ds.read_pool(out), "shas": shas, "manifest": result.manifest, "out": out}


def test_history_pairs_see_the_tree_of_their_commit(mined):
    rows, c1 = mined["rows"], mined["shas"]["c1"]
    early = [r for r in rows if r["kind"] == "fim_history" and r["commit"] == c1 and r["path"] == "b.py"]
    assert early, "commit 1 gives history pairs in b.py"
    texts = ["\n".join(s["text"] for s in _snippets(r)) for r in early]
    # the definition of what b.py calls, from a.py as commit 1 has it ...
    with_helper = [t for t in texts if "def helper(amount, rate):" in t]
    assert with_helper, texts
    assert any(s["path"] == "a.py" and s["source"] == "definition"
               for r in early for s in _snippets(r) if "def helper" in s["text"])
    # ... and nothing committed later (helper's new signature, later_helper), nothing of the working tree
    assert not any("rounding" in t or "later_helper" in t or "uncommitted_thing" in t for t in texts)


def test_head_pairs_see_head_and_no_pair_sees_its_own_file(mined):
    rows = mined["rows"]
    fim = [r for r in rows if r["kind"] in FIM_KINDS]
    assert fim and all(r["context"] for r in fim)  # every FIM pair was mined with context ("[]": none found)
    for r in fim:
        assert all(s["path"] != r["path"] for s in _snippets(r)), r["path"]
        # a commit's other edits are a history pair's recent edits; a HEAD pair was not being edited
        sources = ("definition", "similar", "recent_edit") if r["kind"] == "fim_history" else ("definition", "similar")
        assert all(s["source"] in sources for s in _snippets(r))
        assert all("uncommitted_thing" not in s["text"] for s in _snippets(r))
    head_b = [r for r in rows if r["kind"] in ("fim_file", "fim_typing") and r["path"] == "b.py"]
    assert any("def later_helper(amounts):" in s["text"] for r in head_b for s in _snippets(r))
    assert any("def helper(amount, rate, rounding=True):" in s["text"] for r in head_b for s in _snippets(r))
    assert not any("def helper(amount, rate):" in s["text"] for r in head_b for s in _snippets(r))
    explain = [r for r in rows if r["kind"] == "explain"]
    assert explain and not any(r["context"] for r in explain)
    counts = mined["manifest"]["extra"]["context"]
    assert counts["tokens"] == 256 and counts["fim_pairs"] == len([r for r in fim if r["split"] in ("train", "test")])
    assert 0 < counts["non_empty"] <= counts["mined_with_context"] == counts["fim_pairs"]


CONFIG_V1 = '"""Settings."""\n\nTIMEOUT_S = 30\n' + "".join(f'SHADE_{i} = {i}\n' for i in range(45))
CONFIG_V2 = CONFIG_V1 + 'RETRY_LIMIT = 5  # attempts before a payment gives up\nRETRY_BACKOFF_S = 2.5\n'
PAY_V1 = '''"""Payments."""

import config


def pay(invoice):
    """Charge an invoice once."""
    return invoice.charge(timeout=config.TIMEOUT_S)
'''
PAY_V2 = PAY_V1 + '''

def pay_with_retries(invoice):
    """Charge an invoice, trying again on failure."""
    for attempt in range(config.RETRY_LIMIT):
        if invoice.charge(timeout=config.TIMEOUT_S):
            return attempt
    return -1
'''


def test_a_history_pair_sees_the_other_lines_its_commit_added_as_recent_edits(tmp_path):
    repo = init_repo(tmp_path / "repo")
    commit(repo, {"README.md": README}, "2024-01-01T10:00:00+00:00", "readme")
    c1 = commit(repo, {"config.py": CONFIG_V1, "pay.py": PAY_V1}, "2024-01-02T10:00:00+00:00", "pay")
    c2 = commit(repo, {"config.py": CONFIG_V2, "pay.py": PAY_V2}, "2024-01-03T10:00:00+00:00", "retries")
    commit(repo, {"config.py": CONFIG_V2 + "FUTURE_FLAG = True\n"}, "2024-01-04T10:00:00+00:00", "later")
    config = IndexConfig(pairs=PairConfig(lines_per_fim=2, max_fim_per_file=32, max_history_per_file=12),
                         test_fraction=0.0)
    index_repos([str(repo)], tmp_path / "ds", config)
    rows = [r for r in ds.read_pool(tmp_path / "ds") if r["kind"] == "fim_history" and r["path"] == "pay.py"]
    at_c2 = [s for r in rows if r["commit"] == c2 for s in _snippets(r)]
    # the constants commit 2 added to config.py, far below what pay.py's code matches (no definition or
    # similar chunk brings them), after the similar chunk of config.py ...
    assert any("TIMEOUT_S = 30" in s["text"] and "RETRY_LIMIT = 5  # attempts before a payment gives up" in s["text"]
               for s in at_c2 if s["path"] == "config.py"), at_c2
    # ... as config.py was at that commit: nothing a later commit wrote, nothing of commit 2 at commit 1
    assert not any("FUTURE_FLAG" in s["text"] for r in rows for s in _snippets(r))
    at_c1 = [s for r in rows if r["commit"] == c1 for s in _snippets(r)]
    assert at_c1 and not any("RETRY_LIMIT" in s["text"] for s in at_c1)


def test_context_is_within_the_budget_and_loads_as_the_engines_take_it(mined):
    for r in mined["rows"]:
        if r["kind"] not in FIM_KINDS:
            continue
        ctx = ds.row_context(r)
        assert len(ctx) <= 4 and all(isinstance(p, str) and isinstance(t, str) for p, t in ctx)
        assert sum(len(t) for _, t in ctx) <= 256 * 3.5 + 16
    dd = ds.load_pairs(mined["out"])
    assert "context" in dd["train"].column_names and ds.has_context(dd["train"])


def test_the_knob_keeps_old_datasets_identity_and_zero_turns_it_off(tmp_path):
    default = IndexConfig()
    data = asdict(default)
    for name in ("lines_per_typing", "max_typing_per_file", "context_tokens_repo"):
        del data["pairs"][name]
    assert default.config_hash() == sha256_json(data, 16)  # the hash datasets mined before the knob have
    off = IndexConfig(pairs=PairConfig(context_tokens_repo=0))
    assert off.config_hash() != default.config_hash()

    repo = init_repo(tmp_path / "repo")
    commit(repo, {"README.md": README}, "2024-01-01T10:00:00+00:00")
    commit(repo, {"a.py": A_V1, "b.py": B_V1}, "2024-01-02T10:00:00+00:00")
    index_repos([str(repo)], tmp_path / "ds", IndexConfig(pairs=off.pairs, test_fraction=0.0))
    rows = ds.read_pool(tmp_path / "ds")
    assert rows and not any(r["context"] for r in rows)
    assert not ds.has_context(rows)


def test_rows_without_context_read_as_none():
    assert ds.row_context({}) == () and ds.row_context({"context": None}) == ()
    assert ds.row_context({"context": ""}) == () and ds.row_context({"context": "[]"}) == ()
    assert ds.row_context({"context": "not json"}) == ()
    assert ds.row_context({"context": json.dumps([{"path": "a.py", "text": "def f(): ...", "source": "definition"}])}) \
        == (("a.py", "def f(): ..."),)
    assert not ds.has_context([{"kind": "fim_file"}])


def test_names_of_the_file_without_the_middle_match_reading_it_again():
    from indexer.mine.context import PairContext
    from indexer.workspace.repo_context import file_names

    text = ('import os\nfrom a import helper\n\n\ndef run(x):\n    from b import lazy\n    y = helper(x)\n'
            '    return lazy(y)\n\n\ndef other():\n    return os.sep\n')
    ctx = PairContext.__new__(PairContext)
    ctx._names = {}
    cases = [text.index("y = helper"), text.index("from b import lazy"), text.index("def other"),
             text.index("from a import helper"), text.index("return os.sep")]
    for at in cases:
        n = len(text[at:].split("\n", 1)[0])
        got = ctx._names_of("m.py", text, "python", at, n)
        want = file_names(text[:at] + text[at + n:], "python")
        if got is None:  # the middle touches an import: read again from the file without it
            assert at in (cases[1], cases[3])
            continue
        assert got == want, text[at:at + n]
    assert ctx._names_of("m.py", text, "python", cases[2], len("def other():")).local == {"run"}


def _cuts(text: str, rng, count: int):
    """Middles as the miner cuts them: whole statements from their indentation, and spans from anywhere."""
    lines = text.split("\n")
    for _ in range(count):
        if rng.random() < 0.5:
            i = rng.randrange(len(lines))
            indent = len(lines[i]) - len(lines[i].lstrip())
            at = sum(len(line) + 1 for line in lines[:i]) + indent
            n = len("\n".join(lines[i:i + rng.randint(1, 5)])) - indent
        else:
            at, n = rng.randrange(len(text)), rng.randint(1, 80)
        yield at, max(0, min(n, len(text) - at))


@pytest.mark.parametrize("language, paths", [
    ("python", ["indexer/mine/context.py", "indexer/workspace/repo_context.py", "copilot/cli/main.py",
                "lsp/server.py"]),
    ("typescript", ["editors/vscode/src/extension.ts", "editors/vscode/src/logic/request.ts"]),
])
def test_what_a_pair_uses_without_importing_is_what_the_server_reads_from_the_file_without_the_middle(
        language, paths):
    """The server reads the names a file uses but neither defines nor imports from the whole buffer; the
    miner reads them from each file version once and takes the middle out. Same names, same order, for any
    cut: strings, comments, names cut in two and assignments written across the cut included."""
    import random

    from indexer.mine.context import PairContext
    from indexer.workspace.repo_context import file_names

    root = Path(__file__).resolve().parents[2]
    rng = random.Random(18)
    ctx = PairContext.__new__(PairContext)
    ctx._names = {}
    checked = unresolved = 0
    for rel in paths:
        text = (root / rel).read_text()
        for at, n in _cuts(text, rng, 150):
            got = ctx._names_of(rel, text, language, at, n)
            if got is None:  # the middle touches an import: the file without it is read again
                continue
            want = file_names(text[:at] + text[at + n:], language)
            assert got == want, (rel, text[at:at + n])
            checked += 1
            unresolved += bool(want.unresolved)
    assert checked > 100 * len(paths) and unresolved, "no cut left a name used without importing: pick other files"
