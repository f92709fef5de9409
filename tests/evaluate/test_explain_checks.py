"""Explanation checks on golden cases: a truncated section, an uncovered exception, an invented name."""

from __future__ import annotations

from copilot.evaluate.explain_checks import code_facts, scores, truncated

INVENTORY = '''class Inventory:
    """Stock per SKU."""

    def __init__(self):
        self.stock = {}

    def restock(self, sku, quantity):
        if quantity <= 0:
            raise ValueError("quantity must be positive")
        self.stock[sku] = self.stock.get(sku, 0) + quantity
        self.last_sku = sku
        return self.stock[sku]
'''


def test_facts_of_python_code():
    f = code_facts(INVENTORY, "python")
    assert f.params == {"sku", "quantity"}
    assert f.raises == {"ValueError"} and f.returns is True
    assert f.attributes == {"stock", "last_sku"}
    assert {"Inventory", "restock", "stock"} <= f.names


def test_a_section_cut_mid_list_is_truncated():
    assert truncated("The class keeps stock.\n\n- **reserve_items(sku, quantity)**:")
    assert truncated("It adds the quantity and")
    assert truncated("## restock")
    assert truncated("")
    assert not truncated("It adds `quantity` to the stock of `sku`.")
    assert not truncated("- returns the new count.")
    assert not truncated("Example:\n```python\ninv.restock('a', 2)\n```")


def test_coverage_sees_what_an_explanation_leaves_out():
    good = ("`restock(sku, quantity)` adds `quantity` to the stock of `sku`, records it as `last_sku` and returns "
            "the new count; it raises `ValueError` when quantity <= 0.")
    s = scores(good, INVENTORY, "python")
    assert s["coverage"] == 100.0 and s["truncated"] == 0.0 and s["invented"] == 0.0
    vague = "Adds or subtracts items for a bar"
    s = scores(vague, INVENTORY, "python")
    assert s["truncated"] == 100.0
    assert s["coverage"] == 0.0 and "invented" not in s  # no code spans to check


def test_invented_names_in_code_spans():
    text = "Calls `self.stock.get` and then `update_ledger(sku)`; see `restock`."
    s = scores(text, INVENTORY, "python")
    assert abs(s["invented"] - 100 / 3) < 1e-9  # update_ledger is not in the code
    s = scores("Uses `len(items)` on `Inventory`.", INVENTORY + "\nitems = []\n", "python")
    assert s["invented"] == 0.0  # builtins and names of the code are fine


def test_other_languages_check_names_only():
    go = "func Add(a int, b int) int { return a + b }"
    s = scores("`Add` returns `a + b` via `Sum`.", go, "go")
    assert "coverage" not in s and abs(s["invented"] - 100 / 3) < 1e-9


def test_repetition_sees_an_overview_that_says_the_sections_again():
    from copilot.evaluate.explain_checks import repetition

    sections = ["The `Inventory` class tracks stock levels per item and reserves items for orders.",
                "`restock` adds a positive quantity to an item's stock and raises ValueError otherwise."]
    twice = "The file defines an Inventory class that tracks stock levels per item. It also reads settings."
    assert repetition(twice, sections) == 50.0
    assert repetition("This module is the warehouse side of order handling, used by the checkout service.",
                      sections) == 0.0
    assert repetition("", sections) == 0.0 and repetition(twice, []) == 0.0


def test_repeated_sees_an_explanation_that_restates_itself():
    from copilot.evaluate.explain_checks import repeated

    text = ("`restock` adds a positive quantity to the stock of an item. It raises ValueError for other amounts. "
            "In short, restock adds a positive quantity to an item's stock.")
    assert abs(repeated(text) - 100 / 3) < 1e-9
    assert repeated("`restock` adds stock for an item. It raises ValueError for zero or negative amounts.") == 0.0
    assert scores(text, "def restock(sku, quantity):\n    pass\n", "python")["repeated"] == repeated(text)


def test_a_text_ending_in_a_list_number_is_truncated():
    assert truncated("It does two things.\n\n1. Reads.\n\n2.")
    assert not truncated("It does two things.\n\n1. Reads.\n2. Writes.")
