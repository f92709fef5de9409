"""LoRA / QLoRA training of a company adapter -> a candidate version in the adapter registry.

Modes (chosen by `quantize`, see TrainSettings):
- GPU, auto: **QLoRA** — base in 4-bit NF4 with double quantization, bf16 compute, paged AdamW,
  gradient checkpointing. That is what makes a 7B fit on one consumer GPU.
- CPU, auto: **LoRA on an unquantized base**, never 4-bit: bitsandbytes' 4-bit kernels on CPU only save
  memory; dequantizing on every matmul makes each step ~2x slower (measured: 3.07 s vs 1.65 s/step on a
  168M model, STACK.md). The base is bf16 when the CPU multiplies bf16 natively (AVX512-BF16/AMX:
  measured 4.4x faster GEMMs, ~2.8x faster 0.5B LoRA steps on this machine), else fp32; adapter
  weights stay fp32 either way (`cpu_dtype` in the recipe overrides). A 0.5B base needs 1-2.5 GB.
- `quantize="4bit"` forces NF4 (double quant, bf16 compute) even on CPU, for bases that don't fit in RAM.

Loss only on completion tokens (copilot.train_data), examples packed into rows with per-example
position ids (block-diagonal attention, no padding inside a row). Checkpoints (adapter + optimizer +
step + RNG) go to a work dir under the data root every `checkpoint_every` steps and when stopped
(Ctrl-C), so `resume=True` continues from the last one; the data order is a pure function of
(seed, epoch), so a resumed run sees exactly the batches it would have seen.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import threading
import time
import tomllib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from copilot.core import paths
from copilot.core.settings import Settings, TrainSettings, _merge
from copilot.adapters.registry import Registry, check_name
from copilot.core.types import AdapterManifest, CopilotError, UserInputError

CHECKPOINT_FILES = ("adapter_model.safetensors", "adapter_config.json", "optimizer.pt", "state.json")


@dataclass
class TrainRecipe:
    """Everything that decides a training run. TrainSettings (config file/env/flags) plus run options;
    a recipe TOML (`--config`) may set any of these keys at top level or under [train]."""

    train: TrainSettings = field(default_factory=TrainSettings)
    spm_share: float = 0.5  # share of FIM pairs in suffix-prefix-middle order (llama.cpp KV reuse needs it)
    epochs: float = 1.0
    max_steps: int = 0  # 0 = from epochs
    checkpoint_every: int = 50
    warmup_ratio: float = 0.05
    grad_clip: float = 1.0
    seed: int = 0
    rows_per_forward: int = 1  # micro-batch rows; gradient accumulation up to batch_tokens
    gradient_checkpointing: str = "auto"  # auto (GPU only) | on | off
    suffix_share: float = 0.25
    cpu_dtype: str = "auto"  # auto (bf16 where the CPU has native bf16 matmuls, else fp32) | fp32 | bf16
    max_minutes: float = 0.0  # time budget for the loop; 0 = none. The LR schedule is fitted to it after 3 steps.

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_recipe(path: str | Path | None, base: TrainSettings | None = None, **overrides: Any) -> TrainRecipe:
    recipe = TrainRecipe(train=base if base is not None else TrainSettings())
    if path:
        p = Path(path)
        try:
            data = tomllib.loads(p.read_text())
        except OSError as exc:
            raise UserInputError(f"{p}: cannot read recipe: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise UserInputError(f"{p}: invalid TOML: {exc}") from None
        train_keys = {f.name for f in fields(TrainSettings)}
        flat = {**{k: v for k, v in data.items() if k != "train"}, **data.get("train", {})}
        ts = {k: v for k, v in flat.items() if k.replace("-", "_") in train_keys}
        rest = {k: v for k, v in flat.items() if k.replace("-", "_") not in train_keys}
        _merge(recipe.train, ts, str(p))
        _merge(recipe, rest, str(p))
    _merge(recipe, {k: v for k, v in overrides.items() if v is not None}, "command line")
    if recipe.cpu_dtype not in ("auto", "fp32", "bf16"):
        raise UserInputError(f"cpu_dtype must be auto, fp32 or bf16, got {recipe.cpu_dtype!r}")
    if not 0.0 <= recipe.spm_share <= 1.0:
        raise UserInputError(f"spm_share must be between 0 and 1, got {recipe.spm_share}")
    if recipe.train.quantize not in ("auto", "4bit", "none"):
        raise UserInputError(f"quantize must be auto, 4bit or none, got {recipe.train.quantize!r}")
    return recipe


@dataclass
class TrainResult:
    manifest: AdapterManifest | None
    steps: int
    start_step: int
    losses: list[float]
    tokens: int
    seconds: float
    mode: str
    reason: str
    stopped: bool = False
    work_dir: Path | None = None

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else 0.0


class TrainingStopped(CopilotError):
    """Stopped by the user (Ctrl-C); the last checkpoint is kept."""

    exit_code = 130


# ---------------------------------------------------------------------------- dataset
def load_pairs(data_dir: str | Path):
    """-> (DatasetDict, manifest dict). Clear errors for a missing/empty/foreign dataset."""
    d = Path(data_dir)
    if not d.is_dir():
        raise UserInputError(f"dataset not found: {d}")
    from datasets import Dataset, DatasetDict, load_from_disk

    index = d / "dataset_dict.json"
    try:
        splits = json.loads(index.read_text())["splits"] if index.is_file() else None
    except (OSError, json.JSONDecodeError, KeyError) as exc:
        raise UserInputError(f"{d} is not a pairs dataset (unreadable {index.name}: {exc})") from None
    if splits is None:
        if (d / "state.json").is_file():
            raise UserInputError(f"{d} is a single split; expected a dataset with 'train' and 'test' splits")
        raise UserInputError(f"{d} is not a pairs dataset (no dataset_dict.json; build one with `copilot index`)")
    parts = {}
    for split in splits:
        try:
            state = json.loads((d / split / "state.json").read_text())
            # datasets 5.2 cannot load a saved split with zero rows: represent it as an empty Dataset.
            parts[split] = (load_from_disk(str(d / split)) if state.get("_data_files")
                            else Dataset.from_list([]))
        except (FileNotFoundError, ValueError, OSError, IndexError, json.JSONDecodeError) as exc:
            raise UserInputError(f"{d}: split {split!r} is unreadable ({exc})") from None
    ds = DatasetDict(parts)
    manifest: dict[str, Any] = {}
    mp = d / "manifest.json"
    if mp.is_file():
        try:
            manifest = json.loads(mp.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise UserInputError(f"{mp}: unreadable dataset manifest: {exc}") from None
    return ds, manifest


def dataset_tokenizer_hash(manifest: dict[str, Any]) -> str | None:
    for holder in (manifest, manifest.get("extra") or {}):
        for key in ("tokenizer_sha256", "tokenizer_hash"):
            if holder.get(key):
                return str(holder[key])
    return None


# ---------------------------------------------------------------------------- model
def cpu_has_bf16() -> bool:
    """True when the CPU multiplies bf16 natively (AVX512-BF16 or AMX): there a bf16 GEMM measured
    4.4x faster than fp32 (284 vs 64 GFLOPS on 2 EPYC cores) and a 0.5B LoRA step ~2.8x faster."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def choose_mode(device: str, quantize: str, cpu_dtype: str = "auto") -> tuple[str, str]:
    """-> (mode, why). mode: 'qlora-nf4' | 'lora-fp32' | 'lora-bf16'."""
    if quantize == "4bit":
        return "qlora-nf4", "4-bit NF4 forced (--quantize 4bit)" + (
            "; on CPU this only saves memory, steps are ~2x slower than an unquantized base" if device == "cpu" else "")
    if device == "cuda":
        if quantize == "none":
            return "lora-bf16", "GPU without quantization (--quantize none): bf16 base"
        return "qlora-nf4", "GPU: QLoRA (NF4 + double quant, bf16 compute, paged AdamW, gradient checkpointing)"
    no4 = "bitsandbytes 4-bit on CPU only saves memory and is ~2x slower per step (use --quantize 4bit if the base does not fit in RAM)"
    if cpu_dtype == "bf16" or (cpu_dtype == "auto" and cpu_has_bf16()):
        why = "this CPU has native bf16 matmuls (~2.8x faster steps than fp32)" if cpu_dtype == "auto" else "bf16 requested"
        return "lora-bf16", f"CPU: LoRA on a bf16 base with fp32 adapter weights, because {why}; not 4-bit, because {no4}"
    return "lora-fp32", f"CPU: fp32 LoRA (no native bf16 on this CPU{'' if cpu_dtype == 'auto' else ', or fp32 requested'}); not 4-bit, because {no4}"


