"""peft LoRA -> llama.cpp LoRA GGUF conversion (copilot.lora_gguf), checked against the packaged base GGUF."""

import json
import math

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from copilot.core.types import UserInputError

pytestmark = pytest.mark.slow  # needs the packaged GGUF assembled (seconds; CI shares it via COPILOT_TEST_HOME)

P = "base_model.model.model.layers.{i}.{mod}.lora_{ab}.weight"


@pytest.fixture(scope="module")
def base_gguf(real_model_home):
    mp = pytest.MonkeyPatch()
    mp.setenv("COPILOT_HOME", str(real_model_home))
    from copilot.models.packaged import assemble_gguf

    try:
        yield assemble_gguf("qwen2.5-coder-0.5b")
    finally:
        mp.undo()


def write_adapter(d, tensors, **cfg):
    d.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(d / "adapter_model.safetensors"))
    conf = {"peft_type": "LORA", "r": 4, "lora_alpha": 8, "target_modules": ["q_proj", "down_proj"]}
    conf.update(cfg)
    (d / "adapter_config.json").write_text(json.dumps(conf))
    return d


def sample_tensors(r=4):
    g = torch.Generator().manual_seed(0)
    t = {}
    for i in (0, 23):
        t[P.format(i=i, mod="self_attn.q_proj", ab="A")] = torch.randn(r, 896, generator=g)
        t[P.format(i=i, mod="self_attn.q_proj", ab="B")] = torch.randn(896, r, generator=g)
        t[P.format(i=i, mod="mlp.down_proj", ab="A")] = torch.randn(r, 4864, generator=g)
        t[P.format(i=i, mod="mlp.down_proj", ab="B")] = torch.randn(896, r, generator=g)
    return t


def test_round_trip_names_shapes_alpha(tmp_path, base_gguf):
    import gguf

    from copilot.adapters.gguf_lora import convert

    tensors = sample_tensors()
    out = convert(write_adapter(tmp_path / "ad", tensors), base_gguf, tmp_path / "a.gguf")
    r = gguf.GGUFReader(str(out))
    assert r.fields["general.architecture"].contents() == "qwen2"
    assert r.fields["general.type"].contents() == "adapter"
    assert r.fields["adapter.type"].contents() == "lora"
    assert r.fields["adapter.lora.alpha"].contents() == 8.0
    got = {t.name: t for t in r.tensors}
    assert set(got) == {f"blk.{i}.{n}.weight.lora_{ab}" for i in (0, 23) for n in ("attn_q", "ffn_down") for ab in "ab"}
    a = got["blk.23.ffn_down.weight.lora_a"]
    assert [int(x) for x in a.shape] == [4864, 4]  # ggml order: (in, r)
    np.testing.assert_array_equal(np.asarray(a.data).reshape(4, 4864), tensors[P.format(i=23, mod="mlp.down_proj", ab="A")].numpy())
    b = got["blk.0.attn_q.weight.lora_b"]
    np.testing.assert_array_equal(np.asarray(b.data).reshape(896, 4), tensors[P.format(i=0, mod="self_attn.q_proj", ab="B")].numpy())
    assert not list(tmp_path.glob(".*tmp*"))


def test_rslora_alpha_is_mapped(tmp_path, base_gguf):
    import gguf

    from copilot.adapters.gguf_lora import convert

    out = convert(write_adapter(tmp_path / "ad", sample_tensors(), use_rslora=True), base_gguf, tmp_path / "a.gguf")
    alpha = gguf.GGUFReader(str(out)).fields["adapter.lora.alpha"].contents()
    assert math.isclose(alpha / 4, 8 / math.sqrt(4), rel_tol=1e-6)  # llama.cpp's alpha/r == rsLoRA's alpha/sqrt(r)


@pytest.mark.parametrize("case, message", [
    ("dora", "only plain LoRA"),
    ("embedding", "unexpected tensor"),
    ("unknown", "no matching tensor"),
    ("half", "only one of lora_A"),
])
def test_unsupported_adapters_are_refused(tmp_path, base_gguf, case, message):
    from copilot.adapters.gguf_lora import convert

    t = sample_tensors()
    cfg = {}
    if case == "dora":
        cfg["use_dora"] = True
    elif case == "embedding":
        t["base_model.model.model.embed_tokens.weight"] = torch.zeros(2, 2)
    elif case == "unknown":
        t["base_model.model.model.layers.0.self_attn.rotary.lora_A.weight"] = torch.zeros(4, 896)
    elif case == "half":
        del t[P.format(i=0, mod="mlp.down_proj", ab="B")]
    with pytest.raises(UserInputError, match=message):
        convert(write_adapter(tmp_path / "ad", t, **cfg), base_gguf, tmp_path / "a.gguf")
    assert not (tmp_path / "a.gguf").exists()
    assert not list(tmp_path.glob(".*tmp*"))


