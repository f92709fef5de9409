"""The remote backend (`backend = "remote"`): completions and explanations from the team service
(`copilot serve`), with the prompt built here exactly as the local engines build it.

The prompt (FIM order, sticky window, other files' snippets, repository context) is made by BaseEngine
with the base model's own tokenizer (llama.cpp's vocabulary only: no weights are loaded) and sent as
token ids to the service's OpenAI-compatible `/v1/completions`, streamed, with the team's adapter as
`model`. Our stop rules read the stream and close it as soon as they have seen enough; so do a newer
keystroke and `$/cancelRequest` (the `cancel` event). Closing the connection stops the generation on
the service.

The service down, slow or refusing: the completion is empty within `remote.timeout_ms`, never a hang,
and `problem` says why (the language server shows it in `copilot.status` and the editor's status line).
Token healing needs the first tokens constrained, which an OpenAI endpoint cannot do: it is off here.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path

from copilot.core.settings import Settings, load_settings
from copilot.core.types import CopilotError, UserInputError
from copilot.prompts.formats import detect_fim
from copilot.serve.base import BaseEngine

KEY_ENV = "COPILOT_REMOTE_API_KEY"
LISTING_TTL_S = 30.0


def api_key(settings: Settings) -> str:
    f = settings.remote.api_key_file
    if f:
        try:
            key = Path(f).expanduser().read_text().strip()
        except OSError as exc:
            raise UserInputError(f"remote.api_key_file {f}: {exc.strerror or exc}") from None
        if key:
            return key
    key = os.environ.get(KEY_ENV, "").strip()
    if not key:
        raise UserInputError(f"backend = remote needs your team's API key: set remote.api_key_file or {KEY_ENV}")
    return key


class ServiceError(CopilotError):
    """The team service did not give a usable answer."""


class Service:
    """A small client of the team service: JSON calls and the streamed completion."""

    def __init__(self, url: str, key: str, timeout_s: float) -> None:
        u = urllib.parse.urlsplit(url)
        if u.scheme not in ("http", "https") or not u.hostname:
            raise UserInputError(f"remote.url {url!r} is not an http(s) URL")
        self.url, self.key, self.timeout_s = url.rstrip("/"), key, timeout_s
        self._u = u
        self.last_served: str | None = None

    def _conn(self) -> http.client.HTTPConnection:
        cls = http.client.HTTPSConnection if self._u.scheme == "https" else http.client.HTTPConnection
        return cls(self._u.hostname, self._u.port, timeout=self.timeout_s)

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}", "Content-Type": "application/json"}

    def get_json(self, path: str) -> dict:
        conn = self._conn()
        try:
            conn.request("GET", self._u.path.rstrip("/") + path, headers=self._headers())
            resp = conn.getresponse()
            data = resp.read()
        except (OSError, http.client.HTTPException) as exc:
            raise ServiceError(f"team service {self.url} unreachable: {_reason(exc)}") from None
        finally:
            conn.close()
        if resp.status != 200:
            raise ServiceError(_error_text(resp.status, data))
        return json.loads(data)

    def stream(self, body: dict, cancel: threading.Event | None, on_chunk: Callable[[dict], bool],
               first_timeout_s: float | None = None) -> str:
        """POST a streamed completion; `on_chunk(choice)` per event returns False to stop (closes the
        connection). Returns "cancelled", "stopped" (by on_chunk) or the service's finish reason.
        `first_timeout_s` bounds the wait for the first event (a long prompt's read), timeout_s the rest."""
        conn = self._conn()
        conn.timeout = first_timeout_s or self.timeout_s
        done = threading.Event()
        state = {"cancelled": False}

        def watch() -> None:  # a cancel closes the socket under the blocked read
            if cancel is not None:
                while not done.is_set():
                    if cancel.wait(0.02):
                        state["cancelled"] = True
                        _shut(conn)
                        return
        threading.Thread(target=watch, name="remote-cancel", daemon=True).start()
        try:
            conn.request("POST", self._u.path.rstrip("/") + "/v1/completions", body=json.dumps(body),
                         headers=self._headers())
            resp = conn.getresponse()
            if resp.status != 200:
                raise ServiceError(_error_text(resp.status, resp.read()))
            self.last_served = resp.getheader("X-Copilot-Served")  # NAME@VERSION the service used
            finish = "length"
            first = True
            while True:
                line = resp.readline()
                if not line:
                    break
                line = line.strip()
                if not line.startswith(b"data:"):
                    continue
                payload = line[5:].strip()
                if payload == b"[DONE]":
                    break
                if first and conn.sock is not None:
                    conn.sock.settimeout(self.timeout_s)
                    first = False
                choice = (json.loads(payload).get("choices") or [{}])[0]
                if not on_chunk(choice):
                    return "stopped"
                finish = choice.get("finish_reason") or finish
            return finish
        except (OSError, http.client.HTTPException, ValueError) as exc:
            if state["cancelled"] or (cancel is not None and cancel.is_set()):
                return "cancelled"
            raise ServiceError(f"team service {self.url} unreachable: {_reason(exc)}") from None
        finally:
            done.set()
            _shut(conn)


def _shut(conn: http.client.HTTPConnection) -> None:
    sock = conn.sock
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
    conn.close()


def _reason(exc: BaseException) -> str:
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return "timed out"
    return str(exc) or exc.__class__.__name__


def _error_text(status: int, data: bytes) -> str:
    try:
        message = json.loads(data).get("error", {}).get("message")
    except (ValueError, AttributeError):
        message = None
    return f"team service answered HTTP {status}: {message or data[:200].decode('utf-8', 'replace')}"


class RemoteEngine(BaseEngine):
    backend = "remote"
    adapter_mode = "applied by the team service"
    supports_healing = False

    def __init__(self, service: Service, tokenizer, *, model_name: str, base_sha256: str | None, settings: Settings) -> None:
        self.service = service
        self.tokenizer = tokenizer
        self.model_name = model_name
        self.base_sha256 = base_sha256
        self.settings = settings
        self.device = "remote"
        self.lock = threading.RLock()
        self.fim = detect_fim(tokenizer)
        self.fim_family = self.fim.family if self.fim else None
        self._stop_strings = tuple(self.fim.stop_tokens) if self.fim else ()
        self._adapters: dict[str, str] = {}
        self._offered: dict[str, str] = {}  # loaded key -> the adapter name the service knows it by
        self._adapter_meta: dict[str, dict] = {}
        self._current: str | None = None
        self._listing: tuple[float, dict] | None = None
        self.problem: str | None = None  # why the last request got nothing from the service
        self.stats = {"requests": 0, "failed": 0}

    @classmethod
    def load(cls, model: str | Path | None = None, settings: Settings | None = None, log=None, **_) -> RemoteEngine:
        settings = settings or load_settings()
        if not settings.remote.url:
            raise UserInputError("backend = remote needs remote.url (the team service, e.g. http://copilot:8080)")
        service = Service(settings.remote.url, api_key(settings), settings.remote.timeout_ms / 1000)
        spec = str(model or settings.model)
        from copilot.adapters.gguf_files import file_sha256, gguf_for

        try:
            import llama_cpp
        except ImportError:
            raise CopilotError("backend = remote reads the base model's vocabulary with llama-cpp-python, which is "
                               "not installed here (scripts/install.sh builds it)") from None
        from copilot.serve.llama_tokenizer import LlamaTokenizer

        path = gguf_for(spec)
        llm = llama_cpp.Llama(model_path=str(path), vocab_only=True, verbose=False)
        eng = cls(service, LlamaTokenizer(llm), model_name=spec, base_sha256=file_sha256(path), settings=settings)
        try:
            base = eng.listing(force=True).get("base") or {}
        except ServiceError as exc:
            eng.problem = str(exc)
            if log:
                log(f"{exc}; completions stay empty until it answers")
        else:
            if base.get("sha256") and base["sha256"] != eng.base_sha256:
                raise UserInputError(f"the team service serves base model {base.get('name')!r}, not this machine's "
                                     f"{spec!r}: set `model` to the service's base")
        return eng

    # ------------------------------------------------------------------ adapters: what the service offers
    def listing(self, force: bool = False) -> dict:
        now = time.monotonic()
        if force or self._listing is None or now - self._listing[0] > LISTING_TTL_S:
            self._listing = (now, self.service.get_json("/v1/adapters"))
        return self._listing[1]

    def load_adapter(self, path_or_name: str, name: str | None = None) -> str:
        """A team adapter by name (the service serves its active version)."""
        want = str(path_or_name).split("@", 1)[0]
        offered = {a["name"]: a for a in self.listing(force=True).get("adapters", []) if a.get("active")}
        if want not in offered:
            raise UserInputError(f"the team service offers this key no adapter {want!r}; "
                                 f"it offers: {', '.join(sorted(offered)) or 'none'}")
        key = name or want
        self._adapters[key] = f"{self.service.url} ({want})"
        self._offered[key] = want
        self._adapter_meta[key] = offered[want].get("manifest") or {}
        return key

    def unload_adapter(self, name: str) -> None:
        self._adapters.pop(name, None)
        self._offered.pop(name, None)
        self._adapter_meta.pop(name, None)

    def adapter_version(self, name: str) -> int | None:
        """The version the service used for the last request (its answer says), else its listing's active one."""
        served = self.service.last_served or ""
        if served.startswith(f"{name}@") and served.split("@", 1)[1].isdigit():
            return int(served.split("@", 1)[1])
        try:
            for a in self.listing().get("adapters", []):
                if a["name"] == name and a.get("active"):
                    if a.get("manifest"):
                        self._adapter_meta[name] = a["manifest"]
                    return int(a["version"])
        except ServiceError:
            pass
        return self._adapter_meta.get(name, {}).get("version")

    def _model(self) -> str:
        """The `model` of a request: the current adapter's name on the service, or the base."""
        return self._offered.get(self._current, self._current) if self._current else "base"

    def _adapter_ctx(self, adapter: str | None):
        self._current = adapter
        return nullcontext()

    # ------------------------------------------------------------------ reading a new place ahead
    def _warm(self, ids: list[int], *, cache_key: tuple, cancel: threading.Event | None,
              keep_warming: Callable[[], bool] | None) -> int:
        """The cursor came to rest at a new place (copilot/cursorMoved): have the service read the prompt up to
        the cursor's line into its prompt cache now (a 1-token request), so the first pause there re-reads
        only the line and the suffix. A keystroke cancels it; what the engine read by then stays cached."""
        body = {"model": self._model(), "prompt": list(ids), "max_tokens": 1, "temperature": 0, "stream": True,
                "cache_prompt": True}
        try:
            finish = self.service.stream(body, cancel, lambda choice: False,
                                         first_timeout_s=max(30.0, self.service.timeout_s))
        except ServiceError as exc:
            self.problem = str(exc)
            return 0
        self.stats["warmed"] = self.stats.get("warmed", 0) + (len(ids) if finish != "cancelled" else 0)
        return len(ids) if finish != "cancelled" else 0

    # ------------------------------------------------------------------ generation
    def _generate(self, ids, *, max_new_tokens, cache_key, should_stop=None, on_text=None, cancel=None,
                  repetition_penalty=1.0, warm_until=0, keep_warming=None, constraint=None):
        adapter = self._current
        body = {"model": self._model(), "prompt": list(ids), "max_tokens": int(max_new_tokens), "temperature": 0,
                "stream": True, "cache_prompt": True}
        if repetition_penalty != 1.0:
            body["repeat_penalty"] = repetition_penalty  # llama.cpp's name; vLLM's is repetition_penalty
            body["repetition_penalty"] = repetition_penalty
        text = ""
        emitted = ""
        stopped = {"rule": False}

        def on_chunk(choice: dict) -> bool:
            nonlocal text, emitted
            text += choice.get("text") or ""
            if on_text is not None and text != emitted:
                on_text(text[len(emitted):])
                emitted = text
            if should_stop is not None and text and should_stop(self.tokenizer.encode(text), text):
                stopped["rule"] = True
                return False
            return True

        self.stats["requests"] += 1
        try:
            # An explanation's prompt is long (cache_key None): its first token may take a few seconds.
            first = None if cache_key is not None else max(30.0, self.service.timeout_s)
            finish = self.service.stream(body, cancel, on_chunk, first_timeout_s=first)
        except ServiceError as exc:
            self.stats["failed"] += 1
            self.problem = str(exc)
            if self.settings.remote.fallback and not (cancel is not None and cancel.is_set()):
                return self._local_generate(adapter, ids, max_new_tokens=max_new_tokens, cache_key=cache_key,
                                            should_stop=should_stop, on_text=on_text, cancel=cancel,
                                            repetition_penalty=repetition_penalty)
            return [], "unavailable"
        self.problem = None
        out = self.tokenizer.encode(text) if text else []
        if finish == "cancelled":
            return out, "cancelled"
        if stopped["rule"]:
            return out, "rule"
        return out, "eos" if finish == "stop" else "length"

    # ------------------------------------------------------------------ fallback: the local engine
    _local = None

    def _local_generate(self, adapter: str | None, ids, **kw):
        """remote.fallback: the same prompt (same base model, same token ids) on the local llama.cpp engine,
        with the adapter's local copy (`copilot adapters pull`) when there is one, else the base."""
        if self._local is None:
            from copilot.serve.llama import LlamaEngine

            self._local = LlamaEngine.load(self.model_name, settings=self.settings, device="cpu")
        local = self._local
        name = None
        if adapter:
            try:
                name = local.load_adapter(adapter) if adapter not in local.adapters else adapter
            except CopilotError:
                name = None
        self.problem = (self.problem or "team service unreachable") + "; served by the local engine"
        with local.lock, local._adapter_ctx(name):
            return local._generate(ids, **kw)
