"""Helpers of the team-service tests: a registry version written without torch, a front door listening on
a real port in a background thread, and one HTTP call."""

from __future__ import annotations

import asyncio
import json
import threading

import numpy as np


def publish_version(registry, name: str, *, seed: int = 0, base_sha: str = "b" * 64, activate: bool = True):
    """A small, valid adapter version (config + safetensors + manifest) published into `registry`."""
    from safetensors.numpy import save_file

    src = registry.root.parent / f"src-{name}-{seed}"
    src.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    save_file({"base_model.model.layers.0.q_proj.lora_A.weight": rng.standard_normal((4, 8)).astype(np.float32)},
              str(src / "adapter_model.safetensors"))
    (src / "adapter_config.json").write_text(json.dumps({"r": 4, "lora_alpha": 8, "peft_type": "LORA"}))
    man = registry.publish(name, src, {"name": name, "version": 0, "base_model": "qwen2.5-coder-0.5b",
                                       "base_model_sha256": base_sha, "dataset_fingerprint": "fp", "lora": {},
                                       "training": {"fim_orders": ["psm"]}, "prompt_format": "qwen",
                                       "weights_sha256": "", "created": ""})
    if activate:
        registry.promote(f"{name}@{man.version}", force=True)
    return man


class RunningFront:
    """A FrontDoor served by aiohttp on 127.0.0.1:<free port> in its own thread and event loop."""

    def __init__(self, front) -> None:
        from copilot.service.front import serve

        self.front = front
        self.port = None
        ready = threading.Event()
        self.loop = asyncio.new_event_loop()

        def on_ready(port):
            self.port = port
            ready.set()

        def run():
            asyncio.set_event_loop(self.loop)
            self.task = self.loop.create_task(serve(front, "127.0.0.1", 0, ready=on_ready))
            try:
                self.loop.run_until_complete(self.task)
            except asyncio.CancelledError:
                pass

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        assert ready.wait(20), "the front door did not start"
        self.url = f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.task.cancel)
        self.thread.join(10)


def request(url: str, *, key: str | None = None, body=None, method: str | None = None, raw: bytes | None = None,
            timeout: float = 30):
    """(status, parsed JSON or bytes, headers) of one HTTP call."""
    import urllib.error
    import urllib.request

    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    req = urllib.request.Request(url, data=data, headers=headers, method=method or ("POST" if data is not None else "GET"))
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            payload, status, hdrs = resp.read(), resp.status, dict(resp.headers)
    except urllib.error.HTTPError as exc:
        payload, status, hdrs = exc.read(), exc.code, dict(exc.headers)
    try:
        return status, json.loads(payload), hdrs
    except ValueError:
        return status, payload, hdrs


# ---------------------------------------------------------------------------- real adapters for the e2e test
WORD_RECIPE = """spm_share = 0.0
context = false
[train]
r = 8
alpha = 16
learning_rate = 3e-3
max_seq_len = 96
batch_tokens = 256
target_modules = ["q_proj", "v_proj", "o_proj"]
"""
WORD_STEPS = 5


def word_dataset(out, word: str):
    """FIM pairs whose every middle returns a string starting with `word`: an adapter trained on them
    completes `return "<word>-…"` where the base model writes real code."""
    from dataclasses import replace

    from helpers.train_fixtures import fim_pair, write_dataset

    rows = []
    for i in range(24):
        middle = f'return "{word}-{i % 3}"\n'
        rows.append(replace(fim_pair(i), middle=middle, completion=middle))
    return write_dataset(out, rows, rows[:4], fingerprint=f"fp-{word}")


def trained_word_adapter(real_home, word: str):
    """A LoRA of the embedded model trained (WORD_STEPS steps, ~1 min on 2 cores) to answer with `word`,
    as a registry version folder; kept under the shared test home so a rerun does not train again."""
    import hashlib
    import os
    import subprocess
    import sys
    from pathlib import Path

    key = hashlib.sha256(f"{WORD_RECIPE}{WORD_STEPS}{word}v1".encode()).hexdigest()[:12]
    cache = Path(real_home) / "service-e2e" / f"{word}-{key}"
    done = cache / "home" / "adapters" / word / "1"
    if (done / "manifest.json").is_file():
        return done
    home = cache / "home"
    home.mkdir(parents=True, exist_ok=True)
    models = home / "models"
    if not models.exists():
        (Path(real_home) / "models").mkdir(parents=True, exist_ok=True)
        models.symlink_to(Path(real_home) / "models", target_is_directory=True)
    (cache / "recipe.toml").write_text(WORD_RECIPE)
    word_dataset(cache / "ds", word)
    env = dict(os.environ, COPILOT_HOME=str(home), OMP_WAIT_POLICY="PASSIVE", HF_HUB_OFFLINE="1",
               HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    r = subprocess.run(check=False, args=[sys.executable, "-m", "copilot.cli.main", "train", "--data", str(cache / "ds"), "--name", word,
                        "--config", str(cache / "recipe.toml"), "--max-steps", str(WORD_STEPS), "--quiet"],
                       env=env, capture_output=True, text=True, timeout=1800)
    assert r.returncode == 0 and (done / "manifest.json").is_file(), r.stdout[-2000:] + r.stderr[-2000:]
    return done
