"""Completion post-processing: turn what the model generated into what the editor should show.

Small models (the embedded 0.5B above all) do not stop by themselves: they repeat the suffix, run
into the next function, or close brackets that already exist after the cursor. Each rule below is a
pure function; `postprocess` applies them in order and reports which one cut the text.
`generation_stop_rule` stops the decoding early by the same rules, and `finish_completion` shapes the result.
"""

from __future__ import annotations

OPENERS = {"(": ")", "[": "]", "{": "}"}
CLOSERS = {v: k for k, v in OPENERS.items()}


def cursor_line(prefix: str, suffix: str) -> tuple[str, str]:
    """(text before the cursor on its line, text after the cursor on its line)."""
    before = prefix.rsplit("\n", 1)[-1]
    after = suffix.split("\n", 1)[0].rstrip("\r")
    return before, after


def is_mid_line(prefix: str, suffix: str) -> bool:
    """The cursor has real text after it on the same line (closing brackets/quotes alone don't count)."""
    _, after = cursor_line(prefix, suffix)
    return bool(after.strip().strip(")]}\"'`;,:"))


def wants_multiline(prefix: str, suffix: str) -> bool:
    """Multi-line (a whole block) on an empty line or after a block opener; else finish the current line."""
    before, after = cursor_line(prefix, suffix)
    if after.strip():
        return False  # text (even a closing bracket) after the cursor: finish this line only
    if not before.strip():
        return True
    return before.rstrip().endswith((":", "{", "(", "[", "=>", "->", "then", "do"))


def early_cut(body: str, prefix: str, suffix: str) -> bool:
    """While generating a multi-line completion: has a rule already decided where it ends?"""
    done = body.rstrip("\n")
    if "\n" not in done:
        return False
    return cut_dedent(done, prefix, suffix)[1] or cut_suffix_repeat(done, prefix, suffix)[1]


def indent_of(line: str) -> int:
    line = line.replace("\t", "    ")
    return len(line) - len(line.lstrip(" "))


def strip_stop_text(raw: str, stop_strings: tuple[str, ...] | list[str] = ()) -> tuple[str, bool]:
    """Cut at the first sentinel/end token that made it into the decoded text."""
    cut = len(raw)
    for s in stop_strings:
        if s:
            i = raw.find(s)
            if i != -1:
                cut = min(cut, i)
    return raw[:cut], cut < len(raw)


def cut_single_line(text: str) -> tuple[str, bool]:
    """Mid-line cursor: keep only the rest of the current line."""
    if "\n" in text:
        first = text.split("\n", 1)[0]
        return first, True
    return text, False


def cut_max_lines(text: str, max_lines: int) -> tuple[str, bool]:
    lines = text.split("\n")
    if len(lines) > max_lines:
        return "\n".join(lines[:max_lines]), True
    return text, False


def _first_meaningful_line(suffix: str) -> str | None:
    """The first non-empty line after the cursor's line, if it is distinctive enough to detect a repeat."""
    lines = suffix.split("\n")[1:]
    for line in lines:
        s = line.strip()
        if s:
            return s if len(s) >= 4 or s not in ("}", ")", "]", "};", "});", "end", "fi", "else", "pass") else None
    return None


def cut_suffix_repeat(text: str, prefix: str, suffix: str) -> tuple[str, bool]:
    """Cut where the completion starts repeating the code that follows the cursor.

    Multi-line: a completion line equal to the first meaningful line after the cursor's line ends it.
    Any mode: when the completion contains the whole rest-of-line after the cursor (e.g. `):`), cut before it.
    """
    before, after = cursor_line(prefix, suffix)
    lines = text.split("\n")
    target = _first_meaningful_line(suffix)
    if target is not None:
        for i, line in enumerate(lines):
            # The first line continues the cursor's line; compare it only when the cursor is at the
            # start of an (indented) empty line.
            if i == 0 and (before.strip() or after.strip()):
                continue
            if line.strip() == target:
                return "\n".join(lines[:i]).rstrip(" \t"), True
    rest = after.strip()
    if rest and len(rest) >= 2:
        first = lines[0]
        j = first.find(rest)
        if j > 0:
            return first[:j].rstrip() if first[:j].strip() else first[:j], True
    return text, False