def pick_device(device: str) -> str:
    import torch

    if device in ("", "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise UserInputError("device 'cuda' requested but no CUDA GPU is available")
    return device


def count_params(model_dir: Path) -> int:
    """Parameter count from the safetensors headers (no weights read)."""
    total = 0
    for f in sorted(model_dir.glob("*.safetensors")):
        with open(f, "rb") as fh:
            n = int.from_bytes(fh.read(8), "little")
            header = json.loads(fh.read(n))
        for k, v in header.items():
            if k != "__metadata__":
                total += math.prod(v["shape"]) if v["shape"] else 1
    return total


def check_memory(model_dir: Path, mode: str, device: str, seq_len: int, available: int | None = None) -> int:
    """Estimate bytes needed before loading; raise a clear error when it cannot fit."""
    import psutil

    params = count_params(model_dir)
    per_param = {"lora-fp32": 4.0, "lora-bf16": 2.0, "qlora-nf4": 0.6}[mode]
    if device != "cpu":
        return int(params * per_param)
    cfg = json.loads((model_dir / "config.json").read_text())
    vocab = int(cfg.get("vocab_size", 32000))
    # weights + fp32 logits and their gradient for one row + a fixed allowance for activations/runtime
    need = int(params * per_param * 1.1 + 3 * seq_len * vocab * 4 + 512 * 2**20)
    avail = psutil.virtual_memory().available if available is None else available
    if need > avail:
        raise CopilotError(
            f"base model {model_dir.name} ({params / 1e9:.2f}B parameters) needs ~{need / 2**30:.1f} GiB to train "
            f"in {mode}, but only {avail / 2**30:.1f} GiB of memory is available"
            + ("; try --quantize 4bit" if mode != "qlora-nf4" else "")
        )
    return need


def load_model(model_dir: Path, mode: str, device: str):
    import torch
    from transformers import AutoModelForCausalLM

    kwargs: dict[str, Any] = {}
    if mode == "qlora-nf4":
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.bfloat16,
        )
        kwargs["dtype"] = torch.bfloat16
        if device == "cuda":
            kwargs["device_map"] = {"": 0}
    else:
        kwargs["dtype"] = torch.bfloat16 if mode == "lora-bf16" else torch.float32
    try:
        model = AutoModelForCausalLM.from_pretrained(str(model_dir), **kwargs)
    except (OSError, ValueError) as exc:
        raise CopilotError(f"cannot load base model {model_dir}: {exc}") from None
    if device == "cuda" and mode != "qlora-nf4":
        model.to("cuda")
    return model


