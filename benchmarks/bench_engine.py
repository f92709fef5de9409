"""Engine benchmark on the embedded model: load time (cold conversion, warm cache), decode tokens/s,
peak RSS, and single-line completion latency p50/p95 over real completion points from real source
files — ours vs the naive `model.generate` baseline, in the same run.

    .venv/bin/python benchmarks/bench_engine.py [--points 30] [--model qwen2.5-coder-0.5b] [--skip-cold]

Completion points: lines of real Python files (installed libraries: click, rich, pathspec, ...) of the form
`<lhs> = <rhs>` or `return <expr>`; the cursor goes after `= ` / `return `, the expected text is the rest of
the line. Prints a table; writes benchmarks/out/engine.json.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def completion_points(n: int, seed: int = 0) -> list[tuple[str, str, str, str]]:
    """(path, prefix, suffix, expected) from real library sources."""
    import click
    import pathspec
    import rich

    files = []
    for pkg in (click, rich, pathspec):
        files += sorted(Path(pkg.__file__).parent.glob("*.py"))
    rng = random.Random(seed)
    pat = re.compile(r"^(\s+)(return |[A-Za-z_][\w.]* = )(.{6,60})$")
    cands = []
    for f in files:
        text = f.read_text(encoding="utf-8")
        lines = text.split("\n")
        off = 0
        for ln in lines:
            m = pat.match(ln)
            if m and not m.group(3).rstrip().endswith(("(", "[", "{", "\\", ",")):
                cut = off + len(m.group(1)) + len(m.group(2))
                cands.append((str(f), text[:cut], text[cut:], m.group(3).rstrip()))
            off += len(ln) + 1
    rng.shuffle(cands)
    return cands[:n]


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--points", type=int, default=30)
    ap.add_argument("--model", default="qwen2.5-coder-0.5b")
    ap.add_argument("--skip-cold", action="store_true", help="don't measure the one-time conversion")
    args = ap.parse_args()

    rows: list[tuple[str, str]] = []
    result: dict = {}
    if not args.skip_cold:
        with tempfile.TemporaryDirectory() as td:
            t0 = time.time()
            subprocess.run([sys.executable, "-c", f"from copilot.models.packaged import resolve_model; resolve_model({args.model!r})"],
                           env=dict(os.environ, COPILOT_HOME=td), check=True, capture_output=True)
            cold = time.time() - t0
            cold_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        result["cold_load_s"] = cold
        rows.append(("load, cold (assemble + verify + convert)", f"{cold:.1f} s (peak RSS {cold_rss / 1024:.2f} GB)"))

    from copilot.serve.hf import Engine
    from copilot.models.packaged import resolve_model

    resolve_model(args.model)  # make sure the cache exists before timing the warm load
    t0 = time.time()
    eng = Engine.load(args.model, device="cpu")
    warm = time.time() - t0
    result["warm_load_s"] = warm
    rows.append(("load, warm cache", f"{warm:.1f} s"))

    # Decode speed: a fixed prompt, 64 greedy tokens, no stopping rules.
    ids = eng.tokenizer.encode("# A Python module with helpers for parsing dates\nimport datetime\n\n", add_special_tokens=False)
    saved, eng._stop_ids = eng._stop_ids, []
    t0 = time.time()
    out, _ = eng._generate(ids, max_new_tokens=64, cache_key=None)
    dt = time.time() - t0
    eng._stop_ids = saved
    result["decode_tok_s"] = len(out) / dt
    rows.append(("decode speed (greedy, 64 tokens)", f"{len(out) / dt:.1f} tokens/s"))

    points = completion_points(args.points)
    ours, naive, ours_tok, naive_tok = [], [], [], []
    em_ours = em_naive = 0
    for path, prefix, suffix, expected in points:
        eng._drop_caches()  # every point is a cold request: no help from a previous keystroke
        c = eng.complete(prefix, suffix, "python", path=None)
        ours.append(c.latency_ms)
        ours_tok.append(c.generated_tokens)
        em_ours += c.text.strip() == expected.strip()
        t0 = time.perf_counter()
        text, n = eng.naive_complete(prefix, suffix)
        naive.append((time.perf_counter() - t0) * 1000)
        naive_tok.append(n)
        em_naive += text.split("\n")[0].strip() == expected.strip()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    n = len(points)
    result.update({
        "points": n, "ours_p50_ms": pct(ours, 0.5), "ours_p95_ms": pct(ours, 0.95),
        "naive_p50_ms": pct(naive, 0.5), "naive_p95_ms": pct(naive, 0.95),
        "ours_mean_tokens": statistics.mean(ours_tok), "naive_mean_tokens": statistics.mean(naive_tok),
        "ours_exact_match": em_ours / n, "naive_exact_match_first_line": em_naive / n, "peak_rss_mb": rss,
    })
    rows += [
        (f"single-line completion p50 / p95 (ours, {n} points)", f"{pct(ours, .5):.0f} / {pct(ours, .95):.0f} ms"),
        ("single-line completion p50 / p95 (naive generate)", f"{pct(naive, .5):.0f} / {pct(naive, .95):.0f} ms"),
        ("speed-up p50 / p95 (naive ÷ ours)", f"{pct(naive, .5) / pct(ours, .5):.1f}× / {pct(naive, .95) / pct(ours, .95):.1f}×"),
        ("tokens generated per point (ours / naive)", f"{statistics.mean(ours_tok):.1f} / {statistics.mean(naive_tok):.1f}"),
        ("exact match of the line (ours / naive's first line)", f"{em_ours / n:.0%} / {em_naive / n:.0%}"),
        ("peak RSS while serving (this process)", f"{rss / 1024:.2f} GB"),
    ]
    w = max(len(r[0]) for r in rows)
    print(f"\nEngine benchmark — {args.model}, {os.cpu_count()} CPU cores, torch threads {__import__('torch').get_num_threads()}")
    print(f"| {'measure'.ljust(w)} | value |\n|{'-' * (w + 2)}|-------|")
    for k, v in rows:
        print(f"| {k.ljust(w)} | {v} |")
    out_dir = ROOT / "benchmarks" / "out"
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "engine.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
