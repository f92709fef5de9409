"""lsp.cache: typed-ahead reuse of a shown suggestion."""

from lsp.cache import TypedAheadCache

PREFIX = "def add(a, b):\n    return "
SUFFIX = "\n\nprint(add(1, 2))\n"


def test_exact_hit_and_typed_ahead():
    c = TypedAheadCache()
    c.put("u", PREFIX, SUFFIX, "a + b", meta="m")
    assert c.get("u", PREFIX, SUFFIX).text == "a + b"
    hit = c.get("u", PREFIX + "a +", SUFFIX)
    assert hit.text == " b" and hit.typed == "a +" and hit.entry.meta == "m"


def test_misses():
    c = TypedAheadCache()
    c.put("u", PREFIX, SUFFIX, "a + b")
    assert c.get("u", PREFIX + "x", SUFFIX) is None  # typed something else
    assert c.get("u", PREFIX + "a + b", SUFFIX) is None  # typed it all: nothing left to suggest
    assert c.get("u", PREFIX + "a", SUFFIX + "#") is None  # text after the cursor changed
    assert c.get("u", "x" + PREFIX + "a", SUFFIX) is None  # text before the suggestion changed
    assert c.get("u", PREFIX[:-1], SUFFIX) is None  # deleted backwards
    assert c.get("other", PREFIX, SUFFIX) is None


def test_drop_and_bounds():
    c = TypedAheadCache(per_document=2, documents=2)
    c.put("u", PREFIX, SUFFIX, "one")
    c.put("u", PREFIX + "x", SUFFIX, "two")
    c.put("u", PREFIX + "xy", SUFFIX, "three")
    assert c.get("u", PREFIX, SUFFIX) is None  # evicted
    assert c.get("u", PREFIX + "xy", SUFFIX).text == "three"
    c.put("v", PREFIX, SUFFIX, "v")
    c.put("w", PREFIX, SUFFIX, "w")
    assert c.get("u", PREFIX + "xy", SUFFIX) is None  # least recently written document evicted
    c.drop("w")
    assert c.get("w", PREFIX, SUFFIX) is None
    c.put("v", PREFIX, SUFFIX, "")  # empty suggestions are not cached
    assert c.get("v", PREFIX, SUFFIX).text == "v"


def test_large_prefix_compares_only_near_the_cursor_but_correctly():
    big = "x = 1\n" * 200_000
    c = TypedAheadCache()
    c.put("u", big + PREFIX, SUFFIX, "a + b")
    assert c.get("u", big + PREFIX + "a ", SUFFIX).text == "+ b"
    assert c.get("u", big + PREFIX.replace("add", "sub") + "a ", SUFFIX) is None
