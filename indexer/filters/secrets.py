"""Secrets and emails: our own regex rules (cloud keys, private key blocks, tokens, JWTs, assigned passwords and
API keys, high-entropy assigned strings) plus detect-secrets on the lines that mention a secret-ish word;
every hit is replaced by ``<SECRET>``. Emails are masked as ``<EMAIL>``.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass

SECRET_PLACEHOLDER = "<SECRET>"
EMAIL_PLACEHOLDER = "<EMAIL>"


@dataclass(frozen=True)
class SecretHit:
    kind: str
    start: int
    end: int


# (kind, pattern, group): the group's text is redacted (0 = the whole match).
_SECRET_RULES: list[tuple[str, re.Pattern[str], int]] = [
    ("private_key", re.compile(
        r"-----BEGIN[ A-Z0-9]*PRIVATE KEY(?: BLOCK)?-----(?:.*?-----END[ A-Z0-9]*PRIVATE KEY(?: BLOCK)?-----"
        r"|[A-Za-z0-9+/=\s\\\"'n]*)", re.S), 0),
    ("aws_access_key", re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA|ABIA|ACCA)[0-9A-Z]{16}\b"), 0),
    ("aws_secret_key", re.compile(
        r"(?i)aws[a-z0-9_]*(?:secret|key)[a-z0-9_]*[\"']?\s*[:=]+\s*[\"']([A-Za-z0-9/+]{40})[\"']"), 1),
    ("gcp_api_key", re.compile(r"\bAIza[0-9A-Za-z_\-]{35}"), 0),
    ("gcp_service_account", re.compile(r"\"private_key_id\"\s*:\s*\"([0-9a-f]{40})\""), 1),
    ("azure_storage_key", re.compile(r"(?i)AccountKey=([A-Za-z0-9+/]{80,90}={0,2})"), 1),
    ("azure_client_secret", re.compile(r"\b[A-Za-z0-9_~.\-]{3}\dQ~[A-Za-z0-9_~.\-]{31,34}"), 0),
    ("azure_sas", re.compile(r"(?i)\bsig=([A-Za-z0-9%+/]{30,}={0,2})"), 1),
    ("github_token", re.compile(r"\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36,255}\b|\bgithub_pat_[A-Za-z0-9_]{22,255}"), 0),
    ("gitlab_token", re.compile(r"\b(?:glpat|gldt|glrt|glsoat|glptt|glft|glimt|glagent|glcbt)-[A-Za-z0-9_\-]{20,}"), 0),
    ("slack_token", re.compile(r"\bxox[abposre]-[A-Za-z0-9\-]{10,}"), 0),
    ("slack_webhook", re.compile(r"https://hooks\.slack\.com/services/[A-Za-z0-9_/]+"), 0),
    ("jwt", re.compile(r"\beyJ[A-Za-z0-9_\-]{5,}\.eyJ[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]*"), 0),
    ("basic_auth_url", re.compile(r"://[^/\s:@\"']{1,64}:([^/\s:@\"']{3,128})@"), 1),
]

# A quoted literal assigned to a secret-looking name: the value is redacted, the name kept.
_SECRET_NAME = (r"[A-Za-z0-9_\-]*(?:password|passwd|passphrase|pwd|secret|api[_\-]?key|apikey|access[_\-]?key"
                r"|auth[_\-]?token|access[_\-]?token|refresh[_\-]?token|bearer|token|client[_\-]?secret"
                r"|private[_\-]?key|credentials?)[A-Za-z0-9_\-]*")
_ASSIGNED_SECRET = re.compile(
    rf"(?i)\b{_SECRET_NAME}[\"']?\]?\s*(?::=|=>|==|=|:)\s*[a-z]?([\"'`])(?P<value>[^\"'`\n]{{4,}}?)\1")
_ENV_ASSIGNMENT = re.compile(rf"(?im)^\s*(?:export\s+)?{_SECRET_NAME}\s*=\s*(?P<value>[^\s\"'#]{{4,}})\s*$")
_CODE_VALUE = re.compile(r"[A-Za-z_][\w.]*(\(.*\))?[;,]?")
_ASSIGNED_STRING = re.compile(r"(?:=|:|=>|\()\s*[a-z]?([\"'`])(?P<value>[A-Za-z0-9+/=_\-.~]{20,})\1")
_EMAIL_HINT = re.compile(r"[A-Za-z0-9]@[A-Za-z0-9]")
_EMAIL = re.compile(r"(?<![\w.+-])[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}\b")

_PLACEHOLDER_VALUES = frozenset({SECRET_PLACEHOLDER, "xxxx", "****", "changeme", "<password>", "none", "null",
                                 "true", "false", "password", "secret", "token"})


def shannon_entropy(s: str) -> float:
    if not s:
        return 0.0
    counts = Counter(s)
    n = len(s)
    return -sum(c / n * math.log2(c / n) for c in counts.values())


def is_high_entropy(value: str) -> bool:
    """Random-looking: hex with >= 32 chars and entropy > 3, or base64-ish with >= 20 chars and entropy > 4.2."""
    if re.fullmatch(r"[0-9a-fA-F]{32,}", value):
        return shannon_entropy(value) > 3.0
    if len(value) < 20 or not re.search(r"\d", value) or not re.search(r"[A-Za-z]", value):
        return False
    if re.fullmatch(r"[a-z_.\-]+[0-9]*|[A-Z_.\-]+[0-9]*", value):  # identifiers, dotted names
        return False
    return shannon_entropy(value) > 4.2


# Literal substrings (of the lower-cased text) without which a rule cannot match: rules are skipped cheaply.
_TRIGGERS: dict[str, tuple[str, ...]] = {
    "private_key": ("private key",),
    "aws_access_key": ("akia", "asia", "agpa", "aida", "aroa", "anpa", "anva", "aipa", "abia", "acca"),
    "aws_secret_key": ("aws",),
    "gcp_api_key": ("aiza",),
    "gcp_service_account": ("private_key_id",),
    "azure_storage_key": ("accountkey=",),
    "azure_client_secret": ("q~",),
    "azure_sas": ("sig=",),
    "github_token": ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
    "gitlab_token": ("glpat-", "gldt-", "glrt-", "glsoat-", "glptt-", "glft-", "glimt-", "glagent-", "glcbt-"),
    "slack_token": ("xox",),
    "slack_webhook": ("hooks.slack.com",),
    "jwt": ("eyj",),
    "basic_auth_url": ("://",),
}
_TRIGGER_RX = {kind: re.compile("|".join(map(re.escape, triggers))) for kind, triggers in _TRIGGERS.items()}
SECRET_KEYWORDS = ("password", "passwd", "passphrase", "pwd", "secret", "api_key", "api-key", "apikey", "access_key",
                   "access-key", "token", "bearer", "credential", "private_key", "private-key", "sk_live", "sk-",
                   "npm_", "pypi-")


def keyword_lines(text: str, lower: str, keywords: tuple[str, ...] = SECRET_KEYWORDS) -> list[tuple[int, int]]:
    """(start, end) of the lines holding any keyword (lower-case ``lower`` is ``text.lower()``), merged."""
    starts: set[int] = set()
    for kw in keywords:
        pos = lower.find(kw)
        while pos >= 0:
            starts.add(lower.rfind("\n", 0, pos) + 1)
            pos = lower.find(kw, pos + len(kw))
    spans = []
    for s in sorted(starts):
        e = text.find("\n", s)
        spans.append((s, len(text) if e < 0 else e + 1))
    return spans


KEYWORDS = "keywords"  # in a trigger set: some SECRET_KEYWORDS occur


def trigger_kinds(lower: str) -> frozenset[str]:
    """The rule kinds whose trigger occurs in a lower-cased text, plus KEYWORDS if a keyword does."""
    found = {kind for kind, rx in _TRIGGER_RX.items() if rx.search(lower)}
    if any(kw in lower for kw in SECRET_KEYWORDS):
        found.add(KEYWORDS)
    return frozenset(found)


def find_secrets(text: str, use_detect_secrets: bool = True) -> list[SecretHit]:
    """Secret values in a text, with their kind. Overlapping hits are merged by the redactor."""
    return scan_secrets(text, use_detect_secrets)[0]


def scan_secrets(text: str, use_detect_secrets: bool = True,
                 triggered: frozenset[str] | None = None) -> tuple[list[SecretHit], frozenset[str]]:
    """:func:`find_secrets`, and the trigger kinds of the text (as :func:`trigger_kinds` gives them).

    ``triggered``, when given, must hold every trigger kind of the text (more is allowed): the triggers
    outside it are not searched for. A file's next version can only hold the triggers of its previous
    version and of the lines added since (triggers never span lines), so the history walk passes those."""
    hits: list[SecretHit] = []
    lower = text.lower()
    present = set()
    for kind, rx, group in _SECRET_RULES:
        if triggered is not None and kind not in triggered:
            continue
        if not _TRIGGER_RX[kind].search(lower):  # one regex scan instead of one `in` per trigger
            continue
        present.add(kind)
        for m in rx.finditer(text):
            s, e = m.span(group)
            if e > s:
                hits.append(SecretHit(kind, s, e))
    lines = keyword_lines(text, lower) if triggered is None or KEYWORDS in triggered else []
    if lines:
        present.add(KEYWORDS)
    for start, end in lines:
        line = text[start:end]
        spans = _KW_LINE_CACHE.get(line)
        if spans is None:
            spans = _KW_LINE_CACHE[line] = _assigned_in_line(line)
            if len(_KW_LINE_CACHE) > _KW_LINE_CACHE_MAX:
                _KW_LINE_CACHE.clear()
        for s, e in spans:
            hits.append(SecretHit("assigned_secret", start + s, start + e))
    for m in _ASSIGNED_STRING.finditer(text):
        if is_high_entropy(m.group("value")):
            hits.append(SecretHit("high_entropy_string", *m.span("value")))
    if use_detect_secrets and lines:
        hits.extend(_detect_secrets_hits(text, lines))
    return _first_wins(hits), frozenset(present)


# keyword line -> its assigned-secret spans: the rules below only look at the line, and the same lines come back
# in every version of a file
_KW_LINE_CACHE: dict[str, tuple[tuple[int, int], ...]] = {}
_KW_LINE_CACHE_MAX = 100_000


def _assigned_in_line(line: str) -> tuple[tuple[int, int], ...]:
    """(start, end) in ``line`` of each value assigned to a secret-looking name, in rule order."""
    spans = []
    for m in _ASSIGNED_SECRET.finditer(line):
        value = m.group("value")
        if value.strip().lower() in _PLACEHOLDER_VALUES or SECRET_PLACEHOLDER in value or "{" in value:
            continue
        spans.append(m.span("value"))
    for m in _ENV_ASSIGNMENT.finditer(line):
        value = m.group("value")
        if _CODE_VALUE.fullmatch(value) and not re.search(r"\d", value):
            continue  # `secret_key = key`, `token = load()`: code, not a literal
        spans.append(m.span("value"))
    return tuple(spans)


def _first_wins(hits: list[SecretHit]) -> list[SecretHit]:
    """Drop hits overlapping an earlier (more specific) one: each secret is counted once, by its best kind."""
    kept: list[SecretHit] = []
    for h in hits:
        if any(h.start < k.end and k.start < h.end for k in kept):
            continue
        kept.append(h)
    return kept


_DS_PLUGINS = [
    {"name": n} for n in (
        "ArtifactoryDetector", "AWSKeyDetector", "AzureStorageKeyDetector", "BasicAuthDetector",
        "CloudantDetector", "DiscordBotTokenDetector", "GitHubTokenDetector", "GitLabTokenDetector",
        "IbmCloudIamDetector", "IbmCosHmacDetector", "JwtTokenDetector", "KeywordDetector", "MailchimpDetector",
        "NpmDetector", "OpenAIDetector", "PrivateKeyDetector", "PypiTokenDetector", "SendGridDetector",
        "SlackDetector", "SoftlayerDetector", "SquareOAuthDetector", "StripeDetector", "TelegramBotTokenDetector",
        "TwilioKeyDetector")
]


_ds_depth = 0
# line -> ((secret type, value), ...) found by detect-secrets with _DS_PLUGINS (the only settings it runs with)
_DS_LINE_CACHE: dict[str, tuple[tuple[str, str], ...]] = {}
_DS_LINE_CACHE_MAX = 100_000
# A detect-secrets hit is kept only if it is >= 4 characters long and follows a quote, '=' or ':' with only
# whitespace between: a line without such a spot cannot give one.
_DS_VALUE_AFTER = re.compile(r"[\"'`=:]\s*.{4}")


@contextmanager
def detect_secrets_session():
    """Configure detect-secrets once for many files (configuring costs ~3 ms each time)."""
    global _ds_depth
    if _ds_depth:
        _ds_depth += 1
        try:
            yield
        finally:
            _ds_depth -= 1
        return
    from detect_secrets.settings import transient_settings

    with transient_settings({"plugins_used": _DS_PLUGINS}):
        _DS_LINE_CACHE.clear()  # one cache per session: each run (and benchmark run) starts cold
        _KW_LINE_CACHE.clear()
        _ds_depth += 1
        try:
            yield
        finally:
            _ds_depth -= 1


def _detect_secrets_hits(text: str, lines: list[tuple[int, int]]) -> list[SecretHit]:
    """detect-secrets on the lines that mention a secret-ish word (it costs ~0.4 ms a line)."""
    from detect_secrets.core.scan import scan_line

    hits: list[SecretHit] = []
    with detect_secrets_session():
        for offset, end in lines:
            line = text[offset:end]
            if len(line) > 2000:
                continue
            stripped = line.rstrip("\n")
            if not _DS_VALUE_AFTER.search(stripped):
                continue  # no spot where a hit could be kept (see below): nothing to ask detect-secrets
            found = _DS_LINE_CACHE.get(stripped)
            if found is None:
                # The same line recurs in every version of a file: detect-secrets sees it once per run.
                found = tuple((secret.type, secret.secret_value or "") for secret in scan_line(stripped))
                if len(_DS_LINE_CACHE) >= _DS_LINE_CACHE_MAX:
                    _DS_LINE_CACHE.clear()
                _DS_LINE_CACHE[stripped] = found
            for secret_type, value in found:
                if len(value) < 4 or value.strip().lower() in _PLACEHOLDER_VALUES or SECRET_PLACEHOLDER in value:
                    continue
                kind = "ds:" + secret_type.lower().replace(" ", "_")
                start = line.find(value)
                while start >= 0:
                    # only where the value is a literal: after a quote, '=' or ':' (not the keyword's own name)
                    before = line[:start].rstrip()
                    if before.endswith(("'", '"', "`", "=", ":")):
                        hits.append(SecretHit(kind, offset + start, offset + start + len(value)))
                    start = line.find(value, start + len(value))
    return hits


def redact_secrets(text: str, hits: list[SecretHit]) -> str:
    """Replace every hit (overlaps merged) with the placeholder."""
    if not hits:
        return text
    spans = sorted((h.start, h.end) for h in hits)
    merged: list[list[int]] = []
    for s, e in spans:
        if merged and s <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], e)
        else:
            merged.append([s, e])
    out, pos = [], 0
    for s, e in merged:
        out.append(text[pos:s])
        out.append(SECRET_PLACEHOLDER)
        pos = e
    out.append(text[pos:])
    return "".join(out)


def secret_fingerprints(text: str, hits: list[SecretHit]) -> set[tuple[str, str]]:
    """(kind, hash of the value) per hit: the same secret seen in several file versions counts once."""
    return {(h.kind, hashlib.sha256(text[h.start:h.end].encode("utf-8", "surrogatepass")).hexdigest()[:16])
            for h in hits}


def _has_email_hint(text: str) -> bool:
    """``_EMAIL_HINT.search(text)``, by visiting each '@' (code has few: decorators, matmul) instead of
    running a regex over every character."""
    i = text.find("@")
    while i >= 0:
        if 0 < i < len(text) - 1 and text[i - 1] in _ALNUM_CHARS and text[i + 1] in _ALNUM_CHARS:
            return True
        i = text.find("@", i + 1)
    return False


_ALNUM_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")


def mask_emails(text: str) -> tuple[str, int]:
    """Email addresses -> <EMAIL>; returns (text, how many)."""
    if not _has_email_hint(text):
        return text, 0
    return _EMAIL.subn(EMAIL_PLACEHOLDER, text)
