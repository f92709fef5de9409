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

Data-parallel over several processes (`copilot train --processes N`, or any torchrun/accelerate launcher):
see copilot.train.distributed; one process is the same run with a group of one.

Loss only on completion tokens (copilot.train.data), examples packed into rows with per-example
position ids (block-diagonal attention, no padding inside a row). Checkpoints (adapter + optimizer +
step + RNG) go to a work dir under the data root every `checkpoint_every` steps and when stopped
(Ctrl-C), so `resume=True` continues from the last one; the data order is a pure function of
(seed, epoch), so a resumed run sees exactly the batches it would have seen.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from copilot.adapters.registry import Registry, check_name
from copilot.core.clock import now_iso
from copilot.core.settings import Settings
from copilot.core.types import AdapterManifest, CopilotError, UserInputError
from copilot.models import packaged as models
from copilot.models.device import pick_device
from copilot.prompts import formats as prompts
from copilot.train.checkpoint import resume_or_reset, save_checkpoint, work_dir_for
from copilot.train.distributed import Group
from copilot.train.data import (
    EncodeStats,
    PackedRow,
    batch_plan,
    collate,
    dataset_tokenizer_hash,
    encode_rows,
    pack,
    tokenizer_hash,
)
from copilot.train.model import (
    check_memory,
    choose_mode,
    completion_loss,
    load_model,
    make_optimizer,
    wrap_lora,
)
from copilot.train.progress import Progress, sigint_to
from copilot.train.recipe import TrainingStopped, TrainRecipe, TrainResult, lr_at
from indexer.dataset import load_with_manifest


@dataclass
class _Data:
    """The tokenized, packed training split and the step count it gives."""

    tok: Any
    tok_sha: str
    fmt: Any
    stats: EncodeStats
    rows: list[PackedRow]
    rows_per_batch: int
    steps_per_epoch: int
    total: int


@dataclass
class _Run:
    """One run's model, optimizer and progress through the steps."""

    model: Any
    optimizer: Any
    trainable: list
    device: str
    mode: str
    why: str
    work: Path
    run_key: dict[str, Any]
    group: Group = field(default_factory=Group)
    start: int = 0
    step: int = 0
    total: int = 0
    losses: list[float] = field(default_factory=list)
    tokens: int = 0
    seconds: float = 0.0
    stopped: bool = False


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
    registry = registry or Registry()
    check_name(name)
    stop = stop or threading.Event()
    ds, dmanifest = _train_dataset(data_dir)
    device, mode, why = _device_and_mode(settings, recipe)
    with Group.join(device) as group:
        if not group.main:  # one voice: process 0 logs, shows progress, writes checkpoints and publishes
            log, progress, on_step = (lambda s: None), False, None
        log(f"Training mode: {mode} — {why}" + (f"; {group.world} processes, data-parallel" if group.world > 1 else ""))
        model_dir = _resolve_base(base or settings.model, group, log)
        base_sha = models.model_sha256(model_dir)
        with registry.training_lock(name) if group.main else contextlib.nullcontext():
            data = _prepare_data(data_dir, ds["train"], dmanifest, model_dir, recipe, log)
            run = _build_run(model_dir, device, mode, why, recipe, init_adapter, work_dir_for(name), group)
            run.run_key = _run_key(data_dir, dmanifest, base_sha, recipe, data.total)
            _resume(run, resume, log)
            _run_steps(run, data, recipe, stop, progress, on_step, log)
            if run.stopped:
                _stop_with_checkpoint(run)
            result = TrainResult(None, run.step, run.start, run.losses, run.tokens, run.seconds, mode, why,
                                 work_dir=run.work)
            if not group.main:
                return result
            if not publish:
                _checkpoint(run)
                return result
            result.manifest = _publish(registry, name, run, data, recipe, base or settings.model, base_sha, dmanifest,
                                       init_adapter)
            shutil.rmtree(run.work, ignore_errors=True)
            log(f"Registered {name}@{result.manifest.version} (candidate)")
            return result


# ---------------------------------------------------------------------------- steps of a run
def _train_dataset(data_dir: str | Path):
    ds, dmanifest = load_with_manifest(data_dir)
    if "train" not in ds or len(ds["train"]) == 0:
        raise UserInputError(f"dataset {data_dir} has an empty train split; nothing to train on")
    return ds, dmanifest


