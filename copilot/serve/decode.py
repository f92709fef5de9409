"""The greedy decode loop both engines share (torch-free): token by token, end tokens, stop rules,
cancellation and streaming.

An engine supplies two callables over its own model:
- `feed(tokens, step)` evaluates `tokens` after what the model has read (the prompt's unread tail at step 0,
  then the last generated token); it returns False when the request was cancelled, and the loop stops;
- `next_id(out, allowed)` picks the next token greedily from the logits of the last feed (`out`: the tokens
  generated so far, for a repetition penalty; `allowed`: None, or the only ids it may pick);
and `detokenize(ids)` for the stop rules and the streamed text.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence

StopRule = Callable[[list[int], str], bool]


def greedy_decode(feed: Callable[[list[int], int], bool], next_id: Callable[[list[int], Sequence[int] | None], int],
                  detokenize: Callable[[list[int]], str], first: list[int], *, max_new_tokens: int,
                  stop_ids: Collection[int], should_stop: StopRule | None = None,
                  on_text: Callable[[str], None] | None = None,
                  constraint: Callable[[list[int]], Sequence[int] | None] | None = None) -> tuple[list[int], str]:
    """Generate up to `max_new_tokens` after feeding `first`. Returns (generated ids, stop reason): "eos" (an end
    token, not included), "rule" (`should_stop(ids, text)` said so), "cancelled", "length", or "heal" (the
    `constraint` allowed no token: the healed text cannot be reproduced). The last generated token is fed too,
    so the engine's cache holds every token the caller sees. `constraint(ids)` (token healing,
    copilot.serve.heal) gives the ids the next token must be one of, or None."""
    out: list[int] = []
    stop = set(stop_ids)
    emitted = ""
    pending = first
    for step in range(max_new_tokens + 1):
        if not feed(pending, step):
            return out, "cancelled"
        if step == max_new_tokens:
            break
        allowed = constraint(out) if constraint is not None else None
        if allowed is not None and not allowed:
            return out, "heal"
        nxt = next_id(out, allowed)
        if nxt in stop:
            return out, "eos"
        out.append(nxt)
        pending = [nxt]
        if on_text is not None or should_stop is not None:
            text = detokenize(out)
            if on_text is not None and not text.endswith("\ufffd"):
                on_text(text[len(emitted):])
                emitted = text
            if should_stop is not None and should_stop(out, text):
                return out, "rule"
    return out, "length"
