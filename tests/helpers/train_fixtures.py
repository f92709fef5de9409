"""Small real pairs datasets for the trainer/evaluation tests (built from TrainingPair rows)."""

from __future__ import annotations

import json
from pathlib import Path

from copilot.core.types import TrainingPair

FUNCS = [
    ("add", "a, b", "return a + b"),
    ("sub", "a, b", "return a - b"),
    ("mul", "a, b", "return a * b"),
    ("neg", "x", "return -x"),
    ("double", "x", "return x * 2"),
    ("square", "x", "return x * x"),
    ("first", "xs", "return xs[0]"),
    ("last", "xs", "return xs[-1]"),
    ("size", "xs", "return len(xs)"),
    ("is_empty", "xs", "return len(xs) == 0"),
    ("rev", "s", "return s[::-1]"),
    ("upper", "s", "return s.upper()"),
]


def fim_pair(i: int, split: str = "train", language: str = "python") -> TrainingPair:
    name, args, body = FUNCS[i % len(FUNCS)]
    prefix = f"# module {i}\n\ndef {name}({args}):\n    "
    middle = body + "\n"
    suffix = f"\n\ndef main():\n    print({name})\n"
    return TrainingPair(
        kind="fim_file", prompt="", completion=middle, repo="demo", path=f"pkg/m{i}.py", commit=f"c{i:03d}",
        commit_time=1_700_000_000 + i, language=language, span_start=3, span_end=3,
        prefix=prefix, middle=middle, suffix=suffix, split=split, multiline=False,
    )


def explain_pair(i: int, split: str = "train") -> TrainingPair:
    name, args, body = FUNCS[i % len(FUNCS)]
    code = f"def {name}({args}):\n    {body}\n"
    from indexer.pairs import explain_prompt

    return TrainingPair(  # laid out as the indexer writes it
        kind="explain", prompt=explain_prompt(code.rstrip(), f"pkg/e{i}.py", "python", "function", name),
        completion=f"Computes {name} of {args}.", repo="demo", path=f"pkg/e{i}.py",
        commit=f"e{i:03d}", commit_time=1_700_000_000 + i, language="python", span_start=0, span_end=1,
        prefix="", middle="", suffix="", split=split, multiline=False,
    )


def write_dataset(out: Path, train: list[TrainingPair], test: list[TrainingPair], fingerprint: str = "fp-test",
                  extra: dict | None = None) -> Path:
    from datasets import Dataset, DatasetDict

    cols = list(TrainingPair.__dataclass_fields__)

    def make(rows):
        return Dataset.from_dict({c: [getattr(r, c) for r in rows] for c in cols})

    DatasetDict({"train": make(train), "test": make(test)}).save_to_disk(str(out))
    (out / "manifest.json").write_text(json.dumps({"fingerprint": fingerprint, "config_hash": "x", "repos": {},
                                                   "counts": {}, "filters": {}, "secrets": {}, "created": "now",
                                                   **(extra or {})}))
    return out


import pytest  # noqa: E402


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    from copilot.core.paths import set_offline_env
    from helpers.tiny import make_tiny_model

    set_offline_env()
    return make_tiny_model(tmp_path_factory.mktemp("tiny") / "qwen")


@pytest.fixture()
def home(tmp_path, monkeypatch) -> Path:
    """A private data root (registry, work dirs) for one test."""
    monkeypatch.setenv("COPILOT_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def save_tiny_adapter(model_dir: Path, out: Path, seed: int = 0) -> Path:
    """A real peft LoRA adapter for the tiny model, with non-zero B so it changes outputs."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32)
    model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"))
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.5)
    model.save_pretrained(str(out), safe_serialization=True)
    return out
