"""indexer.workspace.repo_context: which repository code goes before the file in a completion prompt."""

from __future__ import annotations

from pathlib import Path

import pytest

from indexer.workspace.index import WorkspaceIndex
from indexer.workspace.near_names import Ref, open_call, refs_near
from indexer.workspace.repo_context import CHARS_PER_TOKEN, choose, definitions_near, similar_query

BILLING = '''"""Billing rules."""


def invoice_total(lines: list, customer: "Customer") -> float:
    """Sum of the invoice lines, taxes included."""
    hidden_body_line = 42
    return sum(line.amount for line in lines) * hidden_body_line


class Customer:
    """Who pays."""

    name: str
    vat_rate: float = 0.2

    def __init__(self, name: str, vat_rate: float = 0.2):
        self.name = name

    def discount_for(self, amount: float) -> float:
        """The discount this customer gets on `amount`."""
        return 0.0
'''

APP = '''from billing import invoice_total, Customer
import shipping


def charge(customer, lines):
    fee = shipping.rate_for(customer)
    return invoice_total('''

FILES = {
    "billing.py": BILLING,
    "shipping.py": "def rate_for(customer) -> float:\n    \"\"\"Shipping cost.\"\"\"\n    return 4.5\n",
    "app.py": APP + "lines, customer) + fee\n",
    "other/billing_copy.py": "def invoice_total(a, b):\n    return 0\n",  # same name elsewhere: not imported
    "ui/cart.ts": "/** Sum of a cart. */\nexport function cartTotal(items: Item[]): number {\n  return 0;\n}\n",
    "ui/app.ts": "import { cartTotal as total } from './cart';\nconst x = total(",
    "srv/tax.go": "package srv\n\n// VatFor is the VAT of a country.\nfunc VatFor(country string) float64 {\n\treturn 0.2\n}\n",
    "srv/main.go": "package srv\n\nfunc main() {\n\tv := VatFor(\n}\n",
}


@pytest.fixture()
def repo(tmp_path: Path) -> WorkspaceIndex:
    for rel, text in FILES.items():
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    idx = WorkspaceIndex(tmp_path)
    idx.build()
    return idx


def test_names_at_the_cursor_call_being_typed_first():
    assert open_call("x = a.b.total(items, fmt(y), ") == ("a", "b", "total")
    assert open_call("x = [1, 2") is None
    refs = refs_near(APP, "lines)\n")
    assert refs[0] == Ref("invoice_total")
    assert Ref("rate_for", ("shipping",)) in refs and all(r.name != "return" for r in refs)


def test_definition_from_an_unopened_module_through_the_imports(repo):
    found = definitions_near(repo, "app.py", "python", APP, "lines, customer) + fee\n")
    assert [d.key for d in found][:2] == ["billing.py:invoice_total:3", "shipping.py:rate_for:0"]
    snippets = choose(repo, "app.py", "python", APP, "lines, customer) + fee\n", tokens=256)
    assert snippets[0].path == "billing.py" and snippets[0].source == "definition"
    text = snippets[0].text
    assert 'def invoice_total(lines: list, customer: "Customer") -> float:' in text
    assert "Sum of the invoice lines, taxes included." in text and "hidden_body_line" not in text
    assert all(s.path not in ("app.py", "other/billing_copy.py") for s in snippets)


def test_an_import_being_written_gets_what_the_file_uses_without_importing(repo):
    """`from billing import |` at the top while the file below builds a Customer: its definition is in the
    prompt, though no name near the cursor says so. A name only in a string or a comment brings nothing."""
    prefix = "import shipping\nfrom billing import "
    suffix = ('\n\n\ndef make(name):\n    """Like rate_for(x), a comment\'s name is no use."""\n'
              "    # rate_for(customer) in a comment too\n    return Customer(name)\n")
    keys = [d.key for d in definitions_near(repo, "maker.py", "python", prefix, suffix)]
    assert any(k.startswith("billing.py:Customer:") for k in keys), keys
    assert not any(k.startswith("shipping.py:rate_for") for k in keys), keys
    snippets = choose(repo, "maker.py", "python", prefix, suffix, tokens=256)
    assert snippets[0].path == "billing.py" and "class Customer" in snippets[0].text


