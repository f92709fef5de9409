"""indexer.workspace: definitions with signatures (not bodies), the indexer's path rules on a working tree,
updates from disk and from buffers, BM25 chunks, and the bounds."""

from __future__ import annotations

from pathlib import Path

from indexer.workspace.imports import parse_imports, resolve_module
from indexer.workspace.index import Limits, WorkspaceIndex, lines_of
from indexer.workspace.symbols import scan

BILLING = '''"""Billing."""
import math


def invoice_total(lines: list, customer: "Customer") -> float:
    """Sum of the invoice lines, taxes included.

    More words that are not the first line."""
    secret_body_marker = 1
    return sum(l.amount for l in lines) * secret_body_marker


class Invoice:
    """An invoice."""

    number: int
    lines: list

    def __init__(self, number, lines):
        self.number = number

    def total(self) -> float:
        return invoice_total(self.lines, None)
'''


def write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)


def test_definitions_carry_signature_and_doc_line_not_the_body():
    defs = {d.qualname: d for d in scan(BILLING, "python", "billing.py").definitions}
    f = defs["invoice_total"]
    assert (f.kind, f.start_line, f.end_line) == ("function", 4, 9)
    assert f.signature == 'def invoice_total(lines: list, customer: "Customer") -> float:'
    assert f.doc == "Sum of the invoice lines, taxes included."
    text = f.render()
    assert "secret_body_marker" not in text and "More words" not in text
    cls = defs["Invoice"].render()
    assert cls.splitlines()[:4] == ["class Invoice:", '    """An invoice."""', "    number: int", "    lines: list"]
    assert "def __init__(self, number, lines): ..." in cls and "self.number = number" not in cls
    method = defs["Invoice.total"]
    assert method.kind == "method" and method.render().splitlines()[0] == "class Invoice:"


def test_typescript_definitions_and_chunks():
    ts = ("/** Sum it. */\nexport function total(xs: number[]): number {\n  return xs.reduce((a, b) => a + b, 0);\n}\n"
          "export class Cart {\n  items: Item[] = [];\n  add(item: Item): void { this.items.push(item); }\n}\n")
    sf = scan(ts, "typescript", "cart.ts")
    defs = {d.qualname: d for d in sf.definitions}
    assert defs["total"].render() == "// Sum it.\nexport function total(xs: number[]): number { ... }"
    assert "add(item: Item): void { ... }" in defs["Cart"].render()
    assert sf.chunks and all(c.tokens for c in sf.chunks)


def test_walk_follows_the_indexer_path_rules(tmp_path):
    write(tmp_path, {
        "app/main.py": "def main():\n    return run_app()\n",
        "app/gen_pb2.py": "def generated():\n    pass\n",
        "build/out.py": "def built():\n    pass\n",
        ".gitignore": "build/\n*.tmp.py\n",
        "app/x.tmp.py": "def tmp():\n    pass\n",
        "node_modules/lib/index.js": "function lib() {}\n",
        ".venv/lib/site.py": "def site():\n    pass\n",
        "vendor/dep.go": "package dep\nfunc Dep() {}\n",
        "app/big.py": "x = 1\n" * 400,
        "app/minified.js": "var a=1;" * 200,
        "app/notes.txt": "def not_code(): pass\n",
    })
    idx = WorkspaceIndex(tmp_path, Limits(max_file_bytes=2000))
    report = idx.build()
    assert idx.has("app/main.py")
    for rel in ("app/gen_pb2.py", "build/out.py", "app/x.tmp.py", "node_modules/lib/index.js", ".venv/lib/site.py",
                "vendor/dep.go", "app/big.py", "app/minified.js", "app/notes.txt"):
        assert not idx.has(rel), rel
    assert report.files == 1 and report.skipped["oversized"] == 1 and report.skipped["generated"] >= 2


