"""Which inference backend serves: llama.cpp on CPU when it is installed and the model has a GGUF,
else the transformers engine (the reference: training, evaluation, GPU).

settings.backend: "auto" (default) | "llama.cpp" | "transformers" | "remote" (copilot.serve.remote: the team
service; the prompt is still built here). A llama.cpp request that cannot be
honoured (not installed, a GPU device, a model without a GGUF) falls back to transformers and says why
through `log`; it never stops the editor from getting completions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from copilot.core.settings import Settings, load_settings

BACKENDS = ("auto", "llama.cpp", "transformers", "remote")


def _gpu_present() -> bool:
    """Cheap check without importing torch (an NVIDIA driver is loaded)."""
    return Path("/proc/driver/nvidia/version").exists()


def plan(settings: Settings, device: str = "auto") -> tuple[str, str]:
    """(backend to try first, why) — no loading."""
    want = settings.backend
    dev = device if device != "auto" else settings.device
    if want == "transformers":
        return "transformers", "backend = transformers in the settings"
    if want == "remote":
        return "remote", f"the team service at {settings.remote.url or '(remote.url not set)'}"
    if dev not in ("auto", "cpu"):
        return "transformers", f"device {dev} (llama.cpp here is the CPU backend)"
    if want == "auto" and dev == "auto" and _gpu_present():
        return "transformers", "a GPU is present"
    from copilot.serve.llama import available

    ok, why = available()
    if not ok:
        return "transformers", why
    return "llama.cpp", f"llama-cpp-python {why} on CPU"


def load_engine(model: str | Path | None = None, settings: Settings | None = None, device: str = "auto",
                progress=None, log: Callable[[str], None] | None = None):
    """Load the engine the settings ask for, falling back to transformers with a logged reason."""
    settings = settings or load_settings()
    backend, why = plan(settings, device)
    if backend == "remote":
        from copilot.serve.remote import RemoteEngine

        return RemoteEngine.load(model, settings=settings, log=log)
    if backend == "llama.cpp":
        from copilot.serve.llama import BackendUnavailable, LlamaEngine

        try:
            return LlamaEngine.load(model, settings=settings, device="cpu", progress=progress, log=log)
        except BackendUnavailable as exc:
            why = str(exc)
    if settings.backend == "llama.cpp" and log:
        log(f"llama.cpp backend unavailable ({why}); serving with transformers")
    from copilot.serve.hf import Engine

    return Engine.load(model, settings=settings, device=device, progress=progress, log=log)
