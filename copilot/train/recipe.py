"""What decides a training run (TrainRecipe, read from settings + a recipe TOML + flags), the learning-rate
schedule it describes, and what a run returns. Torch-free."""

from __future__ import annotations

import math
import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from copilot.core.settings import CompletionSettings, TrainSettings, _merge
from copilot.core.types import AdapterManifest, CopilotError, UserInputError


@dataclass
class TrainRecipe:
    """Everything that decides a training run. TrainSettings (config file/env/flags) plus run options;
    a recipe TOML (`--config`) may set any of these keys at top level or under [train]."""

    train: TrainSettings = field(default_factory=TrainSettings)
    spm_share: float = 0.5  # share of FIM pairs in suffix-prefix-middle order (llama.cpp KV reuse needs it)
    context: bool = True  # FIM prompts open with the pairs' stored repository context, as served; false: none
    epochs: float = 1.0
    max_steps: int = 0  # 0 = from epochs
    checkpoint_every: int = 50
    warmup_ratio: float = 0.05
    grad_clip: float = 1.0
    seed: int = 0
    rows_per_forward: int = 1  # micro-batch rows; gradient accumulation up to batch_tokens
    gradient_checkpointing: str = "auto"  # auto (GPU only) | on | off
    suffix_share: float = 0.25
    # Most tokens of a FIM row's prefix+suffix, the context coming on top, as the server sends them
    # (default: completion.context_tokens' default); 0 = all that max_seq_len leaves.
    code_tokens: int = field(default_factory=lambda: CompletionSettings().context_tokens)
    cpu_dtype: str = "auto"  # auto (bf16 where the CPU has native bf16 matmuls, else fp32) | fp32 | bf16
    max_minutes: float = 0.0  # time budget for the loop; 0 = none. The LR schedule is fitted to it after 3 steps.

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def recipe_toml(recipe: TrainRecipe) -> str:
    """The recipe as a TOML file that `load_recipe` reads back to an equal recipe (for launched processes)."""
    import json

    top = [f"{k} = {json.dumps(v)}" for k, v in recipe.to_dict().items() if k != "train"]
    train = [f"{k} = {json.dumps(v)}" for k, v in asdict(recipe.train).items()]
    return "\n".join(top + ["", "[train]"] + train) + "\n"


def load_recipe(path: str | Path | None, base: TrainSettings | None = None, **overrides: Any) -> TrainRecipe:
    recipe = TrainRecipe(train=base if base is not None else TrainSettings())
    if path:
        _merge_recipe_file(recipe, Path(path))
    _merge(recipe, {k: v for k, v in overrides.items() if v is not None}, "command line")
    _check_recipe(recipe)
    return recipe


def _merge_recipe_file(recipe: TrainRecipe, p: Path) -> None:
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


def _check_recipe(recipe: TrainRecipe) -> None:
    if recipe.cpu_dtype not in ("auto", "fp32", "bf16"):
        raise UserInputError(f"cpu_dtype must be auto, fp32 or bf16, got {recipe.cpu_dtype!r}")
    if not 0.0 <= recipe.spm_share <= 1.0:
        raise UserInputError(f"spm_share must be between 0 and 1, got {recipe.spm_share}")
    if recipe.train.quantize not in ("auto", "4bit", "none"):
        raise UserInputError(f"quantize must be auto, 4bit or none, got {recipe.train.quantize!r}")


def lr_at(step: int, total: int, peak: float, warmup_ratio: float) -> float:
    """Linear warmup then cosine decay to 10% of peak. `step` is 0-based."""
    warm = max(1, int(total * warmup_ratio))
    if step < warm:
        return peak * (step + 1) / warm
    prog = (step - warm) / max(1, total - warm)
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, prog))))


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
