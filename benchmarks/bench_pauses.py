"""Pause -> ghost text, as a typing developer feels it, through the real `copilot-lsp` over stdio.

At PLACES points in FILES real source files (by default Python files of installed projects the company adapters
are not trained on: pygls 2, filelock, cattrs), the rest of a code line is deleted from a random column inside its code (so the cursor mostly sits
inside an identifier, as a developer's does), then TYPED characters of the true line are typed at human speed
(one didChange and one inline-completion request per keystroke, the previous request cancelled with
$/cancelRequest, as editors do), a pause; then TYPED more characters and a second pause. Measured per pause:
the time from its last keystroke to the ghost text (the reply to that keystroke's request).

Reported per served configuration (one server each, the same places, the same seed):
- first pause at a new place, typing on at the same place, and all pauses: p50 / p95 (ms) over pauses answered
  by the model (answers from the typed-ahead cache are counted on their own line, not mixed into latency);
- the ghost text is a correct start of the true rest of the line (non-empty, and the rest starts with it).

    python benchmarks/bench_pauses.py --model qwen2.5-coder-0.5b --home ~/.local/share/copilot
    python benchmarks/bench_pauses.py --model qwen2.5-coder-0.5b --serve base,company@3
    # what the steps buy: without token healing, cache reuse and copilot/cursorMoved
    python benchmarks/bench_pauses.py --set completion.token_healing=false,completion.cache_reuse=0 --no-cursor-moved
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_typing import human_interval, pct  # noqa: E402
from helpers.lsp_harness import Session  # noqa: E402
from lsprotocol import types  # noqa: E402

from lsp.positions import LineIndex  # noqa: E402


def default_files() -> list[str]:
    site = Path(types.__file__).resolve().parents[1]
    pats = ["pygls/server.py", "pygls/workspace/text_document.py", "pygls/protocol/json_rpc.py", "filelock/_api.py",
            "cattrs/converters.py"]  # none of them in the company repo (click, itsdangerous) adapters train on
    return [str(site / p) for p in pats if (site / p).is_file()]


def pick_places(files: list[str], places: int, typed: int, rng: random.Random) -> list[tuple[str, str, int, str]]:
    """(path, text with the rest of one line deleted, cursor offset, the deleted rest of the line), spread over
    the files in turn."""
    out = []
    sources = [(f, Path(f).read_text(encoding="utf-8")) for f in files]
    while len(out) < places:
        path, text = sources[len(out) % len(sources)]
        lines = text.splitlines(keepends=True)
        cands = [i for i, ln in enumerate(lines) if ln.startswith("    ") and len(ln.strip()) >= 2 * typed + 8
                 and not ln.strip().startswith(("#", '"', "'", "@"))]
        i = rng.choice(cands)
        ln = lines[i].rstrip("\r\n")
        code_start = len(ln) - len(ln.lstrip())
        cut = rng.randrange(code_start, len(ln) - (2 * typed + 4))
        start = sum(len(x) for x in lines[:i]) + cut
        rest = ln[cut:]
        if any(p == path and abs(c - start) < 400 for p, _, c, _ in out):
            continue
        out.append((path, text[:start] + text[start + len(rest):], start, rest))
    return out


def machine_speed(model: str, home: str | None) -> str:
    """This machine's llama.cpp speed right now (a shared host's CPU steal moves every latency): prompt read
    tokens/s and decode ms/token of the served model, measured in-process before the servers start."""
    if home:
        os.environ["COPILOT_HOME"] = home
    try:
        from copilot.core.settings import Settings
        from copilot.serve.llama import LlamaEngine

        eng = LlamaEngine.load(model, Settings())
    except Exception as exc:  # noqa: BLE001 - the figure is a note, the benchmark goes on
        return f"speed not measured ({exc})"
    ids = eng.tokenizer.encode(Path(__file__).read_text(encoding="utf-8"))[:384]
    t0 = time.perf_counter()
    for i in range(0, len(ids), eng.WARM_CHUNK):
        eng._eval(ids[i:i + eng.WARM_CHUNK])
    read = len(ids) / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    for t in ids[:16]:
        eng._eval([t])
    decode = (time.perf_counter() - t0) / 16 * 1000
    eng.llm.close()
    return f"llama.cpp here now: prompt read {read:.0f} tokens/s, decode {decode:.0f} ms/token"


def correct_start(ghost: str, truth: str) -> bool:
    first = ghost.split("\n", 1)[0].rstrip()
    return bool(first.strip()) and truth.startswith(first)


async def replay(args, served: str, places) -> dict:
    rng = random.Random(args.seed)
    env = {}
    if served != "base":
        env["COPILOT_ADAPTER"] = served
    for kv in filter(None, (args.set or "").split(",")):
        key, _, value = kv.partition("=")
        env["COPILOT_" + key.replace(".", "_").upper()] = value
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        extra = ("--log-level", "DEBUG", "--log-file", f"{args.server_log}.{served}") if args.server_log else ()
        s = Session(args.model, home=Path(args.home) if args.home else None, init_options={"debounceMs": 0},
                    extra_args=extra, root=Path(args.root).resolve() if args.root else None)
        await s.start()
        st = await s.wait_ready(1800)
    finally:
        for k, v in old.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
    if st["state"] != "ready":
        raise SystemExit(f"model failed to load: {st['error']}")
    proto = s.client.protocol
    pauses: list[dict] = []
    for doc_no, (path, text, cursor, rest) in enumerate(places):
        # With a workspace root the document is the real file (the repository index then leaves it out of its
        # own context); without one, each place is a document of its own.
        uri = Path(path).resolve().as_uri() if args.root else Path(path).resolve().with_suffix(f".{doc_no}.py").as_uri()
        s.open(uri, text)
        if args.think_ms:  # the developer lands here, reads, then types; the editor says where the cursor is
            if not args.no_cursor_moved:
                line, col = LineIndex(text).position(cursor)
                proto.notify("copilot/cursorMoved", {"textDocument": {"uri": uri}, "position": {"line": line, "character": col}})
            await asyncio.sleep(args.think_ms / 1000)
        cur_text, version, inflight = text, 1, None
        for burst in (0, 1):
            chars = rest[burst * args.typed:(burst + 1) * args.typed]
            for k, ch in enumerate(chars):
                if k == len(chars) - 1:  # before the pause's keystroke: was its answer served from the cache?
                    before = (await s.status())["counters"]["cache_hits"]
                await asyncio.sleep(human_interval(ch, rng))
                line, col = LineIndex(cur_text).position(cursor)
                s.change(uri, version + 1, (line, col), (line, col), ch)
                version += 1
                cur_text = cur_text[:cursor] + ch + cur_text[cursor:]
                cursor += 1
                t_key = time.perf_counter()
                if inflight is not None and not inflight[1].done():
                    proto.notify(types.CANCEL_REQUEST, types.CancelParams(id=inflight[0]))
                mid = f"p{doc_no}-{burst}-{version}"
                line, col = LineIndex(cur_text).position(cursor)
                fut = asyncio.ensure_future(proto.send_request_async(
                    types.TEXT_DOCUMENT_INLINE_COMPLETION, s.inline_params(uri, line, col), msg_id=mid))
                fut.add_done_callback(lambda f: f.cancelled() or f.exception())  # superseded ones end cancelled
                inflight = (mid, fut, t_key)
            try:
                res = await asyncio.wait_for(inflight[1], 120)
                ms = (time.perf_counter() - inflight[2]) * 1000
            except Exception:  # noqa: BLE001 - a failed request is reported as unanswered
                res, ms = None, float("nan")
            hits = (await s.status())["counters"]["cache_hits"] - before
            ghost = res.items[0].insert_text if res and res.items else ""
            ghost = ghost if isinstance(ghost, str) else ghost.value
            pauses.append({"first": burst == 0, "ms": ms, "cached": hits > 0,
                           "correct": correct_start(ghost, rest[(burst + 1) * args.typed:]), "ghost": ghost})
        s.client.text_document_did_close(types.DidCloseTextDocumentParams(
            text_document=types.TextDocumentIdentifier(uri=uri)))
    if args.root:
        for _ in range(600):  # the repository index is built in the background: report its state
            st = await s.status()
            if (st.get("repo_index") or {}).get("state") != "building":
                break
            await asyncio.sleep(0.1)
    status = await s.status()
    await s.stop()
    return {"served": served, "repo_index": status.get("repo_index"), "order": status.get("fim_order"), "backend": status.get("backend"), "pauses": pauses}


def summary(r: dict) -> dict:
    model = [p for p in r["pauses"] if not p["cached"]]

    def lat(ps):
        xs = [p["ms"] for p in ps if p["ms"] == p["ms"]]
        return f"{pct(xs, 50):.0f} / {pct(xs, 95):.0f}"

    return {
        "served": f"{r['served']} ({r['backend']}, {r['order']})",
        "all pauses p50 / p95 (ms)": lat(model),
        "first pause at a new place": lat([p for p in model if p["first"]]),
        "typing on at the same place": lat([p for p in model if not p["first"]]),
        "correct start of the true line": f"{sum(p['correct'] for p in r['pauses'])} / {len(r['pauses'])}",
        "answered from the typed-ahead cache": sum(p["cached"] for p in r["pauses"]),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="qwen2.5-coder-0.5b")
    ap.add_argument("--home", help="COPILOT_HOME for the servers (the converted model, the adapter registry)")
    ap.add_argument("--serve", default="base", help="comma list: base and/or adapters NAME[@VERSION]")
    ap.add_argument("--set", help="settings for every server, e.g. completion.cache_reuse=0,completion.order=spm")
    ap.add_argument("--files", nargs="*", help="source files to type in (default: real files of installed projects)")
    ap.add_argument("--places", type=int, default=20)
    ap.add_argument("--typed", type=int, default=6, help="characters typed before each pause")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--think-ms", type=int, default=600, help="time between arriving at a place and the first keystroke")
    ap.add_argument("--no-cursor-moved", action="store_true", help="do not send copilot/cursorMoved on arrival "
                    "(as an editor without it)")
    ap.add_argument("--root", help="workspace folder the servers index for repository context (default: none)")
    ap.add_argument("--server-log", help="write each server's debug log (one line per model call) to FILE.<served>")
    ap.add_argument("--show", action="store_true", help="print every pause's ghost text")
    args = ap.parse_args()
    places = pick_places(args.files or default_files(), args.places, args.typed, random.Random(args.seed))
    speed = machine_speed(args.model, args.home)
    rows = []
    for served in args.serve.split(","):
        print(f"-- {served} ...", file=sys.stderr, flush=True)
        r = asyncio.run(replay(args, served, places))
        if args.show:
            for p in r["pauses"]:
                print(f"{'first' if p['first'] else 'on   '} {p['ms']:7.0f} ms {'ok ' if p['correct'] else '   '}"
                      f"{'cache ' if p['cached'] else ''}{p['ghost'][:60]!r}", file=sys.stderr)
        rows.append(summary(r))
    print(f"model: {args.model}; {args.places} places x 2 pauses ({args.typed} characters typed before each), "
          f"seed {args.seed}, {args.think_ms} ms from arriving to typing, copilot/cursorMoved "
          f"{'off' if args.no_cursor_moved else 'on'}{'; settings ' + args.set if args.set else ''}\n{speed}\n")
    keys = list(rows[0])
    print("| " + " | ".join(keys) + " |")
    print("|" + "|".join("---" for _ in keys) + "|")
    for row in rows:
        print("| " + " | ".join(str(row[k]) for k in keys) + " |")


if __name__ == "__main__":
    main()
