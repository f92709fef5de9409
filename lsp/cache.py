"""Typed-ahead cache: reuse a suggestion while the user types its first characters.

When a completion `text` was shown at a cursor with `prefix` before it and `suffix` after it,
and the user then types `typed` (so the new prefix is `prefix + typed`, same suffix) with
`text.startswith(typed)`, the rest `text[len(typed):]` is still the model's answer: it is
served without a model call. The same cursor with the same text around it is a plain hit.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

# Only the text close to the cursor is compared: enough to be sure, cheap on huge files.
_WINDOW = 4096


@dataclass(frozen=True)
class Entry:
    prefix_tail: str  # the last _WINDOW characters of the prefix when the model was asked
    prefix_len: int
    suffix_head: str  # the first _WINDOW characters of the suffix
    text: str
    meta: Any = None  # what the caller wants back (adapter, latency, ...)


@dataclass(frozen=True)
class Hit:
    text: str  # what to insert now
    typed: str  # characters of the suggestion the user already typed
    entry: Entry


class TypedAheadCache:
    def __init__(self, per_document: int = 8, documents: int = 64) -> None:
        self.per_document = per_document
        self.documents = documents
        self._data: OrderedDict[str, list[Entry]] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, key: str, prefix: str, suffix: str, text: str, meta: Any = None) -> None:
        if not text:
            return
        e = Entry(prefix[-_WINDOW:], len(prefix), suffix[:_WINDOW], text, meta)
        with self._lock:
            entries = self._data.pop(key, [])
            entries = [x for x in entries if not (x.prefix_len == e.prefix_len and x.prefix_tail == e.prefix_tail)]
            entries.insert(0, e)
            self._data[key] = entries[: self.per_document]
            while len(self._data) > self.documents:
                self._data.popitem(last=False)

    def get(self, key: str, prefix: str, suffix: str) -> Hit | None:
        with self._lock:
            entries = list(self._data.get(key, ()))
        head = suffix[:_WINDOW]
        for e in entries:
            typed_len = len(prefix) - e.prefix_len
            if typed_len < 0 or typed_len >= len(e.text) or head != e.suffix_head:
                continue
            cut = len(prefix) - typed_len
            typed = prefix[cut:]
            if not e.text.startswith(typed):
                continue
            if prefix[max(0, cut - _WINDOW) : cut] != e.prefix_tail:
                continue
            return Hit(e.text[typed_len:], typed, e)
        return None

    def drop(self, key: str) -> None:
        with self._lock:
            self._data.pop(key, None)

    def __len__(self) -> int:
        with self._lock:
            return sum(len(v) for v in self._data.values())
