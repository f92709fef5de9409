"""One adapter version as a single file, for the team service to hand out and `copilot adapters pull`
to take in: a plain tar of the version folder's three files (config, safetensors weights, manifest).

`pack` writes it once per version into a cache (atomic) and returns it with its sha256; `unpack`
extracts only those three regular files (no links, no paths) into a folder, checks the weights'
sha256 against the manifest, and refuses anything else.
"""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

from copilot.adapters.registry import CONFIG, MANIFEST, WEIGHTS, manifest_from_dict
from copilot.core import paths
from copilot.core.files import atomic_path, read_json, sha256_file, write_text_atomic
from copilot.core.types import AdapterManifest, CopilotError

MEMBERS = (CONFIG, WEIGHTS, MANIFEST)
MAX_MEMBER_BYTES = 2 << 30


def cache_dir() -> Path:
    return paths.home() / "cache" / "adapter-archives"


def pack(version_dir: Path, name: str, version: int) -> tuple[Path, str]:
    """(archive path, sha256) of a registry version folder; cached by the weights' sha256."""
    man = read_json(version_dir / MANIFEST, default={}) or {}
    weights_sha = man.get("weights_sha256") or sha256_file(version_dir / WEIGHTS)
    out = cache_dir() / f"{name}-{version}-{weights_sha[:16]}.tar"
    side = out.with_suffix(".sha256")
    if out.is_file() and side.is_file():
        return out, side.read_text().strip()
    with atomic_path(out) as tmp:
        with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
            for member in MEMBERS:
                src = version_dir / member
                if member == MANIFEST:  # the status is the server's view of the moment; not part of the file
                    data = json.dumps({**man, "status": "candidate"}, indent=2, sort_keys=True).encode()
                    info = tarfile.TarInfo(member)
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
                else:
                    tar.add(src, arcname=member, recursive=False)
    digest = sha256_file(out)
    write_text_atomic(side, digest + "\n")
    return out, digest


def unpack(archive: Path, dest: Path) -> AdapterManifest:
    """Extract a packed version into `dest` (an empty folder) and return its verified manifest."""
    try:
        with tarfile.open(archive, "r:") as tar:
            seen = set()
            for info in tar.getmembers():
                if info.name not in MEMBERS or not info.isreg() or info.size > MAX_MEMBER_BYTES or info.name in seen:
                    raise CopilotError(f"adapter archive {archive.name}: unexpected member {info.name!r}")
                seen.add(info.name)
                src = tar.extractfile(info)
                with open(dest / info.name, "wb") as fh:
                    while chunk := src.read(1 << 20):
                        fh.write(chunk)
    except (tarfile.TarError, OSError) as exc:
        raise CopilotError(f"adapter archive {archive.name} is not readable: {exc}") from None
    missing = [m for m in MEMBERS if m not in seen]
    if missing:
        raise CopilotError(f"adapter archive {archive.name}: missing {', '.join(missing)}")
    man = manifest_from_dict(json.loads((dest / MANIFEST).read_text()))
    if sha256_file(dest / WEIGHTS) != man.weights_sha256:
        raise CopilotError(f"adapter archive {archive.name}: the weights do not match the manifest's sha256")
    return man