def test_a_name_a_package_re_exports_is_found_where_it_is_defined():
    """`import shop` then `shop.Cart(`: shop/__init__.py only re-exports Cart (`from .core import Cart as
    Cart`), so the definition is looked for where the import points, two re-exports deep at most; a change
    to the package's imports is seen at once."""
    idx = WorkspaceIndex.from_texts([
        ("shop/__init__.py", "from .core import Cart as Cart\nfrom .pay import charge\n"),
        ("shop/core.py", "class Cart:\n    \"\"\"Items being bought.\"\"\"\n\n    items: list\n"),
        ("shop/pay/__init__.py", "from .cards import charge\n"),
        ("shop/pay/cards.py", "def charge(cart, card) -> bool:\n    return True\n"),
        ("shop/legacy.py", "class Basket:\n    pass\n"),
    ])

    def found(prefix: str) -> list[str]:
        return [d.key for d in definitions_near(idx, "app.py", "python", prefix, ")\n")]

    assert found("import shop\n\ncart = shop.Cart(") == ["shop/core.py:Cart:0"]
    assert found("from shop import Cart\n\ncart = Cart(") == ["shop/core.py:Cart:0"]
    assert found("import shop\n\nok = shop.charge(") == ["shop/pay/cards.py:charge:0"]
    assert found("import shop\n\nb = shop.Basket(") == []  # not what the package offers
    idx.set_buffer("shop/__init__.py", "from .legacy import Basket as Cart\n")
    assert found("import shop\n\ncart = shop.Cart(") == ["shop/legacy.py:Basket:0"]  # by its own name there


def test_a_name_a_typescript_index_re_exports_is_found_where_it_is_defined():
    idx = WorkspaceIndex.from_texts([
        ("web/src/cart/index.ts", "export { total as cartTotal, type Item } from './total';\n"),
        ("web/src/cart/total.ts", "export function total(items: Item[]): number {\n  return items.length;\n}\n"),
    ])
    prefix = "import { cartTotal } from './cart';\n\nconst n = cartTotal("
    found = [d.key for d in definitions_near(idx, "web/src/app.ts", "typescript", prefix, ");\n")]
    assert found == ["web/src/cart/total.ts:total:0"]


def test_names_a_star_import_or_export_brings_are_found_where_they_are_defined():
    idx = WorkspaceIndex.from_texts([
        ("web/src/cart/index.ts", "export * from './total';\nexport * as money from './money';\n"),
        ("web/src/cart/total.ts", "export function total(items: Item[]): number {\n  return items.length;\n}\n"),
        ("web/src/cart/money.ts", "export function round(x: number): number {\n  return x;\n}\n"),
        ("shop/__init__.py", "from .pricing import *\n"),
        ("shop/pricing.py", "def price_of(item, qty=1):\n    return item.cost * qty\n"),
        ("shop/helpers.py", "def slugify(text: str) -> str:\n    return text.lower()\n"),
        # the same names elsewhere: only the star says which one is meant
        ("web/src/report/total.ts", "export function total(rows: Row[]): number {\n  return 0;\n}\n"),
        ("legacy/pricing.py", "def price_of(sku):\n    return 0\n"),
        ("blog/text.py", "def slugify(title):\n    return title\n"),
    ])
    ts = "import { total } from './cart';\n\nconst n = total("
    assert [d.key for d in definitions_near(idx, "web/src/app.ts", "typescript", ts, ");\n")] == [
        "web/src/cart/total.ts:total:0"]
    py = "from shop import price_of\n\nx = price_of("
    assert [d.key for d in definitions_near(idx, "app.py", "python", py, ")\n")] == ["shop/pricing.py:price_of:0"]
    # a module that star-imports uses the names bare
    star = "from shop.helpers import *\n\nprint(slugify("
    assert [d.key for d in definitions_near(idx, "shop/views.py", "python", star, "))\n")] == [
        "shop/helpers.py:slugify:0"]
    assert definitions_near(idx, "shop/views.py", "python", "import os\n\nx = slugify(", ")\n") == []  # which?


def test_class_definition_gives_its_fields_and_init(repo):
    prefix = "from billing import Customer\n\nc = Customer("
    text = choose(repo, "app.py", "python", prefix, ")\n", tokens=256, similar=False)[0].text
    assert "class Customer:" in text and "vat_rate: float = 0.2" in text
    assert "def __init__(self, name: str, vat_rate: float = 0.2): ..." in text and "self.name = name" not in text


