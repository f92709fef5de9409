"""extract_units on real snippets of every supported language: exact names, kinds, parents, docstrings."""

from __future__ import annotations

import pytest

from indexer.extract import clean_comment, clean_python_docstring, extract_units
from indexer.languages import (
    SUPPORTED_LANGUAGES,
    get_parser,
    get_query,
    language_for_path,
    parse_language_list,
)
from copilot.core.types import UserInputError

PYTHON = '''#!/usr/bin/env python
"""Module doc."""
import os

# Helper that adds.
# Second line.
def add(a, b):
    return a + b

@decorator
class Greeter(Base):
    """Greets people.

    Politely.
    """

    def hello(self, name):
        \'\'\'Say hello.\'\'\'
        def inner():
            pass
        return f"hi {name}"


def after():
    x = 1  # trailing comment, not a docstring
    return x
'''

JAVASCRIPT = '''/**
 * Adds two numbers.
 * @param a first
 */
export function add(a, b) { return a + b; }

// Doubles x.
const double = (x) => x * 2;

class Counter extends Base {
  // Increment by one.
  inc() { this.n++; }
  static make() { return new Counter(); }
}
function* gen() { yield 1; }
'''

TYPESCRIPT = '''// A point.
export interface Point { x: number; y: number }
/** Distance from origin. */
export const norm = (p: Point): number => Math.hypot(p.x, p.y);
export type Id = string;
enum Color { Red, Green }
export default class Shape {
  /** Area. */
  area(): number { return 0; }
}
'''

TSX = '''// Renders a button.
export function Button(props: {label: string}) { return <button>{props.label}</button>; }
const App = () => <div><Button label="x" /></div>;
'''

GO = '''package main

// Server serves.
type Server struct {
	addr string
}

// Handler handles.
type Handler interface { Serve() }

// Start starts the server.
// It blocks.
func (s *Server) Start() error { return nil }

func main() {
	f := func() {}
	f()
}
'''

JAVA = '''package x;
/**
 * A shape.
 */
public class Shape {
    /** Area of it. */
    public double area() { return 0; }
    public Shape() {}
    static class Inner { void f() {} }
}
interface Drawable { void draw(); }
enum Color { RED; }
'''

RUST = '''//! crate docs
/// A point in space.
#[derive(Debug, Clone)]
pub struct Point { x: f64 }

/// Shapes.
enum Shape { Circle }

trait Area {
    /// The area.
    fn area(&self) -> f64;
}

impl<T> Area for Wrapper<T> {
    /// Computes.
    fn area(&self) -> f64 { 0.0 }
}

/* Block comment
 * about main. */
fn main() {}
'''

C = '''#include <stdio.h>
/* Adds numbers. */
int add(int a, int b) { return a + b; }

// A node.
struct node { int v; struct node *next; };

static char *dup(const char *s) { return 0; }
'''

CPP = '''#include <vector>
namespace geo {
/// A vector type.
template <typename T>
class Vec {
 public:
  // Length.
  double len() const { return 0; }
  void scale(double k);
};

/** Scales. */
void Vec::scale(double k) {}

int &ref(int &x) { return x; }
}
struct P { int x; };
'''


def summary(source: str, language: str, **kw) -> list[tuple[str, str, str | None]]:
    return [(u.kind, u.qualname, u.docstring) for u in extract_units(source, language, "f", **kw)]


def test_python_units_docstrings_and_parents():
    assert summary(PYTHON, "python") == [
        ("function", "add", "Helper that adds.\nSecond line."),
        ("class", "Greeter", "Greets people.\n\nPolitely."),
        ("method", "Greeter.hello", "Say hello."),
        ("function", "Greeter.hello.inner", None),
        ("function", "after", None),
    ]
    top = extract_units(PYTHON, "python", "f", top_level_only=True)
    assert [(u.kind, u.name) for u in top] == [("function", "add"), ("class", "Greeter"), ("function", "after")]
    greeter = top[1]
    # The span starts at the decorator; the doc span points at the docstring literal.
    assert greeter.text.startswith("@decorator\nclass Greeter")
    assert greeter.span.start_line == 9 and greeter.span.start_col == 0
    assert PYTHON.encode()[greeter.doc_span.start_byte:greeter.doc_span.end_byte].decode().startswith('"""Greets')
    add = top[0]
    assert add.doc_span.start_line == 4 and add.doc_span.end_line == 5


def test_javascript():
    assert summary(JAVASCRIPT, "javascript") == [
        ("function", "add", "Adds two numbers.\n@param a first"),
        ("function", "double", "Doubles x."),
        ("class", "Counter", None),
        ("method", "Counter.inc", "Increment by one."),
        ("method", "Counter.make", None),
        ("function", "gen", None),
    ]
    top = extract_units(JAVASCRIPT, "javascript", top_level_only=True)
    assert [u.name for u in top] == ["add", "double", "Counter", "gen"]
    assert top[0].text.startswith("export function add")
    assert top[1].text == "const double = (x) => x * 2;"