def wrap_lora(model, ts: TrainSettings, mode: str, grad_ckpt: bool, init_adapter: str | Path | None = None):
    """Add trainable LoRA weights: a fresh LoRA from `ts`, or (warm start) a copy of an existing adapter's
    weights, keeping the rank and targets it was trained with."""
    from peft import LoraConfig, PeftModel, get_peft_model, prepare_model_for_kbit_training

    if mode == "qlora-nf4":
        model = prepare_model_for_kbit_training(
            model, use_gradient_checkpointing=grad_ckpt, gradient_checkpointing_kwargs={"use_reentrant": False}
        )
    elif grad_ckpt:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    if init_adapter is not None:
        try:
            model = PeftModel.from_pretrained(model, str(init_adapter), is_trainable=True)
        except (OSError, ValueError, RuntimeError, KeyError) as exc:
            raise CopilotError(f"cannot warm-start from adapter {init_adapter}: {str(exc).splitlines()[0]}") from None
        model.config.use_cache = False
        return model
    present = {n.rsplit(".", 1)[-1] for n, _ in model.named_modules()}
    targets = [t for t in ts.target_modules if t in present]
    if not targets:
        raise UserInputError(f"none of the LoRA target modules {ts.target_modules} exist in this model")
    cfg = LoraConfig(r=ts.r, lora_alpha=ts.alpha, lora_dropout=ts.dropout, target_modules=targets,
                     bias="none", task_type="CAUSAL_LM")
    model = get_peft_model(model, cfg)
    model.config.use_cache = False
    return model