def test_javascript_imports_and_unique_names_elsewhere(repo):
    ts = choose(repo, "ui/app.ts", "typescript", FILES["ui/app.ts"], ");\n", tokens=256, similar=False)
    assert [(s.path, s.text) for s in ts] == [
        ("ui/cart.ts", "// Sum of a cart.\nexport function cartTotal(items: Item[]): number { ... }")]
    go = choose(repo, "srv/main.go", "go", "package srv\n\nfunc main() {\n\tv := VatFor(", "\n}\n", tokens=256,
                similar=False)
    assert go[0].path == "srv/tax.go" and "func VatFor(country string) float64 { ... }" in go[0].text


def test_method_through_an_attribute_is_found_by_its_unique_name(repo):
    prefix = "def f(c):\n    return c.discount_for("
    text = choose(repo, "shipping.py", "python", prefix, ")\n", tokens=256, similar=False)[0].text
    assert text.startswith("class Customer:\n    def discount_for(self, amount: float) -> float:")


def test_the_file_being_completed_never_appears_in_its_own_context(repo):
    """billing.py calling its own function: neither its definitions nor its chunks come back."""
    prefix = BILLING + "\n\ndef again(lines, customer):\n    return invoice_total("
    for snippets in (choose(repo, "billing.py", "python", prefix, ")\n", tokens=512),
                     choose(repo, "billing.py", "python", "hidden_body_line invoice_total lines amount", "",
                            tokens=512)):
        assert snippets and all(s.path != "billing.py" for s in snippets)


def test_similar_code_fills_the_budget_and_budgets_hold(repo):
    prefix = ("def total_of(lines):\n    hidden_body_line = 42\n"
              "    return sum(line.amount for line in lines) *")
    snippets = choose(repo, "new.py", "python", prefix, "\n", tokens=256, definitions=False)
    assert snippets[0].source == "similar" and snippets[0].path == "billing.py"
    for tokens in (40, 100, 256):
        out = choose(repo, "app.py", "python", APP, "lines)\n", tokens=tokens)
        assert sum(len(s.text) for s in out) <= tokens * CHARS_PER_TOKEN
    assert choose(repo, "app.py", "python", APP, "", tokens=0) == []
    assert len(choose(repo, "app.py", "python", APP, "", tokens=100_000)) <= 4


def test_similar_code_from_a_sibling_file_brings_what_follows_its_function_not_its_imports():
    """Files written alike (click's typing tests): the sibling's function comes with the line after it that
    uses it (`assert_type(hello, click.Command)`), and no file's docstring-and-imports header is offered for
    the imports the file being completed shares with it."""
    sibling = ('"""From https://example.org/docs/quickstart/#options"""\nfrom typing_extensions import assert_type\n'
               '\nimport click\n\n\n@click.command()\n@click.option("--count", default=1)\n'
               'def hello(count: int) -> None:\n    click.echo(count)\n\n\nassert_type(hello, click.Command)\n')
    idx = WorkspaceIndex.from_texts([("tests/typing/typing_count.py", sibling)])
    prefix = ('"""From https://example.org/docs/quickstart/#arguments"""\nfrom typing_extensions import '
              'assert_type\n\nimport click\n\n\n@click.command()\n@click.argument("name")\n'
              'def hello(name: str) -> None:\n    click.echo(name)\n\n\n')
    snippets = choose(idx, "tests/typing/typing_name.py", "python", prefix, "", tokens=256, definitions=False)
    assert [s.path for s in snippets] == ["tests/typing/typing_count.py"], snippets
    assert "def hello(count: int)" in snippets[0].text and "assert_type(hello, click.Command)" in snippets[0].text
    assert "import" not in snippets[0].text
    query = similar_query(prefix, "", "python")
    assert "import" not in query and "click.echo(name)" in query


def test_at_the_top_of_a_file_similar_code_is_found_by_the_code_below_the_cursor_not_by_links():
    """A new file's first function being written: above the cursor only a docstring with a link and imports,
    below it the line that uses the function. The sibling written alike is found by that line; the docs
    configuration that repeats the project's link is not offered."""
    sibling = ('"""From https://github.com/acme/cli#options"""\nimport click\n\n\n@click.command()\n'
               '@click.option("--count", default=1)\ndef hello(count: int) -> None:\n    click.echo(count)\n\n\n'
               'assert_type(hello, click.Command)\n')
    conf = ('project = "cli"\nhtml_theme_options = {\n    "github_url": "https://github.com/acme/cli",\n'
            '    "source": "https://github.com/acme/cli/tree/main/docs",\n    "issues": "https://github.com/acme/cli/issues",\n'
            '    "example": "https://github.com/acme/cli#a-simple-example",\n}\n')
    idx = WorkspaceIndex.from_texts([("tests/typing/typing_count.py", sibling), ("docs/conf.py", conf)])
    prefix = '"""The simple example from https://github.com/acme/cli#a-simple-example."""\nimport click\n\n\n'
    suffix = "\n\n\nassert_type(hello, click.Command)\n"
    out = choose(idx, "tests/typing/typing_name.py", "python", prefix, suffix, tokens=256, definitions=False)
    assert [s.path for s in out] == ["tests/typing/typing_count.py"], out
    assert "def hello(count: int)" in out[0].text
    assert "assert_type" in similar_query(prefix, suffix, "python")


