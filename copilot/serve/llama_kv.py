"""KV-cache bookkeeping of the llama.cpp engine: which tokens sit in the live context, the small LRU of
saved sequence states (one per adapter, document and FIM order), and reading prompt tokens into the
context in cancellable chunks.

The live context holds one key's cache; switching keys saves the sequence's state (a few MB for the 0.5B
model) and restores the other's. A request reuses the longest common token prefix with the live tokens.
"""

from __future__ import annotations

import ctypes
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable

from copilot.core.types import UserInputError


@dataclass
class _Saved:
    ids: list[int]
    state: bytes


class LlamaKvCache:
    """Mixed into LlamaEngine, which sets: llm, _lc (the llama_cpp module), _live_key, _live_ids,
    _saved (an OrderedDict of _Saved), _max_caches, stats."""

    llm: object
    _lc: object
    _live_key: tuple | None
    _live_ids: list[int]
    _saved: OrderedDict
    _max_caches: int
    stats: dict[str, int]
    settings: object

    @property
    def cache_reuse(self) -> int:
        """Smallest run of cached tokens worth shifting into place (settings.completion.cache_reuse; 0: the
        common prefix only, also where the model's cache cannot be shifted)."""
        n = int(getattr(self.settings.completion, "cache_reuse", 0))
        if n > 0 and self.__dict__.get("_can_shift") is None:
            lc = self._lc
            self._can_shift = bool(lc.llama_memory_can_shift(lc.llama_get_memory(self.llm._ctx.ctx)))
        return n if n > 0 and self._can_shift else 0

    PREFILL_CHUNK = 32  # tokens per llama_decode where a cancellation must stop the prefill quickly
    WARM_CHUNK = 128  # tokens per llama_decode in the part of the prompt the next keystroke will reuse

    def _drop_caches(self, adapter: str | None = None) -> None:
        for k in [k for k in self._saved if adapter is None or k[0] == adapter]:
            del self._saved[k]
        if self._live_key is not None and (adapter is None or self._live_key[0] == adapter):
            self._live_key, self._live_ids = None, []
            self._reset_context()

    def _reset_context(self) -> None:
        self.llm._ctx.kv_cache_clear()
        self.llm.n_tokens = 0

    def _save_live(self) -> None:
        if self._live_key is None or not self._live_ids:
            return
        lc, ctx = self._lc, self.llm._ctx.ctx
        size = lc.llama_state_seq_get_size(ctx, 0)
        buf = (ctypes.c_uint8 * size)()
        n = lc.llama_state_seq_get_data(ctx, buf, size, 0)
        self._saved[self._live_key] = _Saved(list(self._live_ids), bytes(buf[:n]))
        self._saved.move_to_end(self._live_key)
        while len(self._saved) > self._max_caches:
            self._saved.popitem(last=False)

    def _switch_to(self, key: tuple | None) -> None:
        """Make `key`'s cached tokens the live KV cache (or an empty cache for key None)."""
        if key is not None and key == self._live_key:
            return
        self._save_live()
        self._reset_context()
        self._live_key, self._live_ids = key, []
        saved = self._saved.pop(key, None) if key is not None else None
        if saved is not None:
            buf = (ctypes.c_uint8 * len(saved.state)).from_buffer_copy(saved.state)
            if self._lc.llama_state_seq_set_data(self.llm._ctx.ctx, buf, len(saved.state), 0):
                self._live_ids = saved.ids
                self.llm.n_tokens = len(saved.ids)
            else:
                self._reset_context()

    def _truncate_to(self, n: int) -> None:
        """Keep only the first `n` live tokens in the KV cache."""
        self.llm._ctx.kv_cache_seq_rm(-1, n, -1)
        del self._live_ids[n:]
        self.llm.n_tokens = n

    def _reuse_prefix(self, key: tuple | None, ids: list[int]) -> int:
        """Switch to `key`'s cache and keep its longest common prefix with `ids`, extended by shifted chunks
        (`_reuse_chunks`); returns how many leading prompt tokens the cache now holds (always below len(ids): at
        least one token is evaluated for fresh logits)."""
        self._switch_to(key)
        live = self._live_ids
        n, limit = 0, min(len(live), len(ids) - 1)
        while n < limit and live[n] == ids[n]:
            n += 1
        shifted = self._reuse_chunks(ids, n) if self.cache_reuse > 0 else n
        if shifted < len(self._live_ids):
            self._truncate_to(shifted)
        self.stats["reused_tokens"] += shifted
        self.stats["shifted_tokens"] = self.stats.get("shifted_tokens", 0) + shifted - n
        self.stats["prefilled_tokens"] += len(ids) - shifted
        return shifted

    def _reuse_chunks(self, ids: list[int], n: int) -> int:
        """After the common prefix `n`, keep runs of at least `cache_reuse` cached tokens that the new prompt
        repeats in the same order, shifting their keys/values to their new positions (llama.cpp's
        `llama_memory_seq_add` re-rotates them), and drop the cached tokens between them: the llama.cpp
        server's `--cache-reuse`. A cursor that moved down in the window then re-reads only the lines it moved
        over, not the whole suffix behind them. The shifted keys/values were computed after the old
        neighbours, so the result is close to, not exactly, a cold read. Returns the tokens the cache holds."""
        live = self._live_ids  # cache position i holds live[i] until it is shifted or dropped
        ctx = self.llm._ctx
        kept = live[:n]
        head_c = head_p = n
        end_p = len(ids) - 1  # the last prompt token is always evaluated
        while head_c < len(live) and head_p < end_p:
            m = 0
            while head_c + m < len(live) and head_p + m < end_p and live[head_c + m] == ids[head_p + m]:
                m += 1
            if m >= self.cache_reuse:
                if head_c > head_p:
                    ctx.kv_cache_seq_rm(0, head_p, head_c)
                    ctx.kv_cache_seq_shift(0, head_c, head_c + m, head_p - head_c)
                kept.extend(live[head_c:head_c + m])
                head_c, head_p = head_c + m, head_p + m
            else:
                head_c += 1
        if head_p > n:
            ctx.kv_cache_seq_rm(0, head_p, -1)
            self._live_ids = kept
            self.llm.n_tokens = head_p
        return head_p

    def _forget_live(self) -> None:
        """The live cache's state is unknown (an error mid-evaluation): never reuse it."""
        self._live_key, self._live_ids = None, []
        self._reset_context()

    def _eval(self, tokens: list[int]) -> None:
        """Evaluate tokens after the live prefix (raises on a context overflow)."""
        if self.llm.n_tokens + len(tokens) > self.llm.n_ctx():
            raise UserInputError(f"prompt of {self.llm.n_tokens + len(tokens)} tokens exceeds the context of {self.llm.n_ctx()}")
        self.llm.eval(tokens)
        self._live_ids.extend(tokens)

    def _prefill(self, tokens: list[int], cancel: threading.Event | None, warm_until: int = 0,
                 keep_warming: Callable[[], bool] | None = None) -> bool:
        """Evaluate `tokens` (the prompt after the reused cache) in chunks; False when cancelled.

        Prompt positions below `warm_until` are the part the next request for this document will share
        (everything before the cursor's line: typing changes only that line). A cancelled request (the next
        keystroke, or the client's $/cancelRequest) still reads that part while `keep_warming()` says nothing
        else waits for the model, so a cold prompt (seconds on 2 cores) is read once across keystrokes
        instead of 32 tokens per request with idle gaps between. The rest stops within PREFILL_CHUNK tokens."""
        i = 0
        while True:
            pos = self.llm.n_tokens
            warm = pos < warm_until
            if cancel is not None and cancel.is_set():
                if not (warm and keep_warming is not None and keep_warming()):
                    return False
            if i >= len(tokens):
                return True
            step = min(self.WARM_CHUNK, warm_until - pos) if warm else self.PREFILL_CHUNK
            self._eval(tokens[i:i + step])
            i += step
