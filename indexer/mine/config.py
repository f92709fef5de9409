"""What one indexing run is asked to do (:class:`IndexConfig`), how it reports progress (:class:`Reporter`) and
what it answers (:class:`IndexResult`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from copilot.core.files import sha256_json
from indexer.languages import SUPPORTED_LANGUAGES
from indexer.pairs import PairConfig


@dataclass(frozen=True)
class IndexConfig:
    languages: tuple[str, ...] = SUPPORTED_LANGUAGES
    max_file_bytes: int = 1024 * 1024
    pairs: PairConfig = field(default_factory=PairConfig)
    history: bool = True
    explain: bool = True
    secrets: str = "redact"  # "redact": replace with <SECRET>; "drop": skip the whole file version
    mask_emails: bool = True
    near_dup_threshold: float = 0.8
    test_fraction: float = 0.1  # newest share of commits that forms the test split ...
    test_commits: int | None = None  # ... or the newest N commits ...
    test_days: float | None = None  # ... or the commits of the last D days

    def config_hash(self) -> str:
        # every field is plain JSON (tuples become lists): the same digest as before sha256_json existed
        # knobs added later count only when changed: a dataset mined before them is still the same dataset
        # (its next incremental run adds typing points and repository context for what changed)
        data = asdict(self)
        for name, default in _LATER_PAIR_KNOBS.items():
            if data["pairs"][name] == default:
                del data["pairs"][name]
        return sha256_json(data, 16)


_LATER_PAIR_KNOBS = {f.name: f.default for f in fields(PairConfig)
                     if f.name in ("lines_per_typing", "max_typing_per_file", "context_tokens_repo")}


class Reporter:
    """Progress hooks; the CLI draws them with rich. The default does nothing."""

    def start(self, task: str, total: int | None, description: str = "") -> None: ...

    def advance(self, task: str, n: int = 1) -> None: ...

    def note(self, message: str) -> None: ...


@dataclass
class IndexResult:
    out: Path
    manifest: dict[str, Any]
    incremental: bool
    new_pairs: int
    bytes_mined: int
    files_mined: int
    commits_mined: int
    seconds: float
    timings: dict[str, float] = field(default_factory=dict)  # open / mine / split / write seconds
