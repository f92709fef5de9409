"""The adapter registry: versioned LoRA adapters under the data root.

Layout (``copilot.core.paths.adapters_dir()``)::

    adapters/NAME/VERSION/adapter_config.json
    adapters/NAME/VERSION/adapter_model.safetensors
    adapters/NAME/VERSION/manifest.json        (copilot.core.types.AdapterManifest)
    adapters/NAME/active.json                  {"active": V, "previous": V | null, "history": [...]}
    adapters/NAME/.registry.lock               short lock around registry changes
    adapters/NAME/.train.lock                  held for a whole training run of NAME

Rules kept here:
- Publishing copies into ``NAME/.tmp-*`` and renames it to ``NAME/VERSION`` in one step, so a
  half-written version is never visible. Any failure (disk full included) removes the temp dir and
  leaves the registry as it was.
- The active pointer is a small JSON file replaced with ``os.replace``; it remembers the previous
  active version so ``rollback`` is one step.
- Only ``adapter_model.safetensors`` is ever loaded; its sha256 is checked against the manifest and
  a folder holding pickle weights (``*.bin``, ``*.pt``, ``*.pth``, ``*.pkl``) is refused.
- An adapter trained for another base model is refused when the caller names its base.

No torch import here: the server and CLI list adapters without loading a model.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import fields
from pathlib import Path
from typing import Any

from copilot.core import paths
from copilot.core.clock import now_iso
from copilot.core.files import sha256_file, write_json_atomic
from copilot.core.types import AdapterManifest, CopilotError, UserInputError

WEIGHTS = "adapter_model.safetensors"
CONFIG = "adapter_config.json"
MANIFEST = "manifest.json"
POINTER = "active.json"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".ckpt")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")

# Metrics compared by `promote` (higher is better), first one found in both manifests wins.
PROMOTE_METRICS = ("fim.edit_sim", "fim.exact_match", "explain.cosine")


def check_name(name: str) -> str:
    if not _NAME_RE.match(name or ""):
        raise UserInputError(
            f"bad adapter name {name!r}: use letters, digits, '.', '_' or '-' (at most 64, no leading dot)"
        )
    return name


def _disk_error(exc: OSError | CopilotError, what: str) -> CopilotError:
    """A failed registry write (an OSError, or core.files' CopilotError around one) in the registry's words."""
    cause = exc if isinstance(exc, OSError) else exc.__context__
    if not isinstance(cause, OSError):
        return CopilotError(f"cannot write while {what}: {exc}; the registry is unchanged")
    if cause.errno == errno.ENOSPC:
        return CopilotError(f"disk full while {what}; the registry is unchanged")
    return CopilotError(f"cannot write while {what}: {cause.strerror or cause}; the registry is unchanged")


def manifest_from_dict(data: dict[str, Any]) -> AdapterManifest:
    known = {f.name for f in fields(AdapterManifest)}
    return AdapterManifest(**{k: v for k, v in data.items() if k in known})


def get_metric(metrics: dict[str, Any], dotted: str) -> float | None:
    cur: Any = metrics
    for part in dotted.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return None
        cur = cur[part]
    return float(cur) if isinstance(cur, (int, float)) else None


class Registry:
    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root is not None else paths.adapters_dir()

    # ---------------------------------------------------------------- reading
    def names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and _NAME_RE.match(p.name) and self.versions(p.name))

    def versions(self, name: str) -> list[int]:
        d = self.root / name
        if not d.is_dir():
            return []
        return sorted(int(p.name) for p in d.iterdir() if p.is_dir() and p.name.isdigit() and (p / MANIFEST).is_file())

    def version_dir(self, name: str, version: int) -> Path:
        return self.root / name / str(version)

    def pointer(self, name: str) -> dict[str, Any]:
        p = self.root / name / POINTER
        if not p.is_file():
            return {"active": None, "previous": None, "history": []}
        try:
            data = json.loads(p.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise CopilotError(f"adapter {name}: unreadable active pointer {p}: {exc}") from None
        data.setdefault("previous", None)
        data.setdefault("history", [])
        return data

    def active(self, name: str) -> int | None:
        v = self.pointer(name).get("active")
        return int(v) if v is not None and v in self.versions(name) else None

    def status(self, name: str, version: int) -> str:
        ptr = self.pointer(name)
        if ptr.get("active") == version:
            return "active"
        if version in ptr.get("history", []):
            return "retired"
        return "candidate"

    def manifest(self, name: str, version: int) -> AdapterManifest:
        p = self.version_dir(name, version) / MANIFEST
        if not p.is_file():
            raise UserInputError(f"unknown adapter version {name}@{version}; versions: {self.versions(name) or 'none'}")
        try:
            m = manifest_from_dict(json.loads(p.read_text()))
        except (OSError, json.JSONDecodeError, TypeError) as exc:
            raise CopilotError(f"adapter {name}@{version}: corrupt manifest {p}: {exc}") from None
        m.status = self.status(name, version)
        return m

    def parse_spec(self, spec: str) -> tuple[str, int]:
        """'NAME' (active, else newest) or 'NAME@VERSION' -> (name, version)."""
        name, _, ver = spec.partition("@")
        versions = self.versions(name)
        if not versions:
            known = ", ".join(self.names()) or "none"
            raise UserInputError(f"unknown adapter {spec!r}; known adapters: {known}")
        if ver:
            if not ver.isdigit() or int(ver) not in versions:
                raise UserInputError(f"unknown adapter version {spec!r}; versions of {name}: {versions}")
            return name, int(ver)
        active = self.active(name)
        return name, active if active is not None else versions[-1]

    # ---------------------------------------------------------------- verification
    def verify_dir(self, d: Path, *, base_fingerprint: str | None = None, base_name: str | None = None) -> AdapterManifest | None:
        """Check an adapter folder before anything loads it. Returns its manifest if it has one."""
        if not d.is_dir():
            raise UserInputError(f"adapter folder not found: {d}")
        pickles = [p.name for p in d.iterdir() if p.suffix in PICKLE_SUFFIXES]
        if pickles:
            raise CopilotError(f"adapter {d}: refusing pickle weights {pickles}; only safetensors are loaded")
        for need in (CONFIG, WEIGHTS):
            if not (d / need).is_file():
                raise CopilotError(f"adapter {d} is incomplete: {need} missing")
        try:
            cfg = json.loads((d / CONFIG).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise CopilotError(f"adapter {d}: corrupt {CONFIG}: {exc}") from None
        man: AdapterManifest | None = None
        if (d / MANIFEST).is_file():
            try:
                man = manifest_from_dict(json.loads((d / MANIFEST).read_text()))
            except (OSError, json.JSONDecodeError, TypeError) as exc:
                raise CopilotError(f"adapter {d}: corrupt {MANIFEST}: {exc}") from None
            actual = sha256_file(d / WEIGHTS)
            if actual != man.weights_sha256:
                raise CopilotError(
                    f"adapter {d}: {WEIGHTS} sha256 mismatch (tampered or corrupt): "
                    f"manifest {man.weights_sha256[:12]}…, file {actual[:12]}…"
                )
            if base_fingerprint and man.base_model_sha256 and man.base_model_sha256 != base_fingerprint:
                raise UserInputError(
                    f"adapter {man.name}@{man.version} was trained for base model {man.base_model!r}, "
                    f"not the loaded one{f' ({base_name!r})' if base_name else ''}"
                )
        del cfg  # parsed only to prove it is valid JSON
        return man

    def resolve(self, spec: str, *, base_fingerprint: str | None = None, base_name: str | None = None) -> Path:
        """'NAME' | 'NAME@VERSION' | folder path -> verified adapter folder."""
        if not spec:
            raise UserInputError("empty adapter name")
        p = Path(spec).expanduser()
        looks_like_path = os.sep in spec or spec.startswith((".", "~"))
        if looks_like_path or (p.is_dir() and not self.versions(spec.partition("@")[0])):
            if not p.is_dir():
                known = ", ".join(self.names()) or "none"
                raise UserInputError(f"unknown adapter {spec!r}: no such folder; known adapters: {known}")
            self.verify_dir(p, base_fingerprint=base_fingerprint, base_name=base_name)
            return p.resolve()
        name, version = self.parse_spec(spec)
        d = self.version_dir(name, version)
        self.verify_dir(d, base_fingerprint=base_fingerprint, base_name=base_name)
        return d

    # ---------------------------------------------------------------- locks
    @contextmanager
    def _registry_lock(self, name: str) -> Iterator[None]:
        from filelock import FileLock

        d = self.root / check_name(name)
        d.mkdir(parents=True, exist_ok=True)
        with FileLock(str(d / ".registry.lock"), timeout=30):
            yield

    @contextmanager
    def training_lock(self, name: str) -> Iterator[None]:
        """Held for a whole training run: a second training of the same NAME fails at once."""
        from filelock import FileLock, Timeout

        d = self.root / check_name(name)
        d.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(d / ".train.lock"), timeout=0)
        try:
            lock.acquire()
        except Timeout:
            raise CopilotError(
                f"another training of adapter {name!r} is running (lock {d / '.train.lock'}); wait for it to finish"
            ) from None
        try:
            yield
        finally:
            lock.release()

    # ---------------------------------------------------------------- changes
    def publish(self, name: str, src: str | Path, manifest: AdapterManifest | dict[str, Any]) -> AdapterManifest:
        """Copy a saved peft folder in as the next candidate version of NAME (atomic)."""
        check_name(name)
        src = Path(src)
        for need in (CONFIG, WEIGHTS):
            if not (src / need).is_file():
                raise CopilotError(f"cannot publish {src}: {need} missing")
        data = manifest.to_dict() if isinstance(manifest, AdapterManifest) else dict(manifest)
        with self._registry_lock(name):
            ndir = self.root / name
            existing = [int(p.name) for p in ndir.iterdir() if p.name.isdigit()]
            version = max(existing, default=0) + 1
            tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=ndir))
            try:
                shutil.copyfile(src / CONFIG, tmp / CONFIG)
                shutil.copyfile(src / WEIGHTS, tmp / WEIGHTS)
                data.update(
                    name=name, version=version, status="candidate",
                    weights_sha256=sha256_file(tmp / WEIGHTS), created=data.get("created") or now_iso(),
                )
                m = manifest_from_dict(data)
                write_json_atomic(tmp / MANIFEST, m.to_dict())
                os.rename(tmp, ndir / str(version))
            except (OSError, CopilotError) as exc:
                shutil.rmtree(tmp, ignore_errors=True)
                raise _disk_error(exc, f"saving adapter {name}@{version}") from None
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
        return m

    def install_version(self, name: str, version: int, src: str | Path) -> bool:
        """Move a verified folder (config, weights, manifest; e.g. pulled from the team service) in as
        NAME@VERSION, keeping the version number it has elsewhere (atomic rename). Already there with the
        same weights: False, nothing changes. There with other weights: refused."""
        check_name(name)
        src = Path(src)
        with self._registry_lock(name):
            target = self.version_dir(name, version)
            if target.is_dir():
                have = self.manifest(name, version).weights_sha256
                want = json.loads((src / MANIFEST).read_text()).get("weights_sha256")
                if have != want:
                    raise UserInputError(f"{name}@{version} already exists here with other weights; "
                                         f"remove it first (copilot adapters remove {name}@{version})")
                return False
            try:
                os.rename(src, target)
            except OSError as exc:
                raise _disk_error(exc, f"saving adapter {name}@{version}") from None
        return True

    def update_manifest(self, name: str, version: int, **changes: Any) -> AdapterManifest:
        """Rewrite fields of a version's manifest (e.g. metrics) atomically; weights untouched."""
        with self._registry_lock(name):
            p = self.version_dir(name, version) / MANIFEST
            if not p.is_file():
                raise UserInputError(f"unknown adapter version {name}@{version}")
            data = json.loads(p.read_text())
            for k, v in changes.items():
                if k == "metrics" and isinstance(v, dict):
                    data.setdefault("metrics", {}).update(v)
                else:
                    data[k] = v
            try:
                write_json_atomic(p, data)
            except (OSError, CopilotError) as exc:
                raise _disk_error(exc, f"updating {name}@{version}") from None
        return self.manifest(name, version)

    def _set_pointer(self, name: str, active: int | None, previous: int | None, history: list[int]) -> None:
        ptr = {"active": active, "previous": previous, "history": history, "changed": now_iso()}
        try:
            write_json_atomic(self.root / name / POINTER, ptr)
        except (OSError, CopilotError) as exc:
            raise _disk_error(exc, f"switching the active version of {name}") from None
        # Mirror statuses into the manifests for readers that look at one folder only.
        for v in self.versions(name):
            p = self.version_dir(name, v) / MANIFEST
            try:
                data = json.loads(p.read_text())
                want = "active" if v == active else ("retired" if v in history else "candidate")
                if data.get("status") != want:
                    data["status"] = want
                    write_json_atomic(p, data)
            except (OSError, CopilotError, json.JSONDecodeError):
                pass  # the pointer is the source of truth

    def compare_for_promote(self, cand: AdapterManifest, act: AdapterManifest) -> tuple[str, float, float] | None:
        """(metric, candidate, active) on the same test split, or None when not comparable."""
        ce, ae = cand.metrics.get("eval", {}), act.metrics.get("eval", {})
        if not ce or not ae or ce.get("test_fingerprint") != ae.get("test_fingerprint"):
            return None
        for key in PROMOTE_METRICS:
            c, a = get_metric(ce.get("adapter", {}), key), get_metric(ae.get("adapter", {}), key)
            if c is not None and a is not None:
                return key, c, a
        return None

    def promote(self, spec: str, *, force: bool = False) -> AdapterManifest:
        name, version = self.parse_spec(spec)
        with self._registry_lock(name):
            ptr = self.pointer(name)
            current = ptr.get("active")
            if current == version:
                raise UserInputError(f"{name}@{version} is already active")
            self.verify_dir(self.version_dir(name, version))
            if current is not None and current in self.versions(name) and not force:
                cmp = self.compare_for_promote(self.manifest(name, version), self.manifest(name, current))
                if cmp is not None and cmp[1] < cmp[2]:
                    raise UserInputError(
                        f"{name}@{version} is worse than active {name}@{current} on the same test split "
                        f"({cmp[0]} {cmp[1]:.2f} < {cmp[2]:.2f}); use --force to promote anyway"
                    )
            history = [v for v in ptr.get("history", []) if v != version]
            if current is not None and current not in history:
                history.append(current)
            self._set_pointer(name, version, current, history)
        return self.manifest(name, version)

    def rollback(self, name: str) -> AdapterManifest:
        with self._registry_lock(name):
            ptr = self.pointer(name)
            prev, cur = ptr.get("previous"), ptr.get("active")
            if prev is None or prev not in self.versions(name):
                raise UserInputError(f"adapter {name!r} has no previous active version to roll back to")
            history = [v for v in ptr.get("history", []) if v != prev]
            if cur is not None and cur not in history:
                history.append(cur)
            # The version before `prev` in history becomes the new `previous` (so rollback can repeat).
            older = [v for v in history if v not in (cur, prev)]
            self._set_pointer(name, prev, older[-1] if older else None, history)
        return self.manifest(name, prev)

    def remove(self, spec: str) -> list[str]:
        """Remove NAME@VERSION (not the active one) or all of NAME when no version is given."""
        name, _, ver = spec.partition("@")
        if not self.versions(name):
            known = ", ".join(self.names()) or "none"
            raise UserInputError(f"unknown adapter {spec!r}; known adapters: {known}")
        removed: list[str] = []
        with self._registry_lock(name):
            if ver:
                _, v = self.parse_spec(spec)
                ptr = self.pointer(name)
                if ptr.get("active") == v:
                    raise UserInputError(f"{name}@{v} is active; promote another version or roll back first")
                trash = self.root / name / f".trash-{v}"
                os.rename(self.version_dir(name, v), trash)  # invisible at once, then delete
                shutil.rmtree(trash, ignore_errors=True)
                if ptr.get("previous") == v or v in ptr.get("history", []):
                    hist = [h for h in ptr.get("history", []) if h != v]
                    prev = ptr.get("previous") if ptr.get("previous") != v else None
                    self._set_pointer(name, ptr.get("active"), prev, hist)
                removed.append(f"{name}@{v}")
            else:
                removed = [f"{name}@{v}" for v in self.versions(name)]
        if not ver:
            trash = self.root / f".trash-{name}"
            shutil.rmtree(trash, ignore_errors=True)
            os.rename(self.root / name, trash)
            shutil.rmtree(trash, ignore_errors=True)
        return removed


def resolve_adapter(spec: str, *, base_fingerprint: str | None = None, base_name: str | None = None,
                    root: str | Path | None = None) -> Path:
    """For the engine: 'NAME' (active version, else the newest candidate), 'NAME@VERSION' or a
    folder -> a verified adapter folder. Raises UserInputError('unknown adapter ...') listing names."""
    return Registry(root).resolve(spec, base_fingerprint=base_fingerprint, base_name=base_name)


def verify_adapter(path: str | Path, *, base_model_sha256: str | None = None, base_name: str | None = None,
                   root: str | Path | None = None) -> dict[str, Any] | None:
    """For the engine, before loading a folder: safetensors only, sha256 of the weights matches the
    manifest, trained for this base. Returns the manifest as a dict (None for a bare peft folder)."""
    man = Registry(root).verify_dir(Path(path), base_fingerprint=base_model_sha256, base_name=base_name)
    return man.to_dict() if man is not None else None
