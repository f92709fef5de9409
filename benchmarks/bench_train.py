"""Training benchmark: our trainer vs a plain `transformers.Trainer` + peft loop, and (--full) the real result.

Smoke (default; a few minutes on 2 cores):
    .venv/bin/python benchmarks/bench_train.py --model /path/to/converted/qwen2.5-coder-0.5b/hf --steps 3
  Same examples (same FIM formatting and completion-only labels), same LoRA config, same number of
  optimizer steps with about the same tokens per step, each side in its own process so peak RSS is its own.
  Reports real (non-padding) training tokens/s, the speedup, and peak RSS.
  Without --data it builds FIM pairs from real Python source (the installed `click` package).

On a GPU (QLoRA NF4 on both sides: ours picks it automatically, the Trainer gets the same BitsAndBytesConfig,
bf16, paged AdamW and gradient checkpointing), with peak GPU memory beside tokens/s:
    .venv/bin/python benchmarks/bench_train.py --device cuda --sides ours,trainer --steps 20
  The same 4-bit code path runs on CPU with `--quantize 4bit` (slow; it checks the script, not the speed).

Full (the issue's real result; ≤ 60 min of training on this CPU, then evaluation):
    .venv/bin/python benchmarks/bench_train.py --full --data DIR [--minutes 60] [--eval-examples 150]
  DIR is the indexer's pairs dataset of a real repository with history (train = older commits,
  test = newest commits). Trains an adapter for the embedded 0.5B within the time budget, then exact
  match / edit similarity on the test split for base vs adapter; writes benchmarks/results/train_full.{md,png,json}.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from copilot.core.paths import set_offline_env  # noqa: E402

set_offline_env()


# ---------------------------------------------------------------------------- data
def pairs_from_source(src: Path, out: Path, per_file: int = 12, seed: int = 0) -> Path:
    """FIM pairs cut from real source files (single- and multi-line middles); ~10% of files -> test."""
    from datasets import Dataset, DatasetDict

    from copilot.core.types import TrainingPair

    rng = random.Random(seed)
    rows = {"train": [], "test": []}
    for f in sorted(src.rglob("*.py")):
        text = f.read_text(errors="replace")
        lines = text.split("\n")
        code_lines = [i for i, ln in enumerate(lines) if ln.strip() and not ln.strip().startswith("#")]
        if len(code_lines) < 20:
            continue
        split = "test" if int(hashlib.sha256(str(f).encode()).hexdigest(), 16) % 8 == 0 else "train"
        for _ in range(per_file):
            i = rng.choice(code_lines)
            multiline = rng.random() < 0.4
            indent = len(lines[i]) - len(lines[i].lstrip())
            if multiline:
                j = min(len(lines), i + rng.randint(2, 5))
                middle = "\n".join(lines[i:j]) + "\n"
                prefix = "\n".join(lines[:i]) + "\n"
                suffix = "\n".join(lines[j:])
            else:
                col = indent + rng.randint(0, max(0, len(lines[i].rstrip()) - indent - 1))
                middle = lines[i][col:]
                prefix = "\n".join(lines[:i]) + "\n" + lines[i][:col]
                suffix = "\n" + "\n".join(lines[i + 1:])
            if not middle.strip():
                continue
            rows[split].append(TrainingPair(
                kind="fim_file", prompt="", completion=middle, repo=str(src), path=str(f.relative_to(src)),
                commit="worktree", commit_time=0, language="python", span_start=i, span_end=i,
                prefix=prefix[-4000:], middle=middle, suffix=suffix[:2000], split=split, multiline=multiline,
            ).to_row())
    DatasetDict({k: Dataset.from_list(v) for k, v in rows.items()}).save_to_disk(str(out))
    (out / "manifest.json").write_text(json.dumps({"fingerprint": f"bench-src-{seed}-{src.name}"}))
    return out


# ---------------------------------------------------------------------------- sides (subprocesses)
def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def peak_gpu_mb() -> float | None:
    import torch

    return torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else None


def qlora(a) -> bool:
    return a.quantize == "4bit" or (a.quantize == "auto" and a.device == "cuda")


def smoke_recipe(a):
    """The recipe every side of the smoke comparison trains with."""
    from copilot.core.settings import TrainSettings
    from copilot.train.recipe import TrainRecipe

    return TrainRecipe(train=TrainSettings(max_seq_len=a.max_seq_len, batch_tokens=a.batch_tokens, r=a.r,
                                           alpha=2 * a.r, quantize=a.quantize),
                       max_steps=a.steps, checkpoint_every=10**9)


def side_ours(a) -> dict:
    from copilot.core.settings import Settings
    from copilot.train.loop import train

    os.environ["COPILOT_HOME"] = tempfile.mkdtemp(prefix="bench-home-")
    s = Settings()
    s.model, s.device = a.model, a.device
    res = train(a.data, "bench", settings=s, recipe=smoke_recipe(a), progress=False, publish=False)
    return {"tokens": res.tokens, "seconds": res.seconds, "steps": res.steps, "losses": res.losses, "mode": res.mode}


def side_processes(a, n: int) -> dict:
    """Our trainer as `copilot train --processes N` (data-parallel, gloo on CPU), same recipe as "ours"."""
    home = Path(tempfile.mkdtemp(prefix="bench-home-"))
    from copilot.train.recipe import recipe_toml

    recipe = home / "recipe.toml"
    recipe.write_text(recipe_toml(smoke_recipe(a)))
    cmd = [sys.executable, "-m", "copilot.cli.main", "train", "--data", str(a.data), "--name", "bench", "--base",
           str(a.model), "--config", str(recipe), "--max-steps", str(a.steps), "--processes", str(n), "--quiet"]
    proc = subprocess.run(cmd, env={**os.environ, "COPILOT_HOME": str(home), "COPILOT_DEVICE": a.device},
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{n} processes failed:\n{proc.stderr[-3000:]}")
    t = json.loads((home / "adapters" / "bench" / "1" / "manifest.json").read_text())["training"]
    return {"tokens": t["tokens"], "seconds": t["train_seconds"], "steps": t["steps"], "losses": t["losses"],
            "mode": t["mode"], "processes": n,
            "child_peak_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}


def side_trainer(a, bf16: bool = False) -> dict:
    import torch
    from datasets import Dataset
    from peft import LoraConfig, get_peft_model
    from transformers import (AutoModelForCausalLM, AutoTokenizer, DataCollatorForSeq2Seq, Trainer,
                              TrainerCallback, TrainingArguments)

    from copilot.core.settings import TrainSettings
    from copilot.models.packaged import resolve_model
    from copilot.prompts.formats import detect_fim
    from indexer.dataset import load_with_manifest as load_pairs
    from copilot.train.data import encode_rows

    ts = TrainSettings(max_seq_len=a.max_seq_len, r=a.r, alpha=2 * a.r)
    folder = resolve_model(a.model)
    tok = AutoTokenizer.from_pretrained(str(folder))
    ds, _ = load_pairs(a.data)
    exs, _ = encode_rows(ds["train"], tok, detect_fim(tok), max_seq_len=ts.max_seq_len, spm_share=0.5)
    mean_len = sum(len(e.input_ids) for e in exs) / len(exs)
    bs = max(1, round(a.batch_tokens / mean_len))
    train_ds = Dataset.from_dict({"input_ids": [e.input_ids for e in exs], "labels": [e.labels for e in exs]})
    if qlora(a):  # the same 4-bit base as ours: NF4, double quantization, bf16 compute
        from peft import prepare_model_for_kbit_training
        from transformers import BitsAndBytesConfig

        bnb = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                                 bnb_4bit_compute_dtype=torch.bfloat16)
        model = AutoModelForCausalLM.from_pretrained(str(folder), quantization_config=bnb, dtype=torch.bfloat16,
                                                     device_map={"": 0} if a.device == "cuda" else None)
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=a.device == "cuda",
                                                gradient_checkpointing_kwargs={"use_reentrant": False})
    else:
        model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32)
    model = get_peft_model(model, LoraConfig(r=ts.r, lora_alpha=ts.alpha, lora_dropout=ts.dropout,
                                             target_modules=ts.target_modules, task_type="CAUSAL_LM"))
    collate = DataCollatorForSeq2Seq(tok, padding=True, label_pad_token_id=-100)
    count = {"tokens": 0, "padded": 0}

    def counter(module, args, kwargs):  # count what is really trained on (the Trainer may prefetch batches)
        if module.training and kwargs.get("attention_mask") is not None:
            count["tokens"] += int(kwargs["attention_mask"].sum())
            count["padded"] += int(kwargs["attention_mask"].numel())

    model.register_forward_pre_hook(counter, with_kwargs=True)

    timing = {}

    class Clock(TrainerCallback):
        def on_train_begin(self, args, state, control, **kw):
            count["tokens"] = count["padded"] = 0
            timing["t0"] = time.perf_counter()

        def on_train_end(self, args, state, control, **kw):
            timing["t1"] = time.perf_counter()

    out = tempfile.mkdtemp(prefix="bench-trainer-")
    args = TrainingArguments(
        output_dir=out, per_device_train_batch_size=bs, max_steps=a.steps, learning_rate=ts.learning_rate,
        lr_scheduler_type="cosine", warmup_steps=0.05, logging_steps=1, save_strategy="no", report_to=[],
        use_cpu=a.device == "cpu", bf16=bf16 or a.device == "cuda", dataloader_num_workers=0,
        remove_unused_columns=False, disable_tqdm=True, seed=0,
        optim="paged_adamw_32bit" if a.device == "cuda" else "adamw_torch",
        gradient_checkpointing=a.device == "cuda", gradient_checkpointing_kwargs={"use_reentrant": False},
    )
    trainer = Trainer(model=model, args=args, train_dataset=train_ds, data_collator=collate, callbacks=[Clock()])
    trainer.train()
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    return {"tokens": count["tokens"], "seconds": timing["t1"] - timing["t0"], "steps": a.steps, "losses": losses,
            "batch_size": bs, "mean_example_tokens": round(mean_len, 1), "padded_tokens": count["padded"]}


def run_side(name: str, a) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as fh:
        out = fh.name
    cmd = [sys.executable, __file__, "--side", name, "--json-out", out, "--model", str(a.model), "--data", str(a.data),
           "--steps", str(a.steps), "--max-seq-len", str(a.max_seq_len), "--batch-tokens", str(a.batch_tokens),
           "--r", str(a.r), "--device", a.device, "--quantize", a.quantize]
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"side {name} failed:\n{proc.stderr[-3000:]}")
    res = json.loads(Path(out).read_text())
    res["wall_s"] = time.perf_counter() - t
    return res


LABELS = {
    "ours": "copilot.train (packed, completion-only logits, auto CPU dtype)",
    "ours-2p": "copilot.train, 2 data-parallel processes (`--processes 2`; gloo on CPU, NCCL on GPUs)",
    "trainer": "transformers.Trainer + peft (padded batches, fp32)",
    "trainer-bf16": "transformers.Trainer + peft (padded batches, bf16=True autocast)",
}


def compare(a) -> list[dict]:
    results = []
    for name in a.sides.split(","):
        r = run_side(name, a)
        r["side"] = name
        r["tokens_per_s"] = r["tokens"] / r["seconds"]
        results.append(r)
    return results


def print_compare(results: list[dict]) -> str:
    gpu = any(r.get("peak_gpu_mb") for r in results)
    lines = ["| trainer | steps | real tokens | train s | tokens/s | peak RSS MB |" + (" peak GPU MB |" if gpu else "")
             + " first → last loss |", "|---|---:|---:|---:|---:|---:|" + ("---:|" if gpu else "") + "---|"]
    for r in results:
        lo = r["losses"]
        label = LABELS[r["side"]] + (", base in 4-bit NF4" if r.get("nf4") else "")
        lines.append(f"| {label} | {r['steps']} | {r['tokens']:,} | {r['seconds']:.1f} | {r['tokens_per_s']:.0f} "
                     f"| {r['peak_rss_mb']:.0f} |" + (f" {r.get('peak_gpu_mb') or 0:.0f} |" if gpu else "")
                     + f" {lo[0]:.3f} → {lo[-1]:.3f} |")
    ours = next((r for r in results if r["side"] == "ours"), None)
    for r in results:
        if ours is not None and r is not ours and r.get("processes"):
            lines.append(f"\n{r['processes']} processes vs 1: **{r['tokens_per_s'] / ours['tokens_per_s']:.2f}×** tokens/s "
                         f"(peak RSS is per process; the loss after each step is the same run's to 1e-4 when the "
                         f"global batch is the same, tests/train/test_train_distributed.py)")
        elif ours is not None and r is not ours:
            lines.append(f"\nspeedup vs {r['side']} (tokens/s): **{ours['tokens_per_s'] / r['tokens_per_s']:.2f}×**"
                         f" (Trainer batch size {r.get('batch_size')}, mean example {r.get('mean_example_tokens')} tokens,"
                         f" {r.get('padded_tokens', 0) - r['tokens']:,} padding tokens)")
    if ours is not None:
        lines.append(f"\nours: mode {ours.get('mode')}")
    text = "\n".join(lines)
    print(text)
    return text


# ---------------------------------------------------------------------------- full run
def full(a) -> None:
    from copilot.core.settings import Settings, TrainSettings
    from copilot.evaluate.report import markdown, to_json, write_report
    from copilot.evaluate.run import evaluate
    from copilot.train.loop import train
    from copilot.train.recipe import TrainRecipe

    results_dir = ROOT / "benchmarks" / "results"
    results_dir.mkdir(parents=True, exist_ok=True)
    cmp_text = print_compare(compare(a))
    s = Settings()
    s.model, s.device = a.model, "cpu"
    rec = TrainRecipe(train=TrainSettings(max_seq_len=a.max_seq_len, batch_tokens=a.batch_tokens, r=a.r, alpha=2 * a.r,
                                          learning_rate=a.lr),
                      epochs=a.epochs, max_minutes=a.minutes, checkpoint_every=25)
    t0 = time.perf_counter()
    res = train(a.data, a.name, settings=s, recipe=rec, progress=True, log=print)
    train_min = (time.perf_counter() - t0) / 60
    spec = f"{res.manifest.name}@{res.manifest.version}"
    ev = evaluate(a.data, spec, base_too=True, settings=s, max_examples=a.eval_examples, progress=True, log=print)
    write_report(ev, results_dir / "train_full.md")
    md = (results_dir / "train_full.md").read_text()
    head = (f"# Full training benchmark\n\n- base: `{a.model}`; data: `{a.data}`; adapter {spec}; "
            f"{res.steps} steps in {train_min:.1f} min ({res.tokens_per_s:.0f} tokens/s, mode {res.mode}); "
            f"loss {res.losses[0]:.3f} → {res.losses[-1]:.3f}; peak RSS {peak_rss_mb():.0f} MB\n\n"
            f"## Throughput vs transformers.Trainer\n\n{cmp_text}\n\n")
    (results_dir / "train_full.md").write_text(head + md)
    (results_dir / "train_full.json").write_text(to_json(ev, with_examples=True))
    print(markdown(ev))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="qwen2.5-coder-0.5b", help="base model spec or converted folder")
    ap.add_argument("--data", default=None, help="pairs dataset (indexer output); default: pairs cut from `click` source")
    ap.add_argument("--steps", type=int, default=3, help="optimizer steps per side in the comparison")
    ap.add_argument("--max-seq-len", type=int, default=512)
    ap.add_argument("--batch-tokens", type=int, default=2048)
    ap.add_argument("--r", type=int, default=16)
    ap.add_argument("--full", action="store_true", help="also train within --minutes and evaluate base vs adapter")
    ap.add_argument("--minutes", type=float, default=55.0)
    ap.add_argument("--epochs", type=float, default=3.0)
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--eval-examples", type=int, default=150)
    ap.add_argument("--name", default="bench-full")
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--quantize", choices=["auto", "4bit", "none"], default="auto",
                    help="auto: NF4 QLoRA on cuda, unquantized on CPU (both sides)")
    ap.add_argument("--sides", default="ours,trainer,trainer-bf16", help="comma list of: " + ", ".join(LABELS))
    ap.add_argument("--side", choices=list(LABELS), help=argparse.SUPPRESS)
    ap.add_argument("--json-out", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.side:
        if a.side == "ours":
            r = side_ours(a)
        elif a.side.startswith("ours-"):
            r = side_processes(a, int(a.side[len("ours-"):-1]))
        else:
            r = side_trainer(a, bf16=a.side == "trainer-bf16")
        r["peak_rss_mb"] = r.pop("child_peak_rss_mb", None) or peak_rss_mb()
        r["peak_gpu_mb"] = peak_gpu_mb()
        r["nf4"] = qlora(a)
        Path(a.json_out).write_text(json.dumps(r))
        return
    if a.data is None:
        if a.full:
            raise SystemExit("--full needs --data DIR: the indexer's pairs dataset of a real repository with history")
        import click

        a.data = str(pairs_from_source(Path(click.__file__).parent, Path(tempfile.mkdtemp(prefix="bench-pairs-")) / "ds"))
        print(f"pairs from {Path(click.__file__).parent} -> {a.data}")
    if a.full:
        full(a)
    else:
        print_compare(compare(a))


if __name__ == "__main__":
    main()
