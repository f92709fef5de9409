"""Replay real typing through the real `copilot-lsp` server over stdio and measure what a user feels.

Characters from real source files (by default, Python files of installed, well-known projects:
click, pygls, filelock) are removed from the document at points inside code and then typed back
one by one with human-like intervals. Like an editor, the client sends `didChange` per keystroke,
asks for an inline completion once typing pauses for the debounce (75 ms), and cancels its
previous in-flight request ($/cancelRequest) when it sends a new one.

Reported: keystroke -> completion latency (from the keystroke that triggered the request to the
reply, debounce included) p50/p95/p99 over answered requests, the share of requests answered from
the typed-ahead cache, cancelled by the client or superseded, and the server's RSS (peak, sampled).

    python benchmarks/bench_typing.py --model tiny            # tiny random model (seconds to build)
    python benchmarks/bench_typing.py --model qwen2.5-coder-0.5b --keystrokes 200
    # both backends and both FIM orders in one run, with a trained adapter (one server per combination):
    python benchmarks/bench_typing.py --model qwen2.5-coder-0.5b --adapter company@1 \
        --backends transformers,llama.cpp --orders psm,spm --home ~/.local/share/copilot

Each combination starts its own server with COPILOT_BACKEND / COPILOT_COMPLETION_ORDER / COPILOT_ADAPTER
set, replays the same keystrokes (same seed), and reports the backend the server really used.
"""

from __future__ import annotations

import argparse
import asyncio
import glob
import math
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from helpers.lsp_harness import Session  # noqa: E402
from lsprotocol import types  # noqa: E402

from lsp.positions import LineIndex  # noqa: E402


def default_files() -> list[str]:
    site = Path(types.__file__).resolve().parents[1]
    pats = ["click/core.py", "click/termui.py", "pygls/workspace/text_document.py", "pygls/protocol/json_rpc.py",
            "filelock/_api.py"]
    return [str(site / p) for p in pats if (site / p).is_file()]


def pick_edits(files: list[str], keystrokes: int, chunk: int, rng: random.Random) -> list[tuple[str, str, int, str]]:
    """(path, text, cursor offset, characters to type) cut from code lines of real files."""
    edits = []
    sources = [(f, Path(f).read_text(encoding="utf-8")) for f in files]
    while sum(len(e[3]) for e in edits) < keystrokes:
        path, text = rng.choice(sources)
        lines = text.splitlines(keepends=True)
        cands = [i for i, ln in enumerate(lines) if len(ln.strip()) > 20 and ln.startswith("    ") and not ln.strip().startswith(("#", '"', "'"))]
        i = rng.choice(cands)
        indent = len(lines[i]) - len(lines[i].lstrip())
        start = sum(len(ln) for ln in lines[:i]) + indent
        typed = text[start: start + chunk]
        typed = typed[: typed.find("\n", 1) + 1] if "\n" in typed[1:] else typed
        edits.append((path, text[:start] + text[start + len(typed):], start, typed))
    return edits


def human_interval(ch: str, rng: random.Random) -> float:
    base = rng.lognormvariate(math.log(0.14), 0.45)  # ~7 characters/s, with jitter
    if ch in "\n(:=," or rng.random() < 0.04:
        base += rng.uniform(0.2, 0.8)  # thinking pauses
    return min(max(base, 0.035), 2.0)


