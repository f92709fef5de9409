"""Team API keys for the service: `copilot serve keys add/list/revoke TEAM`.

A key is shown once, when it is made; the store keeps only its sha256 (a key is 32 random bytes, so a
plain hash is as strong as a slow one). A key belongs to one team and reaches that team's adapters and
the base model, nothing else. The store is one JSON file written atomically; the service re-reads it
when it changes, so a revoked key stops working without a restart.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from copilot.core import paths
from copilot.core.files import read_json, write_json_atomic
from copilot.core.types import UserInputError

PREFIX = "cpk_"


def default_path() -> Path:
    return paths.home() / "service" / "keys.json"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class TeamKey:
    id: str  # short public id, shown by `keys list` (the first characters of the hash)
    team: str
    adapters: tuple[str, ...]  # the registry names this team may use
    sha256: str
    created: float
    revoked: float | None = None
    limits: dict = field(default_factory=dict)  # per-key overrides: requests_per_minute, max_body_kb, max_tokens

    def allows(self, adapter: str | None) -> bool:
        """The base model (None) or one of the team's adapters."""
        return adapter is None or adapter in self.adapters


class KeyStore:
    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path else default_path()
        self._cache: tuple[float, dict[str, TeamKey]] | None = None

    # ------------------------------------------------------------------ read
    def _load(self) -> dict[str, TeamKey]:
        try:
            mtime = self.path.stat().st_mtime_ns
        except FileNotFoundError:
            return {}
        if self._cache and self._cache[0] == mtime:
            return self._cache[1]
        data = read_json(self.path, default={}) or {}
        keys = {}
        for k in data.get("keys", []):
            keys[k["sha256"]] = TeamKey(id=k["id"], team=k["team"], adapters=tuple(k.get("adapters", [])),
                                        sha256=k["sha256"], created=k["created"], revoked=k.get("revoked"),
                                        limits=dict(k.get("limits") or {}))
        self._cache = (mtime, keys)
        return keys

    def check(self, token: str | None) -> TeamKey | None:
        """The live key for a presented token, or None (unknown, malformed or revoked)."""
        if not token or not token.startswith(PREFIX) or len(token) > 200:
            return None
        digest = _digest(token)
        for stored, key in self._load().items():
            if hmac.compare_digest(stored, digest):
                return None if key.revoked else key
        return None

    def list(self) -> list[TeamKey]:
        return sorted(self._load().values(), key=lambda k: (k.team, k.created))

    def teams(self) -> dict[str, set[str]]:
        """team -> its adapters, over live keys."""
        out: dict[str, set[str]] = {}
        for k in self.list():
            if not k.revoked:
                out.setdefault(k.team, set()).update(k.adapters)
        return out

    # ------------------------------------------------------------------ write
    def _save(self, keys: list[TeamKey]) -> None:
        write_json_atomic(self.path, {"keys": [dict(asdict(k), adapters=list(k.adapters)) for k in keys]})
        try:
            self.path.chmod(0o600)
        except OSError:
            pass
        self._cache = None

    def add(self, team: str, adapters: list[str] | tuple[str, ...] = (), limits: dict | None = None) -> tuple[TeamKey, str]:
        """A new key for `team` (adapters default to the team's name). Returns the key and the token,
        which is not stored anywhere."""
        from copilot.adapters.registry import check_name

        check_name(team)
        names = tuple(check_name(a) for a in (adapters or (team,)))
        token = PREFIX + secrets.token_urlsafe(32)
        digest = _digest(token)
        key = TeamKey(id=digest[:10], team=team, adapters=names, sha256=digest, created=time.time(),
                      limits=dict(limits or {}))
        self._save([*self._load().values(), key])
        return key, token

    def revoke(self, team_or_id: str) -> list[TeamKey]:
        """Revoke one key (by id) or every live key of a team. Unknown: a UserInputError."""
        keys = list(self._load().values())
        hit = [k for k in keys if not k.revoked and (k.id == team_or_id or k.team == team_or_id)]
        if not hit:
            raise UserInputError(f"no live key with team or id {team_or_id!r} in {self.path}")
        now = time.time()
        ids = {k.id for k in hit}
        self._save([TeamKey(**{**asdict(k), "revoked": now}) if k.id in ids else k for k in keys])
        return hit
