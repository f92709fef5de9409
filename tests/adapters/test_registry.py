"""Adapter registry: atomic publish, active pointer, promote/rollback, integrity and base checks."""

from __future__ import annotations

import errno
import json
import shutil
from pathlib import Path

import pytest
from helpers.train_fixtures import home, save_tiny_adapter, tiny_model  # noqa: F401

from copilot.adapters import registry as R
from copilot.core.types import AdapterManifest, CopilotError, UserInputError


def manifest(base_sha: str = "base-sha", metrics: dict | None = None) -> AdapterManifest:
    return AdapterManifest(name="x", version=0, base_model="tiny", base_model_sha256=base_sha, dataset_fingerprint="fp",
                           lora={"r": 4}, training={}, prompt_format="qwen", weights_sha256="", created="",
                           metrics=metrics or {})


@pytest.fixture(scope="module")
def adapters(tiny_model, tmp_path_factory):  # noqa: F811
    d = tmp_path_factory.mktemp("adapters")
    return [save_tiny_adapter(tiny_model, d / f"a{i}", seed=i) for i in range(2)]


def test_publish_resolve_and_load_with_peft(home, adapters, tiny_model):  # noqa: F811
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    reg = R.Registry()
    m = reg.publish("team-a", adapters[0], manifest())
    assert (m.name, m.version, m.status) == ("team-a", 1, "candidate")
    vdir = home / "adapters" / "team-a" / "1"
    assert sorted(p.name for p in vdir.iterdir()) == ["adapter_config.json", "adapter_model.safetensors", "manifest.json"]
    assert m.weights_sha256 == R.sha256_file(adapters[0] / R.WEIGHTS)
    assert not list((home / "adapters" / "team-a").glob(".tmp-*"))
    # NAME alone = newest candidate when nothing is active; the folder loads with peft and changes outputs.
    path = R.resolve_adapter("team-a", base_fingerprint="base-sha")
    assert path == vdir
    ids = torch.tensor([[100, 200, 300, 400]])  # ordinary tokens (tiny.py zeroes the special ones)
    base = AutoModelForCausalLM.from_pretrained(str(tiny_model), dtype=torch.float32).eval()
    with torch.no_grad():
        ref = base(ids).logits
        peft_model = PeftModel.from_pretrained(base, str(path)).eval()
        out = peft_model(ids).logits
        with peft_model.disable_adapter():
            plain = peft_model(ids).logits
    assert not torch.allclose(out, ref)
    assert torch.allclose(plain, ref)
    assert R.verify_adapter(path, base_model_sha256="base-sha")["version"] == 1


def test_promote_rollback_and_statuses(home, adapters):  # noqa: F811
    reg = R.Registry()
    reg.publish("svc", adapters[0], manifest())
    reg.publish("svc", adapters[1], manifest())
    assert reg.versions("svc") == [1, 2]
    assert reg.resolve("svc").name == "2"  # newest candidate
    reg.promote("svc@1")
    assert reg.active("svc") == 1 and reg.resolve("svc").name == "1"
    reg.promote("svc@2")
    assert reg.pointer("svc")["previous"] == 1
    assert [reg.status("svc", v) for v in (1, 2)] == ["retired", "active"]
    assert json.loads((home / "adapters/svc/2/manifest.json").read_text())["status"] == "active"
    m = reg.rollback("svc")
    assert m.version == 1 and reg.active("svc") == 1 and reg.status("svc", 2) == "retired"
    with pytest.raises(UserInputError, match="no previous active"):
        reg.rollback("svc")
    with pytest.raises(UserInputError, match="is active"):
        reg.remove("svc@1")
    assert reg.remove("svc@2") == ["svc@2"] and reg.versions("svc") == [1]
    assert reg.resolve("svc@1").name == "1"


