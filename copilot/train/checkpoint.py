"""Training checkpoints: adapter + optimizer + step + RNG in a work dir under the data root, written
atomically (temporary folder + rename; only the newest is kept), and the resume check that a checkpoint
belongs to the same dataset, base and recipe."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from copilot.adapters.registry import check_name
from copilot.core import paths
from copilot.core.types import CopilotError, UserInputError

CHECKPOINT_FILES = ("adapter_model.safetensors", "adapter_config.json", "optimizer.pt", "state.json")


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


def resume_or_reset(work: Path, resume: bool, run_key: dict[str, Any], model, optimizer,
                    log: Callable[[str], None], clear: bool = True) -> tuple[int, list[float]]:
    """-> (start step, losses so far). With `resume`, load the newest checkpoint of the same run (the step
    count may differ); otherwise start from step 0 in an emptied work dir (`clear=False`: leave the work dir
    to the process that owns it)."""
    start, losses = 0, []
    ck = latest_checkpoint(work) if resume else None
    if resume and ck is None:
        log(f"No checkpoint in {work}; starting from step 0")
    if ck is not None:
        saved = json.loads((ck / "state.json").read_text())["run"]
        if _without_total(saved) != _without_total(run_key):
            raise UserInputError(f"checkpoint {ck} belongs to a run with another dataset, base or recipe; "
                                 "start over without --resume")
        start, losses = load_checkpoint(ck, model, optimizer)
        log(f"Resuming from {ck.name} (step {start})")
    elif work.exists() and clear:
        shutil.rmtree(work, ignore_errors=True)
    if clear:
        work.mkdir(parents=True, exist_ok=True)
    return start, losses


def _without_total(run_key: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in run_key.items() if k != "total"}
