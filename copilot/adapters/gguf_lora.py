"""peft LoRA adapter -> llama.cpp LoRA GGUF (the format of llama.cpp's convert_lora_to_gguf.py).

The file holds general.architecture of the base GGUF, general.type = "adapter", adapter.type = "lora",
adapter.lora.alpha, and for every adapted weight `<gguf tensor name>.lora_a` (r x in) and `.lora_b`
(out x r) in f32. Tensor names come from gguf-py's own name map for the base's architecture
(the code llama.cpp's converters use), and every name is checked against the base GGUF's tensors.
llama.cpp scales by alpha / r, as peft does (rsLoRA's alpha / sqrt(r) is mapped onto that).

Converted files are cached under $COPILOT_HOME/cache/lora-gguf/ by the sha256 of the adapter weights
and of the base GGUF, written to a temporary name and renamed: a reader never sees half a file.
"""

from __future__ import annotations

import functools
import json
import math
from pathlib import Path

from copilot.adapters.gguf_files import file_sha256, gguf_for
from copilot.adapters.lora_weights import load_float32
from copilot.core import paths
from copilot.core.files import atomic_path, sha256_file
from copilot.core.types import CopilotError, UserInputError

PREFIX = "base_model.model."


def base_info(base_gguf: Path) -> tuple[str, int, frozenset[str]]:
    """(architecture, block count, tensor names) of a base model GGUF."""
    st = Path(base_gguf).stat()
    return _base_info(str(base_gguf), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=4)
def _base_info(path: str, size: int, mtime: int) -> tuple[str, int, frozenset[str]]:
    import gguf

    r = gguf.GGUFReader(path)
    arch = r.fields["general.architecture"].contents()
    blocks = int(r.fields[f"{arch}.block_count"].contents())
    return arch, blocks, frozenset(t.name for t in r.tensors)


def convert(adapter_dir: str | Path, base_gguf: str | Path, out: str | Path) -> Path:
    """Write the LoRA GGUF of the peft adapter in `adapter_dir` for `base_gguf` to `out` (atomically)."""
    import gguf

    adapter_dir, base_gguf, out = Path(adapter_dir), Path(base_gguf), Path(out)
    cfg_file, weights = adapter_dir / "adapter_config.json", adapter_dir / "adapter_model.safetensors"
    if not cfg_file.is_file() or not weights.is_file():
        raise UserInputError(f"{adapter_dir}: not a peft LoRA adapter (adapter_config.json + adapter_model.safetensors)")
    cfg = json.loads(cfg_file.read_text())
    if cfg.get("peft_type", "LORA") != "LORA" or cfg.get("use_dora"):
        raise UserInputError(f"{adapter_dir}: only plain LoRA adapters convert to GGUF (found {cfg.get('peft_type')}"
                             f"{', DoRA' if cfg.get('use_dora') else ''})")
    if cfg.get("rank_pattern") or cfg.get("alpha_pattern"):
        raise UserInputError(f"{adapter_dir}: per-module rank/alpha patterns are not supported by the GGUF conversion")
    r, alpha = int(cfg["r"]), float(cfg["lora_alpha"])
    if cfg.get("use_rslora"):
        alpha = alpha * math.sqrt(r)  # llama.cpp applies alpha / r; rsLoRA means alpha / sqrt(r)
    arch, blocks, base_names = base_info(base_gguf)
    arch_enum = next((k for k, v in gguf.MODEL_ARCH_NAMES.items() if v == arch), None)
    if arch_enum is None:
        raise UserInputError(f"{base_gguf}: architecture {arch!r} is unknown to gguf-py")
    tmap = gguf.get_tensor_name_map(arch_enum, blocks)

    tensors = load_float32(weights)
    pairs: dict[str, dict[str, object]] = {}
    for key, t in tensors.items():
        if ".lora_A." in key:
            part = "a"
        elif ".lora_B." in key:
            part = "b"
        else:
            raise UserInputError(f"{adapter_dir}: unexpected tensor {key!r} (only lora_A/lora_B weights convert; "
                                 "adapters that train embeddings or extra modules need the transformers backend)")
        hf = key[len(PREFIX):] if key.startswith(PREFIX) else key
        hf = hf.split(".lora_")[0] + ".weight"
        name = tmap.get_name(hf, try_suffixes=(".weight", ".bias"))
        if name is None or name not in base_names:
            raise UserInputError(f"{adapter_dir}: adapter weight {hf!r} has no matching tensor in {base_gguf.name}")
        pairs.setdefault(name, {})[part] = t
    if not pairs:
        raise UserInputError(f"{adapter_dir}: the adapter has no LoRA weights")

    with atomic_path(out) as tmp:
        w = gguf.GGUFWriter(str(tmp), arch)
        w.add_type(gguf.GGUFType.ADAPTER)
        w.add_string(gguf.Keys.Adapter.TYPE, "lora")
        w.add_float32(gguf.Keys.Adapter.LORA_ALPHA, alpha)
        for name in sorted(pairs):
            ab = pairs[name]
            if "a" not in ab or "b" not in ab:
                raise UserInputError(f"{adapter_dir}: {name} has only one of lora_A / lora_B")
            a, b = ab["a"], ab["b"]
            if a.shape[0] != b.shape[1]:
                raise UserInputError(f"{adapter_dir}: {name}: lora_A {a.shape} and lora_B {b.shape} disagree on the rank")
            w.add_tensor(name + ".lora_a", a)
            w.add_tensor(name + ".lora_b", b)
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
    return out


def cache_dir() -> Path:
    return paths.home() / "cache" / "lora-gguf"


def cached_gguf_adapter(adapter_dir: str | Path, base_gguf: str | Path) -> Path:
    """The cached LoRA GGUF for this adapter + base (converted on first use; keyed by content)."""
    adapter_dir, base_gguf = Path(adapter_dir), Path(base_gguf)
    weights = adapter_dir / "adapter_model.safetensors"
    if not weights.is_file():
        raise UserInputError(f"{adapter_dir}: no adapter_model.safetensors")
    key = f"{sha256_file(weights)[:20]}-{file_sha256(base_gguf)[:12]}"
    out = cache_dir() / f"{key}.gguf"
    if out.is_file():
        return out
    return convert(adapter_dir, base_gguf, out)


def prepare_for_serving(adapter_dir: str | Path, base_model: str, log=None) -> Path | None:
    """At promotion time: convert the adapter for the llama.cpp backend when its base has a GGUF (the
    packaged models do), and build its merged model (adapter_merge), so the server's first request with
    the new version does not pay for it.
    Best effort: a failure is logged and the server converts (or falls back) on load."""
    try:
        base = gguf_for(base_model)
    except CopilotError:
        return None  # a transformers-only base: nothing to prepare
    try:
        lora = cached_gguf_adapter(adapter_dir, base)
        from copilot.core.settings import load_settings

        if load_settings().adapter_merge:
            from copilot.adapters.gguf_merge import cached_merged

            cached_merged(base, lora)
        return lora
    except (CopilotError, OSError, ValueError) as exc:
        if log:
            log(f"could not convert {adapter_dir} for llama.cpp ({exc}); it will be served by transformers")
        return None
