"""`copilot serve` put together: the base model's identity, the engines (copilot.service.engines) kept
current by the fleet, and the front door listening (HTTP or HTTPS) until Ctrl-C or SIGTERM."""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import signal
import ssl
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from copilot.core.settings import Settings
from copilot.core.types import UserInputError


@dataclass
class ServiceOptions:
    engine: str = "llama-server"  # llama-server | vllm
    host: str = "127.0.0.1"
    port: int = 8080
    replicas: int = 1
    parallel: int = 4
    threads: int = 0
    ctx_size: int = 0  # 0: 4096 per slot
    batch: int = 64  # llama-server tokens per decode step: a cancelled prompt read stops (and stays cached) within one
    poll_s: float = 5.0
    keys_file: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    requests_per_minute: int = 1200
    max_tokens: int = 1024
    log_requests: bool = True
    gpu_memory: float = 0.85


def base_identity(settings: Settings) -> tuple[Path, dict]:
    """(base GGUF, {"name", "sha256"}): what adapters are checked against, and what clients verify."""
    from copilot.adapters.gguf_files import file_sha256, gguf_for

    gguf = gguf_for(settings.model)
    return gguf, {"name": settings.model, "sha256": file_sha256(gguf)}


def make_factory(settings: Settings, opts: ServiceOptions, base_gguf: Path, log: Callable[[str], None]):
    """factory(loras: {"NAME@VERSION": peft folder}) -> an engine (not started) for the fleet."""
    from copilot.core import paths
    from copilot.core.paths import usable_cores

    if opts.engine == "vllm":
        from copilot.models.packaged import resolve_model
        from copilot.service.engines import vllm

        ok, why = vllm.available()
        if not ok:
            raise UserInputError(why)
        base_dir = resolve_model(settings.model)
        gpus = _gpu_count()
        if opts.replicas > max(gpus, 1):
            raise UserInputError(f"--replicas {opts.replicas}: this machine has {gpus} GPU(s); one vLLM replica per "
                                 "GPU (or run vLLM with tensor parallelism for a model that needs several)")
        made = itertools.count(0)

        class PinnedVllm(vllm.Vllm):
            """One replica per GPU: CUDA_VISIBLE_DEVICES names it."""

            gpu: int | None = None

            def env(self) -> dict[str, str]:
                env = super().env()
                if self.gpu is not None:
                    env["CUDA_VISIBLE_DEVICES"] = str(self.gpu)
                return env

        def make_vllm(loras: dict[str, Path]):
            n = next(made)
            eng = PinnedVllm(str(base_dir), loras, host="127.0.0.1", port=0, served_name=settings.model,
                             gpu_memory_utilization=opts.gpu_memory,
                             log_path=paths.home() / "service" / "logs" / f"vllm-{os.getpid()}-{n}.log")
            eng.gpu = n % gpus if opts.replicas > 1 else None
            return eng
        return make_vllm

    from copilot.adapters.gguf_lora import cached_gguf_adapter
    from copilot.service.engines import llama_server

    binary = llama_server.find_binary()
    if binary is None:
        raise UserInputError("llama.cpp's server (llama-server) is not installed: run scripts/install.sh "
                             "(it builds it from the pinned llama.cpp sources), or set COPILOT_LLAMA_SERVER")
    threads = opts.threads or max(1, usable_cores() // max(1, opts.replicas))
    logs = paths.home() / "service" / "logs"
    made = itertools.count(1)

    def make_llama(loras: dict[str, Path]):
        files = []
        for key, folder in loras.items():
            files.append((key, cached_gguf_adapter(folder, base_gguf)))  # converted once, cached by content
        return llama_server.LlamaServer(binary, base_gguf, files, host="127.0.0.1", port=0, threads=threads,
                                        parallel=opts.parallel, ctx_size=opts.ctx_size or 4096 * opts.parallel,
                                        log_path=logs / f"llama-server-{os.getpid()}-{next(made)}.log",
                                        extra_args=("--batch-size", str(opts.batch), "--ubatch-size", str(opts.batch)))
    return make_llama


def _gpu_count() -> int:
    """NVIDIA GPUs the driver lists (no torch import)."""
    d = Path("/proc/driver/nvidia/gpus")
    return len(list(d.iterdir())) if d.is_dir() else 0


def tls_context(opts: ServiceOptions) -> ssl.SSLContext | None:
    if not opts.tls_cert:
        return None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        ctx.load_cert_chain(opts.tls_cert, opts.tls_key)
    except (ssl.SSLError, OSError) as exc:
        raise UserInputError(f"cannot use --tls-cert/--tls-key: {exc}") from None
    return ctx


def build(settings: Settings, opts: ServiceOptions, say: Callable[[str], None]):
    """(fleet, front door), engines started."""
    from copilot.adapters.registry import Registry
    from copilot.service.fleet import Fleet
    from copilot.service.front import FrontDoor, Limits
    from copilot.service.keys import KeyStore

    keys = KeyStore(opts.keys_file)
    if not [k for k in keys.list() if not k.revoked]:
        say(f"note: no live keys in {keys.path}: every request is refused until you add one "
            "(copilot serve keys add TEAM --adapter NAME)")
    registry = Registry()
    base_gguf, base = base_identity(settings)
    factory = make_factory(settings, opts, base_gguf, say)
    fleet = Fleet(registry, keys, factory, replicas=opts.replicas, runtime_loading=opts.engine == "vllm",
                  poll_s=opts.poll_s, log=say)
    say(f"starting {opts.replicas} {opts.engine} engine(s) for {settings.model}…")
    fleet.start()
    front = FrontDoor(fleet, keys, registry, base, limits=Limits(requests_per_minute=opts.requests_per_minute,
                                                                  max_tokens=opts.max_tokens),
                      log_requests=opts.log_requests)
    return fleet, front


def run_service(settings: Settings, opts: ServiceOptions, say: Callable[[str], None] = print) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    sslctx = tls_context(opts)
    fleet, front = build(settings, opts, say)
    scheme = "https" if sslctx else "http"

    async def main() -> None:
        from copilot.service.front import serve

        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, task.cancel)
        await serve(front, opts.host, opts.port, ssl_context=sslctx,
                    ready=lambda port: say(f"copilot service on {scheme}://{opts.host}:{port} "
                                           f"(adapters: {', '.join(f'{n}@{v}' for n, v in fleet.served().items()) or 'none'})"))

    try:
        asyncio.run(main())
    except (KeyboardInterrupt, asyncio.CancelledError):
        pass
    finally:
        say("stopping engines…")
        fleet.stop()