def test_typescript_and_tsx():
    assert summary(TYPESCRIPT, "typescript") == [
        ("interface", "Point", "A point."),
        ("function", "norm", "Distance from origin."),
        ("type", "Id", None),
        ("enum", "Color", None),
        ("class", "Shape", None),
        ("method", "Shape.area", "Area."),
    ]
    assert [u.name for u in extract_units(TYPESCRIPT, "typescript", top_level_only=True)] == [
        "Point", "norm", "Id", "Color", "Shape"]
    assert summary(TSX, "tsx") == [("function", "Button", "Renders a button."), ("function", "App", None)]


def test_go():
    assert summary(GO, "go") == [
        ("struct", "Server", "Server serves."),
        ("interface", "Handler", "Handler handles."),
        ("method", "Server.Start", "Start starts the server.\nIt blocks."),
        ("function", "main", None),
    ]
    assert [u.name for u in extract_units(GO, "go", top_level_only=True)] == ["Server", "Handler", "Start", "main"]


def test_java():
    assert summary(JAVA, "java") == [
        ("class", "Shape", "A shape."),
        ("method", "Shape.area", "Area of it."),
        ("method", "Shape.Shape", None),
        ("class", "Shape.Inner", None),
        ("method", "Inner.f", None),
        ("interface", "Drawable", None),
        ("method", "Drawable.draw", None),
        ("enum", "Color", None),
    ]
    assert [(u.kind, u.name) for u in extract_units(JAVA, "java", top_level_only=True)] == [
        ("class", "Shape"), ("interface", "Drawable"), ("enum", "Color")]


def test_rust():
    assert summary(RUST, "rust") == [
        ("struct", "Point", "A point in space."),  # attribute between doc comment and item
        ("enum", "Shape", "Shapes."),
        ("trait", "Area", None),
        ("method", "Area.area", "The area."),
        ("impl", "Wrapper", None),
        ("method", "Wrapper.area", "Computes."),
        ("function", "main", "Block comment\nabout main."),
    ]
    assert [(u.kind, u.name) for u in extract_units(RUST, "rust", top_level_only=True)] == [
        ("struct", "Point"), ("enum", "Shape"), ("trait", "Area"), ("impl", "Wrapper"), ("function", "main")]


def test_c_and_cpp():
    assert summary(C, "c") == [
        ("function", "add", "Adds numbers."),
        ("struct", "node", "A node."),
        ("function", "dup", None),
    ]
    assert summary(CPP, "cpp") == [
        ("class", "Vec", "A vector type."),
        ("method", "Vec.len", "Length."),
        ("method", "Vec.scale", "Scales."),
        ("function", "ref", None),
        ("struct", "P", None),
    ]
    top = extract_units(CPP, "cpp", top_level_only=True)
    # Namespace contents are top-level; the template<> line is part of the class.
    assert [(u.kind, u.name) for u in top] == [("class", "Vec"), ("method", "scale"), ("function", "ref"),
                                               ("struct", "P")]
    assert top[0].text.startswith("template <typename T>\nclass Vec")


def test_broken_unit_is_skipped_and_the_rest_kept():
    source = "def good():\n    return 1\n\nclass Bad:\n    def broken(self:\n        pass\n\ndef later():\n    return 2\n"
    names = [u.name for u in extract_units(source, "python")]
    assert "good" in names and "later" in names
    assert "Bad" not in names and "broken" not in names
    js = "function ok() { return 1; }\nfunction bad( { return ; }\nfunction fine() { return 2; }\n"
    js_names = [u.name for u in extract_units(js, "javascript")]
    assert "ok" in js_names and "bad" not in js_names


def test_non_ascii_columns_count_characters():
    source = "x = 'héllo'; y = 1\ndef f():\n    return 'ü'\n"
    (unit,) = extract_units(source, "python")
    assert unit.span.start_line == 1 and unit.span.end_col == len("    return 'ü'")
    assert unit.text == "def f():\n    return 'ü'"


def test_comment_and_docstring_cleaning():
    assert clean_comment("/**\n * One.\n *   Two.\n */") == "One.\n  Two."
    assert clean_comment("/// a\n/// b") == "a\nb"
    assert clean_comment("# a\n#   b") == "a\n  b"
    assert clean_python_docstring('r"""Raw\n    text.\n    """') == "Raw\ntext."
    assert clean_python_docstring("'single'") == "single"


def test_languages_table():
    assert language_for_path("a/b.PY") == "python"
    assert language_for_path("x.mjs") == "javascript" and language_for_path("x.jsx") == "javascript"
    assert language_for_path("x.tsx") == "tsx" and language_for_path("x.ts") == "typescript"
    assert language_for_path("x.h") == "c" and language_for_path("x.hpp") == "cpp"
    assert language_for_path("README.md") is None
    assert parse_language_list("py,ts") == ("python", "typescript", "tsx")
    with pytest.raises(UserInputError):
        parse_language_list("cobol")
    for lang in SUPPORTED_LANGUAGES:
        assert get_parser(lang) is get_parser(lang)
        assert get_query(lang).pattern_count > 0
