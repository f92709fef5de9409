"""The inference engine: a base model plus optional LoRA adapters, FIM completion and explanations.

- Greedy and deterministic by default.
- One generation at a time (`Engine.lock`); `cancel` (a threading.Event) stops generation within one token.
- A small LRU of KV caches keyed by (adapter, document): the next request reuses the cached
  keys/values of its longest common token prefix, so typing re-reads only what changed.
- Early stopping while generating (all end/FIM tokens, end of line for mid-line cursors, too many
  lines), then the pure rules of `copilot.serve.postprocess` shape what the editor shows.

torch/transformers/peft are imported here (and in the trainer) only.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from copilot.core import paths
from copilot.core.settings import Settings, load_settings
from copilot.serve.base import BaseEngine
from copilot.serve.decode import greedy_decode
from copilot.prompts.formats import FimFormat, detect_fim, fim_format_for, stop_token_ids
from copilot.core.types import CopilotError, UserInputError

paths.set_offline_env()

import torch  # noqa: E402
from transformers.utils import logging as _hf_logging  # noqa: E402

_hf_logging.disable_progress_bar()
_hf_logging.set_verbosity_error()


@dataclass
class _KV:
    ids: list[int]  # tokens whose keys/values are in `cache`
    cache: object  # transformers DynamicCache


class Engine(BaseEngine):
    """The transformers backend (reference for training, evaluation and GPU). Load once, then call
    `complete` / `explain` / `explain_file` from any thread."""

    backend = "transformers"

    def __init__(self, model, tokenizer, *, model_name: str, model_path: Path | None, settings: Settings,
                 device: str = "cpu", max_caches: int = 4):
        self.model = model
        self.tokenizer = tokenizer
        self.model_name = model_name
        self.model_path = model_path
        self.settings = settings
        self.device = device
        self.lock = threading.RLock()
        self.fim: FimFormat | None = detect_fim(tokenizer)
        self.fim_family: str | None = self.fim.family if self.fim else None
        self._stop_ids = stop_token_ids(tokenizer, self.fim)
        self._stop_strings = tuple(self.fim.stop_tokens) if self.fim else ()
        self._adapters: dict[str, str] = {}  # key -> source path
        self._adapter_meta: dict[str, dict] = {}
        self._internal: dict[str, str] = {}  # key -> peft adapter name
        self._n_loaded = 0
        self._caches: OrderedDict[tuple, _KV] = OrderedDict()
        self._max_caches = max_caches
        self.stats = {"reused_tokens": 0, "prefilled_tokens": 0}
        self.model.eval()

    # ------------------------------------------------------------------ loading
    @classmethod
    def load(cls, model: str | Path | None = None, settings: Settings | None = None, device: str = "auto",
             progress=None, log: Callable[[str], None] | None = None) -> "Engine":
        from copilot.models.packaged import resolve_model
        from transformers import AutoModelForCausalLM, AutoTokenizer

        settings = settings or load_settings()
        spec = str(model or settings.model)
        folder = resolve_model(spec, progress=progress, log=log)
        from copilot.models.device import pick_device

        dev = pick_device(device if device != "auto" else settings.device)
        if settings.threads > 0:
            torch.set_num_threads(settings.threads)
        try:
            tok = AutoTokenizer.from_pretrained(folder)
            mdl = AutoModelForCausalLM.from_pretrained(
                folder, dtype=torch.float32 if dev == "cpu" else torch.bfloat16
            )
        except (OSError, ValueError, RuntimeError) as exc:
            from copilot.models import packaged as _models

            if spec in _models.PACKAGED:
                # A cache that passed the size check but does not load: rebuild once.
                if log:
                    log(f"The cached model '{spec}' failed to load ({exc.__class__.__name__}); rebuilding it.")
                import shutil

                shutil.rmtree(_models.converted_dir(spec), ignore_errors=True)
                folder = resolve_model(spec, progress=progress, log=log)
                tok = AutoTokenizer.from_pretrained(folder)
                mdl = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
            else:
                raise CopilotError(f"cannot load model from {folder}: {str(exc).splitlines()[0]}") from None
        mdl.to(dev)
        if tok.pad_token_id is None:
            tok.pad_token = tok.eos_token
        eng = cls(mdl, tok, model_name=spec, model_path=Path(folder), settings=settings, device=dev)
        if settings.adapter:
            eng.load_adapter(settings.adapter)
        return eng

    # ------------------------------------------------------------------ adapters
    def load_adapter(self, path_or_name: str, name: str | None = None) -> str:
        """Load a peft adapter (folder, or registry NAME[@VERSION]); returns the key to pass as `adapter=`."""
        src, meta, key = self._resolve_adapter(path_or_name, name)
        with self.lock:
            from peft import PeftModel

            self._n_loaded += 1
            internal = f"adapter_{self._n_loaded}"  # peft names stay unique so a new version can replace an old one
            try:
                if isinstance(self.model, PeftModel):
                    self.model.load_adapter(str(src), adapter_name=internal)
                else:
                    self.model = PeftModel.from_pretrained(self.model, str(src), adapter_name=internal)
            except (OSError, ValueError, RuntimeError, KeyError) as exc:
                raise CopilotError(f"cannot load adapter from {src}: {str(exc).splitlines()[0]}") from None
            self.model.eval()
            old = self._internal.get(key)
            self._internal[key] = internal
            if old is not None:
                self.model.set_adapter(internal)
                self.model.delete_adapter(old)
            self._adapters[key] = str(src)
            self._adapter_meta[key] = meta
            self._drop_caches(adapter=key)
        return key

    def unload_adapter(self, name: str) -> None:
        with self.lock:
            if name in self._adapters:
                internal = self._internal.pop(name)
                if self._internal:
                    self.model.set_adapter(next(iter(self._internal.values())))
                    self.model.delete_adapter(internal)
                else:
                    self.model = self.model.unload()  # back to the plain base model
                del self._adapters[name]
                self._adapter_meta.pop(name, None)
                self._drop_caches(adapter=name)

    @property
    def base_sha256(self) -> str | None:
        if self.model_path is None:
            return None
        from copilot.models.packaged import model_sha256

        return model_sha256(self.model_path)

    def _adapter_ctx(self, adapter: str | None):
        from contextlib import nullcontext

        if not self._adapters:
            if adapter:
                raise UserInputError(f"unknown adapter '{adapter}': none is loaded")
            return nullcontext()
        if adapter is None:
            return self.model.disable_adapter()
        if adapter not in self._adapters:
            raise UserInputError(f"unknown adapter '{adapter}': loaded adapters are {', '.join(self._adapters)}")
        self.model.set_adapter(self._internal[adapter])
        return nullcontext()

    # ------------------------------------------------------------------ caches
    def _drop_caches(self, adapter: str | None = None) -> None:
        for k in [k for k in self._caches if adapter is None or k[0] == adapter]:
            del self._caches[k]

    def _take_cache(self, key: tuple, ids: list[int]) -> tuple[object, int]:
        """A cache holding the longest usable common prefix of `ids`, and that prefix's length."""
        from transformers import DynamicCache

        entry = self._caches.pop(key, None)
        if entry is None:
            return DynamicCache(), 0
        n = 0
        limit = min(len(entry.ids), len(ids) - 1)  # always feed at least one token
        while n < limit and entry.ids[n] == ids[n]:
            n += 1
        if n == 0:
            return DynamicCache(), 0
        extra = len(entry.ids) - n
        if extra > 0:
            entry.cache.crop(-extra)  # transformers 5: a negative count removes that many tokens
        return entry.cache, n

    def _put_cache(self, key: tuple, ids: list[int], cache: object) -> None:
        self._caches[key] = _KV(ids, cache)
        self._caches.move_to_end(key)
        while len(self._caches) > self._max_caches:
            self._caches.popitem(last=False)

    # ------------------------------------------------------------------ generation
    def _generate(self, ids: list[int], *, max_new_tokens: int, cache_key: tuple | None,
                  should_stop: Callable[[list[int], str], bool] | None = None,
                  on_text: Callable[[str], None] | None = None, cancel: threading.Event | None = None,
                  repetition_penalty: float = 1.0, warm_until: int = 0,
                  keep_warming: Callable[[], bool] | None = None,
                  constraint: Callable[[list[int]], list[int] | None] | None = None) -> tuple[list[int], str]:
        """Greedy decoding with KV reuse. Returns (generated ids, stop reason).

        `warm_until`/`keep_warming` are accepted for the common interface and not used: this engine reads the
        new prompt tokens in one forward pass and stops only between passes."""
        if cache_key is not None:
            cache, reuse = self._take_cache(cache_key, ids)
        else:
            from transformers import DynamicCache

            cache, reuse = DynamicCache(), 0
        self.stats["reused_tokens"] += reuse
        self.stats["prefilled_tokens"] += len(ids) - reuse
        fed = list(ids[:reuse])
        logits = None

        def feed(tokens: list[int], step: int) -> bool:
            nonlocal cache, logits
            if cancel is not None and cancel.is_set():
                return False
            inp = torch.tensor([tokens], dtype=torch.long, device=self.device)
            res = self.model(input_ids=inp, past_key_values=cache, use_cache=True)
            cache, logits = res.past_key_values, res.logits[0, -1]
            fed.extend(tokens)
            return True

        def next_id(out: list[int], allowed) -> int:
            if allowed is not None:
                ids = torch.tensor(list(allowed), dtype=torch.long, device=logits.device)
                return int(ids[int(torch.argmax(logits[ids]))])
            if repetition_penalty != 1.0 and out:
                prev = torch.tensor(sorted(set(out)), device=logits.device)
                sel = logits[prev]
                logits[prev] = torch.where(sel > 0, sel / repetition_penalty, sel * repetition_penalty)
            return int(torch.argmax(logits))

        with torch.inference_mode():
            out, reason = greedy_decode(feed, next_id, lambda out: self.tokenizer.decode(out, skip_special_tokens=False),
                                        ids[reuse:], max_new_tokens=max_new_tokens, stop_ids=self._stop_ids,
                                        should_stop=should_stop, on_text=on_text, constraint=constraint)
        if cache_key is not None and reason != "cancelled":
            self._put_cache(cache_key, fed, cache)
        return out, reason

    def naive_complete(self, prefix: str, suffix: str, max_new_tokens: int | None = None) -> tuple[str, int]:
        """Baseline for benchmarks: plain `model.generate` on the full prompt, stopping only on end tokens."""
        fim = self.fim or fim_format_for(self.tokenizer, self.model_name)
        cs = self.settings.completion
        p, s = self._budget(prefix, suffix, cs.context_tokens, cs.suffix_share)
        enc = self.tokenizer(fim.build(p, s), return_tensors="pt", add_special_tokens=False).to(self.device)
        with self.lock, torch.inference_mode():
            out = self.model.generate(**enc, max_new_tokens=max_new_tokens or cs.max_new_tokens, do_sample=False,
                                      eos_token_id=self._stop_ids, pad_token_id=self.tokenizer.pad_token_id)
        gen = out[0, enc["input_ids"].shape[1]:].tolist()
        return self.tokenizer.decode(gen, skip_special_tokens=True), len(gen)


