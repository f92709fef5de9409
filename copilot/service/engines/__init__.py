"""The engines behind the team service: processes that speak the OpenAI `/v1/completions` API.

- `llama_server`: llama.cpp's own HTTP server (`llama-server`, built by scripts/install.sh) on CPU; every
  team's LoRA is loaded at start with scale 0 and a request turns its own on (`"lora": [...]` per request).
  A new adapter file needs a restart.
- `vllm`: vLLM on CUDA GPUs (`scripts/install-vllm.sh`: a venv of its own); adapters are peft folders, picked by `"model"`, and
  load and unload at run time.

Both satisfy `Engine` below, which is what the front door and the fleet (copilot.service.fleet) use:
start the process, know whether it lives, and rewrite a client's body into the engine's own way of
selecting an adapter. The engine calls use the standard library only (no torch, no HTTP client dependency).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable


@runtime_checkable
class Engine(Protocol):
    """One engine process serving the base model and some adapters ("NAME@VERSION" keys)."""

    name: str  # "llama.cpp" | "vllm"

    @property
    def base_url(self) -> str:
        """http://HOST:PORT of the engine (its OpenAI routes are under /v1)."""
        ...

    @property
    def adapters(self) -> dict[str, int]:
        """Served adapter key ("NAME@VERSION") -> the engine's id for it."""
        ...

    def start(self) -> None:
        """Spawn the process and return once it answers `GET /health` with 200 (CopilotError if it does not)."""
        ...

    def stop(self) -> None:
        """Terminate the process (kill it if it does not exit in time); a no-op when it is not running."""
        ...

    def alive(self) -> bool:
        """Whether the process is running."""
        ...

    def upstream_body(self, body: dict, adapter: str | None) -> dict:
        """The JSON body to send to the engine for a client's `/v1/completions` body asking for `adapter`
        (a served key; None = the base model). The client's body is not modified."""
        ...


__all__ = ["Engine"]
