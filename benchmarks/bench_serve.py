"""One team service, many editors: pause -> ghost text as each developer feels it, and where it saturates.

Starts `copilot serve` (llama.cpp's server, the registry of --home, a key made for the run), then for each
number of simulated editors (--users 1,2,4,8,16) starts that many real `copilot-lsp` servers with
`backend = remote` and replays real typing in all of them at once (bench_pauses.replay: at PLACES places per
editor, TYPED characters typed at human speed with one request per keystroke and the previous one cancelled,
a pause, TYPED more, a second pause; each editor at its own places). Reported per level: pause -> ghost text
p50 / p95 (ms), completions per second the service returned, requests the front door took.

Side by side, in the same run: the same single user through the in-process llama.cpp engine (what a laptop
does without the service), and the front door's own added latency (the same tiny request straight to the
engine and through the front door, median of 40).

    python benchmarks/bench_serve.py --home ~/.local/share/copilot --adapter company --users 1,2,4,8,16
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from argparse import Namespace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_pauses import default_files, machine_speed, pick_places, replay
from bench_typing import pct


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, key: str | None = None, body: dict | None = None, timeout: float = 60) -> dict:
    req = urllib.request.Request(url, data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Content-Type": "application/json", **({"Authorization": f"Bearer {key}"} if key else {})})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read())


def start_service(args, keys_file: Path) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE", HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    if args.home:
        env["COPILOT_HOME"] = args.home
    log = open(Path(tempfile.gettempdir()) / f"bench-serve-{port}.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "copilot.cli.main", "serve", "--port", str(port), "--keys", str(keys_file),
                             "--parallel", str(args.parallel), "--no-log-requests", "--rpm", "100000"],
                            env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        if proc.poll() is not None:
            raise SystemExit(f"copilot serve exited: see {log.name}")
        try:
            _get(url + "/health", timeout=2)
            return proc, url
        except OSError:
            time.sleep(0.5)
    raise SystemExit("copilot serve did not come up in 5 minutes")


def front_door_overhead(url: str, key: str, n: int = 40) -> tuple[float, float]:
    """(median ms straight to the engine, median ms through the front door) for the same tiny request."""
    engine = _get(url + "/health")["replicas"][0]["url"]
    body = {"prompt": "def add(a, b):\n    return", "max_tokens": 1, "temperature": 0}

    def timed(target: str, k: str | None) -> float:
        t0 = time.perf_counter()
        _get(target + "/v1/completions", k, body)
        return (time.perf_counter() - t0) * 1000

    for _ in range(3):
        timed(engine, None), timed(url, key)  # warm both, and the prompt cache
    direct = [timed(engine, None) for _ in range(n)]
    front = [timed(url, key) for _ in range(n)]
    return statistics.median(direct), statistics.median(front)


def pause_args(args, user: int) -> Namespace:
    return Namespace(seed=args.seed + user, set=None, server_log=None, model=args.model, home=args.home, root=None,
                     think_ms=args.think_ms, no_cursor_moved=False, typed=args.typed)


async def editors(args, n: int, served: str, all_places) -> tuple[list[dict], float]:
    t0 = time.perf_counter()
    runs = await asyncio.gather(*(replay(pause_args(args, u), served, all_places[u]) for u in range(n)))
    return [p for r in runs for p in r["pauses"]], time.perf_counter() - t0


def lat(pauses: list[dict]) -> str:
    xs = [p["ms"] for p in pauses if not p["cached"] and p["ms"] == p["ms"]]
    return f"{pct(xs, 50):.0f} / {pct(xs, 95):.0f}" if xs else "-"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="qwen2.5-coder-0.5b")
    ap.add_argument("--home", help="COPILOT_HOME: the converted model and the adapter registry the service serves")
    ap.add_argument("--adapter", default="", help="the team adapter every editor uses (default: the base model)")
    ap.add_argument("--users", default="1,2,4,8,16")
    ap.add_argument("--places", type=int, default=4, help="places per editor")
    ap.add_argument("--typed", type=int, default=6)
    ap.add_argument("--think-ms", type=int, default=600)
    ap.add_argument("--parallel", type=int, default=4, help="llama-server slots")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-local", action="store_true", help="skip the in-process single user")
    ap.add_argument("--plot", help="write a PNG of p50/p95 against editors")
    args = ap.parse_args()
    if args.home:
        os.environ["COPILOT_HOME"] = args.home
    from copilot.service.keys import KeyStore

    levels = [int(x) for x in args.users.split(",")]
    files = default_files()
    all_places = [pick_places(files, args.places, args.typed, random.Random(args.seed + u)) for u in range(max(levels))]
    speed = machine_speed(args.model, args.home)
    tmp = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    team = args.adapter or "bench"
    _, key = KeyStore(tmp / "keys.json").add("bench", [team])
    served = args.adapter or "base"
    rows = []
    if not args.no_local:
        print("-- 1 editor, in-process engine ...", file=sys.stderr, flush=True)
        pauses, wall = asyncio.run(editors(args, 1, served, all_places))
        rows.append(("1 (in-process llama.cpp, no service)", lat(pauses), f"{len(pauses) / wall:.2f}", "-"))
    proc, url = start_service(args, tmp / "keys.json")
    try:
        served_now = _get(url + "/health").get("adapters", {})
        if args.adapter and args.adapter not in served_now:
            raise SystemExit(f"the service does not serve {args.adapter!r} (it serves only active versions: "
                             f"copilot adapters promote {args.adapter}@N); served: {served_now or 'the base model only'}")
        served = f"{args.adapter}@{served_now[args.adapter]}" if args.adapter else served
        direct, front = front_door_overhead(url, key)
        os.environ.update(COPILOT_BACKEND="remote", COPILOT_REMOTE_URL=url, COPILOT_REMOTE_API_KEY=key)
        for n in levels:
            print(f"-- {n} editor(s) on the service ...", file=sys.stderr, flush=True)
            pauses, wall = asyncio.run(editors(args, n, served, all_places))
            empty = sum(1 for p in pauses if not p["ghost"])
            rows.append((f"{n}", lat(pauses), f"{len(pauses) / wall:.2f}", f"{empty} / {len(pauses)}"))
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(30)
    print(f"model {args.model}, adapter {served}; {args.places} places x 2 pauses per editor, {args.typed} characters "
          f"typed before each; llama-server {args.parallel} slots\n{speed}\n")
    print("| editors | pause -> ghost text p50 / p95 (ms) | pauses answered per s (all editors) | empty answers |")
    print("|---|---|---|---|")
    for r in rows:
        print("| " + " | ".join(r) + " |")
    print(f"\nfront door's own latency: a 1-token request straight to the engine {direct:.1f} ms, through the front "
          f"door {front:.1f} ms (median of 40): +{front - direct:.1f} ms")
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        pts = [(int(r[0]), *map(float, r[1].split(" / "))) for r in rows if r[0].isdigit() and r[1] != "-"]
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", label="p50")
        ax.plot([p[0] for p in pts], [p[2] for p in pts], "s--", label="p95")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("editors typing at once")
        ax.set_ylabel("pause -> ghost text (ms)")
        ax.set_title(f"one copilot service ({args.model}, llama.cpp, CPU)")
        ax.legend()
        fig.tight_layout()
        fig.savefig(args.plot, dpi=120)
        print(f"plot: {args.plot}")


if __name__ == "__main__":
    main()