def _resolve_base(spec: str, group: Group, log: Callable[[str], None]) -> Path:
    """The base model's folder; process 0 converts it first when needed, the others then find it cached."""
    model_dir = models.resolve_model(spec, log=log) if group.main else None
    group.barrier()
    return model_dir or models.resolve_model(spec, log=log)


def _device_and_mode(settings: Settings, recipe: TrainRecipe) -> tuple[str, str, str]:
    import torch

    if settings.threads:
        torch.set_num_threads(settings.threads)
    device = pick_device(settings.device)
    mode, why = choose_mode(device, recipe.train.quantize, recipe.cpu_dtype)
    return device, mode, why


def _prepare_data(data_dir: str | Path, train_split, dmanifest: dict[str, Any], model_dir: Path,
                  recipe: TrainRecipe, log: Callable[[str], None]) -> _Data:
    """Tokenizer (checked against the one the dataset was built with), examples, packed rows, step count."""
    from transformers import AutoTokenizer

    ts = recipe.train
    tok = AutoTokenizer.from_pretrained(str(model_dir))
    want = dataset_tokenizer_hash(dmanifest)
    tok_sha = tokenizer_hash(tok)
    if want and want != tok_sha:
        raise UserInputError(
            f"dataset {data_dir} was built with another tokenizer (hash {want[:12]}…) than base model "
            f"{model_dir.name} ({tok_sha[:12]}…); rebuild the dataset for this base"
        )
    fmt = prompts.detect_fim(tok)
    examples, stats = encode_rows(train_split, tok, fmt, max_seq_len=ts.max_seq_len, spm_share=recipe.spm_share,
                                  seed=recipe.seed, suffix_share=recipe.suffix_share, context=recipe.context,
                                  code_tokens=recipe.code_tokens)
    if not examples:
        raise UserInputError(f"no usable training examples in {data_dir} (dropped: {stats.dropped})")
    rows = pack(examples, ts.max_seq_len)
    rows_per_batch = max(1, ts.batch_tokens // ts.max_seq_len)
    steps_per_epoch = math.ceil(len(rows) / rows_per_batch)
    total = recipe.max_steps or max(1, math.ceil(recipe.epochs * steps_per_epoch))
    log(f"{stats.encoded} examples ({stats.spm} suffix-first, {stats.context} with repository context), "
        f"{stats.tokens:,} tokens in {len(rows)} packed rows; "
        f"{total} steps of {rows_per_batch} rows" + (f"; dropped {stats.dropped}" if stats.dropped else ""))
    return _Data(tok, tok_sha, fmt, stats, rows, rows_per_batch, steps_per_epoch, total)


def _build_run(model_dir: Path, device: str, mode: str, why: str, recipe: TrainRecipe,
               init_adapter: str | Path | None, work: Path, group: Group) -> _Run:
    """Check memory, load the base, add LoRA weights (fresh or warm-started) and the optimizer."""
    import torch

    ts = recipe.train
    # Processes of one machine share its memory on CPU: the check counts them all.
    local = int(os.environ.get("LOCAL_WORLD_SIZE", group.world)) if device == "cpu" else 1
    check_memory(model_dir, mode, device, ts.max_seq_len, share=local)
    torch.manual_seed(recipe.seed)
    model = load_model(model_dir, mode, device)
    grad_ckpt = recipe.gradient_checkpointing == "on" or (recipe.gradient_checkpointing == "auto" and device == "cuda")
    model = wrap_lora(model, ts, mode, grad_ckpt, init_adapter)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = make_optimizer(trainable, ts.learning_rate, mode, device)
    return _Run(model, optimizer, trainable, device, mode, why, work, run_key={}, group=group)


def _resume(run: _Run, resume: bool, log: Callable[[str], None]) -> None:
    """Process 0 resumes from (or clears) the work dir first; the others then load the same checkpoint and
    every process starts from process 0's weights."""
    g = run.group
    if g.main:
        run.start, run.losses = resume_or_reset(run.work, resume, run.run_key, run.model, run.optimizer, log)
    g.barrier()
    if not g.main:
        run.start, run.losses = resume_or_reset(run.work, resume, run.run_key, run.model, run.optimizer, log,
                                                clear=False)
    g.same_weights(run.trainable)


def _run_key(data_dir: str | Path, dmanifest: dict[str, Any], base_sha: str, recipe: TrainRecipe,
             total: int) -> dict[str, Any]:
    """What a checkpoint must match to be resumed: dataset, base, recipe (and the planned step count)."""
    rec = recipe.to_dict()
    if rec.get("context") is True:  # the default: checkpoints from before the option still resume
        del rec["context"]
    return {"dataset": dmanifest.get("fingerprint") or str(Path(data_dir).resolve()), "base": base_sha,
            "recipe": rec, "total": total}


def _run_steps(run: _Run, data: _Data, recipe: TrainRecipe, stop: threading.Event, progress: bool,
               on_step: Callable[[int, float], None] | None, log: Callable[[str], None]) -> None:
    """Optimizer steps from run.start to the (time-budget-fitted) total, checkpointing on the way; a set
    `stop` (Ctrl-C) ends the loop after the current step with run.stopped set."""
    import torch

    tok = data.tok
    pad_id = tok.pad_token_id if tok.pad_token_id is not None else (tok.eos_token_id or 0)
    dev = torch.device(run.device)
    run.step, run.total = run.start, data.total
    prev_handler = sigint_to(stop)
    bar = Progress(progress, run.total, run.start, run.mode)
    run.model.train()
    t0 = time.perf_counter()
    try:
        stopping = run.group.max([float(stop.is_set())])[0]  # a stop anywhere stops every process
        while run.step < run.total:
            if stopping:
                run.stopped = True
                break
            step_loss = _one_step(run, data, recipe, pad_id, dev)
            run.step += 1
            run.losses.append(round(step_loss, 5))
            bar.update(run.step, step_loss, run.tokens / max(1e-9, time.perf_counter() - t0))
            if on_step:
                on_step(run.step, step_loss)
            # One small collective per step: the slowest process's clock (every process fits and ends the time
            # budget at the same step) and whether a stop was asked anywhere.
            elapsed, stopping = run.group.max([time.perf_counter() - t0, float(stop.is_set())])
            _apply_time_budget(run, recipe, elapsed, bar, log)
            if run.step % recipe.checkpoint_every == 0 and run.step < run.total and run.group.main:
                _checkpoint(run)
    finally:
        bar.close()
        if prev_handler is not None:
            signal.signal(signal.SIGINT, prev_handler)
    run.seconds = time.perf_counter() - t0


def _one_step(run: _Run, data: _Data, recipe: TrainRecipe, pad_id: int, dev) -> float:
    """One optimizer step over this step's batch -> its loss. This process takes its shard of the batch's
    rows (all of them when alone), accumulates gradients over micro-batches, and the gradients are summed
    across processes; the loss is normalized by the whole batch's completion tokens."""
    import torch

    epoch, bi = divmod(run.step, data.steps_per_epoch)
    plan = batch_plan(len(data.rows), data.rows_per_batch, epoch, recipe.seed)
    all_rows = [data.rows[i] for i in plan[bi]]
    n_label = sum(sum(1 for x in r.labels[1:] if x != -100) for r in all_rows)
    batch_rows = run.group.shard(all_rows)
    tokens = 0
    for g in run.optimizer.param_groups:
        g["lr"] = lr_at(run.step, run.total, recipe.train.learning_rate, recipe.warmup_ratio)
    step_loss = 0.0
    for i in range(0, len(batch_rows), recipe.rows_per_forward):
        mb = collate(batch_rows[i:i + recipe.rows_per_forward], pad_id)
        ids = torch.tensor(mb["input_ids"], device=dev)
        labels = torch.tensor(mb["labels"], device=dev)
        pos = torch.tensor(mb["position_ids"], device=dev)
        loss = completion_loss(run.model, ids, labels, pos) / max(1, n_label)
        if not loss.requires_grad:  # no completion token in this micro-batch
            continue
        loss.backward()
        step_loss += float(loss.detach())
        tokens += sum(r.n_tokens for r in batch_rows[i:i + recipe.rows_per_forward])
    step_loss, tokens = run.group.sum_gradients(run.trainable, [step_loss, float(tokens)])
    run.tokens += int(tokens)
    if recipe.grad_clip:
        torch.nn.utils.clip_grad_norm_(run.trainable, recipe.grad_clip)
    run.optimizer.step()
    run.optimizer.zero_grad(set_to_none=True)
    return step_loss


def _apply_time_budget(run: _Run, recipe: TrainRecipe, elapsed: float, bar: Progress,
                       log: Callable[[str], None]) -> None:
    """With max_minutes: after 3 steps fit the step count (and so the LR schedule) to the budget from the
    measured step time; stop at the budget."""
    if not recipe.max_minutes:
        return
    if run.step - run.start == 3:
        fit = run.start + int((recipe.max_minutes * 60 - elapsed) / (elapsed / 3)) + 3
        if fit < run.total:
            log(f"Time budget {recipe.max_minutes:g} min: {fit} steps instead of {run.total}")
            run.total = max(run.step, fit)
            bar.set_total(run.total)
    if elapsed > recipe.max_minutes * 60 and run.step < run.total:
        log(f"Time budget reached at step {run.step}/{run.total}")
        run.total = run.step


def _checkpoint(run: _Run) -> Path:
    return save_checkpoint(run.work, run.model, run.optimizer, run.step, run.run_key, run.losses)


def _stop_with_checkpoint(run: _Run) -> None:
    if not run.group.main:  # process 0 writes the checkpoint
        raise TrainingStopped(f"stopped at step {run.step}/{run.total}")
    ck = _checkpoint(run)
    raise TrainingStopped(f"stopped at step {run.step}/{run.total}; checkpoint kept in {ck}; "
                          f"run again with --resume to continue")


def _publish(registry: Registry, name: str, run: _Run, data: _Data, recipe: TrainRecipe, base_spec: str,
             base_sha: str, dmanifest: dict[str, Any], init_adapter: str | Path | None) -> AdapterManifest:
    """Save the adapter and register it as a candidate version."""
    final = run.work / "final"
    shutil.rmtree(final, ignore_errors=True)
    try:
        run.model.save_pretrained(str(final), safe_serialization=True)
    except OSError as exc:
        raise CopilotError(f"cannot save the adapter to {final}: {exc.strerror or exc}; registry unchanged") from None
    man = _manifest(name, run, data, recipe, base_spec, base_sha, dmanifest, init_adapter)
    return registry.publish(name, final, man)


def _manifest(name: str, run: _Run, data: _Data, recipe: TrainRecipe, base_spec: str, base_sha: str,
              dmanifest: dict[str, Any], init_adapter: str | Path | None) -> AdapterManifest:
    lora = run.model.peft_config["default"]
    losses, stats, seconds = run.losses, data.stats, run.seconds
    return AdapterManifest(
        name=name, version=0, base_model=str(base_spec), base_model_sha256=base_sha,
        dataset_fingerprint=str(dmanifest.get("fingerprint", "")),
        lora={"r": lora.r, "alpha": lora.lora_alpha, "dropout": lora.lora_dropout,
              "target_modules": sorted(lora.target_modules)},
        training={
            **recipe.to_dict(), "mode": run.mode, "mode_reason": run.why, "steps": run.step,
            "examples": stats.encoded, "packed_rows": len(data.rows), "dropped": stats.dropped,
            "fim_orders": ["psm", "spm"] if recipe.spm_share > 0 else ["psm"],
            "spm_header": recipe.spm_share > 0 and recipe.context,  # suffix-first rows opened with the header too
            "spm_examples": stats.spm, "context_examples": stats.context,
            "context_trimmed": stats.context_trimmed, "context_left_out": stats.context_left_out, "tokenizer_sha256": data.tok_sha, "loss_first": losses[0] if losses else None,
            "loss_last": losses[-1] if losses else None, "losses": losses[-200:],
            "tokens_per_s": round(run.tokens / seconds, 1) if seconds else None,
            "tokens": run.tokens, "train_seconds": round(seconds, 2), "processes": run.group.world,
            "start_step": run.start,
            "finished": now_iso(),
            "init_adapter": str(init_adapter) if init_adapter is not None else None,
        },
        prompt_format=data.fmt.family if data.fmt else "chat",
        weights_sha256="", created="", dataset_manifest=dmanifest,
    )
