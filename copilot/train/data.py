"""Training examples: re-format pairs into the base model's prompt format, tokenize with a loss mask
on the completion only, and pack them into fixed-size rows.

- FIM pairs (indexer.pairs.FIM_KINDS: fim_file / fim_history / fim_typing, all alike) are rebuilt from
  prefix/middle/suffix with the base model's FIM sentinels (copilot.prompts.fim_format_for), in
  prefix-suffix-middle or suffix-prefix-middle order (a share `spm_share` of pairs, chosen by a stable hash so
  a resumed run sees the same data).
  A pair mined with repository context (its `context` column: what the server would have sent at that cursor)
  opens its prompt with it exactly as the serving engine builds one: `FimFormat.build(prefix, suffix, order,
  path=the row's path, context=its first four snippets, spm_header=True)`, which puts them (and the path)
  before the file in both orders (suffix-first too: the manifest records `spm_header`, and the engines show
  the header in that order only to adapters that learned it). The prefix and suffix get at most
  `code_tokens` (the recipe's, default the server's `completion.context_tokens`), the context on top of
  them as the server adds it, within what the middle leaves of max_seq_len. A context may take at most
  half of that: past that its last (least important) snippets are left out, as a smaller
  `context.tokens` would. `context=False` (the recipe's `context = false`) trains without it.
  The middle ends with the end-of-text token, so the adapted model learns to stop.
- Explain pairs go through the chat template (the same messages the engine's explain uses); the
  completion is the assistant turn including its end-of-turn token.
- Labels are -100 everywhere except the completion tokens.
- Packing: first-fit-decreasing into rows of at most max_seq_len tokens; each row carries
  position_ids restarting at 0 for every example, which transformers turns into a block-diagonal
  causal mask (no attention across examples, no padding inside a row).

Imports no torch: the tokenizer object is passed in.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass, field
from typing import Any

from indexer.dataset import row_context
from indexer.pairs import FIM_KINDS, explain_pair_parts

IGNORE = -100
MAX_CONTEXT_FILES = 4  # the engines take at most four other files' snippets (copilot.serve.base)


@dataclass
class Example:
    input_ids: list[int]
    labels: list[int]


@dataclass
class PackedRow:
    input_ids: list[int]
    labels: list[int]
    position_ids: list[int]

    @property
    def n_tokens(self) -> int:
        return len(self.input_ids)


@dataclass
class EncodeStats:
    pairs: int = 0
    encoded: int = 0
    spm: int = 0
    context: int = 0  # examples whose prompt opens with repository context
    context_trimmed: int = 0  # ... with some of its snippets left out for want of room
    context_left_out: int = 0  # examples whose context was left out entirely for want of room
    dropped: dict[str, int] = field(default_factory=dict)
    tokens: int = 0
    label_tokens: int = 0

    def drop(self, why: str) -> None:
        self.dropped[why] = self.dropped.get(why, 0) + 1


def tokenizer_hash(tokenizer) -> str:
    """sha256 of the tokenizer's vocabulary (token -> id, added tokens included)."""
    vocab = sorted(tokenizer.get_vocab().items())
    return hashlib.sha256(json.dumps(vocab, ensure_ascii=False).encode()).hexdigest()


def end_of_text(tokenizer, fmt=None) -> str:
    """The token a FIM middle ends with: <|endoftext|> style EOT, not a chat end-of-turn."""
    vocab = tokenizer.get_vocab()
    for cand in ("<|endoftext|>", "<EOT>", "<|EOT|>"):
        if cand in vocab:
            return cand
    if fmt is not None and fmt.stop_tokens and fmt.stop_tokens[0] in vocab:
        return fmt.stop_tokens[0]
    return tokenizer.eos_token


def fim_order(row: dict[str, Any], spm_share: float, seed: int = 0) -> str:
    key = f"{seed}|{row.get('repo')}|{row.get('path')}|{row.get('commit')}|{row.get('span_start')}|{len(row.get('prefix', ''))}"
    u = int(hashlib.sha256(key.encode()).hexdigest()[:12], 16) / float(16**12)
    return "spm" if u < spm_share else "psm"


