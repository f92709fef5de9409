"""The engines behind the front door, kept serving what the registry says is active.

What is served: every adapter a live team key names (`keys.KeyStore.teams`) that has an active
version in the registry, as `NAME@VERSION`, plus the base model.

How it stays current (`Fleet.tick`, every `poll_s` seconds in a background thread):
- an engine that can load adapters at run time (vLLM) loads a newly promoted version beside the old one,
  the routing switches to it, and the old one is unloaded once no request is using it;
- an engine that cannot (llama.cpp's server: a new LoRA file needs a restart) gets a new generation of
  replicas started beside the old one; once they answer /health the routing switches, and the old
  generation is stopped when its last in-flight request has finished (blue/green). Nothing in flight
  fails, and a promotion is live within one poll plus an engine start (a few seconds on CPU);
- a replica that died is restarted in place; until it answers, requests get a clear 503 at once.

Several replicas: `replicas` engines of the same generation. A request goes to a live replica that
served its adapter last (its KV and LoRA are warm there) unless another one is idler by
`AFFINITY_SLACK` requests.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from copilot.core.types import CopilotError
from copilot.service.engines import Engine


class EngineDown(CopilotError):
    """No live engine can take the request right now."""


class UnknownAdapter(CopilotError):
    """The adapter has no active version being served."""


# factory(loras: {key: peft folder}) -> a started-or-startable Engine
Factory = Callable[[dict[str, Path]], Engine]


@dataclass
class _Replica:
    engine: Engine
    inflight: int = 0
    restarts: int = 0
    down_since: float | None = None


@dataclass
class _Generation:
    served: dict[str, tuple[int, Path]]  # name -> (version, folder)
    replicas: list[_Replica] = field(default_factory=list)
    number: int = 0

    def key(self, name: str) -> str | None:
        v = self.served.get(name)
        return f"{name}@{v[0]}" if v else None


class Fleet:
    AFFINITY_SLACK = 2

    def __init__(self, registry, keys, factory: Factory, *, replicas: int = 1, runtime_loading: bool = False,
                 poll_s: float = 5.0, drain_timeout_s: float = 300.0, log: Callable[[str], None] = print) -> None:
        self.registry, self.keys, self.factory = registry, keys, factory
        self.n_replicas = max(1, int(replicas))
        self.runtime_loading = runtime_loading
        self.poll_s, self.drain_timeout_s, self.log = poll_s, drain_timeout_s, log
        self._lock = threading.RLock()
        self._gen: _Generation | None = None
        self._old: list[tuple[_Generation, float]] = []  # retired generations draining (since)
        self._unload: list[tuple[str, float]] = []  # runtime-loaded keys waiting to be unloaded
        self._affinity: dict[str | None, _Replica] = {}
        self._stop = threading.Event()
        self._heal_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._numbers = 0
        self.events: list[str] = []  # the last promotions/restarts, for /health

    # ------------------------------------------------------------------ what to serve
    def desired(self) -> dict[str, tuple[int, Path]]:
        out: dict[str, tuple[int, Path]] = {}
        names = sorted({a for adapters in self.keys.teams().values() for a in adapters})
        for name in names:
            try:
                version = self.registry.active(name)
            except CopilotError as exc:
                self._note(f"{name}: {exc}")
                continue
            if version is not None:
                out[name] = (version, self.registry.version_dir(name, version))
        return out

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Start the first generation (blocking: the service answers only once an engine does), then watch."""
        self._gen = self._start_generation(self.desired())
        self._thread = threading.Thread(target=self._watch, name="fleet-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            gens = ([self._gen] if self._gen else []) + [g for g, _ in self._old]
            self._gen, self._old = None, []
        for g in gens:
            for r in g.replicas:
                with contextlib.suppress(Exception):
                    r.engine.stop()

    def _start_generation(self, served: dict[str, tuple[int, Path]]) -> _Generation:
        self._numbers += 1
        gen = _Generation(served=served, number=self._numbers)
        loras = {f"{n}@{v}": d for n, (v, d) in served.items()}
        try:
            for _ in range(self.n_replicas):
                eng = self.factory(loras)
                eng.start()
                gen.replicas.append(_Replica(eng))
        except BaseException:
            for r in gen.replicas:
                with contextlib.suppress(Exception):
                    r.engine.stop()
            raise
        what = ", ".join(loras) or "base model only"
        self._note(f"generation {gen.number}: {len(gen.replicas)} replica(s) serving {what}")
        return gen

    def _watch(self) -> None:
        while not self._stop.wait(self.poll_s):
            try:
                self.tick()
            except Exception as exc:  # noqa: BLE001 - the watcher must outlive any one failure
                self._note(f"watch: {exc}")

    def tick(self) -> None:
        """One round: restart dead replicas, follow the registry, retire drained engines."""
        self._heal()
        self._follow(self.desired())
        self._retire()

    def _note(self, msg: str) -> None:
        self.log(msg)
        self.events = (self.events + [f"{time.strftime('%H:%M:%S')} {msg}"])[-20:]

    # ------------------------------------------------------------------ keeping it current
    def _heal(self) -> None:
        if not self._heal_lock.acquire(blocking=False):
            return  # another thread is restarting already
        try:
            self._heal_replicas()
        finally:
            self._heal_lock.release()

    def _heal_replicas(self) -> None:
        gen = self._gen
        if gen is None:
            return
        for r in gen.replicas:
            if r.engine.alive():
                r.down_since = None
                continue
            if r.down_since is None:
                r.down_since = time.time()
                self._note(f"an engine of generation {gen.number} stopped; restarting it")
            try:
                with contextlib.suppress(Exception):
                    r.engine.stop()
                r.engine.start()
                r.restarts += 1
                r.down_since = None
                self._note(f"engine of generation {gen.number} is back")
            except Exception as exc:  # noqa: BLE001 - tried again next tick
                self._note(f"engine restart failed: {exc}")

    def _follow(self, want: dict[str, tuple[int, Path]]) -> None:
        gen = self._gen
        if gen is None or want == gen.served:
            return
        if self.runtime_loading:
            self._follow_runtime(gen, want)
            return
        new = self._start_generation(want)
        with self._lock:
            self._old.append((gen, time.time()))
            self._gen = new
            self._affinity.clear()
        changed = [f"{n}@{v[0]}" for n, v in want.items() if gen.served.get(n) != v]
        self._note(f"now serving {', '.join(changed) or 'fewer adapters'}; generation {gen.number} drains")

    def _follow_runtime(self, gen: _Generation, want: dict[str, tuple[int, Path]]) -> None:
        for name, (version, folder) in want.items():
            key = f"{name}@{version}"
            for r in gen.replicas:
                if key not in r.engine.adapters:
                    r.engine.load(key, folder)  # type: ignore[attr-defined]
        with self._lock:
            old = {gen.key(n) for n in gen.served} - {f"{n}@{v}" for n, (v, _) in want.items()}
            gen.served = dict(want)
            self._unload += [(k, time.time()) for k in old if k]
        self._note(f"now serving {', '.join(f'{n}@{v}' for n, (v, _) in want.items()) or 'the base model only'}")

    def _retire(self) -> None:
        now = time.time()
        with self._lock:
            keep = []
            for gen, since in self._old:
                busy = sum(r.inflight for r in gen.replicas)
                if busy and now - since < self.drain_timeout_s:
                    keep.append((gen, since))
                    continue
                for r in gen.replicas:
                    with contextlib.suppress(Exception):
                        r.engine.stop()
                self._note(f"generation {gen.number} stopped")
            self._old = keep
            gen = self._gen
            pending, self._unload = self._unload, []
        for key, since in pending:
            if gen and any(r.inflight for r in gen.replicas) and now - since < self.drain_timeout_s:
                self._unload.append((key, since))
                continue
            for r in gen.replicas if gen else []:
                with contextlib.suppress(Exception):
                    r.engine.unload(key)  # type: ignore[attr-defined]

    # ------------------------------------------------------------------ routing
    @contextlib.contextmanager
    def lease(self, name: str | None) -> Iterator[tuple[Engine, str | None]]:
        """(engine, served adapter key) for a request to `name` (None: the base), counted in flight."""
        with self._lock:
            gen = self._gen
            if gen is None:
                raise EngineDown("the service is starting or stopping")
            key = None
            if name is not None:
                key = gen.key(name)
                if key is None:
                    raise UnknownAdapter(f"adapter {name!r} has no active version on this service")
            live = [r for r in gen.replicas if r.down_since is None]
            if not live:
                raise EngineDown("the inference engine is restarting; try again in a few seconds")
            best = min(live, key=lambda r: r.inflight)
            warm = self._affinity.get(name)
            pick = warm if warm in live and warm.inflight <= best.inflight + self.AFFINITY_SLACK else best
            self._affinity[name] = pick
            pick.inflight += 1
        try:
            yield pick.engine, key
        finally:
            with self._lock:
                pick.inflight -= 1

    def mark_down(self, engine: Engine) -> None:
        """A request could not reach `engine`: stop routing to it until the watcher has it back."""
        with self._lock:
            for r in self._gen.replicas if self._gen else []:
                if r.engine is engine and r.down_since is None and not engine.alive():
                    r.down_since = time.time()
        threading.Thread(target=self._heal, name="fleet-heal", daemon=True).start()

    def served(self) -> dict[str, int]:
        gen = self._gen
        return {n: v for n, (v, _) in gen.served.items()} if gen else {}

    def state(self) -> dict[str, Any]:
        gen = self._gen
        return {
            "generation": gen.number if gen else None,
            "replicas": [{"url": r.engine.base_url, "pid": getattr(r.engine, "pid", None), "alive": r.down_since is None,
                          "inflight": r.inflight, "restarts": r.restarts} for r in (gen.replicas if gen else [])],
            "draining": [g.number for g, _ in self._old],
            "adapters": {n: v for n, v in self.served().items()},
            "events": self.events[-5:],
        }
