"""What every inference backend shares: prompt budgeting, FIM order choice, early stopping,
post-processing, explanations. Backends (copilot.serve.hf: transformers; copilot.serve.llama: llama.cpp)
supply tokenization, adapters and `_generate` (KV reuse around the shared greedy loop of copilot.serve.decode).
Which sections an explanation covers is planned in copilot.serve.explain.

No torch here: the llama.cpp backend must not pay for importing it.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from copilot.core.settings import Settings
from copilot.serve.explain import explain_sections, later_sections
from copilot.serve.explain_end import SentenceEnd, code_names, code_spans, unquote_unknown
from copilot.serve.heal import Constraint, heal_index_for, split_tail
from copilot.serve.postprocess import finish_completion, generation_stop_rule, wants_multiline
from copilot.prompts.formats import FimFormat, explain_prompt, fim_format_for
from copilot.core.types import Completion, Explanation


@dataclass(frozen=True)
class _Prompt:
    order: str
    ids: list[int]
    warm_until: int  # leading tokens the next keystroke's prompt will share
    strip_ws: str  # indentation left out of the prompt, for the model to write
    tail: str  # the partial word backed over (token healing)


class BaseEngine:
    """Subclasses set: tokenizer (encode/decode like transformers), fim, model_name, settings, lock,
    _stop_strings, _adapters, _adapter_meta; and implement _adapter_ctx, _generate, load_adapter."""

    backend = "?"
    tokenizer: object
    fim: FimFormat | None
    model_name: str
    settings: Settings
    lock: threading.RLock
    _stop_strings: tuple[str, ...] = ()
    _adapters: dict[str, str]
    _adapter_meta: dict[str, dict]

    # ------------------------------------------------------------------ adapters (shared bookkeeping)
    @property
    def adapters(self) -> list[str]:
        return list(self._adapters)

    adapter_mode = "runtime LoRA"  # how adapters are applied (the llama.cpp engine may merge them)
    supports_healing = True  # the engine can constrain the first tokens (copilot.serve.heal)

    def _resolve_adapter(self, path_or_name: str, name: str | None) -> tuple[Path, dict, str]:
        """(folder, verified manifest, key) for a peft folder or a registry NAME[@VERSION], checked
        against this engine's base model (sha256 and name)."""
        from copilot.adapters import registry

        src = Path(path_or_name).expanduser()
        if src.is_dir():
            meta = registry.verify_adapter(src, base_model_sha256=self.base_sha256, base_name=self.model_name) or {}
            return src, meta, name or src.name
        src = registry.resolve_adapter(path_or_name, base_fingerprint=self.base_sha256, base_name=self.model_name)
        return src, registry.verify_adapter(src) or {}, name or path_or_name.split("@")[0]

    def adapter_source(self, name: str) -> str | None:
        return self._adapters.get(name)

    def adapter_version(self, name: str) -> int | None:
        """The registry version of a loaded adapter (None for a bare folder)."""
        return self._adapter_meta.get(name, {}).get("version")

    def trained_orders(self, adapter: str | None) -> tuple[str, ...]:
        """FIM orders the adapter was trained on (the base model: prefix-suffix-middle only)."""
        if not adapter:
            return ("psm",)
        orders = self._adapter_meta.get(adapter, {}).get("training", {}).get("fim_orders") or ["psm"]
        return tuple(orders)

    def preferred_order(self, adapter: str | None) -> str:
        """settings.completion.order, or with "auto": suffix-first when the adapter learned it (typing then
        only appends to the prompt, so the KV cache of the previous keystroke stays valid)."""
        order = getattr(self.settings.completion, "order", "auto")
        if order in ("psm", "spm"):
            return order
        if "spm" not in self.trained_orders(adapter):
            return "psm"
        return "psm" if self.spm_costs_quality(adapter) else "spm"

    def spm_header(self, adapter: str | None) -> bool:
        """Whether the adapter learned suffix-first prompts that open with the repository header (adapters
        trained since it was added; older ones learned that order bare, and the base model never learned it)."""
        return bool(adapter) and bool(self._adapter_meta.get(adapter, {}).get("training", {}).get("spm_header"))

    SPM_TOLERANCE = 2.0  # edit-similarity points suffix-first may lose before "auto" prefers quality

    def spm_costs_quality(self, adapter: str | None) -> bool:
        """True when the adapter's recorded evals (`copilot eval --order psm|spm`, stored in its manifest)
        show suffix-first completions clearly less accurate than prefix-suffix-middle ones on the same
        test split and backend. No such pair of evals: False (trust the training)."""
        metrics = self._adapter_meta.get(adapter or "", {}).get("metrics") or {}
        evals: dict[tuple, dict[str, float]] = {}
        for ev in metrics.values():
            if not isinstance(ev, dict) or ev.get("order") not in ("psm", "spm"):
                continue
            fim = (ev.get("adapter") or {}).get("fim") or {}
            if "edit_sim" in fim:
                fp = str(ev.get("test_fingerprint", ""))
                kinds = fp.split("-", 1)[1] if "-" in fp else ""  # the hash before it differs per order
                key = (ev.get("backend"), ev.get("dataset_fingerprint"), kinds, ev.get("n"), ev.get("context", "none"))
                evals.setdefault(key, {})[ev["order"]] = float(fim["edit_sim"])
        return any(len(v) == 2 and v["spm"] < v["psm"] - self.SPM_TOLERANCE for v in evals.values())

    def _adapter_ctx(self, adapter: str | None):  # pragma: no cover - abstract
        raise NotImplementedError

    def _generate(self, ids: list[int], *, max_new_tokens: int, cache_key: tuple | None,
                  should_stop: Callable[[list[int], str], bool] | None = None,
                  on_text: Callable[[str], None] | None = None, cancel: threading.Event | None = None,
                  repetition_penalty: float = 1.0, warm_until: int = 0,
                  keep_warming: Callable[[], bool] | None = None,
                  constraint: Callable[[list[int]], list[int] | None] | None = None) -> tuple[list[int], str]:  # pragma: no cover - abstract
        raise NotImplementedError

    # ------------------------------------------------------------------ completion
    ANCHOR_FILL = 0.75  # share of the prefix budget a fresh window uses (the rest is room for typing)
    MAX_ANCHORS = 64

    def _budget(self, prefix: str, suffix: str, budget: int, suffix_share: float,
                doc: str | None = None) -> tuple[str, str]:
        """Keep the end of the prefix and the start of the suffix within a token budget, at line boundaries.

        With `doc` (the document's path, as the server passes it), the prefix window's start is sticky:
        a window that ends at the cursor would slide with every typed character, and a changed start
        invalidates the KV cache behind it (in suffix-first order, everything after the suffix). So a
        fresh window fills only ANCHOR_FILL of the budget and keeps its start while the text above it
        is unchanged and the window still fits; typing re-reads just the new tokens, and the start jumps
        (one full re-read) after about a quarter of the budget has been typed."""
        tok = self.tokenizer
        s_budget = int(budget * suffix_share)
        s_ids = tok.encode(suffix, add_special_tokens=False)
        if len(s_ids) > s_budget:
            suffix = tok.decode(s_ids[:s_budget])
            if "\n" in suffix:
                suffix = suffix[: suffix.rfind("\n") + 1]
        p_budget = budget - min(len(s_ids), s_budget)
        anchors = self.__dict__.setdefault("_anchors", {})
        if doc is not None and doc in anchors:
            off, head = anchors[doc]
            if off <= len(prefix) and prefix.startswith(head, off):
                window = prefix[off:]
                if len(tok.encode(window, add_special_tokens=False)) <= p_budget:
                    return window, suffix
        p_ids = tok.encode(prefix, add_special_tokens=False)
        if len(p_ids) <= p_budget:
            anchors.pop(doc, None)
            return prefix, suffix
        keep = max(1, int(p_budget * self.ANCHOR_FILL)) if doc is not None else p_budget
        cut = tok.decode(p_ids[-keep:])
        nl = cut.find("\n")
        window = cut[nl + 1:] if 0 <= nl < len(cut) - 1 else cut
        if doc is not None and prefix.endswith(window):
            off = len(prefix) - len(window)
            anchors.pop(doc, None)
            anchors[doc] = (off, prefix[off: off + 64])
            while len(anchors) > self.MAX_ANCHORS:
                anchors.pop(next(iter(anchors)))
        return window, suffix

    def _stable_tokens(self, fim, prompt: str, p_prompt: str, suffix: str, order: str, path, ctx,
                       spm_header: bool = False) -> int:
        """How many leading prompt tokens the next keystroke's prompt will very likely share: everything before
        the cursor's line (typing edits only that line). Two tokens of margin: a token may span the cut."""
        line_start = p_prompt[: p_prompt.rfind("\n") + 1]
        other = fim.build(line_start + "\x00", suffix, order=order, path=path, context=ctx,
                          spm_header=spm_header)  # differs from here on
        common = os.path.commonprefix([prompt, other])
        return max(0, len(self.tokenizer.encode(common, add_special_tokens=False)) - 2)

    def _prompt(self, prefix: str, suffix: str, adapter: str | None, path: str | None, context, order: str | None) -> _Prompt:
        """The FIM prompt at a cursor, as `complete` sends it: budgeted window, indentation left to the model,
        the partial word backed over (token healing), other files' snippets; and how many of its tokens the
        next keystroke's prompt will share."""
        order = order or self.preferred_order(adapter)
        fim = self.fim or fim_format_for(self.tokenizer, self.model_name)
        cs = self.settings.completion
        p, s = self._budget(prefix, suffix, cs.context_tokens, cs.suffix_share, doc=path)
        # A prompt ending in indentation makes the model emit one level too many: let it write the indentation.
        last = p.rsplit("\n", 1)[-1]
        strip_ws = last if (last and not last.strip()) else ""
        p_prompt = p[: len(p) - len(strip_ws)] if strip_ws else p
        tail = ""
        if not strip_ws and getattr(cs, "token_healing", True) and self.supports_healing:
            p_prompt, tail = split_tail(p_prompt)
        ctx = tuple(context)[:4]
        spm_header = self.spm_header(adapter)
        prompt = fim.build(p_prompt, s, order=order, path=path if ctx else None, context=ctx, spm_header=spm_header)
        ids = self.tokenizer.encode(prompt, add_special_tokens=False)
        warm_until = self._stable_tokens(fim, prompt, p_prompt, s, order, path if ctx else None, ctx, spm_header)
        return _Prompt(order, ids, warm_until, strip_ws, tail)

    def warm(self, prefix: str, suffix: str, adapter: str | None = None, *, path: str | None = None, context=(),
             order: str | None = None, cancel: threading.Event | None = None,
             keep_warming: Callable[[], bool] | None = None) -> int:
        """Read the part of the prompt at this cursor that typing there will not change (everything before the
        cursor's line) into the document's cache, before the first keystroke: the editor says where the cursor
        went, and the first pause there no longer pays for a cold read. Returns the tokens read (0: already
        cached, or an engine without a reusable cache)."""
        pr = self._prompt(prefix, suffix, adapter, path, context, order)
        if pr.warm_until < 2:
            return 0
        with self.lock, self._adapter_ctx(adapter):
            return self._warm(pr.ids[: pr.warm_until], cache_key=(adapter, path or "", pr.order), cancel=cancel,
                              keep_warming=keep_warming)

    def _warm(self, ids: list[int], *, cache_key: tuple, cancel: threading.Event | None,
              keep_warming: Callable[[], bool] | None) -> int:
        return 0  # engines whose cache can be read ahead override this (copilot.serve.llama)

    def complete(self, prefix: str, suffix: str, language: str | None = None, adapter: str | None = None, *,
                 path: str | None = None, context=(), max_new_tokens: int | None = None,
                 multiline: bool | None = None, cancel: threading.Event | None = None,
                 order: str | None = None, keep_warming: Callable[[], bool] | None = None) -> Completion:
        """Complete at the cursor between `prefix` and `suffix`.

        `cancel` stops the request; with `keep_warming` (the server passes "nothing else waits for the model"),
        a cancelled request still reads the prompt up to the cursor's line into the document's cache first,
        because the next keystroke's prompt starts with the same tokens (see LlamaEngine._prefill)."""
        t0 = time.perf_counter()
        cs = self.settings.completion
        single = (not multiline) if multiline is not None else not wants_multiline(prefix, suffix)
        max_new = max_new_tokens or cs.max_new_tokens
        pr = self._prompt(prefix, suffix, adapter, path, context, order)
        order, ids, warm_until, strip_ws, tail = pr.order, pr.ids, pr.warm_until, pr.strip_ws, pr.tail
        max_lines = cs.max_lines
        should_stop = generation_stop_rule(prefix, suffix, strip_ws, single=single, max_lines=max_lines)
        constraint = None
        if tail:  # the first tokens reproduce the tail; rules and post-processing see only what follows it
            constraint = Constraint(heal_index_for(self.tokenizer), tail)
            rule = should_stop
            max_new += len(self.tokenizer.encode(tail, add_special_tokens=False))

            def should_stop(ids: list[int], text: str) -> bool:
                return len(text) > len(tail) and rule(ids, text[len(tail):])
        with self.lock:
            ctx_mgr = self._adapter_ctx(adapter)
            with ctx_mgr:
                out, reason = self._generate(
                    ids, max_new_tokens=max_new, cache_key=(adapter, path or "", order), should_stop=should_stop,
                    cancel=cancel, warm_until=warm_until, keep_warming=keep_warming, constraint=constraint,
                )
        raw = self.tokenizer.decode(out, skip_special_tokens=False)
        if tail:
            raw = raw[len(tail):] if raw.startswith(tail) else ""
            if not raw and reason != "cancelled":
                reason = "heal"
        text, why = finish_completion(raw, reason, prefix, suffix, strip_ws, single=single, max_lines=max_lines,
                                      stop_strings=self._stop_strings)
        return Completion(
            text=text, raw=raw, stop_reason=why, model=self.model_name, adapter=adapter,
            prompt_tokens=len(ids), generated_tokens=len(out), latency_ms=(time.perf_counter() - t0) * 1000,
            healed=tail,
        )

    # ------------------------------------------------------------------ explanations
    def explain(self, code: str, path: str, adapter: str | None = None, *, symbol: str | None = None,
                language: str | None = None, on_text: Callable[[str], None] | None = None,
                cancel: threading.Event | None = None, truncated: bool = False,
                max_new_tokens: int | None = None, others: tuple[str, ...] = ()) -> Explanation:
        """Explain `code` (a symbol, or a whole file when `symbol` is None; `others`: the file's symbols explained
        after its overview, which the overview then does not repeat)."""
        es = self.settings.explain
        if len(code) > es.max_input_chars:
            code = code[: es.max_input_chars]
            truncated = True
        if language is None:
            from indexer.languages import language_for_path

            language = language_for_path(path)
        prompt = explain_prompt(self.tokenizer, code, path, language, symbol, truncated, others)
        ids = self.tokenizer.encode(prompt, add_special_tokens=False)
        budget = max_new_tokens or es.max_new_tokens
        end = SentenceEnd(budget, lambda t: self.tokenizer.decode([t], skip_special_tokens=True))
        known = code_names(code, path)
        push, flush = SentenceEnd.stream(on_text, fix=lambda t: unquote_unknown(t, known))
        with self.lock:
            with self._adapter_ctx(adapter):
                out, reason = self._generate(ids, max_new_tokens=budget, cache_key=None, on_text=push, cancel=cancel,
                                             repetition_penalty=1.1, should_stop=end.should_stop)
        raw = self.tokenizer.decode(out, skip_special_tokens=True)
        text = end.finish(raw.lstrip(), reason) if reason != "cancelled" else raw.strip()
        fixed = unquote_unknown(text, known)  # names come from the code
        unquoted, text = len(code_spans(text)) - len(code_spans(fixed)), fixed
        flush(raw[: len(raw) - len(raw.lstrip())] + text)  # the stream ends exactly where the text does
        return Explanation(path=path, symbol=symbol, text=text, model=self.model_name, adapter=adapter,
                           truncated=truncated, unquoted=unquoted)

    def explain_file(self, source: str, path: str, adapter: str | None = None, *, symbol: str | None = None,
                     on_text: Callable[[str], None] | None = None, on_section: Callable[[str | None], None] | None = None,
                     cancel: threading.Event | None = None) -> list[Explanation]:
        """An overview of the file, then each top-level function/class (or just `symbol`)."""
        results: list[Explanation] = []
        sections = list(explain_sections(source, path, self.settings, symbol=symbol))
        others = later_sections(sections)
        for sym, code, lang, truncated in sections:
            if cancel is not None and cancel.is_set():
                break
            if on_section:
                on_section(sym)
            results.append(self.explain(code, path, adapter, symbol=sym, language=lang, on_text=on_text,
                                        cancel=cancel, truncated=truncated, others=() if sym else others))
        return results
