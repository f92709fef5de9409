"""`copilot complete FILE --line L --col C`: the inline completion an editor would show.

With `context.repo` (the default) the file's repository (the nearest folder above it holding `.git`) is
indexed on the spot, within `context.max_files`, and the prompt opens with the same repository context the
language server gives (indexer/workspace/repo_context.py): definitions of what the code at the cursor uses,
then the most similar code of other files, then the regions of other files changed since the last commit
(`git diff HEAD`; the editor gives the regions edited lately)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from copilot.cli.common import err, load_engine, settings_from


@click.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--line", "line", type=int, required=True, help="1-based line of the cursor.")
@click.option("--col", "col", type=int, required=True, help="1-based column of the cursor (characters).")
@click.option("--adapter", help="Adapter NAME[@VERSION] or folder; default: config, else the base model.")
@click.option("--model", help="Base model (packaged name, folder or cached hub id).")
@click.option("--backend", type=click.Choice(["auto", "llama.cpp", "transformers", "remote"]),
              help="Inference backend; remote = the team service at remote.url (key: remote.api_key_file or COPILOT_REMOTE_API_KEY).")
@click.option("--max-tokens", type=int, help="Most tokens generated.")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def complete(file, line, col, adapter, model, backend, max_tokens, as_json):
    """Print the inline completion an editor would show at LINE:COL of FILE."""
    from copilot.core.sources import offset_of, read_source
    from indexer.languages import language_for_path

    settings = settings_from(model=model, adapter=adapter, backend=backend, completion={"max_new_tokens": max_tokens})
    src = read_source(file)
    for note in src.notes:
        err.print(f"[yellow]note:[/] {note}")
    text = src.text
    off = offset_of(text, line, col, str(file))
    language = language_for_path(file)
    snippets, index_info = repo_snippets(file, text, off, language, settings)
    eng, key = load_engine(settings, settings.adapter or None, quiet=as_json)
    # Inside a repository the file and its context are named repository-relative, as the server and training do.
    prompt_path = (index_info or {}).get("rel") or str(file)
    res = eng.complete(text[:off], text[off:], language, key, path=prompt_path,
                       context=tuple((s.path, s.text) for s in snippets))
    if as_json:
        click.echo(json.dumps({
            "path": str(file), "line": line, "col": col, "text": res.text, "stop_reason": res.stop_reason,
            "model": res.model, "adapter": res.adapter, "prompt_tokens": res.prompt_tokens,
            "generated_tokens": res.generated_tokens, "latency_ms": round(res.latency_ms, 1),
            "context": [{"path": s.path, "source": s.source, "chars": len(s.text)} for s in snippets],
            "repo_index": index_info,
        }, ensure_ascii=False, indent=2))
    else:
        if res.text:
            click.echo(res.text)
        else:
            err.print("[yellow](no completion at this position)[/]")


def repo_root(file: Path) -> Path | None:
    """The nearest folder at or above the file's that holds `.git` (a folder, or a worktree's file)."""
    here = file.resolve().parent
    for d in (here, *here.parents):
        if (d / ".git").exists():
            return d
    return None


def uncommitted_edits(root: Path, rel: str | None) -> list:
    """The recently edited regions for `copilot complete`: the working tree's uncommitted changes to other
    files (`git diff HEAD`) and its new files git does not track yet (whole, up to their last lines), the
    most recently modified file first."""
    from indexer.git.history import untracked_files, worktree_changes
    from indexer.workspace.recent_edits import MAX_EDITS, Edit

    def modified(path: str) -> float:
        try:
            return (root / path).stat().st_mtime
        except OSError:
            return 0.0

    # None: a new file, whole (its lines are counted once it is among the newest). A tracked file whose
    # change only removed lines has no added range, and shows nothing.
    changed: dict[str, list[tuple[int, int]] | None] = {c.path: c.added for c in worktree_changes(root)
                                                       if c.path != rel}
    for path in untracked_files(root):
        if path != rel:
            changed.setdefault(path, None)
    edits: list[Edit] = []
    for path in sorted(changed, key=lambda p: -modified(p)):
        if len(edits) >= MAX_EDITS:
            break
        added = changed[path]
        if added is None:
            edits += [Edit(path, a, b, last=b) for a, b in _whole_file(root / path)]
        else:
            edits += [Edit(path, a, b) for a, b in added]
    return edits[:MAX_EDITS]


def _whole_file(path: Path) -> list[tuple[int, int]]:
    """A new file's lines as one edited range (none for a file too large or unreadable to be context)."""
    try:
        if path.stat().st_size > 1 << 20:
            return []
        data = path.read_bytes()
    except OSError:
        return []
    lines = data.count(b"\n") + (not data.endswith(b"\n"))
    return [(0, lines - 1)] if lines else []


def repo_snippets(file: Path, text: str, off: int, language: str | None, settings) -> tuple[list, dict | None]:
    """The repository context for the cursor at `off`, and what the index held (None when none was built)."""
    from indexer.workspace.index import WorkspaceIndex, limits_for
    from indexer.workspace.repo_context import choose

    cs = settings.context
    root = repo_root(file) if cs.repo and cs.tokens > 0 and language else None
    if root is None:
        return [], None
    index = WorkspaceIndex(root, limits_for(cs))
    report = index.build()
    for note in report.notes:
        err.print(f"[yellow]note:[/] {note}")
    rel = index.rel_path(file)
    snippets = choose(index, rel, language, text[:off], text[off:], tokens=cs.tokens, definitions=cs.definitions,
                      similar=cs.similar, show=lambda path: path,
                      edits=uncommitted_edits(root, rel) if cs.recent_edits else ())
    return snippets, {"root": str(root), "rel": rel, **index.summary(), "seconds": round(report.seconds, 2),
                      "notes": report.notes}
