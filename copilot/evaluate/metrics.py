"""Completion and explanation metrics. Pure functions, no model imports.

- exact_match: the post-processed completion equals the held-out middle, ignoring trailing
  whitespace on each line and blank lines at either end (an editor inserts both the same way).
- edit_similarity: 100 * (1 - normalized Levenshtein distance) on the same normalized text
  (rapidfuzz), the usual code-completion "ES" metric.
- rouge_l: LCS-based F1 over word tokens (the lexical score for explanations).
- token_f1: bag-of-words F1 (SQuAD style), a second lexical view.
All scores are on a 0..100 scale so tables read as "points".
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any

_WORD = re.compile(r"\w+|[^\w\s]")


def normalize_code(text: str) -> str:
    lines = [ln.rstrip() for ln in text.replace("\r\n", "\n").split("\n")]
    while lines and not lines[0]:
        lines.pop(0)
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines)


def exact_match(pred: str, ref: str) -> float:
    return 100.0 if normalize_code(pred) == normalize_code(ref) else 0.0


def edit_similarity(pred: str, ref: str) -> float:
    from rapidfuzz.distance import Levenshtein

    a, b = normalize_code(pred), normalize_code(ref)
    if not a and not b:
        return 100.0
    return 100.0 * Levenshtein.normalized_similarity(a, b)


def words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text)]


def rouge_l(pred: str, ref: str) -> float:
    from rapidfuzz.distance import LCSseq

    p, r = words(pred), words(ref)
    if not p or not r:
        return 100.0 if p == r else 0.0
    lcs = LCSseq.similarity(p, r)
    if lcs == 0:
        return 0.0
    prec, rec = lcs / len(p), lcs / len(r)
    return 100.0 * 2 * prec * rec / (prec + rec)


def token_f1(pred: str, ref: str) -> float:
    p, r = Counter(words(pred)), Counter(words(ref))
    if not p or not r:
        return 100.0 if p == r else 0.0
    common = sum((p & r).values())
    if common == 0:
        return 0.0
    prec, rec = common / sum(p.values()), common / sum(r.values())
    return 100.0 * 2 * prec * rec / (prec + rec)


def score_fim(pred: str, ref: str) -> dict[str, float]:
    return {"exact_match": exact_match(pred, ref), "edit_sim": edit_similarity(pred, ref)}


def score_explain(pred: str, ref: str) -> dict[str, float]:
    return {"rouge_l": rouge_l(pred, ref), "token_f1": token_f1(pred, ref)}


def mean(xs: Iterable[float]) -> float:
    xs = list(xs)
    return sum(xs) / len(xs) if xs else float("nan")


def aggregate(rows: list[dict[str, Any]], metrics: Iterable[str], by: Iterable[str] = ()) -> dict[str, Any]:
    """Means of `metrics` over `rows` overall ("all") and per value of each key in `by`.

    Returns {"all": {"n": N, m: mean...}, "<key>=<value>": {...}, ...}."""
    metrics = list(metrics)

    def summary(group: list[dict[str, Any]]) -> dict[str, float]:
        out: dict[str, float] = {"n": len(group)}
        for m in metrics:
            out[m] = mean(r[m] for r in group if m in r)
        return out

    result: dict[str, Any] = {"all": summary(rows)}
    for key in by:
        groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for r in rows:
            groups[str(r.get(key))].append(r)
        for value in sorted(groups):
            result[f"{key}={value}"] = summary(groups[value])
    return result


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{2,}")


def context_gives(prefix: str, middle: str, suffix: str, context: tuple[tuple[str, str], ...]) -> bool:
    """Whether the middle uses a name (3+ characters) that the code around it (the prefix's last 2,000 and the
    suffix's first 600 characters) lacks and the repository context holds: a pair only context can help."""
    if not context:
        return False
    wanted = set(_NAME.findall(middle)) - set(_NAME.findall(prefix[-2000:] + suffix[:600]))
    return bool(wanted) and any(not wanted.isdisjoint(_NAME.findall(text)) for _, text in context)
