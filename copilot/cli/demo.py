"""`copilot demo`: the product working on the embedded model — a completion, then an explanation."""

from __future__ import annotations

from pathlib import Path

import click

from copilot.cli.common import load_engine, out, settings_from


DEMO_FILE = '''"""Tiny inventory helpers."""


def is_palindrome(s):
    return s == s[::-1]


class Inventory:
    """Counts items by name."""

    def __init__(self):
        self.counts = {}

    def add(self, name, n=1):
        self.counts[name] = self.counts.get(name, 0) + n
        return self.counts[name]
'''


@click.command()
@click.option("--model", help="Base model (default: the embedded Qwen2.5-Coder-0.5B).")
def demo(model):
    """Show the product working on the embedded model: a completion, then an explanation."""
    import tempfile
    import time

    settings = settings_from(model=model)
    t0 = time.time()
    eng, _ = load_engine(settings)
    out.print(f"[green]model ready[/] ({eng.model_name}, {eng.device}) in {time.time() - t0:.1f} s")
    prefix = "def is_palindrome(s):\n    return "
    res = eng.complete(prefix, "\n", "python")
    out.print("\n[bold]Completion[/] at the cursor (█):")
    out.print(f"[dim]{prefix}[/]█[cyan]{res.text}[/]")
    out.print(f"[dim]({res.generated_tokens} tokens, {res.latency_ms:.0f} ms, stop: {res.stop_reason})[/]")
    with tempfile.TemporaryDirectory() as td:
        f = Path(td) / "inventory.py"
        f.write_text(DEMO_FILE)
        out.print("\n[bold]Explanation[/] of inventory.py (streamed):")
        eng.explain(DEMO_FILE, "inventory.py", None, language="python", max_new_tokens=120,
                    on_text=lambda t: (out.file.write(t), out.file.flush()))
        out.file.write("\n")
    out.print("\n[green]Done.[/] Next: `copilot explain FILE`, `copilot complete FILE --line L --col C`, "
              "`copilot index REPO --out DIR`, `copilot-lsp` for editors. See README.md.")
