"""Types shared by every part of the product (indexer, trainer, engine, server, CLI).

Standard library only: importing this module must never import torch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

# Languages we parse with tree-sitter. Keys are our canonical names.
Language = Literal["python", "javascript", "typescript", "tsx", "go", "java", "rust", "c", "cpp"]

PairKind = Literal["fim_file", "fim_history", "fim_typing", "explain"]  # FIM ones: indexer.pairs.FIM_KINDS
Split = Literal["train", "test"]


class CopilotError(Exception):
    """An error with a message meant for the user (printed as one line, no traceback)."""

    exit_code = 1


class UserInputError(CopilotError):
    """The user's input is wrong (missing file, bad position, unknown adapter...)."""

    exit_code = 2


@dataclass(frozen=True)
class Span:
    """A region of a source file. Lines and columns are 0-based; columns count characters."""

    start_byte: int
    end_byte: int
    start_line: int
    start_col: int
    end_line: int
    end_col: int


@dataclass(frozen=True)
class CodeUnit:
    """A syntactic unit found with tree-sitter: a function, method or class (or a smaller node)."""

    path: str
    language: str
    kind: str  # "function" | "method" | "class" | ...
    name: str
    span: Span
    text: str
    docstring: str | None = None  # docstring or leading comment, cleaned
    doc_span: Span | None = None  # where that docstring/comment sits in the file
    parent: str | None = None  # enclosing class name for methods

    @property
    def qualname(self) -> str:
        return f"{self.parent}.{self.name}" if self.parent else self.name


@dataclass(frozen=True)
class TrainingPair:
    """One training/eval example. `prompt`/`completion` are trl-compatible text columns;
    FIM kinds also keep the raw `prefix`/`middle`/`suffix` and the repository `context`."""

    kind: str  # PairKind
    prompt: str
    completion: str
    repo: str
    path: str
    commit: str
    commit_time: int  # unix seconds
    language: str
    span_start: int  # 0-based line of the middle / unit start
    span_end: int
    prefix: str = ""
    middle: str = ""
    suffix: str = ""
    split: str = "train"
    multiline: bool = False
    # FIM kinds: the repository context the server would have sent at this cursor, from the repository as it
    # was at the pair's commit (indexer.mine.context): a JSON list of {path, text, source}; "" = not mined
    # with context (datasets from before it; context_tokens_repo = 0); "[]" = none found.
    context: str = ""

    def to_row(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class DatasetManifest:
    """manifest.json written beside a pairs dataset."""

    fingerprint: str
    config_hash: str
    repos: dict[str, dict[str, Any]]  # repo path/url -> {"head": sha, "commits_mined": n, ...}
    counts: dict[str, Any]  # per kind / language / split
    filters: dict[str, int]  # filter name -> files/pairs removed
    secrets: dict[str, int]  # secret type -> count found (redacted or dropped)
    created: str
    tool_version: str = "0.1.0"
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class AdapterManifest:
    """manifest.json of one adapter version in the registry."""

    name: str
    version: int
    base_model: str
    base_model_sha256: str
    dataset_fingerprint: str
    lora: dict[str, Any]
    training: dict[str, Any]
    prompt_format: str  # FIM family, e.g. "qwen"; plus orders trained: see training["fim_orders"]
    weights_sha256: str
    created: str
    status: str = "candidate"  # candidate | active | retired
    metrics: dict[str, Any] = field(default_factory=dict)
    dataset_manifest: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class CompletionRequest:
    prefix: str
    suffix: str
    language: str | None = None
    path: str | None = None
    adapter: str | None = None  # adapter name (or path); None = base model
    max_new_tokens: int | None = None  # None = config default
    # Extra context snippets (path, text) from other open files, same language.
    context: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Completion:
    text: str  # what to insert at the cursor, post-processed
    raw: str  # what the model generated before post-processing
    stop_reason: str  # "eos" | "length" | "suffix" | "indent" | "line" | "brackets" | "cancelled" | "empty"
    model: str
    adapter: str | None
    prompt_tokens: int
    generated_tokens: int
    latency_ms: float
    # Characters after the cursor (on the cursor's line) that `text` replaces, e.g. an
    # auto-inserted closing bracket the completion already contains.
    replace_suffix_chars: int = 0
    # The text before the cursor the prompt backed over and the model reproduced first (token healing,
    # copilot.serve.heal); `text` starts after it.
    healed: str = ""


@dataclass(frozen=True)
class Explanation:
    path: str
    symbol: str | None  # None = whole-file overview
    text: str
    model: str
    adapter: str | None
    truncated: bool = False  # input was bounded (huge file)
    unquoted: int = 0  # code spans the model wrote naming something the code does not contain (backticks dropped)


@dataclass(frozen=True)
class FeedbackEvent:
    event: str  # "accepted" | "rejected"
    completion: str
    adapter: str | None
    adapter_version: int | None
    latency_ms: float | None
    language: str | None
    path: str | None
    time: float