def test_promote_refuses_worse_candidate_on_same_test_split(home, adapters):  # noqa: F811
    reg = R.Registry()

    def ev(es: float, fp: str = "split-1") -> dict:
        return {"eval": {"test_fingerprint": fp, "adapter": {"fim": {"edit_sim": es, "exact_match": 10.0}}}}

    reg.publish("t", adapters[0], manifest(metrics=ev(50.0)))
    reg.promote("t@1")
    reg.publish("t", adapters[1], manifest(metrics=ev(40.0)))
    with pytest.raises(UserInputError, match=r"worse than active t@1 .*40\.00 < 50\.00.*--force"):
        reg.promote("t@2")
    assert reg.active("t") == 1
    reg.update_manifest("t", 2, metrics=ev(40.0, fp="another-split"))  # not comparable -> allowed
    reg.promote("t@2")
    assert reg.active("t") == 2
    reg.publish("t", adapters[0], manifest(metrics=ev(10.0, fp="another-split")))
    reg.promote("t@3", force=True)
    assert reg.active("t") == 3


def test_tampered_pickled_incomplete_and_foreign_base_refused(home, adapters, tmp_path):  # noqa: F811
    reg = R.Registry()
    reg.publish("sec", adapters[0], manifest(base_sha="base-sha"))
    w = home / "adapters/sec/1" / R.WEIGHTS
    data = bytearray(w.read_bytes())
    data[-1] ^= 0xFF
    w.write_bytes(bytes(data))
    with pytest.raises(CopilotError, match="sha256 mismatch"):
        R.resolve_adapter("sec")
    with pytest.raises(CopilotError, match="sha256 mismatch"):
        reg.promote("sec@1")

    reg.publish("sec", adapters[1], manifest(base_sha="base-sha"))
    with pytest.raises(UserInputError, match="trained for base model"):
        R.resolve_adapter("sec@2", base_fingerprint="some-other-base")

    pickled = tmp_path / "pickled"
    shutil.copytree(adapters[0], pickled)
    (pickled / "adapter_model.bin").write_bytes(b"\x80\x04not really")
    with pytest.raises(CopilotError, match="only safetensors"):
        R.resolve_adapter(str(pickled))

    partial = tmp_path / "partial"
    shutil.copytree(adapters[0], partial)
    (partial / R.WEIGHTS).unlink()
    with pytest.raises(CopilotError, match="incomplete"):
        R.resolve_adapter(str(partial))
    with pytest.raises(CopilotError, match="cannot publish"):
        reg.publish("sec", partial, manifest())


def test_unknown_adapter_lists_known_names(home, adapters):  # noqa: F811
    reg = R.Registry()
    reg.publish("alpha", adapters[0], manifest())
    reg.publish("beta", adapters[0], manifest())
    with pytest.raises(UserInputError, match=r"unknown adapter 'gamma'.*alpha, beta"):
        R.resolve_adapter("gamma")
    with pytest.raises(UserInputError, match=r"versions of alpha: \[1\]"):
        R.resolve_adapter("alpha@7")
    with pytest.raises(UserInputError, match="bad adapter name"):
        reg.publish("../evil", adapters[0], manifest())


def test_disk_full_while_publishing_leaves_registry_unchanged(home, adapters, monkeypatch):  # noqa: F811
    reg = R.Registry()
    reg.publish("d", adapters[0], manifest())
    reg.promote("d@1")
    before = sorted(str(p.relative_to(home)) for p in home.rglob("*") if ".lock" not in p.name)
    real_copy = shutil.copyfile

    def full(src, dst, *a, **k):
        if str(src).endswith(R.WEIGHTS):
            Path(dst).write_bytes(b"partial")
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_copy(src, dst, *a, **k)

    monkeypatch.setattr(R.shutil, "copyfile", full)
    with pytest.raises(CopilotError, match="disk full while saving adapter d@2; the registry is unchanged"):
        reg.publish("d", adapters[1], manifest())
    after = sorted(str(p.relative_to(home)) for p in home.rglob("*") if ".lock" not in p.name)
    assert after == before
    assert reg.versions("d") == [1] and reg.active("d") == 1


def test_training_lock_is_exclusive(home):  # noqa: F811
    reg = R.Registry()
    with reg.training_lock("busy"):
        with pytest.raises(CopilotError, match="another training of adapter 'busy' is running"):
            with reg.training_lock("busy"):
                pass
    with reg.training_lock("busy"):  # released after the first run
        pass
