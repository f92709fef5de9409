"""llama.cpp's own HTTP server (`llama-server`) as the engine on CPU, every team's LoRA in one process.

The binary is built by scripts/install.sh from the llama.cpp sources vendored in the pinned
llama-cpp-python sdist and installed as .venv/bin/llama-server (COPILOT_LLAMA_SERVER names another one).

Adapters: each LoRA GGUF (converted from its peft folder by copilot.adapters.gguf_lora, cached) is given
with `--lora FILE`, in order, so the i-th gets lora id i. A request selects its adapter with
`"lora": [{"id": i, "scale": s}, ...]`. In llama.cpp's server (tools/server/server-context.cpp,
`construct_lora_list` / `launch_slot_with_task`) a request with a non-empty `lora` list gets scale 0 for
every adapter it does not list, but a request with no (or an empty) `lora` list gets the *global* scales.
`--lora-init-without-apply` does not make those 0: it only skips applying the adapters when the context is
created, and the global scales stay 1.0 (`GET /lora-adapters` shows them), so such a request would run
with every adapter stacked. `start()` therefore sets the global scales to 0 (`POST /lora-adapters`), and
`upstream_body` always lists every loaded adapter with its scale: nothing global, nothing from an earlier
request, can leak into a request. The server runs requests with different LoRA settings in separate
batches, and a slot whose LoRA setting changes drops its cached prompt (no KV reuse across adapters; slots
are picked by prompt similarity, not by adapter). A selected LoRA costs decode speed (~1.6x slower on
CPU for the 0.5B model with a rank-16 adapter on every projection).

A new adapter file needs a restart (`POST /lora-adapters` changes scales only): the fleet
(copilot.service.fleet) starts a new engine for a promotion.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

from copilot.core.types import CopilotError, UserInputError
from copilot.service.engines.process import EngineProcess

ENV_BINARY = "COPILOT_LLAMA_SERVER"
BASE_ALIAS = "copilot-base"  # the name the server answers to (`--alias`): the `model` of every upstream body


def find_binary() -> Path | None:
    """$COPILOT_LLAMA_SERVER, else llama-server next to this Python (.venv/bin, where install.sh puts it),
    else on PATH. None if none is an executable file."""
    env = os.environ.get(ENV_BINARY)
    if env:
        p = Path(env).expanduser()
        return p if p.is_file() and os.access(p, os.X_OK) else None
    here = Path(sys.executable).parent / "llama-server"  # not resolved: a venv's python is a symlink
    if here.is_file() and os.access(here, os.X_OK):
        return here
    found = shutil.which("llama-server")
    return Path(found) if found else None


def require_binary() -> Path:
    binary = find_binary()
    if binary is not None:
        return binary
    env = os.environ.get(ENV_BINARY)
    if env:
        raise CopilotError(f"{ENV_BINARY}={env} is not an executable file")
    raise CopilotError("llama-server not found: run scripts/install.sh (it builds .venv/bin/llama-server; "
                       f"needs cmake and g++), or set {ENV_BINARY} to a llama-server binary")


@functools.lru_cache(maxsize=8)
def _help_text(binary: str, mtime_ns: int) -> str:
    try:
        res = subprocess.run([binary, "--help"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return res.stdout + res.stderr


def supports(binary: str | Path, flag: str) -> bool:
    """Whether this llama-server build knows `flag` (from its --help, read once per binary)."""
    try:
        mtime = Path(binary).stat().st_mtime_ns
    except OSError:
        return False
    text = _help_text(str(binary), mtime)
    return any(tok.strip(",") == flag for line in text.splitlines() for tok in line.split())


def command(binary: str | Path, model_gguf: str | Path, loras: Iterable[tuple[str, Path]], *,
            host: str = "127.0.0.1", port: int = 8080, threads: int = 0, parallel: int = 2, ctx_size: int = 4096,
            cache_reuse: int = 256, alias: str = BASE_ALIAS, flash_attn: str = "off", no_webui: bool = True,
            extra: Iterable[str] = ()) -> list[str]:
    """The llama-server command line.

    loras: (served key, LoRA GGUF) in lora-id order. threads: 0 = every usable core. parallel: slots
    (requests decoded at once). ctx_size: the server's -c, the context of all slots together (each slot
    gets ctx_size // parallel tokens of prompt + completion). cache_reuse: smallest shifted chunk of a slot's cached prompt reused for a new
    prompt (what llama.vim uses for FIM); 0 = off. flash_attn: "off" (default) as in the in-process engine
    (llama-cpp-python leaves it off): the server's default ("auto", on for CPU) changes the numerics enough
    to flip near-tied greedy tokens, and the service should complete what evaluation measured.
    `--metrics` exposes /metrics (llamacpp:tokens_predicted_total, llamacpp:n_decode_total, ...)."""
    if threads <= 0:
        from copilot.core.paths import usable_cores

        threads = usable_cores()
    cmd = [str(binary), "-m", str(model_gguf), "--alias", alias, "--host", host, "--port", str(port),
           "-t", str(threads), "-tb", str(threads), "-np", str(parallel), "-c", str(ctx_size),
           "--cache-reuse", str(cache_reuse), "-fa", flash_attn, "--metrics"]
    loras = list(loras)
    for key, path in loras:
        if "," in str(path):  # llama-server splits --lora values on commas
            raise UserInputError(f"adapter {key}: the LoRA file path {path} contains a comma")
        cmd += ["--lora", str(path)]
    if loras:
        cmd.append("--lora-init-without-apply")
    if no_webui:
        cmd.append("--no-webui")
    return cmd + list(extra)


class LlamaServer(EngineProcess):
    """One llama-server process: the base GGUF and LoRA GGUFs, each request choosing its adapter."""

    name = "llama.cpp"

    def __init__(self, binary: str | Path | None, model_gguf: str | Path,
                 loras: Iterable[tuple[str, Path]] | Mapping[str, Path] = (), *, host: str = "127.0.0.1",
                 port: int = 0, threads: int = 0, parallel: int = 2, ctx_size: int = 8192,
                 cache_reuse: int | None = None, alias: str = BASE_ALIAS, flash_attn: str = "off",
                 log_path: str | Path | None = None, start_timeout_s: float = 120.0,
                 extra_args: Iterable[str] = ()) -> None:
        super().__init__(host=host, port=port, log_path=log_path, start_timeout_s=start_timeout_s)
        pairs = list(loras.items()) if isinstance(loras, Mapping) else list(loras)
        self.model_gguf = Path(model_gguf)
        self.loras: list[tuple[str, Path]] = [(str(k), Path(p)) for k, p in pairs]
        keys = [k for k, _ in self.loras]
        if len(set(keys)) != len(keys):
            raise UserInputError(f"the same adapter is given twice: {keys}")
        self._adapters = {k: i for i, k in enumerate(keys)}
        self.binary = Path(binary) if binary else None
        self.threads, self.parallel, self.ctx_size = threads, parallel, ctx_size
        if cache_reuse is None:
            from copilot.core.settings import load_settings

            cache_reuse = load_settings().completion.cache_reuse
        self.cache_reuse = int(cache_reuse)
        self.alias = alias
        self.flash_attn = flash_attn
        self.extra_args = list(extra_args)

    # ------------------------------------------------------------------ building one
    @classmethod
    def for_adapters(cls, loras: Mapping[str, str | Path], model: str | None = None, binary: str | Path | None = None,
                     **kwargs) -> LlamaServer:
        """An engine for peft adapter folders ({served key "NAME@VERSION": folder}) on the base `model`
        (a packaged name or a .gguf; default: the settings' model), each converted to a LoRA GGUF (cached
        by content under $COPILOT_HOME/cache/lora-gguf)."""
        from copilot.adapters.gguf_files import NoGGUF, gguf_for
        from copilot.adapters.gguf_lora import cached_gguf_adapter

        if model is None:
            from copilot.core.settings import load_settings

            model = load_settings().model
        try:
            base = gguf_for(model)
        except NoGGUF as exc:
            raise CopilotError(f"llama-server needs a GGUF base model: {exc}") from None
        ggufs = [(key, cached_gguf_adapter(folder, base)) for key, folder in loras.items()]
        return cls(binary, base, ggufs, **kwargs)

    @classmethod
    def from_registry(cls, specs: Iterable[str], model: str | None = None, registry=None, **kwargs) -> LlamaServer:
        """An engine for registry adapters "NAME" (active, else newest) or "NAME@VERSION", served as
        "NAME@VERSION"."""
        from copilot.adapters.registry import Registry

        reg = registry or Registry()
        folders: dict[str, Path] = {}
        for spec in specs:
            name, version = reg.parse_spec(spec)
            folders[f"{name}@{version}"] = reg.resolve(f"{name}@{version}")
        return cls.for_adapters(folders, model=model, **kwargs)

    # ------------------------------------------------------------------ the engine
    @property
    def adapters(self) -> dict[str, int]:
        return dict(self._adapters)

    def command(self) -> list[str]:
        binary = self.binary or require_binary()
        return command(binary, self.model_gguf, self.loras, host=self.host, port=self.port, threads=self.threads,
                       parallel=self.parallel, ctx_size=self.ctx_size, cache_reuse=self.cache_reuse,
                       alias=self.alias, flash_attn=self.flash_attn, no_webui=supports(binary, "--no-webui"),
                       extra=self.extra_args)

    def start(self) -> None:
        """Spawn the server, wait for /health, then set every adapter's global scale to 0."""
        for _, path in [("base", self.model_gguf), *self.loras]:
            if not path.is_file():
                raise CopilotError(f"llama-server: no such file {path}")
        super().start()
        if self.loras:
            # --lora-init-without-apply only skips applying the adapters when the context is made: their
            # global scales stay 1.0, and a request without a `lora` list (or with an empty one) would run
            # with every adapter at once. Zero them, so such a request gets the base model.
            zero = [{"id": i, "scale": 0.0} for i in self._adapters.values()]
            try:
                status, data = self.post("/lora-adapters", zero, timeout=30.0)
            except OSError as exc:
                status, data = 0, str(exc).encode()
            if status != 200:
                self.stop()
                raise CopilotError(f"llama-server did not take the adapters' scales (POST /lora-adapters: "
                                   f"{status} {data[:300].decode('utf-8', 'replace')})")

    def upstream_body(self, body: dict, adapter: str | None) -> dict:
        """The client's /v1/completions body with `model` = the server's alias and every loaded adapter
        listed in `lora`, scale 1.0 for the requested one and 0.0 for the others (the base: all 0.0)."""
        key = self.key_for(adapter)
        out = dict(body)
        out["model"] = self.alias
        if self._adapters:
            out["lora"] = [{"id": i, "scale": 1.0 if k == key else 0.0} for k, i in self._adapters.items()]
        else:
            out.pop("lora", None)
        return out