def test_a_cursor_in_the_imports_is_shown_how_similar_files_begin():
    """Writing a new file's imports: the files most like it (by the code below the cursor) come with their
    docstring and imports, the lines to imitate, before their code; past the imports, only their code."""
    sibling = ('"""Type checks for options."""\nfrom typing_extensions import assert_type\n\nimport click\n\n\n'
               '@click.command()\n@click.option("--count", default=1)\ndef hello(count: int) -> None:\n'
               '    click.echo(count)\n\n\nassert_type(hello, click.Command)\n')
    idx = WorkspaceIndex.from_texts([("tests/typing/typing_count.py", sibling)])
    suffix = ('\n\n\n@click.command()\n@click.argument("name")\ndef hello(name: str) -> None:\n'
              '    click.echo(name)\n\n\nassert_type(hello, click.Command)\n')
    prefix = '"""Type checks for arguments."""\nfrom typing_extensions import assert_type\n\n'
    out = choose(idx, "tests/typing/typing_name.py", "python", prefix, suffix, tokens=256, definitions=False)
    assert len(out) == 1 and out[0].text.startswith(
        '"""Type checks for options."""\nfrom typing_extensions import assert_type\n\nimport click\n\n@click.command()')
    code_prefix = prefix + "import click\n\n\n@click.command()\n"
    out = choose(idx, "tests/typing/typing_name.py", "python", code_prefix, suffix[20:], tokens=256, definitions=False)
    assert "def hello(count: int)" in out[0].text and "import click" not in out[0].text
    # a sibling whose chunk starts at its first line holds its header already: shown once
    flat = '"""Type checks for a bare command."""\nimport click\n\nhello = click.command()(click.echo)\n' \
        'assert_type(hello, click.Command)\n'
    idx = WorkspaceIndex.from_texts([("tests/typing/typing_bare.py", flat)])
    out = choose(idx, "tests/typing/typing_name.py", "python", prefix, suffix, tokens=256, definitions=False)
    assert len(out) == 1 and out[0].text.count("Type checks for a bare command") == 1, out


@pytest.mark.parametrize("language, prefix", [
    ("python", "from .billing import (\n    imported_a,\n    imported_b,\n)\nimport imported_c as d\n\nkept_code = 1\n"),
    ("typescript", "import {\n  importedA,\n  importedB,\n} from './billing';\nconst kept_code = 1;\n"),
    ("go", 'package main\n\nimport (\n\t"imported_a"\n\t"imported_b"\n)\n\nfunc kept_code() {}\n'),
    ("rust", "use crate::billing::{\n    imported_a,\n    imported_b,\n};\n\nfn kept_code() {}\n"),
    ("java", "import com.acme.imported_a;\nimport static com.acme.imported_b.X;\n\nclass kept_code {}\n"),
    ("c", "#include <imported_a.h>\n#include \"imported_b.h\"\n\nint kept_code(void);\n"),
])
def test_the_similar_code_query_leaves_out_import_statements_spread_over_lines_in_every_language(language, prefix):
    query = similar_query(prefix, "", language)
    assert "kept_code" in query and "imported" not in query.lower(), query


def test_a_definition_added_on_disk_is_found_after_a_reload(repo):
    prefix = "from billing import late_fee\n\nx = late_fee("
    assert choose(repo, "app.py", "python", prefix, ")\n", tokens=256, similar=False) == []
    (repo.root / "billing.py").write_text(BILLING + "\n\ndef late_fee(days: int) -> float:\n    return 2.5 * days\n")
    repo.reload("billing.py")
    out = choose(repo, "app.py", "python", prefix, ")\n", tokens=256, similar=False)
    assert out[0].path == "billing.py" and "def late_fee(days: int) -> float:" in out[0].text