def cut_dedent(text: str, prefix: str, suffix: str) -> tuple[str, bool]:
    """Multi-line: stop where a line's indentation falls below the cursor's block."""
    before, _ = cursor_line(prefix, suffix)
    lines = text.split("\n")
    if len(lines) == 1:
        return text, False
    if before.strip():
        # Cursor after code on this line: the block is the current line's indentation, or deeper
        # when this line opens a block (`:` / `{` / `(` at its end, or the completion's first line does).
        block = indent_of(before)
        line_so_far = (before + lines[0]).rstrip()
        if line_so_far.endswith((":", "{", "(", "[", "=>")):
            block += 1  # anything at the same level as the opener ends the body
    else:
        # Cursor on a blank line: the block is where the completion's first line lands.
        block = len(before.replace("\t", "    "))
        for idx, line in enumerate(lines):
            if line.strip():
                placed = block + indent_of(line) if idx == 0 else indent_of(line)
                block = max(block, placed)
                break
    for i, line in enumerate(lines[1:], start=1):
        if not line.strip():
            continue
        ind = indent_of(line)
        if ind < block:
            # Keep a closer that matches an opener in the completion itself (a whole `if {...}` it wrote).
            if _opens_in(text, i) and line.strip()[:1] in CLOSERS and ind >= indent_of(before) and before.strip():
                continue
            return "\n".join(lines[:i]).rstrip(), True
    return text, False


def _opens_in(text: str, upto_line: int) -> bool:
    depth = 0
    for line in text.split("\n")[:upto_line]:
        for ch in line:
            if ch in OPENERS:
                depth += 1
            elif ch in CLOSERS:
                depth -= 1
    return depth > 0


def balance_brackets(text: str, prefix: str, suffix: str, single_line: bool) -> tuple[str, bool]:
    """Cut at the first closer that has no opener in the completion or (single-line) earlier on the line,
    when the text after the cursor already provides that closer."""
    before, after = cursor_line(prefix, suffix)
    stack: list[str] = []
    if single_line:
        for ch in _code_chars(before):
            if ch in OPENERS:
                stack.append(ch)
            elif ch in CLOSERS and stack and stack[-1] == CLOSERS[ch]:
                stack.pop()
    # Closers already waiting after the cursor (auto-inserted by the editor or already typed).
    waiting = [c for c in after.strip() if c in CLOSERS]
    for i, ch in _code_positions(text):
        if ch in OPENERS:
            stack.append(ch)
        elif ch in CLOSERS:
            if stack and stack[-1] == CLOSERS[ch]:
                stack.pop()
                # Single-line: a closer that closes a bracket opened before the cursor, while the
                # same closer already waits after the cursor -> the rest is a duplicate.
                continue
            if not stack:
                if waiting or not single_line:
                    return text[:i].rstrip() if not single_line else text[:i], True
    return text, False


def _code_positions(s: str):
    """(index, char) of the characters outside string literals."""
    in_str: str | None = None
    for i, ch in enumerate(s):
        if in_str:
            if ch == in_str and (i == 0 or s[i - 1] != "\\"):
                in_str = None
            continue
        if ch in "\"'`":
            in_str = ch
            continue
        yield i, ch


def _code_chars(s: str):
    return (ch for _, ch in _code_positions(s))


def strip_overlap_with_after(text: str, prefix: str, suffix: str) -> tuple[str, bool]:
    """Single-line: drop a tail of the completion that equals the start of the text after the cursor
    (e.g. the model wrote `x)` and `)` is already there)."""
    _, after = cursor_line(prefix, suffix)
    a = after.rstrip()
    if not a:
        return text, False
    chars = list(_code_chars(text))
    net = sum(c in OPENERS for c in chars) - sum(c in CLOSERS for c in chars)
    for k in range(min(len(a), len(text)), 0, -1):
        tail = a[:k]
        closers = sum(c in CLOSERS for c in tail)
        # Strip closers only when the completion has that many more closers than openers.
        if text.endswith(tail) and text[:-k].strip() and (closers == 0 or net <= -closers):
            return text[:-k], True
    return text, False


