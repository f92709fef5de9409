"""One engine process: spawn it, wait for `GET /health`, stop it; small HTTP helpers for its API.

Both engines (llama_server, vllm) are subclasses of `EngineProcess`. The process runs in its own process
group (vLLM starts worker processes of its own: `stop()` ends the whole group) with its output in a log
file, whose tail goes into the error when it exits or does not become healthy in time. Processes still
running when Python exits are stopped then.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
import weakref
from pathlib import Path
from typing import Any

from copilot.core.types import CopilotError, UserInputError

_LIVE: weakref.WeakSet[EngineProcess] = weakref.WeakSet()


@atexit.register
def _stop_all() -> None:  # pragma: no cover - runs at interpreter exit
    for proc in list(_LIVE):
        with contextlib.suppress(Exception):
            proc.stop(timeout_s=5.0)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on `host` right now (the OS picks it)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def tail(path: Path | None, lines: int = 25) -> str:
    if path is None:
        return ""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 16384))
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def http(method: str, url: str, body: Any = None, timeout: float = 10.0) -> tuple[int, bytes]:
    """(status, response bytes) of one HTTP request with an optional JSON body; an HTTP error status is
    returned, not raised. OSError (connection refused, timeout) propagates."""
    data = None if body is None else json.dumps(body).encode("utf-8")
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json"} if data is not None else {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def parse_metrics(text: str) -> dict[str, float]:
    """Prometheus text exposition -> {name (with labels as written): value}; comments skipped."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, _, value = line.rpartition(" ")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            continue
    return out


class EngineProcess:
    """Base of the engines: a command line, an environment, a log file and the HTTP address."""

    name = "engine"
    health_path = "/health"

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, log_path: str | Path | None = None,
                 start_timeout_s: float = 120.0) -> None:
        self.host = host
        self.port = int(port) or free_port(host)
        self.log_path = Path(log_path) if log_path else None
        self.start_timeout_s = float(start_timeout_s)
        self._proc: subprocess.Popen | None = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ what subclasses supply
    def command(self) -> list[str]:
        raise NotImplementedError

    def env(self) -> dict[str, str]:
        return dict(os.environ)

    # ------------------------------------------------------------------ process
    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        if host in ("0.0.0.0", "[::]"):
            host = "127.0.0.1"
        return f"http://{host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def log_tail(self, lines: int = 25) -> str:
        return tail(self.log_path, lines)

    def start(self) -> None:
        """Spawn the engine and wait until `GET /health` answers 200 (CopilotError, with the tail of its log,
        if it exits first or start_timeout_s passes; the process is stopped then)."""
        with self._lock:
            if self.alive():
                return
            cmd = self.command()
            if self.log_path is None:
                fd, name = tempfile.mkstemp(prefix=f"copilot-{self.name.replace('.', '')}-{self.port}-", suffix=".log")
                os.close(fd)
                self.log_path = Path(name)
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.log_path, "ab") as log:
                try:
                    self._proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                                  env=self.env(), start_new_session=True)
                except OSError as exc:
                    raise CopilotError(f"cannot start {self.name} ({cmd[0]}): {exc}") from None
            _LIVE.add(self)
        deadline = time.monotonic() + self.start_timeout_s
        while True:
            code = self._proc.poll()
            if code is not None:
                raise CopilotError(f"{self.name} exited with code {code} while starting "
                                   f"(log {self.log_path}):\n{self.log_tail()}")
            with contextlib.suppress(OSError):
                status, _ = http("GET", self.base_url + self.health_path, timeout=2.0)
                if status == 200:
                    return
            if time.monotonic() > deadline:
                self.stop()
                raise CopilotError(f"{self.name} did not become healthy within {self.start_timeout_s:.0f} s "
                                   f"(log {self.log_path}):\n{self.log_tail()}")
            time.sleep(0.2)

    def stop(self, timeout_s: float = 10.0) -> None:
        """SIGTERM to the engine's process group, SIGKILL after timeout_s; a no-op when it is not running."""
        with self._lock:
            proc, self._proc = self._proc, None
            _LIVE.discard(self)
        if proc is None:
            return
        if proc.poll() is None:
            self._signal(proc, signal.SIGTERM)
            try:
                proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self._signal(proc, signal.SIGKILL)
                proc.wait(timeout=10)
        # workers the engine started may outlive it: end what is left of its group
        self._signal(proc, signal.SIGKILL)

    @staticmethod
    def _signal(proc: subprocess.Popen, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)  # start_new_session: the group id is the engine's pid

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # ------------------------------------------------------------------ adapters
    _adapters: dict[str, int]  # served key "NAME@VERSION" -> the engine's id (set by each subclass)

    def key_for(self, adapter: str | None) -> str | None:
        """The served key for a request's adapter: a served "NAME@VERSION", or a NAME served in exactly one
        version; None/"" = the base model. UserInputError otherwise."""
        if not adapter:
            return None
        if adapter in self._adapters:
            return adapter
        versions = [k for k in self._adapters if k.partition("@")[0] == adapter]
        if len(versions) == 1:
            return versions[0]
        served = ", ".join(self._adapters) or "none (base model only)"
        raise UserInputError(f"adapter '{adapter}' is not served by this engine; served: {served}")

    # ------------------------------------------------------------------ HTTP
    def get(self, path: str, timeout: float = 10.0) -> tuple[int, bytes]:
        return http("GET", self.base_url + path, timeout=timeout)

    def post(self, path: str, body: Any, timeout: float = 60.0) -> tuple[int, bytes]:
        return http("POST", self.base_url + path, body, timeout=timeout)

    def metrics(self) -> dict[str, float]:
        """The engine's Prometheus `/metrics`, parsed ({} when the endpoint is off)."""
        status, data = self.get("/metrics")
        return parse_metrics(data.decode("utf-8", "replace")) if status == 200 else {}
