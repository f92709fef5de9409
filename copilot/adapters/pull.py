"""`copilot adapters pull --from URL`: bring a team's adapter versions from the team service into the
local registry, for a laptop that must also work offline.

Each version arrives as one archive (copilot.adapters.archive). It is downloaded to a temporary file
inside the registry, its sha256 checked against the service's listing, unpacked and verified (weights
sha256 against the manifest, the manifest's base model against the local one), and only then renamed
into place under the same NAME/VERSION as on the service. The active version follows the service's.
An interrupted pull leaves nothing a reader can see.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from copilot.adapters.archive import unpack
from copilot.adapters.registry import Registry
from copilot.core.types import CopilotError, UserInputError


def _open(url: str, key: str, timeout: float):
    try:
        req = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}", "User-Agent": "copilot-pull"})
        return urllib.request.urlopen(req, timeout=timeout)
    except urllib.error.HTTPError as exc:
        try:
            message = json.loads(exc.read()).get("error", {}).get("message") or exc.reason
        except (ValueError, AttributeError):
            message = exc.reason
        raise CopilotError(f"{url}: HTTP {exc.code}: {message}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise CopilotError(f"cannot reach the team service at {url}: {reason}") from None


def listing(base_url: str, key: str, timeout: float = 30.0) -> dict:
    with _open(f"{base_url.rstrip('/')}/v1/adapters", key, timeout) as resp:
        return json.loads(resp.read())


def pull(base_url: str, key: str, *, names: list[str] | None = None, all_versions: bool = False,
         base_sha256: str | None = None, registry: Registry | None = None, timeout: float = 60.0,
         progress: Callable[[str, int, int], None] | None = None) -> list[tuple[str, int, str]]:
    """Pull the active version (or every version) of the team's adapters. Returns (name, version, what
    happened) per version: "pulled", "up to date", "activated"."""
    reg = registry or Registry()
    data = listing(base_url, key, timeout)
    offered = data.get("adapters", [])
    if names:
        unknown = sorted(set(names) - {a["name"] for a in offered})
        if unknown:
            raise UserInputError(f"the service offers this key no adapter named {', '.join(unknown)}; "
                                 f"it offers: {', '.join(sorted({a['name'] for a in offered})) or 'none'}")
        offered = [a for a in offered if a["name"] in names]
    done: list[tuple[str, int, str]] = []
    for item in offered:
        if not (all_versions or item.get("active")):
            continue
        name, version, man = item["name"], int(item["version"]), item.get("manifest") or {}
        if base_sha256 and man.get("base_model_sha256") and man["base_model_sha256"] != base_sha256:
            raise UserInputError(f"{name}@{version} was trained for base model {man.get('base_model')!r} "
                                 f"({man['base_model_sha256'][:12]}…), not the local one ({base_sha256[:12]}…)")
        if version in reg.versions(name) and reg.manifest(name, version).weights_sha256 == man.get("weights_sha256"):
            what = "up to date"
        else:
            _fetch(base_url, key, name, version, item["archive_sha256"], reg, timeout, progress)
            what = "pulled"
        if item.get("active") and reg.active(name) != version:
            reg.promote(f"{name}@{version}", force=True)
            what += ", activated"
        done.append((name, version, what))
    return done


def _fetch(base_url: str, key: str, name: str, version: int, sha256: str, reg: Registry, timeout: float,
           progress) -> None:
    ndir = reg.root / name
    ndir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-pull-", dir=ndir))
    try:
        archive = tmp / "archive.tar"
        h = hashlib.sha256()
        url = f"{base_url.rstrip('/')}/v1/adapters/{name}/{version}/archive"
        with _open(url, key, timeout) as resp, open(archive, "wb") as fh:
            total = int(resp.headers.get("Content-Length") or 0)
            got = 0
            while chunk := resp.read(1 << 20):
                fh.write(chunk)
                h.update(chunk)
                got += len(chunk)
                if progress:
                    progress(f"{name}@{version}", got, total)
        if h.hexdigest() != sha256:
            raise CopilotError(f"{name}@{version}: the download's sha256 {h.hexdigest()[:12]}… is not the "
                               f"service's {sha256[:12]}… (corrupted in transit?); nothing was installed")
        folder = tmp / "version"
        folder.mkdir()
        man = unpack(archive, folder)
        if man.name != name or int(man.version) != version:
            raise CopilotError(f"{name}@{version}: the archive holds {man.name}@{man.version}")
        reg.verify_dir(folder)
        reg.install_version(name, version, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
