"""What the server and its features share: the client's settings and the record of a shown completion.

Features import this (and `lsp.suggest`), the server imports the features: no feature imports the server.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass
class LspConfig:
    """What the client may set via initializationOptions / workspace/didChangeConfiguration."""

    model: str | None = None  # None = settings.model (or --model)
    adapter: str | None = None  # None = workspace mapping / settings.adapter; "" = base model
    max_tokens: int | None = None  # None = settings.completion.max_new_tokens
    debounce_ms: int = 75  # a hint for the client; the server does not sleep
    enabled: bool = True
    languages: dict[str, bool] = field(default_factory=dict)  # languageId -> enabled; "*" = default
    other_files: bool = True  # snippets from other open documents
    feedback: bool = True  # record shown/accepted suggestions (metadata; accepted text) for `copilot stats`

    def language_enabled(self, language_id: str | None) -> bool:
        if not self.enabled:
            return False
        if language_id and language_id in self.languages:
            return bool(self.languages[language_id])
        return bool(self.languages.get("*", True))


@dataclass
class Served:
    """A completion we showed, kept briefly so accept/reject feedback can be logged."""

    id: str
    text: str
    adapter: str | None
    adapter_version: int | None
    latency_ms: float
    language: str | None
    path: str | None
    from_cache: bool
    replace_suffix_chars: int = 0
    time: float = field(default_factory=time.time)
