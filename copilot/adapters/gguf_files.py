"""GGUF files of the adapters floor: the base model's GGUF for a model spec and its content hash.

The llama.cpp engine (copilot.serve.llama), the LoRA conversion (gguf_lora) and the merge (gguf_merge)
all key their work on the base GGUF; they find it and hash it here, so serving imports adapters and
never the reverse.
"""

from __future__ import annotations

from pathlib import Path

from copilot.core.files import sha256_file
from copilot.core.types import CopilotError


class NoGGUF(CopilotError):
    """The model spec names no GGUF file (llama.cpp cannot serve it)."""


def gguf_for(spec: str, progress=None) -> Path:
    """The GGUF file that serves a model spec: a packaged name (assembled, sha256-verified), a .gguf
    file, or a folder holding exactly one .gguf. Anything else: NoGGUF."""
    from copilot.models import packaged as models

    if spec in models.PACKAGED:
        return models.assemble_gguf(spec, progress)
    p = Path(spec).expanduser()
    if p.is_file() and p.suffix == ".gguf":
        return p
    if p.is_dir():
        ggufs = sorted(p.glob("*.gguf"))
        if len(ggufs) == 1:
            return ggufs[0]
    raise NoGGUF(f"no GGUF file for model '{spec}' (llama.cpp serves packaged models and .gguf files)")


def file_sha256(path: Path) -> str:
    """sha256 of a GGUF, read from its `.sha256` stamp (written by models.assemble_gguf) when there is one."""
    stamp = path.with_name(path.name + ".sha256")
    if stamp.is_file():
        return stamp.read_text().strip()
    return sha256_file(path)
