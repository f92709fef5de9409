"""Model sources: packaged assembly + verification, cache states, local folders, hub ids offline."""

import json
from collections import namedtuple

import pytest

from copilot.models import packaged as models
from copilot.core.types import CopilotError, UserInputError


@pytest.fixture
def fake_packaged(tmp_path, monkeypatch):
    """A packaged model whose parts are small files with a known hash (same code path as the real one)."""
    import hashlib
    import sys
    import types

    parts = []
    blob = b""
    for i in range(3):
        data = bytes([i]) * 1000 + b"part%d" % i
        f = tmp_path / f"part{i}.bin"
        f.write_bytes(data)
        blob += data
        mod = types.ModuleType(f"fake_part_{i}")
        mod.get_part_path = (lambda p=f: str(p))
        monkeypatch.setitem(sys.modules, f"fake_part_{i}", mod)
        parts.append(f)
    pm = models.PackagedModel(name="fake", hf_id="x/fake", modules=tuple(f"fake_part_{i}" for i in range(3)),
                              gguf_name="fake.gguf", sha256=hashlib.sha256(blob).hexdigest(), size=len(blob), pip_hint="pip install fake")
    monkeypatch.setitem(models.PACKAGED, "fake", pm)
    return pm, parts, blob


def test_assemble_concatenates_in_order_and_verifies(fake_packaged):
    pm, parts, blob = fake_packaged
    out = models.assemble_gguf("fake")
    assert out.read_bytes() == blob
    assert models.cache_state("fake") == "gguf only"


def test_corrupt_part_is_refused_and_leaves_nothing(fake_packaged):
    pm, parts, blob = fake_packaged
    parts[1].write_bytes(b"tampered")
    with pytest.raises(CopilotError, match="sha256"):
        models.assemble_gguf("fake")
    d = models.packaged_dir("fake")
    assert not (d / "fake.gguf").exists()
    assert not [p for p in d.iterdir() if p.name.startswith(".")]  # no temp file left behind


def test_missing_package_names_the_pip_command(monkeypatch):
    pm = models.PackagedModel(name="gone", hf_id="x/gone", modules=("no_such_module_xyz",), gguf_name="g.gguf",
                              sha256=None, size=None, pip_hint="pip install gone-part1")
    monkeypatch.setitem(models.PACKAGED, "gone", pm)
    with pytest.raises(UserInputError, match="pip install gone-part1"):
        models.resolve_model("gone")
    assert models.list_models()  # listing never raises


def test_half_finished_conversion_is_not_ready(fake_packaged):
    hf = models.converted_dir("fake")
    hf.mkdir(parents=True)
    (hf / "config.json").write_text("{}")
    assert models.cache_state("fake") == "corrupt"  # no marker: never mistaken for finished
    (hf / "model.safetensors").write_bytes(b"123")
    (hf / models._MARKER).write_text(json.dumps({"format": 1, "files": {"config.json": 2, "model.safetensors": 999}}))
    assert models.cache_state("fake") == "corrupt"  # marker present but a file has the wrong size
    (hf / models._MARKER).write_text(json.dumps({"format": 1, "files": {"config.json": 2, "model.safetensors": 3}}))
    assert models.cache_state("fake") == "ready"


def test_no_disk_space_is_a_clear_error(fake_packaged, monkeypatch):
    Usage = namedtuple("Usage", "total used free")
    monkeypatch.setattr(models.shutil, "disk_usage", lambda p: Usage(10, 10, 0))
    with pytest.raises(CopilotError, match="not enough disk space"):
        models.assemble_gguf("fake")


def test_local_folder_and_hub_id(tmp_path, tiny_model_dir):
    assert models.resolve_model(str(tiny_model_dir)) == tiny_model_dir
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserInputError, match="no config.json"):
        models.resolve_model(str(tmp_path / "empty"))
    with pytest.raises(UserInputError, match="not available offline"):
        models.resolve_model("bigcode/starcoder2-3b")
    with pytest.raises(UserInputError, match="unknown model"):
        models.resolve_model("nonsense-model")


def test_hub_id_found_in_local_cache(tmp_path, tiny_model_dir, monkeypatch):
    """A hub id already in the Hugging Face cache resolves without any network."""
    import shutil

    hub = tmp_path / "hub"
    snap = hub / "models--acme--tiny" / "snapshots" / "abc123"
    shutil.copytree(tiny_model_dir, snap)
    (hub / "models--acme--tiny" / "refs").mkdir()
    (hub / "models--acme--tiny" / "refs" / "main").write_text("abc123")
    monkeypatch.setenv("HF_HUB_CACHE", str(hub))
    import huggingface_hub.constants as c

    monkeypatch.setattr(c, "HF_HUB_CACHE", str(hub))
    assert models.resolve_model("acme/tiny") == snap