def pct(xs: list[float], p: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    k = (len(xs) - 1) * p / 100
    lo, hi = math.floor(k), math.ceil(k)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


async def replay(args) -> dict:
    import psutil

    rng = random.Random(args.seed)
    model = args.model
    if model == "tiny":
        from helpers.tiny import make_tiny_model

        model = str(make_tiny_model(Path(tempfile.gettempdir()) / "copilot-bench-tiny"))
    files = args.files or default_files()
    edits = pick_edits(files, args.keystrokes, args.chunk, rng)
    extra = ("--log-level", "DEBUG", "--log-file", f"{args.server_log}.{args.run_no}") if args.server_log else ()
    s = Session(model, home=Path(args.home) if args.home else None, init_options={"debounceMs": args.debounce_ms},
                extra_args=extra)
    t0 = time.perf_counter()
    await s.start()
    st = await s.wait_ready(1800)
    load_s = time.perf_counter() - t0
    if st["state"] != "ready":
        raise SystemExit(f"model failed to load: {st['error']}")
    proc = psutil.Process(s.process.pid)
    peak = [proc.memory_info().rss]

    async def sample_rss():
        while True:
            try:
                peak[0] = max(peak[0], proc.memory_info().rss)
            except psutil.Error:
                return
            await asyncio.sleep(0.2)

    sampler = asyncio.ensure_future(sample_rss())
    latencies: list[float] = []
    outcome = {"answered": 0, "empty": 0, "client_cancelled": 0, "sent": 0}
    proto = s.client.protocol
    n = 0
    for doc_no, (path, text, cursor, typed) in enumerate(edits):
        uri = Path(path).with_suffix(f".{doc_no}.py").as_uri()
        s.open(uri, text)
        index_text = text
        version = 1
        inflight: dict[str, asyncio.Future] = {}
        debounce: asyncio.TimerHandle | None = None
        pending: list[asyncio.Task] = []

        def fire(key_time: float, line: int, col: int) -> None:
            for mid, fut in list(inflight.items()):
                if not fut.done():
                    proto.notify(types.CANCEL_REQUEST, types.CancelParams(id=mid))
                    outcome["client_cancelled"] += 1
            inflight.clear()
            mid = f"k{n}-{time.perf_counter_ns()}"
            fut = asyncio.ensure_future(proto.send_request_async(
                types.TEXT_DOCUMENT_INLINE_COMPLETION, s.inline_params(uri, line, col), msg_id=mid))
            inflight[mid] = fut
            outcome["sent"] += 1

            def done(f: asyncio.Future, t=key_time) -> None:
                if f.cancelled() or f.exception() is not None:
                    return
                if f.result().items:
                    latencies.append((time.perf_counter() - t) * 1000)
                    outcome["answered"] += 1
                else:
                    outcome["empty"] += 1

            fut.add_done_callback(done)
            pending.append(fut)

        for ch in typed:
            if n >= args.keystrokes:
                break
            await asyncio.sleep(human_interval(ch, rng))
            idx = LineIndex(index_text)
            line, col = idx.position(cursor)
            s.change(uri, version + 1, (line, col), (line, col), ch)
            version += 1
            index_text = index_text[:cursor] + ch + index_text[cursor:]
            cursor += len(ch)
            n += 1
            line, col = LineIndex(index_text).position(cursor)
            if debounce is not None:
                debounce.cancel()
            debounce = asyncio.get_running_loop().call_later(args.debounce_ms / 1000, fire, time.perf_counter(), line, col)
        await asyncio.sleep(args.debounce_ms / 1000 + 0.01)
        if pending:
            await asyncio.wait(pending, timeout=120)
        if n >= args.keystrokes:
            break
    status = await s.status()
    sampler.cancel()
    served_by = status.get("backend")
    await s.stop()
    c = status["counters"]
    total = max(1, c["requests"])
    return {
        "model": args.model, "backend": served_by, "adapter": (f"{status['adapter']}@{status['adapter_version']}" if status.get("adapter") else None),
        "adapter_version": status.get("adapter_version"), "keystrokes": n, "requests": c["requests"], "load_s": load_s,
        "p50": pct(latencies, 50), "p95": pct(latencies, 95), "p99": pct(latencies, 99),
        "mean": statistics.fmean(latencies) if latencies else float("nan"),
        "answered": outcome["answered"], "empty": outcome["empty"],
        "from_cache": c["cache_hits"] / total, "client_cancelled": outcome["client_cancelled"] / max(1, outcome["sent"]),
        "server_cancelled": c["cancelled"] / total, "stopped_generations": c["stopped_generations"],
        "model_calls": c["model_calls"], "rss_peak_mb": peak[0] / 2**20, "rss_end_mb": status["rss_mb"],
    }


ROWS = [
    ("backend", lambda r: r["backend"]), ("FIM order", lambda r: r["order"]),
    ("adapter", lambda r: r["adapter"] or "base"),
    ("keystrokes typed", lambda r: r["keystrokes"]), ("completion requests", lambda r: r["requests"]),
    ("model load (s)", lambda r: f"{r['load_s']:.1f}"),
    ("keystroke->completion p50 (ms)", lambda r: f"{r['p50']:.0f}"), ("p95 (ms)", lambda r: f"{r['p95']:.0f}"),
    ("p99 (ms)", lambda r: f"{r['p99']:.0f}"), ("answered with a suggestion", lambda r: r["answered"]),
    ("answered empty", lambda r: r["empty"]),
    ("served from typed-ahead cache", lambda r: f"{r['from_cache']:.0%}"),
    ("cancelled by the client ($/cancelRequest)", lambda r: f"{r['client_cancelled']:.0%}"),
    ("superseded/cancelled in the server", lambda r: f"{r['server_cancelled']:.0%}"),
    ("generations stopped mid-way", lambda r: r["stopped_generations"]), ("model calls", lambda r: r["model_calls"]),
    ("server RSS peak (MB)", lambda r: f"{r['rss_peak_mb']:.0f}"), ("server RSS at end (MB)", lambda r: f"{r['rss_end_mb']:.0f}"),
]


def main() -> None:
    import os

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="tiny", help="'tiny' (random tiny model), a packaged name or a folder")
    ap.add_argument("--keystrokes", type=int, default=200)
    ap.add_argument("--chunk", type=int, default=30, help="characters typed per edit point")
    ap.add_argument("--debounce-ms", type=int, default=75)
    ap.add_argument("--files", nargs="*", help="source files to type from (default: real files of installed projects)")
    ap.add_argument("--home", help="COPILOT_HOME for the server (where the converted model is cached)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--backends", default="auto", help="comma list of auto, transformers, llama.cpp")
    ap.add_argument("--orders", default="auto", help="comma list of auto, psm, spm (FIM prompt order)")
    ap.add_argument("--server-log", help="write each server's debug log (one line per model call: queue wait, "
                    "tokens reused/prefilled/generated, prefill and decode ms) to FILE.<run number>")
    ap.add_argument("--adapter", default=None, help="adapter NAME[@VERSION] the server applies (default: none)")
    args = ap.parse_args()
    if args.files:
        args.files = [f for pat in args.files for f in glob.glob(pat)]
    results = []
    for backend in args.backends.split(","):
        for order in args.orders.split(","):
            os.environ["COPILOT_BACKEND"] = backend
            os.environ["COPILOT_COMPLETION_ORDER"] = order
            if args.adapter:
                os.environ["COPILOT_ADAPTER"] = args.adapter
            print(f"-- {backend} / {order} ...", file=sys.stderr, flush=True)
            args.run_no = len(results) + 1
            r = asyncio.run(replay(args))
            r["order"] = order
            results.append(r)
    print(f"model: {args.model}; {args.keystrokes} keystrokes, debounce {args.debounce_ms} ms, seed {args.seed}\n")
    w = max(len(k) for k, _ in ROWS)
    print(f"| {'metric'.ljust(w)} | " + " | ".join(f"run {i + 1}" for i in range(len(results))) + " |")
    print(f"|{'-' * (w + 2)}|" + "|".join("-------" for _ in results) + "|")
    for k, f in ROWS:
        print(f"| {k.ljust(w)} | " + " | ".join(str(f(r)) for r in results) + " |")


if __name__ == "__main__":
    main()