def test_updates_from_disk_and_buffers_and_removal(tmp_path):
    write(tmp_path, {"billing.py": BILLING, "app.py": "from billing import invoice_total\n"})
    idx = WorkspaceIndex(tmp_path)
    idx.build()
    assert [d.path for d in idx.named("invoice_total")] == ["billing.py"]
    (tmp_path / "billing.py").write_text(BILLING + "\n\ndef late_fee(days: int) -> float:\n    return days * 2.5\n")
    assert not idx.named("late_fee")
    idx.reload("billing.py")
    assert idx.named("late_fee")[0].signature == "def late_fee(days: int) -> float:"
    idx.set_buffer("billing.py", "def renamed_fee(days):\n    return days\n")  # unsaved edit
    assert not idx.named("late_fee") and idx.named("renamed_fee")
    assert lines_of(idx.text_of("billing.py"), 0, 0) == "def renamed_fee(days):"  # chunks read from the buffer
    idx.reload("billing.py")  # closed without saving: the disk again
    assert idx.named("late_fee") and not idx.named("renamed_fee")
    (tmp_path / "billing.py").unlink()
    idx.reload("billing.py")
    assert not idx.has("billing.py") and not idx.named("invoice_total")


def test_similar_chunks_never_come_from_the_excluded_file(tmp_path):
    write(tmp_path, {
        "a.py": "def parse_header(raw_bytes, header_codec):\n    return header_codec.decode(raw_bytes)\n",
        "b.py": "def parse_header_again(raw_bytes, header_codec):\n    return header_codec.decode(raw_bytes)\n",
        "c.py": "def unrelated(x):\n    return x * 2\n",
    })
    idx = WorkspaceIndex(tmp_path)
    idx.build()
    terms = {"raw_bytes", "header_codec", "decode"}
    assert {h.path for h in idx.search(terms, k=3)} == {"a.py", "b.py"}
    assert [h.path for h in idx.search(terms, k=3, exclude="a.py")] == ["b.py"]
    for _ in range(3):  # re-indexing leaves no dead chunk behind in the results
        idx.reload("b.py")
    assert [h.path for h in idx.search(terms, k=5, exclude="a.py")] == ["b.py"]


def test_bounds_stop_the_build_with_a_note(tmp_path):
    write(tmp_path, {f"m{i}.py": f"def f{i}():\n    return {i}\n" for i in range(12)})
    idx = WorkspaceIndex(tmp_path, Limits(max_files=5))
    report = idx.build()
    assert report.files == 5 and idx.summary()["files"] == 5
    assert "stopped at 5 files" in report.notes[0] and "context.max_files" in report.notes[0]


def test_imports_resolve_to_repository_files(tmp_path):
    write(tmp_path, {"pkg/__init__.py": "", "pkg/billing.py": BILLING, "pkg/sub/app.py": "",
                     "web/src/cart.ts": "export function total() {}\n", "web/src/app.ts": ""})
    idx = WorkspaceIndex(tmp_path)
    idx.build()
    py = parse_imports("from pkg.billing import invoice_total as total, Invoice\nimport pkg.billing as b\n"
                       "from .. import billing\nimport os, json\n", "python")
    assert py["total"].name == "invoice_total" and py["b"].name is None and py["os"].module == "os"
    res = [resolve_module(py[n].module, "pkg/sub/app.py", "python", idx.has, idx.ending) for n in ("total", "b", "os")]
    assert res == [["pkg/billing.py"], ["pkg/billing.py"], []]
    assert resolve_module("..billing", "pkg/sub/app.py", "python", idx.has, idx.ending) == ["pkg/billing.py"]
    js = parse_imports("import React, { total as sum, type Item } from './cart';\nimport * as ui from 'ui-lib';\n"
                       "const { fmt } = require('./cart.js');\n", "typescript")
    assert js["sum"].name == "total" and js["ui"].name is None and js["fmt"].module == "./cart.js"
    assert resolve_module("./cart", "web/src/app.ts", "typescript", idx.has, idx.ending) == ["web/src/cart.ts"]
    assert resolve_module("./cart.js", "web/src/app.ts", "typescript", idx.has, idx.ending) == ["web/src/cart.ts"]
    assert resolve_module("ui-lib", "web/src/app.ts", "typescript", idx.has, idx.ending) == []
