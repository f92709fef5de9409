"""The one-way flow, checked on the source with `ast`: no import loop, no upward import, torch only where a
model runs or trains, and the start-up paths (`copilot --help`, the language server) never load torch."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Floors from the ground up. A module may import its own package and any package on a LOWER floor;
# packages that share a floor are siblings and never import each other.
FLOORS: list[tuple[str, ...]] = [
    ("copilot.core",),                      # types, settings, paths, files, git, clock, locks
    ("indexer",),                           # repositories -> pairs dataset (indexer.dataset owns it)
    ("copilot.models", "copilot.prompts"),  # base models; FIM and explain prompt formats
    ("copilot.adapters",),                  # registry, GGUF conversion and merge, retention
    ("copilot.train",),                     # LoRA/QLoRA -> candidate in the registry
    ("copilot.serve",),                     # engines (transformers, llama.cpp), decoding, post-processing
    ("copilot.evaluate",),                  # held-out scoring through the engines
    ("copilot.nightly", "copilot.service"),  # the nightly cycle; the team inference service (front door, engines)
    ("copilot.cli", "lsp"),                 # the two front ends
]
HEAVY = ("torch", "transformers", "peft", "bitsandbytes")
# The only modules that may import a heavy library (lazily or not): they train or run a model.
HEAVY_ALLOWED = {
    "copilot.models.convert", "copilot.models.device",
    "copilot.serve.hf",
    "copilot.train.model", "copilot.train.loop", "copilot.train.checkpoint", "copilot.train.distributed", "copilot.train.launch",
    "copilot.evaluate.embedder",
}


def package_of(module: str) -> str | None:
    best = None
    for floor in FLOORS:
        for pkg in floor:
            if (module == pkg or module.startswith(pkg + ".")) and (best is None or len(pkg) > len(best)):
                best = pkg
    return best


def floor_of(pkg: str) -> int:
    return next(i for i, floor in enumerate(FLOORS) if pkg in floor)


def modules() -> dict[str, Path]:
    out = {}
    for top in ("copilot", "indexer", "lsp"):
        for p in sorted((ROOT / top).rglob("*.py")):
            parts = list(p.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = p
    return out


def _type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (
        isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING")


def imports_of(module: str, path: Path, known: set[str]) -> list[tuple[str, int]]:
    """(imported module, line) for every import in the file, top-level or inside a function."""
    tree = ast.parse(path.read_text(), str(path))
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and _type_checking(node):
            skip.update(id(n) for child in node.body for n in ast.walk(child))
    found = []
    is_pkg = path.name == "__init__.py"
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            found += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base[: len(base) - node.level + (1 if is_pkg else 0)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.append((target, node.lineno))
            for a in node.names:  # `from copilot.serve import llama` imports the module copilot.serve.llama
                if f"{target}.{a.name}" in known:
                    found.append((f"{target}.{a.name}", node.lineno))
    return found


def graph() -> dict[str, list[tuple[str, int]]]:
    mods = modules()
    known = set(mods)
    g = {}
    for m, p in mods.items():
        g[m] = [(t, line) for t, line in imports_of(m, p, known) if t in known and t != m]
    return g


def test_every_module_belongs_to_a_floor():
    lost = [m for m in modules() if package_of(m) is None and m not in ("copilot",)]
    assert not lost, f"modules outside the floors {FLOORS}: {lost}"


def test_imports_point_down():
    bad = []
    for m, deps in graph().items():
        src = package_of(m)
        if src is None:
            continue
        for t, line in deps:
            dst = package_of(t)
            if dst is None or dst == src:
                continue
            if floor_of(dst) >= floor_of(src):
                bad.append(f"{m}:{line} imports {t} ({dst} is not below {src})")
    assert not bad, "upward or sideways imports:\n" + "\n".join(bad)


def test_no_import_loop():
    g = {m: sorted({t for t, _ in deps}) for m, deps in graph().items()}
    WHITE, GREY, BLACK = 0, 1, 2
    color = dict.fromkeys(g, WHITE)
    stack: list[str] = []
    loops: list[list[str]] = []

    def visit(m: str) -> None:
        color[m] = GREY
        stack.append(m)
        for t in g[m]:
            if color[t] == GREY:
                loops.append(stack[stack.index(t):] + [t])
            elif color[t] == WHITE:
                visit(t)
        stack.pop()
        color[m] = BLACK

    for m in g:
        if color[m] == WHITE:
            visit(m)
    assert not loops, "import loops:\n" + "\n".join(" -> ".join(loop) for loop in loops)


def test_heavy_libraries_only_where_a_model_runs_or_trains():
    bad = []
    mods = modules()
    for m, p in mods.items():
        for t, line in imports_of(m, p, set(mods)):
            heavy = t.split(".")[0] in HEAVY or t.startswith("safetensors.torch")
            if heavy and m not in HEAVY_ALLOWED:
                bad.append(f"{m}:{line} imports {t}")
    assert not bad, "torch/transformers/peft/bitsandbytes outside the model modules:\n" + "\n".join(bad)


def test_the_checker_sees_a_loop_and_an_upward_import(tmp_path, monkeypatch):
    """The rules above would fail on a bad tree: a planted loop and an upward import are reported."""
    for pkg in ("copilot/core", "copilot/serve", "indexer", "lsp"):
        (tmp_path / pkg).mkdir(parents=True, exist_ok=True)
        (tmp_path / pkg / "__init__.py").write_text("")
    (tmp_path / "copilot" / "__init__.py").write_text("")
    (tmp_path / "copilot/core/a.py").write_text("from copilot.serve import b\n")
    (tmp_path / "copilot/serve/b.py").write_text("from copilot.core import a\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    with pytest.raises(AssertionError, match="copilot.core.a:1 imports copilot.serve.b"):
        test_imports_point_down()
    with pytest.raises(AssertionError, match="import loops"):
        test_no_import_loop()


_NO_TORCH = "import sys; bad = [m for m in {heavy!r} if m in sys.modules]; print('HEAVY', bad); sys.exit(1 if bad else 0)"


def _run(code: str) -> subprocess.CompletedProcess:
    check = _NO_TORCH.format(heavy=HEAVY)
    return subprocess.run([sys.executable, "-c", code + "\n" + check], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)


def test_cli_help_does_not_import_torch():
    res = _run("from click.testing import CliRunner\nfrom copilot.cli.main import cli\n"
               "r = CliRunner().invoke(cli, ['--help'])\nassert r.exit_code == 0, r.output\n"
               "assert 'explain' in r.output and 'train' in r.output, r.output")
    assert res.returncode == 0, res.stdout + res.stderr


def test_language_server_start_up_does_not_import_torch():
    res = _run("from lsp.server import build_server\nbuild_server()\nimport lsp.__main__")
    assert res.returncode == 0, res.stdout + res.stderr


@pytest.mark.slow
def test_copilot_explain_on_llama_backend_does_not_import_torch(real_model_home, tmp_path):
    """`copilot explain` for real (embedded model, llama.cpp backend) never loads torch."""
    pytest.importorskip("llama_cpp")
    src = tmp_path / "pal.py"
    src.write_text("def is_palindrome(s):\n    return s == s[::-1]\n")
    code = ("import os, sys\n"
            f"os.environ['COPILOT_HOME'] = {str(real_model_home)!r}\n"
            "os.environ['COPILOT_BACKEND'] = 'llama.cpp'\n"
            "from copilot.cli.main import main\n"
            "try:\n"
            f"    main(['explain', {str(src)!r}, '--max-tokens', '12', '--json'])\n"
            "except SystemExit as e:\n"
            "    assert not e.code, e.code\n")
    res = _run(code)
    assert res.returncode == 0, res.stdout + res.stderr
    assert '"sections"' in res.stdout and "HEAVY []" in res.stdout
