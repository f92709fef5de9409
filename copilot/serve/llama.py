"""The llama.cpp backend: the packaged GGUF served directly (no conversion), LoRA adapters as GGUF.

Why: on a 2-core CPU, prefill is compute-bound (~175 tokens/s), so a completion is fast only when
the prompt is not re-read on every keystroke. This backend keeps, per (adapter, document, order),
the tokens whose keys/values sit in llama.cpp's KV cache; the next request evaluates only the tokens
after the longest common prefix. With an adapter trained on suffix-first (SPM) prompts, typing only
appends to the prompt and nearly the whole cache survives (see copilot.serve.base.preferred_order).

- The live context holds one document's cache; switching documents saves the sequence's state into
  a small LRU (a few MB each for the 0.5B model) and restores the other's (copilot.serve.llama_kv).
- Adapters: peft folders from the registry, converted once to llama.cpp's LoRA GGUF
  (copilot.adapters.gguf_lora) and cached by content hash. By default (`adapter_merge`) the adapter is merged
  into the base (copilot.adapters.gguf_merge) and the engine loads that model: a runtime LoRA costs ~70% more
  per decoded token on 2 cores. Switching to another adapter (or the
  base) then reloads the model (~1-2 s, caches dropped); with adapter_merge = false switching is
  `llama_set_adapters_lora` on the one model.
- Greedy decoding (copilot.serve.decode), cancellation checked before every token, one generation at a
  time (`lock`).

`llama_cpp` (llama-cpp-python) is optional: `available()` says whether it imports; `load` raises
`BackendUnavailable` with the reason, and callers fall back to the transformers engine.
"""

from __future__ import annotations

import ctypes
import os
import threading
import time
from collections import OrderedDict
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

from copilot.adapters.gguf_files import NoGGUF, file_sha256, gguf_for
from copilot.core.settings import Settings, load_settings
from copilot.core.types import CopilotError, UserInputError
from copilot.prompts.formats import detect_fim, stop_token_ids
from copilot.serve.base import BaseEngine
from copilot.serve.decode import greedy_decode
from copilot.serve.llama_kv import LlamaKvCache
from copilot.serve.llama_tokenizer import LlamaTokenizer


class BackendUnavailable(CopilotError):
    """llama.cpp cannot serve this model here (not installed, or no GGUF for the model)."""


def available() -> tuple[bool, str]:
    """(True, version) when llama-cpp-python imports, else (False, why)."""
    if os.environ.get("COPILOT_DISABLE_LLAMA_CPP") == "1":
        return False, "disabled by COPILOT_DISABLE_LLAMA_CPP=1"
    try:
        import llama_cpp
    except Exception as exc:  # ImportError, or a broken shared library (OSError)
        return False, f"llama-cpp-python is not installed ({exc.__class__.__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"
    return True, getattr(llama_cpp, "__version__", "?")


