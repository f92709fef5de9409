"""The model side of training: the mode (QLoRA NF4 / LoRA bf16 / LoRA fp32) for a device, a memory check
before loading, loading the base, adding LoRA weights, the optimizer and the completion-only loss.

torch, transformers, peft and bitsandbytes are imported only inside the functions that need them.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from copilot.core.settings import TrainSettings
from copilot.core.types import CopilotError, UserInputError
from copilot.models.device import cpu_has_bf16


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


def check_memory(model_dir: Path, mode: str, device: str, seq_len: int, available: int | None = None,
                 share: int = 1) -> int:
    """Estimate bytes needed before loading; raise a clear error when it cannot fit (`share` training
    processes on this machine each need as much)."""
    import psutil

    params = count_params(model_dir)
    per_param = {"lora-fp32": 4.0, "lora-bf16": 2.0, "qlora-nf4": 0.6}[mode]
    if device != "cpu":
        return int(params * per_param)
    cfg = json.loads((model_dir / "config.json").read_text())
    vocab = int(cfg.get("vocab_size", 32000))
    # weights + fp32 logits and their gradient for one row + a fixed allowance for activations/runtime
    need = int(params * per_param * 1.1 + 3 * seq_len * vocab * 4 + 512 * 2**20) * max(1, share)
    avail = psutil.virtual_memory().available if available is None else available
    if need > avail:
        raise CopilotError(
            f"base model {model_dir.name} ({params / 1e9:.2f}B parameters) needs ~{need / 2**30:.1f} GiB to train "
            f"in {mode}" + (f" with {share} processes" if share > 1 else "")
            + f", but only {avail / 2**30:.1f} GiB of memory is available"
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
            kwargs["device_map"] = {"": torch.cuda.current_device()}  # this process's GPU under a launcher
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
    from peft import (
        LoraConfig,
        PeftModel,
        get_peft_model,
        prepare_model_for_kbit_training,
    )

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
