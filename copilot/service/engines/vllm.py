"""vLLM as the engine on CUDA GPUs: the base model (a transformers folder) with peft adapters loaded as
they are, several at once (`--max-loras` on the GPU), picked per request by `"model": "<adapter>"`.

Adapters given at start come as `--lora-modules name=folder ...`; with VLLM_ALLOW_RUNTIME_LORA_UPDATING
(set in the engine's environment) a promotion loads the new version at run time
(`POST /v1/load_lora_adapter`) and the old one is unloaded once drained (`POST /v1/unload_lora_adapter`).
`--enable-prefix-caching` reuses the KV of shared prompt prefixes across requests.

vLLM runs in its own process, so it need not live in this project's venv: $COPILOT_VLLM names its `vllm`
command (vllm 0.33.0 pins torch 2.14 and transformers < 5.21, which do not install beside this
project's pins). Nothing here imports vllm or torch.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

from copilot.core.types import CopilotError, UserInputError
from copilot.service.engines.process import EngineProcess

ENV_BINARY = "COPILOT_VLLM"
NOT_INSTALLED = ("vLLM is not installed: run scripts/install-vllm.sh on a CUDA machine (it makes .venv-vllm; "
                 "vLLM's torch pin differs from ours), or set COPILOT_VLLM to a `vllm` command")
OWN_VENV = Path(__file__).resolve().parents[3] / ".venv-vllm" / "bin" / "vllm"  # scripts/install-vllm.sh
# vLLM accepts these LoRA ranks for --max-lora-rank (vllm.config.lora.MaxLoRARanks)
LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)


def find_binary() -> list[str] | None:
    """The command that runs vLLM's CLI: $COPILOT_VLLM, else `vllm` next to this Python or in .venv-vllm, else on PATH, else
    `python -m vllm.entrypoints.cli.main` when vllm is importable here. None when there is none."""
    env = os.environ.get(ENV_BINARY)
    if env:
        p = Path(env).expanduser()
        return [str(p)] if p.is_file() and os.access(p, os.X_OK) else None
    for here in (Path(sys.executable).parent / "vllm", OWN_VENV):
        if here.is_file() and os.access(here, os.X_OK):
            return [str(here)]
    found = shutil.which("vllm")
    if found:
        return [found]
    if importlib.util.find_spec("vllm") is not None:
        return [sys.executable, "-m", "vllm.entrypoints.cli.main"]
    return None


def available() -> tuple[bool, str]:
    """(True, "") when vLLM can run here: a vllm command and an NVIDIA driver. Never imports vllm or torch."""
    if find_binary() is None:
        env = os.environ.get(ENV_BINARY)
        return False, (f"{ENV_BINARY}={env} is not an executable file" if env else NOT_INSTALLED)
    if not Path("/proc/driver/nvidia/version").is_file():
        return False, "vLLM needs a CUDA GPU: no NVIDIA driver here (/proc/driver/nvidia/version is missing)"
    return True, ""


def lora_rank(folder: str | Path) -> int:
    """The rank `r` of a peft LoRA folder (its adapter_config.json)."""
    cfg = Path(folder) / "adapter_config.json"
    try:
        data = json.loads(cfg.read_text())
        ranks = [int(data["r"]), *(int(v) for v in (data.get("rank_pattern") or {}).values())]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UserInputError(f"{folder}: not a peft LoRA adapter ({cfg.name}: {exc})") from None
    return max(ranks)


def rank_slot(r: int) -> int:
    """The smallest --max-lora-rank vLLM accepts that holds rank r."""
    for slot in LORA_RANKS:
        if slot >= r:
            return slot
    raise UserInputError(f"LoRA rank {r} is above vLLM's largest ({LORA_RANKS[-1]})")


def command(base_model: str | Path, loras: Mapping[str, str | Path], *, host: str = "127.0.0.1", port: int = 8000,
            max_loras: int = 4, max_lora_rank: int = 16, served_name: str | None = None,
            max_cpu_loras: int | None = None, gpu_memory_utilization: float | None = None,
            max_model_len: int | None = None, binary: Iterable[str] | str = "vllm",
            extra: Iterable[str] = ()) -> list[str]:
    """The `vllm serve` command line. loras: {served name: peft folder} loaded at start."""
    cmd = [binary] if isinstance(binary, str) else list(binary)
    cmd += ["serve", str(base_model)]
    if served_name:
        cmd += ["--served-model-name", served_name]
    cmd += ["--enable-lora"]
    if loras:
        cmd += ["--lora-modules", *(f"{name}={path}" for name, path in loras.items())]
    cmd += ["--max-loras", str(max_loras), "--max-lora-rank", str(max_lora_rank)]
    if max_cpu_loras is not None:
        cmd += ["--max-cpu-loras", str(max_cpu_loras)]
    if gpu_memory_utilization is not None:
        cmd += ["--gpu-memory-utilization", str(gpu_memory_utilization)]
    if max_model_len is not None:
        cmd += ["--max-model-len", str(max_model_len)]
    cmd += ["--enable-prefix-caching", "--host", host, "--port", str(port)]
    return cmd + list(extra)


class Vllm(EngineProcess):
    """One `vllm serve` process: the base model and peft adapters, loadable and unloadable at run time."""

    name = "vllm"

    def __init__(self, base_model: str | Path, loras: Mapping[str, str | Path] | None = None, *,
                 served_name: str | None = None, host: str = "127.0.0.1", port: int = 0, max_loras: int = 4,
                 max_lora_rank: int | None = None, max_cpu_loras: int | None = None,
                 gpu_memory_utilization: float | None = None, max_model_len: int | None = None,
                 binary: Iterable[str] | str | None = None, log_path: str | Path | None = None,
                 start_timeout_s: float = 900.0, extra_args: Iterable[str] = ()) -> None:
        super().__init__(host=host, port=port, log_path=log_path, start_timeout_s=start_timeout_s)
        self.base_model = str(base_model)
        self.served_name = served_name or self.base_model
        self.loras: dict[str, Path] = {str(k): Path(v) for k, v in (loras or {}).items()}
        self.max_loras = max(int(max_loras), len(self.loras), 1)
        ranks = [lora_rank(p) for p in self.loras.values()]
        self.max_lora_rank = int(max_lora_rank) if max_lora_rank else rank_slot(max(ranks, default=16))
        self.max_cpu_loras, self.gpu_memory_utilization = max_cpu_loras, gpu_memory_utilization
        self.max_model_len = max_model_len
        self.binary = binary
        self.extra_args = list(extra_args)
        self._adapters: dict[str, int] = {}
        self._next_id = 1
        for key in self.loras:
            self._register(key)

    def _register(self, key: str) -> None:
        self._adapters[key] = self._next_id  # our id for the key; vLLM selects adapters by name, not by this
        self._next_id += 1

    # ------------------------------------------------------------------ the engine
    @property
    def adapters(self) -> dict[str, int]:
        return dict(self._adapters)

    def command(self) -> list[str]:
        binary = self.binary
        if binary is None:
            binary = find_binary()
            if binary is None:
                _ok, why = available()
                raise CopilotError(why or NOT_INSTALLED)
        return command(self.base_model, self.loras, host=self.host, port=self.port, max_loras=self.max_loras,
                       max_lora_rank=self.max_lora_rank,
                       served_name=self.served_name if self.served_name != self.base_model else None,
                       max_cpu_loras=self.max_cpu_loras, gpu_memory_utilization=self.gpu_memory_utilization,
                       max_model_len=self.max_model_len, binary=binary, extra=self.extra_args)

    def env(self) -> dict[str, str]:
        env = super().env()
        env["VLLM_ALLOW_RUNTIME_LORA_UPDATING"] = "True"
        return env

    def start(self) -> None:
        if self.binary is None:
            ok, why = available()
            if not ok:
                raise CopilotError(why)
        super().start()

    def load(self, name: str, path: str | Path) -> None:
        """Load the peft folder `path` as adapter `name` into the running engine."""
        r = lora_rank(path)
        if r > self.max_lora_rank:
            raise UserInputError(f"adapter {name} has LoRA rank {r}, above this engine's --max-lora-rank "
                                 f"{self.max_lora_rank}: restart it with a larger one")
        status, data = self._call("/v1/load_lora_adapter", {"lora_name": name, "lora_path": str(path)})
        if status != 200:
            raise CopilotError(f"vLLM could not load adapter {name} from {path}: HTTP {status}: {_text(data)}")
        self.loras[name] = Path(path)
        if name not in self._adapters:
            self._register(name)

    def unload(self, name: str) -> None:
        """Unload adapter `name` from the running engine."""
        status, data = self._call("/v1/unload_lora_adapter", {"lora_name": name})
        if status != 200:
            raise CopilotError(f"vLLM could not unload adapter {name}: HTTP {status}: {_text(data)}")
        self.loras.pop(name, None)
        self._adapters.pop(name, None)

    def _call(self, path: str, body: dict) -> tuple[int, bytes]:
        try:
            return self.post(path, body, timeout=300.0)
        except OSError as exc:
            raise CopilotError(f"vLLM at {self.base_url} did not answer {path}: {exc}") from None

    def upstream_body(self, body: dict, adapter: str | None) -> dict:
        """The client's body with `model` = the adapter's served name (None: the base's served name)."""
        out = dict(body)
        out["model"] = self.key_for(adapter) or self.served_name
        out.pop("lora", None)  # llama.cpp's field; vLLM selects by model
        return out


def _text(data: bytes, limit: int = 500) -> str:
    return data.decode("utf-8", "replace").strip()[:limit]