class LlamaEngine(LlamaKvCache, BaseEngine):
    backend = "llama.cpp"

    def __init__(self, llm, *, model_name: str, gguf_path: Path, settings: Settings, max_caches: int = 8,
                 llama_kwargs: dict | None = None):
        import llama_cpp

        self._lc = llama_cpp
        self.llm = llm
        self.tokenizer = LlamaTokenizer(llm)
        self.model_name = model_name
        self.model_path = gguf_path
        self.settings = settings
        self.device = "cpu"
        self.lock = threading.RLock()
        self.fim = detect_fim(self.tokenizer)
        self.fim_family = self.fim.family if self.fim else None
        self._stop_ids = stop_token_ids(self.tokenizer, self.fim)
        self._stop_strings = tuple(self.fim.stop_tokens) if self.fim else ()
        self._adapters: dict[str, str] = {}
        self._adapter_meta: dict[str, dict] = {}
        self._lora: dict[str, object] = {}  # key -> llama_adapter_lora_p
        self._lora_files: dict[str, Path] = {}
        self._merged: dict[str, Path] = {}  # key -> merged GGUF (adapter_merge)
        self._loaded_path = gguf_path  # the GGUF the live model came from
        self._llama_kwargs = llama_kwargs or {}
        self._active: str | None = None  # adapter applied to the context now
        self._live_key: tuple | None = None  # whose tokens are in the context's KV cache
        self._live_ids: list[int] = []
        self._saved: OrderedDict = OrderedDict()  # key -> llama_kv._Saved
        self._max_caches = max_caches
        self._base_sha: str | None = None
        self.stats = {"reused_tokens": 0, "prefilled_tokens": 0}

    # ------------------------------------------------------------------ loading
    @classmethod
    def load(cls, model: str | Path | None = None, settings: Settings | None = None, device: str = "auto",
             progress=None, log: Callable[[str], None] | None = None, n_ctx: int = 4096) -> "LlamaEngine":
        ok, why = available()
        if not ok:
            raise BackendUnavailable(why)
        if device not in ("auto", "cpu"):
            raise BackendUnavailable(f"the llama.cpp backend here is built for CPU, not {device!r}")
        settings = settings or load_settings()
        spec = str(model or settings.model)
        try:
            path = gguf_for(spec, progress)
        except NoGGUF as exc:
            raise BackendUnavailable(str(exc)) from None
        import llama_cpp

        from copilot.core.paths import usable_cores

        threads = settings.threads if settings.threads > 0 else usable_cores()
        kwargs = dict(n_ctx=n_ctx, n_batch=512, n_threads=threads, n_threads_batch=threads, verbose=False)
        try:
            llm = llama_cpp.Llama(model_path=str(path), **kwargs)
        except (ValueError, RuntimeError, OSError) as exc:
            raise CopilotError(f"llama.cpp cannot load {path}: {str(exc).splitlines()[0]}") from None
        import logging

        # llama.cpp's own log (e.g. one line per LoRA tensor on adapter load) only with COPILOT_LLAMA_VERBOSE=1;
        # failures reach the user as our exceptions.
        if os.environ.get("COPILOT_LLAMA_VERBOSE") != "1":
            logging.getLogger("llama-cpp-python").setLevel(logging.CRITICAL + 1)
        eng = cls(llm, model_name=spec, gguf_path=path, settings=settings, llama_kwargs=kwargs)
        if settings.adapter:
            eng.load_adapter(settings.adapter)
        return eng

    @property
    def base_sha256(self) -> str | None:
        if self._base_sha is None:
            self._base_sha = file_sha256(self.model_path)
        return self._base_sha

    # ------------------------------------------------------------------ adapters
    def load_adapter(self, path_or_name: str, name: str | None = None) -> str:
        """A registry NAME[@VERSION] or a peft folder, converted to a LoRA GGUF (cached) and loaded: merged into
        the base (adapter_merge, cached too) or as a runtime LoRA."""
        from copilot.adapters.gguf_lora import cached_gguf_adapter

        src, meta, key = self._resolve_adapter(path_or_name, name)
        gguf_file = cached_gguf_adapter(src, self.model_path)
        merged = None
        if self.settings.adapter_merge:
            from copilot.adapters.gguf_merge import cached_merged

            merged = cached_merged(self.model_path, gguf_file)
        with self.lock:
            handle = None
            if merged is None:
                handle = self._lc.llama_adapter_lora_init(self.llm._model.model, str(gguf_file).encode("utf-8"))
                if not handle:
                    raise CopilotError(f"llama.cpp cannot load the converted adapter {gguf_file}")
            old = self._lora.pop(key, None)
            if handle is not None:
                self._lora[key] = handle
            if merged is not None:
                self._merged[key] = merged
            self._lora_files[key] = gguf_file
            self._adapters[key] = str(src)
            self._adapter_meta[key] = meta
            self._drop_caches(adapter=key)
            if self._active == key:
                self._active = object()  # a new version: re-apply (or load its merged model) on next use
            if old is not None:
                self._free(old)
        return key

    def unload_adapter(self, name: str) -> None:
        with self.lock:
            if name in self._adapters:
                if self._active == name:
                    self._apply(None)
                handle = self._lora.pop(name, None)
                if handle is not None:
                    self._free(handle)
                self._merged.pop(name, None)
                self._lora_files.pop(name, None)
                del self._adapters[name]
                self._adapter_meta.pop(name, None)
                self._drop_caches(adapter=name)

    def _free(self, handle) -> None:
        free = getattr(self._lc, "llama_adapter_lora_free", None)
        if free is not None:
            free(handle)

    @property
    def adapter_mode(self) -> str:
        return "merged" if self.settings.adapter_merge else "runtime LoRA"

    def _reload(self, path: Path) -> None:
        """Serve another GGUF (a merged adapter, or the base): all KV caches belong to the old one."""
        self._saved.clear()
        self._live_key, self._live_ids = None, []
        old, self.llm = self.llm, None
        old.close()
        try:
            self.llm = self._lc.Llama(model_path=str(path), **self._llama_kwargs)
        except (ValueError, RuntimeError, OSError) as exc:
            self.llm = self._lc.Llama(model_path=str(self._loaded_path), **self._llama_kwargs)
            raise CopilotError(f"llama.cpp cannot load {path}: {str(exc).splitlines()[0]}") from None
        self.tokenizer._llm = self.llm
        self._loaded_path = path

    def _apply(self, adapter: str | None) -> None:
        if self._active == adapter:
            return
        if self.settings.adapter_merge:
            path = self._merged[adapter] if adapter else self.model_path
            if path != self._loaded_path:
                self._reload(path)
            self._active = adapter
            return
        if adapter is None:
            self._lc.llama_set_adapters_lora(self.llm._ctx.ctx, None, 0, None)
        else:
            arr = (self._lc.llama_adapter_lora_p_ctypes * 1)(self._lora[adapter])
            scales = (ctypes.c_float * 1)(1.0)
            if self._lc.llama_set_adapters_lora(self.llm._ctx.ctx, arr, 1, scales):
                raise CopilotError(f"llama.cpp could not apply adapter '{adapter}'")
        self._active = adapter

    @contextmanager
    def _adapter_ctx(self, adapter: str | None):
        if adapter and adapter not in self._adapters:
            loaded = ", ".join(self._adapters) or "none is loaded"
            raise UserInputError(f"unknown adapter '{adapter}': loaded adapters are {loaded}")
        self._apply(adapter or None)
        yield

    # ------------------------------------------------------------------ generation
    def _logits(self):
        import numpy as np

        ptr = self._lc.llama_get_logits_ith(self.llm._ctx.ctx, -1)
        return np.ctypeslib.as_array(ptr, shape=(self.llm.n_vocab(),))

    def _generate(self, ids: list[int], *, max_new_tokens: int, cache_key: tuple | None,
                  should_stop: Callable[[list[int], str], bool] | None = None,
                  on_text: Callable[[str], None] | None = None, cancel: threading.Event | None = None,
                  repetition_penalty: float = 1.0, warm_until: int = 0,
                  keep_warming: Callable[[], bool] | None = None,
                  constraint: Callable[[list[int]], list[int] | None] | None = None) -> tuple[list[int], str]:
        """Greedy decoding (copilot.serve.decode) on the live KV cache of `cache_key`, reusing its common prefix."""
        t_start = time.perf_counter()
        n = self._reuse_prefix(cache_key, ids)
        t_prefilled = None

        def feed(tokens: list[int], step: int) -> bool:
            nonlocal t_prefilled
            if not self._prefill(tokens, cancel, warm_until if step == 0 else 0, keep_warming):
                return False
            if t_prefilled is None:
                t_prefilled = time.perf_counter()
            return True

        try:
            out, reason = greedy_decode(feed, lambda out, allowed: self._next_id(out, repetition_penalty, allowed),
                                        self.tokenizer.decode, ids[n:], max_new_tokens=max_new_tokens,
                                        stop_ids=self._stop_ids, should_stop=should_stop, on_text=on_text,
                                        constraint=constraint)
        except BaseException:
            self._forget_live()
            raise
        if cache_key is None:
            self._live_key, self._live_ids = None, []
        t_end = time.perf_counter()
        self.last_trace = {"reused": n, "prefilled": len(ids) - n, "generated": len(out), "reason": reason,
                           "prefill_ms": round(((t_prefilled or t_end) - t_start) * 1000),
                           "decode_ms": round((t_end - (t_prefilled or t_end)) * 1000)}
        return out, reason

    def _warm(self, ids: list[int], *, cache_key: tuple, cancel: threading.Event | None,
              keep_warming: Callable[[], bool] | None) -> int:
        """Read `ids` into `cache_key`'s cache after what it already holds (BaseEngine.warm)."""
        self._switch_to(cache_key)
        if self._live_ids[: len(ids)] == ids:
            return 0
        n = self._reuse_prefix(cache_key, ids)
        try:
            self._prefill(ids[n:], cancel, len(ids), keep_warming)
        except BaseException:
            self._forget_live()
            raise
        return len(ids) - n

    def _next_id(self, out: list[int], repetition_penalty: float, allowed=None) -> int:
        """The greedy choice from the last logits (among `allowed` when given), repeated tokens penalized (as
        transformers does)."""
        import numpy as np

        logits = self._logits()
        if allowed is not None:
            ids = np.asarray(allowed)
            return int(ids[int(np.argmax(logits[ids]))])
        if repetition_penalty != 1.0 and out:
            logits = logits.copy()
            prev = np.array(sorted(set(out)))
            sel = logits[prev]
            logits[prev] = np.where(sel > 0, sel / repetition_penalty, sel * repetition_penalty)
        return int(np.argmax(logits))

    def naive_complete(self, prefix: str, suffix: str, max_new_tokens: int | None = None) -> tuple[str, int]:
        """Baseline for benchmarks: the whole prompt evaluated from an empty cache, stopping only on end tokens."""
        from copilot.prompts.formats import fim_format_for

        fim = self.fim or fim_format_for(self.tokenizer, self.model_name)
        cs = self.settings.completion
        p, s = self._budget(prefix, suffix, cs.context_tokens, cs.suffix_share)
        ids = self.tokenizer.encode(fim.build(p, s))
        with self.lock, self._adapter_ctx(None):
            out, _ = self._generate(ids, max_new_tokens=max_new_tokens or cs.max_new_tokens, cache_key=None)
        return self.tokenizer.decode(out, skip_special_tokens=True), len(out)