def make_optimizer(params, lr: float, mode: str, device: str):
    import torch

    if device == "cuda":
        import bitsandbytes as bnb

        return bnb.optim.PagedAdamW(params, lr=lr, weight_decay=0.0)
    return torch.optim.AdamW(params, lr=lr, weight_decay=0.0)


def lr_at(step: int, total: int, peak: float, warmup_ratio: float) -> float:
    """Linear warmup then cosine decay to 10% of peak. `step` is 0-based."""
    warm = max(1, int(total * warmup_ratio))
    if step < warm:
        return peak * (step + 1) / warm
    prog = (step - warm) / max(1, total - warm)
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, prog))))


def completion_loss(model, ids, labels, position_ids):
    """Summed cross-entropy over the completion tokens of a packed micro-batch.

    use_cache=False matters: with a cache, transformers ignores the packed position ids and lets the
    examples of one row attend to each other. Logits are projected only where a completion token is
    predicted (`logits_to_keep` mask): the loss ignores every other position, and the lm_head +
    softmax over a ~150k vocabulary is a large share of a small model's step."""
    import torch

    keep = torch.zeros_like(labels, dtype=torch.bool)
    keep[:, :-1] = labels[:, 1:] != -100
    if not bool(keep.any()):
        return torch.zeros((), device=ids.device)
    logits = model(input_ids=ids, position_ids=position_ids, use_cache=False, logits_to_keep=keep).logits
    return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(),
                                             labels[:, 1:][keep[:, :-1]], reduction="sum")


# ---------------------------------------------------------------------------- checkpoints
def work_dir_for(name: str) -> Path:
    return paths.home() / "work" / "train" / check_name(name)


