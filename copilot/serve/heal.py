"""Token healing: completions that start in the middle of a word.

A typing developer's cursor is mostly inside an identifier (`blocked_outp|`). The prompt then ends inside a
token, at a boundary real text never has (`blocked`, `_out`, `p`), and the model continues from there with
the wrong next token (`blocked_outp` + `out = None`). Healing backs the prompt up to where the tokenizer
would start that word (the word's characters plus the one character BPE pre-tokenizers glue in front of a
word: a space, `.`, `(`), and constrains the first generated tokens to reproduce the removed text; the
ghost text is what follows the cursor. Typing on inside the same word then leaves the prompt unchanged,
so the KV cache is reused whole.

`split_tail` picks the text to back over; `HealIndex` (one per tokenizer) answers which tokens may come next
while part of that text is still to be reproduced; `Constraint` is what the decode loop asks
(copilot.serve.decode). Only ASCII identifier characters are healed: a word with other characters heals
from after the last of them.
"""

from __future__ import annotations

import bisect
import re

MAX_TAIL_CHARS = 32  # a longer identifier heals only its last characters
_WORD_TAIL = re.compile(r"[A-Za-z0-9_]+\Z")
_TOKEN_TEXT = re.compile(r"[\t -~]?[A-Za-z0-9_]+|[\t -~]")
# How byte-level BPE (GPT-2, Qwen, StarCoder) and SentencePiece vocabularies write a leading space or tab.
_LEAD = {"bytes": {"Ġ": " ", "ĉ": "\t"}, "spm": {"▁": " "}, "plain": {}}


def split_tail(prefix: str) -> tuple[str, str]:
    """(prefix without the healed tail, tail). The tail is the partial word before the cursor plus the one
    character before it that a BPE pre-tokenizer attaches to a word (not a line break); "" when the cursor
    does not follow an identifier character."""
    m = _WORD_TAIL.search(prefix[-MAX_TAIL_CHARS:])
    if m is None:
        return prefix, ""
    start = len(prefix) - len(m.group())
    if start > 0:
        ch = prefix[start - 1]
        if ch == "\t" or (" " <= ch <= "~" and not ch.isalnum()):
            start -= 1
    return prefix[:start], prefix[start:]


class HealIndex:
    """The tokens a healed completion may start with: those whose text is an (optional) printable ASCII
    character followed by ASCII identifier characters, found by prefix search over their sorted texts."""

    def __init__(self, vocab: dict[str, int]):
        scheme = "bytes" if any(k.startswith("Ġ") for k in vocab) else ("spm" if any(k.startswith("▁") for k in vocab) else "plain")
        lead = _LEAD[scheme]
        pairs: list[tuple[str, int]] = []
        for raw, tid in vocab.items():
            text = lead.get(raw[:1], raw[:1]) + raw[1:] if raw else raw
            if text and _TOKEN_TEXT.fullmatch(text):
                pairs.append((text, tid))
        pairs.sort()
        self._texts = [t for t, _ in pairs]
        self._ids = [i for _, i in pairs]
        self.text = {i: t for t, i in pairs}
        self._by_text = {t: i for t, i in pairs}

    def __len__(self) -> int:
        return len(self._ids)

    def allowed(self, rest: str) -> list[int]:
        """Tokens consistent with `rest` (the text still to reproduce): a prefix of it, or one starting with it."""
        out = [self._by_text[rest[:k]] for k in range(1, len(rest)) if rest[:k] in self._by_text]
        i = bisect.bisect_left(self._texts, rest)
        while i < len(self._texts) and self._texts[i].startswith(rest):
            out.append(self._ids[i])
            i += 1
        return out


class Constraint:
    """What the decode loop asks before each token: the allowed ids while the tail is not yet reproduced,
    then None (free generation)."""

    def __init__(self, index: HealIndex, tail: str):
        self.index, self.tail = index, tail

    def __call__(self, out: list[int]) -> list[int] | None:
        done = "".join(self.index.text.get(i, "") for i in out[: len(self.tail)])
        if len(done) >= len(self.tail) or len(out) >= len(self.tail):
            return None
        return self.index.allowed(self.tail[len(done):])


def heal_index_for(tokenizer) -> HealIndex:
    """The tokenizer's HealIndex, built once (a few hundred ms for a 150k vocabulary) and kept on the tokenizer."""
    idx = getattr(tokenizer, "_copilot_heal_index", None)
    if idx is None:
        idx = HealIndex(tokenizer.get_vocab())
        try:
            tokenizer._copilot_heal_index = idx
        except AttributeError:  # a tokenizer that refuses new attributes: rebuild per call
            pass
    return idx
