"""Explanations a developer can trust, measured: held-out functions and classes of real repositories explained by
each served configuration exactly as `copilot explain --symbol NAME` explains them (default settings, the
llama.cpp backend), plus a few whole files (overview + sections) for repetition.

Per configuration (one row each, the same units, the same files):
- truncated: sections that end mid-sentence or mid-list (% of explanations);
- repetition: the share of a file overview's sentences that a section of the same file says again (%);
- coverage: of the parameters, raised exceptions, return value and assigned attributes tree-sitter finds in the
  unit, the share the explanation mentions (%);
- invented: code spans naming something the unit (or its file name) does not contain (%), as shown (such a span
  loses its backticks: copilot/serve/explain_end.py) and as the model wrote them;
- cosine: embedding similarity to the unit's own docstring (removed from the code it explains);
- seconds per explanation (mean and p95), including the prompt read.

    python benchmarks/bench_explain.py --data /tmp/ds-company --data /tmp/ds-repo2 --per-repo 25 \\
        --serve qwen2.5-coder-0.5b,qwen2.5-coder-0.5b+company@1,qwen2.5-coder-1.5b --home ~/.local/share/copilot

The datasets come from `copilot index REPO --out DIR`; their test split holds the newest code. A served entry is
MODEL or MODEL+ADAPTER (NAME@VERSION in the registry of --home).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def held_out_units(data: str, n: int, seed: int) -> list[dict]:
    """n held-out explain pairs of one dataset (a seeded sample): {code, symbol, path, language, ref, repo}."""
    from datasets import load_from_disk

    from indexer.pairs import explain_pair_parts

    rows = [r for r in load_from_disk(data)["test"] if r["kind"] == "explain"]
    rows.sort(key=lambda r: (r["path"], r["span_start"]))
    random.Random(seed).shuffle(rows)
    out = []
    for r in rows[:n]:
        code, symbol = explain_pair_parts(r)
        out.append({"code": code, "symbol": symbol, "path": r["path"], "language": r["language"],
                    "ref": r["completion"], "repo": r["repo"]})
    return out


def whole_files(repo: str, n: int, settings) -> list[tuple[str, str]]:
    """The first n small source files (not tests, at most 250 lines) of the repository's working tree with 2-3
    top-level units, i.e. an overview and its sections, as (path in the repo, source)."""
    from copilot.serve.explain import explain_sections

    out = []
    for f in sorted(Path(repo).rglob("*.py")):
        rel = f.relative_to(repo).as_posix()
        if len(out) >= n or "/." in f"/{rel}" or "test" in rel:
            continue
        src = f.read_text(encoding="utf-8", errors="replace")
        if len(src.splitlines()) <= 250 and 3 <= len(list(explain_sections(src, rel, settings))) <= 4:
            out.append((rel, src))
    return out


def run_config(spec: str, units: list[dict], files: list[tuple[str, str]], embedder) -> dict:
    from copilot.core.settings import load_settings
    from copilot.evaluate import explain_checks as X
    from copilot.serve.backends import load_engine

    model, _, adapter = spec.partition("+")
    settings = load_settings({"model": model, "backend": "llama.cpp"})
    eng = load_engine(model, settings)
    key = eng.load_adapter(adapter) if adapter else None
    recs, secs = [], []
    for i, u in enumerate(units, 1):
        t0 = time.perf_counter()
        e = eng.explain(u["code"], u["path"], key, symbol=u["symbol"], language=u["language"])
        secs.append(time.perf_counter() - t0)
        rec = X.scores(e.text, u["code"], u["language"], u["path"])
        rec["cosine"] = embedder.cosine(e.text, u["ref"])
        rec.update(symbol=u["symbol"], path=u["path"], text=e.text, seconds=round(secs[-1], 2), unquoted=e.unquoted)
        recs.append(rec)
        print(f"  {spec}: {i}/{len(units)} {u['symbol']} {secs[-1]:.1f} s", file=sys.stderr, flush=True)
    reps, file_recs = [], []
    for path, src in files:
        t0 = time.perf_counter()
        parts = eng.explain_file(src, path, key)
        sections = [p.text for p in parts[1:]]
        reps.append(X.repetition(parts[0].text, sections))
        trunc = [X.truncated(p.text) for p in parts]
        file_recs.append({"path": path, "sections": len(parts), "repetition": reps[-1], "truncated": trunc,
                          "seconds": round(time.perf_counter() - t0, 1), "texts": [p.text for p in parts]})
        print(f"  {spec}: file {path} repetition {reps[-1]:.0f} %", file=sys.stderr, flush=True)
    eng.close() if hasattr(eng, "close") else None

    def mean(name: str) -> float | None:
        vals = [r[name] for r in recs if name in r]
        return statistics.fmean(vals) if vals else None

    sections_trunc = [t for f in file_recs for t in f["truncated"]]
    return {
        "served": spec, "units": len(recs),
        "truncated": statistics.fmean([r["truncated"] for r in recs] + [100.0 * t for t in sections_trunc]),
        "repetition": statistics.fmean(reps) if reps else None,
        "coverage": mean("coverage"), "invented": mean("invented"), "cosine": mean("cosine"),
        "seconds": statistics.fmean(secs), "seconds_p95": sorted(secs)[max(0, int(0.95 * len(secs)) - 1)],
        "spans": sum(len(X.code_spans(r["text"])) for r in recs),
        "unquoted": sum(r["unquoted"] for r in recs),
        "records": recs, "files": file_recs,
    }


def fmt(v: float | None, digits: int = 1) -> str:
    return "–" if v is None else f"{v:.{digits}f}"


def table(results: list[dict]) -> str:
    lines = ["| served | truncated % | repetition % | coverage % | invented % of code spans: shown (as written) "
             "| cosine | s / explanation (p95) |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        written = r["spans"] + r.get("unquoted", 0)
        raw = 100.0 * r.get("unquoted", 0) / written if written else None
        lines.append(f"| {r['served']} | {fmt(r['truncated'])} | {fmt(r['repetition'])} | {fmt(r['coverage'])} | "
                     f"{fmt(r['invented'])} ({fmt(raw)}) of {written} | {fmt(r['cosine'])} | "
                     f"{fmt(r['seconds'])} ({fmt(r['seconds_p95'])}) |")
    return "\n".join(lines)


def main() -> None:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
        os.environ.setdefault(var, "1")
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", action="append", required=True, help="a dataset folder (repeat for several repos)")
    ap.add_argument("--per-repo", type=int, default=25, help="held-out units per dataset")
    ap.add_argument("--files", type=int, default=2, help="whole files per dataset, for repetition")
    ap.add_argument("--serve", default="qwen2.5-coder-0.5b", help="comma-separated MODEL[+NAME@VERSION]")
    ap.add_argument("--home", help="COPILOT_HOME holding the converted models and the adapter registry")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", help="write every explanation and score as JSON here")
    args = ap.parse_args()
    if args.home:
        os.environ["COPILOT_HOME"] = str(Path(args.home).expanduser())

    from copilot.core.settings import load_settings
    from copilot.evaluate.embedder import Embedder

    settings = load_settings()
    units, files = [], []
    for d in args.data:
        u = held_out_units(d, args.per_repo, args.seed)
        units += u
        files += whole_files(u[0]["repo"], args.files, settings) if u and args.files else []
    print(f"{len(units)} held-out units, {len(files)} whole files", file=sys.stderr)
    embedder = Embedder()
    results = []
    for spec in [s.strip() for s in args.serve.split(",") if s.strip()]:
        results.append(run_config(spec, units, files, embedder))
        print(table(results[-1:]), file=sys.stderr)
    print(table(results))
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