def save_checkpoint(work: Path, model, optimizer, step: int, run_key: dict[str, Any], losses: list[float]) -> Path:
    import torch

    tmp = work / f".ckpt-{step}.tmp"
    final = work / f"ckpt-{step:07d}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir(parents=True)
        model.save_pretrained(str(tmp), safe_serialization=True)
        torch.save({"optimizer": optimizer.state_dict(), "torch_rng": torch.get_rng_state(),
                    "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []},
                   tmp / "optimizer.pt")
        (tmp / "state.json").write_text(json.dumps({"step": step, "run": run_key, "losses": losses}))
        shutil.rmtree(final, ignore_errors=True)
        os.rename(tmp, final)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if exc.errno == 28:
            raise CopilotError(f"disk full while writing checkpoint {final}; the previous checkpoint is kept") from None
        raise CopilotError(f"cannot write checkpoint {final}: {exc.strerror or exc}") from None
    for old in work.glob("ckpt-*"):
        if old != final:
            shutil.rmtree(old, ignore_errors=True)
    return final


def latest_checkpoint(work: Path) -> Path | None:
    cks = sorted(p for p in work.glob("ckpt-*") if all((p / f).is_file() for f in CHECKPOINT_FILES))
    return cks[-1] if cks else None


def load_checkpoint(ckpt: Path, model, optimizer) -> tuple[int, list[float]]:
    import torch
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    state = json.loads((ckpt / "state.json").read_text())
    set_peft_model_state_dict(model, load_file(str(ckpt / "adapter_model.safetensors")))
    blob = torch.load(ckpt / "optimizer.pt", weights_only=True, map_location="cpu")
    optimizer.load_state_dict(blob["optimizer"])
    torch.set_rng_state(blob["torch_rng"])
    if blob.get("cuda_rng") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(blob["cuda_rng"])
    return int(state["step"]), list(state.get("losses", []))


# ---------------------------------------------------------------------------- training
class _Progress:
    """Rich progress bar with loss, tokens/s and ETA (or nothing when quiet)."""

    def __init__(self, enabled: bool, total: int, start: int, mode: str) -> None:
        self.p = None
        if not enabled:
            return
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.p = Progress(
            TextColumn("[bold]train[/] {task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}"), TextColumn("{task.fields[tps]} tok/s"),
            TextColumn("ETA"), TimeRemainingColumn(), console=Console(stderr=True),
        )
        self.p.start()
        self.task = self.p.add_task(mode, total=total, completed=start, loss="-", tps="-")

    def update(self, step: int, loss: float, tps: float) -> None:
        if self.p:
            self.p.update(self.task, completed=step, loss=f"{loss:.4f}", tps=f"{tps:,.0f}")

    def close(self) -> None:
        if self.p:
            self.p.stop()


def _sigint_to(stop: threading.Event):
    if threading.current_thread() is not threading.main_thread():
        return None
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum, frame):  # first Ctrl-C: finish the step, checkpoint, stop; second: abort
        if stop.is_set():
            signal.signal(signal.SIGINT, previous)
            raise KeyboardInterrupt
        stop.set()

    signal.signal(signal.SIGINT, handler)
    return previous


