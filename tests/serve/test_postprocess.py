"""Golden cases for completion post-processing. The cursor is marked with █ inside the document text;
`raw` is what a model generated there (typical 0.5B output that never stops)."""

import pytest

from copilot.serve.postprocess import (
    cut_repetition,
    is_mid_line,
    postprocess,
    wants_multiline,
)

CURSOR = "█"


def split(doc: str) -> tuple[str, str]:
    assert doc.count(CURSOR) == 1
    return tuple(doc.split(CURSOR))  # type: ignore[return-value]


GOLDEN = [
    # (name, document with cursor, raw model output, expected insert text)
    (
        "python: end of return line stops at the line end",
        "def is_palindrome(s):\n    return █\n",
        "s == s[::-1]\n\n# Example usage:\nprint(is_palindrome('abba'))\n",
        "s == s[::-1]",
    ),
    (
        "python: body stops when indentation falls below the block",
        "def fib(n):\n    █\n",
        "if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n\n\ndef main():\n    print(fib(10))\n",
        "if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)",
    ),
    (
        "python: stops where it starts repeating the suffix",
        "class Stack:\n    def push(self, item):\n█\n\n    def pop(self):\n        return self.items.pop()\n",
        "        self.items.append(item)\n\n    def pop(self):\n        return self.items.pop()\n",
        "        self.items.append(item)",
    ),
    (
        "python: mid-line cursor gives a single line and no duplicated closer",
        "import os\npath = os.path.join(█)\n",
        "base, name)\nprint(path)\n",
        "base, name",
    ),
    (
        "python: blank line after a def, body lands at the body indentation",
        "class Stack:\n    def push(self, item):\n█\n    def peek(self):\n        return self.items[-1]\n",
        "        self.items.append(item)\n\n    def size(self):\n        return len(self.items)\n",
        "        self.items.append(item)",
    ),
    (
        "javascript: closing brace of the enclosing function is not repeated",
        "function add(a, b) {\n  █\n}\n",
        "return a + b;\n}\n\nfunction sub(a, b) {\n  return a - b;\n}\n",
        "return a + b;",
    ),
    (
        "javascript: a whole if-block with its own braces is kept",
        "function clamp(x) {\n  █\n}\n",
        "if (x < 0) {\n    return 0;\n  }\n  return x;\n}\n",
        "if (x < 0) {\n    return 0;\n  }\n  return x;",
    ),
    (
        "go: stops at the closing brace already in the file",
        "func Max(a, b int) int {\n\tif a > b {\n\t\treturn a\n\t}\n\t█\n}\n",
        "return b\n}\n\nfunc Min(a, b int) int {\n",
        "return b",
    ),
    (
        "rust: mid-line inside call args",
        "fn main() {\n    let v = vec![1, 2, 3];\n    println!(\"{}\", █);\n}\n",
        "v.len());\n}\n",
        "v.len()",
    ),
    (
        "java: single statement at end of line",
        "public int max(int a, int b) {\n    return █\n}\n",
        "a > b ? a : b;\n}\n\npublic int min(int a, int b) {\n",
        "a > b ? a : b;",
    ),
    (
        "c: end-of-text sentinel decoded into the text is cut",
        "int square(int x) {\n    return █\n}\n",
        "x * x;<|endoftext|>int cube(int x)",
        "x * x;",
    ),
    (
        "typescript: repeated suffix line is removed",
        "function greet(name: string): string {\n  █\n  return msg;\n}\n",
        "const msg = `Hello, ${name}`;\n  return msg;\n}\n",
        "const msg = `Hello, ${name}`;",
    ),
    (
        "python: degenerate loop is cut",
        "xs = [█]\n",
        "'..', '..', '..', '..', '..', '..', '..', '..'",
        "'..',",
    ),
    (
        "python: nothing useful gives an empty completion",
        "def f():\n    █\n    return 1\n",
        "return 1\n",
        "",
    ),
]


@pytest.mark.parametrize("name,doc,raw,expected", GOLDEN, ids=[g[0] for g in GOLDEN])
def test_golden(name, doc, raw, expected):
    prefix, suffix = split(doc)
    text, _ = postprocess(raw, prefix, suffix, max_lines=8, stop_strings=("<|endoftext|>", "<|fim_prefix|>"))
    assert text == expected


def test_max_lines_limits_multiline():
    prefix, suffix = split("def f():\n    █\n")
    raw = "\n".join(f"    x{i} = {i}" for i in range(20)).lstrip()
    text, reason = postprocess(raw, prefix, suffix, max_lines=3)
    assert text.count("\n") == 2
    assert reason == "length"


def test_mode_detection():
    assert is_mid_line(*split("foo(█bar)\n"))
    assert not is_mid_line(*split("foo(█)\n"))  # a lone closer is not "code after the cursor"
    assert wants_multiline(*split("def f():█\n"))
    assert wants_multiline(*split("def f():\n    █\n"))
    assert not wants_multiline(*split("x = compute(█)\n"))
    assert not wants_multiline(*split("    return █\n"))


def test_repetition_keeps_comment_rulers():
    assert cut_repetition("# ----------------------------")[1] is False
    assert cut_repetition("a, b, c")[1] is False
    text, cut = cut_repetition("foo(1) foo(1) foo(1) foo(1) foo(1)")
    assert cut and text == "foo(1)"
