"""Shared test fixtures: an isolated data root, offline env, tiny models built from a config."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, monkeypatch):
    """Each test gets its own data root and user config location (never the developer's)."""
    monkeypatch.setenv("COPILOT_HOME", str(tmp_path / "copilot-home"))
    monkeypatch.setenv("COPILOT_CONFIG", str(tmp_path / "no-user-config.toml"))


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    from helpers.tiny import make_tiny_model

    return make_tiny_model(tmp_path_factory.mktemp("tiny-qwen"))


@pytest.fixture(scope="session")
def real_model_home(tmp_path_factory) -> Path:
    """A data root holding the converted embedded model, shared by all tests that need the real model.

    Uses $COPILOT_TEST_HOME when set (CI sets it so the one-minute conversion happens once)."""
    env = os.environ.get("COPILOT_TEST_HOME")
    return Path(env) if env else tmp_path_factory.mktemp("real-home")


def pytest_collection_modifyitems(config, items):
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except Exception:
        has_cuda = False
    skip_gpu = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords and not has_cuda:
            item.add_marker(skip_gpu)
