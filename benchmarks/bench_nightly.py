"""Wall time of a nightly cycle on a real repo history: bootstrap night, a one-day delta, a no-change night.

The repo is the indexer's "company repo" (successive PyPI releases of click + itsdangerous committed with
their release dates; scripts/make_company_repo.py). A private clone is rewound by --delta commits; the
first cycle (bootstrap) mines the rest, then the clone is moved forward by those commits (one "day") and a
second cycle mines, trains a warm-started candidate, evaluates candidate vs active and decides; a third
cycle sees no change. Prints a table of phase timings.

    .venv/bin/python benchmarks/bench_nightly.py --model /path/to/qwen2.5-coder-0.5b/hf          # short
    .venv/bin/python benchmarks/bench_nightly.py --model qwen2.5-coder-0.5b --steps 200 --eval 60  # full night
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def git(cwd, *args) -> str:
    return subprocess.run(["git", *args], cwd=str(cwd), capture_output=True, text=True, check=True).stdout.strip()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="qwen2.5-coder-0.5b", help="base model (packaged name or converted folder)")
    ap.add_argument("--repo", default=os.environ.get("COPILOT_BENCH_REPO", str(Path.home() / ".cache/copilot/company-repo")))
    ap.add_argument("--delta", type=int, default=1, help="commits in the 'one day' delta")
    ap.add_argument("--steps", type=int, default=3, help="training steps per night (full run: 200)")
    ap.add_argument("--minutes", type=float, default=0, help="training time budget per night (0 = steps only)")
    ap.add_argument("--eval", type=int, default=4, help="test pairs evaluated per side (full run: 60)")
    ap.add_argument("--max-new-tokens", type=int, default=16)
    ap.add_argument("--batch-tokens", type=int, default=1024)
    ap.add_argument("--json-out", default=None)
    a = ap.parse_args()

    from copilot.core.paths import set_offline_env

    set_offline_env()
    src = Path(a.repo)
    if not (src / ".git").exists():
        subprocess.run([sys.executable, str(ROOT / "scripts/make_company_repo.py"), "--out", str(src)], check=True)
    work = Path(tempfile.mkdtemp(prefix="bench-nightly-"))
    os.environ["COPILOT_HOME"] = str(work / "home")
    os.environ["COPILOT_CONFIG"] = str(work / "no-user-config.toml")
    repo = work / "repo"
    subprocess.run(["git", "clone", "-q", str(src), str(repo)], check=True)
    head = git(repo, "rev-parse", "HEAD")
    git(repo, "reset", "-q", "--hard", f"HEAD~{a.delta}")
    delta_log = git(repo, "log", "--format=%h %ad %s", "--date=short", f"HEAD..{head}")
    cfg = work / "nightly.toml"
    cfg.write_text(f"""
[defaults]
base = "{a.model}"
device = "cpu"
max_steps = {a.steps}
max_minutes = {a.minutes}
checkpoint_every = 1000
metric = "fim.edit_sim"
margin = 0.0
eval_examples = {a.eval}
eval_max_new_tokens = {a.max_new_tokens}
test_commits = 1

[defaults.train]
r = 8
alpha = 16
max_seq_len = 512
batch_tokens = {a.batch_tokens}
target_modules = ["q_proj", "k_proj", "v_proj", "o_proj"]

[adapters.company]
repos = ["{repo}"]
""")
    from copilot.nightly.run import Options, run as run_cycle

    rows = []

    def night(label: str) -> dict:
        t0 = time.perf_counter()
        st = run_cycle(Options(config=str(cfg), log=lambda s: print("  " + s, file=sys.stderr)))
        wall = time.perf_counter() - t0
        ad = st["adapters"]["company"]
        mined = ad.get("mined") or {}
        m = next(iter(mined.values()), {})
        rows.append({"night": label, "wall_s": round(wall, 1), **{k: ad.get("timings", {}).get(k) for k in
                     ("fetch", "index", "dataset", "train", "eval")},
                     "commits": m.get("commits_mined", 0), "new_pairs": m.get("new_pairs", 0),
                     "train_pairs": (ad.get("data") or {}).get("new_train", 0) + (ad.get("data") or {}).get("replay", 0),
                     "steps": (ad.get("train") or {}).get("steps"), "decision": (ad.get("decision") or {}).get("why", "")})
        return st

    print(f"repo {src} ({git(src, 'rev-list', '--count', 'HEAD')} commits), delta:\n  {delta_log}", file=sys.stderr)
    night("bootstrap (all history)")
    git(repo, "reset", "-q", "--hard", head)
    night(f"one day (+{a.delta} commit)")
    night("no change")

    cols = ["night", "wall_s", "fetch", "index", "dataset", "train", "eval", "commits", "new_pairs", "train_pairs", "steps"]
    print(f"\nnightly cycle on {a.model} (CPU, {os.cpu_count()} cores), {a.steps} steps x {a.batch_tokens} tokens, "
          f"eval {a.eval} pairs x 2 sides x {a.max_new_tokens} tokens")
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for r in rows:
        print("| " + " | ".join("–" if r[c] is None else (f"{r[c]:.1f}" if isinstance(r[c], float) else str(r[c]))
                                for c in cols) + " |")
    for r in rows:
        print(f"  {r['night']}: {r['decision']}")
    if a.json_out:
        Path(a.json_out).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