def cut_repetition(text: str, min_repeats: int = 4, max_unit: int = 24) -> tuple[str, bool]:
    """Degenerate loops (`'..', '..', '..'`, `a a a a`): keep the text up to the loop's first unit."""
    n = len(text)
    for unit in range(1, max_unit + 1):
        if unit * min_repeats > n:
            break
        for start in range(0, n - unit * min_repeats + 1):
            pat = text[start:start + unit]
            if not pat.strip() or unit * min_repeats < 12:
                continue
            if len(set(pat)) == 1 and pat[0] in "=-*#_~/+.":  # comment rulers like '# -----' are fine
                continue
            if text[start:start + unit * min_repeats] == pat * min_repeats:
                return text[:start + unit].rstrip(), True
    return text, False


def trim_trailing(text: str) -> str:
    lines = [ln.rstrip() for ln in text.split("\n")]
    while len(lines) > 1 and not lines[-1].strip():
        lines.pop()
    return "\n".join(lines)


def postprocess(raw: str, prefix: str, suffix: str, *, multiline: bool | None = None, max_lines: int = 8,
                stop_strings: tuple[str, ...] | list[str] = ()) -> tuple[str, str | None]:
    """Apply every rule. Returns (text to insert, name of the rule that cut it or None)."""
    reason: str | None = None
    text, cut = strip_stop_text(raw, stop_strings)
    if cut:
        reason = "eos"
    text, cut = cut_repetition(text)
    if cut:
        reason = "repetition"
    single = (not multiline) if multiline is not None else not wants_multiline(prefix, suffix)
    if single:
        text, cut = cut_single_line(text)
        if cut:
            reason = "line"
    text, cut = cut_suffix_repeat(text, prefix, suffix)
    if cut:
        reason = "suffix"
    if not single:
        text, cut = cut_dedent(text, prefix, suffix)
        if cut:
            reason = "indent"
    text, cut = balance_brackets(text, prefix, suffix, single_line=single)
    if cut:
        reason = "brackets"
    if single:
        text, cut = strip_overlap_with_after(text, prefix, suffix)
        if cut:
            reason = "suffix"
    else:
        text, cut = cut_max_lines(text, max_lines)
        if cut:
            reason = "length"
    text = trim_trailing(text) if not single else text.rstrip()
    if not text.strip():
        return "", "empty"
    return text, reason


def generation_stop_rule(prefix: str, suffix: str, strip_ws: str, *, single: bool, max_lines: int):
    """`should_stop(ids, text)` for the decode loop: a single-line completion stops after its first non-empty line
    (or a repetition); a multi-line one, checked at line ends, after max_lines + 1 lines or an early cut.
    `strip_ws` is indentation left out of the prompt that the model writes first."""

    def should_stop(out_ids: list[int], text: str) -> bool:
        body = text[len(strip_ws):] if text.startswith(strip_ws) else text
        if single:
            return ("\n" in body and bool(body.split("\n", 1)[0].strip())) or cut_repetition(body)[1]
        if not body.endswith("\n"):
            return False  # check rules only when a line is complete
        if body.count("\n") > max_lines + 1:
            return True
        return early_cut(body, prefix, suffix)

    return should_stop


def finish_completion(raw: str, reason: str, prefix: str, suffix: str, strip_ws: str, *, single: bool,
                      max_lines: int, stop_strings: tuple[str, ...] = ()) -> tuple[str, str]:
    """(text for the editor, stop reason) from the decoded output and the decode loop's stop reason."""
    if reason in ("cancelled", "unavailable"):  # unavailable: the remote backend's service did not answer
        return "", reason
    body = raw
    if strip_ws:
        body = raw[len(strip_ws):] if raw.startswith(strip_ws) else raw.lstrip(" \t")
    text, why = postprocess(body, prefix, suffix, multiline=not single, max_lines=max_lines, stop_strings=stop_strings)
    if why is None:
        why = "eos" if reason == "eos" else ("line" if reason == "rule" else reason)
    return text, why