def _ids(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def fit_context(tokenizer, prefix: str, suffix: str, budget: int, suffix_share: float = 0.25) -> tuple[str, str]:
    """Keep the end of the prefix and the start of the suffix within `budget` tokens."""
    p = tokenizer(prefix, add_special_tokens=False, return_offsets_mapping=True) if prefix else None
    s = tokenizer(suffix, add_special_tokens=False, return_offsets_mapping=True) if suffix else None
    np_, ns = (len(p["input_ids"]) if p else 0), (len(s["input_ids"]) if s else 0)
    if np_ + ns <= budget:
        return prefix, suffix
    s_budget = min(ns, max(int(budget * suffix_share), budget - np_))
    p_budget = max(0, min(np_, budget - s_budget))
    if p is not None:
        prefix = "" if p_budget == 0 else prefix[p["offset_mapping"][np_ - p_budget][0]:]
    if s is not None:
        suffix = "" if s_budget == 0 else suffix[: s["offset_mapping"][s_budget - 1][1]]
    return prefix, suffix


def explain_texts(tokenizer, row: dict[str, Any]) -> tuple[str, str]:
    """(prompt, completion) of an explain pair: the unit's code asking for its docstring (prompts.docstring_messages)."""
    from copilot.prompts import formats as prompts

    code, symbol = explain_pair_parts(row)
    msgs = prompts.docstring_messages(code, row.get("path", ""), row.get("language"), symbol)
    answer = row.get("completion", "").strip()
    if getattr(tokenizer, "chat_template", None):
        prompt = tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
        full = tokenizer.apply_chat_template(msgs + [{"role": "assistant", "content": answer}], tokenize=False)
        if full.startswith(prompt):
            return prompt, full[len(prompt):]
    prompt = f"{msgs[0]['content']}\n\n{msgs[1]['content']}\n\nDocstring:\n"  # base models without a chat template
    return prompt, answer + (tokenizer.eos_token or "")


def encode_pair(tokenizer, prompt: str, completion: str) -> Example:
    p, c = _ids(tokenizer, prompt), _ids(tokenizer, completion)
    return Example(input_ids=p + c, labels=[IGNORE] * len(p) + c)


def fim_prompt(tokenizer, fmt, row: dict[str, Any], order: str, budget: int, suffix_share: float = 0.25,
               context: bool = True, code_tokens: int = 0) -> tuple[str, str]:
    """A FIM row's prompt as the serving engine builds it: `fmt.build(prefix, suffix, order, path=..., context=...)`
    with the row's stored context and, when there is one, its path (before the file, in both orders); the prefix
    and suffix fitted to what the context leaves of `budget` tokens, and to at most `code_tokens` (0: no cap) as
    the server fits them to `completion.context_tokens`, the context coming on top. The context takes at most
    half of the budget: its last snippets go first. -> (prompt, "shown" | "trimmed" (some snippets left out) |
    "left_out" (all) | "" (none, or a format without a file separator))."""
    ctx = row_context(row)[:MAX_CONTEXT_FILES] if context else ()
    path = row.get("path") or None
    head, how, full = 0, "", len(ctx)
    if ctx:
        bare = len(_ids(tokenizer, fmt.build("", "", order)))
        while ctx:
            head = len(_ids(tokenizer, fmt.build("", "", order, path=path, context=ctx, spm_header=True))) - bare
            if head <= budget // 2:
                break
            ctx, head = ctx[:-1], 0
        if not ctx:
            how = "left_out"
        elif head > 0:  # 0: a format without a file separator shows no header
            how = "shown" if len(ctx) == full else "trimmed"
    code = budget - head if code_tokens <= 0 else min(budget - head, code_tokens)
    prefix, suffix = fit_context(tokenizer, row.get("prefix", ""), row.get("suffix", ""), code, suffix_share)
    return fmt.build(prefix, suffix, order, path=path if ctx else None, context=ctx, spm_header=True), how


def encode_rows(rows, tokenizer, fmt, *, max_seq_len: int, spm_share: float = 0.5, seed: int = 0,
                suffix_share: float = 0.25, context: bool = True,
                code_tokens: int = 0) -> tuple[list[Example], EncodeStats]:
    """Turn dataset rows (TrainingPair dicts) into masked token examples (`context`: FIM prompts open with the
    pairs' stored repository context; `code_tokens`: most tokens of prefix+suffix, 0 = what max_seq_len leaves)."""
    stats = EncodeStats()
    out: list[Example] = []
    eot = end_of_text(tokenizer, fmt)
    slack = 8  # sentinels + re-tokenization at the cut points
    for row in rows:
        stats.pairs += 1
        kind = row.get("kind")
        if kind in FIM_KINDS:
            if fmt is None:
                stats.drop("no_fim_format")
                continue
            middle = row.get("middle") or ""
            if not middle.strip():
                stats.drop("empty_middle")
                continue
            comp = middle + eot
            n_comp = len(_ids(tokenizer, comp))
            budget = max_seq_len - n_comp - slack
            if n_comp > max_seq_len // 2 or budget <= 0:
                stats.drop("middle_too_long")
                continue
            order = fim_order(row, spm_share, seed)
            prompt, how = fim_prompt(tokenizer, fmt, row, order, budget, suffix_share, context, code_tokens)
            ex = encode_pair(tokenizer, prompt, comp)
            stats.spm += order == "spm"
            stats.context += how in ("shown", "trimmed")
            stats.context_trimmed += how == "trimmed"
            stats.context_left_out += how == "left_out"
        elif kind == "explain":
            if not (row.get("completion") or "").strip():
                stats.drop("empty_explanation")
                continue
            prompt, comp = explain_texts(tokenizer, row)
            ex = encode_pair(tokenizer, prompt, comp)
        else:
            stats.drop(f"unknown_kind:{kind}")
            continue
        if len(ex.input_ids) > max_seq_len:
            stats.drop("too_long")
            continue
        out.append(ex)
        stats.encoded += 1
        stats.tokens += len(ex.input_ids)
        stats.label_tokens += sum(1 for x in ex.labels if x != IGNORE)
    return out, stats


def pack(examples: list[Example], max_seq_len: int) -> list[PackedRow]:
    """First-fit-decreasing packing into rows of at most max_seq_len tokens (deterministic)."""
    order = sorted(range(len(examples)), key=lambda i: (-len(examples[i].input_ids), i))
    bins: list[list[int]] = []
    space: list[int] = []
    for i in order:
        n = len(examples[i].input_ids)
        for b, free in enumerate(space):
            if n <= free:
                bins[b].append(i)
                space[b] -= n
                break
        else:
            bins.append([i])
            space.append(max_seq_len - n)
    rows: list[PackedRow] = []
    for members in bins:
        ids: list[int] = []
        labels: list[int] = []
        pos: list[int] = []
        for i in members:
            ex = examples[i]
            ids += ex.input_ids
            labels += ex.labels
            pos += list(range(len(ex.input_ids)))
        rows.append(PackedRow(ids, labels, pos))
    return rows


def batch_plan(n_rows: int, rows_per_batch: int, epoch: int, seed: int) -> list[list[int]]:
    """Shuffled row indices for one epoch, cut into batches. Same (epoch, seed) -> same plan."""
    idx = list(range(n_rows))
    random.Random(f"{seed}:{epoch}").shuffle(idx)
    return [idx[i:i + rows_per_batch] for i in range(0, n_rows, rows_per_batch)]


def collate(rows: list[PackedRow], pad_id: int) -> dict[str, list[list[int]]]:
    """Pad rows of one batch to the same length with a separate pad segment (labels -100)."""
    width = max(r.n_tokens for r in rows)
    out: dict[str, list[list[int]]] = {"input_ids": [], "labels": [], "position_ids": []}
    for r in rows:
        pad = width - r.n_tokens
        out["input_ids"].append(r.input_ids + [pad_id] * pad)
        out["labels"].append(r.labels + [IGNORE] * pad)
        out["position_ids"].append(r.position_ids + list(range(pad)))
    return out


def dataset_tokenizer_hash(manifest: dict[str, Any]) -> str | None:
    """The tokenizer hash the dataset was built with, when its manifest records one."""
    for holder in (manifest, manifest.get("extra") or {}):
        for key in ("tokenizer_sha256", "tokenizer_hash"):
            if holder.get(key):
                return str(holder[key])
    return None
