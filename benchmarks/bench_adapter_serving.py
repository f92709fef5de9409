"""How fast llama.cpp serves an adapter: the base alone, a runtime LoRA, and the adapter merged into the base.

Per engine, after a 500-token prompt is in the KV cache (median of --reps runs):
- one decode step (1 token: what each generated token costs),
- a 2-token step (a keystroke in suffix-first order: the changed last token + <fim_middle>),
- prefill speed in 128-token chunks (a cold prompt), and the process RSS after loading.

    python benchmarks/bench_adapter_serving.py --adapter company@1      # COPILOT_HOME holding the registry
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def measure(eng, ids: list[int], reps: int) -> dict:
    def step(k: int) -> float:
        ts = []
        for _ in range(reps):
            eng._truncate_to(500)
            t = time.perf_counter()
            eng._eval(ids[500:500 + k])
            ts.append(time.perf_counter() - t)
        return statistics.median(ts) * 1000

    eng._reset_context()
    eng._live_ids = []
    t = time.perf_counter()
    for i in range(0, 512, 128):
        eng._eval(ids[i:i + 128])
    prefill = 512 / (time.perf_counter() - t)
    return {"decode_ms": step(1), "step2_ms": step(2), "prefill_tps": prefill}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="qwen2.5-coder-0.5b")
    ap.add_argument("--adapter", required=True, help="registry NAME[@VERSION] or a peft folder")
    ap.add_argument("--reps", type=int, default=7)
    args = ap.parse_args()
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import psutil

    from copilot.core.settings import Settings
    from copilot.serve.llama import LlamaEngine

    text = (REPO / "copilot" / "serve" / "llama.py").read_text()
    rows = []
    for label, merge, adapter in (("base model", True, None), ("runtime LoRA", False, args.adapter),
                                  ("merged (Q8_0 adapted weights)", True, args.adapter)):
        eng = LlamaEngine.load(args.model, Settings(adapter_merge=merge))
        if adapter:
            key = eng.load_adapter(adapter)
            eng._apply(key)
        ids = eng.tokenizer.encode(text)[:600]
        r = measure(eng, ids, args.reps)
        r["rss_mb"] = psutil.Process().memory_info().rss / 2**20
        r["label"] = label
        r["file_mb"] = eng._loaded_path.stat().st_size / 2**20 + (
            eng._lora_files[key].stat().st_size / 2**20 if adapter and not merge else 0)
        rows.append(r)
        eng.llm.close()
    print(f"model {args.model}, adapter {args.adapter}, threads {Settings().threads or 'auto'}, median of {args.reps}\n")
    print("| serving | decode (ms/token) | 2-token step (ms) | prefill (tokens/s) | GGUF (MB) | RSS (MB) |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['label']} | {r['decode_ms']:.1f} | {r['step2_ms']:.1f} | {r['prefill_tps']:.0f} | "
              f"{r['file_mb']:.0f} | {r['rss_mb']:.0f} |")


if __name__ == "__main__":
    main()
