"""The mutable state of one indexing run (:class:`Run`): counters, dedup indexes, caches shared between the
history walk and the HEAD files, the new rows; with the filters every file version goes through."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from copilot.core.types import TrainingPair
from indexer.dataset import COLUMNS
from indexer.filters.content import (
    decode_utf8,
    is_binary,
    is_generated_text,
    is_minified,
)
from indexer.filters.dedup import FileNearDupIndex, NearDupIndex, normalized_hash
from indexer.filters.paths import (
    IgnoreRules,
    is_env_file,
    is_generated_path,
    is_ignored,
    is_lockfile,
    is_vendored,
)
from indexer.filters.secrets import (
    mask_emails,
    redact_secrets,
    scan_secrets,
    secret_fingerprints,
    trigger_kinds,
)
from indexer.git.blame import LineOwners
from indexer.languages import language_for_path
from indexer.mine.config import IndexConfig
from indexer.pairs import SourceText

BLOB_CACHE_BYTES = 32 << 20  # source bytes of HEAD blobs kept (with their syntax trees) from history to HEAD


@dataclass(frozen=True)
class Cleaned:
    """One file version through the content rules: its usable text, or why not."""

    text: str | None  # secrets redacted, emails masked; None: not usable
    reason: str | None = None
    triggers: frozenset[str] | None = None  # the secret rules' triggers in it (None: not scanned)
    secrets: frozenset[tuple[str, str]] = frozenset()  # fingerprints of the secrets found
    emails: int = 0  # addresses masked


def clean_version(data: bytes | None, config: IndexConfig,
                  previous: tuple[frozenset[str], list[tuple[int, int]]] | None = None) -> Cleaned:
    """The content rules every mined file version goes through (binary, encoding, generated, minified, secrets,
    emails), counting nothing: `Run.clean_text` counts, the repository context of pairs
    (indexer.mine.context) reads the same text. ``previous`` as in `Run.clean_text`."""
    if data is None:
        return Cleaned(None, "missing_object")
    if is_binary(data):
        return Cleaned(None, "binary")
    text = decode_utf8(data)
    if text is None:
        return Cleaned(None, "invalid_utf8")
    if is_generated_text(text):
        return Cleaned(None, "generated")
    if is_minified(text):
        return Cleaned(None, "minified")
    triggered = None
    if previous is not None:
        lines = text.split("\n")
        added = "\n".join("\n".join(lines[a:b + 1]) for a, b in previous[1]).lower()
        triggered = previous[0] | trigger_kinds(added)
    hits, triggers = scan_secrets(text, triggered=triggered)
    found: frozenset[tuple[str, str]] = frozenset()
    if hits:
        found = frozenset(secret_fingerprints(text, hits))
        if config.secrets == "drop":
            return Cleaned(None, "secret_dropped", triggers, found)
        text = redact_secrets(text, hits)
    emails = 0
    if config.mask_emails:
        text, emails = mask_emails(text)
    return Cleaned(text, None, triggers, found, emails)


def fim_key(prefix: str, middle: str, suffix: str) -> str:
    """The exact-duplicate key of a FIM pair (its middle with the nearest context)."""
    return normalized_hash(prefix[-400:] + "\0" + middle + "\0" + suffix[:200])


class Run:
    """Mutable state of one run: counters, dedup indexes, new rows."""

    def __init__(self, config: IndexConfig, hash_owner: dict[str, tuple[str, str]], pair_keys: set[str]):
        self.config = config
        self.filters: Counter[str] = Counter()  # HEAD files and pairs
        self.history_filters: Counter[str] = Counter()  # file versions from history
        self.secret_seen: set[tuple[str, str]] = set()  # (kind, value hash): each secret counted once
        self.emails = 0
        self.hash_owner = hash_owner  # normalized file hash -> (repo, path) of the HEAD file mined with it
        self.pair_keys = pair_keys
        # whole file text -> MinHash: a file added in history and unchanged since is hashed once, not again at HEAD
        self.file_minhash_cache: dict[str, Any] = {}
        self.file_neardup = FileNearDupIndex(threshold=config.near_dup_threshold,  # HEAD files, persisted
                                               cache=self.file_minhash_cache)
        self.history_neardup = NearDupIndex(threshold=config.near_dup_threshold,  # grouped by path
                                              cache=self.file_minhash_cache)
        self.minhash_cache: dict[str, Any] = {}  # middle text -> MinHash: pairs are hashed again at split
        self.middle_neardup = NearDupIndex(threshold=config.near_dup_threshold, cache=self.minhash_cache)
        self.rows: list[dict[str, Any]] = []
        self.bytes = 0
        self.files = 0
        # HEAD blobs met in history: their cleaned text (and parse) is reused when the HEAD file is mined.
        self.head_blobs: set[str] = set()
        self.blob_cache: dict[tuple[str, str], list[Any]] = {}  # (sha, language) -> [bytes, text, reason, emails, parsed]
        self.blob_cache_bytes = 0
        # path -> (blob, language, source, tree) of its last parsed version in history: the next version of the
        # file is parsed incrementally from it (tree-sitter reuses the subtrees its diff left untouched)
        self.last_parse: dict[str, tuple[str, str, SourceText, Any]] = {}
        self.last_parse_bytes = 0
        # path -> (blob, secret triggers) of its last cleaned version: the next version is searched for the
        # triggers of this one and of its added lines only
        self.triggers: dict[str, tuple[str, frozenset[str]]] = {}
        self.last_triggers: frozenset[str] | None = None
        self.line_owners: dict[str, LineOwners] = {}  # repo key -> lines' commits from the walk (instead of blame)
        self.blamed = 0  # files dated line by line with git blame (the walk could not say)

    # -- filters

    def path_reason(self, path: str, rules: IgnoreRules, linguist) -> str | None:
        if is_env_file(path):
            return "env_file"
        if is_lockfile(path):
            return "generated"
        lang = language_for_path(path)
        if lang is None:
            return "not_source"
        if lang not in self.config.languages:
            return "language_not_selected"
        if is_ignored(path, rules):
            return "ignored"
        if is_vendored(path):
            return "vendored"
        if is_generated_path(path, linguist):
            return "generated"
        return None

    def count(self, reason: str) -> None:
        if reason != "not_source":
            self.filters[reason] += 1

    def start_repo(self, head_blobs: set[str]) -> None:
        """Before a repository's history: the HEAD blobs whose cleaned text is kept for its HEAD files."""
        self.head_blobs = head_blobs
        self.blob_cache.clear()
        self.blob_cache_bytes = 0

    def end_repo(self) -> None:
        self.blob_cache.clear()
        self.blob_cache_bytes = 0
        self.head_blobs = set()

    def forget_repo(self, key: str) -> None:
        """A repository mined again from scratch: its files' content hashes and signatures go."""
        for h in [h for h, (k, _) in self.hash_owner.items() if k == key]:
            del self.hash_owner[h]
        for name in [name for name in self.file_neardup.keys() if name.split("\0", 1)[0] == key]:
            self.file_neardup.remove(name)

    def clean_text(self, data: bytes | None, key: tuple[str, str] | None = None,
                   previous: tuple[frozenset[str], list[tuple[int, int]]] | None = None
                   ) -> tuple[str | None, str | None]:
        """(text, None) for a usable file version (secrets redacted, emails masked), else (None, reason).
        With ``key`` (blob sha, language) of a HEAD blob, the result is kept for the HEAD file (``cached``).
        ``previous``: the secret triggers of the version this one was diffed against and the line ranges added
        since (see ``scan_secrets``). ``last_triggers`` is set to this version's triggers (None: not scanned)."""
        emails = self.emails
        text, reason = self._clean_text(data, previous)
        if (key is not None and data is not None and key[0] in self.head_blobs
                and self.blob_cache_bytes + len(data) <= BLOB_CACHE_BYTES):
            self.blob_cache[key] = [len(data), text, reason, self.emails - emails, None]
            self.blob_cache_bytes += len(data)
        return text, reason

    def cached(self, key: tuple[str, str]) -> list[Any] | None:
        """The clean result kept for a HEAD blob (counted again, as if read and cleaned again), or None."""
        entry = self.blob_cache.pop(key, None)
        if entry is not None:
            self.blob_cache_bytes -= entry[0]
            self.bytes += entry[0]
            self.emails += entry[3]
        return entry

    def _clean_text(self, data: bytes | None, previous=None) -> tuple[str | None, str | None]:
        cleaned = clean_version(data, self.config, previous)
        self.last_triggers = cleaned.triggers
        if cleaned.secrets:
            self.secret_seen |= cleaned.secrets
        self.emails += cleaned.emails
        return cleaned.text, cleaned.reason

    # -- pairs

    def add_fim(self, pair: TrainingPair) -> bool:
        key = fim_key(pair.prefix, pair.middle, pair.suffix)
        if key in self.pair_keys:
            self.filters["duplicate_pair"] += 1
            return False
        if self.middle_neardup.check_and_add(pair.middle):
            self.filters["near_duplicate_pair"] += 1
            return False
        self.pair_keys.add(key)
        self.rows.append(row_of(pair))
        return True


_FIELDS = COLUMNS


def row_of(pair: TrainingPair) -> dict[str, Any]:
    return {f: getattr(pair, f) for f in _FIELDS}  # dataclasses.asdict deep-copies: 10x slower