def test_cache_is_keyed_by_content(tmp_path, base_gguf, monkeypatch):
    from copilot.adapters.gguf_lora import cache_dir, cached_gguf_adapter

    monkeypatch.setenv("COPILOT_HOME", str(tmp_path / "home"))
    ad = write_adapter(tmp_path / "ad", sample_tensors())
    first = cached_gguf_adapter(ad, base_gguf)
    assert first.parent == cache_dir()
    mtime = first.stat().st_mtime_ns
    assert cached_gguf_adapter(ad, base_gguf) == first and first.stat().st_mtime_ns == mtime
    t = sample_tensors()
    t[P.format(i=0, mod="self_attn.q_proj", ab="B")] += 1
    write_adapter(ad, t)  # a new version of the weights converts to a new file
    assert cached_gguf_adapter(ad, base_gguf) != first


def test_merge_refuses_bad_inputs_and_a_failed_write_leaves_nothing(tmp_path, base_gguf, monkeypatch):
    """copilot.merge_gguf: a base GGUF passed as the adapter, or an adapter for tensors the base lacks, is a
    clear error; a write that fails midway leaves neither the merged file nor its temporary behind."""
    import gguf

    from copilot.adapters.gguf_lora import convert
    from copilot.adapters.gguf_merge import merge
    from copilot.core.types import CopilotError

    with pytest.raises(UserInputError, match="not a LoRA adapter GGUF"):
        merge(base_gguf, base_gguf, tmp_path / "m.gguf")
    bad = tmp_path / "bad.gguf"
    w = gguf.GGUFWriter(str(bad), "qwen2")
    w.add_type(gguf.GGUFType.ADAPTER)
    w.add_float32(gguf.Keys.Adapter.LORA_ALPHA, 8.0)
    w.add_tensor("blk.99.attn_q.weight.lora_a", np.zeros((4, 896), np.float32))
    w.add_tensor("blk.99.attn_q.weight.lora_b", np.zeros((896, 4), np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    with pytest.raises(UserInputError, match="blk.99.attn_q.weight"):
        merge(base_gguf, bad, tmp_path / "m.gguf")

    good = convert(write_adapter(tmp_path / "ad", sample_tensors()), base_gguf, tmp_path / "a.gguf")
    real_write = gguf.GGUFWriter.write_tensor_data
    calls = []

    def disk_full(self, *a, **k):
        calls.append(1)
        if len(calls) == 40:
            raise OSError(28, "No space left on device")
        return real_write(self, *a, **k)

    monkeypatch.setattr(gguf.GGUFWriter, "write_tensor_data", disk_full)
    with pytest.raises(CopilotError, match="No space left"):
        merge(base_gguf, good, tmp_path / "m.gguf")
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".gguf" or ".tmp-" in p.name) == ["a.gguf", "bad.gguf"]


def test_lora_weights_read_without_torch_match_safetensors(tmp_path):
    """The numpy reader gives the same float32 values as safetensors' torch loader for F32, F16 and BF16."""
    import torch
    from safetensors.torch import load_file, save_file

    from copilot.adapters.lora_weights import load_float32

    g = torch.Generator().manual_seed(0)
    tensors = {"a.lora_A.weight": torch.randn(4, 8, generator=g),
               "b.lora_B.weight": torch.randn(8, 4, generator=g).to(torch.bfloat16),
               "c.lora_A.weight": torch.randn(3, 5, generator=g).to(torch.float16)}
    f = tmp_path / "adapter_model.safetensors"
    save_file(tensors, str(f), metadata={"format": "pt"})
    ours = load_float32(f)
    ref = load_file(str(f))
    assert set(ours) == set(ref)
    for k, t in ref.items():
        assert ours[k].dtype.name == "float32" and ours[k].shape == tuple(t.shape)
        assert (ours[k] == t.float().numpy()).all(), k
    (tmp_path / "bad.safetensors").write_bytes(b"\x05")
    import pytest

    from copilot.core.types import UserInputError
    with pytest.raises(UserInputError, match="not a safetensors file"):
        load_float32(tmp_path / "bad.safetensors")
