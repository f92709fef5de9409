"""AdapterSlot: which LoRA adapter serves this workspace, hot-swapped between requests.

Called by the scheduler's worker thread before each model call (so never during a
generation). For a registry name it reads the active pointer (cheap: a directory listing and a
small JSON file); when the resolved NAME@VERSION differs from the loaded one it verifies and
loads the new version and unloads the old. A folder spec is loaded once. Failures fall back to
the base model with one warning per failing version (no retry storm).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

from lsp.engine_handle import one_line


class AdapterSlot:
    def __init__(self) -> None:
        self.key: str | None = None  # what the engine calls it (adapter= argument)
        self.ident: tuple[str, int | None] | None = None  # (name or folder, version)
        self.error: str | None = None
        self._failed: tuple[str, int | None] | None = None

    @property
    def name(self) -> str | None:
        return self.ident[0] if self.key and self.ident else None

    @property
    def version(self) -> int | None:
        return self.ident[1] if self.key and self.ident else None

    def reset(self) -> None:
        """A new engine: nothing is loaded in it."""
        self.key = self.ident = self._failed = None

    def ensure(self, engine: Any, spec: str, *, on_switch: Callable[[str], None],
               on_problem: Callable[[str, str], None]) -> str | None:
        if not spec:
            self._switch(engine, None, None, on_switch)
            return None
        if getattr(engine, "backend", None) == "remote":
            return self._ensure_remote(engine, spec, on_switch, on_problem)
        try:
            from copilot.adapters import registry
        except ImportError:  # no registry module: folders only
            registry = None
        is_folder = os.sep in spec or spec.startswith((".", "~")) or registry is None
        try:
            if is_folder:
                name, ident = Path(spec).name, (spec, None)
            else:
                name, version = registry.Registry().parse_spec(spec)
                ident = (name, version)
        except Exception as exc:  # noqa: BLE001 - unknown adapter, unreadable pointer...
            self._problem((spec, None), one_line(exc), on_problem)
            self._switch(engine, None, None, on_switch)
            return None
        if ident == self.ident and self.key in getattr(engine, "adapters", []):
            return self.key
        if ident == self._failed:
            return None
        try:
            path = Path(spec).expanduser() if is_folder else registry.resolve_adapter(f"{ident[0]}@{ident[1]}")
            key = engine.load_adapter(str(path), name=name)
        except Exception as exc:  # noqa: BLE001
            self._problem(ident, one_line(exc), on_problem)
            self._switch(engine, None, None, on_switch)
            return None
        self._switch(engine, key, ident, on_switch)
        return key

    REMOTE_RETRY_S = 10.0

    def _ensure_remote(self, engine: Any, spec: str, on_switch: Callable[[str], None],
                       on_problem: Callable[[str, str], None]) -> str | None:
        """backend = remote: the team service serves NAME's active version; the version shown follows what
        the service says it used. A refusal (or the service being down) is retried after REMOTE_RETRY_S."""
        import time

        name = spec.split("@", 1)[0]
        if self.key == name and name in engine.adapters:
            version = engine.adapter_version(name)
            if (name, version) != self.ident:
                self.ident = (name, version)
                on_switch(f"{name}@{version}" if version is not None else name)
            return self.key
        if self._failed == (name, None) and time.monotonic() - self.__dict__.get("_failed_at", 0.0) < self.REMOTE_RETRY_S:
            return None
        try:
            key = engine.load_adapter(name)
        except Exception as exc:  # noqa: BLE001 - not offered to this key, service down...
            self._failed_at = time.monotonic()
            self._problem((name, None), one_line(exc), on_problem)
            self._failed = (name, None)
            self._switch(engine, None, None, on_switch)
            return None
        self._switch(engine, key, (name, engine.adapter_version(key)), on_switch)
        return key

    def _switch(self, engine: Any, key: str | None, ident: tuple[str, int | None] | None,
                on_switch: Callable[[str], None]) -> None:
        old = self.key
        if ident == self.ident and key == old:
            return
        if old and old != key:
            try:
                engine.unload_adapter(old)
            except Exception:  # noqa: BLE001 - the new state is what matters
                pass
        self.key, self.ident = key, ident
        if key:
            self.error = self._failed = None
        label = f"{ident[0]}@{ident[1]}" if key and ident and ident[1] is not None else (key or "base model")
        on_switch(label)

    def _problem(self, ident: tuple[str, int | None], message: str, on_problem: Callable[[str, str], None]) -> None:
        if ident != self._failed:
            self._failed = ident
            self.error = message
            on_problem(ident[0], message)