def train(
    data_dir: str | Path,
    name: str,
    *,
    settings: Settings | None = None,
    recipe: TrainRecipe | None = None,
    base: str | None = None,
    resume: bool = False,
    progress: bool = True,
    log: Callable[[str], None] = lambda s: None,
    stop: threading.Event | None = None,
    on_step: Callable[[int, float], None] | None = None,
    registry: Registry | None = None,
    publish: bool = True,
    init_adapter: str | Path | None = None,
) -> TrainResult:
    """Train adapter NAME on DATA_DIR's train split; register it as a candidate. See module doc."""
    from copilot.core.paths import set_offline_env

    set_offline_env()
    settings = settings or Settings()
    recipe = recipe or TrainRecipe(train=settings.train)
    ts = recipe.train
    registry = registry or Registry()
    check_name(name)
    stop = stop or threading.Event()

    ds, dmanifest = load_pairs(data_dir)
    if "train" not in ds or len(ds["train"]) == 0:
        raise UserInputError(f"dataset {data_dir} has an empty train split; nothing to train on")

    from copilot.models import packaged as models

    from copilot.prompts import formats as prompts
    from copilot.train.data import batch_plan, collate, encode_rows, pack, tokenizer_hash

    model_dir = models.resolve_model(base or settings.model, log=log)
    base_sha = models.model_sha256(model_dir)
    with registry.training_lock(name):
        import torch
        from transformers import AutoTokenizer

        if settings.threads:
            torch.set_num_threads(settings.threads)
        device = pick_device(settings.device)
        mode, why = choose_mode(device, ts.quantize, recipe.cpu_dtype)
        log(f"Training mode: {mode} — {why}")
        tok = AutoTokenizer.from_pretrained(str(model_dir))
        want = dataset_tokenizer_hash(dmanifest)
        tok_sha = tokenizer_hash(tok)
        if want and want != tok_sha:
            raise UserInputError(
                f"dataset {data_dir} was built with another tokenizer (hash {want[:12]}…) than base model "
                f"{model_dir.name} ({tok_sha[:12]}…); rebuild the dataset for this base"
            )
        fmt = prompts.detect_fim(tok)
        examples, stats = encode_rows(ds["train"], tok, fmt, max_seq_len=ts.max_seq_len, spm_share=recipe.spm_share,
                                      seed=recipe.seed, suffix_share=recipe.suffix_share)
        if not examples:
            raise UserInputError(f"no usable training examples in {data_dir} (dropped: {stats.dropped})")
        rows = pack(examples, ts.max_seq_len)
        rows_per_batch = max(1, ts.batch_tokens // ts.max_seq_len)
        steps_per_epoch = math.ceil(len(rows) / rows_per_batch)
        total = recipe.max_steps or max(1, math.ceil(recipe.epochs * steps_per_epoch))
        log(f"{stats.encoded} examples ({stats.spm} suffix-first), {stats.tokens:,} tokens in {len(rows)} packed rows; "
            f"{total} steps of {rows_per_batch} rows" + (f"; dropped {stats.dropped}" if stats.dropped else ""))

        check_memory(model_dir, mode, device, ts.max_seq_len)
        torch.manual_seed(recipe.seed)
        model = load_model(model_dir, mode, device)
        grad_ckpt = recipe.gradient_checkpointing == "on" or (recipe.gradient_checkpointing == "auto" and device == "cuda")
        model = wrap_lora(model, ts, mode, grad_ckpt, init_adapter)
        trainable = [p for p in model.parameters() if p.requires_grad]
        optimizer = make_optimizer(trainable, ts.learning_rate, mode, device)

        run_key = {"dataset": dmanifest.get("fingerprint") or str(Path(data_dir).resolve()), "base": base_sha,
                   "recipe": recipe.to_dict(), "total": total}
        work = work_dir_for(name)
        start, losses = 0, []
        ck = latest_checkpoint(work) if resume else None
        if resume and ck is None:
            log(f"No checkpoint in {work}; starting from step 0")
        if ck is not None:
            saved = json.loads((ck / "state.json").read_text())["run"]
            if {k: v for k, v in saved.items() if k != "total"} != {k: v for k, v in run_key.items() if k != "total"}:
                raise UserInputError(f"checkpoint {ck} belongs to a run with another dataset, base or recipe; "
                                     "start over without --resume")
            start, losses = load_checkpoint(ck, model, optimizer)
            log(f"Resuming from {ck.name} (step {start})")
        elif work.exists():
            shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True, exist_ok=True)

        pad_id = tok.pad_token_id if tok.pad_token_id is not None else (tok.eos_token_id or 0)
        dev = torch.device(device)
        prev_handler = _sigint_to(stop)
        bar = _Progress(progress, total, start, mode)
        model.train()
        t0 = time.perf_counter()
        tokens = 0
        step = start
        stopped = False
        try:
            while step < total:
                if stop.is_set():
                    stopped = True
                    break
                epoch, bi = divmod(step, steps_per_epoch)
                plan = batch_plan(len(rows), rows_per_batch, epoch, recipe.seed)
                batch_rows = [rows[i] for i in plan[bi]]
                n_label = sum(sum(1 for x in r.labels[1:] if x != -100) for r in batch_rows)
                for g in optimizer.param_groups:
                    g["lr"] = lr_at(step, total, ts.learning_rate, recipe.warmup_ratio)
                step_loss = 0.0
                for i in range(0, len(batch_rows), recipe.rows_per_forward):
                    mb = collate(batch_rows[i:i + recipe.rows_per_forward], pad_id)
                    ids = torch.tensor(mb["input_ids"], device=dev)
                    labels = torch.tensor(mb["labels"], device=dev)
                    pos = torch.tensor(mb["position_ids"], device=dev)
                    loss = completion_loss(model, ids, labels, pos) / max(1, n_label)
                    if not loss.requires_grad:  # no completion token in this micro-batch
                        continue
                    loss.backward()
                    step_loss += float(loss.detach())
                    tokens += sum(r.n_tokens for r in batch_rows[i:i + recipe.rows_per_forward])
                if recipe.grad_clip:
                    torch.nn.utils.clip_grad_norm_(trainable, recipe.grad_clip)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                step += 1
                losses.append(round(step_loss, 5))
                bar.update(step, step_loss, tokens / max(1e-9, time.perf_counter() - t0))
                if on_step:
                    on_step(step, step_loss)
                elapsed = time.perf_counter() - t0
                if recipe.max_minutes and step - start == 3:
                    # Fit the schedule to the time budget from the measured step time.
                    fit = start + int((recipe.max_minutes * 60 - elapsed) / (elapsed / 3)) + 3
                    if fit < total:
                        log(f"Time budget {recipe.max_minutes:g} min: {fit} steps instead of {total}")
                        total = max(step, fit)
                        if bar.p:
                            bar.p.update(bar.task, total=total)
                if recipe.max_minutes and elapsed > recipe.max_minutes * 60 and step < total:
                    log(f"Time budget reached at step {step}/{total}")
                    total = step
                if step % recipe.checkpoint_every == 0 and step < total:
                    save_checkpoint(work, model, optimizer, step, run_key, losses)
        finally:
            bar.close()
            if prev_handler is not None:
                signal.signal(signal.SIGINT, prev_handler)
        seconds = time.perf_counter() - t0
        if stopped:
            ck = save_checkpoint(work, model, optimizer, step, run_key, losses)
            raise TrainingStopped(f"stopped at step {step}/{total}; checkpoint kept in {ck}; "
                                  f"run again with --resume to continue")

        result = TrainResult(None, step, start, losses, tokens, seconds, mode, why, work_dir=work)
        if not publish:
            save_checkpoint(work, model, optimizer, step, run_key, losses)
            return result
        final = work / "final"
        shutil.rmtree(final, ignore_errors=True)
        try:
            model.save_pretrained(str(final), safe_serialization=True)
        except OSError as exc:
            raise CopilotError(f"cannot save the adapter to {final}: {exc.strerror or exc}; registry unchanged") from None
        man = AdapterManifest(
            name=name, version=0, base_model=str(base or settings.model), base_model_sha256=base_sha,
            dataset_fingerprint=str(dmanifest.get("fingerprint", "")),
            lora={"r": model.peft_config["default"].r, "alpha": model.peft_config["default"].lora_alpha,
                  "dropout": model.peft_config["default"].lora_dropout,
                  "target_modules": sorted(model.peft_config["default"].target_modules)},
            training={
                **recipe.to_dict(), "mode": mode, "mode_reason": why, "steps": step, "examples": stats.encoded,
                "packed_rows": len(rows), "dropped": stats.dropped, "fim_orders": ["psm", "spm"] if recipe.spm_share > 0 else ["psm"],
                "spm_examples": stats.spm, "tokenizer_sha256": tok_sha, "loss_first": losses[0] if losses else None,
                "loss_last": losses[-1] if losses else None, "losses": losses[-200:],
                "tokens_per_s": round(tokens / seconds, 1) if seconds else None,
                "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "init_adapter": str(init_adapter) if init_adapter is not None else None,
            },
            prompt_format=fmt.family if fmt else "chat",
            weights_sha256="", created="", dataset_manifest=dmanifest,
        )
        result.manifest = registry.publish(name, final, man)
        shutil.rmtree(work, ignore_errors=True)
        log(f"Registered {name}@{result.manifest.version} (candidate)")
        return result
