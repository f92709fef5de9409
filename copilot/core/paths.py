"""Where the product keeps its data. One root, overridable with COPILOT_HOME.

Layout under the root:
    models/<name>/           converted base models (transformers folders) + their .gguf
    adapters/<NAME>/<VER>/   the adapter registry
    datasets/                default place for mined pairs
    runs/                    nightly cycle reports
    feedback/                accept/reject logs from the language server
"""

from __future__ import annotations

import os
from pathlib import Path


def home() -> Path:
    env = os.environ.get("COPILOT_HOME")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".local" / "share"
    return base / "copilot"


def models_dir() -> Path:
    return home() / "models"


def adapters_dir() -> Path:
    return home() / "adapters"


def datasets_dir() -> Path:
    return home() / "datasets"


def runs_dir() -> Path:
    return home() / "runs"


def feedback_dir() -> Path:
    return home() / "feedback"


def user_config_file() -> Path:
    env = os.environ.get("COPILOT_CONFIG")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CONFIG_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".config"
    return base / "copilot" / "config.toml"


def set_offline_env() -> None:
    """Never reach a model hub; keep bitsandbytes' and torch's thread pools from fighting."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def usable_cores() -> int:
    """CPU cores this process may really use: the affinity mask, capped by a cgroup v2 CPU quota
    (containers often report the host's core count; native thread pools sized by it spin-wait)."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            n = min(n, max(1, -(-int(quota) // int(period))))
    except (OSError, ValueError):
        pass
    return max(1, n)
